/*
 * port_dgram.c — datagram port kinds: "socketpair" and "unix" (one frame per datagram).
 *
 * Owns: the AF_UNIX SOCK_DGRAM transports that VM runtimes speak.
 *  - socketpair: socketpair(AF_UNIX, SOCK_DGRAM); the other end is handed to a VM
 *    runtime or child (QEMU -netdev dgram local.type=fd, vfkit, Apple VZ file handles).
 *  - unix: a socket bound at a path (or "@name" in the abstract namespace). With a fixed
 *    peer path (QEMU -netdev dgram,local.type=unix,remote.str=...), or learning the peer
 *    from the first datagram it sends — vfkit and libkrun first send the 4-byte datagram
 *    "VFKT", which is consumed, not forwarded.
 *
 * The socket is connect()ed to its peer whenever the peer is known. That matters on
 * Linux: poll() then reports writability against the peer's receive queue, so a full
 * peer makes us wait (frames stay on our queue) instead of failing every send with
 * EAGAIN, and only the peer can send to us.
 *
 * A fixed peer that is not bound yet (or went away) leaves the port down, waiting for it;
 * the port comes up the moment the peer can receive (peerwait.h):
 *  - a unix port of the same runtime binding the peer's address (path or "@name") wakes
 *    it in the same data-plane step, so two ports joined to each other are both up when
 *    the second one's creation returns;
 *  - for a filesystem path, inotify on its directory reports the peer's socket file
 *    appearing (another process bound it) and the port tries at once;
 *  - a back-off timer still retries, as the only signal for an abstract name bound by
 *    another process (from RETRY_ABSTRACT_MS, doubling to RETRY_MAX_MS) and as the
 *    fallback for a path (from RETRY_MIN_MS) whose directory does not exist yet or when
 *    inotify is unavailable (each retry watches again);
 *  - and a datagram from the peer brings the port up whatever the rest says.
 * When a port binds its own address it wakes, in turn, the ports of its runtime waiting
 * for that address.
 *
 * A datagram peer's death is not reported by poll: it shows up as ECONNREFUSED (or a
 * vanished path) on the next send. For path ports a 1 Hz probe (re-connecting to the
 * same path, which is harmless while the peer lives) also notices a quiet dead peer.
 * A dead socketpair peer is final: the port goes down and stops polling. A path port
 * goes down and waits for its peer again: learning mode for its next datagram, a fixed
 * peer as above (it looks once at once, in case the peer has already come back).
 *
 * I/O is batched: recvmmsg() until the socket is drained (bounded per wake-up for
 * fairness), forwarding each frame, then one flush per batch; sendmmsg() sends as much
 * of the queue as the peer takes.
 */
#include "port_dgram.h"
#include "frame.h"
#include "peerwait.h"
#include "switch.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define PROBE_MS 1000
#define RETRY_MIN_MS 250    /* fixed peer path: inotify wakes the port, this is the fallback */
#define RETRY_ABSTRACT_MS 5 /* abstract peer: nothing wakes the port if another process binds */
#define RETRY_MAX_MS 4000

enum { DG_SOCKETPAIR, DG_UNIX };

typedef struct dgram_port {
  ls_port base;
  int kind;
  int fd;
  int peer_fd; /* socketpair: the other end, until taken or released */
  /* unix */
  char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
  struct sockaddr_un local;
  socklen_t local_len;
  bool unlink_path;
  bool fixed_peer;
  struct sockaddr_un peer;
  socklen_t peer_len; /* 0 while unknown */
  bool connected;
  bool dead;         /* socketpair peer gone for good */
  ls_peer_wait wait; /* fixed peer: waiting for it to bind (peerwait.h) */
  /* libuv */
  uv_poll_t poll;
  uv_timer_t timer;
  int poll_events;
  int open_handles;
  uint64_t retry_ms;
} dgram_port;

