#pragma once
// Host-callable entry points of the CUDA side (compiled by nvcc, called from C++).
#include <string>

namespace sluice::cuda {

/// Number of usable CUDA devices; 0 when there is no driver or no device.
int device_count();
/// "NVIDIA H100 80GB HBM3 (sm_90, 81079 MiB)"
std::string device_description(int device);

}  // namespace sluice::cuda
