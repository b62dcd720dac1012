"""What the conformance scripts share: addresses, the template, the verdict. Standard library only.

Each script in this folder behaves like one kind of course controller (see README.md); the
course's own moves (bind ``("Controller", 5555)``, fill ``Message.json``, ``sendto``,
``recvfrom(1024)``) are written out in the scripts themselves. This module holds only what is
the same in all of them:

- where a name is: in the Controller container, every name is its own host on port 5555 (Docker's
  DNS); elsewhere ``CONFORMANCE_ADDRS`` (or ``--addrs``) maps names to addresses in the nodes'
  own PEERS format, e.g. ``Controller=127.0.0.100:5555,Node1=127.0.0.11:5555,...``. Names match
  without regard to case, as DNS names do (``node3`` is ``Node3``);
- the nodes: ``Node1``..``NodeN``, N from ``CONFORMANCE_NODES`` (default 5);
- ``Message.json``: from the working directory, else beside the scripts or one folder up;
- the verdict: ``PASS``/``FAIL`` lines, the slowest reply seen, then ``N passed, M failed``
  and the exit status (1 when anything failed).

Checking a script's claims needs a second opinion: :func:`views` asks every node from a socket
of its own (an ephemeral port, never ``Controller:5555``), so what the pattern under test reads
is never disturbed by the checking.
"""

import json
import os
import signal
import socket
import sys
import time

PORT = 5555
HERE = os.path.dirname(os.path.abspath(__file__))
#: How long a grader waits after a request before it looks again ("a couple of seconds").
PAUSE_S = float(os.environ.get("CONFORMANCE_PAUSE", "2.0"))
#: Some course controllers give up after 1.0 s: every reply must come within it.
REPLY_LIMIT_S = 1.0
#: A blocking read (no timeout) that would hang a grader is cut off here and counted a failure.
HANG_S = 5.0


def _parse_addrs(spec):
    out = {}
    for entry in filter(None, (e.strip() for e in spec.split(","))):
        name, _, where = entry.partition("=")
        host, _, port = where.rpartition(":") if ":" in where else (where, "", "")
        out[name.strip().lower()] = (host.strip() or name.strip(), int(port or PORT))
    return out


ADDRS = _parse_addrs(os.environ.get("CONFORMANCE_ADDRS", ""))


def use_args(argv):
    """Take ``--addrs SPEC`` out of ``argv`` (same as ``CONFORMANCE_ADDRS``); the rest back."""
    rest = list(argv)
    if "--addrs" in rest:
        i = rest.index("--addrs")
        ADDRS.update(_parse_addrs(rest[i + 1]))
        del rest[i:i + 2]
    return rest


def addr(name):
    """Where datagrams for ``name`` go (the name itself on port 5555 unless mapped)."""
    return ADDRS.get(name.lower(), (name, PORT))


def nodes():
    return ["Node%d" % k for k in range(1, int(os.environ.get("CONFORMANCE_NODES", "5")) + 1)]


def template():
    """The five-field ``Message.json``, as the course's controllers read it."""
    for folder in (os.getcwd(), HERE, os.path.dirname(HERE)):
        path = os.path.join(folder, "Message.json")
        if os.path.exists(path):
            with open(path) as f:
                return json.load(f)
    raise SystemExit("Message.json not found (run from the folder that holds it)")


def message(request, sender="Controller"):
    msg = template()
    msg["sender_name"] = sender
    msg["request"] = request
    return msg


def encode(msg):
    return json.dumps(msg).encode("utf-8")


def controller_socket():
    """The course's socket: UDP, bound to ("Controller", 5555)."""
    skt = socket.socket(family=socket.AF_INET, type=socket.SOCK_DGRAM)
    skt.bind(addr("Controller"))
    return skt


def send(skt, request, target, sender="Controller"):
    """One request, as the course's example sends it; False (and a line) when sending failed,
    e.g. a killed container's name no longer resolves."""
    try:
        skt.sendto(encode(message(request, sender)), addr(target))
        return True
    except OSError as e:
        print("   (sending %s to %s failed: %s)" % (request, target, e), flush=True)
        return False


class Hang(Exception):
    pass


def _alarm(_sig, _frame):
    raise Hang()


def blocking_recv(skt, bufsize=1024):
    """``recvfrom(bufsize)`` with no timeout, as many graders read; a reply that never comes
    would hang them, so here it raises :class:`Hang` after ``HANG_S``."""
    skt.settimeout(None)
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, HANG_S)
    try:
        return skt.recvfrom(bufsize)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def views(names=None, wait=0.5):
    """LEADER_INFO to every node from an ephemeral socket: {node: (leader, term)} of those that
    answered within ``wait`` s (the checker's own view, apart from the pattern's socket)."""
    names = list(names or nodes())
    got = {}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as skt:
        for n in names:
            try:
                skt.sendto(encode(message("LEADER_INFO")), addr(n))
            except OSError:
                pass
        end = time.monotonic() + wait
        while len(got) < len(names):
            left = end - time.monotonic()
            if left <= 0:
                break
            skt.settimeout(left)
            try:
                data, _ = skt.recvfrom(1024)
            except (socket.timeout, ConnectionError):
                continue
            try:
                reply = json.loads(data)
            except ValueError:
                continue
            if isinstance(reply, dict) and reply.get("sender_name") in names:
                got[reply["sender_name"]] = (reply.get("value"), reply.get("term"))
    return got


def agreed(names=None, seconds=15.0, ok=lambda leader: True):
    """The leader all answering ``names`` name (one of them, and a majority of the cluster
    answering), once ``ok(leader)``; polls up to ``seconds``; ``None`` if never."""
    names = list(names or nodes())
    end = time.monotonic() + seconds
    while True:
        got = views(names)
        leaders = {v[0] for v in got.values()}
        if len(got) > len(nodes()) // 2 and len(leaders) == 1:
            leader = leaders.pop()
            if leader in names and ok(leader):
                return leader
        if time.monotonic() > end:
            return None
        time.sleep(0.05)


def leads(node, wait=0.5):
    """True when ``node`` itself says it leads (its LEADER_INFO names itself)."""
    return views([node], wait).get(node, (None,))[0] == node


class Verdict:
    """PASS/FAIL lines, the slowest reply, the closing ``N passed, M failed`` and exit status."""

    def __init__(self, title):
        self.title, self.passed, self.failed, self.slowest = title, 0, 0, (0.0, "")
        print("== %s" % title, flush=True)

    def check(self, name, ok, detail=""):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        print("%s %s%s" % ("PASS" if ok else "FAIL", name, ": " + detail if detail else ""),
              flush=True)
        return ok

    def reply_time(self, seconds, what):
        if seconds > self.slowest[0]:
            self.slowest = (seconds, what)

    def done(self):
        if self.slowest[1]:
            print("slowest reply: %.1f ms (%s)" % (self.slowest[0] * 1000, self.slowest[1]))
        print("%d passed, %d failed" % (self.passed, self.failed), flush=True)
        return 1 if self.failed or not self.passed else 0


def main(run):
    """``sys.exit(run(argv))`` with ``--addrs`` taken out first."""
    sys.exit(run(use_args(sys.argv[1:])))
