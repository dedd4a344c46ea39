/*
 * load_epoll: a C load client for the echo benchmarks, with the same arguments and JSON output as
 * `coloop load`. The suite uses it with `--client c` to check that the Node client is not what
 * limits a cell (a C client needs a fraction of the CPU per message).
 *
 *   load_epoll --host H --port P --conns N --size B --duration S [--pipeline D] [--json]
 *              [--warmup W] [--hold] [--rate R]
 *
 * Each connection keeps D messages of B bytes in flight: a message counts (and its latency is
 * taken) once B echoed bytes are back; then the next is sent. Single-threaded, level-triggered
 * epoll, nonblocking. Connects at most 500 at a time; gives up on connecting after 20 s. Before
 * measuring, one unmeasured round trip per connection (at most 20 s), so that the measured
 * latencies are the echo's and not the server's accept backlog. Closes
 * gracefully (FIN, like the CLI's client), so a server never sees a reset connection in its accept
 * queue (TIME_WAIT is reused on loopback: net.ipv4.tcp_tw_reuse=2 is the default); after the
 * window it reads the echoes still in flight first (uncounted, at most 2 s), since closing with
 * bytes unread sends a reset, which servers meet as ECONNRESET (coloop serve logs them).
 *
 * --rate R: R messages a second in all, on a schedule (message k is due at start + k/R), as
 * `coloop load --rate` (which paces whole rounds of D where this paces each message), instead of
 * each connection sending again as soon as its echo is back: every server then gets the same load,
 * and server CPU per message and latency compare at equal throughput, whichever server is faster
 * (as fast as it can go, the C reference is limited by this client's core, not by its own). A due
 * message goes out on a connection with a free slot (one of its D), the longest-free first, and
 * the schedule waits for no one: messages that found no free slot go out as soon as echoes free
 * some. Latency is from when a message went out, as without --rate: what the server took. A
 * server that cannot keep up shows as msgsPerSec short of R (the suite marks such a cell), not in
 * latency (wrk2 would time from when a message was due; here that would add this client's own
 * lateness, up to the kernel's 50 us timer slack, to every server's figures). The JSON then has
 * "rate": R. The warm-up is paced too; priming and draining are not.
 *
 * For measuring a server over a window of its own (bench/breakdown.js): --warmup W echoes for W
 * seconds, unmeasured, on the same connections before the measured phase; --hold drains what is in
 * flight and waits, before the measured phase and after it (before closing), printing "ready" and
 * then "measured" on stderr and reading a line from stdin each time, so that whoever drives it
 * can start and stop counting exactly around the measured messages.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HBUCKETS (2048 + 40 * 1024)
static double hist[HBUCKETS];
static double hist_n;

static void record(double us) {
  uint64_t v = us < 0 ? 0 : (uint64_t)us;
  size_t i;
  if (v < 2048) i = (size_t)v;
  else {
    int msb = 63 - __builtin_clzll(v);
    i = 2048 + (size_t)(msb - 11) * 1024 + (size_t)((v >> (msb - 10)) & 1023);
  }
  if (i >= HBUCKETS) i = HBUCKETS - 1;
  hist[i]++;
  hist_n++;
}

static double bucket_value(size_t i) {
  if (i < 2048) return (double)i;
  size_t k = i - 2048;
  int msb = 11 + (int)(k / 1024);
  return (double)(1024 + k % 1024) * (double)(1ULL << (msb - 10));
}

static void print_pct(const char *name, double p, int last) {
  if (hist_n == 0) {
    printf("\"%s\":null%s", name, last ? "" : ",");
    return;
  }
  double target = hist_n * p, acc = 0;
  if (target < 1) target = 1;
  for (size_t i = 0; i < HBUCKETS; i++) {
    acc += hist[i];
    if (acc >= target - 1e-9) {
      printf("\"%s\":%.0f%s", name, bucket_value(i), last ? "" : ",");
      return;
    }
  }
  printf("\"%s\":null%s", name, last ? "" : ",");
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

enum { CONNECTING, RUNNING, DEAD };

struct conn {
  int fd, state;
  size_t got;       /* echoed bytes of the current message so far */
  int in_flight;
  int head, tail;   /* ring of send times */
  double *sent;
  size_t wpend;     /* bytes of the payload still to write */
};

