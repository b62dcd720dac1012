#!/usr/bin/env python3
"""The playground page in headless Chromium, opened from file://: ``make playground-test``.

    PYTHONPATH=Controller:tests/docker python3 tests/playground.py   # after make playground

Checks what a learner sees and what the page promises: the committed copy
(Controller/playground.html) is the page a fresh build makes; the page loads nothing from
elsewhere and elects a leader; crashing the leader gives a new leader in a higher term;
isolating a follower and healing it leaves every term as it was (PreVote), while without PreVote
the follower's term climbs; every scenario file of tests/sim/testdata steps to its end, through
the page's own controls for one of them, with exactly the file's text; an exported session
replays natively to the same file; for a set of seeds the wasm build and the native build write
byte-identical traces. Prints the page and module sizes and the events per second the page
sustains; screenshots go to build/playground/*.png.

Skipped when the page was not built (the wasm target missing) or chromium and chromedriver are
missing, failing instead under CI=true.
"""
import hashlib
import importlib.util
import sys
import subprocess
import time

from browser import Browser
from cluster import RESULTS, ROOT, Failure, check, expect, main_guard, summary, unavailable

SUITE = "playground tests"
OUT = ROOT / "build" / "playground"
PAGE = OUT / "playground.html"
COMMITTED = ROOT / "Controller" / "playground.html"
TESTDATA = ROOT / "tests" / "sim" / "testdata"
NATIVE = ROOT / "target" / "release" / "examples" / "native"
SEEDS = range(0, 120)
WAIT_S = 30.0


