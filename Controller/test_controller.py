"""Tests of raftkit and the controller scripts: ``python3 -m unittest discover -s Controller -v``.

Most tests talk to fake nodes: UDP sockets on loopback, served by a thread, that record every
datagram and answer LEADER_INFO like a node does. The log tests read lines the node wrote.
``RealClusterTests`` starts five real nodes and runs only when ``RAFT_BIN`` names the node
executable, as ``make python-test`` does.
"""

import contextlib
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

import controller
import raftkit
import status

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)

#: Upper bound for anything that must happen (a reply that will come, a script that will end).
PATIENCE = 10.0
#: Reply timeout for cases where no reply will ever come.
SHORT = 0.2


def reference_bytes(request, template=raftkit.TEMPLATE_PATH):
    """The datagram the course reference controller sends for ``request``."""
    with open(template) as f:
        msg = json.load(f)
    msg["sender_name"] = "Controller"
    msg["request"] = request
    return json.dumps(msg).encode("utf-8")


def expected_bytes(request, term=None, key=None, value=None):
    """The five fields in wire order, serialised with ``json.dumps``."""
    return json.dumps({"sender_name": "Controller", "request": request, "term": term,
                       "key": key, "value": value}).encode("utf-8")


class FakeNode:
    """A UDP socket on loopback, served by a thread, that behaves like a node.

    Records every datagram as ``(bytes, source address)``.  Answers LEADER_INFO with
    ``{"sender_name": name, "request": "LEADER_INFO", "term": term, "key": "LEADER",
    "value": leader}`` unless ``silent``; ``noise`` datagrams are sent first.  ``stopped``: as a
    node stopped by SHUTDOWN, answers STATUS (``role=Stopped``) and nothing else.
    """

    def __init__(self, name, leader=None, term=1, host="127.0.0.1", port=0, silent=False,
                 noise=(), reply_name=None, stopped=False):
        self.name, self.leader, self.term, self.silent = name, leader, term, silent
        self.stopped = stopped
        self.noise, self.reply_name = list(noise), name if reply_name is None else reply_name
        self.received, self._cond, self._stop = [], threading.Condition(), threading.Event()
        self.sock = raftkit.open_socket((host, port))
        self.sock.settimeout(0.05)
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
            msg = raftkit.decode(data)
            request = msg.get("request") if msg else None
            if self.silent or request != ("STATUS" if self.stopped else "LEADER_INFO"):
                continue
            reply = {"sender_name": self.reply_name, "request": "LEADER_INFO", "term": self.term,
                     "key": "LEADER", "value": self.leader}
            if self.stopped:
                reply.update(request="STATUS", key="STATUS", value=(
                    "role=Stopped term=%d voted_for=none leader=none timer_ms=none heard_ms=none "
                    "election_ms=150-300" % self.term))
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
    return subprocess.run([sys.executable, os.path.join(HERE, script)] + [str(a) for a in args],
                          cwd=REPO_ROOT, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=60)


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
        self.assertTrue(os.path.isfile(raftkit.TEMPLATE_PATH), raftkit.TEMPLATE_PATH)
        self.assertEqual(list(raftkit.load_template()), list(raftkit.FIELDS))

    def test_controller_re_exports_the_library(self):
        for name in ("make_message", "query_all", "send", "leader_info", "parse_peers",
                     "default_peers", "encode", "decode", "Peer", "Answer", "ControllerError"):
            self.assertIs(getattr(controller, name), getattr(raftkit, name), name)

    def test_message_matches_the_reference_controller(self):
        for request in raftkit.REQUESTS:
            msg = raftkit.make_message(request)
            self.assertEqual(raftkit.encode(msg), reference_bytes(request))
            self.assertEqual(raftkit.encode(msg), expected_bytes(request))

    def test_optional_fields(self):
        msg = raftkit.make_message("timeout", term=7, key="k", value="v")
        self.assertEqual(raftkit.encode(msg), expected_bytes("TIMEOUT", 7, "k", "v"))
        msg = raftkit.make_message("LEADER_INFO", sender="Tester")
        self.assertEqual(msg["sender_name"], "Tester")

    def test_template_file_is_used(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "Message.json")
            with open(path, "w") as f:
                json.dump(dict.fromkeys(reversed(raftkit.FIELDS)), f)
            with mock.patch.object(raftkit, "TEMPLATE_PATH", path):
                msg = raftkit.make_message("SHUTDOWN")
            self.assertEqual(raftkit.encode(msg), reference_bytes("SHUTDOWN", path))
        self.assertEqual(list(msg), list(reversed(raftkit.FIELDS)))

    def test_missing_or_bad_template_falls_back_to_five_nulls(self):
        with tempfile.TemporaryDirectory() as tmp:
            cases = {"missing.json": None, "broken.json": "{not json", "list.json": "[]",
                     "extra.json": json.dumps(dict.fromkeys(raftkit.FIELDS + ("extra",))),
                     "short.json": json.dumps(dict.fromkeys(raftkit.FIELDS[:4]))}
            for name, text in cases.items():
                path = os.path.join(tmp, name)
                if text is not None:
                    with open(path, "w") as f:
                        f.write(text)
                with self.subTest(template=name):
                    self.assertEqual(raftkit.load_template(path), dict.fromkeys(raftkit.FIELDS))

    def test_request_names_are_case_and_dash_insensitive(self):
        for spelling in ("leader_info", "LEADER_INFO", "leader-info", " Leader-Info "):
            self.assertEqual(raftkit.normalize_request(spelling), "LEADER_INFO")
        for bad in ("", "   ", "leader info"):
            with self.assertRaises(ValueError):
                raftkit.normalize_request(bad)

    def test_the_wire_carries_the_exact_constant(self):
        for spelling in ("leader-info", "convert_follower", "Timeout", "SHUTDOWN"):
            msg = raftkit.make_message(spelling, "Controller")
            self.assertIn(msg["request"], raftkit.REQUESTS, spelling)
            self.assertEqual(msg["request"], msg["request"].upper())
        reply = {"sender_name": "Node1", "request": "LEADER_INFO", "term": 1, "key": "LEADER",
                 "value": "Node1"}
        self.assertTrue(raftkit.is_reply_to(reply, "LEADER_INFO"))
        for near in ("leader_info", "Leader_Info", " LEADER_INFO", "LEADER-INFO", None, 5):
            self.assertFalse(raftkit.is_reply_to(dict(reply, request=near), "LEADER_INFO"), near)

    def test_decode(self):
        self.assertEqual(raftkit.decode(b'{"a": 1}'), {"a": 1})
        for junk in (b"", b"not json", b"[1, 2]", b"\xff\xfe", b'"text"'):
            self.assertIsNone(raftkit.decode(junk), junk)

    def test_parse_hostport(self):
        parse = raftkit.parse_hostport
        self.assertEqual(parse("Controller:5555"), ("Controller", 5555))
        self.assertEqual(parse("127.0.0.1:0"), ("127.0.0.1", 0))
        self.assertEqual(parse(":6000"), ("", 6000))
        self.assertEqual(parse("6000"), ("", 6000))
        self.assertEqual(parse("Controller"), ("Controller", 0))
        for bad in ("", "host:", "host:x", "host:70000", "host:-1"):
            with self.assertRaises(ValueError, msg=bad):
                parse(bad)

    def test_parse_peers(self):
        peers = raftkit.parse_peers(" Node1=127.0.0.11:5555, Node2 ,Node3=10.0.0.3,", 6000)
        self.assertEqual(peers, [raftkit.Peer("Node1", "127.0.0.11", 5555),
                                 raftkit.Peer("Node2", "Node2", 6000),
                                 raftkit.Peer("Node3", "10.0.0.3", 6000)])
        for bad in ("", ",", "=1.2.3.4:5", "A,A", "A=h:0", "A=h:x"):
            with self.assertRaises(ValueError, msg=bad):
                raftkit.parse_peers(bad)

    def test_default_peers(self):
        self.assertEqual(
            raftkit.default_peers(2),
            [raftkit.Peer("Node1", "Node1", 5555), raftkit.Peer("Node2", "Node2", 5555)],
        )


