#pragma once
// Keyed reduction (reduceByKey) written once against an execution context, so the same code
// runs on the GPU (CudaExec: CUB radix sort, Thrust on a stream, a stream-ordered pool) and,
// in the host tests, on the CPU (HostExec). Two strategies:
//  - hash: one pass in which each block of threads folds its rows into a small table in its
//    shared memory, then adds that table into an open-addressing device table (a key with no
//    room in its block's table goes there directly); for keys whose device table stays in
//    the L2 cache.
//  - sort: radix sort of (key, row) pairs, over only the bits an exact key's range needs,
//    then one segmented reduce per fold; for more keys, where a hash table would thrash.
// Keys are reduced to 64 bits first: exactly for one non-null integer column, otherwise as a
// hash of all key fields. Hashed keys are verified afterwards (every row against its group's
// first row), so a 64-bit collision is detected and reported, never merged silently.
// Groups come out in order of their first row, as on the CPU backend.
//
// C++17: nvcc here has no C++20 dialect through CMake; this file includes no engine header.
#include <thrust/binary_search.h>
#include <thrust/copy.h>
#include <thrust/count.h>
#include <thrust/fill.h>
#include <thrust/for_each.h>
#include <thrust/functional.h>
#include <thrust/iterator/counting_iterator.h>
#include <thrust/iterator/permutation_iterator.h>
#include <thrust/iterator/transform_iterator.h>
#include <thrust/reduce.h>
#include <thrust/scan.h>
#include <thrust/sequence.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <cuda/atomic>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "block_kernel.cuh"
#include "gpu_types.hpp"
#include "sluice/error.hpp"

