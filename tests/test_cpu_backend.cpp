// The CPU backend: grouping rows by key, keyed aggregation in its partial -> combine ->
// finalize steps, joins, cogroup and group_by_key. Exact expected results on hand-written
// tables, and random inputs checked against direct aggregation.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cstring>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <random>
#include <tuple>
#include <thread>
#include <unordered_map>

#include "column_buffers_of.hpp"
#include "cpu_delegating_backend.hpp"
#include "sluice/backend.hpp"

using namespace sluice;

namespace {

// ---------------------------------------------------------------- helpers

Value i(int64_t v) { return v; }
Value s(const char* v) { return std::string(v); }
Value d(double v) { return v; }
Value b(bool v) { return v; }
const Value null{};

Field field(std::string name, TypeId type, bool nullable = false) { return Field{std::move(name), type, nullable, {}}; }

/// A table of @p schema with @p rows (one Value per field).
Table make_table(const Schema& schema, const std::vector<std::vector<Value>>& rows) {
  std::vector<Column> columns;
  for (const auto& f : schema) columns.push_back(Column::make_for(f));
  for (const auto& row : rows) {
    EXPECT_EQ(row.size(), schema.size());
    for (size_t c = 0; c < schema.size(); ++c) columns[c].append_value(row[c]);
  }
  return Table(schema, std::move(columns));
}

std::vector<std::string> rows_of(const Table& t) {
  std::vector<std::string> out;
  for (size_t r = 0; r < t.num_rows(); ++r) out.push_back(t.row_json(r));
  return out;
}

std::vector<std::string> sorted_rows_of(const Table& t) {
  std::vector<std::string> out = rows_of(t);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> names_of(const Schema& schema) {
  std::vector<std::string> out;
  for (const auto& f : schema) out.push_back(f.name);
  return out;
}

Grouping group(const Table& t, std::vector<size_t> keys) { return group_rows(t, keys); }

/// The message of the sluice::Error that @p f throws (fails the test when it throws none).
template <class F> std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a sluice::Error";
  return "";
}

#define EXPECT_MENTIONS(message, part) EXPECT_NE((message).find(part), std::string::npos) << (message)

AggregateSpec agg(AggregateKind kind, std::string input, std::string output) {
  return AggregateSpec{kind, std::move(input), std::move(output)};
}

// ---------------------------------------------------------------- group_rows

TEST(GroupRows, Int64KeysInOrderOfFirstAppearance) {
  const Table t = make_table({field("k", TypeId::Int64)}, {{i(5)}, {i(3)}, {i(5)}, {i(7)}, {i(3)}});
  const Grouping g = group(t, {0});
  EXPECT_EQ(g.group_of_row, (std::vector<int32_t>{0, 1, 0, 2, 1}));
  EXPECT_EQ(g.first_row_of_group, (std::vector<int64_t>{0, 1, 3}));
}

TEST(GroupRows, NullableInt32KeysPutNullsInOneGroup) {
  const Table t = make_table({field("k", TypeId::Int32, true)}, {{null}, {i(1)}, {null}, {i(2)}, {i(1)}});
  const Grouping g = group(t, {0});
  EXPECT_EQ(g.group_of_row, (std::vector<int32_t>{0, 1, 0, 2, 1}));
  EXPECT_EQ(g.first_row_of_group, (std::vector<int64_t>{0, 1, 3}));
}

TEST(GroupRows, Int64KeysSpreadOverTheWholeRange) {
  const Table t = make_table({field("k", TypeId::Int64)},
                             {{i(INT64_MAX)}, {i(INT64_MIN)}, {i(0)}, {i(INT64_MAX)}, {i(INT64_MIN)}, {i(-1)}});
  const Grouping g = group(t, {0});
  EXPECT_EQ(g.group_of_row, (std::vector<int32_t>{0, 1, 2, 0, 1, 3}));
  EXPECT_EQ(g.first_row_of_group, (std::vector<int64_t>{0, 1, 2, 5}));
}

TEST(GroupRows, BoolKeys) {
  const Table t = make_table({field("k", TypeId::Bool)}, {{b(true)}, {b(false)}, {b(true)}});
  EXPECT_EQ(group(t, {0}).group_of_row, (std::vector<int32_t>{0, 1, 0}));
}

TEST(GroupRows, StringKeysWithEmptyAndNullStrings) {
  const Table t = make_table({field("k", TypeId::String, true)},
                             {{s("a")}, {s("")}, {s("b")}, {s("a")}, {null}, {s("")}, {null}});
  const Grouping g = group(t, {0});
  EXPECT_EQ(g.group_of_row, (std::vector<int32_t>{0, 1, 2, 0, 3, 1, 3}));
  EXPECT_EQ(g.first_row_of_group, (std::vector<int64_t>{0, 1, 2, 4}));
}

TEST(GroupRows, LongStringsThatDifferOnlyAtTheEnd) {
  const Table t = make_table({field("k", TypeId::String)}, {{s("abcdefghijklmnop1")},
                                                            {s("abcdefghijklmnop2")},
                                                            {s("abcdefghijklmnop1")},
                                                            {s("abcdefghijklmnop")},
                                                            {s("abc")},
                                                            {s("abd")}});
  EXPECT_EQ(group(t, {0}).group_of_row, (std::vector<int32_t>{0, 1, 0, 2, 3, 4}));
}

TEST(GroupRows, MultiColumnKeysWithNulls) {
  const Table t = make_table({field("n", TypeId::Int32, true), field("x", TypeId::Int64), field("w", TypeId::String, true)},
                             {{i(1), i(0), s("a")},
                              {i(1), i(0), s("b")},
                              {i(2), i(0), s("a")},
                              {i(1), i(9), s("a")},
                              {null, i(0), s("a")},
                              {null, i(0), s("a")},
                              {i(1), i(0), null},
                              {i(0), i(0), s("a")}});
  // Field 1 is not a key: rows 0 and 3 differ only there.
  const Grouping g = group(t, {0, 2});
  EXPECT_EQ(g.group_of_row, (std::vector<int32_t>{0, 1, 2, 0, 3, 3, 4, 5}));
  EXPECT_EQ(g.first_row_of_group, (std::vector<int64_t>{0, 1, 2, 4, 6, 7}));
  // Key columns in another order group alike.
  EXPECT_EQ(group(t, {2, 0}).group_of_row, g.group_of_row);
}

TEST(GroupRows, FloatKeysTreatSignedZerosAndNaNsAsEqual) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const Table t = make_table({field("k", TypeId::Float64, true)},
                             {{d(0.0)}, {d(-0.0)}, {d(nan)}, {d(-nan)}, {d(1.0)}, {null}, {null}, {d(1.0)}});
  const Grouping g = group(t, {0});
  EXPECT_EQ(g.group_of_row, (std::vector<int32_t>{0, 0, 1, 1, 2, 3, 3, 2}));
}

TEST(GroupRows, NoKeyColumnsIsOneGroup) {
  const Table t = make_table({field("v", TypeId::Int64)}, {{i(1)}, {i(2)}, {i(3)}});
  const Grouping g = group(t, {});
  EXPECT_EQ(g.group_of_row, (std::vector<int32_t>{0, 0, 0}));
  EXPECT_EQ(g.first_row_of_group, (std::vector<int64_t>{0}));
}

TEST(GroupRows, EmptyTable) {
  const Table t = Table::empty({field("k", TypeId::String)});
  const Grouping g = group(t, {0});
  EXPECT_TRUE(g.group_of_row.empty());
  EXPECT_TRUE(g.first_row_of_group.empty());
}

TEST(GroupRows, ListKeysAreAnError) {
  const Table t = Table::empty({Field{"l", TypeId::List, false, {field("x", TypeId::Int64)}}});
  EXPECT_MENTIONS(error_of([&] { group(t, {0}); }), "'l'");
}

/// group_rows against a reference grouping (a map from the key's JSON) on random keys.
void check_against_reference(const Table& t, const std::vector<size_t>& keys) {
  const Grouping g = group_rows(t, keys);
  std::unordered_map<std::string, int32_t> reference;
  std::vector<int64_t> first_rows;
  ASSERT_EQ(g.group_of_row.size(), t.num_rows());
  for (size_t r = 0; r < t.num_rows(); ++r) {
    std::string key;
    for (size_t k : keys) {
      t.column(k).append_json(r, key);
      key += '|';
    }
    auto [it, inserted] = reference.emplace(key, static_cast<int32_t>(reference.size()));
    if (inserted) first_rows.push_back(static_cast<int64_t>(r));
    ASSERT_EQ(g.group_of_row[r], it->second) << "row " << r << " key " << key;
  }
  EXPECT_EQ(g.first_row_of_group, first_rows);
}

TEST(GroupRows, RandomKeysMatchAReferenceGrouping) {
  std::mt19937_64 rng(42);
  const size_t rows = 300000;  // enough distinct keys to make the hash tables grow
  Column dense(TypeId::Int64), sparse(TypeId::Int64, true), narrow(TypeId::Int32), text(TypeId::String, true);
  for (size_t r = 0; r < rows; ++r) {
    dense.append<int64_t>(static_cast<int64_t>(rng() % 5000) - 2500);
    if (rng() % 50 == 0) sparse.append_null();
    else sparse.append<int64_t>(static_cast<int64_t>(rng() % 200000) * 1000003 * 7919);
    narrow.append<int32_t>(static_cast<int32_t>(rng() % 100));
    if (rng() % 50 == 0) text.append_null();
    else text.append_string("key-" + std::to_string(rng() % 150000));
  }
  const Table t({field("dense", TypeId::Int64), field("sparse", TypeId::Int64, true), field("narrow", TypeId::Int32),
                 field("text", TypeId::String, true)},
                {dense, sparse, narrow, text});
  check_against_reference(t, {0});
  check_against_reference(t, {1});
  check_against_reference(t, {2});
  check_against_reference(t, {3});
  check_against_reference(t, {2, 3});
  check_against_reference(t, {0, 2});
}

