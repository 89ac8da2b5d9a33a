/*
 * port.c — the kind-independent half of a port: transmit queue, state, events, joining
 * and leaving a switch (see port.h).
 */
#include "port.h"
#include "frame.h"
#include "switch.h"

#include <errno.h>
#include <linux/sockios.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

static uint32_t pow2_at_least(uint32_t n) {
  uint32_t c = 1;
  while (c < n) c <<= 1;
  return c;
}

static uint8_t class_for_mtu(uint32_t mtu) {
  return ls_pool_class_for(mtu + LS_ETH_HLEN + LS_MAX_TAGS * LS_VLAN_HLEN);
}

static void set_watermarks(ls_port *p) {
  uint32_t q = p->cfg.txqlen;
  p->hiwat = q > 2 * LS_BATCH ? q - LS_BATCH : (q + 1) / 2;
  p->lowat = p->hiwat / 2;
}

int ls_port_init(ls_port *p, const ls_port_ops *ops, ls_runtime *rt, const ls_port_config *cfg) {
  p->ops = ops;
  p->rt = rt;
  p->cfg = *cfg;
  p->rx_cls = class_for_mtu(cfg->mtu);
  p->admin_up = cfg->up;
  p->link_up = false;
  p->vlan.mode = LS_VLAN_ACCESS;
  p->vlan.pvid = 1;
  p->stp_state = LS_STP_FORWARDING;
  p->stp.priority = cfg->stp_priority;
  p->stp.cost = cfg->stp_cost;
  p->stp.edge = cfg->stp_edge;
  uint32_t cap = pow2_at_least(cfg->txqlen);
  p->txq = calloc(cap, sizeof(*p->txq));
  if (!p->txq) return -ENOMEM;
  p->txq_mask = cap - 1;
  p->id = ls_runtime_new_id(rt);
  set_watermarks(p);
  return 0;
}

void ls_port_fini(ls_port *p) {
  for (int d = 0; d < 2; d++) {
    ls_ruleset_free(p->rules[d]);
    p->rules[d] = NULL;
    ls_impair_free(p->imp[d], &p->rt->pool, NULL, NULL);
    p->imp[d] = NULL;
  }
  free(p->txq);
  p->txq = NULL;
  free(p->waiters);
  p->waiters = NULL;
}

/* ---- backpressure ------------------------------------------------------------------------ */

static void release_waiters(ls_port *p) {
  for (uint32_t i = 0; i < p->nwaiters; i++) {
    ls_port *w = p->waiters[i];
    if (w->blocked && --w->blocked == 0 && w->ops->update) w->ops->update(w);
  }
  p->nwaiters = 0;
}

static void congest(ls_port *p) {
  ls_runtime *rt = p->rt;
  p->congested = true;
  p->stalled = false;
  p->backlog_seen = UINT64_MAX; /* the watchdog's first look only notes it */
  p->congested_since = rt->mono;
  p->cong_next = rt->congested;
  rt->congested = p;
  ls_rt_watch_congestion(rt);
}

static void uncongest(ls_port *p) {
  if (!p->congested) return;
  p->congested = false;
  p->stalled = false;
  for (ls_port **pp = &p->rt->congested; *pp; pp = &(*pp)->cong_next) {
    if (*pp == p) {
      *pp = p->cong_next;
      break;
    }
  }
  p->cong_next = NULL;
  release_waiters(p);
}

static void stall(ls_port *p) {
  p->stalled = true;
  p->st.stalls++;
  release_waiters(p);
}

void ls_port_watch(ls_port *p) {
  ls_runtime *rt = p->rt;
  if (p->ops->backlog) {
    uint64_t b = p->ops->backlog(p);
    if (b != UINT64_MAX && p->backlog_seen != UINT64_MAX && b < p->backlog_seen) {
      p->last_progress = rt->mono; /* the peer is reading: slowly, but it is there */
      p->stalled = false;
    }
    p->backlog_seen = b;
  }
  uint64_t since = p->last_progress > p->congested_since ? p->last_progress : p->congested_since;
  if (!p->stalled && rt->mono - since >= LS_STALL_NS) stall(p);
}

