// The Kafka source: a poll thread fills per-partition buffers with librdkafka messages; each
// batch takes records from every owned partition (capped by max_rate_per_partition) and
// remembers one offset range per partition; the ranges are committed once the context
// acknowledges the batch (every output that can include its records has run).
#include <algorithm>
#include <atomic>
#include <cmath>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "kafka/kafka_common.hpp"
#include "kafka/kafka_source.hpp"
#include "sluice/context.hpp"
#include "sluice/error.hpp"
#include "sluice/kafka.hpp"
#include "sluice/log.hpp"

namespace sluice {

using namespace kafka_detail;

const Schema& kafka_record_schema() {
  static const Schema schema{Field{"topic", TypeId::String, false, {}},    Field{"partition", TypeId::Int32, false, {}},
                             Field{"offset", TypeId::Int64, false, {}},    Field{"timestamp", TypeId::Int64, true, {}},
                             Field{"key", TypeId::String, true, {}},       Field{"value", TypeId::String, true, {}}};
  return schema;
}

namespace {

using TopicPartition = std::pair<std::string, int32_t>;

std::string describe(const TopicPartition& tp) { return tp.first + "[" + std::to_string(tp.second) + "]"; }

/// The next offset to commit for a partition, tagged with the assignment it was read under.
struct PartitionOffset {
  uint64_t epoch = 0;
  int64_t next = -1;
};

struct PartitionState {
  bool owned = false;
  bool started = false;     // assigned at least once in this run (start offsets applied)
  bool paused = false;
  uint64_t epoch = 0;       // bumped at every assignment: ranges of an older one are not ours
  std::deque<MessagePtr> records;
};

constexpr size_t kPollBurst = 4096;

class KafkaSource final : public Source, public TransactionalOffsets {
 public:
  explicit KafkaSource(KafkaSourceOptions options) : options_(std::move(options)) {
    SLUICE_EXPECTS(!options_.brokers.empty(), "kafka source: 'brokers' (bootstrap.servers) is empty");
    SLUICE_EXPECTS(options_.topics.empty() != options_.assign.empty(),
                   "kafka source: give either topics to subscribe to or partitions to assign, not " +
                       std::string(options_.topics.empty() ? "neither" : "both"));
    SLUICE_EXPECTS(options_.assign.empty() == false || !options_.group_id.empty(),
                   "kafka source: subscribing to topics needs a group_id (the consumer group)");
    SLUICE_EXPECTS(options_.max_rate_per_partition >= 0, "kafka source: max_rate_per_partition must not be negative");
    SLUICE_EXPECTS(options_.queue_capacity > 0, "kafka source: queue_capacity must be at least 1");
    for (const auto& t : options_.topics) SLUICE_EXPECTS(!t.empty(), "kafka source: an empty topic name");
    for (const auto& p : options_.assign)
      SLUICE_EXPECTS(!p.topic.empty() && p.partition >= 0,
                     "kafka source: bad partition to assign '" + p.topic + "[" + std::to_string(p.partition) + "]'");
    std::string what;
    for (const auto& t : options_.topics) what += (what.empty() ? "" : ",") + t;
    for (const auto& p : options_.assign) what += (what.empty() ? "" : ",") + describe({p.topic, p.partition});
    name_ = "kafka " + what;
    client_.who = name_;
    commits_enabled_ = !options_.group_id.empty();
    conf_ = build_conf();  // property errors surface here, at definition time
  }

  ~KafkaSource() override {
    stop();
    close();
  }

  std::string name() const override { return name_; }
  const Schema& schema() const override { return kafka_record_schema(); }

