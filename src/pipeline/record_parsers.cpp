#include "pipeline/record_parsers.hpp"

#include <cctype>
#include <charconv>
#include <cstdlib>
#include <cmath>
#include <limits>
#include <numeric>
#include <optional>
#include <thread>

#include <nlohmann/json.hpp>

namespace sluice::pipeline {

namespace {

using nlohmann::json;

constexpr size_t kShownChars = 40;

/// 'text' for messages, cut short when long.
std::string quote_text(std::string_view text) {
  if (text.size() <= kShownChars) return "'" + std::string(text) + "'";
  return "'" + std::string(text.substr(0, kShownChars)) + "...'";
}

std::string field_label(const Schema& schema, size_t index) { return "field '" + schema[index].name + "'"; }

std::string_view without_cr(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

void check_lines_column(const Column& lines, std::string_view caller) {
  if (lines.type() != TypeId::String)
    throw Error(std::string(caller) + ": records must be a string column, got " + std::string(type_name(lines.type())));
}

std::vector<Column> empty_columns(const Schema& schema, size_t rows) {
  std::vector<Column> columns;
  columns.reserve(schema.size());
  for (const Field& f : schema) {
    columns.push_back(Column::make_for(f));
    columns.back().reserve(rows);
  }
  return columns;
}

// ======================================================================= scalar text

bool equals_ignoring_case(std::string_view a, std::string_view lower) {
  if (a.size() != lower.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != lower[i]) return false;
  return true;
}

/// False for a finite value whose magnitude @p type cannot hold (inf and nan are values).
bool fits_float_type(double value, TypeId type) {
  if (!std::isfinite(value)) return true;  // "inf" and "nan" spelled out are values
  const double limit = type == TypeId::Float32 ? std::numeric_limits<float>::max() : std::numeric_limits<double>::max();
  return std::abs(value) <= limit;
}

/// One parsed CSV field, held until the whole record is known to be good.
struct Cell {
  bool is_null = false;
  int64_t integer = 0;
  double real = 0;
  std::string_view text;
};

/// Parses @p text as @p field's type into @p cell; returns "" or the reason.
std::string parse_scalar_text(std::string_view text, bool quoted, const Field& field, Cell& cell) {
  cell = Cell{};
  if (text.empty() && !(quoted && field.type == TypeId::String)) {
    if (field.nullable) {
      cell.is_null = true;
      return {};
    }
    if (field.type == TypeId::String) {
      cell.text = text;
      return {};
    }
    return "empty value for non-nullable " + std::string(type_name(field.type));
  }
  const char* first = text.data();
  const char* last = text.data() + text.size();
  auto not_a = [&](std::string_view what) { return quote_text(text) + " is not " + std::string(what); };
  switch (field.type) {
    case TypeId::Bool:
      if (equals_ignoring_case(text, "true") || text == "1") cell.integer = 1;
      else if (equals_ignoring_case(text, "false") || text == "0") cell.integer = 0;
      else return not_a("a bool");
      return {};
    case TypeId::Int32:
    case TypeId::Int64: {
      const bool is32 = field.type == TypeId::Int32;
      auto [end, ec] = std::from_chars(first, last, cell.integer);
      if (end != last || (ec != std::errc() && ec != std::errc::result_out_of_range))
        return not_a(is32 ? "an int32" : "an int64");
      if (ec == std::errc::result_out_of_range ||
          (is32 && (cell.integer < std::numeric_limits<int32_t>::min() || cell.integer > std::numeric_limits<int32_t>::max())))
        return quote_text(text) + " is out of range for " + std::string(type_name(field.type));
      return {};
    }
    case TypeId::Float32:
    case TypeId::Float64: {
      auto [end, ec] = std::from_chars(first, last, cell.real);
      if (end != last || (ec != std::errc() && ec != std::errc::result_out_of_range))
        return not_a(field.type == TypeId::Float32 ? "a float32" : "a float64");
      // from_chars leaves the value alone when out of range; strtod tells overflow (an error)
      // from underflow (a value close to zero, which the text did mean).
      if (ec == std::errc::result_out_of_range) cell.real = std::strtod(std::string(text).c_str(), nullptr);
      if ((ec == std::errc::result_out_of_range && std::isinf(cell.real)) || !fits_float_type(cell.real, field.type))
        return quote_text(text) + " is out of range for " + std::string(type_name(field.type));
      return {};
    }
    case TypeId::String: cell.text = text; return {};
    case TypeId::List: break;
  }
  return "a list cannot be read from text";
}

void append_cell(Column& column, const Field& field, const Cell& cell) {
  if (cell.is_null) return column.append_null();
  switch (field.type) {
    case TypeId::Bool: column.append<uint8_t>(static_cast<uint8_t>(cell.integer)); break;
    case TypeId::Int32: column.append<int32_t>(static_cast<int32_t>(cell.integer)); break;
    case TypeId::Int64: column.append<int64_t>(cell.integer); break;
    case TypeId::Float32: column.append<float>(static_cast<float>(cell.real)); break;
    case TypeId::Float64: column.append<double>(cell.real); break;
    default: column.append_string(cell.text); break;
  }
}

// ======================================================================= CSV

/// Where a field's text lies: in the line, or (when doubled quotes were undone) in scratch.
struct CsvFieldSpan {
  size_t begin = 0;
  size_t length = 0;
  bool in_scratch = false;
  bool quoted = false;
};

/// Splits @p line into @p fields; returns "" or the reason it is not valid CSV.
std::string split_csv_line(std::string_view line, const CsvOptions& options, std::vector<CsvFieldSpan>& fields,
                           std::string& scratch) {
  fields.clear();
  scratch.clear();
  const char quote = options.quote;
  const char delimiter = options.delimiter;
  size_t pos = 0;
  while (true) {
    if (pos < line.size() && line[pos] == quote) {
      const size_t begin = pos + 1;
      size_t cursor = begin;
      size_t end = std::string_view::npos;
      bool doubled = false;
      while (true) {
        const size_t q = line.find(quote, cursor);
        if (q == std::string_view::npos) break;
        if (q + 1 < line.size() && line[q + 1] == quote) {
          doubled = true;
          cursor = q + 2;
          continue;
        }
        end = q;
        break;
      }
      if (end == std::string_view::npos)
        return "field " + std::to_string(fields.size() + 1) + ": quoted field is not closed";
      CsvFieldSpan span{begin, end - begin, false, true};
      if (doubled) {
        span.begin = scratch.size();
        for (size_t i = begin; i < end; ++i) {
          scratch += line[i];
          if (line[i] == quote) ++i;  // the second of a doubled quote
        }
        span.length = scratch.size() - span.begin;
        span.in_scratch = true;
      }
      fields.push_back(span);
      pos = end + 1;
      if (pos == line.size()) return {};
      if (line[pos] != delimiter)
        return "field " + std::to_string(fields.size()) + ": unexpected " + quote_text(line.substr(pos, 1)) +
               " after the closing quote";
      ++pos;
    } else {
      const size_t next = line.find(delimiter, pos);
      if (next == std::string_view::npos) {
        fields.push_back(CsvFieldSpan{pos, line.size() - pos, false, false});
        return {};
      }
      fields.push_back(CsvFieldSpan{pos, next - pos, false, false});
      pos = next + 1;
    }
  }
}

// ======================================================================= JSON values

std::string json_kind(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return "a bool";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return "an integer";
    case json::value_t::number_float: return "a number";
    case json::value_t::string: return "a string";
    case json::value_t::array: return "an array";
    case json::value_t::object: return "an object";
    default: return "a " + std::string(v.type_name());
  }
}

/// The JSON number @p v as an integer when it is one exactly (3 or 3.0), in int64 range.
bool json_integer(const json& v, int64_t& out) {
  switch (v.type()) {
    case json::value_t::number_integer: out = v.get<int64_t>(); return true;
    case json::value_t::number_unsigned: {
      const uint64_t u = v.get<uint64_t>();
      if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return false;
      out = static_cast<int64_t>(u);
      return true;
    }
    case json::value_t::number_float: {
      const double d = v.get<double>();
      if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0) || std::trunc(d) != d) return false;
      out = static_cast<int64_t>(d);
      return true;
    }
    default: return false;
  }
}

