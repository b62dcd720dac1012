"""Tests of the dashboard server: STATUS parsing, the cluster state, what it sends and to whom,
and its HTTP endpoints. Fake sockets and fake nodes on loopback; no Docker, no browser (the
browser suite is tests/docker/dashboard.py)."""

import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import dashboard
import raftkit
from raftkit import Peer

#: A node's STATUS reply, byte for byte as the Rust codec test pins it.
NODE_REPLY = (b'{"sender_name": "Node3", "request": "STATUS", "term": 4, "key": "STATUS", "value": '
              b'"role=Follower term=4 voted_for=Node2 leader=Node2 timer_ms=173 heard_ms=23 '
              b'election_ms=150-300"}')


def status(role="Follower", term=1, leader=None, voted=None, timer=100, heard=None):
    return {"role": role, "term": term, "voted_for": voted, "leader": leader,
            "timer_ms": timer, "heard_ms": heard, "election_ms": [150, 300]}


class FakeSocket:
    """Records every datagram; recvfrom times out at once."""

    def __init__(self):
        self.sent = []

    def sendto(self, data, addr):
        self.sent.append((json.loads(data), addr))

    def settimeout(self, _):
        pass

    def recvfrom(self, _):
        raise socket.timeout()


PEERS = [Peer("Node%d" % i, "10.9.0.%d" % i, 5555) for i in range(1, 4)]


def fake_wire():
    wire = dashboard.Wire(PEERS, skt=FakeSocket(), resolve=lambda host, port: (host, port))
    wire.refresh()
    return wire


class StatusParsingTests(unittest.TestCase):
    def test_the_nodes_reply_parses_into_typed_fields(self):
        got = dashboard.parse_status(raftkit.decode(NODE_REPLY))
        self.assertEqual(got, {"role": "Follower", "term": 4, "voted_for": "Node2",
                               "leader": "Node2", "timer_ms": 173, "heard_ms": 23,
                               "election_ms": [150, 300]})

    def test_none_means_absent(self):
        value = ("role=Stopped term=2 voted_for=none leader=none timer_ms=none heard_ms=none "
                 "election_ms=10-20")
        got = dashboard.parse_status({"request": "STATUS", "value": value})
        self.assertEqual((got["voted_for"], got["leader"], got["timer_ms"], got["heard_ms"]),
                         (None, None, None, None))
        self.assertEqual((got["role"], got["term"], got["election_ms"]), ("Stopped", 2, [10, 20]))

    def test_quoted_names_are_unescaped(self):
        value = r'role=Leader term=1 voted_for="a b" leader="q\"d" timer_ms=5 heard_ms=0 election_ms=1-2'
        got = dashboard.parse_status({"request": "STATUS", "value": value})
        self.assertEqual((got["voted_for"], got["leader"]), ("a b", 'q"d'))

    def test_what_is_not_a_status_reply_is_none(self):
        for reply in [{"request": "LEADER_INFO", "value": "role=Leader"},
                      {"request": "STATUS", "value": None},
                      {"request": "STATUS", "value": "role=King term=1"},
                      {"request": "STATUS", "value": 'role=Leader term="1'},
                      {"request": "STATUS", "value": 5}, {}]:
            self.assertIsNone(dashboard.parse_status(reply), reply)


