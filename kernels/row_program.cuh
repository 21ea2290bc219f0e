#pragma once
// Pipeline expressions inside kernels: a RowProgram (include/sluice/row_program.hpp, built by
// pipeline::Expression::compile) interpreted by one thread per row, written once against an
// execution context (CudaExec on the GPU, HostExec in the host tests).
//
// Results must equal the host evaluator's (src/pipeline/expression.cpp) bit for bit, so every
// opcode transcribes the host's rule for its type: wrapping integer arithmetic (through
// uint64), x / -1 as a wrapping negation and x % -1 as 0 (INT64_MIN / -1 traps in hardware),
// std::min/std::max's argument order for NaN and -0.0, from_chars for int() of strings.
// Floating point: nvcc contracts a * b + c into one FMA in device code unless told otherwise,
// which rounds once where the host rounds twice; device code therefore spells every
// operation as an explicitly rounded intrinsic (__dmul_rn, __dadd_rn, ...), which nvcc never
// fuses. floor, ceil, round, fabs and fmod are exact on both sides.
//
// A null register's value is 0 (a null string: no bytes), so results at null rows are 0, as
// the host's columns hold there; operations never compute on null operands (no trap on a
// value that does not exist).
//
// Strings make no bytes until a string result is written. A string register is a view of an
// input's or a literal's bytes, or refers to earlier registers of the same row: a rope is the
// concatenation of two registers (concat), a slice a window of one (trim and substr of what
// is not a view), and digits are an int64's decimal text (string()), made byte by byte as
// it is read. A double's text (string()) is the one string an instruction writes: into
// registers at the top of the file that compile() sets aside for it (RowProgram::
// kFloatTextRegisters each), which the register then views. lower() and upper() set a case
// mapping instead of copying; readers map each byte as they read it (row_byte). A string
// result is written in two passes: lengths, a scan into offsets, then the mapped bytes
// (evaluate_string_rows).
//
// The register file is one RowValue per instruction (RowProgram::kMaxInstructions), in
// local memory; programs are small and every thread runs the same instructions in lockstep.
// Registers are written once (SSA), so a register that refers to earlier ones stays valid for
// the whole row; the caller of run_row_program owns the file for as long as it reads strings.
//
// C++17: nvcc here has no C++20 dialect through CMake; this file includes no engine header
// beyond the C++17 row_program.hpp and error.hpp.
#include <thrust/copy.h>
#include <thrust/for_each.h>
#include <thrust/iterator/counting_iterator.h>
#include <thrust/reduce.h>
#include <thrust/scan.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "csv_parse.cuh"  // csv_parse_integer: std::from_chars's integer syntax and range
#include "float_text.cuh"
#include "gpu_types.hpp"
#include "sluice/error.hpp"
#include "sluice/row_program.hpp"