uint64_t ls_fd_backlog(int fd) {
  int n;
  if (fd < 0 || ioctl(fd, SIOCOUTQ, &n) != 0 || n < 0) return UINT64_MAX;
  return (uint64_t)n;
}

bool ls_port_batch_done(ls_port *in) {
  bool pause = false;
  for (uint32_t i = 0; i < in->nfed; i++) {
    ls_port *out = in->fed[i];
    if (!out->congested || out->stalled || !out->attached) continue;
    bool already = false;
    for (uint32_t j = 0; j < out->nwaiters; j++) already |= out->waiters[j] == in;
    if (already) continue;
    if (out->nwaiters == out->waiters_cap) {
      uint32_t ncap = out->waiters_cap ? out->waiters_cap * 2 : 4;
      ls_port **nw = realloc(out->waiters, ncap * sizeof(*nw));
      if (!nw) continue; /* no memory to wait: the frames will be dropped at the bound */
      out->waiters = nw;
      out->waiters_cap = ncap;
    }
    out->waiters[out->nwaiters++] = in;
    in->blocked++;
    pause = true;
  }
  in->nfed = 0;
  if (LS_UNLIKELY(in->learn_tokens < 0) && !in->learn_held && in->cfg.learn_limit) {
    /* over its budget of new source MACs: no more reads until it is back at zero */
    in->learn_held = true;
    in->learn_until = in->learn_last + (uint64_t)(-in->learn_tokens / in->cfg.learn_limit);
    in->blocked++;
    in->st.learn_holds++;
    ls_rt_learn_hold(in->rt, in);
    pause = true;
  }
  if (pause && in->ops->update) in->ops->update(in);
  /* A port whose frames are dear (a flood of new sources, a long rule list) yields after
   * a time slice, as after its frame budget, so that every port is read within a few ms */
  return pause || ls_rt_slice_spent(in->rt);
}

void ls_port_txq_sent(ls_port *p, uint32_t n) {
  for (uint32_t i = 0; i < n; i++) {
    ls_buf *b = p->txq[p->txq_head];
    p->st.tx_frames++;
    p->st.tx_bytes += b->len;
    if (LS_UNLIKELY(p->mirror_out != NULL)) ls_switch_copy_to(p->mirror_out, b);
    ls_buf_unref(&p->rt->pool, b);
    p->txq_head = (p->txq_head + 1) & p->txq_mask;
    p->txq_len--;
  }
  p->last_progress = p->rt->mono;
  /* A stalled peer that takes frames again is alive, only slow (a VM descheduled, a
   * starved reader): its inputs wait for it again instead of losing frames at its bound. */
  p->stalled = false;
  if (p->congested && p->txq_len <= p->lowat) uncongest(p);
}

void ls_port_txq_drop(ls_port *p, uint32_t n, uint64_t *counter) {
  for (uint32_t i = 0; i < n; i++) {
    ls_buf_unref(&p->rt->pool, p->txq[p->txq_head]);
    p->txq_head = (p->txq_head + 1) & p->txq_mask;
    p->txq_len--;
    (*counter)++;
  }
  if (p->congested && p->txq_len <= p->lowat) uncongest(p);
}

/* A closing port may be waiting on others: take it off their lists. */
static void forget_waiter(ls_port *p) {
  ls_switch *sw = p->sw;
  for (uint32_t i = 0; i < sw->nports; i++) {
    ls_port *o = sw->ports[i];
    for (uint32_t j = 0; j < o->nwaiters; j++) {
      if (o->waiters[j] == p) {
        o->waiters[j] = o->waiters[--o->nwaiters];
        break;
      }
    }
  }
  ls_rt_learn_forget(p->rt, p);
  ls_rt_rx_forget(p->rt, p);
  p->blocked = 0;
  p->nfed = 0;
}

/* ---- data plane --------------------------------------------------------------------------- */

/* Onto the transmit queue (after any egress impairment). */
static bool txq_push(ls_port *p, ls_buf *b) {
  if (LS_UNLIKELY(p->txq_len >= p->cfg.txqlen)) {
    p->st.drops.tx_full++;
    return false;
  }
  ls_buf_ref(b);
  p->txq[(p->txq_head + p->txq_len) & p->txq_mask] = b;
  p->txq_len++;
  if (LS_UNLIKELY(p->txq_len >= p->hiwat) && !p->congested) congest(p);
  ls_rt_mark_dirty(p->rt, p);
  return true;
}

