#!/usr/bin/env python3
"""Render an election timeline (who led when, term by term) from the nodes' logfmt logs.

    PYTHONPATH=Controller python3 bench/timeline.py LOGDIR [more logs...] -o timeline.svg [--title TEXT]

LOGDIR is a folder of *.log files (scripts/local.py, bench/bench.py) or any files holding node log
lines (raftkit.parse_line), such as saved `docker logs` or `docker-compose logs` output (prefixes
before `t=` are ignored); `-` reads standard input. Lines written by someone else than a node's
own event loop, such as `event=killed` from bench/bench.py, are drawn as markers.
"""
import argparse
import glob
import math
import os
import sys
from xml.sax.saxutils import escape

from raftkit import parse_line


def read_logs(paths):
    """Every parsable line of the given files or folders (folders: their *.log), sorted by time."""
    files = []
    for p in paths:
        files += sorted(glob.glob(os.path.join(p, "*.log"))) if os.path.isdir(p) else [p]
    events = []
    for f in files:
        if f == "-":
            events += filter(None, map(parse_line, sys.stdin))
            continue
        with open(f, errors="replace") as stream:
            events += filter(None, map(parse_line, stream))
    events.sort(key=lambda e: e["t"])
    return events


def leaderships(events, end=None):
    """[(term, node, start, end)]: from a node's `elected` line until it stops leading.

    A leadership ends at the first of: a line of that node in another role or term (it stepped
    down, was shut down or restarted), a marker such as `event=killed`, the election of a leader
    in a later term, or the end of the log: `end` when given, else the last line seen.
    """
    end_of_log = end or (events[-1]["t"] if events else 0.0)
    out = []
    for i, e in enumerate(events):
        if e.get("event") != "elected":
            continue
        node, term, end = e["node"], e.get("term", 0), end_of_log
        for later in events[i + 1:]:
            mine = later["node"] == node and (later.get("role") != "Leader"
                                             or later.get("term", term) != term)
            newer = later.get("event") == "elected" and later.get("term", 0) > term
            if mine or newer:
                end = later["t"]
                break
        out.append((term, node, e["t"], end))
    return out


COLOURS = ["#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#9c755f", "#e15759"]
MARKS = {  # event -> (symbol, colour, legend text)
    "campaign": ("|", "#555", "campaign (Candidate)"),
    "stopped": ("x", "#d62728", "SHUTDOWN or kill -9"),
    "start": ("o", "#2ca02c", "process start or revive"),
}


def mark_kind(e):
    ev, to = e.get("event"), e.get("to")
    if ev == "become" and to == "Candidate":
        return "campaign"
    if ev == "killed" or (ev == "become" and to == "Stopped"):
        return "stopped"
    if ev == "start" or (ev == "become" and e.get("reason") == "revived"):
        return "start"
    return None


