#!/usr/bin/env python3
"""Nothing reaches the Controller's address unasked.

    python conformance/p8_unasked.py [--seconds 10]

Some course controllers take the first datagram that arrives on their socket as the reply to
their question, so a node must never send anything to ("Controller", 5555) but the replies to
what was asked from there. For ``--seconds`` the socket bound there keeps reading everything that
arrives while it drives the cluster through elections: TIMEOUT to followers, CONVERT_FOLLOWER to
leaders, SHUTDOWN of a leader and its revival, and LEADER_INFO questions in between, each
counted per node. Checked: every datagram that arrived is a LEADER_INFO reply from a node asked,
and no node answered more often than it was asked.
"""
import json
import socket
import time
from collections import Counter

from courselib import Verdict, agreed, controller_socket, main, nodes, send, views


def run(argv):
    seconds = float(argv[argv.index("--seconds") + 1]) if "--seconds" in argv else 10.0
    v = Verdict("nothing is sent to the Controller's address unasked")
    leader = agreed(seconds=30)
    v.check("the cluster agrees on a leader", leader is not None, str(leader))
    skt = controller_socket()
    asked, answered, unasked = Counter(), Counter(), []
    steps = ["TIMEOUT", "CONVERT_FOLLOWER", "SHUTDOWN", "REVIVE"]
    stopped, elections = None, 0
    try:
        end = time.monotonic() + seconds
        step_at = time.monotonic()
        k = 0
        while time.monotonic() < end:
            if time.monotonic() >= step_at:
                now = {val[0] for val in views().values()} - {None}
                leader = next(iter(now)) if len(now) == 1 else leader
                kind = steps[k % len(steps)]
                if kind == "TIMEOUT":
                    send(skt, "TIMEOUT", next(n for n in nodes() if n not in (leader, stopped)))
                elif kind == "CONVERT_FOLLOWER" or kind == "SHUTDOWN":
                    send(skt, kind, leader)
                    stopped = leader if kind == "SHUTDOWN" else stopped
                elif stopped:
                    send(skt, "CONVERT_FOLLOWER", stopped)
                    stopped = None
                elections += kind != "REVIVE"
                k += 1
                step_at = time.monotonic() + 0.7
            node = nodes()[k % len(nodes())]
            if node != stopped and send(skt, "LEADER_INFO", node):
                asked[node] += 1
            stop = time.monotonic() + 0.1
            while time.monotonic() < stop:
                skt.settimeout(max(stop - time.monotonic(), 0.001))
                try:
                    data, src = skt.recvfrom(1024)
                except socket.timeout:
                    continue
                try:
                    msg = json.loads(data)
                except ValueError:
                    msg = {"raw": repr(data[:60])}
                name = msg.get("sender_name")
                if msg.get("request") == "LEADER_INFO" and msg.get("key") == "LEADER" and name:
                    answered[name] += 1
                else:
                    unasked.append((src, msg))
        if stopped:
            send(skt, "CONVERT_FOLLOWER", stopped)
        skt.settimeout(0.5)
        try:
            while True:
                data, src = skt.recvfrom(1024)
                msg = json.loads(data)
                if msg.get("request") == "LEADER_INFO" and msg.get("key") == "LEADER":
                    answered[msg.get("sender_name")] += 1
                else:
                    unasked.append((src, msg))
        except socket.timeout:
            pass
    finally:
        skt.close()
    extra = {n: answered[n] - asked[n] for n in answered if answered[n] > asked[n]}
    v.check("%.0f s, %d requests that start elections, %d questions: only their answers arrived"
            % (seconds, elections, sum(asked.values())), not unasked and not extra,
            "unasked: %s; answered more often than asked: %s" % (unasked[:3], extra))
    v.check("the cluster agrees again afterwards", agreed(seconds=15) is not None)
    return v.done()


if __name__ == "__main__":
    main(run)
