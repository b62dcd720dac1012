"""Unit tests of the benchmark's log parsing, statistics and pictures: python3 -m unittest discover -s bench"""
import os
import tempfile
import unittest
import xml.etree.ElementTree as ET

import bench
import timeline

SVG = "{http://www.w3.org/2000/svg}"

# Three terms: Node1 leads, is shut down, Node2 wins term 2 after a campaign, Node2 is killed,
# Node3 wins term 4 after a split vote in term 3.
LOG = """\
t=100.000 node=Node1 term=0 role=Follower event=start bind=127.0.0.11:5555 peers="a b"
t=100.000 node=Node2 term=0 role=Follower event=start bind=127.0.0.12:5555
t=100.000 node=Node3 term=0 role=Follower event=start bind=127.0.0.13:5555
t=100.200 node=Node1 term=1 role=Candidate event=become to=Candidate reason=pre-vote-won
t=100.205 node=Node1 term=1 role=Leader event=elected votes=3/3 after_ms=5
t=100.205 node=Node2 term=1 role=Follower event=vote candidate=Node1 for_term=1 granted=true reason=granted
t=100.206 node=Node2 term=1 role=Follower event=leader leader=Node1
t=101.000 node=Node1 term=1 role=Leader event=request request=SHUTDOWN from=127.0.0.1:4000
t=101.000 node=Node1 term=1 role=Stopped event=become to=Stopped reason=shutdown
t=101.180 node=Node2 term=2 role=Candidate event=become to=Candidate reason=pre-vote-won
t=101.183 node=Node3 term=2 role=Follower event=vote candidate=Node2 for_term=2 granted=true reason=granted
t=101.184 node=Node2 term=2 role=Leader event=elected votes=2/3 after_ms=4
t=102.000 node=Node2 event=killed signal=9 source=bench
t=102.200 node=Node3 term=3 role=Candidate event=become to=Candidate reason=pre-vote-won
t=102.500 node=Node3 term=4 role=Candidate event=become to=Candidate reason=election-timeout
t=102.510 node=Node3 term=4 role=Leader event=elected votes=2/3 after_ms=10
t=103.000 node=Node3 term=4 role=Leader event=request request=LEADER_INFO detail="say \\"hi\\""
"""


def events():
    return sorted(filter(None, map(timeline.parse_line, LOG.splitlines())), key=lambda e: e["t"])


class LogParsing(unittest.TestCase):
    def test_fields_numbers_and_quotes(self):
        e = timeline.parse_line('t=1.5 node=Node1 term=4 role=Leader event=x msg="a \\"b\\" c" x=""')
        self.assertEqual((e["t"], e["term"], e["msg"], e["x"]), (1.5, 4, 'a "b" c', ""))

    def test_prefixes_of_docker_logs_are_skipped(self):
        e = timeline.parse_line("raft-node2-1  | t=7.250 node=Node2 term=3 role=Leader event=elected")
        self.assertEqual((e["node"], e["t"], e["event"]), ("Node2", 7.25, "elected"))

    def test_lines_without_time_or_node_are_not_events(self):
        for line in ("", "Compiling raft", "node=Node1 event=x", "t=abc node=Node1", "at=1 node=N"):
            self.assertIsNone(timeline.parse_line(line), line)

    def test_leaderships_end_at_shutdown_kill_and_newer_terms(self):
        self.assertEqual(timeline.leaderships(events()), [
            (1, "Node1", 100.205, 101.0), (2, "Node2", 101.184, 102.0), (4, "Node3", 102.51, 103.0)])
        self.assertEqual(timeline.leaderships(events(), end=104.5)[-1][3], 104.5)

    def test_read_logs_merges_files_of_a_folder_in_time_order(self):
        with tempfile.TemporaryDirectory() as d:
            lines = LOG.splitlines(True)
            for name in ("Node1", "Node2", "Node3"):
                with open(os.path.join(d, name + ".log"), "w") as f:
                    f.writelines(l for l in lines if "node=%s " % name in l)
            got = timeline.read_logs([d])
        self.assertEqual([e["t"] for e in got], [e["t"] for e in events()])

    def test_election_messages_count_requests_and_grants(self):
        # Node2's campaign: 2 requests (3 nodes) + Node3's grant; the fault was at 101.000.
        self.assertEqual(bench.election_messages(events(), 101.0, 101.184, 3), 3)
        # Node3: two campaigns of 2 requests each, no grants logged.
        self.assertEqual(bench.election_messages(events(), 102.0, 102.51, 3), 4)


class Statistics(unittest.TestCase):
    def test_percentile_interpolates_between_ranks(self):
        xs = list(range(1, 101))
        self.assertEqual(bench.percentile(xs, 50), 50.5)
        self.assertAlmostEqual(bench.percentile(xs, 99), 99.01)
        self.assertEqual(bench.percentile([7], 99), 7)

    def test_summary(self):
        st = bench.summarize([300, 100, 200])
        self.assertEqual((st["n"], st["median"], st["min"], st["max"]), (3, 200, 100, 300))
        self.assertIsNone(bench.summarize([]))


class Pictures(unittest.TestCase):
    def test_timeline_has_one_bar_per_leader_term(self):
        root = ET.fromstring(timeline.render(events(), "test <&>"))
        bars = [r for r in root.iter(SVG + "rect") if r.get("class") == "lead"]
        self.assertEqual(len(bars), 3)
        titles = [b.find(SVG + "title").text for b in bars]
        self.assertTrue(titles[0].startswith("Node1 leads term 1"), titles)
        self.assertIn("test <&>", [t.text for t in root.iter(SVG + "text")])

    def test_timeline_cli_writes_valid_svg(self):
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "all.log"), "w") as f:
                f.write(LOG)
            out = os.path.join(d, "t.svg")
            self.assertEqual(timeline.main([d, "-o", out]), 0)
            self.assertEqual(ET.parse(out).getroot().tag, SVG + "svg")

    def test_histogram_is_valid_svg_with_reference_lines(self):
        doc = bench.histogram_svg({"kill": [120, 180, 185, 420], "shutdown": [150, 160]},
                                  bench.REFERENCE, "failover")
        root = ET.fromstring(doc)
        texts = [t.text for t in root.iter(SVG + "text")]
        for _, label in bench.REFERENCE:
            self.assertIn(label, texts)
        bars = [r for r in root.iter(SVG + "rect") if r.get("height") not in (None, "100%", "10")]
        self.assertEqual(len(bars), 5)  # 4 kill values in 3 bins, 2 shutdown values in 2 bins
        self.assertLess(len(doc), 10000)


if __name__ == "__main__":
    unittest.main()
