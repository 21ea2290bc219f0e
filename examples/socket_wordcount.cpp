// Word count over a TCP socket with a 30 s window sliding every 10 s.
// Run `nc -lk 9999` in another terminal, then this program, and type lines into nc.
#include <sluice/sluice.hpp>

int main(int argc, char** argv) {
  using namespace std::chrono_literals;
  const uint16_t port = argc > 1 ? static_cast<uint16_t>(std::stoi(argv[1])) : 9999;
  sluice::StreamingContext ctx(1s);
  ctx.socket_text_stream("localhost", port)
      .flat_map([](const std::string& line) { return sluice::split_words(line); })
      .map([](const std::string& w) { return std::pair<std::string, int64_t>(w, 1); })
      .reduce_by_key_and_window(std::plus<int64_t>{}, std::minus<int64_t>{}, 30s, 10s)
      .print();
  ctx.start();
  ctx.await_termination();
}