std::string check_json_record(const json& record, const Schema& schema, detail::JsonRecordShape shape,
                              std::vector<const json*>& values);

/// "" when @p v can be appended to a column of @p field, otherwise the reason.
std::string check_json_value(const Field& field, const json* v) {
  if (!v) return field.nullable ? "" : "missing";
  if (v->is_null()) return field.nullable ? "" : "null for non-nullable " + std::string(type_name(field.type));
  auto not_a = [&](std::string_view what) { return detail::describe_json(*v) + " is not " + std::string(what); };
  switch (field.type) {
    case TypeId::Bool: return v->is_boolean() ? "" : not_a("a bool");
    case TypeId::Int32:
    case TypeId::Int64: {
      const bool is32 = field.type == TypeId::Int32;
      int64_t x = 0;
      if (!v->is_number()) return not_a(is32 ? "an int32" : "an int64");
      if (!json_integer(*v, x)) {
        if (v->is_number_float() && std::trunc(v->get<double>()) != v->get<double>())
          return not_a(is32 ? "an int32" : "an int64");
        return detail::describe_json(*v) + " is out of range for " + std::string(type_name(field.type));
      }
      if (is32 && (x < std::numeric_limits<int32_t>::min() || x > std::numeric_limits<int32_t>::max()))
        return detail::describe_json(*v) + " is out of range for int32";
      return {};
    }
    case TypeId::Float32:
    case TypeId::Float64:
      if (!v->is_number()) return not_a(field.type == TypeId::Float32 ? "a float32" : "a float64");
      if (!fits_float_type(v->get<double>(), field.type))
        return detail::describe_json(*v) + " is out of range for " + std::string(type_name(field.type));
      return {};
    case TypeId::String: return v->is_string() ? "" : not_a("a string");
    case TypeId::List: {
      if (!v->is_array()) return not_a("a list (a JSON array)");
      const Schema element(field.children);
      std::vector<const json*> parts;
      for (size_t i = 0; i < v->size(); ++i) {
        // A one-field element is written bare (as Column::append_json writes it).
        const std::string reason =
            check_json_record((*v)[i], element, detail::JsonRecordShape::BareValueIfSingle, parts);
        if (!reason.empty()) return "element " + std::to_string(i + 1) + ": " + reason;
      }
      return {};
    }
  }
  return "unsupported type";
}

