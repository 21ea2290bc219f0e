#pragma once
// transform's sort_by and limit, written once against an execution context (CudaExec on the
// GPU, HostExec in the host tests), in exactly the order of the host's sort_rows
// (src/cpu/sort_rows.cpp): a stable sort by the keys in turn, each ascending or descending;
// ascending puts nulls first (descending last); numbers compare by value, NaN above every
// other number and equal to NaN, -0.0 equal to 0.0; strings by their bytes as unsigned, a
// proper prefix first. The first `limit` rows of that order are kept.
//
// Method: one fixed-width key without nulls is encoded into order-preserving 64-bit words
// and radix sorted with the row indexes (stable); any other key list sorts the row indexes
// with a merge sort whose comparator reads the key columns where they are.
//
// NaN is told apart with x != x: this file must not be built with fast math.
//
// C++17: nvcc here has no C++20 dialect through CMake; this file includes no engine header.
#include <thrust/sequence.h>
#include <thrust/sort.h>
#include <thrust/transform.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "gpu_types.hpp"

namespace sluice::gpu {

/// A sort key: a column (in Exec memory) and its order.
struct SortKeyView {
  ColumnView column;
  int32_t descending = 0;
};

namespace detail {

__host__ __device__ inline bool sort_cell_valid(const ColumnView& c, int64_t r) {
  return c.validity == nullptr || ((c.validity[r >> 3] >> (r & 7)) & 1) != 0;
}

/// -1, 0 or 1; NaN above every other number and equal to NaN.
template <class T> __host__ __device__ int compare_sort_numbers(T x, T y) {
  const bool x_nan = x != x, y_nan = y != y;
  if (x_nan || y_nan) return static_cast<int>(x_nan) - static_cast<int>(y_nan);
  return static_cast<int>(x > y) - static_cast<int>(x < y);
}

template <class T> __host__ __device__ int compare_sort_values(const ColumnView& c, int64_t a, int64_t b) {
  const T* v = static_cast<const T*>(c.values);
  return compare_sort_numbers(v[a], v[b]);
}

__host__ __device__ inline int compare_sort_strings(const ColumnView& c, int64_t a, int64_t b) {
  const int32_t a_first = c.offsets[a], b_first = c.offsets[b];
  const int32_t a_length = (c.ends ? c.ends[a] : c.offsets[a + 1]) - a_first;
  const int32_t b_length = (c.ends ? c.ends[b] : c.offsets[b + 1]) - b_first;
  const int32_t common = a_length < b_length ? a_length : b_length;
  for (int32_t i = 0; i < common; ++i) {
    const auto x = static_cast<unsigned char>(c.chars[a_first + i]);
    const auto y = static_cast<unsigned char>(c.chars[b_first + i]);
    if (x != y) return x < y ? -1 : 1;
  }
  return static_cast<int>(a_length > b_length) - static_cast<int>(a_length < b_length);
}

/// Rows @p a and @p b of one key column, ascending (nulls first).
__host__ __device__ inline int compare_sort_cells(const ColumnView& c, int64_t a, int64_t b) {
  const bool a_valid = sort_cell_valid(c, a), b_valid = sort_cell_valid(c, b);
  if (!a_valid || !b_valid) return static_cast<int>(a_valid) - static_cast<int>(b_valid);
  switch (c.type) {
    case kBool: return compare_sort_values<uint8_t>(c, a, b);
    case kInt32: return compare_sort_values<int32_t>(c, a, b);
    case kInt64: return compare_sort_values<int64_t>(c, a, b);
    case kFloat32: return compare_sort_values<float>(c, a, b);
    case kFloat64: return compare_sort_values<double>(c, a, b);
    case kString: return compare_sort_strings(c, a, b);
    default: return 0;
  }
}

/// Whether row @p a goes before row @p b: the first key that tells them apart decides.
struct SortRowsBefore {
  const SortKeyView* keys;
  int32_t key_count;
  __host__ __device__ bool operator()(int64_t a, int64_t b) const {
    for (int32_t k = 0; k < key_count; ++k) {
      const int c = compare_sort_cells(keys[k].column, a, b);
      if (c != 0) return keys[k].descending ? c > 0 : c < 0;
    }
    return false;
  }
};

__host__ __device__ inline uint64_t sort_bits_of_double(double d) {
  if (d != d) return ~uint64_t{0};  // NaN above everything, every NaN alike
  if (d == 0) d = 0.0;               // -0.0 ties with 0.0
  uint64_t bits = 0;
  memcpy(&bits, &d, sizeof bits);
  return (bits >> 63) != 0 ? ~bits : bits | (uint64_t{1} << 63);
}

/// How many low bits of SortKeyBits' words a key of @p type uses (fewer radix passes).
__host__ __device__ inline int sort_key_bits(int32_t type) { return type == kBool ? 8 : type == kInt32 ? 32 : 64; }

/// Row r's key as a word (in its low sort_key_bits bits) whose unsigned order is the key's
/// order, complemented when descending; equal keys give equal words, so the stable radix
/// sort keeps their rows' order.
struct SortKeyBits {
  SortKeyView key;
  __host__ __device__ uint64_t operator()(int64_t r) const {
    const ColumnView& c = key.column;
    uint64_t bits = 0;
    switch (c.type) {
      case kBool: bits = static_cast<const uint8_t*>(c.values)[r]; break;
      case kInt32: bits = static_cast<uint32_t>(static_cast<const int32_t*>(c.values)[r]) ^ uint32_t{0x80000000u}; break;
      case kInt64: bits = static_cast<uint64_t>(static_cast<const int64_t*>(c.values)[r]) ^ (uint64_t{1} << 63); break;
      case kFloat32: bits = sort_bits_of_double(static_cast<const float*>(c.values)[r]); break;
      case kFloat64: bits = sort_bits_of_double(static_cast<const double*>(c.values)[r]); break;
      default: break;
    }
    const int used = sort_key_bits(c.type);
    const uint64_t mask = used == 64 ? ~uint64_t{0} : (uint64_t{1} << used) - 1;
    return key.descending ? bits ^ mask : bits;
  }
};

}  // namespace detail

/// The order of a sort: row indexes in Exec memory, the first `rows` of which are kept.
template <class Exec> struct SortedRows {
  typename Exec::template Array<int64_t> order;  ///< every input row, sorted
  size_t rows = 0;                                ///< kept: min(input rows, limit)
};

/// The order of @p rows rows by @p keys (views of Exec memory), cut to its first @p limit
/// rows when @p limit >= 0. No key keeps the input order.
/// @throw sluice::Error for a key of a type that is not a column's (a list).
template <class Exec> SortedRows<Exec> sort_rows(Exec& exec, const std::vector<SortKeyView>& keys, size_t rows, int64_t limit) {
  for (const SortKeyView& k : keys)
    if (k.column.type != kBool && k.column.type != kInt32 && k.column.type != kInt64 && k.column.type != kFloat32 &&
        k.column.type != kFloat64 && k.column.type != kString)
      throw Error("sort: a key column of type " + std::to_string(k.column.type) +
                  " has no order (keys are bool, int32, int64, float32, float64 or string)");
  SortedRows<Exec> out;
  out.rows = limit >= 0 && static_cast<uint64_t>(limit) < rows ? static_cast<size_t>(limit) : rows;
  out.order = exec.template alloc<int64_t>(rows);
  int64_t* order = out.order.data();
  const auto n = static_cast<int64_t>(rows);
  thrust::sequence(exec.policy(), order, order + n);
  if (keys.empty() || rows < 2 || out.rows == 0) return out;
  const SortKeyView& first = keys.front();
  if (keys.size() == 1 && first.column.type != kString && first.column.validity == nullptr) {
    auto bits = exec.template alloc<uint64_t>(rows);
    thrust::transform(exec.policy(), order, order + n, bits.data(), detail::SortKeyBits{first});
    exec.sort_pairs(bits.data(), order, rows, detail::sort_key_bits(first.column.type));
    return out;
  }
  auto device_keys = exec.template alloc<SortKeyView>(keys.size());
  exec.to_device(device_keys.data(), keys.data(), keys.size() * sizeof(SortKeyView));
  thrust::stable_sort(exec.policy(), order, order + n, detail::SortRowsBefore{device_keys.data(), static_cast<int32_t>(keys.size())});
  return out;
}

}  // namespace sluice::gpu