static dgram_port *D(ls_port *p) {
  return (dgram_port *)p;
}

static void on_poll(uv_poll_t *h, int status, int events);

static void update_poll(dgram_port *d) {
  int ev = 0;
  if (!d->dead && !d->base.closing) {
    if (d->base.blocked == 0) ev |= UV_READABLE;
    if (d->base.txq_len) ev |= UV_WRITABLE;
  }
  if (ev == d->poll_events) return;
  if (ev)
    uv_poll_start(&d->poll, ev, on_poll);
  else
    uv_poll_stop(&d->poll);
  d->poll_events = ev;
}

/* ---- peer tracking (unix) ---------------------------------------------------------------- */

static void on_timer(uv_timer_t *t);

static void timer_in(dgram_port *d, uint64_t ms) {
  uv_timer_start(&d->timer, on_timer, ms, 0);
}

static int connect_peer(dgram_port *d) {
  if (connect(d->fd, (struct sockaddr *)&d->peer, d->peer_len) == 0) return 0;
  return -errno;
}

static void disconnect_peer(dgram_port *d) {
  struct sockaddr sa = {.sa_family = AF_UNSPEC};
  if (connect(d->fd, &sa, sizeof(sa)) < 0) { /* nothing to do: we are unconnected anyway */
  }
  d->connected = false;
}

/* The first retry for a fixed peer that is not there. */
static uint64_t retry_first(const dgram_port *d) {
  return d->peer.sun_path[0] == '\0' ? RETRY_ABSTRACT_MS : RETRY_MIN_MS;
}

static void peer_up(dgram_port *d) {
  ls_peer_wait_stop(&d->wait);
  d->connected = true;
  d->retry_ms = retry_first(d);
  timer_in(d, PROBE_MS);
  ls_port_set_link(&d->base, true, LS_REASON_PEER);
}

/* Try the fixed peer: up if it is there. */
static bool try_peer(dgram_port *d) {
  if (connect_peer(d) < 0) return false;
  peer_up(d);
  return true;
}

/* Wait for the fixed peer (see the header comment): listed to be woken first, then one
 * look, so that a peer binding in between is not missed; then the back-off. */
static void wait_peer(dgram_port *d) {
  ls_peer_wait_start(&d->wait);
  if (try_peer(d)) return;
  d->retry_ms = retry_first(d);
  timer_in(d, d->retry_ms);
}

/* peerwait.h: the fixed peer may be there now (a port of this runtime bound it, or its
 * socket file appeared). */
static void on_peer_wake(ls_peer_wait *w) {
  dgram_port *d = (dgram_port *)((char *)w - offsetof(dgram_port, wait));
  if (d->base.closing || d->connected) return;
  if (try_peer(d)) return;
  /* The file exists a moment before the socket takes datagrams: look again soon. */
  d->retry_ms = LS_PEER_WAKE_RETRY_MS;
  timer_in(d, d->retry_ms);
}

/* The peer went away (send error, failed probe). */
static void hangup(dgram_port *d) {
  ls_port *p = &d->base;
  if (d->kind == DG_SOCKETPAIR) {
    d->dead = true;
  } else {
    disconnect_peer(d);
    if (!d->fixed_peer) {
      d->peer_len = 0;
      uv_timer_stop(&d->timer);
    }
  }
  ls_port_set_link(p, false, LS_REASON_HANGUP);
  if (d->fixed_peer) wait_peer(d); /* up again at once if it is already back */
  update_poll(d);
}

static void on_timer(uv_timer_t *t) {
  dgram_port *d = t->data;
  ls_runtime *rt = d->base.rt;
  ls_rt_tick(rt);
  if (d->base.closing) return;
  if (d->connected) {
    /* Probe: re-connecting to the same live socket is a no-op; a dead one refuses. */
    if (connect_peer(d) < 0)
      hangup(d);
    else
      timer_in(d, PROBE_MS);
  } else if (d->fixed_peer) {
    ls_peer_wait_start(&d->wait); /* watches now if it could not before (no directory) */
    if (!try_peer(d)) {
      d->retry_ms = d->retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : d->retry_ms * 2;
      timer_in(d, d->retry_ms);
    }
  }
  ls_rt_flush(rt);
}

