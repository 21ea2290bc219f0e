#pragma once
/// @file stream_graph.hpp
/// @brief The operator DAG. Every stream is a node; each batch, the scheduler steps every
/// node in creation order (a topological order: parents exist before children), and each
/// node turns its parents' outputs at that batch time into its own, or into none when it
/// is not due (a window between slides). Nodes own their state (window panes, update
/// state), so nothing is recomputed.

#include <deque>
#include <functional>
#include <mutex>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "sluice/column.hpp"
#include "sluice/source.hpp"
#include "sluice/types.hpp"

namespace sluice {

class ExecutionBackend;
class StreamingContext;

/// @brief Where malformed records go: counted always, written to a file when configured.
class DeadLetterSink {
 public:
  virtual ~DeadLetterSink() = default;
  virtual void write(Time batch_time, std::string_view origin, std::string_view record, std::string_view reason) = 0;
};

/// @brief What a node sees while computing one batch.
struct StepContext {
  Time time;                 ///< the batch time being computed
  Time zero_time;            ///< the time before the first batch
  Duration batch_interval;
  ExecutionBackend* backend = nullptr;
  DeadLetterSink* dead_letters = nullptr;
  size_t records_in = 0;     ///< filled by source nodes
  size_t malformed = 0;      ///< filled by parsing nodes
  size_t dropped = 0;        ///< filled by source nodes

  /// Counts a record that could not be parsed and sends it to the dead-letter sink.
  void report_malformed(std::string_view origin, std::string_view record, std::string_view reason);
};

/// @brief One stream in the DAG.
class StreamNode {
 public:
  using Ptr = std::shared_ptr<StreamNode>;
  StreamNode(std::string name, Schema schema, Duration slide, std::vector<Ptr> parents);
  virtual ~StreamNode() = default;

  /// Computes this node's output at ctx.time from its parents' outputs, or returns none
  /// when the node has no output at this time. Called once per batch, in order.
  virtual std::optional<Table> compute(StepContext& ctx) = 0;
  /// Called once before the first batch.
  virtual void start(Time zero_time, Duration batch_interval) {
    (void)zero_time;
    (void)batch_interval;
  }
  /// Called once after the last batch.
  virtual void stop() {}

  const std::string& name() const { return name_; }
  const Schema& schema() const { return schema_; }
  /// Interval between this node's outputs (the batch interval, or a window's slide).
  Duration slide() const { return slide_; }
  const std::vector<Ptr>& parents() const { return parents_; }
  /// Length of the span of parent outputs each output covers: a window's length, otherwise
  /// the slide (an output covers only the parents' latest batch).
  Duration window() const { return window_; }
  /// The time of the last output of this node that can depend on @p source's batch at
  /// @p batch_time (the batch's records leave every window by then), or none when this node
  /// does not depend on @p source. Used to acknowledge input only once its outputs exist.
  std::optional<Time> last_output_including(const StreamNode& source, Time batch_time, Time zero_time) const;
  /// True when @p t is one of this node's output times.
  bool due_at(Time t, Time zero_time) const { return t > zero_time && (t - zero_time).count() % slide_.count() == 0; }

  /// The output of the last step, or null when there was none.
  const Table* output() const { return output_ ? &*output_ : nullptr; }
  void set_output(std::optional<Table> output) { output_ = std::move(output); }
  /// Parent @p i's output of this step, or null.
  const Table* parent_output(size_t i) const { return parents_[i]->output(); }

 protected:
  /// Window nodes declare their length (see window()).
  void set_window(Duration window) { window_ = window; }

 private:
  std::string name_;
  Schema schema_;
  Duration slide_;
  Duration window_;
  std::vector<Ptr> parents_;
  std::optional<Table> output_;
};

/// @brief A stateless transformation of the parents' batches at the same time (map, filter,
/// joins within a batch ...). It has output exactly when every parent has.
class BatchFunctionNode final : public StreamNode {
 public:
  using Function = std::function<Table(std::span<const Table* const> inputs, StepContext& ctx)>;
  BatchFunctionNode(std::string name, Schema schema, std::vector<Ptr> parents, Function fn);
  std::optional<Table> compute(StepContext& ctx) override;

