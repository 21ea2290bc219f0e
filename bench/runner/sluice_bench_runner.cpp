// sluice-bench-runner: the C++ half of bench/sluice-bench.
//   generate  writes a workload's event files (bench/WORKLOADS.md)
//   run       runs a workload on a Sluice backend over those files: result.csv + metrics.json
//   bound     measures the CPU bound (memory read bandwidth) as JSON
#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <numeric>
#include <sstream>
#include <thread>
#include <unordered_map>

#include <librdkafka/rdkafka.h>

#include "generators.hpp"
#ifdef SLUICE_BENCH_HAS_CUDA
#include "device_runtime.hpp"
#endif
#include "pipeline/expression.hpp"
#include "pipeline/record_parsers.hpp"
#include "sluice/kafka.hpp"
#include "sluice/sluice.hpp"

using namespace sluice;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("sluice-bench-runner: cannot read " + path.string());
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

/// Splits @p text at '\n' into a string column (the ingest step a file or socket source does).
Column split_lines(const std::string& text) {
  Column lines(TypeId::String);
  lines.reserve(static_cast<size_t>(std::count(text.begin(), text.end(), '\n')) + 1, text.size());
  size_t begin = 0;
  while (begin < text.size()) {
    size_t end = text.find('\n', begin);
    if (end == std::string::npos) end = text.size();
    lines.append_string(std::string_view(text).substr(begin, end - begin));
    begin = end + 1;
  }
  return lines;
}

Schema event_schema(const std::string& kind) {
  const auto S = TypeId::String;
  const auto I = TypeId::Int64;
  if (kind == "ysb")
    return Schema{{"user_id", S}, {"page_id", S},    {"ad_id", S},          {"ad_type", S},
                  {"event_type", S}, {"event_time", I}, {"ip_address", S}};
  if (kind == "text") return Schema{{"event_time", I}, {"line", S}};
  if (kind == "keyed") return Schema{{"event_time", I}, {"key", I}, {"value", I}};
  return Schema{{"kind", I},  {"event_time", I}, {"id", I},       {"auction", I},  {"bidder", I},
                {"price", I}, {"channel", S},    {"url", S},      {"name", S},     {"city", S},
                {"state", S}, {"category", I},   {"seller", I},   {"reserve", I},  {"expires", I}};
}

Table make_table(Schema schema, std::vector<Column> columns) { return Table(std::move(schema), std::move(columns)); }

/// A one-column table of strings named @p name.
Table string_table(const std::string& name, Column values) {
  std::vector<Column> cols;
  cols.push_back(std::move(values));
  return make_table(Schema{{name, TypeId::String}}, std::move(cols));
}

/// @p lines parsed as CSV events of @p schema, by @p backend when given (the CUDA backend
/// parses on the device) and on the host otherwise; an event that does not parse is a broken
/// data set, named with @p origin and the record.
Table parse_events(const Column& lines, const Schema& schema, const std::string& origin, ExecutionBackend* backend = nullptr) {
  pipeline::ParseResult parsed =
      backend ? pipeline::parse_csv(lines, schema, pipeline::CsvOptions{}, *backend) : pipeline::parse_csv(lines, schema);
  if (!parsed.malformed.empty())
    throw Error("sluice-bench-runner: " + origin + ": " + parsed.malformed.front().reason + " in '" +
                parsed.malformed.front().record + "'");
  return std::move(parsed.table);
}

/// The event files, read into memory before the timed region; each batch is split into
/// lines and parsed as CSV inside it, as the peers parse theirs. With @p lines_only the
/// batches are the lines (one string field, "line"), for the graph to parse.
class PreloadedCsvFiles final : public Source {
 public:
  PreloadedCsvFiles(std::vector<std::string> files, Schema schema, bool lines_only)
      : files_(std::move(files)), schema_(lines_only ? Schema{{"line", TypeId::String}} : std::move(schema)),
        lines_only_(lines_only), parse_ms_(files_.size(), 0.0) {}
  std::string name() const override { return "preloaded event files"; }
  const Schema& schema() const override { return schema_; }
  Table next_batch(Time) override {
    const size_t i = next_.load();
    if (i >= files_.size()) return Table::empty(schema_);
    const auto t0 = Clock::now();
    Table table = lines_only_ ? string_table("line", split_lines(files_[i]))
                              : parse_events(split_lines(files_[i]), schema_, "event file " + std::to_string(i));
    parse_ms_[i] = ms_since(t0);
    next_.store(i + 1);
    return table;
  }
  bool finished() const override { return next_.load() >= files_.size(); }
  double parse_ms(size_t batch) const { return parse_ms_[batch]; }