static int conns = 100, depth = 1, ep;
static size_t size = 64;
static char *payload;
static int measuring = 0, stopped = 0;
static struct conn *cs_all; /* every connection, for drain() */
static double messages = 0, bytes = 0;
static long errors = 0, connect_failures = 0;

static void kill_conn(struct conn *c, int is_error) {
  if (c->state == DEAD) return;
  if (is_error && !stopped) errors++;
  c->state = DEAD;
  close(c->fd);
}

static void flush_writes(struct conn *c) {
  while (c->wpend > 0) {
    ssize_t n = write(c->fd, payload, c->wpend); /* payload is uniform: any slice will do */
    if (n > 0) c->wpend -= (size_t)n;
    else if (n < 0 && errno == EINTR) continue;
    else if (n < 0 && errno == EAGAIN) {
      struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
      epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
      return;
    } else {
      kill_conn(c, 1);
      return;
    }
  }
}

/* Sends k messages on c now, their latency to be taken from time t. */
static void send_now(struct conn *c, int k, double t) {
  for (int j = 0; j < k; j++) {
    c->sent[c->tail] = t;
    c->tail = (c->tail + 1) % depth;
  }
  c->in_flight += k;
  int was_idle = c->wpend == 0;
  c->wpend += (size_t)k * size;
  if (was_idle) flush_writes(c);
}

/* --rate: free slots (a connection once per slot, oldest first), the schedule's start and how
 * many of its messages went out. */
static double rate = 0;
static struct conn **idle;
static size_t idle_head, idle_n, idle_cap;
static double sched_t0, sched_sent;

static int priming = 0;

/* k more messages may go on c: now, or under --rate once they are due (see pace). */
static void send_msgs(struct conn *c, int k) {
  if (rate > 0 && !priming) {
    for (int j = 0; j < k; j++) idle[(idle_head + idle_n++) % idle_cap] = c;
    return;
  }
  send_now(c, k, now_s());
}

/* --rate: (re)starts the schedule, every free slot forgotten (the callers then free them all). */
static void schedule_from(double t) {
  sched_t0 = t;
  sched_sent = 0;
  idle_head = idle_n = 0;
}

/* --rate: sends every message due by now that has a free slot to go on. */
static void pace(void) {
  double due = (double)(long long)((now_s() - sched_t0) * rate) + 1; /* message k is due at t0 + k/R */
  while (sched_sent < due && idle_n > 0) {
    struct conn *c = idle[idle_head];
    idle_head = (idle_head + 1) % idle_cap;
    idle_n--;
    if (c->state != RUNNING) continue;
    send_now(c, 1, now_s());
    sched_sent++;
  }
}

/* One epoll_wait and its events: writes flushed, echoes counted, and (unless priming) the next
 * messages sent (under --rate: their slots freed). Waits at most timeout_s (< 0: no limit).
 * Returns the number of events, or -1 on a failed wait. */
static char rbuf[256 * 1024];
static int run_events(struct epoll_event *evs, int max, double timeout_s) {
  struct timespec ts, *tsp = NULL;
  if (timeout_s >= 0) {
    ts.tv_sec = (time_t)timeout_s;
    ts.tv_nsec = (long)((timeout_s - (double)ts.tv_sec) * 1e9);
    tsp = &ts;
  }
  int n = epoll_pwait2(ep, evs, max, tsp, NULL);
  if (n < 0) return errno == EINTR ? 0 : -1;
  for (int i = 0; i < n; i++) {
    struct conn *c = evs[i].data.ptr;
    if (c->state != RUNNING) continue;
    if (evs[i].events & EPOLLOUT) {
      flush_writes(c);
      if (c->state == RUNNING && c->wpend == 0) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
      }
    }
    if (!(evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) || c->state != RUNNING) continue;
    ssize_t r = read(c->fd, rbuf, sizeof rbuf);
    if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) { kill_conn(c, 1); continue; }
    if (r < 0) continue;
    c->got += (size_t)r;
    int done = 0;
    double t = now_s();
    while (c->got >= size && c->in_flight > 0) {
      c->got -= size;
      c->in_flight--;
      if (measuring) {
        record((t - c->sent[c->head]) * 1e6);
        messages++;
        bytes += (double)size;
      }
      c->head = (c->head + 1) % depth;
      done++;
    }
    if (done > 0 && !priming) send_msgs(c, done);
  }
  return n;
}

