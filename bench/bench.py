#!/usr/bin/env python3
"""Benchmarks of the Raft election cluster: writes BENCHMARKS.md, failover.svg and timeline.svg.

    make bench                        (after building both binaries: PYTHONPATH=Controller:tests/docker
                                      python3 bench/bench.py)
    BENCH_QUICK=1 make bench          about a minute; writes to build/bench unless BENCH_OUT is set
    BENCH_TRIALS=N                    trials per series (cold starts, each failover series)
    BENCH_QUIET_S=S                   length of the fault-free window (default 60 s)
    BENCH_OUT=DIR                     where the report and pictures go (default docs/)
    BENCH_NET=127.0.77                loopback /24 for the local nodes (node K is .K:5555)
    BENCH_DOCKER=0                    skip the container figures
    BENCH_BIN=PATH                    the glibc binary to measure (e.g. an older build, for "before" figures)
    BENCH_ONLY=failover               only the failover series and the controller requests
    BENCH_SIM=0                       skip the simulator's loopback table (cargo test --release)

Local nodes run as processes on loopback with default timeouts. Times come from the nodes' own
log lines (`t=` wall clock, microsecond resolution): a failover is the time from the moment the
fault is injected (SHUTDOWN sent, or SIGKILL delivered) to the first `event=elected` line of
another node. Every process started here is killed by pid on exit, Ctrl-C included.
"""
import calendar
import json
import math
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from xml.sax.saxutils import escape

import cluster as docker_cluster
import floor
import raftkit
import timeline
import trace

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GLIBC = os.environ.get("BENCH_BIN") or os.path.join(ROOT, "target", "release", "raft")
MUSL = os.path.join(ROOT, "target", "x86_64-unknown-linux-musl", "release", "raft")
HEARTBEAT_MS = 50
# Ongaro, "Consensus: Bridging Theory and Practice" (2014), ch. 9: time to elect a new leader after
# the leader crashes, 5 servers, 150-300 ms election timeouts. Reference figures, not ours.
REFERENCE = [(171, "median 171"), (415, "p99 415"), (603, "max 603")]
TARGETS = {"failover_median": 165, "failover_p99": 260, "failover_max": 320, "split_share": 0.02,
           "first_leader": 1000, "rss_kib": 2048, "follower_cpu": 0.5, "binary_kib": 600,
           "image_kib": 1024, "prevote_p99_ratio": 1.05, "docker_p99": 300, "convert_p99": 20,
           "sim_match": 0.10}
PROCS = set()  # child processes other than nodes: killed by pid on the way out


# ---- statistics ------------------------------------------------------------------------------

def percentile(xs, p):
    """Linear interpolation between closest ranks (numpy's default); p in 0..100."""
    s = sorted(xs)
    k = (len(s) - 1) * p / 100
    lo = math.floor(k)
    return s[lo] + (s[min(lo + 1, len(s) - 1)] - s[lo]) * (k - lo)


def summarize(xs):
    if not xs:
        return None
    return {"n": len(xs), "median": statistics.median(xs), "min": min(xs), "max": max(xs),
            "p99": percentile(xs, 99), "mean": statistics.fmean(xs)}


def mark(ok):
    return "PASS" if ok else "MISS"


# ---- a local cluster -------------------------------------------------------------------------

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
        same_term = lambda replies: len({r["term"] for r in replies.values()}) == 1  # noqa: E731
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


# ---- measurements ----------------------------------------------------------------------------

def first_leader(cfg, runs):
    """Cold starts: ms from the last node's `start` line to the first `elected` line."""
    times = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="raft-bench-") as d:
            c = Cluster(GLIBC, d, net=cfg["net"]).start()
            try:
                ev = c.wait_event(lambda e: e.get("event") == "elected")
                starts = lambda: [e["t"] for e in c.events if e.get("event") == "start"]
                if len(starts()) < 5:
                    c.wait_event(lambda e: len(starts()) == 5, 2)
            finally:
                c.stop()
            if ev is None or len(starts()) < 5:
                raise RuntimeError("no leader or not 5 nodes within 5 s of a cold start (is %s.x "
                                   "in use?)" % cfg["net"])
            times.append(round((ev["t"] - max(starts())) * 1000))
    return times


def failovers(cfg, trials, pre_vote, **env):
    """Alternating SHUTDOWN and kill -9 of the leader; returns {mode: [ms]} and message counts.
    `env`: more node settings (e.g. CLUSTER_KEY)."""
    res = {"shutdown": [], "kill": [], "messages": [], "campaigns": [], "classes": [], "late_ms": [],
           "disk_ms": [], "traces": []}
    with tempfile.TemporaryDirectory(prefix="raft-bench-") as d:
        c = Cluster(GLIBC, d, net=cfg["net"], PRE_VOTE=int(pre_vote), **env).start()
        try:
            for i in range(2 * trials):
                mode = ("shutdown", "kill")[i % 2]
                leader, _ = c.settled()
                time.sleep(random.uniform(0.1, 0.1 + HEARTBEAT_MS / 1000))  # random heartbeat phase
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
                note_trace(res, c.events, t0, ev, leader, mode)
                progress("  PRE_VOTE=%d %-8s %3d/%d: %4d ms" % (pre_vote, mode, i // 2 + 1, trials,
                                                              res[mode][-1]))
        finally:
            c.stop()
    return res