static void impaired_out(void *ctx, ls_buf *b, uint32_t payload) {
  (void)payload;
  txq_push(ctx, b);
}

static uint64_t impair_drops(const ls_impair *im) {
  return im->st.lost + im->st.queue_full + im->st.mtu;
}

/* p now has frames waiting on a delay line: list it for the release timer. */
static void impair_waiting(ls_port *p, ls_impair *im) {
  if (!p->imp_listed) {
    p->imp_listed = true;
    p->imp_next = p->rt->impaired;
    p->rt->impaired = p;
  }
  ls_rt_impair_due(p->rt, ls_impair_next_due(im));
}

static void impair_one(ls_port *p, ls_impair *im, ls_buf *b, uint32_t payload,
                       ls_impair_emit_fn emit, uint64_t *dropped, uint64_t *duplicated) {
  uint64_t before = impair_drops(im), dups = im->st.duplicated;
  ls_impair_frame(im, &p->rt->pool, b, payload, p->rt->now, emit, p);
  *dropped += impair_drops(im) - before;
  *duplicated += im->st.duplicated - dups;
  if (ls_impair_waiting(im)) impair_waiting(p, im);
}

static void impaired_in(void *ctx, ls_buf *b, uint32_t payload) {
  (void)payload;
  ls_port *in = ctx;
  ls_buf_ref(b);
  ls_switch_input_from(in->sw, in, b, LS_IN_IMPAIRED);
}

void ls_port_impair_in(ls_port *in, ls_buf *b, uint32_t payload) {
  impair_one(in, in->imp[LS_DIR_IN], b, payload, impaired_in, &in->st.drops.impair,
             &in->st.rx_duplicated);
}

static void unlist_impaired(ls_port *p) {
  if (!p->imp_listed) return;
  for (ls_port **pp = &p->rt->impaired; *pp; pp = &(*pp)->imp_next) {
    if (*pp == p) {
      *pp = p->imp_next;
      break;
    }
  }
  p->imp_listed = false;
  p->imp_next = NULL;
}

uint64_t ls_port_impair_tick(ls_runtime *rt) {
  uint64_t next = UINT64_MAX;
  ls_port **pp = &rt->impaired;
  while (*pp) {
    ls_port *p = *pp;
    uint32_t waiting = 0;
    for (int d = 0; d < 2; d++) {
      ls_impair *im = p->imp[d];
      if (!im) continue;
      uint64_t due =
          ls_impair_release(im, &rt->pool, rt->now, d == LS_DIR_IN ? impaired_in : impaired_out, p);
      if (due < next) next = due;
      waiting += ls_impair_waiting(im);
    }
    p->nfed = 0; /* frames released late exert no backpressure */
    if (waiting) {
      pp = &p->imp_next;
    } else {
      *pp = p->imp_next;
      p->imp_listed = false;
      p->imp_next = NULL;
    }
  }
  return next;
}

bool ls_port_enqueue(ls_port *p, ls_buf *b, uint32_t payload) {
  p->st.tx_queued++;
  if (LS_UNLIKELY(payload > p->cfg.mtu)) {
    p->st.drops.tx_mtu++;
    return false;
  }
  if (LS_UNLIKELY(p->imp[LS_DIR_OUT] != NULL)) {
    impair_one(p, p->imp[LS_DIR_OUT], b, payload, impaired_out, &p->st.drops.tx_impair,
               &p->st.tx_duplicated);
    return true;
  }
  return txq_push(p, b);
}

void ls_port_drain_queue(ls_port *p) {
  while (p->txq_len) {
    ls_buf_unref(&p->rt->pool, p->txq[p->txq_head]);
    p->txq_head = (p->txq_head + 1) & p->txq_mask;
    p->txq_len--;
    p->st.drops.tx_down++;
  }
  p->txq_head = 0;
  uncongest(p);
}

