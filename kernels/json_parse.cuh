#pragma once
// JSON-lines records parsed on the device: a batch of lines (an Arrow string column already
// in the executor's memory) becomes one Arrow column per field, covering the good records
// only, in input order, in the layout of the CSV parser (csv_parse.cuh: JsonParseResult is
// CsvParseResult). Written once against an execution context (CudaExec on the GPU, HostExec
// in the host tests).
//
// The rules are those of the CPU parser (src/pipeline/record_parsers.cpp, parse_json, with
// JsonRecordShape::ObjectOrArray) and of nlohmann::json's strict parser (3.11) under it:
//  - A null line (validity bit clear) is malformed. One trailing '\r' is dropped; a line that
//    is then empty or only spaces and tabs is blank: no row, not malformed.
//  - The line is one JSON value: a UTF-8 byte order mark may open it (at byte 0 only),
//    whitespace is ' ', '\t', '\n', '\r'; after the value only whitespace may follow, up to
//    the end or to a NUL byte (nlohmann's lexer reads a NUL as the end of the input).
//    Anything that is not valid JSON is malformed, as is a valid value that is neither an
//    object nor an array.
//  - Strings: no control character below 0x20, well-formed UTF-8 (RFC 3629), escapes only
//    \" \\ \/ \b \f \n \r \t \uXXXX with surrogates in pairs. Numbers: -?(0|[1-9][0-9]*)
//    (.[0-9]+)?([eE][+-]?[0-9]+)?; a number whose double overflows is a parse error.
//  - An object maps the fields by name: exact bytes of the key; a key given twice keeps its
//    last value (nlohmann::json's std::map); other keys are ignored but must be valid JSON;
//    a missing field is null when nullable, otherwise the record is malformed. An array maps
//    the fields by position and must have exactly one element per field.
//  - null is a null for a nullable field and makes the record malformed otherwise.
//  - Bool: true or false only. String: a JSON string. Objects and arrays fit no field here
//    (the fields are scalars): malformed.
//  - Int32/Int64: an integer literal within the type; one beyond int64 is read as a double
//    by nlohmann (so -9223372036854775809 is INT64_MIN); a literal with a fraction or an
//    exponent is read as the nearest double, which must be an integer ("3.0", "1e2") within
//    the type.
//  - Float32/Float64: any number; the value is the double nearest to it, except the integer
//    literal -0, which is the integer 0 and so +0.0. A Float32 field rounds that double to
//    float and is malformed when the double's magnitude exceeds FLT_MAX.
//
// What the device settles and what it leaves to the host ("needs host"): the scan validates
// the whole line exactly as above (strings, escapes and UTF-8 included, nesting up to 64
// levels) and records where each field's value starts. The values are then decided exactly
// except: a string field whose string has an escape; a key with an escape in the top-level
// object (its unescaped bytes might name a field); nesting deeper than 64. Numbers are
// converted exactly (csv_parse.cuh's conversion), so whether one in [1e308, 1e309) overflows
// is decided too. A record is malformed when the line is
// certainly not valid JSON, or when it is certainly not a valid record of the fields should
// it be valid JSON (a field the device decides exactly makes it so); otherwise it needs the
// host when anything does; otherwise it is good. The device gives the indexes of the
// malformed records only: the host reparses them with the CPU parser for their reasons.
//
// One thread parses one record. Pass 1 scans and classifies every record, leaving where each
// field's value starts, storing its fixed-width values and validity bytes at the record's
// line and sizing its string fields; scans give the good rows and the string offsets; the
// line arrays become the columns (as in csv_parse.cuh); pass 2 copies each good row's strings
// from where pass 1 found them. A last pass packs the validity bytes into Arrow bitmaps.
//
// C++17: nvcc here has no C++20 dialect through CMake; this file includes no engine header.
#include <thrust/count.h>
#include <thrust/fill.h>
#include <thrust/for_each.h>
#include <thrust/iterator/counting_iterator.h>
#include <thrust/scan.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "csv_parse.cuh"
#include "gpu_types.hpp"