  void start(Time, Duration batch_interval) override {
    SLUICE_EXPECTS(conf_ != nullptr, name_ + ": a Kafka source can be started only once");
    interval_ = batch_interval;
    char reason[512];
    rd_kafka_conf_t* conf = conf_.release();
    rk_ = rd_kafka_new(RD_KAFKA_CONSUMER, conf, reason, sizeof reason);
    if (!rk_) {
      rd_kafka_conf_destroy(conf);
      throw Error(name_ + ": cannot create the consumer: " + reason);
    }
    rd_kafka_poll_set_consumer(rk_);
    if (!options_.topics.empty()) {
      PartitionListPtr topics(rd_kafka_topic_partition_list_new(static_cast<int>(options_.topics.size())));
      for (const auto& t : options_.topics) rd_kafka_topic_partition_list_add(topics.get(), t.c_str(), RD_KAFKA_PARTITION_UA);
      if (auto err = rd_kafka_subscribe(rk_, topics.get()))
        throw Error(name_ + ": cannot subscribe: " + error_text(err));
    } else {
      PartitionListPtr parts(rd_kafka_topic_partition_list_new(static_cast<int>(options_.assign.size())));
      {
        std::lock_guard lock(mutex_);
        for (const auto& p : options_.assign) {
          auto* e = rd_kafka_topic_partition_list_add(parts.get(), p.topic.c_str(), p.partition);
          e->offset = p.offset ? *p.offset : start_offset();
          PartitionState& s = partitions_[{p.topic, p.partition}];
          s.owned = s.started = true;
          s.epoch = ++epochs_;
        }
      }
      if (auto err = rd_kafka_assign(rk_, parts.get())) throw Error(name_ + ": cannot assign partitions: " + error_text(err));
    }
    poller_ = std::thread([this] { poll_loop(); });
  }

  void stop() override {
    stopping_ = true;
    if (poller_.joinable()) poller_.join();
  }

  void close() override {
    if (!rk_) return;
    commit_owned();
    {
      // Messages must be released before the client is destroyed.
      std::lock_guard lock(mutex_);
      for (auto& [tp, s] : partitions_) s.records.clear();
      buffered_ = 0;
    }
    closing_ = true;
    if (auto err = rd_kafka_consumer_close(rk_)) logging::warn(name_ + ": closing the consumer: " + error_text(err));
    rd_kafka_destroy(rk_);
    rk_ = nullptr;
  }

  Table next_batch(Time batch_time) override {
    if (client_.fatal) throw Error(name_ + ": the consumer hit a fatal error (see the log above)");
    std::vector<Column> columns;
    for (const auto& f : kafka_record_schema()) columns.push_back(Column::make_for(f));
    std::vector<MessagePtr> taken;
    std::vector<TopicPartition> to_resume;
    std::vector<RejectedRecord> rejected;
    {
      std::lock_guard lock(mutex_);
      const size_t limit = per_batch_limit();
      const size_t cap = per_partition_capacity();
      std::vector<std::pair<TopicPartition, PartitionOffset>> ranges;
      for (auto& [tp, s] : partitions_) {
        if (!s.owned || s.records.empty()) {
          if (s.owned && s.paused) to_resume.push_back(tp);
          continue;
        }
        const size_t n = std::min(limit, s.records.size());
        for (size_t i = 0; i < n; ++i) {
          taken.push_back(std::move(s.records.front()));
          s.records.pop_front();
        }
        ranges.push_back({tp, PartitionOffset{s.epoch, taken.back()->offset + 1}});
        if (s.paused && s.records.size() <= cap / 2) to_resume.push_back(tp);
      }
      buffered_ -= taken.size();
      if (!ranges.empty()) in_flight_[batch_time] = std::move(ranges);
    }
    size_t chars = 0;
    for (const auto& m : taken) chars += m->len;
    columns[5].reserve(taken.size(), chars);
    for (auto& c : columns) c.reserve(taken.size());
    size_t delivered = 0;
    for (const auto& m : taken) {
      const char* topic = rd_kafka_topic_name(m->rkt);
      if (options_.max_value_bytes && m->len > options_.max_value_bytes) {
        rejected.push_back({std::string(topic) + "[" + std::to_string(m->partition) + "]@" + std::to_string(m->offset),
                            "value of " + std::to_string(m->len) + " bytes exceeds max_value_bytes (" +
                                std::to_string(options_.max_value_bytes) + ")"});
        continue;
      }
      ++delivered;
      columns[0].append_string(topic);
      columns[1].append<int32_t>(m->partition);
      columns[2].append<int64_t>(m->offset);
      rd_kafka_timestamp_type_t type;
      const int64_t ts = rd_kafka_message_timestamp(m.get(), &type);
      if (type == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE) columns[3].append_null();
      else columns[3].append<int64_t>(ts);
      if (m->key) columns[4].append_string({static_cast<const char*>(m->key), m->key_len});
      else columns[4].append_null();
      if (m->payload) columns[5].append_string({static_cast<const char*>(m->payload), m->len});
      else columns[5].append_null();
    }
    taken.clear();
    resume(to_resume);
    delivered_ += delivered;
    if (!rejected.empty()) {
      std::lock_guard lock(mutex_);
      for (auto& r : rejected) rejected_.push_back(std::move(r));
    }
    return Table(kafka_record_schema(), std::move(columns));
  }

