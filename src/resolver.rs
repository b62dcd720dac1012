//! Peer addresses: names resolved off the election loop, refreshed, and used to check sources.
//! Owns the lookup thread and the address book; must never block the election loop on a lookup.
//!
//! A name lookup can block for seconds (a stopped container's name is unknown to Docker's DNS,
//! which then asks upstream servers that may never answer). The election loop must never wait
//! for that, so lookups run on one helper thread that only ever hands addresses back; the loop
//! keeps using the last good address meanwhile. IP literals never go near the resolver.
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::mpsc::{channel, Receiver, Sender};

/// How long a resolved address is trusted before it is looked up again.
pub const REFRESH_MS: u64 = 3000;
/// After an address mismatch, the earliest time a name is looked up again.
const RETRY_MS: u64 = 200;

struct Entry {
    host: String,
    port: u16,
    addrs: Vec<SocketAddr>,
    literal: bool,
    asked_at: Option<u64>,
    pending: bool,
}

type Answer = (usize, io::Result<Vec<SocketAddr>>);

pub struct AddressBook {
    entries: Vec<Entry>,
    want_v4: bool,
    requests: Option<Sender<(usize, String, u16)>>,
    answers: Receiver<Answer>,
}

/// A change worth a log line.
pub struct Change {
    pub index: usize,
    pub addrs: Result<Vec<SocketAddr>, String>,
}

impl AddressBook {
    /// `targets` are `(host, port)`; `want_v4` picks the family our socket can send to.
    pub fn new(targets: &[(String, u16)], want_v4: bool) -> AddressBook {
        let entries: Vec<Entry> = targets
            .iter()
            .map(|(host, port)| {
                let literal = host.parse::<std::net::IpAddr>().ok();
                Entry {
                    host: host.clone(),
                    port: *port,
                    addrs: literal
                        .map(|ip| SocketAddr::new(ip, *port))
                        .into_iter()
                        .collect(),
                    literal: literal.is_some(),
                    asked_at: None,
                    pending: false,
                }
            })
            .collect();
        let (answer_tx, answers) = channel::<Answer>();
        let requests = entries
            .iter()
            .any(|e| !e.literal)
            .then(|| spawn_resolver(answer_tx));
        let mut book = AddressBook {
            entries,
            want_v4,
            requests,
            answers,
        };
        // Ask for every name now, so the first election's messages already have somewhere to go.
        for i in 0..book.entries.len() {
            book.refresh(i, 0, 0);
        }
        book
    }

    /// How old an entry may get: a name that has never resolved (its container is not up yet)
    /// is asked for again soon.
    fn max_age(&self, i: usize) -> u64 {
        match self.entries.get(i) {
            Some(e) if e.addrs.is_empty() => RETRY_MS,
            _ => REFRESH_MS,
        }
    }

    /// The address to send to, asking for a fresh lookup when the known one is old.
    pub fn addr(&mut self, i: usize, now: u64) -> Option<SocketAddr> {
        self.refresh(i, now, self.max_age(i));
        let want_v4 = self.want_v4;
        let e = self.entries.get(i)?;
        e.addrs.iter().copied().find(|a| a.is_ipv4() == want_v4)
    }

    /// Is `src` an address entry `i` is known to have? (No lookup is started.)
    pub fn known(&self, i: usize, src: SocketAddr) -> bool {
        self.entries.get(i).is_some_and(|e| e.addrs.contains(&src))
    }

    /// One bit for each of the first `n` entries (at most 64) known to have `src`.
    pub fn members_at(&self, src: SocketAddr, n: usize) -> u64 {
        (0..n.min(u64::BITS as usize))
            .filter(|&i| self.known(i, src))
            .fold(0, |bits, i| bits | 1 << i)
    }

    /// Looks up again every name whose address is older than it may get, used or not: a
    /// follower sends to its leader alone, yet must know where every peer is now when it
    /// campaigns (Swarm restarts a task at a new address). Cheap: a comparison per name, a
    /// lookup per name every `REFRESH_MS` at most.
    pub fn refresh_stale(&mut self, now: u64) {
        for i in 0..self.entries.len() {
            self.refresh(i, now, self.max_age(i));
        }
    }

    /// A datagram named entry `i` as its sender from an address it is not known to have: look
    /// the name up again soon, so a peer that came back elsewhere is recognised after one round
    /// trip.
    pub fn recheck(&mut self, i: usize, now: u64) {
        self.refresh(i, now, RETRY_MS);
    }