namespace sluice::gpu {

/// What became of one input line (the values of CsvRecordStatus).
enum JsonRecordStatus : uint8_t {
  kJsonGood = kCsvGood,            ///< parsed: a row of the output
  kJsonBlank = kCsvBlank,          ///< empty, or only spaces and tabs: no record
  kJsonMalformed = kCsvMalformed,  ///< not a valid record of the fields
  kJsonNeedsHost = kCsvNeedsHost,  ///< the device cannot tell exactly: the CPU parser decides
};

/// The output columns and line indexes: the CSV parser's layout.
template <class Exec> using JsonDeviceColumn = CsvDeviceColumn<Exec>;
template <class Exec> using JsonParseResult = CsvParseResult<Exec>;

/// A value's (or a token's) outcome: the values of CsvFieldOutcome, so that the float fast
/// path's answers pass through.
enum JsonOutcome : int32_t { kJsonOk = kCsvFieldOk, kJsonBad = kCsvFieldMalformed, kJsonUnsure = kCsvFieldNeedsHost };

// ---------------------------------------------------------------- tokens

__host__ __device__ inline bool json_is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

__host__ __device__ inline int32_t json_skip_space(const char* s, int32_t n, int32_t i) {
  while (i < n && json_is_space(s[i])) ++i;
  return i;
}

__host__ __device__ inline bool json_is_digit(char c) { return c >= '0' && c <= '9'; }

/// The four hex digits at s[i] as a code unit, or -1.
__host__ __device__ inline int32_t json_hex4(const char* s, int32_t n, int32_t i) {
  if (i + 4 > n) return -1;
  int32_t v = 0;
  for (int32_t k = 0; k < 4; ++k) {
    const char c = s[i + k];
    int32_t d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else return -1;
    v = v * 16 + d;
  }
  return v;
}

/// Scans the string whose opening quote is s[i] as nlohmann's lexer does; returns the index
/// after its closing quote, or -1 when it is not a valid JSON string. @p escaped: whether it
/// holds an escape (its value then differs from its bytes).
__host__ __device__ inline int32_t json_scan_string(const char* s, int32_t n, int32_t i, bool& escaped) {
  escaped = false;
  ++i;
  while (i < n) {
    const uint32_t c = static_cast<unsigned char>(s[i]);
    if (c == '"') return i + 1;
    if (c < 0x20) return -1;  // a control character must be escaped
    if (c == '\\') {
      escaped = true;
      if (i + 1 >= n) return -1;
      const char e = s[i + 1];
      if (e == 'u') {
        const int32_t unit = json_hex4(s, n, i + 2);
        if (unit < 0) return -1;
        i += 6;
        if (unit >= 0xD800 && unit <= 0xDBFF) {  // a high surrogate: "\u" and a low one must follow
          if (i + 1 >= n || s[i] != '\\' || s[i + 1] != 'u') return -1;
          const int32_t low = json_hex4(s, n, i + 2);
          if (low < 0xDC00 || low > 0xDFFF) return -1;
          i += 6;
        } else if (unit >= 0xDC00 && unit <= 0xDFFF) {
          return -1;  // a lone low surrogate
        }
        continue;
      }
      if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' || e == 'r' || e == 't') {
        i += 2;
        continue;
      }
      return -1;
    }
    if (c < 0x80) {
      ++i;
      continue;
    }
    // UTF-8: the lead byte gives the length and the range of the second byte.
    int32_t length;
    uint32_t low = 0x80, high = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      length = 2;
    } else if (c == 0xE0) {
      length = 3;
      low = 0xA0;
    } else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) {
      length = 3;
    } else if (c == 0xED) {
      length = 3;
      high = 0x9F;
    } else if (c == 0xF0) {
      length = 4;
      low = 0x90;
    } else if (c >= 0xF1 && c <= 0xF3) {
      length = 4;
    } else if (c == 0xF4) {
      length = 4;
      high = 0x8F;
    } else {
      return -1;  // 80..C1, F5..FF
    }
    if (i + length > n) return -1;
    for (int32_t k = 1; k < length; ++k) {
      const uint32_t b = static_cast<unsigned char>(s[i + k]);
      if (b < (k == 1 ? low : 0x80u) || b > (k == 1 ? high : 0xBFu)) return -1;
    }
    i += length;
  }
  return -1;  // not closed
}

