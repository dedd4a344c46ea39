// See kqueue_shim.h. State lives in a process-wide table keyed by the queue's fd, behind one mutex,
// because worker threads each open their own queue. It is test code: clarity over speed.
#include "kqueue_shim.h"

#include <fcntl.h>
#include <sys/epoll.h>

#include <algorithm>
#include <cerrno>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace {

struct Registration {
  bool read = false;
  bool write = false;
  void* read_udata = nullptr;
  void* write_udata = nullptr;
};

struct Queue {
  std::unordered_map<int, Registration> fds;
  // Events that did not fit the caller's list; a real kqueue keeps them queued in the kernel.
  std::vector<struct kevent> overflow;
};

std::mutex table_mutex;
std::unordered_map<int, Queue> table;

int ApplyChange(int kq, Queue& queue, const struct kevent& change) {
  int fd = static_cast<int>(change.ident);
  auto found = queue.fds.find(fd);
  Registration before = found == queue.fds.end() ? Registration{} : found->second;
  Registration after = before;
  bool read = change.filter == EVFILT_READ;
  if (change.filter != EVFILT_READ && change.filter != EVFILT_WRITE) return EINVAL;
  if (change.flags & EV_ADD) {
    (read ? after.read : after.write) = true;
    (read ? after.read_udata : after.write_udata) = change.udata;
  } else if (change.flags & EV_DELETE) {
    if (!(read ? before.read : before.write)) return fcntl(fd, F_GETFD) < 0 ? EBADF : ENOENT;
    (read ? after.read : after.write) = false;
  } else {
    return EINVAL;
  }

  bool had = before.read || before.write;
  bool has = after.read || after.write;
  epoll_event event{};
  uint32_t read_events = EPOLLIN | EPOLLRDHUP;
  uint32_t write_events = EPOLLOUT;
  event.events = EPOLLET | (after.read ? read_events : 0) | (after.write ? write_events : 0);
  event.data.fd = fd;
  int op = !had ? EPOLL_CTL_ADD : has ? EPOLL_CTL_MOD : EPOLL_CTL_DEL;
  int rc = epoll_ctl(kq, op, fd, &event);
  // The fd was closed and its number reused: epoll forgot it, as a kqueue would have.
  if (rc < 0 && errno == ENOENT && op == EPOLL_CTL_MOD) rc = epoll_ctl(kq, EPOLL_CTL_ADD, fd, &event);
  if (rc < 0) return errno;
  if (has) {
    queue.fds[fd] = after;
  } else {
    queue.fds.erase(fd);
  }
  return 0;
}

// Expands one epoll event into at most two kevents (one per registered filter).
void Translate(const epoll_event& e, const Registration& r, std::vector<struct kevent>& out) {
  int fd = e.data.fd;
  // A real kqueue puts so_error in fflags without consuming it; reading SO_ERROR here would clear
  // it before the caller's socketError(), so any nonzero value marks the error.
  uint32_t error = (e.events & EPOLLERR) ? EIO : 0;
  if (r.read && (e.events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
    uint16_t flags = (e.events & (EPOLLRDHUP | EPOLLHUP)) ? EV_EOF : 0;
    struct kevent k;
    EV_SET(&k, fd, EVFILT_READ, flags, error, 0, r.read_udata);
    out.push_back(k);
  }
  if (r.write && (e.events & (EPOLLOUT | EPOLLHUP | EPOLLERR))) {
    uint16_t flags = (e.events & (EPOLLHUP | EPOLLERR)) ? EV_EOF : 0;
    struct kevent k;
    EV_SET(&k, fd, EVFILT_WRITE, flags, error, 0, r.write_udata);
    out.push_back(k);
  }
}

int TimeoutMs(const struct timespec* timeout) {
  if (timeout == nullptr) return -1;
  long long ms = timeout->tv_sec * 1000LL + (timeout->tv_nsec + 999999) / 1000000;
  return static_cast<int>(std::min<long long>(ms, 0x7fffffff));
}

int Fail(int err) {
  errno = err;
  return -1;
}

}  // namespace

int kqueue() {
  int fd = epoll_create1(0);
  if (fd < 0) return -1;
  std::lock_guard<std::mutex> lock(table_mutex);
  // Replaces whatever a closed queue with the same fd number left behind.
  table[fd] = Queue{};
  return fd;
}

int kevent(int kq, const struct kevent* changelist, int nchanges, struct kevent* eventlist,
           int nevents, const struct timespec* timeout) {
  std::unique_lock<std::mutex> lock(table_mutex);
  auto found = table.find(kq);
  if (found == table.end()) return Fail(EBADF);
  Queue& queue = found->second;

  // Changes first. Receipts and errors go to the event list, and then kevent returns without
  // collecting events, as FreeBSD's kern_kevent does.
  int written = 0;
  for (int i = 0; i < nchanges; ++i) {
    int err = ApplyChange(kq, queue, changelist[i]);
    if (err == 0 && !(changelist[i].flags & EV_RECEIPT)) continue;
    if (written == nevents) {
      if (err != 0) return Fail(err);
      continue;
    }
    eventlist[written] = changelist[i];
    eventlist[written].flags |= EV_ERROR;
    eventlist[written].data = err;
    ++written;
  }
  if (written > 0 || nevents == 0) return written;

  if (!queue.overflow.empty()) {
    int n = std::min<int>(nevents, static_cast<int>(queue.overflow.size()));
    std::copy_n(queue.overflow.begin(), n, eventlist);
    queue.overflow.erase(queue.overflow.begin(), queue.overflow.begin() + n);
    return n;
  }

  // Each epoll event can become two kevents: ask for half as many so they nearly always fit.
  std::vector<epoll_event> ready(std::max(1, nevents / 2));
  lock.unlock();
  int n = epoll_wait(kq, ready.data(), static_cast<int>(ready.size()), TimeoutMs(timeout));
  if (n < 0) return -1;
  lock.lock();
  found = table.find(kq);
  if (found == table.end()) return Fail(EBADF);
  std::vector<struct kevent> translated;
  for (int i = 0; i < n; ++i) {
    auto registration = found->second.fds.find(ready[i].data.fd);
    if (registration != found->second.fds.end()) Translate(ready[i], registration->second, translated);
  }
  int count = std::min<int>(nevents, static_cast<int>(translated.size()));
  std::copy_n(translated.begin(), count, eventlist);
  found->second.overflow.assign(translated.begin() + count, translated.end());
  return count;
}
