/*
 * port_vhost.c — the "vhost-user" port kind: the back-end of a virtio-net device over
 * split virtqueues, its front-end QEMU (-netdev vhost-user), frames read from and written
 * to the guest's memory directly.
 *
 * Owns: the vhost-user connection (a unix stream socket), the guest memory maps, the two
 * virtqueues of one queue pair (0 = RX, frames to the guest; 1 = TX, frames from it) and
 * their eventfds; in either role:
 *  - listen (default): bound at `path`; one front-end at a time. When it hangs up the port
 *    goes down, everything it gave us is released, and the next connection is accepted.
 *  - client: connects to QEMU's server socket (-chardev socket,server=on,wait=off), and
 *    reconnects with back-off (RETRY_MIN_MS doubling to RETRY_MAX_MS) whenever the
 *    connection fails or drops, so a QEMU that restarts finds the switch again.
 *
 * Control: messages are read on the data-plane loop without ever blocking (uv_poll on the
 * socket), one message at a time (header, then exactly its payload, so the fds that come
 * with SCM_RIGHTS belong to the message being read), decoded and validated by
 * vhost_proto.c, then applied. We offer VERSION_1, MRG_RXBUF, EVENT_IDX and
 * PROTOCOL_FEATURES, and of the protocol features REPLY_ACK only (one queue pair, no MQ,
 * no CONFIG, no logging/migration). Anything malformed, a request we cannot honour that
 * expects a reply, or memory we cannot use is a clean error: logged on stderr with what to
 * fix, an LS_EV_ERROR event, the connection closed, the port down (reason "error").
 *
 * Memory: SET_MEM_TABLE's fds are mapped MAP_SHARED and closed; the old table is unmapped
 * once the new one is in place and the rings are re-translated into it. Guest memory that
 * is not shared (QEMU sent no fd, or maps the region MAP_PRIVATE, which /proc/<qemu>/maps
 * tells us: its writes would never reach us) is refused with the advice to add share=on to
 * the memory backend. Every address the guest or QEMU gives is translated through the
 * table and bounds-checked (vhost_proto.h) before it is touched: rings as a whole when
 * their address is set, each descriptor's buffer when its chain is walked. A chain that
 * points outside, loops, or has the wrong direction is dropped and counted (drops.rx_error
 * from the guest's TX ring, drops.tx_error on its RX ring), its descriptor returned with
 * length 0; an avail ring that claims more entries than the ring holds, or a head outside
 * the table, means the guest's ring is corrupt: connection closed.
 *
 * Link: up while the device runs: memory mapped, and both rings sized, addressed, started
 * (SET_VRING_KICK) and enabled (SET_VRING_ENABLE, or at once without PROTOCOL_FEATURES);
 * GET_VRING_BASE stops a ring (the guest reset or unloaded its driver) and takes the port
 * down until QEMU starts it again.
 *
 * Receive (the guest's TX queue): a kick (uv_poll on its eventfd, or a 1 ms timer when
 * QEMU asked for polling) drains the avail ring up to LS_RX_BUDGET chains; each is copied
 * into a pool buffer without its virtio-net header (12 bytes with VERSION_1 or MRG_RXBUF,
 * 10 without) and forwarded; every LS_BATCH frames the used ring is published, the guest
 * signalled once (call eventfd, unless VRING_AVAIL_F_NO_INTERRUPT or its used_event says
 * not yet), and the batch flushed. The descriptors are returned at once (we copied), so
 * nothing of the guest's is held between turns. Chains left in the ring when the read
 * stops early are received work held in the guest's memory, which no kick will report
 * again: the loop resumes them (ls_rt_rx_ready). Under backpressure the kick is not read
 * at all, so the guest's ring fills and the guest waits, as it would on a real NIC.
 *
 * Transmit (the guest's RX queue, ops->flush): each queued frame takes buffers from the
 * avail ring (several with MRG_RXBUF, num_buffers set in the header; one big enough
 * without), gets a zeroed virtio-net header and its bytes, one used ring update and one
 * signal per flush. When the guest has no buffers left the frame stays queued (the
 * ordinary backpressure and tx_full/stall accounting of port.h apply) and we ask for a
 * kick on the RX queue (used_event/avail_event with EVENT_IDX, else by clearing
 * VRING_USED_F_NO_NOTIFY), which resumes the flush when the guest adds buffers.
 *
 * Offloads: none. CSUM/GUEST_CSUM/TSO are not offered, so the guest sends complete frames
 * and we write headers that say nothing; port.h's offloads stays false and the switch
 * completes or segments offloaded frames from other ports before they reach this one.
 *
 * Memory ordering: the guest runs concurrently on other CPUs. Ring indexes are read with
 * acquire and published with release; before deciding whether to notify (or after asking
 * to be notified) a full fence, as the virtio spec requires; descriptors are read once
 * into locals (vhost_proto.c). No locks anywhere: only the data-plane thread touches the
 * port.
 */
#include "port_vhost.h"
#include "frame.h"
#include "switch.h"
#include "vhost_proto.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define RETRY_MIN_MS 100
#define RETRY_MAX_MS 2000
#define POLL_MS 1          /* rings QEMU asked us to poll (SET_VRING_KICK without an fd) */
#define MSGS_PER_WAKEUP 64 /* control messages handled per wake-up before yielding */

enum { RXQ = 0, TXQ = 1 };
enum { H_CONN = 0, H_KICK = 1 };

struct vhost_port;

/* A poll handle on a descriptor that lives as long as the connection or the kick fd:
 * allocated per descriptor and freed by its close callback. */
typedef struct vh_poll {
  uv_poll_t h;
  struct vhost_port *v;
  int fd;
  int events;
  int kind;  /* H_CONN or H_KICK */
  int queue; /* H_KICK: which ring */
} vh_poll;

typedef struct vq {
  uint32_t num;
  bool has_addr;
  uint64_t desc_uva, avail_uva, used_uva;
  /* translated (NULL until the address and the memory table agree) */
  const volatile ls_vring_desc *desc;
  ls_vring_avail *avail;
  ls_vring_used *used;
  uint16_t last_avail, last_used;
  bool started; /* SET_VRING_KICK received (stopped by GET_VRING_BASE) */
  bool enabled;
  bool polled;  /* started without a kick fd: the poll timer looks at it */
  bool waiting; /* RX: frames wait for buffers, a kick is wanted */
  vh_poll *kick;
  int call_fd, err_fd;
} vq;

