/*
 * port_packet.c — the "packet" port kind: an existing network interface (a veth end, a
 * physical NIC) attached through an AF_PACKET socket, optionally inside a named network
 * namespace.
 *
 * Owns: the socket (ETH_P_ALL, bound to the interface, promiscuous, outgoing frames
 * ignored) and its batched I/O: recvmmsg/sendmmsg, like the datagram ports.
 *
 * Two kernel behaviours need undoing:
 *  - VLAN offload: the kernel strips an 802.1Q/802.1ad tag on receive into metadata
 *    (PACKET_AUXDATA tp_vlan_tci/tp_vlan_tpid). The tag is put back in the frame, so
 *    tagged frames cross the switch intact. Frames are received 4 bytes into their
 *    buffer so that only the 12 address bytes move.
 *  - Checksum and segmentation offload: a veth peer's stack hands over TCP segments of
 *    up to 64 KiB with partial checksums. With PACKET_VNET_HDR (the default) every frame
 *    carries a virtio-net header describing that, exactly as from a TAP device; frames
 *    sent get one too, so such frames cross between TAP and packet ports untouched, and
 *    the switch completes or segments them only for ports without offloads.
 *
 * Link state follows the interface (IFF_UP and IFF_RUNNING), checked once a second and
 * on errors. An interface that disappears (deleted, its namespace gone) takes the port
 * down for good ("hangup"); ENETDOWN while it is only down keeps the port, link down,
 * until it comes back.
 */
#include "port_packet.h"
#include "frame.h"
#include "netns.h"
#include "offload.h"
#include "switch.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif

#define PROBE_MS 1000
#define HEADROOM LS_VLAN_HLEN

typedef struct packet_port {
  ls_port base;
  int fd;
  int ifindex;
  bool vnet;
  bool dead;
  char ifname[IF_NAMESIZE];
  char netns[LS_NETNS_NAME_MAX];
  uv_poll_t poll;
  uv_timer_t timer;
  int poll_events;
  int open_handles;
  /* receive scratch: one virtio-net header and one auxdata block per message */
  ls_vnet rx_vnet[LS_BATCH];
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(struct tpacket_auxdata))];
  } rx_cmsg[LS_BATCH];
  struct iovec rx_iov2[LS_BATCH][2];
  struct iovec tx_iov2[LS_BATCH][2];
} packet_port;

static packet_port *P(ls_port *p) {
  return (packet_port *)p;
}

static void on_poll(uv_poll_t *h, int status, int events);

static void update_poll(packet_port *k) {
  int ev = 0;
  if (!k->dead && !k->base.closing) {
    if (k->base.blocked == 0) ev |= UV_READABLE;
    if (k->base.txq_len && k->base.link_up) ev |= UV_WRITABLE;
  }
  if (ev == k->poll_events) return;
  if (ev)
    uv_poll_start(&k->poll, ev, on_poll);
  else
    uv_poll_stop(&k->poll);
  k->poll_events = ev;
}

static void packet_update(ls_port *p) {
  update_poll(P(p));
}

/* Interface flags through our own socket (it lives in the interface's namespace). */
static int if_state(packet_port *k, bool *running) {
  struct ifreq ifr;
  memset(&ifr, 0, sizeof(ifr));
  snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", k->ifname);
  if (ioctl(k->fd, SIOCGIFINDEX, &ifr) < 0) return -errno;
  if (ifr.ifr_ifindex != k->ifindex) return -ENODEV; /* gone, and the name reused */
  if (ioctl(k->fd, SIOCGIFFLAGS, &ifr) < 0) return -errno;
  *running = (ifr.ifr_flags & IFF_UP) && (ifr.ifr_flags & IFF_RUNNING);
  return 0;
}

static void gone(packet_port *k, int err) {
  if (k->dead) return;
  k->dead = true;
  ls_port_error(&k->base, err, LS_REASON_RX);
  ls_port_set_link(&k->base, false, LS_REASON_HANGUP);
  uv_timer_stop(&k->timer);
  update_poll(k);
}

/* Re-read the interface state; true if the port can still be used. */
static bool recheck(packet_port *k) {
  bool running = false;
  int r = if_state(k, &running);
  if (r == -ENODEV || r == -ENXIO) {
    gone(k, r);
    return false;
  }
  if (r == 0 && running != k->base.link_up)
    ls_port_set_link(&k->base, running, running ? LS_REASON_PEER : LS_REASON_HANGUP);
  return true;
}

