#pragma once
// Pipeline files: a YAML description of sources, streams (chains of operations) and sinks,
// built into a StreamingContext. Every definition error names the file, the line and what
// is wrong (PipelineError); `sluice validate` builds the graph without starting it.

#include <memory>
#include <optional>
#include <string>

#include "sluice/context.hpp"

namespace sluice::pipeline {

/// A pipeline file that cannot be used: "pipeline.yaml:12:7: reduce_by_key: no field 'wrd' ...".
class PipelineError : public Error {
 public:
  using Error::Error;
};

/// Options from the command line that override the file.
struct RunOverrides {
  std::optional<BackendKind> backend;
  /// Runs the pipeline on this backend instead (embedding and tests).
  std::shared_ptr<ExecutionBackend> backend_instance;
  std::optional<size_t> max_batches;
};

/// A built pipeline: the context with its graph, ready to start.
struct Pipeline {
  std::string name;
  std::shared_ptr<Clock> clock;
  std::unique_ptr<StreamingContext> context;
  /// Stop after this many batches (0: run until the sources finish or a signal arrives).
  size_t max_batches = 0;
  /// True when every source is a replay: the clock jumps ahead and the run ends with the data.
  bool replay = false;
};

/// Parses and builds @p path; throws PipelineError for anything wrong with the file.
Pipeline load_pipeline(const std::string& path, const RunOverrides& overrides = {});

/// Parses a duration: "250ms", "2s", "1m", "1h" or a number of milliseconds.
Duration parse_duration(const std::string& text);

}  // namespace sluice::pipeline
