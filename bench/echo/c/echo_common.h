/*
 * echo_common.h: what the C reference echo servers (echo_epoll.c, echo_uring.c) share: the exit
 * flag and its signal handlers, fatal errors, the listening socket, the "listening on" line and
 * the table of connections by fd. Include it after defining `struct conn`.
 */
#ifndef COLOOP_ECHO_COMMON_H
#define COLOOP_ECHO_COMMON_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static volatile sig_atomic_t stopping = 0;
static void on_signal(int sig) { (void)sig; stopping = 1; }

/* SIGTERM and SIGINT set `stopping`, without SA_RESTART: the blocking wait returns EINTR. */
static void install_signals(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
}

static void die(const char *what) {
  perror(what);
  exit(1);
}

/* A bound, listening IPv4 socket (`flags`: extra socket() type flags); exits 2 on a bad host. */
static int listen_tcp(const char *name, const char *host, int port, int backlog, int flags) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | flags, 0);
  if (fd < 0) die("socket");
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
  if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
    fprintf(stderr, "%s: not an IPv4 address: %s\n", name, host);
    exit(2);
  }
  if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) die("bind");
  if (listen(fd, backlog) < 0) die("listen");
  return fd;
}

/* Prints "listening on HOST:PORT" (the port the kernel chose for port 0), the line the suite waits for. */
static void print_listening(int fd) {
  struct sockaddr_in addr;
  socklen_t alen = sizeof addr;
  getsockname(fd, (struct sockaddr *)&addr, &alen);
  char ip[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &addr.sin_addr, ip, sizeof ip);
  printf("listening on %s:%d\n", ip, ntohs(addr.sin_port));
  fflush(stdout);
}

/* Connections by fd, zeroed when the table grows. */
static struct conn *conns;
static size_t nconns;

static struct conn *conn_for(int fd) {
  if ((size_t)fd >= nconns) {
    size_t n = nconns ? nconns : 1024;
    while (n <= (size_t)fd) n *= 2;
    struct conn *grown = realloc(conns, n * sizeof *conns);
    if (!grown) die("realloc");
    memset(grown + nconns, 0, (n - nconns) * sizeof *conns);
    conns = grown;
    nconns = n;
  }
  return &conns[fd];
}

#endif
