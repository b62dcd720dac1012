"""The swarm mode of the generator: the committed docker-stack.yml is its exact output, and each
node's service carries what a swarm needs (no Docker needed)."""
import pathlib
import re
import subprocess
import sys
import unittest

ROOT = pathlib.Path(__file__).resolve().parents[2]
GEN = ROOT / "scripts" / "compose_file.py"


def generate(*args: str) -> str:
    return subprocess.run([sys.executable, str(GEN), "--swarm", *args], check=True,
                          capture_output=True, text=True).stdout


def service(text: str, name: str) -> str:
    return text.split(f"\n  {name}:\n")[1].split("\n\n")[0]


class StackGenerator(unittest.TestCase):
    def test_committed_stack_file_is_reproduced_byte_for_byte(self):
        committed = (ROOT / "docker-stack.yml").read_bytes()
        self.assertEqual(generate().encode(), committed,
                         "docker-stack.yml is stale: run `python3 scripts/compose_file.py --swarm -o docker-stack.yml`")

    def test_every_node_is_one_pinned_dnsrr_service_with_its_volume(self):
        text = generate("--nodes", "7")
        for k in range(1, 8):
            s = service(text, f"Node{k}")
            self.assertIn("replicas: 1", s)
            self.assertIn("endpoint_mode: dnsrr", s)  # names resolve to the task's own address
            self.assertIn(f'constraints: ["node.labels.raft.Node{k} == true"]', s)
            self.assertIn(f"NODE_NAME: Node{k}", s)
            self.assertIn(f"- node{k}-data:/data", s)
            self.assertIn("PEERS: " + ",".join(f"Node{i}" for i in range(1, 8)), s)
            self.assertIn("condition: any", s)  # a planned stop exits 0: back after a host restart
            self.assertEqual(s.count("order: stop-first"), 2)  # updates and rollbacks
            self.assertIn('test: ["CMD", "/raft", "health"]', s)
        self.assertIn("  node7-data: {}", text)

    def test_network_is_an_attachable_overlay_and_no_port_is_published(self):
        text = generate()
        self.assertIn("networks:\n  raft:\n    driver: overlay\n    attachable: true\n", text)
        self.assertNotIn("ports", text)
        self.assertNotIn("build:", text)  # a stack cannot build; the image must be on every host
        body = text.split("\nservices:\n")[1].split("\nnetworks:\n")[0]
        services = re.findall(r"^  (\w+):$", body, re.M)
        self.assertEqual(services, [f"Node{k}" for k in range(1, 6)])  # Controller is free

    def test_prefix_is_refused(self):
        p = subprocess.run([sys.executable, str(GEN), "--swarm", "--prefix", "t1"],
                           capture_output=True, text=True)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("--prefix", p.stderr)


if __name__ == "__main__":
    unittest.main()
