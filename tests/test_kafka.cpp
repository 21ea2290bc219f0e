// The Kafka source and sink against librdkafka's mock cluster (three brokers speaking the
// Kafka wire protocol on loopback), with test data produced by independent clients: kcat,
// the confluent-kafka Python client, and a plain librdkafka producer. Plus the engine's
// acknowledgement rule, which decides when a batch's offsets may be committed.
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "sluice/context.hpp"
#include "sluice/kafka.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using sluice::Duration;
using sluice::Table;
using sluice::Time;

namespace {

// The mock cluster's group coordinator waits session.timeout.ms for members that vanished
// (a killed process) before it rebalances: keep it short so restarts rejoin quickly.
const std::map<std::string, std::string> kFastGroup{{"session.timeout.ms", "6000"}, {"heartbeat.interval.ms", "1000"}};

bool wait_for(const std::function<bool()>& done, Duration timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return done();
}

std::string shell(const std::string& command, int* status = nullptr) {
  std::string out;
  std::FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
  const int rc = pclose(pipe);
  if (status) *status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  return out;
}

fs::path temp_dir(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / ("sluice-kafka-" + name + "-" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

/// A plain librdkafka producer: test data from a client that is not Sluice's sink.
class Producer {
 public:
  explicit Producer(const std::string& brokers) {
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    char err[256];
    rd_kafka_conf_set(conf, "bootstrap.servers", brokers.c_str(), err, sizeof err);
    rd_kafka_conf_set(conf, "linger.ms", "5", err, sizeof err);
    rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  }
  ~Producer() { rd_kafka_destroy(rk_); }
  void send(const std::string& topic, const std::string& value, int32_t partition = RD_KAFKA_PARTITION_UA,
            const std::string& key = "") {
    while (rd_kafka_producev(rk_, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(partition),
                             RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                             RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
                             RD_KAFKA_V_KEY(key.empty() ? nullptr : key.data(), key.size()), RD_KAFKA_V_END) ==
           RD_KAFKA_RESP_ERR__QUEUE_FULL)
      rd_kafka_poll(rk_, 10);
  }
  void flush() { ASSERT_EQ(rd_kafka_flush(rk_, 30000), RD_KAFKA_RESP_ERR_NO_ERROR); }

 private:
  rd_kafka_t* rk_;
};

/// The group's committed offsets for partitions 0..n-1 of @p topic, summed (-1 offsets count 0).
int64_t committed_total(const std::string& brokers, const std::string& group, const std::string& topic, int partitions) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char err[256];
  rd_kafka_conf_set(conf, "bootstrap.servers", brokers.c_str(), err, sizeof err);
  rd_kafka_conf_set(conf, "group.id", group.c_str(), err, sizeof err);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(partitions);
  for (int p = 0; p < partitions; ++p) rd_kafka_topic_partition_list_add(list, topic.c_str(), p);
  int64_t total = -1;
  if (rd_kafka_committed(rk, list, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    total = 0;
    for (int i = 0; i < list->cnt; ++i) total += std::max<int64_t>(0, list->elems[i].offset);
  }
  rd_kafka_topic_partition_list_destroy(list);
  rd_kafka_destroy(rk);
  return total;
}

/// Collects what a stream delivers, batch by batch.
struct Collected {
  std::mutex mutex;
  std::vector<std::string> values;
  std::vector<std::map<int32_t, size_t>> per_batch_partition_counts;
  size_t max_batch = 0;
  size_t size() {
    std::lock_guard lock(mutex);
    return values.size();
  }
  void add(const Table& t) {
    std::lock_guard lock(mutex);
    const auto& v = t.column("value");
    const auto& p = t.column("partition").values<int32_t>();
    std::map<int32_t, size_t> counts;
    for (size_t i = 0; i < t.num_rows(); ++i) {
      values.emplace_back(v.string_at(i));
      counts[p[i]]++;
    }
    if (t.num_rows()) per_batch_partition_counts.push_back(counts);
    max_batch = std::max(max_batch, t.num_rows());
  }
};

sluice::KafkaSourceOptions group_source(const sluice::KafkaMockCluster& cluster, const std::string& topic,
                                        const std::string& group) {
  sluice::KafkaSourceOptions o;
  o.brokers = cluster.bootstrap_servers();
  o.topics = {topic};
  o.group_id = group;
  o.properties = kFastGroup;
  return o;
}

sluice::KafkaSourceOptions assigned_source(const sluice::KafkaMockCluster& cluster, const std::string& topic,
                                           int partitions, const std::string& group) {
  sluice::KafkaSourceOptions o;
  o.brokers = cluster.bootstrap_servers();
  for (int p = 0; p < partitions; ++p) o.assign.push_back({topic, p, std::nullopt});
  o.group_id = group;
  o.start = sluice::KafkaStart::Earliest;
  return o;
}

sluice::ContextOptions realtime(Duration interval = 100ms) {
  sluice::ContextOptions o;
  o.batch_interval = interval;
  return o;
}

void expect_each_once(const std::vector<std::string>& values, size_t n, const std::string& prefix = "v") {
  std::map<std::string, int> seen;
  for (const auto& v : values) seen[v]++;
  EXPECT_EQ(values.size(), n);
  for (size_t i = 0; i < n; ++i) {
    auto it = seen.find(prefix + std::to_string(i));
    ASSERT_NE(it, seen.end()) << prefix << i << " was never delivered";
    ASSERT_EQ(it->second, 1) << prefix << i << " was delivered " << it->second << " times";
  }
}

}  // namespace

// ---------------------------------------------------------------- end to end

TEST(KafkaSource, KcatRecordsArriveOnceWithMetadataAndOffsetsAreCommitted) {
  sluice::KafkaMockCluster cluster(3);
  cluster.create_topic("events", 4, 3);
  const fs::path dir = temp_dir("kcat");
  const size_t n = 20000;
  {
    std::ofstream in(dir / "input.txt");
    for (size_t i = 0; i < n; ++i) in << "k" << i << ":v" << i << "\n";
  }
  int status = 0;
  const std::string out = shell("kcat -P -b " + cluster.bootstrap_servers() + " -t events -K: -l " +
                                (dir / "input.txt").string(), &status);
  ASSERT_EQ(status, 0) << "kcat failed: " << out;

  Collected got;
  std::atomic<int64_t> windowed_max{0};
  std::mutex rows_mutex;
  std::map<int32_t, std::set<int64_t>> offsets;
  size_t key_mismatches = 0;
  {
    sluice::StreamingContext ctx(realtime());
    auto events = sluice::kafka_stream(ctx, group_source(cluster, "events", "readers"));
    events.foreach_batch([&](Time, const Table& t) {
      got.add(t);
      std::lock_guard lock(rows_mutex);
      for (size_t i = 0; i < t.num_rows(); ++i) {
        offsets[t.column("partition").values<int32_t>()[i]].insert(t.column("offset").values<int64_t>()[i]);
        if ("k" + std::string(t.column("value").string_at(i)).substr(1) != t.column("key").string_at(i)) ++key_mismatches;
        EXPECT_TRUE(t.column("timestamp").is_valid(i));
        EXPECT_EQ(t.column("topic").string_at(i), "events");
      }
    });
    events.count_by_window(1s, 100ms).foreach_batch([&](Time, const Table& t) {
      windowed_max = std::max<int64_t>(windowed_max, t.column(0).values<int64_t>()[0]);
    });
    ctx.start();
    ASSERT_TRUE(wait_for([&] { return got.size() >= n; }, 60s)) << "received " << got.size() << " of " << n;
    std::this_thread::sleep_for(1500ms);  // let the 1 s windows that hold the last records close
    ctx.stop(true);
  }
  expect_each_once(got.values, n);
  EXPECT_EQ(key_mismatches, 0u);
  size_t distinct_offsets = 0;
  for (const auto& [p, o] : offsets) {
    EXPECT_TRUE(p >= 0 && p < 4);
    distinct_offsets += o.size();
  }
  EXPECT_EQ(distinct_offsets, n);
  EXPECT_GT(windowed_max.load(), 0);
  EXPECT_EQ(committed_total(cluster.bootstrap_servers(), "readers", "events", 4), static_cast<int64_t>(n));
}

TEST(KafkaSource, FailedBatchIsNotCommittedAndIsReadAgainAfterRestart) {
  sluice::KafkaMockCluster cluster(3);
  cluster.create_topic("orders", 2, 1);
  Producer producer(cluster.bootstrap_servers());
  for (int i = 0; i < 500; ++i) producer.send("orders", "v" + std::to_string(i));
  producer.flush();

  Collected first;
  {
    sluice::StreamingContext ctx(realtime());
    std::atomic<bool> fail{false};
    sluice::kafka_stream(ctx, assigned_source(cluster, "orders", 2, "billing")).foreach_batch([&](Time, const Table& t) {
      if (fail && t.num_rows()) throw std::runtime_error("downstream store unavailable");
      first.add(t);
    });
    ctx.start();
    ASSERT_TRUE(wait_for([&] { return first.size() >= 500; }, 30s));
    std::this_thread::sleep_for(300ms);  // the batch after the last one is acknowledged
    EXPECT_EQ(committed_total(cluster.bootstrap_servers(), "billing", "orders", 2), 500);
    fail = true;
    for (int i = 500; i < 1000; ++i) producer.send("orders", "v" + std::to_string(i));
    producer.flush();
    EXPECT_THROW(ctx.await_termination(20s), sluice::Error);
  }
  EXPECT_EQ(committed_total(cluster.bootstrap_servers(), "billing", "orders", 2), 500)
      << "offsets of a failed batch must not be committed";

  Collected second;
  sluice::KafkaSourceOptions resume = assigned_source(cluster, "orders", 2, "billing");
  resume.start = sluice::KafkaStart::Committed;
  {
    sluice::StreamingContext ctx(realtime());
    sluice::kafka_stream(ctx, resume).foreach_batch([&](Time, const Table& t) { second.add(t); });
    ctx.start();
    ASSERT_TRUE(wait_for([&] { return second.size() >= 500; }, 30s));
    std::this_thread::sleep_for(300ms);
    ctx.stop(true);
  }
  std::set<std::string> got(second.values.begin(), second.values.end());
  EXPECT_EQ(second.values.size(), 500u);
  for (int i = 500; i < 1000; ++i) EXPECT_TRUE(got.count("v" + std::to_string(i))) << "v" << i << " lost";
  EXPECT_EQ(committed_total(cluster.bootstrap_servers(), "billing", "orders", 2), 1000);
}

TEST(KafkaSource, MaxRatePerPartitionCapsEveryBatch) {
  sluice::KafkaMockCluster cluster(1);
  cluster.create_topic("clicks", 2, 1);
  Producer producer(cluster.bootstrap_servers());
  for (int i = 0; i < 2000; ++i) producer.send("clicks", "v" + std::to_string(i), i % 2);
  producer.flush();
  Collected got;
  sluice::KafkaSourceOptions o = assigned_source(cluster, "clicks", 2, "");
  o.max_rate_per_partition = 500;  // x 200 ms = 100 records per partition per batch
  {
    sluice::StreamingContext ctx(realtime(200ms));
    sluice::kafka_stream(ctx, o).foreach_batch([&](Time, const Table& t) { got.add(t); });
    ctx.start();
    ASSERT_TRUE(wait_for([&] { return got.size() >= 2000; }, 30s));
    ctx.stop(true);
  }
  expect_each_once(got.values, 2000);
  EXPECT_GE(got.per_batch_partition_counts.size(), 10u);
  for (const auto& batch : got.per_batch_partition_counts)
    for (const auto& [p, count] : batch) EXPECT_LE(count, 100u) << "partition " << p;
}

TEST(KafkaSource, SlowProcessingPausesFetchingInsteadOfBuffering) {
  sluice::KafkaMockCluster cluster(1);
  cluster.create_topic("firehose", 4, 1);
  Producer producer(cluster.bootstrap_servers());
  const size_t n = 60000;
  for (size_t i = 0; i < n; ++i) producer.send("firehose", "v" + std::to_string(i));
  producer.flush();
  Collected got;
  sluice::KafkaSourceOptions o = assigned_source(cluster, "firehose", 4, "");
  o.queue_capacity = 2000;
  {
    sluice::ContextOptions options = realtime(50ms);
    options.max_pending_batches = 1;
    sluice::StreamingContext ctx(options);
    sluice::kafka_stream(ctx, o).foreach_batch([&](Time, const Table& t) {
      got.add(t);
      std::this_thread::sleep_for(100ms);  // twice the batch interval: the engine falls behind
    });
    ctx.start();
    ASSERT_TRUE(wait_for([&] { return got.size() >= n; }, 120s)) << got.size();
    ctx.stop(true);
  }
  expect_each_once(got.values, n);
  // Without pausing, a batch would hold everything fetched meanwhile (tens of thousands).
  EXPECT_LE(got.max_batch, 2000u + 4 * 4096u) << "the source buffered far beyond queue_capacity";
}

// ---------------------------------------------------------------- faults

namespace {

/// Consumes @p n records (rate-limited so the fault lands mid-stream) while @p fault runs.
void consume_through_fault(sluice::KafkaMockCluster& cluster, const std::string& topic, size_t n,
                           const std::function<void()>& fault) {
  Producer producer(cluster.bootstrap_servers());
  for (size_t i = 0; i < n; ++i) producer.send(topic, "v" + std::to_string(i), static_cast<int32_t>(i % 4));
  producer.flush();
  Collected got;
  sluice::KafkaSourceOptions o = assigned_source(cluster, topic, 4, "faulty");
  o.max_rate_per_partition = 2000;
  {
    sluice::StreamingContext ctx(realtime());
    sluice::kafka_stream(ctx, o).foreach_batch([&](Time, const Table& t) { got.add(t); });
    ctx.start();
    ASSERT_TRUE(wait_for([&] { return got.size() > 0; }, 20s));
    fault();
    ASSERT_TRUE(wait_for([&] { return got.size() >= n; }, 60s)) << "received " << got.size() << " of " << n;
    std::this_thread::sleep_for(300ms);
    ctx.stop(true);
    EXPECT_TRUE(ctx.summary().batches > 0);
  }
  expect_each_once(got.values, n);
  EXPECT_EQ(committed_total(cluster.bootstrap_servers(), "faulty", topic, 4), static_cast<int64_t>(n));
}

}  // namespace

TEST(KafkaFaults, BrokerDownAndBackUpDuringConsumption) {
  sluice::KafkaMockCluster cluster(3);
  cluster.create_topic("t", 4, 3);
  for (int p = 0; p < 4; ++p) cluster.set_partition_leader("t", p, 1);
  consume_through_fault(cluster, "t", 40000, [&] {
    cluster.set_broker_down(1);
    std::this_thread::sleep_for(2s);
    cluster.set_broker_up(1);
  });
}

TEST(KafkaFaults, LeaderChangesDuringConsumption) {
  sluice::KafkaMockCluster cluster(3);
  cluster.create_topic("t", 4, 3);
  consume_through_fault(cluster, "t", 40000, [&] {
    for (int p = 0; p < 4; ++p) cluster.set_partition_leader("t", p, 1 + (p + 1) % 3);
    std::this_thread::sleep_for(500ms);
    for (int p = 0; p < 4; ++p) cluster.set_partition_leader("t", p, 1 + (p + 2) % 3);
  });
}

TEST(KafkaFaults, FetchAndCommitRequestErrors) {
  sluice::KafkaMockCluster cluster(3);
  cluster.create_topic("t", 4, 3);
  consume_through_fault(cluster, "t", 40000, [&] {
    cluster.push_request_errors(/*Fetch*/ 1, 6, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION);
    cluster.push_request_errors(/*OffsetCommit*/ 8, 3, RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT);
  });
}

// ---------------------------------------------------------------- bad input

TEST(KafkaSource, BadOptionsAreClearErrors) {
  auto message = [](sluice::KafkaSourceOptions o) {
    try {
      sluice::make_kafka_source(std::move(o));
    } catch (const sluice::Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  sluice::KafkaSourceOptions o;
  o.topics = {"t"};
  o.group_id = "g";
  EXPECT_NE(message(o).find("brokers"), std::string::npos);
  o.brokers = "localhost:9092";
  o.group_id.clear();
  EXPECT_NE(message(o).find("group_id"), std::string::npos);
  o.group_id = "g";
  o.assign = {{"t", 0, std::nullopt}};
  EXPECT_NE(message(o).find("not both"), std::string::npos);
  o.assign.clear();
  o.properties = {{"no.such.property", "1"}};
  EXPECT_NE(message(o).find("no.such.property"), std::string::npos) << message(o);
  o.properties = {{"enable.auto.commit", "true"}};
  EXPECT_NE(message(o).find("managed by sluice"), std::string::npos);
}

TEST(KafkaSource, UnreachableBrokersAreReportedAndTheEngineKeepsRunning) {
  sluice::KafkaSourceOptions o;
  o.brokers = "127.0.0.1:1";
  o.assign = {{"t", 0, std::nullopt}};
  sluice::StreamingContext ctx(realtime());
  auto stream = sluice::kafka_stream(ctx, o);
  auto* source = &dynamic_cast<sluice::SourceNode&>(*stream.node()).source();
  stream.foreach_batch([](Time, const Table&) {});
  ctx.start();
  EXPECT_TRUE(wait_for([&] { return source->counters().errors > 0; }, 10s)) << "connection errors were not counted";
  EXPECT_TRUE(ctx.running());
  EXPECT_FALSE(ctx.await_termination(300ms));
  ctx.stop(false);
  EXPECT_GT(ctx.summary().batches, 0u);
}

TEST(KafkaSource, UnknownTopicIsReportedAndTheEngineKeepsRunning) {
  sluice::KafkaMockCluster cluster(1);
  cluster.set_topic_error("no-such-topic", RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART);
  sluice::KafkaSourceOptions o = group_source(cluster, "no-such-topic", "lost");
  sluice::StreamingContext ctx(realtime());
  auto stream = sluice::kafka_stream(ctx, o);
  auto* source = &dynamic_cast<sluice::SourceNode&>(*stream.node()).source();
  stream.foreach_batch([](Time, const Table&) {});
  ctx.start();
  EXPECT_TRUE(wait_for([&] { return source->counters().errors > 0; }, 15s)) << "the unknown topic was not reported";
  EXPECT_TRUE(ctx.running());
  ctx.stop(false);
}

TEST(KafkaSource, OversizedValuesAreDeadLetteredAndTheirOffsetsCommitted) {
  sluice::KafkaMockCluster cluster(1);
  cluster.create_topic("mixed", 1, 1);
  Producer producer(cluster.bootstrap_servers());
  for (int i = 0; i < 10; ++i) producer.send("mixed", i % 5 == 4 ? std::string(5000, 'x') : "v" + std::to_string(i));
  producer.flush();
  const fs::path dir = temp_dir("oversized");
  sluice::ContextOptions options = realtime();
  options.dead_letter_path = (dir / "dead.jsonl").string();
  Collected got;
  sluice::KafkaSourceOptions o = assigned_source(cluster, "mixed", 1, "sizes");
  o.max_value_bytes = 1000;
  {
    sluice::StreamingContext ctx(options);
    sluice::kafka_stream(ctx, o).foreach_batch([&](Time, const Table& t) { got.add(t); });
    ctx.start();
    ASSERT_TRUE(wait_for([&] { return ctx.summary().malformed_records >= 2 && got.size() >= 8; }, 20s));
    std::this_thread::sleep_for(300ms);
    ctx.stop(true);
  }
  EXPECT_EQ(got.size(), 8u);
  std::ifstream dead(dir / "dead.jsonl");
  std::string line;
  int lines = 0;
  while (std::getline(dead, line)) {
    ++lines;
    EXPECT_NE(line.find("exceeds max_value_bytes"), std::string::npos) << line;
    EXPECT_NE(line.find("mixed[0]@"), std::string::npos) << line;
  }
  EXPECT_EQ(lines, 2);
  EXPECT_EQ(committed_total(cluster.bootstrap_servers(), "sizes", "mixed", 1), 10);
}

// ---------------------------------------------------------------- sink

TEST(KafkaSink, WritesKeyedJsonThatKcatReads) {
  sluice::KafkaMockCluster cluster(3);
  cluster.create_topic("totals", 3, 1);
  sluice::ContextOptions options;
  options.batch_interval = 1000ms;
  options.clock = std::make_shared<sluice::ManualClock>();
  const fs::path dir = temp_dir("sink");
  options.dead_letter_path = (dir / "dead.jsonl").string();
  sluice::StreamingContext ctx(options);
  std::vector<std::vector<std::pair<std::string, int64_t>>> batches{{{"a", 1}, {"b", 2}}, {{std::string(3000, 'z'), 3}, {"c", 4}}};
  auto pairs = ctx.queue_stream(batches);
  sluice::KafkaSinkOptions sink;
  sink.brokers = cluster.bootstrap_servers();
  sink.topic = "totals";
  sink.key_field = pairs.table_stream().schema()[0].name;
  sink.properties = {{"message.max.bytes", "2000"}};
  sluice::write_to_kafka(pairs.table_stream(), sink);
  ctx.start();
  ctx.advance_batches(2);
  ctx.stop(true);
  EXPECT_EQ(ctx.summary().malformed_records, 1u) << "the oversized message is dead-lettered";

  int status = 0;
  const std::string out = shell("kcat -C -b " + cluster.bootstrap_servers() + " -t totals -o beginning -e -q -f '%k|%s\\n'", &status);
  ASSERT_EQ(status, 0) << out;
  const std::string second = pairs.table_stream().schema()[1].name;
  for (const auto& [k, v] : std::vector<std::pair<std::string, int>>{{"a", 1}, {"b", 2}, {"c", 4}})
    EXPECT_NE(out.find(k + "|{\"" + second + "\":" + std::to_string(v) + "}"), std::string::npos) << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 3) << out;
}

// ---------------------------------------------------------------- acknowledgement rule

namespace {

/// A source that records the engine's acknowledgements.
class AckRecorder final : public sluice::Source {
 public:
  explicit AckRecorder(std::shared_ptr<std::vector<int64_t>> acks) : acks_(std::move(acks)) {}
  std::string name() const override { return "ack recorder"; }
  const sluice::Schema& schema() const override { return schema_; }
  Table next_batch(Time) override { return sluice::lines_table({"x"}); }
  void commit_through(Time t) override { acks_->push_back(t.ms); }

 private:
  sluice::Schema schema_{{"line", sluice::TypeId::String}};
  std::shared_ptr<std::vector<int64_t>> acks_;
};

std::vector<int64_t> acknowledgements(const std::function<void(const sluice::TableStream&)>& build, size_t batches) {
  auto acks = std::make_shared<std::vector<int64_t>>();
  sluice::ContextOptions options;
  options.batch_interval = 1000ms;
  options.clock = std::make_shared<sluice::ManualClock>();
  sluice::StreamingContext ctx(options);
  build(ctx.add_source(std::make_unique<AckRecorder>(acks)));
  ctx.start();
  ctx.advance_batches(batches);
  ctx.stop(false);
  return *acks;
}

}  // namespace

TEST(Acknowledgement, PlainOutputsAcknowledgeEveryBatch) {
  const auto acks = acknowledgements([](const sluice::TableStream& s) { s.count().foreach_batch([](Time, const Table&) {}); }, 4);
  EXPECT_EQ(acks, (std::vector<int64_t>{1000, 2000, 3000, 4000}));
}

TEST(Acknowledgement, SlidingWindowHoldsBatchesUntilTheirLastWindow) {
  // window 3 s sliding by 1 s: the records of batch B are in windows up to B + 2 s.
  const auto acks = acknowledgements(
      [](const sluice::TableStream& s) { s.count_by_window(3000ms, 1000ms).foreach_batch([](Time, const Table&) {}); }, 5);
  EXPECT_EQ(acks, (std::vector<int64_t>{1000, 2000, 3000}));
}

TEST(Acknowledgement, TumblingWindowAcknowledgesAtEachWindowEnd) {
  const auto acks = acknowledgements(
      [](const sluice::TableStream& s) { s.window(2000ms, 2000ms).count().foreach_batch([](Time, const Table&) {}); }, 5);
  EXPECT_EQ(acks, (std::vector<int64_t>{2000, 4000}));
}

TEST(Acknowledgement, TheSlowestOutputDecides) {
  const auto acks = acknowledgements(
      [](const sluice::TableStream& s) {
        s.foreach_batch([](Time, const Table&) {});
        s.window(4000ms, 2000ms).foreach_batch([](Time, const Table&) {});
      },
      6);
  // batch 1000 and 2000: last window 4000; 3000, 4000: last window 6000
  EXPECT_EQ(acks, (std::vector<int64_t>{2000, 4000}));
}
