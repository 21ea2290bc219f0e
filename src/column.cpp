#include "sluice/column.hpp"

#include <charconv>
#include <climits>
#include <cmath>
#include <cstdio>
#include <limits>

namespace sluice {

// ---------------------------------------------------------------- types.hpp

std::string_view type_name(TypeId type) {
  switch (type) {
    case TypeId::Bool: return "bool";
    case TypeId::Int32: return "int32";
    case TypeId::Int64: return "int64";
    case TypeId::Float32: return "float32";
    case TypeId::Float64: return "float64";
    case TypeId::String: return "string";
    case TypeId::List: return "list";
  }
  return "unknown";
}

TypeId parse_type_name(std::string_view name) {
  if (name == "bool" || name == "boolean") return TypeId::Bool;
  if (name == "int" || name == "int32" || name == "integer") return TypeId::Int32;
  if (name == "long" || name == "int64") return TypeId::Int64;
  if (name == "float" || name == "float32") return TypeId::Float32;
  if (name == "double" || name == "float64") return TypeId::Float64;
  if (name == "string" || name == "str") return TypeId::String;
  throw Error("unknown type '" + std::string(name) +
              "' (expected one of bool, int32, int64, float32, float64, string)");
}

int Schema::find(std::string_view name) const {
  for (size_t i = 0; i < fields_.size(); ++i)
    if (fields_[i].name == name) return static_cast<int>(i);
  return -1;
}

size_t Schema::index_of(std::string_view name) const {
  const int i = find(name);
  if (i < 0) throw Error("no field '" + std::string(name) + "' in schema {" + to_string() + "}");
  return static_cast<size_t>(i);
}

std::string Schema::to_string() const {
  std::string s;
  for (size_t i = 0; i < fields_.size(); ++i) {
    if (i) s += ", ";
    s += fields_[i].name;
    s += ": ";
    if (fields_[i].type == TypeId::List) {
      s += "list<" + Schema(fields_[i].children).to_string() + ">";
    } else {
      s += type_name(fields_[i].type);
    }
    if (fields_[i].nullable) s += "?";
  }
  return s;
}

// ---------------------------------------------------------------- Value

static void append_json_string(std::string_view s, std::string& out) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

static void append_json_double(double d, std::string& out) {
  if (!std::isfinite(d)) {
    out += "null";  // JSON has no NaN or infinity
    return;
  }
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, d);
  std::string_view text(buf, end - buf);
  out += text;
  // Keep floating point recognisable as such ("2.0", not "2").
  if (text.find_first_of(".eE") == std::string_view::npos) out += ".0";
}

std::string value_to_json(const Value& v) {
  std::string out;
  std::visit(
      [&](const auto& x) {
        using X = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<X, std::monostate>) out += "null";
        else if constexpr (std::is_same_v<X, bool>) out += x ? "true" : "false";
        else if constexpr (std::is_same_v<X, int64_t>) out += std::to_string(x);
        else if constexpr (std::is_same_v<X, double>) append_json_double(x, out);
        else append_json_string(x, out);
      },
      v);
  return out;
}

// ---------------------------------------------------------------- Column

ColumnBuffers ColumnReplica::copy_to_host() const {
  throw Error("this column replica cannot copy its column to the host (its column has host buffers of its own)");
}

Column::Column() = default;
Column::~Column() = default;
Column::Column(Column&& other) noexcept = default;
Column& Column::operator=(Column&& other) noexcept = default;

Column::Column(const Column& other)
    : type_(other.type_), nullable_(other.nullable_), size_(other.size_), replica_(other.replica_) {
  if (other.pending_ && !other.pending_->done.load(std::memory_order_acquire)) {
    pending_ = std::make_unique<PendingHostCopy>();  // the copy reads the same replica when it needs to
    return;
  }
  data_ = other.data_;
  offsets_ = other.offsets_;
  chars_ = other.chars_;
  validity_ = other.validity_;
  children_ = other.children_;
}

Column& Column::operator=(const Column& other) {
  if (this != &other) *this = Column(other);
  return *this;
}

