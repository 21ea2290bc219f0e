#pragma once
/// @file codec.hpp
/// @brief How C++ element types map onto columns: Codec<T> appends a T to a row of
/// columns and reads it back. Scalars take one column; std::pair and std::tuple flatten
/// into one column per component ("_1", "_2", ...); std::optional<T> makes T's columns
/// nullable; std::vector<T> is one List column whose elements are T's columns.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "sluice/column.hpp"

/// Marks a user functor that may run on the host and, under nvcc, inside kernels.
#if defined(__CUDACC__)
#define SLUICE_FN __host__ __device__
#else
#define SLUICE_FN
#endif

namespace sluice {

/// @brief A SLUICE_FN functor that map, filter and reduce_by_key run inside kernels when the
/// program is compiled by nvcc and the context runs on the CUDA backend (records of
/// integers, floating point or bool); everywhere else it runs on the host like any functor.
/// @code
///   struct Scale { SLUICE_FN double operator()(double x) const { return x * 1.5; } };
///   prices.map(sluice::device_fn(Scale{}));
/// @endcode
template <class F> struct DeviceFn {
  F f;
  template <class... A> SLUICE_FN auto operator()(const A&... a) const { return f(a...); }
};
template <class F> DeviceFn<F> device_fn(F f) { return DeviceFn<F>{std::move(f)}; }

template <class T, class Enable = void> struct Codec {
  static_assert(sizeof(T) == 0,
                "sluice: unsupported element type (use integers, floating point, bool, std::string, "
                "std::pair, std::tuple, std::optional or std::vector of them)");
};

namespace detail {
inline std::string child_name(const std::string& prefix, size_t index) {
  return prefix.empty() ? "_" + std::to_string(index + 1) : prefix + "._" + std::to_string(index + 1);
}
template <class T> struct is_optional : std::false_type {};
template <class T> struct is_optional<std::optional<T>> : std::true_type {};
}  // namespace detail

/// Integers of up to 32 bits are stored as int32, 64-bit ones as int64.
template <class T>
struct Codec<T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>>> {
  static constexpr size_t width = 1;
  using storage = std::conditional_t<(sizeof(T) <= 4), int32_t, int64_t>;
  static void fields(std::vector<Field>& out, const std::string& name, bool nullable = false) {
    out.push_back(Field{name.empty() ? "value" : name, type_of_storage<storage>(), nullable, {}});
  }
  static void append(Column* c, const T& v) { c->append<storage>(static_cast<storage>(v)); }
  static T read(const Column* c, size_t row) { return static_cast<T>(c->values<storage>()[row]); }
};

template <class T> struct Codec<T, std::enable_if_t<std::is_floating_point_v<T>>> {
  static constexpr size_t width = 1;
  using storage = std::conditional_t<(sizeof(T) <= 4), float, double>;
  static void fields(std::vector<Field>& out, const std::string& name, bool nullable = false) {
    out.push_back(Field{name.empty() ? "value" : name, type_of_storage<storage>(), nullable, {}});
  }
  static void append(Column* c, const T& v) { c->append<storage>(static_cast<storage>(v)); }
  static T read(const Column* c, size_t row) { return static_cast<T>(c->values<storage>()[row]); }
};

template <> struct Codec<bool> {
  static constexpr size_t width = 1;
  static void fields(std::vector<Field>& out, const std::string& name, bool nullable = false) {
    out.push_back(Field{name.empty() ? "value" : name, TypeId::Bool, nullable, {}});
  }
  static void append(Column* c, const bool& v) { c->append<uint8_t>(v ? 1 : 0); }
  static bool read(const Column* c, size_t row) { return c->values<uint8_t>()[row] != 0; }
};

template <> struct Codec<std::string> {
  static constexpr size_t width = 1;
  static void fields(std::vector<Field>& out, const std::string& name, bool nullable = false) {
    out.push_back(Field{name.empty() ? "value" : name, TypeId::String, nullable, {}});
  }
  static void append(Column* c, const std::string& v) { c->append_string(v); }
  static std::string read(const Column* c, size_t row) { return std::string(c->string_at(row)); }
};

template <class... Ts> struct Codec<std::tuple<Ts...>> {
  static constexpr size_t width = (Codec<Ts>::width + ... + 0);
  static void fields(std::vector<Field>& out, const std::string& prefix, bool nullable = false) {
    size_t i = 0;
    (Codec<Ts>::fields(out, detail::child_name(prefix, i++), nullable), ...);
  }
  static void append(Column* c, const std::tuple<Ts...>& v) {
    std::apply([&](const auto&... xs) { (append_one(c, xs), ...); }, v);
  }
  static std::tuple<Ts...> read(const Column* c, size_t row) {
    return read_impl(c, row, std::index_sequence_for<Ts...>{});
  }

 private:
  template <class X> static void append_one(Column*& c, const X& x) {
    Codec<X>::append(c, x);
    c += Codec<X>::width;
  }
  template <size_t... I> static std::tuple<Ts...> read_impl(const Column* c, size_t row, std::index_sequence<I...>) {
    constexpr size_t widths[] = {Codec<Ts>::width..., 0};
    size_t offsets[sizeof...(Ts) + 1] = {};
    for (size_t i = 0; i < sizeof...(Ts); ++i) offsets[i + 1] = offsets[i] + widths[i];
    return std::tuple<Ts...>{Codec<Ts>::read(c + offsets[I], row)...};
  }
};

template <class A, class B> struct Codec<std::pair<A, B>> {
  static constexpr size_t width = Codec<A>::width + Codec<B>::width;
  static void fields(std::vector<Field>& out, const std::string& prefix, bool nullable = false) {
    Codec<A>::fields(out, detail::child_name(prefix, 0), nullable);
    Codec<B>::fields(out, detail::child_name(prefix, 1), nullable);
  }
  static void append(Column* c, const std::pair<A, B>& v) {
    Codec<A>::append(c, v.first);
    Codec<B>::append(c + Codec<A>::width, v.second);
  }
  static std::pair<A, B> read(const Column* c, size_t row) {
    return {Codec<A>::read(c, row), Codec<B>::read(c + Codec<A>::width, row)};
  }
};

template <class T> struct Codec<std::optional<T>> {
  static constexpr size_t width = Codec<T>::width;
  static void fields(std::vector<Field>& out, const std::string& name, bool = true) {
    Codec<T>::fields(out, name, true);
  }
  static void append(Column* c, const std::optional<T>& v) {
    if (v) {
      for (size_t i = 0; i < width; ++i) c[i].make_nullable();
      Codec<T>::append(c, *v);
    } else {
      for (size_t i = 0; i < width; ++i) c[i].append_null();
    }
  }
  /// Present when any of T's columns is valid at @p row. Columns carry no struct-level
  /// validity, so an optional whose value has every component null (an optional pair of
  /// two empty optionals) reads back as none.
  static std::optional<T> read(const Column* c, size_t row) {
    for (size_t i = 0; i < width; ++i)
      if (c[i].is_valid(row)) return Codec<T>::read(c, row);
    return std::nullopt;
  }
};

template <class T> struct Codec<std::vector<T>> {
  static constexpr size_t width = 1;
  static void fields(std::vector<Field>& out, const std::string& name, bool nullable = false) {
    Field f{name.empty() ? "value" : name, TypeId::List, nullable, {}};
    Codec<T>::fields(f.children, "", false);
    out.push_back(std::move(f));
  }
  static void append(Column* c, const std::vector<T>& v) {
    for (const auto& x : v) Codec<T>::append(c->children().data(), x);
    c->append_list_end();
  }
  static std::vector<T> read(const Column* c, size_t row) {
    auto [first, last] = c->list_range(row);
    std::vector<T> out;
    out.reserve(last - first);
    for (size_t r = first; r < last; ++r) out.push_back(Codec<T>::read(c->children().data(), r));
    return out;
  }
};

/// @brief The schema of a stream of T: "value" for a scalar, "_1", "_2", ... for pairs and tuples.
template <class T> Schema schema_of() {
  std::vector<Field> fields;
  Codec<T>::fields(fields, "");
  return Schema(std::move(fields));
}

/// @brief A table holding @p values, laid out as schema_of<T>().
template <class T> Table encode(const std::vector<T>& values) {
  Schema schema = schema_of<T>();
  Table empty = Table::empty(schema);
  std::vector<Column> cols = empty.release_columns();
  for (auto& c : cols) c.reserve(values.size());
  for (const auto& v : values) Codec<T>::append(cols.data(), v);
  return Table(std::move(schema), std::move(cols));
}

/// @brief The rows of @p table as T values; throws sluice::Error when the table's column
/// types do not match T's.
template <class T> std::vector<T> decode(const Table& table) {
  const Schema expected = schema_of<T>();
  SLUICE_EXPECTS(table.num_columns() == expected.size(),
                 "a table {" + table.schema().to_string() + "} cannot be read as {" + expected.to_string() + "}");
  for (size_t i = 0; i < expected.size(); ++i)
    SLUICE_EXPECTS(table.column(i).type() == expected[i].type,
                   "a table {" + table.schema().to_string() + "} cannot be read as {" + expected.to_string() + "}");
  std::vector<T> out;
  out.reserve(table.num_rows());
  const Column* cols = table.columns().data();
  for (size_t r = 0; r < table.num_rows(); ++r) out.push_back(Codec<T>::read(cols, r));
  return out;
}

/// @brief Hash for keys of reduce_by_key and joins: std::hash for scalars, combined for
/// pairs, tuples, optionals and vectors.
template <class T, class Enable = void> struct KeyHash {
  size_t operator()(const T& v) const { return std::hash<T>{}(v); }
};
inline size_t hash_combine(size_t seed, size_t h) { return seed ^ (h + 0x9e3779b97f4a7c15ULL + (seed << 6) + (seed >> 2)); }
template <class A, class B> struct KeyHash<std::pair<A, B>> {
  size_t operator()(const std::pair<A, B>& v) const { return hash_combine(KeyHash<A>{}(v.first), KeyHash<B>{}(v.second)); }
};
template <class... Ts> struct KeyHash<std::tuple<Ts...>> {
  size_t operator()(const std::tuple<Ts...>& v) const {
    size_t seed = 0;
    std::apply([&](const auto&... xs) { ((seed = hash_combine(seed, KeyHash<std::decay_t<decltype(xs)>>{}(xs))), ...); }, v);
    return seed;
  }
};
template <class T> struct KeyHash<std::optional<T>> {
  size_t operator()(const std::optional<T>& v) const { return v ? hash_combine(1, KeyHash<T>{}(*v)) : 0; }
};
template <class T> struct KeyHash<std::vector<T>> {
  size_t operator()(const std::vector<T>& v) const {
    size_t seed = v.size();
    for (const auto& x : v) seed = hash_combine(seed, KeyHash<T>{}(x));
    return seed;
  }
};

}  // namespace sluice
