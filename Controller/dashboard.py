#!/usr/bin/env python3
"""A live dashboard of the cluster: ``python3 Controller/dashboard.py [options]``.

Serves one page (``dashboard.html``, plain JavaScript and SVG) showing every node's role, term,
vote, leader and timers, updated many times a second, an election timeline of the last minutes,
and buttons that send the course's own controller requests.

What it owns: asking every node ``STATUS`` from one socket on an ephemeral port, the picture of
the cluster built from the answers (:class:`ClusterState`, time passed in, no I/O), and a small
HTTP server: ``GET /`` (the page), ``GET /state`` (one JSON snapshot), ``GET /events``
(server-sent events, one snapshot per polling round), ``POST /command``, and ``GET /playground``
(the simulated cluster of ``playground.html``, which talks to nothing).

What it must never do: bind ``Controller:5555`` (the course's scripts bind it); send anything but
``STATUS`` and the controller requests ``TIMEOUT``, ``CONVERT_FOLLOWER`` and ``SHUTDOWN``; send to
anything but the configured nodes (:class:`Wire` is the one place that sends); wait on a node
(a node that does not answer is shown as "no answer"; one stopped by SHUTDOWN still answers
STATUS and is shown Stopped).

Standard library only; Python 3.8+.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Dict, List, Optional, Tuple

import raftkit
from raftkit import Peer

#: Requests the dashboard may send, and nothing else.
ALLOWED_REQUESTS = ("STATUS", "TIMEOUT", "CONVERT_FOLLOWER", "SHUTDOWN")
#: Buttons of a card and the request each sends. A node stopped by SHUTDOWN comes back on
#: CONVERT_FOLLOWER as a follower with its term and vote (src/election/mod.rs, Command::ConvertFollower).
ACTIONS = {
    "TIMEOUT": "TIMEOUT",
    "CONVERT_FOLLOWER": "CONVERT_FOLLOWER",
    "SHUTDOWN": "SHUTDOWN",
    "REVIVE": "CONVERT_FOLLOWER",
}
ROLES = ("Follower", "PreCandidate", "Candidate", "Leader", "Stopped")
#: What a card shows for a node that has not answered STATUS for ``stale_s``. (A node stopped by
#: SHUTDOWN still answers STATUS, with ``role=Stopped``: it is shown Stopped, never as this.)
NO_ANSWER = "no answer"
PAGE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dashboard.html")
#: The playground (built by `make playground UPDATE=1`): a simulated cluster in the browser.
PLAYGROUND = os.path.join(os.path.dirname(os.path.abspath(__file__)), "playground.html")
MAX_STREAMS = 16
MAX_BODY = 4096


# ---- the STATUS reply -----------------------------------------------------------------------


def _int_or_none(text: Optional[str]) -> Optional[int]:
    if text is None or not text.isdigit():
        return None
    return int(text)


def parse_status(reply: dict) -> Optional[dict]:
    """A node's STATUS reply as a dict of typed fields, or ``None`` if it is not one."""
    if not raftkit.is_reply_to(reply, "STATUS") or not isinstance(reply.get("value"), str):
        return None
    kv = dict(raftkit.parse_pairs(reply["value"]) or ())
    role = kv.get("role")
    if role not in ROLES:
        return None
    low, _, high = kv.get("election_ms", "").partition("-")
    name = lambda k: None if kv.get(k) in (None, "none") else kv[k]  # noqa: E731
    return {
        "role": role,
        "term": _int_or_none(kv.get("term")),
        "voted_for": name("voted_for"),
        "leader": name("leader"),
        "timer_ms": _int_or_none(kv.get("timer_ms")),
        "heard_ms": _int_or_none(kv.get("heard_ms")),
        "election_ms": [_int_or_none(low), _int_or_none(high)],
    }


# ---- the picture of the cluster ---------------------------------------------------------------


