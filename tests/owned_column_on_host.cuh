#pragma once
// A column the kernels made in HostExec's memory, copied into a host Column: for the tests
// that run the row kernels on the host and compare with the host operators.
#include <cstring>
#include <vector>

#include "host_exec.cuh"
#include "row_chain.cuh"
#include "sluice/column.hpp"

namespace sluice::gpu {

/// from_buffers checks the sizes of the copied buffers.
inline Column to_column(const OwnedColumn<HostExec>& c) {
  std::vector<std::byte> values(c.values.size());
  if (!values.empty()) std::memcpy(values.data(), c.values.data(), values.size());
  std::vector<int32_t> offsets(c.offsets.data(), c.offsets.data() + c.offsets.size());
  std::vector<char> chars(c.chars.data(), c.chars.data() + c.chars.size());
  std::vector<uint8_t> validity(c.validity.data(), c.validity.data() + c.validity.size());
  return Column::from_buffers(static_cast<TypeId>(c.type), c.rows, c.nullable, std::move(values), std::move(offsets),
                              std::move(chars), std::move(validity));
}

}  // namespace sluice::gpu
