#!/usr/bin/env python3
"""Run the conformance scripts one after another; one verdict for all of them.

    python conformance/run_all.py            patterns 1-6 and the unasked check, about 60 s
    python conformance/run_all.py --long     and pattern 7's 65 s run
    python conformance/run_all.py p3 p5      only those

Each script runs as its own process (as a grader runs them), with this one's arguments for
addresses (``--addrs``) passed on. Prints every script's output, then each script's last line,
the slowest reply seen and ``N passed, M failed`` over all checks; exit status 1 when any
script failed.
"""
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPTS = ["p1_first_reply", "p2_timeouts", "p3_echo_reply", "p4_unknown_requests", "p5_shapes",
           "p6_names", "p8_unasked"]


def main(argv):
    addrs = argv[argv.index("--addrs"):argv.index("--addrs") + 2] if "--addrs" in argv else []
    chosen = [s for s in SCRIPTS + ["p7_long_run"]
              if any(s.startswith(a) for a in argv if not a.startswith("-"))]
    scripts = chosen or SCRIPTS + (["p7_long_run"] if "--long" in argv else [])
    passed = failed = 0
    slowest, lines = (0.0, ""), []
    for name in scripts:
        p = subprocess.run([sys.executable, "-u", os.path.join(HERE, name + ".py")] + addrs,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        print(p.stdout, end="", flush=True)
        counts = re.findall(r"^(\d+) passed, (\d+) failed$", p.stdout, re.M)
        ok, bad = map(int, counts[-1]) if counts else (0, 1)
        passed, failed = passed + ok, failed + bad + (1 if p.returncode and not bad else 0)
        for ms, what in re.findall(r"^slowest reply: ([\d.]+) ms \((.*)\)$", p.stdout, re.M):
            if float(ms) > slowest[0]:
                slowest = (float(ms), "%s: %s" % (name, what))
        lines.append("%-22s %s (exit %d)" % (name, "%d passed, %d failed" % (ok, bad), p.returncode))
    print("\n== conformance summary")
    print("\n".join(lines))
    print("slowest reply in the suite: %.1f ms (%s)" % slowest)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
