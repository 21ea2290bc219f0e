// Kafka pipelines run by the sluice command as a separate process, against a mock cluster
// hosted by the test: records produced by the confluent-kafka Python client, and a
// pipeline killed with SIGKILL mid-stream and restarted, with its output counted to prove
// at-least-once delivery; and the transactional sink end to end.
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "sluice/kafka.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

fs::path temp_dir(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / ("sluice-kafka-cli-" + name + "-" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

int run(const std::string& command) {
  const int rc = std::system(command.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/// Starts `sluice run FILE` in the background; returns its pid.
pid_t spawn_pipeline(const fs::path& file, const fs::path& log) {
  const pid_t pid = fork();
  if (pid == 0) {
    const std::string out = log.string();
    std::freopen(out.c_str(), "a", stderr);
    std::freopen(out.c_str(), "a", stdout);
    execl(SLUICE_CLI_PATH, SLUICE_CLI_PATH, "run", file.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  return pid;
}

/// Values of every message in @p topic, read by an independent consumer.
std::vector<std::string> read_topic(const std::string& brokers, const std::string& topic, int partitions,
                                    bool read_committed) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char err[256];
  rd_kafka_conf_set(conf, "bootstrap.servers", brokers.c_str(), err, sizeof err);
  rd_kafka_conf_set(conf, "group.id", "checker", err, sizeof err);
  rd_kafka_conf_set(conf, "isolation.level", read_committed ? "read_committed" : "read_uncommitted", err, sizeof err);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
  rd_kafka_poll_set_consumer(rk);
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(partitions);
  for (int p = 0; p < partitions; ++p)
    rd_kafka_topic_partition_list_add(list, topic.c_str(), p)->offset = RD_KAFKA_OFFSET_BEGINNING;
  rd_kafka_assign(rk, list);
  rd_kafka_topic_partition_list_destroy(list);
  std::vector<std::string> values;
  auto last = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - last < 3s) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, 100);
    if (!m) continue;
    if (!m->err) {
      values.emplace_back(static_cast<const char*>(m->payload), m->len);
      last = std::chrono::steady_clock::now();
    }
    rd_kafka_message_destroy(m);
  }
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  return values;
}

std::string python_producer(const fs::path& dir, const std::string& brokers, const std::string& topic,
                            const std::string& body) {
  const fs::path script = dir / "produce.py";
  std::ofstream(script) << "import sys\n"
                           "from confluent_kafka import Producer\n"
                           "p = Producer({'bootstrap.servers': sys.argv[1]})\n"
                           "topic = sys.argv[2]\n"
                        << body << "p.flush(30)\n";
  return "python3 " + script.string() + " '" + brokers + "' " + topic;
}

const char* kFastGroup = "{session.timeout.ms: 6000, heartbeat.interval.ms: 1000}";

}  // namespace

TEST(KafkaCli, PythonProducedJsonIsParsedAggregatedAndMalformedRecordsDeadLettered) {
  sluice::KafkaMockCluster cluster(3);
  cluster.create_topic("payments", 3, 3);
  const fs::path dir = temp_dir("json");
  const std::string produce = python_producer(dir, cluster.bootstrap_servers(), "payments",
                                              "import json\n"
                                              "for i in range(1000):\n"
                                              "    p.produce(topic, json.dumps({'user': 'u%d' % (i % 10), 'amount': i}))\n"
                                              "    p.poll(0)\n"
                                              "for bad in ['{not json', '{\"user\": \"u1\"}', '[1,2,3]', '', 'null']:\n"
                                              "    p.produce(topic, bad)\n");
  ASSERT_EQ(run(produce), 0) << "the confluent-kafka producer failed";
  std::ofstream(dir / "p.yaml") << "name: payments\nbatch_interval: 200ms\nmax_batches: 40\n"
                                   "dead_letter: " << (dir / "dead.jsonl").string() << "\n"
                                   "sources:\n  pay:\n    type: kafka\n    brokers: \"" << cluster.bootstrap_servers() << "\"\n"
                                   "    topics: [payments]\n    group: ledger\n    properties: " << kFastGroup << "\n"
                                   "    format: json\n    schema: {user: string, amount: int64}\n    metadata: [partition, offset]\n"
                                   "streams:\n  totals:\n    from: pay\n    ops:\n"
                                   "      - reduce_by_key: {key: user, aggregates: {total: \"sum(amount)\", n: \"count()\", "
                                   "last: \"max(offset)\"}}\n"
                                   "sinks:\n  - {stream: totals, type: jsonl, path: " << (dir / "out.jsonl").string() << "}\n";
  ASSERT_EQ(run(std::string(SLUICE_CLI_PATH) + " run " + (dir / "p.yaml").string() + " 2>" + (dir / "log").string()), 0);

  std::ifstream out(dir / "out.jsonl");
  std::string line;
  int64_t total = 0, n = 0;
  while (std::getline(out, line)) {
    // {"time":T,"records":[["u3",4950,100,17], ...]}
    size_t at = 0;
    while ((at = line.find("[\"u", at)) != std::string::npos) {
      const size_t a = line.find(',', at), b = line.find(',', a + 1);
      total += std::stoll(line.substr(a + 1, b - a - 1));
      n += std::stoll(line.substr(b + 1));
      at = b;
    }
  }
  EXPECT_EQ(n, 1000);
  EXPECT_EQ(total, 999 * 1000 / 2);
  std::ifstream dead(dir / "dead.jsonl");
  int dead_lines = 0;
  while (std::getline(dead, line)) ++dead_lines;
  EXPECT_EQ(dead_lines, 4) << "4 malformed records (the empty value is a blank line, which holds no record)";
}

namespace {

/// Runs the pipeline, kills it with SIGKILL @p kills times while it consumes, then lets a
/// last run finish; returns the values of the output topic.
std::vector<std::string> kill_and_restart(bool transactional, int kills) {
  sluice::KafkaMockCluster cluster(3);
  cluster.create_topic("in", 4, 3);
  cluster.create_topic("out", 1, 3);
  const fs::path dir = temp_dir(transactional ? "eos" : "alo");
  const int n = 4000;
  const std::string produce = python_producer(dir, cluster.bootstrap_servers(), "in",
                                              "for i in range(" + std::to_string(n) + "):\n"
                                              "    p.produce(topic, 'r%d' % i, partition=i % 4)\n"
                                              "    p.poll(0)\n");
  EXPECT_EQ(run(produce), 0);
  std::ofstream(dir / "p.yaml") << "name: relay\nbatch_interval: 200ms\n"
                                   "sources:\n  in:\n    type: kafka\n    brokers: \"" << cluster.bootstrap_servers() << "\"\n"
                                   "    topics: [in]\n    group: relay\n    max_rate_per_partition: 250\n"
                                   "    properties: " << kFastGroup << "\n"
                                   "streams:\n  records:\n    from: in\n    ops:\n      - select: [value]\n"
                                   "sinks:\n  - stream: records\n    type: kafka\n    brokers: \"" << cluster.bootstrap_servers() << "\"\n"
                                   "    topic: out\n    value_format: text\n"
                                << (transactional ? "    transactional_id: relay-1\n    offsets_from: in\n" : "");
  for (int k = 0; k < kills; ++k) {
    const pid_t pid = spawn_pipeline(dir / "p.yaml", dir / "log");
    // Kill once output is flowing: after the group join (~3-6 s) and a little consumption.
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    size_t lines = 0;
    while (std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(500ms);
      std::ifstream log(dir / "log");
      std::string all((std::istreambuf_iterator<char>(log)), {});
      if (all.find("assigned") != std::string::npos && ++lines > 3) break;
    }
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
  }
  // The last run: until the input is consumed (16 s at 1000 records/s), then SIGTERM.
  const pid_t pid = spawn_pipeline(dir / "p.yaml", dir / "log");
  std::this_thread::sleep_for(20s);
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the last run did not stop cleanly";
  return read_topic(cluster.bootstrap_servers(), "out", 1, /*read_committed=*/transactional);
}

}  // namespace

TEST(KafkaCli, KilledAndRestartedPipelineLosesNothing) {
  const std::vector<std::string> out = kill_and_restart(/*transactional=*/false, 2);
  std::map<std::string, int> seen;
  for (const auto& v : out) seen[v]++;
  for (int i = 0; i < 4000; ++i) ASSERT_GE(seen["r" + std::to_string(i)], 1) << "r" << i << " was lost";
  EXPECT_GE(out.size(), 4000u);
  std::cout << "at-least-once: " << out.size() - 4000 << " duplicates after 2 kills\n";
}

// librdkafka's mock cluster runs transactions (InitProducerId, AddPartitionsToTxn,
// AddOffsetsToTxn, TxnOffsetCommit, EndTxn) but its TxnOffsetCommit handler discards the
// offsets and its Fetch ignores read_committed (src/rdkafka_mock_handlers.c, v2.0.2 to
// 2026 master), so recovery after a kill cannot be checked against it: a restarted run
// would re-read input whose transaction did commit. What is checked here is the whole
// transactional path against the wire protocol, each record once, with no kill.
TEST(KafkaCli, TransactionalSinkWritesEveryRecordOnceThroughTransactions) {
  const std::vector<std::string> out = kill_and_restart(/*transactional=*/true, /*kills=*/0);
  std::map<std::string, int> seen;
  for (const auto& v : out) seen[v]++;
  for (int i = 0; i < 4000; ++i) {
    const int count = seen["r" + std::to_string(i)];
    ASSERT_EQ(count, 1) << "r" << i << " appears " << count << " times in the output";
  }
  EXPECT_EQ(out.size(), 4000u);
}
