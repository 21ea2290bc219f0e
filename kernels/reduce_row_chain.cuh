#pragma once
// A chain of row operations followed by a keyed reduction of its output, in one pass over
// Exec memory: the chain's columns feed the reduction where they are, and only the groups
// (their accumulators, and the key columns at their first rows) leave. This is how a
// pipeline's filter/map/flat_map run ending in reduce_by_key or count_by_value runs on the
// GPU: the word count's words never come back to the host, only the distinct ones.
#include <string>
#include <vector>

#include "gpu_types.hpp"
#include "grouped_reduce.cuh"
#include "row_chain.cuh"

namespace sluice::gpu {

/// The groups of a ChainReduction (gpu_types.hpp), in Exec memory: as DeviceGroups, plus the key columns of
/// each group's first row.
template <class Exec> struct ChainGroups {
  DeviceGroups<Exec> groups;
  std::vector<OwnedColumn<Exec>> keys;  ///< one per key column, `groups.groups` rows each
  size_t null_keys = 0;                 ///< GroupedInput::exact_key: null keys (then no groups)
};

/// The reduction @p reduction of the columns @p chain made from @p inputs (views of Exec
/// memory), as a GroupedInput over them.
/// @throw sluice::Error for a key or fold column out of range.
template <class Exec>
GroupedInput chain_grouped_input(const std::vector<ColumnView>& inputs, const RowChainResult<Exec>& chain,
                                 const ChainReduction& reduction) {
  auto output = [&](int32_t k, const char* what) {
    if (k < 0 || static_cast<size_t>(k) >= chain.input_column.size())
      throw Error("reduce_by_key after row operations: " + std::string(what) + " " + std::to_string(k) +
                  " is not one of the " + std::to_string(chain.input_column.size()) + " columns the operations make");
    const int32_t input = chain.input_column[static_cast<size_t>(k)];
    return input >= 0 ? inputs[static_cast<size_t>(input)] : chain.columns[static_cast<size_t>(k)].view();
  };
  SLUICE_EXPECTS(reduction.fold_columns.size() == reduction.folds.size(),
                 "reduce_by_key after row operations: " + std::to_string(reduction.folds.size()) + " folds but " +
                     std::to_string(reduction.fold_columns.size()) + " fold columns");
  GroupedInput in;
  in.rows = chain.rows;
  in.force_hashed_keys = reduction.force_hashed_keys;
  in.exact_key = reduction.exact_key;
  for (int32_t k : reduction.key_columns) in.keys.push_back(output(k, "key column"));
  in.folds = reduction.folds;
  for (size_t f = 0; f < in.folds.size(); ++f)
    if (reduction.fold_columns[f] >= 0) in.folds[f].input = output(reduction.fold_columns[f], "aggregated column");
  return in;
}

/// The rows @p first_row[0, groups) (Exec memory) of each of @p keys: the groups' keys.
template <class Exec>
std::vector<OwnedColumn<Exec>> gather_keys(Exec& exec, const std::vector<ColumnView>& keys, const int64_t* first_row, size_t groups) {
  std::vector<OwnedColumn<Exec>> out;
  for (const ColumnView& key : keys) out.push_back(gather_column(exec, key, first_row, groups));
  return out;
}

/// Runs @p steps over @p rows rows of @p inputs (views of Exec memory) as run_row_chain
/// does, then reduces the last step's columns by @p reduction as grouped_reduce_in_place
/// does. The key columns are gathered only when no 64-bit key collision was found (a caller
/// then recomputes the batch exactly elsewhere). An exact key with nulls stops after the
/// steps, with null_keys set.
/// @throw sluice::Error as chain_grouped_input and run_row_chain do.
template <class Exec>
ChainGroups<Exec> reduce_row_chain(Exec& exec, const std::vector<ColumnView>& inputs, size_t rows,
                                   const std::vector<RowChainStep>& steps, const ChainReduction& reduction) {
  const RowChainResult<Exec> chain = run_row_chain(exec, inputs, rows, steps);
  GroupedInput in = chain_grouped_input(inputs, chain, reduction);
  ChainGroups<Exec> out;
  if (in.exact_key && (out.null_keys = take_exact_key(exec, in)) > 0) return out;
  out.groups = grouped_reduce_in_place(exec, in);
  if (out.groups.key_collisions == 0) out.keys = gather_keys(exec, in.keys, out.groups.first_row.data(), out.groups.groups);
  return out;
}

}  // namespace sluice::gpu
