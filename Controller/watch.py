#!/usr/bin/env python3
"""Watch the cluster: one line each time the leaders reported or the highest term change.

    python watch.py [--nodes N | --peers LIST] [--interval SECONDS]

The Controller container's default command.  Every interval it sends LEADER_INFO to every node
from one ephemeral port (never Controller:5555, which stays free for other scripts) and prints,
when the picture changes, a line like `raft watch` does:

    t=1795704387.263 leaders=Node3:5 max_term=4 answered=5/5

Nodes come from --peers, else the PEERS environment variable (the nodes' format), else
Node1..Node5.  Runs until stopped (SIGTERM or SIGINT: exit 0).  Standard library only.
"""
import argparse
import os
import signal
import sys
import time
from collections import Counter

import raftkit


def summary(answers):
    """`leaders=Node3:4,none:1 max_term=4 answered=5/5` for a list of raftkit.Answer."""
    replies = [a.reply for a in answers if a.reply is not None]
    leaders = Counter(r.get("value") if isinstance(r.get("value"), str) and r.get("value")
                      else "none" for r in replies)
    terms = [r.get("term") for r in replies if isinstance(r.get("term"), int)]
    named = ",".join("%s:%d" % kv for kv in sorted(leaders.items()))
    return "leaders=%s max_term=%d answered=%d/%d" % (named, max(terms, default=0),
                                                     len(replies), len(answers))


def stamp(now=None):
    now = time.time() if now is None else now
    return "t=%.3f" % now


def watch(peers, interval, out=sys.stdout, rounds=None, timeout=None):
    """Poll forever (or `rounds` times); print a line whenever the summary changes. A poll waits
    for replies up to `timeout` (default: the interval) but ends as soon as every node answered."""
    last = None
    n = 0
    while rounds is None or n < rounds:
        n += 1
        t0 = time.monotonic()
        try:
            now = summary(raftkit.query_all(peers, timeout=timeout or interval))
        except raftkit.ControllerError as e:
            now = "error=%r" % str(e)
        if now != last:
            print("%s %s" % (stamp(), now), file=out, flush=True)
            last = now
        time.sleep(max(0.0, interval - (time.monotonic() - t0)))


def peers_from(args):
    spec = args.peers or os.environ.get("PEERS", "")
    if spec.strip():
        return raftkit.parse_peers(spec)
    return raftkit.default_peers(args.nodes)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    which = p.add_mutually_exclusive_group()
    which.add_argument("--nodes", type=int, default=5, help="Node1..NodeN (default 5)")
    which.add_argument("--peers", help="comma-separated Name or Name=host:port (default: $PEERS)")
    p.add_argument("--interval", type=float, default=0.25, help="seconds between polls (0.05-60)")
    args = p.parse_args(argv)
    if not 0.05 <= args.interval <= 60 or args.nodes < 1:
        p.error("--interval must be 0.05-60 s and --nodes at least 1")
    try:
        peers = peers_from(args)
    except ValueError as e:
        p.error("peers: %s" % e)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("%s watching %s" % (stamp(), ",".join(x.name for x in peers)), flush=True)
    try:
        watch(peers, args.interval)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
