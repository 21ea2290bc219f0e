#pragma once
// The device side of the CUDA backend as host code sees it (C++17, no CUDA headers): one
// device, one stream, a stream-ordered memory pool and page-locked staging. Inputs are host
// columns; they are staged into pinned memory, copied to the device in one asynchronous copy
// and processed there; only results (one row per key) come back. Columns the engine makes
// (parsed records, expression results, row chain outputs) stay on the device
// (HostColumnBuffers::resident) while the caller keeps them: an input view marked on_device is
// read in place instead of being copied in again, and the host copies a column back only
// when it reads it (within a per-device budget; past it, columns come back at once).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gpu_types.hpp"
#include "sluice/row_program.hpp"

namespace sluice::gpu {

struct MemoryStats {
  uint64_t pool_reserved_bytes = 0;  ///< device memory the pool holds (in use or kept for reuse)
  uint64_t pool_used_bytes = 0;
  uint64_t pinned_staging_bytes = 0;
  uint64_t bytes_copied_to_device = 0;  ///< since the engine started
  uint64_t bytes_prefetched = 0;        ///< copied ahead on the copy stream
  uint64_t bytes_from_prefetch = 0;     ///< uploads served from prefetched copies
  uint64_t resident_bytes = 0;          ///< device copies kept of columns the engine made
  uint64_t resident_columns_used = 0;   ///< column reads (keys, fold inputs, ...) served by them
  uint64_t columns_left_on_device = 0;  ///< columns made without a host copy (copied back on demand)
  uint64_t columns_copied_back = 0;     ///< of those, the ones a host read copied back
  uint64_t bytes_copied_back = 0;
};

/// The window of a keyed aggregation after a slide: 64-bit keys and accumulators
/// (fold-major), in the order of the CPU backend.
struct WindowGroups {
  std::vector<uint64_t> keys;
  std::vector<uint64_t> accumulators;
  size_t groups() const { return keys.size(); }
};

/// One batch's groups as the window saw them: their 64-bit keys and first rows.
struct BatchGroups {
  std::vector<uint64_t> keys;
  std::vector<int64_t> first_row;
  unsigned long long key_collisions = 0;
  /// GroupedInput::exact_key: rows whose key is null; the batch then changed nothing.
  size_t null_keys = 0;
};

/// A batch's groups as a window (or running state) saw them after row operations made its
/// columns on the device: as BatchGroups, and the key columns of each group's first row (none
/// after a key collision).
struct ChainBatchGroups {
  BatchGroups groups;
  std::vector<HostColumnBuffers> keys;  ///< none for an exact key (its value is the key)
};

class DeviceEngine {
 public:
  /// Selects @p device and creates the stream, the pool and the staging buffer.
  explicit DeviceEngine(int device);
  ~DeviceEngine();
  DeviceEngine(const DeviceEngine&) = delete;
  DeviceEngine& operator=(const DeviceEngine&) = delete;

  /// "NVIDIA H100 80GB HBM3 (sm_90, 81079 MiB)"
  const std::string& description() const;
  /// Tells engines apart (resident columns are read in place only by the engine that made
  /// them, on its stream).
  const void* identity() const;

  /// reduceByKey of host columns (pointers in @p host_input are host memory).
  GroupedResult reduce(const GroupedInput& host_input);

  /// Groups @p rows rows by @p host_keys (host memory): group_by_key and cogroup.
  RowGroups group_rows(const std::vector<ColumnView>& host_keys, size_t rows);

  /// Groups @p rows rows by @p host_keys and makes each side's lists on the device: the
  /// rows are ordered by group there and the sides' columns gathered there, where they stay;
  /// only the groups' first rows and the lists' offsets come back (group_by_key, cogroup).
  /// Columns are host or device views, as upload_columns takes them.
  RowLists group_lists(const std::vector<ColumnView>& host_keys, size_t rows, const std::vector<ListSource>& sides);

  /// Word count of @p lines Arrow strings (host memory): the bytes go to the device, only the
  /// distinct words and their counts come back.
  WordCounts count_words(const char* chars, const int32_t* offsets, size_t lines, GroupStrategy strategy = GroupStrategy::Auto);

