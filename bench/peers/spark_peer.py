#!/usr/bin/env python3
"""The Apache Spark peer of sluice-bench: the workloads of bench/WORKLOADS.md on Spark
Structured Streaming (--engine spark) or on classic DStreams (--engine spark-dstream), one
1-s event file per micro-batch.

  spark_peer.py --workload ysb --data DIR --out OUTDIR [--engine spark|spark-dstream] [--cores 2]

Exit status: 0 with OUTDIR/result.csv and OUTDIR/metrics.json; 2 when Spark cannot run here
(no pyspark, no Java); 3 when the engine does not implement the workload; 1 on any other
failure. On failure the last line on stderr says why."""

import argparse
import glob
import json
import os
import shutil
import sys
import tempfile
import urllib.parse

WORKLOADS = ("ysb", "wordcount", "windowed", "nexmark-q1", "nexmark-q2", "nexmark-q5", "nexmark-q7")
ENGINES = ("spark", "spark-dstream")
BATCH_MS = 1000

SCHEMAS = {
    "ysb": "user_id STRING, page_id STRING, ad_id STRING, ad_type STRING, event_type STRING, "
           "event_time BIGINT, ip_address STRING",
    "text": "event_time BIGINT, line STRING",
    "keyed": "event_time BIGINT, key BIGINT, value BIGINT",
    "nexmark": "kind BIGINT, event_time BIGINT, id BIGINT, auction BIGINT, bidder BIGINT, price BIGINT, "
               "channel STRING, url STRING, name STRING, city STRING, state STRING, category BIGINT, "
               "seller BIGINT, reserve BIGINT, expires BIGINT",
}
# Event-time windows (size, slide) in ms; windowed takes its own from meta.json's params.
WINDOWS = {"ysb": (10_000, 10_000), "wordcount": (30_000, 10_000), "nexmark-q5": (10_000, 2_000),
           "nexmark-q7": (10_000, 10_000)}


