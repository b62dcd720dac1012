//! The host a node runs on, as far as elections can tell: when a timer really fires, and how
//! long writing the term and vote to disk holds back the messages of that step.
//!
//! The runtime's only clock is the socket's receive timeout (`SO_RCVTIMEO`). Linux turns it into
//! jiffies (rounding up), and its timer wheel fires a timer at the end of a bucket: at level 0
//! (under 63 jiffies ahead) one jiffy after the expiry, at level 1 (63..504 jiffies) at the next
//! multiple of 8 jiffies. With HZ=250 a wait of 1 ms ends after ~8 ms, one of 260 ms after
//! ~288 ms, and all timers that fall in one bucket fire together. `bench/floor.py` and the
//! measurements in docs/BENCHMARKS.md show the same on a real kernel.
//!
//! Nothing here can reorder what one node sends; it only moves times later.

use crate::election::{Rng, Time};

/// Timer and disk behaviour of every node of a world.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Host {
    /// The kernel's tick in ms (4 for HZ=250); 0: timers fire exactly at their deadline.
    pub tick: u64,
    /// A step that persists sends its messages this many ms later: `disk_min..=disk_max`.
    pub disk_min: u64,
    pub disk_max: u64,
}

/// Level 0 of the timer wheel holds timers under this many jiffies ahead.
const LEVEL0_JIFFIES: u64 = 63;
/// Level 1 (up to 504 jiffies ahead) fires at multiples of this many jiffies.
const LEVEL1_GRAIN: u64 = 8;

impl Host {
    /// Exact timers and an instant disk: the model every campaign seed started with.
    pub const EXACT: Host = Host {
        tick: 0,
        disk_min: 0,
        disk_max: 0,
    };

    /// When a timer armed at `now` for `deadline` really fires.
    pub fn wake(&self, now: Time, deadline: Time) -> Time {
        if self.tick == 0 || deadline <= now {
            return deadline.max(now);
        }
        let j = self.tick;
        let wait = (deadline - now).div_ceil(j);
        let clk = now / j;
        let expires = clk + wait;
        let bucket = if wait < LEVEL0_JIFFIES {
            expires + 1
        } else {
            (expires / LEVEL1_GRAIN + 1) * LEVEL1_GRAIN
        };
        bucket * j
    }

    /// How long the write of a step that persists holds back its messages.
    pub fn disk_delay(&self, rng: &mut Rng) -> Time {
        if self.disk_max == 0 {
            return 0;
        }
        self.disk_min + rng.below(self.disk_max - self.disk_min + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::Host;

    #[test]
    fn the_wheel_rounds_as_measured_on_a_hz250_kernel() {
        let h = Host {
            tick: 4,
            disk_min: 0,
            disk_max: 0,
        };
        // 1 ms from a tick boundary: two jiffies (what SO_RCVTIMEO of 1 ms measures: ~8 ms).
        assert_eq!(h.wake(400, 401), 408);
        assert_eq!(h.wake(400, 404), 408);
        assert_eq!(h.wake(400, 405), 412);
        // 252 ms ahead is level 0; 260 ms is level 1, rounded up to 32 ms buckets.
        assert_eq!(h.wake(0, 248), 252);
        assert_eq!(h.wake(0, 260), 288);
        assert_eq!(h.wake(0, 290), 320);
        // Two timers 20 ms apart in one level-1 bucket fire together.
        assert_eq!(h.wake(0, 257), h.wake(0, 277));
        assert_eq!(Host::EXACT.wake(3, 250), 250);
    }
}
