#!/usr/bin/env python3
"""Random faults against a throwaway compose cluster; safety checked from every node's log.

    PYTHONPATH=Controller python3 tests/docker/chaos.py [--duration 120] [--nodes 5] [--seed N] [--converge 10]
                                  [--timeline docs/chaos-timeline.svg]

Faults (one at a time per node; at most a minority of the nodes faulty, except for short
"majority" episodes): docker kill/start, docker pause/unpause (0.5-3 s, longer than the
150-300 ms election timeout), network disconnect/connect of one node or of a minority, random
packet loss, a slow link, a dropped link between two nodes (both directions), and controller
requests sent to the nodes' port 5555: TIMEOUT, CONVERT_FOLLOWER, SHUTDOWN and a later revival.
Loss and delay use tc in the container's network namespace (see faults.py).

While the faults run, LEADER_INFO polls of every node measure the leaderless gaps. At the end
every fault is healed and all nodes must agree on one leader within --converge seconds: with
nothing broken an election takes one or two 150-300 ms timeouts, but a container that was
restarted or reconnected may have a new address, which its peers look up again at least every
3 s (src/resolver.rs), so 3 s + a few election rounds + slack for a loaded 2-core machine.
Then every node's whole log (`docker logs`, across restarts) is checked (logcheck.py): one
leader per term, terms never decrease. Exit status 1 on any violation, 0 otherwise.
Without a Docker daemon: skipped (exit 0), unless CI=true.
"""
import argparse
import collections
import os
import random
import shutil
import sys
import time

import logcheck
import raftkit
from cluster import ROOT, Cluster, Failure, main_guard, preflight, run
from faults import Net, ensure_tc


class Fault:
    def __init__(self, kind, nodes, until, heal):
        self.kind, self.nodes, self.until, self.heal = kind, nodes, until, heal


class Chaos:
    def __init__(self, c, rng):
        self.c, self.rng, self.net = c, rng, Net(c)
        self.minority = (c.n - 1) // 2
        self.active = []
        self.counts = collections.Counter()
        self.majority_episodes = 0
        self.markers = []  # logfmt lines for the timeline (kills)
        self.errors = []

    def faulty(self):
        return {n for f in self.active for n in f.nodes}

    def healthy(self):
        return [n for n in self.c.names if n not in self.faulty()]

    def mark(self, name, event):
        self.markers.append(raftkit.format_line([("t", f"{time.time():.3f}"), ("node", name), ("event", event)]))

    # ---- starting faults ------------------------------------------------------------------------
    def start_one(self, now):
        """Start one random fault (or an instant controller request) on healthy nodes."""
        rng, healthy = self.rng, self.healthy()
        room = self.minority - len(self.faulty())
        if rng.random() < 0.06 and len(healthy) == self.c.n:
            # A majority down at once: no leader is expected until it heals.
            k = self.c.n // 2 + 1
            kind = rng.choice(["pause", "disconnect"])
            self.majority_episodes += 1
            return self.begin(f"majority-{kind}", rng.sample(healthy, k), now + rng.uniform(1, 3))
        kinds = {"kill": 3, "pause": 3, "disconnect": 2, "partition": 1, "loss": 2, "slow": 2,
                 "link": 2, "shutdown": 2, "timeout": 2, "convert-follower": 2}
        kind = rng.choices(list(kinds), weights=list(kinds.values()))[0]
        need = {"partition": self.minority, "link": 2, "timeout": 0, "convert-follower": 0}.get(kind, 1)
        if need > room or not healthy or len(healthy) < max(need, 1):
            return None
        nodes = rng.sample(healthy, max(need, 1))
        return self.begin(kind, nodes, now + rng.uniform(0.5, 4.0))

    def begin(self, kind, nodes, until):
        c, net, rng = self.c, self.net, self.rng
        heal = None
        base = kind.replace("majority-", "")
        if base == "kill":
            c.docker("kill", nodes[0])
            self.mark(nodes[0], "killed")
            heal = lambda: c.docker("start", nodes[0])  # noqa: E731
        elif base == "pause":
            for n in nodes:
                c.docker("pause", n)
            heal = lambda: self.each(lambda n: c.docker("unpause", n), nodes)  # noqa: E731
        elif base in ("disconnect", "partition"):
            for n in nodes:
                c.disconnect(n)
            heal = lambda: self.each(c.connect, nodes)  # noqa: E731
        elif base == "loss":
            pct = rng.choice([20, 40, 60])
            kind = f"loss-{pct}%-{net.loss(nodes[0], pct)}"
            heal = lambda: net.clear(nodes[0])  # noqa: E731
        elif base == "slow":
            ms = rng.choice([50, 100, 200, 400])
            kind = f"slow-{ms}ms-{net.slow(nodes[0], ms)}"
            heal = lambda: net.clear(nodes[0])  # noqa: E731
        elif base == "link":
            a, b = nodes
            ip_a, ip_b = c.ip(a), c.ip(b)
            net.drop_to(a, [ip_b])
            net.drop_to(b, [ip_a])
            heal = lambda: self.each(net.clear, nodes)  # noqa: E731
        elif base == "shutdown":
            c.send(nodes[0], "SHUTDOWN")
            revive = rng.choice(["TIMEOUT", "CONVERT_FOLLOWER"])
            heal = lambda: c.send(nodes[0], revive)  # noqa: E731
        else:  # timeout, convert-follower: instant, nobody stays faulty
            c.send(nodes[0], kind)
            self.counts[kind] += 1
            return None
        self.counts[kind.split("-")[0] if base in ("loss", "slow") else kind] += 1
        f = Fault(kind, nodes, until, heal)
        self.active.append(f)
        return f

    def each(self, fn, nodes):
        """fn(node) for every node, even when one of them fails."""
        for n in nodes:
            try:
                fn(n)
            except Failure as e:
                self.errors.append(f"heal {n}: {e}")

    def heal_due(self, now, everything=False):
        for f in [f for f in self.active if everything or f.until <= now]:
            try:
                f.heal()
            except Failure as e:
                self.errors.append(f"heal {f.kind} {f.nodes}: {e}")
            self.active.remove(f)


