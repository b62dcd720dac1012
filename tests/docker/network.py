#!/usr/bin/env python3
"""Elections that survive real networks: named scenarios against the real image.

    PYTHONPATH=Controller python3 tests/docker/network.py      # after `make image`; run by `make docker-test`

Each scenario runs in a throwaway 5-node compose project (cluster.py) and is judged by the
nodes' LEADER_INFO answers and their own logs. Link faults use tc inside a container's network
namespace (faults.py; root and nsenter needed). Figures are printed; assertions are about who
leads and which terms change, never about speed, except generous "eventually" bounds.
Without a Docker daemon: skipped (exit 0), unless CI=true. Ends with "N passed, M failed".
"""
import json
import subprocess
import sys
import time

import raftkit
from cluster import expect, main_guard, preflight, summary, with_cluster
from faults import Net, ensure_tc

ELECTION_MAX_S = 0.3  # the nodes' default election timeout is 150-300 ms


def count(evs, event):
    return sum(1 for recs in evs.values() for r in recs if r.get("event") == event)


def observe(c, names, seconds):
    """Poll LEADER_INFO of `names` for `seconds`: the (leader, term) pairs their answers named."""
    seen, t_end = set(), time.monotonic() + seconds
    while time.monotonic() < t_end:
        for n, r in c.ask(names, wait=0.2).items():
            seen.add((r.get("value"), r.get("term")) if r else (None, f"{n} silent"))
        time.sleep(0.05)
    return seen


# ---- disruptive rejoin --------------------------------------------------------------------------
def disruptive_rejoin(c, how):
    """A follower cut off (network disconnect, or docker pause) for 10 election timeouts comes
    back: the others' term does not change and the leader stays (PreVote + leader stickiness)."""
    leader, _, replies = c.wait_leader()
    term = replies[leader]["term"]
    follower = next(n for n in c.names if n != leader)
    others = [n for n in c.names if n != follower]
    before = c.events(others)
    cut, heal = (c.disconnect, c.connect) if how == "disconnect" else \
        (lambda n: c.docker("pause", n), lambda n: c.docker("unpause", n))
    cut(follower)
    try:
        during = observe(c, others, 10 * ELECTION_MAX_S)
    finally:
        heal(follower)
    final, secs, replies = c.wait_leader(timeout=15)
    rejoined = replies[follower]["term"]
    after = observe(c, others, 3.0)
    evs = c.events(others)
    print(f"   {how} {follower} for {10 * ELECTION_MAX_S:.0f} s: the others named {sorted(during | after, key=str)} "
          f"during and 3 s after; {follower} follows {final} in term {rejoined} "
          f"{secs:.2f} s after {'reconnect' if how == 'disconnect' else 'unpause'}")
    expect(during | after == {(leader, term)}, f"the others named {during | after}, not only ({leader}, {term})")
    expect(count(evs, "term") == count(before, "term"), "another node's term changed")
    expect(final == leader and rejoined == term,
           f"after rejoining: leader {final}, {follower} in term {rejoined} (was {term})")


# ---- leader in a minority -------------------------------------------------------------------------
# Runs in the isolated leader's network namespace: asks it over loopback every 10 ms and prints
# the wall-clock time and answer whenever the answer changes.
WATCH_SELF = r"""
import json, socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(0.05)
last, end = None, time.time() + float(sys.argv[2])
print("ready", flush=True)
while time.time() < end:
    s.sendto(sys.argv[1].encode(), ("127.0.0.1", 5555))
    try:
        r = json.loads(s.recvfrom(2048)[0])
        now = (r.get("value"), r.get("term"))
        if now != last:
            print(json.dumps([time.time(), *now]), flush=True); last = now
    except OSError:
        pass
    time.sleep(0.01)
"""