namespace sluice::gpu {

/// Atomics at device scope (on the host they are plain C++ atomics): libcu++, named with
/// :: because sluice::cuda is the engine's own namespace.
template <class T> using DeviceAtomic = ::cuda::atomic_ref<T, ::cuda::thread_scope_device>;
constexpr auto kRelaxed = ::cuda::memory_order_relaxed;

// ---------------------------------------------------------------- column access

__host__ __device__ inline bool valid_at(const ColumnView& c, int64_t row) {
  return c.validity == nullptr || ((c.validity[row >> 3] >> (row & 7)) & 1) != 0;
}

/// Integer value of a Bool/Int32/Int64 column at @p row.
__host__ __device__ inline int64_t integer_at(const ColumnView& c, int64_t row) {
  switch (c.type) {
    case kBool: return static_cast<const uint8_t*>(c.values)[row];
    case kInt32: return static_cast<const int32_t*>(c.values)[row];
    default: return static_cast<const int64_t*>(c.values)[row];
  }
}

/// Any numeric value as double.
__host__ __device__ inline double double_at(const ColumnView& c, int64_t row) {
  switch (c.type) {
    case kFloat32: return static_cast<const float*>(c.values)[row];
    case kFloat64: return static_cast<const double*>(c.values)[row];
    default: return static_cast<double>(integer_at(c, row));
  }
}

/// End offset of string @p row (Arrow layout, or token spans when ends are given).
__host__ __device__ inline int32_t string_end(const ColumnView& c, int64_t row) {
  return c.ends ? c.ends[row] : c.offsets[row + 1];
}

__host__ __device__ inline bool is_float_type(int32_t t) { return t == kFloat32 || t == kFloat64; }

// ---------------------------------------------------------------- hashing

__host__ __device__ inline uint64_t fmix64(uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdULL;
  k ^= k >> 33;
  k *= 0xc4ceb9fe1a85ec53ULL;
  k ^= k >> 33;
  return k;
}

constexpr uint64_t kHashMul1 = 0x9E3779B97F4A7C15ULL;
constexpr uint64_t kHashMul2 = 0xC2B2AE3D27D4EB4FULL;
constexpr uint64_t kNullHash = 0x6A09E667F3BCC909ULL;
constexpr uint64_t kKeySeed = 0x243F6A8885A308D3ULL;

__host__ __device__ inline uint64_t rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

/// Hash of @p n bytes at @p p, 8 bytes per step (unaligned loads through memcpy).
__host__ __device__ inline uint64_t hash_bytes(const char* p, int64_t n) {
  uint64_t h = kHashMul1 ^ (static_cast<uint64_t>(n) * kHashMul2);
  for (; n >= 8; p += 8, n -= 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    h = rotl64(h ^ (w * kHashMul2), 31) * kHashMul1;
  }
  if (n > 0) {
    uint64_t w = 0;
    for (int64_t i = 0; i < n; ++i) w |= static_cast<uint64_t>(static_cast<uint8_t>(p[i])) << (8 * i);
    h = rotl64(h ^ (w * kHashMul2), 31) * kHashMul1;
  }
  return fmix64(h);
}

/// Floating point keys compare as the CPU backend compares them: -0.0 equals 0.0 and every
/// NaN equals every NaN, so both hash to one canonical pattern.
__host__ __device__ inline uint64_t canonical_bits(double d) {
  if (d == 0.0) d = 0.0;
  if (d != d) return 0x7FF8000000000000ULL;
  uint64_t bits;
  memcpy(&bits, &d, 8);
  return bits;
}

__host__ __device__ inline uint64_t value_hash(const ColumnView& c, int64_t row) {
  if (!valid_at(c, row)) return kNullHash;
  switch (c.type) {
    case kString: {
      const int32_t begin = c.offsets[row];
      return hash_bytes(c.chars + begin, string_end(c, row) - begin);
    }
    case kFloat32:
    case kFloat64: return fmix64(canonical_bits(double_at(c, row)));
    default: return fmix64(static_cast<uint64_t>(integer_at(c, row)));
  }
}

/// Row @p ra of column @p a and row @p rb of column @p b (of the same type) hold equal keys:
/// null equals null, strings compare their bytes, floating point treats -0.0 as 0.0 and NaN as
/// NaN (as the CPU backend groups keys).
__host__ __device__ inline bool same_value_across(const ColumnView& a, int64_t ra, const ColumnView& b, int64_t rb) {
  const bool va = valid_at(a, ra), vb = valid_at(b, rb);
  if (!va || !vb) return va == vb;
  switch (a.type) {
    case kString: {
      const int32_t a0 = a.offsets[ra], a1 = string_end(a, ra), b0 = b.offsets[rb], b1 = string_end(b, rb);
      if (a1 - a0 != b1 - b0) return false;
      for (int32_t i = 0; i < a1 - a0; ++i)
        if (a.chars[a0 + i] != b.chars[b0 + i]) return false;
      return true;
    }
    case kFloat32:
    case kFloat64: {
      const double x = double_at(a, ra), y = double_at(b, rb);
      return x == y || (x != x && y != y);
    }
    default: return integer_at(a, ra) == integer_at(b, rb);
  }
}

__host__ __device__ inline bool same_value(const ColumnView& c, int64_t a, int64_t b) { return same_value_across(c, a, c, b); }

/// True when the key is one non-null integer column: its value is the 64-bit key, exactly.
inline bool exact_integer_key(const std::vector<ColumnView>& keys) {
  return keys.size() == 1 && keys[0].validity == nullptr &&
         (keys[0].type == kBool || keys[0].type == kInt32 || keys[0].type == kInt64);
}

/// Whether @p in's rows are keyed by their key's value (else by a hash of every key field).
inline bool keyed_exactly(const GroupedInput& in) { return !in.force_hashed_keys && exact_integer_key(in.keys); }

struct KeyIsNull {
  ColumnView key;
  __host__ __device__ bool operator()(int64_t row) const { return !valid_at(key, row); }
};

/// Makes the one key of @p in (GroupedInput::exact_key) its own 64-bit key and returns how
/// many of its rows are null nonetheless, counted where the column is; a caller refuses such
/// a batch. The bitmap goes: a column that may have nulls but has none is keyed as one that
/// may not, as a window's or running state's every batch must be.
/// @throw sluice::Error when the key is not one integer column.
template <class Exec> size_t take_exact_key(Exec& exec, GroupedInput& in) {
  SLUICE_EXPECTS(in.keys.size() == 1 && (in.keys[0].type == kBool || in.keys[0].type == kInt32 || in.keys[0].type == kInt64),
                 "an exact key is one integer or bool column, not " + std::to_string(in.keys.size()) + " key columns or another type");
  size_t nulls = 0;
  if (in.keys[0].validity && in.rows > 0)
    nulls = static_cast<size_t>(thrust::count_if(exec.policy(), thrust::counting_iterator<int64_t>(0),
                                                 thrust::counting_iterator<int64_t>(static_cast<int64_t>(in.rows)), KeyIsNull{in.keys[0]}));
  in.keys[0].validity = nullptr;
  in.force_hashed_keys = false;
  return nulls;
}

/// Each row's exact key less @p offset (a sort's keys start at 0 so that it skips the high
/// bits; 0 elsewhere).
struct ExactKeyOf {
  ColumnView key;
  uint64_t* out;
  uint64_t offset = 0;
  __host__ __device__ void operator()(int64_t row) const { out[row] = static_cast<uint64_t>(integer_at(key, row)) - offset; }
};

/// The hashed key of a row from its key fields' value_hash, one field at a time from kKeySeed.
__host__ __device__ inline uint64_t add_field_to_key_hash(uint64_t h, uint64_t field_hash) {
  return fmix64(rotl64(h, 27) * kHashMul1 ^ field_hash);
}

struct HashedKeyOf {
  const ColumnView* keys;
  int32_t key_count;
  uint64_t* out;
  __host__ __device__ void operator()(int64_t row) const {
    uint64_t h = kKeySeed;
    for (int32_t k = 0; k < key_count; ++k) h = add_field_to_key_hash(h, value_hash(keys[k], row));
    out[row] = h;
  }
};

/// Counts row @p row in @p mismatches when its key differs from row @p first's.
__host__ __device__ inline void count_if_keys_differ(const ColumnView* keys, int32_t key_count, int64_t row, int64_t first,
                                                     unsigned long long* mismatches) {
  for (int32_t k = 0; k < key_count; ++k) {
    if (!same_value(keys[k], row, first)) {
      DeviceAtomic<unsigned long long>(*mismatches).fetch_add(1, kRelaxed);
      return;
    }
  }
}

/// Counts the rows whose key differs from the key of their group's first row.
struct VerifyAgainstFirstRow {
  const ColumnView* keys;
  int32_t key_count;
  const int64_t* row_at;          // row of position i (null: position i is row i)
  const int32_t* group_at;        // group of position i, counted from group_base
  int32_t group_base;
  const int64_t* first_row_of;    // first row of a group
  unsigned long long* mismatches;
  __host__ __device__ void operator()(int64_t i) const {
    count_if_keys_differ(keys, key_count, row_at ? row_at[i] : i, first_row_of[group_at[i] - group_base], mismatches);
  }
};

// ---------------------------------------------------------------- folds

/// The one NaN a float min or max gives, whatever NaNs its rows hold (as the CPU backend).
constexpr uint64_t kCanonicalNaNBits = 0x7FF8000000000000ULL;

/// The identity of a fold, as raw 64 bits of an int64 or a double.
__host__ __device__ inline uint64_t fold_identity(const FoldView& f) {
  // NaN orders above every number (as in Spark and the CPU backend): it is min's identity.
  constexpr uint64_t kNaN = kCanonicalNaNBits, kMinusInfinity = 0xFFF0000000000000ULL;
  constexpr uint64_t kInt64Max = 0x7FFFFFFFFFFFFFFFULL, kInt64Min = 0x8000000000000000ULL;
  if (f.op == kFoldMin) return f.float_acc ? kNaN : kInt64Max;
  if (f.op == kFoldMax) return f.float_acc ? kMinusInfinity : kInt64Min;
  return 0;  // 0 and 0.0 share their bits
}

__host__ __device__ inline double as_double(uint64_t bits) {
  double d;
  memcpy(&d, &bits, 8);
  return d;
}
__host__ __device__ inline uint64_t double_bits(double d) {
  uint64_t bits;
  memcpy(&bits, &d, 8);
  return bits;
}

/// What row @p row contributes to fold @p f (raw bits), with the row's sign (+1, or -1 for a
/// leaving pane). Nulls contribute the identity.
__host__ __device__ inline uint64_t contribution(const FoldView& f, int64_t row, int sign) {
  if (f.op == kFoldCountRows) return static_cast<uint64_t>(static_cast<int64_t>(sign));
  if (!valid_at(f.input, row)) return fold_identity(f);
  switch (f.op) {
    case kFoldCountValid: return static_cast<uint64_t>(static_cast<int64_t>(sign));
    case kFoldSum:
      if (f.float_acc) return double_bits(sign * double_at(f.input, row));
      // In uint64: -1 times the least int64 wraps, as the sums do.
      return static_cast<uint64_t>(integer_at(f.input, row)) * static_cast<uint64_t>(static_cast<int64_t>(sign));
    default: {  // min, max: never signed (only invertible folds are subtracted)
      if (f.float_acc) {
        const double v = double_at(f.input, row);
        return v != v ? kCanonicalNaNBits : double_bits(v);
      }
      return static_cast<uint64_t>(integer_at(f.input, row));
    }
  }
}

/// Whether @p v replaces @p current as the min (or max); NaN orders above every number and
/// -0.0 below 0.0, so that no result depends on which row (on the GPU, which thread's atomic)
/// comes first, as in the CPU backend.
__host__ __device__ inline bool replaces(double v, double current, bool is_min) {
  if (v == current) {  // equal values differ only as zeros of opposite signs
    const bool v_negative = (double_bits(v) >> 63) != 0, current_negative = (double_bits(current) >> 63) != 0;
    return is_min ? v_negative && !current_negative : !v_negative && current_negative;
  }
  if (is_min) return v < current || (current != current && v == v);
  return v > current || (v != v && current == current);
}

/// Combines two raw accumulator values of fold @p f.
struct CombineFold {
  int32_t op;
  int32_t float_acc;
  __host__ __device__ uint64_t operator()(uint64_t a, uint64_t b) const {
    if (float_acc) {
      const double x = as_double(a), y = as_double(b);
      if (op == kFoldMin || op == kFoldMax) return replaces(y, x, op == kFoldMin) ? b : a;
      return double_bits(x + y);
    }
    const int64_t x = static_cast<int64_t>(a), y = static_cast<int64_t>(b);
    if (op == kFoldMin) return static_cast<uint64_t>(y < x ? y : x);
    if (op == kFoldMax) return static_cast<uint64_t>(y > x ? y : x);
    return a + b;  // two's complement: wraps as int64 addition does on the CPU
  }
};

/// Atomics on device memory (the device table), at device scope.
struct DeviceScopeAtomics {
  __host__ __device__ static uint64_t load(uint64_t* word) {
    return DeviceAtomic<unsigned long long>(*reinterpret_cast<unsigned long long*>(word)).load(kRelaxed);
  }
  /// Compare-and-swap; returns the value found.
  __host__ __device__ static uint64_t cas(uint64_t* word, uint64_t expected, uint64_t desired) {
    unsigned long long found = expected;
    DeviceAtomic<unsigned long long>(*reinterpret_cast<unsigned long long*>(word)).compare_exchange_strong(found, desired, kRelaxed);
    return found;
  }
  __host__ __device__ static void add(double* word, double v) { DeviceAtomic<double>(*word).fetch_add(v, kRelaxed); }
  __host__ __device__ static void add(uint64_t* word, uint64_t v) {
    DeviceAtomic<unsigned long long>(*reinterpret_cast<unsigned long long*>(word)).fetch_add(v, kRelaxed);
  }
  __host__ __device__ static void min(int64_t* word, int64_t v) {
    DeviceAtomic<long long>(*reinterpret_cast<long long*>(word)).fetch_min(v, kRelaxed);
  }
  __host__ __device__ static void max(int64_t* word, int64_t v) {
    DeviceAtomic<long long>(*reinterpret_cast<long long*>(word)).fetch_max(v, kRelaxed);
  }
};

/// How a block table keeps fold @p f's accumulator in its 8 bytes a slot. Shared memory's
/// 32-bit atomic add is one instruction where a 64-bit one is a loop (block_add_split), so:
///  - Count32: a count, as a signed 32-bit count in the first word (a tile has fewer than
///    2^31 rows, and a row adds +1 or -1);
///  - SplitSum: an integer sum, as two 32-bit words (block_add_split);
///  - Word64: anything else (float sums, min, max), one 64-bit word.
/// The table writes and reads each cell only as its kind says.
enum class BlockCell { Count32, SplitSum, Word64 };
__host__ __device__ inline BlockCell block_cell_of(const FoldView& f) {
  if (f.op == kFoldCountRows || f.op == kFoldCountValid) return BlockCell::Count32;
  return f.op == kFoldSum && !f.float_acc ? BlockCell::SplitSum : BlockCell::Word64;
}

/// Atomics on a block's shared memory (block_kernel.cuh). Every access a thread makes to a
/// table other threads change is one of them, reads too (racecheck sees no hazard).
struct BlockScopeAtomics {
  /// An atomic read: a compare-and-swap that can only put back the value it finds.
  __host__ __device__ static uint64_t load(uint64_t* word) { return block_cas(word, 0, 0); }
  __host__ __device__ static uint64_t cas(uint64_t* word, uint64_t expected, uint64_t desired) {
    return block_cas(word, expected, desired);
  }
  __host__ __device__ static void add(double* word, double v) { block_add(word, v); }
  /// An integer add to an accumulator kept as two 32-bit words (BlockCell::SplitSum). No
  /// block-table cell reaches it (BlockHashFold::fold_into_block_table adds integers itself);
  /// fold_atomically's integer branch needs it to compile.
  __host__ __device__ static void add(uint64_t* word, uint64_t v) { block_add_split(reinterpret_cast<uint32_t*>(word), v); }
  __host__ __device__ static void min(int64_t* word, int64_t v) { block_min(word, v); }
  __host__ __device__ static void max(int64_t* word, int64_t v) { block_max(word, v); }
};

/// Folds @p value into the accumulator at @p word with @p Atomics (DeviceScopeAtomics or
/// BlockScopeAtomics), an atomic of the fold's kind.
template <class Atomics> __host__ __device__ inline void fold_atomically(uint64_t* word, const FoldView& f, uint64_t value) {
  if (f.float_acc) {
    const double v = as_double(value);
    if (f.op == kFoldMin || f.op == kFoldMax) {
      uint64_t seen = Atomics::load(word);
      while (replaces(v, as_double(seen), f.op == kFoldMin)) {
        const uint64_t found = Atomics::cas(word, seen, value);
        if (found == seen) break;
        seen = found;
      }
    } else if (v != 0.0) {
      Atomics::add(reinterpret_cast<double*>(word), v);
    }
    return;
  }
  const int64_t v = static_cast<int64_t>(value);
  if (f.op == kFoldMin) Atomics::min(reinterpret_cast<int64_t*>(word), v);
  else if (f.op == kFoldMax) Atomics::max(reinterpret_cast<int64_t*>(word), v);
  else if (v != 0) Atomics::add(word, value);
}

__host__ __device__ inline int sign_of(const int8_t* row_sign, int64_t row) { return row_sign ? row_sign[row] : 1; }

// ---------------------------------------------------------------- hash strategy

constexpr uint64_t kEmptySlot = ~uint64_t{0};
constexpr uint64_t kNoSlot = ~uint64_t{0};
constexpr int64_t kNoRow = std::numeric_limits<int64_t>::max();
constexpr uint64_t kMaxProbes = 512;
/// Slots are int32 indexes (capacity + 1 of them must fit).
constexpr uint64_t kMaxHashCapacity = uint64_t{1} << 30;

/// The 64-bit key of a row: the one exact integer key column read where it is, or the keys
/// computed into an array (hashed keys).
struct RowKeys {
  const uint64_t* computed = nullptr;
  ColumnView exact;
  __host__ __device__ uint64_t operator()(int64_t row) const {
    return computed ? computed[row] : static_cast<uint64_t>(integer_at(exact, row));
  }
};

/// The device-wide open-addressing table of the hash strategy: a key per slot, the first
/// row of each slot's key, and the accumulators (fold-major). The key kEmptySlot itself lives
/// in the extra slot at index capacity. A direct table (exact keys, all within capacity of
/// direct_base) holds key k in slot k - direct_base: no key is probed for, and slot_keys is
/// not kept (a slot's key is its index plus direct_base).
struct DeviceHashTable {
  uint64_t* slot_keys;     // capacity + 1 (none in a direct table)
  int64_t* first_row;      // capacity + 1
  uint64_t* accumulators;  // fold_count x (capacity + 1)
  uint64_t mask;           // capacity - 1 (a power of two; any capacity of a direct table)
  unsigned int* overflow;  // set once a probe run is too long: the table is abandoned for sorting
  bool direct = false;
  uint64_t direct_base = 0;