class ClusterState:
    """Every node's last answer and the election timeline; time comes in as ``now`` (seconds).

    A node is unreachable once it has been silent for ``stale_s`` and missed the last two polling
    rounds (so a stalled poller does not make every card flash unreachable). The timeline is a
    list of segments ``[leader or None, term or None, start, end]`` covering the last
    ``window_s``; the cluster's leader at the end of a round is the node reporting ``Leader``
    with the highest term (a deposed one in a lower term may not know yet) among those that
    answered in this round or the one before: a killed leader leaves the timeline from its last
    answer on, while its card waits ``stale_s`` before saying unreachable.
    """

    def __init__(self, names: List[str], stale_s: float = 0.5, window_s: float = 180.0):
        self.names = list(names)
        self.stale_s = stale_s
        self.window_s = window_s
        self.last: Dict[str, Optional[dict]] = dict.fromkeys(self.names)
        self.heard: Dict[str, Optional[float]] = dict.fromkeys(self.names)
        self.answered: Dict[str, int] = dict.fromkeys(self.names, -2)  # round of the last answer
        self.timeline: List[list] = []
        self.rounds = 0
        self.lock = threading.Condition()

    def observe(self, name: str, status: dict, now: float) -> None:
        if name in self.last:
            with self.lock:
                self.last[name] = status
                self.heard[name] = now
                self.answered[name] = self.rounds

    def fresh(self, name: str) -> bool:
        """Answered in the round under way or the one before."""
        return self.answered[name] >= self.rounds - 1

    def reachable(self, name: str, now: float) -> bool:
        heard = self.heard[name]
        return heard is not None and (now - heard <= self.stale_s or self.fresh(name))

    def leader(self, now: float, fresh_only: bool = False):
        """``(name, term)`` of the cluster's leader at ``now``, or ``(None, None)``."""
        best: Tuple[Optional[str], Optional[int]] = (None, None)
        for n in self.names:
            st = self.last[n]
            seen = self.fresh(n) if fresh_only else self.reachable(n, now)
            if st and st["role"] == "Leader" and seen and (best[1] is None or (st["term"] or 0) > best[1]):
                best = (n, st["term"] or 0)
        return best

    def end_round(self, now: float) -> None:
        """Close one polling round: extend or start a timeline segment, wake the streams."""
        with self.lock:
            leader, term = self.leader(now, fresh_only=True)
            last = self.timeline[-1] if self.timeline else None
            if last and (last[0], last[1]) == (leader, term):
                last[3] = now
            else:
                if last:
                    # A leader that fell silent led until its last answer, not until now.
                    gone = last[0] is not None and not self.fresh(last[0])
                    last[3] = self.heard[last[0]] if gone else now
                self.timeline.append([leader, term, last[3] if last else now, now])
            while self.timeline and self.timeline[0][3] < now - self.window_s:
                self.timeline.pop(0)
            self.rounds += 1
            self.lock.notify_all()

    def wait_round(self, seen: int, timeout: float) -> int:
        """Block until a round after ``seen`` ends (or ``timeout``); the current round number."""
        with self.lock:
            self.lock.wait_for(lambda: self.rounds != seen, timeout)
            return self.rounds

    def snapshot(self, now: float) -> dict:
        """What the page draws: times are relative to ``now`` (ms ago, s ago), never absolute."""
        with self.lock:
            leader, term = self.leader(now, fresh_only=True)
            return {
                "leader": leader,
                "term": term,
                "round": self.rounds,
                "window_s": self.window_s,
                "nodes": [self._node(n, now) for n in self.names],
                "timeline": [
                    {"leader": s[0], "term": s[1], "from_s": round(now - s[2], 3),
                     "to_s": round(now - s[3], 3)}
                    for s in self.timeline
                ],
            }

    def _node(self, name: str, now: float) -> dict:
        heard, status = self.heard[name], self.last[name]
        reachable = self.reachable(name, now)
        return {
            "name": name,
            "reachable": reachable,
            "age_ms": None if heard is None else int((now - heard) * 1000),
            "status": status,
            # The card's badge: the role STATUS gives (Stopped after SHUTDOWN), else no answer.
            "shown": status["role"] if reachable and status else NO_ANSWER,
        }


# ---- the network --------------------------------------------------------------------------------


class Wire:
    """The dashboard's only socket: an ephemeral UDP port, talking only to the configured peers.

    Peer names are resolved off the sending path (``refresh``, run by a background thread), so a
    lookup of a stopped container's name never delays a polling round; the last address found
    is kept.
    """

    def __init__(self, peers: List[Peer], skt=None, resolve=raftkit.resolve):
        self.peers = {p.name: p for p in peers}
        self.addrs: Dict[str, Optional[Tuple[str, int]]] = {p.name: None for p in peers}
        self.skt = skt or raftkit.open_socket(("", 0))
        self._resolve = resolve

    def refresh(self) -> None:
        for name, p in self.peers.items():
            try:
                self.addrs[name] = self._resolve(p.host, p.port)
            except raftkit.ControllerError:
                pass

    def send(self, name: str, request: str) -> bool:
        """Send ``request`` to node ``name``; False when it has no address or sending failed."""
        if request not in ALLOWED_REQUESTS:
            raise ValueError("the dashboard does not send %r" % request)
        addr = self.addrs.get(name)
        if addr is None:
            return False
        try:
            self.skt.sendto(raftkit.encode(raftkit.make_message(request)), addr)
        except OSError:
            return False
        return True

    def node_at(self, src: Tuple[str, int]) -> Optional[str]:
        for name, addr in self.addrs.items():
            if addr is not None and tuple(addr[:2]) == tuple(src[:2]):
                return name
        return None


