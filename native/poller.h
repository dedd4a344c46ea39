// The backend contract: readiness of many fds through one pollable kernel object.
//
// One class, two implementations chosen whole by the build (CMakeLists.txt): poller_epoll.cc on
// Linux, poller_kqueue.cc on macOS/BSD. Nothing here knows about N-API or libuv; js_poller.cc is
// the only user.
//
// - Registration is edge-triggered, once per fd, for read and write interest together: a caller
//   learns of a transition to readable/writable once and must then read/write until EAGAIN before
//   waiting again (epoll(7), "Level-triggered and edge-triggered"; kqueue(2), EV_CLEAR). This is
//   what lets the driver avoid a syscall per wait.
// - Every call returns 0 (or a count) on success and -errno on failure; nothing throws.
// - wait() translates kernel events into (token, bits) int32 pairs in a caller-owned array, through
//   a buffer allocated once in open(): no allocation per wait or per event.
// - Differences between the backends that callers see: adding an fd that is already registered is
//   -EEXIST with epoll but replaces the token with kqueue (EV_ADD on an existing knote modifies it);
//   with kqueue a pair is reported per filter, so the same token may appear twice in one wait when
//   the kernel does not return both filters of an fd next to each other (adjacent ones are merged).
#pragma once

#include <climits>
#include <cmath>
#include <cstdint>
#include <memory>

namespace coloop {

// Event bits written beside each token. The values are part of the JS contract (src/native.ts).
enum EventBits : int32_t {
  kReadable = 1,
  kWritable = 2,
  kHangup = 4,  // the peer closed its side (EPOLLHUP/EPOLLRDHUP, EV_EOF)
  kError = 8,   // an error is pending on the socket (EPOLLERR, EV_EOF with fflags)
};

// Converts a timeout in fractional milliseconds to the whole milliseconds the kernel call takes,
// rounding up so that a 0.4 ms wait sleeps 1 ms instead of returning at once and spinning (mio does
// the same: src/sys/unix/selector/epoll.rs). Negative means infinite (-1); huge values saturate.
inline int RoundUpTimeoutMs(double timeout_ms) {
  if (timeout_ms < 0) return -1;
  double whole = std::ceil(timeout_ms);
  if (whole >= static_cast<double>(INT_MAX)) return INT_MAX;
  return static_cast<int>(whole);
}

// The reused buffer of kernel event records (epoll_event or struct kevent); each backend defines it.
struct NativeEvents;

class Poller {
 public:
  // `capacity` (>= 1) bounds the events one wait() reports; the rest stay queued in the kernel.
  explicit Poller(int capacity);
  ~Poller();
  Poller(const Poller&) = delete;
  Poller& operator=(const Poller&) = delete;

  // Creates the kernel object (close-on-exec). 0 or -errno.
  int open();
  // The pollable fd of the kernel object, or -1 when not open.
  int fd() const { return fd_; }
  // The names of the syscalls behind open() and add/modify/remove, for error messages.
  static const char* OpenSyscall();
  static const char* ControlSyscall();

  // Registers `fd` edge-triggered for read and write; wait() reports it as `token`.
  int add(int fd, int32_t token);
  // Changes the token of a registered fd. Re-arming also re-reports its current readiness.
  int modify(int fd, int32_t token);
  int remove(int fd);

  // Waits up to `timeout_ms` whole milliseconds (-1: no limit, 0: poll) and writes one
  // (token, bits) pair per ready fd into `out` (room for capacity() pairs), and the fd itself into
  // `fds` (room for capacity()). Returns the number of pairs, or -errno (-EINTR when a signal
  // interrupted the wait).
  int wait(int timeout_ms, int32_t* out, int32_t* fds);

  int capacity() const { return capacity_; }
  // Closes the kernel object; registrations die with it. Idempotent.
  void close();

 private:
  int fd_ = -1;
  int capacity_;
  std::unique_ptr<NativeEvents> events_;
};

}  // namespace coloop
