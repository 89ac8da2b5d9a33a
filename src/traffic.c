/*
 * traffic.c — background traffic generator and sink (see traffic.h).
 */
#include "traffic.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define TBATCH 32
#define TMAXF 65536

struct ls_traffic {
  pthread_t thread;
  bool started;
  int fd;
  bool sender;
  ls_traffic_opts o;
  uint8_t **frames; /* sender: private copies of the templates */
  size_t *lens;
  _Atomic bool stop;
  _Atomic bool done;
  _Atomic uint64_t progress;
  ls_traffic_result res;
  uint8_t **kept;
  uint32_t *kept_len;
  size_t nkept, kept_cap;
};

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void put_be64(uint8_t *p, uint64_t v) {
  for (int i = 7; i >= 0; i--) {
    p[i] = (uint8_t)v;
    v >>= 8;
  }
}

static uint64_t get_be64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = v << 8 | p[i];
  return v;
}

static void *send_main(void *arg) {
  ls_traffic *t = arg;
  uint8_t(*bufs)[2048] = malloc(TBATCH * sizeof(*bufs));
  uint8_t *big[TBATCH] = {0};
  if (!bufs) {
    t->res.errors++;
    t->res.last_error = ENOMEM;
    atomic_store(&t->done, true);
    return NULL;
  }
  struct mmsghdr msgs[TBATCH];
  struct iovec iov[TBATCH];
  uint64_t seq = 0, sent = 0;
  uint64_t rng = t->o.seed ? t->o.seed : 0x9e3779b97f4a7c15ULL;
  uint64_t start = now_ns();
  size_t next = 0;
  while (!atomic_load_explicit(&t->stop, memory_order_relaxed)) {
    unsigned n = TBATCH;
    if (t->o.count && t->o.count - sent < n) n = (unsigned)(t->o.count - sent);
    if (n == 0) break;
    if (t->o.rate > 0) {
      /* Pace: frame k leaves at start + k / rate. */
      uint64_t due = start + (uint64_t)((double)sent * 1e9 / t->o.rate);
      uint64_t now = now_ns();
      if (due > now) {
        struct timespec ts = {(time_t)((due - now) / 1000000000ULL),
                              (long)((due - now) % 1000000000ULL)};
        nanosleep(&ts, NULL);
      }
      n = 1;
    }
    for (unsigned i = 0; i < n; i++) {
      size_t len = t->lens[next];
      uint8_t *b = bufs[i];
      if (len > sizeof(bufs[i])) {
        if (len > TMAXF) len = TMAXF;
        if (!big[i]) big[i] = malloc(TMAXF);
        b = big[i];
        if (!b) {
          t->res.errors++;
          t->res.last_error = ENOMEM;
          goto out;
        }
      }
      memcpy(b, t->frames[next], len);
      if (t->o.seq_offset && t->o.seq_offset + 8 <= len) put_be64(b + t->o.seq_offset, seq + i);
      if (t->o.ts_offset && t->o.ts_offset + 8 <= len) put_be64(b + t->o.ts_offset, now_ns());
      if (t->o.random_src && len >= 12) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        uint64_t mac = (rng & 0xfeffffffffffULL) | 0x020000000000ULL; /* local, unicast */
        for (int k = 5; k >= 0; k--, mac >>= 8) b[6 + k] = (uint8_t)mac;
      }
      iov[i].iov_base = b;
      iov[i].iov_len = len;
      memset(&msgs[i].msg_hdr, 0, sizeof(msgs[i].msg_hdr));
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
      next = (next + 1) % t->o.nframes;
    }
    unsigned off = 0;
    while (off < n && !atomic_load_explicit(&t->stop, memory_order_relaxed)) {
      int r = sendmmsg(t->fd, msgs + off, n - off, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (r > 0) {
        if (!t->res.first_ns) t->res.first_ns = now_ns();
        for (int i = 0; i < r; i++) t->res.bytes += iov[off + i].iov_len;
        off += (unsigned)r;
        continue;
      }
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) {
        t->res.waits++;
        struct pollfd pfd = {t->fd, POLLOUT, 0};
        poll(&pfd, 1, 50);
        continue;
      }
      if (errno == EINTR) continue;
      t->res.errors++;
      t->res.last_error = errno;
      goto out;
    }
    sent += off;
    seq += off;
    atomic_store_explicit(&t->progress, sent, memory_order_relaxed);
    if (off < n) break;
  }
out:
  t->res.frames = sent;
  t->res.last_ns = now_ns();
  for (unsigned i = 0; i < TBATCH; i++) free(big[i]);
  free(bufs);
  atomic_store(&t->done, true);
  return NULL;
}

static void keep_frame(ls_traffic *t, const uint8_t *d, uint32_t len) {
  if (t->nkept >= t->o.keep_max) return;
  if (t->nkept == t->kept_cap) {
    size_t nc = t->kept_cap ? t->kept_cap * 2 : 1024;
    uint8_t **nk = realloc(t->kept, nc * sizeof(*nk));
    if (!nk) return;
    t->kept = nk;
    uint32_t *nl = realloc(t->kept_len, nc * sizeof(*nl));
    if (!nl) return;
    t->kept_len = nl;
    t->kept_cap = nc;
  }
  uint8_t *c = malloc(len ? len : 1);
  if (!c) return;
  memcpy(c, d, len);
  t->kept[t->nkept] = c;
  t->kept_len[t->nkept] = len;
  t->nkept++;
}

