#!/usr/bin/env python3
"""docs/BENCHMARKS.md and its pictures from recorded measurements: no timing, no processes.

    PYTHONPATH=Controller python3 bench/report.py [build/bench/bench.json] [-o docs]

`make bench` measures (bench/bench.py), saves every value to build/bench/bench.json and calls
write() below; running this file re-renders the same report from that JSON without measuring
again. Sections whose measurements are absent (BENCH_ONLY, no Docker, no etcd) say so or are
left out.
"""
import argparse
import json
import math
import os
import statistics
import sys
import trace
from xml.sax.saxutils import escape

import timeline
from stats import percentile, summarize

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEARTBEAT_MS = 50
# Ongaro, "Consensus: Bridging Theory and Practice" (2014), ch. 9: time to elect a new leader after
# the leader crashes, 5 servers, 150-300 ms election timeouts. Reference figures, not ours.
REFERENCE = [(171, "median 171"), (415, "p99 415"), (603, "max 603")]
TARGETS = {"failover_median": 165, "failover_p99": 260, "failover_max": 320, "split_share": 0.02,
           "first_leader": 1000, "rss_kib": 2048, "follower_cpu": 0.5, "binary_kib": 600,
           "image_kib": 1024, "prevote_p99_ratio": 1.05, "docker_p99": 300, "convert_p99": 20,
           "sim_match": 0.10,
           # planned stops (SIGTERM handover) and idle cost
           "sigterm_p50": 8, "sigterm_p99": 20, "sigterm_exit_p99": 100, "docker_stop_p99": 30,
           "rolling_total": 50, "idle_leader_cpu": 0.3, "idle_follower_cpu": 0.1}
OURS, PEER = "this project", "etcd"
PV = {"on": 1, "off": 0}


def mark(ok):
    return "PASS" if ok else "MISS"


def fmt_stats(st):
    return "%d | %d | %d | %d | %d" % (st["n"], st["median"], st["min"], st["p99"], st["max"])


def p50_p99(xs, unit="ms"):
    """'p50 X / p99 Y ms (n=N)' of a series, or '-' when there is none."""
    st = summarize([x for x in xs or [] if x is not None])
    if not st:
        return "-"
    return "%s / p99 %s %s (n=%d)" % (num(st["median"]), num(st["p99"]), unit, st["n"])


def num(x):
    return "%.0f" % x if abs(x) >= 10 else "%.1f" % x


def ratio(a, b):
    """a / b as '0.12' (how many times etcd's figure this project's is), '-' when undefined."""
    if a is None or b in (None, 0):
        return "-"
    r = a / b
    return "%.2f" % r if r < 10 else "%.0f" % r


def cycle_modes(n):
    """The fault of each failover trial, in order: SHUTDOWN and kill -9 alternate."""
    return [("shutdown", "kill")[i % 2] for i in range(n)]


# ---- pictures ----------------------------------------------------------------------------------

