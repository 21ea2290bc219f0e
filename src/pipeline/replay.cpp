#include "pipeline/replay.hpp"

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include <nlohmann/json.hpp>

#include "pipeline/record_parsers.hpp"

namespace sluice::pipeline {

namespace {

using nlohmann::json;
using nlohmann::ordered_json;

std::string json_kind(json::value_t type) {
  switch (type) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return "a bool";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float: return "a number";
    case json::value_t::string: return "a string";
    case json::value_t::array: return "an array";
    case json::value_t::object: return "an object";
    default: return "something else";
  }
}

/// The records array of a batch line: the line itself, or the "records" of a line that
/// write_jsonl_batch() wrote. Returns nullptr when it is neither.
template <class Json>
const Json* records_of(const Json& line) {
  if (line.is_array()) return &line;
  if (line.is_object()) {
    auto it = line.find("records");
    if (it != line.end() && it->is_array()) return &*it;
  }
  return nullptr;
}

std::string not_a_batch(json::value_t type) {
  return "expected a JSON array of records, got " + json_kind(type);
}

/// The records of @p records as a table; throws "record N: reason".
Table batch_from_records(const json& records, const Schema& schema) {
  std::vector<Column> columns;
  columns.reserve(schema.size());
  for (const Field& f : schema) {
    columns.push_back(Column::make_for(f));
    columns.back().reserve(records.size());
  }
  for (size_t i = 0; i < records.size(); ++i) {
    const std::string reason =
        detail::append_json_record(records[i], schema, columns, detail::JsonRecordShape::BareValueIfSingle);
    if (!reason.empty()) throw Error("record " + std::to_string(i + 1) + ": " + reason);
  }
  return Table(schema, std::move(columns));
}

// ======================================================================= schema inference

std::string short_dump(const ordered_json& value) {
  std::string text = value.dump(-1, ' ', false, json::error_handler_t::replace);
  return text.size() <= 40 ? text : text.substr(0, 40) + "...";
}

/// What the values of one column seen so far say about its type.
enum class SeenType { OnlyNulls, Bool, Int, Float, String };

std::string_view seen_name(SeenType t) {
  switch (t) {
    case SeenType::OnlyNulls: return "null";
    case SeenType::Bool: return "bool";
    case SeenType::Int: return "int64";
    case SeenType::Float: return "float64";
    case SeenType::String: return "string";
  }
  return "?";
}

/// Folds @p value into @p seen; throws (naming @p column and @p record) on a conflict.
void observe(SeenType& seen, const ordered_json& value, const std::string& column, size_t record) {
  SeenType now;
  switch (value.type()) {
    case json::value_t::null: return;
    case json::value_t::boolean: now = SeenType::Bool; break;
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: now = SeenType::Int; break;
    case json::value_t::number_float: now = SeenType::Float; break;
    case json::value_t::string: now = SeenType::String; break;
    default:
      throw Error("record " + std::to_string(record) + ": cannot infer a type for " + json_kind(value.type()) +
                  " in field '" + column + "'; give the schema");
  }
  if (seen == SeenType::OnlyNulls || seen == now) {
    seen = now;
  } else if ((seen == SeenType::Int && now == SeenType::Float) || (seen == SeenType::Float && now == SeenType::Int)) {
    seen = SeenType::Float;  // any fractional number makes the column float64
  } else {
    throw Error("record " + std::to_string(record) + ": field '" + column + "' holds both " +
                std::string(seen_name(seen)) + " and " + std::string(seen_name(now)) + " values; give the schema");
  }
}

TypeId type_of_seen(SeenType t) {
  switch (t) {
    case SeenType::Bool: return TypeId::Bool;
    case SeenType::Int: return TypeId::Int64;
    case SeenType::Float: return TypeId::Float64;
    default: return TypeId::String;
  }
}

/// A schema for @p records (non-empty), every field nullable: nullability is settled once the
/// whole file has been read.
Schema infer_schema(const ordered_json& records) {
  const ordered_json& first = records[0];
  std::vector<std::string> names;
  std::vector<SeenType> seen;
  if (first.is_object()) {
    for (size_t r = 0; r < records.size(); ++r) {
      if (!records[r].is_object())
        throw Error("record " + std::to_string(r + 1) + ": expected an object like record 1, got " +
                    json_kind(records[r].type()));
      for (const auto& [key, value] : records[r].items()) {
        size_t c = 0;
        while (c < names.size() && names[c] != key) ++c;
        if (c == names.size()) {
          names.push_back(key);
          seen.push_back(SeenType::OnlyNulls);
        }
        observe(seen[c], value, key, r + 1);
      }
    }
  } else if (first.is_array()) {
    for (size_t c = 0; c < first.size(); ++c) {
      names.push_back("_" + std::to_string(c + 1));
      seen.push_back(SeenType::OnlyNulls);
    }
    for (size_t r = 0; r < records.size(); ++r) {
      if (!records[r].is_array() || records[r].size() != first.size())
        throw Error("record " + std::to_string(r + 1) + ": expected an array of " + std::to_string(first.size()) +
                    " values like record 1, got " + short_dump(records[r]));
      for (size_t c = 0; c < first.size(); ++c) observe(seen[c], records[r][c], names[c], r + 1);
    }
  } else {
    names.push_back("value");
    seen.push_back(SeenType::OnlyNulls);
    for (size_t r = 0; r < records.size(); ++r) observe(seen[0], records[r], "value", r + 1);
  }
  std::vector<Field> fields;
  for (size_t c = 0; c < names.size(); ++c) fields.push_back(Field{names[c], type_of_seen(seen[c]), true, {}});
  return Schema(std::move(fields));
}

/// Makes the fields of @p batches that hold no null anywhere non-nullable.
void settle_nullability(Schema& schema, std::vector<Table>& batches) {
  std::vector<bool> has_null(schema.size(), false);
  for (const Table& t : batches)
    for (size_t c = 0; c < schema.size(); ++c) has_null[c] = has_null[c] || t.column(c).null_count() > 0;
  for (size_t c = 0; c < schema.size(); ++c) schema.fields()[c].nullable = has_null[c];
  for (Table& t : batches) {
    std::vector<Column> columns = t.release_columns();
    for (size_t c = 0; c < schema.size(); ++c) {
      if (has_null[c]) continue;
      Column dense = Column::make_for(schema[c]);
      dense.append_all(columns[c]);
      columns[c] = std::move(dense);
    }
    t = Table(schema, std::move(columns));
  }
}

// ======================================================================= the source

class ReplaySource final : public Source {
 public:
  ReplaySource(std::string path, std::optional<Schema> schema) : path_(std::move(path)) {
    std::ifstream file(path_, std::ios::binary);
    if (!file) throw Error("replay file '" + path_ + "' cannot be opened: " + std::strerror(errno));
    std::stringstream contents;
    contents << file.rdbuf();
    if (file.bad()) throw Error("replay file '" + path_ + "' cannot be read: " + std::strerror(errno));
    const std::string text = std::move(contents).str();

    struct Line {
      size_t number;
      std::string_view text;
    };
    std::vector<Line> lines;
    size_t start = 0, number = 1;
    while (start < text.size()) {
      size_t end = text.find('\n', start);
      if (end == std::string::npos) end = text.size();
      std::string_view line(text.data() + start, end - start);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line.find_first_not_of(" \t") != std::string_view::npos) lines.push_back({number, line});
      start = end + 1;
      ++number;
    }