// ---------------------------------------------------------------- names

TEST(Names, AggregatesAndBackendsParseAndPrint) {
  for (auto k : {AggregateKind::Count, AggregateKind::Sum, AggregateKind::Min, AggregateKind::Max, AggregateKind::Mean})
    EXPECT_EQ(parse_aggregate(aggregate_name(k)), k);
  EXPECT_EQ(parse_aggregate("avg"), AggregateKind::Mean);
  EXPECT_MENTIONS(error_of([] { parse_aggregate("median"); }), "'median'");
  for (auto k : {BackendKind::Cpu, BackendKind::Cuda, BackendKind::Auto}) EXPECT_EQ(parse_backend(backend_name(k)), k);
  EXPECT_MENTIONS(error_of([] { parse_backend("tpu"); }), "'tpu'");
  const auto backend = make_cpu_backend();
  EXPECT_EQ(backend->kind(), BackendKind::Cpu);
  EXPECT_EQ(backend->name(), "cpu");
}

// ---------------------------------------------------------------- aggregation

const Schema kEvents{field("k", TypeId::String), field("x", TypeId::Int64, true), field("f", TypeId::Float64, true),
                     field("flag", TypeId::Bool)};

Table events() {
  return make_table(kEvents, {{s("a"), i(5), d(1.5), b(true)},
                              {s("b"), null, null, b(false)},
                              {s("a"), i(-2), null, b(true)},
                              {s("b"), null, d(2.5), b(true)},
                              {s("c"), i(7), d(-0.5), b(false)},
                              {s("a"), null, d(4.0), b(false)}});
}

KeyedAggregation every_aggregate() {
  return KeyedAggregation{{"k"},
                          {agg(AggregateKind::Count, "", "n"), agg(AggregateKind::Count, "x", "nx"),
                           agg(AggregateKind::Sum, "x", "sx"), agg(AggregateKind::Min, "x", "lo"),
                           agg(AggregateKind::Max, "x", "hi"), agg(AggregateKind::Mean, "x", "mx"),
                           agg(AggregateKind::Sum, "f", "sf"), agg(AggregateKind::Mean, "f", "mf"),
                           agg(AggregateKind::Min, "f", "lof"), agg(AggregateKind::Sum, "flag", "sb"),
                           agg(AggregateKind::Max, "flag", "hb")}};
}

TEST(Aggregate, PartialStateOfEveryAggregateWithNulls) {
  auto backend = make_cpu_backend();
  const KeyedAggregation plan = every_aggregate();
  const Table partial = backend->aggregate_partials(events(), plan);
  EXPECT_EQ(partial.schema(), plan.partial_schema(kEvents));
  EXPECT_EQ(names_of(partial.schema()),
            (std::vector<std::string>{"k", "n#count", "nx#count", "sx#sum", "lo#min", "hi#max", "mx#sum", "mx#count",
                                      "sf#sum", "mf#sum", "mf#count", "lof#min", "sb#sum", "hb#max", "#records"}));
  EXPECT_EQ(partial.schema()[3].type, TypeId::Int64);
  EXPECT_EQ(partial.schema()[4].type, TypeId::Int64);
  EXPECT_TRUE(partial.schema()[4].nullable);
  EXPECT_EQ(partial.schema()[8].type, TypeId::Float64);
  EXPECT_EQ(partial.schema()[12].type, TypeId::Int64);  // sum of bools
  EXPECT_EQ(partial.schema()[13].type, TypeId::Bool);   // max of bools
  EXPECT_EQ(rows_of(partial), (std::vector<std::string>{
                                  R"(["a",3,2,3,-2,5,3.0,2,5.5,5.5,2,1.5,2,true,3])",
                                  R"(["b",2,0,0,null,null,0.0,0,2.5,2.5,1,2.5,1,true,2])",
                                  R"(["c",1,1,7,7,7,7.0,1,-0.5,-0.5,1,-0.5,0,false,1])",
                              }));
}

TEST(Aggregate, FinalizedResultsOfEveryAggregateWithNulls) {
  auto backend = make_cpu_backend();
  const KeyedAggregation plan = every_aggregate();
  const Table result = backend->finalize(backend->aggregate_partials(events(), plan), plan);
  EXPECT_EQ(result.schema(), plan.result_schema(kEvents));
  EXPECT_EQ(names_of(result.schema()),
            (std::vector<std::string>{"k", "n", "nx", "sx", "lo", "hi", "mx", "sf", "mf", "lof", "sb", "hb"}));
  EXPECT_EQ(rows_of(result), (std::vector<std::string>{
                                 R"(["a",3,2,3,-2,5,1.5,5.5,2.75,1.5,2,true])",
                                 R"(["b",2,0,0,null,null,null,2.5,2.5,2.5,1,true])",
                                 R"(["c",1,1,7,7,7,7.0,-0.5,-0.5,-0.5,0,false])",
                             }));
}

TEST(Aggregate, ResultTypesFollowTheInputTypes) {
  const Schema input{field("k", TypeId::Int32), field("small", TypeId::Int32), field("single", TypeId::Float32)};
  const KeyedAggregation plan{{"k"},
                              {agg(AggregateKind::Sum, "small", "s1"), agg(AggregateKind::Min, "small", "m1"),
                               agg(AggregateKind::Sum, "single", "s2"), agg(AggregateKind::Max, "single", "m2"),
                               agg(AggregateKind::Mean, "small", "avg")}};
  const Schema result = plan.result_schema(input);
  EXPECT_EQ(result[0], field("k", TypeId::Int32));
  EXPECT_EQ(result[1], field("s1", TypeId::Int64));
  EXPECT_EQ(result[2], field("m1", TypeId::Int32, true));
  EXPECT_EQ(result[3], field("s2", TypeId::Float64));
  EXPECT_EQ(result[4], field("m2", TypeId::Float32, true));
  EXPECT_EQ(result[5], field("avg", TypeId::Float64, true));

  auto backend = make_cpu_backend();
  const Table t = make_table(input, {{i(1), i(2000000000), d(0.5)}, {i(1), i(2000000000), d(0.25)}, {i(2), i(-3), d(8)}});
  const Table out = backend->finalize(backend->aggregate_partials(t, plan), plan);
  EXPECT_EQ(out.schema(), result);
  EXPECT_EQ(rows_of(out), (std::vector<std::string>{"[1,4000000000,2000000000,0.75,0.5,2e+09]",
                                                    "[2,-3,-3,8.0,8.0,-3.0]"}));
}

TEST(Aggregate, IntegerSumsWrapOnOverflowLikeSparksLong) {
  auto backend = make_cpu_backend();
  const Schema input{field("k", TypeId::Int64), field("x", TypeId::Int64)};
  const KeyedAggregation plan{{"k"}, {agg(AggregateKind::Sum, "x", "total")}};
  const Table first = backend->aggregate_partials(make_table(input, {{i(1), i(INT64_MAX)}}), plan);
  const Table second = backend->aggregate_partials(make_table(input, {{i(1), i(1)}, {i(1), i(1)}}), plan);
  const Table* both[] = {&first, &second};
  const int plus[] = {+1, +1};
  const Table total = backend->combine_partials(both, plus, plan);
  EXPECT_EQ(rows_of(backend->finalize(total, plan)), (std::vector<std::string>{"[1," + std::to_string(INT64_MIN + 1) + "]"}));
  // Subtracting wraps back.
  const Table* leave[] = {&total, &second};
  const int minus[] = {+1, -1};
  EXPECT_EQ(rows_of(backend->finalize(backend->combine_partials(leave, minus, plan), plan)),
            (std::vector<std::string>{"[1," + std::to_string(INT64_MAX) + "]"}));
}

TEST(Aggregate, NaNIsAboveEveryNumberInMinAndMax) {
  auto backend = make_cpu_backend();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const Schema input{field("k", TypeId::Int64), field("f", TypeId::Float64)};
  const KeyedAggregation plan{{"k"}, {agg(AggregateKind::Min, "f", "lo"), agg(AggregateKind::Max, "f", "hi")}};
  const Table t = make_table(input, {{i(1), d(nan)}, {i(1), d(3.0)}, {i(1), d(-1.0)}, {i(2), d(nan)}, {i(3), d(2.0)}});
  const Table out = backend->finalize(backend->aggregate_partials(t, plan), plan);
  ASSERT_EQ(out.num_rows(), 3u);
  const auto lo = out.column("lo").values<double>();
  const auto hi = out.column("hi").values<double>();
  EXPECT_EQ(lo[0], -1.0);
  EXPECT_TRUE(std::isnan(hi[0]));
  EXPECT_TRUE(std::isnan(lo[1]));
  EXPECT_TRUE(std::isnan(hi[1]));
  EXPECT_EQ(lo[2], 2.0);
  EXPECT_EQ(hi[2], 2.0);
}

