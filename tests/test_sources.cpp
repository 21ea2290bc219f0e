// Sources: the ingest queue and rate limiter, the socket receiver against real TCP peers,
// the directory stream with files moved in while batches run, queue and generator sources.
// Waits poll with generous deadlines; fixed sleeps only check that something does NOT happen.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "sluice/log.hpp"
#include "sluice/source.hpp"

using namespace sluice;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

/// Polls @p done every 5 ms until it holds or @p timeout passes; returns its last value.
bool eventually(const std::function<bool()>& done, std::chrono::milliseconds timeout = 10s) {
  const auto deadline = Clock::now() + timeout;
  while (!done()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

std::vector<std::string> strings_of(const Table& table) {
  std::vector<std::string> out;
  for (size_t r = 0; r < table.num_rows(); ++r) out.emplace_back(table.column(0).string_at(r));
  return out;
}

// ---------------------------------------------------------------------------------------
// A real TCP peer.

/// A listening TCP socket on the loopback address (IPv4 or IPv6), port 0 = kernel's choice.
class TcpServer {
 public:
  explicit TcpServer(uint16_t port = 0, bool ipv6 = false) {
    fd_ = ::socket(ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
    if (fd_ < 0) throw std::runtime_error("socket failed");
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_storage storage{};
    socklen_t length;
    if (ipv6) {
      auto& a = reinterpret_cast<sockaddr_in6&>(storage);
      a.sin6_family = AF_INET6;
      a.sin6_addr = in6addr_loopback;
      a.sin6_port = htons(port);
      length = sizeof a;
    } else {
      auto& a = reinterpret_cast<sockaddr_in&>(storage);
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      a.sin_port = htons(port);
      length = sizeof a;
    }
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&storage), length) != 0 || ::listen(fd_, 8) != 0) {
      ::close(fd_);
      throw std::runtime_error("bind/listen failed");
    }
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&storage), &length);
    port_ = ntohs(ipv6 ? reinterpret_cast<sockaddr_in6&>(storage).sin6_port
                       : reinterpret_cast<sockaddr_in&>(storage).sin_port);
  }
  ~TcpServer() { ::close(fd_); }
  TcpServer(const TcpServer&) = delete;
  TcpServer& operator=(const TcpServer&) = delete;

  uint16_t port() const { return port_; }
  /// Accepts one client within 10 s; -1 otherwise.
  int accept_client() {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 10'000) != 1) return -1;
    return ::accept(fd_, nullptr, nullptr);
  }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

bool send_all(int fd, const std::string& data) {
  size_t sent = 0;
  while (sent < data.size()) {
    const ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return false;
    sent += static_cast<size_t>(n);
  }
  return true;
}

/// A port with nothing listening on it (bound once, then released).
uint16_t free_port() {
  TcpServer probe;
  return probe.port();
}

/// Cuts batches from @p source every 10 ms until @p expected lines arrived or 10 s passed.
std::vector<std::string> collect(Source& source, size_t expected, Time& t) {
  std::vector<std::string> lines;
  eventually([&] {
    t = t + 100ms;
    for (auto& line : strings_of(source.next_batch(t))) lines.push_back(std::move(line));
    return lines.size() >= expected;
  });
  return lines;
}

std::vector<std::string> numbered(const std::string& prefix, int from, int to) {
  std::vector<std::string> out;
  for (int i = from; i < to; ++i) out.push_back(prefix + std::to_string(i));
  return out;
}

}  // namespace

// =======================================================================================
// IngestQueue and RateLimiter

TEST(IngestQueueTest, FullQueueBlocksProducerUntilDrainMakesRoom) {
  SourceOptions options;
  options.queue_capacity = 3;
  IngestQueue queue(options);
  for (const char* r : {"r0", "r1", "r2"}) ASSERT_TRUE(queue.push(r));

  std::atomic<int> pushed{0};
  std::thread producer([&] {
    for (const char* r : {"r3", "r4"}) {
      EXPECT_TRUE(queue.push(r));
      ++pushed;
    }
  });
  std::this_thread::sleep_for(150ms);
  EXPECT_EQ(pushed.load(), 0) << "a full queue must block the producer";
  EXPECT_EQ(queue.size(), 3u);

  std::vector<std::string> out;
  EXPECT_EQ(queue.drain(out), 3u);
  ASSERT_TRUE(eventually([&] { return pushed.load() == 2; })) << "drain() must wake the producer";
  producer.join();
  EXPECT_EQ(queue.drain(out), 2u);
  EXPECT_EQ(out, numbered("r", 0, 5));
  EXPECT_EQ(queue.dropped(), 0u);
}

