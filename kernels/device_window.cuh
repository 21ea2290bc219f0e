#pragma once
// The window ring on the device: panes of per-key partial aggregates that never leave device
// memory. A batch is reduced into a partial; at a slide the partials of the open pane are
// combined into a pane and the pane enters the ring. For invertible aggregates the window is
// updated as window + entering - leaving, so a slide costs the same whatever the window
// length; min and max recombine the panes. Partials are keyed by the 64-bit key of the
// keyed reduction; the caller maps keys back to key values.
#include <thrust/copy.h>
#include <thrust/for_each.h>
#include <thrust/iterator/counting_iterator.h>

#include <deque>
#include <utility>
#include <vector>

#include "grouped_reduce.cuh"

namespace sluice::gpu {

/// Per-key partial aggregates in @p Exec's memory: keys, and accumulators fold-major.
template <class Exec> struct DevicePartial {
  size_t groups = 0;
  typename Exec::template Array<uint64_t> key;
  typename Exec::template Array<uint64_t> accumulators;
};

/// How the accumulators of partials combine: sums and counts add up (with the pane's sign),
/// min and max fold again.
inline FoldView combining_fold(const FoldView& batch_fold) {
  FoldView f;
  f.op = batch_fold.op == kFoldMin || batch_fold.op == kFoldMax ? batch_fold.op : kFoldSum;
  f.float_acc = batch_fold.float_acc;
  f.input.type = f.float_acc ? kFloat64 : kInt64;
  return f;
}

struct GatherPartial {
  const int64_t* kept;
  const uint64_t* key_src;
  const uint64_t* acc_src;
  uint64_t src_groups;
  int32_t fold_count;
  uint64_t* key_out;
  uint64_t* acc_out;
  uint64_t groups;
  __host__ __device__ void operator()(int64_t g) const {
    const int64_t s = kept[g];
    key_out[g] = key_src[s];
    for (int32_t f = 0; f < fold_count; ++f) acc_out[static_cast<uint64_t>(f) * groups + g] = acc_src[static_cast<uint64_t>(f) * src_groups + s];
  }
};

/// Keeps groups whose fold @p fold is non-zero (the #records of a key), or, with
/// @p expire_after > 0, whose last-seen batch (fold @p fold) is recent enough.
struct KeepGroup {
  const uint64_t* values;
  uint64_t now;
  uint64_t expire_after;
  __host__ __device__ bool operator()(int64_t g) const {
    if (expire_after == 0) return values[g] != 0;
    return now - values[g] < expire_after;
  }
};

/// The groups of @p in for which @p keep holds (all of them: @p in is returned as it is).
template <class Exec> DevicePartial<Exec> keep_groups(Exec& exec, DevicePartial<Exec>&& in, size_t fold_count, KeepGroup keep) {
  auto policy = exec.policy();
  auto kept = exec.template alloc<int64_t>(in.groups);
  const auto kept_end = thrust::copy_if(policy, thrust::counting_iterator<int64_t>(0),
                                        thrust::counting_iterator<int64_t>(static_cast<int64_t>(in.groups)), kept.data(), keep);
  const size_t groups = static_cast<size_t>(kept_end - kept.data());
  if (groups == in.groups) return std::move(in);
  DevicePartial<Exec> out;
  out.groups = groups;
  out.key = exec.template alloc<uint64_t>(groups);
  out.accumulators = exec.template alloc<uint64_t>(groups * fold_count);
  thrust::for_each_n(policy, thrust::counting_iterator<int64_t>(0), static_cast<int64_t>(groups),
                     GatherPartial{kept.data(), in.key.data(), in.accumulators.data(), in.groups,
                                   static_cast<int32_t>(fold_count), out.key.data(), out.accumulators.data(), groups});
  return out;
}

/// Partials (+1 or -1 each) combined key by key with @p folds (see combining_fold); keys
/// whose fold @p records_fold sums to zero are dropped. Output order: first appearance
/// across @p parts in order, as on the CPU backend.
template <class Exec>
DevicePartial<Exec> combine_on_device(Exec& exec, const std::vector<const DevicePartial<Exec>*>& parts, const std::vector<int8_t>& signs,
                                      const std::vector<FoldView>& folds, size_t records_fold) {
  auto policy = exec.policy();
  const int32_t fold_count = static_cast<int32_t>(folds.size());
  size_t rows = 0;
  for (const auto* p : parts) rows += p->groups;
  DevicePartial<Exec> out;
  if (rows == 0) return out;
  auto keys = exec.template alloc<uint64_t>(rows);
  auto acc = exec.template alloc<uint64_t>(rows * static_cast<size_t>(fold_count));
  auto row_sign = exec.template alloc<int8_t>(rows);
  size_t at = 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    const DevicePartial<Exec>& p = *parts[i];
    if (p.groups == 0) continue;
    thrust::copy_n(policy, p.key.data(), p.groups, keys.data() + at);
    for (int32_t f = 0; f < fold_count; ++f)
      thrust::copy_n(policy, p.accumulators.data() + static_cast<size_t>(f) * p.groups, p.groups,
                     acc.data() + static_cast<size_t>(f) * rows + at);
    thrust::fill_n(policy, row_sign.data() + at, p.groups, signs[i]);
    at += p.groups;
  }
  GroupedInput in;
  in.rows = rows;
  ColumnView key;
  key.type = kInt64;  // 64-bit keys are exact keys here: no hashing, no verification
  key.values = keys.data();
  in.keys = {key};
  in.folds = folds;
  for (int32_t f = 0; f < fold_count; ++f) in.folds[static_cast<size_t>(f)].input.values = acc.data() + static_cast<size_t>(f) * rows;
  in.row_sign = row_sign.data();
  DeviceGroups<Exec> combined = grouped_reduce_in_place(exec, in);
  DevicePartial<Exec> all;
  all.groups = combined.groups;
  all.key = std::move(combined.key);
  all.accumulators = std::move(combined.accumulators);
  // Drop keys whose records summed to zero (every record left with a leaving pane).
  const KeepGroup non_empty{all.accumulators.data() + records_fold * all.groups, 0, 0};
  return keep_groups(exec, std::move(all), folds.size(), non_empty);
}

