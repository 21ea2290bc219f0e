#pragma once
// The check on sort keys that every backend's sort_rows shares. Defined in src/cpu/sort_rows.cpp.
#include <span>

#include "sluice/backend.hpp"

namespace sluice {

/// Throws sluice::Error naming a key of @p keys that is out of range of @p batch or a List field.
void check_sort_keys(const Table& batch, std::span<const SortKey> keys);

}  // namespace sluice
