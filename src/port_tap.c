/*
 * port_tap.c — the "tap" port kind: a Linux TAP device (/dev/net/tun, IFF_TAP|IFF_NO_PI),
 * optionally created inside a named network namespace, whose other side is a kernel
 * network stack (a host in a namespace, or the machine itself).
 *
 * Owns: creating and configuring the device (name, MTU, MAC, admin up) on the control
 * thread, and its frame I/O on the data plane: one frame per read()/writev() (a TAP fd is
 * not a socket, so there is no recvmmsg); reads drain the device up to the port budget,
 * forwarding in batches of LS_BATCH with one flush each.
 *
 * Offloads. With IFF_VNET_HDR (the default) every frame carries a virtio-net header, and
 * TUNSETOFFLOAD tells the kernel it may hand us partially-checksummed and TSO frames up
 * to 64 KiB: the host stack then sends large segments and skips checksums, as it does
 * for a virtio NIC. The header travels with the frame (ls_buf.vnet) to ports that accept
 * it (other TAPs, AF_PACKET with PACKET_VNET_HDR); for the others the switch completes
 * the checksum or segments the frame (offload.h).
 *
 * The device disappearing shows up as POLLERR / EBADFD: the port goes down (reason
 * "hangup") and stops polling. The device is created in our own namespace and then moved
 * into the host's, so that our fd does not keep the host's namespace alive: deleting the
 * namespace destroys the device, which is how the port learns the host is gone.
 */
#include "port_tap.h"
#include "frame.h"
#include "netns.h"
#include "offload.h"
#include "switch.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

typedef struct tap_port {
  ls_port base;
  int fd;
  bool vnet;
  bool dead;
  char ifname[IFNAMSIZ];
  char netns[LS_NETNS_NAME_MAX];
  uv_poll_t poll;
  int poll_events;
} tap_port;

static tap_port *T(ls_port *p) {
  return (tap_port *)p;
}

static void on_poll(uv_poll_t *h, int status, int events);

static void update_poll(tap_port *t) {
  int ev = 0;
  if (!t->dead && !t->base.closing) {
    if (t->base.blocked == 0) ev |= UV_READABLE;
    if (t->base.txq_len) ev |= UV_WRITABLE;
  }
  if (ev == t->poll_events) return;
  if (ev)
    uv_poll_start(&t->poll, ev, on_poll);
  else
    uv_poll_stop(&t->poll);
  t->poll_events = ev;
}

static void tap_update(ls_port *p) {
  update_poll(T(p));
}

/* The device is gone (namespace deleted, interface removed): down for good. */
static void device_gone(tap_port *t, int err) {
  if (t->dead) return;
  t->dead = true;
  ls_port_error(&t->base, err, LS_REASON_RX);
  ls_port_set_link(&t->base, false, LS_REASON_HANGUP);
  update_poll(t);
}

static bool gone_errno(int e) {
  return e == EBADFD || e == EIO || e == ENXIO || e == ENODEV;
}

static void tap_read(tap_port *t) {
  ls_port *p = &t->base;
  ls_runtime *rt = p->rt;
  uint8_t cls = p->rx_cls;
  uint32_t budget = LS_RX_BUDGET, in_batch = 0;
  ls_vnet vh;
  while (budget > 0 && !p->closing && !t->dead && p->blocked == 0) {
    ls_buf **slot = &rt->rx_bufs[cls][0];
    if (!*slot && !(*slot = ls_pool_get(&rt->pool, cls))) break;
    ls_buf *b = *slot;
    b->head = 0; /* scratch buffers are shared between ports: set what this one uses */
    struct iovec iov[2] = {{&vh, sizeof(vh)}, {b->data, b->cap}};
    ssize_t n = t->vnet ? readv(t->fd, iov, 2) : readv(t->fd, iov + 1, 1);
    if (n < 0) {
      int e = errno;
      if (e == EINTR) continue;
      if (e != EAGAIN && e != EWOULDBLOCK) {
        if (gone_errno(e))
          device_gone(t, -e);
        else {
          p->st.drops.rx_error++;
          ls_port_error(p, -e, LS_REASON_RX);
        }
      }
      break;
    }
    uint32_t len = (uint32_t)n;
    budget--;
    if (t->vnet) {
      if (len < sizeof(vh)) {
        p->st.drops.rx_error++;
        continue;
      }
      len -= sizeof(vh);
    }
    b = ls_rx_take(rt, cls, slot, len);
    if (!b) break;
    if (t->vnet) b->vnet = vh;
    ls_switch_input(p->sw, p, b, false);
    if (++in_batch == LS_BATCH) {
      in_batch = 0;
      ls_rt_flush(rt);
      if (ls_port_batch_done(p)) return;
    }
  }
  ls_rt_flush(rt);
  ls_port_batch_done(p);
}