template <class Exec> class DeviceWindowRing {
 public:
  /// @p batch_folds: the folds a batch is reduced with; @p records_fold: the index of the
  /// CountRows fold (a key whose count reaches 0 leaves the window).
  DeviceWindowRing(Exec& exec, std::vector<FoldView> batch_folds, size_t records_fold, size_t panes, bool invertible)
      : exec_(&exec), records_fold_(records_fold), capacity_(panes), invertible_(invertible) {
    for (const FoldView& f : batch_folds) combine_folds_.push_back(combining_fold(f));
  }

  /// Adds the groups of a batch (from grouped_reduce_in_place) to the open pane.
  void add(DeviceGroups<Exec>&& batch) {
    DevicePartial<Exec> p;
    p.groups = batch.groups;
    p.key = std::move(batch.key);
    p.accumulators = std::move(batch.accumulators);
    open_.push_back(std::move(p));
  }

  /// Closes the open pane, slides the window, and returns the window's partial (valid until
  /// the next call).
  const DevicePartial<Exec>& slide() {
    std::vector<const DevicePartial<Exec>*> parts;
    for (const auto& p : open_) parts.push_back(&p);
    DevicePartial<Exec> pane = combine_on_device(*exec_, parts, std::vector<int8_t>(parts.size(), 1), combine_folds_, records_fold_);
    open_.clear();
    if (invertible_) {
      std::vector<const DevicePartial<Exec>*> window_parts{&window_, &pane};
      std::vector<int8_t> signs{1, 1};
      if (ring_.size() == capacity_) {
        window_parts.push_back(&ring_.front());
        signs.push_back(-1);
      }
      DevicePartial<Exec> next = combine_on_device(*exec_, window_parts, signs, combine_folds_, records_fold_);
      if (ring_.size() == capacity_) ring_.pop_front();
      ring_.push_back(std::move(pane));
      window_ = std::move(next);
      return window_;
    }
    if (ring_.size() == capacity_) ring_.pop_front();
    ring_.push_back(std::move(pane));
    std::vector<const DevicePartial<Exec>*> all;
    for (const auto& p : ring_) all.push_back(&p);
    window_ = combine_on_device(*exec_, all, std::vector<int8_t>(all.size(), 1), combine_folds_, records_fold_);
    return window_;
  }

  size_t panes() const { return ring_.size(); }

 private:
  Exec* exec_;
  std::vector<FoldView> combine_folds_;
  size_t records_fold_;
  size_t capacity_;
  bool invertible_;
  std::vector<DevicePartial<Exec>> open_;
  std::deque<DevicePartial<Exec>> ring_;
  DevicePartial<Exec> window_;
};