static void emit_port_event(ls_port *p, int reason) {
  ls_event ev;
  memset(&ev, 0, sizeof(ev));
  ev.type = LS_EV_PORT;
  ev.switch_id = p->sw ? p->sw->id : 0;
  ev.port_id = p->id;
  ev.state = (uint8_t)((p->admin_up ? 1 : 0) | (p->link_up && !p->imp_down ? 2 : 0));
  ev.reason = (uint8_t)reason;
  ls_rt_emit(p->rt, &ev);
  if (p->sw && p->sw->stp && p->attached && !p->closing) ls_stp_port_changed(p->sw->stp, p, false);
}

/* Forwarding through this port stopped: forget where its addresses were, drop its queue. */
static void went_down(ls_port *p) {
  ls_fdb_filter flt = {.owner = &p->owner, .vlan = -1, .dynamic = true, .statics = false};
  ls_fdb_flush(&p->sw->fdb, &flt);
  ls_port_drain_queue(p);
}

void ls_port_set_link(ls_port *p, bool up, int reason) {
  if (p->link_up == up) return;
  bool was = ls_port_forwarding(p);
  p->link_up = up;
  if (!up && reason == LS_REASON_HANGUP) p->st.hangups++;
  if (was && !ls_port_forwarding(p)) went_down(p);
  emit_port_event(p, reason);
  if (p->ops->update) p->ops->update(p);
}

void ls_port_error(ls_port *p, int err, int where) {
  ls_event ev;
  memset(&ev, 0, sizeof(ev));
  ev.type = LS_EV_ERROR;
  ev.switch_id = p->sw ? p->sw->id : 0;
  ev.port_id = p->id;
  ev.value = err;
  ev.reason = (uint8_t)where;
  ls_rt_emit(p->rt, &ev);
}

void ls_port_release(ls_port *p) {
  ls_port_fini(p);
  p->ops->destroy(p);
}

static void set_mirror(ls_port *p, ls_port *in_to, ls_port *out_to) {
  if (p->mirror_in) p->mirror_in->mirror_refs--;
  if (p->mirror_out) p->mirror_out->mirror_refs--;
  p->mirror_in = in_to;
  p->mirror_out = out_to;
  if (in_to) in_to->mirror_refs++;
  if (out_to) out_to->mirror_refs++;
}

void ls_port_close_dp(ls_port *p) {
  ls_switch *sw = p->sw;
  p->closing = true;
  /* Leave the switch first, so no frame is forwarded to it from here on. */
  uint32_t i = p->index;
  sw->ports[i] = sw->ports[sw->nports - 1];
  sw->ports[i]->index = i;
  sw->nports--;
  ls_fdb_owner_remove(&sw->fdb, &p->owner);
  ls_admit_forget_owner(&sw->admit, p);
  if (sw->stp) ls_stp_port_changed(sw->stp, p, true);
  ls_rt_unmark_dirty(p->rt, p);
  ls_port_drain_queue(p); /* also releases inputs waiting on it */
  forget_waiter(p);
  set_mirror(p, NULL, NULL);
  unlist_impaired(p);
  for (int d = 0; d < 2; d++) { /* what waits on its delay lines is lost with the port */
    ls_impair_free(p->imp[d], &p->rt->pool, NULL, NULL);
    p->imp[d] = NULL;
  }
  for (uint32_t j = 0; j < sw->nports; j++) {
    ls_port *o = sw->ports[j];
    for (int d = 0; d < 2; d++) /* rules mirroring to it now mirror nowhere */
      for (uint32_t k = 0; o->rules[d] && k < o->rules[d]->n; k++)
        if (o->rules[d]->rules[k].port == p) o->rules[d]->rules[k].port = NULL;
    if (o->mirror_in == p || o->mirror_out == p)
      set_mirror(o, o->mirror_in == p ? NULL : o->mirror_in,
                 o->mirror_out == p ? NULL : o->mirror_out);
  }
  p->attached = false;
  p->ops->detach(p); /* ends in ls_port_release() */
}

/* ---- control plane ------------------------------------------------------------------------- */

typedef struct {
  ls_switch *sw;
  ls_port *p;
} add_arg;

