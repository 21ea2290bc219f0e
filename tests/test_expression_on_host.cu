// Pipeline expressions compiled into row programs (Expression::compile) and run by the device
// interpreter (kernels/row_program.cuh) on the CPU through HostExec: the same __host__
// __device__ code the GPU runs. Every result is checked against the host evaluator
// (Expression::evaluate / evaluate_mask): every validity byte, and every value bit for bit,
// at null rows too (both give 0 there); string results (evaluate_string_rows) offset for
// offset and byte for byte, null rows holding no bytes. The one allowance: a NaN equals any
// NaN, because a GPU makes NaNs with another payload and sign than x86 (here, on the CPU, they
// agree anyway).
//
// Random well-typed expressions over random tables of every column type cover the whole
// language; hand-written cases pin down the edges (division by zero, INT64_MIN / -1, the sign
// of %, three-valued logic, NaN, byte-wise string order, token strings with `ends`, substr's
// clamping, trim's whitespace, case mappings meeting) and what compile() refuses.
#include <gtest/gtest.h>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "cuda/kernel_inputs.hpp"
#include "host_exec.cuh"
#include "pipeline/expression.hpp"
#include "row_program.cuh"
#include "sluice/column.hpp"

namespace sluice::gpu {
namespace {

using pipeline::Expression;

static_assert(std::is_trivially_copyable_v<RowProgram::Instruction>, "instructions are copied to the device as bytes");
static_assert(std::is_trivially_copyable_v<RowProgramView>, "the view is a kernel argument");
static_assert(kBool == static_cast<int32_t>(TypeId::Bool) && kInt32 == static_cast<int32_t>(TypeId::Int32) &&
              kInt64 == static_cast<int32_t>(TypeId::Int64) && kFloat32 == static_cast<int32_t>(TypeId::Float32) &&
              kFloat64 == static_cast<int32_t>(TypeId::Float64) && kString == static_cast<int32_t>(TypeId::String));

constexpr int64_t kInt64Min = std::numeric_limits<int64_t>::min();
constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// ------------------------------------------------------------------ running a program


/// What the device gives for one program: each row's validity byte; each row's value as raw
/// bits (bools and ints widened), or for string programs the offsets and bytes; and for bool
/// programs the rows select_rows keeps.
struct DeviceRun {
  std::vector<uint64_t> bits;
  std::vector<uint8_t> valid;
  std::vector<int64_t> selected;
  std::vector<int32_t> offsets;
  std::string chars;
};

DeviceRun run_program(const RowProgram& program, const std::vector<ColumnView>& input_views, size_t rows) {
  HostExec exec;
  const UploadedRowProgram<HostExec> uploaded(exec, program);
  EXPECT_EQ(uploaded.input_count(), input_views.size());
  auto inputs = exec.alloc<ColumnView>(input_views.size());
  exec.to_device(inputs.data(), input_views.data(), input_views.size() * sizeof(ColumnView));
  DeviceRun run;
  if (program.result_type == kString) {
    const StringRows<HostExec> strings = evaluate_string_rows(exec, uploaded, inputs.data(), rows);
    run.valid.resize(rows);
    run.offsets.resize(rows + 1);
    run.chars.resize(strings.bytes);
    exec.to_host(run.valid.data(), strings.valid.data(), rows);
    exec.to_host(run.offsets.data(), strings.offsets.data(), (rows + 1) * sizeof(int32_t));
    exec.to_host(run.chars.data(), strings.chars.data(), strings.bytes);
    return run;
  }
  auto values = exec.alloc<int64_t>(rows);  // 8 bytes a row hold any result type
  auto valid = exec.alloc<uint8_t>(rows);
  evaluate_rows(exec, uploaded, inputs.data(), rows, values.data(), valid.data());

  run.bits.resize(rows);
  run.valid.resize(rows);
  exec.to_host(run.valid.data(), valid.data(), rows);
  for (size_t r = 0; r < rows; ++r) {
    switch (program.result_type) {
      case kBool: run.bits[r] = reinterpret_cast<const uint8_t*>(values.data())[r]; break;
      case kInt64: run.bits[r] = static_cast<uint64_t>(values.data()[r]); break;
      default: std::memcpy(&run.bits[r], values.data() + r, sizeof(double)); break;
    }
  }
  if (program.result_type == kBool) {
    auto selected = exec.alloc<int64_t>(rows);
    const size_t n = select_rows(exec, uploaded, inputs.data(), rows, selected.data());
    run.selected.assign(selected.data(), selected.data() + n);
  }
  return run;
}

/// The program's inputs: the table's columns it names, in RowProgram::fields order.
std::vector<ColumnView> inputs_of(const RowProgram& program, const Table& table) {
  std::vector<ColumnView> views;
  for (size_t field : program.fields) views.push_back(host_view(table.column(field)));
  return views;
}

uint64_t bits_of(const Column& c, size_t r) {
  switch (c.type()) {
    case TypeId::Bool: return c.values<uint8_t>()[r];
    case TypeId::Int64: return static_cast<uint64_t>(c.values<int64_t>()[r]);
    default: {
      uint64_t b;
      const double d = c.values<double>()[r];
      std::memcpy(&b, &d, sizeof b);
      return b;
    }
  }
}

bool is_nan_bits(uint64_t b) {
  double d;
  std::memcpy(&d, &b, sizeof d);
  return std::isnan(d);
}

std::string describe_bits(int32_t type, uint64_t b) {
  if (type != kFloat64) return std::to_string(static_cast<int64_t>(b));
  double d;
  std::memcpy(&d, &b, sizeof d);
  char text[64];
  std::snprintf(text, sizeof text, "%.17g (bits %016llx)", d, static_cast<unsigned long long>(b));
  return text;
}

/// Bytes as C++ spells them, for failure messages (the test strings hold NULs and 0xff).
std::string escaped(std::string_view bytes) {
  std::string out = "\"";
  for (char c : bytes) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f && c != '"' && c != '\\') {
      out += c;
    } else {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", u);
      out += hex;
    }
  }
  return out + "\"";
}

/// A string result against the host's column: the same offsets (so null rows hold no bytes),
/// the same bytes, the same validity.
::testing::AssertionResult same_strings_as_host(const std::string& text, const Column& host, const DeviceRun& device) {
  const size_t rows = host.size();
  for (size_t r = 0; r < rows; ++r) {
    const std::string_view device_string(device.chars.data() + device.offsets[r],
                                         static_cast<size_t>(device.offsets[r + 1] - device.offsets[r]));
    if (device.valid[r] != host.is_valid(r) || device_string != host.string_at(r))
      return ::testing::AssertionFailure() << "'" << text << "' row " << r << " of " << rows << ": device "
                                           << (device.valid[r] ? escaped(device_string) : "null") << ", host "
                                           << (host.is_valid(r) ? escaped(host.string_at(r)) : "null");
  }
  const std::vector<int32_t> host_offsets(host.offsets().begin(), host.offsets().end());
  if (device.offsets != host_offsets || device.chars != std::string_view(host.chars().data(), host.chars().size()))
    return ::testing::AssertionFailure() << "'" << text << "': the same strings, but the offsets or bytes differ ("
                                         << device.chars.size() << " bytes on the device, " << host.chars().size() << " on the host)";
  return ::testing::AssertionSuccess();
}

