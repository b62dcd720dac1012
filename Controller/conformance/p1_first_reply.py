#!/usr/bin/env python3
"""Pattern 1: ask every node, take the first reply (also pattern 2's blocking read).

    python conformance/p1_first_reply.py                  the whole story, about 20 s
    python conformance/p1_first_reply.py --once [--not Node3]   one look (after docker kill/restart)
    python conformance/p1_first_reply.py --shutdowns 20   the leader told SHUTDOWN 20 times

Many course controllers bind one socket to ("Controller", 5555), send LEADER_INFO to Node1..Node5
one after another, read with a plain ``recvfrom(1024)`` (no timeout) and print the first reply's
``value`` as the leader. Each look here does exactly that, with a fresh socket as a script run
once per look has, and then checks the name it read: that node must say it leads, and most nodes
must name it too. The story: the cluster at start; CONVERT_FOLLOWER to the leader; TIMEOUT to a
follower; SHUTDOWN of the leader; SHUTDOWN of the next leader (3 of 5 left); both revived
(CONVERT_FOLLOWER); each step followed by the couple of seconds a grader waits.

``--once``: one look now, e.g. after ``docker kill`` of the leader (the killed node given with
``--not`` must not be named; its name may no longer resolve: sending to it fails, as it does for
every grader, and the look goes on). ``--shutdowns N``: N times, SHUTDOWN of the leader, a look,
then revival; prints in how many runs the first reply named the new leader.
"""
import json
import time

from courselib import (PAUSE_S, Hang, Verdict, agreed, blocking_recv, controller_socket, leads,
                       main, nodes, send, views)


def command(request, target):
    """A one-shot controller script: bind, send, close."""
    skt = controller_socket()
    try:
        send(skt, request, target)
    finally:
        skt.close()


def first_reply(v):
    """The pattern: LEADER_INFO to Node1..NodeN in turn from ("Controller", 5555), then one
    blocking recvfrom(1024). The reply as a dict, or None when none came."""
    skt = controller_socket()
    try:
        sent_at = {}
        for node in nodes():
            if send(skt, "LEADER_INFO", node):
                sent_at[node] = time.monotonic()
        try:
            data, _ = blocking_recv(skt)
        except Hang:
            return None
        try:
            reply = json.loads(data)
        except ValueError:
            reply = {"value": None, "sender_name": None, "raw": repr(data[:80])}
        asked = sent_at.get(reply.get("sender_name"))
        if asked is not None:
            v.reply_time(time.monotonic() - asked, "LEADER_INFO from %s" % reply["sender_name"])
        return reply
    finally:
        skt.close()


def look(v, step, forbid=(), want=None):
    """One look and its check; the leader read (or None)."""
    reply = first_reply(v)
    if reply is None:
        v.check(step, False, "no reply within 5 s: a blocking read would hang here")
        return None
    leader = reply.get("value")
    shape = sorted(reply) == ["key", "request", "sender_name", "term", "value"]
    seen = views()
    naming = sum(1 for lead, _ in seen.values() if lead == leader)
    itself = leader is not None and leads(leader)
    ok = (shape and itself and leader not in forbid and naming > len(nodes()) // 2
          and want in (None, leader))
    v.check(step, ok, "first reply from %s names %s (term %s); %s; %d of %d answering name it%s"
            % (reply.get("sender_name"), leader, reply.get("term"),
               "it says it leads" if itself else "it does not lead", naming, len(seen),
               "" if want is None else ", expected %s" % want))
    return leader


def story(v):
    start = agreed(seconds=30)
    v.check("the cluster agrees on a leader", start is not None, str(start))
    if start is None:
        return
    leader = look(v, "start")
    if leader is None:
        return
    command("CONVERT_FOLLOWER", leader)
    time.sleep(PAUSE_S)
    leader = look(v, "CONVERT_FOLLOWER to the leader %s" % leader)
    follower = next((n for n in nodes() if n != leader), None)
    command("TIMEOUT", follower)
    time.sleep(PAUSE_S)
    leader = look(v, "TIMEOUT to the follower %s" % follower, want=follower)
    if leader is None:
        return
    first = leader
    command("SHUTDOWN", first)
    time.sleep(PAUSE_S)
    second = look(v, "SHUTDOWN of the leader %s" % first, forbid={first})
    if second is None:
        return
    command("SHUTDOWN", second)
    time.sleep(PAUSE_S)
    third = look(v, "SHUTDOWN of the next leader %s (3 of 5 left)" % second,
                 forbid={first, second})
    for node in (first, second):
        command("CONVERT_FOLLOWER", node)
    time.sleep(PAUSE_S)
    look(v, "revival of %s and %s (CONVERT_FOLLOWER)" % (first, second), want=third)


def shutdowns(v, runs):
    named = 0
    for i in range(1, runs + 1):
        leader = agreed(seconds=15, ok=lambda lead: len(views()) == len(nodes()))
        if leader is None:
            v.check("run %d: all nodes agree before it" % i, False)
            break
        command("SHUTDOWN", leader)
        time.sleep(PAUSE_S)
        if look(v, "run %d: SHUTDOWN of the leader %s" % (i, leader), forbid={leader}):
            named += 1
        command("CONVERT_FOLLOWER", leader)
    print("the first reply after SHUTDOWN of the leader named the new leader in %d of %d runs"
          % (named, runs), flush=True)


def run(argv):
    v = Verdict("pattern 1: LEADER_INFO to every node, the first reply wins")
    if "--once" in argv:
        forbid = {argv[argv.index("--not") + 1]} if "--not" in argv else set()
        look(v, "one look" + (" (%s must not be named)" % ", ".join(forbid) if forbid else ""),
             forbid=forbid)
    elif "--shutdowns" in argv:
        shutdowns(v, int(argv[argv.index("--shutdowns") + 1]))
    else:
        story(v)
    return v.done()


if __name__ == "__main__":
    main(run)
