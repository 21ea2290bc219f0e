#!/usr/bin/env python3
"""Tests of sluice-bench: the event generators (layout, determinism, the NEXMark mix), the
runner's errors, the agreement check, and a whole harness run of Sluice against the
plain-Python reference. Run by ctest with the runner's path as the first argument."""

import importlib.machinery
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNNER = os.environ.get("SLUICE_BENCH_RUNNER", os.path.join(ROOT, "build", "bench", "sluice-bench-runner"))


def load_module(name, path):
    """A Python file as a module, whatever its name (sluice-bench has no .py)."""
    loader = importlib.machinery.SourceFileLoader(name, path)
    spec = importlib.util.spec_from_loader(name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


harness = load_module("sluice_bench", os.path.join(ROOT, "bench", "sluice-bench"))


def generate(out, workload, *extra):
    proc = subprocess.run([RUNNER, "generate", "--workload", workload, "--out", out, *map(str, extra)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise AssertionError(f"generate {workload} failed: {proc.stderr}")
    return json.loads(proc.stdout)


def read_events(folder):
    files = sorted(os.listdir(os.path.join(folder, "events")))
    return [(name, open(os.path.join(folder, "events", name), encoding="utf-8").read().splitlines()) for name in files]


class Generators(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)

    def path(self, name):
        return os.path.join(self.tmp.name, name)

    def test_every_file_holds_its_second_in_order_and_meta_counts_them(self):
        for workload, time_column in (("ysb", 5), ("wordcount", 0), ("windowed", 0), ("nexmark-q5", 1)):
            meta = generate(self.path(workload), workload, "--batches", 4, "--events-per-batch", 500)
            files = read_events(self.path(workload))
            self.assertEqual([name for name, _ in files], [f"part-{i:05d}.csv" for i in range(4)])
            total_bytes = 0
            for i, (name, lines) in enumerate(files):
                self.assertEqual(len(lines), 500, f"{workload} {name}")
                times = [int(line.split(",")[time_column]) for line in lines]
                self.assertEqual(times, sorted(times), f"{workload} {name}: event times not in order")
                self.assertTrue(all(i * 1000 <= t < (i + 1) * 1000 for t in times), f"{workload} {name}")
                total_bytes += os.path.getsize(os.path.join(self.path(workload), "events", name))
            self.assertEqual(meta["events"], 2000)
            self.assertEqual(meta["bytes"], total_bytes)
            with open(os.path.join(self.path(workload), "meta.json"), encoding="utf-8") as f:
                self.assertEqual(json.load(f), meta)

    def test_same_seed_same_bytes_other_seed_other_bytes(self):
        generate(self.path("a"), "ysb", "--batches", 2, "--events-per-batch", 300, "--seed", 7)
        generate(self.path("b"), "ysb", "--batches", 2, "--events-per-batch", 300, "--seed", 7)
        generate(self.path("c"), "ysb", "--batches", 2, "--events-per-batch", 300, "--seed", 8)
        self.assertEqual(read_events(self.path("a")), read_events(self.path("b")))
        self.assertNotEqual(read_events(self.path("a")), read_events(self.path("c")))

    def test_ysb_has_the_original_schema_and_campaign_table(self):
        generate(self.path("y"), "ysb", "--batches", 1, "--events-per-batch", 3000)
        with open(os.path.join(self.path("y"), "ysb-campaigns.csv"), encoding="utf-8") as f:
            pairs = [line.rstrip("\n").split(",") for line in f]
        self.assertEqual(len(pairs), 1000)
        self.assertEqual(len({campaign for _, campaign in pairs}), 100)
        ads = {ad for ad, _ in pairs}
        events = [line.split(",") for line in read_events(self.path("y"))[0][1]]
        self.assertTrue(all(len(e) == 7 for e in events))
        self.assertEqual({e[4] for e in events}, {"view", "click", "purchase"})
        self.assertEqual({e[3] for e in events}, {"banner", "modal", "sponsored-search", "mail", "mobile"})
        self.assertTrue(all(e[2] in ads for e in events))
        views = sum(e[4] == "view" for e in events)
        self.assertTrue(800 < views < 1200, f"{views} views of 3000: the event types are not uniform")

    def test_nexmark_mix_is_1_person_3_auctions_46_bids_per_50(self):
        generate(self.path("n"), "nexmark-q1", "--batches", 1, "--events-per-batch", 5000)
        events = [line.split(",") for line in read_events(self.path("n"))[0][1]]
        self.assertTrue(all(len(e) == 15 for e in events))
        kinds = [e[0] for e in events]
        self.assertEqual((kinds.count("0"), kinds.count("1"), kinds.count("2")), (100, 300, 4600))
        auctions = {int(e[2]) for e in events if e[0] == "1"}
        bid_auctions = [int(e[3]) for e in events if e[0] == "2"]
        # Bids name existing auctions, or ones a little ahead (the generator's id lead).
        self.assertTrue(all(a <= max(auctions) + 10 for a in bid_auctions))
        self.assertTrue(all(int(e[5]) >= 100 for e in events if e[0] == "2"), "prices are at least 100 cents")

    def test_wordcount_lines_are_lowercase_words_joined_by_single_spaces(self):
        generate(self.path("w"), "wordcount", "--batches", 1, "--events-per-batch", 2000)
        for line in read_events(self.path("w"))[0][1]:
            text = line.split(",", 1)[1]
            self.assertTrue(text and all(word.isalpha() and word.islower() for word in text.split(" ")), repr(text))


class RunnerErrors(unittest.TestCase):
    def run_runner(self, *args):
        return subprocess.run([RUNNER, *map(str, args)], capture_output=True, text=True)

    def test_unknown_workload_is_named(self):
        with tempfile.TemporaryDirectory() as tmp:
            proc = self.run_runner("generate", "--workload", "nexmark-q9", "--out", tmp)
        self.assertEqual(proc.returncode, 2)
        self.assertIn("unknown workload 'nexmark-q9'", proc.stderr)

    def test_bad_numbers_and_windows_are_named(self):
        with tempfile.TemporaryDirectory() as tmp:
            proc = self.run_runner("generate", "--workload", "ysb", "--out", tmp, "--batches", "ten")
            self.assertEqual(proc.returncode, 2)
            self.assertIn("--batches expects an integer, got 'ten'", proc.stderr)
            proc = self.run_runner("generate", "--workload", "windowed", "--out", tmp, "--window-ms", 2500)
            self.assertEqual(proc.returncode, 2)
            self.assertIn("must be a positive multiple of 1000 ms and divide the window (2500 ms)", proc.stderr)

    def test_run_on_the_wrong_data_says_which(self):
        with tempfile.TemporaryDirectory() as tmp:
            generate(tmp, "windowed", "--batches", 2, "--events-per-batch", 10)
            proc = self.run_runner("run", "--workload", "ysb", "--data", tmp, "--out", os.path.join(tmp, "o"))
            self.assertEqual(proc.returncode, 2)
            self.assertIn("holds 'keyed' data, workload ysb needs 'ysb'", proc.stderr)
            proc = self.run_runner("run", "--workload", "ysb", "--data", os.path.join(tmp, "nope"), "--out", tmp)
            self.assertEqual(proc.returncode, 2)
            self.assertIn(os.path.join(tmp, "nope", "meta.json"), proc.stderr)

    def test_malformed_event_file_is_reported_with_the_record(self):
        with tempfile.TemporaryDirectory() as tmp:
            generate(tmp, "windowed", "--batches", 2, "--events-per-batch", 10)
            with open(os.path.join(tmp, "events", "part-00001.csv"), "a", encoding="utf-8") as f:
                f.write("1500,seven,3\n")
            proc = self.run_runner("run", "--workload", "windowed", "--data", tmp, "--out", os.path.join(tmp, "o"))
            self.assertNotEqual(proc.returncode, 0)
            self.assertIn("event file 1", proc.stderr)
            self.assertIn("1500,seven,3", proc.stderr)


class Agreement(unittest.TestCase):
    def test_equal_results_in_any_order_agree_within_the_float_tolerance(self):
        a = sorted([(0, 1, 10, 2.5, 7), (0, 2, 3, 1.0, 3)])
        b = sorted([(0, 2, 3, 1.0 + 1e-12, 3), (0, 1, 10, 2.5, 7)])
        self.assertIsNone(harness.compare(a, b, "windowed", (1000, 1000, 1000)))

    def test_a_wrong_count_a_missing_row_and_an_extra_row_are_reported(self):
        ref = sorted([(0, "c1", 5), (0, "c2", 6), (10_000, "c1", 7)])
        wrong = sorted([(0, "c1", 5), (0, "c2", 9), (10_000, "c1", 7)])
        diff = harness.compare(ref, wrong, "ysb", (10_000, 10_000, 20_000))
        self.assertIn("1 missing (first [(0, 'c2', 6)])", diff)
        self.assertIn("1 unexpected (first [(0, 'c2', 9)])", diff)
        self.assertIsNotNone(harness.compare(ref, ref[:2], "ysb", (10_000, 10_000, 20_000)))
        self.assertIsNotNone(harness.compare(ref, ref + [(10_000, "c3", 1)], "ysb", (10_000, 10_000, 20_000)))

    def test_only_complete_windows_are_compared(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "r.csv")
            with open(path, "w", encoding="utf-8") as f:
                f.write("-20000,a,1\n0,a,2\n10000,b,3\n20000,a,4\n")
            rows = harness.load_rows(path, "wordcount", (30_000, 10_000, 40_000))
        self.assertEqual(rows, [(0, "a", 2), (10_000, "b", 3)])

    def test_a_result_missing_a_whole_complete_window_is_caught_even_if_both_agree(self):
        rows = [(0, "c1", 5)]
        diff = harness.compare(rows, rows, "ysb", (10_000, 10_000, 30_000))
        self.assertIn("complete windows starting at [10000, 20000]", diff)

    def test_malformed_result_lines_are_named(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "r.csv")
            with open(path, "w", encoding="utf-8") as f:
                f.write("0,a,2\n0,b\n")
            with self.assertRaisesRegex(ValueError, r"r.csv:2: 2 fields, expected 3"):
                harness.load_rows(path, "ysb", (10_000, 10_000, 20_000))


class KernelTimes(unittest.TestCase):
    """bench/kernel_times.py, which sums an ncu CSV of launch durations by kernel."""

    CSV = "\n".join([
        "device: NVIDIA H200",  # the profiled program's own output comes first
        "==PROF== Disconnected from process 1",
        '"ID","Process ID","Process Name","Host Name","Kernel Name","Context","Stream","gpu__time_duration.sum"',
        '"","","","","","","","ns"',
        '"0","1","bench_gpu","h","void cub::DeviceScanKernel<Policy, int*, (int)1>(int*, int)","1","7","1,500"',
        '"1","1","bench_gpu","h","void run_block_phases<BlockHashFold>(BlockHashFold, long)","1","7","6000"',
        '"2","1","bench_gpu","h","void cub::DeviceScanKernel<Policy, int*, (int)1>(int*, int)","1","7","2500"',
        '"3","1","bench_gpu","h","void run_block_phases<BlockHashFold>(BlockHashFold, long)","1","7","n/a"',
    ]) + "\n"

    def run_on(self, text, *extra):
        with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as f:
            f.write(text)
        try:
            return subprocess.run([sys.executable, os.path.join(ROOT, "bench", "kernel_times.py"), f.name, *extra],
                                  capture_output=True, text=True)
        finally:
            os.unlink(f.name)

    def test_launches_sum_by_kernel_heaviest_first(self):
        proc = self.run_on(self.CSV)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        lines = proc.stdout.splitlines()
        self.assertEqual(lines[0], "3 launches of 2 kernels, 0.01 ms of kernel time in all")
        self.assertIn("run_block_phases<BlockHashFold>", lines[1])
        self.assertIn("60.0%", lines[1])
        self.assertIn("cub::DeviceScanKernel<Policy, int*, (int)1>", lines[2])
        self.assertIn(" 2x ", lines[2])
        self.assertNotIn("(int*, int)", proc.stdout)

    def test_names_keep_template_arguments_and_lose_parameters(self):
        key = load_module("kernel_times", os.path.join(ROOT, "bench", "kernel_times.py")).kernel_key
        self.assertEqual(key("void f<(int)2>(g<h>(int), long)", 100), "f<(int)2>")
        self.assertEqual(key("void " + "k" * 50 + "(int)", 20), "k" * 17 + "...")

    def test_a_file_without_ncu_columns_is_a_clear_error(self):
        proc = self.run_on("bench output only\n")
        self.assertEqual(proc.returncode, 2)
        self.assertIn("no header row with a 'Kernel Name' column", proc.stderr)


class WholeRun(unittest.TestCase):
    def test_sluice_agrees_with_the_reference_on_every_workload(self):
        with tempfile.TemporaryDirectory() as tmp:
            proc = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "sluice-bench"), "--workload", "all",
                                   "--engines", "sluice-cpu,sluice-gpu", "--mode", "test", "--strict", "--out", tmp,
                                   "--runner", RUNNER], capture_output=True, text=True)
            self.assertEqual(proc.returncode, 0, proc.stderr)
            with open(os.path.join(tmp, "results.json"), encoding="utf-8") as f:
                results = json.load(f)
            self.assertTrue(os.path.exists(os.path.join(tmp, "results.md")))
        names = [c["name"] for c in results["cases"]]
        self.assertEqual(len(names), 9, names)
        self.assertIn("ysb-kafka", names)
        for case in results["cases"]:
            cpu = case["engines"]["sluice-cpu"]
            self.assertEqual(cpu["status"], "ok", case["name"])
            self.assertEqual(case["checked_against"], "reference", case["name"])
            self.assertGreater(cpu["result_rows"], 0, case["name"])
            self.assertGreater(cpu["summary"]["throughput_events_per_s"], 0)
            self.assertLessEqual(cpu["summary"]["batch_ms_p50"], cpu["summary"]["batch_ms_p99"])
            gpu = case["engines"]["sluice-gpu"]
            if gpu["status"] != "ok":  # no GPU here, or no CUDA compiler: a stated reason, not a crash
                self.assertEqual(gpu["status"], "cannot run")
                self.assertIn("cuda", gpu["reason"].lower())
        self.assertGreater(results["bound"]["memory_read_bytes_per_s"], 1e8)


if __name__ == "__main__":
    if len(sys.argv) > 1 and not sys.argv[1].startswith("-"):
        RUNNER = sys.argv.pop(1)
    unittest.main(verbosity=2)
