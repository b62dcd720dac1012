#!/usr/bin/env python3
"""Measurements of five local `raft node` processes on loopback, timed from the nodes' own log
lines (`t=` wall clock, microsecond stamps): cold starts, failovers, controller requests, a
quiet window, the timeline run, and the simulator's loopback table. Each returns plain data
(lists, dicts) for bench/report.py; nothing here formats a report.

A failover is the time from the moment the fault is injected (SHUTDOWN sent, or SIGKILL
delivered) to the first `event=elected` line of another node. Every process started here is
stopped by pid, Ctrl-C included (the cluster's stop(), and cleanup() for child processes).
"""
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import trace

import machine
import raftkit
import timeline

HEARTBEAT_MS = 50
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("BENCH_BIN") or os.path.join(ROOT, "target", "release", "raft")  # what is measured
PROCS = set()  # child processes other than nodes: ended by pid on the way out
progress = machine.progress


class Cluster(raftkit.LocalCluster):
    """5 `raft node` processes on NET.1..NET.5:5555, node defaults unless `env` says otherwise;
    logs and state in `folder`, whose new lines poll() parses."""

    def __init__(self, exe, folder, net="127.0.77", **env):
        super().__init__(exe, 5, first=net + ".1", folder=folder, **env)
        self.offsets, self.events = {}, []

    def kill9(self, name):
        """SIGKILL the node; returns the time the signal was sent. Its log gets a marker line."""
        t = self.kill(name)
        with open(self.log(name), "a") as f:
            f.write(raftkit.format_line([("t", "%.3f" % t), ("node", name), ("event", "killed"),
                                         ("signal", 9), ("source", "bench")]) + "\n")
        return t

    def send(self, name, request):
        """A controller request; returns the time it was sent."""
        host, port = self.addr(name)
        t = time.time()
        raftkit.send(request, name, port, host)
        return t

    def settled(self, without=None, timeout=10):
        """(leader, term) once every node (but `without`) names the same leader in the same term."""
        names = [n for n in self.names if n != without]

        def same_term(replies):
            return len({r["term"] for r in replies.values()}) == 1

        leader, _, replies = self.wait_leader(names, timeout=timeout, accept=same_term, interval=0.02)
        return leader, next(iter(replies.values()))["term"]

    def poll(self):
        """Log lines written since the last call, parsed."""
        new = []
        for name in self.names:
            try:
                with open(self.log(name), "rb") as f:
                    f.seek(self.offsets.get(name, 0))
                    chunk = f.read()
            except FileNotFoundError:
                continue
            chunk = chunk[:chunk.rfind(b"\n") + 1]
            self.offsets[name] = self.offsets.get(name, 0) + len(chunk)
            new += filter(None, map(raftkit.parse_line, chunk.decode(errors="replace").splitlines()))
        new.sort(key=lambda e: e["t"])
        self.events += new
        return new

    def wait_event(self, pred, timeout=5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for e in self.poll():
                if pred(e):
                    return e
            time.sleep(0.002)
        return None


def elected_other(old, t0):
    # log times are truncated to the millisecond
    return lambda e: e.get("event") == "elected" and e["node"] != old and e["t"] >= t0 - 0.001


def election_messages(events, t0, t_elected, n):
    """Datagrams an election cost, from the logs: each campaign broadcasts n-1 (pre-)vote
    requests; each granted (pre-)vote is one reply (a refusal is silence)."""
    count = 0
    for e in events:
        if not t0 - 0.001 <= e["t"] <= t_elected + 0.05:
            continue
        if e.get("event") == "become" and e.get("to") in ("PreCandidate", "Candidate") \
                and e["t"] <= t_elected:
            count += n - 1
        elif e.get("event") in ("vote", "pre-vote") and e.get("granted") == "true":
            count += 1
    return count


def heartbeat_phase():
    """Sleep to a uniformly random point of the leader's heartbeat cycle."""
    time.sleep(random.uniform(0.1, 0.1 + HEARTBEAT_MS / 1000))


# ---- measurements ----------------------------------------------------------------------------

def first_leader(exe, net, runs):
    """Cold starts: ms from the last node's `start` line to the first `elected` line."""
    times = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="raft-bench-") as d:
            c = Cluster(exe, d, net=net).start()
            try:
                ev = c.wait_event(lambda e: e.get("event") == "elected")

                def starts(c=c):
                    return [e["t"] for e in c.events if e.get("event") == "start"]

                if len(starts()) < 5:
                    c.wait_event(lambda e, starts=starts: len(starts()) == 5, 2)
            finally:
                c.stop()
            if ev is None or len(starts()) < 5:
                raise RuntimeError("no leader or not 5 nodes within 5 s of a cold start (is %s.x "
                                   "in use?)" % net)
            times.append(round((ev["t"] - max(starts())) * 1000))
    return times


