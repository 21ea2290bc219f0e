#pragma once
/// @file types.hpp
/// @brief Element types, schemas, times and the error type shared by the whole engine.

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/error.hpp"

namespace sluice {

/// Batch times and durations are whole milliseconds, as in Spark Streaming.
using Duration = std::chrono::milliseconds;

/// A point on the batch clock: milliseconds since the clock's epoch.
struct Time {
  int64_t ms = 0;
  friend auto operator<=>(const Time&, const Time&) = default;
  Time operator+(Duration d) const { return Time{ms + d.count()}; }
  Time operator-(Duration d) const { return Time{ms - d.count()}; }
  Duration operator-(Time other) const { return Duration{ms - other.ms}; }
};

/// @brief Physical type of a column, in the Apache Arrow layout.
enum class TypeId : uint8_t {
  Bool,     ///< one byte per value (0 or 1)
  Int32,    ///< 32-bit signed integer
  Int64,    ///< 64-bit signed integer
  Float32,  ///< IEEE-754 binary32
  Float64,  ///< IEEE-754 binary64
  String,   ///< UTF-8: int32 offsets (size + 1) and one character buffer
  List,     ///< variable-length list of structs: int32 offsets and child columns
};

/// @brief Name of a type as written in pipeline files and error messages ("int64", "string", ...).
std::string_view type_name(TypeId type);

/// @brief Parses a type name ("int", "int32", "long", "int64", "float", "double", "bool",
/// "string"); throws sluice::Error naming @p name when it is not a type.
TypeId parse_type_name(std::string_view name);

/// @brief True for Int32, Int64, Float32 and Float64.
constexpr bool is_numeric(TypeId t) {
  return t == TypeId::Int32 || t == TypeId::Int64 || t == TypeId::Float32 || t == TypeId::Float64;
}

/// @brief Byte width of a fixed-width type, 0 for String and List.
constexpr size_t fixed_width(TypeId t) {
  switch (t) {
    case TypeId::Bool: return 1;
    case TypeId::Int32: return 4;
    case TypeId::Int64: return 8;
    case TypeId::Float32: return 4;
    case TypeId::Float64: return 8;
    default: return 0;
  }
}

/// @brief One named field of a schema. A List field's element is the struct of @ref children.
struct Field {
  Field() = default;
  Field(std::string name_, TypeId type_, bool nullable_ = false, std::vector<Field> children_ = {})
      : name(std::move(name_)), type(type_), nullable(nullable_), children(std::move(children_)) {}

  std::string name;
  TypeId type = TypeId::Int64;
  bool nullable = false;
  std::vector<Field> children;
  friend bool operator==(const Field&, const Field&) = default;
};

/// @brief The ordered fields of a table.
class Schema {
 public:
  Schema() = default;
  Schema(std::vector<Field> fields) : fields_(std::move(fields)) {}
  Schema(std::initializer_list<Field> fields) : fields_(fields) {}

  size_t size() const { return fields_.size(); }
  bool empty() const { return fields_.empty(); }
  const Field& operator[](size_t i) const { return fields_[i]; }
  const std::vector<Field>& fields() const { return fields_; }
  std::vector<Field>& fields() { return fields_; }
  auto begin() const { return fields_.begin(); }
  auto end() const { return fields_.end(); }

  /// Index of the field called @p name, or -1.
  int find(std::string_view name) const;
  /// Index of the field called @p name; throws sluice::Error listing the fields otherwise.
  size_t index_of(std::string_view name) const;
  /// "word: string, count: int64"
  std::string to_string() const;

  friend bool operator==(const Schema&, const Schema&) = default;

 private:
  std::vector<Field> fields_;
};

}  // namespace sluice
