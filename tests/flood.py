#!/usr/bin/env python3
"""Hostile input flood: 100,000 malformed, oversized and forged datagrams at one node.

    PYTHONPATH=Controller python3 tests/flood.py --bin target/release/raft [--count 100000] [--rate 8000]
        [--target leader]

Starts five `raft node` processes on 127.0.9.1-5:5555 (loopback only, DATA_DIR in a temporary
folder), waits for a leader, then sends --count datagrams at --rate per second to one node
(default: the leader, the one whose silence would cost an election). The mix: random bytes,
mutated valid messages, deep nesting, huge numbers, 65,507-byte datagrams, invalid UTF-8, and
node messages with huge terms forged from a stranger's address. The pace leaves the 2-core
machine room for the nodes: this measures robustness, not CPU starvation.

Last, when run as root, one APPEND_RPC with term 2^64-1 whose source address is forged as a
peer's (raw socket): a peer's word is trusted, so the cluster moves to that term and can elect
nobody after it, but no node may crash, stop answering, or let its term go down (wrap).

With --key (CLUSTER_KEY on every node), a fifth of the flood is node messages carrying made-up
or altered tags, sent as root from the named peers' own addresses (raw socket), so they pass
the source check and meet the MAC; then the term-2^64-1 forgery must change nothing; then the
cluster's own traffic, captured on `lo` (AF_PACKET), is replayed from the original senders'
addresses, first to everyone while the leader lives (nothing may change), then after the
leader is killed, its heartbeats again and again (another leader must still be elected).

Asserted: every process is still alive, every node answers LEADER_INFO after the flood, the
cluster agrees on a leader, and the target's VmRSS grew by less than 1 MiB; with --key also
that the flood caused no election and left leader and term as they were (the keyed run sends
no 64 KiB datagrams: see `main`). Reported: whether
the leader and the term stayed the same (timing-sensitive under load, so not asserted), the
log lines written during the flood, and what the kernel dropped at the target's socket.
Standard library only; every process is stopped and the folder removed, also on failure.
"""
import argparse
import collections
import os
import random
import signal
import socket
import struct
import sys
import time

import raftkit

NAMES = [f"Node{i}" for i in range(1, 6)]
HUGE = str(2**64 - 1)


def ask(c, name, wait=0.3):
    """LEADER_INFO to one node: its reply dict, or None."""
    return c.ask([name], wait)[name]


def agreed(c, timeout=10.0):
    """(leader, term) once all five name the same leader, else (None, what they said)."""
    try:
        leader, _, replies = c.wait_leader(timeout=timeout, interval=0.1)
        return leader, replies[leader]["term"]
    except raftkit.Failure as e:
        return None, str(e)


def rss_kib(pid):
    return raftkit.memory_kib(pid)["VmRSS"]


def socket_drops(addr):
    """Datagrams the kernel dropped at a bound UDP socket (/proc/net/udp, last column)."""
    host, port = addr
    want = "%s:%04X" % ("".join("%02X" % int(b) for b in reversed(host.split("."))), port)
    with open("/proc/net/udp") as f:
        for line in f:
            cols = line.split()
            if len(cols) > 12 and cols[1] == want:
                return int(cols[-1])
    return None


# ---- the hostile datagrams ------------------------------------------------------------------------
def valid(rng):
    req = rng.choice(["APPEND_RPC", "APPEND_REPLY", "VOTE_REQUEST", "VOTE_ACK", "PRE_VOTE_REQUEST",
                      "PRE_VOTE_ACK", "LEADER_INFO"])
    return raftkit.encode(raftkit.make_message(req, rng.choice(NAMES), term=rng.randrange(100)))


def mutated(rng):
    b = bytearray(valid(rng))
    for _ in range(rng.randint(1, 8)):
        at = rng.randrange(len(b) + 1)
        op = rng.randrange(4)
        if op == 0 and at < len(b):
            b[at] = rng.randrange(256)
        elif op == 1:
            b[at:at] = bytes([rng.choice(b'{}[]",:\\0-e.\x00\xff')])
        elif op == 2:
            del b[at:at + rng.randint(1, 6)]
        else:
            b[at:at] = b[rng.randrange(len(b) + 1):][:rng.randint(1, 20)]
    return bytes(b)


