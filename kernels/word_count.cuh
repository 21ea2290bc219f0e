#pragma once
// Word count on the device: the raw bytes of a batch of lines go to the device, words are
// found there (a word starts where a non-space byte follows a space or a line start), hashed
// and counted by the keyed reduction; only the distinct words and their counts come back.
// Whitespace is what std::isspace means in the C locale, as the CPU split uses.
#include <thrust/copy.h>
#include <thrust/for_each.h>
#include <thrust/iterator/counting_iterator.h>
#include <thrust/iterator/transform_iterator.h>
#include <thrust/scan.h>

#include <string>
#include <vector>

#include "grouped_reduce.cuh"

namespace sluice::gpu {

__host__ __device__ inline bool is_space_byte(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/// Marks the first byte of every line (lines are Arrow string offsets into one buffer).
struct MarkLineStarts {
  const int32_t* line_offsets;
  uint8_t* line_start;
  __host__ __device__ void operator()(int64_t line) const {
    line_start[line_offsets[line]] = 1;
    line_start[line_offsets[line + 1]] = 1;  // the byte after the line starts something else
  }
};

struct ByteIsWordStart {
  const char* chars;
  const uint8_t* line_start;
  __host__ __device__ bool operator()(int64_t i) const {
    return !is_space_byte(chars[i]) && (i == 0 || line_start[i] || is_space_byte(chars[i - 1]));
  }
};

/// One past word @p w's last byte: the first space, line start or end of the text after its
/// start (words are short: a scan from each start costs less than a second pass over every
/// byte). Also the word's hashed key, as the keyed reduction would compute it from the word
/// column (HashedKeyOf), while its bytes are at hand.
struct WordEndAndKey {
  const char* chars;
  const uint8_t* line_start;
  int64_t bytes;
  const int32_t* starts;
  int32_t* ends;
  uint64_t* key_hashes;
  __host__ __device__ void operator()(int64_t w) const {
    const int32_t start = starts[w];
    int64_t i = start + 1;
    while (i < bytes && !line_start[i] && !is_space_byte(chars[i])) ++i;
    ends[w] = static_cast<int32_t>(i);
    key_hashes[w] = add_field_to_key_hash(kKeySeed, hash_bytes(chars + start, i - start));
  }
};

struct WordLength {
  const int32_t* starts;
  const int32_t* ends;
  const int64_t* word_of_group;
  __host__ __device__ int32_t operator()(int64_t g) const {
    const int64_t w = word_of_group[g];
    return ends[w] - starts[w];
  }
};

struct CopyWord {
  const char* chars;
  const int32_t* starts;
  const int64_t* word_of_group;
  const int32_t* out_offsets;
  char* out_chars;
  __host__ __device__ void operator()(int64_t g) const {
    const int32_t from = starts[word_of_group[g]];
    const int32_t to = out_offsets[g];
    const int32_t n = out_offsets[g + 1] - to;
    for (int32_t i = 0; i < n; ++i) out_chars[to + i] = chars[from + i];
  }
};

/// Splits the lines (@p line_offsets: lines + 1 Arrow offsets into @p chars, in @p exec's
/// memory) into words and counts each distinct word.
template <class Exec>
WordCounts count_words(Exec& exec, const char* chars, const int32_t* line_offsets, size_t lines, size_t bytes,
                       GroupStrategy strategy = GroupStrategy::Auto) {
  WordCounts out;
  if (lines == 0 || bytes == 0) return out;
  auto policy = exec.policy();
  auto line_start = exec.template alloc<uint8_t>(bytes + 1);
  thrust::fill_n(policy, line_start.data(), bytes + 1, uint8_t{0});
  thrust::for_each_n(policy, thrust::counting_iterator<int64_t>(0), static_cast<int64_t>(lines),
                     MarkLineStarts{line_offsets, line_start.data()});
  auto starts = exec.template alloc<int32_t>(bytes);
  const auto starts_end = thrust::copy_if(policy, thrust::counting_iterator<int32_t>(0),
                                          thrust::counting_iterator<int32_t>(static_cast<int32_t>(bytes)), starts.data(),
                                          ByteIsWordStart{chars, line_start.data()});
  const size_t words = static_cast<size_t>(starts_end - starts.data());
  out.words = words;
  if (words == 0) return out;
  auto ends = exec.template alloc<int32_t>(words);
  auto key_hashes = exec.template alloc<uint64_t>(words);
  thrust::for_each_n(policy, thrust::counting_iterator<int64_t>(0), static_cast<int64_t>(words),
                     WordEndAndKey{chars, line_start.data(), static_cast<int64_t>(bytes), starts.data(), ends.data(), key_hashes.data()});

  ColumnView word_column;
  word_column.type = kString;
  word_column.chars = chars;
  word_column.offsets = starts.data();
  word_column.ends = ends.data();
  GroupedInput in;
  in.rows = words;
  in.keys = {word_column};
  FoldView count;
  count.op = kFoldCountRows;
  in.folds = {count};
  in.strategy = strategy;
  in.row_hashes = key_hashes.data();
  const GroupedResult groups = grouped_reduce(exec, in);
  out.strategy = groups.strategy;
  out.key_collisions = groups.key_collisions;
  out.counts.resize(groups.groups);
  for (size_t g = 0; g < groups.groups; ++g) out.counts[g] = static_cast<int64_t>(groups.accumulators[g]);

  // The distinct words' bytes, gathered on the device into one Arrow string column.
  auto word_of_group = exec.template alloc<int64_t>(groups.groups);
  exec.to_device(word_of_group.data(), groups.first_row.data(), groups.groups * sizeof(int64_t));
  auto out_offsets = exec.template alloc<int32_t>(groups.groups + 1);
  thrust::fill_n(policy, out_offsets.data(), 1, int32_t{0});
  auto lengths = thrust::make_transform_iterator(thrust::counting_iterator<int64_t>(0),
                                                 WordLength{starts.data(), ends.data(), word_of_group.data()});
  thrust::inclusive_scan(policy, lengths, lengths + static_cast<int64_t>(groups.groups), out_offsets.data() + 1);
  out.offsets.resize(groups.groups + 1);
  exec.to_host(out.offsets.data(), out_offsets.data(), out.offsets.size() * sizeof(int32_t));
  auto out_chars = exec.template alloc<char>(static_cast<size_t>(out.offsets.back()));
  thrust::for_each_n(policy, thrust::counting_iterator<int64_t>(0), static_cast<int64_t>(groups.groups),
                     CopyWord{chars, starts.data(), word_of_group.data(), out_offsets.data(), out_chars.data()});
  out.chars.resize(static_cast<size_t>(out.offsets.back()));
  exec.to_host(out.chars.data(), out_chars.data(), out.chars.size());
  return out;
}

}  // namespace sluice::gpu
