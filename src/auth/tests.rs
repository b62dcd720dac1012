//! The guard's rules, one test each, on datagrams built the way the runtime builds them.
use super::*;

fn names() -> Vec<String> {
    (1..=3).map(|i| format!("Node{i}")).collect()
}

fn guard(me: usize, epoch: u64, key: &[u8], previous: Option<&[u8]>) -> Guard {
    Guard::new(Keys::new(key, previous), names(), me, epoch, 50, 0)
}

fn append(from: &str, term: u64) -> Datagram {
    Datagram {
        sender_name: Some(from.to_string()),
        request: Some("APPEND_RPC".to_string()),
        term: Some(term),
        key: None,
        value: None,
    }
}

/// Node1 (epoch 100) and Node2 (epoch 200) that have exchanged announcements.
fn pair() -> (Guard, Guard) {
    let mut a = guard(0, 100, b"k", None);
    let mut b = guard(1, 200, b"k", None);
    introduce(&mut a, &mut b);
    (a, b)
}

/// Each side's announcement delivered to the other (at a time when every one is due).
fn introduce(a: &mut Guard, b: &mut Guard) {
    const LATER: u64 = 1_000_000;
    let (ai, bi) = (a.me, b.me);
    for (to, d) in a.due_hellos(LATER) {
        if to == bi {
            assert_eq!(b.open(ai, &d, LATER), Verdict::Hello);
        }
    }
    for (to, d) in b.due_hellos(LATER) {
        if to == ai {
            assert_eq!(a.open(bi, &d, LATER), Verdict::Hello);
        }
    }
}

/// `g`'s announcement to peer `to`, due at `now`.
fn hello_to(g: &mut Guard, to: usize, now: u64) -> Datagram {
    let found = g.due_hellos(now).into_iter().find(|(t, _)| *t == to);
    found.expect("an announcement to that peer is due").1
}

fn sealed(g: &mut Guard, to: usize, d: &Datagram) -> Datagram {
    let mut d = d.clone();
    g.seal(to, &mut d);
    d
}

#[test]
fn a_sealed_datagram_is_delivered_once() {
    let (mut a, mut b) = pair();
    let d = sealed(&mut a, 1, &append("Node1", 3));
    assert_eq!(b.open(0, &d, 1), Verdict::Deliver);
    assert_eq!(b.open(0, &d, 2), Verdict::Drop(Reject::Replay));
}

#[test]
fn the_value_is_epoch_counter_seen_and_a_128_bit_tag() {
    let (mut a, _) = pair();
    let d = sealed(&mut a, 1, &append("Node1", 3));
    let v = d.value.unwrap();
    let parts: Vec<&str> = v.split('.').collect();
    assert_eq!(parts.len(), 4, "{v}");
    assert_eq!(parts[0], "64"); // 100
    assert_eq!(parts[2], "c8"); // 200, Node2's epoch as Node1 knows it
    assert_eq!(parts[3].len(), 32);
}

#[test]
fn every_field_that_matters_is_covered() {
    let (mut a, mut b) = pair();
    let d = sealed(&mut a, 1, &append("Node1", 3));
    let mut changed = Vec::new();
    let mut x = d.clone();
    x.term = Some(u64::MAX);
    changed.push(x);
    let mut x = d.clone();
    x.request = Some("VOTE_REQUEST".into());
    changed.push(x);
    let mut x = d.clone();
    x.key = Some("TRANSFER".into());
    changed.push(x);
    let mut x = d.clone();
    x.term = None;
    changed.push(x);
    for field in [0, 1, 2] {
        // Raise one of the three numbers by one, keeping the tag.
        let v = d.value.clone().unwrap();
        let mut parts: Vec<String> = v.split('.').map(String::from).collect();
        let n = u64::from_str_radix(&parts[field], 16).unwrap() + 1;
        parts[field] = format!("{n:x}");
        let mut x = d.clone();
        x.value = Some(parts.join("."));
        changed.push(x);
    }
    for x in &changed {
        assert_eq!(b.open(0, x, 1), Verdict::Drop(Reject::BadMac), "{x:?}");
    }
    // None of those changed anything: the original is still fresh.
    assert_eq!(b.open(0, &d, 1), Verdict::Deliver);
}

#[test]
fn the_receivers_name_is_covered_so_a_datagram_cannot_be_reflected() {
    let mut a = guard(0, 100, b"k", None);
    let mut b = guard(1, 200, b"k", None);
    let mut c = guard(2, 300, b"k", None);
    introduce(&mut a, &mut b);
    introduce(&mut a, &mut c);
    let to_b = sealed(&mut a, 1, &append("Node1", 3));
    assert_eq!(c.open(0, &to_b, 1), Verdict::Drop(Reject::BadMac));
    // Nor can it be passed off as coming from someone else.
    let mut as_c = to_b.clone();
    as_c.sender_name = Some("Node3".into());
    assert_eq!(b.open(2, &as_c, 1), Verdict::Drop(Reject::BadMac));
}

