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

#include "common.h"
#include "fdb.h"
#include "runtime.h"

#define LS_MAX_PORTS 4096    /* ports per switch */
#define LS_MAX_SEGS 192      /* segments one GSO frame may be cut into (64 KiB / 342 bytes) */
#define LS_MAX_SWITCHES 4096 /* switches per runtime */
#define LS_AGING_DEFAULT (300 * LS_NSEC)
#define LS_MAX_MACS_DEFAULT 8192
#define LS_AGING_MAX (100000000ULL * LS_NSEC) /* ~3 years; larger values are surely mistakes */

typedef struct ls_switch_config {
  char name[LS_NAME_MAX];
  uint64_t aging; /* ns, 0 = never */
  uint32_t max_macs;
  int evict; /* enum ls_fdb_evict */
} ls_switch_config;

typedef struct ls_switch_stats {
  uint64_t unicast;   /* frames sent to exactly one known port */
  uint64_t flooded;   /* frames flooded (group or unknown destination) */
  uint64_t group_src; /* frames whose source MAC was a group address (not learned) */
  uint64_t zero_src;  /* frames whose source MAC was all zeroes (not learned) */
} ls_switch_stats;

struct ls_switch {
  ls_runtime *rt;
  uint32_t id;
  ls_switch_config cfg;
  ls_port **ports;
  uint32_t nports, ports_cap;
  ls_fdb fdb;
  ls_switch_stats st;
  uv_timer_t age_timer;
  uint64_t timer_due; /* clock time the aging timer is set for, UINT64_MAX if idle */
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

/* ---- data plane ---------------------------------------------------------------------------- */

/* Forward one received frame (ownership of the reference passes in). trunc: the frame
 * did not fit the receive buffer. */
void ls_switch_input(ls_switch *sw, ls_port *in, ls_buf *b, bool trunc);
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