/// The bits of a double, to tell -0.0 from 0.0 and one NaN from another.
uint64_t bits_of(double v) {
  uint64_t b;
  std::memcpy(&b, &v, sizeof b);
  return b;
}

// Min and max do not depend on the order of rows: -0.0 is below 0.0, and every NaN comes out
// as the one quiet NaN, whatever its sign and payload (the GPU's atomics see rows in any order).
TEST(Aggregate, SignedZerosAndNaNPayloadsGiveTheSameMinAndMaxInAnyRowOrder) {
  auto backend = make_cpu_backend();
  double negative_nan, payload_nan;
  const uint64_t negative_nan_bits = 0xFFF8000000000001ULL, payload_nan_bits = 0x7FF00000DEADBEEFULL;
  std::memcpy(&negative_nan, &negative_nan_bits, sizeof negative_nan);
  std::memcpy(&payload_nan, &payload_nan_bits, sizeof payload_nan);
  const Schema input{field("k", TypeId::Int64), field("f", TypeId::Float64)};
  const KeyedAggregation plan{{"k"}, {agg(AggregateKind::Min, "f", "lo"), agg(AggregateKind::Max, "f", "hi")}};
  const std::vector<std::vector<double>> groups{{0.0, -0.0, 0.0}, {negative_nan, 1.0}, {payload_nan, negative_nan}};
  for (const bool reversed : {false, true}) {
    std::vector<std::vector<Value>> rows;
    for (size_t g = 0; g < groups.size(); ++g)
      for (double v : groups[g]) rows.push_back({i(static_cast<int64_t>(g)), d(v)});
    if (reversed) std::reverse(rows.begin(), rows.end());
    const Table out = backend->finalize(backend->aggregate_partials(make_table(input, rows), plan), plan);
    ASSERT_EQ(out.num_rows(), 3u);
    std::map<int64_t, std::pair<uint64_t, uint64_t>> got;  // key -> (min bits, max bits)
    for (size_t r = 0; r < out.num_rows(); ++r)
      got[out.column("k").values<int64_t>()[r]] = {bits_of(out.column("lo").values<double>()[r]),
                                                    bits_of(out.column("hi").values<double>()[r])};
    const uint64_t minus_zero = 0x8000000000000000ULL, quiet_nan = 0x7FF8000000000000ULL;
    SCOPED_TRACE(reversed ? "rows reversed" : "rows in order");
    EXPECT_EQ(got[0], std::make_pair(minus_zero, uint64_t{0}));
    EXPECT_EQ(got[1], std::make_pair(bits_of(1.0), quiet_nan));
    EXPECT_EQ(got[2], std::make_pair(quiet_nan, quiet_nan));
  }
}

TEST(Aggregate, EmptyInputGivesEmptyPartialsWithTheSchema) {
  auto backend = make_cpu_backend();
  const KeyedAggregation plan = every_aggregate();
  const Table partial = backend->aggregate_partials(Table::empty(kEvents), plan);
  EXPECT_EQ(partial.num_rows(), 0u);
  EXPECT_EQ(partial.schema(), plan.partial_schema(kEvents));
  const Table result = backend->finalize(partial, plan);
  EXPECT_EQ(result.num_rows(), 0u);
  EXPECT_EQ(result.schema(), plan.result_schema(kEvents));
}

TEST(Aggregate, MultiColumnAndNullKeys) {
  auto backend = make_cpu_backend();
  const Schema input{field("a", TypeId::String, true), field("b", TypeId::Int32, true), field("x", TypeId::Int64)};
  const KeyedAggregation plan{{"b", "a"}, {agg(AggregateKind::Sum, "x", "total")}};
  const Table t = make_table(input, {{s("p"), i(1), i(1)},
                                     {null, i(1), i(2)},
                                     {s("p"), null, i(4)},
                                     {s("p"), i(1), i(8)},
                                     {null, i(1), i(16)},
                                     {null, null, i(32)}});
  EXPECT_EQ(rows_of(backend->finalize(backend->aggregate_partials(t, plan), plan)),
            (std::vector<std::string>{"[1,\"p\",9]", "[1,null,18]", "[null,\"p\",4]", "[null,null,32]"}));
}

TEST(Aggregate, PlanErrorsNameTheField) {
  EXPECT_MENTIONS(error_of([] { KeyedAggregation{{"nokey"}, {}}.partial_schema(kEvents); }), "'nokey'");
  const std::string sum_of_string =
      error_of([] { KeyedAggregation{{"flag"}, {agg(AggregateKind::Sum, "k", "total")}}.result_schema(kEvents); });
  EXPECT_MENTIONS(sum_of_string, "'k'");
  EXPECT_MENTIONS(sum_of_string, "string");
  EXPECT_MENTIONS(sum_of_string, "'total'");
  EXPECT_MENTIONS(error_of([] { KeyedAggregation{{"k"}, {agg(AggregateKind::Max, "missing", "m")}}.partial_schema(kEvents); }),
                  "'missing'");
  EXPECT_MENTIONS(error_of([] { KeyedAggregation{{"k"}, {agg(AggregateKind::Count, "", "k")}}.partial_schema(kEvents); }),
                  "'k'");
  // Count works on any field, strings included.
  EXPECT_NO_THROW((KeyedAggregation{{"flag"}, {agg(AggregateKind::Count, "k", "n")}}.partial_schema(kEvents)));
}

TEST(Aggregate, InvertibleOnlyWithCountSumAndMean) {
  EXPECT_TRUE((KeyedAggregation{{"k"}, {agg(AggregateKind::Count, "", "n"), agg(AggregateKind::Sum, "x", "s"),
                                        agg(AggregateKind::Mean, "x", "m")}}
                   .invertible()));
  EXPECT_FALSE((KeyedAggregation{{"k"}, {agg(AggregateKind::Sum, "x", "s"), agg(AggregateKind::Min, "x", "m")}}.invertible()));
}

// ---------------------------------------------------------------- combine

TEST(Combine, KeysLeaveWhenTheirRecordsReachZero) {
  auto backend = make_cpu_backend();
  const Schema input{field("k", TypeId::String), field("x", TypeId::Int64)};
  const KeyedAggregation plan{{"k"}, {agg(AggregateKind::Count, "", "n"), agg(AggregateKind::Sum, "x", "total")}};
  const Table first = backend->aggregate_partials(make_table(input, {{s("a"), i(1)}, {s("a"), i(2)}, {s("b"), i(3)}}), plan);
  const Table second = backend->aggregate_partials(make_table(input, {{s("b"), i(10)}, {s("c"), i(20)}}), plan);
  const Table* both[] = {&first, &second};
  const int plus[] = {+1, +1};
  const Table window = backend->combine_partials(both, plus, plan);
  EXPECT_EQ(rows_of(window), (std::vector<std::string>{R"(["a",2,3,2])", R"(["b",2,13,2])", R"(["c",1,20,1])"}));

  const Table* first_leaves[] = {&window, &first};
  const int minus[] = {+1, -1};
  const Table after = backend->combine_partials(first_leaves, minus, plan);
  EXPECT_EQ(rows_of(after), (std::vector<std::string>{R"(["b",1,10,1])", R"(["c",1,20,1])"}));
  EXPECT_EQ(after.schema(), plan.partial_schema(input));

  const Table* second_leaves[] = {&after, &second};
  const Table nothing = backend->combine_partials(second_leaves, minus, plan);
  EXPECT_EQ(nothing.num_rows(), 0u);
  EXPECT_EQ(nothing.schema(), plan.partial_schema(input));
}

TEST(Combine, KeepsTheFirstTablesRowsInPlaceAndAppendsNewKeys) {
  // update_state_by_key relies on it: state row i stays row i after a batch is combined in.
  auto backend = make_cpu_backend();
  const Schema input{field("k", TypeId::Int64), field("x", TypeId::Int64)};
  const KeyedAggregation plan{{"k"}, {agg(AggregateKind::Max, "x", "hi")}};
  const Table state = backend->aggregate_partials(make_table(input, {{i(30), i(1)}, {i(10), i(1)}, {i(20), i(1)}}), plan);
  const Table batch = backend->aggregate_partials(make_table(input, {{i(40), i(5)}, {i(20), i(5)}, {i(50), i(5)}}), plan);
  const Table* parts[] = {&state, &batch};
  const int plus[] = {+1, +1};
  EXPECT_EQ(rows_of(backend->combine_partials(parts, plus, plan)),
            (std::vector<std::string>{"[30,1,1]", "[10,1,1]", "[20,5,2]", "[40,5,1]", "[50,5,1]"}));
}

TEST(Combine, SubtractingFromANonInvertiblePlanIsAnError) {
  auto backend = make_cpu_backend();
  const Schema input{field("k", TypeId::Int64), field("x", TypeId::Int64)};
  const KeyedAggregation plan{{"k"}, {agg(AggregateKind::Sum, "x", "total"), agg(AggregateKind::Min, "x", "lowest")}};
  const Table p = backend->aggregate_partials(make_table(input, {{i(1), i(1)}}), plan);
  const Table* parts[] = {&p, &p};
  const int minus[] = {+1, -1};
  const std::string message = error_of([&] { backend->combine_partials(parts, minus, plan); });
  EXPECT_MENTIONS(message, "'lowest'");
  EXPECT_MENTIONS(message, "min");
}