static void *sink_main(void *arg) {
  ls_traffic *t = arg;
  enum { RB = 64 };
  uint8_t *bufs = malloc((size_t)RB * TMAXF);
  struct mmsghdr msgs[RB];
  struct iovec iov[RB];
  bool have_last = false;
  uint64_t last = 0;
  if (!bufs) {
    t->res.errors++;
    t->res.last_error = ENOMEM;
    atomic_store(&t->done, true);
    return NULL;
  }
  while (!atomic_load_explicit(&t->stop, memory_order_relaxed)) {
    for (int i = 0; i < RB; i++) {
      iov[i].iov_base = bufs + (size_t)i * TMAXF;
      iov[i].iov_len = TMAXF;
      memset(&msgs[i].msg_hdr, 0, sizeof(msgs[i].msg_hdr));
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    int r = recvmmsg(t->fd, msgs, RB, MSG_DONTWAIT, NULL);
    if (r <= 0) {
      if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        t->res.errors++;
        t->res.last_error = errno;
      }
      struct pollfd pfd = {t->fd, POLLIN, 0};
      poll(&pfd, 1, 20);
      continue;
    }
    uint64_t now = now_ns();
    if (!t->res.first_ns) t->res.first_ns = now;
    if (t->res.last_ns && now - t->res.last_ns > t->res.max_gap_ns) {
      t->res.max_gap_ns = now - t->res.last_ns;
      t->res.max_gap_end_ns = now;
    }
    t->res.last_ns = now;
    for (int i = 0; i < r; i++) {
      const uint8_t *d = iov[i].iov_base;
      uint32_t len = msgs[i].msg_len;
      t->res.frames++;
      t->res.bytes += len;
      if (t->o.seq_offset && t->o.seq_offset + 8 <= len) {
        uint64_t s = get_be64(d + t->o.seq_offset);
        if (!have_last || s == last + 1)
          t->res.in_order++;
        else if (s == last)
          t->res.duplicates++;
        else if (s < last)
          t->res.reordered++;
        else {
          t->res.gaps += s - last - 1;
          t->res.in_order++;
        }
        if (!have_last || s > last) last = s;
        have_last = true;
      }
      if (t->o.ts_offset && t->o.ts_offset + 8 <= len) {
        uint64_t stamp = get_be64(d + t->o.ts_offset);
        uint64_t lat = now > stamp ? now - stamp : 0;
        if (lat > t->res.max_latency_ns) {
          t->res.max_latency_ns = lat;
          t->res.max_latency_end_ns = now;
        }
        t->res.latency_sum_ns += lat;
        t->res.stamped++;
      }
      if (t->o.keep) keep_frame(t, d, len);
    }
    atomic_store_explicit(&t->progress, t->res.frames, memory_order_relaxed);
  }
  free(bufs);
  atomic_store(&t->done, true);
  return NULL;
}

static ls_traffic *start(int fd, const ls_traffic_opts *o, bool sender, int *err) {
  ls_traffic *t = calloc(1, sizeof(*t));
  if (!t) {
    *err = -ENOMEM;
    return NULL;
  }
  t->fd = fd;
  t->sender = sender;
  t->o = *o;
  if (!t->o.keep_max) t->o.keep_max = 1000000;
  if (sender) {
    if (o->nframes == 0) {
      free(t);
      *err = -EINVAL;
      return NULL;
    }
    t->frames = calloc(o->nframes, sizeof(*t->frames));
    t->lens = calloc(o->nframes, sizeof(*t->lens));
    if (!t->frames || !t->lens) goto nomem;
    for (size_t i = 0; i < o->nframes; i++) {
      t->frames[i] = malloc(o->lens[i] ? o->lens[i] : 1);
      if (!t->frames[i]) goto nomem;
      memcpy(t->frames[i], o->frames[i], o->lens[i]);
      t->lens[i] = o->lens[i];
    }
    t->o.frames = NULL;
    t->o.lens = NULL;
  }
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int r = pthread_create(&t->thread, NULL, sender ? send_main : sink_main, t);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (r) {
    *err = -r;
    ls_traffic_free(t);
    return NULL;
  }
  t->started = true;
  return t;
nomem:
  *err = -ENOMEM;
  ls_traffic_free(t);
  return NULL;
}

ls_traffic *ls_traffic_send(int fd, const ls_traffic_opts *o, int *err) {
  return start(fd, o, true, err);
}

ls_traffic *ls_traffic_sink(int fd, const ls_traffic_opts *o, int *err) {
  return start(fd, o, false, err);
}

void ls_traffic_stop(ls_traffic *t) {
  atomic_store(&t->stop, true);
}
bool ls_traffic_done(ls_traffic *t) {
  return atomic_load(&t->done);
}
uint64_t ls_traffic_progress(ls_traffic *t) {
  return atomic_load(&t->progress);
}

void ls_traffic_join(ls_traffic *t, ls_traffic_result *out) {
  if (t->started) {
    pthread_join(t->thread, NULL);
    t->started = false;
  }
  if (out) *out = t->res;
}

size_t ls_traffic_kept(ls_traffic *t, const uint8_t *const **data, const uint32_t **len) {
  *data = (const uint8_t *const *)t->kept;
  *len = t->kept_len;
  return t->nkept;
}

void ls_traffic_free(ls_traffic *t) {
  if (!t) return;
  if (t->started) {
    ls_traffic_stop(t);
    pthread_join(t->thread, NULL);
  }
  if (t->frames)
    for (size_t i = 0; i < t->o.nframes; i++) free(t->frames[i]);
  free(t->frames);
  free(t->lens);
  for (size_t i = 0; i < t->nkept; i++) free(t->kept[i]);
  free(t->kept);
  free(t->kept_len);
  free(t);
}
