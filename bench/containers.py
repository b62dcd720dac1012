#!/usr/bin/env python3
"""The container figures, measured in one place: the node image, a compose cluster (start-up,
`docker kill` and `docker stop` of the leader, memory) through the Docker suites' harness
(tests/docker/cluster.py), and a Swarm stack's rolling update (tests/docker/stack.py's Stack).
Returns plain data for bench/report.py; `make bench` runs it, or by itself after `make image`:

    PYTHONPATH=Controller:tests/docker:scripts python3 bench/containers.py [--nodes 5] [--ups 5] [--kills 10]
        [--stops 10] [--rolling 1] [--json FILE]

Clusters are throwaway projects and stacks, removed afterwards (also on Ctrl-C). Times come
from the host clock: the nodes' log lines (a stopped node's `signal` line is when it received
SIGTERM), `docker events` (when the daemon signalled a container: the fallback) and
State.FinishedAt (when its process ended) all read it.
"""
import argparse
import calendar
import json
import random
import subprocess
import threading
import time

import cluster as dc
import machine
import raftkit

HEARTBEAT_MS = 50
progress = machine.progress


class Kills:
    """`docker events` of kind `kill` (the daemon signalling a container), followed while the
    measurement runs: the daemon keeps only its last few hundred events, and health checks alone
    fill that within minutes. A context manager; the follower is ended by pid."""

    def __enter__(self):
        self.seen = []
        self.proc = subprocess.Popen(["docker", "events", "--filter", "type=container", "--filter", "event=kill",
                                      "--format", "{{json .}}"], stdout=subprocess.PIPE, text=True)
        threading.Thread(target=self._read, daemon=True).start()
        time.sleep(0.5)  # subscribed before the first fault
        return self

    def _read(self):
        for line in self.proc.stdout:
            try:
                self.seen.append(json.loads(line))
            except ValueError:
                continue

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait()

    def signalled_at(self, container_id, since, signo=15, wait=5.0):
        """When the daemon first sent `signo` to the container at or after the Unix time `since`
        (a restarted container keeps its id), as a Unix time; None if not seen in `wait` s."""
        deadline = time.monotonic() + wait
        while True:
            for e in list(self.seen):
                actor = e.get("Actor", {})
                if actor.get("ID", "").startswith(container_id) and e["timeNano"] / 1e9 >= since and \
                        actor.get("Attributes", {}).get("signal") == str(signo):
                    return e["timeNano"] / 1e9
            if time.monotonic() > deadline:
                return None
            time.sleep(0.05)


def finished_at(container):
    """When the container's process ended (State.FinishedAt, UTC, ns) as a Unix time."""
    stamp = dc.run("docker", "inspect", "-f", "{{.State.FinishedAt}}", container).stdout.strip()
    day, _, frac = stamp.rstrip("Z").partition(".")
    return calendar.timegm(time.strptime(day, "%Y-%m-%dT%H:%M:%S")) + float("0." + (frac or "0"))


def sigterm_at(own_lines, watch, cid, since):
    """When the stopped node received SIGTERM: its own `signal` line (parsed, at or after `since`),
    written as its loop sees the signal, on the same clock as the others' `elected` lines. The
    daemon's `kill` event is only the fallback: it is stamped after the signal is sent, by up to
    several ms on a busy host, so a fast handover's `elected` line can precede it."""
    own = [e["t"] for e in own_lines if e.get("event") == "signal" and e["t"] >= since - 0.001]
    if own:
        return own[0]
    t_sig = watch.signalled_at(cid, since)
    if t_sig is None:
        raise dc.Failure("no `signal` line and no kill event with signal 15 for %s" % cid[:12])
    return t_sig


def logged(c, names, since, kind="elected"):
    """Parsed log lines with event=KIND of `names` at or after `since`, by time."""
    evs = (e for es in c.events(names, since - 1).values() for e in es)
    return sorted((e for e in evs if e.get("event") == kind and e["t"] >= since - 0.001), key=lambda e: e["t"])


def heartbeat_phase():
    time.sleep(random.uniform(0.1, 0.1 + HEARTBEAT_MS / 1000))


def image_size():
    return int(dc.run("docker", "image", "inspect", "-f", "{{.Size}}", dc.IMAGE).stdout)


