#pragma once
// The Kafka source's interface to the transactional sink, which commits the source's
// offsets inside its producer transactions.

#include <librdkafka/rdkafka.h>

#include "kafka/kafka_common.hpp"
#include "sluice/types.hpp"

namespace sluice::kafka_detail {

/// Implemented by the Kafka source.
class TransactionalOffsets {
 public:
  virtual ~TransactionalOffsets() = default;
  /// From now on the source commits nothing itself; a transactional sink does.
  virtual void hand_commits_to_transactions(const std::string& sink_name) = 0;
  /// Next offsets (last consumed + 1) of the partitions this member still owns, covering
  /// the batches up to @p batch_time, that are ahead of what was committed; null when none.
  virtual PartitionListPtr offsets_through(Time batch_time) = 0;
  /// The offsets in @p offsets were committed (by a transaction).
  virtual void offsets_committed(const rd_kafka_topic_partition_list_t& offsets) = 0;
  /// The consumer's group metadata for rd_kafka_send_offsets_to_transaction (caller frees).
  virtual rd_kafka_consumer_group_metadata_t* group_metadata() = 0;
};

}  // namespace sluice::kafka_detail
