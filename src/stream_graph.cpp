#include "sluice/stream_graph.hpp"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "sluice/context.hpp"
#include "sluice/log.hpp"
#include "sluice/pane_ring.hpp"

namespace sluice {

void StepContext::report_malformed(std::string_view origin, std::string_view record, std::string_view reason) {
  ++malformed;
  if (dead_letters) dead_letters->write(time, origin, record, reason);
}

StreamNode::StreamNode(std::string name, Schema schema, Duration slide, std::vector<Ptr> parents)
    : name_(std::move(name)), schema_(std::move(schema)), slide_(slide), window_(slide), parents_(std::move(parents)) {
  SLUICE_EXPECTS(slide_.count() > 0, name_ + ": slide must be positive, got " + std::to_string(slide_.count()) + " ms");
}

std::optional<Time> StreamNode::last_output_including(const StreamNode& source, Time batch_time, Time zero_time) const {
  if (this == &source) return batch_time;
  std::optional<Time> latest;
  for (const auto& p : parents_)
    if (auto t = p->last_output_including(source, batch_time, zero_time)) latest = latest ? std::max(*latest, *t) : *t;
  if (!latest) return std::nullopt;
  // The last output time T on this node's grid whose window (T - window, T] still holds
  // the parent output at *latest: the largest multiple of the slide below latest + window.
  const int64_t slide = slide_.count();
  const int64_t last = (latest->ms - zero_time.ms) + window_.count() - 1;
  return Time{zero_time.ms + last / slide * slide};
}

Time complete_through(std::span<const StreamNode* const> outputs, const StreamNode& source, Time acknowledged,
                      Time completed, Duration batch_interval, Time zero_time) {
  Time through = acknowledged;
  while (true) {
    const Time candidate = through + batch_interval;
    if (candidate > completed) return through;
    for (const StreamNode* o : outputs) {
      const auto last = o->last_output_including(source, candidate, zero_time);
      if (last && *last > completed) return through;
    }
    through = candidate;
  }
}

// ------------------------------------------------------------ BatchFunctionNode

static Duration common_slide(const std::string& name, const std::vector<StreamNode::Ptr>& parents) {
  SLUICE_EXPECTS(!parents.empty(), name + ": needs an input stream");
  const Duration slide = parents[0]->slide();
  for (const auto& p : parents)
    SLUICE_EXPECTS(p->slide() == slide, name + ": inputs slide at different intervals (" +
                                            std::to_string(slide.count()) + " ms and " +
                                            std::to_string(p->slide().count()) + " ms)");
  return slide;
}

BatchFunctionNode::BatchFunctionNode(std::string name, Schema schema, std::vector<Ptr> parents, Function fn)
    : StreamNode(name, std::move(schema), common_slide(name, parents), parents), fn_(std::move(fn)) {}

std::optional<Table> BatchFunctionNode::compute(StepContext& ctx) {
  std::vector<const Table*> inputs;
  inputs.reserve(parents().size());
  for (size_t i = 0; i < parents().size(); ++i) {
    const Table* t = parent_output(i);
    if (!t) return std::nullopt;
    inputs.push_back(t);
  }
  return fn_(inputs, ctx);
}

// ------------------------------------------------------------ SourceNode

SourceNode::SourceNode(std::unique_ptr<Source> source, Duration batch_interval)
    : StreamNode(source->name(), source->schema(), batch_interval, {}), source_(std::move(source)) {}

void SourceNode::start(Time zero_time, Duration batch_interval) { source_->start(zero_time, batch_interval); }

void SourceNode::stop() {
  source_->stop();
  source_->close();
}

void SourceNode::cut(Time t, const std::function<void(const Table&)>& before_handing_on) {
  Table batch = source_->next_batch(t);
  std::vector<RejectedRecord> rejected = source_->take_rejected();
  if (before_handing_on) before_handing_on(batch);
  std::lock_guard lock(mutex_);
  cut_.push_back(CutBatch{t, std::move(batch), std::move(rejected)});
}

std::optional<Table> SourceNode::compute(StepContext& ctx) {
  std::optional<Table> batch;
  std::vector<RejectedRecord> rejected;
  {
    std::lock_guard lock(mutex_);
    while (!cut_.empty() && cut_.front().time < ctx.time) cut_.pop_front();
    if (!cut_.empty() && cut_.front().time == ctx.time) {
      batch = std::move(cut_.front().table);
      rejected = std::move(cut_.front().rejected);
      cut_.pop_front();
    }
  }
  for (const auto& r : rejected) ctx.report_malformed(name(), r.record, r.reason);
  if (!batch) batch = Table::empty(schema());
  ctx.records_in += batch->num_rows();
  const size_t dropped = source_->counters().dropped;
  ctx.dropped += dropped - dropped_seen_;
  dropped_seen_ = dropped;
  return batch;
}

// ------------------------------------------------------------ OutputNode

OutputNode::OutputNode(std::string name, Ptr parent, Function fn)
    : StreamNode(std::move(name), parent->schema(), parent->slide(), {parent}), fn_(std::move(fn)) {}

std::optional<Table> OutputNode::compute(StepContext& ctx) {
  if (const Table* t = parent_output(0)) fn_(ctx.time, *t);
  return std::nullopt;
}

// ------------------------------------------------------------ windows

void check_window(std::string_view op, Duration window, Duration slide, Duration parent_slide) {
  const std::string name(op);
  auto ms = [](Duration d) { return std::to_string(d.count()) + " ms"; };
  SLUICE_EXPECTS(window.count() > 0, name + ": window " + ms(window) + " must be positive");
  SLUICE_EXPECTS(slide.count() > 0, name + ": slide " + ms(slide) + " must be positive");
  SLUICE_EXPECTS(window.count() % parent_slide.count() == 0,
                 name + ": window " + ms(window) + " is not a multiple of the batch interval " + ms(parent_slide));
  SLUICE_EXPECTS(slide.count() % parent_slide.count() == 0,
                 name + ": slide " + ms(slide) + " is not a multiple of the batch interval " + ms(parent_slide));
  SLUICE_EXPECTS(window.count() % slide.count() == 0,
                 name + ": window " + ms(window) + " is not a multiple of the slide " + ms(slide));
}

namespace {

/// window(): panes hold the concatenated batches of one slide; the window is their union.
class WindowNode final : public StreamNode {
 public:
  WindowNode(StreamNode::Ptr parent, Duration window, Duration slide)
      : StreamNode("window", parent->schema(), slide, {parent}),
        ring_(static_cast<size_t>(window / slide)) {
    set_window(window);
  }