#[test]
fn a_wrong_key_or_no_tag_is_bad_mac() {
    let (mut a, _) = pair();
    let mut other = guard(1, 200, b"other key", None);
    let d = sealed(&mut a, 1, &append("Node1", 3));
    assert_eq!(other.open(0, &d, 1), Verdict::Drop(Reject::BadMac));
    for v in [
        None,
        Some(""),
        Some("1.2.3"),
        Some("1.2.3.zz"),
        Some("x.y.z.w.v"),
    ] {
        let mut x = d.clone();
        x.value = v.map(String::from);
        assert_eq!(other.open(0, &x, 1), Verdict::Drop(Reject::BadMac));
    }
}

#[test]
fn a_datagram_made_before_the_receiver_restarted_is_not_delivered() {
    let (mut a, _) = pair();
    let old = sealed(&mut a, 1, &append("Node1", 3));
    // Node2 restarts with a later epoch and hears the capture before Node1 learns the new epoch.
    let mut b2 = guard(1, 201, b"k", None);
    assert_eq!(b2.open(0, &old, 1), Verdict::Drop(Reject::OldBoot));
    introduce(&mut a, &mut b2);
    assert_eq!(b2.open(0, &old, 2), Verdict::Drop(Reject::OldBoot));
    let new = sealed(&mut a, 1, &append("Node1", 3));
    assert_eq!(b2.open(0, &new, 3), Verdict::Deliver);
}

#[test]
fn a_datagram_from_an_older_incarnation_of_the_sender_is_stale() {
    let (mut a, mut b) = pair();
    let old = sealed(&mut a, 1, &append("Node1", 3));
    // Node1 restarts (epoch 150 > 100) before `old` arrives.
    let mut a2 = guard(0, 150, b"k", None);
    introduce(&mut a2, &mut b);
    assert_eq!(b.open(0, &old, 1), Verdict::Drop(Reject::StaleEpoch));
    let new = sealed(&mut a2, 1, &append("Node1", 3));
    assert_eq!(b.open(0, &new, 2), Verdict::Deliver);
}

#[test]
fn an_older_counter_after_a_newer_one_is_a_replay() {
    let (mut a, mut b) = pair();
    let first = sealed(&mut a, 1, &append("Node1", 3));
    let second = sealed(&mut a, 1, &append("Node1", 3));
    assert_eq!(b.open(0, &second, 1), Verdict::Deliver);
    assert_eq!(b.open(0, &first, 1), Verdict::Drop(Reject::Replay));
}

#[test]
fn announcements_repeat_with_backoff_until_the_peer_shows_it_knows_us() {
    let mut a = guard(0, 100, b"k", None);
    let mut b = guard(1, 200, b"k", None);
    assert_eq!(a.deadline(), Some(0));
    let first: Vec<usize> = a.due_hellos(0).into_iter().map(|(to, _)| to).collect();
    assert_eq!(first, vec![1, 2]);
    assert_eq!(a.deadline(), Some(50));
    assert!(a.due_hellos(49).is_empty());
    assert_eq!(a.due_hellos(50).len(), 2);
    assert_eq!(a.deadline(), Some(150)); // 50 + 100: doubled
                                         // Node2 learns Node1's epoch and answers with a datagram Node1 delivers: no more to Node2.
    for (to, d) in a.due_hellos(150) {
        if to == 1 {
            assert_eq!(b.open(0, &d, 150), Verdict::Hello);
        }
    }
    for (to, d) in b.due_hellos(150) {
        if to == 0 {
            assert_eq!(a.open(1, &d, 150), Verdict::Hello);
        }
    }
    let reply = sealed(&mut b, 0, &append("Node2", 1));
    assert_eq!(a.open(1, &reply, 151), Verdict::Deliver);
    let later: Vec<usize> = a.due_hellos(10_000).into_iter().map(|(to, _)| to).collect();
    assert_eq!(later, vec![2]);
}

#[test]
fn a_peer_that_shows_it_does_not_know_us_is_told_at_once() {
    let mut a = guard(0, 100, b"k", None);
    let mut b = guard(1, 200, b"k", None);
    // Node1's first two announcements are lost (Node2 could not yet tell its address).
    assert_eq!(a.due_hellos(0).len(), 2);
    assert_eq!(a.due_hellos(50).len(), 2);
    assert_eq!(a.deadline(), Some(150));
    // Node2's announcement arrives: it does not know Node1's epoch, so Node1 answers now.
    let hello_b = hello_to(&mut b, 0, 60);
    assert_eq!(a.open(1, &hello_b, 60), Verdict::Hello);
    assert_eq!(a.deadline(), Some(60));
    let answer: Vec<(usize, Datagram)> = a.due_hellos(60);
    assert_eq!(
        answer.iter().map(|(to, _)| *to).collect::<Vec<_>>(),
        vec![1]
    );
    let early = sealed(&mut b, 0, &append("Node2", 1)); // held up in the network
    assert_eq!(b.open(0, &answer[0].1, 61), Verdict::Hello);
    // Both now know each other: Node2's next message is delivered at once.
    let vote = sealed(&mut b, 0, &append("Node2", 1));
    assert_eq!(a.open(1, &vote, 62), Verdict::Deliver);
    // A replay of Node2's announcement does not make Node1 announce again.
    assert_eq!(a.open(1, &hello_b, 63), Verdict::Hello);
    assert!(a.due_hellos(63).is_empty());
    // Nor does a datagram Node2 made before it knew Node1, arriving after a newer one.
    assert_eq!(a.open(1, &early, 64), Verdict::Drop(Reject::OldBoot));
    assert!(a.due_hellos(64).is_empty());
}