  bool has_pending() const override {
    std::lock_guard lock(mutex_);
    return buffered_ > 0;
  }

  SourceCounters counters() const override {
    SourceCounters c;
    c.records = delivered_.load();
    c.errors = client_.errors.load() + consumer_errors_.load();
    std::lock_guard lock(mutex_);
    for (const auto& [tp, s] : partitions_) c.buffered += s.records.size();
    return c;
  }

  std::vector<RejectedRecord> take_rejected() override {
    std::lock_guard lock(mutex_);
    return std::exchange(rejected_, {});
  }

  void commit_through(Time batch_time) override {
    {
      std::lock_guard lock(mutex_);
      fold_ranges_through(batch_time);
      if (transactional_) return;  // the sink's transactions carry the offsets
    }
    commit_owned();
  }

  // ---- TransactionalOffsets ----
  void hand_commits_to_transactions(const std::string& sink_name) override {
    std::lock_guard lock(mutex_);
    SLUICE_EXPECTS(!transactional_, name_ + ": its offsets are already committed by another transactional sink ('" +
                                        transaction_sink_ + "'); a source can feed only one");
    SLUICE_EXPECTS(commits_enabled_, name_ + ": a transactional sink needs the source to have a group_id");
    transactional_ = true;
    transaction_sink_ = sink_name;
  }

  PartitionListPtr offsets_through(Time batch_time) override {
    std::lock_guard lock(mutex_);
    fold_ranges_through(batch_time);
    return owned_uncommitted();
  }

  void offsets_committed(const rd_kafka_topic_partition_list_t& offsets) override {
    std::lock_guard lock(mutex_);
    mark_committed(offsets);
  }

  rd_kafka_consumer_group_metadata_t* group_metadata() override {
    SLUICE_EXPECTS(rk_ != nullptr, name_ + ": the consumer is not running");
    return rd_kafka_consumer_group_metadata(rk_);
  }

 private:
  ConfPtr build_conf() {
    std::map<std::string, std::string> defaults{
        {"bootstrap.servers", options_.brokers},
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        {"auto.offset.reset", options_.start == KafkaStart::Latest ? "latest" : "earliest"},
        {"enable.partition.eof", "false"},
    };
    if (commits_enabled_) defaults["group.id"] = options_.group_id;
    else defaults["group.id"] = "sluice-unmanaged";  // assign() needs one; nothing is committed under it
    for (const char* managed : {"group.id", "enable.auto.commit", "enable.auto.offset.store", "enable.partition.eof"})
      if (options_.properties.count(managed))
        throw Error(name_ + ": property '" + managed + "' is managed by sluice" +
                    (std::string(managed) == "group.id" ? ": set group_id instead" : " (offsets are committed after outputs)"));
    ConfPtr conf = make_conf(name_, defaults, options_.properties);
    client_.owner = this;
    attach_state(conf.get(), &client_);
    rd_kafka_conf_set_rebalance_cb(conf.get(), &KafkaSource::on_rebalance);
    return conf;
  }

  int64_t start_offset() const {
    switch (options_.start) {
      case KafkaStart::Earliest: return RD_KAFKA_OFFSET_BEGINNING;
      case KafkaStart::Latest: return RD_KAFKA_OFFSET_END;
      case KafkaStart::Committed: break;
    }
    return RD_KAFKA_OFFSET_INVALID;  // the committed offset, else auto.offset.reset
  }

  size_t per_batch_limit() const {
    if (options_.max_rate_per_partition <= 0) return SIZE_MAX;
    const double n = std::floor(options_.max_rate_per_partition * static_cast<double>(interval_.count()) / 1000.0);
    return std::max<size_t>(1, static_cast<size_t>(n));
  }

  size_t per_partition_capacity() const {
    size_t owned = 0;
    for (const auto& [tp, s] : partitions_) owned += s.owned;
    return std::max<size_t>(1, options_.queue_capacity / std::max<size_t>(1, owned));
  }

  void poll_loop() {
    while (!stopping_) {
      if (client_.fatal) break;
      MessagePtr first(rd_kafka_consumer_poll(rk_, 100));
      if (!first) continue;
      polled_.push_back(std::move(first));
      while (polled_.size() < kPollBurst) {
        MessagePtr m(rd_kafka_consumer_poll(rk_, 0));
        if (!m) break;
        polled_.push_back(std::move(m));
      }
      deliver_polled();
    }
    deliver_polled();
  }