/// Scans the number at s[i] (a '-' or a digit) as nlohmann's lexer does; returns the index
/// after it, or -1 when it is not a JSON number. @p integer: no fraction and no exponent.
/// @p finite: kJsonOk when its double is finite, kJsonBad when it overflows (nlohmann's
/// "number overflow", a parse error).
__host__ __device__ inline int32_t json_scan_number(const char* s, int32_t n, int32_t i, bool& integer, int32_t& finite) {
  integer = true;
  finite = kJsonOk;
  const int32_t start = i;
  if (i < n && s[i] == '-') ++i;
  if (i >= n || !json_is_digit(s[i])) return -1;
  int64_t lead = 0;  // the decimal exponent of the first nonzero digit (before the exponent part)
  bool nonzero = false;
  if (s[i] == '0') {
    ++i;  // a leading zero stands alone: "01" is "0" followed by another token
  } else {
    nonzero = true;
    for (; i < n && json_is_digit(s[i]); ++i) ++lead;
    --lead;
  }
  if (i < n && s[i] == '.') {
    integer = false;
    ++i;
    if (i >= n || !json_is_digit(s[i])) return -1;
    for (int64_t place = -1; i < n && json_is_digit(s[i]); ++i, --place) {
      if (!nonzero && s[i] != '0') {
        nonzero = true;
        lead = place;
      }
    }
  }
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    integer = false;
    ++i;
    bool negative = false;
    if (i < n && (s[i] == '+' || s[i] == '-')) negative = s[i++] == '-';
    if (i >= n || !json_is_digit(s[i])) return -1;
    int64_t exponent = 0;
    for (; i < n && json_is_digit(s[i]); ++i)
      if (exponent < kCsvExponentLimit) exponent = exponent * 10 + (s[i] - '0');
    lead += negative ? -exponent : exponent;
  }
  if (nonzero && lead >= 309) {
    finite = kJsonBad;  // >= 1e309 > DBL_MAX
  } else if (nonzero && lead == 308) {  // in [1e308, 1e309): the exact conversion tells
    double value = 0;
    bool overflow = false, underflow = false;
    csv_parse_double_bytes(CsvBufferBytes{s + start}, i - start, value, overflow, underflow);
    if (overflow) finite = kJsonBad;
  }
  return i;
}

/// Whether s[i..] starts with @p word; the index after it, or -1.
__host__ __device__ inline int32_t json_scan_word(const char* s, int32_t n, int32_t i, const char* word) {
  for (; *word; ++word, ++i)
    if (i >= n || s[i] != *word) return -1;
  return i;
}

// ---------------------------------------------------------------- records

/// One field as the device sees it: its declaration and name, where pass 1 leaves its value's
/// position, its value and validity and its string lengths (one per input line), and where
/// pass 2 writes its strings' bytes.
struct JsonFieldSlot {
  int32_t type = kString;
  int32_t nullable = 0;
  const char* name = nullptr;      ///< name_size bytes, in the executor's memory
  int32_t name_size = 0;
  int32_t* value_at = nullptr;     ///< one per input line: where the value starts in the line, -1 when missing
  int32_t* lengths = nullptr;      ///< strings: one per input line (pass 1), then their inclusive scan
  uint8_t* values = nullptr;       ///< fixed width: lines x width (pass 1), then rows x width
  uint8_t* valid_bytes = nullptr;  ///< nullable: one byte per line (pass 1), then per row (1 = valid)
  int32_t* offsets = nullptr;      ///< strings: rows + 1
  char* chars = nullptr;
};

/// What the scan of a line found.
enum JsonShape : int32_t {
  kJsonShapeBad = 0,     ///< not valid JSON, or not an object or an array: malformed
  kJsonShapeObject = 1,  ///< an object: the fields' values are where value_at says
  kJsonShapeArray = 2,   ///< an array: value_at holds its first elements, elements counts them
  kJsonShapeUnsure = 3,  ///< the device cannot tell which values the fields have: needs host
};

/// Records the value at s[at] of the top-level object's member whose key is s[key, key +
/// key_size) for every field of that name.
__host__ __device__ inline void json_match_key(const char* s, int32_t key, int32_t key_size, int32_t at, const JsonFieldSlot* fields,
                                               int32_t field_count, int64_t line) {
  for (int32_t f = 0; f < field_count; ++f) {
    if (fields[f].name_size != key_size) continue;
    int32_t k = 0;
    while (k < key_size && fields[f].name[k] == s[key + k]) ++k;
    if (k == key_size) fields[f].value_at[line] = at;
  }
}

