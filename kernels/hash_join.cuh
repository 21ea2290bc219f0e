#pragma once
// Joins within one batch on the device, written once against an execution context (CudaExec
// on the GPU, HostExec in the host tests), producing the (left row, right row) pairs in
// exactly the order of the CPU backend's join_tables (src/cpu/join.cpp):
//  - left rows in row order; for each, its matching right rows in right row order;
//  - a left row without a match gives (left, -1) in its place (left and full outer joins);
//  - then, for right and full outer joins, every right row whose key occurs nowhere on the
//    left gives (-1, right), in right row order.
// As in Spark's pair RDDs (and the CPU backend), a null key equals a null key; floating point
// keys treat -0.0 as 0.0 and NaN as equal to NaN.
//
// Method: both sides' keys are reduced to 64 bits (the value itself for one non-null integer
// column on both sides, otherwise a hash of every key field); the right side's (key, row)
// pairs are sorted stably, so a key's right rows stay in row order; each left row finds its
// key's range by binary search. Every candidate pair of that range is then checked against
// the actual key values, so a 64-bit hash collision never produces a pair: colliding
// candidates are dropped (and counted) before counts, offsets and outer rows are derived.
// The work per output pair is balanced: one thread per candidate, not per left row.
//
// C++17: nvcc here has no C++20 dialect through CMake; this file includes no engine header.
#include <thrust/binary_search.h>
#include <thrust/copy.h>
#include <thrust/count.h>
#include <thrust/fill.h>
#include <thrust/for_each.h>
#include <thrust/functional.h>
#include <thrust/iterator/counting_iterator.h>
#include <thrust/iterator/transform_iterator.h>
#include <thrust/scan.h>
#include <thrust/transform.h>

#include <cstdint>
#include <vector>

#include "grouped_reduce.cuh"

