#pragma once
// A base for test backends that change a few operations of the CPU backend: it reports itself
// as a CPU backend and hands the keyed aggregation (the backend's pure virtuals) to a CPU
// backend, `cpu_`, which a derived backend may use for anything else it passes on.
#include <memory>
#include <span>

#include "sluice/backend.hpp"

namespace sluice {

class CpuDelegatingBackend : public ExecutionBackend {
 public:
  BackendKind kind() const override { return BackendKind::Cpu; }
  Table aggregate_partials(const Table& input, const KeyedAggregation& plan) override { return cpu_->aggregate_partials(input, plan); }
  Table combine_partials(std::span<const Table* const> partials, std::span<const int> signs, const KeyedAggregation& plan) override {
    return cpu_->combine_partials(partials, signs, plan);
  }
  Table finalize(const Table& partials, const KeyedAggregation& plan) override { return cpu_->finalize(partials, plan); }

 protected:
  std::unique_ptr<ExecutionBackend> cpu_ = make_cpu_backend();
};

}  // namespace sluice
