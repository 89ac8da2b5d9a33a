/*
 * stp.h — the Spanning Tree Protocol (IEEE 802.1D-1998, the one a Linux bridge runs with
 * `stp_state 1`) for one switch, so labs can wire switches in rings without storms.
 *
 * Owns: the bridge's and each port's STP state — priority vectors, roles, port states
 * and timers — the configuration and topology-change BPDUs it sends and takes, and the
 * gate the frame path consults: a port forwards only in the forwarding state, learns in
 * learning and forwarding, and is otherwise silent but for BPDUs.
 *
 * The machine runs on the data-plane thread: BPDUs arrive from the frame path
 * (ls_stp_rx), leave through the ports' queues (and their impairments, so a lossy link is
 * lossy for BPDUs too), and one timer per switch drives hello, message-age and
 * forward-delay timers. Its timers run on real time, like the stall watchdog, also
 * under a manual clock. Times are kept in 1/256 s, as in BPDUs, so sub-second timers are
 * allowed for labs (a Linux bridge insists on hello >= 1 s, forward delay >= 2 s).
 *
 * Topology changes are signalled as 802.1D does (TCN BPDUs towards the root, the root's
 * TC flag for max_age + forward_delay); a bridge that sees one flushes its learned
 * entries, so hosts are found again at once on the new paths. Ports marked `edge` (to
 * hosts, like Cisco's portfast) go straight to forwarding and never cause a topology
 * change, until a BPDU arrives on them.
 */
#ifndef LS_STP_H
#define LS_STP_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

typedef struct ls_switch ls_switch;
typedef struct ls_port ls_port;

/* Port states; 0 is forwarding, so a switch without STP forwards on every port. */
enum ls_stp_state {
  LS_STP_FORWARDING = 0,
  LS_STP_LEARNING = 1,
  LS_STP_LISTENING = 2,
  LS_STP_BLOCKING = 3,
  LS_STP_DISABLED = 4,
};

enum ls_stp_role {
  LS_STP_ROLE_DISABLED = 0,
  LS_STP_ROLE_ROOT,
  LS_STP_ROLE_DESIGNATED,
  LS_STP_ROLE_ALTERNATE
};

/* A priority vector (lower is better), compared field by field. */
typedef struct ls_stp_vector {
  uint64_t root;
  uint32_t cost;
  uint64_t bridge;
  uint16_t port;
} ls_stp_vector;

/* Bridge-wide settings (times in 1/256 s). */
typedef struct ls_stp_config {
  uint16_t priority; /* multiple of 4096 (802.1t), default 32768 */
  uint8_t mac[6];    /* the bridge address */
  uint32_t hello, max_age, fwd_delay;
} ls_stp_config;

/* Per port (embedded in ls_port). */
typedef struct ls_stp_port {
  uint16_t id;      /* priority (4 bits) and number (12 bits) */
  uint8_t priority; /* multiple of 16, default 128 */
  uint32_t cost;    /* path cost, default 100 */
  bool edge;        /* configured edge port */
  bool oper_edge;   /* still edge: no BPDU seen */
  uint8_t role;
  ls_stp_vector designated; /* the best information on this port's segment */
  bool have_info;           /* designated came from a BPDU (and may age out) */
  uint64_t info_expires;    /* mono ns */
  uint32_t msg_age;         /* of the recorded BPDU, 1/256 s */
  uint64_t recorded_at;     /* mono ns */
  uint64_t fwd_due;         /* listening/learning: next transition (mono ns) */
  bool tc_ack;              /* send the next config BPDU with the TC-ack flag */
  uint64_t rx_bpdu, tx_bpdu;
} ls_stp_port;

typedef struct ls_stp {
  ls_switch *sw;
  ls_stp_config cfg;
  uint64_t bridge_id;
  ls_stp_vector root; /* root, cost; bridge/port: the root port's designated bridge/port */
  ls_port *root_port;
  uint32_t hello, max_age, fwd_delay; /* in use: the root's (ours when we are the root) */
  uint64_t hello_due;
  uint64_t tc_until; /* root: the TC flag goes out until then (mono ns) */
  bool tc_seen;      /* non-root: the root's last config carried TC */
  bool tcn_pending;  /* non-root: send TCNs to the root until acknowledged */
  uint64_t tcn_due;
  uint64_t topology_changes;
  uint64_t last_tc; /* mono ns of the last topology change */
  uv_timer_t timer;
  bool timer_open;
} ls_stp;

/* Control plane (through runtime commands; see switch.c): enable with cfg, reconfigure, or
 * disable (cfg NULL). 0 or -errno. */
int ls_switch_stp(ls_switch *sw, const ls_stp_config *cfg);

typedef struct ls_stp_port_info {
  uint32_t port_id;
  uint8_t state, role;
  uint16_t stp_id;
  uint32_t cost;
  bool edge, oper_edge;
  ls_stp_vector designated;
  uint64_t rx_bpdu, tx_bpdu;
} ls_stp_port_info;

typedef struct ls_stp_info {
  bool enabled;
  ls_stp_config cfg;
  uint64_t bridge_id;
  ls_stp_vector root;
  uint32_t root_port_id;
  uint32_t hello, max_age, fwd_delay;
  bool topology_change;
  uint64_t topology_changes;
  double since_tc; /* seconds since the last topology change, -1 none */
  uint32_t nports;
  ls_stp_port_info *ports; /* malloc'd, caller frees */
} ls_stp_info;
int ls_switch_stp_info(ls_switch *sw, ls_stp_info *out);

/* ---- data plane ---------------------------------------------------------------------- */

/* Is frame (with the destination 01:80:C2:00:00:00) a BPDU for STP? */
bool ls_stp_is_bpdu(const uint8_t *frame, uint32_t len);
/* A BPDU arrived on p. */
void ls_stp_rx(ls_stp *s, ls_port *p, const uint8_t *frame, uint32_t len);
/* p joined, left, or changed admin/link state: recompute. leaving: p is going away. */
void ls_stp_port_changed(ls_stp *s, ls_port *p, bool leaving);
/* Free (the timer is closed first; the switch is freed only afterwards). */
void ls_stp_close(ls_stp *s, uv_close_cb done);

#endif
