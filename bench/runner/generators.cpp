#include "generators.hpp"

#include <array>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>

#include "sluice/error.hpp"

namespace sluice::bench {

namespace fs = std::filesystem;

namespace {

/// SplitMix64: fast, seedable and the same on every platform (std:: distributions are not).
struct Rng {
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  uint64_t below(uint64_t n) { return next() % n; }
  double unit() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
};

std::string uuid(Rng& rng) {
  const uint64_t hi = rng.next(), lo = rng.next();
  char buf[37];
  std::snprintf(buf, sizeof buf, "%08x-%04x-4%03x-%04x-%012llx", static_cast<unsigned>(hi >> 32),
                static_cast<unsigned>((hi >> 16) & 0xffff), static_cast<unsigned>(hi & 0xfff),
                static_cast<unsigned>(0x8000 | ((lo >> 48) & 0x3fff)),
                static_cast<unsigned long long>(lo & 0xffffffffffffull));
  return buf;
}

/// One event file being written: buffered, checked on close.
class EventFile {
 public:
  explicit EventFile(const fs::path& path) : path_(path), file_(std::fopen(path.c_str(), "wb")) {
    if (!file_) throw Error("sluice-bench generate: cannot create " + path.string());
  }
  ~EventFile() {
    if (file_) std::fclose(file_);
  }
  std::string& buffer() { return buffer_; }
  void flush_if_large() {
    if (buffer_.size() > (1u << 20)) flush();
  }
  uint64_t close() {
    flush();
    const bool ok = std::fclose(file_) == 0;
    file_ = nullptr;
    if (!ok) throw Error("sluice-bench generate: writing " + path_.string() + " failed");
    return bytes_;
  }

 private:
  void flush() {
    if (std::fwrite(buffer_.data(), 1, buffer_.size(), file_) != buffer_.size())
      throw Error("sluice-bench generate: writing " + path_.string() + " failed");
    bytes_ += buffer_.size();
    buffer_.clear();
  }
  fs::path path_;
  std::FILE* file_;
  std::string buffer_;
  uint64_t bytes_ = 0;
};

void append_int(std::string& out, int64_t v) { out += std::to_string(v); }

// ---- YSB: the original generator's schema and mix (uniform ad, ad type and event type;
// user and page ids from pools of 100; fixed ip address).
class YsbEvents {
 public:
  YsbEvents(Rng& rng, const fs::path& dir) {
    for (int i = 0; i < 100; ++i) users_.push_back(uuid(rng));
    for (int i = 0; i < 100; ++i) pages_.push_back(uuid(rng));
    std::ofstream campaigns(dir / "ysb-campaigns.csv");
    for (int c = 0; c < 100; ++c) {
      const std::string campaign = uuid(rng);
      for (int a = 0; a < 10; ++a) {
        ads_.push_back(uuid(rng));
        campaigns << ads_.back() << ',' << campaign << '\n';
      }
    }
    if (!campaigns.flush()) throw Error("sluice-bench generate: cannot write " + (dir / "ysb-campaigns.csv").string());
  }
  void append(Rng& rng, int64_t time, std::string& out) {
    static constexpr std::array<const char*, 5> kAdTypes{"banner", "modal", "sponsored-search", "mail", "mobile"};
    static constexpr std::array<const char*, 3> kEventTypes{"view", "click", "purchase"};
    out += users_[rng.below(users_.size())];
    out += ',';
    out += pages_[rng.below(pages_.size())];
    out += ',';
    out += ads_[rng.below(ads_.size())];
    out += ',';
    out += kAdTypes[rng.below(kAdTypes.size())];
    out += ',';
    out += kEventTypes[rng.below(kEventTypes.size())];
    out += ',';
    append_int(out, time);
    out += ",1.2.3.4\n";
  }

 private:
  std::vector<std::string> users_, pages_, ads_;
};

// ---- Word count: lines of real text, lowercased, words [a-z]+ joined by single spaces.
class TextEvents {
 public:
  TextEvents(const std::vector<fs::path>& corpus, uint64_t seed) {
    std::vector<fs::path> files = corpus;
    if (files.empty()) {
      const fs::path licences = "/usr/share/common-licenses";
      if (!fs::is_directory(licences))
        throw Error("sluice-bench generate: no corpus given (--corpus FILE) and " + licences.string() + " is missing");
      for (const auto& entry : fs::directory_iterator(licences))
        if (entry.is_regular_file()) files.push_back(entry.path());
      std::sort(files.begin(), files.end());
    }
    for (const auto& path : files) {
      std::ifstream in(path);
      if (!in) throw Error("sluice-bench generate: cannot read corpus file " + path.string());
      std::string raw;
      while (std::getline(in, raw)) {
        std::string line;
        bool in_word = false;
        for (char c : raw) {
          const char lower = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
          if (lower >= 'a' && lower <= 'z') {
            if (!in_word && !line.empty()) line += ' ';
            line += lower;
            in_word = true;
          } else {
            in_word = false;
          }
        }
        if (!line.empty()) lines_.push_back(std::move(line));
      }
    }
    if (lines_.empty()) throw Error("sluice-bench generate: the corpus has no words");
    next_ = seed % lines_.size();
  }
  void append(int64_t time, std::string& out) {
    append_int(out, time);
    out += ',';
    out += lines_[next_];
    out += '\n';
    next_ = (next_ + 1) % lines_.size();
  }