static bool same_addr(const struct sockaddr_un *a, socklen_t alen, const struct sockaddr_un *b,
                      socklen_t blen) {
  return alen == blen && memcmp(a, b, alen) == 0;
}

/* An unconnected unix port got a datagram from sa: is it (now) our peer? */
static bool admit_source(dgram_port *d, const struct sockaddr_un *sa, socklen_t len) {
  if (len <= offsetof(struct sockaddr_un, sun_path)) return false; /* unnamed sender */
  if (d->fixed_peer) {
    /* The kernel may report a shorter length for the same path; compare the text. */
    if (d->peer.sun_path[0] == '\0' || sa->sun_path[0] == '\0') {
      if (!same_addr(sa, len, &d->peer, d->peer_len)) return false;
    } else if (strncmp(sa->sun_path, d->peer.sun_path, sizeof(sa->sun_path)) != 0) {
      return false;
    }
  } else {
    memcpy(&d->peer, sa, len);
    d->peer_len = len;
  }
  if (connect_peer(d) < 0) {
    if (!d->fixed_peer) d->peer_len = 0;
    return false;
  }
  peer_up(d);
  return true;
}

/* ---- receive ---------------------------------------------------------------------------- */

static void dgram_read(dgram_port *d) {
  ls_port *p = &d->base;
  ls_runtime *rt = p->rt;
  uint8_t cls = p->rx_cls;
  ls_buf **bufs = rt->rx_bufs[cls];
  uint32_t budget = LS_RX_BUDGET;
  while (budget > 0 && !p->closing && !d->dead && p->blocked == 0) {
    bool want_addr = d->kind == DG_UNIX && !d->connected;
    unsigned n = budget < LS_BATCH ? budget : LS_BATCH;
    unsigned ready = 0;
    for (; ready < n; ready++) {
      if (!bufs[ready] && !(bufs[ready] = ls_pool_get(&rt->pool, cls))) break;
      bufs[ready]->head = 0; /* scratch buffers are shared between ports */
      rt->rx_iov[ready].iov_base = bufs[ready]->data;
      rt->rx_iov[ready].iov_len = bufs[ready]->cap;
      struct msghdr *m = &rt->rx_msgs[ready].msg_hdr;
      m->msg_name = want_addr ? &rt->rx_addr[ready] : NULL;
      m->msg_namelen = want_addr ? sizeof(rt->rx_addr[ready]) : 0;
      m->msg_iov = &rt->rx_iov[ready];
      m->msg_iovlen = 1;
      m->msg_control = NULL;
      m->msg_controllen = 0;
      m->msg_flags = 0;
    }
    if (ready == 0) break; /* out of memory: leave the frames in the socket */
    int r = recvmmsg(d->fd, rt->rx_msgs, ready, MSG_DONTWAIT, NULL);
    if (r <= 0) {
      if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        p->st.drops.rx_error++;
        ls_port_error(p, -errno, LS_REASON_RX);
      }
      break;
    }
    rt->stats.batches++;
    for (int i = 0; i < r; i++) {
      ls_buf *b = bufs[i];
      bufs[i] = NULL;
      b->len = rt->rx_msgs[i].msg_len;
      if (want_addr && !d->connected &&
          !admit_source(d, &rt->rx_addr[i], rt->rx_msgs[i].msg_hdr.msg_namelen)) {
        p->st.drops.bad_peer++;
        ls_pool_put(&rt->pool, b);
        continue;
      }
      if (d->kind == DG_UNIX && b->len == 4 && memcmp(b->data, "VFKT", 4) == 0) {
        p->st.rx_control++;
        ls_pool_put(&rt->pool, b);
        continue;
      }
      ls_switch_input(p->sw, p, b, (rt->rx_msgs[i].msg_hdr.msg_flags & MSG_TRUNC) != 0);
    }
    ls_rt_flush(rt);
    if (ls_port_batch_done(p)) break; /* an output it feeds is congested: wait */
    budget -= (uint32_t)r;
    if ((unsigned)r < ready) break; /* drained */
  }
}

