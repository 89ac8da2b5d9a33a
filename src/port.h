/*
 * port.h — what every port kind has in common: identity, admin and link state, the
 * bounded transmit queue, counters, and the small vtable a kind implements.
 *
 * Owns: ls_port and its lifecycle. A kind (port_dgram.c, ...) allocates a struct that
 * starts with ls_port, opens its sockets on the control thread (so failures such as
 * "address in use" are reported before anything changes), and hands it to
 * ls_port_attach(), which runs on the data-plane thread and calls ops->attach to start
 * I/O. From then on only the data-plane thread touches the port.
 *
 * Transmit path: forwarding puts a reference to the frame on the port's queue
 * (ls_port_enqueue); once per batch the runtime calls ops->flush, which sends as much
 * as the peer takes (sendmmsg) and leaves the rest queued, waiting for writability. A
 * frame is dropped only when the queue is at its bound (tx_full), so a burst is
 * delivered whole and a stalled peer only ever costs its own port frames.
 *
 * Backpressure: a queue above its high-water mark is "congested". An input port whose
 * batch fed a congested port stops reading until that port drains below its low-water
 * mark, so its frames wait in the kernel (pushing back on the sender, as a VM's
 * virtqueue does) instead of being dropped. A congested port that makes no progress for
 * LS_STALL_NS is "stalled": it stops holding inputs back and simply drops at its bound,
 * so a peer that stops reading costs the others at most that long, once.
 *
 * State: admin (port:up()/down()) and link (the peer is there). Frames flow only when
 * both are up. Every change raises one LS_EV_PORT event; going down flushes the port's
 * learned MAC entries and discards its queue (counted as tx_down).
 */
#ifndef LS_PORT_H
#define LS_PORT_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "common.h"
#include "fdb.h"
#include "runtime.h"

#define LS_TXQLEN_DEFAULT 1024
#define LS_TXQLEN_MAX 65536
#define LS_STALL_NS (40ULL * 1000 * 1000) /* no progress for this long: stop holding inputs */
#define LS_FED_MAX 8                      /* congested outputs one input batch can wait on */

typedef struct ls_port_drops {
  /* receive side: a frame from the peer that went nowhere */
  uint64_t runt;     /* shorter than an Ethernet header */
  uint64_t oversize; /* payload above the port's MTU, or larger than any buffer */
  uint64_t down;     /* arrived while the port was admin down */
  uint64_t no_dest;  /* nowhere to send it (destination on the same port, or no other port) */
  uint64_t bad_peer; /* datagram from an address that is not this port's peer (not a frame) */
  uint64_t rx_error; /* receive errors */
  uint64_t framing;  /* stream: a length out of range (the connection was closed) */
  uint64_t encap;    /* vxlan: short datagram, bad flags or reserved bits, other VNI */
  /* connections to a listening port (vde) that were closed without becoming its peer */
  uint64_t bad_request; /* did not speak the protocol (bad magic/version, short, late) */
  uint64_t busy;        /* arrived while the port already had its one client */
  /* transmit side: a frame queued to this port that did not reach the peer */
  uint64_t tx_full;      /* queue at its bound */
  uint64_t tx_mtu;       /* payload above this port's MTU */
  uint64_t tx_error;     /* the peer refused it (e.g. too big for its buffer) */
  uint64_t tx_down;      /* discarded because the port went down or closed */
  uint64_t no_remote;    /* vxlan: no remote VTEP to send it to */
  uint64_t capture_full; /* a capture port's file reached its max_size (pcap, no rotation) */
} ls_port_drops;

typedef struct ls_port_stats {
  uint64_t rx_frames, rx_bytes; /* frames received from the peer */
  uint64_t rx_forwarded;        /* ... that left for at least one port */
  uint64_t tx_queued;           /* frames forwarding gave this port */
  uint64_t tx_frames, tx_bytes; /* frames sent to the peer */
  uint64_t rx_control;          /* non-frame datagrams consumed (vfkit "VFKT") */
  uint64_t hangups;             /* times the peer went away */
  ls_port_drops drops;
} ls_port_stats;

struct ls_port_info;

typedef struct ls_port_ops {
  const char *kind;
  /* data plane: start I/O after the port joined its switch. 0 or -errno. */
  int (*attach)(ls_port *p);
  /* data plane: send queued frames. */
  void (*flush)(ls_port *p);
  /* data plane: re-evaluate I/O interest after a state change (admin, link, paused). */
  void (*update)(ls_port *p);
  /* data plane: stop I/O and close fds now; call ls_port_release(p) once no libuv handle
   * refers to the port any more. */
  void (*detach)(ls_port *p);
  /* any thread: free a port that was never attached (after its fds are closed). */
  void (*destroy)(ls_port *p);
  /* data plane: fill kind-specific description (optional). */
  void (*describe)(ls_port *p, struct ls_port_info *out);
} ls_port_ops;

typedef struct ls_port_config {
  char name[LS_NAME_MAX];
  uint32_t mtu;
  uint32_t txqlen;
  bool up; /* admin state at creation */
} ls_port_config;

