// The device JSON-lines parser (kernels/json_parse.cuh) run on the CPU through HostExec: the
// same __host__ __device__ code the GPU runs. Checked by hand-written cases taken from the
// CPU parser's rules (parse_json in src/pipeline/record_parsers.cpp, over nlohmann::json), and
// on random records against the values they were generated from and, where nlohmann::json is
// installed, against a transcription of the CPU parser.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "host_exec.cuh"
#include "json_parse.cuh"
#include "parse_on_host_support.cuh"

#if __has_include(<nlohmann/json.hpp>)
#include <nlohmann/json.hpp>
#define SLUICE_TEST_WITH_NLOHMANN 1
#endif

namespace sluice::gpu {
namespace {

constexpr int32_t kNullable = 1;

/// A declared field: its name and spec.
struct Field {
  std::string name;
  CsvFieldSpec spec;
};

Field field(const std::string& name, int32_t type, int32_t nullable = 0) {
  Field f;
  f.name = name;
  f.spec.type = type;
  f.spec.nullable = nullable;
  return f;
}

/// Parses @p lines (@p null_lines: the lines that are null) with the device parser on the host.
/// The lines' text starts @p base bytes into the buffer, so that offsets need not start at 0.
HostParse parse(const std::vector<std::string>& lines, const std::vector<Field>& fields, const std::vector<size_t>& null_lines = {},
                int32_t base = 0) {
  std::vector<CsvFieldSpec> specs;
  std::vector<const char*> names;
  for (const Field& f : fields) {
    specs.push_back(f.spec);
    names.push_back(f.name.c_str());
  }
  HostExec exec;
  const LinesInExecutor in(exec, lines, null_lines, base);
  const JsonParseResult<HostExec> r = parse_json_on_device(exec, in.chars.data(), in.offsets.data(), lines.size(), specs.data(),
                                                           names.data(), specs.size(), in.validity_or_null());
  return copy_result(exec, r, specs, lines.size());
}

using Indexes = std::vector<int64_t>;

/// One field "v" of @p type, its value in each of @p values as {"v":value}.
HostParse parse_values(int32_t type, const std::vector<std::string>& values, int32_t nullable = 0) {
  std::vector<std::string> lines;
  for (const std::string& v : values) lines.push_back("{\"v\":" + v + "}");
  return parse(lines, {field("v", type, nullable)});
}

// ------------------------------------------------------------------ the CPU parser's rules

std::vector<Field> every_scalar_type() {
  return {field("b", kBool),     field("i", kInt32, kNullable),   field("l", kInt64),
          field("f", kFloat32, kNullable), field("d", kFloat64), field("s", kString, kNullable)};
}

TEST(JsonParseOnHost, EveryScalarTypeInAnObject) {
  const HostParse p = parse({R"({"b":true,"i":1,"l":9000000000,"f":1.5,"d":2.25,"s":"hello"})",
                             R"({"s":null,"d":1e3,"l":-1,"b":false,"i":-2147483648,"f":-0.5})",
                             R"({"b":true,"l":0,"d":-0.0})", R"({"b":false,"i":null,"l":7,"f":null,"d":-0,"s":""})"},
                            every_scalar_type());
  EXPECT_EQ(p.malformed, Indexes{});
  EXPECT_EQ(p.needs_host, Indexes{});
  EXPECT_EQ(p.row_index, (Indexes{0, 1, 2, 3}));
  EXPECT_EQ(p.all_rows(),
            "[true,1,9000000000,1.5,2.25,\"hello\"]\n"
            "[false,-2147483648,-1,-0.5,1000,null]\n"
            "[true,null,0,null,-0,null]\n"
            "[false,null,7,null,0,\"\"]\n");
  EXPECT_EQ(p.columns[1].null_count, 2u);
  EXPECT_EQ(p.columns[3].null_count, 2u);
  EXPECT_EQ(p.columns[5].null_count, 2u);
  EXPECT_EQ(p.columns[5].validity, std::vector<uint8_t>{0x9});
  EXPECT_EQ(bits_of(p.columns[4].value<double>(2)), 0x8000000000000000ULL);  // -0.0 keeps its sign
  EXPECT_EQ(bits_of(p.columns[4].value<double>(3)), 0u);                     // the integer -0 is 0
}

TEST(JsonParseOnHost, ArraysMapFieldsByPosition) {
  const HostParse p = parse({R"([true,1,2,3.5,4.5,"x"])", R"([false,null,2,null,1,null])", R"([true,1,2,3,4])",
                             R"([true,1,2,3,4,"x",5])", "[]", R"([true,1,2,3,4,"x",])", R"([ false , 3.0 , -5 , 1 , 2 , "" ])",
                             R"([true,"1",2,3,4,"x"])"},
                            every_scalar_type());
  EXPECT_EQ(p.row_index, (Indexes{0, 1, 6}));
  EXPECT_EQ(p.malformed, (Indexes{2, 3, 4, 5, 7}));
  EXPECT_EQ(p.all_rows(), "[true,1,2,3.5,4.5,\"x\"]\n[false,null,2,null,1,null]\n[false,3,-5,1,2,\"\"]\n");
}

std::vector<Field> id_and_name() { return {field("id", kInt64), field("name", kString, kNullable)}; }

TEST(JsonParseOnHost, MissingExtraAndDuplicateKeys) {
  const HostParse p = parse(
      {
          R"({"id":1})",                                                           // 0: a missing nullable field is null
          R"({"name":"a"})",                                                       // 1: a missing non-nullable one: malformed
          R"({"id":2,"extra":[1,{"x":"y"}],"more":{"a":[true,null,-1.5e-3]},"name":"b"})",  // 2: extra keys ignored
          R"({"id":3,"id":4})",                                                    // 3: the last value of a key counts
          R"({"id":"x","id":5,"name":"c","name":null})",                           // 4
          R"({"id":5,"id":"x"})",                                                  // 5: malformed
          R"({"ID":6})",                                                           // 6: names are case-sensitive
          R"({"id ":7,"id":8})",                                                   // 7
          R"({"i\u0064":9})",                                                      // 8: an escaped key: the host decides
          R"({"id":10,"x":{"i\u0064":"q\n\t\"\\\/\b\f\r"}})",                      // 9: escapes where they do not matter
          R"({"id":11,"extra":"a\"b\\c\u00e9\ud83d\ude00\uABCD"})",                // 10
          R"({"id":12,"name":"a\"b"})",                                            // 11: an escaped value: host
          R"({"id":13,"extra":"\ud83d"})",                                         // 12: a lone high surrogate
          R"({"id":14,"extra":"\x"})",                                             // 13: not an escape
          R"({})",                                                                 // 14
          R"({"id":15,"name":"d","id":"x","id":16})",                              // 15
          R"({"id":17,"extra":"\udc00"})",                                         // 16: a lone low surrogate
          R"({"id":18,"extra":"\ud83d\u0041"})",                                   // 17: not a low surrogate
          R"({"id":19,"extra":"\u12G4"})",                                         // 18
          R"({"":20,"id":21})",                                                    // 19: an empty key is a key
          R"({"i\u0064":22,"x":})",                                                // 20: an escaped key, but not JSON
          R"({"id":23,"name":"x","name":1})",                                      // 21: malformed: the last name
      },
      id_and_name());
  EXPECT_EQ(p.row_index, (Indexes{0, 2, 3, 4, 7, 9, 10, 15, 19}));
  EXPECT_EQ(p.malformed, (Indexes{1, 5, 6, 12, 13, 14, 16, 17, 18, 20, 21}));
  EXPECT_EQ(p.needs_host, (Indexes{8, 11}));
  EXPECT_EQ(p.all_rows(),
            "[1,null]\n[2,\"b\"]\n[4,null]\n[5,null]\n[8,null]\n[10,null]\n[11,null]\n[16,\"d\"]\n[21,null]\n");
}

