"""The images' sources, checked without Docker: base image names, build contexts, the template."""
import importlib.util
import pathlib
import subprocess
import sys
import unittest

ROOT = pathlib.Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("base_images", ROOT / "scripts" / "base_images.py")
base_images = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(base_images)


class BaseImageNames(unittest.TestCase):
    def test_from_lines_skip_scratch_and_stage_names(self):
        text = ("# FROM comment:1\nFROM --platform=linux/amd64 rust:1.2.3-alpine AS build\n"
                "RUN true\nfrom build AS again\nFROM scratch\nFROM python:3.11-slim\n")
        self.assertEqual(base_images.from_images(text), ["rust:1.2.3-alpine", "python:3.11-slim"])

    def test_the_dockerfiles_name_one_builder_and_one_python(self):
        names = base_images.base_images()
        self.assertEqual(len(names), 2, names)
        self.assertEqual({base_images.split_name(n)[0] for n in names}, {"rust", "python"})
        for name in names:
            self.assertIn(base_images.split_name(name)[0], base_images.RECIPES)

    def test_node_image_is_scratch_with_the_binary_only(self):
        text = (ROOT / "Node" / "Dockerfile").read_text()
        final = text.split("\nFROM scratch\n", 1)[1]
        self.assertEqual([ln for ln in final.splitlines() if ln.startswith("COPY")],
                         ["COPY --from=build /src/target/x86_64-unknown-linux-musl/release/raft /raft"])
        self.assertIn("cargo build --release --locked --offline --target x86_64-unknown-linux-musl", text)

    def test_list_names_the_images_of_given_dockerfiles(self):
        out = subprocess.run([sys.executable, str(ROOT / "scripts" / "base_images.py"), "--list",
                              str(ROOT / "Controller" / "Dockerfile")], capture_output=True,
                             text=True, check=True).stdout.split()
        self.assertEqual(len(out), 1)
        self.assertTrue(out[0].startswith("python:"), out)

    def test_tags_name_their_suite_and_version(self):
        self.assertEqual(base_images.split_name("python:3.11-slim-bookworm"),
                         ("python", "3.11-slim-bookworm"))
        self.assertEqual(base_images.split_name("localhost:5000/rust"), ("rust", "latest"))
        self.assertEqual(base_images.suite_of("3.11-slim-bullseye"), "bullseye")
        with self.assertRaises(base_images.Failure):
            base_images.python_recipe("latest")


class BuildContexts(unittest.TestCase):
    def test_root_context_sends_the_crate_sources_only(self):
        lines = [ln for ln in (ROOT / ".dockerignore").read_text().splitlines()
                 if ln and not ln.startswith("#")]
        self.assertEqual(lines, ["*", "!Cargo.toml", "!Cargo.lock", "!.cargo/config.toml", "!src/"])
        self.assertTrue((ROOT / ".cargo" / "config.toml").is_file())

    def test_controller_template_equals_the_root_one(self):
        self.assertEqual((ROOT / "Controller" / "Message.json").read_bytes(),
                         (ROOT / "Message.json").read_bytes())

    def test_controller_scripts_are_in_its_context(self):
        for name in ("convert_follower_node1.py", "leader_info.py", "timeout.py", "shutdown.py",
                     "convert_follower.py", "status.py", "watch.py", "controller.py", "raftkit.py",
                     "with_dashboard.py", "dashboard.py", "dashboard.html", "playground.html"):
            self.assertTrue((ROOT / "Controller" / name).is_file(), name)
        text = (ROOT / "Controller" / "Dockerfile").read_text()
        self.assertIn('CMD ["python", "-u", "with_dashboard.py", "watch.py"]', text)
        self.assertIn("ENV DASHBOARD_ADDR=0.0.0.0", text)  # in its own namespace; compose publishes it


if __name__ == "__main__":
    unittest.main()
