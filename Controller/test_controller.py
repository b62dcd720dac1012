"""Tests for the controller scripts.

Run from the repository root::

    python3 -m unittest discover -s Controller -p 'test_*.py' -v

Most tests talk to fake nodes: UDP sockets on loopback, served by a thread, that record
every datagram and answer LEADER_INFO like a node does.  ``RealClusterTests`` starts five
real nodes and runs only when ``RAFT_BIN`` names the node executable.
"""

import contextlib
import errno
import functools
import io
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from unittest import mock

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import controller  # noqa: E402
import status  # noqa: E402

#: Upper bound for anything that must happen (a reply that will come, a script that will end).
PATIENCE = 10.0
#: Reply timeout for cases where no reply will ever come.
SHORT = 0.2


def reference_bytes(request, template=controller.TEMPLATE_PATH):
    """The datagram the course reference controller sends for ``request``."""
    with open(template) as f:
        msg = json.load(f)
    msg["sender_name"] = "Controller"
    msg["request"] = request
    return json.dumps(msg).encode("utf-8")


def expected_bytes(request, term=None, key=None, value=None):
    """The five fields in wire order, serialised with ``json.dumps``."""
    msg = {
        "sender_name": "Controller",
        "request": request,
        "term": term,
        "key": key,
        "value": value,
    }
    return json.dumps(msg).encode("utf-8")


class FakeNode:
    """A UDP socket on loopback, served by a thread, that behaves like a node.

    Records every datagram as ``(bytes, source address)``.  Answers LEADER_INFO with
    ``{"sender_name": name, "request": "LEADER_INFO", "term": term, "key": "LEADER",
    "value": leader}`` unless ``silent``; ``noise`` datagrams are sent first.
    """

    def __init__(self, name, leader=None, term=1, host="127.0.0.1", port=0, silent=False,
                 noise=(), reply_name=None):
        self.name = name
        self.leader = leader
        self.term = term
        self.silent = silent
        self.noise = list(noise)
        self.reply_name = name if reply_name is None else reply_name
        self.received = []
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self.sock.bind((host, port))
            self.sock.settimeout(0.05)
        except OSError:
            self.sock.close()
            raise
        self.host, self.port = self.sock.getsockname()[:2]
        self._thread = threading.Thread(target=self._serve, name="fake-" + name, daemon=True)
        self._thread.start()

    @property
    def peer(self):
        """This node as a ``Name=host:port`` PEERS entry."""
        return "%s=%s:%d" % (self.name, self.host, self.port)

    def _serve(self):
        while not self._stop.is_set():
            try:
                data, addr = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            with self._cond:
                self.received.append((data, addr))
                self._cond.notify_all()
            msg = controller.decode(data)
            if self.silent or not msg or msg.get("request") != "LEADER_INFO":
                continue
            reply = {
                "sender_name": self.reply_name,
                "request": "LEADER_INFO",
                "term": self.term,
                "key": "LEADER",
                "value": self.leader,
            }
            try:
                for datagram in self.noise:
                    self.sock.sendto(datagram, addr)
                self.sock.sendto(json.dumps(reply).encode("utf-8"), addr)
            except OSError:
                pass

    def wait_for(self, count=1, timeout=PATIENCE):
        """Wait until ``count`` datagrams arrived (or ``timeout``); return all received."""
        with self._cond:
            self._cond.wait_for(lambda: len(self.received) >= count, timeout)
            return list(self.received)

    def close(self):
        """Stop the thread and close the socket."""
        self._stop.set()
        try:
            self.sock.sendto(b"", (self.host, self.port))  # wake the thread up
        except OSError:
            pass
        self._thread.join(PATIENCE)
        self.sock.close()


def run_script(script, *args):
    """Run ``Controller/<script>`` with this interpreter; the completed process."""
    return subprocess.run(
        [sys.executable, os.path.join(HERE, script)] + [str(a) for a in args],
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        universal_newlines=True,
        timeout=60,
    )