class Poller:
    """Every ``period_s``: STATUS to each node, then the answers into the state until the next."""

    def __init__(self, wire: Wire, state: ClusterState, period_s: float = 0.05,
                 clock: Callable[[], float] = time.monotonic):
        self.wire, self.state, self.period_s, self.clock = wire, state, period_s, clock
        self.stopped = threading.Event()

    def round(self, deadline: Optional[float] = None) -> float:
        """One round, ending at ``deadline`` (default one period from now); returns the deadline."""
        if deadline is None:
            deadline = self.clock() + self.period_s
        for name in self.state.names:
            self.wire.send(name, "STATUS")
        while True:
            left = deadline - self.clock()
            if left <= 0:
                break
            self._receive(left)
        self.state.end_round(self.clock())
        return deadline

    def _receive(self, timeout: float) -> None:
        self.wire.skt.settimeout(timeout)
        try:
            data, src = self.wire.skt.recvfrom(raftkit.RECV_BUFSIZE)
        except (socket.timeout, BlockingIOError, ConnectionError):
            return
        name = self.wire.node_at(src)
        reply = raftkit.decode(data)
        status = parse_status(reply) if reply else None
        if name and status and reply.get("sender_name") == name:
            self.state.observe(name, status, self.clock())

    def run(self) -> None:
        """Rounds back to back on a fixed cadence (a late round does not shift the later ones)."""
        deadline = self.clock() + self.period_s
        while not self.stopped.is_set():
            end = self.round(deadline)
            deadline = max(end + self.period_s, self.clock())

    def resolve_forever(self, every_s: float = 1.0) -> None:
        while not self.stopped.is_set():
            self.wire.refresh()
            self.stopped.wait(every_s)


# ---- HTTP -----------------------------------------------------------------------------------------


def host_allowed(host_header: Optional[str], allowed: List[str]) -> bool:
    """A ``Host`` header naming an IP literal, ``localhost`` or an allowed name (no DNS
    rebinding: a page served under another name cannot reach the buttons)."""
    if not host_header:
        return False
    host = host_header.strip()
    if host.startswith("["):
        host = host[1:].partition("]")[0]
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    if host.lower() in ["localhost"] + [a.lower() for a in allowed]:
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class Dashboard:
    """The running parts: state, wire, poller threads, and what the HTTP handler needs."""

    def __init__(self, peers: List[Peer], period_s=0.05, stale_s=0.5, window_s=180.0,
                 allowed_hosts=(), wire: Optional[Wire] = None):
        self.state = ClusterState([p.name for p in peers], stale_s, window_s)
        self.wire = wire or Wire(peers)
        self.poller = Poller(self.wire, self.state, period_s)
        self.allowed_hosts = list(allowed_hosts)
        self.period_s = period_s
        self.streams = threading.BoundedSemaphore(MAX_STREAMS)
        with open(PAGE, "rb") as f:
            self.page = f.read()

    def start(self) -> None:
        self.wire.refresh()
        for target in (self.poller.run, self.poller.resolve_forever):
            threading.Thread(target=target, daemon=True).start()

    def stop(self) -> None:
        self.poller.stopped.set()

    def command(self, node: object, action: object) -> Tuple[int, str]:
        """A button press: (HTTP status, message). Only known nodes and actions are sent."""
        if node not in self.state.names:
            return 400, "unknown node"
        request = ACTIONS.get(action) if isinstance(action, str) else None
        if request is None:
            return 400, "unknown action"
        if not self.wire.send(node, request):
            return 503, "%s has no address" % node
        return 200, "sent %s to %s" % (request, node)


