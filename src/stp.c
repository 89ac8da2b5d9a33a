/*
 * stp.c — IEEE 802.1D-1998 Spanning Tree for one switch (see stp.h).
 *
 * The decision is the standard's: the bridge with the lowest ID is the root; each other
 * bridge's root port is the one with the best path to it (root ID, cost, designated
 * bridge, designated port, own port ID, compared in that order); on each segment the
 * bridge offering the best vector is designated; every other port is an alternate and
 * blocks. Root and designated ports go through listening and learning (forward delay
 * each) to forwarding. Received information ages out after max age minus its message
 * age, and the port then claims its segment again.
 */
#include "stp.h"
#include "frame.h"
#include "port.h"
#include "switch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BPDU_LEN 35 /* a configuration BPDU, after the LLC header */
#define TCN_LEN 4
#define T256 (LS_NSEC / 256) /* ns in one BPDU time unit */
#define MSG_AGE_INCR 16      /* 1/16 s, added when relaying */

static const uint8_t STP_ADDR[6] = {0x01, 0x80, 0xc2, 0x00, 0x00, 0x00};
static const ls_stp_vector WORST = {UINT64_MAX, UINT32_MAX, UINT64_MAX, UINT16_MAX};

static uint64_t ns_of(uint32_t t256) {
  return (uint64_t)t256 * T256;
}

static int vcmp(const ls_stp_vector *a, const ls_stp_vector *b) {
  if (a->root != b->root) return a->root < b->root ? -1 : 1;
  if (a->cost != b->cost) return a->cost < b->cost ? -1 : 1;
  if (a->bridge != b->bridge) return a->bridge < b->bridge ? -1 : 1;
  if (a->port != b->port) return a->port < b->port ? -1 : 1;
  return 0;
}

static bool port_enabled(const ls_port *p) {
  return p->attached && !p->closing && ls_port_forwarding(p) && p->mirror_refs == 0;
}

static uint64_t now_mono(ls_stp *s) {
  return s->sw->rt->mono;
}

/* ---- sending ----------------------------------------------------------------------------- */

static void put_be64(uint8_t *p, uint64_t v) {
  ls_put_be32(p, (uint32_t)(v >> 32));
  ls_put_be32(p + 4, (uint32_t)v);
}

static uint64_t get_be64(const uint8_t *p) {
  return ((uint64_t)ls_get_be32(p) << 32) | ls_get_be32(p + 4);
}

static void send_bpdu(ls_stp *s, ls_port *p, const uint8_t *bpdu, uint32_t blen) {
  ls_runtime *rt = s->sw->rt;
  ls_buf *b = ls_pool_get(&rt->pool, 0);
  if (!b) return;
  uint8_t *f = b->data;
  memset(f, 0, 60);
  memcpy(f, STP_ADDR, 6);
  memcpy(f + 6, s->cfg.mac, 6);
  ls_put_be16(f + 12, (uint16_t)(3 + blen)); /* 802.3 length */
  f[14] = 0x42;                              /* LLC: DSAP, SSAP, UI */
  f[15] = 0x42;
  f[16] = 0x03;
  memcpy(f + 17, bpdu, blen);
  b->len = 17 + blen < 60 ? 60 : 17 + blen;
  p->stp.tx_bpdu++;
  ls_port_enqueue(p, b, b->len - LS_ETH_HLEN);
  ls_buf_unref(&rt->pool, b);
}

static bool tc_flag(ls_stp *s) {
  if (!s->root_port) return now_mono(s) < s->tc_until;
  return s->tc_seen;
}

static void send_config(ls_stp *s, ls_port *p) {
  uint8_t b[BPDU_LEN];
  memset(b, 0, sizeof(b));
  /* protocol 0, version 0, type 0 (configuration) */
  b[4] = (uint8_t)((tc_flag(s) ? 0x01 : 0) | (p->stp.tc_ack ? 0x80 : 0));
  p->stp.tc_ack = false;
  put_be64(b + 5, s->root.root);
  ls_put_be32(b + 13, s->root.cost);
  put_be64(b + 17, s->bridge_id);
  ls_put_be16(b + 25, p->stp.id);
  uint32_t age = 0;
  if (s->root_port) {
    ls_stp_port *rp = &s->root_port->stp;
    uint64_t held = (now_mono(s) - rp->recorded_at) / T256;
    age = rp->msg_age + (uint32_t)held + MSG_AGE_INCR;
    if (age >= s->max_age) return; /* the information is too old to pass on */
  }
  ls_put_be16(b + 27, (uint16_t)age);
  ls_put_be16(b + 29, (uint16_t)s->max_age);
  ls_put_be16(b + 31, (uint16_t)s->hello);
  ls_put_be16(b + 33, (uint16_t)s->fwd_delay);
  send_bpdu(s, p, b, BPDU_LEN);
}

