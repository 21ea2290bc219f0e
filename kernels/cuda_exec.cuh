#pragma once
// The GPU execution context of the algorithm templates: device memory from a stream-ordered
// pool (no cudaMalloc/cudaFree per batch once the pool has grown), Thrust on one stream with
// its temporaries from the same pool, CUB radix sort, and page-locked staging for copies.
#include <cub/device/device_radix_sort.cuh>
#include <cuda_runtime.h>
#include <thrust/system/cuda/execution_policy.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <tuple>
#include <utility>

#include "block_kernel.cuh"
#include "cuda_check.cuh"

namespace sluice::gpu {

/// Runs a block kernel (block_kernel.cuh): its phases, separated by block barriers.
template <class Kernel> __global__ void __launch_bounds__(Kernel::kThreads, Kernel::kBlocksPerMultiprocessor)
    run_block_phases(Kernel kernel) {
  extern __shared__ __align__(16) unsigned char block_shared[];
  BlockThread at;
  at.block = blockIdx.x;
  at.blocks = gridDim.x;
  at.thread = static_cast<int32_t>(threadIdx.x);
  at.threads = static_cast<int32_t>(blockDim.x);
#pragma unroll
  for (int phase = 0; phase < Kernel::kPhases; ++phase) {
    if (phase > 0) __syncthreads();
    kernel(phase, at, block_shared);
  }
}

/// A memory pool of one device, used with cudaMallocFromPoolAsync. Its release threshold is
/// unlimited: memory freed at the end of a batch stays reserved for the next one.
class DevicePool {
 public:
  explicit DevicePool(int device) : device_(device) {
    cudaMemPoolProps props{};
    props.allocType = cudaMemAllocationTypePinned;
    props.location.type = cudaMemLocationTypeDevice;
    props.location.id = device;
    SLUICE_CUDA_TRY(cudaMemPoolCreate(&pool_, &props));
    uint64_t threshold = ~uint64_t{0};
    SLUICE_CUDA_TRY(cudaMemPoolSetAttribute(pool_, cudaMemPoolAttrReleaseThreshold, &threshold));
  }
  ~DevicePool() { cudaMemPoolDestroy(pool_); }
  DevicePool(const DevicePool&) = delete;
  DevicePool& operator=(const DevicePool&) = delete;

  void* allocate(size_t bytes, cudaStream_t stream) {
    void* p = nullptr;
    if (bytes == 0) return nullptr;
    cudaError_t err = cudaMallocFromPoolAsync(&p, bytes, pool_, stream);
    if (err == cudaErrorMemoryAllocation) {
      // Pools keep what they have freed: return it (this pool's and the device's default
      // pool's) to the device and try once more before giving up.
      (void)cudaGetLastError();
      SLUICE_CUDA_TRY(cudaStreamSynchronize(stream));
      SLUICE_CUDA_TRY(cudaMemPoolTrimTo(pool_, 0));
      cudaMemPool_t default_pool = nullptr;
      if (cudaDeviceGetDefaultMemPool(&default_pool, device_) == cudaSuccess) (void)cudaMemPoolTrimTo(default_pool, 0);
      err = cudaMallocFromPoolAsync(&p, bytes, pool_, stream);
    }
    if (err != cudaSuccess) {
      (void)cudaGetLastError();
      throw DeviceError("device memory: cannot allocate " + std::to_string(bytes >> 20) + " MiB (" + std::to_string(bytes) +
                  " bytes) from the stream-ordered pool holding " + std::to_string(reserved_bytes() >> 20) +
                  " MiB: " + cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ")",
                        err);
    }
    return p;
  }
  /// Stream-ordered free; errors surface at the next checked call on the stream.
  void release(void* p, cudaStream_t stream) noexcept {
    if (p) (void)cudaFreeAsync(p, stream);
  }
  /// Returns what the pool keeps for reuse to the device, now and on every later free (for
  /// an engine that is going away while some of its allocations live on).
  /// Its calls' failures are cleared, not left for a later check to blame on its own call.
  void release_unused(cudaStream_t stream) noexcept {
    uint64_t threshold = 0;
    bool failed = cudaStreamSynchronize(stream) != cudaSuccess;
    failed |= cudaMemPoolSetAttribute(pool_, cudaMemPoolAttrReleaseThreshold, &threshold) != cudaSuccess;
    failed |= cudaMemPoolTrimTo(pool_, 0) != cudaSuccess;
    if (failed) (void)cudaGetLastError();
  }
  /// Bytes the pool holds from the device (in use or kept for reuse); 0 when the pool cannot
  /// say (statistics only: the failure is cleared, not left to a later check).
  uint64_t reserved_bytes() const { return pool_attribute(cudaMemPoolAttrReservedMemCurrent); }
  uint64_t used_bytes() const { return pool_attribute(cudaMemPoolAttrUsedMemCurrent); }

