// The device engine's chains of row operations (filter, map, split), run with the columns
// staying on the device between steps, and reduced by key where they end.
#include "gpu_engine_impl.cuh"
#include "reduce_row_chain.cuh"
#include "row_chain.cuh"

namespace sluice::gpu {

RowChainOutput DeviceEngine::run_row_chain(const std::vector<ColumnView>& host_columns, size_t rows,
                                           const std::vector<RowChainStep>& steps) {
  Impl& im = *impl_;
  return checked("row operations", im.device, im.stream, [&] {
    DeviceArray<char> block;
    const std::vector<ColumnView> columns = im.upload_columns(host_columns, rows, block);
    CudaExec exec(im.pool, im.stream);
    RowChainResult<CudaExec> chain = sluice::gpu::run_row_chain(exec, columns, rows, steps);
    RowChainOutput out;
    out.rows = chain.rows;
    out.input_column = chain.input_column;
    out.columns.resize(chain.columns.size());
    for (size_t k = 0; k < chain.columns.size(); ++k) {
      if (chain.input_column[k] >= 0) continue;  // the caller's own column
      const size_t column_rows = chain.columns[k].rows;
      out.columns[k] = keep_on_device(impl_, exec, std::move(chain.columns[k]), column_rows);
    }
    return out;
  });
}


ChainGroupsOnHost DeviceEngine::reduce_row_chain(const std::vector<ColumnView>& host_columns, size_t rows,
                                                 const std::vector<RowChainStep>& steps, const ChainReduction& reduction) {
  Impl& im = *impl_;
  return checked("row operations and reduce_by_key", im.device, im.stream, [&] {
    DeviceArray<char> block;
    const std::vector<ColumnView> columns = im.upload_columns(host_columns, rows, block);
    CudaExec exec(im.pool, im.stream);
    const ChainGroups<CudaExec> reduced = sluice::gpu::reduce_row_chain(exec, columns, rows, steps, reduction);
    SLUICE_EXPECTS(reduced.null_keys == 0, "reduce_by_key after row operations: " + std::to_string(reduced.null_keys) +
                                               " rows have a null key that is declared not nullable");
    ChainGroupsOnHost out;
    out.groups = download_groups(exec, reduced.groups);
    for (const OwnedColumn<CudaExec>& key : reduced.keys) out.keys.push_back(download_column(exec, key, reduced.groups.groups));
    return out;
  });
}

}  // namespace sluice::gpu
