#pragma once
// A host column's buffers copied out, as a backend's replica holds them: for the test
// replicas that stand in for device memory (ColumnReplica::copy_to_host).
#include "sluice/column.hpp"

namespace sluice {

inline ColumnBuffers buffers_of(const Column& c) {
  ColumnBuffers b;
  if (c.type() == TypeId::String) {
    b.offsets.assign(c.offsets().begin(), c.offsets().end());
    b.chars.assign(c.chars().begin(), c.chars().end());
  } else {
    b.data.assign(c.data(), c.data() + c.size() * fixed_width(c.type()));
  }
  if (c.nullable()) b.validity.assign(c.validity_bitmap(), c.validity_bitmap() + (c.size() + 7) / 8);
  return b;
}

}  // namespace sluice