typedef struct vhost_port {
  ls_port base;
  char last_error[400]; /* the last connection error, in words, until the link is up again */
  bool client;
  struct sockaddr_un sun;
  socklen_t sun_len;
  char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
  bool unlink_path;
  int lfd;
  uv_poll_t lpoll;
  bool lpoll_on;
  uv_timer_t retry_timer, poll_timer;
  bool poll_timer_on;
  int open_handles;
  bool detached;
  uint64_t retry_ms;
  vh_poll *conn; /* the front-end's connection, or NULL */
  pid_t peer_pid;
  char peer_text[64];
  /* the message being read: header, then exactly its payload */
  uint8_t msg[LS_VHOST_HDR_SIZE + LS_VHOST_PAYLOAD_MAX];
  uint32_t have, need;
  int fds[LS_VHOST_MAX_FDS];
  unsigned nfds;
  bool fd_overflow;
  /* the device */
  uint64_t features, proto_features;
  uint32_t hdr_len;
  bool mrg, event_idx;
  ls_vhost_mem mem;
  vq q[LS_VHOST_NQUEUES];
  bool chain_error_reported; /* one event and log line per connection */
  /* counters (also folded into the port's drops) */
  uint64_t bad_chains, bad_messages;
  bool debug; /* LUASWITCH_VHOST_DEBUG set: log every message */
} vhost_port;

static vhost_port *V(ls_port *p) {
  return (vhost_port *)p;
}

static void on_conn_poll(uv_poll_t *h, int status, int events);
static void on_kick_poll(uv_poll_t *h, int status, int events);
static void on_listen(uv_poll_t *h, int status, int events);
static void on_retry(uv_timer_t *t);
static void on_poll_timer(uv_timer_t *t);
static void conn_close(vhost_port *v, int reason);
static void vhost_flush(ls_port *p);
static void tx_drain(vhost_port *v);

static void vh_log(vhost_port *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void vh_log(vhost_port *v, const char *fmt, ...) {
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof(line), fmt, ap);
  va_end(ap);
  fprintf(stderr, "luaswitch: vhost-user port %s (%s): %s\n", v->base.cfg.name, v->path, line);
}

