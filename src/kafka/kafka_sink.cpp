// The Kafka sink: an output node that produces every batch to a topic with the idempotent
// producer and waits for the broker's acknowledgements before the batch ends, so that the
// context acknowledges (commits) the batch's input only after its output is durable. In
// transactional mode each output batch is one transaction that also carries the input
// offsets it covers.
#include <mutex>
#include <thread>

#include "kafka/kafka_common.hpp"
#include "kafka/kafka_source.hpp"
#include "sluice/context.hpp"
#include "sluice/error.hpp"
#include "sluice/kafka.hpp"
#include "sluice/log.hpp"

namespace sluice {

using namespace kafka_detail;

namespace {

struct ErrorDeleter {
  void operator()(rd_kafka_error_t* e) const { rd_kafka_error_destroy(e); }
};
using ErrorPtr = std::unique_ptr<rd_kafka_error_t, ErrorDeleter>;

struct GroupMetadataDeleter {
  void operator()(rd_kafka_consumer_group_metadata_t* m) const { rd_kafka_consumer_group_metadata_destroy(m); }
};

/// Text of one cell: strings as they are, other scalars in their JSON spelling.
void append_cell_text(const Column& c, size_t row, std::string& out) {
  if (!c.is_valid(row)) return;
  if (c.type() == TypeId::String) out.append(c.string_at(row));
  else c.append_json(row, out);
}

class KafkaSinkNode final : public StreamNode {
 public:
  KafkaSinkNode(StreamNode::Ptr parent, KafkaSinkOptions options, TransactionalOffsets* offsets,
                const StreamNode* offsets_source)
      : StreamNode("kafka sink '" + options.topic + "'", parent->schema(), parent->slide(), {parent}),
        options_(std::move(options)),
        offsets_(offsets),
        offsets_source_(offsets_source) {
    SLUICE_EXPECTS(!options_.brokers.empty(), name() + ": 'brokers' (bootstrap.servers) is empty");
    SLUICE_EXPECTS(!options_.topic.empty(), "kafka sink: 'topic' is empty");
    SLUICE_EXPECTS(options_.flush_timeout.count() > 0, name() + ": flush_timeout must be positive");
    const Schema& schema = parent->schema();
    if (!options_.key_field.empty()) {
      const int k = schema.find(options_.key_field);
      SLUICE_EXPECTS(k >= 0, name() + ": no key field '" + options_.key_field + "' in {" + schema.to_string() + "}");
      key_column_ = k;
    }
    for (size_t i = 0; i < schema.size(); ++i)
      if (static_cast<int>(i) != key_column_) value_columns_.push_back(i);
    for (const char* managed : {"enable.idempotence", "transactional.id"})
      SLUICE_EXPECTS(!options_.properties.count(managed),
                     name() + ": property '" + managed + "' is managed by sluice (set transactional_id for transactions)");
    std::map<std::string, std::string> defaults{{"bootstrap.servers", options_.brokers}, {"enable.idempotence", "true"}};
    if (transactional()) defaults["transactional.id"] = options_.transactional_id;
    conf_ = make_conf(name(), defaults, options_.properties);
    client_.who = name();
    client_.owner = this;
    attach_state(conf_.get(), &client_);
    rd_kafka_conf_set_dr_msg_cb(conf_.get(), &KafkaSinkNode::on_delivery);
  }

  ~KafkaSinkNode() override { close(); }

  void start(Time zero_time, Duration) override {
    covered_ = zero_time;
    char reason[512];
    rd_kafka_conf_t* conf = conf_.release();
    rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, reason, sizeof reason);
    if (!rk_) {
      rd_kafka_conf_destroy(conf);
      throw Error(name() + ": cannot create the producer: " + reason);
    }
    topic_ = rd_kafka_topic_new(rk_, options_.topic.c_str(), nullptr);
    if (transactional()) {
      ErrorPtr e(rd_kafka_init_transactions(rk_, static_cast<int>(options_.flush_timeout.count())));
      if (e) throw Error(name() + ": cannot initialise transactions for transactional_id '" + options_.transactional_id +
                         "': " + rd_kafka_error_string(e.get()));
    }
  }

