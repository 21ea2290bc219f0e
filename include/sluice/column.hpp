#pragma once
/// @file column.hpp
/// @brief Columns and tables in the Apache Arrow layout, owned in host memory.
///
/// A batch is a Table: a Schema and one Column per field. Fixed-width values are
/// contiguous; strings are int32 offsets plus one character buffer; lists (of structs)
/// are int32 offsets plus child columns; an optional validity bitmap marks nulls
/// (bit set = valid, least significant bit first, as in Arrow).

#include <atomic>
#include <cstddef>
#include <cstring>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

#include "sluice/types.hpp"

namespace sluice {

/// @brief A runtime scalar: null, bool, integer, floating point or string.
using Value = std::variant<std::monostate, bool, int64_t, double, std::string>;

/// @brief "null", "true", "42", "1.5", "\"text\"" (JSON spelling).
std::string value_to_json(const Value& v);

/// @brief C++ storage type of a fixed-width TypeId.
template <TypeId> struct storage_of;
template <> struct storage_of<TypeId::Bool> { using type = uint8_t; };
template <> struct storage_of<TypeId::Int32> { using type = int32_t; };
template <> struct storage_of<TypeId::Int64> { using type = int64_t; };
template <> struct storage_of<TypeId::Float32> { using type = float; };
template <> struct storage_of<TypeId::Float64> { using type = double; };

/// @brief TypeId whose storage is @p T (uint8_t maps to Bool).
template <class T> constexpr TypeId type_of_storage() {
  if constexpr (std::is_same_v<T, uint8_t>) return TypeId::Bool;
  else if constexpr (std::is_same_v<T, int32_t>) return TypeId::Int32;
  else if constexpr (std::is_same_v<T, int64_t>) return TypeId::Int64;
  else if constexpr (std::is_same_v<T, float>) return TypeId::Float32;
  else if constexpr (std::is_same_v<T, double>) return TypeId::Float64;
  else static_assert(sizeof(T) == 0, "not a column storage type");
}

/// @brief A column's buffers in the Arrow layout, on the host (see Column::from_buffers).
struct ColumnBuffers {
  std::vector<std::byte> data;     ///< fixed-width values
  std::vector<int32_t> offsets;    ///< strings: rows + 1, from 0
  std::vector<char> chars;         ///< strings
  std::vector<uint8_t> validity;   ///< nullable: (rows + 7) / 8 bytes
};

/// @brief A copy of a column's buffers that an execution backend keeps where it computes
/// (device memory), so that the next operator on the same device reads the column there
/// instead of copying it in again. Immutable; a column drops its replica as soon as any of
/// its own buffers changes, so a replica always holds the column's current contents.
class ColumnReplica {
 public:
  virtual ~ColumnReplica() = default;
  /// The buffers copied to the host, for a column made with Column::on_replica: called on
  /// the first read of its host buffers, from the reading thread (any thread). Replicas
  /// attached to columns that have host buffers need not implement it (the default throws).
  virtual ColumnBuffers copy_to_host() const;
};

/// @brief An owning column in host memory. Cheap to move; copies are deep (a replica, being
/// immutable, is shared by the copies).
///
/// A column a backend made can also start with its buffers only in its replica
/// (Column::on_replica): the first read of the host buffers copies them to the host, once,
/// so a column that only the backend reads again never travels back. Reads are safe from
/// several threads at once; changes need the column to themselves, as for any object.
class Column {
 public:
  Column();
  ~Column();
  Column(const Column& other);
  Column(Column&& other) noexcept;
  Column& operator=(const Column& other);
  Column& operator=(Column&& other) noexcept;
  /// An empty column of @p type; @p nullable columns carry a validity bitmap.
  explicit Column(TypeId type, bool nullable = false);
  /// An empty List column whose elements are structs of @p children (each empty).
  static Column make_list(std::vector<Column> children, bool nullable = false);
  /// A List column (not nullable) of offsets.size() - 1 rows: element r holds the struct rows
  /// [offsets[r], offsets[r + 1]) of @p children, which may live on a replica (they stay there
  /// until read). Throws naming what does not fit: offsets that do not start at 0 or that
  /// decrease, or a child whose size is not the last offset.
  static Column list_from(std::vector<int32_t> offsets, std::vector<Column> children);
  /// An empty column with the layout that @p field describes (List children included).
  static Column make_for(const Field& field);
  /// A column over whole buffers in the Arrow layout: @p rows values of a fixed-width @p type
  /// in @p data, or for strings @p offsets (rows + 1, from 0) into @p chars; when
  /// @p nullable, @p validity holds (rows + 7) / 8 bytes. Throws naming a size that does not fit.
  static Column from_buffers(TypeId type, size_t rows, bool nullable, std::vector<std::byte> data, std::vector<int32_t> offsets,
                             std::vector<char> chars, std::vector<uint8_t> validity);
  /// A column of @p rows rows of a fixed-width or string @p type whose buffers only
  /// @p replica holds: the first read that needs them on the host takes them from
  /// ColumnReplica::copy_to_host (and checks their sizes, naming what does not fit).
  static Column on_replica(TypeId type, size_t rows, bool nullable, std::shared_ptr<const ColumnReplica> replica);
  /// True while the buffers are only in the replica (no host read has needed them yet).
  bool host_copy_pending() const;