 private:
  uint64_t pool_attribute(cudaMemPoolAttr attribute) const {
    uint64_t v = 0;
    if (cudaMemPoolGetAttribute(pool_, attribute, &v) != cudaSuccess) {
      (void)cudaGetLastError();
      return 0;
    }
    return v;
  }

  int device_;
  cudaMemPool_t pool_ = nullptr;
};

/// An array in pool memory, freed in stream order when it goes out of scope.
template <class T> class DeviceArray {
 public:
  DeviceArray() = default;
  DeviceArray(DevicePool& pool, cudaStream_t stream, size_t n)
      : pool_(&pool), stream_(stream), size_(n), data_(static_cast<T*>(pool.allocate(n * sizeof(T), stream))) {}
  DeviceArray(DeviceArray&& o) noexcept { *this = std::move(o); }
  DeviceArray& operator=(DeviceArray&& o) noexcept {
    std::swap(pool_, o.pool_);
    std::swap(stream_, o.stream_);
    std::swap(size_, o.size_);
    std::swap(data_, o.data_);
    return *this;
  }
  ~DeviceArray() {
    if (pool_) pool_->release(data_, stream_);
  }
  T* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  DevicePool* pool_ = nullptr;
  cudaStream_t stream_ = nullptr;
  size_t size_ = 0;
  T* data_ = nullptr;
};

/// Page-locked host memory that grows to the largest request and is then reused.
class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  ~PinnedBuffer() {
    if (data_) cudaFreeHost(data_);
  }
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;

  /// At least @p bytes of pinned memory (contents not kept when it grows).
  char* reserve(size_t bytes) {
    if (bytes <= capacity_) return data_;
    if (data_) SLUICE_CUDA_TRY(cudaFreeHost(data_));
    data_ = nullptr;
    capacity_ = 0;
    size_t grown = 1 << 20;
    while (grown < bytes) grown <<= 1;
    void* p = nullptr;
    SLUICE_CUDA_TRY(cudaHostAlloc(&p, grown, cudaHostAllocDefault));
    data_ = static_cast<char*>(p);
    capacity_ = grown;
    return data_;
  }
  size_t capacity() const { return capacity_; }
  /// Frees the memory (the next reserve allocates again); no copy may still read it.
  void release() noexcept {
    if (data_) (void)cudaFreeHost(data_);
    data_ = nullptr;
    capacity_ = 0;
  }

 private:
  char* data_ = nullptr;
  size_t capacity_ = 0;
};

/// Thrust's temporary storage from the pool, in the order of the stream.
struct PoolAllocator {
  using value_type = char;
  DevicePool* pool;
  cudaStream_t stream;
  char* allocate(std::ptrdiff_t n) { return static_cast<char*>(pool->allocate(static_cast<size_t>(n), stream)); }
  void deallocate(char* p, size_t) { pool->release(p, stream); }
};

