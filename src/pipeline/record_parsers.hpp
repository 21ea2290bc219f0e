#pragma once
/// @file record_parsers.hpp
/// @brief Text records (CSV or JSON lines) into typed columns of a declared schema.
///
/// A record that does not fit the schema is returned with the reason, never thrown: the
/// engine counts it and sends it to the dead-letter sink. Only a problem with the call
/// itself (lines that are not a string column, a List field in a CSV schema) throws.
///
/// Common rules:
/// - Blank lines (empty, or a lone "\r") hold no record and are skipped; a trailing "\r" is
///   dropped from every line (CRLF files).
/// - Numbers are parsed strictly with std::from_chars: "12x", " 12" and "+12" are malformed;
///   integers must fit the field's type. Floats accept "1.5", "2e3", "inf" and "nan".
/// - Bools are true/false in any letter case, or 1/0 (CSV); JSON needs true/false.
/// - A record is appended whole or not at all.
///
/// Example:
/// @code
///   Schema schema{{"user", TypeId::String}, {"price", TypeId::Float64, true}};
///   ParseResult r = parse_csv(lines_column, schema);
///   // r.table: the good rows; r.malformed: {"bob,abc", "field 'price': 'abc' is not a float64"}
/// @endcode

#include <nlohmann/json_fwd.hpp>  // for the detail:: helper shared with replay.cpp

#include <string>
#include <vector>

#include "sluice/backend.hpp"
#include "sluice/column.hpp"
#include "sluice/types.hpp"

namespace sluice::pipeline {

/// @brief A record that did not fit the schema, as it was read, and why.
struct MalformedRecord {
  std::string record;
  std::string reason;  ///< e.g. "field 'price': 'abc' is not a float64"
};

/// @brief The rows that parsed, in input order, and the records that did not.
struct ParseResult {
  Table table;
  /// For each row of table, the index of the line it was parsed from; empty when
  /// rows_are_lines (a backend that parsed every line says so instead of listing them).
  std::vector<int64_t> rows;
  std::vector<MalformedRecord> malformed;
  bool rows_are_lines = false;  ///< row r was parsed from line r, for every row

  /// For each row of table, the index of its line, whichever way it is kept.
  std::vector<int64_t> line_of_each_row() const;
};

struct CsvOptions {
  char delimiter = ',';
  char quote = '"';
  /// The first line of the column is a header and is skipped.
  bool skip_header = false;
};

/// @brief Parses each line of @p lines (a string column) as one CSV record of @p schema.
///
/// Quoting follows RFC 4180 within a line: a field that starts with the quote character
/// runs to the next lone quote, a doubled quote inside stands for one, and the closing
/// quote must end the field. A quote inside an unquoted field is an ordinary character.
/// A record with a different number of fields than the schema is malformed. An empty
/// field is null for a nullable field; for a non-nullable string it is ""; for any other
/// non-nullable field it is malformed. A quoted empty field ("") is always "" for strings.
/// Null lines are malformed.
/// @throw sluice::Error when @p lines is not a string column or @p schema has a List field.
ParseResult parse_csv(const Column& lines, const Schema& schema, const CsvOptions& options = {});

/// @brief parse_csv on @p backend where it parses on its own (the CUDA backend does, on the
/// device); lines it leaves to the host, and malformed ones (for their reasons), are parsed
/// here and merged in input order. The result is the same as parse_csv's.
ParseResult parse_csv(const Column& lines, const Schema& schema, const CsvOptions& options, ExecutionBackend& backend);

/// @brief Parses each line of @p lines (a string column) as one JSON record of @p schema.
///
/// A record is a JSON object (fields by name: a missing nullable field is null, a missing
/// non-nullable one makes the record malformed, extra fields are ignored) or a JSON array
/// (fields by position: its length must equal the schema's). A List field's value is an
/// array of elements; an element is a scalar when the list's struct has one field,
/// otherwise an array (by position) or an object (by name). Integers accept JSON numbers
/// with no fractional part ("3.0"); strings must be JSON strings.
/// @throw sluice::Error when @p lines is not a string column.
ParseResult parse_json(const Column& lines, const Schema& schema);

/// @brief parse_json on @p backend, as parse_csv with a backend: lines the backend leaves to
/// the host, and malformed ones, are parsed here and merged in input order.
ParseResult parse_json(const Column& lines, const Schema& schema, ExecutionBackend& backend);

namespace detail {

/// @brief How a JSON record maps onto a schema.
enum class JsonRecordShape {
  ObjectOrArray,       ///< an object (by name) or an array (by position)
  BareValueIfSingle,   ///< also: for a one-field schema, the record may be the field's value
};

/// @brief Appends @p record to @p columns (one per field of @p schema) following the rules
/// of parse_json(). Returns "" on success, otherwise the reason, and then appends nothing.
std::string append_json_record(const nlohmann::json& record, const Schema& schema, std::vector<Column>& columns,
                               JsonRecordShape shape);

/// @brief A short spelling of @p value for messages (JSON, cut after 40 characters).
std::string describe_json(const nlohmann::json& value);

}  // namespace detail

}  // namespace sluice::pipeline
