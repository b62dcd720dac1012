//! Stop signals: SIGTERM (`docker stop`, a Swarm update, systemd) and SIGINT (Ctrl-C) ask the
//! node to stop, so that a leader can hand over before its process ends.
//! Owns the crate's only `unsafe`: std has no way to catch a signal, so the C library's
//! `signal` and `siginterrupt` (in glibc and musl alike) install a handler; must never do more
//! in that handler than count.
//!
//! Why this is sound:
//! - `signal` and `siginterrupt` are called with valid signal numbers and a function of the C
//!   ABI taking the signal number, which is all they require; no pointer to Rust data crosses.
//! - The handler only stores to static atomics, which are lock-free wherever std has them (the
//!   `cfg` below refuses to build otherwise): it takes no lock, allocates nothing and touches
//!   no other state, so it is async-signal-safe whatever the loop was doing when it ran.
//! - `siginterrupt(sig, 1)` installs the handler without `SA_RESTART`: a blocking
//!   `recv_from` then fails with `Interrupted` (std does not retry it), so the loop sees the
//!   signal at once instead of after its current wait.
#![allow(unsafe_code)]

use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};

static RECEIVED: AtomicUsize = AtomicUsize::new(0);
static LAST: AtomicI32 = AtomicI32::new(0);

const SIGINT: i32 = 2;
const SIGTERM: i32 = 15;

/// Stop signals received since the process started.
pub fn received() -> usize {
    RECEIVED.load(Ordering::SeqCst)
}

/// The name of the last stop signal received (`SIGTERM`, `SIGINT`; `none` before any).
pub fn last_name() -> &'static str {
    match LAST.load(Ordering::SeqCst) {
        SIGTERM => "SIGTERM",
        SIGINT => "SIGINT",
        _ => "none",
    }
}

#[cfg(all(unix, target_has_atomic = "ptr"))]
mod os {
    use super::*;
    use std::os::raw::c_int;

    extern "C" {
        fn signal(signum: c_int, handler: usize) -> usize;
        fn siginterrupt(signum: c_int, flag: c_int) -> c_int;
    }

    /// `SIG_ERR` as `signal` returns it: `(void (*)(int)) -1`.
    const SIG_ERR: usize = usize::MAX;

    extern "C" fn on_signal(signum: c_int) {
        LAST.store(signum, Ordering::SeqCst);
        RECEIVED.fetch_add(1, Ordering::SeqCst);
    }

    pub fn install() -> Result<(), String> {
        for (signum, name) in [(SIGTERM, "SIGTERM"), (SIGINT, "SIGINT")] {
            let handler = on_signal as extern "C" fn(c_int) as usize;
            // SAFETY: see the module's comment: valid signal numbers, a C-ABI handler that only
            // stores to atomics; neither call has any other precondition.
            let installed = unsafe { signal(signum, handler) != SIG_ERR };
            // SAFETY: as above; `siginterrupt` only changes the flags of the handler just set.
            let interrupting = installed && unsafe { siginterrupt(signum, 1) } == 0;
            if !interrupting {
                return Err(format!("cannot catch {name}"));
            }
        }
        Ok(())
    }
}

#[cfg(not(all(unix, target_has_atomic = "ptr")))]
mod os {
    pub fn install() -> Result<(), String> {
        Err("stop signals are caught only on Unix".into())
    }
}

/// Catch SIGTERM and SIGINT from now on: each is counted ([`received`]) and interrupts a
/// blocking socket read, instead of ending the process.
pub fn install() -> Result<(), String> {
    os::install()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    extern "C" {
        fn raise(signum: i32) -> i32;
    }

    /// A raised SIGINT is counted instead of ending the test process. (That it interrupts a
    /// blocking read is shown on real processes: tests/loopback.rs stops a node that has no
    /// timer running, so sits in a read without a timeout.)
    #[cfg(unix)]
    #[test]
    fn a_stop_signal_is_counted_instead_of_ending_the_process() {
        install().expect("handlers installed");
        let before = received();
        // SAFETY: raising a signal whose handler was installed above only runs that handler.
        assert_eq!(unsafe { raise(SIGINT) }, 0);
        assert_eq!(received(), before + 1);
        assert_eq!(last_name(), "SIGINT");
    }
}
