#pragma once
// A host Column as the kernels read it (gpu::ColumnView over its buffers in host memory):
// what the device engine copies from, and what HostExec runs on directly.
#include "gpu_types.hpp"
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

}  // namespace sluice
