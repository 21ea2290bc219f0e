// Deterministic event generators for sluice-bench: every engine reads the files these
// write (layout and formats in bench/WORKLOADS.md).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace sluice::bench {

/// @brief What to generate: the data kind follows from the workload name.
struct GenerateOptions {
  std::string workload;  ///< ysb | wordcount | windowed | nexmark-q1 | -q2 | -q5 | -q7
  int64_t batches = 20;
  int64_t events_per_batch = 10'000;
  uint64_t seed = 1;
  int64_t keys = 1'000;          ///< windowed: distinct keys
  int64_t window_ms = 10'000;    ///< windowed: window length
  int64_t slide_ms = 1'000;      ///< windowed: slide
  std::vector<std::filesystem::path> corpus;  ///< wordcount: text files (default: Debian's licence texts)
};

/// @brief "ysb", "text", "keyed" or "nexmark"; throws sluice::Error naming an unknown workload.
std::string data_kind(const std::string& workload);

/// @brief The query parameters of @p workload as written to meta.json ("params").
nlohmann::json workload_params(const GenerateOptions& options);

/// @brief Writes DIR/meta.json, DIR/events/part-NNNNN.csv (one per 1-s batch) and, for YSB,
/// DIR/ysb-campaigns.csv. Returns the meta.json content.
nlohmann::json generate(const GenerateOptions& options, const std::filesystem::path& dir);

}  // namespace sluice::bench
