"""Network faults inside one container's network namespace, with tc (root, via nsenter).

Everything here changes the egress of the container's network interface only (eth0, or eth1...
after a `docker network connect`), so it disappears with the
container's namespace (docker kill, network disconnect, compose down) and never touches the host.

The kernel may lack netem (`tc qdisc add ... netem` -> "Specified qdisc kind is unknown"); then
loss and delay fall back to what it does have:
  - loss: an htb class whose leaf is `pfifo limit 0` (a queue that drops everything), and a
    classic-BPF classifier that sends a random share of packets there (`ld rand`);
  - delay: a token bucket (`tbf rate 16kbit ... latency MS`): what the node sends beyond
    16 kbit/s waits in a queue of at most MS, the rest is dropped — a slow, congested link;
  - one-link drop (partial connectivity): the same blackhole class, chosen by `u32 match ip dst`.
"""
import shutil
import subprocess

from cluster import Failure, run


def ensure_tc():
    if not shutil.which("tc") or not shutil.which("nsenter"):
        raise Failure("tc and nsenter are needed (apt-get install -y iproute2 util-linux)")


class Net:
    def __init__(self, cluster):
        self.c = cluster
        self._netem = None

    def tc(self, name, *args, check=True):
        return run("nsenter", "-t", str(self.c.pid(name)), "-n", "tc", *args, check=check, timeout=20)

    def dev(self, name):
        """The container's interface on the project network (its name changes on reconnect)."""
        p = run("nsenter", "-t", str(self.c.pid(name)), "-n", "ip", "-o", "-4", "addr", "show", timeout=20)
        devs = [(line.split()[1], line.split()[3].split("/")[0]) for line in p.stdout.splitlines()]
        ip = self.c.ip(name)
        return next((d for d, a in devs if a == ip), next((d for d, _ in devs if d != "lo"), "eth0"))

    def clear(self, name):
        """Back to the default qdisc (best effort: the container may be gone)."""
        try:
            self.tc(name, "qdisc", "del", "dev", self.dev(name), "root", check=False)
        except (Failure, subprocess.SubprocessError, ValueError):
            pass

    def netem(self, name):
        """Does this kernel have netem? Probed once, on `name`'s namespace."""
        if self._netem is None:
            p = self.tc(name, "qdisc", "add", "dev", self.dev(name), "root", "netem", "delay", "0ms", check=False)
            self._netem = p.returncode == 0
            self.clear(name)
        return self._netem

    def _blackhole_class(self, name):
        """htb root: class 1:1 passes everything (default), class 1:2 drops everything."""
        self.clear(name)
        dev = self.dev(name)
        self.tc(name, "qdisc", "add", "dev", dev, "root", "handle", "1:", "htb", "default", "1")
        for cls in ("1:1", "1:2"):
            self.tc(name, "class", "add", "dev", dev, "parent", "1:", "classid", cls, "htb",
                    "rate", "1gbit", "quantum", "1514")
        self.tc(name, "qdisc", "add", "dev", dev, "parent", "1:2", "handle", "20:", "pfifo", "limit", "0")
        return dev

    def drop_to(self, name, ips):
        """Drop every packet `name` sends to these addresses."""
        dev = self._blackhole_class(name)
        for ip in ips:
            self.tc(name, "filter", "add", "dev", dev, "parent", "1:", "protocol", "ip", "prio", "1",
                    "u32", "match", "ip", "dst", f"{ip}/32", "flowid", "1:2")

    def loss(self, name, pct):
        """Drop `pct` % of what `name` sends, at random."""
        if self.netem(name):
            self.clear(name)
            self.tc(name, "qdisc", "add", "dev", self.dev(name), "root", "netem", "loss", f"{pct}%")
            return "netem"
        dev = self._blackhole_class(name)
        keep = int((100 - pct) / 100 * 2**32)
        # A = random u32; A >= keep -> return -1 (match: class 1:2, dropped); else 0 (no match).
        prog = f"4,32 0 0 {2**32 - 4096 + 56},53 0 1 {keep},6 0 0 {2**32 - 1},6 0 0 0"
        self.tc(name, "filter", "add", "dev", dev, "parent", "1:", "protocol", "ip", "prio", "1",
                "bpf", "bytecode", prog, "flowid", "1:2")
        return "bpf-random"

    def slow(self, name, ms):
        """Delay what `name` sends by about `ms` (netem), or throttle it to 16 kbit/s with a queue
        of at most `ms` (tbf) when netem is missing."""
        self.clear(name)
        dev = self.dev(name)
        if self.netem(name):
            self.tc(name, "qdisc", "add", "dev", dev, "root", "netem", "delay", f"{ms}ms", f"{ms // 4}ms")
            return "netem"
        self.tc(name, "qdisc", "add", "dev", dev, "root", "tbf", "rate", "16kbit", "burst", "1600",
                "latency", f"{ms}ms")
        return "tbf"