static void send_tcn(ls_stp *s) {
  if (!s->root_port) return;
  uint8_t b[TCN_LEN] = {0, 0, 0, 0x80};
  send_bpdu(s, s->root_port, b, TCN_LEN);
}

/* Configuration BPDUs on every designated port. */
static void send_configs(ls_stp *s) {
  ls_switch *sw = s->sw;
  for (uint32_t i = 0; i < sw->nports; i++) {
    ls_port *p = sw->ports[i];
    if (port_enabled(p) && p->stp.role == LS_STP_ROLE_DESIGNATED) send_config(s, p);
  }
}

/* ---- states and roles -------------------------------------------------------------------- */

static void emit(ls_stp *s, ls_port *p) {
  ls_event ev;
  memset(&ev, 0, sizeof(ev));
  ev.type = LS_EV_STP;
  ev.switch_id = s->sw->id;
  ev.port_id = p->id;
  ev.state = p->stp_state;
  ev.reason = p->stp.role;
  ls_rt_emit(s->sw->rt, &ev);
}

static void topology_change(ls_stp *s);

static void set_state(ls_stp *s, ls_port *p, uint8_t state) {
  if (p->stp_state == state) return;
  uint8_t was = p->stp_state;
  p->stp_state = state;
  if (state == LS_STP_LISTENING || state == LS_STP_LEARNING)
    p->stp.fwd_due = now_mono(s) + ns_of(s->fwd_delay);
  if (state >= LS_STP_LISTENING) { /* no longer learning: forget what came in here */
    ls_fdb_filter flt = {.owner = &p->owner, .vlan = -1, .dynamic = true, .statics = false};
    ls_fdb_flush(&s->sw->fdb, &flt);
  }
  if (!p->stp.oper_edge &&
      ((state == LS_STP_FORWARDING) || (was <= LS_STP_LEARNING && state >= LS_STP_BLOCKING)))
    topology_change(s);
  emit(s, p);
}

/* 802.1D 8.6.8 / 8.6.9 / 8.6.10: root selection, designated ports, port states. */
static void update(ls_stp *s) {
  ls_switch *sw = s->sw;
  ls_port *best = NULL;
  ls_stp_vector bestv = {s->bridge_id, 0, s->bridge_id, 0};
  for (uint32_t i = 0; i < sw->nports; i++) {
    ls_port *p = sw->ports[i];
    ls_stp_port *sp = &p->stp;
    if (!port_enabled(p) || !sp->have_info || sp->designated.bridge == s->bridge_id) continue;
    ls_stp_vector v = sp->designated;
    v.cost = v.cost > UINT32_MAX - sp->cost ? UINT32_MAX : v.cost + sp->cost;
    if (v.root >= s->bridge_id) continue; /* not a better root than ourselves */
    int c = vcmp(&v, &bestv);
    if (c < 0 || (c == 0 && best && sp->id < best->stp.id)) {
      best = p;
      bestv = v;
    }
  }
  bool was_root = s->root_port == NULL;
  s->root_port = best;
  s->root = best ? bestv : (ls_stp_vector){s->bridge_id, 0, s->bridge_id, 0};
  if (best) {
    /* The root's times, as its BPDUs carry them (kept on the root port's info). */
  } else {
    s->hello = s->cfg.hello;
    s->max_age = s->cfg.max_age;
    s->fwd_delay = s->cfg.fwd_delay;
    if (!was_root) s->hello_due = now_mono(s); /* a new root says so at once */
  }
  for (uint32_t i = 0; i < sw->nports; i++) {
    ls_port *p = sw->ports[i];
    ls_stp_port *sp = &p->stp;
    if (!port_enabled(p)) {
      sp->role = LS_STP_ROLE_DISABLED;
      set_state(s, p, LS_STP_DISABLED);
      continue;
    }
    ls_stp_vector mine = {s->root.root, s->root.cost, s->bridge_id, sp->id};
    uint8_t role;
    if (p == best)
      role = LS_STP_ROLE_ROOT;
    else if (!sp->have_info || vcmp(&mine, &sp->designated) <= 0 ||
             (sp->designated.bridge == s->bridge_id && sp->designated.port == sp->id))
      role = LS_STP_ROLE_DESIGNATED;
    else
      role = LS_STP_ROLE_ALTERNATE;
    if (role == LS_STP_ROLE_DESIGNATED) {
      sp->designated = mine;
      sp->have_info = false; /* ours: does not age */
    }
    bool changed = role != sp->role;
    sp->role = role;
    if (role == LS_STP_ROLE_ALTERNATE) {
      set_state(s, p, LS_STP_BLOCKING);
    } else if (p->stp_state == LS_STP_BLOCKING || p->stp_state == LS_STP_DISABLED) {
      if (role == LS_STP_ROLE_DESIGNATED && sp->oper_edge)
        set_state(s, p, LS_STP_FORWARDING);
      else
        set_state(s, p, LS_STP_LISTENING);
    } else if (changed) {
      emit(s, p);
    }
  }
}

