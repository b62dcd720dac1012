#!/usr/bin/env python3
"""A cluster with a cluster key (a compose secret), attacked from inside its own network.

    PYTHONPATH=Controller:tests/docker python3 tests/docker/keyed.py   # after `make image`; part of `make docker-test`

The attacks run as root in a peer's own network namespace (`nsenter -n`), with a raw socket, so
every forged or replayed datagram carries a real member's source address and passes the source
check; only the MAC stands in the way:
- forged APPEND_RPC / VOTE_REQUEST / ... at term 2^64-1 in a paused follower's name, from its
  address: no node's term or leader changes;
- the cluster's own traffic, captured in the leader's namespace (AF_PACKET), replayed from the
  original senders' addresses: nothing changes; then the leader is paused and its captured
  heartbeats are replayed for 3 s: the others elect another leader all the same;
- the same forgery against a cluster without a key moves the term to 2^64-1, as README.md says.
Needs root and nsenter; without them it says so and skips. Ends with "N passed, M failed".
"""
import base64
import json
import os
import shutil
import sys
import time

from cluster import (Cluster, check, expect, logs_are_safe, main_guard, preflight, run, summary,
                     unavailable)

HUGE = 2**64 - 1

# Sends datagrams with any IPv4 source (raw socket): argv = json [[src_ip, dst_ip, payload_b64], ...],
# repeat count, pause between rounds in seconds.
SPOOF = r"""
import base64, json, socket, struct, sys, time
packets, rounds, gap = json.loads(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
r = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
for _ in range(rounds):
    for src, dst, b64 in packets:
        payload = base64.b64decode(b64)
        udp = struct.pack("!HHHH", 5555, 5555, 8 + len(payload), 0) + payload
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, socket.IPPROTO_UDP, 0,
                         socket.inet_aton(src), socket.inet_aton(dst))
        r.sendto(ip + udp, (dst, 0))
    time.sleep(gap)
"""

# Captures UDP 5555 -> 5555 between cluster addresses on eth0 for argv[2] seconds.
CAPTURE = r"""
import base64, json, socket, struct, sys, time
cluster, secs = set(json.loads(sys.argv[1])), float(sys.argv[2])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))  # ETH_P_ALL: both ways
s.bind(("eth0", 0))
s.settimeout(0.05)
out, end = [], time.monotonic() + secs
while time.monotonic() < end:
    try:
        frame = s.recv(65535)
    except socket.timeout:
        continue
    ip = frame[14:]
    if frame[12:14] != b"\x08\x00" or len(ip) < 28 or ip[0] >> 4 != 4 or ip[9] != 17:
        continue
    ihl = (ip[0] & 15) * 4
    src, dst = socket.inet_ntoa(ip[12:16]), socket.inet_ntoa(ip[16:20])
    sport, dport = struct.unpack("!HH", ip[ihl:ihl + 4])
    if src in cluster and dst in cluster and sport == dport == 5555:
        out.append([src, dst, base64.b64encode(ip[ihl + 8:]).decode()])
print(json.dumps(out))
"""


def in_netns(c, name, script, *args):
    return run("nsenter", "-t", str(c.pid(name)), "-n", sys.executable, "-c", script, *args, timeout=60)


def forgeries(c, sender):
    """Node messages at term 2^64-1 in `sender`'s name, to every other node, from its address."""
    values = [None, "1.1.1.00000000000000000000000000000000",
              f"{HUGE:x}.{HUGE:x}.{HUGE:x}." + "f" * 32]
    out = []
    for value in values:
        for request, key in [("APPEND_RPC", None), ("VOTE_REQUEST", "TRANSFER"), ("VOTE_REQUEST", None),
                             ("PRE_VOTE_REQUEST", None), ("VOTE_ACK", None), ("AUTH_HELLO", None)]:
            msg = json.dumps({"sender_name": sender, "request": request, "term": HUGE,
                              "key": key, "value": value}).encode()
            for n in c.names:
                if n != sender:
                    out.append([c.ip(sender), c.ip(n), base64.b64encode(msg).decode()])
    return out


def state(c, names):
    replies = c.ask(names, wait=1.0)
    return {n: (r or {}).get("value") for n, r in replies.items()}, \
           {n: (r or {}).get("term") for n, r in replies.items()}


def keyed_start(c):
    c.up()
    leader, secs, _ = c.wait_leader()
    logs = run("docker", "logs", c.container(leader)).stderr
    expect("auth=hmac-sha256" in logs, "the start line does not say the key is on")
    print(f"   {c.n} nodes with CLUSTER_KEY_FILE (a compose secret): {leader} leads after {secs:.2f} s")