TEST(Combine, PartialsOfAnotherPlanAreAnErrorNamingTheField) {
  auto backend = make_cpu_backend();
  const Schema input{field("k", TypeId::Int64), field("x", TypeId::Int64)};
  const KeyedAggregation sum_plan{{"k"}, {agg(AggregateKind::Sum, "x", "total")}};
  const KeyedAggregation max_plan{{"k"}, {agg(AggregateKind::Max, "x", "total")}};
  const Table p = backend->aggregate_partials(make_table(input, {{i(1), i(1)}}), sum_plan);
  const Table* parts[] = {&p};
  const int plus[] = {+1};
  EXPECT_MENTIONS(error_of([&] { backend->combine_partials(parts, plus, max_plan); }), "'total#sum'");
  EXPECT_MENTIONS(error_of([&] { backend->finalize(p, max_plan); }), "'total#max'");
  const int bad_sign[] = {+2};
  EXPECT_MENTIONS(error_of([&] { backend->combine_partials(parts, bad_sign, sum_plan); }), "sign 2");
}

// Random batches: partials of each, combined with signs, finalized, must equal direct
// aggregation of the concatenated input. Floating point values are multiples of 1/4, so sums
// are exact in any order and results can be compared exactly.
enum class KeyShape { DenseInt, SparseInt, String, MultiColumn };

Schema random_schema(KeyShape shape) {
  std::vector<Field> fields;
  switch (shape) {
    case KeyShape::DenseInt: fields.push_back(field("k", TypeId::Int64, true)); break;
    case KeyShape::SparseInt: fields.push_back(field("k", TypeId::Int64)); break;
    case KeyShape::String: fields.push_back(field("k", TypeId::String, true)); break;
    case KeyShape::MultiColumn:
      fields.push_back(field("k", TypeId::Int32));
      fields.push_back(field("k2", TypeId::String, true));
      break;
  }
  fields.push_back(field("x", TypeId::Int64, true));
  fields.push_back(field("f", TypeId::Float64, true));
  fields.push_back(field("small", TypeId::Int32));
  return Schema(fields);
}

Table random_batch(std::mt19937_64& rng, KeyShape shape, size_t rows) {
  const Schema schema = random_schema(shape);
  std::vector<Column> columns;
  for (const auto& f : schema) columns.push_back(Column::make_for(f));
  auto pick = [&](uint64_t n) { return static_cast<int64_t>(rng() % n); };
  for (size_t r = 0; r < rows; ++r) {
    size_t c = 0;
    switch (shape) {
      case KeyShape::DenseInt:
        if (pick(40) == 0) columns[c++].append_null();
        else columns[c++].append<int64_t>(pick(60));
        break;
      case KeyShape::SparseInt: columns[c++].append<int64_t>((pick(80) - 40) * 1000000007LL * 99991LL); break;
      case KeyShape::String:
        if (pick(40) == 0) columns[c++].append_null();
        else columns[c++].append_string(pick(5) == 0 ? "" : "word-" + std::to_string(pick(70)));
        break;
      case KeyShape::MultiColumn:
        columns[c++].append<int32_t>(static_cast<int32_t>(pick(6)));
        if (pick(10) == 0) columns[c++].append_null();
        else columns[c++].append_string(std::string(1, static_cast<char>('a' + pick(8))));
        break;
    }
    if (pick(8) == 0) columns[c++].append_null();
    else columns[c++].append<int64_t>(pick(2001) - 1000);
    if (pick(8) == 0) columns[c++].append_null();
    else columns[c++].append<double>(static_cast<double>(pick(4001) - 2000) / 4.0);
    columns[c++].append<int32_t>(static_cast<int32_t>(pick(200) - 100));
  }
  return Table(schema, std::move(columns));
}

std::vector<std::string> keys_of(KeyShape shape) {
  return shape == KeyShape::MultiColumn ? std::vector<std::string>{"k", "k2"} : std::vector<std::string>{"k"};
}

KeyedAggregation random_plan(KeyShape shape, bool invertible) {
  KeyedAggregation plan{keys_of(shape),
                        {agg(AggregateKind::Count, "", "n"), agg(AggregateKind::Count, "x", "nx"),
                         agg(AggregateKind::Sum, "x", "sx"), agg(AggregateKind::Mean, "x", "mx"),
                         agg(AggregateKind::Sum, "f", "sf"), agg(AggregateKind::Mean, "f", "mf"),
                         agg(AggregateKind::Sum, "small", "ss")}};
  if (!invertible) {
    for (const char* input : {"x", "f", "small"}) {
      plan.aggregates.push_back(agg(AggregateKind::Min, input, std::string("min_") + input));
      plan.aggregates.push_back(agg(AggregateKind::Max, input, std::string("max_") + input));
    }
  }
  return plan;
}

class CombineRandom : public ::testing::TestWithParam<std::tuple<KeyShape, uint64_t>> {};