void append_json_record_checked(const Schema& schema, const std::vector<const json*>& values, std::vector<Column>& columns);

/// Appends @p v, already checked by check_json_value().
void append_json_value(Column& column, const Field& field, const json* v) {
  if (!v || v->is_null()) return column.append_null();
  switch (field.type) {
    case TypeId::Bool: column.append<uint8_t>(v->get<bool>() ? 1 : 0); break;
    case TypeId::Int32:
    case TypeId::Int64: {
      int64_t x = 0;
      json_integer(*v, x);
      if (field.type == TypeId::Int32) column.append<int32_t>(static_cast<int32_t>(x));
      else column.append<int64_t>(x);
      break;
    }
    case TypeId::Float32: column.append<float>(static_cast<float>(v->get<double>())); break;
    case TypeId::Float64: column.append<double>(v->get<double>()); break;
    case TypeId::String: column.append_string(v->get_ref<const std::string&>()); break;
    case TypeId::List: {
      const Schema element(field.children);
      std::vector<const json*> parts;
      for (const json& item : *v) {
        check_json_record(item, element, detail::JsonRecordShape::BareValueIfSingle, parts);
        append_json_record_checked(element, parts, column.children());
      }
      column.append_list_end();
      break;
    }
  }
}

/// Finds the value of each field of @p schema in @p record (nullptr when missing) and checks
/// it; returns "" or the reason the record does not fit.
std::string check_json_record(const json& record, const Schema& schema, detail::JsonRecordShape shape,
                              std::vector<const json*>& values) {
  values.assign(schema.size(), nullptr);
  const bool single = schema.size() == 1 && shape == detail::JsonRecordShape::BareValueIfSingle;
  if (record.is_object()) {
    for (size_t i = 0; i < schema.size(); ++i) {
      auto it = record.find(schema[i].name);
      if (it != record.end()) values[i] = &*it;
      else if (!schema[i].nullable) return field_label(schema, i) + " is missing";
    }
  } else if (single && (schema[0].type == TypeId::List || !record.is_array())) {
    values[0] = &record;  // the bare value of a one-field record
  } else if (record.is_array()) {
    if (record.size() != schema.size())
      return "expected an array of " + std::to_string(schema.size()) + " values, got " + std::to_string(record.size());
    for (size_t i = 0; i < schema.size(); ++i) values[i] = &record[i];
  } else {
    return "expected a JSON object or array, got " + json_kind(record);
  }
  for (size_t i = 0; i < schema.size(); ++i) {
    const std::string reason = check_json_value(schema[i], values[i]);
    if (!reason.empty()) return field_label(schema, i) + ": " + reason;
  }
  return {};
}

void append_json_record_checked(const Schema& schema, const std::vector<const json*>& values, std::vector<Column>& columns) {
  for (size_t i = 0; i < schema.size(); ++i) append_json_value(columns[i], schema[i], values[i]);
}

}  // namespace

// ======================================================================= public