  std::optional<Table> compute(StepContext& ctx) override {
    if (const Table* t = parent_output(0)) current_.push_back(*t);
    if (!due_at(ctx.time, ctx.zero_time)) return std::nullopt;
    ring_.push(current_.empty() ? Table::empty(schema()) : Table::concat(current_));
    current_.clear();
    std::vector<const Table*> panes;
    ring_.for_each([&](const Table& pane) { panes.push_back(&pane); });
    return Table::concat(panes).with_schema(schema());
  }

 private:
  PaneRing<Table> ring_;
  std::vector<Table> current_;
};

/// count_by_window(): each pane is a count; the window count is updated by adding the
/// entering pane and subtracting the leaving one, so a slide costs the same at any length.
class CountByWindowNode final : public StreamNode {
 public:
  CountByWindowNode(StreamNode::Ptr parent, Duration window, Duration slide)
      : StreamNode("count_by_window", Schema{{"count", TypeId::Int64}}, slide, {parent}),
        ring_(static_cast<size_t>(window / slide)) {
    set_window(window);
  }

  std::optional<Table> compute(StepContext& ctx) override {
    if (const Table* t = parent_output(0)) current_ += static_cast<int64_t>(t->num_rows());
    if (!due_at(ctx.time, ctx.zero_time)) return std::nullopt;
    total_ += current_;
    if (auto leaving = ring_.push(current_)) total_ -= *leaving;
    current_ = 0;
    Column c(TypeId::Int64);
    c.append<int64_t>(total_);
    std::vector<Column> cols;
    cols.push_back(std::move(c));
    return Table(schema(), std::move(cols));
  }