TEST_P(CombineRandom, PartialsCombinedEqualDirectAggregation) {
  const auto [shape, seed] = GetParam();
  std::mt19937_64 rng(seed);
  auto backend = make_cpu_backend();
  std::vector<Table> batches;
  for (size_t n : {size_t{700}, size_t{0}, size_t{1500}, size_t{300}}) batches.push_back(random_batch(rng, shape, n));
  const Table all = Table::concat(batches);

  for (bool invertible : {true, false}) {
    SCOPED_TRACE(invertible ? "invertible plan" : "plan with min and max");
    const KeyedAggregation plan = random_plan(shape, invertible);
    std::vector<Table> partials;
    for (const auto& batch : batches) partials.push_back(backend->aggregate_partials(batch, plan));
    const Table direct_partial = backend->aggregate_partials(all, plan);
    const Table direct = backend->finalize(direct_partial, plan);

    std::vector<const Table*> ptrs;
    for (const auto& p : partials) ptrs.push_back(&p);
    const std::vector<int> plus(ptrs.size(), +1);
    const Table combined = backend->combine_partials(ptrs, plus, plan);
    const Table result = backend->finalize(combined, plan);
    EXPECT_EQ(sorted_rows_of(result), sorted_rows_of(direct));
    // Stronger: rows come in the order of first appearance, and partial states agree too.
    EXPECT_EQ(rows_of(result), rows_of(direct));
    EXPECT_TRUE(combined == direct_partial);
    EXPECT_EQ(result.schema(), plan.result_schema(all.schema()));

    // Combining step by step gives the same.
    Table running = partials[0];
    for (size_t t = 1; t < partials.size(); ++t) {
      const Table* pair[] = {&running, &partials[t]};
      const int signs[] = {+1, +1};
      running = backend->combine_partials(pair, signs, plan);
    }
    EXPECT_EQ(rows_of(backend->finalize(running, plan)), rows_of(direct));

    if (!invertible) continue;
    // Subtracting the first and the last batch leaves the middle ones.
    const Table* leaving[] = {&combined, &partials.front(), &partials.back()};
    const int signs[] = {+1, -1, -1};
    const Table middle = backend->finalize(backend->combine_partials(leaving, signs, plan), plan);
    const Table* middle_batches[] = {&batches[1], &batches[2]};
    const Table expected = backend->finalize(backend->aggregate_partials(Table::concat(middle_batches), plan), plan);
    EXPECT_EQ(sorted_rows_of(middle), sorted_rows_of(expected));
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, CombineRandom,
                         ::testing::Combine(::testing::Values(KeyShape::DenseInt, KeyShape::SparseInt, KeyShape::String,
                                                             KeyShape::MultiColumn),
                                            ::testing::Values(uint64_t{1}, uint64_t{2}, uint64_t{3}, uint64_t{4})));

// ---------------------------------------------------------------- joins

const Schema kLeft{field("k", TypeId::String), field("a", TypeId::Int64)};
const Schema kRight{field("key", TypeId::String), field("b", TypeId::String)};

Table left_table() { return make_table(kLeft, {{s("a"), i(1)}, {s("b"), i(2)}, {s("a"), i(3)}, {s("d"), i(4)}}); }
Table right_table() { return make_table(kRight, {{s("a"), s("x")}, {s("c"), s("y")}, {s("a"), s("z")}, {s("b"), s("w")}}); }

Table join(const Table& l, std::vector<size_t> lk, const Table& r, std::vector<size_t> rk, JoinKind kind) {
  return join_tables(l, lk, r, rk, kind);
}

TEST(Join, Inner) {
  const Table out = join(left_table(), {0}, right_table(), {0}, JoinKind::Inner);
  EXPECT_EQ(out.schema(), (Schema{field("k", TypeId::String), field("a", TypeId::Int64), field("b", TypeId::String)}));
  EXPECT_EQ(rows_of(out), (std::vector<std::string>{R"(["a",1,"x"])", R"(["a",1,"z"])", R"(["b",2,"w"])",
                                                    R"(["a",3,"x"])", R"(["a",3,"z"])"}));
}

TEST(Join, LeftOuter) {
  const Table out = join(left_table(), {0}, right_table(), {0}, JoinKind::LeftOuter);
  EXPECT_EQ(out.schema(), (Schema{field("k", TypeId::String), field("a", TypeId::Int64), field("b", TypeId::String, true)}));
  EXPECT_EQ(rows_of(out), (std::vector<std::string>{R"(["a",1,"x"])", R"(["a",1,"z"])", R"(["b",2,"w"])",
                                                    R"(["a",3,"x"])", R"(["a",3,"z"])", R"(["d",4,null])"}));
}

TEST(Join, RightOuter) {
  const Table out = join(left_table(), {0}, right_table(), {0}, JoinKind::RightOuter);
  EXPECT_EQ(out.schema(), (Schema{field("k", TypeId::String), field("a", TypeId::Int64, true), field("b", TypeId::String)}));
  EXPECT_EQ(rows_of(out), (std::vector<std::string>{R"(["a",1,"x"])", R"(["a",1,"z"])", R"(["b",2,"w"])",
                                                    R"(["a",3,"x"])", R"(["a",3,"z"])", R"(["c",null,"y"])"}));
}

TEST(Join, FullOuter) {
  const Table out = join(left_table(), {0}, right_table(), {0}, JoinKind::FullOuter);
  EXPECT_EQ(out.schema(),
            (Schema{field("k", TypeId::String), field("a", TypeId::Int64, true), field("b", TypeId::String, true)}));
  EXPECT_EQ(rows_of(out),
            (std::vector<std::string>{R"(["a",1,"x"])", R"(["a",1,"z"])", R"(["b",2,"w"])", R"(["a",3,"x"])",
                                      R"(["a",3,"z"])", R"(["d",4,null])", R"(["c",null,"y"])"}));
}

TEST(Join, EmptySidesGiveTheSchemaAndTheOuterRows) {
  const Table empty_right = Table::empty(kRight);
  EXPECT_EQ(join(left_table(), {0}, empty_right, {0}, JoinKind::Inner).num_rows(), 0u);
  EXPECT_EQ(rows_of(join(left_table(), {0}, empty_right, {0}, JoinKind::FullOuter)),
            (std::vector<std::string>{R"(["a",1,null])", R"(["b",2,null])", R"(["a",3,null])", R"(["d",4,null])"}));
  EXPECT_EQ(rows_of(join(Table::empty(kLeft), {0}, right_table(), {0}, JoinKind::RightOuter)),
            (std::vector<std::string>{R"(["a",null,"x"])", R"(["c",null,"y"])", R"(["a",null,"z"])", R"(["b",null,"w"])"}));
  // Schemas come out of empty tables alone (streams declare them so).
  for (auto kind : {JoinKind::Inner, JoinKind::LeftOuter, JoinKind::RightOuter, JoinKind::FullOuter})
    EXPECT_EQ(join(Table::empty(kLeft), {0}, empty_right, {0}, kind).schema(),
              join(left_table(), {0}, right_table(), {0}, kind).schema());
}

TEST(Join, NullKeysMatchNullKeys) {
  const Table l = make_table({field("k", TypeId::Int64, true), field("v", TypeId::String)}, {{null, s("p")}, {i(1), s("q")}});
  const Table r = make_table({field("k", TypeId::Int64), field("w", TypeId::Int64, true)}, {{i(2), i(20)}, {i(1), null}});
  const Table r_with_null =
      make_table({field("k", TypeId::Int64, true), field("w", TypeId::Int64)}, {{null, i(10)}, {i(2), i(20)}});
  EXPECT_EQ(rows_of(join(l, {0}, r_with_null, {0}, JoinKind::Inner)), (std::vector<std::string>{R"([null,"p",10])"}));
  EXPECT_EQ(rows_of(join(l, {0}, r_with_null, {0}, JoinKind::FullOuter)),
            (std::vector<std::string>{R"([null,"p",10])", R"([1,"q",null])", R"([2,null,20])"}));
  // A right value that is null itself stays null in an inner join.
  const Table inner = join(l, {0}, r, {0}, JoinKind::Inner);
  EXPECT_EQ(rows_of(inner), (std::vector<std::string>{R"([1,"q",null])"}));
  EXPECT_TRUE(inner.schema()[2].nullable);
}

// A right-only row's null key in a key column that was not nullable on the left: the key
// column is made nullable after the left rows, and the null appended then must read as null.
TEST(Join, ARightOnlyNullKeyAfterANonNullableLeftKeyIsNull) {
  const Table l = make_table({field("k", TypeId::Int64), field("v", TypeId::String)}, {{i(1), s("p")}, {i(2), s("q")}, {i(3), s("r")}});
  const Table r = make_table({field("k", TypeId::Int64, true), field("w", TypeId::Int64)}, {{null, i(10)}, {i(2), i(20)}, {null, i(30)}});
  const Table out = join(l, {0}, r, {0}, JoinKind::FullOuter);
  EXPECT_TRUE(out.schema()[0].nullable);
  EXPECT_EQ(rows_of(out), (std::vector<std::string>{R"([1,"p",null])", R"([2,"q",20])", R"([3,"r",null])",
                                                    R"([null,null,10])", R"([null,null,30])"}));
}

TEST(Join, MultiColumnKeysInAnyFieldOrder) {
  const Table l = make_table({field("n", TypeId::Int32), field("w", TypeId::String), field("v", TypeId::Int64)},
                             {{i(1), s("x"), i(10)}, {i(1), s("y"), i(20)}, {i(2), s("x"), i(30)}});
  const Table r = make_table({field("flag", TypeId::Bool), field("word", TypeId::String), field("num", TypeId::Int32)},
                             {{b(true), s("x"), i(2)}, {b(false), s("x"), i(1)}, {b(true), s("z"), i(1)}});
  const Table out = join(l, {0, 1}, r, {2, 1}, JoinKind::LeftOuter);
  EXPECT_EQ(names_of(out.schema()), (std::vector<std::string>{"n", "w", "v", "flag"}));
  EXPECT_EQ(rows_of(out),
            (std::vector<std::string>{R"([1,"x",10,false])", R"([1,"y",20,null])", R"([2,"x",30,true])"}));
}

TEST(Join, FieldNamesThatCollideGetASuffix) {
  const Schema schema{field("k", TypeId::Int64), field("v", TypeId::Int64)};
  const Table l = make_table(schema, {{i(1), i(10)}});
  const Table r = make_table(schema, {{i(1), i(20)}});
  const Table out = join(l, {0}, r, {0}, JoinKind::Inner);
  EXPECT_EQ(names_of(out.schema()), (std::vector<std::string>{"k", "v", "v_right"}));
  EXPECT_EQ(rows_of(out), (std::vector<std::string>{"[1,10,20]"}));
}

TEST(Join, KeyErrorsNameBothFieldsAndTypes) {
  const Table r = make_table({field("id", TypeId::Int64), field("b", TypeId::String)}, {});
  const std::string message = error_of([&] { join(left_table(), {0}, r, {0}, JoinKind::Inner); });
  EXPECT_MENTIONS(message, "'k'");
  EXPECT_MENTIONS(message, "string");
  EXPECT_MENTIONS(message, "'id'");
  EXPECT_MENTIONS(message, "int64");
  EXPECT_MENTIONS(error_of([&] { join(left_table(), {0, 1}, right_table(), {0}, JoinKind::Inner); }), "2 left key fields");
  EXPECT_MENTIONS(error_of([&] { join(left_table(), {7}, right_table(), {0}, JoinKind::Inner); }), "out of range");
  EXPECT_MENTIONS(error_of([&] { cogroup_tables(left_table(), std::vector<size_t>{0}, r, std::vector<size_t>{0}); }), "'id'");
}

// ---------------------------------------------------------------- cogroup, group_by_key

TEST(Cogroup, OneRowPerKeyOfEitherSideWithBothLists) {
  const Table out = cogroup_tables(left_table(), std::vector<size_t>{0}, right_table(), std::vector<size_t>{0});
  ASSERT_EQ(out.num_columns(), 3u);
  EXPECT_EQ(names_of(out.schema()), (std::vector<std::string>{"k", "left", "right"}));
  EXPECT_EQ(out.schema()[1].type, TypeId::List);
  EXPECT_EQ(out.schema()[1].children, (std::vector<Field>{field("a", TypeId::Int64)}));
  EXPECT_EQ(out.schema()[2].children, (std::vector<Field>{field("b", TypeId::String)}));
  EXPECT_EQ(rows_of(out), (std::vector<std::string>{R"(["a",[1,3],["x","z"]])", R"(["b",[2],["w"]])",
                                                    R"(["d",[4],[]])", R"(["c",[],["y"]])"}));
  EXPECT_EQ(cogroup_tables(Table::empty(kLeft), std::vector<size_t>{0}, Table::empty(kRight), std::vector<size_t>{0}).schema(),
            out.schema());
}

TEST(GroupByKey, ListsOfTheOtherFieldsInRowOrder) {
  const Schema schema{field("v", TypeId::Int64), field("k", TypeId::String), field("w", TypeId::String, true)};
  const Table t = make_table(schema, {{i(1), s("a"), s("p")}, {i(2), s("b"), null}, {i(3), s("a"), s("q")}});
  const Table out = group_by_key_table(t, std::vector<size_t>{1});
  EXPECT_EQ(names_of(out.schema()), (std::vector<std::string>{"k", "values"}));
  EXPECT_EQ(out.schema()[1].children, (std::vector<Field>{field("v", TypeId::Int64), field("w", TypeId::String, true)}));
  EXPECT_EQ(rows_of(out), (std::vector<std::string>{R"(["a",[[1,"p"],[3,"q"]]])", R"(["b",[[2,null]]])"}));
  EXPECT_EQ(group_by_key_table(Table::empty(schema), std::vector<size_t>{1}).schema(), out.schema());
}

TEST(GroupByKey, AKeysOnlyTableHasEmptyListsThatStayEmpty) {
  const Schema schema{field("k", TypeId::String)};
  const Table t = make_table(schema, {{s("a")}, {s("b")}, {s("a")}});
  const Table out = group_by_key_table(t, std::vector<size_t>{0});
  EXPECT_EQ(rows_of(out), (std::vector<std::string>{R"(["a",[]])", R"(["b",[]])"}));
  EXPECT_EQ(rows_of(out.gather(std::vector<int64_t>{1, 0})), (std::vector<std::string>{R"(["b",[]])", R"(["a",[]])"}));
  EXPECT_EQ(rows_of(cogroup_tables(t, std::vector<size_t>{0}, t, std::vector<size_t>{0})),
            (std::vector<std::string>{R"(["a",[],[]])", R"(["b",[],[]])"}));
}

/// A CPU backend that makes group_by_key's and cogroup's lists itself (group_lists), the way
/// the CUDA backend does for device batches, and counts how the grouping was asked for.
class ListsMakingBackend : public CpuDelegatingBackend {
 public:
  int group_lists_calls = 0;
  int group_rows_calls = 0;

  std::string_view name() const override { return "lists-making"; }

  std::optional<GroupedLists> group_lists(const Table& keys, std::span<const size_t> key_columns,
                                          std::span<const ListSide> sides) override {
    ++group_lists_calls;
    const Grouping g = sluice::group_rows(keys, key_columns);
    GroupedLists out;
    out.first_row_of_group = g.first_row_of_group;
    const size_t groups = g.first_row_of_group.size();
    for (const ListSide& side : sides) {
      std::vector<int64_t> rows;  // the side's rows, group by group, in row order within one
      std::vector<int32_t>& offsets = out.list_offsets.emplace_back(1, 0);
      for (size_t group = 0; group < groups; ++group) {
        for (size_t r = 0; r < side.table->num_rows(); ++r)
          if (static_cast<size_t>(g.group_of_row[side.first_row + r]) == group) rows.push_back(static_cast<int64_t>(r));
        offsets.push_back(static_cast<int32_t>(rows.size()));
      }
      std::vector<Column>& elements = out.elements.emplace_back();
      for (size_t f : side.fields) elements.push_back(side.table->column(f).gather(rows));
    }
    return out;
  }
  Grouping group_rows(const Table& table, std::span<const size_t> key_columns) override {
    ++group_rows_calls;
    return sluice::group_rows(table, key_columns);
  }
};

// A backend that makes the lists itself (group_lists) gives the tables the host makes from
// group_rows, bit for bit: keys by first appearance, lists in row order, nullable fields.
TEST(GroupByKey, ABackendsOwnListsGiveTheSameTables) {
  const Schema schema{field("v", TypeId::Int64), field("k", TypeId::String), field("w", TypeId::String, true)};
  const Table t = make_table(schema, {{i(1), s("a"), s("p")}, {i(2), s("b"), null}, {i(3), s("a"), s("q")}, {i(4), s("c"), s("r")}});
  ListsMakingBackend backend;
  EXPECT_EQ(group_by_key_table(t, std::vector<size_t>{1}, &backend), group_by_key_table(t, std::vector<size_t>{1}));
  EXPECT_EQ(cogroup_tables(left_table(), std::vector<size_t>{0}, right_table(), std::vector<size_t>{0}, &backend),
            cogroup_tables(left_table(), std::vector<size_t>{0}, right_table(), std::vector<size_t>{0}));
  EXPECT_EQ(rows_of(cogroup_tables(left_table(), std::vector<size_t>{0}, right_table(), std::vector<size_t>{0}, &backend)),
            (std::vector<std::string>{R"(["a",[1,3],["x","z"]])", R"(["b",[2],["w"]])", R"(["d",[4],[]])", R"(["c",[],["y"]])"}));
  EXPECT_EQ(backend.group_lists_calls, 3);
  EXPECT_EQ(backend.group_rows_calls, 0);  // the lists came from group_lists alone
}

TEST(GroupByKey, MultiColumnAndNullKeys) {
  const Schema schema{field("a", TypeId::Int32, true), field("b", TypeId::Bool), field("v", TypeId::Float64)};
  const Table t = make_table(schema, {{i(1), b(true), d(0.5)},
                                      {null, b(true), d(1.5)},
                                      {i(1), b(false), d(2.5)},
                                      {null, b(true), d(3.5)},
                                      {i(1), b(true), d(4.5)}});
  EXPECT_EQ(rows_of(group_by_key_table(t, std::vector<size_t>{0, 1})),
            (std::vector<std::string>{"[1,true,[0.5,4.5]]", "[null,true,[1.5,3.5]]", "[1,false,[2.5]]"}));
  EXPECT_MENTIONS(error_of([&] { group_by_key_table(t, std::vector<size_t>{5}); }), "out of range");
}

}  // namespace