/* ---- topology changes -------------------------------------------------------------------- */

static void flush_learned(ls_stp *s) {
  ls_fdb_filter flt = {.owner = NULL, .vlan = -1, .dynamic = true, .statics = false};
  ls_fdb_flush(&s->sw->fdb, &flt);
}

static void topology_change(ls_stp *s) {
  uint64_t now = now_mono(s);
  s->topology_changes++;
  s->last_tc = now;
  flush_learned(s);
  if (!s->root_port) {
    s->tc_until = now + ns_of(s->max_age + s->fwd_delay);
  } else {
    s->tcn_pending = true;
    s->tcn_due = now;
  }
}

/* ---- receiving --------------------------------------------------------------------------- */

bool ls_stp_is_bpdu(const uint8_t *f, uint32_t len) {
  return len >= LS_ETH_HLEN + 3 + TCN_LEN && memcmp(f, STP_ADDR, 6) == 0 &&
         ls_get_be16(f + 12) <= 1500 && f[14] == 0x42 && f[15] == 0x42 && f[16] == 0x03;
}

void ls_stp_rx(ls_stp *s, ls_port *p, const uint8_t *f, uint32_t len) {
  const uint8_t *b = f + 17;
  uint32_t blen = len - 17;
  ls_stp_port *sp = &p->stp;
  if (ls_get_be16(b) != 0) return; /* protocol identifier */
  sp->rx_bpdu++;
  if (sp->oper_edge) { /* a bridge behind an edge port: it is not an edge after all */
    sp->oper_edge = false;
    update(s);
  }
  if (!port_enabled(p)) return;
  uint8_t type = b[3];
  if (type == 0x80) { /* topology change notification */
    if (sp->role != LS_STP_ROLE_DESIGNATED) return;
    topology_change(s);
    sp->tc_ack = true;
    send_config(s, p);
    return;
  }
  if ((type != 0x00 && type != 0x02) || blen < BPDU_LEN) return; /* config, or an RST BPDU */
  ls_stp_vector v = {get_be64(b + 5), ls_get_be32(b + 13), get_be64(b + 17), ls_get_be16(b + 25)};
  uint32_t msg_age = ls_get_be16(b + 27), max_age = ls_get_be16(b + 29);
  uint32_t hello = ls_get_be16(b + 31), fwd = ls_get_be16(b + 33);
  if (msg_age >= max_age || !hello || !fwd) return;
  uint8_t flags = b[4];
  bool from_current =
      sp->have_info && sp->designated.bridge == v.bridge && sp->designated.port == v.port;
  int c = vcmp(&v, &sp->designated);
  if (c < 0 || from_current || !sp->have_info) {
    if (c > 0 && !from_current && sp->role == LS_STP_ROLE_DESIGNATED) {
      send_config(s, p); /* an inferior claim on our segment: answer it */
      return;
    }
    uint64_t now = now_mono(s);
    sp->designated = v;
    sp->have_info = true;
    sp->msg_age = msg_age;
    sp->recorded_at = now;
    sp->info_expires = now + ns_of(max_age - msg_age);
    update(s);
    if (p == s->root_port) {
      s->max_age = max_age;
      s->hello = hello;
      s->fwd_delay = fwd;
      bool tc = flags & 0x01;
      if (tc && !s->tc_seen) flush_learned(s);
      s->tc_seen = tc;
      if (flags & 0x80) s->tcn_pending = false;
      send_configs(s); /* relay the root's word */
    }
  } else if (sp->role == LS_STP_ROLE_DESIGNATED) {
    send_config(s, p);
  }
}