class ClusterStateTests(unittest.TestCase):
    def setUp(self):
        self.s = dashboard.ClusterState(["Node1", "Node2", "Node3"], stale_s=0.5, window_s=10)

    def test_a_node_is_unreachable_until_it_answers_and_once_it_falls_silent(self):
        self.assertFalse(self.s.reachable("Node1", 0.0))
        self.s.observe("Node1", status(), 1.0)
        self.s.end_round(1.0)
        self.assertTrue(self.s.reachable("Node1", 9.0), "the poller stalled: no round missed yet")
        self.s.end_round(1.05)
        self.s.end_round(1.1)
        self.assertTrue(self.s.reachable("Node1", 1.5))
        self.assertFalse(self.s.reachable("Node1", 1.51))
        snap = self.s.snapshot(2.0)["nodes"][0]
        self.assertEqual((snap["reachable"], snap["age_ms"], snap["status"]["role"]),
                         (False, 1000, "Follower"))

    def test_a_card_shows_the_role_a_stopped_node_gives_and_no_answer_for_a_silent_one(self):
        s = self.s
        s.observe("Node1", status("Stopped", term=3, timer=None), 1.0)
        s.observe("Node2", status("Leader", term=4), 1.0)
        s.end_round(1.0)
        shown = {n["name"]: (n["shown"], n["reachable"]) for n in s.snapshot(1.0)["nodes"]}
        self.assertEqual(shown, {"Node1": ("Stopped", True), "Node2": ("Leader", True),
                                 "Node3": ("no answer", False)})
        self.assertEqual(s.leader(1.0), ("Node2", 4), "a stopped node is no leader")
        for t in (1.1, 1.2):
            s.end_round(t)
        shown = {n["name"]: n["shown"] for n in s.snapshot(1.6)["nodes"]}
        self.assertEqual(shown, {"Node1": "no answer", "Node2": "no answer", "Node3": "no answer"},
                         "silence, not the last role, once the node stops answering STATUS")

    def test_a_stopped_leader_leaves_the_timeline(self):
        s = self.s
        for t in (0.0, 0.1):
            s.observe("Node1", status("Leader", term=1), t)
            s.end_round(t)
        s.observe("Node1", status("Stopped", term=1, timer=None), 0.2)
        s.end_round(0.2)
        s.observe("Node1", status("Stopped", term=1, timer=None), 0.3)
        s.observe("Node2", status("Leader", term=2), 0.3)
        s.end_round(0.3)
        self.assertEqual(s.timeline, [["Node1", 1, 0.0, 0.2], [None, None, 0.2, 0.3],
                                      ["Node2", 2, 0.3, 0.3]])

    def test_unknown_names_are_ignored(self):
        self.s.observe("Node9", status("Leader"), 1.0)
        self.assertNotIn("Node9", self.s.last)

    def test_the_leader_is_the_reachable_leader_of_the_highest_term(self):
        self.s.observe("Node1", status("Leader", term=3), 1.0)
        self.s.observe("Node2", status("Leader", term=4), 1.0)
        self.assertEqual(self.s.leader(1.1), ("Node2", 4))
        self.s.end_round(1.0)
        self.s.observe("Node1", status("Leader", term=3), 1.4)
        self.s.end_round(1.4)
        self.s.end_round(1.5)
        self.assertEqual(self.s.leader(1.8), ("Node1", 3), "Node2 fell silent")
        self.assertEqual(self.s.leader(5.0), (None, None))

    def test_timeline_segments_mark_who_led_which_term_and_the_gaps(self):
        s = self.s
        for t in (0.0, 0.1, 0.2):
            s.observe("Node1", status("Leader", term=1), t)
            s.end_round(t)
        s.end_round(0.3)  # Node1 missed one round: it still leads
        s.observe("Node2", status("Candidate", term=2), 0.5)  # Node1 missed two: gone since 0.2
        s.end_round(0.5)
        s.end_round(0.6)
        s.observe("Node2", status("Leader", term=2), 0.8)
        s.end_round(0.8)
        s.observe("Node2", status("Leader", term=2), 1.0)
        s.end_round(1.0)
        self.assertEqual(s.timeline, [["Node1", 1, 0.0, 0.2], [None, None, 0.2, 0.8],
                                      ["Node2", 2, 0.8, 1.0]])
        snap = s.snapshot(1.0)
        self.assertEqual(snap["timeline"][1], {"leader": None, "term": None, "from_s": 0.8,
                                               "to_s": 0.2})
        self.assertEqual((snap["leader"], snap["term"], snap["round"]), ("Node2", 2, 8))
        self.assertTrue(snap["nodes"][0]["reachable"] is False and s.reachable("Node1", 0.7),
                        "the card waits stale_s; the timeline does not")

    def test_timeline_keeps_only_the_window(self):
        s = self.s
        s.end_round(0.0)
        s.observe("Node1", status("Leader", term=1), 5.0)
        s.end_round(5.0)
        s.observe("Node1", status("Leader", term=1), 14.0)
        s.end_round(14.0)
        self.assertEqual([seg[0] for seg in s.timeline], [None, "Node1"])
        s.observe("Node1", status("Leader", term=1), 16.0)
        s.end_round(16.0)
        self.assertEqual(s.timeline, [["Node1", 1, 5.0, 16.0]])

    def test_wait_round_wakes_on_the_next_round(self):
        got = []
        t = threading.Thread(target=lambda: got.append(self.s.wait_round(0, 5.0)))
        t.start()
        self.s.end_round(1.0)
        t.join(5)
        self.assertEqual(got, [1])
        self.assertEqual(self.s.wait_round(1, 0.01), 1, "times out without a new round")