 private:
  std::vector<std::string> lines_;
  size_t next_ = 0;
};

// ---- NEXMark: the Beam/Flink generator's event mix (per 50 events: 1 person, 3 auctions,
// 46 bids), hot auction ratio 2, hot bidder and seller ratio 4 (hot ids: the first of the last
// block of 100), prices 10^U(0,6) * 100 cents.
class NexmarkEvents {
 public:
  void append(Rng& rng, int64_t index, int64_t time, std::string& out) {
    const int64_t slot = index % 50;
    if (slot == 0) {
      person(rng, time, out);
    } else if (slot <= 3) {
      auction(rng, time, out);
    } else {
      bid(rng, time, out);
    }
  }

 private:
  static constexpr int64_t kFirstId = 1000;
  static constexpr int64_t kAuctionsInFlight = 100;
  static constexpr int64_t kActivePeople = 1000;
  static constexpr int64_t kHotBlock = 100;  // hot auctions/people: the first id of the last block of 100
  static constexpr int64_t kIdLead = 10;     // bids may name auctions a little ahead of the last one

  static int64_t price(Rng& rng) { return std::llround(std::pow(10.0, rng.unit() * 6.0) * 100.0); }

  // A recent person: a hot one (the first of the last block of 100) 3 times out of 4.
  int64_t recent_person(Rng& rng) const {
    const int64_t last = persons_ - 1;
    if (rng.below(4) > 0) return kFirstId + last / kHotBlock * kHotBlock;
    const int64_t low = std::max<int64_t>(0, last - kActivePeople);
    return kFirstId + std::min(last, low + static_cast<int64_t>(rng.below(kActivePeople + kIdLead)));
  }

  void person(Rng& rng, int64_t time, std::string& out) {
    static constexpr std::array<const char*, 11> kFirst{"Peter", "Paul",  "Luke", "John",   "Saul",  "Vicky",
                                                        "Kate",  "Julie", "Sarah", "Deiter", "Walter"};
    static constexpr std::array<const char*, 9> kLast{"Shultz", "Abrams", "Spencer", "White", "Bartels",
                                                      "Walton", "Smith",  "Jones",   "Noris"};
    static constexpr std::array<const char*, 10> kCities{"Phoenix", "Los Angeles", "San Francisco", "Boise",
                                                         "Portland", "Bend", "Redmond", "Seattle", "Kent",
                                                         "Cheyenne"};
    static constexpr std::array<const char*, 6> kStates{"AZ", "CA", "ID", "OR", "WA", "WY"};
    const int64_t id = kFirstId + persons_++;
    // kind,event_time,id,auction,bidder,price,channel,url,name,city,state,category,seller,reserve,expires
    out += "0,";
    append_int(out, time);
    out += ',';
    append_int(out, id);
    out += ",0,0,0,,,";
    out += kFirst[rng.below(kFirst.size())];
    out += ' ';
    out += kLast[rng.below(kLast.size())];
    out += ',';
    out += kCities[rng.below(kCities.size())];
    out += ',';
    out += kStates[rng.below(kStates.size())];
    out += ",0,0,0,0\n";
  }