def nested(rng):
    depth = rng.choice([33, 100, 1000, 20000])
    open_, close = rng.choice([("[", "]"), ('{"a":', "}")])
    return ('{"x": ' + open_ * depth + "1" + close * depth + "}").encode()[:65507]


def huge_number(rng):
    num = rng.choice(["1e999999", "-1e999999", "9" * rng.choice([20, 1000, 30000]), HUGE, "1" + "0" * 5000,
                      "0." + "0" * 1000 + "1", "123456789012345678901234567890e-10", "-0", "NaN", "Infinity"])
    return ('{"sender_name": "Node2", "request": "APPEND_RPC", "term": %s, "key": null, "value": null}'
            % num).encode()[:65507]


def oversized(rng):
    kind = rng.randrange(3)
    if kind == 0:  # valid JSON, one enormous string
        pad = 65507 - 90
        return ('{"sender_name": "Node2", "request": "APPEND_RPC", "term": 1, "key": "%s", "value": null}'
                % ("x" * pad)).encode()[:65507]
    if kind == 1:  # a huge array of numbers in an unknown field
        return ('{"junk": [' + "1," * 32700 + '1], "request": "LEADER_INFO"}').encode()[:65507]
    return rng.randbytes(65507)


def not_utf8(rng):
    bad = rng.choice([b"\xff\xfe", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80", b"\xe2\x82"])
    return b'{"sender_name": "Node' + bad + b'", "request": "VOTE_REQUEST", "term": 5}'


def forged(rng):
    """A node message with a huge term, but from our address, not the peer's: must be dropped."""
    term = rng.choice([HUGE, str(2**63), str(10**18), "1e19", '"%s"' % HUGE])
    req = rng.choice(["APPEND_RPC", "VOTE_REQUEST", "PRE_VOTE_REQUEST", "VOTE_ACK", "APPEND_REPLY"])
    key = rng.choice(["null", '"TRANSFER"'])
    return ('{"sender_name": "%s", "request": "%s", "term": %s, "key": %s, "value": null}'
            % (rng.choice(NAMES), req, term, key)).encode()


KINDS = [  # (generator, share in %)
    (lambda rng: rng.randbytes(rng.randrange(0, 1500)), 20),
    (mutated, 30),
    (nested, 5),
    (huge_number, 10),
    (oversized, 1),
    (not_utf8, 14),
    (forged, 20),
]


def pool(rng, size=20000, oversized_too=True):
    gens = [g for g, share in KINDS for _ in range(share) if oversized_too or g is not oversized]
    return [rng.choice(gens)(rng) for _ in range(size)]


def spoofed(src, dst, payload, raw=None):
    """One UDP datagram to dst whose IP source is src (raw socket, needs root)."""
    udp = struct.pack("!HHHH", src[1], dst[1], 8 + len(payload), 0) + payload  # checksum 0: none
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, socket.IPPROTO_UDP, 0,
                     socket.inet_aton(src[0]), socket.inet_aton(dst[0]))
    if raw is not None:
        raw.sendto(ip + udp, (dst[0], 0))
        return
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW) as r:
        r.sendto(ip + udp, (dst[0], 0))


def tagged(rng):
    """(sender, a node message in its name with a made-up `value` tag), for the keyed flood."""
    def h(bits):
        return "%x" % rng.getrandbits(bits)

    value = rng.choice([
        '"%s.%s.%s.%032x"' % (h(52), h(20), h(52), rng.getrandbits(128)),
        '"%x.%x.%x.%032x"' % (2**64 - 1, 2**64 - 1, 2**64 - 1, rng.getrandbits(128)),
        '"%s.%s.%s.%s"' % (h(52), h(20), h(52), h(rng.choice([64, 120, 200]))),
        '"..."', "null", '"%s"' % ("f" * rng.randrange(200)), "1", '["x"]',
    ])
    req = rng.choice(["APPEND_RPC", "VOTE_REQUEST", "PRE_VOTE_REQUEST", "VOTE_ACK", "APPEND_REPLY",
                      "PRE_VOTE_ACK", "AUTH_HELLO"])
    term = rng.choice([HUGE, str(rng.randrange(100)), str(2**63)])
    sender = rng.choice(NAMES)
    return sender, ('{"sender_name": "%s", "request": "%s", "term": %s, "key": %s, "value": %s}'
                    % (sender, req, term, rng.choice(["null", '"TRANSFER"']), value)).encode()


