#!/usr/bin/env python3
"""Pattern 5: the shapes course controllers give their messages.

    python conformance/p5_shapes.py

Seen in course controllers: ``sender_name`` as Controller, controller, CONTROLLER, 127.0.0.1 or
a node's name; ``term`` as null, "null", "NULL", an integer or missing; ``key``/``value`` as "",
strings or integers; extra fields (ten more null fields, capitalised Key/Value, an ``entries``
object or list); the null fields left out altogether (a Gson-serialised client sends only
``sender_name`` and ``request``); pretty-printed JSON with CRLF line ends. Checked: LEADER_INFO in
every shape is answered by every node within 1 s, with the five fields, an integer term and the
leader; TIMEOUT, CONVERT_FOLLOWER and SHUTDOWN in the odd shapes are obeyed.
"""
import json
import socket
import time

from courselib import (REPLY_LIMIT_S, Verdict, addr, agreed, controller_socket, main, message,
                       nodes, views)


def shaped(request, sender="Controller", drop=(), pretty=False, **fields):
    msg = message(request, sender)
    msg.update(fields)
    for name in drop:
        msg.pop(name, None)
    if pretty:
        return json.dumps(msg, indent=4).replace("\n", "\r\n").encode("utf-8")
    return json.dumps(msg).encode("utf-8")


def shapes(request):
    """(what, datagram) for every shape of ``request``."""
    extra = {"extra%d" % i: None for i in range(10)}
    return [
        ("sender_name Controller", shaped(request)),
        ("sender_name controller", shaped(request, "controller")),
        ("sender_name CONTROLLER", shaped(request, "CONTROLLER")),
        ("sender_name 127.0.0.1", shaped(request, "127.0.0.1")),
        ("sender_name Node2", shaped(request, "Node2")),
        ("term null", shaped(request, term=None)),
        ('term "null"', shaped(request, term="null")),
        ('term "NULL"', shaped(request, term="NULL")),
        ("term 7", shaped(request, term=7)),
        ("no term", shaped(request, drop=["term"])),
        ('key and value ""', shaped(request, key="", value="")),
        ("key and value strings", shaped(request, key="k", value="v")),
        ("key and value integers", shaped(request, key=1, value=2)),
        ("ten extra null fields", shaped(request, **extra)),
        ("capitalised Key and Value", shaped(request, Key="K", Value="V")),
        ("entries object", shaped(request, entries={"a": [1, {"b": None}]})),
        ("entries list", shaped(request, entries=[{"term": 1}, None])),
        ("only sender_name and request", shaped(request, drop=["term", "key", "value"])),
        ("pretty-printed, CRLF", shaped(request, pretty=True)),
    ]


def read_all(skt, seconds):
    got, end = [], time.monotonic() + seconds
    while time.monotonic() < end:
        skt.settimeout(max(end - time.monotonic(), 0.01))
        try:
            got.append(skt.recvfrom(1024))
        except socket.timeout:
            pass
    return got


def run(_argv):
    v = Verdict("pattern 5: message shapes")
    leader = agreed(seconds=30)
    v.check("the cluster agrees on a leader", leader is not None, str(leader))
    skt = controller_socket()
    try:
        for what, data in shapes("LEADER_INFO"):
            sent = {}
            for node in nodes():
                skt.sendto(data, addr(node))
                sent[node] = time.monotonic()
            got, bad = {}, []
            end = time.monotonic() + REPLY_LIMIT_S
            while len(got) < len(nodes()) and time.monotonic() < end:
                skt.settimeout(max(end - time.monotonic(), 0.01))
                try:
                    raw, _ = skt.recvfrom(1024)
                except socket.timeout:
                    continue
                reply = json.loads(raw)
                node = reply.get("sender_name")
                if node in sent:
                    v.reply_time(time.monotonic() - sent[node], "LEADER_INFO (%s) from %s"
                                 % (what, node))
                    got[node] = reply
                ok = (sorted(reply) == ["key", "request", "sender_name", "term", "value"]
                      and isinstance(reply.get("term"), int) and reply.get("key") == "LEADER"
                      and reply.get("value") == leader)
                if not ok:
                    bad.append(reply)
            v.check("LEADER_INFO, %s: all %d nodes answer" % (what, len(nodes())),
                    len(got) == len(nodes()) and not bad,
                    "%d answered; odd replies: %s" % (len(got), bad[:2]))

        timeouts = [s for s in shapes("TIMEOUT") if s[0] in (
            "sender_name 127.0.0.1", 'term "NULL"', "key and value integers", "entries list",
            "only sender_name and request", "pretty-printed, CRLF")]
        for what, data in timeouts:
            follower = next(n for n in nodes() if n != leader)
            skt.sendto(data, addr(follower))
            now = agreed(seconds=3, ok=lambda lead, f=follower: lead == f)
            v.check("TIMEOUT, %s, to %s: it leads" % (what, follower), now == follower,
                    "all agree on %s" % now)
            leader = now or agreed(seconds=10)

        skt.sendto(shaped("CONVERT_FOLLOWER", drop=["term", "key", "value"]), addr(leader))
        now = agreed(seconds=3, ok=lambda lead: lead != leader)
        v.check("CONVERT_FOLLOWER, only sender_name and request, to the leader %s: another "
                "node leads" % leader, now is not None, "all agree on %s" % now)
        leader = now or agreed(seconds=10)

        follower = next(n for n in nodes() if n != leader)
        skt.sendto(shaped("SHUTDOWN", "controller", pretty=True, entries=[]), addr(follower))
        time.sleep(0.5)
        silent = follower not in views(wait=1.0)
        skt.sendto(shaped("CONVERT_FOLLOWER", "CONTROLLER", term="NULL"), addr(follower))
        back = agreed(seconds=5, ok=lambda lead: len(views()) == len(nodes()))
        v.check("SHUTDOWN, pretty-printed, to %s: it stops; CONVERT_FOLLOWER with term "
                '"NULL" revives it' % follower, silent and back is not None,
                "silent while stopped: %s; all %d agree after: %s" % (silent, len(nodes()), back))
        stray = read_all(skt, 0.3)
        v.check("no reply to any TIMEOUT, CONVERT_FOLLOWER or SHUTDOWN", not stray, str(stray[:2]))
    finally:
        skt.close()
    return v.done()


if __name__ == "__main__":
    main(run)