def note_trace(res, events, t0, ev, leader, mode):
    """Who fired when and who voted for whom in one failover trial (bench/trace.py)."""
    rows = trace.trial(events, t0, ev["t"], leader)
    res["classes"].append(trace.category(rows))
    res["late_ms"] += [int(r["late_us"]) / 1000 for r in rows if r.get("late_us")]
    res["disk_ms"] += [int(r["persist_us"]) / 1000 for r in rows
                       if r.get("persist_us") and r["what"] == "Candidate"]
    res["traces"].append("%s of %s: %d ms, %s\n%s" % (mode, leader, round((ev["t"] - t0) * 1000),
                                                      trace.classify(rows),
                                                      "\n".join(trace.render(rows, t0))))


def controller_moves(cfg, trials):
    """CONVERT_FOLLOWER to the leader -> the next `elected` line (and whether it was another
    node); TIMEOUT to a random follower -> its own `elected` line."""
    res = {"convert": [], "convert_other": 0, "timeout": []}
    with tempfile.TemporaryDirectory(prefix="raft-bench-") as d:
        c = Cluster(GLIBC, d, net=cfg["net"]).start()
        try:
            for i in range(trials):
                leader, _ = c.settled()
                time.sleep(random.uniform(0.1, 0.1 + HEARTBEAT_MS / 1000))
                c.poll()
                t0 = c.send(leader, "CONVERT_FOLLOWER")
                ev = c.wait_event(lambda e: e.get("event") == "elected" and e["t"] >= t0 - 0.001)
                if ev is None:
                    raise RuntimeError("no leader within 5 s after CONVERT_FOLLOWER to %s" % leader)
                res["convert"].append(round((ev["t"] - t0) * 1000))
                res["convert_other"] += ev["node"] != leader
                leader, _ = c.settled()
                follower = random.choice([m for m in c.names if m != leader])
                time.sleep(random.uniform(0.1, 0.1 + HEARTBEAT_MS / 1000))
                c.poll()
                t0 = c.send(follower, "TIMEOUT")
                ev = c.wait_event(lambda e: e.get("event") == "elected" and e["t"] >= t0 - 0.001)
                if ev is None or ev["node"] != follower:
                    raise RuntimeError("TIMEOUT to %s: elected %s" % (follower, ev))
                res["timeout"].append(round((ev["t"] - t0) * 1000))
                progress("  controller %2d/%d: convert %4d ms, timeout %3d ms"
                         % (i + 1, trials, res["convert"][-1], res["timeout"][-1]))
        finally:
            c.stop()
    return res


def snmp_udp():
    with open("/proc/net/snmp") as f:
        rows = [line.split() for line in f if line.startswith("Udp:")]
    return dict(zip(rows[0][1:], map(int, rows[1][1:])))


def resources(c, seconds):
    """CPU (% of one core) and memory per node over `seconds` of whatever the cluster is doing."""
    pids = {name: p.pid for name, p in c.procs.items()}
    before, t = {n: raftkit.cpu_seconds(p) for n, p in pids.items()}, time.monotonic()
    time.sleep(seconds)
    after, dt = {n: raftkit.cpu_seconds(p) for n, p in pids.items()}, time.monotonic() - t
    return {n: dict(cpu=100.0 * (after[n] - before[n]) / dt, **raftkit.memory_kib(p))
            for n, p in pids.items()}


def quiet(cfg, exe, seconds, stop_one):
    """A fault-free window: term changes, datagrams, CPU and memory per role."""
    out = {}
    with tempfile.TemporaryDirectory(prefix="raft-bench-") as d:
        c = Cluster(exe, d, net=cfg["net"]).start()
        try:
            leader, term = c.settled()
            time.sleep(1)
            c.poll()
            t0, a = time.time(), snmp_udp()
            usage = resources(c, seconds)
            b, t1 = snmp_udp(), time.time()
            c.poll()
            out["changes"] = sum(1 for e in c.events if t0 <= e["t"] <= t1
                                 and e.get("event") in ("term", "elected", "become"))
            out["after"] = c.settled()
            out["before"] = (leader, term)
            out["seconds"] = t1 - t0
            out["out_per_s"] = (b["OutDatagrams"] - a["OutDatagrams"]) / (t1 - t0)
            out["in_per_s"] = (b["InDatagrams"] - a["InDatagrams"]) / (t1 - t0)
            out["leader"] = usage.pop(leader)
            out["followers"] = usage
            if stop_one:  # a silenced node: no timers, sends nothing
                follower = next(iter(usage))
                c.send(follower, "SHUTDOWN")
                time.sleep(0.5)
                out["stopped"] = resources(c, min(10, seconds))[follower]
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


def quiet_isolated(cfg, seconds):
    """quiet() in a private network namespace (`unshare -n`), where /proc/net/snmp counts this
    cluster's datagrams and nothing else; in this namespace (baseline noted) when that fails."""
    if shutil.which("unshare"):
        cmd = ["unshare", "-n" if os.geteuid() == 0 else "-rn", sys.executable, os.path.abspath(__file__),
               "--quiet-child", cfg["net"], str(seconds)]
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        PROCS.add(p)
        stdout, _ = p.communicate()
        PROCS.discard(p)
        if p.returncode == 0:
            return dict(json.loads(stdout), netns=True)
        progress("  (no private network namespace: counting in this one)")
    a = snmp_udp()
    time.sleep(5)  # what other programs send meanwhile
    b = snmp_udp()
    return dict(quiet(cfg, GLIBC, seconds, True), netns=False,
                baseline_per_s=(b["OutDatagrams"] - a["OutDatagrams"]) / 5)


