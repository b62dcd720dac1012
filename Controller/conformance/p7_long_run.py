#!/usr/bin/env python3
"""Pattern 7: a long scripted run, each request to the leader learnt from the last reply.

    python conformance/p7_long_run.py [--scale 0.1]

One socket bound to ("Controller", 5555) for the whole run, about 65 s: LEADER_INFO (each node in
turn, one second each, until one names a leader), CONVERT_FOLLOWER to that leader; 20 s later
TIMEOUT to the leader learnt then; 15 s later SHUTDOWN to the leader learnt then; 15 s later every
node's view: the running ones agree on one leader, the stopped one is silent; then it is revived
(CONVERT_FOLLOWER) and 15 s later all views are the same. ``--scale`` shortens every wait (0.1:
about 8 s) for quick runs.
Every datagram the socket reads must answer the question just asked.
"""
import json
import socket
import time

from courselib import Verdict, main, nodes, send, controller_socket, views


class Grader:
    def __init__(self, v):
        self.v, self.skt, self.stray = v, controller_socket(), []

    def ask(self, node):
        """LEADER_INFO to one node, settimeout(1.0): (leader, term) or None."""
        if not send(self.skt, "LEADER_INFO", node):
            return None
        t0 = time.monotonic()
        self.skt.settimeout(1.0)
        try:
            data, _ = self.skt.recvfrom(1024)
        except socket.timeout:
            return None
        reply = json.loads(data)
        if reply.get("sender_name") != node:
            self.stray.append(reply)
            return None
        self.v.reply_time(time.monotonic() - t0, "LEADER_INFO from %s" % node)
        return reply.get("value"), reply.get("term")

    def leader(self):
        """The first leader named, asking Node1, Node2, ... in turn: (leader, term)."""
        for node in nodes():
            got = self.ask(node)
            if got and got[0]:
                return got
        return None, None


def run(argv):
    scale = float(argv[argv.index("--scale") + 1]) if "--scale" in argv else 1.0
    v = Verdict("pattern 7: a long run (x%.2g), each request to the leader just learnt" % scale)
    g = Grader(v)
    try:
        first, term0 = g.leader()
        v.check("t=0: LEADER_INFO names a leader", first is not None, "%s, term %s" % (first, term0))
        if first is None:
            return v.done()
        send(g.skt, "CONVERT_FOLLOWER", first)
        time.sleep(20 * scale)
        second, term1 = g.leader()
        v.check("t=20 s: after CONVERT_FOLLOWER another node leads", second not in (None, first),
                "%s, term %s" % (second, term1))
        send(g.skt, "TIMEOUT", second)
        time.sleep(15 * scale)
        third, term2 = g.leader()
        v.check("t=35 s: after TIMEOUT to the leader a new term has a leader",
                third is not None and term2 > term1, "%s, term %s" % (third, term2))
        send(g.skt, "SHUTDOWN", third)
        time.sleep(15 * scale)
        fourth, term3 = g.leader()
        running = [n for n in nodes() if n != third]
        seen = {n: g.ask(n) for n in nodes()}
        v.check("t=50 s: after SHUTDOWN of %s the %d others agree on one leader" % (third,
                len(running)), fourth not in (None, third)
                and all(seen[n] == (fourth, term3) for n in running),
                "views %s" % seen)
        v.check("the stopped %s is silent" % third, seen[third] is None, str(seen[third]))
        send(g.skt, "CONVERT_FOLLOWER", third)
        time.sleep(15 * scale)
        end = time.monotonic() + 10
        while len(set(views().values())) != 1 or len(views()) != len(nodes()):
            if time.monotonic() > end:
                break
            time.sleep(0.1)
        final = {n: g.ask(n) for n in nodes()}
        v.check("t=65 s: %s revived; all %d views the same" % (third, len(nodes())),
                len(set(final.values())) == 1 and None not in final.values(), str(final))
        v.check("every datagram read answered the question just asked", not g.stray,
                str(g.stray[:3]))
    finally:
        g.skt.close()
    return v.done()


if __name__ == "__main__":
    main(run)
