#include <deque>

#include "sluice/source.hpp"

namespace sluice {
namespace {

/// In-memory batches, Spark's queueStream: one per batch time, or all at once.
class QueueSource final : public Source {
 public:
  QueueSource(Schema schema, std::vector<Table> batches, bool one_at_a_time)
      : schema_(std::move(schema)), one_at_a_time_(one_at_a_time) {
    for (size_t i = 0; i < batches.size(); ++i) {
      const Table& b = batches[i];
      bool ok = b.num_columns() == schema_.size();
      for (size_t c = 0; ok && c < schema_.size(); ++c) ok = b.column(c).type() == schema_[c].type;
      SLUICE_EXPECTS(ok, "queue_stream: batch " + std::to_string(i) + " has fields {" + b.schema().to_string() +
                             "}, expected {" + schema_.to_string() + "}");
      batches_.push_back(std::move(batches[i]).with_schema(schema_));
    }
  }
  std::string name() const override { return "queue_stream"; }
  const Schema& schema() const override { return schema_; }
  Table next_batch(Time) override {
    if (batches_.empty()) return Table::empty(schema_);
    if (one_at_a_time_) {
      Table t = std::move(batches_.front());
      batches_.pop_front();
      delivered_ += t.num_rows();
      return t;
    }
    std::vector<Table> all(std::make_move_iterator(batches_.begin()), std::make_move_iterator(batches_.end()));
    batches_.clear();
    Table t = Table::concat(all).with_schema(schema_);
    delivered_ += t.num_rows();
    return t;
  }
  bool finished() const override { return batches_.empty(); }
  SourceCounters counters() const override { return SourceCounters{delivered_, 0, 0}; }

 private:
  Schema schema_;
  bool one_at_a_time_;
  std::deque<Table> batches_;
  size_t delivered_ = 0;
};

}  // namespace

std::unique_ptr<Source> make_queue_source(Schema schema, std::vector<Table> batches, bool one_at_a_time) {
  return std::make_unique<QueueSource>(std::move(schema), std::move(batches), one_at_a_time);
}

}  // namespace sluice
