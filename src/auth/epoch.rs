//! The boot epoch: one number per start of a node, above every earlier one of the same node.
//!
//! It is the wall clock in microseconds at start, raised above the previous start's epoch when
//! `DATA_DIR` keeps one (`auth-epoch`, replaced atomically like the term file), so a clock set
//! back does not make a node reuse an old epoch. Without `DATA_DIR` the order of a node's
//! starts rests on its clock alone (README.md, "Threat model"). Owns that file and nothing else.
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

pub const FILE_NAME: &str = "auth-epoch";

/// This start's epoch, saved before it is used. `now_us` is the wall clock in microseconds.
pub fn next(dir: Option<&Path>, now_us: u64) -> Result<u64, String> {
    let Some(dir) = dir else {
        return Ok(now_us.max(1));
    };
    let path = dir.join(FILE_NAME);
    let last = match fs::read_to_string(&path) {
        Ok(text) => text
            .trim()
            .parse::<u64>()
            .map_err(|_| format!("{}: corrupt epoch file", path.display()))?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let epoch = last
        .checked_add(1)
        .ok_or_else(|| format!("{}: epoch exhausted", path.display()))?
        .max(now_us);
    save(dir, epoch).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(epoch)
}

fn save(dir: &Path, epoch: u64) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    let tmp = dir.join(format!("{FILE_NAME}.tmp"));
    let mut file = File::create(&tmp)?;
    file.write_all(format!("{epoch}\n").as_bytes())?;
    file.sync_all()?;
    drop(file);
    fs::rename(&tmp, dir.join(FILE_NAME))?;
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("raft-epoch-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn each_start_is_above_the_last_even_when_the_clock_goes_back() {
        let d = dir("back");
        assert_eq!(next(Some(&d), 1_000), Ok(1_000));
        assert_eq!(next(Some(&d), 500), Ok(1_001));
        assert_eq!(next(Some(&d), 5_000), Ok(5_000));
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn without_a_data_dir_the_clock_is_the_epoch() {
        assert_eq!(next(None, 42), Ok(42));
        assert_eq!(next(None, 0), Ok(1));
    }

    #[test]
    fn a_corrupt_epoch_file_is_an_error() {
        let d = dir("corrupt");
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join(FILE_NAME), "yesterday").unwrap();
        assert!(next(Some(&d), 7).is_err());
        let _ = fs::remove_dir_all(&d);
    }
}