/// The device's results for @p program on @p inputs (rows of @p table, or views of the same
/// values in another layout) against the host evaluator's on @p table.
::testing::AssertionResult same_as_host(const Expression& expr, const RowProgram& program, const Table& table,
                                        const std::vector<ColumnView>& inputs) {
  const Schema& schema = table.schema();
  const TypeId host_type = expr.result_type(schema);
  if (program.result_type != static_cast<int32_t>(host_type) || program.result_nullable != expr.result_nullable(schema))
    return ::testing::AssertionFailure() << "'" << expr.text() << "': program gives " << type_name(static_cast<TypeId>(program.result_type))
                                         << (program.result_nullable ? " nullable" : "") << ", host " << type_name(host_type)
                                         << (expr.result_nullable(schema) ? " nullable" : "");
  const Column host = expr.evaluate(table);
  const size_t rows = table.num_rows();
  const DeviceRun device = run_program(program, inputs, rows);
  if (program.result_type == kString) return same_strings_as_host(expr.text(), host, device);
  for (size_t r = 0; r < rows; ++r) {
    const uint8_t host_valid = host.is_valid(r);
    const uint64_t host_bits = bits_of(host, r);
    const bool same_value = device.bits[r] == host_bits ||
                            (program.result_type == kFloat64 && is_nan_bits(device.bits[r]) && is_nan_bits(host_bits));
    if (device.valid[r] != host_valid || !same_value)
      return ::testing::AssertionFailure() << "'" << expr.text() << "' row " << r << " of " << rows << ": device "
                                           << (device.valid[r] ? describe_bits(program.result_type, device.bits[r]) : "null")
                                           << ", host " << (host_valid ? describe_bits(program.result_type, host_bits) : "null")
                                           << " (stored value " << describe_bits(program.result_type, host_bits) << ")";
  }
  if (program.result_type == kBool) {
    const std::vector<uint8_t> mask = expr.evaluate_mask(table);
    std::vector<int64_t> expected;
    for (size_t r = 0; r < rows; ++r)
      if (mask[r]) expected.push_back(static_cast<int64_t>(r));
    if (device.selected != expected)
      return ::testing::AssertionFailure() << "'" << expr.text() << "': select_rows keeps " << device.selected.size()
                                           << " rows, evaluate_mask " << expected.size();
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult same_as_host(const std::string& text, const Table& table) {
  const Expression expr = Expression::parse(text);
  const std::optional<RowProgram> program = expr.compile(table.schema());
  if (!program) return ::testing::AssertionFailure() << "'" << text << "' does not compile";
  return same_as_host(expr, *program, table, inputs_of(*program, table));
}

// ------------------------------------------------------------------ random tables

/// Values chosen to hit the edges often: zeros and -1 (division), the ends of the ranges
/// (wrapping, int() limits), NaN, -0.0, infinities, halves (round), bytes above 0x7f.
class TableGenerator {
 public:
  explicit TableGenerator(uint64_t seed) : rng_(seed) {}

  static Schema schema() {
    return Schema{{"i32", TypeId::Int32},   {"n_i32", TypeId::Int32, true},   {"i64", TypeId::Int64},
                  {"n_i64", TypeId::Int64, true}, {"f32", TypeId::Float32},   {"n_f32", TypeId::Float32, true},
                  {"f64", TypeId::Float64}, {"n_f64", TypeId::Float64, true}, {"b", TypeId::Bool},
                  {"n_b", TypeId::Bool, true},  {"s", TypeId::String},      {"n_s", TypeId::String, true},
                  {"num", TypeId::String, true}};
  }

  Table table(size_t rows) {
    const Schema s = schema();
    std::vector<Column> columns;
    for (const Field& f : s) {
      Column c(f.type, f.nullable);
      for (size_t r = 0; r < rows; ++r) {
        if (f.nullable && chance(0.2)) {
          c.append_null();
          continue;
        }
        switch (f.type) {
          case TypeId::Int32: c.append<int32_t>(int32_value()); break;
          case TypeId::Int64: c.append<int64_t>(int64_value()); break;
          case TypeId::Float32: c.append<float>(float32_value()); break;
          case TypeId::Float64: c.append<double>(float64_value()); break;
          case TypeId::Bool: c.append<uint8_t>(chance(0.5) ? 1 : 0); break;
          default: c.append_string(f.name == "num" ? number_text() : short_string()); break;
        }
      }
      columns.push_back(std::move(c));
    }
    return Table(s, std::move(columns));
  }

  bool chance(double p) { return std::uniform_real_distribution<double>(0, 1)(rng_) < p; }
  template <class T> const T& pick(const std::vector<T>& v) { return v[std::uniform_int_distribution<size_t>(0, v.size() - 1)(rng_)]; }
  int64_t small() { return std::uniform_int_distribution<int64_t>(-12, 12)(rng_); }

  int64_t int64_value() {
    static const std::vector<int64_t> edges = {0, 1, -1, 2, -2, 3, 7, -7, kInt64Min, kInt64Max, kInt64Min + 1, kInt64Max - 1,
                                               int64_t{1} << 62, INT32_MIN, INT32_MAX, int64_t{1} << 53, (int64_t{1} << 53) + 1};
    if (chance(0.3)) return pick(edges);
    if (chance(0.6)) return small();
    return static_cast<int64_t>(rng_());
  }
  int32_t int32_value() {
    static const std::vector<int32_t> edges = {0, 1, -1, 2, -2, 7, -7, INT32_MIN, INT32_MAX, INT32_MIN + 1};
    if (chance(0.3)) return pick(edges);
    if (chance(0.6)) return static_cast<int32_t>(small());
    return static_cast<int32_t>(rng_());
  }
  double float64_value() {
    static const std::vector<double> edges = {0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 1.5, 2.5, -2.5, 0.49999999999999994, kNaN, -kNaN,
                                              kInf, -kInf, 1e308, -1e308, std::numeric_limits<double>::min(),
                                              std::numeric_limits<double>::denorm_min(), 9223372036854775808.0,
                                              -9223372036854775808.0, 9223372036854774784.0, -9223372036854777856.0,
                                              4503599627370496.5, 9007199254740993.0, 1e18, -3.0, 7.0};
    if (chance(0.35)) return pick(edges);
    if (chance(0.4)) return static_cast<double>(small());
    if (chance(0.5)) return std::uniform_real_distribution<double>(-100, 100)(rng_);
    return std::ldexp(std::uniform_real_distribution<double>(-1, 1)(rng_), std::uniform_int_distribution<int>(-1074, 1023)(rng_));
  }
  float float32_value() {
    static const std::vector<float> edges = {0.0f, -0.0f, 1.5f, -2.5f, 0.1f, std::numeric_limits<float>::quiet_NaN(),
                                             std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                                             3.4e38f, 1e-45f, 16777217.0f};
    if (chance(0.35)) return pick(edges);
    if (chance(0.4)) return static_cast<float>(small());
    return std::uniform_real_distribution<float>(-1000, 1000)(rng_);
  }
  /// Short strings over a small alphabet, so that equal strings and prefixes are common: both
  /// cases of some letters (and 'Z', 'z' and their neighbours '@', '[', '`', '{', which case
  /// mapping must leave alone), every byte trim() strips, bytes above 0x7f, NUL.
  std::string short_string() {
    static const std::string alphabet = {'a', 'b', 'a', 'b', 'c', 'A', 'B', 'Z', 'z', '@', '[', '`', '{', ' ', ' ',
                                         '\t', '\n', '\v', '\f', '\r', '1', '-', '\xff', '\x80', '\xe0', '\0'};
    if (chance(0.1)) return pick(std::vector<std::string>{"", "ab", "abc", "a b", "it's", "AB", " \t\r\n\f\v ", " Ab "});
    const size_t n = std::uniform_int_distribution<size_t>(0, chance(0.1) ? 40 : 4)(rng_);
    std::string s;
    for (size_t k = 0; k < n; ++k) s += alphabet[std::uniform_int_distribution<size_t>(0, alphabet.size() - 1)(rng_)];
    return s;
  }
  /// Texts for int() and float(): valid numbers and the near misses std::from_chars rejects,
  /// floats beyond the exact fast path (many digits, large and tiny exponents, subnormals,
  /// halfway cases) and those out of range either way.
  std::string number_text() {
    static const std::vector<std::string> texts = {
        "0", "12", "-12", "-0", "007", "+1", " 1", "1 ", "1x", "", "-", "--1", "9223372036854775807", "9223372036854775808",
        "-9223372036854775808", "-9223372036854775809", "99999999999999999999", "1.5", "1e3", "0x10", ".5", "5.", "-.5e-3",
        "1e", "1e+", "1E+300", "1e309", "-1e400", "1e-400", "2e-324", "3e-324", "2.4703282292062328e-324",
        "2.4703282292062327e-324", "4.9406564584124654e-324", "2.2250738585072011e-308", "1.7976931348623157e308",
        "1.7976931348623159e308", "0.1234567890123456789012345", "9007199254740993", "9007199254740992.5000000000000001",
        "123456789012345678901234567890e-10", "6.02214076e23", "1.602176634e-19", "inf", "-Infinity", "NaN", "-nan",
        "nan(x_1)", "nan(", "nan(a-b)", "infinit", "0e999999", "1e-999999999999"};
    if (chance(0.5)) return pick(texts);
    if (chance(0.3)) {  // a random double's text, at a random precision
      uint64_t bits = rng_();
      double v = 0;
      std::memcpy(&v, &bits, 8);
      char buffer[64];
      std::snprintf(buffer, sizeof buffer, "%.*g", std::uniform_int_distribution<int>(1, 20)(rng_), v);
      return buffer;
    }
    return std::to_string(static_cast<int64_t>(rng_()) >> std::uniform_int_distribution<int>(0, 63)(rng_));
  }

  std::mt19937_64& rng() { return rng_; }

 private:
  std::mt19937_64 rng_;
};

// ------------------------------------------------------------------ random expressions

enum class Kind { Bool, Int, Float, Str };

/// Random expressions of a requested kind, well typed except where a `null` leaf changes a
/// type (those the host rejects are skipped). Every function compiles; compile() refuses bare
/// fields only, which the generator makes now and then.
class ExpressionGenerator {
 public:
  explicit ExpressionGenerator(TableGenerator& values) : values_(values) {}

  struct Generated {
    std::string text;
    Kind kind = Kind::Bool;
  };

  Generated next() {
    nodes_ = 0;
    const double p = uniform();
    const Kind kind = p < 0.35 ? Kind::Bool : p < 0.55 ? Kind::Int : p < 0.75 ? Kind::Float : Kind::Str;
    Generated g;
    g.text = gen(kind, 0);
    g.kind = kind;
    return g;
  }

  static constexpr int kMaxDepth = 5;
  // Each node compiles to a few instructions (itself, and per operand a coercion or its text),
  // so this budget keeps programs within RowProgram::kMaxInstructions; cross_check asserts it.
  static constexpr int kNodeBudget = 24;

 private:
  double uniform() { return std::uniform_real_distribution<double>(0, 1)(values_.rng()); }
  int below(int n) { return std::uniform_int_distribution<int>(0, n - 1)(values_.rng()); }
  template <class T> const T& pick(const std::vector<T>& v) { return values_.pick(v); }

  std::string gen(Kind kind, int depth) {
    ++nodes_;
    if (depth >= kMaxDepth || nodes_ >= kNodeBudget || uniform() < 0.1 + 0.15 * depth) return leaf(kind);
    switch (kind) {
      case Kind::Bool: return gen_bool(depth + 1);
      case Kind::Int: return gen_int(depth + 1);
      case Kind::Float: return gen_float(depth + 1);
      default: return gen_str(depth + 1);
    }
  }

  static std::string call(const std::string& fn, std::initializer_list<std::string> args) {
    std::string out = fn + "(";
    bool first = true;
    for (const std::string& a : args) out += (first ? "" : ", ") + a, first = false;
    return out + ")";
  }
  static std::string paren(const std::string& a, const std::string& op, const std::string& b) { return "(" + a + " " + op + " " + b + ")"; }

  Kind number_kind() { return uniform() < 0.5 ? Kind::Int : Kind::Float; }
  Kind any_kind() { return static_cast<Kind>(below(4)); }

  std::string gen_int(int d) {
    switch (below(12)) {
      case 0:
      case 1: return paren(gen(Kind::Int, d), pick<std::string>({"+", "-", "*", "/", "%"}), gen(Kind::Int, d));
      case 2: return "(-" + gen(Kind::Int, d) + ")";
      case 3: return call(pick<std::string>({"abs", "floor", "ceil", "round"}), {gen(Kind::Int, d)});
      case 4: return call(pick<std::string>({"min", "max"}), {gen(Kind::Int, d), gen(Kind::Int, d)});
      case 5: return call("if", {gen(Kind::Bool, d), gen(Kind::Int, d), gen(Kind::Int, d)});
      case 6:
        if (uniform() < 0.5) return call("coalesce", {gen(Kind::Int, d), gen(Kind::Int, d)});
        return call("coalesce", {gen(Kind::Int, d), gen(Kind::Int, d), gen(Kind::Int, d)});
      case 7: return call("len", {gen(Kind::Str, d)});
      case 8: return call("int", {gen(Kind::Float, d)});
      case 9: return call("int", {gen(uniform() < 0.7 ? Kind::Bool : Kind::Int, d)});
      case 10: return call("int", {uniform() < 0.7 ? pick<std::string>({"num", "n_s", "'-5'", "'+5'"}) : gen(Kind::Str, d)});
      default: return leaf(Kind::Int);
    }
  }

  std::string gen_float(int d) {
    switch (below(11)) {
      case 0:
      case 1:
      case 2: {
        const std::string op = pick<std::string>({"+", "-", "*", "/", "%"});
        const int shape = below(3);  // float op float, float op int, int op float
        return paren(gen(shape == 2 ? Kind::Int : Kind::Float, d), op, gen(shape == 1 ? Kind::Int : Kind::Float, d));
      }
      case 3: return "(-" + gen(Kind::Float, d) + ")";
      case 4: return call(pick<std::string>({"abs", "floor", "ceil", "round"}), {gen(Kind::Float, d)});
      case 5: return call(pick<std::string>({"min", "max"}), {gen(number_kind(), d), gen(Kind::Float, d)});
      case 6: return call("if", {gen(Kind::Bool, d), gen(number_kind(), d), gen(Kind::Float, d)});
      case 7: return call("coalesce", {gen(Kind::Float, d), gen(number_kind(), d)});
      case 8: return call("float", {gen(pick<Kind>({Kind::Int, Kind::Bool, Kind::Float}), d)});
      case 9:
        if (uniform() < 0.5) return call("float", {uniform() < 0.3 ? gen(Kind::Str, d) : pick<std::string>({"num", "n_s", "lower(num)", "trim(num)", "concat(num, num)", "substr(num, 1, 30)"})});
        return call("float", {gen(Kind::Int, d)});
      default: return leaf(Kind::Float);
    }
  }

  std::string gen_bool(int d) {
    switch (below(10)) {
      case 0:
      case 1:
      case 2: {
        const std::string op = pick<std::string>({"==", "!=", "<", "<=", ">", ">="});
        switch (below(6)) {
          case 0: return paren(gen(Kind::Int, d), op, gen(Kind::Int, d));
          case 1: return paren(gen(Kind::Float, d), op, gen(Kind::Float, d));
          case 2: return paren(gen(Kind::Int, d), op, gen(Kind::Float, d));
          case 3: return paren(gen(Kind::Bool, d), op, gen(Kind::Bool, d));
          default: return paren(gen(Kind::Str, d), op, gen(Kind::Str, d));
        }
      }
      case 3: return paren(gen(Kind::Bool, d), pick<std::string>({"and", "or", "AND", "Or"}), gen(Kind::Bool, d));
      case 4: return "(not " + gen(Kind::Bool, d) + ")";
      case 5: return call("is_null", {gen(any_kind(), d)});
      case 6: return call(pick<std::string>({"contains", "starts_with", "ends_with"}), {gen(Kind::Str, d), gen(Kind::Str, d)});
      case 7: return call("if", {gen(Kind::Bool, d), gen(Kind::Bool, d), gen(Kind::Bool, d)});
      case 8: return call("coalesce", {gen(Kind::Bool, d), gen(Kind::Bool, d)});
      default: return leaf(Kind::Bool);
    }
  }

  std::string gen_str(int d) {
    switch (below(10)) {
      case 0: return call("if", {gen(Kind::Bool, d), gen(Kind::Str, d), gen(Kind::Str, d)});
      case 1:
        if (uniform() < 0.7) return call("coalesce", {gen(Kind::Str, d), gen(Kind::Str, d)});
        return call("coalesce", {gen(Kind::Str, d), gen(Kind::Str, d), gen(Kind::Str, d)});
      case 2: return call(pick<std::string>({"min", "max"}), {gen(Kind::Str, d), gen(Kind::Str, d)});
      case 3:
      case 4: return call(pick<std::string>({"lower", "upper"}), {gen(Kind::Str, d)});
      case 5: return call("trim", {gen(Kind::Str, d)});
      case 6:
      case 7: return call("substr", {gen(Kind::Str, d), substr_bound(d), substr_bound(d)});
      case 8:
        if (uniform() < 0.3) {
          const std::string arg = gen(any_kind(), d);  // text of any kind
          if (uniform() < 0.5) return call("concat", {gen(Kind::Str, d), arg});
          if (uniform() < 0.3) return call("concat", {arg, gen(Kind::Str, d), gen(Kind::Str, d)});
          return call("string", {arg});
        }
        return leaf(Kind::Str);
      default: return leaf(Kind::Str);
    }
  }

  /// A start or length for substr: mostly small, so that it lands in, at and just past the
  /// ends of short strings, from either end; sometimes any int expression (huge, null).
  std::string substr_bound(int d) {
    if (uniform() < 0.4) return gen(Kind::Int, d);
    ++nodes_;
    return int_literal(std::uniform_int_distribution<int64_t>(-6, 6)(values_.rng()));
  }

  static std::string int_literal(int64_t v) {
    if (v == kInt64Min) return "(-9223372036854775807 - 1)";  // 9223372036854775808 is no int64
    return std::to_string(v);
  }
  static std::string float_literal(double v) {
    if (std::isnan(v)) return "((1e308 * 10.0) - (1e308 * 10.0))";  // no literal spells NaN: inf - inf
    if (std::isinf(v)) return v > 0 ? "(1e308 * 10.0)" : "(-1e308 * 10.0)";
    char buf[64];
    const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    std::string text(buf, end);
    if (text.find_first_of(".e") == std::string::npos) text += ".0";
    return text;
  }
  static std::string string_literal(const std::string& s) {
    std::string out = "'";
    for (char c : s) {
      if (c == '\'' || c == '\\') out += '\\';
      out += c;
    }
    return out + "'";
  }

  std::string leaf(Kind kind) {
    if (uniform() < 0.04) return pick<std::string>({"null", "NULL", "Null"});
    const bool field = uniform() < 0.55;
    switch (kind) {
      case Kind::Bool:
        if (field) return pick<std::string>({"b", "n_b"});
        return pick<std::string>({"true", "false", "TRUE", "False"});
      case Kind::Int:
        if (field) return pick<std::string>({"i32", "n_i32", "i64", "n_i64"});
        return int_literal(values_.int64_value());
      case Kind::Float:
        if (field) return pick<std::string>({"f32", "n_f32", "f64", "n_f64"});
        return float_literal(values_.float64_value());
      default:
        if (field) return pick<std::string>({"s", "n_s", "num"});
        return string_literal(uniform() < 0.5 ? values_.short_string() : values_.number_text());
    }
  }

  TableGenerator& values_;
  int nodes_ = 0;
};

bool is_bare_field(const Expression& expr) {
  // A bare field (even in parentheses) names exactly one field and is nothing else.
  const std::vector<std::string> fields = expr.referenced_fields();
  if (fields.size() != 1) return false;
  std::string stripped;
  for (char c : expr.text())
    if (c != '(' && c != ')' && c != ' ') stripped += c;
  return stripped == fields[0];
}

// ------------------------------------------------------------------ the differential test

struct Tally {
  std::set<RowProgram::Op> opcodes;  // every opcode some compiled program used
  size_t compiled = 0;
  size_t refused = 0;
  size_t type_errors = 0;
  size_t rows = 0;
  size_t string_results = 0;  // compiled programs with a string result (run by evaluate_string_rows)
  size_t string_rows = 0;
};

void cross_check(uint64_t seed, size_t rows, size_t expressions, Tally& tally) {
  TableGenerator values(seed * 1000003 + rows);
  const Table table = values.table(rows);
  ExpressionGenerator generator(values);
  for (size_t k = 0; k < expressions; ++k) {
    const ExpressionGenerator::Generated g = generator.next();
    SCOPED_TRACE("seed " + std::to_string(seed) + ", " + std::to_string(rows) + " rows: " + g.text);
    const Expression expr = Expression::parse(g.text);
    TypeId host_type;
    try {
      host_type = expr.result_type(table.schema());
    } catch (const Error&) {
      ++tally.type_errors;  // a null leaf made it ill-typed: compile() must say so too
      EXPECT_THROW(expr.compile(table.schema()), Error);
      continue;
    }
    const std::optional<RowProgram> program = expr.compile(table.schema());
    const bool refused = is_bare_field(expr);
    ASSERT_EQ(program.has_value(), !refused);
    if (!program) {
      ++tally.refused;
      continue;
    }
    ASSERT_LE(program->instructions.size(), static_cast<size_t>(RowProgram::kMaxInstructions));
    ASSERT_TRUE(same_as_host(expr, *program, table, inputs_of(*program, table)));
    for (const RowProgram::Instruction& ins : program->instructions) tally.opcodes.insert(ins.op);
    ++tally.compiled;
    tally.rows += rows;
    if (host_type == TypeId::String) {
      ++tally.string_results;
      tally.string_rows += rows;
    }
  }
}

TEST(ExpressionOnHost, RandomExpressionsAgreeWithTheHostEvaluator) {
  Tally tally;
  for (uint64_t seed = 1; seed <= 8; ++seed) {
    for (size_t rows : {size_t{0}, size_t{1}, size_t{2}, size_t{7}, size_t{64}, size_t{1001}}) cross_check(seed, rows, 400, tally);
    cross_check(seed, 10007, 200, tally);
    if (HasFatalFailure()) return;
  }
  std::printf("cross-checked %zu compiled expressions (%zu expression-rows), %zu of them with string results (%zu "
              "expression-rows); %zu refused by compile(), %zu ill-typed\n",
              tally.compiled, tally.rows, tally.string_results, tally.string_rows, tally.refused, tally.type_errors);
  EXPECT_GT(tally.compiled, 5000u);
  EXPECT_GT(tally.string_results, 1000u);
  EXPECT_GT(tally.refused, 100u);
  for (auto op = static_cast<int32_t>(RowProgram::Op::LoadBool); op <= static_cast<int32_t>(RowProgram::kLastOp); ++op)
    EXPECT_TRUE(tally.opcodes.count(static_cast<RowProgram::Op>(op))) << "opcode " << op << " never ran";
}

// ------------------------------------------------------------------ hand-written edges

Table ints_table(std::vector<int64_t> a, std::vector<int64_t> b) {
  Column x(TypeId::Int64), y(TypeId::Int64);
  for (int64_t v : a) x.append<int64_t>(v);
  for (int64_t v : b) y.append<int64_t>(v);
  return Table(Schema{{"a", TypeId::Int64}, {"b", TypeId::Int64}}, {std::move(x), std::move(y)});
}

/// Device results for @p text on @p table as host-readable optional values (nullopt = null).
template <class T> std::vector<std::optional<T>> device_values(const std::string& text, const Table& table) {
  const Expression expr = Expression::parse(text);
  const std::optional<RowProgram> program = expr.compile(table.schema());
  EXPECT_TRUE(program.has_value()) << text;
  if (!program) return {};
  EXPECT_TRUE(same_as_host(expr, *program, table, inputs_of(*program, table)));
  const DeviceRun run = run_program(*program, inputs_of(*program, table), table.num_rows());
  std::vector<std::optional<T>> out;
  for (size_t r = 0; r < table.num_rows(); ++r) {
    if (!run.valid[r]) {
      out.push_back(std::nullopt);
      continue;
    }
    T v;
    if constexpr (std::is_same_v<T, double>) std::memcpy(&v, &run.bits[r], sizeof v);
    else v = static_cast<T>(run.bits[r]);
    out.push_back(v);
  }
  return out;
}

using Ints = std::vector<std::optional<int64_t>>;
using Bools = std::vector<std::optional<bool>>;
using Strings = std::vector<std::optional<std::string>>;

/// Device results for the string expression @p text on @p table (nullopt = null), checked
/// against the host's on the way.
Strings device_strings(const std::string& text, const Table& table) {
  const Expression expr = Expression::parse(text);
  const std::optional<RowProgram> program = expr.compile(table.schema());
  EXPECT_TRUE(program.has_value()) << text;
  if (!program || program->result_type != kString) {
    ADD_FAILURE() << "'" << text << "' is not a compiled string program";
    return {};
  }
  EXPECT_TRUE(same_as_host(expr, *program, table, inputs_of(*program, table)));
  const DeviceRun run = run_program(*program, inputs_of(*program, table), table.num_rows());
  Strings out;
  for (size_t r = 0; r < table.num_rows(); ++r) {
    if (run.valid[r]) out.emplace_back(run.chars.substr(run.offsets[r], run.offsets[r + 1] - run.offsets[r]));
    else out.emplace_back(std::nullopt);
  }
  return out;
}

Table strings_column_table(const std::vector<std::string>& values) {
  Column s(TypeId::String);
  for (const auto& v : values) s.append_string(v);
  return Table(Schema{{"s", TypeId::String}}, {std::move(s)});
}

TEST(ExpressionOnHost, IntegerDivisionAndRemainder) {
  const Table t = ints_table({7, -7, 7, -7, kInt64Min, kInt64Min, 5, kInt64Max}, {2, 2, -2, -2, -1, 0, 0, -1});
  EXPECT_EQ(device_values<int64_t>("a / b", t), (Ints{3, -3, -3, 3, kInt64Min, std::nullopt, std::nullopt, -kInt64Max}));
  EXPECT_EQ(device_values<int64_t>("a % b", t), (Ints{1, -1, 1, -1, 0, std::nullopt, std::nullopt, 0}));
  EXPECT_EQ(device_values<int64_t>("a * b", t), (Ints{14, -14, -14, 14, kInt64Min, 0, 0, -kInt64Max}));
  EXPECT_EQ(device_values<int64_t>("-a", t), (Ints{-7, 7, -7, 7, kInt64Min, kInt64Min, -5, -kInt64Max}));
  EXPECT_EQ(device_values<int64_t>("abs(a)", t), (Ints{7, 7, 7, 7, kInt64Min, kInt64Min, 5, kInt64Max}));
  EXPECT_EQ(device_values<int64_t>("a + 9223372036854775807", t)[7], -2);  // wraps
  EXPECT_TRUE(same_as_host("a / 0 + b", t));
  EXPECT_TRUE(same_as_host("coalesce(a / b, -1)", t));
}

TEST(ExpressionOnHost, FloatDivisionEdges) {
  Column x(TypeId::Float64), y(TypeId::Float64);
  const std::vector<std::pair<double, double>> pairs = {{1, 0}, {1, -0.0}, {0, 0}, {kNaN, 0}, {1, kNaN}, {kInf, 2}, {5.5, 2},
                                                        {-5.5, 2}, {5.5, kInf}, {kInf, kInf}, {-0.0, 3}, {1e308, 1e-308}};
  for (auto [a, b] : pairs) x.append<double>(a), y.append<double>(b);
  const Table t(Schema{{"x", TypeId::Float64}, {"y", TypeId::Float64}}, {std::move(x), std::move(y)});
  for (const char* text : {"x / y", "x % y", "x * y + x", "x - y * 2.0", "round(x / y)", "int(x / y)", "min(x, y)", "max(x, y)",
                           "min(y, x)", "x == y", "x != y", "x < y", "x >= y", "-x", "abs(-x)", "floor(x) + ceil(y)"})
    EXPECT_TRUE(same_as_host(text, t)) << text;
  const auto quotient = device_values<double>("x / y", t);
  EXPECT_FALSE(quotient[0].has_value());  // 1 / 0
  EXPECT_FALSE(quotient[1].has_value());  // 1 / -0.0
  EXPECT_TRUE(quotient[4].has_value() && std::isnan(*quotient[4]));
  const auto nan_equal = device_values<bool>("x != x", t);
  EXPECT_EQ(nan_equal[3], std::optional<bool>(true));
  EXPECT_EQ(nan_equal[0], std::optional<bool>(false));
}

TEST(ExpressionOnHost, RoundingAndConversions) {
  Column x(TypeId::Float64);
  for (double v : {0.5, 1.5, 2.5, -0.5, -2.5, 0.49999999999999994, -0.0, 9223372036854775807.0, 9223372036854774784.0,
                   -9223372036854775808.0, -9223372036854777856.0, kNaN, kInf, 1e300})
    x.append<double>(v);
  const Table t(Schema{{"x", TypeId::Float64}}, {std::move(x)});
  const auto rounded = device_values<double>("round(x)", t);
  EXPECT_EQ(rounded[0], 1.0);
  EXPECT_EQ(rounded[2], 3.0);
  EXPECT_EQ(rounded[4], -3.0);
  EXPECT_EQ(rounded[5], 0.0);
  const auto truncated = device_values<int64_t>("int(x)", t);
  EXPECT_EQ(truncated[7], std::nullopt);  // 2^63 is out of range
  EXPECT_EQ(truncated[8], 9223372036854774784);
  EXPECT_EQ(truncated[9], kInt64Min);
  EXPECT_EQ(truncated[10], std::nullopt);
  EXPECT_EQ(truncated[11], std::nullopt);  // NaN
  EXPECT_EQ(truncated[12], std::nullopt);
  for (const char* text : {"floor(x)", "ceil(x)", "abs(x)", "float(int(x))", "int(x) + 1", "float(x > 0)", "int(x < 1)"})
    EXPECT_TRUE(same_as_host(text, t)) << text;
}

TEST(ExpressionOnHost, ThreeValuedLogic) {
  // Every pair of true, false and null.
  Column p(TypeId::Bool, true), q(TypeId::Bool, true);
  const std::vector<std::optional<bool>> values = {true, false, std::nullopt};
  for (auto a : values)
    for (auto b : values) {
      a ? p.append<uint8_t>(*a) : p.append_null();
      b ? q.append<uint8_t>(*b) : q.append_null();
    }
  const Table t(Schema{{"p", TypeId::Bool, true}, {"q", TypeId::Bool, true}}, {std::move(p), std::move(q)});
  const std::optional<bool> T = true, F = false, N = std::nullopt;
  EXPECT_EQ(device_values<bool>("p and q", t), (Bools{T, F, N, F, F, F, N, F, N}));
  EXPECT_EQ(device_values<bool>("p or q", t), (Bools{T, T, T, T, F, N, T, N, N}));
  EXPECT_EQ(device_values<bool>("not p", t), (Bools{F, F, F, T, T, T, N, N, N}));
  EXPECT_EQ(device_values<bool>("is_null(p and q)", t), (Bools{F, F, T, F, F, F, T, F, T}));
  EXPECT_EQ(device_values<bool>("if(p, q, not q)", t), (Bools{T, F, N, F, T, N, N, N, N}));
  EXPECT_EQ(device_values<bool>("coalesce(p, q, true)", t), (Bools{T, T, T, F, F, F, T, F, T}));
  EXPECT_EQ(device_values<bool>("p == q", t), (Bools{T, F, N, F, T, N, N, N, N}));
  EXPECT_EQ(device_values<bool>("p > q", t), (Bools{F, T, N, F, F, N, N, N, N}));
  for (const char* text : {"null", "not null", "null and false", "null or true", "is_null(null)", "coalesce(null, p)", "-null",
                           "null + 1.5", "int(null)", "float(null)", "if(null, 1, 2)", "if(p, null, 2.5)", "null == null",
                           "coalesce(null, null)", "min(null, 1)", "abs(null)", "len(null)", "contains(null, 'a')"})
    EXPECT_TRUE(same_as_host(text, t)) << text;
}

Table strings_table() {
  Column s(TypeId::String), n(TypeId::String, true);
  const std::vector<std::string> a = {"", "a", "ab", "b", "\xff", "a\xff", "abc", "B", "ab", "x y"};
  const std::vector<std::string> b = {"", "ab", "a", "a", "a", "a\x80", "abc", "b", "", "y"};
  for (const auto& v : a) s.append_string(v);
  for (size_t k = 0; k < b.size(); ++k) k == 3 ? n.append_null() : n.append_string(b[k]);
  return Table(Schema{{"s", TypeId::String}, {"n", TypeId::String, true}}, {std::move(s), std::move(n)});
}

TEST(ExpressionOnHost, StringComparisonsAndSearches) {
  const Table t = strings_table();
  // Byte-wise, unsigned: "\xff" sorts after every ASCII string; a proper prefix sorts first.
  EXPECT_EQ(device_values<bool>("s < n", t),
            (Bools{false, true, false, std::nullopt, false, false, false, true, false, true}));
  EXPECT_EQ(device_values<bool>("s > 'a'", t), (Bools{false, false, true, true, true, true, true, false, true, true}));
  for (const char* text : {"s == n", "s != n", "s <= n", "s >= n", "s == 'ab'", "'ab' != s", "s < '\xff'", "len(s)", "len(n) + len(s)",
                           "contains(s, n)", "contains(s, 'b')", "contains(s, '')", "starts_with(s, n)", "starts_with(s, 'a')",
                           "ends_with(s, n)", "ends_with(s, '')", "ends_with('abc', s)", "min(s, n) == 'a'", "max(s, n) < 'b'",
                           "if(len(s) > 1, s, n) == 'ab'", "coalesce(n, s) == s", "coalesce(n, 'z') > s",
                           "min(s, 'ab') == s", "int(s)", "is_null(n)", "is_null(min(n, s))"})
    EXPECT_TRUE(same_as_host(text, t)) << text;
}

TEST(ExpressionOnHost, IntOfStringsFollowsFromChars) {
  Column s(TypeId::String);
  const std::vector<std::string> texts = {"0", "12", "-12", "-0", "007", "+1", " 1", "1 ", "1x", "", "-", "9223372036854775807",
                                          "9223372036854775808", "-9223372036854775808", "-9223372036854775809", "1.5"};
  for (const auto& v : texts) s.append_string(v);
  const Table t(Schema{{"s", TypeId::String}}, {std::move(s)});
  const std::optional<int64_t> N = std::nullopt;
  EXPECT_EQ(device_values<int64_t>("int(s)", t), (Ints{0, 12, -12, 0, 7, N, N, N, N, N, N, kInt64Max, N, kInt64Min, N, N}));
}

TEST(ExpressionOnHost, TokensWithEndsReadLikeAStringColumn) {
  // Tokens of one text: string r is chars[offsets[r], ends[r]), out of order and overlapping.
  const std::string text = "xx hello world 42 x";
  const std::vector<int32_t> offsets = {3, 9, 15, 0, 3, 18};
  const std::vector<int32_t> ends = {8, 14, 17, 0, 5, 19};
  Column reference(TypeId::String);
  for (size_t r = 0; r < offsets.size(); ++r) reference.append_string(text.substr(offsets[r], ends[r] - offsets[r]));
  const Table t(Schema{{"w", TypeId::String}}, {std::move(reference)});
  ColumnView tokens;
  tokens.type = kString;
  tokens.offsets = offsets.data();
  tokens.ends = ends.data();
  tokens.chars = text.data();
  for (const char* source : {"len(w)", "w == 'world'", "w < 'hello'", "starts_with(w, 'he')", "ends_with(w, 'd')", "contains(w, 'l')",
                             "int(w)", "max(w, 'he') == 'hello'", "upper(w)", "substr(w, 1, 3)", "trim(substr(w, -3, 3))",
                             "if(len(w) > 2, lower(w), upper(w))", "min(upper(w), w)", "contains(upper(w), 'LL')", "int(trim(w))",
                             "coalesce(substr(w, -1, 1), 'z')"}) {
    const Expression expr = Expression::parse(source);
    const std::optional<RowProgram> program = expr.compile(t.schema());
    ASSERT_TRUE(program.has_value()) << source;
    EXPECT_TRUE(same_as_host(expr, *program, t, std::vector<ColumnView>(program->fields.size(), tokens))) << source;
  }
}

TEST(ExpressionOnHost, SubstrClampsAtEveryBoundary) {
  // Every start and length around both ends of each string, and the int64 extremes; nulls.
  const std::vector<std::string> strings = {"", "a", "hello"};
  const std::vector<int64_t> starts = {kInt64Min, -100, -6, -5, -4, -1, 0, 1, 4, 5, 6, 100, kInt64Max};
  const std::vector<int64_t> lengths = {kInt64Min, -100, -1, 0, 1, 4, 5, 6, 100, kInt64Max};
  Column s(TypeId::String, true), start(TypeId::Int64, true), length(TypeId::Int64, true);
  for (const auto& v : strings)
    for (int64_t a : starts)
      for (int64_t n : lengths) s.append_string(v), start.append<int64_t>(a), length.append<int64_t>(n);
  s.append_null(), start.append<int64_t>(0), length.append<int64_t>(1);
  s.append_string("hello"), start.append_null(), length.append<int64_t>(1);
  s.append_string("hello"), start.append<int64_t>(0), length.append_null();
  const Table t(Schema{{"s", TypeId::String, true}, {"st", TypeId::Int64, true}, {"ln", TypeId::Int64, true}},
                {std::move(s), std::move(start), std::move(length)});
  for (const char* text : {"substr(s, st, ln)", "substr(s, st, 2)", "substr(s, -2, ln)", "substr(substr(s, st, ln), 1, -1)",
                           "substr(substr(s, 1, ln), st, 3)", "substr(upper(s), st, ln)", "len(substr(s, st, ln))",
                           "substr(s, st, ln) == 'l'", "substr(s, st, ln) < substr(s, ln, st)"})
    EXPECT_TRUE(same_as_host(text, t)) << text;

  const Table one = ints_table({1}, {2});
  const std::vector<std::pair<std::string, std::optional<std::string>>> pinned = {
      {"substr('hello', 1, 3)", "ell"},
      {"substr('hello', -3, 2)", "ll"},       // from the end
      {"substr('hello', -5, 1)", "h"},
      {"substr('hello', -6, 2)", "he"},       // before the start: from 0
      {"substr('hello', 5, 1)", ""},          // at the end
      {"substr('hello', 6, 1)", ""},          // past the end
      {"substr('hello', 4, 100)", "o"},       // the length stops at the end
      {"substr('hello', 0, -1)", ""},         // a negative length
      {"substr('hello', -9223372036854775807 - 1, 9223372036854775807)", "hello"},
      {"substr('hello', 9223372036854775807, 9223372036854775807)", ""},
      {"substr('', 0, 1)", ""},
      {"substr('hello', a, b)", "el"},
      {"substr('hello', null, 1)", std::nullopt},
      {"substr(null, 0, 1)", std::nullopt},
  };
  for (const auto& [text, expected] : pinned) EXPECT_EQ(device_strings(text, one), Strings{expected}) << text;
}

TEST(ExpressionOnHost, TrimStripsAsciiWhitespaceOnly) {
  // The host's set is " \t\r\n\f\v": not NUL, not 0x1f, not Latin-1's NEL (0x85) or NBSP (0xa0).
  const Table t = strings_column_table({"", " ", " \t\r\n\f\v", "  a b  ", "\ta\n", "\x85" "a\xa0", std::string("\0a\0", 3),
                                        "\x1f", "x", "\v\fAb\r"});
  EXPECT_EQ(device_strings("trim(s)", t), (Strings{"", "", "", "a b", "a", "\x85" "a\xa0", std::string("\0a\0", 3), "\x1f", "x", "Ab"}));
  EXPECT_EQ(device_strings("upper(trim(s))", t).back(), "AB");
  for (const char* text : {"trim(lower(s))", "len(trim(s))", "trim(s) == ''", "trim(substr(s, 1, 3))", "substr(trim(s), 1, 1)",
                           "trim(trim(s))", "trim(' ')", "is_null(trim(s))"})
    EXPECT_TRUE(same_as_host(text, t)) << text;
}

// concat and string() build no bytes until the result is written: a rope of registers, an
// int64's digits, and trim/substr/int() over them, with case mappings met on the way.
TEST(ExpressionOnHost, ConcatAndStringOfIntsAndBoolsMakeTheHostsText) {
  Column s(TypeId::String, true), i(TypeId::Int64, true), b(TypeId::Bool);
  const std::vector<std::optional<std::string>> texts = {"ab", "", "  Mid Dle ", std::nullopt, "9223372036854775807", "x"};
  const std::vector<std::optional<int64_t>> ints = {0, -7, kInt64Min, 42, kInt64Max, std::nullopt};
  for (size_t r = 0; r < texts.size(); ++r) {
    texts[r] ? s.append_string(*texts[r]) : s.append_null();
    ints[r] ? i.append<int64_t>(*ints[r]) : i.append_null();
    b.append<uint8_t>(r % 2);
  }
  const Table t(Schema{{"s", TypeId::String, true}, {"i", TypeId::Int64, true}, {"b", TypeId::Bool}}, {s, i, b});
  EXPECT_EQ(device_strings("string(i)", t),
            (Strings{"0", "-7", "-9223372036854775808", "42", "9223372036854775807", std::nullopt}));
  EXPECT_EQ(device_strings("concat(s, '|', i, '|', b)", t),
            (Strings{"ab|0|false", "|-7|true", "  Mid Dle |-9223372036854775808|false", std::nullopt,
                     "9223372036854775807|9223372036854775807|false", std::nullopt}));
  EXPECT_EQ(device_strings("upper(concat(lower(s), '-', string(b)))", t)[2], "  MID DLE -FALSE");
  EXPECT_EQ(device_strings("concat(upper(s), lower('-Q-'))", t)[2], "  MID DLE -q-");
  EXPECT_EQ(device_strings("trim(concat('  ', s, ' '))", t)[2], "Mid Dle");
  EXPECT_EQ(device_strings("substr(concat(s, 'xyz'), -4, 3)", t)[0], "bxy");
  EXPECT_EQ(device_values<int64_t>("int(concat('-', s))", t)[4], std::optional<int64_t>(-kInt64Max));
  EXPECT_EQ(device_values<int64_t>("int(concat(s, '0'))", t)[4], std::nullopt) << "past int64";
  EXPECT_EQ(device_values<int64_t>("int(concat('-', substr(s, 0, 18), '8'))", t)[4], std::optional<int64_t>(kInt64Min));
  for (const char* text :
       {"len(concat(s, i))", "concat(s, s) == concat(s, s)", "contains(concat(s, 'b', i), 'b-')", "starts_with(concat(i, s), '-9')",
        "ends_with(concat(s, i), '7')", "min(concat(s, 'z'), concat(i, s))", "max(upper(concat(s, 'a')), lower(concat('A', s)))",
        "lower(substr(upper(concat(s, 'Q')), 1, 3))", "trim(substr(concat(' ', s, ' '), 1, 4))", "substr(trim(concat(s, ' ')), 0, 2)",
        "if(b, concat(s, 'y'), string(i))", "coalesce(concat(s, i), string(i), 'none')", "concat(string(null), s)",
        "concat(concat(s, '.'), concat(i, '.'), b)", "int(trim(concat(' ', string(i), ' ')))", "string(-i)", "string(i * 1000)"})
    EXPECT_TRUE(same_as_host(text, t)) << text;
}

/// std::to_chars's text of @p d with the host's additions (append_float_text): ".0" where it
/// has no '.' or 'e', and "nan" for every NaN.
std::string to_chars_text(double d) {
  if (std::isnan(d)) return "nan";
  char buf[64];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, d);
  std::string text(buf, end);
  if (std::isfinite(d) && text.find_first_of(".e") == std::string::npos) text += ".0";
  return text;
}

std::string float_text_of(double d) {
  char text[kFloatTextMaxLength];
  return std::string(text, static_cast<size_t>(float_text_write(d, text)));
}

double double_of_bits(uint64_t bits) {
  double d;
  std::memcpy(&d, &bits, sizeof d);
  return d;
}

// The device's float text (Schubfach, then to_chars's choice of notation) against to_chars
// itself, byte for byte: every kind of double, and the places where a rule turns.
TEST(ExpressionOnHost, FloatTextEqualsToCharsByteForByte) {
  std::vector<double> values = {0.0, -0.0, kInf, -kInf, kNaN, -kNaN, double_of_bits(0x7ff0000000000001ull),
                                std::numeric_limits<double>::max(), std::numeric_limits<double>::min(),
                                std::numeric_limits<double>::denorm_min(), 9007199254740992.0, 9007199254740993.0,
                                1e21, 1e22, 1e23, 123456789012345680000.0, 1.2345678901234567e21, 0.0001, 0.00012, 1e-5};
  for (uint64_t t = 1; t <= 100000; ++t) values.push_back(double_of_bits(t));  // subnormals: few digits
  for (uint64_t biased = 1; biased < 0x7ff; ++biased) {  // each binade's ends: the uneven gap below 2^e
    const double bottom = double_of_bits(biased << 52);
    values.insert(values.end(), {bottom, std::nextafter(bottom, 0.0), std::nextafter(bottom, kInf)});
  }
  for (int e = -325; e <= 309; ++e) {  // powers of ten and short decimals: where the shortest has few digits
    for (int m : {1, 2, 5, 9, 12, 99, 123, 999, 4999, 12345}) {
      const double d = std::strtod((std::to_string(m) + "e" + std::to_string(e)).c_str(), nullptr);
      values.insert(values.end(), {d, std::nextafter(d, 0.0), std::nextafter(d, kInf)});
    }
  }
  std::mt19937_64 rng(29);
  for (int k = 0; k < 400000; ++k) {
    values.push_back(double_of_bits(rng()));                                                // any bits
    values.push_back(std::ldexp(static_cast<double>(rng() >> 11), static_cast<int>(rng() % 140) - 60));  // near integers
    values.push_back(std::pow(10.0, std::uniform_real_distribution<double>(-8, 24)(rng)));  // fixed against scientific
    values.push_back(std::round(values.back() * 1000) / 1000);
  }
  size_t wrong = 0;
  for (double d : values) {
    const std::string expected = to_chars_text(d), text = float_text_of(d);
    if (text != expected && ++wrong <= 10) ADD_FAILURE() << "bits " << std::hex << float_text_bits(d) << ": " << text << ", not " << expected;
  }
  EXPECT_EQ(wrong, 0u) << "of " << values.size();
}

// string() of a float through the interpreter: alone, inside concat and the readers, against
// the host evaluator.
TEST(ExpressionOnHost, StringOfFloatsMakesTheHostsText) {
  Column x(TypeId::Float64, true), s(TypeId::String);
  const std::vector<std::optional<double>> doubles = {2.0, -0.0, 0.1, 1e22, 123456789012345680000.0, 5e-324, kNaN, -kNaN,
                                                      -kInf, 1e-5, 0.00012, std::nullopt, 1.7976931348623157e308, 100000.0};
  for (const auto& d : doubles) {
    d ? x.append<double>(*d) : x.append_null();
    s.append_string("v");
  }
  const Table t(Schema{{"x", TypeId::Float64, true}, {"s", TypeId::String}}, {x, s});
  EXPECT_EQ(device_strings("string(x)", t),
            (Strings{"2.0", "-0.0", "0.1", "1e+22", "123456789012345683968.0", "5e-324", "nan", "nan", "-inf", "1e-05",
                     "0.00012", std::nullopt, "1.7976931348623157e+308", "1e+05"}));
  EXPECT_EQ(device_strings("concat(s, '=', x / 4, ';')", t)[0], "v=0.5;");
  EXPECT_EQ(device_strings("upper(string(x))", t)[8], "-INF");
  // Each text has registers of its own: three in one row, read after all three were written.
  EXPECT_EQ(device_strings("concat(string(x), '/', string(x * 2.0), '/', string(-x))", t)[0], "2.0/4.0/-2.0");
  for (const char* text : {"len(string(x))", "string(x) == '0.1'", "float(string(x)) == x", "substr(string(x), 1, 4)",
                           "contains(concat(x, s), 'e+')", "int(string(floor(x)))", "coalesce(string(x), s)", "string(x * 3.0)",
                           "max(string(x), string(-x))", "string(1.5)", "concat(string(null), x)"})
    EXPECT_TRUE(same_as_host(text, t)) << text;
}

TEST(ExpressionOnHost, CaseMappingsMeetInComparisonsAndMinMax) {
  Column s(TypeId::String), n(TypeId::String, true);
  const std::vector<std::string> a = {"abc", "ABC", "aBc", "a@[`{z", "Zz", "\xe0\xc0", "", "12", "-7a"};
  const std::vector<std::string> b = {"ABC", "abc", "", "A@[`{Z", "zZ", "\xc0\xe0", "", "12", "-7A"};
  for (const auto& v : a) s.append_string(v);
  for (size_t k = 0; k < b.size(); ++k) k == 2 ? n.append_null() : n.append_string(b[k]);
  const Table t(Schema{{"s", TypeId::String}, {"n", TypeId::String, true}}, {std::move(s), std::move(n)});
  // ASCII letters only: '@', '[', '`', '{' and bytes above 0x7f stay.
  EXPECT_EQ(device_strings("lower(s)", t), (Strings{"abc", "abc", "abc", "a@[`{z", "zz", "\xe0\xc0", "", "12", "-7a"}));
  EXPECT_EQ(device_strings("upper(s)", t), (Strings{"ABC", "ABC", "ABC", "A@[`{Z", "ZZ", "\xe0\xc0", "", "12", "-7A"}));
  // The outer mapping wins.
  EXPECT_EQ(device_strings("lower(upper(s))", t), device_strings("lower(s)", t));
  EXPECT_EQ(device_strings("upper(lower(n))", t), device_strings("upper(n)", t));
  // Two registers of different mappings compare their mapped bytes.
  const std::optional<bool> T = true, F = false, N = std::nullopt;
  EXPECT_EQ(device_values<bool>("lower(s) == upper(s)", t), (Bools{F, F, F, F, F, T, T, T, F}));
  EXPECT_EQ(device_values<bool>("lower(s) == lower(n)", t), (Bools{T, T, N, T, T, F, T, T, T}));
  EXPECT_EQ(device_values<bool>("upper(s) > lower(s)", t), (Bools{F, F, F, F, F, F, F, F, F}));
  // min/max return one operand with its own mapping: 'A' (0x41) sorts before 'a' (0x61).
  EXPECT_EQ(device_strings("min(lower(s), upper(s))", t), device_strings("upper(s)", t));
  EXPECT_EQ(device_strings("max(lower(s), upper(s))", t), device_strings("lower(s)", t));
  EXPECT_EQ(device_values<int64_t>("int(upper(s))", t)[7], 12);
  EXPECT_EQ(device_values<int64_t>("int(upper(s))", t)[8], std::nullopt);
  for (const char* text : {"lower(s) < upper(n)", "min(lower(s), upper(n))", "max(upper(s), lower(n))", "min(lower(s), s)",
                           "max(s, upper(s)) == s", "contains(upper(s), lower('B'))", "contains(lower(s), lower(n))",
                           "starts_with(lower(n), upper('a'))", "ends_with(upper(s), lower(n))", "ends_with(lower(s), 'Z')",
                           "int(lower(n))", "len(upper(s))", "if(s < 'b', lower(s), upper(n))", "coalesce(upper(n), lower(s))",
                           "coalesce(lower(n), 'Q')", "substr(upper(trim(lower(s))), 1, 2)", "upper(min(lower(s), n))",
                           "lower(if(is_null(n), upper(s), n)) == lower(s)", "min(upper(substr(s, 0, 1)), lower(substr(n, -1, 1)))"})
    EXPECT_TRUE(same_as_host(text, t)) << text;
}

TEST(ExpressionOnHost, StringResultsOfConstantsNullsAndEmptyTables) {
  const Table t = ints_table({1, 2, 3}, {4, 5, 6});
  EXPECT_EQ(device_strings("'abc'", t), (Strings{"abc", "abc", "abc"}));
  EXPECT_EQ(device_strings("upper('abc')", t), (Strings{"ABC", "ABC", "ABC"}));
  EXPECT_EQ(device_strings("if(a > 1, 'big', lower('SMALL'))", t), (Strings{"small", "big", "big"}));
  EXPECT_EQ(device_strings("if(a > 1, null, 'x')", t), (Strings{"x", std::nullopt, std::nullopt}));
  EXPECT_EQ(device_strings("lower(null)", t), (Strings{std::nullopt, std::nullopt, std::nullopt}));
  EXPECT_EQ(device_strings("trim('  ')", t), (Strings{"", "", ""}));  // no bytes at all
  for (const char* text : {"coalesce(null, 'x')", "coalesce(null, null, 'y')", "min('b', upper('a'))", "substr('abc', a, b - a)",
                           "if(a == 2, substr('abc', 9, 1), upper('q'))"})
    EXPECT_TRUE(same_as_host(text, t)) << text;
  const Table empty = ints_table({}, {});
  EXPECT_TRUE(same_as_host("upper('x')", empty));
  EXPECT_TRUE(same_as_host("if(a > b, 'x', 'y')", empty));
}

TEST(ExpressionOnHost, StringProgramsHaveTheirOwnKernel) {
  const std::string text = "hello";
  const std::vector<int32_t> offsets = {0, 5};
  ColumnView word;
  word.type = kString;
  word.offsets = offsets.data();
  word.chars = text.data();
  const Schema schema{{"w", TypeId::String}};
  HostExec exec;
  const UploadedRowProgram<HostExec> strings(exec, *Expression::parse("upper(w)").compile(schema));
  const UploadedRowProgram<HostExec> bools(exec, *Expression::parse("w == 'x'").compile(schema));
  auto values = exec.alloc<int64_t>(1);
  auto valid = exec.alloc<uint8_t>(1);
  EXPECT_THROW(evaluate_rows(exec, strings, &word, 1, values.data(), valid.data()), Error);
  EXPECT_THROW(evaluate_string_rows(exec, bools, &word, 1), Error);
  const StringRows<HostExec> out = evaluate_string_rows(exec, strings, &word, 1);
  EXPECT_EQ(out.bytes, 5u);
  EXPECT_EQ(std::string(out.chars.data(), out.bytes), "HELLO");
}

TEST(ExpressionOnHost, StringResultsBeyondInt32OffsetsAreAnError) {
  // 32 rows viewing one 64 MiB token make 2^31 result bytes, one more than int32 offsets
  // address. Pass 1 only measures, so nothing that large is allocated.
  constexpr int32_t kTokenBytes = int32_t{1} << 26;
  const std::string text(static_cast<size_t>(kTokenBytes), 'a');
  const std::vector<int32_t> offsets(32, 0), ends(32, kTokenBytes);
  ColumnView tokens;
  tokens.type = kString;
  tokens.offsets = offsets.data();
  tokens.ends = ends.data();
  tokens.chars = text.data();
  HostExec exec;
  const UploadedRowProgram<HostExec> program(exec, *Expression::parse("upper(w)").compile(Schema{{"w", TypeId::String}}));
  try {
    (void)evaluate_string_rows(exec, program, &tokens, offsets.size());
    ADD_FAILURE() << "2^31 bytes of strings were accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("2147483648 bytes"), std::string::npos) << e.what();
  }
}

TEST(ExpressionOnHost, NarrowFieldsWidenAsOnTheHost) {
  Column i(TypeId::Int32, true), f(TypeId::Float32);
  for (int32_t v : {0, -1, INT32_MIN, INT32_MAX, 7}) i.append<int32_t>(v);
  i.append_null();
  for (float v : {0.1f, -0.0f, 16777217.0f, 3.4e38f, std::numeric_limits<float>::quiet_NaN(), 2.5f}) f.append<float>(v);
  const Table t(Schema{{"i", TypeId::Int32, true}, {"f", TypeId::Float32}}, {std::move(i), std::move(f)});
  for (const char* text : {"abs(i)", "-i", "i * i", "i + f", "f * 10.0", "round(f)", "floor(i)", "i / 2", "int(f)", "float(i)", "i == f",
                           "min(i, f)", "coalesce(i, 3)"})
    EXPECT_TRUE(same_as_host(text, t)) << text;
  const Expression abs_i = Expression::parse("abs(i)");
  EXPECT_EQ(abs_i.result_type(t.schema()), TypeId::Int64);  // computed numbers are int64 or float64
  EXPECT_EQ(abs_i.compile(t.schema())->result_type, kInt64);
}

TEST(ExpressionOnHost, ProgramsShareLoadsAndCoercions) {
  const Schema schema{{"a", TypeId::Int64}, {"x", TypeId::Float64, true}, {"s", TypeId::String}};
  const std::optional<RowProgram> p = Expression::parse("a * a + a > x and s == 'q'").compile(schema);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->fields, (std::vector<size_t>{0, 1, 2}));
  EXPECT_EQ(p->literal_bytes, "q");
  EXPECT_EQ(p->literal_offsets, (std::vector<int32_t>{0, 1}));
  EXPECT_EQ(p->result_type, kBool);
  EXPECT_TRUE(p->result_nullable);
  EXPECT_EQ(p->result, static_cast<int32_t>(p->instructions.size()) - 1);
  // load a, a*a, +a, IntToFloat, load x, >, load s, 'q', ==, and
  EXPECT_EQ(p->instructions.size(), 10u);
  for (size_t k = 0; k < p->instructions.size(); ++k) {
    const RowProgram::Instruction& ins = p->instructions[k];
    for (int32_t a = 0; a < row_operand_count(ins.op); ++a) EXPECT_LT(ins.args[a], static_cast<int32_t>(k));  // SSA order
  }
}

