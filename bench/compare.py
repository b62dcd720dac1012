"""This project and a peer (etcd) measured the same way, in the same run: five members on
loopback, agreement polled from outside every 5 ms (LEADER_INFO over UDP here, etcd's HTTP
status API there), the same trials in alternating blocks so that a change in the machine's load
falls on both alike. Returns plain data for bench/report.py.

"Survivors agree": every member still running answers and names one and the same leader, in
one term, other than the member the fault was aimed at. A trial: wait until all five agree,
sleep to a random point of the leader's heartbeat cycle, signal the leader (SIGTERM or SIGKILL,
by pid), poll the survivors until they agree; meanwhile a thread waits for the signalled process
to exit. Then the member is started again on its data directory and the next trial waits for all
five to agree.
"""
import os
import random
import signal
import tempfile
import threading
import time

import machine
import raftkit

POLL_S = 0.005
progress = machine.progress


class Ours:
    """This project's nodes (raftkit.LocalCluster) behind the interface of etcd_peer.Etcd."""

    heartbeat_ms = 50
    label = "this project"

    def __init__(self, exe, folder, net="127.0.77", n=5):
        self.cluster = raftkit.LocalCluster(exe, n, first=net + ".1", folder=folder)
        self.names = self.cluster.names

    def start(self):
        self.cluster.start()
        return self

    def proc(self, name):
        return self.cluster.procs[name]

    def pid(self, name):
        return self.cluster.procs[name].pid

    def restart(self, name):
        self.cluster.spawn(name)

    def views(self, names):
        """{name: (leader or None, term) or None}: LEADER_INFO from one socket, 0.1 s for replies."""
        replies = self.cluster.ask(names, timeout=0.1)
        return {n: None if replies.get(n) is None else
                (raftkit.leader_of(replies[n]), replies[n].get("term")) for n in names}

    def stop(self):
        self.cluster.stop()


def agreed(views, exclude=None):
    """The leader all `views` name in one term (not `exclude`, one of them), or None."""
    seen = set(views.values())
    if len(seen) != 1 or None in seen:
        return None
    leader, _ = seen.pop()
    return leader if leader in views and leader != exclude else None


def wait_agreed(system, names, exclude=None, timeout=15.0):
    """(leader, monotonic time it was seen agreed), polling every POLL_S."""
    deadline = time.monotonic() + timeout
    while True:
        views = system.views(names)
        t = time.monotonic()
        leader = agreed(views, exclude)
        if leader:
            return leader, t
        if t > deadline:
            raise RuntimeError("%s: no agreed leader among %s within %.0f s: %s"
                               % (system.label, names, timeout, views))
        time.sleep(POLL_S)


def probe(make):
    """None if a cluster starts and elects a leader, else why not (with the end of a log)."""
    with tempfile.TemporaryDirectory(prefix="raft-bench-probe-") as d:
        system = make(d)
        try:
            cold_start(system)
            return None
        except (OSError, RuntimeError) as e:
            logs = sorted(f for f in os.listdir(d) if f.endswith(".log"))
            tail = ""
            if logs:
                with open(os.path.join(d, logs[0]), errors="replace") as f:
                    tail = " ".join(f.read().split())[-300:]
            return "%s%s" % (e, "; %s: ...%s" % (logs[0], tail) if tail else "")
        finally:
            system.stop()


def cold_start(system):
    """ms from the last member's spawn to all members agreeing on a leader."""
    system.start()
    t0 = time.monotonic()
    _, t = wait_agreed(system, system.names, timeout=30)
    return (t - t0) * 1000


def trial(system, sig):
    """One fault of the leader: (ms to survivors' agreement, ms to the process's exit or None)."""
    leader, _ = wait_agreed(system, system.names)
    time.sleep(random.uniform(0.1, 0.1 + system.heartbeat_ms / 1000))
    p, ended = system.proc(leader), []
    waiter = threading.Thread(target=lambda: (p.wait(), ended.append(time.monotonic())), daemon=True)
    waiter.start()
    t0 = time.monotonic()
    os.kill(p.pid, sig)
    survivors = [n for n in system.names if n != leader]
    _, t = wait_agreed(system, survivors, exclude=leader, timeout=10)
    waiter.join(10)
    if not ended:  # did not exit within 10 s of the signal: counted as missing, then ended
        p.kill()
        waiter.join()
    system.restart(leader)
    exit_ms = (ended[0] - t0) * 1000 if ended and ended[0] - t0 < 10 else None
    return (t - t0) * 1000, exit_ms


def series(makers, trials, block=10):
    """For each (label, make(folder) -> system): `trials` SIGTERM and `trials` kill -9 of the
    leader, alternating, in blocks of `block` per system; a fresh cluster (whose cold start is
    timed too) per block. {label: {first_leader, sigterm_agree, sigterm_exit, kill_agree,
    no_exit}} in ms."""
    out = {label: {"first_leader": [], "sigterm_agree": [], "sigterm_exit": [], "kill_agree": [],
                   "kill_exit": [], "no_exit": 0} for label, _ in makers}
    done = 0
    while done < trials:
        k = min(block, trials - done)
        for label, make in makers:
            r = out[label]
            with tempfile.TemporaryDirectory(prefix="raft-bench-cmp-") as d:
                system = make(d)
                try:
                    r["first_leader"].append(cold_start(system))
                    for i in range(2 * k):
                        mode = ("sigterm", "kill")[i % 2]
                        agree, exit_ms = trial(system, signal.SIGTERM if mode == "sigterm" else signal.SIGKILL)
                        r[mode + "_agree"].append(agree)
                        if exit_ms is None:
                            r["no_exit"] += 1
                        else:
                            r[mode + "_exit"].append(exit_ms)
                    progress("  %-12s trials %3d-%3d: SIGTERM -> agree %s ms; kill -9 -> agree %s ms"
                             % (label, done + 1, done + k, " ".join("%.0f" % x for x in r["sigterm_agree"][-k:]),
                                " ".join("%.0f" % x for x in r["kill_agree"][-k:])))
                finally:
                    system.stop()
        done += k
    return out


def idle(make, seconds, strace=None, strace_s=10.0):
    """A settled cluster left alone: {leader, followers: {name: {cpu, VmRSS, VmHWM}}, seconds},
    then, with `strace`, system calls of the leader and one follower over `strace_s` (a separate
    window: tracing slows the traced process)."""
    with tempfile.TemporaryDirectory(prefix="raft-bench-idle-") as d:
        system = make(d)
        try:
            system.start()
            leader, _ = wait_agreed(system, system.names, timeout=30)
            time.sleep(2)
            pids = {n: system.pid(n) for n in system.names}
            use = machine.usage(pids, seconds)
            leader2 = agreed(system.views(system.names))
            out = {"seconds": seconds, "leader_name": leader, "stable": leader2 == leader,
                   "leader": use.pop(leader), "followers": use}
            if strace:
                follower = next(n for n in system.names if n != leader)
                calls = machine.syscalls({"leader": pids[leader], "follower": pids[follower]}, strace_s, strace)
                out["syscalls"] = dict(calls, seconds=strace_s)
        finally:
            system.stop()
    return out
