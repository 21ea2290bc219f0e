#pragma once
/// @file row_program.hpp
/// @brief A pipeline expression compiled, for one input schema, into a flat typed program that
/// one device thread interprets per row (built by pipeline::Expression::compile, run by
/// kernels/row_program.cuh).
///
/// The program is in SSA form: instruction i writes register i and reads only the registers
/// of earlier instructions, so one pass in order evaluates a row, and a thread's register file
/// is one slot per instruction (at most kMaxInstructions). A register holds a value and a
/// validity flag. Types are resolved when compiling, so every opcode names the type it works
/// on and the interpreter never promotes: int32 and float32 fields are widened by their loads,
/// and an int64 meeting a float64 goes through an explicit IntToFloat, exactly where the host
/// evaluator (src/pipeline/expression.cpp) promotes.
///
/// Register types (Instruction::type, sluice::TypeId values): Bool (0 or 1), Int64, Float64,
/// and String, whose bytes are those of an input column or of a literal, or those of earlier
/// registers of the same row (Concat joins two, IntToString and FloatToString spell a number), read through a
/// case mapping (none, lower or upper). No instruction writes string bytes: Trim and Substr
/// narrow what they read, Lower and Upper set the mapping, and every reader of the bytes
/// (comparisons, Contains/StartsWith/EndsWith, MinString/MaxString, the writer of a string
/// result) sees them mapped. The outer mapping wins (lower(upper(s)) reads as lower(s)), and
/// narrowing keeps it: ASCII case mapping changes neither lengths nor which bytes are
/// whitespace, so trim and substr commute with it. StringToInt and StringToFloat may read
/// through it (a letter fails an integer in either case; a float's letters are read in either
/// case) and Length does not need it. A Concat whose string would
/// pass 2^31 - 1 bytes fails the whole run, as the host's evaluation does.
///
/// Results: Bool, Int64 or Float64 (kernels/row_program.cuh evaluate_rows, select_rows), or
/// String (evaluate_string_rows: the strings measured, then their mapped bytes copied out).
///
/// Null rule: an instruction whose operand is null gives null, except where its opcode says
/// otherwise (And, Or, IsNull, If, Coalesce, and those that can make nulls: DivInt, ModInt,
/// DivFloat, ModFloat, FloatToInt, StringToInt, StringToFloat, ConstNull).
///
/// C++17 and free of CUDA headers: the C++20 engine and the C++17 kernels both include it.

#include <cstdint>
#include <string>
#include <vector>

namespace sluice {

struct RowProgram {
  /// Registers of one thread: compile() gives up on programs with more instructions.
  static constexpr int32_t kMaxInstructions = 64;
  /// Registers a FloatToString takes from the top of the file for its text (at most 24
  /// bytes), the j-th in program order the j-th pair from the top; they count against
  /// kMaxInstructions.
  static constexpr int32_t kFloatTextRegisters = 2;

  enum class Op : int32_t {
    // Field loads: args[0] is a position in `fields`; flags = 1 when the field is nullable
    // (only then is its validity bitmap read, as the host evaluator does).
    LoadBool,
    LoadInt32,    ///< widened to Int64
    LoadInt64,
    LoadFloat32,  ///< widened to Float64 (exactly)
    LoadFloat64,
    LoadString,
    // Constants.
    ConstBool,    ///< int_value (0 or 1)
    ConstInt,     ///< int_value
    ConstFloat,   ///< float_value
    ConstString,  ///< args[0]: literal index in the pool
    ConstNull,    ///< a null of `type` (the literal `null` once its context gave it a type)
    // Conversions.
    IntToFloat,   ///< numeric promotion (rounds to nearest)
    BoolToInt,
    BoolToFloat,
    FloatToInt,   ///< truncates; null for NaN and outside [-2^63, 2^63)
    StringToInt,  ///< strict -?[0-9]+ within int64 (std::from_chars); null otherwise
    /// std::from_chars's general syntax, whole (inf, nan, nan(chars) too), rounded to nearest;
    /// null otherwise, and when the decimal is beyond DBL_MAX or a nonzero decimal rounds to 0
    StringToFloat,
    // Integer arithmetic: wraps on overflow; division by zero is null, x / -1 wraps (no trap)
    // and x % -1 is 0; % takes the sign of the dividend.
    NegInt, AddInt, SubInt, MulInt, DivInt, ModInt, AbsInt, MinInt, MaxInt,
    // Float arithmetic, IEEE round to nearest, never fused; division by (+-)0 is null.
    NegFloat, AddFloat, SubFloat, MulFloat, DivFloat, ModFloat, AbsFloat, FloorFloat, CeilFloat,
    RoundFloat,  ///< half away from zero
    MinFloat,    ///< std::min(a, b): (b < a) ? b : a, so NaN and -0.0 follow argument order
    MaxFloat,    ///< std::max(a, b): (a < b) ? b : a
    MinString, MaxString,  ///< byte-wise order; the result views one of the operands
    // Comparisons of two operands of one type (flags: a Comparison); strings byte-wise
    // (unsigned), a proper prefix first.
    CompareBool, CompareInt, CompareFloat, CompareString,
    // Logic, three-valued: `false and null` is false, `true or null` is true.
    Not, And, Or,
    IsNull,    ///< never null
    If,        ///< args: condition, then, else; null when the condition is
    Coalesce,  ///< args[0] when valid, else args[1] (n-ary coalesce is a chain)
    // Strings (bytes, through the register's case mapping).
    Length, Contains, StartsWith, EndsWith,
    // Strings made from strings: views of the operand's bytes.
    Lower,   ///< ASCII A-Z to a-z (sets the case mapping)
    Upper,   ///< ASCII a-z to A-Z (sets the case mapping)
    Trim,    ///< strips ASCII whitespace (space, \t \n \v \f \r) at both ends
    /// args: string, start, length (int64s); as the host clamps: a negative start counts from
    /// the end and stops at 0, a start past the end gives "", a negative length gives "", a
    /// length past the end stops there.
    Substr,
    // Strings made of other strings and of numbers.
    Concat,       ///< args[0]'s bytes, then args[1]'s (n-ary concat is a chain)
    IntToString,    ///< std::to_string of an int64
    FloatToString,  ///< std::to_chars of a double, ".0" where a finite one has no '.' or 'e', "nan" for NaN
  };
  /// The last opcode (the range the upload accepts).
  static constexpr Op kLastOp = Op::FloatToString;

  enum class Comparison : int32_t { Eq, Ne, Lt, Le, Gt, Ge };

  /// One fixed-size, trivially copyable instruction; it writes register (its own index).
  struct Instruction {
    Op op = Op::ConstNull;
    int32_t type = 0;                ///< TypeId of the value written
    int32_t args[3] = {-1, -1, -1};  ///< operand registers (earlier indexes), or as the opcode says
    int32_t flags = 0;               ///< Compare*: a Comparison; Load*: field nullable
    int64_t int_value = 0;           ///< ConstBool, ConstInt
    double float_value = 0;          ///< ConstFloat
  };

  std::vector<Instruction> instructions;
  /// String literals: literal k is literal_bytes[literal_offsets[k], literal_offsets[k + 1]).
  std::string literal_bytes;
  std::vector<int32_t> literal_offsets{0};
  /// Table column indexes the program reads; a load names a position in this list, and the
  /// kernels take one input column per entry, in this order.
  std::vector<size_t> fields;
  int32_t result = -1;       ///< the register holding the result
  int32_t result_type = 0;   ///< TypeId: Bool, Int64, Float64 or String
  bool result_nullable = false;
};

}  // namespace sluice