def timeline_run(cfg, path):
    """A short scripted run whose logs become the timeline picture: every kind of fault once."""
    with tempfile.TemporaryDirectory(prefix="raft-bench-") as d:
        c = Cluster(GLIBC, d, net=cfg["net"]).start()
        try:
            pause = lambda: time.sleep(0.8)
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
        events = timeline.read_logs([d])
    with open(path, "w") as f:
        f.write(timeline.render(events, "Election timeline, 5 local nodes",
                                "SHUTDOWN the leader, revive it; kill -9 the leader, restart it; "
                                "TIMEOUT to a follower; CONVERT_FOLLOWER to the leader", end=end))
    return len(timeline.leaderships(events))


# ---- containers ------------------------------------------------------------------------------

def docker_events(c, names, since=None):
    """The parsed log lines of containers (`docker logs`, optionally --since a Unix time), by time."""
    return sorted((e for es in c.events(names, since).values() for e in es), key=lambda e: e["t"])


def finished_at(run, container):
    """When the container's process ended (State.FinishedAt, UTC, ns) as a Unix time."""
    stamp = run("docker", "inspect", "-f", "{{.State.FinishedAt}}", container).stdout.strip()
    day, _, frac = stamp.rstrip("Z").partition(".")
    return calendar.timegm(time.strptime(day, "%Y-%m-%dT%H:%M:%S")) + float("0." + (frac or "0"))


def containers(ups, kills):
    """Figures for the Docker image and a compose cluster (tests/docker/cluster.py's harness)."""
    if os.environ.get("BENCH_DOCKER", "1") == "0":
        return {"skipped": "BENCH_DOCKER=0"}
    dc = docker_cluster
    if not dc.daemon_answers():
        return {"skipped": "no Docker daemon answers"}
    progress("  make image")
    build = subprocess.run(["make", "-C", ROOT, "--no-print-directory", "image"], capture_output=True, text=True)
    if build.returncode:
        return {"skipped": "`make image` failed: " + (build.stderr or build.stdout).strip()[-300:]}
    out = {"image": dc.IMAGE, "image_bytes": int(dc.run("docker", "image", "inspect", "-f", "{{.Size}}",
                                                       dc.IMAGE).stdout), "up": [], "up_last_start": [],
           "kill": [], "kill_cli": []}
    for i in range(ups):
        c = dc.Cluster(5)
        try:
            t0 = time.time()
            c.up()
            c.wait_leader()
            ev = docker_events(c, c.names)
            first = min(e["t"] for e in ev if e.get("event") == "elected")
            out["up"].append(round((first - t0) * 1000))
            last_start = max(e["t"] for e in ev if e.get("event") == "start")
            out["up_last_start"].append(round((first - last_start) * 1000))
            progress("  compose up %d/%d: first elected %d ms after `up -d` was invoked, %d ms after the "
                     "last node's start line" % (i + 1, ups, out["up"][-1], out["up_last_start"][-1]))
        finally:
            c.down()
    c = dc.Cluster(5)
    try:
        c.up()
        c.wait_leader()
        time.sleep(2)
        out["memory"] = {n: usage.split()[0] for n, usage in c.memory().items()}
        for i in range(kills):
            leader, _, _ = c.wait_leader()
            time.sleep(random.uniform(0.1, 0.1 + HEARTBEAT_MS / 1000))
            others = [n for n in c.names if n != leader]
            t_cli = time.time()
            c.docker("kill", leader)
            c.wait_leader(among=others)
            died = finished_at(dc.run, c.container(leader))
            ev = [e for e in docker_events(c, others, t_cli - 1) if e.get("event") == "elected"
                  and e["t"] >= t_cli - 0.001]
            out["kill"].append(round((ev[0]["t"] - died) * 1000))
            out["kill_cli"].append(round((ev[0]["t"] - t_cli) * 1000))
            progress("  docker kill %d/%d: %s -> %s, %d ms after the container died (%d ms after "
                     "`docker kill` was invoked)" % (i + 1, kills, leader, ev[0]["node"], out["kill"][-1],
                                                    out["kill_cli"][-1]))
            c.docker("start", leader)
            c.wait_leader()
    finally:
        c.down()
    return out


# ---- pictures and report ---------------------------------------------------------------------

