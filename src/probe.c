/*
 * probe.c — ICMP echo reachability between hosts in namespaces (see probe.h for the design).
 *
 * Bookkeeping: every pair has at most one request in flight, kept in `flight`, a FIFO in
 * send order; since every attempt waits the same timeout, its head is always the next to
 * time out. A request answered leaves its entry in the FIFO (marked answered) until it
 * reaches the head. A pair whose attempt timed out with attempts left goes to `again`,
 * served before pairs not yet started, so every pair finishes within its attempts'
 * timeouts of its first request.
 */
#include "probe.h"
#include "netns.h"

#include <errno.h>
#include <linux/icmp.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#define NSEC 1000000000ULL
#define MAGIC 0x4c535052u /* "LSPR" */

enum { ICMP4_ECHO = 8, ICMP4_ECHOREPLY = 0 };

typedef struct probe_payload {
  uint32_t magic, token, pair;
  uint8_t attempt;
} __attribute__((packed)) probe_payload;

typedef struct fifo {
  uint32_t *v;
  uint32_t cap, head, len;
} fifo;

static void fifo_push(fifo *f, uint32_t x) {
  f->v[(f->head + f->len++) % f->cap] = x;
}

static uint32_t fifo_pop(fifo *f) {
  uint32_t x = f->v[f->head];
  f->head = (f->head + 1) % f->cap;
  f->len--;
  return x;
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * NSEC + (uint64_t)ts.tv_nsec;
}

uint16_t ls_inet_checksum(const void *data, uint32_t len) {
  const uint8_t *p = data;
  uint32_t sum = 0;
  for (; len > 1; p += 2, len -= 2) sum += (uint32_t)(p[0] << 8 | p[1]);
  if (len) sum += (uint32_t)(p[0] << 8);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)~sum;
}

