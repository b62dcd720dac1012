"""The multihost harness's pieces that need neither root nor Docker: the stub DNS server and the
DNS client it is checked with, the keyed stack file, the cleanup's bookkeeping."""
import json
import pathlib
import socket
import struct
import subprocess
import sys
import threading
import time
import unittest

import hosts
import multihost

ROOT = pathlib.Path(__file__).resolve().parents[2]


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def query(port, *names):
    p = subprocess.run([sys.executable, "-c", hosts.DNS_QUERY, f"@127.0.0.1:{port}", *names],
                       capture_output=True, text=True, timeout=20, check=True)
    return json.loads(p.stdout)


class StubDns(unittest.TestCase):
    def test_every_name_is_answered_no_such_name_at_once(self):
        port = free_udp_port()
        stub = subprocess.Popen([sys.executable, "-c", hosts.STUB_DNS, "127.0.0.1", str(port)])
        try:
            for _ in range(100):  # until it listens (the client says null for no answer)
                if query(port, "ready") == {"ready": []}:
                    break
                time.sleep(0.1)
            t0 = time.monotonic()
            got = query(port, "registry-1.docker.io", "Node3")
            self.assertEqual(got, {"registry-1.docker.io": [], "Node3": []})
            self.assertLess(time.monotonic() - t0, 2, "answered at once, not after the client's timeout")
            # The header as a resolver reads it: same id, a response, NXDOMAIN, the question echoed.
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
                c.settimeout(5)
                q = struct.pack(">HHHHHH", 0xBEEF, 0x0100, 1, 0, 0, 1) + b"\x05Node3\x00" + \
                    struct.pack(">HH", 1, 1) + b"\x00\x00\x29\x10\x00\x00\x00\x00\x00\x00\x00"  # + EDNS
                c.sendto(q, ("127.0.0.1", port))
                r = c.recv(512)
            ident, flags, qd, an, ns, ar = struct.unpack(">HHHHHH", r[:12])
            self.assertEqual((ident, flags & 0x800F, qd, an, ns, ar), (0xBEEF, 0x8003, 1, 0, 0, 0))
            self.assertEqual(r[12:], b"\x05Node3\x00" + struct.pack(">HH", 1, 1))
        finally:
            stub.kill()
            stub.wait()


class DnsClient(unittest.TestCase):
    def test_answers_with_compressed_names_give_every_address(self):
        srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        srv.bind(("127.0.0.1", 0))
        port = srv.getsockname()[1]

        def answer():
            q, peer = srv.recvfrom(512)
            end = q.index(b"\x00", 12) + 5
            rr = lambda ip: b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 600, 4) + socket.inet_aton(ip)  # noqa: E731
            srv.sendto(q[:2] + b"\x81\x80" + b"\x00\x01\x00\x02\x00\x00\x00\x00" + q[12:end]
                       + rr("10.0.1.5") + rr("10.0.1.12"), peer)

        t = threading.Thread(target=answer, daemon=True)
        t.start()
        try:
            self.assertEqual(query(port, "Node3"), {"Node3": ["10.0.1.5", "10.0.1.12"]})
        finally:
            t.join(5)
            srv.close()


class KeyedStackFile(unittest.TestCase):
    def test_every_node_of_the_stack_reads_the_key_from_the_swarm_secret(self):
        stack = (ROOT / "docker-stack.yml").read_text()
        keyed = (ROOT / "docker-stack.key.yml").read_text()
        nodes = [line.strip()[:-1] for line in stack.split("\nservices:\n")[1].split("\nnetworks:\n")[0].splitlines()
                 if line.startswith("  ") and not line.startswith("   ") and line.strip().endswith(":")]
        self.assertEqual(nodes, [f"Node{k}" for k in range(1, 6)])
        for n in nodes:
            self.assertIn(f"  {n}: *key\n", keyed)
        self.assertIn("CLUSTER_KEY_FILE: /run/secrets/raft-key", keyed)
        self.assertIn("secrets: [raft-key]", keyed)
        self.assertIn("secrets:\n  raft-key:\n    external: true\n", keyed)


class Bookkeeping(unittest.TestCase):
    def test_a_run_that_never_started_leaves_nothing(self):
        run = hosts.Run()
        self.assertTrue(run.id.startswith(hosts.PREFIX))
        self.assertEqual(run.leftovers(), [])

    def test_lines_sort_by_their_time_stamp(self):
        lines = ["t=12.5 node=Node3 term=2", "t=3.25 node=Node3 term=1", "no stamp"]
        self.assertEqual(sorted(lines, key=multihost.stamp), ["no stamp", lines[1], lines[0]])
        self.assertEqual(multihost.fmt_status({"Node1": ("Node2", 4), "Node3": None}),
                         "Node1:Node2/t4, Node3:no answer")


if __name__ == "__main__":
    unittest.main()