  /// Moves polled messages into their partitions' buffers (poll thread; also called from
  /// the rebalance callback so that no message crosses an assignment change).
  void deliver_polled() {
    if (polled_.empty()) return;
    std::vector<TopicPartition> to_pause;
    {
      std::lock_guard lock(mutex_);
      const size_t cap = per_partition_capacity();
      for (auto& m : polled_) {
        if (m->err) {
          on_consumer_error(*m);
          continue;
        }
        auto it = partitions_.find({rd_kafka_topic_name(m->rkt), m->partition});
        if (it == partitions_.end() || !it->second.owned) continue;  // revoked meanwhile
        PartitionState& s = it->second;
        s.records.push_back(std::move(m));
        ++buffered_;
        if (!s.paused && s.records.size() >= cap) {
          s.paused = true;
          to_pause.push_back(it->first);
        }
      }
    }
    polled_.clear();
    if (!to_pause.empty()) {
      PartitionListPtr list = to_list(to_pause);
      rd_kafka_pause_partitions(rk_, list.get());
      logging::debug(name_ + ": paused " + std::to_string(to_pause.size()) + " partitions (buffer full)");
    }
  }

  void resume(const std::vector<TopicPartition>& tps) {
    if (tps.empty() || !rk_) return;
    {
      std::lock_guard lock(mutex_);
      for (const auto& tp : tps) partitions_[tp].paused = false;
    }
    PartitionListPtr list = to_list(tps);
    rd_kafka_resume_partitions(rk_, list.get());
  }

  static PartitionListPtr to_list(const std::vector<TopicPartition>& tps) {
    PartitionListPtr list(rd_kafka_topic_partition_list_new(static_cast<int>(tps.size())));
    for (const auto& [topic, partition] : tps) rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), partition);
    return list;
  }

  void on_consumer_error(const rd_kafka_message_t& m) {
    consumer_errors_++;
    const std::string topic = m.rkt ? rd_kafka_topic_name(m.rkt) : "";
    const std::string text = rd_kafka_message_errstr(&m);
    // The same error repeats while it lasts (an unknown topic is retried): log it once.
    if (logged_errors_.insert(std::to_string(m.err) + "/" + topic).second)
      logging::warn(name_ + ": " + rd_kafka_err2name(m.err) + (topic.empty() ? "" : " on topic '" + topic + "'") + ": " + text);
  }