static int cmd_add(ls_runtime *rt, ls_cmd *cmd) {
  (void)rt;
  add_arg *a = cmd->arg;
  ls_switch *sw = a->sw;
  ls_port *p = a->p;
  if (!sw->attached) return -EINVAL;
  if (sw->nports >= LS_MAX_PORTS) return -EMFILE;
  for (uint32_t i = 0; i < sw->nports; i++)
    if (strcmp(sw->ports[i]->cfg.name, p->cfg.name) == 0) return -EEXIST;
  if (sw->nports == sw->ports_cap) {
    uint32_t ncap = sw->ports_cap ? sw->ports_cap * 2 : 8;
    ls_port **np = realloc(sw->ports, ncap * sizeof(*np));
    if (!np) return -ENOMEM;
    sw->ports = np;
    sw->ports_cap = ncap;
  }
  int r = ls_fdb_owner_add(&sw->fdb, &p->owner);
  if (r) return r;
  p->owner.max = p->cfg.max_macs;
  p->sw = sw;
  p->index = sw->nports;
  sw->ports[sw->nports++] = p;
  p->attached = true;
  if (sw->stp) p->stp_state = LS_STP_DISABLED; /* until STP says otherwise */
  r = p->ops->attach(p);
  if (r) {
    sw->nports--;
    ls_fdb_owner_remove(&sw->fdb, &p->owner);
    p->attached = false;
    p->sw = NULL;
    return r;
  }
  if (sw->stp) ls_stp_port_changed(sw->stp, p, false);
  return 0;
}

int ls_port_add(ls_switch *sw, ls_port *p) {
  add_arg a = {sw, p};
  int r = ls_runtime_call(sw->rt, cmd_add, &a);
  if (r) {
    ls_port_fini(p);
    p->ops->destroy(p);
  }
  return r;
}

static int cmd_close(ls_runtime *rt, ls_cmd *cmd) {
  (void)rt;
  ls_port *p = cmd->arg;
  if (!p->attached) return -EINVAL;
  ls_port_close_dp(p);
  return 0;
}

int ls_port_close(ls_port *p) {
  return ls_runtime_call(p->rt, cmd_close, p);
}

typedef struct {
  ls_port *p;
  bool up;
  const ls_port_config *cfg;
  void *out;
} port_arg;

static int cmd_admin(ls_runtime *rt, ls_cmd *cmd) {
  (void)rt;
  port_arg *a = cmd->arg;
  ls_port *p = a->p;
  if (p->admin_up == a->up) return 0;
  bool was = ls_port_forwarding(p);
  p->admin_up = a->up;
  p->cfg.up = a->up;
  if (was && !ls_port_forwarding(p)) went_down(p);
  emit_port_event(p, LS_REASON_ADMIN);
  if (p->ops->update) p->ops->update(p);
  return 0;
}

int ls_port_set_admin(ls_port *p, bool up) {
  port_arg a = {.p = p, .up = up};
  return ls_runtime_call(p->rt, cmd_admin, &a);
}

