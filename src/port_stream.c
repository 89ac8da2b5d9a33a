/*
 * port_stream.c — the "stream" port kind: frames over a byte stream, each prefixed by its
 * length as a 4-byte big-endian integer.
 *
 * Owns: the framing QEMU speaks with `-netdev stream` (and the older `-netdev socket`),
 * as passt, socket_vmnet and libkrun's unixstream do, over a unix socket (path or
 * "@abstract") or TCP; in either role:
 *  - listen: bound and listening; one peer at a time. When it hangs up (EOF or an
 *    error) the port goes down and the next connection is accepted.
 *  - connect: connects to a listening peer (passt, socket_vmnet, another luaswitch),
 *    and comes up the moment the peer listens (peerwait.h): a stream port of the same
 *    runtime that starts listening at the address wakes it in the same data-plane step
 *    (and accepts it at once, so both are up when the listener's creation returns);
 *    for a filesystem path, inotify on its directory reports the socket file of another
 *    process appearing. Otherwise — and as the fallback when the connection fails or
 *    drops — it retries with back-off, doubling to 5 s from 100 ms (a TCP address; a path
 *    whose directory does not exist yet or without inotify) or from 5 ms (an abstract
 *    name, which another process may bind with no notice).
 *
 * Receive: bytes are read into a per-port buffer (large enough for several maximum-size
 * frames) until the socket is drained or the budget is spent, and every complete frame is
 * copied into a pool buffer and forwarded; a partial frame waits for the next read. Frames
 * still buffered when a read stops early (budget or slice spent, backpressure) are
 * received work held in user space: the loop resumes them (ls_rt_rx_ready), as it does
 * when backpressure lifts, without waiting for the peer to send more. A
 * length of 0 or above 65536 means the peer is not speaking this protocol: the connection
 * is closed and counted (drops.framing).
 *
 * Transmit: up to LS_BATCH queued frames go out in one writev() as (length, frame) pairs;
 * a partial write leaves the offset into the first unsent frame, and the rest is sent
 * when the socket is writable again.
 */
#include "port_stream.h"
#include "frame.h"
#include "netns.h"
#include "peerwait.h"
#include "switch.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#define RETRY_MIN_MS 100    /* TCP, or a path (where inotify wakes the port first) */
#define RETRY_ABSTRACT_MS 5 /* an abstract name: no notice when another process binds it */
#define RETRY_MAX_MS 5000

typedef struct stream_port {
  ls_port base;
  bool listening;
  ls_addr addr;
  char addr_text[LS_ADDR_TEXT];
  char netns[LS_NETNS_NAME_MAX];
  bool unlink_path;
  int lfd;           /* listening socket (listen role) */
  int fd;            /* the connection, or -1 */
  bool connecting;   /* connect role: connect() in progress */
  ls_peer_wait wait; /* connect role: waiting for the peer to listen (peerwait.h) */
  uv_poll_t lpoll, poll;
  uv_timer_t timer;
  int lpoll_events, poll_events;
  bool poll_init;
  int open_handles;
  uint64_t retry_ms;
  /* receive */
  uint8_t *rbuf;
  uint32_t rlen;
  /* transmit */
  uint32_t tx_off; /* bytes of the first queued frame (header included) already written */
  uint8_t hdr[LS_BATCH][4];
  struct iovec iov[2 * LS_BATCH];
  char peer_text[LS_ADDR_TEXT];
} stream_port;

static stream_port *SP(ls_port *p) {
  return (stream_port *)p;
}

static void on_poll(uv_poll_t *h, int status, int events);
static void on_listen(uv_poll_t *h, int status, int events);
static void on_timer(uv_timer_t *t);
static void stream_read(stream_port *s);
static void retry_later(stream_port *s);
static uint64_t retry_first(const stream_port *s);

