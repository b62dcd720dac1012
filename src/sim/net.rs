//! The simulated network: a fixed base delay per directed link plus per-message jitter, loss,
//! duplication and reordering, and cuts (sets of directed links) that partitions open and heal.

use crate::election::{NodeId, Rng, Time};

/// One million: probabilities are integers in parts per million so that runs stay exact.
pub const PPM: u64 = 1_000_000;

/// How messages travel. Delays are one-way, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetParams {
    /// Each directed link gets a base delay drawn once from `delay_min..=delay_max`.
    pub delay_min: u64,
    pub delay_max: u64,
    /// Every message adds `0..=jitter` to its link's base delay.
    pub jitter: u64,
    pub loss_ppm: u64,
    pub dup_ppm: u64,
    /// A reordered message is held back by an extra `0..=reorder_max`, so later ones overtake it.
    pub reorder_ppm: u64,
    pub reorder_max: u64,
}

impl NetParams {
    /// A LAN as in the paper's experiments: no loss, no duplicates, delay within the base range.
    pub fn lan(delay_min: u64, delay_max: u64, jitter: u64) -> NetParams {
        NetParams {
            delay_min,
            delay_max,
            jitter,
            loss_ppm: 0,
            dup_ppm: 0,
            reorder_ppm: 0,
            reorder_max: 0,
        }
    }

    /// The longest one-way delay a message sent now can take.
    pub fn max_delay(&self) -> u64 {
        self.delay_max + self.jitter + self.reorder_max
    }
}

/// Directed links, their delays, and the cuts currently open.
pub struct Net {
    n: usize,
    base: Vec<u64>,
    pub params: NetParams,
    /// How many open cuts contain each directed link; a link is up when its count is 0.
    cut_count: Vec<u32>,
    /// Open cuts by id; a healed cut leaves `None` so ids stay stable.
    cuts: Vec<Option<Vec<(NodeId, NodeId)>>>,
}

impl Net {
    pub fn new(n: usize, params: NetParams, rng: &mut Rng) -> Net {
        let span = params.delay_max - params.delay_min;
        let base = (0..n * n)
            .map(|_| params.delay_min + rng.below(span + 1))
            .collect();
        Net {
            n,
            base,
            params,
            cut_count: vec![0; n * n],
            cuts: Vec::new(),
        }
    }

    /// The base round trip between two nodes (without jitter).
    pub fn round_trip(&self, a: NodeId, b: NodeId) -> u64 {
        self.base[a * self.n + b] + self.base[b * self.n + a]
    }

    pub fn is_up(&self, from: NodeId, to: NodeId) -> bool {
        self.cut_count[from * self.n + to] == 0
    }

    /// True when no cut is open: every link carries messages again.
    pub fn all_up(&self) -> bool {
        self.cut_count.iter().all(|&c| c == 0)
    }

    /// Opens a cut and returns its id for [`Net::heal`].
    pub fn cut(&mut self, links: Vec<(NodeId, NodeId)>) -> usize {
        for &(a, b) in &links {
            self.cut_count[a * self.n + b] += 1;
        }
        self.cuts.push(Some(links));
        self.cuts.len() - 1
    }

    pub fn heal(&mut self, id: usize) {
        if let Some(links) = self.cuts.get_mut(id).and_then(Option::take) {
            for (a, b) in links {
                self.cut_count[a * self.n + b] -= 1;
            }
        }
    }

    pub fn heal_all(&mut self) {
        for id in 0..self.cuts.len() {
            self.heal(id);
        }
    }

    /// Arrival delays of one message sent on `from -> to` now: none when it is lost, two when it
    /// is duplicated. Whether the link is up is checked by the caller, at send and at arrival.
    pub fn transit(&self, from: NodeId, to: NodeId, rng: &mut Rng) -> [Option<Time>; 2] {
        let p = &self.params;
        if chance(rng, p.loss_ppm) {
            return [None, None];
        }
        let first = Some(self.one_delay(from, to, rng));
        let second = chance(rng, p.dup_ppm).then(|| self.one_delay(from, to, rng));
        [first, second]
    }

    fn one_delay(&self, from: NodeId, to: NodeId, rng: &mut Rng) -> Time {
        let p = &self.params;
        let mut d = self.base[from * self.n + to] + rng.below(p.jitter + 1);
        if chance(rng, p.reorder_ppm) {
            d += rng.below(p.reorder_max + 1);
        }
        d
    }
}

/// True with probability `ppm` parts per million. Draws nothing when `ppm` is 0, so a quiet
/// network does not consume randomness the rest of the run depends on.
pub fn chance(rng: &mut Rng, ppm: u64) -> bool {
    ppm > 0 && rng.below(PPM) < ppm
}
