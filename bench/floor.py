#!/usr/bin/env python3
"""The physical floor of failover time, by Monte Carlo (stdlib only, seeded, reproducible).

    python3 bench/floor.py [--draws 200000] [--seed 1] [--tick 0]

Model: 5 nodes, the leader fails at a uniform phase of its heartbeat cycle; each of the 4
survivors redrew its election timeout (uniform in [min, max] ms) when the last heartbeat arrived,
so failover = min over survivors of (timeout) - phase, with zero network delay, no disk and no
split votes. With --tick T (ms) each survivor's timer fires at the first multiple of T at or after
its deadline plus one more tick (what SO_RCVTIMEO does on a HZ=1000/T kernel below 252 ms), and
the share of trials in which the two earliest timers land in the same tick is reported: those are
the trials in which two campaigns start within microseconds of each other.
"""
import argparse
import math
import random

from stats import percentile


def draw(rng, lo, hi, hb, survivors, tick):
    phase = rng.uniform(0, hb)
    fires = sorted(rng.uniform(lo, hi) for _ in range(survivors))
    if tick:
        offset = rng.uniform(0, tick)  # where the kernel's tick grid lies
        fires = sorted((math.ceil((f + offset) / tick) + 1) * tick - offset for f in fires)
    return fires[0] - phase, tick and fires[1] - fires[0] < tick / 1000


def floor(draws=200000, seed=1, lo=150, hi=300, hb=50, survivors=4, tick=0):
    rng = random.Random(seed)
    xs, same = [], 0
    for _ in range(draws):
        t, collide = draw(rng, lo, hi, hb, survivors, tick)
        xs.append(t)
        same += bool(collide)
    return {"draws": draws, "p50": percentile(xs, 50), "p90": percentile(xs, 90),
            "p99": percentile(xs, 99), "max": max(xs), "same_tick": same / draws}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--draws", type=int, default=200000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--tick", type=float, default=0)
    a = ap.parse_args()
    f = floor(a.draws, a.seed, tick=a.tick)
    print("draws %d: p50 %.0f, p90 %.0f, p99 %.0f, max %.0f ms; two earliest timers in one tick: "
          "%.1f%%" % (f["draws"], f["p50"], f["p90"], f["p99"], f["max"], 100 * f["same_tick"]))


if __name__ == "__main__":
    main()