static bool same_addr(const struct sockaddr_storage *a, const void *b, socklen_t blen) {
  if (a->ss_family == AF_INET) {
    const struct sockaddr_in *x = (const void *)a, *y = b;
    return blen >= sizeof(*y) && y->sin_family == AF_INET &&
           x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  const struct sockaddr_in6 *x = (const void *)a, *y = b;
  return blen >= sizeof(*y) && y->sin6_family == AF_INET6 &&
         memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
}

static int open_socket(const ls_probe_host *h) {
  int saved;
  int r = ls_netns_enter(h->netns, &saved);
  if (r) return r;
  bool v6 = h->addr.ss_family == AF_INET6;
  int fd = v6 ? socket(AF_INET6, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_ICMPV6)
              : socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_ICMP);
  int e = fd < 0 ? -errno : 0;
  ls_netns_leave(saved);
  if (fd < 0) return e;
  /* only echo replies reach it: not the requests the host answers, nor anything else */
  if (v6) {
    struct icmp6_filter f;
    ICMP6_FILTER_SETBLOCKALL(&f);
    ICMP6_FILTER_SETPASS(ICMP6_ECHO_REPLY, &f);
    r = setsockopt(fd, IPPROTO_ICMPV6, ICMP6_FILTER, &f, sizeof(f));
  } else {
    struct icmp_filter f = {.data = ~(1u << ICMP4_ECHOREPLY)};
    r = setsockopt(fd, SOL_RAW, ICMP_FILTER, &f, sizeof(f));
  }
  int big = 1 << 20;
  if (r == 0) (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
  if (r != 0) {
    e = -errno;
    close(fd);
    return e;
  }
  return fd;
}

typedef struct run {
  const ls_probe_host *hosts;
  const uint32_t *pairs;
  ls_probe_result *res;
  ls_probe_stats *st;
  int *fds;
  uint64_t *deadline, *sent_at;
  bool *inflight; /* its latest request is in `flight`, not timed out */
  bool *young;    /* its latest request holds a window slot (unanswered, sent < hold ago) */
  uint32_t token, nyoung;
  uint64_t timeout;
} run;

static void send_request(run *r, uint32_t pair) {
  uint32_t src = r->pairs[2 * pair], dst = r->pairs[2 * pair + 1];
  const ls_probe_host *d = &r->hosts[dst];
  uint8_t pkt[8 + sizeof(probe_payload)];
  uint8_t attempt = ++r->res[pair].attempts;
  pkt[0] = d->addr.ss_family == AF_INET6 ? ICMP6_ECHO_REQUEST : ICMP4_ECHO;
  pkt[1] = 0;
  pkt[2] = pkt[3] = 0;
  pkt[4] = (uint8_t)(r->token >> 8);
  pkt[5] = (uint8_t)r->token;
  pkt[6] = (uint8_t)(pair >> 8);
  pkt[7] = (uint8_t)pair;
  probe_payload pl = {MAGIC, r->token, pair, attempt};
  memcpy(pkt + 8, &pl, sizeof(pl));
  if (d->addr.ss_family == AF_INET) { /* the kernel sums ICMPv6 itself */
    uint16_t c = ls_inet_checksum(pkt, sizeof(pkt));
    pkt[2] = (uint8_t)(c >> 8);
    pkt[3] = (uint8_t)c;
  }
  socklen_t alen =
      d->addr.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
  uint64_t t = now_ns();
  /* A refusal (no route, no buffer) is an attempt without a reply, like a lost one. */
  if (sendto(r->fds[src], pkt, sizeof(pkt), 0, (const struct sockaddr *)&d->addr, alen) < 0) {
    r->st->send_errors++;
    r->st->send_errno = errno;
  }
  r->st->sent++;
  r->inflight[pair] = true;
  r->sent_at[pair] = t;
  r->deadline[pair] = t + r->timeout;
}

/* Replies waiting on host h's socket: mark their pairs answered. Returns how many pairs. */
static uint32_t take_replies(run *r, uint32_t h, uint32_t npairs) {
  uint32_t done = 0;
  uint8_t buf[512];
  for (;;) {
    struct sockaddr_storage from;
    socklen_t flen = sizeof(from);
    ssize_t n =
        recvfrom(r->fds[h], buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from, &flen);
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    const uint8_t *icmp = buf;
    size_t len = (size_t)n;
    if (r->hosts[h].addr.ss_family == AF_INET) { /* a raw IPv4 socket reads the IP header too */
      size_t ihl = len ? (size_t)(buf[0] & 15) * 4 : 0;
      if (ihl < 20 || len < ihl) continue;
      icmp += ihl;
      len -= ihl;
    }
    probe_payload pl;
    if (len < 8 + sizeof(pl)) continue;
    memcpy(&pl, icmp + 8, sizeof(pl));
    if (pl.magic != MAGIC || pl.token != r->token) continue; /* another prober's, or not ours */
    uint32_t p = pl.pair;
    if (p >= npairs || r->pairs[2 * p] != h || !r->inflight[p] ||
        pl.attempt != r->res[p].attempts ||
        !same_addr(&r->hosts[r->pairs[2 * p + 1]].addr, &from, flen)) {
      r->st->stray++; /* late (its attempt timed out), a duplicate, or from elsewhere */
      continue;
    }
    r->res[p].answered = true;
    r->inflight[p] = false;
    if (r->young[p]) {
      r->young[p] = false;
      r->nyoung--;
    }
    uint64_t rtt = (now_ns() - r->sent_at[p]) / 1000;
    r->res[p].rtt_us = rtt > UINT32_MAX ? UINT32_MAX : (uint32_t)rtt;
    r->st->replies++;
    done++;
  }
  return done;
}

int ls_probe_run(const ls_probe_host *hosts, uint32_t nhosts, const uint32_t *pairs,
                 uint32_t npairs, const ls_probe_opts *opts, ls_probe_result *results,
                 ls_probe_stats *stats, int *bad) {
  *bad = -1;
  memset(stats, 0, sizeof(*stats));
  memset(results, 0, sizeof(*results) * npairs);
  uint32_t window = opts && opts->window ? opts->window : 64;
  uint32_t attempts = opts && opts->attempts ? opts->attempts : 3;
  if (attempts > 255) attempts = 255;
  uint64_t timeout = opts && opts->timeout_ns ? opts->timeout_ns : NSEC;
  uint64_t hold = opts && opts->hold_ns ? opts->hold_ns : NSEC / 10;
  if (hold > timeout) hold = timeout; /* so a pair holds at most one slot */
  for (uint32_t i = 0; i < npairs; i++) {
    uint32_t s = pairs[2 * i], d = pairs[2 * i + 1];
    if (s >= nhosts || d >= nhosts) return -EINVAL;
    if (hosts[s].addr.ss_family != hosts[d].addr.ss_family) {
      *bad = (int)s;
      return -EINVAL;
    }
  }
  if (npairs == 0) return 0;

  int err = 0;
  run r = {.hosts = hosts, .pairs = pairs, .res = results, .st = stats, .timeout = timeout};
  r.fds = malloc(sizeof(int) * nhosts);
  r.deadline = malloc(sizeof(uint64_t) * npairs);
  r.sent_at = malloc(sizeof(uint64_t) * npairs);
  r.inflight = calloc(npairs, sizeof(bool));
  r.young = calloc(npairs, sizeof(bool));
  fifo flight = {malloc(sizeof(uint32_t) * npairs), npairs, 0, 0};
  fifo again = {malloc(sizeof(uint32_t) * npairs), npairs, 0, 0};
  fifo youth = {malloc(sizeof(uint32_t) * npairs), npairs, 0, 0}; /* window slots, by age */
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (!r.fds || !r.deadline || !r.sent_at || !r.inflight || !r.young || !flight.v || !again.v ||
      !youth.v || ep < 0) {
    err = ep < 0 ? -errno : -ENOMEM;
    nhosts = r.fds ? nhosts : 0;
    for (uint32_t i = 0; i < nhosts; i++) r.fds[i] = -1;
    goto out;
  }
  for (uint32_t i = 0; i < nhosts; i++) r.fds[i] = -1;
  for (uint32_t i = 0; i < npairs; i++) { /* a socket for each host that sends */
    uint32_t s = pairs[2 * i];
    if (r.fds[s] >= 0) continue;
    int fd = open_socket(&hosts[s]);
    if (fd < 0) {
      err = fd;
      *bad = (int)s;
      goto out;
    }
    r.fds[s] = fd;
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = s};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
      err = -errno;
      goto out;
    }
  }
  r.token = (uint32_t)now_ns() ^ ((uint32_t)getpid() << 16);

  uint64_t t0 = now_ns();
  uint32_t next = 0, finished = 0;
  struct epoll_event evs[64];
  while (finished < npairs) {
    /* requests unanswered for `hold` give their window slot back */
    uint64_t t = now_ns();
    while (youth.len) {
      uint32_t p = youth.v[youth.head];
      if (r.young[p] && r.sent_at[p] + hold > t) break;
      fifo_pop(&youth);
      if (r.young[p]) {
        r.young[p] = false;
        r.nyoung--;
      }
    }
    while (r.nyoung < window && (again.len || next < npairs)) {
      uint32_t p = again.len ? fifo_pop(&again) : next++;
      send_request(&r, p);
      fifo_push(&flight, p);
      fifo_push(&youth, p);
      r.young[p] = true;
      r.nyoung++;
    }
    /* answered requests at the head are done with; the first unanswered one sets the wait,
     * or the oldest window slot when the window is full */
    while (flight.len && results[flight.v[flight.head]].answered) fifo_pop(&flight);
    int wait_ms = 0;
    if (flight.len) {
      uint64_t due = r.deadline[flight.v[flight.head]];
      if (r.nyoung >= window && youth.len && (again.len || next < npairs)) {
        uint64_t free_at = r.sent_at[youth.v[youth.head]] + hold;
        if (free_at < due) due = free_at;
      }
      t = now_ns();
      wait_ms = due > t ? (int)((due - t + 999999) / 1000000) : 0;
    }
    int n = epoll_wait(ep, evs, 64, wait_ms);
    if (n < 0) {
      if (errno != EINTR) {
        err = -errno;
        goto out;
      }
      if (opts && opts->cancelled && opts->cancelled(opts->cancelled_arg)) {
        err = -EINTR;
        goto out;
      }
    }
    for (int i = 0; i < n; i++) finished += take_replies(&r, evs[i].data.u32, npairs);
    t = now_ns();
    while (flight.len) {
      uint32_t p = flight.v[flight.head];
      if (results[p].answered) {
        fifo_pop(&flight);
        continue;
      }
      if (r.deadline[p] > t) break;
      fifo_pop(&flight);
      r.inflight[p] = false; /* a reply to it from now on is late: stray, as for ping -W */
      if (r.young[p]) {      /* only when hold > timeout */
        r.young[p] = false;
        r.nyoung--;
      }
      stats->timeouts++;
      if (results[p].attempts < attempts)
        fifo_push(&again, p);
      else
        finished++; /* unreachable: every attempt went unanswered */
    }
  }
  stats->elapsed_ns = now_ns() - t0;
out:
  for (uint32_t i = 0; i < nhosts; i++)
    if (r.fds[i] >= 0) close(r.fds[i]);
  if (ep >= 0) close(ep);
  free(r.fds);
  free(r.deadline);
  free(r.sent_at);
  free(r.inflight);
  free(r.young);
  free(youth.v);
  free(flight.v);
  free(again.v);
  return err;
}