/// Execution on one CUDA stream.
class CudaExec {
 public:
  template <class T> using Array = DeviceArray<T>;
  CudaExec(DevicePool& pool, cudaStream_t stream) : pool_(&pool), stream_(stream) {}

  template <class T> DeviceArray<T> alloc(size_t n) { return DeviceArray<T>(*pool_, stream_, n); }
  auto policy() { return thrust::cuda::par_nosync(PoolAllocator{pool_, stream_}).on(stream_); }
  cudaStream_t stream() const { return stream_; }
  DevicePool& pool() { return *pool_; }

  /// Sorts (key, value) pairs by key with CUB's LSD radix sort (stable), over the low
  /// @p key_bits bits of the keys.
  template <class Key, class Value> void sort_pairs(Key* keys, Value* values, size_t n, int key_bits = 8 * sizeof(Key)) {
    if (n < 2) return;
    auto keys_alt = alloc<Key>(n);
    auto values_alt = alloc<Value>(n);
    cub::DoubleBuffer<Key> k(keys, keys_alt.data());
    cub::DoubleBuffer<Value> v(values, values_alt.data());
    size_t temp_bytes = 0;
    SLUICE_CUDA_TRY(cub::DeviceRadixSort::SortPairs(nullptr, temp_bytes, k, v, static_cast<int64_t>(n), 0, key_bits, stream_));
    auto temp = alloc<char>(temp_bytes);
    SLUICE_CUDA_TRY(cub::DeviceRadixSort::SortPairs(temp.data(), temp_bytes, k, v, static_cast<int64_t>(n), 0, key_bits, stream_));
    if (k.Current() != keys)
      SLUICE_CUDA_TRY(cudaMemcpyAsync(keys, k.Current(), n * sizeof(Key), cudaMemcpyDeviceToDevice, stream_));
    if (v.Current() != values)
      SLUICE_CUDA_TRY(cudaMemcpyAsync(values, v.Current(), n * sizeof(Value), cudaMemcpyDeviceToDevice, stream_));
  }

