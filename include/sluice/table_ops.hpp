#pragma once
/// @file table_ops.hpp
/// @brief Built-in runtime operators over untyped streams: keyed aggregation (sum, count,
/// min, max, mean) per batch, per window and as running state, joins, cogroup and
/// group_by_key by named key fields. Pipeline files are built from these; the columnar
/// work runs on the context's backend.

#include <string>
#include <vector>

#include "sluice/backend.hpp"
#include "sluice/stream_graph.hpp"

namespace sluice {

/// @brief reduceByKey with built-in aggregates: one row per key per batch.
TableStream aggregate_by_key(const TableStream& input, KeyedAggregation plan);

/// @brief reduceByKeyAndWindow with built-in aggregates over a ring of per-slide panes of
/// partial aggregates. When every aggregate is invertible (count, sum, mean) a slide adds
/// the entering pane and subtracts the leaving one; otherwise (min, max) the panes are
/// recombined. Keys with no record left in the window leave it.
TableStream aggregate_by_key_and_window(const TableStream& input, KeyedAggregation plan, Duration window, Duration slide);

/// @brief update_state_by_key with built-in aggregates: running aggregates per key since the
/// stream started; a key that receives no record for @p expire_after_batches batches is
/// dropped (0: never). Emits the whole state every batch.
TableStream aggregate_state_by_key(const TableStream& input, KeyedAggregation plan, size_t expire_after_batches = 0);

/// @brief Joins two streams' batches at the same time on named key fields.
TableStream join_streams(const TableStream& left, std::vector<std::string> left_keys, const TableStream& right,
                         std::vector<std::string> right_keys, JoinKind kind);

/// @brief cogroup on named key fields: keys, then List fields "left" and "right".
TableStream cogroup_streams(const TableStream& left, std::vector<std::string> left_keys, const TableStream& right,
                            std::vector<std::string> right_keys);

/// @brief group_by_key on named key fields: keys, then a List field "values".
TableStream group_by_key(const TableStream& input, std::vector<std::string> keys);

/// @brief Indexes of @p names in @p schema; throws naming the operator @p op and the field.
std::vector<size_t> field_indexes(std::string_view op, const Schema& schema, const std::vector<std::string>& names);

}  // namespace sluice