TEST(IngestQueueTest, CloseReleasesBlockedProducerAndRefusesLaterPushes) {
  SourceOptions options;
  options.queue_capacity = 1;
  IngestQueue queue(options);
  ASSERT_TRUE(queue.push("kept"));
  std::atomic<bool> returned{false};
  std::thread producer([&] {
    queue.push("in flight");
    returned = true;
  });
  std::this_thread::sleep_for(100ms);
  EXPECT_FALSE(returned.load());
  queue.close();
  ASSERT_TRUE(eventually([&] { return returned.load(); }, 5s)) << "close() must release a blocked producer";
  producer.join();
  EXPECT_FALSE(queue.push("after close")) << "pushes after close() are refused";

  std::vector<std::string> out;
  queue.drain(out);
  EXPECT_EQ(out, (std::vector<std::string>{"kept", "in flight"})) << "a record in hand at close() is not lost";

  queue.reopen();
  EXPECT_TRUE(queue.push("after reopen"));
  EXPECT_EQ(queue.size(), 1u);
}

TEST(IngestQueueTest, DropPolicyDropsAndCountsWhenFull) {
  SourceOptions options;
  options.queue_capacity = 4;
  options.overflow = OverflowPolicy::Drop;
  IngestQueue queue(options);
  size_t accepted = 0;
  for (int i = 0; i < 10; ++i) accepted += queue.push("r" + std::to_string(i));
  EXPECT_EQ(accepted, 4u);
  EXPECT_EQ(queue.size(), 4u);
  EXPECT_EQ(queue.dropped(), 6u);

  std::vector<std::string> out;
  queue.drain(out);
  EXPECT_EQ(out, numbered("r", 0, 4)) << "the first records are kept, later ones dropped";
  EXPECT_TRUE(queue.push("room again"));
  EXPECT_EQ(queue.dropped(), 6u);
}

TEST(IngestQueueTest, ZeroCapacityIsRejected) {
  SourceOptions options;
  options.queue_capacity = 0;
  EXPECT_THROW(IngestQueue{options}, Error);
  EXPECT_THROW(RateLimiter{-1}, Error);
}