// ---------------------------------------------------------------- split_strings (flatMap)

namespace {

std::vector<std::pair<std::string, int64_t>> tokens_of(const SplitStrings& split) {
  std::vector<std::pair<std::string, int64_t>> out;
  EXPECT_EQ(split.tokens.size(), split.source_rows.size());
  EXPECT_FALSE(split.tokens.nullable());
  for (size_t t = 0; t < split.tokens.size(); ++t) out.emplace_back(std::string(split.tokens.string_at(t)), split.source_rows[t]);
  return out;
}

Column strings_with_a_null(const std::vector<std::string>& values, size_t null_row) {
  Column c(TypeId::String, true);
  for (size_t r = 0; r < values.size(); ++r) {
    if (r == null_row) c.append_null();
    else c.append_string(values[r]);
  }
  return c;
}

}  // namespace

TEST(SplitStrings, WhitespaceRunsGiveWordsAndNullRowsNothing) {
  const Column text = strings_with_a_null({" to be\tor  not ", "skipped", "", "to\nbe"}, 1);
  const std::vector<std::pair<std::string, int64_t>> want = {{"to", 0}, {"be", 0}, {"or", 0}, {"not", 0}, {"to", 3}, {"be", 3}};
  EXPECT_EQ(tokens_of(split_strings(text, "")), want);
  EXPECT_EQ(tokens_of(make_cpu_backend()->split_strings(text, "")), want);
}

TEST(SplitStrings, ASeparatorKeepsEmptyTokens) {
  const Column text = strings_with_a_null({"a,,b", "", "x, y"}, 99);
  const std::vector<std::pair<std::string, int64_t>> want = {{"a", 0}, {"", 0}, {"b", 0}, {"", 1}, {"x", 2}, {" y", 2}};
  EXPECT_EQ(tokens_of(split_strings(text, ",")), want);
}

TEST(SplitStrings, ANonStringColumnIsAClearError) {
  Column numbers(TypeId::Int64);
  numbers.append<int64_t>(1);
  try {
    split_strings(numbers, "");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("int64, not a string"), std::string::npos) << e.what();
  }
}

// ---------------------------------------------------------------- column replicas

namespace {

/// A backend's copy as the tests see one: it only has to be told apart.
struct MarkedReplica final : ColumnReplica {};

Column replicated(Column c) {
  c.attach_replica(std::make_shared<MarkedReplica>());
  return c;
}

}  // namespace

TEST(Column, MakeNullableLeavesThePaddingBitsClearForRowsAppendedLater) {
  Column c(TypeId::Int32);
  for (int32_t v : {1, 2, 3}) c.append<int32_t>(v);
  c.make_nullable();
  EXPECT_EQ(c.validity_bitmap()[0], 0x07);
  c.append_null();
  c.append<int32_t>(5);
  EXPECT_TRUE(c.is_valid(2));
  EXPECT_FALSE(c.is_valid(3));
  EXPECT_TRUE(c.is_valid(4));
  EXPECT_EQ(c.null_count(), 1u);
  EXPECT_EQ(c.validity_bitmap()[0], 0x17);
  Column eight(TypeId::Bool);  // a whole byte: nothing to clear
  for (int r = 0; r < 8; ++r) eight.append<uint8_t>(1);
  eight.make_nullable();
  eight.append_null();
  EXPECT_EQ(eight.validity_bitmap()[0], 0xFF);
  EXPECT_EQ(eight.validity_bitmap()[1], 0x00);
  EXPECT_FALSE(eight.is_valid(8));
}