static void on_timer(uv_timer_t *t) {
  packet_port *k = t->data;
  ls_rt_tick(k->base.rt);
  if (k->base.closing || k->dead) return;
  if (recheck(k)) update_poll(k);
  ls_rt_flush(k->base.rt);
}

static bool gone_errno(int e) {
  return e == ENODEV || e == ENXIO;
}

static void packet_read(packet_port *k) {
  ls_port *p = &k->base;
  ls_runtime *rt = p->rt;
  uint8_t cls = p->rx_cls;
  ls_buf **bufs = rt->rx_bufs[cls];
  uint32_t budget = LS_RX_BUDGET;
  while (budget > 0 && !p->closing && !k->dead && p->blocked == 0) {
    unsigned n = budget < LS_BATCH ? budget : LS_BATCH;
    unsigned ready = 0;
    for (; ready < n; ready++) {
      if (!bufs[ready] && !(bufs[ready] = ls_pool_get(&rt->pool, cls))) break;
      bufs[ready]->head = HEADROOM; /* scratch buffers are shared between ports */
      struct iovec *iov = k->rx_iov2[ready];
      iov[0].iov_base = &k->rx_vnet[ready];
      iov[0].iov_len = sizeof(ls_vnet);
      iov[1].iov_base = bufs[ready]->data + HEADROOM;
      iov[1].iov_len = bufs[ready]->cap - HEADROOM;
      struct msghdr *m = &rt->rx_msgs[ready].msg_hdr;
      m->msg_name = NULL;
      m->msg_namelen = 0;
      m->msg_iov = k->vnet ? iov : iov + 1;
      m->msg_iovlen = k->vnet ? 2 : 1;
      m->msg_control = k->rx_cmsg[ready].buf;
      m->msg_controllen = sizeof(k->rx_cmsg[ready].buf);
      m->msg_flags = 0;
    }
    if (ready == 0) break;
    int r = recvmmsg(k->fd, rt->rx_msgs, ready, MSG_DONTWAIT, NULL);
    if (r <= 0) {
      int e = errno;
      if (r < 0 && e != EAGAIN && e != EWOULDBLOCK && e != EINTR) {
        if (gone_errno(e))
          gone(k, -e);
        else if (e == ENETDOWN)
          recheck(k);
        else {
          p->st.drops.rx_error++;
          ls_port_error(p, -e, LS_REASON_RX);
        }
      }
      break;
    }
    rt->stats.batches++;
    for (int i = 0; i < r; i++) {
      struct msghdr *m = &rt->rx_msgs[i].msg_hdr;
      uint32_t len = rt->rx_msgs[i].msg_len;
      if (k->vnet) {
        if (len < sizeof(ls_vnet)) {
          p->st.drops.rx_error++;
          continue;
        }
        len -= sizeof(ls_vnet);
      }
      ls_buf *b = bufs[i];
      uint16_t tci = 0, tpid = 0;
      bool tagged = false;
      for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c)) {
        if (c->cmsg_level != SOL_PACKET || c->cmsg_type != PACKET_AUXDATA) continue;
        struct tpacket_auxdata aux;
        memcpy(&aux, CMSG_DATA(c), sizeof(aux));
        if ((aux.tp_status & TP_STATUS_VLAN_VALID) || aux.tp_vlan_tci) {
          tagged = true;
          tci = aux.tp_vlan_tci;
          tpid = (aux.tp_status & TP_STATUS_VLAN_TPID_VALID) && aux.tp_vlan_tpid ? aux.tp_vlan_tpid
                                                                                 : LS_ETH_P_8021Q;
        }
      }
      if (tagged && len >= 2 * LS_ETH_ALEN) {
        /* Put the stripped tag back: move the addresses into the headroom. */
        memmove(b->data, b->data + HEADROOM, 2 * LS_ETH_ALEN);
        ls_put_be16(b->data + 12, tpid);
        ls_put_be16(b->data + 14, tci);
        b->head = 0;
        len += LS_VLAN_HLEN;
        if (k->vnet && (k->rx_vnet[i].flags & LS_VNET_F_NEEDS_CSUM))
          k->rx_vnet[i].csum_start = (uint16_t)(k->rx_vnet[i].csum_start + LS_VLAN_HLEN);
        if (k->vnet && k->rx_vnet[i].hdr_len)
          k->rx_vnet[i].hdr_len = (uint16_t)(k->rx_vnet[i].hdr_len + LS_VLAN_HLEN);
      }
      b = ls_rx_take(rt, cls, &bufs[i], len);
      if (!b) continue;
      if (k->vnet) b->vnet = k->rx_vnet[i];
      ls_switch_input(p->sw, p, b, (m->msg_flags & MSG_TRUNC) != 0);
    }
    ls_rt_flush(rt);
    if (ls_port_batch_done(p)) break;
    budget -= (uint32_t)r;
    if ((unsigned)r < ready) break;
  }
}