TEST(RateLimiterTest, AvailableGrantsOneSecondAtOnceThenNothingWithoutWaiting) {
  RateLimiter limiter(100);
  EXPECT_EQ(limiter.available(1000), 100u) << "the bucket starts with one second of records";
  EXPECT_LE(limiter.available(1000), 50u) << "available() does not wait for more";

  RateLimiter unlimited(0);
  EXPECT_EQ(unlimited.available(1'000'000), 1'000'000u);
  const auto start = Clock::now();
  unlimited.acquire(1'000'000'000);
  EXPECT_LT(seconds_since(start), 0.5) << "rate 0 means no limit";
}

TEST(RateLimiterTest, AcquireCapsRecordsPerSecond) {
  RateLimiter limiter(2000);
  const auto start = Clock::now();
  limiter.acquire(2000);  // the first second's worth passes at once
  limiter.acquire(1000);  // the next 1000 need about half a second
  const double elapsed = seconds_since(start);
  EXPECT_GT(elapsed, 0.35);
  EXPECT_LT(elapsed, 5.0);
}

TEST(RateLimiterTest, AcquireStopsEarlyWhenCancelled) {
  RateLimiter limiter(10);
  limiter.available(10);  // empty the bucket: 1000 more records would take 100 s
  std::atomic<bool> cancelled{false};
  std::thread canceller([&] {
    std::this_thread::sleep_for(100ms);
    cancelled = true;
  });
  const auto start = Clock::now();
  limiter.acquire(1000, &cancelled);
  EXPECT_LT(seconds_since(start), 3.0);
  canceller.join();
}

TEST(IngestQueueTest, MaxRateThrottlesPushes) {
  SourceOptions options;
  options.max_rate = 1000;
  IngestQueue queue(options);
  const auto start = Clock::now();
  for (int i = 0; i < 1500; ++i) ASSERT_TRUE(queue.push("x"));
  const double elapsed = seconds_since(start);
  EXPECT_GT(elapsed, 0.3) << "1500 records at 1000/s (1000 at once) need about 0.5 s";
  EXPECT_LT(elapsed, 5.0);

  // close() releases a producer waiting for the rate limit at once.
  std::atomic<bool> returned{false};
  std::thread producer([&] {
    for (int i = 0; i < 100'000 && queue.push("y"); ++i) {
    }
    returned = true;
  });
  std::this_thread::sleep_for(50ms);
  queue.close();
  EXPECT_TRUE(eventually([&] { return returned.load(); }, 3s));
  producer.join();
}

TEST(LinesTableTest, HoldsLinesInOneStringColumn) {
  const Table table = lines_table({"a", "", "c d"});
  ASSERT_EQ(table.schema(), (Schema{{"line", TypeId::String}}));
  EXPECT_EQ(strings_of(table), (std::vector<std::string>{"a", "", "c d"}));
  EXPECT_EQ(lines_table({}).num_rows(), 0u);
}

// =======================================================================================
// Socket source

TEST(SocketSourceTest, LinesSplitAcrossWritesArriveCompleteAndInOrder) {
  TcpServer server;
  auto source = make_socket_source("127.0.0.1", server.port());
  EXPECT_EQ(source->name(), "socket 127.0.0.1:" + std::to_string(server.port()));
  source->start(Time{0}, 100ms);

  const int client = server.accept_client();
  ASSERT_GE(client, 0);
  // 3000 lines (some with \r\n) sent in odd-sized chunks, so lines straddle writes, while
  // batches are being cut.
  std::string text;
  for (int i = 0; i < 3000; ++i) text += "line " + std::to_string(i) + (i % 7 == 0 ? "\r\n" : "\n");
  text += "last line without newline";
  std::thread writer([&] {
    for (size_t at = 0, chunk = 1; at < text.size(); at += chunk, chunk = chunk * 3 % 997 + 1) {
      ASSERT_TRUE(send_all(client, text.substr(at, chunk)));
      if (at % 5 == 0) std::this_thread::sleep_for(1ms);
    }
    ::close(client);  // the peer closes: its unterminated last line is complete
  });
  Time t{0};
  std::vector<std::string> lines = collect(*source, 3001, t);
  writer.join();
  source->stop();

  std::vector<std::string> expected = numbered("line ", 0, 3000);
  expected.push_back("last line without newline");
  ASSERT_EQ(lines.size(), expected.size());
  EXPECT_EQ(lines, expected);
  EXPECT_EQ(source->counters().records, 3001u);
  EXPECT_EQ(source->counters().dropped, 0u);
}

TEST(SocketSourceTest, ReconnectsAfterPeerDisconnectsAndLosesNothing) {
  TcpServer server;
  auto source = make_socket_source("127.0.0.1", server.port());
  source->start(Time{0}, 100ms);
  Time t{0};

  int client = server.accept_client();
  ASSERT_GE(client, 0);
  std::string first;
  for (const auto& line : numbered("first ", 0, 500)) first += line + "\n";
  ASSERT_TRUE(send_all(client, first));
  ::close(client);  // the peer goes away

  // A new peer accepts later on the same address: the source reconnects by itself.
  std::this_thread::sleep_for(200ms);
  client = server.accept_client();
  ASSERT_GE(client, 0) << "the source did not reconnect";
  std::string second;
  for (const auto& line : numbered("second ", 0, 500)) second += line + "\n";
  ASSERT_TRUE(send_all(client, second));

  std::vector<std::string> lines = collect(*source, 1000, t);
  std::vector<std::string> expected = numbered("first ", 0, 500);
  for (auto& line : numbered("second ", 0, 500)) expected.push_back(line);
  EXPECT_EQ(lines, expected);
  EXPECT_GE(source->counters().errors, 1u) << "the disconnect is counted";
  ::close(client);
  source->stop();
}

TEST(SocketSourceTest, ConnectsOnceAServerAppearsAfterRefusals) {
  const uint16_t port = free_port();
  auto source = make_socket_source("localhost", port);
  testing::internal::CaptureStderr();
  source->start(Time{0}, 100ms);
  const bool refused = eventually([&] { return source->counters().errors >= 2; }, 5s);
  const std::string log = testing::internal::GetCapturedStderr();
  ASSERT_TRUE(refused) << "refused connections are counted as errors";
  EXPECT_NE(log.find("socket localhost:" + std::to_string(port)), std::string::npos) << log;
  EXPECT_NE(log.find("Connection refused"), std::string::npos) << log;

  TcpServer server(port);
  const int client = server.accept_client();
  ASSERT_GE(client, 0) << "the source did not connect once the server appeared";
  ASSERT_TRUE(send_all(client, "hello\nworld\n"));
  Time t{0};
  EXPECT_EQ(collect(*source, 2, t), (std::vector<std::string>{"hello", "world"}));
  ::close(client);
  source->stop();
}

TEST(SocketSourceTest, ConnectsOverIpv6) {
  std::unique_ptr<TcpServer> server;
  try {
    server = std::make_unique<TcpServer>(0, /*ipv6=*/true);
  } catch (const std::exception&) {
    GTEST_SKIP() << "no IPv6 loopback on this machine";
  }
  auto source = make_socket_source("::1", server->port());
  EXPECT_EQ(source->name(), "socket [::1]:" + std::to_string(server->port()));
  source->start(Time{0}, 100ms);
  const int client = server->accept_client();
  ASSERT_GE(client, 0);
  ASSERT_TRUE(send_all(client, "over ipv6\n"));
  Time t{0};
  EXPECT_EQ(collect(*source, 1, t), std::vector<std::string>{"over ipv6"});
  ::close(client);
  source->stop();
}

TEST(SocketSourceTest, StopIsPromptWhileRetryingOrIdle) {
  {
    auto source = make_socket_source("127.0.0.1", free_port());  // refused: in backoff
    source->start(Time{0}, 100ms);
    std::this_thread::sleep_for(400ms);
    const auto start = Clock::now();
    source->stop();
    EXPECT_LT(seconds_since(start), 1.0) << "stop() during backoff";
  }
  {
    TcpServer server;
    auto source = make_socket_source("127.0.0.1", server.port());
    source->start(Time{0}, 100ms);
    const int client = server.accept_client();  // connected, peer silent: blocked reading
    ASSERT_GE(client, 0);
    std::this_thread::sleep_for(100ms);
    const auto start = Clock::now();
    source->stop();
    EXPECT_LT(seconds_since(start), 1.0) << "stop() while waiting for data";
    ::close(client);
  }
}

TEST(SocketSourceTest, StopIsPromptWhileBlockedOnFullQueueAndKeepsReceivedLines) {
  TcpServer server;
  SourceOptions options;
  options.queue_capacity = 10;  // Block policy: the receiver stalls after 10 lines
  auto source = make_socket_source("127.0.0.1", server.port(), options);
  source->start(Time{0}, 100ms);
  const int client = server.accept_client();
  ASSERT_GE(client, 0);
  std::string text;
  for (const auto& line : numbered("r", 0, 100)) text += line + "\n";
  ASSERT_TRUE(send_all(client, text));
  ASSERT_TRUE(eventually([&] { return source->has_pending(); }));
  std::this_thread::sleep_for(100ms);  // the receiver is now blocked on the full queue

  const auto start = Clock::now();
  source->stop();
  EXPECT_LT(seconds_since(start), 1.0) << "stop() while the queue is full";
  EXPECT_EQ(source->counters().dropped, 0u) << "the Block policy never drops";
  // What was queued before stop() is still delivered, in order.
  std::vector<std::string> lines = strings_of(source->next_batch(Time{100}));
  ASSERT_GE(lines.size(), 10u);
  EXPECT_EQ(lines, numbered("r", 0, static_cast<int>(lines.size())));
  EXPECT_FALSE(source->has_pending());
  ::close(client);
}

TEST(SocketSourceTest, DropPolicyCountsDroppedLines) {
  TcpServer server;
  SourceOptions options;
  options.queue_capacity = 10;
  options.overflow = OverflowPolicy::Drop;
  auto source = make_socket_source("127.0.0.1", server.port(), options);
  source->start(Time{0}, 100ms);
  const int client = server.accept_client();
  ASSERT_GE(client, 0);
  std::string text;
  for (const auto& line : numbered("r", 0, 100)) text += line + "\n";
  ASSERT_TRUE(send_all(client, text));
  ASSERT_TRUE(eventually([&] { return source->counters().dropped == 90; }));
  EXPECT_EQ(strings_of(source->next_batch(Time{100})), numbered("r", 0, 10));
  EXPECT_EQ(source->counters().records, 10u);
  ::close(client);
  source->stop();
}

TEST(SocketSourceTest, RejectsBadArguments) {
  EXPECT_THROW(make_socket_source("", 9999), Error);
  EXPECT_THROW(make_socket_source("localhost", 0), Error);
}

// =======================================================================================
// Directory stream

namespace {

/// A fresh directory under the temp directory, removed afterwards.
class TempDir {
 public:
  explicit TempDir(const std::string& tag) {
    path_ = fs::temp_directory_path() / ("sluice-" + tag + "-" + std::to_string(::getpid()));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::permissions(path_, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

void write_file(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

}  // namespace

TEST(FileStreamSourceTest, FilesMovedInWhileBatchesRunAreEachReadExactlyOnce) {
  TempDir root("files");
  const fs::path dir = root.path() / "in";
  const fs::path staging = root.path() / "staging";
  fs::create_directories(dir);
  fs::create_directories(staging);
  auto source = make_text_file_source(dir.string());
  source->start(Time{0}, 100ms);

  constexpr int kFiles = 40;
  constexpr int kLinesPerFile = 25;
  std::atomic<bool> writer_done{false};
  std::thread writer([&] {
    for (int f = 0; f < kFiles; ++f) {
      std::string text;
      for (int l = 0; l < kLinesPerFile; ++l) text += "f" + std::to_string(f) + "-l" + std::to_string(l) + "\n";
      const std::string name = "part-" + std::to_string(1000 + f);
      if (f % 2 == 0) {
        write_file(staging / name, text);  // written outside, moved in
        fs::rename(staging / name, dir / name);
      } else {
        write_file(dir / ("." + name), text);  // written as a hidden file inside, renamed
        fs::rename(dir / ("." + name), dir / name);
      }
      std::this_thread::sleep_for(2ms);
    }
    writer_done = true;
  });

  std::map<std::string, int> times_read;
  Time t{0};
  auto cut = [&] {
    t = t + 100ms;
    for (const auto& line : strings_of(source->next_batch(t))) ++times_read[line];
  };
  while (!writer_done) cut();
  writer.join();
  for (int i = 0; i < 3; ++i) cut();

  ASSERT_EQ(times_read.size(), static_cast<size_t>(kFiles * kLinesPerFile));
  for (const auto& [line, count] : times_read) EXPECT_EQ(count, 1) << line;
  EXPECT_EQ(source->counters().records, static_cast<size_t>(kFiles * kLinesPerFile));
  EXPECT_EQ(source->counters().errors, 0u);
  EXPECT_FALSE(source->has_pending());
}

TEST(FileStreamSourceTest, IncompleteNamesAreIgnoredUntilRenamed) {
  TempDir root("incomplete");
  const fs::path dir = root.path();
  auto source = make_text_file_source(dir.string());
  source->start(Time{0}, 100ms);
  write_file(dir / ".hidden", "hidden\n");
  write_file(dir / "_temporary", "underscore\n");
  write_file(dir / "data.tmp", "tmp\n");
  write_file(dir / "data._COPYING_", "copying\n");
  fs::create_directories(dir / "subdir");  // directories are not files
  EXPECT_EQ(source->next_batch(Time{100}).num_rows(), 0u);

  fs::rename(dir / "data.tmp", dir / "b-data");
  fs::rename(dir / ".hidden", dir / "a-hidden");
  fs::rename(dir / "data._COPYING_", dir / "c-copied");
  // Name order within a batch; \r\n trimmed; a last line without newline is a record.
  write_file(dir / "d-crlf", "x\r\ny");
  EXPECT_EQ(strings_of(source->next_batch(Time{200})), (std::vector<std::string>{"hidden", "tmp", "copying", "x", "y"}));
  EXPECT_EQ(source->next_batch(Time{300}).num_rows(), 0u) << "each file is read once";
  fs::rename(dir / "_temporary", dir / "e-final");
  EXPECT_EQ(strings_of(source->next_batch(Time{400})), std::vector<std::string>{"underscore"});
}

TEST(FileStreamSourceTest, MissingDirectoryIsLoggedAndWatchedUntilItAppears) {
  TempDir root("missing");
  const fs::path dir = root.path() / "not-yet";
  auto source = make_text_file_source(dir.string());
  source->start(Time{0}, 100ms);
  testing::internal::CaptureStderr();
  EXPECT_EQ(source->next_batch(Time{100}).num_rows(), 0u);
  EXPECT_EQ(source->next_batch(Time{200}).num_rows(), 0u);
  const std::string log = testing::internal::GetCapturedStderr();
  EXPECT_NE(log.find(dir.string()), std::string::npos) << log;
  EXPECT_NE(log.find("does not exist"), std::string::npos) << log;
  EXPECT_GE(source->counters().errors, 1u);

  fs::create_directories(dir);
  write_file(dir / "late", "finally\n");
  EXPECT_EQ(strings_of(source->next_batch(Time{300})), std::vector<std::string>{"finally"});
}

TEST(FileStreamSourceTest, MaxRateDefersLinesToLaterBatchesWithoutLosingThem) {
  TempDir root("rate");
  SourceOptions options;
  options.max_rate = 10;  // 10 lines per 1 s batch
  auto source = make_text_file_source(root.path().string(), options);
  source->start(Time{0}, 1000ms);
  std::string a, b;
  for (const auto& line : numbered("a", 0, 15)) a += line + "\n";
  for (const auto& line : numbered("b", 0, 8)) b += line + "\n";
  write_file(root.path() / "a", a);
  write_file(root.path() / "b", b);

  std::vector<std::string> all;
  std::vector<size_t> sizes;
  for (int64_t ms = 1000; ms <= 5000; ms += 1000) {
    auto lines = strings_of(source->next_batch(Time{ms}));
    sizes.push_back(lines.size());
    all.insert(all.end(), lines.begin(), lines.end());
    if (ms == 1000) {
      EXPECT_TRUE(source->has_pending());
    }
  }
  EXPECT_EQ(sizes, (std::vector<size_t>{10, 10, 3, 0, 0}));
  std::vector<std::string> expected = numbered("a", 0, 15);
  for (auto& line : numbered("b", 0, 8)) expected.push_back(line);
  EXPECT_EQ(all, expected);
  EXPECT_FALSE(source->has_pending());

  // A rate below one line per batch still delivers: one line every other batch.
  SourceOptions slow;
  slow.max_rate = 0.5;
  auto trickle = make_text_file_source(root.path().string(), slow);
  trickle->start(Time{0}, 1000ms);
  size_t delivered = 0;
  for (int64_t ms = 1000; ms <= 6000; ms += 1000) delivered += trickle->next_batch(Time{ms}).num_rows();
  EXPECT_EQ(delivered, 3u);
}

TEST(FileStreamSourceTest, UnreadableFileIsRetriedNextBatch) {
  if (::geteuid() == 0) GTEST_SKIP() << "root reads files regardless of permissions";
  TempDir root("unreadable");
  auto source = make_text_file_source(root.path().string());
  source->start(Time{0}, 100ms);
  write_file(root.path() / "locked", "secret\n");
  write_file(root.path() / "open", "visible\n");
  fs::permissions(root.path() / "locked", fs::perms::none);
  testing::internal::CaptureStderr();
  EXPECT_EQ(strings_of(source->next_batch(Time{100})), std::vector<std::string>{"visible"});
  const std::string log = testing::internal::GetCapturedStderr();
  EXPECT_NE(log.find((root.path() / "locked").string()), std::string::npos) << log;
  EXPECT_NE(log.find("Permission denied"), std::string::npos) << log;
  EXPECT_EQ(source->counters().errors, 1u);

  fs::permissions(root.path() / "locked", fs::perms::owner_read | fs::perms::owner_write);
  EXPECT_EQ(strings_of(source->next_batch(Time{200})), std::vector<std::string>{"secret"});
  EXPECT_EQ(source->next_batch(Time{300}).num_rows(), 0u);
}

TEST(FileStreamSourceTest, AFileReplacedAfterDeletionIsReadAgain) {
  TempDir root("replace");
  auto source = make_text_file_source(root.path().string());
  source->start(Time{0}, 100ms);
  write_file(root.path() / "f", "one\n");
  EXPECT_EQ(strings_of(source->next_batch(Time{100})), std::vector<std::string>{"one"});
  fs::remove(root.path() / "f");
  EXPECT_EQ(source->next_batch(Time{200}).num_rows(), 0u);
  write_file(root.path() / "f", "two\n");
  EXPECT_EQ(strings_of(source->next_batch(Time{300})), std::vector<std::string>{"two"});
}

// =======================================================================================
// Queue source

namespace {
Table int_batch(std::vector<int64_t> values, const std::string& field = "x") {
  Column column(TypeId::Int64);
  for (int64_t v : values) column.append<int64_t>(v);
  std::vector<Column> columns;
  columns.push_back(std::move(column));
  return Table(Schema{{field, TypeId::Int64}}, std::move(columns));
}
std::vector<int64_t> ints_of(const Table& table) {
  const auto values = table.column(0).values<int64_t>();
  return {values.begin(), values.end()};
}
}  // namespace

TEST(QueueSourceTest, OneBatchPerBatchTimeThenEmpty) {
  const Schema schema{{"x", TypeId::Int64}};
  std::vector<Table> batches;
  batches.push_back(int_batch({1, 2}));
  batches.push_back(int_batch({3}, "renamed"));  // names come from the stream's schema
  auto source = make_queue_source(schema, std::move(batches), /*one_at_a_time=*/true);
  EXPECT_FALSE(source->finished());
  EXPECT_EQ(ints_of(source->next_batch(Time{100})), (std::vector<int64_t>{1, 2}));
  EXPECT_FALSE(source->finished());
  const Table second = source->next_batch(Time{200});
  EXPECT_EQ(ints_of(second), std::vector<int64_t>{3});
  EXPECT_EQ(second.schema(), schema);
  EXPECT_TRUE(source->finished());
  const Table after = source->next_batch(Time{300});
  EXPECT_EQ(after.num_rows(), 0u);
  EXPECT_EQ(after.schema(), schema);
  EXPECT_EQ(source->counters().records, 3u);
}

TEST(QueueSourceTest, AllAtOnceDeliversEverythingInTheFirstBatch) {
  std::vector<Table> batches;
  batches.push_back(int_batch({1, 2}));
  batches.push_back(int_batch({3}));
  batches.push_back(int_batch({}));
  auto source = make_queue_source(Schema{{"x", TypeId::Int64}}, std::move(batches), /*one_at_a_time=*/false);
  EXPECT_EQ(ints_of(source->next_batch(Time{100})), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_TRUE(source->finished());
  EXPECT_EQ(source->next_batch(Time{200}).num_rows(), 0u);
}

TEST(QueueSourceTest, BatchOfWrongTypesIsRejectedByIndex) {
  std::vector<Table> batches;
  batches.push_back(int_batch({1}));
  batches.push_back(lines_table({"not an int"}));
  try {
    make_queue_source(Schema{{"x", TypeId::Int64}}, std::move(batches));
    FAIL() << "a batch of the wrong type was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("batch 1"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(make_queue_source(Schema{{"x", TypeId::Int64}}, {})->finished());
}

// =======================================================================================
// Generator source

namespace {
std::vector<Table> generate(GeneratorOptions g, int batches, Duration interval = 100ms, SourceOptions options = {}) {
  auto source = make_generator_source(g, options);
  source->start(Time{0}, interval);
  std::vector<Table> out;
  for (int i = 1; i <= batches; ++i) out.push_back(source->next_batch(Time{0} + interval * i));
  return out;
}
}  // namespace

TEST(GeneratorSourceTest, SameSeedSameBatchesDifferentSeedDifferent) {
  for (auto kind : {GeneratorOptions::Kind::Words, GeneratorOptions::Kind::Lines, GeneratorOptions::Kind::Pairs}) {
    GeneratorOptions g;
    g.kind = kind;
    g.seed = 7;
    const auto a = generate(g, 5), b = generate(g, 5);
    g.seed = 8;
    const auto c = generate(g, 5);
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_TRUE(a[i] == b[i]) << "batch " << i;
      EXPECT_FALSE(a[i] == c[i]) << "batch " << i;
      if (i > 0) {
        EXPECT_FALSE(a[i] == a[i - 1]) << "consecutive batches differ";
      }
    }
  }
}

TEST(GeneratorSourceTest, ABatchDependsOnlyOnSeedAndBatchTime) {
  GeneratorOptions g;
  g.kind = GeneratorOptions::Kind::Pairs;
  const auto all = generate(g, 4);
  auto fresh = make_generator_source(g);
  fresh->start(Time{0}, 100ms);
  EXPECT_TRUE(fresh->next_batch(Time{400}) == all[3]) << "the fourth batch alone equals the fourth of a run";
}

TEST(GeneratorSourceTest, EachBatchHoldsRateTimesInterval) {
  GeneratorOptions g;
  g.rate = 1000;
  for (const Table& batch : generate(g, 5)) EXPECT_EQ(batch.num_rows(), 100u);

  g.rate = 2.5;  // fractional: 2, 3, 2, 3 with 1 s batches, 10 records in 4 s
  std::vector<size_t> sizes;
  for (const Table& batch : generate(g, 4, 1000ms)) sizes.push_back(batch.num_rows());
  EXPECT_EQ(sizes, (std::vector<size_t>{2, 3, 2, 3}));

  g.rate = 1000;
  SourceOptions capped;
  capped.max_rate = 200;
  for (const Table& batch : generate(g, 3, 100ms, capped)) EXPECT_EQ(batch.num_rows(), 20u) << "max_rate caps";
}

TEST(GeneratorSourceTest, LimitIsRespected) {
  GeneratorOptions g;
  g.rate = 1000;
  g.limit = 250;
  auto source = make_generator_source(g);
  source->start(Time{0}, 100ms);
  std::vector<size_t> sizes;
  for (int i = 1; i <= 4; ++i) {
    EXPECT_EQ(source->finished(), i > 3) << "before batch " << i;
    sizes.push_back(source->next_batch(Time{100 * i}).num_rows());
  }
  EXPECT_EQ(sizes, (std::vector<size_t>{100, 100, 50, 0}));
  EXPECT_TRUE(source->finished());
  EXPECT_EQ(source->counters().records, 250u);
}

TEST(GeneratorSourceTest, RecordsHaveTheDocumentedShape) {
  GeneratorOptions g;
  g.rate = 100'000;
  g.kind = GeneratorOptions::Kind::Pairs;
  g.distinct_keys = 10;
  const Table pairs = generate(g, 1)[0];
  ASSERT_EQ(pairs.schema(), (Schema{{"key", TypeId::Int64}, {"value", TypeId::Int64}}));
  for (int64_t k : pairs.column(0).values<int64_t>()) ASSERT_TRUE(k >= 0 && k < 10) << k;
  for (int64_t v : pairs.column(1).values<int64_t>()) ASSERT_TRUE(v >= 0 && v < 100) << v;

  g.kind = GeneratorOptions::Kind::Words;
  const Table words = generate(g, 1)[0];
  ASSERT_EQ(words.schema(), (Schema{{"word", TypeId::String}}));
  std::map<std::string, size_t> counts;
  for (const auto& w : strings_of(words)) ++counts[w];
  EXPECT_GT(counts.size(), 150u) << "draws from a vocabulary of about 200 words";
  const auto most = std::max_element(counts.begin(), counts.end(), [](auto& a, auto& b) { return a.second < b.second; });
  EXPECT_EQ(most->first, "the") << "skewed towards the first words";
  EXPECT_GT(counts["the"], 10 * counts["stream"]);

  g.kind = GeneratorOptions::Kind::Lines;
  g.rate = 10'000;
  const Table lines = generate(g, 1)[0];
  ASSERT_EQ(lines.schema(), (Schema{{"line", TypeId::String}}));
  size_t longest = 0;
  for (const auto& line : strings_of(lines)) {
    ASSERT_FALSE(line.empty());
    ASSERT_NE(line.front(), ' ');
    ASSERT_EQ(line.find("  "), std::string::npos);
    longest = std::max<size_t>(longest, static_cast<size_t>(std::count(line.begin(), line.end(), ' ')) + 1);
  }
  EXPECT_EQ(longest, 12u);
}

TEST(GeneratorSourceTest, RejectsBadOptions) {
  GeneratorOptions g;
  g.rate = 0;
  EXPECT_THROW(make_generator_source(g), Error);
  g.rate = 10;
  g.distinct_keys = 0;
  EXPECT_THROW(make_generator_source(g), Error);
}
