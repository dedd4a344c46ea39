/*
 * echo_uring: io_uring counterpart of coloop's bench/echo/c/echo_epoll.c, for measuring whether an
 * io_uring backend costs less server CPU per message than epoll.
 *
 * Same CLI and behaviour as echo_epoll: single-threaded, echoes every byte back on loopback TCP
 * (TCP_NODELAY on accepted sockets), partial sends are finished before more is sent, a connection
 * is closed on EOF or error. Prints "listening on HOST:PORT" when ready, exits 0 on SIGTERM/SIGINT.
 *
 * One io_uring_submit_and_wait(ring, 1) per loop iteration; all ready CQEs are reaped in a batch.
 * Accept is one multishot accept. Two receive strategies:
 *
 *   --recv single  per-connection 64 KiB buffer; one IORING_OP_RECV, then IORING_OP_SEND of what
 *                  arrived (re-issued for the rest after a short send), then the recv is re-armed.
 *                  Exactly echo_epoll's backpressure: nothing is read while a send is unfinished.
 *   --recv multi   (default) one multishot recv per connection drawing from a provided buffer ring
 *                  (--nbufs x --bufsize, default 256 x 16 KiB: a small ring stays cache-warm); each filled buffer is queued on its connection and sent
 *                  (one send in flight per connection, so order is kept) and returned to the ring
 *                  once fully sent. If the ring runs dry the multishot ends with -ENOBUFS and is
 *                  re-armed once buffers have come back (a peer that does not read can hold at most
 *                  the whole ring: that is this mode's backpressure).
 *
 * Two send strategies (--recv multi):
 *
 *   --send ring    (default) every send is an IORING_OP_SEND, submitted with the next wait
 *   --send sync    send(2) at once, MSG_DONTWAIT; only what the kernel does not take goes to the
 *                  ring. The question it answers: how much of io_uring's saving a runtime keeps
 *                  whose write() must say at once what the kernel took (coloop's does).
 *
 * Two ways to wait (--wait):
 *
 *   --wait ring    (default) io_uring_submit_and_wait(ring, 1)
 *   --wait epoll   as a runtime inside another event loop would: an eventfd registered with the
 *                  ring (io_uring_register_eventfd) sits in an epoll set; the loop blocks in
 *                  epoll_wait on that set (Node's libuv would), then submits and reaps without
 *                  waiting. On a DEFER_TASKRUN ring the eventfd, not the ring fd, is what wakes an
 *                  epoll set when a receive completes (bench/echo/c/uring_probe.c).
 *
 * Ring setup flags (--setup): auto tries SINGLE_ISSUER|DEFER_TASKRUN, then
 * COOP_TASKRUN|TASKRUN_FLAG, then none; defer|coop|none force one (fail if refused).
 *
 *   cc -O2 -o echo_uring echo_uring.c -luring
 *   ./echo_uring --port 0 [--host 127.0.0.1] [--backlog 4096] [--recv multi|single] [--setup auto]
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
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#define SINGLE_BUF (64 * 1024)
#define BGID 1

enum { OP_ACCEPT = 1, OP_RECV = 2, OP_SEND = 3 };
#define UD(op, fd) (((uint64_t)(op) << 32) | (uint32_t)(fd))

struct conn {
  /* single mode */
  char *buf;
  uint32_t off, len;
  /* multi mode: FIFO of ring buffers to send (linked through bnext[]) */
  int qhead, qtail;
  uint8_t recv_armed, send_inflight, closing, starved, open;
};


#include "echo_common.h"

static struct io_uring ring;
static int lfd, multi = 1, sync_send = 0, wait_epoll = 0;

/* buffer ring (multi mode) */
static struct io_uring_buf_ring *br;
static char *bufbase;
static unsigned nbufs = 256, bufsize = 16384, brmask;
static int *bnext;           /* next buffer in a connection's send queue */
static uint32_t *blen, *boff; /* bytes in buffer, bytes of it already sent */
static unsigned returned;    /* buffers added to the ring this batch, not yet advanced */
static int *starved;         /* fds whose multishot ended with ENOBUFS */
static size_t nstarved, capstarved;

static void die_err(const char *what, int err) {
  fprintf(stderr, "%s: %s\n", what, strerror(err < 0 ? -err : err));
  exit(1);
}

static struct io_uring_sqe *sqe_get(void) {
  struct io_uring_sqe *sqe;
  while (!(sqe = io_uring_get_sqe(&ring))) {
    int r = io_uring_submit(&ring);
    if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY) die_err("io_uring_submit", r);
  }
  return sqe;
}