  /// Splits each valid string of the string column @p text (@p rows rows, host memory or
  /// resident) into tokens: at runs of whitespace when @p separator is empty, otherwise at
  /// each occurrence of it.
  SplitColumn split_strings(const ColumnView& text, size_t rows, const std::string& separator);

  /// Evaluates each of @p programs (expressions compiled for one table) on @p rows rows.
  /// @p host_columns are the table's columns (host or resident), indexed as RowProgram::fields
  /// index them; columns left empty (ColumnView{}) are not copied, the others once for all
  /// programs. The results are left on the device (HostColumnBuffers::resident).
  std::vector<HostColumnBuffers> evaluate(const std::vector<const RowProgram*>& programs, const std::vector<ColumnView>& host_columns,
                                          size_t rows);
  /// A filter: the rows where the bool @p predicate is true, ascending (the predicate writes a
  /// byte mask on the device, which the stream compaction there reads).
  std::vector<int64_t> select_rows(const RowProgram& predicate, const std::vector<ColumnView>& host_columns, size_t rows);

  /// Runs @p steps (row operations) over @p rows rows of @p host_columns (the batch's
  /// columns, host or resident), copied to the device once; only the last step's new columns
  /// are returned, left on the device (HostColumnBuffers::resident).
  RowChainOutput run_row_chain(const std::vector<ColumnView>& host_columns, size_t rows, const std::vector<RowChainStep>& steps);
  /// Rows @p at (each below @p rows) of @p columns (host or resident), gathered on the device
  /// and left there as run_row_chain's columns are (group_by_key's and cogroup's keys and
  /// list elements). Column k has a bitmap when @p nullable[k] is set or its source has one.
  RowChainOutput gather_rows(const std::vector<ColumnView>& columns, size_t rows, const std::vector<int64_t>& at,
                             const std::vector<uint8_t>& nullable);
  /// The rows of @p first (@p first_rows), then those of @p second (@p second_rows), host or
  /// resident columns of one type, as one column made on the device and left there (cogroup's
  /// keys of both sides); it has a bitmap when @p nullable is set or either side has one.
  RowChainOutput concatenate(const ColumnView& first, size_t first_rows, const ColumnView& second, size_t second_rows,
                             bool nullable);
  /// A join's result columns @p outputs, gathered on the device from @p left (@p left_rows
  /// rows) and @p right (@p right_rows rows), host or resident columns, over @p pairs (-1 for
  /// a side a row lacks, the first rows_with_left rows with a left row), and left there as
  /// run_row_chain's columns are. Pairs this engine's join() found are read where they are;
  /// others are checked and copied in.
  RowChainOutput join_rows(const std::vector<ColumnView>& left, size_t left_rows, const std::vector<ColumnView>& right,
                           size_t right_rows, const std::vector<JoinColumnSpec>& outputs, const JoinPairs& pairs);
  /// transform's sort_by and limit: the rows of @p columns (host or resident) in a stable
  /// sort by @p keys, the first @p limit of them (all when negative), gathered on the device
  /// and left there as run_row_chain's columns are (no output is an input column).
  RowChainOutput sort_rows(const std::vector<ColumnView>& columns, size_t rows, const std::vector<SortKeySpec>& keys, int64_t limit);

  /// Runs @p steps as run_row_chain does, then reduces the last step's columns by key where
  /// they are: only the groups and their keys come back (reduceByKey after row operations).
  ChainGroupsOnHost reduce_row_chain(const std::vector<ColumnView>& host_columns, size_t rows, const std::vector<RowChainStep>& steps,
                                     const ChainReduction& reduction);

  /// Parses delimited records (Arrow strings in host memory, @p line_validity optional) of
  /// the declared @p fields on the device; the parsed columns are returned, left on the device.
  ParsedRecords parse_csv(const char* chars, const int32_t* offsets, const uint8_t* line_validity, size_t lines,
                          const std::vector<CsvFieldSpec>& fields, char delimiter, char quote);
  /// Parses JSON records (one object, by field name, or array, by position, per line).
  ParsedRecords parse_json(const char* chars, const int32_t* offsets, const uint8_t* line_validity, size_t lines,
                           const std::vector<CsvFieldSpec>& fields, const std::vector<std::string>& names);