class CannotRun(Exception):
    """Ends the run with this exit status and the message as the last line on stderr."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


def data_kind(workload):
    return {"ysb": "ysb", "wordcount": "text", "windowed": "keyed"}.get(workload, "nexmark")


def window_of(workload, params):
    if workload == "windowed":
        return params["window_ms"], params["slide_ms"]
    return WINDOWS.get(workload)


def event_files(data):
    return sorted(glob.glob(os.path.join(data, "events", "*.csv")))


def spark_session(cores, progress_updates):
    from pyspark.sql import SparkSession

    # local[N] runs the executor inside the driver JVM, so the driver heap is all Spark gets;
    # the 1 GiB default runs out on the windowed cases with a million keys.
    memory_gib = max(1, os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**31)
    spark = (SparkSession.builder.master(f"local[{cores}]").appName("sluice-bench")
             .config("spark.driver.memory", f"{memory_gib}g")
             .config("spark.sql.shuffle.partitions", str(cores))
             .config("spark.sql.session.timeZone", "UTC")
             .config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false")
             .config("spark.sql.streaming.numRecentProgressUpdates", str(progress_updates))
             .getOrCreate())
    spark.sparkContext.setLogLevel("WARN")
    return spark, memory_gib


# ---------------------------------------------------------------- Structured Streaming

def structured_query(spark, workload, data, window, events):
    """(streaming DataFrame, key columns, value columns): keys None for a query whose every
    row is a result, otherwise the stateful aggregation whose latest row per key is one."""
    from pyspark.sql import functions as F

    # A zero watermark delay states what the contract guarantees: files come in event-time
    # order, so no event is older than an earlier batch's newest. Spark then drops the state
    # of ended windows.
    ts = events.withColumn("ts", F.timestamp_millis("event_time")).withWatermark("ts", "0 seconds")
    if window:
        size, slide = window
        by_window = F.window("ts", f"{size} milliseconds", f"{slide} milliseconds").alias("window")
        window_start = F.unix_millis(F.col("window.start")).alias("window_start")
    if workload == "ysb":
        campaigns = spark.read.csv(os.path.join(data, "ysb-campaigns.csv"), schema="ad_id STRING, campaign_id STRING")
        counts = (ts.where(F.col("event_type") == "view").join(campaigns, "ad_id")
                  .groupBy(by_window, "campaign_id").agg(F.count("*").alias("count")))
        return counts.select(window_start, "campaign_id", "count"), ["window_start", "campaign_id"], ["count"]
    if workload == "wordcount":
        words = ts.select("ts", F.explode(F.split("line", " ")).alias("word"))
        counts = words.groupBy(by_window, "word").agg(F.count("*").alias("count"))
        return counts.select(window_start, "word", "count"), ["window_start", "word"], ["count"]
    if workload == "windowed":
        aggregates = ts.groupBy(by_window, "key").agg(F.sum("value").alias("sum"), F.avg("value").alias("mean"),
                                                       F.max("value").alias("max"))
        return (aggregates.select(window_start, "key", "sum", "mean", "max"), ["window_start", "key"],
                ["sum", "mean", "max"])
    bids = ts.where(F.col("kind") == 2)
    if workload == "nexmark-q1":
        # A double literal: 0.908 in SQL is a decimal, whose exact product other engines don't compute.
        return (bids.select("auction", "bidder", (F.col("price") * F.lit(0.908)).alias("price_eur"), "event_time"),
                None, None)
    if workload == "nexmark-q2":
        return bids.where(F.col("auction") % 123 == 0).select("auction", "price"), None, None
    if workload == "nexmark-q5":
        counts = bids.groupBy(by_window, "auction").agg(F.count("*").alias("num"))
        return counts.select(window_start, "auction", "num"), ["window_start", "auction"], ["num"]
    # nexmark-q7: the bids with their window; TopBids does the rest micro-batch by micro-batch.
    with_window = bids.select(by_window, "auction", "bidder", "price")
    return with_window.select(window_start, "auction", "bidder", "price"), None, None


class TopBids:
    """nexmark-q7 as a foreachBatch sink. The highest price of a window is the highest of its
    batches' highest prices, and its bids are those of the batches that reach it; so each
    micro-batch finds, on Spark, its own highest bids per window, and the driver merges them
    into (price, bids) per window. No Spark state and no stream-stream join are involved."""

    def __init__(self):
        self.windows = {}

    def __call__(self, batch, batch_id):
        from pyspark.sql import functions as F

        batch.persist()  # read by the aggregation and by the join
        top = batch.groupBy("window_start").agg(F.max("price").alias("price"))
        for start, price, auction, bidder in (batch.join(F.broadcast(top), ["window_start", "price"])
                                              .select("window_start", "price", "auction", "bidder").collect()):
            best = self.windows.get(start)
            if best is None or price > best[0]:
                self.windows[start] = (price, [(auction, bidder)])
            elif price == best[0]:
                best[1].append((auction, bidder))
        batch.unpersist()

    def rows(self):
        return [(start, auction, bidder, price)
                for start, (price, bids) in self.windows.items() for auction, bidder in bids]


def files_in_batch_order(checkpoint):
    """Names of the files the stream read, in the order of its batches, from the file
    source's log; each log entry is one batch."""
    folder = os.path.join(checkpoint, "sources", "0")
    batch_of = {}
    for name in os.listdir(folder):
        if name.startswith("."):  # Hadoop's checksum files
            continue
        with open(os.path.join(folder, name), encoding="utf-8") as f:
            for line in f.read().splitlines()[1:]:  # the first line is the log's version
                entry = json.loads(line)
                batch_of[entry["path"]] = entry["batchId"]
    return [(os.path.basename(urllib.parse.unquote(urllib.parse.urlparse(path).path)), batch)
            for path, batch in sorted(batch_of.items(), key=lambda item: item[1])]