/* A connection-level error: logged, reported, connection closed, port down. */
static void fatal(vhost_port *v, int err, int where, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void fatal(vhost_port *v, int err, int where, const char *fmt, ...) {
  char line[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof(line), fmt, ap);
  va_end(ap);
  vh_log(v, "%s; closing the connection", line);
  snprintf(v->last_error, sizeof(v->last_error), "%s", line);
  ls_port_error(&v->base, err, where);
  conn_close(v, LS_REASON_ERROR);
}

/* ---- handles ------------------------------------------------------------------------------ */

static void on_handle_closed(uv_handle_t *h) {
  vhost_port *v = h->data;
  if (--v->open_handles == 0 && v->detached) ls_port_release(&v->base);
}

static void on_vh_poll_closed(uv_handle_t *h) {
  vh_poll *vp = (vh_poll *)h;
  vhost_port *v = vp->v;
  free(vp);
  if (--v->open_handles == 0 && v->detached) ls_port_release(&v->base);
}

static vh_poll *vh_poll_open(vhost_port *v, int fd, int kind, int queue) {
  vh_poll *vp = calloc(1, sizeof(*vp));
  if (!vp) return NULL;
  if (uv_poll_init(&v->base.rt->loop, &vp->h, fd) != 0) {
    free(vp);
    return NULL;
  }
  vp->v = v;
  vp->fd = fd;
  vp->kind = kind;
  vp->queue = queue;
  v->open_handles++;
  return vp;
}

static void vh_poll_set(vh_poll *vp, int events) {
  if (!vp || vp->events == events) return;
  if (events)
    uv_poll_start(&vp->h, events, vp->kind == H_CONN ? on_conn_poll : on_kick_poll);
  else
    uv_poll_stop(&vp->h);
  vp->events = events;
}

/* Close the handle (libuv forgets the fd at once) and then the fd. */
static void vh_poll_close(vh_poll *vp) {
  if (!vp) return;
  int fd = vp->fd;
  uv_close((uv_handle_t *)&vp->h, on_vh_poll_closed);
  close(fd);
}

static void close_fd(int *fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

/* ---- device state ------------------------------------------------------------------------- */

static bool q_ready(const vhost_port *v, const vq *q) {
  return q->started && q->enabled && q->desc && v->mem.n;
}

static void unmap_table(ls_vhost_mem *m) {
  for (uint32_t i = 0; i < m->n; i++)
    if (m->r[i].map) munmap(m->r[i].map, m->r[i].map_len);
  memset(m, 0, sizeof(*m));
}

static void q_reset(vq *q) {
  vh_poll_close(q->kick);
  close_fd(&q->call_fd);
  close_fd(&q->err_fd);
  memset(q, 0, sizeof(*q));
  q->call_fd = q->err_fd = -1;
}

/* Back to the state of a fresh connection: rings, eventfds and maps released. */
static void device_reset(vhost_port *v) {
  for (int i = 0; i < LS_VHOST_NQUEUES; i++) q_reset(&v->q[i]);
  unmap_table(&v->mem);
  v->features = v->proto_features = 0;
  v->hdr_len = 10;
  v->mrg = v->event_idx = false;
}

static void update_io(vhost_port *v);

/* The link follows the device: up while both rings can run. */
static void update_link(vhost_port *v, int down_reason) {
  bool up = v->conn && q_ready(v, &v->q[RXQ]) && q_ready(v, &v->q[TXQ]);
  if (up) v->last_error[0] = '\0'; /* the device runs: the last error is history */
  if (up != v->base.link_up)
    ls_port_set_link(&v->base, up, up ? LS_REASON_PEER : down_reason); /* calls update_io */
  else
    update_io(v);
}

/* Point a ring into the current table; 0 (also when not possible yet) or -EFAULT. */
static int translate_ring(vhost_port *v, vq *q) {
  q->desc = NULL;
  q->avail = NULL;
  q->used = NULL;
  if (!q->has_addr || !q->num || !v->mem.n) return 0;
  uint8_t *d = ls_vhost_uva(&v->mem, q->desc_uva, ls_vring_desc_bytes(q->num));
  uint8_t *a = ls_vhost_uva(&v->mem, q->avail_uva, ls_vring_avail_bytes(q->num));
  uint8_t *u = ls_vhost_uva(&v->mem, q->used_uva, ls_vring_used_bytes(q->num));
  if (!d || !a || !u) return -EFAULT;
  q->desc = (const volatile ls_vring_desc *)(void *)d;
  q->avail = (ls_vring_avail *)(void *)a;
  q->used = (ls_vring_used *)(void *)u;
  return 0;
}

/* ---- ring helpers -------------------------------------------------------------------------- */

static uint16_t avail_idx(const vq *q) {
  return __atomic_load_n(&q->avail->idx, __ATOMIC_ACQUIRE);
}

static uint16_t avail_head(const vq *q, uint16_t i) {
  return __atomic_load_n(&q->avail->ring[i & (q->num - 1)], __ATOMIC_RELAXED);
}

static uint16_t *avail_event(vq *q) {
  return (uint16_t *)(void *)&q->used->ring[q->num];
}

static void used_stage(vq *q, uint32_t id, uint32_t len) {
  ls_vring_used_elem *e = &q->used->ring[q->last_used & (q->num - 1)];
  __atomic_store_n(&e->id, id, __ATOMIC_RELAXED);
  __atomic_store_n(&e->len, len, __ATOMIC_RELAXED);
  q->last_used++;
}

/* Publish the used entries staged since old_used and signal the guest if it wants it. */
static void used_publish(vq *q, bool event_idx, uint16_t old_used) {
  if (q->last_used == old_used) return;
  __atomic_store_n(&q->used->idx, q->last_used, __ATOMIC_RELEASE);
  if (q->call_fd < 0) return;
  ls_vring_mb();
  bool need;
  if (event_idx) {
    uint16_t ue = __atomic_load_n(&q->avail->ring[q->num], __ATOMIC_RELAXED);
    need = ls_vring_need_event(ue, q->last_used, old_used);
  } else {
    need = !(__atomic_load_n(&q->avail->flags, __ATOMIC_RELAXED) & LS_VRING_AVAIL_F_NO_INTERRUPT);
  }
  if (need) {
    uint64_t one = 1;
    ssize_t w = write(q->call_fd, &one, sizeof(one));
    (void)w; /* EAGAIN: the counter is saturated, the guest will look anyway */
  }
}

/* Ask (want) or stop asking the guest to kick when it adds to the ring. After asking, the
 * caller must look at the ring again: the guest may have added just before it saw it. */
static void want_kicks(vhost_port *v, vq *q, bool want) {
  if (v->event_idx) {
    if (want) __atomic_store_n(avail_event(q), q->last_avail, __ATOMIC_RELAXED);
  } else {
    uint16_t f = want ? 0 : LS_VRING_USED_F_NO_NOTIFY;
    __atomic_store_n(&q->used->flags, f, __ATOMIC_RELAXED);
  }
  ls_vring_mb();
}

/* Entries the guest made available beyond ours; -1 if the ring is corrupt. */
static int ring_pending(vhost_port *v, vq *q, uint16_t *idx) {
  *idx = avail_idx(q);
  uint16_t n = (uint16_t)(*idx - q->last_avail);
  if (n > q->num) {
    fatal(v, -EPROTO, LS_REASON_PEER,
          "the guest's ring %d claims %u entries available, more than its size %u", (int)(q - v->q),
          n, q->num);
    return -1;
  }
  return n;
}

static void chain_error(vhost_port *v, int err, int queue, uint16_t head) {
  v->bad_chains++;
  if (queue == TXQ)
    v->base.st.drops.rx_error++;
  else
    v->base.st.drops.tx_error++;
  if (v->chain_error_reported) return;
  v->chain_error_reported = true;
  vh_log(v, "ring %d: descriptor chain at %u dropped: %s (further ones are only counted)", queue,
         head,
         err == -EFAULT  ? "a buffer outside the guest memory table"
         : err == -ELOOP ? "the chain loops"
         : err == -E2BIG ? "too many segments"
                         : "malformed (index, direction or length)");
  ls_port_error(&v->base, err, queue == TXQ ? LS_REASON_RX : LS_REASON_TX);
}

/* ---- receive: the guest's TX ring ----------------------------------------------------------- */

static bool tx_pending(vhost_port *v) {
  vq *q = &v->q[TXQ];
  return q_ready(v, q) && avail_idx(q) != q->last_avail;
}

/* One chain from the guest: forward its frame, stage its descriptor as used. False: the
 * connection was closed. */
static bool tx_one(vhost_port *v, vq *q, uint16_t head) {
  ls_port *p = &v->base;
  ls_vhost_seg segs[LS_VHOST_CHAIN_SEGS];
  uint32_t total;
  if (head >= q->num) {
    fatal(v, -EPROTO, LS_REASON_PEER, "the guest made descriptor %u available in a ring of %u",
          head, q->num);
    return false;
  }
  int n = ls_vhost_chain(q->desc, q->num, head, &v->mem, false, segs, LS_VHOST_CHAIN_SEGS, &total);
  if (n < 0) {
    chain_error(v, n, TXQ, head);
    used_stage(q, head, 0);
    return true;
  }
  if (total < v->hdr_len) {
    p->st.drops.runt++;
  } else if (total - v->hdr_len > LS_FRAME_MAX) {
    p->st.drops.oversize++;
  } else {
    uint32_t len = total - v->hdr_len;
    ls_buf *b = ls_pool_get(&p->rt->pool, ls_pool_class_for(len));
    if (b) {
      ls_vhost_copy_from(segs, (uint32_t)n, v->hdr_len, b->data, len);
      b->len = len;
      used_stage(q, head, 0);
      ls_switch_input(p->sw, p, b, false);
      return true;
    }
    p->st.drops.rx_error++;
  }
  used_stage(q, head, 0);
  return true;
}

/* The end of a read turn, or a resume: with event idx, ask for a kick at where we are
 * now, whatever ended the turn (an empty ring, the budget, backpressure) — a guest that
 * fills its ring after a turn that ended on its budget would otherwise never kick again;
 * then chains already in the guest's ring, which no kick will announce, are read from
 * the loop. */
static void tx_rearm(vhost_port *v, ls_port *p) {
  if (p->blocked || !p->link_up || p->closing || !q_ready(v, &v->q[TXQ])) return;
  if (v->event_idx) want_kicks(v, &v->q[TXQ], true);
  if (tx_pending(v)) ls_rt_rx_ready(p->rt, p);
}

/* A read turn: chains until the ring is empty, the budget or slice is spent, or
 * backpressure pauses the port. */
static void tx_drain(vhost_port *v) {
  ls_port *p = &v->base;
  ls_runtime *rt = p->rt;
  vq *q = &v->q[TXQ];
  if (!q_ready(v, q) || !p->link_up || p->blocked || p->closing) return;
  uint32_t budget = LS_RX_BUDGET, in_batch = 0;
  uint16_t old_used = q->last_used;
  bool stop = false;
  while (budget && !stop) {
    uint16_t idx;
    int pending = ring_pending(v, q, &idx);
    if (pending < 0) return;
    if (pending == 0) {
      if (v->event_idx) {
        want_kicks(v, q, true);
        if (avail_idx(q) != idx) continue;
      }
      break;
    }
    while (pending-- > 0 && budget) {
      uint16_t head = avail_head(q, q->last_avail);
      q->last_avail++;
      budget--;
      if (!tx_one(v, q, head)) return;
      if (++in_batch == LS_BATCH) {
        in_batch = 0;
        used_publish(q, v->event_idx, old_used);
        old_used = q->last_used;
        ls_rt_flush(rt);
        if (!v->conn || !p->link_up || p->closing) return;
        if (ls_port_batch_done(p)) {
          stop = true;
          break;
        }
      }
    }
  }
  used_publish(q, v->event_idx, old_used);
  ls_rt_flush(rt);
  if (!v->conn || p->closing) return;
  if (!stop) ls_port_batch_done(p);
  tx_rearm(v, p);
}

static void vhost_resume(ls_port *p) {
  tx_drain(V(p));
}

/* ---- transmit: the guest's RX ring ---------------------------------------------------------- */

/* Copy bytes [off, off + len) of the stream (hdr, then frame) into segs from their start. */
static void put_stream(const ls_vhost_seg *segs, uint32_t n, uint32_t off, uint32_t len,
                       const uint8_t *hdr, uint32_t hlen, const uint8_t *frame) {
  uint32_t at = 0;
  if (off < hlen) {
    uint32_t k = hlen - off < len ? hlen - off : len;
    ls_vhost_copy_to(segs, n, 0, hdr + off, k);
    at = k;
    off += k;
    len -= k;
  }
  if (len) ls_vhost_copy_to(segs, n, at, frame + (off - hlen), len);
}

/* Place one frame into the guest's buffers. 1: placed (used entries staged); 0: not
 * enough buffers (nothing consumed); -1: it can never fit (drop it); -2: connection
 * closed. */
static int rx_one(vhost_port *v, vq *q, ls_buf *b, uint16_t *idx) {
  uint8_t hdr[12] = {0};
  uint32_t hlen = v->hdr_len, need = hlen + b->len, off = 0;
  uint16_t nbufs = 0, start_avail = q->last_avail, start_used = q->last_used;
  ls_vhost_seg first[LS_VHOST_CHAIN_SEGS], segs[LS_VHOST_CHAIN_SEGS];
  uint32_t nfirst = 0;
  const uint8_t *frame = ls_buf_frame(b);
  hdr[10] = 1; /* num_buffers (VERSION_1 / MRG_RXBUF), fixed below */
  while (off < need) {
    if (q->last_avail == *idx) {
      int pending = ring_pending(v, q, idx);
      if (pending < 0) return -2;
      if (pending == 0) {
        bool never = (uint16_t)(q->last_avail - start_avail) >= q->num;
        q->last_avail = start_avail;
        q->last_used = start_used;
        return never ? -1 : 0; /* a whole ring of buffers is not enough: it never fits */
      }
    }
    uint16_t head = avail_head(q, q->last_avail);
    if (head >= q->num) {
      fatal(v, -EPROTO, LS_REASON_PEER, "the guest made descriptor %u available in a ring of %u",
            head, q->num);
      return -2;
    }
    uint32_t total;
    int n = ls_vhost_chain(q->desc, q->num, head, &v->mem, true, segs, LS_VHOST_CHAIN_SEGS, &total);
    if (n >= 0 && nbufs == 0 && total < hlen) n = -EINVAL; /* the header must fit the first */
    if (n < 0) {
      chain_error(v, n, RXQ, head);
      q->last_avail++;
      used_stage(q, head, 0);
      start_avail = q->last_avail; /* returned for good, whatever happens to the frame */
      start_used = q->last_used;
      continue;
    }
    if (!v->mrg && total < need) {
      /* one buffer per frame and this one is too small: the frame cannot be delivered */
      return -1;
    }
    q->last_avail++;
    uint32_t w = total < need - off ? total : need - off;
    put_stream(segs, (uint32_t)n, off, w, hdr, hlen, frame);
    used_stage(q, head, w);
    if (nbufs++ == 0) {
      memcpy(first, segs, (size_t)n * sizeof(segs[0]));
      nfirst = (uint32_t)n;
    }
    off += w;
  }
  if (nbufs > 1 && hlen == 12) {
    uint8_t nb[2] = {(uint8_t)nbufs, (uint8_t)(nbufs >> 8)};
    ls_vhost_copy_to(first, nfirst, 10, nb, 2);
  }
  return 1;
}

static void vhost_flush(ls_port *p) {
  vhost_port *v = V(p);
  vq *q = &v->q[RXQ];
  if (!v->conn || !p->link_up || !q_ready(v, q)) return;
  uint16_t old_used = q->last_used, idx = q->last_avail;
  uint32_t sent = 0;
  bool starved = false;
  while (p->txq_len > sent) {
    ls_buf *b = p->txq[(p->txq_head + sent) & p->txq_mask];
    int r = rx_one(v, q, b, &idx);
    if (r == -2) return; /* the connection is gone, and the queue with it */
    if (r == 1) {
      sent++;
      continue;
    }
    if (r < 0) {
      if (sent) ls_port_txq_sent(p, sent);
      sent = 0;
      ls_port_txq_drop(p, 1, &p->st.drops.tx_error);
      continue;
    }
    /* not enough buffers: ask for a kick, then look once more (the guest may have just
     * added some); starved unless it did */
    uint16_t seen = idx;
    want_kicks(v, q, true);
    if (ring_pending(v, q, &idx) < 0) return;
    if (idx == seen) {
      starved = true;
      break;
    }
  }
  used_publish(q, v->event_idx, old_used);
  if (sent) ls_port_txq_sent(p, sent);
  if (!starved && q->waiting) want_kicks(v, q, false);
  q->waiting = starved;
  update_io(v);
}

/* ---- I/O interest ----------------------------------------------------------------------------
 */

static void update_io(vhost_port *v) {
  ls_port *p = &v->base;
  bool live = v->conn && !p->closing && p->link_up;
  vq *tx = &v->q[TXQ], *rx = &v->q[RXQ];
  bool tx_on = live && p->blocked == 0 && q_ready(v, tx);
  bool rx_on = live && q_ready(v, rx) && rx->waiting && p->txq_len;
  vh_poll_set(tx->kick, tx_on ? UV_READABLE : 0);
  vh_poll_set(rx->kick, rx_on ? UV_READABLE : 0);
  bool timer = (tx_on && tx->polled) || (rx_on && rx->polled);
  if (timer != v->poll_timer_on) {
    if (timer)
      uv_timer_start(&v->poll_timer, on_poll_timer, POLL_MS, POLL_MS);
    else
      uv_timer_stop(&v->poll_timer);
    v->poll_timer_on = timer;
  }
}

static void vhost_update(ls_port *p) {
  vhost_port *v = V(p);
  update_io(v);
  /* resumed (backpressure lifted, link up): kicks asked for again, chains already there read */
  tx_rearm(v, p);
}

static void drain_eventfd(int fd) {
  uint64_t n;
  while (read(fd, &n, sizeof(n)) == (ssize_t)sizeof(n)) {
  }
}

static void on_kick_poll(uv_poll_t *h, int status, int events) {
  vh_poll *vp = (vh_poll *)h;
  vhost_port *v = vp->v;
  ls_runtime *rt = v->base.rt;
  (void)events;
  ls_rt_tick(rt);
  rt->stats.wakeups++;
  if (status < 0) {
    vh_poll_set(vp, 0);
    vp->events = 0;
    ls_rt_flush(rt);
    return;
  }
  drain_eventfd(vp->fd);
  if (vp->queue == TXQ)
    tx_drain(v);
  else if (v->base.txq_len)
    vhost_flush(&v->base);
  ls_rt_flush(rt);
}

static void on_poll_timer(uv_timer_t *t) {
  vhost_port *v = t->data;
  ls_runtime *rt = v->base.rt;
  ls_rt_tick(rt);
  if (v->q[TXQ].polled) tx_drain(v);
  if (v->conn && v->q[RXQ].polled && v->q[RXQ].waiting && v->base.txq_len) vhost_flush(&v->base);
  ls_rt_flush(rt);
}

/* ---- control messages ----------------------------------------------------------------------- */

static int send_reply(vhost_port *v, uint32_t request, const void *payload, uint32_t size) {
  uint8_t buf[LS_VHOST_HDR_SIZE + 64];
  uint32_t flags = LS_VHOST_VERSION | LS_VHOST_F_REPLY;
  memcpy(buf, &request, 4);
  memcpy(buf + 4, &flags, 4);
  memcpy(buf + 8, &size, 4);
  memcpy(buf + LS_VHOST_HDR_SIZE, payload, size);
  ssize_t w = send(v->conn->fd, buf, LS_VHOST_HDR_SIZE + size, MSG_NOSIGNAL | MSG_DONTWAIT);
  return w == (ssize_t)(LS_VHOST_HDR_SIZE + size) ? 0 : -EIO;
}

static int reply_u64(vhost_port *v, uint32_t request, uint64_t x) {
  return send_reply(v, request, &x, sizeof(x));
}

/* Is the front-end's mapping of uva shared? 1 yes, 0 no (private), -1 cannot tell. */
static int uva_shared(pid_t pid, uint64_t uva) {
  if (pid <= 0) return -1;
  char path[64];
  snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
  FILE *f = fopen(path, "re");
  if (!f) return -1;
  char line[512];
  int r = -1;
  while (fgets(line, sizeof(line), f)) {
    unsigned long long lo, hi;
    char perms[8];
    if (sscanf(line, "%llx-%llx %7s", &lo, &hi, perms) != 3) continue;
    if (uva >= lo && uva < hi) {
      r = perms[3] == 's';
      break;
    }
  }
  fclose(f);
  return r;
}

static const char share_hint[] =
    "add share=on to the guest's memory backend, e.g. -object "
    "memory-backend-memfd,id=mem,size=256M,share=on -numa node,memdev=mem";

static int set_mem_table(vhost_port *v, const ls_vhost_msg *m) {
  ls_vhost_mem nm;
  memset(&nm, 0, sizeof(nm));
  for (uint32_t i = 0; i < m->u.mem.nregions; i++) {
    const ls_vhost_region_msg *g = &m->u.mem.regions[i];
    int fd = v->fds[i];
    if (uva_shared(v->peer_pid, g->uva) == 0) {
      unmap_table(&nm);
      fatal(v, -EACCES, LS_REASON_PEER,
            "guest memory region %u (%" PRIu64 " MiB at guest address 0x%" PRIx64
            ") is private to QEMU, so the guest's frames would never reach us: %s",
            i, g->size >> 20, g->gpa, share_hint);
      return -EACCES;
    }
    uint64_t len = g->mmap_offset + g->size;
    struct stat st;
    if (fstat(fd, &st) == 0 && st.st_blksize > 4096) { /* hugetlbfs: whole huge pages */
      uint64_t a = (uint64_t)st.st_blksize;
      len = (len + a - 1) / a * a;
    }
    void *map = len > SIZE_MAX ? MAP_FAILED
                               : mmap(NULL, (size_t)len, PROT_READ | PROT_WRITE,
                                      MAP_SHARED | MAP_NORESERVE, fd, 0);
    if (map == MAP_FAILED) {
      int e = errno;
      unmap_table(&nm);
      fatal(v, -e, LS_REASON_PEER,
            "cannot map guest memory region %u (%" PRIu64 " MiB) shared: %s; %s", i, g->size >> 20,
            strerror(e), share_hint);
      return -e;
    }
    nm.r[i] = (ls_vhost_region){.gpa = g->gpa,
                                .uva = g->uva,
                                .size = g->size,
                                .host = (uint8_t *)map + g->mmap_offset,
                                .map = map,
                                .map_len = (size_t)len};
    nm.n = i + 1;
  }
  for (unsigned i = 0; i < v->nfds; i++) close_fd(&v->fds[i]); /* the maps stay */
  unmap_table(&v->mem);
  v->mem = nm;
  for (int i = 0; i < LS_VHOST_NQUEUES; i++) {
    vq *q = &v->q[i];
    if (translate_ring(v, q) < 0) {
      fatal(v, -EFAULT, LS_REASON_PEER, "ring %d is outside the new guest memory table", i);
      return -EFAULT;
    }
  }
  return 0;
}

/* Apply a validated message. 0, or -errno with the connection already closed (closed
 * tells which) or to be refused with a NACK. */
static int handle(vhost_port *v, const ls_vhost_msg *m, bool *closed) {
  const char *name = ls_vhost_request_name(m->request);
  *closed = false;
  vq *q;
  int r;
  switch (m->request) {
  case LS_VHOST_GET_FEATURES:
    return reply_u64(v, m->request, LS_VHOST_FEATURES);
  case LS_VHOST_SET_FEATURES:
    if (m->u.u64 & ~(uint64_t)LS_VHOST_FEATURES) {
      fatal(v, -ENOTSUP, LS_REASON_PEER,
            "SET_FEATURES 0x%" PRIx64 " asks for features we did not offer (0x%" PRIx64 ")",
            m->u.u64, (uint64_t)LS_VHOST_FEATURES);
      *closed = true;
      return -ENOTSUP;
    }
    v->features = m->u.u64;
    v->hdr_len = ls_vhost_net_hdr_len(v->features);
    v->mrg = (v->features & LS_BIT(LS_VIRTIO_NET_F_MRG_RXBUF)) != 0;
    v->event_idx = (v->features & LS_BIT(LS_VIRTIO_RING_F_EVENT_IDX)) != 0;
    return 0;
  case LS_VHOST_GET_PROTOCOL_FEATURES:
    return reply_u64(v, m->request, LS_VHOST_PROTOCOL_FEATURES);
  case LS_VHOST_SET_PROTOCOL_FEATURES:
    if (m->u.u64 & ~(uint64_t)LS_VHOST_PROTOCOL_FEATURES) {
      fatal(v, -ENOTSUP, LS_REASON_PEER,
            "SET_PROTOCOL_FEATURES 0x%" PRIx64 " asks for protocol features we did not offer",
            m->u.u64);
      *closed = true;
      return -ENOTSUP;
    }
    v->proto_features = m->u.u64;
    return 0;
  case LS_VHOST_GET_QUEUE_NUM:
    return reply_u64(v, m->request, 1);
  case LS_VHOST_SET_OWNER:
    return 0;
  case LS_VHOST_RESET_OWNER:
  case LS_VHOST_RESET_DEVICE:
    device_reset(v);
    update_link(v, LS_REASON_HANGUP);
    return 0;
  case LS_VHOST_SET_MEM_TABLE:
    r = set_mem_table(v, m);
    if (r < 0) {
      *closed = true;
      return r;
    }
    update_link(v, LS_REASON_HANGUP);
    return 0;
  case LS_VHOST_SET_VRING_NUM:
    q = &v->q[m->u.state.index];
    q->num = m->u.state.num;
    goto retranslate;
  case LS_VHOST_SET_VRING_ADDR:
    q = &v->q[m->u.addr.index];
    q->has_addr = true;
    q->desc_uva = m->u.addr.desc;
    q->avail_uva = m->u.addr.avail;
    q->used_uva = m->u.addr.used;
  retranslate:
    if (translate_ring(v, q) < 0) {
      fatal(v, -EFAULT, LS_REASON_PEER,
            "ring %d (%u entries at 0x%" PRIx64 "/0x%" PRIx64 "/0x%" PRIx64
            ") lies outside the guest memory table",
            (int)(q - v->q), q->num, q->desc_uva, q->avail_uva, q->used_uva);
      *closed = true;
      return -EFAULT;
    }
    update_link(v, LS_REASON_HANGUP);
    return 0;
  case LS_VHOST_SET_VRING_BASE:
    q = &v->q[m->u.state.index];
    q->last_avail = q->last_used = (uint16_t)m->u.state.num;
    return 0;
  case LS_VHOST_GET_VRING_BASE: {
    q = &v->q[m->u.state.index];
    /* stop the ring: no more kicks, nothing of it is held (we never keep descriptors) */
    q->started = false;
    q->polled = q->waiting = false;
    vh_poll_close(q->kick);
    q->kick = NULL;
    update_link(v, LS_REASON_HANGUP);
    uint32_t st[2] = {m->u.state.index, q->last_avail};
    return send_reply(v, m->request, st, sizeof(st));
  }
  case LS_VHOST_SET_VRING_KICK: {
    q = &v->q[m->u.u64 & LS_VHOST_VRING_IDX_MASK];
    vh_poll_close(q->kick);
    q->kick = NULL;
    q->polled = false;
    if (m->u.u64 & LS_VHOST_VRING_NOFD) {
      q->polled = true;
    } else {
      int fd = v->fds[0];
      fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
      q->kick = vh_poll_open(v, fd, H_KICK, (int)(q - v->q));
      if (!q->kick) {
        fatal(v, -ENOMEM, LS_REASON_ERROR, "cannot poll the kick eventfd of ring %d",
              (int)(q - v->q));
        *closed = true;
        return -ENOMEM;
      }
      v->fds[0] = -1;
    }
    q->started = true;
    if (!(v->features & LS_BIT(LS_VHOST_USER_F_PROTOCOL_FEATURES))) q->enabled = true;
    update_link(v, LS_REASON_HANGUP);
    return 0;
  }
  case LS_VHOST_SET_VRING_CALL:
  case LS_VHOST_SET_VRING_ERR: {
    q = &v->q[m->u.u64 & LS_VHOST_VRING_IDX_MASK];
    int *slot = m->request == LS_VHOST_SET_VRING_CALL ? &q->call_fd : &q->err_fd;
    close_fd(slot);
    if (!(m->u.u64 & LS_VHOST_VRING_NOFD)) {
      *slot = v->fds[0];
      v->fds[0] = -1;
    }
    return 0;
  }
  case LS_VHOST_SET_VRING_ENABLE:
    q = &v->q[m->u.state.index];
    q->enabled = m->u.state.num != 0;
    update_link(v, LS_REASON_HANGUP);
    return 0;
  case LS_VHOST_SEND_RARP:
  case LS_VHOST_NET_SET_MTU:
  case LS_VHOST_SET_BACKEND_REQ_FD:
    return 0; /* not negotiated; harmless (its fd, if any, is closed) */
  default:
    if (ls_vhost_has_reply(m->request) || (m->flags & LS_VHOST_F_NEED_REPLY)) {
      char num[24];
      snprintf(num, sizeof(num), "request %u", m->request);
      fatal(v, -ENOTSUP, LS_REASON_PEER, "%s is not supported and QEMU waits for its reply",
            name ? name : num);
      *closed = true;
      return -ENOTSUP;
    }
    v->bad_messages++;
    vh_log(v, "ignoring %s%s (not supported)", name ? "" : "unknown request ", name ? name : "");
    return 0;
  }
}

static void release_msg_fds(vhost_port *v) {
  for (unsigned i = 0; i < v->nfds; i++) close_fd(&v->fds[i]);
  v->nfds = 0;
  v->fd_overflow = false;
}

/* A complete message is in v->msg. False: the connection was closed. */
static bool dispatch_msg(vhost_port *v) {
  ls_vhost_msg m;
  uint32_t len = v->have;
  int r = ls_vhost_msg_parse(v->msg, len, v->nfds, &m);
  if (r < 0 || v->fd_overflow) {
    const char *name = ls_vhost_request_name(m.request);
    uint32_t nreg = 0;
    if (len >= LS_VHOST_HDR_SIZE + 4) memcpy(&nreg, v->msg + LS_VHOST_HDR_SIZE, 4);
    bool no_fds = m.request == LS_VHOST_SET_MEM_TABLE && (nreg == 0 || v->nfds < nreg);
    unsigned nfds = v->nfds;
    v->base.st.drops.bad_request++;
    release_msg_fds(v);
    if (no_fds)
      fatal(v, -EACCES, LS_REASON_PEER,
            "QEMU sent the guest memory table without a file descriptor for each region "
            "(the guest's RAM cannot be shared): %s",
            share_hint);
    else
      fatal(v, -EPROTO, LS_REASON_PEER, "malformed %s%s (%u bytes, %u fds)",
            name ? name : "message ", name ? "" : "of unknown type", len, nfds);
    return false;
  }
  if (v->debug)
    vh_log(v, "<- %s flags 0x%x size %u fds %u u64 0x%" PRIx64, ls_vhost_request_name(m.request),
           m.flags, m.size, v->nfds, m.u.u64);
  bool closed;
  r = handle(v, &m, &closed);
  release_msg_fds(v);
  if (closed || !v->conn) return false;
  if (r == -EIO) {
    fatal(v, -EIO, LS_REASON_PEER, "cannot send the reply to %s", ls_vhost_request_name(m.request));
    return false;
  }
  if ((m.flags & LS_VHOST_F_NEED_REPLY) && !ls_vhost_has_reply(m.request) &&
      (v->proto_features & LS_BIT(LS_VHOST_PROTO_F_REPLY_ACK))) {
    if (reply_u64(v, m.request, r < 0 ? 1 : 0) < 0) {
      fatal(v, -EIO, LS_REASON_PEER, "cannot acknowledge %s", ls_vhost_request_name(m.request));
      return false;
    }
  }
  return true;
}

/* Read messages until the socket is drained (bounded per wake-up). */
static void conn_read(vhost_port *v) {
  for (int msgs = 0; v->conn && msgs < MSGS_PER_WAKEUP;) {
    if (v->have < LS_VHOST_HDR_SIZE) v->need = LS_VHOST_HDR_SIZE;
    struct iovec iov = {v->msg + v->have, v->need - v->have};
    union {
      char buf[CMSG_SPACE(sizeof(int) * LS_VHOST_MAX_FDS)];
      struct cmsghdr align;
    } cm;
    struct msghdr mh;
    memset(&mh, 0, sizeof(mh));
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = cm.buf;
    mh.msg_controllen = sizeof(cm.buf);
    ssize_t n = recvmsg(v->conn->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); n > 0 && c; c = CMSG_NXTHDR(&mh, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      unsigned k = (unsigned)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
      for (unsigned i = 0; i < k; i++) {
        int fd;
        memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        if (v->nfds < LS_VHOST_MAX_FDS)
          v->fds[v->nfds++] = fd;
        else {
          close(fd);
          v->fd_overflow = true;
        }
      }
    }
    if (n > 0 && (mh.msg_flags & MSG_CTRUNC)) v->fd_overflow = true;
    if (n <= 0) {
      if (v->have || v->nfds) vh_log(v, "QEMU hung up in the middle of a message");
      conn_close(v, LS_REASON_HANGUP);
      return;
    }
    v->have += (uint32_t)n;
    if (v->have == LS_VHOST_HDR_SIZE) {
      uint32_t req, flags, size;
      int r = ls_vhost_hdr_parse(v->msg, &req, &flags, &size);
      if (r < 0) {
        v->base.st.drops.bad_request++;
        release_msg_fds(v);
        fatal(v, -EPROTO, LS_REASON_PEER,
              r == -EMSGSIZE ? "a message of %u bytes, larger than any vhost-user message"
                             : "not a vhost-user request (flags 0x%x)",
              r == -EMSGSIZE ? size : flags);
        return;
      }
      v->need = LS_VHOST_HDR_SIZE + size;
    }
    if (v->have == v->need) {
      msgs++;
      if (!dispatch_msg(v)) return;
      v->have = 0;
    }
  }
  /* budget spent with the socket still readable: level-triggered poll calls again */
}

static void on_conn_poll(uv_poll_t *h, int status, int events) {
  vh_poll *vp = (vh_poll *)h;
  vhost_port *v = vp->v;
  ls_runtime *rt = v->base.rt;
  (void)events;
  ls_rt_tick(rt);
  if (status < 0)
    conn_close(v, LS_REASON_HANGUP);
  else
    conn_read(v);
  ls_rt_flush(rt);
}

/* ---- connections ---------------------------------------------------------------------------- */

static void listen_accepting(vhost_port *v, bool on) {
  if (v->client || v->lfd < 0 || v->base.closing || v->lpoll_on == on) return;
  if (on)
    uv_poll_start(&v->lpoll, UV_READABLE, on_listen);
  else
    uv_poll_stop(&v->lpoll);
  v->lpoll_on = on;
}

static void retry_later(vhost_port *v) {
  if (v->base.closing) return;
  uv_timer_start(&v->retry_timer, on_retry, v->retry_ms, 0);
  v->retry_ms = v->retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : v->retry_ms * 2;
}

static void conn_start(vhost_port *v, int fd) {
  v->conn = vh_poll_open(v, fd, H_CONN, 0);
  if (!v->conn) {
    close(fd);
    if (v->client) retry_later(v);
    return;
  }
  struct ucred cr;
  socklen_t cl = sizeof(cr);
  v->peer_pid = getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) == 0 ? cr.pid : 0;
  if (v->peer_pid > 0)
    snprintf(v->peer_text, sizeof(v->peer_text), "pid %d", (int)v->peer_pid);
  else
    v->peer_text[0] = '\0';
  v->have = 0;
  v->nfds = 0;
  v->chain_error_reported = false;
  v->retry_ms = RETRY_MIN_MS;
  device_reset(v);
  listen_accepting(v, false); /* one front-end at a time */
  vh_poll_set(v->conn, UV_READABLE);
}

/* The connection is over: release everything it gave us, down, wait for the next. */
static void conn_close(vhost_port *v, int reason) {
  if (!v->conn) return;
  release_msg_fds(v);
  device_reset(v);
  vh_poll_close(v->conn);
  v->conn = NULL;
  v->have = 0;
  v->peer_pid = 0;
  v->peer_text[0] = '\0';
  if (v->poll_timer_on) uv_timer_stop(&v->poll_timer);
  v->poll_timer_on = false;
  ls_port_set_link(&v->base, false, reason);
  if (v->base.closing) return;
  if (v->client)
    retry_later(v);
  else
    listen_accepting(v, true);
}

static void try_connect(vhost_port *v) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    retry_later(v);
    return;
  }
  if (connect(fd, (struct sockaddr *)&v->sun, v->sun_len) < 0) {
    close(fd); /* not listening yet (ENOENT, ECONNREFUSED) or its backlog is full (EAGAIN) */
    retry_later(v);
    return;
  }
  conn_start(v, fd);
}

