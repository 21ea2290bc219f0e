#pragma once
/// @file dstream.hpp
/// @brief The typed API: DStream<T> and PairDStream<K, V>, with Spark Streaming's
/// operations and semantics. Each operation adds a node to the context's graph; user
/// functors are instantiated here, in the user's translation unit. Within a batch, records
/// keep no particular order unless an operation says so (this implementation emits keyed
/// results in order of each key's first appearance).

#include <algorithm>
#include <functional>
#include <iterator>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "sluice/backend.hpp"
#include "sluice/codec.hpp"
#include "sluice/pane_ring.hpp"
#include "sluice/stream_graph.hpp"
#if defined(__CUDACC__)
#include "sluice/device_functors.cuh"
#endif

namespace sluice {

namespace detail {
template <class F> struct is_device_fn : std::false_type {};
template <class F> struct is_device_fn<DeviceFn<F>> : std::true_type {};
/// True when nvcc compiles this and @p F is a device_fn over records that fit in kernels.
template <class F, class... Records> constexpr bool runs_on_device() {
#if defined(__CUDACC__)
  return is_device_fn<F>::value && (device::is_device_record<Records> && ...);
#else
  return false;
#endif
}
}  // namespace detail

template <class T> class DStream;
template <class K, class V> class PairDStream;

/// @brief Splits @p line on runs of whitespace (word count's flat_map).
inline std::vector<std::string> split_words(std::string_view line) {
  std::vector<std::string> words;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r' || line[i] == '\n')) ++i;
    const size_t start = i;
    while (i < line.size() && !(line[i] == ' ' || line[i] == '\t' || line[i] == '\r' || line[i] == '\n')) ++i;
    if (i > start) words.emplace_back(line.substr(start, i - start));
  }
  return words;
}