/* Stops sending and runs events until nothing is in flight (at most `limit_s` seconds). */
static void drain(struct epoll_event *evs, int max, double limit_s) {
  int was = priming;
  priming = 1;
  double by = now_s() + limit_s;
  for (;;) {
    int busy = 0;
    for (int i = 0; i < conns; i++) busy += cs_all[i].state == RUNNING && cs_all[i].in_flight > 0;
    if (busy == 0 || now_s() >= by) break;
    if (run_events(evs, max, 0.1) < 0) break;
  }
  priming = was;
}

/* Runs events (and under --rate the schedule) until time `until`. */
static void run_until(struct epoll_event *evs, double until) {
  for (;;) {
    double left = until - now_s();
    if (left <= 0) return;
    double wait = left;
    if (rate > 0) {
      pace();
      /* A free slot waits for the next message's time; without one, an echo frees one. */
      if (idle_n > 0) {
        double next = sched_t0 + sched_sent / rate - now_s();
        wait = next < 0 ? 0 : next < left ? next : left;
      }
    }
    if (run_events(evs, 1024, wait) < 0) return;
  }
}

/* --hold: says `what` on stderr and waits for a line on stdin (or its end). */
static void hold(const char *what) {
  fprintf(stderr, "%s\n", what);
  fflush(stderr);
  char line[64];
  if (fgets(line, sizeof line, stdin) == NULL) return;
}

