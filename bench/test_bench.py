"""Unit tests of the benchmark's log parsing, statistics, report and pictures, from recorded data
(nothing is timed or started here): PYTHONPATH=Controller:tests/docker python3 -m unittest discover -s bench"""
import copy
import json
import os
import tempfile
import trace
import unittest
import xml.etree.ElementTree as ET

import compare
import floor
import local_nodes
import machine
import report
import stats
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
                    f.writelines(line for line in lines if "node=%s " % name in line)
            got = timeline.read_logs([d])
        self.assertEqual([e["t"] for e in got], [e["t"] for e in events()])

    def test_election_messages_count_requests_and_grants(self):
        # Node2's campaign: 2 requests (3 nodes) + Node3's grant; the fault was at 101.000.
        self.assertEqual(local_nodes.election_messages(events(), 101.0, 101.184, 3), 3)
        # Node3: two campaigns of 2 requests each, no grants logged.
        self.assertEqual(local_nodes.election_messages(events(), 102.0, 102.51, 3), 4)


class Statistics(unittest.TestCase):
    def test_percentile_interpolates_between_ranks(self):
        xs = list(range(1, 101))
        self.assertEqual(stats.percentile(xs, 50), 50.5)
        self.assertAlmostEqual(stats.percentile(xs, 99), 99.01)
        self.assertEqual(stats.percentile([7], 99), 7)

    def test_summary(self):
        st = stats.summarize([300, 100, 200])
        self.assertEqual((st["n"], st["median"], st["min"], st["max"]), (3, 200, 100, 300))
        self.assertIsNone(stats.summarize([]))


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
        doc = report.histogram_svg({"kill": [120, 180, 185, 420], "shutdown": [150, 160]},
                                  report.REFERENCE, "failover")
        root = ET.fromstring(doc)
        texts = [t.text for t in root.iter(SVG + "text")]
        for _, label in report.REFERENCE:
            self.assertIn(label, texts)
        bars = [r for r in root.iter(SVG + "rect") if r.get("height") not in (None, "100%", "10")]
        self.assertEqual(len(bars), 5)  # 4 kill values in 3 bins, 2 shutdown values in 2 bins
        self.assertLess(len(doc), 10000)


# One failover trial: Node2 and Node3 fire 0.2 ms apart, both pass their pre-vote, Node3 wins.
TRIAL = """\
t=10.000000 node=Node1 event=killed signal=9 source=bench
t=10.150000 node=Node2 term=3 role=PreCandidate event=become to=PreCandidate reason=election-timeout late_us=80
t=10.150200 node=Node3 term=3 role=PreCandidate event=become to=PreCandidate reason=election-timeout late_us=70
t=10.150300 node=Node4 term=3 role=Follower event=pre-vote candidate=Node2 for_term=4 granted=true reason=granted
t=10.151000 node=Node3 term=4 role=Candidate event=become to=Candidate reason=pre-vote-won persist_us=900
t=10.151100 node=Node2 term=4 role=Candidate event=become to=Candidate reason=pre-vote-won persist_us=950
t=10.151500 node=Node4 term=4 role=Follower event=vote candidate=Node3 for_term=4 granted=true reason=granted persist_us=400
t=10.151600 node=Node3 term=4 role=Leader event=elected votes=3/5 after_ms=1
"""  # noqa: E501 (node log lines as written)


class Traces(unittest.TestCase):
    def rows(self):
        events = sorted(filter(None, map(timeline.parse_line, TRIAL.splitlines())), key=lambda e: e["t"])
        return trace.trial(events, 10.0, 10.1516, "Node1")

    def test_a_trial_lists_timers_votes_and_the_winner(self):
        rows = self.rows()
        self.assertEqual([r["what"] for r in rows],
                         ["PreCandidate", "PreCandidate", "pre-vote", "Candidate", "Candidate", "vote", "elected"])
        text = trace.render(rows, 10.0)
        self.assertIn("150.000 Node2 -> PreCandidate@3 (election-timeout) late 0.08 ms", text[0])
        self.assertIn("Node4 vote GRANT for Node3@4 (granted) after 0.40 ms on disk", text[5])

    def test_timers_fired_together_are_named_so(self):
        self.assertEqual(trace.category(self.rows()), trace.CATEGORIES[1])
        self.assertIn("2 candidates in term 4", trace.classify(self.rows()))
        one = [r for r in self.rows() if r["node"] != "Node2"]
        self.assertEqual(trace.category(one), trace.CATEGORIES[0])