TEST(JsonParseOnHost, WhitespaceBlankLinesAndTheEndOfTheLine) {
  const std::string nul_tail = std::string(R"({"id":6})") + '\0' + "junk";  // nlohmann stops at a NUL
  const std::string nul_inside = std::string(R"({"id":7)") + '\0' + "}";
  const HostParse p = parse(
      {
          " \t{ \"id\" : 1 , \"name\" :\t\"a\" }\t ",  // 0
          "\t[ 2 ,\n \"b\" ]\r",                        // 1
          "",                                           // 2: blank
          "   ",                                        // 3: blank
          "\t \r",                                      // 4: blank
          "\r",                                         // 5: blank
          "\r\r",                                       // 6: "\r" is not blank, and not JSON
          "{\"id\":3}\r",                               // 7
          "{\"id\":4} x",                               // 8
          "{\"id\":5}{}",                               // 9
          nul_tail,                                     // 10
          nul_inside,                                   // 11
          "\xEF\xBB\xBF{\"id\":8}",                     // 12: a byte order mark
          "\xEF\xBB{\"id\":9}",                         // 13: half of one
          " \xEF\xBB\xBF{\"id\":10}",                   // 14: only at the start
          "\n",                                         // 15: whitespace, but no value
          "{\"id\":11}\r\n\r ",                         // 16: JSON whitespace after the value
          "{\"id\":12}\r\r",                            // 17: one '\r' dropped, the other is whitespace
          "\r{\"id\":13}",                              // 18
          "\f{\"id\":14}",                              // 19: not JSON whitespace
          "\xEF\xBB\xBF",                               // 20
          "\v",                                         // 21
      },
      id_and_name());
  EXPECT_EQ(p.row_index, (Indexes{0, 1, 7, 10, 12, 16, 17, 18}));
  EXPECT_EQ(p.malformed, (Indexes{6, 8, 9, 11, 13, 14, 15, 19, 20, 21}));
  EXPECT_EQ(p.needs_host, Indexes{});
  EXPECT_EQ(p.blank, 4u);
  EXPECT_EQ(p.all_rows(), "[1,\"a\"]\n[2,\"b\"]\n[3,null]\n[6,null]\n[8,null]\n[11,null]\n[12,null]\n[13,null]\n");
}

TEST(JsonParseOnHost, InvalidJsonIsMalformed) {
  const std::vector<std::string> lines = {
      R"({"id":1,})",         R"({"id":1)",          R"({"id" 1})",          R"({id:1})",
      R"({'id':1})",          R"([1,])",             R"({"id":01})",         R"({"id":1.})",
      R"({"id":.5})",         R"({"id":+1})",        R"({"id":-})",          R"({"id":1e})",
      R"({"id":1e+})",        R"({"id":tru})",       R"({"id":1,"x":True})", R"({"id":1,"x":NaN})",
      R"({"id":1,"x":Infinity})", R"({"id":1,"x":"a)", "{\"id\":1,\"x\":\"tab\there\"}", "{\"id\":1,\"x\":\"\xC3\"}",
      "{\"id\":1,\"x\":\"\xC0\x80\"}", "{\"id\":1,\"x\":\"\xED\xA0\x80\"}", R"({"id":1,"x":1e400})", R"({"id":1,"x":[1,2})",
      R"({"id":1,"x":{"a":1]})", R"({"id":1}})",    R"([[1])",             R"({"id":1,"x":-1e309})",
      R"({"id":1,"x":nul})",   R"({"id":1,"x":nulll})", R"({"id":1 "x":2})", R"({"id":1,,"x":2})",
      R"({,"id":1})",         R"({"id":1:2})",        R"({"id":1,"x":"\u12"})", R"({"id":1,"x":-01})",
      R"({"id":1,"x":1.5e})", R"({"id":1,"x":0x10})", R"({"id":1,"x":[,1]})", R"({"id":1,"x":"\)",
      "{\"id\":1,\"x\":\"\xF5\x80\x80\x80\"}", "{\"id\":1,\"x\":\"\xF4\x90\x80\x80\"}", "{\"id\":1,\"x\":\"\x80\"}",
      "{\"id\":1,\"x\":\"\xE0\x9F\xBF\"}", "{\"id\":1,\"x\":\"\xF0\x8F\xBF\xBF\"}", "{\"id\":1,\"x\":\"\xE2\x82\"}",
      "{\"id\":1,\"x\":\x7F}", "{\"id\":1,\"x\":1}\xC3\xA9", "\xC3\xA9", "{\"id\":1,\"x\":\"\x01\"}",
      R"({"id":1,"x":[1 2]})", R"({"id":1,"x":{"a"}})", R"({"id":1,"x":{"a":}})", R"({"id":1,"x":{1:2}})",
      "1", R"("x")", "null", "true", "-5", "{", "]", "}", "[",
  };
  const HostParse p = parse(lines, id_and_name());
  Indexes all;
  for (size_t i = 0; i < lines.size(); ++i) all.push_back(static_cast<int64_t>(i));
  EXPECT_EQ(p.malformed, all);
  EXPECT_EQ(p.rows, 0u);
  EXPECT_EQ(p.needs_host, Indexes{});
}