/// A member's key at s[i] (after '{' or ',' and whitespace), then ':' and whitespace: the
/// index of the member's value, or -1. The key's bytes are s[key, key + key_size).
__host__ __device__ inline int32_t json_member_key(const char* s, int32_t n, int32_t i, int32_t& key, int32_t& key_size,
                                                   bool& escaped) {
  if (i >= n || s[i] != '"') return -1;
  const int32_t end = json_scan_string(s, n, i, escaped);
  if (end < 0) return -1;
  key = i + 1;
  key_size = end - i - 2;
  i = json_skip_space(s, n, end);
  if (i >= n || s[i] != ':') return -1;
  return json_skip_space(s, n, i + 1);
}

/// A member's key at s[i] (as json_member_key), remembered in @p key, @p key_size and
/// @p key_escaped when the member belongs to the top-level object (@p depth 1).
__host__ __device__ inline int32_t json_next_member(const char* s, int32_t n, int32_t i, int32_t depth, int32_t& key,
                                                    int32_t& key_size, bool& key_escaped) {
  bool escaped;
  int32_t k, k_size;
  i = json_member_key(s, n, i, k, k_size, escaped);
  if (i >= 0 && depth == 1) {
    key = k;
    key_size = k_size;
    key_escaped = escaped;
  }
  return i;
}

/// Scans line text @p s (@p n bytes) as one JSON value as nlohmann's strict parser does; for
/// the top-level object or array, leaves in the fields' value_at where their values start.
__host__ __device__ inline int32_t json_scan_record(const char* s, int32_t n, const JsonFieldSlot* fields, int32_t field_count,
                                                    int64_t line, int32_t& elements) {
  for (int32_t f = 0; f < field_count; ++f) fields[f].value_at[line] = -1;
  elements = 0;
  bool unsure_fields = false;
  int32_t i = 0;
  if (n > 0 && static_cast<unsigned char>(s[0]) == 0xEF) {  // a byte order mark, whole or not at all
    if (n < 3 || static_cast<unsigned char>(s[1]) != 0xBB || static_cast<unsigned char>(s[2]) != 0xBF) return kJsonShapeBad;
    i = 3;
  }
  i = json_skip_space(s, n, i);
  if (i >= n || (s[i] != '{' && s[i] != '[')) return kJsonShapeBad;  // a scalar, or not JSON
  const int32_t shape = s[i] == '{' ? kJsonShapeObject : kJsonShapeArray;

  uint64_t objects = 0;  // bit d: the container at depth d + 1 is an object
  int32_t depth = 0;
  int32_t key = 0, key_size = 0;  // the current member of the top-level object
  bool key_escaped = false;
  bool expect_value = true;  // s[i] starts a value (whitespace skipped)
  while (true) {
    if (expect_value) {
      if (i >= n) return kJsonShapeBad;
      if (depth == 1) {
        if (objects & 1) {
          if (key_escaped) unsure_fields = true;
          else json_match_key(s, key, key_size, i, fields, field_count, line);
        } else {
          if (elements < field_count) fields[elements].value_at[line] = i;
          ++elements;
        }
      }
      const char c = s[i];
      if (c == '{' || c == '[') {
        if (depth == 64) return kJsonShapeUnsure;  // deeper than the stack of container kinds
        const bool object = c == '{';
        objects = object ? (objects | (uint64_t{1} << depth)) : (objects & ~(uint64_t{1} << depth));
        ++depth;
        i = json_skip_space(s, n, i + 1);
        if (i < n && s[i] == (object ? '}' : ']')) {  // empty
          --depth;
          ++i;
          expect_value = false;
        } else if (object) {
          i = json_next_member(s, n, i, depth, key, key_size, key_escaped);
          if (i < 0) return kJsonShapeBad;
        }
        continue;
      }
      if (c == '"') {
        bool escaped;
        i = json_scan_string(s, n, i, escaped);
      } else if (c == 't') {
        i = json_scan_word(s, n, i, "true");
      } else if (c == 'f') {
        i = json_scan_word(s, n, i, "false");
      } else if (c == 'n') {
        i = json_scan_word(s, n, i, "null");
      } else if (c == '-' || json_is_digit(c)) {
        bool integer;
        int32_t finite;
        i = json_scan_number(s, n, i, integer, finite);
        if (finite == kJsonBad) return kJsonShapeBad;  // "number overflow"
      } else {
        return kJsonShapeBad;
      }
      if (i < 0) return kJsonShapeBad;
      expect_value = false;
    }
    // After a value.
    i = json_skip_space(s, n, i);
    if (depth == 0) {
      if (i < n && s[i] != '\0') return kJsonShapeBad;  // more after the value
      return unsure_fields ? kJsonShapeUnsure : shape;
    }
    if (i >= n) return kJsonShapeBad;
    const bool in_object = ((objects >> (depth - 1)) & 1) != 0;
    if (s[i] == ',') {
      i = json_skip_space(s, n, i + 1);
      if (in_object) {
        i = json_next_member(s, n, i, depth, key, key_size, key_escaped);
        if (i < 0) return kJsonShapeBad;
      }
      expect_value = true;
      continue;
    }
    if (s[i] != (in_object ? '}' : ']')) return kJsonShapeBad;
    --depth;
    ++i;
  }
}

