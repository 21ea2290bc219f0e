#pragma once
// How the CUDA backend states a keyed aggregation for the device engine: the folds (one per
// state field of the partial table, plus hidden "seen" counts for min and max) and the
// partial table made from a reduction's accumulators, and row operations cut down to what
// such a reduction reads. Shared by the CUDA backend and the tests that run the same
// reductions through HostExec.
#include <cstring>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "aggregate_plan.hpp"
#include "cuda/kernel_inputs.hpp"
#include "cuda/prune_row_chain.hpp"
#include "gpu_types.hpp"
#include "sluice/backend.hpp"
#include "sluice/column.hpp"

namespace sluice {

/// A column as the executor reads it (host_view, or a device copy where one is resident).
using ViewOf = std::function<gpu::ColumnView(const Column&)>;

inline bool is_float(TypeId t) { return t == TypeId::Float32 || t == TypeId::Float64; }

/// A fold of @p input (none for CountRows) as the executor reads it.
inline gpu::FoldView make_fold(gpu::FoldOp op, bool float_acc, const Column* input, const ViewOf& view_of) {
  gpu::FoldView f;
  f.op = op;
  f.float_acc = float_acc ? 1 : 0;
  if (input) f.input = view_of(*input);
  return f;
}

/// One state field of a partial table: the fold that computes it, and for min and max the
/// fold that counts its non-null inputs (no value seen: null).
struct StateField {
  size_t fold = 0;
  int seen_fold = -1;
  TypeId type = TypeId::Int64;
};

/// The device folds of one aggregation, in the order of the partial table's state fields
/// (hidden "seen" counts for min and max come last).
struct FoldPlan {
  std::vector<gpu::FoldView> folds;
  std::vector<int32_t> fold_columns;  ///< input folds: the input column of each fold (-1: none)
  std::vector<StateField> states;
  size_t records_fold = 0;
};

/// Folds that aggregate an input table (its columns as @p view_of gives them): a fold per
/// state field of the partial schema.
inline FoldPlan input_folds(const KeyedAggregation& plan, const ResolvedPlan& resolved, const Table& input, const ViewOf& view_of) {
  FoldPlan fp;
  std::vector<std::pair<size_t, int>> seen;  // state index, input column
  auto fold = [&](gpu::FoldOp op, bool float_acc, int c) {
    fp.folds.push_back(make_fold(op, float_acc, c >= 0 ? &input.column(static_cast<size_t>(c)) : nullptr, view_of));
    fp.fold_columns.push_back(c);
  };
  auto add = [&](gpu::FoldOp op, bool float_acc, int c, TypeId state_type) {
    fp.states.push_back(StateField{fp.folds.size(), -1, state_type});
    fold(op, float_acc, c);
  };
  for (size_t a = 0; a < plan.aggregates.size(); ++a) {
    const int c = resolved.inputs[a];
    const TypeId type = c >= 0 ? input.column(static_cast<size_t>(c)).type() : TypeId::Int64;
    switch (plan.aggregates[a].kind) {
      case AggregateKind::Count:
        add(c >= 0 ? gpu::kFoldCountValid : gpu::kFoldCountRows, false, c, TypeId::Int64);
        break;
      case AggregateKind::Sum: add(gpu::kFoldSum, is_float(type), c, sum_type(type)); break;
      case AggregateKind::Min:
      case AggregateKind::Max:
        add(plan.aggregates[a].kind == AggregateKind::Min ? gpu::kFoldMin : gpu::kFoldMax, is_float(type), c, type);
        seen.emplace_back(fp.states.size() - 1, c);
        break;
      case AggregateKind::Mean:
        add(gpu::kFoldSum, true, c, TypeId::Float64);
        add(gpu::kFoldCountValid, false, c, TypeId::Int64);
        break;
    }
  }
  fp.records_fold = fp.folds.size();
  add(gpu::kFoldCountRows, false, -1, TypeId::Int64);
  for (const auto& [state, c] : seen) {
    fp.states[state].seen_fold = static_cast<int>(fp.folds.size());
    fold(gpu::kFoldCountValid, false, c);
  }
  return fp;
}

/// Folds that combine partial tables shaped like @p partials (concatenated): sums and counts
/// add up with signs, min and max fold again (their nulls are "no value yet").
inline FoldPlan partial_folds(const Table& partials, const KeyedAggregation& plan, const PartialLayout& layout,
                              const ViewOf& view_of) {
  std::vector<gpu::FoldOp> op_of_column(partials.num_columns(), gpu::kFoldSum);
  for (size_t a = 0; a < plan.aggregates.size(); ++a) {
    if (plan.aggregates[a].kind == AggregateKind::Min) op_of_column[layout.first_state_column[a]] = gpu::kFoldMin;
    if (plan.aggregates[a].kind == AggregateKind::Max) op_of_column[layout.first_state_column[a]] = gpu::kFoldMax;
  }
  FoldPlan fp;
  std::vector<std::pair<size_t, const Column*>> seen;
  for (size_t c = layout.key_count; c < partials.num_columns(); ++c) {
    const Column& column = partials.column(c);
    const gpu::FoldOp op = op_of_column[c];
    const bool is_min = op == gpu::kFoldMin, is_max = op == gpu::kFoldMax;
    if (c == layout.records_column) fp.records_fold = fp.folds.size();
    fp.states.push_back(StateField{fp.folds.size(), -1, column.type()});
    fp.folds.push_back(make_fold(op, is_float(column.type()), &column, view_of));
    if (is_min || is_max) seen.emplace_back(fp.states.size() - 1, &column);
  }
  for (const auto& [state, column] : seen) {
    fp.states[state].seen_fold = static_cast<int>(fp.folds.size());
    fp.folds.push_back(make_fold(gpu::kFoldCountValid, false, column, view_of));
  }
  return fp;
}

/// The column of state @p s for the groups @p rows of fold-major @p acc (@p groups per fold).
inline Column state_column(const StateField& s, const std::vector<gpu::FoldView>& folds, const uint64_t* acc, size_t groups,
                    std::span<const size_t> rows) {
  const uint64_t* values = acc + s.fold * groups;
  const bool float_acc = folds[s.fold].float_acc != 0;
  auto as_double = [](uint64_t bits) {
    double d;
    std::memcpy(&d, &bits, sizeof d);
    return d;
  };
  Column out(s.type, s.seen_fold >= 0);
  out.reserve(rows.size());
  for (size_t r : rows) {
    if (s.seen_fold >= 0 && acc[static_cast<size_t>(s.seen_fold) * groups + r] == 0) {
      out.append_null();
      continue;
    }
    const uint64_t v = values[r];
    switch (s.type) {
      case TypeId::Bool: out.append<uint8_t>(static_cast<uint8_t>(static_cast<int64_t>(v))); break;
      case TypeId::Int32: out.append<int32_t>(static_cast<int32_t>(static_cast<int64_t>(v))); break;
      case TypeId::Int64: out.append<int64_t>(float_acc ? static_cast<int64_t>(as_double(v)) : static_cast<int64_t>(v)); break;
      case TypeId::Float32: out.append<float>(static_cast<float>(float_acc ? as_double(v) : static_cast<double>(static_cast<int64_t>(v)))); break;
      case TypeId::Float64: out.append<double>(float_acc ? as_double(v) : static_cast<double>(static_cast<int64_t>(v))); break;
      default: throw Error("CUDA backend: internal: state of type " + std::string(type_name(s.type)));
    }
  }
  return out;
}

/// A partial table from key columns and the groups @p rows of a reduction's accumulators.
inline Table partial_table(Schema schema, std::vector<Column> keys, const FoldPlan& fp, const uint64_t* acc, size_t groups,
                    std::span<const size_t> rows) {
  std::vector<Column> columns = std::move(keys);
  for (const StateField& s : fp.states) columns.push_back(state_column(s, fp.folds, acc, groups, rows));
  return Table(std::move(schema), std::move(columns));
}

inline std::vector<size_t> all_rows(size_t n) {
  std::vector<size_t> rows(n);
  for (size_t i = 0; i < n; ++i) rows[i] = i;
  return rows;
}

/// The reduction of @p fp (input folds of a plan resolved as @p resolved) over the columns
/// that row operations make, for reduce_row_chain.
inline gpu::ChainReduction chain_reduction(const ResolvedPlan& resolved, const FoldPlan& fp) {
  gpu::ChainReduction reduction;
  for (size_t k : resolved.keys) reduction.key_columns.push_back(static_cast<int32_t>(k));
  reduction.folds = fp.folds;
  reduction.fold_columns = fp.fold_columns;
  return reduction;
}

/// Row operations over a batch cut down to what a reduction of their output reads, as the
/// engine takes them: the views of the batch's columns they read (nothing else is copied to
/// the device or gathered there), the steps, and the reduction renumbered for them.
struct ChainForReduction {
  PrunedRowChain chain;  // owns the steps' programs
  std::vector<gpu::ColumnView> columns;
  gpu::ChainReduction reduction;
};

/// nullopt when a column the steps read is a list (the host runs the steps then).
inline std::optional<ChainForReduction> chain_for_reduction(const Table& batch, std::span<const RowChainStep> steps,
                                                     gpu::ChainReduction reduction, const ViewOf& view_of) {
  const std::vector<gpu::RowChainStep> all_steps = kernel_steps(steps);
  std::vector<bool> needed(steps.back().output.size(), false);
  for (int32_t k : reduction.key_columns) needed.at(static_cast<size_t>(k)) = true;
  for (int32_t c : reduction.fold_columns)
    if (c >= 0) needed.at(static_cast<size_t>(c)) = true;
  ChainForReduction out{prune_row_chain(batch.num_columns(), all_steps, needed), {}, std::move(reduction)};
  for (size_t c : out.chain.inputs) {
    if (batch.column(c).type() == TypeId::List) return std::nullopt;
    out.columns.push_back(view_of(batch.column(c)));
  }
  for (int32_t& k : out.reduction.key_columns) k = out.chain.output_of[static_cast<size_t>(k)];
  for (int32_t& c : out.reduction.fold_columns)
    if (c >= 0) c = out.chain.output_of[static_cast<size_t>(c)];
  return out;
}

}  // namespace sluice