namespace detail {

template <class U> struct stream_for { using type = DStream<U>; };
template <class K, class V> struct stream_for<std::pair<K, V>> { using type = PairDStream<K, V>; };
/// DStream<U>, or PairDStream<K, V> when U is std::pair<K, V>.
template <class U> using stream_for_t = typename stream_for<U>::type;

template <class F, class... A> using result_t = std::decay_t<std::invoke_result_t<F, A...>>;
template <class R> using range_value_t = std::decay_t<decltype(*std::begin(std::declval<R&>()))>;

/// Values grouped by key, in order of each key's first appearance (deterministic output).
template <class K, class V> class OrderedGroups {
 public:
  /// Combines @p v into the entry of @p k with @p merge, or inserts it.
  template <class Merge> void merge(const K& k, V v, Merge&& merge) {
    auto [it, inserted] = index_.try_emplace(k, entries_.size());
    if (inserted) entries_.emplace_back(k, std::move(v));
    else entries_[it->second].second = merge(entries_[it->second].second, v);
  }
  V* find(const K& k) {
    auto it = index_.find(k);
    return it == index_.end() ? nullptr : &entries_[it->second].second;
  }
  const V* find(const K& k) const {
    auto it = index_.find(k);
    return it == index_.end() ? nullptr : &entries_[it->second].second;
  }
  V& at_or_insert(const K& k) {
    auto [it, inserted] = index_.try_emplace(k, entries_.size());
    if (inserted) entries_.emplace_back(k, V{});
    return entries_[it->second].second;
  }
  const std::vector<std::pair<K, V>>& entries() const { return entries_; }
  std::vector<std::pair<K, V>>& entries() { return entries_; }
  size_t size() const { return entries_.size(); }

 private:
  std::unordered_map<K, size_t, KeyHash<K>> index_;
  std::vector<std::pair<K, V>> entries_;
};

template <class K, class V, class F>
OrderedGroups<K, V> reduce_pairs(const std::vector<std::pair<K, V>>& pairs, const F& f) {
  OrderedGroups<K, V> groups;
  for (const auto& [k, v] : pairs) groups.merge(k, v, f);
  return groups;
}

/// A typed per-batch transformation: decode In, apply @p f (vector<In> -> vector<Out>), encode.
template <class Out, class In, class F> TableStream map_batches(const TableStream& s, std::string name, F f) {
  return s.transform(std::move(name), schema_of<Out>(), [f = std::move(f)](std::span<const Table* const> in, StepContext& ctx) {
    return encode<Out>(f(decode<In>(*in[0]), ctx));
  });
}

/// reduce_by_key_and_window: a ring of per-slide panes of per-key partial reductions.
/// Without an inverse, each slide recombines the panes (Spark's reduceByKeyAndWindow);
/// with one, the window's result is updated as f(inv(result, leaving), entering), so a
/// slide costs the same at any window length; keys stay (with their reduced value) until
/// @p filter drops them, as in Spark.
template <class K, class V, class F, class Inv, class Filter> class WindowReduceNode final : public StreamNode {
 public:
  WindowReduceNode(StreamNode::Ptr parent, Duration window, Duration slide, F f, std::optional<Inv> inv,
                   std::optional<Filter> filter)
      : StreamNode("reduce_by_key_and_window", schema_of<std::pair<K, V>>(), slide, {parent}),
        ring_(static_cast<size_t>(window / slide)), f_(std::move(f)), inv_(std::move(inv)), filter_(std::move(filter)) {
    set_window(window);
  }

  std::optional<Table> compute(StepContext& ctx) override {
    if (const Table* t = parent_output(0))
      for (const auto& [k, v] : decode<std::pair<K, V>>(*t)) current_.merge(k, v, f_);
    if (!due_at(ctx.time, ctx.zero_time)) return std::nullopt;
    Groups entering = std::move(current_);
    current_ = Groups{};
    std::vector<std::pair<K, V>> out;
    if (inv_) {
      std::optional<Groups> leaving = ring_.push(entering);
      Groups next;
      for (auto& [k, v] : result_.entries()) {
        V value = v;
        if (leaving)
          if (const V* old = leaving->find(k)) value = (*inv_)(value, *old);
        if (const V* in = entering.find(k)) value = f_(value, *in);
        next.merge(k, std::move(value), f_);
      }
      for (const auto& [k, v] : entering.entries())
        if (!result_.find(k)) next.merge(k, v, f_);
      if (filter_) {
        Groups kept;
        for (auto& [k, v] : next.entries())
          if ((*filter_)(std::pair<K, V>{k, v})) kept.merge(k, v, f_);
        next = std::move(kept);
      }
      result_ = std::move(next);
      out = result_.entries();
    } else {
      ring_.push(std::move(entering));
      Groups window;
      ring_.for_each([&](const Groups& pane) {
        for (const auto& [k, v] : pane.entries()) window.merge(k, v, f_);
      });
      for (auto& e : window.entries())
        if (!filter_ || (*filter_)(e)) out.push_back(std::move(e));
    }
    return encode(out);
  }

 private:
  using Groups = OrderedGroups<K, V>;
  PaneRing<Groups> ring_;
  Groups current_;
  Groups result_;
  F f_;
  std::optional<Inv> inv_;
  std::optional<Filter> filter_;
};

/// update_state_by_key: every key with state or new values is updated each batch; a
/// function returning none removes the key. The output is the whole state.
template <class K, class V, class S, class F> class UpdateStateNode final : public StreamNode {
 public:
  UpdateStateNode(StreamNode::Ptr parent, F f)
      : StreamNode("update_state_by_key", schema_of<std::pair<K, S>>(), parent->slide(), {parent}), f_(std::move(f)) {}

  std::optional<Table> compute(StepContext&) override {
    const Table* t = parent_output(0);
    if (!t) return std::nullopt;
    OrderedGroups<K, std::vector<V>> values;
    for (auto& [k, v] : decode<std::pair<K, V>>(*t)) values.at_or_insert(k).push_back(std::move(v));
    OrderedGroups<K, S> next;
    const std::vector<V> none;
    for (const auto& [k, s] : state_.entries()) {
      const std::vector<V>* vs = values.find(k);
      std::optional<S> updated = f_(vs ? *vs : none, std::optional<S>(s));
      if (updated) next.at_or_insert(k) = std::move(*updated);
    }
    for (const auto& [k, vs] : values.entries()) {
      if (state_.find(k)) continue;
      std::optional<S> created = f_(vs, std::optional<S>());
      if (created) next.at_or_insert(k) = std::move(*created);
    }
    state_ = std::move(next);
    return encode(state_.entries());
  }

 private:
  OrderedGroups<K, S> state_;
  F f_;
};

}  // namespace detail

