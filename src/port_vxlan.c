/*
 * port_vxlan.c — the "vxlan" port kind: a VXLAN tunnel endpoint (RFC 7348) that joins the
 * switch to a VNI shared with Linux vxlan devices, Open vSwitch, or other luaswitch hosts.
 *
 * Owns: the UDP socket of the VTEP (bound at a local address and port, 4789 by default,
 * 8472 for Linux's legacy default; optionally inside a named namespace), the list of
 * remote VTEPs, and the port's own table of inner MAC -> remote VTEP.
 *
 * Transmit. Every frame the switch gives the port gets the 8-byte header
 * 08 00 00 00 | VNI (3 bytes) | 00 — exactly that: Linux drops packets with any other
 * flag or reserved bit set. A unicast frame whose inner destination is in the table goes
 * to that remote only; anything else (group destinations, unknown unicast) is replicated
 * to every remote in the flood list (head-end replication). All datagrams go out with
 * sendmmsg, the header and the frame as two iovecs (no copy).
 *
 * Receive. recvmmsg into (header, frame); a datagram shorter than the header and an
 * Ethernet header, with flags other than the I flag, non-zero reserved bytes, or another
 * VNI is dropped and counted (drops.encap). With learning on (the default) the inner
 * source MAC is learned toward the sender's address (and our destination port, as Linux
 * replies from a hashed source port). The table is an ls_fdb whose owners are remote
 * VTEPs, so it ages, caps and evicts exactly like the switch's own table; configured
 * remote entries are static entries in it.
 */
#include "port_vxlan.h"
#include "fdb.h"
#include "frame.h"
#include "port_udp.h"
#include "switch.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_REMOTES 4096
#define AGE_TICK_MS 1000

typedef struct vx_remote {
  ls_fdb_owner owner; /* inner MACs behind this VTEP */
  ls_addr addr;
  bool flood; /* in the flood list */
  struct vx_remote *next;
} vx_remote;

typedef struct vxlan_port {
  ls_port base;
  int fd;
  ls_addr local;
  char local_text[LS_ADDR_TEXT];
  char netns[LS_NETNS_NAME_MAX];
  uint16_t dport;
  uint32_t vni;
  bool learning;
  uint8_t hdr[LS_VXLAN_HLEN];
  vx_remote *remotes;
  uint32_t nremotes, nflood;
  ls_fdb fdb;
  uv_poll_t poll;
  uv_timer_t timer;
  int poll_events;
  int open_handles;
  uint32_t head_copies; /* copies of the first queued frame already sent */
  /* scratch */
  uint8_t rx_hdr[LS_BATCH][LS_VXLAN_HLEN];
  struct iovec rx_iov[LS_BATCH][2];
  struct sockaddr_storage rx_from[LS_BATCH];
  struct iovec tx_iov[LS_BATCH][2];
  uint32_t tx_frame_of[LS_BATCH]; /* which queued frame each message carries */
} vxlan_port;

static vxlan_port *V(ls_port *p) {
  return (vxlan_port *)p;
}

static void on_poll(uv_poll_t *h, int status, int events);

static void update_poll(vxlan_port *v) {
  int ev = 0;
  if (!v->base.closing) {
    if (v->base.blocked == 0) ev |= UV_READABLE;
    if (v->base.txq_len) ev |= UV_WRITABLE;
  }
  if (ev == v->poll_events) return;
  if (ev)
    uv_poll_start(&v->poll, ev, on_poll);
  else
    uv_poll_stop(&v->poll);
  v->poll_events = ev;
}

static void vxlan_update(ls_port *p) {
  update_poll(V(p));
}

/* ---- remotes ------------------------------------------------------------------------------ */

static vx_remote *find_remote(vxlan_port *v, const struct sockaddr *sa, socklen_t len) {
  for (vx_remote *r = v->remotes; r; r = r->next)
    if (ls_addr_equal(&r->addr, sa, len)) return r;
  return NULL;
}

