// The device engine's windows and running state: per-key partials kept on the device, fed
// by batches or by chains of row operations reduced where they ran.
#include "device_window.cuh"
#include "gpu_engine_impl.cuh"
#include "grouped_reduce.cuh"
#include "reduce_row_chain.cuh"

namespace sluice::gpu {

namespace {

/// Reduces a batch of host columns on the device: the groups stay there; keys and first rows
/// come back when @p want_groups. A batch with null exact keys stops with out.null_keys set
/// and no groups, for the caller to add nothing.
DeviceGroups<CudaExec> reduce_batch(DeviceEngine::Impl& im, CudaExec& exec, const GroupedInput& host_input, bool want_groups,
                                    BatchGroups& out) {
  DeviceArray<char> block;
  GroupedInput in = im.upload(host_input, block);
  if (in.exact_key && (out.null_keys = take_exact_key(exec, in)) > 0) return {};
  DeviceGroups<CudaExec> groups = grouped_reduce_in_place(exec, in);
  out.key_collisions = groups.key_collisions;
  if (want_groups) {
    out.keys.resize(groups.groups);
    out.first_row.resize(groups.groups);
    exec.to_host(out.keys.data(), groups.key.data(), groups.groups * sizeof(uint64_t));
    exec.to_host(out.first_row.data(), groups.first_row.data(), groups.groups * sizeof(int64_t));
  }
  return groups;
}

/// Runs @p steps over a batch (host or resident columns) and reduces their output by
/// @p reduction where it is, into the batch's groups for a window pane or running state. The
/// groups' keys and first rows, and the key columns at those rows, come back into @p out
/// before the caller changes its pane or state (after a key collision no key columns come
/// back; the caller's key dictionary rejects the batch). An exact key's value is its key: no
/// key columns come back, and a batch with null keys stops as in reduce_batch.
DeviceGroups<CudaExec> reduce_chain_batch(DeviceEngine::Impl& im, CudaExec& exec, const std::vector<ColumnView>& host_columns,
                                          size_t rows, const std::vector<RowChainStep>& steps, const ChainReduction& reduction,
                                          ChainBatchGroups& out) {
  DeviceArray<char> block;
  const std::vector<ColumnView> columns = im.upload_columns(host_columns, rows, block);
  const RowChainResult<CudaExec> chain = run_row_chain(exec, columns, rows, steps);
  GroupedInput in = chain_grouped_input(columns, chain, reduction);
  // Already on the device: reduce_batch's upload reads them where they are.
  for (ColumnView& key : in.keys) key.on_device = 1;
  for (FoldView& fold : in.folds) fold.input.on_device = 1;
  DeviceGroups<CudaExec> groups = reduce_batch(im, exec, in, /*want_groups=*/!in.exact_key, out.groups);
  if (groups.key_collisions == 0 && !in.exact_key)
    for (const OwnedColumn<CudaExec>& key : gather_keys(exec, in.keys, groups.first_row.data(), groups.groups))
      out.keys.push_back(download_column(exec, key, groups.groups));
  return groups;
}

class DeviceWindow final : public DeviceEngine::Window {
 public:
  DeviceWindow(std::shared_ptr<DeviceEngine::Impl> im, std::vector<FoldView> folds, size_t records_fold, size_t panes, bool invertible)
      : owner_(std::move(im)), im_(*owner_), exec_(im_.pool, im_.stream), fold_count_(folds.size()), ring_(exec_, std::move(folds), records_fold, panes, invertible) {}

  BatchGroups add_batch(const GroupedInput& host_input, bool want_groups) override {
    return checked("window pane", im_.device, im_.stream, [&] {
      BatchGroups out;
      DeviceGroups<CudaExec> groups = reduce_batch(im_, exec_, host_input, want_groups, out);
      if (out.null_keys == 0) ring_.add(std::move(groups));
      return out;
    });
  }

  ChainBatchGroups add_row_chain(const std::vector<ColumnView>& host_columns, size_t rows, const std::vector<RowChainStep>& steps,
                                 const ChainReduction& reduction) override {
    return checked("window pane after row operations", im_.device, im_.stream, [&] {
      ChainBatchGroups out;
      DeviceGroups<CudaExec> groups = reduce_chain_batch(im_, exec_, host_columns, rows, steps, reduction, out);
      if (out.groups.null_keys == 0) ring_.add(std::move(groups));
      return out;
    });
  }

  WindowGroups slide() override {
    return checked("window slide", im_.device, im_.stream, [&] {
      const DevicePartial<CudaExec>& window = ring_.slide();
      WindowGroups out;
      download_partial(exec_, window, fold_count_, out.keys, out.accumulators);
      return out;
    });
  }

 private:
  std::shared_ptr<DeviceEngine::Impl> owner_;  // declared first: destroyed last
  DeviceEngine::Impl& im_;
  CudaExec exec_;
  size_t fold_count_;
  DeviceWindowRing<CudaExec> ring_;
};

class DeviceState final : public DeviceEngine::RunningState {
 public:
  DeviceState(std::shared_ptr<DeviceEngine::Impl> im, const std::vector<FoldView>& folds, size_t records_fold, size_t expire_after)
      : owner_(std::move(im)), im_(*owner_), exec_(im_.pool, im_.stream), state_(exec_, folds, records_fold, expire_after) {}

  BatchGroups update(const GroupedInput& host_input, bool want_groups, WindowGroups& state) override {
    return checked("update_state_by_key", im_.device, im_.stream, [&] {
      BatchGroups out;
      DeviceGroups<CudaExec> groups = reduce_batch(im_, exec_, host_input, want_groups, out);
      if (out.null_keys > 0) return out;
      const DevicePartial<CudaExec>& s = state_.update(std::move(groups));
      download_partial(exec_, s, state_.fold_count(), state.keys, state.accumulators);
      return out;
    });
  }

  ChainBatchGroups update_row_chain(const std::vector<ColumnView>& host_columns, size_t rows, const std::vector<RowChainStep>& steps,
                                    const ChainReduction& reduction, WindowGroups& state) override {
    return checked("update_state_by_key after row operations", im_.device, im_.stream, [&] {
      ChainBatchGroups out;
      DeviceGroups<CudaExec> groups = reduce_chain_batch(im_, exec_, host_columns, rows, steps, reduction, out);
      if (out.groups.null_keys > 0) return out;
      const DevicePartial<CudaExec>& s = state_.update(std::move(groups));
      download_partial(exec_, s, state_.fold_count(), state.keys, state.accumulators);
      return out;
    });
  }

 private:
  std::shared_ptr<DeviceEngine::Impl> owner_;  // declared first: destroyed last
  DeviceEngine::Impl& im_;
  CudaExec exec_;
  DeviceRunningState<CudaExec> state_;
};

}  // namespace

std::unique_ptr<DeviceEngine::Window> DeviceEngine::make_window(std::vector<FoldView> folds, size_t records_fold, size_t panes,
                                                                bool invertible) {
  return std::make_unique<DeviceWindow>(impl_, std::move(folds), records_fold, panes, invertible);
}

std::unique_ptr<DeviceEngine::RunningState> DeviceEngine::make_running_state(std::vector<FoldView> folds, size_t records_fold,
                                                                            size_t expire_after) {
  return std::make_unique<DeviceState>(impl_, folds, records_fold, expire_after);
}

}  // namespace sluice::gpu