class Capture:
    """The cluster's own datagrams on `lo`, as (src, dst, payload), via an AF_PACKET socket."""

    def __init__(self, c):
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
        self.sock.bind(("lo", 0))
        self.sock.settimeout(0.05)
        self.cluster = {c.addr(n)[0] for n in NAMES}

    def collect(self, seconds):
        got, t_end = [], time.monotonic() + seconds
        while time.monotonic() < t_end:
            try:
                frame = self.sock.recv(65535)
            except socket.timeout:
                continue
            ip = frame[14:]  # loopback frames carry a 14-byte Ethernet header
            if frame[12:14] != b"\x08\x00" or len(ip) < 28 or ip[9] != socket.IPPROTO_UDP:
                continue
            ihl = (ip[0] & 15) * 4
            src, dst = socket.inet_ntoa(ip[12:16]), socket.inet_ntoa(ip[16:20])
            sport, dport = struct.unpack("!HH", ip[ihl:ihl + 4])
            if src in self.cluster and dst in self.cluster and sport == 5555 == dport:
                got.append(((src, sport), (dst, dport), bytes(ip[ihl + 8:])))
        self.sock.close()
        return got


def replayed(c, failures):
    """Captured traffic replayed from the senders' own addresses changes nothing; the dead
    leader's replayed heartbeats keep nobody from electing another."""
    leader, term = agreed(c)
    traffic = Capture(c).collect(1.5)
    heartbeats = [t for t in traffic if t[0] == c.addr(leader) and b"APPEND_RPC" in t[2]]
    print(f"  captured {len(traffic)} node datagrams on lo ({len(heartbeats)} heartbeats of {leader})")
    if not heartbeats:
        failures.append("nothing captured on lo: the replay test did not run")
        return
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW) as raw:
        for _ in range(3):
            for src, dst, payload in traffic:
                spoofed(src, dst, payload, raw)
        time.sleep(1.0)
        after = agreed(c)
        print(f"  every captured datagram replayed 3 times: (leader, term) {(leader, term)} -> {after}")
        if after != (leader, term):
            failures.append(f"replayed traffic moved the cluster: {(leader, term)} -> {after}")
        c.kill(leader)
        t_end = time.monotonic() + 3.0
        while time.monotonic() < t_end:
            for src, dst, payload in heartbeats:
                spoofed(src, dst, payload, raw)
            time.sleep(0.01)
    rest = [n for n in NAMES if n != leader]
    replies = {n: ask(c, n, wait=1.0) for n in rest}
    named = {(r or {}).get("value") for r in replies.values()}
    print(f"  {leader} killed, its heartbeats replayed for 3 s: the others now name {sorted(map(str, named))}")
    if len(named) != 1 or None in named or leader in named:
        failures.append(f"after {leader} died under replayed heartbeats: {replies}")


def forged_last_term(c, failures, keyed=False):
    before = agreed(c)
    terms0 = {n: (ask(c, n) or {}).get("term", 0) for n in NAMES}
    msg = ('{"sender_name": "Node2", "request": "APPEND_RPC", "term": %s, "key": null, "value": null}'
           % HUGE).encode()
    spoofed(c.addr("Node2"), c.addr("Node1"), msg)
    time.sleep(2.0)  # a few election timeouts: long enough for a wrapped or crashed node to show
    replies = {n: ask(c, n, wait=1.0) for n in NAMES}
    dead = c.exited()
    print("  forged APPEND_RPC term 2^64-1 from Node2's address to Node1: (leader, term) now "
          + ", ".join(f"{n} {(r['value'], r['term']) if r else None}" for n, r in replies.items()))
    if dead:
        failures.append(f"after the forged term, processes exited: {dead}")
    for n, r in replies.items():
        if r is None:
            failures.append(f"after the forged term, {n} does not answer")
        elif r["term"] < terms0[n]:
            failures.append(f"after the forged term, {n}'s term went down {terms0[n]} -> {r['term']}")
    if keyed and agreed(c) != before:
        failures.append(f"with a key, the forged term moved the cluster: {before} -> {agreed(c)}")


