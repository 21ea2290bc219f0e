// The device engine's single row operations: expressions, filters, flat_map splits, sorts,
// and joins (their pairs and their result rows).
#include "gpu_engine_impl.cuh"
#include "hash_join.cuh"
#include "row_chain.cuh"
#include "row_program.cuh"
#include "sort_rows.cuh"
#include "split_strings.cuh"

namespace sluice::gpu {

SplitColumn DeviceEngine::split_strings(const ColumnView& text, size_t rows, const std::string& separator) {
  Impl& im = *impl_;
  return checked("flat_map split", im.device, im.stream, [&] {
    SLUICE_EXPECTS(text.type == kString, "flat_map split: the column to split is not a string column");
    DeviceArray<char> block;
    const ColumnView in = im.upload_columns({text}, rows, block)[0];
    CudaExec exec(im.pool, im.stream);
    SLUICE_EXPECTS(separator.size() <= static_cast<size_t>(INT32_MAX), "flat_map split: the separator is over 2^31 - 1 bytes");
    auto device_separator = exec.alloc<char>(separator.size());
    exec.to_device(device_separator.data(), separator.data(), separator.size());
    SplitTokens<CudaExec> split =
        sluice::gpu::split_strings(exec, in, rows, device_separator.data(), static_cast<int32_t>(separator.size()));
    SplitColumn out;
    download(exec, out.source_rows, split.source_rows, split.tokens);
    OwnedColumn<CudaExec> tokens;
    tokens.type = kString;
    tokens.rows = split.tokens;
    tokens.offsets = std::move(split.offsets);
    tokens.chars = std::move(split.chars);
    out.tokens = keep_on_device(impl_, exec, std::move(tokens), split.tokens);
    return out;
  });
}

std::vector<HostColumnBuffers> DeviceEngine::evaluate(const std::vector<const RowProgram*>& programs,
                                                      const std::vector<ColumnView>& host_columns, size_t rows) {
  Impl& im = *impl_;
  return checked("map", im.device, im.stream, [&] {
    DeviceArray<char> block;
    const std::vector<ColumnView> columns = im.upload_columns(host_columns, rows, block);
    CudaExec exec(im.pool, im.stream);
    std::vector<HostColumnBuffers> out;
    for (const RowProgram* program : programs) {
      const BoundRowProgram<CudaExec> bound = bind_row_program(exec, *program, columns);
      out.push_back(keep_on_device(impl_, exec, evaluate_column(exec, bound, rows, program->result_nullable), rows));
    }
    return out;
  });
}

std::vector<int64_t> DeviceEngine::select_rows(const RowProgram& predicate, const std::vector<ColumnView>& host_columns,
                                               size_t rows) {
  Impl& im = *impl_;
  return checked("filter", im.device, im.stream, [&] {
    DeviceArray<char> block;
    const std::vector<ColumnView> columns = im.upload_columns(host_columns, rows, block);
    CudaExec exec(im.pool, im.stream);
    const BoundRowProgram<CudaExec> bound = bind_row_program(exec, predicate, columns);
    DeviceArray<int64_t> selected = exec.alloc<int64_t>(rows);
    std::vector<int64_t> out(sluice::gpu::select_rows(exec, bound.program, bound.inputs.data(), rows, selected.data()));
    exec.to_host(out.data(), selected.data(), out.size() * sizeof(int64_t));
    return out;
  });
}

RowChainOutput DeviceEngine::gather_rows(const std::vector<ColumnView>& host_columns, size_t rows, const std::vector<int64_t>& at,
                                         const std::vector<uint8_t>& nullable) {
  Impl& im = *impl_;
  return checked("gathering rows", im.device, im.stream, [&] {
    SLUICE_EXPECTS(nullable.size() == host_columns.size(), "gathering rows: " + std::to_string(nullable.size()) +
                                                               " nullable flags for " + std::to_string(host_columns.size()) +
                                                               " columns");
    CudaExec exec(im.pool, im.stream);
    const DeviceArray<int64_t> device_at = rows_on_device(exec, at, rows, "gathering rows");
    DeviceArray<char> block;
    const std::vector<ColumnView> columns = im.upload_columns(host_columns, rows, block);
    return gathered_on_device(impl_, exec, columns, device_at.data(), at.size(), nullable);
  });
}

RowChainOutput DeviceEngine::concatenate(const ColumnView& first, size_t first_rows, const ColumnView& second,
                                         size_t second_rows, bool nullable) {
  Impl& im = *impl_;
  return checked("cogroup's keys", im.device, im.stream, [&] {
    DeviceArray<char> first_block, second_block;
    const std::vector<ColumnView> a = im.upload_columns({first}, first_rows, first_block);
    const std::vector<ColumnView> b = im.upload_columns({second}, second_rows, second_block);
    CudaExec exec(im.pool, im.stream);
    RowChainOutput out;
    out.rows = first_rows + second_rows;
    out.input_column = {-1};
    out.columns.push_back(
        keep_on_device(impl_, exec, concatenate_columns(exec, a[0], first_rows, b[0], second_rows, nullable), out.rows));
    return out;
  });
}

namespace {

/// A join's pairs as DeviceEngine::join leaves them on the device (JoinPairs::on_device),
/// with the engine whose pool holds them.
struct PairsOnDevice {
  std::shared_ptr<DeviceEngine::Impl> owner;  // declared first: destroyed last
  DeviceJoinPairs<CudaExec> pairs;
  // What they pair: join_rows reads them in place only for the same.
  size_t rows = 0, rows_with_left = 0, left_rows = 0, right_rows = 0;
};

}  // namespace

RowChainOutput DeviceEngine::join_rows(const std::vector<ColumnView>& host_left, size_t left_rows,
                                       const std::vector<ColumnView>& host_right, size_t right_rows,
                                       const std::vector<JoinColumnSpec>& outputs, const JoinPairs& pairs) {
  Impl& im = *impl_;
  return checked("join", im.device, im.stream, [&] {
    const std::vector<int64_t>& left_at = pairs.left_rows;
    const std::vector<int64_t>& right_at = pairs.right_rows;
    const size_t rows_with_left = pairs.rows_with_left;
    const size_t n = left_at.size();
    for (const JoinColumnSpec& c : outputs) {
      const bool left_ok = c.from == kJoinFromRight || (c.left_column >= 0 && static_cast<size_t>(c.left_column) < host_left.size());
      const bool right_ok = c.from == kJoinFromLeft || (c.right_column >= 0 && static_cast<size_t>(c.right_column) < host_right.size());
      SLUICE_EXPECTS(left_ok && right_ok, "join: a result column reads left column " + std::to_string(c.left_column) + " of " +
                                              std::to_string(host_left.size()) + " and right column " +
                                              std::to_string(c.right_column) + " of " + std::to_string(host_right.size()));
    }
    CudaExec exec(im.pool, im.stream);
    // Pairs this engine found are still on its device and valid by construction; others are
    // checked here and copied in.
    const auto* found = static_cast<const PairsOnDevice*>(pairs.on_device.get());
    const bool in_place = found != nullptr && found->owner == impl_ && found->rows == n && right_at.size() == n &&
                          found->rows_with_left == rows_with_left && found->left_rows == left_rows &&
                          found->right_rows == right_rows;
    DeviceArray<int64_t> uploaded_left_at, uploaded_right_at;
    const int64_t* device_left_at = in_place ? found->pairs.left_at.data() : nullptr;
    const int64_t* device_right_at = in_place ? found->pairs.right_at.data() : nullptr;
    if (!in_place) {
      SLUICE_EXPECTS(right_at.size() == n && rows_with_left <= n, "join: " + std::to_string(n) + " left rows, " +
                                                                      std::to_string(right_at.size()) + " right rows and " +
                                                                      std::to_string(rows_with_left) + " rows with a left row");
      for (size_t o = 0; o < n; ++o) {
        // The first rows_with_left rows have a left row; every other row has a right row.
        const int64_t l = left_at[o], r = right_at[o];
        const bool left_ok = o < rows_with_left ? l >= 0 && static_cast<size_t>(l) < left_rows : l == -1;
        const bool right_ok = r >= -1 && (r == -1 ? o < rows_with_left : static_cast<size_t>(r) < right_rows);
        SLUICE_EXPECTS(left_ok && right_ok, "join: output row " + std::to_string(o) + " pairs left row " + std::to_string(l) +
                                                " with right row " + std::to_string(r) + " of tables of " +
                                                std::to_string(left_rows) + " and " + std::to_string(right_rows) + " rows (" +
                                                std::to_string(rows_with_left) + " rows with a left row)");
      }
      uploaded_left_at = exec.alloc<int64_t>(n);
      uploaded_right_at = exec.alloc<int64_t>(n);
      exec.to_device(uploaded_left_at.data(), left_at.data(), n * sizeof(int64_t));
      exec.to_device(uploaded_right_at.data(), right_at.data(), n * sizeof(int64_t));
      device_left_at = uploaded_left_at.data();
      device_right_at = uploaded_right_at.data();
    }
    DeviceArray<char> left_block, right_block;
    const std::vector<ColumnView> left = im.upload_columns(host_left, left_rows, left_block);
    const std::vector<ColumnView> right = im.upload_columns(host_right, right_rows, right_block);
    RowChainOutput out;
    out.rows = n;
    out.input_column.assign(outputs.size(), -1);
    for (const JoinColumnSpec& c : outputs) {
      const ColumnView l = c.from == kJoinFromRight ? ColumnView{} : left[static_cast<size_t>(c.left_column)];
      const ColumnView r = c.from == kJoinFromLeft ? ColumnView{} : right[static_cast<size_t>(c.right_column)];
      out.columns.push_back(keep_on_device(impl_, exec,
                                           gather_join_column(exec, l, left_rows, r, c.from, c.nullable != 0, device_left_at,
                                                              device_right_at, rows_with_left, n),
                                           n));
    }
    return out;
  });
}

RowChainOutput DeviceEngine::sort_rows(const std::vector<ColumnView>& host_columns, size_t rows,
                                       const std::vector<SortKeySpec>& keys, int64_t limit) {
  Impl& im = *impl_;
  return checked("transform (sort_by, limit)", im.device, im.stream, [&] {
    for (const SortKeySpec& k : keys)
      SLUICE_EXPECTS(k.column >= 0 && static_cast<size_t>(k.column) < host_columns.size(),
                     "transform: sort key column " + std::to_string(k.column) + " of a batch of " +
                         std::to_string(host_columns.size()) + " columns");
    DeviceArray<char> block;
    const std::vector<ColumnView> columns = im.upload_columns(host_columns, rows, block);
    CudaExec exec(im.pool, im.stream);
    std::vector<SortKeyView> key_views;
    for (const SortKeySpec& k : keys) key_views.push_back(SortKeyView{columns[static_cast<size_t>(k.column)], k.descending});
    const SortedRows<CudaExec> sorted = sluice::gpu::sort_rows(exec, key_views, rows, limit);
    return gathered_on_device(impl_, exec, columns, sorted.order.data(), sorted.rows, std::vector<uint8_t>(columns.size(), 0));
  });
}

JoinPairs DeviceEngine::join(const std::vector<ColumnView>& left_keys, size_t left_rows, const std::vector<ColumnView>& right_keys,
                             size_t right_rows, JoinKind kind) {
  Impl& im = *impl_;
  return checked("join", im.device, im.stream, [&] {
    GroupedInput left, right;
    left.rows = left_rows;
    left.keys = left_keys;
    right.rows = right_rows;
    right.keys = right_keys;
    DeviceArray<char> left_block, right_block;
    const GroupedInput l = im.upload(left, left_block);
    const GroupedInput r = im.upload(right, right_block);
    CudaExec exec(im.pool, im.stream);
    auto found = std::make_shared<PairsOnDevice>();
    found->owner = impl_;
    JoinPairs pairs = join_on_device(exec, l.keys, left_rows, r.keys, right_rows, kind, ~uint64_t{0}, &found->pairs);
    found->rows = pairs.left_rows.size();
    found->rows_with_left = pairs.rows_with_left;
    found->left_rows = left_rows;
    found->right_rows = right_rows;
    pairs.on_device = std::move(found);
    return pairs;
  });
}

}  // namespace sluice::gpu
