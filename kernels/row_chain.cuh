#pragma once
// A chain of consecutive row operations (filter, map/select, flatMap split: RowChainStep) run
// on one executor without leaving it: the batch's columns are read where they are, each step
// makes its columns from the previous step's, and only the last step's columns are the
// caller's to copy out. Written once against an execution context (CudaExec on the GPU,
// HostExec in the host tests), like the other kernels.
//
// Results equal the host operators' (Table::filter, Expression::evaluate, split_rows) column
// for column: null rows hold 0 (strings: no bytes), validity bitmaps have zero padding bits,
// gathered strings are compact (a token source with `ends` becomes plain offsets).
//
// C++17: nvcc here has no C++20 dialect through CMake.
#include <thrust/for_each.h>
#include <thrust/iterator/counting_iterator.h>
#include <thrust/reduce.h>
#include <thrust/scan.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "csv_parse.cuh"       // csv_type_width
#include "gpu_types.hpp"
#include "grouped_reduce.cuh"  // valid_at, string_end
#include "row_program.cuh"
#include "sluice/error.hpp"
#include "split_strings.cuh"

namespace sluice::gpu {

/// One column's buffers in @p Exec memory, in the Arrow layout of sluice::Column.
template <class Exec> struct OwnedColumn {
  int32_t type = kInt64;
  size_t rows = 0;
  bool nullable = false;
  typename Exec::template Array<char> values;      ///< fixed-width: rows * width bytes
  typename Exec::template Array<uint8_t> validity; ///< nullable: (rows + 7) / 8 bytes, padding bits 0
  typename Exec::template Array<int32_t> offsets;  ///< strings: rows + 1, from 0
  typename Exec::template Array<char> chars;       ///< strings: offsets[rows] bytes

  ColumnView view() const { return view_of_owned(*this); }
};

// ---------------------------------------------------------------- validity

/// One validity byte per row packed into an Arrow bitmap, a byte of the bitmap per thread.
struct PackValidity {
  const uint8_t* valid;
  int64_t rows;
  uint8_t* bitmap;
  __host__ __device__ void operator()(int64_t byte) const {
    uint8_t bits = 0;
    for (int64_t k = 0; k < 8 && byte * 8 + k < rows; ++k) bits |= static_cast<uint8_t>((valid[byte * 8 + k] != 0) << k);
    bitmap[byte] = bits;
  }
};

/// @p rows validity bytes (1 = valid) in @p Exec memory as a bitmap of (rows + 7) / 8 bytes.
template <class Exec> typename Exec::template Array<uint8_t> pack_validity(Exec& exec, const uint8_t* valid, size_t rows) {
  const size_t bytes = (rows + 7) / 8;
  auto bitmap = exec.template alloc<uint8_t>(bytes);
  if (bytes > 0)
    thrust::for_each_n(exec.policy(), thrust::counting_iterator<int64_t>(0), static_cast<int64_t>(bytes),
                       PackValidity{valid, static_cast<int64_t>(rows), bitmap.data()});
  return bitmap;
}

/// @p bound's result over @p rows rows: values (or strings) and, when @p nullable, its
/// validity bytes packed into a bitmap.
template <class Exec>
OwnedColumn<Exec> evaluate_column(Exec& exec, const BoundRowProgram<Exec>& bound, size_t rows, bool nullable) {
  OwnedColumn<Exec> out;
  out.type = bound.program.result_type();
  out.rows = rows;
  out.nullable = nullable;
  typename Exec::template Array<uint8_t> valid;
  if (out.type == kString) {
    StringRows<Exec> strings = evaluate_string_rows(exec, bound.program, bound.inputs.data(), rows);
    out.offsets = std::move(strings.offsets);
    out.chars = std::move(strings.chars);
    valid = std::move(strings.valid);
  } else {
    out.values = exec.template alloc<char>(rows * static_cast<size_t>(csv_type_width(out.type)));
    valid = exec.template alloc<uint8_t>(rows);
    evaluate_rows(exec, bound.program, bound.inputs.data(), rows, out.values.data(), valid.data());
  }
  if (nullable) out.validity = pack_validity(exec, valid.data(), rows);
  return out;
}

// ---------------------------------------------------------------- gathers

/// Row i of a gather is row i of the source: a copy through the gather's code.
struct IdentityRows {
  __host__ __device__ int64_t operator[](int64_t i) const { return i; }
};

// How a gather reads row r of its source. A source is a column view, or the two sides of a
// join result column (JoinSides), where a negative row is a null.
__host__ __device__ inline bool gathered_valid(const ColumnView& c, int64_t r) { return valid_at(c, r); }
template <class Word> __host__ __device__ Word gathered_word(const ColumnView& c, int64_t r) {
  return static_cast<const Word*>(c.values)[r];
}
__host__ __device__ inline int32_t gathered_length(const ColumnView& c, int64_t r) { return string_end(c, r) - c.offsets[r]; }
__host__ __device__ inline const char* gathered_bytes(const ColumnView& c, int64_t r) { return c.chars + c.offsets[r]; }

/// The two columns a join result column is gathered from, as one source: rows [0, left_rows)
/// are the left column's, rows from left_rows on the right column's; a negative row is null
/// (the side a row of an outer join lacks).
struct JoinSides {
  int32_t type = kInt64;
  ColumnView left;
  ColumnView right;
  int64_t left_rows = 0;
};
__host__ __device__ inline bool gathered_valid(const JoinSides& s, int64_t r) {
  return r >= 0 && (r < s.left_rows ? valid_at(s.left, r) : valid_at(s.right, r - s.left_rows));
}
template <class Word> __host__ __device__ Word gathered_word(const JoinSides& s, int64_t r) {
  return r < s.left_rows ? gathered_word<Word>(s.left, r) : gathered_word<Word>(s.right, r - s.left_rows);
}
__host__ __device__ inline int32_t gathered_length(const JoinSides& s, int64_t r) {
  return r < s.left_rows ? gathered_length(s.left, r) : gathered_length(s.right, r - s.left_rows);
}
__host__ __device__ inline const char* gathered_bytes(const JoinSides& s, int64_t r) {
  return r < s.left_rows ? gathered_bytes(s.left, r) : gathered_bytes(s.right, r - s.left_rows);
}

/// Output bitmap byte per thread, so that no two threads write one byte.
template <class Rows, class Source = ColumnView> struct GatherValidity {
  Source source;
  Rows rows;
  int64_t n;
  uint8_t* bitmap;
  __host__ __device__ void operator()(int64_t byte) const {
    uint8_t bits = 0;
    for (int64_t k = 0; k < 8 && byte * 8 + k < n; ++k)
      bits |= static_cast<uint8_t>(gathered_valid(source, rows[byte * 8 + k]) << k);
    bitmap[byte] = bits;
  }
};

/// Fixed-width values as unsigned words of their width (bits copied as they are, NaN payloads
/// included); null rows get 0, as the host's gather appends them.
template <class Word, class Rows, class Source = ColumnView> struct GatherWords {
  Source source;
  Rows rows;
  Word* out;
  __host__ __device__ void operator()(int64_t i) const {
    const int64_t r = rows[i];
    out[i] = gathered_valid(source, r) ? gathered_word<Word>(source, r) : Word{0};
  }
};

/// Pass 1 of a string gather: each output row's length (0 when null) where its offset goes.
template <class Rows, class Source = ColumnView> struct GatherStringLengths {
  Source source;
  Rows rows;
  int32_t* lengths;
  __host__ __device__ void operator()(int64_t i) const {
    const int64_t r = rows[i];
    lengths[i] = gathered_valid(source, r) ? gathered_length(source, r) : 0;
  }
};

/// Pass 2 of a string gather: each output row's bytes at its offset.
template <class Rows, class Source = ColumnView> struct GatherStringBytes {
  Source source;
  Rows rows;
  const int32_t* offsets;
  char* chars;
  __host__ __device__ void operator()(int64_t i) const {
    const int32_t to = offsets[i];
    const int32_t n = offsets[i + 1] - to;
    if (n == 0) return;
    const char* from = gathered_bytes(source, rows[i]);
    for (int32_t k = 0; k < n; ++k) chars[to + k] = from[k];
  }
};

/// Turns the @p n lengths at the front of @p offsets (n + 1 slots) into offsets in place and
/// returns the total. Summed in int64 first: the int32 scan would overflow silently.
/// @throw sluice::Error naming @p what and the size when the total is over INT32_MAX bytes.
template <class Exec> size_t lengths_to_offsets(Exec& exec, int32_t* offsets, size_t n, const std::string& what) {
  const int32_t zero = 0;
  // The slot after the last length makes the exclusive scan's last entry the total.
  exec.to_device(offsets + n, &zero, sizeof zero);
  if (n == 0) return 0;
  const int64_t total = thrust::reduce(exec.policy(), offsets, offsets + n, int64_t{0});
  SLUICE_EXPECTS(total <= INT32_MAX, what + ": " + std::to_string(n) + " strings of " + std::to_string(total) +
                                         " bytes, over the " + std::to_string(INT32_MAX) +
                                         " that a string column's int32 offsets address");
  thrust::exclusive_scan(exec.policy(), offsets, offsets + n + 1, offsets);
  return static_cast<size_t>(total);
}

namespace detail {

template <class Exec, class Word, class Rows, class Source>
void gather_words(Exec& exec, const Source& source, Rows rows, size_t n, OwnedColumn<Exec>& out) {
  out.values = exec.template alloc<char>(n * sizeof(Word));
  thrust::for_each_n(exec.policy(), thrust::counting_iterator<int64_t>(0), static_cast<int64_t>(n),
                     GatherWords<Word, Rows, Source>{source, rows, reinterpret_cast<Word*>(out.values.data())});
}

/// Rows @p rows[0, n) of @p source (a column view or JoinSides); @p nullable says whether the
/// result has a bitmap (a source of no rows has none to tell).
template <class Exec, class Rows, class Source>
OwnedColumn<Exec> gather_column(Exec& exec, const Source& source, bool nullable, Rows rows, size_t n) {
  OwnedColumn<Exec> out;
  out.type = source.type;
  out.rows = n;
  out.nullable = nullable;
  const auto all = thrust::counting_iterator<int64_t>(0);
  const auto count = static_cast<int64_t>(n);
  switch (source.type) {
    case kBool: gather_words<Exec, uint8_t>(exec, source, rows, n, out); break;
    case kInt32:
    case kFloat32: gather_words<Exec, uint32_t>(exec, source, rows, n, out); break;
    case kInt64:
    case kFloat64: gather_words<Exec, uint64_t>(exec, source, rows, n, out); break;
    case kString: {
      out.offsets = exec.template alloc<int32_t>(n + 1);
      if (n > 0) thrust::for_each_n(exec.policy(), all, count, GatherStringLengths<Rows, Source>{source, rows, out.offsets.data()});
      const size_t bytes = lengths_to_offsets(exec, out.offsets.data(), n, "gather of a string column");
      out.chars = exec.template alloc<char>(bytes);
      if (bytes > 0)
        thrust::for_each_n(exec.policy(), all, count, GatherStringBytes<Rows, Source>{source, rows, out.offsets.data(), out.chars.data()});
      break;
    }
    default: throw Error("gather: column type " + std::to_string(source.type) + " is not bool, int32, int64, float32, float64 or string");
  }
  if (nullable) {
    const size_t bytes = (n + 7) / 8;
    out.validity = exec.template alloc<uint8_t>(bytes);
    if (bytes > 0)
      thrust::for_each_n(exec.policy(), all, static_cast<int64_t>(bytes), GatherValidity<Rows, Source>{source, rows, count, out.validity.data()});
  }
  return out;
}

}  // namespace detail

/// Rows @p rows[0, n) (in Exec memory, each < the source's rows) of @p source, in that order,
/// as a column of its own: nullable when the source has a validity bitmap; strings compact
/// (a token source with `ends` included).
/// @throw sluice::Error for a type that is not a column's (a list), or when the strings
/// gathered exceed the 2^31 - 1 bytes that int32 offsets address.
template <class Exec>
OwnedColumn<Exec> gather_column(Exec& exec, const ColumnView& source, const int64_t* rows, size_t n) {
  return detail::gather_column(exec, source, source.validity != nullptr, rows, n);
}

/// Output row o of a join takes row left_at[o] of the left side and right_at[o] of the right
/// (-1: none); rows [0, rows_with_left) have a left row. As rows of JoinSides.
struct JoinOutputRows {
  const int64_t* left_at;
  const int64_t* right_at;
  int64_t rows_with_left;
  int64_t left_rows;
  int32_t from;
  __host__ __device__ int64_t operator[](int64_t o) const {
    if (from == kJoinFromLeft || (from == kJoinFromKeys && o < rows_with_left)) return left_at[o];
    return right_at[o] < 0 ? -1 : left_rows + right_at[o];
  }
};

/// A column of a join's result, gathered from @p left (@p left_rows rows) and @p right as
/// @p from says, over the pairs @p left_at and @p right_at (@p n output rows in Exec memory,
/// the first @p rows_with_left of them with a left row). The column has a bitmap when
/// @p nullable is set or a side it reads has one; the side a row lacks is null.
/// @throw sluice::Error when the sides' types differ, or as gather_column does.
template <class Exec>
OwnedColumn<Exec> gather_join_column(Exec& exec, const ColumnView& left, size_t left_rows, const ColumnView& right, int32_t from,
                                     bool nullable, const int64_t* left_at, const int64_t* right_at, size_t rows_with_left,
                                     size_t n) {
  SLUICE_EXPECTS(from == kJoinFromKeys || from == kJoinFromLeft || from == kJoinFromRight,
                 "join: result column source " + std::to_string(from) + " is not keys (0), left (1) or right (2)");
  const bool reads_left = from != kJoinFromRight && (from == kJoinFromLeft || rows_with_left > 0);
  const bool reads_right = from != kJoinFromLeft && (from == kJoinFromRight || rows_with_left < n);
  SLUICE_EXPECTS(from != kJoinFromKeys || left.type == right.type, "join: the left key column is of type " +
                                                                      std::to_string(left.type) + " but the right one of type " +
                                                                      std::to_string(right.type));
  JoinSides sides;
  sides.type = from == kJoinFromRight ? right.type : left.type;
  sides.left = left;
  sides.right = right;
  sides.left_rows = static_cast<int64_t>(left_rows);
  const bool with_bitmap =
      nullable || (reads_left && left.validity != nullptr) || (reads_right && right.validity != nullptr);
  const JoinOutputRows rows{left_at, right_at, static_cast<int64_t>(rows_with_left), static_cast<int64_t>(left_rows), from};
  return detail::gather_column(exec, sides, with_bitmap, rows, n);
}

/// Row o itself: JoinSides' rows in order, the left side's, then the right side's.
struct EveryRowInOrder {
  __host__ __device__ int64_t operator[](int64_t o) const { return o; }
};

/// The rows of @p first (@p first_rows of them), then those of @p second (@p second_rows), as
/// one column in Exec memory (cogroup's keys of both sides), with a bitmap when @p nullable
/// is set or either side has one.
/// @throw sluice::Error when the types differ, or as gather_column does.
template <class Exec>
OwnedColumn<Exec> concatenate_columns(Exec& exec, const ColumnView& first, size_t first_rows, const ColumnView& second,
                                      size_t second_rows, bool nullable) {
  SLUICE_EXPECTS(first.type == second.type, "concatenating columns of types " + std::to_string(first.type) + " and " +
                                                std::to_string(second.type));
  JoinSides sides;
  sides.type = first.type;
  sides.left = first;
  sides.right = second;
  sides.left_rows = static_cast<int64_t>(first_rows);
  const bool with_bitmap = nullable || (first_rows > 0 && first.validity != nullptr) || (second_rows > 0 && second.validity != nullptr);
  return detail::gather_column(exec, sides, with_bitmap, EveryRowInOrder{}, first_rows + second_rows);
}

// ---------------------------------------------------------------- the chain

template <class Exec> struct RowChainResult {
  size_t rows = 0;
  /// Per output column: the index of the input column it is, unchanged (no step changed the
  /// rows or the column: the caller keeps its own copy), or -1 when `columns[k]` holds it.
  std::vector<int32_t> input_column;
  std::vector<OwnedColumn<Exec>> columns;  ///< index-aligned; empty entries for unchanged inputs
};

namespace detail {

/// The state of a chain between steps: the current columns, each an unchanged input or a
/// column the chain made (a slot of the arena, freed once no current column uses it).
template <class Exec> class RowChainRun {
 public:
  RowChainRun(Exec& exec, const std::vector<ColumnView>& inputs, size_t rows) : exec_(exec), rows_(rows) {
    for (size_t i = 0; i < inputs.size(); ++i)
      columns_.push_back(Current{inputs[i], inputs[i].validity != nullptr, static_cast<int32_t>(i), -1});
  }

  void apply(size_t step_index, const RowChainStep& step) {
    step_ = step_index;
    switch (step.kind) {
      case RowChainStep::kFilter: filter(step); break;
      case RowChainStep::kMap: map(step); break;
      case RowChainStep::kSplit: split(step); break;
      default: fail("unknown kind " + std::to_string(step.kind) + " (filter 0, map 1, split 2)");
    }
    release_unused();
  }

  RowChainResult<Exec> finish() {
    RowChainResult<Exec> out;
    out.rows = rows_;
    std::vector<int32_t> uses = slot_uses();
    for (const Current& c : columns_) {
      out.input_column.push_back(c.input);
      out.columns.emplace_back();
      if (c.input >= 0) continue;
      // A column that is several outputs is moved into the last and copied for the others.
      out.columns.back() = --uses[static_cast<size_t>(c.slot)] == 0
                               ? std::move(arena_[static_cast<size_t>(c.slot)])
                               : gather_column(exec_, c.view, c.nullable, IdentityRows{}, rows_);
    }
    return out;
  }

 private:
  struct Current {
    ColumnView view;
    bool nullable = false;
    int32_t input = -1;  ///< the input column it is, unchanged; or -1
    int32_t slot = -1;   ///< else its arena slot
  };

  [[noreturn]] void fail(const std::string& what) const {
    throw Error("row chain step " + std::to_string(step_) + ": " + what);
  }

  Current adopt(OwnedColumn<Exec> column) {
    arena_.push_back(std::move(column));
    const OwnedColumn<Exec>& owned = arena_.back();
    return Current{owned.view(), owned.nullable, -1, static_cast<int32_t>(arena_.size() - 1)};
  }

  std::vector<int32_t> slot_uses() const {
    std::vector<int32_t> uses(arena_.size(), 0);
    for (const Current& c : columns_)
      if (c.slot >= 0) ++uses[static_cast<size_t>(c.slot)];
    return uses;
  }

  /// Frees what no current column uses, so that a chain holds about two steps' columns. On the
  /// GPU frees are stream-ordered: kernels already queued still read the memory.
  void release_unused() {
    const std::vector<int32_t> uses = slot_uses();
    for (size_t s = 0; s < arena_.size(); ++s)
      if (uses[s] == 0) arena_[s] = OwnedColumn<Exec>{};
  }

  /// @p program uploaded, with its input columns (RowProgram::fields of the current columns).
  BoundRowProgram<Exec> bind(const RowProgram* program, const char* role) {
    if (program == nullptr) fail(std::string(role) + " has no program");
    std::vector<ColumnView> views;
    for (const Current& c : columns_) views.push_back(c.view);
    try {
      return bind_row_program(exec_, *program, views);
    } catch (const Error& e) {
      fail(std::string(role) + ": " + e.what());
    }
  }

  /// Replaces every current column by its rows @p rows[0, n); a column that is several
  /// current columns is gathered once.
  void gather_all(const int64_t* rows, size_t n, int32_t except = -1) {
    std::vector<std::pair<const Current*, Current>> done;  // source -> gathered
    std::vector<Current> next;
    for (size_t k = 0; k < columns_.size(); ++k) {
      const Current& c = columns_[k];
      if (static_cast<int32_t>(k) == except) {
        next.push_back(c);
        continue;
      }
      const Current* same = nullptr;
      for (const auto& [source, gathered] : done)
        if (source->input == c.input && source->slot == c.slot) same = &gathered;
      if (same == nullptr) {
        done.emplace_back(&c, adopt(gather_column(exec_, c.view, c.nullable, rows, n)));
        same = &done.back().second;
      }
      next.push_back(*same);
    }
    columns_ = std::move(next);
    rows_ = n;
  }

  void filter(const RowChainStep& step) {
    if (step.programs.size() != 1) fail("a filter takes 1 program, not " + std::to_string(step.programs.size()));
    const BoundRowProgram<Exec> predicate = bind(step.programs[0], "the filter's predicate");
    if (predicate.program.result_type() != kBool)
      fail("the filter's predicate has result type " + std::to_string(predicate.program.result_type()) + ", not bool");
    auto kept = exec_.template alloc<int64_t>(rows_);
    const size_t n = select_rows(exec_, predicate.program, predicate.inputs.data(), rows_, kept.data());
    if (n == rows_) return;  // every row kept: the columns are as they were
    gather_all(kept.data(), n);
  }

  void map(const RowChainStep& step) {
    const auto programs = static_cast<int64_t>(step.programs.size());
    for (size_t k = 0; k < step.sources.size(); ++k) {
      const int32_t s = step.sources[k];
      if (s >= 0 ? static_cast<size_t>(s) >= columns_.size() : -int64_t{s} - 1 >= programs)
        fail("output " + std::to_string(k) + " is " +
             (s >= 0 ? "column " + std::to_string(s) + " of " + std::to_string(columns_.size())
                     : "program " + std::to_string(-int64_t{s} - 1) + " of " + std::to_string(programs)));
    }
    // Each program used runs once, on the step's input columns, before any is replaced.
    std::vector<Current> computed(step.programs.size());
    std::vector<bool> ran(step.programs.size(), false);
    for (int32_t s : step.sources) {
      if (s >= 0) continue;
      const auto p = static_cast<size_t>(-int64_t{s} - 1);
      if (ran[p]) continue;
      const std::string role = "output program " + std::to_string(p);
      const BoundRowProgram<Exec> bound = bind(step.programs[p], role.c_str());
      computed[p] = adopt(evaluate_column(exec_, bound, rows_, step.programs[p]->result_nullable));
      ran[p] = true;
    }
    std::vector<Current> next;
    for (int32_t s : step.sources)
      next.push_back(s >= 0 ? columns_[static_cast<size_t>(s)] : computed[static_cast<size_t>(-int64_t{s} - 1)]);
    columns_ = std::move(next);
  }

  void split(const RowChainStep& step) {
    const int32_t field = step.split_field;
    if (field < 0 || static_cast<size_t>(field) >= columns_.size())
      fail("split field " + std::to_string(field) + " of " + std::to_string(columns_.size()) + " columns");
    const Current text = columns_[static_cast<size_t>(field)];
    if (text.view.type != kString)
      fail("split field " + std::to_string(field) + " has type " + std::to_string(text.view.type) + ", not string");
    if (step.separator.size() > static_cast<size_t>(INT32_MAX)) fail("the separator is over 2^31 - 1 bytes");
    auto separator = exec_.template alloc<char>(step.separator.size());
    exec_.to_device(separator.data(), step.separator.data(), step.separator.size());
    SplitTokens<Exec> tokens =
        split_strings(exec_, text.view, rows_, separator.data(), static_cast<int32_t>(step.separator.size()));
    // No rows, no tokens: the other columns are as they were.
    if (rows_ > 0) gather_all(tokens.source_rows.data(), tokens.tokens, field);
    OwnedColumn<Exec> column;
    column.type = kString;
    column.rows = tokens.tokens;
    column.offsets = std::move(tokens.offsets);
    column.chars = std::move(tokens.chars);
    columns_[static_cast<size_t>(field)] = adopt(std::move(column));
    rows_ = tokens.tokens;
  }

  Exec& exec_;
  size_t rows_;
  size_t step_ = 0;
  std::vector<Current> columns_;
  /// Columns the chain made; moving an OwnedColumn keeps its buffers, so views stay valid.
  std::vector<OwnedColumn<Exec>> arena_;
};

}  // namespace detail

/// Runs @p steps, in order, on @p rows rows of @p inputs (views of Exec memory; a column is
/// nullable when it has a validity bitmap). Programs read the step's input columns through
/// RowProgram::fields; every column made on the way stays in Exec memory, and the last
/// step's columns are returned (those that are inputs unchanged, by index only).
/// @throw sluice::Error naming the step for a malformed step: a field, source or split field
/// out of range, a split of a column that is not a string, a program that does not fit its
/// columns or (filters) is not bool; and as gather_column does.
template <class Exec>
RowChainResult<Exec> run_row_chain(Exec& exec, const std::vector<ColumnView>& inputs, size_t rows,
                                   const std::vector<RowChainStep>& steps) {
  detail::RowChainRun<Exec> run(exec, inputs, rows);
  for (size_t s = 0; s < steps.size(); ++s) run.apply(s, steps[s]);
  return run.finish();
}

}  // namespace sluice::gpu
