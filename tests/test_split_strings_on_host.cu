// The device flatMap split (kernels/split_strings.cuh) run on the CPU through HostExec: the
// same __host__ __device__ count, scan and scatter passes the GPU runs, checked against a
// reference split written with std::string_view (the rules of sluice::split_strings).
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "gpu_test_columns.cuh"
#include "host_exec.cuh"
#include "split_strings.cuh"

namespace sluice::gpu {
namespace {

struct Token {
  std::string text;
  int64_t row;
  bool operator==(const Token& o) const { return text == o.text && row == o.row; }
};

std::ostream& operator<<(std::ostream& os, const Token& t) { return os << "'" << t.text << "'@" << t.row; }

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'; }

std::vector<Token> reference_split(const TestColumn& text, const std::string& separator) {
  std::vector<Token> out;
  for (size_t r = 0; r < text.rows; ++r) {
    if (!text.valid(r)) continue;
    const std::string_view s = text.str(r);
    const auto row = static_cast<int64_t>(r);
    if (separator.empty()) {
      size_t i = 0;
      while (i < s.size()) {
        while (i < s.size() && is_space(s[i])) ++i;
        const size_t start = i;
        while (i < s.size() && !is_space(s[i])) ++i;
        if (i > start) out.push_back({std::string(s.substr(start, i - start)), row});
      }
      continue;
    }
    size_t start = 0;
    for (size_t at; (at = s.find(separator, start)) != std::string_view::npos; start = at + separator.size())
      out.push_back({std::string(s.substr(start, at - start)), row});
    out.push_back({std::string(s.substr(start)), row});
  }
  return out;
}

std::vector<Token> device_split(const TestColumn& text, const std::string& separator) {
  HostExec exec;
  const SplitTokens<HostExec> t =
      split_strings(exec, text.view(), text.rows, separator.data(), static_cast<int32_t>(separator.size()));
  std::vector<Token> out;
  EXPECT_EQ(t.offsets.data()[0], 0);
  EXPECT_EQ(static_cast<size_t>(t.offsets.data()[t.tokens]), t.bytes);
  for (size_t k = 0; k < t.tokens; ++k) {
    const int32_t from = t.offsets.data()[k], to = t.offsets.data()[k + 1];
    out.push_back({std::string(t.chars.data() + from, t.chars.data() + to), t.source_rows.data()[k]});
  }
  return out;
}

TEST(SplitStringsOnHost, WhitespaceRunsAndLineEdges) {
  const TestColumn text = string_column({"  the quick\tbrown  ", "", "fox", " \n\r\v\f ", "jumps over"});
  const std::vector<Token> want = {{"the", 0}, {"quick", 0}, {"brown", 0}, {"fox", 2}, {"jumps", 4}, {"over", 4}};
  EXPECT_EQ(device_split(text, ""), want);
}

TEST(SplitStringsOnHost, ASeparatorKeepsEmptyTokensAndTheRemainder) {
  const TestColumn text = string_column({"a,,b", ",", "", "abc", "x,"});
  const std::vector<Token> want = {{"a", 0}, {"", 0}, {"b", 0}, {"", 1}, {"", 1}, {"", 2}, {"abc", 3}, {"x", 4}, {"", 4}};
  EXPECT_EQ(device_split(text, ","), want);
}

TEST(SplitStringsOnHost, AMultiByteSeparatorMatchesLeftToRightWithoutOverlap) {
  const TestColumn text = string_column({"a::::b", "a:::b", "::"});
  const std::vector<Token> want = {{"a", 0}, {"", 0}, {"b", 0}, {"a", 1}, {":b", 1}, {"", 2}, {"", 2}};
  EXPECT_EQ(device_split(text, "::"), want);
  EXPECT_EQ(device_split(text, "::"), reference_split(text, "::"));
}

TEST(SplitStringsOnHost, NullRowsGiveNoTokens) {
  const TestColumn text = with_nulls(string_column({"a b", "c d", "e"}), {1});
  const std::vector<Token> want = {{"a", 0}, {"b", 0}, {"e", 2}};
  EXPECT_EQ(device_split(text, ""), want);
  EXPECT_EQ(device_split(text, " "), want);
}

TEST(SplitStringsOnHost, NoRowsAndNoTokens) {
  EXPECT_TRUE(device_split(string_column({}), "").empty());
  EXPECT_TRUE(device_split(string_column({"   ", "\t"}), "").empty());
}

TEST(SplitStringsOnHost, TokenSpansAreSplitWithinTheirEnds) {
  // Strings given as spans of one text (ends): bytes past a span's end are not its own.
  TestColumn text = string_column({"ab cd|ef gh"});
  text.rows = 2;
  text.offsets = {0, 6};
  text.ends = {5, 11};
  const std::vector<Token> want = {{"ab", 0}, {"cd", 0}, {"ef", 1}, {"gh", 1}};
  EXPECT_EQ(device_split(text, ""), want);
}

TEST(SplitStringsOnHost, RandomLinesAgreeWithTheReference) {
  const std::string alphabet = "ab, \t:;x";
  for (uint32_t seed : {1u, 2u, 3u, 4u}) {
    std::mt19937 rng(seed);
    for (size_t rows : {1u, 7u, 513u, 20000u}) {
      std::vector<std::string> lines(rows);
      std::vector<size_t> nulls;
      for (size_t r = 0; r < rows; ++r) {
        for (size_t n = rng() % 40; n > 0; --n) lines[r] += alphabet[rng() % alphabet.size()];
        if (rng() % 11 == 0) nulls.push_back(r);
      }
      const TestColumn text = with_nulls(string_column(lines), nulls);
      for (const std::string separator : {"", ",", ";:", "ab,"}) {
        EXPECT_EQ(device_split(text, separator), reference_split(text, separator))
            << "seed " << seed << ", rows " << rows << ", separator '" << separator << "'";
      }
    }
  }
}

}  // namespace
}  // namespace sluice::gpu
