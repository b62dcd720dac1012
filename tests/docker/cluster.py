"""A throwaway compose cluster and the scenario runner the Docker suites share.

Each Cluster gets its own compose project and container prefix, so it never collides with
`make up` or another run; `down()` removes its containers, network and volumes. The nodes are
asked from the host over the project's bridge network (container IP, port 5555) with raftkit;
the controller requests run inside the network, as the Controller image's Python scripts
(`docker exec <Controller> python timeout.py Node3`). Never touches containers it did not create.
"""
import contextlib
import os
import pathlib
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import logcheck
import raftkit
from raftkit import PORT, Failure  # noqa: F401  (the suites' names for them)

ROOT = pathlib.Path(__file__).resolve().parents[2]
IMAGE = os.environ.get("RAFT_IMAGE", "raft-node:latest")
CONTROLLER_IMAGE = os.environ.get("RAFT_CONTROLLER_IMAGE", "raft-controller:latest")
RESULTS = []  # one bool per scenario run by check()


def run(*cmd, check=True, timeout=120, capture=True, session=False):
    """Run a command; on failure raise Failure with its output."""
    p = subprocess.run(cmd, capture_output=capture, text=True, timeout=timeout, start_new_session=session)
    if check and p.returncode != 0:
        raise Failure(f"{' '.join(cmd)} -> exit {p.returncode}: {(p.stderr or p.stdout or '').strip()}")
    return p


@contextlib.contextmanager
def shielded():
    """Hold SIGINT/SIGTERM while compose creates or removes a project, then deliver them.
    A signal in the middle of `up` would leave containers that `down` cannot see yet; compose
    also runs in its own session, out of reach of the terminal's Ctrl-C."""
    got = []
    saved = {s: signal.signal(s, lambda n, _: got.append(n)) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)
        for n in got[:1]:
            signal.raise_signal(n)


def compose_cmd():
    """`docker compose` (v2) when it exists, else docker-compose 1.x; same rule as the Makefile."""
    try:
        if subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=20).returncode == 0:
            return ["docker", "compose"]
    except (OSError, subprocess.TimeoutExpired):
        pass
    return ["docker-compose"]


def daemon_answers():
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def unavailable(suite, why):
    """A suite that cannot run on this machine, and why: a skip (exit 0), but a failure under
    CI=true, where every suite must run. Returns the exit status."""
    if os.environ.get("CI") == "true":
        print(f"{suite} FAILED: {why} (CI=true)")
        return 1
    print(f"{suite} skipped: {why}")
    return 0


def preflight(suite):
    """What every Docker suite checks first. Returns an exit status to stop with, or None to go on:
    no daemon is a skip (exit 0), except under CI=true; a missing image is a failure. Also makes
    SIGTERM (e.g. a CI timeout) run the finally blocks that remove the clusters."""
    if not daemon_answers():
        return unavailable(suite, "no Docker daemon")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    for image in (IMAGE, CONTROLLER_IMAGE):
        if subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode != 0:
            print(f"image {image} is missing: run `make image` first")
            print(f"{suite}: 0 passed, 1 failed")
            return 1
    return None


def check(name, fn, *args):
    """Run one scenario: PASS or FAIL with the reason and the time taken; never raises."""
    print(f"-- {name}", flush=True)
    t0 = time.monotonic()
    try:
        fn(*args)
        ok, why = True, ""
    except AssertionError as e:  # Failure, or another module's failure of the same kind
        ok, why = False, str(e)
    except Exception as e:  # noqa: BLE001 - a broken scenario is a failed one, keep going
        ok, why = False, f"{type(e).__name__}: {e}"
    RESULTS.append(ok)
    print(f"{'PASS' if ok else 'FAIL'} {name} ({time.monotonic() - t0:.1f} s){'' if ok else ': ' + why}",
          flush=True)
    return ok


def expect(cond, msg):
    if not cond:
        raise Failure(msg)


def with_cluster(nodes, scenarios):
    """A fresh cluster: the first election, each (name, fn(cluster)), then the safety of every
    node's whole log; removed afterwards."""
    c = Cluster(nodes)
    print(f"== {nodes} nodes, compose project {c.id}", flush=True)
    try:
        started = check(f"{nodes} nodes: first election", first_election, c)
        for name, fn in scenarios:
            if started:
                check(f"{nodes} nodes: {name}", fn, c)
            else:  # no cluster to speak of: fail the rest now rather than wait 15 s on each
                RESULTS.append(False)
                print(f"FAIL {nodes} nodes: {name}: not run, no first leader")
        check(f"{nodes} nodes: the logs (one leader per term, terms never go down)", logs_are_safe, c)
    finally:
        c.down()


def first_election(c):
    """All nodes agree on a leader within 5 s of the containers starting."""
    t0 = time.monotonic()
    c.up()
    leader, secs, replies = c.wait_leader()
    print(f"   {c.n} nodes: {leader} agreed {secs:.2f} s after `up -d` returned "
          f"({time.monotonic() - t0:.2f} s including `up`), term {replies[leader]['term']}")
    expect(secs <= 5.0, f"leader agreed only after {secs:.2f} s")


def logs_are_safe(c):
    """logcheck on every node's whole log (all runs of its container): no violation."""
    violations, stats = logcheck.check({n: c.logs(n) for n in c.names})
    expect(not violations, f"{len(violations)} violations: " + "; ".join(violations[:5]))
    print(f"   {stats['elections']} elections, terms up to {stats['max_term']}, "
          f"{stats['restarts']} node restarts: no violation")