namespace detail {

std::string describe_json(const json& value) {
  std::string text = value.dump(-1, ' ', false, json::error_handler_t::replace);
  if (text.size() > kShownChars) text = text.substr(0, kShownChars) + "...";
  return text;
}

std::string append_json_record(const json& record, const Schema& schema, std::vector<Column>& columns, JsonRecordShape shape) {
  std::vector<const json*> values;
  std::string reason = check_json_record(record, schema, shape, values);
  if (reason.empty()) append_json_record_checked(schema, values, columns);
  return reason;
}

}  // namespace detail

namespace {

/// Rows [begin, end) of @p lines parsed into @p columns (appended), with the rows they
/// came from and the malformed ones.
void parse_csv_rows(const Column& lines, const Schema& schema, const CsvOptions& options, size_t begin, size_t end,
                    std::vector<Column>& columns, std::vector<int64_t>& rows, std::vector<MalformedRecord>& malformed) {
  std::vector<CsvFieldSpan> spans;
  std::vector<Cell> cells(schema.size());
  std::string scratch;
  for (size_t row = begin; row < end; ++row) {
    if (!lines.is_valid(row)) {
      malformed.push_back({"", "record is null"});
      continue;
    }
    const std::string_view line = without_cr(lines.string_at(row));
    if (line.empty()) continue;
    std::string reason = split_csv_line(line, options, spans, scratch);
    if (reason.empty() && spans.size() != schema.size())
      reason = "expected " + std::to_string(schema.size()) + " fields, got " + std::to_string(spans.size());
    for (size_t i = 0; reason.empty() && i < spans.size(); ++i) {
      const CsvFieldSpan& s = spans[i];
      const std::string_view text = s.in_scratch ? std::string_view(scratch).substr(s.begin, s.length) : line.substr(s.begin, s.length);
      reason = parse_scalar_text(text, s.quoted, schema[i], cells[i]);
      if (!reason.empty()) reason = field_label(schema, i) + ": " + reason;
    }
    if (!reason.empty()) {
      malformed.push_back({std::string(lines.string_at(row)), std::move(reason)});
      continue;
    }
    for (size_t i = 0; i < schema.size(); ++i) append_cell(columns[i], schema[i], cells[i]);
    rows.push_back(static_cast<int64_t>(row));
  }
}

/// Below this many lines one thread parses: starting threads would cost more than it saves.
constexpr size_t kParallelParseLines = size_t{1} << 15;

}  // namespace

std::vector<int64_t> ParseResult::line_of_each_row() const {
  if (!rows_are_lines) return rows;
  std::vector<int64_t> lines(table.num_rows());
  std::iota(lines.begin(), lines.end(), int64_t{0});
  return lines;
}

ParseResult parse_csv(const Column& lines, const Schema& schema, const CsvOptions& options) {
  check_lines_column(lines, "parse_csv");
  for (const Field& f : schema)
    if (f.type == TypeId::List)
      throw Error("parse_csv: field '" + f.name + "' is a list; CSV records hold scalar fields only (schema {" +
                  schema.to_string() + "})");
  SLUICE_EXPECTS(options.delimiter != options.quote,
                 "parse_csv: the delimiter and the quote character are both '" + std::string(1, options.quote) + "'");

  ParseResult result;
  const size_t first = options.skip_header ? std::min<size_t>(1, lines.size()) : 0;
  const size_t threads = lines.size() < kParallelParseLines
                             ? 1
                             : std::min<size_t>(std::max(1u, std::thread::hardware_concurrency()),
                                                lines.size() / (kParallelParseLines / 2));
  if (threads <= 1) {
    std::vector<Column> columns = empty_columns(schema, lines.size());
    parse_csv_rows(lines, schema, options, first, lines.size(), columns, result.rows, result.malformed);
    result.table = Table(schema, std::move(columns));
    return result;
  }
  // Lines are independent: each thread parses a contiguous slice, and the slices are joined
  // in order, so rows, malformed records and column contents keep the input order.
  struct Slice {
    std::vector<Column> columns;
    std::vector<int64_t> rows;
    std::vector<MalformedRecord> malformed;
    std::exception_ptr error;
  };
  std::vector<Slice> slices(threads);
  std::vector<std::thread> workers;
  const size_t span = lines.size() - first;
  for (size_t t = 0; t < threads; ++t) {
    const size_t begin = first + span * t / threads, end = first + span * (t + 1) / threads;
    workers.emplace_back([&, t, begin, end] {
      try {
        slices[t].columns = empty_columns(schema, end - begin);
        parse_csv_rows(lines, schema, options, begin, end, slices[t].columns, slices[t].rows, slices[t].malformed);
      } catch (...) {
        slices[t].error = std::current_exception();
      }
    });
  }
  for (auto& w : workers) w.join();
  for (auto& slice : slices)
    if (slice.error) std::rethrow_exception(slice.error);
  std::vector<Column> columns = std::move(slices[0].columns);
  result.rows = std::move(slices[0].rows);
  result.malformed = std::move(slices[0].malformed);
  for (size_t t = 1; t < threads; ++t) {
    for (size_t i = 0; i < columns.size(); ++i) columns[i].append_all(slices[t].columns[i]);
    result.rows.insert(result.rows.end(), slices[t].rows.begin(), slices[t].rows.end());
    std::move(slices[t].malformed.begin(), slices[t].malformed.end(), std::back_inserter(result.malformed));
  }
  result.table = Table(schema, std::move(columns));
  return result;
}

