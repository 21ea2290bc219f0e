// Kafka consumption benchmark: fills a topic of librdkafka's in-process mock cluster with
// 100-byte records, then measures, R times each (medians reported):
//   - kcat reading the whole topic into /dev/null (the baseline: the librdkafka client alone,
//     wall time of the process), the same on an empty topic (kcat's fixed cost), and kcat with
//     queued.min.messages raised, into /dev/null and into a pipe (which also checks that it
//     reads exactly N records);
//   - a bare librdkafka consumer in this process (poll + destroy), default and tuned;
//   - Sluice's Kafka source feeding a windowed count (count_by_window 1 s / 200 ms) and a
//     plain per-batch record count until every record has been counted, with the brief's
//     settings and with queued.min.messages raised.
// All read the same topic from the same mock cluster (real wire protocol on loopback; the
// brokers run inside this process), so the numbers measure the client path, not a broker's disk.
//
// librdkafka 2.0.2 stops fetching for 1 s whenever its consumer queue holds queued.min.messages
// (default 100000); readers that drain a little too slowly then run in 1 s bursts. The "tuned"
// variants raise that threshold (kTunedQueuedMinMessages) to show the reader without the stall.
//
// The mock cluster keeps at most 5 MiB of log per partition (hardcoded in librdkafka's
// rdkafka_mock.c: max_size 5 MiB, max_cnt 100000 message sets) and silently drops the oldest
// message sets beyond that. 100-byte records take ~110 bytes on the log, so a partition holds
// ~47k of them; the default partition count is therefore raised above 8 when N needs it, and
// the fill is checked (low watermark 0, high watermark = records produced, on every partition).
//
// Usage: bench_kafka [--records N] [--partitions P] [--json PATH] [--repeat R]
//                    [--sluice-property KEY=VALUE]... [--serve SECONDS]
// Prints one JSON object to stdout (and to PATH with --json). MB are 10^6 bytes of record
// values (the payloads), not counting keys, headers or protocol framing.
#include <fcntl.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "sluice/kafka.hpp"
#include "sluice/sluice.hpp"

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kRecordBytes = 100;
/// Records one mock partition holds with a safe margin (5 MiB / ~110 bytes is ~47k).
constexpr size_t kMockRecordsPerPartition = 40'000;
const char* const kTopic = "bench";
const char* const kEmptyTopic = "bench-empty";
/// librdkafka 2.0.2 backs a partition's fetching off for 1 s whenever the consumer queue holds
/// queued.min.messages (default 100000, counted over the one queue all partitions forward to);
/// the "tuned" bare consumer raises it so that the backoff never triggers.
const char* const kTunedQueuedMinMessages = "2000000";

double seconds_since(Clock::time_point t0, Clock::time_point t1) {
  return std::chrono::duration<double>(t1 - t0).count();
}

double cpu_seconds(const rusage& u) {
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

double process_cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return cpu_seconds(u);
}

[[noreturn]] void die(const std::string& what) {
  std::cerr << "bench_kafka: " << what << "\n";
  std::exit(1);
}

struct Args {
  size_t records = 2'000'000;
  int partitions = 0;     // 0: 8, or more when the mock cluster's per-partition log limit needs it
  bool partitions_raised = false;
  std::string json_path;
  int repeat = 3;         // --repeat R: every measurement R times, medians reported
  std::map<std::string, std::string> sluice_properties;  // --sluice-property K=V (repeatable)
  int serve_seconds = 0;  // --serve S: fill the topic, print the brokers, keep the cluster up S seconds
};

Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) die("missing value after " + arg);
      return argv[++i];
    };
    if (arg == "--records") a.records = std::stoull(value());
    else if (arg == "--partitions") a.partitions = std::stoi(value());
    else if (arg == "--json") a.json_path = value();
    else if (arg == "--serve") a.serve_seconds = std::stoi(value());
    else if (arg == "--repeat") a.repeat = std::stoi(value());
    else if (arg == "--sluice-property") {
      const std::string kv = value();
      const auto eq = kv.find('=');
      if (eq == std::string::npos || eq == 0) die("--sluice-property takes KEY=VALUE, got '" + kv + "'");
      a.sluice_properties[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    else if (arg == "--help" || arg == "-h") {
      std::cout << "usage: bench_kafka [--records N (2000000)] [--partitions P (8, raised to fit N)] [--json PATH]"
                   " [--repeat R (3)] [--sluice-property KEY=VALUE]... [--serve SECONDS]\n";
      std::exit(0);
    } else {
      die("unknown argument '" + arg + "' (try --help)");
    }
  }
  if (a.records == 0 || a.partitions < 0 || a.repeat <= 0) die("--records, --partitions and --repeat must be positive");
  const size_t needed = (a.records + kMockRecordsPerPartition - 1) / kMockRecordsPerPartition;
  if (a.partitions == 0) {
    a.partitions = static_cast<int>(std::max<size_t>(8, needed));
    a.partitions_raised = a.partitions > 8;
  } else if (static_cast<size_t>(a.partitions) < needed) {
    die(std::to_string(a.records) + " records need at least " + std::to_string(needed) +
        " partitions: the mock cluster keeps only 5 MiB (~47k records of 100 bytes) per partition");
  }
  return a;
}

