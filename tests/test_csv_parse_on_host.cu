// The device CSV parser (kernels/csv_parse.cuh) run on the CPU through HostExec: the same
// __host__ __device__ code the GPU runs. Checked by hand-written cases taken from the CPU
// parser's rules (src/pipeline/record_parsers.cpp), and on random records against the values
// they were generated from and against a transcription of the CPU parser (std::from_chars).
#include <gtest/gtest.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <system_error>
#include <vector>

#include "csv_parse.cuh"
#include "host_exec.cuh"
#include "parse_on_host_support.cuh"

namespace sluice::gpu {
namespace {

constexpr int32_t kNullable = 1;

CsvFieldSpec spec(int32_t type, int32_t nullable = 0) {
  CsvFieldSpec s;
  s.type = type;
  s.nullable = nullable;
  return s;
}

/// Parses @p lines (@p null_lines: the lines that are null) with the device parser on the host.
/// The lines' text starts @p base bytes into the buffer, so that offsets need not start at 0.
HostParse parse(const std::vector<std::string>& lines, const std::vector<CsvFieldSpec>& fields, char delimiter = ',',
                char quote = '"', const std::vector<size_t>& null_lines = {}, int32_t base = 0) {
  HostExec exec;
  const LinesInExecutor in(exec, lines, null_lines, base);
  const CsvParseResult<HostExec> r = parse_csv_on_device(exec, in.chars.data(), in.offsets.data(), lines.size(), fields.data(),
                                                         fields.size(), delimiter, quote, in.validity_or_null());
  for (const CsvDeviceColumn<HostExec>& c : r.columns) {
    const ColumnView v = c.view();
    EXPECT_EQ(v.offsets, c.type == kString ? c.offsets.data() : nullptr);
    EXPECT_EQ(v.chars, c.type == kString ? c.chars.data() : nullptr);
    EXPECT_EQ(v.values, c.type == kString ? nullptr : c.values.data());
    EXPECT_EQ(v.validity, c.nullable ? c.validity.data() : nullptr);
  }
  return copy_result(exec, r, fields, lines.size());
}

using Indexes = std::vector<int64_t>;

/// One field of type @p type, parsed from each of @p texts (one line each).
HostParse parse_one(int32_t type, const std::vector<std::string>& texts, int32_t nullable = 0) {
  return parse(texts, {spec(type, nullable)});
}

// ------------------------------------------------------------------ the CPU parser's rules

std::vector<CsvFieldSpec> every_scalar_type() {
  return {spec(kBool), spec(kInt32, kNullable), spec(kInt64), spec(kFloat32, kNullable), spec(kFloat64), spec(kString, kNullable)};
}

TEST(CsvParseOnHost, EveryScalarType) {
  const HostParse p = parse({"true,1,9000000000,1.5,2.25,hello", "FALSE,-2147483648,-1,-0.5,1e3,", "1,,0,,-0.0,\"\""},
                            every_scalar_type());
  EXPECT_EQ(p.malformed, Indexes{});
  EXPECT_EQ(p.needs_host, Indexes{});
  EXPECT_EQ(p.row_index, (Indexes{0, 1, 2}));
  EXPECT_EQ(p.all_rows(),
            "[true,1,9000000000,1.5,2.25,\"hello\"]\n"
            "[false,-2147483648,-1,-0.5,1000,null]\n"
            "[true,null,0,null,-0,\"\"]\n");
  EXPECT_EQ(p.columns[1].null_count, 1u);
  EXPECT_EQ(p.columns[3].null_count, 1u);
  EXPECT_EQ(p.columns[5].null_count, 1u);
  EXPECT_EQ(p.columns[5].validity, std::vector<uint8_t>{0x5});
  EXPECT_EQ(bits_of(p.columns[4].value<double>(2)), 0x8000000000000000ULL);  // -0.0 keeps its sign
}

TEST(CsvParseOnHost, QuotedFieldsFollowRfc4180) {
  const HostParse p = parse({"\"Smith, John\",42,\"He said \"\"hi\"\"\"", "plain,\"7\",\"\"", "5'10\",1,a\"b", "\"\",0,\",\"",
                             "\"\"\"\",-3,\"a,\"\"b\"\",c\""},
                            {spec(kString), spec(kInt64), spec(kString)});
  EXPECT_EQ(p.malformed, Indexes{});
  EXPECT_EQ(p.needs_host, Indexes{});
  EXPECT_EQ(p.all_rows(),
            "[\"Smith, John\",42,\"He said \"hi\"\"]\n"
            "[\"plain\",7,\"\"]\n"
            "[\"5'10\"\",1,\"a\"b\"]\n"
            "[\"\",0,\",\"]\n"
            "[\"\"\",-3,\"a,\"b\",c\"]\n");
}

TEST(CsvParseOnHost, MalformedRecordsAreFlaggedByInputIndex) {
  const HostParse p = parse({"alice,1.5,2", "bob,abc,1", "carol,1.0", "dave,1.0,2,extra", "erin,2.0,12x", "frank,2.0,",
                             "gina,2.0,3000000000", "\"hank,1.0,1", "\"ivy\"x,1.0,1", "judy,1e999,1", "kim,,4"},
                            {spec(kString), spec(kFloat64, kNullable), spec(kInt32)});
  EXPECT_EQ(p.row_index, (Indexes{0, 10}));
  EXPECT_EQ(p.malformed, (Indexes{1, 2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_EQ(p.needs_host, Indexes{});
  EXPECT_EQ(p.all_rows(), "[\"alice\",1.5,2]\n[\"kim\",null,4]\n");
}

TEST(CsvParseOnHost, NumbersAreStrict) {
  const HostParse p = parse({" 1,1.0,true", "+1,1.0,true", "1,1.0 ,true", "1,0x10,true", "1,1.0,yes", "1,inf,True", "-0,nan,0",
                             "1,1e-400,1", "1,-1e-400,1", "1,1e,1", "1,1e+,1", "1,.,1", "1,+1.5,1", "1,--1,1", "1,1.5x,1",
                             "1,infinit,1", "1,nan(,1"},
                            {spec(kInt64), spec(kFloat64), spec(kBool)});
  EXPECT_EQ(p.malformed, (Indexes{0, 1, 2, 3, 4, 9, 10, 11, 12, 13, 14, 15, 16}));  // "nan(": from_chars stops at the '('
  EXPECT_EQ(p.needs_host, Indexes{});
  EXPECT_EQ(p.row_index, (Indexes{5, 6, 7, 8}));
  EXPECT_EQ(bits_of(p.columns[1].value<double>(0)), 0x7FF0000000000000ULL);
  EXPECT_EQ(bits_of(p.columns[1].value<double>(1)), 0x7FF8000000000000ULL);
  EXPECT_EQ(bits_of(p.columns[1].value<double>(2)), 0u);                     // underflow: the nearest value
  EXPECT_EQ(bits_of(p.columns[1].value<double>(3)), 0x8000000000000000ULL);  // -0.0
  EXPECT_EQ(p.columns[0].value<int64_t>(1), 0);
}

TEST(CsvParseOnHost, EmptyFields) {
  const HostParse p = parse({",,", "\"\",\"\",\"\"", "a,b,1"}, {spec(kString), spec(kString, kNullable), spec(kInt64, kNullable)});
  EXPECT_EQ(p.malformed, Indexes{});
  EXPECT_EQ(p.all_rows(), "[\"\",null,null]\n[\"\",\"\",null]\n[\"a\",\"b\",1]\n");

  // An empty non-nullable field of any other type is malformed, quoted or not.
  for (int32_t type : {kBool, kInt32, kInt64, kFloat32, kFloat64}) {
    const HostParse strict = parse({"x,", "x,\"\"", "x,1"}, {spec(kString), spec(type)});
    EXPECT_EQ(strict.malformed, (Indexes{0, 1})) << "type " << type;
    EXPECT_EQ(strict.row_index, Indexes{2});
    const HostParse lenient = parse({"x,", "x,\"\"", "x,1"}, {spec(kString), spec(type, kNullable)});
    EXPECT_EQ(lenient.row_index, (Indexes{0, 1, 2})) << "type " << type;
    EXPECT_EQ(lenient.columns[1].null_count, 2u);
    EXPECT_EQ(lenient.columns[1].validity, std::vector<uint8_t>{0x4});
  }
}

TEST(CsvParseOnHost, DelimiterQuoteCrlfAndBlankLines) {
  const HostParse p = parse({"'a;b';1\r", "", "\r", "'it''s';2", "c,d;3", "e;4\r\r", "'f'\r;5", "g\r;6\r"},
                            {spec(kString), spec(kInt64)}, ';', '\'');
  EXPECT_EQ(p.row_index, (Indexes{0, 3, 4, 7}));
  EXPECT_EQ(p.malformed, (Indexes{5, 6}));  // one '\r' is dropped, not two; '\r' after a closing quote
  EXPECT_EQ(p.blank, 2u);
  EXPECT_EQ(p.all_rows(), "[\"a;b\",1]\n[\"it's\",2]\n[\"c,d\",3]\n[\"g\r\",6]\n");

  const HostParse s = parse({"x\r\r", "\"y\"\r", " \r"}, {spec(kString)});  // strings keep the rest
  EXPECT_EQ(s.all_rows(), "[\"x\r\"]\n[\"y\"]\n[\" \"]\n");

  const HostParse tabs = parse({"a\tb c\t1", "\"x\ty\"\t\t2"}, {spec(kString), spec(kString, kNullable), spec(kInt32)}, '\t');
  EXPECT_EQ(tabs.all_rows(), "[\"a\",\"b c\",1]\n[\"x\ty\",null,2]\n");
}

TEST(CsvParseOnHost, NullLinesAreMalformedAndOffsetsNeedNotStartAtZero) {
  const HostParse p = parse({"x", "", "y", "", "z"}, {spec(kString)}, ',', '"', {1, 2}, 13);
  EXPECT_EQ(p.row_index, (Indexes{0, 4}));
  EXPECT_EQ(p.malformed, (Indexes{1, 2}));  // null, even when empty
  EXPECT_EQ(p.blank, 1u);
  EXPECT_EQ(p.all_rows(), "[\"x\"]\n[\"z\"]\n");
}

TEST(CsvParseOnHost, WrongFieldCounts) {
  const HostParse p = parse({"1,2,3", "1,2", "1,2,3,4", "1", ",,", ",,,", "1,2,3,", "\"1\",\"2\",\"3\"", "\"1\",\"2\",\"3\","},
                            {spec(kInt32, kNullable), spec(kInt32, kNullable), spec(kInt32, kNullable)});
  EXPECT_EQ(p.row_index, (Indexes{0, 4, 7}));
  EXPECT_EQ(p.malformed, (Indexes{1, 2, 3, 5, 6, 8}));

  // No fields: every record is malformed, blank lines still are not records.
  const HostParse none = parse({"a", "", ","}, {});
  EXPECT_EQ(none.malformed, (Indexes{0, 2}));
  EXPECT_EQ(none.blank, 1u);
  EXPECT_EQ(none.rows, 0u);
}

TEST(CsvParseOnHost, IntegerBounds) {
  const HostParse i32 = parse_one(kInt32, {"2147483647", "-2147483648", "2147483648", "-2147483649", "-0", "007", "-",
                                           "99999999999999999999999", "1.0", "1e3", "٣", "0x1F", "12 "});
  EXPECT_EQ(i32.row_index, (Indexes{0, 1, 4, 5}));
  EXPECT_EQ(i32.malformed, (Indexes{2, 3, 6, 7, 8, 9, 10, 11, 12}));
  EXPECT_EQ(i32.all_rows(), "[2147483647]\n[-2147483648]\n[0]\n[7]\n");

  const HostParse i64 = parse_one(kInt64, {"9223372036854775807", "-9223372036854775808", "9223372036854775808",
                                           "-9223372036854775809", "18446744073709551616", "00000000000000000000000000042",
                                           "-00000000000000000000009223372036854775808", "2147483648"});
  EXPECT_EQ(i64.row_index, (Indexes{0, 1, 5, 6, 7}));
  EXPECT_EQ(i64.malformed, (Indexes{2, 3, 4}));
  EXPECT_EQ(i64.all_rows(), "[9223372036854775807]\n[-9223372036854775808]\n[42]\n[-9223372036854775808]\n[2147483648]\n");
}

TEST(CsvParseOnHost, Bools) {
  const HostParse p = parse_one(kBool, {"true", "TRUE", "tRuE", "1", "false", "False", "0", "yes", "t", "2", "true ", " 1", "01",
                                        "truee", "\"true\"", "\"0\""});
  EXPECT_EQ(p.row_index, (Indexes{0, 1, 2, 3, 4, 5, 6, 14, 15}));
  EXPECT_EQ(p.malformed, (Indexes{7, 8, 9, 10, 11, 12, 13}));
  EXPECT_EQ(p.all_rows(), "[true]\n[true]\n[true]\n[true]\n[false]\n[false]\n[false]\n[true]\n[false]\n");
}

/// The double std::from_chars gives (strtod when it reports a range error), as the CPU parser
/// reads it; @p ok is false when the CPU parser would call the text malformed.
double cpu_double(const std::string& text, bool is32, bool& ok) {
  double v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  ok = end == text.data() + text.size() && (ec == std::errc() || ec == std::errc::result_out_of_range);
  if (!ok) return 0;
  if (ec == std::errc::result_out_of_range) {
    v = std::strtod(text.c_str(), nullptr);
    if (std::isinf(v)) ok = false;
  }
  const double limit = is32 ? std::numeric_limits<float>::max() : std::numeric_limits<double>::max();
  if (std::isfinite(v) && std::abs(v) > limit) ok = false;
  return v;
}

TEST(CsvParseOnHost, FloatsAreExactlyThoseOfFromChars) {
  const std::vector<std::string> texts = {
      "0", "-0", "0.0", "1", "1.5", "-2.25", ".5", "5.", "-.5", "1.e3", "1E3", "1e+3", "1e-3", "0.1", "0.2", "0.3",
      "3.141592653589793", "2.718281828459045", "1e22", "1e-22", "9007199254740992", "9007199254740993", "123456789012345678",
      "1234567890123456789", "0.000001", "123.456e-7", "4.35", "1.7976931348623157", "1e30", "1.5e37", "5e-1", "100000000000000000000",
      "1.50000000000000000000000", "0e999", "-0e-999", "00000.0000012345", "8.5e36", "1e-400", "1e-330",
      "2.2250738585072014e-308",  // the least normal: not on the fast path
      "4.9e-324", "1.00000000000000000001", "3.4e38"};
  std::vector<std::string> lines = texts;
  for (int32_t type : {kFloat64, kFloat32}) {
    const bool is32 = type == kFloat32;
    const HostParse p = parse_one(type, lines);
    EXPECT_EQ(p.malformed, Indexes{});
    size_t row = 0;
    std::string on_host;
    for (size_t i = 0; i < texts.size(); ++i) {
      bool ok = false;
      const double expected = cpu_double(texts[i], is32, ok);
      ASSERT_TRUE(ok) << texts[i];
      if (row < p.rows && p.row_index[row] == static_cast<int64_t>(i)) {
        if (is32) EXPECT_EQ(bits_of(p.columns[0].value<float>(row)), bits_of(static_cast<float>(expected))) << texts[i];
        else EXPECT_EQ(bits_of(p.columns[0].value<double>(row)), bits_of(expected)) << texts[i];
        ++row;
      } else {
        on_host += texts[i] + " ";
      }
    }
    EXPECT_EQ(row, p.rows);
    // Mantissas beyond 2^53 with a scale, more than 19 significant digits, subnormals and
    // exponents beyond the fast path's range take the exact conversion: none goes to the host.
    EXPECT_EQ(on_host, "");
    EXPECT_TRUE(p.needs_host.empty());
  }
}

TEST(CsvParseOnHost, FloatRangeAndSpecialSpellings) {
  const HostParse f64 = parse_one(kFloat64, {"1e309", "-1e309", "1e999999999999999999999", "1e308", "inf", "-Infinity", "INF",
                                             "NaN", "-nan", "nan(abc)", "1e-999999999999999999999", "1e37", "-1e-325",
                                             "-NaN(x_9Z)", "nan()", "nan(a-b)", "nanx", "nan(x"});
  EXPECT_EQ(f64.malformed, (Indexes{0, 1, 2, 15, 16, 17}));
  EXPECT_EQ(f64.needs_host, Indexes{});
  EXPECT_EQ(f64.row_index, (Indexes{3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}));
  const std::vector<uint64_t> f64_bits = {bits_of(1e308),         0x7FF0000000000000ULL, 0xFFF0000000000000ULL,
                                          0x7FF0000000000000ULL, 0x7FF8000000000000ULL, 0xFFF8000000000000ULL,
                                          0x7FF8000000000000ULL, 0u,                    bits_of(1e37),
                                          0x8000000000000000ULL, 0xFFF8000000000000ULL, 0x7FF8000000000000ULL};
  for (size_t r = 0; r < f64_bits.size(); ++r) EXPECT_EQ(bits_of(f64.columns[0].value<double>(r)), f64_bits[r]) << "row " << r;

  // A Float32 field: the double nearest to the text, then rounded to float; beyond FLT_MAX
  // (as a double) is malformed.
  const HostParse f32 = parse_one(kFloat32, {"1e39", "-1e39", "3.4e38", "1e38", "-inf", "nan", "-NAN", "1e-50", "16777217",
                                             "0.1", "3.4028234663852886e38", "3.4028235677973366e38"});
  EXPECT_EQ(f32.malformed, (Indexes{0, 1, 11}));
  EXPECT_EQ(f32.needs_host, Indexes{});
  EXPECT_EQ(f32.row_index, (Indexes{2, 3, 4, 5, 6, 7, 8, 9, 10}));
  EXPECT_EQ(f32.columns[0].value<float>(0), static_cast<float>(3.4e38));
  EXPECT_EQ(f32.columns[0].value<float>(1), static_cast<float>(1e38));
  EXPECT_EQ(bits_of(f32.columns[0].value<float>(2)), 0xFF800000u);
  EXPECT_EQ(bits_of(f32.columns[0].value<float>(3)), 0x7FC00000u);
  EXPECT_EQ(bits_of(f32.columns[0].value<float>(4)), 0xFFC00000u);
  EXPECT_EQ(bits_of(f32.columns[0].value<float>(5)), 0u);            // 1e-50 as a double, then as a float
  EXPECT_EQ(f32.columns[0].value<float>(6), 16777216.0f);            // rounded once to double, once to float
  EXPECT_EQ(f32.columns[0].value<float>(7), static_cast<float>(0.1));
  EXPECT_EQ(f32.columns[0].value<float>(8), std::numeric_limits<float>::max());

  // Below 1e-46 a float is +-0 whatever the double was; 9e-46 rounds to the least float
  // subnormal, as 1.4e-45 does.
  const HostParse tiny = parse_one(kFloat32, {"9e-46", "9.9e-47", "-1e-47", "1.4e-45"});
  EXPECT_EQ(tiny.needs_host, Indexes{});
  EXPECT_EQ(tiny.row_index, (Indexes{0, 1, 2, 3}));
  EXPECT_EQ(bits_of(tiny.columns[0].value<float>(0)), 1u);
  EXPECT_EQ(bits_of(tiny.columns[0].value<float>(1)), 0u);
  EXPECT_EQ(bits_of(tiny.columns[0].value<float>(2)), 0x80000000u);
  EXPECT_EQ(bits_of(tiny.columns[0].value<float>(3)), 1u);
}

// ------------------------------------------------------------------ the exact conversion

/// What csv_parse_double_bytes must say of @p text, from std::from_chars (and strtod for the
/// sign of a range error), and whether it does; @p why names the difference.
bool converts_as_from_chars(const std::string& text, std::string& why) {
  double want = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), want);
  const bool whole = end == text.data() + text.size() && !text.empty();
  double got = 0;
  bool overflow = false, underflow = false;
  const int32_t outcome =
      csv_parse_double_bytes(CsvBufferBytes{text.data()}, static_cast<int32_t>(text.size()), got, overflow, underflow);
  if (!whole || (ec != std::errc() && ec != std::errc::result_out_of_range)) {
    why = "from_chars rejects it, the device says " + std::to_string(outcome);
    return outcome == kCsvFieldMalformed;
  }
  if (outcome != kCsvFieldOk) {
    why = "from_chars reads it, the device calls it malformed";
    return false;
  }
  if (ec == std::errc::result_out_of_range) {
    want = std::strtod(text.c_str(), nullptr);  // +-inf or +-0
    why = "out of range: the device says overflow " + std::to_string(overflow) + ", underflow " + std::to_string(underflow);
    return (std::isinf(want) ? overflow && !underflow : underflow && !overflow) && bits_of(got) == bits_of(want);
  }
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "want %.17g (%016llx), got %.17g (%016llx)", want,
                static_cast<unsigned long long>(bits_of(want)), got, static_cast<unsigned long long>(bits_of(got)));
  why = buffer;
  return !overflow && !underflow && bits_of(got) == bits_of(want);
}

/// The exact decimal of @p v (a long double holds a double's halfway points exactly), its
/// trailing zeros dropped: "d.ddd...e[+-]x".
std::string exact_decimal(long double v) {
  std::vector<char> buffer(1200);
  std::snprintf(buffer.data(), buffer.size(), "%.800Le", v);
  std::string text(buffer.data());
  const size_t e = text.find('e');
  size_t last = e;
  while (last > 0 && text[last - 1] == '0') --last;
  if (text[last - 1] == '.') --last;
  return text.substr(0, last) + text.substr(e);
}

// Every double's text at random precisions, the exact halfway points between neighbouring
// doubles (ties go to even) and their nearest neighbours above and below (digits added past
// the 800 kept, or cut short), subnormals, the overflow threshold, and very long digit
// strings: the device's conversion gives from_chars's double, bit for bit.
TEST(CsvParseOnHost, DoublesEqualFromCharsBitForBit) {
  std::mt19937_64 rng(20261129);
  std::vector<std::string> texts = {"1e-400", "2e-324", "3e-324", "2.4703282292062328e-324", "2.4703282292062327e-324",
                                    "1e309", "1.7976931348623157e308", "1.7976931348623158e308", "1.7976931348623159e308",
                                    "2.2250738585072011e-308", "2.2250738585072012e-308", "9007199254740993",
                                    "9007199254740992.5", "9007199254740993.0000000000000000000000001", "0.1", "1e23",
                                    "8.98846567431158e307", "4.9406564584124654e-324", "5e-324", "0." + std::string(400, '0') + "1",
                                    std::string(400, '9'), std::string(310, '1'), "1" + std::string(308, '0'),
                                    "." + std::string(900, '3'), std::string(1000, '7') + "e-1300"};
  for (int k = -400; k <= 400; k += 7) texts.push_back("1e" + std::to_string(k));
  size_t halfway = 0;
  for (int i = 0; i < 30000; ++i) {
    uint64_t bits = rng();
    if (i % 4 == 0) bits &= 0x000FFFFFFFFFFFFFULL;  // subnormals
    if (i % 4 == 1) bits = (bits & 0x800FFFFFFFFFFFFFULL) | (static_cast<uint64_t>(rng() % 60 + 990) << 52);  // near 1
    double d = 0;
    std::memcpy(&d, &bits, 8);
    if (!std::isfinite(d)) continue;
    char buffer[64];
    std::snprintf(buffer, sizeof buffer, rng() % 2 ? "%.*e" : "%.*g", static_cast<int>(rng() % 26), d);
    texts.push_back(buffer);
    // The halfway point above |d|, and just above and below it.
    const long double low = std::fabs(d);
    const long double high = std::nextafter(std::fabs(d), std::numeric_limits<double>::infinity());
    const long double mid = (low + high) / 2;
    const std::string exact = exact_decimal(mid);
    const size_t e = exact.find('e');
    texts.push_back(exact);
    texts.push_back(exact.substr(0, e) + std::string(rng() % 2 ? 3 : 900, '0') + "1" + exact.substr(e));  // above
    if (e > 4) texts.push_back(exact.substr(0, 2 + rng() % (e - 3)) + exact.substr(e));                  // below
    ++halfway;
  }
  // The overflow threshold: halfway between DBL_MAX and 2^1024 rounds to even, up to infinity.
  const long double max = std::numeric_limits<double>::max();
  texts.push_back(exact_decimal(max + (std::ldexp(1.0L, 1024) - max) / 2));
  texts.push_back(exact_decimal(max + (std::ldexp(1.0L, 1024) - max) / 2 - 1e280L));
  size_t checked = 0;
  for (const std::string& text : texts) {
    for (const std::string& t : {text, "-" + text}) {
      std::string why;
      ASSERT_TRUE(converts_as_from_chars(t, why)) << t << ": " << why;
      ++checked;
    }
  }
  std::printf("[ doubles  ] %zu texts, %zu halfway points and their neighbours\n", checked, halfway);
}

// The Eisel-Lemire step alone: a double's 17 significant digits always lead back to it, and
// the step decides nearly every such number itself (what it leaves, the exact path decides).
TEST(CsvParseOnHost, EiselLemireDecidesNearlyEveryNumberAndRightly) {
  std::mt19937_64 rng(17);
  size_t decided = 0, tried = 0;
  for (int i = 0; i < 200000; ++i) {
    uint64_t bits = rng() & 0x7FFFFFFFFFFFFFFFULL;
    if (i % 8 == 0) bits &= 0x000FFFFFFFFFFFFFULL;  // subnormals
    double d = 0;
    std::memcpy(&d, &bits, 8);
    if (!std::isfinite(d) || d == 0) continue;
    char text[64];
    std::snprintf(text, sizeof text, "%.16e", d);  // d.dddddddddddddddde[+-]x
    std::string digits = std::string(1, text[0]) + std::string(text + 2, 16);
    const uint64_t w = std::stoull(digits);
    const int32_t q = std::atoi(std::strchr(text, 'e') + 1) - 16;
    uint64_t got = 0;
    ++tried;
    if (!csv_eisel_lemire(w, q, got)) continue;
    ++decided;
    ASSERT_EQ(got, bits) << text;
  }
  std::printf("[ lemire   ] decided %zu of %zu\n", decided, tried);
  EXPECT_GT(decided, tried - tried / 1000);
}

TEST(CsvParseOnHost, DoubledQuotesInNumbersGoToTheHost) {
  const HostParse p = parse({"\"1\"\"2\",a", "\"12\",\"b\"\"\"", "\"1\"\"2\",\"x", "\"tr\"\"ue\",1,2"}, {spec(kInt64), spec(kString)});
  EXPECT_EQ(p.needs_host, Indexes{0});     // the CPU parser reads 1"2, and says it is malformed
  EXPECT_EQ(p.malformed, (Indexes{2, 3}));  // malformed anyway: unclosed quote; too many fields
  EXPECT_EQ(p.all_rows(), "[12,\"b\"\"]\n");
}

TEST(CsvParseOnHost, EmptyInput) {
  const HostParse p = parse({}, every_scalar_type());
  EXPECT_EQ(p.rows, 0u);
  EXPECT_EQ(p.blank, 0u);
  EXPECT_TRUE(p.malformed.empty());
  ASSERT_EQ(p.columns.size(), 6u);
  EXPECT_EQ(p.columns[5].offsets, std::vector<int32_t>{0});

  const HostParse blanks = parse({"", "\r", ""}, every_scalar_type());
  EXPECT_EQ(blanks.rows, 0u);
  EXPECT_EQ(blanks.blank, 3u);
}

TEST(CsvParseOnHost, ValidityBitmapsSpanManyBytes) {
  std::vector<std::string> lines;
  std::string expected;
  for (int i = 0; i < 70; ++i) {
    const bool null = i % 3 == 0 || i == 69;
    lines.push_back(null ? "," : std::to_string(i) + ",s" + std::to_string(i));
    if (i % 7 == 5) lines.push_back("bad,line,here");
    expected += null ? "[null,null]\n" : "[" + std::to_string(i) + ",\"s" + std::to_string(i) + "\"]\n";
  }
  const HostParse p = parse(lines, {spec(kInt32, kNullable), spec(kString, kNullable)});
  EXPECT_EQ(p.rows, 70u);
  EXPECT_EQ(p.malformed.size(), 10u);
  EXPECT_EQ(p.all_rows(), expected);
  EXPECT_EQ(p.columns[0].null_count, 24u);
}

// ------------------------------------------------------------------ random records

/// The CPU parser transcribed (split_csv_line, the field count, parse_scalar_text): the
/// status it gives a line, and for a good line its cells as text.
struct CpuCell {
  bool is_null = false;
  int64_t integer = 0;
  double real = 0;
  std::string text;
};

uint8_t cpu_parse_line(const std::string& raw, bool is_null_line, const std::vector<CsvFieldSpec>& fields, char delimiter, char quote,
                       std::vector<CpuCell>& cells) {
  if (is_null_line) return kCsvMalformed;
  std::string line = raw;
  if (!line.empty() && line.back() == '\r') line.pop_back();
  if (line.empty()) return kCsvBlank;
  struct Span {
    std::string text;
    bool quoted;
  };
  std::vector<Span> spans;
  size_t pos = 0;
  while (true) {
    if (pos < line.size() && line[pos] == quote) {
      const size_t begin = pos + 1;
      size_t cursor = begin, end = std::string::npos;
      while (true) {
        const size_t q = line.find(quote, cursor);
        if (q == std::string::npos) break;
        if (q + 1 < line.size() && line[q + 1] == quote) {
          cursor = q + 2;
          continue;
        }
        end = q;
        break;
      }
      if (end == std::string::npos) return kCsvMalformed;
      std::string text;
      for (size_t i = begin; i < end; ++i) {
        text += line[i];
        if (line[i] == quote) ++i;
      }
      spans.push_back({text, true});
      pos = end + 1;
      if (pos == line.size()) break;
      if (line[pos] != delimiter) return kCsvMalformed;
      ++pos;
    } else {
      const size_t next = line.find(delimiter, pos);
      if (next == std::string::npos) {
        spans.push_back({line.substr(pos), false});
        break;
      }
      spans.push_back({line.substr(pos, next - pos), false});
      pos = next + 1;
    }
  }
  if (spans.size() != fields.size()) return kCsvMalformed;
  cells.assign(fields.size(), CpuCell{});
  for (size_t i = 0; i < fields.size(); ++i) {
    const std::string& text = spans[i].text;
    CpuCell& cell = cells[i];
    const int32_t type = fields[i].type;
    if (text.empty() && !(spans[i].quoted && type == kString)) {
      if (fields[i].nullable) cell.is_null = true;
      else if (type != kString) return kCsvMalformed;
      continue;
    }
    const char* first = text.data();
    const char* last = first + text.size();
    switch (type) {
      case kBool: {
        std::string lower;
        for (char c : text) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (lower == "true" || text == "1") cell.integer = 1;
        else if (lower == "false" || text == "0") cell.integer = 0;
        else return kCsvMalformed;
        break;
      }
      case kInt32:
      case kInt64: {
        const auto [end, ec] = std::from_chars(first, last, cell.integer);
        if (end != last || ec != std::errc()) return kCsvMalformed;
        if (type == kInt32 && (cell.integer < INT32_MIN || cell.integer > INT32_MAX)) return kCsvMalformed;
        break;
      }
      case kFloat32:
      case kFloat64: {
        bool ok = false;
        cell.real = cpu_double(text, type == kFloat32, ok);
        if (!ok) return kCsvMalformed;
        break;
      }
      default: cell.text = text;
    }
  }
  return kCsvGood;
}

/// What a generated field should become.
enum FieldKind { kGoodField, kBadField, kHostField };

struct GeneratedField {
  std::string csv;  ///< as written in the line
  FieldKind kind = kGoodField;
  CpuCell cell;     ///< the expected value of a good field
};

class RecordGenerator : public RandomPicks {
 public:
  RecordGenerator(uint32_t seed, char delimiter, char quote) : RandomPicks(seed), delimiter_(delimiter), quote_(quote) {}