Column::Column(TypeId type, bool nullable) : type_(type), nullable_(nullable) {
  if (type == TypeId::String || type == TypeId::List) offsets_.push_back(0);
}

Column Column::on_replica(TypeId type, size_t rows, bool nullable, std::shared_ptr<const ColumnReplica> replica) {
  SLUICE_EXPECTS(type != TypeId::List, "on_replica: list columns keep their buffers on the host");
  SLUICE_EXPECTS(replica != nullptr, "on_replica: a column needs the replica that holds its buffers");
  Column c(type, nullable);
  c.size_ = rows;
  c.replica_ = std::move(replica);
  c.pending_ = std::make_unique<PendingHostCopy>();
  return c;
}

bool Column::host_copy_pending() const { return pending_ && !pending_->done.load(std::memory_order_acquire); }

void Column::copy_from_replica() const {
  PendingHostCopy& pending = *pending_;
  std::lock_guard lock(pending.copying);
  if (pending.done.load(std::memory_order_relaxed)) return;  // another reader copied them meanwhile
  // An exception leaves `done` unset: the next read tries again.
  ColumnBuffers b = replica_->copy_to_host();
  const std::string what = "a " + std::string(type_name(type_)) + " column of " + std::to_string(size_) +
                           " rows copied back from where its backend made it";
  if (type_ == TypeId::String) {
    SLUICE_EXPECTS(b.offsets.size() == size_ + 1 && b.offsets.front() == 0 && static_cast<size_t>(b.offsets.back()) == b.chars.size(),
                   what + " has " + std::to_string(b.offsets.size()) + " offsets for " + std::to_string(b.chars.size()) +
                       " characters (needs rows + 1 offsets from 0 to the characters' end)");
  } else {
    SLUICE_EXPECTS(b.data.size() == size_ * fixed_width(type_), what + " has " + std::to_string(b.data.size()) +
                                                                    " bytes of values, not " +
                                                                    std::to_string(size_ * fixed_width(type_)));
  }
  SLUICE_EXPECTS(!nullable_ || b.validity.size() == (size_ + 7) / 8,
                 what + " has " + std::to_string(b.validity.size()) + " validity bytes, not " + std::to_string((size_ + 7) / 8));
  data_ = std::move(b.data);
  offsets_ = std::move(b.offsets);
  chars_ = std::move(b.chars);
  validity_ = std::move(b.validity);
  pending.done.store(true, std::memory_order_release);
}

void Column::stop_pending() {
  need_host();
  pending_.reset();
}

Column Column::make_list(std::vector<Column> children, bool nullable) {
  Column c(TypeId::List, nullable);
  for (const auto& child : children)
    SLUICE_EXPECTS(child.size() == 0, "list children must start empty");
  c.children_ = std::move(children);
  return c;
}

Column Column::list_from(std::vector<int32_t> offsets, std::vector<Column> children) {
  SLUICE_EXPECTS(!offsets.empty() && offsets.front() == 0, "list_from: the offsets of a list column start at 0");
  for (size_t r = 1; r < offsets.size(); ++r)
    SLUICE_EXPECTS(offsets[r] >= offsets[r - 1], "list_from: offset " + std::to_string(r) + " (" + std::to_string(offsets[r]) +
                                                     ") is below the one before it (" + std::to_string(offsets[r - 1]) + ")");
  for (size_t c = 0; c < children.size(); ++c)
    SLUICE_EXPECTS(children[c].size() == static_cast<size_t>(offsets.back()),
                   "list_from: child " + std::to_string(c) + " has " + std::to_string(children[c].size()) +
                       " rows, but the offsets end at " + std::to_string(offsets.back()));
  Column c(TypeId::List);
  c.size_ = offsets.size() - 1;
  c.offsets_ = std::move(offsets);
  c.children_ = std::move(children);
  return c;
}

Column Column::make_for(const Field& field) {
  if (field.type != TypeId::List) return Column(field.type, field.nullable);
  std::vector<Column> children;
  for (const auto& f : field.children) children.push_back(make_for(f));
  return make_list(std::move(children), field.nullable);
}