// ------------------------------------------------------------------ producing

double fill_topic(const std::string& brokers, size_t records, int partitions) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  auto set = [&](const char* k, const char* v) {
    if (rd_kafka_conf_set(conf, k, v, err, sizeof err) != RD_KAFKA_CONF_OK) die(std::string("producer conf: ") + err);
  };
  set("bootstrap.servers", brokers.c_str());
  set("linger.ms", "5");
  set("batch.num.messages", "10000");
  set("queue.buffering.max.messages", "1000000");
  set("queue.buffering.max.kbytes", "1048576");
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (!rk) die(std::string("cannot create the producer: ") + err);

  const auto t0 = Clock::now();
  char payload[kRecordBytes];
  for (size_t i = 0; i < records; ++i) {
    // 100 printable bytes, no newline (kcat's '%s\n' then writes exactly 101 bytes per record).
    std::memset(payload, 'x', sizeof payload);
    char head[32];
    const int n = std::snprintf(head, sizeof head, "record-%012zu-", i);
    std::memcpy(payload, head, static_cast<size_t>(n));
    while (true) {
      const rd_kafka_resp_err_t e =
          rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(kTopic), RD_KAFKA_V_PARTITION(static_cast<int32_t>(i % partitions)),
                            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_VALUE(payload, sizeof payload),
                            RD_KAFKA_V_END);
      if (e == RD_KAFKA_RESP_ERR_NO_ERROR) break;
      if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) die(std::string("produce failed: ") + rd_kafka_err2str(e));
      rd_kafka_poll(rk, 10);
    }
    if (i % 10000 == 0) rd_kafka_poll(rk, 0);
  }
  if (rd_kafka_flush(rk, 120000) != RD_KAFKA_RESP_ERR_NO_ERROR) die("flush timed out");
  const double s = seconds_since(t0, Clock::now());
  if (rd_kafka_outq_len(rk) != 0) die("producer queue not empty after flush");

  // The mock cluster drops the oldest message sets of a partition beyond 5 MiB: check that
  // every partition still starts at offset 0 and holds exactly what was produced into it.
  size_t held = 0;
  for (int p = 0; p < partitions; ++p) {
    int64_t lo = -1, hi = -1;
    if (auto e = rd_kafka_query_watermark_offsets(rk, kTopic, p, &lo, &hi, 10000))
      die("watermarks of partition " + std::to_string(p) + ": " + rd_kafka_err2str(e));
    const size_t expected = records / partitions + (static_cast<size_t>(p) < records % partitions ? 1 : 0);
    if (lo != 0 || hi != static_cast<int64_t>(expected))
      die("partition " + std::to_string(p) + " holds offsets " + std::to_string(lo) + ".." + std::to_string(hi) +
          ", expected 0.." + std::to_string(expected) + " (the mock cluster keeps 5 MiB per partition: use more partitions)");
    held += static_cast<size_t>(hi - lo);
  }
  if (held != records) die("the topic holds " + std::to_string(held) + " records, expected " + std::to_string(records));
  rd_kafka_destroy(rk);
  return s;
}

// ------------------------------------------------------------------ kcat

/// kcat's arguments; @p tuned adds -X queued.min.messages=... (see kTunedQueuedMinMessages).
std::vector<std::string> kcat_argv(const std::string& brokers, const char* topic, bool tuned) {
  std::vector<std::string> a{"kcat", "-C", "-b", brokers, "-t", topic, "-o", "beginning", "-e", "-q"};
  if (tuned) {
    a.push_back("-X");
    a.push_back(std::string("queued.min.messages=") + kTunedQueuedMinMessages);
  }
  a.push_back("-f");
  a.push_back("%s\\n");
  return a;
}

std::string kcat_command_line(const char* topic, bool tuned, const char* sink = " > /dev/null") {
  std::string c = std::string("kcat -C -b BOOTSTRAP -t ") + topic + " -o beginning -e -q";
  if (tuned) c += std::string(" -X queued.min.messages=") + kTunedQueuedMinMessages;
  return c + " -f '%s\\n'" + sink;
}

pid_t spawn_kcat(const std::string& brokers, const char* topic, bool tuned, int out_fd) {
  std::vector<std::string> args = kcat_argv(brokers, topic, tuned);
  std::vector<char*> argv;
  for (auto& s : args) argv.push_back(s.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
  pid_t pid;
  const int rc = posix_spawnp(&pid, "kcat", &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) die(std::string("cannot start kcat: ") + std::strerror(rc));
  return pid;
}

struct KcatRun {
  double seconds = 0;      // wall time of the kcat process
  double cpu_seconds = 0;  // kcat's own user + system CPU
  double broker_cpu_seconds = 0;  // this process's CPU meanwhile: the mock brokers serving kcat
};

/// kcat reading the whole of @p topic into /dev/null.
KcatRun time_kcat(const std::string& brokers, const char* topic, bool tuned) {
  const int devnull = open("/dev/null", O_WRONLY);
  if (devnull < 0) die("cannot open /dev/null");
  const double cpu0 = process_cpu_seconds();
  const auto t0 = Clock::now();
  const pid_t pid = spawn_kcat(brokers, topic, tuned, devnull);
  int status = 0;
  rusage u{};
  if (wait4(pid, &status, 0, &u) < 0) die("wait4(kcat) failed");
  KcatRun r;
  r.seconds = seconds_since(t0, Clock::now());
  r.broker_cpu_seconds = process_cpu_seconds() - cpu0;
  r.cpu_seconds = cpu_seconds(u);
  close(devnull);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) die("kcat failed (status " + std::to_string(status) + ")");
  return r;
}