static int cmd_configure(ls_runtime *rt, ls_cmd *cmd) {
  (void)rt;
  port_arg *a = cmd->arg;
  ls_port *p = a->p;
  const ls_port_config *cfg = a->cfg;
  if (strcmp(cfg->name, p->cfg.name) != 0) {
    for (uint32_t i = 0; i < p->sw->nports; i++)
      if (p->sw->ports[i] != p && strcmp(p->sw->ports[i]->cfg.name, cfg->name) == 0) return -EEXIST;
  }
  uint32_t cap = pow2_at_least(cfg->txqlen);
  if (cap != p->txq_mask + 1) {
    if (p->txq_len > cfg->txqlen) return -EBUSY; /* would drop queued frames */
    ls_buf **nq = calloc(cap, sizeof(*nq));
    if (!nq) return -ENOMEM;
    for (uint32_t i = 0; i < p->txq_len; i++) nq[i] = p->txq[(p->txq_head + i) & p->txq_mask];
    free(p->txq);
    p->txq = nq;
    p->txq_head = 0;
    p->txq_mask = cap - 1;
  }
  bool up = p->cfg.up;
  if (!cfg->admission && p->cfg.admission) ls_admit_forget_owner(&p->sw->admit, p);
  if (cfg->learn_limit != p->cfg.learn_limit || cfg->learn_burst != p->cfg.learn_burst)
    p->learn_last = 0; /* a full new budget */
  if (cfg->max_macs != p->cfg.max_macs)
    ls_fdb_set_owner_max(&p->sw->fdb, &p->owner, cfg->max_macs, rt->now);
  bool stp_changed = cfg->stp_cost != p->cfg.stp_cost || cfg->stp_priority != p->cfg.stp_priority ||
                     cfg->stp_edge != p->cfg.stp_edge;
  p->cfg = *cfg;
  p->cfg.up = up;
  if (stp_changed) {
    p->stp.cost = cfg->stp_cost;
    p->stp.edge = cfg->stp_edge;
    if (cfg->stp_priority != p->stp.priority) {
      p->stp.priority = cfg->stp_priority;
      p->stp.id = (uint16_t)(((cfg->stp_priority >> 4) << 12) | (p->stp.id & 0x0fff));
    }
    if (p->sw->stp) ls_stp_port_changed(p->sw->stp, p, false);
  }
  p->rx_cls = class_for_mtu(cfg->mtu);
  set_watermarks(p);
  if (p->congested && p->txq_len <= p->lowat) uncongest(p);
  return 0;
}

int ls_port_configure(ls_port *p, const ls_port_config *cfg) {
  port_arg a = {.p = p, .cfg = cfg};
  return ls_runtime_call(p->rt, cmd_configure, &a);
}

static int cmd_stats(ls_runtime *rt, ls_cmd *cmd) {
  (void)rt;
  port_arg *a = cmd->arg;
  *(ls_port_stats *)a->out = a->p->st;
  return 0;
}

int ls_port_stats_get(ls_port *p, ls_port_stats *out) {
  port_arg a = {.p = p, .out = out};
  return ls_runtime_call(p->rt, cmd_stats, &a);
}

static int cmd_info(ls_runtime *rt, ls_cmd *cmd) {
  (void)rt;
  port_arg *a = cmd->arg;
  ls_port *p = a->p;
  ls_port_info *o = a->out;
  memset(o, 0, sizeof(*o));
  o->id = p->id;
  o->cfg = p->cfg;
  o->admin_up = p->admin_up;
  o->link_up = p->link_up && !p->imp_down;
  o->txq_len = p->txq_len;
  o->offloads = p->offloads;
  o->vni = -1;
  o->mirror_in_id = p->mirror_in ? p->mirror_in->id : 0;
  o->mirror_out_id = p->mirror_out ? p->mirror_out->id : 0;
  o->mirror_dest = p->mirror_refs > 0;
  o->macs = p->owner.dyn;
  o->stp_state = p->stp_state;
  o->stp_role = p->stp.role;
  o->static_macs = p->owner.nstatic;
  o->fd = -1;
  if (p->ops->describe) p->ops->describe(p, o);
  return 0;
}

typedef struct {
  ls_port *p, *in_to, *out_to;
} mirror_arg;

static int cmd_mirror(ls_runtime *rt, ls_cmd *cmd) {
  (void)rt;
  mirror_arg *a = cmd->arg;
  ls_port *p = a->p;
  ls_port *dest[2] = {a->in_to, a->out_to};
  for (int i = 0; i < 2; i++)
    if (dest[i] && (dest[i] == p || dest[i]->sw != p->sw || !dest[i]->attached)) return -EINVAL;
  set_mirror(p, a->in_to, a->out_to);
  /* A mirror destination leaves normal forwarding: forget the MACs learned on it. */
  for (int i = 0; i < 2; i++) {
    if (!dest[i]) continue;
    ls_fdb_filter flt = {.owner = &dest[i]->owner, .vlan = -1, .dynamic = true, .statics = false};
    ls_fdb_flush(&dest[i]->sw->fdb, &flt);
  }
  return 0;
}

int ls_port_set_mirror(ls_port *p, ls_port *in_to, ls_port *out_to) {
  mirror_arg a = {p, in_to, out_to};
  return ls_runtime_call(p->rt, cmd_mirror, &a);
}

