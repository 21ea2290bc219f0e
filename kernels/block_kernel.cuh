#pragma once
// Kernels that keep state in a block's shared memory, written once for both execution
// contexts. Such a kernel is a functor run in phases: every thread of a block runs phase 0,
// the block synchronizes, every thread runs phase 1, and so on:
//
//   struct K {
//     static constexpr int kPhases = 2;
//     static constexpr int kThreads = 512;          // a block's threads (the launch bound)
//     static constexpr int kBlocksPerMultiprocessor = 2;  // at least, for the compiler's registers
//     __host__ __device__ void operator()(int phase, const BlockThread& at, unsigned char* shared) const;
//   };
//
// On the GPU (CudaExec::launch_blocks) a phase boundary is __syncthreads(). On the CPU
// (HostExec::launch_blocks) a block's threads run one after another through each phase, a
// legal schedule of the same kernel, so the host tests check the algorithm.
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace sluice::gpu {

/// Where a thread of a block kernel is.
struct BlockThread {
  int64_t block = 0;
  int64_t blocks = 1;
  int32_t thread = 0;
  int32_t threads = 1;
};

/// What a device offers: block kernels size their grids and shared memory by it, and a
/// table that should stay in cache by its L2.
struct DeviceLimits {
  int multiprocessors = 1;
  size_t max_shared_bytes = 48 * 1024;                   ///< dynamic shared memory one block may ask for
  size_t shared_bytes_per_multiprocessor = 96 * 1024;    ///< what a multiprocessor's blocks share
  size_t reserved_shared_bytes_per_block = 0;            ///< what the system keeps of it per block
  size_t l2_cache_bytes = 0;
};

/// Shared memory a block may use so that two blocks fit on a multiprocessor.
inline size_t shared_bytes_for_two_blocks(const DeviceLimits& limits) {
  const size_t half = limits.shared_bytes_per_multiprocessor / 2;
  const size_t usable = half > limits.reserved_shared_bytes_per_block ? half - limits.reserved_shared_bytes_per_block : 0;
  return usable < limits.max_shared_bytes ? usable : limits.max_shared_bytes;
}

// Block-scope atomics on shared memory. On the GPU the CUDA builtins (not libcu++'s
// atomic_ref, whose inline assembly addresses memory generically) let the compiler see the
// shared address space and emit shared-memory atomics. On the host they are the compiler's
// atomics, so a host executor may run a block's threads at once (the tests do).

#ifndef __CUDA_ARCH__
/// Host: replaces *word by @p value for as long as @p better(value, *word), atomically.
template <class T, class Better> inline void replace_while_better(T* word, T value, Better better) {
  T seen = __atomic_load_n(word, __ATOMIC_RELAXED);
  while (better(value, seen) && !__atomic_compare_exchange_n(word, &seen, value, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
  }
}
#endif

/// Compare-and-swap; returns the value found.
__host__ __device__ inline uint64_t block_cas(uint64_t* word, uint64_t expected, uint64_t desired) {
#ifdef __CUDA_ARCH__
  return atomicCAS_block(reinterpret_cast<unsigned long long*>(word), expected, desired);
#else
  __atomic_compare_exchange_n(word, &expected, desired, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
  return expected;
#endif
}

__host__ __device__ inline void block_min(uint32_t* word, uint32_t value) {
#ifdef __CUDA_ARCH__
  atomicMin_block(word, value);
#else
  replace_while_better(word, value, [](uint32_t v, uint32_t seen) { return v < seen; });
#endif
}

__host__ __device__ inline uint32_t block_add(uint32_t* word, uint32_t value) {
#ifdef __CUDA_ARCH__
  return atomicAdd_block(word, value);
#else
  return __atomic_fetch_add(word, value, __ATOMIC_RELAXED);
#endif
}

/// Adds @p value, modulo 2^64, to the integer held in two 32-bit words, @p words[0] its low
/// half and @p words[1] its high half. Shared memory has no 64-bit integer add: for
/// atomicAdd on a 64-bit shared word the compiler emits a load and compare-and-store loop
/// (ATOMS.CAST.SPIN.64 in sm_90's code, as nvdisasm shows), where a 32-bit add is one
/// instruction (ATOMS.ADD). Here the low half's 32-bit add returns what it found, which
/// gives its carry, and the high half takes the value's high half plus that carry: 0, and no
/// second atomic, for most small values of either sign. Once every add is done the two
/// words hold the exact 64-bit sum.
__host__ __device__ inline void block_add_split(uint32_t* words, uint64_t value) {
  const uint32_t low = static_cast<uint32_t>(value);
  uint32_t high = static_cast<uint32_t>(value >> 32);
  if (low != 0) {
    const uint32_t before = block_add(words, low);
    if (static_cast<uint32_t>(before + low) < before) ++high;  // the low half carried out
  }
  if (high != 0) block_add(words + 1, high);
}

__host__ __device__ inline void block_add(double* word, double value) {
#ifdef __CUDA_ARCH__
  atomicAdd_block(word, value);
#else
  uint64_t* bits = reinterpret_cast<uint64_t*>(word);
  uint64_t seen = __atomic_load_n(bits, __ATOMIC_RELAXED);
  for (;;) {
    double sum;
    std::memcpy(&sum, &seen, sizeof sum);
    sum += value;
    uint64_t sum_bits;
    std::memcpy(&sum_bits, &sum, sizeof sum);
    if (__atomic_compare_exchange_n(bits, &seen, sum_bits, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) return;
  }
#endif
}

__host__ __device__ inline void block_min(int64_t* word, int64_t value) {
#ifdef __CUDA_ARCH__
  atomicMin_block(reinterpret_cast<long long*>(word), static_cast<long long>(value));
#else
  replace_while_better(word, value, [](int64_t v, int64_t seen) { return v < seen; });
#endif
}

__host__ __device__ inline void block_max(int64_t* word, int64_t value) {
#ifdef __CUDA_ARCH__
  atomicMax_block(reinterpret_cast<long long*>(word), static_cast<long long>(value));
#else
  replace_while_better(word, value, [](int64_t v, int64_t seen) { return v > seen; });
#endif
}

}  // namespace sluice::gpu
