#pragma once
/// @file table_ops.hpp
/// @brief Built-in runtime operators over untyped streams: keyed aggregation (sum, count,
/// min, max, mean) per batch, per window and as running state, joins, cogroup and
/// group_by_key by named key fields. Pipeline files are built from these; the columnar
/// work runs on the context's backend.

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "sluice/backend.hpp"
#include "sluice/stream_graph.hpp"

namespace sluice {

/// @brief Row operations (filter, map, select, flat_map) that a keyed aggregation runs on
/// each batch first, handed to the backend together with it (ExecutionBackend::
/// aggregate_row_chain, WindowAggregation::add_row_chain, StateAggregation::
/// update_row_chain), so that their output can stay where the backend made it: only the
/// aggregation's groups leave a GPU.
struct RowOperations {
  std::string name;                ///< for the operator's name: "stream 'words': flat_map, map"
  Schema input;                    ///< the batches' schema the steps were compiled for
  std::vector<RowChainStep> steps; ///< the operations; the aggregation reads steps.back().output
  /// The same operations for the host, when the backend declines them or a batch has
  /// another schema.
  std::function<Table(const Table&, StepContext&)> run;

  const Schema& output() const { return steps.back().output; }
};

/// @brief reduceByKey with built-in aggregates: one row per key per batch; with @p before,
/// of what those row operations make of each batch.
TableStream aggregate_by_key(const TableStream& input, KeyedAggregation plan, std::optional<RowOperations> before = std::nullopt);

/// @brief reduceByKeyAndWindow with built-in aggregates over a ring of per-slide panes of
/// partial aggregates. When every aggregate is invertible (count, sum, mean) a slide adds
/// the entering pane and subtracts the leaving one; otherwise (min, max) the panes are
/// recombined. Keys with no record left in the window leave it.
/// With @p before, batches go through those row operations first (see RowOperations).
TableStream aggregate_by_key_and_window(const TableStream& input, KeyedAggregation plan, Duration window, Duration slide,
                                        std::optional<RowOperations> before = std::nullopt);

/// @brief update_state_by_key with built-in aggregates: running aggregates per key since the
/// stream started; a key that receives no record for @p expire_after_batches batches is
/// dropped (0: never). Emits the whole state every batch.
/// With @p before, batches go through those row operations first (see RowOperations).
TableStream aggregate_state_by_key(const TableStream& input, KeyedAggregation plan, size_t expire_after_batches = 0,
                                   std::optional<RowOperations> before = std::nullopt);

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