def failovers(exe, net, trials, pre_vote, trace_file=None, **env):
    """Alternating SHUTDOWN and kill -9 of the leader, `trials` of each: {"shutdown": [ms],
    "kill": [ms], "messages", "campaigns", "classes", "late_ms", "disk_ms"} (per trial, in
    order). `env`: more node settings (e.g. CLUSTER_KEY). Every trial's trace goes to
    `trace_file` when given."""
    res = {"shutdown": [], "kill": [], "messages": [], "campaigns": [], "classes": [], "late_ms": [],
           "disk_ms": []}
    traces = []
    with tempfile.TemporaryDirectory(prefix="raft-bench-") as d:
        c = Cluster(exe, d, net=net, PRE_VOTE=int(pre_vote), **env).start()
        try:
            for i in range(2 * trials):
                mode = ("shutdown", "kill")[i % 2]
                leader, _ = c.settled()
                heartbeat_phase()
                c.poll()
                t0 = c.send(leader, "SHUTDOWN") if mode == "shutdown" else c.kill9(leader)
                ev = c.wait_event(elected_other(leader, t0))
                if ev is None:
                    raise RuntimeError("no new leader within 5 s after %s of %s" % (mode, leader))
                res[mode].append(round((ev["t"] - t0) * 1000))
                if mode == "shutdown":
                    c.send(leader, "CONVERT_FOLLOWER")
                else:
                    c.spawn(leader)
                c.settled()
                c.poll()
                res["messages"].append(election_messages(c.events, t0, ev["t"], 5))
                res["campaigns"].append(sum(1 for e in c.events if t0 - 0.001 <= e["t"] <= ev["t"]
                                            and e.get("to") == "Candidate"))
                traces.append(note_trace(res, c.events, t0, ev, leader, mode))
                progress("  PRE_VOTE=%d %-8s %3d/%d: %4d ms" % (pre_vote, mode, i // 2 + 1, trials,
                                                              res[mode][-1]))
        finally:
            c.stop()
    if trace_file:
        with open(trace_file, "w") as f:
            f.write("\n\n".join(traces) + "\n")
    return res


def note_trace(res, events, t0, ev, leader, mode):
    """Who fired when and who voted for whom in one failover trial (bench/trace.py): adds the
    trial's class, timer lateness and disk writes to `res`, returns its rendering."""
    rows = trace.trial(events, t0, ev["t"], leader)
    res["classes"].append(trace.category(rows))
    res["late_ms"] += [int(r["late_us"]) / 1000 for r in rows if r.get("late_us")]
    res["disk_ms"] += [int(r["persist_us"]) / 1000 for r in rows
                       if r.get("persist_us") and r["what"] == "Candidate"]
    return "%s of %s: %d ms, %s\n%s" % (mode, leader, round((ev["t"] - t0) * 1000),
                                        trace.classify(rows), "\n".join(trace.render(rows, t0)))


def controller_moves(exe, net, trials):
    """CONVERT_FOLLOWER to the leader -> the next `elected` line (and whether it was another
    node); TIMEOUT to a random follower -> its own `elected` line."""
    res = {"convert": [], "convert_other": 0, "timeout": []}
    with tempfile.TemporaryDirectory(prefix="raft-bench-") as d:
        c = Cluster(exe, d, net=net).start()
        try:
            for i in range(trials):
                leader, _ = c.settled()
                heartbeat_phase()
                c.poll()
                t0 = c.send(leader, "CONVERT_FOLLOWER")
                ev = c.wait_event(lambda e, t0=t0: e.get("event") == "elected" and e["t"] >= t0 - 0.001)
                if ev is None:
                    raise RuntimeError("no leader within 5 s after CONVERT_FOLLOWER to %s" % leader)
                res["convert"].append(round((ev["t"] - t0) * 1000))
                res["convert_other"] += ev["node"] != leader
                leader, _ = c.settled()
                follower = random.choice([m for m in c.names if m != leader])
                heartbeat_phase()
                c.poll()
                t0 = c.send(follower, "TIMEOUT")
                ev = c.wait_event(lambda e, t0=t0: e.get("event") == "elected" and e["t"] >= t0 - 0.001)
                if ev is None or ev["node"] != follower:
                    raise RuntimeError("TIMEOUT to %s: elected %s" % (follower, ev))
                res["timeout"].append(round((ev["t"] - t0) * 1000))
                progress("  controller %2d/%d: convert %4d ms, timeout %3d ms"
                         % (i + 1, trials, res["convert"][-1], res["timeout"][-1]))
        finally:
            c.stop()
    return res


