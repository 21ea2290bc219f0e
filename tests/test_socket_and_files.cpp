// Receiver sources against real peers: a TCP server in the test, and files moved into a
// directory while batches run. Nothing accepted may be lost.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "sluice/sluice.hpp"

using namespace sluice;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

/// A listening TCP socket on 127.0.0.1 with a kernel-chosen port.
class TcpServer {
 public:
  TcpServer() : TcpServer(0) {}
  explicit TcpServer(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) throw std::runtime_error("bind failed");
    ::listen(fd_, 4);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~TcpServer() { ::close(fd_); }
  uint16_t port() const { return port_; }
  /// Accepts one client and returns its socket.
  int accept_client() { return ::accept(fd_, nullptr, nullptr); }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

void send_all(int fd, const std::string& data) {
  size_t sent = 0;
  while (sent < data.size()) {
    const ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    ASSERT_GT(n, 0);
    sent += static_cast<size_t>(n);
  }
}

/// Collects the lines of batches until @p expected lines arrived or 10 s passed.
std::vector<std::string> collect(Source& source, size_t expected, Time& t) {
  std::vector<std::string> lines;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (lines.size() < expected && std::chrono::steady_clock::now() < deadline) {
    t = t + 100ms;
    Table batch = source.next_batch(t);
    for (size_t r = 0; r < batch.num_rows(); ++r) lines.emplace_back(batch.column(0).string_at(r));
    std::this_thread::sleep_for(20ms);
  }
  return lines;
}

}  // namespace

TEST(SocketSource, LinesArriveCompleteAndInOrderAcrossReconnects) {
  TcpServer server;
  auto source = make_socket_source("127.0.0.1", server.port());
  source->start(Time{0}, 100ms);
  Time t{0};

  int client = server.accept_client();
  ASSERT_GE(client, 0);
  // A line split across two writes is delivered whole; \r\n endings are trimmed.
  send_all(client, "first line\r\nsecond ");
  std::this_thread::sleep_for(50ms);
  send_all(client, "line\nthird line without newline");
  ::close(client);  // the peer goes away: the partial last line is still a record

  std::vector<std::string> lines = collect(*source, 3, t);
  EXPECT_EQ(lines, (std::vector<std::string>{"first line", "second line", "third line without newline"}));

  // The source reconnects (with backoff) and keeps delivering.
  client = server.accept_client();
  ASSERT_GE(client, 0);
  std::string many;
  for (int i = 0; i < 1000; ++i) many += "record " + std::to_string(i) + "\n";
  send_all(client, many);
  lines = collect(*source, 1000, t);
  ASSERT_EQ(lines.size(), 1000u);
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(lines[static_cast<size_t>(i)], "record " + std::to_string(i));
  ::close(client);
  source->stop();
  EXPECT_EQ(source->counters().records, 1003u);
}

TEST(SocketSource, ConnectsOnceAServerAppears) {
  uint16_t port;
  {
    TcpServer probe;  // find a free port, then release it: connections are refused at first
    port = probe.port();
  }
  auto source = make_socket_source("localhost", port);
  source->start(Time{0}, 100ms);
  std::this_thread::sleep_for(300ms);
  EXPECT_GT(source->counters().errors, 0u) << "refused connections are counted";
  TcpServer server(port);
  const int client = server.accept_client();
  ASSERT_GE(client, 0);
  send_all(client, "hello\n");
  Time t{0};
  EXPECT_EQ(collect(*source, 1, t), std::vector<std::string>{"hello"});
  ::close(client);
  source->stop();
}

