// The CUDA backend's device engine: staging of host columns into pinned memory, one
// asynchronous copy per batch into pool memory, and the algorithm templates run on a stream.
#include <thrust/system/cuda/error.h>
#include <thrust/system_error.h>

#include <algorithm>
#include <chrono>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "cuda_exec.cuh"
#include "device_runtime.hpp"
#include "device_window.cuh"
#include "gpu_engine.hpp"
#include "grouped_reduce.cuh"
#include "csv_parse.cuh"
#include "hash_join.cuh"
#include "json_parse.cuh"
#include "reduce_row_chain.cuh"
#include "row_chain.cuh"
#include "row_program.cuh"
#include "sort_rows.cuh"
#include "split_strings.cuh"
#include "staging.hpp"
#include "word_count.cuh"

namespace sluice::gpu {
namespace {

constexpr size_t kAlign = 256;
/// Host-to-device copies of staged inputs go in chunks of this size (double-buffered).
constexpr size_t kStagingChunk = size_t{16} << 20;
size_t aligned(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

/// Waits for what is queued on @p stream after a failure, so that no copy from a caller's
/// buffers is still running when the error reaches the caller (errors are already failing).
void drain(cudaStream_t stream) {
  (void)cudaStreamSynchronize(stream);
  (void)cudaGetLastError();
}

/// Runs @p body, surfacing asynchronous errors of the stream before returning. A failure of
/// the device (a CUDA call, Thrust's CUDA errors, device memory) becomes a sluice::Error
/// naming @p what; other errors (a malformed request) already name what was wrong.
template <class Body> auto checked(const char* what, cudaStream_t stream, Body&& body) {
  try {
    auto result = body();
    SLUICE_CUDA_TRY(cudaGetLastError());
    SLUICE_CUDA_TRY(cudaStreamSynchronize(stream));
    return result;
  } catch (const DeviceError& e) {
    drain(stream);
    throw device_failure(what, e.what(), e.code());
  } catch (const thrust::system_error& e) {
    drain(stream);
    const bool cuda = e.code().category() == thrust::cuda_category();
    throw device_failure(what, e.what(), cuda ? static_cast<cudaError_t>(e.code().value()) : cudaErrorUnknown);
  } catch (...) {
    drain(stream);
    throw;
  }
}

/// The device memory that resident columns may hold on one device, shared by every engine
/// on it: a quarter of the device's memory.
struct ResidentBudget {
  std::atomic<uint64_t> held{0};
  uint64_t limit = 0;
};

ResidentBudget& resident_budget_of(int device) {
  static std::mutex mutex;
  static std::map<int, std::unique_ptr<ResidentBudget>> budgets;  // never freed: engines may outlive main
  std::lock_guard lock(mutex);
  std::unique_ptr<ResidentBudget>& budget = budgets[device];
  if (!budget) {
    size_t free_bytes = 0, total_bytes = 0;
    SLUICE_CUDA_TRY(cudaMemGetInfo(&free_bytes, &total_bytes));
    budget = std::make_unique<ResidentBudget>();
    budget->limit = total_bytes / 4;
  }
  return *budget;
}

}  // namespace

struct DeviceEngine::Impl {
  explicit Impl(int device_) : device(device_), pool((select(device_), device_)) {
    description = sluice::cuda::device_description(device);
    SLUICE_CUDA_TRY(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    SLUICE_CUDA_TRY(cudaStreamCreateWithFlags(&copy_stream, cudaStreamNonBlocking));
    for (cudaEvent_t& e : staging_free) SLUICE_CUDA_TRY(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
  }
  ~Impl() {
    cudaStreamSynchronize(copy_stream);
    cudaStreamSynchronize(stream);
    for (auto& [host, p] : prefetched) {
      pool.release(p.device, stream);
      cudaEventDestroy(p.ready);
    }
    cudaStreamSynchronize(stream);
    cudaStreamDestroy(copy_stream);
    if (copy_back_stream) cudaStreamDestroy(copy_back_stream);
    for (cudaEvent_t e : staging_free) cudaEventDestroy(e);
    cudaStreamDestroy(stream);
  }
  static int select(int device) {
    SLUICE_CUDA_TRY(cudaSetDevice(device));
    return device;
  }

  /// For an engine going away while windows, states or resident columns it made still hold
  /// this: gives back the pool's spare memory and the pinned staging, which only new
  /// work would use (and would allocate again).
  void release_spare() noexcept {
    (void)cudaSetDevice(device);
    (void)cudaStreamSynchronize(copy_stream);
    pool.release_unused(stream);  // after the stream: no staged copy is still running
    staging[0].release();
    staging[1].release();
  }

  /// Host columns staged into pinned memory and copied to the device in one copy; the
  /// returned input points into @p block.
  GroupedInput upload(const GroupedInput& host, DeviceArray<char>& block) {
    SLUICE_CUDA_TRY(cudaSetDevice(device));
    using Piece = StagedPiece;
    std::vector<Piece> pieces;
    std::unordered_map<const void*, size_t> offset_of;  // a buffer used twice is copied once
    size_t total = 0;
    auto place = [&](const void* p, size_t bytes) -> size_t {
      if (!p || bytes == 0) return SIZE_MAX;
      auto it = offset_of.find(p);
      if (it != offset_of.end()) return it->second;
      pieces.push_back({p, bytes, total});
      offset_of.emplace(p, total);
      const size_t at = total;
      total += aligned(bytes);
      return at;
    };
    const size_t rows = host.rows;
    auto place_column = [&](const ColumnView& c) {
      if (c.on_device) {  // a resident copy: read where it is
        ++resident_columns_used;
        return;
      }
      // Token spans (ends) are made on the device only; a host view never has them.
      SLUICE_EXPECTS(c.ends == nullptr, "CUDA backend: a host column with token spans (ends) cannot be uploaded");
      place(c.values, static_cast<size_t>(csv_type_width(c.type)) * rows);
      place(c.validity, (rows + 7) / 8);
      if (c.type == kString && c.offsets) {
        place(c.offsets, (rows + 1) * sizeof(int32_t));
        place(c.chars, static_cast<size_t>(c.offsets[rows]));
      }
    };
    for (const ColumnView& c : host.keys) place_column(c);
    for (const FoldView& f : host.folds)
      if (f.op != kFoldCountRows) place_column(f.input);
    place(host.row_sign, rows);

    block = DeviceArray<char>(pool, stream, total);
    // Pieces already in page-locked memory are copied directly; the rest are staged and
    // cover the block's range up to the last staged piece. That range goes first, so that
    // the direct copies (later on the same stream) land over its gaps.
    std::vector<Piece> direct, staged_pieces, ahead;
    size_t staged_bytes = 0;
    for (const Piece& p : pieces) {
      if (has_prefetched(p.host, p.bytes)) {
        ahead.push_back(p);
        bytes_from_prefetch += p.bytes;
      } else if (is_pinned(p.host)) {
        direct.push_back(p);
      } else {
        staged_pieces.push_back(p);
        staged_bytes = p.offset + p.bytes;
      }
      bytes_copied += p.bytes;
    }
    // Staged in chunks through two pinned buffers: the host copies chunk k + 1 while the
    // DMA engine moves chunk k.
    size_t next_piece = 0;
    for (size_t chunk = 0, from = 0; from < staged_bytes; ++chunk, from += kStagingChunk) {
      const size_t to = std::min(staged_bytes, from + kStagingChunk);
      const size_t buffer = chunk % 2;
      // The last copy out of this buffer must be done before it is refilled.
      SLUICE_CUDA_TRY(cudaEventSynchronize(staging_free[buffer]));
      char* staged = staging[buffer].reserve(std::min(staged_bytes, kStagingChunk));
      fill_chunk(staged_pieces, next_piece, from, to, staged);
      SLUICE_CUDA_TRY(cudaMemcpyAsync(block.data() + from, staged, to - from, cudaMemcpyHostToDevice, stream));
      SLUICE_CUDA_TRY(cudaEventRecord(staging_free[buffer], stream));
    }
    for (const Piece& p : direct)
      SLUICE_CUDA_TRY(cudaMemcpyAsync(block.data() + p.offset, p.host, p.bytes, cudaMemcpyHostToDevice, stream));
    for (const Piece& p : ahead) {
      // Under the lock: a prefetch of the same address on the cutter's thread retires the
      // copy (its free is queued on this stream), so the wait and the copy are queued first.
      std::lock_guard lock(prefetch_mutex);
      auto it = prefetched.find(p.host);
      if (it != prefetched.end() && it->second.bytes == p.bytes) {
        SLUICE_CUDA_TRY(cudaStreamWaitEvent(stream, it->second.ready, 0));
        SLUICE_CUDA_TRY(cudaMemcpyAsync(block.data() + p.offset, it->second.device, p.bytes, cudaMemcpyDeviceToDevice, stream));
      } else {  // retired meanwhile: the host buffer is still the batch's
        SLUICE_CUDA_TRY(cudaMemcpyAsync(block.data() + p.offset, p.host, p.bytes, cudaMemcpyHostToDevice, stream));
      }
    }
    auto moved = [&](const void* p) -> const void* {
      if (!p) return nullptr;
      auto it = offset_of.find(p);
      return it == offset_of.end() ? nullptr : block.data() + it->second;
    };
    auto device_column = [&](ColumnView c) {
      if (c.on_device) return c;
      c.values = moved(c.values);
      c.validity = static_cast<const uint8_t*>(moved(c.validity));
      c.offsets = static_cast<const int32_t*>(moved(c.offsets));
      c.chars = static_cast<const char*>(moved(c.chars));
      return c;
    };
    GroupedInput out = host;
    for (ColumnView& c : out.keys) c = device_column(c);
    for (FoldView& f : out.folds)
      if (f.op != kFoldCountRows) f.input = device_column(f.input);
    out.row_sign = static_cast<const int8_t*>(moved(host.row_sign));
    return out;
  }

  /// Host columns copied to the device (those without buffers, e.g. ColumnView{}, are not).
  std::vector<ColumnView> upload_columns(const std::vector<ColumnView>& host_columns, size_t rows, DeviceArray<char>& block) {
    GroupedInput host;
    host.rows = rows;
    host.keys = host_columns;
    return upload(host, block).keys;
  }

  /// A column of lines (Arrow strings in host memory) copied to the device.
  ColumnView upload_lines(const char* chars, const int32_t* offsets, const uint8_t* validity, size_t lines, DeviceArray<char>& block) {
    ColumnView text;
    text.type = kString;
    text.offsets = offsets;
    text.chars = chars;
    text.validity = validity;
    GroupedInput host;
    host.rows = lines;
    host.keys = {text};
    return upload(host, block).keys[0];
  }

  /// A buffer copied ahead for a source batch.
  struct Prefetched {
    size_t bytes = 0;
    void* device = nullptr;
    cudaEvent_t ready = nullptr;
    int64_t batch = 0;
  };

  bool has_prefetched(const void* host, size_t bytes) {
    std::lock_guard lock(prefetch_mutex);
    auto it = prefetched.find(host);
    return it != prefetched.end() && it->second.bytes == bytes;
  }

  void prefetch(int64_t batch, const std::vector<std::pair<const void*, size_t>>& buffers) {
    SLUICE_CUDA_TRY(cudaSetDevice(device));
    for (const auto& [host, bytes] : buffers) {
      if (!host || bytes == 0) continue;
      Prefetched p;
      p.bytes = bytes;
      p.batch = batch;
      p.device = pool.allocate(bytes, copy_stream);
      // From pageable memory the call returns once the driver has staged the bytes: the
      // batch may be handed on right after.
      SLUICE_CUDA_TRY(cudaMemcpyAsync(p.device, host, bytes, cudaMemcpyHostToDevice, copy_stream));
      SLUICE_CUDA_TRY(cudaEventCreateWithFlags(&p.ready, cudaEventDisableTiming));
      SLUICE_CUDA_TRY(cudaEventRecord(p.ready, copy_stream));
      std::lock_guard lock(prefetch_mutex);
      auto [it, inserted] = prefetched.emplace(host, p);
      if (!inserted) {
        retire(it->second);
        it->second = p;
      }
      bytes_prefetched += bytes;
    }
  }

  void retire_prefetched(int64_t through) {
    std::lock_guard lock(prefetch_mutex);
    for (auto it = prefetched.begin(); it != prefetched.end();) {
      if (it->second.batch > through) {
        ++it;
        continue;
      }
      retire(it->second);
      it = prefetched.erase(it);
    }
  }

  /// Frees a prefetched copy after its copy and every use queued on the stream so far.
  void retire(Prefetched& p) {
    SLUICE_CUDA_TRY(cudaStreamWaitEvent(stream, p.ready, 0));
    pool.release(p.device, stream);
    SLUICE_CUDA_TRY(cudaEventDestroy(p.ready));
  }

  /// Takes @p bytes of the device's budget for resident columns; false when they do not fit.
  bool reserve_resident(uint64_t bytes) {
    uint64_t held = resident_budget.held.load();
    do {
      if (held + bytes > resident_budget.limit) return false;
    } while (!resident_budget.held.compare_exchange_weak(held, held + bytes));
    resident_bytes += bytes;
    return true;
  }
  void return_resident(uint64_t bytes) {
    resident_budget.held -= bytes;
    resident_bytes -= bytes;
  }

  /// Runs @p copy (given a CudaExec) on the stream for copies of resident columns back to the
  /// host: its own, because any thread may ask while the engine's stream is busy (the columns
  /// themselves are complete: every engine call waits for its stream before it returns). The
  /// engine's device is current during the call, and the caller's is restored after (a caller
  /// on another device only: restoring would otherwise make a context where none was wanted).
  template <class Copy> HostColumnBuffers copy_back(Copy&& copy) {
    std::lock_guard lock(copy_back_mutex);
    int caller_device = 0;
    SLUICE_CUDA_TRY(cudaGetDevice(&caller_device));
    struct RestoreDevice {
      int device;
      bool needed;
      ~RestoreDevice() {
        if (needed && cudaSetDevice(device) != cudaSuccess) (void)cudaGetLastError();
      }
    } restore{caller_device, caller_device != device};
    if (restore.needed) SLUICE_CUDA_TRY(cudaSetDevice(device));
    if (!copy_back_stream) SLUICE_CUDA_TRY(cudaStreamCreateWithFlags(&copy_back_stream, cudaStreamNonBlocking));
    HostColumnBuffers out = checked("copying a column the device made back to the host", copy_back_stream, [&] {
      CudaExec exec(pool, copy_back_stream);
      return copy(exec);
    });
    bytes_copied_back += out.values.size() + out.validity.size() + out.offsets.size() * sizeof(int32_t) + out.chars.size();
    return out;
  }

  static bool is_pinned(const void* p) {
    cudaPointerAttributes attributes{};
    if (cudaPointerGetAttributes(&attributes, p) != cudaSuccess) {
      (void)cudaGetLastError();  // pageable memory the driver has never seen
      return false;
    }
    return attributes.type == cudaMemoryTypeHost;
  }

  int device;
  std::string description;
  cudaStream_t stream = nullptr;
  cudaEvent_t staging_free[2] = {nullptr, nullptr};
  DevicePool pool;
  PinnedBuffer staging[2];
  uint64_t bytes_copied = 0;
  cudaStream_t copy_stream = nullptr;  // prefetches of source batches
  std::mutex prefetch_mutex;
  std::unordered_map<const void*, Prefetched> prefetched;
  std::atomic<uint64_t> bytes_prefetched{0};
  std::atomic<uint64_t> bytes_from_prefetch{0};
  // Columns the engine made stay on the device while the host columns they mirror live
  // (the next operator reads them here instead of copying them in again), within the
  // device's budget for them.
  ResidentBudget& resident_budget = resident_budget_of(device);
  std::atomic<uint64_t> resident_bytes{0};  // this engine's part of it
  std::atomic<uint64_t> resident_columns_used{0};
  // Resident columns whose host copy was left until a host read needed it.
  std::atomic<uint64_t> columns_left_on_device{0};
  std::mutex copy_back_mutex;
  cudaStream_t copy_back_stream = nullptr;  // created on the first copy back
  std::atomic<uint64_t> columns_copied_back{0};
  std::atomic<uint64_t> bytes_copied_back{0};
};

DeviceEngine::DeviceEngine(int device) : impl_(std::make_shared<Impl>(device)) {}
DeviceEngine::~DeviceEngine() {
  if (impl_.use_count() > 1) impl_->release_spare();  // what it made lives on; the rest goes
}

const std::string& DeviceEngine::description() const { return impl_->description; }
const void* DeviceEngine::identity() const { return impl_.get(); }

GroupedResult DeviceEngine::reduce(const GroupedInput& host_input) {
  Impl& im = *impl_;
  return checked("reduce_by_key", im.stream, [&] {
    DeviceArray<char> block;
    const GroupedInput in = im.upload(host_input, block);
    CudaExec exec(im.pool, im.stream);
    return grouped_reduce(exec, in);
  });
}

RowGroups DeviceEngine::group_rows(const std::vector<ColumnView>& host_keys, size_t rows) {
  Impl& im = *impl_;
  return checked("group_by_key", im.stream, [&] {
    DeviceArray<char> block;
    GroupedInput in;
    in.rows = rows;
    in.keys = im.upload_columns(host_keys, rows, block);
    CudaExec exec(im.pool, im.stream);
    const DeviceGroupIds<CudaExec> ids = group_ids(exec, in);
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

WordCounts DeviceEngine::count_words(const char* chars, const int32_t* offsets, size_t lines, GroupStrategy strategy) {
  Impl& im = *impl_;
  return checked("word count", im.stream, [&] {
    DeviceArray<char> block;
    const ColumnView in = im.upload_lines(chars, offsets, nullptr, lines, block);
    CudaExec exec(im.pool, im.stream);
    const size_t bytes = lines == 0 ? 0 : static_cast<size_t>(offsets[lines]);
    return sluice::gpu::count_words(exec, in.chars, in.offsets, lines, bytes, strategy);
  });
}

namespace {

/// Copies @p n elements of a device array into a host vector.
template <class Vec, class Array> void download(CudaExec& exec, Vec& vec, const Array& array, size_t n) {
  vec.resize(n);
  exec.to_host(vec.data(), array.data(), n * sizeof(vec[0]));
}

/// A device column (type, nullable and Arrow buffers: values, validity, offsets, chars) of
/// @p rows rows copied to the host.
template <class DeviceColumn> HostColumnBuffers download_column(CudaExec& exec, const DeviceColumn& c, size_t rows) {
  HostColumnBuffers h;
  h.type = c.type;
  h.nullable = c.nullable;
  if (c.type == kString) {
    download(exec, h.offsets, c.offsets, rows + 1);
    download(exec, h.chars, c.chars, static_cast<size_t>(h.offsets.back()));
  } else {
    download(exec, h.values, c.values, rows * static_cast<size_t>(csv_type_width(c.type)));
  }
  if (c.nullable) download(exec, h.validity, c.validity, (rows + 7) / 8);
  return h;
}

/// Rows @p at, each checked to be below @p rows (@p what names the gather), copied to the device.
DeviceArray<int64_t> rows_on_device(CudaExec& exec, const std::vector<int64_t>& at, size_t rows, const char* what) {
  for (int64_t r : at)
    SLUICE_EXPECTS(r >= 0 && static_cast<size_t>(r) < rows,
                   std::string(what) + ": row " + std::to_string(r) + " of columns of " + std::to_string(rows) + " rows");
  DeviceArray<int64_t> out = exec.alloc<int64_t>(at.size());
  exec.to_device(out.data(), at.data(), at.size() * sizeof(int64_t));
  return out;
}

/// Device memory held by the arrays of device column @p c.
template <class DeviceColumn> uint64_t device_bytes(const DeviceColumn& c) {
  return c.values.size() * sizeof(*c.values.data()) + c.validity.size() * sizeof(*c.validity.data()) +
         c.offsets.size() * sizeof(*c.offsets.data()) + c.chars.size() * sizeof(*c.chars.data());
}

/// A device column kept for as long as a host column refers to it; its bytes go back to the
/// budget when the last reference goes.
template <class DeviceColumn> struct ResidentColumn final : ResidentCopy {
  ResidentColumn(std::shared_ptr<DeviceEngine::Impl> owner_, DeviceColumn&& column_, size_t rows_)
      : owner(std::move(owner_)), column(std::move(column_)), rows(rows_) {}
  ~ResidentColumn() override { owner->return_resident(bytes); }
  ResidentColumn(const ResidentColumn&) = delete;
  ResidentColumn& operator=(const ResidentColumn&) = delete;

  HostColumnBuffers copy_to_host() const override {
    HostColumnBuffers out = owner->copy_back([&](CudaExec& exec) { return download_column(exec, column, rows); });
    ++owner->columns_copied_back;
    return out;
  }
  HostColumnBuffers rows_to_host(const std::vector<int64_t>& at) const override {
    return owner->copy_back([&](CudaExec& exec) {
      const DeviceArray<int64_t> device_at = rows_on_device(exec, at, rows, "gathering rows of a column on the device");
      return download_column(exec, gather_column(exec, column.view(), device_at.data(), at.size()), at.size());
    });
  }

  std::shared_ptr<DeviceEngine::Impl> owner;  // declared first: the pool outlives the arrays
  DeviceColumn column;
  size_t rows = 0;
  uint64_t bytes = 0;  // of the budget, once reserved
};

/// Device column @p c of @p rows rows, kept on the device: the host gets only its resident
/// copy, and copies it back when a host read needs it (ResidentCopy::copy_to_host). When the
/// device's budget for resident columns has no room, it is copied to the host now instead.
template <class DeviceColumn>
HostColumnBuffers keep_on_device(const std::shared_ptr<DeviceEngine::Impl>& owner, CudaExec& exec, DeviceColumn&& c, size_t rows) {
  if (rows == 0) return download_column(exec, c, rows);
  const uint64_t bytes = device_bytes(c);
  auto kept = std::make_shared<ResidentColumn<DeviceColumn>>(owner, std::move(c), rows);
  if (!owner->reserve_resident(bytes)) return download_column(exec, kept->column, rows);  // then kept frees it
  kept->bytes = bytes;
  HostColumnBuffers h;
  h.type = kept->column.type;
  h.nullable = kept->column.nullable;
  h.on_host = false;
  h.resident_view = kept->column.view();
  h.resident_view.on_device = 1;
  h.resident = std::move(kept);
  ++owner->columns_left_on_device;
  return h;
}

}  // namespace

SplitColumn DeviceEngine::split_strings(const ColumnView& text, size_t rows, const std::string& separator) {
  Impl& im = *impl_;
  return checked("flat_map split", im.stream, [&] {
    SLUICE_EXPECTS(text.type == kString, "flat_map split: the column to split is not a string column");
    DeviceArray<char> block;
    const ColumnView in = im.upload_columns({text}, rows, block)[0];
    CudaExec exec(im.pool, im.stream);
    SLUICE_EXPECTS(separator.size() <= static_cast<size_t>(INT32_MAX), "flat_map split: the separator is over 2^31 - 1 bytes");
    auto device_separator = exec.alloc<char>(separator.size());
    exec.to_device(device_separator.data(), separator.data(), separator.size());
    SplitTokens<CudaExec> split =
        sluice::gpu::split_strings(exec, in, rows, device_separator.data(), static_cast<int32_t>(separator.size()));
    SplitColumn out;
    download(exec, out.source_rows, split.source_rows, split.tokens);
    OwnedColumn<CudaExec> tokens;
    tokens.type = kString;
    tokens.rows = split.tokens;
    tokens.offsets = std::move(split.offsets);
    tokens.chars = std::move(split.chars);
    out.tokens = keep_on_device(impl_, exec, std::move(tokens), split.tokens);
    return out;
  });
}

std::vector<HostColumnBuffers> DeviceEngine::evaluate(const std::vector<const RowProgram*>& programs,
                                                      const std::vector<ColumnView>& host_columns, size_t rows) {
  Impl& im = *impl_;
  return checked("map", im.stream, [&] {
    DeviceArray<char> block;
    const std::vector<ColumnView> columns = im.upload_columns(host_columns, rows, block);
    CudaExec exec(im.pool, im.stream);
    std::vector<HostColumnBuffers> out;
    for (const RowProgram* program : programs) {
      const BoundRowProgram<CudaExec> bound = bind_row_program(exec, *program, columns);
      out.push_back(keep_on_device(impl_, exec, evaluate_column(exec, bound, rows, program->result_nullable), rows));
    }
    return out;
  });
}

std::vector<int64_t> DeviceEngine::select_rows(const RowProgram& predicate, const std::vector<ColumnView>& host_columns,
                                               size_t rows) {
  Impl& im = *impl_;
  return checked("filter", im.stream, [&] {
    DeviceArray<char> block;
    const std::vector<ColumnView> columns = im.upload_columns(host_columns, rows, block);
    CudaExec exec(im.pool, im.stream);
    const BoundRowProgram<CudaExec> bound = bind_row_program(exec, predicate, columns);
    DeviceArray<int64_t> selected = exec.alloc<int64_t>(rows);
    std::vector<int64_t> out(sluice::gpu::select_rows(exec, bound.program, bound.inputs.data(), rows, selected.data()));
    exec.to_host(out.data(), selected.data(), out.size() * sizeof(int64_t));
    return out;
  });
}

RowChainOutput DeviceEngine::run_row_chain(const std::vector<ColumnView>& host_columns, size_t rows,
                                           const std::vector<RowChainStep>& steps) {
  Impl& im = *impl_;
  return checked("row operations", im.stream, [&] {
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

RowChainOutput DeviceEngine::join_rows(const std::vector<ColumnView>& host_left, size_t left_rows,
                                       const std::vector<ColumnView>& host_right, size_t right_rows,
                                       const std::vector<JoinColumnSpec>& outputs, const std::vector<int64_t>& left_at,
                                       const std::vector<int64_t>& right_at, size_t rows_with_left) {
  Impl& im = *impl_;
  return checked("join", im.stream, [&] {
    const size_t n = left_at.size();
    SLUICE_EXPECTS(right_at.size() == n && rows_with_left <= n, "join: " + std::to_string(n) + " left rows, " +
                                                                    std::to_string(right_at.size()) + " right rows and " +
                                                                    std::to_string(rows_with_left) + " rows with a left row");
    for (size_t o = 0; o < n; ++o) {
      // The first rows_with_left rows have a left row; every other row has a right row.
      const int64_t l = left_at[o], r = right_at[o];
      const bool left_ok = o < rows_with_left ? l >= 0 && static_cast<size_t>(l) < left_rows : l == -1;
      const bool right_ok = r >= -1 && (r == -1 ? o < rows_with_left : static_cast<size_t>(r) < right_rows);
      SLUICE_EXPECTS(left_ok && right_ok, "join: output row " + std::to_string(o) + " pairs left row " + std::to_string(l) +
                                              " with right row " + std::to_string(r) + " of tables of " +
                                              std::to_string(left_rows) + " and " + std::to_string(right_rows) + " rows (" +
                                              std::to_string(rows_with_left) + " rows with a left row)");
    }
    for (const JoinColumnSpec& c : outputs) {
      const bool left_ok = c.from == kJoinFromRight || (c.left_column >= 0 && static_cast<size_t>(c.left_column) < host_left.size());
      const bool right_ok = c.from == kJoinFromLeft || (c.right_column >= 0 && static_cast<size_t>(c.right_column) < host_right.size());
      SLUICE_EXPECTS(left_ok && right_ok, "join: a result column reads left column " + std::to_string(c.left_column) + " of " +
                                              std::to_string(host_left.size()) + " and right column " +
                                              std::to_string(c.right_column) + " of " + std::to_string(host_right.size()));
    }
    CudaExec exec(im.pool, im.stream);
    DeviceArray<int64_t> device_left_at = exec.alloc<int64_t>(n);
    DeviceArray<int64_t> device_right_at = exec.alloc<int64_t>(n);
    exec.to_device(device_left_at.data(), left_at.data(), n * sizeof(int64_t));
    exec.to_device(device_right_at.data(), right_at.data(), n * sizeof(int64_t));
    DeviceArray<char> left_block, right_block;
    const std::vector<ColumnView> left = im.upload_columns(host_left, left_rows, left_block);
    const std::vector<ColumnView> right = im.upload_columns(host_right, right_rows, right_block);
    RowChainOutput out;
    out.rows = n;
    out.input_column.assign(outputs.size(), -1);
    for (const JoinColumnSpec& c : outputs) {
      const ColumnView l = c.from == kJoinFromRight ? ColumnView{} : left[static_cast<size_t>(c.left_column)];
      const ColumnView r = c.from == kJoinFromLeft ? ColumnView{} : right[static_cast<size_t>(c.right_column)];
      out.columns.push_back(keep_on_device(impl_, exec,
                                           gather_join_column(exec, l, left_rows, r, c.from, c.nullable != 0, device_left_at.data(),
                                                              device_right_at.data(), rows_with_left, n),
                                           n));
    }
    return out;
  });
}

RowChainOutput DeviceEngine::sort_rows(const std::vector<ColumnView>& host_columns, size_t rows,
                                       const std::vector<SortKeySpec>& keys, int64_t limit) {
  Impl& im = *impl_;
  return checked("transform (sort_by, limit)", im.stream, [&] {
    for (const SortKeySpec& k : keys)
      SLUICE_EXPECTS(k.column >= 0 && static_cast<size_t>(k.column) < host_columns.size(),
                     "transform: sort key column " + std::to_string(k.column) + " of a batch of " +
                         std::to_string(host_columns.size()) + " columns");
    DeviceArray<char> block;
    const std::vector<ColumnView> columns = im.upload_columns(host_columns, rows, block);
    CudaExec exec(im.pool, im.stream);
    std::vector<SortKeyView> key_views;
    for (const SortKeySpec& k : keys) key_views.push_back(SortKeyView{columns[static_cast<size_t>(k.column)], k.descending});
    const SortedRows<CudaExec> sorted = sluice::gpu::sort_rows(exec, key_views, rows, limit);
    RowChainOutput out;
    out.rows = sorted.rows;
    out.input_column.assign(columns.size(), -1);
    for (const ColumnView& c : columns)
      out.columns.push_back(keep_on_device(impl_, exec, gather_column(exec, c, sorted.order.data(), sorted.rows), sorted.rows));
    return out;
  });
}

ChainGroupsOnHost DeviceEngine::reduce_row_chain(const std::vector<ColumnView>& host_columns, size_t rows,
                                                 const std::vector<RowChainStep>& steps, const ChainReduction& reduction) {
  Impl& im = *impl_;
  return checked("row operations and reduce_by_key", im.stream, [&] {
    DeviceArray<char> block;
    const std::vector<ColumnView> columns = im.upload_columns(host_columns, rows, block);
    CudaExec exec(im.pool, im.stream);
    const ChainGroups<CudaExec> reduced = sluice::gpu::reduce_row_chain(exec, columns, rows, steps, reduction);
    ChainGroupsOnHost out;
    out.groups = download_groups(exec, reduced.groups);
    for (const OwnedColumn<CudaExec>& key : reduced.keys) out.keys.push_back(download_column(exec, key, reduced.groups.groups));
    return out;
  });
}

namespace {

/// Parsed records on the device copied to the host (the columns stay resident too).
ParsedRecords download_parsed(const std::shared_ptr<DeviceEngine::Impl>& owner, CudaExec& exec, CsvParseResult<CudaExec>&& parsed) {
  ParsedRecords out;
  out.rows = parsed.rows;
  out.blank = parsed.blank_count;
  download(exec, out.row_index, parsed.row_index, parsed.rows);
  download(exec, out.malformed, parsed.malformed, parsed.malformed_count);
  download(exec, out.needs_host, parsed.needs_host, parsed.needs_host_count);
  for (CsvDeviceColumn<CudaExec>& c : parsed.columns) out.columns.push_back(keep_on_device(owner, exec, std::move(c), parsed.rows));
  return out;
}

}  // namespace

ParsedRecords DeviceEngine::parse_csv(const char* chars, const int32_t* offsets, const uint8_t* line_validity, size_t lines,
                                     const std::vector<CsvFieldSpec>& fields, char delimiter, char quote) {
  Impl& im = *impl_;
  return checked("parse csv", im.stream, [&] {
    DeviceArray<char> block;
    const ColumnView in = im.upload_lines(chars, offsets, line_validity, lines, block);
    CudaExec exec(im.pool, im.stream);
    return download_parsed(impl_, exec, parse_csv_on_device(exec, in.chars, in.offsets, lines, fields.data(), fields.size(), delimiter,
                                                      quote, in.validity));
  });
}

ParsedRecords DeviceEngine::parse_json(const char* chars, const int32_t* offsets, const uint8_t* line_validity, size_t lines,
                                      const std::vector<CsvFieldSpec>& fields, const std::vector<std::string>& names) {
  Impl& im = *impl_;
  return checked("parse json", im.stream, [&] {
    DeviceArray<char> block;
    const ColumnView in = im.upload_lines(chars, offsets, line_validity, lines, block);
    CudaExec exec(im.pool, im.stream);
    std::vector<const char*> name_pointers;
    for (const std::string& n : names) name_pointers.push_back(n.c_str());
    return download_parsed(impl_, exec, parse_json_on_device(exec, in.chars, in.offsets, lines, fields.data(), name_pointers.data(),
                                                       fields.size(), in.validity));
  });
}

JoinPairs DeviceEngine::join(const std::vector<ColumnView>& left_keys, size_t left_rows, const std::vector<ColumnView>& right_keys,
                             size_t right_rows, JoinKind kind) {
  Impl& im = *impl_;
  return checked("join", im.stream, [&] {
    GroupedInput left, right;
    left.rows = left_rows;
    left.keys = left_keys;
    right.rows = right_rows;
    right.keys = right_keys;
    DeviceArray<char> left_block, right_block;
    const GroupedInput l = im.upload(left, left_block);
    const GroupedInput r = im.upload(right, right_block);
    CudaExec exec(im.pool, im.stream);
    return join_on_device(exec, l.keys, left_rows, r.keys, right_rows, kind);
  });
}

namespace {

/// Reduces a batch of host columns on the device: the groups stay there; keys and first rows
/// come back when @p want_groups.
DeviceGroups<CudaExec> reduce_batch(DeviceEngine::Impl& im, CudaExec& exec, const GroupedInput& host_input, bool want_groups,
                                    BatchGroups& out) {
  DeviceArray<char> block;
  const GroupedInput in = im.upload(host_input, block);
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
/// back; the caller's key dictionary rejects the batch).
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
  DeviceGroups<CudaExec> groups = reduce_batch(im, exec, in, /*want_groups=*/true, out.groups);
  if (groups.key_collisions == 0)
    for (const OwnedColumn<CudaExec>& key : gather_keys(exec, in.keys, groups.first_row.data(), groups.groups))
      out.keys.push_back(download_column(exec, key, groups.groups));
  return groups;
}

class DeviceWindow final : public DeviceEngine::Window {
 public:
  DeviceWindow(std::shared_ptr<DeviceEngine::Impl> im, std::vector<FoldView> folds, size_t records_fold, size_t panes, bool invertible)
      : owner_(std::move(im)), im_(*owner_), exec_(im_.pool, im_.stream), fold_count_(folds.size()), ring_(exec_, std::move(folds), records_fold, panes, invertible) {}

  BatchGroups add_batch(const GroupedInput& host_input, bool want_groups) override {
    return checked("window pane", im_.stream, [&] {
      BatchGroups out;
      ring_.add(reduce_batch(im_, exec_, host_input, want_groups, out));
      return out;
    });
  }

  ChainBatchGroups add_row_chain(const std::vector<ColumnView>& host_columns, size_t rows, const std::vector<RowChainStep>& steps,
                                 const ChainReduction& reduction) override {
    return checked("window pane after row operations", im_.stream, [&] {
      ChainBatchGroups out;
      ring_.add(reduce_chain_batch(im_, exec_, host_columns, rows, steps, reduction, out));
      return out;
    });
  }

  WindowGroups slide() override {
    return checked("window slide", im_.stream, [&] {
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
    return checked("update_state_by_key", im_.stream, [&] {
      BatchGroups out;
      const DevicePartial<CudaExec>& s = state_.update(reduce_batch(im_, exec_, host_input, want_groups, out));
      download_partial(exec_, s, state_.fold_count(), state.keys, state.accumulators);
      return out;
    });
  }

  ChainBatchGroups update_row_chain(const std::vector<ColumnView>& host_columns, size_t rows, const std::vector<RowChainStep>& steps,
                                    const ChainReduction& reduction, WindowGroups& state) override {
    return checked("update_state_by_key after row operations", im_.stream, [&] {
      ChainBatchGroups out;
      const DevicePartial<CudaExec>& s = state_.update(reduce_chain_batch(im_, exec_, host_columns, rows, steps, reduction, out));
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

std::shared_ptr<void> DeviceEngine::allocate_pinned(size_t bytes) {
  void* p = nullptr;
  SLUICE_CUDA_TRY(cudaHostAlloc(&p, std::max<size_t>(bytes, 1), cudaHostAllocDefault));
  return std::shared_ptr<void>(p, [](void* q) { cudaFreeHost(q); });
}

DeviceEngine::ReduceTiming DeviceEngine::time_reduce(const GroupedInput& host_input, int repetitions) {
  Impl& im = *impl_;
  return checked("timed reduce_by_key", im.stream, [&] {
    ReduceTiming t;
    cudaEvent_t start = nullptr, stop = nullptr;
    SLUICE_CUDA_TRY(cudaEventCreate(&start));
    SLUICE_CUDA_TRY(cudaEventCreate(&stop));
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
    }
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    std::sort(runs.begin(), runs.end());
    t.best_seconds = runs.front();
    t.median_seconds = runs[runs.size() / 2];
    return t;
  });
}

std::unique_ptr<DeviceEngine::RunningState> DeviceEngine::make_running_state(std::vector<FoldView> folds, size_t records_fold,
                                                                            size_t expire_after) {
  return std::make_unique<DeviceState>(impl_, folds, records_fold, expire_after);
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
