/*
 * echo_epoll: the physical-limit reference for coloop's echo benchmarks.
 *
 * Minimal, single-threaded, level-triggered epoll, nonblocking sockets. Each readable event reads
 * once into a 64 KiB buffer and writes it straight back; whatever the kernel does not take is kept
 * per connection, reading stops (EPOLLOUT only) until it is flushed, so partial writes are handled
 * and a slow reader gets backpressure instead of unbounded memory. Prints "listening on HOST:PORT"
 * when ready and exits 0 on SIGTERM or SIGINT.
 *
 *   cc -O2 -o echo_epoll echo_epoll.c
 *   ./echo_epoll --port 0 [--host 127.0.0.1] [--backlog 4096]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF_SIZE (64 * 1024)
#define MAX_EVENTS 1024

#include "echo_epoll_conn.h"

static void on_readable(int fd, char *buf) {
  struct conn *c = conn_for(fd);
  ssize_t n = read(fd, buf, BUF_SIZE);
  if (n > 0) {
    if (send_or_keep(fd, c, buf, (size_t)n) < 0) close_conn(fd);
  } else if (n == 0) {
    close_conn(fd); /* end of stream: everything read has been echoed (or is lost with the peer) */
  } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
    close_conn(fd);
  }
}

int main(int argc, char **argv) {
  const char *host = "127.0.0.1";
  int port = 0, backlog = 4096;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--port") && i + 1 < argc) port = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--host") && i + 1 < argc) host = argv[++i];
    else if (!strcmp(argv[i], "--backlog") && i + 1 < argc) backlog = atoi(argv[++i]);
    else {
      fprintf(stderr, "usage: %s --port P [--host H] [--backlog N]\n", argv[0]);
      return 2;
    }
  }

  install_signals();
  int lfd = listen_tcp("echo_epoll", host, port, backlog, SOCK_NONBLOCK);
  watch_listener(lfd);

  print_listening(lfd);

  static char buf[BUF_SIZE];
  struct epoll_event events[MAX_EVENTS];
  while (!stopping) {
    int n = epoll_wait(ep, events, MAX_EVENTS, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (int i = 0; i < n; i++) {
      if (dispatch(lfd, &events[i])) on_readable(events[i].data.fd, buf);
    }
  }
  for (size_t fd = 0; fd < nconns; fd++) free(conns[fd].pending);
  free(conns);
  close(ep);
  close(lfd);
  return 0;
}
