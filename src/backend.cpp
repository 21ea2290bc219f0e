#include "sluice/backend.hpp"

#include "sluice/log.hpp"

#ifdef SLUICE_WITH_CUDA
#include "device_runtime.hpp"
#endif

namespace sluice {

#ifdef SLUICE_WITH_CUDA
std::unique_ptr<ExecutionBackend> make_cuda_backend(int device);  // src/cuda/cuda_backend.cpp
#endif

std::optional<ParsedLines> ExecutionBackend::parse_records(const Column&, const Schema&, const TextRecordFormat&) {
  return std::nullopt;
}

std::optional<std::vector<Column>> ExecutionBackend::evaluate(const Table&, std::span<const RowProgram* const>) {
  return std::nullopt;
}
std::optional<Table> ExecutionBackend::filter(const Table&, const RowProgram&) { return std::nullopt; }
std::optional<Table> ExecutionBackend::run_row_chain(const Table&, std::span<const RowChainStep>) { return std::nullopt; }
std::optional<Table> ExecutionBackend::aggregate_row_chain(const Table&, std::span<const RowChainStep>, const KeyedAggregation&) {
  return std::nullopt;
}

bool WindowAggregation::add_row_chain(const Table&, std::span<const RowChainStep>) { return false; }
std::optional<Table> StateAggregation::update_row_chain(const Table&, std::span<const RowChainStep>) { return std::nullopt; }

void ExecutionBackend::prefetch(Time, const Table&) {}
void ExecutionBackend::retire_prefetched(Time) {}

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
      return make_cuda_backend(0);
#endif
    }
    case BackendKind::Auto: {
#ifdef SLUICE_WITH_CUDA
      if (cuda::device_count() > 0) return make_cuda_backend(0);
      logging::info("backend auto: no CUDA device is present; using cpu");
#else
      logging::info("backend auto: this build has no CUDA; using cpu");
#endif
      return make_cpu_backend();
    }
  }
  throw Error("unknown backend kind");
}

}  // namespace sluice
