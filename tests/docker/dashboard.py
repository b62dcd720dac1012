#!/usr/bin/env python3
"""The dashboard in a real browser against a real cluster, in a throwaway compose project.

    PYTHONPATH=Controller:tests/docker python3 tests/docker/dashboard.py   # after `make image`

Starts five nodes and the Controller, whose default command serves the dashboard (published on
a free port of the host's loopback), opens the page in headless Chromium through chromedriver,
and checks what a demonstrator sees: five cards and one leader; TIMEOUT on a
follower makes that card the leader within 2 s; SHUTDOWN of the leader (its card Stopped, another
leader) and Revive; `docker kill` of the leader shows "no answer" and another leader within 2 s;
the page loads nothing from elsewhere and the buttons reach only the node they are on.
Screenshots go to build/dashboard*.png (-stopped: a leader stopped by SHUTDOWN).

Skipped (exit 0) without a Docker daemon or without chromium and chromedriver (Debian:
`apt-get install chromium chromium-driver`), failing instead under CI=true. Prints the update
rate seen in the browser, the Controller's CPU and memory, and the kill-to-new-leader time.
"""
import json
import threading
import time
import urllib.request

import raftkit
from browser import Browser
from cluster import (ROOT, RESULTS, Cluster, Failure, check, expect, logs_are_safe, main_guard,
                     preflight, run, summary, unavailable)

SUITE = "dashboard tests"
SHOTS = ROOT / "build"
LIMIT_S = 2.0

CARDS_JS = """return [...document.querySelectorAll('.card')].map(c =>
  [c.dataset.node, c.dataset.role, c.dataset.reachable === 'true']);"""
# When each card last changed what it shows (epoch ms, the page's own clock: same machine).
SINCE_JS = """return Object.fromEntries([...document.querySelectorAll('.card')].map(c =>
  [c.dataset.node, Number(c.dataset.since)]));"""


def cards(b):
    """{node: (role, reachable)} as the page shows them."""
    return {n: (role, up) for n, role, up in b.js(CARDS_JS)}


def wait_page(b, pred, timeout, what):
    """Poll the page until pred(cards) holds; seconds it took (Failure after timeout)."""
    t0 = time.monotonic()
    while True:
        seen = cards(b)
        if pred(seen):
            return time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            raise Failure(f"{what}: not within {timeout:.1f} s; page shows {seen}")
        time.sleep(0.02)


def leaders(seen):
    return [n for n, (role, up) in seen.items() if up and role == "Leader"]


def node_requests(c, name, request):
    """How many `request` lines node `name` logged (controller requests are logged, rate-limited)."""
    lines = c.events([name])[name]
    return sum(1 for e in lines if e.get("event") == "request" and e.get("request") == request)


class Dash:
    """The dashboard as deployed: in the cluster's Controller container (`with_dashboard.py
    watch.py`), published on a free port of the host's loopback."""

    def __init__(self, c):
        container = c.container("Controller")
        published = run("docker", "port", container, "8080/tcp").stdout.split()[0]
        host, _, port = published.rpartition(":")
        expect(host == "127.0.0.1", f"the dashboard is published on {published}, not on loopback")
        self.url = f"http://127.0.0.1:{port}/"
        self.pid = int(run("docker", "inspect", "-f", "{{.State.Pid}}", container).stdout)
        deadline = time.monotonic() + 15
        while True:
            try:
                with urllib.request.urlopen(self.url + "state", timeout=2) as r:
                    json.load(r)
                break
            except (OSError, ValueError):
                expect(time.monotonic() < deadline, f"no dashboard at {self.url}")
                time.sleep(0.2)
        self.t0, self.cpu0 = time.monotonic(), raftkit.cpu_seconds(self.pid)

    def usage(self):
        """(CPU % of one core since the first page, resident memory in MiB) of the Controller's
        process (the dashboard and the watcher), from the host's /proc."""
        cpu = raftkit.cpu_seconds(self.pid) - self.cpu0
        return 100.0 * cpu / (time.monotonic() - self.t0), raftkit.memory_kib(self.pid)["VmRSS"] / 1024


