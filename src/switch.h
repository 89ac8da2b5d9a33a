/*
 * switch.h — a broadcast domain: its ports, its MAC table and the forwarding decision.
 *
 * Owns: ls_switch, and ls_switch_input(), the per-frame path every port kind calls:
 * parse -> admit (runt, MTU, admin state) -> learn the source -> look up the destination
 * -> unicast to one port, or flood to every other up port -> queue on the output ports
 * (ls_port_enqueue). Transmission happens once per batch in ls_rt_flush(). A frame never
 * leaves its switch; many switches share one runtime and one thread.
 *
 * All functions here run on the data-plane thread except the ls_switch_* entry points
 * documented as control-plane calls, which go through ls_runtime_call().
 */
#ifndef LS_SWITCH_H
#define LS_SWITCH_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "admit.h"
#include "common.h"
#include "fdb.h"
#include "runtime.h"
#include "stp.h"

#define LS_MAX_PORTS 4096    /* ports per switch */
#define LS_MAX_SEGS 192      /* segments one GSO frame may be cut into (64 KiB / 342 bytes) */
#define LS_MAX_SWITCHES 4096 /* switches per runtime */
#define LS_AGING_DEFAULT (300 * LS_NSEC)
#define LS_MAX_MACS_DEFAULT 8192
#define LS_AGING_MAX (100000000ULL * LS_NSEC) /* ~3 years; larger values are surely mistakes */
#define LS_COALESCE_NS                                                                             \
  LS_NSEC                  /* move and table-full events: at most one per MAC (switch) per second */
#define LS_MOVE_SLOTS 1024 /* MACs whose moves are being coalesced at once */
#define LS_ADMIT_PENDING_NS (5 * LS_NSEC) /* an unanswered admission request is asked again */

typedef struct ls_switch_config {
  char name[LS_NAME_MAX];
  uint64_t aging; /* ns, 0 = never */
  uint32_t max_macs;
  int evict;          /* enum ls_fdb_evict */
  bool vlan_aware;    /* classify frames into VLANs (per-port access/trunk); else pass tags */
  uint16_t vlan_tpid; /* the tag this switch classifies on: 0x8100 (802.1Q) or 0x88a8 (802.1ad) */
  bool wire;          /* forward link-local 01:80:C2:00:00:0X frames (STP, LACP, LLDP, 802.1X) */
} ls_switch_config;

typedef struct ls_switch_stats {
  uint64_t unicast;           /* frames sent to exactly one known port */
  uint64_t flooded;           /* frames flooded (group or unknown destination) */
  uint64_t group_src;         /* frames whose source MAC was a group address (not learned) */
  uint64_t zero_src;          /* frames whose source MAC was all zeroes (not learned) */
  uint64_t moves_folded;      /* move events folded into later ones (coalesced) */
  uint64_t table_full_folded; /* table-full events folded into later ones */
  uint64_t admit_requests;    /* admission requests raised (events) */
  uint64_t admitted, refused; /* answers applied */
  uint64_t admit_overflow;    /* new MACs not tracked: the admission table was full */
} ls_switch_stats;

/* A MAC whose moves are being coalesced: the first move is reported at once, later ones
 * within LS_COALESCE_NS are folded into one event at the end of the window. */
typedef struct ls_move_slot {
  uint64_t key; /* 0: free */
  uint64_t since;
  uint32_t folded;
  uint32_t from_id, to_id;
} ls_move_slot;

struct ls_switch {
  ls_runtime *rt;
  uint32_t id;
  ls_switch_config cfg;
  ls_port **ports;
  uint32_t nports, ports_cap;
  ls_fdb fdb;
  ls_switch_stats st;
  uv_timer_t age_timer;
  uint64_t timer_due;     /* clock time the aging timer is set for, UINT64_MAX if idle */
  ls_admit admit;         /* learning admission: pending and refused source MACs */
  ls_stp *stp;            /* spanning tree, when on */
  ls_move_slot *moves;    /* LS_MOVE_SLOTS, allocated at the first move */
  uint32_t moves_folding; /* slots with folded moves to report */
  uint64_t moves_due;     /* when the earliest of them is due */
  struct {
    uint64_t since, due; /* window start; when the folded ones are due (UINT64_MAX: none) */
    uint32_t folded;
    uint64_t key;
    uint32_t port_id;
    uint8_t scope; /* 0 switch cap, 1 port cap */
  } tf;
  bool attached;
  ls_switch *next;
};

/* Control plane: a new switch, not yet attached. NULL with *err = -errno. */
ls_switch *ls_switch_new(ls_runtime *rt, const ls_switch_config *cfg, int *err);
/* Control plane: attach to the running runtime (starts forwarding). 0 or -errno. On
 * failure the switch is freed. */
int ls_switch_attach(ls_switch *sw);
/* Control plane: close every port and the switch; the pointer is invalid afterwards. */
int ls_switch_close(ls_switch *sw);
/* Control plane: apply a new configuration atomically (validated by the caller). */
int ls_switch_configure(ls_switch *sw, const ls_switch_config *cfg);

typedef struct ls_fdb_record {
  uint8_t mac[6];
  uint16_t vlan;
  uint32_t port_id;
  uint64_t age; /* ns since last seen */
  uint64_t hits;
  uint16_t flags;
} ls_fdb_record;

/* Control plane: give VLAN vlan its own aging time, or (clear) the switch's again.
 * -ENOSPC beyond LS_FDB_CLASSES - 1 VLANs. */