def compose_up(ups, nodes=5):
    """`up -d` of a fresh `nodes`-node project to the first `elected` line, `ups` times."""
    out = {"up": [], "up_last_start": []}
    for i in range(ups):
        c = dc.Cluster(nodes)
        try:
            t0 = time.time()
            c.up()
            c.wait_leader()
            ev = sorted((e for es in c.events().values() for e in es), key=lambda e: e["t"])
            first = min(e["t"] for e in ev if e.get("event") == "elected")
            out["up"].append(round((first - t0) * 1000))
            last_start = max(e["t"] for e in ev if e.get("event") == "start")
            out["up_last_start"].append(round((first - last_start) * 1000))
            progress("  compose up %d/%d: first elected %d ms after `up -d` was invoked, %d ms after the "
                     "last node's start line" % (i + 1, ups, out["up"][-1], out["up_last_start"][-1]))
        finally:
            c.down()
    return out


def wait_agreed(c, among, exclude=None, timeout=10.0):
    """Poll LEADER_INFO of `among` from the host every 5 ms until all name one leader (not
    `exclude`) in one term: the Unix time it was seen."""
    deadline = time.monotonic() + timeout
    while True:
        replies = c.ask(among, wait=0.1)
        leader = raftkit.agreed_leader(replies, among)
        if leader and leader != exclude and len({r["term"] for r in replies.values()}) == 1:
            return time.time()
        if time.monotonic() > deadline:
            raise dc.Failure("no agreed leader among %s within %.0f s after the stop" % (among, timeout))
        time.sleep(0.005)


def compose_faults(kills, stops, nodes=5):
    """One `nodes`-node project: memory per container, then `kills` x `docker kill` and `stops` x
    `docker stop` of the leader (alternating while both last), each followed by `docker start`."""
    out = {"kill": [], "kill_cli": [], "stop_agree": [], "stop_elected": [], "stop_exit": [], "stop_cli": []}
    c = dc.Cluster(nodes)
    try:
        c.up()
        c.wait_leader()
        time.sleep(2)
        out["memory"] = {n: usage.split()[0] for n, usage in c.memory().items()}
        order = [m for i in range(max(kills, stops)) for m, n in (("kill", kills), ("stop", stops)) if i < n]
        with Kills() as watch:
            for i, mode in enumerate(order):
                leader, _, _ = c.wait_leader()
                heartbeat_phase()
                what = (docker_kill if mode == "kill" else docker_stop)(c, leader, out, watch)
                progress("  docker %s %d/%d: %s -> %s" % (mode, i + 1, len(order), leader, what))
                c.docker("start", leader)
                c.wait_leader()
    finally:
        c.down()
    return out


def docker_kill(c, leader, out, _watch):
    others = [n for n in c.names if n != leader]
    t_cli = time.time()
    c.docker("kill", leader)
    c.wait_leader(among=others)
    died = finished_at(c.container(leader))
    ev = logged(c, others, t_cli)
    out["kill"].append(round((ev[0]["t"] - died) * 1000))
    out["kill_cli"].append(round((ev[0]["t"] - t_cli) * 1000))
    return "%d ms after the container died" % out["kill"][-1]