  std::string quoted(const std::string& text) {
    std::string out(1, quote_);
    for (char c : text) {
      out += c;
      if (c == quote_) out += quote_;
    }
    return out + quote_;
  }

  /// Quotes @p text when it must be quoted, and sometimes when it need not be.
  std::string maybe_quoted(const std::string& text) {
    const bool must = text.find(delimiter_) != std::string::npos || (!text.empty() && text[0] == quote_);
    return must || chance(15) ? quoted(text) : text;
  }

  std::string digits(int n, bool nonzero_first) {
    std::string s;
    for (int i = 0; i < n; ++i) s += static_cast<char>('0' + (i == 0 && nonzero_first ? 1 + pick(9) : pick(10)));
    return s;
  }

  GeneratedField field(const CsvFieldSpec& f) {
    GeneratedField g;
    const bool is32 = f.type == kInt32 || f.type == kFloat32;
    if (chance(6)) {  // empty
      g.csv = f.type == kString && !f.nullable && chance(50) ? quoted("") : chance(30) ? quoted("") : "";
      const bool quoted_empty = !g.csv.empty();
      if (f.type == kString && (quoted_empty || !f.nullable)) g.cell.text = "";
      else if (f.nullable) g.cell.is_null = true;
      else g.kind = kBadField;
      return g;
    }
    const bool bad = chance(4);
    switch (f.type) {
      case kBool: {
        static const char* good[] = {"true", "TRUE", "True", "false", "FALSE", "fAlSe", "1", "0"};
        static const char* wrong[] = {"yes", "t", "2", "true ", "tru", " 0", "-1"};
        if (bad) {
          g.kind = kBadField;
          g.csv = maybe_quoted(wrong[pick(7)]);
        } else {
          const int k = pick(8);
          g.csv = maybe_quoted(good[k]);
          g.cell.integer = k < 3 || k == 6 ? 1 : 0;
        }
        return g;
      }
      case kInt32:
      case kInt64: {
        if (bad) {
          g.kind = kBadField;
          static const char* wrong[] = {"12x", " 1", "+1", "1.0", "-", "99999999999999999999", "1e3", "--2"};
          const int k = pick(is32 ? 10 : 9);
          g.csv = maybe_quoted(k < 8 ? wrong[k] : k == 8 ? (is32 ? "2147483648" : "9223372036854775808") : "-2147483649");
          return g;
        }
        const int64_t v = integer(is32);
        std::string s = std::to_string(v);
        if (chance(5) && v >= 0) s = "00" + s;
        g.csv = maybe_quoted(s);
        g.cell.integer = v;
        return g;
      }
      case kFloat32:
      case kFloat64: {
        std::string s;
        if (bad) {
          g.kind = kBadField;
          static const char* wrong[] = {"abc", "1.0 ", "0x10", "1e", "1e+", ".", "e5", "+1.5", "inf ", "infinit", "1e999", "1.5.2"};
          const int k = pick(is32 ? 13 : 12);
          g.csv = maybe_quoted(k < 12 ? wrong[k] : "-1e39");
          return g;
        }
        const int form = pick(20);
        if (form == 0) {
          static const char* special[] = {"inf", "-inf", "Infinity", "NaN", "-nan", "INF", "0e999", "-0.0"};
          s = special[pick(8)];
        } else if (form == 4) {  // a doubled quote inside a quoted number: left to the CPU parser
          g.kind = kHostField;
          g.csv = std::string(1, quote_) + "1" + quote_ + quote_ + "5" + quote_;
          return g;
        } else if (form <= 3) {  // beyond the fast path: the exact conversion
          const int shape = pick(4);
          if (shape == 0) {  // more than 19 digits
            s = digits(1, true) + "." + digits(18 + pick(6), false) + std::to_string(1 + pick(9));
            s += "e" + std::to_string(pick(is32 ? 60 : 600) - (is32 ? 30 : 300));
          } else if (shape == 1) {  // a subnormal, or a Float32's tiny value
            s = digits(1, true) + "e-" + std::to_string(is32 ? 40 + pick(12) : 310 + pick(12));
          } else if (shape == 2) {  // a large exponent
            const int n = is32 ? 1 + pick(7) : 1 + pick(17);  // below 10^(n + exponent) <= 10^37 or 10^308
            s = digits(n, true) + "e" + std::to_string(23 + pick(is32 ? 8 : 286 - n));
          } else {
            s = pick(2) ? "nan(x1)" : "-NaN(_Z9)";
          }
        } else {  // on the fast path: up to 14 digits, a point, an exponent, |exp10| <= 22
          const int n = 1 + pick(14);
          s = digits(n, chance(70));
          const int frac = pick(n + 1);
          if (frac > 0 || chance(10)) s.insert(s.size() - static_cast<size_t>(frac), ".");
          if (s[0] == '.' && chance(50)) s = "0" + s;
          if (chance(30)) {
            const int e = pick(17) - 8;
            s += (chance(50) ? "e" : "E") + std::string(e >= 0 && chance(30) ? "+" : "") + std::to_string(e);
          }
          if (chance(40)) s = "-" + s;
        }
        g.csv = maybe_quoted(s);
        if (g.kind == kGoodField) {
          bool ok = false;
          g.cell.real = cpu_double(s, is32, ok);
          EXPECT_TRUE(ok) << s;
        }
        return g;
      }
      default: {
        static const char alphabet[] = "abcxyz019 ,;'\"\t-.ÄX";
        std::string s;
        const int n = pick(12);
        for (int i = 0; i < n; ++i) s += alphabet[pick(static_cast<int>(sizeof alphabet) - 1)];
        if (s.empty()) s = "e";
        g.csv = maybe_quoted(s);
        g.cell.text = s;
        return g;
      }
    }
  }

