// Test-only stand-in for <sys/event.h> on Linux: the few kqueue calls poller_kqueue.cc makes,
// emulated over epoll, so the kqueue backend's own logic (EV_RECEIPT handling, filter merging,
// token round trip) runs in the Linux test suite. Never part of the shipped addon.
//
// The "kqueue" is an epoll fd, so libuv can poll it exactly as it polls a real kqueue fd.
// Emulated: EVFILT_READ/EVFILT_WRITE; EV_ADD, EV_DELETE, EV_CLEAR (always edge-triggered),
// EV_RECEIPT, EV_ERROR, EV_EOF. Not emulated: other filters, EV_ONESHOT, `data` byte counts.
#pragma once

#include <time.h>

#include <cstdint>

struct kevent {
  uintptr_t ident;
  int16_t filter;
  uint16_t flags;
  uint32_t fflags;
  intptr_t data;
  void* udata;
};

// Values as in macOS's <sys/event.h>.
#define EVFILT_READ (-1)
#define EVFILT_WRITE (-2)
#define EV_ADD 0x0001
#define EV_DELETE 0x0002
#define EV_CLEAR 0x0020
#define EV_RECEIPT 0x0040
#define EV_ERROR 0x4000
#define EV_EOF 0x8000

#define EV_SET(kevp, a, b, c, d, e, f) \
  do {                                 \
    struct kevent* kev_ = (kevp);      \
    kev_->ident = (a);                 \
    kev_->filter = (b);                \
    kev_->flags = (c);                 \
    kev_->fflags = (d);                \
    kev_->data = (e);                  \
    kev_->udata = (f);                 \
  } while (0)

int kqueue();
int kevent(int kq, const struct kevent* changelist, int nchanges, struct kevent* eventlist,
           int nevents, const struct timespec* timeout);