def docker_stop(c, leader, out, watch):
    """`docker stop` in the background, the survivors polled meanwhile; timed from the leader's
    receipt of SIGTERM (see `sigterm_at`)."""
    others, container = [n for n in c.names if n != leader], c.container(leader)
    cid = dc.run("docker", "inspect", "-f", "{{.Id}}", container).stdout.strip()
    t_cli = time.time()
    stopper = subprocess.Popen(["docker", "stop", container], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        t_agree = wait_agreed(c, others, exclude=leader)
    finally:
        stopper.wait()
    t_sig = sigterm_at(logged(c, [leader], t_cli, kind="signal"), watch, cid, t_cli)
    ev = logged(c, others, t_sig)
    out["stop_agree"].append(round((t_agree - t_sig) * 1000))
    out["stop_elected"].append(round((ev[0]["t"] - t_sig) * 1000) if ev else None)
    out["stop_exit"].append(round((finished_at(container) - t_sig) * 1000))
    out["stop_cli"].append(round((t_agree - t_cli) * 1000))
    return ("survivors agree %d ms after SIGTERM (elected line %s ms), the process ended after %d ms"
            % (out["stop_agree"][-1], out["stop_elected"][-1], out["stop_exit"][-1]))


def compose(ups, kills, stops, nodes=5):
    """Image size, start-up, failovers and memory of a compose cluster (the image must exist)."""
    out = {"image": dc.IMAGE, "image_bytes": image_size(), "nodes": nodes}
    out.update(compose_up(ups, nodes))
    if kills or stops:
        out.update(compose_faults(kills, stops, nodes))
    return out


def rolling_update(runs):
    """`docker service update --force` of every node of a 5-node stack in turn, `runs` times:
    per run, each leader restart's time without a leader (from the leader's task receiving SIGTERM,
    see `sigterm_at`, to the next `elected` line), their total, the elections."""
    import stack  # tests/docker/stack.py: the Swarm suite's Stack
    import swarm as sw  # scripts/swarm.py
    created, added, s, out = None, [], None, []
    try:
        if sw.state() != "active":
            with dc.shielded():
                created = sw.init_single()
            progress("  no swarm here: created a single-node swarm on loopback for this run")
        if not sw.is_manager():
            return {"skipped": "this host is in a swarm but not a manager"}
        added = sw.label(5)
        s = stack.Stack(5)
        s.deploy()
        s.start_controller()
        sw.wait_running(s.id, s.n, timeout=90)
        s.wait_agreed(timeout=30)
        with Kills() as watch:
            for k in range(runs):
                out.append(rolling_run(s, watch))
                x = out[-1]
                progress("  rolling update %d/%d: %d leader restart(s), without a leader %s ms (total %d), "
                         "%d election(s), %.0f s" % (k + 1, runs, x["leader_restarts"], x["gaps_ms"], x["total_ms"],
                                                     x["elections"], x["seconds"]))
    finally:
        if s is not None:
            s.down()
        sw.unlabel(added if created is None else [])
        if created is not None:
            with dc.shielded():
                sw.leave_single(created)
    return {"runs": out}


def rolling_run(s, watch):
    """One rolling update of the stack `s`: each node in turn, waiting for its new task and an
    agreed leader before the next."""
    t0 = time.time()
    restarts = []  # (task container of the leader, when its update was asked for)
    for name in s.names:
        leader, _, _ = s.wait_agreed(timeout=20)
        old, t_update = s.running(name), time.time()
        dc.run("docker", "service", "update", "--force", "--detach", s.service(name), timeout=60)
        s.wait_new_task(name, old)
        if name == leader:
            restarts.append((old, t_update))
    _, _, t_end = s.wait_agreed(timeout=20)
    s.logs()  # follows the new tasks' logs from their start...
    time.sleep(1.5)  # ...which takes a moment to read
    won = s.events("elected", t0)
    gaps = []
    for cid, t_update in restarts:
        own = list(filter(None, map(raftkit.parse_line, s.container_log(cid))))
        t_sig = sigterm_at(own, watch, cid, t_update)
        nxt = [e["t"] for e in won if e["t"] >= t_sig - 0.001]
        if not nxt:
            raise dc.Failure("no election after the leader's task %s was stopped" % cid[:12])
        gaps.append(round((nxt[0] - t_sig) * 1000))
    return {"gaps_ms": gaps, "total_ms": sum(gaps), "leader_restarts": len(restarts), "elections": len(won),
            "seconds": t_end - t0}


def measure(ups, kills, stops, rolling, nodes=5):
    """Everything above, or {"skipped": why}; `make image` is run first (it builds both images)."""
    if not dc.daemon_answers():
        return {"skipped": "no Docker daemon answers"}
    progress("  make image")
    build = subprocess.run(["make", "-C", str(dc.ROOT), "--no-print-directory", "image"], capture_output=True,
                           text=True, check=False)
    if build.returncode:
        return {"skipped": "`make image` failed: " + (build.stderr or build.stdout).strip()[-300:]}
    out = compose(ups, kills, stops, nodes)
    if rolling:
        try:
            out["rolling"] = rolling_update(rolling)
        except Exception as e:  # noqa: BLE001 - the compose figures are still worth keeping
            out["rolling"] = {"skipped": "the swarm run failed: %s: %s" % (type(e).__name__, e)}
            progress("  " + out["rolling"]["skipped"])
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=5, help="compose cluster size (the stack has 5)")
    ap.add_argument("--ups", type=int, default=5)
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--stops", type=int, default=10)
    ap.add_argument("--rolling", type=int, default=1, help="rolling updates of a swarm stack (0: none)")
    ap.add_argument("--json", help="write the figures to this file as well")
    a = ap.parse_args()
    out = measure(a.ups, a.kills, a.stops, a.rolling, a.nodes)
    text = json.dumps(out, indent=1)
    print(text)
    if a.json:
        with open(a.json, "w") as f:
            f.write(text + "\n")
    return 0 if "skipped" not in out else 1


if __name__ == "__main__":
    dc.main_guard(main)
