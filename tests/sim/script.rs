//! The scenario files of `testdata/`: each is replayed through `raft::sim::script` and must
//! come out byte for byte as it is. `UPDATE=1 cargo test --profile checked --test sim
//! scenario_files` rewrites the traces after an intended change (read the diff).

use raft::sim::script::{first_difference, regenerate};
use std::path::Path;

#[test]
fn scenario_files() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sim/testdata");
    let update = std::env::var("UPDATE").is_ok_and(|v| v == "1");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/sim/testdata")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 8,
        "scenario files missing from {}",
        dir.display()
    );
    let mut failures = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).expect("a readable scenario file");
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let got = regenerate(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        if update {
            std::fs::write(&path, &got).expect("scenario file written");
        } else if got != text {
            failures.push(format!("{name}: {}", first_difference(&text, &got)));
        }
    }
    assert!(
        failures.is_empty(),
        "traces differ (if the change is intended: UPDATE=1 cargo test --profile checked \
         --test sim scenario_files)\n{}",
        failures.join("\n")
    );
}

#[test]
fn a_script_error_names_its_line() {
    let bad = regenerate("# x\n> nodes 3\n> tick n7\n").unwrap_err();
    assert!(bad.starts_with("line 3:"), "{bad}");
    let early = regenerate("> nodes 3 seed=10\n> tick n1\n").unwrap_err();
    assert!(early.contains("n0's timer is due first"), "{early}");
    let unknown = regenerate("> nodes 3\n> dance\n").unwrap_err();
    assert!(unknown.contains("unknown command"), "{unknown}");
    assert!(regenerate("> tick n0\n").is_err(), "no cluster yet");
    let late = regenerate("> nodes 3\n> elect n2\n").unwrap_err();
    assert!(late.contains("n0's timer is due first"), "{late}");
    let big = regenerate("> nodes 65\n").unwrap_err();
    assert!(big.starts_with("line 1:"), "{big}");
}

#[test]
fn a_changed_trace_is_a_difference() {
    let silent = regenerate("> nodes 3\n> elect n0\n> status\n").unwrap();
    assert_eq!(
        silent.lines().count(),
        6,
        "the setup writes nothing: {silent}"
    );
    assert!(silent.contains("n0 Leader       t1"), "{silent}");
    let script = "> nodes 3\n> tick n0\n";
    let trace = regenerate(script).unwrap();
    assert!(trace.lines().count() > 2, "{trace}");
    assert_eq!(regenerate(&trace).unwrap(), trace, "regenerating is stable");
    let edited = trace.replacen("tick ->", "tick =>", 1);
    assert_ne!(regenerate(&edited).unwrap(), edited);
}