static void update_poll(stream_port *s) {
  int ev = 0;
  /* Only a live or pending connection is polled: between connections the descriptor is an
   * unconnected socket, which always reports POLLHUP. */
  if (s->fd >= 0 && !s->base.closing && (s->connecting || s->base.link_up)) {
    if (s->connecting) {
      ev = UV_WRITABLE;
    } else {
      if (s->base.blocked == 0) ev |= UV_READABLE;
      if (s->base.txq_len) ev |= UV_WRITABLE;
    }
  }
  if (ev == s->poll_events) return;
  if (ev)
    uv_poll_start(&s->poll, ev, on_poll);
  else
    uv_poll_stop(&s->poll);
  s->poll_events = ev;
}

/* A complete frame (or a corrupt length) waits in the receive buffer: work that needs no
 * more bytes from the peer. */
static bool frame_buffered(const stream_port *s) {
  uint32_t len;
  return ls_stream_next(s->rbuf, s->rlen, &len) != 0;
}

/* Frames still in the buffer are received work held in user space (runtime.h): the socket
 * will not report them, so the loop resumes the read. */
static void resume_if_buffered(stream_port *s) {
  ls_port *p = &s->base;
  if (p->blocked == 0 && p->link_up && s->fd >= 0 && !p->closing && !s->connecting &&
      frame_buffered(s))
    ls_rt_rx_ready(p->rt, p);
}

static void stream_resume(ls_port *p) {
  stream_read(SP(p));
}

static void stream_update(ls_port *p) {
  stream_port *s = SP(p);
  update_poll(s);
  resume_if_buffered(s); /* resumed (backpressure lifted) with frames in the buffer */
}

static void listen_accepting(stream_port *s, bool on) {
  if (!s->listening || s->base.closing) return;
  int ev = on ? UV_READABLE : 0;
  if (ev == s->lpoll_events) return;
  if (ev)
    uv_poll_start(&s->lpoll, ev, on_listen);
  else
    uv_poll_stop(&s->lpoll);
  s->lpoll_events = ev;
}

/* The connection's descriptor number is fixed for the port's life, because the poll handle
 * is bound to it; each new connection is dup3()ed onto it. That is safe with epoll only
 * while the handle is stopped (libuv then re-adds the descriptor, and so the new socket,
 * when it starts again), so every switch of socket happens with the poll stopped. */
static void drop_connection(stream_port *s, int reason) {
  if (s->fd < 0) return;
  uv_poll_stop(&s->poll);
  s->poll_events = 0;
  /* Replace the connection by an unconnected socket under the same number. */
  int dead = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (dead >= 0) {
    dup3(dead, s->fd, O_CLOEXEC);
    close(dead);
  }
  s->connecting = false;
  s->rlen = 0;
  s->tx_off = 0;
  s->peer_text[0] = '\0';
  ls_port_set_link(&s->base, false, reason);
  if (s->listening) {
    listen_accepting(s, true);
  } else if (!s->base.closing) {
    retry_later(s);
  }
}

