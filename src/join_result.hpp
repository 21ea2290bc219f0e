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

/// The result of join_tables from its pairs: output row o joins @p left_of_output[o] with
/// @p right_of_output[o] (-1: no row on that side); rows [0, rows_with_left) have a left row.
Table join_result(const Table& left, std::span<const size_t> left_keys, const Table& right, std::span<const size_t> right_keys,
                  JoinKind kind, std::span<const int64_t> left_of_output, std::span<const int64_t> right_of_output,
                  size_t rows_with_left);

}  // namespace sluice