 private:
  Function fn_;
};

/// @brief Wraps a Source: its output at every batch time is the source's batch.
class SourceNode final : public StreamNode {
 public:
  SourceNode(std::unique_ptr<Source> source, Duration batch_interval);
  std::optional<Table> compute(StepContext& ctx) override;
  void start(Time zero_time, Duration batch_interval) override;
  void stop() override;
  Source& source() { return *source_; }
  /// Takes the source's batch for @p t (the batch cutter's thread); compute() delivers it.
  /// @p before_handing_on sees the batch first (the backend's prefetch).
  void cut(Time t, const std::function<void(const Table&)>& before_handing_on = {});

 private:
  std::unique_ptr<Source> source_;
  size_t dropped_seen_ = 0;
  std::mutex mutex_;
  struct CutBatch {
    Time time;
    Table table;
    std::vector<RejectedRecord> rejected;
  };
  std::deque<CutBatch> cut_;
};

/// @brief An output operation: calls @p fn with the batch time and the parent's batch each
/// time the parent has output. Has no output itself.
class OutputNode final : public StreamNode {
 public:
  using Function = std::function<void(Time, const Table&)>;
  OutputNode(std::string name, Ptr parent, Function fn);
  std::optional<Table> compute(StepContext& ctx) override;

 private:
  Function fn_;
};

/// @brief The latest source batch time, from @p acknowledged on in steps of @p batch_interval,
/// whose records every node of @p outputs has finished with once the batch at @p completed
/// ran (see StreamNode::last_output_including); @p acknowledged when none is new.
Time complete_through(std::span<const StreamNode* const> outputs, const StreamNode& source, Time acknowledged,
                      Time completed, Duration batch_interval, Time zero_time);

/// @brief Checks a window definition against the batch interval and the parent's slide;
/// throws sluice::Error naming the operator and the durations otherwise
/// ("reduce_by_key_and_window: window 2500 ms is not a multiple of the batch interval 1000 ms").
void check_window(std::string_view op, Duration window, Duration slide, Duration parent_slide);

/// @brief An untyped stream handle: a node of a context's graph. The typed DStream<T> and
/// the pipeline builder both work through it.
class TableStream {
 public:
  TableStream() = default;
  TableStream(StreamingContext* context, StreamNode::Ptr node) : context_(context), node_(std::move(node)) {}

  StreamingContext& context() const { return *context_; }
  const StreamNode::Ptr& node() const { return node_; }
  const Schema& schema() const { return node_->schema(); }
  Duration slide() const { return node_->slide(); }

  /// Adds a node to this stream's context (its parents must belong to it) and returns it.
  TableStream add(StreamNode::Ptr node) const;
  /// A stateless per-batch transformation with output schema @p schema.
  TableStream transform(std::string name, Schema schema, BatchFunctionNode::Function fn) const;
  /// A per-batch transformation of this stream and @p others together (same slide required).
  TableStream transform_with(std::string name, Schema schema, std::vector<TableStream> others,
                             BatchFunctionNode::Function fn) const;
  /// Every record of this stream and of @p other (same column types and slide).
  TableStream union_with(const TableStream& other) const;
  /// All records of the last @p window, every @p slide (a ring of per-slide panes).
  TableStream window(Duration window, Duration slide) const;
  /// The same records with fields renamed to @p names.
  TableStream rename(std::vector<std::string> names) const;
  /// Number of records per batch: one row {count: int64}, 0 for an empty batch.
  TableStream count() const;
  /// Number of records in the last @p window, every @p slide (invertible: per-pane counts).
  TableStream count_by_window(Duration window, Duration slide) const;

  /// Calls @p fn for every batch (output operation).
  void foreach_batch(std::function<void(Time, const Table&)> fn) const;
  /// Prints the first @p n records of every batch to stdout, Spark's format.
  void print(size_t n = 10) const;
  /// Writes each batch to directory "PREFIX-TIME_MS[.SUFFIX]" (file part-00000, one record
  /// per line in JSON), created under a temporary name and renamed when complete.
  void save_as_text_files(std::string prefix, std::string suffix = "") const;

 private:
  StreamingContext* context_ = nullptr;
  StreamNode::Ptr node_;
};

}  // namespace sluice
