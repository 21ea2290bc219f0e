// GPU benchmarks of the CUDA backend, each against a bound measured in the same run:
//  - reduceByKey over 100M (int64 key, int64 value) pairs with 1k, 1M and 50M distinct keys,
//    device-resident, against the device-to-device copy bandwidth;
//  - the cost of one window slide (sum and count, 100k keys) for windows of 2 to 64 slides;
//  - word count end to end from pinned host memory, one batch alone and a stream of batches
//    whose copies are prefetched while the batch before is counted, against the pinned
//    host-to-device rate;
//  - a flat_map split of the same text, the split and lower(word) as one device chain, and the
//    chain ending in count_by_value as one device reduction, against the same;
//  - the Yahoo Streaming Benchmark's query (parse JSON or CSV events, filter views, count per
//    ad, join the counts with the campaign table) end to end from pinned host memory, one
//    batch alone and a prefetched stream, against the same;
//  - a filter and a map expression over 50M pinned (int64, float64) rows, end to end (copy
//    in, kernels, results out), against the same;
//  - small batches (10k records, the 1 ms interval case) end to end, per batch, with the
//    kernel launches of one batch counted through CUPTI.
// Usage: bench_gpu [--out results.json] [--pairs N] [--text-mib M] [--expression-rows N] [--ysb-mib M]
//                  [--only reduce,window,wordcount,ysb,expressions,small]
// --only runs the named sections alone (a profiler's run of one workload); the bounds are
// always measured.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <atomic>

#if SLUICE_HAS_CUPTI
#include <cupti.h>
#endif

#include "cuda/prune_row_chain.hpp"
#include "device_runtime.hpp"
#include "gpu_engine.hpp"
#include "pipeline/expression.hpp"
#include "sluice/error.hpp"