struct KcatStream {
  double seconds = 0;  // first byte of output to the byte that completes record N
  double wall_seconds = 0;  // the whole process, as in time_kcat (but writing into a pipe)
};

/// kcat writing into a pipe that this process drains: checks that it reads exactly
/// @p records records (lines and bytes) and times its streaming phase alone, from the
/// first byte it writes to the last byte of record N (so without its start-up and without
/// the end-of-partition detection that -e waits for before exiting).
KcatStream stream_kcat(const std::string& brokers, size_t records, bool tuned) {
  int fds[2];
  if (pipe(fds) != 0) die("pipe failed");
  fcntl(fds[0], F_SETPIPE_SZ, 1 << 20);
  const auto t0 = Clock::now();
  const pid_t pid = spawn_kcat(brokers, kTopic, tuned, fds[1]);
  close(fds[1]);
  std::vector<char> buf(1 << 20);
  const size_t expected_bytes = records * (kRecordBytes + 1);
  size_t bytes = 0, lines = 0;
  Clock::time_point first{}, last{};
  while (true) {
    const ssize_t n = read(fds[0], buf.data(), buf.size());
    if (n < 0) die("read from kcat failed");
    if (n == 0) break;
    if (bytes == 0) first = Clock::now();
    bytes += static_cast<size_t>(n);
    if (bytes >= expected_bytes && last == Clock::time_point{}) last = Clock::now();
    for (ssize_t i = 0; i < n; ++i) lines += buf[static_cast<size_t>(i)] == '\n';
  }
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  KcatStream r;
  r.wall_seconds = seconds_since(t0, Clock::now());
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) die("kcat (piped run) failed");
  if (lines != records || bytes != expected_bytes)
    die("kcat read " + std::to_string(lines) + " records / " + std::to_string(bytes) + " bytes, expected " +
        std::to_string(records) + " / " + std::to_string(expected_bytes));
  r.seconds = seconds_since(first, last);
  return r;
}

// ------------------------------------------------------------------ bare librdkafka consumer

struct BareRun {
  double seconds = 0;  // first message polled to message N polled
  double cpu_seconds = 0;  // this process's CPU meanwhile (consumer + mock brokers)
};

/// The librdkafka consumer alone, in this process: every partition assigned at the beginning
/// (no group join), rd_kafka_consumer_poll() until N messages, each destroyed at once. The
/// same client and defaults as the Sluice source, without the engine, plus @p extra properties.
BareRun run_bare_consumer(const std::string& brokers, int partitions, size_t records, const std::string& group,
                          const std::map<std::string, std::string>& extra) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  auto set = [&](const char* k, const std::string& v) {
    if (rd_kafka_conf_set(conf, k, v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK)
      die(std::string("consumer conf: ") + err);
  };
  set("bootstrap.servers", brokers);
  set("group.id", group);
  set("enable.auto.commit", "false");
  set("enable.partition.eof", "false");
  for (const auto& [k, v] : extra) set(k.c_str(), v);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
  if (!rk) die(std::string("cannot create the consumer: ") + err);
  rd_kafka_poll_set_consumer(rk);
  rd_kafka_topic_partition_list_t* parts = rd_kafka_topic_partition_list_new(partitions);
  for (int p = 0; p < partitions; ++p)
    rd_kafka_topic_partition_list_add(parts, kTopic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
  if (auto e = rd_kafka_assign(rk, parts)) die(std::string("assign failed: ") + rd_kafka_err2str(e));
  rd_kafka_topic_partition_list_destroy(parts);
  size_t got = 0, value_bytes = 0;
  Clock::time_point first{};
  double cpu_first = 0;
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  while (got < records) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, 100);
    if (!m) {
      if (Clock::now() > deadline) die("bare consumer got only " + std::to_string(got) + " records in 60 s");
      continue;
    }
    if (m->err) die(std::string("bare consumer: ") + rd_kafka_message_errstr(m));
    if (got == 0) {
      first = Clock::now();
      cpu_first = process_cpu_seconds();
    }
    ++got;
    value_bytes += m->len;
    rd_kafka_message_destroy(m);
  }
  BareRun r;
  r.seconds = seconds_since(first, Clock::now());
  r.cpu_seconds = process_cpu_seconds() - cpu_first;
  if (value_bytes != records * kRecordBytes) die("bare consumer: wrong byte count");
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  return r;
}

// ------------------------------------------------------------------ Sluice

