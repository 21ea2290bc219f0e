// Joins, cogroup and group_by_key within one batch, on the host.
//
// Both sides' key columns are grouped together (group_rows over the left keys followed by the
// right keys), so a group id identifies a key across the two tables; the right rows of each
// group form the build side and the left rows probe it in order. As in Spark's pair RDDs, a
// null key equals a null key.
#include <algorithm>
#include <numeric>

#include "sluice/backend.hpp"
#include "join_result.hpp"

namespace sluice {
namespace {

/// Checks one side's key indexes; @p side is "left", "right" or "input".
void check_key_indexes(std::string_view op, std::string_view side, const Table& table, std::span<const size_t> keys) {
  SLUICE_EXPECTS(!keys.empty(), std::string(op) + ": at least one key field is required");
  for (size_t k : keys) {
    SLUICE_EXPECTS(k < table.num_columns(), std::string(op) + ": key column " + std::to_string(k) + " of the " +
                                                std::string(side) + " table is out of range for {" +
                                                table.schema().to_string() + "}");
    SLUICE_EXPECTS(table.schema()[k].type != TypeId::List, std::string(op) + ": key field '" + table.schema()[k].name +
                                                               "' of the " + std::string(side) +
                                                               " table is a list; lists cannot be keys");
  }
}

/// Checks that the two sides' keys pair up with equal types.
void check_key_pairs(std::string_view op, const Table& left, std::span<const size_t> left_keys, const Table& right,
                     std::span<const size_t> right_keys) {
  check_key_indexes(op, "left", left, left_keys);
  check_key_indexes(op, "right", right, right_keys);
  SLUICE_EXPECTS(left_keys.size() == right_keys.size(), std::string(op) + ": " + std::to_string(left_keys.size()) +
                                                            " left key fields but " + std::to_string(right_keys.size()) +
                                                            " right key fields");
  for (size_t i = 0; i < left_keys.size(); ++i) {
    const Field& l = left.schema()[left_keys[i]];
    const Field& r = right.schema()[right_keys[i]];
    SLUICE_EXPECTS(l.type == r.type, std::string(op) + ": key field '" + l.name + "' of the left table is " +
                                         std::string(type_name(l.type)) + " but key field '" + r.name +
                                         "' of the right table is " + std::string(type_name(r.type)));
  }
}

/// The rows of @p first then those of @p second, on the host; nullable when @p nullable is
/// set or either is.
Column concatenated(const Column& first, const Column& second, bool nullable) {
  SLUICE_EXPECTS(first.type() == second.type(), "concatenating a " + std::string(type_name(first.type())) + " column and a " +
                                                    std::string(type_name(second.type())) + " column");
  Column both = first.gather({});
  if (nullable || first.nullable() || second.nullable()) both.make_nullable();
  both.reserve(first.size() + second.size(), first.chars().size() + second.chars().size());
  both.append_all(first);
  both.append_all(second);
  return both;
}

/// Both sides' keys, one table (left rows first), put together by @p grouping_backend.
Table keys_of_both(const Table& left, std::span<const size_t> left_keys, const Table& right, std::span<const size_t> right_keys,
                   ExecutionBackend* grouping_backend) {
  std::vector<Field> fields;
  std::vector<Column> columns;
  for (size_t i = 0; i < left_keys.size(); ++i) {
    const Column& l = left.column(left_keys[i]);
    const Column& r = right.column(right_keys[i]);
    Column both = grouping_backend ? grouping_backend->concatenate(l, r, false) : concatenated(l, r, false);
    Field field = left.schema()[left_keys[i]];
    field.nullable = field.nullable || right.schema()[right_keys[i]].nullable || both.nullable();
    fields.push_back(std::move(field));
    columns.push_back(std::move(both));
  }
  return Table(Schema(std::move(fields)), std::move(columns));
}

/// Left rows then right rows of the key columns, and their grouping: a group id names one
/// key across both tables; groups whose first row is below left.num_rows() occur on the left.
struct KeysOfBoth {
  Table keys;
  Grouping grouping;
};

KeysOfBoth group_keys_of_both(const Table& left, std::span<const size_t> left_keys, const Table& right,
                              std::span<const size_t> right_keys) {
  KeysOfBoth out{keys_of_both(left, left_keys, right, right_keys, nullptr), {}};
  std::vector<size_t> all(left_keys.size());
  std::iota(all.begin(), all.end(), 0);
  out.grouping = group_rows(out.keys, all);
  return out;
}

/// The rows of each group, in row order (a counting sort of rows by group).
struct RowsByGroup {
  std::vector<int64_t> start;  // group_count + 1 entries
  std::vector<int64_t> rows;