# ---- scenarios --------------------------------------------------------------------------------
def five_cards_one_leader(c, b, d):
    leader, _, _ = c.wait_leader()
    b.get(d.url)
    secs = wait_page(b, lambda s: len(s) == 5 and all(up for _, up in s.values())
                     and leaders(s) == [leader], 10, "five reachable cards, one leader")
    print(f"   five cards, {leader} the one leader, {secs:.2f} s after the page opened")
    error = b.js("return document.body.dataset.error || null;")
    expect(error is None, f"the page's script failed: {error}")


def update_rate(c, b, d):
    time.sleep(2.5)
    rate = float(b.js("return document.body.dataset.rate || '0';"))
    print(f"   update rate seen in the browser: {rate:.1f} updates/s")
    expect(rate >= 10, f"only {rate:.1f} updates/s")


def timeout_a_follower(c, b, d):
    seen = cards(b)
    (leader,) = leaders(seen)
    follower = next(n for n in c.names if n != leader)
    before = {n: node_requests(c, n, "TIMEOUT") for n in c.names}
    b.js("document.addEventListener('click', () => { window.clickedAt = Date.now(); }, true);")
    t0 = time.monotonic()
    b.click(f'.card[data-node="{follower}"] button[data-action="TIMEOUT"]')
    wait_page(b, lambda s: leaders(s) == [follower], LIMIT_S, f"{follower} leads after TIMEOUT")
    secs = time.monotonic() - t0
    since = b.js(SINCE_JS)
    on_screen = (max(since[follower], since[leader]) - b.js("return window.clickedAt;")) / 1000
    print(f"   click TIMEOUT on {follower}: its card is the only leader {on_screen:.3f} s after the "
          f"click event ({secs:.2f} s by the WebDriver round trips)")
    expect(on_screen <= LIMIT_S, f"{on_screen:.2f} s from click to leader")
    time.sleep(0.3)  # the node's log line
    after = {n: node_requests(c, n, "TIMEOUT") for n in c.names}
    got = [n for n in c.names if after[n] != before[n]]
    expect(got == [follower], f"TIMEOUT reached {got}, not just {follower}")


def shown(b, node):
    """(badge, note, SHUTDOWN button disabled) of a card, as the page shows them."""
    return tuple(b.js(f"""const c = document.querySelector('.card[data-node="{node}"]');
      return [c.querySelector('.role').textContent, c.querySelector('.note').textContent,
              c.querySelector('button[data-action="SHUTDOWN"]').disabled];"""))


def shutdown_and_revive(c, b, d):
    """SHUTDOWN of the leader: its card says Stopped (its STATUS does; it answers nothing else),
    another card leads; Revive brings it back as a follower."""
    (leader,) = leaders(cards(b))
    b.click(f'.card[data-node="{leader}"] button[data-action="SHUTDOWN"]')
    wait_page(b, lambda s: s[leader] == ("Stopped", True) and len(leaders(s)) == 1, LIMIT_S + 1,
              f"{leader} Stopped and another leader")
    badge, note, no_shutdown = shown(b, leader)
    expect((badge, no_shutdown) == ("Stopped", True) and "SHUTDOWN" in note,
           f"the stopped card shows {badge!r}, {note!r}, SHUTDOWN disabled: {no_shutdown}")
    (new,) = leaders(cards(b))
    b.screenshot(str(SHOTS / "dashboard-stopped.png"))
    b.click(f'.card[data-node="{leader}"] button[data-action="REVIVE"]')
    wait_page(b, lambda s: s[leader] == ("Follower", True) and leaders(s) == [new], LIMIT_S,
              f"{leader} revived as a follower of {new}")
    print(f"   SHUTDOWN of the leader {leader}: card {badge!r} ({note!r}), {new} leads; "
          f"Revive (CONVERT_FOLLOWER): Follower again")


