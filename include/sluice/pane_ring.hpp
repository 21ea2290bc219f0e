#pragma once
/// @file pane_ring.hpp
/// @brief The ring of per-slide panes behind every window: window / slide panes, the
/// newest entering and the oldest leaving at each slide.

#include <cstddef>
#include <optional>
#include <vector>

namespace sluice {

template <class Pane> class PaneRing {
 public:
  /// A ring of @p capacity panes (window length / slide).
  explicit PaneRing(size_t capacity) : panes_(capacity) {}

  size_t capacity() const { return panes_.size(); }
  size_t size() const { return size_; }

  /// Adds the newest pane; returns the pane that left the window, if the ring was full.
  std::optional<Pane> push(Pane pane) {
    std::optional<Pane> leaving;
    const size_t slot = (head_ + size_) % panes_.size();
    if (size_ == panes_.size()) {
      leaving = std::move(*panes_[head_]);
      panes_[head_] = std::move(pane);
      head_ = (head_ + 1) % panes_.size();
    } else {
      panes_[slot] = std::move(pane);
      ++size_;
    }
    return leaving;
  }

  /// Visits the panes from oldest to newest.
  template <class F> void for_each(F&& f) const {
    for (size_t i = 0; i < size_; ++i) f(*panes_[(head_ + i) % panes_.size()]);
  }

 private:
  std::vector<std::optional<Pane>> panes_;
  size_t head_ = 0;
  size_t size_ = 0;
};

}  // namespace sluice
