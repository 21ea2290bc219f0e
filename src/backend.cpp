#include "sluice/backend.hpp"

#include "sluice/log.hpp"

#ifdef SLUICE_WITH_CUDA
#include "device_runtime.hpp"
#endif

namespace sluice {

int cuda_device_count() {
#ifdef SLUICE_WITH_CUDA
  return cuda::device_count();
#else
  return 0;
#endif
}

std::unique_ptr<ExecutionBackend> make_backend(BackendKind requested) {
  switch (requested) {
    case BackendKind::Cpu: return make_cpu_backend();
    case BackendKind::Cuda: {
#ifndef SLUICE_WITH_CUDA
      throw Error("backend 'cuda' requested, but this build of Sluice was compiled without CUDA (nvcc was not found)");
#else
      const int devices = cuda::device_count();
      if (devices == 0) throw Error("backend 'cuda' requested, but no CUDA device is present on this machine");
      throw Error("backend 'cuda' requested on " + cuda::device_description(0) +
                  ", but the CUDA execution backend is not implemented yet; use backend 'cpu' or 'auto'");
#endif
    }
    case BackendKind::Auto: {
      const int devices = cuda_device_count();
      if (devices > 0)
        log::info("backend auto: a CUDA device is present, but the CUDA execution backend is not implemented yet; using cpu");
      return make_cpu_backend();
    }
  }
  throw Error("unknown backend kind");
}

}  // namespace sluice
