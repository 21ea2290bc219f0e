#pragma once
// The algorithm templates' execution context on the CPU: the same __host__ __device__ code,
// run sequentially through Thrust's cpp system. The tests use it to check the GPU
// algorithms (hash table, segments, verification, ordering) on machines without a GPU.
#include <thrust/sort.h>
#include <thrust/system/cpp/execution_policy.h>

#include <cstdint>
#include <cstring>
#include <vector>

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
  void sort_pairs(uint64_t* keys, int64_t* values, size_t n, int key_bits = 64) {
    (void)key_bits;
    thrust::stable_sort_by_key(thrust::cpp::par, keys, keys + n, values);
  }
  void to_host(void* dst, const void* src, size_t bytes) {
    if (bytes) std::memcpy(dst, src, bytes);
  }
  void to_device(void* dst, const void* src, size_t bytes) {
    if (bytes) std::memcpy(dst, src, bytes);
  }
};

}  // namespace sluice::gpu