    /// Does `ip` belong to entry `i` (any port)?
    pub fn has_ip(&mut self, i: usize, ip: std::net::IpAddr, now: u64) -> bool {
        self.refresh(i, now, self.max_age(i));
        self.entries
            .get(i)
            .is_some_and(|e| e.addrs.iter().any(|a| a.ip() == ip))
    }

    fn refresh(&mut self, i: usize, now: u64, max_age: u64) {
        let Some(tx) = &self.requests else { return };
        let Some(e) = self.entries.get_mut(i) else {
            return;
        };
        let stale = e.asked_at.is_none_or(|t| now >= t + max_age);
        if e.literal || e.pending || !stale {
            return;
        }
        e.pending = tx.send((i, e.host.clone(), e.port)).is_ok();
        e.asked_at = Some(now);
    }

    /// Take in finished lookups; returns those that changed what we know.
    pub fn poll(&mut self) -> Vec<Change> {
        let mut changes = Vec::new();
        while let Ok((i, result)) = self.answers.try_recv() {
            let Some(e) = self.entries.get_mut(i) else {
                continue;
            };
            e.pending = false;
            match result {
                Ok(addrs) if !addrs.is_empty() => {
                    if addrs != e.addrs {
                        e.addrs = addrs.clone();
                        changes.push(Change {
                            index: i,
                            addrs: Ok(addrs),
                        });
                    }
                }
                // Keep the last good address: a stopped peer often returns at the same one.
                Ok(_) => changes.push(Change {
                    index: i,
                    addrs: Err("no address".into()),
                }),
                Err(err) => changes.push(Change {
                    index: i,
                    addrs: Err(err.to_string()),
                }),
            }
        }
        changes
    }
}

fn spawn_resolver(answers: Sender<Answer>) -> Sender<(usize, String, u16)> {
    let (tx, rx) = channel::<(usize, String, u16)>();
    let spawned = std::thread::Builder::new()
        .name("resolver".into())
        .spawn(move || {
            for (i, host, port) in rx {
                let result = (host.as_str(), port).to_socket_addrs().map(|a| a.collect());
                if answers.send((i, result)).is_err() {
                    return;
                }
            }
        });
    if spawned.is_err() {
        eprintln!(
            "t={} event=warning msg=\"cannot start the resolver thread; names will not resolve\"",
            crate::log::wall_clock()
        );
    }
    tx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_literals_need_no_lookup_and_check_sources_exactly() {
        let mut book = AddressBook::new(&[("127.0.0.11".into(), 5555), ("::1".into(), 7)], true);
        assert!(book.requests.is_none());
        assert_eq!(book.addr(0, 0), Some("127.0.0.11:5555".parse().unwrap()));
        assert_eq!(
            book.addr(1, 0),
            None,
            "an IPv6 peer is unreachable from an IPv4 socket"
        );
        let at = |a: &str| book.members_at(a.parse().unwrap(), 2);
        assert_eq!(at("127.0.0.11:5555"), 0b01);
        assert_eq!(at("127.0.0.11:5556"), 0);
        assert_eq!(at("127.0.0.12:5555"), 0);
        assert_eq!(book.members_at("127.0.0.11:5555".parse().unwrap(), 0), 0);
        assert!(!book.known(9, "127.0.0.11:5555".parse().unwrap()));
    }

    #[test]
    fn names_resolve_in_the_background() {
        let mut book = AddressBook::new(&[("localhost".into(), 5555)], true);
        // The lookup started when the book was made; nothing waited for it.
        let mut got = None;
        for _ in 0..500 {
            book.poll();
            got = book.addr(0, 1);
            if got.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(got.map(|a| a.port()), Some(5555));
        assert!(got.is_some_and(|a| a.ip().is_loopback()));
    }

    /// A name is looked up again once its address is `REFRESH_MS` old, whether or not anything
    /// was sent to it (a follower sends to its leader alone), and not before.
    #[test]
    fn every_name_is_looked_up_again_when_stale_used_or_not() {
        let mut book = AddressBook::new(&[("localhost".into(), 5555)], true);
        for _ in 0..500 {
            book.poll();
            if !book.entries[0].pending {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(book.entries[0].asked_at, Some(0));
        book.refresh_stale(REFRESH_MS - 1);
        assert_eq!(book.entries[0].asked_at, Some(0), "not stale yet");
        book.refresh_stale(REFRESH_MS);
        assert_eq!(book.entries[0].asked_at, Some(REFRESH_MS));
        assert!(book.entries[0].pending);
    }
}
