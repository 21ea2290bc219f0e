#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "sluice/log.hpp"
#include "sluice/source.hpp"

namespace sluice {
namespace {

/// Spark's socketTextStream: a receiver thread reads lines into a bounded queue and
/// reconnects with exponential backoff when the connection fails or the peer goes away.
class SocketSource final : public Source {
 public:
  SocketSource(std::string host, uint16_t port, SourceOptions options)
      : host_(std::move(host)), port_(port), queue_(options) {
    SLUICE_EXPECTS(!host_.empty(), "socket_text_stream: host must not be empty");
    SLUICE_EXPECTS(port_ != 0, "socket_text_stream: port must not be 0");
  }
  ~SocketSource() override { stop(); }

  std::string name() const override { return "socket " + host_ + ":" + std::to_string(port_); }
  const Schema& schema() const override { return schema_; }

  void start(Time, Duration) override {
    stopping_ = false;
    queue_.reopen();
    receiver_ = std::thread([this] { receive(); });
  }

  void stop() override {
    stopping_ = true;
    queue_.close();
    if (receiver_.joinable()) receiver_.join();
  }

  Table next_batch(Time) override {
    std::vector<std::string> lines;
    queue_.drain(lines);
    delivered_ += lines.size();
    return lines_table(lines);
  }

  bool has_pending() const override { return queue_.size() > 0; }

  SourceCounters counters() const override { return SourceCounters{delivered_, queue_.dropped(), errors_.load()}; }

 private:
  void receive() {
    auto backoff = std::chrono::milliseconds(100);
    while (!stopping_) {
      const int fd = connect_once();
      if (fd >= 0) {
        log::info(name() + ": connected");
        backoff = std::chrono::milliseconds(100);
        read_lines(fd);
        ::close(fd);
      }
      if (stopping_) break;
      // Sleep in short slices so that stop() is prompt.
      const auto until = std::chrono::steady_clock::now() + backoff;
      while (!stopping_ && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(10));
      backoff = std::min<std::chrono::milliseconds>(backoff * 2, std::chrono::milliseconds(5000));
    }
  }

  int connect_once() {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    const int rc = ::getaddrinfo(host_.c_str(), std::to_string(port_).c_str(), &hints, &found);
    if (rc != 0) {
      fail(std::string("cannot resolve host: ") + ::gai_strerror(rc));
      return -1;
    }
    int last_errno = 0;
    int fd = -1;
    for (addrinfo* a = found; a && fd < 0; a = a->ai_next) {
      fd = ::socket(a->ai_family, a->ai_socktype, a->ai_protocol);
      if (fd < 0) {
        last_errno = errno;
        continue;
      }
      if (::connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
        last_errno = errno;
        ::close(fd);
        fd = -1;
      }
    }
    ::freeaddrinfo(found);
    if (fd < 0) fail(std::string("cannot connect: ") + std::strerror(last_errno) + "; retrying");
    return fd;
  }

  void read_lines(int fd) {
    std::string partial;
    char buf[64 * 1024];
    while (!stopping_) {
      pollfd p{fd, POLLIN, 0};
      const int ready = ::poll(&p, 1, 100);
      if (ready < 0 && errno != EINTR) {
        fail(std::string("poll failed: ") + std::strerror(errno));
        break;
      }
      if (ready <= 0) continue;
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n < 0) {
        if (errno == EINTR || errno == EAGAIN) continue;
        fail(std::string("read failed: ") + std::strerror(errno) + "; reconnecting");
        break;
      }
      if (n == 0) {
        log::warn(name() + ": peer closed the connection; reconnecting");
        break;
      }
      size_t start = 0;
      for (size_t i = 0; i < static_cast<size_t>(n); ++i) {
        if (buf[i] != '\n') continue;
        partial.append(buf + start, i - start);
        deliver(std::move(partial));
        partial.clear();
        start = i + 1;
      }
      partial.append(buf + start, static_cast<size_t>(n) - start);
    }
    // A last line without its newline is still a record once the peer has closed.
    if (!partial.empty()) deliver(std::move(partial));
  }

  void deliver(std::string line) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    queue_.push(std::move(line));
  }

  void fail(const std::string& what) {
    errors_.fetch_add(1);
    log::warn(name() + ": " + what);
  }

  std::string host_;
  uint16_t port_;
  Schema schema_{{"line", TypeId::String}};
  IngestQueue queue_;
  std::thread receiver_;
  std::atomic<bool> stopping_{false};
  std::atomic<size_t> errors_{0};
  size_t delivered_ = 0;
};

}  // namespace

std::unique_ptr<Source> make_socket_source(std::string host, uint16_t port, SourceOptions options) {
  return std::make_unique<SocketSource>(std::move(host), port, options);
}

}  // namespace sluice