namespace {

/// The backend's rows merged with the host parser's parse (@p parse_on_host) of the lines
/// the backend left to it, in input order.
template <class ParseOnHost>
ParseResult merge_with_host(const Column& lines, ParsedLines&& parsed, ParseOnHost&& parse_on_host) {
  if (parsed.host_lines.empty()) return ParseResult{std::move(parsed.table), std::move(parsed.rows), {}, parsed.rows_are_lines};
  SLUICE_EXPECTS(!parsed.rows_are_lines, "a backend's parse of every line left lines to the host");
  const std::vector<int64_t>& host_lines = parsed.host_lines;
  ParseResult host = parse_on_host(lines.gather(host_lines));
  for (int64_t& r : host.rows) r = host_lines[static_cast<size_t>(r)];
  // Both row lists ascend: merge them, and the tables with them, in input order.
  const Table* parts[] = {&parsed.table, &host.table};
  const Table both = Table::concat(parts);
  std::vector<int64_t> order(both.num_rows());
  std::vector<int64_t> rows;
  rows.reserve(both.num_rows());
  size_t a = 0, b = 0;
  const std::vector<int64_t>& device_rows = parsed.rows;
  for (size_t o = 0; o < order.size(); ++o) {
    const bool from_backend = b == host.rows.size() || (a < device_rows.size() && device_rows[a] < host.rows[b]);
    order[o] = from_backend ? static_cast<int64_t>(a) : static_cast<int64_t>(device_rows.size() + b);
    rows.push_back(from_backend ? device_rows[a++] : host.rows[b++]);
  }
  return ParseResult{both.gather(order), std::move(rows), std::move(host.malformed)};
}

}  // namespace

ParseResult parse_csv(const Column& lines, const Schema& schema, const CsvOptions& options, ExecutionBackend& backend) {
  // A header line is skipped per batch: that, and calls the host parser rejects, stay here.
  if (options.skip_header || options.delimiter == options.quote || lines.type() != TypeId::String)
    return parse_csv(lines, schema, options);
  const TextRecordFormat format{TextRecordFormat::Kind::Csv, options.delimiter, options.quote};
  std::optional<ParsedLines> parsed = backend.parse_records(lines, schema, format);
  if (!parsed) return parse_csv(lines, schema, options);
  return merge_with_host(lines, std::move(*parsed), [&](const Column& subset) { return parse_csv(subset, schema, options); });
}

ParseResult parse_json(const Column& lines, const Schema& schema, ExecutionBackend& backend) {
  if (lines.type() != TypeId::String) return parse_json(lines, schema);
  std::optional<ParsedLines> parsed = backend.parse_records(lines, schema, TextRecordFormat{TextRecordFormat::Kind::Json});
  if (!parsed) return parse_json(lines, schema);
  return merge_with_host(lines, std::move(*parsed), [&](const Column& subset) { return parse_json(subset, schema); });
}

ParseResult parse_json(const Column& lines, const Schema& schema) {
  check_lines_column(lines, "parse_json");
  ParseResult result;
  std::vector<Column> columns = empty_columns(schema, lines.size());
  for (size_t row = 0; row < lines.size(); ++row) {
    if (!lines.is_valid(row)) {
      result.malformed.push_back({"", "record is null"});
      continue;
    }
    const std::string_view line = without_cr(lines.string_at(row));
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
    const json record = json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
    std::string reason;
    if (record.is_discarded()) reason = "not valid JSON";
    else reason = detail::append_json_record(record, schema, columns, detail::JsonRecordShape::ObjectOrArray);
    if (!reason.empty()) result.malformed.push_back({std::string(lines.string_at(row)), std::move(reason)});
    else result.rows.push_back(static_cast<int64_t>(row));
  }
  result.table = Table(schema, std::move(columns));
  return result;
}

}  // namespace sluice::pipeline
