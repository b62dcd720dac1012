#!/usr/bin/env python3
"""Send controller requests to Raft nodes over UDP+JSON.

One UDP datagram is one UTF-8 JSON object with exactly five fields:
``sender_name``, ``request``, ``term``, ``key`` and ``value``.  The controller
sends (with ``sender_name`` ``"Controller"``):

* ``LEADER_INFO``      -- the node replies to the datagram's source address with
  ``{"sender_name": <node>, "request": "LEADER_INFO", "term": <int>,
  "key": "LEADER", "value": <leader name or null>}``;
* ``CONVERT_FOLLOWER`` -- the node steps down to follower (no reply);
* ``TIMEOUT``          -- the node's election timer fires now (no reply);
* ``SHUTDOWN``         -- the node stops taking part in the cluster (no reply).

Used as a library::

    import controller
    controller.send("TIMEOUT", "Node3", host="127.0.0.13")
    reply = controller.leader_info("Node1")          # dict, or None on timeout

Used from the command line::

    python3 Controller/controller.py leader_info Node1 [--host 127.0.0.11]
    python3 Controller/controller.py CONVERT_FOLLOWER Node2 --bind Controller:5555

Exit status: 0 on success, 1 when no reply arrived in time or the network
failed, 2 on bad arguments.  Standard library only; Python 3.8+.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import socket
import sys
import time
from typing import Dict, Iterable, List, NamedTuple, Optional, Tuple

#: UDP port every node listens on.
PORT = 5555
#: ``sender_name`` of every controller message.
SENDER = "Controller"
#: The five message fields, in wire order.
FIELDS = ("sender_name", "request", "term", "key", "value")
#: Requests a controller may send.
REQUESTS = ("LEADER_INFO", "CONVERT_FOLLOWER", "TIMEOUT", "SHUTDOWN")
#: Requests a node answers.
REPLYING = ("LEADER_INFO",)
#: Seconds to wait for a reply unless told otherwise.
DEFAULT_TIMEOUT = 1.0
#: The message template shipped at the repository root.
TEMPLATE_PATH = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "Message.json"
)
#: Receive buffer; nodes keep replies under 1024 bytes, but accept anything UDP can carry.
RECV_BUFSIZE = 65535

Address = Tuple[str, int]


class ControllerError(OSError):
    """A network operation failed (cannot bind, resolve or send)."""


class Peer(NamedTuple):
    """A node to talk to: its name and the address its datagrams go to."""

    name: str
    host: str
    port: int = PORT


class Answer(NamedTuple):
    """The outcome of asking one peer: its reply, or why there is none."""

    peer: Peer
    reply: Optional[dict] = None
    error: Optional[str] = None


# ---- messages -------------------------------------------------------------------------------


def normalize_request(request: str) -> str:
    """Return the protocol constant a command-line spelling names: ``leader-info`` -> ``LEADER_INFO``.

    Only the command line is lenient: what goes on the wire is always the exact constant, since
    nodes match request names byte for byte. Raises ``ValueError`` for an empty name or one
    containing whitespace.
    """
    name = str(request).strip().upper().replace("-", "_")
    if not name or any(c.isspace() for c in name):
        raise ValueError("invalid request name %r" % (request,))
    return name


def load_template(path: Optional[str] = None) -> dict:
    """Load the five-field message template.

    Looks at ``path`` if given, else ``Message.json`` at the repository root, then
    ``Message.json`` in the current directory.  A template that is missing, unreadable
    or does not hold exactly the five fields is ignored, and a dict of five ``None``
    values (in wire order) is returned instead.
    """
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


def make_message(
    request: str,
    sender: str = SENDER,
    term: Optional[int] = None,
    key: Optional[str] = None,
    value: Optional[str] = None,
) -> dict:
    """Build a message from the template, exactly as the reference controller does.

    The template is loaded, ``sender_name`` and ``request`` are filled in, and ``term``,
    ``key`` and ``value`` are set only when given (they stay as in the template, i.e.
    ``null``, otherwise).
    """
    msg = load_template()
    msg["sender_name"] = sender
    msg["request"] = normalize_request(request)
    if term is not None:
        msg["term"] = term
    if key is not None:
        msg["key"] = key
    if value is not None:
        msg["value"] = value
    return msg


def encode(msg: dict) -> bytes:
    """Serialise a message into one datagram (``json.dumps``, UTF-8)."""
    return json.dumps(msg).encode("utf-8")


def decode(data: bytes) -> Optional[dict]:
    """Parse one datagram; return the JSON object, or ``None`` if it is not one."""
    try:
        msg = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return msg if isinstance(msg, dict) else None


def is_reply_to(msg: Optional[dict], request: str) -> bool:
    """True when ``msg`` is a JSON object answering ``request`` (the exact constant)."""
    return isinstance(msg, dict) and msg.get("request") == request


# ---- addresses ------------------------------------------------------------------------------


def parse_port(text: str, allow_zero: bool = False) -> int:
    """Parse a UDP port number; ``ValueError`` when out of range."""
    try:
        port = int(str(text).strip())
    except ValueError:
        raise ValueError("invalid port %r" % (text,)) from None
    if not (0 if allow_zero else 1) <= port <= 65535:
        raise ValueError("port %d out of range" % port)
    return port


def parse_hostport(text: str, default_host: str = "", default_port: int = 0) -> Address:
    """Parse ``HOST:PORT``, ``HOST``, ``:PORT`` or ``PORT`` into ``(host, port)``.

    An empty host means all interfaces; port 0 means an ephemeral port.
    """
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
    """Parse a ``PEERS`` list: comma-separated ``Name`` or ``Name=host:port`` entries.

    A bare ``Name`` is reached at host ``Name`` (Docker DNS) on ``port``; so is
    ``Name=host`` without a port.  Raises ``ValueError`` on an empty list, an empty
    name or a duplicate name.
    """
    peers: List[Peer] = []
    seen = set()
    for entry in str(spec).split(","):
        entry = entry.strip()
        if not entry:
            continue
        name, sep, addr = entry.partition("=")
        name = name.strip()
        if not name:
            raise ValueError("peer entry %r has no name" % entry)
        if name in seen:
            raise ValueError("peer %r listed twice" % name)
        seen.add(name)
        if sep:
            host, peer_port = parse_hostport(addr, default_host=name, default_port=port)
            if peer_port == 0:
                raise ValueError("peer %r has port 0" % name)
        else:
            host, peer_port = name, port
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
    skt = socket.socket(family=socket.AF_INET, type=socket.SOCK_DGRAM)
    try:
        skt.bind(bind)
    except OSError as e:
        skt.close()
        raise ControllerError("cannot bind %s: %s" % (format_address(bind), _reason(e))) from e
    return skt


def resolve(host: str, port: int) -> Address:
    """Resolve ``host`` to an IPv4 address; ``ControllerError`` when it cannot be."""
    try:
        infos = socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_DGRAM)
    except (OSError, UnicodeError) as e:
        raise ControllerError("cannot resolve %r: %s" % (host, _reason(e))) from e
    ip, resolved_port = infos[0][4][:2]
    return ip, resolved_port


def _reason(e: BaseException) -> str:
    return getattr(e, "strerror", None) or str(e) or type(e).__name__


# ---- sending --------------------------------------------------------------------------------


def send(
    request: str,
    target: str,
    port: int = PORT,
    host: Optional[str] = None,
    bind: Optional[Address] = None,
    timeout: float = DEFAULT_TIMEOUT,
    expect_reply: bool = False,
    term: Optional[int] = None,
    key: Optional[str] = None,
    value: Optional[str] = None,
    sender: str = SENDER,
) -> Optional[dict]:
    """Send one request to node ``target`` and optionally wait for its reply.

    The datagram goes to ``(host or target, port)`` from a socket bound to ``bind``
    (default ``("", 0)``; ``("Controller", 5555)`` reproduces the reference controller).
    With ``expect_reply``, waits up to ``timeout`` seconds and returns the first JSON
    object answering ``request`` (other datagrams are skipped); returns ``None`` when
    none arrives in time, or straight away without ``expect_reply``.

    Raises ``ControllerError`` when binding, resolving or sending fails.
    """
    request = normalize_request(request)
    data = encode(make_message(request, sender, term=term, key=key, value=value))
    addr = resolve(host or target, port)
    with open_socket(bind) as skt:
        try:
            skt.sendto(data, addr)
        except OSError as e:
            raise ControllerError(
                "cannot send to %s at %s: %s" % (target, format_address(addr), _reason(e))
            ) from e
        if not expect_reply:
            return None
        deadline = time.monotonic() + timeout
        for msg, _src in _receive(skt, deadline):
            if is_reply_to(msg, request):
                return msg
    return None


def leader_info(target: str, **kwargs) -> Optional[dict]:
    """Ask ``target`` who the leader is; the reply dict, or ``None`` on timeout.

    Takes the keyword arguments of :func:`send`.
    """
    return send("LEADER_INFO", target, expect_reply=True, **kwargs)


def query_all(
    peers: Iterable[Peer],
    request: str = "LEADER_INFO",
    bind: Optional[Address] = None,
    timeout: float = DEFAULT_TIMEOUT,
    sender: str = SENDER,
) -> List[Answer]:
    """Send ``request`` to every peer from one socket, then collect replies concurrently.

    Waits until every peer answered or ``timeout`` seconds passed.  A reply is matched
    to its peer by ``sender_name``, else by source address.  Returns one
    :class:`Answer` per peer, in order; ``reply`` is ``None`` for a peer that did not
    answer, and ``error`` says why when sending to it failed.
    """
    request = normalize_request(request)
    peers = list(peers)
    data = encode(make_message(request, sender))
    answers: Dict[str, Answer] = {p.name: Answer(p) for p in peers}
    pending_by_addr: Dict[Address, str] = {}
    with open_socket(bind) as skt:
        for peer in peers:
            try:
                addr = resolve(peer.host, peer.port)
                skt.sendto(data, addr)
            except (OSError, UnicodeError) as e:
                answers[peer.name] = Answer(peer, error=_reason(e))
                continue
            pending_by_addr[addr] = peer.name
        pending = set(pending_by_addr.values())
        deadline = time.monotonic() + timeout
        for msg, src in _receive(skt, deadline, until=lambda: not pending):
            if not is_reply_to(msg, request):
                continue
            name = msg.get("sender_name")
            if name not in pending:
                name = pending_by_addr.get(src[:2])
            if name in pending:
                pending.discard(name)
                answers[name] = Answer(answers[name].peer, reply=msg)
    return [answers[p.name] for p in peers]


def _receive(skt: socket.socket, deadline: float, until=lambda: False):
    """Yield ``(decoded message or None, source address)`` until ``deadline`` or ``until()``.

    Datagrams already queued when the deadline passes are still read (up to a bound), so
    a reply that arrived in time is never lost to a late wake-up.
    """
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
        except ConnectionError:
            # Some platforms report an ICMP "port unreachable" from an earlier send here.
            continue
        yield decode(data), src


# ---- command line ---------------------------------------------------------------------------


def _port_arg(text: str) -> int:
    try:
        return parse_port(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _bind_arg(text: str) -> Address:
    try:
        return parse_hostport(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _timeout_arg(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("invalid timeout %r" % text) from None
    if not (seconds > 0 and math.isfinite(seconds)):
        raise argparse.ArgumentTypeError("timeout must be a positive number of seconds")
    return seconds


def _term_arg(text: str) -> int:
    try:
        term = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("invalid term %r" % text) from None
    if term < 0:
        raise argparse.ArgumentTypeError("term must not be negative")
    return term


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--port``, ``--bind`` and ``--timeout`` (shared by every script)."""
    parser.add_argument(
        "--port", type=_port_arg, default=PORT, help="node UDP port (default %(default)s)"
    )
    parser.add_argument(
        "--bind",
        type=_bind_arg,
        default=("", 0),
        metavar="HOST:PORT",
        help="local address to send from (default: an ephemeral port on all interfaces; "
        "'Controller:5555' behaves exactly like the reference controller)",
    )
    parser.add_argument(
        "--timeout",
        type=_timeout_arg,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help="how long to wait for a reply (default %(default)s)",
    )


