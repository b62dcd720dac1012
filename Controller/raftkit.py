"""The Python side of the cluster, in one module (standard library only, Python 3.8+).

Owns the wire format (the five-field message built from ``Message.json``), the controller socket
(bind, send, ``recvfrom(1024)``, LEADER_INFO to every node from one socket, polling until the
nodes agree), the nodes' logfmt lines (parsed exactly as ``src/log.rs`` writes them), and N
``raft node`` processes on loopback with their CPU time and memory. Used by the Controller
scripts, the tests, the flood, the Docker suites and the bench. It never prints, never exits and
never reaches past the addresses it is given: callers decide what to say and where to send.
"""

import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from typing import Callable, Dict, Iterable, List, Mapping, NamedTuple, Optional, Sequence, Tuple

PORT = 5555
SENDER = "Controller"
FIELDS = ("sender_name", "request", "term", "key", "value")  # wire order
REQUESTS = ("LEADER_INFO", "CONVERT_FOLLOWER", "TIMEOUT", "SHUTDOWN")
REPLYING = ("LEADER_INFO",)
DEFAULT_TIMEOUT = 1.0
TEMPLATE_PATH = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "Message.json"
)
#: As the course controller reads; nodes keep their replies below it.
RECV_BUFSIZE = 1024

Address = Tuple[str, int]
Replies = Dict[str, Optional[dict]]


class ControllerError(OSError):
    """A network operation failed (cannot bind, resolve or send)."""


class Failure(AssertionError):
    """A cluster did not do what was expected in time (no leader, a node exited)."""


class Peer(NamedTuple):
    """A node to talk to: its name and the address its datagrams go to."""

    name: str
    host: str
    port: int = PORT


class Answer(NamedTuple):
    """The outcome of asking one peer: its reply, or why there is none; with :func:`survey`,
    also its STATUS reply (a node stopped by SHUTDOWN answers only that)."""

    peer: Peer
    reply: Optional[dict] = None
    error: Optional[str] = None
    status: Optional[dict] = None

    @property
    def stopped(self) -> bool:
        """No LEADER_INFO reply, and a STATUS reply saying ``role=Stopped``."""
        return self.reply is None and status_role(self.status) == "Stopped"


# ---- messages -------------------------------------------------------------------------------


def normalize_request(request: str) -> str:
    """The protocol constant a command-line spelling names: ``leader-info`` -> ``LEADER_INFO``.
    Only command lines are lenient: the wire always carries the exact constant, since nodes match
    request names byte for byte. ``ValueError`` for an empty name or one with spaces."""
    name = str(request).strip().upper().replace("-", "_")
    if not name or any(c.isspace() for c in name):
        raise ValueError("invalid request name %r" % (request,))
    return name


def load_template(path: Optional[str] = None) -> dict:
    """The five-field template from ``path``, else ``Message.json`` at the repository root or
    in the current directory; five ``None`` values (wire order) when none holds exactly the five."""
    candidates = [path] if path else [TEMPLATE_PATH, os.path.join(os.getcwd(), "Message.json")]
    for candidate in candidates:
        try:
            with open(candidate, encoding="utf-8") as f:
                template = json.load(f)
        except (OSError, ValueError):
            continue
        if isinstance(template, dict) and set(template) == set(FIELDS):
            return template
    return dict.fromkeys(FIELDS)


def make_message(request: str, sender: str = SENDER, term: Optional[int] = None,
                 key: Optional[str] = None, value: Optional[str] = None) -> dict:
    """The template with ``sender_name`` and ``request`` filled in, as the course controller
    builds it; ``term``, ``key`` and ``value`` only when given (else as in the template)."""
    msg = load_template()
    msg["sender_name"] = sender
    msg["request"] = normalize_request(request)
    for field, given in (("term", term), ("key", key), ("value", value)):
        if given is not None:
            msg[field] = given
    return msg


def encode(msg: dict) -> bytes:
    """One datagram: ``json.dumps``, UTF-8."""
    return json.dumps(msg).encode("utf-8")


def decode(data: bytes) -> Optional[dict]:
    """The JSON object in a datagram, or ``None`` if it holds none."""
    try:
        msg = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return msg if isinstance(msg, dict) else None


def is_reply_to(msg: Optional[dict], request: str) -> bool:
    """True when ``msg`` is a JSON object answering ``request`` (the exact constant)."""
    return isinstance(msg, dict) and msg.get("request") == request