def poll(c, samples, claims, faulty):
    """One LEADER_INFO round: (time, leader agreed by a majority or None, faulty count)."""
    replies = c.ask(wait=0.1)
    votes = collections.Counter(r.get("value") for r in replies.values() if r)
    leader = None
    for name, count in votes.items():
        own = replies.get(name)
        if name and count > c.n // 2 and own and own.get("value") == name:
            leader = name
    for name, r in replies.items():
        if r and r.get("value") == name:
            claims.setdefault(r.get("term"), set()).add(name)
    samples.append((time.monotonic(), leader, faulty))


def longest_gap(samples, minority, only_live):
    """(seconds, start) of the longest time between two polls that saw a leader: an upper bound
    on the leaderless gap, by up to one poll interval. only_live: count only gaps during which
    every poll found a majority of the nodes healthy."""
    best, last, live = (0.0, 0.0), None, True
    for t, leader, faulty in samples:
        live = live and faulty <= minority
        if leader:
            if last is not None and (live or not only_live):
                best = max(best, (t - last, last))
            last, live = t, True
    return best


def save_logs(logs, markers, folder):
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    for n, lines in logs.items():
        with open(os.path.join(folder, f"{n}.log"), "w") as f:
            f.write("\n".join(lines) + "\n")
    with open(os.path.join(folder, "faults.log"), "w") as f:
        f.write("\n".join(markers) + "\n")


def render_timeline(folder, out, note):
    tool = ROOT / "bench" / "timeline.py"
    if not tool.exists():
        print("timeline: skipped (bench/timeline.py is not in this tree)")
        return
    p = run(sys.executable, str(tool), folder, "-o", out, "--title", "Election timeline under chaos",
            "--note", note, check=False)
    print(f"timeline: {(p.stdout or p.stderr).strip()}")


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=120, help="seconds of faults (default 120)")
    ap.add_argument("--nodes", type=int, default=5)
    ap.add_argument("--seed", type=int, default=None, help="fault schedule seed (default: random)")
    ap.add_argument("--converge", type=float, default=10, help="bound on agreement after healing (s)")
    ap.add_argument("--logs", default=str(ROOT / "build" / "chaos"), help="where the node logs are saved")
    ap.add_argument("--timeline", help="write the election timeline SVG here (needs bench/timeline.py)")
    return ap.parse_args()


def run_faults(chaos, duration):
    """Faults every 0.3-1.5 s and LEADER_INFO polls in between, for `duration` s; then heal all.
    Returns (samples, claims, start time)."""
    c, rng = chaos.c, chaos.rng
    samples, claims = [], {}
    t0 = time.monotonic()
    next_fault = t0 + 1.0
    while (now := time.monotonic()) < t0 + duration:
        chaos.heal_due(now)
        if now >= next_fault:
            try:
                f = chaos.start_one(now)
                if f:
                    print(f"  {now - t0:6.1f} s  {f.kind:<22} {','.join(f.nodes)} "
                          f"for {f.until - now:.1f} s", flush=True)
            except Failure as e:
                chaos.errors.append(f"start: {e}")
            next_fault = now + rng.uniform(0.3, 1.5)
        poll(c, samples, claims, len(chaos.faulty()))
        time.sleep(0.02)
    chaos.heal_due(0, everything=True)
    return samples, claims, t0