int ls_switch_vlan_aging(ls_switch *sw, uint16_t vlan, uint64_t aging_ns, bool clear);
/* Control plane: the VLANs with their own aging time (arrays of at most LS_FDB_CLASSES). */
int ls_switch_vlan_aging_get(ls_switch *sw, uint16_t *vlans, uint64_t *aging, uint32_t *n);
/* Control plane: answer an admission request: learn (mac, vlan) on p, or refuse it.
 * Returns the ls_fdb learn result for an approval (LS_LEARN_*), 0 for a refusal, or -errno. */
int ls_switch_admit(ls_switch *sw, const uint8_t mac[6], uint16_t vlan, ls_port *p, bool ok);

/* Frame conservation for one port, computed at one instant on the data plane:
 *   rx: rx_frames + injected + rx_duplicated  vs  rx_forwarded + rx_bpdu + receive drops +
 *       frames waiting on the receive impairment
 *   tx: tx_queued + tx_duplicated  vs  tx_frames + send drops + queued + frames waiting on
 *       the send impairment */
typedef struct ls_audit_port {
  uint32_t port_id;
  uint64_t rx_in, rx_out; /* the two sides of the receive identity */
  uint64_t tx_in, tx_out; /* and of the send identity */
} ls_audit_port;
/* Control plane: every port's identities (*out malloc'd, caller frees). */
int ls_switch_audit(ls_switch *sw, ls_audit_port **out, uint32_t *n);

/* Control plane: snapshot of the table; *out is malloc'd (caller frees). */
int ls_switch_fdb_dump(ls_switch *sw, ls_fdb_record **out, uint32_t *n);
int ls_switch_fdb_add(ls_switch *sw, const uint8_t mac[6], uint16_t vlan, ls_port *p,
                      uint16_t flags);
/* 1 removed, 0 not found. */
int ls_switch_fdb_del(ls_switch *sw, const uint8_t mac[6], uint16_t vlan);
/* Returns the number removed (>= 0). */
int ls_switch_fdb_flush(ls_switch *sw, ls_port *p, int vlan, bool dynamic, bool statics);

typedef struct ls_switch_snapshot {
  ls_switch_stats st;
  ls_fdb_stats fdb;
  uint32_t fdb_entries, fdb_dynamic, fdb_static;
  uint64_t fdb_memory; /* bytes allocated by the table */
  uint32_t nports;
  ls_switch_config cfg;
} ls_switch_snapshot;
int ls_switch_snapshot_get(ls_switch *sw, ls_switch_snapshot *out);

/* What sw:explain() reports: the decision for one frame and its reasons, computed by the
 * same code that forwards (switch.c) with every side effect switched off. Reason strings
 * are static. */
#define LS_EXPLAIN_RULES 16
typedef struct ls_explain_rule {
  uint16_t index; /* 0-based position in the rule set */
  uint8_t action;
  const char *effect; /* "matched", "dropped", "over rate", "vlan set", ... */
} ls_explain_rule;

typedef struct ls_explain_port {
  uint32_t port_id;
  const char *why; /* NULL: the frame leaves here; else why not */
  bool tagged;     /* VLAN-aware: leaves with a tag */
  uint16_t vid;
  int rule; /* egress rule that decided (0-based), -1: none */
  uint8_t action;
  bool impaired; /* an egress impairment will act on it */
} ls_explain_port;

typedef struct ls_explain {
  const char *verdict; /* "forward", "drop", "punt" */
  const char *reason;  /* drop: why */
  bool vlan_aware;
  uint16_t vid;
  const char *vlan_how; /* how the VLAN was chosen */
  uint32_t nrules;      /* ingress rules that matched (at most LS_EXPLAIN_RULES kept) */
  ls_explain_rule rules[LS_EXPLAIN_RULES];
  const char *learn;    /* what learning the source does */
  uint32_t learn_from;  /* "move": the port the MAC was on */
  const char *lookup;   /* "hit", "miss", "broadcast", "multicast", NULL (not reached) */
  uint32_t dest_id;     /* hit: the port */
  const char *decision; /* "unicast", "flood", NULL */
  uint32_t nout;        /* ports considered */
  ls_explain_port *out; /* malloc'd (caller frees) */
} ls_explain;

/* Control plane: explain what frame would do arriving on port in; x->out is malloc'd. */
int ls_switch_explain(ls_switch *sw, ls_port *in, const uint8_t *frame, uint32_t len,
                      ls_explain *x);

/* ---- data plane ---------------------------------------------------------------------------- */

/* Forward one received frame (ownership of the reference passes in). trunc: the frame
 * did not fit the receive buffer. */
void ls_switch_input(ls_switch *sw, ls_port *in, ls_buf *b, bool trunc);
/* Forward a frame that passed in's ingress impairment (delay line released it), or that
 * Lua injected (flags LS_IN_INJECTED: no ingress rules, not counted as received). */
#define LS_IN_IMPAIRED 1u
#define LS_IN_INJECTED 2u
void ls_switch_input_from(ls_switch *sw, ls_port *in, ls_buf *b, unsigned flags);
/* Queue a copy of frame b on port out (a mirror), completing or segmenting offloaded
 * frames if out takes no offloads. */
void ls_switch_copy_to(ls_port *out, ls_buf *b);
/* Run aging now (also called from the timer) and re-arm the timer. */
void ls_switch_age(ls_switch *sw);
/* Re-arm the aging timer for the next expiry (no-op with a manual clock). */
void ls_switch_arm_timer(ls_switch *sw);
/* Data plane: close a switch (ports first); used by ls_switch_close and runtime stop. */
void ls_switch_close_dp(ls_switch *sw);

#endif
