// KafkaMockCluster: librdkafka's in-process mock cluster, which listens on loopback and
// speaks the Kafka wire protocol to any client.
#include "kafka/kafka_common.hpp"  // rdkafka.h, which rdkafka_mock.h needs first

#include <librdkafka/rdkafka_mock.h>

#include <vector>

#include "sluice/error.hpp"
#include "sluice/kafka.hpp"

namespace sluice {

using namespace kafka_detail;

struct KafkaMockCluster::Impl {
  rd_kafka_t* rk = nullptr;  // the handle the mock cluster lives on
  rd_kafka_mock_cluster_t* cluster = nullptr;
  ClientState state;
};

KafkaMockCluster::KafkaMockCluster(int brokers) : impl_(std::make_unique<Impl>()) {
  SLUICE_EXPECTS(brokers >= 1, "kafka mock cluster: needs at least one broker, got " + std::to_string(brokers));
  impl_->state.who = "kafka mock cluster";
  ConfPtr conf = make_conf(impl_->state.who, {{"log_level", "3"}}, {});  // its handle connects nowhere: no warnings
  attach_state(conf.get(), &impl_->state);
  char reason[512];
  rd_kafka_conf_t* raw = conf.release();
  impl_->rk = rd_kafka_new(RD_KAFKA_PRODUCER, raw, reason, sizeof reason);
  if (!impl_->rk) {
    rd_kafka_conf_destroy(raw);
    throw Error(std::string("kafka mock cluster: cannot create its handle: ") + reason);
  }
  impl_->cluster = rd_kafka_mock_cluster_new(impl_->rk, brokers);
  if (!impl_->cluster) {
    rd_kafka_destroy(impl_->rk);
    throw Error("kafka mock cluster: cannot start " + std::to_string(brokers) + " brokers");
  }
}

KafkaMockCluster::~KafkaMockCluster() {
  rd_kafka_mock_cluster_destroy(impl_->cluster);
  rd_kafka_destroy(impl_->rk);
}

std::string KafkaMockCluster::bootstrap_servers() const { return rd_kafka_mock_cluster_bootstraps(impl_->cluster); }

void KafkaMockCluster::create_topic(const std::string& topic, int partitions, int replication_factor) {
  if (auto err = rd_kafka_mock_topic_create(impl_->cluster, topic.c_str(), partitions, replication_factor))
    throw Error("kafka mock cluster: cannot create topic '" + topic + "' (" + std::to_string(partitions) +
                " partitions): " + error_text(err));
}

void KafkaMockCluster::set_broker_down(int broker_id) {
  if (auto err = rd_kafka_mock_broker_set_down(impl_->cluster, broker_id))
    throw Error("kafka mock cluster: cannot take broker " + std::to_string(broker_id) + " down: " + error_text(err));
}

void KafkaMockCluster::set_broker_up(int broker_id) {
  if (auto err = rd_kafka_mock_broker_set_up(impl_->cluster, broker_id))
    throw Error("kafka mock cluster: cannot bring broker " + std::to_string(broker_id) + " up: " + error_text(err));
}

void KafkaMockCluster::set_partition_leader(const std::string& topic, int32_t partition, int broker_id) {
  if (auto err = rd_kafka_mock_partition_set_leader(impl_->cluster, topic.c_str(), partition, broker_id))
    throw Error("kafka mock cluster: cannot move the leader of " + topic + "[" + std::to_string(partition) +
                "] to broker " + std::to_string(broker_id) + ": " + error_text(err));
}

void KafkaMockCluster::set_topic_error(const std::string& topic, int error_code) {
  rd_kafka_mock_topic_set_error(impl_->cluster, topic.c_str(), static_cast<rd_kafka_resp_err_t>(error_code));
}

void KafkaMockCluster::push_request_errors(int16_t api_key, int count, int error_code) {
  SLUICE_EXPECTS(count >= 0, "kafka mock cluster: negative error count");
  std::vector<rd_kafka_resp_err_t> errors(static_cast<size_t>(count), static_cast<rd_kafka_resp_err_t>(error_code));
  rd_kafka_mock_push_request_errors_array(impl_->cluster, api_key, errors.size(), errors.data());
}

}  // namespace sluice
