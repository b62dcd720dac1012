#!/usr/bin/env python3
"""What a cluster key costs: failover times, idle CPU and memory, with and without CLUSTER_KEY.

    python3 bench/auth_cost.py [--trials 100] [--idle-s 30]     (`make bench-auth`)

Five local processes (the release build) on BENCH_NET (default 127.0.78), default timeouts. Each
series alternates SHUTDOWN and kill -9 of the leader, `--trials` of each, timed from the nodes'
own log lines as in local_nodes.py; the two series alternate in blocks of 10 trials, so a change in the
machine's load falls on both alike. Prints a Markdown table and the load average before/after.
"""
import argparse
import os
import sys
import tempfile

import local_nodes
import machine
from report import fmt_stats
from stats import summarize

KEY = {"CLUSTER_KEY": "bench cluster key"}


def idle(cfg, seconds, env):
    with tempfile.TemporaryDirectory(prefix="raft-bench-auth-") as d:
        c = local_nodes.Cluster(local_nodes.BIN, d, net=cfg["net"], **env).start()
        try:
            leader, _ = c.settled()
            r = machine.usage({name: p.pid for name, p in c.procs.items()}, seconds)
        finally:
            c.stop()
    followers = [v["cpu"] for n, v in r.items() if n != leader]
    return {"leader_cpu": r[leader]["cpu"], "follower_cpu": max(followers),
            "rss_kib": max(v["VmRSS"] for v in r.values())}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=100, help="of each of SHUTDOWN and kill -9")
    ap.add_argument("--idle-s", type=float, default=30)
    a = ap.parse_args()
    cfg = {"net": os.environ.get("BENCH_NET", "127.0.78")}
    load0 = machine.loadavg()
    series = {"off": {"shutdown": [], "kill": []}, "on": {"shutdown": [], "kill": []}}
    done = 0
    try:
        while done < a.trials:
            block = min(10, a.trials - done)
            for name, env in (("off", {}), ("on", KEY)):
                r = local_nodes.failovers(local_nodes.BIN, cfg["net"], block, True, **env)
                for mode in ("shutdown", "kill"):
                    series[name][mode] += r[mode]
            done += block
        usage = {name: idle(cfg, a.idle_s, env) for name, env in (("off", {}), ("on", KEY))}
    finally:
        local_nodes.cleanup()
    print(f"load average before {load0}, after {machine.loadavg()}; {machine.machine()}")
    print("| cluster key | failover after | n | median ms | min | p99 | max |")
    print("|---|---|---|---|---|---|---|")
    for name in ("off", "on"):
        s = series[name]
        for mode, label in (("shutdown", "SHUTDOWN"), ("kill", "kill -9"), (None, "either")):
            xs = s[mode] if mode else s["shutdown"] + s["kill"]
            print(f"| {name} | {label} | " + fmt_stats(summarize(xs)) + " |")
    print()
    print("| cluster key | idle CPU, leader | idle CPU, busiest follower | largest RSS |")
    print("|---|---|---|---|")
    for name in ("off", "on"):
        u = usage[name]
        print(f"| {name} | {u['leader_cpu']:.2f} % | {u['follower_cpu']:.2f} % | {u['rss_kib']} KiB |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
