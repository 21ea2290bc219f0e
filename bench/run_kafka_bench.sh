#!/usr/bin/env bash
# Builds and runs bench/bench_kafka (Kafka consumption: Sluice vs kcat on librdkafka's mock
# cluster), writing the JSON and a Markdown summary under bench/results/.
#
#   bench/run_kafka_bench.sh [extra bench_kafka flags, e.g. --records 1000000 --repeat 1]
#
# Environment: BUILD_DIR (default build), TAG (default kafka-2core-dev-2026-11-25).
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR=${BUILD_DIR:-build}
TAG=${TAG:-kafka-2core-dev-2026-11-25}
JSON=bench/results/$TAG.json
MD=bench/results/$TAG.md

command -v kcat >/dev/null || { echo "kcat is not installed" >&2; exit 1; }
# Re-configure first: bench/CMakeLists.txt globs bench_*.cpp, so a new benchmark file needs it.
cmake -S . -B "$BUILD_DIR" >/dev/null
cmake --build "$BUILD_DIR" --target bench_kafka -j2

mkdir -p bench/results
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
START=$(date +%s)
"$BUILD_DIR"/bench/bench_kafka --json "$JSON" "$@"
ELAPSED=$(( $(date +%s) - START ))

CPU=$(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
MEM=$(free -g | awk '/^Mem:/ {print $2}')
BUILD_TYPE=$(grep -m1 '^CMAKE_BUILD_TYPE' "$BUILD_DIR/CMakeCache.txt" | cut -d= -f2)
ARGS="$*"

python3 - "$JSON" "$MD" <<EOF
import json, sys
j = json.load(open(sys.argv[1]))
md = sys.argv[2]
def f(x, d=2): return f"{x:,.{d}f}"
def runs(k, d=2): return ", ".join(f"{v:.{d}f}" for v in j[k])
mrec = lambda r: f"{r/1e6:.2f} M/s"
rows = [
  ("kcat > /dev/null (the command below), wall time of the process", j["kcat_seconds"], j["kcat_records_per_s"], j["kcat_MB_per_s"], "kcat_seconds_runs", "1.00"),
  ("Sluice: kafka_stream → count_by_window(1 s, 200 ms) + per-batch count", j["sluice_seconds"], j["sluice_records_per_s"], j["sluice_MB_per_s"], "sluice_seconds_runs", f"{j['ratio']:.2f}"),
]
tq = j["bare_tuned_consumer_properties"]
extra = [
  ("kcat, wall time less its time on an empty topic (fixed cost)", j["kcat_less_fixed_cost_seconds"], j["kcat_less_fixed_cost_records_per_s"], "kcat_less_fixed_cost_seconds_runs"),
  ("bare librdkafka consumer in-process (poll + destroy)", j["bare_consumer_seconds"], j["bare_consumer_records_per_s"], "bare_consumer_seconds_runs"),
  ("Sluice steady state (full 200 ms batches between the first and the last)", None, j["sluice_steady_records_per_s"], None),
]
tuned = [
  (f"kcat -X {tq} > /dev/null, wall time of the process", j["kcat_tuned_seconds"], j["kcat_tuned_records_per_s"], "kcat_tuned_seconds_runs"),
  ("the same kcat writing into a pipe, first to last output byte", j["kcat_stream_seconds"], j["kcat_stream_records_per_s"], "kcat_stream_seconds_runs"),
  (f"bare librdkafka consumer in-process (poll + destroy), {tq}", j["bare_tuned_consumer_seconds"], j["bare_tuned_consumer_records_per_s"], "bare_tuned_consumer_seconds_runs"),
  (f"Sluice, the same pipeline, {j['sluice_tuned_properties']}", j["sluice_tuned_seconds"], j["sluice_tuned_records_per_s"], "sluice_tuned_seconds_runs"),
]
out = []
out.append("# Kafka consumption, 2-core development machine, 2026-11-25\n")
out.append(f"Machine: the project's 2-core / ${MEM} GiB x86-64 development VM ($CPU), no GPU; "
           f"${BUILD_TYPE} build; load average before the run: ${LOAD_BEFORE}. librdkafka {j['librdkafka']} "
           f"(Sluice and kcat use the same system library). The whole script took ${ELAPSED} s.\n")
out.append("Command: \`bench/run_kafka_bench.sh${ARGS:+ $ARGS}\` (builds \`bench_kafka\`, runs "
           f"\`${BUILD_DIR}/bench/bench_kafka --json $JSON${ARGS:+ $ARGS}\`; JSON beside this file).\n")
out.append(f"**Broker:** librdkafka's mock cluster (3 brokers) running inside the benchmark process, "
           "real Kafka wire protocol over loopback. The numbers measure the client path (fetch, decode, "
           "hand-over to the application), not a real broker's disk or network, and the mock brokers share "
           "the same two cores with the client.\n")
out.append(f"Topic: {j['records']:,} records of {j['record_bytes']} bytes ({j['bytes']/1e6:.0f} MB of values) in "
           f"{j['topic_partitions']} partitions, produced with linger.ms=5, batch.num.messages=10000 in "
           f"{j['produce_seconds']:.2f} s. Medians of {j['runs']} runs; MB = 10^6 bytes of record values.\n")
out.append("| reader | seconds | records/s | MB/s | runs (s) | ratio to kcat |")
out.append("| --- | --- | --- | --- | --- | --- |")
for name, s, rps, mbs, rk, ratio in rows:
    out.append(f"| {name} | {s:.3f} | {mrec(rps)} | {mbs:.1f} | {runs(rk)} | {ratio} |")
out.append("")
out.append(f"**Sluice / kcat = {j['ratio']:.2f}.**\n")
out.append("Other references with default librdkafka settings (ratio = the Sluice figure above / reference):\n")
out.append("| reference | seconds | records/s | runs (s) | Sluice / reference |")
out.append("| --- | --- | --- | --- | --- |")
for name, s, rps, rk in extra:
    if not rps: continue  # e.g. no full batch between the first and the last
    out.append(f"| {name} | {'' if s is None else f'{s:.3f}'} | {mrec(rps)} | {runs(rk) if rk in j else ''} | "
               f"{j['sluice_records_per_s']/rps:.2f} |")
out.append("")
out.append(f"With {tq} on every client, which removes librdkafka's 1 s fetch backoff (see the notes; ratio = "
           "Sluice with the same setting / reference):\n")
out.append("| reader | seconds | records/s | MB/s | runs (s) | Sluice / reference |")
out.append("| --- | --- | --- | --- | --- | --- |")
for name, s, rps, rk in tuned:
    out.append(f"| {name} | {s:.3f} | {mrec(rps)} | {rps*j['record_bytes']/1e6:.1f} | {runs(rk)} | "
               f"{j['sluice_tuned_records_per_s']/rps:.2f} |")
out.append("")
out.append("What is timed:\n")
out.append(f"- kcat: \`{j['kcat_command']}\`, wall time of the process (start, metadata, offsets, reading every "
           "partition, end-of-partition detection, exit). The same command on an empty topic of as many "
           f"partitions takes {runs('kcat_empty_topic_seconds_runs')} s: a fixed cost that the kcat figure includes.")
out.append("- Sluice: from the first record in the Kafka source's buffer to the completion of the batch that "
           "brings the count to N. The consumer group join before the first assignment "
           f"({runs('sluice_startup_seconds_excluded_runs')} s with the mock cluster; tuned runs "
           f"{runs('sluice_tuned_startup_seconds_excluded_runs')} s) is **excluded**; the wait for "
           "the last batch's cut (up to one 200 ms interval) is included. Batch interval 200 ms, "
           "session.timeout.ms=6000, heartbeat.interval.ms=1000, KafkaStart::Earliest.")
out.append(f"- Verified: kcat read exactly {j['kcat_records_verified']:,} records ({j['records']*(j['record_bytes']+1):,} "
           f"output bytes) in each run; Sluice counted exactly {j['sluice_records_counted']:,} in each run, with no "
           f"extra records in the batches after; all {j['sluice_window_counts_checked']} windowed counts equal the "
           "sum of their five batches' counts. The fill is checked too (every partition's watermarks are 0..N/P).")
out.append("")
out.append("Notes:\n")
out.append(f"- Partitions: {j['topic_partitions']}, not 8. The mock cluster keeps at most 5 MiB of log per "
           "partition (hardcoded in librdkafka's rdkafka_mock.c: max_size 5 MiB) and silently drops the oldest "
           "message sets beyond that, so 8 partitions hold only ~47k of these records each (~376k in all); with "
           "2M records in 8 partitions, kcat -o beginning started at offset ~202k of each partition and read "
           "376k records. bench_kafka raises the default partition count to fit N (40k records per partition), "
           "refuses a --partitions that is too small, and checks every partition's watermarks after the fill.")
out.append("- librdkafka 2.0.2 stops fetching a partition for 1 s whenever the consumer queue (the one queue that "
           "all partitions forward to) holds queued.min.messages messages (default 100000; see librdkafka issue "
           "#2879). Fetch rounds here land tens of thousands of records at once (12-19 partitions per broker), so "
           "a reader that drains the queue a little too slowly stalls for 1 s at a time: in a debug trace of the "
           "bare consumer the queue peaked at ~105k messages, fetching was switched off 112 times with reason "
           "'queued.min.messages exceeded', and records arrived in bursts exactly 1 s apart. In this run: kcat with "
           f"default settings {runs('kcat_seconds_runs')} s (kcat's own CPU {runs('kcat_cpu_seconds_runs')} s), "
           f"with -X {j['bare_tuned_consumer_properties']} {runs('kcat_tuned_seconds_runs')} s; the bare consumer "
           f"{runs('bare_consumer_seconds_runs')} s with defaults, {runs('bare_tuned_consumer_seconds_runs')} s tuned. "
           "Whether a default-config reader hits the stall varies from run to run (in the runs made while writing "
           "this benchmark, 2026-11-25, kcat's default wall time ranged from 1.7 s to 5.7 s for the same 2M records), so the kcat figure the brief asked "
           "for is a noisy baseline and not a client bound on this setup. The tuned readers are not strict bounds "
           "either: kcat formats and writes every record through stdio, and the bare consumer polls and destroys "
           "every message on one thread, while Sluice polls on one thread and copies and destroys on another.")
gaps = ", ".join(str(int(x)) for x in j["sluice_empty_batches_between_records_runs"])
seqs = "; ".join("[" + ", ".join(f"{n/1000:.0f}k" for n in r) + "]" for r in j["sluice_batch_records_runs"])
cut = [(n, d) for rn, rd in zip(j["sluice_batch_records_runs"], j["sluice_batch_scheduling_delay_ms_runs"])
       for n, d in zip(rn, rd) if n >= 300000 and d > 0]
cut_rate = (sum(n for n, d in cut) / (sum(d for n, d in cut) / 1000)) if cut else 0
tgaps = ", ".join(str(int(x)) for x in j["sluice_tuned_empty_batches_between_records_runs"])
tseqs = "; ".join("[" + ", ".join(f"{n/1000:.0f}k" for n in r) + "]" for r in j["sluice_tuned_batch_records_runs"])
out.append("- Sluice's poll thread only moves polled messages into per-partition buffers (they are copied into "
           "columns and destroyed later, on the batch-cutting thread), so it drains librdkafka's queue faster than "
           "the bare consumer does and usually stays under the threshold, but not always. Records per batch, first "
           f"to last batch holding records, per run: {seqs}; empty 200 ms batches in the middle of the stream: "
           f"{gaps}. With {j['sluice_tuned_properties']}: {tseqs}; empty batches: {tgaps}. Empty batches "
           "mid-stream mean no partition delivered anything for 200 ms. "
           + ("In this run they appear with the default setting only, which points at the same librdkafka backoff "
              "(hitting some partitions at a time), though the Sluice consumer was not traced in these runs."
              if any(j["sluice_empty_batches_between_records_runs"]) and not any(j["sluice_tuned_empty_batches_between_records_runs"])
              else "In this run they do not separate the two settings, so their cause is open."))
slow = [(n, d) for n, d in cut if d > 200]
if cut:
    out.append(f"- Where Sluice spends its time beyond the bare client: each batch's records are copied into six "
               "columns (topic name, partition, offset, timestamp, key, value) on the batch-cutting thread when the "
               "batch is cut. For batches of 300k records or more, the delay from batch time to the start of "
               f"processing (which is mostly that cut) works out to ~{cut_rate/1e6:.1f} M records/s"
               + (", and the largest batches take longer than the 200 ms interval to cut ("
                  + ", ".join(f"{n/1000:.0f}k records: {d} ms" for n, d in slow[:4]) + ")" if slow else "")
               + ". On two cores, that thread competes with the poll thread, librdkafka's broker threads and the "
               "mock brokers.")
out.append(f"- kcat on an empty topic takes {runs('kcat_empty_topic_seconds_runs')} s: start-up plus end-of-partition "
           "detection (the mock broker holds an empty fetch for fetch.wait.max.ms = 500 ms). Sluice's figure "
           "excludes its start-up (the group join) but includes up to one 200 ms interval of waiting for the "
           "last cut; the steady-state figure counts only full batches between the first and the last.")
open(md, "w").write("\n".join(out) + "\n")
EOF
echo "wrote $JSON and $MD"
