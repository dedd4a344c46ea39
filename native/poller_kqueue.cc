// Poller over kqueue(2), macOS and the BSDs.
//
// On Linux this file is also built into the test-only addon coloop_kqueue_test against an
// emulation of the kevent calls it uses (native/test/kqueue_shim.h), so its logic runs in CI.
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <vector>

#ifdef COLOOP_KQUEUE_SHIM
#include "test/kqueue_shim.h"
#else
#include <sys/event.h>
#endif

#include "poller.h"

namespace coloop {

struct NativeEvents {
  std::vector<struct kevent> list;
};

namespace {

void* TokenToUdata(int32_t token) {
  return reinterpret_cast<void*>(static_cast<intptr_t>(token));
}

int32_t UdataToToken(void* udata) {
  return static_cast<int32_t>(reinterpret_cast<intptr_t>(udata));
}

// Applies `changes` one by one. EV_RECEIPT makes the kernel answer every change in the event list
// (EV_ERROR set, `data` = errno or 0) instead of stopping at the first failure, so no change is
// left half applied without us knowing (kqueue(2), EV_RECEIPT).
int Apply(int kq, struct kevent (&changes)[2]) {
  struct kevent results[2];
  int got = kevent(kq, changes, 2, results, 2, nullptr);
  if (got < 0) return -errno;
  for (int i = 0; i < got; ++i) {
    if ((results[i].flags & EV_ERROR) == 0 || results[i].data == 0) continue;
    // macOS 10.10/10.11 answer EPIPE when a write filter is added to a pipe or socket whose peer
    // already closed; the registration still took effect (mio, src/sys/unix/selector/kqueue.rs).
    if (results[i].data == EPIPE && results[i].filter == EVFILT_WRITE) continue;
    return -static_cast<int>(results[i].data);
  }
  return 0;
}

int Register(int kq, int fd, int32_t token) {
  struct kevent changes[2];
  EV_SET(&changes[0], fd, EVFILT_READ, EV_ADD | EV_CLEAR | EV_RECEIPT, 0, 0, TokenToUdata(token));
  EV_SET(&changes[1], fd, EVFILT_WRITE, EV_ADD | EV_CLEAR | EV_RECEIPT, 0, 0, TokenToUdata(token));
  return Apply(kq, changes);
}

}  // namespace

Poller::Poller(int capacity) : capacity_(capacity) {}

Poller::~Poller() { close(); }

const char* Poller::OpenSyscall() { return "kqueue"; }

const char* Poller::ControlSyscall() { return "kevent"; }

int Poller::open() {
  if (fd_ >= 0) return 0;
  int fd = kqueue();
  if (fd < 0) return -errno;
  // kqueue(2): the queue is not inherited by fork children, but its fd is by exec'd programs.
  if (fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
    int err = -errno;
    ::close(fd);
    return err;
  }
  events_.reset(new NativeEvents{std::vector<struct kevent>(capacity_)});
  fd_ = fd;
  return 0;
}

int Poller::add(int fd, int32_t token) { return Register(fd_, fd, token); }

// EV_ADD on an existing knote updates it in place, udata included (kqueue(2)).
int Poller::modify(int fd, int32_t token) { return Register(fd_, fd, token); }

int Poller::remove(int fd) {
  struct kevent changes[2];
  EV_SET(&changes[0], fd, EVFILT_READ, EV_DELETE | EV_RECEIPT, 0, 0, nullptr);
  EV_SET(&changes[1], fd, EVFILT_WRITE, EV_DELETE | EV_RECEIPT, 0, 0, nullptr);
  return Apply(fd_, changes);
}

int Poller::wait(int timeout_ms, int32_t* out, int32_t* fds) {
  timespec timeout{};
  timeout.tv_sec = timeout_ms / 1000;
  timeout.tv_nsec = static_cast<long>(timeout_ms % 1000) * 1000000L;
  struct kevent* events = events_->list.data();
  int n = kevent(fd_, nullptr, 0, events, capacity_, timeout_ms < 0 ? nullptr : &timeout);
  if (n < 0) return -errno;
  int pairs = 0;
  uintptr_t previous_ident = 0;
  for (int i = 0; i < n; ++i) {
    const struct kevent& e = events[i];
    int32_t bits = e.filter == EVFILT_READ ? kReadable : kWritable;
    // EV_EOF: the peer closed; a nonzero fflags then holds the socket error (kqueue(2)).
    if (e.flags & EV_EOF) bits |= e.fflags != 0 ? kHangup | kError : kHangup;
    // Both filters of one fd usually arrive side by side: report the fd once, as epoll does.
    if (pairs > 0 && e.ident == previous_ident) {
      out[2 * pairs - 1] |= bits;
      continue;
    }
    out[2 * pairs] = UdataToToken(e.udata);
    out[2 * pairs + 1] = bits;
    fds[pairs] = static_cast<int32_t>(e.ident);
    previous_ident = e.ident;
    ++pairs;
  }
  return pairs;
}

void Poller::close() {
  if (fd_ < 0) return;
  ::close(fd_);
  fd_ = -1;
  events_.reset();
}

}  // namespace coloop
