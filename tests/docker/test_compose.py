"""The compose generator: the committed docker-compose.yml is its exact output (no Docker needed)."""
import pathlib
import subprocess
import sys
import unittest

ROOT = pathlib.Path(__file__).resolve().parents[2]
GEN = ROOT / "scripts" / "compose_file.py"


def generate(*args: str) -> str:
    return subprocess.run([sys.executable, str(GEN), *args], check=True,
                          capture_output=True, text=True).stdout


class ComposeGenerator(unittest.TestCase):
    def test_committed_file_is_reproduced_byte_for_byte(self):
        committed = (ROOT / "docker-compose.yml").read_bytes()
        self.assertEqual(generate().encode(), committed,
                         "docker-compose.yml is stale: run `python3 scripts/compose_file.py -o docker-compose.yml`")

    def test_n_nodes_share_one_peer_list(self):
        text = generate("--nodes", "7")
        peers = "PEERS: " + ",".join(f"Node{i}" for i in range(1, 8))
        self.assertEqual(text.count(peers), 8)  # 7 nodes + controller
        self.assertEqual(text.count("DATA_DIR: /data"), 7)
        self.assertIn("  node7-data: {}", text)

    def test_prefix_changes_container_names_only(self):
        text = generate("--nodes", "3", "--prefix", "t1")
        self.assertIn("container_name: t1-Node3", text)
        self.assertIn("container_name: t1-Controller", text)
        self.assertIn("hostname: Node3", text)
        self.assertIn("aliases: [Node3]", text)
        self.assertNotIn("container_name: Node", text)
        self.assertIn('      - "127.0.0.1::8080"\n', text)  # a free loopback port per test cluster

    def test_a_key_file_becomes_a_secret_of_every_node(self):
        text = generate("--nodes", "3", "--key-file", "/tmp/k")
        self.assertEqual(text.count("CLUSTER_KEY_FILE: /run/secrets/cluster_key"), 3)
        self.assertEqual(text.count("secrets: [cluster_key]"), 3)
        self.assertTrue(text.endswith("secrets:\n  cluster_key:\n    file: /tmp/k\n"), text[-200:])
        self.assertNotIn("CLUSTER_KEY", generate("--nodes", "3"))

    def test_controller_is_the_course_block_and_leaves_port_5555_alone(self):
        controller = generate().split("  controller:")[1].split("\nnetworks:")[0]
        for line in ("build: Controller/", "container_name: Controller", "stdin_open: true",
                     "aliases: [Controller]"):
            self.assertIn(f"    {line}\n", controller)
        self.assertNotIn("image:", controller)  # compose names it per project
        self.assertNotIn("command", controller)  # the Dockerfile's: the watcher
        self.assertNotIn("5555", controller)
        # The one published port: the dashboard's, on the host's loopback unless told otherwise.
        self.assertIn('    ports:\n      - "${DASHBOARD_PUBLISH:-127.0.0.1}:${DASHBOARD_PORT:-8080}:8080"\n',
                      controller)
        self.assertEqual(generate().count("ports:"), 1)
        self.assertNotIn("depends_on", generate())  # nothing waits for the controller

    def test_nodes_build_from_the_repository_root(self):
        text = generate()
        self.assertEqual(text.count("      context: .\n      dockerfile: Node/Dockerfile\n"), 5)

    def test_controller_image_option_tags_it(self):
        controller = generate("--controller-image", "c:1").split("  controller:")[1]
        self.assertTrue(controller.startswith("\n    image: c:1\n    build: Controller/\n"))


if __name__ == "__main__":
    unittest.main()
