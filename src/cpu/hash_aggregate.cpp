// Keyed aggregation on the host: grouping rows by key (open-addressing hash tables with fast
// paths for integer and string keys), the partial -> combine -> finalize steps of the CPU
// backend, and the plan's schemas. This is the hot path of reduceByKey on the CPU, so every
// per-row loop is specialised by type and aggregate: no Value variants or virtual calls per row.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>

#include "sluice/backend.hpp"
#include "aggregate_plan.hpp"

namespace sluice {
namespace {

// ---------------------------------------------------------------- hashing

/// murmur3's 64-bit finaliser: every input bit affects every output bit.
constexpr uint64_t fmix64(uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdULL;
  k ^= k >> 33;
  k *= 0xc4ceb9fe1a85ec53ULL;
  k ^= k >> 33;
  return k;
}

constexpr uint64_t kMul1 = 0x9E3779B97F4A7C15ULL;
constexpr uint64_t kMul2 = 0xC2B2AE3D27D4EB4FULL;
/// Hash of a null key value, the same whichever column it comes from.
constexpr uint64_t kNullHash = 0x6A09E667F3BCC909ULL;

inline uint64_t load_bytes(const char* p, size_t n) {
  uint64_t w = 0;
  std::memcpy(&w, p, n);
  return w;
}

/// Hash of a string's bytes: 8 bytes per step (murmur-style), the tail read in one word.
inline uint64_t hash_bytes(std::string_view s) {
  const char* p = s.data();
  size_t n = s.size();
  uint64_t h = kMul1 ^ (static_cast<uint64_t>(n) * kMul2);
  for (; n >= 8; p += 8, n -= 8) h = std::rotl(h ^ (load_bytes(p, 8) * kMul2), 31) * kMul1;
  if (n > 0) {
    // Constant-size loads of the tail so that the compiler inlines them.
    uint64_t tail = 0;
    if (n >= 4) {
      tail = load_bytes(p, 4) | (load_bytes(p + n - 4, 4) << 32);
    } else {
      tail = static_cast<uint8_t>(p[0]) | (static_cast<uint64_t>(static_cast<uint8_t>(p[n / 2])) << 8) |
             (static_cast<uint64_t>(static_cast<uint8_t>(p[n - 1])) << 16);
    }
    h = std::rotl(h ^ (tail * kMul2), 31) * kMul1;
  }
  return fmix64(h);
}

/// Hash of a fixed-width key value. Floating point is canonicalised first so that values
/// that compare equal as keys (0.0 and -0.0; every NaN) hash alike.
template <class T> inline uint64_t hash_value(T v) {
  if constexpr (std::is_floating_point_v<T>) {
    double d = static_cast<double>(v);
    if (d == 0.0) d = 0.0;
    if (std::isnan(d)) d = std::numeric_limits<double>::quiet_NaN();
    return fmix64(std::bit_cast<uint64_t>(d));
  } else {
    return fmix64(static_cast<uint64_t>(static_cast<int64_t>(v)));
  }
}

/// Key equality: floating point keys treat NaN as equal to NaN (and -0.0 as 0.0).
template <class T> inline bool same_value(T a, T b) {
  if constexpr (std::is_floating_point_v<T>) return a == b || (std::isnan(a) && std::isnan(b));
  else return a == b;
}

/// Calls f.template operator()<T>() with the storage type of a fixed-width @p type.
template <class F> decltype(auto) visit_fixed(TypeId type, F&& f) {
  switch (type) {
    case TypeId::Bool: return f.template operator()<uint8_t>();
    case TypeId::Int32: return f.template operator()<int32_t>();
    case TypeId::Int64: return f.template operator()<int64_t>();
    case TypeId::Float32: return f.template operator()<float>();
    case TypeId::Float64: return f.template operator()<double>();
    default: break;
  }
  throw Error("internal: type " + std::string(type_name(type)) + " is not fixed-width");
}

// ---------------------------------------------------------------- open addressing

/// A power-of-two open-addressing table (linear probing) from a 64-bit tag to a group id.
/// With kTagIsHash the tag is a full hash of a key that lives elsewhere (strings, multi-column
/// keys) and @p same_key confirms a match; otherwise the tag is the integer key itself.
template <bool kTagIsHash> class SlotTable {
 public:
  explicit SlotTable(size_t rows) {
    // Start small when there are many rows: the number of distinct keys is unknown, and a
    // table sized for 10M rows of 1k keys would cost more to clear than to grow.
    size_t capacity = 16;
    const size_t wanted = std::min<size_t>(rows, size_t{1} << 16) * 2;
    while (capacity < wanted) capacity <<= 1;
    reset(capacity);
  }

  /// Group of the key tagged @p tag; when absent, inserts the group that @p make_group returns.
  template <class MakeGroup, class SameKey>
  int32_t find_or_insert(uint64_t tag, MakeGroup&& make_group, SameKey&& same_key) {
    if (size_ >= grow_at_) grow();
    for (size_t i = slot_of(tag);; i = (i + 1) & mask_) {
      Slot& slot = slots_[i];
      if (slot.group < 0) {
        slot.tag = tag;
        slot.group = make_group();
        ++size_;
        return slot.group;
      }
      if (slot.tag == tag && same_key(slot.group)) return slot.group;
    }
  }

 private:
  struct Slot {
    uint64_t tag;
    int32_t group;
  };

  size_t slot_of(uint64_t tag) const {
    if constexpr (kTagIsHash) return static_cast<size_t>(tag) & mask_;
    else return static_cast<size_t>(fmix64(tag)) & mask_;
  }

  void reset(size_t capacity) {
    slots_.assign(capacity, Slot{0, -1});
    mask_ = capacity - 1;
    grow_at_ = capacity / 10 * 7;  // load factor 0.7: short probes, 16 bytes per slot
  }

  void grow() {
    std::vector<Slot> old = std::move(slots_);
    reset(old.size() * 2);
    for (const Slot& s : old) {
      if (s.group < 0) continue;
      size_t i = slot_of(s.tag);
      while (slots_[i].group >= 0) i = (i + 1) & mask_;
      slots_[i] = s;
    }
  }

  std::vector<Slot> slots_;
  size_t mask_ = 0;
  size_t size_ = 0;
  size_t grow_at_ = 0;
};

// ---------------------------------------------------------------- grouping

/// Registers a new group whose first row is @p row and returns its id.
inline int32_t add_group(Grouping& g, size_t row) {
  g.first_row_of_group.push_back(static_cast<int64_t>(row));
  return static_cast<int32_t>(g.first_row_of_group.size() - 1);
}

/// Smallest and largest of @p values (not empty), with four independent running extremes so
/// that the loop is not one long dependency chain.
template <class T> std::pair<T, T> value_range(std::span<const T> values) {
  T lo[4] = {values[0], values[0], values[0], values[0]};
  T hi[4] = {values[0], values[0], values[0], values[0]};
  size_t r = 0;
  for (; r + 4 <= values.size(); r += 4) {
    for (size_t j = 0; j < 4; ++j) {
      lo[j] = std::min(lo[j], values[r + j]);
      hi[j] = std::max(hi[j], values[r + j]);
    }
  }
  for (; r < values.size(); ++r) {
    lo[0] = std::min(lo[0], values[r]);
    hi[0] = std::max(hi[0], values[r]);
  }
  return {std::min({lo[0], lo[1], lo[2], lo[3]}), std::max({hi[0], hi[1], hi[2], hi[3]})};
}

/// Assigns groups to the rows of one integer key column; @p find_or_insert(value, row)
/// returns the group of a valid value. Nulls form one group of their own.
template <class T, bool kNullable, class FindOrInsert>
void assign_integer_groups(const Column& column, Grouping& g, FindOrInsert&& find_or_insert) {
  const T* values = column.values<T>().data();
  int32_t* out = g.group_of_row.data();
  int32_t null_group = -1;
  for (size_t r = 0, rows = column.size(); r < rows; ++r) {
    if constexpr (kNullable) {
      if (!column.is_valid(r)) {
        if (null_group < 0) null_group = add_group(g, r);
        out[r] = null_group;
        continue;
      }
    }
    out[r] = find_or_insert(values[r], r);
  }
}

template <class T, bool kNullable> void group_integer_key(const Column& column, Grouping& g) {
  const size_t rows = column.size();
  if (rows == 0) return;
  // Small value ranges (dense ids, bools, small enums) index an array directly: no hashing,
  // no probing. The range includes the zeros under nulls, which only widens it.
  const auto [lo_value, hi_value] = value_range(column.values<T>());
  const uint64_t lo = static_cast<uint64_t>(static_cast<int64_t>(lo_value));
  const uint64_t range = static_cast<uint64_t>(static_cast<int64_t>(hi_value)) - lo;
  if (range < 2 * static_cast<uint64_t>(rows) + 1024) {
    g.first_row_of_group.reserve(std::min<size_t>(rows, static_cast<size_t>(range) + 2));
    std::vector<int32_t> group_of_value(static_cast<size_t>(range) + 1, -1);
    assign_integer_groups<T, kNullable>(column, g, [&](T v, size_t r) {
      int32_t& group = group_of_value[static_cast<uint64_t>(static_cast<int64_t>(v)) - lo];
      if (group < 0) group = add_group(g, r);
      return group;
    });
    return;
  }
  g.first_row_of_group.reserve(rows);  // virtual memory: only the pages used are touched
  SlotTable<false> table(rows);
  assign_integer_groups<T, kNullable>(column, g, [&](T v, size_t r) {
    return table.find_or_insert(
        static_cast<uint64_t>(static_cast<int64_t>(v)), [&] { return add_group(g, r); }, [](int32_t) { return true; });
  });
}

template <bool kNullable> void group_string_key(const Column& column, Grouping& g) {
  const size_t rows = column.size();
  const int32_t* offsets = column.offsets().data();
  const char* chars = column.chars().data();
  // Each distinct key is copied once into a compact arena: comparing against it stays in
  // cache, where comparing against the group's first row would miss on every row of a big batch.
  std::vector<char> key_chars;
  std::vector<size_t> key_offsets{0};
  auto key_of_group = [&](int32_t group) {
    const size_t first = key_offsets[static_cast<size_t>(group)];
    return std::string_view(key_chars.data() + first, key_offsets[static_cast<size_t>(group) + 1] - first);
  };
  g.first_row_of_group.reserve(rows);  // virtual memory: only the pages used are touched
  SlotTable<true> table(rows);
  int32_t null_group = -1;
  int32_t* out = g.group_of_row.data();
  for (size_t r = 0; r < rows; ++r) {
    if constexpr (kNullable) {
      if (!column.is_valid(r)) {
        if (null_group < 0) {
          null_group = add_group(g, r);
          key_offsets.push_back(key_chars.size());  // keeps arena entries aligned with group ids
        }
        out[r] = null_group;
        continue;
      }
    }
    const std::string_view s(chars + offsets[r], static_cast<size_t>(offsets[r + 1] - offsets[r]));
    out[r] = table.find_or_insert(
        hash_bytes(s),
        [&] {
          key_chars.insert(key_chars.end(), s.begin(), s.end());
          key_offsets.push_back(key_chars.size());
          return add_group(g, r);
        },
        [&](int32_t group) { return key_of_group(group) == s; });
  }
}

/// Per-row hashes of a multi-column key: per-column hashes combined column by column
/// (each column's loop specialised by type), then finalised.
std::vector<uint64_t> hash_key_rows(std::span<const Column* const> keys, size_t rows) {
  std::vector<uint64_t> hashes(rows, kMul2);
  uint64_t* h = hashes.data();
  auto mix_in = [](uint64_t& acc, uint64_t column_hash) { acc = (std::rotl(acc, 27) ^ column_hash) * kMul1; };
  for (const Column* column : keys) {
    const bool nullable = column->nullable();
    if (column->type() == TypeId::String) {
      for (size_t r = 0; r < rows; ++r)
        mix_in(h[r], !nullable || column->is_valid(r) ? hash_bytes(column->string_at(r)) : kNullHash);
      continue;
    }
    visit_fixed(column->type(), [&]<class T>() {
      const T* values = column->values<T>().data();
      if (!nullable) {
        for (size_t r = 0; r < rows; ++r) mix_in(h[r], hash_value(values[r]));
      } else {
        for (size_t r = 0; r < rows; ++r) mix_in(h[r], column->is_valid(r) ? hash_value(values[r]) : kNullHash);
      }
    });
  }
  for (size_t r = 0; r < rows; ++r) h[r] = fmix64(h[r]);
  return hashes;
}

}  // namespace

/// Whether row @p row of @p columns and row @p other_row of @p others (same types) hold equal
/// keys; null equals null.
bool same_key_rows(std::span<const Column* const> columns, size_t row, std::span<const Column> others, size_t other_row) {
  for (size_t c = 0; c < columns.size(); ++c) {
    const Column& a = *columns[c];
    const Column& b = others[c];
    const bool valid = a.is_valid(row);
    if (valid != b.is_valid(other_row)) return false;
    if (!valid) continue;
    if (a.type() == TypeId::String) {
      if (a.string_at(row) != b.string_at(other_row)) return false;
      continue;
    }
    const bool equal = visit_fixed(a.type(), [&]<class T>() { return same_value(a.values<T>()[row], b.values<T>()[other_row]); });
    if (!equal) return false;
  }
  return true;
}

namespace {

void group_general_keys(std::span<const Column* const> keys, size_t rows, Grouping& g) {
  const std::vector<uint64_t> hashes = hash_key_rows(keys, rows);
  // The key of each group, copied compactly (see group_string_key).
  std::vector<Column> group_keys;
  for (const Column* key : keys) group_keys.push_back(key->gather({}));
  g.first_row_of_group.reserve(rows);  // virtual memory: only the pages used are touched
  SlotTable<true> table(rows);
  int32_t* out = g.group_of_row.data();
  for (size_t r = 0; r < rows; ++r) {
    out[r] = table.find_or_insert(
        hashes[r],
        [&] {
          for (size_t c = 0; c < keys.size(); ++c) group_keys[c].append_from(*keys[c], r);
          return add_group(g, r);
        },
        [&](int32_t group) { return same_key_rows(keys, r, group_keys, static_cast<size_t>(group)); });
  }
}

}  // namespace

// ---------------------------------------------------------------- plan

std::string describe(const AggregateSpec& a) {
  return "aggregate '" + a.output + "' = " + std::string(aggregate_name(a.kind)) + "(" + a.input + ")";
}

ResolvedPlan resolve_plan(const KeyedAggregation& plan, const Schema& input) {
  ResolvedPlan resolved;
  std::vector<std::string_view> outputs;
  for (const auto& key : plan.keys) {
    const int i = input.find(key);
    SLUICE_EXPECTS(i >= 0, "reduce_by_key: no key field '" + key + "' in {" + input.to_string() + "}");
    SLUICE_EXPECTS(input[static_cast<size_t>(i)].type != TypeId::List,
                   "reduce_by_key: key field '" + key + "' is a list; lists cannot be keys");
    SLUICE_EXPECTS(std::find(outputs.begin(), outputs.end(), key) == outputs.end(),
                   "reduce_by_key: key field '" + key + "' is named twice");
    outputs.push_back(key);
    resolved.keys.push_back(static_cast<size_t>(i));
  }
  for (const auto& a : plan.aggregates) {
    SLUICE_EXPECTS(!a.output.empty(), "reduce_by_key: " + describe(a) + " has no output name");
    SLUICE_EXPECTS(std::find(outputs.begin(), outputs.end(), a.output) == outputs.end(),
                   "reduce_by_key: " + describe(a) + ": output name '" + a.output + "' is already a key or an output");
    outputs.push_back(a.output);
    if (a.input.empty()) {
      SLUICE_EXPECTS(a.kind == AggregateKind::Count,
                     "reduce_by_key: " + describe(a) + " needs an input field");
      resolved.inputs.push_back(-1);
      continue;
    }
    const int i = input.find(a.input);
    SLUICE_EXPECTS(i >= 0, "reduce_by_key: " + describe(a) + ": no field '" + a.input + "' in {" + input.to_string() + "}");
    const TypeId type = input[static_cast<size_t>(i)].type;
    if (a.kind != AggregateKind::Count) {
      SLUICE_EXPECTS(is_numeric(type) || type == TypeId::Bool,
                     "reduce_by_key: " + describe(a) + ": field '" + a.input + "' is " + std::string(type_name(type)) +
                         ", but " + std::string(aggregate_name(a.kind)) + " needs a numeric or bool field");
    }
    resolved.inputs.push_back(i);
  }
  return resolved;
}

/// Sums of integers and bools are int64 (wrapping like Spark's long); of floats, float64.
TypeId sum_type(TypeId input) {
  return input == TypeId::Float32 || input == TypeId::Float64 ? TypeId::Float64 : TypeId::Int64;
}

namespace {

// ---------------------------------------------------------------- accumulators

/// How an accumulator folds the rows of one column in.
enum class Fold : uint8_t {
  CountRows,   ///< + sign per row (no column)
  CountValid,  ///< + 1 per non-null row
  Sum,         ///< + sign * value: an int64 state wraps like Spark's long, else float64
  Min,         ///< smallest non-null value (NaN above every number, as in Spark)
  Max,         ///< largest non-null value
};

/// One accumulator per group: it becomes one column of a partial table.
struct Accumulator {
  Fold fold = Fold::CountRows;
  size_t column = 0;                   ///< the folded column (unused by CountRows)
  TypeId value_type = TypeId::Int64;   ///< its type
  TypeId state_type = TypeId::Int64;   ///< Int64 or Float64; the value type for Min and Max
  size_t offset = 0;                   ///< of the state in a group's record
  size_t seen_offset = 0;              ///< Min, Max: a byte set once a value was folded in
};

template <class A> inline A load(const std::byte* p) {
  A a;
  std::memcpy(&a, p, sizeof a);
  return a;
}
template <class A> inline void store(std::byte* p, A a) { std::memcpy(p, &a, sizeof a); }

template <class T, bool kMax> struct Extreme {
  /// The state before any value: every value replaces it.
  static T identity() {
    if constexpr (std::is_floating_point_v<T>)
      return kMax ? -std::numeric_limits<T>::infinity() : std::numeric_limits<T>::quiet_NaN();
    else return kMax ? std::numeric_limits<T>::lowest() : std::numeric_limits<T>::max();
  }
  /// Whether @p v replaces @p current; NaN orders above every number and -0.0 below 0.0, so
  /// results do not depend on the order of rows (nor, on the GPU, of threads).
  static bool better(T v, T current) {
    if constexpr (std::is_floating_point_v<T>) {
      if (v == current) return kMax ? !std::signbit(v) && std::signbit(current) : std::signbit(v) && !std::signbit(current);
      if constexpr (kMax) return v > current || (std::isnan(v) && !std::isnan(current));
      else return v < current || (std::isnan(current) && !std::isnan(v));
    } else {
      return kMax ? v > current : v < current;
    }
  }
  /// What is kept of a value that replaced the state: every NaN is the one quiet NaN, whatever
  /// its sign and payload.
  static T kept(T v) {
    if constexpr (std::is_floating_point_v<T>) return std::isnan(v) ? std::numeric_limits<T>::quiet_NaN() : v;
    else return v;
  }
};

/// The accumulators of every group, stored row-wise: one record of stride() bytes per group,
/// so that folding an input row into all the aggregates touches one cache line rather than
/// one per aggregate (with millions of groups each of those would be a miss).
class GroupStates {
 public:
  /// Lays out @p accumulators (filling in their offsets) for @p groups groups.
  GroupStates(std::vector<Accumulator>& accumulators, size_t groups) {
    size_t at = 0;
    for (auto& a : accumulators) {
      a.offset = at;
      at += 8;  // every state is 8 bytes or less
    }
    for (auto& a : accumulators) {
      if (a.fold == Fold::Min || a.fold == Fold::Max) a.seen_offset = at++;
    }
    stride_ = (at + 7) / 8 * 8;
    records_.assign(groups * stride_, std::byte{0});
    for (const auto& a : accumulators) {
      if (a.fold != Fold::Min && a.fold != Fold::Max) continue;
      visit_fixed(a.value_type, [&]<class T>() {
        const T start = a.fold == Fold::Min ? Extreme<T, false>::identity() : Extreme<T, true>::identity();
        for (size_t g = 0; g < groups; ++g) store<T>(record(g) + a.offset, start);
      });
    }
  }
  std::byte* record(size_t group) { return records_.data() + group * stride_; }
  const std::byte* record(size_t group) const { return records_.data() + group * stride_; }
  size_t stride() const { return stride_; }

