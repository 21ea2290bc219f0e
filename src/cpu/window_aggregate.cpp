// Windowed and stateful keyed aggregation: panes and state are partial-aggregate tables,
// combined on the context's backend, so the same nodes serve every backend.
#include <unordered_map>

#include "aggregate_plan.hpp"
#include "sluice/context.hpp"
#include "sluice/pane_ring.hpp"
#include "sluice/table_ops.hpp"

namespace sluice {
namespace {

/// Panes as partial tables in a PaneRing, combined on @p backend.
class PartialTableWindow final : public WindowAggregation {
 public:
  PartialTableWindow(ExecutionBackend& backend, KeyedAggregation plan, const Schema& input, size_t panes)
      : backend_(backend),
        plan_(std::move(plan)),
        partial_schema_(plan_.partial_schema(input)),
        ring_(panes),
        window_(Table::empty(partial_schema_)) {}

  void add_batch(const Table& batch) override { open_.push_back(backend_.aggregate_partials(batch, plan_)); }

  Table slide() override {
    Table pane = combine(open_);
    open_.clear();
    if (plan_.invertible()) {
      std::optional<Table> leaving = ring_.push(pane);
      std::vector<const Table*> parts{&window_, &pane};
      std::vector<int> signs{+1, +1};
      if (leaving) {
        parts.push_back(&*leaving);
        signs.push_back(-1);
      }
      window_ = backend_.combine_partials(parts, signs, plan_);
      return backend_.finalize(window_, plan_);
    }
    ring_.push(std::move(pane));
    std::vector<Table> panes;
    ring_.for_each([&](const Table& p) { panes.push_back(p); });
    return backend_.finalize(combine(panes), plan_);
  }

 private:
  Table combine(const std::vector<Table>& parts) const {
    if (parts.empty()) return Table::empty(partial_schema_);
    if (parts.size() == 1) return parts[0];
    std::vector<const Table*> ptrs;
    for (const auto& p : parts) ptrs.push_back(&p);
    const std::vector<int> signs(parts.size(), +1);
    return backend_.combine_partials(ptrs, signs, plan_);
  }

  ExecutionBackend& backend_;
  KeyedAggregation plan_;
  Schema partial_schema_;
  PaneRing<Table> ring_;
  std::vector<Table> open_;
  Table window_;
};

class AggregateWindowNode final : public StreamNode {
 public:
  /// With @p before, the parent's batches go through those row operations first.
  AggregateWindowNode(StreamNode::Ptr parent, KeyedAggregation plan, Duration window, Duration slide,
                      std::optional<RowOperations> before)
      : StreamNode(before ? before->name + ", reduce_by_key_and_window" : "reduce_by_key_and_window",
                   plan.result_schema(before ? before->output() : parent->schema()), slide, {parent}),
        plan_(std::move(plan)),
        input_schema_(before ? before->output() : parent->schema()),
        panes_(static_cast<size_t>(window / slide)),
        before_(std::move(before)) {
    set_window(window);
  }

  std::optional<Table> compute(StepContext& ctx) override {
    // The backend is known once the context runs: the window state is made on first use.
    if (!state_) state_ = ctx.backend->make_window_aggregation(plan_, input_schema_, panes_);
    if (const Table* t = parent_output(0)) {
      if (!before_) {
        state_->add_batch(*t);
      } else if (!(t->schema() == before_->input && state_->add_row_chain(*t, before_->steps))) {
        state_->add_batch(before_->run(*t, ctx));
      }
    }
    if (!due_at(ctx.time, ctx.zero_time)) return std::nullopt;
    return state_->slide();
  }

 private:
  KeyedAggregation plan_;
  Schema input_schema_;
  size_t panes_;
  std::optional<RowOperations> before_;
  std::unique_ptr<WindowAggregation> state_;
};

/// The state as a partial table, combined on @p backend; last-seen batches on the host.
class PartialTableState final : public StateAggregation {
 public:
  PartialTableState(ExecutionBackend& backend, KeyedAggregation plan, const Schema& input, size_t expire_after_batches)
      : backend_(backend),
        plan_(std::move(plan)),
        key_columns_(plan_.keys.size()),
        expire_after_(expire_after_batches),
        state_(Table::empty(plan_.partial_schema(input))) {
    for (size_t i = 0; i < key_columns_.size(); ++i) key_columns_[i] = i;  // keys lead partial tables
  }

