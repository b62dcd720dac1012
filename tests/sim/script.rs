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

#[test]
fn a_world_script_checks_its_arguments() {
    for (bad, why) in [
        ("> world 5 delay=20-5\n", "delay=20-5"),
        ("> world 5 timeout=300-150\n", "timeout=300-150"),
        ("> world 5 heartbeat=200\n", "heartbeat"),
        ("> world 5 pre_vote=maybe\n", "pre_vote=maybe"),
        ("> world 5 loss=101\n", "loss"),
        ("> world 65\n", "cluster size"),
        ("> world 3\n> crash n3\n", "not a node"),
        ("> world 3\n> tick n0\n", "unknown command"),
        ("> world 3\n> run 86400001\n", "run needs ms"),
        ("> nodes 3\n> crash n0\n", "unknown command"),
    ] {
        let e = regenerate(bad).unwrap_err();
        assert!(e.contains(why) && e.starts_with("line "), "{bad:?}: {e}");
    }
}

/// A live session (the playground's): commands at the times they happen, runs between them,
/// exported as a file that replays to itself.
#[test]
fn a_live_session_is_written_as_a_file_that_replays() {
    use raft::sim::script::Player;
    let mut p = Player::new("");
    p.command("world 3 seed=5").unwrap();
    p.run_live(400, false).unwrap();
    p.command("stop n0").unwrap();
    p.command("crash n1").unwrap();
    assert!(p.run_live(2_000, true).unwrap(), "a node stepped");
    let stepped_to = p.now();
    assert!(
        stepped_to < 2_000,
        "one step, not the whole run: {stepped_to}"
    );
    p.run_live(900, false).unwrap();
    p.command("restart n1").unwrap();
    assert!(p.command("restart n7").is_err(), "no such node");
    assert!(p.command("dance").is_err(), "no such command");
    p.run_live(1_500, false).unwrap();
    let file = p.export();
    assert!(file.starts_with("> world 3 seed=5\n> run 400\n"), "{file}");
    assert!(file.contains("> stop n0\n  400 n0 stop -> "), "{file}");
    assert!(
        file.contains("> crash n1\n  400 n1 crash\n> run 500\n"),
        "{file}"
    );
    assert!(
        file.contains("> restart n1\n  900 n1 restart t1 "),
        "{file}"
    );
    assert_eq!(regenerate(&file).unwrap(), file);
}