TEST(ExpressionOnHost, CompileRefusesWhatTheDeviceDoesNotRun) {
  const Schema schema{{"i", TypeId::Int32},  {"x", TypeId::Float64}, {"s", TypeId::String, true}, {"b", TypeId::Bool},
                      {"l", TypeId::List, false, {Field("v", TypeId::Int64)}}};
  for (const char* text : {"i", "(i)", "((s))", "l", "s"})
    EXPECT_FALSE(Expression::parse(text).compile(schema).has_value()) << text;
  // Errors are the host's, not a refusal.
  EXPECT_THROW(Expression::parse("missing > 1").compile(schema), Error);
  EXPECT_THROW(Expression::parse("s + 1").compile(schema), Error);
  EXPECT_THROW(Expression::parse("is_null(l)").compile(schema), Error);
  EXPECT_THROW(Expression::parse("b < 1").compile(schema), Error);
  // What does compile: strings inside and as results, literals, int() and float() of strings.
  for (const char* text : {"1", "2.5", "true", "null", "-i", "s == 'x'", "min(s, 'x') == 'x'", "len(if(b, s, 'abc'))", "int(s)", "float(s) > 1.0", "float(lower(s))",
                           "is_null(s)", "int(x)", "float(b)", "round(i)", "'text'", "if(b, s, 'x')", "coalesce(s, 'x')",
                           "min(s, 'x')", "lower(s) == 'a'", "upper(s) == 'A'", "trim(s) == ''", "len(substr(s, 0, 2))",
                           "is_null(lower(s))", "if(b, len(trim(s)), 0)", "(lower(s))", "trim(upper(s))", "substr(s, i, -1)",
                           "concat(s, 'x')", "len(concat(s, 1))", "is_null(concat(s, s))", "string(i) == '1'", "string(b)",
                           "upper(string(i))", "concat(s)", "string(null)", "int(concat('-', string(i)))", "string(x)",
                           "concat(s, x)", "len(concat(s, 1.5))"})
    EXPECT_TRUE(Expression::parse(text).compile(schema).has_value()) << text;
  const std::optional<RowProgram> lower = Expression::parse("lower(s)").compile(schema);
  EXPECT_EQ(lower->result_type, kString);
  EXPECT_TRUE(lower->result_nullable);
  const std::optional<RowProgram> literal = Expression::parse("substr('text', i, 2)").compile(schema);
  EXPECT_EQ(literal->result_type, kString);
  EXPECT_FALSE(literal->result_nullable);
}