TEST(JsonParseOnHost, WellFormedUtf8AndEveryPrintableByteStayOnTheDevice) {
  std::string printable;
  for (int c = 0x20; c < 0x80; ++c)
    if (c != '"' && c != '\\') printable += static_cast<char>(c);
  const HostParse p = parse({"{\"id\":1,\"name\":\"\xC3\x84\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\"}",
                             "{\"id\":2,\"name\":\"" + printable + "\"}",
                             "{\"id\":3,\"name\":\"\xED\x9F\xBF\xEE\x80\x80\xF4\x8F\xBF\xBF\xE0\xA0\x80\xF0\x90\x80\x80\"}",
                             "{\"\xC3\xA9\":4,\"id\":4}"},
                            id_and_name());
  EXPECT_EQ(p.row_index, (Indexes{0, 1, 2, 3}));
  EXPECT_EQ(p.columns[1].str(0), "\xC3\x84\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80");
  EXPECT_EQ(p.columns[1].str(1), printable);
  EXPECT_EQ(p.columns[1].str(2), "\xED\x9F\xBF\xEE\x80\x80\xF4\x8F\xBF\xBF\xE0\xA0\x80\xF0\x90\x80\x80");

  // A non-ASCII name is matched byte for byte.
  const HostParse named = parse({"{\"\xC3\xA9t\xC3\xA9\":true}", "{\"\xC3\xA9te\":true}"}, {field("\xC3\xA9t\xC3\xA9", kBool)});
  EXPECT_EQ(named.row_index, Indexes{0});
  EXPECT_EQ(named.malformed, Indexes{1});
}

TEST(JsonParseOnHost, NestedValues) {
  std::string deep_ok = R"({"id":1,"x":)", deep_host = R"({"id":2,"x":)", deep_bad = R"({"id":3,"x":)";
  for (int k = 0; k < 63; ++k) deep_ok += k % 2 ? "[" : "{\"k\":";
  deep_ok += "1";
  for (int k = 62; k >= 0; --k) deep_ok += k % 2 ? "]" : "}";
  deep_ok += "}";
  deep_host += std::string(64, '[') + std::string(64, ']') + "}";
  deep_bad += std::string(64, '[') + std::string(63, ']') + "}";
  const HostParse p = parse({R"({"id":{"a":1}})", R"({"id":[1]})", R"({"id":1,"name":["a"]})", R"({"id":1,"name":{"x":"y"}})",
                             R"({"id":1,"name":{}})", R"({"id":1,"name":[]})", deep_ok, deep_host, deep_bad,
                             R"({"id":{"id":4},"id":4})", R"([[5],"x"])", R"([5,{"a":[1,{"b":null}]}])",
                             R"({"x":[{"id":6}],"id":7})", R"({"x":{"id":"q"},"id":8})", R"({"x":[[[]],{},[{}]],"id":9})"},
                            id_and_name());
  EXPECT_EQ(p.row_index, (Indexes{6, 9, 12, 13, 14}));
  EXPECT_EQ(p.malformed, (Indexes{0, 1, 2, 3, 4, 5, 10, 11}));
  EXPECT_EQ(p.needs_host, (Indexes{7, 8}));  // deeper than 64 levels: the host decides, even when not JSON
  EXPECT_EQ(p.all_rows(), "[1,null]\n[4,null]\n[7,null]\n[8,null]\n[9,null]\n");
}

TEST(JsonParseOnHost, Bools) {
  const HostParse p = parse_values(kBool, {"true", "false", "1", "0", "\"true\"", "True", "null", "[true]", "truefalse", "false "});
  EXPECT_EQ(p.row_index, (Indexes{0, 1, 9}));
  EXPECT_EQ(p.malformed, (Indexes{2, 3, 4, 5, 6, 7, 8}));
  EXPECT_EQ(p.all_rows(), "[true]\n[false]\n[false]\n");
}

TEST(JsonParseOnHost, Int32Bounds) {
  const HostParse p = parse_values(kInt32, {"2147483647", "-2147483648", "2147483648", "-2147483649", "3.0", "3.5", "-0", "-0.0",
                                            "1e2", "1E+2", "2.147483647e9", "2.147483648e9", "\"1\"", "true", "null",
                                            "1.0000000000000000001", "12345678901234567890123", "-9223372036854775809",
                                            "-2.147483648e9", "1e-400", "-1e-400", "0.5e1", "1e400", "-3.255e2", "4E-0"});
  EXPECT_EQ(p.row_index, (Indexes{0, 1, 4, 6, 7, 8, 9, 10, 15, 18, 19, 20, 21, 24}));
  EXPECT_EQ(p.malformed, (Indexes{2, 3, 5, 11, 12, 13, 14, 16, 17, 22, 23}));
  EXPECT_EQ(p.needs_host, Indexes{});  // 20 significant digits too: the exact conversion gives 1.0
  EXPECT_EQ(p.all_rows(),
            "[2147483647]\n[-2147483648]\n[3]\n[0]\n[0]\n[100]\n[100]\n[2147483647]\n[1]\n[-2147483648]\n[0]\n[0]\n[5]\n[4]\n");
}

TEST(JsonParseOnHost, Int64Bounds) {
  const HostParse p = parse_values(
      kInt64, {"9223372036854775807", "-9223372036854775808", "9223372036854775808", "18446744073709551615", "18446744073709551616",
               "-9223372036854775809", "-9223372036854776832", "-9223372036854776833", "9.2233720368547758e18",
               "9.223372036854775e18", "-9.223372036854775808e18", "1e18", "123456789012345678.0", "1e19", "-1e19",
               "99999999999999999999999999", "-99999999999999999999999999", "9007199254740993.0", "0", "-1.5"});
  EXPECT_EQ(p.row_index, (Indexes{0, 1, 5, 6, 9, 10, 11, 12, 17, 18}));
  EXPECT_EQ(p.malformed, (Indexes{2, 3, 4, 7, 8, 13, 14, 15, 16, 19}));  // 9.2233720368547758e18 is the double 2^63
  EXPECT_EQ(p.needs_host, Indexes{});
  // Beyond int64, nlohmann reads the literal as a double: the nearest is -2^63 down to
  // -2^63 - 1024 (a tie, to even). A decimal with a fraction counts by its double.
  EXPECT_EQ(p.all_rows(),
            "[9223372036854775807]\n[-9223372036854775808]\n[-9223372036854775808]\n[-9223372036854775808]\n"
            "[9223372036854774784]\n[-9223372036854775808]\n[1000000000000000000]\n[123456789012345680]\n"
            "[9007199254740992]\n[0]\n");
}