def read_log(path, since=None):
    with open(path, errors="replace") as f:
        lines = f.read().splitlines()
    return lines[since:] if since is not None else lines


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default="target/release/raft")
    ap.add_argument("--count", type=int, default=100_000)
    ap.add_argument("--rate", type=int, default=8000, help="datagrams per second")
    ap.add_argument("--target", default="leader", help="leader, follower or a node name")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--key", action="store_true", help="run the cluster with a CLUSTER_KEY")
    return ap.parse_args()


def flood(c, a, rng, target, datagrams, keyed_pool=()):
    """Send a.count datagrams at a.rate/s to target, polling every node twice a second; with a
    `keyed_pool`, a fifth of them are its tagged forgeries, each from its named peer's address.
    Returns (sent, bytes, send errors, seconds, nodes that missed a poll)."""
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW) if keyed_pool else None
    out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    out.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    batch = max(a.rate // 100, 1)  # every 10 ms
    sent, sent_bytes, errors, silent = 0, 0, 0, set()
    t0 = next_poll = time.monotonic()
    while sent < a.count:
        for _ in range(min(batch, a.count - sent)):
            d = datagrams[rng.randrange(len(datagrams))]
            sender, forgery = keyed_pool[rng.randrange(len(keyed_pool))] if keyed_pool else (target, d)
            try:
                if sender != target and rng.randrange(5) == 0:
                    d = forgery  # from the named peer's own address: it meets the MAC
                    spoofed(c.addr(sender), c.addr(target), d, raw)
                else:
                    out.sendto(d, c.addr(target))
                sent_bytes += len(d)
            except OSError:
                errors += 1
            sent += 1
        now = time.monotonic()
        if now >= next_poll:  # everyone still answering, twice a second
            silent |= {n for n in NAMES if ask(c, n, wait=0.2) is None}
            next_poll = now + 0.5
        time.sleep(max(0.0, t0 + sent / a.rate - time.monotonic()))
    out.close()
    if raw is not None:
        raw.close()
    return sent, sent_bytes, errors, time.monotonic() - t0, silent


def drop_counts(lines):
    """{reason: datagrams} of a node's drop lines, counting the suppressed ones."""
    counts = collections.Counter()
    for rec in filter(None, map(raftkit.parse_line, lines)):
        if rec.get("event") == "drop":
            counts[rec["reason"]] += 1 + int(rec.get("suppressed", 0))
    return dict(sorted(counts.items()))


def check_after(c, target, before, failures):
    """Every process alive and answering, one agreed leader, the target's memory flat, only
    log lines in the logs. Returns (leader, term) after the flood."""
    dead = c.exited()
    answers = {n: ask(c, n, wait=1.0) for n in NAMES}
    after = agreed(c)
    rss1 = {n: rss_kib(p.pid) for n, p in c.procs.items() if p.poll() is None}
    print("  VmRSS KiB before -> after: " + ", ".join(f"{n} {before[n]} -> {rss1.get(n, 'dead')}" for n in NAMES))
    if dead:
        failures.append(f"processes exited: {dead}")
    if any(r is None for r in answers.values()):
        failures.append(f"no LEADER_INFO answer from {[n for n, r in answers.items() if r is None]}")
    if after[0] is None:
        failures.append(f"no agreed leader after the flood: {after[1]}")
    if target in rss1 and rss1[target] - before[target] > 1024:
        failures.append(f"{target}'s VmRSS grew {rss1[target] - before[target]} KiB")
    return after


def non_log_lines(c, failures, since=None):
    for n in NAMES:
        odd = [ln for ln in read_log(c.log(n), (since or {}).get(n)) if raftkit.parse_line(ln) is None]
        if odd:
            failures.append(f"{n} wrote non-log output: {odd[:3]}")


def main():
    a = parse_args()
    rng = random.Random(a.seed)
    failures = []
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    root = os.geteuid() == 0
    key = {"CLUSTER_KEY": "flood test key"} if a.key else {}
    with raftkit.LocalCluster(a.bin, first="127.0.9.1", inherit=True, **key) as c:
        leader, term = agreed(c)
        if leader is None:
            raise SystemExit(f"no leader before the flood: {term}")
        target = {"leader": leader, "follower": next(n for n in NAMES if n != leader)}.get(a.target, a.target)
        print(f"flood: 5 nodes on 127.0.9.1-5, {leader} leads term {term}; "
              f"{a.count} datagrams at {target} ({c.addr(target)[0]}), {a.rate}/s", flush=True)
        # The keyed run leaves out the 64 KiB datagrams (the plain run has them; they never get as
        # far as the MAC): two of them fill a socket's default receive buffer, and the heartbeat
        # replies the kernel then drops would cost an election that says nothing about keys.
        datagrams = pool(rng, oversized_too=not a.key)
        keyed_pool = [tagged(rng) for _ in range(4000)] if a.key and root else []
        print(f"  pool of {len(datagrams)} distinct datagrams, {min(map(len, datagrams))}-"
              f"{max(map(len, datagrams))} bytes", flush=True)
        rss0 = {n: rss_kib(p.pid) for n, p in c.procs.items()}
        lines0 = {n: len(read_log(c.log(n))) for n in NAMES}
        drops0, cpu0 = socket_drops(c.addr(target)), raftkit.cpu_seconds(c.procs[target].pid)

        sent, sent_bytes, errors, secs, silent = flood(c, a, rng, target, datagrams, keyed_pool)
        drops = socket_drops(c.addr(target))
        time.sleep(0.5)
        cpu = raftkit.cpu_seconds(c.procs[target].pid) - cpu0
        print(f"  sent {sent} datagrams ({sent_bytes / 1e6:.1f} MB) in {secs:.1f} s = {sent / secs:.0f}/s, "
              f"{errors} send errors; the kernel dropped "
              f"{'?' if drops is None or drops0 is None else drops - drops0} at {target}'s socket (buffer full)")
        print(f"  {target} used {cpu:.2f} s of CPU for it ({cpu / sent * 1e6:.0f} µs per datagram, "
              f"{cpu / secs:.0%} of one core)")
        after = check_after(c, target, rss0, failures)
        logs = {n: read_log(c.log(n), lines0[n]) for n in NAMES}
        events = {n: list(filter(None, map(raftkit.parse_line, ls))) for n, ls in logs.items()}
        elections = sum(1 for es in events.values() for e in es if e.get("event") == "elected")
        print("  log lines written during the flood: " + ", ".join(f"{n} {len(ls)}" for n, ls in logs.items()))
        print(f"  {target}'s drop lines (counting suppressed): {drop_counts(logs[target])}")
        print(f"  leader before {leader} (term {term}), after {after[0]} (term {after[1]}); "
              f"elections during the flood: {elections}; nodes that missed a poll: {sorted(silent) or 'none'}")
        for ln in sorted(ln for ls in logs.values() for ln in ls
                         if "event=drop" not in ln and "event=request" not in ln)[:30]:
            print(f"    {ln}")
        same = after == (leader, term) and not elections
        print("  " + ("no election, same leader and term" if same
                      else "the leader or term changed (reported, not asserted)"))
        non_log_lines(c, failures, lines0)
        if a.key and not same:
            failures.append(f"with a key the flood caused {elections} elections, "
                            f"({leader}, {term}) -> {after}")
        if root and not c.exited():
            forged_last_term(c, failures, keyed=a.key)
            if a.key:
                replayed(c, failures)
            non_log_lines(c, failures)
    for f in failures:
        print(f"FAIL {f}")
    print("flood passed" if not failures else "flood FAILED")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