def status_role(reply: Optional[dict]) -> Optional[str]:
    """The ``role`` a STATUS reply's value starts with (``Stopped`` after SHUTDOWN), or ``None``."""
    if not is_reply_to(reply, "STATUS") or reply.get("key") != "STATUS":
        return None
    value = reply.get("value")
    pairs = parse_pairs(value) if isinstance(value, str) else None
    return pairs[0][1] if pairs and pairs[0][0] == "role" else None


# ---- addresses ------------------------------------------------------------------------------


def parse_port(text: str, allow_zero: bool = False) -> int:
    """A UDP port number; ``ValueError`` when out of range."""
    try:
        port = int(str(text).strip())
    except ValueError:
        raise ValueError("invalid port %r" % (text,)) from None
    if not (0 if allow_zero else 1) <= port <= 65535:
        raise ValueError("port %d out of range" % port)
    return port


def parse_hostport(text: str, default_host: str = "", default_port: int = 0) -> Address:
    """``HOST:PORT``, ``HOST``, ``:PORT`` or ``PORT`` -> ``(host, port)``; an empty host means
    all interfaces, port 0 an ephemeral port."""
    text = str(text).strip()
    if not text:
        raise ValueError("empty address")
    if text.isdigit():
        return default_host, parse_port(text, allow_zero=True)
    if ":" in text:
        host, _, port_text = text.rpartition(":")
        return host.strip() or default_host, parse_port(port_text, allow_zero=True)
    return text, default_port


def parse_peers(spec: str, port: int = PORT) -> List[Peer]:
    """A ``PEERS`` list: comma-separated ``Name`` (reached at host ``Name``, Docker DNS) or
    ``Name=host[:port]``; ``ValueError`` on an empty list, an empty or a duplicate name."""
    peers: List[Peer] = []
    for entry in filter(None, (e.strip() for e in str(spec).split(","))):
        name, sep, addr = (part.strip() for part in entry.partition("="))
        if not name:
            raise ValueError("peer entry %r has no name" % entry)
        if any(p.name == name for p in peers):
            raise ValueError("peer %r listed twice" % name)
        host, peer_port = parse_hostport(addr, name, port) if sep else (name, port)
        if peer_port == 0:
            raise ValueError("peer %r has port 0" % name)
        peers.append(Peer(name, host, peer_port))
    if not peers:
        raise ValueError("no peers in %r" % (spec,))
    return peers


def default_peers(count: int, port: int = PORT) -> List[Peer]:
    """``Node1..NodeN``, each reached at its own name as host (Docker DNS)."""
    return [Peer("Node%d" % i, "Node%d" % i, port) for i in range(1, count + 1)]


def format_address(addr: Address) -> str:
    """``("", 0)`` -> ``"*:0"``, ``("127.0.0.1", 5555)`` -> ``"127.0.0.1:5555"``."""
    return "%s:%d" % (addr[0] or "*", addr[1])


def open_socket(bind: Optional[Address] = None) -> socket.socket:
    """A UDP/IPv4 socket bound to ``bind`` (default: an ephemeral port on all interfaces)."""
    bind = bind or ("", 0)
    skt = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        skt.bind(bind)
    except OSError as e:
        skt.close()
        raise ControllerError("cannot bind %s: %s" % (format_address(bind), _reason(e))) from e
    return skt


def resolve(host: str, port: int) -> Address:
    """``host`` as an IPv4 address; ``ControllerError`` when it cannot be resolved."""
    try:
        infos = socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_DGRAM)
    except (OSError, UnicodeError) as e:
        raise ControllerError("cannot resolve %r: %s" % (host, _reason(e))) from e
    return infos[0][4][0], infos[0][4][1]


def _reason(e: BaseException) -> str:
    return getattr(e, "strerror", None) or str(e) or type(e).__name__


# ---- the controller socket ------------------------------------------------------------------


def send(request: str, target: str, port: int = PORT, host: Optional[str] = None,
         bind: Optional[Address] = None, timeout: float = DEFAULT_TIMEOUT,
         expect_reply: bool = False, term: Optional[int] = None, key: Optional[str] = None,
         value: Optional[str] = None, sender: str = SENDER) -> Optional[dict]:
    """Send one request to node ``target`` at ``(host or target, port)`` from a socket bound to
    ``bind`` (``("Controller", 5555)`` is the course controller). With ``expect_reply``, the first
    JSON object answering it within ``timeout`` s (others are skipped), else ``None``.
    ``ControllerError`` when binding, resolving or sending fails."""
    request = normalize_request(request)
    data = encode(make_message(request, sender, term=term, key=key, value=value))
    addr = resolve(host or target, port)
    with open_socket(bind) as skt:
        try:
            skt.sendto(data, addr)
        except OSError as e:
            raise ControllerError("cannot send to %s at %s: %s"
                                  % (target, format_address(addr), _reason(e))) from e
        if expect_reply:
            for msg, _src in _receive(skt, time.monotonic() + timeout):
                if is_reply_to(msg, request):
                    return msg
    return None


