// Device discovery for the backend choice. The CUDA backend's kernels live beside this file.
#include <cuda_runtime.h>

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

}  // namespace sluice::cuda