static void connected(stream_port *s) {
  if (!s->listening) snprintf(s->peer_text, sizeof(s->peer_text), "%s", s->addr_text);
  ls_peer_wait_stop(&s->wait);
  s->connecting = false;
  s->retry_ms = retry_first(s);
  s->rlen = 0;
  s->tx_off = 0;
  if (!ls_addr_is_unix(&s->addr)) {
    int one = 1;
    setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  ls_port_set_link(&s->base, true, LS_REASON_PEER);
  update_poll(s);
}

/* ---- connect role ---------------------------------------------------------------------------- */

/* The first retry after a failed connect. */
static uint64_t retry_first(const stream_port *s) {
  const struct sockaddr_un *sun = (const struct sockaddr_un *)&s->addr.sa;
  return ls_addr_is_unix(&s->addr) && sun->sun_path[0] == '\0' ? RETRY_ABSTRACT_MS : RETRY_MIN_MS;
}

/* Not connected: wait to be woken (listed, or watching again a directory that now exists),
 * and retry on the back-off meanwhile. */
static void retry_later(stream_port *s) {
  ls_peer_wait_start(&s->wait);
  uv_timer_start(&s->timer, on_timer, s->retry_ms, 0);
  s->retry_ms = s->retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : s->retry_ms * 2;
}

static void try_connect(stream_port *s) {
  uv_poll_stop(&s->poll); /* see drop_connection */
  s->poll_events = 0;
  int fd = socket(s->addr.sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) goto retry;
  if (dup3(fd, s->fd, O_CLOEXEC) < 0) {
    close(fd);
    goto retry;
  }
  close(fd);
  if (connect(s->fd, (struct sockaddr *)&s->addr.sa, s->addr.len) == 0) {
    connected(s);
    return;
  }
  if (errno == EINPROGRESS) {
    s->connecting = true;
    update_poll(s);
    return;
  }
retry:
  retry_later(s);
}

/* peerwait.h: the peer may listen now (a stream port of this runtime started listening at
 * the address, or its socket file appeared): try at once, and soon again if it refuses
 * (the file exists a moment before the peer listens). */
static void on_peer_wake(ls_peer_wait *w) {
  stream_port *s = (stream_port *)((char *)w - offsetof(stream_port, wait));
  if (s->base.closing || s->base.link_up || s->connecting) return;
  uv_timer_stop(&s->timer);
  s->retry_ms = LS_PEER_WAKE_RETRY_MS;
  try_connect(s);
}

static void on_timer(uv_timer_t *t) {
  stream_port *s = t->data;
  ls_rt_tick(s->base.rt);
  if (s->base.closing || s->base.link_up || s->connecting) return;
  try_connect(s);
  ls_rt_flush(s->base.rt);
}

/* ---- listen role ------------------------------------------------------------------------------
 */

/* Take the next connection waiting in the backlog, if any. */
static void accept_peer(stream_port *s) {
  int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd < 0) return;
  uv_poll_stop(&s->poll); /* see drop_connection */
  s->poll_events = 0;
  if (dup3(fd, s->fd, O_CLOEXEC) < 0) {
    close(fd);
    return;
  }
  close(fd);
  struct sockaddr_storage peer;
  socklen_t plen = sizeof(peer);
  if (getpeername(s->fd, (struct sockaddr *)&peer, &plen) == 0 && peer.ss_family != AF_UNIX) {
    ls_addr a;
    memcpy(&a.sa, &peer, plen);
    a.len = plen;
    ls_addr_format(&a, s->peer_text, sizeof(s->peer_text));
  }
  listen_accepting(s, false); /* one peer at a time; others wait in the backlog */
  connected(s);
}

static void on_listen(uv_poll_t *h, int status, int events) {
  stream_port *s = h->data;
  (void)events;
  ls_rt_tick(s->base.rt);
  if (status < 0) return;
  accept_peer(s);
  ls_rt_flush(s->base.rt);
}

/* ---- receive --------------------------------------------------------------------------------- */

int ls_stream_next(const uint8_t *buf, uint32_t len, uint32_t *flen) {
  *flen = 0;
  if (len < 4) return 0;
  uint32_t n = ls_get_be32(buf);
  if (n == 0 || n > LS_FRAME_MAX) return -1;
  *flen = n;
  return len - 4 >= n ? 1 : 0;
}

/* Forward the complete frames in rbuf until the budget is spent or a batch ends with the
 * port told to stop (*stop). Returns false if the stream is corrupt. */