static void tap_flush(ls_port *p) {
  tap_port *t = T(p);
  static const ls_vnet none;
  while (p->txq_len && !t->dead) {
    ls_buf *b = p->txq[p->txq_head];
    struct iovec iov[2] = {{(void *)(t->vnet ? &b->vnet : &none), sizeof(ls_vnet)},
                           {ls_buf_frame(b), b->len}};
    ssize_t n = t->vnet ? writev(t->fd, iov, 2) : writev(t->fd, iov + 1, 1);
    if (n >= 0) {
      ls_port_txq_sent(p, 1);
      continue;
    }
    int e = errno;
    if (e == EINTR) continue;
    if (e == EAGAIN || e == EWOULDBLOCK) break;
    if (gone_errno(e)) {
      device_gone(t, -e);
      return;
    }
    ls_port_txq_drop(
        p, 1,
        &p->st.drops.tx_error); /* e.g. EINVAL: the kernel refused this frame's offload header */
    ls_port_error(p, -e, LS_REASON_TX);
  }
  update_poll(t);
}

static void on_poll(uv_poll_t *h, int status, int events) {
  tap_port *t = h->data;
  ls_runtime *rt = t->base.rt;
  ls_rt_tick(rt);
  rt->stats.wakeups++;
  if (status < 0) {
    /* libuv stopped the handle (POLLERR): the device is gone. */
    t->poll_events = 0;
    device_gone(t, status);
    ls_rt_flush(rt);
    return;
  }
  if (events & UV_WRITABLE) tap_flush(&t->base);
  if (events & UV_READABLE) tap_read(t);
  ls_rt_flush(rt);
  update_poll(t);
}

static int tap_attach(ls_port *p) {
  tap_port *t = T(p);
  int r = uv_poll_init(&p->rt->loop, &t->poll, t->fd);
  if (r) return r;
  t->poll.data = t;
  p->link_up = true;
  update_poll(t);
  return 0;
}

static void on_closed(uv_handle_t *h) {
  ls_port_release(&((tap_port *)h->data)->base);
}

static void tap_detach(ls_port *p) {
  tap_port *t = T(p);
  uv_poll_stop(&t->poll);
  t->poll_events = 0;
  close(t->fd); /* a non-persistent TAP device disappears with its last fd */
  t->fd = -1;
  uv_close((uv_handle_t *)&t->poll, on_closed);
}

static void tap_destroy(ls_port *p) {
  tap_port *t = T(p);
  if (t->fd >= 0) close(t->fd);
  free(t);
}

static void tap_describe(ls_port *p, ls_port_info *o) {
  tap_port *t = T(p);
  snprintf(o->ifname, sizeof(o->ifname), "%s", t->ifname);
  snprintf(o->netns, sizeof(o->netns), "%s", t->netns);
  o->offloads = t->vnet;
}

static const ls_port_ops tap_ops = {
    .kind = "tap",
    .attach = tap_attach,
    .flush = tap_flush,
    .update = tap_update,
    .detach = tap_detach,
    .destroy = tap_destroy,
    .describe = tap_describe,
};

/* ioctl on an interface, through a socket of the current namespace */
static int if_ioctl(unsigned long req, struct ifreq *ifr) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return -errno;
  int r = ioctl(s, req, ifr) < 0 ? -errno : 0;
  close(s);
  return r;
}

