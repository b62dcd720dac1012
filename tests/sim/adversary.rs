//! An active adversary against a keyed cluster, on the real wire path.
//!
//! Unlike `world.rs`, which hands core messages across, this world moves bytes: every message a
//! core sends goes through `message::encode`, `auth::Guard::seal` and `json::emit`; every
//! datagram that arrives goes through `json::parse`, `message::classify` and `Guard::open`
//! before the core may see it — the runtime's own sequence. The network loses, duplicates and
//! delays datagrams; nodes crash and restart from their disks with a new boot epoch.
//!
//! The adversary sits on every link. It records every datagram that reaches a node and, at
//! random times, injects: a recorded datagram replayed to its receiver (at once or much later,
//! also after either end restarted), the same sent to another node, a recorded datagram with
//! any field changed (term 2^64-1, request, sender, key, the numbers or the tag of `value`),
//! and made-up node messages. It never has the key. It may claim any peer's source address
//! (the simulator does no source check at all), which is more than a real attacker gets.
//!
//! What is checked, per seed:
//! - with a key, no injected datagram ever reaches a core (`Verdict::Deliver` never happens for
//!   one), no term reaches 2^64-1, terms stay small, one leader per term, and a leader is
//!   agreed on after the faults end;
//! - with a key and no crashes, the run is identical — every core step, its time and its
//!   output — to the same seed without the adversary: zero effect, not merely no harm;
//! - without a key, the same adversary does take over (the test can see what it claims to).
use raft::auth::{self, Guard, Keys, Verdict};
use raft::election::{Config, HardState, Input, Node, NodeId, Rng, Role, Time};
use raft::json::{self, Datagram};
use raft::message;
use raft::route::{route, Context, Route, Source};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;

const KEY: &[u8] = b"the cluster key";

#[derive(Clone, Copy, Debug)]
pub struct Params {
    pub n: usize,
    pub keyed: bool,
    pub adversary: bool,
    pub crashes: bool,
    /// Simulated milliseconds of faults and attack; then a quiet second to agree on a leader.
    pub run_ms: Time,
}

/// What one run saw.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Datagrams the adversary injected, and how many of them reached a core.
    pub injected: u64,
    pub injected_delivered: u64,
    /// Injected datagrams that were only announcements the guard read (epoch learning).
    pub injected_hello: u64,
    pub max_term: u64,
    /// A hash of every core step: (time, node, input kind, output).
    pub trace: u64,
    pub steps: u64,
    pub leader_at_end: Option<(NodeId, u64)>,
    /// Two nodes led in one term (possible only without a key, under forged votes).
    pub two_leaders: bool,
}

enum Ev {
    Tick {
        node: NodeId,
        gen: u64,
    },
    Datagram {
        to: NodeId,
        bytes: Vec<u8>,
        injected: bool,
    },
    Crash {
        node: NodeId,
    },
    Restart {
        node: NodeId,
    },
    Inject,
}

struct Machine {
    node: Node,
    guard: Option<Guard>,
    disk: HardState,
    up: bool,
    gen: u64,
    armed: Option<Time>,
    starts: u64,
}

struct Wire {
    p: Params,
    now: Time,
    seq: u64,
    queue: BinaryHeap<Reverse<(Time, u64, usize)>>,
    events: Vec<Option<Ev>>,
    m: Vec<Machine>,
    names: Vec<String>,
    rng: Rng,
    adv: Rng,
    recorded: Vec<(NodeId, Vec<u8>)>,
    leaders: HashMap<u64, NodeId>,
    r: Report,
}

/// Runs one seed; `Err` names the broken property.
pub fn run(seed: u64, p: Params) -> Result<Report, String> {
    let mut w = Wire::new(seed, p);
    w.run()?;
    Ok(w.r)
}

impl Wire {
    fn new(seed: u64, p: Params) -> Wire {
        let mut rng = Rng::new(seed);
        // The adversary draws from its own generator, so its presence cannot shift the world's.
        let adv = Rng::new(seed ^ 0x5eed_ad5e_0000_0001);
        let names: Vec<String> = (1..=p.n).map(|i| format!("Node{i}")).collect();
        let mut w = Wire {
            p,
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            events: Vec::new(),
            m: Vec::new(),
            names,
            adv,
            recorded: Vec::new(),
            leaders: HashMap::new(),
            r: Report::default(),
            rng: Rng::new(0),
        };
        for id in 0..p.n {
            let node = Node::new(cfg(id, p.n), HardState::default(), rng.next_u64(), 0);
            w.m.push(Machine {
                node,
                guard: None,
                disk: HardState::default(),
                up: true,
                gen: 0,
                armed: None,
                starts: 0,
            });
            w.m[id].guard = w.guard_for(id);
        }
        w.rng = rng;
        for id in 0..p.n {
            w.arm(id);
        }
        if p.adversary {
            w.schedule(1, Ev::Inject);
        }
        if p.crashes {
            for _ in 0..1 + w.rng.below(3) {
                let at = 200 + w.rng.below(p.run_ms.saturating_sub(1200).max(1));
                let node = w.rng.index(p.n);
                w.schedule(at, Ev::Crash { node });
            }
        }
        w
    }