  __host__ __device__ uint64_t slots() const { return mask + 2; }
  __host__ __device__ bool overflowed() const { return DeviceAtomic<unsigned int>(*overflow).load(kRelaxed) != 0; }

  /// The slot of @p key, claimed if it has none; kNoSlot when the table is full (or, direct,
  /// has no slot for the key: it was sized by the keys' exact range, so never).
  __host__ __device__ uint64_t slot_of(uint64_t key) const {
    const uint64_t capacity = mask + 1;
    if (direct) {
      if (key - direct_base < capacity) return key - direct_base;
      DeviceAtomic<unsigned int>(*overflow).store(1, kRelaxed);
      return kNoSlot;
    }
    if (key == kEmptySlot) return capacity;
    uint64_t i = fmix64(key) & mask;
    for (uint64_t probes = 0;; ++probes, i = (i + 1) & mask) {
      // At a load of at most 1/2 probe runs are short; a long one means the table is
      // (nearly) full, and scanning all of it per key would cost more than sorting.
      if (probes == capacity || probes == kMaxProbes) {
        DeviceAtomic<unsigned int>(*overflow).store(1, kRelaxed);
        return kNoSlot;
      }
      DeviceAtomic<unsigned long long> cell(*reinterpret_cast<unsigned long long*>(slot_keys + i));
      unsigned long long seen = cell.load(kRelaxed);
      if (seen == kEmptySlot) {
        unsigned long long expected = kEmptySlot;
        seen = cell.compare_exchange_strong(expected, key, kRelaxed) ? key : expected;
      }
      if (seen == key) return i;
    }
  }
  /// The slot of @p key, which the table holds (read only: after the fold).
  __host__ __device__ uint64_t find(uint64_t key) const {
    if (direct) return key - direct_base;
    if (key == kEmptySlot) return mask + 1;
    uint64_t i = fmix64(key) & mask;
    while (slot_keys[i] != key) i = (i + 1) & mask;
    return i;
  }
  __host__ __device__ void note_row(uint64_t slot, int64_t row) const {
    DeviceAtomic<long long> first(*reinterpret_cast<long long*>(first_row + slot));
    if (row < first.load(kRelaxed)) first.fetch_min(row, kRelaxed);
  }
  __host__ __device__ void fold(uint64_t slot, int32_t f, const FoldView& view, uint64_t value) const {
    fold_atomically<DeviceScopeAtomics>(accumulators + static_cast<uint64_t>(f) * slots() + slot, view, value);
  }
};

/// The hash strategy's one pass over the rows, as a block kernel (block_kernel.cuh). Each
/// block takes one tile of rows and folds them into a small table in its shared memory, so
/// that the many rows of a few keys meet in shared-memory atomics rather than in a handful
/// of device-memory words; at the end the block adds its table into the device table. A row
/// whose key finds no room in the block's table folds straight into the device table.
/// Exact keys whose sampled range fits the table are placed directly: key k in slot
/// k - direct_base, no probe and no compare-and-swap of the key (a key outside the window
/// goes to the device table).
/// Phases: 0 clears the block's table, 1 folds the tile's rows, 2 flushes.
struct BlockHashFold {
  static constexpr int kPhases = 3;
  static constexpr int kThreads = 512;
  static constexpr int kBlocksPerMultiprocessor = 2;
  /// Rows a thread loads before it folds them: loads in flight hide the memory's latency.
  static constexpr int kRowsInFlight = 4;
  /// Folds whose values load together with the keys (sum and count, say).
  static constexpr int kEarlyFolds = 1;
  /// A short run: a table sized for its keys has its keys within one or two slots of their
  /// hash, and one that is full should not hold up the rows that go to the device table.
  static constexpr uint32_t kMaxBlockProbes = 8;
  /// The run when more keys are expected than half the table holds: the table keeps the keys
  /// that come first (a skewed key's hot ones), and every other row, most rows when keys are
  /// many and even, goes on to the device table after two probes rather than eight.
  static constexpr uint32_t kOverloadedBlockProbes = 2;
  static constexpr uint32_t kNoFirst = ~uint32_t{0};
  /// Marks a row's slot as the device table's (whose slots, at most kMaxHashCapacity + 1,
  /// need 31 bits).
  static constexpr uint32_t kInDeviceTable = uint32_t{1} << 31;
  static_assert(kMaxHashCapacity + 1 <= kInDeviceTable, "a device slot and the mark share 32 bits");

  RowKeys keys;
  int64_t rows;
  int64_t rows_per_block;  // < 2^31: a tile's rows are 32-bit offsets, its counts 32-bit signed
  DeviceHashTable table;
  const FoldView* folds;
  int32_t fold_count;
  const int8_t* row_sign;
  /// Slots of each block's table, a power of two; 0: no block table. One more slot holds
  /// the key kEmptySlot (in a hashed table).
  uint32_t block_slots;
  /// Direct tables: slot s holds key direct_base + s (mod 2^64); the key array and the extra
  /// slot are not used. Exact keys only.
  bool direct = false;
  uint64_t direct_base = 0;
  /// Slots a key probes in a hashed block table (block_probe_limit).
  uint32_t max_block_probes = kMaxBlockProbes;

  /// Shared memory per block: per slot a key, the accumulators and a 32-bit first row.
  static size_t shared_bytes(uint32_t block_slots, int32_t fold_count) {
    return (static_cast<size_t>(block_slots) + 1) * (sizeof(uint64_t) * (1 + static_cast<size_t>(fold_count)) + sizeof(uint32_t));
  }

