#!/usr/bin/env python3
"""Pattern 6: nodes addressed by lowercase names, replies read with recvfrom(1024).

    python conformance/p6_names.py

Course controllers spell the targets both ways: ``("node3", 5555)`` as well as ``("Node3", 5555)``
(Docker's DNS matches names without regard to case; compose's service names are lowercase too).
Every reply must fit the 1024 bytes they read. Checked: LEADER_INFO to node1..nodeN and to
Node1..NodeN is answered by the node meant (its own ``sender_name``, from the address the name
resolves to), in one datagram of at most 1024 bytes; TIMEOUT to a follower by its lowercase
name makes it the leader.
"""
import json
import socket
import time

from courselib import (REPLY_LIMIT_S, Verdict, addr, agreed, controller_socket, main, nodes,
                       send)


def run(_argv):
    v = Verdict("pattern 6: lowercase names, recvfrom(1024)")
    leader = agreed(seconds=30)
    v.check("the cluster agrees on a leader", leader is not None, str(leader))
    skt = controller_socket()
    try:
        for spelling in (str.lower, str):
            for node in nodes():
                target = spelling(node)
                if not send(skt, "LEADER_INFO", target):
                    v.check("LEADER_INFO to %s" % target, False, "cannot send")
                    continue
                t0 = time.monotonic()
                skt.settimeout(REPLY_LIMIT_S)
                try:
                    data, src = skt.recvfrom(1024)
                except socket.timeout:
                    v.check("LEADER_INFO to %s" % target, False, "no reply within 1 s")
                    continue
                v.reply_time(time.monotonic() - t0, "LEADER_INFO to %s" % target)
                try:  # a reply longer than 1024 bytes would arrive cut, and not parse
                    reply = json.loads(data)
                except ValueError:
                    reply = {}
                where = socket.getaddrinfo(*addr(target), socket.AF_INET, socket.SOCK_DGRAM)
                v.check("LEADER_INFO to %s: %s answers, %d bytes" % (target, node, len(data)),
                        reply.get("sender_name") == node and reply.get("value") == leader
                        and src[:2] == where[0][4][:2],
                        "%s from %s" % (data.decode(errors="replace"), src))
        follower = next(n for n in nodes() if n != leader)
        send(skt, "TIMEOUT", follower.lower())
        now = agreed(seconds=3, ok=lambda lead: lead == follower)
        v.check("TIMEOUT to %s: %s leads" % (follower.lower(), follower), now == follower,
                "all agree on %s" % now)
    finally:
        skt.close()
    return v.done()


if __name__ == "__main__":
    main(run)
