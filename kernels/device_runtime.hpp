#pragma once
// Host-callable entry points of the CUDA side (compiled by nvcc, called from C++).
#include <string>

namespace sluice::cuda {

/// Number of usable CUDA devices; 0 when there is no driver or no device.
int device_count();
/// "NVIDIA H100 80GB HBM3 (sm_90, 81079 MiB)"
std::string device_description(int device);

/// @brief The hardware bounds a GPU stream engine is measured against.
struct TransferBounds {
  double host_to_device_pinned_bytes_per_s = 0;  ///< cudaMemcpyAsync from page-locked host memory
  double device_to_host_pinned_bytes_per_s = 0;
  double device_memory_bytes_per_s = 0;          ///< device-to-device copy: bytes read + bytes written
};

/// @brief Measures TransferBounds on @p device with buffers of @p bytes: the best of
/// @p repetitions timed copies (CUDA events), after one warm-up copy each.
TransferBounds measure_transfer_bounds(int device, size_t bytes, int repetitions);

}  // namespace sluice::cuda