/// The JSON number s[0, n) (a valid token) as an integer of the field, as json_integer reads it.
__host__ __device__ inline int32_t json_number_integer(const char* s, int32_t n, bool integer, bool is32, int64_t& out) {
  if (integer) {
    const bool negative = s[0] == '-';
    uint64_t magnitude = 0;
    bool beyond = false;  // beyond uint64
    for (int32_t i = negative ? 1 : 0; i < n && !beyond; ++i) {
      const uint32_t d = static_cast<uint32_t>(s[i] - '0');
      if (magnitude > (~uint64_t{0} - d) / 10) beyond = true;
      else magnitude = magnitude * 10 + d;
    }
    constexpr uint64_t kMinMagnitude = uint64_t{1} << 63;
    if (!negative) {
      if (beyond || magnitude >= kMinMagnitude) return kJsonBad;  // unsigned above INT64_MAX, or a double >= 2^64
      out = static_cast<int64_t>(magnitude);
    } else if (!beyond && magnitude <= kMinMagnitude) {
      out = -static_cast<int64_t>(magnitude - 1) - 1;  // -2^63 without overflow; "-0" is 0
    } else if (!beyond && magnitude <= kMinMagnitude + 1024) {
      out = static_cast<int64_t>(kMinMagnitude);  // beyond int64: the double nearest is -2^63 (ties to even)
    } else {
      return kJsonBad;  // a double below -2^63
    }
  } else {
    double d = 0;
    const int32_t outcome = csv_parse_float(s, n, false, d);
    if (outcome != kCsvFieldOk) return outcome;
    if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0)) return kJsonBad;
    const int64_t v = static_cast<int64_t>(d);
    if (static_cast<double>(v) != d) return kJsonBad;  // a fraction
    out = v;
  }
  if (is32 && (out < -2147483648LL || out > 2147483647LL)) return kJsonBad;
  return kJsonOk;
}

/// The JSON number s[0, n) (a valid token) as a float field's double, as get<double>() reads it.
__host__ __device__ inline int32_t json_number_real(const char* s, int32_t n, bool integer, bool is32, double& out) {
  if (integer) {
    const bool negative = s[0] == '-';
    uint64_t magnitude = 0;
    bool beyond = false;
    for (int32_t i = negative ? 1 : 0; i < n && !beyond; ++i) {
      const uint32_t d = static_cast<uint32_t>(s[i] - '0');
      if (magnitude > (~uint64_t{0} - d) / 10) beyond = true;
      else magnitude = magnitude * 10 + d;
    }
    if (!beyond) {
      // An int64 or uint64, converted with one rounding to nearest; "-0" is the integer 0.
      const double m = static_cast<double>(magnitude);
      out = negative && magnitude != 0 ? -m : m;
      if (is32 && (out > kCsvFloatMax || out < -kCsvFloatMax)) return kJsonBad;
      return kJsonOk;
    }
  }
  return csv_parse_float(s, n, is32, out);  // the double nearest to the decimal; beyond FLT_MAX is bad
}

