#include "pipeline/pipeline_spec.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>

#include "pipeline/expression.hpp"
#include "pipeline/record_parsers.hpp"
#include "pipeline/replay.hpp"
#include "sluice/kafka.hpp"
#include "sluice/log.hpp"
#include "sluice/table_ops.hpp"

namespace sluice::pipeline {
namespace {

// ------------------------------------------------------------------ YAML helpers

/// Reads a pipeline file, remembering where each node came from for error messages.
class SpecReader {
 public:
  explicit SpecReader(std::string path) : path_(std::move(path)) {}

  [[noreturn]] void fail(const YAML::Node& at, const std::string& message) const {
    const YAML::Mark m = at.Mark();
    if (m.is_null()) throw PipelineError(path_ + ": " + message);
    throw PipelineError(path_ + ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1) + ": " + message);
  }

  const YAML::Node& map(const YAML::Node& n, const std::string& what) const {
    if (!n.IsMap()) fail(n, what + " must be a mapping");
    return n;
  }

  std::string string(const YAML::Node& n, const std::string& what) const {
    if (!n.IsScalar()) fail(n, what + " must be a single value");
    return n.Scalar();
  }

  std::string required_string(const YAML::Node& parent, const char* key, const std::string& what) const {
    const YAML::Node n = parent[key];
    if (!n) fail(parent, what + ": missing '" + key + "'");
    return string(n, what + ": '" + key + "'");
  }

  std::optional<std::string> optional_string(const YAML::Node& parent, const char* key, const std::string& what) const {
    const YAML::Node n = parent[key];
    if (!n) return std::nullopt;
    return string(n, what + ": '" + key + "'");
  }

  int64_t integer(const YAML::Node& n, const std::string& what) const {
    const std::string s = string(n, what);
    int64_t v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size()) fail(n, what + ": '" + s + "' is not an integer");
    return v;
  }

  double number(const YAML::Node& n, const std::string& what) const {
    const std::string s = string(n, what);
    try {
      size_t used = 0;
      const double v = std::stod(s, &used);
      if (used == s.size()) return v;
    } catch (const std::exception&) {
    }
    fail(n, what + ": '" + s + "' is not a number");
  }

  bool boolean(const YAML::Node& n, const std::string& what) const {
    const std::string s = string(n, what);
    if (s == "true" || s == "yes" || s == "on") return true;
    if (s == "false" || s == "no" || s == "off") return false;
    fail(n, what + ": '" + s + "' is not true or false");
  }

  Duration duration(const YAML::Node& n, const std::string& what) const {
    try {
      return parse_duration(string(n, what));
    } catch (const Error& e) {
      fail(n, what + ": " + e.what());
    }
  }

  /// A list of strings, or one string as a list of one.
  std::vector<std::string> strings(const YAML::Node& n, const std::string& what) const {
    std::vector<std::string> out;
    if (n.IsScalar()) {
      out.push_back(n.Scalar());
    } else if (n.IsSequence()) {
      for (const auto& e : n) out.push_back(string(e, what));
    } else {
      fail(n, what + " must be a field name or a list of field names");
    }
    if (out.empty()) fail(n, what + " must name at least one field");
    return out;
  }