  void auction(Rng& rng, int64_t time, std::string& out) {
    const int64_t id = kFirstId + auctions_++;
    const int64_t initial = price(rng);
    out += "1,";
    append_int(out, time);
    out += ',';
    append_int(out, id);
    out += ",0,0,";
    append_int(out, initial);
    out += ",,,,,,";
    append_int(out, 10 + static_cast<int64_t>(rng.below(5)));
    out += ',';
    append_int(out, recent_person(rng));
    out += ',';
    append_int(out, initial + price(rng));
    out += ',';
    append_int(out, time + 1000 + static_cast<int64_t>(rng.below(60'000)));
    out += '\n';
  }

  void bid(Rng& rng, int64_t time, std::string& out) {
    static constexpr std::array<const char*, 4> kChannels{"Google", "Facebook", "Baidu", "Apple"};
    const int64_t last = auctions_ - 1;
    int64_t auction;
    if (rng.below(2) > 0) {
      auction = last / kHotBlock * kHotBlock;  // hot
    } else {
      const int64_t low = std::max<int64_t>(0, last - kAuctionsInFlight);
      auction = low + static_cast<int64_t>(rng.below(static_cast<uint64_t>(last - low + 1 + kIdLead)));
    }
    out += "2,";
    append_int(out, time);
    out += ",0,";
    append_int(out, kFirstId + auction);
    out += ',';
    append_int(out, recent_person(rng));
    out += ',';
    append_int(out, price(rng));
    out += ',';
    const size_t channel = rng.below(kChannels.size());
    out += kChannels[channel];
    out += ",https://www.nexmark.com/";
    for (int i = 0; i < 5; ++i) out += static_cast<char>('a' + rng.below(26));
    out += "/item.htm?query=1&channel_id=";
    append_int(out, static_cast<int64_t>(channel));
    out += ",,,,0,0,0,0\n";
  }

  // Each kind comes first in its block of 50, so a bid always has a person and an auction.
  int64_t persons_ = 0;
  int64_t auctions_ = 0;
};

}  // namespace

std::string data_kind(const std::string& workload) {
  if (workload == "ysb") return "ysb";
  if (workload == "wordcount") return "text";
  if (workload == "windowed") return "keyed";
  if (workload == "nexmark-q1" || workload == "nexmark-q2" || workload == "nexmark-q5" || workload == "nexmark-q7")
    return "nexmark";
  throw Error("sluice-bench: unknown workload '" + workload +
              "' (ysb, wordcount, windowed, nexmark-q1, nexmark-q2, nexmark-q5, nexmark-q7)");
}

nlohmann::json workload_params(const GenerateOptions& options) {
  const std::string kind = data_kind(options.workload);
  if (kind == "ysb") return {{"window_ms", 10'000}, {"slide_ms", 10'000}, {"campaigns", 100}, {"ads_per_campaign", 10}};
  if (kind == "text") return {{"window_ms", 30'000}, {"slide_ms", 10'000}};
  if (kind == "keyed") {
    if (options.keys <= 0) throw Error("sluice-bench generate: --keys must be positive");
    if (options.slide_ms <= 0 || options.slide_ms % 1000 != 0 || options.window_ms % options.slide_ms != 0)
      throw Error("sluice-bench generate: the slide (" + std::to_string(options.slide_ms) +
                  " ms) must be a positive multiple of 1000 ms and divide the window (" +
                  std::to_string(options.window_ms) + " ms)");
    return {{"keys", options.keys}, {"window_ms", options.window_ms}, {"slide_ms", options.slide_ms}};
  }
  if (options.workload == "nexmark-q5") return {{"window_ms", 10'000}, {"slide_ms", 2'000}};
  if (options.workload == "nexmark-q7") return {{"window_ms", 10'000}, {"slide_ms", 10'000}};
  return nlohmann::json::object();
}

nlohmann::json generate(const GenerateOptions& options, const fs::path& dir) {
  if (options.batches <= 0 || options.events_per_batch <= 0)
    throw Error("sluice-bench generate: --batches and --events-per-batch must be positive");
  const std::string kind = data_kind(options.workload);
  nlohmann::json params = workload_params(options);
  fs::create_directories(dir / "events");

  Rng rng{options.seed};
  std::unique_ptr<YsbEvents> ysb;
  std::unique_ptr<TextEvents> text;
  NexmarkEvents nexmark;
  if (kind == "ysb") ysb = std::make_unique<YsbEvents>(rng, dir);
  if (kind == "text") text = std::make_unique<TextEvents>(options.corpus, options.seed);

  uint64_t bytes = 0;
  int64_t index = 0;
  for (int64_t b = 0; b < options.batches; ++b) {
    char name[32];
    std::snprintf(name, sizeof name, "part-%05lld.csv", static_cast<long long>(b));
    EventFile file(dir / "events" / name);
    std::string& out = file.buffer();
    for (int64_t e = 0; e < options.events_per_batch; ++e, ++index) {
      // Spread evenly over the batch's second: every event_time lies in [b*1000, (b+1)*1000).
      const int64_t time = b * 1000 + e * 1000 / options.events_per_batch;
      if (ysb) {
        ysb->append(rng, time, out);
      } else if (text) {
        text->append(time, out);
      } else if (kind == "keyed") {
        append_int(out, time);
        out += ',';
        append_int(out, static_cast<int64_t>(rng.below(static_cast<uint64_t>(options.keys))));
        out += ',';
        append_int(out, static_cast<int64_t>(rng.below(1000)));
        out += '\n';
      } else {
        nexmark.append(rng, index, time, out);
      }
      file.flush_if_large();
    }
    bytes += file.close();
  }

  nlohmann::json meta = {{"workload", options.workload},
                         {"kind", kind},
                         {"batches", options.batches},
                         {"events", options.batches * options.events_per_batch},
                         {"events_per_batch", options.events_per_batch},
                         {"bytes", bytes},
                         {"batch_interval_ms", 1000},
                         {"seed", options.seed},
                         {"params", params}};
  std::ofstream(dir / "meta.json") << meta.dump(2) << '\n';
  return meta;
}

}  // namespace sluice::bench