static void arm_accept(void) {
  struct io_uring_sqe *sqe = sqe_get();
  io_uring_prep_multishot_accept(sqe, lfd, NULL, NULL, SOCK_CLOEXEC);
  io_uring_sqe_set_data64(sqe, UD(OP_ACCEPT, lfd));
}

static void arm_recv(int fd, struct conn *c) {
  struct io_uring_sqe *sqe = sqe_get();
  if (multi) {
    io_uring_prep_recv_multishot(sqe, fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = BGID;
  } else {
    io_uring_prep_recv(sqe, fd, c->buf, SINGLE_BUF, 0);
  }
  io_uring_sqe_set_data64(sqe, UD(OP_RECV, fd));
  c->recv_armed = 1;
}

static void arm_send(int fd, const char *p, uint32_t n) {
  struct io_uring_sqe *sqe = sqe_get();
  io_uring_prep_send(sqe, fd, p, n, MSG_NOSIGNAL);
  io_uring_sqe_set_data64(sqe, UD(OP_SEND, fd));
  conns[fd].send_inflight = 1;
}

static void buf_return(int bid) {
  io_uring_buf_ring_add(br, bufbase + (size_t)bid * bufsize, bufsize, (unsigned short)bid, brmask, (int)returned);
  returned++;
}

/* Closes once no operation of this connection is in flight (the fd may then be reused). */
static void maybe_close(int fd, struct conn *c) {
  if (!c->closing || c->recv_armed || c->send_inflight || !c->open) return;
  for (int b = c->qhead; b >= 0; b = bnext[b]) buf_return(b);
  c->qhead = c->qtail = -1;
  c->open = 0;
  close(fd);
}

static void start_closing(int fd, struct conn *c) {
  if (!c->closing) {
    c->closing = 1;
    /* wakes a still-armed multishot recv (it completes with 0 or an error) */
    if (c->recv_armed) shutdown(fd, SHUT_RDWR);
  }
  maybe_close(fd, c);
}

static void send_head(int fd, struct conn *c) {
  for (;;) {
    int b = c->qhead;
    const char *p = bufbase + (size_t)b * bufsize + boff[b];
    uint32_t left = blen[b] - boff[b];
    if (sync_send) {
      ssize_t n = send(fd, p, left, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n < 0 && errno != EAGAIN && errno != EINTR) {
        start_closing(fd, c);
        return;
      }
      if (n > 0) {
        boff[b] += (uint32_t)n;
        if (boff[b] == blen[b]) {
          c->qhead = bnext[b];
          if (c->qhead < 0) c->qtail = -1;
          buf_return(b);
          if (c->qhead >= 0) continue;
          maybe_close(fd, c);
          return;
        }
        continue;
      }
    }
    arm_send(fd, p, left);
    return;
  }
}

static void on_accept(struct io_uring_cqe *cqe) {
  if (!(cqe->flags & IORING_CQE_F_MORE) && !stopping) arm_accept();
  if (cqe->res < 0) {
    if (cqe->res != -EINTR && cqe->res != -ECONNABORTED && cqe->res != -EAGAIN)
      fprintf(stderr, "accept: %s\n", strerror(-cqe->res));
    return;
  }
  int fd = cqe->res;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct conn *c = conn_for(fd);
  char *keep = c->buf;
  memset(c, 0, sizeof *c);
  c->qhead = c->qtail = -1;
  c->open = 1;
  if (!multi) {
    c->buf = keep ? keep : malloc(SINGLE_BUF);
    if (!c->buf) die("malloc");
  }
  arm_recv(fd, c);
}

static void on_recv(int fd, struct io_uring_cqe *cqe) {
  struct conn *c = &conns[fd];
  int res = cqe->res;
  if (!multi) {
    c->recv_armed = 0;
    if (res > 0) {
      c->off = 0;
      c->len = (uint32_t)res;
      arm_send(fd, c->buf, c->len);
    } else if ((res == -EINTR || res == -EAGAIN) && !c->closing) {
      arm_recv(fd, c);
    } else {
      start_closing(fd, c);
    }
    return;
  }
  int more = (cqe->flags & IORING_CQE_F_MORE) != 0;
  if (!more) c->recv_armed = 0;
  if (res > 0) {
    int b = (int)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
    if (c->closing) {
      buf_return(b);
    } else {
      blen[b] = (uint32_t)res;
      boff[b] = 0;
      bnext[b] = -1;
      if (c->qtail >= 0) bnext[c->qtail] = b;
      else c->qhead = b;
      c->qtail = b;
      if (!c->send_inflight) send_head(fd, c);
    }
    if (!more && !c->closing) arm_recv(fd, c);
  } else if (res == -ENOBUFS && !c->closing) {
    /* ring dry: re-arm once buffers have been returned (see end of batch) */
    if (!c->starved) {
      if (nstarved == capstarved) {
        capstarved = capstarved ? capstarved * 2 : 1024;
        starved = realloc(starved, capstarved * sizeof *starved);
        if (!starved) die("realloc");
      }
      starved[nstarved++] = fd;
      c->starved = 1;
    }
  } else if ((res == -EINTR || res == -EAGAIN) && !more && !c->closing) {
    arm_recv(fd, c);
  } else if (res <= 0) {
    /* EOF or error: like echo_epoll, whatever is still queued is dropped with the peer */
    if (res == 0 && !more) {
      /* EOF: finish sending what was already read, then close */
      c->closing = 1;
      maybe_close(fd, c);
    } else {
      start_closing(fd, c);
    }
  }
  if (c->closing) maybe_close(fd, c);
}

static void on_send(int fd, struct io_uring_cqe *cqe) {
  struct conn *c = &conns[fd];
  int res = cqe->res;
  c->send_inflight = 0;
  if (res < 0 && res != -EINTR && res != -EAGAIN) {
    start_closing(fd, c);
    return;
  }
  uint32_t n = res > 0 ? (uint32_t)res : 0;
  if (!multi) {
    c->off += n;
    if (c->off < c->len) arm_send(fd, c->buf + c->off, c->len - c->off);
    else if (!c->closing) arm_recv(fd, c);
    else maybe_close(fd, c);
    return;
  }
  int b = c->qhead;
  boff[b] += n;
  if (boff[b] < blen[b]) {
    send_head(fd, c);
    return;
  }
  c->qhead = bnext[b];
  if (c->qhead < 0) c->qtail = -1;
  buf_return(b);
  if (c->qhead >= 0) send_head(fd, c);
  else maybe_close(fd, c);
}

static void setup_ring(const char *mode) {
  struct { const char *name; unsigned flags; } tries[] = {
    {"defer", IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN},
    {"coop", IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG},
    {"none", 0},
  };
  int r = -EINVAL;
  for (size_t i = 0; i < sizeof tries / sizeof *tries; i++) {
    if (strcmp(mode, "auto") && strcmp(mode, tries[i].name)) continue;
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    p.flags = tries[i].flags | IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL;
    p.cq_entries = 65536;
    r = io_uring_queue_init_params(4096, &ring, &p);
    if (r == 0) {
      fprintf(stderr, "echo_uring: ring setup flags: %s (0x%x), recv mode: %s\n", tries[i].name, p.flags,
              multi ? "multi" : "single");
      return;
    }
    fprintf(stderr, "echo_uring: setup %s refused: %s\n", tries[i].name, strerror(-r));
  }
  die_err("io_uring_queue_init_params", r);
}

static void setup_bufring(void) {
  if (nbufs == 0 || (nbufs & (nbufs - 1)) || nbufs > 32768) {
    fprintf(stderr, "echo_uring: --nbufs must be a power of two <= 32768\n");
    exit(2);
  }
  size_t rsz = nbufs * sizeof(struct io_uring_buf);
  br = mmap(NULL, rsz, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  if (br == MAP_FAILED) die("mmap");
  io_uring_buf_ring_init(br);
  struct io_uring_buf_reg reg;
  memset(&reg, 0, sizeof reg);
  reg.ring_addr = (unsigned long)br;
  reg.ring_entries = nbufs;
  reg.bgid = BGID;
  int r = io_uring_register_buf_ring(&ring, &reg, 0);
  if (r) die_err("io_uring_register_buf_ring", r);
  bufbase = malloc((size_t)nbufs * bufsize);
  bnext = malloc(nbufs * sizeof *bnext);
  blen = malloc(nbufs * sizeof *blen);
  boff = malloc(nbufs * sizeof *boff);
  if (!bufbase || !bnext || !blen || !boff) die("malloc");
  brmask = (unsigned)io_uring_buf_ring_mask(nbufs);
  for (unsigned i = 0; i < nbufs; i++) buf_return((int)i);
  io_uring_buf_ring_advance(br, returned);
  returned = 0;
}

int main(int argc, char **argv) {
  const char *host = "127.0.0.1", *setup = "auto";
  int port = 0, backlog = 4096;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--port") && i + 1 < argc) port = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--host") && i + 1 < argc) host = argv[++i];
    else if (!strcmp(argv[i], "--backlog") && i + 1 < argc) backlog = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--recv") && i + 1 < argc) multi = strcmp(argv[++i], "single") != 0;
    else if (!strcmp(argv[i], "--setup") && i + 1 < argc) setup = argv[++i];
    else if (!strcmp(argv[i], "--send") && i + 1 < argc && (!strcmp(argv[i + 1], "sync") || !strcmp(argv[i + 1], "ring")))
      sync_send = strcmp(argv[++i], "sync") == 0;
    else if (!strcmp(argv[i], "--wait") && i + 1 < argc && (!strcmp(argv[i + 1], "epoll") || !strcmp(argv[i + 1], "ring")))
      wait_epoll = strcmp(argv[++i], "epoll") == 0;
    else if (!strcmp(argv[i], "--nbufs") && i + 1 < argc) nbufs = (unsigned)atoi(argv[++i]);
    else if (!strcmp(argv[i], "--bufsize") && i + 1 < argc) bufsize = (unsigned)atoi(argv[++i]);
    else {
      fprintf(stderr, "usage: %s --port P [--host H] [--backlog N] [--recv multi|single] [--send ring|sync] [--wait ring|epoll] "
                      "[--setup auto|defer|coop|none] [--nbufs N] [--bufsize B]\n", argv[0]);
      return 2;
    }
  }

  install_signals();
  lfd = listen_tcp("echo_uring", host, port, backlog, 0);

  setup_ring(setup);
  io_uring_register_ring_fd(&ring); /* optional: saves an fd lookup per enter */
  if (multi) setup_bufring();
  arm_accept();

  int wep = -1, efd = -1;
  if (wait_epoll) {
    efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (efd < 0) die("eventfd");
    int r = io_uring_register_eventfd(&ring, efd);
    if (r) die_err("io_uring_register_eventfd", r);
    wep = epoll_create1(EPOLL_CLOEXEC);
    if (wep < 0) die("epoll_create1");
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.fd = efd};
    if (epoll_ctl(wep, EPOLL_CTL_ADD, efd, &ev) < 0) die("epoll_ctl eventfd");
  }

  print_listening(lfd);

  while (!stopping) {
    int r;
    if (wait_epoll) {
      /* Submit and run the ring's deferred work without waiting; block in epoll only when that
         brought no completion (a completion after this wakes the eventfd, an edge each time). */
      r = io_uring_submit_and_get_events(&ring);
      if (r >= 0 && io_uring_cq_ready(&ring) == 0) {
        struct epoll_event ev;
        if (epoll_wait(wep, &ev, 1, -1) < 0 && errno != EINTR) die("epoll_wait");
        r = io_uring_get_events(&ring);
      }
    } else {
      r = io_uring_submit_and_wait(&ring, 1);
    }
    if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY && r != -ETIME) die_err("io_uring_submit_and_wait", r);
    struct io_uring_cqe *cqe;
    unsigned head, seen = 0;
    io_uring_for_each_cqe(&ring, head, cqe) {
      seen++;
      uint64_t ud = io_uring_cqe_get_data64(cqe);
      int op = (int)(ud >> 32), fd = (int)(uint32_t)ud;
      if (op == OP_ACCEPT) on_accept(cqe);
      else if (op == OP_RECV) on_recv(fd, cqe);
      else if (op == OP_SEND) on_send(fd, cqe);
    }
    io_uring_cq_advance(&ring, seen);
    if (multi && returned) {
      io_uring_buf_ring_advance(br, returned);
      returned = 0;
      size_t n = nstarved;
      nstarved = 0;
      for (size_t i = 0; i < n; i++) {
        int fd = starved[i];
        struct conn *c = &conns[fd];
        c->starved = 0;
        if (c->open && !c->closing && !c->recv_armed) arm_recv(fd, c);
      }
    }
  }
  io_uring_queue_exit(&ring);
  if (wait_epoll) {
    close(wep);
    close(efd);
  }
  for (size_t fd = 0; fd < nconns; fd++) free(conns[fd].buf);
  free(conns);
  close(lfd);
  return 0;
}