def leader_info(target: str, **kwargs) -> Optional[dict]:
    """``target``'s LEADER_INFO reply, or ``None`` on timeout; takes :func:`send`'s options."""
    return send("LEADER_INFO", target, expect_reply=True, **kwargs)


def query_all(peers: Iterable[Peer], request: str = "LEADER_INFO",
              bind: Optional[Address] = None, timeout: float = DEFAULT_TIMEOUT,
              sender: str = SENDER) -> List[Answer]:
    """Send ``request`` to every peer from one socket, then collect the replies until all
    answered or ``timeout`` s passed. A reply is matched by ``sender_name``, else by source
    address. One :class:`Answer` per peer, in order; ``error`` says why sending to it failed."""
    request = normalize_request(request)
    peers = list(peers)
    with open_socket(bind) as skt:
        answers, by_addr = _send_all(skt, peers, (request,), sender)
        pending = set(by_addr.values())
        for msg, src in _receive(skt, time.monotonic() + timeout, until=lambda: not pending):
            if not is_reply_to(msg, request):
                continue
            name = msg.get("sender_name")
            name = name if isinstance(name, str) and name in pending else by_addr.get(src[:2])
            if name in pending:
                pending.discard(name)
                answers[name] = answers[name]._replace(reply=msg)
    return [answers[p.name] for p in peers]


def survey(peers: Iterable[Peer], bind: Optional[Address] = None,
           timeout: float = DEFAULT_TIMEOUT, sender: str = SENDER) -> List[Answer]:
    """LEADER_INFO and STATUS to every peer from one socket; the replies until every peer gave a
    LEADER_INFO reply or a STATUS saying it is stopped (it then answers nothing else), or
    ``timeout`` s passed. One :class:`Answer` per peer, in order, with ``status`` when one came."""
    peers = list(peers)
    with open_socket(bind) as skt:
        answers, by_addr = _send_all(skt, peers, ("LEADER_INFO", "STATUS"), sender)
        pending = set(by_addr.values())
        for msg, src in _receive(skt, time.monotonic() + timeout, until=lambda: not pending):
            request = msg.get("request") if isinstance(msg, dict) else None
            if request not in ("LEADER_INFO", "STATUS"):
                continue
            name = msg.get("sender_name")
            name = name if isinstance(name, str) and name in answers else by_addr.get(src[:2])
            if name not in pending:
                continue
            field = "reply" if request == "LEADER_INFO" else "status"
            answers[name] = answers[name]._replace(**{field: msg})
            if answers[name].reply is not None or answers[name].stopped:
                pending.discard(name)
    return [answers[p.name] for p in peers]


def _send_all(skt: socket.socket, peers: List[Peer], requests: Sequence[str],
              sender: str) -> Tuple[Dict[str, Answer], Dict[Address, str]]:
    """Each of ``requests`` to every peer from ``skt``: an :class:`Answer` per peer name (with
    ``error`` where sending failed) and the name of each address sent to."""
    answers: Dict[str, Answer] = {p.name: Answer(p) for p in peers}
    by_addr: Dict[Address, str] = {}
    for peer in peers:
        try:
            addr = resolve(peer.host, peer.port)
            for request in requests:
                skt.sendto(encode(make_message(request, sender)), addr)
        except (OSError, UnicodeError) as e:
            answers[peer.name] = Answer(peer, error=_reason(e))
            continue
        by_addr[addr] = peer.name
    return answers, by_addr


def ask_all(peers: Iterable[Peer], timeout: float = 0.3) -> Replies:
    """LEADER_INFO to every peer from one socket: ``{name: reply, or None}``."""
    return {a.peer.name: a.reply for a in query_all(peers, timeout=timeout)}


def _receive(skt: socket.socket, deadline: float, until=lambda: False):
    """``(decoded message or None, source)`` until ``deadline`` or ``until()``. Datagrams
    already queued at the deadline are still read (up to a bound): none that came in time is lost."""
    late_reads = 256
    while not until():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            if late_reads <= 0:
                return
            late_reads -= 1
        skt.settimeout(max(remaining, 0.0))
        try:
            data, src = skt.recvfrom(RECV_BUFSIZE)
        except (socket.timeout, BlockingIOError):
            return
        except ConnectionError:  # an ICMP "port unreachable" from an earlier send
            continue
        yield decode(data), src


# ---- agreement ------------------------------------------------------------------------------


