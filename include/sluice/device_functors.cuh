#pragma once
/// @file device_functors.cuh
/// @brief map, filter and reduce_by_key of sluice::device_fn functors inside kernels. Included
/// by dstream.hpp when nvcc compiles it; a batch runs here when its context runs on the
/// CUDA backend. Records are integers, floating point or bool (one fixed-width column);
/// reduce_by_key takes pairs of them. Memory comes from the device's stream-ordered pool on
/// the calling thread's stream; every CUDA call is checked.
#include <cuda_runtime.h>
#include <thrust/copy.h>
#include <thrust/gather.h>
#include <thrust/iterator/discard_iterator.h>
#include <thrust/sequence.h>
#include <thrust/iterator/counting_iterator.h>
#include <thrust/iterator/permutation_iterator.h>
#include <thrust/iterator/transform_iterator.h>
#include <thrust/reduce.h>
#include <thrust/sort.h>
#include <thrust/system/cuda/execution_policy.h>
#include <thrust/transform.h>

#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "sluice/codec.hpp"
#include "sluice/column.hpp"

namespace sluice::device {

/// Types whose records are one fixed-width column (no nulls).
template <class T> constexpr bool is_device_record = std::is_arithmetic_v<T>;

/// The column storage type of record type T (bool is one byte).
template <class T> struct storage_of_record { using type = typename Codec<T>::storage; };
template <> struct storage_of_record<bool> { using type = uint8_t; };
template <class T> using storage_t = typename storage_of_record<T>::type;

inline void check(cudaError_t status, const char* op, const char* call) {
  if (status != cudaSuccess)
    throw Error(std::string(op) + " on the device: " + call + " failed: " + cudaGetErrorName(status) + " (" +
                cudaGetErrorString(status) + ")");
}

/// A device array from the stream-ordered pool, freed in stream order.
template <class T> class Buffer {
 public:
  Buffer(size_t n, cudaStream_t stream, const char* op) : stream_(stream), size_(n) {
    if (n) check(cudaMallocAsync(reinterpret_cast<void**>(&data_), n * sizeof(T), stream), op, "cudaMallocAsync");
  }
  Buffer(Buffer&& o) noexcept : stream_(o.stream_), size_(o.size_), data_(o.data_) { o.data_ = nullptr; }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  Buffer& operator=(Buffer&&) = delete;
  ~Buffer() {
    if (data_) (void)cudaFreeAsync(data_, stream_);
  }
  T* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  cudaStream_t stream_;
  size_t size_;
  T* data_ = nullptr;
};

/// Thrust's temporaries from the same pool.
struct StreamAllocator {
  using value_type = char;
  cudaStream_t stream;
  char* allocate(std::ptrdiff_t n) {
    void* p = nullptr;
    check(cudaMallocAsync(&p, static_cast<size_t>(n), stream), "thrust", "cudaMallocAsync");
    return static_cast<char*>(p);
  }
  void deallocate(char* p, size_t) { (void)cudaFreeAsync(p, stream); }
};

/// The calling thread's stream; the device pool keeps freed memory for the next batch.
inline cudaStream_t stream_for(const char* op) {
  static const bool pool_ready = [op] {
    int device = 0;
    check(cudaGetDevice(&device), op, "cudaGetDevice");
    cudaMemPool_t pool = nullptr;
    check(cudaDeviceGetDefaultMemPool(&pool, device), op, "cudaDeviceGetDefaultMemPool");
    uint64_t keep = ~uint64_t{0};
    check(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep), op, "cudaMemPoolSetAttribute");
    return true;
  }();
  (void)pool_ready;
  return cudaStreamPerThread;
}

template <class S> Buffer<S> upload(const Column& c, cudaStream_t stream, const char* op) {
  Buffer<S> out(c.size(), stream, op);
  if (c.size()) check(cudaMemcpyAsync(out.data(), c.data(), c.size() * sizeof(S), cudaMemcpyHostToDevice, stream), op, "cudaMemcpyAsync");
  return out;
}

template <class S> Column download(const S* values, size_t rows, cudaStream_t stream, const char* op) {
  std::vector<std::byte> bytes(rows * sizeof(S));
  if (rows) check(cudaMemcpyAsync(bytes.data(), values, bytes.size(), cudaMemcpyDeviceToHost, stream), op, "cudaMemcpyAsync");
  check(cudaStreamSynchronize(stream), op, "cudaStreamSynchronize");
  return Column::from_buffers(type_of_storage<S>(), rows, false, std::move(bytes), {}, {}, {});
}

template <class T, class U, class F> struct MapRecord {
  F f;
  __host__ __device__ storage_t<U> operator()(storage_t<T> x) const { return static_cast<storage_t<U>>(f(static_cast<T>(x))); }
};