static vx_remote *add_remote(vxlan_port *v, const ls_addr *a, bool flood) {
  vx_remote *r = find_remote(v, (const struct sockaddr *)&a->sa, a->len);
  if (r) {
    if (flood && !r->flood) v->nflood++;
    r->flood |= flood;
    return r;
  }
  if (v->nremotes >= MAX_REMOTES) return NULL;
  r = calloc(1, sizeof(*r));
  if (!r) return NULL;
  if (ls_fdb_owner_add(&v->fdb, &r->owner)) {
    free(r);
    return NULL;
  }
  r->addr = *a;
  r->flood = flood;
  r->next = v->remotes;
  v->remotes = r;
  v->nremotes++;
  v->nflood += flood;
  return r;
}

static void free_remotes(vxlan_port *v) {
  while (v->remotes) {
    vx_remote *r = v->remotes;
    v->remotes = r->next;
    ls_fdb_owner_remove(&v->fdb, &r->owner);
    free(r);
  }
  v->nremotes = v->nflood = 0;
}

/* The address replies go to: the sender's IP at our destination port. */
static ls_addr reply_addr(vxlan_port *v, const struct sockaddr_storage *from, socklen_t len) {
  ls_addr a;
  memcpy(&a.sa, from, len);
  a.len = len;
  ls_addr_set_port(&a, v->dport);
  return a;
}

/* ---- the header ------------------------------------------------------------------------------ */

void ls_vxlan_header(uint8_t h[LS_VXLAN_HLEN], uint32_t vni) {
  memset(h, 0, LS_VXLAN_HLEN);
  h[0] = 0x08;
  h[4] = (uint8_t)(vni >> 16);
  h[5] = (uint8_t)(vni >> 8);
  h[6] = (uint8_t)vni;
}

int64_t ls_vxlan_parse(const uint8_t *h, uint32_t len) {
  if (len < LS_VXLAN_HLEN + LS_ETH_HLEN) return -1;
  if (h[0] != 0x08 || h[1] || h[2] || h[3] || h[7]) return -1;
  return ((int64_t)h[4] << 16) | ((int64_t)h[5] << 8) | h[6];
}

/* ---- receive -------------------------------------------------------------------------------- */

static void vxlan_read(vxlan_port *v) {
  ls_port *p = &v->base;
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
      v->rx_iov[ready][0] = (struct iovec){v->rx_hdr[ready], LS_VXLAN_HLEN};
      v->rx_iov[ready][1] = (struct iovec){bufs[ready]->data, bufs[ready]->cap};
      struct msghdr *m = &rt->rx_msgs[ready].msg_hdr;
      memset(m, 0, sizeof(*m));
      m->msg_name = &v->rx_from[ready];
      m->msg_namelen = sizeof(v->rx_from[ready]);
      m->msg_iov = v->rx_iov[ready];
      m->msg_iovlen = 2;
    }
    if (ready == 0) break;
    int r = recvmmsg(v->fd, rt->rx_msgs, ready, MSG_DONTWAIT, NULL);
    if (r <= 0) {
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
      uint32_t len = rt->rx_msgs[i].msg_len;
      const uint8_t *h = v->rx_hdr[i];
      if (ls_vxlan_parse(h, len) != (int64_t)v->vni) {
        p->st.drops.encap++;
        continue;
      }
      ls_buf *b = bufs[i];
      bufs[i] = NULL;
      b->len = len - LS_VXLAN_HLEN;
      const uint8_t *src = b->data + LS_ETH_ALEN;
      if (v->learning && !ls_mac_is_group(src) && !ls_mac_is_zero(src)) {
        vx_remote *rem = find_remote(v, (const struct sockaddr *)&v->rx_from[i], m->msg_namelen);
        if (!rem) {
          ls_addr back = reply_addr(v, &v->rx_from[i], m->msg_namelen);
          rem = find_remote(v, (const struct sockaddr *)&back.sa, back.len);
          if (!rem) rem = add_remote(v, &back, false);
        }
        if (rem) ls_fdb_learn(&v->fdb, ls_fdb_key(0, ls_mac_load(src)), &rem->owner, rt->now);
      }
      ls_switch_input(p->sw, p, b, (m->msg_flags & MSG_TRUNC) != 0);
    }
    ls_rt_flush(rt);
    if (ls_port_batch_done(p)) break;
    budget -= (uint32_t)r;
    if ((unsigned)r < ready) break;
  }
}