static bool parse_frames(stream_port *s, uint32_t *budget, bool *stop) {
  ls_port *p = &s->base;
  ls_runtime *rt = p->rt;
  uint32_t off = 0;
  uint32_t len;
  int more;
  while (*budget && (more = ls_stream_next(s->rbuf + off, s->rlen - off, &len)) != 0) {
    if (more < 0) return false;
    ls_buf *b = ls_pool_get(&rt->pool, ls_pool_class_for(len));
    if (b) {
      memcpy(b->data, s->rbuf + off + 4, len);
      b->len = len;
      ls_switch_input(p->sw, p, b, false);
    } else {
      p->st.drops.rx_error++;
    }
    off += 4 + len;
    (*budget)--;
    if (*budget % LS_BATCH == 0) {
      ls_rt_flush(rt);
      if ((*stop = ls_port_batch_done(p))) break;
    }
  }
  if (off) {
    memmove(s->rbuf, s->rbuf + off, s->rlen - off);
    s->rlen -= off;
  }
  return true;
}

/* A read turn: complete frames already buffered go first, then bytes from the socket, until
 * it is drained, the budget or slice is spent, or backpressure pauses the port. Whatever
 * stops it, frames left in the buffer are resumed from the loop (resume_if_buffered). */
static void stream_read(stream_port *s) {
  ls_port *p = &s->base;
  uint32_t budget = LS_RX_BUDGET;
  bool stop = false;
  while (!stop && budget > 0 && s->fd >= 0 && p->link_up && p->blocked == 0 && !p->closing) {
    if (!frame_buffered(s)) {
      ssize_t n = recv(s->fd, s->rbuf + s->rlen, LS_STREAM_RBUF - s->rlen, MSG_DONTWAIT);
      if (n == 0) {
        drop_connection(s, LS_REASON_HANGUP); /* EOF */
        return;
      }
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        drop_connection(s, LS_REASON_HANGUP);
        return;
      }
      s->rlen += (uint32_t)n;
    }
    if (!parse_frames(s, &budget, &stop)) {
      p->st.drops.framing++;
      ls_port_error(p, -EPROTO, LS_REASON_RX);
      drop_connection(s, LS_REASON_ERROR);
      return;
    }
  }
  ls_rt_flush(p->rt);
  if (!stop) ls_port_batch_done(p);
  resume_if_buffered(s);
}

/* ---- transmit -------------------------------------------------------------------------------- */

static void stream_flush(ls_port *p) {
  stream_port *s = SP(p);
  while (p->txq_len && p->link_up && s->fd >= 0) {
    unsigned n = p->txq_len < LS_BATCH ? p->txq_len : LS_BATCH;
    unsigned cnt = 0;
    for (unsigned i = 0; i < n; i++) {
      ls_buf *b = p->txq[(p->txq_head + i) & p->txq_mask];
      ls_put_be32(s->hdr[i], b->len);
      s->iov[cnt++] = (struct iovec){s->hdr[i], 4};
      s->iov[cnt++] = (struct iovec){ls_buf_frame(b), b->len};
    }
    /* Skip what a previous partial write already sent. */
    uint32_t skip = s->tx_off;
    unsigned first = 0;
    while (skip && skip >= s->iov[first].iov_len) skip -= (uint32_t)s->iov[first++].iov_len;
    s->iov[first].iov_base = (uint8_t *)s->iov[first].iov_base + skip;
    s->iov[first].iov_len -= skip;
    struct msghdr m;
    memset(&m, 0, sizeof(m));
    m.msg_iov = s->iov + first;
    m.msg_iovlen = cnt - first;
    ssize_t w = sendmsg(s->fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      drop_connection(s, LS_REASON_HANGUP);
      return;
    }
    /* Account whole frames written; remember the offset into a partial one. */
    uint64_t done = s->tx_off + (uint64_t)w;
    uint32_t frames = 0;
    for (unsigned i = 0; i < n; i++) {
      ls_buf *b = p->txq[(p->txq_head + i) & p->txq_mask];
      if (done < 4 + (uint64_t)b->len) break;
      done -= 4 + b->len;
      frames++;
    }
    s->tx_off = (uint32_t)done;
    if (frames) ls_port_txq_sent(p, frames);
    if (frames < n) break; /* partial: wait for writability */
  }
  update_poll(s);
}

