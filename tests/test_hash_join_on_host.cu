// The device join of kernels/hash_join.cuh run through HostExec (the same __host__ __device__
// code the GPU runs, executed on the CPU), checked against a nested-loop reference that
// follows the order of the CPU backend's join_tables (src/cpu/join.cpp): left rows in order,
// each with its matching right rows in right row order, or (l, -1) in its place when it has
// none (left and full outer); then the right rows whose key occurs nowhere on the left,
// (-1, r) in right row order (right and full outer). A null key equals a null key.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "gpu_test_columns.cuh"
#include "hash_join.cuh"
#include "host_exec.cuh"

namespace sluice::gpu {
namespace {

constexpr JoinKind kAllKinds[] = {JoinKind::Inner, JoinKind::LeftOuter, JoinKind::RightOuter, JoinKind::FullOuter};

const char* kind_name(JoinKind k) {
  switch (k) {
    case JoinKind::Inner: return "inner";
    case JoinKind::LeftOuter: return "left outer";
    case JoinKind::RightOuter: return "right outer";
    default: return "full outer";
  }
}

/// Key equality as the CPU backend defines it, written independently of the kernel's.
bool same_key(const TestColumn& a, size_t ra, const TestColumn& b, size_t rb) {
  if (a.valid(ra) != b.valid(rb)) return false;
  if (!a.valid(ra)) return true;  // null equals null
  switch (a.type) {
    case kInt64: return a.i64[ra] == b.i64[rb];
    case kInt32: return a.i32[ra] == b.i32[rb];
    case kBool: return a.b[ra] == b.b[rb];
    case kFloat64: {
      const double x = a.f64[ra], y = b.f64[rb];
      return x == y || (std::isnan(x) && std::isnan(y));
    }
    default: return a.str(ra) == b.str(rb);
  }
}

using Keys = std::vector<TestColumn>;

struct Expected {
  std::vector<int64_t> left, right;
  size_t rows_with_left = 0;
};

/// Which right rows each left row matches, by a nested loop over both sides.
struct Matches {
  std::vector<std::vector<int64_t>> of_left;  // right rows in row order
  std::vector<bool> right_matched;
};

Matches nested_loop_matches(const Keys& left, size_t left_rows, const Keys& right, size_t right_rows) {
  Matches m;
  m.of_left.resize(left_rows);
  m.right_matched.assign(right_rows, false);
  for (size_t l = 0; l < left_rows; ++l) {
    for (size_t r = 0; r < right_rows; ++r) {
      bool equal = true;
      for (size_t k = 0; k < left.size() && equal; ++k) equal = same_key(left[k], l, right[k], r);
      if (!equal) continue;
      m.of_left[l].push_back(static_cast<int64_t>(r));
      m.right_matched[r] = true;
    }
  }
  return m;
}

/// The reference pairs in the order of join_tables: each left row's matches (or (l, -1) when
/// it has none and unmatched left rows are kept), then the unmatched right rows.
Expected reference_join(const Matches& m, JoinKind kind) {
  const bool keep_left = kind == JoinKind::LeftOuter || kind == JoinKind::FullOuter;
  const bool keep_right = kind == JoinKind::RightOuter || kind == JoinKind::FullOuter;
  Expected e;
  for (size_t l = 0; l < m.of_left.size(); ++l) {
    for (int64_t r : m.of_left[l]) {
      e.left.push_back(static_cast<int64_t>(l));
      e.right.push_back(r);
    }
    if (m.of_left[l].empty() && keep_left) {
      e.left.push_back(static_cast<int64_t>(l));
      e.right.push_back(-1);
    }
  }
  e.rows_with_left = e.left.size();
  if (keep_right) {
    for (size_t r = 0; r < m.right_matched.size(); ++r) {
      if (m.right_matched[r]) continue;
      e.left.push_back(-1);
      e.right.push_back(static_cast<int64_t>(r));
    }
  }
  return e;
}

std::vector<ColumnView> views(const Keys& keys) {
  std::vector<ColumnView> v;
  for (const TestColumn& c : keys) v.push_back(c.view());
  return v;
}

::testing::AssertionResult same_pairs(const Expected& want, const JoinPairs& got) {
  if (got.left_rows.size() != got.right_rows.size())
    return ::testing::AssertionFailure() << "left and right lists differ in length: " << got.left_rows.size() << " vs "
                                         << got.right_rows.size();
  if (got.left_rows.size() != want.left.size())
    return ::testing::AssertionFailure() << "expected " << want.left.size() << " pairs, got " << got.left_rows.size();
  for (size_t o = 0; o < want.left.size(); ++o) {
    if (got.left_rows[o] != want.left[o] || got.right_rows[o] != want.right[o])
      return ::testing::AssertionFailure() << "pair " << o << ": expected (" << want.left[o] << ", " << want.right[o]
                                           << "), got (" << got.left_rows[o] << ", " << got.right_rows[o] << ")";
  }
  if (got.rows_with_left != want.rows_with_left)
    return ::testing::AssertionFailure() << "rows_with_left: expected " << want.rows_with_left << ", got "
                                         << got.rows_with_left;
  return ::testing::AssertionSuccess();
}

/// Joins with every kind and compares with the reference; returns the collisions seen.
unsigned long long check_all_kinds(const Keys& left, size_t left_rows, const Keys& right, size_t right_rows,
                                   uint64_t hash_mask = ~uint64_t{0}) {
  HostExec exec;
  unsigned long long collisions = 0;
  const Matches matches = nested_loop_matches(left, left_rows, right, right_rows);
  for (JoinKind kind : kAllKinds) {
    SCOPED_TRACE(kind_name(kind));
    const Expected want = reference_join(matches, kind);
    const JoinPairs got = join_on_device(exec, views(left), left_rows, views(right), right_rows, kind, hash_mask);
    EXPECT_TRUE(same_pairs(want, got));
    if (hash_mask == ~uint64_t{0}) EXPECT_EQ(got.key_collisions, 0u);
    collisions += got.key_collisions;
  }
  return collisions;
}

// ---------------------------------------------------------------- fixed cases

TEST(HashJoinOnHost, OrderOfTheCpuBackendSpelledOut) {
  // left keys 1 2 1 3, right keys 2 1 4 1 2
  const Keys left{int64_column({1, 2, 1, 3})};
  const Keys right{int64_column({2, 1, 4, 1, 2})};
  HostExec exec;
  const JoinPairs inner = join_on_device(exec, views(left), 4, views(right), 5, JoinKind::Inner);
  EXPECT_TRUE(inner.exact_keys);
  EXPECT_EQ(inner.left_rows, (std::vector<int64_t>{0, 0, 1, 1, 2, 2}));
  EXPECT_EQ(inner.right_rows, (std::vector<int64_t>{1, 3, 0, 4, 1, 3}));
  const JoinPairs left_outer = join_on_device(exec, views(left), 4, views(right), 5, JoinKind::LeftOuter);
  EXPECT_EQ(left_outer.left_rows, (std::vector<int64_t>{0, 0, 1, 1, 2, 2, 3}));
  EXPECT_EQ(left_outer.right_rows, (std::vector<int64_t>{1, 3, 0, 4, 1, 3, -1}));
  EXPECT_EQ(left_outer.rows_with_left, 7u);
  const JoinPairs right_outer = join_on_device(exec, views(left), 4, views(right), 5, JoinKind::RightOuter);
  EXPECT_EQ(right_outer.left_rows, (std::vector<int64_t>{0, 0, 1, 1, 2, 2, -1}));
  EXPECT_EQ(right_outer.right_rows, (std::vector<int64_t>{1, 3, 0, 4, 1, 3, 2}));
  EXPECT_EQ(right_outer.rows_with_left, 6u);
  const JoinPairs full = join_on_device(exec, views(left), 4, views(right), 5, JoinKind::FullOuter);
  EXPECT_EQ(full.left_rows, (std::vector<int64_t>{0, 0, 1, 1, 2, 2, 3, -1}));
  EXPECT_EQ(full.right_rows, (std::vector<int64_t>{1, 3, 0, 4, 1, 3, -1, 2}));
  EXPECT_EQ(full.rows_with_left, 7u);
  check_all_kinds(left, 4, right, 5);
}

TEST(HashJoinOnHost, UnmatchedLeftRowsStayInPlaceAndRightOnlyRowsComeLast) {
  const Keys left{int64_column({7, 5, 8, 5, 9})};
  const Keys right{int64_column({6, 5, 10, 9, 6, 5})};
  HostExec exec;
  const JoinPairs full = join_on_device(exec, views(left), 5, views(right), 6, JoinKind::FullOuter);
  EXPECT_EQ(full.left_rows, (std::vector<int64_t>{0, 1, 1, 2, 3, 3, 4, -1, -1, -1}));
  EXPECT_EQ(full.right_rows, (std::vector<int64_t>{-1, 1, 5, -1, 1, 5, 3, 0, 2, 4}));
  check_all_kinds(left, 5, right, 6);
  // The pairs kept where they were found (for gathering the result there) are the same,
  // the right-only rows after the others, with no left row.
  for (JoinKind kind : {JoinKind::Inner, JoinKind::LeftOuter, JoinKind::RightOuter, JoinKind::FullOuter}) {
    DeviceJoinPairs<HostExec> kept;
    const JoinPairs pairs = join_on_device(exec, views(left), 5, views(right), 6, kind, ~uint64_t{0}, &kept);
    ASSERT_GE(kept.left_at.size(), pairs.left_rows.size());
    ASSERT_GE(kept.right_at.size(), pairs.right_rows.size());
    EXPECT_EQ(std::vector<int64_t>(kept.left_at.data(), kept.left_at.data() + pairs.left_rows.size()), pairs.left_rows);
    EXPECT_EQ(std::vector<int64_t>(kept.right_at.data(), kept.right_at.data() + pairs.right_rows.size()), pairs.right_rows);
  }
}

TEST(HashJoinOnHost, Int64ManyToMany) {
  const Keys left{int64_column({3, -1, 3, 42, 3, -1, std::numeric_limits<int64_t>::min(), 0})};
  const Keys right{int64_column({-1, 3, 0, 3, 99, -1, 3, std::numeric_limits<int64_t>::min(), 3})};
  check_all_kinds(left, 8, right, 9);
}

TEST(HashJoinOnHost, StringKeys) {
  const Keys left{string_column({"apple", "", "banana", "apple", "a longer key than eight bytes", "cherry", ""})};
  const Keys right{string_column({"banana", "apple", "a longer key than eight bytes", "", "durian", "apple", "a longer key"})};
  HostExec exec;
  const JoinPairs inner = join_on_device(exec, views(left), 7, views(right), 7, JoinKind::Inner);
  EXPECT_FALSE(inner.exact_keys);
  EXPECT_EQ(inner.left_rows, (std::vector<int64_t>{0, 0, 1, 2, 3, 3, 4, 6}));
  EXPECT_EQ(inner.right_rows, (std::vector<int64_t>{1, 5, 3, 0, 1, 5, 2, 3}));
  check_all_kinds(left, 7, right, 7);
}

TEST(HashJoinOnHost, TokenSpanStrings) {
  // The right side's strings are spans of one text (ends given), as tokenized words are.
  const Keys left{string_column({"to", "be", "or", "not"})};
  TestColumn right = string_column({"be ", "to  ", "xx", "be"});
  right.ends = {2, 5, 9, 11};  // "be", "to", "xx", "be"
  check_all_kinds(left, 4, Keys{right}, 4);
  HostExec exec;
  const JoinPairs inner = join_on_device(exec, views(left), 4, views(Keys{right}), 4, JoinKind::Inner);
  EXPECT_EQ(inner.left_rows, (std::vector<int64_t>{0, 1, 1}));
  EXPECT_EQ(inner.right_rows, (std::vector<int64_t>{1, 0, 3}));
}

TEST(HashJoinOnHost, TwoColumnKeysWithNullsWhereNullEqualsNull) {
  // (int64, string) keys; nulls in either field match nulls in the same field only.
  const Keys left{with_nulls(int64_column({1, 1, 0, 2, 0, 1, 3}), {2, 4}),
                  with_nulls(string_column({"x", "", "x", "y", "", "x", "z"}), {1, 4})};
  const Keys right{with_nulls(int64_column({0, 1, 1, 0, 2, 1, 3}), {0, 3}),
                   with_nulls(string_column({"", "x", "", "x", "y", "", "w"}), {0, 2, 5})};
  // left:  (1,x) (1,null) (null,x) (2,y) (null,null) (1,x) (3,z)
  // right: (null,null) (1,x) (1,null) (null,x) (2,y) (1,null) (3,w)
  HostExec exec;
  const JoinPairs full = join_on_device(exec, views(left), 7, views(right), 7, JoinKind::FullOuter);
  EXPECT_EQ(full.left_rows, (std::vector<int64_t>{0, 1, 1, 2, 3, 4, 5, 6, -1}));
  EXPECT_EQ(full.right_rows, (std::vector<int64_t>{1, 2, 5, 3, 4, 0, 1, -1, 6}));
  check_all_kinds(left, 7, right, 7);
}

TEST(HashJoinOnHost, NullableAgainstNonNullableColumns) {
  // The left column has no validity bitmap (it would be an exact integer key on its own); the
  // right one is nullable: both sides must hash alike.
  const Keys left{int64_column({5, 6, 7, 5})};
  const Keys right{with_nulls(int64_column({5, 0, 7, 6, 5}), {1})};
  check_all_kinds(left, 4, right, 5);
  const Keys right_all_valid{with_nulls(int64_column({5, 8, 7}), {})};
  check_all_kinds(left, 4, right_all_valid, 3);
  const Keys left_nulls{with_nulls(int64_column({0, 6, 0}), {0, 2})};
  check_all_kinds(left_nulls, 3, Keys{int64_column({6, 0})}, 2);  // 0 is not null
}

TEST(HashJoinOnHost, FloatingPointKeys) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const Keys left{float64_column({0.0, -0.0, nan, 1.5, -nan, 2.0})};
  const Keys right{float64_column({-0.0, nan, 1.5, 3.0, 0.0})};
  check_all_kinds(left, 6, right, 5);
  HostExec exec;
  const JoinPairs inner = join_on_device(exec, views(left), 6, views(right), 5, JoinKind::Inner);
  EXPECT_EQ(inner.left_rows, (std::vector<int64_t>{0, 0, 1, 1, 2, 3, 4}));
  EXPECT_EQ(inner.right_rows, (std::vector<int64_t>{0, 4, 0, 4, 1, 2, 1}));
}

TEST(HashJoinOnHost, Int32AndBoolKeys) {
  check_all_kinds(Keys{int32_column({4, -4, 4, 9})}, 4, Keys{int32_column({9, 4, 0, 4})}, 4);
  check_all_kinds(Keys{bool_column({1, 0, 1})}, 3, Keys{with_nulls(bool_column({0, 0, 1, 1}), {3})}, 4);
}

TEST(HashJoinOnHost, EmptySides) {
  const Keys some{int64_column({1, 2, 2})};
  const Keys none{int64_column({})};
  check_all_kinds(some, 3, none, 0);
  check_all_kinds(none, 0, some, 3);
  check_all_kinds(none, 0, none, 0);
  const Keys some_strings{string_column({"a", "b"})};
  const Keys no_strings{string_column({})};
  check_all_kinds(some_strings, 2, no_strings, 0);
  check_all_kinds(no_strings, 0, some_strings, 2);

  HostExec exec;
  const JoinPairs full = join_on_device(exec, views(none), 0, views(some), 3, JoinKind::FullOuter);
  EXPECT_EQ(full.left_rows, (std::vector<int64_t>{-1, -1, -1}));
  EXPECT_EQ(full.right_rows, (std::vector<int64_t>{0, 1, 2}));
  EXPECT_EQ(full.rows_with_left, 0u);
  const JoinPairs left_outer = join_on_device(exec, views(some), 3, views(none), 0, JoinKind::LeftOuter);
  EXPECT_EQ(left_outer.left_rows, (std::vector<int64_t>{0, 1, 2}));
  EXPECT_EQ(left_outer.right_rows, (std::vector<int64_t>{-1, -1, -1}));
  EXPECT_TRUE(join_on_device(exec, views(some), 3, views(none), 0, JoinKind::Inner).left_rows.empty());
}

TEST(HashJoinOnHost, NoMatches) {
  const Keys left{int64_column({1, 3, 5, 7})};
  const Keys right{int64_column({2, 4, 6})};
  check_all_kinds(left, 4, right, 3);
  HostExec exec;
  EXPECT_TRUE(join_on_device(exec, views(left), 4, views(right), 3, JoinKind::Inner).left_rows.empty());
  const JoinPairs full = join_on_device(exec, views(left), 4, views(right), 3, JoinKind::FullOuter);
  EXPECT_EQ(full.left_rows, (std::vector<int64_t>{0, 1, 2, 3, -1, -1, -1}));
  EXPECT_EQ(full.right_rows, (std::vector<int64_t>{-1, -1, -1, -1, 0, 1, 2}));
  check_all_kinds(Keys{string_column({"p", "q"})}, 2, Keys{string_column({"r"})}, 1);
}

// ---------------------------------------------------------------- collisions

TEST(HashJoinOnHost, ForcedHashCollisionsAreDroppedAndCounted) {
  // Only 2 bits of the 64-bit keys are kept: most candidates collide and must be dropped by
  // the key verification, leaving exactly the reference's pairs.
  std::mt19937_64 rng(11);
  std::uniform_int_distribution<int64_t> key(0, 40);
  std::vector<int64_t> l(300), r(250);
  for (auto& v : l) v = key(rng);
  for (auto& v : r) v = key(rng) + 10;
  const unsigned long long exact_ints = check_all_kinds(Keys{int64_column(l)}, l.size(), Keys{int64_column(r)}, r.size(), 0x3);
  EXPECT_GT(exact_ints, 0u);
  std::vector<std::string> ls, rs;
  for (auto v : l) ls.push_back("s" + std::to_string(v));
  for (auto v : r) rs.push_back("s" + std::to_string(v));
  EXPECT_GT(check_all_kinds(Keys{string_column(ls)}, ls.size(), Keys{string_column(rs)}, rs.size(), 0x1), 0u);
  // Everything collides: a mask of no bits.
  EXPECT_GT(check_all_kinds(Keys{string_column(ls)}, ls.size(), Keys{string_column(rs)}, rs.size(), 0), 0u);

  HostExec exec;
  const JoinPairs got = join_on_device(exec, views(Keys{int64_column({1, 2})}), 2, views(Keys{int64_column({2, 3, 1})}), 3,
                                       JoinKind::FullOuter, 0);
  EXPECT_FALSE(got.exact_keys);
  EXPECT_EQ(got.candidates, 6u);
  EXPECT_EQ(got.key_collisions, 4u);
  EXPECT_EQ(got.left_rows, (std::vector<int64_t>{0, 1, -1}));
  EXPECT_EQ(got.right_rows, (std::vector<int64_t>{2, 0, 1}));
}

// ---------------------------------------------------------------- random inputs

/// Random keys from a small domain (many-to-many), shifted on the right so that some keys
/// occur on one side only.
std::vector<int64_t> random_values(std::mt19937_64& rng, size_t n, int64_t lo, int64_t hi) {
  std::uniform_int_distribution<int64_t> d(lo, hi);
  std::vector<int64_t> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

std::vector<size_t> random_nulls(std::mt19937_64& rng, size_t n, double p) {
  std::bernoulli_distribution d(p);
  std::vector<size_t> rows;
  for (size_t r = 0; r < n; ++r)
    if (d(rng)) rows.push_back(r);
  return rows;
}

std::vector<std::string> spelled(const std::vector<int64_t>& v) {
  std::vector<std::string> out;
  for (int64_t x : v) out.push_back(x % 3 == 0 ? "key-" + std::to_string(x) + "-with-a-longer-tail" : std::to_string(x));
  return out;
}

class HashJoinRandom : public ::testing::TestWithParam<uint64_t> {};

TEST_P(HashJoinRandom, Int64KeysExact) {
  std::mt19937_64 rng(GetParam());
  const size_t L = 2000 + GetParam() % 500, R = 2500 - GetParam() % 300;
  const Keys left{int64_column(random_values(rng, L, 0, 700))};
  const Keys right{int64_column(random_values(rng, R, 350, 1100))};
  check_all_kinds(left, L, right, R);
}

TEST_P(HashJoinRandom, NullableInt64Keys) {
  std::mt19937_64 rng(GetParam() * 7 + 1);
  const size_t L = 3000, R = 2000;
  const Keys left{with_nulls(int64_column(random_values(rng, L, 0, 900)), random_nulls(rng, L, 0.03))};
  const Keys right{with_nulls(int64_column(random_values(rng, R, 450, 1300)), random_nulls(rng, R, 0.02))};
  check_all_kinds(left, L, right, R);
}

TEST_P(HashJoinRandom, StringKeys) {
  std::mt19937_64 rng(GetParam() * 13 + 5);
  const size_t L = 2200, R = 2600;
  const Keys left{with_nulls(string_column(spelled(random_values(rng, L, 0, 800))), random_nulls(rng, L, 0.01))};
  const Keys right{string_column(spelled(random_values(rng, R, 400, 1200)))};
  check_all_kinds(left, L, right, R);
}

TEST_P(HashJoinRandom, TwoColumnKeysWithNulls) {
  std::mt19937_64 rng(GetParam() * 31 + 3);
  const size_t L = 2500, R = 2500;
  const Keys left{with_nulls(int64_column(random_values(rng, L, 0, 30)), random_nulls(rng, L, 0.05)),
                  with_nulls(string_column(spelled(random_values(rng, L, 0, 25))), random_nulls(rng, L, 0.05))};
  const Keys right{with_nulls(int64_column(random_values(rng, R, 10, 40)), random_nulls(rng, R, 0.05)),
                   with_nulls(string_column(spelled(random_values(rng, R, 5, 30))), random_nulls(rng, R, 0.05))};
  check_all_kinds(left, L, right, R);
}

TEST_P(HashJoinRandom, FewBitsOfHashStillExact) {
  std::mt19937_64 rng(GetParam() * 101 + 9);
  const size_t L = 1500, R = 1200;
  const Keys left{with_nulls(int64_column(random_values(rng, L, 0, 400)), random_nulls(rng, L, 0.02))};
  const Keys right{int64_column(random_values(rng, R, 200, 600))};
  EXPECT_GT(check_all_kinds(left, L, right, R, 0xFF), 0u);
}

INSTANTIATE_TEST_SUITE_P(Seeds, HashJoinRandom, ::testing::Values(1u, 2u, 3u, 42u));

}  // namespace
}  // namespace sluice::gpu