  void stop() override { close(); }

  std::optional<Table> compute(StepContext& ctx) override {
    const Table* t = parent_output(0);
    if (!t) return std::nullopt;
    if (client_.fatal) throw Error(name() + ": the producer hit a fatal error (see the log above)");
    if (transactional()) {
      write_transaction(*t, ctx);
    } else {
      produce_all(*t, ctx);
      flush_and_check(t->num_rows());
    }
    return std::nullopt;
  }

 private:
  bool transactional() const { return !options_.transactional_id.empty(); }

  void close() {
    if (!rk_) return;
    if (rd_kafka_flush(rk_, static_cast<int>(options_.flush_timeout.count())) != RD_KAFKA_RESP_ERR_NO_ERROR)
      logging::warn(name() + ": " + std::to_string(rd_kafka_outq_len(rk_)) + " messages still unsent at shutdown");
    if (topic_) rd_kafka_topic_destroy(topic_);
    topic_ = nullptr;
    rd_kafka_destroy(rk_);
    rk_ = nullptr;
  }

  void produce_all(const Table& t, StepContext& ctx) {
    std::string key, value;
    for (size_t row = 0; row < t.num_rows(); ++row) {
      key.clear();
      value.clear();
      const bool has_key = key_column_ >= 0 && t.column(static_cast<size_t>(key_column_)).is_valid(row);
      if (has_key) append_cell_text(t.column(static_cast<size_t>(key_column_)), row, key);
      serialize_value(t, row, value);
      while (true) {
        const int rc = rd_kafka_produce(topic_, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, value.data(), value.size(),
                                        has_key ? key.data() : nullptr, has_key ? key.size() : 0, nullptr);
        if (rc == 0) break;
        const rd_kafka_resp_err_t err = rd_kafka_last_error();
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
          rd_kafka_poll(rk_, 10);  // the local queue drains as the broker acknowledges
          continue;
        }
        if (err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE) {
          ctx.report_malformed(name(), value, "message of " + std::to_string(value.size() + key.size()) +
                                                  " bytes exceeds the producer's message.max.bytes");
          break;
        }
        throw Error(name() + ": cannot produce: " + error_text(err));
      }
    }
    rd_kafka_poll(rk_, 0);
  }

  void serialize_value(const Table& t, size_t row, std::string& out) const {
    if (options_.value_format == KafkaValueFormat::Text) {
      bool first = true;
      for (size_t c : value_columns_) {
        if (!first) out += ',';
        first = false;
        append_cell_text(t.column(c), row, out);
      }
      return;
    }
    out += '{';
    bool first = true;
    for (size_t c : value_columns_) {
      if (!first) out += ',';
      first = false;
      out += value_to_json(std::string(t.schema()[c].name));
      out += ':';
      t.column(c).append_json(row, out);
    }
    out += '}';
  }

  /// Waits until every message of the batch is acknowledged; throws naming what failed.
  void flush_and_check(size_t rows) {
    const rd_kafka_resp_err_t err = rd_kafka_flush(rk_, static_cast<int>(options_.flush_timeout.count()));
    std::string failure;
    size_t failed = 0;
    {
      std::lock_guard lock(delivery_mutex_);
      failed = std::exchange(failed_, 0);
      failure = std::exchange(first_failure_, {});
    }
    if (failed)
      throw Error(name() + ": " + std::to_string(failed) + " of " + std::to_string(rows) +
                  " messages were not delivered: " + failure);
    if (err)
      throw Error(name() + ": " + std::to_string(rd_kafka_outq_len(rk_)) + " messages not acknowledged within " +
                  std::to_string(options_.flush_timeout.count()) + " ms: " + error_text(err));
  }

