#pragma once
// The part of a join that every backend shares: the result table built from the (left row,
// right row) pairs a backend found. Defined in src/cpu/join.cpp.
#include <span>

#include "sluice/backend.hpp"

namespace sluice {

/// Indexes of the fields of @p schema that are not keys, in order (a join's value fields).
std::vector<size_t> value_fields(const Schema& schema, std::span<const size_t> keys);

/// Throws sluice::Error naming the field when the key fields of the two sides do not pair up.
void check_join_keys(const Table& left, std::span<const size_t> left_keys, const Table& right, std::span<const size_t> right_keys);

/// @brief One column of a join's result: its field and the side its rows come from. Key
/// columns take the left key's rows, except in right-only rows, which take the right key's.
struct JoinResultColumn {
  enum class From { Keys, Left, Right };
  From from = From::Keys;
  size_t left_field = 0;   ///< Keys and Left: the field of the left table
  size_t right_field = 0;  ///< Keys and Right: the field of the right table
  Field field;             ///< the result's field (nullable where the join is outer on the other side)
};

/// The columns of join_tables' result, in order: left keys, then left's other fields, then
/// right's other fields (renamed with "_right" where a name is taken).
std::vector<JoinResultColumn> join_result_columns(const Schema& left, std::span<const size_t> left_keys, const Schema& right,
                                                 std::span<const size_t> right_keys, JoinKind kind);

/// Result column @p column gathered on the host from the pairs (as join_result takes them).
Column gather_join_column(const JoinResultColumn& column, const Table& left, const Table& right,
                          std::span<const int64_t> left_of_output, std::span<const int64_t> right_of_output,
                          size_t rows_with_left);

/// The result of join_tables from its pairs: output row o joins @p left_of_output[o] with
/// @p right_of_output[o] (-1: no row on that side); rows [0, rows_with_left) have a left row.
Table join_result(const Table& left, std::span<const size_t> left_keys, const Table& right, std::span<const size_t> right_keys,
                  JoinKind kind, std::span<const int64_t> left_of_output, std::span<const int64_t> right_of_output,
                  size_t rows_with_left);

}  // namespace sluice