# ---- the library against fake nodes ---------------------------------------------------------


class SendTests(FakeNodeTestCase):
    def test_fire_and_forget_sends_the_reference_bytes(self):
        for request in ("CONVERT_FOLLOWER", "TIMEOUT", "SHUTDOWN"):
            with self.subTest(request=request):
                node = self.fake("Node1")
                result = raftkit.send(request.lower(), "Node1", host=node.host, port=node.port)
                self.assertIsNone(result)
                (data, _src), = node.wait_for(1)
                self.assertEqual(data, reference_bytes(request))
                self.assertEqual(data, expected_bytes(request))

    def test_leader_info_reply_is_decoded(self):
        node = self.fake("Node2", leader="Node4", term=9)
        reply = raftkit.leader_info("Node2", host=node.host, port=node.port, timeout=PATIENCE)
        self.assertEqual(
            reply,
            {"sender_name": "Node2", "request": "LEADER_INFO", "term": 9, "key": "LEADER",
             "value": "Node4"},
        )
        (data, _src), = node.wait_for(1)
        self.assertEqual(data, reference_bytes("LEADER_INFO"))

    def test_null_leader(self):
        node = self.fake("Node2", leader=None)
        reply = raftkit.leader_info("Node2", host=node.host, port=node.port, timeout=PATIENCE)
        self.assertIsNone(reply["value"])

    def test_junk_and_unrelated_datagrams_are_skipped(self):
        noise = [b"garbage", b"[]", json.dumps({"request": "APPEND_RPC"}).encode()]
        node = self.fake("Node3", leader="Node3", noise=noise)
        reply = raftkit.leader_info("Node3", host=node.host, port=node.port, timeout=PATIENCE)
        self.assertEqual(reply["value"], "Node3")

    def test_replies_longer_than_the_course_read_are_skipped(self):
        # recvfrom(1024), as the course controller reads: a longer datagram is cut, not a reply.
        big = json.dumps({"sender_name": "Node3", "request": "LEADER_INFO", "term": 1,
                          "key": "LEADER", "value": "x" * 1000}).encode()
        node = self.fake("Node3", leader="Node3", noise=[big])
        reply = raftkit.leader_info("Node3", host=node.host, port=node.port, timeout=PATIENCE)
        self.assertEqual(reply["value"], "Node3")

    def test_no_reply_returns_none(self):
        node = self.fake("Node1", silent=True)
        self.assertIsNone(
            raftkit.leader_info("Node1", host=node.host, port=node.port, timeout=SHORT)
        )
        node.wait_for(1)

    def test_bind_sets_the_source_address(self):
        node = self.fake("Node1")
        raftkit.send("TIMEOUT", "Node1", host=node.host, port=node.port,
                        bind=("127.0.0.1", 0))
        (_data, src), = node.wait_for(1)
        self.assertEqual(src[0], "127.0.0.1")

    def test_errors_raise_controller_error(self):
        with self.assertRaises(raftkit.ControllerError):
            raftkit.send("TIMEOUT", "Node1", host="no-such-host.invalid")
        with self.assertRaises(raftkit.ControllerError):
            raftkit.send("TIMEOUT", "Node1", host="127.0.0.1", bind=("no-such-host.invalid", 0))

    def test_query_all_one_socket_many_nodes(self):
        nodes = [self.fake("Node%d" % i, leader="Node2", term=3) for i in (1, 2, 3)]
        stranger = self.fake("Node4", leader="Node2", term=3, reply_name="SomeoneElse")
        peers = raftkit.parse_peers(",".join(n.peer for n in nodes + [stranger]))
        answers = raftkit.query_all(peers, timeout=PATIENCE)
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
        peers = raftkit.parse_peers(",".join(n.peer for n in nodes))
        answers = raftkit.query_all(peers, timeout=SHORT)
        self.assertEqual(answers, [raftkit.Answer(p) for p in peers])
        for node in nodes:
            node.wait_for(1)

    def test_query_all_reports_unresolvable_peers(self):
        node = self.fake("Node1", leader="Node1")
        peers = [raftkit.Peer("Node1", node.host, node.port),
                 raftkit.Peer("Node2", "no-such-host.invalid", 5555)]
        one, two = raftkit.query_all(peers, timeout=PATIENCE)
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
        with raftkit.open_socket(("127.0.0.1", 0)) as probe:
            port = probe.getsockname()[1]
        code, _out, err = call_main(controller.main, "Node1", "--host", node.host,
                                    "--port", node.port, "--bind", "127.0.0.1:%d" % port,
                                    request="SHUTDOWN")
        self.assertEqual(code, 0, err)
        (_data, src), = node.wait_for(1)
        self.assertEqual(src[:2], ("127.0.0.1", port))

    def test_default_port_is_5555(self):
        host = "127.0.0.%d" % random.randint(200, 250)
        try:
            self.fake("Node1", leader="Node1", host=host, port=5555)  # closed by its cleanup
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
        code, _, err = call_main(controller.main, "Node1", "--host", "no-such-host.invalid",
                                 request="TIMEOUT")
        self.assertEqual(code, 1)
        self.assertIn("cannot resolve 'no-such-host.invalid'", err)

    def test_argument_errors_exit_2_with_usage(self):
        cases = [[], ["leader_info"], ["no_such_request", "Node1"], ["leader info", "Node1"],
                 ["timeout", ""]] + [["timeout", "Node1", *option] for option in (
                     ("--port", "0"), ("--port", "70000"), ("--port", "x"), ("--timeout", "0"),
                     ("--timeout", "-1"), ("--timeout", "nan"), ("--bind", "host:x"),
                     ("--term", "-1"), ("--bogus",))]
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
            got = [data for data, _src in node.wait_for(2)]
            self.assertEqual(got, [reference_bytes("LEADER_INFO"), reference_bytes("STATUS")])

    def test_a_stopped_node_is_shown_stopped_and_the_others_still_agree(self):
        live = [self.fake("Node%d" % i, leader="Node2", term=4) for i in (1, 2)]
        stopped = self.fake("Node3", term=3, stopped=True)
        silent = self.fake("Node4", silent=True)
        code, out, err = call_main(status.main, "--peers", self.peers(*live, stopped),
                                   "--timeout", PATIENCE)
        self.assertEqual(code, 0, out + err)
        lines = out.splitlines()
        self.assertEqual(lines[3].split(), ["Node3", "%s:%d" % (stopped.host, stopped.port),
                                            "stopped", "3"])
        self.assertEqual(lines[-1], "leader: Node2 (term 4), agreed by all 2 running nodes; "
                                    "stopped: Node3")
        # With one more that answers nothing: no agreement, and each shown for what it is.
        code, out, _err = call_main(status.main, "--peers", self.peers(*live, stopped, silent),
                                    "--timeout", 1.0)
        self.assertEqual(code, 1)
        self.assertRegex(out, r"Node3\s+\S+\s+stopped\s+3")
        self.assertRegex(out, r"Node4\s+\S+\s+no answer\s+-")
        self.assertIn("no agreement: 2/3 running nodes answered; leaders reported: Node2 x2; "
                      "stopped: Node3", out)

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
        peers = raftkit.parse_peers("Node1=10.0.0.1:5555,Node2=10.0.0.2:5555,Node3")
        reply = {"sender_name": "Node1", "request": "LEADER_INFO", "term": 7, "key": "LEADER",
                 "value": "Node1"}
        answers = [raftkit.Answer(peers[0], reply=reply),
                   raftkit.Answer(peers[1]),
                   raftkit.Answer(peers[2], error="cannot resolve 'Node3'")]
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
        with mock.patch.object(raftkit, "survey", return_value=[]) as query:
            call_main(status.main, "--nodes", 3, "--port", 6000, "--timeout", SHORT)
        peers = query.call_args[0][0]
        self.assertEqual(peers, [raftkit.Peer("Node%d" % i, "Node%d" % i, 6000)
                                 for i in (1, 2, 3)])
        with mock.patch.object(raftkit, "survey", return_value=[]) as query:
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