Column Column::from_buffers(TypeId type, size_t rows, bool nullable, std::vector<std::byte> data, std::vector<int32_t> offsets,
                            std::vector<char> chars, std::vector<uint8_t> validity) {
  SLUICE_EXPECTS(type != TypeId::List, "from_buffers: list columns are built with make_list");
  const std::string what = "from_buffers: a " + std::string(type_name(type)) + " column of " + std::to_string(rows) + " rows";
  Column c(type, nullable);
  if (type == TypeId::String) {
    SLUICE_EXPECTS(offsets.size() == rows + 1 && offsets.front() == 0 && static_cast<size_t>(offsets.back()) == chars.size(),
                   what + " needs rows + 1 offsets from 0 to the " + std::to_string(chars.size()) + " characters");
    c.offsets_ = std::move(offsets);
    c.chars_ = std::move(chars);
  } else {
    SLUICE_EXPECTS(data.size() == rows * fixed_width(type),
                   what + " needs " + std::to_string(rows * fixed_width(type)) + " bytes of values, got " + std::to_string(data.size()));
    c.data_ = std::move(data);
  }
  if (nullable) {
    SLUICE_EXPECTS(validity.size() == (rows + 7) / 8, what + " needs " + std::to_string((rows + 7) / 8) + " validity bytes, got " +
                                                          std::to_string(validity.size()));
    c.validity_ = std::move(validity);
  }
  c.size_ = rows;
  return c;
}

void Column::check_storage(TypeId storage) const {
  if (storage != type_)
    throw Error("column of type " + std::string(type_name(type_)) + " accessed as " +
                std::string(type_name(storage)));
}

size_t Column::null_count() const {
  if (!nullable_) return 0;
  need_host();
  size_t n = 0;
  for (size_t i = 0; i < size_; ++i) n += !is_valid(i);
  return n;
}

void Column::push_valid() {
  if (nullable_) {
    if ((size_ & 7) == 0) validity_.push_back(0);
    validity_[size_ >> 3] |= static_cast<uint8_t>(1u << (size_ & 7));
  }
  ++size_;
}

void Column::make_nullable() {
  if (nullable_) return;
  own_buffers();
  nullable_ = true;
  validity_.assign((size_ + 7) / 8, 0xFF);
  // Padding bits stay 0: a row appended later sets its own bit, and a null must find it clear.
  if (const size_t used = size_ & 7) validity_.back() = static_cast<uint8_t>((1u << used) - 1);
}

void Column::reserve(size_t rows, size_t chars) {
  need_host();
  if (const size_t w = fixed_width(type_)) data_.reserve(rows * w);
  if (type_ == TypeId::String || type_ == TypeId::List) offsets_.reserve(rows + 1);
  if (type_ == TypeId::String) chars_.reserve(chars);
}

void Column::append_string(std::string_view s) {
  check_storage(TypeId::String);
  own_buffers();
  const size_t end = chars_.size() + s.size();
  if (end > static_cast<size_t>(INT32_MAX))
    throw Error("string column exceeds 2 GiB of characters in one batch");
  chars_.insert(chars_.end(), s.begin(), s.end());
  offsets_.push_back(static_cast<int32_t>(end));
  push_valid();
}

void Column::append_list_end() {
  check_storage(TypeId::List);
  own_buffers();
  const size_t rows = children_.empty() ? static_cast<size_t>(offsets_.back()) : children_[0].size();
  SLUICE_EXPECTS(rows <= static_cast<size_t>(INT32_MAX), "list column exceeds 2^31 elements in one batch");
  offsets_.push_back(static_cast<int32_t>(rows));
  push_valid();
}

void Column::append_null() {
  own_buffers();
  make_nullable();
  if (const size_t w = fixed_width(type_)) data_.resize(data_.size() + w);
  if (type_ == TypeId::String || type_ == TypeId::List) offsets_.push_back(offsets_.back());
  if ((size_ & 7) == 0) validity_.push_back(0);
  ++size_;
}

