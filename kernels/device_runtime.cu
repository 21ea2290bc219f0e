// Device discovery for the backend choice, and the copy bounds benchmarks are measured
// against. The CUDA backend's kernels live beside this file.
#include <cuda_runtime.h>

#include <algorithm>
#include <memory>
#include <string>

#include "cuda_check.cuh"
#include "device_runtime.hpp"

namespace sluice::cuda {

int device_count() {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  // No driver or no device is an answer ("none"), not a failure of the engine.
  if (err == cudaErrorNoDevice || err == cudaErrorInsufficientDriver) {
    (void)cudaGetLastError();
    return 0;
  }
  SLUICE_CUDA_TRY(err);
  return count;
}

std::string device_description(int device) {
  cudaDeviceProp prop{};
  SLUICE_CUDA_TRY(cudaGetDeviceProperties(&prop, device));
  return std::string(prop.name) + " (sm_" + std::to_string(prop.major) + std::to_string(prop.minor) + ", " +
         std::to_string(prop.totalGlobalMem >> 20) + " MiB)";
}

namespace {

struct DeviceBufferDeleter {
  void operator()(void* p) const { cudaFree(p); }
};
struct PinnedBufferDeleter {
  void operator()(void* p) const { cudaFreeHost(p); }
};
struct StreamDeleter {
  void operator()(CUstream_st* s) const { cudaStreamDestroy(s); }
};

/// Best throughput (bytes_counted / time) of @p repetitions runs of @p copy on @p stream.
template <class Copy>
double best_rate(cudaStream_t stream, double bytes_counted, int repetitions, Copy copy) {
  const CudaEvent start, stop;
  copy();  // warm-up: first-touch and clock ramp-up are not the bound
  SLUICE_CUDA_TRY(cudaStreamSynchronize(stream));
  double best = 0;
  for (int i = 0; i < repetitions; ++i) {
    SLUICE_CUDA_TRY(cudaEventRecord(start.get(), stream));
    copy();
    SLUICE_CUDA_TRY(cudaEventRecord(stop.get(), stream));
    SLUICE_CUDA_TRY(cudaEventSynchronize(stop.get()));
    float ms = 0;
    SLUICE_CUDA_TRY(cudaEventElapsedTime(&ms, start.get(), stop.get()));
    if (ms > 0) best = std::max(best, bytes_counted / (static_cast<double>(ms) / 1000.0));
  }
  return best;
}

}  // namespace

TransferBounds measure_transfer_bounds(int device, size_t bytes, int repetitions) {
  SLUICE_CUDA_TRY(cudaSetDevice(device));
  cudaStream_t stream_raw = nullptr;
  SLUICE_CUDA_TRY(cudaStreamCreateWithFlags(&stream_raw, cudaStreamNonBlocking));
  std::unique_ptr<CUstream_st, StreamDeleter> stream(stream_raw);
  void* raw = nullptr;
  SLUICE_CUDA_TRY(cudaMallocHost(&raw, bytes));
  std::unique_ptr<void, PinnedBufferDeleter> host(raw);
  SLUICE_CUDA_TRY(cudaMalloc(&raw, bytes));
  std::unique_ptr<void, DeviceBufferDeleter> a(raw);
  SLUICE_CUDA_TRY(cudaMalloc(&raw, bytes));
  std::unique_ptr<void, DeviceBufferDeleter> b(raw);
  std::fill_n(static_cast<unsigned char*>(host.get()), bytes, static_cast<unsigned char>(1));

  const double n = static_cast<double>(bytes);
  TransferBounds out;
  out.host_to_device_pinned_bytes_per_s = best_rate(stream.get(), n, repetitions, [&] {
    SLUICE_CUDA_TRY(cudaMemcpyAsync(a.get(), host.get(), bytes, cudaMemcpyHostToDevice, stream.get()));
  });
  out.device_to_host_pinned_bytes_per_s = best_rate(stream.get(), n, repetitions, [&] {
    SLUICE_CUDA_TRY(cudaMemcpyAsync(host.get(), a.get(), bytes, cudaMemcpyDeviceToHost, stream.get()));
  });
  out.device_memory_bytes_per_s = best_rate(stream.get(), 2 * n, repetitions, [&] {
    SLUICE_CUDA_TRY(cudaMemcpyAsync(b.get(), a.get(), bytes, cudaMemcpyDeviceToDevice, stream.get()));
  });
  return out;
}

}  // namespace sluice::cuda