def leader_of(reply: Optional[dict]) -> Optional[str]:
    """The leader a reply names, or ``None`` (no reply, or a null leader)."""
    value = reply.get("value") if reply else None
    return value if isinstance(value, str) and value else None


def agreed_leader(replies: Mapping[str, Optional[dict]], among=None) -> Optional[str]:
    """The leader every node names, when all answered and agree on one (one of ``among``)."""
    leaders = {leader_of(r) if r else "" for r in replies.values()}
    leader = leaders.pop() if len(leaders) == 1 else None
    return leader if leader and (among is None or leader in among) else None


def wait_for_leader(ask: Callable[[], Replies], timeout: float = 15.0, among=None,
                    want: Optional[str] = None, accept=lambda replies: True,
                    interval: float = 0.05) -> Tuple[str, float, Replies]:
    """Poll ``ask()`` until every node names one leader (one of ``among``; ``want`` if given)
    and ``accept(replies)``: ``(leader, seconds, replies)``; :class:`Failure` after ``timeout``."""
    t0 = time.monotonic()
    while True:
        replies = ask()
        leader = agreed_leader(replies, among)
        if leader and want in (None, leader) and accept(replies):
            return leader, time.monotonic() - t0, replies
        if time.monotonic() - t0 > timeout:
            seen = {n: (r.get("value"), r.get("term")) if r else None for n, r in replies.items()}
            raise Failure("no agreed leader%s within %.0f s; (value, term) per node: %s"
                          % (" " + want if want else "", timeout, seen))
        time.sleep(interval)


# ---- log lines ------------------------------------------------------------------------------

_START = re.compile(r"(?:^|[\s|])(?=t=)")  # prefixes such as `docker-compose logs`' are skipped
_FIELD = re.compile(r'([A-Za-z_][\w.-]*)=(?:"((?:[^"\\]|\\.)*)"|([!#-<>-\[\]-~]+))(?: |$)')
_ESCAPE = re.compile(r'\\(?:(["\\])|u\{([0-9a-f]{1,6})\}|(.))')
_BARE = re.compile(r"[!#-<>-\[\]-~]+\Z")


def quote(value) -> str:
    """A value as ``src/log.rs`` writes it: bare when it is printable ASCII without ``"``, ``=``
    and ``\\``; else quoted, with ``"`` and ``\\`` escaped and control characters as ``\\u{hex}``."""
    v = str(value)
    if _BARE.match(v):
        return v
    out = ["\\" + c if c in '"\\' else "\\u{%x}" % ord(c) if _is_control(c) else c for c in v]
    return '"' + "".join(out) + '"'


def _is_control(c: str) -> bool:
    return ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F


def _unescape(text: str) -> Optional[str]:
    parts, at = [], 0
    for m in _ESCAPE.finditer(text):
        if m.group(3) is not None:
            return None
        code = int(m.group(2) or "0", 16)
        if code > 0x10FFFF:
            return None
        parts += [text[at:m.start()], m.group(1) or chr(code)]
        at = m.end()
    return "".join(parts + [text[at:]])


def parse_fields(line: str) -> Optional[List[Tuple[str, str]]]:
    """The ``key=value`` pairs of a log line from its ``t=`` on, values unescaped, in order;
    ``None`` when the line has no ``t=`` or is not exactly logfmt as ``src/log.rs`` writes it."""
    start = _START.search(line)
    if not start:
        return None
    return parse_pairs(line.rstrip("\r\n"), start.end())


def parse_pairs(text: str, at: int = 0) -> Optional[List[Tuple[str, str]]]:
    """The ``key=value`` pairs of ``text`` from ``at`` on (logfmt as ``src/log.rs`` writes it,
    e.g. a STATUS reply's value), values unescaped, in order; ``None`` when it is not exactly that."""
    pairs = []
    while at < len(text):
        m = _FIELD.match(text, at)
        value = m and (m.group(3) if m.group(3) is not None else _unescape(m.group(2)))
        if value is None:
            return None
        pairs.append((m.group(1), value))
        at = m.end()
    return pairs


def parse_line(line: str) -> Optional[dict]:
    """A node's log line as a dict of strings, ``t`` as a float and ``term`` (when present) as an
    int; ``None`` for anything else (no ``t`` or ``node``, not logfmt, bad numbers)."""
    rec = dict(parse_fields(line) or ())
    try:
        rec["t"] = float(rec["t"])
        if "term" in rec:
            rec["term"] = int(rec["term"])
    except (KeyError, ValueError):
        return None
    return rec if rec.get("node") else None


def format_line(pairs: Iterable[Tuple[str, object]]) -> str:
    """``key=value`` pairs as one log line, quoted like the node's own."""
    return " ".join("%s=%s" % (k, quote(v)) for k, v in pairs)


