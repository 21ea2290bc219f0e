#pragma once
// Word count on the device: the raw bytes of a batch of lines go to the device, words are
// found there (a word starts where a non-space byte follows a space or a line start), hashed
// and counted by the keyed reduction; only the distinct words and their counts come back.
// Whitespace is what std::isspace means in the C locale, as the CPU split uses.
//
// Words are found a 32-byte chunk per thread, in two passes over the text: count the chunk's
// word starts (a bit mask from its bytes, loaded 16 at a time where the text is aligned, and
// one 32-bit word of a line-start bitmap), scan the counts, then write each word's start, end
// and hash. One thread a byte (a stream compaction over every byte) and a byte-wide
// line-start array cost an item, and a byte of memory traffic, per byte of text.
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

/// Bytes of text a thread scans for word starts: one 32-bit word of the line-start bitmap.
constexpr int64_t kWordChunkBytes = 32;

__host__ __device__ inline int bits_set(uint32_t x) {
#ifdef __CUDA_ARCH__
  return __popc(x);
#else
  return __builtin_popcount(x);
#endif
}

/// Index of the lowest set bit of @p x (not 0).
__host__ __device__ inline int lowest_bit(uint32_t x) {
#ifdef __CUDA_ARCH__
  return __ffs(static_cast<int>(x)) - 1;
#else
  return __builtin_ctz(x);
#endif
}

/// Sets the bit of every line's first byte in a bitmap over the text's bytes (lines are
/// Arrow string offsets into one buffer), and of the byte after its last: the next line's
/// first, or one past the text.
struct MarkLineStartBits {
  const int32_t* line_offsets;
  uint32_t* bits;  // (bytes + 1 + 31) / 32 words
  __host__ __device__ void mark(int64_t i) const {
    DeviceAtomic<uint32_t>(bits[i >> 5]).fetch_or(uint32_t{1} << (i & 31), kRelaxed);  // lines share words
  }
  __host__ __device__ void operator()(int64_t line) const {
    mark(line_offsets[line]);
    mark(line_offsets[line + 1]);
  }
};

/// The text in 32-byte chunks: chunk c is bytes [32c, 32c + 32) and bit j of a chunk's mask
/// stands for its byte j.
struct TextChunks {
  const char* chars;
  int64_t bytes;
  const uint32_t* line_bits;  // MarkLineStartBits
  bool aligned16;             // chars is 16-byte aligned: whole chunks load as two 16-byte words

  __host__ __device__ bool is_line_start(int64_t i) const { return (line_bits[i >> 5] >> (i & 31)) & 1; }

  /// Bit j set: byte j of chunk @p c is whitespace or past the end of the text.
  __host__ __device__ uint32_t space_bits(int64_t c) const {
    const int64_t begin = c * kWordChunkBytes;
    const int64_t n = bytes - begin < kWordChunkBytes ? bytes - begin : kWordChunkBytes;  // at least 1
    uint32_t spaces = n < kWordChunkBytes ? ~uint32_t{0} << n : 0;
    if (n == kWordChunkBytes && aligned16) {
      uint64_t words[4];
#ifdef __CUDA_ARCH__
      const uint4 low = reinterpret_cast<const uint4*>(chars + begin)[0], high = reinterpret_cast<const uint4*>(chars + begin)[1];
      words[0] = static_cast<uint64_t>(low.y) << 32 | low.x;
      words[1] = static_cast<uint64_t>(low.w) << 32 | low.z;
      words[2] = static_cast<uint64_t>(high.y) << 32 | high.x;
      words[3] = static_cast<uint64_t>(high.w) << 32 | high.z;
#else
      memcpy(words, chars + begin, sizeof words);
#endif
#pragma unroll
      for (int j = 0; j < 32; ++j)  // little-endian: byte j of the chunk is byte j % 8 of word j / 8
        spaces |= static_cast<uint32_t>(is_space_byte(static_cast<char>(words[j >> 3] >> (8 * (j & 7))))) << j;
    } else {
      for (int64_t j = 0; j < n; ++j) spaces |= static_cast<uint32_t>(is_space_byte(chars[begin + j])) << j;
    }
    return spaces;
  }

