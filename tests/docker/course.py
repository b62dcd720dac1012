#!/usr/bin/env python3
"""The course's own flow, as a grader meets it: a fresh copy of the tree and `docker-compose up --build`.

    PYTHONPATH=Controller python3 tests/docker/course.py          # after `make image`; `make docker-test`
    PYTHONPATH=Controller python3 tests/docker/course.py --cold   # the build cache of both images missed

1. A fresh copy (the tracked and untracked, not ignored, files: a clone of the working tree, with
   its uncommitted changes) gets `docker-compose up --build` (`docker compose` when v2 exists),
   attached, and no other step. Then: one agreed leader within 5 s of the last node container
   starting; the node image at most 1 MiB (the Controller's size is printed); in the Controller
   container `sh` and `python`, `python convert_follower_node1.py` (Node1's own log shows the
   request from Controller:5555) and each per-request script, `status.py`, and the watcher's
   lines in `docker logs Controller`. Then the conformance suite (Controller/conformance/), each
   script run by `docker exec Controller python conformance/...` as a grader runs it: pattern 1
   after every step of its story, after `docker kill` of the leader (what a script's sendto to
   the killed name does is printed) and after `docker restart` of it, patterns 2-6, nothing sent
   to Controller:5555 unasked, pattern 7's 65 s run, and `--first-reply-runs` SHUTDOWNs of the
   leader each followed by a first-reply look; each node's log lines for what it dropped.
2. A course-style controller: another copy whose Controller/ is replaced by a throwaway one (its
   own Dockerfile FROM the Python base our Controller/Dockerfile names, its own script as the
   command: LEADER_INFO to all, CONVERT_FOLLOWER the leader, SHUTDOWN the leader, TIMEOUT a
   follower, each checked, then `N passed, M failed`); `docker-compose up --build`; the verdict is
   read from `docker logs Controller`.

The committed compose file fixes the container names (Node1..Node5, Controller) and the network
name (raft), so a run holds /tmp/raft-docker.lock (taken here, or used as inherited from a caller
that holds it, e.g. `flock /tmp/raft-docker.lock make test`) and refuses to start while such
containers exist. The compose project is the copy's directory name, unique per run; cleanup is
`down -v --rmi local` of that project, also on failure and SIGTERM. Never touches another project.
Without a Docker daemon: skipped (exit 0), unless CI=true. Ends with "N passed, M failed".
"""
import argparse
import fcntl
import json
import os
import pathlib
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime

from cluster import (RESULTS, ROOT, Cluster, Failure, check, compose_cmd, expect, main_guard, preflight,
                     run, shielded, summary)

LOCK = "/tmp/raft-docker.lock"
NAMES = [f"Node{i}" for i in range(1, 6)]
FIXED = NAMES + ["Controller"]
BUILD_S = 900  # bound on `up --build` until the containers run (a cold build compiles the node)


# ---- the lock, the copy ---------------------------------------------------------------------
def hold_lock():
    """Hold LOCK until exit. A descriptor of it inherited from a caller is locked in place (a
    no-op when that caller holds the lock: same open file), else the file is opened here."""
    fds = os.listdir("/proc/self/fd") if os.path.isdir("/proc/self/fd") else []
    for fd in fds:
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == LOCK:
                fcntl.flock(int(fd), fcntl.LOCK_EX)
                return int(fd)
        except OSError:
            continue
    fd = os.open(LOCK, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"   waiting for {LOCK} (another Docker run holds it)", flush=True)
        fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def fresh_copy(tag):
    """The working tree as a clone of it would be, in /tmp/<unique>/ (its name is the project)."""
    dest = pathlib.Path(tempfile.gettempdir()) / f"raft{tag}{os.getpid()}x{secrets.token_hex(3)}"
    files = run("git", "-C", str(ROOT), "ls-files", "-z", "-c", "-o", "--exclude-standard").stdout
    for rel in sorted(set(filter(None, files.split("\0")))):
        src = ROOT / rel
        if not os.path.lexists(src) or src.is_dir():
            continue  # deleted in the working tree, or a submodule
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest / rel, follow_symlinks=False)
    return dest


def miss_cache(folder):
    """--cold: a new file in each build context defeats the layer cache of both images' builds
    from the COPY of the sources on (the node's compile included); the images stay the same."""
    for rel in ("src", "Controller"):
        (folder / rel / f".cold-{secrets.token_hex(4)}").write_text("cache miss\n")