/* ---- timers ------------------------------------------------------------------------------ */

static void on_tick(uv_timer_t *t) {
  ls_stp *s = t->data;
  ls_switch *sw = s->sw;
  ls_runtime *rt = sw->rt;
  ls_rt_tick(rt);
  uint64_t now = rt->mono;
  bool reconf = false;
  for (uint32_t i = 0; i < sw->nports; i++) {
    ls_port *p = sw->ports[i];
    ls_stp_port *sp = &p->stp;
    if (!port_enabled(p)) continue;
    if (sp->have_info && now >= sp->info_expires) { /* the information aged out */
      sp->have_info = false;
      sp->designated = WORST;
      reconf = true;
    }
    if ((p->stp_state == LS_STP_LISTENING || p->stp_state == LS_STP_LEARNING) && now >= sp->fwd_due)
      set_state(s, p, p->stp_state == LS_STP_LISTENING ? LS_STP_LEARNING : LS_STP_FORWARDING);
  }
  if (reconf) {
    update(s);
    send_configs(s);
  }
  if (!s->root_port && now >= s->hello_due) {
    send_configs(s);
    s->hello_due = now + ns_of(s->hello);
  }
  if (s->tcn_pending && s->root_port && now >= s->tcn_due) {
    send_tcn(s);
    s->tcn_due = now + ns_of(s->hello);
  }
  ls_rt_flush(rt);
}

static uint64_t tick_ms(const ls_stp *s) {
  uint32_t t = s->cfg.hello < s->cfg.fwd_delay ? s->cfg.hello : s->cfg.fwd_delay;
  uint64_t ms = ns_of(t) / 8 / 1000000;
  return ms < 5 ? 5 : ms > 100 ? 100 : ms;
}

/* ---- lifecycle ----------------------------------------------------------------------------- */

static void number_port(ls_stp *s, ls_port *p) {
  /* The smallest port number (1..4095) no other port of the switch has. */
  ls_switch *sw = s->sw;
  for (uint16_t n = 1; n < 4096; n++) {
    bool used = false;
    for (uint32_t i = 0; i < sw->nports && !used; i++)
      used = sw->ports[i] != p && (sw->ports[i]->stp.id & 0x0fff) == n;
    if (!used) {
      p->stp.id = (uint16_t)(((p->stp.priority >> 4) << 12) | n);
      return;
    }
  }
}

void ls_stp_port_changed(ls_stp *s, ls_port *p, bool leaving) {
  if (leaving) { /* p has left sw->ports already */
    if (p == s->root_port) s->root_port = NULL;
    p->stp.role = LS_STP_ROLE_DISABLED;
    update(s);
    send_configs(s);
    return;
  }
  if (!(p->stp.id & 0x0fff)) number_port(s, p);
  if (!port_enabled(p)) {
    p->stp.have_info = false;
    p->stp.designated = WORST;
    p->stp.oper_edge = p->stp.edge;
  } else if (p->stp_state == LS_STP_DISABLED) {
    p->stp_state = LS_STP_BLOCKING;
    p->stp.oper_edge = p->stp.edge;
  }
  update(s);
  send_configs(s);
}

static void stp_free_cb(uv_handle_t *h) {
  free(h->data);
}

void ls_stp_close(ls_stp *s, uv_close_cb done) {
  uv_timer_stop(&s->timer);
  uv_close((uv_handle_t *)&s->timer, done ? done : stp_free_cb);
}