static void packet_flush(ls_port *p) {
  packet_port *k = P(p);
  ls_runtime *rt = p->rt;
  while (p->txq_len && !k->dead && p->link_up) {
    unsigned n = p->txq_len < LS_BATCH ? p->txq_len : LS_BATCH;
    for (unsigned i = 0; i < n; i++) {
      ls_buf *b = p->txq[(p->txq_head + i) & p->txq_mask];
      struct iovec *iov = k->tx_iov2[i];
      iov[0].iov_base = &b->vnet;
      iov[0].iov_len = sizeof(ls_vnet);
      iov[1].iov_base = ls_buf_frame(b);
      iov[1].iov_len = b->len;
      struct msghdr *m = &rt->tx_msgs[i].msg_hdr;
      memset(m, 0, sizeof(*m));
      m->msg_iov = k->vnet ? iov : iov + 1;
      m->msg_iovlen = k->vnet ? 2 : 1;
    }
    int r = sendmmsg(k->fd, rt->tx_msgs, n, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (r > 0) {
      ls_port_txq_sent(p, (uint32_t)r);
      continue;
    }
    int e = errno;
    if (e == EINTR) continue;
    if (e == EAGAIN || e == EWOULDBLOCK || e == ENOBUFS) break;
    if (gone_errno(e)) {
      gone(k, -e);
      return;
    }
    if (e == ENETDOWN) {
      recheck(k); /* link down: the queue is discarded */
      break;
    }
    ls_port_txq_drop(
        p, 1, &p->st.drops.tx_error); /* EMSGSIZE (over the interface MTU), EINVAL (bad header) */
    ls_port_error(p, -e, LS_REASON_TX);
  }
  update_poll(k);
}

static void on_poll(uv_poll_t *h, int status, int events) {
  packet_port *k = h->data;
  ls_runtime *rt = k->base.rt;
  ls_rt_tick(rt);
  rt->stats.wakeups++;
  if (status < 0) {
    /* POLLERR: a pending socket error (ENETDOWN, ENODEV). libuv stopped the handle. */
    k->poll_events = 0;
    int err = 0;
    socklen_t len = sizeof(err);
    getsockopt(k->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (gone_errno(err) || !recheck(k)) gone(k, err ? -err : status);
    ls_rt_flush(rt);
    update_poll(k);
    return;
  }
  if (events & UV_WRITABLE) packet_flush(&k->base);
  if (events & UV_READABLE) packet_read(k);
  ls_rt_flush(rt);
  update_poll(k);
}

static int packet_attach(ls_port *p) {
  packet_port *k = P(p);
  int r = uv_poll_init(&p->rt->loop, &k->poll, k->fd);
  if (r) return r;
  k->poll.data = k;
  uv_timer_init(&p->rt->loop, &k->timer);
  k->timer.data = k;
  k->open_handles = 2;
  bool running = false;
  p->link_up = if_state(k, &running) == 0 && running;
  uv_timer_start(&k->timer, on_timer, PROBE_MS, PROBE_MS);
  update_poll(k);
  return 0;
}

static void on_closed(uv_handle_t *h) {
  packet_port *k = h->data;
  if (--k->open_handles == 0) ls_port_release(&k->base);
}

static void packet_detach(ls_port *p) {
  packet_port *k = P(p);
  uv_poll_stop(&k->poll);
  k->poll_events = 0;
  uv_timer_stop(&k->timer);
  close(k->fd);
  k->fd = -1;
  uv_close((uv_handle_t *)&k->poll, on_closed);
  uv_close((uv_handle_t *)&k->timer, on_closed);
}

static void packet_destroy(ls_port *p) {
  packet_port *k = P(p);
  if (k->fd >= 0) close(k->fd);
  free(k);
}

static void packet_describe(ls_port *p, ls_port_info *o) {
  packet_port *k = P(p);
  snprintf(o->ifname, sizeof(o->ifname), "%s", k->ifname);
  snprintf(o->netns, sizeof(o->netns), "%s", k->netns);
}

static const ls_port_ops packet_ops = {
    .kind = "packet",
    .attach = packet_attach,
    .flush = packet_flush,
    .update = packet_update,
    .detach = packet_detach,
    .destroy = packet_destroy,
    .describe = packet_describe,
};

static int setopt(int fd, int level, int name, int val) {
  return setsockopt(fd, level, name, &val, sizeof(val)) < 0 ? -errno : 0;
}

ls_port *ls_port_packet_new(ls_runtime *rt, const ls_port_config *cfg, const ls_packet_options *o,
                            int *err, char *where, size_t wlen) {
  packet_port *k = calloc(1, sizeof(*k));
  if (!k) {
    *err = -ENOMEM;
    return NULL;
  }
  k->fd = -1;
  k->vnet = o->vnet_hdr;
  snprintf(k->ifname, sizeof(k->ifname), "%s", o->ifname);
  if (o->netns) snprintf(k->netns, sizeof(k->netns), "%s", o->netns);
  int r = ls_port_init(&k->base, &packet_ops, rt, cfg);
  if (r) {
    free(k);
    *err = r;
    return NULL;
  }
  /* With offloads a veth hands over 64 KiB segments; without, MTU-sized frames. Either
   * way leave room to put a stripped VLAN tag back. */
  k->base.rx_cls = k->vnet
                       ? LS_POOL_CLASSES - 1
                       : ls_pool_class_for(cfg->mtu + LS_ETH_HLEN + 2 * LS_VLAN_HLEN + HEADROOM);
  k->base.offloads = k->vnet;
  int saved;
  r = ls_netns_enter(o->netns, &saved);
  if (r) {
    snprintf(where, wlen, "netns %s", o->netns);
    goto fail;
  }
  k->fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETH_P_ALL));
  if (k->fd < 0) {
    r = -errno;
    snprintf(where, wlen, "AF_PACKET socket");
    goto leave;
  }
  struct ifreq ifr;
  memset(&ifr, 0, sizeof(ifr));
  snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", k->ifname);
  if (ioctl(k->fd, SIOCGIFINDEX, &ifr) < 0) {
    r = -errno;
    snprintf(where, wlen, "interface %s", k->ifname);
    goto leave;
  }
  k->ifindex = ifr.ifr_ifindex;
  if (o->ifup && ioctl(k->fd, SIOCGIFFLAGS, &ifr) == 0 && !(ifr.ifr_flags & IFF_UP)) {
    ifr.ifr_flags |= IFF_UP;
    if (ioctl(k->fd, SIOCSIFFLAGS, &ifr) < 0) {
      r = -errno;
      snprintf(where, wlen, "bringing %s up", k->ifname);
      goto leave;
    }
  }
  if ((r = setopt(k->fd, SOL_PACKET, PACKET_AUXDATA, 1)) ||
      (k->vnet && (r = setopt(k->fd, SOL_PACKET, PACKET_VNET_HDR, 1))) ||
      (r = setopt(k->fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, 1))) {
    snprintf(where, wlen, "socket options on %s", k->ifname);
    goto leave;
  }
  /* Room for bursts of 64 KiB segments: beyond rmem_max/wmem_max when allowed (root). */
  if (setopt(k->fd, SOL_SOCKET, SO_RCVBUFFORCE, 8 << 20))
    setopt(k->fd, SOL_SOCKET, SO_RCVBUF, 8 << 20);
  if (setopt(k->fd, SOL_SOCKET, SO_SNDBUFFORCE, 8 << 20))
    setopt(k->fd, SOL_SOCKET, SO_SNDBUF, 8 << 20);
  struct sockaddr_ll sll;
  memset(&sll, 0, sizeof(sll));
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(ETH_P_ALL);
  sll.sll_ifindex = k->ifindex;
  if (bind(k->fd, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
    r = -errno;
    snprintf(where, wlen, "bind to %s", k->ifname);
    goto leave;
  }
  struct packet_mreq mr;
  memset(&mr, 0, sizeof(mr));
  mr.mr_ifindex = k->ifindex;
  mr.mr_type = PACKET_MR_PROMISC;
  if (setsockopt(k->fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof(mr)) < 0) {
    r = -errno;
    snprintf(where, wlen, "promiscuous mode on %s", k->ifname);
    goto leave;
  }
  ls_netns_leave(saved);
  return &k->base;
leave:
  ls_netns_leave(saved);
fail:
  ls_port_fini(&k->base);
  packet_destroy(&k->base);
  *err = r;
  return NULL;
}