def leader_in_minority(c):
    """Disconnect the leader: it stops naming itself within about one election timeout
    (CheckQuorum), the majority elects a new leader, and after reconnecting the old one follows."""
    leader, _, replies = c.wait_leader()
    term = replies[leader]["term"]
    watcher = subprocess.Popen(["nsenter", "-t", str(c.pid(leader)), "-n", sys.executable, "-c", WATCH_SELF,
                                raftkit.encode(raftkit.make_message("LEADER_INFO")).decode(), "8"],
                               stdout=subprocess.PIPE, text=True)
    try:
        expect(watcher.stdout.readline().strip() == "ready", "the watcher did not start")
        time.sleep(0.3)
        t_cut = time.time()
        c.disconnect(leader)
        others = [n for n in c.names if n != leader]
        try:
            new, secs, replies = c.wait_leader(among=others)
            print(f"   disconnect {leader} (term {term}): {new} leads term {replies[new]['term']} "
                  f"for the other {len(others)} after {secs:.2f} s")
        finally:
            out, _ = watcher.communicate(timeout=30)
            c.connect(leader)
    finally:
        watcher.kill()
    changes = [json.loads(line) for line in out.splitlines()]
    stepped = next((t - t_cut for t, value, _ in changes if t > t_cut and value != leader), None)
    print(f"   {leader}'s own answers over loopback after the cut: "
          + ", ".join(f"+{t - t_cut:.3f} s {v} (term {tm})" for t, v, tm in changes if t > t_cut))
    expect(stepped is not None, f"{leader} named itself for 8 s after losing its majority")
    print(f"   {leader} stopped naming itself {stepped * 1000:.0f} ms after the disconnect "
          f"(election timeout {ELECTION_MAX_S * 1000:.0f} ms at most)")
    final, secs, replies = c.wait_leader(timeout=15)
    print(f"   reconnect {leader}: all agree on {final} after {secs:.2f} s, {leader} in term {replies[leader]['term']}")
    expect(final == new, f"after reconnecting, {final} leads, not {new}")


# ---- partial connectivity -----------------------------------------------------------------------
def one_link_down(c, pick):
    """Drop all traffic between two nodes, both directions (egress filters in each one's
    namespace), for 10 s: count elections and term changes in the whole cluster."""
    net = Net(c)
    leader, _, replies = c.wait_leader()
    term = replies[leader]["term"]
    a, b = pick(leader)
    before = c.events()
    net.drop_to(a, [c.ip(b)])
    net.drop_to(b, [c.ip(a)])
    try:
        seen = observe(c, c.names, 10.0)
    finally:
        net.clear(a)
        net.clear(b)
    evs = c.events()
    elections, terms = count(evs, "elected") - count(before, "elected"), count(evs, "term") - count(before, "term")
    final, _, replies = c.wait_leader(timeout=15)
    print(f"   link {a}<->{b} down for 10 s (leader {leader}, term {term}): {elections} elections, "
          f"{terms} term changes; answers seen {sorted(seen, key=str)}; afterwards {final} leads term "
          f"{replies[final]['term']}")
    return leader, final, elections


def link_between_followers(c):
    leader, final, elections = one_link_down(c, lambda ldr: [n for n in c.names if n != ldr][:2])
    expect(elections <= 1, f"{elections} elections in 10 s, leader {leader} -> {final}")


def link_leader_follower(c):
    """Reported, not asserted beyond safety: a follower that cannot hear the leader but reaches
    everyone else (PreVote + stickiness should keep it from deposing the leader)."""
    one_link_down(c, lambda ldr: [ldr, next(n for n in c.names if n != ldr)])


# ---- TIMEOUT on a follower ------------------------------------------------------------------------
def timeout_on_follower(c):
    leader, _, replies = c.wait_leader()
    term = replies[leader]["term"]
    follower = next(n for n in reversed(c.names) if n != leader)
    c.ctl("timeout", follower)
    new, secs, replies = c.wait_leader(want=follower)
    print(f"   timeout {follower} (leader {leader}, term {term}): {new} leads term "
          f"{replies[new]['term']} after {secs:.2f} s")
    expect(replies[new]["term"] == term + 1, f"{new} leads term {replies[new]['term']}, not {term + 1}")


def main():
    stop = preflight("network tests")
    if stop is not None:
        return stop
    ensure_tc()
    with_cluster(5, [("disruptive rejoin: disconnect a follower", lambda c: disruptive_rejoin(c, "disconnect")),
                     ("disruptive rejoin: docker pause a follower", lambda c: disruptive_rejoin(c, "pause")),
                     ("leader in a minority", leader_in_minority),
                     ("partial connectivity: link between two followers", link_between_followers),
                     ("partial connectivity: link leader-follower (reported)", link_leader_follower),
                     ("TIMEOUT on a follower", timeout_on_follower)])
    return summary()


if __name__ == "__main__":
    main_guard(main)