    /// A fresh guard for a (re)start: the epoch grows with every start of the node.
    fn guard_for(&mut self, id: NodeId) -> Option<Guard> {
        let m = &mut self.m[id];
        m.starts += 1;
        let epoch = (self.now + 1) * 1_000 + m.starts;
        self.p.keyed.then(|| {
            Guard::new(
                Keys::new(KEY, None),
                self.names.clone(),
                id,
                epoch,
                50,
                self.now,
            )
        })
    }

    fn schedule(&mut self, at: Time, ev: Ev) {
        self.seq += 1;
        let slot = self.events.len();
        self.events.push(Some(ev));
        self.queue.push(Reverse((at, self.seq, slot)));
    }

    fn run(&mut self) -> Result<(), String> {
        let end = self.p.run_ms + 1_500;
        while let Some(Reverse((at, _, slot))) = self.queue.pop() {
            if at > end {
                break;
            }
            self.now = at;
            let Some(ev) = self.events[slot].take() else {
                continue;
            };
            self.handle(ev)?;
        }
        self.r.leader_at_end = self.agreed();
        if self.p.keyed && self.r.leader_at_end.is_none() {
            return Err("no agreed leader a second and a half after the faults ended".into());
        }
        if self.p.keyed && self.p.adversary && self.r.injected_delivered > 0 {
            return Err(format!(
                "{} injected datagrams reached a core",
                self.r.injected_delivered
            ));
        }
        if self.p.keyed && self.r.max_term > 1_000 {
            return Err(format!("term reached {}", self.r.max_term));
        }
        Ok(())
    }

    fn handle(&mut self, ev: Ev) -> Result<(), String> {
        match ev {
            Ev::Tick { node, gen } => {
                if self.m[node].up && self.m[node].gen == gen {
                    self.on_tick(node)?;
                }
            }
            Ev::Datagram {
                to,
                bytes,
                injected,
            } => {
                if self.m[to].up {
                    self.on_datagram(to, &bytes, injected)?;
                }
            }
            Ev::Crash { node } => {
                let m = &mut self.m[node];
                m.up = false;
                m.gen += 1;
                let back = self.now + 100 + self.rng.below(900);
                self.schedule(back, Ev::Restart { node });
            }
            Ev::Restart { node } => {
                let seed = self.rng.next_u64();
                let disk = self.m[node].disk;
                self.m[node].node = Node::new(cfg(node, self.p.n), disk, seed, self.now);
                self.m[node].guard = self.guard_for(node);
                self.m[node].up = true;
                self.m[node].armed = None;
                self.arm(node);
            }
            Ev::Inject => {
                self.inject();
                if self.now < self.p.run_ms {
                    let next = self.now + 1 + self.adv.below(8);
                    self.schedule(next, Ev::Inject);
                }
            }
        }
        Ok(())
    }

    // ---- a node: the runtime's sequence -------------------------------------------------------

    fn on_tick(&mut self, id: NodeId) -> Result<(), String> {
        let now = self.now;
        if self.m[id].node.deadline().is_some_and(|d| d <= now) {
            self.step(id, Input::Tick, "tick")?;
        }
        let hellos = match &mut self.m[id].guard {
            Some(g) => g.due_hellos(now),
            None => Vec::new(),
        };
        for (to, d) in hellos {
            self.transmit(to, json::emit(&d));
        }
        self.arm(id);
        Ok(())
    }

