#!/usr/bin/env python3
"""The reference engine of sluice-bench: every workload of bench/WORKLOADS.md in plain
Python, one pass over the event files, written for obviousness rather than speed. The
harness checks the other engines' results against it; it reports no timings worth
comparing (its metrics say so)."""

import argparse
import collections
import json
import os
import sys
import time

WORKLOADS = ("ysb", "wordcount", "windowed", "nexmark-q1", "nexmark-q2", "nexmark-q5", "nexmark-q7")


def event_files(data):
    folder = os.path.join(data, "events")
    return [os.path.join(folder, name) for name in sorted(os.listdir(folder)) if name.endswith(".csv")]


def records(data):
    for path in event_files(data):
        with open(path, encoding="utf-8") as f:
            for line in f:
                yield line.rstrip("\n").split(",")


def windows_of(t, size, slide):
    """Starts of the windows [start, start + size), start a multiple of slide, holding t."""
    start = t - t % slide
    while start > t - size:
        yield start
        start -= slide


def ysb(data, params):
    campaign_of = {}
    with open(os.path.join(data, "ysb-campaigns.csv"), encoding="utf-8") as f:
        for line in f:
            ad, campaign = line.rstrip("\n").split(",")
            campaign_of[ad] = campaign
    counts = collections.Counter()
    for _user, _page, ad, _ad_type, event_type, event_time, _ip in records(data):
        if event_type == "view" and ad in campaign_of:
            t = int(event_time)
            counts[(t - t % 10_000, campaign_of[ad])] += 1
    return [(start, campaign, n) for (start, campaign), n in counts.items()]


def wordcount(data, params):
    counts = collections.Counter()
    for event_time, line in records(data):
        for start in windows_of(int(event_time), 30_000, 10_000):
            for word in line.split(" "):
                counts[(start, word)] += 1
    return [(start, word, n) for (start, word), n in counts.items()]


def windowed(data, params):
    size, slide = params["window_ms"], params["slide_ms"]
    state = {}  # (start, key) -> [sum, count, max]
    for event_time, key, value in records(data):
        key, value = int(key), int(value)
        for start in windows_of(int(event_time), size, slide):
            s = state.get((start, key))
            if s is None:
                state[(start, key)] = [value, 1, value]
            else:
                s[0] += value
                s[1] += 1
                s[2] = max(s[2], value)
    return [(start, key, s, s / c, m) for (start, key), (s, c, m) in state.items()]


def bids(data):
    for r in records(data):
        if r[0] == "2":
            yield int(r[3]), int(r[4]), int(r[5]), int(r[1])  # auction, bidder, price, event_time


def nexmark_q1(data, params):
    return [(auction, bidder, 0.908 * price, t) for auction, bidder, price, t in bids(data)]


def nexmark_q2(data, params):
    return [(auction, price) for auction, _bidder, price, _t in bids(data) if auction % 123 == 0]


def nexmark_q5(data, params):
    counts = collections.defaultdict(collections.Counter)
    for auction, _bidder, _price, t in bids(data):
        for start in windows_of(t, 10_000, 2_000):
            counts[start][auction] += 1
    rows = []
    for start, per_auction in counts.items():
        top = max(per_auction.values())
        rows += [(start, auction, n) for auction, n in per_auction.items() if n == top]
    return rows


def nexmark_q7(data, params):
    per_window = collections.defaultdict(list)
    for auction, bidder, price, t in bids(data):
        per_window[t - t % 10_000].append((auction, bidder, price))
    rows = []
    for start, window in per_window.items():
        top = max(price for _a, _b, price in window)
        rows += [(start, auction, bidder, price) for auction, bidder, price in window if price == top]
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workload", required=True, choices=WORKLOADS)
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--cores", type=int, default=1, help="ignored: the reference runs on one core")
    args = parser.parse_args()

    with open(os.path.join(args.data, "meta.json"), encoding="utf-8") as f:
        meta = json.load(f)
    query = globals()[args.workload.replace("-", "_")]
    started = time.perf_counter()
    rows = query(args.data, meta.get("params", {}))
    seconds = time.perf_counter() - started

    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "result.csv"), "w", encoding="utf-8") as f:
        for row in rows:
            f.write(",".join(repr(v) if isinstance(v, float) else str(v) for v in row) + "\n")
    metrics = {
        "engine": "reference",
        "engine_version": "python " + sys.version.split()[0],
        "workload": args.workload,
        "events": meta["events"],
        "input_bytes": sum(os.stat(p).st_size for p in event_files(args.data)),
        "processing_seconds": seconds,
        "batch_processing_ms": [],
        "method": "plain Python over all files at once; a correctness oracle, not a competitor",
        "notes": [],
    }
    with open(os.path.join(args.out, "metrics.json"), "w", encoding="utf-8") as f:
        json.dump(metrics, f, indent=2)


if __name__ == "__main__":
    main()
