"""A throwaway compose cluster for tests and measurements (standard library only).

Each Cluster gets its own compose project and container prefix, so it never collides with
`make up` or another run; `down()` removes its containers, network and volumes.
The harness asks the nodes directly from the host over the project's bridge network
(container IP, port 5555); the controller verbs run inside the network via `docker exec`.
"""
import contextlib
import json
import os
import pathlib
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
IMAGE = os.environ.get("RAFT_IMAGE", "raft-node:latest")
PORT = 5555


class Failure(AssertionError):
    pass


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


def preflight(suite):
    """What every Docker suite checks first. Returns an exit status to stop with, or None to go on:
    no daemon is a skip (exit 0), except under CI=true; a missing image is a failure. Also makes
    SIGTERM (e.g. a CI timeout) run the finally blocks that remove the clusters."""
    if not daemon_answers():
        if os.environ.get("CI") == "true":
            print(f"{suite} FAILED: no Docker daemon (CI=true)")
            return 1
        print(f"{suite} skipped: no Docker daemon")
        return 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True).returncode != 0:
        print(f"image {IMAGE} is missing: run `make image` first")
        print(f"{suite}: 0 passed, 1 failed")
        return 1
    return None


def leader_info_request():
    return json.dumps({"sender_name": "Controller", "request": "LEADER_INFO",
                       "term": None, "key": None, "value": None}).encode()


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
        run(sys.executable, str(ROOT / "scripts" / "compose.py"), "--nodes", str(nodes),
            "--prefix", self.id, "--image", IMAGE, "-o", self.file, *extra)

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

    def ctl(self, *args, check=True):
        """A controller verb, run inside the network: docker exec <Controller> /raft ARGS."""
        return run("docker", "exec", self.container("Controller"), "/raft", *args, check=check, timeout=30)

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

    # ---- LEADER_INFO ----------------------------------------------------------------------------
    def ask(self, names=None, wait=0.3):
        """LEADER_INFO to each node from one ephemeral host socket: {name: reply dict or None}."""
        names = list(names or self.names)
        by_addr = {(self.ip(n), PORT): n for n in names if self.ip(n)}
        out = {n: None for n in names}
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for addr in by_addr:
                try:
                    s.sendto(leader_info_request(), addr)
                except OSError:
                    pass
            deadline = time.monotonic() + wait
            while any(out[n] is None for n in by_addr.values()):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                s.settimeout(left)
                try:
                    data, addr = s.recvfrom(1024)
                    out[by_addr[addr]] = json.loads(data)
                except (socket.timeout, KeyError, ValueError, OSError):
                    continue
        return out

    @staticmethod
    def agreed(replies, among):
        """The leader every node in `among` names, when they all answer and agree on one of them."""
        values = {(r or {}).get("value") if r else "<no answer>" for r in replies.values()}
        if len(values) == 1:
            (v,) = values
            if v in among:
                return v
        return None

    def wait_leader(self, among=None, asked=None, timeout=15.0, want=None):
        """Poll until all of `asked` (default `among`) name one leader from `among`.
        Returns (leader, seconds, replies)."""
        among = list(among or self.names)
        asked = list(asked or among)
        t0 = time.monotonic()
        while True:
            replies = self.ask(asked)
            leader = self.agreed(replies, among)
            if leader and (want is None or leader == want):
                return leader, time.monotonic() - t0, replies
            if time.monotonic() - t0 > timeout:
                seen = {n: (r.get("value"), r.get("term")) if r else None for n, r in replies.items()}
                raise Failure(f"no agreed leader{' ' + want if want else ''} within {timeout:.0f} s; "
                              f"(value, term) per node: {seen}")
            time.sleep(0.05)