  TypeId type() const { return type_; }
  size_t size() const { return size_; }
  bool nullable() const { return nullable_; }
  size_t null_count() const;
  bool is_valid(size_t row) const {
    if (!nullable_) return true;
    need_host();
    return (validity_[row >> 3] >> (row & 7)) & 1;
  }

  // ---- fixed-width access ----
  /// Values of a fixed-width column; @p T must be the column's storage type.
  template <class T> std::span<const T> values() const {
    check_storage(type_of_storage<T>());
    need_host();
    return {reinterpret_cast<const T*>(data_.data()), size_};
  }
  template <class T> std::span<T> mutable_values() {
    check_storage(type_of_storage<T>());
    own_buffers();
    return {reinterpret_cast<T*>(data_.data()), size_};
  }
  const std::byte* data() const {
    need_host();
    return data_.data();
  }
  /// The Arrow validity bitmap (bit set = valid), or null when the column is not nullable.
  const uint8_t* validity_bitmap() const {
    if (!nullable_) return nullptr;
    need_host();
    return validity_.data();
  }

  // ---- string access ----
  std::string_view string_at(size_t row) const {
    need_host();
    return {chars_.data() + offsets_[row], static_cast<size_t>(offsets_[row + 1] - offsets_[row])};
  }
  /// size() + 1 offsets for String and List columns.
  std::span<const int32_t> offsets() const {
    need_host();
    return offsets_;
  }
  std::span<const char> chars() const {
    need_host();
    return chars_;
  }

  // ---- list access ----
  const std::vector<Column>& children() const { return children_; }  // lists are never on_replica
  std::vector<Column>& children() {
    own_buffers();
    return children_;
  }
  /// Child rows [first, last) of list element @p row.
  std::pair<size_t, size_t> list_range(size_t row) const {
    return {static_cast<size_t>(offsets_[row]), static_cast<size_t>(offsets_[row + 1])};
  }

  // ---- building ----
  void reserve(size_t rows, size_t chars = 0);
  /// Appends a fixed-width value; @p T must be the storage type (uint8_t for Bool).
  template <class T> void append(T v) {
    check_storage(type_of_storage<T>());
    own_buffers();
    const size_t at = data_.size();
    data_.resize(at + sizeof(T));
    std::memcpy(data_.data() + at, &v, sizeof(T));
    push_valid();
  }
  void append_string(std::string_view s);
  /// Closes a list element whose struct rows were appended to children() since the last one.
  void append_list_end();
  /// Appends a null (a zero value, an empty string or an empty list under the bitmap).
  void append_null();
  /// Appends row @p row of @p other, which must have the same type (nulls and lists included).
  void append_from(const Column& other, size_t row);
  /// Appends all rows of @p other.
  void append_all(const Column& other);
  /// Appends @p v converted to this column's type; throws sluice::Error when it does not fit.
  void append_value(const Value& v);
  /// Turns on the validity bitmap (all existing rows valid).
  void make_nullable();