TEST(JsonParseOnHost, Float64Values) {
  const std::vector<std::string> values = {"0.1", "-0", "-0.0", "1e308", "1.7976931348623157e308", "1e309", "1e-400", "-1e-400",
                                           "9007199254740993", "18446744073709551615", "123456789012345678901234567890",
                                           "100000000000000000000000", "1", "true", "\"1.5\"", "-9223372036854775808",
                                           "-99999999999999999999", "2.5E-3", "0e999999", "-2.2250738585072014e-308"};
  const HostParse p = parse_values(kFloat64, values);
  EXPECT_EQ(p.row_index, (Indexes{0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 12, 15, 16, 17, 18, 19}));
  EXPECT_EQ(p.malformed, (Indexes{5, 13, 14}));
  EXPECT_EQ(p.needs_host, Indexes{});
  const std::vector<double> expected = {0.1,  0.0,  -0.0, 1e308, 1.7976931348623157e308, 0.0, -0.0, 9007199254740992.0,
                                        18446744073709551615.0, 123456789012345678901234567890.0, 1e23, 1.0,
                                        -9223372036854775808.0, -99999999999999999999.0, 2.5e-3, 0.0, -2.2250738585072014e-308};
  ASSERT_EQ(p.rows, expected.size());
  for (size_t r = 0; r < expected.size(); ++r)
    EXPECT_EQ(bits_of(p.columns[0].value<double>(r)), bits_of(expected[r])) << values[static_cast<size_t>(p.row_index[r])];
}

TEST(JsonParseOnHost, Float32Values) {
  // The double nearest to the number, then rounded to float; beyond FLT_MAX (as a double) is
  // malformed.
  const std::vector<std::string> values = {"3e37", "3.5e38", "-9e37", "1e39", "1e-50", "-1e-50", "16777217",
                                           "0.1", "1e-46", "-0", "-1e39", "4e38", "1e400", "3.4028234663852886e38"};
  const HostParse p = parse_values(kFloat32, values);
  EXPECT_EQ(p.row_index, (Indexes{0, 2, 4, 5, 6, 7, 8, 9, 13}));
  EXPECT_EQ(p.malformed, (Indexes{1, 3, 10, 11, 12}));
  EXPECT_EQ(p.needs_host, Indexes{});
  const std::vector<uint32_t> expected = {bits_of(static_cast<float>(3e37)), bits_of(static_cast<float>(-9e37)), 0u, 0x80000000u,
                                          bits_of(16777216.0f), bits_of(0.1f), 0u, 0u, 0x7F7FFFFFu};
  ASSERT_EQ(p.rows, expected.size());
  for (size_t r = 0; r < expected.size(); ++r)
    EXPECT_EQ(bits_of(p.columns[0].value<float>(r)), expected[r]) << values[static_cast<size_t>(p.row_index[r])];
}

/// DBL_MAX's halfway point to 2^1024 (2^1024 - 2^970, exactly): a tie, to even, so up to
/// 2^1024, which overflows; one less rounds down to DBL_MAX.
const std::string kHalfwayToOverflow = "179769313486231580793728971405303415079934132710037826936173778980444968292764750946649017977587207096330286416692887910946555547851940402630657488671505820681908902000708383676273854845817711531764475730270069855571366959622842914819860834936475292719074168444365510704342711559699508093042880177904174497792";
const std::string kBelowHalfwayToOverflow = "179769313486231580793728971405303415079934132710037826936173778980444968292764750946649017977587207096330286416692887910946555547851940402630657488671505820681908902000708383676273854845817711531764475730270069855571366959622842914819860834936475292719074168444365510704342711559699508093042880177904174497791";

TEST(JsonParseOnHost, NumbersInOtherKeysMustNotOverflow) {
  const HostParse p = parse({R"({"id":1,"x":1e308})", R"({"id":2,"x":1e309})", R"({"id":3,"x":-12345.6e-400})",
                             "{\"id\":4,\"x\":0." + std::string(31, '0') + "1e340}", R"({"id":5,"x":0e99999999999})",
                             R"({"id":6,"x":123456789012345678901234567890})", R"({"id":7,"x":9.99e307})",
                             R"({"id":"z","x":5e308})", R"({"id":8,"x":1797693134862315807937289714053034150799e269})",
                             "{\"id\":9,\"x\":" + kHalfwayToOverflow + "}", "{\"id\":10,\"x\":" + kBelowHalfwayToOverflow + "}"},
                            id_and_name());
  // Numbers in [1e308, 1e309) are converted to tell: 1.797693134862315807937289714053034150799e308
  // lies just below DBL_MAX's halfway point to 2^1024, so it is DBL_MAX.
  EXPECT_EQ(p.row_index, (Indexes{0, 2, 3, 4, 5, 6, 8, 10}));
  EXPECT_EQ(p.malformed, (Indexes{1, 7, 9}));  // 1e309 and the halfway point do not parse; "z" is no int64
  EXPECT_EQ(p.needs_host, Indexes{});
}

TEST(JsonParseOnHost, Strings) {
  const HostParse p = parse_values(kString, {R"("")", R"("a b")", R"("\u00e9")", R"("a/b")", "null", "1", "true", R"(["a"])",
                                             R"("\n")", "\"'\""},
                                   kNullable);
  EXPECT_EQ(p.row_index, (Indexes{0, 1, 3, 4, 9}));
  EXPECT_EQ(p.malformed, (Indexes{5, 6, 7}));
  EXPECT_EQ(p.needs_host, (Indexes{2, 8}));
  EXPECT_EQ(p.all_rows(), "[\"\"]\n[\"a b\"]\n[\"a/b\"]\n[null]\n[\"'\"]\n");
  const HostParse strict = parse_values(kString, {"null", R"("")"});
  EXPECT_EQ(strict.malformed, Indexes{0});
  EXPECT_EQ(strict.all_rows(), "[\"\"]\n");
}