class Handler(BaseHTTPRequestHandler):
    server_version = "raft-dashboard"
    dash: Dashboard  # set on the subclass made by serve()

    def log_message(self, fmt, *args):  # one line per request would drown the node logs
        pass

    def do_GET(self):
        if not host_allowed(self.headers.get("Host"), self.dash.allowed_hosts):
            return self._reply(421, b"host not allowed\n", "text/plain")
        path = self.path.partition("?")[0]
        if path in ("/", "/index.html"):
            return self._reply(200, self.dash.page, "text/html; charset=utf-8")
        if path in ("/playground", "/playground.html"):
            return self._playground()
        if path == "/state":
            snap = self.dash.state.snapshot(time.monotonic())
            return self._reply(200, json.dumps(snap).encode(), "application/json")
        if path == "/events":
            return self._stream()
        return self._reply(404, b"not found\n", "text/plain")

    def do_POST(self):
        if not self._post_allowed():
            return self._reply(403, b"forbidden\n", "text/plain")
        if self.path != "/command":
            return self._reply(404, b"not found\n", "text/plain")
        try:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length)) if 0 < length <= MAX_BODY else None
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return self._reply(400, b"expected a JSON object\n", "text/plain")
        code, text = self.dash.command(body.get("node"), body.get("action"))
        return self._reply(code, json.dumps({"message": text}).encode(), "application/json")

    def _playground(self) -> None:
        try:
            with open(PLAYGROUND, "rb") as f:
                page = f.read()
        except OSError:
            return self._reply(404, b"no playground here (make playground UPDATE=1)\n", "text/plain")
        return self._reply(200, page, "text/html; charset=utf-8")

    def _post_allowed(self) -> bool:
        """Same-origin JSON only: a cross-site form cannot send ``application/json`` without a
        preflight we never answer, and a stated ``Origin`` must be this very host."""
        if not host_allowed(self.headers.get("Host"), self.dash.allowed_hosts):
            return False
        if self.headers.get_content_type() != "application/json":
            return False
        origin = self.headers.get("Origin")
        return origin is None or origin.partition("://")[2] == self.headers.get("Host")

    def _reply(self, code: int, body: bytes, ctype: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _stream(self) -> None:
        if not self.dash.streams.acquire(blocking=False):
            return self._reply(503, b"too many viewers\n", "text/plain")
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            seen = -1
            while not self.dash.poller.stopped.is_set():
                seen = self.dash.state.wait_round(seen, 1.0)
                snap = self.dash.state.snapshot(time.monotonic())
                self.wfile.write(b"data: " + json.dumps(snap).encode() + b"\n\n")
                self.wfile.flush()
        except (BrokenPipeError, ConnectionError):
            pass
        finally:
            self.dash.streams.release()


def serve(dash: Dashboard, addr: Tuple[str, int]) -> ThreadingHTTPServer:
    handler = type("BoundHandler", (Handler,), {"dash": dash})
    httpd = ThreadingHTTPServer(addr, handler)
    httpd.daemon_threads = True
    return httpd


# ---- command line -----------------------------------------------------------------------------


def _env_int(name: str, default: int) -> int:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    if not text.isdigit():
        sys.exit("dashboard: %s=%r is not a whole number" % (name, text))
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="A live dashboard of the Raft cluster.")
    p.add_argument("--peers", default=os.environ.get("PEERS", ""),
                   help="the nodes' PEERS list (default $PEERS, else Node1..Node$CLUSTER_SIZE)")
    p.add_argument("--addr", default=os.environ.get("DASHBOARD_ADDR", "127.0.0.1"),
                   help="HTTP address to listen on (default $DASHBOARD_ADDR or 127.0.0.1)")
    p.add_argument("--port", type=int, default=_env_int("DASHBOARD_PORT", 8080),
                   help="HTTP port (default $DASHBOARD_PORT or 8080)")
    p.add_argument("--poll-ms", type=int, default=_env_int("DASHBOARD_POLL_MS", 50),
                   help="STATUS polling period, ms (default 50: 20 updates a second)")
    p.add_argument("--stale-ms", type=int, default=_env_int("DASHBOARD_STALE_MS", 500),
                   help="a node silent this long is shown as no answer (default 500)")
    p.add_argument("--window-s", type=int, default=180, help="timeline length (default 180 s)")
    p.add_argument("--allow-host", action="append",
                   default=[h for h in os.environ.get("DASHBOARD_HOSTS", "").split(",") if h],
                   help="a host name the page may be opened under, besides IPs and localhost")
    return p


def peers_from(args) -> List[Peer]:
    if args.peers.strip():
        return raftkit.parse_peers(args.peers)
    return raftkit.default_peers(_env_int("CLUSTER_SIZE", 5))


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        peers = peers_from(args)
    except ValueError as e:
        parser.error(str(e))
    if not (10 <= args.poll_ms <= 1000 and args.stale_ms > args.poll_ms and args.window_s > 0):
        parser.error("need 10 <= --poll-ms <= 1000, --stale-ms above --poll-ms, --window-s above 0")
    dash = Dashboard(peers, args.poll_ms / 1000, args.stale_ms / 1000, args.window_s,
                     args.allow_host)
    try:
        httpd = serve(dash, (args.addr, args.port))
    except OSError as e:
        print("dashboard: cannot listen on %s:%d: %s" % (args.addr, args.port, e), file=sys.stderr)
        return 1
    dash.start()
    names = ",".join(p.name for p in peers)
    print("dashboard: http://%s:%d/ watching %s" % (args.addr, args.port, names),
          file=sys.stderr, flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        dash.stop()
        httpd.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