  /// Bit j set: a word starts at byte j of chunk @p c, whose space_bits are @p spaces; a
  /// non-space byte after a space, at a line start, or at the start of the text.
  __host__ __device__ uint32_t word_starts(int64_t c, uint32_t spaces) const {
    const int64_t begin = c * kWordChunkBytes;
    const uint32_t space_before = begin == 0 || is_space_byte(chars[begin - 1]) ? 1u : 0u;
    return ~spaces & ((spaces << 1) | space_before | line_bits[c]);
  }

  /// One past the last byte of the word starting at byte @p j of chunk @p c: the first space,
  /// line start or end of the text after its start.
  __host__ __device__ int64_t word_end(int64_t c, int j, uint32_t spaces) const {
    const uint32_t stops = (spaces | line_bits[c]) & (~uint32_t{1} << j);  // above j (j < 31), or none
    if (j < 31 && stops != 0) return c * kWordChunkBytes + lowest_bit(stops);
    int64_t i = (c + 1) * kWordChunkBytes;  // a word running into the next chunks
    while (i < bytes && !is_line_start(i) && !is_space_byte(chars[i])) ++i;
    return i < bytes ? i : bytes;
  }
};

struct WordsInChunk {
  TextChunks text;
  __host__ __device__ int32_t operator()(int64_t c) const { return bits_set(text.word_starts(c, text.space_bits(c))); }
};

/// Writes the words starting in chunk @p c, from the first_word[c]-th: each one's start, its
/// end, and its hashed key as the keyed reduction would compute it from the word column
/// (HashedKeyOf), while its bytes are at hand.
struct WriteWordsOfChunk {
  TextChunks text;
  const int32_t* first_word;  // chunks + 1: an exclusive scan of WordsInChunk
  int32_t* starts;
  int32_t* ends;
  uint64_t* key_hashes;
  __host__ __device__ void operator()(int64_t c) const {
    const uint32_t spaces = text.space_bits(c);
    int32_t w = first_word[c];
    for (uint32_t left = text.word_starts(c, spaces); left != 0; left &= left - 1, ++w) {
      const int j = lowest_bit(left);
      const int64_t start = c * kWordChunkBytes + j, end = text.word_end(c, j, spaces);
      starts[w] = static_cast<int32_t>(start);
      ends[w] = static_cast<int32_t>(end);
      key_hashes[w] = add_field_to_key_hash(kKeySeed, hash_bytes(text.chars + start, end - start));
    }
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
  SLUICE_EXPECTS(bytes <= static_cast<size_t>(INT32_MAX), "word count: a batch of text exceeds 2^31 - 1 bytes");
  auto policy = exec.policy();
  const int64_t chunks = (static_cast<int64_t>(bytes) + kWordChunkBytes - 1) / kWordChunkBytes;
  auto line_bits = exec.template alloc<uint32_t>(static_cast<size_t>(bytes / 32 + 1));  // bits 0 to bytes
  thrust::fill_n(policy, line_bits.data(), bytes / 32 + 1, uint32_t{0});
  thrust::for_each_n(policy, thrust::counting_iterator<int64_t>(0), static_cast<int64_t>(lines),
                     MarkLineStartBits{line_offsets, line_bits.data()});
  const TextChunks text{chars, static_cast<int64_t>(bytes), line_bits.data(), reinterpret_cast<uintptr_t>(chars) % 16 == 0};
  auto first_word = exec.template alloc<int32_t>(static_cast<size_t>(chunks) + 1);
  thrust::fill_n(policy, first_word.data(), 1, int32_t{0});
  const auto words_in_chunk = thrust::make_transform_iterator(thrust::counting_iterator<int64_t>(0), WordsInChunk{text});
  thrust::inclusive_scan(policy, words_in_chunk, words_in_chunk + chunks, first_word.data() + 1);
  int32_t word_total = 0;
  exec.to_host(&word_total, first_word.data() + chunks, sizeof word_total);
  const size_t words = static_cast<size_t>(word_total);
  out.words = words;
  if (words == 0) return out;
  auto starts = exec.template alloc<int32_t>(words);
  auto ends = exec.template alloc<int32_t>(words);
  auto key_hashes = exec.template alloc<uint64_t>(words);
  thrust::for_each_n(policy, thrust::counting_iterator<int64_t>(0), chunks,
                     WriteWordsOfChunk{text, first_word.data(), starts.data(), ends.data(), key_hashes.data()});

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
