#pragma once
/// @file kafka.hpp
/// @brief Kafka source and sink on librdkafka, after Spark's Kafka direct stream: each batch
/// is one offset range per partition, and offsets are committed to Kafka only once every
/// output that can include the batch's records has been written (at-least-once). A
/// transactional sink commits the offsets inside its producer transaction instead
/// (exactly-once output for read_committed consumers).
///
/// Delivery guarantees, by mode:
/// - Source alone, or with a non-transactional sink: at-least-once. Records of a batch
///   whose outputs were not all written (crash, kill, failed batch) are read again on
///   restart, so they may appear twice in outputs; none is lost. A sink flushes every
///   batch before its offsets are committed; its idempotent producer keeps broker-side
///   retries from duplicating or reordering messages.
/// - Transactional sink (transactional_id and offsets_from set): each output batch and
///   the offsets of the input it covers are committed in one transaction, so a
///   read_committed consumer of the output topic sees every input record's effect exactly
///   once, across crashes and restarts, for stateless pipelines and tumbling windows. For
///   sliding windows and update_state_by_key, window panes and state are not checkpointed:
///   a restart rebuilds them from the uncommitted input only.
///
/// @code
/// sluice::KafkaSourceOptions in;
/// in.brokers = "localhost:9092";
/// in.topics = {"events"};
/// in.group_id = "counter";
/// auto events = sluice::kafka_stream(ctx, in);            // {topic, partition, offset, timestamp, key, value}
/// sluice::KafkaSinkOptions out;
/// out.brokers = "localhost:9092";
/// out.topic = "counts";
/// sluice::write_to_kafka(counts, out);
/// @endcode

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sluice/source.hpp"
#include "sluice/stream_graph.hpp"

namespace sluice {

class StreamingContext;

/// @brief Where a consumer starts reading a partition the first time this run gets it.
enum class KafkaStart {
  Committed,  ///< the group's committed offset; auto.offset.reset (earliest unless set) without one
  Earliest,   ///< the first offset still in the log, ignoring committed offsets
  Latest,     ///< the end of the log, ignoring committed offsets
};

/// @brief One explicitly assigned partition, with an optional starting offset.
struct KafkaPartition {
  std::string topic;
  int32_t partition = 0;
  /// Offset to start from; none: follow KafkaSourceOptions::start.
  std::optional<int64_t> offset;
};

struct KafkaSourceOptions {
  /// bootstrap.servers: "host:port[,host:port...]".
  std::string brokers;
  /// Subscribe to these topics (a name starting with '^' is a regex pattern) ...
  std::vector<std::string> topics;
  /// ... or read exactly these partitions (no group rebalancing; offsets still committed to
  /// group_id when one is given).
  std::vector<KafkaPartition> assign;
  /// group.id; required with topics. Offsets are committed under it.
  std::string group_id;
  KafkaStart start = KafkaStart::Committed;
  /// Records per partition per second of batch time; 0: no cap. A batch takes at most
  /// rate x interval records from each partition; the rest wait for later batches.
  double max_rate_per_partition = 0;
  /// Records buffered between batches (all partitions) before partitions are paused: the
  /// consumer stops fetching instead of growing memory when the engine falls behind.
  size_t queue_capacity = 1 << 20;
  /// Values larger than this are not delivered: they are counted as malformed and sent to
  /// the dead-letter sink with their topic, partition and offset. 0: no limit.
  size_t max_value_bytes = 16 << 20;
  /// Further librdkafka properties, passed through as given (security.protocol,
  /// sasl.*, ssl.*, client.id, fetch.max.bytes, isolation.level ...).
  std::map<std::string, std::string> properties;
};

/// @brief How the sink writes a record's value.
enum class KafkaValueFormat {
  Json,  ///< the record (minus the key field) as a JSON object
  Text,  ///< the value fields' text, joined by ',' (strings unquoted)
};

struct KafkaSinkOptions {
  std::string brokers;
  std::string topic;
  /// Field whose text becomes the message key; empty: no key (the producer's partitioner
  /// spreads records).
  std::string key_field;
  KafkaValueFormat value_format = KafkaValueFormat::Json;
  /// Set for exactly-once output: the sink runs one producer transaction per output batch.
  std::string transactional_id;
  /// With transactional_id: the Kafka source stream whose offsets are committed inside
  /// the sink's transactions (the source then commits nothing itself).
  std::optional<TableStream> offsets_from;
  /// How long a batch may wait for its messages to be acknowledged before it fails.
  Duration flush_timeout{30000};
  /// Further librdkafka producer properties (compression.type, client.id, security ...).
  std::map<std::string, std::string> properties;
};

/// @brief The schema of a Kafka source's records: {topic: string, partition: int32,
/// offset: int64, timestamp: int64 (ms since the epoch; null when the broker has none),
/// key: string (nullable), value: string (nullable: a tombstone)}.
const Schema& kafka_record_schema();

/// @brief A Kafka source: one offset range per partition per batch. Throws sluice::Error
/// for options that cannot work (no brokers, neither topics nor assign, a topic subscription
/// without a group, a property librdkafka rejects: the message names the property).
/// Unreachable brokers and unknown topics are not fatal: they are logged and counted in
/// counters().errors while the consumer keeps retrying.
std::unique_ptr<Source> make_kafka_source(KafkaSourceOptions options);

/// @brief Adds a Kafka source to @p context (records of kafka_record_schema()).
TableStream kafka_stream(StreamingContext& context, KafkaSourceOptions options);

/// @brief Writes every batch of @p stream to a topic, flushed before the batch ends (so
/// before its input offsets are committed). A message the broker refuses permanently fails
/// the batch with the topic, the error and the record count; a message too large for the
/// producer's message.max.bytes is dead-lettered and counted instead.
void write_to_kafka(const TableStream& stream, KafkaSinkOptions options);

/// @brief A Kafka cluster inside this process that speaks the real wire protocol on
/// loopback (librdkafka's mock cluster): for tests, examples and benchmarks without a broker.
/// Any Kafka client (kcat, Java, Python) can connect to bootstrap_servers().
class KafkaMockCluster {
 public:
  explicit KafkaMockCluster(int brokers = 3);
  ~KafkaMockCluster();
  KafkaMockCluster(const KafkaMockCluster&) = delete;
  KafkaMockCluster& operator=(const KafkaMockCluster&) = delete;

  /// "127.0.0.1:port,..." for bootstrap.servers.
  std::string bootstrap_servers() const;
  void create_topic(const std::string& topic, int partitions, int replication_factor = 1);
  /// Fault injection.
  void set_broker_down(int broker_id);
  void set_broker_up(int broker_id);
  void set_partition_leader(const std::string& topic, int32_t partition, int broker_id);
  /// Metadata requests for @p topic answer with Kafka error @p error_code (e.g. 3,
  /// UNKNOWN_TOPIC_OR_PARTITION: the mock cluster otherwise creates topics on first use).
  void set_topic_error(const std::string& topic, int error_code);
  /// The next @p count requests of Kafka API @p api_key (e.g. 1 = Fetch, 8 = OffsetCommit)
  /// fail with Kafka error code @p error_code.
  void push_request_errors(int16_t api_key, int count, int error_code);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice
