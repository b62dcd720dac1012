#!/usr/bin/env python3
"""`make bench`: measures, saves every value to build/bench/bench.json, and writes
docs/BENCHMARKS.md whole with its pictures (bench/report.py renders them from that JSON).

    make bench                        builds both binaries, then runs this (PYTHONPATH from the Makefile)
    BENCH_QUICK=1 make bench          a smoke run of about a minute into build/bench unless BENCH_OUT is set
    BENCH_TRIALS=N                    trials per series (failovers, each side of the etcd comparison, ...)
    BENCH_ONLY=a,b                    only these sections: cold, failover (with the controller requests
                                      and the simulator), quiet, timeline, etcd, docker
    BENCH_BIN=PATH                    the glibc binary to measure (e.g. an older build, for "before" figures)
    BENCH_QUIET_S=S, BENCH_IDLE_S=S   the fault-free window (60 s), the comparison's idle window (30 s)
    BENCH_OUT=DIR                     where the report and pictures go (default docs/)
    BENCH_NET=127.0.77                loopback /24 for the local nodes (node K is .K:5555)
    BENCH_ETCD=0, BENCH_ETCD_NET=127.0.79   skip etcd (ours is still measured), or its /24
    BENCH_DOCKER=0, BENCH_ROLLING=N   skip the containers; Swarm rolling updates (full run 2, quick 0)
    BENCH_DOCKER_LOCK=FILE            the lock the Docker part holds (default /tmp/raft-docker.lock, the
                                      one every Docker run on this host takes); empty: take none
    BENCH_SIM=0                       skip the simulator's loopback table (cargo test --release)
"""
import fcntl
import json
import os
import signal
import sys
import time
from contextlib import contextmanager

import compare
import containers
import etcd_peer
import floor
import local_nodes
import machine
import report

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GLIBC = local_nodes.BIN
MUSL = os.path.join(ROOT, "target", "x86_64-unknown-linux-musl", "release", "raft")
SECTIONS = ("cold", "failover", "quiet", "timeline", "etcd", "docker")
T0 = time.monotonic()


def progress(msg):
    """A progress line; a section's first line says how far into the run it starts."""
    if msg.startswith("bench: "):
        msg = "bench: [%4.0f s] %s" % (time.monotonic() - T0, msg[len("bench: "):])
    machine.progress(msg)


def env_int(name, default):
    text = os.environ.get(name) or str(default)
    if not text.isdigit():
        sys.exit("bench: %s=%s is not a whole number" % (name, text))
    return int(text)