TEST(Column, ListFromChecksItsOffsetsAndChildren) {
  Column v(TypeId::Int64);
  for (int64_t x : {4, 5, 6}) v.append<int64_t>(x);
  const Column list = Column::list_from({0, 2, 2, 3}, {v});
  EXPECT_EQ(list.type(), TypeId::List);
  EXPECT_EQ(list.size(), 3u);
  EXPECT_FALSE(list.nullable());
  EXPECT_EQ(list.list_range(1), (std::pair<size_t, size_t>{2, 2}));
  EXPECT_EQ(rows_of(Table(Schema{Field{"l", TypeId::List, false, {field("v", TypeId::Int64)}}}, {list})),
            (std::vector<std::string>{"[4,5]", "[]", "[6]"}));
  EXPECT_EQ(Column::list_from({0, 2, 7}, {}).list_range(1), (std::pair<size_t, size_t>{2, 7})) << "a list of no fields";
  const auto error_of = [](std::vector<int32_t> offsets, std::vector<Column> children) {
    try {
      Column::list_from(std::move(offsets), std::move(children));
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(error_of({}, {}).find("start at 0"), std::string::npos);
  EXPECT_NE(error_of({1, 3}, {v}).find("start at 0"), std::string::npos);
  EXPECT_NE(error_of({0, 3, 2}, {v}).find("offset 2 (2) is below the one before it (3)"), std::string::npos);
  EXPECT_NE(error_of({0, 2}, {v}).find("child 0 has 3 rows, but the offsets end at 2"), std::string::npos);
}

TEST(ColumnReplica, CopiesMovesAndRenamedTablesKeepTheReplica) {
  const Schema schema{field("k", TypeId::Int64), field("w", TypeId::String, true)};
  const Table t = make_table(schema, {{i(1), s("a")}, {i(2), null}});
  std::vector<Column> columns = {replicated(t.column(0)), replicated(t.column(1))};
  const ColumnReplica* key_replica = columns[0].replica().get();
  ASSERT_NE(key_replica, nullptr);
  const Column copy = columns[0];
  EXPECT_EQ(copy.replica().get(), key_replica) << "a copy holds the same contents, so the same replica";
  const Table table(schema, std::move(columns));
  EXPECT_EQ(table.column(0).replica().get(), key_replica);
  const Table renamed = table.with_schema(Schema{field("key", TypeId::Int64), field("word", TypeId::String, true)});
  EXPECT_EQ(renamed.column(0).replica().get(), key_replica);
  EXPECT_NE(renamed.column(1).replica(), nullptr);
}

TEST(ColumnReplica, EveryChangeOfTheBuffersDropsIt) {
  const Schema schema{field("k", TypeId::Int64), field("w", TypeId::String), field("x", TypeId::Float64, true)};
  const Table t = make_table(schema, {{i(1), s("a"), d(1.5)}, {i(2), s("bb"), null}});
  const std::vector<std::pair<const char*, std::function<void(Column&)>>> changes = {
      {"append", [](Column& c) { c.append<int64_t>(3); }},
      {"append_null", [](Column& c) { c.append_null(); }},
      {"append_value", [](Column& c) { c.append_value(i(4)); }},
      {"append_from", [&](Column& c) { c.append_from(t.column(0), 1); }},
      {"append_all", [&](Column& c) { c.append_all(t.column(0)); }},
      {"make_nullable", [](Column& c) { c.make_nullable(); }},
      {"mutable_values", [](Column& c) { c.mutable_values<int64_t>()[0] = 7; }},
  };
  for (const auto& [name, change] : changes) {
    Column c = replicated(t.column(0));
    change(c);
    EXPECT_EQ(c.replica(), nullptr) << name;
  }
  Column strings = replicated(t.column(1));
  strings.append_string("ccc");
  EXPECT_EQ(strings.replica(), nullptr) << "append_string";
  Column nullable = replicated(t.column(2));
  nullable.make_nullable();  // already nullable: nothing changes
  EXPECT_NE(nullable.replica(), nullptr) << "make_nullable of a nullable column changes nothing";
  nullable.reserve(100);  // capacity only
  EXPECT_NE(nullable.replica(), nullptr) << "reserve changes no contents";
  Column list = replicated(Column::make_list({Column(TypeId::Int64)}));
  list.children()[0].append<int64_t>(1);
  EXPECT_EQ(list.replica(), nullptr) << "children() gives write access";
}

TEST(ColumnReplica, NewColumnsFromOldOnesHaveNone) {
  const Schema schema{field("k", TypeId::Int64)};
  const Table t = make_table(schema, {{i(1)}, {i(2)}, {i(3)}});
  const Table table(schema, {replicated(t.column(0))});
  const std::vector<int64_t> rows = {2, 0};
  EXPECT_EQ(table.column(0).gather(rows).replica(), nullptr);
  EXPECT_EQ(table.gather(rows).column(0).replica(), nullptr);
  const std::vector<uint8_t> mask = {1, 0, 1};
  EXPECT_EQ(table.filter(mask).column(0).replica(), nullptr);
  EXPECT_EQ(Table::concat(std::vector<Table>{table, table}).column(0).replica(), nullptr);
  EXPECT_EQ(table.column(0), t.column(0)) << "a replica is not part of a column's value";
}

// ---------------------------------------------------------------- columns on their replica

namespace {

/// A backend's copy that holds a column's buffers itself, as device memory would, and counts
/// the copies back to the host; it can be told to fail the next ones, or to take its time
/// (so that readers on other threads overlap a copy).
struct HeldReplica final : ColumnReplica {
  explicit HeldReplica(const Column& c) : buffers(buffers_of(c)) {}
  ColumnBuffers copy_to_host() const override {
    if (failures_left > 0) {
      --failures_left;
      throw Error("the device is gone");
    }
    ++copies;
    std::this_thread::sleep_for(delay);
    return buffers;
  }
  ColumnBuffers buffers;
  std::chrono::milliseconds delay{0};
  mutable std::atomic<int> copies{0};
  mutable std::atomic<int> failures_left{0};
};

/// @p c with its buffers only in a HeldReplica (returned in @p replica).
Column on_held_replica(const Column& c, std::shared_ptr<HeldReplica>* replica = nullptr) {
  auto held = std::make_shared<HeldReplica>(c);
  if (replica) *replica = held;
  return Column::on_replica(c.type(), c.size(), c.nullable(), held);
}

Table replica_table() {
  const Schema schema{field("k", TypeId::Int64), field("w", TypeId::String, true), field("x", TypeId::Float64, true),
                      field("b", TypeId::Bool)};
  std::vector<std::vector<Value>> rows;
  for (int64_t r = 0; r < 37; ++r)
    rows.push_back({i(r * 7 - 50), r % 5 == 0 ? null : Value(std::string(static_cast<size_t>(r % 4), static_cast<char>('a' + r % 3))),
                    r % 3 == 0 ? null : d(0.25 * r), Value(r % 2 == 0)});
  return make_table(schema, rows);
}

}  // namespace

TEST(ColumnOnReplica, ComesToTheHostOnItsFirstReadOnce) {
  const Table t = replica_table();
  for (size_t c = 0; c < t.num_columns(); ++c) {
    std::shared_ptr<HeldReplica> replica;
    const Column held = on_held_replica(t.column(c), &replica);
    const std::string name = t.schema()[c].name;
    EXPECT_TRUE(held.host_copy_pending()) << name;
    EXPECT_EQ(held.size(), t.column(c).size()) << name;
    EXPECT_EQ(held.type(), t.column(c).type()) << name;
    EXPECT_EQ(held.nullable(), t.column(c).nullable()) << name;
    EXPECT_EQ(held.replica().get(), replica.get()) << name;
    if (!held.nullable()) {
      EXPECT_EQ(held.null_count(), 0u) << name;
    }
    EXPECT_EQ(replica->copies, 0) << name << ": nothing read the buffers yet";
    EXPECT_EQ(held, t.column(c)) << name;
    EXPECT_EQ(replica->copies, 1) << name;
    EXPECT_FALSE(held.host_copy_pending()) << name;
    EXPECT_EQ(held.null_count(), t.column(c).null_count()) << name;
    EXPECT_EQ(held, t.column(c)) << name;
    EXPECT_EQ(replica->copies, 1) << name << ": copied once";
    EXPECT_EQ(held.replica().get(), replica.get()) << name << ": the replica stays after the host copy";
  }
}

TEST(ColumnOnReplica, EveryReadOfTheBuffersCopiesThemFirst) {
  const Table t = replica_table();
  const Column& k = t.column("k");
  const Column& w = t.column("w");
  const Column& x = t.column("x");
  const std::vector<int64_t> some_rows = {5, 0, 36, 5};
  using Read = std::function<std::string(const Column&)>;
  const std::vector<std::tuple<const char*, const Column*, Read>> reads = {
      {"values", &k, [](const Column& c) { return std::to_string(c.values<int64_t>()[3]); }},
      {"data", &k, [](const Column& c) { return std::to_string(reinterpret_cast<const int64_t*>(c.data())[4]); }},
      {"validity_bitmap", &x, [](const Column& c) { return std::to_string(c.validity_bitmap()[1]); }},
      {"is_valid", &x, [](const Column& c) { return std::to_string(c.is_valid(3)) + std::to_string(c.is_valid(4)); }},
      {"null_count", &w, [](const Column& c) { return std::to_string(c.null_count()); }},
      {"string_at", &w, [](const Column& c) { return std::string(c.string_at(7)); }},
      {"offsets", &w, [](const Column& c) { return std::to_string(c.offsets()[9]); }},
      {"chars", &w, [](const Column& c) { return std::string(c.chars().data(), c.chars().size()); }},
      {"value_at", &x, [](const Column& c) { return value_to_json(c.value_at(5)); }},
      {"number_at", &k, [](const Column& c) { return std::to_string(c.number_at(6)); }},
      {"append_json", &w, [](const Column& c) {
         std::string out;
         for (size_t r = 0; r < c.size(); ++r) c.append_json(r, out);
         return out;
       }},
      {"gather", &w, [&](const Column& c) {
         std::string out;
         const Column g = c.gather(some_rows);
         for (size_t r = 0; r < g.size(); ++r) g.append_json(r, out);
         return out;
       }},
      {"append_all into another", &x, [](const Column& c) {
         Column into(TypeId::Float64, true);
         into.append_all(c);
         std::string out;
         for (size_t r = 0; r < into.size(); ++r) into.append_json(r, out);
         return out;
       }},
      {"append_from into another", &w, [](const Column& c) {
         Column into(TypeId::String, true);
         into.append_from(c, 2);
         into.append_from(c, 5);
         return std::string(into.string_at(0)) + "|" + std::to_string(into.is_valid(1));
       }},
  };
  for (const auto& [name, column, read] : reads) {
    std::shared_ptr<HeldReplica> replica;
    const Column held = on_held_replica(*column, &replica);
    EXPECT_EQ(read(held), read(*column)) << name;
    EXPECT_EQ(replica->copies, 1) << name;
    EXPECT_FALSE(held.host_copy_pending()) << name;
  }
}

TEST(ColumnOnReplica, AChangeCopiesTheBuffersFirstAndDropsTheReplica) {
  const Table t = replica_table();
  const std::vector<std::tuple<const char*, size_t, std::function<void(Column&)>>> changes = {
      {"append", 0, [](Column& c) { c.append<int64_t>(3); }},
      {"append_null", 0, [](Column& c) { c.append_null(); }},
      {"append_value", 2, [](Column& c) { c.append_value(d(2.5)); }},
      {"append_string", 1, [](Column& c) { c.append_string("zz"); }},
      {"append_from", 1, [&](Column& c) { c.append_from(t.column(1), 3); }},
      {"append_all", 2, [&](Column& c) { c.append_all(t.column(2)); }},
      {"make_nullable", 0, [](Column& c) { c.make_nullable(); }},
      {"mutable_values", 0, [](Column& c) { c.mutable_values<int64_t>()[1] = 7; }},
      {"attach_replica", 1, [](Column& c) { c.attach_replica(std::make_shared<MarkedReplica>()); }},
  };
  for (const auto& [name, column, change] : changes) {
    Column want = t.column(column);
    change(want);
    std::shared_ptr<HeldReplica> replica;
    Column held = on_held_replica(t.column(column), &replica);
    change(held);
    EXPECT_EQ(held, want) << name << ": the change applies to the copied buffers";
    EXPECT_NE(held.replica().get(), replica.get()) << name;
    EXPECT_FALSE(held.host_copy_pending()) << name;
    EXPECT_EQ(replica->copies, 1) << name;
  }
  std::shared_ptr<HeldReplica> replica;
  Column reserved = on_held_replica(t.column(1), &replica);
  reserved.reserve(100, 1000);
  EXPECT_EQ(reserved, t.column(1)) << "reserve";
  EXPECT_EQ(reserved.replica().get(), replica.get()) << "reserve changes no contents";
}

TEST(ColumnOnReplica, CopiesAndMovesOfAPendingColumnStayPending) {
  const Table t = replica_table();
  std::shared_ptr<HeldReplica> replica;
  Column held = on_held_replica(t.column("w"), &replica);
  const Column copy = held;
  EXPECT_TRUE(copy.host_copy_pending());
  Column moved = std::move(held);
  EXPECT_TRUE(moved.host_copy_pending());
  EXPECT_EQ(replica->copies, 0);
  EXPECT_EQ(moved, t.column("w"));
  EXPECT_TRUE(copy.host_copy_pending()) << "each copy of the column has buffers of its own";
  EXPECT_EQ(copy, t.column("w"));
  EXPECT_EQ(replica->copies, 2);
  const Column copy_of_read = moved;
  EXPECT_FALSE(copy_of_read.host_copy_pending()) << "a copy of a read column copies its host buffers";
  EXPECT_EQ(copy_of_read, t.column("w"));
  EXPECT_EQ(replica->copies, 2);
  Column assigned(TypeId::String);
  assigned = copy;
  EXPECT_EQ(assigned, t.column("w"));

  // Tables carry pending columns through renames and concatenation reads them.
  const Table table(t.schema(), {on_held_replica(t.column(0)), on_held_replica(t.column(1)), on_held_replica(t.column(2)),
                                 on_held_replica(t.column(3))});
  const Table renamed = table.with_schema(Schema{field("k2", TypeId::Int64), field("w2", TypeId::String, true),
                                                 field("x2", TypeId::Float64, true), field("b2", TypeId::Bool)});
  for (size_t c = 0; c < renamed.num_columns(); ++c) EXPECT_TRUE(renamed.column(c).host_copy_pending()) << c;
  const Table both = Table::concat(std::vector<Table>{t, renamed});
  EXPECT_EQ(both.gather(std::vector<int64_t>{37, 38, 73}), t.gather(std::vector<int64_t>{0, 1, 36}));
}

TEST(ColumnOnReplica, ReadersOnManyThreadsShareOneCopy) {
  const Table t = replica_table();
  for (int round = 0; round < 10; ++round) {
    std::shared_ptr<HeldReplica> replica;
    const Column held = on_held_replica(t.column("w"), &replica);
    replica->delay = std::chrono::milliseconds(round % 2 ? 5 : 0);  // readers wait on a copy in progress
    std::atomic<bool> go{false};
    std::vector<std::thread> readers;
    std::atomic<int> equal{0};
    for (int r = 0; r < 8; ++r)
      readers.emplace_back([&, r] {
        while (!go) std::this_thread::yield();
        const bool same = r % 2 ? held == t.column("w") : held.string_at(36) == t.column("w").string_at(36);
        equal += same;
      });
    go = true;
    for (std::thread& reader : readers) reader.join();
    EXPECT_EQ(equal, 8);
    EXPECT_EQ(replica->copies, 1);
  }
}

TEST(ColumnOnReplica, ACopyTakenDuringAnotherThreadsFirstReadIsWhole) {
  const Table t = replica_table();
  for (int round = 0; round < 10; ++round) {
    std::shared_ptr<HeldReplica> replica;
    const Column held = on_held_replica(t.column("x"), &replica);
    replica->delay = std::chrono::milliseconds(round % 3);
    std::thread reader([&] { EXPECT_EQ(held, t.column("x")); });
    std::this_thread::sleep_for(std::chrono::microseconds(500 * round));
    const Column copy = held;  // before, during or after the reader's copy back
    reader.join();
    EXPECT_EQ(copy, t.column("x")) << round;
    EXPECT_LE(replica->copies, 2) << "the copy reads the replica itself only when it was taken before the buffers came";
  }
}

// group_by_key's lists are built from columns a backend gathered where they are: a list
// over children that live only on a replica leaves them there until the list is read.
TEST(ColumnOnReplica, AListOverPendingChildrenLeavesThemThereUntilRead) {
  const Table t = replica_table();
  std::shared_ptr<HeldReplica> k_held, w_held;
  const Column list = Column::list_from({0, 3, 3, 37}, {on_held_replica(t.column(0), &k_held), on_held_replica(t.column(1), &w_held)});
  const Column copy = list;
  for (const Column* l : {&list, &copy})
    for (const Column& child : l->children()) EXPECT_TRUE(child.host_copy_pending());
  EXPECT_EQ(k_held->copies + w_held->copies, 0);
  const Field list_field{"l", TypeId::List, false, {t.schema()[0], t.schema()[1]}};
  Column expected = Column::make_for(list_field);
  for (const auto& [first, last] : {std::pair{0, 3}, std::pair{3, 3}, std::pair{3, 37}}) {
    for (int r = first; r < last; ++r) {
      expected.children()[0].append_from(t.column(0), static_cast<size_t>(r));
      expected.children()[1].append_from(t.column(1), static_cast<size_t>(r));
    }
    expected.append_list_end();
  }
  EXPECT_EQ(rows_of(Table(Schema{list_field}, {list})), rows_of(Table(Schema{list_field}, {expected})));
  EXPECT_EQ(k_held->copies.load(), 1);
  EXPECT_EQ(w_held->copies.load(), 1);
}

TEST(ColumnOnReplica, AFailedCopyIsAnErrorAndTheNextReadTriesAgain) {
  const Table t = replica_table();
  std::shared_ptr<HeldReplica> replica;
  const Column held = on_held_replica(t.column("k"), &replica);
  replica->failures_left = 1;
  try {
    (void)held.values<int64_t>();
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("the device is gone"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(held.host_copy_pending());
  EXPECT_EQ(held, t.column("k"));
  EXPECT_EQ(replica->copies, 1);

  // Buffers that do not fit the column are an error naming the sizes, not a wrong column.
  auto short_values = std::make_shared<HeldReplica>(t.column("k"));
  short_values->buffers.data.resize(8);
  const Column wrong = Column::on_replica(TypeId::Int64, t.num_rows(), false, short_values);
  try {
    (void)wrong.values<int64_t>();
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("int64 column of 37 rows copied back"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("has 8 bytes of values, not 296"), std::string::npos) << e.what();
  }
  auto no_validity = std::make_shared<HeldReplica>(t.column("w"));
  no_validity->buffers.validity.clear();
  EXPECT_THROW((void)Column::on_replica(TypeId::String, t.num_rows(), true, no_validity).chars(), Error);

  // A replica that only mirrors host buffers cannot stand in for them.
  const Column marked = Column::on_replica(TypeId::Int64, 3, false, std::make_shared<MarkedReplica>());
  try {
    (void)marked.data();
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot copy its column to the host"), std::string::npos) << e.what();
  }
  EXPECT_THROW((void)Column::on_replica(TypeId::List, 0, false, replica), Error);
  EXPECT_THROW((void)Column::on_replica(TypeId::Int64, 0, false, nullptr), Error);
}