 private:
  std::vector<std::byte> records_;
  size_t stride_ = 8;
};

/// Calls op(row, value) for every non-null row in [begin, end) of @p column (storage @p T).
template <class T, class Op> inline void for_each_value(const Column& column, size_t begin, size_t end, Op&& op) {
  const T* values = column.values<T>().data();
  if (!column.nullable()) {
    for (size_t r = begin; r < end; ++r) op(r, values[r]);
  } else {
    for (size_t r = begin; r < end; ++r)
      if (column.is_valid(r)) op(r, values[r]);
  }
}

/// Folds rows [begin, end) of @p table into accumulator @p a of each row's group
/// (@p group_of_row[r] for row r). The loops are specialised by fold and type.
void fold_rows(const Accumulator& a, const Table& table, size_t begin, size_t end, const int32_t* group_of_row,
               GroupStates& states, int sign) {
  std::byte* const base = states.record(0) + a.offset;
  const size_t stride = states.stride();
  auto state_of = [&](size_t r) { return base + static_cast<size_t>(group_of_row[r]) * stride; };
  switch (a.fold) {
    case Fold::CountRows:
      for (size_t r = begin; r < end; ++r) {
        std::byte* p = state_of(r);
        store<int64_t>(p, load<int64_t>(p) + sign);
      }
      return;
    case Fold::CountValid: {
      const Column& column = table.column(a.column);
      if (!column.nullable()) {
        for (size_t r = begin; r < end; ++r) {
          std::byte* p = state_of(r);
          store<int64_t>(p, load<int64_t>(p) + 1);
        }
      } else {
        for (size_t r = begin; r < end; ++r) {
          std::byte* p = state_of(r);
          store<int64_t>(p, load<int64_t>(p) + (column.is_valid(r) ? 1 : 0));
        }
      }
      return;
    }
    case Fold::Sum:
      visit_fixed(a.value_type, [&]<class T>() {
        const Column& column = table.column(a.column);
        if (a.state_type == TypeId::Int64) {
          if constexpr (std::is_integral_v<T>) {
            // Unsigned arithmetic: overflow wraps modulo 2^64, as Spark's long does.
            const uint64_t factor = static_cast<uint64_t>(static_cast<int64_t>(sign));
            for_each_value<T>(column, begin, end, [&](size_t r, T v) {
              std::byte* p = state_of(r);
              store<uint64_t>(p, load<uint64_t>(p) + static_cast<uint64_t>(static_cast<int64_t>(v)) * factor);
            });
          }
        } else {
          const double factor = sign;
          for_each_value<T>(column, begin, end, [&](size_t r, T v) {
            std::byte* p = state_of(r);
            store<double>(p, load<double>(p) + factor * static_cast<double>(v));
          });
        }
      });
      return;
    case Fold::Min:
    case Fold::Max:
      visit_fixed(a.value_type, [&]<class T>() {
        const Column& column = table.column(a.column);
        auto fold_extreme = [&]<bool kMax>() {
          for_each_value<T>(column, begin, end, [&](size_t r, T v) {
            std::byte* p = state_of(r);
            const T current = load<T>(p);
            if (Extreme<T, kMax>::better(v, current)) store<T>(p, Extreme<T, kMax>::kept(v));
            p[a.seen_offset - a.offset] = std::byte{1};
          });
        };
        if (a.fold == Fold::Max) fold_extreme.template operator()<true>();
        else fold_extreme.template operator()<false>();
      });
      return;
  }
}

/// Rows of @p table per chunk: every accumulator folds a chunk in turn while its groups'
/// records are still in cache.
constexpr size_t kChunkRows = 2048;

void fold_table(const std::vector<Accumulator>& accumulators, const Table& table, const int32_t* group_of_row,
                GroupStates& states, int sign) {
  for (size_t begin = 0; begin < table.num_rows(); begin += kChunkRows) {
    const size_t end = std::min(table.num_rows(), begin + kChunkRows);
    for (const Accumulator& a : accumulators) fold_rows(a, table, begin, end, group_of_row, states, sign);
  }
}

/// The states of accumulator @p a for @p groups, in that order, as a column.
Column state_column(const Accumulator& a, const GroupStates& states, std::span<const int32_t> groups) {
  auto state_of = [&](int32_t g) { return states.record(static_cast<size_t>(g)) + a.offset; };
  if (a.fold == Fold::Min || a.fold == Fold::Max) {
    return visit_fixed(a.value_type, [&]<class T>() {
      Column out(type_of_storage<T>(), true);
      out.reserve(groups.size());
      for (int32_t g : groups) {
        if (state_of(g)[a.seen_offset - a.offset] != std::byte{0}) out.append<T>(load<T>(state_of(g)));
        else out.append_null();
      }
      return out;
    });
  }
  Column out(a.state_type);
  out.reserve(groups.size());
  if (a.state_type == TypeId::Float64) {
    for (int32_t g : groups) out.append<double>(load<double>(state_of(g)));
  } else {
    for (int32_t g : groups) out.append<int64_t>(load<int64_t>(state_of(g)));
  }
  return out;
}

}  // namespace

// ---------------------------------------------------------------- partial tables


PartialLayout partial_layout(const KeyedAggregation& plan) {
  PartialLayout layout;
  layout.key_count = plan.keys.size();
  for (const auto& a : plan.aggregates) {
    layout.first_state_column.push_back(layout.key_count + layout.names.size());
    switch (a.kind) {
      case AggregateKind::Count: layout.names.push_back(a.output + "#count"); break;
      case AggregateKind::Sum: layout.names.push_back(a.output + "#sum"); break;
      case AggregateKind::Min: layout.names.push_back(a.output + "#min"); break;
      case AggregateKind::Max: layout.names.push_back(a.output + "#max"); break;
      case AggregateKind::Mean:
        layout.names.push_back(a.output + "#sum");
        layout.names.push_back(a.output + "#count");
        break;
    }
  }
  layout.records_column = layout.key_count + layout.names.size();
  layout.names.push_back("#records");
  return layout;
}

/// Checks that @p partial is a partial table of @p plan (field names, and the types that the
/// state of each aggregate must have); @p what names the table in errors.
void check_partial(const Table& partial, const KeyedAggregation& plan, const PartialLayout& layout, const std::string& what) {
  const Schema& schema = partial.schema();
  const size_t expected = layout.key_count + layout.names.size();
  SLUICE_EXPECTS(schema.size() == expected, what + " {" + schema.to_string() + "} has " + std::to_string(schema.size()) +
                                                " fields; a partial table of this aggregation has " +
                                                std::to_string(expected));
  for (size_t k = 0; k < layout.key_count; ++k)
    SLUICE_EXPECTS(schema[k].name == plan.keys[k], what + ": field " + std::to_string(k) + " is '" + schema[k].name +
                                                       "', expected key field '" + plan.keys[k] + "'");
  for (size_t i = 0; i < layout.names.size(); ++i) {
    const Field& f = schema[layout.key_count + i];
    SLUICE_EXPECTS(f.name == layout.names[i], what + ": field '" + f.name + "' where '" + layout.names[i] + "' was expected");
  }
  auto expect_type = [&](size_t column, bool ok, const char* wanted) {
    SLUICE_EXPECTS(ok, what + ": field '" + schema[column].name + "' is " + std::string(type_name(schema[column].type)) +
                           ", expected " + wanted);
  };
  for (size_t a = 0; a < plan.aggregates.size(); ++a) {
    const size_t c = layout.first_state_column[a];
    const TypeId t = schema[c].type;
    switch (plan.aggregates[a].kind) {
      case AggregateKind::Count: expect_type(c, t == TypeId::Int64, "int64"); break;
      case AggregateKind::Sum: expect_type(c, t == TypeId::Int64 || t == TypeId::Float64, "int64 or float64"); break;
      case AggregateKind::Min:
      case AggregateKind::Max: expect_type(c, is_numeric(t) || t == TypeId::Bool, "a numeric or bool type"); break;
      case AggregateKind::Mean:
        expect_type(c, t == TypeId::Float64, "float64");
        expect_type(c + 1, schema[c + 1].type == TypeId::Int64, "int64");
        break;
    }
  }
  expect_type(layout.records_column, schema[layout.records_column].type == TypeId::Int64, "int64");
}

void check_combine_inputs(std::span<const Table* const> partials, std::span<const int> signs, const KeyedAggregation& plan,
                          const PartialLayout& layout) {
  SLUICE_EXPECTS(!partials.empty(), "combine_partials: no partial tables to combine");
  SLUICE_EXPECTS(partials.size() == signs.size(), "combine_partials: " + std::to_string(partials.size()) +
                                                      " partial tables but " + std::to_string(signs.size()) + " signs");
  for (size_t t = 0; t < partials.size(); ++t) {
    SLUICE_EXPECTS(signs[t] == 1 || signs[t] == -1, "combine_partials: sign " + std::to_string(signs[t]) +
                                                        " of partial table " + std::to_string(t) + " is not +1 or -1");
    if (signs[t] < 0 && !plan.invertible()) {
      std::string which;
      for (const auto& a : plan.aggregates)
        if (!is_invertible(a.kind)) which += (which.empty() ? "" : ", ") + describe(a);
      throw Error("combine_partials: cannot subtract partial table " + std::to_string(t) + ": " + which +
                  " is not invertible (only count, sum and mean are); recombine the panes instead");
    }
    check_partial(*partials[t], plan, layout, "combine_partials: partial table " + std::to_string(t));
  }
  const Table& first = *partials[0];
  for (size_t t = 1; t < partials.size(); ++t) {
    for (size_t c = 0; c < first.num_columns(); ++c)
      SLUICE_EXPECTS(partials[t]->schema()[c].type == first.schema()[c].type,
                     "combine_partials: field '" + first.schema()[c].name + "' is " +
                         std::string(type_name(first.schema()[c].type)) + " in partial table 0 but " +
                         std::string(type_name(partials[t]->schema()[c].type)) + " in partial table " + std::to_string(t));
  }
}

namespace {

/// The accumulators that aggregate an input table into the state columns of a partial table.
std::vector<Accumulator> input_accumulators(const KeyedAggregation& plan, const ResolvedPlan& resolved, const Schema& input) {
  std::vector<Accumulator> out;
  for (size_t a = 0; a < plan.aggregates.size(); ++a) {
    const int column = resolved.inputs[a];
    if (column < 0) {  // count of rows
      out.push_back(Accumulator{Fold::CountRows});
      continue;
    }
    const size_t c = static_cast<size_t>(column);
    const TypeId type = input[c].type;
    switch (plan.aggregates[a].kind) {
      case AggregateKind::Count: out.push_back(Accumulator{Fold::CountValid, c, type, TypeId::Int64}); break;
      case AggregateKind::Sum: out.push_back(Accumulator{Fold::Sum, c, type, sum_type(type)}); break;
      case AggregateKind::Min: out.push_back(Accumulator{Fold::Min, c, type, type}); break;
      case AggregateKind::Max: out.push_back(Accumulator{Fold::Max, c, type, type}); break;
      case AggregateKind::Mean:
        out.push_back(Accumulator{Fold::Sum, c, type, TypeId::Float64});
        out.push_back(Accumulator{Fold::CountValid, c, type, TypeId::Int64});
        break;
    }
  }
  out.push_back(Accumulator{Fold::CountRows});  // #records
  return out;
}

/// The accumulators that combine the state columns of partial tables like @p partial.
std::vector<Accumulator> partial_accumulators(const KeyedAggregation& plan, const PartialLayout& layout,
                                              const Table& partial) {
  std::vector<Accumulator> out;
  for (size_t c = layout.key_count; c < partial.num_columns(); ++c) {
    const TypeId type = partial.schema()[c].type;
    out.push_back(Accumulator{Fold::Sum, c, type, type});  // counts and sums add up (with signs)
  }
  for (size_t a = 0; a < plan.aggregates.size(); ++a) {
    Accumulator& acc = out[layout.first_state_column[a] - layout.key_count];
    if (plan.aggregates[a].kind == AggregateKind::Min) acc.fold = Fold::Min;
    if (plan.aggregates[a].kind == AggregateKind::Max) acc.fold = Fold::Max;
  }
  return out;
}

/// All rows of @p columns (same type) as one column; nullable when any of them is.
Column concat_columns(std::span<const Column* const> columns) {
  Column out = columns[0]->gather({});
  size_t rows = 0;
  for (const Column* c : columns) {
    rows += c->size();
    if (c->nullable()) out.make_nullable();
  }
  out.reserve(rows);
  for (const Column* c : columns) out.append_all(*c);
  return out;
}

// ---------------------------------------------------------------- the backend

class CpuBackend final : public ExecutionBackend {
 public:
  BackendKind kind() const override { return BackendKind::Cpu; }
  std::string_view name() const override { return "cpu"; }