struct SluiceResult {
  double startup_seconds = 0;  // start() to the first record buffered by the source (group join; excluded)
  double seconds = 0;          // first record buffered -> completion of the batch that made the count N
  double cpu_seconds = 0;      // this process's CPU over `seconds` (Sluice + librdkafka + the mock brokers)
  size_t batches_with_records = 0;
  size_t max_batch_records = 0;
  size_t first_batch_records = 0;
  size_t last_batch_records = 0;
  size_t middle_batches = 0;   // non-empty batches other than the first and the last
  size_t middle_records = 0;   // each middle batch holds exactly one interval of consumption
  size_t gap_batches = 0;      // empty batches between the first and the last non-empty one (stalls)
  size_t total = 0;            // records counted (after a settling wait: duplicates would show)
  size_t window_checks = 0;    // windowed counts compared with the per-batch counts
  size_t window_mismatches = 0;
  int64_t max_window_count = 0;
  /// From the first to the last batch holding records: records and scheduling delay (batch
  /// time to processing start; for the Kafka source that is mostly the cut, i.e. copying the
  /// buffered messages into columns on the batch-cutting thread).
  std::vector<std::pair<size_t, int64_t>> batches;
  std::string summary;
};

/// Records each batch's scheduling delay.
class DelayListener final : public sluice::StreamingListener {
 public:
  void on_batch_started(const sluice::BatchInfo& info) override {
    std::lock_guard lock(mu_);
    delays_[info.batch_time.ms] = info.scheduling_delay.count();
  }
  std::map<int64_t, int64_t> delays() const {
    std::lock_guard lock(mu_);
    return delays_;
  }

 private:
  mutable std::mutex mu_;
  std::map<int64_t, int64_t> delays_;
};