def histogram_svg(series, refs, title, width=720, height=360, bin_ms=10):
    """Side-by-side histograms, one per series ({label: [ms]}), with labelled reference lines."""
    colours = ["#4e79a7", "#e15759", "#59a14f", "#b07aa1"]
    top_ms = max([max(v) for v in series.values() if v] + [r[0] for r in refs]) + 2 * bin_ms
    top_ms = int(math.ceil(top_ms / 100.0) * 100)
    bins = top_ms // bin_ms
    counts = {k: [0] * bins for k in series}
    for k, v in series.items():
        for ms in v:
            counts[k][min(max(int(ms // bin_ms), 0), bins - 1)] += 1
    peak = max([max(c) for c in counts.values()] + [1])
    left, right, top, bottom = 50, 20, 40 + 16 * (len(series) + 1), 40
    pw, ph = width - left - right, height - top - bottom
    x = lambda ms: left + ms / top_ms * pw
    y = lambda n: top + ph - n / peak * ph
    s = ['<text x="%d" y="18" font-size="13" font-weight="bold">%s</text>' % (left, escape(title))]
    step = max(1, int(math.ceil(peak / 5.0)))
    for n in range(0, peak + 1, step):
        s.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#e5e5e5"/><text x="%d" y="%.1f" '
                 'text-anchor="end">%d</text>' % (left, left + pw, y(n), y(n), left - 4, y(n) + 4, n))
    sub = pw / bins / len(series)
    for i, (k, c) in enumerate(counts.items()):
        for b, n in enumerate(c):
            if n:
                s.append('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>'
                         % (x(b * bin_ms) + i * sub, y(n), sub, y(0) - y(n), colours[i]))
        st = summarize(series[k])
        s.append('<rect x="%d" y="%d" width="12" height="10" fill="%s"/><text x="%d" y="%d">%s: '
                 'median %d ms, p99 %d ms, max %d ms</text>' % (left, 28 + 16 * i, colours[i], left + 16,
                                                                  37 + 16 * i, escape(k), st["median"],
                                                                  st["p99"], st["max"]))
    ly = 37 + 16 * len(series)
    s.append('<path d="M%d %dh12" stroke="#333" stroke-dasharray="4 3"/><text x="%d" y="%d">'
             'reference, not measured here: Raft dissertation (Ongaro 2014, ch. 9), crashed leader, '
             '150-300 ms timeouts</text>' % (left, ly - 4, left + 16, ly))
    for ms, label in refs:
        s.append('<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#333" stroke-dasharray="4 3"/>'
                 '<text x="%.1f" y="%d" font-size="10" fill="#333">%s</text>'
                 % (x(ms), x(ms), top + 2, top + ph, x(ms) + 3, top + 12, escape(label)))
    s.append('<path d="M%d %dV%dH%d" fill="none" stroke="black"/>' % (left, top, top + ph, left + pw))
    for ms in range(0, top_ms + 1, 100):
        s.append('<text x="%.1f" y="%d" text-anchor="middle">%d</text>' % (x(ms), top + ph + 14, ms))
    s.append('<text x="%d" y="%d" text-anchor="middle">failover time (ms), from the fault to the new '
             'leader\'s "elected" log line; %d ms bins</text>' % (left + pw // 2, height - 8, bin_ms))
    s.append('<text transform="translate(14 %d) rotate(-90)" text-anchor="middle">trials</text>'
             % (top + ph // 2))
    return timeline.svg(width, height, s)


def simulator(trials=2000):
    """The simulator's loopback failover rows (tests/sim/experiments.rs, `loopback_failover`):
    {"timers/prevote": {p50, p90, p99, max, split, n}}, or {"skipped": why}."""
    if os.environ.get("BENCH_SIM", "1") == "0":
        return {"skipped": "BENCH_SIM=0"}
    cmd = ["cargo", "test", "--release", "--test", "sim", "loopback_failover", "--", "--nocapture",
           "--test-threads=1"]
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
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


def progress(msg):
    print(msg, flush=True)


def machine():
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {"arch": platform.machine(), "cpu": cpu, "cores": os.cpu_count(),
            "kernel": platform.release(), "date": time.strftime("%Y-%m-%d %H:%M %Z"), "load": loadavg()}


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def fmt_stats(st):
    return "%d | %d | %d | %d | %d" % (st["n"], st["median"], st["min"], st["p99"], st["max"])


def report(r):
    """BENCHMARKS.md from the measurements `r`, section by section."""
    return "\n".join(report_header(r) + report_failover(r) + report_quiet(r)
                     + report_footprint(r) + report_timeline(r))


def report_header(r):
    """Title, machine and method."""
    m = r["machine"]
    L = ["# Benchmarks", "",
         "Generated by `%s` on %s in %.0f s. Machine: %s, %s, %d cores, Linux %s, Python %s; "
         "1-minute load average %.1f at the start, %.1f at the end (other work on the machine "
         "shares its cores)." % (r["command"], m["date"], r["seconds"], m["arch"], m["cpu"], m["cores"],
                                m["kernel"], platform.python_version(), m["load"], r["load_end"]), "",
         "Local figures: 5 `raft node` processes (release build) on loopback %s.1-5:5555, default "
         "timeouts (election 150-300 ms, heartbeat %d ms), CheckQuorum on, `DATA_DIR` in a temporary "
         "folder. Times come from the nodes' own log lines (wall clock, microsecond stamps). p99 is "
         "interpolated between the closest ranks, so with 100 trials or fewer it lies between the two "
         "largest values. PASS/MISS compare with the project's targets; a MISS does not fail the run."
         % (r["net"], HEARTBEAT_MS), ""]
    return L


def report_failover(r):
    """Cold start and failover tables, PreVote on and off."""
    T = TARGETS
    fl = r["first_leader"]
    L = ["## Time to first leader (cold start)", "",
         "From the last node's `start` line to the first `elected` line; fresh state each run.", "",
         "runs | median ms | min | p99 | max | target (max <= %d ms)" % T["first_leader"],
         "---|---|---|---|---|---",
         "%s | %s" % (fmt_stats(fl), mark(fl["max"] <= T["first_leader"])), ""]
    return L + failover_lines(r)


def report_quiet(r):
    """Messages per election and at steady state; the quiet window."""
    q = r["quiet"]
    L = ["## Messages", "",
         "Per election (from the logs): every campaign (PreCandidate or Candidate) sends one request "
         "to each of the 4 peers, every granted (pre-)vote is one reply; refusals are not sent. "
         "Counted from the fault to the `elected` line (grants up to 50 ms later), over the failover "
         "trials above.", "",
         "PreVote | median | min | max", "---|---|---|---"]
    for pv in (1, 0):
        msgs = r["failover"][pv]["raw"]["messages"]
        L.append("%s | %d | %d | %d" % (("off", "on")[pv], statistics.median(msgs), min(msgs), max(msgs)))
    where = ("in a private network namespace (`unshare -n`) that holds only the five nodes, so "
             "nothing else is counted" if q["netns"] else "in the shared network namespace; other "
             "programs sent %.1f datagrams/s in a 5 s window just before" % q["baseline_per_s"])
    expected = 2 * 4 * 1000 // HEARTBEAT_MS
    L += ["", "At steady state: UDP datagrams sent and received, from `/proc/net/snmp` (`Udp:` "
          "`OutDatagrams`, `InDatagrams`) over the %.0f s quiet window below, with no controller "
          "traffic, %s. Heartbeat arithmetic: the leader sends 4 heartbeats every %d ms and gets 4 "
          "replies, %d datagrams/s; the measured rate means one heartbeat round every %.1f ms."
          % (q["seconds"], where, HEARTBEAT_MS, expected, 8000 / q["out_per_s"]), "",
          "sent/s | received/s | expected/s | heartbeat period (ms)", "---|---|---|---",
          "%.1f | %.1f | %d | %.1f" % (q["out_per_s"], q["in_per_s"], expected, 8000 / q["out_per_s"]), ""]
    L += ["## Quiet cluster", "",
          "%.0f s without faults after the first leader settled: %d term changes, elections or role "
          "changes in the logs (leader %s in term %s before, %s in term %s after): %s." % (
              q["seconds"], q["changes"], q["before"][0], q["before"][1], q["after"][0],
              q["after"][1], mark(q["changes"] == 0 and q["before"] == q["after"])), ""]
    return L


def report_footprint(r):
    """Binary sizes, CPU and memory per role."""
    T, q = TARGETS, r["quiet"]
    L = ["## Footprint", "", "binary | bytes | KiB | target (<= %d KiB)" % T["binary_kib"], "---|---|---|---"]
    for name, size in r["binaries"].items():
        L.append("%s | %d | %.0f | %s" % (name, size, size / 1024, mark(size <= T["binary_kib"] * 1024)))
    L += ["", "Per process, during the quiet windows: CPU is (utime+stime) from `/proc/PID/stat` over "
          "the window, in %% of one core; memory is `VmRSS` (and the peak `VmHWM`) from "
          "`/proc/PID/status` at its end. The stopped node is a follower silenced with `SHUTDOWN` "
          "(no timers, sends nothing, still receives and drops the leader's heartbeats), measured over %.0f s." % q["stopped_s"], "",
          "build | role | CPU %% of a core | VmRSS KiB | VmHWM KiB | target (RSS <= %d KiB; follower CPU < %.1f%%)"
          % (T["rss_kib"], T["follower_cpu"]), "---|---|---|---|---|---"]
    for build, qq in (("glibc", q), ("musl static", r["quiet_musl"])):
        rows = [("leader", [qq["leader"]])] + [("follower", list(qq["followers"].values()))]
        if "stopped" in qq:
            rows.append(("stopped", [qq["stopped"]]))
        for role, us in rows:
            cpu, rss, hwm = (max(u[k] for u in us) for k in ("cpu", "VmRSS", "VmHWM"))
            ok = rss <= T["rss_kib"] and (role != "follower" or cpu < T["follower_cpu"])
            L.append("%s | %s%s | %.2f | %d | %d | %s" % (build, role, " (max of %d)" % len(us) if len(us) > 1 else "",
                                                        cpu, rss, hwm, mark(ok)))
    L += ["", "Over %.0f s for glibc, %.0f s for the static build." % (q["seconds"], r["quiet_musl"]["seconds"]), ""]
    return L


def report_timeline(r):
    """The containers and the election timeline."""
    L = ["## Containers", ""] + container_lines(r["containers"]) + [""]
    L += ["## Election timeline", "",
          "A scripted local run (%d leader terms): SHUTDOWN of the leader, revive, kill -9 of the "
          "new leader, restart, TIMEOUT to a follower, CONVERT_FOLLOWER to the leader. Drawn from "
          "the node logs by `PYTHONPATH=Controller python3 bench/timeline.py LOGDIR -o timeline.svg`, which also reads "
          "saved `docker logs` output." % r["timeline_terms"], "", "![election timeline](timeline.svg)", ""]
    return L

def failover_lines(r):
    """The failover and controller sections: real figures, floor, breakdown, simulator."""
    T, fo = TARGETS, r["failover"]
    L = ["## Failover", "",
         "The leader is made to fail at a random point of its heartbeat cycle: `SHUTDOWN` (it goes "
         "silent) or `kill -9`. Time from the fault to the first `elected` line of another node. "
         "After each trial the node is revived (`CONVERT_FOLLOWER`) or restarted with its "
         "`DATA_DIR`, and the next trial waits until all five nodes name one leader. \"Campaigns\" "
         "counts candidacies (`become to=Candidate`) from the fault to the new leader: more than one "
         "means two nodes stood in one term (a split or a collision one of them won) or a vote failed.",
         "", "PreVote | fault | trials | median ms | min | p99 | max | more than one campaign | target "
         "(median <= %d, p99 <= %d, max <= %d, <= %.0f%% more than one)"
         % (T["failover_median"], T["failover_p99"], T["failover_max"], 100 * T["split_share"]),
         "---|---|---|---|---|---|---|---|---"]
    for pv in (1, 0):
        raw = fo[pv]["raw"]
        for mode in ("shutdown", "kill"):
            st = fo[pv][mode]
            camps = [c for c, m in zip(raw["campaigns"], cycle_modes(len(raw["campaigns"])))
                     if m == mode]
            share = sum(c > 1 for c in camps) / max(len(camps), 1)
            ok = (st["median"] <= T["failover_median"] and st["p99"] <= T["failover_p99"]
                  and st["max"] <= T["failover_max"] and share <= T["split_share"])
            L.append("%s | %s | %s | %.1f%% | %s" % (("on", "off")[1 - pv],
                                                   ("SHUTDOWN", "kill -9")[mode == "kill"],
                                                   fmt_stats(st), 100 * share, mark(ok)))
    f = r["floor"]
    L.append("floor | | %d draws | %.0f | | %.0f | %.0f | | p90 %.0f; `python3 bench/floor.py`"
             % (f["draws"], f["p50"], f["p99"], f["max"], f["p90"]))
    L += [""]
    for mode in ("shutdown", "kill"):
        on, off = fo[1][mode]["p99"], fo[0][mode]["p99"]
        L.append("- PreVote on vs off, %s: p99 %d vs %d ms (%+.0f%%): %s (target: on within 5%% of off)."
                 % (("SHUTDOWN", "kill -9")[mode == "kill"], on, off, 100.0 * (on - off) / off,
                    mark(on <= off * T["prevote_p99_ratio"])))
    L.append("- Floor: 4 survivors, each redrawing a 150-300 ms timeout at every 50 ms heartbeat, the "
             "leader failing at a uniform phase of the cycle, zero delay, no split votes: the first "
             "timer to fire, by Monte Carlo (`bench/floor.py`, 200,000 draws, seed 1).")
    L.append("- Reference (not measured here): Ongaro's dissertation, ch. 9, reports for 150-300 ms "
             "timeouts and a crashed leader a median of about 171 ms, p99 about 415 ms and a maximum "
             "of about 603 ms.")
    L += ["", "![failover histogram](failover.svg)", "", "### Where the time goes", "",
          "Per trial, from the nodes' logs (microsecond stamps): when each survivor's timer fired and "
          "how late (`late_us`, against the deadline the core asked for), when each (pre-)vote was "
          "granted or refused and for whom, and how long a candidate's write of its term and vote "
          "took (`persist_us`). Every trial is in `build/bench/failover-trace-prevote-{on,off}.txt` "
          "(`bench/trace.py` reads any log folder the same way).", "",
          "What made the tail, and what closed it. Before this design (timers on the kernel's "
          "tick, no pre-vote hold), `make bench` measured with PreVote on: after `SHUTDOWN` median "
          "162 ms, p99 413, max 567, after `kill -9` 159 / 397 / 456 (n=100 each), and 32 of 200 "
          "failovers with more than one campaign; PreVote off: p99 224 / 236, 12 of 200.", "",
          "- **The kernel's tick.** The runtime's clock is the socket's receive timeout. Linux "
          "rounds it up to its 4 ms tick (HZ=250) and fires it one tick after that; above 252 ms "
          "its timer wheel rounds to 32 ms buckets. Timers fired 0-36 ms late, and survivors whose "
          "deadlines fell in one tick or bucket fired in the same microsecond: two campaigns, often "
          "a split. Now a wait ends 10 ms early (and never spans more than 200 ms) and a precise "
          "sleep covers the rest; what arrived meanwhile is read before the tick.",
          "- **PreVote's gap.** A pre-candidate gets its pre-votes within a fraction of a "
          "millisecond, then writes its term and vote to disk (1-10 ms here) before its real "
          "request leaves. A pre-vote grant changed nothing at the granter, so a granter whose own "
          "timer fired in that gap started a rival campaign for the same term: the collision window "
          "was the disk write, not the network delay. Now a node that granted a pre-vote holds its "
          "own timeout back for one heartbeat interval (a rule test in `tests/raft_rules.rs` says "
          "why). Without PreVote the same gap remains (a candidate writes before it asks), which is "
          "why PreVote off now has more split campaigns than PreVote on.", "",
          "PreVote | trials | " + " | ".join(trace.CATEGORIES) + " | timer late p50 / p99 / max ms "
          "| candidate's disk write p50 / p90 / max ms", "---|---" + "|---" * (len(trace.CATEGORIES) + 2)]
    for pv in (1, 0):
        raw = fo[pv]["raw"]
        counts = [raw["classes"].count(c) for c in trace.CATEGORIES]
        late, disk = raw["late_ms"] or [0], raw["disk_ms"] or [0]
        L.append("%s | %d | %s | %.2f / %.2f / %.2f | %.2f / %.2f / %.2f" % (
            ("off", "on")[pv], len(raw["classes"]), " | ".join(map(str, counts)),
            percentile(late, 50), percentile(late, 99), max(late),
            percentile(disk, 50), percentile(disk, 90), max(disk)))
    L += [""] + simulator_lines(r) + [""]
    cm = r["controller"]
    conv = summarize(cm["convert"])
    L += ["## Controller requests", "",
          "`CONVERT_FOLLOWER` to the leader: time to the next `elected` line of another node (the "
          "leader steps down and sends `TIMEOUT_NOW` to the follower it heard from last, which "
          "campaigns at once, as `TIMEOUT` makes a node do). `TIMEOUT` to a random follower: time "
          "to that follower's own `elected` line (a forced election that the others grant despite "
          "leader stickiness).", "",
          "request | trials | median ms | min | p99 | max | note", "---|---|---|---|---|---|---",
          "CONVERT_FOLLOWER to the leader | %s | another node won %d of %d; target p99 <= %d ms: %s" % (
              fmt_stats(conv), cm["convert_other"], len(cm["convert"]), T["convert_p99"],
              mark(conv["p99"] <= T["convert_p99"] and cm["convert_other"] == len(cm["convert"]))),
          "TIMEOUT to a follower | %s | it won %d of %d" % (
              fmt_stats(summarize(cm["timeout"])), len(cm["timeout"]), len(cm["timeout"])), ""]
    return L


def cycle_modes(n):
    """The fault of each failover trial, in order: SHUTDOWN and kill -9 alternate."""
    return [("shutdown", "kill")[i % 2] for i in range(n)]


def simulator_lines(r):
    sim = r["simulator"]
    if "skipped" in sim:
        return ["Simulator: not run (%s)." % sim["skipped"]]
    T, fo = TARGETS, r["failover"]
    L = ["### The simulator beside the real cluster", "",
         "`cargo test --release --test sim loopback_failover -- --nocapture`: the same failover "
         "in the deterministic simulator, %d trials per row, on its loopback host model "
         "(`src/sim/host.rs`: 0 ms links, 0-2 ms of disk time before a step that persists sends, "
         "and timers either exact, as the runtime's precise sleep makes them, or rounded as "
         "`SO_RCVTIMEO` alone rounds them on a HZ=250 kernel). Real figures: both faults together."
         % sim[next(iter(sim))]["n"], "",
         "PreVote | source | trials | median ms | p99 | max | more than one campaign | sim within %d%% of real (median, p99, share +- 2 points)"
         % (100 * T["sim_match"]), "---|---|---|---|---|---|---|---"]
    for pv in (1, 0):
        raw = fo[pv]["raw"]
        real = raw["shutdown"] + raw["kill"]
        share = 100.0 * sum(c > 1 for c in raw["campaigns"]) / len(raw["campaigns"])
        st = summarize(real)
        name = ("off", "on")[pv]
        L.append("%s | real | %d | %d | %d | %d | %.1f%% |" % (name, st["n"], st["median"], st["p99"],
                                                                st["max"], share))
        for timers in ("precise", "tick4"):
            row = sim.get("%s/%s" % (timers, name))
            if not row:
                continue
            close = (abs(row["p50"] - st["median"]) <= T["sim_match"] * st["median"]
                     and abs(row["p99"] - st["p99"]) <= T["sim_match"] * st["p99"]
                     and abs(row["split"] - share) <= 2)
            L.append("%s | simulator, %s | %d | %d | %d | %d | %.1f%% | %s" % (
                name, "exact timers" if timers == "precise" else "4 ms kernel tick", row["n"], row["p50"],
                row["p99"], row["max"], row["split"], mark(close) if timers == "precise" else "(the "
                "runtime no longer waits this way)"))
    return L


def report_failover_only(r):
    """BENCH_ONLY=failover: the failover and controller sections alone."""
    m = r["machine"]
    return "\n".join(["# Failover benchmarks (BENCH_ONLY=failover)", "",
                      "Generated by `%s` on %s in %.0f s with %s. Machine: %s, %d cores, Linux %s; "
                      "1-minute load average %.1f at the start, %.1f at the end." % (
                          r["command"], m["date"], r["seconds"], os.path.relpath(GLIBC, ROOT), m["cpu"],
                          m["cores"], m["kernel"], m["load"], r["load_end"]), ""] + failover_lines(r))


def container_lines(c):
    if "skipped" in c:
        return ["Not measured: %s." % c["skipped"]]
    T, up, kill = TARGETS, summarize(c["up"]), summarize(c["kill"])
    last, cli = summarize(c["up_last_start"]), summarize(c["kill_cli"])
    L = ["Image `%s` from `make image`, 5 nodes and the watching controller from "
         "`scripts/compose.py` in a throwaway compose project per run (the `tests/docker` harness), "
         "removed with `down -v` afterwards. Times come from the nodes' log lines (`docker logs`)."
         % c["image"], "",
         "figure | n | median | min | p99 | max | target", "---|---|---|---|---|---|---",
         "image size (bytes) | | %d (%.0f KiB) | | | | <= %d KiB: %s"
         % (c["image_bytes"], c["image_bytes"] / 1024, T["image_kib"], mark(c["image_bytes"] <= T["image_kib"] * 1024)),
         "`up -d` invoked to first `elected` (ms; compose creates the network, volumes and 6 "
         "containers one by one) | %s | " % fmt_stats(up),
         "last node's `start` line to first `elected` (ms) | %s | max <= %d ms: %s"
         % (fmt_stats(last), T["first_leader"], mark(last["max"] <= T["first_leader"])),
         "`docker kill` of the leader: container exit (`State.FinishedAt`) to the new leader's "
         "`elected` (ms) | %s | p99 <= %d: %s"
         % (fmt_stats(kill), T["docker_p99"], mark(kill["p99"] <= T["docker_p99"])),
         "the same from `docker kill` invoked (ms) | %s |" % fmt_stats(cli), "",
         "Memory per container (`docker stats --no-stream`, a settled cluster): "
         + ", ".join("%s %s" % kv for kv in sorted(c["memory"].items())) + "."]
    return L


def main():
    quick = os.environ.get("BENCH_QUICK") == "1"
    n = int(os.environ.get("BENCH_TRIALS") or 0)
    cfg = {"net": os.environ.get("BENCH_NET", "127.0.77")}
    cold, fails = n or (5 if quick else 20), n or (8 if quick else 200)
    only_failover = os.environ.get("BENCH_ONLY") == "failover"
    quiet_s = float(os.environ.get("BENCH_QUIET_S") or (8 if quick else 60))
    out = os.environ.get("BENCH_OUT") or os.path.join(ROOT, *(("build", "bench") if quick else ("docs",)))
    os.makedirs(out, exist_ok=True)
    for exe in (GLIBC, MUSL):
        if not os.access(exe, os.X_OK):
            sys.exit("bench: %s is missing: run `make build musl` (or `make bench`)" % exe)
    cmd = " ".join(["%s=%s" % kv for kv in sorted(os.environ.items()) if kv[0].startswith("BENCH_")]
                   + ["make bench"])
    r = {"command": cmd, "machine": machine(), "net": cfg["net"],
         "binaries": {"release (glibc)": os.path.getsize(GLIBC), "musl static": os.path.getsize(MUSL)}}
    t = time.monotonic()
    r["floor"] = floor.floor(200000)
    progress("bench: floor (Monte Carlo, 200,000 draws): p50 %.0f, p99 %.0f ms" % (r["floor"]["p50"],
                                                                                 r["floor"]["p99"]))
    if not only_failover:
        progress("bench: %d cold starts" % cold)
        fl = first_leader(cfg, cold)
        r["first_leader"] = summarize(fl)
        progress("  first leader: %s ms" % fl)
    r["failover"] = {}
    for pv in (1, 0):
        progress("bench: %d SHUTDOWN + %d kill -9 failovers, PRE_VOTE=%d" % (fails, fails, pv))
        res = failovers(cfg, fails, pv)
        r["failover"][pv] = dict(shutdown=summarize(res["shutdown"]), kill=summarize(res["kill"]), raw=res)
        raw_dir = os.path.join(ROOT, "build", "bench")
        os.makedirs(raw_dir, exist_ok=True)
        with open(os.path.join(raw_dir, "failover-trace-prevote-%s.txt" % ("off", "on")[pv]), "w") as f:
            f.write("\n\n".join(res["traces"]) + "\n")
    moves = n or (5 if quick else 50)
    progress("bench: %d CONVERT_FOLLOWER and TIMEOUT requests" % moves)
    r["controller"] = controller_moves(cfg, moves)
    progress("bench: the simulator's loopback failover (cargo test --release)")
    r["simulator"] = simulator(200 if quick else 2000)
    if only_failover:
        r["seconds"], r["load_end"] = time.monotonic() - t, loadavg()
        write_histogram(r, out)
        with open(os.path.join(out, "BENCHMARKS.md"), "w") as f:
            f.write(report_failover_only(r))
        progress("bench: wrote %s/BENCHMARKS.md (failover only) in %.0f s"
                 % (os.path.relpath(out, ROOT), time.monotonic() - t))
        return 0
    progress("bench: %.0f s quiet window (glibc)" % quiet_s)
    r["quiet"] = quiet_isolated(cfg, quiet_s)
    r["quiet"]["stopped_s"] = min(10, quiet_s)
    progress("bench: %.0f s quiet window (musl static)" % min(10, quiet_s))
    r["quiet_musl"] = quiet(cfg, MUSL, min(10, quiet_s), False)
    progress("bench: timeline run")
    r["timeline_terms"] = timeline_run(cfg, os.path.join(out, "timeline.svg"))
    progress("bench: containers")
    try:
        r["containers"] = containers(min(n or 5, 1 if quick else 5), n or (3 if quick else 50))
    except Exception as e:  # noqa: BLE001 - the local figures are still worth writing
        r["containers"] = {"skipped": "the container run failed: %s: %s" % (type(e).__name__, e)}
        progress("  " + r["containers"]["skipped"])
    r["seconds"], r["load_end"] = time.monotonic() - t, loadavg()
    write_histogram(r, out)
    with open(os.path.join(out, "BENCHMARKS.md"), "w") as f:
        f.write(report(r))
    raw_dir = os.path.join(ROOT, "build", "bench")
    os.makedirs(raw_dir, exist_ok=True)
    with open(os.path.join(raw_dir, "bench.json"), "w") as f:  # every measured value
        json.dump(r, f, indent=1, default=str)
    progress("bench: wrote %s/BENCHMARKS.md, failover.svg, timeline.svg in %.0f s"
             % (os.path.relpath(out, ROOT), time.monotonic() - t))
    return 0


def write_histogram(r, out):
    """failover.svg: the PreVote-on failover times, kill -9 and SHUTDOWN side by side."""
    raw = r["failover"][1]["raw"]
    with open(os.path.join(out, "failover.svg"), "w") as f:
        f.write(histogram_svg({"kill -9, %d trials" % len(raw["kill"]): raw["kill"],
                               "SHUTDOWN, %d trials" % len(raw["shutdown"]): raw["shutdown"]},
                              REFERENCE, "Leader failover: 5 local nodes, 150-300 ms timeouts, PreVote on"))


def cleanup():
    """SIGTERM (a child bench.py then stops its own nodes), then SIGKILL after 3 s, by pid."""
    for p in list(PROCS):
        if p.poll() is None:
            os.kill(p.pid, signal.SIGTERM)
            try:
                p.wait(3)
            except subprocess.TimeoutExpired:
                os.kill(p.pid, signal.SIGKILL)
                p.wait()
        PROCS.discard(p)


def quiet_child(net, seconds):
    lo_up()
    print(json.dumps(quiet({"net": net}, GLIBC, float(seconds), True)))
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        if sys.argv[1:2] == ["--quiet-child"]:
            sys.exit(quiet_child(*sys.argv[2:4]))
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
    finally:
        cleanup()
