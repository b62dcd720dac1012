#!/usr/bin/env python3
"""Figures for docs/CLUSTER.md: image size, start-up to an agreed leader, failover, memory.

    make image && PYTHONPATH=Controller python3 tests/docker/measure.py [--nodes 5] [--ups 5] [--kills 10]

Uses throwaway compose projects (like tests/docker/run.py) and removes them afterwards.
"""
import argparse
import signal
import statistics
import sys
import time

from cluster import IMAGE, Cluster, daemon_answers, run


def fmt(xs):
    return f"median {statistics.median(xs):.2f} s (min {min(xs):.2f}, max {max(xs):.2f}, n={len(xs)})"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nodes", type=int, default=5)
    p.add_argument("--ups", type=int, default=5)
    p.add_argument("--kills", type=int, default=10)
    a = p.parse_args()
    if not daemon_answers():
        print("no Docker daemon")
        return 1
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    size = int(run("docker", "image", "inspect", "-f", "{{.Size}}", IMAGE).stdout)
    print(f"image {IMAGE}: {size} bytes ({size / 1024:.0f} KiB)", flush=True)

    # `compose up -d` on a fresh project until every node names the same leader.
    total, after_up = [], []
    for i in range(a.ups):
        c = Cluster(a.nodes)
        try:
            t0 = time.monotonic()
            c.up()
            t1 = time.monotonic()
            leader, secs, _ = c.wait_leader()
            total.append(time.monotonic() - t0)
            after_up.append(secs)
            print(f"  up #{i + 1}: {leader} after {total[-1]:.2f} s ({secs:.2f} s after up returned "
                  f"in {t1 - t0:.2f} s)", flush=True)
        finally:
            c.down()
    print(f"up to agreed leader ({a.nodes} nodes): {fmt(total)}; after `up -d` returned: {fmt(after_up)}")

    # docker kill of the leader until the others agree on a new one; then start it again.
    c = Cluster(a.nodes)
    try:
        c.up()
        c.wait_leader()
        time.sleep(2)  # let the health checks start before sampling memory
        print("memory per container (docker stats --no-stream):")
        for name, usage in c.memory().items():
            print(f"  {name} {usage}")
        failover = []
        for i in range(a.kills):
            leader, _, _ = c.wait_leader()
            others = [n for n in c.names if n != leader]
            t0 = time.monotonic()
            c.docker("kill", leader)
            new, _, _ = c.wait_leader(among=others)
            failover.append(time.monotonic() - t0)
            print(f"  kill #{i + 1}: {leader} -> {new} in {failover[-1]:.2f} s", flush=True)
            c.docker("start", leader)
            c.wait_leader()
        print(f"failover after docker kill of the leader ({a.nodes} nodes): {fmt(failover)}")
    finally:
        c.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