  __host__ __device__ void operator()(int phase, const BlockThread& at, unsigned char* shared) const {
    const uint32_t slots = block_slots + 1;
    uint64_t* slot_key = reinterpret_cast<uint64_t*>(shared);
    uint64_t* acc = slot_key + slots;
    uint32_t* first = reinterpret_cast<uint32_t*>(acc + static_cast<size_t>(fold_count) * slots);
    const int64_t begin = at.block * rows_per_block;
    const int64_t end = rows < begin + rows_per_block ? rows : begin + rows_per_block;
    if (phase == 0) {
      for (uint32_t s = static_cast<uint32_t>(at.thread); s < slots; s += static_cast<uint32_t>(at.threads)) {
        slot_key[s] = kEmptySlot;
        first[s] = kNoFirst;
        for (int32_t f = 0; f < fold_count; ++f) set_accumulator(acc + static_cast<size_t>(f) * slots + s, folds[f], fold_identity(folds[f]));
      }
    } else if (phase == 1) {
      if (table.overflowed()) return;  // another block filled the device table: sorting takes over
      const int64_t stride = at.threads;
      for (int64_t base = begin + at.thread; base < end; base += stride * kRowsInFlight) {
        uint64_t key[kRowsInFlight];
        // Where each row folds: a slot of the block's table, or one of the device table
        // marked kInDeviceTable.
        uint32_t slot[kRowsInFlight] = {};
        // The first folds' values load with the keys, before the slots' atomics, so that a
        // warp waits on memory once a pass rather than once a fold.
        uint64_t early_value[kEarlyFolds][kRowsInFlight];
#pragma unroll
        for (int u = 0; u < kRowsInFlight; ++u) key[u] = base + u * stride < end ? keys(base + u * stride) : 0;
#pragma unroll
        for (int e = 0; e < kEarlyFolds; ++e) {
          if (e < fold_count) load_values(folds[e], base, stride, end, early_value[e]);
        }
#pragma unroll
        for (int u = 0; u < kRowsInFlight; ++u) {
          const int64_t row = base + u * stride;
          if (row >= end) continue;
          slot[u] = block_slot_of(slot_key, key[u]);
          if (slot[u] != kNoFirst) {
            block_min(first + slot[u], static_cast<uint32_t>(row - begin));
          } else {
            const uint64_t in_device = table.slot_of(key[u]);
            if (in_device == kNoSlot) return;  // the device table is full: sorting takes over
            table.note_row(in_device, row);
            slot[u] = static_cast<uint32_t>(in_device) | kInDeviceTable;
          }
        }
#pragma unroll
        for (int e = 0; e < kEarlyFolds; ++e) {
          if (e < fold_count) fold_values(e, base, stride, end, slot, early_value[e], acc, slots);
        }
        for (int32_t f = kEarlyFolds; f < fold_count; ++f) {
          uint64_t value[kRowsInFlight];
          load_values(folds[f], base, stride, end, value);
          fold_values(f, base, stride, end, slot, value, acc, slots);
        }
      }
    } else {
      if (table.overflowed()) return;
      for (uint32_t s = static_cast<uint32_t>(at.thread); s < slots; s += static_cast<uint32_t>(at.threads)) {
        if (first[s] == kNoFirst) continue;  // no row of the tile has this slot
        const uint64_t target = table.slot_of(direct ? direct_base + s : slot_key[s]);
        if (target == kNoSlot) return;
        table.note_row(target, begin + first[s]);
        for (int32_t f = 0; f < fold_count; ++f)
          table.fold(target, f, folds[f], accumulator(acc + static_cast<size_t>(f) * slots + s, folds[f]));
      }
    }
  }

  /// What the pass's rows (base + u * stride, those before @p end) contribute to @p fold.
  __host__ __device__ void load_values(const FoldView& fold, int64_t base, int64_t stride, int64_t end,
                                       uint64_t (&value)[kRowsInFlight]) const {
#pragma unroll
    for (int u = 0; u < kRowsInFlight; ++u) {
      const int64_t row = base + u * stride;
      value[u] = row < end ? contribution(fold, row, sign_of(row_sign, row)) : 0;
    }
  }

  /// Folds @p value, fold @p f's values of the pass's rows, into the rows' slots.
  __host__ __device__ void fold_values(int32_t f, int64_t base, int64_t stride, int64_t end, const uint32_t (&slot)[kRowsInFlight],
                                       const uint64_t (&value)[kRowsInFlight], uint64_t* acc, uint32_t slots) const {
    const FoldView fold = folds[f];
#pragma unroll
    for (int u = 0; u < kRowsInFlight; ++u) {
      if (base + u * stride >= end) continue;
      if (slot[u] & kInDeviceTable) table.fold(slot[u] & ~kInDeviceTable, f, fold, value[u]);
      else fold_into_block_table(acc + static_cast<size_t>(f) * slots + slot[u], fold, value[u]);
    }
  }

  /// Folds @p value into a block table's accumulator @p cell, as its kind (BlockCell) says.
  __host__ __device__ static void fold_into_block_table(uint64_t* cell, const FoldView& fold, uint64_t value) {
    switch (block_cell_of(fold)) {
      case BlockCell::Count32:  // +1 or -1, in 32-bit two's complement
        if (value != 0) block_add(reinterpret_cast<uint32_t*>(cell), static_cast<uint32_t>(value));
        return;
      case BlockCell::SplitSum: block_add_split(reinterpret_cast<uint32_t*>(cell), value); return;
      default: fold_atomically<BlockScopeAtomics>(cell, fold, value);
    }
  }

  /// Writes and reads a block table's accumulator as its kind (BlockCell) says.
  __host__ __device__ static void set_accumulator(uint64_t* cell, const FoldView& fold, uint64_t value) {
    uint32_t* words = reinterpret_cast<uint32_t*>(cell);
    switch (block_cell_of(fold)) {
      case BlockCell::Count32: words[0] = static_cast<uint32_t>(value); return;
      case BlockCell::SplitSum:
        words[0] = static_cast<uint32_t>(value);
        words[1] = static_cast<uint32_t>(value >> 32);
        return;
      default: *cell = value;
    }
  }
  __host__ __device__ static uint64_t accumulator(const uint64_t* cell, const FoldView& fold) {
    const uint32_t* words = reinterpret_cast<const uint32_t*>(cell);
    switch (block_cell_of(fold)) {
      case BlockCell::Count32: return static_cast<uint64_t>(static_cast<int64_t>(static_cast<int32_t>(words[0])));
      case BlockCell::SplitSum: return static_cast<uint64_t>(words[1]) << 32 | words[0];
      default: return *cell;
    }
  }

