"""The conformance scripts (Controller/conformance/) against five real nodes on loopback.

    make conformance          (or: RAFT_BIN=target/release/raft python3 tests/conformance.py -v)

Each script runs as a grader runs it, in its own process from Controller/ (where Message.json
is), with ``CONFORMANCE_ADDRS`` saying where the names are (there is no Docker DNS here: the
Controller is 127.0.35.100:5555, NodeK 127.0.35.K:5555). Every script must end with
``N passed, 0 failed`` and exit 0. ``kill -9`` of the leader and its restart stand in for
``docker kill`` and ``docker restart`` (the Docker suite, tests/docker/course.py, does those).
Needs RAFT_BIN (the Makefile sets it) and Controller/ on PYTHONPATH (raftkit). About a minute:
`make test` runs it, `make quick` does not.
"""

import os
import re
import subprocess
import sys
import time
import unittest

import raftkit

CONTROLLER = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          "Controller")
RAFT_BIN = os.path.abspath(os.environ["RAFT_BIN"]) if os.environ.get("RAFT_BIN") else ""
NET = "127.0.35"
CONTROLLER_IP = NET + ".100"
SLOWEST = []  # (ms, what) of every script run


def conformance(script, *args, timeout=300):
    """Run conformance/<script> here; (exit status, output)."""
    env = dict(os.environ, CONFORMANCE_ADDRS="Controller=%s:5555,%s"
               % (CONTROLLER_IP, ConformanceTests.cluster.env["PEERS"]))
    p = subprocess.run([sys.executable, "-u", os.path.join("conformance", script)] + list(args),
                       cwd=CONTROLLER, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=timeout)
    for ms, what in re.findall(r"^slowest reply: ([\d.]+) ms \((.*)\)$", p.stdout, re.M):
        SLOWEST.append((float(ms), "%s: %s" % (script, what)))
    return p.returncode, p.stdout


class ConformanceTests(unittest.TestCase):
    cluster = None

    @classmethod
    def setUpClass(cls):
        if not RAFT_BIN:
            raise AssertionError("RAFT_BIN is not set: point it at the node executable")
        cls.cluster = raftkit.LocalCluster(RAFT_BIN, 5, first=NET + ".1")
        cls.cluster.start()
        try:
            cls.cluster.wait_leader(timeout=15)
        except BaseException:
            cls.cluster.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.cluster.stop()
        if SLOWEST:
            print("\nslowest reply in the conformance suite on loopback: %.1f ms (%s)"
                  % max(SLOWEST), file=sys.stderr)

    def passes(self, script, *args):
        """The script's output; fails unless it ends with 'N passed, 0 failed' and exit 0."""
        code, out = conformance(script, *args)
        last = out.strip().splitlines()[-1] if out.strip() else ""
        self.assertRegex(last, r"^[1-9]\d* passed, 0 failed$", out)
        self.assertEqual(code, 0, out)
        return out

    def log(self, name):
        with open(self.cluster.log(name), errors="replace") as f:
            return f.read()

    def test_1_first_reply_story(self):
        out = self.passes("p1_first_reply.py")
        self.assertIn("PASS SHUTDOWN of the leader", out)
        stopped = re.search(r"PASS SHUTDOWN of the leader (\w+)", out).group(1)
        self.assertIn("role=Stopped event=drop reason=stopped ", self.log(stopped),
                      "the stopped node logged what it dropped")

    def test_2_first_reply_after_kill_9_and_restart_of_the_leader(self):
        leader, _, _ = self.cluster.wait_leader(timeout=15)
        self.cluster.kill(leader)
        time.sleep(2)
        self.passes("p1_first_reply.py", "--once", "--not", leader)
        self.cluster.spawn(leader)
        time.sleep(2)
        self.passes("p1_first_reply.py", "--once")
        self.cluster.wait_leader(timeout=15)

    def test_3_first_reply_after_shutdown_of_the_leader_five_times(self):
        out = self.passes("p1_first_reply.py", "--shutdowns", "5")
        self.assertIn("named the new leader in 5 of 5 runs", out)

    def test_4_timeouts(self):
        self.passes("p2_timeouts.py", "--rounds", "10")

    def test_5_echoed_reply(self):
        self.passes("p3_echo_reply.py")

    def test_6_unknown_requests_are_logged_and_dropped(self):
        self.passes("p4_unknown_requests.py")
        for name in self.cluster.names:
            log = self.log(name)
            for request in ("RESTART", "START_NODE", "ALL_INFO", "GETLOG", "PRINT_LOGS", "STORE",
                            "RETRIEVE", '"view log"'):
                self.assertRegex(log, r"event=drop reason=unknown-request detail=%s from=%s:5555"
                                 % (re.escape(request), re.escape(CONTROLLER_IP)), name)

    def test_7_shapes(self):
        self.passes("p5_shapes.py")

    def test_8_names(self):
        self.passes("p6_names.py")

    def test_9_long_run_shortened(self):
        self.passes("p7_long_run.py", "--scale", "0.1")

    def test_9z_nothing_unasked(self):
        self.passes("p8_unasked.py", "--seconds", "8")
        self.cluster.check_alive()


if __name__ == "__main__":
    unittest.main()
