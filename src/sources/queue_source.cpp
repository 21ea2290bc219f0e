#include <atomic>
#include <deque>

#include "sluice/source.hpp"

namespace sluice {
namespace {

/// In-memory batches, Spark's queueStream: one per batch time, or all at the first.
class QueueSource final : public Source {
 public:
  QueueSource(Schema schema, std::vector<Table> batches, bool one_at_a_time)
      : schema_(std::move(schema)), one_at_a_time_(one_at_a_time) {
    for (size_t i = 0; i < batches.size(); ++i) {
      const Table& batch = batches[i];
      bool same_types = batch.num_columns() == schema_.size();
      for (size_t c = 0; same_types && c < schema_.size(); ++c) same_types = batch.column(c).type() == schema_[c].type;
      SLUICE_EXPECTS(same_types, "queue_stream: batch " + std::to_string(i) + " has fields {" +
                                     batch.schema().to_string() + "}, expected the types of {" + schema_.to_string() +
                                     "}");
      // Field names come from the stream's schema, so batches built with other names still fit.
      batches_.push_back(std::move(batches[i]).with_schema(schema_));
    }
  }

  std::string name() const override { return "queue_stream"; }
  const Schema& schema() const override { return schema_; }

  Table next_batch(Time) override {
    if (batches_.empty()) return Table::empty(schema_);
    Table batch;
    if (one_at_a_time_) {
      batch = std::move(batches_.front());
      batches_.pop_front();
    } else {
      std::vector<Table> all(std::make_move_iterator(batches_.begin()), std::make_move_iterator(batches_.end()));
      batches_.clear();
      batch = Table::concat(all).with_schema(schema_);
    }
    delivered_.fetch_add(batch.num_rows());
    return batch;
  }

  bool finished() const override { return batches_.empty(); }
  SourceCounters counters() const override { return SourceCounters{delivered_.load(), 0, 0}; }

 private:
  Schema schema_;
  bool one_at_a_time_;
  std::deque<Table> batches_;
  std::atomic<size_t> delivered_{0};
};

}  // namespace

std::unique_ptr<Source> make_queue_source(Schema schema, std::vector<Table> batches, bool one_at_a_time) {
  return std::make_unique<QueueSource>(std::move(schema), std::move(batches), one_at_a_time);
}

}  // namespace sluice
