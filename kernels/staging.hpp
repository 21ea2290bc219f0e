#pragma once
// How host buffers are laid out in one device block and staged through pinned chunks (plain
// C++17: the CUDA engine uses it, and the host tests check it).
#include <algorithm>
#include <cstddef>
#include <cstring>
#include <vector>

namespace sluice::gpu {

/// A host buffer and its place in the device block.
struct StagedPiece {
  const void* host;
  size_t bytes;
  size_t offset;
};

/// Copies the parts of @p pieces (ascending offsets, not overlapping) that fall in the block
/// range [from, to) into @p dst, which stands for that range. @p next_piece carries the scan
/// from one chunk to the next. Gaps between pieces are left as they are.
inline void fill_chunk(const std::vector<StagedPiece>& pieces, size_t& next_piece, size_t from, size_t to, char* dst) {
  while (next_piece < pieces.size() && pieces[next_piece].offset + pieces[next_piece].bytes <= from) ++next_piece;
  for (size_t i = next_piece; i < pieces.size() && pieces[i].offset < to; ++i) {
    const StagedPiece& p = pieces[i];
    const size_t begin = std::max(p.offset, from), end = std::min(p.offset + p.bytes, to);
    std::memcpy(dst + (begin - from), static_cast<const char*>(p.host) + (begin - p.offset), end - begin);
  }
}

}  // namespace sluice::gpu
