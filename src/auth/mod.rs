//! Authenticated node messages under a cluster key: a wire concern, outside the election core.
//!
//! The runtime asks a [`Guard`] to `seal` every node datagram it sends and to `open` every node
//! datagram it receives, before the core sees it. The guard is sans-IO like the core (time comes
//! in as milliseconds, the boot epoch as an argument), so the simulator runs the very same code.
//! It never reads a clock, a socket or a file, never logs, and never holds a key in a form that
//! `Debug` would print.
//!
//! **What a sealed datagram carries.** The course's five fields, with `value` set to
//! `EPOCH.COUNTER.SEEN.TAG` (lower-case hex): the sender's boot epoch, a counter the sender
//! raises for every datagram it seals, the receiver's boot epoch as the sender last learned it,
//! and the first 128 bits of HMAC-SHA-256 over the sender's and receiver's names, `request`,
//! `term`, `key` and those three numbers, each field length-prefixed.
//!
//! **Freshness.** A datagram reaches the core only if its tag verifies under one of the node's
//! keys, `SEEN` is this node's own current epoch (so it was made after this node last started),
//! `EPOCH` is the newest epoch seen from that sender (its newest incarnation), and `COUNTER` is
//! above every counter already delivered from that epoch. Epochs grow with every start (see
//! [`epoch`]). A node learns a peer's epoch from any datagram whose tag verifies, and announces
//! its own with `AUTH_HELLO` (sent at start, then with backoff, until the peer shows it knows
//! the epoch). The argument is in README.md ("Threat model").
pub mod epoch;
pub mod hmac;
pub mod keyfile;
pub mod sha256;

use crate::json::Datagram;
use hmac::{ct_eq, HmacKey};

/// `request` of the epoch announcement. Only nodes with a key send or accept it.
pub const HELLO: &str = crate::message::Request::AuthHello.name();
/// Bytes of the HMAC-SHA-256 tag carried (128 bits).
pub const TAG_LEN: usize = 16;
/// Domain separation: a tag made for anything else never verifies here.
const DOMAIN: &[u8] = b"raft-node-message-v1";
/// The longest wait between two announcements to a peer that has not answered yet.
const HELLO_BACKOFF_MAX_MS: u64 = 2_000;

/// The cluster key and, during a rotation, the one before it. `Debug` prints no key material.
#[derive(Clone, Debug)]
pub struct Keys {
    current: HmacKey,
    previous: Option<HmacKey>,
}

impl Keys {
    pub fn new(current: &[u8], previous: Option<&[u8]>) -> Keys {
        Keys {
            current: HmacKey::new(current),
            previous: previous.map(HmacKey::new),
        }
    }
}

/// Which of the two keys a peer speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Which {
    Current,
    Previous,
}

/// Why a datagram did not reach the core. `as_str` is the `reason=` of its log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reject {
    /// No tag, a malformed one, or one that verifies under none of our keys.
    BadMac,
    /// From an incarnation of the sender older than one already heard from.
    StaleEpoch,
    /// Made before this node's current start (or before the sender learned of it).
    OldBoot,
    /// A counter already delivered (a duplicate or a replay) or older than one delivered.
    Replay,
}

impl Reject {
    pub fn as_str(self) -> &'static str {
        match self {
            Reject::BadMac => "bad-mac",
            Reject::StaleEpoch => "stale-epoch",
            Reject::OldBoot => "old-boot",
            Reject::Replay => "replay",
        }
    }

    /// The `detail=` of its log line: what the reason means for the operator.
    pub fn explain(self) -> &'static str {
        match self {
            Reject::BadMac => {
                "no tag that verifies under this node's cluster key(s): a different key, or forged"
            }
            Reject::StaleEpoch => "from an earlier start of the sender",
            Reject::OldBoot => {
                "made before this node's current start (or the sender has not learned it yet)"
            }
            Reject::Replay => "already delivered or older than one delivered",
        }
    }
}

/// The outcome of [`Guard::open`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Authentic and fresh: hand it to the core.
    Deliver,
    /// An authentic `AUTH_HELLO`: the peer's epoch is learned; nothing for the core.
    Hello,
    Drop(Reject),
}

/// What this node knows of one peer.
#[derive(Clone, Debug)]
struct PeerState {
    /// The newest epoch seen from the peer with a valid tag (0: none yet).
    epoch: u64,
    /// The highest counter delivered from `epoch`.
    delivered: u64,
    /// The key the peer speaks, as far as we know.
    key: Which,
    /// The peer has shown it knows our epoch (a datagram from it was delivered).
    knows_us: bool,
    /// The highest counter (of `epoch`) of a datagram that showed the peer does not know our
    /// epoch and so moved the next announcement to it forward: each such datagram does it once.
    prompted: u64,
    next_hello: Option<u64>,
    backoff_ms: u64,
}

