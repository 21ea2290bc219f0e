#include "kafka/kafka_common.hpp"

#include "sluice/error.hpp"
#include "sluice/log.hpp"

namespace sluice::kafka_detail {
namespace {

void on_log(const rd_kafka_t* rk, int level, const char* facility, const char* message) {
  const auto* state = static_cast<const ClientState*>(rd_kafka_opaque(rk));
  const std::string text = (state ? state->who : std::string("kafka")) + ": librdkafka " + facility + ": " + message;
  // syslog levels: 0..3 errors, 4 warning, 5..6 notice/info, 7 debug
  if (level <= 3) logging::error(text);
  else if (level == 4) logging::warn(text);
  else if (level <= 6) logging::info(text);
  else logging::debug(text);
}

void on_error(rd_kafka_t* rk, int err, const char* reason, void* opaque) {
  auto* state = static_cast<ClientState*>(opaque);
  const std::string who = state ? state->who : std::string("kafka");
  if (state) state->errors++;
  if (err == RD_KAFKA_RESP_ERR__FATAL) {
    char fatal[512];
    const rd_kafka_resp_err_t cause = rd_kafka_fatal_error(rk, fatal, sizeof fatal);
    if (state) state->fatal = true;
    logging::error(who + ": fatal error " + rd_kafka_err2name(cause) + ": " + fatal);
    return;
  }
  logging::warn(who + ": " + rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err)) + ": " + reason);
}

}  // namespace

void set_property(rd_kafka_conf_t* conf, const std::string& who, const std::string& key, const std::string& value) {
  char reason[512];
  if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), reason, sizeof reason) != RD_KAFKA_CONF_OK)
    throw Error(who + ": property '" + key + "' = '" + value + "': " + reason);
}

ConfPtr make_conf(const std::string& who, const std::map<std::string, std::string>& defaults,
                  const std::map<std::string, std::string>& user) {
  ConfPtr conf(rd_kafka_conf_new());
  rd_kafka_conf_set_log_cb(conf.get(), on_log);
  rd_kafka_conf_set_error_cb(conf.get(), on_error);
  for (const auto& [k, v] : defaults)
    if (!user.count(k)) set_property(conf.get(), who, k, v);
  for (const auto& [k, v] : user) set_property(conf.get(), who, k, v);
  return conf;
}

void attach_state(rd_kafka_conf_t* conf, ClientState* state) { rd_kafka_conf_set_opaque(conf, state); }

std::string error_text(rd_kafka_resp_err_t err) { return std::string(rd_kafka_err2name(err)) + " (" + rd_kafka_err2str(err) + ")"; }

}  // namespace sluice::kafka_detail