namespace {

using sluice::gpu::ColumnView;
using sluice::gpu::DeviceEngine;
using sluice::gpu::FoldView;
using sluice::gpu::GroupedInput;

uint64_t splitmix(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

/// The best time of @p runs calls of @p body, after one untimed warm-up call.
template <class Body> double best_seconds(int runs, Body&& body) {
  body();
  double best = 1e300;
  for (int r = 0; r < runs; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    body();
    best = std::min(best, seconds_since(t0));
  }
  return best;
}

const char* strategy_name(sluice::gpu::GroupStrategy s) {
  return s == sluice::gpu::GroupStrategy::Hash ? "hash" : s == sluice::gpu::GroupStrategy::Sort ? "sort" : "auto";
}

/// The JSON results, rewritten after every section, so that a run cut short (a timeout, an
/// error) still leaves what it measured; "complete" says whether every section ran.
class Report {
 public:
  explicit Report(std::string path) : path_(std::move(path)) {}
  void set_device(const std::string& description) { device_ = description; }
  /// Appends @p section (entries of the top-level object, each ending in ",\n") and writes.
  void take(std::ostringstream& section) {
    body_ += section.str();
    section.str("");
    write(false, "");
  }
  void finish() { write(true, ""); }
  void fail(const std::string& error) { write(false, error); }

  static std::string quoted(const std::string& text) {
    std::string out = "\"";
    for (char c : text) {
      if (c == '"' || c == '\\') out += '\\';
      out += static_cast<unsigned char>(c) < 0x20 ? ' ' : c;
    }
    return out + "\"";
  }
 private:
  void write(bool complete, const std::string& error) const {
    std::ofstream out(path_);
    out << "{\n  \"device\": " << quoted(device_) << ",\n" << body_ << "  \"complete\": " << (complete ? "true" : "false");
    if (!error.empty()) out << ",\n  \"error\": " << quoted(error);
    out << "\n}\n";
  }
  std::string path_;
  std::string device_ = "unknown";
  std::string body_;
};

#if SLUICE_HAS_CUPTI
/// Counts kernel launches (every runtime launch ends in one of these driver calls).
class LaunchCounter {
 public:
  LaunchCounter() {
    check(cuptiSubscribe(&subscriber_, reinterpret_cast<CUpti_CallbackFunc>(&on_call), this), "cuptiSubscribe");
    for (CUpti_CallbackId id : {CUPTI_DRIVER_TRACE_CBID_cuLaunchKernel, CUPTI_DRIVER_TRACE_CBID_cuLaunchKernel_ptsz,
                                CUPTI_DRIVER_TRACE_CBID_cuLaunchKernelEx, CUPTI_DRIVER_TRACE_CBID_cuLaunchKernelEx_ptsz})
      check(cuptiEnableCallback(1, subscriber_, CUPTI_CB_DOMAIN_DRIVER_API, id), "cuptiEnableCallback");
  }
  ~LaunchCounter() { cuptiUnsubscribe(subscriber_); }
  uint64_t launches() const { return launches_.load(); }

 private:
  static void check(CUptiResult r, const char* call) {
    if (r != CUPTI_SUCCESS) {
      const char* text = nullptr;
      cuptiGetResultString(r, &text);
      throw sluice::Error(std::string("CUPTI ") + call + ": " + (text ? text : "unknown error"));
    }
  }
  static void CUPTIAPI on_call(void* self, CUpti_CallbackDomain, CUpti_CallbackId, const CUpti_CallbackData* data) {
    if (data->callbackSite == CUPTI_API_ENTER) static_cast<LaunchCounter*>(self)->launches_.fetch_add(1);
  }
  CUpti_SubscriberHandle subscriber_ = nullptr;
  std::atomic<uint64_t> launches_{0};
};
#endif

/// Kernel launches made by @p body, or -1 when they cannot be counted here (@p why says why).
template <class Body> int64_t count_launches(Body&& body, std::string& why) {
#if SLUICE_HAS_CUPTI
  try {
    LaunchCounter counter;
    body();
    return static_cast<int64_t>(counter.launches());
  } catch (const sluice::Error& e) {
    why = e.what();
    return -1;
  }
#else
  body();
  why = "built without CUPTI";
  return -1;
#endif
}

struct Pairs {
  std::shared_ptr<void> keys, values;
  size_t rows = 0;
};

/// @p rows pairs with keys uniform over @p distinct values, in pinned memory.
Pairs make_pairs(DeviceEngine& engine, size_t rows, uint64_t distinct, uint64_t seed) {
  Pairs p;
  p.rows = rows;
  p.keys = engine.allocate_pinned(rows * sizeof(int64_t));
  p.values = engine.allocate_pinned(rows * sizeof(int64_t));
  auto* k = static_cast<int64_t*>(p.keys.get());
  auto* v = static_cast<int64_t*>(p.values.get());
  uint64_t state = seed;
  for (size_t i = 0; i < rows; ++i) {
    const uint64_t r = splitmix(state);
    k[i] = static_cast<int64_t>(r % distinct);
    v[i] = static_cast<int64_t>(r >> 54);
  }
  return p;
}

GroupedInput sum_and_count_by_key(const Pairs& p, size_t rows) {
  GroupedInput in;
  in.rows = rows;
  ColumnView key, value;
  key.type = value.type = sluice::gpu::kInt64;
  key.values = p.keys.get();
  value.values = p.values.get();
  in.keys = {key};
  FoldView sum, count;
  sum.op = sluice::gpu::kFoldSum;
  sum.input = value;
  count.op = sluice::gpu::kFoldCountRows;
  in.folds = {sum, count};
  return in;
}

/// Lines of text in pinned memory as the engine's sources hand them over: the bytes, and
/// lines + 1 int32 offsets into them.
struct PinnedLines {
  std::shared_ptr<void> chars, offsets;
  size_t lines = 0;
  size_t text_bytes = 0;
  const char* text() const { return static_cast<const char*>(chars.get()); }
  const int32_t* line_offsets() const { return static_cast<const int32_t*>(offsets.get()); }
  size_t bytes() const { return text_bytes + (lines + 1) * sizeof(int32_t); }  ///< what crosses to the device
  std::vector<std::pair<const void*, size_t>> buffers() const {
    return {{chars.get(), text_bytes}, {offsets.get(), (lines + 1) * sizeof(int32_t)}};
  }
};

/// Lines from @p next_line (which appends one line, without its end, and returns false when
/// the text is full) copied into pinned memory.
template <class NextLine> PinnedLines pin_lines(DeviceEngine& engine, size_t bytes_wanted, NextLine&& next_line) {
  std::string text;
  text.reserve(bytes_wanted + 4096);
  std::vector<int32_t> offsets{0};
  while (text.size() < bytes_wanted && next_line(text)) {
    if (text.size() > static_cast<size_t>(INT32_MAX))
      throw sluice::Error("bench_gpu: " + std::to_string(bytes_wanted >> 20) + " MiB of text is more than the int32 offsets of a "
                          "string column address (2 GiB)");
    offsets.push_back(static_cast<int32_t>(text.size()));
  }
  PinnedLines p;
  p.lines = offsets.size() - 1;
  p.text_bytes = text.size();
  p.chars = engine.allocate_pinned(text.size());
  std::memcpy(p.chars.get(), text.data(), text.size());
  p.offsets = engine.allocate_pinned(offsets.size() * sizeof(int32_t));
  std::memcpy(p.offsets.get(), offsets.data(), offsets.size() * sizeof(int32_t));
  return p;
}

struct StreamTiming {
  double seconds = 0;
  double bytes = 0;
  uint64_t bytes_from_prefetch = 0;
};

/// A stream of @p batches batches the way the engine runs one: batch b is @p texts[b % 2],
/// and each batch's copy is prefetched on the copy stream while @p process(b, text) works on
/// the batch before. The clock starts before the first prefetch. Every byte must come from a
/// prefetched copy, or the stream measured plain copies: a shortfall is reported on stderr,
/// named by @p what. A stream stopped by an error still drops its prefetched copies, which
/// are keyed by the addresses of pinned buffers that may be freed next.
template <class Process>
StreamTiming time_prefetched_stream(DeviceEngine& engine, const PinnedLines (&texts)[2], int batches, const char* what,
                                    Process&& process) {
  struct RetireAll {
    DeviceEngine& engine;
    int64_t through;
    ~RetireAll() { engine.retire_prefetched(through); }
  } retire_all{engine, batches};
  StreamTiming t;
  const uint64_t prefetched_before = engine.memory().bytes_from_prefetch;
  const auto start = std::chrono::steady_clock::now();
  engine.prefetch(0, texts[0].buffers());
  for (int64_t b = 0; b < batches; ++b) {
    if (b + 1 < batches) engine.prefetch(b + 1, texts[(b + 1) % 2].buffers());
    process(b, texts[b % 2]);
    engine.retire_prefetched(b);
    t.bytes += static_cast<double>(texts[b % 2].bytes());
  }
  t.seconds = seconds_since(start);
  t.bytes_from_prefetch = engine.memory().bytes_from_prefetch - prefetched_before;
  if (static_cast<double>(t.bytes_from_prefetch) != t.bytes)
    std::fprintf(stderr, "%s: %.0f of the stream's %.0f bytes came from prefetched copies\n", what,
                 static_cast<double>(t.bytes_from_prefetch), t.bytes);
  return t;
}

/// The Yahoo Streaming Benchmark's events, as its generator makes them (uniform ad, ad type
/// and event type; user and page ids from pools of 100; 100 campaigns of 10 ads), in CSV or
/// in JSON (the original's format), and the views per campaign each batch holds.
class YsbBatches {
 public:
  static constexpr int kCampaigns = 100, kAdsPerCampaign = 10;

  YsbBatches() {
    for (int i = 0; i < 100; ++i) users_.push_back(uuid());
    for (int i = 0; i < 100; ++i) pages_.push_back(uuid());
    for (int c = 0; c < kCampaigns * kAdsPerCampaign; ++c) {
      ads_.push_back(uuid());
      campaign_of_ad_.emplace(ads_.back(), c / kAdsPerCampaign);
    }
  }

  /// A batch of about @p bytes of events; @p views_per_campaign gets its expected counts.
  PinnedLines make_batch(DeviceEngine& engine, size_t bytes, bool json, std::vector<int64_t>& views_per_campaign) {
    static const char* const kAdTypes[] = {"banner", "modal", "sponsored-search", "mail", "mobile"};
    static const char* const kEventTypes[] = {"view", "click", "purchase"};
    views_per_campaign.assign(kCampaigns, 0);
    return pin_lines(engine, bytes, [&](std::string& out) {
      const std::string& user = users_[splitmix(state_) % users_.size()];
      const std::string& page = pages_[splitmix(state_) % pages_.size()];
      const size_t ad = splitmix(state_) % ads_.size();
      const char* ad_type = kAdTypes[splitmix(state_) % 5];
      const size_t event_type = splitmix(state_) % 3;
      const std::string time = std::to_string(time_ms_++);
      if (event_type == 0) ++views_per_campaign[ad / kAdsPerCampaign];
      const char* const* pieces;
      const std::string* values[] = {&user, &page, &ads_[ad]};
      if (json) {
        static const char* const kJson[] = {"{\"user_id\":\"", "\",\"page_id\":\"", "\",\"ad_id\":\"", "\",\"ad_type\":\"",
                                            "\",\"event_type\":\"", "\",\"event_time\":", ",\"ip_address\":\"1.2.3.4\"}"};
        pieces = kJson;
      } else {
        static const char* const kCsv[] = {"", ",", ",", ",", ",", ",", ",1.2.3.4"};
        pieces = kCsv;
      }
      for (int k = 0; k < 3; ++k) (out += pieces[k]) += *values[k];
      (out += pieces[3]) += ad_type;
      (out += pieces[4]) += kEventTypes[event_type];
      (out += pieces[5]) += time;
      out += pieces[6];
      return true;
    });
  }

  /// The campaign of @p ad (an ad of the campaign table), or -1.
  int campaign_of(const std::string& ad) const {
    const auto it = campaign_of_ad_.find(ad);
    return it == campaign_of_ad_.end() ? -1 : it->second;
  }

 private:
  std::string uuid() {
    static const char* const kHex = "0123456789abcdef";
    std::string id;
    for (int i = 0; i < 32; ++i) {
      if (i == 8 || i == 12 || i == 16 || i == 20) id += '-';
      id += kHex[splitmix(state_) % 16];
    }
    return id;
  }
  uint64_t state_ = 11;
  int64_t time_ms_ = 1'700'000'000'000;
  std::vector<std::string> users_, pages_, ads_;
  std::unordered_map<std::string, int> campaign_of_ad_;
};

/// The YSB query on one batch, on the device the way the CUDA backend runs a pipeline: the
/// records are parsed there (the columns stay), then filter(event_type == 'view') and
/// select(ad_id) run as one row chain, cut down to the columns it reads as the backend cuts
/// it, that ends in a count per ad, and only the (at most 1000) ads and their counts come
/// back. The join with the static campaign table is many-to-one, so it is applied to the
/// per-ad counts on the host: summing the ads of each campaign gives the query's views per
/// campaign. Throws when a record fails to parse on the device.
class YsbQuery {
 public:
  explicit YsbQuery(bool json) : json_(json) {
    const sluice::Schema schema{{"user_id", sluice::TypeId::String},    {"page_id", sluice::TypeId::String},
                                {"ad_id", sluice::TypeId::String},      {"ad_type", sluice::TypeId::String},
                                {"event_type", sluice::TypeId::String}, {"event_time", sluice::TypeId::Int64},
                                {"ip_address", sluice::TypeId::String}};
    for (const sluice::Field& f : schema) {
      fields_.push_back(sluice::gpu::CsvFieldSpec{static_cast<int32_t>(f.type), 0});
      names_.push_back(f.name);
    }
    const sluice::RowProgram is_view = sluice::pipeline::Expression::parse("event_type == 'view'").compile(schema).value();
    std::vector<sluice::gpu::RowChainStep> steps(2);
    steps[0].kind = sluice::gpu::RowChainStep::kFilter;
    steps[0].programs = {&is_view};
    steps[1].kind = sluice::gpu::RowChainStep::kMap;
    steps[1].sources = {static_cast<int32_t>(schema.index_of("ad_id"))};
    chain_ = sluice::prune_row_chain(schema.size(), steps, {true});
    count_by_ad_.key_columns = {0};
    count_by_ad_.folds = {FoldView{}};  // count of rows
    count_by_ad_.fold_columns = {-1};
  }

  sluice::gpu::ParsedRecords parse(DeviceEngine& engine, const PinnedLines& batch) const {
    sluice::gpu::ParsedRecords parsed =
        json_ ? engine.parse_json(batch.text(), batch.line_offsets(), nullptr, batch.lines, fields_, names_)
              : engine.parse_csv(batch.text(), batch.line_offsets(), nullptr, batch.lines, fields_, ',', '"');
    if (parsed.rows != batch.lines || !parsed.malformed.empty() || !parsed.needs_host.empty())
      throw sluice::Error(std::string("ysb: the device parsed ") + std::to_string(parsed.rows) + " of " + std::to_string(batch.lines) +
                          (json_ ? " JSON" : " CSV") + " events (" + std::to_string(parsed.malformed.size()) + " malformed, " +
                          std::to_string(parsed.needs_host.size()) + " left to the host)");
    return parsed;
  }

  /// The views per ad of @p parsed's records, as (ad, count).
  std::vector<std::pair<std::string, int64_t>> count_views(DeviceEngine& engine, const sluice::gpu::ParsedRecords& parsed) const {
    std::vector<ColumnView> columns;
    for (size_t c : chain_.inputs) columns.push_back(view_of(parsed.columns[c]));
    const sluice::gpu::ChainGroupsOnHost counted = engine.reduce_row_chain(columns, parsed.rows, chain_.steps, count_by_ad_);
    std::vector<std::pair<std::string, int64_t>> out;
    const sluice::gpu::HostColumnBuffers& ads = counted.keys.at(0);
    for (size_t g = 0; g < counted.groups.groups; ++g)
      out.emplace_back(std::string(ads.chars.data() + ads.offsets[g], ads.chars.data() + ads.offsets[g + 1]),
                       static_cast<int64_t>(counted.groups.accumulators[g]));
    return out;
  }

  /// The whole query on @p batch: views per campaign.
  std::vector<int64_t> run(DeviceEngine& engine, const PinnedLines& batch, const YsbBatches& table) const {
    std::vector<int64_t> views(YsbBatches::kCampaigns, 0);
    for (const auto& [ad, count] : count_views(engine, parse(engine, batch))) {
      const int campaign = table.campaign_of(ad);
      if (campaign < 0) throw sluice::Error("ysb: the device counted views of an ad that no event has: '" + ad + "'");
      views[static_cast<size_t>(campaign)] += count;
    }
    return views;
  }

 private:
  /// Where a parsed column is: its device copy, or (when the engine kept none, over its
  /// budget for resident columns) the host copy it made instead.
  static ColumnView view_of(const sluice::gpu::HostColumnBuffers& c) {
    if (!c.on_host) return c.resident_view;
    ColumnView v;
    v.type = c.type;
    v.values = c.values.empty() ? nullptr : c.values.data();
    v.validity = c.nullable && !c.validity.empty() ? c.validity.data() : nullptr;
    v.offsets = c.offsets.empty() ? nullptr : c.offsets.data();
    v.chars = c.chars.empty() ? nullptr : c.chars.data();
    return v;
  }

  bool json_;
  std::vector<sluice::gpu::CsvFieldSpec> fields_;
  std::vector<std::string> names_;
  sluice::PrunedRowChain chain_;  ///< event_type and ad_id in, ad_id out
  sluice::gpu::ChainReduction count_by_ad_;
};

/// The YSB query from pinned memory, end to end, in @p json or CSV events of about @p bytes a
/// batch: one batch alone, the parse and the query's chain each alone, and a stream of
/// batches each copied while the one before is processed. Every result is checked against
/// the generator's counts. Appends the section to @p out.
void bench_ysb(DeviceEngine& engine, YsbBatches& events, bool json, size_t bytes, double h2d, std::ostringstream& out) {
  const char* format = json ? "JSON" : "CSV";
  std::vector<int64_t> expected[2];
  const PinnedLines batches[2] = {events.make_batch(engine, bytes, json, expected[0]), events.make_batch(engine, bytes, json, expected[1])};
  const YsbQuery query(json);
  auto check = [&](const std::vector<int64_t>& views, int which, const char* what) {
    if (views != expected[which])
      throw sluice::Error(std::string("ysb ") + format + ", " + what + ": views per campaign differ from the generator's");
  };
  const PinnedLines& first = batches[0];
  check(query.run(engine, first, events), 0, "one batch");
  const double one_s = best_seconds(5, [&] { check(query.run(engine, first, events), 0, "one batch"); });
  const double parse_s = best_seconds(5, [&] { query.parse(engine, first); });
  const sluice::gpu::ParsedRecords parsed = query.parse(engine, first);
  size_t ads = 0;
  const double chain_s = best_seconds(5, [&] { ads = query.count_views(engine, parsed).size(); });

  constexpr int kStreamBatches = 8;
  const std::string what = std::string("ysb ") + format;
  const StreamTiming stream =
      time_prefetched_stream(engine, batches, kStreamBatches, what.c_str(), [&](int64_t b, const PinnedLines& batch) {
        check(query.run(engine, batch, events), static_cast<int>(b % 2), "stream");
      });

  const double in = static_cast<double>(first.bytes()), events_in = static_cast<double>(first.lines);
  const double one_rate = in / one_s, stream_rate = stream.bytes / stream.seconds;
  std::printf("ysb, %s events from pinned memory: %zu events (%.0f MiB) a batch, %zu ads viewed; one batch best %.1f ms (parse %.1f ms, "
              "filter+select+count %.2f ms), %.1f M events/s, %.1f GB/s = %.2f of pinned H2D bound; a stream of %d batches: %.1f ms a "
              "batch, %.1f GB/s = %.2f of pinned H2D bound\n",
              format, first.lines, in / (1 << 20), ads, one_s * 1e3, parse_s * 1e3, chain_s * 1e3, events_in / one_s / 1e6, one_rate / 1e9,
              one_rate / h2d, kStreamBatches, stream.seconds / kStreamBatches * 1e3, stream_rate / 1e9, stream_rate / h2d);
  out << "    \"" << (json ? "json" : "csv") << "\": {\"events\": " << first.lines << ", \"input_bytes\": " << first.bytes()
      << ", \"ads_viewed\": " << ads << ", \"best_seconds\": " << one_s << ", \"parse_best_seconds\": " << parse_s
      << ", \"filter_select_count_best_seconds\": " << chain_s << ", \"events_per_s\": " << events_in / one_s
      << ", \"bytes_per_s\": " << one_rate << ", \"fraction_of_host_to_device_bound\": " << one_rate / h2d
      << ", \"stream\": {\"batches\": " << kStreamBatches << ", \"bytes_from_prefetch\": " << stream.bytes_from_prefetch
      << ", \"seconds_per_batch\": " << stream.seconds / kStreamBatches << ", \"bytes_per_s\": " << stream_rate
      << ", \"fraction_of_host_to_device_bound\": " << stream_rate / h2d << "}}";
}

}  // namespace

int main(int argc, char** argv) {
  std::string out_path = "bench_gpu.json";
  size_t pairs = 100'000'000;
  size_t text_mib = 512;
  size_t expression_rows = 50'000'000;
  size_t ysb_mib = 256;
  std::string only;  // the sections to run, comma-separated; empty: all
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--out") out_path = argv[i + 1];
    else if (flag == "--pairs") pairs = std::stoull(argv[i + 1]);
    else if (flag == "--text-mib") text_mib = std::stoull(argv[i + 1]);
    else if (flag == "--expression-rows") expression_rows = std::stoull(argv[i + 1]);
    else if (flag == "--ysb-mib") ysb_mib = std::stoull(argv[i + 1]);
    else if (flag == "--only") only = argv[i + 1];
    else {
      std::fprintf(stderr, "bench_gpu: unknown flag %s (use --out, --pairs, --text-mib, --expression-rows, --ysb-mib, --only)\n",
                   flag.c_str());
      return 2;
    }
  }
  const std::vector<std::string> sections = {"reduce", "window", "wordcount", "ysb", "expressions", "small"};
  for (size_t from = 0; !only.empty() && from <= only.size();) {
    const size_t comma = std::min(only.find(',', from), only.size());
    const std::string name = only.substr(from, comma - from);
    if (std::find(sections.begin(), sections.end(), name) == sections.end()) {
      std::fprintf(stderr, "bench_gpu: --only names an unknown section \"%s\" (sections: reduce, window, wordcount, ysb, expressions, small)\n",
                   name.c_str());
      return 2;
    }
    from = comma + 1;
  }
  const auto wanted = [&only](const char* section) { return only.empty() || ("," + only + ",").find("," + std::string(section) + ",") != std::string::npos; };
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // lines reach a log even when the run is cut short
  Report report(out_path);
  try {
    if (sluice::cuda::device_count() == 0) {
      std::fprintf(stderr, "bench_gpu: no CUDA device on this machine\n");
      return 77;
    }
    DeviceEngine engine(0);
    report.set_device(engine.description());
    std::ostringstream json;  // the section being measured, handed to the report when done
    std::printf("device: %s\n", engine.description().c_str());

    const auto bounds = sluice::cuda::measure_transfer_bounds(0, size_t{1} << 30, 10);
    const double d2d = bounds.device_memory_bytes_per_s, h2d = bounds.host_to_device_pinned_bytes_per_s;
    std::printf("bounds: device memory (copy, read+write) %.1f GB/s, pinned H2D %.1f GB/s, D2H %.1f GB/s\n", d2d / 1e9,
                h2d / 1e9, bounds.device_to_host_pinned_bytes_per_s / 1e9);
    json << "  \"bounds\": {\"device_memory_bytes_per_s\": " << d2d << ", \"host_to_device_pinned_bytes_per_s\": " << h2d
         << ", \"device_to_host_pinned_bytes_per_s\": " << bounds.device_to_host_pinned_bytes_per_s << "},\n";
    report.take(json);

    // reduceByKey, device-resident.
    if (wanted("reduce")) {
      json << "  \"reduce_by_key\": [\n";
      const uint64_t key_counts[] = {1'000, 1'000'000, 50'000'000};
      for (size_t i = 0; i < 3; ++i) {
        const Pairs p = make_pairs(engine, pairs, key_counts[i], 42 + i);
        const auto t = engine.time_reduce(sum_and_count_by_key(p, pairs), 5);
        const double bytes_per_s = 16.0 * static_cast<double>(pairs) / t.best_seconds;
        std::printf("reduce_by_key %zu pairs, %llu keys (%s%s, %zu estimated): best %.2f ms, median %.2f ms, %.2f G pairs/s, %.1f GB/s = "
                    "%.2f of device memory bound; copy in %.1f ms (%.2f of H2D bound)\n",
                    pairs, static_cast<unsigned long long>(key_counts[i]), strategy_name(t.strategy),
                    t.direct_block_tables ? ", direct block tables" : t.direct_device_table ? ", direct device table" : "",
                    t.estimated_keys, t.best_seconds * 1e3,
                    t.median_seconds * 1e3, static_cast<double>(pairs) / t.best_seconds / 1e9, bytes_per_s / 1e9, bytes_per_s / d2d,
                    t.copy_seconds * 1e3, 16.0 * static_cast<double>(pairs) / t.copy_seconds / h2d);
        json << "    {\"pairs\": " << pairs << ", \"distinct_keys\": " << key_counts[i] << ", \"groups\": " << t.groups
             << ", \"strategy\": \"" << strategy_name(t.strategy) << "\", \"direct_block_tables\": "
             << (t.direct_block_tables ? "true" : "false") << ", \"direct_device_table\": "
             << (t.direct_device_table ? "true" : "false") << ", \"estimated_keys\": " << t.estimated_keys
             << ", \"best_seconds\": " << t.best_seconds
             << ", \"median_seconds\": " << t.median_seconds << ", \"bytes_per_s\": " << bytes_per_s
             << ", \"fraction_of_device_memory_bound\": " << bytes_per_s / d2d << ", \"copy_seconds\": " << t.copy_seconds << "}"
             << (i < 2 ? ",\n" : "\n");
      }
      json << "  ],\n";
      report.take(json);
    }

    // Window slide cost against window length.
    if (wanted("window")) {
      json << "  \"window_slide\": [\n";
      const size_t pane_rows = 1'000'000;
      const Pairs pane_data = make_pairs(engine, pane_rows * 4, 100'000, 7);
      const size_t lengths[] = {2, 4, 8, 16, 32, 64};
      for (size_t li = 0; li < 6; ++li) {
        const size_t panes = lengths[li];
        GroupedInput batch = sum_and_count_by_key(pane_data, pane_rows);
        auto window = engine.make_window(batch.folds, 1, panes, true);
        std::vector<double> slide_seconds;
        for (size_t s = 0; s < panes + 10; ++s) {
          GroupedInput b = batch;
          const size_t offset = (s % 4) * pane_rows;
          b.keys[0].values = static_cast<const int64_t*>(pane_data.keys.get()) + offset;
          b.folds[0].input.values = static_cast<const int64_t*>(pane_data.values.get()) + offset;
          window->add_batch(b, false);
          const auto t0 = std::chrono::steady_clock::now();
          const auto result = window->slide();
          if (s >= panes) slide_seconds.push_back(seconds_since(t0));  // a full window: steady state
        }
        std::sort(slide_seconds.begin(), slide_seconds.end());
        const double median = slide_seconds[slide_seconds.size() / 2];
        std::printf("window slide, sum+count, 100k keys, 1M records per pane, %zu slides per window: median %.3f ms\n", panes,
                    median * 1e3);
        json << "    {\"slides_per_window\": " << panes << ", \"median_slide_seconds\": " << median << "}" << (li < 5 ? ",\n" : "\n");
      }
      json << "  ],\n";
      report.take(json);
    }

    // Word count from pinned host memory, end to end: one batch alone (copy, then count), and
    // a stream of batches the way the engine runs one, each batch's copy prefetched on the
    // copy stream while the one before it is counted.
    if (wanted("wordcount")) {
      const size_t bytes_wanted = text_mib << 20;
      std::vector<std::string> vocabulary;
      uint64_t state = 3;
      for (int w = 0; w < 50'000; ++w) {
        std::string word;
        for (size_t i = 3 + splitmix(state) % 8; i > 0; --i) word += static_cast<char>('a' + splitmix(state) % 26);
        vocabulary.push_back(word);
      }
      auto make_text = [&] {
        return pin_lines(engine, bytes_wanted, [&](std::string& out) {
          if (out.size() + 80 >= bytes_wanted) return false;
          for (int w = 0; w < 8; ++w) (out += vocabulary[splitmix(state) % vocabulary.size()]) += ' ';  // lines of about 8 words
          return true;
        });
      };
      const PinnedLines texts[2] = {make_text(), make_text()};
      const PinnedLines& first_text = texts[0];
      const char* chars = first_text.text();
      const size_t lines = first_text.lines, at = first_text.text_bytes;
      std::vector<double> runs;
      size_t distinct = 0;
      sluice::gpu::GroupStrategy strategy = sluice::gpu::GroupStrategy::Auto;
      for (int r = 0; r < 6; ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        const auto counts = engine.count_words(chars, first_text.line_offsets(), lines);
        if (r > 0) runs.push_back(seconds_since(t0));
        distinct = counts.counts.size();
        strategy = counts.strategy;
      }
      std::sort(runs.begin(), runs.end());
      const double bytes = static_cast<double>(first_text.bytes());
      const double rate = bytes / runs.front();
      std::printf("word count, %.0f MiB of text from pinned memory, %zu distinct words (%s): one batch, best %.1f ms, %.1f GB/s = "
                  "%.2f of pinned H2D bound\n",
                  static_cast<double>(at) / (1 << 20), distinct, strategy_name(strategy), runs.front() * 1e3, rate / 1e9, rate / h2d);

      // The stream: batch i + 1's text is prefetched before batch i is counted.
      constexpr int kStreamBatches = 8;
      size_t distinct_in[2] = {distinct, 0};  // each text's words, as one batch alone counts them
      distinct_in[1] = engine.count_words(texts[1].text(), texts[1].line_offsets(), texts[1].lines).counts.size();
      const StreamTiming stream =
          time_prefetched_stream(engine, texts, kStreamBatches, "word count", [&](int64_t batch, const PinnedLines& t) {
            const auto counts = engine.count_words(t.text(), t.line_offsets(), t.lines);
            if (counts.counts.size() != distinct_in[batch % 2])
              std::fprintf(stderr, "word count: batch %lld found %zu words, not %zu\n", static_cast<long long>(batch),
                           counts.counts.size(), distinct_in[batch % 2]);
          });
      const double stream_rate = stream.bytes / stream.seconds;
      std::printf("word count, a stream of %d such batches, each copied while the one before is counted: %.1f ms a batch, "
                  "%.1f GB/s = %.2f of pinned H2D bound\n",
                  kStreamBatches, stream.seconds / kStreamBatches * 1e3, stream_rate / 1e9, stream_rate / h2d);
      json << "  \"word_count\": {\"text_bytes\": " << at << ", \"lines\": " << lines << ", \"distinct_words\": " << distinct
           << ", \"strategy\": \"" << strategy_name(strategy) << "\", \"best_seconds\": " << runs.front()
           << ", \"bytes_per_s\": " << rate << ", \"fraction_of_host_to_device_bound\": " << rate / h2d
           << ", \"stream\": {\"batches\": " << kStreamBatches << ", \"bytes_from_prefetch\": " << stream.bytes_from_prefetch
           << ", \"seconds_per_batch\": " << stream.seconds / kStreamBatches
           << ", \"bytes_per_s\": " << stream_rate << ", \"fraction_of_host_to_device_bound\": " << stream_rate / h2d << "}},\n";
      report.take(json);

      // flat_map split of the same lines: tokens counted, scanned and scattered on the
      // device, one string column and the tokens' rows back.
      ColumnView text;
      text.type = sluice::gpu::kString;
      text.offsets = first_text.line_offsets();
      text.chars = chars;
      size_t tokens = 0;
      const double split_s = best_seconds(3, [&] { tokens = engine.split_strings(text, lines, "").source_rows.size(); });
      const double split_rate = bytes / split_s;
      std::printf("flat_map split, same text: %zu tokens, best %.1f ms, %.1f GB/s in = %.2f of pinned H2D bound\n", tokens,
                  split_s * 1e3, split_rate / 1e9, split_rate / h2d);
      json << "  \"flat_map_split\": {\"text_bytes\": " << at << ", \"tokens\": " << tokens << ", \"best_seconds\": " << split_s
           << ", \"bytes_per_s\": " << split_rate << ", \"fraction_of_host_to_device_bound\": " << split_rate / h2d << "},\n";

      // The split then lower(word) as one device chain: the words stay on the device between
      // the two operations, and only the lowered words come back.
      const sluice::Schema words_schema{{"word", sluice::TypeId::String}};
      const sluice::RowProgram lower = sluice::pipeline::Expression::parse("lower(word)").compile(words_schema).value();
      std::vector<sluice::gpu::RowChainStep> steps(2);
      steps[0].kind = sluice::gpu::RowChainStep::kSplit;
      steps[0].split_field = 0;
      steps[1].kind = sluice::gpu::RowChainStep::kMap;
      steps[1].programs = {&lower};
      steps[1].sources = {-1};
      const double chain_s = best_seconds(3, [&] { engine.run_row_chain({text}, lines, steps); });
      const double chain_rate = bytes / chain_s;
      std::printf("flat_map split + map lower(word) as one device chain: best %.1f ms, %.1f GB/s in = %.2f of pinned H2D bound\n",
                  chain_s * 1e3, chain_rate / 1e9, chain_rate / h2d);
      json << "  \"split_lower_chain\": {\"best_seconds\": " << chain_s << ", \"bytes_per_s\": " << chain_rate
           << ", \"fraction_of_host_to_device_bound\": " << chain_rate / h2d << "},\n";

      // The pipeline's word count (split, lower(word), count_by_value) as one device call:
      // the words are counted where the chain left them, and only the distinct words come
      // back. Against the dedicated count_words kernel above, this is the generic path's cost.
      sluice::gpu::ChainReduction count_by_word;
      count_by_word.key_columns = {0};
      count_by_word.folds = {sluice::gpu::FoldView{}};  // count of rows
      count_by_word.fold_columns = {-1};
      size_t fused_distinct = 0;
      const double fused_s =
          best_seconds(3, [&] { fused_distinct = engine.reduce_row_chain({text}, lines, steps, count_by_word).groups.groups; });
      const double fused_rate = bytes / fused_s;
      std::printf("flat_map split + lower(word) + count_by_value fused: %zu distinct words, best %.1f ms, %.1f GB/s in = %.2f of "
                  "pinned H2D bound\n",
                  fused_distinct, fused_s * 1e3, fused_rate / 1e9, fused_rate / h2d);
      json << "  \"split_lower_count_fused\": {\"distinct_words\": " << fused_distinct << ", \"best_seconds\": " << fused_s
           << ", \"bytes_per_s\": " << fused_rate << ", \"fraction_of_host_to_device_bound\": " << fused_rate / h2d << "},\n";
      report.take(json);
    }

    // The Yahoo Streaming Benchmark's query from pinned memory, end to end, on its events in
    // JSON (the original's format) and in CSV.
    // A failure of one format (a result that differs from the generator's) is reported in
    // its place, and what follows still runs.
    if (wanted("ysb")) {
      YsbBatches events;
      json << "  \"ysb\": {\n";
      for (const bool in_json : {true, false}) {
        std::ostringstream format;
        try {
          bench_ysb(engine, events, in_json, ysb_mib << 20, h2d, format);
          json << format.str();
        } catch (const std::exception& e) {
          std::fprintf(stderr, "bench_gpu: ysb: %s\n", e.what());
          json << "    \"" << (in_json ? "json" : "csv") << "\": {\"error\": " << Report::quoted(e.what()) << "}";
        }
        json << (in_json ? ",\n" : "\n");
      }
      json << "  },\n";
      report.take(json);
    }

    // Pipeline expressions from pinned memory, end to end: a filter (predicate into a byte
    // mask, compacted into the kept rows' indexes, which come back) and a map (its float64
    // column left on the device).
    if (wanted("expressions")) {
      const size_t rows = expression_rows;
      auto qty_buf = engine.allocate_pinned(rows * sizeof(int64_t));
      auto price_buf = engine.allocate_pinned(rows * sizeof(double));
      auto* qty = static_cast<int64_t*>(qty_buf.get());
      auto* price = static_cast<double*>(price_buf.get());
      uint64_t state = 9;
      for (size_t r = 0; r < rows; ++r) {
        const uint64_t x = splitmix(state);
        qty[r] = static_cast<int64_t>(x % 1000);
        price[r] = static_cast<double>((x >> 20) % 10000) / 100.0;
      }
      const sluice::Schema schema{{"qty", sluice::TypeId::Int64}, {"price", sluice::TypeId::Float64}};
      ColumnView q, p;
      q.type = sluice::gpu::kInt64;
      q.values = qty;
      p.type = sluice::gpu::kFloat64;
      p.values = price;
      const std::vector<ColumnView> columns{q, p};
      const char* filter_text = "qty > 500 and price < 50.0";
      const char* map_text = "price * qty + 1.0";
      const sluice::RowProgram filter = sluice::pipeline::Expression::parse(filter_text).compile(schema).value();
      const sluice::RowProgram map = sluice::pipeline::Expression::parse(map_text).compile(schema).value();
      size_t kept = 0;
      const double filter_s = best_seconds(3, [&] { kept = engine.select_rows(filter, columns, rows).size(); });
      const double map_s = best_seconds(3, [&] { engine.evaluate({&map}, columns, rows); });
      const double in_bytes = 16.0 * static_cast<double>(rows);
      std::printf("filter '%s', %zu rows from pinned memory: %zu kept, best %.1f ms, %.1f GB/s in = %.2f of pinned H2D bound\n",
                  filter_text, rows, kept, filter_s * 1e3, in_bytes / filter_s / 1e9, in_bytes / filter_s / h2d);
      std::printf("map '%s', %zu rows from pinned memory: best %.1f ms, %.1f GB/s in = %.2f of pinned H2D bound\n", map_text,
                  rows, map_s * 1e3, in_bytes / map_s / 1e9, in_bytes / map_s / h2d);
      json << "  \"expressions\": {\"rows\": " << rows << ", \"input_bytes\": " << in_bytes << ", \"filter\": {\"expression\": \""
           << filter_text << "\", \"kept\": " << kept << ", \"best_seconds\": " << filter_s
           << ", \"fraction_of_host_to_device_bound\": " << in_bytes / filter_s / h2d << "}, \"map\": {\"expression\": \"" << map_text
           << "\", \"best_seconds\": " << map_s << ", \"fraction_of_host_to_device_bound\": " << in_bytes / map_s / h2d << "}},\n";
      report.take(json);

      // transform's sort_by from pinned memory: one int64 key (radix sort of encoded words),
      // then two keys with a limit (merge sort over the columns); every row is gathered on
      // the device, where it stays.
      const std::vector<sluice::gpu::SortKeySpec> by_qty = {{0, 1}};
      const std::vector<sluice::gpu::SortKeySpec> by_qty_then_price = {{0, 1}, {1, 0}};
      const double radix_s = best_seconds(3, [&] { engine.sort_rows(columns, rows, by_qty, -1); });
      const double merge_s = best_seconds(3, [&] { engine.sort_rows(columns, rows, by_qty_then_price, 1000); });
      std::printf("sort_by qty desc, %zu rows from pinned memory: best %.1f ms, %.1f GB/s in = %.2f of pinned H2D bound\n", rows,
                  radix_s * 1e3, in_bytes / radix_s / 1e9, in_bytes / radix_s / h2d);
      std::printf("sort_by qty desc, price, limit 1000: best %.1f ms, %.1f GB/s in = %.2f of pinned H2D bound\n", merge_s * 1e3,
                  in_bytes / merge_s / 1e9, in_bytes / merge_s / h2d);
      json << "  \"sort\": {\"rows\": " << rows << ", \"one_int64_key\": {\"best_seconds\": " << radix_s
           << ", \"fraction_of_host_to_device_bound\": " << in_bytes / radix_s / h2d
           << "}, \"two_keys_limit_1000\": {\"best_seconds\": " << merge_s
           << ", \"fraction_of_host_to_device_bound\": " << in_bytes / merge_s / h2d << "}},\n";
      report.take(json);
    }

    // Small batches: 10k records end to end (copy in, reduce, results out), per batch.
    if (wanted("small")) {
      const Pairs small = make_pairs(engine, 10'000, 1'000, 5);
      const GroupedInput in = sum_and_count_by_key(small, 10'000);
      std::vector<double> runs;
      for (int r = 0; r < 200; ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        engine.reduce(in);
        if (r >= 20) runs.push_back(seconds_since(t0));
      }
      std::sort(runs.begin(), runs.end());
      const double median = runs[runs.size() / 2], p99 = runs[runs.size() * 99 / 100];
      std::string uncounted;
      const int64_t launches = count_launches([&] { engine.reduce(in); }, uncounted);
      std::printf("small batch, 10k records, 1k keys, end to end: median %.3f ms, p99 %.3f ms (1 ms interval %s), ", median * 1e3,
                  p99 * 1e3, p99 < 1e-3 ? "sustainable" : "NOT sustainable");
      if (launches >= 0) std::printf("%lld kernel launches per batch\n", static_cast<long long>(launches));
      else std::printf("kernel launches not counted: %s\n", uncounted.c_str());
      json << "  \"small_batch\": {\"records\": 10000, \"median_seconds\": " << median << ", \"p99_seconds\": " << p99
           << ", \"kernel_launches_per_batch\": ";
      if (launches >= 0) json << launches;
      else json << "null";
      json << "},\n";
      report.take(json);
    }
    report.finish();
    std::printf("wrote %s\n", out_path.c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_gpu: %s\n", e.what());
    report.fail(e.what());
    return 1;
  }
}
