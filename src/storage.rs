//! Durable `currentTerm` and `votedFor`: one small text file, replaced atomically.
//! Owns the file's format and its crash-safe replacement; must never guess a state it cannot
//! read (a fresh start at term 0 could grant a second vote).
//!
//! ```text
//! term=4
//! voted_for=Node3
//! ```
//! Writes go to a temporary file that is fsynced, renamed over the old one, and followed by an
//! fsync of the directory, so a crash leaves either the old state or the new one, never a mix.
//!
//! One process at a time: a node holds an exclusive lock on `raft.lock` in its directory for
//! as long as it runs. Two processes sharing one state would each vote once in the same term
//! (Docker Swarm starts a replacement task before the old container has stopped, both mounting
//! the node's volume), so a second process waits for the first to exit, then reads what it left.
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const FILE_NAME: &str = "raft-state";
pub const LOCK_NAME: &str = "raft.lock";
/// How often a waiting process tries the lock again.
const LOCK_RETRY: Duration = Duration::from_millis(50);

/// This process's hold on a state directory; released when dropped (or when the process ends,
/// however it ends: the kernel releases the lock with the file).
#[derive(Debug)]
pub struct Held {
    _file: File,
}

/// What the file holds: a term and the name voted for in it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Saved {
    pub term: u64,
    pub voted_for: Option<String>,
}

/// Why the saved state cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoadError {
    /// The file exists but reading it failed (the I/O error's text).
    Unreadable(String),
    NotUtf8,
    Corrupt(Corrupt),
}

/// What is wrong inside a state file; the offending text where there is one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Corrupt {
    BadTerm(String),
    BadVotedFor(String),
    UnexpectedLine(String),
    Missing,
}

impl LoadError {
    pub fn as_str(&self) -> &'static str {
        match self {
            LoadError::Unreadable(_) => "unreadable",
            LoadError::NotUtf8 => "not-utf8",
            LoadError::Corrupt(_) => "corrupt",
        }
    }
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::Unreadable(e) => write!(f, "cannot read: {e}"),
            LoadError::NotUtf8 => f.write_str("not UTF-8: corrupt state file"),
            LoadError::Corrupt(c) => write!(f, "corrupt state file: {c}"),
        }
    }
}

impl std::fmt::Display for Corrupt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Corrupt::BadTerm(v) => write!(f, "bad term {v:?}"),
            Corrupt::BadVotedFor(v) => write!(f, "bad voted_for {v:?}"),
            Corrupt::UnexpectedLine(l) => write!(f, "unexpected line {l:?}"),
            Corrupt::Missing => f.write_str("term or voted_for missing"),
        }
    }
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
    pub fn load(&self) -> Result<Option<Saved>, LoadError> {
        let text = match fs::read(self.path()) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(LoadError::Unreadable(e.to_string())),
        };
        let text = String::from_utf8(text).map_err(|_| LoadError::NotUtf8)?;
        parse(&text).map(Some).map_err(LoadError::Corrupt)
    }

    /// The directory's lock, or `Ok(None)` while another process holds it (an advisory `flock`,
    /// shared by every process that opens the same file, also across containers).
    pub fn try_lock(&self) -> io::Result<Option<Held>> {
        fs::create_dir_all(&self.dir)?;
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.dir.join(LOCK_NAME))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(Held { _file: file })),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(e)) => Err(e),
        }
    }

    /// The directory's lock, waiting as long as another process holds it; `waiting` is called
    /// once, before the first wait.
    pub fn lock(&self, waiting: impl FnOnce()) -> io::Result<Held> {
        let mut waiting = Some(waiting);
        loop {
            if let Some(held) = self.try_lock()? {
                return Ok(held);
            }
            if let Some(say) = waiting.take() {
                say();
            }
            std::thread::sleep(LOCK_RETRY);
        }
    }

    pub fn save(&self, saved: &Saved) -> io::Result<()> {
        let text = render(saved);
        assert_eq!(
            parse(&text).as_ref(),
            Ok(saved),
            "what is saved reads back the same"
        );
        fs::create_dir_all(&self.dir)?;
        let tmp = self.dir.join(format!("{FILE_NAME}.tmp"));
        let mut file = File::create(&tmp)?;
        file.write_all(text.as_bytes())?;
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

pub fn parse(text: &str) -> Result<Saved, Corrupt> {
    let mut term = None;
    let mut voted_for = None;
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        match line.split_once('=') {
            Some(("term", v)) => {
                term = Some(v.parse::<u64>().map_err(|_| Corrupt::BadTerm(v.into()))?);
            }
            Some(("voted_for", v)) => {
                if !v.is_empty() && !crate::config::valid_name(v) {
                    return Err(Corrupt::BadVotedFor(v.into()));
                }
                voted_for = Some((!v.is_empty()).then(|| v.to_string()));
            }
            _ => return Err(Corrupt::UnexpectedLine(line.into())),
        }
    }
    match (term, voted_for) {
        (Some(term), Some(voted_for)) => Ok(Saved { term, voted_for }),
        _ => Err(Corrupt::Missing),
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
        let bad = |s: &str| Corrupt::BadTerm(s.into());
        for (text, want) in [
            ("", Corrupt::Missing),
            ("term=x\nvoted_for=\n", bad("x")),
            ("term=3\n", Corrupt::Missing),
            ("voted_for=Node1\n", Corrupt::Missing),
            ("term=-1\nvoted_for=\n", bad("-1")),
            (
                "term=3\nvoted_for=no spaces\n",
                Corrupt::BadVotedFor("no spaces".into()),
            ),
            ("garbage", Corrupt::UnexpectedLine("garbage".into())),
            (
                "term=3\nvoted_for=Node1\nextra=1\n",
                Corrupt::UnexpectedLine("extra=1".into()),
            ),
        ] {
            assert_eq!(parse(text), Err(want), "{text:?}");
        }
        let dir = temp_dir("corrupt");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(FILE_NAME), b"\xff\xfe").unwrap();
        let e = Store::new(&dir).load().unwrap_err();
        assert_eq!(e, LoadError::NotUtf8);
        assert_eq!(e.to_string(), "not UTF-8: corrupt state file");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn one_process_at_a_time_holds_a_state_directory() {
        let dir = temp_dir("lock");
        let first = Store::new(&dir).try_lock().unwrap();
        assert!(first.is_some(), "a free directory is taken");
        // A second opener (as a second process would be: the lock belongs to the open file).
        let other = Store::new(&dir);
        assert!(
            other.try_lock().unwrap().is_none(),
            "a held directory is refused"
        );
        let mut said = 0;
        let waiter = std::thread::spawn(move || {
            let held = other.lock(|| said += 1).unwrap();
            (held, said)
        });
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            !waiter.is_finished(),
            "lock() waits while the directory is held"
        );
        drop(first);
        let (_held, said) = waiter.join().unwrap();
        assert_eq!(said, 1, "the wait is announced once");
        assert!(Store::new(&dir).try_lock().unwrap().is_none());
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
