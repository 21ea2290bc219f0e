#pragma once
// Shared librdkafka plumbing for the Kafka source and sink: configuration with errors that
// name the property, and librdkafka's log and error callbacks routed to sluice::logging.

#include <librdkafka/rdkafka.h>

#include <atomic>
#include <map>
#include <memory>
#include <string>

namespace sluice::kafka_detail {

struct ConfDeleter {
  void operator()(rd_kafka_conf_t* c) const { rd_kafka_conf_destroy(c); }
};
using ConfPtr = std::unique_ptr<rd_kafka_conf_t, ConfDeleter>;

struct PartitionListDeleter {
  void operator()(rd_kafka_topic_partition_list_t* l) const { rd_kafka_topic_partition_list_destroy(l); }
};
using PartitionListPtr = std::unique_ptr<rd_kafka_topic_partition_list_t, PartitionListDeleter>;

struct MessageDeleter {
  void operator()(rd_kafka_message_t* m) const { rd_kafka_message_destroy(m); }
};
using MessagePtr = std::unique_ptr<rd_kafka_message_t, MessageDeleter>;

/// Sets @p key on @p conf; throws sluice::Error "WHO: property 'KEY' = 'VALUE': REASON".
void set_property(rd_kafka_conf_t* conf, const std::string& who, const std::string& key, const std::string& value);

/// A configuration with sluice's log and error callbacks, @p defaults, then @p user
/// properties (which win). @p who names the client in errors and logs.
ConfPtr make_conf(const std::string& who, const std::map<std::string, std::string>& defaults,
                  const std::map<std::string, std::string>& user);

/// Counts errors reported through librdkafka's error callback (opaque of the client).
struct ClientState {
  std::string who;
  void* owner = nullptr;  // the source or sink the client belongs to (its callbacks' target)
  std::atomic<size_t> errors{0};
  std::atomic<bool> fatal{false};
};

/// Installs @p state as the client's opaque (its error callback counts into it).
void attach_state(rd_kafka_conf_t* conf, ClientState* state);

std::string error_text(rd_kafka_resp_err_t err);

}  // namespace sluice::kafka_detail
