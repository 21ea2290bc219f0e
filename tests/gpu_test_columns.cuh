#pragma once
// Host columns for the host tests of the GPU algorithms: the values in plain vectors, and the
// ColumnView the algorithms read (HostExec's memory is host memory).
#include <cmath>
#include <string>
#include <string_view>
#include <vector>

#include "gpu_types.hpp"

namespace sluice::gpu {

struct TestColumn {
  int32_t type = kInt64;
  std::vector<int64_t> i64;
  std::vector<int32_t> i32;
  std::vector<uint8_t> b;
  std::vector<double> f64;
  std::vector<int32_t> offsets{0};
  std::vector<int32_t> ends;  // token spans when not empty
  std::string chars;
  std::vector<uint8_t> validity;  // empty: all valid
  size_t rows = 0;

  bool valid(size_t r) const { return validity.empty() || ((validity[r >> 3] >> (r & 7)) & 1); }
  std::string_view str(size_t r) const {
    const int32_t e = ends.empty() ? offsets[r + 1] : ends[r];
    return std::string_view(chars).substr(static_cast<size_t>(offsets[r]), static_cast<size_t>(e - offsets[r]));
  }
  ColumnView view() const {
    ColumnView v;
    v.type = type;
    v.validity = validity.empty() ? nullptr : validity.data();
    if (type == kInt64) v.values = i64.data();
    if (type == kInt32) v.values = i32.data();
    if (type == kBool) v.values = b.data();
    if (type == kFloat64) v.values = f64.data();
    if (type == kString) {
      v.offsets = offsets.data();
      v.chars = chars.data();
      v.ends = ends.empty() ? nullptr : ends.data();
    }
    return v;
  }
  /// The value at @p r spelled so that equal keys give equal text (as the CPU backend compares).
  std::string key_text(size_t r) const {
    if (!valid(r)) return "null";
    switch (type) {
      case kInt64: return "i" + std::to_string(i64[r]);
      case kInt32: return "i" + std::to_string(i32[r]);
      case kBool: return "i" + std::to_string(b[r]);
      case kFloat64: {
        double d = f64[r];
        if (std::isnan(d)) return "nan";
        if (d == 0) d = 0;
        return "d" + std::to_string(d);
      }
      default: return "s" + std::string(str(r));
    }
  }
};

inline void set_null(TestColumn& c, size_t r) {
  if (c.validity.empty()) c.validity.assign((c.rows + 7) / 8, 0xFF);
  c.validity[r >> 3] &= static_cast<uint8_t>(~(1u << (r & 7)));
}

/// Nulls at the rows of @p c listed in @p rows (a validity bitmap even when there are none).
inline TestColumn with_nulls(TestColumn c, const std::vector<size_t>& rows) {
  c.validity.assign((c.rows + 7) / 8, 0xFF);
  for (size_t r : rows) set_null(c, r);
  return c;
}

inline TestColumn int64_column(std::vector<int64_t> v) {
  TestColumn c;
  c.type = kInt64;
  c.rows = v.size();
  c.i64 = std::move(v);
  return c;
}
inline TestColumn int32_column(std::vector<int32_t> v) {
  TestColumn c;
  c.type = kInt32;
  c.rows = v.size();
  c.i32 = std::move(v);
  return c;
}
inline TestColumn bool_column(std::vector<uint8_t> v) {
  TestColumn c;
  c.type = kBool;
  c.rows = v.size();
  c.b = std::move(v);
  return c;
}
inline TestColumn float64_column(std::vector<double> v) {
  TestColumn c;
  c.type = kFloat64;
  c.rows = v.size();
  c.f64 = std::move(v);
  return c;
}
inline TestColumn string_column(const std::vector<std::string>& v) {
  TestColumn c;
  c.type = kString;
  c.rows = v.size();
  for (const auto& s : v) {
    c.chars += s;
    c.offsets.push_back(static_cast<int32_t>(c.chars.size()));
  }
  return c;
}

}  // namespace sluice::gpu