namespace sluice::gpu {

// ---------------------------------------------------------------- values and arithmetic

/// How a string register's bytes are read: lower() and upper() set it instead of copying.
enum RowCase : uint8_t { kRowCaseNone = 0, kRowCaseLower = 1, kRowCaseUpper = 2 };

/// Where a string register's bytes are (see the top of this file).
enum RowStringKind : uint8_t { kRowView = 0, kRowRope = 1, kRowSlice = 2, kRowDigits = 3 };

/// One register: an int64 (bools are 0/1), a double, or a string; and its validity.
struct RowValue {
  union {
    int64_t i;      ///< also the value of a digits string
    double f;
    const char* s;  ///< a view's bytes
    struct {
      int32_t left, right;  ///< registers
    } rope;
    struct {
      int32_t base, start;  ///< a register, and the first of its bytes in the slice
    } slice;
  };
  int32_t length;    ///< strings: bytes
  uint8_t valid;
  uint8_t case_map;  ///< strings: a RowCase, applied to every byte read
  uint8_t kind;      ///< strings: a RowStringKind
  uint8_t too_long;  ///< strings: a concat that would pass 2^31 - 1 bytes made it (the run fails)
};

__host__ __device__ inline RowValue row_value(uint8_t valid) {
  RowValue v;
  v.i = 0;
  v.length = 0;
  v.valid = valid;
  v.case_map = kRowCaseNone;
  v.kind = kRowView;
  v.too_long = 0;
  return v;
}
__host__ __device__ inline RowValue row_null() { return row_value(0); }
__host__ __device__ inline RowValue row_int(int64_t x) {
  RowValue v = row_value(1);
  v.i = x;
  return v;
}
__host__ __device__ inline RowValue row_float(double x) {
  RowValue v = row_value(1);
  v.f = x;
  return v;
}
__host__ __device__ inline RowValue row_string(const char* s, int32_t length) {
  RowValue v = row_value(1);
  v.s = s;
  v.length = length;
  return v;
}

// Explicitly rounded, so that nvcc cannot contract a multiply and an add into an FMA.
__host__ __device__ inline double row_fadd(double a, double b) {
#ifdef __CUDA_ARCH__
  return __dadd_rn(a, b);
#else
  return a + b;
#endif
}
__host__ __device__ inline double row_fsub(double a, double b) {
#ifdef __CUDA_ARCH__
  return __dsub_rn(a, b);
#else
  return a - b;
#endif
}
__host__ __device__ inline double row_fmul(double a, double b) {
#ifdef __CUDA_ARCH__
  return __dmul_rn(a, b);
#else
  return a * b;
#endif
}
__host__ __device__ inline double row_fdiv(double a, double b) {
#ifdef __CUDA_ARCH__
  return __ddiv_rn(a, b);
#else
  return a / b;
#endif
}

__host__ __device__ inline int64_t row_wrap(uint64_t x) { return static_cast<int64_t>(x); }

/// The magnitude of @p x (INT64_MIN included) as unsigned.
__host__ __device__ inline uint64_t row_magnitude(int64_t x) { return x < 0 ? 0ull - static_cast<uint64_t>(x) : static_cast<uint64_t>(x); }

/// The length of std::to_string(@p x).
__host__ __device__ inline int32_t row_decimal_length(int64_t x) {
  int32_t digits = 1;
  for (uint64_t m = row_magnitude(x); m >= 10; m /= 10) ++digits;
  return digits + (x < 0 ? 1 : 0);
}

/// Byte @p k of std::to_string(@p x), whose length is @p length.
__host__ __device__ inline char row_decimal_byte(int64_t x, int32_t length, int32_t k) {
  if (x < 0 && k == 0) return '-';
  uint64_t m = row_magnitude(x);
  for (int32_t right = length - 1 - k; right > 0; --right) m /= 10;
  return static_cast<char>('0' + m % 10);
}

/// Byte @p k of string register @p v (registers @p reg of its row) as the program sees it:
/// through the outermost case mapping on the way to the byte, which changes ASCII letters
/// only, as the host's lower() and upper() do (lower(upper(s)) is lower(s)).
__host__ __device__ inline char row_byte(const RowValue* reg, const RowValue& value, int32_t k) {
  const RowValue* v = &value;
  uint8_t mapping = v->case_map;
  char c = 0;
  for (;;) {
    if (v->kind == kRowView) {
      c = v->s[k];
      break;
    }
    if (v->kind == kRowDigits) {
      c = row_decimal_byte(v->i, v->length, k);
      break;
    }
    if (v->kind == kRowSlice) {
      k += v->slice.start;
      v = &reg[v->slice.base];
    } else {
      const RowValue& left = reg[v->rope.left];
      if (k < left.length) {
        v = &left;
      } else {
        k -= left.length;
        v = &reg[v->rope.right];
      }
    }
    if (mapping == kRowCaseNone) mapping = v->case_map;
  }
  if (mapping == kRowCaseLower) return c >= 'A' && c <= 'Z' ? static_cast<char>(c + ('a' - 'A')) : c;
  if (mapping == kRowCaseUpper) return c >= 'a' && c <= 'z' ? static_cast<char>(c - ('a' - 'A')) : c;
  return c;
}

/// -1 when a < b, 0 when equal, 1 when greater: bytes as unsigned, a proper prefix first
/// (std::string_view::compare).
__host__ __device__ inline int row_compare_strings(const RowValue* reg, const RowValue& a, const RowValue& b) {
  const int32_t n = a.length < b.length ? a.length : b.length;
  for (int32_t k = 0; k < n; ++k) {
    const auto x = static_cast<unsigned char>(row_byte(reg, a, k)), y = static_cast<unsigned char>(row_byte(reg, b, k));
    if (x != y) return x < y ? -1 : 1;
  }
  return a.length < b.length ? -1 : a.length > b.length ? 1 : 0;
}

/// True when all of @p part appears in @p s at byte @p at (the caller checks that it fits).
__host__ __device__ inline bool row_matches_at(const RowValue* reg, const RowValue& s, int32_t at, const RowValue& part) {
  for (int32_t k = 0; k < part.length; ++k)
    if (row_byte(reg, s, at + k) != row_byte(reg, part, k)) return false;
  return true;
}

/// std::string_view::find(part) != npos (an empty part is found everywhere).
__host__ __device__ inline bool row_contains(const RowValue* reg, const RowValue& s, const RowValue& part) {
  for (int32_t at = 0; part.length <= s.length - at; ++at)  // no int32 overflow near 2^31
    if (row_matches_at(reg, s, at, part)) return true;
  return false;
}

/// The host's trim() set, " \t\r\n\f\v": space and bytes 9 to 13. No letter is whitespace,
/// so the raw byte answers as well as the case-mapped one.
__host__ __device__ inline bool row_is_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

/// Bytes [first, first + length) of string register @p index (@p v, registers @p reg): a
/// view stays a view of fewer bytes (keeping its case mapping); anything else becomes a slice
/// of the register.
__host__ __device__ inline RowValue row_window(const RowValue* reg, int32_t index, int32_t first, int32_t length) {
  RowValue v = reg[index];
  if (v.kind == kRowView) {
    v.s += first;
  } else {
    v = row_value(1);
    v.kind = kRowSlice;
    v.slice.base = index;
    v.slice.start = first;
    v.too_long = reg[index].too_long;
  }
  v.length = length;
  return v;
}

/// trim(s) of string register @p index: without its leading and trailing whitespace.
__host__ __device__ inline RowValue row_trim(const RowValue* reg, int32_t index) {
  const RowValue& v = reg[index];
  int32_t first = 0, end = v.length;
  while (first < end && row_is_space(row_byte(reg, v, first))) ++first;
  while (end > first && row_is_space(row_byte(reg, v, end - 1))) --end;
  return row_window(reg, index, first, end - first);
}

/// substr(s, start, length) of string register @p index as the host clamps it: a negative
/// start counts from the end and stops at 0, a start past the end is the end, the length is
/// clamped to [0, bytes left]. No int64 overflows: size + start with start < 0 stays within range.
__host__ __device__ inline RowValue row_substr(const RowValue* reg, int32_t index, int64_t start, int64_t length) {
  const int64_t size = reg[index].length;
  int64_t first = start;
  if (first < 0) first = size + first < 0 ? 0 : size + first;
  if (first > size) first = size;
  const int64_t left = size - first;
  const int64_t count = length < 0 ? 0 : length > left ? left : length;
  return row_window(reg, index, static_cast<int32_t>(first), static_cast<int32_t>(count));
}

/// concat(a, b) of string registers @p left and @p right. A string over 2^31 - 1 bytes is
/// marked too long (its length stops there), and the run fails as the host's evaluation does.
__host__ __device__ inline RowValue row_concat(const RowValue* reg, int32_t left, int32_t right) {
  RowValue v = row_value(1);
  v.kind = kRowRope;
  v.rope.left = left;
  v.rope.right = right;
  const int64_t length = static_cast<int64_t>(reg[left].length) + reg[right].length;
  v.length = length > INT32_MAX ? INT32_MAX : static_cast<int32_t>(length);
  v.too_long = reg[left].too_long | reg[right].too_long | (length > INT32_MAX ? 1 : 0);
  return v;
}

/// string(x) of an int64: std::to_string's decimal text.
__host__ __device__ inline RowValue row_decimal(int64_t x) {
  RowValue v = row_value(1);
  v.kind = kRowDigits;
  v.i = x;
  v.length = row_decimal_length(x);
  return v;
}

/// The bytes of string register @p v as row_byte reads them, for csv_parse_integer_bytes.
struct RowRegisterBytes {
  const RowValue* reg;
  const RowValue* v;
  __host__ __device__ char operator()(int32_t k) const { return row_byte(reg, *v, k); }
};

/// int(s) of string register @p v: std::from_chars's -?[0-9]+ within int64, all of it.
__host__ __device__ inline bool row_parse_integer(const RowValue* reg, const RowValue& v, int64_t& out) {
  if (v.kind == kRowView) return csv_parse_integer(v.s, v.length, false, out) == kCsvFieldOk;
  // The same rule read through row_byte (the case mapping changes no digit and no '-').
  return csv_parse_integer_bytes(RowRegisterBytes{reg, &v}, v.length, false, out) == kCsvFieldOk;
}

/// float(s) of string register @p v, as std::from_chars reads it (see StringToFloat), read
/// through row_byte (a case mapping changes no digit, and letters are read in either case).
__host__ __device__ inline bool row_parse_float(const RowValue* reg, const RowValue& v, double& out) {
  bool overflow = false, underflow = false;
  const int32_t outcome = csv_parse_double_bytes(RowRegisterBytes{reg, &v}, v.length, out, overflow, underflow);
  return outcome == kCsvFieldOk && !overflow && !underflow;
}

/// lower(s) and upper(s): the same view read through @p mapping. The outer call decides
/// alone, as lower(upper(s)) == lower(s) for ASCII letters.
__host__ __device__ inline RowValue row_case_mapped(RowValue v, RowCase mapping) {
  v.case_map = mapping;
  return v;
}

__host__ __device__ inline bool row_compares(int32_t comparison, int c) {
  switch (static_cast<RowProgram::Comparison>(comparison)) {
    case RowProgram::Comparison::Eq: return c == 0;
    case RowProgram::Comparison::Ne: return c != 0;
    case RowProgram::Comparison::Lt: return c < 0;
    case RowProgram::Comparison::Le: return c <= 0;
    case RowProgram::Comparison::Gt: return c > 0;
    default: return c >= 0;
  }
}

/// a <op> b with the operator itself (not a three-way result), so that NaN compares as in C++.
template <class T> __host__ __device__ inline bool row_compare_values(int32_t comparison, T a, T b) {
  switch (static_cast<RowProgram::Comparison>(comparison)) {
    case RowProgram::Comparison::Eq: return a == b;
    case RowProgram::Comparison::Ne: return a != b;
    case RowProgram::Comparison::Lt: return a < b;
    case RowProgram::Comparison::Le: return a <= b;
    case RowProgram::Comparison::Gt: return a > b;
    default: return a >= b;
  }
}

// ---------------------------------------------------------------- the program on the device

/// What a thread needs to run a program: trivially copyable, pointing into Exec memory.
struct RowProgramView {
  const RowProgram::Instruction* instructions = nullptr;
  int32_t count = 0;
  int32_t result = -1;
  int32_t result_type = kBool;
  const char* literal_bytes = nullptr;
  const int32_t* literal_offsets = nullptr;
  int32_t has_concat = 0;  ///< only then can a row make a string too long, which the kernels report
};

__host__ __device__ inline RowValue row_load(const RowProgram::Instruction& ins, const ColumnView* inputs, int64_t row) {
  const ColumnView& c = inputs[ins.args[0]];
  // A field the schema calls non-nullable is all valid whatever its buffers say, as on the host.
  if (ins.flags != 0 && c.validity != nullptr && ((c.validity[row >> 3] >> (row & 7)) & 1) == 0) return row_null();
  switch (ins.op) {
    case RowProgram::Op::LoadBool: return row_int(static_cast<const uint8_t*>(c.values)[row]);
    case RowProgram::Op::LoadInt32: return row_int(static_cast<const int32_t*>(c.values)[row]);
    case RowProgram::Op::LoadInt64: return row_int(static_cast<const int64_t*>(c.values)[row]);
    case RowProgram::Op::LoadFloat32: return row_float(static_cast<double>(static_cast<const float*>(c.values)[row]));
    case RowProgram::Op::LoadFloat64: return row_float(static_cast<const double*>(c.values)[row]);
    default: {
      const int32_t first = c.offsets[row];
      const int32_t end = c.ends != nullptr ? c.ends[row] : c.offsets[row + 1];
      return row_string(c.chars + first, end - first);
    }
  }
}

/// How many of args[] name operand registers (loads and ConstString name other things).
__host__ __device__ inline int32_t row_operand_count(RowProgram::Op op) {
  using Op = RowProgram::Op;
  switch (op) {
    case Op::LoadBool:
    case Op::LoadInt32:
    case Op::LoadInt64:
    case Op::LoadFloat32:
    case Op::LoadFloat64:
    case Op::LoadString:
    case Op::ConstBool:
    case Op::ConstInt:
    case Op::ConstFloat:
    case Op::ConstString:
    case Op::ConstNull: return 0;
    case Op::IntToFloat:
    case Op::BoolToInt:
    case Op::BoolToFloat:
    case Op::FloatToInt:
    case Op::StringToInt:
    case Op::StringToFloat:
    case Op::NegInt:
    case Op::AbsInt:
    case Op::NegFloat:
    case Op::AbsFloat:
    case Op::FloorFloat:
    case Op::CeilFloat:
    case Op::RoundFloat:
    case Op::Not:
    case Op::IsNull:
    case Op::Length:
    case Op::Lower:
    case Op::Upper:
    case Op::Trim:
    case Op::IntToString:
    case Op::FloatToString: return 1;
    case Op::If:
    case Op::Substr: return 3;
    default: return 2;
  }
}

/// Instructions whose result is null when any operand is (all but the leaves and those
/// that look at validity themselves).
__host__ __device__ inline bool row_propagates_nulls(RowProgram::Op op) {
  switch (op) {
    case RowProgram::Op::And:
    case RowProgram::Op::Or:
    case RowProgram::Op::IsNull:
    case RowProgram::Op::If:
    case RowProgram::Op::Coalesce: return false;
    default: return true;
  }
}

/// Instruction @p ins on valid operands @p a, @p b, @p c (null-propagating opcodes only;
/// unused operands repeat @p a), the registers of the row so far being @p reg.
__host__ __device__ inline RowValue row_apply(const RowValue* reg, const RowProgram::Instruction& ins, const RowValue& a,
                                              const RowValue& b, const RowValue& c) {
  using Op = RowProgram::Op;
  switch (ins.op) {
    case Op::IntToFloat: return row_float(static_cast<double>(a.i));
    case Op::BoolToInt: return row_int(a.i != 0);
    case Op::BoolToFloat: return row_float(a.i != 0 ? 1.0 : 0.0);
    case Op::FloatToInt: {
      // The int64 range is [-2^63, 2^63); NaN fails both comparisons.
      constexpr double kLimit = 9223372036854775808.0;
      return a.f >= -kLimit && a.f < kLimit ? row_int(static_cast<int64_t>(a.f)) : row_null();
    }
    case Op::StringToInt: {
      int64_t v = 0;
      return row_parse_integer(reg, a, v) ? row_int(v) : row_null();
    }
    case Op::StringToFloat: {
      double v = 0;
      return row_parse_float(reg, a, v) ? row_float(v) : row_null();
    }
    case Op::IntToString: return row_decimal(a.i);

    case Op::NegInt: return row_int(row_wrap(0ull - static_cast<uint64_t>(a.i)));
    case Op::AddInt: return row_int(row_wrap(static_cast<uint64_t>(a.i) + static_cast<uint64_t>(b.i)));
    case Op::SubInt: return row_int(row_wrap(static_cast<uint64_t>(a.i) - static_cast<uint64_t>(b.i)));
    case Op::MulInt: return row_int(row_wrap(static_cast<uint64_t>(a.i) * static_cast<uint64_t>(b.i)));
    case Op::DivInt:
      if (b.i == 0) return row_null();
      return row_int(b.i == -1 ? row_wrap(0ull - static_cast<uint64_t>(a.i)) : a.i / b.i);
    case Op::ModInt:
      if (b.i == 0) return row_null();
      return row_int(b.i == -1 ? 0 : a.i % b.i);
    case Op::AbsInt: return row_int(a.i < 0 ? row_wrap(0ull - static_cast<uint64_t>(a.i)) : a.i);
    case Op::MinInt: return row_int(b.i < a.i ? b.i : a.i);
    case Op::MaxInt: return row_int(a.i < b.i ? b.i : a.i);

    case Op::NegFloat: return row_float(-a.f);
    case Op::AddFloat: return row_float(row_fadd(a.f, b.f));
    case Op::SubFloat: return row_float(row_fsub(a.f, b.f));
    case Op::MulFloat: return row_float(row_fmul(a.f, b.f));
    case Op::DivFloat: return b.f == 0 ? row_null() : row_float(row_fdiv(a.f, b.f));
    case Op::ModFloat: return b.f == 0 ? row_null() : row_float(::fmod(a.f, b.f));
    case Op::AbsFloat: return row_float(::fabs(a.f));
    case Op::FloorFloat: return row_float(::floor(a.f));
    case Op::CeilFloat: return row_float(::ceil(a.f));
    case Op::RoundFloat: return row_float(::round(a.f));  // half away from zero, as std::round
    case Op::MinFloat: return row_float(b.f < a.f ? b.f : a.f);
    case Op::MaxFloat: return row_float(a.f < b.f ? b.f : a.f);
    // std::min and std::max: the register chosen keeps its own case mapping.
    case Op::MinString: return row_compare_strings(reg, b, a) < 0 ? b : a;
    case Op::MaxString: return row_compare_strings(reg, a, b) < 0 ? b : a;

    case Op::CompareBool:
    case Op::CompareInt: return row_int(row_compare_values(ins.flags, a.i, b.i));
    case Op::CompareFloat: return row_int(row_compare_values(ins.flags, a.f, b.f));
    case Op::CompareString: return row_int(row_compares(ins.flags, row_compare_strings(reg, a, b)));

    case Op::Not: return row_int(a.i == 0);
    case Op::Length: return row_int(a.length);
    case Op::Contains: return row_int(row_contains(reg, a, b));
    case Op::StartsWith: return row_int(b.length <= a.length && row_matches_at(reg, a, 0, b));
    case Op::EndsWith: return row_int(b.length <= a.length && row_matches_at(reg, a, a.length - b.length, b));
    case Op::Lower: return row_case_mapped(a, kRowCaseLower);
    case Op::Upper: return row_case_mapped(a, kRowCaseUpper);
    case Op::Trim: return row_trim(reg, ins.args[0]);
    case Op::Substr: return row_substr(reg, ins.args[0], b.i, c.i);
    case Op::Concat: return row_concat(reg, ins.args[0], ins.args[1]);
    default: return row_null();
  }
}

/// A row's registers: a string result refers into them until it is written.
using RowRegisters = RowValue[RowProgram::kMaxInstructions];
static_assert(RowProgram::kFloatTextRegisters * sizeof(RowValue) >= kFloatTextMaxLength, "a float's text fits its registers");

/// Runs @p program on row @p row in the registers @p reg and returns its result register;
/// @p too_long is set when a concat made a string over 2^31 - 1 bytes anywhere in the row.
/// Not inlined: every kernel that runs programs (maps, filters, chains, fused reductions)
/// carried its own copy of the interpreter, and ptxas spent minutes on each unit (190 s for
/// the chains' unit, 75 s with one copy called). The call is one per row, beside a loop over
/// the program's instructions whose registers live in local memory anyway.
__host__ __device__ inline __noinline__ const RowValue& run_row_program(const RowProgramView& program, const ColumnView* inputs, int64_t row,
                                                           RowRegisters& reg, uint8_t& too_long) {
  using Op = RowProgram::Op;
  too_long = 0;
  int32_t float_texts = 0;
  for (int32_t k = 0; k < program.count; ++k) {
    const RowProgram::Instruction& ins = program.instructions[k];
    RowValue& out = reg[k];
    switch (ins.op) {
      case Op::LoadBool:
      case Op::LoadInt32:
      case Op::LoadInt64:
      case Op::LoadFloat32:
      case Op::LoadFloat64:
      case Op::LoadString: out = row_load(ins, inputs, row); continue;
      case Op::ConstBool:
      case Op::ConstInt: out = row_int(ins.int_value); continue;
      case Op::ConstFloat: out = row_float(ins.float_value); continue;
      case Op::ConstString: {
        const int32_t first = program.literal_offsets[ins.args[0]];
        out = row_string(program.literal_bytes + first, program.literal_offsets[ins.args[0] + 1] - first);
        continue;
      }
      case Op::ConstNull: out = row_null(); continue;
      case Op::And:
      case Op::Or: {
        // Three-valued: known when both sides are, or when one known side decides alone.
        const RowValue& a = reg[ins.args[0]];
        const RowValue& b = reg[ins.args[1]];
        const int64_t decider = ins.op == Op::And ? 0 : 1;
        if ((a.valid && a.i == decider) || (b.valid && b.i == decider)) out = row_int(decider);
        else if (a.valid && b.valid) out = row_int(1 - decider);
        else out = row_null();
        continue;
      }
      case Op::IsNull: out = row_int(reg[ins.args[0]].valid == 0); continue;
      case Op::If: {
        const RowValue& cond = reg[ins.args[0]];
        out = !cond.valid ? row_null() : reg[cond.i != 0 ? ins.args[1] : ins.args[2]];
        continue;
      }
      case Op::Coalesce: out = reg[ins.args[0]].valid ? reg[ins.args[0]] : reg[ins.args[1]]; continue;
      case Op::FloatToString: {
        // Its text goes into registers from the top of the file, which no instruction writes
        // (the upload checks that they fit), and the register views it.
        const RowValue& a = reg[ins.args[0]];
        ++float_texts;
        if (!a.valid) {
          out = row_null();
          continue;
        }
        char* text = reinterpret_cast<char*>(&reg[RowProgram::kMaxInstructions - float_texts * RowProgram::kFloatTextRegisters]);
        out = row_string(text, float_text_write(a.f, text));
        continue;
      }
      default: break;
    }
    // Null-propagating operations: unused operand slots are -1 and read as args[0].
    const RowValue& a = reg[ins.args[0]];
    const RowValue& b = reg[ins.args[1] >= 0 ? ins.args[1] : ins.args[0]];
    const RowValue& c = reg[ins.args[2] >= 0 ? ins.args[2] : ins.args[0]];
    out = a.valid && b.valid && c.valid ? row_apply(reg, ins, a, b, c) : row_null();
    too_long |= out.too_long;
  }
  return reg[program.result];
}

/// Records that a row made a string over 2^31 - 1 bytes (programs with a concat only).
__host__ __device__ inline void row_report_too_long(uint8_t too_long, uint8_t* flag) {
  if (too_long && flag != nullptr) *flag = 1;
}

/// Writes one row's result: bools as one byte 0/1, int64, double; and one validity byte.
struct RowProgramWriter {
  RowProgramView program;
  const ColumnView* inputs;
  void* values;
  uint8_t* valid;
  uint8_t* too_long;
  __host__ __device__ void operator()(int64_t row) const {
    RowRegisters reg;
    uint8_t long_string = 0;
    const RowValue& v = run_row_program(program, inputs, row, reg, long_string);
    row_report_too_long(long_string, too_long);
    valid[row] = v.valid;
    switch (program.result_type) {
      case kBool: static_cast<uint8_t*>(values)[row] = static_cast<uint8_t>(v.i); break;
      case kInt64: static_cast<int64_t*>(values)[row] = v.i; break;
      default: static_cast<double*>(values)[row] = v.f; break;
    }
  }
};

/// Pass 1 of a string result: each row's validity byte and its length in bytes (0 when null).
struct RowStringMeasure {
  RowProgramView program;
  const ColumnView* inputs;
  int32_t* lengths;
  uint8_t* valid;
  uint8_t* too_long;
  __host__ __device__ void operator()(int64_t row) const {
    RowRegisters reg;
    uint8_t long_string = 0;
    const RowValue& v = run_row_program(program, inputs, row, reg, long_string);
    row_report_too_long(long_string, too_long);
    valid[row] = v.valid;
    lengths[row] = v.valid ? v.length : 0;
  }
};

/// Pass 2 of a string result: each row's bytes, case-mapped, at its offset. Rows of no bytes
/// (nulls, empty strings) are not run again.
struct RowStringCopy {
  RowProgramView program;
  const ColumnView* inputs;
  const int32_t* offsets;
  char* chars;
  __host__ __device__ void operator()(int64_t row) const {
    const int32_t first = offsets[row];
    if (offsets[row + 1] == first) return;
    RowRegisters reg;
    uint8_t long_string = 0;  // the measuring pass has reported it
    const RowValue& v = run_row_program(program, inputs, row, reg, long_string);
    for (int32_t k = 0; k < v.length; ++k) chars[first + k] = row_byte(reg, v, k);
  }
};

/// A filter's predicate, one byte per row: 1 where the result is valid and true.
struct RowProgramKeep {
  RowProgramView program;
  const ColumnView* inputs;
  uint8_t* keep;
  uint8_t* too_long;
  __host__ __device__ void operator()(int64_t row) const {
    RowRegisters reg;
    uint8_t long_string = 0;
    const RowValue& v = run_row_program(program, inputs, row, reg, long_string);
    row_report_too_long(long_string, too_long);
    keep[row] = v.valid && v.i != 0;
  }
};

struct ByteIsSet {
  __host__ __device__ bool operator()(uint8_t b) const { return b != 0; }
};

// ---------------------------------------------------------------- upload and kernels

/// The register types an instruction reads and writes, for the upload's check: @p result the
/// type it writes (-1: its own `type`, as If, Coalesce and ConstNull take), @p operands those of
/// its operand registers (-1: any; -2: its own `type`).
inline void row_signature(RowProgram::Op op, int32_t& result, int32_t (&operands)[3]) {
  using Op = RowProgram::Op;
  constexpr int32_t B = kBool, I = kInt64, F = kFloat64, S = kString, Own = -2, Any = -1;
  auto sig = [&](int32_t r, int32_t a = -1, int32_t b = -1, int32_t c = -1) {  // -1: Any
    result = r;
    operands[0] = a;
    operands[1] = b;
    operands[2] = c;
  };
  switch (op) {
    case Op::LoadBool: case Op::ConstBool: return sig(B);
    case Op::LoadInt32: case Op::LoadInt64: case Op::ConstInt: return sig(I);
    case Op::LoadFloat32: case Op::LoadFloat64: case Op::ConstFloat: return sig(F);
    case Op::LoadString: case Op::ConstString: return sig(S);
    case Op::ConstNull: return sig(Any);
    case Op::IntToFloat: return sig(F, I);
    case Op::BoolToInt: return sig(I, B);
    case Op::BoolToFloat: return sig(F, B);
    case Op::FloatToInt: return sig(I, F);
    case Op::StringToInt: return sig(I, S);
    case Op::StringToFloat: return sig(F, S);
    case Op::NegInt: case Op::AbsInt: return sig(I, I);
    case Op::AddInt: case Op::SubInt: case Op::MulInt: case Op::DivInt: case Op::ModInt: case Op::MinInt: case Op::MaxInt:
      return sig(I, I, I);
    case Op::NegFloat: case Op::AbsFloat: case Op::FloorFloat: case Op::CeilFloat: case Op::RoundFloat: return sig(F, F);
    case Op::AddFloat: case Op::SubFloat: case Op::MulFloat: case Op::DivFloat: case Op::ModFloat: case Op::MinFloat:
    case Op::MaxFloat: return sig(F, F, F);
    case Op::MinString: case Op::MaxString: case Op::Concat: return sig(S, S, S);
    case Op::CompareBool: case Op::And: case Op::Or: return sig(B, B, B);
    case Op::CompareInt: return sig(B, I, I);
    case Op::CompareFloat: return sig(B, F, F);
    case Op::CompareString: case Op::Contains: case Op::StartsWith: case Op::EndsWith: return sig(B, S, S);
    case Op::Not: return sig(B, B);
    case Op::IsNull: return sig(B, Any);
    case Op::If: return sig(Any, B, Own, Own);
    case Op::Coalesce: return sig(Any, Own, Own);
    case Op::Length: return sig(I, S);
    case Op::Lower: case Op::Upper: case Op::Trim: return sig(S, S);
    case Op::Substr: return sig(S, S, I, I);
    case Op::IntToString: return sig(S, I);
    case Op::FloatToString: return sig(S, F);
  }
  sig(Any);
}

/// A RowProgram's instructions and literals copied into @p Exec memory.
template <class Exec> class UploadedRowProgram {
 public:
  /// @throw sluice::Error when @p program is not one compile() makes (too long, a result of
  /// another type or not of its register's type, an operand that is not an earlier register).
  UploadedRowProgram(Exec& exec, const RowProgram& program)
      : instructions_(exec.template alloc<RowProgram::Instruction>(checked(program).instructions.size())),
        literal_bytes_(exec.template alloc<char>(program.literal_bytes.size())),
        literal_offsets_(exec.template alloc<int32_t>(program.literal_offsets.size())),
        fields_(program.fields.size()) {
    exec.to_device(instructions_.data(), program.instructions.data(), program.instructions.size() * sizeof(RowProgram::Instruction));
    exec.to_device(literal_bytes_.data(), program.literal_bytes.data(), program.literal_bytes.size());
    exec.to_device(literal_offsets_.data(), program.literal_offsets.data(), program.literal_offsets.size() * sizeof(int32_t));
    view_.instructions = instructions_.data();
    view_.count = static_cast<int32_t>(program.instructions.size());
    view_.result = program.result;
    view_.result_type = program.result_type;
    view_.literal_bytes = literal_bytes_.data();
    view_.literal_offsets = literal_offsets_.data();
    for (const RowProgram::Instruction& ins : program.instructions) view_.has_concat |= ins.op == RowProgram::Op::Concat ? 1 : 0;
  }

  const RowProgramView& view() const { return view_; }
  int32_t result_type() const { return view_.result_type; }
  /// Input columns the kernels expect (RowProgram::fields.size()).
  size_t input_count() const { return fields_; }

 private:
  // The interpreter trusts the program (fixed register file, operands by index), so what
  // crosses to the device is checked here once.
  static const RowProgram& checked(const RowProgram& p) {
    const auto count = static_cast<int64_t>(p.instructions.size());
    auto fail = [](const std::string& what) { throw Error("row program: " + what); };
    if (count == 0 || count > RowProgram::kMaxInstructions)
      fail(std::to_string(count) + " instructions (1 to " + std::to_string(RowProgram::kMaxInstructions) + ")");
    int64_t float_texts = 0;
    for (const RowProgram::Instruction& ins : p.instructions) float_texts += ins.op == RowProgram::Op::FloatToString;
    if (count + float_texts * RowProgram::kFloatTextRegisters > RowProgram::kMaxInstructions)
      fail(std::to_string(count) + " instructions need " + std::to_string(count + float_texts * RowProgram::kFloatTextRegisters) +
           " registers with their float texts (" + std::to_string(RowProgram::kFloatTextRegisters) + " each), more than the " +
           std::to_string(RowProgram::kMaxInstructions) + " there are");
    if (p.result < 0 || p.result >= count) fail("result register " + std::to_string(p.result) + " out of range");
    if (p.result_type != kBool && p.result_type != kInt64 && p.result_type != kFloat64 && p.result_type != kString)
      fail("result type " + std::to_string(p.result_type) + " is not bool, int64, float64 or string");
    // The writers read the result register as result_type: a mismatch would reinterpret it.
    if (p.instructions[static_cast<size_t>(p.result)].type != p.result_type)
      fail("result type " + std::to_string(p.result_type) + " differs from the type of result register " +
           std::to_string(p.result));
    if (p.literal_offsets.empty() || p.literal_offsets.front() != 0 ||
        p.literal_offsets.back() != static_cast<int64_t>(p.literal_bytes.size()))
      fail("literal offsets do not span the literal bytes");
    for (size_t k = 1; k < p.literal_offsets.size(); ++k)
      if (p.literal_offsets[k] < p.literal_offsets[k - 1]) fail("literal offsets decrease");
    const auto literals = static_cast<int64_t>(p.literal_offsets.size()) - 1;
    for (int64_t k = 0; k < count; ++k) {
      const RowProgram::Instruction& ins = p.instructions[static_cast<size_t>(k)];
      const int32_t arg0 = ins.args[0];
      bool ok = true;
      if (ins.op >= RowProgram::Op::LoadBool && ins.op <= RowProgram::Op::LoadString) {
        ok = arg0 >= 0 && arg0 < static_cast<int64_t>(p.fields.size());
      } else if (ins.op == RowProgram::Op::ConstString) {
        ok = arg0 >= 0 && arg0 < literals;
      } else if (ins.op > RowProgram::kLastOp || ins.op < RowProgram::Op::LoadBool) {
        ok = false;
      } else {
        const int32_t operands = row_operand_count(ins.op);
        for (int32_t a = 0; a < 3; ++a) ok = ok && (a < operands ? ins.args[a] >= 0 && ins.args[a] < k : ins.args[a] == -1);
      }
      if (!ok) fail("instruction " + std::to_string(k) + " (opcode " + std::to_string(static_cast<int32_t>(ins.op)) +
                    ") has an operand out of range");
      // Registers are read as their opcode says: a register of another type read as a string
      // would be followed as a pointer or as other registers' indexes.
      int32_t result = -1, operand_types[3] = {-1, -1, -1};
      row_signature(ins.op, result, operand_types);
      ok = ins.type == kBool || ins.type == kInt64 || ins.type == kFloat64 || ins.type == kString;
      ok = ok && (result == -1 || ins.type == result);
      const int32_t operands = ins.op <= RowProgram::Op::ConstNull ? 0 : row_operand_count(ins.op);
      for (int32_t a = 0; a < operands; ++a) {
        const int32_t want = operand_types[a] == -2 ? ins.type : operand_types[a];
        ok = ok && (want == -1 || p.instructions[static_cast<size_t>(ins.args[a])].type == want);
      }
      if (!ok) fail("instruction " + std::to_string(k) + " (opcode " + std::to_string(static_cast<int32_t>(ins.op)) +
                    ") reads or writes a register of another type than its opcode takes");
    }
    return p;
  }

  typename Exec::template Array<RowProgram::Instruction> instructions_;
  typename Exec::template Array<char> literal_bytes_;
  typename Exec::template Array<int32_t> literal_offsets_;
  size_t fields_;
  RowProgramView view_;
};

/// Throws unless every field @p program loads has, in @p inputs (one view per entry of
/// RowProgram::fields, host-side copies), the type its load reads: the interpreter reads a
/// field's buffers as its load says, so a mismatch would read past them.
inline void check_program_inputs(const RowProgram& program, const std::vector<ColumnView>& inputs) {
  if (inputs.size() != program.fields.size())
    throw Error("row program: " + std::to_string(inputs.size()) + " input columns for " + std::to_string(program.fields.size()) +
                " fields");
  for (const RowProgram::Instruction& ins : program.instructions) {
    if (ins.op < RowProgram::Op::LoadBool || ins.op > RowProgram::Op::LoadString) continue;
    // The loads are in the order of the column types.
    const auto load_type = static_cast<int32_t>(ins.op) - static_cast<int32_t>(RowProgram::Op::LoadBool);
    if (ins.args[0] < 0 || static_cast<size_t>(ins.args[0]) >= inputs.size()) continue;  // the upload names it
    const ColumnView& column = inputs[static_cast<size_t>(ins.args[0])];
    if (column.type != load_type)
      throw Error("row program: field " + std::to_string(program.fields[static_cast<size_t>(ins.args[0])]) + " is loaded as type " +
                  std::to_string(load_type) + ", but its column has type " + std::to_string(column.type));
  }
}

/// A program uploaded with its input columns: the entries of RowProgram::fields of @p columns
/// (views of Exec memory, indexed as the program's table), as a ColumnView array in Exec memory.
template <class Exec> struct BoundRowProgram {
  UploadedRowProgram<Exec> program;
  typename Exec::template Array<ColumnView> inputs;
};

/// @throw sluice::Error when a field is out of range of @p columns, has another type than the
/// program loads, or the program is malformed.
template <class Exec>
BoundRowProgram<Exec> bind_row_program(Exec& exec, const RowProgram& program, const std::vector<ColumnView>& columns) {
  std::vector<ColumnView> inputs;
  for (size_t field : program.fields) {
    if (field >= columns.size())
      throw Error("row program: reads field " + std::to_string(field) + " of " + std::to_string(columns.size()) + " columns");
    inputs.push_back(columns[field]);
  }
  check_program_inputs(program, inputs);
  BoundRowProgram<Exec> bound{UploadedRowProgram<Exec>(exec, program), exec.template alloc<ColumnView>(inputs.size())};
  exec.to_device(bound.inputs.data(), inputs.data(), inputs.size() * sizeof(ColumnView));
  return bound;
}

/// A byte in Exec memory that the kernels set when a row made a string over 2^31 - 1 bytes;
/// none for a program without a concat, which cannot.
template <class Exec> class TooLongStrings {
 public:
  TooLongStrings(Exec& exec, const UploadedRowProgram<Exec>& program) {
    if (!program.view().has_concat) return;
    flag_ = exec.template alloc<uint8_t>(1);
    const uint8_t zero = 0;
    exec.to_device(flag_.data(), &zero, 1);
  }
  uint8_t* flag() const { return flag_.size() != 0 ? flag_.data() : nullptr; }
  /// @throw sluice::Error as the host's evaluator does when a row made one.
  void check(Exec& exec) const {
    if (flag_.size() == 0) return;
    uint8_t set = 0;
    exec.to_host(&set, flag_.data(), 1);
    SLUICE_EXPECTS(set == 0, "expression result exceeds 2 GiB of characters in one batch");
  }

 private:
  typename Exec::template Array<uint8_t> flag_;
};

/// Evaluates @p program on @p rows rows of @p inputs (in Exec memory, one ColumnView per entry
/// of RowProgram::fields, of the field's type): @p out_values gets one value of the result
/// type per row (bool as uint8_t 0/1, int64_t, double; 0 at null rows) and @p out_valid one
/// byte per row (1 = valid).
template <class Exec>
void evaluate_rows(Exec& exec, const UploadedRowProgram<Exec>& program, const ColumnView* inputs, size_t rows, void* out_values,
                   uint8_t* out_valid) {
  SLUICE_EXPECTS(program.result_type() != kString,
                 "row program: evaluate_rows writes fixed-width values; a string program needs evaluate_string_rows");
  if (rows == 0) return;
  const TooLongStrings<Exec> too_long(exec, program);
  thrust::for_each_n(exec.policy(), thrust::counting_iterator<int64_t>(0), static_cast<int64_t>(rows),
                     RowProgramWriter{program.view(), inputs, out_values, out_valid, too_long.flag()});
  too_long.check(exec);
}

/// A string result in @p Exec memory: an Arrow string column (null rows hold no bytes) with
/// one validity byte per row.
template <class Exec> struct StringRows {
  typename Exec::template Array<int32_t> offsets;  ///< rows + 1, from 0
  typename Exec::template Array<char> chars;       ///< bytes: offsets[rows]
  typename Exec::template Array<uint8_t> valid;    ///< one byte per row (1 = valid)
  size_t bytes = 0;
};

/// Evaluates the string @p program on @p rows rows of @p inputs (as evaluate_rows) in two
/// passes: the lengths, scanned into offsets, then each row's bytes.
/// @throw sluice::Error when @p program is not a string program, or when the result exceeds
/// the 2^31 - 1 bytes that int32 offsets address.
template <class Exec>
StringRows<Exec> evaluate_string_rows(Exec& exec, const UploadedRowProgram<Exec>& program, const ColumnView* inputs, size_t rows) {
  SLUICE_EXPECTS(program.result_type() == kString, "row program: evaluate_string_rows needs a string program");
  StringRows<Exec> out;
  out.offsets = exec.template alloc<int32_t>(rows + 1);
  out.valid = exec.template alloc<uint8_t>(rows);
  const int32_t zero = 0;
  // The slot after the last row makes the exclusive scan's last entry the total.
  exec.to_device(out.offsets.data() + rows, &zero, sizeof zero);
  const auto all_rows = thrust::counting_iterator<int64_t>(0);
  const auto row_count = static_cast<int64_t>(rows);
  if (rows > 0) {
    int32_t* const lengths = out.offsets.data();
    const TooLongStrings<Exec> too_long(exec, program);
    thrust::for_each_n(exec.policy(), all_rows, row_count,
                       RowStringMeasure{program.view(), inputs, lengths, out.valid.data(), too_long.flag()});
    too_long.check(exec);
    // Summed in int64 before the int32 scan, which would overflow silently.
    const int64_t total = thrust::reduce(exec.policy(), lengths, lengths + rows, int64_t{0});
    SLUICE_EXPECTS(total <= INT32_MAX, "row program: the string result of " + std::to_string(rows) + " rows is " +
                                           std::to_string(total) + " bytes, over the " + std::to_string(INT32_MAX) +
                                           " that a string column's int32 offsets address");
    thrust::exclusive_scan(exec.policy(), lengths, lengths + rows + 1, lengths);
    out.bytes = static_cast<size_t>(total);
  }
  out.chars = exec.template alloc<char>(out.bytes);
  if (out.bytes > 0)
    thrust::for_each_n(exec.policy(), all_rows, row_count, RowStringCopy{program.view(), inputs, out.offsets.data(), out.chars.data()});
  return out;
}

/// A filter: the indexes of the rows where the bool @p program is true (not false, not null),
/// ascending, into @p out_rows (room for @p rows); returns how many. The predicate runs as a
/// map does, one row per thread into a byte mask, and the compaction reads the mask: run
/// inside the compaction (several rows a thread under CUB's register cap) the interpreter
/// spilled.
template <class Exec>
size_t select_rows(Exec& exec, const UploadedRowProgram<Exec>& program, const ColumnView* inputs, size_t rows, int64_t* out_rows) {
  SLUICE_EXPECTS(program.result_type() == kBool, "row program: select_rows needs a bool program");
  if (rows == 0) return 0;
  const TooLongStrings<Exec> too_long(exec, program);
  auto keep = exec.template alloc<uint8_t>(rows);
  const auto all_rows = thrust::counting_iterator<int64_t>(0);
  thrust::for_each_n(exec.policy(), all_rows, static_cast<int64_t>(rows),
                     RowProgramKeep{program.view(), inputs, keep.data(), too_long.flag()});
  int64_t* const end =
      thrust::copy_if(exec.policy(), all_rows, all_rows + static_cast<int64_t>(rows), keep.data(), out_rows, ByteIsSet{});
  too_long.check(exec);
  return static_cast<size_t>(end - out_rows);
}

}  // namespace sluice::gpu