static void on_retry(uv_timer_t *t) {
  vhost_port *v = t->data;
  ls_rt_tick(v->base.rt);
  if (v->base.closing || v->conn) return;
  try_connect(v);
  ls_rt_flush(v->base.rt);
}

static void on_listen(uv_poll_t *h, int status, int events) {
  vhost_port *v = h->data;
  (void)events;
  ls_rt_tick(v->base.rt);
  if (status < 0 || v->conn) return;
  int fd = accept4(v->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd >= 0) conn_start(v, fd);
  ls_rt_flush(v->base.rt);
}

/* ---- lifecycle ------------------------------------------------------------------------------ */

static int vhost_attach(ls_port *p) {
  vhost_port *v = V(p);
  uv_loop_t *loop = &p->rt->loop;
  if (!v->client) {
    int r = uv_poll_init(loop, &v->lpoll, v->lfd);
    if (r) return r; /* nothing is registered on the loop yet */
    v->lpoll.data = v;
    v->open_handles++;
  }
  uv_timer_init(loop, &v->retry_timer);
  v->retry_timer.data = v;
  uv_timer_init(loop, &v->poll_timer);
  v->poll_timer.data = v;
  v->open_handles += 2;
  v->retry_ms = RETRY_MIN_MS;
  if (!v->client)
    listen_accepting(v, true);
  else
    try_connect(v);
  return 0;
}