/* ---- transmit ------------------------------------------------------------------------------- */

/* Destinations of one frame: a learned/static remote, or the flood list. */
static vx_remote *unicast_remote(vxlan_port *v, ls_buf *b) {
  const uint8_t *dst = ls_buf_frame(b);
  if (ls_mac_is_group(dst)) return NULL;
  ls_fdb_entry *e = ls_fdb_lookup(&v->fdb, ls_fdb_key(0, ls_mac_load(dst)));
  if (!e) return NULL;
  e->hits++;
  return LS_CONTAINER_OF(e->owner, vx_remote, owner);
}

static void vxlan_flush(ls_port *p) {
  vxlan_port *v = V(p);
  ls_runtime *rt = p->rt;
  uint32_t need[LS_BATCH], built[LS_BATCH];
  while (p->txq_len) {
    /* Datagrams for whole frames (the first frame may already be part-sent, and may need
     * more copies than one batch holds). */
    unsigned nmsg = 0, nf = 0;
    for (uint32_t f = 0; f < p->txq_len && nmsg < LS_BATCH && nf < LS_BATCH; f++) {
      ls_buf *b = p->txq[(p->txq_head + f) & p->txq_mask];
      vx_remote *uni = unicast_remote(v, b);
      uint32_t total = uni ? 1 : v->nflood;
      uint32_t skip = f == 0 ? v->head_copies : 0;
      if (total == 0) break; /* nowhere to send it: dealt with when it is first */
      if (f > 0 && nmsg + total > LS_BATCH) break;
      need[nf] = total > skip ? total - skip : 0;
      built[nf] = 0;
      uint32_t k = 0;
      for (vx_remote *r = uni ? uni : v->remotes; r && nmsg < LS_BATCH; r = uni ? NULL : r->next) {
        if (!uni && !r->flood) continue;
        if (k++ < skip) continue;
        v->tx_iov[nmsg][0] = (struct iovec){v->hdr, LS_VXLAN_HLEN};
        v->tx_iov[nmsg][1] = (struct iovec){ls_buf_frame(b), b->len};
        struct msghdr *m = &rt->tx_msgs[nmsg].msg_hdr;
        memset(m, 0, sizeof(*m));
        m->msg_name = &r->addr.sa;
        m->msg_namelen = r->addr.len;
        m->msg_iov = v->tx_iov[nmsg];
        m->msg_iovlen = 2;
        nmsg++;
        built[nf]++;
      }
      nf++;
    }
    if (nf == 0) { /* the first frame has no remote to go to */
      ls_port_txq_drop(p, 1, &p->st.drops.no_remote);
      v->head_copies = 0;
      continue;
    }
    int r = nmsg ? sendmmsg(v->fd, rt->tx_msgs, nmsg, MSG_DONTWAIT | MSG_NOSIGNAL) : 0;
    if (r < 0) {
      int e = errno;
      if (e == EINTR) continue;
      if (e == EAGAIN || e == EWOULDBLOCK || e == ENOBUFS) break;
      /* This datagram failed (EMSGSIZE: the outer packet is above the path MTU; an
       * unreachable remote): the frame does not arrive everywhere; count it, go on. */
      ls_port_txq_drop(p, 1, &p->st.drops.tx_error);
      v->head_copies = 0;
      ls_port_error(p, -e, LS_REASON_TX);
      continue;
    }
    /* Frames whose every copy went out are sent; a partial one keeps its count. */
    uint32_t left = (uint32_t)r, done = 0, partial = 0;
    for (unsigned i = 0; i < nf; i++) {
      if (built[i] == need[i] && left >= need[i]) {
        left -= need[i];
        done++;
        continue;
      }
      partial = (i == 0 ? v->head_copies : 0) + (left < built[i] ? left : built[i]);
      break;
    }
    if (done) ls_port_txq_sent(p, done);
    v->head_copies = partial;
    if ((unsigned)r < nmsg) break; /* the socket is full: wait for writability */
  }
  update_poll(v);
}