/// Field @p field of line @p line (text @p s, @p n bytes, already scanned): checks its value.
/// Pass 1 (@p out_row < 0) stores, at index @p line, its validity byte and its value (fixed
/// width) or length (strings); pass 2 writes a string's bytes into row @p out_row and leaves
/// the other fields alone.
__host__ __device__ inline int32_t json_field(const JsonFieldSlot& field, const char* s, int32_t n, int64_t line, int64_t out_row) {
  if (out_row >= 0 && field.type != kString) return kJsonOk;
  const int32_t at = field.value_at[line];
  bool is_null = false;
  int64_t integer = 0;
  double real = 0;
  int32_t text_begin = 0, length = 0;
  if (at < 0 || s[at] == 'n') {  // missing, or null
    if (!field.nullable) return kJsonBad;
    is_null = true;
  } else {
    const char c = s[at];
    const bool number = c == '-' || json_is_digit(c);
    switch (field.type) {
      case kBool:
        if (c != 't' && c != 'f') return kJsonBad;
        integer = c == 't' ? 1 : 0;
        break;
      case kString: {
        if (c != '"') return kJsonBad;
        bool escaped;
        const int32_t end = json_scan_string(s, n, at, escaped);
        if (escaped) return kJsonUnsure;
        text_begin = at + 1;
        length = end - at - 2;
        break;
      }
      case kInt32:
      case kInt64:
      case kFloat32:
      case kFloat64: {
        if (!number) return kJsonBad;
        bool is_integer;
        int32_t finite;
        const int32_t end = json_scan_number(s, n, at, is_integer, finite);
        const int32_t outcome =
            field.type == kInt32 || field.type == kInt64
                ? json_number_integer(s + at, end - at, is_integer, field.type == kInt32, integer)
                : json_number_real(s + at, end - at, is_integer, field.type == kFloat32, real);
        if (outcome != kJsonOk) return outcome;
        break;
      }
      default: return kJsonBad;
    }
  }
  if (out_row < 0) {
    if (field.nullable) field.valid_bytes[line] = is_null ? 0 : 1;
    if (field.type == kString) field.lengths[line] = length;
    else csv_store_value(field.type, field.values, line, integer, real);
    return kJsonOk;
  }

  const int32_t end = field.lengths[line];  // inclusive scan: where this row's bytes end
  const int32_t begin = end - length;
  field.offsets[out_row + 1] = end;
  for (int32_t k = 0; k < length; ++k) field.chars[begin + k] = s[text_begin + k];
  return kJsonOk;
}

/// Where line @p line's text lies, without one trailing '\r', and whether it is blank.
__host__ __device__ inline bool json_line_span(const char* chars, const int32_t* line_offsets, int64_t line, const char*& text,
                                               int32_t& size) {
  csv_line_span(chars, line_offsets, line, text, size);
  for (int32_t k = 0; k < size; ++k)
    if (text[k] != ' ' && text[k] != '\t') return false;
  return true;
}

/// Pass 1: the JsonRecordStatus of line @p line.
__host__ __device__ inline uint8_t json_record(const char* chars, const int32_t* line_offsets, int64_t line, const JsonFieldSlot* fields,
                                               int32_t field_count) {
  const char* text;
  int32_t size;
  if (json_line_span(chars, line_offsets, line, text, size)) return kJsonBlank;
  int32_t elements = 0;
  const int32_t shape = json_scan_record(text, size, fields, field_count, line, elements);
  if (shape == kJsonShapeBad) return kJsonMalformed;
  if (shape == kJsonShapeUnsure) return kJsonNeedsHost;
  if (shape == kJsonShapeArray && elements != field_count) return kJsonMalformed;
  bool needs_host = false;
  for (int32_t f = 0; f < field_count; ++f) {
    const int32_t outcome = json_field(fields[f], text, size, line, -1);
    if (outcome == kJsonBad) return kJsonMalformed;
    needs_host |= outcome == kJsonUnsure;
  }
  return needs_host ? kJsonNeedsHost : kJsonGood;
}

/// Pass 1: the status of every line, and its fields at its index; string lengths stay only
/// for good records (0 otherwise), so that their scan gives the compacted offsets.
struct ClassifyJsonRecord {
  const char* chars;
  const int32_t* line_offsets;
  const uint8_t* line_validity;
  const JsonFieldSlot* fields;
  int32_t field_count;
  uint8_t* status;
  __host__ __device__ void operator()(int64_t line) const {
    uint8_t s = kJsonMalformed;  // a null line
    if (line_validity == nullptr || ((line_validity[line >> 3] >> (line & 7)) & 1) != 0)
      s = json_record(chars, line_offsets, line, fields, field_count);
    status[line] = s;
    if (s != kJsonGood)
      for (int32_t f = 0; f < field_count; ++f)
        if (fields[f].type == kString) fields[f].lengths[line] = 0;
  }
};

/// Pass 2: the strings of row @p row (the good record of line row_index[row]) into the columns.
struct WriteJsonRow {
  const char* chars;
  const int32_t* line_offsets;
  const int64_t* row_index;
  const JsonFieldSlot* fields;
  int32_t field_count;
  __host__ __device__ void operator()(int64_t row) const {
    const int64_t line = row_index[row];
    const char* text;
    int32_t size;
    csv_line_span(chars, line_offsets, line, text, size);
    for (int32_t f = 0; f < field_count; ++f) json_field(fields[f], text, size, line, row);
  }
};