def build_parser(request: Optional[str] = None, prog: Optional[str] = None):
    """The argument parser; without ``request`` the first argument names the request."""
    if request is None:
        description = "Send one controller request to a Raft node."
    else:
        description = "Send %s to a Raft node." % request
    parser = argparse.ArgumentParser(prog=prog, description=description)
    if request is None:
        parser.add_argument(
            "request",
            metavar="REQUEST",
            help="one of %s (case-insensitive, '-' or '_' here; sent as the exact constant)" % ", ".join(REQUESTS),
        )
    parser.add_argument(
        "node", metavar="NODE", help="node name, e.g. Node1; also its host unless --host is given"
    )
    parser.add_argument("--host", help="host or IP to send to (default: the node name)")
    add_common_options(parser)
    parser.add_argument("--term", type=_term_arg, help="set the message's term")
    parser.add_argument("--key", help="set the message's key")
    parser.add_argument("--value", help="set the message's value")
    return parser


def main(argv: Optional[List[str]] = None, request: Optional[str] = None) -> int:
    """Run the command line; returns the exit status.

    With ``request`` given (the per-request scripts), only ``NODE`` and options are read.
    """
    parser = build_parser(request)
    args = parser.parse_args(argv)
    try:
        request = normalize_request(request or args.request)
    except ValueError as e:
        parser.error(str(e))
    if request not in REQUESTS:
        parser.error("unknown request %r (choose from %s)" % (args.request, ", ".join(REQUESTS)))
    if not args.node.strip():
        parser.error("NODE must not be empty")
    host = args.host or args.node
    expect_reply = request in REPLYING
    try:
        reply = send(
            request,
            args.node,
            port=args.port,
            host=host,
            bind=args.bind,
            timeout=args.timeout,
            expect_reply=expect_reply,
            term=args.term,
            key=args.key,
            value=args.value,
        )
    except ControllerError as e:
        print("%s: %s" % (parser.prog, e), file=sys.stderr)
        return 1
    where = "%s (%s:%d)" % (args.node, host, args.port)
    if not expect_reply:
        print("sent %s to %s" % (request, where), file=sys.stderr)
        return 0
    if reply is None:
        print(
            "%s: no %s reply from %s within %g s" % (parser.prog, request, where, args.timeout),
            file=sys.stderr,
        )
        return 1
    print(json.dumps(reply))
    return 0


if __name__ == "__main__":
    sys.exit(main())
