/*
 * port_udp.c — the "udp" port kind: one frame per UDP datagram, as QEMU's
 * `-netdev dgram,local.type=inet,...` and `-netdev socket,udp=...,localaddr=...` send them.
 *
 * Owns: a UDP socket bound at a local address (optionally inside a named namespace), its
 * peer (fixed, or learned from the first datagram), and batched I/O with recvmmsg /
 * sendmmsg. The socket is not connect()ed, so that datagrams from anyone but the peer
 * reach us and can be counted (drops.bad_peer) instead of vanishing in the kernel.
 * UDP has no connection: the link is up whenever the peer is known.
 */
#include "port_udp.h"
#include "frame.h"
#include "netns.h"
#include "switch.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct udp_port {
  ls_port base;
  int fd;
  ls_addr local, peer;
  bool have_peer;
  char local_text[LS_ADDR_TEXT];
  char netns[LS_NETNS_NAME_MAX];
  uv_poll_t poll;
  int poll_events;
  struct sockaddr_storage rx_from[LS_BATCH];
} udp_port;

static udp_port *U(ls_port *p) {
  return (udp_port *)p;
}

static void on_poll(uv_poll_t *h, int status, int events);

static void update_poll(udp_port *u) {
  int ev = 0;
  if (!u->base.closing) {
    if (u->base.blocked == 0) ev |= UV_READABLE;
    if (u->base.txq_len) ev |= UV_WRITABLE;
  }
  if (ev == u->poll_events) return;
  if (ev)
    uv_poll_start(&u->poll, ev, on_poll);
  else
    uv_poll_stop(&u->poll);
  u->poll_events = ev;
}

static void udp_update(ls_port *p) {
  update_poll(U(p));
}

static void udp_read(udp_port *u) {
  ls_port *p = &u->base;
  ls_runtime *rt = p->rt;
  uint8_t cls = p->rx_cls;
  ls_buf **bufs = rt->rx_bufs[cls];
  uint32_t budget = LS_RX_BUDGET;
  while (budget > 0 && !p->closing && p->blocked == 0) {
    unsigned n = budget < LS_BATCH ? budget : LS_BATCH;
    unsigned ready = 0;
    for (; ready < n; ready++) {
      if (!bufs[ready] && !(bufs[ready] = ls_pool_get(&rt->pool, cls))) break;
      bufs[ready]->head = 0;
      rt->rx_iov[ready].iov_base = bufs[ready]->data;
      rt->rx_iov[ready].iov_len = bufs[ready]->cap;
      struct msghdr *m = &rt->rx_msgs[ready].msg_hdr;
      memset(m, 0, sizeof(*m));
      m->msg_name = &u->rx_from[ready];
      m->msg_namelen = sizeof(u->rx_from[ready]);
      m->msg_iov = &rt->rx_iov[ready];
      m->msg_iovlen = 1;
    }
    if (ready == 0) break;
    int r = recvmmsg(u->fd, rt->rx_msgs, ready, MSG_DONTWAIT, NULL);
    if (r <= 0) {
      /* ICMP errors from earlier sends surface here on some kernels: not fatal for UDP. */
      if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
          errno != ECONNREFUSED) {
        p->st.drops.rx_error++;
        ls_port_error(p, -errno, LS_REASON_RX);
      }
      break;
    }
    rt->stats.batches++;
    for (int i = 0; i < r; i++) {
      struct msghdr *m = &rt->rx_msgs[i].msg_hdr;
      const struct sockaddr *from = (const struct sockaddr *)&u->rx_from[i];
      if (!u->have_peer) {
        memcpy(&u->peer.sa, from, m->msg_namelen);
        u->peer.len = m->msg_namelen;
        u->have_peer = true;
        ls_port_set_link(p, true, LS_REASON_PEER);
      } else if (!ls_addr_equal(&u->peer, from, m->msg_namelen)) {
        p->st.drops.bad_peer++;
        continue;
      }
      ls_buf *b = bufs[i];
      bufs[i] = NULL;
      b->len = rt->rx_msgs[i].msg_len;
      ls_switch_input(p->sw, p, b, (m->msg_flags & MSG_TRUNC) != 0);
    }
    ls_rt_flush(rt);
    if (ls_port_batch_done(p)) break;
    budget -= (uint32_t)r;
    if ((unsigned)r < ready) break;
  }
}