class Floor(unittest.TestCase):
    def test_the_floor_is_the_first_of_four_timers_after_the_heartbeat_phase(self):
        f = floor.floor(20000, seed=1)
        self.assertTrue(145 <= f["p50"] <= 157, f)
        self.assertTrue(225 <= f["p99"] <= 245, f)
        self.assertLessEqual(f["max"], 300)
        self.assertGreaterEqual(min(f["p50"], f["p90"]), 100)
        ticked = floor.floor(20000, seed=1, tick=4)
        self.assertGreater(ticked["same_tick"], 0.02)
        self.assertEqual(f["same_tick"], 0)


# ---- the report, from a recorded run ---------------------------------------------------------------

STRACE = """\
% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 40.00    0.000400           1       360       120 recvfrom
 30.00    0.000300           1       301           setsockopt
 20.00    0.000200           1       240           sendto
------ ----------- ----------- --------- --------- ----------------
100.00    0.001000           1       901       120 total
"""


def idle(leader_cpu, follower_cpus, rss, leader_calls, follower_calls):
    followers = {"F%d" % i: {"cpu": c, "VmRSS": rss, "VmHWM": rss} for i, c in enumerate(follower_cpus)}
    return {"seconds": 30, "leader_name": "L", "stable": True,
            "leader": {"cpu": leader_cpu, "VmRSS": rss, "VmHWM": rss},
            "followers": followers, "syscalls": {"seconds": 10, "leader": {"sendto": [leader_calls, 0]},
                                                 "follower": {"recvfrom": [follower_calls, 5]}}}


def recorded():
    """A whole run's record, as bench.py saves it (made up, round numbers)."""
    raw = {"shutdown": [150, 160, 170, 180], "kill": [140, 150, 160, 200], "messages": [6, 6, 7, 6, 6, 8, 6, 6],
           "campaigns": [1, 1, 1, 1, 1, 2, 1, 1], "classes": [trace.CATEGORIES[0]] * 8, "late_ms": [0.1, 0.2],
           "disk_ms": [1.0, 2.0]}
    quiet = {"changes": 0, "before": ["Node1", 1], "after": ["Node1", 1], "seconds": 60, "out_per_s": 80.0,
             "in_per_s": 80.0, "leader": {"cpu": 0.5, "VmRSS": 2000, "VmHWM": 2100},
             "followers": {"Node2": {"cpu": 0.1, "VmRSS": 1900, "VmHWM": 1950}}, "netns": True, "stopped_s": 10,
             "stopped": {"cpu": 0.0, "VmRSS": 1800, "VmHWM": 1900}}
    return {
        "command": "BENCH_TRIALS=4 make bench", "net": "127.0.77", "bin": "target/release/raft",
        "machine": {"arch": "x86_64", "cpu": "Test CPU", "cores": 2, "mem_gib": 24, "kernel": "6.1", "python": "3.11",
                    "date": "2026-01-02 03:04 UTC", "load": 0.25},
        "seconds": 100, "load_end": 0.3, "binaries": {"release (glibc)": 500 * 1024, "musl static": 450 * 1024},
        "floor": {"draws": 200000, "p50": 151, "p90": 200, "p99": 234, "max": 290, "same_tick": 0},
        "first_leader": [170, 180], "failover": {"on": copy.deepcopy(raw), "off": copy.deepcopy(raw)},
        "controller": {"convert": [3, 4], "convert_other": 2, "timeout": [5, 6]},
        "simulator": {"skipped": "BENCH_SIM=0"}, "quiet": quiet, "quiet_musl": dict(quiet, seconds=10),
        "timeline": {"events": [timeline.parse_line(line) for line in LOG.splitlines()], "end": 104.0},
        "etcd": {"binary": "/usr/bin/etcd", "binary_bytes": 20000 * 1024, "version": "3.4.23", "note": "",
                 "heartbeat_ms": 30, "election_ms": 150},
        "compare": {"this project": {"first_leader": [200], "sigterm_agree": [5, 6, 7, 8], "sigterm_exit": [40, 50],
                                     "kill_agree": [150, 160], "kill_exit": [1, 1], "no_exit": 0},
                    "etcd": {"first_leader": [2000], "sigterm_agree": [50, 60, 70, 80], "sigterm_exit": [50, 60],
                             "kill_agree": [120, 130], "kill_exit": [5, 5], "no_exit": 0}},
        "idle": {"this project": idle(0.2, [0.05, 0.1], 2048, 1600, 400),
                 "etcd": idle(3.0, [2.0, 2.5], 30720, 16000, 15000)},
        "strace_note": "",
        "containers": {"image": "raft-node:latest", "image_bytes": 900 * 1024, "up": [1500], "up_last_start": [300],
                       "kill": [150, 170], "kill_cli": [200, 210], "stop_agree": [10, 40], "stop_elected": [8, None],
                       "stop_exit": [20, 30], "stop_cli": [60, 70], "memory": {"Node1": "1.2MiB"},
                       "rolling": {"runs": [{"gaps_ms": [12, 20], "total_ms": 32, "leader_restarts": 2,
                                             "elections": 2, "seconds": 40}]}},
    }