/// The fields a tag covers, parsed from `value`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Seal {
    epoch: u64,
    counter: u64,
    seen: u64,
    tag: [u8; TAG_LEN],
}

pub struct Guard {
    keys: Keys,
    names: Vec<String>,
    me: usize,
    epoch: u64,
    counter: u64,
    hello_ms: u64,
    peers: Vec<PeerState>,
}

impl Guard {
    /// `names` are the members in id order, `me` our index, `epoch` this start's boot epoch
    /// (above every earlier one of this node), `hello_ms` the first announcement interval.
    pub fn new(
        keys: Keys,
        names: Vec<String>,
        me: usize,
        epoch: u64,
        hello_ms: u64,
        now: u64,
    ) -> Guard {
        assert!(me < names.len(), "this node is a member");
        assert!(epoch > 0, "epochs start at 1: 0 means none heard yet");
        let hello_ms = hello_ms.max(1);
        let peers = (0..names.len())
            .map(|i| PeerState {
                epoch: 0,
                delivered: 0,
                key: Which::Current,
                knows_us: i == me,
                prompted: 0,
                next_hello: (i != me).then_some(now),
                backoff_ms: hello_ms,
            })
            .collect();
        Guard {
            keys,
            names,
            me,
            epoch,
            counter: 0,
            hello_ms,
            peers,
        }
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Sets `value` of a datagram for peer `to`.
    pub fn seal(&mut self, to: usize, d: &mut Datagram) {
        assert!(to != self.me && to < self.peers.len(), "sealed for a peer");
        self.counter += 1;
        let peer = &self.peers[to];
        let seen = peer.epoch;
        let key = self.key(peer.key);
        let tag = tag(
            key,
            &self.names[self.me],
            &self.names[to],
            d,
            self.epoch,
            self.counter,
            seen,
        );
        let seal = Seal {
            epoch: self.epoch,
            counter: self.counter,
            seen,
            tag,
        };
        d.value = Some(format_seal(&seal));
    }

    /// Checks a datagram that claims to come from peer `from` (already matched by name).
    /// Only a datagram with a valid tag changes anything here.
    pub fn open(&mut self, from: usize, d: &Datagram, now: u64) -> Verdict {
        if from == self.me || from >= self.peers.len() {
            return Verdict::Drop(Reject::BadMac);
        }
        let Some(seal) = d.value.as_deref().and_then(parse_seal) else {
            return Verdict::Drop(Reject::BadMac);
        };
        let Some(which) = self.verify(from, d, &seal) else {
            return Verdict::Drop(Reject::BadMac);
        };
        let hello_ms = self.hello_ms;
        let peer = &mut self.peers[from];
        if seal.epoch < peer.epoch {
            return Verdict::Drop(Reject::StaleEpoch);
        }
        if seal.epoch > peer.epoch {
            // The peer (re)started: it does not know our epoch until we tell it.
            *peer = PeerState {
                epoch: seal.epoch,
                delivered: 0,
                key: which,
                knows_us: false,
                prompted: 0,
                next_hello: Some(now),
                backoff_ms: hello_ms,
            };
        }
        peer.key = which;
        if seal.seen != self.epoch && seal.counter > peer.prompted.max(peer.delivered) {
            // The peer does not know our epoch, so what it sends us is dropped: tell it now
            // rather than at the end of a backoff (its announcements may have been lost while
            // we could not yet tell its address). Once per datagram it made, and never for one
            // older than a datagram already delivered, so a replay cannot make us announce
            // again.
            peer.prompted = seal.counter;
            peer.knows_us = false;
            peer.next_hello = Some(now);
            peer.backoff_ms = hello_ms;
        }
        if d.request.as_deref() == Some(HELLO) {
            return Verdict::Hello;
        }
        if seal.seen != self.epoch {
            return Verdict::Drop(Reject::OldBoot);
        }
        if seal.counter <= peer.delivered {
            return Verdict::Drop(Reject::Replay);
        }
        peer.delivered = seal.counter;
        peer.knows_us = true;
        peer.next_hello = None;
        Verdict::Deliver
    }

    /// The peer's address has just become known (or changed): if it does not know our epoch
    /// yet, announce to it now, as at start (announcements made while it had no address went
    /// nowhere, and their backoff must not delay the first one that can arrive).
    pub fn reachable(&mut self, peer: usize, now: u64) {
        let hello_ms = self.hello_ms;
        if let Some(p) = self.peers.get_mut(peer).filter(|p| !p.knows_us) {
            p.next_hello = Some(now);
            p.backoff_ms = hello_ms;
        }
    }

    /// When [`Guard::due_hellos`] next has something to send.
    pub fn deadline(&self) -> Option<u64> {
        self.peers.iter().filter_map(|p| p.next_hello).min()
    }

    /// The `AUTH_HELLO` datagrams due at `now`, sealed, with their receivers.
    pub fn due_hellos(&mut self, now: u64) -> Vec<(usize, Datagram)> {
        let mut out = Vec::new();
        for to in 0..self.peers.len() {
            let p = &mut self.peers[to];
            if p.knows_us || p.next_hello.is_none_or(|t| t > now) {
                continue;
            }
            p.next_hello = Some(now + p.backoff_ms);
            p.backoff_ms = (p.backoff_ms * 2).min(HELLO_BACKOFF_MAX_MS);
            let mut d = hello(&self.names[self.me]);
            self.seal(to, &mut d);
            out.push((to, d));
        }
        out
    }

    fn key(&self, which: Which) -> &HmacKey {
        match (which, &self.keys.previous) {
            (Which::Previous, Some(prev)) => prev,
            _ => &self.keys.current,
        }
    }

    /// The key under which the tag verifies: the one the peer is known to speak first.
    fn verify(&self, from: usize, d: &Datagram, seal: &Seal) -> Option<Which> {
        let mut order = [Which::Current, Which::Previous];
        if self.peers[from].key == Which::Previous {
            order.swap(0, 1);
        }
        order.into_iter().find(|&which| {
            if which == Which::Previous && self.keys.previous.is_none() {
                return false;
            }
            let want = tag(
                self.key(which),
                &self.names[from],
                &self.names[self.me],
                d,
                seal.epoch,
                seal.counter,
                seal.seen,
            );
            ct_eq(&want, &seal.tag)
        })
    }
}

/// An unsealed `AUTH_HELLO` from `me`.
pub fn hello(me: &str) -> Datagram {
    Datagram {
        sender_name: Some(me.to_string()),
        request: Some(HELLO.to_string()),
        term: Some(0),
        key: None,
        value: None,
    }
}

/// The truncated HMAC over everything a receiver acts on. Text fields are length-prefixed and
/// absent ones marked, so no two different datagrams share an input.
fn tag(
    key: &HmacKey,
    sender: &str,
    receiver: &str,
    d: &Datagram,
    epoch: u64,
    counter: u64,
    seen: u64,
) -> [u8; TAG_LEN] {
    let mut input = Vec::with_capacity(128);
    input.extend_from_slice(DOMAIN);
    for field in [
        Some(sender),
        Some(receiver),
        d.request.as_deref(),
        d.key.as_deref(),
    ] {
        match field {
            None => input.push(0),
            Some(s) => {
                input.push(1);
                input.extend_from_slice(&(s.len() as u64).to_be_bytes());
                input.extend_from_slice(s.as_bytes());
            }
        }
    }
    match d.term {
        None => input.push(0),
        Some(t) => {
            input.push(1);
            input.extend_from_slice(&t.to_be_bytes());
        }
    }
    for n in [epoch, counter, seen] {
        input.extend_from_slice(&n.to_be_bytes());
    }
    let full = key.mac(&[&input]);
    let mut out = [0u8; TAG_LEN];
    out.copy_from_slice(&full[..TAG_LEN]);
    out
}

fn format_seal(s: &Seal) -> String {
    format!(
        "{:x}.{:x}.{:x}.{}",
        s.epoch,
        s.counter,
        s.seen,
        sha256::hex(&s.tag)
    )
}

/// `EPOCH.COUNTER.SEEN.TAG`; anything else is `None`.
fn parse_seal(v: &str) -> Option<Seal> {
    let mut parts = v.split('.');
    let mut number = || {
        let p = parts.next()?;
        if p.is_empty() || p.len() > 16 || !p.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u64::from_str_radix(p, 16).ok()
    };
    let (epoch, counter, seen) = (number()?, number()?, number()?);
    let hex = parts.next()?;
    if parts.next().is_some() || hex.len() != 2 * TAG_LEN {
        return None;
    }
    let mut tag = [0u8; TAG_LEN];
    for (i, b) in tag.iter_mut().enumerate() {
        let pair = hex.get(2 * i..2 * i + 2)?;
        if !pair.bytes().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        *b = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(Seal {
        epoch,
        counter,
        seen,
        tag,
    })
}

#[cfg(test)]
mod tests;