namespace sluice::gpu {

/// Keeps the bits of @p mask of every 64-bit key (all of them in production; the tests keep
/// a few to force collisions).
struct JoinMaskKeys {
  uint64_t mask;
  __host__ __device__ uint64_t operator()(uint64_t key) const { return key & mask; }
};

struct JoinRangeSize {
  __host__ __device__ int64_t operator()(int64_t hi, int64_t lo) const { return hi - lo; }
};

/// One candidate pair: the left row whose key range holds candidate @p i (a binary search over
/// the candidate offsets), the right row at that place of the sorted right side, and whether
/// the actual keys are equal. A colliding candidate is not kept and leaves its left row's
/// count of matches.
struct JoinExpandCandidate {
  const int64_t* candidate_offset;  // left_rows + 1 exclusive offsets of the left rows' ranges
  int64_t left_rows;
  const int64_t* range_begin;       // per left row: first index of its range in the sorted right side
  const int64_t* sorted_right_row;  // right rows in order of their 64-bit keys (stable)
  const ColumnView* left_keys;
  const ColumnView* right_keys;
  int32_t key_count;
  bool verify;
  int64_t* candidate_left;
  int64_t* candidate_right;
  int32_t* keep;
  int64_t* matches;  // per left row: candidates, less the collisions
  __host__ __device__ void operator()(int64_t i) const {
    // The last left row whose offset is at most i: left rows without candidates share their
    // offset with the next row, so the last of equal offsets is the one that owns i.
    int64_t lo = 0, hi = left_rows;  // upper bound of i in candidate_offset[0, left_rows)
    while (lo < hi) {
      const int64_t mid = lo + (hi - lo) / 2;
      if (candidate_offset[mid] <= i) lo = mid + 1;
      else hi = mid;
    }
    const int64_t l = lo - 1;
    const int64_t r = sorted_right_row[range_begin[l] + (i - candidate_offset[l])];
    candidate_left[i] = l;
    candidate_right[i] = r;
    bool equal = true;
    if (verify) {
      for (int32_t k = 0; k < key_count && equal; ++k) equal = same_value_across(left_keys[k], l, right_keys[k], r);
    }
    keep[i] = equal ? 1 : 0;
    if (!equal) DeviceAtomic<long long>(*reinterpret_cast<long long*>(matches + l)).fetch_add(-1, kRelaxed);
  }
};

/// Output rows of left row @p l: its matches, or one (l, -1) row when it has none and
/// unmatched left rows are kept.
struct JoinOutputRowsOfLeft {
  const int64_t* matches;
  bool keep_unmatched_left;
  __host__ __device__ int64_t operator()(int64_t l) const {
    const int64_t m = matches[l];
    return m > 0 ? m : (keep_unmatched_left ? 1 : 0);
  }
};

/// Writes kept candidate @p i at its place among its left row's output rows (the candidates
/// of a left row are in right row order already), and marks its right row as matched.
struct JoinWriteCandidate {
  const int64_t* candidate_left;
  const int64_t* candidate_right;
  const int32_t* keep;
  const int64_t* candidate_offset;
  const int64_t* kept_before;  // exclusive scan of keep; null when every candidate is kept
  const int64_t* output_offset;
  int64_t* out_left;
  int64_t* out_right;
  unsigned int* right_matched;  // null unless unmatched right rows are kept
  __host__ __device__ void operator()(int64_t i) const {
    if (!keep[i]) return;
    const int64_t l = candidate_left[i];
    const int64_t first = candidate_offset[l];
    const int64_t rank = kept_before ? kept_before[i] - kept_before[first] : i - first;
    const int64_t o = output_offset[l] + rank;
    out_left[o] = l;
    out_right[o] = candidate_right[i];
    if (right_matched) DeviceAtomic<unsigned int>(right_matched[candidate_right[i]]).store(1u, kRelaxed);
  }
};

/// Writes (l, -1) for left row @p l when it has no match.
struct JoinWriteUnmatchedLeft {
  const int64_t* matches;
  const int64_t* output_offset;
  int64_t* out_left;
  int64_t* out_right;
  __host__ __device__ void operator()(int64_t l) const {
    if (matches[l] > 0) return;
    out_left[output_offset[l]] = l;
    out_right[output_offset[l]] = -1;
  }
};

struct JoinRightUnmatched {
  const unsigned int* right_matched;
  __host__ __device__ bool operator()(int64_t r) const { return right_matched[r] == 0; }
};

struct JoinIntCast {
  __host__ __device__ int64_t operator()(int32_t v) const { return v; }
};

/// The 64-bit keys of @p rows rows of @p keys (in @p exec's memory as @p device_keys): the
/// value itself when @p exact, otherwise the hash of every key field; masked by @p mask.
template <class Exec>
void join_keys_of_rows(Exec& exec, const std::vector<ColumnView>& keys, const ColumnView* device_keys, size_t rows,
                       bool exact, uint64_t mask, uint64_t* out) {
  if (rows == 0) return;
  auto policy = exec.policy();
  const int64_t n = static_cast<int64_t>(rows);
  if (exact) thrust::for_each_n(policy, thrust::counting_iterator<int64_t>(0), n, ExactKeyOf{keys[0], out});
  else thrust::for_each_n(policy, thrust::counting_iterator<int64_t>(0), n,
                          HashedKeyOf{device_keys, static_cast<int32_t>(keys.size()), out});
  if (mask != ~uint64_t{0}) thrust::transform(policy, out, out + n, out, JoinMaskKeys{mask});
}

/// A join's pairs where they were found, laid out as JoinPairs' left_rows and right_rows.
template <class Exec> struct DeviceJoinPairs {
  typename Exec::template Array<int64_t> left_at;
  typename Exec::template Array<int64_t> right_at;
};

/// The pairs of the join of @p left_rows rows keyed by @p left_keys with @p right_rows rows
/// keyed by @p right_keys (columns in @p exec's memory; at least one key, pairwise of equal
/// types), copied to the host in the order of the CPU backend's join_tables, and kept in
/// @p keep_pairs when given (for gathering the result's columns where the pairs are).
/// @p hash_mask keeps only some bits of the 64-bit keys: for tests that force collisions;
/// anything but all bits also turns on verification of integer keys.
template <class Exec>
JoinPairs join_on_device(Exec& exec, const std::vector<ColumnView>& left_keys, size_t left_rows,
                         const std::vector<ColumnView>& right_keys, size_t right_rows, JoinKind kind,
                         uint64_t hash_mask = ~uint64_t{0}, DeviceJoinPairs<Exec>* keep_pairs = nullptr) {
  JoinPairs out;
  const bool keep_unmatched_left = kind == JoinKind::LeftOuter || kind == JoinKind::FullOuter;
  const bool keep_unmatched_right = kind == JoinKind::RightOuter || kind == JoinKind::FullOuter;
  const int32_t key_count = static_cast<int32_t>(left_keys.size());
  const int64_t L = static_cast<int64_t>(left_rows);
  const int64_t R = static_cast<int64_t>(right_rows);
  auto policy = exec.policy();

  // Keys of both sides, the right side's sorted stably with its rows.
  const bool exact = hash_mask == ~uint64_t{0} && exact_integer_key(left_keys) && exact_integer_key(right_keys);
  const bool verify = !exact;
  out.exact_keys = exact;
  auto device_left_keys = exec.template alloc<ColumnView>(left_keys.size());
  auto device_right_keys = exec.template alloc<ColumnView>(right_keys.size());
  exec.to_device(device_left_keys.data(), left_keys.data(), left_keys.size() * sizeof(ColumnView));
  exec.to_device(device_right_keys.data(), right_keys.data(), right_keys.size() * sizeof(ColumnView));
  auto left_key = exec.template alloc<uint64_t>(left_rows);
  auto right_key = exec.template alloc<uint64_t>(right_rows);
  auto sorted_right_row = exec.template alloc<int64_t>(right_rows);
  join_keys_of_rows(exec, left_keys, device_left_keys.data(), left_rows, exact, hash_mask, left_key.data());
  join_keys_of_rows(exec, right_keys, device_right_keys.data(), right_rows, exact, hash_mask, right_key.data());
  thrust::copy_n(policy, thrust::counting_iterator<int64_t>(0), R, sorted_right_row.data());
  exec.sort_pairs(right_key.data(), sorted_right_row.data(), right_rows);  // stable: equal keys keep row order

  // Each left row's range of equal 64-bit keys; the ranges' sizes, then their offsets.
  auto range_begin = exec.template alloc<int64_t>(left_rows);
  auto range_end = exec.template alloc<int64_t>(left_rows);
  auto matches = exec.template alloc<int64_t>(left_rows);
  auto candidate_offset = exec.template alloc<int64_t>(left_rows + 1);
  if (L > 0 && R > 0) {
    thrust::lower_bound(policy, right_key.data(), right_key.data() + R, left_key.data(), left_key.data() + L,
                        range_begin.data());
    thrust::upper_bound(policy, right_key.data(), right_key.data() + R, left_key.data(), left_key.data() + L,
                        range_end.data());
    thrust::transform(policy, range_end.data(), range_end.data() + L, range_begin.data(), matches.data(), JoinRangeSize{});
  } else {
    thrust::fill_n(policy, matches.data(), L, int64_t{0});
  }
  thrust::copy_n(policy, matches.data(), L, candidate_offset.data());
  thrust::fill_n(policy, candidate_offset.data() + L, 1, int64_t{0});
  thrust::exclusive_scan(policy, candidate_offset.data(), candidate_offset.data() + L + 1, candidate_offset.data());
  int64_t candidates = 0;
  exec.to_host(&candidates, candidate_offset.data() + L, sizeof candidates);
  out.candidates = static_cast<size_t>(candidates);

  // Every candidate pair, checked against the key values.
  const size_t C = static_cast<size_t>(candidates);
  auto candidate_left = exec.template alloc<int64_t>(C);
  auto candidate_right = exec.template alloc<int64_t>(C);
  auto keep = exec.template alloc<int32_t>(C);
  thrust::for_each_n(policy, thrust::counting_iterator<int64_t>(0), candidates,
                     JoinExpandCandidate{candidate_offset.data(), L, range_begin.data(), sorted_right_row.data(),
                                         device_left_keys.data(), device_right_keys.data(), key_count, verify,
                                         candidate_left.data(), candidate_right.data(), keep.data(), matches.data()});
  int64_t kept = candidates;
  if (verify && candidates > 0)
    kept = thrust::count(policy, keep.data(), keep.data() + candidates, int32_t{1});
  out.key_collisions = static_cast<unsigned long long>(candidates - kept);
  auto kept_before = exec.template alloc<int64_t>(out.key_collisions ? C : 0);
  if (out.key_collisions) {
    auto as_int64 = thrust::make_transform_iterator(keep.data(), JoinIntCast{});
    thrust::exclusive_scan(policy, as_int64, as_int64 + candidates, kept_before.data());
  }

  // Output rows per left row, their offsets, then the rows.
  auto output_offset = exec.template alloc<int64_t>(left_rows + 1);
  auto rows_of_left = thrust::make_transform_iterator(thrust::counting_iterator<int64_t>(0),
                                                      JoinOutputRowsOfLeft{matches.data(), keep_unmatched_left});
  thrust::copy_n(policy, rows_of_left, L, output_offset.data());
  thrust::fill_n(policy, output_offset.data() + L, 1, int64_t{0});
  thrust::exclusive_scan(policy, output_offset.data(), output_offset.data() + L + 1, output_offset.data());
  int64_t rows_with_left = 0;
  exec.to_host(&rows_with_left, output_offset.data() + L, sizeof rows_with_left);
  const size_t T = static_cast<size_t>(rows_with_left);
  // Room for the right rows without a match after the T rows with a left row.
  const size_t capacity = T + (keep_unmatched_right ? right_rows : 0);
  auto out_left = exec.template alloc<int64_t>(capacity);
  auto out_right = exec.template alloc<int64_t>(capacity);
  auto right_matched = exec.template alloc<unsigned int>(keep_unmatched_right ? right_rows : 0);
  if (keep_unmatched_right) thrust::fill_n(policy, right_matched.data(), R, 0u);
  thrust::for_each_n(policy, thrust::counting_iterator<int64_t>(0), candidates,
                     JoinWriteCandidate{candidate_left.data(), candidate_right.data(), keep.data(),
                                        candidate_offset.data(), out.key_collisions ? kept_before.data() : nullptr,
                                        output_offset.data(), out_left.data(), out_right.data(),
                                        keep_unmatched_right ? right_matched.data() : nullptr});
  if (keep_unmatched_left)
    thrust::for_each_n(policy, thrust::counting_iterator<int64_t>(0), L,
                       JoinWriteUnmatchedLeft{matches.data(), output_offset.data(), out_left.data(), out_right.data()});

  // Right rows whose key occurs nowhere on the left, in row order, without a left row.
  size_t right_only = 0;
  if (keep_unmatched_right && R > 0) {
    int64_t* const first = out_right.data() + T;
    const auto end = thrust::copy_if(policy, thrust::counting_iterator<int64_t>(0), thrust::counting_iterator<int64_t>(R), first,
                                     JoinRightUnmatched{right_matched.data()});
    right_only = static_cast<size_t>(end - first);
    thrust::fill_n(policy, out_left.data() + T, right_only, int64_t{-1});
  }

  const size_t n = T + right_only;
  out.rows_with_left = T;
  out.left_rows.resize(n);
  out.right_rows.resize(n);
  exec.to_host(out.left_rows.data(), out_left.data(), n * sizeof(int64_t));
  exec.to_host(out.right_rows.data(), out_right.data(), n * sizeof(int64_t));
  if (keep_pairs) {
    keep_pairs->left_at = std::move(out_left);
    keep_pairs->right_at = std::move(out_right);
  }
  return out;
}

}  // namespace sluice::gpu