def row(text, first):
    """The table row of `text` that starts with `first`, split into cells."""
    return next(line for line in text.splitlines() if line.startswith(first)).split(" | ")


class Report(unittest.TestCase):
    def test_header_says_what_produced_it_where_and_under_what_load(self):
        text = report.render(recorded())
        head = text.split("\n## ")[0]
        for part in ("`BENCH_TRIALS=4 make bench`", "2026-01-02 03:04 UTC", "Test CPU", "2 cores",
                     "load average 0.25 at the start, 0.30 at the end", "nothing in this file is edited by hand",
                     "`target/release/raft`"):
            self.assertIn(part, head)
        self.assertIn("a quiet machine", head)
        loaded = recorded()
        loaded["load_end"] = 3.5
        self.assertIn("figures are noisy", report.render(loaded).split("\n## ")[0])

    def test_beside_etcd_puts_both_side_by_side_with_the_ratio(self):
        text = report.render(recorded())
        cells = row(text, "SIGTERM of the leader -> survivors agree |")
        self.assertEqual(cells[1:], ["6.5 / p99 8.0 ms (n=4)", "65 / p99 80 ms (n=4)", "p50 0.10, p99 0.10"])
        cells = row(text, "idle CPU, leader")
        self.assertEqual(cells[1:], ["0.20 %", "3.00 %", "0.07"])
        self.assertEqual(row(text, "system calls per second, idle leader")[1:], ["160", "1600", "0.10"])
        self.assertEqual(row(text, "binary size")[1:], ["500 KiB", "20000 KiB", "0.03"])
        self.assertIn("heartbeat 30 ms and election timeout 150 ms", text)
        self.assertIn("etcd refuses an election timeout under 5 heartbeat intervals", text)

    def test_goals_pass_and_miss_from_the_recorded_figures(self):
        text = report.render(recorded())
        self.assertEqual(row(text, "SIGTERM of the leader -> survivors agree, 5 local nodes")[-1], "PASS")
        self.assertEqual(row(text, "SIGTERM -> process exit")[-1], "PASS")
        self.assertEqual(row(text, "`docker stop` of the leader (compose)")[-1], "MISS")  # p99 39.7 > 30
        rolling = row(text, "Swarm rolling update of all 5 nodes")
        self.assertIn("32 ms in all (12, 20; 2 leader restart(s), 2 election(s))", rolling[1])
        self.assertEqual(rolling[-1], "PASS")
        self.assertEqual(row(text, "idle leader / follower CPU")[1], "0.20 % / 0.05-0.10 %")
        self.assertEqual(row(text, "idle leader / follower CPU")[-1], "PASS")
        slow = recorded()
        slow["compare"]["this project"]["sigterm_agree"] = [160, 170, 240]
        slow["idle"]["this project"]["followers"]["F0"]["cpu"] = 0.2
        text = report.render(slow)
        self.assertEqual(row(text, "SIGTERM of the leader -> survivors agree, 5 local nodes")[-1], "MISS")
        self.assertEqual(row(text, "idle leader / follower CPU")[-1], "MISS")

    def test_strace_table_lists_each_call_with_its_failures(self):
        text = report.render(recorded())
        self.assertEqual(row(text, "`sendto`"), ["`sendto`", "1600", "0"])
        self.assertEqual(row(text, "`recvfrom`"), ["`recvfrom`", "0", "400 (5 failed)"])

    def test_etcd_skipped_is_one_line_and_empty_cells(self):
        r = recorded()
        r["etcd"] = {"skipped": "`apt-get install etcd-server` failed: no network"}
        del r["compare"]["etcd"], r["idle"]["etcd"]
        text = report.render(r)
        self.assertIn("etcd not measured: `apt-get install etcd-server` failed: no network.", text)
        self.assertEqual(row(text, "SIGTERM of the leader -> survivors agree |")[2:], ["-", "-"])
        self.assertEqual(row(text, "idle CPU, leader")[2:], ["-", "-"])

    def test_sections_not_measured_are_left_out(self):
        r = recorded()
        for key in ("first_leader", "failover", "controller", "quiet", "quiet_musl", "timeline", "containers"):
            del r[key]
        text = report.render(r)
        self.assertIn("## Beside etcd", text)
        for section in ("## Failover", "## Quiet cluster", "## Containers", "## Election timeline"):
            self.assertNotIn(section, text)
        self.assertEqual(report.pictures(r), {})
        self.assertIn("- (not run)", row(text, "Swarm rolling update")[1])

    def test_a_saved_record_renders_again_the_same(self):
        r = recorded()
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "bench.json")
            with open(path, "w") as f:
                json.dump(r, f)
            self.assertEqual(report.main([path, "-o", d]), 0)
            with open(os.path.join(d, "BENCHMARKS.md")) as f:
                self.assertEqual(f.read(), report.render(r) + "\n")
            for svg in ("failover.svg", "timeline.svg"):
                self.assertEqual(ET.parse(os.path.join(d, svg)).getroot().tag, SVG + "svg")

    def test_sigterm_is_the_nodes_own_signal_line_else_the_daemons_event(self):
        import containers

        class Watch:
            def __init__(self, t):
                self.t = t

            def signalled_at(self, cid, since):
                return self.t

        lines = [{"t": 99.0, "event": "signal"}, {"t": 100.004, "event": "signal"},
                 {"t": 100.001, "event": "elected"}]
        # The daemon's event (100.010) is later than the node's own line (100.004): the line wins;
        # a line from before the request (99.0) does not count.
        self.assertEqual(containers.sigterm_at(lines, Watch(100.010), "c", 100.0), 100.004)
        self.assertEqual(containers.sigterm_at(lines[:1], Watch(100.010), "c", 100.0), 100.010)
        with self.assertRaises(AssertionError):
            containers.sigterm_at([], Watch(None), "c", 100.0)

    def test_containers_section_has_docker_stop_and_the_rolling_update(self):
        text = report.render(recorded())
        self.assertEqual(row(text, "`docker stop` of the leader: the leader receiving SIGTERM")[1:6],
                         ["2", "25", "10", "39", "40"])  # p99 39.7, printed whole
        self.assertEqual(row(text, "the same to the new leader's `elected` line")[1], "1")  # one trial had none
        self.assertEqual(row(text, "1 | 40 | 2 | 2"), ["1", "40", "2", "2", "12, 20", "32"])