 private:
  std::vector<std::string> files_;
  Schema schema_;
  bool lines_only_;
  std::vector<double> parse_ms_;
  std::atomic<size_t> next_{0};
};

/// Per batch time: the graph's processing time, measured around each batch on the
/// processing thread (BatchInfo's durations are whole milliseconds).
class ProcessingTimes final : public StreamingListener {
 public:
  void on_batch_started(const BatchInfo&) override { started_ = Clock::now(); }
  void on_batch_completed(const BatchInfo& info) override {
    const double ms = ms_since(started_);
    std::lock_guard lock(mutex_);
    ms_[info.batch_time.ms] = ms;
  }
  std::map<int64_t, double> snapshot() const {
    std::lock_guard lock(mutex_);
    return ms_;
  }

 private:
  Clock::time_point started_;  // only touched on the processing thread
  mutable std::mutex mutex_;
  std::map<int64_t, double> ms_;
};

/// Shortest decimal that reads back as @p v.
void append_number(std::string& out, double v) {
  char buf[32];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

/// An output for a windowed stream: the window at batch time T holds the files with event
/// time in [T - window, T), and @p write_rows appends its rows to @p result given that start.
template <class WriteRows>
std::function<void(Time, const Table&)> window_rows(std::string& result, int64_t window_ms, WriteRows write_rows) {
  return [&result, window_ms, write_rows](Time t, const Table& table) { write_rows(t.ms - window_ms, table, result); };
}

/// Counts per string @p key over windows of @p window sliding by @p slide (of what the row
/// operations @p before make of each batch, when given); every window's rows go to @p result
/// as "window_start,key,count".
void count_per_key_and_window(const TableStream& input, const std::string& key, Duration window, Duration slide,
                              std::string& result, std::optional<RowOperations> before = std::nullopt) {
  aggregate_by_key_and_window(input, {{key}, {AggregateSpec{AggregateKind::Count, "", "count"}}}, window, slide,
                              std::move(before))
      .foreach_batch(window_rows(result, window.count(), [key](int64_t start, const Table& table, std::string& out) {
        const std::string prefix = std::to_string(start) + ',';
        const Column& keys = table.column(key);
        const auto counts = table.column("count").values<int64_t>();
        for (size_t r = 0; r < table.num_rows(); ++r) {
          out += prefix;
          out += keys.string_at(r);
          out += ',' + std::to_string(counts[r]) + '\n';
        }
      }));
}

/// The workload's graph on @p events; every output row is appended to @p result as CSV.
void build_query(const std::string& workload, const nlohmann::json& meta, const fs::path& data, TableStream events,
                 std::string& result) {
  if (workload == "ysb") {
    std::unordered_map<std::string, std::string> campaign_of;
    {
      std::istringstream in(read_file(data / "ysb-campaigns.csv"));
      std::string line;
      while (std::getline(in, line)) {
        const size_t comma = line.find(',');
        if (comma == std::string::npos) throw Error("sluice-bench-runner: bad line in ysb-campaigns.csv: " + line);
        campaign_of.emplace(line.substr(0, comma), line.substr(comma + 1));
      }
    }
    // filter(event_type == "view") -> project(ad_id) -> join with the static campaign table.
    // On the CUDA backend the filter (a compiled expression) and the join run on the device;
    // on the CPU a hash lookup per viewed event is the cheaper join.
    Column ads(TypeId::String), campaigns(TypeId::String);
    for (const auto& [ad, campaign] : campaign_of) {
      ads.append_string(ad);
      campaigns.append_string(campaign);
    }
    std::vector<Column> table_columns;
    table_columns.push_back(std::move(ads));
    table_columns.push_back(std::move(campaigns));
    const Table campaign_table =
        make_table(Schema{{"ad_id", TypeId::String}, {"campaign_id", TypeId::String}}, std::move(table_columns));
    // The device filters (event_type, ad_id) only: the batch's other columns are not gathered.
    const Schema type_and_ad{{"event_type", TypeId::String}, {"ad_id", TypeId::String}};
    const pipeline::Expression is_view = pipeline::Expression::parse("event_type == 'view'");
    const RowProgram is_view_program = is_view.compile(type_and_ad).value();
    TableStream views = events.transform(
        "ysb_filter_join", Schema{{"campaign_id", TypeId::String}},
        [campaign_of = std::move(campaign_of), campaign_table, is_view, is_view_program, type_and_ad](
            std::span<const Table* const> in, StepContext& ctx) {
          const Table& t = *in[0];
          if (ctx.backend->kind() == BackendKind::Cuda) {
            std::vector<Column> narrow_columns;  // copied once each (an initializer list would copy twice)
            narrow_columns.reserve(2);
            narrow_columns.push_back(t.column("event_type"));
            narrow_columns.push_back(t.column("ad_id"));
            const Table narrow = make_table(type_and_ad, std::move(narrow_columns));
            std::optional<Table> viewed = ctx.backend->filter(narrow, is_view_program);
            if (!viewed) viewed = narrow.filter(is_view.evaluate_mask(narrow));
            const size_t ad_key[] = {1}, campaign_key[] = {0};
            Table joined = ctx.backend->join(*viewed, ad_key, campaign_table, campaign_key, JoinKind::Inner);
            return string_table("campaign_id", joined.column("campaign_id"));
          }
          const Column& type = t.column("event_type");
          const Column& ad = t.column("ad_id");
          Column campaign(TypeId::String);
          for (size_t r = 0; r < t.num_rows(); ++r) {
            if (type.string_at(r) != "view") continue;
            auto it = campaign_of.find(std::string(ad.string_at(r)));
            if (it != campaign_of.end()) campaign.append_string(it->second);
          }
          return string_table("campaign_id", std::move(campaign));
        });
    count_per_key_and_window(views, "campaign_id", 10s, 10s, result);
    return;
  }

  if (workload == "wordcount") {
    // split(line, " ") -> select(word) -> count per word and window. On the CUDA backend the
    // window takes the two operations along: the lines are split and counted on the device,
    // and only each batch's distinct words come back. On the CPU one loop splits the lines.
    const Schema& schema = events.schema();
    const size_t line_field = schema.index_of("line");
    std::vector<Field> split_fields = schema.fields();
    split_fields[line_field] = Field{"word", TypeId::String, false, {}};
    RowOperations split;
    split.name = "split_words";
    split.input = schema;
    split.steps = {RowChainStep{RowChainStep::Kind::Split, {}, {}, line_field, " ", Schema(split_fields)},
                   RowChainStep{RowChainStep::Kind::Map, {}, {static_cast<int32_t>(line_field)}, 0, {}, Schema{{"word", TypeId::String}}}};
    split.run = [](const Table& t, StepContext& ctx) {
      const Column& lines = t.column("line");
      if (ctx.backend->kind() == BackendKind::Cuda) return string_table("word", ctx.backend->split_strings(lines, " ").tokens);
      Column words(TypeId::String);
      for (size_t r = 0; r < lines.size(); ++r) {
        std::string_view line = lines.string_at(r);
        while (!line.empty()) {
          const size_t space = line.find(' ');
          words.append_string(line.substr(0, space));
          if (space == std::string_view::npos) break;
          line.remove_prefix(space + 1);
        }
      }
      return string_table("word", std::move(words));
    };
    count_per_key_and_window(events, "word", 30s, 10s, result, std::move(split));
    return;
  }

  if (workload == "windowed") {
    const int64_t window_ms = meta.at("params").at("window_ms").get<int64_t>();
    const int64_t slide_ms = meta.at("params").at("slide_ms").get<int64_t>();
    KeyedAggregation plan{{"key"},
                          {AggregateSpec{AggregateKind::Sum, "value", "sum"}, AggregateSpec{AggregateKind::Mean, "value", "mean"},
                           AggregateSpec{AggregateKind::Max, "value", "max"}}};
    aggregate_by_key_and_window(events, plan, Duration(window_ms), Duration(slide_ms))
        .foreach_batch(window_rows(result, window_ms, [](int64_t start, const Table& t, std::string& out) {
          const auto key = t.column("key").values<int64_t>();
          const auto sum = t.column("sum").values<int64_t>();
          const auto mean = t.column("mean").values<double>();
          const auto max = t.column("max").values<int64_t>();
          for (size_t r = 0; r < t.num_rows(); ++r) {
            out += std::to_string(start) + ',' + std::to_string(key[r]) + ',' + std::to_string(sum[r]) + ',';
            append_number(out, mean[r]);
            out += ',' + std::to_string(max[r]) + '\n';
          }
        }));
    return;
  }

  // NEXMark: every query starts from the bids.
  const Schema bid_schema{{"auction", TypeId::Int64}, {"bidder", TypeId::Int64}, {"price", TypeId::Int64},
                          {"event_time", TypeId::Int64}};
  TableStream bids = events.transform("bids", bid_schema, [bid_schema](std::span<const Table* const> in, StepContext&) {
    const Table& t = *in[0];
    const auto kind = t.column("kind").values<int64_t>();
    std::vector<int64_t> rows;
    for (size_t r = 0; r < t.num_rows(); ++r)
      if (kind[r] == 2) rows.push_back(static_cast<int64_t>(r));
    std::vector<Column> cols;
    for (const char* name : {"auction", "bidder", "price", "event_time"}) cols.push_back(t.column(name).gather(rows));
    return make_table(bid_schema, std::move(cols));
  });

  if (workload == "nexmark-q1") {
    bids.foreach_batch([&result](Time, const Table& t) {
      const auto auction = t.column("auction").values<int64_t>();
      const auto bidder = t.column("bidder").values<int64_t>();
      const auto price = t.column("price").values<int64_t>();
      const auto time = t.column("event_time").values<int64_t>();
      for (size_t r = 0; r < t.num_rows(); ++r) {
        result += std::to_string(auction[r]) + ',' + std::to_string(bidder[r]) + ',';
        append_number(result, 0.908 * static_cast<double>(price[r]));
        result += ',' + std::to_string(time[r]) + '\n';
      }
    });
  } else if (workload == "nexmark-q2") {
    bids.foreach_batch([&result](Time, const Table& t) {
      const auto auction = t.column("auction").values<int64_t>();
      const auto price = t.column("price").values<int64_t>();
      for (size_t r = 0; r < t.num_rows(); ++r)
        if (auction[r] % 123 == 0) result += std::to_string(auction[r]) + ',' + std::to_string(price[r]) + '\n';
    });
  } else if (workload == "nexmark-q5") {
    // Hot items: bids per auction over 10 s windows sliding by 2 s, then the top auction(s).
    aggregate_by_key_and_window(bids, {{"auction"}, {AggregateSpec{AggregateKind::Count, "", "num"}}}, 10s, 2s)
        .foreach_batch(window_rows(result, 10'000, [](int64_t start, const Table& t, std::string& out) {
          const auto auction = t.column("auction").values<int64_t>();
          const auto num = t.column("num").values<int64_t>();
          if (num.empty()) return;
          const int64_t top = *std::max_element(num.begin(), num.end());
          for (size_t r = 0; r < t.num_rows(); ++r)
            if (num[r] == top)
              out += std::to_string(start) + ',' + std::to_string(auction[r]) + ',' + std::to_string(top) + '\n';
        }));
  } else if (workload == "nexmark-q7") {
    // Highest bid per 10 s tumbling window: the window's bids, then those at its max price.
    bids.window(10s, 10s).foreach_batch(window_rows(result, 10'000, [](int64_t start, const Table& t, std::string& out) {
      const auto auction = t.column("auction").values<int64_t>();
      const auto bidder = t.column("bidder").values<int64_t>();
      const auto price = t.column("price").values<int64_t>();
      if (price.empty()) return;
      const int64_t top = *std::max_element(price.begin(), price.end());
      for (size_t r = 0; r < t.num_rows(); ++r)
        if (price[r] == top)
          out += std::to_string(start) + ',' + std::to_string(auction[r]) + ',' + std::to_string(bidder[r]) + ',' +
                 std::to_string(top) + '\n';
    }));
  } else {
    throw Error("sluice-bench-runner: unknown workload '" + workload + "'");
  }
}