  Table update(const Table& input) override {
    ++batch_;
    Table batch = backend_.aggregate_partials(input, plan_);
    // Which state rows the batch touched: partial tables lead with the keys, state keys are
    // distinct, so in the grouping of (state rows, batch rows) a state row's group is its index.
    const size_t old_rows = state_.num_rows();
    {
      const Table* both_ptrs[] = {&state_, &batch};
      const Table both = Table::concat(both_ptrs);
      const Grouping g = group_rows(both, key_columns_);
      last_seen_.resize(g.first_row_of_group.size(), batch_);
      for (size_t r = old_rows; r < both.num_rows(); ++r) last_seen_[static_cast<size_t>(g.group_of_row[r])] = batch_;
    }
    const Table* parts[] = {&state_, &batch};
    const int signs[] = {+1, +1};
    state_ = backend_.combine_partials(parts, signs, plan_);
    if (expire_after_ > 0) {
      std::vector<int64_t> keep;
      std::vector<size_t> kept_seen;
      for (size_t r = 0; r < state_.num_rows(); ++r) {
        if (batch_ - last_seen_[r] < expire_after_) {
          keep.push_back(static_cast<int64_t>(r));
          kept_seen.push_back(last_seen_[r]);
        }
      }
      if (keep.size() != state_.num_rows()) {
        state_ = state_.gather(keep);
        last_seen_ = std::move(kept_seen);
      }
    }
    return backend_.finalize(state_, plan_);
  }

 private:
  ExecutionBackend& backend_;
  KeyedAggregation plan_;
  std::vector<size_t> key_columns_;
  size_t expire_after_;
  size_t batch_ = 0;
  std::vector<size_t> last_seen_;
  Table state_;
};

class AggregateStateNode final : public StreamNode {
 public:
  /// With @p before, the parent's batches go through those row operations first.
  AggregateStateNode(StreamNode::Ptr parent, KeyedAggregation plan, size_t expire_after_batches, std::optional<RowOperations> before)
      : StreamNode(before ? before->name + ", update_state_by_key" : "update_state_by_key",
                   plan.result_schema(before ? before->output() : parent->schema()), parent->slide(), {parent}),
        plan_(std::move(plan)),
        input_schema_(before ? before->output() : parent->schema()),
        expire_after_(expire_after_batches),
        before_(std::move(before)) {}

  std::optional<Table> compute(StepContext& ctx) override {
    const Table* t = parent_output(0);
    if (!t) return std::nullopt;
    if (!state_) state_ = ctx.backend->make_state_aggregation(plan_, input_schema_, expire_after_);
    if (!before_) return state_->update(*t);
    if (t->schema() == before_->input)
      if (std::optional<Table> out = state_->update_row_chain(*t, before_->steps)) return out;
    return state_->update(before_->run(*t, ctx));
  }

 private:
  KeyedAggregation plan_;
  Schema input_schema_;
  size_t expire_after_;
  std::optional<RowOperations> before_;
  std::unique_ptr<StateAggregation> state_;
};

}  // namespace

std::unique_ptr<WindowAggregation> ExecutionBackend::make_window_aggregation(const KeyedAggregation& plan, const Schema& input,
                                                                             size_t panes) {
  return std::make_unique<PartialTableWindow>(*this, plan, input, panes);
}

std::unique_ptr<StateAggregation> ExecutionBackend::make_state_aggregation(const KeyedAggregation& plan, const Schema& input,
                                                                           size_t expire_after_batches) {
  return std::make_unique<PartialTableState>(*this, plan, input, expire_after_batches);
}

TableStream aggregate_by_key_and_window(const TableStream& input, KeyedAggregation plan, Duration window, Duration slide,
                                        std::optional<RowOperations> before) {
  check_window("reduce_by_key_and_window", window, slide, input.slide());
  if (before) check_row_operations("reduce_by_key_and_window", input.schema(), *before);
  return input.add(std::make_shared<AggregateWindowNode>(input.node(), std::move(plan), window, slide, std::move(before)));
}

TableStream aggregate_state_by_key(const TableStream& input, KeyedAggregation plan, size_t expire_after_batches,
                                   std::optional<RowOperations> before) {
  if (before) check_row_operations("update_state_by_key", input.schema(), *before);
  return input.add(std::make_shared<AggregateStateNode>(input.node(), std::move(plan), expire_after_batches, std::move(before)));
}

}  // namespace sluice