class SendingTests(unittest.TestCase):
    """The dashboard sends STATUS and the course's controller requests, only to the nodes."""

    def test_status_goes_to_every_node_and_only_to_them(self):
        wire = fake_wire()
        state = dashboard.ClusterState([p.name for p in PEERS])
        dashboard.Poller(wire, state, period_s=0.001).round()
        want = raftkit.make_message("STATUS")
        self.assertEqual(wire.skt.sent, [(want, (p.host, 5555)) for p in PEERS])
        self.assertEqual(want["sender_name"], "Controller")

    def test_it_never_holds_controller_5555(self):
        wire = dashboard.Wire(PEERS)
        try:
            self.assertNotEqual(wire.skt.getsockname()[1], raftkit.PORT)
        finally:
            wire.skt.close()

    def test_other_requests_are_refused_before_the_socket(self):
        wire = fake_wire()
        for request in ("LEADER_INFO", "APPEND_RPC", "VOTE_REQUEST", "status"):
            with self.assertRaises(ValueError):
                wire.send("Node1", request)
        self.assertEqual(wire.skt.sent, [])

    def test_a_node_without_an_address_gets_nothing(self):
        def resolve(host, port):
            if host.endswith(".2"):
                raise raftkit.ControllerError("no such host")
            return host, port
        wire = dashboard.Wire(PEERS, skt=FakeSocket(), resolve=resolve)
        wire.refresh()
        self.assertFalse(wire.send("Node2", "TIMEOUT"))
        self.assertFalse(wire.send("Node7", "TIMEOUT"))
        self.assertTrue(wire.send("Node3", "TIMEOUT"))
        self.assertEqual([addr for _, addr in wire.skt.sent], [("10.9.0.3", 5555)])

    def test_buttons_send_the_course_requests_revive_is_convert_follower(self):
        dash = dashboard.Dashboard(PEERS, wire=fake_wire())
        for action, request in [("TIMEOUT", "TIMEOUT"), ("CONVERT_FOLLOWER", "CONVERT_FOLLOWER"),
                                ("SHUTDOWN", "SHUTDOWN"), ("REVIVE", "CONVERT_FOLLOWER")]:
            self.assertEqual(dash.command("Node2", action)[0], 200)
            self.assertEqual(dash.wire.skt.sent[-1],
                             (raftkit.make_message(request), ("10.9.0.2", 5555)))
        n = len(dash.wire.skt.sent)
        for node, action in [("Node9", "TIMEOUT"), ("Node1", "LEADER_INFO"), ("Node1", None),
                             (["Node1"], "TIMEOUT"), ("Node1", "timeout")]:
            self.assertEqual(dash.command(node, action)[0], 400, (node, action))
        self.assertEqual(len(dash.wire.skt.sent), n, "nothing was sent for a bad command")


class FakeStatusNode:
    """A UDP socket on loopback answering STATUS as a node would, under a name of our choice."""

    def __init__(self, host, answer_as, role="Leader"):
        self.skt = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.skt.bind((host, 0))
        self.skt.settimeout(0.05)
        self.answer_as, self.role, self.stop = answer_as, role, False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.stop:
            try:
                data, src = self.skt.recvfrom(2048)
            except socket.timeout:
                continue
            if json.loads(data).get("request") == "STATUS":
                value = ("role=%s term=7 voted_for=none leader=none timer_ms=9 heard_ms=none "
                         "election_ms=150-300" % self.role)
                reply = {"sender_name": self.answer_as, "request": "STATUS", "term": 7,
                         "key": "STATUS", "value": value}
                self.skt.sendto(json.dumps(reply).encode(), src)

    def close(self):
        self.stop = True
        self.thread.join()
        self.skt.close()


