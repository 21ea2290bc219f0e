// Differential tests of the CUDA backend against the CPU backend: the same random inputs
// through both, identical results for integer aggregates and keys, floating point within
// 1e-9 relative (+1e-6 absolute: sums are added in another order). They need a GPU and skip,
// saying so, without one. The algorithms themselves also run on every machine, through the
// host execution context, in test_gpu_algorithms_on_host.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <map>
#include <numeric>
#include <bit>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>

#include "pipeline/expression.hpp"
#include "pipeline/record_parsers.hpp"
#include "sluice/backend.hpp"

#ifdef SLUICE_WITH_CUDA
#include "gpu_engine.hpp"
#endif

namespace sluice {
namespace {

#define SKIP_WITHOUT_GPU()                                                                                      \
  do {                                                                                                          \
    if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device on this machine: CUDA backend tests need one"; \
  } while (0)

enum class KeyKind { FewInts, ManyInts, Strings, NullableStringAndInt, Floats };

std::string key_kind_name(KeyKind k) {
  switch (k) {
    case KeyKind::FewInts: return "FewInts";
    case KeyKind::ManyInts: return "ManyInts";
    case KeyKind::Strings: return "Strings";
    case KeyKind::NullableStringAndInt: return "NullableStringAndInt";
    case KeyKind::Floats: return "Floats";
  }
  return "?";
}

/// Random rows: key fields by @p kind, then v (int64, nullable), i (int32), f (float64,
/// nullable, with NaN), b (bool).
Table random_table(KeyKind kind, size_t rows, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<Field> fields;
  std::vector<Column> columns;
  switch (kind) {
    case KeyKind::FewInts:
    case KeyKind::ManyInts: {
      Column k(TypeId::Int64);
      const uint64_t keys = kind == KeyKind::FewInts ? 16 : std::max<uint64_t>(1, rows);
      for (size_t r = 0; r < rows; ++r) k.append<int64_t>(static_cast<int64_t>(rng() % keys) - 1);
      fields.emplace_back("k", TypeId::Int64);
      columns.push_back(std::move(k));
      break;
    }
    case KeyKind::Strings:
    case KeyKind::NullableStringAndInt: {
      const bool nullable = kind == KeyKind::NullableStringAndInt;
      Column s(TypeId::String, nullable);
      Column n(TypeId::Int32, nullable);
      for (size_t r = 0; r < rows; ++r) {
        const size_t len = rng() % 24;  // 0 to 23 bytes: across the hash's 8-byte steps
        std::string w;
        for (size_t i = 0; i < len; ++i) w += static_cast<char>('a' + rng() % (nullable ? 2 : 3));
        if (nullable && rng() % 9 == 0) s.append_null();
        else s.append_string(w);
        if (nullable && rng() % 7 == 0) n.append_null();
        else n.append<int32_t>(static_cast<int32_t>(rng() % 3));
      }
      fields.emplace_back("s", TypeId::String, nullable);
      columns.push_back(std::move(s));
      if (nullable) {
        fields.emplace_back("n", TypeId::Int32, true);
        columns.push_back(std::move(n));
      }
      break;
    }
    case KeyKind::Floats: {
      Column k(TypeId::Float64);
      for (size_t r = 0; r < rows; ++r) {
        const uint64_t x = rng() % 40;
        k.append<double>(x == 0 ? NAN : x == 1 ? -0.0 : x == 2 ? 0.0 : static_cast<double>(x % 13) / 4);
      }
      fields.emplace_back("k", TypeId::Float64);
      columns.push_back(std::move(k));
      break;
    }
  }
  Column v(TypeId::Int64, true), i(TypeId::Int32), f(TypeId::Float64, true), b(TypeId::Bool);
  for (size_t r = 0; r < rows; ++r) {
    if (rng() % 10 == 0) v.append_null();
    else v.append<int64_t>(static_cast<int64_t>(rng() % 2000001) - 1000000);
    i.append<int32_t>(static_cast<int32_t>(rng() % 201) - 100);
    const uint64_t x = rng() % 1000;
    if (x == 0) f.append_null();
    else if (x == 1) f.append<double>(NAN);
    else f.append<double>(static_cast<double>(rng() % 100000) / 64.0 - 700);
    b.append<uint8_t>(static_cast<uint8_t>(rng() % 2));
  }
  fields.emplace_back("v", TypeId::Int64, true);
  fields.emplace_back("i", TypeId::Int32);
  fields.emplace_back("f", TypeId::Float64, true);
  fields.emplace_back("b", TypeId::Bool);
  columns.push_back(std::move(v));
  columns.push_back(std::move(i));
  columns.push_back(std::move(f));
  columns.push_back(std::move(b));
  return Table(Schema(std::move(fields)), std::move(columns));
}

KeyedAggregation every_aggregate(KeyKind kind) {
  KeyedAggregation plan;
  plan.keys = kind == KeyKind::NullableStringAndInt ? std::vector<std::string>{"s", "n"}
              : kind == KeyKind::Strings            ? std::vector<std::string>{"s"}
                                                    : std::vector<std::string>{"k"};
  plan.aggregates = {{AggregateKind::Count, "", "rows"},      {AggregateKind::Count, "v", "values"},
                     {AggregateKind::Sum, "v", "sum_v"},      {AggregateKind::Min, "v", "min_v"},
                     {AggregateKind::Max, "v", "max_v"},      {AggregateKind::Mean, "v", "mean_v"},
                     {AggregateKind::Sum, "i", "sum_i"},      {AggregateKind::Max, "i", "max_i"},
                     {AggregateKind::Sum, "f", "sum_f"},      {AggregateKind::Min, "f", "min_f"},
                     {AggregateKind::Max, "f", "max_f"},      {AggregateKind::Sum, "b", "sum_b"},
                     {AggregateKind::Min, "b", "min_b"}};
  return plan;
}

KeyedAggregation invertible_aggregates(KeyKind kind) {
  KeyedAggregation plan = every_aggregate(kind);
  std::erase_if(plan.aggregates, [](const AggregateSpec& a) { return !is_invertible(a.kind); });
  return plan;
}

/// Same schema and rows in the same order; floating point within tolerance (NaN matches NaN).
void expect_same_table(const Table& cpu, const Table& gpu) {
  ASSERT_EQ(cpu.schema(), gpu.schema());
  ASSERT_EQ(cpu.num_rows(), gpu.num_rows());
  for (size_t c = 0; c < cpu.num_columns(); ++c) {
    const Column& a = cpu.column(c);
    const Column& b = gpu.column(c);
    const bool floating = a.type() == TypeId::Float32 || a.type() == TypeId::Float64;
    for (size_t r = 0; r < cpu.num_rows(); ++r) {
      ASSERT_EQ(a.is_valid(r), b.is_valid(r)) << cpu.schema()[c].name << " row " << r;
      if (!a.is_valid(r)) continue;
      if (!floating) {
        ASSERT_EQ(a.value_at(r), b.value_at(r)) << cpu.schema()[c].name << " row " << r;
        continue;
      }
      const double x = a.number_at(r), y = b.number_at(r);
      if (std::isnan(x) || std::isnan(y)) {
        ASSERT_TRUE(std::isnan(x) && std::isnan(y)) << cpu.schema()[c].name << " row " << r << ": " << x << " vs " << y;
        continue;
      }
      if (std::isinf(x) || std::isinf(y)) {  // ASSERT_NEAR's difference of two infinities is NaN
        ASSERT_EQ(x, y) << cpu.schema()[c].name << " row " << r;
        continue;
      }
      ASSERT_NEAR(x, y, 1e-6 + 1e-9 * std::abs(x)) << cpu.schema()[c].name << " row " << r;
    }
  }
}

struct Case {
  KeyKind kind;
  size_t rows;
};

class CudaVersusCpu : public ::testing::TestWithParam<Case> {};

TEST_P(CudaVersusCpu, AggregatePartialsAndFinalizeAgree) {
  SKIP_WITHOUT_GPU();
  auto cpu = make_backend(BackendKind::Cpu);
  auto gpu = make_backend(BackendKind::Cuda);
  const KeyedAggregation plan = every_aggregate(GetParam().kind);
  for (uint64_t seed : {1, 2, 3}) {
    const Table input = random_table(GetParam().kind, GetParam().rows, seed);
    const Table want = cpu->aggregate_partials(input, plan);
    const Table got = gpu->aggregate_partials(input, plan);
    SCOPED_TRACE("seed " + std::to_string(seed));
    expect_same_table(want, got);
    expect_same_table(cpu->finalize(want, plan), gpu->finalize(got, plan));
  }
}

TEST_P(CudaVersusCpu, CombiningPanesWithSignsAgrees) {
  SKIP_WITHOUT_GPU();
  auto cpu = make_backend(BackendKind::Cpu);
  auto gpu = make_backend(BackendKind::Cuda);
  const KeyedAggregation plan = invertible_aggregates(GetParam().kind);
  const size_t rows = GetParam().rows;
  const Table a = cpu->aggregate_partials(random_table(GetParam().kind, rows, 10), plan);
  const Table b = cpu->aggregate_partials(random_table(GetParam().kind, rows / 2 + 1, 11), plan);
  const Table window = cpu->combine_partials(std::vector<const Table*>{&a, &b}, std::vector<int>{1, 1}, plan);
  // window + b - a: what sliding a pane out of a window does.
  const std::vector<const Table*> parts{&window, &b, &a};
  const std::vector<int> signs{1, 1, -1};
  expect_same_table(cpu->combine_partials(parts, signs, plan), gpu->combine_partials(parts, signs, plan));
  // Min and max recombine (no signs).
  const KeyedAggregation all = every_aggregate(GetParam().kind);
  const Table x = cpu->aggregate_partials(random_table(GetParam().kind, rows, 12), all);
  const Table y = cpu->aggregate_partials(random_table(GetParam().kind, rows, 13), all);
  const std::vector<const Table*> both{&x, &y};
  expect_same_table(cpu->combine_partials(both, std::vector<int>{1, 1}, all), gpu->combine_partials(both, std::vector<int>{1, 1}, all));
}

TEST_P(CudaVersusCpu, WindowSlidesOnTheDeviceAgree) {
  SKIP_WITHOUT_GPU();
  auto cpu = make_backend(BackendKind::Cpu);
  auto gpu = make_backend(BackendKind::Cuda);
  const size_t rows = std::min<size_t>(GetParam().rows, 200000);
  for (bool invertible : {true, false}) {
    const KeyedAggregation plan = invertible ? invertible_aggregates(GetParam().kind) : every_aggregate(GetParam().kind);
    const Schema schema = random_table(GetParam().kind, 0, 0).schema();
    auto on_cpu = cpu->make_window_aggregation(plan, schema, 3);
    auto on_gpu = gpu->make_window_aggregation(plan, schema, 3);
    for (uint64_t slide = 0; slide < 8; ++slide) {
      for (uint64_t batch = 0; batch < 2; ++batch) {
        // An empty batch now and then, and batches of changing size.
        const size_t n = slide == 4 ? 0 : rows / (1 + batch);
        const Table t = random_table(GetParam().kind, n, 100 * slide + batch);
        on_cpu->add_batch(t);
        on_gpu->add_batch(t);
      }
      SCOPED_TRACE(std::string(invertible ? "invertible" : "recombined") + " slide " + std::to_string(slide));
      expect_same_table(on_cpu->slide(), on_gpu->slide());
    }
  }
}

TEST_P(CudaVersusCpu, RunningStateOnTheDeviceAgrees) {
  SKIP_WITHOUT_GPU();
  auto cpu = make_backend(BackendKind::Cpu);
  auto gpu = make_backend(BackendKind::Cuda);
  const size_t rows = std::min<size_t>(GetParam().rows, 200000);
  const KeyedAggregation plan = every_aggregate(GetParam().kind);
  const Schema schema = random_table(GetParam().kind, 0, 0).schema();
  for (size_t expire : {size_t{0}, size_t{2}}) {
    auto on_cpu = cpu->make_state_aggregation(plan, schema, expire);
    auto on_gpu = gpu->make_state_aggregation(plan, schema, expire);
    for (uint64_t batch = 0; batch < 6; ++batch) {
      const Table t = random_table(GetParam().kind, batch == 3 ? 0 : rows / (1 + batch % 2), 1000 + batch);
      SCOPED_TRACE("expire " + std::to_string(expire) + " batch " + std::to_string(batch));
      expect_same_table(on_cpu->update(t), on_gpu->update(t));
    }
  }
}

TEST_P(CudaVersusCpu, JoinsWithinABatchAgree) {
  SKIP_WITHOUT_GPU();
  auto cpu = make_backend(BackendKind::Cpu);
  auto gpu = make_backend(BackendKind::Cuda);
  // Many-to-many joins grow with the square of repeated keys: keep the sides small enough.
  const size_t rows = std::min<size_t>(GetParam().rows, GetParam().kind == KeyKind::ManyInts ? 200000 : 3000);
  const Table left = random_table(GetParam().kind, rows, 21);
  const Table right = random_table(GetParam().kind, rows / 2 + 1, 22);
  std::vector<size_t> keys;
  for (const std::string& k : every_aggregate(GetParam().kind).keys) keys.push_back(left.schema().index_of(k));
  for (JoinKind kind : {JoinKind::Inner, JoinKind::LeftOuter, JoinKind::RightOuter, JoinKind::FullOuter}) {
    SCOPED_TRACE("join kind " + std::to_string(static_cast<int>(kind)));
    expect_same_table(cpu->join(left, keys, right, keys, kind), gpu->join(left, keys, right, keys, kind));
  }
}

TEST_P(CudaVersusCpu, RowChainsStayOnTheDeviceAndAgreeWithTheHostOperators) {
  SKIP_WITHOUT_GPU();
  auto gpu = make_backend(BackendKind::Cuda);
  const Table t = random_table(GetParam().kind, GetParam().rows, 51);
  const bool strings = GetParam().kind == KeyKind::Strings || GetParam().kind == KeyKind::NullableStringAndInt;
  // Each step with the host operation it stands for.
  std::vector<RowChainStep> steps;
  std::vector<std::function<Table(const Table&)>> on_host;
  Schema schema = t.schema();
  auto add_filter = [&](const std::string& text) {
    const pipeline::Expression e = pipeline::Expression::parse(text);
    steps.push_back(RowChainStep{RowChainStep::Kind::Filter, {e.compile(schema).value()}, {}, 0, {}, schema});
    on_host.push_back([e](const Table& in) { return in.filter(e.evaluate_mask(in)); });
  };
  add_filter("v > 0 or b");
  {
    std::vector<pipeline::Expression> computed = {pipeline::Expression::parse("f * 2.0 + i")};
    if (strings) computed.push_back(pipeline::Expression::parse("upper(s)"));
    RowChainStep map{RowChainStep::Kind::Map, {}, {}, 0, {}, {}};
    std::vector<Field> fields = schema.fields();
    for (size_t c = 0; c < schema.size(); ++c) map.sources.push_back(static_cast<int32_t>(c));
    for (size_t e = 0; e < computed.size(); ++e) {
      fields.push_back(Field{"computed" + std::to_string(e), computed[e].result_type(schema), computed[e].result_nullable(schema), {}});
      map.programs.push_back(computed[e].compile(schema).value());
      map.sources.push_back(-static_cast<int32_t>(e + 1));
    }
    schema = Schema(fields);
    map.output = schema;
    steps.push_back(map);
    on_host.push_back([computed, schema](const Table& in) {
      std::vector<Column> cols;
      for (size_t c = 0; c < in.num_columns(); ++c) cols.push_back(in.column(c));
      for (const pipeline::Expression& e : computed) cols.push_back(e.evaluate(in));
      return Table(schema, std::move(cols));
    });
  }
  if (strings) {
    const size_t field = schema.index_of("computed1");
    Schema split_schema = schema;
    split_schema.fields()[field].nullable = false;
    steps.push_back(RowChainStep{RowChainStep::Kind::Split, {}, {}, field, "A", split_schema});
    on_host.push_back([field, split_schema](const Table& in) {
      SplitStrings split = split_strings(in.column(field), "A");
      std::vector<Column> cols;
      for (size_t c = 0; c < in.num_columns(); ++c)
        cols.push_back(c == field ? std::move(split.tokens) : in.column(c).gather(split.source_rows));
      return Table(split_schema, std::move(cols));
    });
    schema = split_schema;
  }
  add_filter("i > -50");
  const std::optional<Table> got = gpu->run_row_chain(t, steps);
  ASSERT_TRUE(got);
  Table want = t;
  for (const auto& step : on_host) want = step(want);
  expect_same_table(want, *got);

  // The same chain ending in a keyed aggregation, reduced where the chain left its columns.
  KeyedAggregation plan = every_aggregate(GetParam().kind);
  plan.aggregates.push_back({AggregateKind::Sum, "computed0", "sum_computed"});
  const std::optional<Table> partials = gpu->aggregate_row_chain(t, steps, plan);
  ASSERT_TRUE(partials);
  expect_same_table(make_backend(BackendKind::Cpu)->aggregate_partials(want, plan), *partials);
}

TEST_P(CudaVersusCpu, GroupByKeyAndCogroupGroupAlike) {
  SKIP_WITHOUT_GPU();
  auto gpu = make_backend(BackendKind::Cuda);
  const size_t rows = std::min<size_t>(GetParam().rows, 200000);  // list columns of every row
  const Table left = random_table(GetParam().kind, rows, 41);
  const Table right = random_table(GetParam().kind, rows / 3 + 1, 42);
  std::vector<size_t> keys;
  for (const std::string& k : every_aggregate(GetParam().kind).keys) keys.push_back(left.schema().index_of(k));
  const Grouping want = group_rows(left, keys);
  const Grouping got = gpu->group_rows(left, keys);
  EXPECT_EQ(got.group_of_row, want.group_of_row);
  EXPECT_EQ(got.first_row_of_group, want.first_row_of_group);
  EXPECT_EQ(group_by_key_table(left, keys, gpu.get()), group_by_key_table(left, keys));
  EXPECT_EQ(cogroup_tables(left, keys, right, keys, gpu.get()), cogroup_tables(left, keys, right, keys));
}

TEST_P(CudaVersusCpu, ExpressionsAndFiltersOnTheDeviceAgree) {
  SKIP_WITHOUT_GPU();
  auto gpu = make_backend(BackendKind::Cuda);
  const Table t = random_table(GetParam().kind, GetParam().rows, 31);
  std::vector<std::string> texts = {
      "v * 3 + i - 7",          "f * i + 0.5",          "v / (i % 7)",        "v % i",
      "if(b, f, float(v))",     "abs(f) >= 2.5 or b",   "coalesce(v, int(f))", "round(f / 3.0)",
      "min(v, i) > max(i, -5)", "not (v > 0) and f < 100.0",
      "is_null(v) or is_null(f)"};
  if (GetParam().kind == KeyKind::Strings || GetParam().kind == KeyKind::NullableStringAndInt)
    texts.insert(texts.end(), {"len(s) + i", "s < 'ab' or starts_with(s, 'b')", "contains(s, 'ab') and ends_with(s, 'a')"});
  std::vector<pipeline::Expression> expressions;
  std::vector<RowProgram> programs;
  for (const std::string& text : texts) {
    expressions.push_back(pipeline::Expression::parse(text));
    std::optional<RowProgram> program = expressions.back().compile(t.schema());
    ASSERT_TRUE(program) << text << " should run on the device";
    programs.push_back(std::move(*program));
  }
  std::vector<const RowProgram*> pointers;
  for (const RowProgram& p : programs) pointers.push_back(&p);
  const std::optional<std::vector<Column>> on_gpu = gpu->evaluate(t, pointers);
  ASSERT_TRUE(on_gpu);
  ASSERT_EQ(on_gpu->size(), texts.size());
  for (size_t e = 0; e < texts.size(); ++e) {
    SCOPED_TRACE(texts[e]);
    const Column want = expressions[e].evaluate(t);
    const Schema one{{"x", want.type(), want.nullable()}};
    std::vector<Column> w, g;
    w.push_back(want);
    g.push_back((*on_gpu)[e]);
    expect_same_table(Table(one, std::move(w)), Table(one, std::move(g)));
    if (want.type() != TypeId::Bool) continue;
    const std::optional<Table> kept = gpu->filter(t, programs[e]);
    ASSERT_TRUE(kept);
    expect_same_table(t.filter(expressions[e].evaluate_mask(t)), *kept);
  }
}

// string() of a float on the device: Schubfach's products (__umul64hi) and its table's
// device copy, against the host's std::to_chars, byte for byte.
TEST(CudaExpressions, FloatTextsAreTheHostsByteForByte) {
  SKIP_WITHOUT_GPU();
  auto gpu = make_backend(BackendKind::Cuda);
  Column x(TypeId::Float64, true);
  std::mt19937_64 rng(11);
  auto add = [&](double d) { x.append<double>(d); };
  for (uint64_t t = 1; t < 5000; ++t) add(std::bit_cast<double>(t));  // subnormals
  for (uint64_t biased = 1; biased < 0x7ff; ++biased) add(std::bit_cast<double>(biased << 52));
  for (int k = 0; k < 20000; ++k) {  // small enough for compute-sanitizer (run_gpu_checks.sh)
    add(std::bit_cast<double>(rng()));
    add(std::ldexp(static_cast<double>(rng() >> 11), static_cast<int>(rng() % 140) - 60));
  }
  for (double d : {0.0, -0.0, 1e21, 1e22, 1e23, 123456789012345680000.0, 0.00012, 1e-5, 100000.0, 5e-324})
    add(d);
  x.append_null();
  const Table t(Schema{{"x", TypeId::Float64, true}}, {x});
  for (const char* text : {"string(x)", "concat(string(x), '|', string(x / 3.0), '|', string(-x))"}) {
    SCOPED_TRACE(text);
    const pipeline::Expression e = pipeline::Expression::parse(text);
    const RowProgram program = e.compile(t.schema()).value();
    const std::vector<const RowProgram*> programs = {&program};
    const std::optional<std::vector<Column>> on_gpu = gpu->evaluate(t, programs);
    ASSERT_TRUE(on_gpu);
    const Schema one{{"text", TypeId::String, true}};
    expect_same_table(Table(one, {e.evaluate(t)}), Table(one, {(*on_gpu)[0]}));
  }
}

/// A map step that computes every column of a table anew (keys first: "key0", ..., then
/// "value0", ...), so that all of its output columns are made on the device.
struct RecomputedColumns {
  RowChainStep map{RowChainStep::Kind::Map, {}, {}, 0, {}, {}};
  std::vector<pipeline::Expression> expressions;  // in output order
  size_t key_count = 0;
};

RecomputedColumns recompute_every_column(const Schema& schema, KeyKind kind) {
  std::vector<std::string> keys;
  if (kind == KeyKind::Strings) keys = {"upper(s)"};
  else if (kind == KeyKind::NullableStringAndInt) keys = {"upper(s)", "n + 1", "concat(s, '#', n, '#', string(v > 0))"};
  else if (kind == KeyKind::Floats) keys = {"k * 2.0"};
  else keys = {"k + 1"};
  std::vector<std::string> texts = keys;
  for (const char* value : {"v * 3", "i - 1", "f + 0.5", "not b"}) texts.push_back(value);
  RecomputedColumns out;
  out.key_count = keys.size();
  std::vector<Field> fields;
  for (size_t e = 0; e < texts.size(); ++e) {
    const pipeline::Expression expression = pipeline::Expression::parse(texts[e]);
    const std::string name = e < keys.size() ? "key" + std::to_string(e) : "value" + std::to_string(e - keys.size());
    fields.push_back(Field{name, expression.result_type(schema), expression.result_nullable(schema), {}});
    out.map.programs.push_back(expression.compile(schema).value());
    out.map.sources.push_back(-static_cast<int32_t>(e + 1));
    out.expressions.push_back(expression);
  }
  out.map.output = Schema(std::move(fields));
  return out;
}

/// What the map of @p recomputed makes of @p t, evaluated on the host.
Table recomputed_on_host(const RecomputedColumns& recomputed, const Table& t) {
  std::vector<Column> columns;
  for (const pipeline::Expression& e : recomputed.expressions) columns.push_back(e.evaluate(t));
  return Table(recomputed.map.output, std::move(columns));
}

/// A plan keyed by the recomputed keys ("key0", ...), with @p aggregates.
KeyedAggregation by_recomputed_keys(const RecomputedColumns& recomputed, std::vector<AggregateSpec> aggregates) {
  KeyedAggregation plan;
  for (size_t k = 0; k < recomputed.key_count; ++k) plan.keys.push_back("key" + std::to_string(k));
  plan.aggregates = std::move(aggregates);
  return plan;
}

TEST_P(CudaVersusCpu, ColumnsMadeOnTheDeviceFeedTheNextOperatorsInPlace) {
  SKIP_WITHOUT_GPU();
  auto cpu = make_backend(BackendKind::Cpu);
  auto gpu = make_backend(BackendKind::Cuda);
  const size_t rows = std::min<size_t>(GetParam().rows, 1000000);
  const Table t = random_table(GetParam().kind, rows, 61);
  const RecomputedColumns recomputed = recompute_every_column(t.schema(), GetParam().kind);
  const std::optional<Table> made = gpu->run_row_chain(t, {&recomputed.map, 1});
  ASSERT_TRUE(made);
  expect_same_table(recomputed_on_host(recomputed, t), *made);
  for (size_t c = 0; c < made->num_columns(); ++c)
    EXPECT_EQ(made->column(c).replica() != nullptr, rows > 0) << made->schema()[c].name << ": device copy kept";

  // Every consumer reads the device copies; each agrees with the CPU backend on the same table.
  const KeyedAggregation plan = by_recomputed_keys(
      recomputed, {{AggregateKind::Count, "", "rows"},      {AggregateKind::Sum, "value0", "sum_v"},
                   {AggregateKind::Min, "value0", "min_v"}, {AggregateKind::Max, "value1", "max_i"},
                   {AggregateKind::Sum, "value2", "sum_f"}, {AggregateKind::Max, "value3", "max_b"}});
  std::vector<size_t> key_columns;
  for (size_t k = 0; k < recomputed.key_count; ++k) key_columns.push_back(k);
  expect_same_table(cpu->aggregate_partials(*made, plan), gpu->aggregate_partials(*made, plan));
  const std::optional<Table> fused = gpu->aggregate_row_chain(t, {&recomputed.map, 1}, plan);
  ASSERT_TRUE(fused);
  expect_same_table(cpu->aggregate_partials(*made, plan), *fused);
  const Grouping want = group_rows(*made, key_columns);
  const Grouping got = gpu->group_rows(*made, key_columns);
  EXPECT_EQ(got.group_of_row, want.group_of_row);
  EXPECT_EQ(got.first_row_of_group, want.first_row_of_group);
  auto on_cpu = cpu->make_window_aggregation(plan, made->schema(), 2);
  auto on_gpu = gpu->make_window_aggregation(plan, made->schema(), 2);
  for (int slide = 0; slide < 3; ++slide) {
    on_cpu->add_batch(*made);
    on_gpu->add_batch(*made);
    expect_same_table(on_cpu->slide(), on_gpu->slide());
  }
  const pipeline::Expression keep = pipeline::Expression::parse("value1 > 0");
  const RowChainStep filter{RowChainStep::Kind::Filter, {keep.compile(made->schema()).value()}, {}, 0, {}, made->schema()};
  const std::optional<Table> filtered = gpu->run_row_chain(*made, {&filter, 1});
  ASSERT_TRUE(filtered);
  expect_same_table(made->filter(keep.evaluate_mask(*made)), *filtered);
  if (rows > 0) {
    const Table small = made->gather(std::vector<int64_t>{0});
    expect_same_table(cpu->join(*made, key_columns, small, key_columns, JoinKind::Inner),
                      gpu->join(*made, key_columns, small, key_columns, JoinKind::Inner));
  }

  // A column changed on the host after the device made it is read from the host again.
  if (rows > 0) {
    std::vector<Column> columns = made->columns();
    const size_t v = made->schema().index_of("value0");
    size_t row = 0;
    while (row + 1 < rows && !columns[v].is_valid(row)) ++row;
    columns[v].mutable_values<int64_t>()[row] += 1000;
    ASSERT_EQ(columns[v].replica(), nullptr);
    const Table changed(made->schema(), std::move(columns));
    expect_same_table(cpu->aggregate_partials(changed, plan), gpu->aggregate_partials(changed, plan));
  }
}

TEST_P(CudaVersusCpu, ColumnsMadeOnTheDeviceComeBackOnlyWhenTheHostReadsThem) {
  SKIP_WITHOUT_GPU();
  auto cpu = make_backend(BackendKind::Cpu);
  auto gpu = make_backend(BackendKind::Cuda);
  const size_t rows = std::min<size_t>(GetParam().rows, 1000000);
  const Table t = random_table(GetParam().kind, rows, 67);
  const RecomputedColumns recomputed = recompute_every_column(t.schema(), GetParam().kind);
  const std::optional<Table> made = gpu->run_row_chain(t, {&recomputed.map, 1});
  ASSERT_TRUE(made);
  for (size_t c = 0; c < made->num_columns(); ++c)
    EXPECT_EQ(made->column(c).host_copy_pending(), rows > 0) << made->schema()[c].name << ": left on the device";

  // Device operators read the columns where they are, and gather the groups' keys there:
  // nothing comes back whole.
  const KeyedAggregation plan = by_recomputed_keys(
      recomputed, {{AggregateKind::Count, "", "rows"}, {AggregateKind::Sum, "value0", "sum_v"},
                   {AggregateKind::Max, "value1", "max_i"}, {AggregateKind::Sum, "value2", "sum_f"},
                   {AggregateKind::Max, "value3", "max_b"}});
  const Table partials = gpu->aggregate_partials(*made, plan);
  const pipeline::Expression keep = pipeline::Expression::parse("value1 > 0");
  const RowChainStep filter{RowChainStep::Kind::Filter, {keep.compile(made->schema()).value()}, {}, 0, {}, made->schema()};
  const std::optional<Table> filtered = gpu->run_row_chain(*made, {&filter, 1});
  ASSERT_TRUE(filtered);
  // The backend's own filter (YSB's) gathers the kept rows of device columns on the device.
  const RowProgram keep_program = keep.compile(made->schema()).value();
  const std::optional<Table> kept = gpu->filter(*made, keep_program);
  ASSERT_TRUE(kept);
  for (size_t c = 0; c < kept->num_columns(); ++c) {
    EXPECT_EQ(kept->column(c).host_copy_pending(), kept->num_rows() > 0) << kept->schema()[c].name << ": filtered on the device";
    EXPECT_EQ(kept->column(c).nullable(), made->column(c).nullable()) << kept->schema()[c].name << ": nullable as Column::gather keeps it";
  }
  auto window = gpu->make_window_aggregation(plan, made->schema(), 2);
  window->add_batch(*made);
  const Table slid = window->slide();
  std::vector<size_t> key_columns;
  for (size_t k = 0; k < recomputed.key_count; ++k) key_columns.push_back(k);
  const Table first_row = gpu->sort_rows(*made, {}, 1);  // a limit alone: gathered on the device
  const Table joined = gpu->join(*made, key_columns, first_row, key_columns, JoinKind::Inner);
  // The other side on the host: its columns are gathered there, the device's on the device.
  const Table host_rows = recomputed_on_host(recomputed, t).gather(std::vector<int64_t>(rows > 0 ? 1 : 0, 0));
  const Table mixed = gpu->join(*made, key_columns, host_rows, key_columns, JoinKind::Inner);
  for (size_t c = 0; c < joined.num_columns(); ++c)
    EXPECT_EQ(joined.column(c).host_copy_pending(), joined.num_rows() > 0) << joined.schema()[c].name << ": joined on the device";
  for (size_t c = 0; c < made->num_columns(); ++c)
    EXPECT_EQ(made->column(c).host_copy_pending(), rows > 0) << made->schema()[c].name << ": read in place";

  // A copy taken before any host read, and the original, read by several threads at once:
  // both come back whole, equal to the host's.
  const Table copy = *made;
  const Table want = recomputed_on_host(recomputed, t);
  std::vector<std::thread> readers;
  for (int r = 0; r < 4; ++r) readers.emplace_back([&, r] { expect_same_table(want, r % 2 ? copy : *made); });
  for (std::thread& reader : readers) reader.join();
  for (size_t c = 0; c < made->num_columns(); ++c) {
    EXPECT_FALSE(made->column(c).host_copy_pending());
    EXPECT_FALSE(copy.column(c).host_copy_pending());
    if (rows > 0) EXPECT_NE(made->column(c).replica(), nullptr) << "the device copy stays after the host's";
  }
  expect_same_table(cpu->aggregate_partials(*made, plan), partials);
  expect_same_table(made->filter(keep.evaluate_mask(*made)), *filtered);
  expect_same_table(made->filter(keep.evaluate_mask(*made)), *kept);
  auto on_cpu = cpu->make_window_aggregation(plan, made->schema(), 2);
  on_cpu->add_batch(*made);
  expect_same_table(on_cpu->slide(), slid);
  for (const auto& [right, got] : {std::pair{&first_row, &joined}, std::pair{&host_rows, &mixed}}) {
    const Table want = cpu->join(*made, key_columns, *right, key_columns, JoinKind::Inner);
    expect_same_table(want, *got);
    for (size_t c = 0; c < want.num_columns(); ++c)
      EXPECT_EQ(got->column(c).nullable(), want.column(c).nullable()) << want.schema()[c].name << ": nullable as the host makes it";
  }
}

/// A batch made on the device from @p t (every column recomputed by a map) and its rows where
/// value1 > 0 (a filter on the device), both left there, with the indexes of the key fields.
struct DeviceBatches {
  RecomputedColumns recomputed;
  pipeline::Expression keep = pipeline::Expression::parse("value1 > 0");
  std::optional<Table> made, some;
  std::vector<size_t> keys;
};

DeviceBatches device_batches(ExecutionBackend& gpu, const Table& t, KeyKind kind) {
  DeviceBatches out;
  out.recomputed = recompute_every_column(t.schema(), kind);
  out.made = gpu.run_row_chain(t, {&out.recomputed.map, 1});
  if (!out.made) return out;
  const RowChainStep filter{RowChainStep::Kind::Filter, {out.keep.compile(out.made->schema()).value()}, {}, 0, {}, out.made->schema()};
  out.some = gpu.run_row_chain(*out.made, {&filter, 1});
  out.keys.resize(out.recomputed.key_count);
  std::iota(out.keys.begin(), out.keys.end(), size_t{0});
  return out;
}

// Every kind of join of batches made on the device (and of one such batch with a host batch):
// the result columns that read a device column are gathered there and stay there, the others
// on the host; outer rows are null-filled as on the CPU. The filtered side holds a subset of
// the keys, so both sides have rows without a match.
TEST_P(CudaVersusCpu, JoinsOfDeviceBatchesAgreeAndStayOnTheDevice) {
  SKIP_WITHOUT_GPU();
  auto cpu = make_backend(BackendKind::Cpu);
  auto gpu = make_backend(BackendKind::Cuda);
  const size_t rows = std::min<size_t>(GetParam().rows, 3000);  // few keys: results grow as rows squared
  const Table t = random_table(GetParam().kind, rows, 73);
  const DeviceBatches batches = device_batches(*gpu, t, GetParam().kind);
  const std::optional<Table>& made = batches.made;
  const std::optional<Table>& some = batches.some;
  ASSERT_TRUE(made && some);
  const std::vector<size_t>& keys = batches.keys;
  const Table on_host = recomputed_on_host(batches.recomputed, t);
  const Table some_on_host = on_host.filter(batches.keep.evaluate_mask(on_host));
  struct Sides {
    const char* name;
    const Table* left;
    const Table* right;
  };
  const std::vector<Sides> sides = {{"device with device", &*some, &*made},
                                    {"device with device, the subset right", &*made, &*some},
                                    {"device with host", &*made, &some_on_host},
                                    {"host with device", &some_on_host, &*made}};
  const size_t key_count = keys.size(), left_values = made->num_columns() - key_count;
  struct Joined {
    const Sides* sides;
    JoinKind kind;
    Table result;
  };
  std::vector<Joined> joined;
  for (const Sides& s : sides) {
    const bool left_device = s.left != &some_on_host, right_device = s.right != &some_on_host;
    for (JoinKind kind : {JoinKind::Inner, JoinKind::LeftOuter, JoinKind::RightOuter, JoinKind::FullOuter}) {
      Table got = gpu->join(*s.left, keys, *s.right, keys, kind);
      for (size_t c = key_count; c < got.num_columns(); ++c) {
        const bool from_device = c < key_count + left_values ? left_device : right_device;
        EXPECT_EQ(got.column(c).host_copy_pending(), from_device && got.num_rows() > 0)
            << s.name << ", join kind " << static_cast<int>(kind) << ": " << got.schema()[c].name;
      }
      if (left_device && right_device)
        for (size_t c = 0; c < key_count; ++c) EXPECT_EQ(got.column(c).host_copy_pending(), got.num_rows() > 0) << s.name;
      joined.push_back(Joined{&s, kind, std::move(got)});
    }
  }
  for (size_t c = 0; c < made->num_columns(); ++c)
    EXPECT_EQ(made->column(c).host_copy_pending(), rows > 0) << made->schema()[c].name << ": read in place";
  // Now the host reads everything, the device's results included.
  for (const Joined& j : joined) {
    const Table want = cpu->join(*j.sides->left, keys, *j.sides->right, keys, j.kind);
    SCOPED_TRACE(std::string(j.sides->name) + ", join kind " + std::to_string(static_cast<int>(j.kind)));
    expect_same_table(want, j.result);
    for (size_t c = 0; c < want.num_columns(); ++c)
      EXPECT_EQ(j.result.column(c).nullable(), want.column(c).nullable()) << want.schema()[c].name << ": nullable as the host makes it";
  }
}

// group_by_key and cogroup of batches made on the device: the rows are grouped and ordered by
// group there (group_lists), and the keys and the lists' elements are gathered there and stay
// there until read.
TEST_P(CudaVersusCpu, GroupByKeyAndCogroupOfDeviceBatchesGatherOnTheDevice) {
  SKIP_WITHOUT_GPU();
  auto gpu = make_backend(BackendKind::Cuda);
  const size_t rows = std::min<size_t>(GetParam().rows, 100000);
  const Table t = random_table(GetParam().kind, rows, 79);
  const DeviceBatches batches = device_batches(*gpu, t, GetParam().kind);
  const std::optional<Table>& made = batches.made;
  const std::optional<Table>& some = batches.some;
  ASSERT_TRUE(made && some);
  const std::vector<size_t>& keys = batches.keys;
  if (rows > 0) {
    // The backend makes the lists itself (group_lists) rather than declining to group_rows,
    // whose groups come to the host; one list per group, every row in one.
    std::vector<size_t> values;
    for (size_t c = 0; c < made->num_columns(); ++c)
      if (std::find(keys.begin(), keys.end(), c) == keys.end()) values.push_back(c);
    ASSERT_FALSE(values.empty());
    const ListSide side{&*made, 0, values};
    const std::optional<GroupedLists> lists = gpu->group_lists(*made, keys, std::span<const ListSide>(&side, 1));
    ASSERT_TRUE(lists.has_value());
    ASSERT_EQ(lists->list_offsets.size(), 1u);
    EXPECT_EQ(lists->list_offsets[0].size(), lists->first_row_of_group.size() + 1);
    EXPECT_EQ(static_cast<size_t>(lists->list_offsets[0].back()), rows);
    for (const Column& element : lists->elements[0]) EXPECT_TRUE(element.host_copy_pending());
  }
  const Table grouped = group_by_key_table(*made, keys, gpu.get());
  if (rows > 0) {
    for (size_t k = 0; k < keys.size(); ++k) EXPECT_TRUE(grouped.column(k).host_copy_pending()) << "key " << k;
    for (const Column& child : grouped.columns().back().children()) EXPECT_TRUE(child.host_copy_pending());
    for (size_t c = 0; c < made->num_columns(); ++c) EXPECT_TRUE(made->column(c).host_copy_pending()) << "read in place";
  }
  // cogroup puts both sides' keys together on the device, groups them there and gathers its
  // keys and the lists' elements there: nothing of the batch comes back.
  const Table cogrouped = cogroup_tables(*made, keys, *some, keys, gpu.get());
  if (rows > 0) {
    for (size_t k = 0; k < keys.size(); ++k) EXPECT_TRUE(cogrouped.column(k).host_copy_pending()) << "cogroup key " << k;
    for (const Column& list : {cogrouped.column(keys.size()), cogrouped.column(keys.size() + 1)})
      for (const Column& child : list.children()) EXPECT_EQ(child.host_copy_pending(), child.size() > 0);
    for (size_t c = 0; c < made->num_columns(); ++c) EXPECT_TRUE(made->column(c).host_copy_pending()) << "read in place";
  }
  // A key column next to an empty nullable one is nullable, as the host's append makes it.
  const Column& key = made->column(keys[0]);
  const Column empty_nullable(key.type(), true);
  const Column joined = gpu->concatenate(key, empty_nullable, false);
  EXPECT_EQ(joined.host_copy_pending(), rows > 0);
  EXPECT_TRUE(joined.nullable());
  EXPECT_TRUE(joined == make_backend(BackendKind::Cpu)->concatenate(key, empty_nullable, false));
  // The same columns grouped on the host (which copies them back): the same tables, bit for bit.
  const Table want_grouped = group_by_key_table(*made, keys);
  const Table want_cogrouped = cogroup_tables(*made, keys, *some, keys);
  EXPECT_EQ(grouped.schema(), want_grouped.schema());
  EXPECT_TRUE(grouped == want_grouped);
  EXPECT_EQ(cogrouped.schema(), want_cogrouped.schema());
  EXPECT_TRUE(cogrouped == want_cogrouped);
}

TEST_P(CudaVersusCpu, TransformSortsAndLimitsAgree) {
  SKIP_WITHOUT_GPU();
  auto gpu = make_backend(BackendKind::Cuda);
  const size_t rows = std::min<size_t>(GetParam().rows, 1000000);
  const Table t = random_table(GetParam().kind, rows, 71);
  const Schema& schema = t.schema();
  const size_t v = schema.index_of("v"), i = schema.index_of("i"), f = schema.index_of("f"), b = schema.index_of("b");
  const std::vector<std::pair<std::vector<SortKey>, int64_t>> sorts = {
      {{{0, false}}, -1},                        // the key alone: radix sorted when fixed-width and never null
      {{{0, true}}, 10},
      {{{i, false}}, -1},                        // int32
      {{{f, true}}, 1000},                       // nullable floats with NaN: merge sorted
      {{{b, false}, {0, true}, {v, false}}, -1}, // several keys
      {{}, 5},                                   // a limit alone
      {{{v, true}}, 0},
      {{{b, true}}, -1},                         // bool: a radix sort of 8 bits
  };
  for (const auto& [keys, limit] : sorts) {
    const Table got = gpu->sort_rows(t, keys, limit);
    // A limit alone that keeps every row leaves the batch as it is, on the host.
    const bool untouched = keys.empty() && (limit < 0 || static_cast<size_t>(limit) >= t.num_rows());
    for (size_t c = 0; c < got.num_columns(); ++c)
      EXPECT_EQ(got.column(c).host_copy_pending(), got.num_rows() > 0 && !untouched) << schema[c].name << ": left on the device";
    expect_same_table(sluice::sort_rows(t, keys, limit), got);
  }
  const std::vector<SortKey> past_the_end = {{schema.size(), false}};
  EXPECT_THROW(gpu->sort_rows(t, past_the_end, -1), Error);
  // A batch the device made is sorted where it is: none of its columns comes back.
  const RecomputedColumns recomputed = recompute_every_column(schema, GetParam().kind);
  const std::optional<Table> made = gpu->run_row_chain(t, {&recomputed.map, 1});
  ASSERT_TRUE(made);
  const std::vector<SortKey> by_key_then_value = {{0, true}, {recomputed.key_count, false}};
  const Table sorted = gpu->sort_rows(*made, by_key_then_value, 100);
  for (size_t c = 0; c < made->num_columns(); ++c)
    EXPECT_EQ(made->column(c).host_copy_pending(), rows > 0) << made->schema()[c].name << ": read in place";
  expect_same_table(sluice::sort_rows(recomputed_on_host(recomputed, t), by_key_then_value, 100), sorted);
}

TEST_P(CudaVersusCpu, WindowsFedByRowChainsAgree) {
  SKIP_WITHOUT_GPU();
  auto cpu = make_backend(BackendKind::Cpu);
  auto gpu = make_backend(BackendKind::Cuda);
  const size_t rows = std::min<size_t>(GetParam().rows, 200000);
  const Schema schema = random_table(GetParam().kind, 0, 0).schema();
  const RecomputedColumns recomputed = recompute_every_column(schema, GetParam().kind);
  const KeyedAggregation plan =
      by_recomputed_keys(recomputed, {{AggregateKind::Count, "", "rows"}, {AggregateKind::Sum, "value0", "sum_v"},
                                      {AggregateKind::Max, "value1", "max_i"}, {AggregateKind::Min, "value2", "min_f"},
                                      {AggregateKind::Mean, "value2", "mean_f"}});
  auto on_cpu = cpu->make_window_aggregation(plan, recomputed.map.output, 3);
  auto on_gpu = gpu->make_window_aggregation(plan, recomputed.map.output, 3);
  for (uint64_t slide = 0; slide < 5; ++slide) {
    for (uint64_t batch = 0; batch < 2; ++batch) {
      const Table t = random_table(GetParam().kind, slide == 2 ? 0 : rows / (1 + batch), 300 + 10 * slide + batch);
      const Table made = recomputed_on_host(recomputed, t);
      on_cpu->add_batch(made);
      EXPECT_TRUE(on_gpu->add_row_chain(t, {&recomputed.map, 1}));
    }
    SCOPED_TRACE("slide " + std::to_string(slide));
    expect_same_table(on_cpu->slide(), on_gpu->slide());
  }
}

TEST_P(CudaVersusCpu, RunningStateFedByRowChainsAgrees) {
  SKIP_WITHOUT_GPU();
  auto cpu = make_backend(BackendKind::Cpu);
  auto gpu = make_backend(BackendKind::Cuda);
  const size_t rows = std::min<size_t>(GetParam().rows, 200000);
  const Schema schema = random_table(GetParam().kind, 0, 0).schema();
  const RecomputedColumns recomputed = recompute_every_column(schema, GetParam().kind);
  const KeyedAggregation plan = by_recomputed_keys(
      recomputed, {{AggregateKind::Count, "", "rows"}, {AggregateKind::Sum, "value0", "sum_v"}, {AggregateKind::Min, "value1", "min_i"}});
  auto on_cpu = cpu->make_state_aggregation(plan, recomputed.map.output, 2);
  auto on_gpu = gpu->make_state_aggregation(plan, recomputed.map.output, 2);
  for (uint64_t batch = 0; batch < 5; ++batch) {
    const Table t = random_table(GetParam().kind, batch == 2 ? 0 : rows / (1 + batch % 2), 500 + batch);
    const Table made = recomputed_on_host(recomputed, t);
    const Table want = on_cpu->update(made);
    // Every third batch goes through update(), as the node does when a batch has another
    // schema: both paths feed one state and one key dictionary.
    std::optional<Table> got;
    if (batch % 3 != 1) {
      got = on_gpu->update_row_chain(t, {&recomputed.map, 1});
      EXPECT_TRUE(got.has_value());
    }
    if (!got) got = on_gpu->update(made);
    SCOPED_TRACE("batch " + std::to_string(batch));
    expect_same_table(want, *got);
  }
}

// A window's or running state's exact key (one integer declared not nullable) that holds
// nulls fails the batch, which changes nothing; the device counts them, so no key column
// comes back to be checked. Here a batch whose key column has nulls, given directly or to
// steps compiled for a schema without them.
TEST(CudaWindows, ANullExactKeyFailsTheBatchAndChangesNothing) {
  SKIP_WITHOUT_GPU();
  auto cpu = make_backend(BackendKind::Cpu);
  auto gpu = make_backend(BackendKind::Cuda);
  const Schema schema{{"k", TypeId::Int64}, {"v", TypeId::Int64}};
  RowChainStep pass_through;
  pass_through.kind = RowChainStep::Kind::Map;
  pass_through.sources = {0, 1};
  pass_through.output = schema;
  KeyedAggregation plan;
  plan.keys = {"k"};
  plan.aggregates = {{AggregateKind::Count, "", "rows"}, {AggregateKind::Sum, "v", "total"}};
  auto on_cpu = cpu->make_window_aggregation(plan, schema, 2);
  auto on_gpu = gpu->make_window_aggregation(plan, schema, 2);
  auto state = gpu->make_state_aggregation(plan, schema, 0);
  Column k(TypeId::Int64), v(TypeId::Int64), nullable_k(TypeId::Int64, true);
  for (int64_t r = 0; r < 1000; ++r) {
    k.append<int64_t>(r % 7 - 3);
    v.append<int64_t>(r);
    r == 500 ? nullable_k.append_null() : nullable_k.append<int64_t>(r % 5);
  }
  const Table good(schema, {k, v});
  const Table with_null(Schema{{"k", TypeId::Int64, true}, {"v", TypeId::Int64}}, {nullable_k, v});
  on_cpu->add_batch(good);
  ASSERT_TRUE(on_gpu->add_row_chain(good, {&pass_through, 1}));
  ASSERT_TRUE(state->update_row_chain(good, {&pass_through, 1}));
  auto expect_refused = [](const char* what, auto attempt) {
    try {
      attempt();
      ADD_FAILURE() << what << ": a null exact key was accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("key field 'k' is declared not nullable but holds nulls"), std::string::npos)
          << what << ": " << e.what();
    }
  };
  expect_refused("window", [&] { on_gpu->add_row_chain(with_null, {&pass_through, 1}); });
  expect_refused("running state", [&] { state->update_row_chain(with_null, {&pass_through, 1}); });
  expect_refused("window, the batch itself", [&] { on_gpu->add_batch(with_null); });
  expect_refused("running state, the batch itself", [&] { state->update(with_null); });
  expect_same_table(on_cpu->slide(), on_gpu->slide());
  const std::optional<Table> unchanged = state->update_row_chain(Table::empty(schema), {&pass_through, 1});
  ASSERT_TRUE(unchanged);
  expect_same_table(cpu->make_state_aggregation(plan, schema, 0)->update(good), *unchanged);
}

INSTANTIATE_TEST_SUITE_P(Inputs, CudaVersusCpu,
                         ::testing::Values(Case{KeyKind::FewInts, 0}, Case{KeyKind::FewInts, 1}, Case{KeyKind::FewInts, 4097},
                                           Case{KeyKind::FewInts, 3000001}, Case{KeyKind::ManyInts, 7},
                                           Case{KeyKind::ManyInts, 100003}, Case{KeyKind::ManyInts, 3000001},
                                           Case{KeyKind::Strings, 1}, Case{KeyKind::Strings, 100003},
                                           Case{KeyKind::NullableStringAndInt, 999}, Case{KeyKind::NullableStringAndInt, 1000003},
                                           Case{KeyKind::Floats, 5003}),
                         [](const auto& info) {
                           return key_kind_name(info.param.kind) + "_" + std::to_string(info.param.rows) + "_rows";
                         });

/// The same rows, and the same malformed records for the same reasons.
void expect_same_parse(const pipeline::ParseResult& host, const pipeline::ParseResult& device) {
  ASSERT_EQ(device.line_of_each_row(), host.line_of_each_row());
  expect_same_table(host.table, device.table);
  ASSERT_EQ(device.malformed.size(), host.malformed.size());
  for (size_t m = 0; m < host.malformed.size(); ++m) EXPECT_EQ(device.malformed[m].reason, host.malformed[m].reason);
}

TEST(CudaCsvParsing, TheDeviceParserAgreesWithTheHostParser) {
  SKIP_WITHOUT_GPU();
  auto gpu = make_backend(BackendKind::Cuda);
  auto cpu = make_backend(BackendKind::Cpu);
  const Schema schema{{"s", TypeId::String, true}, {"i", TypeId::Int32}, {"l", TypeId::Int64, true},
                      {"f", TypeId::Float32},      {"d", TypeId::Float64, true}, {"b", TypeId::Bool}};
  const char* cells[][8] = {
      {"abc", "\"q,uoted\"", "\"he said \"\"hi\"\"\"", "", "x y", "\"\"", "z", "long string with spaces"},
      {"0", "-7", "2147483647", "-2147483648", "2147483648", "12x", "+1", " 3"},
      {"1", "", "-9223372036854775808", "9223372036854775807", "9223372036854775808", "00012", "-0", "5"},
      {"1.5", "-2e3", ".5", "5.", "inf", "nan", "1e39", "3.4028235e38"},
      {"0.1", "", "1e308", "2.2250738585072014e-308", "123456789012345678901234", "-0.0", "1e400", "abc"},
      {"true", "FALSE", "1", "0", "yes", "True", "", "t"},
  };
  std::mt19937_64 rng(3);
  pipeline::CsvOptions options;
  Column lines(TypeId::String);
  for (int r = 0; r < 200000; ++r) {
    std::string line;
    const int fields = rng() % 50 == 0 ? 5 : 6;  // now and then a wrong field count
    for (int f = 0; f < fields; ++f) line += (f ? "," : "") + std::string(cells[f][rng() % 8]);
    if (rng() % 20 == 0) line += "\r";
    lines.append_string(rng() % 97 == 0 ? "" : line);
  }
  const pipeline::ParseResult host = pipeline::parse_csv(lines, schema, options);
  const pipeline::ParseResult device = pipeline::parse_csv(lines, schema, options, *gpu);
  expect_same_parse(host, device);
}

TEST(CudaJsonParsing, TheDeviceParserAgreesWithTheHostParser) {
  SKIP_WITHOUT_GPU();
  auto gpu = make_backend(BackendKind::Cuda);
  const Schema schema{{"user", TypeId::String}, {"ad", TypeId::Int32, true}, {"t", TypeId::Int64}, {"price", TypeId::Float64, true},
                      {"ok", TypeId::Bool}};
  const char* users[] = {"\"u1\"", "\"\"", "\"with \\\"escape\\\"\"", "7", "null"};
  const char* ads[] = {"1", "-2147483648", "2147483648", "3.0", "null", "\"x\""};
  const char* times[] = {"1700000000123", "9223372036854775807", "1e3", "-0", "1.5"};
  const char* prices[] = {"1.25", "0.1", "1e308", "-0.0", "null", "123456789012345678901234"};
  const char* oks[] = {"true", "false", "1", "null"};
  std::mt19937_64 rng(4);
  Column lines(TypeId::String);
  for (int r = 0; r < 200000; ++r) {
    std::string line;
    if (rng() % 10 == 0) {  // by position
      line = std::string("[") + users[rng() % 5] + "," + ads[rng() % 6] + "," + times[rng() % 5] + "," + prices[rng() % 6] + "," +
             oks[rng() % 4] + "]";
    } else {
      line = std::string("{\"user\":") + users[rng() % 5] + ", \"ad\": " + ads[rng() % 6] + ",\"t\":" + times[rng() % 5] +
             (rng() % 8 ? std::string(",\"price\":") + prices[rng() % 6] : std::string()) + ",\"ok\":" + oks[rng() % 4] +
             (rng() % 20 == 0 ? ",\"extra\":{\"a\":[1,2]}" : "") + "}";
    }
    if (rng() % 50 == 0) line.pop_back();  // not valid JSON
    lines.append_string(rng() % 97 == 0 ? "" : line);
  }
  const pipeline::ParseResult host = pipeline::parse_json(lines, schema);
  const pipeline::ParseResult device = pipeline::parse_json(lines, schema, *gpu);
  expect_same_parse(host, device);
}

TEST(CudaSplit, FlatMapSplitAgreesWithTheHost) {
  SKIP_WITHOUT_GPU();
  auto cpu = make_backend(BackendKind::Cpu);
  auto gpu = make_backend(BackendKind::Cuda);
  const std::string alphabet = "abc, \t;:";
  for (uint64_t seed : {1u, 2u}) {
    std::mt19937_64 rng(seed);
    for (size_t rows : {0u, 1u, 999u, 300000u}) {
      Column text(TypeId::String, true);
      for (size_t r = 0; r < rows; ++r) {
        if (rng() % 13 == 0) {
          text.append_null();
          continue;
        }
        std::string line;
        for (size_t n = rng() % 60; n > 0; --n) line += alphabet[rng() % alphabet.size()];
        text.append_string(line);
      }
      for (const char* separator : {"", ",", ";:"}) {
        const SplitStrings want = cpu->split_strings(text, separator);
        const SplitStrings got = gpu->split_strings(text, separator);
        ASSERT_EQ(got.source_rows, want.source_rows) << "rows " << rows << ", separator '" << separator << "'";
        ASSERT_EQ(got.tokens.size(), want.tokens.size());
        EXPECT_FALSE(got.tokens.nullable());
        for (size_t t = 0; t < want.tokens.size(); ++t) ASSERT_EQ(got.tokens.string_at(t), want.tokens.string_at(t)) << t;
      }
    }
  }
}

#ifdef SLUICE_WITH_CUDA
TEST(CudaWordCount, MatchesSplittingAndCountingOnTheHost) {
  SKIP_WITHOUT_GPU();
  gpu::DeviceEngine engine(0);
  std::mt19937_64 rng(5);
  Column lines(TypeId::String);
  std::map<std::string, int64_t> want;
  // Half the lines end in their last word, so that lines abut mid-word in the text ("ab" then
  // "cd" are two words: the line-start bitmap decides), and a few words run over 32-byte chunks.
  for (int l = 0; l < 200000; ++l) {
    std::string line;
    const bool ends_in_a_word = rng() % 2 == 0;
    for (int w = static_cast<int>(rng() % 10); w > 0; --w) {
      std::string word;
      for (size_t i = rng() % 50 == 0 ? 33 + rng() % 60 : 1 + rng() % 9; i > 0; --i) word += static_cast<char>('a' + rng() % 5);
      want[word]++;
      line += word;
      if (w > 1 || !ends_in_a_word) line += rng() % 3 == 0 ? "\t" : " ";
    }
    lines.append_string(line);
  }
  for (auto strategy : {gpu::GroupStrategy::Auto, gpu::GroupStrategy::Hash, gpu::GroupStrategy::Sort}) {
    const gpu::WordCounts got = engine.count_words(lines.chars().data(), lines.offsets().data(), lines.size(), strategy);
    ASSERT_EQ(got.counts.size(), want.size());
    for (size_t g = 0; g < got.counts.size(); ++g) {
      const std::string word = got.chars.substr(static_cast<size_t>(got.offsets[g]), static_cast<size_t>(got.offsets[g + 1] - got.offsets[g]));
      EXPECT_EQ(got.counts[g], want.at(word)) << word;
    }
  }
}

/// A reduction of @p input's int64 field "k" with @p folds, for the engine directly.
gpu::GroupedInput by_key_k(const Table& input, std::vector<gpu::FoldView> folds) {
  gpu::GroupedInput in;
  in.rows = input.num_rows();
  gpu::ColumnView key;
  key.type = gpu::kInt64;
  key.values = input.column("k").data();
  in.keys = {key};
  in.folds = std::move(folds);
  return in;
}

TEST(CudaEngine, APrefetchedBatchIsCopiedFromItsDeviceCopyAndGivesTheSameResult) {
  SKIP_WITHOUT_GPU();
  const Table input = random_table(KeyKind::FewInts, 500000, 12);
  gpu::DeviceEngine engine(0);
  gpu::FoldView sum;
  sum.op = gpu::kFoldSum;
  sum.input.type = gpu::kInt64;
  sum.input.values = input.column("v").data();
  sum.input.validity = input.column("v").validity_bitmap();
  const gpu::GroupedInput in = by_key_k(input, {sum});
  const gpu::GroupedResult plain = engine.reduce(in);
  engine.prefetch(1000, {{input.column("k").data(), input.num_rows() * 8}, {input.column("v").data(), input.num_rows() * 8},
                         {input.column("v").validity_bitmap(), (input.num_rows() + 7) / 8}});
  const gpu::GroupedResult ahead = engine.reduce(in);
  EXPECT_EQ(engine.memory().bytes_from_prefetch, input.num_rows() * 16 + (input.num_rows() + 7) / 8);
  EXPECT_EQ(ahead.first_row, plain.first_row);
  EXPECT_EQ(ahead.accumulators, plain.accumulators);
  engine.retire_prefetched(1000);
  engine.reduce(in);
  EXPECT_EQ(engine.memory().bytes_from_prefetch, input.num_rows() * 16 + (input.num_rows() + 7) / 8) << "retired copies were used";
}

TEST(CudaEngine, AColumnItMadeIsReadInPlaceUntilTheLastHostCopyGoes) {
  SKIP_WITHOUT_GPU();
  const Table input = random_table(KeyKind::FewInts, 500000, 13);
  const size_t rows = input.num_rows();
  gpu::DeviceEngine engine(0);
  const RowProgram program = pipeline::Expression::parse("k * 2").compile(input.schema()).value();
  gpu::ColumnView k;
  k.type = gpu::kInt64;
  k.values = input.column("k").data();
  std::vector<gpu::ColumnView> columns(input.num_columns());
  columns[input.schema().index_of("k")] = k;
  std::vector<gpu::HostColumnBuffers> made = engine.evaluate({&program}, columns, rows);
  ASSERT_EQ(made.size(), 1u);
  ASSERT_TRUE(made[0].resident) << "the engine kept its device copy";
  EXPECT_FALSE(made[0].on_host) << "nothing has read it on the host yet";
  EXPECT_TRUE(made[0].values.empty());
  EXPECT_EQ(made[0].resident_view.on_device, 1);
  EXPECT_EQ(engine.memory().resident_bytes, rows * sizeof(int64_t));
  EXPECT_EQ(engine.memory().columns_left_on_device, 1u);

  gpu::GroupedInput in;
  in.rows = rows;
  in.keys = {made[0].resident_view};
  in.folds = {gpu::FoldView{}};  // count of rows
  const uint64_t copied = engine.memory().bytes_copied_to_device;
  const gpu::GroupedResult in_place = engine.reduce(in);
  EXPECT_EQ(engine.memory().bytes_copied_to_device, copied) << "the resident column was copied in again";
  EXPECT_EQ(engine.memory().resident_columns_used, 1u);
  // Copied back from another thread, on a stream of its own.
  gpu::HostColumnBuffers back;
  std::thread([&] { back = made[0].resident->copy_to_host(); }).join();
  ASSERT_TRUE(back.on_host);
  ASSERT_EQ(back.values.size(), rows * sizeof(int64_t));
  EXPECT_EQ(engine.memory().columns_copied_back, 1u);
  EXPECT_EQ(engine.memory().bytes_copied_back, rows * sizeof(int64_t));
  for (size_t r = 0; r < rows; r += 997) {
    int64_t got = 0;
    std::memcpy(&got, back.values.data() + r * sizeof(int64_t), sizeof(int64_t));
    ASSERT_EQ(got, input.column("k").values<int64_t>()[r] * 2) << r;
  }
  gpu::ColumnView from_host;
  from_host.type = gpu::kInt64;
  from_host.values = back.values.data();
  in.keys = {from_host};
  const gpu::GroupedResult copied_in = engine.reduce(in);
  EXPECT_EQ(engine.memory().bytes_copied_to_device, copied + rows * sizeof(int64_t));
  EXPECT_EQ(in_place.first_row, copied_in.first_row);
  EXPECT_EQ(in_place.accumulators, copied_in.accumulators);
  EXPECT_EQ(in_place.groups, 16u);

  made.clear();
  EXPECT_EQ(engine.memory().resident_bytes, 0u) << "the device copy outlived its host column";
}

// Integer keys in a small range fold at their own slots of the blocks' tables, and half a
// million keys in a range whose table stays in the L2 cache at their own slots of a direct
// device table: on the GPU too, each key's sum and count and the groups' order of first row
// equal the host's.
TEST(CudaEngine, IntegerKeysInARangeFoldAtTheirOwnSlots) {
  SKIP_WITHOUT_GPU();
  gpu::DeviceEngine engine(0);
  const size_t rows = 3'000'000;
  struct Case {
    uint64_t range;
    bool block_tables, device_table;
  };
  for (const Case& c : {Case{1000, true, false}, Case{500'000, false, true}}) {
    SCOPED_TRACE(std::to_string(c.range) + " keys");
    std::mt19937_64 rng(c.range);
    std::vector<int64_t> k(rows), v(rows);
    for (size_t r = 0; r < rows; ++r) {
      k[r] = static_cast<int64_t>(rng() % c.range) - 500;  // -1 among them
      v[r] = static_cast<int64_t>(rng() % 1001) - 500;
    }
    gpu::GroupedInput in;
    in.rows = rows;
    gpu::ColumnView key, value;
    key.type = value.type = gpu::kInt64;
    key.values = k.data();
    value.values = v.data();
    in.keys = {key};
    gpu::FoldView sum, count;
    sum.op = gpu::kFoldSum;
    sum.input = value;
    count.op = gpu::kFoldCountRows;
    in.folds = {sum, count};
    const gpu::GroupedResult got = engine.reduce(in);
    EXPECT_EQ(got.direct_block_tables, c.block_tables);
    EXPECT_EQ(got.direct_device_table, c.device_table);
    std::unordered_map<int64_t, size_t> group_of;
    std::vector<int64_t> first, sums, counts;
    for (size_t r = 0; r < rows; ++r) {
      const auto [at, added] = group_of.emplace(k[r], first.size());
      if (added) {
        first.push_back(static_cast<int64_t>(r));
        sums.push_back(0);
        counts.push_back(0);
      }
      sums[at->second] += v[r];
      counts[at->second] += 1;
    }
    ASSERT_EQ(got.groups, first.size());
    for (size_t g = 0; g < got.groups; ++g) {
      ASSERT_EQ(got.first_row[g], first[g]) << "group " << g;
      ASSERT_EQ(static_cast<int64_t>(got.accumulators[g]), sums[g]) << "group " << g;
      ASSERT_EQ(static_cast<int64_t>(got.accumulators[got.groups + g]), counts[g]) << "group " << g;
    }
  }
}

TEST(CudaEngine, SteadyStateBatchesReuseThePoolInsteadOfGrowingIt) {
  SKIP_WITHOUT_GPU();
  const Table input = random_table(KeyKind::FewInts, 1000000, 9);
  gpu::DeviceEngine engine(0);
  const gpu::GroupedInput in = by_key_k(input, {gpu::FoldView{}});  // count of rows
  for (int i = 0; i < 3; ++i) engine.reduce(in);  // the pool grows to the batch's working set
  const uint64_t reserved = engine.memory().pool_reserved_bytes;
  for (int i = 0; i < 20; ++i) engine.reduce(in);
  EXPECT_EQ(engine.memory().pool_reserved_bytes, reserved) << "the pool grew in steady state";
  EXPECT_GT(engine.memory().pinned_staging_bytes, 0u);
}
#endif

}  // namespace
}  // namespace sluice
