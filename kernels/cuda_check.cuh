#pragma once
// Every CUDA runtime call goes through SLUICE_CUDA_TRY: a failure becomes a DeviceError (a
// sluice::Error) naming the call, the file and the CUDA error; the engine then adds the
// operator it happened in (device_failure).
#include <cuda_runtime.h>

#include <string>

#include "sluice/error.hpp"

namespace sluice {

/// A CUDA call that failed (SLUICE_CUDA_TRY) or device memory that could not be had: the
/// engine names the operator it happened in (device_failure) before the error goes on.
class DeviceError : public Error {
 public:
  DeviceError(const std::string& what, cudaError_t code) : Error(what), code_(code) {}
  cudaError_t code() const { return code_; }

 private:
  cudaError_t code_;
};

/// Errors after which the CUDA context is unusable: every later call on it fails too.
inline bool device_context_lost(cudaError_t code) {
  switch (code) {
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchFailure:
    case cudaErrorIllegalInstruction:
    case cudaErrorMisalignedAddress:
    case cudaErrorInvalidAddressSpace:
    case cudaErrorInvalidPc:
    case cudaErrorHardwareStackError:
    case cudaErrorAssert:
    case cudaErrorLaunchTimeout: return true;
    default: return false;
  }
}

/// The error that reports @p detail (a failure with CUDA error @p code) of operator @p op.
inline Error device_failure(const char* op, const std::string& detail, cudaError_t code) {
  std::string what = std::string("CUDA backend: ") + op + " failed on the device: " + detail;
  if (device_context_lost(code)) what += "; the device's context is lost, so every later CUDA call of this process fails too";
  return Error(what);
}

}  // namespace sluice

#define SLUICE_CUDA_TRY(call)                                                                         \
  do {                                                                                                \
    const cudaError_t sluice_cuda_status = (call);                                                    \
    if (sluice_cuda_status != cudaSuccess)                                                            \
      throw ::sluice::DeviceError(std::string("CUDA call ") + #call + " failed at " + __FILE__ + ":" + \
                                      std::to_string(__LINE__) + ": " + cudaGetErrorName(sluice_cuda_status) + \
                                      " (" + cudaGetErrorString(sluice_cuda_status) + ")",            \
                                  sluice_cuda_status);                                                \
  } while (0)

namespace sluice {

/// An owned CUDA event, destroyed with its owner, also when an error unwinds past it.
class CudaEvent {
 public:
  explicit CudaEvent(unsigned flags = cudaEventDefault) { SLUICE_CUDA_TRY(cudaEventCreateWithFlags(&event_, flags)); }
  ~CudaEvent() {
    if (event_) (void)cudaEventDestroy(event_);
  }
  CudaEvent(const CudaEvent&) = delete;
  CudaEvent& operator=(const CudaEvent&) = delete;
  cudaEvent_t get() const { return event_; }
  /// Hands the event to a new owner, who destroys it.
  cudaEvent_t release() {
    cudaEvent_t e = event_;
    event_ = nullptr;
    return e;
  }

 private:
  cudaEvent_t event_ = nullptr;
};

}  // namespace sluice
