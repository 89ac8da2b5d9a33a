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
 * so a peer that stops reading costs the others at most that long, once. Progress is
 * frames sent, or the peer draining its socket (ops->backlog): a stalled port that makes
 * progress again is alive after all (a slow or starved peer) and holds inputs again.
 *
 * State: admin (port:up()/down()) and link (the peer is there). Frames flow only when
 * both are up. Every change raises one LS_EV_PORT event; going down flushes the port's
 * learned MAC entries and discards its queue (counted as tx_down).
 */
#ifndef LS_PORT_H
#define LS_PORT_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "buf.h"
#include "common.h"
#include "fdb.h"
#include "filter.h"
#include "impair.h"
#include "stp.h"
#include "runtime.h"

#define LS_TXQLEN_DEFAULT 1024
#define LS_TXQLEN_MAX 65536
#define LS_STALL_NS (40ULL * 1000 * 1000) /* no progress for this long: stop holding inputs */
#define LS_LEARN_LIMIT_DEFAULT 1000       /* new source MACs a port may bring per second */
#define LS_LEARN_BURST_DEFAULT 10000      /* ... and at once */
#define LS_LEARN_LIMIT_MAX 10000000
#define LS_FED_MAX 8 /* congested outputs one input batch can wait on */

enum { LS_DIR_IN = 0, LS_DIR_OUT = 1 };

typedef struct ls_port_drops {
  /* receive side: a frame from the peer that went nowhere */
  uint64_t runt;       /* shorter than an Ethernet header */
  uint64_t oversize;   /* payload above the port's MTU, or larger than any buffer */
  uint64_t down;       /* arrived while the port was admin down */
  uint64_t no_dest;    /* nowhere to send it (destination on the same port, or no other port) */
  uint64_t link_local; /* 01:80:C2:00:00:0X (STP, LACP, LLDP, 802.1X) without wire mode */
  uint64_t vlan;       /* VLAN-aware: not allowed on this port (tag, VLAN, no native VLAN) */
  uint64_t locked;     /* locked port: source MAC not in the table on this port */
  uint64_t filter;     /* an ingress rule dropped it */
  uint64_t police;     /* an ingress policer dropped it */
  uint64_t punted;     /* handed to Lua by a punt rule (not forwarded) */
  uint64_t punt_limit; /* a punt rule over its rate */
  uint64_t stp;        /* STP: the port is not forwarding (blocking, listening, learning) */
  uint64_t no_buffer;  /* out of memory while forwarding it (editing a tag, for instance) */
  uint64_t admission;  /* admission on, default "drop": source MAC not yet approved */
  uint64_t refused;    /* source MAC refused by the admission policy */
  uint64_t impair;   /* the receive impairment dropped it (loss, bound, MTU), or the link is cut */
  uint64_t bad_peer; /* datagram from an address that is not this port's peer (not a frame) */
  uint64_t rx_error; /* receive errors */
  uint64_t framing;  /* stream: a length out of range (the connection was closed) */
  uint64_t encap;    /* vxlan: short datagram, bad flags or reserved bits, other VNI */
  /* connections to a listening port (vde) that were closed without becoming its peer */
  uint64_t bad_request; /* did not speak the protocol (bad magic/version, short, late) */
  uint64_t busy;        /* arrived while the port already had its one client */
  /* transmit side: a frame queued to this port that did not reach the peer */
  uint64_t tx_filter;    /* an egress rule dropped it (drop, police, punt) */
  uint64_t tx_impair;    /* the send impairment dropped it (loss, queue bound, MTU clamp) */
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
  uint64_t injected;            /* frames Lua injected as if received (port:inject) */
  uint64_t sent;                /* frames Lua queued for the peer (port:send) */
  uint64_t rx_duplicated;       /* extra copies a receive impairment made */
  uint64_t tx_duplicated;       /* extra copies a send impairment made */
  uint64_t learn_refused;       /* source MACs not learned: table or port cap full, or refused */
  uint64_t rx_bpdu;             /* STP BPDUs taken by the switch's STP (not forwarded) */
  uint64_t hangups;             /* times the peer went away */
  uint64_t learn_holds;         /* times its input was held for going over learn_limit */
  uint64_t stalls;              /* times it was declared stalled (no progress for LS_STALL_NS) */
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
  /* data plane (optional): bytes sent that the peer has not taken yet (ls_fd_backlog), or
   * UINT64_MAX when unknown. The stall watchdog counts a shrinking backlog as progress: a
   * slow reader frees socket space long before the kernel reports the socket writable. */
  uint64_t (*backlog)(ls_port *p);
  /* data plane (required of a kind that holds received work in user space): go on reading
   * it, as a read callback would; called from the loop after ls_rt_rx_ready(), only while
   * the port is attached and not paused. Like a read, it lists the port again if it ends
   * with work left. */
  void (*resume)(ls_port *p);
} ls_port_ops;

enum ls_vlan_mode { LS_VLAN_ACCESS = 0, LS_VLAN_TRUNK = 1 };

