#pragma once
// Plain C++17 descriptions of device work, shared by the CUDA translation units and the
// C++20 host code that calls them (which cannot include CUDA headers through CMake 3.25).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sluice/row_program.hpp"

namespace sluice::gpu {

/// Column types; the values are those of sluice::TypeId (checked where both are visible).
enum ColumnType : int32_t { kBool = 0, kInt32 = 1, kInt64 = 2, kFloat32 = 3, kFloat64 = 4, kString = 5 };

/// One column in the memory of whatever executes the work (device memory on the GPU), in the
/// Arrow layout of sluice::Column.
struct ColumnView {
  int32_t type = kInt64;
  const void* values = nullptr;      ///< fixed-width values
  const uint8_t* validity = nullptr; ///< Arrow validity bitmap; null when every row is valid
  const int32_t* offsets = nullptr;  ///< strings: rows + 1 offsets into chars
  const char* chars = nullptr;       ///< strings
  /// Strings that are spans of a larger text (tokens): string r is chars[offsets[r], ends[r]).
  const int32_t* ends = nullptr;
  /// Set when the caller's view already points into the device engine's memory (a resident
  /// copy of the column): an upload uses it where it is instead of copying it.
  int32_t on_device = 0;
};

/// The view of a column that owns its buffers in an executor's memory (members type,
/// nullable, values, validity, offsets, chars: the device columns of the parsers and chains).
template <class OwnedColumn> ColumnView view_of_owned(const OwnedColumn& c) {
  ColumnView v;
  v.type = c.type;
  v.values = c.type == kString ? nullptr : c.values.data();
  v.validity = c.nullable ? c.validity.data() : nullptr;
  v.offsets = c.type == kString ? c.offsets.data() : nullptr;
  v.chars = c.type == kString ? c.chars.data() : nullptr;
  return v;
}

/// How a fold combines values: sums (and counts) add up and can carry a sign, min and max
/// cannot be subtracted.
enum FoldOp : int32_t { kFoldSum = 0, kFoldMin = 1, kFoldMax = 2, kFoldCountValid = 3, kFoldCountRows = 4 };

/// One accumulator of a keyed reduction: @p op over @p input, accumulated in int64
/// (float_acc = 0) or double (float_acc = 1). CountRows reads no input.
struct FoldView {
  int32_t op = kFoldCountRows;
  int32_t float_acc = 0;
  ColumnView input;
};

enum class GroupStrategy : int32_t { Auto = 0, Hash = 1, Sort = 2 };

/// A keyed reduction over @p rows rows.
struct GroupedInput {
  size_t rows = 0;
  std::vector<ColumnView> keys;      ///< no keys: one group of every row
  std::vector<FoldView> folds;
  const int8_t* row_sign = nullptr;  ///< +1/-1 per row (subtracting a leaving pane); null: all +1
  GroupStrategy strategy = GroupStrategy::Auto;
  /// Hash the keys even when one non-null integer column could be its own 64-bit key, so
  /// that keys stay comparable across batches whose columns differ in nullability.
  bool force_hashed_keys = false;
  /// The one key column is its own 64-bit key (an integer declared not nullable), bitmap or
  /// not: its nulls are counted and a batch with any is reduced no further (take_exact_key).
  bool exact_key = false;
  /// Each row's hashed key as HashedKeyOf computes it from the key columns, already in the
  /// executor's memory (word count computes them as it finds its words); null: computed
  /// here. Ignored for exact keys. Rows are still verified against their group's first row.
  /// The engine's calls that take host inputs drop it (DeviceEngine::Impl::upload).
  const uint64_t* row_hashes = nullptr;
};

/// Groups in order of their first row; accumulators fold-major (fold f of group g at
/// f * groups + g), as raw bits of int64 or double.
struct GroupedResult {
  size_t groups = 0;
  size_t fold_count = 0;
  std::vector<int64_t> first_row;
  std::vector<uint64_t> accumulators;
  GroupStrategy strategy = GroupStrategy::Auto;  ///< the strategy that produced the result
  bool hash_overflowed = false;                  ///< the hash table filled up and sorting took over
  bool direct_block_tables = false;              ///< exact keys went straight to their block-table slots
  bool direct_device_table = false;              ///< exact keys went straight to their device-table slots
  size_t sampled_distinct = 0;                   ///< distinct keys in the strategy sample (Auto only)
  size_t estimated_keys = 0;                     ///< distinct keys of the batch as the sample estimates them
  unsigned long long key_collisions = 0;         ///< rows whose 64-bit key hash met another key
};

/// Distinct words in order of first appearance, with their counts.
struct WordCounts {
  std::vector<int32_t> offsets{0};
  std::string chars;
  std::vector<int64_t> counts;
  size_t words = 0;  ///< words in the input (the sum of counts)
  GroupStrategy strategy = GroupStrategy::Auto;
  unsigned long long key_collisions = 0;
};

/// Rows grouped by key, on the host: a dense group id per row and each group's first row,
/// groups in order of first row. Not exact when key_collisions is not 0.
struct RowGroups {
  std::vector<int32_t> group_of_row;
  std::vector<int64_t> first_row;
  unsigned long long key_collisions = 0;
};

/// One row operation of a chain that runs on the device without leaving it (see
/// run_row_chain): the batch's columns stay in device memory from one step to the next.
struct RowChainStep {
  enum Kind : int32_t {
    kFilter = 0,  ///< keeps the rows where programs[0] (bool) is true; every column is kept
    kMap = 1,     ///< output column k is input column sources[k] when >= 0, else the result
                  ///< of programs[-sources[k] - 1] (select and map_values are maps too)
    kSplit = 2,   ///< flatMap: column split_field (a string) becomes its tokens (split at
                  ///< separator, or at whitespace runs when empty); the other columns repeat
  };
  int32_t kind = kFilter;
  std::vector<const RowProgram*> programs;  ///< compiled for the step's input columns
  std::vector<int32_t> sources;
  int32_t split_field = -1;
  std::string separator;
};

/// The kinds of join; the values are those of sluice::JoinKind (Inner, LeftOuter, RightOuter,
/// FullOuter), so the engine can convert with a static_cast.
enum class JoinKind : int32_t { Inner = 0, LeftOuter = 1, RightOuter = 2, FullOuter = 3 };

/// Where a column of a join's result takes its rows from (join_result_columns' From).
enum JoinColumnFrom : int32_t {
  kJoinFromKeys = 0,   ///< the left key's rows, then (right-only rows) the right key's
  kJoinFromLeft = 1,   ///< the left column's rows; null where a row has no left side
  kJoinFromRight = 2,  ///< the right column's rows; null where a row has no right side
};

/// One column of a join's result to gather on the device (DeviceEngine::join_rows): its
/// source columns, by index among the left and the right columns given (-1 for a side it
/// does not read), and whether it must have a bitmap.
struct JoinColumnSpec {
  int32_t from = kJoinFromKeys;
  int32_t left_column = -1;
  int32_t right_column = -1;
  uint8_t nullable = 0;
};

/// The pairs of a join, on the host: output row o joins left row left_rows[o] with right row
/// right_rows[o]; -1 stands for the missing side of an outer join.
struct JoinPairs {
  std::vector<int64_t> left_rows;
  std::vector<int64_t> right_rows;
  /// The same pairs where the device engine found them (DeviceEngine::join), for join_rows to
  /// gather from without copying them back; null otherwise. Whoever changes the pairs above
  /// resets it.
  std::shared_ptr<const void> on_device;
  /// Output rows [0, rows_with_left) have a left row; the rest (right and full outer joins)
  /// are right rows without a match, as join_tables lays them out.
  size_t rows_with_left = 0;
  /// Candidate pairs whose 64-bit keys were equal but whose key values differed. They were
  /// dropped, so the pairs are exact regardless; a caller that wants a belt-and-braces
  /// policy may still redo the batch on the CPU when this is not 0.
  unsigned long long key_collisions = 0;
  /// Candidate pairs examined (matched 64-bit keys), including the collisions.
  size_t candidates = 0;
  /// Whether the keys were compared as exact 64-bit integers (no hashing, no verification).
  bool exact_keys = false;
};

/// A declared CSV field: its type (a ColumnType, never a list) and whether it may be null.
struct CsvFieldSpec {
  int32_t type = kString;
  int32_t nullable = 0;
};

class ResidentCopy;

/// One column the device made, in the Arrow layout: copied to the host, or left on the device
/// until the host needs it.
struct HostColumnBuffers {
  int32_t type = kString;
  bool nullable = false;
  /// False when the engine left the column on the device only: the buffers below are empty,
  /// and `resident` copies them to the host when asked.
  bool on_host = true;
  std::vector<std::byte> values;
  std::vector<uint8_t> validity;
  std::vector<int32_t> offsets;
  std::vector<char> chars;
  /// The device copy the engine kept of the same column (null when it kept none, e.g. over
  /// its budget for resident columns): `resident` owns the memory `resident_view` points to.
  std::shared_ptr<const ResidentCopy> resident;
  ColumnView resident_view;
};

/// A column the engine kept on the device (HostColumnBuffers::resident); it keeps the engine's
/// pool and device alive.
class ResidentCopy {
 public:
  virtual ~ResidentCopy() = default;
  /// The column copied to the host (on_host set, no resident): from any thread, on a stream
  /// of its own, without waiting for the engine's other work.
  virtual HostColumnBuffers copy_to_host() const = 0;
  /// Its rows @p at (each below its row count) gathered on the device and copied to the host
  /// in the same way: a group's key values, without copying the whole column back.
  virtual HostColumnBuffers rows_to_host(const std::vector<int64_t>& at) const = 0;
};

/// A string column split into tokens (flatMap): the tokens (a string column, left on the
/// device) and, per token on the host, the input row it came from.
struct SplitColumn {
  HostColumnBuffers tokens;
  std::vector<int64_t> source_rows;
};

/// The columns of a row chain's last step, on the host.
struct RowChainOutput {
  size_t rows = 0;
  /// Per output column: the input column it is, unchanged (the caller has it), or -1 when
  /// columns[k] holds it.
  std::vector<int32_t> input_column;
  std::vector<HostColumnBuffers> columns;
};

/// One side of group_by_key's or cogroup's lists (DeviceEngine::group_lists): rows
/// [row_begin, row_end) of the grouped keys, whose list elements are @p columns' rows (from
/// 0), each with a bitmap where @p nullable says or its source has one.
struct ListSource {
  size_t row_begin = 0;
  size_t row_end = 0;
  std::vector<ColumnView> columns;
  std::vector<uint8_t> nullable;
};

/// Rows grouped by key, groups in order of first row, with each side's lists made on the
/// device: per group its first row, and per side the lists' offsets (groups + 1, on the
/// host) and their elements (each group's rows in row order), left on the device. Not made
/// when key_collisions is not 0.
struct RowLists {
  std::vector<int64_t> first_row;
  std::vector<std::vector<int32_t>> list_offsets;
  std::vector<RowChainOutput> elements;
  unsigned long long key_collisions = 0;
};

/// A key of a sort: a column (by index among the sorted columns) and its order.
struct SortKeySpec {
  int32_t column = 0;
  int32_t descending = 0;
};

/// A keyed reduction of the columns a row chain makes, named by their indexes among them.
struct ChainReduction {
  std::vector<int32_t> key_columns;
  /// The folds; each fold's input is column fold_columns[f] of the chain's output (the view
  /// is filled in on the device), or none when that is -1 (CountRows).
  std::vector<FoldView> folds;
  std::vector<int32_t> fold_columns;
  bool force_hashed_keys = false;  ///< as GroupedInput::force_hashed_keys
  bool exact_key = false;          ///< as GroupedInput::exact_key
};

/// The groups of a ChainReduction on the host: as a GroupedResult (first rows are rows of
/// the chain's output), and the key columns of each group's first row (none after a key
/// collision).
struct ChainGroupsOnHost {
  GroupedResult groups;
  std::vector<HostColumnBuffers> keys;
};

/// Delimited records parsed on the device: the good rows' columns and their input lines, and
/// the lines the host must parse (malformed ones, for the host's reasons, and those the
/// device leaves to the host), all ascending.
struct ParsedRecords {
  size_t rows = 0;
  std::vector<HostColumnBuffers> columns;
  /// Each row's line; left empty when rows_are_lines (row r is line r), the common case,
  /// which then copies nothing back per row.
  std::vector<int64_t> row_index;
  bool rows_are_lines = false;
  std::vector<int64_t> malformed;
  std::vector<int64_t> needs_host;
  size_t blank = 0;
};

}  // namespace sluice::gpu