void Column::append_from(const Column& other, size_t row) {
  SLUICE_EXPECTS(other.type_ == type_, "append_from: column of type " + std::string(type_name(other.type_)) +
                                           " into a column of type " + std::string(type_name(type_)));
  own_buffers();
  other.need_host();
  if (!other.is_valid(row)) {
    append_null();
    return;
  }
  if (const size_t w = fixed_width(type_)) {
    const size_t at = data_.size();
    data_.resize(at + w);
    std::memcpy(data_.data() + at, other.data_.data() + row * w, w);
    push_valid();
  } else if (type_ == TypeId::String) {
    append_string(other.string_at(row));
  } else {
    SLUICE_EXPECTS(other.children_.size() == children_.size(), "append_from: list children differ");
    auto [first, last] = other.list_range(row);
    for (size_t c = 0; c < children_.size(); ++c)
      for (size_t r = first; r < last; ++r) children_[c].append_from(other.children_[c], r);
    append_list_end();
  }
}

void Column::append_all(const Column& other) {
  SLUICE_EXPECTS(other.type_ == type_, "append_all: column of type " + std::string(type_name(other.type_)) +
                                           " into a column of type " + std::string(type_name(type_)));
  own_buffers();
  other.need_host();
  if (const size_t w = fixed_width(type_); w && !other.nullable_ && !nullable_) {
    data_.insert(data_.end(), other.data_.begin(), other.data_.end());
    size_ += other.size_;
    return;
  }
  if (type_ == TypeId::String && !other.nullable_ && !nullable_) {
    const int32_t base = offsets_.back();
    SLUICE_EXPECTS(chars_.size() + other.chars_.size() <= static_cast<size_t>(INT32_MAX),
                   "string column exceeds 2 GiB of characters in one batch");
    chars_.insert(chars_.end(), other.chars_.begin(), other.chars_.end());
    for (size_t i = 1; i < other.offsets_.size(); ++i) offsets_.push_back(base + other.offsets_[i]);
    size_ += other.size_;
    return;
  }
  for (size_t r = 0; r < other.size_; ++r) append_from(other, r);
}

void Column::append_value(const Value& v) {
  if (std::holds_alternative<std::monostate>(v)) {
    append_null();
    return;
  }
  auto fail = [&](const char* what) {
    throw Error("value " + value_to_json(v) + " is not a valid " + std::string(type_name(type_)) + ": " + what);
  };
  switch (type_) {
    case TypeId::Bool:
      if (auto* b = std::get_if<bool>(&v)) return append<uint8_t>(*b ? 1 : 0);
      fail("expected true or false");
      break;
    case TypeId::Int32:
    case TypeId::Int64: {
      int64_t x;
      if (auto* i = std::get_if<int64_t>(&v)) {
        x = *i;
      } else if (auto* d = std::get_if<double>(&v); d && std::trunc(*d) == *d && std::abs(*d) < 9.2e18) {
        x = static_cast<int64_t>(*d);
      } else {
        fail("expected an integer");
        return;
      }
      if (type_ == TypeId::Int64) return append<int64_t>(x);
      if (x < INT32_MIN || x > INT32_MAX) fail("out of range");
      return append<int32_t>(static_cast<int32_t>(x));
    }
    case TypeId::Float32:
    case TypeId::Float64: {
      double x;
      if (auto* i = std::get_if<int64_t>(&v)) x = static_cast<double>(*i);
      else if (auto* d = std::get_if<double>(&v)) x = *d;
      else {
        fail("expected a number");
        return;
      }
      if (type_ == TypeId::Float64) return append<double>(x);
      return append<float>(static_cast<float>(x));
    }
    case TypeId::String:
      if (auto* s = std::get_if<std::string>(&v)) return append_string(*s);
      fail("expected a string");
      break;
    case TypeId::List: fail("lists cannot be built from a scalar"); break;
  }
}

Value Column::value_at(size_t row) const {
  if (!is_valid(row)) return std::monostate{};
  switch (type_) {
    case TypeId::Bool: return values<uint8_t>()[row] != 0;
    case TypeId::Int32: return static_cast<int64_t>(values<int32_t>()[row]);
    case TypeId::Int64: return values<int64_t>()[row];
    case TypeId::Float32: return static_cast<double>(values<float>()[row]);
    case TypeId::Float64: return values<double>()[row];
    case TypeId::String: return std::string(string_at(row));
    case TypeId::List: break;
  }
  throw Error("a list column has no scalar values");
}