  Table aggregate_partials(const Table& input, const KeyedAggregation& plan) override {
    Schema schema = plan.partial_schema(input.schema());
    const ResolvedPlan resolved = resolve_plan(plan, input.schema());
    const Grouping g = group_rows(input, resolved.keys);
    const size_t group_count = g.first_row_of_group.size();

    std::vector<Accumulator> accumulators = input_accumulators(plan, resolved, input.schema());
    GroupStates states(accumulators, group_count);
    fold_table(accumulators, input, g.group_of_row.data(), states, +1);

    std::vector<int32_t> groups(group_count);
    std::iota(groups.begin(), groups.end(), 0);
    std::vector<Column> columns;
    columns.reserve(schema.size());
    for (size_t k : resolved.keys) columns.push_back(input.column(k).gather(g.first_row_of_group));
    for (const Accumulator& a : accumulators) columns.push_back(state_column(a, states, groups));
    return Table(std::move(schema), std::move(columns));
  }

  Table combine_partials(std::span<const Table* const> partials, std::span<const int> signs,
                         const KeyedAggregation& plan) override {
    const PartialLayout layout = partial_layout(plan);
    check_combine_inputs(partials, signs, plan, layout);
    const Table& first = *partials[0];

    // Group the keys of all tables at once: a key's group is its first appearance in the
    // tables' order, so the combined rows come out in a deterministic order, and the rows of
    // the first table keep their places (running state relies on it).
    std::vector<size_t> offsets(partials.size());
    size_t total_rows = 0;
    for (size_t t = 0; t < partials.size(); ++t) {
      offsets[t] = total_rows;
      total_rows += partials[t]->num_rows();
    }
    std::vector<Field> fields;
    std::vector<Column> key_columns;
    std::vector<size_t> key_indexes;
    for (size_t k = 0; k < layout.key_count; ++k) {
      std::vector<const Column*> parts;
      Field field = first.schema()[k];
      for (const Table* t : partials) {
        parts.push_back(&t->column(k));
        field.nullable = field.nullable || t->schema()[k].nullable;
      }
      key_columns.push_back(concat_columns(parts));
      fields.push_back(std::move(field));
      key_indexes.push_back(k);
    }
    const Table keys(Schema(fields), std::move(key_columns));
    Grouping g;
    if (layout.key_count > 0) {
      g = group_rows(keys, key_indexes);
    } else {  // no keys: every row belongs to one group
      g.group_of_row.assign(total_rows, 0);
      if (total_rows > 0) g.first_row_of_group.push_back(0);
    }
    const size_t group_count = g.first_row_of_group.size();

    std::vector<Accumulator> accumulators = partial_accumulators(plan, layout, first);
    GroupStates states(accumulators, group_count);
    for (size_t t = 0; t < partials.size(); ++t)
      fold_table(accumulators, *partials[t], g.group_of_row.data() + offsets[t], states, signs[t]);

    // Keys with no record left (a leaving pane subtracted them out) are dropped.
    const size_t records_offset = accumulators.back().offset;
    std::vector<int32_t> kept;
    std::vector<int64_t> kept_rows;
    kept.reserve(group_count);
    kept_rows.reserve(group_count);
    for (size_t grp = 0; grp < group_count; ++grp) {
      if (load<int64_t>(states.record(grp) + records_offset) == 0) continue;
      kept.push_back(static_cast<int32_t>(grp));
      kept_rows.push_back(g.first_row_of_group[grp]);
    }

    std::vector<Column> columns;
    for (size_t k = 0; k < layout.key_count; ++k) columns.push_back(keys.column(k).gather(kept_rows));
    for (const Accumulator& a : accumulators) columns.push_back(state_column(a, states, kept));
    for (size_t c = layout.key_count; c < first.num_columns(); ++c) fields.push_back(first.schema()[c]);
    return Table(Schema(std::move(fields)), std::move(columns));
  }