static void close_listener(vhost_port *v) {
  close_fd(&v->lfd);
  if (v->unlink_path) {
    unlink(v->sun.sun_path);
    v->unlink_path = false;
  }
}

static void vhost_detach(ls_port *p) {
  vhost_port *v = V(p);
  release_msg_fds(v);
  device_reset(v);
  if (v->conn) vh_poll_close(v->conn);
  v->conn = NULL;
  v->detached = true;
  v->open_handles++; /* held while closing the fixed handles below */
  uv_close((uv_handle_t *)&v->retry_timer, on_handle_closed);
  uv_close((uv_handle_t *)&v->poll_timer, on_handle_closed);
  if (!v->client) uv_close((uv_handle_t *)&v->lpoll, on_handle_closed);
  close_listener(v);
  if (--v->open_handles == 0) ls_port_release(p);
}

static void vhost_destroy(ls_port *p) {
  vhost_port *v = V(p);
  close_listener(v);
  free(v);
}

static void vhost_describe(ls_port *p, ls_port_info *o) {
  vhost_port *v = V(p);
  snprintf(o->path, sizeof(o->path), "%s", v->path);
  snprintf(o->peer, sizeof(o->peer), "%s", v->peer_text);
  o->role = v->client ? "connect" : "listen";
  o->offloads = false;
  snprintf(o->error, sizeof(o->error), "%s", v->last_error);
}