static int start(ls_switch *sw, const ls_stp_config *cfg) {
  ls_stp *s = calloc(1, sizeof(*s));
  if (!s) return -ENOMEM;
  s->sw = sw;
  s->cfg = *cfg;
  int r = uv_timer_init(&sw->rt->loop, &s->timer);
  if (r) {
    free(s);
    return r;
  }
  s->timer.data = s;
  s->bridge_id = ((uint64_t)cfg->priority << 48) | ls_mac_to_u64(cfg->mac);
  s->hello = cfg->hello;
  s->max_age = cfg->max_age;
  s->fwd_delay = cfg->fwd_delay;
  sw->stp = s;
  for (uint32_t i = 0; i < sw->nports; i++) {
    ls_port *p = sw->ports[i];
    p->stp.have_info = false;
    p->stp.designated = WORST;
    p->stp.role = LS_STP_ROLE_DISABLED;
    p->stp.oper_edge = p->stp.edge;
    p->stp.id = 0;
    p->stp_state = port_enabled(p) ? LS_STP_BLOCKING : LS_STP_DISABLED;
  }
  for (uint32_t i = 0; i < sw->nports; i++) number_port(s, sw->ports[i]);
  ls_rt_tick(sw->rt);
  s->hello_due = sw->rt->mono;
  update(s);
  send_configs(s);
  uint64_t ms = tick_ms(s);
  uv_timer_start(&s->timer, on_tick, ms, ms);
  return 0;
}

typedef struct {
  ls_switch *sw;
  const ls_stp_config *cfg;
  ls_stp_info *info;
} stp_arg;

static int cmd_stp(ls_runtime *rt, ls_cmd *cmd) {
  (void)rt;
  stp_arg *a = cmd->arg;
  ls_switch *sw = a->sw;
  if (!sw->attached) return -EINVAL;
  ls_stp *old = sw->stp;
  if (old) { /* reconfigure = restart with the new settings, as after a bridge reset */
    sw->stp = NULL;
    ls_stp_close(old, NULL);
  }
  if (a->cfg) return start(sw, a->cfg);
  for (uint32_t i = 0; i < sw->nports; i++) { /* off: every port forwards */
    ls_port *p = sw->ports[i];
    p->stp_state = LS_STP_FORWARDING;
    p->stp.role = LS_STP_ROLE_DISABLED;
  }
  return 0;
}

int ls_switch_stp(ls_switch *sw, const ls_stp_config *cfg) {
  stp_arg a = {sw, cfg, NULL};
  return ls_runtime_call(sw->rt, cmd_stp, &a);
}

static int cmd_stp_info(ls_runtime *rt, ls_cmd *cmd) {
  stp_arg *a = cmd->arg;
  ls_switch *sw = a->sw;
  ls_stp_info *o = a->info;
  ls_stp *s = sw->stp;
  memset(o, 0, sizeof(*o));
  if (!s) return 0;
  o->enabled = true;
  o->cfg = s->cfg;
  o->bridge_id = s->bridge_id;
  o->root = s->root;
  o->root_port_id = s->root_port ? s->root_port->id : 0;
  o->hello = s->hello;
  o->max_age = s->max_age;
  o->fwd_delay = s->fwd_delay;
  o->topology_change = tc_flag(s);
  o->topology_changes = s->topology_changes;
  o->since_tc = s->last_tc ? (double)(rt->mono - s->last_tc) / 1e9 : -1;
  o->ports = calloc(sw->nports + 1, sizeof(ls_stp_port_info));
  if (!o->ports) return -ENOMEM;
  for (uint32_t i = 0; i < sw->nports; i++) {
    ls_port *p = sw->ports[i];
    ls_stp_port_info *pi = &o->ports[o->nports++];
    pi->port_id = p->id;
    pi->state = p->stp_state;
    pi->role = p->stp.role;
    pi->stp_id = p->stp.id;
    pi->cost = p->stp.cost;
    pi->edge = p->stp.edge;
    pi->oper_edge = p->stp.oper_edge;
    pi->designated = p->stp.designated;
    pi->rx_bpdu = p->stp.rx_bpdu;
    pi->tx_bpdu = p->stp.tx_bpdu;
  }
  return 0;
}

int ls_switch_stp_info(ls_switch *sw, ls_stp_info *out) {
  stp_arg a = {sw, NULL, out};
  return ls_runtime_call(sw->rt, cmd_stp_info, &a);
}