  /// Rejects keys not in @p allowed, so that a typo is an error rather than ignored.
  void only_keys(const YAML::Node& n, std::initializer_list<const char*> allowed, const std::string& what) const {
    if (!n.IsMap()) return;
    for (const auto& kv : n) {
      const std::string key = kv.first.Scalar();
      if (std::none_of(allowed.begin(), allowed.end(), [&](const char* a) { return key == a; })) {
        std::string list;
        for (const char* a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
        fail(kv.first, what + ": unknown key '" + key + "' (expected " + list + ")");
      }
    }
  }

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

Schema parse_schema(const SpecReader& r, const YAML::Node& n) {
  r.map(n, "schema");
  std::vector<Field> fields;
  for (const auto& kv : n) {
    const std::string type_text = r.string(kv.second, "schema field '" + kv.first.Scalar() + "'");
    std::string base = type_text;
    bool nullable = false;
    if (!base.empty() && base.back() == '?') {
      nullable = true;
      base.pop_back();
    }
    try {
      fields.push_back(Field{kv.first.Scalar(), parse_type_name(base), nullable, {}});
    } catch (const Error& e) {
      r.fail(kv.second, "schema field '" + kv.first.Scalar() + "': " + e.what());
    }
  }
  if (fields.empty()) r.fail(n, "schema must declare at least one field");
  return Schema(std::move(fields));
}

// ------------------------------------------------------------------ row operations

/// flatMap of one string field: a row per token of @p field, the other fields repeated.
Table split_rows(const Table& in, size_t field, const std::string& separator, const Schema& out_schema,
                 ExecutionBackend& backend) {
  SplitStrings split = backend.split_strings(in.column(field), separator);
  std::vector<Column> cols;
  for (size_t c = 0; c < in.num_columns(); ++c) {
    if (c == field) cols.push_back(std::move(split.tokens));
    else cols.push_back(in.column(c).gather(split.source_rows));
  }
  return Table(out_schema, std::move(cols));
}

/// An expression with its device program for the stream's schema, compiled once. A batch
/// whose schema differs (a column's nullability) gets a program of its own, since the
/// program's null handling follows the columns as the host evaluator's does.
struct CompiledExpression {
  CompiledExpression(Expression e, const Schema& stream_schema)
      : expression(std::move(e)), schema(stream_schema), program(expression.compile(stream_schema)) {}
  std::optional<RowProgram> program_for(const Schema& batch_schema) const {
    return batch_schema == schema ? program : expression.compile(batch_schema);
  }
  Expression expression;
  Schema schema;
  std::optional<RowProgram> program;
};

/// A row operation (filter, map, map_values, select, flat_map) before it becomes a transform:
/// consecutive ones that the device can run whole are handed to the backend together.
struct RowOp {
  std::string name;  ///< "stream 'words': map", for the transform and its errors
  std::string op;    ///< "map"
  Schema input;
  Schema output;
  /// The operation alone (each operation asks the backend for what it can do on its own).
  std::function<Table(const Table&, StepContext&)> apply;
  /// The operation as a step of a device chain, compiled for `input`; empty when some part
  /// of it runs only on the host.
  std::optional<RowChainStep> device;
};

// ------------------------------------------------------------------ the builder

class PipelineBuilder {
 public:
  PipelineBuilder(const std::string& path, const RunOverrides& overrides) : r_(path), overrides_(overrides) {}

  Pipeline build() {
    YAML::Node root;
    try {
      root = YAML::LoadFile(r_.path());
    } catch (const YAML::BadFile&) {
      throw PipelineError(r_.path() + ": cannot open the pipeline file");
    } catch (const YAML::ParserException& e) {
      throw PipelineError(r_.path() + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) +
                          ": not valid YAML: " + e.msg);
    }
    if (!root.IsMap()) r_.fail(root, "a pipeline file must be a mapping with sources, streams and sinks");
    r_.only_keys(root, {"name", "batch_interval", "backend", "dead_letter", "max_batches", "sources", "streams", "sinks"},
                 "pipeline");

    Pipeline p;
    p.name = r_.optional_string(root, "name", "pipeline").value_or("pipeline");
    ContextOptions options;
    options.batch_interval = root["batch_interval"] ? r_.duration(root["batch_interval"], "batch_interval") : Duration{1000};
    if (auto b = r_.optional_string(root, "backend", "pipeline")) {
      try {
        options.backend = parse_backend(*b);
      } catch (const Error& e) {
        r_.fail(root["backend"], e.what());
      }
    }
    if (overrides_.backend) options.backend = *overrides_.backend;
    if (overrides_.backend_instance) options.backend_instance = overrides_.backend_instance;
    if (auto d = r_.optional_string(root, "dead_letter", "pipeline")) options.dead_letter_path = *d;
    if (root["max_batches"]) p.max_batches = static_cast<size_t>(r_.integer(root["max_batches"], "max_batches"));
    if (overrides_.max_batches) p.max_batches = *overrides_.max_batches;

    const YAML::Node sources = root["sources"];
    if (!sources || !sources.IsMap() || sources.size() == 0)
      r_.fail(sources ? sources : root, "'sources' must map source names to their definitions");
    bool all_replay = true;
    for (const auto& kv : sources) {
      const std::string type = r_.required_string(kv.second, "type", "source '" + kv.first.Scalar() + "'");
      all_replay = all_replay && type == "replay";
    }
    p.replay = all_replay;
    p.clock = all_replay ? std::shared_ptr<Clock>(std::make_shared<ManualClock>(Time{0}, /*auto_advance=*/true))
                         : std::shared_ptr<Clock>(std::make_shared<SystemClock>());
    options.clock = p.clock;
    options.stop_when_sources_finished = all_replay;
    try {
      p.context = std::make_unique<StreamingContext>(options);
    } catch (const Error& e) {
      r_.fail(root, e.what());
    }
    ctx_ = p.context.get();

    for (const auto& kv : sources) streams_[kv.first.Scalar()] = build_source(kv.first.Scalar(), kv.second);

    if (const YAML::Node streams = root["streams"]) {
      if (!streams.IsMap()) r_.fail(streams, "'streams' must map stream names to {from, ops}");
      for (const auto& kv : streams) {
        const std::string name = kv.first.Scalar();
        if (streams_.count(name)) r_.fail(kv.first, "stream '" + name + "' is defined twice");
        streams_[name] = build_stream(name, kv.second);
      }
    }

    const YAML::Node sinks = root["sinks"];
    if (!sinks || !sinks.IsSequence() || sinks.size() == 0)
      r_.fail(sinks ? sinks : root, "'sinks' must be a list with at least one sink");
    for (const auto& s : sinks) build_sink(s);
    return p;
  }

 private:
  TableStream lookup(const YAML::Node& n, const std::string& what) {
    const std::string name = r_.string(n, what);
    auto it = streams_.find(name);
    if (it == streams_.end()) {
      std::string known;
      for (const auto& [k, v] : streams_) known += (known.empty() ? "" : ", ") + k;
      r_.fail(n, what + ": no stream or source called '" + name + "' defined above (known: " + known + ")");
    }
    return it->second;
  }

  TableStream build_source(const std::string& name, const YAML::Node& n) {
    const std::string what = "source '" + name + "'";
    r_.map(n, what);
    const std::string type = r_.required_string(n, "type", what);
    if (type == "kafka") return build_kafka_source(name, n);
    r_.only_keys(n, {"type", "host", "port", "path", "kind", "rate", "seed", "keys", "limit", "max_rate", "queue_capacity",
                     "overflow", "format", "schema", "delimiter", "skip_header", "field"},
                 what);
    SourceOptions options;
    if (n["max_rate"]) options.max_rate = r_.number(n["max_rate"], what + ": max_rate");
    if (n["queue_capacity"]) options.queue_capacity = static_cast<size_t>(r_.integer(n["queue_capacity"], what + ": queue_capacity"));
    if (auto o = r_.optional_string(n, "overflow", what)) {
      if (*o == "block") options.overflow = OverflowPolicy::Block;
      else if (*o == "drop") options.overflow = OverflowPolicy::Drop;
      else r_.fail(n["overflow"], what + ": overflow must be 'block' or 'drop', not '" + *o + "'");
    }
    TableStream stream;
    try {
      if (type == "socket") {
        const int64_t port = r_.integer(n["port"] ? n["port"] : n, what + ": port");
        if (port <= 0 || port > 65535) r_.fail(n["port"], what + ": port " + std::to_string(port) + " is out of range");
        stream = ctx_->add_source(make_socket_source(r_.optional_string(n, "host", what).value_or("localhost"),
                                                     static_cast<uint16_t>(port), options));
      } else if (type == "directory" || type == "text_file_stream") {
        stream = ctx_->add_source(make_text_file_source(r_.required_string(n, "path", what), options));
      } else if (type == "generator") {
        GeneratorOptions g;
        const std::string kind = r_.optional_string(n, "kind", what).value_or("words");
        if (kind == "words") g.kind = GeneratorOptions::Kind::Words;
        else if (kind == "lines") g.kind = GeneratorOptions::Kind::Lines;
        else if (kind == "pairs") g.kind = GeneratorOptions::Kind::Pairs;
        else r_.fail(n["kind"], what + ": generator kind must be words, lines or pairs, not '" + kind + "'");
        if (n["rate"]) g.rate = r_.number(n["rate"], what + ": rate");
        if (n["seed"]) g.seed = static_cast<uint64_t>(r_.integer(n["seed"], what + ": seed"));
        if (n["keys"]) g.distinct_keys = r_.integer(n["keys"], what + ": keys");
        if (n["limit"]) g.limit = static_cast<size_t>(r_.integer(n["limit"], what + ": limit"));
        stream = ctx_->generator(g, options);
      } else if (type == "replay") {
        std::optional<Schema> schema;
        if (n["schema"]) schema = parse_schema(r_, n["schema"]);
        stream = ctx_->add_source(make_replay_source(r_.required_string(n, "path", what), schema));
        return stream;  // replay records are already typed
      } else {
        r_.fail(n["type"], what + ": unknown source type '" + type +
                               "' (expected socket, directory, generator, replay or kafka)");
      }
    } catch (const PipelineError&) {
      throw;
    } catch (const Error& e) {
      r_.fail(n, what + ": " + e.what());
    }
    // Text sources deliver {line}; a declared format parses lines into the schema.
    const std::string format = r_.optional_string(n, "format", what).value_or("text");
    if (format == "text") return stream;
    if (!n["schema"]) r_.fail(n, what + ": format '" + format + "' needs a schema");
    return parse_records(stream, format, parse_schema(r_, n["schema"]), n, what);
  }

  /// Parses the string field (default: the first) as @p format records of @p schema; the
  /// fields named in @p keep (e.g. Kafka's partition and offset) are carried over.
  TableStream parse_records(const TableStream& in, const std::string& format, Schema schema, const YAML::Node& n,
                            const std::string& what, const std::vector<std::string>& keep = {},
                            const std::string& default_field = "") {
    const std::string field =
        r_.optional_string(n, "field", what).value_or(default_field.empty() ? in.schema()[0].name : default_field);
    const int index = in.schema().find(field);
    if (index < 0 || in.schema()[static_cast<size_t>(index)].type != TypeId::String)
      r_.fail(n, what + ": no string field '" + field + "' to parse in {" + in.schema().to_string() + "}");
    if (!keep.empty()) {
      const std::vector<size_t> kept = field_indexes(what, in.schema(), keep);
      std::vector<Field> fields = schema.fields();
      for (size_t k : kept) {
        if (schema.find(in.schema()[k].name) >= 0)
          r_.fail(n, what + ": metadata field '" + in.schema()[k].name + "' is also a field of the schema");
        fields.push_back(in.schema()[k]);
      }
      if (format != "csv" && format != "json")
        r_.fail(n["format"] ? n["format"] : n, what + ": unknown format '" + format + "' (expected text, csv or json)");
      const Schema parsed_schema = schema;
      const Schema out_schema(fields);
      return in.transform("parse_" + format, out_schema,
                          [this_format = format, parsed_schema, out_schema, kept, index, what,
                           csv = csv_options(n, what)](std::span<const Table* const> t, StepContext& ctx) {
                            const Column& lines = t[0]->column(static_cast<size_t>(index));
                            ParseResult result = this_format == "csv" ? parse_csv(lines, parsed_schema, csv, *ctx.backend)
                                                                      : parse_json(lines, parsed_schema, *ctx.backend);
                            for (const auto& m : result.malformed) ctx.report_malformed(what, m.record, m.reason);
                            std::vector<Column> cols = result.table.release_columns();
                            for (size_t k : kept)
                              cols.push_back(result.rows_are_lines ? t[0]->column(k) : t[0]->column(k).gather(result.rows));
                            return Table(out_schema, std::move(cols));
                          });
    }
    if (format == "csv") {
      const CsvOptions csv = csv_options(n, what);
      return in.transform("parse_csv", schema, [schema, csv, index, what](std::span<const Table* const> t, StepContext& ctx) {
        ParseResult result = parse_csv(t[0]->column(static_cast<size_t>(index)), schema, csv, *ctx.backend);
        for (const auto& m : result.malformed) ctx.report_malformed(what, m.record, m.reason);
        return std::move(result.table);
      });
    }
    if (format == "json") {
      return in.transform("parse_json", schema, [schema, index, what](std::span<const Table* const> t, StepContext& ctx) {
        ParseResult result = parse_json(t[0]->column(static_cast<size_t>(index)), schema, *ctx.backend);
        for (const auto& m : result.malformed) ctx.report_malformed(what, m.record, m.reason);
        return std::move(result.table);
      });
    }
    r_.fail(n["format"] ? n["format"] : n, what + ": unknown format '" + format + "' (expected text, csv or json)");
  }

  CsvOptions csv_options(const YAML::Node& n, const std::string& what) const {
    CsvOptions csv;
    if (auto d = r_.optional_string(n, "delimiter", what)) {
      if (d->size() != 1) r_.fail(n["delimiter"], what + ": delimiter must be one character");
      csv.delimiter = (*d)[0];
    }
    if (n["skip_header"]) csv.skip_header = r_.boolean(n["skip_header"], what + ": skip_header");
    return csv;
  }

  std::map<std::string, std::string> properties(const YAML::Node& n, const std::string& what) const {
    std::map<std::string, std::string> out;
    if (!n) return out;
    if (!n.IsMap()) r_.fail(n, what + ": 'properties' must map librdkafka property names to values");
    for (const auto& kv : n) out[kv.first.Scalar()] = r_.string(kv.second, what + ": property '" + kv.first.Scalar() + "'");
    return out;
  }

  /// type: kafka. Records are {topic, partition, offset, timestamp, key, value}; with a
  /// format and schema the value is parsed, keeping the fields listed in 'metadata'.
  TableStream build_kafka_source(const std::string& name, const YAML::Node& n) {
    const std::string what = "source '" + name + "'";
    r_.only_keys(n, {"type", "brokers", "topics", "assign", "group", "start_from", "max_rate_per_partition",
                     "queue_capacity", "max_value_bytes", "properties", "format", "schema", "delimiter", "skip_header",
                     "metadata"},
                 what);
    KafkaSourceOptions o;
    o.brokers = r_.required_string(n, "brokers", what);
    if (n["topics"]) o.topics = r_.strings(n["topics"], what + ": topics");
    if (n["assign"]) {
      // "topic:partition" or "topic:partition:offset"
      for (const std::string& spec : r_.strings(n["assign"], what + ": assign")) {
        const size_t a = spec.rfind(':');
        const size_t b = a == std::string::npos || a == 0 ? std::string::npos : spec.rfind(':', a - 1);
        KafkaPartition p;
        try {
          if (a == std::string::npos) throw std::invalid_argument(spec);
          if (b == std::string::npos) {
            p.topic = spec.substr(0, a);
            p.partition = std::stoi(spec.substr(a + 1));
          } else {
            p.topic = spec.substr(0, b);
            p.partition = std::stoi(spec.substr(b + 1, a - b - 1));
            p.offset = std::stoll(spec.substr(a + 1));
          }
        } catch (const std::exception&) {
          r_.fail(n["assign"], what + ": assign entry '" + spec + "' must be topic:partition or topic:partition:offset");
        }
        o.assign.push_back(p);
      }
    }
    if (auto g = r_.optional_string(n, "group", what)) o.group_id = *g;
    if (auto st = r_.optional_string(n, "start_from", what)) {
      if (*st == "committed") o.start = KafkaStart::Committed;
      else if (*st == "earliest") o.start = KafkaStart::Earliest;
      else if (*st == "latest") o.start = KafkaStart::Latest;
      else r_.fail(n["start_from"], what + ": start_from must be committed, earliest or latest, not '" + *st + "'");
    }
    if (n["max_rate_per_partition"])
      o.max_rate_per_partition = r_.number(n["max_rate_per_partition"], what + ": max_rate_per_partition");
    if (n["queue_capacity"]) o.queue_capacity = static_cast<size_t>(r_.integer(n["queue_capacity"], what + ": queue_capacity"));
    if (n["max_value_bytes"]) o.max_value_bytes = static_cast<size_t>(r_.integer(n["max_value_bytes"], what + ": max_value_bytes"));
    o.properties = properties(n["properties"], what);
    TableStream stream;
    try {
      stream = ctx_->add_source(make_kafka_source(std::move(o)));
    } catch (const Error& e) {
      r_.fail(n, what + ": " + e.what());
    }
    kafka_sources_[name] = stream;
    const std::string format = r_.optional_string(n, "format", what).value_or("text");
    std::vector<std::string> metadata;
    if (n["metadata"]) metadata = r_.strings(n["metadata"], what + ": metadata");
    if (format == "text") {
      if (n["schema"] || !metadata.empty()) r_.fail(n, what + ": schema and metadata need format csv or json");
      return stream;
    }
    if (!n["schema"]) r_.fail(n, what + ": format '" + format + "' needs a schema");
    return parse_records(stream, format, parse_schema(r_, n["schema"]), n, what, metadata, "value");
  }

  TableStream build_stream(const std::string& name, const YAML::Node& n) {
    const std::string what = "stream '" + name + "'";
    r_.map(n, what);
    r_.only_keys(n, {"from", "ops"}, what);
    if (!n["from"]) r_.fail(n, what + ": missing 'from' (the source or stream it reads)");
    TableStream s = lookup(n["from"], what + ": from");
    std::vector<RowOp> row_ops;  // consecutive row operations, not yet transforms
    if (const YAML::Node ops = n["ops"]) {
      if (!ops.IsSequence()) r_.fail(ops, what + ": 'ops' must be a list of operations");
      for (const auto& op : ops) {
        if (!op.IsMap() || op.size() != 1)
          r_.fail(op, what + ": each operation is a mapping with one key, e.g. '- filter: \"x > 1\"'");
        const std::string op_name = op.begin()->first.Scalar();
        const YAML::Node args = op.begin()->second;
        try {
          const Schema& schema = row_ops.empty() ? s.schema() : row_ops.back().output;
          if (std::optional<RowOp> row_op = row_operation(schema, op_name, args, what + ": " + op_name)) {
            row_ops.push_back(std::move(*row_op));
            continue;
          }
          // A keyed aggregation takes the device-runnable row operations just before it along,
          // so that a backend can run them and the aggregation in one go.
          size_t first_fused = row_ops.size();
          if (is_keyed_aggregation(op_name))
            while (first_fused > 0 && row_ops[first_fused - 1].device) --first_fused;
          const std::vector<RowOp> fused(row_ops.begin() + static_cast<std::ptrdiff_t>(first_fused), row_ops.end());
          row_ops.resize(first_fused);
          s = add_row_ops(s, row_ops);
          row_ops.clear();
          std::optional<RowOperations> before;
          if (!fused.empty()) before = row_operations(fused);
          s = apply_op(s, op_name, args, what + ": " + op_name, std::move(before));
        } catch (const PipelineError&) {
          throw;
        } catch (const Error& e) {
          r_.fail(op.begin()->first, what + ": " + op_name + ": " + e.what());
        }
      }
    }
    return add_row_ops(s, row_ops);
  }

  KeyedAggregation aggregation(const YAML::Node& args, const std::string& what, bool needs_keys) {
    KeyedAggregation plan;
    if (needs_keys) {
      if (!args["key"]) r_.fail(args, what + ": missing 'key' (the field or fields to group by)");
      plan.keys = r_.strings(args["key"], what + ": key");
    }
    const YAML::Node aggs = args["aggregates"];
    if (!aggs || !aggs.IsMap() || aggs.size() == 0)
      r_.fail(aggs ? aggs : args, what + ": 'aggregates' must map output names to count(), sum(f), min(f), max(f) or mean(f)");
    for (const auto& kv : aggs) {
      const std::string text = r_.string(kv.second, what + ": aggregate '" + kv.first.Scalar() + "'");
      const size_t open = text.find('('), close = text.rfind(')');
      if (open == std::string::npos || close == std::string::npos || close < open || close + 1 != text.size())
        r_.fail(kv.second, what + ": aggregate '" + text + "' must look like count(), sum(field), min(field), max(field) or mean(field)");
      AggregateSpec spec;
      try {
        spec.kind = parse_aggregate(text.substr(0, open));
      } catch (const Error& e) {
        r_.fail(kv.second, what + ": " + e.what());
      }
      spec.input = text.substr(open + 1, close - open - 1);
      spec.input.erase(0, spec.input.find_first_not_of(' '));
      spec.input.erase(spec.input.find_last_not_of(' ') + 1);
      if (spec.kind != AggregateKind::Count && spec.input.empty())
        r_.fail(kv.second, what + ": " + text.substr(0, open) + "() needs a field");
      spec.output = kv.first.Scalar();
      plan.aggregates.push_back(std::move(spec));
    }
    return plan;
  }

  std::pair<Duration, Duration> window_args(const YAML::Node& args, const std::string& what) {
    if (!args["window"]) r_.fail(args, what + ": missing 'window' (its length, e.g. 30s)");
    const Duration window = r_.duration(args["window"], what + ": window");
    const Duration slide = args["slide"] ? r_.duration(args["slide"], what + ": slide") : ctx_->batch_interval();
    return {window, slide};
  }

  /// Computed fields: {name: expression, ...} evaluated against the input batch.
  RowOp project(const Schema& input, const YAML::Node& args, const std::string& op, const std::string& what,
                std::vector<std::string> kept_fields) {
    r_.map(args, what);
    std::vector<size_t> kept = kept_fields.empty() ? std::vector<size_t>{} : field_indexes(what, input, kept_fields);
    std::vector<CompiledExpression> exprs;
    std::vector<Field> fields;
    for (size_t k : kept) fields.push_back(input[k]);
    for (const auto& kv : args) {
      const std::string text = r_.string(kv.second, what + ": '" + kv.first.Scalar() + "'");
      try {
        Expression e = Expression::parse(text);
        fields.push_back(Field{kv.first.Scalar(), e.result_type(input), e.result_nullable(input), {}});
        exprs.emplace_back(std::move(e), input);
      } catch (const Error& e) {
        r_.fail(kv.second, what + ": " + e.what());
      }
    }
    const Schema schema(fields);
    // On the device: kept fields and bare field references are the input's columns, the
    // other expressions programs; one that only the host evaluates keeps the map off chains.
    std::optional<RowChainStep> device = RowChainStep{RowChainStep::Kind::Map, {}, {}, 0, {}, schema};
    for (size_t k : kept) device->sources.push_back(static_cast<int32_t>(k));
    for (const CompiledExpression& e : exprs) {
      if (const std::optional<std::string> field = e.expression.bare_field()) {
        device->sources.push_back(static_cast<int32_t>(input.index_of(*field)));
      } else if (e.program) {
        device->programs.push_back(*e.program);
        device->sources.push_back(-static_cast<int32_t>(device->programs.size()));
      } else {
        device.reset();
        break;
      }
    }
    auto apply = [kept, exprs, schema](const Table& batch, StepContext& ctx) {
      // Expressions the backend can run go to it together (their inputs are copied once);
      // the others, and all of them when it declines, are evaluated on the host.
      std::vector<std::optional<RowProgram>> programs;
      std::vector<const RowProgram*> compiled;
      for (const CompiledExpression& e : exprs) programs.push_back(e.program_for(batch.schema()));
      for (const std::optional<RowProgram>& p : programs)
        if (p) compiled.push_back(&*p);
      std::optional<std::vector<Column>> computed;
      if (!compiled.empty()) computed = ctx.backend->evaluate(batch, compiled);
      std::vector<Column> cols;
      for (size_t k : kept) cols.push_back(batch.column(k));
      size_t next_computed = 0;
      for (size_t e = 0; e < exprs.size(); ++e) {
        if (computed && programs[e]) cols.push_back(std::move((*computed)[next_computed++]));
        else cols.push_back(exprs[e].expression.evaluate(batch));
      }
      return Table(schema, std::move(cols));
    };
    return RowOp{what, op, input, schema, apply, std::move(device)};
  }

  /// filter, map, map_values, select and flat_map over batches of @p input; nullopt for
  /// other operations.
  std::optional<RowOp> row_operation(const Schema& input, const std::string& op, const YAML::Node& args,
                                     const std::string& what) {
    if (op == "map") return project(input, args, op, what, {});
    if (op == "map_values") {
      r_.only_keys(args, {"key", "values"}, what);
      if (!args["key"] || !args["values"]) r_.fail(args, what + ": needs 'key' and 'values'");
      return project(input, args["values"], op, what, r_.strings(args["key"], what + ": key"));
    }
    if (op == "select") {
      const auto names = r_.strings(args, what);
      const auto idx = field_indexes(what, input, names);
      std::vector<Field> fields;
      RowChainStep device{RowChainStep::Kind::Map, {}, {}, 0, {}, {}};
      for (size_t i : idx) {
        fields.push_back(input[i]);
        device.sources.push_back(static_cast<int32_t>(i));
      }
      const Schema schema(fields);
      device.output = schema;
      auto apply = [idx, schema](const Table& batch, StepContext&) {
        std::vector<Column> cols;
        for (size_t i : idx) cols.push_back(batch.column(i));
        return Table(schema, std::move(cols));
      };
      return RowOp{what, op, input, schema, apply, std::move(device)};
    }
    if (op == "filter") {
      const std::string text = r_.string(args, what);
      Expression e = Expression::parse(text);
      const TypeId type = e.result_type(input);
      if (type != TypeId::Bool) r_.fail(args, what + ": '" + text + "' is " + std::string(type_name(type)) + ", not bool");
      CompiledExpression c(e, input);
      std::optional<RowChainStep> device;
      if (c.program) device = RowChainStep{RowChainStep::Kind::Filter, {*c.program}, {}, 0, {}, input};
      auto apply = [c](const Table& batch, StepContext& ctx) {
        if (const std::optional<RowProgram> program = c.program_for(batch.schema()))
          if (std::optional<Table> kept = ctx.backend->filter(batch, *program)) return std::move(*kept);
        return batch.filter(c.expression.evaluate_mask(batch));
      };
      return RowOp{what, op, input, input, apply, std::move(device)};
    }
    if (op == "flat_map" || op == "flat_map_values") {
      r_.only_keys(args, {"split", "separator", "as"}, what);
      const std::string field = r_.required_string(args, "split", what);
      const size_t index = field_indexes(what, input, {field})[0];
      if (input[index].type != TypeId::String) r_.fail(args["split"], what + ": field '" + field + "' is not a string");
      const std::string separator = r_.optional_string(args, "separator", what).value_or("");
      Schema schema = input;
      schema.fields()[index] = Field{r_.optional_string(args, "as", what).value_or(field), TypeId::String, false, {}};
      auto apply = [index, separator, schema](const Table& batch, StepContext& ctx) {
        return split_rows(batch, index, separator, schema, *ctx.backend);
      };
      return RowOp{what, op, input, schema, apply, RowChainStep{RowChainStep::Kind::Split, {}, {}, index, separator, schema}};
    }
    return std::nullopt;
  }

  /// Keyed aggregations, which can take the row operations before them along.
  static bool is_keyed_aggregation(const std::string& op) {
    return op == "reduce_by_key" || op == "combine_by_key" || op == "count_by_value" || op == "reduce_by_key_and_window" ||
           op == "count_by_value_and_window" || op == "update_state_by_key";
  }

  /// The row operations of @p run over @p batch: as one chain of @p steps when the backend
  /// runs it and the batch has the schema the steps were compiled for, otherwise one by one
  /// (each asking the backend for what it runs alone). A single filter or split goes as a
  /// chain only when some of the batch's columns are still where the backend made them: the
  /// chain gathers the batch's rows there, where the operation alone gathers them on the host.
  /// (A map alone reads only its inputs, in place, and passes the other columns on as they are.)
  static Table run_row_ops(const std::vector<RowOp>& run, std::span<const RowChainStep> steps, const Table& batch,
                           StepContext& ctx) {
    const auto still_with_backend = [](const Column& c) { return c.host_copy_pending(); };
    const bool gathers_rows = steps.front().kind != RowChainStep::Kind::Map;
    const bool as_chain = run.size() > 1 || (gathers_rows && std::any_of(batch.columns().begin(), batch.columns().end(), still_with_backend));
    if (as_chain && batch.schema() == run.front().input)
      if (std::optional<Table> out = ctx.backend->run_row_chain(batch, steps)) return std::move(*out);
    std::optional<Table> current;
    for (const RowOp& op : run) current = op.apply(current ? *current : batch, ctx);
    return std::move(*current);
  }

  /// @p run (device-runnable row operations) as one RowOperations: the chain's steps, and the
  /// operations themselves for when the backend declines the chain.
  static RowOperations row_operations(const std::vector<RowOp>& run) {
    RowOperations ops;
    ops.name = run.front().name;
    ops.input = run.front().input;
    for (const RowOp& op : run) {
      ops.steps.push_back(*op.device);
      if (&op != &run.front()) ops.name += ", " + op.op;
    }
    ops.run = [run, steps = ops.steps](const Table& batch, StepContext& ctx) { return run_row_ops(run, steps, batch, ctx); };
    return ops;
  }

  /// Row operations become transforms. A run that the device can run whole is one transform
  /// that hands the run to the backend (run_row_chain, see run_row_ops), so that the batch
  /// stays in device memory between them; when the backend declines, or a batch's schema
  /// differs from the one the run was compiled for, the operations run one after another.
  TableStream add_row_ops(TableStream s, const std::vector<RowOp>& ops) {
    for (size_t i = 0; i < ops.size();) {
      size_t end = i;
      while (end < ops.size() && ops[end].device) ++end;
      if (end == i) {
        s = s.transform(ops[i].name, ops[i].output, [apply = ops[i].apply](std::span<const Table* const> in, StepContext& ctx) {
          return apply(*in[0], ctx);
        });
        ++i;
        continue;
      }
      RowOperations run = row_operations({ops.begin() + static_cast<std::ptrdiff_t>(i), ops.begin() + static_cast<std::ptrdiff_t>(end)});
      s = s.transform(run.name, run.output(), [run = std::move(run.run)](std::span<const Table* const> in, StepContext& ctx) {
        return run(*in[0], ctx);
      });
      i = end;
    }
    return s;
  }

  /// Any operation but the row operations; a keyed aggregation runs @p before (row operations
  /// of the stream) on each batch first.
  TableStream apply_op(const TableStream& s, const std::string& op, const YAML::Node& args, const std::string& what,
                       std::optional<RowOperations> before = std::nullopt) {
    const Schema& input = before ? before->output() : s.schema();
    if (op == "union") return s.union_with(lookup(args, what));
    if (op == "parse") {
      r_.only_keys(args, {"format", "schema", "field", "delimiter", "skip_header"}, what);
      if (!args["schema"]) r_.fail(args, what + ": needs a schema");
      return parse_records(s, r_.required_string(args, "format", what), parse_schema(r_, args["schema"]), args, what);
    }
    if (op == "count") return s.count();
    if (op == "count_by_value") {
      std::vector<std::string> keys;
      for (const auto& f : input) keys.push_back(f.name);
      return aggregate_by_key(s, KeyedAggregation{keys, {AggregateSpec{AggregateKind::Count, "", "count"}}}, std::move(before));
    }
    if (op == "reduce") return reduce_all(s, aggregation(args, what, false));
    if (op == "reduce_by_key" || op == "combine_by_key") {
      r_.only_keys(args, {"key", "aggregates"}, what);
      return aggregate_by_key(s, aggregation(args, what, true), std::move(before));
    }
    if (op == "group_by_key") {
      r_.only_keys(args, {"key"}, what);
      return group_by_key(s, r_.strings(args["key"] ? args["key"] : args, what + ": key"));
    }
    if (op == "join" || op == "left_outer_join" || op == "right_outer_join" || op == "full_outer_join" || op == "cogroup") {
      r_.only_keys(args, {"with", "key", "right_key"}, what);
      if (!args["with"] || !args["key"]) r_.fail(args, what + ": needs 'with' (the other stream) and 'key'");
      const TableStream other = lookup(args["with"], what + ": with");
      const auto left_keys = r_.strings(args["key"], what + ": key");
      const auto right_keys = args["right_key"] ? r_.strings(args["right_key"], what + ": right_key") : left_keys;
      if (op == "cogroup") return cogroup_streams(s, left_keys, other, right_keys);
      const JoinKind kind = op == "join" ? JoinKind::Inner
                            : op == "left_outer_join" ? JoinKind::LeftOuter
                            : op == "right_outer_join" ? JoinKind::RightOuter
                                                       : JoinKind::FullOuter;
      return join_streams(s, left_keys, other, right_keys, kind);
    }
    if (op == "transform") return transform_batch(s, args, what);
    if (op == "update_state_by_key") {
      r_.only_keys(args, {"key", "aggregates", "expire_after"}, what);
      const size_t expire = args["expire_after"] ? static_cast<size_t>(r_.integer(args["expire_after"], what + ": expire_after")) : 0;
      return aggregate_state_by_key(s, aggregation(args, what, true), expire, std::move(before));
    }
    if (op == "window") {
      r_.only_keys(args, {"window", "slide"}, what);
      auto [w, sl] = window_args(args, what);
      return s.window(w, sl);
    }
    if (op == "count_by_window") {
      r_.only_keys(args, {"window", "slide"}, what);
      auto [w, sl] = window_args(args, what);
      return s.count_by_window(w, sl);
    }
    if (op == "reduce_by_window") {
      r_.only_keys(args, {"aggregates", "window", "slide"}, what);
      auto [w, sl] = window_args(args, what);
      KeyedAggregation plan = aggregation(args, what, false);
      return drop_constant_key(aggregate_by_key_and_window(with_constant_key(s), with_constant_key(plan), w, sl));
    }
    if (op == "reduce_by_key_and_window") {
      r_.only_keys(args, {"key", "aggregates", "window", "slide", "filter"}, what);
      auto [w, sl] = window_args(args, what);
      TableStream out = aggregate_by_key_and_window(s, aggregation(args, what, true), w, sl, std::move(before));
      if (args["filter"]) out = add_row_ops(out, {*row_operation(out.schema(), "filter", args["filter"], what + ": filter")});
      return out;
    }
    if (op == "count_by_value_and_window") {
      r_.only_keys(args, {"window", "slide"}, what);
      auto [w, sl] = window_args(args, what);
      std::vector<std::string> keys;
      for (const auto& f : input) keys.push_back(f.name);
      return aggregate_by_key_and_window(s, KeyedAggregation{keys, {AggregateSpec{AggregateKind::Count, "", "count"}}}, w, sl,
                                         std::move(before));
    }
    if (op == "group_by_key_and_window") {
      r_.only_keys(args, {"key", "window", "slide"}, what);
      auto [w, sl] = window_args(args, what);
      return group_by_key(s.window(w, sl), r_.strings(args["key"], what + ": key"));
    }
    r_.fail(args, "unknown operation '" + op +
                      "' (expected map, map_values, select, filter, flat_map, flat_map_values, union, parse, count, "
                      "count_by_value, reduce, reduce_by_key, combine_by_key, group_by_key, join, left_outer_join, "
                      "right_outer_join, full_outer_join, cogroup, transform, update_state_by_key, window, "
                      "count_by_window, reduce_by_window, reduce_by_key_and_window, count_by_value_and_window, "
                      "group_by_key_and_window)");
  }

  // reduce and reduce_by_window aggregate a whole batch: a constant key stands for "all rows".
  static constexpr const char* kAllRows = "#all";
  TableStream with_constant_key(const TableStream& s) {
    std::vector<Field> fields{Field{kAllRows, TypeId::Bool, false, {}}};
    for (const auto& f : s.schema()) fields.push_back(f);
    const Schema schema(fields);
    return s.transform("reduce", schema, [schema](std::span<const Table* const> in, StepContext&) {
      std::vector<Column> cols;
      Column key(TypeId::Bool);
      key.reserve(in[0]->num_rows());
      for (size_t r = 0; r < in[0]->num_rows(); ++r) key.append<uint8_t>(1);
      cols.push_back(std::move(key));
      for (const auto& c : in[0]->columns()) cols.push_back(c);
      return Table(schema, std::move(cols));
    });
  }
  static KeyedAggregation with_constant_key(KeyedAggregation plan) {
    plan.keys = {kAllRows};
    return plan;
  }
  TableStream drop_constant_key(const TableStream& s) {
    std::vector<Field> fields(s.schema().fields().begin() + 1, s.schema().fields().end());
    const Schema schema(fields);
    return s.transform("reduce", schema, [schema](std::span<const Table* const> in, StepContext&) {
      std::vector<Column> cols(in[0]->columns().begin() + 1, in[0]->columns().end());
      return Table(schema, std::move(cols));
    });
  }
  TableStream reduce_all(const TableStream& s, KeyedAggregation plan) {
    return drop_constant_key(aggregate_by_key(with_constant_key(s), with_constant_key(std::move(plan))));
  }

  /// transform: a function of the whole batch: sort_by ("field [asc|desc]", ...) then limit.
  TableStream transform_batch(const TableStream& s, const YAML::Node& args, const std::string& what) {
    r_.only_keys(args, {"sort_by", "limit"}, what);
    std::vector<SortKey> keys;
    if (args["sort_by"]) {
      for (const std::string& spec : r_.strings(args["sort_by"], what + ": sort_by")) {
        std::string field = spec;
        bool descending = false;
        if (const size_t sp = spec.find(' '); sp != std::string::npos) {
          field = spec.substr(0, sp);
          const std::string order = spec.substr(sp + 1);
          if (order == "desc") descending = true;
          else if (order != "asc") r_.fail(args["sort_by"], what + ": sort order must be asc or desc, not '" + order + "'");
        }
        const size_t column = field_indexes(what, s.schema(), {field})[0];
        if (s.schema()[column].type == TypeId::List)
          r_.fail(args["sort_by"], what + ": sort_by field '" + field + "' is a list, which has no order");
        keys.push_back(SortKey{column, descending});
      }
    }
    const int64_t limit = args["limit"] ? r_.integer(args["limit"], what + ": limit") : -1;
    if (keys.empty() && limit < 0) r_.fail(args, what + ": needs sort_by, limit or both");
    return s.transform("transform", s.schema(), [keys, limit](std::span<const Table* const> in, StepContext& ctx) {
      return ctx.backend->sort_rows(*in[0], keys, limit);
    });
  }

  void build_sink(const YAML::Node& n) {
    const std::string what = "sink";
    r_.map(n, what);
    if (n["type"] && n["type"].IsScalar() && n["type"].Scalar() == "kafka") return build_kafka_sink(n);
    r_.only_keys(n, {"stream", "type", "n", "path", "prefix", "suffix"}, what);
    if (!n["stream"]) r_.fail(n, "sink: missing 'stream' (the stream it writes)");
    const TableStream s = lookup(n["stream"], "sink: stream");
    const std::string type = r_.required_string(n, "type", what);
    if (type == "print") {
      s.print(n["n"] ? static_cast<size_t>(r_.integer(n["n"], "sink: n")) : 10);
    } else if (type == "jsonl") {
      const std::string path = r_.required_string(n, "path", "jsonl sink");
      std::shared_ptr<std::FILE> out;
      if (path == "-") {
        out = std::shared_ptr<std::FILE>(stdout, [](std::FILE*) {});
      } else {
        std::FILE* f = std::fopen(path.c_str(), "wb");
        if (!f) r_.fail(n["path"], "jsonl sink: cannot open '" + path + "' for writing");
        out = std::shared_ptr<std::FILE>(f, [](std::FILE* file) { std::fclose(file); });
      }
      s.foreach_batch([out, path](Time t, const Table& table) {
        std::string line;
        write_jsonl_batch(line, t, table);
        if (std::fwrite(line.data(), 1, line.size(), out.get()) != line.size() || std::fflush(out.get()) != 0)
          throw Error("jsonl sink: cannot write to '" + path + "'");
      });
    } else if (type == "text_files") {
      s.save_as_text_files(r_.required_string(n, "prefix", "text_files sink"), r_.optional_string(n, "suffix", what).value_or(""));
    } else {
      r_.fail(n["type"], "sink: unknown type '" + type + "' (expected print, jsonl, text_files or kafka)");
    }
  }

  void build_kafka_sink(const YAML::Node& n) {
    const std::string what = "kafka sink";
    r_.only_keys(n, {"stream", "type", "brokers", "topic", "key", "value_format", "transactional_id", "offsets_from",
                     "properties", "flush_timeout"},
                 what);
    if (!n["stream"]) r_.fail(n, what + ": missing 'stream' (the stream it writes)");
    const TableStream s = lookup(n["stream"], what + ": stream");
    KafkaSinkOptions o;
    o.brokers = r_.required_string(n, "brokers", what);
    o.topic = r_.required_string(n, "topic", what);
    if (auto k = r_.optional_string(n, "key", what)) o.key_field = *k;
    if (auto f = r_.optional_string(n, "value_format", what)) {
      if (*f == "json") o.value_format = KafkaValueFormat::Json;
      else if (*f == "text") o.value_format = KafkaValueFormat::Text;
      else r_.fail(n["value_format"], what + ": value_format must be json or text, not '" + *f + "'");
    }
    if (auto t = r_.optional_string(n, "transactional_id", what)) o.transactional_id = *t;
    if (const YAML::Node from = n["offsets_from"]) {
      auto it = kafka_sources_.find(r_.string(from, what + ": offsets_from"));
      if (it == kafka_sources_.end()) r_.fail(from, what + ": offsets_from must name a kafka source defined under sources");
      o.offsets_from = it->second;
    }
    if (n["flush_timeout"]) o.flush_timeout = r_.duration(n["flush_timeout"], what + ": flush_timeout");
    o.properties = properties(n["properties"], what);
    try {
      write_to_kafka(s, std::move(o));
    } catch (const Error& e) {
      r_.fail(n, what + ": " + e.what());
    }
  }

  SpecReader r_;
  RunOverrides overrides_;
  StreamingContext* ctx_ = nullptr;
  std::map<std::string, TableStream> streams_;
  std::map<std::string, TableStream> kafka_sources_;  // the sources themselves, before parsing
};

}  // namespace

Duration parse_duration(const std::string& text) {
  int64_t value = 0;
  const char* begin = text.data();
  const char* end = text.data() + text.size();
  auto [p, ec] = std::from_chars(begin, end, value);
  if (ec != std::errc() || p == begin) throw PipelineError("'" + text + "' is not a duration (e.g. 500ms, 2s, 1m)");
  const std::string unit(p, end);
  int64_t ms;
  if (unit.empty() || unit == "ms") ms = value;
  else if (unit == "s") ms = value * 1000;
  else if (unit == "m" || unit == "min") ms = value * 60'000;
  else if (unit == "h") ms = value * 3'600'000;
  else throw PipelineError("'" + text + "' has an unknown unit '" + unit + "' (use ms, s, m or h)");
  if (ms <= 0) throw PipelineError("duration '" + text + "' must be positive");
  return Duration{ms};
}

Pipeline load_pipeline(const std::string& path, const RunOverrides& overrides) {
  return PipelineBuilder(path, overrides).build();
}

}  // namespace sluice::pipeline