double Column::number_at(size_t row) const {
  switch (type_) {
    case TypeId::Bool: return values<uint8_t>()[row];
    case TypeId::Int32: return values<int32_t>()[row];
    case TypeId::Int64: return static_cast<double>(values<int64_t>()[row]);
    case TypeId::Float32: return values<float>()[row];
    case TypeId::Float64: return values<double>()[row];
    default: throw Error("column of type " + std::string(type_name(type_)) + " is not numeric");
  }
}

void Column::append_json(size_t row, std::string& out) const {
  if (!is_valid(row)) {
    out += "null";
    return;
  }
  switch (type_) {
    case TypeId::Bool: out += values<uint8_t>()[row] ? "true" : "false"; return;
    case TypeId::Int32: out += std::to_string(values<int32_t>()[row]); return;
    case TypeId::Int64: out += std::to_string(values<int64_t>()[row]); return;
    case TypeId::Float32: append_json_double(values<float>()[row], out); return;
    case TypeId::Float64: append_json_double(values<double>()[row], out); return;
    case TypeId::String: append_json_string(string_at(row), out); return;
    case TypeId::List: {
      auto [first, last] = list_range(row);
      out += '[';
      for (size_t r = first; r < last; ++r) {
        if (r != first) out += ',';
        if (children_.size() == 1) {
          children_[0].append_json(r, out);
        } else {
          out += '[';
          for (size_t c = 0; c < children_.size(); ++c) {
            if (c) out += ',';
            children_[c].append_json(r, out);
          }
          out += ']';
        }
      }
      out += ']';
      return;
    }
  }
}

Column Column::gather(std::span<const int64_t> rows) const {
  Column out(type_, nullable_);
  if (rows.empty() && type_ != TypeId::List) return out;  // the same layout, without reading a pending column
  need_host();
  if (type_ == TypeId::List) {
    for (const auto& child : children_) out.children_.push_back(child.gather({}));  // same layout, no rows
  }
  if (const size_t w = fixed_width(type_); w && !nullable_) {
    out.data_.resize(rows.size() * w);
    std::byte* dst = out.data_.data();
    const std::byte* src = data_.data();
    for (size_t i = 0; i < rows.size(); ++i) std::memcpy(dst + i * w, src + rows[i] * w, w);
    out.size_ = rows.size();
    return out;
  }
  out.reserve(rows.size());
  for (int64_t r : rows) out.append_from(*this, static_cast<size_t>(r));
  return out;
}

bool operator==(const Column& a, const Column& b) {
  if (a.type_ != b.type_ || a.size_ != b.size_) return false;
  a.need_host();
  b.need_host();
  for (size_t r = 0; r < a.size_; ++r) {
    if (a.is_valid(r) != b.is_valid(r)) return false;
    if (!a.is_valid(r)) continue;
    if (const size_t w = fixed_width(a.type_)) {
      if (std::memcmp(a.data_.data() + r * w, b.data_.data() + r * w, w) != 0) return false;
    } else if (a.type_ == TypeId::String) {
      if (a.string_at(r) != b.string_at(r)) return false;
    } else {
      auto [af, al] = a.list_range(r);
      auto [bf, bl] = b.list_range(r);
      if (al - af != bl - bf || a.children_.size() != b.children_.size()) return false;
      for (size_t c = 0; c < a.children_.size(); ++c) {
        std::vector<int64_t> ar, br;
        for (size_t i = af; i < al; ++i) ar.push_back(static_cast<int64_t>(i));
        for (size_t i = bf; i < bl; ++i) br.push_back(static_cast<int64_t>(i));
        if (!(a.children_[c].gather(ar) == b.children_[c].gather(br))) return false;
      }
    }
  }
  return true;
}

// ---------------------------------------------------------------- Table