  std::span<const int64_t> of(size_t group) const {
    return std::span<const int64_t>(rows).subspan(static_cast<size_t>(start[group]),
                                                  static_cast<size_t>(start[group + 1] - start[group]));
  }
};

/// Rows [first, last) of @p group_of_row, numbered from 0, by group.
RowsByGroup rows_by_group(const std::vector<int32_t>& group_of_row, size_t first, size_t last, size_t group_count) {
  RowsByGroup out;
  out.start.assign(group_count + 1, 0);
  for (size_t r = first; r < last; ++r) ++out.start[static_cast<size_t>(group_of_row[r]) + 1];
  std::partial_sum(out.start.begin(), out.start.end(), out.start.begin());
  std::vector<int64_t> next(out.start.begin(), out.start.end() - 1);
  out.rows.resize(last - first);
  for (size_t r = first; r < last; ++r)
    out.rows[static_cast<size_t>(next[static_cast<size_t>(group_of_row[r])]++)] = static_cast<int64_t>(r - first);
  return out;
}

/// Rows @p rows of @p source, a null where the row is -1; nullable when @p nullable is set.
Column gather_or_null(const Column& source, std::span<const int64_t> rows, bool nullable) {
  Column out;
  if (std::none_of(rows.begin(), rows.end(), [](int64_t r) { return r < 0; })) {
    out = source.gather(rows);
  } else {
    out = source.gather({});
    out.make_nullable();
    out.reserve(rows.size());
    for (int64_t r : rows) {
      if (r < 0) out.append_null();
      else out.append_from(source, static_cast<size_t>(r));
    }
  }
  if (nullable) out.make_nullable();
  return out;
}

/// A List field @p name whose elements are structs of @p fields of @p table.
Field list_field(std::string name, const Table& table, std::span<const size_t> fields) {
  Field list{std::move(name), TypeId::List, false, {}};
  for (size_t f : fields) list.children.push_back(table.schema()[f]);
  return list;
}

/// Rows @p rows of @p fields of @p table, gathered by @p backend (where the columns are), or
/// on the host when there is none.
std::vector<Column> gathered(ExecutionBackend* backend, const Table& table, std::span<const size_t> fields,
                             std::span<const int64_t> rows) {
  if (backend) return backend->gather_columns(table, fields, rows);
  std::vector<Column> out;
  for (size_t f : fields) out.push_back(table.column(f).gather(rows));
  return out;
}

/// List field @p field's column of lists @p offsets (groups + 1) over @p children, one per
/// field, nullable where the field is.
Column list_column_of(const Field& field, std::vector<int32_t> offsets, std::vector<Column> children) {
  // A list of no fields holds no elements (as append_list_end makes it, and append_from copies it).
  if (children.empty()) return Column::list_from(std::vector<int32_t>(offsets.size(), 0), {});
  for (size_t c = 0; c < children.size(); ++c)
    if (field.children[c].nullable && !children[c].nullable()) children[c].make_nullable();
  return Column::list_from(std::move(offsets), std::move(children));
}

/// One list per group: the rows of @p table in that group (@p rows, groups in order), as
/// structs of @p fields; the elements are gathered by @p backend (see gathered).
Column list_column(const Field& field, const Table& table, std::span<const size_t> fields, const RowsByGroup& rows,
                   ExecutionBackend* backend) {
  SLUICE_EXPECTS(rows.rows.size() <= static_cast<size_t>(INT32_MAX), "list column exceeds 2^31 elements in one batch");
  std::vector<Column> children;
  if (!fields.empty()) children = gathered(backend, table, fields, rows.rows);
  return list_column_of(field, std::vector<int32_t>(rows.start.begin(), rows.start.end()), std::move(children));
}

/// @p name, or when an earlier field already has it, @p name + "_right" (repeated until unique),
/// so that every field of a join's result can be named.
std::string unique_name(std::string name, const std::vector<Field>& earlier) {
  auto taken = [&](const std::string& n) {
    return std::any_of(earlier.begin(), earlier.end(), [&](const Field& f) { return f.name == n; });
  };
  while (taken(name)) name += "_right";
  return name;
}

}  // namespace

std::vector<size_t> value_fields(const Schema& schema, std::span<const size_t> keys) {
  std::vector<size_t> out;
  for (size_t i = 0; i < schema.size(); ++i)
    if (std::find(keys.begin(), keys.end(), i) == keys.end()) out.push_back(i);
  return out;
}

Table join_tables(const Table& left, std::span<const size_t> left_keys, const Table& right,
                  std::span<const size_t> right_keys, JoinKind kind) {
  check_key_pairs("join", left, left_keys, right, right_keys);
  const bool keep_unmatched_left = kind == JoinKind::LeftOuter || kind == JoinKind::FullOuter;
  const bool keep_unmatched_right = kind == JoinKind::RightOuter || kind == JoinKind::FullOuter;
  const size_t left_rows = left.num_rows();
  const size_t right_rows = right.num_rows();

  const KeysOfBoth both = group_keys_of_both(left, left_keys, right, right_keys);
  const Grouping& g = both.grouping;
  const size_t group_count = g.first_row_of_group.size();
  const RowsByGroup right_by_group = rows_by_group(g.group_of_row, left_rows, left_rows + right_rows, group_count);

  // Pairs of (left row, right row), -1 for the side that has no match.
  std::vector<int64_t> left_of_output;
  std::vector<int64_t> right_of_output;
  size_t output_rows = 0;
  for (size_t l = 0; l < left_rows; ++l) {
    const size_t matches = right_by_group.of(static_cast<size_t>(g.group_of_row[l])).size();
    output_rows += matches > 0 ? matches : (keep_unmatched_left ? 1 : 0);
  }
  left_of_output.reserve(output_rows);
  right_of_output.reserve(output_rows);
  for (size_t l = 0; l < left_rows; ++l) {
    const std::span<const int64_t> matches = right_by_group.of(static_cast<size_t>(g.group_of_row[l]));
    for (int64_t r : matches) {
      left_of_output.push_back(static_cast<int64_t>(l));
      right_of_output.push_back(r);
    }
    if (matches.empty() && keep_unmatched_left) {
      left_of_output.push_back(static_cast<int64_t>(l));
      right_of_output.push_back(-1);
    }
  }
  const size_t rows_with_left = left_of_output.size();
  if (keep_unmatched_right) {
    for (size_t r = 0; r < right_rows; ++r) {
      // A right key is unmatched when its group first appears among the right rows.
      const size_t group = static_cast<size_t>(g.group_of_row[left_rows + r]);
      if (g.first_row_of_group[group] >= static_cast<int64_t>(left_rows)) {
        left_of_output.push_back(-1);
        right_of_output.push_back(static_cast<int64_t>(r));
      }
    }
  }

  return join_result(left, left_keys, right, right_keys, kind, left_of_output, right_of_output, rows_with_left);
}

std::vector<JoinResultColumn> join_result_columns(const Schema& left, std::span<const size_t> left_keys, const Schema& right,
                                                 std::span<const size_t> right_keys, JoinKind kind) {
  const bool keep_unmatched_left = kind == JoinKind::LeftOuter || kind == JoinKind::FullOuter;
  const bool keep_unmatched_right = kind == JoinKind::RightOuter || kind == JoinKind::FullOuter;
  std::vector<JoinResultColumn> out;
  std::vector<Field> fields;  // the earlier fields, for unique_name
  auto add = [&](JoinResultColumn c) {
    fields.push_back(c.field);
    out.push_back(std::move(c));
  };
  // Keys: the left's, except in right-only rows, which carry the right's.
  for (size_t i = 0; i < left_keys.size(); ++i) {
    Field field = left[left_keys[i]];
    field.nullable = field.nullable || (keep_unmatched_right && right[right_keys[i]].nullable);
    add(JoinResultColumn{JoinResultColumn::From::Keys, left_keys[i], right_keys[i], std::move(field)});
  }
  for (size_t f : value_fields(left, left_keys)) {
    Field field = left[f];
    field.nullable = field.nullable || keep_unmatched_right;
    add(JoinResultColumn{JoinResultColumn::From::Left, f, 0, std::move(field)});
  }
  for (size_t f : value_fields(right, right_keys)) {
    Field field = right[f];
    field.nullable = field.nullable || keep_unmatched_left;
    field.name = unique_name(field.name, fields);
    add(JoinResultColumn{JoinResultColumn::From::Right, 0, f, std::move(field)});
  }
  return out;
}

Column gather_join_column(const JoinResultColumn& column, const Table& left, const Table& right,
                          std::span<const int64_t> left_of_output, std::span<const int64_t> right_of_output,
                          size_t rows_with_left) {
  const bool nullable = column.field.nullable;
  switch (column.from) {
    case JoinResultColumn::From::Keys: {
      Column key = gather_or_null(left.column(column.left_field), left_of_output.first(rows_with_left), nullable);
      const Column& right_key = right.column(column.right_field);
      for (size_t o = rows_with_left; o < right_of_output.size(); ++o)
        key.append_from(right_key, static_cast<size_t>(right_of_output[o]));
      return key;
    }
    case JoinResultColumn::From::Left: return gather_or_null(left.column(column.left_field), left_of_output, nullable);
    case JoinResultColumn::From::Right: return gather_or_null(right.column(column.right_field), right_of_output, nullable);
  }
  throw Error("join: unknown source of a result column");
}

Table join_result(const Table& left, std::span<const size_t> left_keys, const Table& right, std::span<const size_t> right_keys,
                  JoinKind kind, std::span<const int64_t> left_of_output, std::span<const int64_t> right_of_output,
                  size_t rows_with_left) {
  std::vector<Field> fields;
  std::vector<Column> columns;
  for (JoinResultColumn& c : join_result_columns(left.schema(), left_keys, right.schema(), right_keys, kind)) {
    columns.push_back(gather_join_column(c, left, right, left_of_output, right_of_output, rows_with_left));
    fields.push_back(std::move(c.field));
  }
  return Table(Schema(std::move(fields)), std::move(columns));
}

void check_join_keys(const Table& left, std::span<const size_t> left_keys, const Table& right, std::span<const size_t> right_keys) {
  check_key_pairs("join", left, left_keys, right, right_keys);
}

Table cogroup_tables(const Table& left, std::span<const size_t> left_keys, const Table& right,
                     std::span<const size_t> right_keys, ExecutionBackend* grouping_backend) {
  check_key_pairs("cogroup", left, left_keys, right, right_keys);
  const size_t left_rows = left.num_rows();
  const Table keys = keys_of_both(left, left_keys, right, right_keys, grouping_backend);
  std::vector<size_t> key_fields(left_keys.size());
  std::iota(key_fields.begin(), key_fields.end(), 0);
  const std::vector<size_t> left_values = value_fields(left.schema(), left_keys);
  const std::vector<size_t> right_values = value_fields(right.schema(), right_keys);
  // Keys in order of first appearance, left rows first; the key comes from whichever side
  // had it first.
  std::vector<Field> fields = keys.schema().fields();
  fields.push_back(list_field("left", left, left_values));
  fields.push_back(list_field("right", right, right_values));

  if (grouping_backend) {
    const ListSide sides[] = {{&left, 0, left_values}, {&right, left_rows, right_values}};
    if (std::optional<GroupedLists> lists = grouping_backend->group_lists(keys, key_fields, sides)) {
      std::vector<Column> columns = gathered(grouping_backend, keys, key_fields, lists->first_row_of_group);
      for (size_t side = 0; side < 2; ++side)
        columns.push_back(list_column_of(fields[key_fields.size() + side], std::move(lists->list_offsets[side]),
                                         std::move(lists->elements[side])));
      return Table(Schema(std::move(fields)), std::move(columns));
    }
  }
  const Grouping g = grouping_backend ? grouping_backend->group_rows(keys, key_fields) : group_rows(keys, key_fields);
  const size_t group_count = g.first_row_of_group.size();
  std::vector<Column> columns = gathered(grouping_backend, keys, key_fields, g.first_row_of_group);
  const RowsByGroup left_by_group = rows_by_group(g.group_of_row, 0, left_rows, group_count);
  const RowsByGroup right_by_group =
      rows_by_group(g.group_of_row, left_rows, left_rows + right.num_rows(), group_count);
  columns.push_back(list_column(fields[fields.size() - 2], left, left_values, left_by_group, grouping_backend));
  columns.push_back(list_column(fields.back(), right, right_values, right_by_group, grouping_backend));
  return Table(Schema(std::move(fields)), std::move(columns));
}

Table group_by_key_table(const Table& input, std::span<const size_t> key_columns, ExecutionBackend* grouping_backend) {
  check_key_indexes("group_by_key", "input", input, key_columns);
  std::vector<Field> fields;
  for (size_t k : key_columns) fields.push_back(input.schema()[k]);
  const std::vector<size_t> values = value_fields(input.schema(), key_columns);
  fields.push_back(list_field("values", input, values));

  if (grouping_backend) {
    const ListSide side{&input, 0, values};
    if (std::optional<GroupedLists> lists = grouping_backend->group_lists(input, key_columns, std::span<const ListSide>(&side, 1))) {
      std::vector<Column> columns = gathered(grouping_backend, input, key_columns, lists->first_row_of_group);
      columns.push_back(list_column_of(fields.back(), std::move(lists->list_offsets[0]), std::move(lists->elements[0])));
      return Table(Schema(std::move(fields)), std::move(columns));
    }
  }
  const Grouping g = grouping_backend ? grouping_backend->group_rows(input, key_columns) : group_rows(input, key_columns);
  const size_t group_count = g.first_row_of_group.size();
  std::vector<Column> columns = gathered(grouping_backend, input, key_columns, g.first_row_of_group);
  const RowsByGroup by_group = rows_by_group(g.group_of_row, 0, input.num_rows(), group_count);
  columns.push_back(list_column(fields.back(), input, values, by_group, grouping_backend));
  return Table(Schema(std::move(fields)), std::move(columns));
}

Column ExecutionBackend::concatenate(const Column& first, const Column& second, bool nullable) {
  return concatenated(first, second, nullable);
}

Grouping ExecutionBackend::group_rows(const Table& table, std::span<const size_t> key_columns) {
  return sluice::group_rows(table, key_columns);
}

std::optional<GroupedLists> ExecutionBackend::group_lists(const Table&, std::span<const size_t>, std::span<const ListSide>) {
  return std::nullopt;
}

std::vector<Column> ExecutionBackend::gather_columns(const Table& table, std::span<const size_t> fields,
                                                    std::span<const int64_t> rows) {
  return gathered(nullptr, table, fields, rows);
}

Table ExecutionBackend::join(const Table& left, std::span<const size_t> left_keys, const Table& right,
                             std::span<const size_t> right_keys, JoinKind kind) {
  return join_tables(left, left_keys, right, right_keys, kind);
}

}  // namespace sluice