    fn on_datagram(&mut self, to: NodeId, bytes: &[u8], injected: bool) -> Result<(), String> {
        if self.p.adversary && !injected {
            self.record(to, bytes);
        }
        if injected {
            self.r.injected += 1;
        }
        let Ok(d) = json::parse(bytes) else {
            return Ok(());
        };
        let now = self.now;
        // The runtime's own routing. The adversary can forge any source address, so every
        // datagram seems to come from the address of the member it names.
        let claimed = self.index_of(d.sender_name.as_deref());
        let src = Source {
            addr: SocketAddr::from(([127, 0, 0, 1], 5555)),
            members: claimed.map_or(0, |i| 1 << i),
            controller: false,
        };
        let ctx = Context {
            names: &self.names,
            keyed: self.p.keyed,
            stopped: self.m[to].node.role() == Role::Stopped,
        };
        let (from, msg) = match route(&d, &src, &ctx) {
            Route::Hello { from } => {
                if let Some(g) = &mut self.m[to].guard {
                    if g.open(from, &d, now) == Verdict::Hello && injected {
                        self.r.injected_hello += 1;
                    }
                }
                self.arm(to);
                return Ok(());
            }
            Route::Peer { from, msg } => (from, msg),
            _ => return Ok(()),
        };
        if from == to {
            return Ok(());
        }
        if let Some(g) = &mut self.m[to].guard {
            let verdict = g.open(from, &d, now);
            self.arm(to); // learning an epoch may schedule an announcement
            if verdict != Verdict::Deliver {
                return Ok(());
            }
        }
        if injected {
            self.r.injected_delivered += 1;
        }
        self.step(to, Input::Receive { from, msg }, "recv")
    }

    fn step(&mut self, id: NodeId, input: Input, what: &str) -> Result<(), String> {
        let now = self.now;
        let out = self.m[id].node.step(now, input);
        self.r.steps += 1;
        self.r.trace = mix(
            self.r.trace,
            &format!("{now} {id} {what} {input:?} {out:?}"),
        );
        if let Some(hard) = out.persist {
            self.m[id].disk = hard;
        }
        let node = &self.m[id].node;
        self.r.max_term = self.r.max_term.max(node.term());
        if node.role() == Role::Leader {
            let term = node.term();
            if let Some(&other) = self.leaders.get(&term) {
                if other != id && self.p.keyed {
                    return Err(format!("two leaders in term {term}: n{other} and n{id}"));
                }
                self.r.two_leaders |= other != id;
            }
            self.leaders.insert(term, id);
        }
        for (to, msg) in out.send {
            let mut d = message::encode(&self.names[id], msg);
            if let Some(g) = &mut self.m[id].guard {
                g.seal(to, &mut d);
            }
            self.transmit(to, json::emit(&d));
        }
        self.arm(id);
        Ok(())
    }

    /// The network: 3% lost, 1% duplicated, 1-10 ms late.
    fn transmit(&mut self, to: NodeId, bytes: Vec<u8>) {
        if self.rng.below(100) < 3 {
            return;
        }
        let copies = if self.rng.below(100) < 1 { 2 } else { 1 };
        for _ in 0..copies {
            let at = self.now + 1 + self.rng.below(10);
            let bytes = bytes.clone();
            self.schedule(
                at,
                Ev::Datagram {
                    to,
                    bytes,
                    injected: false,
                },
            );
        }
    }

    /// Wakes the node at the earlier of the core's and the guard's deadlines.
    fn arm(&mut self, id: NodeId) {
        let m = &self.m[id];
        if !m.up {
            return;
        }
        let guard = m.guard.as_ref().and_then(Guard::deadline);
        let at = match (m.node.deadline(), guard) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if at == m.armed {
            return;
        }
        let m = &mut self.m[id];
        m.gen += 1;
        m.armed = at;
        let gen = m.gen;
        if let Some(at) = at {
            let at = at.max(self.now);
            self.schedule(at, Ev::Tick { node: id, gen });
        }
    }

    fn index_of(&self, name: Option<&str>) -> Option<NodeId> {
        self.names.iter().position(|n| Some(n.as_str()) == name)
    }

    fn agreed(&self) -> Option<(NodeId, u64)> {
        let first = &self.m[0].node;
        let (leader, term) = (first.leader()?, first.term());
        let all = self
            .m
            .iter()
            .all(|m| m.up && m.node.leader() == Some(leader) && m.node.term() == term);
        (all && self.m[leader].node.role() == Role::Leader).then_some((leader, term))
    }

    // ---- the adversary --------------------------------------------------------------------------

    fn record(&mut self, to: NodeId, bytes: &[u8]) {
        const KEEP: usize = 2_048;
        if self.recorded.len() < KEEP {
            self.recorded.push((to, bytes.to_vec()));
        } else {
            let i = self.adv.index(KEEP);
            self.recorded[i] = (to, bytes.to_vec());
        }
    }

    fn inject(&mut self) {
        let n = self.p.n;
        let (to, bytes) = match (self.adv.below(10), self.recorded.is_empty()) {
            (_, true) | (9, _) => (self.adv.index(n), self.made_up()),
            (0..=3, _) => self.recorded[self.adv.index(self.recorded.len())].clone(),
            (4, _) => {
                let (_, b) = self.recorded[self.adv.index(self.recorded.len())].clone();
                (self.adv.index(n), b)
            }
            _ => {
                let (to, b) = self.recorded[self.adv.index(self.recorded.len())].clone();
                (to, self.altered(&b))
            }
        };
        self.schedule(
            self.now,
            Ev::Datagram {
                to,
                bytes,
                injected: true,
            },
        );
    }