def converge(c, bound, violations):
    """After healing: one leader agreed by all within `bound` s. Returns (leader, seconds, terms)."""
    healed = time.monotonic()
    try:
        leader, _, replies = c.wait_leader(timeout=bound)
        return leader, time.monotonic() - healed, sorted({r["term"] for r in replies.values()})
    except Failure as e:
        violations.append(f"no agreement within {bound:.0f} s of healing: {e}")
        return None, None, []


def safety(c, logs, claims, violations):
    """The logs' invariants (logcheck), LEADER_INFO self-claims, every container running."""
    found, stats = logcheck.check(logs)
    violations += found
    for term, who in sorted(claims.items(), key=lambda kv: kv[0] or 0):
        if len(who) > 1:
            violations.append(f"LEADER_INFO: {sorted(who)} all named themselves leader in term {term}")
    for n in c.names:
        state = run("docker", "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}",
                    c.container(n)).stdout.strip()
        if not state.startswith("running"):
            violations.append(f"{n} is not running after healing: {state}")
    return stats


def summarize(a, chaos, stats, samples, t0, converged, violations):
    c = chaos.c
    print(f"\nfaults: {sum(chaos.counts.values())} — "
          + ", ".join(f"{k} {v}" for k, v in sorted(chaos.counts.items())))
    print(f"  majority episodes (liveness not expected): {chaos.majority_episodes}")
    for e in chaos.errors:
        print(f"  fault command failed: {e}")
    led = sum(1 for _, ldr, _ in samples if ldr) / max(len(samples), 1)
    print(f"elections: {stats['elections']} (terms up to {stats['max_term']}), node restarts {stats['restarts']}")
    gap, live = (longest_gap(samples, chaos.minority, only) for only in (False, True))
    print(f"leaderless (LEADER_INFO polls, {len(samples) / a.duration:.1f}/s): longest gap "
          f"{gap[0]:.2f} s overall (at {gap[1] - t0:.1f} s), {live[0]:.2f} s with a majority "
          f"healthy (at {live[1] - t0:.1f} s); "
          f"a leader agreed by a majority in {led:.0%} of polls")
    leader, secs, terms = converged
    if leader:
        print(f"converged: all {c.n} agree on {leader} (terms {terms}) {secs:.2f} s after "
              f"the last fault healed (bound {a.converge:.0f} s)")
    print(f"violations: {len(violations)}")
    for v in violations:
        print(f"  VIOLATION {v}")


def main():
    a = parse_args()
    stop = preflight("chaos")
    if stop is not None:
        return stop
    ensure_tc()
    seed = a.seed if a.seed is not None else random.randrange(1 << 32)
    c, violations = Cluster(a.nodes), []
    print(f"chaos: {a.nodes} nodes, {a.duration:.0f} s of faults, seed {seed}, project {c.id}", flush=True)
    try:
        c.up()
        leader, secs, _ = c.wait_leader()
        print(f"  first leader {leader} after {secs:.2f} s", flush=True)
        chaos = Chaos(c, random.Random(seed))
        netem = chaos.net.netem(c.names[0])
        print(f"  netem: {'yes' if netem else 'not in this kernel: loss = bpf random drop, slow = tbf'}")
        samples, claims, t0 = run_faults(chaos, a.duration)
        converged = converge(c, a.converge, violations)
        time.sleep(1.0)  # let the last lines reach the logs
        logs = {n: c.logs(n) for n in c.names}
        stats = safety(c, logs, claims, violations)
        summarize(a, chaos, stats, samples, t0, converged, violations)
        save_logs(logs, chaos.markers, a.logs)
        print(f"logs: {a.logs}")
        if a.timeline:
            note = (f"{a.nodes} nodes, {a.duration:.0f} s, {sum(chaos.counts.values())} faults, "
                    f"{stats['elections']} elections, seed {seed}")
            render_timeline(a.logs, a.timeline, note)
    finally:
        c.down()
    # One closing line in the plain form test runners read: the run is one check, passed or not.
    print(f"chaos: {0 if violations else 1} passed, {1 if violations else 0} failed")
    return 1 if violations else 0


if __name__ == "__main__":
    main_guard(main, "cluster")
