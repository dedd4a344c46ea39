/*
 * echo_uring_batch: echo_epoll with its reads batched through io_uring. Answers one design question
 * for coloop: is it enough to keep epoll and make a poll's reads in one system call (as coloop's
 * read-ahead could), or does io_uring's saving come from multishot receive (echo_uring.c)?
 *
 * Like echo_epoll: single-threaded, level-triggered epoll, nonblocking sockets, TCP_NODELAY, a
 * partial write keeps the rest and stops reading until it is flushed, a connection is closed on
 * EOF or error. But each epoll batch's readable sockets are read by one io_uring_enter: one
 * IORING_OP_RECV (MSG_DONTWAIT, so it never waits in the ring) per socket, each into a 64 KiB slot
 * of its own; then each is echoed with write(2), as echo_epoll does. `--read syscall` reads with
 * read(2) instead, in the same program (the control). Prints "listening on HOST:PORT" when ready,
 * exits 0 on SIGTERM or SIGINT.
 *
 *   cc -O2 -o echo_uring_batch echo_uring_batch.c -luring
 *   ./echo_uring_batch --port 0 [--host 127.0.0.1] [--backlog 4096] [--read uring|syscall]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define SLOT (64 * 1024)
#define MAX_EVENTS 256

#include "echo_epoll_conn.h"

static struct io_uring ring;

/* A read's outcome: `n` bytes, 0 at end of stream, or a negative errno. */
static void on_read(int fd, ssize_t n, const char *buf) {
  if (n > 0) {
    if (send_or_keep(fd, conn_for(fd), buf, (size_t)n) < 0) close_conn(fd);
  } else if (n == 0 || (n != -EAGAIN && n != -EWOULDBLOCK && n != -EINTR)) {
    close_conn(fd);
  }
}

int main(int argc, char **argv) {
  const char *host = "127.0.0.1";
  int port = 0, backlog = 4096, use_ring = 1;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--port") && i + 1 < argc) port = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--host") && i + 1 < argc) host = argv[++i];
    else if (!strcmp(argv[i], "--backlog") && i + 1 < argc) backlog = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--read") && i + 1 < argc && (!strcmp(argv[i + 1], "uring") || !strcmp(argv[i + 1], "syscall")))
      use_ring = strcmp(argv[++i], "syscall") != 0;
    else {
      fprintf(stderr, "usage: %s --port P [--host H] [--backlog N] [--read uring|syscall]\n", argv[0]);
      return 2;
    }
  }

  install_signals();
  int lfd = listen_tcp("echo_uring_batch", host, port, backlog, SOCK_NONBLOCK);
  watch_listener(lfd);

  struct io_uring_params p;
  memset(&p, 0, sizeof p);
  p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL;
  int r = io_uring_queue_init_params(MAX_EVENTS, &ring, &p);
  if (r < 0) {
    memset(&p, 0, sizeof p);
    r = io_uring_queue_init_params(MAX_EVENTS, &ring, &p);
  }
  if (r < 0) {
    fprintf(stderr, "io_uring_queue_init_params: %s\n", strerror(-r));
    return 1;
  }
  io_uring_register_ring_fd(&ring); /* optional: saves an fd lookup per enter */
  fprintf(stderr, "echo_uring_batch: reads by %s\n", use_ring ? "io_uring (one enter per batch)" : "read(2)");

  print_listening(lfd);

  char *slots = malloc((size_t)MAX_EVENTS * SLOT);
  if (!slots) die("malloc");
  struct epoll_event events[MAX_EVENTS];
  int readers[MAX_EVENTS];
  while (!stopping) {
    int n = epoll_wait(ep, events, MAX_EVENTS, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    int nr = 0;
    for (int i = 0; i < n; i++) {
      if (dispatch(lfd, &events[i])) readers[nr++] = events[i].data.fd;
    }
    if (nr == 0) continue;
    if (!use_ring) {
      for (int k = 0; k < nr; k++) {
        ssize_t got = read(readers[k], slots, SLOT);
        on_read(readers[k], got < 0 ? -errno : got, slots);
      }
      continue;
    }
    for (int k = 0; k < nr; k++) {
      struct io_uring_sqe *sqe = io_uring_get_sqe(&ring); /* the ring holds MAX_EVENTS: never NULL */
      io_uring_prep_recv(sqe, readers[k], slots + (size_t)k * SLOT, SLOT, MSG_DONTWAIT);
      io_uring_sqe_set_data64(sqe, (uint64_t)k);
    }
    /* MSG_DONTWAIT: every receive completes in this call, with bytes, 0 or -EAGAIN. */
    for (int reaped = 0; reaped < nr;) {
      r = io_uring_submit_and_wait(&ring, (unsigned)(nr - reaped));
      if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY) {
        fprintf(stderr, "io_uring_submit_and_wait: %s\n", strerror(-r));
        return 1;
      }
      struct io_uring_cqe *cqe;
      unsigned head, seen = 0;
      io_uring_for_each_cqe(&ring, head, cqe) {
        int k = (int)io_uring_cqe_get_data64(cqe);
        seen++;
        on_read(readers[k], cqe->res, slots + (size_t)k * SLOT);
      }
      io_uring_cq_advance(&ring, seen);
      reaped += (int)seen;
    }
  }
  io_uring_queue_exit(&ring);
  for (size_t fd = 0; fd < nconns; fd++) free(conns[fd].pending);
  free(conns);
  free(slots);
  close(ep);
  close(lfd);
  return 0;
}