static void udp_flush(ls_port *p) {
  udp_port *u = U(p);
  ls_runtime *rt = p->rt;
  while (p->txq_len && u->have_peer) {
    unsigned n = p->txq_len < LS_BATCH ? p->txq_len : LS_BATCH;
    for (unsigned i = 0; i < n; i++) {
      ls_buf *b = p->txq[(p->txq_head + i) & p->txq_mask];
      rt->tx_iov[i].iov_base = ls_buf_frame(b);
      rt->tx_iov[i].iov_len = b->len;
      struct msghdr *m = &rt->tx_msgs[i].msg_hdr;
      memset(m, 0, sizeof(*m));
      m->msg_name = &u->peer.sa;
      m->msg_namelen = u->peer.len;
      m->msg_iov = &rt->tx_iov[i];
      m->msg_iovlen = 1;
    }
    int r = sendmmsg(u->fd, rt->tx_msgs, n, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (r > 0) {
      ls_port_txq_sent(p, (uint32_t)r);
      continue;
    }
    int e = errno;
    if (e == EINTR) continue;
    if (e == EAGAIN || e == EWOULDBLOCK || e == ENOBUFS) break;
    /* EMSGSIZE (above the path MTU / 65507), ECONNREFUSED, EHOSTUNREACH: this frame. */
    ls_port_txq_drop(p, 1, &p->st.drops.tx_error);
    ls_port_error(p, -e, LS_REASON_TX);
  }
  update_poll(u);
}

static void on_poll(uv_poll_t *h, int status, int events) {
  udp_port *u = h->data;
  ls_runtime *rt = u->base.rt;
  ls_rt_tick(rt);
  rt->stats.wakeups++;
  if (status < 0) {
    /* A pending socket error (an ICMP error for an earlier send): clear it, go on. */
    int err = 0;
    socklen_t len = sizeof(err);
    getsockopt(u->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    u->poll_events = 0; /* libuv stopped the handle */
    update_poll(u);
    ls_rt_flush(rt);
    return;
  }
  if (events & UV_WRITABLE) udp_flush(&u->base);
  if (events & UV_READABLE) udp_read(u);
  ls_rt_flush(rt);
  update_poll(u);
}

static int udp_attach(ls_port *p) {
  udp_port *u = U(p);
  int r = uv_poll_init(&p->rt->loop, &u->poll, u->fd);
  if (r) return r;
  u->poll.data = u;
  p->link_up = u->have_peer;
  update_poll(u);
  return 0;
}

static void on_closed(uv_handle_t *h) {
  ls_port_release(&((udp_port *)h->data)->base);
}

static void udp_detach(ls_port *p) {
  udp_port *u = U(p);
  uv_poll_stop(&u->poll);
  u->poll_events = 0;
  close(u->fd);
  u->fd = -1;
  uv_close((uv_handle_t *)&u->poll, on_closed);
}

static void udp_destroy(ls_port *p) {
  udp_port *u = U(p);
  if (u->fd >= 0) close(u->fd);
  free(u);
}

static void udp_describe(ls_port *p, ls_port_info *o) {
  udp_port *u = U(p);
  snprintf(o->path, sizeof(o->path), "%s", u->local_text);
  if (u->have_peer) ls_addr_format(&u->peer, o->peer, sizeof(o->peer));
  snprintf(o->netns, sizeof(o->netns), "%s", u->netns);
}

static const ls_port_ops udp_ops = {
    .kind = "udp",
    .attach = udp_attach,
    .flush = udp_flush,
    .update = udp_update,
    .detach = udp_detach,
    .destroy = udp_destroy,
    .describe = udp_describe,
};

int ls_udp_socket(const ls_addr *local, const char *netns, int *fd, char *where, size_t wlen) {
  char text[LS_ADDR_TEXT];
  ls_addr_format(local, text, sizeof(text));
  int saved;
  int r = ls_netns_enter(netns, &saved);
  if (r) {
    snprintf(where, wlen, "netns %s", netns);
    return r;
  }
  *fd = socket(local->sa.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (*fd < 0) {
    r = -errno;
    snprintf(where, wlen, "socket");
  } else if (bind(*fd, (const struct sockaddr *)&local->sa, local->len) < 0) {
    r = -errno;
    snprintf(where, wlen, "bind %s", text);
    close(*fd);
    *fd = -1;
  } else {
    int big = 4 << 20;
    setsockopt(*fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
    setsockopt(*fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
  }
  ls_netns_leave(saved);
  return r;
}

ls_port *ls_port_udp_new(ls_runtime *rt, const ls_port_config *cfg, const ls_udp_options *o,
                         int *err, char *where, size_t wlen) {
  udp_port *u = calloc(1, sizeof(*u));
  if (!u) {
    *err = -ENOMEM;
    return NULL;
  }
  u->fd = -1;
  u->local = o->local;
  ls_addr_format(&u->local, u->local_text, sizeof(u->local_text));
  if (o->has_peer) {
    u->peer = o->peer;
    u->have_peer = true;
  }
  if (o->netns) snprintf(u->netns, sizeof(u->netns), "%s", o->netns);
  int r = ls_port_init(&u->base, &udp_ops, rt, cfg);
  if (r) {
    free(u);
    *err = r;
    return NULL;
  }
  r = ls_udp_socket(&u->local, o->netns, &u->fd, where, wlen);
  if (r) {
    ls_port_fini(&u->base);
    udp_destroy(&u->base);
    *err = r;
    return NULL;
  }
  /* bound at port 0: the kernel chose one; port:info().path names it */
  ls_addr bound = u->local;
  socklen_t blen = sizeof(bound.sa);
  if (getsockname(u->fd, (struct sockaddr *)&bound.sa, &blen) == 0) {
    bound.len = blen;
    u->local = bound;
    ls_addr_format(&u->local, u->local_text, sizeof(u->local_text));
  }
  return &u->base;
}