TEST(ExpressionOnHost, LongProgramsAreRefused) {
  const Schema schema{{"a", TypeId::Int64}};
  auto sum_of = [](int terms) {
    std::string text = "a";
    for (int k = 1; k < terms; ++k) text += " + a";
    return text;
  };
  // One load and terms - 1 additions.
  EXPECT_TRUE(Expression::parse(sum_of(RowProgram::kMaxInstructions)).compile(schema).has_value());
  EXPECT_FALSE(Expression::parse(sum_of(RowProgram::kMaxInstructions + 1)).compile(schema).has_value());
  // A float's text takes registers too: one load, n texts and n - 1 concats, plus the texts'
  // registers.
  const Schema floats{{"x", TypeId::Float64}};
  auto texts_of = [](int n) {
    std::string text = "concat(string(x)";
    for (int k = 1; k < n; ++k) text += ", string(x + " + std::to_string(k) + ".0)";
    return text + ")";
  };
  // n texts of x + k: 1 load, n - 1 constants and additions each, n FloatToString, n - 1 concats.
  auto registers = [](int n) { return 1 + 2 * (n - 1) + n + (n - 1) + n * RowProgram::kFloatTextRegisters; };
  int fits = 1;
  while (registers(fits + 1) <= RowProgram::kMaxInstructions) ++fits;
  EXPECT_TRUE(Expression::parse(texts_of(fits)).compile(floats).has_value()) << texts_of(fits);
  EXPECT_FALSE(Expression::parse(texts_of(fits + 1)).compile(floats).has_value()) << texts_of(fits + 1);
  const Table t(floats, {[] {
                  Column x(TypeId::Float64);
                  x.append<double>(0.25);
                  return x;
                }()});
  EXPECT_TRUE(same_as_host(texts_of(fits), t));
}