 private:
  PaneRing<int64_t> ring_;
  int64_t current_ = 0;
  int64_t total_ = 0;
};

}  // namespace

// ------------------------------------------------------------ TableStream

TableStream TableStream::add(StreamNode::Ptr node) const {
  return TableStream(context_, context_->add_node(std::move(node)));
}

TableStream TableStream::transform(std::string name, Schema schema, BatchFunctionNode::Function fn) const {
  return add(std::make_shared<BatchFunctionNode>(std::move(name), std::move(schema), std::vector{node_}, std::move(fn)));
}

TableStream TableStream::transform_with(std::string name, Schema schema, std::vector<TableStream> others,
                                        BatchFunctionNode::Function fn) const {
  std::vector<StreamNode::Ptr> parents{node_};
  for (const auto& o : others) {
    SLUICE_EXPECTS(o.context_ == context_, name + ": streams belong to different contexts");
    parents.push_back(o.node_);
  }
  return add(std::make_shared<BatchFunctionNode>(std::move(name), std::move(schema), std::move(parents), std::move(fn)));
}

TableStream TableStream::union_with(const TableStream& other) const {
  SLUICE_EXPECTS(schema().size() == other.schema().size(),
                 "union: cannot union {" + schema().to_string() + "} with {" + other.schema().to_string() + "}");
  for (size_t i = 0; i < schema().size(); ++i)
    SLUICE_EXPECTS(schema()[i].type == other.schema()[i].type,
                   "union: cannot union {" + schema().to_string() + "} with {" + other.schema().to_string() + "}");
  return transform_with("union", schema(), {other}, [schema = schema()](std::span<const Table* const> in, StepContext&) {
    return Table::concat(in).with_schema(schema);
  });
}

TableStream TableStream::window(Duration window, Duration slide) const {
  check_window("window", window, slide, this->slide());
  return add(std::make_shared<WindowNode>(node_, window, slide));
}

TableStream TableStream::rename(std::vector<std::string> names) const {
  SLUICE_EXPECTS(names.size() == schema().size(), "rename: " + std::to_string(names.size()) + " names for " +
                                                       std::to_string(schema().size()) + " fields {" +
                                                       schema().to_string() + "}");
  Schema renamed = schema();
  for (size_t i = 0; i < names.size(); ++i) renamed.fields()[i].name = names[i];
  return transform("rename", renamed, [renamed](std::span<const Table* const> in, StepContext&) {
    return in[0]->with_schema(renamed);
  });
}

TableStream TableStream::count() const {
  return transform("count", Schema{{"count", TypeId::Int64}}, [](std::span<const Table* const> in, StepContext&) {
    Column c(TypeId::Int64);
    c.append<int64_t>(static_cast<int64_t>(in[0]->num_rows()));
    std::vector<Column> cols;
    cols.push_back(std::move(c));
    return Table(Schema{{"count", TypeId::Int64}}, std::move(cols));
  });
}

TableStream TableStream::count_by_window(Duration window, Duration slide) const {
  check_window("count_by_window", window, slide, this->slide());
  return add(std::make_shared<CountByWindowNode>(node_, window, slide));
}

void TableStream::foreach_batch(std::function<void(Time, const Table&)> fn) const {
  context_->add_output(std::make_shared<OutputNode>("foreach_batch", node_, std::move(fn)));
}

void TableStream::print(size_t n) const {
  context_->add_output(std::make_shared<OutputNode>("print", node_, [n](Time t, const Table& table) {
    std::string out = "-------------------------------------------\nTime: " + std::to_string(t.ms) +
                      " ms\n-------------------------------------------\n";
    for (size_t r = 0; r < table.num_rows() && r < n; ++r) out += table.row_json(r) + "\n";
    if (table.num_rows() > n) out += "...\n";
    out += "\n";
    std::fwrite(out.data(), 1, out.size(), stdout);
    std::fflush(stdout);
  }));
}

void TableStream::save_as_text_files(std::string prefix, std::string suffix) const {
  SLUICE_EXPECTS(!prefix.empty(), "save_as_text_files: the prefix must not be empty");
  context_->add_output(std::make_shared<OutputNode>(
      "save_as_text_files", node_, [prefix, suffix](Time t, const Table& table) {
        namespace fs = std::filesystem;
        const std::string name = prefix + "-" + std::to_string(t.ms) + (suffix.empty() ? "" : "." + suffix);
        const fs::path final_dir(name);
        const fs::path temp_dir = final_dir.parent_path() / ("_temporary-" + final_dir.filename().string());
        std::error_code ec;
        fs::remove_all(temp_dir, ec);
        fs::create_directories(temp_dir, ec);
        if (ec) throw Error("save_as_text_files: cannot create " + temp_dir.string() + ": " + ec.message());
        {
          std::ofstream out(temp_dir / "part-00000", std::ios::binary);
          std::string text;
          for (size_t r = 0; r < table.num_rows(); ++r) text += table.row_json(r) + "\n";
          out << text;
          out.close();
          if (!out) throw Error("save_as_text_files: cannot write " + (temp_dir / "part-00000").string());
        }
        std::ofstream(temp_dir / "_SUCCESS").close();
        fs::remove_all(final_dir, ec);  // a rerun of the same batch replaces its output
        fs::rename(temp_dir, final_dir, ec);
        if (ec) throw Error("save_as_text_files: cannot rename " + temp_dir.string() + " to " + name + ": " + ec.message());
      }));
}

}  // namespace sluice