def histogram_svg(series, refs, title, width=720, height=360, bin_ms=10):
    """Side-by-side histograms, one per series ({label: [ms]}), with labelled reference lines."""
    colours = ["#4e79a7", "#e15759", "#59a14f", "#b07aa1"]
    top_ms = max([max(v) for v in series.values() if v] + [r[0] for r in refs]) + 2 * bin_ms
    top_ms = int(math.ceil(top_ms / 100.0) * 100)
    bins = top_ms // bin_ms
    counts = {k: [0] * bins for k in series}
    for k, v in series.items():
        for ms in v:
            counts[k][min(max(int(ms // bin_ms), 0), bins - 1)] += 1
    peak = max([max(c) for c in counts.values()] + [1])
    left, right, top, bottom = 50, 20, 40 + 16 * (len(series) + 1), 40
    pw, ph = width - left - right, height - top - bottom

    def x(ms):
        return left + ms / top_ms * pw

    def y(n):
        return top + ph - n / peak * ph

    s = ['<text x="%d" y="18" font-size="13" font-weight="bold">%s</text>' % (left, escape(title))]
    step = max(1, math.ceil(peak / 5.0))
    for n in range(0, peak + 1, step):
        s.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#e5e5e5"/><text x="%d" y="%.1f" '
                 'text-anchor="end">%d</text>' % (left, left + pw, y(n), y(n), left - 4, y(n) + 4, n))
    sub = pw / bins / len(series)
    for i, (k, c) in enumerate(counts.items()):
        for b, n in enumerate(c):
            if n:
                s.append('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>'
                         % (x(b * bin_ms) + i * sub, y(n), sub, y(0) - y(n), colours[i]))
        st = summarize(series[k])
        s.append('<rect x="%d" y="%d" width="12" height="10" fill="%s"/><text x="%d" y="%d">%s: '
                 'median %d ms, p99 %d ms, max %d ms</text>' % (left, 28 + 16 * i, colours[i], left + 16,
                                                                  37 + 16 * i, escape(k), st["median"],
                                                                  st["p99"], st["max"]))
    ly = 37 + 16 * len(series)
    s.append('<path d="M%d %dh12" stroke="#333" stroke-dasharray="4 3"/><text x="%d" y="%d">'
             'reference, not measured here: Raft dissertation (Ongaro 2014, ch. 9), crashed leader, '
             '150-300 ms timeouts</text>' % (left, ly - 4, left + 16, ly))
    for ms, label in refs:
        s.append('<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#333" stroke-dasharray="4 3"/>'
                 '<text x="%.1f" y="%d" font-size="10" fill="#333">%s</text>'
                 % (x(ms), x(ms), top + 2, top + ph, x(ms) + 3, top + 12, escape(label)))
    s.append('<path d="M%d %dV%dH%d" fill="none" stroke="black"/>' % (left, top, top + ph, left + pw))
    for ms in range(0, top_ms + 1, 100):
        s.append('<text x="%.1f" y="%d" text-anchor="middle">%d</text>' % (x(ms), top + ph + 14, ms))
    s.append('<text x="%d" y="%d" text-anchor="middle">failover time (ms), from the fault to the new '
             'leader\'s "elected" log line; %d ms bins</text>' % (left + pw // 2, height - 8, bin_ms))
    s.append('<text transform="translate(14 %d) rotate(-90)" text-anchor="middle">trials</text>'
             % (top + ph // 2))
    return timeline.svg(width, height, s)


def failover_svg(r):
    """failover.svg: the PreVote-on failover times, kill -9 and SHUTDOWN side by side."""
    raw = r["failover"]["on"]
    return histogram_svg({"kill -9, %d trials" % len(raw["kill"]): raw["kill"],
                          "SHUTDOWN, %d trials" % len(raw["shutdown"]): raw["shutdown"]},
                         REFERENCE, "Leader failover: 5 local nodes, 150-300 ms timeouts, PreVote on")


def timeline_svg(r):
    t = r["timeline"]
    return timeline.render(t["events"], "Election timeline, 5 local nodes",
                           "SHUTDOWN the leader, revive it; kill -9 the leader, restart it; "
                           "TIMEOUT to a follower; CONVERT_FOLLOWER to the leader", end=t["end"])


def pictures(r):
    """{file name: SVG text} of the pictures the recorded sections allow."""
    out = {}
    if "failover" in r:
        out["failover.svg"] = failover_svg(r)
    if "timeline" in r:
        out["timeline.svg"] = timeline_svg(r)
    return out


# ---- the report --------------------------------------------------------------------------------

def render(r):
    """BENCHMARKS.md from the measurements `r`, section by section (those measured)."""
    L = header(r)
    if "compare" in r or "idle" in r or "containers" in r:
        L += beside_etcd(r) + goals(r)
    if "first_leader" in r:
        L += cold_start(r)
    if "failover" in r:
        L += failover_lines(r)
    if "quiet" in r:
        L += quiet_lines(r) + footprint(r)
    if "containers" in r:
        L += ["## Containers", ""] + container_lines(r["containers"]) + [""]
    if "timeline" in r:
        L += timeline_lines(r)
    return "\n".join(L)


def header(r):
    m = r["machine"]
    return ["# Benchmarks", "",
            "Written whole by `%s` on %s in %.0f s (nothing in this file is edited by hand; "
            "`python3 bench/report.py build/bench/bench.json` renders it again from the saved "
            "measurements). Machine: %s, %s, %d cores, %.0f GiB, Linux %s, Python %s. Load: 1-minute "
            "load average %.2f at the start, %.2f at the end%s. Binary measured: `%s`." % (
                r["command"], m["date"], r["seconds"], m["arch"], m["cpu"], m["cores"], m.get("mem_gib", 0),
                m["kernel"], m["python"], m["load"], r["load_end"],
                "; other work shared the cores, so the figures are noisy" if max(m["load"], r["load_end"]) > 0.5
                else " (a quiet machine)", r["bin"]), "",
            "Local figures: 5 processes on loopback, default timeouts (election 150-300 ms, heartbeat "
            "%d ms), CheckQuorum and PreVote on, `DATA_DIR` in a temporary folder. p99 is interpolated "
            "between the closest ranks, so with 100 trials or fewer it lies between the two largest "
            "values. PASS/MISS compare with the project's targets; a MISS does not fail the run."
            % HEARTBEAT_MS, ""]


def series_of(r, who, key):
    return (r.get("compare") or {}).get(who, {}).get(key) or []


def idle_of(r, who):
    return (r.get("idle") or {}).get(who)


def beside_etcd(r):
    """The side-by-side table (this project, etcd 3.4, ratio) and how it was measured."""
    e = r.get("etcd", {})
    L = ["## Beside etcd", ""]
    if "skipped" in e:
        L += ["etcd not measured: %s." % e["skipped"], ""]
    else:
        L += ["etcd %s (`%s`, Debian's `etcd-server`%s) and this project, measured the same way in this "
              "run (`bench/compare.py`): 5 members on loopback, each with a data directory in a "
              "temporary folder removed afterwards; etcd with heartbeat %d ms and election timeout %d ms "
              "(etcd refuses an election timeout under 5 heartbeat intervals, so this project's 150 ms "
              "cannot be paired with its 50 ms heartbeat; 30/150 keeps the election timeout equal) and "
              "PreVote on. Agreement is polled every 5 ms from outside: etcd's HTTP status API "
              "(`POST /v3/maintenance/status`: leader and term), this project's `LEADER_INFO`. "
              "\"Survivors agree\": every member still running names the same new leader in one term. "
              "Faults are signals to the leader's pid at a random point of its heartbeat cycle; the "
              "trials alternate SIGTERM and kill -9 and run in blocks, ours and etcd's in turn, each "
              "block on a fresh cluster (whose cold start gives the first-leader row). Ratio: this "
              "project's figure divided by etcd's."
              % (e.get("version", "?"), e.get("binary", "etcd"), "; " + e["note"] if e.get("note") else "",
                 e.get("heartbeat_ms", 30), e.get("election_ms", 150)), ""]
    L += ["figure | this project | etcd 3.4 | ratio", "---|---|---|---"]
    for label, key, unit in (("first leader: last member started -> all 5 agree", "first_leader", "ms"),
                             ("SIGTERM of the leader -> survivors agree", "sigterm_agree", "ms"),
                             ("SIGTERM of the leader -> its process exits", "sigterm_exit", "ms"),
                             ("kill -9 of the leader -> survivors agree", "kill_agree", "ms")):
        a, b = series_of(r, OURS, key), series_of(r, PEER, key)
        sa, sb = summarize(a), summarize(b)
        both = "p50 %s, p99 %s" % (ratio(sa["median"], sb["median"]), ratio(sa["p99"], sb["p99"])) \
            if sa and sb else "-"
        L.append("%s | %s | %s | %s" % (label, p50_p99(a, unit), p50_p99(b, unit), both))
    oi, pi = idle_of(r, OURS), idle_of(r, PEER)
    for label, fn, fmt in (("idle CPU, leader (% of a core)", lambda i: i["leader"]["cpu"], "%.2f %%"),
                           ("idle CPU, busiest follower (% of a core)",
                            lambda i: max(f["cpu"] for f in i["followers"].values()), "%.2f %%"),
                           ("idle RSS, largest member (KiB)",
                            lambda i: max([i["leader"]["VmRSS"]] + [f["VmRSS"] for f in i["followers"].values()]),
                            "%d KiB"),
                           ("system calls per second, idle leader (strace)", lambda i: calls_per_s(i, "leader"),
                            "%.0f"),
                           ("system calls per second, idle follower (strace)", lambda i: calls_per_s(i, "follower"),
                            "%.0f")):
        a, b = safe(fn, oi), safe(fn, pi)
        L.append("%s | %s | %s | %s" % (label, fmt % a if a is not None else "-",
                                        fmt % b if b is not None else "-", ratio(a, b)))
    sizes = r.get("binaries", {})
    a, b = sizes.get("release (glibc)"), e.get("binary_bytes")
    L.append("binary size | %s | %s | %s" % ("%d KiB" % (a / 1024) if a else "-", "%d KiB" % (b / 1024) if b else "-",
                                             ratio(a, b)))
    if oi:
        L += ["", "Idle: %.0f s of a settled cluster, CPU from `/proc/PID/stat` (all threads), RSS from "
              "`/proc/PID/status`; then %s." % (oi["seconds"], "system calls counted by `strace -c -f -p PID` "
                                              "of the leader and one follower at once over %.0f s%s"
                                              % (oi["syscalls"]["seconds"],
                                                 " (strace %s)" % r["strace_note"] if r.get("strace_note") else "")
                                              if "syscalls" in oi else "no system-call count (%s)"
                                              % (r.get("strace_note") or "strace missing"))]
    L += [""] + syscall_lines(r)
    return L


def safe(fn, idle):
    """fn(idle), or None when that was not measured."""
    try:
        return fn(idle) if idle else None
    except (KeyError, TypeError, ValueError):
        return None


def calls_per_s(idle, role):
    sc = idle.get("syscalls")
    if not sc or role not in sc:
        return None
    return sum(c for c, _ in sc[role].values()) / sc["seconds"]


def syscall_lines(r):
    """Per system call, calls (errors) in the strace window, this project's leader and follower."""
    oi = idle_of(r, OURS)
    if not oi or "syscalls" not in oi:
        return []
    sc = oi["syscalls"]
    names = sorted(set(sc["leader"]) | set(sc["follower"]),
                   key=lambda n: -(sc["leader"].get(n, [0, 0])[0] + sc["follower"].get(n, [0, 0])[0]))

    def cell(role, n):
        c, err = sc[role].get(n, [0, 0])
        return "%d%s" % (c, " (%d failed)" % err if err else "")

    L = ["This project's idle system calls over %.0f s (`strace -c`; failed calls, such as a read that "
         "finds nothing, in brackets):" % sc["seconds"], "",
         "system call | leader | follower", "---|---|---"]
    L += ["`%s` | %s | %s" % (n, cell("leader", n), cell("follower", n)) for n in names]
    L += ["total | %d | %d" % (sum(c for c, _ in sc["leader"].values()), sum(c for c, _ in sc["follower"].values())),
          "", "The work itself: a leader of 5 sends 4 heartbeats every %d ms and receives 4 replies (%d "
          "sends and %d receives a second); a follower receives 1 and answers 1 (%d and %d)."
          % (HEARTBEAT_MS, 4000 // HEARTBEAT_MS, 4000 // HEARTBEAT_MS, 1000 // HEARTBEAT_MS, 1000 // HEARTBEAT_MS), ""]
    return L


def goals(r):
    """The goals of planned stops and idle cost, this project's figures against them."""
    T = TARGETS
    L = ["## Goals: planned stops and idle cost", "",
         "figure | this project | etcd 3.4 | goal | met", "---|---|---|---|---"]
    st = summarize(series_of(r, OURS, "sigterm_agree"))
    L.append("SIGTERM of the leader -> survivors agree, 5 local nodes | %s | %s | p50 <= %d, p99 <= %d ms | %s"
             % (p50_p99(series_of(r, OURS, "sigterm_agree")), p50_p99(series_of(r, PEER, "sigterm_agree")),
                T["sigterm_p50"], T["sigterm_p99"],
                mark(st["median"] <= T["sigterm_p50"] and st["p99"] <= T["sigterm_p99"]) if st else "-"))
    ex = summarize(series_of(r, OURS, "sigterm_exit"))
    L.append("SIGTERM -> process exit | %s | %s | p99 <= %d ms | %s"
             % (p50_p99(series_of(r, OURS, "sigterm_exit")), p50_p99(series_of(r, PEER, "sigterm_exit")),
                T["sigterm_exit_p99"], mark(ex["p99"] <= T["sigterm_exit_p99"]) if ex else "-"))
    c = r.get("containers") or {}
    ds = summarize(c.get("stop_agree"))
    L.append("`docker stop` of the leader (compose) -> survivors agree | %s | - | p99 <= %d ms | %s"
             % (p50_p99(c.get("stop_agree")), T["docker_stop_p99"],
                mark(ds["p99"] <= T["docker_stop_p99"]) if ds else "-"))
    runs = (c.get("rolling") or {}).get("runs")
    if runs:
        tot = [x["total_ms"] for x in runs]
        cell = "%s ms in all (%s; %d leader restart(s), %d election(s))" % (
            " / ".join("%d" % t for t in tot), "; ".join(", ".join("%d" % g for g in x["gaps_ms"]) or "none"
                                                         for x in runs),
            sum(x["leader_restarts"] for x in runs), sum(x["elections"] for x in runs))
        ok = mark(max(tot) <= T["rolling_total"])
    else:
        cell, ok = "- (%s)" % (c.get("rolling") or c).get("skipped", "not run"), "-"
    L.append("Swarm rolling update of all 5 nodes: time without a leader, total | %s | - | <= %d ms in all | %s"
             % (cell, T["rolling_total"], ok))
    kl, f = summarize(series_of(r, OURS, "kill_agree")), r.get("floor")
    L.append("kill -9 of the leader -> survivors agree | %s | %s | keep at the floor%s | %s"
             % (p50_p99(series_of(r, OURS, "kill_agree")), p50_p99(series_of(r, PEER, "kill_agree")),
                " (p50 %.0f, p99 %.0f)" % (f["p50"], f["p99"]) if f else "",
                mark(kl["median"] <= T["failover_median"] and kl["p99"] <= T["failover_p99"]) if kl else "-"))
    oi, pi = idle_of(r, OURS), idle_of(r, PEER)

    def cpus(i):
        if not i:
            return "-"
        fs = [x["cpu"] for x in i["followers"].values()]
        return "%.2f %% / %.2f-%.2f %%" % (i["leader"]["cpu"], min(fs), max(fs))

    ok = "-"
    if oi:
        ok = mark(oi["leader"]["cpu"] <= T["idle_leader_cpu"]
                  and max(x["cpu"] for x in oi["followers"].values()) <= T["idle_follower_cpu"])
    L.append("idle leader / follower CPU (5 nodes) | %s | %s | <= %.1f %% / <= %.1f %% | %s"
             % (cpus(oi), cpus(pi), T["idle_leader_cpu"], T["idle_follower_cpu"], ok))
    lc, fc = (calls_per_s(oi, "leader"), calls_per_s(oi, "follower")) if oi else (None, None)
    pl, pf = (calls_per_s(pi, "leader"), calls_per_s(pi, "follower")) if pi else (None, None)
    L.append("system calls per second, idle leader / follower (strace) | %s | %s | the leader's nearer its "
             "%d sends + %d receives | -"
             % ("%.0f / %.0f" % (lc, fc) if lc is not None else "-",
                "%.0f / %.0f" % (pl, pf) if pl is not None else "-",
                4000 // HEARTBEAT_MS, 4000 // HEARTBEAT_MS))
    L += ["", "`docker stop`: from the leader receiving SIGTERM (its own `signal` log line; the daemon's "
          "`kill` event in `docker events` only where that line is missing) to the survivors' agreement, "
          "polled from the host every 5 ms; details under *Containers*. Rolling update: `docker service "
          "update --force` of each node in turn; for each restart of the leader's task, from that task "
          "receiving SIGTERM (the same way) to the next `elected` line.", ""]
    return L


def cold_start(r):
    st = summarize(r["first_leader"])
    T = TARGETS
    return ["## Time to first leader (cold start)", "",
            "From the last node's `start` line to the first `elected` line; fresh state each run.", "",
            "runs | median ms | min | p99 | max | target (max <= %d ms)" % T["first_leader"],
            "---|---|---|---|---|---",
            "%s | %s" % (fmt_stats(st), mark(st["max"] <= T["first_leader"])), ""]


def failover_lines(r):
    """The failover and controller sections: real figures, floor, breakdown, simulator."""
    T, fo = TARGETS, r["failover"]
    L = ["## Failover", "",
         "The leader is made to fail at a random point of its heartbeat cycle: `SHUTDOWN` (it goes "
         "silent) or `kill -9`. Time from the fault to the first `elected` line of another node. "
         "After each trial the node is revived (`CONVERT_FOLLOWER`) or restarted with its "
         "`DATA_DIR`, and the next trial waits until all five nodes name one leader. \"Campaigns\" "
         "counts candidacies (`become to=Candidate`) from the fault to the new leader: more than one "
         "means two nodes stood in one term (a split or a collision one of them won) or a vote failed.",
         "", "PreVote | fault | trials | median ms | min | p99 | max | more than one campaign | target "
         "(median <= %d, p99 <= %d, max <= %d, <= %.0f%% more than one)"
         % (T["failover_median"], T["failover_p99"], T["failover_max"], 100 * T["split_share"]),
         "---|---|---|---|---|---|---|---|---"]
    for pv in ("on", "off"):
        raw = fo[pv]
        for mode in ("shutdown", "kill"):
            st = summarize(raw[mode])
            camps = [c for c, m in zip(raw["campaigns"], cycle_modes(len(raw["campaigns"]))) if m == mode]
            share = sum(c > 1 for c in camps) / max(len(camps), 1)
            ok = (st["median"] <= T["failover_median"] and st["p99"] <= T["failover_p99"]
                  and st["max"] <= T["failover_max"] and share <= T["split_share"])
            L.append("%s | %s | %s | %.1f%% | %s" % (pv, ("SHUTDOWN", "kill -9")[mode == "kill"],
                                                   fmt_stats(st), 100 * share, mark(ok)))
    f = r["floor"]
    L.append("floor | | %d draws | %.0f | | %.0f | %.0f | | p90 %.0f; `python3 bench/floor.py`"
             % (f["draws"], f["p50"], f["p99"], f["max"], f["p90"]))
    L += [""]
    for mode in ("shutdown", "kill"):
        on, off = summarize(fo["on"][mode])["p99"], summarize(fo["off"][mode])["p99"]
        L.append("- PreVote on vs off, %s: p99 %d vs %d ms (%+.0f%%): %s (target: on within 5%% of off)."
                 % (("SHUTDOWN", "kill -9")[mode == "kill"], on, off, 100.0 * (on - off) / off,
                    mark(on <= off * T["prevote_p99_ratio"])))
    L.append("- Floor: 4 survivors, each redrawing a 150-300 ms timeout at every 50 ms heartbeat, the "
             "leader failing at a uniform phase of the cycle, zero delay, no split votes: the first "
             "timer to fire, by Monte Carlo (`bench/floor.py`, 200,000 draws, seed 1).")
    L.append("- Reference (not measured here): Ongaro's dissertation, ch. 9, reports for 150-300 ms "
             "timeouts and a crashed leader a median of about 171 ms, p99 about 415 ms and a maximum "
             "of about 603 ms.")
    L += ["", "![failover histogram](failover.svg)", "", "### Where the time goes", "",
          "Per trial, from the nodes' logs (microsecond stamps): when each survivor's timer fired and "
          "how late (`late_us`, against the deadline the core asked for), when each (pre-)vote was "
          "granted or refused and for whom, and how long a candidate's write of its term and vote "
          "took (`persist_us`). Every trial is in `build/bench/failover-trace-prevote-{on,off}.txt` "
          "(`bench/trace.py` reads any log folder the same way).", "",
          "What made the tail, and what closed it. Before this design (timers on the kernel's "
          "tick, no pre-vote hold), `make bench` measured with PreVote on: after `SHUTDOWN` median "
          "162 ms, p99 413, max 567, after `kill -9` 159 / 397 / 456 (n=100 each), and 32 of 200 "
          "failovers with more than one campaign; PreVote off: p99 224 / 236, 12 of 200.", "",
          "- **The kernel's tick.** The runtime's clock is the socket's receive timeout. Linux "
          "rounds it up to its 4 ms tick (HZ=250) and fires it one tick after that; above 252 ms "
          "its timer wheel rounds to 32 ms buckets. Timers fired 0-36 ms late, and survivors whose "
          "deadlines fell in one tick or bucket fired in the same microsecond: two campaigns, often "
          "a split. Now a wait ends 10 ms early (and never spans more than 200 ms) and a precise "
          "sleep covers the rest; what arrived meanwhile is read before the tick.",
          "- **PreVote's gap.** A pre-candidate gets its pre-votes within a fraction of a "
          "millisecond, then writes its term and vote to disk (1-10 ms here) before its real "
          "request leaves. A pre-vote grant changed nothing at the granter, so a granter whose own "
          "timer fired in that gap started a rival campaign for the same term: the collision window "
          "was the disk write, not the network delay. Now a node that granted a pre-vote holds its "
          "own timeout back for one heartbeat interval (a rule test in `tests/raft_rules.rs` says "
          "why). Without PreVote the same gap remains (a candidate writes before it asks), which is "
          "why PreVote off now has more split campaigns than PreVote on.", "",
          "PreVote | trials | " + " | ".join(trace.CATEGORIES) + " | timer late p50 / p99 / max ms "
          "| candidate's disk write p50 / p90 / max ms", "---|---" + "|---" * (len(trace.CATEGORIES) + 2)]
    for pv in ("on", "off"):
        raw = fo[pv]
        counts = [raw["classes"].count(c) for c in trace.CATEGORIES]
        late, disk = raw["late_ms"] or [0], raw["disk_ms"] or [0]
        L.append("%s | %d | %s | %.2f / %.2f / %.2f | %.2f / %.2f / %.2f" % (
            pv, len(raw["classes"]), " | ".join(map(str, counts)),
            percentile(late, 50), percentile(late, 99), max(late),
            percentile(disk, 50), percentile(disk, 90), max(disk)))
    L += [""] + simulator_lines(r) + [""]
    if "controller" in r:
        L += controller_lines(r)
    return L


def controller_lines(r):
    T, cm = TARGETS, r["controller"]
    conv = summarize(cm["convert"])
    return ["## Controller requests", "",
            "`CONVERT_FOLLOWER` to the leader: time to the next `elected` line of another node (the "
            "leader steps down and sends `TIMEOUT_NOW` to the follower it heard from last, which "
            "campaigns at once, as `TIMEOUT` makes a node do). `TIMEOUT` to a random follower: time "
            "to that follower's own `elected` line (a forced election that the others grant despite "
            "leader stickiness).", "",
            "request | trials | median ms | min | p99 | max | note", "---|---|---|---|---|---|---",
            "CONVERT_FOLLOWER to the leader | %s | another node won %d of %d; target p99 <= %d ms: %s" % (
                fmt_stats(conv), cm["convert_other"], len(cm["convert"]), T["convert_p99"],
                mark(conv["p99"] <= T["convert_p99"] and cm["convert_other"] == len(cm["convert"]))),
            "TIMEOUT to a follower | %s | it won %d of %d" % (
                fmt_stats(summarize(cm["timeout"])), len(cm["timeout"]), len(cm["timeout"])), ""]


def simulator_lines(r):
    sim = r.get("simulator") or {"skipped": "not measured in this run"}
    if "skipped" in sim:
        return ["Simulator: not run (%s)." % sim["skipped"]]
    T, fo = TARGETS, r["failover"]
    L = ["### The simulator beside the real cluster", "",
         "`cargo test --release --test sim loopback_failover -- --nocapture`: the same failover "
         "in the deterministic simulator, %d trials per row, on its loopback host model "
         "(`src/sim/host.rs`: 0 ms links, 0-2 ms of disk time before a step that persists sends, "
         "and timers either exact, as the runtime's precise sleep makes them, or rounded as "
         "`SO_RCVTIMEO` alone rounds them on a HZ=250 kernel). Real figures: both faults together."
         % sim[next(iter(sim))]["n"], "",
         "PreVote | source | trials | median ms | p99 | max | more than one campaign | sim within %d%% of real "
         "(median, p99, share +- 2 points)" % (100 * T["sim_match"]), "---|---|---|---|---|---|---|---"]
    for pv in ("on", "off"):
        raw = fo[pv]
        real = raw["shutdown"] + raw["kill"]
        share = 100.0 * sum(c > 1 for c in raw["campaigns"]) / len(raw["campaigns"])
        st = summarize(real)
        L.append("%s | real | %d | %d | %d | %d | %.1f%% |" % (pv, st["n"], st["median"], st["p99"],
                                                                st["max"], share))
        for timers in ("precise", "tick4"):
            row = sim.get("%s/%s" % (timers, pv))
            if not row:
                continue
            close = (abs(row["p50"] - st["median"]) <= T["sim_match"] * st["median"]
                     and abs(row["p99"] - st["p99"]) <= T["sim_match"] * st["p99"]
                     and abs(row["split"] - share) <= 2)
            L.append("%s | simulator, %s | %d | %d | %d | %d | %.1f%% | %s" % (
                pv, "exact timers" if timers == "precise" else "4 ms kernel tick", row["n"], row["p50"],
                row["p99"], row["max"], row["split"], mark(close) if timers == "precise" else "(the "
                "runtime no longer waits this way)"))
    return L


def quiet_lines(r):
    """Messages per election and at steady state; the quiet window."""
    q = r["quiet"]
    L = []
    if "failover" in r:
        L += ["## Messages", "",
              "Per election (from the logs): every campaign (PreCandidate or Candidate) sends one request "
              "to each of the 4 peers, every granted (pre-)vote is one reply; refusals are not sent. "
              "Counted from the fault to the `elected` line (grants up to 50 ms later), over the failover "
              "trials above.", "",
              "PreVote | median | min | max", "---|---|---|---"]
        for pv in ("on", "off"):
            msgs = r["failover"][pv]["messages"]
            L.append("%s | %d | %d | %d" % (pv, statistics.median(msgs), min(msgs), max(msgs)))
        L.append("")
    where = ("in a private network namespace (`unshare -n`) that holds only the five nodes, so "
             "nothing else is counted" if q["netns"] else "in the shared network namespace; other "
             "programs sent %.1f datagrams/s in a 5 s window just before" % q["baseline_per_s"])
    expected = 2 * 4 * 1000 // HEARTBEAT_MS
    L += ["At steady state: UDP datagrams sent and received, from `/proc/net/snmp` (`Udp:` "
          "`OutDatagrams`, `InDatagrams`) over the %.0f s quiet window below, with no controller "
          "traffic, %s. Heartbeat arithmetic: the leader sends 4 heartbeats every %d ms and gets 4 "
          "replies, %d datagrams/s; the measured rate means one heartbeat round every %.1f ms."
          % (q["seconds"], where, HEARTBEAT_MS, expected, 8000 / q["out_per_s"]), "",
          "sent/s | received/s | expected/s | heartbeat period (ms)", "---|---|---|---",
          "%.1f | %.1f | %d | %.1f" % (q["out_per_s"], q["in_per_s"], expected, 8000 / q["out_per_s"]), ""]
    before, after = q["before"], q["after"]
    L += ["## Quiet cluster", "",
          "%.0f s without faults after the first leader settled: %d term changes, elections or role "
          "changes in the logs (leader %s in term %s before, %s in term %s after): %s." % (
              q["seconds"], q["changes"], before[0], before[1], after[0], after[1],
              mark(q["changes"] == 0 and list(before) == list(after))), ""]
    return L


def footprint(r):
    """Binary sizes, CPU and memory per role."""
    T, q = TARGETS, r["quiet"]
    L = ["## Footprint", "", "binary | bytes | KiB | target (<= %d KiB)" % T["binary_kib"], "---|---|---|---"]
    for name, size in r["binaries"].items():
        L.append("%s | %d | %.0f | %s" % (name, size, size / 1024, mark(size <= T["binary_kib"] * 1024)))
    L += ["", "Per process, during the quiet windows: CPU is (utime+stime) from `/proc/PID/stat` over "
          "the window, in %% of one core; memory is `VmRSS` (and the peak `VmHWM`) from "
          "`/proc/PID/status` at its end. The stopped node is a follower silenced with `SHUTDOWN` "
          "(no timers, sends nothing, still receives and drops the leader's heartbeats), measured over "
          "%.0f s." % q.get("stopped_s", 0), "",
          "build | role | CPU %% of a core | VmRSS KiB | VmHWM KiB | target (RSS <= %d KiB; follower CPU < %.1f%%)"
          % (T["rss_kib"], T["follower_cpu"]), "---|---|---|---|---|---"]
    builds = [("glibc", q)] + ([("musl static", r["quiet_musl"])] if "quiet_musl" in r else [])
    for build, qq in builds:
        rows = [("leader", [qq["leader"]]), ("follower", list(qq["followers"].values()))]
        if "stopped" in qq:
            rows.append(("stopped", [qq["stopped"]]))
        for role, us in rows:
            cpu, rss, hwm = (max(u[k] for u in us) for k in ("cpu", "VmRSS", "VmHWM"))
            ok = rss <= T["rss_kib"] and (role != "follower" or cpu < T["follower_cpu"])
            L.append("%s | %s%s | %.2f | %d | %d | %s" % (build, role, " (max of %d)" % len(us) if len(us) > 1 else "",
                                                        cpu, rss, hwm, mark(ok)))
    L += ["", "Over %.0f s for glibc%s." % (q["seconds"], ", %.0f s for the static build" % r["quiet_musl"]["seconds"]
                                            if "quiet_musl" in r else ""), ""]
    return L


def container_lines(c):
    if "skipped" in c:
        return ["Not measured: %s." % c["skipped"]]
    T, up, kill = TARGETS, summarize(c.get("up")), summarize(c.get("kill"))
    last, cli = summarize(c.get("up_last_start")), summarize(c.get("kill_cli"))
    L = ["Image `%s` from `make image`, 5 nodes and the watching controller from "
         "`scripts/compose_file.py` in a throwaway compose project per run (the `tests/docker` harness), "
         "removed with `down -v` afterwards (`bench/containers.py`). Times come from the host clock: the "
         "nodes' log lines (`docker logs`), `docker events` and `State.FinishedAt`." % c["image"], "",
         "figure | n | median | min | p99 | max | target", "---|---|---|---|---|---|---",
         "image size (bytes) | | %d (%.0f KiB) | | | | <= %d KiB: %s"
         % (c["image_bytes"], c["image_bytes"] / 1024, T["image_kib"], mark(c["image_bytes"] <= T["image_kib"] * 1024))]
    if up:
        L += ["`up -d` invoked to first `elected` (ms; compose creates the network, volumes and 6 "
              "containers one by one) | %s | " % fmt_stats(up),
              "last node's `start` line to first `elected` (ms) | %s | max <= %d ms: %s"
              % (fmt_stats(last), T["first_leader"], mark(last["max"] <= T["first_leader"]))]
    if kill:
        L += ["`docker kill` of the leader: container exit (`State.FinishedAt`) to the new leader's "
              "`elected` (ms) | %s | p99 <= %d: %s"
              % (fmt_stats(kill), T["docker_p99"], mark(kill["p99"] <= T["docker_p99"])),
              "the same from `docker kill` invoked (ms) | %s |" % fmt_stats(cli)]
    stop = summarize(c.get("stop_agree"))
    if stop:
        L += ["`docker stop` of the leader: the leader receiving SIGTERM (its `signal` line) to the "
              "survivors' agreement, polled every 5 ms (ms) | %s | p99 <= %d: %s"
              % (fmt_stats(stop), T["docker_stop_p99"], mark(stop["p99"] <= T["docker_stop_p99"])),
              "the same to the new leader's `elected` line (ms) | %s |"
              % fmt_stats(summarize([x for x in c["stop_elected"] if x is not None])),
              "the same to the container's exit (`State.FinishedAt`, ms) | %s |" % fmt_stats(summarize(c["stop_exit"])),
              "`docker stop` invoked to the survivors' agreement (ms) | %s |" % fmt_stats(summarize(c["stop_cli"]))]
    if "memory" in c:
        L += ["", "Memory per container (`docker stats --no-stream`, a settled cluster): "
              + ", ".join("%s %s" % kv for kv in sorted(c["memory"].items())) + "."]
    roll = c.get("rolling")
    if roll:
        L += [""]
        if "skipped" in roll:
            L.append("Swarm rolling update: not measured (%s)." % roll["skipped"])
        else:
            L += ["Swarm rolling update (a 5-node stack from `scripts/compose_file.py --swarm` on this host's "
                  "swarm, or a single-node one made for the run; `docker service update --force` of each "
                  "node in turn, each waiting for the new task and an agreed leader):", "",
                  "run | seconds | leader restarts | elections | without a leader per leader restart (ms) | total ms",
                  "---|---|---|---|---|---"]
            L += ["%d | %.0f | %d | %d | %s | %d" % (i + 1, x["seconds"], x["leader_restarts"], x["elections"],
                                                    ", ".join(map(str, x["gaps_ms"])) or "-", x["total_ms"])
                  for i, x in enumerate(roll["runs"])]
    return L


def timeline_lines(r):
    return ["## Election timeline", "",
            "A scripted local run (%d leader terms): SHUTDOWN of the leader, revive, kill -9 of the "
            "new leader, restart, TIMEOUT to a follower, CONVERT_FOLLOWER to the leader. Drawn from "
            "the node logs by `PYTHONPATH=Controller python3 bench/timeline.py LOGDIR -o timeline.svg`, "
            "which also reads saved `docker logs` output." % len(timeline.leaderships(r["timeline"]["events"],
                                                                                     r["timeline"]["end"])),
            "", "![election timeline](timeline.svg)", ""]


def write(r, out):
    """BENCHMARKS.md and the pictures into the folder `out`; returns the files written."""
    os.makedirs(out, exist_ok=True)
    files = dict(pictures(r), **{"BENCHMARKS.md": render(r) + "\n"})
    for name, text in files.items():
        with open(os.path.join(out, name), "w") as f:
            f.write(text)
    return sorted(files)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("json", nargs="?", default=os.path.join(ROOT, "build", "bench", "bench.json"))
    ap.add_argument("-o", "--out", default=os.path.join(ROOT, "docs"), help="folder (default docs/)")
    a = ap.parse_args(argv)
    try:
        with open(a.json) as f:
            r = json.load(f)
    except (OSError, ValueError) as e:
        sys.exit("report: cannot read a recorded run from %s (%s); `make bench` writes one" % (a.json, e))
    print("wrote %s in %s" % (", ".join(write(r, a.out)), a.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