# ---- local processes ------------------------------------------------------------------------

def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux ``/proc``)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_kib(pid: int) -> Dict[str, int]:
    """``VmRSS`` and ``VmHWM`` of a process, in KiB (Linux ``/proc``)."""
    with open("/proc/%d/status" % pid) as f:
        pairs = (line.split(":", 1) for line in f if line.startswith(("VmRSS:", "VmHWM:")))
        return {k: int(v.split()[0]) for k, v in pairs}


#: The node's configuration variables: a LocalCluster sets them itself unless told to inherit.
NODE_VARS = ("NODE_NAME", "PEERS", "CLUSTER_SIZE", "ELECTION_TIMEOUT_MS", "HEARTBEAT_MS",
             "DATA_DIR", "PRE_VOTE", "CHECK_QUORUM", "SHUTDOWN_EXITS", "CONTROLLER_ALLOW", "SEED",
             "CLUSTER_KEY", "CLUSTER_KEY_FILE", "CLUSTER_KEY_PREVIOUS", "CLUSTER_KEY_PREVIOUS_FILE")


class LocalCluster:
    """``raft node`` processes Node1..NodeN on loopback, Node K at ``first`` + K-1, port 5555;
    state and log (stdout and stderr, appended) of each in ``folder`` (a temporary one, removed
    by :meth:`stop`, when not given). ``env`` is added to the environment, which keeps the
    caller's node variables only with ``inherit``. A context manager: started, then stopped."""

    def __init__(self, exe: str, n: int = 5, first: str = "127.0.0.11",
                 folder: Optional[str] = None, inherit: bool = False, **env):
        self.exe, self.own_folder = exe, folder is None
        self.folder = folder or tempfile.mkdtemp(prefix="raft-local-")
        base = ipaddress.IPv4Address(first)
        self.peers = [Peer("Node%d" % k, str(base + k - 1)) for k in range(1, n + 1)]
        self.names = [p.name for p in self.peers]
        spec = ",".join("%s=%s:%d" % p for p in self.peers)
        keep = {k: v for k, v in os.environ.items() if inherit or k not in NODE_VARS}
        self.env = dict(keep, PEERS=spec, **{k: str(v) for k, v in env.items()})
        self.procs: Dict[str, subprocess.Popen] = {}

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def log(self, name: str) -> str:
        return os.path.join(self.folder, name + ".log")

    def addr(self, name: str) -> Address:
        return next((p.host, p.port) for p in self.peers if p.name == name)

    def spawn(self, name: str) -> subprocess.Popen:
        data = os.path.join(self.folder, name)
        os.makedirs(data, exist_ok=True)
        with open(self.log(name), "ab") as log:
            self.procs[name] = subprocess.Popen(
                [self.exe, "node"], env=dict(self.env, NODE_NAME=name, DATA_DIR=data),
                stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        return self.procs[name]

    def start(self) -> "LocalCluster":
        for name in self.names:
            self.spawn(name)
        return self

    def kill(self, name: str) -> float:
        """SIGKILL the node and reap it; the time the signal was sent."""
        p, t = self.procs.pop(name), time.time()
        p.send_signal(signal.SIGKILL)
        p.wait()
        return t

    def stop(self) -> None:
        """Kill every node started here (by pid); remove the folder if it is a temporary one."""
        for p in self.procs.values():
            if p.poll() is None:
                p.kill()
        for p in self.procs.values():
            p.wait()
        self.procs = {}
        if self.own_folder:
            shutil.rmtree(self.folder, ignore_errors=True)

    def exited(self) -> Dict[str, int]:
        """``{name: exit status}`` of the nodes that ended."""
        return {n: p.returncode for n, p in self.procs.items() if p.poll() is not None}

    def check_alive(self) -> None:
        """:class:`Failure`, with the end of its log, when a node has exited."""
        for name, status in self.exited().items():
            with open(self.log(name), errors="replace") as f:
                tail = f.read()[-300:]
            raise Failure("%s exited with status %s: %s" % (name, status, tail))

    def ask(self, names=None, timeout: float = 0.3) -> Replies:
        """LEADER_INFO to ``names`` (default all) from one socket."""
        return ask_all([p for p in self.peers if names is None or p.name in names], timeout)

    def wait_leader(self, names=None, **kwargs) -> Tuple[str, float, Replies]:
        """:func:`wait_for_leader` over ``names``, failing as soon as a node exits."""
        def ask():
            self.check_alive()
            return self.ask(names)
        return wait_for_leader(ask, **kwargs)