# ---- log lines -----------------------------------------------------------------------------

#: Lines written by the node (release build), escapes included.
REAL_LINES = r"""
t=1796162606.192 node=Node1 term=0 role=Follower event=start bind=127.0.5.1:5555 peers="Node1=127.0.5.1:5555" election_ms=150-300 heartbeat_ms=50 pre_vote=true check_quorum=true data_dir=d1 voted_for=none seed=9243895061996717225
t=1796162606.486 node=Node1 term=1 role=Leader event=elected votes=1/1 after_ms=0
t=1796162606.771 node=Node1 term=1 role=Leader event=drop reason=unknown-request detail="LE\"é\u{9}X=1 \\ \u{7}" from=127.0.0.1:35709 bytes=111 suppressed=0
t=1796162606.971 node=Node1 term=1 role=Leader event=request request=TIMEOUT from=127.0.0.1:35709 sender="Con\u{a}tr\"ol\\ler" suppressed=0
t=1796162608.171 node=Node1 term=2 role=Leader event=drop reason=unknown-request detail="\\u{41}" from=127.0.0.1:35709 bytes=93 suppressed=1
""".strip().splitlines()  # noqa: E501 (the node's own lines, byte for byte)


class LogTests(unittest.TestCase):
    def test_real_lines_parse_and_unescape(self):
        start, elected, drop, request, literal = map(raftkit.parse_line, REAL_LINES)
        self.assertEqual((start["t"], start["term"], start["peers"]),
                         (1796162606.192, 0, "Node1=127.0.5.1:5555"))
        self.assertEqual((elected["event"], elected["votes"], elected["term"]), ("elected", "1/1", 1))
        self.assertEqual(drop["detail"], 'LE"é\tX=1 \\ \x07')
        self.assertEqual(request["sender"], 'Con\ntr"ol\\ler')
        self.assertEqual(literal["detail"], "\\u{41}", "an escaped backslash is not an escape")

    def test_lines_round_trip(self):
        for line in REAL_LINES:
            self.assertEqual(raftkit.format_line(raftkit.parse_fields(line)), line)

    def test_quote_matches_the_node(self):  # the cases of src/log.rs's own tests
        cases = {"Node1": "Node1", "127.0.0.1:5555": "127.0.0.1:5555", "": '""', "a b": '"a b"',
                 'x="y"': '"x=\\"y\\""', "\n": '"\\u{a}"', "\x85é": '"\\u{85}é"'}
        for value, quoted in cases.items():
            self.assertEqual(raftkit.quote(value), quoted)
            self.assertEqual(raftkit.parse_fields("t=%s" % quoted), [("t", value)])

    def test_prefixes_and_markers(self):
        rec = raftkit.parse_line("raft-node2-1  | t=7.250 node=Node2 term=3 role=Leader event=elected")
        self.assertEqual((rec["node"], rec["t"], rec["event"]), ("Node2", 7.25, "elected"))
        rec = raftkit.parse_line("t=102.000 node=Node2 event=killed signal=9 source=bench")
        self.assertNotIn("term", rec)

    def test_anything_else_is_not_a_node_line(self):
        for line in ("", "Compiling raft", "node=Node1 event=x", "t=abc node=Node1", "at=1 node=N",
                     "t=1.0 event=warning", 'thread main panicked at src/election/mod.rs:1', "t=1 node=N x=",
                     't=1 node=N x="open', 't=1 node=N x="\\q"', "t=1 node=N  x=1", "t=1 node=N x=a=b",
                     't=1 node=N x="\\u{110000}"', "t=1 node=N term=x"):
            self.assertIsNone(raftkit.parse_line(line), line)