/* ---- transmit ---------------------------------------------------------------------------------
 */

static bool is_hangup_errno(int e) {
  return e == ECONNREFUSED || e == ENOTCONN || e == ECONNRESET || e == EPIPE || e == ENOENT ||
         e == EDESTADDRREQ;
}

static void dgram_flush(ls_port *p) {
  dgram_port *d = D(p);
  ls_runtime *rt = p->rt;
  while (p->txq_len && !d->dead && d->connected) {
    unsigned n = p->txq_len < LS_BATCH ? p->txq_len : LS_BATCH;
    for (unsigned i = 0; i < n; i++) {
      ls_buf *b = p->txq[(p->txq_head + i) & p->txq_mask];
      rt->tx_iov[i].iov_base = ls_buf_frame(b);
      rt->tx_iov[i].iov_len = b->len;
      struct msghdr *m = &rt->tx_msgs[i].msg_hdr;
      memset(m, 0, sizeof(*m));
      m->msg_iov = &rt->tx_iov[i];
      m->msg_iovlen = 1;
    }
    int r = sendmmsg(d->fd, rt->tx_msgs, n, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (r > 0) {
      ls_port_txq_sent(p, (uint32_t)r);
      continue;
    }
    int e = errno;
    if (e == EINTR) continue;
    if (e == EAGAIN || e == EWOULDBLOCK) break; /* wait for writability */
    if (is_hangup_errno(e)) {
      hangup(d);
      return;
    }
    /* This frame cannot be sent (EMSGSIZE, ENOBUFS, ...): drop it and go on. */
    ls_port_txq_drop(p, 1, &p->st.drops.tx_error);
    ls_port_error(p, -e, LS_REASON_TX);
  }
  update_poll(d);
}

static void on_poll(uv_poll_t *h, int status, int events) {
  dgram_port *d = h->data;
  ls_port *p = &d->base;
  ls_runtime *rt = p->rt;
  ls_rt_tick(rt);
  rt->stats.wakeups++;
  if (status < 0) {
    ls_port_error(p, status, LS_REASON_RX);
    if (d->kind == DG_SOCKETPAIR) d->dead = true;
    ls_port_set_link(p, false, LS_REASON_ERROR);
    if (d->kind == DG_UNIX) {
      /* Try again later rather than spinning on a failing descriptor. */
      uv_poll_stop(&d->poll);
      d->poll_events = 0;
    }
    ls_rt_flush(rt);
    return;
  }
  if (events & UV_WRITABLE) dgram_flush(p);
  if (events & UV_READABLE) dgram_read(d);
  ls_rt_flush(rt);
  update_poll(d);
}

/* ---- lifecycle ------------------------------------------------------------------------------- */

static int dgram_attach(ls_port *p) {
  dgram_port *d = D(p);
  uv_loop_t *loop = &p->rt->loop;
  int r = uv_poll_init(loop, &d->poll, d->fd);
  if (r) return r;
  d->poll.data = d;
  uv_timer_init(loop, &d->timer);
  d->timer.data = d;
  d->open_handles = 2;
  if (d->kind == DG_SOCKETPAIR) {
    d->connected = true;
    p->link_up = true;
  } else if (d->fixed_peer) {
    d->retry_ms = retry_first(d);
    if (connect_peer(d) == 0) {
      d->connected = true;
      p->link_up = true;
      timer_in(d, PROBE_MS);
    } else {
      wait_peer(d);
    }
  }
  update_poll(d);
  /* Ports of this runtime waiting for our address may send to it now. */
  if (d->kind == DG_UNIX)
    ls_peer_ready(p->rt, SOCK_DGRAM, (const struct sockaddr *)&d->local, d->local_len);
  return 0;
}

static void close_fds(dgram_port *d) {
  if (d->fd >= 0) close(d->fd);
  d->fd = -1;
  if (d->peer_fd >= 0) close(d->peer_fd);
  d->peer_fd = -1;
  if (d->unlink_path) unlink(d->path);
  d->unlink_path = false;
}

static void on_handle_closed(uv_handle_t *h) {
  dgram_port *d = h->data;
  if (--d->open_handles == 0) ls_port_release(&d->base);
}

static void dgram_detach(ls_port *p) {
  dgram_port *d = D(p);
  uv_poll_stop(&d->poll); /* removes the fd from epoll before we close it */
  d->poll_events = 0;
  uv_timer_stop(&d->timer);
  ls_peer_wait_stop(&d->wait);
  close_fds(d);
  uv_close((uv_handle_t *)&d->poll, on_handle_closed);
  uv_close((uv_handle_t *)&d->timer, on_handle_closed);
}

static void dgram_destroy(ls_port *p) {
  dgram_port *d = D(p);
  close_fds(d);
  free(d);
}

static void dgram_describe(ls_port *p, ls_port_info *o) {
  dgram_port *d = D(p);
  o->fd = d->peer_fd;
  if (d->kind == DG_UNIX) {
    snprintf(o->path, sizeof(o->path), "%s", d->path);
    if (d->peer_len > offsetof(struct sockaddr_un, sun_path)) {
      if (d->peer.sun_path[0] == '\0') {
        size_t n = d->peer_len - offsetof(struct sockaddr_un, sun_path) - 1;
        if (n > sizeof(o->peer) - 2) n = sizeof(o->peer) - 2;
        o->peer[0] = '@';
        memcpy(o->peer + 1, d->peer.sun_path + 1, n);
        o->peer[n + 1] = '\0';
      } else {
        snprintf(o->peer, sizeof(o->peer), "%.*s", (int)sizeof(d->peer.sun_path), d->peer.sun_path);
      }
    }
  }
}

static void dgram_update(ls_port *p) {
  update_poll(D(p));
}

static uint64_t dgram_backlog(ls_port *p) {
  return ls_fd_backlog(D(p)->fd);
}

static const ls_port_ops socketpair_ops = {
    .kind = "socketpair",
    .update = dgram_update,
    .attach = dgram_attach,
    .flush = dgram_flush,
    .detach = dgram_detach,
    .destroy = dgram_destroy,
    .describe = dgram_describe,
    .backlog = dgram_backlog,
};

static const ls_port_ops unix_ops = {
    .kind = "unix",
    .update = dgram_update,
    .attach = dgram_attach,
    .flush = dgram_flush,
    .detach = dgram_detach,
    .destroy = dgram_destroy,
    .describe = dgram_describe,
    .backlog = dgram_backlog,
};

static dgram_port *dgram_alloc(ls_runtime *rt, const ls_port_config *cfg, const ls_port_ops *ops,
                               int *err) {
  dgram_port *d = calloc(1, sizeof(*d));
  if (!d) {
    *err = -ENOMEM;
    return NULL;
  }
  d->fd = d->peer_fd = -1;
  int r = ls_port_init(&d->base, ops, rt, cfg);
  if (r) {
    free(d);
    *err = r;
    return NULL;
  }
  return d;
}

static void dgram_fail(dgram_port *d) {
  ls_port_fini(&d->base);
  dgram_destroy(&d->base);
}

ls_port *ls_port_socketpair_new(ls_runtime *rt, const ls_port_config *cfg, int *err, char *where,
                                size_t wlen) {
  dgram_port *d = dgram_alloc(rt, cfg, &socketpair_ops, err);
  if (!d) return NULL;
  d->kind = DG_SOCKETPAIR;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0) {
    *err = -errno;
    snprintf(where, wlen, "socketpair");
    dgram_fail(d);
    return NULL;
  }
  d->fd = sv[0];
  d->peer_fd = sv[1];
  /* The peer end is meant for a child process: blocking, and inherited across exec. */
  fcntl(sv[1], F_SETFL, fcntl(sv[1], F_GETFL) & ~O_NONBLOCK);
  fcntl(sv[1], F_SETFD, 0);
  return &d->base;
}