/// Parses @p lines JSON records (@p line_offsets: lines + 1 Arrow offsets into @p chars, both
/// in @p exec's memory; @p line_validity: the lines' Arrow bitmap in @p exec's memory, or
/// null when none is null) as the fields @p fields named @p field_names (host arrays of
/// @p field_count; every type a scalar ColumnType; names NUL-terminated, matched byte for
/// byte). The columns and indexes stay in @p exec's memory.
template <class Exec>
JsonParseResult<Exec> parse_json_on_device(Exec& exec, const char* chars, const int32_t* line_offsets, size_t lines,
                                           const CsvFieldSpec* fields, const char* const* field_names, size_t field_count,
                                           const uint8_t* line_validity = nullptr) {
  JsonParseResult<Exec> out;
  auto policy = exec.policy();
  const int64_t n = static_cast<int64_t>(lines);
  const int32_t nfields = static_cast<int32_t>(field_count);

  // The names, one block in the executor's memory.
  std::vector<char> name_bytes;
  std::vector<size_t> name_begin(field_count), name_size(field_count);
  for (size_t f = 0; f < field_count; ++f) {
    name_begin[f] = name_bytes.size();
    name_size[f] = std::strlen(field_names[f]);
    name_bytes.insert(name_bytes.end(), field_names[f], field_names[f] + name_size[f]);
  }
  auto names = exec.template alloc<char>(name_bytes.size());
  exec.to_device(names.data(), name_bytes.data(), name_bytes.size());

  // Pass 1: classify, find the values, store every field at its line, and size the string
  // fields of the good records.
  std::vector<JsonFieldSlot> slots(field_count);
  size_t string_fields = 0;
  for (size_t f = 0; f < field_count; ++f) {
    slots[f].type = fields[f].type;
    slots[f].nullable = fields[f].nullable ? 1 : 0;
    slots[f].name = names.data() + name_begin[f];
    slots[f].name_size = static_cast<int32_t>(name_size[f]);
    string_fields += fields[f].type == kString;
  }
  auto value_at = exec.template alloc<int32_t>(field_count * lines);
  auto lengths = exec.template alloc<int32_t>(string_fields * lines);
  for (size_t f = 0, s = 0; f < field_count; ++f) {
    slots[f].value_at = value_at.data() + f * lines;
    if (slots[f].type == kString) slots[f].lengths = lengths.data() + (s++) * lines;
  }
  CsvLineValues<Exec> line_values = csv_line_values(exec, slots, lines);
  auto pass1_fields = exec.template alloc<JsonFieldSlot>(field_count);
  exec.to_device(pass1_fields.data(), slots.data(), field_count * sizeof(JsonFieldSlot));
  auto status = exec.template alloc<uint8_t>(lines);
  if (n > 0)
    thrust::for_each_n(policy, thrust::counting_iterator<int64_t>(0), n,
                       ClassifyJsonRecord{chars, line_offsets, line_validity, pass1_fields.data(), nfields, status.data()});

  // The lines of each kind, in input order.
  out.rows = csv_lines_with_status(exec, status.data(), n, kJsonGood, out.row_index);
  out.malformed_count = csv_lines_with_status(exec, status.data(), n, kJsonMalformed, out.malformed);
  out.needs_host_count = csv_lines_with_status(exec, status.data(), n, kJsonNeedsHost, out.needs_host);
  out.blank_count = lines - out.rows - out.malformed_count - out.needs_host_count;

  const size_t rows = out.rows;
  const auto valid_bytes = csv_allocate_columns(exec, slots, n, rows, out.row_index.data(), line_values, out.columns);

  // Pass 2: the good records' strings into the columns.
  if (rows > 0 && string_fields > 0) {
    auto pass2_fields = exec.template alloc<JsonFieldSlot>(field_count);
    exec.to_device(pass2_fields.data(), slots.data(), field_count * sizeof(JsonFieldSlot));
    thrust::for_each_n(policy, thrust::counting_iterator<int64_t>(0), static_cast<int64_t>(rows),
                       WriteJsonRow{chars, line_offsets, out.row_index.data(), pass2_fields.data(), nfields});
  }
  if (rows > 0) csv_pack_validity(exec, slots, rows, out.columns);
  return out;
}

}  // namespace sluice::gpu