def call_main(main, *args, **kwargs):
    """Run a ``main(argv)`` in-process; ``(exit status, stdout, stderr)``."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in args], **kwargs)
        except SystemExit as e:
            code = e.code
    return code, out.getvalue(), err.getvalue()


class FakeNodeTestCase(unittest.TestCase):
    """Gives each test a ``fake()`` factory whose nodes are closed afterwards."""

    def fake(self, *args, **kwargs):
        node = FakeNode(*args, **kwargs)
        self.addCleanup(node.close)
        return node


# ---- messages and parsing -------------------------------------------------------------------


class MessageTests(unittest.TestCase):
    def test_template_is_the_repository_message_json(self):
        self.assertTrue(os.path.isfile(controller.TEMPLATE_PATH), controller.TEMPLATE_PATH)
        self.assertEqual(list(controller.load_template()), list(controller.FIELDS))

    def test_message_matches_the_reference_controller(self):
        for request in controller.REQUESTS:
            msg = controller.make_message(request)
            self.assertEqual(controller.encode(msg), reference_bytes(request))
            self.assertEqual(controller.encode(msg), expected_bytes(request))

    def test_optional_fields(self):
        msg = controller.make_message("timeout", term=7, key="k", value="v")
        self.assertEqual(controller.encode(msg), expected_bytes("TIMEOUT", 7, "k", "v"))
        msg = controller.make_message("LEADER_INFO", sender="Tester")
        self.assertEqual(msg["sender_name"], "Tester")

    def test_template_file_is_used(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "Message.json")
            with open(path, "w") as f:
                json.dump(dict.fromkeys(reversed(controller.FIELDS)), f)
            with mock.patch.object(controller, "TEMPLATE_PATH", path):
                msg = controller.make_message("SHUTDOWN")
            self.assertEqual(controller.encode(msg), reference_bytes("SHUTDOWN", path))
        self.assertEqual(list(msg), list(reversed(controller.FIELDS)))

    def test_missing_or_bad_template_falls_back_to_five_nulls(self):
        with tempfile.TemporaryDirectory() as tmp:
            cases = {
                "missing.json": None,
                "broken.json": "{not json",
                "list.json": "[]",
                "extra.json": json.dumps(dict.fromkeys(controller.FIELDS + ("extra",))),
                "short.json": json.dumps(dict.fromkeys(controller.FIELDS[:4])),
            }
            for name, text in cases.items():
                path = os.path.join(tmp, name)
                if text is not None:
                    with open(path, "w") as f:
                        f.write(text)
                with self.subTest(template=name):
                    self.assertEqual(
                        controller.load_template(path), dict.fromkeys(controller.FIELDS)
                    )

    def test_request_names_are_case_and_dash_insensitive(self):
        for spelling in ("leader_info", "LEADER_INFO", "leader-info", " Leader-Info "):
            self.assertEqual(controller.normalize_request(spelling), "LEADER_INFO")
        for bad in ("", "   ", "leader info"):
            with self.assertRaises(ValueError):
                controller.normalize_request(bad)

    def test_the_wire_carries_the_exact_constant(self):
        for spelling in ("leader-info", "convert_follower", "Timeout", "SHUTDOWN"):
            msg = controller.make_message(spelling, "Controller")
            self.assertIn(msg["request"], controller.REQUESTS, spelling)
            self.assertEqual(msg["request"], msg["request"].upper())
        reply = {"sender_name": "Node1", "request": "LEADER_INFO", "term": 1, "key": "LEADER",
                 "value": "Node1"}
        self.assertTrue(controller.is_reply_to(reply, "LEADER_INFO"))
        for near in ("leader_info", "Leader_Info", " LEADER_INFO", "LEADER-INFO", None, 5):
            self.assertFalse(controller.is_reply_to(dict(reply, request=near), "LEADER_INFO"), near)

    def test_decode(self):
        self.assertEqual(controller.decode(b'{"a": 1}'), {"a": 1})
        for junk in (b"", b"not json", b"[1, 2]", b"\xff\xfe", b'"text"'):
            self.assertIsNone(controller.decode(junk), junk)

    def test_parse_hostport(self):
        parse = controller.parse_hostport
        self.assertEqual(parse("Controller:5555"), ("Controller", 5555))
        self.assertEqual(parse("127.0.0.1:0"), ("127.0.0.1", 0))
        self.assertEqual(parse(":6000"), ("", 6000))
        self.assertEqual(parse("6000"), ("", 6000))
        self.assertEqual(parse("Controller"), ("Controller", 0))
        for bad in ("", "host:", "host:x", "host:70000", "host:-1"):
            with self.assertRaises(ValueError, msg=bad):
                parse(bad)

    def test_parse_peers(self):
        peers = controller.parse_peers(" Node1=127.0.0.11:5555, Node2 ,Node3=10.0.0.3,", 6000)
        self.assertEqual(
            peers,
            [
                controller.Peer("Node1", "127.0.0.11", 5555),
                controller.Peer("Node2", "Node2", 6000),
                controller.Peer("Node3", "10.0.0.3", 6000),
            ],
        )
        for bad in ("", ",", "=1.2.3.4:5", "A,A", "A=h:0", "A=h:x"):
            with self.assertRaises(ValueError, msg=bad):
                controller.parse_peers(bad)

    def test_default_peers(self):
        self.assertEqual(
            controller.default_peers(2),
            [controller.Peer("Node1", "Node1", 5555), controller.Peer("Node2", "Node2", 5555)],
        )


# ---- the library against fake nodes ---------------------------------------------------------


class SendTests(FakeNodeTestCase):
    def test_fire_and_forget_sends_the_reference_bytes(self):
        for request in ("CONVERT_FOLLOWER", "TIMEOUT", "SHUTDOWN"):
            with self.subTest(request=request):
                node = self.fake("Node1")
                result = controller.send(request.lower(), "Node1", host=node.host, port=node.port)
                self.assertIsNone(result)
                (data, _src), = node.wait_for(1)
                self.assertEqual(data, reference_bytes(request))
                self.assertEqual(data, expected_bytes(request))

    def test_leader_info_reply_is_decoded(self):
        node = self.fake("Node2", leader="Node4", term=9)
        reply = controller.leader_info("Node2", host=node.host, port=node.port, timeout=PATIENCE)
        self.assertEqual(
            reply,
            {"sender_name": "Node2", "request": "LEADER_INFO", "term": 9, "key": "LEADER",
             "value": "Node4"},
        )
        (data, _src), = node.wait_for(1)
        self.assertEqual(data, reference_bytes("LEADER_INFO"))

    def test_null_leader(self):
        node = self.fake("Node2", leader=None)
        reply = controller.leader_info("Node2", host=node.host, port=node.port, timeout=PATIENCE)
        self.assertIsNone(reply["value"])

    def test_junk_and_unrelated_datagrams_are_skipped(self):
        noise = [b"garbage", b"[]", json.dumps({"request": "APPEND_RPC"}).encode()]
        node = self.fake("Node3", leader="Node3", noise=noise)
        reply = controller.leader_info("Node3", host=node.host, port=node.port, timeout=PATIENCE)
        self.assertEqual(reply["value"], "Node3")

    def test_no_reply_returns_none(self):
        node = self.fake("Node1", silent=True)
        self.assertIsNone(
            controller.leader_info("Node1", host=node.host, port=node.port, timeout=SHORT)
        )
        node.wait_for(1)

    def test_bind_sets_the_source_address(self):
        node = self.fake("Node1")
        controller.send("TIMEOUT", "Node1", host=node.host, port=node.port,
                        bind=("127.0.0.1", 0))
        (_data, src), = node.wait_for(1)
        self.assertEqual(src[0], "127.0.0.1")

    def test_errors_raise_controller_error(self):
        with self.assertRaises(controller.ControllerError):
            controller.send("TIMEOUT", "Node1", host="no-such-host.invalid")
        with self.assertRaises(controller.ControllerError):
            controller.send("TIMEOUT", "Node1", host="127.0.0.1", bind=("no-such-host.invalid", 0))

    def test_query_all_one_socket_many_nodes(self):
        nodes = [self.fake("Node%d" % i, leader="Node2", term=3) for i in (1, 2, 3)]
        stranger = self.fake("Node4", leader="Node2", term=3, reply_name="SomeoneElse")
        peers = controller.parse_peers(",".join(n.peer for n in nodes + [stranger]))
        answers = controller.query_all(peers, timeout=PATIENCE)
        self.assertEqual([a.peer for a in answers], peers)
        by_name = {a.peer.name: a for a in answers}
        for name in ("Node1", "Node2", "Node3"):
            self.assertEqual(by_name[name].reply["sender_name"], name)
        # Matched by source address when the sender name is unknown.
        self.assertEqual(by_name["Node4"].reply["sender_name"], "SomeoneElse")
        sources = {n.wait_for(1)[0][1] for n in nodes + [stranger]}
        self.assertEqual(len(sources), 1, "expected every datagram from one socket")

    def test_query_all_silent_nodes(self):
        nodes = [self.fake("Node%d" % i, silent=True) for i in (1, 2)]
        peers = controller.parse_peers(",".join(n.peer for n in nodes))
        answers = controller.query_all(peers, timeout=SHORT)
        self.assertEqual(answers, [controller.Answer(p) for p in peers])
        for node in nodes:
            node.wait_for(1)

    def test_query_all_reports_unresolvable_peers(self):
        node = self.fake("Node1", leader="Node1")
        peers = [controller.Peer("Node1", node.host, node.port),
                 controller.Peer("Node2", "no-such-host.invalid", 5555)]
        one, two = controller.query_all(peers, timeout=PATIENCE)
        self.assertEqual(one.reply["value"], "Node1")
        self.assertIsNone(two.reply)
        self.assertIn("resolve", two.error)


# ---- the command line -----------------------------------------------------------------------


class CliTests(FakeNodeTestCase):
    def test_leader_info_prints_one_json_line(self):
        node = self.fake("Node1", leader="Node3", term=4)
        for script, args in (("controller.py", ["leader-info"]),
                             ("controller.py", ["LEADER_INFO"]),
                             ("leader_info.py", [])):
            with self.subTest(script=script, args=args):
                proc = run_script(script, *args, "Node1", "--host", node.host,
                                  "--port", node.port, "--timeout", PATIENCE)
                self.assertEqual(proc.returncode, 0, proc.stderr)
                lines = proc.stdout.splitlines()
                self.assertEqual(len(lines), 1, proc.stdout)
                self.assertEqual(
                    json.loads(lines[0]),
                    {"sender_name": "Node1", "request": "LEADER_INFO", "term": 4,
                     "key": "LEADER", "value": "Node3"},
                )
        for data, _src in node.wait_for(3):
            self.assertEqual(data, reference_bytes("LEADER_INFO"))

    def test_per_request_scripts_send_the_reference_bytes(self):
        for script, request in (("convert_follower.py", "CONVERT_FOLLOWER"),
                                ("timeout.py", "TIMEOUT"),
                                ("shutdown.py", "SHUTDOWN")):
            with self.subTest(script=script):
                node = self.fake("Node2")
                proc = run_script(script, "Node2", "--host", node.host, "--port", node.port)
                self.assertEqual(proc.returncode, 0, proc.stderr)
                self.assertEqual(proc.stdout, "")
                self.assertIn(request, proc.stderr)
                (data, _src), = node.wait_for(1)
                self.assertEqual(data, reference_bytes(request))

    def test_generic_script_and_field_options(self):
        node = self.fake("Node2")
        proc = run_script("controller.py", "timeout", "Node2", "--host", node.host,
                          "--port", node.port, "--term", 12, "--key", "k", "--value", "v")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        (data, _src), = node.wait_for(1)
        self.assertEqual(data, expected_bytes("TIMEOUT", 12, "k", "v"))

    def test_bind_option(self):
        node = self.fake("Node1")
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        finally:
            probe.close()
        code, _out, err = call_main(controller.main, "Node1", "--host", node.host,
                                    "--port", node.port, "--bind", "127.0.0.1:%d" % port,
                                    request="SHUTDOWN")
        self.assertEqual(code, 0, err)
        (_data, src), = node.wait_for(1)
        self.assertEqual(src[:2], ("127.0.0.1", port))

    def test_default_port_is_5555(self):
        host = "127.0.0.%d" % random.randint(200, 250)
        try:
            node = self.fake("Node1", leader="Node1", host=host, port=5555)
        except OSError as e:
            self.skipTest("cannot bind %s:5555: %s" % (host, e))
        code, out, err = call_main(controller.main, "leader_info", "Node1", "--host", host,
                                   "--timeout", PATIENCE)
        self.assertEqual(code, 0, err)
        self.assertEqual(json.loads(out)["value"], "Node1")

    def test_timeout_exits_1_with_a_clear_message(self):
        node = self.fake("Node1", silent=True)
        proc = run_script("leader_info.py", "Node1", "--host", node.host, "--port", node.port,
                          "--timeout", SHORT)
        self.assertEqual(proc.returncode, 1)
        self.assertEqual(proc.stdout, "")
        self.assertIn("no LEADER_INFO reply from Node1 (%s:%d)" % (node.host, node.port),
                      proc.stderr)
        self.assertIn("within 0.2 s", proc.stderr)

    def test_unresolvable_host_exits_1(self):
        code, out, err = call_main(controller.main, "Node1", "--host", "no-such-host.invalid",
                                   request="TIMEOUT")
        self.assertEqual(code, 1)
        self.assertIn("cannot resolve 'no-such-host.invalid'", err)

    def test_argument_errors_exit_2_with_usage(self):
        cases = [
            [],
            ["leader_info"],
            ["no_such_request", "Node1"],
            ["leader info", "Node1"],
            ["timeout", ""],
            ["timeout", "Node1", "--port", "0"],
            ["timeout", "Node1", "--port", "70000"],
            ["timeout", "Node1", "--port", "x"],
            ["timeout", "Node1", "--timeout", "0"],
            ["timeout", "Node1", "--timeout", "-1"],
            ["timeout", "Node1", "--timeout", "nan"],
            ["timeout", "Node1", "--bind", "host:x"],
            ["timeout", "Node1", "--term", "-1"],
            ["timeout", "Node1", "--bogus"],
        ]
        for args in cases:
            with self.subTest(args=args):
                code, out, err = call_main(controller.main, *args)
                self.assertEqual(code, 2)
                self.assertIn("usage:", err)
                self.assertEqual(out, "")

    def test_argument_errors_in_scripts(self):
        for script in ("leader_info.py", "convert_follower.py", "timeout.py", "shutdown.py",
                       "controller.py"):
            with self.subTest(script=script):
                proc = run_script(script)
                self.assertEqual(proc.returncode, 2)
                self.assertIn("usage:", proc.stderr)

    def test_help(self):
        proc = run_script("timeout.py", "--help")
        self.assertEqual(proc.returncode, 0)
        self.assertIn("--bind", proc.stdout)


# ---- status.py ------------------------------------------------------------------------------


class StatusTests(FakeNodeTestCase):
    def peers(self, *nodes):
        return ",".join(n.peer for n in nodes)

    def test_agreement_exits_0(self):
        nodes = [self.fake("Node%d" % i, leader="Node2", term=3) for i in (1, 2, 3)]
        code, out, err = call_main(status.main, "--peers", self.peers(*nodes),
                                   "--timeout", PATIENCE)
        self.assertEqual(code, 0, out + err)
        lines = out.splitlines()
        self.assertEqual(lines[0].split(), ["NODE", "ADDRESS", "LEADER", "TERM"])
        for i, node in enumerate(nodes, 1):
            self.assertEqual(lines[i].split(),
                             ["Node%d" % i, "%s:%d" % (node.host, node.port), "Node2", "3"])
        self.assertEqual(lines[-1], "leader: Node2 (term 3), agreed by all 3 nodes")
        for node in nodes:
            (data, _src), = node.wait_for(1)
            self.assertEqual(data, reference_bytes("LEADER_INFO"))

    def test_a_silent_node_exits_1(self):
        one = self.fake("Node1", leader="Node1", term=2)
        two = self.fake("Node2", silent=True)
        # One node must answer within the timeout while the other stays silent: allow
        # a loaded machine a whole second for that.
        code, out, _err = call_main(status.main, "--peers", self.peers(one, two),
                                    "--timeout", 1.0)
        self.assertEqual(code, 1)
        self.assertRegex(out, r"Node2\s+\S+\s+no answer\s+-")
        self.assertIn("no agreement: 1/2 nodes answered; leaders reported: Node1 x1", out)

    def test_disagreement_exits_1(self):
        one = self.fake("Node1", leader="Node1", term=2)
        two = self.fake("Node2", leader="Node2", term=3)
        code, out, _err = call_main(status.main, "--peers", self.peers(one, two),
                                    "--timeout", PATIENCE)
        self.assertEqual(code, 1)
        self.assertIn("no agreement: 2/2 nodes answered; leaders reported: Node1 x1, Node2 x1",
                      out)

    def test_null_leader_exits_1(self):
        nodes = [self.fake("Node%d" % i, leader=None, term=5) for i in (1, 2)]
        code, out, _err = call_main(status.main, "--peers", self.peers(*nodes),
                                    "--timeout", PATIENCE)
        self.assertEqual(code, 1)
        self.assertRegex(out, r"Node1\s+\S+\s+\(none\)\s+5")
        self.assertIn("leaders reported: (none) x2", out)

    def test_table_and_summary(self):
        peers = controller.parse_peers("Node1=10.0.0.1:5555,Node2=10.0.0.2:5555,Node3")
        reply = {"sender_name": "Node1", "request": "LEADER_INFO", "term": 7, "key": "LEADER",
                 "value": "Node1"}
        answers = [controller.Answer(peers[0], reply=reply),
                   controller.Answer(peers[1]),
                   controller.Answer(peers[2], error="cannot resolve 'Node3'")]
        self.assertEqual(
            status.format_table(answers).splitlines(),
            [
                "NODE   ADDRESS        LEADER                              TERM",
                "Node1  10.0.0.1:5555  Node1                               7",
                "Node2  10.0.0.2:5555  no answer                           -",
                "Node3  Node3:5555     no answer (cannot resolve 'Node3')  -",
            ],
        )
        self.assertIsNone(status.agreed_leader(answers))
        self.assertEqual(status.summary(answers),
                         "no agreement: 1/3 nodes answered; leaders reported: Node1 x1")
        self.assertEqual(status.agreed_leader(answers[:1]), "Node1")
        self.assertEqual(status.summary(answers[:1]),
                         "leader: Node1 (term 7), agreed by all 1 nodes")
        self.assertIsNone(status.agreed_leader([]))

    def test_bind_failure_exits_1(self):
        code, out, err = call_main(status.main, "--peers", "Node1=127.0.0.1:5555",
                                   "--bind", "no-such-host.invalid:0")
        self.assertEqual(code, 1)
        self.assertEqual(out, "")
        self.assertIn("cannot bind no-such-host.invalid:0", err)

    def test_as_a_script(self):
        nodes = [self.fake("Node%d" % i, leader="Node1", term=1) for i in (1, 2)]
        proc = run_script("status.py", "--peers", self.peers(*nodes), "--timeout", PATIENCE)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        self.assertIn("leader: Node1 (term 1), agreed by all 2 nodes", proc.stdout)

    def test_nodes_option_names_node1_to_noden(self):
        with mock.patch.object(controller, "query_all", return_value=[]) as query:
            call_main(status.main, "--nodes", 3, "--port", 6000, "--timeout", SHORT)
        peers = query.call_args[0][0]
        self.assertEqual(peers, [controller.Peer("Node%d" % i, "Node%d" % i, 6000)
                                 for i in (1, 2, 3)])
        with mock.patch.object(controller, "query_all", return_value=[]) as query:
            call_main(status.main)
        self.assertEqual(len(query.call_args[0][0]), 5)

    def test_argument_errors_exit_2(self):
        for args in (["--nodes", "0"], ["--nodes", "x"], ["--peers", ""],
                     ["--peers", "A,A"], ["--nodes", "2", "--peers", "Node1"],
                     ["--timeout", "0"], ["extra"]):
            with self.subTest(args=args):
                code, _out, err = call_main(status.main, *args)
                self.assertEqual(code, 2)
                self.assertIn("usage:", err)


# ---- a real cluster -------------------------------------------------------------------------

RAFT_BIN = os.path.abspath(os.environ["RAFT_BIN"]) if os.environ.get("RAFT_BIN") else ""
CLUSTER = [("Node%d" % i, "127.0.0.%d" % (10 + i)) for i in range(1, 6)]
PEERS = ",".join("%s=%s:%d" % (name, ip, controller.PORT) for name, ip in CLUSTER)
#: Seconds allowed for a cluster to settle on a leader.
ELECTION_PATIENCE = 10.0
#: Seconds allowed for a forced election (TIMEOUT) to take effect.
TAKEOVER_PATIENCE = 5.0
#: Seconds between LEADER_INFO polls.
POLL_INTERVAL = 0.05


def cluster_skip_reason():
    """Why the real-cluster tests cannot run here, or ``None``."""
    if not RAFT_BIN:
        return "RAFT_BIN is not set; point it at the node executable to run real-cluster tests"
    if not (os.path.isfile(RAFT_BIN) and os.access(RAFT_BIN, os.X_OK)):
        # Set but wrong is a broken test setup, not a reason to skip quietly.
        raise AssertionError("RAFT_BIN=%r is not an executable file" % RAFT_BIN)
    for _name, ip in CLUSTER:
        skt = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            skt.bind((ip, 0))
        except OSError as e:
            return "cannot bind %s (loopback beyond 127.0.0.1 needs Linux): %s" % (ip, e)
        finally:
            skt.close()
    return None


def dump_logs_on_failure(test):
    """Decorator: print the node logs when the test fails."""

    @functools.wraps(test)
    def wrapper(self, *args, **kwargs):
        try:
            return test(self, *args, **kwargs)
        except unittest.SkipTest:
            raise
        except BaseException:
            self.dump_logs()
            raise

    return wrapper


class RealClusterTests(unittest.TestCase):
    """Five real nodes on 127.0.0.11..15:5555, driven through the scripts."""

    @classmethod
    def setUpClass(cls):
        reason = cluster_skip_reason()
        if reason:
            raise unittest.SkipTest(reason)

    def setUp(self):
        self.procs = {}
        self.logs = {}
        tmp = tempfile.TemporaryDirectory(prefix="raft-cluster-")
        self.addCleanup(tmp.cleanup)
        self.addCleanup(self.stop_cluster)
        self.tmp = tmp.name
        try:
            self.start_cluster()
            self.leader, answers = self.wait_for_agreement(ELECTION_PATIENCE)
        except unittest.SkipTest:
            raise
        except BaseException:
            self.dump_logs()
            raise
        self.term = max(a.reply["term"] for a in answers)

    # ---- cluster management

    def start_cluster(self):
        for _name, ip in CLUSTER:
            skt = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                skt.bind((ip, controller.PORT))
            except OSError as e:
                if e.errno == errno.EADDRINUSE:
                    self.fail("%s:%d is already in use; is another cluster running?"
                              % (ip, controller.PORT))
                raise
            finally:
                skt.close()
        for name, _ip in CLUSTER:
            data_dir = os.path.join(self.tmp, name)
            os.mkdir(data_dir)
            log_path = os.path.join(self.tmp, name + ".log")
            env = dict(
                os.environ,
                NODE_NAME=name,
                PEERS=PEERS,
                ELECTION_TIMEOUT_MS="150-300",
                HEARTBEAT_MS="50",
                DATA_DIR=data_dir,
            )
            with open(log_path, "wb") as log:
                self.procs[name] = subprocess.Popen(
                    [RAFT_BIN, "node"], env=env, stdin=subprocess.DEVNULL, stdout=log,
                    stderr=subprocess.STDOUT,
                )
            self.logs[name] = log_path

    def stop_cluster(self):
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
        for proc in self.procs.values():
            try:
                proc.wait(PATIENCE)
            except subprocess.TimeoutExpired:
                pass

    def dump_logs(self, lines=200):
        for name, path in sorted(self.logs.items()):
            try:
                with open(path, errors="replace") as f:
                    tail = f.readlines()[-lines:]
            except OSError as e:
                tail = ["(cannot read %s: %s)\n" % (path, e)]
            proc = self.procs.get(name)
            if proc is None:
                state = "not started"
            elif proc.poll() is None:
                state = "running"
            else:
                state = "exit status %s" % proc.returncode
            sys.stderr.write("\n----- %s log (%s, last %d lines) -----\n" % (name, state, lines))
            sys.stderr.writelines(tail)
        sys.stderr.flush()

    def check_alive(self):
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                self.fail("%s exited with status %s" % (name, proc.returncode))

    # ---- observing the cluster

    def peers(self, names=None):
        ip = dict(CLUSTER)
        return [controller.Peer(n, ip[n], controller.PORT) for n in (names or ip)]

    def wait_for(self, names, patience, accept, what):
        """Poll LEADER_INFO of ``names`` until ``accept(answers)``; return the answers."""
        deadline = time.monotonic() + patience
        while True:
            self.check_alive()
            answers = controller.query_all(self.peers(names), timeout=0.25)
            if accept(answers):
                return answers
            if time.monotonic() >= deadline:
                self.fail("after %g s, still waiting for %s; last answers:\n%s"
                          % (patience, what, status.format_table(answers)))
            time.sleep(POLL_INTERVAL)

    def wait_for_agreement(self, patience, names=None, accept=lambda leader, answers: True,
                           what="the nodes to agree on a leader"):
        """Wait until ``names`` (default all) agree on a leader ``accept`` likes."""

        def agreed(answers):
            leader = status.agreed_leader(answers)
            return leader is not None and accept(leader, answers)

        answers = self.wait_for(names, patience, agreed, what)
        return status.agreed_leader(answers), answers

    def eventually(self, check, patience=ELECTION_PATIENCE):
        """Retry ``check()`` until it stops raising ``AssertionError`` or time runs out."""
        deadline = time.monotonic() + patience
        while True:
            self.check_alive()
            try:
                return check()
            except AssertionError:
                if time.monotonic() >= deadline:
                    raise
            time.sleep(POLL_INTERVAL)

    # ---- driving it through the scripts

    def script(self, script, name, *args):
        """Run a per-node script against ``name``; its completed process."""
        ip = dict(CLUSTER)[name]
        return run_script(script, name, "--host", ip, "--port", controller.PORT, *args)

    def ask(self, name):
        """LEADER_INFO through ``leader_info.py``; the checked reply."""
        proc = self.script("leader_info.py", name, "--timeout", 1)
        self.assertEqual(proc.returncode, 0, "leader_info.py %s: %s" % (name, proc.stderr))
        reply = json.loads(proc.stdout)
        self.assertEqual(reply["sender_name"], name)
        self.assertEqual(reply["request"], "LEADER_INFO")
        self.assertEqual(reply["key"], "LEADER")
        self.assertIsInstance(reply["term"], int)
        return reply

    def order(self, request, name):
        """Send a fire-and-forget request through its script."""
        proc = self.script(request.lower() + ".py", name)
        self.assertEqual(proc.returncode, 0, proc.stderr)

    # ---- the scenarios

    @dump_logs_on_failure
    def test_leader_info_agreement(self):
        def check():
            replies = [self.ask(name) for name, _ip in CLUSTER]
            leaders = {r["value"] for r in replies}
            self.assertEqual(len(leaders), 1, replies)
            leader = leaders.pop()
            self.assertIn(leader, dict(CLUSTER))
            proc = run_script("status.py", "--peers", PEERS, "--timeout", 2)
            self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
            self.assertIn("leader: %s " % leader, proc.stdout)

        self.eventually(check)

    @dump_logs_on_failure
    def test_convert_follower_on_the_leader(self):
        self.order("CONVERT_FOLLOWER", self.leader)
        self.wait_for_agreement(
            ELECTION_PATIENCE,
            accept=lambda leader, answers: all(a.reply["term"] > self.term for a in answers),
            what="a leader elected after term %d" % self.term,
        )

    @dump_logs_on_failure
    def test_timeout_on_a_follower_makes_it_leader(self):
        follower = next(name for name, _ip in CLUSTER if name != self.leader)
        self.order("TIMEOUT", follower)
        self.wait_for_agreement(
            TAKEOVER_PATIENCE,
            accept=lambda leader, answers: leader == follower,
            what="%s to lead after its TIMEOUT" % follower,
        )
        self.assertEqual(self.ask(follower)["value"], follower)

    @dump_logs_on_failure
    def test_shutdown_of_the_leader_and_revival(self):
        old = self.leader
        survivors = [name for name, _ip in CLUSTER if name != old]
        self.order("SHUTDOWN", old)
        self.wait_for_agreement(
            ELECTION_PATIENCE,
            names=survivors,
            accept=lambda leader, answers: leader in survivors,
            what="the other four nodes to elect a new leader",
        )
        self.eventually(lambda: self.assertIsNone(self.ask(old)["value"]), TAKEOVER_PATIENCE)

        self.order("TIMEOUT", old)
        self.wait_for_agreement(ELECTION_PATIENCE, what="%s to rejoin after TIMEOUT" % old)


if __name__ == "__main__":
    unittest.main()