TEST(JsonParseOnHost, NullLinesAndOffsetsThatDoNotStartAtZero) {
  const HostParse p = parse({R"({"id":1})", "", R"({"id":2})", "", R"({"id":3})"}, id_and_name(), {1, 2}, 13);
  EXPECT_EQ(p.row_index, (Indexes{0, 4}));
  EXPECT_EQ(p.malformed, (Indexes{1, 2}));  // null, even when empty
  EXPECT_EQ(p.blank, 1u);
  EXPECT_EQ(p.all_rows(), "[1,null]\n[3,null]\n");
}

TEST(JsonParseOnHost, NoFieldsAndEmptyInput) {
  const HostParse none = parse({"{}", "[]", "[1]", R"({"a":1})", "1", "{", ""}, {});
  EXPECT_EQ(none.row_index, (Indexes{0, 1, 3}));
  EXPECT_EQ(none.malformed, (Indexes{2, 4, 5}));
  EXPECT_EQ(none.blank, 1u);

  const HostParse empty = parse({}, every_scalar_type());
  EXPECT_EQ(empty.rows, 0u);
  ASSERT_EQ(empty.columns.size(), 6u);
  EXPECT_EQ(empty.columns[5].offsets, std::vector<int32_t>{0});
}

TEST(JsonParseOnHost, FieldsSharingANameTakeTheSameValue) {
  const HostParse p = parse({R"({"a":1})", R"({"b":1})"}, {field("a", kInt64), field("a", kFloat64, kNullable)});
  EXPECT_EQ(p.row_index, Indexes{0});
  EXPECT_EQ(p.all_rows(), "[1,1]\n");
}

TEST(JsonParseOnHost, ValidityBitmapsSpanManyBytes) {
  std::vector<std::string> lines;
  std::string expected;
  for (int i = 0; i < 70; ++i) {
    const bool null = i % 3 == 0 || i == 69;
    lines.push_back(null ? "{}" : "{\"n\":" + std::to_string(i) + ",\"s\":\"s" + std::to_string(i) + "\"}");
    if (i % 7 == 5) lines.push_back("{\"n\":\"bad\"}");
    expected += null ? "[null,null]\n" : "[" + std::to_string(i) + ",\"s" + std::to_string(i) + "\"]\n";
  }
  const HostParse p = parse(lines, {field("n", kInt32, kNullable), field("s", kString, kNullable)});
  EXPECT_EQ(p.rows, 70u);
  EXPECT_EQ(p.malformed.size(), 10u);
  EXPECT_EQ(p.all_rows(), expected);
  EXPECT_EQ(p.columns[0].null_count, 24u);
}

TEST(JsonParseOnHost, TheCommonCaseStaysOnTheDevice) {
  std::vector<std::string> lines;
  for (int i = 0; i < 200; ++i)
    lines.push_back("{\"user_id\":\"u" + std::to_string(i % 17) + "\",\"ad_id\":\"a" + std::to_string(i % 7) +
                    "\",\"event_type\":\"view\",\"event_time\":" + std::to_string(1700000000123LL + i) + "}");
  const HostParse p = parse(lines, {field("user_id", kString), field("ad_id", kString), field("event_type", kString),
                                    field("event_time", kInt64)});
  EXPECT_EQ(p.rows, 200u);
  EXPECT_EQ(p.row(0), "[\"u0\",\"a0\",\"view\",1700000000123]");
  EXPECT_EQ(p.row(199), "[\"u12\",\"a3\",\"view\",1700000000322]");
}

// ------------------------------------------------------------------ random records

/// A good value, as the CPU parser appends it.
struct Cell {
  bool is_null = false;
  int64_t integer = 0;
  double real = 0;
  std::string text;
};

#ifdef SLUICE_TEST_WITH_NLOHMANN
/// The CPU parser transcribed (parse_json, check_json_record, check_json_value, json_integer,
/// append_json_value) over nlohmann::json: the status of a line, and for a good line its cells.
bool cpu_integer(const nlohmann::json& v, int64_t& out) {
  using nlohmann::json;
  switch (v.type()) {
    case json::value_t::number_integer: out = v.get<int64_t>(); return true;
    case json::value_t::number_unsigned: {
      const uint64_t u = v.get<uint64_t>();
      if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return false;
      out = static_cast<int64_t>(u);
      return true;
    }
    case json::value_t::number_float: {
      const double d = v.get<double>();
      if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0) || std::trunc(d) != d) return false;
      out = static_cast<int64_t>(d);
      return true;
    }
    default: return false;
  }
}

uint8_t cpu_parse_line(const std::string& raw, bool is_null_line, const std::vector<Field>& fields, std::vector<Cell>& cells) {
  using nlohmann::json;
  if (is_null_line) return kJsonMalformed;
  std::string line = raw;
  if (!line.empty() && line.back() == '\r') line.pop_back();
  if (line.find_first_not_of(" \t") == std::string::npos) return kJsonBlank;
  const json record = json::parse(line.begin(), line.end(), nullptr, false);
  if (record.is_discarded()) return kJsonMalformed;
  std::vector<const json*> values(fields.size(), nullptr);
  if (record.is_object()) {
    for (size_t i = 0; i < fields.size(); ++i) {
      auto it = record.find(fields[i].name);
      if (it != record.end()) values[i] = &*it;
      else if (!fields[i].spec.nullable) return kJsonMalformed;
    }
  } else if (record.is_array()) {
    if (record.size() != fields.size()) return kJsonMalformed;
    for (size_t i = 0; i < fields.size(); ++i) values[i] = &record[i];
  } else {
    return kJsonMalformed;
  }
  cells.assign(fields.size(), Cell{});
  for (size_t i = 0; i < fields.size(); ++i) {
    const json* v = values[i];
    Cell& cell = cells[i];
    const int32_t type = fields[i].spec.type;
    if (!v || v->is_null()) {
      if (!fields[i].spec.nullable) return kJsonMalformed;
      cell.is_null = true;
      continue;
    }
    switch (type) {
      case kBool:
        if (!v->is_boolean()) return kJsonMalformed;
        cell.integer = v->get<bool>() ? 1 : 0;
        break;
      case kInt32:
      case kInt64:
        if (!v->is_number() || !cpu_integer(*v, cell.integer)) return kJsonMalformed;
        if (type == kInt32 && (cell.integer < INT32_MIN || cell.integer > INT32_MAX)) return kJsonMalformed;
        break;
      case kFloat32:
      case kFloat64: {
        if (!v->is_number()) return kJsonMalformed;
        cell.real = v->get<double>();
        const double limit = type == kFloat32 ? std::numeric_limits<float>::max() : std::numeric_limits<double>::max();
        if (std::isfinite(cell.real) && std::abs(cell.real) > limit) return kJsonMalformed;
        break;
      }
      default:
        if (!v->is_string()) return kJsonMalformed;
        cell.text = v->get<std::string>();
    }
  }
  return kJsonGood;
}
#endif