TEST(ExpressionOnHost, ConstantProgramsAndEmptyTables) {
  const Table t = ints_table({1, 2, 3}, {4, 5, 6});
  for (const char* text : {"1 + 2", "7 / 0", "true", "null", "1.5 * 2.0", "'a' < 'b'", "len('abc')", "int('42')"})
    EXPECT_TRUE(same_as_host(text, t)) << text;
  const Table empty = ints_table({}, {});
  EXPECT_TRUE(same_as_host("a / b > 0", empty));
}

TEST(ExpressionOnHost, UploadRejectsMalformedPrograms) {
  const Schema schema{{"a", TypeId::Int64}};
  const RowProgram good = *Expression::parse("a + 1").compile(schema);
  HostExec exec;
  RowProgram forward = good;
  forward.instructions[2].args[1] = 2;  // reads itself
  EXPECT_THROW((UploadedRowProgram<HostExec>{exec, forward}), Error);
  RowProgram field = good;
  field.instructions[0].args[0] = 1;  // one input only
  EXPECT_THROW((UploadedRowProgram<HostExec>{exec, field}), Error);
  RowProgram result = good;
  result.result = 3;
  EXPECT_THROW((UploadedRowProgram<HostExec>{exec, result}), Error);
  RowProgram mistyped = good;
  mistyped.result_type = kString;  // the result register is an int64
  EXPECT_THROW((UploadedRowProgram<HostExec>{exec, mistyped}), Error);
  RowProgram list = good;
  list.result_type = list.instructions.back().type = static_cast<int32_t>(TypeId::List);
  EXPECT_THROW((UploadedRowProgram<HostExec>{exec, list}), Error);
  RowProgram opcode = good;
  opcode.instructions[2].op = static_cast<RowProgram::Op>(static_cast<int32_t>(RowProgram::kLastOp) + 1);
  EXPECT_THROW((UploadedRowProgram<HostExec>{exec, opcode}), Error);
  EXPECT_NO_THROW((UploadedRowProgram<HostExec>{exec, good}));
  EXPECT_NO_THROW((UploadedRowProgram<HostExec>{exec, *Expression::parse("substr(upper('abc'), a, 1)").compile(schema)}));
  // Registers read as another type than they hold: an int64 followed as a string's bytes or
  // as other registers, or a string written as an int64.
  RowProgram text = *Expression::parse("concat('x', string(a))").compile(schema);
  ASSERT_EQ(text.instructions.back().op, RowProgram::Op::Concat);
  RowProgram int_as_string = text;
  for (size_t k = 0; k < text.instructions.size(); ++k)
    if (text.instructions[k].op == RowProgram::Op::LoadInt64) int_as_string.instructions.back().args[1] = static_cast<int32_t>(k);
  try {
    UploadedRowProgram<HostExec>{exec, int_as_string};
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("reads or writes a register of another type"), std::string::npos) << e.what();
  }
  RowProgram string_as_int = good;
  string_as_int.instructions[0].type = kString;  // a load of an int64 field, said to be a string
  EXPECT_THROW((UploadedRowProgram<HostExec>{exec, string_as_int}), Error);
  EXPECT_NO_THROW((UploadedRowProgram<HostExec>{exec, text}));
  // A float's text is written into registers at the top of the file: a program whose
  // instructions reach them is refused.
  const Schema floats{{"x", TypeId::Float64}};
  RowProgram float_text = *Expression::parse("string(x)").compile(floats);
  EXPECT_NO_THROW((UploadedRowProgram<HostExec>{exec, float_text}));
  while (float_text.instructions.size() + RowProgram::kFloatTextRegisters <= static_cast<size_t>(RowProgram::kMaxInstructions))
    float_text.instructions.insert(float_text.instructions.begin(), float_text.instructions.front());
  for (RowProgram::Instruction& ins : float_text.instructions)
    if (ins.op == RowProgram::Op::FloatToString) ins.args[0] = 0;
  float_text.result = static_cast<int32_t>(float_text.instructions.size()) - 1;
  try {
    UploadedRowProgram<HostExec>{exec, float_text};
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("63 instructions need 65 registers with their float texts"), std::string::npos) << e.what();
  }
}

