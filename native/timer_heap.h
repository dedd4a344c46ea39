// Pending timers as a binary min-heap, plain C++.
//
// Ordered by (deadline, insertion sequence) so timers with equal deadlines expire in the order they
// were scheduled (libuv src/timer.c compares start_id the same way). Ids are small dense ints taken
// from a free list, and an id -> heap position table makes cancel O(log n) without searching.
// Storage grows by amortised vector growth only; nothing is allocated per timer.
//
// An id is handed out again once its timer has expired (been returned by expire()) or been
// cancelled, so a caller must forget an id at that point: cancelling it later could hit the
// timer that reused it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace coloop {

class TimerHeap {
 public:
  // Adds a timer due at `deadline` (any clock, same unit throughout); returns its id.
  int32_t schedule(double deadline);
  // Removes a pending timer; false when `id` is not pending.
  bool cancel(int32_t id);
  // Moves up to `max` timers with deadline <= now out of the heap, writing their ids to `out` in
  // expiry order. Returns how many were written; the rest stay pending.
  size_t expire(double now, int32_t* out, size_t max);

  bool empty() const { return heap_.empty(); }
  size_t size() const { return heap_.size(); }
  // The earliest deadline; only meaningful when !empty().
  double earliest() const { return heap_.front().deadline; }
  void clear();

 private:
  struct Entry {
    double deadline;
    uint64_t seq;
    int32_t id;
  };
  static bool Before(const Entry& a, const Entry& b) {
    return a.deadline < b.deadline || (a.deadline == b.deadline && a.seq < b.seq);
  }
  void Place(size_t index, const Entry& entry);
  void SiftUp(size_t index);
  void SiftDown(size_t index);
  void RemoveAt(size_t index);

  std::vector<Entry> heap_;
  // position_[id]: index in heap_, or kFree when the id is not pending.
  std::vector<int32_t> position_;
  std::vector<int32_t> free_ids_;
  uint64_t next_seq_ = 0;
  static constexpr int32_t kFree = -1;
};

}  // namespace coloop