Table::Table(Schema schema, std::vector<Column> columns) : schema_(std::move(schema)), columns_(std::move(columns)) {
  SLUICE_EXPECTS(schema_.size() == columns_.size(),
                 "table schema {" + schema_.to_string() + "} has " + std::to_string(schema_.size()) +
                     " fields but " + std::to_string(columns_.size()) + " columns were given");
  num_rows_ = columns_.empty() ? 0 : columns_[0].size();
  for (size_t i = 0; i < columns_.size(); ++i) {
    SLUICE_EXPECTS(columns_[i].type() == schema_[i].type,
                   "column '" + schema_[i].name + "' has type " + std::string(type_name(columns_[i].type())) +
                       " but the schema says " + std::string(type_name(schema_[i].type)));
    SLUICE_EXPECTS(columns_[i].size() == num_rows_,
                   "column '" + schema_[i].name + "' has " + std::to_string(columns_[i].size()) +
                       " rows, column '" + schema_[0].name + "' has " + std::to_string(num_rows_));
    if (columns_[i].nullable()) schema_.fields()[i].nullable = true;
  }
}

Table Table::empty(const Schema& schema) {
  std::vector<Column> cols;
  cols.reserve(schema.size());
  for (const auto& f : schema) cols.push_back(Column::make_for(f));
  return Table(schema, std::move(cols));
}

std::vector<Column> Table::release_columns() {
  num_rows_ = 0;
  return std::move(columns_);
}

Table Table::gather(std::span<const int64_t> rows) const {
  std::vector<Column> cols;
  cols.reserve(columns_.size());
  for (const auto& c : columns_) cols.push_back(c.gather(rows));
  return Table(schema_, std::move(cols));
}

Table Table::filter(std::span<const uint8_t> mask) const {
  SLUICE_EXPECTS(mask.size() == num_rows_, "filter mask has " + std::to_string(mask.size()) +
                                               " entries for a table of " + std::to_string(num_rows_) + " rows");
  std::vector<int64_t> rows;
  rows.reserve(num_rows_);
  for (size_t i = 0; i < mask.size(); ++i)
    if (mask[i]) rows.push_back(static_cast<int64_t>(i));
  if (rows.size() == num_rows_) return *this;
  return gather(rows);
}

Table Table::with_schema(Schema schema) const& {
  Table copy = *this;
  return std::move(copy).with_schema(std::move(schema));
}

Table Table::with_schema(Schema schema) && {
  return Table(std::move(schema), std::move(columns_));
}

Table Table::concat(std::span<const Table* const> tables) {
  SLUICE_EXPECTS(!tables.empty(), "concat needs at least one table");
  const Schema& schema = tables[0]->schema();
  if (tables.size() == 1) return *tables[0];
  std::vector<Column> cols;
  for (size_t c = 0; c < schema.size(); ++c) {
    Column col = tables[0]->column(c).gather({});
    for (const Table* t : tables) {
      SLUICE_EXPECTS(t->num_columns() == schema.size(),
                     "cannot concatenate tables {" + schema.to_string() + "} and {" + t->schema().to_string() + "}");
      if (t->column(c).nullable()) col.make_nullable();
      col.append_all(t->column(c));
    }
    cols.push_back(std::move(col));
  }
  return Table(schema, std::move(cols));
}

Table Table::concat(const std::vector<Table>& tables) {
  std::vector<const Table*> ptrs;
  for (const auto& t : tables) ptrs.push_back(&t);
  return concat(ptrs);
}

std::string Table::row_json(size_t row) const {
  std::string out;
  if (columns_.size() == 1) {
    columns_[0].append_json(row, out);
    return out;
  }
  out += '[';
  for (size_t c = 0; c < columns_.size(); ++c) {
    if (c) out += ',';
    columns_[c].append_json(row, out);
  }
  out += ']';
  return out;
}

bool operator==(const Table& a, const Table& b) {
  if (a.num_rows_ != b.num_rows_ || a.columns_.size() != b.columns_.size()) return false;
  for (size_t i = 0; i < a.columns_.size(); ++i)
    if (!(a.columns_[i] == b.columns_[i])) return false;
  return true;
}

}  // namespace sluice