  /// One transaction: the batch's messages and the input offsets it covers.
  void write_transaction(const Table& t, StepContext& ctx) {
    check(rd_kafka_begin_transaction(rk_), "begin a transaction");
    try {
      produce_all(t, ctx);
      // Input batches whose every window ends at or before this output are covered.
      const StreamNode* self = this;
      const Time through = complete_through({&self, 1}, *offsets_source_, covered_, ctx.time, ctx.batch_interval,
                                            ctx.zero_time);
      PartitionListPtr offsets = offsets_->offsets_through(through);
      if (offsets) {
        std::unique_ptr<rd_kafka_consumer_group_metadata_t, GroupMetadataDeleter> group(offsets_->group_metadata());
        check(rd_kafka_send_offsets_to_transaction(rk_, offsets.get(), group.get(),
                                                   static_cast<int>(options_.flush_timeout.count())),
              "send the input offsets to the transaction");
      }
      commit_transaction();  // fails (and aborts) when any message of it was not delivered
      if (offsets) offsets_->offsets_committed(*offsets);
      covered_ = through;
    } catch (...) {
      ErrorPtr abort(rd_kafka_abort_transaction(rk_, static_cast<int>(options_.flush_timeout.count())));
      if (abort) logging::error(name() + ": aborting the transaction failed: " + rd_kafka_error_string(abort.get()));
      std::lock_guard lock(delivery_mutex_);
      failed_ = 0;
      first_failure_.clear();
      throw;
    }
  }

  void commit_transaction() {
    for (int attempt = 0;; ++attempt) {
      ErrorPtr e(rd_kafka_commit_transaction(rk_, static_cast<int>(options_.flush_timeout.count())));
      if (!e) return;
      if (rd_kafka_error_is_retriable(e.get()) && attempt < 5) continue;
      throw Error(name() + ": cannot commit the transaction: " + rd_kafka_error_string(e.get()));
    }
  }

  void check(rd_kafka_error_t* raw, const char* what) {
    ErrorPtr e(raw);
    if (e) throw Error(name() + ": cannot " + what + ": " + rd_kafka_error_string(e.get()));
  }

  static void on_delivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
    if (!m->err) return;
    auto* self = static_cast<KafkaSinkNode*>(static_cast<ClientState*>(opaque)->owner);
    std::lock_guard lock(self->delivery_mutex_);
    if (self->failed_++ == 0) self->first_failure_ = error_text(m->err);
  }

  KafkaSinkOptions options_;
  TransactionalOffsets* offsets_;
  const StreamNode* offsets_source_;
  int key_column_ = -1;
  std::vector<size_t> value_columns_;
  ClientState client_;
  ConfPtr conf_;
  rd_kafka_t* rk_ = nullptr;
  rd_kafka_topic_t* topic_ = nullptr;
  Time covered_{0};  // input batches up to here are committed with an earlier transaction
  std::mutex delivery_mutex_;
  size_t failed_ = 0;
  std::string first_failure_;
};

}  // namespace

void write_to_kafka(const TableStream& stream, KafkaSinkOptions options) {
  TransactionalOffsets* offsets = nullptr;
  const StreamNode* offsets_source = nullptr;
  const std::string sink = "kafka sink '" + options.topic + "'";
  if (!options.transactional_id.empty()) {
    SLUICE_EXPECTS(options.offsets_from.has_value(),
                   sink + ": a transactional sink needs offsets_from (the Kafka source whose offsets it commits)");
    auto* node = dynamic_cast<SourceNode*>(options.offsets_from->node().get());
    offsets = node ? dynamic_cast<TransactionalOffsets*>(&node->source()) : nullptr;
    SLUICE_EXPECTS(offsets != nullptr, sink + ": offsets_from must be a Kafka source stream, not '" +
                                           options.offsets_from->node()->name() + "'");
    SLUICE_EXPECTS(&options.offsets_from->context() == &stream.context(),
                   sink + ": offsets_from belongs to another streaming context");
    offsets_source = node;
  } else {
    SLUICE_EXPECTS(!options.offsets_from.has_value(), sink + ": offsets_from needs a transactional_id");
  }
  auto node = std::make_shared<KafkaSinkNode>(stream.node(), std::move(options), offsets, offsets_source);
  if (offsets) offsets->hand_commits_to_transactions(node->name());
  stream.context().add_output(node);
}

}  // namespace sluice