  /// Joins within a batch: the (left row, right row) pairs of rows with equal keys, in the
  /// CPU backend's order (key columns in host memory); the device keeps them too, for
  /// join_rows, for as long as the returned pairs live.
  JoinPairs join(const std::vector<ColumnView>& left_keys, size_t left_rows, const std::vector<ColumnView>& right_keys,
                 size_t right_rows, JoinKind kind);

  /// A sliding window of per-key partials kept on the device.
  class Window {
   public:
    virtual ~Window() = default;
    /// Reduces a batch (host columns) into the open pane. Returns the batch's keys and first
    /// rows when @p want_groups (callers with hashed keys map them to key values).
    virtual BatchGroups add_batch(const GroupedInput& host_input, bool want_groups) = 0;
    /// Runs @p steps over a batch (host or resident columns) and reduces their output by
    /// @p reduction into the open pane, where the steps left it; the batch's keys, first rows
    /// and key columns at those rows come back (callers with hashed keys map them to values),
    /// none of them for an exact key. A batch with a null exact key changes nothing
    /// (BatchGroups::null_keys), here and in add_batch.
    virtual ChainBatchGroups add_row_chain(const std::vector<ColumnView>& host_columns, size_t rows,
                                           const std::vector<RowChainStep>& steps, const ChainReduction& reduction) = 0;
    /// Closes the open pane, slides, and copies the window's groups to the host.
    virtual WindowGroups slide() = 0;
  };
  /// @p folds: the batch folds; @p records_fold: index of the CountRows fold.
  std::unique_ptr<Window> make_window(std::vector<FoldView> folds, size_t records_fold, size_t panes, bool invertible);

  /// Running per-key state (update_state_by_key) kept on the device.
  class RunningState {
   public:
    virtual ~RunningState() = default;
    /// Folds a batch (host columns) into the state and copies the whole state to the host
    /// into @p state (accumulators: the batch folds, then each key's last batch). Returns
    /// the batch's keys and first rows when @p want_groups.
    virtual BatchGroups update(const GroupedInput& host_input, bool want_groups, WindowGroups& state) = 0;
    /// The same for what row operations @p steps make of a batch (host or resident
    /// columns), reduced by @p reduction where the steps left it, as Window::add_row_chain.
    virtual ChainBatchGroups update_row_chain(const std::vector<ColumnView>& host_columns, size_t rows,
                                              const std::vector<RowChainStep>& steps, const ChainReduction& reduction,
                                              WindowGroups& state) = 0;
  };
  /// @p expire_after: batches without a record after which a key is dropped (0: never).
  std::unique_ptr<RunningState> make_running_state(std::vector<FoldView> folds, size_t records_fold, size_t expire_after);

  MemoryStats memory() const;

  /// Starts copying @p buffers (host memory: address, bytes) of the source batch @p batch to
  /// the device on a copy stream of their own. A later upload of the same buffer (same
  /// address and size) copies device to device instead: the host-to-device copy of a batch
  /// overlaps the processing of the batch before. Callable from another thread than the rest.
  void prefetch(int64_t batch, const std::vector<std::pair<const void*, size_t>>& buffers);
  /// Drops what was prefetched for batches up to @p through (their host buffers may go).
  void retire_prefetched(int64_t through);

  /// Page-locked host memory: inputs that already live there are copied to the device
  /// directly, without the staging copy (sources can read into it).
  std::shared_ptr<void> allocate_pinned(size_t bytes);

  /// For benchmarks: copies @p host_input to the device once, then times @p repetitions
  /// reductions of the device-resident columns with CUDA events (best and median).
  struct ReduceTiming {
    double copy_seconds = 0;
    double best_seconds = 0;
    double median_seconds = 0;
    size_t groups = 0;
    GroupStrategy strategy = GroupStrategy::Auto;
    size_t estimated_keys = 0;  ///< the keys Auto's sample estimated
    bool direct_block_tables = false;  ///< exact keys went straight to their block-table slots
    bool direct_device_table = false;  ///< exact keys went straight to their device-table slots
  };
  ReduceTiming time_reduce(const GroupedInput& host_input, int repetitions);

  struct Impl;  // defined in gpu_engine.cu

 private:
  // Shared with the windows and states it made: they may outlive the engine (a stream
  // handle can keep an operator alive after its context), and their device memory must be
  // returned to a live pool on a live stream.
  std::shared_ptr<Impl> impl_;
};

}  // namespace sluice::gpu