/// What a generated value should make of its record.
enum ValueKind { kGoodValue, kBadValue, kHostValue };

struct GeneratedValue {
  std::string json;  ///< as written; empty: the key is left out
  ValueKind kind = kGoodValue;
  Cell cell;         ///< the expected value of a good one
};

class RecordGenerator : public RandomPicks {
 public:
  explicit RecordGenerator(uint32_t seed) : RandomPicks(seed) {}

  /// JSON whitespace, usually none.
  std::string space() {
    if (!chance(15)) return "";
    static const char* ws[] = {" ", "  ", "\t", "\n", "\r", " \t "};
    return ws[pick(6)];
  }

  std::string digits(int n, bool nonzero_first) {
    std::string s;
    for (int i = 0; i < n; ++i) s += static_cast<char>('0' + (i == 0 && nonzero_first ? 1 + pick(9) : pick(10)));
    return s;
  }

  /// A plain string's bytes: ASCII without quotes or backslashes, and well-formed UTF-8.
  std::string plain_text() {
    static const char* pieces[] = {"a", "b", "x", "Z", "0", "9", " ", ",", ":", "{", "}", "[", "]", "'", "/", "-", ".", "\x7F",
                                   "\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x98\x80", "true", "null"};
    std::string s;
    const int n = pick(10);
    for (int i = 0; i < n; ++i) s += pieces[pick(23)];
    return s;
  }

  /// A valid value for a key no field has: a scalar, or nested containers.
  std::string any_value(int depth = 0) {
    switch (pick(depth > 2 ? 6 : 8)) {
      case 0: return "\"" + plain_text() + "\"";
      case 1: return "\"a\\\"b\\\\c\\/\\n\\t\\u00e9\\ud83d\\ude00\"";
      case 2: return std::to_string(static_cast<int64_t>(rng_()) - (1LL << 31));
      case 3: return "-1.25e-7";
      case 4: return chance(50) ? "true" : "false";
      case 5: return "null";
      case 6: {
        std::string s = "[" + space();
        const int n = pick(4);
        for (int i = 0; i < n; ++i) s += (i ? "," + space() : "") + any_value(depth + 1) + space();
        return s + "]";
      }
      default: {
        std::string s = "{" + space();
        const int n = pick(4);
        for (int i = 0; i < n; ++i) s += (i ? "," : "") + std::string("\"k") + std::to_string(i) + "\"" + space() + ":" + any_value(depth + 1);
        return s + "}";
      }
    }
  }

  /// Something not valid JSON, for a key no field has.
  std::string invalid_value() {
    static const char* wrong[] = {"tru", "01", "1.", "\"a", "[1,]", "{\"a\"}", "\"\\x\"", "1e400", "+1", "\"\\ud800\"", "'a'", "\"\x01\"",
                                  "\"\xC3\"", "nan"};
    return wrong[pick(14)];
  }

  GeneratedValue value(const Field& f, bool in_object) {
    GeneratedValue g;
    const int32_t type = f.spec.type;
    const bool is32 = type == kInt32 || type == kFloat32;
    if (chance(5)) {  // missing (objects only), or null
      g.json = in_object && chance(50) ? "" : "null";
      if (f.spec.nullable) g.cell.is_null = true;
      else g.kind = kBadValue;
      return g;
    }
    if (chance(2)) {  // another type
      static const char* wrong[] = {"{}", "[1]", "{\"a\":1}", "[]"};
      g.json = wrong[pick(4)];
      g.kind = kBadValue;
      if (type != kString && chance(50)) g.json = "\"1\"";
      if (type != kBool && chance(30)) g.json = "true";
      if (type == kBool && chance(30)) g.json = "1";
      if (type == kString && chance(30)) g.json = "12";
      return g;
    }
    const bool bad = chance(2);
    const bool host = !bad && chance(2);
    switch (type) {
      case kBool:
        g.cell.integer = pick(2);
        g.json = g.cell.integer ? "true" : "false";
        return g;
      case kInt32:
      case kInt64: {
        if (bad) {
          static const char* wrong[] = {"1.5", "-0.25", "1e19", "9223372036854775808", "18446744073709551616", "-9223372036854776833",
                                        "2147483648", "-2147483649", "3e9"};
          const int k = pick(is32 ? 9 : 6);
          g.json = wrong[k];
          g.kind = kBadValue;
          return g;
        }
        if (host) {  // beyond the fast path: the exact conversion gives the integer's double
          const int64_t v = 1 + pick(999);
          g.json = std::to_string(v) + ".00000000000000000000" + std::to_string(1 + pick(9));
          g.cell.integer = v;
          return g;
        }
        const int64_t v = integer(is32);
        g.json = std::to_string(v);
        if (std::abs(static_cast<double>(v)) < 9007199254740992.0) {  // exact as a double
          if (chance(10)) g.json += chance(50) ? ".0" : ".000";
          else if (v != 0 && v % 1000 == 0 && chance(50)) g.json = std::to_string(v / 1000) + (chance(50) ? "e3" : "E+3");
        }
        if (v == 0 && chance(20)) g.json = "-0";
        g.cell.integer = v;
        return g;
      }
      case kFloat32:
      case kFloat64: {
        if (bad) {
          g.json = is32 && chance(50) ? "-1e39" : chance(50) ? "1e309" : "-2e400";
          g.kind = kBadValue;
          return g;
        }
        std::string s;
        if (host) {  // beyond the fast path: more than 19 digits, large and tiny exponents
          s = digits(1, true) + "." + digits(18 + pick(6), false) + std::to_string(1 + pick(9));
          s += "e" + std::to_string(pick(is32 ? 60 : 600) - (is32 ? 30 : 300));
          g.json = s;
          g.cell.real = std::strtod(s.c_str(), nullptr);
          return g;
        }
        const int form = pick(10);
        if (form == 0) {
          static const char* special[] = {"-0", "0", "-0.0", "0e999", "1", "-9223372036854775808", "18446744073709551615", "1e-400"};
          s = special[pick(8)];
        } else {  // on the fast path: up to 14 digits, a point, an exponent, |exp10| <= 8
          const int n = 1 + pick(14);
          s = digits(n, true);
          const int frac = pick(n);
          if (frac > 0) s.insert(s.size() - static_cast<size_t>(frac), ".");
          if (chance(20)) s = "0." + digits(1 + pick(6), false) + digits(1, true);
          if (chance(30)) {
            const int e = pick(17) - 8;
            s += (chance(50) ? "e" : "E") + std::string(e >= 0 && chance(30) ? "+" : "") + std::to_string(e);
          }
          if (chance(40)) s = "-" + s;
        }
        g.json = s;
        g.cell.real = s == "-0" ? 0.0 : std::strtod(s.c_str(), nullptr);  // the integer -0 is 0
        return g;
      }
      default: {
        if (host) {
          g.json = "\"" + plain_text() + (chance(50) ? "\\n" : "\\\"") + "\"";
          g.kind = kHostValue;
          return g;
        }
        if (bad) {
          g.json = "\"a\tb\"";  // a raw control character: not JSON
          g.kind = kBadValue;
          return g;
        }
        g.cell.text = plain_text();
        g.json = "\"" + g.cell.text + "\"";
        return g;
      }
    }
  }
};

