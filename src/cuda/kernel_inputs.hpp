#pragma once
// Host objects as the kernels take them: a Column as a gpu::ColumnView over its buffers in
// host memory (what the device engine copies from, and what HostExec runs on directly), the
// columns a set of programs reads, and row chain steps as gpu::RowChainSteps. For the CUDA
// backend and the HostExec tests.
#include <span>
#include <vector>

#include "gpu_types.hpp"
#include "sluice/backend.hpp"
#include "sluice/column.hpp"

namespace sluice {

inline gpu::ColumnView host_view(const Column& c) {
  SLUICE_EXPECTS(c.type() != TypeId::List, "device kernels cannot read list columns (keys, aggregate inputs, expressions)");
  gpu::ColumnView v;
  v.type = static_cast<int32_t>(c.type());
  v.validity = c.validity_bitmap();
  if (c.type() == TypeId::String) {
    v.offsets = c.offsets().data();
    v.chars = c.chars().data();
  } else {
    v.values = c.data();
  }
  return v;
}

/// Views (@p view_of: host_view, or where the engine reads a column) of the columns of
/// @p table that @p programs read; the others stay empty, so that nothing of them is copied
/// to the device.
template <class ViewOf = gpu::ColumnView (*)(const Column&)>
std::vector<gpu::ColumnView> columns_read(const Table& table, std::span<const RowProgram* const> programs, ViewOf view_of = host_view) {
  std::vector<gpu::ColumnView> views(table.num_columns());
  for (const RowProgram* p : programs)
    for (size_t field : p->fields) {
      SLUICE_EXPECTS(field < table.num_columns(), "CUDA backend: an expression reads field " + std::to_string(field) +
                                                      " of a batch of " + std::to_string(table.num_columns()) + " fields");
      views[field] = view_of(table.column(field));
    }
  return views;
}

static_assert(gpu::RowChainStep::kFilter == static_cast<int32_t>(RowChainStep::Kind::Filter) &&
                  gpu::RowChainStep::kMap == static_cast<int32_t>(RowChainStep::Kind::Map) &&
                  gpu::RowChainStep::kSplit == static_cast<int32_t>(RowChainStep::Kind::Split),
              "gpu::RowChainStep kinds mirror sluice::RowChainStep::Kind");

/// @p steps as the kernels take them (their programs stay in @p steps).
inline std::vector<gpu::RowChainStep> kernel_steps(std::span<const RowChainStep> steps) {
  std::vector<gpu::RowChainStep> out;
  for (const RowChainStep& step : steps) {
    gpu::RowChainStep d;
    d.kind = static_cast<int32_t>(step.kind);
    for (const RowProgram& p : step.programs) d.programs.push_back(&p);
    d.sources = step.sources;
    d.split_field = static_cast<int32_t>(step.split_field);
    d.separator = step.separator;
    out.push_back(std::move(d));
  }
  return out;
}

}  // namespace sluice