# ---- one compose project of the committed file ----------------------------------------------
class Stack(Cluster):
    """The committed docker-compose.yml, run attached in a copy: containers Node1.., network raft.
    Reuses Cluster's LEADER_INFO polling; its own lifecycle."""

    def __init__(self, folder):  # no super().__init__: it writes a generated file, not wanted here
        self.n, self.names = 5, list(NAMES)
        self.dir, self.id = folder, folder.name
        self.network = "raft"
        self.compose = compose_cmd()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")}
        self._ips = {}
        self.proc, self.t0 = None, None
        self.log = folder.parent / f"{folder.name}.up.log"

    def container(self, name):
        return name

    def up(self):
        """`docker-compose up --build`, attached as a grader runs it (output to self.log); returns
        once the five nodes run: the wall time from the command."""
        busy = [n for n in FIXED if run("docker", "inspect", n, check=False).returncode == 0]
        if busy or run("docker", "network", "inspect", "raft", check=False).returncode == 0:
            raise Failure(f"containers {busy or ''} or network raft exist already (another cluster "
                          "from the committed compose file: `make down` there first)")
        t0 = self.t0 = time.monotonic()
        with shielded(), open(self.log, "w") as out:
            self.proc = subprocess.Popen([*self.compose, "up", "--build"], cwd=self.dir, env=self.env,
                                         stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        while not all(self.state(n).startswith("running") for n in NAMES):
            if self.proc.poll() is not None:
                raise Failure(f"`up --build` exited {self.proc.returncode}: {self.tail()}")
            if time.monotonic() - t0 > BUILD_S:
                raise Failure(f"containers not running after {BUILD_S} s: {self.tail()}")
            time.sleep(0.2)
        return time.monotonic() - t0

    def state(self, name):
        p = run("docker", "inspect", "-f", "{{.State.Status}} {{.State.StartedAt}} {{.State.ExitCode}}",
                name, check=False)
        return p.stdout.strip() if p.returncode == 0 else ""

    def started(self, name):
        """When the container started, in seconds of the wall clock."""
        stamp = self.state(name).split()[1]
        whole, _, frac = stamp.rstrip("Z").partition(".")
        return datetime.fromisoformat(whole + "+00:00").timestamp() + float("0." + (frac or "0"))

    def tail(self, lines=15):
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def down(self):
        """Stop the attached `up`, then remove the project (containers, network, volumes, its
        own images); never raises."""
        with shielded():
            if self.proc is not None and self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            try:
                subprocess.run([*self.compose, "down", "-v", "--rmi", "local", "--remove-orphans",
                                "-t", "2"], cwd=self.dir, env=self.env, capture_output=True,
                               timeout=180, start_new_session=True)
            except Exception as e:  # noqa: BLE001 - cleanup must go on
                print(f"  cleanup of {self.id} failed: {e}", file=sys.stderr)
            shutil.rmtree(self.dir, ignore_errors=True)
            self.log.unlink(missing_ok=True)

    def exec(self, *cmd, check=True, timeout=30):
        return run("docker", "exec", "Controller", *cmd, check=check, timeout=timeout)


# ---- 1. the fresh copy ----------------------------------------------------------------------
def first_leader(s, cold):
    secs = s.up()
    t0 = time.monotonic()
    while not s.state("Controller").startswith("running"):
        expect(time.monotonic() - t0 < 30, f"the Controller is not running: {s.state('Controller')!r}")
        time.sleep(0.2)
    leader, _, replies = s.wait_leader(timeout=15)
    total = time.monotonic() - s.t0
    after = time.time() - max(s.started(n) for n in NAMES)
    print(f"   `up --build`{' (cold cache)' if cold else ''}: nodes running after {secs:.1f} s; "
          f"{leader} agreed by all 5 (term {replies[leader]['term']}) {total:.1f} s after the command, "
          f"{after:.2f} s after the last node container started (the poll's own delay included)")
    expect(after <= 5.0, f"leader agreed only {after:.2f} s after the last node started")


def image_sizes(s):
    node = run("docker", "inspect", "-f", "{{.Image}}", "Node1").stdout.strip()
    ctl = run("docker", "inspect", "-f", "{{.Image}}", "Controller").stdout.strip()
    size = {i: int(run("docker", "image", "inspect", "-f", "{{.Size}}", i).stdout) for i in (node, ctl)}
    print(f"   node image {size[node]:,} bytes ({size[node] / 1024:.0f} KiB); "
          f"Controller image {size[ctl]:,} bytes ({size[ctl] / 1e6:.0f} MB)")
    expect(size[node] <= 1024 * 1024, f"node image is {size[node]} bytes, over 1 MiB")


def controller_shell(s):
    p = s.exec("sh", "-c", "python --version; ls")
    expect(p.stdout.startswith("Python 3."), f"`python --version` printed {p.stdout[:40]!r}")
    for name in ("convert_follower_node1.py", "leader_info.py", "timeout.py", "shutdown.py",
                 "convert_follower.py", "status.py", "watch.py", "controller.py", "raftkit.py", "Message.json"):
        expect(name in p.stdout.split(), f"{name} is not in the Controller's working directory")
    print(f"   docker exec Controller sh: {p.stdout.split()[1]}, scripts and Message.json in place")


def leader_info_script(s):
    leader, _, _ = s.wait_leader()
    reply = json.loads(s.exec("python", "leader_info.py", "Node3").stdout)
    expect(reply.get("sender_name") == "Node3" and reply.get("key") == "LEADER"
           and reply.get("value") == leader, f"leader_info.py Node3 printed {reply}")
    p = s.exec("python", "status.py")
    expect(f"leader: {leader}" in p.stdout, f"status.py printed {p.stdout!r}")
    print(f"   leader_info.py Node3 -> {reply['value']} (term {reply['term']}); status.py agrees")


def wait_new_term(s, term, among=None):
    """An agreed leader in a term above `term` (15 s bound); (leader, seconds, replies)."""
    t0 = time.monotonic()
    while True:
        leader, _, replies = s.wait_leader(among=among, timeout=15)
        if replies[leader]["term"] > term:
            return leader, time.monotonic() - t0, replies
        if time.monotonic() - t0 > 15:
            raise Failure(f"no leader in a term above {term} within 15 s")
        time.sleep(0.05)


def course_example(s):
    """timeout.py Node1 (Node1 leads), then the course's convert_follower_node1.py."""
    s.exec("python", "timeout.py", "Node1")
    _, secs, replies = s.wait_leader(want="Node1")
    term = replies["Node1"]["term"]
    print(f"   timeout.py Node1: Node1 leads (term {term}) after {secs:.2f} s")
    p = s.exec("python", "convert_follower_node1.py")
    expect("CONVERT_FOLLOWER" in p.stdout and "ERROR" not in p.stdout,
           f"convert_follower_node1.py printed {p.stdout!r}")
    ctl_ip = s.ip("Controller")
    logs = run("docker", "logs", "Node1").stderr
    expect(f"request=CONVERT_FOLLOWER from={ctl_ip}:5555" in logs,
           f"Node1's log has no CONVERT_FOLLOWER from {ctl_ip}:5555")
    leader, secs, replies = wait_new_term(s, term)
    print(f"   convert_follower_node1.py: Node1 got it from {ctl_ip}:5555 (Controller:5555); "
          f"{leader} leads in term {replies[leader]['term']} after {secs:.2f} s")


def request_scripts(s):
    """convert_follower.py, shutdown.py, timeout.py (revival, then a follower takes over)."""
    leader, _, replies = s.wait_leader()
    s.exec("python", "convert_follower.py", leader)
    again, secs, replies = wait_new_term(s, replies[leader]["term"])
    print(f"   convert_follower.py {leader}: {again} leads in term {replies[again]['term']} "
          f"after {secs:.2f} s")
    s.exec("python", "shutdown.py", again)
    others = [n for n in NAMES if n != again]
    new, secs, _ = s.wait_leader(among=others)
    silent = s.ask([again], wait=1.0)[again]
    expect(silent is None, f"shut-down {again} answered LEADER_INFO: {silent}")
    p = s.exec("python", "status.py", check=False)
    expect(f"stopped: {again}" in p.stdout, f"status.py does not show {again} stopped: {p.stdout!r}")
    print(f"   shutdown.py {again}: {new} leads after {secs:.2f} s; {again} answers no LEADER_INFO, "
          f"status.py shows it stopped")
    s.exec("python", "timeout.py", again)
    now, _, _ = s.wait_leader()
    follower = next(n for n in NAMES if n != now)
    s.exec("python", "timeout.py", follower)
    _, secs, _ = s.wait_leader(want=follower)
    print(f"   timeout.py {again} revives it; timeout.py {follower}: it leads after {secs:.2f} s")


def watcher_lines(s):
    lines = run("docker", "logs", "Controller").stdout.splitlines()
    changes = [ln.split(" ", 1)[1] for ln in lines if " leaders=" in ln]
    expect(lines and "watching Node1,Node2,Node3,Node4,Node5" in lines[0],
           f"the watcher's first line is {lines[:1]}")
    expect(any(c.startswith("leaders=Node1:5 ") for c in changes),
           f"no line shows all 5 naming Node1: {changes[-8:]}")
    expect(all(a != b for a, b in zip(changes, changes[1:])), "the watcher repeated a line")
    leader, _, _ = s.wait_leader()
    time.sleep(0.6)  # two polls of the watcher
    last = run("docker", "logs", "--tail", "1", "Controller").stdout.strip()
    expect(f"leaders={leader}:5 " in last, f"the watcher's last line {last!r} does not name {leader}")
    print(f"   docker logs Controller: {len(changes)} change lines, e.g. {changes[0]!r}; last {last!r}")


# ---- 1b. the conformance suite, from the Controller container -------------------------------
SLOWEST = []  # (ms, what) of every conformance script run
# What a course script's sendto to a killed node's name does: the time it took and its outcome.
PROBE = """import socket, sys, time
t = time.monotonic()
try:
    socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"{}", (sys.argv[1], 5555))
    r = "sent"
except OSError as e:
    r = repr(e)
print("%.3f s: %s" % (time.monotonic() - t, r))
"""


def conformance(s, script, *args, timeout=300):
    """conformance/<script> in the Controller, as a grader runs it: its output, which must end
    with 'N passed, 0 failed' (exit 0)."""
    p = s.exec("python", "-u", f"conformance/{script}", *args, check=False, timeout=timeout)
    out = (p.stdout + p.stderr).strip()
    print("      " + out.replace("\n", "\n      "), flush=True)
    for ms, what in re.findall(r"^slowest reply: ([\d.]+) ms \((.*)\)$", out, re.M):
        SLOWEST.append((float(ms), f"{script}: {what}"))
    last = out.splitlines()[-1] if out else ""
    expect(re.fullmatch(r"[1-9]\d* passed, 0 failed", last) is not None and p.returncode == 0,
           f"{script} {' '.join(args)}: {last!r}, exit {p.returncode}")
    return out


def conformance_story(s):
    """Pattern 1's story: start, CONVERT_FOLLOWER, TIMEOUT, two SHUTDOWNs, revival."""
    s.wait_leader()
    out = conformance(s, "p1_first_reply.py")
    stopped = re.search(r"PASS SHUTDOWN of the leader (\w+)", out).group(1)
    logs = run("docker", "logs", stopped).stderr
    expect("role=Stopped event=drop reason=stopped " in logs,
           f"{stopped} logged no drop while stopped")


def conformance_kill_restart(s):
    """Pattern 1 after `docker kill` of the leader and after `docker restart` of it."""
    leader, _, _ = s.wait_leader()
    before = s.ip(leader)
    run("docker", "kill", leader)
    s._ips.clear()
    probe = s.exec("python", "-c", PROBE, leader).stdout.strip()
    print(f"   docker kill {leader} ({before}); a script's sendto to ({leader!r}, 5555) now takes "
          f"{probe}")
    time.sleep(2)
    conformance(s, "p1_first_reply.py", "--once", "--not", leader)
    run("docker", "restart", leader)
    s._ips.clear()
    probe = s.exec("python", "-c", PROBE, leader).stdout.strip()
    print(f"   docker restart {leader}: at {s.ip(leader)}; sendto to it: {probe}")
    time.sleep(2)
    conformance(s, "p1_first_reply.py", "--once")
    s.wait_leader()


def conformance_script(script, *args, timeout=300):
    return lambda s: conformance(s, script, *args, timeout=timeout)


def conformance_unknown(s):
    """Pattern 4, and each node's log line for each request it dropped."""
    conformance(s, "p4_unknown_requests.py")
    ctl = s.ip("Controller")
    for name in NAMES:
        logs = run("docker", "logs", name).stderr
        for request in ("RESTART", "START_NODE", "ALL_INFO", "GETLOG", "PRINT_LOGS", "STORE",
                        "RETRIEVE", '"view log"'):
            expect(f"reason=unknown-request detail={request} from={ctl}:5555" in logs,
                   f"{name} logged no drop of {request} from {ctl}:5555")
    print(f"   every node logged each unknown request from {ctl}:5555 (reason=unknown-request)")


def conformance_shutdowns(runs):
    def shutdowns(s):
        out = conformance(s, "p1_first_reply.py", "--shutdowns", str(runs), timeout=60 + 10 * runs)
        expect(f"named the new leader in {runs} of {runs} runs" in out, "not every run")
    return shutdowns


def conformance_steps(runs):
    return [("conformance p1: the first reply after each step", conformance_story),
            ("conformance p1: after docker kill and docker restart of the leader",
             conformance_kill_restart),
            ("conformance p2: settimeout(1.0) and blocking reads", conformance_script("p2_timeouts.py")),
            ("conformance p3: the reply echoed back as CONVERT_FOLLOWER",
             conformance_script("p3_echo_reply.py")),
            ("conformance p4: requests the nodes do not implement", conformance_unknown),
            ("conformance p5: message shapes", conformance_script("p5_shapes.py")),
            ("conformance p6: lowercase names, recvfrom(1024)", conformance_script("p6_names.py")),
            ("conformance: nothing sent to Controller:5555 unasked",
             conformance_script("p8_unasked.py")),
            ("conformance p7: the 65 s scripted run", conformance_script("p7_long_run.py")),
            (f"conformance p1: SHUTDOWN of the leader, {runs} runs", conformance_shutdowns(runs))]


def fresh_clone(cold, runs):
    s = Stack(fresh_copy("clone"))
    if cold:
        miss_cache(s.dir)
    print(f"== fresh copy in {s.dir}, compose project {s.id}", flush=True)
    try:
        steps = [("image sizes", image_sizes), ("Controller: sh, python, the scripts", controller_shell),
                 ("leader_info.py, status.py", leader_info_script),
                 ("convert_follower_node1.py (the course's example)", course_example),
                 ("convert_follower.py, shutdown.py, timeout.py", request_scripts),
                 ("the watcher's lines", watcher_lines)] + conformance_steps(runs)
        ok = check("fresh copy: `up --build`, then a leader within 5 s", first_leader, s, cold)
        for name, fn in steps:
            if ok:
                check(name, fn, s)
            else:
                RESULTS.append(False)
                print(f"FAIL {name}: not run, no cluster")
    finally:
        s.down()


# ---- 2. a course-style controller of its own --------------------------------------------------
GRADER = r'''
"""A grader's controller: the course's socket, checks of its own, a verdict line."""
import json, socket, time

NODES = ["Node%d" % i for i in range(1, 6)]
PORT = 5555
skt = socket.socket(family=socket.AF_INET, type=socket.SOCK_DGRAM)
skt.bind(("Controller", PORT))
RESULTS = []


def send(request, target):
    with open("Message.json") as f:
        msg = json.load(f)
    msg["sender_name"] = "Controller"
    msg["request"] = request
    skt.sendto(json.dumps(msg).encode("utf-8"), (target, PORT))


def ask(nodes):
    """LEADER_INFO to each node: {node: (leader, term)} of those that answered within 0.3 s."""
    for n in nodes:
        try:
            send("LEADER_INFO", n)
        except OSError:
            pass
    got, end = {}, time.monotonic() + 0.3
    while len(got) < len(nodes) and time.monotonic() < end:
        skt.settimeout(max(end - time.monotonic(), 0.01))
        try:
            data, _ = skt.recvfrom(1024)
        except (socket.timeout, OSError):
            continue
        reply = json.loads(data.decode("utf-8"))
        if reply.get("sender_name") in nodes:
            got[reply["sender_name"]] = (reply.get("value"), reply.get("term"))
    return got


def agreed(nodes, seconds, ok=lambda leader, term: True):
    """The leader all `nodes` name (one of them), once `ok(leader, term)`; else None."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        got = ask(nodes)
        views = set(got.values())
        if len(got) == len(nodes) and len(views) == 1:
            leader, term = views.pop()
            if leader in nodes and ok(leader, term):
                return leader, term
        time.sleep(0.1)
    return None, None


def verdict(name, passed, detail):
    RESULTS.append(passed)
    print("%s %s: %s" % ("PASS" if passed else "FAIL", name, detail), flush=True)


leader, term = agreed(NODES, 30)
verdict("LEADER_INFO to all", leader is not None, "all 5 name %s (term %s)" % (leader, term))
if leader:
    send("CONVERT_FOLLOWER", leader)
    new, new_term = agreed(NODES, 5, lambda l, t: t > term)
    verdict("CONVERT_FOLLOWER the leader", new is not None,
            "%s was told; %s leads in term %s" % (leader, new, new_term))
    if new:
        send("SHUTDOWN", new)
        rest = [n for n in NODES if n != new]
        after, _ = agreed(rest, 5, lambda l, t: l != new)
        quiet = ask([new]).get(new, ("no answer",))[0]
        verdict("SHUTDOWN the leader", after is not None and quiet == "no answer",
                "%s shut down (it now gives %s); the other 4 agree on %s" % (new, quiet, after))
        if after:
            follower = [n for n in rest if n != after][0]
            send("TIMEOUT", follower)
            won, _ = agreed(rest, 5, lambda l, t: l == follower)
            verdict("TIMEOUT a follower", won == follower,
                    "%s timed out; the live 4 agree on %s" % (follower, won))
print("%d passed, %d failed" % (sum(RESULTS), 4 - sum(RESULTS)), flush=True)
'''


def course_dockerfile():
    """FROM the Python base our Controller/Dockerfile names (scripts/base_images.py reads it)."""
    (base,) = run(sys.executable, str(ROOT / "scripts" / "base_images.py"), "--list",
                  str(ROOT / "Controller" / "Dockerfile")).stdout.split()
    return f'FROM {base}\nWORKDIR /code\nCOPY . .\nCMD ["python", "-u", "grader.py"]\n'


def course_controller(s):
    secs = s.up()
    t0 = time.monotonic()
    while s.state("Controller").split()[:1] != ["exited"]:
        expect(time.monotonic() - t0 < 120, "the course controller did not finish within 120 s")
        time.sleep(0.5)
    logs = run("docker", "logs", "Controller")
    out = (logs.stdout + logs.stderr).strip()
    print("   `up --build` in %.1f s; docker logs Controller:\n      %s"
          % (secs, out.replace("\n", "\n      ")))
    code = s.state("Controller").split()[-1]
    expect(out.endswith("4 passed, 0 failed"), "the course controller's verdict is not 4 passed")
    expect(out.count("PASS ") == 4 and code == "0", f"4 PASS lines and exit 0 expected (exit {code})")


def course_style(cold):
    folder = fresh_copy("course")
    shutil.rmtree(folder / "Controller")
    (folder / "Controller").mkdir()
    (folder / "Controller" / "Dockerfile").write_text(course_dockerfile())
    (folder / "Controller" / "grader.py").write_text(GRADER)
    shutil.copy2(ROOT / "Message.json", folder / "Controller" / "Message.json")
    if cold:
        miss_cache(folder)
    s = Stack(folder)
    print(f"== a course-style Controller/ in {folder}, compose project {s.id}", flush=True)
    try:
        check("course-style controller: its own Dockerfile and script", course_controller, s)
    finally:
        s.down()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cold", action="store_true", help="miss the build cache (for the figures)")
    p.add_argument("--first-reply-runs", type=int, metavar="N",
                   default=int(os.environ.get("COURSE_FIRST_REPLY_RUNS", "5")),
                   help="times the first-reply pattern follows a SHUTDOWN of the leader "
                        "(default $COURSE_FIRST_REPLY_RUNS or 5)")
    a = p.parse_args()
    stop = preflight("course flow")
    if stop is not None:
        return stop
    hold_lock()
    fresh_clone(a.cold, a.first_reply_runs)
    course_style(a.cold)
    if SLOWEST:
        print("slowest reply in the conformance suite (Docker): %.1f ms (%s)" % max(SLOWEST))
    return summary()


if __name__ == "__main__":
    main_guard(main, "the course's projects")