/* VLAN membership, used when the switch is VLAN-aware. */
typedef struct ls_port_vlan {
  uint8_t mode;         /* access or trunk */
  uint16_t pvid;        /* access: the port's VLAN; trunk: the native VLAN (0: none) */
  bool native_tagged;   /* trunk: send the native VLAN tagged too */
  uint64_t allowed[64]; /* trunk: VLANs carried (bit per VLAN id) */
} ls_port_vlan;

static inline bool ls_vlan_bit(const uint64_t *set, uint16_t vid) {
  return (set[vid >> 6] >> (vid & 63)) & 1;
}

typedef struct ls_port_config {
  char name[LS_NAME_MAX];
  uint32_t mtu;
  uint32_t txqlen;
  bool up; /* admin state at creation */
  /* flags, as the Linux bridge names them */
  bool learning;        /* learn source MACs (default on) */
  bool flood;           /* receive unknown unicast (default on) */
  bool mcast_flood;     /* receive flooded multicast (default on) */
  bool bcast_flood;     /* receive broadcast (default on) */
  bool isolated;        /* reach only non-isolated ports */
  bool hairpin;         /* may send a frame back out the port it came in on */
  bool locked;          /* pass only frames from MACs already in the table on this port */
  uint8_t admission;    /* new source MACs wait for Lua's approval: LS_ADMIT_* */
  uint32_t max_macs;    /* cap on the MACs learned on this port, 0: none */
  uint32_t learn_limit; /* source MACs new to the port (learned, moved or refused) it may bring
                           per second, learn_burst at once; beyond, its input is held until
                           the budget refills. 0: none */
  uint32_t learn_burst;
  uint32_t stp_cost;    /* STP path cost (default 100) */
  uint8_t stp_priority; /* STP port priority, a multiple of 16 (default 128) */
  bool stp_edge;        /* STP edge port: forwards at once, never a topology change */
} ls_port_config;

enum ls_admission { LS_ADMIT_OFF = 0, LS_ADMIT_FLOOD = 1, LS_ADMIT_DROP = 2 };

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
  uint64_t backlog_seen; /* ops->backlog at the watchdog's last look (UINT64_MAX: none) */
  uint32_t hiwat, lowat;
  ls_port **waiters; /* inputs paused on this port */
  uint32_t nwaiters, waiters_cap;
  ls_port *cong_next; /* runtime's list of congested ports */
  ls_port_vlan vlan;
  ls_ruleset *rules[2]; /* LS_DIR_IN, LS_DIR_OUT */
  ls_impair *imp[2];    /* LS_DIR_IN, LS_DIR_OUT; NULL when off */
  bool imp_down;        /* impairment: the link is cut */
  uint8_t stp_state;    /* LS_STP_*: forwarding (0) unless the switch runs STP */
  ls_stp_port stp;
  ls_port *imp_next; /* runtime's list of ports with frames on a delay line */
  bool imp_listed;
  /* mirroring: copies of what this port receives / sends go to these ports */
  ls_port *mirror_in, *mirror_out;
  uint32_t mirror_refs; /* ports mirrored into this one: it then carries nothing else */
  /* backpressure, as an input */
  uint32_t blocked;         /* congested outputs this port waits for; reads only at 0 */
  ls_port *fed[LS_FED_MAX]; /* congested outputs the current batch fed */
  uint32_t nfed;
  /* learn_limit: a token bucket of new source MACs, in 1e-9 tokens (refilled at
   * learn_limit per ns, up to learn_burst tokens); below zero after a batch, the input is
   * held (one more `blocked`) until learn_until, on the runtime's learn_held list */
  int64_t learn_tokens;
  uint64_t learn_last, learn_until;
  bool learn_held;
  ls_port *learn_next;
  /* received work held in user space: on the runtime's rx_ready list (ls_rt_rx_ready) */
  bool rx_listed;
  ls_port *rx_next;
};

#define LS_NETNS_NAME_MAX 256
#define LS_IFNAME_MAX 16

typedef struct ls_port_info {
  uint32_t id;
  ls_port_config cfg;
  bool admin_up, link_up; /* link_up is false while an impairment cuts the link */
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
  uint32_t macs, static_macs;           /* entries in the switch's table on this port */
  uint8_t stp_state, stp_role;          /* with STP on the switch */
  int fd;
  char error[400]; /* why the kind's peer was refused, in words (vhost-user), else "" */
} ls_port_info;

/* The defaults: every flag as the Linux bridge sets it (learning and flooding on). */
static inline void ls_port_config_defaults(ls_port_config *c) {
  memset(c, 0, sizeof(*c));
  c->mtu = 1500;
  c->txqlen = LS_TXQLEN_DEFAULT;
  c->learn_limit = LS_LEARN_LIMIT_DEFAULT;
  c->learn_burst = LS_LEARN_BURST_DEFAULT;
  c->up = true;
  c->learning = c->flood = c->mcast_flood = c->bcast_flood = true;
  c->stp_cost = 100;
  c->stp_priority = 128;
}

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

/* A frame from p brought a source MAC new to p (learned, moved, or refused for room):
 * take a token from its learn_limit bucket (ls_port_batch_done holds the port once the
 * bucket is below zero). */