def load_build_module():
    """playground/build.py, for unpack()."""
    spec = importlib.util.spec_from_file_location("pg_build", ROOT / "playground" / "build.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def state(b):
    return b.js("return window.pg.state();")


def wait_state(b, pred, what, timeout=WAIT_S):
    """Polls the page's state until pred(state) holds; Failure with what it showed otherwise."""
    t0 = time.monotonic()
    while True:
        st = state(b)
        if st and pred(st):
            return st
        if time.monotonic() - t0 > timeout:
            brief = [(n["id"], n["role"], n["term"]) for n in (st or {}).get("nodes", [])]
            raise Failure(f"{what}: not within {timeout:.0f} s; the page shows t={st and st['now']} {brief}")
        time.sleep(0.05)


def leader(st):
    """(id, term) of the running leader with the highest term, or None."""
    lead = [(n["term"], n["id"]) for n in st["nodes"] if n["role"] == "Leader"]
    return (max(lead)[1], max(lead)[0]) if lead else None


def fresh(b, args="5 seed=1"):
    """A new world at 10x, playing."""
    b.js(f"window.pg.play(false); window.pg.call('world {args}'); window.pg.setSpeed(10);"
         "window.pg.play(true);")


def shot(b, name):
    path = OUT / name
    b.screenshot(str(path))
    print(f"   screenshot {path.relative_to(ROOT)}")


# ---- the checks ---------------------------------------------------------------------------


def committed_equals_fresh(b):
    build = load_build_module()
    fresh_page, committed = PAGE.read_text(encoding="utf-8"), COMMITTED.read_text(encoding="utf-8")
    wasm, scenarios, rest = build.unpack(fresh_page)
    c_wasm, c_scenarios, c_rest = build.unpack(committed)
    print(f"   page {len(fresh_page.encode())} bytes, wasm module {len(wasm)} bytes "
          f"({len(fresh_page.encode()) - len(rest.encode())} bytes embedded)")
    expect(len(committed.encode()) <= build.COMMIT_LIMIT, f"the page is over {build.COMMIT_LIMIT} bytes")
    redo = "rebuild it: make playground UPDATE=1, and commit Controller/playground.html"
    expect(c_rest == rest, f"the committed page's HTML and script differ from page.html: {redo}")
    expect(c_scenarios == scenarios, f"the committed page's scenario files are not testdata's: {redo}")
    if c_wasm != wasm:
        built_by = committed.splitlines()[1]
        here = subprocess.run(["rustc", "--version"], capture_output=True, text=True, check=False).stdout.strip()
        raise Failure(f"the committed wasm module differs from a fresh build ({built_by}; here {here}): {redo}")


def loads_and_elects(b):
    b.get(PAGE.as_uri())
    wait_state(b, lambda st: st["mode"] == "world", "the page starts a cluster", 15)
    err = b.js("return document.body.dataset.error || null;")
    expect(err is None, f"the page reports {err}")
    campaigning = ("PreCandidate", "Candidate")
    st = wait_state(b, lambda st: any(n["role"] in campaigning for n in st["nodes"])
                    and len(st["flight"]) >= 3, "a campaign with its messages in flight")
    b.js("window.pg.play(false);")
    who = next(n["id"] for n in st["nodes"] if n["role"] in campaigning)
    b.click(f'.card[data-node="{who}"]')  # the why panel: the timeout that started it
    shot(b, "01-election.png")
    b.js("window.pg.play(true);")
    st = wait_state(b, lambda st: leader(st) is not None, "a leader appears")
    lead = leader(st)
    print(f"   n{lead[0]} leads term {lead[1]} at t={st['now']} ms (speed 0.2x)")
    urls = b.js("return [location.href, ...performance.getEntriesByType('resource').map(e => e.name)];")
    foreign = [u for u in urls if not u.startswith("file://") and not u.startswith("blob:")]
    expect(not foreign, f"the page fetched {foreign}")


def click_card(b, node, act):
    b.click(f'.card[data-node="{node}"] button[data-act="{act}"]')


def crash_the_leader(b):
    fresh(b)
    st = wait_state(b, lambda st: leader(st) is not None, "a leader appears")
    old, term = leader(st)
    b.click(f'.card[data-node="{old}"]')  # select it: the why panel names the rule
    click_card(b, old, "crash")
    st = wait_state(b, lambda st: st["nodes"][old]["role"] == "Crashed", "the crashed card")
    b.js("window.pg.setSpeed(0.3);")
    st = wait_state(b, lambda st: (leader(st) or (0, 0))[1] > term, "a new leader in a higher term")
    new, new_term = leader(st)
    expect(new != old, f"n{old} leads again")
    print(f"   n{old} (term {term}) crashed; n{new} leads term {new_term} at t={st['now']} ms")
    b.click(f'.card[data-node="{new}"]')
    time.sleep(0.8)
    shot(b, "02-leader-crashed.png")
    why = b.js("return document.getElementById('whyRule').textContent;")
    expect("§" in why or "Figure" in why, f"the why panel says {why!r}")
    click_card(b, old, "crash")  # Restart
    wait_state(b, lambda st: st["nodes"][old]["role"] == "Follower"
               and st["nodes"][old]["leader"] == new, "the restarted node follows the new leader")


def isolate_and_heal(b, pre_vote):
    b.js("window.pg.play(false);")
    b.js(f"document.getElementById('prevote').checked = {str(pre_vote).lower()};")
    b.js("document.getElementById('seed').value = '3';")
    b.click("#restart")
    b.js("window.pg.setSpeed(10); window.pg.play(true);")
    st = wait_state(b, lambda st: leader(st) is not None and st["now"] > 1000, "a settled leader")
    lead, term = leader(st)
    follower = (lead + 1) % st["n"]
    click_card(b, follower, "isolate")
    start = wait_state(b, lambda st: st["nodes"][follower]["cut"], "the isolated card")["now"]
    st = wait_state(b, lambda st: st["now"] > start + 10 * 300, "ten election timeouts")
    lonely = st["nodes"][follower]["term"]
    if not pre_vote:
        b.js("window.pg.play(false);")
        shot(b, "04-isolated-without-prevote.png")
        b.js("window.pg.play(true);")
    click_card(b, follower, "isolate")  # Rejoin
    healed = wait_state(b, lambda st: not st["nodes"][follower]["cut"], "the rejoined card")["now"]
    st = wait_state(b, lambda st: st["now"] > healed + 1500, "time after the heal")
    return lead, term, follower, lonely, st


def prevote_keeps_the_term(b):
    lead, term, follower, lonely, st = isolate_and_heal(b, pre_vote=True)
    expect(lonely == term, f"isolated with PreVote, n{follower}'s term went from {term} to {lonely}")
    expect(leader(st) == (lead, term), f"after the heal the leader is {leader(st)}, was {(lead, term)}")
    terms = {n["term"] for n in st["nodes"]}
    expect(terms == {term}, f"terms after the heal: {terms}")
    print(f"   PreVote: n{follower} cut off for 3 s kept term {term}; n{lead} still leads it after the heal")
    b.js("window.pg.setSpeed(0.3);")
    b.click(f'.card[data-node="{follower}"]')
    time.sleep(1.0)
    shot(b, "03-prevote-rejoin.png")
    _, term2, follower2, lonely2, st2 = isolate_and_heal(b, pre_vote=False)
    expect(lonely2 > term2 + 3, f"without PreVote the isolated node's term only went {term2} -> {lonely2}")
    print(f"   without PreVote: n{follower2}'s term climbed {term2} -> {lonely2}; after the heal "
          f"{'n%d leads term %d' % leader(st2) if leader(st2) else 'no leader yet'}")
    b.js("document.getElementById('prevote').checked = true;")


def every_scenario_file(b):
    files = sorted(TESTDATA.glob("*.txt"))
    expect(len(files) >= 9, f"only {len(files)} scenario files")
    same = 0
    for path in files:
        text = path.read_text(encoding="utf-8")
        log = b.js("""window.pg.play(false); window.pg.load(arguments[0], arguments[1]);
            let k = 0;
            while (!window.pg.state().done && k++ < 100000) window.pg.call('step');
            return window.pg.log();""", path.name, text)
        if log == text:
            same += 1
        else:
            w, g = text.splitlines(), log.splitlines()
            i = next((i for i in range(max(len(w), len(g))) if (w[i:i + 1] != g[i:i + 1])), 0)
            print(f"   {path.name} differs at line {i + 1}: file {w[i:i + 1]} page {g[i:i + 1]}")
    print(f"   {same} of {len(files)} scenario files step to exactly their own text in the page")
    expect(same == len(files), f"{len(files) - same} files differ")


def scenario_through_the_controls(b):
    """The learner's way: pick a file in the list, Load, then Step until the end."""
    name = "handover.txt"
    b.js("window.pg.play(false);")
    b.js("const s = document.getElementById('scenario'); s.value = arguments[0];"
         "s.dispatchEvent(new Event('change'));", name)
    b.click("#loadScenario")
    for _ in range(200):
        if state(b)["done"]:
            break
        b.click("#step")
    expect(state(b)["done"], "the file did not reach its end in 200 steps")
    want = (TESTDATA / name).read_text(encoding="utf-8")
    got = b.js("return window.pg.log();")
    expect(got == want, f"{name} in the page:\n{got}")
    shown = b.js("return document.getElementById('log').innerText;")
    expect("send TIMEOUT_NOW t1 to n2" in shown, "the log on screen lacks the handover")
    b.click('.card[data-node="2"]')
    shot(b, "05-handover-file.png")


def export_replays(b):
    fresh(b, "5 seed=9")
    wait_state(b, lambda st: leader(st) is not None and st["now"] > 800, "a leader")
    b.js("window.pg.setSpeed(2);")
    lead, _ = leader(state(b))
    click_card(b, lead, "CONVERT_FOLLOWER")
    wait_state(b, lambda st: (leader(st) or (lead,))[0] != lead, "the handover")
    other = (lead + 2) % 5
    b.click(f'line[data-link="{min(lead, other)}-{max(lead, other)}"]')
    time.sleep(0.5)
    click_card(b, other, "SHUTDOWN")
    time.sleep(0.5)
    click_card(b, other, "REVIVE")
    time.sleep(0.5)
    b.click("#healAll")
    time.sleep(0.5)
    b.js("window.pg.play(false);")
    b.click("#export")
    text = b.js("return document.getElementById('exportText').value;")
    note = b.js("return document.getElementById('exportNote').textContent;")
    shot(b, "06-export.png")
    b.js("document.getElementById('exportBox').close();")
    expect("identical" in note, f"the page says: {note}")
    expect(text == b.js("return window.pg.log();"), "the export is not the log the page showed")
    session = OUT / "session.txt"
    session.write_text(text, encoding="utf-8")
    replay = subprocess.run([str(NATIVE), "replay", str(session)], capture_output=True, text=True, check=False)
    expect(replay.returncode == 0, f"native replay failed: {replay.stderr}")
    expect(replay.stdout == text, "the native simulator replays the session differently")
    lines = text.count("\n")
    print(f"   {session.relative_to(ROOT)}: {lines} lines; the native simulator replays it identically")


def same_traces_as_native(b):
    native_dir = OUT / "native-traces"
    native_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run([str(NATIVE), "traces", str(SEEDS.start), str(len(SEEDS)), str(native_dir)], check=True)
    b._s("POST", "/timeouts", {"script": 300_000})
    t0 = time.monotonic()
    # A script that returns a promise: WebDriver waits for it.
    page = b.js("""return (async () => {
          const out = [];
          for (const seed of arguments[0]) {
            const bytes = new TextEncoder().encode(window.pg.raw('determinism ' + seed).text);
            const h = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
            out.push([seed, bytes.length, [...h].map(x => x.toString(16).padStart(2, '0')).join('')]);
          }
          return out;
        })().catch(e => String(e));""", list(SEEDS))
    wall = time.monotonic() - t0
    expect(isinstance(page, list), f"the page failed: {page}")
    differ, total = [], 0
    for seed, length, digest in page:
        data = (native_dir / f"{seed}.txt").read_bytes()
        total += len(data)
        if (len(data), hashlib.sha256(data).hexdigest()) != (length, digest):
            differ.append(seed)
    print(f"   {len(page)} seeds, {total / 1e6:.1f} MB of traces: {len(page) - len(differ)} identical "
          f"(wasm in {wall:.1f} s)")
    expect(not differ, f"seeds whose wasm trace differs from the native one: {differ[:20]}")


def events_per_second(b):
    b.js("window.pg.play(false); window.pg.call('world 5 seed=2 delay=10-20 jitter=3');")
    rate = b.js("""const t0 = performance.now(); let t = 0, n = 0;
        while (performance.now() - t0 < 3000) { t += 1000; window.pg.raw('advance ' + t); n++; }
        const st = window.pg.raw('state').state;
        return [st.steps, (performance.now() - t0) / 1000, st.now];""")
    steps, wall, sim = rate
    b.js("window.pg.call('world 9 seed=2'); window.pg.setSpeed(10); window.pg.play(true);")
    frames = b.js("""let k = 0; const t0 = performance.now();
        return new Promise(res => { const f = () => { k++;
          if (performance.now() - t0 < 2000) requestAnimationFrame(f); else res(k / 2); };
          requestAnimationFrame(f); });""")
    b.js("window.pg.play(false);")
    print(f"   5 nodes at full speed: {steps / wall:,.0f} steps of a node per second "
          f"({sim / 1000 / wall:,.0f} simulated s per s); 9 nodes at 10x: {frames:.0f} frames/s")
    expect(steps / wall > 1000, "the page steps fewer than 1000 events a second")


def main():
    committed_only = sys.argv[1:] == ["--committed"]
    if not PAGE.exists():
        why = f"{PAGE.relative_to(ROOT)} was not built (make playground needs the wasm32-unknown-unknown target)"
        return unavailable(SUITE, why)
    if committed_only:  # `make quick`: no browser, only whether the committed page is current
        check("the committed page is a fresh build", committed_equals_fresh, None)
        return summary()
    _, missing = Browser.find()
    if missing:
        return unavailable(SUITE, f"{missing} not installed (apt-get install chromium chromium-driver)")
    OUT.mkdir(parents=True, exist_ok=True)
    check("the committed page is a fresh build", committed_equals_fresh, None)
    b = Browser(width=1500, height=1300)
    try:
        if check("from file://: a leader appears", loads_and_elects, b):
            for name, fn in [("crash the leader: a new leader in a higher term", crash_the_leader),
                             ("isolate and heal: PreVote keeps the term", prevote_keeps_the_term),
                             ("every scenario file steps to its own text", every_scenario_file),
                             ("a scenario file through the controls", scenario_through_the_controls),
                             ("an exported session replays natively", export_replays),
                             ("wasm and native traces are byte-identical", same_traces_as_native),
                             ("events per second", events_per_second)]:
                check(name, fn, b)
    finally:
        b.close()
    return summary() if RESULTS else 1


if __name__ == "__main__":
    main_guard(main, "browser")