/// Running per-key state (update_state_by_key with built-in aggregates) on the device: each
/// batch's partial is combined into the state; a key that no batch touched for
/// @p expire_after batches is dropped (0: never). The state carries one extra accumulator
/// after the batch folds: the last batch that touched the key.
template <class Exec> class DeviceRunningState {
 public:
  DeviceRunningState(Exec& exec, const std::vector<FoldView>& batch_folds, size_t records_fold, size_t expire_after)
      : exec_(&exec), records_fold_(records_fold), expire_after_(expire_after) {
    for (const FoldView& f : batch_folds) combine_folds_.push_back(combining_fold(f));
    FoldView last_seen;
    last_seen.op = kFoldMax;
    last_seen.input.type = kInt64;
    combine_folds_.push_back(last_seen);
  }

  /// Folds a batch's groups into the state and returns it (valid until the next call).
  const DevicePartial<Exec>& update(DeviceGroups<Exec>&& batch) {
    ++batch_;
    const size_t batch_folds = combine_folds_.size() - 1;
    DevicePartial<Exec> touched;
    touched.groups = batch.groups;
    touched.key = std::move(batch.key);
    touched.accumulators = exec_->template alloc<uint64_t>(batch.groups * combine_folds_.size());
    auto policy = exec_->policy();
    thrust::copy_n(policy, batch.accumulators.data(), batch.groups * batch_folds, touched.accumulators.data());
    thrust::fill_n(policy, touched.accumulators.data() + batch.groups * batch_folds, batch.groups, batch_);
    DevicePartial<Exec> next = combine_on_device(*exec_, {&state_, &touched}, {1, 1}, combine_folds_, records_fold_);
    if (expire_after_ > 0) {
      const KeepGroup recent{next.accumulators.data() + batch_folds * next.groups, batch_, expire_after_};
      next = keep_groups(*exec_, std::move(next), combine_folds_.size(), recent);
    }
    state_ = std::move(next);
    return state_;
  }

  size_t fold_count() const { return combine_folds_.size(); }

 private:
  Exec* exec_;
  std::vector<FoldView> combine_folds_;
  size_t records_fold_;
  size_t expire_after_;
  uint64_t batch_ = 0;
  DevicePartial<Exec> state_;
};

/// Copies a partial's keys and accumulators to the host.
template <class Exec>
void download_partial(Exec& exec, const DevicePartial<Exec>& p, size_t fold_count, std::vector<uint64_t>& keys,
                      std::vector<uint64_t>& accumulators) {
  keys.resize(p.groups);
  accumulators.resize(p.groups * fold_count);
  exec.to_host(keys.data(), p.key.data(), keys.size() * sizeof(uint64_t));
  exec.to_host(accumulators.data(), p.accumulators.data(), accumulators.size() * sizeof(uint64_t));
}

}  // namespace sluice::gpu