def summary():
    """The closing line test runners read, and the exit status."""
    passed = sum(RESULTS)
    print(f"{passed} passed, {len(RESULTS) - passed} failed")
    return 0 if passed == len(RESULTS) else 1


def main_guard(main, what="clusters"):
    """sys.exit(main()), with Ctrl-C reported once the finally blocks removed the clusters."""
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print(f"interrupted; {what} removed")
        sys.exit(130)


class Cluster:
    def __init__(self, nodes=5, key=None):
        self.n = nodes
        self.names = [f"Node{i}" for i in range(1, nodes + 1)]
        self.id = f"rafttest{os.getpid()}x{secrets.token_hex(2)}"  # project name == prefix
        self.network = f"{self.id}_raft"
        self.dir = tempfile.mkdtemp(prefix=self.id)
        self.file = os.path.join(self.dir, "docker-compose.yml")
        self.compose = compose_cmd() + ["-p", self.id, "-f", self.file]
        self._ips = {}
        extra = []
        if key is not None:  # the cluster key, as a compose secret
            key_file = os.path.join(self.dir, "cluster_key")
            with open(key_file, "w") as f:
                f.write(key + "\n")
            extra = ["--key-file", key_file]
        run(sys.executable, str(ROOT / "scripts" / "compose_file.py"), "--nodes", str(nodes),
            "--prefix", self.id, "--image", IMAGE, "--controller-image", CONTROLLER_IMAGE, "-o", self.file,
            *extra)

    # ---- lifecycle ---------------------------------------------------------------------------
    def up(self):
        with shielded():
            run(*self.compose, "up", "-d", timeout=180, session=True)
        self._ips.clear()

    def down(self):
        """Best effort, never raises: called from finally blocks."""
        with shielded():
            try:
                subprocess.run([*self.compose, "down", "-v", "--remove-orphans", "-t", "2"],
                               capture_output=True, timeout=180, start_new_session=True)
            except Exception as e:  # noqa: BLE001 - cleanup must go on
                print(f"  cleanup of {self.id} failed: {e}", file=sys.stderr)
            shutil.rmtree(self.dir, ignore_errors=True)

    def container(self, name):
        return f"{self.id}-{name}"

    def docker(self, verb, name, *extra):
        run("docker", verb, *extra, self.container(name))
        self._ips.clear()

    def disconnect(self, name):
        run("docker", "network", "disconnect", self.network, self.container(name))
        self._ips.clear()

    def connect(self, name):
        # The compose alias is lost on disconnect; give the node its DNS name back.
        run("docker", "network", "connect", "--alias", name, self.network, self.container(name))
        self._ips.clear()

    def ctl(self, verb, *args, check=True):
        """A controller request from inside the network, by the Controller image's script for it:
        ctl("convert-follower", "Node2") runs `python convert_follower.py Node2` there."""
        script = verb.replace("-", "_") + ".py"
        return run("docker", "exec", self.container("Controller"), "python", script, *args,
                   check=check, timeout=30)

    # ---- addresses ---------------------------------------------------------------------------
    def ip(self, name):
        """Container IP on the project network ('' when stopped or disconnected)."""
        if name not in self._ips:
            fmt = "{{range $k, $v := .NetworkSettings.Networks}}{{if eq $k \"%s\"}}{{$v.IPAddress}}{{end}}{{end}}"
            p = run("docker", "inspect", "-f", fmt % self.network, self.container(name), check=False)
            self._ips[name] = p.stdout.strip() if p.returncode == 0 else ""
        return self._ips[name]

    def pid(self, name):
        return int(run("docker", "inspect", "-f", "{{.State.Pid}}", self.container(name)).stdout)

    def logs(self, name, since=None):
        """The container's log lines (`docker logs`: every run of it), optionally --since a Unix time."""
        extra = ["--since", "%.3f" % since] if since else []
        p = run("docker", "logs", *extra, self.container(name), check=False, timeout=60)
        return (p.stdout + p.stderr).splitlines()

    def events(self, names=None, since=None):
        """{node: [its parsed log lines]}."""
        return {n: list(filter(None, map(raftkit.parse_line, self.logs(n, since))))
                for n in names or self.names}

    def memory(self):
        """{Node1.., Controller: `docker stats --no-stream` memory usage ("1.2MiB / 7.6GiB")}."""
        names = self.names + ["Controller"]
        p = run("docker", "stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}}",
                *map(self.container, names))
        usage = dict(line.split(" ", 1) for line in p.stdout.splitlines())
        return {n: usage.get(self.container(n), "?") for n in names}

    # ---- LEADER_INFO ----------------------------------------------------------------------------
    def ask(self, names=None, wait=0.3):
        """LEADER_INFO to each node from one ephemeral host socket: {name: reply dict or None}."""
        names = list(names or self.names)
        replies = raftkit.ask_all([raftkit.Peer(n, self.ip(n)) for n in names if self.ip(n)], wait)
        return {n: replies.get(n) for n in names}

    def send(self, name, request):
        """A controller request (TIMEOUT, CONVERT_FOLLOWER, SHUTDOWN) from a host socket."""
        if self.ip(name):
            try:
                raftkit.send(request, name, host=self.ip(name))
            except raftkit.ControllerError as e:
                raise Failure(f"{request} to {name}: {e}") from e

    def wait_leader(self, among=None, asked=None, timeout=15.0, want=None):
        """Poll until all of `asked` (default `among`) name one leader from `among`.
        Returns (leader, seconds, replies)."""
        among = list(among or self.names)
        asked = list(asked or among)
        return raftkit.wait_for_leader(lambda: self.ask(asked), timeout, among, want)