#[test]
fn a_peer_whose_address_appears_is_told_at_once() {
    let mut a = guard(0, 100, b"k", None);
    for now in [0, 50, 150] {
        assert_eq!(a.due_hellos(now).len(), 2); // sent to no address: lost
    }
    assert_eq!(a.deadline(), Some(350));
    a.reachable(1, 200);
    assert_eq!(a.deadline(), Some(200));
    let sent: Vec<usize> = a.due_hellos(200).into_iter().map(|(to, _)| to).collect();
    assert_eq!(sent, vec![1]);
    // The backoff starts again, for Node2 only.
    assert_eq!(a.deadline(), Some(250));
    // A peer that already knows us gets nothing new.
    let (mut a, mut b) = pair();
    let d = sealed(&mut b, 0, &append("Node2", 1));
    assert_eq!(a.open(1, &d, 1), Verdict::Deliver);
    a.reachable(1, 2);
    assert!(a.due_hellos(2).iter().all(|(to, _)| *to != 1));
}

#[test]
fn a_replayed_announcement_changes_nothing() {
    let mut a = guard(0, 100, b"k", None);
    let mut b = guard(1, 200, b"k", None);
    let hello_old: Datagram = hello_to(&mut a, 1, 0);
    assert_eq!(b.open(0, &hello_old, 0), Verdict::Hello);
    // Node1 restarts; its new announcement is heard; then the old one is replayed.
    let mut a2 = guard(0, 150, b"k", None);
    let hello_new = hello_to(&mut a2, 1, 0);
    assert_eq!(b.open(0, &hello_new, 1), Verdict::Hello);
    assert_eq!(b.open(0, &hello_old, 2), Verdict::Drop(Reject::StaleEpoch));
    // Node2 still addresses the new incarnation.
    let to_a2 = sealed(&mut b, 0, &append("Node2", 1));
    for (to, d) in b.due_hellos(3) {
        if to == 0 {
            a2.open(1, &d, 3);
        }
    }
    assert_eq!(a2.open(1, &to_a2, 4), Verdict::Deliver);
}

#[test]
fn rotation_a_node_with_the_new_key_speaks_the_old_one_to_a_peer_that_does() {
    // Node1 restarted with the new key (old one still accepted); Node2 has only the old one.
    let mut a = guard(0, 100, b"new", Some(b"old"));
    let mut b = guard(1, 200, b"old", None);
    let hello_a = hello_to(&mut a, 1, 0);
    assert_eq!(b.open(0, &hello_a, 0), Verdict::Drop(Reject::BadMac));
    let hello_b = hello_to(&mut b, 0, 0);
    assert_eq!(a.open(1, &hello_b, 0), Verdict::Hello);
    // From now on Node1 signs for Node2 with the old key.
    let d = sealed(&mut a, 1, &append("Node1", 2));
    assert_eq!(b.open(0, &d, 1), Verdict::Deliver);
    let back = sealed(&mut b, 0, &append("Node2", 2));
    assert_eq!(a.open(1, &back, 1), Verdict::Deliver);
}

#[test]
fn rotation_two_nodes_with_the_new_key_speak_it() {
    let mut a = guard(0, 100, b"new", Some(b"old"));
    let mut b = guard(1, 200, b"new", None);
    introduce(&mut a, &mut b);
    let d = sealed(&mut a, 1, &append("Node1", 2));
    assert_eq!(b.open(0, &d, 1), Verdict::Deliver);
    let back = sealed(&mut b, 0, &append("Node2", 2));
    assert_eq!(a.open(1, &back, 1), Verdict::Deliver);
}

#[test]
fn a_forged_datagram_changes_no_state() {
    let (mut a, mut b) = pair();
    let before = format!("{:?}", b.peers);
    let mut rng = crate::election::Rng::new(7);
    for _ in 0..1000 {
        let mut d = append("Node1", rng.next_u64());
        let e = rng.next_u64();
        d.value = Some(format!(
            "{e:x}.{:x}.c8.{:032x}",
            rng.next_u64(),
            rng.next_u64() as u128
        ));
        assert_eq!(b.open(0, &d, 1), Verdict::Drop(Reject::BadMac));
    }
    assert_eq!(format!("{:?}", b.peers), before);
    let real = sealed(&mut a, 1, &append("Node1", 3));
    assert_eq!(b.open(0, &real, 1), Verdict::Deliver);
}

#[test]
fn debug_of_keys_shows_no_key_material() {
    let k = format!("{:?}", Keys::new(b"hunter2", Some(b"swordfish")));
    assert!(!k.contains("hunter2") && !k.contains("swordfish"), "{k}");
}
