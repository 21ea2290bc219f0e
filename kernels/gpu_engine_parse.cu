// The device engine's record parsers: CSV and JSON lines parsed into columns on the device.
#include "csv_parse.cuh"
#include "gpu_engine_impl.cuh"
#include "json_parse.cuh"

namespace sluice::gpu {

namespace {

/// Parsed records of @p lines lines on the device copied to the host (the columns stay
/// resident too).
ParsedRecords download_parsed(const std::shared_ptr<DeviceEngine::Impl>& owner, CudaExec& exec, CsvParseResult<CudaExec>&& parsed,
                              size_t lines) {
  ParsedRecords out;
  out.rows = parsed.rows;
  out.blank = parsed.blank_count;
  // Row indexes ascend and are distinct lines, so as many rows as lines means row r is line r.
  out.rows_are_lines = parsed.rows == lines;
  if (!out.rows_are_lines) download(exec, out.row_index, parsed.row_index, parsed.rows);
  download(exec, out.malformed, parsed.malformed, parsed.malformed_count);
  download(exec, out.needs_host, parsed.needs_host, parsed.needs_host_count);
  for (CsvDeviceColumn<CudaExec>& c : parsed.columns) out.columns.push_back(keep_on_device(owner, exec, std::move(c), parsed.rows));
  return out;
}

}  // namespace

ParsedRecords DeviceEngine::parse_csv(const char* chars, const int32_t* offsets, const uint8_t* line_validity, size_t lines,
                                     const std::vector<CsvFieldSpec>& fields, char delimiter, char quote) {
  Impl& im = *impl_;
  return checked("parse csv", im.device, im.stream, [&] {
    DeviceArray<char> block;
    const ColumnView in = im.upload_lines(chars, offsets, line_validity, lines, block);
    CudaExec exec(im.pool, im.stream);
    return download_parsed(impl_, exec, parse_csv_on_device(exec, in.chars, in.offsets, lines, fields.data(), fields.size(), delimiter,
                                                      quote, in.validity),
                           lines);
  });
}

ParsedRecords DeviceEngine::parse_json(const char* chars, const int32_t* offsets, const uint8_t* line_validity, size_t lines,
                                      const std::vector<CsvFieldSpec>& fields, const std::vector<std::string>& names) {
  Impl& im = *impl_;
  return checked("parse json", im.device, im.stream, [&] {
    DeviceArray<char> block;
    const ColumnView in = im.upload_lines(chars, offsets, line_validity, lines, block);
    CudaExec exec(im.pool, im.stream);
    std::vector<const char*> name_pointers;
    for (const std::string& n : names) name_pointers.push_back(n.c_str());
    return download_parsed(impl_, exec, parse_json_on_device(exec, in.chars, in.offsets, lines, fields.data(), name_pointers.data(),
                                                       fields.size(), in.validity),
                           lines);
  });
}

}  // namespace sluice::gpu
