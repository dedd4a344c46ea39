// Poller over epoll(7), Linux.
#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "poller.h"

namespace coloop {

struct NativeEvents {
  std::vector<epoll_event> list;
};

namespace {

// EPOLLRDHUP reports the peer's FIN without a read() returning 0 first (epoll_ctl(2), since
// Linux 2.6.17). EPOLLERR and EPOLLHUP are always reported and need not be asked for.
constexpr uint32_t kInterest = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;

int Control(int epfd, int op, int fd, int32_t token) {
  epoll_event event{};
  event.events = kInterest;
  // The fd rides along in the high half, so that wait() can report it beside the token.
  event.data.u64 = static_cast<uint32_t>(token) | (static_cast<uint64_t>(static_cast<uint32_t>(fd)) << 32);
  return epoll_ctl(epfd, op, fd, &event) == 0 ? 0 : -errno;
}

}  // namespace

Poller::Poller(int capacity) : capacity_(capacity) {}

Poller::~Poller() { close(); }

const char* Poller::OpenSyscall() { return "epoll_create1"; }

const char* Poller::ControlSyscall() { return "epoll_ctl"; }

int Poller::open() {
  if (fd_ >= 0) return 0;
  int fd = epoll_create1(EPOLL_CLOEXEC);
  if (fd < 0) return -errno;
  events_.reset(new NativeEvents{std::vector<epoll_event>(capacity_)});
  fd_ = fd;
  return 0;
}

int Poller::add(int fd, int32_t token) { return Control(fd_, EPOLL_CTL_ADD, fd, token); }

int Poller::modify(int fd, int32_t token) { return Control(fd_, EPOLL_CTL_MOD, fd, token); }

int Poller::remove(int fd) {
  // A non-null event pointer keeps kernels before 2.6.9 happy (epoll_ctl(2), BUGS).
  epoll_event unused{};
  return epoll_ctl(fd_, EPOLL_CTL_DEL, fd, &unused) == 0 ? 0 : -errno;
}

int Poller::wait(int timeout_ms, int32_t* out, int32_t* fds) {
  epoll_event* events = events_->list.data();
  int n = epoll_wait(fd_, events, capacity_, timeout_ms);
  if (n < 0) return -errno;
  for (int i = 0; i < n; ++i) {
    uint32_t e = events[i].events;
    int32_t bits = 0;
    if (e & EPOLLIN) bits |= kReadable;
    if (e & EPOLLOUT) bits |= kWritable;
    if (e & (EPOLLHUP | EPOLLRDHUP)) bits |= kHangup;
    if (e & EPOLLERR) bits |= kError;
    out[2 * i] = static_cast<int32_t>(static_cast<uint32_t>(events[i].data.u64));
    out[2 * i + 1] = bits;
    fds[i] = static_cast<int32_t>(events[i].data.u64 >> 32);
  }
  return n;
}

void Poller::close() {
  if (fd_ < 0) return;
  // close(2): on Linux the fd is released even when close reports EINTR, so never retry.
  ::close(fd_);
  fd_ = -1;
  events_.reset();
}

}  // namespace coloop
