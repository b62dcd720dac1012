//! The session the page drives, natively: the same requests, the same answers.

use playground::Session;
use std::path::Path;

/// The value of a top-level string field of an answer (enough JSON for these tests).
fn field(answer: &str, key: &str) -> Option<String> {
    let start = answer.find(&format!("\"{key}\":\""))? + key.len() + 4;
    let mut out = String::new();
    let mut chars = answer[start..].chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                'u' => {
                    let hex: String = chars.by_ref().take(4).collect();
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                }
                c => out.push(c),
            },
            c => out.push(c),
        }
    }
    None
}

fn testdata() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/sim/testdata");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/sim/testdata")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect()
}

/// Every scenario file, stepped to its end one step per request, logs exactly the file.
#[test]
fn every_scenario_file_steps_to_its_own_text() {
    let files = testdata();
    assert!(files.len() >= 8);
    for (name, text) in files {
        let mut s = Session::new();
        let mut log = field(&s.handle(&format!("load\n{text}")), "log").unwrap();
        let mut steps = 0;
        loop {
            let answer = s.handle("step");
            assert!(answer.starts_with("{\"ok\":true"), "{name}: {answer}");
            log.push_str(&field(&answer, "log").unwrap());
            steps += 1;
            if answer.contains("\"done\":true") || steps > 10_000 {
                break;
            }
        }
        assert_eq!(log, text, "{name} after {steps} steps");
        assert!(steps > 3, "{name}: {steps} steps");
    }
}

/// What the page keeps: the log, with a live run's `> run` line at the place the run began.
#[derive(Default)]
struct Page {
    log: String,
    run_at: Option<usize>,
}

impl Page {
    fn take(&mut self, answer: &str) {
        assert!(answer.starts_with("{\"ok\":true"), "{answer}");
        if let Some(closed) = field(answer, "closed") {
            let at = self.run_at.take().expect("a run was under way");
            self.log.insert_str(at, &format!("{closed}\n"));
        }
        let running = !answer.contains("\"run\":null");
        if running && self.run_at.is_none() {
            self.run_at = Some(self.log.len());
        }
        self.log.push_str(&field(answer, "log").unwrap());
    }
}

/// A live session: time passes, buttons are pressed, and the export replays to the same text,
/// which is the log the page showed.
#[test]
fn a_live_session_exports_a_file_that_replays() {
    let mut s = Session::new();
    let mut page = Page::default();
    page.take(&s.handle("world 5 seed=4"));
    let mut now = 0;
    for (t, action) in [
        (700, "crash n0"),
        (1400, "cut n1"),
        (2600, "heal"),
        (2600, "restart n0"),
        (3100, "command n3 TIMEOUT"),
    ] {
        while now < t {
            now = (now + 37).min(t);
            page.take(&s.handle(&format!("advance {now}")));
        }
        page.take(&s.handle(&format!("do {action}")));
    }
    page.take(&s.handle("step"));
    page.take(&s.handle("advance 4000"));
    let answer = s.handle("export");
    page.take(&answer);
    let file = field(&answer, "text").unwrap();
    assert!(file.starts_with("> world 5 seed=4\n> run 700\n"), "{file}");
    assert!(file.contains("> crash n0\n  700 n0 crash\n"), "{file}");
    assert!(file.contains("> heal\n> restart n0\n"), "{file}");
    assert!(file.contains("elected"), "{file}");
    assert_eq!(raft::sim::script::regenerate(&file).unwrap(), file);
    assert_eq!(page.log, file);
}

/// Bad requests get an error answer, never a panic.
#[test]
fn bad_requests_are_answered_with_errors() {
    let mut s = Session::new();
    for bad in [
        "",
        "dance",
        "advance soon",
        "do command n9 TIMEOUT",
        "world 0",
        "world 99",
        "world 5 delay=20-5",
        "world 5 timeout=300-150",
        "world 5 heartbeat=500",
        "load\n> nodes 3\n> tick n7",
        "determinism x",
        "\u{0}\u{ffff}",
    ] {
        let answer = s.handle(bad);
        let answer = if bad.starts_with("load") {
            s.handle("step");
            s.handle("step")
        } else {
            answer
        };
        assert!(
            answer.starts_with("{\"ok\":false,\"error\":\""),
            "{bad:?}: {answer}"
        );
    }
    let ok = s.handle("world 3 seed=1");
    assert!(ok.starts_with("{\"ok\":true"), "{ok}");
}

/// The determinism trace is long enough to mean something and differs between seeds.
#[test]
fn determinism_traces_are_stable_and_distinct() {
    let a = playground::determinism_trace(7);
    assert!(a.len() > 10_000, "{}", a.len());
    assert!(!a.contains("error:"), "{}", &a[..2000.min(a.len())]);
    assert_eq!(a, playground::determinism_trace(7));
    assert_ne!(a, playground::determinism_trace(8));
}