/// Partitions for the Kafka topic: as many as divide a batch evenly (so that a per-partition
/// rate cap cuts exactly one file per batch), each under the mock cluster's 5 MiB log.
int kafka_partitions(int64_t events_per_batch, uint64_t bytes) {
  for (int p = 64; p >= 1; --p)
    if (events_per_batch % p == 0 && bytes / static_cast<uint64_t>(p) < (uint64_t{4} << 20)) return p;
  throw Error("sluice-bench-runner: " + std::to_string(bytes) +
              " bytes of events do not fit the mock Kafka cluster (5 MiB per partition, 64 partitions at most, "
              "and the partitions must divide the " + std::to_string(events_per_batch) + " events of a batch)");
}

/// Produces every line of every file, line j of a file to partition j % partitions, in order.
void produce_events(const std::string& brokers, const std::string& topic, int partitions,
                    const std::vector<std::string>& files) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  for (const auto& [k, v] : std::map<std::string, std::string>{{"bootstrap.servers", brokers},
                                                              {"linger.ms", "5"},
                                                              {"batch.num.messages", "10000"},
                                                              {"queue.buffering.max.messages", "1000000"},
                                                              {"queue.buffering.max.kbytes", "1048576"}})
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      throw Error("sluice-bench-runner: producer property " + k + ": " + err);
    }
  static std::atomic<size_t> failed;
  failed = 0;
  rd_kafka_conf_set_dr_msg_cb(conf, [](rd_kafka_t*, const rd_kafka_message_t* m, void*) {
    if (m->err) failed++;
  });
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (!rk) throw Error(std::string("sluice-bench-runner: creating the Kafka producer: ") + err);
  std::unique_ptr<rd_kafka_t, decltype(&rd_kafka_destroy)> producer(rk, &rd_kafka_destroy);
  for (const std::string& text : files) {
    size_t begin = 0, line = 0;
    while (begin < text.size()) {
      size_t end = text.find('\n', begin);
      if (end == std::string::npos) end = text.size();
      while (true) {
        const rd_kafka_resp_err_t e = rd_kafka_producev(
            rk, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(static_cast<int32_t>(line % partitions)),
            RD_KAFKA_V_VALUE(const_cast<char*>(text.data() + begin), end - begin),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR) break;
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL)
          throw Error(std::string("sluice-bench-runner: producing to Kafka: ") + rd_kafka_err2str(e));
        rd_kafka_poll(rk, 10);
      }
      ++line;
      begin = end + 1;
    }
    rd_kafka_poll(rk, 0);
  }
  if (rd_kafka_flush(rk, 120'000) != RD_KAFKA_RESP_ERR_NO_ERROR || failed > 0)
    throw Error("sluice-bench-runner: " + std::to_string(failed.load()) + " events were not delivered to Kafka (" +
                std::to_string(rd_kafka_outq_len(rk)) + " still queued)");
}

int run(const std::string& workload, const std::string& engine, const std::string& source_kind, bool parse_in_graph,
        const fs::path& data, const fs::path& out) {
  const nlohmann::json meta = nlohmann::json::parse(read_file(data / "meta.json"));
  const std::string kind = bench::data_kind(workload);
  if (meta.at("kind").get<std::string>() != kind)
    throw Error("sluice-bench-runner: " + data.string() + " holds '" + meta.at("kind").get<std::string>() +
                "' data, workload " + workload + " needs '" + kind + "'");
  BackendKind backend;
  if (engine == "sluice-cpu") {
    backend = BackendKind::Cpu;
  } else if (engine == "sluice-gpu") {
    backend = BackendKind::Cuda;
    make_backend(backend);  // throws with the reason ("compiled without CUDA", "no CUDA device") before any work
  } else {
    throw Error("sluice-bench-runner: unknown engine '" + engine + "' (sluice-cpu, sluice-gpu)");
  }

  const int64_t batches = meta.at("batches").get<int64_t>();
  std::vector<std::string> files;
  uint64_t bytes = 0;
  for (int64_t b = 0; b < batches; ++b) {
    char name[32];
    std::snprintf(name, sizeof name, "part-%05lld.csv", static_cast<long long>(b));
    files.push_back(read_file(data / "events" / name));
    bytes += files.back().size();
  }

  auto clock = std::make_shared<ManualClock>();
  StreamingContext ctx(ContextOptions{.batch_interval = 1000ms, .backend = backend, .clock = clock});
  const Schema schema = event_schema(kind);
  TableStream events;
  PreloadedCsvFiles* files_source = nullptr;
  Source* kafka_source = nullptr;
  std::unique_ptr<KafkaMockCluster> cluster;
  const int64_t total_events = meta.at("events").get<int64_t>();
  double produce_ms = 0;
  int partitions = 0;
  // With parse_in_graph (sluice-gpu's default) the graph parses each batch's lines through
  // the backend, on the device for the CUDA backend (which starts copying a batch's lines
  // while the batch before is processed); otherwise (sluice-cpu's) the batch cutter parses
  // them on the host, on its own thread, while the batch before is processed.
  auto parse_in = [schema](const std::string& field, const std::string& origin) {
    return [schema, field, origin](std::span<const Table* const> in, StepContext& ctx) {
      return parse_events(in[0]->column(field), schema, origin, ctx.backend);
    };
  };
  if (source_kind == "files") {
    auto source = std::make_unique<PreloadedCsvFiles>(std::move(files), schema, parse_in_graph);
    files_source = source.get();
    events = ctx.add_source(std::move(source));
    if (parse_in_graph) events = events.transform("parse_csv", schema, parse_in("line", "event file"));
  } else if (source_kind == "kafka") {
    // The events go to a topic on librdkafka's mock cluster (in this process, before the
    // timed region); the Kafka source reads them and the graph parses each value as CSV.
    const int64_t per_batch = meta.at("events_per_batch").get<int64_t>();
    partitions = kafka_partitions(per_batch, bytes);
    cluster = std::make_unique<KafkaMockCluster>(1);
    cluster->create_topic("events", partitions);
    const auto p0 = Clock::now();
    produce_events(cluster->bootstrap_servers(), "events", partitions, files);
    produce_ms = ms_since(p0);
    files.clear();
    KafkaSourceOptions options;
    options.brokers = cluster->bootstrap_servers();
    for (int p = 0; p < partitions; ++p) options.assign.push_back({"events", p, 0});
    // A per-partition cap of one file's share makes each batch exactly one file (one second
    // of event time), so batch-time windows are the event-time windows of the other engines.
    options.max_rate_per_partition = static_cast<double>(per_batch / partitions);
    options.queue_capacity = static_cast<size_t>(total_events) + static_cast<size_t>(partitions);
    auto source = make_kafka_source(options);
    kafka_source = source.get();
    TableStream records = ctx.add_source(std::move(source));
    events = records.transform("parse_csv", schema, parse_in("value", "event from Kafka"));
  } else {
    throw Error("sluice-bench-runner: unknown source '" + source_kind + "' (files, kafka)");
  }
  std::string result;
  result.reserve(1 << 20);
  build_query(workload, meta, data, events, result);
  auto times = std::make_shared<ProcessingTimes>();
  ctx.add_listener(times);

  ctx.start();
  const auto t0 = Clock::now();
  double fetch_ms = 0;
  if (kafka_source) {
    // Everything is fetched into the source's buffer before the first batch is cut, so that
    // no partition lags behind a batch boundary; the fetch is timed and counted.
    for (size_t buffered; (buffered = kafka_source->counters().buffered) < static_cast<size_t>(total_events);) {
      if (ms_since(t0) > 120'000)
        throw Error("sluice-bench-runner: the Kafka source fetched " + std::to_string(buffered) + " of " +
                    std::to_string(total_events) + " events in 120 s");
      std::this_thread::sleep_for(1ms);
    }
    fetch_ms = ms_since(t0);
  }
  ctx.advance_batches(static_cast<size_t>(batches));
  const double wall_ms = ms_since(t0);
  ctx.stop();
  ctx.await_termination();

  // Batch b (file b) is the batch at time (b + 1) s on a ManualClock starting at 0.
  const auto processing = times->snapshot();
  nlohmann::json per_batch = nlohmann::json::array();
  double parse_total = 0, graph_total = 0;
  for (int64_t b = 0; b < batches; ++b) {
    auto it = processing.find((b + 1) * 1000);
    if (it == processing.end()) throw Error("sluice-bench-runner: batch " + std::to_string(b) + " did not complete");
    const double parse = files_source ? files_source->parse_ms(static_cast<size_t>(b)) : 0.0;
    per_batch.push_back(parse + it->second);
    parse_total += parse;
    graph_total += it->second;
  }

  fs::create_directories(out);
  {
    std::ofstream f(out / "result.csv", std::ios::binary);
    f << result;
    if (!f.flush()) throw Error("sluice-bench-runner: cannot write " + (out / "result.csv").string());
  }
  nlohmann::json metrics = {
      {"engine", engine},
      {"engine_version", "sluice " + std::string(SLUICE_VERSION)},
      {"workload", workload},
      {"events", meta.at("events")},
      {"input_bytes", bytes},
      {"processing_seconds", wall_ms / 1000.0},
      {"batch_processing_ms", per_batch},
      {"method",
       kafka_source
           ? "wall time from the context's start: fetching every event from the Kafka topic into the source's "
             "buffer, then all batches (each parses its records' values as CSV in the graph); per batch: graph "
             "processing time"
           : parse_in_graph
               ? "wall time of the whole backlog (all files, preloaded in memory, each split into lines on the batch "
                 "cutter while the previous batch is processed, and parsed as CSV in the graph, through the backend: on "
                 "the device for sluice-gpu); per batch: split + graph processing time"
               : "wall time of the whole backlog (all files, preloaded in memory, each split into lines and parsed as "
                 "CSV on the batch cutter while the previous batch is processed); per batch: parse + graph processing "
                 "time"},
      {"notes", nlohmann::json::array({"backend " + std::string(backend_name(backend)) +
                                       ", one cutter thread and one processing thread"})}};
  metrics["notes"].push_back(kafka_source ? "summed over batches: graph (CSV parsing included) " +
                                                std::to_string(graph_total / 1000) + " s"
                                          : std::string(parse_in_graph ? "summed over batches: split " : "summed over batches: split + CSV parse ") +
                                                std::to_string(parse_total / 1000) + " s, graph " +
                                                std::to_string(graph_total / 1000) + " s");
  if (kafka_source) {
    metrics["engine"] = engine + " (kafka)";
    metrics["notes"].push_back("librdkafka mock cluster, 1 broker in this process, topic of " +
                               std::to_string(partitions) + " partitions filled in " +
                               std::to_string(produce_ms / 1000) + " s before the timed region; fetching all " +
                               std::to_string(total_events) + " events took " + std::to_string(fetch_ms / 1000) +
                               " s of the processing time");
  }
  std::ofstream(out / "metrics.json") << metrics.dump(2) << '\n';
  return 0;
}

/// The GPU's bounds (pinned host-to-device copy rate, device memory bandwidth), or why not.
nlohmann::json gpu_bound() {
#ifdef SLUICE_BENCH_HAS_CUDA
  const int devices = cuda::device_count();
  if (devices == 0) return {{"unavailable", "no CUDA device is present on this machine"}};
  const cuda::TransferBounds b = cuda::measure_transfer_bounds(0, size_t{1} << 30, 10);
  return {{"device", cuda::device_description(0)},
          {"host_to_device_pinned_bytes_per_s", b.host_to_device_pinned_bytes_per_s},
          {"device_to_host_pinned_bytes_per_s", b.device_to_host_pinned_bytes_per_s},
          {"device_memory_bytes_per_s", b.device_memory_bytes_per_s},
          {"method", "best of 10 cudaMemcpyAsync of 1 GiB timed with CUDA events; device memory counts bytes "
                     "read + written by a device-to-device copy"}};
#else
  return {{"unavailable", "this build of Sluice was compiled without CUDA (nvcc was not found)"}};
#endif
}

/// Memory read bandwidth: the best of 5 passes over 1 GiB, with one and with all threads.
nlohmann::json bound() {
  const size_t words = size_t{1} << 27;
  std::vector<int64_t> data(words, 1);
  const auto measure = [&](unsigned threads) {
    double best = 0;
    for (int pass = 0; pass < 5; ++pass) {
      std::vector<int64_t> sums(threads);
      const auto t0 = Clock::now();
      std::vector<std::thread> pool;
      for (unsigned t = 0; t < threads; ++t)
        pool.emplace_back([&, t] {
          const size_t begin = words * t / threads, end = words * (t + 1) / threads;
          sums[t] = std::accumulate(data.begin() + static_cast<ptrdiff_t>(begin), data.begin() + static_cast<ptrdiff_t>(end),
                                    int64_t{0});
        });
      for (auto& th : pool) th.join();
      const double seconds = ms_since(t0) / 1000.0;
      if (std::accumulate(sums.begin(), sums.end(), int64_t{0}) != static_cast<int64_t>(words))
        throw Error("sluice-bench-runner: bandwidth check summed wrongly");
      best = std::max(best, static_cast<double>(words * sizeof(int64_t)) / seconds);
    }
    return best;
  };
  const unsigned all = std::max(1u, std::thread::hardware_concurrency());
  nlohmann::json out = {{"memory_read_bytes_per_s_1_thread", measure(1)},
                        {"memory_read_bytes_per_s", measure(all)},
                        {"threads", all},
                        {"method", "best of 5 sequential int64 sums over 1 GiB, split across the threads"}};
  out["gpu"] = gpu_bound();
  return out;
}

int usage(std::ostream& os, int code) {
  os << "usage:\n"
        "  sluice-bench-runner generate --workload W --out DIR [--batches N] [--events-per-batch M] [--seed S]\n"
        "                               [--keys K] [--window-ms MS] [--slide-ms MS] [--corpus FILE]...\n"
        "  sluice-bench-runner run --workload W --data DIR --out DIR [--engine sluice-cpu|sluice-gpu]\n"
        "                          [--source files|kafka] [--parse graph|cutter]\n"
        "    --parse: where the files' CSV lines are parsed: in the graph, through the backend (on\n"
        "    the device for sluice-gpu; its default), or on the batch cutter (sluice-cpu's default)\n"
        "  sluice-bench-runner bound\n"
        "workloads: ysb wordcount windowed nexmark-q1 nexmark-q2 nexmark-q5 nexmark-q7 (bench/WORKLOADS.md)\n";
  return code;
}

int64_t to_int(const std::string& flag, const std::string& value) {
  try {
    size_t used = 0;
    const long long v = std::stoll(value, &used);
    if (used == value.size()) return v;
  } catch (const std::exception&) {
  }
  throw Error("sluice-bench-runner: " + flag + " expects an integer, got '" + value + "'");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage(std::cerr, 2);
  const std::string command = argv[1];
  if (command == "--help" || command == "-h") return usage(std::cout, 0);
  try {
    std::map<std::string, std::string> flags;
    bench::GenerateOptions gen;
    for (int i = 2; i < argc; ++i) {
      const std::string flag = argv[i];
      if (flag == "--help" || flag == "-h") return usage(std::cout, 0);
      if (flag.rfind("--", 0) != 0 || i + 1 >= argc) {
        std::cerr << "sluice-bench-runner: unexpected argument '" << flag << "'\n";
        return usage(std::cerr, 2);
      }
      const std::string value = argv[++i];
      if (flag == "--corpus") {
        gen.corpus.emplace_back(value);
      } else {
        flags[flag] = value;
      }
    }
    const auto take = [&](const std::string& flag, const std::string& fallback = "") {
      auto it = flags.find(flag);
      std::string v = it == flags.end() ? fallback : it->second;
      if (it != flags.end()) flags.erase(it);
      if (v.empty()) throw Error("sluice-bench-runner " + command + ": " + flag + " is required");
      return v;
    };
    int rc = 0;
    if (command == "generate") {
      gen.workload = take("--workload");
      const fs::path dir = take("--out");
      gen.batches = to_int("--batches", take("--batches", "20"));
      gen.events_per_batch = to_int("--events-per-batch", take("--events-per-batch", "10000"));
      gen.seed = static_cast<uint64_t>(to_int("--seed", take("--seed", "1")));
      gen.keys = to_int("--keys", take("--keys", "1000"));
      gen.window_ms = to_int("--window-ms", take("--window-ms", "10000"));
      gen.slide_ms = to_int("--slide-ms", take("--slide-ms", "1000"));
      if (!flags.empty()) throw Error("sluice-bench-runner generate: unknown option " + flags.begin()->first);
      std::cout << bench::generate(gen, dir).dump() << '\n';
    } else if (command == "run") {
      const std::string workload = take("--workload");
      const fs::path data = take("--data");
      const fs::path out = take("--out");
      const std::string engine = take("--engine", "sluice-cpu");
      const std::string source = take("--source", "files");
      const std::string parse = take("--parse", engine == "sluice-gpu" ? "graph" : "cutter");
      if (parse != "graph" && parse != "cutter")
        throw Error("sluice-bench-runner run: --parse expects graph or cutter, got '" + parse + "'");
      if (!flags.empty()) throw Error("sluice-bench-runner run: unknown option " + flags.begin()->first);
      rc = run(workload, engine, source, parse == "graph", data, out);
    } else if (command == "bound") {
      std::cout << bound().dump() << '\n';
    } else {
      std::cerr << "sluice-bench-runner: unknown command '" << command << "'\n";
      return usage(std::cerr, 2);
    }
    return rc;
  } catch (const std::exception& e) {
    std::cerr << e.what() << '\n';
    return 2;
  }
}