template <class T, class F> struct KeepRecord {
  F f;
  __host__ __device__ bool operator()(storage_t<T> x) const { return static_cast<bool>(f(static_cast<T>(x))); }
};

template <class V, class F> struct ReduceValues {
  F f;
  __host__ __device__ storage_t<V> operator()(storage_t<V> a, storage_t<V> b) const {
    return static_cast<storage_t<V>>(f(static_cast<V>(a), static_cast<V>(b)));
  }
};

struct MinIndex {
  __host__ __device__ int64_t operator()(int64_t a, int64_t b) const { return a < b ? a : b; }
};

/// map: one thread per record.
template <class U, class T, class F> Table map_table(const Table& in, const F& f) {
  constexpr const char* op = "map";
  const cudaStream_t stream = stream_for(op);
  const size_t rows = in.num_rows();
  const Buffer<storage_t<T>> x = upload<storage_t<T>>(in.column(0), stream, op);
  Buffer<storage_t<U>> y(rows, stream, op);
  if (rows) thrust::transform(thrust::cuda::par_nosync(StreamAllocator{stream}).on(stream), x.data(), x.data() + rows, y.data(), MapRecord<T, U, F>{f});
  std::vector<Column> columns;
  columns.push_back(download(y.data(), rows, stream, op));
  return Table(schema_of<U>(), std::move(columns));
}

/// filter: the predicate and the compaction in one pass (copy_if).
template <class T, class F> Table filter_table(const Table& in, const F& f) {
  constexpr const char* op = "filter";
  const cudaStream_t stream = stream_for(op);
  const size_t rows = in.num_rows();
  const Buffer<storage_t<T>> x = upload<storage_t<T>>(in.column(0), stream, op);
  Buffer<storage_t<T>> kept(rows, stream, op);
  size_t n = 0;
  if (rows) {
    auto end = thrust::copy_if(thrust::cuda::par_nosync(StreamAllocator{stream}).on(stream), x.data(), x.data() + rows, kept.data(),
                               KeepRecord<T, F>{f});
    n = static_cast<size_t>(end - kept.data());
  }
  std::vector<Column> columns;
  columns.push_back(download(kept.data(), n, stream, op));
  return Table(in.schema(), std::move(columns));
}

/// reduce_by_key: a stable sort of (key, row), one segmented reduce with the functor, and
/// keys in order of first appearance, as on the host.
template <class K, class V, class F> Table reduce_by_key_table(const Table& in, const F& f) {
  constexpr const char* op = "reduce_by_key";
  using KS = storage_t<K>;
  using VS = storage_t<V>;
  const cudaStream_t stream = stream_for(op);
  auto policy = thrust::cuda::par_nosync(StreamAllocator{stream}).on(stream);
  const size_t rows = in.num_rows();
  Buffer<KS> keys = upload<KS>(in.column(0), stream, op);
  const Buffer<VS> values = upload<VS>(in.column(1), stream, op);
  Buffer<int64_t> row(rows, stream, op);
  Buffer<KS> unique_keys(rows, stream, op);
  Buffer<VS> reduced(rows, stream, op);
  Buffer<int64_t> first_row(rows, stream, op);
  size_t groups = 0;
  if (rows) {
    thrust::sequence(policy, row.data(), row.data() + rows);
    thrust::stable_sort_by_key(policy, keys.data(), keys.data() + rows, row.data());
    auto sorted_values = thrust::make_permutation_iterator(values.data(), row.data());
    auto ends = thrust::reduce_by_key(policy, keys.data(), keys.data() + rows, sorted_values, unique_keys.data(), reduced.data(),
                                      thrust::equal_to<KS>(), ReduceValues<V, F>{f});
    groups = static_cast<size_t>(ends.first - unique_keys.data());
    thrust::reduce_by_key(policy, keys.data(), keys.data() + rows, row.data(), thrust::make_discard_iterator(), first_row.data(),
                          thrust::equal_to<KS>(), MinIndex{});
    // First appearance order: sort the groups by their first row.
    Buffer<int64_t> order(groups, stream, op);
    thrust::sequence(policy, order.data(), order.data() + groups);
    thrust::sort_by_key(policy, first_row.data(), first_row.data() + groups, order.data());
    Buffer<KS> out_keys(groups, stream, op);
    Buffer<VS> out_values(groups, stream, op);
    thrust::gather(policy, order.data(), order.data() + groups, unique_keys.data(), out_keys.data());
    thrust::gather(policy, order.data(), order.data() + groups, reduced.data(), out_values.data());
    std::vector<Column> columns;
    columns.push_back(download(out_keys.data(), groups, stream, op));
    columns.push_back(download(out_values.data(), groups, stream, op));
    return Table(schema_of<std::pair<K, V>>(), std::move(columns));
  }
  return encode(std::vector<std::pair<K, V>>{});
}

}  // namespace sluice::device
