#pragma once
// Kernels that keep state in a block's shared memory, written once for both execution
// contexts. Such a kernel is a functor run in phases: every thread of a block runs phase 0,
// the block synchronizes, every thread runs phase 1, and so on:
//
//   struct K {
//     static constexpr int kPhases = 2;
//     __host__ __device__ void operator()(int phase, const BlockThread& at, unsigned char* shared) const;
//   };
//
// On the GPU (CudaExec::launch_blocks) a phase boundary is __syncthreads(). On the CPU
// (HostExec::launch_blocks) a block's threads run one after another through each phase, a
// legal schedule of the same kernel, so the host tests check the algorithm; the block-scope
// atomics below are then plain read-modify-writes.
#include <cstddef>
#include <cstdint>

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
  size_t max_shared_bytes = 48 * 1024;  ///< dynamic shared memory one block may ask for
  size_t l2_cache_bytes = 0;
};

// Block-scope atomics on shared memory. The CUDA builtins (not libcu++'s atomic_ref, whose
// inline assembly addresses memory generically) let the compiler see the shared address
// space and emit shared-memory atomics.

/// Compare-and-swap; returns the value found.
__host__ __device__ inline uint64_t block_cas(uint64_t* word, uint64_t expected, uint64_t desired) {
#ifdef __CUDA_ARCH__
  return atomicCAS_block(reinterpret_cast<unsigned long long*>(word), expected, desired);
#else
  const uint64_t seen = *word;
  if (seen == expected) *word = desired;
  return seen;
#endif
}

__host__ __device__ inline void block_min(uint32_t* word, uint32_t value) {
#ifdef __CUDA_ARCH__
  atomicMin_block(word, value);
#else
  if (value < *word) *word = value;
#endif
}

__host__ __device__ inline void block_add(uint64_t* word, uint64_t value) {
#ifdef __CUDA_ARCH__
  atomicAdd_block(reinterpret_cast<unsigned long long*>(word), static_cast<unsigned long long>(value));
#else
  *word += value;
#endif
}

__host__ __device__ inline void block_add(double* word, double value) {
#ifdef __CUDA_ARCH__
  atomicAdd_block(word, value);
#else
  *word += value;
#endif
}

__host__ __device__ inline void block_min(int64_t* word, int64_t value) {
#ifdef __CUDA_ARCH__
  atomicMin_block(reinterpret_cast<long long*>(word), static_cast<long long>(value));
#else
  if (value < *word) *word = value;
#endif
}

__host__ __device__ inline void block_max(int64_t* word, int64_t value) {
#ifdef __CUDA_ARCH__
  atomicMax_block(reinterpret_cast<long long*>(word), static_cast<long long>(value));
#else
  if (value > *word) *word = value;
#endif
}

}  // namespace sluice::gpu