int ls_port_info_get(ls_port *p, ls_port_info *out) {
  port_arg a = {.p = p, .out = out};
  return ls_runtime_call(p->rt, cmd_info, &a);
}

/* ---- rules, VLANs, impairments, frames from Lua --------------------------------------------- */

typedef struct {
  ls_port *p;
  int dir;
  ls_ruleset *rs;
  ls_rule *rules;
  uint32_t *ids;
  uint32_t n;
} rules_arg;

static int cmd_set_rules(ls_runtime *rt, ls_cmd *cmd) {
  (void)rt;
  rules_arg *a = cmd->arg;
  ls_port *p = a->p;
  if (!p->attached) return -EINVAL;
  for (uint32_t i = 0; a->rs && i < a->rs->n; i++) {
    ls_port *to = a->rs->rules[i].port;
    if (to && (to == p || to->sw != p->sw || !to->attached)) return -EINVAL;
  }
  ls_ruleset *old = p->rules[a->dir];
  p->rules[a->dir] = a->rs && a->rs->n ? a->rs : NULL;
  if (a->rs && !a->rs->n) ls_ruleset_free(a->rs);
  ls_ruleset_free(old);
  return 0;
}

int ls_port_set_rules(ls_port *p, int dir, ls_ruleset *rs) {
  rules_arg a = {.p = p, .dir = dir, .rs = rs};
  return ls_runtime_call(p->rt, cmd_set_rules, &a);
}

static int cmd_rules_get(ls_runtime *rt, ls_cmd *cmd) {
  (void)rt;
  rules_arg *a = cmd->arg;
  ls_ruleset *rs = a->p->rules[a->dir];
  a->n = 0;
  if (!rs) return 0;
  a->rules = calloc(rs->n, sizeof(ls_rule));
  a->ids = calloc(rs->n, sizeof(uint32_t));
  if (!a->rules || !a->ids) return -ENOMEM;
  for (uint32_t i = 0; i < rs->n; i++) {
    a->rules[i] = rs->rules[i];
    a->rules[i].prog = NULL;
    a->rules[i].match = strdup(rs->rules[i].match);
    a->ids[i] = rs->rules[i].port ? rs->rules[i].port->id : 0;
    a->n = i + 1;
    if (!a->rules[i].match) return -ENOMEM;
  }
  return 0;
}

void ls_port_rules_free(ls_rule *rules, uint32_t *ids, uint32_t n) {
  for (uint32_t i = 0; rules && i < n; i++) free(rules[i].match);
  free(rules);
  free(ids);
}

int ls_port_rules_get(ls_port *p, int dir, ls_rule **out, uint32_t **ids, uint32_t *n) {
  rules_arg a = {.p = p, .dir = dir};
  int r = ls_runtime_call(p->rt, cmd_rules_get, &a);
  if (r) {
    ls_port_rules_free(a.rules, a.ids, a.n);
    a.rules = NULL;
    a.ids = NULL;
    a.n = 0;
  }
  *out = a.rules;
  *ids = a.ids;
  *n = a.n;
  return r;
}

typedef struct {
  ls_port *p;
  int dir;
  ls_impair *im;
  bool set_down, down;
  ls_port_impair_info *info;
} impair_arg;

static int cmd_set_impair(ls_runtime *rt, ls_cmd *cmd) {
  impair_arg *a = cmd->arg;
  ls_port *p = a->p;
  if (!p->attached) return -EINVAL;
  if (a->dir >= 0) {
    ls_impair *old = p->imp[a->dir];
    p->imp[a->dir] = a->im;
    a->im = NULL;
    /* Back to the new settings at once: what waited on the old line goes now. */
    ls_impair_free(old, &rt->pool, a->dir == LS_DIR_IN ? impaired_in : impaired_out, p);
    p->nfed = 0;
  }
  if (a->set_down && a->down != p->imp_down) {
    bool was = ls_port_forwarding(p);
    p->imp_down = a->down;
    if (was && !ls_port_forwarding(p)) went_down(p);
    emit_port_event(p, LS_REASON_IMPAIR);
  }
  return 0;
}

