#pragma once
// CSV records parsed on the device: a batch of lines (an Arrow string column already in the
// executor's memory) becomes one Arrow column per field, covering the good records only, in
// input order (the stream compaction is fused: malformed records leave no gap). Written once
// against an execution context (CudaExec on the GPU, HostExec in the host tests).
//
// The rules are those of the CPU parser (src/pipeline/record_parsers.cpp, parse_csv):
//  - A trailing '\r' is dropped; a line that is then empty is blank: no row, not malformed.
//    A null line (validity bit clear) is malformed.
//  - Splitting: a field that starts with the quote runs to the next lone quote (a doubled
//    quote inside stands for one); the closing quote must end the line or be followed by the
//    delimiter, and an unclosed quote is malformed. A quote inside an unquoted field is an
//    ordinary character. No whitespace is trimmed anywhere.
//  - The record must have exactly one field per declared field.
//  - An empty field (after unquoting) is null when the field is nullable; otherwise "" for a
//    string and malformed for any other type. A quoted empty field ("") is always "" for a
//    string field, even a nullable one.
//  - Bool: true/false in any letter case, or 1/0.
//  - Int32/Int64: std::from_chars syntax, -?[0-9]+ (no '+', no spaces); a value outside the
//    field's type is malformed.
//  - Float32/Float64: std::from_chars (general) syntax: -?(digits[.digits]|.digits)([eE][+-]?
//    digits)?, or inf/infinity/nan/nan([A-Za-z0-9_]*) in any letter case. The value is the
//    double nearest to the decimal (a Float32 field then rounds that double to float, as the
//    CPU parser does); a finite value beyond the type's largest is malformed, an underflow is
//    the nearest value.
//
// Float conversion. The fast path: the significant digits, up to 19 of them (trailing zeros
// moved into the exponent), form an integer m and the text is m * 10^e. When m <= 2^53 and
// |e| <= 22, m and 10^|e| are exact doubles and one IEEE multiplication or division rounds
// m * 10^e to nearest, exactly as strtod does; likewise when e > 22 but m * 10^(e-22) is still
// an integer <= 2^53, and when e == 0 (the conversion of m itself rounds to nearest). Decimals
// certain to overflow (>= 1e309) are malformed and those certain to round to zero (< 1e-324)
// are +-0; a Float32 field's double is then checked against FLT_MAX. Every other number (more
// than 19 significant digits, a larger mantissa with a scale, a larger exponent, a subnormal)
// goes through the Eisel-Lemire algorithm: the first 19 digits times a 128-bit power of five
// (kernels/powers_of_five.cuh), which decides almost every number in a few multiplications;
// with more digits, the 19 digits and their successor must round alike. What it cannot tell
// takes the exact path (CsvDecimal): the decimal's digits (up to 800, and whether any nonzero
// digit was dropped after them) are scaled by powers of two until 53 bits of it are an
// integer, which is rounded to nearest, ties to even, as strtod rounds (the algorithm of Go's
// strconv decimal conversion). "nan(chars)" is a NaN of its sign, as from_chars reads it. Only
// a doubled quote inside a quoted non-string field leaves a record to the host.
//
// A record is malformed when anything the device decides exactly makes it so (its structure,
// its field count, any field); otherwise it needs the host when any field does; otherwise it
// is good. The device gives the indexes of the malformed records only: the host reparses them
// with the CPU parser for the dead-letter messages.
//
// One thread parses one record (records are short). Pass 1 classifies every record, stores its
// fixed-width values and validity bytes at the record's line, and sizes its string fields;
// scans give the good rows and the string offsets; the line arrays become the columns (whole
// when every line is a good record, gathered by the good rows otherwise); pass 2 splits each
// good record again and writes its string bytes only, so each number is converted once. A
// last pass packs the validity bytes into Arrow bitmaps.
//
// C++17: nvcc here has no C++20 dialect through CMake; this file includes no engine header.
#include <thrust/copy.h>
#include <thrust/count.h>
#include <thrust/fill.h>
#include <thrust/for_each.h>
#include <thrust/gather.h>
#include <thrust/iterator/counting_iterator.h>
#include <thrust/scan.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "gpu_types.hpp"
#include "powers_of_five.cuh"