class AgreementTests(unittest.TestCase):
    def reply(self, leader, term=1):
        return {"sender_name": "N", "request": "LEADER_INFO", "term": term, "key": "LEADER",
                "value": leader}

    def test_agreed_leader(self):
        agree = {"Node1": self.reply("Node2"), "Node2": self.reply("Node2")}
        self.assertEqual(raftkit.agreed_leader(agree), "Node2")
        self.assertEqual(raftkit.agreed_leader(agree, among=["Node2"]), "Node2")
        self.assertIsNone(raftkit.agreed_leader(agree, among=["Node1"]))
        for bad in ({}, {"Node1": None}, {"Node1": None, "Node2": None},
                    {"Node1": self.reply("Node2"), "Node2": None},
                    {"Node1": self.reply("Node2"), "Node2": self.reply("Node1")},
                    {"Node1": self.reply(None)}, {"Node1": self.reply("")}, {"Node1": self.reply(7)}):
            self.assertIsNone(raftkit.agreed_leader(bad), bad)

    def test_wait_for_leader_polls_until_agreement_and_acceptance(self):
        rounds = [{"A": None}, {"A": self.reply("A", 1)}, {"A": self.reply("A", 2)}]
        leader, secs, replies = raftkit.wait_for_leader(
            lambda: rounds.pop(0), accept=lambda r: r["A"]["term"] == 2, interval=0)
        self.assertEqual((leader, replies["A"]["term"], rounds), ("A", 2, []))
        self.assertGreaterEqual(secs, 0)

    def test_wait_for_leader_fails_with_what_it_saw(self):
        with self.assertRaisesRegex(raftkit.Failure, r"no agreed leader B .*'A': \('A', 1\)"):
            raftkit.wait_for_leader(lambda: {"A": self.reply("A")}, timeout=0, want="B")


