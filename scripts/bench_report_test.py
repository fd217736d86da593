#!/usr/bin/env python3
"""Tests of bench_report.py on results.json files made up for them.

Run by `make unit`: python3 -m unittest discover -s scripts -p '*_test.py'.
"""

import json
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import bench_report  # noqa: E402


def results(path, lines):
    """Writes a results.json whose events log the bench lines."""
    os.makedirs(path, exist_ok=True)
    events = [{"Test": {"Output": f"    bench_test.go:317: bench: {l}\n"}} for l in lines]
    md = {"stages": [], "first_test_seconds": 1.0, "accelerator": "tcg", "exit_code": 0}
    with open(f"{path}/results.json", "w") as f:
        json.dump({"metadata": md, "events": events}, f)


def rows(scale, rules):
    """The version-1 rows of one kernel: ns/op = scale x a base figure."""
    base = {"open+close depth=1": 1000, "open+close depth=8": 2000,
            "stat depth=1": 800, "stat depth=8": 1600, "read": 300}
    out = []
    for op, ns in base.items():
        for n, factor, rule in rules:
            extra = f" rule={rule}" if rule else ""
            out.append(f"op={op} rules={n} cgroup=0{extra} ns/op={ns * scale * factor:.1f}")
    return out


class BenchReportTest(unittest.TestCase):
    def test_key_leaves_cgroup_0_out_and_orders_fields(self):
        self.assertEqual("open+close depth=8 rules=16",
                         bench_report.line_key({"op": "open+close", "depth": "8", "rules": "16", "cgroup": "0"}))
        self.assertEqual("stat depth=1 rules=1 rule=fs_beneath dir=inside",
                         bench_report.line_key({"op": "stat", "rules": "1", "rule": "fs_beneath", "depth": "1", "dir": "inside"}))
        self.assertEqual("read rules=0 cgroup=sibling",
                         bench_report.line_key({"op": "read", "rules": "0", "cgroup": "sibling"}))

    def test_spread_median_and_targets(self):
        with tempfile.TemporaryDirectory() as d:
            on = [(0, 1.0, ""), (1, 1.15, ""), (16, 2.1, ""), (1, 1.12, "write_only"), (1, 1.01, "write_only_triggered")]
            # Three boots of the option-on kernel, the second 1% slower.
            for i, scale in enumerate([1.0, 1.01, 1.0], start=1):
                results(f"{d}/landlock-y-{i}", rows(scale, on))
                results(f"{d}/landlock-n-{i}", rows(0.995, [(0, 1.0, "")]))
            out = bench_report.rules_report(d, 3)
        y = out["landlock_bpf_ns_per_op"]["option_on"]
        self.assertEqual(1000.0, y["open+close depth=1 rules=0"], "the median over the boots")
        spread = out["landlock_bpf_spread"]["option_on"]["open+close depth=1 rules=0"]
        self.assertEqual({"runs": 3, "min": 1000.0, "max": 1010.0, "spread_pct": 1.0}, spread)
        self.assertAlmostEqual(1.0, out["landlock_bpf_spread"]["max_spread_pct"], delta=0.02)
        rows_by = {(t["target"], t["op"]): t for t in out["landlock_bpf_targets"]["rows"]}
        zero = rows_by[("option on, 0 rules vs option off", "stat depth=8")]
        self.assertAlmostEqual(1.005, zero["ratio"], places=3)
        self.assertTrue(zero["met"])
        sixteen = rows_by[("16 rules vs 0 rules", "read")]
        self.assertEqual(2.1, sixteen["ratio"])
        self.assertFalse(sixteen["met"], "2.1x is over the 2x target")
        self.assertFalse(out["landlock_bpf_targets"]["all_met"])
        self.assertIn("read: the write-only rule appended the version-1 way vs 0 rules", out["landlock_bpf_ratios"])

    def test_a_target_not_met_says_where_the_time_goes(self):
        op = "stat depth=8"
        sides = {"y": {f"{op} rules=0": 1000.0, f"{op} rules=0 hooks=on": 1020.0, f"{op} rules=1": 1300.0,
                       f"{op} rules=16": 2800.0, f"{op} rules=1 rule=write_only_triggered": 1100.0},
                 "n": {f"{op} rules=0": 980.0}}
        one = bench_report.decompose(sides, op, ("y", "rules=1"), 1300.0, 1000.0, 1.2)
        self.assertEqual({"over_base_ns_per_op": 300.0, "to_cut_ns_per_op": 100.0, "hooks_on_ns_per_op": 20.0,
                          "rule_programs_ns_per_op": 100.0, "runner_entries_ns_per_op": 180.0},
                         {k: v for k, v in one.items() if k != "note"})
        trig = bench_report.decompose(sides, op, ("y", "rules=1 rule=write_only_triggered"), 1100.0, 1000.0, 1.05)
        self.assertEqual(80.0, trig["untriggered_checks_ns_per_op"])
        self.assertEqual(50.0, trig["to_cut_ns_per_op"])
        zero = bench_report.decompose(sides, op, ("y", "rules=0"), 1000.0, 980.0, 1.01)
        self.assertEqual(20.0, zero["over_base_ns_per_op"])

    def test_main_prints_the_clock(self):
        with tempfile.TemporaryDirectory() as d:
            results(f"{d}/landlock-y-1", rows(1.0, [(0, 1.0, "")]))
            out = subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__), "bench_report.py"),
                                  d, "null", "null", "null", "null", "1", "1", "tcg"],
                                 check=True, capture_output=True, text=True).stdout
        doc = json.loads(out)
        self.assertEqual("icount", doc["landlock_bpf_clock"]["mode"])
        self.assertEqual(1, doc["landlock_bpf_clock"]["icount_shift"])
        self.assertIsNone(doc["cold"])
        self.assertIsNone(doc["landlock_bpf_ns_per_op"]["option_off"], "no option-off run")


    def test_inner_loop_against_kunit(self):
        with tempfile.TemporaryDirectory() as d:
            os.makedirs(f"{d}/inner")
            with open(f"{d}/inner/results.json", "w") as f:
                json.dump({"metadata": {"stages": [{"name": "build", "seconds": 12.0}], "first_test_seconds": 1.5,
                                        "accelerator": "tcg", "exit_code": 0}}, f)
            met = bench_report.inner_loop(d, "18.9", "9.2")
            self.assertEqual(19.2, met["target"]["limit_seconds"])
            self.assertTrue(met["target"]["met"])
            self.assertEqual(12.0, met["ours"]["stages"]["build"])
            self.assertFalse(bench_report.inner_loop(d, "40", "9.2")["target"]["met"])
            self.assertNotIn("target", bench_report.inner_loop(d, "18", "null"), "no kunit.py figure, no verdict")

    def test_suite_on_one_and_two_vcpus_cold_target_and_first_event(self):
        def run(d, name, tests, first):
            os.makedirs(f"{d}/{name}")
            with open(f"{d}/{name}/results.json", "w") as f:
                json.dump({"metadata": {"stages": [{"name": "build", "seconds": 280.0}, {"name": "tests", "seconds": tests}],
                                        "first_test_seconds": first, "accelerator": "tcg", "exit_code": 0}}, f)
        with tempfile.TemporaryDirectory() as d:
            run(d, "smp1", 120.0, 1.5)
            run(d, "smp2", 66.0, 1.6)
            run(d, "cold", 121.0, 2.3)
            v = bench_report.suite_vcpus(d, "125", "70")
            self.assertEqual(0.55, v["target"]["ratio"])
            self.assertTrue(v["target"]["met"])
            self.assertEqual(125.0, v["vcpus_1"]["wall_seconds"])
            self.assertNotIn("target", bench_report.suite_vcpus(d, "125", "null"), "no 2-vCPU run, no verdict")
            cold = bench_report.harness_run(d, "cold", "440")
            c = bench_report.cold_target(cold, "162")
            self.assertFalse(c["met"])
            self.assertEqual(["build", "tests"], list(c["where_the_time_goes"]), "the costliest stage first")
            self.assertNotIn("where_the_time_goes", bench_report.cold_target(cold, "500"))
            f = bench_report.first_event_target({"cold": cold, "smp1": v["vcpus_1"], "none": None})
            self.assertEqual({"cold": 2.3, "smp1": 1.5}, f["seconds"])
            self.assertFalse(f["met"], "2.3 s is over the 2 s limit")


if __name__ == "__main__":
    unittest.main()
