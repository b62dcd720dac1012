#!/usr/bin/env python3
"""Per-trial failover traces from node logs: who fired when, who (pre-)voted for whom.

    PYTHONPATH=Controller python3 bench/trace.py LOGDIR     prints the campaigns after each `killed`/SHUTDOWN

`local_nodes.py` calls `trial()` for every failover trial and writes the result to
build/bench/failover-trace-prevote-{on,off}.txt; `classify()` names what a trial went through.
Times are in ms from the fault, from the nodes' own log stamps (microseconds).
"""
import sys


def trial(events, t0, t_end, leader):
    """The log lines of one trial (fault at t0, new leader at t_end) that tell the election."""
    out = []
    for e in events:
        if not t0 - 0.001 <= e["t"] <= t_end + 0.005 or e["node"] == leader:
            continue
        kind = e.get("event")
        if kind == "become" and e.get("to") in ("PreCandidate", "Candidate", "Follower", "Leader"):
            out.append({"t": e["t"], "node": e["node"], "what": e["to"], "term": e.get("term"),
                        "reason": e.get("reason"), "late_us": e.get("late_us"), "persist_us": e.get("persist_us")})
        elif kind in ("vote", "pre-vote"):
            out.append({"t": e["t"], "node": e["node"], "what": kind, "term": e.get("for_term"),
                        "candidate": e.get("candidate"), "granted": e.get("granted") == "true",
                        "reason": e.get("reason"), "persist_us": e.get("persist_us")})
        elif kind == "elected":
            out.append({"t": e["t"], "node": e["node"], "what": "elected", "term": e.get("term")})
    return out


def classify(rows):
    """A short name for what happened: `clean` (one campaign), or why it took more."""
    fired = [r for r in rows if r["what"] in ("PreCandidate", "Candidate")
             and r["reason"] == "election-timeout"]
    camps = [r for r in rows if r["what"] == "Candidate"]
    if len(camps) <= 1:
        return "clean"
    first_term = camps[0]["term"]
    same = [r for r in camps if r["term"] == first_term]
    if len(same) > 1:
        gap = (same[1]["t"] - same[0]["t"]) * 1000
        timer_gap = (fired[1]["t"] - fired[0]["t"]) * 1000 if len(fired) > 1 else None
        return "split: %d candidates in term %s, %.2f ms apart (timers %s ms apart)" % (
            len(same), first_term, gap, "%.2f" % timer_gap if timer_gap is not None else "?")
    return "%d campaigns in terms %s" % (len(camps), ",".join(str(r["term"]) for r in camps))


CATEGORIES = ("one campaign", "timers fired together (< 0.5 ms apart)",
              "a second timer fired while the first campaign was under way (0.5-20 ms)",
              "more than one campaign, timers further apart")


def category(rows):
    """Which of CATEGORIES a trial falls in: by the gap between the first two survivors' timers."""
    camps = [r for r in rows if r["what"] == "Candidate"]
    if len(camps) <= 1:
        return CATEGORIES[0]
    fired, seen = [], set()
    for r in rows:
        if r["what"] in ("PreCandidate", "Candidate") and r["reason"] == "election-timeout" \
                and r["node"] not in seen:
            seen.add(r["node"])
            fired.append(r["t"])
    if len(fired) < 2:
        return CATEGORIES[3]
    gap = (fired[1] - fired[0]) * 1000
    return CATEGORIES[1] if gap < 0.5 else CATEGORIES[2] if gap < 20 else CATEGORIES[3]


def render(rows, t0):
    lines = []
    for r in rows:
        ms = (r["t"] - t0) * 1000
        if r["what"] in ("vote", "pre-vote"):
            disk = " after %.2f ms on disk" % (int(r["persist_us"]) / 1000) if r.get("persist_us") else ""
            lines.append("  %8.3f %s %s %s for %s@%s (%s)%s" % (
                ms, r["node"], r["what"], "GRANT" if r["granted"] else "refuse", r["candidate"],
                r["term"], r["reason"], disk))
        elif r["what"] == "elected":
            lines.append("  %8.3f %s ELECTED term %s" % (ms, r["node"], r["term"]))
        else:
            late = " late %.2f ms" % (int(r["late_us"]) / 1000) if r.get("late_us") else ""
            if r.get("persist_us"):
                late += " after %.2f ms on disk" % (int(r["persist_us"]) / 1000)
            lines.append("  %8.3f %s -> %s@%s (%s)%s" % (ms, r["node"], r["what"], r["term"],
                                                       r["reason"], late))
    return lines


if __name__ == "__main__":
    import timeline
    events = timeline.read_logs(sys.argv[1:2])
    for e in events:
        if e.get("event") == "killed" or (e.get("event") == "become" and e.get("to") == "Stopped"):
            end = next((x for x in events if x.get("event") == "elected" and x["t"] > e["t"]), None)
            if end:
                rows = trial(events, e["t"], end["t"], e["node"])
                print("fault of %s at %.6f: %s" % (e["node"], e["t"], classify(rows)))
                print("\n".join(render(rows, e["t"])))
