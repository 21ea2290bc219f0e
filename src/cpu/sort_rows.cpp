// transform's sort_by and limit on the host (the order kernels/sort_rows.cuh reproduces).
#include <algorithm>
#include <cmath>
#include <numeric>

#include "sort_keys.hpp"

namespace sluice {
namespace {

/// -1, 0 or 1; NaN above every other number and equal to NaN (so that the order is total
/// and a stable sort gives one answer).
int compare_numbers(double x, double y) {
  const bool x_nan = std::isnan(x), y_nan = std::isnan(y);
  if (x_nan || y_nan) return static_cast<int>(x_nan) - static_cast<int>(y_nan);
  return (x > y) - (x < y);
}

/// Rows @p a and @p b of one key column, ascending (nulls first).
int compare_cells(const Column& c, size_t a, size_t b) {
  const bool a_valid = c.is_valid(a), b_valid = c.is_valid(b);
  if (!a_valid || !b_valid) return static_cast<int>(a_valid) - static_cast<int>(b_valid);
  if (c.type() == TypeId::String) {
    const int x = c.string_at(a).compare(c.string_at(b));  // char_traits<char>: bytes as unsigned
    return (x > 0) - (x < 0);
  }
  if (c.type() == TypeId::Int64) {
    const int64_t x = c.values<int64_t>()[a], y = c.values<int64_t>()[b];
    return (x > y) - (x < y);
  }
  return compare_numbers(c.number_at(a), c.number_at(b));  // exact for bool, int32 and floats
}

}  // namespace

void check_sort_keys(const Table& batch, std::span<const SortKey> keys) {
  for (const SortKey& k : keys) {
    SLUICE_EXPECTS(k.column < batch.num_columns(), "sort: key column " + std::to_string(k.column) + " of a batch of " +
                                                       std::to_string(batch.num_columns()) + " fields");
    SLUICE_EXPECTS(batch.schema()[k.column].type != TypeId::List,
                   "sort: field '" + batch.schema()[k.column].name + "' is a list, which has no order");
  }
}

Table sort_rows(const Table& batch, std::span<const SortKey> keys, int64_t limit) {
  check_sort_keys(batch, keys);
  std::vector<int64_t> order(batch.num_rows());
  std::iota(order.begin(), order.end(), int64_t{0});
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    for (const SortKey& k : keys) {
      const int c = compare_cells(batch.column(k.column), static_cast<size_t>(a), static_cast<size_t>(b));
      if (c != 0) return k.descending ? c > 0 : c < 0;
    }
    return false;
  });
  if (limit >= 0 && order.size() > static_cast<size_t>(limit)) order.resize(static_cast<size_t>(limit));
  return batch.gather(order);
}

Table ExecutionBackend::sort_rows(const Table& batch, std::span<const SortKey> keys, int64_t limit) {
  return sluice::sort_rows(batch, keys, limit);
}

}  // namespace sluice