static inline void ls_port_learn_charge(ls_port *p, uint64_t mono) {
  int64_t rate = p->cfg.learn_limit;
  if (!rate) return;
  uint64_t el = mono - p->learn_last;
  int64_t cap = (int64_t)p->cfg.learn_burst * (int64_t)LS_NSEC;
  p->learn_last = mono;
  if (el >= LS_NSEC * (uint64_t)p->cfg.learn_burst / (uint64_t)rate)
    p->learn_tokens = cap;
  else if ((p->learn_tokens += (int64_t)el * rate) > cap)
    p->learn_tokens = cap;
  p->learn_tokens -= (int64_t)LS_NSEC;
}

static inline bool ls_port_forwarding(const ls_port *p) {
  return p->admin_up && p->link_up && !p->imp_down;
}
/* Does normal forwarding (unicast, flooding) use this port? Not a mirror destination. */
static inline bool ls_port_in_service(const ls_port *p) {
  return ls_port_forwarding(p) && p->mirror_refs == 0;
}

/* Queue a frame for transmission (takes a new reference). payload = bytes after the
 * Ethernet header and tags, for the egress MTU check. Goes through the port's egress
 * impairment, if any. Returns false if dropped. */
bool ls_port_enqueue(ls_port *p, ls_buf *b, uint32_t payload);
/* Control plane: replace the rule set of a direction (NULL: none); the old one is freed. */
int ls_port_set_rules(ls_port *p, int dir, ls_ruleset *rs);
/* Control plane: a copy of a direction's rules with their counters (*out malloc'd, each
 * match string strdup'd: free with ls_port_rules_free). *mirror_ids: the mirror port of
 * each rule (0: none or closed). */
int ls_port_rules_get(ls_port *p, int dir, ls_rule **out, uint32_t **mirror_ids, uint32_t *n);
void ls_port_rules_free(ls_rule *rules, uint32_t *mirror_ids, uint32_t n);
/* Control plane: set (or, with an inactive config or NULL, clear) direction dir's
 * impairment; frames waiting on the old one are released at once. dir -1 leaves both
 * directions alone. With set_down, down cuts (true) or restores (false) the link. */
int ls_port_impair_set(ls_port *p, int dir, const ls_impair_cfg *c, bool set_down, bool down);
typedef struct ls_port_impair_info {
  bool on[2]; /* LS_DIR_IN, LS_DIR_OUT */
  ls_impair_cfg cfg[2];
  ls_impair_stats st[2];
  uint32_t waiting[2];
  bool down;
} ls_port_impair_info;
int ls_port_impair_get(ls_port *p, ls_port_impair_info *out);
/* Control plane: VLAN membership (validated by the caller). */
int ls_port_set_vlan(ls_port *p, const ls_port_vlan *v);
int ls_port_vlan_get(ls_port *p, ls_port_vlan *out);
/* Control plane: a frame as if received from the peer (inject) or to send to it (send). */
int ls_port_inject(ls_port *p, const uint8_t *frame, uint32_t len);
int ls_port_send(ls_port *p, const uint8_t *frame, uint32_t len);
/* Data plane: release due frames of every impaired port; returns the next due time. */
uint64_t ls_port_impair_tick(ls_runtime *rt);
/* Data plane: a received frame (caller keeps its reference) through in's ingress
 * impairment; emit forwards what comes out. */
void ls_port_impair_in(ls_port *in, ls_buf *b, uint32_t payload);
/* Forwarding from `in` queued a frame on `out`: remember it if out is congested. */
static inline void ls_port_fed(ls_port *in, ls_port *out) {
  if (LS_LIKELY(!out->congested) || out->stalled) return;
  for (uint32_t i = 0; i < in->nfed; i++)
    if (in->fed[i] == out) return;
  if (in->nfed < LS_FED_MAX) in->fed[in->nfed++] = out;
}
/* End of an input batch (after the flush): wait on the outputs that are still congested,
 * and hold the port while it is over its learn_limit. Returns true when the port must stop
 * reading for now: paused, or its time slice (rt->rx_slice_ns) is spent. A kind that then
 * holds received work in user space lists the port with ls_rt_rx_ready (runtime.h). */
bool ls_port_batch_done(ls_port *in);
/* The kind sent the first n frames of the queue: count them, release them, note the
 * progress. */
void ls_port_txq_sent(ls_port *p, uint32_t n);
/* The first n frames of the queue could not be sent: count them in *counter (one of
 * p->st.drops), release them. */
void ls_port_txq_drop(ls_port *p, uint32_t n, uint64_t *counter);
/* Data plane: the watchdog's look at a congested port every 10 ms. Progress is frames
 * sent (ls_port_txq_sent) or the peer draining the socket (ops->backlog shrank); none for
 * LS_STALL_NS stalls the port, and any ends a stall. */
void ls_port_watch(ls_port *p);

/* Bytes written to socket fd that its peer has not read yet (SIOCOUTQ), or UINT64_MAX. */
uint64_t ls_fd_backlog(int fd);
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
