#pragma once
// What the host tests of the device parsers (CSV and JSON) share: parse results copied back
// from HostExec's memory into plain host columns, and the invariants every result must hold.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "csv_parse.cuh"
#include "host_exec.cuh"

namespace sluice::gpu {

inline uint64_t bits_of(double d) {
  uint64_t b;
  std::memcpy(&b, &d, 8);
  return b;
}
inline uint32_t bits_of(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

/// The random choices of the parser tests' record generators.
class RandomPicks {
 public:
  explicit RandomPicks(uint32_t seed) : rng_(seed) {}

  int pick(int n) { return static_cast<int>(rng_() % static_cast<uint32_t>(n)); }
  bool chance(int percent) { return pick(100) < percent; }

  /// A valid integer of the type: one of its extremes, a small number, or any value of its width.
  int64_t integer(bool is32) {
    int64_t v;
    switch (pick(4)) {
      case 0: v = is32 ? (chance(50) ? INT32_MAX : INT32_MIN) : (chance(50) ? INT64_MAX : INT64_MIN); break;
      case 1: v = pick(2001) - 1000; break;
      default: {
        const uint64_t r = (static_cast<uint64_t>(rng_()) << 32) | rng_();
        v = is32 ? static_cast<int32_t>(static_cast<uint32_t>(r)) : static_cast<int64_t>(r);
      }
    }
    return v;
  }

  std::mt19937 rng_;
};

// ------------------------------------------------------------------ running the parser

/// One output column copied back from the executor's memory.
struct HostColumn {
  int32_t type = kString;
  bool nullable = false;
  std::vector<uint8_t> values;
  std::vector<uint8_t> validity;
  std::vector<int32_t> offsets;
  std::string chars;
  size_t null_count = 0;

  bool valid(size_t r) const { return !nullable || ((validity[r >> 3] >> (r & 7)) & 1); }
  template <class T> T value(size_t r) const {
    T v;
    std::memcpy(&v, values.data() + r * sizeof(T), sizeof(T));
    return v;
  }
  std::string str(size_t r) const { return chars.substr(offsets[r], offsets[r + 1] - offsets[r]); }
  /// The value at @p r as text: null, true/false, integers, floats (%.9g / %.17g), "strings".
  std::string text(size_t r) const {
    if (!valid(r)) return "null";
    char buf[64];
    switch (type) {
      case kBool: return value<uint8_t>(r) ? "true" : "false";
      case kInt32: return std::to_string(value<int32_t>(r));
      case kInt64: return std::to_string(value<int64_t>(r));
      case kFloat32: std::snprintf(buf, sizeof buf, "%.9g", static_cast<double>(value<float>(r))); return buf;
      case kFloat64: std::snprintf(buf, sizeof buf, "%.17g", value<double>(r)); return buf;
      default: return "\"" + str(r) + "\"";
    }
  }
};

struct HostParse {
  size_t rows = 0;
  size_t blank = 0;
  std::vector<int64_t> row_index, malformed, needs_host;
  std::vector<HostColumn> columns;

  std::string row(size_t r) const {
    std::string out = "[";
    for (size_t c = 0; c < columns.size(); ++c) out += (c ? "," : "") + columns[c].text(r);
    return out + "]";
  }
  std::string all_rows() const {
    std::string out;
    for (size_t r = 0; r < rows; ++r) out += row(r) + "\n";
    return out;
  }
};

template <class T> std::vector<T> download(HostExec& exec, const HostArray<T>& a, size_t n) {
  std::vector<T> v(n);
  exec.to_host(v.data(), a.data(), n * sizeof(T));
  return v;
}

/// Checks what every result must satisfy: the lines are split exactly into good, malformed,
/// needs-host and blank ones, each list ascending; offsets grow from 0; nulls hold zeros or
/// empty strings; null counts and bitmap padding are right.
inline void check_invariants(const HostParse& p, size_t lines) {
  std::vector<int> seen(lines, 0);
  for (const auto* list : {&p.row_index, &p.malformed, &p.needs_host}) {
    for (size_t i = 0; i < list->size(); ++i) {
      const int64_t line = (*list)[i];
      ASSERT_GE(line, 0);
      ASSERT_LT(static_cast<size_t>(line), lines);
      if (i > 0) EXPECT_LT((*list)[i - 1], line);
      ++seen[static_cast<size_t>(line)];
    }
  }
  size_t unseen = 0;
  for (int s : seen) {
    EXPECT_LE(s, 1);
    unseen += s == 0;
  }
  EXPECT_EQ(unseen, p.blank);
  for (const HostColumn& c : p.columns) {
    if (c.nullable) {
      ASSERT_EQ(c.validity.size(), (p.rows + 7) / 8);
      if (p.rows % 8) EXPECT_EQ(c.validity.back() >> (p.rows % 8), 0) << "bitmap padding must be zero";
    } else {
      EXPECT_TRUE(c.validity.empty());
    }
    size_t nulls = 0;
    for (size_t r = 0; r < p.rows; ++r) nulls += !c.valid(r);
    EXPECT_EQ(nulls, c.null_count);
    if (c.type == kString) {
      ASSERT_EQ(c.offsets.size(), p.rows + 1);
      EXPECT_EQ(c.offsets[0], 0);
      for (size_t r = 0; r < p.rows; ++r) {
        EXPECT_LE(c.offsets[r], c.offsets[r + 1]);
        if (!c.valid(r)) EXPECT_EQ(c.offsets[r], c.offsets[r + 1]);
      }
      EXPECT_EQ(static_cast<size_t>(c.offsets.back()), c.chars.size());
    } else {
      const size_t width = static_cast<size_t>(csv_type_width(c.type));
      ASSERT_EQ(c.values.size(), p.rows * width);
      for (size_t r = 0; r < p.rows; ++r)
        if (!c.valid(r))
          for (size_t b = 0; b < width; ++b) EXPECT_EQ(c.values[r * width + b], 0);
    }
  }
}

/// @p lines as an Arrow string column in HostExec's memory, as the engine hands lines over.
/// The text starts @p base bytes into the buffer, so that offsets need not start at 0;
/// @p null_lines are null.
struct LinesInExecutor {
  LinesInExecutor(HostExec& exec, const std::vector<std::string>& lines, const std::vector<size_t>& null_lines, int32_t base) {
    std::string text(static_cast<size_t>(base), '#');
    std::vector<int32_t> line_offsets{base};
    for (const std::string& l : lines) {
      text += l;
      line_offsets.push_back(static_cast<int32_t>(text.size()));
    }
    std::vector<uint8_t> bitmap;
    if (!null_lines.empty()) {
      bitmap.assign((lines.size() + 7) / 8, 0xFF);
      for (size_t r : null_lines) bitmap[r >> 3] &= static_cast<uint8_t>(~(1u << (r & 7)));
    }
    chars = exec.alloc<char>(text.size());
    offsets = exec.alloc<int32_t>(line_offsets.size());
    validity = exec.alloc<uint8_t>(bitmap.size());
    exec.to_device(chars.data(), text.data(), text.size());
    exec.to_device(offsets.data(), line_offsets.data(), line_offsets.size() * sizeof(int32_t));
    exec.to_device(validity.data(), bitmap.data(), bitmap.size());
  }
  /// The lines' bitmap, or null when no line is null.
  const uint8_t* validity_or_null() const { return validity.size() ? validity.data() : nullptr; }

  HostArray<char> chars;
  HostArray<int32_t> offsets;
  HostArray<uint8_t> validity;
};

/// A parse result copied back from the executor's memory, checked for its invariants.
inline HostParse copy_result(HostExec& exec, const CsvParseResult<HostExec>& r, const std::vector<CsvFieldSpec>& specs, size_t lines) {
  HostParse p;
  p.rows = r.rows;
  p.blank = r.blank_count;
  p.row_index = download(exec, r.row_index, r.rows);
  p.malformed = download(exec, r.malformed, r.malformed_count);
  p.needs_host = download(exec, r.needs_host, r.needs_host_count);
  EXPECT_EQ(r.columns.size(), specs.size());
  for (size_t f = 0; f < r.columns.size(); ++f) {
    const CsvDeviceColumn<HostExec>& c = r.columns[f];
    HostColumn h;
    h.type = c.type;
    h.nullable = c.nullable;
    EXPECT_EQ(c.type, specs[f].type);
    EXPECT_EQ(c.nullable, specs[f].nullable != 0);
    h.null_count = c.null_count;
    if (c.nullable) h.validity = download(exec, c.validity, (r.rows + 7) / 8);
    if (c.type == kString) {
      h.offsets = download(exec, c.offsets, r.rows + 1);
      const std::vector<char> bytes = download(exec, c.chars, c.char_count);
      h.chars.assign(bytes.begin(), bytes.end());
    } else {
      h.values = download(exec, c.values, r.rows * static_cast<size_t>(csv_type_width(c.type)));
    }
    p.columns.push_back(std::move(h));
  }
  check_invariants(p, lines);
  return p;
}

}  // namespace sluice::gpu
