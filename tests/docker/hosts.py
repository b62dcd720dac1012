"""Three Docker hosts emulated on this machine, in namespaces (standard library only; root).

    lab = Lab.create(run)              # inside the lab's own mount and PID namespaces
    lab.start("A"); lab.docker("A", "info"); lab.cut("C"); lab.heal("C"); lab.stop("B")

The layout (every name starts with the run's id, `raftmh-<hex>`):

    netns <id>-br   bridge br0 10.199.0.1/24, the stub DNS server on 10.199.0.1:53
       veth vA ── eth0 10.199.0.2 in netns <id>-A   host A: dockerd, hostname A
       veth vB ── eth0 10.199.0.3 in netns <id>-B   host B
       veth vC ── eth0 10.199.0.4 in netns <id>-C   host C

The bridge sits in a namespace of its own: a bridge in the machine's namespace would pass the
bridged frames through the main daemon's FORWARD chain (policy DROP) and need rules there. No host
has a default route, so nothing sent inside the lab can leave it.

Each host is a `dockerd` entered into its network namespace (`nsenter --net`) and given private
mount, UTS and PID namespaces (`unshare`), with docker-init as PID 1 (it reaps and forwards
signals). Inside, a fresh sysfs (the host's own network devices) with the cgroup tree moved under
it (dockerd refuses to start without the devices cgroup), empty tmpfs over /run, /var/lib/docker
and /etc/docker (so neither the main daemon's state, nor its containerd, nor its configuration
can be seen), its own /etc/resolv.conf naming the stub, and its own config file: data-root,
exec-root, pidfile, socket, overlay2, and a cgroup parent `/<id>-<host>` for its containers.
Stopping a host sends SIGTERM to that PID 1 (dockerd stops its containers as on `systemctl stop
docker`); killing it (SIGKILL) ends every process of the host at once, like a power cut.

Docker's DNS forwards names it does not know (a task that is down) to the host's resolver; with
none answering every such lookup would wait 5 s. The stub answers "no such name" at once, as a
real network's resolver does.

The whole lab runs in a private mount namespace and a PID namespace of its own (see `spawn`):
the named network namespaces (`ip netns add` bind-mounts them) and every mount exist only in
there, and when the lab's PID 1 ends, for whatever reason, the kernel ends every process of the
lab and the namespaces go with it. What can outlive it is on disk: the run directory
(/tmp/raftmh-<hex>) and the containers' empty cgroups; `remove_leftovers` deletes those, and
`leftovers` says what of a run is still on the machine (used to check the cleanup).
"""
import glob
import json
import os
import secrets
import shutil
import signal
import subprocess
import threading
import time

PREFIX = "raftmh-"
HOSTS = ("A", "B", "C")
SUBNET = "10.199.0"
BRIDGE_IP = f"{SUBNET}.1"
ADDR = {h: f"{SUBNET}.{i + 2}" for i, h in enumerate(HOSTS)}
TOOLS = ("ip", "nsenter", "unshare", "dockerd", "containerd", "runc", "docker", "docker-init",
         "iptables", "iptables-save", "mount", "make")
CGROUP_ROOT = "/sys/fs/cgroup"

# Answers every query "no such name" (RCODE 3), echoing the question; nothing else.
STUB_DNS = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 53))
while True:
    q, peer = s.recvfrom(4096)
    if len(q) < 12 or q[2] & 0x80:
        continue
    end = 12
    while end < len(q) and q[end]:
        end += 1 + q[end]
    end += 5
    if end > len(q):
        continue
    qd = q[4:6] if q[4:6] == b"\x00\x01" else b"\x00\x00"
    r = q[:2] + bytes([0x80 | (q[2] & 0x79), 0x83]) + qd + b"\x00" * 6 + (q[12:end] if qd[1] else b"")
    s.sendto(r, peer)