ls_port *ls_port_tap_new(ls_runtime *rt, const ls_port_config *cfg, const ls_tap_options *o,
                         int *err, char *where, size_t wlen) {
  tap_port *t = calloc(1, sizeof(*t));
  if (!t) {
    *err = -ENOMEM;
    return NULL;
  }
  t->fd = -1;
  t->vnet = o->vnet_hdr;
  snprintf(t->ifname, sizeof(t->ifname), "%s", o->ifname);
  if (o->netns) snprintf(t->netns, sizeof(t->netns), "%s", o->netns);
  int r = ls_port_init(&t->base, &tap_ops, rt, cfg);
  if (r) {
    free(t);
    *err = r;
    return NULL;
  }
  /* Frames from the host stack can be up to 64 KiB with TSO; without offloads, MTU-sized. */
  t->base.rx_cls = t->vnet ? LS_POOL_CLASSES - 1 : t->base.rx_cls;
  t->base.offloads = t->vnet;
  /* The device is created here and then moved into its namespace, rather than created
   * from inside it: the TAP fd then belongs to our namespace, so deleting the host's
   * namespace destroys the device (and tells us, POLLERR) instead of being kept alive
   * by our fd. Inside a namespace it starts under a temporary name, then is renamed. */
  int saved = -1;
  t->fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (t->fd < 0) {
    r = -errno;
    snprintf(where, wlen, "/dev/net/tun");
    goto fail;
  }
  struct ifreq ifr;
  memset(&ifr, 0, sizeof(ifr));
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | (t->vnet ? IFF_VNET_HDR : 0);
  snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", o->netns ? "lstap%d" : t->ifname);
  if (ioctl(t->fd, TUNSETIFF, &ifr) < 0) {
    r = -errno;
    snprintf(where, wlen, "TUNSETIFF %s", t->ifname);
    goto fail;
  }
  char made[IFNAMSIZ];
  snprintf(made, sizeof(made), "%s", ifr.ifr_name);
  if (t->vnet) {
    int sz = sizeof(ls_vnet);
    unsigned off = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN;
    if (ioctl(t->fd, TUNSETVNETHDRSZ, &sz) < 0 || ioctl(t->fd, TUNSETOFFLOAD, off) < 0) {
      r = -errno;
      snprintf(where, wlen, "offloads on %s", made);
      goto fail;
    }
  }
  if (o->netns) {
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", made);
    if ((r = if_ioctl(SIOCGIFINDEX, &ifr)) < 0 ||
        (r = ls_netns_move_link(ifr.ifr_ifindex, o->netns)) < 0) {
      snprintf(where, wlen, "moving %s into netns %s", made, o->netns);
      goto fail;
    }
    if ((r = ls_netns_enter(o->netns, &saved)) < 0) {
      snprintf(where, wlen, "netns %s", o->netns);
      goto fail;
    }
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", made);
    snprintf(ifr.ifr_newname, sizeof(ifr.ifr_newname), "%s", t->ifname);
    if ((r = if_ioctl(SIOCSIFNAME, &ifr)) < 0) {
      snprintf(where, wlen, "interface %s in netns %s", t->ifname, o->netns);
      goto leave;
    }
  }
  memset(&ifr, 0, sizeof(ifr));
  snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", t->ifname);
  ifr.ifr_mtu = (int)cfg->mtu;
  if ((r = if_ioctl(SIOCSIFMTU, &ifr)) < 0) {
    snprintf(where, wlen, "MTU %u on %s", cfg->mtu, t->ifname);
    goto leave;
  }
  if (o->has_mac) {
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", t->ifname);
    ifr.ifr_hwaddr.sa_family = 1; /* ARPHRD_ETHER */
    memcpy(ifr.ifr_hwaddr.sa_data, o->mac, 6);
    if ((r = if_ioctl(SIOCSIFHWADDR, &ifr)) < 0) {
      snprintf(where, wlen, "MAC address of %s", t->ifname);
      goto leave;
    }
  }
  if (o->ifup) {
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", t->ifname);
    if ((r = if_ioctl(SIOCGIFFLAGS, &ifr)) == 0) {
      ifr.ifr_flags |= IFF_UP;
      r = if_ioctl(SIOCSIFFLAGS, &ifr);
    }
    if (r < 0) {
      snprintf(where, wlen, "bringing %s up", t->ifname);
      goto leave;
    }
  }
  ls_netns_leave(saved);
  return &t->base;
leave:
  ls_netns_leave(saved);
fail:
  ls_port_fini(&t->base);
  tap_destroy(&t->base);
  *err = r;
  return NULL;
}
