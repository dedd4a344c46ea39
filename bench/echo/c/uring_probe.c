/*
 * uring_probe: how io_uring behaves in the ways an io_uring receive path inside coloop's epoll
 * poller would depend on, for each ring setup (DEFER_TASKRUN, COOP_TASKRUN, none):
 *   1. A multishot recv's completion: does an epoll set holding the ring fd report it (coloop's
 *      epoll fd is what libuv watches), and is it in the CQ before any io_uring_enter?
 *   2. Async cancel of the multishot, then close(fd): does the peer see end of stream at once, or
 *      only after the next enter (until then the request holds the socket open)?
 *   3. Incremental buffer consumption (IOU_PBUF_RING_INC, kernel 6.12+): many small messages in one
 *      provided buffer. Debian's liburing 2.3 predates it: the flag goes in the field it calls pad.
 *
 * "defer+enter" is DEFER_TASKRUN with one io_uring_enter (GETEVENTS) right after the ring fd joins
 * the epoll set, and another after submitting the cancel, before close(). "defer+eventfd" is that,
 * with an eventfd registered with the ring (io_uring_register_eventfd) in the epoll set instead
 * of the ring fd.
 *
 *   cc -O2 -Wall -o /tmp/uring_probe bench/echo/c/uring_probe.c -luring && /tmp/uring_probe
 */
#define _GNU_SOURCE
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/eventfd.h>

static void pair(int *a, int *b) {
  int l = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in s = {0}; s.sin_family = AF_INET; s.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(l, (void*)&s, sizeof s); listen(l, 1); socklen_t sl = sizeof s; getsockname(l, (void*)&s, &sl);
  *a = socket(AF_INET, SOCK_STREAM, 0); connect(*a, (void*)&s, sizeof s); *b = accept(l, 0, 0); close(l);
  fcntl(*b, F_SETFL, O_NONBLOCK);
}

static void run(const char *name, unsigned flags, int activate, int use_eventfd) {
  struct io_uring ring; struct io_uring_params p; memset(&p, 0, sizeof p); p.flags = flags;
  int r = io_uring_queue_init_params(64, &ring, &p);
  if (r) { printf("%s: init %s\n", name, strerror(-r)); return; }
  struct io_uring_buf_ring *br = mmap(NULL, 8 * sizeof(struct io_uring_buf), PROT_READ|PROT_WRITE, MAP_ANONYMOUS|MAP_PRIVATE, -1, 0);
  io_uring_buf_ring_init(br);
  struct io_uring_buf_reg reg; memset(&reg, 0, sizeof reg); reg.ring_addr = (unsigned long)br; reg.ring_entries = 8; reg.bgid = 1;
  r = io_uring_register_buf_ring(&ring, &reg, 0);
  if (r) printf("%s: buf ring %s\n", name, strerror(-r));
  static char bufs[8][4096];
  for (int i = 0; i < 8; i++) io_uring_buf_ring_add(br, bufs[i], 4096, i, io_uring_buf_ring_mask(8), i);
  io_uring_buf_ring_advance(br, 8);
  struct io_uring_buf_ring *br2 = mmap(NULL, 8 * sizeof(struct io_uring_buf), PROT_READ|PROT_WRITE, MAP_ANONYMOUS|MAP_PRIVATE, -1, 0);
  io_uring_buf_ring_init(br2);
  memset(&reg, 0, sizeof reg); reg.ring_addr = (unsigned long)br2; reg.ring_entries = 8; reg.bgid = 2; reg.pad = 2 /* flags: IOU_PBUF_RING_INC (the old header calls the field pad) */;
  r = io_uring_register_buf_ring(&ring, &reg, 0);
  printf("%s: IOU_PBUF_RING_INC %s\n", name, r == 0 ? "yes" : strerror(-r));
  int a, b; pair(&a, &b);
  struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
  io_uring_prep_recv_multishot(sqe, b, NULL, 0, 0); sqe->flags |= IOSQE_BUFFER_SELECT; sqe->buf_group = 1;
  io_uring_sqe_set_data64(sqe, 77);
  io_uring_submit(&ring);
  int ep = epoll_create1(0);
  int watched = ring.ring_fd;
  if (use_eventfd) {
    watched = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    r = io_uring_register_eventfd(&ring, watched);
    if (r) printf("%s: register_eventfd %s\n", name, strerror(-r));
  }
  struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.fd = watched};
  r = epoll_ctl(ep, EPOLL_CTL_ADD, watched, &ev);
  if (r) printf("%s: epoll_ctl ring fd: %s\n", name, strerror(errno));
  struct epoll_event out[4];
  if (activate) io_uring_get_events(&ring); /* one enter once the ring fd is in the epoll set */
  int n0 = epoll_wait(ep, out, 4, 0);
  write(a, "hello", 5);
  usleep(20000);
  int n1 = epoll_wait(ep, out, 4, 100);
  struct pollfd pf = {.fd = ring.ring_fd, .events = POLLIN};
  int pr = poll(&pf, 1, 0);
  printf("%s: epoll on the watched fd before data %d, after data %d; poll() %d revents %x; CQ ready (no enter) %u\n", name, n0, n1, pr, pf.revents, io_uring_cq_ready(&ring));
  io_uring_get_events(&ring);
  printf("%s: CQ ready after get_events %u\n", name, io_uring_cq_ready(&ring));
  struct io_uring_cqe *cqe; unsigned head, seen = 0;
  io_uring_for_each_cqe(&ring, head, cqe) { printf("%s:   cqe ud %llu res %d flags %x\n", name, (unsigned long long)cqe->user_data, cqe->res, cqe->flags); seen++; }
  io_uring_cq_advance(&ring, seen);
  /* a second message: edge again? */
  write(a, "again", 5);
  usleep(20000);
  int n2 = epoll_wait(ep, out, 4, 100);
  printf("%s: epoll on the watched fd after second data %d\n", name, n2);
  io_uring_get_events(&ring);
  seen = 0; io_uring_for_each_cqe(&ring, head, cqe) seen++; io_uring_cq_advance(&ring, seen);
  /* cancel + close: does the peer see EOF at once? */
  sqe = io_uring_get_sqe(&ring);
  io_uring_prep_cancel64(sqe, 77, 0); io_uring_sqe_set_data64(sqe, 88);
  io_uring_submit(&ring);
  if (activate) io_uring_get_events(&ring); /* the cancelled request lets go of the socket here */
  close(b);
  char c; struct pollfd pa = {.fd = a, .events = POLLIN};
  int pe = poll(&pa, 1, 50);
  ssize_t rd = pe > 0 ? read(a, &c, 1) : -2;
  printf("%s: after cancel+close, before any enter: peer poll %d read %zd\n", name, pe, rd);
  io_uring_get_events(&ring);
  seen = 0; io_uring_for_each_cqe(&ring, head, cqe) { printf("%s:   cqe ud %llu res %d flags %x\n", name, (unsigned long long)cqe->user_data, cqe->res, cqe->flags); seen++; }
  io_uring_cq_advance(&ring, seen);
  pe = poll(&pa, 1, 50);
  rd = pe > 0 ? read(a, &c, 1) : -2;
  printf("%s: after the enter: peer poll %d read %zd\n", name, pe, rd);
  close(a); close(ep); if (use_eventfd) close(watched); io_uring_queue_exit(&ring);
}

int main(void) {
  run("defer", IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN, 0, 0);
  run("defer+enter", IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN, 1, 0);
  run("defer+eventfd", IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN, 1, 1);
  run("coop", IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG, 0, 0);
  run("none", 0, 0, 0);
}