"""

# Asks Docker's DNS (127.0.0.11 in a container's network namespace, or @HOST:PORT given first)
# for each name's A records: prints {name: [addresses]} as JSON ([] for "no such name", null for
# no answer).
DNS_QUERY = r"""
import json, os, socket, struct, sys
out = {}
server, names = ("127.0.0.11", 53), sys.argv[1:]
if names and names[0].startswith("@"):
    host, _, port = names[0][1:].rpartition(":")
    server, names = (host, int(port)), names[1:]
for name in names:
    qid = os.getpid() & 0xffff
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    q += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0" + struct.pack(">HH", 1, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    try:
        s.sendto(q, server)
        r = s.recv(4096)
    except OSError:
        out[name] = None
        continue
    an = struct.unpack(">H", r[6:8])[0]
    i = 12
    while r[i]:
        i += 1 + r[i]
    i += 5
    addrs = []
    for _ in range(an):
        if r[i] & 0xC0 == 0xC0:
            i += 2
        else:
            while r[i]:
                i += 1 + r[i]
            i += 1
        typ, _, _, n = struct.unpack(">HHIH", r[i:i + 10])
        i += 10
        if typ == 1 and n == 4:
            addrs.append(socket.inet_ntoa(r[i:i + 4]))
        i += n
    out[name] = addrs
print(json.dumps(out))
"""

# Run by docker-init (PID 1 of the host's namespaces) with sh: the host's private view, then dockerd.
HOST_SCRIPT = r"""
set -e
hostname "$1"
mkdir -p "$2/cg"
mount --rbind /sys/fs/cgroup "$2/cg"
mount -t sysfs sysfs /sys
mount --move "$2/cg" /sys/fs/cgroup
mount -t tmpfs -o mode=755 tmpfs /run
mount -t tmpfs -o mode=711 tmpfs /var/lib/docker
mount -t tmpfs -o mode=755 tmpfs /etc/docker
mount --bind "$3" /etc/resolv.conf
exec dockerd --config-file "$2/daemon.json"
"""


class Failure(AssertionError):
    pass


def sh(*cmd, check=True, timeout=60, env=None, input=None):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, input=input)
    if check and p.returncode != 0:
        raise Failure(f"{' '.join(cmd)} -> exit {p.returncode}: {(p.stderr or p.stdout).strip()[:500]}")
    return p


# ---- what the machine must offer ------------------------------------------------------------------
def missing():
    """Why this machine cannot host the lab (None when it can)."""
    if os.geteuid() != 0:
        return "not root (network namespaces, mounts and dockerd need it)"
    gone = [t for t in TOOLS if shutil.which(t) is None]
    if gone:
        return "missing " + ", ".join(gone)
    with open("/proc/filesystems") as f:
        if "overlay" not in f.read().split():
            return "the kernel has no overlay filesystem (dockerd's overlay2)"
    if not os.path.isdir(os.path.join(CGROUP_ROOT, "devices")) and \
            not os.path.exists(os.path.join(CGROUP_ROOT, "cgroup.controllers")):
        return "no devices cgroup and no cgroup v2 at /sys/fs/cgroup"
    # A throwaway network namespace (gone when this command ends): the link kinds the lab uses.
    probe = ("ip link add b0 type bridge && ip link add v0 type veth peer name v1 && "
             "ip link add x0 type vxlan id 7 dstport 4789 && ip link set v0 master b0")
    p = subprocess.run(["unshare", "--net", "sh", "-c", probe], capture_output=True, text=True,
                       timeout=30)
    if p.returncode != 0:
        return f"cannot make bridge, veth and vxlan links: {p.stderr.strip()[:200]}"
    return None


# ---- a run: its id, its directory, what it may leave behind --------------------------------------
class Run:
    """One lab's names. Everything it creates carries `id`; `dir` holds its files."""

    def __init__(self, rid=None):
        self.id = rid or PREFIX + secrets.token_hex(3)
        self.dir = os.path.join("/tmp", self.id)

    @staticmethod
    def of_dir(path):
        return Run(os.path.basename(path.rstrip("/")))

    def cgroup_dirs(self):
        """The cgroup folders of this run's hosts (the parents of their containers' cgroups)."""
        return sorted(glob.glob(os.path.join(CGROUP_ROOT, "*", self.id + "-*")))

    def processes(self):
        """[(pid, command line)] of live processes that name this run (its id or directory)."""
        out = []
        for d in glob.glob("/proc/[0-9]*"):
            try:
                with open(os.path.join(d, "cmdline"), "rb") as f:
                    cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if self.id in cmd and int(os.path.basename(d)) != os.getpid():
                out.append((int(os.path.basename(d)), cmd.strip()))
        return out

    def mounts(self):
        """Mount points in this (the machine's) mount namespace that belong to the run."""
        with open("/proc/self/mountinfo") as f:
            return [line.split()[4] for line in f if self.id in line]

    def leftovers(self, netns_inodes=()):
        """What of this run is still on the machine, as readable lines (empty: nothing)."""
        left = [f"process {pid}: {cmd[:120]}" for pid, cmd in self.processes()]
        left += [f"mount {m}" for m in self.mounts()]
        left += [f"cgroup {d}" for d in self.cgroup_dirs()]
        if os.path.exists(self.dir):
            left.append(f"directory {self.dir}")
        if netns_inodes:
            held = holders_of_netns(netns_inodes)
            left += [f"network namespace {ino} held by process {pid}" for ino, pid in held]
        p = sh("ip", "-o", "link", check=False)
        left += [f"link in the machine's namespace: {line.split(':')[1].strip()}"
                 for line in p.stdout.splitlines() if self.id in line]
        return left

    def remove_leftovers(self, timeout=30.0):
        """Kill what runs, delete the cgroups and the directory. Idempotent; returns what failed."""
        for pid, _ in self.processes():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        while self.processes() and time.monotonic() < deadline:
            time.sleep(0.1)
        for d in self.cgroup_dirs():  # deepest first; a cgroup empties a moment after its processes
            for sub in sorted((r for r, _, _ in os.walk(d)), key=len, reverse=True):
                while True:
                    try:
                        os.rmdir(sub)
                        break
                    except FileNotFoundError:
                        break
                    except OSError:
                        if time.monotonic() > deadline:
                            break
                        time.sleep(0.1)
        for m in reversed(self.mounts()):
            sh("umount", "-l", m, check=False)
        shutil.rmtree(self.dir, ignore_errors=True)
        return self.leftovers()


