#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>
#include <utility>

#include "sluice/log.hpp"
#include "sluice/source.hpp"

namespace sluice {
namespace {

using namespace std::chrono_literals;

constexpr auto kFirstBackoff = 100ms;
constexpr auto kMaxBackoff = 5000ms;
/// Blocking calls wait at most this long before looking at the stop flag again.
constexpr int kPollSliceMs = 50;
/// A connection attempt that neither succeeds nor fails (a silent firewall) is given up after this.
constexpr auto kConnectTimeout = 10s;
/// A peer that never sends a newline must not make the receiver buffer without bound.
constexpr size_t kMaxLineBytes = 64u << 20;

std::string errno_text(int error) { return std::strerror(error); }

/// True when a loopback connection chose the target port as its own source port and so
/// reached itself (TCP simultaneous open): it would wait forever for data from nobody.
bool connected_to_itself(int fd) {
  sockaddr_storage local{}, peer{};
  socklen_t local_size = sizeof local, peer_size = sizeof peer;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_size) != 0 ||
      ::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_size) != 0)
    return false;
  return local_size == peer_size && std::memcmp(&local, &peer, local_size) == 0;
}

/// Owns a socket descriptor.
class Descriptor {
 public:
  Descriptor() = default;
  explicit Descriptor(int fd) : fd_(fd) {}
  Descriptor(Descriptor&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Descriptor& operator=(Descriptor&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  ~Descriptor() { reset(); }
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

/// Spark's socketTextStream: a receiver thread reads lines into a bounded queue and
/// reconnects with exponential backoff when the connection fails or the peer goes away.
class SocketSource final : public Source {
 public:
  SocketSource(std::string host, uint16_t port, SourceOptions options)
      : host_(std::move(host)), port_(port), queue_(options) {
    SLUICE_EXPECTS(!host_.empty(), "socket_text_stream: host must not be empty");
    SLUICE_EXPECTS(port_ != 0, "socket_text_stream " + host_ + ": port must not be 0");
  }
  ~SocketSource() override { stop(); }

  std::string name() const override {
    // IPv6 literals are bracketed, as in URLs, so that the port stays readable.
    const bool ipv6_literal = host_.find(':') != std::string::npos;
    return "socket " + (ipv6_literal ? "[" + host_ + "]" : host_) + ":" + std::to_string(port_);
  }
  const Schema& schema() const override { return schema_; }

  void start(Time, Duration) override {
    SLUICE_EXPECTS(!receiver_.joinable(), name() + ": already started");
    stopping_ = false;
    queue_.reopen();
    receiver_ = std::thread([this] { receive(); });
  }

  void stop() override {
    {
      std::lock_guard lock(wake_mutex_);
      stopping_ = true;
    }
    wake_.notify_all();  // ends a backoff wait
    queue_.close();      // releases a push blocked on a full queue or the rate limit
    if (receiver_.joinable()) receiver_.join();
  }

  Table next_batch(Time) override {
    std::vector<std::string> lines;
    queue_.drain(lines);
    delivered_.fetch_add(lines.size());
    return lines_table(lines);
  }

  bool has_pending() const override { return queue_.size() > 0; }

  SourceCounters counters() const override {
    return SourceCounters{delivered_.load(), queue_.dropped(), errors_.load(), queue_.size()};
  }

 private:
  void receive() {
    try {
      auto backoff = std::chrono::milliseconds(kFirstBackoff);
      while (!stopping_) {
        std::string problem;
        Descriptor connection = connect_to_peer(problem);
        if (connection.valid()) {
          logging::info(name() + ": connected");
          backoff = kFirstBackoff;
          problem = read_lines(connection.get());
        }
        if (stopping_) break;
        fail(problem + "; reconnecting in " + std::to_string(backoff.count()) + " ms");
        std::unique_lock lock(wake_mutex_);
        wake_.wait_for(lock, backoff, [&] { return stopping_.load(); });
        backoff = std::min<std::chrono::milliseconds>(backoff * 2, kMaxBackoff);
      }
    } catch (const std::exception& e) {
      // A receiver thread must not throw; the source just stops receiving.
      errors_.fetch_add(1);
      logging::error(name() + ": receiver stopped: " + e.what());
    }
  }

  /// Tries every address of the host in turn. An invalid descriptor, and @p problem set,
  /// when none accepts.
  Descriptor connect_to_peer(std::string& problem) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;  // IPv4 and IPv6
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    const int rc = ::getaddrinfo(host_.c_str(), std::to_string(port_).c_str(), &hints, &found);
    if (rc != 0) {
      problem = "cannot resolve host (" + (rc == EAI_SYSTEM ? errno_text(errno) : std::string(::gai_strerror(rc))) + ")";
      return {};
    }
    std::string failure = "no address";
    Descriptor connection;
    for (addrinfo* a = found; a && !connection.valid() && !stopping_; a = a->ai_next) {
      Descriptor fd(::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol));
      if (!fd.valid()) {
        failure = errno_text(errno);
        continue;
      }
      const int error = connect_nonblocking(fd.get(), a->ai_addr, a->ai_addrlen);
      if (error != 0)
        failure = errno_text(error);
      else if (connected_to_itself(fd.get()))
        failure = "connected to itself: nothing listens on the port";
      else
        connection = std::move(fd);
    }
    ::freeaddrinfo(found);
    if (!connection.valid()) problem = "cannot connect (" + failure + ")";
    return connection;
  }

  /// 0 once connected, else the errno of the failure (ECANCELED when stopping).
  int connect_nonblocking(int fd, const sockaddr* address, socklen_t length) {
    if (::connect(fd, address, length) == 0) return 0;
    if (errno != EINPROGRESS && errno != EINTR) return errno;
    const auto deadline = std::chrono::steady_clock::now() + kConnectTimeout;
    while (!stopping_) {
      if (std::chrono::steady_clock::now() > deadline) return ETIMEDOUT;
      pollfd p{fd, POLLOUT, 0};
      const int ready = ::poll(&p, 1, kPollSliceMs);
      if (ready < 0 && errno != EINTR) return errno;
      if (ready <= 0) continue;
      int error = 0;
      socklen_t size = sizeof error;
      if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size) != 0) return errno;
      return error;
    }
    return ECANCELED;
  }

  /// Reads until the connection ends or stop(); returns why it ended.
  std::string read_lines(int fd) {
    std::string partial;        // the start of a line whose newline has not arrived yet
    bool skipping_long = false;  // discarding the rest of a line over kMaxLineBytes
    std::vector<char> buffer(64 * 1024);
    while (!stopping_) {
      pollfd p{fd, POLLIN, 0};
      const int ready = ::poll(&p, 1, kPollSliceMs);
      if (ready < 0 && errno != EINTR) return "poll failed (" + errno_text(errno) + ")";
      if (ready <= 0) continue;
      const ssize_t n = ::recv(fd, buffer.data(), buffer.size(), 0);
      if (n < 0) {
        if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
        return "read failed (" + errno_text(errno) + ")" +
               (partial.empty() ? "" : "; an incomplete last line of " + std::to_string(partial.size()) +
                                           " bytes is dropped");
      }
      if (n == 0) {
        // The peer closed the connection: its last line is complete even without a newline.
        if (!partial.empty() && !skipping_long) deliver(std::move(partial));
        return "peer closed the connection";
      }
      const char* data = buffer.data();
      const char* end = data + n;
      while (data < end && !stopping_) {
        const char* newline = static_cast<const char*>(std::memchr(data, '\n', static_cast<size_t>(end - data)));
        const char* stop_at = newline ? newline : end;
        if (!skipping_long) partial.append(data, stop_at);
        if (partial.size() > kMaxLineBytes) {
          fail("a line longer than " + std::to_string(kMaxLineBytes) + " bytes is dropped");
          partial.clear();
          partial.shrink_to_fit();
          skipping_long = true;
        }
        if (!newline) break;
        if (!skipping_long) deliver(std::move(partial));
        partial.clear();
        skipping_long = false;
        data = newline + 1;
      }
    }
    return "stopped";
  }

  void deliver(std::string line) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    queue_.push(std::move(line));  // Block policy: waits for room; Drop policy: counted by the queue
  }

  void fail(const std::string& what) {
    errors_.fetch_add(1);
    logging::warn(name() + ": " + what);
  }

  std::string host_;
  uint16_t port_;
  Schema schema_{{"line", TypeId::String}};
  IngestQueue queue_;
  std::thread receiver_;
  std::mutex wake_mutex_;
  std::condition_variable wake_;
  std::atomic<bool> stopping_{false};
  std::atomic<size_t> errors_{0};
  std::atomic<size_t> delivered_{0};
};

}  // namespace

std::unique_ptr<Source> make_socket_source(std::string host, uint16_t port, SourceOptions options) {
  return std::make_unique<SocketSource>(std::move(host), port, options);
}

}  // namespace sluice