struct ls_port {
  const ls_port_ops *ops;
  ls_runtime *rt;
  ls_switch *sw;
  uint32_t id;
  uint32_t index; /* position in sw->ports */
  ls_port_config cfg;
  uint8_t rx_cls; /* buffer class that fits mtu */
  bool offloads;  /* the peer takes frames with their virtio-net header (ls_buf.vnet) */
  bool admin_up;
  bool link_up;
  bool attached;
  bool closing;
  /* transmit queue: ring of frame references */
  ls_buf **txq;
  uint32_t txq_mask, txq_head, txq_len;
  bool dirty;
  ls_port *dirty_next;
  ls_fdb_owner owner;
  ls_port_stats st;
  /* backpressure, as an output */
  bool congested, stalled;
  uint64_t congested_since, last_progress;
  uint32_t hiwat, lowat;
  ls_port **waiters; /* inputs paused on this port */
  uint32_t nwaiters, waiters_cap;
  ls_port *cong_next; /* runtime's list of congested ports */
  /* mirroring: copies of what this port receives / sends go to these ports */
  ls_port *mirror_in, *mirror_out;
  uint32_t mirror_refs; /* ports mirrored into this one: it then carries nothing else */
  /* backpressure, as an input */
  uint32_t blocked;         /* congested outputs this port waits for; reads only at 0 */
  ls_port *fed[LS_FED_MAX]; /* congested outputs the current batch fed */
  uint32_t nfed;
};

#define LS_NETNS_NAME_MAX 256
#define LS_IFNAME_MAX 16

typedef struct ls_port_info {
  uint32_t id;
  ls_port_config cfg;
  bool admin_up, link_up;
  bool offloads;
  uint32_t txq_len;
  char path[128];
  char peer[128];
  char ifname[LS_IFNAME_MAX];
  char netns[LS_NETNS_NAME_MAX];
  const char *role;                     /* "listen" / "connect" for stream ports, else NULL */
  int64_t vni;                          /* vxlan ports, else -1 */
  uint32_t mirror_in_id, mirror_out_id; /* 0: none */
  bool mirror_dest;                     /* a mirror destination (out of normal service) */
  int fd;
} ls_port_info;

/* Control plane: initialise the common part (validated cfg). 0 or -ENOMEM. */
int ls_port_init(ls_port *p, const ls_port_ops *ops, ls_runtime *rt, const ls_port_config *cfg);
/* Free the common part (queue). */
void ls_port_fini(ls_port *p);

/* Control plane: add to a switch and start I/O. On failure the port is destroyed. */
int ls_port_add(ls_switch *sw, ls_port *p);
/* Control plane: stop I/O, remove from the switch, free. */
int ls_port_close(ls_port *p);
int ls_port_set_admin(ls_port *p, bool up);
int ls_port_configure(ls_port *p, const ls_port_config *cfg);
int ls_port_stats_get(ls_port *p, ls_port_stats *out);
int ls_port_info_get(ls_port *p, ls_port_info *out);
/* Control plane: mirror what p receives to in_to and what it sends to out_to (NULL: stop).
 * Both must be other attached ports of p's switch. */
int ls_port_set_mirror(ls_port *p, ls_port *in_to, ls_port *out_to);

/* ---- data plane ---------------------------------------------------------------------------- */

static inline bool ls_port_forwarding(const ls_port *p) {
  return p->admin_up && p->link_up;
}
/* Does normal forwarding (unicast, flooding) use this port? Not a mirror destination. */
static inline bool ls_port_in_service(const ls_port *p) {
  return ls_port_forwarding(p) && p->mirror_refs == 0;
}

/* Queue a frame for transmission (takes a new reference). payload = bytes after the
 * Ethernet header and tags, for the egress MTU check. Returns false if dropped. */
bool ls_port_enqueue(ls_port *p, ls_buf *b, uint32_t payload);
/* Forwarding from `in` queued a frame on `out`: remember it if out is congested. */
static inline void ls_port_fed(ls_port *in, ls_port *out) {
  if (LS_LIKELY(!out->congested) || out->stalled) return;
  for (uint32_t i = 0; i < in->nfed; i++)
    if (in->fed[i] == out) return;
  if (in->nfed < LS_FED_MAX) in->fed[in->nfed++] = out;
}
/* End of an input batch (after the flush): wait on the outputs that are still congested.
 * Returns true when the port must stop reading. */
bool ls_port_batch_done(ls_port *in);
/* The kind sent the first n frames of the queue: count them, release them, note the
 * progress. */
void ls_port_txq_sent(ls_port *p, uint32_t n);
/* The first n frames of the queue could not be sent: count them in *counter (one of
 * p->st.drops), release them. */
void ls_port_txq_drop(ls_port *p, uint32_t n, uint64_t *counter);
/* Data plane: the runtime's watchdog found p stalled. */
void ls_port_stall(ls_port *p);
/* Release the frames on the queue, counting them as tx_down. */
void ls_port_drain_queue(ls_port *p);
/* The link went up or down (peer appeared or hung up). Raises an event. */
void ls_port_set_link(ls_port *p, bool up, int reason);
/* Report an error as an event. */
void ls_port_error(ls_port *p, int err, int where);
/* Data plane: detach from the switch and close; used by close and switch close. */
void ls_port_close_dp(ls_port *p);
/* Data plane: the kind's handles are closed; free the port. */
void ls_port_release(ls_port *p);

#endif