class LocalClusterTests(unittest.TestCase):
    def test_addresses_and_environment(self):
        with mock.patch.dict(os.environ, {"PRE_VOTE": "0", "HOME_OF_TEST": "x"}):
            c = raftkit.LocalCluster("/bin/false", 3, first="127.0.9.254", HEARTBEAT_MS=40)
            inherited = raftkit.LocalCluster("/bin/false", 1, folder=c.folder, inherit=True)
        self.addCleanup(c.stop)
        self.assertEqual(c.env["PEERS"], "Node1=127.0.9.254:5555,Node2=127.0.9.255:5555,"
                                         "Node3=127.0.10.0:5555")
        self.assertEqual(c.addr("Node3"), ("127.0.10.0", 5555))
        self.assertEqual((c.env["HEARTBEAT_MS"], c.env["HOME_OF_TEST"]), ("40", "x"))
        self.assertNotIn("PRE_VOTE", c.env)
        self.assertEqual(inherited.env["PRE_VOTE"], "0")

    @unittest.skipUnless(os.path.exists("/proc/self/stat"), "needs Linux /proc")
    def test_process_figures(self):
        mem = raftkit.memory_kib(os.getpid())
        self.assertEqual(sorted(mem), ["VmHWM", "VmRSS"])
        self.assertGreater(mem["VmRSS"], 0)
        self.assertGreaterEqual(mem["VmHWM"], mem["VmRSS"])
        self.assertGreater(raftkit.cpu_seconds(os.getpid()), 0)


