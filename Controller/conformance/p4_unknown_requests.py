#!/usr/bin/env python3
"""Pattern 4: requests the nodes do not implement.

    python conformance/p4_unknown_requests.py

Course controllers written for other phases of the project send requests this cluster does not
know: RESTART, START_NODE, ALL_INFO, GETLOG, PRINT_LOGS, STORE, RETRIEVE, "view log". Each is
sent to every node from ("Controller", 5555), filled into Message.json as usual (STORE with a
key and a value), one a second. Checked: no reply to any of them, every node still answers
LEADER_INFO, and the leader and its term are unchanged. (Each node also logs each one, as
``reason=unknown-request detail=RESTART``: the Docker and loopback runners read the logs.)
"""
import json
import socket
import time

from courselib import Verdict, addr, agreed, controller_socket, main, message, nodes, views

UNKNOWN = ["RESTART", "START_NODE", "ALL_INFO", "GETLOG", "PRINT_LOGS", "STORE", "RETRIEVE",
           "view log"]


def run(_argv):
    v = Verdict("pattern 4: requests the nodes do not implement")
    leader = agreed(seconds=30)
    before = views()
    v.check("the cluster agrees on a leader", leader is not None, "%s: %s" % (leader, before))
    skt = controller_socket()
    try:
        for request in UNKNOWN:
            msg = message(request)
            if request == "STORE":
                msg["key"], msg["value"] = "x", "1"
            for node in nodes():
                skt.sendto(json.dumps(msg).encode("utf-8"), addr(node))
            # A second between requests: a node logs one drop line a second per reason.
            got, end = [], time.monotonic() + 1.05
            while time.monotonic() < end:
                skt.settimeout(max(end - time.monotonic(), 0.01))
                try:
                    got.append(skt.recvfrom(1024))
                except socket.timeout:
                    pass
            v.check("%s to each of %d nodes: no reply within 1 s" % (request, len(nodes())),
                    not got, "%d replies, e.g. %s" % (len(got), got[:2]))
    finally:
        skt.close()
    after = views(wait=1.0)
    v.check("every node still answers LEADER_INFO", len(after) == len(nodes()), str(after))
    v.check("the leader and its term are unchanged", after == before,
            "before %s; after %s" % (before, after))
    return v.done()


if __name__ == "__main__":
    main(run)