  /// The block slot of @p key, claimed if it has none; kNoFirst when a short probe run finds
  /// no room, or a direct table has no slot for it (the row then goes to the device table).
  __host__ __device__ uint32_t block_slot_of(uint64_t* slot_key, uint64_t key) const {
    if (direct) {  // before kEmptySlot's own slot: here key ~0 (-1) is an ordinary key
      const uint64_t offset = key - direct_base;
      return offset < block_slots ? static_cast<uint32_t>(offset) : kNoFirst;
    }
    if (key == kEmptySlot) return block_slots;
    if (block_slots == 0) return kNoFirst;
    const uint32_t mask = block_slots - 1;
    const uint32_t probes = block_slots < max_block_probes ? block_slots : max_block_probes;
    uint32_t i = static_cast<uint32_t>(fmix64(key)) & mask;
    for (uint32_t p = 0; p < probes; ++p, i = (i + 1) & mask) {
      const uint64_t seen = block_cas(slot_key + i, kEmptySlot, key);  // claims an empty slot, reads a taken one
      if (seen == kEmptySlot || seen == key) return i;
    }
    return kNoFirst;
  }
};

/// Counts the rows whose key differs from the key of their slot's first row (hashed keys:
/// a 64-bit collision put two keys in one slot).
struct VerifyBySlot {
  RowKeys keys;
  DeviceHashTable table;
  const ColumnView* key_columns;
  int32_t key_count;
  unsigned long long* mismatches;
  __host__ __device__ void operator()(int64_t row) const {
    count_if_keys_differ(key_columns, key_count, row, table.first_row[table.find(keys(row))], mismatches);
  }
};

struct SlotUsed {
  const int64_t* first_row;
  __host__ __device__ bool operator()(int64_t slot) const { return first_row[slot] != kNoRow; }
};

struct InitAccumulators {
  uint64_t* accumulators;
  const FoldView* folds;
  uint64_t slots;
  __host__ __device__ void operator()(int64_t i) const { accumulators[i] = fold_identity(folds[static_cast<uint64_t>(i) / slots]); }
};

// ---------------------------------------------------------------- sort strategy

struct ContributionAt {
  FoldView fold;
  const int64_t* row_at;
  const int8_t* row_sign;
  __host__ __device__ uint64_t operator()(int64_t i) const {
    const int64_t row = row_at[i];
    return contribution(fold, row, sign_of(row_sign, row));
  }
};

struct SegmentHead {
  const uint64_t* sorted_keys;
  __host__ __device__ int32_t operator()(int64_t i) const { return i == 0 || sorted_keys[i] != sorted_keys[i - 1] ? 1 : 0; }
};

struct MinRow {
  __host__ __device__ int64_t operator()(int64_t a, int64_t b) const { return a < b ? a : b; }
};

// ---------------------------------------------------------------- output

/// Gathers group @p g's key, first row and accumulators from source index order[g] (a slot
/// or a segment). Source keys are the keys less @p key_offset (a sort's narrowed keys, a
/// direct table's slots).
struct GatherGroups {
  const int64_t* order;
  const uint64_t* key_src;  // nullptr: a source's key is its index (a direct table's slot)
  uint64_t key_offset;
  const int64_t* first_row_src;
  const uint64_t* acc_src;  // fold_count x source_stride
  uint64_t source_stride;
  int32_t fold_count;
  uint64_t* key_out;
  int64_t* first_row_out;
  uint64_t* acc_out;        // fold_count x groups
  uint64_t groups;
  __host__ __device__ void operator()(int64_t g) const { write(g, order[g]); }
  /// Writes source @p s as group @p g.
  __host__ __device__ void write(int64_t g, int64_t s) const {
    key_out[g] = (key_src ? key_src[s] : static_cast<uint64_t>(s)) + key_offset;
    first_row_out[g] = first_row_src[s];
    for (int32_t f = 0; f < fold_count; ++f)
      acc_out[static_cast<uint64_t>(f) * groups + g] = acc_src[static_cast<uint64_t>(f) * source_stride + s];
  }
};

/// Groups gather_groups places by counting rather than sorting: at most this many, each
/// counts the groups whose first row is smaller, in one launch of groups^2 comparisons (4M
/// at most), where a radix sort of (first row, source) pairs takes two copies and several
/// launches of its own.
constexpr size_t kGroupsPlacedByCounting = 2048;

/// Marks group @p i's first row.
struct MarkFirstRow {
  const int64_t* sources;
  const int64_t* source_first_row;
  int32_t* first_row_mark;  // a row each
  __host__ __device__ void operator()(int64_t i) const { first_row_mark[source_first_row[sources[i]]] = 1; }
};

/// Group @p i writes itself at its place in order of first row: the marks of the rows before
/// its first row, counted by an exclusive scan of MarkFirstRow's marks.
struct PlaceGroupByScan {
  GatherGroups gather;  // order unused
  const int64_t* sources;
  const int32_t* marks_before;  // a row each
  __host__ __device__ void operator()(int64_t i) const {
    const int64_t s = sources[i];
    gather.write(marks_before[gather.first_row_src[s]], s);
  }
};

/// Group @p i (source sources[i]) finds its place in order of first row, the number of
/// groups whose first row is smaller (first rows are distinct), and writes itself there.
struct PlaceGroupByCounting {
  GatherGroups gather;  // order unused
  const int64_t* sources;
  __host__ __device__ void operator()(int64_t i) const {
    const int64_t s = sources[i];
    const int64_t mine = gather.first_row_src[s];
    int64_t place = 0;
    for (uint64_t j = 0; j < gather.groups; ++j) place += gather.first_row_src[sources[j]] < mine ? 1 : 0;
    gather.write(place, s);
  }
};

/// The row of sample @p i of @p count spread evenly over @p rows rows: floor(i * rows /
/// count), without overflow (i < count). A plain stride of rows / count would leave the last
/// rows unsampled, all but the first 4096 of a batch of 8191 rows.
__host__ __device__ inline int64_t sampled_row(int64_t i, uint64_t rows, uint64_t count) {
  const uint64_t at = static_cast<uint64_t>(i);
  return static_cast<int64_t>(at * (rows / count) + at * (rows % count) / count);
}

struct SampledRow {
  uint64_t rows;
  uint64_t count;
  __host__ __device__ int64_t operator()(int64_t i) const { return sampled_row(i, rows, count); }
};

struct CastToUnsigned {
  __host__ __device__ uint64_t operator()(int64_t v) const { return static_cast<uint64_t>(v); }
};

/// Bits needed for values below @p bound (radix sorts skip the rest).
inline int bit_width(uint64_t bound) {
  int bits = 1;
  while (bits < 64 && (uint64_t{1} << bits) < bound) ++bits;
  return bits;
}

inline uint64_t next_pow2(uint64_t v) {
  uint64_t p = 1;
  while (p < v) p <<= 1;
  return p;
}

/// The least and greatest value of an exact key column (or of a sample of it).
struct KeyRange {
  int64_t least;
  int64_t greatest;
  /// greatest - least, without overflow.
  __host__ __device__ uint64_t span() const { return static_cast<uint64_t>(greatest) - static_cast<uint64_t>(least); }
};

/// What a sample of the keys says: how many distinct keys it holds, how many of those it saw
/// once and twice, and its least and greatest key read as int64 (an exact key's value).
struct KeySample {
  size_t size = 0;
  size_t distinct = 0;
  size_t singletons = 0;
  size_t doubletons = 0;
  int64_t least = 0;
  int64_t greatest = 0;
  KeyRange range() const { return KeyRange{least, greatest}; }
};

/// The distinct keys of @p rows rows as @p sample estimates them (Chao1, bias-corrected: the
/// keys the sample saw, plus the unseen ones its singletons and doubletons imply).
inline size_t estimate_distinct(const KeySample& sample, size_t rows) {
  if (sample.size >= rows) return sample.distinct;
  const double f1 = static_cast<double>(sample.singletons), f2 = static_cast<double>(sample.doubletons);
  const double keys = static_cast<double>(sample.distinct) + f1 * (f1 - 1) / (2 * (f2 + 1));
  return keys >= static_cast<double>(rows) ? rows : static_cast<size_t>(keys);
}

/// Bytes of the hash strategy's device table for @p keys keys: a key, a first row and the
/// accumulators per slot, four slots a key.
inline uint64_t device_table_bytes(size_t keys, size_t fold_count) {
  return next_pow2(std::max<uint64_t>(1024, 4 * static_cast<uint64_t>(keys))) * (16 + 8 * static_cast<uint64_t>(fold_count));
}

/// Bytes of a direct device table (DeviceHashTable::direct) over a range of @p range_keys
/// keys: a first row and the accumulators per slot, one extra slot.
inline uint64_t direct_device_table_bytes(uint64_t range_keys, size_t fold_count) {
  return (range_keys + 1) * (8 + 8 * static_cast<uint64_t>(fold_count));
}

/// Strategy for @p rows rows given a sample of their keys: hash when the keys are few
/// enough for the device table to stay in (half of) the L2 cache, where its atomics cost
/// less than radix sorting every row; sort otherwise. Keys that repeat in the sample but
/// whose singletons promise many more (a few hot keys and a long tail) are sorted: a table
/// sized for the tail would not stay in cache, one sized for the hot keys would overflow.
inline GroupStrategy choose_strategy(size_t rows, const KeySample& sample, size_t fold_count, size_t l2_cache_bytes) {
  if (rows <= 4096) return GroupStrategy::Hash;
  return device_table_bytes(estimate_distinct(sample, rows), fold_count) <= l2_cache_bytes / 2 ? GroupStrategy::Hash
                                                                                                  : GroupStrategy::Sort;
}

/// The groups of a keyed reduction, left in @p Exec's memory: per group its 64-bit key, its
/// first row and its accumulators (fold-major), in order of first row.
template <class Exec> struct DeviceGroups {
  size_t groups = 0;
  size_t fold_count = 0;
  typename Exec::template Array<uint64_t> key;
  typename Exec::template Array<int64_t> first_row;
  typename Exec::template Array<uint64_t> accumulators;
  GroupStrategy strategy = GroupStrategy::Auto;
  bool hash_overflowed = false;
  bool direct_block_tables = false;
  bool direct_device_table = false;
  size_t sampled_distinct = 0;
  size_t estimated_keys = 0;
  unsigned long long key_collisions = 0;
};

/// Orders the used sources (slots or segments) by first row into @p out. A source's key is
/// @p source_key's entry (or, when that is nullptr, its index) plus @p key_offset. Few groups
/// are placed by counting; groups that are many for the rows (an eighth of them or more, the
/// sort strategy's many keys) by a scan over the rows of their first rows' marks, which moves
/// 12 bytes a row where a radix sort of the groups' (first row, source) pairs moves 32 a group
/// each pass; the rest by that sort.
template <class Exec>
void gather_groups(Exec& exec, size_t rows, const int64_t* sources, size_t groups, const uint64_t* source_key,
                   uint64_t key_offset, const int64_t* source_first_row, const uint64_t* source_acc, uint64_t source_stride,
                   int32_t fold_count, DeviceGroups<Exec>& out) {
  out.groups = groups;
  out.fold_count = static_cast<size_t>(fold_count);
  out.key = exec.template alloc<uint64_t>(groups);
  out.first_row = exec.template alloc<int64_t>(groups);
  out.accumulators = exec.template alloc<uint64_t>(static_cast<size_t>(fold_count) * groups);
  if (groups == 0) return;
  auto policy = exec.policy();
  GatherGroups gather{nullptr, source_key, key_offset, source_first_row, source_acc, source_stride, fold_count,
                      out.key.data(), out.first_row.data(), out.accumulators.data(), groups};
  const auto each_group = [&](auto place) {
    thrust::for_each_n(policy, thrust::counting_iterator<int64_t>(0), static_cast<int64_t>(groups), place);
  };
  if (groups <= kGroupsPlacedByCounting) {
    each_group(PlaceGroupByCounting{gather, sources});
    return;
  }
  if (groups * 8 >= rows && rows <= static_cast<size_t>(INT32_MAX)) {
    auto marks = exec.template alloc<int32_t>(rows);
    thrust::fill_n(policy, marks.data(), rows, int32_t{0});
    each_group(MarkFirstRow{sources, source_first_row, marks.data()});
    thrust::exclusive_scan(policy, marks.data(), marks.data() + rows, marks.data());
    each_group(PlaceGroupByScan{gather, sources, marks.data()});
    return;
  }
  auto order_keys = exec.template alloc<uint64_t>(groups);
  auto order = exec.template alloc<int64_t>(groups);
  // Sorting (first row, source) pairs gives the output order.
  thrust::copy_n(policy, thrust::make_transform_iterator(thrust::make_permutation_iterator(source_first_row, sources), CastToUnsigned{}),
                 groups, order_keys.data());
  thrust::copy_n(policy, sources, groups, order.data());
  exec.sort_pairs(order_keys.data(), order.data(), groups, bit_width(rows));
  gather.order = order.data();
  each_group(gather);
}

/// Slots of each block's table for about @p expected_keys keys: four times as many (short
/// probe runs), as many as leave room for two blocks a multiprocessor, a power of two.
inline uint32_t block_table_slots(const DeviceLimits& limits, size_t expected_keys, int32_t fold_count) {
  const size_t budget = shared_bytes_for_two_blocks(limits);
  uint32_t slots = static_cast<uint32_t>(next_pow2(std::clamp<uint64_t>(4 * static_cast<uint64_t>(expected_keys), 64, uint64_t{1} << 20)));
  while (slots > 1 && BlockHashFold::shared_bytes(slots, fold_count) > budget) slots >>= 1;
  return slots > 1 ? slots : 0;
}

/// Slots a key probes in a hashed block table of @p block_slots slots for about
/// @p expected_keys keys: a full run where they fit at half load, a short one where they do
/// not (BlockHashFold::kOverloadedBlockProbes).
inline uint32_t block_probe_limit(size_t expected_keys, uint32_t block_slots) {
  return expected_keys <= block_slots / 2 ? BlockHashFold::kMaxBlockProbes : BlockHashFold::kOverloadedBlockProbes;
}

/// Where a direct block table of @p block_slots slots starts for exact keys whose sample
/// spans [least, greatest]: centred on the sample, so that keys a little beyond it still
/// have a slot; nullopt when the sampled range does not fit the table.
inline std::optional<uint64_t> direct_table_base(const KeyRange& sampled, uint32_t block_slots) {
  const uint64_t span = sampled.span();
  if (block_slots == 0 || span >= block_slots) return std::nullopt;
  return static_cast<uint64_t>(sampled.least) - (block_slots - 1 - span) / 2;  // wraps as the slots' keys do
}

/// Hash strategy; returns false when the device table overflowed (@p out is then not filled).
/// @p expected_keys sizes the blocks' tables, @p capacity the device table. Exact keys with
/// @p sampled_range (their sample's least and greatest) go into direct block tables when that
/// range fits one. With @p direct_device_base the device table is direct: exact keys, all in
/// [base, base + capacity).
template <class Exec>
bool reduce_with_hash_table(Exec& exec, const GroupedInput& in, const RowKeys& row_keys, const FoldView* folds,
                            const ColumnView* keys, bool verify, uint64_t capacity, size_t expected_keys,
                            const std::optional<KeyRange>& sampled_range, const std::optional<uint64_t>& direct_device_base,
                            DeviceGroups<Exec>& out) {
  auto policy = exec.policy();
  const uint64_t slots = capacity + 1;
  const int32_t fold_count = static_cast<int32_t>(in.folds.size());
  auto slot_keys = exec.template alloc<uint64_t>(direct_device_base ? 0 : slots);
  auto first_row = exec.template alloc<int64_t>(slots);
  auto acc = exec.template alloc<uint64_t>(slots * static_cast<uint64_t>(fold_count));
  auto overflow = exec.template alloc<unsigned int>(1);
  if (!direct_device_base) thrust::fill_n(policy, slot_keys.data(), slots, kEmptySlot);
  thrust::fill_n(policy, first_row.data(), slots, kNoRow);
  thrust::fill_n(policy, overflow.data(), 1, 0u);
  thrust::for_each_n(policy, thrust::counting_iterator<int64_t>(0), static_cast<int64_t>(slots * fold_count),
                     InitAccumulators{acc.data(), folds, slots});
  const DeviceHashTable table{slot_keys.data(), first_row.data(), acc.data(), capacity - 1, overflow.data(),
                              direct_device_base.has_value(), direct_device_base.value_or(0)};

  // One wave of blocks, each over an equal tile (never more blocks than tiles of a few rows
  // a thread, and tiles short enough for 32-bit row offsets).
  const uint32_t block_slots = block_table_slots(exec.device_limits(), expected_keys, fold_count);
  const std::optional<uint64_t> direct_base =
      sampled_range && !row_keys.computed ? direct_table_base(*sampled_range, block_slots) : std::nullopt;
  const size_t shared = BlockHashFold::shared_bytes(block_slots, fold_count);
  const int64_t rows = static_cast<int64_t>(in.rows);
  const int64_t rows_a_pass = int64_t{BlockHashFold::kThreads} * BlockHashFold::kRowsInFlight;
  int64_t blocks = std::min(exec.template resident_blocks<BlockHashFold>(shared), (rows + rows_a_pass - 1) / rows_a_pass);
  blocks = std::max(blocks, (rows + 0x7FFFFFFE) / 0x7FFFFFFF);  // tiles of at most 2^31 - 1 rows
  const int64_t rows_per_block = (rows + blocks - 1) / blocks;
  exec.launch_blocks(BlockHashFold{row_keys, rows, rows_per_block, table, folds, fold_count, in.row_sign, block_slots,
                                   direct_base.has_value(), direct_base.value_or(0), block_probe_limit(expected_keys, block_slots)},
                     (rows + rows_per_block - 1) / rows_per_block, shared);
  unsigned int overflowed = 0;
  exec.to_host(&overflowed, overflow.data(), sizeof overflowed);
  if (overflowed) return false;

  auto used = exec.template alloc<int64_t>(slots);
  const auto used_end = thrust::copy_if(policy, thrust::counting_iterator<int64_t>(0), thrust::counting_iterator<int64_t>(static_cast<int64_t>(slots)),
                                        used.data(), SlotUsed{first_row.data()});
  const size_t groups = static_cast<size_t>(used_end - used.data());
  if (verify) {
    auto mismatches = exec.template alloc<unsigned long long>(1);
    thrust::fill_n(policy, mismatches.data(), 1, 0ull);
    thrust::for_each_n(policy, thrust::counting_iterator<int64_t>(0), rows,
                       VerifyBySlot{row_keys, table, keys, static_cast<int32_t>(in.keys.size()), mismatches.data()});
    exec.to_host(&out.key_collisions, mismatches.data(), sizeof(unsigned long long));
  }
  out.strategy = GroupStrategy::Hash;
  out.direct_block_tables = direct_base.has_value();
  out.direct_device_table = direct_device_base.has_value();
  // A direct table's keys are its slots plus its base (wrapping as the keys do).
  gather_groups(exec, in.rows, used.data(), groups, direct_device_base ? nullptr : slot_keys.data(), direct_device_base.value_or(0),
                first_row.data(), acc.data(), slots, fold_count, out);
  return true;
}

struct KeyRangeOfRow {
  ColumnView key;
  __host__ __device__ KeyRange operator()(int64_t row) const {
    const int64_t v = integer_at(key, row);
    return KeyRange{v, v};
  }
};
struct WidenKeyRange {
  __host__ __device__ KeyRange operator()(const KeyRange& a, const KeyRange& b) const {
    return KeyRange{a.least < b.least ? a.least : b.least, a.greatest > b.greatest ? a.greatest : b.greatest};
  }
};

/// Row @p row's exact key less @p offset, and the row, as 32-bit words (the keys' range
/// needs at most 32 bits).
struct NarrowKeyAndRow {
  ColumnView key;
  uint64_t offset;
  uint32_t* key_out;
  uint32_t* row_out;
  __host__ __device__ void operator()(int64_t row) const {
    key_out[row] = static_cast<uint32_t>(static_cast<uint64_t>(integer_at(key, row)) - offset);
    row_out[row] = static_cast<uint32_t>(row);
  }
};

/// Sorted 32-bit keys and rows as the 64-bit arrays the segmented passes read.
struct WidenSorted {
  const uint32_t* keys;
  const uint32_t* rows;
  uint64_t* key_out;
  int64_t* row_out;
  __host__ __device__ void operator()(int64_t i) const {
    key_out[i] = keys[i];
    row_out[i] = rows[i];
  }
};

/// The least and greatest value of the exact key column @p key over @p rows rows.
template <class Exec> KeyRange exact_key_range(Exec& exec, const ColumnView& key, size_t rows) {
  return thrust::transform_reduce(exec.policy(), thrust::counting_iterator<int64_t>(0),
                                  thrust::counting_iterator<int64_t>(static_cast<int64_t>(rows)), KeyRangeOfRow{key},
                                  KeyRange{std::numeric_limits<int64_t>::max(), std::numeric_limits<int64_t>::min()}, WidenKeyRange{});
}

/// Sort strategy. Exact keys are sorted less their least value, over as few bits as their
/// range needs (as 32-bit keys and rows where those fit); hashed keys (@p hashed_keys,
/// computed) over all 64. @p known_range: the exact keys' range, when already computed.
template <class Exec>
void reduce_by_sorting(Exec& exec, const GroupedInput& in, uint64_t* hashed_keys, const ColumnView* keys, bool verify,
                       const std::optional<KeyRange>& known_range, DeviceGroups<Exec>& out) {
  auto policy = exec.policy();
  const int64_t rows = static_cast<int64_t>(in.rows);
  const int32_t fold_count = static_cast<int32_t>(in.folds.size());
  typename Exec::template Array<uint64_t> narrowed;
  uint64_t* key_of_row = hashed_keys;
  uint64_t key_offset = 0;
  int key_bits = 64;
  if (!hashed_keys) {
    const KeyRange range = known_range ? *known_range : exact_key_range(exec, in.keys[0], in.rows);
    key_offset = static_cast<uint64_t>(range.least);
    key_bits = range.span() == ~uint64_t{0} ? 64 : bit_width(range.span() + 1);
    narrowed = exec.template alloc<uint64_t>(in.rows);
    key_of_row = narrowed.data();
  }
  auto row_at = exec.template alloc<int64_t>(in.rows);
  if (!hashed_keys && key_bits <= 32 && in.rows <= std::numeric_limits<uint32_t>::max()) {
    // Keys and rows that fit 32 bits are sorted as such, half the bytes a radix pass moves
    // of 64-bit ones, then widened for the segmented passes.
    auto narrow_keys = exec.template alloc<uint32_t>(in.rows);
    auto narrow_rows = exec.template alloc<uint32_t>(in.rows);
    thrust::for_each_n(policy, thrust::counting_iterator<int64_t>(0), rows, NarrowKeyAndRow{in.keys[0], key_offset, narrow_keys.data(), narrow_rows.data()});
    exec.sort_pairs(narrow_keys.data(), narrow_rows.data(), in.rows, key_bits);  // stable: a segment's rows stay in order
    thrust::for_each_n(policy, thrust::counting_iterator<int64_t>(0), rows, WidenSorted{narrow_keys.data(), narrow_rows.data(), key_of_row, row_at.data()});
  } else {
    if (!hashed_keys)
      thrust::for_each_n(policy, thrust::counting_iterator<int64_t>(0), rows, ExactKeyOf{in.keys[0], key_of_row, key_offset});
    thrust::copy_n(policy, thrust::counting_iterator<int64_t>(0), rows, row_at.data());
    exec.sort_pairs(key_of_row, row_at.data(), in.rows, key_bits);  // stable: a segment's rows stay in order
  }

  // One segment per key: each segment's first row, then one segmented reduce per fold.
  auto segment_keys = exec.template alloc<uint64_t>(in.rows);
  auto first_row = exec.template alloc<int64_t>(in.rows);
  const auto ends = thrust::reduce_by_key(policy, key_of_row, key_of_row + rows, row_at.data(), segment_keys.data(),
                                          first_row.data(), thrust::equal_to<uint64_t>(), MinRow{});
  const size_t groups = static_cast<size_t>(ends.first - segment_keys.data());
  auto acc = exec.template alloc<uint64_t>(groups * static_cast<size_t>(fold_count));
  auto discarded_keys = exec.template alloc<uint64_t>(groups);
  for (int32_t f = 0; f < fold_count; ++f) {
    const FoldView& fold = in.folds[static_cast<size_t>(f)];
    thrust::reduce_by_key(policy, key_of_row, key_of_row + rows,
                          thrust::make_transform_iterator(thrust::counting_iterator<int64_t>(0),
                                                          ContributionAt{fold, row_at.data(), in.row_sign}),
                          discarded_keys.data(), acc.data() + static_cast<size_t>(f) * groups,
                          thrust::equal_to<uint64_t>(), CombineFold{fold.op, fold.float_acc});
  }
  if (verify) {
    auto segment_of = exec.template alloc<int32_t>(in.rows);
    thrust::inclusive_scan(policy, thrust::make_transform_iterator(thrust::counting_iterator<int64_t>(0), SegmentHead{key_of_row}),
                           thrust::make_transform_iterator(thrust::counting_iterator<int64_t>(rows), SegmentHead{key_of_row}),
                           segment_of.data());
    auto mismatches = exec.template alloc<unsigned long long>(1);
    thrust::fill_n(policy, mismatches.data(), 1, 0ull);
    thrust::for_each_n(policy, thrust::counting_iterator<int64_t>(0), rows,
                       VerifyAgainstFirstRow{keys, static_cast<int32_t>(in.keys.size()), row_at.data(), segment_of.data(),
                                             1 /* an inclusive scan of heads counts from 1 */, first_row.data(),
                                             mismatches.data()});
    exec.to_host(&out.key_collisions, mismatches.data(), sizeof(unsigned long long));
  }
  auto sources = exec.template alloc<int64_t>(groups);
  thrust::copy_n(policy, thrust::counting_iterator<int64_t>(0), static_cast<int64_t>(groups), sources.data());
  out.strategy = GroupStrategy::Sort;
  gather_groups(exec, in.rows, sources.data(), groups, segment_keys.data(), key_offset, first_row.data(), acc.data(), groups, fold_count, out);
}

/// Counts the keys of a sample: how many distinct, how many seen once and twice, the least
/// and greatest as int64. In an open-addressing table at most half full, one pass: sorting
/// 4096 keys took 139 us on the development machine's CPU, counting them 18 us, against a
/// small batch's whole reduction of about 400 us.
inline KeySample count_sample(const std::vector<uint64_t>& sample) {
  KeySample counts;
  counts.size = sample.size();
  if (sample.empty()) return counts;
  const size_t mask = next_pow2(2 * sample.size()) - 1;
  std::vector<uint64_t> slot_key(mask + 1);
  std::vector<uint32_t> seen(mask + 1, 0);
  counts.least = counts.greatest = static_cast<int64_t>(sample[0]);
  for (uint64_t key : sample) {
    size_t i = fmix64(key) & mask;
    while (seen[i] != 0 && slot_key[i] != key) i = (i + 1) & mask;
    if (seen[i]++ == 0) {
      slot_key[i] = key;
      ++counts.distinct;
    }
    counts.least = std::min(counts.least, static_cast<int64_t>(key));
    counts.greatest = std::max(counts.greatest, static_cast<int64_t>(key));
  }
  for (uint32_t times : seen) {
    counts.singletons += times == 1;
    counts.doubletons += times == 2;
  }
  return counts;
}

/// Counts the keys of @p sample_size evenly spaced rows (copied to the host).
template <class Exec>
KeySample sample_keys(Exec& exec, const RowKeys& row_keys, size_t rows, size_t sample_size) {
  std::vector<uint64_t> sample(sample_size);
  auto picked = exec.template alloc<uint64_t>(sample_size);
  thrust::copy_n(exec.policy(),
                 thrust::make_transform_iterator(thrust::make_transform_iterator(thrust::counting_iterator<int64_t>(0), SampledRow{rows, sample_size}),
                                                 row_keys),
                 sample_size, picked.data());
  exec.to_host(sample.data(), picked.data(), sample_size * sizeof(uint64_t));
  return count_sample(sample);
}

/// Each row's 64-bit key into @p key_of_row: the value itself for one non-null integer key
/// column (unless in.force_hashed_keys), otherwise a hash of every key field (@p device_keys:
/// in.keys in @p exec's memory). Returns whether the keys are exact.
template <class Exec>
bool compute_row_keys(Exec& exec, const GroupedInput& in, const ColumnView* device_keys, uint64_t* key_of_row) {
  const bool exact = keyed_exactly(in);
  if (exact) {
    thrust::for_each_n(exec.policy(), thrust::counting_iterator<int64_t>(0), static_cast<int64_t>(in.rows),
                       ExactKeyOf{in.keys[0], key_of_row});
  } else {
    thrust::for_each_n(exec.policy(), thrust::counting_iterator<int64_t>(0), static_cast<int64_t>(in.rows),
                       HashedKeyOf{device_keys, static_cast<int32_t>(in.keys.size()), key_of_row});
  }
  return exact;
}

/// reduceByKey of @p in (columns already in @p exec's memory); the groups stay there.
template <class Exec> DeviceGroups<Exec> grouped_reduce_in_place(Exec& exec, const GroupedInput& in) {
  // An exact key is its own value in every batch: hashing one batch's (its bitmap not taken
  // away) would mix hashed and exact keys in one window.
  SLUICE_EXPECTS(!in.exact_key || exact_integer_key(in.keys), "reduce_by_key: an exact key goes through take_exact_key first");
  DeviceGroups<Exec> out;
  out.fold_count = in.folds.size();
  if (in.rows == 0) {
    out.strategy = in.strategy == GroupStrategy::Auto ? GroupStrategy::Hash : in.strategy;
    return out;
  }
  auto keys = exec.template alloc<ColumnView>(in.keys.size());
  auto folds = exec.template alloc<FoldView>(in.folds.size());
  exec.to_device(keys.data(), in.keys.data(), in.keys.size() * sizeof(ColumnView));
  exec.to_device(folds.data(), in.folds.data(), in.folds.size() * sizeof(FoldView));

  // Exact keys are read where they are; hashed keys are computed once, into an array,
  // unless the caller has (in.row_hashes).
  const bool exact = keyed_exactly(in);
  const bool hashes_given = !exact && in.row_hashes != nullptr;
  auto hashed_keys = exec.template alloc<uint64_t>(exact || hashes_given ? 0 : in.rows);
  RowKeys row_keys;
  if (exact) row_keys.exact = in.keys[0];
  else row_keys.computed = hashes_given ? in.row_hashes : hashed_keys.data();
  if (!exact && !hashes_given) compute_row_keys(exec, in, keys.data(), hashed_keys.data());
  const bool verify = !exact && !in.keys.empty();

  GroupStrategy strategy = in.strategy;
  uint64_t capacity = next_pow2(std::max<uint64_t>(64, 2 * in.rows));
  // Auto chooses by a sample of the keys. A chosen hash strategy samples exact keys too: the
  // sample says where their direct tables lie and how many keys the block tables expect.
  std::optional<KeySample> sample;
  if (strategy == GroupStrategy::Auto || (strategy == GroupStrategy::Hash && exact)) {
    sample = sample_keys(exec, row_keys, in.rows, std::min<size_t>(in.rows, 4096));
    out.sampled_distinct = sample->distinct;
    out.estimated_keys = estimate_distinct(*sample, in.rows);
  }
  if (strategy == GroupStrategy::Auto) {
    strategy = choose_strategy(in.rows, *sample, in.folds.size(), exec.device_limits().l2_cache_bytes);
    if (strategy == GroupStrategy::Hash && in.rows > 4096) capacity = next_pow2(std::max<uint64_t>(1024, 4 * out.estimated_keys));
  }
  // Exact keys, more than half a block table holds, in a range too wide for a direct block
  // table, dense (at most 8 slots a key), whose direct device table stays in half the L2
  // cache: each key gets its own slot there (no probe, no compare-and-swap), so they are
  // hashed however many they are. The sample rules out the rest before a pass over the keys
  // finds the exact range (which a sort would need anyway). Few keys spread wide stay in a
  // small hashed table.
  std::optional<KeyRange> exact_range;
  std::optional<uint64_t> direct_device_base;
  if (exact && sample && in.rows > 4096) {
    const DeviceLimits limits = exec.device_limits();
    const auto direct_fits = [&](const KeyRange& r) {
      return r.span() < kMaxHashCapacity && direct_device_table_bytes(r.span() + 1, in.folds.size()) <= limits.l2_cache_bytes / 2;
    };
    const uint64_t sampled_span = sample->range().span();
    const uint32_t block_slots = block_table_slots(limits, out.estimated_keys, static_cast<int32_t>(in.folds.size()));
    if (sampled_span >= block_slots && out.estimated_keys > block_slots / 2 && sampled_span / 8 < out.estimated_keys &&
        direct_fits(sample->range())) {
      exact_range = exact_key_range(exec, in.keys[0], in.rows);
      if (direct_fits(*exact_range)) {
        direct_device_base = static_cast<uint64_t>(exact_range->least);
        capacity = exact_range->span() + 1;
        strategy = GroupStrategy::Hash;
      }
    }
  }
  if (strategy == GroupStrategy::Hash && capacity > kMaxHashCapacity) strategy = GroupStrategy::Sort;
  if (strategy == GroupStrategy::Hash) {
    // A batch with no sample (chosen hashing of hashed keys) may have as many keys as rows.
    const size_t expected_keys = sample ? out.estimated_keys : in.rows;
    // Exact keys within a small range go straight to their block-table slots: the sample
    // says where.
    std::optional<KeyRange> sampled_range;
    if (exact) sampled_range = sample->range();
    if (reduce_with_hash_table(exec, in, row_keys, folds.data(), keys.data(), verify, capacity, expected_keys, sampled_range,
                               direct_device_base, out))
      return out;
    // More keys than the sample suggested (or a probe run too long): sorting takes over.
    out.hash_overflowed = true;
  }
  // The sort orders the hashed keys in place: given ones are the caller's, so a copy.
  if (hashes_given) {
    hashed_keys = exec.template alloc<uint64_t>(in.rows);
    thrust::copy_n(exec.policy(), in.row_hashes, in.rows, hashed_keys.data());
  }
  reduce_by_sorting(exec, in, exact ? nullptr : hashed_keys.data(), keys.data(), verify, exact_range, out);
  return out;
}

/// Copies @p groups to the host.
template <class Exec> GroupedResult download_groups(Exec& exec, const DeviceGroups<Exec>& groups) {
  GroupedResult out;
  out.groups = groups.groups;
  out.fold_count = groups.fold_count;
  out.strategy = groups.strategy;
  out.hash_overflowed = groups.hash_overflowed;
  out.direct_block_tables = groups.direct_block_tables;
  out.direct_device_table = groups.direct_device_table;
  out.sampled_distinct = groups.sampled_distinct;
  out.estimated_keys = groups.estimated_keys;
  out.key_collisions = groups.key_collisions;
  out.first_row.resize(groups.groups);
  out.accumulators.resize(groups.groups * groups.fold_count);
  exec.to_host(out.first_row.data(), groups.first_row.data(), groups.groups * sizeof(int64_t));
  exec.to_host(out.accumulators.data(), groups.accumulators.data(), out.accumulators.size() * sizeof(uint64_t));
  return out;
}

/// reduceByKey of @p in; groups ordered by first row, copied to the host.
template <class Exec> GroupedResult grouped_reduce(Exec& exec, const GroupedInput& in) {
  const DeviceGroups<Exec> groups = grouped_reduce_in_place(exec, in);
  return download_groups(exec, groups);
}

/// Finds each row's group: a binary search of its 64-bit key among the groups' keys, sorted.
struct GroupOfRow {
  const uint64_t* key_of_row;
  const uint64_t* sorted_group_keys;
  const int64_t* group_of_sorted;
  int64_t groups;
  int32_t* group_of_row;
  __host__ __device__ void operator()(int64_t row) const {
    const uint64_t key = key_of_row[row];
    int64_t lo = 0, hi = groups;
    while (lo < hi) {
      const int64_t mid = lo + (hi - lo) / 2;
      if (sorted_group_keys[mid] < key) lo = mid + 1;
      else hi = mid;
    }
    group_of_row[row] = static_cast<int32_t>(group_of_sorted[lo]);
  }
};

/// Rows grouped by key, in @p Exec's memory: a dense group id per row and each group's first
/// row, groups in order of first row (as the CPU backend's group_rows numbers them).
template <class Exec> struct DeviceGroupIds {
  size_t groups = 0;
  typename Exec::template Array<int32_t> group_of_row;
  typename Exec::template Array<int64_t> first_row;
  /// Rows whose hashed key met another key's: the ids are then not exact and the caller
  /// must group on the host.
  unsigned long long key_collisions = 0;
};

/// Groups the rows of @p keys_only (its keys; its folds are ignored) in @p exec's memory.
template <class Exec> DeviceGroupIds<Exec> group_ids(Exec& exec, const GroupedInput& keys_only) {
  GroupedInput in = keys_only;
  FoldView count_rows;
  count_rows.op = kFoldCountRows;
  in.folds = {count_rows};
  // Each row's 64-bit key, computed once: the reduction takes hashed ones as given (exact
  // ones it reads where they are), and the rows find their groups by them below.
  auto key_of_row = exec.template alloc<uint64_t>(in.rows);
  if (in.rows > 0) {
    auto keys = exec.template alloc<ColumnView>(in.keys.size());
    exec.to_device(keys.data(), in.keys.data(), in.keys.size() * sizeof(ColumnView));
    compute_row_keys(exec, in, keys.data(), key_of_row.data());
    in.row_hashes = key_of_row.data();
  }
  DeviceGroups<Exec> groups = grouped_reduce_in_place(exec, in);
  DeviceGroupIds<Exec> out;
  out.groups = groups.groups;
  out.key_collisions = groups.key_collisions;
  out.first_row = std::move(groups.first_row);
  out.group_of_row = exec.template alloc<int32_t>(in.rows);
  if (in.rows == 0 || out.key_collisions != 0) return out;

  auto sorted_keys = exec.template alloc<uint64_t>(out.groups);
  auto group_of_sorted = exec.template alloc<int64_t>(out.groups);
  thrust::copy_n(exec.policy(), groups.key.data(), out.groups, sorted_keys.data());
  thrust::sequence(exec.policy(), group_of_sorted.data(), group_of_sorted.data() + out.groups);
  exec.sort_pairs(sorted_keys.data(), group_of_sorted.data(), out.groups);
  thrust::for_each_n(exec.policy(), thrust::counting_iterator<int64_t>(0), static_cast<int64_t>(in.rows),
                     GroupOfRow{key_of_row.data(), sorted_keys.data(), group_of_sorted.data(), static_cast<int64_t>(out.groups),
                                out.group_of_row.data()});
  return out;
}

/// Row @p i of a range: its group and its index within the range, as 32-bit words.
struct GroupAndRowOfRange {
  const int32_t* group_of_row;  // the range's first row's group
  uint32_t* group_out;
  uint32_t* row_out;
  __host__ __device__ void operator()(int64_t i) const {
    group_out[i] = static_cast<uint32_t>(group_of_row[i]);
    row_out[i] = static_cast<uint32_t>(i);
  }
};

/// Rows of a range ordered by group, in @p Exec's memory: group_by_key's and cogroup's lists.
template <class Exec> struct DeviceRowsByGroup {
  typename Exec::template Array<int64_t> rows;   ///< the range's rows (from 0), by group, in row order within one
  typename Exec::template Array<int32_t> start;  ///< groups + 1: where each group's rows start in rows
};

/// Rows [begin, end) of @p group_of_row (dense ids below @p groups) ordered by their group,
/// keeping row order within a group (a stable radix sort of (group, row) over the bits the
/// ids need), numbered from begin, and where each group's rows start.
/// @throw sluice::Error when the range has 2^31 rows or more (list offsets are 32-bit).
template <class Exec>
DeviceRowsByGroup<Exec> order_rows_by_group(Exec& exec, const int32_t* group_of_row, size_t begin, size_t end, size_t groups) {
  SLUICE_EXPECTS(begin <= end, "grouped lists: a range of rows that ends before it begins");
  const size_t n = end - begin;
  SLUICE_EXPECTS(n <= static_cast<size_t>(INT32_MAX), "list column exceeds 2^31 elements in one batch");
  auto policy = exec.policy();
  DeviceRowsByGroup<Exec> out;
  out.rows = exec.template alloc<int64_t>(n);
  out.start = exec.template alloc<int32_t>(groups + 1);
  if (n == 0) {
    thrust::fill_n(policy, out.start.data(), groups + 1, int32_t{0});
    return out;
  }
  auto group = exec.template alloc<uint32_t>(n);
  auto row = exec.template alloc<uint32_t>(n);
  thrust::for_each_n(policy, thrust::counting_iterator<int64_t>(0), static_cast<int64_t>(n),
                     GroupAndRowOfRange{group_of_row + begin, group.data(), row.data()});
  exec.sort_pairs(group.data(), row.data(), n, bit_width(groups));  // stable: rows stay in order within a group
  thrust::copy_n(policy, row.data(), n, out.rows.data());  // widened for the gather
  thrust::lower_bound(policy, group.data(), group.data() + n, thrust::counting_iterator<uint32_t>(0),
                      thrust::counting_iterator<uint32_t>(static_cast<uint32_t>(groups + 1)), out.start.data());
  return out;
}

}  // namespace sluice::gpu