def kill_the_leader(c, b, d):
    (leader,) = leaders(cards(b))
    container = c.container(leader)
    t0 = time.monotonic()
    t_kill = time.time() * 1000
    killed = []
    kill = threading.Thread(target=lambda: killed.append(
        run("docker", "kill", container, check=False).returncode))
    kill.start()
    try:
        wait_page(b, lambda s: not s[leader][1] and len(leaders(s)) == 1, LIMIT_S + 3,
                  f"{leader} unreachable and another leader")
        secs = time.monotonic() - t0
    finally:
        kill.join()
    expect(killed == [0], f"docker kill {container} failed")
    badge, note, _ = shown(b, leader)
    expect(badge == "no answer" and note.startswith("no answer for "),
           f"the killed node's card shows {badge!r}, {note!r}")
    new = leaders(cards(b))[0]
    since = b.js(SINCE_JS)
    on_screen = (max(since[leader], since[new]) - t_kill) / 1000
    print(f"   docker kill {leader}: card 'no answer' and {new} the leader on screen {on_screen:.3f} s "
          f"after `docker kill` was started ({secs:.2f} s by the WebDriver round trips; new leader "
          f"at {(since[new] - t_kill) / 1000:.3f} s, "
          f"no answer at {(since[leader] - t_kill) / 1000:.3f} s)")
    b.screenshot(str(SHOTS / "dashboard.png"))
    print(f"   screenshot: {SHOTS / 'dashboard.png'}")
    gaps = b.js("return document.querySelectorAll('#timeline [data-gap]').length;")
    print(f"   timeline: {gaps} leaderless gap(s) marked")
    expect(on_screen <= LIMIT_S, f"{on_screen:.2f} s from docker kill to the new leader on screen")


def narrow_window(c, b, d):
    error = b.js("return document.body.dataset.error || null;")
    expect(error is None, f"the page's script failed: {error}")
    b._s("POST", "/window/rect", {"width": 420, "height": 1000})
    time.sleep(0.5)
    over = b.js("return document.documentElement.scrollWidth - window.innerWidth;")
    b.screenshot(str(SHOTS / "dashboard-narrow.png"))
    print(f"   420 px wide: {max(over, 0)} px of horizontal overflow; "
          f"screenshot {SHOTS / 'dashboard-narrow.png'}")
    expect(over <= 0, f"{over} px wider than a 420 px window")


def only_its_own_origin(c, b, d):
    urls = b.js("return [location.href, ...performance.getEntriesByType('resource').map(e => e.name)];")
    foreign = [u for u in urls if not u.startswith(d.url)]
    print(f"   the page fetched {len(urls)} URLs, all from {d.url}")
    expect(not foreign, f"the page fetched {foreign}")


def serves_the_playground(c, b, d):
    """GET /playground: the committed page, which elects a leader in its own simulated cluster."""
    with urllib.request.urlopen(d.url + "playground", timeout=5) as r:
        page = r.read()
    expect(page == (ROOT / "Controller" / "playground.html").read_bytes(),
           "the Controller serves another playground than Controller/playground.html")
    b.get(d.url + "playground")
    t0 = time.monotonic()
    while not b.js("const s = window.pg && window.pg.state();"
                   "return !!s && s.nodes.some(n => n.role === 'Leader');"):
        expect(time.monotonic() - t0 < 30, "no leader in the playground within 30 s")
        time.sleep(0.1)
    print(f"   /playground: {len(page)} bytes, a simulated leader after {time.monotonic() - t0:.1f} s")


def main():
    stop = preflight(SUITE)
    if stop is not None:
        return stop
    _, missing = Browser.find()
    if missing:
        return unavailable(SUITE, f"{missing} not installed (apt-get install chromium chromium-driver)")
    c = Cluster(5)
    print(f"== 5 nodes, compose project {c.id}", flush=True)
    b = None
    try:
        c.up()
        c.wait_leader()
        d = Dash(c)
        b = Browser(width=1600, height=1500)
        if check("five cards, one leader", five_cards_one_leader, c, b, d):
            for name, fn in [("update rate", update_rate), ("TIMEOUT on a follower", timeout_a_follower),
                             ("SHUTDOWN and Revive", shutdown_and_revive),
                             ("docker kill of the leader", kill_the_leader),
                             ("the page talks only to its server", only_its_own_origin),
                             ("narrow window", narrow_window),
                             ("the playground at /playground", serves_the_playground)]:
                check(name, fn, c, b, d)
        cpu, rss = d.usage()
        print(f"   the Controller's process (dashboard + watcher): {cpu:.1f} % of one core on "
              f"average while the page was open, {rss:.1f} MiB resident")
        check("the logs (one leader per term, terms never go down)", logs_are_safe, c)
    finally:
        if b:
            b.close()
        c.down()
    return summary() if RESULTS else 1


if __name__ == "__main__":
    main_guard(main, "cluster")