/// Random records of @p fields, each with the status the device must give it (and the cells
/// of the good ones); checks the device against them and against the CPU parser.
void check_random_records(const std::vector<Field>& fields, uint32_t seed, int records) {
  RecordGenerator gen(seed);
  std::vector<std::string> lines;
  std::vector<size_t> null_lines;
  std::vector<uint8_t> expected_status;
  std::vector<std::vector<Cell>> expected_cells;
  for (int i = 0; i < records; ++i) {
    const bool as_array = gen.chance(15);
    std::vector<GeneratedValue> g;
    for (const Field& f : fields) g.push_back(gen.value(f, !as_array));
    bool malformed = false, host = false;
    for (const GeneratedValue& x : g) {
      malformed |= x.kind == kBadValue;
      host |= x.kind == kHostValue;
    }
    std::string line = gen.space();
    if (as_array) {
      line += "[" + gen.space();
      for (size_t k = 0; k < g.size(); ++k) line += (k ? "," + gen.space() : "") + g[k].json + gen.space();
      line += "]";
    } else {
      // The fields in a random order, with other keys between them, and sometimes a field
      // given twice (the last value counts).
      std::vector<size_t> order(g.size());
      for (size_t k = 0; k < order.size(); ++k) order[k] = k;
      std::shuffle(order.begin(), order.end(), gen.rng_);
      std::vector<std::string> members;
      for (size_t k : order) {
        if (gen.chance(10)) members.push_back("\"x" + std::to_string(gen.pick(100)) + "\":" + gen.space() + gen.any_value());
        if (g[k].json.empty()) continue;  // missing
        if (gen.chance(5)) members.push_back("\"" + fields[k].name + "\":" + (gen.chance(50) ? "{\"q\":[1]}" : "\"dup\""));
        members.push_back("\"" + fields[k].name + "\"" + gen.space() + ":" + gen.space() + g[k].json);
      }
      if (gen.chance(10)) members.push_back("\"zz\":" + gen.any_value());
      line += "{" + gen.space();
      for (size_t k = 0; k < members.size(); ++k) line += (k ? "," + gen.space() : "") + members[k] + gen.space();
      line += "}";
    }
    line += gen.space();
    uint8_t status = malformed ? kJsonMalformed : host ? kJsonNeedsHost : kJsonGood;
    const int shape = gen.pick(100);
    if (shape < 2) {  // blank
      static const char* blank[] = {"", "\r", " ", "\t \r"};
      line = blank[gen.pick(4)];
      status = kJsonBlank;
    } else if (shape < 3) {  // null
      null_lines.push_back(lines.size());
      status = kJsonMalformed;
    } else if (shape < 5) {  // not JSON: something after the value, or cut short
      line = gen.chance(50) ? line + "x" : line.substr(0, line.rfind(as_array ? ']' : '}'));  // unclosed
      status = kJsonMalformed;
    } else if (shape < 7 && !as_array) {  // an invalid value under another key
      line = "{\"bad\":" + gen.invalid_value() + "," + line.substr(line.find('{') + 1);
      if (line.substr(line.size() - 2) == ",}") line = line.substr(0, line.size() - 2) + "}";
      status = kJsonMalformed;
    } else if (shape < 9 && as_array && !g.empty()) {  // an element too many
      line = line.substr(0, line.rfind(']')) + ",1]";
      status = kJsonMalformed;
    } else if (shape < 20) {
      line += "\r";
    }
    lines.push_back(line);
    expected_status.push_back(status);
    std::vector<Cell> cells;
    for (const GeneratedValue& x : g) cells.push_back(x.cell);
    expected_cells.push_back(cells);
  }

  const HostParse p = parse(lines, fields, null_lines);
  std::vector<uint8_t> status(lines.size(), kJsonBlank);
  for (int64_t r : p.row_index) status[static_cast<size_t>(r)] = kJsonGood;
  for (int64_t r : p.malformed) status[static_cast<size_t>(r)] = kJsonMalformed;
  for (int64_t r : p.needs_host) status[static_cast<size_t>(r)] = kJsonNeedsHost;
  size_t counts[4] = {0, 0, 0, 0};
  size_t compared = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    ++counts[status[i]];
    ASSERT_EQ(static_cast<int>(status[i]), static_cast<int>(expected_status[i])) << "line " << i << ": " << lines[i];
    const bool is_null_line = std::find(null_lines.begin(), null_lines.end(), i) != null_lines.end();
#ifdef SLUICE_TEST_WITH_NLOHMANN
    std::vector<Cell> cpu_cells;
    const uint8_t cpu = cpu_parse_line(lines[i], is_null_line, fields, cpu_cells);
    if (status[i] != kJsonNeedsHost)
      ASSERT_EQ(static_cast<int>(cpu), static_cast<int>(status[i])) << "the CPU parser disagrees on line " << i << ": " << lines[i];
#else
    (void)is_null_line;
#endif
    if (status[i] != kJsonGood) continue;
    const size_t row = compared++;
    ASSERT_EQ(p.row_index[row], static_cast<int64_t>(i));
    for (size_t f = 0; f < fields.size(); ++f) {
      const HostColumn& c = p.columns[f];
      std::vector<const Cell*> wanted{&expected_cells[i][f]};
#ifdef SLUICE_TEST_WITH_NLOHMANN
      wanted.push_back(&cpu_cells[f]);
#endif
      const std::string where = "line " + std::to_string(i) + " field " + std::to_string(f) + ": " + lines[i];
      for (const Cell* want : wanted) {
        ASSERT_EQ(!c.valid(row), want->is_null) << where;
        if (want->is_null) continue;
        switch (c.type) {
          case kBool: ASSERT_EQ(c.value<uint8_t>(row), want->integer) << where; break;
          case kInt32: ASSERT_EQ(c.value<int32_t>(row), want->integer) << where; break;
          case kInt64: ASSERT_EQ(c.value<int64_t>(row), want->integer) << where; break;
          case kFloat32: ASSERT_EQ(bits_of(c.value<float>(row)), bits_of(static_cast<float>(want->real))) << where; break;
          case kFloat64: ASSERT_EQ(bits_of(c.value<double>(row)), bits_of(want->real)) << where; break;
          default: ASSERT_EQ(c.str(row), want->text) << where;
        }
      }
    }
  }
  EXPECT_EQ(compared, p.rows);
  std::printf("%d records: %zu good, %zu malformed, %zu needs host, %zu blank\n", records, counts[kJsonGood], counts[kJsonMalformed],
              counts[kJsonNeedsHost], counts[kJsonBlank]);
  // Every kind of line occurs, and many records are good.
  EXPECT_GT(counts[kJsonGood], static_cast<size_t>(records) / 4);
  EXPECT_GT(counts[kJsonMalformed], 0u);
  EXPECT_GT(counts[kJsonBlank], 0u);
  // Only strings with escapes need the host (numbers are converted exactly).
  const bool strings = std::any_of(fields.begin(), fields.end(), [](const Field& f) { return f.spec.type == kString; });
  if (strings) EXPECT_GT(counts[kJsonNeedsHost], 0u);
}