    /// A recorded datagram with one or more fields changed; the tag is kept or made up.
    fn altered(&mut self, bytes: &[u8]) -> Vec<u8> {
        let Ok(mut d) = json::parse(bytes) else {
            return bytes.to_vec();
        };
        for _ in 0..1 + self.adv.below(3) {
            match self.adv.below(7) {
                0 | 1 => d.term = Some(u64::MAX - self.adv.below(2)),
                2 => d.term = d.term.map(|t| t.saturating_add(1 + self.adv.below(3))),
                3 => d.request = Some(self.pick_request()),
                4 => d.sender_name = Some(self.names[self.adv.index(self.p.n)].clone()),
                5 => d.key = Some(message::TRANSFER.to_string()),
                _ => d.value = self.altered_value(d.value.as_deref()),
            }
        }
        json::emit(&d)
    }

    fn altered_value(&mut self, v: Option<&str>) -> Option<String> {
        let v = v.unwrap_or("1.1.1.00000000000000000000000000000000");
        let mut parts: Vec<String> = v.split('.').map(str::to_string).collect();
        if parts.len() != 4 {
            return Some(v.to_string());
        }
        let i = self.adv.index(4);
        parts[i] = if i == 3 {
            format!("{:016x}{:016x}", self.adv.next_u64(), self.adv.next_u64())
        } else {
            let n = u64::from_str_radix(&parts[i], 16).unwrap_or(0);
            format!("{:x}", n.wrapping_add(1 + self.adv.below(1 << 20)))
        };
        Some(parts.join("."))
    }

    fn made_up(&mut self) -> Vec<u8> {
        let d = Datagram {
            sender_name: Some(self.names[self.adv.index(self.p.n)].clone()),
            request: Some(self.pick_request()),
            term: Some(u64::MAX),
            key: (self.adv.below(2) == 0).then(|| message::TRANSFER.to_string()),
            value: Some(format!(
                "{:x}.{:x}.{:x}.{:016x}{:016x}",
                self.adv.next_u64(),
                self.adv.next_u64(),
                self.adv.next_u64(),
                self.adv.next_u64(),
                self.adv.next_u64()
            )),
        };
        json::emit(&d)
    }

    fn pick_request(&mut self) -> String {
        const NODE: [&str; 7] = [
            "APPEND_RPC",
            "APPEND_REPLY",
            "VOTE_REQUEST",
            "VOTE_ACK",
            "PRE_VOTE_REQUEST",
            "PRE_VOTE_ACK",
            auth::HELLO,
        ];
        NODE[self.adv.index(NODE.len())].to_string()
    }
}

fn cfg(id: NodeId, n: usize) -> Config {
    Config::new(id, n)
}

/// FNV-1a, folding one more record into the trace hash.
fn mix(h: u64, s: &str) -> u64 {
    let mut h = if h == 0 { 0xcbf2_9ce4_8422_2325 } else { h };
    for b in s.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// A sweep of seeds: the keyed properties for each, plus the zero-effect comparison on the
/// crash-free half. Returns a one-line summary.
pub fn campaign(start: u64, seeds: u64) -> Result<String, Vec<String>> {
    let mut failures = Vec::new();
    let (mut injected, mut hello, mut identical, mut compared) = (0u64, 0u64, 0u64, 0u64);
    for seed in start..start + seeds {
        let crashes = seed % 2 == 1;
        let p = Params {
            n: [3, 5, 7][(seed / 2 % 3) as usize],
            keyed: true,
            adversary: true,
            crashes,
            run_ms: 3_000,
        };
        let attacked = match run(seed, p) {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!("seed {seed} ({p:?}): {e}"));
                continue;
            }
        };
        injected += attacked.injected;
        hello += attacked.injected_hello;
        if !crashes {
            compared += 1;
            let quiet = Params {
                adversary: false,
                ..p
            };
            match run(seed, quiet) {
                Ok(q) if (q.trace, q.steps) == (attacked.trace, attacked.steps) => identical += 1,
                Ok(q) => failures.push(format!(
                    "seed {seed}: the adversary changed the run ({} core steps, {} without it)",
                    attacked.steps, q.steps
                )),
                Err(e) => failures.push(format!("seed {seed} without the adversary: {e}")),
            }
        }
    }
    if !failures.is_empty() {
        return Err(failures);
    }
    Ok(format!(
        "adversary: {seeds} seeds, {injected} datagrams injected, 0 reached a core \
         ({hello} were announcements read for an epoch); {identical}/{compared} crash-free runs \
         identical step for step to the same seed without the adversary"
    ))
}