/* Fill a sockaddr_un from "path" or "@abstract". */
static int make_addr(const char *path, struct sockaddr_un *sa, socklen_t *len) {
  size_t n = strlen(path);
  memset(sa, 0, sizeof(*sa));
  sa->sun_family = AF_UNIX;
  if (n == 0) return -EINVAL;
  if (n >= sizeof(sa->sun_path)) return -ENAMETOOLONG;
  if (path[0] == '@') {
    memcpy(sa->sun_path + 1, path + 1, n - 1);
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
  } else {
    memcpy(sa->sun_path, path, n);
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
  }
  return 0;
}

/* Bind, replacing a stale socket file (one nobody is bound to) but never a live one. */
static int bind_path(int fd, const struct sockaddr_un *sa, socklen_t len, const char *path) {
  if (bind(fd, (const struct sockaddr *)sa, len) == 0) return 0;
  int e = errno;
  if (e != EADDRINUSE || path[0] == '@') return -e;
  struct stat st;
  if (lstat(path, &st) < 0 || !S_ISSOCK(st.st_mode)) return -e;
  int probe = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (probe < 0) return -e;
  int c = connect(probe, (const struct sockaddr *)sa, len);
  int ce = errno;
  close(probe);
  if (c == 0 || ce != ECONNREFUSED) return -EADDRINUSE; /* someone lives there */
  if (unlink(path) < 0) return -e;
  if (bind(fd, (const struct sockaddr *)sa, len) == 0) return 0;
  return -errno;
}