/// @brief A stream of T: a sequence of batches of T, one per batch interval (or per slide).
template <class T> class DStream {
 public:
  using value_type = T;

  /// A typed view of @p stream; throws sluice::Error when its column types are not T's.
  explicit DStream(TableStream stream) : stream_(std::move(stream)) {
    const Schema expected = schema_of<T>();
    const Schema& actual = stream_.schema();
    bool ok = actual.size() == expected.size();
    for (size_t i = 0; ok && i < expected.size(); ++i) ok = actual[i].type == expected[i].type;
    SLUICE_EXPECTS(ok, "stream '" + stream_.node()->name() + "' with fields {" + actual.to_string() +
                           "} cannot be used as a stream of {" + expected.to_string() + "}");
  }

  const TableStream& table_stream() const { return stream_; }
  Duration slide() const { return stream_.slide(); }

  /// Applies @p f to every record.
  template <class F> auto map(F f) const -> detail::stream_for_t<detail::result_t<F, const T&>> {
    using U = detail::result_t<F, const T&>;
#if defined(__CUDACC__)
    if constexpr (detail::runs_on_device<F, T, U>()) {
      return detail::stream_for_t<U>(stream_.transform("map", schema_of<U>(), [f](std::span<const Table* const> in, StepContext& ctx) {
        if (ctx.backend->kind() == BackendKind::Cuda) return device::map_table<U, T>(*in[0], f);
        std::vector<U> out;
        for (const T& x : decode<T>(*in[0])) out.push_back(f(x));
        return encode(out);
      }));
    }
#endif
    return detail::stream_for_t<U>(detail::map_batches<U, T>(stream_, "map", [f](std::vector<T> in, StepContext&) {
      std::vector<U> out;
      out.reserve(in.size());
      for (const auto& x : in) out.push_back(f(x));
      return out;
    }));
  }

  /// Applies @p f to every record and flattens the containers it returns.
  template <class F> auto flat_map(F f) const
      -> detail::stream_for_t<detail::range_value_t<detail::result_t<F, const T&>>> {
    using U = detail::range_value_t<detail::result_t<F, const T&>>;
    return detail::stream_for_t<U>(detail::map_batches<U, T>(stream_, "flat_map", [f](std::vector<T> in, StepContext&) {
      std::vector<U> out;
      for (const auto& x : in)
        for (auto&& y : f(x)) out.push_back(std::move(y));
      return out;
    }));
  }

  /// Keeps the records for which @p f returns true.
  template <class F> detail::stream_for_t<T> filter(F f) const {
#if defined(__CUDACC__)
    if constexpr (detail::runs_on_device<F, T>()) {
      return detail::stream_for_t<T>(stream_.transform("filter", stream_.schema(), [f](std::span<const Table* const> in, StepContext& ctx) {
        if (ctx.backend->kind() == BackendKind::Cuda) return device::filter_table<T>(*in[0], f);
        const std::vector<T> values = decode<T>(*in[0]);
        std::vector<uint8_t> mask(values.size());
        for (size_t i = 0; i < values.size(); ++i) mask[i] = f(values[i]) ? 1 : 0;
        return in[0]->filter(mask);
      }));
    }
#endif
    return detail::stream_for_t<T>(stream_.transform("filter", stream_.schema(), [f](std::span<const Table* const> in, StepContext&) {
      const std::vector<T> values = decode<T>(*in[0]);
      std::vector<uint8_t> mask(values.size());
      for (size_t i = 0; i < values.size(); ++i) mask[i] = f(values[i]) ? 1 : 0;
      return in[0]->filter(mask);
    }));
  }

  /// Records of this stream and of @p other (same slide).
  detail::stream_for_t<T> union_with(const DStream<T>& other) const {
    return detail::stream_for_t<T>(stream_.union_with(other.stream_));
  }

  /// One record per batch: the number of records (0 for an empty batch).
  DStream<int64_t> count() const { return DStream<int64_t>(stream_.count()); }

  /// One record per non-empty batch: all records combined with @p f (associative, commutative).
  template <class F> detail::stream_for_t<T> reduce(F f) const {
    return detail::stream_for_t<T>(detail::map_batches<T, T>(stream_, "reduce", [f](std::vector<T> in, StepContext&) {
      std::vector<T> out;
      if (in.empty()) return out;
      T acc = in[0];
      for (size_t i = 1; i < in.size(); ++i) acc = f(acc, in[i]);
      out.push_back(std::move(acc));
      return out;
    }));
  }

  /// (record, occurrences) for each distinct record of the batch.
  PairDStream<T, int64_t> count_by_value() const {
    return map([](const T& x) { return std::pair<T, int64_t>(x, 1); }).reduce_by_key(std::plus<int64_t>{});
  }

  /// A function of the whole batch: @p f(const std::vector<T>&) or f(const std::vector<T>&, Time),
  /// returning a std::vector<U>.
  template <class F> auto transform(F f) const {
    if constexpr (std::is_invocable_v<F, const std::vector<T>&, Time>) {
      using U = detail::range_value_t<detail::result_t<F, const std::vector<T>&, Time>>;
      return detail::stream_for_t<U>(detail::map_batches<U, T>(
          stream_, "transform", [f](std::vector<T> in, StepContext& ctx) { return f(in, ctx.time); }));
    } else {
      using U = detail::range_value_t<detail::result_t<F, const std::vector<T>&>>;
      return detail::stream_for_t<U>(
          detail::map_batches<U, T>(stream_, "transform", [f](std::vector<T> in, StepContext&) { return f(in); }));
    }
  }

  // ---- windows ----
  /// All records of the last @p window, every @p slide (both multiples of the batch interval).
  detail::stream_for_t<T> window(Duration window, Duration slide) const {
    return detail::stream_for_t<T>(stream_.window(window, slide));
  }
  /// Number of records in the window (0 when it is empty).
  DStream<int64_t> count_by_window(Duration window, Duration slide) const {
    return DStream<int64_t>(stream_.count_by_window(window, slide));
  }
  /// All records of the window combined with @p f (nothing when the window is empty).
  template <class F> detail::stream_for_t<T> reduce_by_window(F f, Duration window, Duration slide) const {
    check_window("reduce_by_window", window, slide, this->slide());
    return reduce(f).window(window, slide).reduce(f);
  }
  /// Incremental: the window's value is updated with @p f for entering records and @p inv for leaving ones.
  template <class F, class Inv>
  detail::stream_for_t<T> reduce_by_window(F f, Inv inv, Duration window, Duration slide) const {
    check_window("reduce_by_window", window, slide, this->slide());
    auto keyed = map([](const T& x) { return std::pair<int32_t, T>(0, x); });
    return keyed.reduce_by_key_and_window(f, inv, window, slide).map([](const std::pair<int32_t, T>& p) { return p.second; });
  }
  /// (record, occurrences in the window), for records that occur in the window.
  PairDStream<T, int64_t> count_by_value_and_window(Duration window, Duration slide) const {
    check_window("count_by_value_and_window", window, slide, this->slide());
    return map([](const T& x) { return std::pair<T, int64_t>(x, 1); })
        .reduce_by_key_and_window(std::plus<int64_t>{}, std::minus<int64_t>{}, window, slide,
                                  [](const std::pair<T, int64_t>& p) { return p.second != 0; });
  }

  // ---- outputs ----
  /// Prints the first @p n records of every batch (Spark's format).
  void print(size_t n = 10) const { stream_.print(n); }
  /// One directory "PREFIX-TIME_MS[.SUFFIX]" per batch, written atomically.
  void save_as_text_files(std::string prefix, std::string suffix = "") const {
    stream_.save_as_text_files(std::move(prefix), std::move(suffix));
  }
  /// Calls @p f(Time, const std::vector<T>&) or f(Time, const Table&) for every batch.
  template <class F> void foreach_batch(F f) const {
    if constexpr (std::is_invocable_v<F, Time, const std::vector<T>&>) {
      stream_.foreach_batch([f](Time t, const Table& table) { f(t, decode<T>(table)); });
    } else {
      stream_.foreach_batch([f](Time t, const Table& table) { f(t, table); });
    }
  }

 protected:
  TableStream stream_;
};