std::vector<Field> every_type_both_ways() {
  std::vector<Field> fields;
  const char* names[] = {"bool", "int32", "int64", "float32", "float64", "string"};
  for (int32_t type : {kBool, kInt32, kInt64, kFloat32, kFloat64, kString}) {
    fields.push_back(field(names[type], type));
    fields.push_back(field(std::string(names[type]) + "_or_null", type, kNullable));
  }
  return fields;
}

TEST(JsonParseOnHost, RandomRecordsOfEveryType) { check_random_records(every_type_both_ways(), 1, 4000); }

TEST(JsonParseOnHost, RandomRecordsOfSmallSchemas) {
  check_random_records({field("s", kString, kNullable)}, 2, 2000);
  check_random_records({field("x", kFloat64), field("n", kInt64, kNullable)}, 3, 3000);
  check_random_records({field("f", kFloat32, kNullable), field("b", kBool), field("name with spaces", kString)}, 4, 3000);
}

#ifdef SLUICE_TEST_WITH_NLOHMANN
/// Random mutations of valid records (a byte changed, dropped or doubled): whatever the device
/// decides other than "needs host" must be what the CPU parser decides, values included.
TEST(JsonParseOnHost, MutatedRecordsAgreeWithTheCpuParser) {
  const std::vector<Field> fields = every_type_both_ways();
  RecordGenerator gen(5);
  std::vector<std::string> lines;
  static const char alphabet[] = "{}[]\",:\\ \t0123456789-+.eEtrufalsn\x01\xC3\xA9\x80";
  for (int i = 0; i < 6000; ++i) {
    std::string line = "{";
    for (size_t k = 0; k < fields.size(); ++k) {
      GeneratedValue v = gen.value(fields[k], true);
      if (v.json.empty()) continue;
      line += (line.size() > 1 ? "," : "") + ("\"" + fields[k].name + "\":") + v.json;
    }
    line += "}";
    const int edits = 1 + gen.pick(3);
    for (int e = 0; e < edits && !line.empty(); ++e) {
      const size_t at = static_cast<size_t>(gen.pick(static_cast<int>(line.size())));
      switch (gen.pick(3)) {
        case 0: line[at] = alphabet[gen.pick(static_cast<int>(sizeof alphabet) - 1)]; break;
        case 1: line.erase(at, 1); break;
        default: line.insert(at, 1, line[at]);
      }
    }
    lines.push_back(line);
  }
  const HostParse p = parse(lines, fields);
  std::vector<uint8_t> status(lines.size(), kJsonBlank);
  for (int64_t r : p.row_index) status[static_cast<size_t>(r)] = kJsonGood;
  for (int64_t r : p.malformed) status[static_cast<size_t>(r)] = kJsonMalformed;
  for (int64_t r : p.needs_host) status[static_cast<size_t>(r)] = kJsonNeedsHost;
  size_t row = 0, good = 0, malformed = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    std::vector<Cell> cells;
    const uint8_t cpu = cpu_parse_line(lines[i], false, fields, cells);
    good += cpu == kJsonGood;
    malformed += cpu == kJsonMalformed;
    if (status[i] == kJsonNeedsHost) continue;
    ASSERT_EQ(static_cast<int>(status[i]), static_cast<int>(cpu)) << "line " << i << ": " << lines[i];
    if (cpu != kJsonGood) continue;
    for (size_t f = 0; f < fields.size(); ++f) {
      const HostColumn& c = p.columns[f];
      ASSERT_EQ(!c.valid(row), cells[f].is_null) << lines[i];
      if (cells[f].is_null) continue;
      switch (c.type) {
        case kBool: ASSERT_EQ(c.value<uint8_t>(row), cells[f].integer) << lines[i]; break;
        case kInt32: ASSERT_EQ(c.value<int32_t>(row), cells[f].integer) << lines[i]; break;
        case kInt64: ASSERT_EQ(c.value<int64_t>(row), cells[f].integer) << lines[i]; break;
        case kFloat32: ASSERT_EQ(bits_of(c.value<float>(row)), bits_of(static_cast<float>(cells[f].real))) << lines[i]; break;
        case kFloat64: ASSERT_EQ(bits_of(c.value<double>(row)), bits_of(cells[f].real)) << lines[i]; break;
        default: ASSERT_EQ(c.str(row), cells[f].text) << lines[i];
      }
    }
    ++row;
  }
  EXPECT_EQ(row, p.rows);
  std::printf("mutated records: %zu good and %zu malformed on the CPU; the device: %zu good, %zu malformed, %zu needs host\n", good,
              malformed, p.rows, p.malformed.size(), p.needs_host.size());
  EXPECT_GT(good, 100u);
  EXPECT_GT(malformed, 2000u);
}
#endif

}  // namespace
}  // namespace sluice::gpu