static void on_poll(uv_poll_t *h, int status, int events) {
  vxlan_port *v = h->data;
  ls_runtime *rt = v->base.rt;
  ls_rt_tick(rt);
  rt->stats.wakeups++;
  if (status < 0) {
    int err = 0;
    socklen_t len = sizeof(err);
    getsockopt(v->fd, SOL_SOCKET, SO_ERROR, &err, &len); /* an ICMP error: clear, go on */
    v->poll_events = 0;
    update_poll(v);
    ls_rt_flush(rt);
    return;
  }
  if (events & UV_WRITABLE) vxlan_flush(&v->base);
  if (events & UV_READABLE) vxlan_read(v);
  ls_rt_flush(rt);
  update_poll(v);
}

static void on_timer(uv_timer_t *t) {
  vxlan_port *v = t->data;
  ls_rt_tick(v->base.rt);
  ls_fdb_age(&v->fdb, v->base.rt->now, 65536);
}

/* ---- lifecycle ------------------------------------------------------------------------------- */

static int vxlan_attach(ls_port *p) {
  vxlan_port *v = V(p);
  int r = uv_poll_init(&p->rt->loop, &v->poll, v->fd);
  if (r) return r;
  v->poll.data = v;
  uv_timer_init(&p->rt->loop, &v->timer);
  v->timer.data = v;
  v->open_handles = 2;
  uv_timer_start(&v->timer, on_timer, AGE_TICK_MS, AGE_TICK_MS);
  p->link_up = true;
  update_poll(v);
  return 0;
}

static void on_closed(uv_handle_t *h) {
  vxlan_port *v = h->data;
  if (--v->open_handles == 0) ls_port_release(&v->base);
}

static void vxlan_detach(ls_port *p) {
  vxlan_port *v = V(p);
  uv_poll_stop(&v->poll);
  v->poll_events = 0;
  uv_timer_stop(&v->timer);
  close(v->fd);
  v->fd = -1;
  uv_close((uv_handle_t *)&v->poll, on_closed);
  uv_close((uv_handle_t *)&v->timer, on_closed);
}

static void vxlan_destroy(ls_port *p) {
  vxlan_port *v = V(p);
  if (v->fd >= 0) close(v->fd);
  free_remotes(v);
  ls_fdb_fini(&v->fdb);
  free(v);
}

static void vxlan_describe(ls_port *p, ls_port_info *o) {
  vxlan_port *v = V(p);
  snprintf(o->path, sizeof(o->path), "%s", v->local_text);
  snprintf(o->netns, sizeof(o->netns), "%s", v->netns);
  o->vni = (int64_t)v->vni;
}

static const ls_port_ops vxlan_ops = {
    .kind = "vxlan",
    .attach = vxlan_attach,
    .flush = vxlan_flush,
    .update = vxlan_update,
    .detach = vxlan_detach,
    .destroy = vxlan_destroy,
    .describe = vxlan_describe,
};

ls_port *ls_port_vxlan_new(ls_runtime *rt, const ls_port_config *cfg, const ls_vxlan_options *o,
                           int *err, char *where, size_t wlen) {
  vxlan_port *v = calloc(1, sizeof(*v));
  if (!v) {
    *err = -ENOMEM;
    return NULL;
  }
  v->fd = -1;
  v->local = o->local;
  v->dport = ls_addr_port(&o->local);
  v->vni = o->vni;
  v->learning = o->learning;
  ls_addr_format(&v->local, v->local_text, sizeof(v->local_text));
  if (o->netns) snprintf(v->netns, sizeof(v->netns), "%s", o->netns);
  ls_vxlan_header(v->hdr, o->vni);
  uint64_t salt = 0;
  if (getrandom(&salt, sizeof(salt), GRND_NONBLOCK) != sizeof(salt)) salt = (uintptr_t)v;
  int r = ls_fdb_init(&v->fdb, o->max_macs, o->aging, LS_EVICT_OLDEST, salt);
  if (r) {
    free(v);
    *err = r;
    return NULL;
  }
  r = ls_port_init(&v->base, &vxlan_ops, rt, cfg);
  if (r) {
    ls_fdb_fini(&v->fdb);
    free(v);
    *err = r;
    return NULL;
  }
  for (uint32_t i = 0; i < o->nremotes; i++) {
    if (!add_remote(v, &o->remotes[i], true)) {
      r = -ENOMEM;
      snprintf(where, wlen, "remotes");
      goto fail;
    }
  }
  r = ls_udp_socket(&v->local, o->netns, &v->fd, where, wlen);
  if (r) goto fail;
  return &v->base;
fail:
  ls_port_fini(&v->base);
  vxlan_destroy(&v->base);
  *err = r;
  return NULL;
}