static void on_poll(uv_poll_t *h, int status, int events) {
  stream_port *s = h->data;
  ls_runtime *rt = s->base.rt;
  ls_rt_tick(rt);
  rt->stats.wakeups++;
  if (status < 0) {
    s->poll_events = 0; /* libuv stopped the handle */
    if (s->connecting) {
      s->connecting = false;
      drop_connection(s, LS_REASON_HANGUP);
    } else {
      drop_connection(s, LS_REASON_ERROR);
    }
    ls_rt_flush(rt);
    return;
  }
  if (s->connecting) {
    int err = 0;
    socklen_t len = sizeof(err);
    getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) {
      s->connecting = false;
      uv_poll_stop(&s->poll);
      s->poll_events = 0;
      retry_later(s);
    } else {
      connected(s);
    }
    ls_rt_flush(rt);
    return;
  }
  if (events & UV_WRITABLE) stream_flush(&s->base);
  if ((events & UV_READABLE) && s->base.link_up) stream_read(s);
  ls_rt_flush(rt);
  update_poll(s);
}

/* ---- lifecycle ------------------------------------------------------------------------------ */

static int stream_attach(ls_port *p) {
  stream_port *s = SP(p);
  uv_loop_t *loop = &p->rt->loop;
  int r = uv_poll_init(loop, &s->poll, s->fd);
  if (r) return r;
  s->poll.data = s;
  s->poll_init = true;
  s->open_handles = 2;
  uv_timer_init(loop, &s->timer);
  s->timer.data = s;
  s->retry_ms = retry_first(s);
  if (s->listening) {
    uv_poll_init(loop, &s->lpoll, s->lfd);
    s->lpoll.data = s;
    s->open_handles++;
    listen_accepting(s, true);
    /* Ports of this runtime waiting to connect here connect now; take the first at once. */
    ls_peer_ready(p->rt, SOCK_STREAM, (const struct sockaddr *)&s->addr.sa, s->addr.len);
    accept_peer(s);
  } else {
    ls_peer_wait_start(&s->wait); /* before the try: a peer listening in between is seen */
    try_connect(s);
  }
  return 0;
}

static void on_closed(uv_handle_t *h) {
  stream_port *s = h->data;
  if (--s->open_handles == 0) ls_port_release(&s->base);
}

static void close_fds(stream_port *s) {
  if (s->fd >= 0) close(s->fd);
  s->fd = -1;
  if (s->lfd >= 0) close(s->lfd);
  s->lfd = -1;
  if (s->unlink_path) {
    const struct sockaddr_un *sun = (const struct sockaddr_un *)&s->addr.sa;
    unlink(sun->sun_path);
    s->unlink_path = false;
  }
}

static void stream_detach(ls_port *p) {
  stream_port *s = SP(p);
  uv_poll_stop(&s->poll);
  uv_timer_stop(&s->timer);
  ls_peer_wait_stop(&s->wait);
  if (s->listening) uv_poll_stop(&s->lpoll);
  close_fds(s);
  uv_close((uv_handle_t *)&s->poll, on_closed);
  uv_close((uv_handle_t *)&s->timer, on_closed);
  if (s->listening) uv_close((uv_handle_t *)&s->lpoll, on_closed);
}

static void stream_destroy(ls_port *p) {
  stream_port *s = SP(p);
  close_fds(s);
  free(s->rbuf);
  free(s);
}

static void stream_describe(ls_port *p, ls_port_info *o) {
  stream_port *s = SP(p);
  snprintf(o->path, sizeof(o->path), "%s", s->addr_text);
  snprintf(o->peer, sizeof(o->peer), "%s", s->peer_text);
  snprintf(o->netns, sizeof(o->netns), "%s", s->netns);
  o->role = s->listening ? "listen" : "connect";
}

static uint64_t stream_backlog(ls_port *p) {
  return ls_fd_backlog(SP(p)->fd);
}