TEST(SocketSource, GracefulStopDeliversWhatWasReceived) {
  TcpServer server;
  auto clock = std::make_shared<ManualClock>();
  StreamingContext ctx(ContextOptions{.batch_interval = 1000ms, .clock = clock});
  std::vector<std::string> received;
  ctx.socket_text_stream("127.0.0.1", server.port()).foreach_batch([&](Time, const std::vector<std::string>& b) {
    received.insert(received.end(), b.begin(), b.end());
  });
  ctx.start();
  const int client = server.accept_client();
  ASSERT_GE(client, 0);
  send_all(client, "a\nb\nc\n");
  std::this_thread::sleep_for(300ms);  // received, but no batch time has passed yet
  ctx.stop(/*graceful=*/true);
  ::close(client);
  EXPECT_EQ(received, (std::vector<std::string>{"a", "b", "c"}));
}

TEST(FileStreamSource, EachMovedInFileIsReadExactlyOnce) {
  const fs::path dir = fs::temp_directory_path() / ("sluice-files-" + std::to_string(::getpid()));
  const fs::path staging = dir.string() + "-staging";
  fs::remove_all(dir);
  fs::remove_all(staging);
  auto source = make_text_file_source(dir.string());
  source->start(Time{0}, 100ms);
  // The directory does not exist yet: logged, and the stream keeps running.
  EXPECT_EQ(source->next_batch(Time{100}).num_rows(), 0u);
  EXPECT_GT(source->counters().errors, 0u);

  fs::create_directories(dir);
  fs::create_directories(staging);
  auto move_in = [&](const std::string& name, const std::string& text) {
    std::ofstream(staging / name) << text;
    fs::rename(staging / name, dir / name);
  };
  move_in("a.txt", "a1\na2\n");
  std::ofstream(dir / ".b.txt") << "half written\n";  // hidden: not complete yet
  std::ofstream(dir / "c.txt.tmp") << "half written\n";
  Table b1 = source->next_batch(Time{200});
  ASSERT_EQ(b1.num_rows(), 2u);
  EXPECT_EQ(b1.column(0).string_at(0), "a1");
  EXPECT_EQ(b1.column(0).string_at(1), "a2");
  EXPECT_EQ(source->next_batch(Time{300}).num_rows(), 0u) << "a file is read once";

  fs::rename(dir / ".b.txt", dir / "b.txt");  // now complete
  move_in("d.txt", "d1\n");
  Table b3 = source->next_batch(Time{400});
  ASSERT_EQ(b3.num_rows(), 2u);
  EXPECT_EQ(b3.column(0).string_at(0), "half written");
  EXPECT_EQ(b3.column(0).string_at(1), "d1");
  fs::remove_all(dir);
  fs::remove_all(staging);
}

TEST(IngestQueue, BlockPolicyWaitsAndDropPolicyCounts) {
  SourceOptions blocking;
  blocking.queue_capacity = 2;
  IngestQueue queue(blocking);
  ASSERT_TRUE(queue.push("1"));
  ASSERT_TRUE(queue.push("2"));
  std::atomic<bool> third_pushed{false};
  std::thread producer([&] {
    queue.push("3");
    third_pushed = true;
  });
  std::this_thread::sleep_for(100ms);
  EXPECT_FALSE(third_pushed.load()) << "a full queue blocks the producer";
  std::vector<std::string> out;
  EXPECT_EQ(queue.drain(out), 2u);
  producer.join();
  EXPECT_TRUE(third_pushed.load());
  EXPECT_EQ(queue.drain(out), 1u);
  EXPECT_EQ(out, (std::vector<std::string>{"1", "2", "3"}));

  SourceOptions dropping;
  dropping.queue_capacity = 2;
  dropping.overflow = OverflowPolicy::Drop;
  IngestQueue lossy(dropping);
  for (int i = 0; i < 5; ++i) lossy.push(std::to_string(i));
  EXPECT_EQ(lossy.size(), 2u);
  EXPECT_EQ(lossy.dropped(), 3u);
}

TEST(RateLimiter, CapsRecordsPerSecond) {
  RateLimiter limiter(1000);
  const auto start = std::chrono::steady_clock::now();
  limiter.acquire(1000);  // the first second's worth is available at once
  limiter.acquire(500);   // the next 500 take about half a second
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_GT(elapsed, 0.3);
  EXPECT_LT(elapsed, 5.0);
}