int main(int argc, char **argv) {
  const char *host = "127.0.0.1";
  int port = 0;
  double duration = 5, warmup = 0;
  int hold_mode = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--host") && i + 1 < argc) host = argv[++i];
    else if (!strcmp(argv[i], "--port") && i + 1 < argc) port = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--conns") && i + 1 < argc) conns = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--size") && i + 1 < argc) size = (size_t)atol(argv[++i]);
    else if (!strcmp(argv[i], "--duration") && i + 1 < argc) duration = atof(argv[++i]);
    else if (!strcmp(argv[i], "--pipeline") && i + 1 < argc) depth = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--json")) { /* always JSON */ }
    else if (!strcmp(argv[i], "--warmup") && i + 1 < argc) warmup = atof(argv[++i]);
    else if (!strcmp(argv[i], "--hold")) hold_mode = 1;
    else if (!strcmp(argv[i], "--rate") && i + 1 < argc) {
      char *end;
      rate = strtod(argv[++i], &end);
      if (end == argv[i] || *end != '\0' || !(rate > 0 && rate <= 1e8)) {
        fprintf(stderr, "load_epoll: --rate takes messages a second, more than 0 and at most 1e8, not %s\n", argv[i]);
        return 2;
      }
    } else {
      fprintf(stderr, "usage: %s --host H --port P --conns N --size B --duration S [--pipeline D] [--json] [--warmup W] [--hold] [--rate R]\n", argv[0]);
      return 2;
    }
  }
  if (conns < 1 || size < 1 || depth < 1 || port < 1 || !(warmup >= 0)) {
    fprintf(stderr, "load_epoll: bad arguments\n");
    return 2;
  }
  /* Big enough that one write() can cover a whole pipeline's worth. */
  size_t plen = size * (size_t)depth;
  payload = malloc(plen);
  memset(payload, 'x', plen);
  struct conn *cs = calloc((size_t)conns, sizeof *cs);
  if (rate > 0) {
    idle_cap = (size_t)conns * (size_t)depth;
    idle = calloc(idle_cap, sizeof *idle);
  }
  cs_all = cs;
  ep = epoll_create1(0);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
  inet_pton(AF_INET, host, &addr.sin_addr);

  /* Connect, at most 500 handshakes at a time. */
  int next = 0, pending = 0, up = 0;
  double give_up = now_s() + 20;
  struct epoll_event evs[1024];
  while ((next < conns || pending > 0) && now_s() < give_up) {
    while (pending < 500 && next < conns) {
      struct conn *c = &cs[next++];
      c->sent = calloc((size_t)depth, sizeof(double));
      c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
      if (c->fd < 0) { connect_failures++; c->state = DEAD; continue; }
      int one = 1;
      setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      int r = connect(c->fd, (struct sockaddr *)&addr, sizeof addr);
      if (r < 0 && errno != EINPROGRESS) { connect_failures++; close(c->fd); c->state = DEAD; continue; }
      c->state = CONNECTING;
      struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
      epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
      pending++;
    }
    int n = epoll_wait(ep, evs, 1024, 100);
    for (int i = 0; i < n; i++) {
      struct conn *c = evs[i].data.ptr;
      if (c->state != CONNECTING) continue;
      int err = 0;
      socklen_t len = sizeof err;
      getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
      pending--;
      if (err) { connect_failures++; close(c->fd); c->state = DEAD; continue; }
      c->state = RUNNING;
      up++;
      struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
      epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    }
  }
  for (int i = 0; i < conns; i++)
    if (cs[i].state == CONNECTING) { connect_failures++; close(cs[i].fd); cs[i].state = DEAD; }

  /* One unmeasured round trip on every connection first: a connection the kernel has completed
   * may still wait in the server's accept queue, and its first message would otherwise time the
   * server's accept backlog (seconds at C10k), not its echo. Bounded like the connect phase. */
  priming = 1;
  for (int i = 0; i < conns; i++)
    if (cs[i].state == RUNNING) send_msgs(&cs[i], 1);
  drain(evs, 1024, 20);
  priming = 0;
  if (warmup > 0) {
    schedule_from(now_s());
    for (int i = 0; i < conns; i++)
      if (cs[i].state == RUNNING) send_msgs(&cs[i], depth - cs[i].in_flight);
    run_until(evs, now_s() + warmup);
    drain(evs, 1024, 20);
  }
  if (hold_mode) hold("ready");
  struct rusage ru0, ru1;
  getrusage(RUSAGE_SELF, &ru0);
  double t0 = now_s(), end = t0 + duration;
  measuring = 1;
  schedule_from(t0);
  for (int i = 0; i < conns; i++)
    if (cs[i].state == RUNNING) send_msgs(&cs[i], depth - cs[i].in_flight);
  run_until(evs, end);
  double elapsed = now_s() - t0;
  if (hold_mode) {
    /* The echoes of what is in flight are counted: the server made them in the window. */
    drain(evs, 1024, 5);
    hold("measured");
  }
  measuring = 0;
  stopped = 1;
  getrusage(RUSAGE_SELF, &ru1);
  double cpu = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec) + (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec) / 1e6 +
               (double)(ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) + (double)(ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) / 1e6;
  /* The echoes still in flight are read before closing (uncounted, bounded): a socket closed with
   * unread bytes sends a reset, and every server would log the end of a run as connection errors. */
  if (!hold_mode) drain(evs, 1024, 2);
  for (int i = 0; i < conns; i++) kill_conn(&cs[i], 0);
  printf("{\"conns\":%d,\"size\":%zu,\"pipeline\":%d,\"duration\":%.6f,\"messages\":%.0f,\"bytes\":%.0f,"
         "\"msgsPerSec\":%.3f,\"mbPerSec\":%.6f,\"latencyUs\":{",
         conns, size, depth, elapsed, messages, bytes, messages / elapsed, bytes / elapsed / 1e6);
  print_pct("p50", 0.5, 0);
  print_pct("p99", 0.99, 0);
  print_pct("p999", 0.999, 1);
  printf("},\"errors\":%ld,\"connectFailures\":%ld,\"clientCpuSec\":%.6f,\"client\":\"c\"", errors, connect_failures, cpu);
  if (rate > 0) printf(",\"rate\":%.0f", rate);
  printf("}\n");
  (void)up;
  return 0;
}