SluiceResult run_sluice(const std::string& brokers, size_t records, sluice::Duration interval,
                        const std::string& group, const std::map<std::string, std::string>& extra_properties) {
  sluice::ContextOptions o;
  o.batch_interval = interval;
  sluice::StreamingContext ctx(o);
  sluice::KafkaSourceOptions k;
  k.brokers = brokers;
  k.topics = {kTopic};
  k.group_id = group;
  k.start = sluice::KafkaStart::Earliest;
  // The mock cluster's group coordinator is slow to (re)join with the default session timeout.
  k.properties = {{"session.timeout.ms", "6000"}, {"heartbeat.interval.ms", "1000"}};
  for (const auto& [key, v] : extra_properties) k.properties[key] = v;
  auto s = sluice::kafka_stream(ctx, k);
  auto* source_node = dynamic_cast<sluice::SourceNode*>(s.node().get());
  if (!source_node) die("kafka_stream did not return a source node");
  auto listener = std::make_shared<DelayListener>();
  ctx.add_listener(listener);

  std::mutex mu;
  std::map<int64_t, size_t> per_batch;    // batch time -> records (plain count)
  std::map<int64_t, int64_t> per_window;  // batch time -> count_by_window(1 s, 200 ms)
  std::atomic<size_t> total{0};
  Clock::time_point t_done{};
  double cpu_done = 0;
  SluiceResult r;

  // Registered first, so it runs first in each batch: the plain per-batch record count.
  s.foreach_batch([&](sluice::Time t, const sluice::Table& table) {
    const size_t n = table.num_rows();
    const auto now = Clock::now();
    std::lock_guard lock(mu);
    per_batch[t.ms] = n;
    if (n == 0) return;
    const size_t after = total.fetch_add(n) + n;
    if (after >= records && t_done == Clock::time_point{}) {
      t_done = now;
      cpu_done = process_cpu_seconds();
    }
  });
  s.count_by_window(std::chrono::seconds(1), interval).foreach_batch([&](sluice::Time t, const sluice::Table& table) {
    const int64_t c = table.num_rows() ? table.column(0).values<int64_t>()[0] : 0;
    std::lock_guard lock(mu);
    per_window[t.ms] = c;
  });

  const auto t_start = Clock::now();
  ctx.start();
  // The moment the consumer has its first record (the group join is over): the source's
  // buffer becomes non-empty. Polled every 0.2 ms; the source's own lock makes this safe.
  Clock::time_point t_first{};
  double cpu_first = 0;
  const auto deadline = t_start + std::chrono::seconds(120);
  while (t_first == Clock::time_point{}) {
    if (source_node->source().has_pending() || total.load() > 0) {
      t_first = Clock::now();
      cpu_first = process_cpu_seconds();
    } else if (Clock::now() > deadline) {
      ctx.stop(false);
      die("sluice received no record within 120 s");
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }
  while (total.load() < records) {
    if (Clock::now() > deadline) {
      ctx.stop(false);
      die("sluice counted only " + std::to_string(total.load()) + " of " + std::to_string(records) +
          " records within 120 s");
    }
    if (!ctx.running()) {
      ctx.await_termination();  // rethrows the error that stopped it
      die("the streaming context stopped early");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  // Let more batches pass (outside the timed part): records counted twice would show here,
  // and the windowed count drains to 0 once the last records leave the 1 s window.
  std::this_thread::sleep_for(interval * 8);
  ctx.stop(false);
  ctx.await_termination();

  std::lock_guard lock(mu);
  r.total = total.load();
  r.startup_seconds = seconds_since(t_start, t_first);
  r.seconds = seconds_since(t_first, t_done);
  r.cpu_seconds = cpu_done - cpu_first;
  std::vector<size_t> nonempty;
  size_t empty_run = 0;
  const auto delays = listener->delays();
  for (const auto& [t, n] : per_batch) {
    if (!n) {
      ++empty_run;
      continue;
    }
    if (!nonempty.empty()) r.gap_batches += empty_run;
    empty_run = 0;
    nonempty.push_back(n);
  }
  {
    // Batches from the first to the last one holding records, empty ones in between included.
    auto first = per_batch.end(), last = per_batch.end();
    for (auto it = per_batch.begin(); it != per_batch.end(); ++it)
      if (it->second) {
        if (first == per_batch.end()) first = it;
        last = it;
      }
    if (first != per_batch.end())
      for (auto it = first; it != std::next(last); ++it) {
        auto d = delays.find(it->first);
        r.batches.push_back({it->second, d == delays.end() ? -1 : d->second});
      }
  }
  r.batches_with_records = nonempty.size();
  for (size_t n : nonempty) r.max_batch_records = std::max(r.max_batch_records, n);
  if (!nonempty.empty()) {
    r.first_batch_records = nonempty.front();
    r.last_batch_records = nonempty.back();
  }
  for (size_t i = 1; i + 1 < nonempty.size(); ++i) {
    r.middle_batches++;
    r.middle_records += nonempty[i];
  }
  const int64_t window_ms = 1000;
  for (const auto& [t, w] : per_window) {
    int64_t expected = 0;
    for (auto it = per_batch.upper_bound(t - window_ms); it != per_batch.end() && it->first <= t; ++it)
      expected += static_cast<int64_t>(it->second);
    r.window_checks++;
    if (expected != w) r.window_mismatches++;
    r.max_window_count = std::max(r.max_window_count, w);
  }
  r.summary = ctx.summary().to_string();
  return r;
}

std::string json_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

std::string json_list(const std::vector<double>& v) {
  std::ostringstream o;
  o.setf(std::ios::fixed);
  o.precision(3);
  o << "[";
  for (size_t i = 0; i < v.size(); ++i) o << (i ? ", " : "") << v[i];
  o << "]";
  return o.str();
}

std::string json_int_list(const std::vector<double>& v) {
  std::string o = "[";
  for (size_t i = 0; i < v.size(); ++i) o += (i ? ", " : "") + std::to_string(static_cast<int64_t>(v[i]));
  return o + "]";
}

/// Per run, the records (or scheduling delays) of the batches from the first to the last holding records.
std::string batch_lists(const std::vector<SluiceResult>& runs, bool delays) {
  std::string o = "[";
  for (size_t r = 0; r < runs.size(); ++r) {
    o += r ? ", [" : "[";
    for (size_t i = 0; i < runs[r].batches.size(); ++i)
      o += (i ? ", " : "") + std::to_string(delays ? runs[r].batches[i].second
                                                   : static_cast<int64_t>(runs[r].batches[i].first));
    o += "]";
  }
  return o + "]";
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = parse_args(argc, argv);
  const size_t bytes = args.records * kRecordBytes;
  const double n = static_cast<double>(args.records);
  const sluice::Duration interval{200};
  const double interval_s = std::chrono::duration<double>(interval).count();

  sluice::KafkaMockCluster cluster(3);
  cluster.create_topic(kTopic, args.partitions, 1);
  cluster.create_topic(kEmptyTopic, args.partitions, 1);
  const std::string brokers = cluster.bootstrap_servers();

  std::cerr << "bench_kafka: producing " << args.records << " records of " << kRecordBytes << " bytes into "
            << args.partitions << " partitions" << (args.partitions_raised ? " (raised from 8 to fit the mock log limit)" : "")
            << " at " << brokers << "\n";
  const double produce_s = fill_topic(brokers, args.records, args.partitions);
  std::cerr << "bench_kafka: produced and checked (watermarks 0.." << args.records / args.partitions
            << " per partition) in " << produce_s << " s\n";
  if (args.serve_seconds > 0) {  // for trying clients by hand against the filled topic
    std::cout << brokers << std::endl;
    std::this_thread::sleep_for(std::chrono::seconds(args.serve_seconds));
    return 0;
  }

  std::vector<double> kcat_s, kcat_cpu, kcat_broker_cpu, kcat_empty_s, kcat_net_s, kcat_stream_s;
  std::vector<double> kcat_tuned_s, kcat_tuned_cpu;
  std::vector<double> bare_s, bare_cpu, tuned_s, tuned_cpu;
  std::vector<double> sl_s, sl_cpu, sl_steady, sl_startup, sl_tuned_s, sl_tuned_startup;
  std::vector<SluiceResult> sluice_tuned_runs;
  std::vector<SluiceResult> sluice_runs;
  for (int run = 0; run < args.repeat; ++run) {
    const KcatRun kc = time_kcat(brokers, kTopic, false);
    kcat_s.push_back(kc.seconds);
    kcat_cpu.push_back(kc.cpu_seconds);
    kcat_broker_cpu.push_back(kc.broker_cpu_seconds);
    const KcatRun empty = time_kcat(brokers, kEmptyTopic, false);
    kcat_empty_s.push_back(empty.seconds);
    kcat_net_s.push_back(kc.seconds - empty.seconds);
    const KcatRun kt = time_kcat(brokers, kTopic, true);
    kcat_tuned_s.push_back(kt.seconds);
    kcat_tuned_cpu.push_back(kt.cpu_seconds);
    const KcatStream ks = stream_kcat(brokers, args.records, true);
    kcat_stream_s.push_back(ks.seconds);
    std::cerr << "bench_kafka: run " << run + 1 << ": kcat > /dev/null " << kc.seconds << " s (kcat CPU "
              << kc.cpu_seconds << " s, mock brokers " << kc.broker_cpu_seconds << " s); on the empty topic "
              << empty.seconds << " s; tuned > /dev/null " << kt.seconds << " s (kcat CPU " << kt.cpu_seconds
              << " s); tuned into a pipe " << ks.wall_seconds << " s, of which first to last record "
              << ks.seconds << " s (exactly " << args.records << " records)\n";

    const std::string tag = std::to_string(getpid()) + "-" + std::to_string(run);
    const BareRun bare = run_bare_consumer(brokers, args.partitions, args.records, "bare-" + tag, {});
    bare_s.push_back(bare.seconds);
    bare_cpu.push_back(bare.cpu_seconds);
    const BareRun tuned = run_bare_consumer(brokers, args.partitions, args.records, "bare-tuned-" + tag,
                                            {{"queued.min.messages", kTunedQueuedMinMessages}});
    tuned_s.push_back(tuned.seconds);
    tuned_cpu.push_back(tuned.cpu_seconds);
    std::cerr << "bench_kafka: run " << run + 1 << ": bare librdkafka consumer, first to last record " << bare.seconds
              << " s (process CPU " << bare.cpu_seconds << " s); with queued.min.messages=" << kTunedQueuedMinMessages
              << " " << tuned.seconds << " s (process CPU " << tuned.cpu_seconds << " s)\n";

    auto run_checked = [&](const std::map<std::string, std::string>& props, const char* label) {
      const std::string group = std::string(props.count("queued.min.messages") ? "bench-tuned-" : "bench-") + tag;
      const SluiceResult sl = run_sluice(brokers, args.records, interval, group, props);
      std::cerr << "bench_kafka: run " << run + 1 << ": sluice" << label << " counted " << sl.total << " records in "
                << sl.seconds << " s (after " << sl.startup_seconds << " s of group join, excluded); batches with "
                << "records: " << sl.batches_with_records << ", largest " << sl.max_batch_records << "; " << sl.summary
                << "\n";
      if (sl.total != args.records)
        die("sluice counted " + std::to_string(sl.total) + " records, expected " + std::to_string(args.records));
      if (sl.window_mismatches != 0)
        die(std::to_string(sl.window_mismatches) + " of " + std::to_string(sl.window_checks) +
            " windowed counts differ from the sum of their batches' counts");
      if (sl.max_window_count <= 0) die("the windowed count never saw a record");
      return sl;
    };
    const SluiceResult sl = run_checked(args.sluice_properties, "");
    sl_s.push_back(sl.seconds);
    sl_cpu.push_back(sl.cpu_seconds);
    sl_startup.push_back(sl.startup_seconds);
    if (sl.middle_batches)
      sl_steady.push_back(static_cast<double>(sl.middle_records) / (static_cast<double>(sl.middle_batches) * interval_s));
    sluice_runs.push_back(sl);

    // The same pipeline with the librdkafka queue threshold raised (see kTunedQueuedMinMessages).
    auto tuned_props = args.sluice_properties;
    tuned_props["queued.min.messages"] = kTunedQueuedMinMessages;
    const SluiceResult st = run_checked(tuned_props, " (queued.min.messages raised)");
    sl_tuned_s.push_back(st.seconds);
    sl_tuned_startup.push_back(st.startup_seconds);
    sluice_tuned_runs.push_back(st);
  }

  const double kcat_med = median(kcat_s), sl_med = median(sl_s);
  const double kcat_rps = n / kcat_med, sluice_rps = n / sl_med;
  const double kcat_stream_rps = n / median(kcat_stream_s), bare_rps = n / median(bare_s);
  const double tuned_rps = n / median(tuned_s), kcat_net_rps = n / median(kcat_net_s);
  const double kcat_tuned_rps = n / median(kcat_tuned_s);
  const double steady_rps = sl_steady.empty() ? 0 : median(sl_steady);
  const double sluice_tuned_rps = n / median(sl_tuned_s);
  auto mbps = [](double rps) { return rps * kRecordBytes / 1e6; };
  size_t checks = 0;
  int64_t max_window = 0;
  std::vector<double> tuned_gaps;
  for (const auto& r : sluice_tuned_runs) {
    checks += r.window_checks;
    tuned_gaps.push_back(static_cast<double>(r.gap_batches));
  }
  for (const auto& r : sluice_runs) {
    checks += r.window_checks;
    max_window = std::max(max_window, r.max_window_count);
  }
  std::vector<double> batches_with_records, max_batch, gaps;
  for (const auto& r : sluice_runs) {
    batches_with_records.push_back(static_cast<double>(r.batches_with_records));
    max_batch.push_back(static_cast<double>(r.max_batch_records));
    gaps.push_back(static_cast<double>(r.gap_batches));
  }

  std::string extra_text;
  for (const auto& [key, v] : args.sluice_properties) extra_text += (extra_text.empty() ? "" : ",") + key + "=" + v;
  std::ostringstream j;
  j.setf(std::ios::fixed);
  j.precision(3);
  j << "{\n"
    << "  \"device\": \"2-core dev VM, no GPU\",\n"
    << "  \"broker\": \"librdkafka mock cluster (3 brokers) in the benchmark's process, loopback\",\n"
    << "  \"librdkafka\": \"" << rd_kafka_version_str() << "\",\n"
    << "  \"topic_partitions\": " << args.partitions << ",\n"
    << "  \"partitions_raised_from_8\": " << (args.partitions_raised ? "true" : "false") << ",\n"
    << "  \"record_bytes\": " << kRecordBytes << ",\n"
    << "  \"records\": " << args.records << ",\n"
    << "  \"bytes\": " << bytes << ",\n"
    << "  \"runs\": " << args.repeat << ",\n"
    << "  \"produce_seconds\": " << produce_s << ",\n"
    << "  \"kcat_command\": \"" << json_escape(kcat_command_line(kTopic, false)) << "\",\n"
    << "  \"kcat_seconds\": " << kcat_med << ",\n"
    << "  \"kcat_records_per_s\": " << static_cast<int64_t>(kcat_rps) << ",\n"
    << "  \"kcat_MB_per_s\": " << mbps(kcat_rps) << ",\n"
    << "  \"kcat_seconds_runs\": " << json_list(kcat_s) << ",\n"
    << "  \"kcat_cpu_seconds_runs\": " << json_list(kcat_cpu) << ",\n"
    << "  \"kcat_broker_cpu_seconds_runs\": " << json_list(kcat_broker_cpu) << ",\n"
    << "  \"kcat_empty_topic_seconds_runs\": " << json_list(kcat_empty_s) << ",\n"
    << "  \"kcat_less_fixed_cost_seconds\": " << median(kcat_net_s) << ",\n"
    << "  \"kcat_less_fixed_cost_records_per_s\": " << static_cast<int64_t>(kcat_net_rps) << ",\n"
    << "  \"kcat_tuned_command\": \"" << json_escape(kcat_command_line(kTopic, true)) << "\",\n"
    << "  \"kcat_tuned_seconds\": " << median(kcat_tuned_s) << ",\n"
    << "  \"kcat_tuned_records_per_s\": " << static_cast<int64_t>(kcat_tuned_rps) << ",\n"
    << "  \"kcat_tuned_MB_per_s\": " << mbps(kcat_tuned_rps) << ",\n"
    << "  \"kcat_tuned_seconds_runs\": " << json_list(kcat_tuned_s) << ",\n"
    << "  \"kcat_tuned_cpu_seconds_runs\": " << json_list(kcat_tuned_cpu) << ",\n"
    << "  \"kcat_stream_command\": \"" << json_escape(kcat_command_line(kTopic, true, " | (pipe drained by bench_kafka)")) << "\",\n"
    << "  \"kcat_stream_seconds\": " << median(kcat_stream_s) << ",\n"
    << "  \"kcat_stream_records_per_s\": " << static_cast<int64_t>(kcat_stream_rps) << ",\n"
    << "  \"kcat_stream_MB_per_s\": " << mbps(kcat_stream_rps) << ",\n"
    << "  \"kcat_stream_seconds_runs\": " << json_list(kcat_stream_s) << ",\n"
    << "  \"kcat_records_verified\": " << args.records << ",\n"
    << "  \"bare_consumer_seconds\": " << median(bare_s) << ",\n"
    << "  \"bare_consumer_records_per_s\": " << static_cast<int64_t>(bare_rps) << ",\n"
    << "  \"bare_consumer_MB_per_s\": " << mbps(bare_rps) << ",\n"
    << "  \"bare_consumer_seconds_runs\": " << json_list(bare_s) << ",\n"
    << "  \"bare_consumer_process_cpu_seconds_runs\": " << json_list(bare_cpu) << ",\n"
    << "  \"bare_tuned_consumer_properties\": \"queued.min.messages=" << kTunedQueuedMinMessages << "\",\n"
    << "  \"bare_tuned_consumer_seconds\": " << median(tuned_s) << ",\n"
    << "  \"bare_tuned_consumer_records_per_s\": " << static_cast<int64_t>(tuned_rps) << ",\n"
    << "  \"bare_tuned_consumer_MB_per_s\": " << mbps(tuned_rps) << ",\n"
    << "  \"bare_tuned_consumer_seconds_runs\": " << json_list(tuned_s) << ",\n"
    << "  \"bare_tuned_consumer_process_cpu_seconds_runs\": " << json_list(tuned_cpu) << ",\n"
    << "  \"sluice_pipeline\": \"kafka_stream -> count_by_window(1 s, 200 ms) + foreach_batch record count, batch interval 200 ms\",\n"
    << "  \"sluice_extra_properties\": \"" << json_escape(extra_text) << "\",\n"
    << "  \"sluice_seconds\": " << sl_med << ",\n"
    << "  \"sluice_records_per_s\": " << static_cast<int64_t>(sluice_rps) << ",\n"
    << "  \"sluice_MB_per_s\": " << mbps(sluice_rps) << ",\n"
    << "  \"sluice_seconds_runs\": " << json_list(sl_s) << ",\n"
    << "  \"sluice_process_cpu_seconds_runs\": " << json_list(sl_cpu) << ",\n"
    << "  \"sluice_steady_records_per_s\": " << static_cast<int64_t>(steady_rps) << ",\n"
    << "  \"sluice_steady_records_per_s_runs\": " << json_int_list(sl_steady) << ",\n"
    << "  \"sluice_batches_with_records_runs\": " << json_int_list(batches_with_records) << ",\n"
    << "  \"sluice_max_batch_records_runs\": " << json_int_list(max_batch) << ",\n"
    << "  \"sluice_empty_batches_between_records_runs\": " << json_int_list(gaps) << ",\n"
    << "  \"sluice_batch_records_runs\": " << batch_lists(sluice_runs, false) << ",\n"
    << "  \"sluice_batch_scheduling_delay_ms_runs\": " << batch_lists(sluice_runs, true) << ",\n"
    << "  \"sluice_startup_seconds_excluded_runs\": " << json_list(sl_startup) << ",\n"
    << "  \"sluice_tuned_properties\": \"queued.min.messages=" << kTunedQueuedMinMessages << "\",\n"
    << "  \"sluice_tuned_seconds\": " << median(sl_tuned_s) << ",\n"
    << "  \"sluice_tuned_records_per_s\": " << static_cast<int64_t>(sluice_tuned_rps) << ",\n"
    << "  \"sluice_tuned_MB_per_s\": " << mbps(sluice_tuned_rps) << ",\n"
    << "  \"sluice_tuned_seconds_runs\": " << json_list(sl_tuned_s) << ",\n"
    << "  \"sluice_tuned_startup_seconds_excluded_runs\": " << json_list(sl_tuned_startup) << ",\n"
    << "  \"sluice_tuned_empty_batches_between_records_runs\": " << json_int_list(tuned_gaps) << ",\n"
    << "  \"sluice_tuned_batch_records_runs\": " << batch_lists(sluice_tuned_runs, false) << ",\n"
    << "  \"sluice_records_counted\": " << args.records << ",\n"
    << "  \"sluice_window_counts_checked\": " << checks << ",\n"
    << "  \"sluice_max_window_count\": " << max_window << ",\n"
    << "  \"ratio\": " << sluice_rps / kcat_rps << ",\n"
    << "  \"ratio_vs_kcat_tuned\": " << sluice_rps / kcat_tuned_rps << ",\n"
    << "  \"ratio_vs_kcat_stream\": " << sluice_rps / kcat_stream_rps << ",\n"
    << "  \"ratio_vs_bare_consumer\": " << sluice_rps / bare_rps << ",\n"
    << "  \"ratio_vs_bare_tuned_consumer\": " << sluice_rps / tuned_rps << ",\n"
    << "  \"ratio_sluice_tuned_vs_kcat_tuned\": " << sluice_tuned_rps / kcat_tuned_rps << ",\n"
    << "  \"ratio_sluice_tuned_vs_bare_tuned_consumer\": " << sluice_tuned_rps / tuned_rps << ",\n"
    << "  \"notes\": \"Medians of the runs; MB = 10^6 bytes of record values. kcat_seconds: wall time of the kcat "
       "process writing into /dev/null (start, metadata, reading all partitions, end-of-partition detection, exit); "
       "kcat_empty_topic_seconds: the same command on an empty topic of as many partitions (its fixed cost). "
       "kcat_tuned: the same with -X queued.min.messages raised (see bare_tuned_consumer). kcat_stream: tuned kcat "
       "writing into a pipe this process drains, from its first output byte to the last byte of record N (also "
       "checks that kcat reads exactly N records). bare_consumer: librdkafka's consumer in this "
       "process, all partitions assigned at the beginning, polling and destroying messages, first to N-th message; "
       "bare_tuned_consumer: the same with queued.min.messages raised, so that librdkafka 2.0.2's 1 s fetch backoff "
       "(taken whenever the consumer queue holds queued.min.messages, default 100000) never triggers. "
       "sluice_seconds: from the first record in the Kafka source's buffer (the consumer group join before it, "
       "sluice_startup_seconds_excluded, is not included) to the completion of the batch that brought the count "
       "to N, so it includes waiting for that batch's cut (up to one 200 ms interval). "
       "sluice_tuned: the same Sluice pipeline with queued.min.messages raised on its consumer. "
       "sluice_steady_records_per_s: records of the non-empty batches other than the first and last, over their "
       "intervals. ratio = sluice_records_per_s / kcat_records_per_s. The broker is librdkafka's mock cluster in "
       "the same process, so the numbers measure the client path, not a real broker's disk or network; the mock "
       "keeps only 5 MiB per partition, hence the partition count.\"\n"
    << "}\n";
  std::cout << j.str();
  if (!args.json_path.empty()) {
    std::ofstream f(args.json_path);
    f << j.str();
    if (!f) die("cannot write " + args.json_path);
  }
  return 0;
}