  static void on_rebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts, void* opaque) {
    auto* self = static_cast<KafkaSource*>(static_cast<ClientState*>(opaque)->owner);
    self->deliver_polled();
    const bool cooperative = std::string(rd_kafka_rebalance_protocol(rk)) == "COOPERATIVE";
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
      self->on_assigned(*parts);
      if (cooperative) {
        if (rd_kafka_error_t* e = rd_kafka_incremental_assign(rk, parts)) {
          logging::error(self->name_ + ": incremental assign failed: " + rd_kafka_error_string(e));
          rd_kafka_error_destroy(e);
        }
      } else {
        rd_kafka_assign(rk, parts);
      }
      rd_kafka_resume_partitions(rk, parts);  // a partition paused under an earlier assignment starts fresh
    } else {
      if (err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS)
        logging::warn(self->name_ + ": rebalance error " + error_text(err) + ": dropping the assignment");
      self->on_revoked(*parts);
      if (cooperative) {
        if (rd_kafka_error_t* e = rd_kafka_incremental_unassign(rk, parts)) {
          logging::error(self->name_ + ": incremental unassign failed: " + rd_kafka_error_string(e));
          rd_kafka_error_destroy(e);
        }
      } else {
        rd_kafka_assign(rk, nullptr);
      }
    }
  }

  void on_assigned(rd_kafka_topic_partition_list_t& parts) {
    std::lock_guard lock(mutex_);
    for (int i = 0; i < parts.cnt; ++i) {
      auto& e = parts.elems[i];
      PartitionState& s = partitions_[{e.topic, e.partition}];
      s.owned = true;
      s.paused = false;
      s.epoch = ++epochs_;
      s.records.clear();
      if (!s.started) e.offset = start_offset();  // later assignments resume from the committed offset
      s.started = true;
    }
    logging::info(name_ + ": assigned " + std::to_string(parts.cnt) + " partitions");
  }

  void on_revoked(const rd_kafka_topic_partition_list_t& parts) {
    // Offsets whose outputs are complete are committed before the partitions go; records
    // still in flight are not: their next owner reads them again (at-least-once).
    if (!closing_) commit_owned();
    std::lock_guard lock(mutex_);
    for (int i = 0; i < parts.cnt; ++i) {
      auto it = partitions_.find({parts.elems[i].topic, parts.elems[i].partition});
      if (it == partitions_.end()) continue;
      buffered_ -= it->second.records.size();
      it->second.records.clear();
      it->second.owned = false;
      it->second.paused = false;
      committable_.erase(it->first);
    }
    logging::info(name_ + ": revoked " + std::to_string(parts.cnt) + " partitions");
  }

  /// Folds the ranges of acknowledged batches into committable_ (caller holds mutex_).
  void fold_ranges_through(Time batch_time) {
    auto end = in_flight_.upper_bound(batch_time);
    for (auto it = in_flight_.begin(); it != end; ++it) {
      for (const auto& [tp, offset] : it->second) {
        auto p = partitions_.find(tp);
        if (p == partitions_.end() || !p->second.owned || p->second.epoch != offset.epoch) continue;
        PartitionOffset& c = committable_[tp];
        if (c.epoch != offset.epoch || offset.next > c.next) c = offset;
      }
    }
    in_flight_.erase(in_flight_.begin(), end);
  }

  /// Offsets of owned partitions that are ahead of the last commit (caller holds mutex_).
  PartitionListPtr owned_uncommitted() {
    std::vector<std::pair<TopicPartition, int64_t>> out;
    for (const auto& [tp, c] : committable_) {
      auto p = partitions_.find(tp);
      if (p == partitions_.end() || !p->second.owned || p->second.epoch != c.epoch) continue;
      auto done = committed_.find(tp);
      if (done != committed_.end() && done->second >= c.next) continue;
      out.push_back({tp, c.next});
    }
    if (out.empty()) return nullptr;
    PartitionListPtr list(rd_kafka_topic_partition_list_new(static_cast<int>(out.size())));
    for (const auto& [tp, next] : out)
      rd_kafka_topic_partition_list_add(list.get(), tp.first.c_str(), tp.second)->offset = next;
    return list;
  }

  void mark_committed(const rd_kafka_topic_partition_list_t& offsets) {
    for (int i = 0; i < offsets.cnt; ++i) {
      const auto& e = offsets.elems[i];
      if (e.err) continue;
      int64_t& c = committed_[{e.topic, e.partition}];
      c = std::max(c, e.offset);
    }
  }

  /// Commits committable offsets of owned partitions (synchronously; failures are logged
  /// and retried at the next acknowledgement).
  void commit_owned() {
    if (!rk_ || !commits_enabled_) return;
    PartitionListPtr list;
    {
      std::lock_guard lock(mutex_);
      if (transactional_) return;
      list = owned_uncommitted();
    }
    if (!list) return;
    const rd_kafka_resp_err_t err = rd_kafka_commit(rk_, list.get(), /*async=*/0);
    if (err) {
      client_.errors++;
      logging::warn(name_ + ": offset commit failed (retried after the next batch): " + error_text(err));
      return;
    }
    std::lock_guard lock(mutex_);
    mark_committed(*list);
  }

  KafkaSourceOptions options_;
  std::string name_;
  ClientState client_;
  bool commits_enabled_ = true;
  ConfPtr conf_;
  rd_kafka_t* rk_ = nullptr;
  Duration interval_{1000};
  std::thread poller_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> closing_{false};
  std::vector<MessagePtr> polled_;             // poll thread only
  std::set<std::string> logged_errors_;        // poll thread only
  std::atomic<size_t> delivered_{0};
  std::atomic<size_t> consumer_errors_{0};

  mutable std::mutex mutex_;
  std::map<TopicPartition, PartitionState> partitions_;
  size_t buffered_ = 0;
  uint64_t epochs_ = 0;
  std::map<Time, std::vector<std::pair<TopicPartition, PartitionOffset>>> in_flight_;  // cut, not yet acknowledged
  std::map<TopicPartition, PartitionOffset> committable_;
  std::map<TopicPartition, int64_t> committed_;
  std::vector<RejectedRecord> rejected_;
  bool transactional_ = false;
  std::string transaction_sink_;
};

}  // namespace

std::unique_ptr<Source> make_kafka_source(KafkaSourceOptions options) {
  return std::make_unique<KafkaSource>(std::move(options));
}

TableStream kafka_stream(StreamingContext& context, KafkaSourceOptions options) {
  return context.add_source(make_kafka_source(std::move(options)));
}

}  // namespace sluice