def quiet(exe, net, seconds, stop_one):
    """A fault-free window: term changes, datagrams, CPU and memory per role."""
    out = {}
    with tempfile.TemporaryDirectory(prefix="raft-bench-") as d:
        c = Cluster(exe, d, net=net).start()
        try:
            leader, term = c.settled()
            time.sleep(1)
            c.poll()
            pids = {name: p.pid for name, p in c.procs.items()}
            t0, a = time.time(), machine.snmp_udp()
            use = machine.usage(pids, seconds)
            b, t1 = machine.snmp_udp(), time.time()
            c.poll()
            out["changes"] = sum(1 for e in c.events if t0 <= e["t"] <= t1
                                 and e.get("event") in ("term", "elected", "become"))
            out["after"] = c.settled()
            out["before"] = (leader, term)
            out["seconds"] = t1 - t0
            out["out_per_s"] = (b["OutDatagrams"] - a["OutDatagrams"]) / (t1 - t0)
            out["in_per_s"] = (b["InDatagrams"] - a["InDatagrams"]) / (t1 - t0)
            out["leader"] = use.pop(leader)
            out["followers"] = use
            if stop_one:  # a silenced node: no timers, sends nothing
                follower = next(iter(use))
                c.send(follower, "SHUTDOWN")
                time.sleep(0.5)
                out["stopped_s"] = min(10, seconds)
                out["stopped"] = machine.usage({follower: pids[follower]}, out["stopped_s"])[follower]
        finally:
            c.stop()
    return out


def lo_up():
    """Bring up the loopback interface of a fresh network namespace (SIOCGIFFLAGS/SIOCSIFFLAGS)."""
    import fcntl
    import struct
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        flags = struct.unpack("16sH14x", fcntl.ioctl(s, 0x8913, struct.pack("16sH14x", b"lo", 0)))[1]
        fcntl.ioctl(s, 0x8914, struct.pack("16sH14x", b"lo", flags | 1))


def quiet_isolated(exe, net, seconds):
    """quiet() in a private network namespace (`unshare -n`), where /proc/net/snmp counts this
    cluster's datagrams and nothing else; in this namespace (baseline noted) when that fails."""
    if shutil.which("unshare"):
        cmd = ["unshare", "-n" if os.geteuid() == 0 else "-rn", sys.executable, os.path.abspath(__file__),
               "--quiet-child", exe, net, str(seconds)]
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        PROCS.add(p)
        stdout, _ = p.communicate()
        PROCS.discard(p)
        if p.returncode == 0:
            return dict(json.loads(stdout), netns=True)
        progress("  (no private network namespace: counting in this one)")
    a = machine.snmp_udp()
    time.sleep(5)  # what other programs send meanwhile
    b = machine.snmp_udp()
    return dict(quiet(exe, net, seconds, True), netns=False,
                baseline_per_s=(b["OutDatagrams"] - a["OutDatagrams"]) / 5)


def timeline_run(exe, net):
    """A short scripted run, every kind of fault once: {"events": parsed log lines, "end": t}
    for timeline.render()."""
    with tempfile.TemporaryDirectory(prefix="raft-bench-") as d:
        c = Cluster(exe, d, net=net).start()
        try:
            def pause():
                time.sleep(0.8)

            leader, _ = c.settled()
            pause()
            c.send(leader, "SHUTDOWN")
            pause()
            c.settled(without=leader)
            c.send(leader, "CONVERT_FOLLOWER")
            pause()
            leader, _ = c.settled()
            c.kill9(leader)
            pause()
            c.settled(without=leader)
            c.spawn(leader)
            pause()
            leader, _ = c.settled()
            c.send(next(n for n in c.names if n != leader), "TIMEOUT")
            pause()
            leader, _ = c.settled()
            c.send(leader, "CONVERT_FOLLOWER")
            pause()
            c.settled()
            time.sleep(0.5)
        finally:
            end = time.time()
            c.stop()
        return {"events": timeline.read_logs([d]), "end": end}


def simulator(trials=2000):
    """The simulator's loopback failover rows (tests/sim/experiments.rs, `loopback_failover`):
    {"timers/prevote": {p50, p90, p99, max, split, n}}, or {"skipped": why}."""
    cmd = ["cargo", "test", "--release", "--test", "sim", "loopback_failover", "--", "--nocapture",
           "--test-threads=1"]
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False,
                       env=dict(os.environ, SIM_TRIALS=str(trials)))
    rows = {}
    for line in p.stdout.splitlines():
        if line.startswith("SIM "):
            kv = dict(f.split("=", 1) for f in line.split()[1:])
            rows["%s/%s" % (kv["timers"], kv["prevote"])] = {k: float(v) for k, v in kv.items()
                                                           if k not in ("timers", "prevote")}
    if p.returncode or not rows:
        return {"skipped": "`%s` failed: %s" % (" ".join(cmd), (p.stderr or p.stdout).strip()[-300:])}
    return rows


def cleanup():
    """SIGTERM (a child then stops its own nodes), then SIGKILL after 3 s, by pid."""
    for p in list(PROCS):
        if p.poll() is None:
            os.kill(p.pid, signal.SIGTERM)
            try:
                p.wait(3)
            except subprocess.TimeoutExpired:
                os.kill(p.pid, signal.SIGKILL)
                p.wait()
        PROCS.discard(p)


def quiet_child(exe, net, seconds):
    lo_up()
    print(json.dumps(quiet(exe, net, float(seconds), True)))
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] != ["--quiet-child"]:
        sys.exit("usage: local_nodes.py --quiet-child EXE NET SECONDS (bench/bench.py runs it)")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(quiet_child(*sys.argv[2:5]))
