"""Safety checks on the nodes' own logs (logfmt, one line per event, standard library only).

    check(logs) -> (violations, stats)     logs: {node name: [lines in the order written]}

Invariants, from every node's whole log (`docker logs` keeps the lines of every run of a
container, so restarts are included):
  - election safety: at most one node is `elected` in any term (and none twice in one term);
  - terms never decrease on a node: `term=` of consecutive lines, the `start` line after a
    restart included (it shows the term loaded from DATA_DIR).
A line that is not exactly a node's logfmt line (a panic message, say) is a violation too.
"""
import raftkit


def parse(line):
    """One node log line (raftkit.parse_line) that carries a term, or None."""
    rec = raftkit.parse_line(line)
    return rec if rec is not None and "term" in rec and "event" in rec else None


def check(logs):
    violations, leaders, elections, restarts, parsed = [], {}, 0, 0, {}
    for node, lines in logs.items():
        prev = None
        recs = []
        for line in lines:
            if not line.strip():
                continue
            rec = parse(line)
            if rec is None:
                violations.append(f"{node}: not a log line: {line.strip()[:200]}")
                continue
            recs.append(rec)
            if rec["event"] == "start" and prev is not None:
                restarts += 1
            if prev is not None and rec["term"] < prev["term"]:
                violations.append(f"{node}: term went down {prev['term']} -> {rec['term']}:\n"
                                  f"      {prev['_line']}\n      {line.strip()}")
            rec["_line"] = line.strip()
            prev = rec
            if rec.get("event") == "elected":
                elections += 1
                leaders.setdefault(rec["term"], []).append((node, rec["_line"]))
        parsed[node] = recs
    for term, who in sorted(leaders.items()):
        if len(who) > 1:
            violations.append(f"term {term}: elected {len(who)} times:\n"
                              + "\n".join(f"      {line}" for _, line in who))
    stats = {"elections": elections, "restarts": restarts,
             "max_term": max((r["term"] for recs in parsed.values() for r in recs), default=0)}
    return violations, stats

