//! Reads a cluster key at start: from a variable's value or from a file (a compose or swarm
//! secret). Surrounding ASCII whitespace is not part of the key, so a file written by `echo`
//! and one written by `printf` hold the same key. Owns no other I/O and never prints a key.
use crate::config::KeySource;

/// The key's bytes, or a one-line reason naming the variable (empty, unreadable).
pub fn load(src: &KeySource) -> Result<Vec<u8>, String> {
    let (var, bytes) = match src {
        KeySource::Inline { var, key } => (*var, key.clone()),
        KeySource::File { var, path } => {
            let bytes =
                std::fs::read(path).map_err(|e| format!("{var}: cannot read {path}: {e}"))?;
            (*var, bytes)
        }
    };
    let key = bytes.trim_ascii();
    if key.is_empty() {
        return Err(format!("{var}: the key is empty"));
    }
    Ok(key.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_key_is_trimmed_and_an_empty_or_missing_one_is_an_error() {
        let dir = std::env::temp_dir().join(format!("raft-keyfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = |name: &str, text: &[u8]| {
            let p = dir.join(name);
            std::fs::write(&p, text).unwrap();
            KeySource::File {
                var: "CLUSTER_KEY_FILE",
                path: p.display().to_string(),
            }
        };
        assert_eq!(load(&file("k", b"s3cret\n")), Ok(b"s3cret".to_vec()));
        let empty = load(&file("e", b" \n\t")).unwrap_err();
        assert!(
            empty.starts_with("CLUSTER_KEY_FILE: the key is empty"),
            "{empty}"
        );
        let missing = KeySource::File {
            var: "CLUSTER_KEY_FILE",
            path: dir.join("absent").display().to_string(),
        };
        let e = load(&missing).unwrap_err();
        assert!(e.contains("cannot read") && !e.contains('\n'), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