class PollerOverUdpTests(unittest.TestCase):
    def test_answers_count_only_from_the_nodes_address_under_its_own_name(self):
        good = FakeStatusNode("127.0.0.1", "Node1")
        liar = FakeStatusNode("127.0.0.1", "Node3")  # sits at Node2's address, says Node3
        try:
            peers = [Peer("Node1", "127.0.0.1", good.skt.getsockname()[1]),
                     Peer("Node2", "127.0.0.1", liar.skt.getsockname()[1]),
                     Peer("Node3", "127.0.0.1", 9)]  # nobody there
            wire = dashboard.Wire(peers)
            wire.refresh()
            state = dashboard.ClusterState([p.name for p in peers])
            poller = dashboard.Poller(wire, state, period_s=0.2)
            poller.round()
            now = time.monotonic()
            self.assertTrue(state.reachable("Node1", now))
            self.assertEqual(state.last["Node1"]["term"], 7)
            self.assertFalse(state.reachable("Node2", now))
            self.assertFalse(state.reachable("Node3", now))
            self.assertEqual(state.timeline[-1][:2], ["Node1", 7])
        finally:
            good.close()
            liar.close()
            wire.skt.close()


class HttpTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dash = dashboard.Dashboard(PEERS, period_s=0.02, wire=fake_wire())
        cls.httpd = dashboard.serve(cls.dash, ("127.0.0.1", 0))
        cls.port = cls.httpd.server_address[1]
        cls.dash.poller.wire.refresh = lambda: None
        cls.dash.start()
        threading.Thread(target=cls.httpd.serve_forever, daemon=True).start()

    @classmethod
    def tearDownClass(cls):
        cls.dash.stop()
        cls.httpd.shutdown()
        cls.httpd.server_close()

    def request(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        conn.close()
        return r.status, r.getheader("Content-Type"), data

    def post(self, body, **headers):
        h = {"Content-Type": "application/json"}
        h.update({k.replace("_", "-"): v for k, v in headers.items()})
        return self.request("POST", "/command", json.dumps(body), h)

    def test_the_page_and_the_state(self):
        code, ctype, page = self.request("GET", "/")
        self.assertEqual((code, ctype), (200, "text/html; charset=utf-8"))
        self.assertIn(b'new EventSource("/events")', page)
        self.assertNotIn(b"http://", page.replace(b"http://www.w3.org/2000/svg", b""),
                         "the page loads nothing from elsewhere")
        code, _, body = self.request("GET", "/state")
        snap = json.loads(body)
        self.assertEqual([n["name"] for n in snap["nodes"]], ["Node1", "Node2", "Node3"])
        self.assertEqual(self.request("GET", "/nothing")[0], 404)

    def test_the_playground_is_served_beside_the_dashboard(self):
        code, ctype, page = self.request("GET", "/playground")
        self.assertEqual((code, ctype), (200, "text/html; charset=utf-8"))
        with open(dashboard.PLAYGROUND, "rb") as f:
            self.assertEqual(page, f.read())
        self.assertIn(b"const WASM_GZ_BASE64", page)
        self.assertNotIn(b"http://", page.replace(b"http://www.w3.org/2000/svg", b""),
                         "the playground loads nothing from elsewhere")

    def test_events_stream_one_snapshot_per_round(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        conn.request("GET", "/events")
        r = conn.getresponse()
        self.assertEqual(r.getheader("Content-Type"), "text/event-stream")
        rounds = []
        while len(rounds) < 3:
            line = r.fp.readline()
            if line.startswith(b"data: "):
                rounds.append(json.loads(line[6:])["round"])
        conn.close()
        self.assertEqual(rounds, sorted(set(rounds)), "each event is a newer round")

    def test_a_button_press_sends_one_request_to_that_node(self):
        n = len(self.dash.wire.skt.sent)
        code, _, body = self.post({"node": "Node3", "action": "SHUTDOWN"})
        self.assertEqual((code, json.loads(body)["message"]), (200, "sent SHUTDOWN to Node3"))
        shutdowns = [s for s in self.dash.wire.skt.sent[n:] if s[0]["request"] != "STATUS"]
        self.assertEqual(shutdowns, [(raftkit.make_message("SHUTDOWN"), ("10.9.0.3", 5555))])

    def test_cross_site_and_rebinding_requests_are_refused(self):
        n = len([s for s in self.dash.wire.skt.sent if s[0]["request"] != "STATUS"])
        body = {"node": "Node1", "action": "SHUTDOWN"}
        self.assertEqual(self.request("POST", "/command", "node=Node1",
                                      {"Content-Type": "application/x-www-form-urlencoded"})[0], 403)
        self.assertEqual(self.post(body, Origin="http://evil.example")[0], 403)
        self.assertEqual(self.post(body, Host="evil.example:8080")[0], 403)
        self.assertEqual(self.request("GET", "/", headers={"Host": "evil.example"})[0], 421)
        self.assertEqual(self.post("not an object")[0], 400)
        sent = [s for s in self.dash.wire.skt.sent if s[0]["request"] != "STATUS"]
        self.assertEqual(len(sent), n, "nothing was sent")
        origin = "http://127.0.0.1:%d" % self.port
        self.assertEqual(self.post({"node": "Node1", "action": "TIMEOUT"}, Origin=origin)[0], 200)

    def test_host_allowed(self):
        for host in ("localhost:8080", "127.0.0.1", "[::1]:8080", "10.0.0.5:80", "Raft.Lab"):
            self.assertTrue(dashboard.host_allowed(host, ["raft.lab"]), host)
        for host in (None, "", "evil.example", "127.0.0.1.evil.example:80"):
            self.assertFalse(dashboard.host_allowed(host, ["raft.lab"]), host)


WAITER = r"""
import json, os, sys, time, urllib.request
url = "http://127.0.0.1:%s/state" % os.environ["DASHBOARD_PORT"]
for _ in range(40):
    try:
        nodes = json.load(urllib.request.urlopen(url, timeout=1))["nodes"]
        print("args", sys.argv[1:], "nodes", [n["name"] for n in nodes])
        sys.exit(3)
    except OSError:
        time.sleep(0.05)
sys.exit(1)
"""


class WithDashboardTests(unittest.TestCase):
    """with_dashboard.py SCRIPT: the dashboard serves while SCRIPT runs as the main program."""

    def run_with(self, env_extra):
        here = os.path.dirname(os.path.abspath(__file__))
        with tempfile.TemporaryDirectory() as tmp:
            script = os.path.join(tmp, "waiter.py")
            with open(script, "w") as f:
                f.write(WAITER)
            env = dict(os.environ, PEERS="Node1=127.0.0.1:9,Node2=127.0.0.1:9", **env_extra)
            env["PYTHONPATH"] = here + os.pathsep + env.get("PYTHONPATH", "")
            return subprocess.run([sys.executable, os.path.join(here, "with_dashboard.py"),
                                   script, "a", "b"], env=env, capture_output=True, text=True,
                                  timeout=30)

    def test_the_script_runs_with_its_arguments_and_exit_status_beside_the_dashboard(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        p = self.run_with({"DASHBOARD_PORT": str(port)})
        self.assertEqual(p.returncode, 3, p.stderr)
        self.assertEqual(p.stdout.strip(), "args ['a', 'b'] nodes ['Node1', 'Node2']")

    def test_a_dashboard_that_cannot_start_leaves_the_script_running(self):
        with socket.socket() as taken:  # bound, not listening: connections are refused at once
            taken.bind(("127.0.0.1", 0))
            port = taken.getsockname()[1]
            p = self.run_with({"DASHBOARD_PORT": str(port), "DASHBOARD_POLL_MS": "5"})
        self.assertEqual(p.returncode, 1, "the waiter found no dashboard and said so")
        self.assertIn("dashboard", p.stderr)


if __name__ == "__main__":
    unittest.main()