static const ls_port_ops vhost_ops = {
    .kind = "vhost-user",
    .attach = vhost_attach,
    .flush = vhost_flush,
    .update = vhost_update,
    .detach = vhost_detach,
    .destroy = vhost_destroy,
    .describe = vhost_describe,
    .resume = vhost_resume,
};

/* Bind, replacing a stale socket file (nobody listening) but never a live one. */
static int bind_path(int fd, const struct sockaddr_un *sun, socklen_t len) {
  if (bind(fd, (const struct sockaddr *)sun, len) == 0) return 0;
  int e = errno;
  struct stat st;
  if (e != EADDRINUSE || lstat(sun->sun_path, &st) < 0 || !S_ISSOCK(st.st_mode)) return -e;
  int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (probe < 0) return -e;
  int c = connect(probe, (const struct sockaddr *)sun, len);
  int ce = errno;
  close(probe);
  if (c == 0 || ce != ECONNREFUSED) return -EADDRINUSE;
  if (unlink(sun->sun_path) < 0) return -e;
  return bind(fd, (const struct sockaddr *)sun, len) == 0 ? 0 : -errno;
}

ls_port *ls_port_vhost_new(ls_runtime *rt, const ls_port_config *cfg, const ls_vhost_options *o,
                           int *err, char *where, size_t wlen) {
  if (!o->path || !o->path[0] || strlen(o->path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
    *err = o->path && o->path[0] ? -ENAMETOOLONG : -EINVAL;
    snprintf(where, wlen, "path");
    return NULL;
  }
  vhost_port *v = calloc(1, sizeof(*v));
  if (!v) {
    *err = -ENOMEM;
    return NULL;
  }
  v->lfd = -1;
  v->client = o->client;
  v->debug = getenv("LUASWITCH_VHOST_DEBUG") != NULL;
  for (int i = 0; i < LS_VHOST_NQUEUES; i++) v->q[i].call_fd = v->q[i].err_fd = -1;
  for (int i = 0; i < LS_VHOST_MAX_FDS; i++) v->fds[i] = -1;
  v->hdr_len = 10;
  snprintf(v->path, sizeof(v->path), "%s", o->path);
  v->sun.sun_family = AF_UNIX;
  memcpy(v->sun.sun_path, o->path, strlen(o->path) + 1);
  v->sun_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(o->path) + 1);
  int r = ls_port_init(&v->base, &vhost_ops, rt, cfg);
  if (r) {
    free(v);
    *err = r;
    return NULL;
  }
  if (!v->client) {
    v->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (v->lfd < 0) {
      r = -errno;
      snprintf(where, wlen, "socket");
      goto fail;
    }
    if ((r = bind_path(v->lfd, &v->sun, v->sun_len)) < 0) {
      snprintf(where, wlen, "bind %s", v->path);
      goto fail;
    }
    v->unlink_path = true;
    if (listen(v->lfd, 1) < 0) {
      r = -errno;
      snprintf(where, wlen, "listen %s", v->path);
      goto fail;
    }
  }
  return &v->base;
fail:
  ls_port_fini(&v->base);
  vhost_destroy(&v->base);
  *err = r;
  return NULL;
}
