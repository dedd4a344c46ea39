#include "timer_heap.h"

namespace coloop {

int32_t TimerHeap::schedule(double deadline) {
  int32_t id;
  if (free_ids_.empty()) {
    id = static_cast<int32_t>(position_.size());
    position_.push_back(kFree);
  } else {
    id = free_ids_.back();
    free_ids_.pop_back();
  }
  heap_.push_back(Entry{deadline, next_seq_++, id});
  position_[id] = static_cast<int32_t>(heap_.size() - 1);
  SiftUp(heap_.size() - 1);
  return id;
}

bool TimerHeap::cancel(int32_t id) {
  if (id < 0 || static_cast<size_t>(id) >= position_.size() || position_[id] == kFree) return false;
  RemoveAt(static_cast<size_t>(position_[id]));
  return true;
}

size_t TimerHeap::expire(double now, int32_t* out, size_t max) {
  size_t count = 0;
  while (count < max && !heap_.empty() && heap_.front().deadline <= now) {
    out[count++] = heap_.front().id;
    RemoveAt(0);
  }
  return count;
}

void TimerHeap::clear() {
  heap_.clear();
  position_.clear();
  free_ids_.clear();
}

void TimerHeap::Place(size_t index, const Entry& entry) {
  heap_[index] = entry;
  position_[entry.id] = static_cast<int32_t>(index);
}

void TimerHeap::SiftUp(size_t index) {
  Entry entry = heap_[index];
  while (index > 0) {
    size_t parent = (index - 1) / 2;
    if (!Before(entry, heap_[parent])) break;
    Place(index, heap_[parent]);
    index = parent;
  }
  Place(index, entry);
}

void TimerHeap::SiftDown(size_t index) {
  Entry entry = heap_[index];
  size_t size = heap_.size();
  for (;;) {
    size_t child = 2 * index + 1;
    if (child >= size) break;
    if (child + 1 < size && Before(heap_[child + 1], heap_[child])) ++child;
    if (!Before(heap_[child], entry)) break;
    Place(index, heap_[child]);
    index = child;
  }
  Place(index, entry);
}

// Moves the last entry into the hole and restores order in whichever direction it violates.
void TimerHeap::RemoveAt(size_t index) {
  int32_t id = heap_[index].id;
  position_[id] = kFree;
  free_ids_.push_back(id);
  Entry last = heap_.back();
  heap_.pop_back();
  if (index == heap_.size()) return;
  Place(index, last);
  if (index > 0 && Before(last, heap_[(index - 1) / 2])) {
    SiftUp(index);
  } else {
    SiftDown(index);
  }
}

}  // namespace coloop
