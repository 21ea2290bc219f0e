#pragma once
// A chain of row operations cut down to the output columns its consumer reads (a keyed
// aggregation reads its keys and aggregated fields): the batch's other columns are neither
// copied to the device nor gathered there by filters and splits, and map outputs nobody reads
// are not computed.
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "gpu_types.hpp"
#include "sluice/error.hpp"
#include "sluice/row_program.hpp"

namespace sluice {

struct PrunedRowChain {
  PrunedRowChain() = default;
  PrunedRowChain(PrunedRowChain&&) = default;
  PrunedRowChain& operator=(PrunedRowChain&&) = default;
  // A copy's steps would point into the original's programs.
  PrunedRowChain(const PrunedRowChain&) = delete;
  PrunedRowChain& operator=(const PrunedRowChain&) = delete;

  /// The batch's columns the pruned chain reads, ascending: its input k is column inputs[k].
  std::vector<size_t> inputs;
  std::vector<gpu::RowChainStep> steps;  ///< over those inputs; their programs live in `programs`
  std::deque<RowProgram> programs;
  /// Per output column of the original chain: its index among the pruned chain's outputs
  /// (needed ones, and those a filter or split carries along), or -1 when it is dropped.
  std::vector<int32_t> output_of;
};

/// @p steps (over batches of @p input_columns columns) cut down to the last step's output
/// columns marked in @p needed. The pruned chain gives those columns exactly as the original
/// does (rows included); columns only its steps read come along too.
/// @throw sluice::Error for a step that names a column out of range.
inline PrunedRowChain prune_row_chain(size_t input_columns, const std::vector<gpu::RowChainStep>& steps,
                                      const std::vector<bool>& needed) {
  const size_t n = steps.size();
  // Column counts before each step, and after the last.
  std::vector<size_t> width(n + 1, input_columns);
  for (size_t s = 0; s < n; ++s)
    width[s + 1] = steps[s].kind == gpu::RowChainStep::kMap ? steps[s].sources.size() : width[s];
  SLUICE_EXPECTS(needed.size() == width[n], "row operations: " + std::to_string(needed.size()) + " output flags for " +
                                                std::to_string(width[n]) + " output columns");
  auto check = [&](size_t s, int64_t column) {
    if (column < 0 || static_cast<size_t>(column) >= width[s])
      throw Error("row operations: step " + std::to_string(s) + " names column " + std::to_string(column) + " of " +
                  std::to_string(width[s]));
    return static_cast<size_t>(column);
  };
  auto program = [&](size_t s, int64_t source) -> const RowProgram* {
    const gpu::RowChainStep& step = steps[s];
    const int64_t index = -source - 1;  // int64: no overflow for INT32_MIN
    if (index < 0 || static_cast<size_t>(index) >= step.programs.size() || !step.programs[static_cast<size_t>(index)])
      throw Error("row operations: step " + std::to_string(s) + " names program " + std::to_string(index) + " of " +
                  std::to_string(step.programs.size()));
    return step.programs[static_cast<size_t>(index)];
  };
  auto read_fields = [&](size_t s, const RowProgram* p, std::vector<bool>& into) {
    SLUICE_EXPECTS(p != nullptr, "row operations: step " + std::to_string(s) + " has no program");
    for (size_t f : p->fields) into[check(s, static_cast<int64_t>(f))] = true;
  };

  // Backwards: the columns each step's input must hold.
  std::vector<std::vector<bool>> need(n + 1);
  need[n] = needed;
  for (size_t s = n; s-- > 0;) {
    const gpu::RowChainStep& step = steps[s];
    std::vector<bool> in(width[s], false);
    if (step.kind == gpu::RowChainStep::kMap) {
      for (size_t k = 0; k < step.sources.size(); ++k) {
        if (!need[s + 1][k]) continue;
        const int32_t source = step.sources[k];
        if (source >= 0) in[check(s, source)] = true;
        else read_fields(s, program(s, source), in);
      }
    } else {
      in = need[s + 1];  // a filter or split keeps the columns (and the split field is needed)
      for (const RowProgram* p : step.programs) read_fields(s, p, in);
      if (step.kind == gpu::RowChainStep::kSplit) in[check(s, step.split_field)] = true;
    }
    need[s] = std::move(in);
  }

  // Forwards: the kept columns of each step, renumbered.
  PrunedRowChain out;
  std::vector<int32_t> position(width[0], -1);  // original column of the current step's input -> pruned
  for (size_t c = 0; c < width[0]; ++c)
    if (need[0][c]) {
      position[c] = static_cast<int32_t>(out.inputs.size());
      out.inputs.push_back(c);
    }
  auto renumbered = [&](const RowProgram* p) {
    RowProgram copy = *p;
    for (size_t& f : copy.fields) f = static_cast<size_t>(position[f]);
    out.programs.push_back(std::move(copy));
    return &out.programs.back();
  };
  for (size_t s = 0; s < n; ++s) {
    const gpu::RowChainStep& step = steps[s];
    gpu::RowChainStep pruned;
    pruned.kind = step.kind;
    pruned.separator = step.separator;
    if (step.kind != gpu::RowChainStep::kMap) {
      for (const RowProgram* p : step.programs) pruned.programs.push_back(renumbered(p));
      if (step.kind == gpu::RowChainStep::kSplit) pruned.split_field = position[static_cast<size_t>(step.split_field)];
      out.steps.push_back(std::move(pruned));
      continue;  // the same columns come out
    }
    std::vector<int32_t> next(width[s + 1], -1);
    std::vector<int32_t> pruned_program(step.programs.size(), 0);  // a program used twice runs once
    for (size_t k = 0; k < step.sources.size(); ++k) {
      if (!need[s + 1][k]) continue;
      const int32_t source = step.sources[k];
      next[k] = static_cast<int32_t>(pruned.sources.size());
      if (source >= 0) {
        pruned.sources.push_back(position[static_cast<size_t>(source)]);
        continue;
      }
      int32_t& at = pruned_program[static_cast<size_t>(-static_cast<int64_t>(source) - 1)];
      if (at == 0) {
        pruned.programs.push_back(renumbered(program(s, source)));
        at = -static_cast<int32_t>(pruned.programs.size());
      }
      pruned.sources.push_back(at);
    }
    out.steps.push_back(std::move(pruned));
    position = std::move(next);
  }
  out.output_of = position;
  return out;
}

}  // namespace sluice
