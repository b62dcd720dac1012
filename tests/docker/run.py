#!/usr/bin/env python3
"""Cluster scenarios against the real image, in throwaway compose projects.

    PYTHONPATH=Controller python3 tests/docker/run.py          # after `make image`; `make docker-test` does both

Without a Docker daemon it prints "docker tests skipped: no Docker daemon" and exits 0,
unless CI=true.  Waits are bounded polls (15 s); measured times are printed, not asserted,
except the 5 s bound on the first election.  Ends with "N passed, M failed".
"""
import json
import os
import shutil
import sys
import time

import raftkit
from cluster import IMAGE, PORT, check, expect, main_guard, preflight, run, summary, with_cluster


# ---- scenarios --------------------------------------------------------------------------------
def image_is_small():
    size = int(run("docker", "image", "inspect", "-f", "{{.Size}}", IMAGE).stdout)
    print(f"   {IMAGE}: {size} bytes ({size / 1024:.0f} KiB)")
    expect(size <= 1024 * 1024, f"image is {size} bytes, over 1 MiB")


# The course's controller, verbatim in spirit: bind (Controller, 5555), send LEADER_INFO to
# (NodeK, 5555), recvfrom(1024).  Run under `nsenter -n` in the Controller container's network
# namespace, so names are replaced by the container IPs.
COURSE_CONTROLLER = r"""
import json, socket, sys
me, nodes = sys.argv[1], json.loads(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((me, 5555))
s.settimeout(2)
out = {}
for name, ip in nodes.items():
    s.sendto(sys.argv[3].encode(), (ip, 5555))
    data, addr = s.recvfrom(1024)
    out[name] = [json.loads(data.decode()), list(addr)]
print(json.dumps(out))
"""


def course_controller(c):
    """(b) LEADER_INFO from inside the network, from Controller:5555, like the course's script."""
    leader, _, _ = c.wait_leader()
    ips = {n: c.ip(n) for n in c.names}
    if os.geteuid() == 0 and shutil.which("nsenter"):
        p = run("nsenter", "-t", str(c.pid("Controller")), "-n", sys.executable, "-c", COURSE_CONTROLLER,
                c.ip("Controller"), json.dumps(ips), raftkit.encode(raftkit.make_message("LEADER_INFO")).decode())
        got = json.loads(p.stdout)
        for n, (reply, addr) in got.items():
            expect(reply.get("sender_name") == n and reply.get("request") == "LEADER_INFO"
                   and reply.get("key") == "LEADER", f"{n} answered {reply}")
            expect(addr == [ips[n], PORT], f"{n} answered from {addr}, not {ips[n]}:{PORT}")
        values = {reply["value"] for reply, _ in got.values()}
        expect(values == {leader}, f"nodes disagree: {values}")
        print(f"   from {c.ip('Controller')}:{PORT} (nsenter): all {c.n} name {leader}")
    else:
        print("   nsenter needs root: only the docker exec variant runs")
    # The same through the Controller's own script, by DNS name, bound to port 5555 of the controller.
    for n in c.names:
        p = c.ctl("leader-info", n, "--bind", f"0.0.0.0:{PORT}")
        expect(leader in p.stdout, f"`python leader_info.py {n}` printed {p.stdout.strip()!r}")
    print(f"   docker exec Controller python leader_info.py NodeK --bind 0.0.0.0:{PORT}: all name {leader}")


def controller_verbs(c):
    """(c) CONVERT_FOLLOWER, TIMEOUT, SHUTDOWN and revival, sent by the controller container."""
    leader, _, _ = c.wait_leader()
    c.ctl("convert-follower", leader)
    again, secs, _ = c.wait_leader()
    print(f"   convert-follower {leader}: {again} leads after {secs:.2f} s")

    follower = next(n for n in c.names if n != again)
    c.ctl("timeout", follower)
    _, secs, _ = c.wait_leader(want=follower)
    print(f"   timeout {follower}: it leads after {secs:.2f} s")

    c.ctl("shutdown", follower)
    others = [n for n in c.names if n != follower]
    new, secs, _ = c.wait_leader(among=others)
    silent = c.ask([follower], wait=1.0)[follower]
    expect(silent is None, f"shut-down {follower} answered LEADER_INFO: {silent}")
    table = c.ctl("status", check=False).stdout
    row = next((ln.split() for ln in table.splitlines() if ln.startswith(follower + " ")), [])
    expect(row[2:3] == ["stopped"], f"status.py does not show {follower} stopped:\n{table}")
    print(f"   shutdown {follower}: {new} leads after {secs:.2f} s; {follower} answers no "
          f"LEADER_INFO, status.py shows it stopped")

    c.ctl("timeout", follower)
    final, secs, _ = c.wait_leader()
    print(f"   timeout {follower} (revival): all {c.n} agree on {final} after {secs:.2f} s")