int ls_port_impair_set(ls_port *p, int dir, const ls_impair_cfg *c, bool set_down, bool down) {
  impair_arg a = {.p = p, .dir = dir, .set_down = set_down, .down = down};
  if (dir >= 0 && c && ls_impair_active(c)) {
    a.im = ls_impair_new(c);
    if (!a.im) return -ENOMEM;
  }
  int r = ls_runtime_call(p->rt, cmd_set_impair, &a);
  if (a.im) ls_impair_free(a.im, NULL, NULL, NULL); /* not installed: nothing waits on it */
  return r;
}

static int cmd_impair_get(ls_runtime *rt, ls_cmd *cmd) {
  (void)rt;
  impair_arg *a = cmd->arg;
  ls_port *p = a->p;
  ls_port_impair_info *o = a->info;
  memset(o, 0, sizeof(*o));
  for (int d = 0; d < 2; d++) {
    if (!p->imp[d]) continue;
    o->on[d] = true;
    o->cfg[d] = p->imp[d]->c;
    o->st[d] = p->imp[d]->st;
    o->waiting[d] = ls_impair_waiting(p->imp[d]);
  }
  o->down = p->imp_down;
  return 0;
}

int ls_port_impair_get(ls_port *p, ls_port_impair_info *out) {
  impair_arg a = {.p = p, .info = out};
  return ls_runtime_call(p->rt, cmd_impair_get, &a);
}

typedef struct {
  ls_port *p;
  ls_port_vlan *v;
} vlan_arg;

static int cmd_set_vlan(ls_runtime *rt, ls_cmd *cmd) {
  (void)rt;
  vlan_arg *a = cmd->arg;
  ls_port *p = a->p;
  if (!p->attached) return -EINVAL;
  p->vlan = *a->v;
  /* Addresses learned in VLANs it may no longer carry: forget them. */
  ls_fdb_filter flt = {.owner = &p->owner, .vlan = -1, .dynamic = true, .statics = false};
  ls_fdb_flush(&p->sw->fdb, &flt);
  return 0;
}

int ls_port_set_vlan(ls_port *p, const ls_port_vlan *v) {
  vlan_arg a = {p, (ls_port_vlan *)v};
  return ls_runtime_call(p->rt, cmd_set_vlan, &a);
}

static int cmd_vlan_get(ls_runtime *rt, ls_cmd *cmd) {
  (void)rt;
  vlan_arg *a = cmd->arg;
  *a->v = a->p->vlan;
  return 0;
}

int ls_port_vlan_get(ls_port *p, ls_port_vlan *out) {
  vlan_arg a = {p, out};
  return ls_runtime_call(p->rt, cmd_vlan_get, &a);
}

typedef struct {
  ls_port *p;
  const uint8_t *frame;
  uint32_t len;
  bool send;
} frame_arg;

static int cmd_frame(ls_runtime *rt, ls_cmd *cmd) {
  frame_arg *a = cmd->arg;
  ls_port *p = a->p;
  if (!p->attached) return -EINVAL;
  if (a->send && !ls_port_forwarding(p)) return -ENETDOWN;
  ls_buf *b = ls_pool_get(&rt->pool, ls_pool_class_for(a->len));
  if (!b) return -ENOMEM;
  memcpy(b->data, a->frame, a->len);
  b->len = a->len;
  if (a->send) {
    ls_eth_info eth;
    uint32_t payload = ls_eth_parse(b->data, b->len, &eth) == 0 ? b->len - eth.l2_len : 0;
    p->st.sent++;
    ls_port_enqueue(p, b, payload);
    ls_buf_unref(&rt->pool, b);
  } else {
    p->st.injected++;
    ls_switch_input_from(p->sw, p, b, LS_IN_INJECTED);
    p->nfed = 0;
  }
  return 0;
}

int ls_port_inject(ls_port *p, const uint8_t *frame, uint32_t len) {
  frame_arg a = {p, frame, len, false};
  return ls_runtime_call(p->rt, cmd_frame, &a);
}

int ls_port_send(ls_port *p, const uint8_t *frame, uint32_t len) {
  frame_arg a = {p, frame, len, true};
  return ls_runtime_call(p->rt, cmd_frame, &a);
}
