#pragma once
/// @file replay.hpp
/// @brief The replay format: recorded batches played back one per batch time, so that a
/// pipeline run is deterministic and repeatable.
///
/// A replay file is JSON lines; each line is one batch, a JSON array of records:
///
///     [["a", 1], ["b", 2]]
///     []
///     [["a", 3]]
///
/// A record is a scalar (for a one-field schema), a JSON array (fields by position; a pair
/// is a two-element array; a List field's value is the array of its elements) or an object
/// (fields by name). Blank lines are skipped. A line may also be an object with a "records"
/// array, as write_jsonl_batch() writes it, so recorded output can be replayed. Values
/// follow the rules of parse_json() in record_parsers.hpp.

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "sluice/column.hpp"
#include "sluice/source.hpp"
#include "sluice/types.hpp"

namespace sluice::pipeline {

/// @brief A source that plays @p path back, one batch (one line) per next_batch() call;
/// finished() is true once the last batch was delivered, and later calls give empty batches.
///
/// Without @p schema, the schema is inferred from the first non-empty batch: a column of
/// whole numbers is int64, one with any fractional number float64, true/false bool, text
/// string (a column that holds only nulls there is string). Fields are called "value" when
/// records are scalars, "_1", "_2", ... when they are arrays, and by their keys (in order of
/// first appearance) when they are objects. An inferred field is nullable when a null (or,
/// for objects, a missing key) appears in it anywhere in the file.
///
/// The file is read and checked whole at construction, so a bad file fails before a run.
/// @throw sluice::Error naming the file and line when the file cannot be read, a line is not
///        an array of records, or a record does not fit the schema.
std::unique_ptr<Source> make_replay_source(std::string path, std::optional<Schema> schema);

/// @brief One batch: @p json_line (a JSON array of records) as a table of @p schema.
/// @throw sluice::Error naming the record (1-based) and what was wrong, e.g.
///        "replay batch: record 2: field 'price': \"abc\" is not a float64".
Table parse_replay_batch(std::string_view json_line, const Schema& schema);

/// @brief Appends one line `{"time":1000,"records":[...]}` and a newline to @p out, each
/// record as Table::row_json() spells it. parse_replay_batch() of the records array gives
/// back an equal table (NaN and infinities excepted: JSON writes them as null).
void write_jsonl_batch(std::string& out, Time batch_time, const Table& table);

}  // namespace sluice::pipeline
