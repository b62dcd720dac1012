//! Durable `currentTerm` and `votedFor`: one small text file, replaced atomically.
//!
//! ```text
//! term=4
//! voted_for=Node3
//! ```
//! Writes go to a temporary file that is fsynced, renamed over the old one, and followed by an
//! fsync of the directory, so a crash leaves either the old state or the new one, never a mix.
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

pub const FILE_NAME: &str = "raft-state";

/// What the file holds: a term and the name voted for in it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Saved {
    pub term: u64,
    pub voted_for: Option<String>,
}

pub struct Store {
    dir: PathBuf,
}

impl Store {
    pub fn new(dir: impl Into<PathBuf>) -> Store {
        Store { dir: dir.into() }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE_NAME)
    }

    /// The saved state; `Ok(None)` when there is none yet. A file that exists but cannot be read
    /// or parsed is an error: silently starting again at term 0 could grant a second vote.
    pub fn load(&self) -> Result<Option<Saved>, String> {
        let path = self.path();
        let text = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        let text = String::from_utf8(text)
            .map_err(|_| format!("{} is not UTF-8: corrupt state file", path.display()))?;
        parse(&text)
            .map(Some)
            .map_err(|why| format!("{}: corrupt state file: {why}", path.display()))
    }

    pub fn save(&self, saved: &Saved) -> io::Result<()> {
        fs::create_dir_all(&self.dir)?;
        let tmp = self.dir.join(format!("{FILE_NAME}.tmp"));
        let mut file = File::create(&tmp)?;
        file.write_all(render(saved).as_bytes())?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, self.path())?;
        sync_dir(&self.dir)
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

pub fn render(s: &Saved) -> String {
    format!(
        "term={}\nvoted_for={}\n",
        s.term,
        s.voted_for.as_deref().unwrap_or("")
    )
}

pub fn parse(text: &str) -> Result<Saved, String> {
    let mut term = None;
    let mut voted_for = None;
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        match line.split_once('=') {
            Some(("term", v)) => {
                term = Some(v.parse::<u64>().map_err(|_| format!("bad term {v:?}"))?);
            }
            Some(("voted_for", v)) => {
                if !v.is_empty() && !crate::config::valid_name(v) {
                    return Err(format!("bad voted_for {v:?}"));
                }
                voted_for = Some((!v.is_empty()).then(|| v.to_string()));
            }
            _ => return Err(format!("unexpected line {line:?}")),
        }
    }
    match (term, voted_for) {
        (Some(term), Some(voted_for)) => Ok(Saved { term, voted_for }),
        _ => Err("term or voted_for missing".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("raft-store-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn missing_file_is_a_fresh_start() {
        let dir = temp_dir("fresh");
        assert_eq!(Store::new(&dir).load(), Ok(None));
    }

    #[test]
    fn saved_state_loads_back() {
        let dir = temp_dir("roundtrip");
        let store = Store::new(&dir);
        for saved in [
            Saved {
                term: 7,
                voted_for: Some("Node3".into()),
            },
            Saved {
                term: u64::MAX,
                voted_for: None,
            },
        ] {
            store.save(&saved).unwrap();
            assert_eq!(store.load(), Ok(Some(saved)));
        }
        assert!(!dir.join("raft-state.tmp").exists());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn corrupt_files_are_errors_not_term_zero() {
        for bad in [
            "",
            "term=x\nvoted_for=\n",
            "term=3\n",
            "voted_for=Node1\n",
            "term=-1\nvoted_for=\n",
            "term=3\nvoted_for=no spaces\n",
            "garbage",
            "term=3\nvoted_for=Node1\nextra=1\n",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should be rejected");
        }
        let dir = temp_dir("corrupt");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(FILE_NAME), b"\xff\xfe").unwrap();
        let e = Store::new(&dir).load().unwrap_err();
        assert!(e.contains("corrupt"), "{e}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_format_is_two_readable_lines() {
        let s = Saved {
            term: 4,
            voted_for: Some("Node3".into()),
        };
        assert_eq!(render(&s), "term=4\nvoted_for=Node3\n");
        assert_eq!(parse("term=4\r\nvoted_for=Node3\r\n"), Ok(s));
    }
}