  /// The current device's multiprocessors, shared memory (a block's opt-in limit, a
  /// multiprocessor's, the per-block reservation) and L2, asked once per device.
  DeviceLimits device_limits() const {
    int device = 0;
    SLUICE_CUDA_TRY(cudaGetDevice(&device));
    static std::mutex mutex;
    static std::map<int, DeviceLimits> known;
    std::lock_guard lock(mutex);
    auto it = known.find(device);
    if (it != known.end()) return it->second;
    int multiprocessors = 0, shared = 0, per_multiprocessor = 0, reserved = 0, l2 = 0;
    SLUICE_CUDA_TRY(cudaDeviceGetAttribute(&multiprocessors, cudaDevAttrMultiProcessorCount, device));
    SLUICE_CUDA_TRY(cudaDeviceGetAttribute(&shared, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
    SLUICE_CUDA_TRY(cudaDeviceGetAttribute(&per_multiprocessor, cudaDevAttrMaxSharedMemoryPerMultiprocessor, device));
    SLUICE_CUDA_TRY(cudaDeviceGetAttribute(&reserved, cudaDevAttrReservedSharedMemoryPerBlock, device));
    SLUICE_CUDA_TRY(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, device));
    DeviceLimits limits;
    limits.multiprocessors = multiprocessors;
    limits.max_shared_bytes = static_cast<size_t>(shared);
    limits.shared_bytes_per_multiprocessor = static_cast<size_t>(per_multiprocessor);
    limits.reserved_shared_bytes_per_block = static_cast<size_t>(reserved);
    limits.l2_cache_bytes = static_cast<size_t>(l2);
    return known.emplace(device, limits).first->second;
  }
  /// How many blocks of @p Kernel (Kernel::kThreads threads, @p shared_bytes of shared
  /// memory each) the whole device runs at once; asked once per device, kernel and size.
  /// @throw DeviceError when not even one fits on a multiprocessor.
  template <class Kernel> int64_t resident_blocks(size_t shared_bytes) {
    const DeviceLimits limits = device_limits();
    int device = 0;
    SLUICE_CUDA_TRY(cudaGetDevice(&device));
    // nvcc gives each translation unit its own copy of a template kernel, each with its own
    // attributes, and the linker keeps one unit's copy of this function: the copy named here
    // is the one raised and asked, and it keys the cache, whose statics are one for the program.
    void (*const copy)(Kernel) = run_block_phases<Kernel>;
    const void* kernel = reinterpret_cast<const void*>(copy);
    static std::mutex mutex;
    static std::map<std::tuple<int, const void*, size_t>, int> known;  // blocks a multiprocessor
    std::lock_guard lock(mutex);
    auto it = known.find({device, kernel, shared_bytes});
    if (it == known.end()) {
      allow_shared_bytes(kernel, limits, shared_bytes);
      int per_multiprocessor = 0;
      SLUICE_CUDA_TRY(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_multiprocessor, copy, Kernel::kThreads, shared_bytes));
      if (per_multiprocessor == 0)
        throw DeviceError("a block kernel of " + std::to_string(Kernel::kThreads) + " threads and " + std::to_string(shared_bytes) +
                              " bytes of shared memory fits on no multiprocessor of this device",
                          cudaErrorInvalidConfiguration);
      it = known.emplace(std::tuple{device, kernel, shared_bytes}, per_multiprocessor).first;
    }
    return static_cast<int64_t>(it->second) * limits.multiprocessors;
  }
  /// Launches @p blocks blocks of @p kernel (Kernel::kThreads threads each) on the stream.
  template <class Kernel> void launch_blocks(const Kernel& kernel, int64_t blocks, size_t shared_bytes) {
    if (blocks <= 0) return;
    void (*const copy)(Kernel) = run_block_phases<Kernel>;  // the copy raised is the copy launched (resident_blocks)
    allow_shared_bytes(reinterpret_cast<const void*>(copy), device_limits(), shared_bytes);
    copy<<<static_cast<unsigned>(blocks), static_cast<unsigned>(Kernel::kThreads), shared_bytes, stream_>>>(kernel);
    SLUICE_CUDA_TRY(cudaGetLastError());
  }

  /// Copies device memory to the host and waits for it (results are small: one row per key).
  void to_host(void* dst, const void* src, size_t bytes) {
    if (bytes == 0) return;
    SLUICE_CUDA_TRY(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream_));
    SLUICE_CUDA_TRY(cudaStreamSynchronize(stream_));
  }
  /// Copies a small host array (kernel parameters) to the device; the source may be reused
  /// as soon as this returns.
  void to_device(void* dst, const void* src, size_t bytes) {
    if (bytes == 0) return;
    SLUICE_CUDA_TRY(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream_));
  }

 private:
  /// Above 48 KiB a kernel's dynamic shared memory must be asked for. The setting is the
  /// kernel's, shared by every caller on the device: it is always raised to the device's
  /// limit, never to one launch's size, which another thread's launch could then exceed.
  /// @p kernel is the very copy of the kernel its caller launches or asks about (a template
  /// kernel has one per translation unit, and this function would otherwise name its own).
  static void allow_shared_bytes(const void* kernel, const DeviceLimits& limits, size_t bytes) {
    if (bytes <= 48 * 1024) return;
    int device = 0;
    SLUICE_CUDA_TRY(cudaGetDevice(&device));
    static std::mutex mutex;
    static std::set<std::pair<int, const void*>> raised;  // kernels on devices, at the device's limit
    std::lock_guard lock(mutex);
    if (raised.count({device, kernel})) return;
    SLUICE_CUDA_TRY(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(limits.max_shared_bytes)));
    raised.insert({device, kernel});
  }

  DevicePool* pool_;
  cudaStream_t stream_;
};

}  // namespace sluice::gpu