namespace sluice::gpu {

/// What became of one input line.
enum CsvRecordStatus : uint8_t {
  kCsvGood = 0,       ///< parsed: a row of the output
  kCsvBlank = 1,      ///< empty (or a lone "\r"): no record
  kCsvMalformed = 2,  ///< not a valid record of the fields
  kCsvNeedsHost = 3,  ///< the device cannot tell exactly: the CPU parser decides
};

/// One output column, in @p Exec's memory, in the Arrow layout of sluice::Column: a null row
/// holds zero bytes (fixed width) or an empty string.
template <class Exec> struct CsvDeviceColumn {
  int32_t type = kString;
  bool nullable = false;
  typename Exec::template Array<uint8_t> values;    ///< rows x the type's width (bool: one byte)
  typename Exec::template Array<uint8_t> validity;  ///< nullable: (rows + 7) / 8 bytes, bit set = valid
  typename Exec::template Array<int32_t> offsets;   ///< strings: rows + 1, from 0
  typename Exec::template Array<char> chars;        ///< strings
  size_t char_count = 0;                            ///< strings: bytes in chars
  size_t null_count = 0;

  ColumnView view() const { return view_of_owned(*this); }
};

/// The good records as columns, and the input indexes of the others, all in @p Exec's memory.
template <class Exec> struct CsvParseResult {
  size_t rows = 0;                                   ///< good records
  std::vector<CsvDeviceColumn<Exec>> columns;        ///< one per field, rows each
  typename Exec::template Array<int64_t> row_index;  ///< rows: the input line of each row, ascending
  size_t malformed_count = 0;
  typename Exec::template Array<int64_t> malformed;  ///< input lines of malformed records, ascending
  size_t needs_host_count = 0;
  typename Exec::template Array<int64_t> needs_host; ///< input lines the CPU parser must parse, ascending
  size_t blank_count = 0;                            ///< blank lines (no record, not malformed)
};

// ---------------------------------------------------------------- scalar text

enum CsvFieldOutcome : int32_t { kCsvFieldOk = 0, kCsvFieldMalformed = 1, kCsvFieldNeedsHost = 2 };

__host__ __device__ inline double csv_double_of_bits(uint64_t bits) {
  double d;
  memcpy(&d, &bits, 8);
  return d;
}

/// ASCII lower case (std::tolower in the C locale).
__host__ __device__ inline char csv_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

/// The bytes of a buffer, for the readers over a byte accessor (csv_parse_integer_bytes, ...).
struct CsvBufferBytes {
  const char* s;
  __host__ __device__ char operator()(int32_t i) const { return s[i]; }
};

/// Whether the @p n bytes @p byte(first) ... are @p lower in any letter case.
template <class Bytes>
__host__ __device__ bool csv_equals_ignoring_case_bytes(const Bytes& byte, int32_t first, int32_t n, const char* lower) {
  int32_t i = 0;
  for (; i < n; ++i)
    if (lower[i] == '\0' || csv_lower(byte(first + i)) != lower[i]) return false;
  return lower[i] == '\0';
}

/// Whether @p s (@p n bytes) is @p lower in any letter case.
__host__ __device__ inline bool csv_equals_ignoring_case(const char* s, int32_t n, const char* lower) {
  return csv_equals_ignoring_case_bytes(CsvBufferBytes{s}, 0, n, lower);
}

__host__ __device__ inline int32_t csv_parse_bool(const char* s, int32_t n, int64_t& out) {
  if ((n == 1 && s[0] == '1') || csv_equals_ignoring_case(s, n, "true")) {
    out = 1;
    return kCsvFieldOk;
  }
  if ((n == 1 && s[0] == '0') || csv_equals_ignoring_case(s, n, "false")) {
    out = 0;
    return kCsvFieldOk;
  }
  return kCsvFieldMalformed;
}

/// -?[0-9]+ within the range of int64 (or int32 when @p is32), as std::from_chars reads it,
/// over the @p n bytes @p byte(0) ... @p byte(n - 1).
template <class Bytes>
__host__ __device__ int32_t csv_parse_integer_bytes(const Bytes& byte, int32_t n, bool is32, int64_t& out) {
  int32_t i = 0;
  const bool negative = n > 0 && byte(0) == '-';
  if (negative) i = 1;
  if (i == n) return kCsvFieldMalformed;
  const uint64_t limit = negative ? (is32 ? 2147483648ull : 9223372036854775808ull) : (is32 ? 2147483647ull : 9223372036854775807ull);
  uint64_t v = 0;
  for (; i < n; ++i) {
    const uint32_t d = static_cast<uint32_t>(static_cast<unsigned char>(byte(i))) - static_cast<uint32_t>('0');
    if (d > 9) return kCsvFieldMalformed;
    if (v > (limit - d) / 10) return kCsvFieldMalformed;  // out of range
    v = v * 10 + d;
  }
  out = negative ? -static_cast<int64_t>(v - 1) - 1 : static_cast<int64_t>(v);  // -2^63 without overflow
  return kCsvFieldOk;
}

/// csv_parse_integer_bytes over the @p n bytes at @p s.
__host__ __device__ inline int32_t csv_parse_integer(const char* s, int32_t n, bool is32, int64_t& out) {
  return csv_parse_integer_bytes(CsvBufferBytes{s}, n, is32, out);
}

/// 10^k for 0 <= k <= 22, exactly: every product on the way is an exact double (5^22 < 2^53).
__host__ __device__ inline double csv_exact_pow10(int32_t k) {
  double p = 1.0;
  for (int32_t i = 0; i < k; ++i) p *= 10.0;
  return p;
}

/// The high and low 64 bits of @p a * @p b.
__host__ __device__ inline void csv_multiply_128(uint64_t a, uint64_t b, uint64_t& high, uint64_t& low) {
#ifdef __CUDA_ARCH__
  low = a * b;
  high = __umul64hi(a, b);
#else
  const unsigned __int128 product = static_cast<unsigned __int128>(a) * b;
  low = static_cast<uint64_t>(product);
  high = static_cast<uint64_t>(product >> 64);
#endif
}

__host__ __device__ inline int32_t csv_leading_zeros(uint64_t w) {
#ifdef __CUDA_ARCH__
  return __clzll(static_cast<long long>(w));
#else
  return __builtin_clzll(w);
#endif
}

/// The double nearest to @p w * 10^@p q (w > 0, q in [kCsvSmallestPowerOfFive,
/// kCsvLargestPowerOfFive]), ties to even, by the Eisel-Lemire algorithm (Lemire, "Number
/// Parsing at a Gigabyte per Second", 2021): w times the 128-bit 5^q, scaled by the power of
/// two that 10^q carries. @p bits gets the magnitude's bits (infinity's when it overflows);
/// false when the truncated product cannot tell which way to round (then the exact path does).
__host__ __device__ inline bool csv_eisel_lemire(uint64_t w, int32_t q, uint64_t& bits) {
  constexpr int32_t kMantissaBits = 52, kMinimumExponent = -1023, kInfinitePower = 0x7FF;
  const uint64_t* powers = csv_powers_of_five();
  const int32_t zeros = csv_leading_zeros(w);
  w <<= zeros;
  const size_t index = 2 * static_cast<size_t>(q - kCsvSmallestPowerOfFive);
  uint64_t high = 0, low = 0;
  csv_multiply_128(w, powers[index], high, low);
  // The bits below the 55 kept (mantissa, hidden bit, rounding bit) are all ones: the low word
  // of 5^q may carry into them.
  constexpr uint64_t kBelowKept = ~uint64_t{0} >> (kMantissaBits + 3);
  if ((high & kBelowKept) == kBelowKept) {
    uint64_t second_high = 0, second_low = 0;
    csv_multiply_128(w, powers[index + 1], second_high, second_low);
    low += second_high;
    if (second_high > low) ++high;
  }
  // Still ambiguous where 5^q is not exact in 128 bits (q outside [-27, 55]).
  if (low == ~uint64_t{0} && (q < -27 || q > 55)) return false;
  const int32_t upper_bit = static_cast<int32_t>(high >> 63);
  const int32_t shift = upper_bit + 64 - kMantissaBits - 3;
  uint64_t mantissa = high >> shift;
  // log2(10^q) is about q * 217706 / 2^16, exact enough over the table's range.
  int32_t power2 = ((q * (152170 + 65536)) >> 16) + 63 + upper_bit - zeros - kMinimumExponent;
  if (power2 <= 0) {  // a subnormal, or 0
    if (-power2 + 1 >= 64) {
      bits = 0;
      return true;
    }
    mantissa >>= -power2 + 1;
    mantissa += mantissa & 1;
    mantissa >>= 1;
    // Rounding up to 2^52 makes the least normal: exponent field 1, mantissa field 0.
    bits = mantissa | (mantissa >= (uint64_t{1} << kMantissaBits) ? uint64_t{1} << kMantissaBits : 0);
    return true;
  }
  // Exactly halfway between two doubles (only possible where 5^q fits in 64 bits): to even.
  if (low <= 1 && q >= -4 && q <= 23 && (mantissa & 3) == 1 && (mantissa << shift) == high) mantissa &= ~uint64_t{1};
  mantissa += mantissa & 1;
  mantissa >>= 1;
  if (mantissa >= (uint64_t{2} << kMantissaBits)) {  // rounding carried into a new bit
    mantissa = uint64_t{1} << kMantissaBits;
    ++power2;
  }
  mantissa &= ~(uint64_t{1} << kMantissaBits);
  if (power2 >= kInfinitePower) {
    bits = static_cast<uint64_t>(kInfinitePower) << kMantissaBits;
    return true;
  }
  bits = mantissa | (static_cast<uint64_t>(power2) << kMantissaBits);
  return true;
}

/// A decimal number's digits for the exact conversion: 0.d[0]d[1]...d[nd-1] * 10^dp, with
/// @p trunc set when nonzero digits past the 800 kept were dropped (800 digits decide every
/// double: the longest exact decimal of a double's halfway point has 767 significant digits).
struct CsvDecimal {
  static constexpr int32_t kDigits = 800;
  static constexpr int32_t kMaxShift = 60;  ///< bits per shift step: digit << 60 plus a carry fits in uint64
  uint8_t d[kDigits];                        ///< digit values 0-9, most significant first
  int32_t nd = 0;
  int32_t dp = 0;
  bool trunc = false;
};

/// Drops trailing zero digits (a zero has no digits and a decimal point of 0).
__host__ __device__ inline void csv_decimal_trim(CsvDecimal& a) {
  while (a.nd > 0 && a.d[a.nd - 1] == 0) --a.nd;
  if (a.nd == 0) a.dp = 0;
}

/// a *= 2^k, 0 < k <= kMaxShift.
__host__ __device__ inline void csv_decimal_left_shift(CsvDecimal& a, int32_t k) {
  // The digits the carry out of the top adds: a dry run of the loop below.
  uint64_t n = 0;
  for (int32_t r = a.nd - 1; r >= 0; --r) n = (n + (static_cast<uint64_t>(a.d[r]) << k)) / 10;
  int32_t delta = 0;
  for (; n > 0; n /= 10) ++delta;
  int32_t w = a.nd + delta;  // write index, from the end
  n = 0;
  for (int32_t r = a.nd - 1; r >= 0; --r) {
    n += static_cast<uint64_t>(a.d[r]) << k;
    const uint64_t quotient = n / 10, digit = n - 10 * quotient;
    if (--w < CsvDecimal::kDigits) a.d[w] = static_cast<uint8_t>(digit);
    else if (digit != 0) a.trunc = true;
    n = quotient;
  }
  for (; n > 0; n /= 10) {
    const uint64_t quotient = n / 10, digit = n - 10 * quotient;
    if (--w < CsvDecimal::kDigits) a.d[w] = static_cast<uint8_t>(digit);
    else if (digit != 0) a.trunc = true;
  }
  a.nd += delta;
  if (a.nd > CsvDecimal::kDigits) a.nd = CsvDecimal::kDigits;
  a.dp += delta;
  csv_decimal_trim(a);
}

/// a /= 2^k, 0 < k <= kMaxShift (digits that no longer fit set trunc).
__host__ __device__ inline void csv_decimal_right_shift(CsvDecimal& a, int32_t k) {
  int32_t r = 0, w = 0;
  uint64_t n = 0;
  for (; (n >> k) == 0; ++r) {  // enough leading digits for the first quotient digit
    if (r >= a.nd) {
      if (n == 0) {
        a.nd = 0;
        a.dp = 0;
        return;
      }
      while ((n >> k) == 0) {
        n *= 10;
        ++r;
      }
      break;
    }
    n = n * 10 + a.d[r];
  }
  a.dp -= r - 1;
  const uint64_t mask = (uint64_t{1} << k) - 1;
  for (; r < a.nd; ++r) {
    const uint64_t digit = n >> k;
    n &= mask;
    a.d[w++] = static_cast<uint8_t>(digit);
    n = n * 10 + a.d[r];
  }
  while (n > 0) {
    const uint64_t digit = n >> k;
    n &= mask;
    if (w < CsvDecimal::kDigits) a.d[w++] = static_cast<uint8_t>(digit);
    else if (digit > 0) a.trunc = true;
    n *= 10;
  }
  a.nd = w;
  csv_decimal_trim(a);
}

/// a *= 2^k (k may be negative).
__host__ __device__ inline void csv_decimal_shift(CsvDecimal& a, int32_t k) {
  if (a.nd == 0) return;
  for (; k > CsvDecimal::kMaxShift; k -= CsvDecimal::kMaxShift) csv_decimal_left_shift(a, CsvDecimal::kMaxShift);
  for (; k < -CsvDecimal::kMaxShift; k += CsvDecimal::kMaxShift) csv_decimal_right_shift(a, CsvDecimal::kMaxShift);
  if (k > 0) csv_decimal_left_shift(a, k);
  else if (k < 0) csv_decimal_right_shift(a, -k);
}

/// Whether a rounded to its first @p nd digits rounds up: above half, or exactly half (no
/// digit dropped) with an odd digit before.
__host__ __device__ inline bool csv_decimal_rounds_up(const CsvDecimal& a, int32_t nd) {
  if (nd < 0 || nd >= a.nd) return false;
  if (a.d[nd] == 5 && nd + 1 == a.nd) {
    if (a.trunc) return true;
    return nd > 0 && a.d[nd - 1] % 2 == 1;
  }
  return a.d[nd] >= 5;
}

/// The integer part of a, rounded to nearest, ties to even (a < 2^64).
__host__ __device__ inline uint64_t csv_decimal_rounded_integer(const CsvDecimal& a) {
  if (a.dp > 20) return ~uint64_t{0};
  uint64_t n = 0;
  int32_t i = 0;
  for (; i < a.dp && i < a.nd; ++i) n = n * 10 + a.d[i];
  for (; i < a.dp; ++i) n *= 10;
  if (csv_decimal_rounds_up(a, a.dp)) ++n;
  return n;
}

/// The bits of the double nearest to a (magnitude only); @p overflow when it is beyond
/// DBL_MAX (the bits are then infinity's).
__host__ __device__ inline uint64_t csv_decimal_to_double_bits(CsvDecimal& a, bool& overflow) {
  constexpr int32_t kMantissaBits = 52, kExponentBits = 11, kBias = -1023;
  constexpr int32_t kPowers[] = {1, 3, 6, 9, 13, 16, 19, 23, 26};  // bits that move dp by one digit at least
  overflow = false;
  if (a.nd == 0) return 0;
  if (a.dp > 310) {
    overflow = true;
    return uint64_t{0x7FF} << kMantissaBits;
  }
  if (a.dp < -330) return 0;
  int32_t exp = 0;
  while (a.dp > 0) {  // scale into [0.5, 1)
    const int32_t n = a.dp >= 9 ? 27 : kPowers[a.dp];
    csv_decimal_shift(a, -n);
    exp += n;
  }
  while (a.dp < 0 || (a.dp == 0 && a.d[0] < 5)) {
    const int32_t n = -a.dp >= 9 ? 27 : kPowers[-a.dp];
    csv_decimal_shift(a, n);
    exp -= n;
  }
  --exp;  // [0.5, 1) is [1, 2) * 2^-1
  if (exp < kBias + 1) {  // below the least normal exponent: a subnormal
    const int32_t n = kBias + 1 - exp;
    csv_decimal_shift(a, -n);
    exp += n;
  }
  if (exp - kBias >= (1 << kExponentBits) - 1) {
    overflow = true;
    return uint64_t{0x7FF} << kMantissaBits;
  }
  csv_decimal_shift(a, 1 + kMantissaBits);
  uint64_t mantissa = csv_decimal_rounded_integer(a);
  if (mantissa == (uint64_t{2} << kMantissaBits)) {  // rounding carried into a new bit
    mantissa >>= 1;
    ++exp;
    if (exp - kBias >= (1 << kExponentBits) - 1) {
      overflow = true;
      return uint64_t{0x7FF} << kMantissaBits;
    }
  }
  if ((mantissa & (uint64_t{1} << kMantissaBits)) == 0) exp = kBias;  // subnormal
  return (mantissa & ((uint64_t{1} << kMantissaBits) - 1)) |
         (static_cast<uint64_t>((exp - kBias) & ((1 << kExponentBits) - 1)) << kMantissaBits);
}

/// Exponents are read up to this (and saturate there): beyond any text's digits (a field is
/// under 2^31 bytes) plus the 10^-325 to 10^309 that a double spans, so a saturated exponent
/// still decides overflow or underflow alone.
constexpr int64_t kCsvExponentLimit = int64_t{1} << 40;

/// The double nearest to the decimal text @p byte(0) ... @p byte(n - 1) in std::from_chars's
/// general syntax, whole: -?(digits[.digits]|.digits)([eE][+-]?digits)?, or inf, infinity,
/// nan or nan([A-Za-z0-9_]*) in any letter case. kCsvFieldOk with @p out (infinity when
/// @p overflow: the decimal is beyond DBL_MAX); @p underflow when a nonzero decimal rounds to
/// +-0. kCsvFieldMalformed for any other text.
template <class Bytes>
__host__ __device__ int32_t csv_parse_double_bytes(const Bytes& byte, int32_t n, double& out, bool& overflow, bool& underflow) {
  constexpr uint64_t kSignBit = 0x8000000000000000ULL;
  overflow = underflow = false;
  int32_t i = 0;
  const bool negative = n > 0 && byte(0) == '-';
  if (negative) i = 1;
  if (i == n) return kCsvFieldMalformed;
  const uint64_t sign = negative ? kSignBit : 0;
  const char c0 = csv_lower(byte(i));
  if (c0 == 'i' || c0 == 'n') {
    const int32_t len = n - i;
    auto word_is = [&](int32_t length, const char* lower) { return csv_equals_ignoring_case_bytes(byte, i, length, lower); };
    if (word_is(len, "inf") || word_is(len, "infinity")) {
      out = csv_double_of_bits(sign | 0x7FF0000000000000ULL);
      return kCsvFieldOk;
    }
    if (len < 3 || !word_is(3, "nan")) return kCsvFieldMalformed;
    if (len > 3) {  // nan(n-char-sequence)
      if (len < 5 || byte(i + 3) != '(' || byte(n - 1) != ')') return kCsvFieldMalformed;
      for (int32_t k = i + 4; k < n - 1; ++k) {
        const char c = byte(k);
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_')) return kCsvFieldMalformed;
      }
    }
    out = csv_double_of_bits(sign | 0x7FF8000000000000ULL);
    return kCsvFieldOk;
  }

  const int32_t digits_begin = i;
  uint64_t mantissa = 0;  // the first 19 significant digits
  int32_t digits = 0;     // significant digits in mantissa
  bool dropped_nonzero = false;
  int64_t scale = 0;      // text = mantissa * 10^scale (before the exponent), up to dropped digits
  bool any_digit = false;
  for (; i < n && byte(i) >= '0' && byte(i) <= '9'; ++i) {
    any_digit = true;
    const uint32_t d = static_cast<uint32_t>(byte(i) - '0');
    if (digits == 0 && d == 0) continue;  // a leading zero
    if (digits < 19) {
      mantissa = mantissa * 10 + d;
      ++digits;
    } else {
      dropped_nonzero |= d != 0;
      ++scale;
    }
  }
  if (i < n && byte(i) == '.') {
    for (++i; i < n && byte(i) >= '0' && byte(i) <= '9'; ++i) {
      any_digit = true;
      const uint32_t d = static_cast<uint32_t>(byte(i) - '0');
      if (digits == 0 && d == 0) {
        --scale;
        continue;
      }
      if (digits < 19) {
        mantissa = mantissa * 10 + d;
        ++digits;
        --scale;
      } else {
        dropped_nonzero |= d != 0;
      }
    }
  }
  if (!any_digit) return kCsvFieldMalformed;
  const int32_t digits_end = i;
  int64_t exponent = 0;
  if (i < n && (byte(i) == 'e' || byte(i) == 'E')) {
    ++i;
    bool exp_negative = false;
    if (i < n && (byte(i) == '+' || byte(i) == '-')) exp_negative = byte(i++) == '-';
    if (i == n) return kCsvFieldMalformed;  // "1e", "1e+": from_chars stops before the 'e'
    for (; i < n && byte(i) >= '0' && byte(i) <= '9'; ++i)
      if (exponent < kCsvExponentLimit) exponent = exponent * 10 + (byte(i) - '0');
    if (exp_negative) exponent = -exponent;
  }
  if (i != n) return kCsvFieldMalformed;
  scale += exponent;

  if (mantissa == 0) {  // every digit zero: +-0 whatever the exponent
    out = csv_double_of_bits(sign);
    return kCsvFieldOk;
  }
  // The decimal lies in [10^lead, 10^(lead + 1)).
  const int64_t lead = scale + digits - 1;
  if (lead >= 309) {  // beyond DBL_MAX
    overflow = true;
    out = csv_double_of_bits(sign | 0x7FF0000000000000ULL);
    return kCsvFieldOk;
  }
  if (lead <= -325) {  // below half the least subnormal (2^-1075 > 2.4e-324): +-0
    underflow = true;
    out = csv_double_of_bits(sign);
    return kCsvFieldOk;
  }
  if (!dropped_nonzero) {
    while (mantissa % 10 == 0) {  // trailing zeros ("1.500", "2000"): an exact, smaller mantissa
      mantissa /= 10;
      ++scale;
    }
    constexpr uint64_t kExactMantissa = uint64_t{1} << 53;
    bool exact = true;
    double value = 0;
    if (scale == 0) {
      value = static_cast<double>(mantissa);  // one rounding to nearest
    } else if (mantissa > kExactMantissa) {
      exact = false;
    } else if (scale > 0 && scale <= 22) {
      value = static_cast<double>(mantissa) * csv_exact_pow10(static_cast<int32_t>(scale));
    } else if (scale < 0 && scale >= -22) {
      value = static_cast<double>(mantissa) / csv_exact_pow10(static_cast<int32_t>(-scale));
    } else if (scale > 22 && scale <= 22 + 15) {
      // m * 10^(e-22) may still be an exact integer: then one multiplication by 1e22.
      uint64_t m = mantissa;
      for (int64_t k = 22; k < scale && exact; ++k) {
        if (m > kExactMantissa / 10) exact = false;
        else m *= 10;
      }
      value = static_cast<double>(m) * csv_exact_pow10(22);
    } else {
      exact = false;
    }
    if (exact) {
      out = negative ? -value : value;
      return kCsvFieldOk;
    }
  }

  // Eisel-Lemire on the first 19 digits (a decimal with more lies between them and their
  // successor: when both round alike, so does the decimal).
  uint64_t bits = 0, bits_above = 0;
  if (csv_eisel_lemire(mantissa, static_cast<int32_t>(scale), bits) &&
      (!dropped_nonzero || (csv_eisel_lemire(mantissa + 1, static_cast<int32_t>(scale), bits_above) && bits_above == bits))) {
    overflow = bits == uint64_t{0x7FF} << 52;
    underflow = bits == 0;
    out = csv_double_of_bits(sign | bits);
    return kCsvFieldOk;
  }

  // The exact path: every digit (up to CsvDecimal::kDigits), scaled by powers of two.
  CsvDecimal decimal;
  int64_t significant = 0;  // significant digits before the point (all, not only those kept)
  bool seen_point = false, seen_significant = false;
  int64_t point = 0;
  for (int32_t k = digits_begin; k < digits_end; ++k) {
    const char c = byte(k);
    if (c == '.') {
      seen_point = true;
      point = significant;
      continue;
    }
    const uint8_t d = static_cast<uint8_t>(c - '0');
    if (!seen_significant && d == 0) {
      if (seen_point) --point;  // a leading zero after the point
      continue;
    }
    seen_significant = true;
    ++significant;
    if (decimal.nd < CsvDecimal::kDigits) decimal.d[decimal.nd++] = d;
    else if (d != 0) decimal.trunc = true;
  }
  if (!seen_point) point = significant;
  // lead is within [-325, 309) here, so the point is too, give or take the digits' count.
  decimal.dp = static_cast<int32_t>(point + exponent);
  csv_decimal_trim(decimal);
  bits = csv_decimal_to_double_bits(decimal, overflow);
  underflow = bits == 0;
  out = csv_double_of_bits(sign | bits);
  return kCsvFieldOk;
}

/// FLT_MAX as a double: a Float32 field's value is malformed beyond it.
constexpr double kCsvFloatMax = 340282346638528859811704183484516925440.0;

/// A float field's text as the CPU parser reads it (see the float conversion at the top):
/// @p out is the double nearest to the text; a finite value beyond DBL_MAX, or beyond FLT_MAX
/// for a Float32 field (@p is32), is malformed.
__host__ __device__ inline int32_t csv_parse_float(const char* s, int32_t n, bool is32, double& out) {
  bool overflow = false, underflow = false;
  const int32_t outcome = csv_parse_double_bytes(CsvBufferBytes{s}, n, out, overflow, underflow);
  if (outcome != kCsvFieldOk) return outcome;
  if (overflow) return kCsvFieldMalformed;
  if (is32 && (out > kCsvFloatMax || out < -kCsvFloatMax) && out - out == 0) return kCsvFieldMalformed;  // finite, beyond FLT_MAX
  return kCsvFieldOk;
}

// ---------------------------------------------------------------- records

/// One field as the device sees it: its declaration, where pass 1 leaves its values, validity
/// and string lengths (one per input line), and where pass 2 writes its strings' bytes.
struct CsvFieldSlot {
  int32_t type = kString;
  int32_t nullable = 0;
  int32_t* lengths = nullptr;      ///< strings: one per input line (pass 1), then their inclusive scan
  uint8_t* values = nullptr;       ///< fixed width: lines x width (pass 1), then rows x width
  uint8_t* valid_bytes = nullptr;  ///< nullable: one byte per line (pass 1), then per row (1 = valid)
  int32_t* offsets = nullptr;      ///< strings: rows + 1
  char* chars = nullptr;
};

__host__ __device__ inline int32_t csv_type_width(int32_t type) {
  switch (type) {
    case kBool: return 1;
    case kInt32:
    case kFloat32: return 4;
    case kInt64:
    case kFloat64: return 8;
    default: return 0;
  }
}

/// Where line @p line's text lies, without a trailing '\r'.
__host__ __device__ inline void csv_line_span(const char* chars, const int32_t* line_offsets, int64_t line, const char*& text,
                                              int32_t& size) {
  const int32_t begin = line_offsets[line];
  int32_t end = line_offsets[line + 1];
  if (end > begin && chars[end - 1] == '\r') --end;
  text = chars + begin;
  size = end - begin;
}

/// Stores a fixed-width field's value at row @p at of @p values: @p integer for bool, int32
/// and int64, @p real for float32 and float64.
__host__ __device__ inline void csv_store_value(int32_t type, uint8_t* values, int64_t at, int64_t integer, double real) {
  uint8_t* to = values + at * csv_type_width(type);
  switch (type) {
    case kBool: *to = static_cast<uint8_t>(integer); break;
    case kInt32: {
      const int32_t v = static_cast<int32_t>(integer);
      memcpy(to, &v, 4);
      break;
    }
    case kInt64: memcpy(to, &integer, 8); break;
    case kFloat32: {
      float v = static_cast<float>(real);
      if (real != real) {  // NaN: the quiet NaN of its sign, as a host cast gives (a device cast may not)
        uint64_t bits;
        memcpy(&bits, &real, 8);
        const uint32_t nan = (bits >> 63) ? 0xFFC00000u : 0x7FC00000u;
        memcpy(&v, &nan, 4);
      }
      memcpy(to, &v, 4);
      break;
    }
    default: memcpy(to, &real, 8); break;
  }
}

/// Parses one field's text (@p raw, @p raw_size bytes, as it stands in the line: @p doubled
/// doubled quotes are still in it) as @p field. Pass 1 (@p out_row < 0) stores, at index
/// @p line, the field's validity byte and its value (fixed width) or length (strings), so
/// that each number is converted once; pass 2 writes a string field's bytes into row
/// @p out_row and leaves the other fields alone.
__host__ __device__ inline int32_t csv_field(const CsvFieldSlot& field, const char* raw, int32_t raw_size, bool quoted,
                                             int32_t doubled, char quote, int64_t line, int64_t out_row) {
  if (out_row >= 0 && field.type != kString) return kCsvFieldOk;
  const int32_t size = raw_size - doubled;  // after undoing doubled quotes
  bool is_null = false;
  int64_t integer = 0;
  double real = 0;
  if (size == 0 && !(quoted && field.type == kString)) {
    if (field.nullable) is_null = true;
    else if (field.type != kString) return kCsvFieldMalformed;
  } else if (field.type != kString) {
    if (doubled > 0) return kCsvFieldNeedsHost;  // a quote in a number or a bool: rare, left to the CPU
    int32_t outcome = kCsvFieldMalformed;
    switch (field.type) {
      case kBool: outcome = csv_parse_bool(raw, size, integer); break;
      case kInt32:
      case kInt64: outcome = csv_parse_integer(raw, size, field.type == kInt32, integer); break;
      case kFloat32:
      case kFloat64: outcome = csv_parse_float(raw, size, field.type == kFloat32, real); break;
      default: break;
    }
    if (outcome != kCsvFieldOk) return outcome;
  }
  const int32_t length = is_null ? 0 : size;
  if (out_row < 0) {
    if (field.nullable) field.valid_bytes[line] = is_null ? 0 : 1;
    if (field.type == kString) field.lengths[line] = length;
    else csv_store_value(field.type, field.values, line, integer, real);
    return kCsvFieldOk;
  }

  const int32_t end = field.lengths[line];  // inclusive scan: where this row's bytes end
  const int32_t begin = end - length;
  field.offsets[out_row + 1] = end;
  char* to = field.chars + begin;
  if (doubled == 0) {
    for (int32_t k = 0; k < length; ++k) to[k] = raw[k];
  } else {
    for (int32_t k = 0; k < raw_size; ++k) {
      *to++ = raw[k];
      if (raw[k] == quote) ++k;  // the second of a doubled quote
    }
  }
  return kCsvFieldOk;
}

/// Splits line @p line as parse_csv's split_csv_line does and parses each field; returns its
/// CsvRecordStatus. Pass 1 (@p out_row < 0) stores the fields at the line's index; pass 2
/// writes row @p out_row's strings.
__host__ __device__ inline uint8_t csv_record(const char* chars, const int32_t* line_offsets, int64_t line, const CsvFieldSlot* fields,
                                              int32_t field_count, char delimiter, char quote, int64_t out_row) {
  const char* text;
  int32_t size;
  csv_line_span(chars, line_offsets, line, text, size);
  if (size == 0) return kCsvBlank;
  bool needs_host = false;
  int32_t count = 0;
  int32_t pos = 0;
  while (true) {
    int32_t begin, end, doubled = 0;
    bool quoted, last = false;
    if (pos < size && text[pos] == quote) {
      begin = pos + 1;
      end = -1;
      for (int32_t k = begin; k < size; ++k) {
        if (text[k] != quote) continue;
        if (k + 1 < size && text[k + 1] == quote) {
          ++doubled;
          ++k;
          continue;
        }
        end = k;
        break;
      }
      if (end < 0) return kCsvMalformed;  // the quoted field is not closed
      quoted = true;
      pos = end + 1;
      if (pos == size) last = true;
      else if (text[pos] != delimiter) return kCsvMalformed;  // something after the closing quote
      else ++pos;
    } else {
      begin = pos;
      end = pos;
      while (end < size && text[end] != delimiter) ++end;
      quoted = false;
      if (end == size) last = true;
      else pos = end + 1;
    }
    if (count == field_count) return kCsvMalformed;  // too many fields
    const int32_t outcome = csv_field(fields[count], text + begin, end - begin, quoted, doubled, quote, line, out_row);
    if (outcome == kCsvFieldMalformed) return kCsvMalformed;
    needs_host |= outcome == kCsvFieldNeedsHost;
    ++count;
    if (last) break;
  }
  if (count != field_count) return kCsvMalformed;  // too few fields
  return needs_host ? kCsvNeedsHost : kCsvGood;
}

/// Pass 1: the status of every line, and its fields at its index; string lengths stay only
/// for good records (0 otherwise), so that their scan gives the compacted offsets.
struct ClassifyCsvRecord {
  const char* chars;
  const int32_t* line_offsets;
  const uint8_t* line_validity;
  const CsvFieldSlot* fields;
  int32_t field_count;
  char delimiter;
  char quote;
  uint8_t* status;
  __host__ __device__ void operator()(int64_t line) const {
    uint8_t s = kCsvMalformed;  // a null line
    if (line_validity == nullptr || ((line_validity[line >> 3] >> (line & 7)) & 1) != 0)
      s = csv_record(chars, line_offsets, line, fields, field_count, delimiter, quote, -1);
    status[line] = s;
    if (s != kCsvGood)
      for (int32_t f = 0; f < field_count; ++f)
        if (fields[f].type == kString) fields[f].lengths[line] = 0;
  }
};

/// Pass 2: the strings of row @p row (the good record of line row_index[row]) into the columns.
struct WriteCsvRow {
  const char* chars;
  const int32_t* line_offsets;
  const int64_t* row_index;
  const CsvFieldSlot* fields;
  int32_t field_count;
  char delimiter;
  char quote;
  __host__ __device__ void operator()(int64_t row) const {
    csv_record(chars, line_offsets, row_index[row], fields, field_count, delimiter, quote, row);
  }
};

struct CsvStatusIs {
  const uint8_t* status;
  uint8_t wanted;
  __host__ __device__ bool operator()(int64_t line) const { return status[line] == wanted; }
};

struct CsvStatusEquals {
  uint8_t wanted;
  __host__ __device__ bool operator()(uint8_t s) const { return s == wanted; }
};

/// One byte of an Arrow bitmap from eight validity bytes.
struct PackCsvValidity {
  const uint8_t* valid_bytes;
  uint8_t* bitmap;
  int64_t rows;
  __host__ __device__ void operator()(int64_t byte) const {
    uint8_t b = 0;
    for (int64_t k = 0; k < 8 && byte * 8 + k < rows; ++k)
      if (valid_bytes[byte * 8 + k]) b = static_cast<uint8_t>(b | (1u << k));
    bitmap[byte] = b;
  }
};

/// The lines whose status is @p wanted, ascending, into @p dst (allocated to fit); their count.
template <class Exec>
size_t csv_lines_with_status(Exec& exec, const uint8_t* status, int64_t lines, uint8_t wanted,
                             typename Exec::template Array<int64_t>& dst) {
  auto policy = exec.policy();
  const size_t count = lines > 0 ? static_cast<size_t>(thrust::count_if(policy, status, status + lines, CsvStatusEquals{wanted})) : 0;
  dst = exec.template alloc<int64_t>(count);
  if (count > 0)
    thrust::copy_if(policy, thrust::counting_iterator<int64_t>(0), thrust::counting_iterator<int64_t>(lines), dst.data(),
                    CsvStatusIs{status, wanted});
  return count;
}

/// Pass 1's values of every line, at the line's index: each fixed-width field's values and
/// each nullable field's validity bytes.
template <class Exec> struct CsvLineValues {
  std::vector<typename Exec::template Array<uint8_t>> values;  ///< per field: lines x width (none for strings)
  typename Exec::template Array<uint8_t> valid;                ///< lines bytes per nullable field
  size_t nullable_fields = 0;
};

/// Allocates pass 1's line arrays of @p slots for @p lines lines and points the slots at them.
template <class Exec, class Slot> CsvLineValues<Exec> csv_line_values(Exec& exec, std::vector<Slot>& slots, size_t lines) {
  CsvLineValues<Exec> out;
  for (const Slot& slot : slots) out.nullable_fields += slot.nullable ? 1 : 0;
  out.valid = exec.template alloc<uint8_t>(out.nullable_fields * lines);
  out.values.resize(slots.size());
  for (size_t f = 0, v = 0; f < slots.size(); ++f) {
    if (slots[f].type != kString) {
      out.values[f] = exec.template alloc<uint8_t>(lines * static_cast<size_t>(csv_type_width(slots[f].type)));
      slots[f].values = out.values[f].data();
    }
    if (slots[f].nullable) slots[f].valid_bytes = out.valid.data() + (v++) * lines;
  }
  return out;
}

/// @p to[r] = @p from[@p at[r]] for @p rows elements of @p width bytes (1, 4 or 8).
template <class Exec> void csv_gather_fixed(Exec& exec, int32_t width, const int64_t* at, size_t rows, const uint8_t* from, uint8_t* to) {
  if (rows == 0) return;
  auto policy = exec.policy();
  switch (width) {
    case 1: thrust::gather(policy, at, at + rows, from, to); break;
    case 4:
      thrust::gather(policy, at, at + rows, reinterpret_cast<const uint32_t*>(from), reinterpret_cast<uint32_t*>(to));
      break;
    default:
      thrust::gather(policy, at, at + rows, reinterpret_cast<const uint64_t*>(from), reinterpret_cast<uint64_t*>(to));
      break;
  }
}

/// Makes the output columns of the @p rows good records (lines @p row_index) and points each
/// field's slot at them: fixed-width values and validity bytes come from pass 1's line arrays
/// @p line, taken whole when every line is a good record and gathered otherwise; a string
/// field's per-line lengths become end offsets (lines of other records add 0) for pass 2 to
/// write its bytes. Returns the byte-per-row validity, for csv_pack_validity.
template <class Exec, class Slot>
typename Exec::template Array<uint8_t> csv_allocate_columns(Exec& exec, std::vector<Slot>& slots, int64_t lines, size_t rows,
                                                            const int64_t* row_index, CsvLineValues<Exec>& line,
                                                            std::vector<CsvDeviceColumn<Exec>>& columns) {
  auto policy = exec.policy();
  const bool every_line = rows == static_cast<size_t>(lines);
  auto valid_bytes = every_line ? std::move(line.valid) : exec.template alloc<uint8_t>(line.nullable_fields * rows);
  columns.resize(slots.size());
  for (size_t f = 0, v = 0; f < slots.size(); ++f) {
    CsvDeviceColumn<Exec>& column = columns[f];
    Slot& slot = slots[f];
    column.type = slot.type;
    column.nullable = slot.nullable != 0;
    if (slot.type == kString) {
      column.offsets = exec.template alloc<int32_t>(rows + 1);
      thrust::fill_n(policy, column.offsets.data(), 1, int32_t{0});
      if (lines > 0) {
        thrust::inclusive_scan(policy, slot.lengths, slot.lengths + lines, slot.lengths);
        int32_t total = 0;
        exec.to_host(&total, slot.lengths + (lines - 1), sizeof total);
        column.char_count = static_cast<size_t>(total);
      }
      column.chars = exec.template alloc<char>(column.char_count);
      slot.offsets = column.offsets.data();
      slot.chars = column.chars.data();
    } else if (every_line) {
      column.values = std::move(line.values[f]);
    } else {
      const int32_t width = csv_type_width(slot.type);
      column.values = exec.template alloc<uint8_t>(rows * static_cast<size_t>(width));
      csv_gather_fixed(exec, width, row_index, rows, slot.values, column.values.data());
    }
    if (slot.type != kString) slot.values = column.values.data();
    if (column.nullable) {
      column.validity = exec.template alloc<uint8_t>((rows + 7) / 8);
      uint8_t* row_valid = valid_bytes.data() + (v++) * rows;
      if (!every_line) csv_gather_fixed(exec, 1, row_index, rows, slot.valid_bytes, row_valid);
      slot.valid_bytes = row_valid;
    }
  }
  return valid_bytes;
}

/// Packs each nullable field's validity bytes (one per row) into its bitmap and counts its
/// nulls.
template <class Exec, class Slot>
void csv_pack_validity(Exec& exec, const std::vector<Slot>& slots, size_t rows, std::vector<CsvDeviceColumn<Exec>>& columns) {
  auto policy = exec.policy();
  for (size_t f = 0; f < slots.size(); ++f) {
    if (!columns[f].nullable) continue;
    const uint8_t* bytes = slots[f].valid_bytes;
    thrust::for_each_n(policy, thrust::counting_iterator<int64_t>(0), static_cast<int64_t>((rows + 7) / 8),
                       PackCsvValidity{bytes, columns[f].validity.data(), static_cast<int64_t>(rows)});
    columns[f].null_count = static_cast<size_t>(thrust::count(policy, bytes, bytes + rows, uint8_t{0}));
  }
}

/// Parses @p lines CSV records (@p line_offsets: lines + 1 Arrow offsets into @p chars, both in
/// @p exec's memory; @p line_validity: the lines' Arrow bitmap in @p exec's memory, or null
/// when none is null) as the fields @p fields (a host array of @p field_count; every type a
/// scalar ColumnType). @p delimiter and @p quote must differ. A header line is the caller's to
/// skip. The columns and indexes stay in @p exec's memory.
template <class Exec>
CsvParseResult<Exec> parse_csv_on_device(Exec& exec, const char* chars, const int32_t* line_offsets, size_t lines,
                                         const CsvFieldSpec* fields, size_t field_count, char delimiter, char quote = '"',
                                         const uint8_t* line_validity = nullptr) {
  CsvParseResult<Exec> out;
  auto policy = exec.policy();
  const int64_t n = static_cast<int64_t>(lines);
  const int32_t nfields = static_cast<int32_t>(field_count);

  // Pass 1: classify, store every field at its line, and size the string fields of the good
  // records.
  std::vector<CsvFieldSlot> slots(field_count);
  size_t string_fields = 0;
  for (size_t f = 0; f < field_count; ++f) {
    slots[f].type = fields[f].type;
    slots[f].nullable = fields[f].nullable ? 1 : 0;
    string_fields += fields[f].type == kString;
  }
  auto lengths = exec.template alloc<int32_t>(string_fields * lines);
  for (size_t f = 0, s = 0; f < field_count; ++f)
    if (slots[f].type == kString) slots[f].lengths = lengths.data() + (s++) * lines;
  CsvLineValues<Exec> line_values = csv_line_values(exec, slots, lines);
  auto pass1_fields = exec.template alloc<CsvFieldSlot>(field_count);
  exec.to_device(pass1_fields.data(), slots.data(), field_count * sizeof(CsvFieldSlot));
  auto status = exec.template alloc<uint8_t>(lines);
  if (n > 0)
    thrust::for_each_n(policy, thrust::counting_iterator<int64_t>(0), n,
                       ClassifyCsvRecord{chars, line_offsets, line_validity, pass1_fields.data(), nfields, delimiter, quote,
                                         status.data()});

  // The lines of each kind, in input order.
  out.rows = csv_lines_with_status(exec, status.data(), n, kCsvGood, out.row_index);
  out.malformed_count = csv_lines_with_status(exec, status.data(), n, kCsvMalformed, out.malformed);
  out.needs_host_count = csv_lines_with_status(exec, status.data(), n, kCsvNeedsHost, out.needs_host);
  out.blank_count = lines - out.rows - out.malformed_count - out.needs_host_count;

  const size_t rows = out.rows;
  const auto valid_bytes = csv_allocate_columns(exec, slots, n, rows, out.row_index.data(), line_values, out.columns);

  // Pass 2: the good records' strings into the columns.
  if (rows > 0 && string_fields > 0) {
    auto pass2_fields = exec.template alloc<CsvFieldSlot>(field_count);
    exec.to_device(pass2_fields.data(), slots.data(), field_count * sizeof(CsvFieldSlot));
    thrust::for_each_n(policy, thrust::counting_iterator<int64_t>(0), static_cast<int64_t>(rows),
                       WriteCsvRow{chars, line_offsets, out.row_index.data(), pass2_fields.data(), nfields, delimiter, quote});
  }
  if (rows > 0) csv_pack_validity(exec, slots, rows, out.columns);
  return out;
}

}  // namespace sluice::gpu
