#pragma once
// The text of a double inside kernels, byte for byte as the host writes it (append_float_text
// in src/pipeline/expression.cpp): std::to_chars(first, last, double), plus ".0" where a
// finite value's text has neither '.' nor 'e', and "nan" for every NaN.
//
// std::to_chars without a format writes the shortest decimal that reads back as the double
// (the nearest such one, ties to an even last digit), in fixed or scientific notation,
// whichever is shorter, fixed on a tie; an exponent has at least two digits ("1e+05").
// Fixed notation of an integer prints its exact value ("123456789012345683968" for
// 1.2345678901234568e20, not the shortest digits padded with zeros).
//
// The shortest decimal comes from Schubfach (Giulietti, "The Schubfach way to render
// doubles", 2020; the algorithm of Java's Double.toString): three products of the value's
// bounds with a 126-bit power of ten (powers_of_ten.cuh), rounded to odd, decide it without
// loops or big numbers. Java's rendering asks for two digits where one would do (4.9E-324);
// C++ does not, so every subnormal takes the general path and the shorter candidate is tried
// at every length.
//
// The row program interpreter writes the text once per row into registers it sets aside for
// it (row_program.cuh), and its readers see a plain view of those bytes.
#include <cstdint>
#include <cstring>

#include "powers_of_ten.cuh"

