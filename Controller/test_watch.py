"""watch.py: its summary line, and one line per change against a fake node on loopback."""
import io
import json
import os
import socket
import threading
import unittest

import raftkit
import watch


def answer(name, value, term):
    reply = {"sender_name": name, "request": "LEADER_INFO", "term": term, "key": "LEADER",
             "value": value}
    return raftkit.Answer(raftkit.Peer(name, "127.0.0.1"), reply=reply)


class Summary(unittest.TestCase):
    def test_counts_leaders_and_the_highest_term(self):
        answers = [answer("Node1", "Node2", 3), answer("Node2", "Node2", 4), answer("Node3", None, 4),
                   raftkit.Answer(raftkit.Peer("Node4", "127.0.0.1"), error="unreachable")]
        self.assertEqual(watch.summary(answers), "leaders=Node2:2,none:1 max_term=4 answered=3/4")

    def test_no_answer_at_all(self):
        nobody = [raftkit.Answer(raftkit.Peer("Node1", "127.0.0.1"))]
        self.assertEqual(watch.summary(nobody), "leaders= max_term=0 answered=0/1")


class FakeNode(threading.Thread):
    """Answers LEADER_INFO with the next (value, term) of a script, repeating the last one."""

    def __init__(self, script):
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.script = list(script)
        self.sources = []

    def run(self):
        while True:
            try:
                _, src = self.sock.recvfrom(1024)
            except OSError:
                return
            self.sources.append(src)
            value, term = self.script.pop(0) if len(self.script) > 1 else self.script[0]
            reply = {"sender_name": "Node1", "request": "LEADER_INFO", "term": term,
                     "key": "LEADER", "value": value}
            self.sock.sendto(json.dumps(reply).encode(), src)


class Watch(unittest.TestCase):
    def test_prints_a_line_per_change_from_an_ephemeral_port(self):
        node = FakeNode([("Node1", 1), ("Node1", 1), ("Node2", 2), ("Node2", 2), ("Node2", 2)])
        node.start()
        out = io.StringIO()
        try:
            watch.watch([raftkit.Peer("Node1", "127.0.0.1", node.port)], 0.05, out=out, rounds=5,
                        timeout=5.0)
        finally:
            node.sock.close()
        lines = out.getvalue().splitlines()
        self.assertEqual([ln.split(" ", 1)[1] for ln in lines],
                         ["leaders=Node1:1 max_term=1 answered=1/1",
                          "leaders=Node2:1 max_term=2 answered=1/1"])
        self.assertTrue(all(ln.startswith("t=") for ln in lines))
        self.assertTrue(node.sources and all(src[1] != raftkit.PORT for src in node.sources))

    def test_peers_come_from_the_environment(self):
        args = watch.argparse.Namespace(peers=None, nodes=5)
        old = os.environ.get("PEERS")
        os.environ["PEERS"] = "Node1,Node2=127.0.0.12:6000"
        try:
            peers = watch.peers_from(args)
        finally:
            if old is None:
                del os.environ["PEERS"]
            else:
                os.environ["PEERS"] = old
        self.assertEqual([tuple(p) for p in peers],
                         [("Node1", "Node1", 5555), ("Node2", "127.0.0.12", 6000)])


if __name__ == "__main__":
    unittest.main()
