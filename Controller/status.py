#!/usr/bin/env python3
"""Show which leader every node reports: ``python3 Controller/status.py [options]``.

Sends LEADER_INFO and STATUS to Node1..NodeN (``--nodes N``, default 5, each reached at its
own name) or to the nodes of a ``--peers`` list (the nodes' own PEERS format: comma-separated
``Name`` or ``Name=host:port``), all from one socket, collects the replies until
``--timeout`` and prints one row per node::

    NODE   ADDRESS          LEADER     TERM
    Node1  127.0.0.11:5555  Node3      4
    Node2  127.0.0.12:5555  stopped    3
    Node4  127.0.0.14:5555  no answer  -

A node stopped by SHUTDOWN answers no LEADER_INFO, only STATUS (``role=Stopped``): it is shown
as ``stopped``; a node that answers nothing as ``no answer``.

Exit status: 0 when every node that is not stopped answered and all name the same leader,
1 otherwise, 2 on bad arguments.
"""

import argparse
import sys
from collections import Counter
from typing import List, Optional, Sequence, Tuple

import raftkit
from controller import checked_arg, add_common_options
from raftkit import Answer

NO_ANSWER = "no answer"
NO_LEADER = "(none)"
STOPPED = "stopped"


def leader_of(answer: Answer) -> Optional[str]:
    """The leader an answer names, or ``None`` (no answer, or a null leader)."""
    return raftkit.leader_of(answer.reply)


def agreed_leader(answers: Sequence[Answer]) -> Optional[str]:
    """The leader every node that is not stopped names, or ``None`` unless all of those
    answered and agree on one."""
    return raftkit.agreed_leader({a.peer.name: a.reply for a in answers if not a.stopped})


def rows(answers: Sequence[Answer]) -> List[Tuple[str, str, str, str]]:
    """``(node, address, leader, term)`` strings for each answer."""
    out = []
    for a in answers:
        if a.stopped:
            leader, term = STOPPED, a.status.get("term")
        elif a.reply is None:
            leader, term = NO_ANSWER if a.error is None else "%s (%s)" % (NO_ANSWER, a.error), None
        else:
            leader, term = leader_of(a) or NO_LEADER, a.reply.get("term")
        out.append((a.peer.name, "%s:%d" % (a.peer.host, a.peer.port), leader,
                    "-" if term is None else str(term)))
    return out


def format_table(answers: Sequence[Answer]) -> str:
    """The answers as an aligned text table with a header row."""
    table = [("NODE", "ADDRESS", "LEADER", "TERM")] + rows(answers)
    widths = [max(len(row[i]) for row in table) for i in range(3)]
    return "\n".join("  ".join([cell.ljust(w) for cell, w in zip(row, widths)] + [row[3]]).rstrip()
                     for row in table)


def summary(answers: Sequence[Answer]) -> str:
    """One line: the agreed leader, or what stands in the way of agreement; then the nodes
    stopped by SHUTDOWN, if any."""
    stopped = [a.peer.name for a in answers if a.stopped]
    running = len(answers) - len(stopped)
    tail = "; stopped: %s" % ", ".join(stopped) if stopped else ""
    leader = agreed_leader(answers)
    if leader is not None:
        terms = [a.reply.get("term") for a in answers if a.peer.name == leader]
        term = " (term %s)" % terms[0] if terms and terms[0] is not None else ""
        return "leader: %s%s, agreed by all %d %s%s" % (
            leader, term, running, "running nodes" if stopped else "nodes", tail)
    answered = [a for a in answers if a.reply is not None]
    counts = Counter(leader_of(a) or NO_LEADER for a in answered)
    reported = ", ".join("%s x%d" % (name, n) for name, n in sorted(counts.items()))
    return "no agreement: %d/%d %s answered%s%s" % (
        len(answered), running, "running nodes" if stopped else "nodes",
        "; leaders reported: " + reported if reported else "", tail)


def _count_arg(text: str) -> int:
    count = checked_arg(int, text, "invalid node count %r")
    if count < 1:
        raise argparse.ArgumentTypeError("node count must be at least 1")
    return count


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for ``status.py``."""
    parser = argparse.ArgumentParser(
        description="Ask every node for LEADER_INFO (and STATUS) and show which leader each "
                    "reports; a node stopped by SHUTDOWN is shown as stopped.")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--nodes", type=_count_arg, default=5, metavar="N",
                       help="ask Node1..NodeN, each at its own name as host (default %(default)s)")
    which.add_argument("--peers", metavar="LIST", help="comma-separated 'Name' or "
                       "'Name=host:port' entries, as in the nodes' PEERS")
    add_common_options(parser)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        peers = raftkit.parse_peers(args.peers, args.port) if args.peers is not None \
            else raftkit.default_peers(args.nodes, args.port)
    except ValueError as e:
        parser.error("--peers: %s" % e)
    try:
        answers = raftkit.survey(peers, bind=args.bind, timeout=args.timeout)
    except raftkit.ControllerError as e:
        print("%s: %s" % (parser.prog, e), file=sys.stderr)
        return 1
    print(format_table(answers))
    print(summary(answers))
    return 0 if agreed_leader(answers) is not None else 1


if __name__ == "__main__":
    sys.exit(main())
