//! The playground's code, natively: what the browser test compares the wasm build against.
//!
//! ```text
//! cargo run --release --example native -- traces FROM COUNT DIR   # determinism_trace per seed
//! cargo run --release --example native -- replay FILE             # a scenario file, regenerated
//! ```

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["traces", from, count, dir] => {
            let (Ok(from), Ok(count)) = (from.parse::<u64>(), count.parse::<u64>()) else {
                eprintln!("traces FROM COUNT DIR: FROM and COUNT are numbers");
                return ExitCode::FAILURE;
            };
            for seed in from..from + count {
                let path = std::path::Path::new(dir).join(format!("{seed}.txt"));
                let trace = playground::determinism_trace(seed);
                if let Err(e) = std::fs::write(&path, trace) {
                    eprintln!("{}: {e}", path.display());
                    return ExitCode::FAILURE;
                }
            }
            ExitCode::SUCCESS
        }
        ["replay", file] => match std::fs::read_to_string(file) {
            Ok(text) => match raft::sim::script::regenerate(&text) {
                Ok(out) => {
                    print!("{out}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("{file}: {e}");
                    ExitCode::FAILURE
                }
            },
            Err(e) => {
                eprintln!("{file}: {e}");
                ExitCode::FAILURE
            }
        },
        _ => {
            eprintln!("usage: native traces FROM COUNT DIR | native replay FILE");
            ExitCode::FAILURE
        }
    }
}
