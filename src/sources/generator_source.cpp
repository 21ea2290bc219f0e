#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>

#include "sluice/source.hpp"

namespace sluice {
namespace {

/// 200 common English words, most frequent first (the skew gives low indices more weight).
constexpr std::array<const char*, 200> kVocabulary = {
    "the",    "of",      "and",     "to",      "a",       "in",     "is",      "it",      "you",     "that",
    "he",     "was",     "for",     "on",      "are",     "with",   "as",      "his",     "they",    "be",
    "at",     "one",     "have",    "this",    "from",    "or",     "had",     "by",      "hot",     "word",
    "but",    "what",    "some",    "we",      "can",     "out",    "other",   "were",    "all",     "there",
    "when",   "up",      "use",     "your",    "how",     "said",   "an",      "each",    "she",     "which",
    "do",     "their",   "time",    "if",      "will",    "way",    "about",   "many",    "then",    "them",
    "write",  "would",   "like",    "so",      "these",   "her",    "long",    "make",    "thing",   "see",
    "him",    "two",     "has",     "look",    "more",    "day",    "could",   "go",      "come",    "did",
    "number", "sound",   "no",      "most",    "people",  "my",     "over",    "know",    "water",   "than",
    "call",   "first",   "who",     "may",     "down",    "side",   "been",    "now",     "find",    "any",
    "new",    "work",    "part",    "take",    "get",     "place",  "made",    "live",    "where",   "after",
    "back",   "little",  "only",    "round",   "man",     "year",   "came",    "show",    "every",   "good",
    "me",     "give",    "our",     "under",   "name",    "very",   "through", "just",    "form",    "sentence",
    "great",  "think",   "say",     "help",    "low",     "line",   "differ",  "turn",    "cause",   "much",
    "mean",   "before",  "move",    "right",   "boy",     "old",    "too",     "same",    "tell",    "does",
    "set",    "three",   "want",    "air",     "well",    "also",   "play",    "small",   "end",     "put",
    "home",   "read",    "hand",    "port",    "large",   "spell",  "add",     "even",    "land",    "here",
    "must",   "big",     "high",    "such",    "follow",  "act",    "why",     "ask",     "men",     "change",
    "went",   "light",   "kind",    "off",     "need",    "house",  "picture", "try",     "us",      "again",
    "animal", "point",   "mother",  "world",   "near",    "build",  "self",    "earth",   "father",  "stream"};

static_assert(kVocabulary.back() != nullptr, "kVocabulary must hold exactly as many words as its size");

/// splitmix64's output function: a good 64-bit mix of @p z.
uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/// splitmix64: small, fast, and good enough for synthetic data.
uint64_t next_random(uint64_t& state) { return mix64(state += 0x9e3779b97f4a7c15ULL); }

/// Seeded synthetic records; a batch depends only on the seed and its index.
class GeneratorSource final : public Source {
 public:
  GeneratorSource(GeneratorOptions generator, SourceOptions options) : g_(generator) {
    SLUICE_EXPECTS(g_.rate > 0, "generator: rate must be positive, got " + std::to_string(g_.rate) + " records/s");
    SLUICE_EXPECTS(g_.distinct_keys > 0,
                   "generator: distinct_keys must be positive, got " + std::to_string(g_.distinct_keys));
    SLUICE_EXPECTS(options.max_rate >= 0,
                   "generator: max_rate must not be negative, got " + std::to_string(options.max_rate));
    if (options.max_rate > 0) g_.rate = std::min(g_.rate, options.max_rate);
    switch (g_.kind) {
      case GeneratorOptions::Kind::Words: schema_ = Schema{{"word", TypeId::String}}; break;
      case GeneratorOptions::Kind::Lines: schema_ = Schema{{"line", TypeId::String}}; break;
      case GeneratorOptions::Kind::Pairs: schema_ = Schema{{"key", TypeId::Int64}, {"value", TypeId::Int64}}; break;
    }
    // Zipf-like skew over the vocabulary: word i has weight 1 / (i + 1).
    double total = 0;
    for (size_t i = 0; i < kVocabulary.size(); ++i) total += 1.0 / static_cast<double>(i + 1);
    double cumulative = 0;
    for (size_t i = 0; i < kVocabulary.size(); ++i) {
      cumulative += 1.0 / static_cast<double>(i + 1) / total;
      cumulative_[i] = cumulative;
    }
  }