def render(events, title="Election timeline", note="", width=760, end=None):
    """The timeline as an SVG document (a string): one row per node, one bar per leader term.
    `end` (a Unix time) is when the logs were taken, if later than their last line."""
    nodes = sorted({e["node"] for e in events}, key=lambda n: (len(n), n))
    t0 = events[0]["t"] if events else 0.0
    end = max([end or 0.0] + [e["t"] for e in events[-1:]])
    span = max(end - t0, 0.001)
    left, right, top, row = 70, 20, 48, 26
    plot_w = width - left - right

    def x(t):
        return left + (t - t0) / span * plot_w

    y = {n: top + i * row for i, n in enumerate(nodes)}
    s = ['<text x="%d" y="18" font-size="13" font-weight="bold">%s</text>' % (left, escape(title)),
         '<text x="%d" y="34" fill="#444">%s</text>' % (left, escape(note))]
    for n in nodes:
        s.append('<text x="%d" y="%d" text-anchor="end">%s</text>' % (left - 6, y[n] + 16, escape(n)))
        s.append('<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="#ddd"/>'
                 % (left, width - right, y[n] + row - 3, y[n] + row - 3))
    for k, (term, node, start, stop) in enumerate(leaderships(events, end)):
        x1, x2 = x(start), max(x(stop), x(start) + 1)
        s.append('<rect class="lead" x="%.1f" y="%d" width="%.1f" height="%d" fill="%s">'
                 '<title>%s leads term %d: %.3f-%.3f s</title></rect>'
                 % (x1, y[node] + 3, x2 - x1, row - 9, COLOURS[k % len(COLOURS)], escape(node),
                    term, start - t0, stop - t0))
        if x2 - x1 > 24:
            s.append('<text x="%.1f" y="%d" fill="white">T%d</text>' % (x1 + 3, y[node] + 16, term))
    for e in events:
        kind = mark_kind(e)
        if kind:
            s.append(marker(kind, x(e["t"]), y[e["node"]] + row // 2 - 1))
    axis = top + row * len(nodes)
    s.append('<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="black"/>' % (left, width - right, axis, axis))
    step = nice_step(span, 8)
    tick = 0.0
    while tick <= span + 1e-9:
        s.append('<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="black"/>'
                 '<text x="%.1f" y="%d" text-anchor="middle">%g</text>'
                 % (x(t0 + tick), x(t0 + tick), axis, axis + 4, x(t0 + tick), axis + 16, round(tick, 3)))
        tick += step
    s.append('<text x="%d" y="%d" text-anchor="middle">time (s) from the first log line</text>'
             % (left + plot_w // 2, axis + 32))
    ly = axis + 48
    s.append('<rect x="%d" y="%d" width="14" height="10" fill="%s"/><rect x="%d" y="%d" width="14" '
             'height="10" fill="%s"/><text x="%d" y="%d">leader, one colour per term (T = term)</text>'
             % (left, ly - 9, COLOURS[0], left + 14, ly - 9, COLOURS[1], left + 34, ly))
    lx = left + 280
    for kind, (_, _, text) in MARKS.items():
        if lx + 20 + 6.5 * len(text) > width:
            lx, ly = left, ly + 16
        s.append(marker(kind, lx + 5, ly - 4))
        s.append('<text x="%d" y="%d">%s</text>' % (lx + 14, ly, escape(text)))
        lx += 30 + int(6.5 * len(text))
    return svg(width, ly + 12, s)


def svg(width, height, body):
    """A whole SVG document around `body` (a list of elements), on a white background."""
    return "\n".join(['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
                      'font-family="sans-serif" font-size="11">' % (width, height),
                      '<rect width="100%" height="100%" fill="white"/>'] + body + ["</svg>"]) + "\n"


def marker(kind, cx, cy):
    sym, colour, _ = MARKS[kind]
    if sym == "|":
        return ('<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="%s" stroke-width="1.5"/>'
                % (cx, cx, cy - 8, cy + 8, colour))
    if sym == "x":
        return ('<path d="M%.1f %dl8 8m0 -8l-8 8" stroke="%s" stroke-width="2"/>'
                % (cx - 4, cy - 4, colour))
    return '<circle cx="%.1f" cy="%d" r="3.5" fill="none" stroke="%s" stroke-width="1.5"/>' % (cx, cy, colour)


def nice_step(span, ticks):
    """A 1-2-5 step giving about `ticks` ticks over `span`."""
    raw = span / ticks
    mag = 10 ** math.floor(math.log10(raw))
    return next(m * mag for m in (1, 2, 5, 10) if raw <= m * mag)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("logs", nargs="+", help="log folders or files ('-' for stdin)")
    ap.add_argument("-o", "--output", default="timeline.svg")
    ap.add_argument("--title", default="Election timeline")
    ap.add_argument("--note", default="", help="a smaller line under the title")
    args = ap.parse_args(argv)
    events = read_logs(args.logs)
    if not events:
        ap.error("no node log lines found in %s" % " ".join(args.logs))
    with open(args.output, "w") as f:
        f.write(render(events, args.title, args.note))
    terms = leaderships(events)
    print("%s: %d nodes, %d leader terms, %.1f s" % (args.output, len({e["node"] for e in events}),
                                                     len(terms), events[-1]["t"] - events[0]["t"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