def kill_and_restart(c):
    """(d) docker kill the leader's container; start it again: it rejoins with its term intact."""
    leader, _, replies = c.wait_leader()
    term = replies[leader]["term"]
    c.docker("kill", leader)
    others = [n for n in c.names if n != leader]
    new, secs, replies = c.wait_leader(among=others)
    print(f"   kill {leader} (term {term}): {new} leads in term {replies[new]['term']} after {secs:.2f} s")

    c.docker("start", leader)
    t0 = time.monotonic()
    first = None
    while first is None and time.monotonic() - t0 < 15:
        first = c.ask([leader])[leader]
        c._ips.clear()  # the address may only appear once the container is up
    expect(first is not None, f"restarted {leader} never answered")
    final, secs, replies = c.wait_leader()
    # The node's own start line tells what it loaded from /data, before any peer spoke to it.
    loaded = [e["term"] for e in c.events([leader])[leader] if e.get("event") == "start"][-1]
    print(f"   start {leader}: loaded term {loaded} from /data, first answer term {first['term']}, "
          f"all agree on {final} after {secs:.2f} s, its term now {replies[leader]['term']}")
    expect(loaded >= term, f"{leader} restarted with term {loaded} < {term}")
    expect(first["term"] >= term and replies[leader]["term"] >= term,
           f"{leader} answered term {first['term']} then {replies[leader]['term']}, below {term}")


def timed_out(events):
    """The lines of nodes whose election timer fired (a pre-vote or a vote campaign begun)."""
    return [(n, e) for n, es in events.items() for e in es
            if e.get("event") == "become" and e.get("reason") == "election-timeout"]


def docker_stop(c):
    """(f) docker stop of the leader (SIGTERM through the init process): it hands over before it
    exits, so the others agree on its successor without any election timer firing; started
    again, it follows."""
    leader, _, replies = c.wait_leader()
    term = replies[leader]["term"]
    since = time.time()
    c.docker("stop", leader)
    code = run("docker", "inspect", "-f", "{{.State.ExitCode}}", c.container(leader)).stdout.strip()
    others = [n for n in c.names if n != leader]
    new, secs, replies = c.wait_leader(among=others)
    said = [e for e in c.events([leader], since)[leader] if e.get("event") in ("handed-over", "exit")]
    print(f"   docker stop {leader} (term {term}): exit {code}; {new} leads in term "
          f"{replies[new]['term']}, agreed {secs:.2f} s after the stop returned; {leader} said "
          + "; ".join(f"{e['event']} " + " ".join(f"{k}={e[k]}" for k in ("to", "after_ms", "signal", "stop_ms")
                                                  if k in e)
                      for e in said))
    expect(code == "0", f"{leader} exited with status {code}")
    expect(any(e["event"] == "handed-over" and e.get("to") == new for e in said),
           f"{leader} did not say it handed over to {new}: {said}")
    fired = timed_out(c.events(others, since))
    expect(not fired, f"election timers fired: {fired[:3]}")
    c.docker("start", leader)
    c._ips.clear()
    final, secs, _ = c.wait_leader()
    print(f"   docker start {leader}: all {c.n} agree on {final} after {secs:.2f} s")


def partition(c):
    """(e) Disconnect the leader from the network; reconnect: exactly one leader again."""
    leader, _, replies = c.wait_leader()
    c.disconnect(leader)
    others = [n for n in c.names if n != leader]
    try:
        new, secs, _ = c.wait_leader(among=others)
        print(f"   disconnect {leader}: the other {len(others)} agree on {new} after {secs:.2f} s")
    finally:
        c.connect(leader)
    final, secs, replies = c.wait_leader()
    print(f"   reconnect {leader}: all {c.n} agree on {final} after {secs:.2f} s "
          f"(terms {sorted({r['term'] for r in replies.values()})})")


def main():
    stop = preflight("docker tests")
    if stop is not None:
        return stop

    check("image is at most 1 MiB", image_is_small)
    with_cluster(5, [("LEADER_INFO from Controller:5555", course_controller),
                     ("controller verbs", controller_verbs),
                     ("docker kill / start", kill_and_restart),
                     ("docker stop of the leader: handed over, no election timeout", docker_stop),
                     ("network disconnect / connect", partition)])
    with_cluster(7, [("LEADER_INFO from Controller:5555", course_controller)])

    return summary()


if __name__ == "__main__":
    main_guard(main)