  std::string name() const override { return "generator"; }
  const Schema& schema() const override { return schema_; }
  void start(Time zero_time, Duration interval) override {
    SLUICE_EXPECTS(interval.count() > 0, "generator: batch interval must be positive");
    zero_ = zero_time;
    interval_ = interval;
  }
  bool finished() const override { return g_.limit > 0 && produced_.load() >= g_.limit; }
  SourceCounters counters() const override { return SourceCounters{produced_.load(), 0, 0}; }

  Table next_batch(Time t) override {
    // Counting from the zero time (not adding rate * interval per batch) keeps fractional
    // rates exact over time: 2.5 records/s with 1 s batches gives 2, 3, 2, 3, ...
    size_t count = due_by(t) - std::min(due_by(t), due_by(t - interval_));
    if (g_.limit > 0) count = std::min(count, g_.limit - std::min(g_.limit, produced_.load()));
    const uint64_t batch_index = static_cast<uint64_t>((t - zero_).count() / interval_.count());
    uint64_t state = mix64(mix64(g_.seed) + mix64(batch_index + 1));

    std::vector<Column> columns;
    if (g_.kind == GeneratorOptions::Kind::Pairs) {
      Column keys(TypeId::Int64), values(TypeId::Int64);
      keys.reserve(count);
      values.reserve(count);
      for (size_t i = 0; i < count; ++i) {
        keys.append<int64_t>(static_cast<int64_t>(next_random(state) % static_cast<uint64_t>(g_.distinct_keys)));
        values.append<int64_t>(static_cast<int64_t>(next_random(state) % 100));
      }
      columns.push_back(std::move(keys));
      columns.push_back(std::move(values));
    } else {
      const bool lines = g_.kind == GeneratorOptions::Kind::Lines;
      Column text(TypeId::String);
      text.reserve(count, count * (lines ? 30 : 5));
      std::string line;
      for (size_t i = 0; i < count; ++i) {
        if (!lines) {
          text.append_string(word(state));
          continue;
        }
        line.clear();
        const size_t words = 1 + next_random(state) % 12;
        for (size_t w = 0; w < words; ++w) {
          if (w) line += ' ';
          line += word(state);
        }
        text.append_string(line);
      }
      columns.push_back(std::move(text));
    }
    produced_.fetch_add(count);
    return Table(schema_, std::move(columns));
  }

 private:
  /// Records due from the zero time up to @p at: floor(rate * elapsed seconds).
  size_t due_by(Time at) const {
    const int64_t elapsed_ms = std::max<int64_t>(0, (at - zero_).count());
    // The small epsilon keeps products such as 0.3 * 1000 ms from flooring to one less.
    return static_cast<size_t>(std::floor(g_.rate * static_cast<double>(elapsed_ms) / 1000.0 + 1e-9));
  }

  const char* word(uint64_t& state) const {
    const double u = static_cast<double>(next_random(state) >> 11) * 0x1.0p-53;  // uniform in [0, 1)
    const auto it = std::upper_bound(cumulative_.begin(), cumulative_.end(), u);
    return kVocabulary[std::min<size_t>(static_cast<size_t>(it - cumulative_.begin()), kVocabulary.size() - 1)];
  }

  GeneratorOptions g_;
  Schema schema_;
  Time zero_{};
  Duration interval_{1000};
  std::atomic<size_t> produced_{0};
  std::array<double, kVocabulary.size()> cumulative_{};
};

}  // namespace

std::unique_ptr<Source> make_generator_source(GeneratorOptions generator, SourceOptions options) {
  return std::make_unique<GeneratorSource>(generator, options);
}

}  // namespace sluice