# ---- a real cluster -------------------------------------------------------------------------

RAFT_BIN = os.path.abspath(os.environ["RAFT_BIN"]) if os.environ.get("RAFT_BIN") else ""
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
    for k in range(11, 16):
        try:
            raftkit.open_socket(("127.0.0.%d" % k, 0)).close()
        except raftkit.ControllerError as e:
            return "loopback beyond 127.0.0.1 needs Linux: %s" % e
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
        self.cluster = raftkit.LocalCluster(RAFT_BIN, ELECTION_TIMEOUT_MS="150-300",
                                            HEARTBEAT_MS="50")
        self.addCleanup(self.cluster.stop)
        self.peers_spec = self.cluster.env["PEERS"]
        for peer in self.cluster.peers:
            try:
                raftkit.open_socket((peer.host, peer.port)).close()
            except raftkit.ControllerError as e:
                self.fail("%s; is another cluster running?" % e)
        try:
            self.cluster.start()
            self.leader, _secs, replies = self.wait_for_agreement(ELECTION_PATIENCE)
        except BaseException:
            self.dump_logs()
            raise
        self.term = max(r["term"] for r in replies.values())

    def dump_logs(self, lines=200):
        for name in self.cluster.names:
            try:
                with open(self.cluster.log(name), errors="replace") as f:
                    tail = f.readlines()[-lines:]
            except OSError as e:
                tail = ["(cannot read the log: %s)\n" % e]
            proc = self.cluster.procs.get(name)
            state = "not started" if proc is None else "running" if proc.poll() is None \
                else "exit status %s" % proc.returncode
            sys.stderr.write("\n----- %s log (%s, last %d lines) -----\n" % (name, state, lines))
            sys.stderr.writelines(tail)
        sys.stderr.flush()

    # ---- observing the cluster

    def wait_for_agreement(self, patience, names=None, accept=lambda leader, replies: True,
                           what="the nodes to agree on a leader"):
        """Wait until ``names`` (default all) agree on a leader ``accept`` likes."""
        try:
            return self.cluster.wait_leader(
                names, timeout=patience, accept=lambda r: accept(raftkit.agreed_leader(r), r),
                interval=POLL_INTERVAL)
        except raftkit.Failure as e:
            self.fail("still waiting for %s: %s" % (what, e))

    def eventually(self, check, patience=ELECTION_PATIENCE):
        """Retry ``check()`` until it stops raising ``AssertionError`` or time runs out."""
        deadline = time.monotonic() + patience
        while True:
            self.cluster.check_alive()
            try:
                return check()
            except AssertionError:
                if time.monotonic() >= deadline:
                    raise
            time.sleep(POLL_INTERVAL)

    # ---- driving it through the scripts

    def script(self, script, name, *args):
        """Run a per-node script against ``name``; its completed process."""
        host, port = self.cluster.addr(name)
        return run_script(script, name, "--host", host, "--port", port, *args)

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
            replies = [self.ask(name) for name in self.cluster.names]
            leaders = {r["value"] for r in replies}
            self.assertEqual(len(leaders), 1, replies)
            leader = leaders.pop()
            self.assertIn(leader, self.cluster.names)
            proc = run_script("status.py", "--peers", self.peers_spec, "--timeout", 2)
            self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
            self.assertIn("leader: %s " % leader, proc.stdout)

        self.eventually(check)

    @dump_logs_on_failure
    def test_convert_follower_on_the_leader(self):
        self.order("CONVERT_FOLLOWER", self.leader)
        self.wait_for_agreement(
            ELECTION_PATIENCE,
            accept=lambda leader, replies: all(r["term"] > self.term for r in replies.values()),
            what="a leader elected after term %d" % self.term,
        )

    @dump_logs_on_failure
    def test_timeout_on_a_follower_makes_it_leader(self):
        follower = next(name for name in self.cluster.names if name != self.leader)
        self.order("TIMEOUT", follower)
        self.wait_for_agreement(
            TAKEOVER_PATIENCE,
            accept=lambda leader, replies: leader == follower,
            what="%s to lead after its TIMEOUT" % follower,
        )
        self.assertEqual(self.ask(follower)["value"], follower)

    @dump_logs_on_failure
    def test_shutdown_of_the_leader_and_revival(self):
        old = self.leader
        survivors = [name for name in self.cluster.names if name != old]
        self.order("SHUTDOWN", old)
        self.wait_for_agreement(
            ELECTION_PATIENCE,
            names=survivors,
            accept=lambda leader, replies: leader in survivors,
            what="the other four nodes to elect a new leader",
        )
        # Stopped, it is as silent as a process that has ended; its STATUS says why, and
        # status.py shows it stopped.
        silent = self.script("leader_info.py", old, "--timeout", 1)
        self.assertNotEqual(silent.returncode, 0, silent.stdout)
        self.assertIn("no LEADER_INFO reply", silent.stderr)
        [status] = raftkit.query_all([p for p in self.cluster.peers if p.name == old], "STATUS")
        self.assertTrue(status.reply and status.reply["value"].startswith("role=Stopped "), status)
        proc = run_script("status.py", "--peers", self.peers_spec, "--timeout", 2)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        self.assertRegex(proc.stdout, r"%s\s+\S+\s+stopped\s+%d" % (old, self.term))
        self.assertIn("agreed by all 4 running nodes; stopped: %s" % old, proc.stdout)

        self.order("TIMEOUT", old)
        self.wait_for_agreement(ELECTION_PATIENCE, what="%s to rejoin after TIMEOUT" % old)

    @dump_logs_on_failure
    def test_every_log_line_is_logfmt_the_toolkit_reads_back(self):
        odd = 'Con\ntr"ol\\l\x7fér ' + "x" * 80
        host, port = self.cluster.addr(self.leader)
        raftkit.send("CONVERT_FOLLOWER", self.leader, host=host, port=port, sender=odd)
        self.wait_for_agreement(ELECTION_PATIENCE, what="a leader after CONVERT_FOLLOWER")
        for name in self.cluster.names:
            with open(self.cluster.log(name), encoding="utf-8") as f:
                lines = f.read().splitlines()
            self.assertTrue(lines, name)
            for line in lines:
                self.assertIsNotNone(raftkit.parse_line(line), line)
                self.assertEqual(raftkit.format_line(raftkit.parse_fields(line)), line)
        with open(self.cluster.log(self.leader), encoding="utf-8") as f:
            senders = [r.get("sender") for r in map(raftkit.parse_line, f)
                       if r.get("request") == "CONVERT_FOLLOWER"]
        # The node clips what it got from the network to 64 characters.
        self.assertEqual(senders, [odd[:64] + "...(%d bytes)" % len(odd.encode())])


if __name__ == "__main__":
    unittest.main()