namespace sluice::gpu {

/// value = digits * 10^exponent, with no trailing zeros in digits (0 < digits < 10^17).
struct FloatDecimal {
  uint64_t digits = 0;
  int32_t exponent = 0;
  int32_t length = 0;  ///< decimal digits of `digits`
};

__host__ __device__ inline uint64_t float_text_multiply_high(uint64_t a, uint64_t b) {
#ifdef __CUDA_ARCH__
  return __umul64hi(a, b);
#else
  return static_cast<uint64_t>((static_cast<unsigned __int128>(a) * b) >> 64);
#endif
}

/// floor(e * log10(2)) for |e| <= 5456721 (Schubfach's flog10pow2).
__host__ __device__ inline int32_t float_text_floor_log10_pow2(int32_t e) {
  return static_cast<int32_t>((static_cast<int64_t>(e) * 661971961083LL) >> 41);
}
/// floor(e * log10(2) + log10(3/4)) for |e| <= 2^20 (flog10threeQuartersPow2).
__host__ __device__ inline int32_t float_text_floor_log10_three_quarters_pow2(int32_t e) {
  return static_cast<int32_t>((static_cast<int64_t>(e) * 661971961083LL - 274743187321LL) >> 41);
}
/// floor(e * log2(10)) for |e| <= 1233 (flog2pow10; the table's script uses the same).
__host__ __device__ inline int32_t float_text_floor_log2_pow10(int32_t e) {
  return static_cast<int32_t>((static_cast<int64_t>(e) * 1741647) >> 19);
}

/// (g * cp) / 2^128 rounded to odd, g = g1 * 2^63 + g0 (Schubfach's rop): the last bit says
/// whether anything was dropped, which is all the comparisons below need of the rest.
__host__ __device__ inline uint64_t float_text_round_to_odd(uint64_t g1, uint64_t g0, uint64_t cp) {
  constexpr uint64_t kMask63 = (uint64_t{1} << 63) - 1;
  const uint64_t x1 = float_text_multiply_high(g0, cp);
  const uint64_t y0 = g1 * cp;
  const uint64_t y1 = float_text_multiply_high(g1, cp);
  const uint64_t z = (y0 >> 1) + x1;
  const uint64_t vbp = y1 + (z >> 63);
  return vbp | (((z & kMask63) + kMask63) >> 63);
}

__host__ __device__ inline FloatDecimal float_decimal(uint64_t digits, int32_t exponent) {
  FloatDecimal d;
  while (digits % 10 == 0) {
    digits /= 10;
    ++exponent;
  }
  d.digits = digits;
  d.exponent = exponent;
  d.length = 1;
  for (uint64_t rest = digits; rest >= 10; rest /= 10) ++d.length;
  return d;
}

/// The shortest decimal, nearest on a tie of lengths and even on a tie of distances, that
/// rounds to c * 2^q (c > 0; c = 2^52 at the binade's bottom unless q is the least exponent).
__host__ __device__ inline FloatDecimal float_schubfach(int32_t q, uint64_t c) {
  constexpr uint64_t kSmallestNormalSignificand = uint64_t{1} << 52;
  constexpr int32_t kLeastExponent = -1074;
  const uint64_t out = c & 1;  // an odd significand's bounds round away: they are outside
  const uint64_t cb = c << 2, cbr = cb + 2;
  uint64_t cbl = 0;
  int32_t k = 0;
  if (c != kSmallestNormalSignificand || q == kLeastExponent) {
    cbl = cb - 2;
    k = float_text_floor_log10_pow2(q);
  } else {  // the gap below a power of two is half the gap above it
    cbl = cb - 1;
    k = float_text_floor_log10_three_quarters_pow2(q);
  }
  const int32_t h = q + float_text_floor_log2_pow10(-k) + 2;
  const uint64_t* g = float_text_powers_of_ten() + 2 * (k - kFloatTextSmallestPowerOfTen);
  const uint64_t vb = float_text_round_to_odd(g[0], g[1], cb << h);
  const uint64_t vbl = float_text_round_to_odd(g[0], g[1], cbl << h);
  const uint64_t vbr = float_text_round_to_odd(g[0], g[1], cbr << h);
  const uint64_t s = vb >> 2;
  // The rounding interval is narrower than 10^(k+1), so it holds at most one multiple of
  // 10^(k+1): when it does, that one is the shortest.
  const uint64_t sp10 = s / 10 * 10, tp10 = sp10 + 10;
  const bool sp10_in = vbl + out <= sp10 << 2, tp10_in = (tp10 << 2) + out <= vbr;
  if (sp10_in != tp10_in) return float_decimal(sp10_in ? sp10 : tp10, k);
  const uint64_t t = s + 1;
  const bool s_in = vbl + out <= s << 2, t_in = (t << 2) + out <= vbr;
  if (s_in != t_in) return float_decimal(s_in ? s : t, k);
  const int64_t cmp = static_cast<int64_t>(vb - ((s + t) << 1));
  return float_decimal(cmp < 0 || (cmp == 0 && (s & 1) == 0) ? s : t, k);
}

/// How a double's text is laid out.
enum FloatTextForm : uint8_t {
  kFloatTextInfinity,
  kFloatTextNan,
  kFloatTextZero,        ///< "0.0"
  kFloatTextInteger,     ///< the exact integer, then ".0"
  kFloatTextFixed,       ///< digits with a point among or before them ("0.00012", "123.456")
  kFloatTextScientific,  ///< "d.ddde+XX"
};

struct FloatTextLayout {
  FloatTextForm form = kFloatTextZero;
  bool negative = false;
  FloatDecimal decimal;                 ///< finite nonzero values
  unsigned __int128 integer = 0;        ///< kFloatTextInteger: the exact value
  int32_t integer_digits = 0;           ///< kFloatTextInteger
  int32_t scientific_exponent = 0;      ///< the exponent of the leading digit
  int32_t length = 0;                   ///< bytes of the whole text
};

__host__ __device__ inline uint64_t float_text_bits(double x) {
  uint64_t bits = 0;
  memcpy(&bits, &x, sizeof bits);
  return bits;
}

/// The layout of @p x's text, and its length.
__host__ __device__ inline FloatTextLayout float_text_layout(double x) {
  const uint64_t bits = float_text_bits(x);
  const uint64_t fraction = bits & ((uint64_t{1} << 52) - 1);
  const int32_t biased = static_cast<int32_t>((bits >> 52) & 0x7ff);
  FloatTextLayout t;
  if (biased == 0x7ff) {
    t.form = fraction == 0 ? kFloatTextInfinity : kFloatTextNan;
    t.negative = fraction == 0 && (bits >> 63) != 0;  // no sign on a NaN: see the top
    t.length = 3 + (t.negative ? 1 : 0);
    return t;
  }
  t.negative = (bits >> 63) != 0;
  const int32_t sign = t.negative ? 1 : 0;
  if (biased == 0 && fraction == 0) {
    t.form = kFloatTextZero;
    t.length = sign + 3;
    return t;
  }
  // c * 2^q exactly.
  const uint64_t c = biased == 0 ? fraction : fraction | (uint64_t{1} << 52);
  const int32_t q = biased == 0 ? -1074 : biased - 1075;
  if (q < 0 && q > -53 && (c >> -q) << -q == c) {
    t.decimal = float_decimal(c >> -q, 0);  // an integer below 2^53 is its own shortest text
  } else {
    t.decimal = float_schubfach(q, c);
  }
  const FloatDecimal& d = t.decimal;
  const int32_t e = d.exponent + d.length - 1;
  t.scientific_exponent = e;
  const int32_t magnitude = e < 0 ? -e : e;
  const int32_t scientific = d.length + (d.length > 1 ? 1 : 0) + 2 + (magnitude >= 100 ? 3 : 2);
  const int32_t fixed = e < 0 ? d.length + 1 - e : d.exponent < 0 ? d.length + 1 : e + 1;
  if (fixed > scientific) {
    t.form = kFloatTextScientific;
    t.length = sign + scientific;
  } else if (d.exponent < 0) {
    t.form = kFloatTextFixed;
    t.length = sign + fixed;
  } else {
    // Fixed wins only below 10^22 (longer integers lose to the 22 bytes of scientific), so
    // the exact value, c * 2^q with q <= 21, fits 128 bits.
    t.form = kFloatTextInteger;
    t.integer = q >= 0 ? static_cast<unsigned __int128>(c) << q : static_cast<unsigned __int128>(c >> -q);
    t.integer_digits = 1;
    for (unsigned __int128 rest = t.integer; rest >= 10; rest /= 10) ++t.integer_digits;
    t.length = sign + t.integer_digits + 2;
  }
  return t;
}

/// Digit @p k (from the left, of @p length) of @p x.
template <class Unsigned> __host__ __device__ inline char float_text_digit(Unsigned x, int32_t length, int32_t k) {
  for (int32_t right = length - 1 - k; right > 0; --right) x /= 10;
  return static_cast<char>('0' + static_cast<int>(x % 10));
}

/// Byte @p k (below layout.length) of the text that @p layout lays out.
__host__ __device__ inline char float_text_byte(const FloatTextLayout& t, int32_t k) {
  if (t.negative) {
    if (k == 0) return '-';
    --k;
  }
  const FloatDecimal& d = t.decimal;
  switch (t.form) {
    case kFloatTextInfinity: return "inf"[k];
    case kFloatTextNan: return "nan"[k];
    case kFloatTextZero: return "0.0"[k];
    case kFloatTextInteger:
      if (k < t.integer_digits) return float_text_digit(t.integer, t.integer_digits, k);
      return k == t.integer_digits ? '.' : '0';
    case kFloatTextFixed: {
      const int32_t e = t.scientific_exponent;
      if (e < 0) {  // "0." then -e - 1 zeros, then the digits
        if (k == 1) return '.';
        if (k < 1 - e) return '0';
        return float_text_digit(d.digits, d.length, k - (1 - e));
      }
      if (k == e + 1) return '.';
      return float_text_digit(d.digits, d.length, k <= e ? k : k - 1);
    }
    default: {
      const int32_t mantissa = d.length + (d.length > 1 ? 1 : 0);
      if (k < mantissa) {
        if (k == 1) return '.';
        return float_text_digit(d.digits, d.length, k == 0 ? 0 : k - 1);
      }
      if (k == mantissa) return 'e';
      const int32_t e = t.scientific_exponent;
      if (k == mantissa + 1) return e < 0 ? '-' : '+';
      const uint32_t magnitude = static_cast<uint32_t>(e < 0 ? -e : e);
      const int32_t width = magnitude >= 100 ? 3 : 2;
      return float_text_digit(magnitude, width, k - mantissa - 2);
    }
  }
}

/// The longest text: "-1.7976931348623157e+308" (and "-2.2250738585072014e-308").
constexpr int32_t kFloatTextMaxLength = 24;

/// Writes @p x's text into @p out (room for kFloatTextMaxLength bytes); returns its length.
/// Out of line: inlined into the row program interpreter, its 128-bit arithmetic made every
/// program's kernel spill, filters too.
__host__ __device__ inline __noinline__ int32_t float_text_write(double x, char* out) {
  const FloatTextLayout layout = float_text_layout(x);
  for (int32_t k = 0; k < layout.length; ++k) out[k] = float_text_byte(layout, k);
  return layout.length;
}

}  // namespace sluice::gpu