  char delimiter_, quote_;
};

/// Random records of @p fields, each with the status the device must give it (and the cells
/// of the good ones); checks the device against them and against the transcribed CPU parser.
void check_random_records(const std::vector<CsvFieldSpec>& fields, char delimiter, char quote, uint32_t seed, int records) {
  RecordGenerator gen(seed, delimiter, quote);
  std::vector<std::string> lines;
  std::vector<size_t> null_lines;
  std::vector<uint8_t> expected_status;
  std::vector<std::vector<CpuCell>> expected_cells;
  for (int i = 0; i < records; ++i) {
    std::vector<GeneratedField> g;
    for (const CsvFieldSpec& f : fields) g.push_back(gen.field(f));
    bool malformed = false, host = false;
    for (const GeneratedField& x : g) {
      malformed |= x.kind == kBadField;
      host |= x.kind == kHostField;
    }
    std::string line;
    for (size_t k = 0; k < g.size(); ++k) line += (k ? std::string(1, delimiter) : "") + g[k].csv;
    const int shape = gen.pick(100);
    uint8_t status = malformed ? kCsvMalformed : host ? kCsvNeedsHost : kCsvGood;
    if (shape < 2) {  // blank
      line = gen.chance(50) ? "" : "\r";
      status = kCsvBlank;
    } else if (shape < 3) {  // null
      null_lines.push_back(lines.size());
      status = kCsvMalformed;
    } else if (shape < 5) {  // a field too many
      line += delimiter + std::string("x");
      status = kCsvMalformed;
    } else if (shape < 7 && g.size() > 1) {  // a field too few
      line = line.substr(0, line.size() - g.back().csv.size() - 1);
      status = kCsvMalformed;
    } else if (shape < 8) {  // an unclosed quote as the last field
      line = line.substr(0, line.size() - g.back().csv.size()) + quote + "ab" + delimiter + "c";
      status = kCsvMalformed;
    } else if (shape < 9) {  // something after a closing quote
      line = quote + std::string("q") + quote + "z" + line.substr(g[0].csv.size());
      status = kCsvMalformed;
    } else if (shape < 20) {
      line += "\r";
    }
    const bool null_line = !null_lines.empty() && null_lines.back() == lines.size();
    if (!null_line && (line.empty() || line == "\r")) status = kCsvBlank;  // e.g. one empty field
    lines.push_back(line);
    expected_status.push_back(status);
    std::vector<CpuCell> cells;
    for (const GeneratedField& x : g) cells.push_back(x.cell);
    expected_cells.push_back(cells);
  }

  const HostParse p = parse(lines, fields, delimiter, quote, null_lines);
  std::vector<uint8_t> status(lines.size(), kCsvBlank);
  for (int64_t r : p.row_index) status[static_cast<size_t>(r)] = kCsvGood;
  for (int64_t r : p.malformed) status[static_cast<size_t>(r)] = kCsvMalformed;
  for (int64_t r : p.needs_host) status[static_cast<size_t>(r)] = kCsvNeedsHost;
  size_t counts[4] = {0, 0, 0, 0};
  size_t compared = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    ++counts[status[i]];
    ASSERT_EQ(static_cast<int>(status[i]), static_cast<int>(expected_status[i])) << "line " << i << ": " << lines[i];
    std::vector<CpuCell> cpu_cells;
    const bool is_null_line = std::find(null_lines.begin(), null_lines.end(), i) != null_lines.end();
    const uint8_t cpu = cpu_parse_line(lines[i], is_null_line, fields, delimiter, quote, cpu_cells);
    if (status[i] != kCsvNeedsHost)
      ASSERT_EQ(static_cast<int>(cpu), static_cast<int>(status[i])) << "the CPU parser disagrees on line " << i << ": " << lines[i];
    if (status[i] != kCsvGood) continue;
    const size_t row = compared++;
    ASSERT_EQ(p.row_index[row], static_cast<int64_t>(i));
    for (size_t f = 0; f < fields.size(); ++f) {
      const HostColumn& c = p.columns[f];
      const CpuCell& want = expected_cells[i][f];
      const CpuCell& cpu_cell = cpu_cells[f];
      const std::string where = "line " + std::to_string(i) + " field " + std::to_string(f) + ": " + lines[i];
      ASSERT_EQ(!c.valid(row), want.is_null) << where;
      ASSERT_EQ(cpu_cell.is_null, want.is_null) << where;
      if (want.is_null) continue;
      switch (c.type) {
        case kBool: ASSERT_EQ(c.value<uint8_t>(row), want.integer) << where; break;
        case kInt32: ASSERT_EQ(c.value<int32_t>(row), want.integer) << where; break;
        case kInt64: ASSERT_EQ(c.value<int64_t>(row), want.integer) << where; break;
        case kFloat32: {
          const double d = want.real;  // the host's cast, with the quiet NaN of the value's sign
          const uint32_t expected = std::isnan(d) ? (std::signbit(d) ? 0xFFC00000u : 0x7FC00000u) : bits_of(static_cast<float>(d));
          ASSERT_EQ(bits_of(c.value<float>(row)), expected) << where;
          break;
        }
        case kFloat64: ASSERT_EQ(bits_of(c.value<double>(row)), bits_of(want.real)) << where; break;
        default: ASSERT_EQ(c.str(row), want.text) << where; ASSERT_EQ(cpu_cell.text, want.text) << where;
      }
      if (c.type != kString && c.type != kFloat32 && c.type != kFloat64) ASSERT_EQ(cpu_cell.integer, want.integer) << where;
      if (c.type == kFloat64) ASSERT_EQ(bits_of(cpu_cell.real), bits_of(want.real)) << where;
    }
  }
  EXPECT_EQ(compared, p.rows);
  // Every kind of line occurs, and most records are good.
  EXPECT_GT(counts[kCsvGood], static_cast<size_t>(records) / 4);
  EXPECT_GT(counts[kCsvMalformed], 0u);
  EXPECT_GT(counts[kCsvBlank], 0u);
  bool has_float = false;
  for (const CsvFieldSpec& f : fields) has_float |= f.type == kFloat32 || f.type == kFloat64;
  if (has_float) EXPECT_GT(counts[kCsvNeedsHost], 0u);  // a doubled quote in a quoted float
}

std::vector<CsvFieldSpec> every_type_both_ways() {
  std::vector<CsvFieldSpec> fields;
  for (int32_t type : {kBool, kInt32, kInt64, kFloat32, kFloat64, kString}) {
    fields.push_back(spec(type));
    fields.push_back(spec(type, kNullable));
  }
  return fields;
}

TEST(CsvParseOnHost, RandomRecordsOfEveryType) { check_random_records(every_type_both_ways(), ',', '"', 1, 4000); }

TEST(CsvParseOnHost, RandomRecordsWithOtherDelimiterAndQuote) {
  check_random_records(every_type_both_ways(), ';', '\'', 2, 3000);
  check_random_records(every_type_both_ways(), '\t', '"', 3, 2000);
}

TEST(CsvParseOnHost, RandomRecordsOfSmallSchemas) {
  check_random_records({spec(kString, kNullable)}, ',', '"', 4, 2000);
  check_random_records({spec(kFloat64), spec(kInt64, kNullable)}, ',', '"', 5, 3000);
  check_random_records({spec(kFloat32, kNullable), spec(kBool), spec(kString)}, '|', '"', 6, 3000);
}

/// Random fast-path floats, one per line, against std::from_chars bit for bit.
TEST(CsvParseOnHost, RandomFastPathFloatsMatchFromCharsBitForBit) {
  std::mt19937 rng(7);
  std::vector<std::string> texts;
  for (int i = 0; i < 20000; ++i) {
    const uint64_t m = ((static_cast<uint64_t>(rng()) << 32) | rng()) % (uint64_t{1} << (1 + rng() % 53));
    const int e = static_cast<int>(rng() % 45) - 22;
    std::string s = std::to_string(m);
    if (rng() % 2) s += "e" + std::to_string(e);
    else if (e < 0 && static_cast<size_t>(-e) < s.size()) s.insert(s.size() - static_cast<size_t>(-e), ".");
    if (rng() % 2) s = "-" + s;
    texts.push_back(s);
  }
  for (int32_t type : {kFloat64, kFloat32}) {
    const bool is32 = type == kFloat32;
    const HostParse p = parse_one(type, texts);
    EXPECT_TRUE(p.needs_host.empty());
    EXPECT_TRUE(p.malformed.empty());
    ASSERT_EQ(p.rows, texts.size());
    for (size_t i = 0; i < texts.size(); ++i) {
      bool ok = false;
      const double expected = cpu_double(texts[i], is32, ok);
      ASSERT_TRUE(ok) << texts[i];
      if (is32) ASSERT_EQ(bits_of(p.columns[0].value<float>(i)), bits_of(static_cast<float>(expected))) << texts[i];
      else ASSERT_EQ(bits_of(p.columns[0].value<double>(i)), bits_of(expected)) << texts[i];
    }
  }
}

}  // namespace
}  // namespace sluice::gpu