def stale_runs():
    """Runs on this machine whose owning process is gone (a crashed or killed test)."""
    out = []
    for d in sorted(glob.glob(f"/tmp/{PREFIX}*")):
        try:
            with open(os.path.join(d, "owner")) as f:
                owner = int(f.read().split()[0])
            os.kill(owner, 0)
            continue  # its test is still running
        except (OSError, ValueError, IndexError):
            out.append(Run.of_dir(d))
    ids = {r.id for r in out}
    for d in glob.glob(os.path.join(CGROUP_ROOT, "*", PREFIX + "*")):
        rid = os.path.basename(d).rsplit("-", 1)[0]
        if rid not in ids and not os.path.exists(os.path.join("/tmp", rid)):
            ids.add(rid)
            out.append(Run(rid))
    return out


def holders_of_netns(inodes):
    """[(inode, pid)] for processes whose network namespace is one of `inodes`."""
    want = {f"net:[{i}]" for i in inodes}
    out = []
    for d in glob.glob("/proc/[0-9]*"):
        try:
            link = os.readlink(os.path.join(d, "ns", "net"))
        except OSError:
            continue
        if link in want:
            out.append((link[5:-1], int(os.path.basename(d))))
    return out


# ---- the lab itself (runs inside its own mount and PID namespaces) ------------------------------
def spawn(run, argv, log):
    """Start `argv` as PID 1's child in new mount and PID namespaces (a session of its own, so a
    terminal's Ctrl-C reaches only the caller, which decides how to stop it). `argv` gets
    `--owner-fd N`: the read end of a pipe whose write end only this process holds, so the lab
    sees it end (EOF) when this process does, however it ends. Returns the Popen of `unshare`;
    `lab_init(p)` finds the namespace's PID 1."""
    os.makedirs(run.dir, exist_ok=True)
    with open(os.path.join(run.dir, "owner"), "w") as f:
        f.write(f"{os.getpid()}\n")
    r, w = os.pipe()
    p = subprocess.Popen(
        ["unshare", "--mount", "--pid", "--fork", "--propagation", "private", "--mount-proc",
         "docker-init", "--", *argv, "--owner-fd", str(r)],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True, pass_fds=(r,))
    os.close(r)
    p.owner_pipe = w  # closed with this process
    return p


