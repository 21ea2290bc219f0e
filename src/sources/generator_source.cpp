#include <algorithm>
#include <array>
#include <cmath>

#include "sluice/source.hpp"

namespace sluice {
namespace {

constexpr std::array<const char*, 100> kVocabulary = {
    "the", "of", "and", "to", "a", "in", "is", "it", "you", "that", "he", "was", "for", "on", "are", "with", "as",
    "his", "they", "be", "at", "one", "have", "this", "from", "or", "had", "by", "hot", "word", "but", "what",
    "some", "we", "can", "out", "other", "were", "all", "there", "when", "up", "use", "your", "how", "said", "an",
    "each", "she", "which", "do", "their", "time", "if", "will", "way", "about", "many", "then", "them", "write",
    "would", "like", "so", "these", "her", "long", "make", "thing", "see", "him", "two", "has", "look", "more",
    "day", "could", "go", "come", "did", "number", "sound", "no", "most", "people", "my", "over", "know", "water",
    "than", "call", "first", "who", "may", "down", "side", "been", "now", "find", "stream"};

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/// Seeded synthetic records; a batch depends only on the seed and its index.
class GeneratorSource final : public Source {
 public:
  GeneratorSource(GeneratorOptions generator, SourceOptions options) : g_(generator), options_(options) {
    SLUICE_EXPECTS(g_.rate > 0, "generator: rate must be positive, got " + std::to_string(g_.rate));
    SLUICE_EXPECTS(g_.distinct_keys > 0, "generator: keys must be positive, got " + std::to_string(g_.distinct_keys));
    if (options_.max_rate > 0) g_.rate = std::min(g_.rate, options_.max_rate);
    switch (g_.kind) {
      case GeneratorOptions::Kind::Words: schema_ = Schema{{"word", TypeId::String}}; break;
      case GeneratorOptions::Kind::Lines: schema_ = Schema{{"line", TypeId::String}}; break;
      case GeneratorOptions::Kind::Pairs: schema_ = Schema{{"key", TypeId::Int64}, {"value", TypeId::Int64}}; break;
    }
    // Zipf-like skew over the vocabulary: word i has weight 1 / (i + 1).
    double total = 0;
    for (size_t i = 0; i < kVocabulary.size(); ++i) total += 1.0 / static_cast<double>(i + 1);
    double acc = 0;
    for (size_t i = 0; i < kVocabulary.size(); ++i) {
      acc += 1.0 / static_cast<double>(i + 1) / total;
      cumulative_[i] = acc;
    }
  }

  std::string name() const override { return "generator"; }
  const Schema& schema() const override { return schema_; }
  void start(Time zero_time, Duration) override { zero_ = zero_time; }
  bool finished() const override { return g_.limit > 0 && produced_ >= g_.limit; }
  SourceCounters counters() const override { return SourceCounters{produced_, 0, 0}; }

  Table next_batch(Time t) override {
    const auto due = [&](Time at) { return static_cast<size_t>(std::floor(g_.rate * static_cast<double>((at - zero_).count()) / 1000.0)); };
    size_t count = due(t) - std::min(due(t), due_so_far_);
    due_so_far_ = due(t);
    if (g_.limit > 0) count = std::min(count, g_.limit - std::min(g_.limit, produced_));
    uint64_t state = g_.seed * 0x9e3779b97f4a7c15ULL + static_cast<uint64_t>((t - zero_).count());
    std::vector<Column> cols;
    if (g_.kind == GeneratorOptions::Kind::Pairs) {
      Column keys(TypeId::Int64), values(TypeId::Int64);
      keys.reserve(count);
      values.reserve(count);
      for (size_t i = 0; i < count; ++i) {
        keys.append<int64_t>(static_cast<int64_t>(splitmix64(state) % static_cast<uint64_t>(g_.distinct_keys)));
        values.append<int64_t>(static_cast<int64_t>(splitmix64(state) % 100));
      }
      cols.push_back(std::move(keys));
      cols.push_back(std::move(values));
    } else {
      Column text(TypeId::String);
      text.reserve(count, count * 8);
      std::string line;
      for (size_t i = 0; i < count; ++i) {
        if (g_.kind == GeneratorOptions::Kind::Words) {
          text.append_string(word(state));
          continue;
        }
        line.clear();
        const size_t words = 1 + splitmix64(state) % 12;
        for (size_t w = 0; w < words; ++w) {
          if (w) line += ' ';
          line += word(state);
        }
        text.append_string(line);
      }
      cols.push_back(std::move(text));
    }
    produced_ += count;
    return Table(schema_, std::move(cols));
  }

 private:
  const char* word(uint64_t& state) const {
    const double u = static_cast<double>(splitmix64(state) >> 11) * 0x1.0p-53;
    const auto it = std::lower_bound(cumulative_.begin(), cumulative_.end(), u);
    return kVocabulary[std::min<size_t>(static_cast<size_t>(it - cumulative_.begin()), kVocabulary.size() - 1)];
  }

  GeneratorOptions g_;
  SourceOptions options_;
  Schema schema_;
  Time zero_{};
  size_t due_so_far_ = 0;
  size_t produced_ = 0;
  std::array<double, kVocabulary.size()> cumulative_{};
};

}  // namespace

std::unique_ptr<Source> make_generator_source(GeneratorOptions generator, SourceOptions options) {
  return std::make_unique<GeneratorSource>(generator, options);
}

}  // namespace sluice
