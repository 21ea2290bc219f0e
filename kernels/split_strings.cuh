#pragma once
// flatMap of a string column into tokens on the device, in three passes: count each row's
// tokens, scan the counts into each row's first output token, scatter the tokens; then the
// tokens' bytes are gathered into one Arrow string column. An empty separator splits at runs
// of whitespace (std::isspace in the C locale, as split_words does); any other separator
// splits at each of its occurrences, left to right, keeping empty tokens. Null rows give no
// token.
#include <thrust/for_each.h>
#include <thrust/iterator/counting_iterator.h>
#include <thrust/scan.h>

#include "gpu_types.hpp"
#include "word_count.cuh"  // is_space_byte

namespace sluice::gpu {

/// Calls @p emit(start, end) for each token of chars[begin, end) in order; returns how many.
template <class Emit>
__host__ __device__ int32_t for_each_token(const char* chars, int32_t begin, int32_t end, const char* separator,
                                           int32_t separator_length, Emit&& emit) {
  int32_t tokens = 0;
  if (separator_length == 0) {
    int32_t i = begin;
    while (i < end) {
      while (i < end && is_space_byte(chars[i])) ++i;
      const int32_t start = i;
      while (i < end && !is_space_byte(chars[i])) ++i;
      if (i > start) {
        emit(start, i);
        ++tokens;
      }
    }
    return tokens;
  }
  int32_t start = begin;
  for (int32_t i = begin; separator_length <= end - i;) {  // no int32 overflow near 2^31
    bool match = true;
    for (int32_t k = 0; k < separator_length && match; ++k) match = chars[i + k] == separator[k];
    if (match) {
      emit(start, i);
      ++tokens;
      i += separator_length;
      start = i;
    } else {
      ++i;
    }
  }
  emit(start, end);  // the text after the last separator, possibly empty
  return tokens + 1;
}

struct SplitText {
  ColumnView text;
  const char* separator;
  int32_t separator_length;
  __host__ __device__ bool valid(int64_t row) const {
    return text.validity == nullptr || ((text.validity[row >> 3] >> (row & 7)) & 1);
  }
  __host__ __device__ int32_t begin(int64_t row) const { return text.offsets[row]; }
  __host__ __device__ int32_t end(int64_t row) const { return text.ends ? text.ends[row] : text.offsets[row + 1]; }
};

struct CountTokens {
  SplitText split;
  int64_t* tokens_of_row;
  __host__ __device__ void operator()(int64_t row) const {
    tokens_of_row[row] = split.valid(row) ? for_each_token(split.text.chars, split.begin(row), split.end(row), split.separator,
                                                           split.separator_length, [](int32_t, int32_t) {})
                                          : 0;
  }
};

struct ScatterTokens {
  SplitText split;
  const int64_t* first_token_of_row;
  int32_t* token_start;
  int32_t* token_length;
  int64_t* source_row;
  __host__ __device__ void operator()(int64_t row) const {
    if (!split.valid(row)) return;
    int64_t t = first_token_of_row[row];
    for_each_token(split.text.chars, split.begin(row), split.end(row), split.separator, split.separator_length,
                   [&](int32_t start, int32_t end) {
                     token_start[t] = start;
                     token_length[t] = end - start;
                     source_row[t] = row;
                     ++t;
                   });
  }
};

struct GatherTokenBytes {
  const char* chars;
  const int32_t* token_start;
  const int32_t* out_offsets;
  char* out_chars;
  __host__ __device__ void operator()(int64_t t) const {
    const int32_t from = token_start[t];
    const int32_t to = out_offsets[t];
    const int32_t n = out_offsets[t + 1] - to;
    for (int32_t i = 0; i < n; ++i) out_chars[to + i] = chars[from + i];
  }
};

/// The tokens of a split, in @p Exec's memory: an Arrow string column (tokens + 1 offsets)
/// and, per token, the input row it came from.
template <class Exec> struct SplitTokens {
  size_t tokens = 0;
  size_t bytes = 0;
  typename Exec::template Array<int32_t> offsets;
  typename Exec::template Array<char> chars;
  typename Exec::template Array<int64_t> source_rows;
};

/// Splits the @p rows strings of @p text (in @p exec's memory; @p separator too).
template <class Exec>
SplitTokens<Exec> split_strings(Exec& exec, const ColumnView& text, size_t rows, const char* separator,
                                int32_t separator_length) {
  SplitTokens<Exec> out;
  out.offsets = exec.template alloc<int32_t>(1);
  if (rows == 0) {
    const int32_t zero = 0;
    exec.to_device(out.offsets.data(), &zero, sizeof zero);
    return out;
  }
  const SplitText split{text, separator, separator_length};
  const auto all_rows = thrust::counting_iterator<int64_t>(0);
  // One more slot than rows, so that the exclusive scan's last entry is the total.
  auto first_token = exec.template alloc<int64_t>(rows + 1);
  thrust::for_each(exec.policy(), all_rows, all_rows + static_cast<int64_t>(rows), CountTokens{split, first_token.data()});
  const int64_t zero64 = 0;
  exec.to_device(first_token.data() + rows, &zero64, sizeof zero64);
  thrust::exclusive_scan(exec.policy(), first_token.data(), first_token.data() + rows + 1, first_token.data());
  int64_t tokens = 0;
  exec.to_host(&tokens, first_token.data() + rows, sizeof tokens);
  out.tokens = static_cast<size_t>(tokens);

  auto token_start = exec.template alloc<int32_t>(out.tokens);
  out.offsets = exec.template alloc<int32_t>(out.tokens + 1);
  out.source_rows = exec.template alloc<int64_t>(out.tokens);
  thrust::for_each(exec.policy(), all_rows, all_rows + static_cast<int64_t>(rows),
                   ScatterTokens{split, first_token.data(), token_start.data(), out.offsets.data(), out.source_rows.data()});
  // Token lengths become offsets in place; the slot after the last token makes the scan's
  // last entry the total length.
  const int32_t zero = 0;
  exec.to_device(out.offsets.data() + out.tokens, &zero, sizeof zero);
  thrust::exclusive_scan(exec.policy(), out.offsets.data(), out.offsets.data() + out.tokens + 1, out.offsets.data());
  int32_t bytes = 0;
  exec.to_host(&bytes, out.offsets.data() + out.tokens, sizeof bytes);
  out.bytes = static_cast<size_t>(bytes);
  out.chars = exec.template alloc<char>(out.bytes);
  const auto all_tokens = thrust::counting_iterator<int64_t>(0);
  thrust::for_each(exec.policy(), all_tokens, all_tokens + tokens,
                   GatherTokenBytes{text.chars, token_start.data(), out.offsets.data(), out.chars.data()});
  return out;
}

}  // namespace sluice::gpu
