#!/usr/bin/env python3
"""Send one controller request to a Raft node: the command line over raftkit.

    python3 Controller/controller.py leader_info Node1 [--host 127.0.0.11]
    python3 Controller/controller.py CONVERT_FOLLOWER Node2 --bind Controller:5555

LEADER_INFO prints the node's reply as one JSON line; CONVERT_FOLLOWER, TIMEOUT and SHUTDOWN
have no reply. Exit status: 0 on success, 1 when no reply came in time or the network failed,
2 on bad arguments. The library (make_message, send, leader_info, query_all, ...) lives in
raftkit and is re-exported here under the same names; this file only parses and prints.
"""

import argparse
import json
import math
import sys
from typing import List, Optional

from raftkit import (  # noqa: F401  (re-exported: scripts import them from here)
    DEFAULT_TIMEOUT, FIELDS, PORT, REPLYING, REQUESTS, SENDER, TEMPLATE_PATH, Answer,
    ControllerError, Peer, decode, default_peers, encode, leader_info, load_template,
    make_message, normalize_request, parse_hostport, parse_peers, parse_port, query_all, send)


def checked_arg(parse, text, message=None):
    """``parse(text)`` for argparse: a ``ValueError`` becomes a usage error (``message % text``)."""
    try:
        return parse(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(message % text if message else str(e)) from None


def _timeout_arg(text: str) -> float:
    seconds = checked_arg(float, text, "invalid timeout %r")
    if not (seconds > 0 and math.isfinite(seconds)):
        raise argparse.ArgumentTypeError("timeout must be a positive number of seconds")
    return seconds


def _term_arg(text: str) -> int:
    term = checked_arg(int, text, "invalid term %r")
    if term < 0:
        raise argparse.ArgumentTypeError("term must not be negative")
    return term


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """``--port``, ``--bind`` and ``--timeout`` (shared by every script)."""
    parser.add_argument("--port", type=lambda t: checked_arg(parse_port, t), default=PORT,
                        help="node UDP port (default %(default)s)")
    parser.add_argument("--bind", type=lambda t: checked_arg(parse_hostport, t), default=("", 0),
                        metavar="HOST:PORT",
                        help="local address to send from (default: an ephemeral port on all "
                        "interfaces; 'Controller:5555' behaves exactly like the reference controller)")
    parser.add_argument("--timeout", type=_timeout_arg, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                        help="how long to wait for a reply (default %(default)s)")


def build_parser(request: Optional[str] = None, prog: Optional[str] = None):
    """The argument parser; without ``request`` the first argument names the request."""
    parser = argparse.ArgumentParser(prog=prog, description="Send %s to a Raft node."
                                     % (request or "one controller request"))
    if request is None:
        parser.add_argument("request", metavar="REQUEST",
                            help="one of %s (case-insensitive, '-' or '_' here; sent as the exact constant)"
                                 % ", ".join(REQUESTS))
    parser.add_argument("node", metavar="NODE",
                        help="node name, e.g. Node1; also its host unless --host is given")
    parser.add_argument("--host", help="host or IP to send to (default: the node name)")
    add_common_options(parser)
    parser.add_argument("--term", type=_term_arg, help="set the message's term")
    parser.add_argument("--key", help="set the message's key")
    parser.add_argument("--value", help="set the message's value")
    return parser


def main(argv: Optional[List[str]] = None, request: Optional[str] = None) -> int:
    """Run the command line; the exit status. With ``request`` (the per-request scripts), only
    ``NODE`` and options are read."""
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
    host, expect_reply = args.host or args.node, request in REPLYING
    try:
        reply = send(request, args.node, port=args.port, host=host, bind=args.bind,
                     timeout=args.timeout, expect_reply=expect_reply, term=args.term,
                     key=args.key, value=args.value)
    except ControllerError as e:
        print("%s: %s" % (parser.prog, e), file=sys.stderr)
        return 1
    where = "%s (%s:%d)" % (args.node, host, args.port)
    if not expect_reply:
        print("sent %s to %s" % (request, where), file=sys.stderr)
        return 0
    if reply is None:
        print("%s: no %s reply from %s within %g s" % (parser.prog, request, where, args.timeout),
              file=sys.stderr)
        return 1
    print(json.dumps(reply))
    return 0


if __name__ == "__main__":
    sys.exit(main())