// A concat over 2^31 - 1 bytes in one row fails the run, as the host's evaluation does, for
// string results and for what reads such a string (its length here). The input claims 1.2e9
// bytes that nothing reads: lengths alone decide.
TEST(ExpressionOnHost, AConcatOverTwoGibibytesIsAnError) {
  const char byte = 'x';
  const int32_t offsets[] = {0, 1200000000};
  ColumnView s;
  s.type = kString;
  s.offsets = offsets;
  s.chars = &byte;
  const Schema schema{{"s", TypeId::String}};
  HostExec exec;
  for (const char* text : {"len(concat(s, s))", "concat(s, 'a', s)", "len(concat(s, s)) > 0", "len(concat(s, 'a'))"}) {
    const RowProgram program = *Expression::parse(text).compile(schema);
    const UploadedRowProgram<HostExec> uploaded(exec, program);
    auto inputs = exec.alloc<ColumnView>(1);
    exec.to_device(inputs.data(), &s, sizeof s);
    const bool fits = std::string(text) == "len(concat(s, 'a'))";
    try {
      if (program.result_type == kString) {
        evaluate_string_rows(exec, uploaded, inputs.data(), 1);
      } else if (program.result_type == kBool) {
        std::vector<int64_t> kept(1);
        select_rows(exec, uploaded, inputs.data(), 1, kept.data());
      } else {
        int64_t value = 0;
        uint8_t valid = 0;
        evaluate_rows(exec, uploaded, inputs.data(), 1, &value, &valid);
        EXPECT_EQ(value, 1200000001) << text;
      }
      EXPECT_TRUE(fits) << text << ": expected an error";
    } catch (const Error& e) {
      EXPECT_FALSE(fits) << text << ": " << e.what();
      EXPECT_NE(std::string(e.what()).find("exceeds 2 GiB of characters"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace sluice::gpu