def run_structured(spark, args, window, files, work, result_path):
    """Runs the stream over the backlog, then writes the result; returns (per-batch ms, notes)."""
    from pyspark.sql import functions as F

    checkpoint = os.path.join(work, "checkpoint")
    updates = os.path.join(work, "updates")
    # A glob rather than the folder: Spark orders new files by modification time, and the
    # generator writes several files within one millisecond; the glob's matches come sorted
    # by name, and the ordering by time is stable. files_in_batch_order checks the outcome.
    events = (spark.readStream.schema(SCHEMAS[data_kind(args.workload)])
              .option("maxFilesPerTrigger", 1).option("latestFirst", "false")
              .csv(os.path.join(args.data, "events", "*.csv")))
    stream, keys, values = structured_query(spark, args.workload, args.data, window, events)
    if args.workload == "nexmark-q7":
        sink = TopBids()
    else:
        # Each batch's output rows go to Parquet on the JVM side; collecting them into Python
        # instead cost up to 30% more per batch on a million keys.
        def sink(batch, batch_id):
            batch.write.parquet(os.path.join(updates, f"batch={batch_id}"))

    query = (stream.writeStream.outputMode("update" if keys else "append").foreachBatch(sink)
             .option("checkpointLocation", checkpoint).start())
    query.processAllAvailable()
    query.stop()
    batch_ms = [float(p["durationMs"]["triggerExecution"]) for p in query.recentProgress if p["numInputRows"] > 0]

    order = files_in_batch_order(checkpoint)
    expected = [os.path.basename(f) for f in files]
    if [name for name, _ in order] != expected or len({b for _, b in order}) != len(order):
        raise CannotRun(1, f"spark: the file source did not read one file per batch in name order: {order[:5]}...")

    notes = ["one file per micro-batch (maxFilesPerTrigger=1), checked against the file source's log",
             "first batch includes the JVM's warm-up (code generation, JIT)"]
    if args.workload == "nexmark-q7":
        result = spark.createDataFrame(sink.rows(), "window_start BIGINT, auction BIGINT, bidder BIGINT, price BIGINT")
        notes.append("q7: per micro-batch, the highest bids of each window (Spark); merged per window on the driver")
    elif not keys:
        result = spark.read.parquet(updates).drop("batch")
        notes.append("append mode; foreachBatch writes each batch's rows to Parquet")
    else:
        result = latest_rows(spark.read.parquet(updates), keys, values)
        notes.append("update mode with a 0 s watermark; foreachBatch writes each batch's updated rows to Parquet, "
                     "the latest row per window and key is the result (picked after the timed run)")
        if args.workload == "nexmark-q5":
            # The second level on the final counts, after the timed run: per window, the
            # auctions with the highest count. It reads the counts once; small beside the stream.
            top = result.groupBy("window_start").agg(F.max("num").alias("num"))
            result = result.join(top, ["window_start", "num"]).select("window_start", "auction", "num")
            notes.append("q5: counts per window and auction in the stream; the top auctions per window computed on "
                         "the final counts after the timed run")
    write_dataframe_csv(result, result_path, work)
    return batch_ms, notes


def latest_rows(updates, keys, values):
    """Per key, the values of the latest batch that updated it (column batch, from the
    folder names)."""
    from pyspark.sql import functions as F

    latest = updates.groupBy(*keys).agg(F.max_by(F.struct(*values), "batch").alias("v"))
    return latest.select(*keys, *(F.col(f"v.{c}").alias(c) for c in values))


def write_dataframe_csv(df, path, work):
    """Writes df as one headerless CSV file. Spark's CSV writer prints doubles with Java's
    Double.toString, which reads back as the same double."""
    staging = os.path.join(work, "result")
    df.write.csv(staging)
    with open(path, "wb") as out:
        for part in sorted(glob.glob(os.path.join(staging, "part-*"))):
            with open(part, "rb") as f:
                shutil.copyfileobj(f, out)


# ---------------------------------------------------------------- DStreams