@contextmanager
def docker_lock():
    """Hold BENCH_DOCKER_LOCK (flock) while the containers are measured: one Docker run at a time."""
    path = os.environ.get("BENCH_DOCKER_LOCK", "/tmp/raft-docker.lock")
    if not path:
        yield
        return
    with open(path, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            progress("  waiting for %s (another Docker run holds it)" % path)
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def measure_local(r, only, quick, n, net):
    if "cold" in only:
        cold = n or (5 if quick else 20)
        progress("bench: %d cold starts" % cold)
        r["first_leader"] = local_nodes.first_leader(GLIBC, net, cold)
        progress("  first leader: %s ms" % r["first_leader"])
    if "failover" in only:
        fails = n or (5 if quick else 200)
        raw_dir = os.path.join(ROOT, "build", "bench")
        r["failover"] = {}
        for pv in ("on", "off"):
            progress("bench: %d SHUTDOWN + %d kill -9 failovers, PRE_VOTE=%s" % (fails, fails, pv))
            r["failover"][pv] = local_nodes.failovers(
                GLIBC, net, fails, report.PV[pv], os.path.join(raw_dir, "failover-trace-prevote-%s.txt" % pv))
        moves = n or (3 if quick else 50)
        progress("bench: %d CONVERT_FOLLOWER and TIMEOUT requests" % moves)
        r["controller"] = local_nodes.controller_moves(GLIBC, net, moves)
        if os.environ.get("BENCH_SIM", "1") == "0":
            r["simulator"] = {"skipped": "BENCH_SIM=0"}
        else:
            progress("bench: the simulator's loopback failover (cargo test --release)")
            r["simulator"] = local_nodes.simulator(200 if quick else 2000)
    if "quiet" in only:
        quiet_s = float(os.environ.get("BENCH_QUIET_S") or (5 if quick else 60))
        progress("bench: %.0f s quiet window (glibc)" % quiet_s)
        r["quiet"] = local_nodes.quiet_isolated(GLIBC, net, quiet_s)
        progress("bench: %.0f s quiet window (musl static)" % min(10, quiet_s))
        r["quiet_musl"] = local_nodes.quiet(MUSL, net, min(10, quiet_s), False)
    if "timeline" in only:
        progress("bench: timeline run")
        r["timeline"] = local_nodes.timeline_run(GLIBC, net)


def measure_etcd(r, quick, n, net):
    """This project and etcd side by side (bench/compare.py); ours alone when etcd cannot be had."""
    makers = [(report.OURS, lambda d: compare.Ours(GLIBC, d, net=net))]
    if os.environ.get("BENCH_ETCD", "1") == "0":
        r["etcd"] = {"skipped": "BENCH_ETCD=0"}
    else:
        exe, note = etcd_peer.binary()
        if exe:
            etcd_net = os.environ.get("BENCH_ETCD_NET", "127.0.79")
            r["etcd"] = {"binary": exe, "binary_bytes": os.path.getsize(exe), "version": etcd_peer.version(exe),
                         "note": note, "heartbeat_ms": etcd_peer.HEARTBEAT_MS, "election_ms": etcd_peer.ELECTION_MS}
            makers.append((report.PEER, lambda d: etcd_peer.Etcd(exe, d, net=etcd_net)))
            why = compare.probe(makers[-1][1])
            if why:
                r["etcd"], makers = {"skipped": "etcd %s on %s.1-5 did not elect a leader: %s"
                                     % (r["etcd"]["version"], etcd_net, why)}, makers[:1]
        else:
            r["etcd"] = {"skipped": note}
    if "skipped" in r["etcd"]:
        progress("bench: etcd skipped: %s" % r["etcd"]["skipped"])
    trials = n or (3 if quick else 200)
    progress("bench: %d SIGTERM + %d kill -9 of the leader, agreement polled: %s"
             % (trials, trials, " and ".join(label for label, _ in makers)))
    r["compare"] = compare.series(makers, trials, block=trials if quick else 10)
    strace, r["strace_note"] = machine.ensure_tool("strace", "strace")
    idle_s = float(os.environ.get("BENCH_IDLE_S") or (3 if quick else 30))
    r["idle"] = {}
    for label, make in makers:
        progress("bench: %s idle for %.0f s, then strace" % (label, idle_s))
        r["idle"][label] = compare.idle(make, idle_s, strace, 2 if quick else 10)
    for label, x in r["compare"].items():
        progress("  %s: SIGTERM -> agree %s; exit %s; kill -9 -> agree %s" % (
            label, *(report.p50_p99(x[k]) for k in ("sigterm_agree", "sigterm_exit", "kill_agree"))))


def measure_docker(r, quick, n):
    if os.environ.get("BENCH_DOCKER", "1") == "0":
        r["containers"] = {"skipped": "BENCH_DOCKER=0"}
        return
    rolling = env_int("BENCH_ROLLING", 0 if quick else 2)
    with docker_lock():
        try:
            r["containers"] = containers.measure(min(n or 5, 1 if quick else 5), n or (1 if quick else 50),
                                                 n or (1 if quick else 50), rolling)
        except Exception as e:  # noqa: BLE001 - the local figures are still worth writing
            r["containers"] = {"skipped": "the container run failed: %s: %s" % (type(e).__name__, e)}
    if "skipped" in r["containers"]:
        progress("  containers: " + r["containers"]["skipped"])


def main():
    quick = os.environ.get("BENCH_QUICK") == "1"
    n = env_int("BENCH_TRIALS", 0)
    net = os.environ.get("BENCH_NET", "127.0.77")
    only = set(filter(None, os.environ.get("BENCH_ONLY", ",".join(SECTIONS)).split(",")))
    if only - set(SECTIONS):
        sys.exit("bench: BENCH_ONLY: unknown section(s) %s; known: %s" % (", ".join(sorted(only - set(SECTIONS))),
                                                                          ", ".join(SECTIONS)))
    out = os.environ.get("BENCH_OUT") or os.path.join(ROOT, *(("build", "bench") if quick else ("docs",)))
    for exe in (GLIBC, MUSL):
        if not os.access(exe, os.X_OK):
            sys.exit("bench: %s is missing: run `make build musl` (or `make bench`)" % exe)
    raw_dir = os.path.join(ROOT, "build", "bench")
    os.makedirs(raw_dir, exist_ok=True)
    cmd = " ".join(["%s=%s" % kv for kv in sorted(os.environ.items()) if kv[0].startswith("BENCH_")]
                   + ["make bench"])
    r = {"command": cmd, "machine": machine.machine(), "net": net, "bin": os.path.relpath(GLIBC, ROOT),
         "binaries": {"release (glibc)": os.path.getsize(GLIBC), "musl static": os.path.getsize(MUSL)}}
    t = time.monotonic()
    r["floor"] = floor.floor(200000)
    progress("bench: floor (Monte Carlo, 200,000 draws): p50 %.0f, p99 %.0f ms" % (r["floor"]["p50"],
                                                                                 r["floor"]["p99"]))
    measure_local(r, only, quick, n, net)
    if "etcd" in only:
        measure_etcd(r, quick, n, net)
    if "docker" in only:
        progress("bench: containers")
        measure_docker(r, quick, n)
    r["seconds"], r["load_end"] = time.monotonic() - t, machine.loadavg()
    with open(os.path.join(raw_dir, "bench.json"), "w") as f:  # every measured value
        json.dump(r, f, indent=1)
    files = report.write(r, out)
    progress("bench: wrote %s into %s in %.0f s; every value in %s" % (
        ", ".join(files), os.path.relpath(out, ROOT), time.monotonic() - t,
        os.path.relpath(os.path.join(raw_dir, "bench.json"), ROOT)))
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
    finally:
        local_nodes.cleanup()
