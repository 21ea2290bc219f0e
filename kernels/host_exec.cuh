#pragma once
// The algorithm templates' execution context on the CPU: the same __host__ __device__ code,
// run sequentially through Thrust's cpp system. The tests use it to check the GPU
// algorithms (hash table, segments, verification, ordering) on machines without a GPU.
#include <thrust/sort.h>
#include <thrust/system/cpp/execution_policy.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "block_kernel.cuh"

namespace sluice::gpu {

template <class T> class HostArray {
 public:
  HostArray() = default;
  explicit HostArray(size_t n) : values_(n) {}
  T* data() const { return const_cast<T*>(values_.data()); }
  size_t size() const { return values_.size(); }

 private:
  std::vector<T> values_;
};

class HostExec {
 public:
  template <class T> using Array = HostArray<T>;
  template <class T> HostArray<T> alloc(size_t n) { return HostArray<T>(n); }
  auto policy() { return thrust::cpp::par; }
  /// Stable sort by the low @p key_bits bits only, as CUB's radix sort over those bits: a
  /// caller that narrows keys wrongly sees its groups split here too.
  template <class Key, class Value> void sort_pairs(Key* keys, Value* values, size_t n, int key_bits = 8 * sizeof(Key)) {
    const uint64_t mask = key_bits >= 64 ? ~uint64_t{0} : (uint64_t{1} << key_bits) - 1;
    std::vector<size_t> order(n);
    for (size_t i = 0; i < n; ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return (keys[a] & mask) < (keys[b] & mask); });
    std::vector<Key> sorted_keys(n);
    std::vector<Value> sorted_values(n);
    for (size_t i = 0; i < n; ++i) {
      sorted_keys[i] = keys[order[i]];
      sorted_values[i] = values[order[i]];
    }
    std::copy(sorted_keys.begin(), sorted_keys.end(), keys);
    std::copy(sorted_values.begin(), sorted_values.end(), values);
  }
  /// What block kernels see of this "device"; tests shrink it to reach the paths a small
  /// shared memory takes.
  DeviceLimits limits{3, 96 * 1024, 192 * 1024, 0, 50 << 20};
  DeviceLimits device_limits() const { return limits; }
  template <class Kernel> int64_t resident_blocks(size_t) { return limits.multiprocessors; }
  /// Runs @p kernel's blocks one after another, each block's threads one after another
  /// through each phase. Shared memory starts as garbage, as on a GPU.
  template <class Kernel> void launch_blocks(const Kernel& kernel, int64_t blocks, size_t shared_bytes) {
    const int32_t threads = Kernel::kThreads;
    // Bytes (operator new aligns them for any word), which a kernel may use as words of
    // any width.
    std::vector<unsigned char> shared(shared_bytes + 16);
    for (int64_t b = 0; b < blocks; ++b) {
      std::memset(shared.data(), 0xA5, shared.size());
      for (int phase = 0; phase < Kernel::kPhases; ++phase) {
        for (int32_t t = 0; t < threads; ++t) {
          BlockThread at;
          at.block = b;
          at.blocks = blocks;
          at.thread = t;
          at.threads = threads;
          kernel(phase, at, shared.data());
        }
      }
    }
  }
  void to_host(void* dst, const void* src, size_t bytes) {
    if (bytes) std::memcpy(dst, src, bytes);
  }
  void to_device(void* dst, const void* src, size_t bytes) {
    if (bytes) std::memcpy(dst, src, bytes);
  }
};

}  // namespace sluice::gpu
