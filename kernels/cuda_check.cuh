#pragma once
// Every CUDA runtime call goes through SLUICE_CUDA_TRY: a failure becomes a sluice::Error
// naming the call, the file and the CUDA error.
#include <cuda_runtime.h>

#include <string>

#include "sluice/error.hpp"

#define SLUICE_CUDA_TRY(call)                                                                  \
  do {                                                                                         \
    const cudaError_t sluice_cuda_status = (call);                                             \
    if (sluice_cuda_status != cudaSuccess)                                                     \
      throw ::sluice::Error(std::string("CUDA call ") + #call + " failed at " + __FILE__ + ":" + \
                            std::to_string(__LINE__) + ": " + cudaGetErrorName(sluice_cuda_status) + \
                            " (" + cudaGetErrorString(sluice_cuda_status) + ")");              \
  } while (0)