/* ---- control plane: the tunnel table ------------------------------------------------------------
 */

bool ls_port_is_vxlan(const ls_port *p) {
  return p->ops == &vxlan_ops;
}

typedef struct {
  vxlan_port *v;
  uint64_t key;
  const ls_addr *addr;
  ls_vxlan_record *out;
  uint32_t n, cap;
} tbl_arg;

static int cmd_add(ls_runtime *rt, ls_cmd *cmd) {
  tbl_arg *a = cmd->arg;
  vx_remote *r = add_remote(a->v, a->addr, false);
  if (!r) return -ENOSPC;
  return ls_fdb_add(&a->v->fdb, a->key, &r->owner, LS_FDB_STATIC, rt->now);
}

int ls_vxlan_add(ls_port *p, const uint8_t mac[6], const ls_addr *remote) {
  tbl_arg a = {.v = V(p), .key = ls_fdb_key(0, ls_mac_to_u64(mac)), .addr = remote};
  return ls_runtime_call(p->rt, cmd_add, &a);
}

static int cmd_del(ls_runtime *rt, ls_cmd *cmd) {
  (void)rt;
  tbl_arg *a = cmd->arg;
  return ls_fdb_del(&a->v->fdb, a->key);
}

int ls_vxlan_del(ls_port *p, const uint8_t mac[6]) {
  tbl_arg a = {.v = V(p), .key = ls_fdb_key(0, ls_mac_to_u64(mac))};
  return ls_runtime_call(p->rt, cmd_del, &a);
}

static int cmd_flood(ls_runtime *rt, ls_cmd *cmd) {
  (void)rt;
  tbl_arg *a = cmd->arg;
  return add_remote(a->v, a->addr, true) ? 0 : -ENOSPC;
}

int ls_vxlan_add_flood(ls_port *p, const ls_addr *remote) {
  tbl_arg a = {.v = V(p), .addr = remote};
  return ls_runtime_call(p->rt, cmd_flood, &a);
}

static int cmd_dump(ls_runtime *rt, ls_cmd *cmd) {
  tbl_arg *a = cmd->arg;
  vxlan_port *v = a->v;
  a->cap = v->fdb.count + v->nflood + 1;
  a->out = calloc(a->cap, sizeof(*a->out));
  if (!a->out) return -ENOMEM;
  LS_FDB_FOREACH(&v->fdb, e) {
    ls_vxlan_record *r = &a->out[a->n++];
    ls_u64_to_mac(ls_fdb_key_mac(e->key), r->mac);
    r->has_mac = true;
    r->remote = LS_CONTAINER_OF(e->owner, vx_remote, owner)->addr;
    r->age = rt->now > e->seen ? rt->now - e->seen : 0;
    r->is_static = (e->flags & LS_FDB_STATIC) != 0;
  }
  for (vx_remote *rem = v->remotes; rem; rem = rem->next) {
    if (!rem->flood) continue;
    ls_vxlan_record *r = &a->out[a->n++];
    r->remote = rem->addr;
    r->flood = true;
  }
  return 0;
}

int ls_vxlan_dump(ls_port *p, ls_vxlan_record **out, uint32_t *n) {
  tbl_arg a = {.v = V(p)};
  int r = ls_runtime_call(p->rt, cmd_dump, &a);
  *out = a.out;
  *n = a.n;
  return r;
}