def forged_from_a_peer(c):
    leader, _, _ = c.wait_leader()
    follower = next(n for n in c.names if n != leader)
    others = [n for n in c.names if n != follower]
    before = state(c, others)
    c.docker("pause", follower)
    try:
        packets = forgeries(c, follower)
        in_netns(c, follower, SPOOF, json.dumps(packets), "3", "0.1")
        time.sleep(1.0)
        after = state(c, others)
    finally:
        c.docker("unpause", follower)
    print(f"   {len(packets) * 3} forged datagrams from {follower}'s address ({c.ip(follower)}), "
          f"term 2^64-1: (leaders, terms) {before} -> {after}")
    expect(after == before, f"the forgery moved the cluster: {before} -> {after}")
    logs = run("docker", "logs", c.container(leader)).stderr
    expect("reason=bad-mac" in logs, f"{leader} logged no bad-mac drop")
    c.wait_leader()


def replayed_traffic(c):
    leader, _, replies = c.wait_leader()
    term = replies[leader]["term"]
    ips = [c.ip(n) for n in c.names]
    captured = json.loads(in_netns(c, leader, CAPTURE, json.dumps(ips), "1.5").stdout)
    heartbeats = [p for p in captured
                  if p[0] == c.ip(leader) and b"APPEND_RPC" in base64.b64decode(p[2])]
    print(f"   captured {len(captured)} datagrams in {leader}'s namespace, {len(heartbeats)} of its heartbeats")
    if not heartbeats:
        kinds = sorted({(p[0], p[1], json.loads(base64.b64decode(p[2])).get("request")) for p in captured})
        print(f"   seen (leader at {c.ip(leader)}): {kinds[:20]}")
    expect(heartbeats, "nothing captured")
    in_netns(c, leader, SPOOF, json.dumps(captured), "3", "0.05")
    time.sleep(1.0)
    again, _, replies = c.wait_leader()
    print(f"   replayed 3 times: ({leader}, {term}) -> ({again}, {replies[again]['term']})")
    expect((again, replies[again]["term"]) == (leader, term), "replayed traffic moved the cluster")
    logs = "".join(run("docker", "logs", c.container(n)).stderr for n in c.names)
    expect("reason=replay" in logs, "no node logged a replay: did the replayed datagrams arrive?")
    c.docker("pause", leader)
    try:
        in_netns(c, leader, SPOOF, json.dumps(heartbeats), "60", "0.05")
        others = [n for n in c.names if n != leader]
        new, _, _ = c.wait_leader(among=others)
        print(f"   {leader} paused, its heartbeats replayed for 3 s: {new} leads")
        expect(new != leader, "the paused leader is still named")
    finally:
        c.docker("unpause", leader)
    c.wait_leader()


def unkeyed_forgery(c):
    c.up()
    leader, _, _ = c.wait_leader()
    follower = next(n for n in c.names if n != leader)
    c.docker("pause", follower)
    try:
        msg = json.dumps({"sender_name": follower, "request": "APPEND_RPC", "term": HUGE,
                          "key": None, "value": None}).encode()
        in_netns(c, follower, SPOOF, json.dumps([[c.ip(follower), c.ip(leader),
                                                   base64.b64encode(msg).decode()]]), "1", "0")
        time.sleep(0.5)
        term = (c.ask([leader], wait=1.0)[leader] or {}).get("term")
    finally:
        c.docker("unpause", follower)
    print(f"   without a key, {leader}'s term after the forgery: {term}")
    expect(term == HUGE, f"expected the documented term 2^64-1, got {term}")


def main():
    stop = preflight("keyed docker tests")
    if stop is not None:
        return stop
    if os.geteuid() != 0 or not shutil.which("nsenter"):
        return unavailable("keyed docker tests", "they need root and nsenter")
    c = Cluster(5, key="docker test cluster key")
    print(f"== 5 nodes with a cluster key, compose project {c.id}", flush=True)
    try:
        if check("keyed: first election", keyed_start, c):
            check("keyed: forgery at term 2^64-1 from a peer's own address", forged_from_a_peer, c)
            check("keyed: replayed capture, and a paused leader's heartbeats", replayed_traffic, c)
        check("keyed: the logs (one leader per term, terms never go down)", logs_are_safe, c)
    finally:
        c.down()
    u = Cluster(3)
    print(f"== 3 nodes without a key, compose project {u.id}", flush=True)
    try:
        check("no key: the same forgery moves the term, as documented", unkeyed_forgery, u)
    finally:
        u.down()
    return summary()


if __name__ == "__main__":
    main_guard(main)