  Table finalize(const Table& partials, const KeyedAggregation& plan) override {
    const PartialLayout layout = partial_layout(plan);
    check_partial(partials, plan, layout, "finalize: partial table");
    std::vector<Field> fields;
    std::vector<Column> columns;
    for (size_t k = 0; k < layout.key_count; ++k) {
      fields.push_back(partials.schema()[k]);
      columns.push_back(partials.column(k));
    }
    for (size_t a = 0; a < plan.aggregates.size(); ++a) {
      const AggregateSpec& spec = plan.aggregates[a];
      const size_t c = layout.first_state_column[a];
      if (spec.kind != AggregateKind::Mean) {
        const bool nullable = spec.kind == AggregateKind::Min || spec.kind == AggregateKind::Max;
        fields.push_back(Field{spec.output, partials.schema()[c].type, nullable, {}});
        columns.push_back(partials.column(c));
        continue;
      }
      // mean = sum / count, null where no value was counted.
      const Column& sum_column = partials.column(c);
      const Column& count_column = partials.column(c + 1);
      const auto sums = sum_column.values<double>();
      const auto counts = count_column.values<int64_t>();
      Column means(TypeId::Float64, true);
      means.reserve(partials.num_rows());
      for (size_t r = 0; r < partials.num_rows(); ++r) {
        if (counts[r] == 0 || !count_column.is_valid(r) || !sum_column.is_valid(r)) means.append_null();
        else means.append<double>(sums[r] / static_cast<double>(counts[r]));
      }
      fields.push_back(Field{spec.output, TypeId::Float64, true, {}});
      columns.push_back(std::move(means));
    }
    return Table(Schema(std::move(fields)), std::move(columns));
  }
};

}  // namespace

// ---------------------------------------------------------------- public functions

Grouping group_rows(const Table& table, std::span<const size_t> key_columns) {
  const size_t rows = table.num_rows();
  std::vector<const Column*> keys;
  for (size_t k : key_columns) {
    SLUICE_EXPECTS(k < table.num_columns(), "group_rows: key column " + std::to_string(k) + " is out of range for {" +
                                                table.schema().to_string() + "}");
    SLUICE_EXPECTS(table.column(k).type() != TypeId::List,
                   "group_rows: key field '" + table.schema()[k].name + "' is a list; lists cannot be keys");
    keys.push_back(&table.column(k));
  }
  Grouping g;
  g.group_of_row.resize(rows);
  if (rows == 0) return g;
  if (keys.empty()) {  // no key: one group of every row
    std::fill(g.group_of_row.begin(), g.group_of_row.end(), 0);
    g.first_row_of_group.push_back(0);
    return g;
  }
  if (keys.size() == 1) {
    const Column& key = *keys[0];
    const bool nullable = key.nullable();
    switch (key.type()) {
      case TypeId::Bool:
        nullable ? group_integer_key<uint8_t, true>(key, g) : group_integer_key<uint8_t, false>(key, g);
        return g;
      case TypeId::Int32:
        nullable ? group_integer_key<int32_t, true>(key, g) : group_integer_key<int32_t, false>(key, g);
        return g;
      case TypeId::Int64:
        nullable ? group_integer_key<int64_t, true>(key, g) : group_integer_key<int64_t, false>(key, g);
        return g;
      case TypeId::String:
        nullable ? group_string_key<true>(key, g) : group_string_key<false>(key, g);
        return g;
      default: break;  // floating point keys need canonical hashing: the general path
    }
  }
  group_general_keys(keys, rows, g);
  return g;
}

Schema KeyedAggregation::partial_schema(const Schema& input) const {
  const ResolvedPlan resolved = resolve_plan(*this, input);
  std::vector<Field> fields;
  for (size_t k : resolved.keys) fields.push_back(input[k]);
  for (size_t a = 0; a < aggregates.size(); ++a) {
    const AggregateSpec& spec = aggregates[a];
    const TypeId in = resolved.inputs[a] >= 0 ? input[static_cast<size_t>(resolved.inputs[a])].type : TypeId::Int64;
    switch (spec.kind) {
      case AggregateKind::Count: fields.push_back(Field{spec.output + "#count", TypeId::Int64, false, {}}); break;
      case AggregateKind::Sum: fields.push_back(Field{spec.output + "#sum", sum_type(in), false, {}}); break;
      case AggregateKind::Min: fields.push_back(Field{spec.output + "#min", in, true, {}}); break;
      case AggregateKind::Max: fields.push_back(Field{spec.output + "#max", in, true, {}}); break;
      case AggregateKind::Mean:
        fields.push_back(Field{spec.output + "#sum", TypeId::Float64, false, {}});
        fields.push_back(Field{spec.output + "#count", TypeId::Int64, false, {}});
        break;
    }
  }
  fields.push_back(Field{"#records", TypeId::Int64, false, {}});
  return Schema(std::move(fields));
}

Schema KeyedAggregation::result_schema(const Schema& input) const {
  const ResolvedPlan resolved = resolve_plan(*this, input);
  std::vector<Field> fields;
  for (size_t k : resolved.keys) fields.push_back(input[k]);
  for (size_t a = 0; a < aggregates.size(); ++a) {
    const AggregateSpec& spec = aggregates[a];
    const TypeId in = resolved.inputs[a] >= 0 ? input[static_cast<size_t>(resolved.inputs[a])].type : TypeId::Int64;
    switch (spec.kind) {
      case AggregateKind::Count: fields.push_back(Field{spec.output, TypeId::Int64, false, {}}); break;
      case AggregateKind::Sum: fields.push_back(Field{spec.output, sum_type(in), false, {}}); break;
      case AggregateKind::Min:
      case AggregateKind::Max: fields.push_back(Field{spec.output, in, true, {}}); break;
      case AggregateKind::Mean: fields.push_back(Field{spec.output, TypeId::Float64, true, {}}); break;
    }
  }
  return Schema(std::move(fields));
}

bool KeyedAggregation::invertible() const {
  return std::all_of(aggregates.begin(), aggregates.end(), [](const AggregateSpec& a) { return is_invertible(a.kind); });
}

AggregateKind parse_aggregate(std::string_view name) {
  if (name == "count") return AggregateKind::Count;
  if (name == "sum") return AggregateKind::Sum;
  if (name == "min") return AggregateKind::Min;
  if (name == "max") return AggregateKind::Max;
  if (name == "mean" || name == "avg") return AggregateKind::Mean;
  throw Error("unknown aggregate '" + std::string(name) + "' (expected count, sum, min, max, mean or avg)");
}

std::string_view aggregate_name(AggregateKind kind) {
  switch (kind) {
    case AggregateKind::Count: return "count";
    case AggregateKind::Sum: return "sum";
    case AggregateKind::Min: return "min";
    case AggregateKind::Max: return "max";
    case AggregateKind::Mean: return "mean";
  }
  return "unknown";
}

BackendKind parse_backend(std::string_view name) {
  if (name == "cpu") return BackendKind::Cpu;
  if (name == "cuda") return BackendKind::Cuda;
  if (name == "auto") return BackendKind::Auto;
  throw Error("unknown backend '" + std::string(name) + "' (expected cpu, cuda or auto)");
}

std::string_view backend_name(BackendKind kind) {
  switch (kind) {
    case BackendKind::Cpu: return "cpu";
    case BackendKind::Cuda: return "cuda";
    case BackendKind::Auto: return "auto";
  }
  return "unknown";
}

std::unique_ptr<ExecutionBackend> make_cpu_backend() { return std::make_unique<CpuBackend>(); }

}  // namespace sluice