class Helpers(unittest.TestCase):
    def test_strace_summary_is_parsed_without_the_total(self):
        self.assertEqual(machine.parse_strace_summary(STRACE),
                         {"recvfrom": [360, 120], "setsockopt": [301, 0], "sendto": [240, 0]})
        self.assertEqual(machine.parse_strace_summary("strace: Process 7 attached\n"), {})

    def test_agreement_needs_every_view_one_leader_one_term(self):
        views = {"a": ("b", 3), "b": ("b", 3), "c": ("b", 3)}
        self.assertEqual(compare.agreed(views), "b")
        self.assertIsNone(compare.agreed(views, exclude="b"))
        self.assertIsNone(compare.agreed(dict(views, c=None)))  # one did not answer
        self.assertIsNone(compare.agreed(dict(views, c=("b", 4))))  # another term
        self.assertIsNone(compare.agreed(dict(views, c=("a", 3))))
        self.assertIsNone(compare.agreed({"a": ("x", 3), "b": ("x", 3)}))  # a leader not among them
        self.assertIsNone(compare.agreed({"a": (None, 3), "b": (None, 3)}))

    def test_ratios_and_series_cells(self):
        self.assertEqual(report.ratio(5, 50), "0.10")
        self.assertEqual(report.ratio(500, 20), "25")
        self.assertEqual(report.ratio(5, 0), "-")
        self.assertEqual(report.ratio(None, 3), "-")
        self.assertEqual(report.p50_p99([]), "-")
        self.assertEqual(report.p50_p99([1.0, 2.0, None]), "1.5 / p99 2.0 ms (n=2)")


if __name__ == "__main__":
    unittest.main()