  // ---- a backend's copy ----
  /// The copy of this column's buffers that a backend attached (see ColumnReplica), or null.
  const std::shared_ptr<const ColumnReplica>& replica() const { return replica_; }
  /// Attaches @p replica, which must hold exactly this column's current buffers. A span or
  /// reference taken from mutable_values() or children() before this call must not be
  /// written through afterwards: the replica would not see it.
  void attach_replica(std::shared_ptr<const ColumnReplica> replica) {
    own_buffers();
    replica_ = std::move(replica);
  }

  /// Row @p row as a runtime scalar (List columns are not scalars: throws).
  Value value_at(size_t row) const;
  /// Numeric value at @p row as double (Bool, integers, floats).
  double number_at(size_t row) const;
  /// Appends row @p row in JSON spelling (lists as arrays of arrays/scalars).
  void append_json(size_t row, std::string& out) const;

  /// Rows @p rows, in that order.
  Column gather(std::span<const int64_t> rows) const;

  friend bool operator==(const Column& a, const Column& b);

 private:
  void check_storage(TypeId storage) const;
  void push_valid();
  /// Makes sure the host buffers are here (copies them from the replica the first time).
  void need_host() const {
    if (pending_ && !pending_->done.load(std::memory_order_acquire)) [[unlikely]] copy_from_replica();
  }
  void copy_from_replica() const;
  /// Before a change: the host buffers become the only copy (the replica goes).
  void own_buffers() {
    if (pending_) [[unlikely]] stop_pending();
    replica_.reset();
  }
  void stop_pending();

  TypeId type_ = TypeId::Int64;
  bool nullable_ = false;
  size_t size_ = 0;
  // Mutable: a column made on_replica fills them on its first host read (once, see pending_).
  mutable std::vector<std::byte> data_;    // fixed-width values
  mutable std::vector<int32_t> offsets_;   // String, List: size_ + 1 entries
  mutable std::vector<char> chars_;        // String
  mutable std::vector<uint8_t> validity_;  // bitmap when nullable_
  std::vector<Column> children_;           // List: struct fields of the elements
  std::shared_ptr<const ColumnReplica> replica_;  // dropped by every change above
  /// Set while (and after) the buffers come from the replica: `done` once they are here.
  struct PendingHostCopy {
    std::mutex copying;
    std::atomic<bool> done{false};
  };
  std::unique_ptr<PendingHostCopy> pending_;
};

/// @brief An owning batch: a schema and one column per field, all of one length.
class Table {
 public:
  Table() = default;
  /// Checks that there is one column per field, of the field's type, all of one length.
  Table(Schema schema, std::vector<Column> columns);
  /// A table with no rows and empty columns laid out as @p schema says.
  static Table empty(const Schema& schema);

  const Schema& schema() const { return schema_; }
  size_t num_rows() const { return num_rows_; }
  size_t num_columns() const { return columns_.size(); }
  const Column& column(size_t i) const { return columns_[i]; }
  /// Column of the field called @p name; throws sluice::Error naming it otherwise.
  const Column& column(std::string_view name) const { return columns_[schema_.index_of(name)]; }
  const std::vector<Column>& columns() const { return columns_; }
  /// Moves the columns out (the table is left empty).
  std::vector<Column> release_columns();

  /// Rows @p rows, in that order.
  Table gather(std::span<const int64_t> rows) const;
  /// Rows whose @p mask value is non-zero.
  Table filter(std::span<const uint8_t> mask) const;
  /// The same rows with the fields renamed (same count and types).
  Table with_schema(Schema schema) const&;
  Table with_schema(Schema schema) &&;
  /// All rows of @p tables, which must share one schema (field names may differ: the first wins).
  static Table concat(std::span<const Table* const> tables);
  static Table concat(const std::vector<Table>& tables);

  /// Row @p row in JSON: a scalar for one column, otherwise an array in field order.
  std::string row_json(size_t row) const;

  friend bool operator==(const Table& a, const Table& b);

 private:
  Schema schema_;
  std::vector<Column> columns_;
  size_t num_rows_ = 0;
};

}  // namespace sluice
