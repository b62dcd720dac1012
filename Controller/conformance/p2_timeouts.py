#!/usr/bin/env python3
"""Pattern 2: how course controllers wait for a reply.

    python conformance/p2_timeouts.py [--rounds 20]

Some controllers call ``settimeout(1.0)`` before ``recvfrom(1024)`` and give up after a second;
others read with no timeout at all, so a reply that never comes hangs them. Both ask one node
at a time from ("Controller", 5555). Checked: every node answers every LEADER_INFO within 1 s,
under both kinds of read, ``--rounds`` times each (the slowest reply is printed); a node stopped
by SHUTDOWN gives the one-second read a clean timeout (no reply, nothing else either), and once
revived (CONVERT_FOLLOWER) it answers a blocking read again.
"""
import json
import socket
import time

from courselib import (PAUSE_S, REPLY_LIMIT_S, Hang, Verdict, agreed, blocking_recv,
                       controller_socket, main, nodes, send)


def ask(v, skt, node, blocking):
    """LEADER_INFO to ``node``, then one read: (reply or None, seconds)."""
    if not send(skt, "LEADER_INFO", node):
        return None, 0.0
    t0 = time.monotonic()
    try:
        if blocking:
            data, _ = blocking_recv(skt)
        else:
            skt.settimeout(1.0)
            data, _ = skt.recvfrom(1024)
    except (socket.timeout, Hang):
        return None, time.monotonic() - t0
    took = time.monotonic() - t0
    reply = json.loads(data)
    v.reply_time(took, "LEADER_INFO from %s, %s read" % (node, "blocking" if blocking else "1 s"))
    return reply, took


def run(argv):
    rounds = int(argv[argv.index("--rounds") + 1]) if "--rounds" in argv else 20
    v = Verdict("pattern 2: settimeout(1.0), or a blocking read with no timeout")
    leader = agreed(seconds=30)
    v.check("the cluster agrees on a leader", leader is not None, str(leader))
    skt = controller_socket()
    try:
        for blocking in (False, True):
            kind = "blocking read" if blocking else "settimeout(1.0)"
            late, wrong, slowest = [], [], 0.0
            for _ in range(rounds):
                for node in nodes():
                    reply, took = ask(v, skt, node, blocking)
                    slowest = max(slowest, took)
                    if reply is None or took > REPLY_LIMIT_S:
                        late.append(node)
                    elif reply.get("sender_name") != node or reply.get("value") != leader:
                        wrong.append((node, reply.get("sender_name"), reply.get("value")))
            v.check("%s: %d LEADER_INFO, each answered by the node asked within 1 s"
                    % (kind, rounds * len(nodes())), not late and not wrong,
                    "slowest %.1f ms; late or missing: %s; wrong: %s"
                    % (slowest * 1000, late[:5], wrong[:5]))
        follower = next(n for n in nodes() if n != leader)
        send(skt, "SHUTDOWN", follower)
        time.sleep(PAUSE_S)
        reply, took = ask(v, skt, follower, blocking=False)
        v.check("settimeout(1.0) to %s, stopped by SHUTDOWN: a clean timeout" % follower,
                reply is None and took >= 0.9, "got %s after %.2f s" % (reply, took))
        send(skt, "CONVERT_FOLLOWER", follower)
        time.sleep(PAUSE_S)
        reply, took = ask(v, skt, follower, blocking=True)
        v.check("blocking read to %s once revived: it answers" % follower,
                reply is not None and reply.get("value") is not None and took <= REPLY_LIMIT_S,
                "%s after %.1f ms" % (reply and reply.get("value"), took * 1000))
    finally:
        skt.close()
    return v.done()


if __name__ == "__main__":
    main(run)