static const ls_port_ops stream_ops = {
    .kind = "stream",
    .attach = stream_attach,
    .flush = stream_flush,
    .update = stream_update,
    .detach = stream_detach,
    .destroy = stream_destroy,
    .describe = stream_describe,
    .backlog = stream_backlog,
    .resume = stream_resume,
};

/* Bind, replacing a stale unix socket file (nobody listening) but never a live one. */
static int bind_addr(int fd, const ls_addr *a) {
  if (bind(fd, (const struct sockaddr *)&a->sa, a->len) == 0) return 0;
  int e = errno;
  if (e != EADDRINUSE || !ls_addr_is_unix(a)) return -e;
  const struct sockaddr_un *sun = (const struct sockaddr_un *)&a->sa;
  struct stat st;
  if (sun->sun_path[0] == '\0' || lstat(sun->sun_path, &st) < 0 || !S_ISSOCK(st.st_mode)) return -e;
  int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (probe < 0) return -e;
  int c = connect(probe, (const struct sockaddr *)&a->sa, a->len);
  int ce = errno;
  close(probe);
  if (c == 0 || ce != ECONNREFUSED) return -EADDRINUSE;
  if (unlink(sun->sun_path) < 0) return -e;
  return bind(fd, (const struct sockaddr *)&a->sa, a->len) == 0 ? 0 : -errno;
}

ls_port *ls_port_stream_new(ls_runtime *rt, const ls_port_config *cfg, const ls_stream_options *o,
                            int *err, char *where, size_t wlen) {
  stream_port *s = calloc(1, sizeof(*s));
  if (!s) {
    *err = -ENOMEM;
    return NULL;
  }
  s->fd = s->lfd = -1;
  s->listening = o->listen;
  s->addr = o->addr;
  if (!s->listening)
    ls_peer_wait_init(&s->wait, rt, SOCK_STREAM, (const struct sockaddr *)&s->addr.sa, s->addr.len,
                      on_peer_wake);
  ls_addr_format(&s->addr, s->addr_text, sizeof(s->addr_text));
  if (o->netns) snprintf(s->netns, sizeof(s->netns), "%s", o->netns);
  int r = ls_port_init(&s->base, &stream_ops, rt, cfg);
  if (r || !(s->rbuf = malloc(LS_STREAM_RBUF))) {
    if (!r) ls_port_fini(&s->base);
    free(s);
    *err = r ? r : -ENOMEM;
    return NULL;
  }
  int saved;
  r = ls_netns_enter(o->netns, &saved);
  if (r) {
    snprintf(where, wlen, "netns %s", o->netns);
    goto fail;
  }
  int family = s->addr.sa.ss_family;
  /* The connection's descriptor number stays fixed for the port's life (the poll handle is
   * bound to it): connections are dup3()ed onto it. Until then it is an unused socket. */
  s->fd =
      socket(family == AF_UNIX ? AF_UNIX : family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (s->fd < 0) {
    r = -errno;
    snprintf(where, wlen, "socket");
    goto leave;
  }
  if (s->listening) {
    s->lfd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->lfd < 0) {
      r = -errno;
      snprintf(where, wlen, "socket");
      goto leave;
    }
    int one = 1;
    if (family != AF_UNIX) setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if ((r = bind_addr(s->lfd, &s->addr)) < 0) {
      snprintf(where, wlen, "bind %s", s->addr_text);
      goto leave;
    }
    s->unlink_path = ls_addr_is_unix(&s->addr) && s->addr_text[0] != '@';
    if (listen(s->lfd, 1) < 0) {
      r = -errno;
      snprintf(where, wlen, "listen %s", s->addr_text);
      goto leave;
    }
  }
  ls_netns_leave(saved);
  return &s->base;
leave:
  ls_netns_leave(saved);
fail:
  ls_port_fini(&s->base);
  stream_destroy(&s->base);
  *err = r;
  return NULL;
}