def dstream_query(sc, workload, data, window, lines):
    """(DStream of one batch's or one window's results, function (window start or None, the
    DStream's collected RDD) -> result rows)."""
    from operator import add

    def by_window(pairs, func):
        # reduceByKeyAndWindow without an inverse function, but with each batch's partial
        # reduction forced in its own batch: otherwise DStreams compute it lazily when a
        # window ends, the other batches run no job at all, and per-batch times mean nothing.
        # The window keeps the partials it reads persisted, so they are computed once.
        def compute(rdd):
            rdd.count()  # foreachRDD wants None back

        partial = pairs.reduceByKey(func)
        partial.foreachRDD(compute)
        return partial.window(window[0] // BATCH_MS, window[1] // BATCH_MS).reduceByKey(func)

    fields = lines.map(lambda line: line.split(","))
    if workload == "ysb":
        with open(os.path.join(data, "ysb-campaigns.csv"), encoding="utf-8") as f:
            campaign_of = sc.broadcast(dict(line.rstrip("\n").split(",") for line in f))
        views = fields.filter(lambda e: e[4] == "view" and e[2] in campaign_of.value)
        counts = by_window(views.map(lambda e: (campaign_of.value[e[2]], 1)), add)
        return counts, lambda start, rows: [(start, campaign, n) for campaign, n in rows]
    if workload == "wordcount":
        words = lines.flatMap(lambda line: line.split(",", 1)[1].split(" "))
        counts = by_window(words.map(lambda word: (word, 1)), add)
        return counts, lambda start, rows: [(start, word, n) for word, n in rows]
    if workload == "windowed":
        def merge(a, b):  # (sum, count, max)
            return a[0] + b[0], a[1] + b[1], max(a[2], b[2])

        aggregates = by_window(fields.map(lambda e: (int(e[1]), (int(e[2]), 1, int(e[2])))), merge)
        return aggregates, lambda start, rows: [(start, key, s, s / c, m) for key, (s, c, m) in rows]
    bids = fields.filter(lambda e: e[0] == "2")
    if workload == "nexmark-q1":
        return (bids.map(lambda e: (int(e[3]), int(e[4]), int(e[5]) * 0.908, int(e[1]))),
                lambda start, rows: rows)
    if workload == "nexmark-q2":
        return (bids.map(lambda e: (int(e[3]), int(e[5]))).filter(lambda b: b[0] % 123 == 0),
                lambda start, rows: rows)
    if workload == "nexmark-q5":
        def top_auctions(start, rows):  # the second level, on the driver, as each window ends
            top = max((n for _auction, n in rows), default=None)
            return [(start, auction, n) for auction, n in rows if n == top]

        return by_window(bids.map(lambda e: (int(e[3]), 1)), add), top_auctions

    # nexmark-q7: one key holding (highest price, its bids), so every partial reduction keeps
    # only the bids at the highest price so far.
    def higher(a, b):
        return a if a[0] > b[0] else b if b[0] > a[0] else (a[0], a[1] + b[1])

    top = by_window(bids.map(lambda e: (0, (int(e[5]), [(int(e[3]), int(e[4]))]))), higher)
    return top, lambda start, rows: [(start, auction, bidder, price)
                                     for _, (price, top_bids) in rows for auction, bidder in top_bids]


def dstream_unsupported(window):
    """Why DStreams cannot compute these windows, or None: a DStream window is made of whole
    batches and ends at a multiple of the slide, so its start is one only when the size is."""
    if window and (window[0] % BATCH_MS or window[1] % BATCH_MS or window[0] % window[1]):
        return (f"a window of {window[0]} ms sliding by {window[1]} ms is not whole {BATCH_MS}-ms batches "
                "with the size a multiple of the slide")
    return None


def run_dstream(spark, args, window, files):
    """Runs the DStream program over the files; returns (result rows, per-batch ms, notes)."""
    from pyspark.streaming import StreamingContext
    from pyspark.streaming.listener import StreamingListener

    class BatchTimes(StreamingListener):
        def __init__(self):
            super().__init__()
            self.processing_ms = {}  # batch time (ms) -> processing delay (ms)

        def onBatchCompleted(self, batch_completed):
            info = batch_completed.batchInfo()
            self.processing_ms[info.batchTime().milliseconds()] = info.processingDelay()

    sc = spark.sparkContext
    # The files are read and cached before the start, as a receiver would hold them in memory;
    # parsing stays in the batches.
    rdds = [sc.textFile(path, minPartitions=args.cores).cache() for path in files]
    for rdd in rdds:
        rdd.count()
    ssc = StreamingContext(sc, BATCH_MS // 1000)
    listener = BatchTimes()
    ssc.addStreamingListener(listener)
    stream, to_rows = dstream_query(sc, args.workload, args.data, window, ssc.queueStream(rdds, oneAtATime=True))
    outputs = []  # (batch time in ms, collected RDD)
    stream.foreachRDD(lambda t, rdd: outputs.append((round(t.timestamp() * 1000), rdd.collect())))
    ssc.start()
    while len(listener.processing_ms) < len(files):
        ssc.awaitTerminationOrTimeout(0.1)  # raises what failed in a batch
    ssc.stop(stopSparkContext=False, stopGraceFully=False)

    # Every batch runs a job on its input, so batch i (0-based) runs at first + i*1000 and
    # dequeues file i, event times [i*1000, (i+1)*1000). A window of W ms output at batch time
    # T holds the batches in (T - W, T], so event times [T - first + 1000 - W, T - first + 1000):
    # its window_start. DStream windows slide from first - 1000 (the stream's zero time), so
    # T - first + 1000 and, W being a multiple of the slide, the start are multiples of it.
    first = min(listener.processing_ms)
    last = first + (len(files) - 1) * BATCH_MS
    rows = []
    for t, collected in outputs:
        if t <= last:
            rows += to_rows(t - first + BATCH_MS - window[0] if window else None, collected)
    batch_ms = [float(listener.processing_ms[t]) for t in sorted(listener.processing_ms) if t <= last]
    notes = ["1-s batches over a queueStream of cached RDDs, one per file, in real time"]
    if window:
        notes.append("windows: each batch reduced by key in its own batch (persisted), the window reduces its "
                     "batches' partials when it ends")
    if args.workload == "nexmark-q5":
        notes.append("q5: the top auctions per window are picked on the driver as each window is output (timed)")
    return rows, batch_ms, notes


def write_rows_csv(rows, path):
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(",".join(repr(v) if isinstance(v, float) else str(v) for v in row) + "\n")


# ---------------------------------------------------------------- main

def java_missing():
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        return None if os.access(os.path.join(java_home, "bin", "java"), os.X_OK) else \
            f"JAVA_HOME={java_home} has no bin/java"
    return None if shutil.which("java") else "no Java runtime: java is not on PATH and JAVA_HOME is unset"


METHODS = {
    "spark": "sum of per-batch triggerExecution durations (StreamingQueryProgress) of the micro-batches that read input",
    "spark-dstream": "sum of per-batch processingDelay (StreamingListener.onBatchCompleted) of the batches holding a file",
}


def run(args):
    missing = java_missing()
    if missing:
        raise CannotRun(2, f"{args.engine}: {missing}")
    try:
        import pyspark
    except ImportError as e:
        raise CannotRun(2, f"{args.engine}: cannot import pyspark ({e}); run bench/setup-peers.sh")

    with open(os.path.join(args.data, "meta.json"), encoding="utf-8") as f:
        meta = json.load(f)
    files = event_files(args.data)
    window = window_of(args.workload, meta.get("params", {}))
    unsupported = dstream_unsupported(window) if args.engine == "spark-dstream" else None
    if unsupported:
        raise CannotRun(3, f"spark-dstream: workload {args.workload} not implemented: {unsupported}")

    spark, memory_gib = spark_session(args.cores, progress_updates=2 * len(files) + 100)
    result_path = os.path.join(args.out, "result.csv")
    try:
        if args.engine == "spark":
            work = tempfile.mkdtemp(prefix="spark-peer-")
            try:
                os.makedirs(args.out, exist_ok=True)
                batch_ms, notes = run_structured(spark, args, window, files, work, result_path)
            finally:
                shutil.rmtree(work, ignore_errors=True)
        else:
            rows, batch_ms, notes = run_dstream(spark, args, window, files)
            os.makedirs(args.out, exist_ok=True)
            write_rows_csv(rows, result_path)
    finally:
        spark.stop()

    metrics = {
        "engine": args.engine,
        "engine_version": pyspark.__version__,
        "workload": args.workload,
        "events": meta["events"],
        "input_bytes": sum(os.stat(f).st_size for f in files),
        "processing_seconds": sum(batch_ms) / 1000.0,
        "batch_processing_ms": batch_ms,
        "method": METHODS[args.engine],
        "notes": [f"local[{args.cores}], {args.cores} shuffle partitions, {memory_gib} GiB driver heap"] + notes,
    }
    with open(os.path.join(args.out, "metrics.json"), "w", encoding="utf-8") as f:
        json.dump(metrics, f, indent=2)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workload", required=True, choices=WORKLOADS)
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--engine", choices=ENGINES, default="spark")
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()
    try:
        run(args)
    except CannotRun as e:
        print(e, file=sys.stderr)
        return e.status
    except Exception as e:  # Spark's errors span many lines: end with one that names the cause
        message = " ".join(str(e).split())[:500]
        print(f"{args.engine}: {type(e).__name__}: {message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
