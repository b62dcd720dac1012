#!/usr/bin/env python3
"""Pattern 3: the LEADER_INFO reply sent straight back as a CONVERT_FOLLOWER.

    python conformance/p3_echo_reply.py

Some course controllers ask a node LEADER_INFO and reuse the reply as their next message: only
``request`` is changed to CONVERT_FOLLOWER, so ``sender_name`` is a node's name, ``term`` an
integer, ``key`` "LEADER" and ``value`` the leader; they send it to the node named in ``value``.
Checked: the leader obeys it as the controller request it is (another node leads within the
couple of seconds a grader waits, and all agree); the same echo sent to a follower changes
nothing; nothing comes back to the Controller's socket for either.
"""
import json
import socket
import time

from courselib import (PAUSE_S, Verdict, addr, agreed, controller_socket, main, nodes, send,
                       views)


def run(_argv):
    v = Verdict("pattern 3: the reply echoed back as CONVERT_FOLLOWER")
    leader = agreed(seconds=30)
    v.check("the cluster agrees on a leader", leader is not None, str(leader))
    if leader is None:
        return v.done()
    skt = controller_socket()
    try:
        asked = next(n for n in nodes() if n != leader)
        send(skt, "LEADER_INFO", asked)
        skt.settimeout(1.0)
        data, _ = skt.recvfrom(1024)
        reply = json.loads(data)
        v.check("LEADER_INFO to %s names the leader" % asked, reply.get("value") == leader,
                json.dumps(reply))
        echo = dict(reply, request="CONVERT_FOLLOWER")
        term = reply.get("term")

        follower = next(n for n in nodes() if n not in (leader, asked))
        skt.sendto(json.dumps(echo).encode("utf-8"), addr(follower))
        time.sleep(PAUSE_S)
        same = views()
        v.check("the echo sent to the follower %s changes nothing" % follower,
                set(same.values()) == {(leader, term)} and len(same) == len(nodes()),
                "views: %s" % same)

        skt.sendto(json.dumps(echo).encode("utf-8"), addr(reply["value"]))
        time.sleep(PAUSE_S)
        new = agreed(seconds=5, ok=lambda lead: lead != leader)
        v.check("the echo sent to the leader %s hands leadership over" % leader,
                new is not None, "all agree on %s (was %s)" % (new, leader))
        skt.settimeout(0.5)
        try:
            stray = skt.recvfrom(1024)
        except socket.timeout:
            stray = None
        v.check("nothing came back to the Controller's socket for the echoes", stray is None,
                str(stray))
    finally:
        skt.close()
    return v.done()


if __name__ == "__main__":
    main(run)