ls_port *ls_port_unix_new(ls_runtime *rt, const ls_port_config *cfg, const char *path,
                          const char *peer, int *err, char *where, size_t wlen) {
  dgram_port *d = dgram_alloc(rt, cfg, &unix_ops, err);
  if (!d) return NULL;
  d->kind = DG_UNIX;
  snprintf(d->path, sizeof(d->path), "%s", path);
  int r = make_addr(path, &d->local, &d->local_len);
  if (r) {
    snprintf(where, wlen, "path %s", path);
    goto fail;
  }
  if (peer) {
    r = make_addr(peer, &d->peer, &d->peer_len);
    if (r) {
      snprintf(where, wlen, "peer %s", peer);
      goto fail;
    }
    d->fixed_peer = true;
    ls_peer_wait_init(&d->wait, rt, SOCK_DGRAM, (const struct sockaddr *)&d->peer, d->peer_len,
                      on_peer_wake);
  }
  d->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (d->fd < 0) {
    r = -errno;
    snprintf(where, wlen, "socket");
    goto fail;
  }
  r = bind_path(d->fd, &d->local, d->local_len, path);
  if (r) {
    snprintf(where, wlen, "bind %s", path);
    goto fail;
  }
  d->unlink_path = path[0] != '@';
  return &d->base;
fail:
  *err = r;
  dgram_fail(d);
  return NULL;
}

int ls_port_socketpair_take_peer(ls_port *p) {
  dgram_port *d = D(p);
  int fd = d->peer_fd;
  d->peer_fd = -1;
  return fd;
}

int ls_port_socketpair_peer_fd(ls_port *p) {
  return D(p)->peer_fd;
}

bool ls_port_is_socketpair(const ls_port *p) {
  return p->ops == &socketpair_ops;
}
