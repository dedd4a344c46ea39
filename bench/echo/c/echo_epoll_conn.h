/*
 * The connection side the epoll echo servers share (echo_epoll.c, the reference, and
 * echo_uring_batch.c, which differs only in how it reads): per-connection state, the write that
 * keeps what the kernel does not take and stops reading until it is flushed, the flush, and
 * accepting. The including file defines nothing of this; it includes it after the system headers.
 */
#ifndef ECHO_EPOLL_CONN_H
#define ECHO_EPOLL_CONN_H

struct conn {
  char *pending; /* bytes read but not yet written back (NULL: none) */
  size_t off, len;
};

#include "echo_common.h"

static int ep; /* the epoll set */

static void close_conn(int fd) {
  struct conn *c = conn_for(fd);
  free(c->pending);
  c->pending = NULL;
  c->off = c->len = 0;
  close(fd); /* also removes it from the epoll set */
}

static void set_events(int fd, unsigned events) {
  struct epoll_event ev = {.events = events, .data.fd = fd};
  if (epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev) < 0) die("epoll_ctl MOD");
}

/* Writes as much of buf as the socket takes; keeps the rest. Returns -1 if the connection died. */
static int send_or_keep(int fd, struct conn *c, const char *buf, size_t len) {
  size_t done = 0;
  while (done < len) {
    ssize_t n = write(fd, buf + done, len - done);
    if (n > 0) {
      done += (size_t)n;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      size_t rest = len - done;
      char *keep = malloc(rest);
      if (!keep) die("malloc");
      memcpy(keep, buf + done, rest);
      c->pending = keep;
      c->off = 0;
      c->len = rest;
      set_events(fd, EPOLLOUT); /* stop reading until the backlog is flushed */
      return 0;
    } else {
      return -1;
    }
  }
  return 0;
}

static void on_writable(int fd, struct conn *c) {
  while (c->off < c->len) {
    ssize_t n = write(fd, c->pending + c->off, c->len - c->off);
    if (n > 0) {
      c->off += (size_t)n;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return; /* still EPOLLOUT */
    } else {
      close_conn(fd);
      return;
    }
  }
  free(c->pending);
  c->pending = NULL;
  c->off = c->len = 0;
  set_events(fd, EPOLLIN | EPOLLRDHUP);
}

static void accept_all(int lfd) {
  for (;;) {
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) perror("accept4");
      return; /* EAGAIN, or EMFILE & co.: level-triggered, the next wait retries */
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    conn_for(fd);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.fd = fd};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
      perror("epoll_ctl ADD");
      close(fd);
    }
  }
}

/* Handles one epoll event: accepts on the listener, flushes a connection's backlog; returns 1 when
   the event asks the caller to read the connection (it has no backlog and is readable), else 0. */
static int dispatch(int lfd, const struct epoll_event *event) {
  int fd = event->data.fd;
  unsigned ev = event->events;
  if (fd == lfd) {
    accept_all(lfd);
    return 0;
  }
  struct conn *c = conn_for(fd);
  if (c->pending) {
    if (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)) on_writable(fd, c);
    return 0;
  }
  return (ev & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP)) != 0;
}

/* Creates the epoll set (into `ep`) with the listening socket in it, level-triggered. */
static void watch_listener(int lfd) {
  ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die("epoll_create1");
  struct epoll_event lev = {.events = EPOLLIN, .data.fd = lfd};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) < 0) die("epoll_ctl listen");
}

#endif