/// @brief A stream of key-value pairs, with the by-key operations.
template <class K, class V> class PairDStream : public DStream<std::pair<K, V>> {
 public:
  using Pair = std::pair<K, V>;
  using DStream<Pair>::DStream;
  using DStream<Pair>::stream_;

  /// Applies @p f to every value, keeping the key.
  template <class F> auto map_values(F f) const -> PairDStream<K, detail::result_t<F, const V&>> {
    using U = detail::result_t<F, const V&>;
    return this->map([f](const Pair& p) { return std::pair<K, U>(p.first, f(p.second)); });
  }
  /// Applies @p f to every value and pairs the key with each element it returns.
  template <class F> auto flat_map_values(F f) const
      -> PairDStream<K, detail::range_value_t<detail::result_t<F, const V&>>> {
    using U = detail::range_value_t<detail::result_t<F, const V&>>;
    return this->flat_map([f](const Pair& p) {
      std::vector<std::pair<K, U>> out;
      for (auto&& u : f(p.second)) out.emplace_back(p.first, std::move(u));
      return out;
    });
  }
  /// One record per key: its values combined with @p f (associative, commutative).
  template <class F> PairDStream<K, V> reduce_by_key(F f) const {
#if defined(__CUDACC__)
    if constexpr (detail::runs_on_device<F, K, V>()) {
      return PairDStream<K, V>(this->table_stream().transform(
          "reduce_by_key", schema_of<Pair>(), [f](std::span<const Table* const> in, StepContext& ctx) {
            if (ctx.backend->kind() == BackendKind::Cuda) return device::reduce_by_key_table<K, V>(*in[0], f);
            return encode(detail::reduce_pairs(decode<Pair>(*in[0]), f).entries());
          }));
    }
#endif
    return PairDStream<K, V>(detail::map_batches<Pair, Pair>(stream_, "reduce_by_key", [f](std::vector<Pair> in, StepContext&) {
      return std::move(detail::reduce_pairs(in, f).entries());
    }));
  }
  /// One record per key: the list of its values in the batch.
  PairDStream<K, std::vector<V>> group_by_key() const {
    using Out = std::pair<K, std::vector<V>>;
    return PairDStream<K, std::vector<V>>(detail::map_batches<Out, Pair>(stream_, "group_by_key", [](std::vector<Pair> in, StepContext&) {
      detail::OrderedGroups<K, std::vector<V>> groups;
      for (auto& [k, v] : in) groups.at_or_insert(k).push_back(std::move(v));
      return std::move(groups.entries());
    }));
  }
  /// Spark's combineByKey: @p create makes a combiner from a key's first value,
  /// @p merge_value adds a value to it, @p merge_combiners merges two.
  template <class Create, class MergeValue, class MergeCombiners>
  auto combine_by_key(Create create, MergeValue merge_value, MergeCombiners merge_combiners) const
      -> PairDStream<K, detail::result_t<Create, const V&>> {
    using C = detail::result_t<Create, const V&>;
    using Out = std::pair<K, C>;
    (void)merge_combiners;  // one partition per batch: combiners never meet within a batch
    return PairDStream<K, C>(detail::map_batches<Out, Pair>(
        stream_, "combine_by_key", [create, merge_value](std::vector<Pair> in, StepContext&) {
          detail::OrderedGroups<K, std::optional<C>> groups;
          for (const auto& [k, v] : in) {
            std::optional<C>& c = groups.at_or_insert(k);
            c = c ? std::optional<C>(merge_value(*c, v)) : std::optional<C>(create(v));
          }
          std::vector<Out> out;
          for (auto& [k, c] : groups.entries()) out.emplace_back(k, std::move(*c));
          return out;
        }));
  }

  // ---- joins within a batch ----
  template <class W> PairDStream<K, std::pair<V, W>> join(const PairDStream<K, W>& other) const {
    return join_impl<std::pair<V, W>>(other, "join", false, false);
  }
  template <class W> PairDStream<K, std::pair<V, std::optional<W>>> left_outer_join(const PairDStream<K, W>& other) const {
    return join_impl<std::pair<V, std::optional<W>>>(other, "left_outer_join", true, false);
  }
  template <class W> PairDStream<K, std::pair<std::optional<V>, W>> right_outer_join(const PairDStream<K, W>& other) const {
    return join_impl<std::pair<std::optional<V>, W>>(other, "right_outer_join", false, true);
  }
  template <class W>
  PairDStream<K, std::pair<std::optional<V>, std::optional<W>>> full_outer_join(const PairDStream<K, W>& other) const {
    return join_impl<std::pair<std::optional<V>, std::optional<W>>>(other, "full_outer_join", true, true);
  }
  /// One record per key in either stream: (key, (values here, values there)).
  template <class W> PairDStream<K, std::pair<std::vector<V>, std::vector<W>>> cogroup(const PairDStream<K, W>& other) const {
    using Out = std::pair<K, std::pair<std::vector<V>, std::vector<W>>>;
    return PairDStream<K, std::pair<std::vector<V>, std::vector<W>>>(stream_.transform_with(
        "cogroup", schema_of<Out>(), {other.table_stream()}, [](std::span<const Table* const> in, StepContext&) {
          detail::OrderedGroups<K, std::pair<std::vector<V>, std::vector<W>>> groups;
          for (auto& [k, v] : decode<Pair>(*in[0])) groups.at_or_insert(k).first.push_back(std::move(v));
          for (auto& [k, w] : decode<std::pair<K, W>>(*in[1])) groups.at_or_insert(k).second.push_back(std::move(w));
          return encode<Out>(groups.entries());
        }));
  }

  /// Keeps a state per key across batches: @p f(new values, previous state) returns the next
  /// state, or none to remove the key. Called for every key that has state or new values.
  template <class F> auto update_state_by_key(F f) const
      -> PairDStream<K, typename detail::result_t<F, const std::vector<V>&, const std::optional<V>&>::value_type>
    requires std::is_invocable_v<F, const std::vector<V>&, const std::optional<V>&>
  {
    using S = typename detail::result_t<F, const std::vector<V>&, const std::optional<V>&>::value_type;
    return update_state_by_key<S>(std::move(f));
  }
  /// As above, with an explicit state type @p S: f(const std::vector<V>&, const std::optional<S>&) -> std::optional<S>.
  template <class S, class F> PairDStream<K, S> update_state_by_key(F f) const {
    return PairDStream<K, S>(stream_.add(std::make_shared<detail::UpdateStateNode<K, V, S, F>>(stream_.node(), std::move(f))));
  }

  // ---- windows by key ----
  /// Values of each key over the window combined with @p f, recombining the window's panes.
  template <class F> PairDStream<K, V> reduce_by_key_and_window(F f, Duration window, Duration slide) const {
    return window_reduce<F, F, bool (*)(const Pair&)>(std::move(f), std::nullopt, std::nullopt, window, slide);
  }
  /// Incremental: entering panes are added with @p f and leaving ones removed with @p inv;
  /// @p filter (optional) decides which keys stay in the window (Spark's filterFunc).
  template <class F, class Inv> PairDStream<K, V> reduce_by_key_and_window(F f, Inv inv, Duration window, Duration slide) const {
    return window_reduce<F, Inv, bool (*)(const Pair&)>(std::move(f), std::move(inv), std::nullopt, window, slide);
  }
  template <class F, class Inv, class Filter>
  PairDStream<K, V> reduce_by_key_and_window(F f, Inv inv, Duration window, Duration slide, Filter filter) const {
    return window_reduce<F, Inv, Filter>(std::move(f), std::move(inv), std::move(filter), window, slide);
  }
  /// The list of each key's values over the window.
  PairDStream<K, std::vector<V>> group_by_key_and_window(Duration window, Duration slide) const {
    return this->window(window, slide).group_by_key();
  }

 private:
  template <class F, class Inv, class Filter>
  PairDStream<K, V> window_reduce(F f, std::optional<Inv> inv, std::optional<Filter> filter, Duration window,
                                  Duration slide) const {
    check_window("reduce_by_key_and_window", window, slide, this->slide());
    return PairDStream<K, V>(stream_.add(std::make_shared<detail::WindowReduceNode<K, V, F, Inv, Filter>>(
        stream_.node(), window, slide, std::move(f), std::move(inv), std::move(filter))));
  }

  template <class Joined, class W>
  PairDStream<K, Joined> join_impl(const PairDStream<K, W>& other, std::string name, bool keep_left, bool keep_right) const {
    using Out = std::pair<K, Joined>;
    return PairDStream<K, Joined>(stream_.transform_with(
        std::move(name), schema_of<Out>(), {other.table_stream()},
        [keep_left, keep_right](std::span<const Table* const> in, StepContext&) {
          const std::vector<Pair> left = decode<Pair>(*in[0]);
          const std::vector<std::pair<K, W>> right = decode<std::pair<K, W>>(*in[1]);
          std::unordered_map<K, std::vector<size_t>, KeyHash<K>> right_rows;
          for (size_t i = 0; i < right.size(); ++i) right_rows[right[i].first].push_back(i);
          std::vector<uint8_t> right_matched(right.size(), 0);
          std::vector<Out> out;
          for (const auto& [k, v] : left) {
            auto it = right_rows.find(k);
            if (it != right_rows.end()) {
              for (size_t r : it->second) {
                right_matched[r] = 1;
                out.emplace_back(k, Joined{v, right[r].second});
              }
            } else if (keep_left) {
              if constexpr (std::is_constructible_v<Joined, const V&, std::nullopt_t>) out.emplace_back(k, Joined{v, std::nullopt});
            }
          }
          if (keep_right) {
            for (size_t r = 0; r < right.size(); ++r) {
              if (right_matched[r]) continue;
              if constexpr (std::is_constructible_v<Joined, std::nullopt_t, const W&>)
                out.emplace_back(right[r].first, Joined{std::nullopt, right[r].second});
            }
          }
          return encode<Out>(out);
        }));
  }
};

}  // namespace sluice
