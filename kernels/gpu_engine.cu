// The CUDA backend's device engine: staging of host columns into pinned memory, one
// asynchronous copy per batch into pool memory, and the algorithm templates run on a stream.
// This unit: the engine itself, keyed reductions, grouping and word count. The engine's
// state (gpu_engine_impl.cuh) is shared with the units of the other operators:
// gpu_engine_windows.cu, gpu_engine_rows.cu, gpu_engine_chains.cu and gpu_engine_parse.cu.
#include "gpu_engine_impl.cuh"
#include "grouped_reduce.cuh"
#include "word_count.cuh"

namespace sluice::gpu {

DeviceEngine::DeviceEngine(int device) : impl_(std::make_shared<Impl>(device)) {}
DeviceEngine::~DeviceEngine() {
  if (impl_.use_count() > 1) impl_->release_spare();  // what it made lives on; the rest goes
}

const std::string& DeviceEngine::description() const { return impl_->description; }
const void* DeviceEngine::identity() const { return impl_.get(); }

GroupedResult DeviceEngine::reduce(const GroupedInput& host_input) {
  Impl& im = *impl_;
  return checked("reduce_by_key", im.device, im.stream, [&] {
    DeviceArray<char> block;
    const GroupedInput in = im.upload(host_input, block);
    CudaExec exec(im.pool, im.stream);
    return grouped_reduce(exec, in);
  });
}

namespace {

/// The group ids of @p rows rows by @p host_keys (host or device views), their copies on the
/// device in @p block.
DeviceGroupIds<CudaExec> group_ids_of(DeviceEngine::Impl& im, CudaExec& exec, const std::vector<ColumnView>& host_keys, size_t rows,
                                      DeviceArray<char>& block) {
  GroupedInput in;
  in.rows = rows;
  in.keys = im.upload_columns(host_keys, rows, block);
  return group_ids(exec, in);
}

}  // namespace

RowGroups DeviceEngine::group_rows(const std::vector<ColumnView>& host_keys, size_t rows) {
  Impl& im = *impl_;
  return checked("group_by_key", im.device, im.stream, [&] {
    DeviceArray<char> block;
    CudaExec exec(im.pool, im.stream);
    const DeviceGroupIds<CudaExec> ids = group_ids_of(im, exec, host_keys, rows, block);
    RowGroups out;
    out.key_collisions = ids.key_collisions;
    if (out.key_collisions != 0) return out;
    out.group_of_row.resize(rows);
    out.first_row.resize(ids.groups);
    exec.to_host(out.group_of_row.data(), ids.group_of_row.data(), rows * sizeof(int32_t));
    exec.to_host(out.first_row.data(), ids.first_row.data(), ids.groups * sizeof(int64_t));
    return out;
  });
}

RowLists DeviceEngine::group_lists(const std::vector<ColumnView>& host_keys, size_t rows, const std::vector<ListSource>& sides) {
  Impl& im = *impl_;
  return checked("group_by_key", im.device, im.stream, [&] {
    for (const ListSource& side : sides)
      SLUICE_EXPECTS(side.row_begin <= side.row_end && side.row_end <= rows && side.nullable.size() == side.columns.size(),
                     "grouped lists: a side's rows [" + std::to_string(side.row_begin) + ", " + std::to_string(side.row_end) +
                         ") of " + std::to_string(rows) + " grouped rows, with " + std::to_string(side.nullable.size()) +
                         " nullable flags for " + std::to_string(side.columns.size()) + " columns");
    DeviceArray<char> block;
    CudaExec exec(im.pool, im.stream);
    const DeviceGroupIds<CudaExec> ids = group_ids_of(im, exec, host_keys, rows, block);
    RowLists out;
    out.key_collisions = ids.key_collisions;
    if (out.key_collisions != 0) return out;
    out.first_row.resize(ids.groups);
    exec.to_host(out.first_row.data(), ids.first_row.data(), ids.groups * sizeof(int64_t));
    for (const ListSource& side : sides) {
      const size_t n = side.row_end - side.row_begin;
      const DeviceRowsByGroup<CudaExec> by_group = order_rows_by_group(exec, ids.group_of_row.data(), side.row_begin, side.row_end, ids.groups);
      std::vector<int32_t>& offsets = out.list_offsets.emplace_back(ids.groups + 1);
      exec.to_host(offsets.data(), by_group.start.data(), offsets.size() * sizeof(int32_t));
      DeviceArray<char> side_block;
      const std::vector<ColumnView> columns = im.upload_columns(side.columns, n, side_block);
      out.elements.push_back(gathered_on_device(impl_, exec, columns, by_group.rows.data(), n, side.nullable));
    }
    return out;
  });
}

WordCounts DeviceEngine::count_words(const char* chars, const int32_t* offsets, size_t lines, GroupStrategy strategy) {
  Impl& im = *impl_;
  return checked("word count", im.device, im.stream, [&] {
    DeviceArray<char> block;
    const ColumnView in = im.upload_lines(chars, offsets, nullptr, lines, block);
    CudaExec exec(im.pool, im.stream);
    const size_t bytes = lines == 0 ? 0 : static_cast<size_t>(offsets[lines]);
    return sluice::gpu::count_words(exec, in.chars, in.offsets, lines, bytes, strategy);
  });
}

std::shared_ptr<void> DeviceEngine::allocate_pinned(size_t bytes) {
  void* p = nullptr;
  SLUICE_CUDA_TRY(cudaHostAlloc(&p, std::max<size_t>(bytes, 1), cudaHostAllocDefault));
  return std::shared_ptr<void>(p, [](void* q) { cudaFreeHost(q); });
}

DeviceEngine::ReduceTiming DeviceEngine::time_reduce(const GroupedInput& host_input, int repetitions) {
  Impl& im = *impl_;
  return checked("timed reduce_by_key", im.device, im.stream, [&] {
    ReduceTiming t;
    const CudaEvent start_event, stop_event;
    const cudaEvent_t start = start_event.get(), stop = stop_event.get();
    auto elapsed = [&] {
      float ms = 0;
      SLUICE_CUDA_TRY(cudaEventSynchronize(stop));
      SLUICE_CUDA_TRY(cudaEventElapsedTime(&ms, start, stop));
      return static_cast<double>(ms) / 1000.0;
    };
    DeviceArray<char> block;
    SLUICE_CUDA_TRY(cudaEventRecord(start, im.stream));
    const GroupedInput in = im.upload(host_input, block);
    SLUICE_CUDA_TRY(cudaEventRecord(stop, im.stream));
    t.copy_seconds = elapsed();
    CudaExec exec(im.pool, im.stream);
    std::vector<double> runs;
    for (int i = 0; i < std::max(1, repetitions) + 1; ++i) {  // the first run warms the pool up
      SLUICE_CUDA_TRY(cudaEventRecord(start, im.stream));
      const DeviceGroups<CudaExec> groups = grouped_reduce_in_place(exec, in);
      SLUICE_CUDA_TRY(cudaEventRecord(stop, im.stream));
      const double s = elapsed();
      if (i > 0) runs.push_back(s);
      t.groups = groups.groups;
      t.strategy = groups.strategy;
      t.estimated_keys = groups.estimated_keys;
      t.direct_block_tables = groups.direct_block_tables;
      t.direct_device_table = groups.direct_device_table;
    }
    std::sort(runs.begin(), runs.end());
    t.best_seconds = runs.front();
    t.median_seconds = runs[runs.size() / 2];
    return t;
  });
}

void DeviceEngine::prefetch(int64_t batch, const std::vector<std::pair<const void*, size_t>>& buffers) {
  impl_->prefetch(batch, buffers);
}

void DeviceEngine::retire_prefetched(int64_t through) { impl_->retire_prefetched(through); }

MemoryStats DeviceEngine::memory() const {
  MemoryStats s;
  s.pool_reserved_bytes = impl_->pool.reserved_bytes();
  s.pool_used_bytes = impl_->pool.used_bytes();
  s.pinned_staging_bytes = impl_->staging[0].capacity() + impl_->staging[1].capacity();
  s.bytes_copied_to_device = impl_->bytes_copied;
  s.bytes_prefetched = impl_->bytes_prefetched;
  s.bytes_from_prefetch = impl_->bytes_from_prefetch;
  s.resident_bytes = impl_->resident_bytes;
  s.columns_left_on_device = impl_->columns_left_on_device;
  s.columns_copied_back = impl_->columns_copied_back;
  s.bytes_copied_back = impl_->bytes_copied_back;
  s.resident_columns_used = impl_->resident_columns_used;
  return s;
}

}  // namespace sluice::gpu