def watch_owner(fd, on_gone):
    """In the lab: call `on_gone()` once the process that started it has ended."""
    def wait():
        while os.read(fd, 64):
            pass
        on_gone()

    threading.Thread(target=wait, daemon=True).start()


def lab_init(p, timeout=10.0):
    """The PID (in our namespace) of docker-init, PID 1 of the lab started by `spawn`."""
    path = f"/proc/{p.pid}/task/{p.pid}/children"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(path) as f:
                kids = f.read().split()
            if kids:
                return int(kids[0])
        except OSError:
            return None
        time.sleep(0.02)
    return None


class Lab:
    """The bridge, three hosts and their daemons. Only ever used inside the lab's namespaces."""

    def __init__(self, run):
        self.run = run
        self.ns = {h: f"{run.id}-{h}" for h in HOSTS}
        self.br = f"{run.id}-br"
        self.procs = {}  # host -> Popen of its namespaces (docker-init as PID 1 inside)
        self.stub = None
        self.cli_env = dict(os.environ, DOCKER_CONFIG=os.path.join(run.dir, "cli"))
        for var in ("DOCKER_HOST", "DOCKER_CONTEXT", "MAKEFLAGS", "MFLAGS", "MAKELEVEL"):
            self.cli_env.pop(var, None)

    def host_dir(self, h):
        return os.path.join(self.run.dir, h)

    def sock(self, h):
        return "unix://" + os.path.join(self.host_dir(h), "docker.sock")

    def data_root(self, h):
        return os.path.join(self.host_dir(h), "data")

    def daemon_log(self, h):
        return os.path.join(self.host_dir(h), "dockerd.log")

    # ---- the network -----------------------------------------------------------------------
    def create(self):
        """The lab's /run, the bridge namespace and the hosts' namespaces and links, the stub DNS."""
        sh("mount", "-t", "tmpfs", "-o", "mode=755", "tmpfs", "/run")  # our netns names live here
        os.makedirs(os.path.join(self.run.dir, "cli"), exist_ok=True)
        ip = lambda *a: sh("ip", *a)  # noqa: E731
        ip("netns", "add", self.br)
        ip("-n", self.br, "link", "set", "lo", "up")
        ip("-n", self.br, "link", "add", "br0", "type", "bridge")
        ip("-n", self.br, "addr", "add", f"{BRIDGE_IP}/24", "dev", "br0")
        ip("-n", self.br, "link", "set", "br0", "up")
        for h in HOSTS:
            ns = self.ns[h]
            ip("netns", "add", ns)
            ip("-n", self.br, "link", "add", f"v{h}", "type", "veth", "peer", "name", "eth0", "netns", ns)
            ip("-n", self.br, "link", "set", f"v{h}", "master", "br0", "up")
            ip("-n", ns, "link", "set", "lo", "up")
            ip("-n", ns, "addr", "add", f"{ADDR[h]}/24", "dev", "eth0")
            ip("-n", ns, "link", "set", "eth0", "up")
        resolv = os.path.join(self.run.dir, "resolv.conf")
        with open(resolv, "w") as f:
            f.write(f"nameserver {BRIDGE_IP}\n")
        self.stub = subprocess.Popen(["ip", "netns", "exec", self.br, "python3", "-c", STUB_DNS, BRIDGE_IP],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def netns_inodes(self):
        return [os.stat(f"/run/netns/{n}").st_ino for n in [self.br, *self.ns.values()]]

    def cut(self, h):
        """Host h loses the network: its cable leaves the bridge (its own link stays up)."""
        sh("ip", "-n", self.br, "link", "set", f"v{h}", "nomaster")

    def heal(self, h):
        sh("ip", "-n", self.br, "link", "set", f"v{h}", "master", "br0")

    # ---- the daemons -----------------------------------------------------------------------
    def _config(self, h):
        d = self.host_dir(h)
        os.makedirs(os.path.join(d, "data"), exist_ok=True)
        os.makedirs(os.path.join(d, "exec"), exist_ok=True)
        cfg = {
            "data-root": os.path.join(d, "data"),
            "exec-root": os.path.join(d, "exec"),
            "pidfile": os.path.join(d, "dockerd.pid"),
            "hosts": [self.sock(h)],
            "storage-driver": "overlay2",
            "cgroup-parent": f"/{self.run.id}-{h}",
            "log-driver": "json-file",
        }
        with open(os.path.join(d, "daemon.json"), "w") as f:
            json.dump(cfg, f, indent=1)

    def start(self, h, timeout=60.0):
        """Start host h's dockerd (again); returns once its API answers."""
        if self.running(h):
            raise Failure(f"host {h} is already running")
        self._config(h)
        with open(self.daemon_log(h), "a") as log:
            self.procs[h] = subprocess.Popen(
                ["nsenter", f"--net=/run/netns/{self.ns[h]}", "unshare", "--mount", "--uts", "--pid",
                 "--fork", "--propagation", "private", "--mount-proc", "docker-init", "--",
                 "sh", "-c", HOST_SCRIPT, "host", h, self.host_dir(h), os.path.join(self.run.dir, "resolv.conf")],
                stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            if self.procs[h].poll() is not None:
                raise Failure(f"host {h}'s dockerd exited ({self.procs[h].returncode}): "
                              + self.tail(h))
            if self.docker(h, "version", "-f", "{{.Server.Version}}", check=False, timeout=10).returncode == 0:
                return
            if time.monotonic() > deadline:
                raise Failure(f"host {h}'s dockerd did not answer within {timeout:.0f} s: {self.tail(h)}")
            time.sleep(0.1)

    def tail(self, h, n=5):
        try:
            with open(self.daemon_log(h)) as f:
                return " | ".join(line.strip() for line in f.readlines()[-n:])
        except OSError:
            return "(no log)"

    def running(self, h):
        p = self.procs.get(h)
        return p is not None and p.poll() is None

    def _init_pid(self, h):
        p = self.procs[h]
        return lab_init(p, timeout=2.0)

    def stop(self, h, kill=False, timeout=45.0):
        """Stop host h: SIGTERM to its PID 1, which passes it to dockerd (it stops its
        containers, then exits), or SIGKILL: every process of the host ends at once."""
        if not self.running(h):
            return
        pid = self._init_pid(h)
        if pid:
            try:
                os.kill(pid, signal.SIGKILL if kill else signal.SIGTERM)
            except ProcessLookupError:
                pass
        try:
            self.procs[h].wait(timeout)
        except subprocess.TimeoutExpired:
            if pid:
                os.kill(pid, signal.SIGKILL)
            self.procs[h].wait(10)

    def docker(self, h, *args, check=True, timeout=120, input=None):
        return sh("docker", "-H", self.sock(h), *args, check=check, timeout=timeout,
                  env=self.cli_env, input=input)

    def env_for(self, h):
        """An environment whose `docker` talks to host h (for make and scripts)."""
        return dict(self.cli_env, DOCKER_HOST=self.sock(h))

    def lab_pid(self, host_pid):
        """The PID in the lab's namespace of a process a host's daemon reports as `host_pid`."""
        for st in glob.glob("/proc/[0-9]*/status"):
            try:
                with open(st) as f:
                    ns = next((line.split()[1:] for line in f if line.startswith("NSpid:")), [])
            except OSError:
                continue
            if len(ns) >= 2 and ns[1] == str(host_pid):
                return int(ns[0])
        return None

    def resolve_in(self, h, cid, names):
        """What Docker's DNS answers inside container `cid` on host h: {name: [addresses]}."""
        pid = self.docker(h, "inspect", "-f", "{{.State.Pid}}", cid, check=False).stdout.strip()
        lab = self.lab_pid(pid) if pid.isdigit() and pid != "0" else None
        if lab is None:
            return {}
        p = sh("nsenter", f"--net=/proc/{lab}/ns/net", "python3", "-c", DNS_QUERY, *names, check=False)
        try:
            return json.loads(p.stdout)
        except ValueError:
            return {}

    def shutdown(self):
        """Every host stopped hard and the stub ended (the namespaces go with the lab)."""
        for h in HOSTS:
            try:
                self.stop(h, kill=True, timeout=20)
            except Exception:  # noqa: BLE001 - the lab's end takes the rest
                pass
        if self.stub is not None and self.stub.poll() is None:
            self.stub.kill()
            self.stub.wait()


# ---- containers' logs, kept even when Swarm removes a container ---------------------------------
class LogKeeper:
    """Every container's json-file log, hard-linked into `into` as soon as it exists: Swarm removes
    the containers of old tasks (on a daemon's restart, all of them), and their logs with them,
    but a hard link keeps the file, and the daemon's appends to it, until the run ends."""

    def __init__(self, data_roots, into, period=0.1):
        self.roots = data_roots
        self.into = into
        self.period = period
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def start(self):
        os.makedirs(self.into, exist_ok=True)
        self.thread.start()
        return self

    def stop(self):
        self.done.set()
        self.thread.join(5)
        self.scan()

    def _loop(self):
        while not self.done.wait(self.period):
            self.scan()

    def scan(self):
        for host, root in self.roots.items():
            for log in glob.glob(os.path.join(root, "containers", "*", "*-json.log")):
                cid = os.path.basename(os.path.dirname(log))
                mine = os.path.join(self.into, f"{host}-{cid}")
                if os.path.exists(mine + ".log"):
                    continue
                try:
                    shutil.copy(os.path.join(os.path.dirname(log), "config.v2.json"), mine + ".json")
                    os.link(log, mine + ".log")
                except OSError:
                    pass  # not complete yet, or already gone: the next scan

    def logs(self):
        """[(created, host, name, labels, [lines])] of every container seen, oldest first."""
        self.scan()
        out = []
        for cfg in glob.glob(os.path.join(self.into, "*.json")):
            host = os.path.basename(cfg).split("-", 1)[0]
            for created, name, labels, lines in container_logs_at(cfg, [cfg[:-5] + ".log"]):
                out.append((created, host, name, labels, lines))
        return sorted(out, key=lambda t: t[0])


def container_logs_at(cfg, logs):
    try:
        with open(cfg) as f:
            c = json.load(f)
    except (OSError, ValueError):
        return []
    lines = []
    for path in logs:
        try:
            with open(path) as f:
                for raw in f:
                    try:
                        lines.append(json.loads(raw)["log"].rstrip("\n"))
                    except (ValueError, KeyError):
                        pass
        except OSError:
            pass
    labels = (c.get("Config") or {}).get("Labels") or {}
    return [(c.get("Created", ""), c.get("Name", "").lstrip("/"), labels, lines)]
