#pragma once
// The device engine's state (DeviceEngine::Impl: its stream, pool, pinned staging,
// prefetches and resident columns) and the helpers its operators share, for the units that
// implement DeviceEngine: gpu_engine.cu (the engine, keyed reductions, grouping, word count),
// gpu_engine_windows.cu (windows, running state), gpu_engine_rows.cu (expressions, filters,
// splits, sorts, joins), gpu_engine_chains.cu (chains of row operations) and
// gpu_engine_parse.cu (CSV and JSON records): several units, so that nvcc compiles them in
// parallel.
#include <thrust/system/cuda/error.h>
#include <thrust/system_error.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "csv_parse.cuh"  // csv_type_width
#include "cuda_exec.cuh"
#include "device_runtime.hpp"
#include "gpu_engine.hpp"
#include "row_chain.cuh"  // OwnedColumn, gather_column
#include "staging.hpp"

namespace sluice::gpu {
namespace engine_detail {

inline constexpr size_t kAlign = 256;
/// Host-to-device copies of staged inputs go in chunks of this size (double-buffered).
inline constexpr size_t kStagingChunk = size_t{16} << 20;
inline size_t aligned(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

/// Waits for what is queued on @p stream after a failure, so that no copy from a caller's
/// buffers is still running when the error reaches the caller (errors are already failing).
inline void drain(cudaStream_t stream) {
  (void)cudaStreamSynchronize(stream);
  (void)cudaGetLastError();
}

/// Makes @p device current for a scope and restores the caller's device after, where they
/// differ only (setting one where none was current would make a context nobody wanted): for
/// work on an engine's device from threads that may use another (copies back, frees).
class DeviceScope {
 public:
  explicit DeviceScope(int device) noexcept {
    status_ = cudaGetDevice(&caller_);
    if (status_ == cudaSuccess && caller_ != device) {
      status_ = cudaSetDevice(device);
      restore_ = status_ == cudaSuccess;
    }
  }
  ~DeviceScope() {
    if (restore_ && cudaSetDevice(caller_) != cudaSuccess) (void)cudaGetLastError();
  }
  DeviceScope(const DeviceScope&) = delete;
  DeviceScope& operator=(const DeviceScope&) = delete;
  cudaError_t status() const { return status_; }

 private:
  int caller_ = 0;
  bool restore_ = false;
  cudaError_t status_ = cudaSuccess;
};

/// Runs @p body on @p device (made current for the calling thread, which the engine's
/// operators run on), surfacing asynchronous errors of the stream before returning. A
/// failure of the device (a CUDA call, Thrust's CUDA errors, device memory) becomes a
/// sluice::Error naming @p what; other errors (a malformed request) already name what was
/// wrong.
template <class Body> auto checked(const char* what, int device, cudaStream_t stream, Body&& body) {
  try {
    SLUICE_CUDA_TRY(cudaSetDevice(device));
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

inline ResidentBudget& resident_budget_of(int device) {
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

}  // namespace engine_detail

using namespace engine_detail;

struct DeviceEngine::Impl {
  explicit Impl(int device_) : device(device_), pool((select(device_), device_)) {
    description = sluice::cuda::device_description(device);
    SLUICE_CUDA_TRY(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    SLUICE_CUDA_TRY(cudaStreamCreateWithFlags(&copy_stream, cudaStreamNonBlocking));
    for (cudaEvent_t& e : staging_free) SLUICE_CUDA_TRY(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
  }
  ~Impl() {
    const DeviceScope engine_device(device);  // the last reference may go on any thread
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
    const DeviceScope engine_device(device);
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
    // Given hashes are the executor's memory (GroupedInput::row_hashes); a host caller's
    // could not be read on the device, so the device computes its own.
    out.row_hashes = nullptr;
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
      CudaEvent ready(cudaEventDisableTiming);
      p.device = pool.allocate(bytes, copy_stream);
      p.ready = ready.get();
      try {
        // From pageable memory the call returns once the driver has staged the bytes: the
        // batch may be handed on right after.
        SLUICE_CUDA_TRY(cudaMemcpyAsync(p.device, host, bytes, cudaMemcpyHostToDevice, copy_stream));
        SLUICE_CUDA_TRY(cudaEventRecord(p.ready, copy_stream));
        std::lock_guard lock(prefetch_mutex);
        auto [it, inserted] = prefetched.emplace(host, p);
        if (!inserted) {
          retire(it->second);
          it->second = p;
        }
      } catch (...) {
        pool.release(p.device, copy_stream);
        throw;
      }
      ready.release();  // the map's entry owns it now
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

  /// Frees a prefetched copy after its copy and every use queued on the stream so far; never
  /// throws, so that an entry is never left holding what was freed.
  void retire(Prefetched& p) noexcept {
    if (cudaStreamWaitEvent(stream, p.ready, 0) != cudaSuccess) {
      (void)cudaGetLastError();
      (void)cudaEventSynchronize(p.ready);  // the stream cannot wait for the copy: the host does
    }
    pool.release(p.device, stream);
    (void)cudaEventDestroy(p.ready);
    p.device = nullptr;
    p.ready = nullptr;
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
    const DeviceScope engine_device(device);
    SLUICE_CUDA_TRY(engine_device.status());
    if (!copy_back_stream) SLUICE_CUDA_TRY(cudaStreamCreateWithFlags(&copy_back_stream, cudaStreamNonBlocking));
    HostColumnBuffers out = checked("copying a column the device made back to the host", device, copy_back_stream, [&] {
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
  std::atomic<uint64_t> bytes_copied{0};  // read by memory() from any thread
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

namespace engine_detail {

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
inline DeviceArray<int64_t> rows_on_device(CudaExec& exec, const std::vector<int64_t>& at, size_t rows, const char* what) {
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

/// Rows @p order[0, n) (device memory) of each of @p columns (device views), gathered and kept
/// on the device as run_row_chain's outputs are (none is an input column passed on). Column k
/// has a bitmap when @p nullable[k] is set or its source has one.
inline RowChainOutput gathered_on_device(const std::shared_ptr<DeviceEngine::Impl>& owner, CudaExec& exec,
                                         const std::vector<ColumnView>& columns, const int64_t* order, size_t n,
                                         const std::vector<uint8_t>& nullable) {
  RowChainOutput out;
  out.rows = n;
  out.input_column.assign(columns.size(), -1);
  for (size_t k = 0; k < columns.size(); ++k) {
    const bool with_bitmap = nullable[k] != 0 || columns[k].validity != nullptr;
    out.columns.push_back(keep_on_device(owner, exec, detail::gather_column(exec, columns[k], with_bitmap, order, n), n));
  }
  return out;
}

}  // namespace engine_detail
}  // namespace sluice::gpu
