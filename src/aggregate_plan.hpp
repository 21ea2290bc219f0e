#pragma once
// The parts of a keyed aggregation plan that every backend shares: the plan resolved against
// an input schema, where each aggregate's state sits in a partial table, and the checks on
// partial tables. Defined in src/cpu/hash_aggregate.cpp (unless said otherwise).
#include <span>
#include <string>
#include <vector>

#include "sluice/backend.hpp"

namespace sluice {

/// A plan resolved against an input schema: key and input column indexes, checked.
struct ResolvedPlan {
  std::vector<size_t> keys;
  std::vector<int> inputs;  // per aggregate: input column, -1 for count of rows
};
/// Throws sluice::Error naming the field or aggregate that does not fit @p input.
ResolvedPlan resolve_plan(const KeyedAggregation& plan, const Schema& input);
/// "aggregate 'total' = sum(price)"
std::string describe(const AggregateSpec& a);

/// Where the state of each aggregate sits in a partial table, and its field names.
struct PartialLayout {
  size_t key_count = 0;
  std::vector<size_t> first_state_column;  // per aggregate
  size_t records_column = 0;
  std::vector<std::string> names;          // every field of a partial table after the keys
};
PartialLayout partial_layout(const KeyedAggregation& plan);

/// Checks that @p partial is a partial table of @p plan; @p what names the table in errors.
void check_partial(const Table& partial, const KeyedAggregation& plan, const PartialLayout& layout, const std::string& what);
/// The checks of combine_partials: tables, signs (+1/-1; -1 only for invertible plans), and
/// one type per field across the tables.
void check_combine_inputs(std::span<const Table* const> partials, std::span<const int> signs, const KeyedAggregation& plan,
                          const PartialLayout& layout);

/// Whether row @p row of @p columns and row @p other_row of @p others (same types) hold equal
/// keys, as keys are grouped: null equals null, NaN equals NaN, -0.0 equals 0.0.
bool same_key_rows(std::span<const Column* const> columns, size_t row, std::span<const Column> others, size_t other_row);

/// The sum of a @p input field: int64 for integers and bool, float64 for floating point.
TypeId sum_type(TypeId input);

struct RowOperations;
/// Checks @p before, row operations handed to the aggregation @p op of a stream of schema
/// @p input (steps and a host run, compiled for that schema). Defined in src/table_ops.cpp.
void check_row_operations(const char* op, const Schema& input, const RowOperations& before);

}  // namespace sluice