    const bool inferred = !schema;
    if (inferred) schema = infer_from_first_batch(lines);
    schema_ = *schema;
    for (const Line& line : lines) {
      const json value = json::parse(line.text.begin(), line.text.end(), nullptr, false);
      if (value.is_discarded()) fail(line.number, "not valid JSON");
      const json* records = records_of(value);
      if (!records) fail(line.number, not_a_batch(value.type()));
      try {
        batches_.push_back(batch_from_records(*records, schema_));
      } catch (const Error& e) {
        fail(line.number, e.what());
      }
    }
    if (inferred) settle_nullability(schema_, batches_);
  }

  std::string name() const override { return "replay " + path_; }
  const Schema& schema() const override { return schema_; }

  Table next_batch(Time batch_time) override {
    (void)batch_time;  // batches play in order, one per call, whatever the clock says
    const size_t index = next_.load();
    if (index >= batches_.size()) return Table::empty(schema_);
    Table batch = std::move(batches_[index]);
    delivered_records_ += batch.num_rows();
    next_.store(index + 1);
    return batch;
  }

  bool finished() const override { return next_.load() >= batches_.size(); }

  SourceCounters counters() const override {
    SourceCounters c;
    c.records = delivered_records_.load();
    return c;
  }

 private:
  [[noreturn]] void fail(size_t line, const std::string& what) const {
    throw Error("replay file '" + path_ + "' line " + std::to_string(line) + ": " + what);
  }

  template <class Lines>
  Schema infer_from_first_batch(const Lines& lines) const {
    for (const auto& line : lines) {
      // ordered_json keeps object keys in file order, which becomes the field order.
      const ordered_json value = ordered_json::parse(line.text.begin(), line.text.end(), nullptr, false);
      if (value.is_discarded()) fail(line.number, "not valid JSON");
      const ordered_json* records = records_of(value);
      if (!records) fail(line.number, not_a_batch(value.type()));
      if (records->empty()) continue;
      try {
        return infer_schema(*records);
      } catch (const Error& e) {
        fail(line.number, e.what());
      }
    }
    throw Error("replay file '" + path_ + "' has no records to infer a schema from; give the schema");
  }

  std::string path_;
  Schema schema_;
  std::vector<Table> batches_;
  std::atomic<size_t> next_{0};
  std::atomic<size_t> delivered_records_{0};
};

}  // namespace

std::unique_ptr<Source> make_replay_source(std::string path, std::optional<Schema> schema) {
  return std::make_unique<ReplaySource>(std::move(path), std::move(schema));
}

Table parse_replay_batch(std::string_view json_line, const Schema& schema) {
  const json value = json::parse(json_line.begin(), json_line.end(), nullptr, false);
  if (value.is_discarded()) throw Error("replay batch: not valid JSON: " + std::string(json_line.substr(0, 60)));
  const json* records = records_of(value);
  if (!records) throw Error("replay batch: " + not_a_batch(value.type()));
  try {
    return batch_from_records(*records, schema);
  } catch (const Error& e) {
    throw Error("replay batch: " + std::string(e.what()));
  }
}

void write_jsonl_batch(std::string& out, Time batch_time, const Table& table) {
  out += "{\"time\":";
  out += std::to_string(batch_time.ms);
  out += ",\"records\":[";
  for (size_t r = 0; r < table.num_rows(); ++r) {
    if (r) out += ',';
    out += table.row_json(r);
  }
  out += "]}\n";
}

}  // namespace sluice::pipeline
