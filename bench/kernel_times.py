#!/usr/bin/env python3
"""Where a GPU workload's kernel time goes: sums an Nsight Compute CSV of per-launch
durations by kernel and prints the heaviest kernels with their share.

The CSV comes from
  ncu --metrics gpu__time_duration.sum --csv --page raw --print-units base <program> ...
(bench/run_gpu_checks.sh's profile step). Kernels are told apart by their demangled name
without its parameter list, template arguments included (Thrust's and CUB's kernels differ
only in those), shortened to --width characters.
"""
import argparse
import csv
import sys
from collections import defaultdict


def kernel_key(name: str, width: int) -> str:
    name = name.strip()
    if name.startswith("void "):
        name = name[5:]
    # Drop the parameter list: the last top-level "(...)".
    depth = 0
    for i in range(len(name) - 1, -1, -1):
        if name[i] == ")":
            depth += 1
        elif name[i] == "(":
            depth -= 1
            if depth == 0:
                name = name[:i]
                break
    return name if len(name) <= width else name[: width - 3] + "..."


def read_launches(path: str, width: int):
    """(kernel, nanoseconds) for every launch in the CSV."""
    with open(path, newline="", errors="replace") as f:
        rows = list(csv.reader(f))
    header_at = next((i for i, row in enumerate(rows) if "Kernel Name" in row), None)
    if header_at is None:
        raise ValueError(f"{path}: no header row with a 'Kernel Name' column (is it ncu --csv --page raw output?)")
    header = rows[header_at]
    name_col = header.index("Kernel Name")
    time_col = next((i for i, h in enumerate(header) if h.startswith("gpu__time_duration")), None)
    if time_col is None:
        raise ValueError(f"{path}: no gpu__time_duration column (profile with --metrics gpu__time_duration.sum)")
    launches = []
    for row in rows[header_at + 1 :]:
        if len(row) <= max(name_col, time_col):
            continue
        text = row[time_col].replace(",", "").strip()
        try:
            ns = float(text)
        except ValueError:
            continue  # the units row, or a launch ncu could not measure
        launches.append((kernel_key(row[name_col], width), ns))
    return launches


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("csv", help="ncu --csv --page raw output with gpu__time_duration.sum")
    parser.add_argument("--top", type=int, default=15, help="kernels to list (default 15)")
    parser.add_argument("--width", type=int, default=150, help="characters of a kernel's name (default 150)")
    args = parser.parse_args()
    try:
        launches = read_launches(args.csv, args.width)
    except (OSError, ValueError) as e:
        print(f"kernel_times: {e}", file=sys.stderr)
        return 2
    if not launches:
        print(f"kernel_times: {args.csv}: no launch with a duration", file=sys.stderr)
        return 1
    total = defaultdict(float)
    count = defaultdict(int)
    for name, ns in launches:
        total[name] += ns
        count[name] += 1
    all_ns = sum(total.values())
    print(f"{len(launches)} launches of {len(total)} kernels, {all_ns / 1e6:.2f} ms of kernel time in all")
    for name in sorted(total, key=total.get, reverse=True)[: args.top]:
        print(f"{total[name] / 1e6:9.3f} ms {100 * total[name] / all_ns:5.1f}% {count[name]:6d}x  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
