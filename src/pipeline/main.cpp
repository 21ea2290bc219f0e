// The sluice command: run or validate a pipeline file.
#include <csignal>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>

#include <thread>

#include "pipeline/pipeline_spec.hpp"
#include "sluice/kafka.hpp"
#include "sluice/log.hpp"

namespace {

constexpr const char* kUsage =
    "usage:\n"
    "  sluice run PIPELINE.yaml [--backend cpu|cuda|auto] [--batches N]\n"
    "  sluice validate PIPELINE.yaml\n"
    "  sluice kafka-mock [--brokers N] [--topic NAME[:PARTITIONS]]...\n"
    "  sluice --help | --version\n"
    "\n"
    "run       builds the pipeline and runs it until its sources end (replay), N batches\n"
    "          have run (--batches or max_batches in the file), or SIGINT/SIGTERM stops it\n"
    "          gracefully (the batches already received are finished).\n"
    "validate  checks the file and builds its graph without running it.\n"
    "kafka-mock runs a Kafka cluster in this process (librdkafka's mock cluster: the real\n"
    "          wire protocol on loopback, 3 brokers by default) for trying Kafka pipelines\n"
    "          without a broker; prints its bootstrap servers and runs until SIGINT/SIGTERM.\n"
    "\n"
    "exit status: 0 success, 1 the run failed, 2 bad usage or a bad pipeline file\n";

volatile std::sig_atomic_t g_stop_requested = 0;
void on_signal(int) { g_stop_requested = 1; }

int run(const std::string& path, const sluice::pipeline::RunOverrides& overrides) {
  sluice::pipeline::Pipeline p = sluice::pipeline::load_pipeline(path, overrides);
  sluice::StreamingContext& ctx = *p.context;
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  ctx.start();
  const auto poll = std::chrono::milliseconds(50);
  while (true) {
    if (ctx.await_termination(poll)) break;
    if (g_stop_requested) {
      sluice::logging::info("stop requested: finishing the batches already received");
      ctx.stop(true);
      break;
    }
    if (p.max_batches && ctx.summary().batches >= p.max_batches) {
      ctx.stop(false);
      break;
    }
  }
  ctx.await_termination();
  return 0;
}

int kafka_mock(int argc, char** argv) {
  int brokers = 3;
  std::vector<std::pair<std::string, int>> topics;
  for (int i = 2; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--brokers" && i + 1 < argc) {
      brokers = std::atoi(argv[++i]);
    } else if (arg == "--topic" && i + 1 < argc) {
      const std::string spec = argv[++i];
      const size_t colon = spec.rfind(':');
      const int partitions = colon == std::string::npos ? 1 : std::atoi(spec.c_str() + colon + 1);
      if (partitions < 1) {
        std::fprintf(stderr, "sluice: --topic '%s': the partition count must be a positive number\n", spec.c_str());
        return 2;
      }
      topics.emplace_back(spec.substr(0, colon), partitions);
    } else {
      std::fprintf(stderr, "sluice: kafka-mock: unknown option '%s'\n%s", arg.c_str(), kUsage);
      return 2;
    }
  }
  try {
    sluice::KafkaMockCluster cluster(brokers);
    for (const auto& [name, partitions] : topics) cluster.create_topic(name, partitions, std::min(brokers, 3));
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    std::printf("bootstrap.servers=%s\n", cluster.bootstrap_servers().c_str());
    std::fflush(stdout);
    while (!g_stop_requested) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sluice: kafka-mock: %s\n", e.what());
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::ios::sync_with_stdio(false);
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const std::string command = argv[1];
  if (command == "kafka-mock") return kafka_mock(argc, argv);
  if (command == "--version" || command == "version") {
    std::puts("sluice 0.1.0");
    return 0;
  }
  if ((command != "run" && command != "validate") || argc < 3) {
    std::fprintf(stderr, "sluice: unknown command or missing file\n%s", kUsage);
    return 2;
  }
  const std::string path = argv[2];
  sluice::pipeline::RunOverrides overrides;
  for (int i = 3; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--backend" && i + 1 < argc) {
      try {
        overrides.backend = sluice::parse_backend(argv[++i]);
      } catch (const sluice::Error& e) {
        std::fprintf(stderr, "sluice: --backend: %s\n", e.what());
        return 2;
      }
    } else if (arg == "--batches" && i + 1 < argc) {
      const std::string n = argv[++i];
      if (n.empty() || n.find_first_not_of("0123456789") != std::string::npos) {
        std::fprintf(stderr, "sluice: --batches needs a whole number, got '%s'\n", n.c_str());
        return 2;
      }
      overrides.max_batches = std::stoull(n);
    } else {
      std::fprintf(stderr, "sluice: unknown option '%s'\n%s", arg.c_str(), kUsage);
      return 2;
    }
  }
  try {
    if (command == "validate") {
      sluice::pipeline::Pipeline p = sluice::pipeline::load_pipeline(path, overrides);
      std::printf("%s: ok (pipeline '%s')\n", path.c_str(), p.name.c_str());
      return 0;
    }
    return run(path, overrides);
  } catch (const sluice::pipeline::PipelineError& e) {
    std::fprintf(stderr, "sluice: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sluice: %s: %s\n", path.c_str(), e.what());
    return 1;
  }
}
