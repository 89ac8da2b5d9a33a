/*
 * switch.c — broadcast domains and the per-frame forwarding decision (see switch.h).
 */
#include "switch.h"
#include "frame.h"
#include "offload.h"
#include "port.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

/* ---- events from the MAC table ---------------------------------------------------------- */

static void fdb_notify(void *ctx, enum ls_fdb_note what, const ls_fdb_entry *e, ls_fdb_owner *old,
                       uint64_t now) {
  ls_switch *sw = ctx;
  ls_event ev;
  memset(&ev, 0, sizeof(ev));
  ev.switch_id = sw->id;
  ev.port_id = LS_CONTAINER_OF(e->owner, ls_port, owner)->id;
  ls_u64_to_mac(ls_fdb_key_mac(e->key), ev.mac);
  ev.vlan = ls_fdb_key_vlan(e->key);
  switch (what) {
  case LS_FDB_LEARN:
    ev.type = LS_EV_LEARN;
    break;
  case LS_FDB_MOVE:
    ev.type = LS_EV_MOVE;
    ev.port2_id = LS_CONTAINER_OF(old, ls_port, owner)->id;
    break;
  case LS_FDB_AGE:
    ev.type = LS_EV_AGE;
    ev.value = (int64_t)(now - e->seen);
    break;
  case LS_FDB_EVICT:
    ev.type = LS_EV_EVICT;
    break;
  }
  ls_rt_emit(sw->rt, &ev);
}

/* ---- the frame path ------------------------------------------------------------------------- */

/* One received frame on its way out. A frame that carries offload work (a partial
 * checksum, or a GSO super-frame from a TAP or AF_PACKET port) goes as it is to ports
 * that take offloads; the first port that does not triggers the work, once per frame. */
typedef struct fwd {
  ls_runtime *rt;
  ls_port *in;
  ls_buf *b;
  uint32_t payload; /* bytes after the L2 header (for GSO: the segment size) */
  int seg_state;    /* 0 not needed/not done, 1 segments ready, -1 the frame is malformed */
  uint32_t nsegs;
  ls_buf *segs[LS_MAX_SEGS];
} fwd;

static uint8_t *seg_alloc(void *ctx, uint32_t len) {
  fwd *w = ctx;
  if (w->nsegs == LS_MAX_SEGS) return NULL;
  ls_buf *s = ls_pool_get(&w->rt->pool, ls_pool_class_for(len));
  if (!s) return NULL;
  w->segs[w->nsegs] = s;
  return s->data;
}

static void seg_done(void *ctx, uint32_t len) {
  fwd *w = ctx;
  w->segs[w->nsegs++]->len = len;
}

static void make_segments(fwd *w) {
  ls_buf *b = w->b;
  if (b->vnet.gso_type == LS_VNET_GSO_NONE) {
    /* Only a partial checksum: complete it in place for every port (ports with offloads
     * take a complete checksum as well, so queued copies stay consistent). */
    if (ls_offload_csum(ls_buf_frame(b), b->len, &b->vnet) < 0) {
      w->seg_state = -1;
      return;
    }
    b->vnet.flags = (uint8_t)((b->vnet.flags & ~LS_VNET_F_NEEDS_CSUM) | LS_VNET_F_DATA_VALID);
    w->seg_state = 0;
    return;
  }
  int n = ls_offload_segment(ls_buf_frame(b), b->len, &b->vnet, seg_alloc, seg_done, w);
  if (n < 0) {
    for (uint32_t i = 0; i < w->nsegs; i++) ls_buf_unref(&w->rt->pool, w->segs[i]);
    w->nsegs = 0;
    w->seg_state = -1;
    return;
  }
  w->seg_state = 1;
}

static void deliver(fwd *w, ls_port *out) {
  if (LS_LIKELY(!ls_vnet_pending(&w->b->vnet)) || out->offloads) {
    ls_port_enqueue(out, w->b, w->payload);
  } else {
    if (w->seg_state == 0) make_segments(w);
    if (w->seg_state < 0) {
      out->st.tx_queued++;
      out->st.drops.tx_error++;
      return;
    }
    if (w->seg_state == 0) {
      ls_port_enqueue(out, w->b, w->payload); /* checksum completed in place */
    } else {
      for (uint32_t i = 0; i < w->nsegs; i++) {
        ls_buf *s = w->segs[i];
        ls_eth_info eth;
        uint32_t pl = ls_eth_parse(s->data, s->len, &eth) == 0 ? s->len - eth.l2_len : s->len;
        ls_port_enqueue(out, s, pl);
      }
    }
  }
  ls_port_fed(w->in, out);
}

void ls_switch_copy_to(ls_port *out, ls_buf *b) {
  if (!ls_port_forwarding(out)) return;
  fwd w;
  w.rt = out->rt;
  w.in = out; /* a copy exerts no backpressure on anyone */
  w.b = b;
  w.nsegs = 0;
  w.seg_state = 0;
  ls_eth_info eth;
  w.payload = ls_eth_parse(ls_buf_frame(b), b->len, &eth) == 0 ? b->len - eth.l2_len : 0;
  if (b->vnet.gso_type != LS_VNET_GSO_NONE) w.payload = b->vnet.gso_size;
  deliver(&w, out);
  out->nfed = 0;
  for (uint32_t i = 0; i < w.nsegs; i++) ls_buf_unref(&w.rt->pool, w.segs[i]);
}

void ls_switch_input(ls_switch *sw, ls_port *in, ls_buf *b, bool trunc) {
  ls_runtime *rt = sw->rt;
  uint32_t len = b->len;
  in->st.rx_frames++;
  in->st.rx_bytes += len;
  if (LS_UNLIKELY(in->mirror_in != NULL)) ls_switch_copy_to(in->mirror_in, b);
  ls_eth_info eth;
  uint8_t *f = ls_buf_frame(b);
  fwd w;
  w.nsegs = 0;
  if (LS_UNLIKELY(ls_eth_parse(f, len, &eth) < 0)) {
    in->st.drops.runt++;
    goto drop;
  }
  w.payload = len - eth.l2_len;
  if (LS_UNLIKELY(b->vnet.gso_type != LS_VNET_GSO_NONE)) w.payload = b->vnet.gso_size;
  if (LS_UNLIKELY(trunc || w.payload > in->cfg.mtu)) {
    in->st.drops.oversize++;
    goto drop;
  }
  if (LS_UNLIKELY(!in->admin_up)) {
    in->st.drops.down++;
    goto drop;
  }
  if (LS_UNLIKELY(in->mirror_refs)) { /* a mirror destination carries nothing else */
    in->st.drops.no_dest++;
    goto drop;
  }
  w.rt = rt;
  w.in = in;
  w.b = b;
  w.seg_state = 0;
  const uint8_t *dst = f, *src = f + LS_ETH_ALEN;
  uint16_t vlan = 0; /* VLAN-unaware: tags pass through, one table */

  if (LS_LIKELY(!ls_mac_is_group(src))) {
    if (LS_UNLIKELY(ls_mac_is_zero(src))) {
      sw->st.zero_src++;
    } else {
      int r = ls_fdb_learn(&sw->fdb, ls_fdb_key(vlan, ls_mac_load(src)), &in->owner, rt->now);
      if (LS_UNLIKELY(r == LS_LEARN_NEW) && sw->timer_due == UINT64_MAX) ls_switch_arm_timer(sw);
    }
  } else {
    sw->st.group_src++;
  }

  if (LS_LIKELY(!ls_mac_is_group(dst))) {
    ls_fdb_entry *e = ls_fdb_lookup(&sw->fdb, ls_fdb_key(vlan, ls_mac_load(dst)));
    if (e) {
      ls_port *out = LS_CONTAINER_OF(e->owner, ls_port, owner);
      e->hits++;
      if (out == in || !ls_port_in_service(out)) {
        in->st.drops.no_dest++;
        goto drop;
      }
      sw->st.unicast++;
      deliver(&w, out);
      in->st.rx_forwarded++;
      goto done;
    }
  }

  /* Flood: group destination or unknown unicast, to every other forwarding port. */
  sw->st.flooded++;
  uint32_t n = 0;
  for (uint32_t i = 0; i < sw->nports; i++) {
    ls_port *p = sw->ports[i];
    if (p == in || !ls_port_in_service(p)) continue;
    deliver(&w, p);
    n++;
  }
  if (n)
    in->st.rx_forwarded++;
  else
    in->st.drops.no_dest++;
done:
  for (uint32_t i = 0; i < w.nsegs; i++) ls_buf_unref(&rt->pool, w.segs[i]);
drop:
  ls_buf_unref(&rt->pool, b);
}

/* ---- aging ---------------------------------------------------------------------------------- */

static void on_age_timer(uv_timer_t *t) {
  ls_switch *sw = t->data;
  ls_rt_tick(sw->rt);
  sw->timer_due = UINT64_MAX;
  ls_switch_age(sw);
  ls_rt_flush(sw->rt);
}

void ls_switch_arm_timer(ls_switch *sw) {
  ls_runtime *rt = sw->rt;
  uint64_t due = rt->manual ? UINT64_MAX : ls_fdb_next_expiry(&sw->fdb);
  if (due == sw->timer_due) return;
  if (due == UINT64_MAX) {
    uv_timer_stop(&sw->age_timer);
    sw->timer_due = UINT64_MAX;
    return;
  }
  uint64_t delay = due > rt->now ? due - rt->now : 0;
  uv_timer_start(&sw->age_timer, on_age_timer, (delay + 999999) / 1000000, 0);
  sw->timer_due = due;
}

void ls_switch_age(ls_switch *sw) {
  ls_runtime *rt = sw->rt;
  /* A manual step is one atomic jump; in real time, bound each pass so forwarding never
   * waits long behind a mass expiry (the timer re-fires at once for the rest). */
  uint32_t budget = rt->manual ? UINT32_MAX : 16384;
  ls_fdb_age(&sw->fdb, rt->now, budget);
  sw->timer_due = 0; /* force re-arm */
  ls_switch_arm_timer(sw);
}

/* ---- lifecycle ---------------------------------------------------------------------------------
 */

ls_switch *ls_switch_new(ls_runtime *rt, const ls_switch_config *cfg, int *err) {
  ls_switch *sw = calloc(1, sizeof(*sw));
  if (!sw) {
    *err = -ENOMEM;
    return NULL;
  }
  uint64_t salt = 0;
  if (getrandom(&salt, sizeof(salt), GRND_NONBLOCK) != sizeof(salt))
    salt = (uint64_t)(uintptr_t)sw ^ 0x9e3779b97f4a7c15ULL;
  int r = ls_fdb_init(&sw->fdb, cfg->max_macs, cfg->aging, cfg->evict, salt);
  if (r) {
    free(sw);
    *err = r;
    return NULL;
  }
  ls_fdb_set_notify(&sw->fdb, fdb_notify, sw);
  sw->rt = rt;
  sw->cfg = *cfg;
  sw->id = ls_runtime_new_id(rt);
  sw->timer_due = UINT64_MAX;
  return sw;
}

static void switch_free(ls_switch *sw) {
  ls_fdb_fini(&sw->fdb);
  free(sw->ports);
  free(sw);
}

static int cmd_attach(ls_runtime *rt, ls_cmd *cmd) {
  ls_switch *sw = cmd->arg;
  uint32_t n = 0;
  for (ls_switch *s = rt->switches; s; s = s->next) n++;
  if (n >= LS_MAX_SWITCHES) return -EMFILE;
  int r = uv_timer_init(&rt->loop, &sw->age_timer);
  if (r) return r;
  sw->age_timer.data = sw;
  sw->attached = true;
  sw->next = rt->switches;
  rt->switches = sw;
  return 0;
}

int ls_switch_attach(ls_switch *sw) {
  int r = ls_runtime_call(sw->rt, cmd_attach, sw);
  if (r) switch_free(sw);
  return r;
}

static void on_switch_closed(uv_handle_t *h) {
  switch_free(h->data);
}

void ls_switch_close_dp(ls_switch *sw) {
  ls_runtime *rt = sw->rt;
  while (sw->nports) ls_port_close_dp(sw->ports[sw->nports - 1]);
  for (ls_switch **pp = &rt->switches; *pp; pp = &(*pp)->next) {
    if (*pp == sw) {
      *pp = sw->next;
      break;
    }
  }
  sw->attached = false;
  uv_timer_stop(&sw->age_timer);
  uv_close((uv_handle_t *)&sw->age_timer, on_switch_closed);
}

static int cmd_close(ls_runtime *rt, ls_cmd *cmd) {
  (void)rt;
  ls_switch_close_dp(cmd->arg);
  return 0;
}

int ls_switch_close(ls_switch *sw) {
  if (!sw->attached) {
    switch_free(sw);
    return 0;
  }
  return ls_runtime_call(sw->rt, cmd_close, sw);
}

typedef struct {
  ls_switch *sw;
  const ls_switch_config *cfg;
} cfg_arg;

static int cmd_configure(ls_runtime *rt, ls_cmd *cmd) {
  cfg_arg *a = cmd->arg;
  ls_switch *sw = a->sw;
  sw->cfg = *a->cfg;
  ls_fdb_set_evict(&sw->fdb, a->cfg->evict);
  ls_fdb_set_aging(&sw->fdb, a->cfg->aging);
  ls_fdb_set_max(&sw->fdb, a->cfg->max_macs, rt->now);
  ls_switch_age(sw); /* a shorter aging time may expire entries at once */
  return 0;
}

int ls_switch_configure(ls_switch *sw, const ls_switch_config *cfg) {
  cfg_arg a = {sw, cfg};
  return ls_runtime_call(sw->rt, cmd_configure, &a);
}

/* ---- table access for the control plane --------------------------------------------------------
 */

typedef struct {
  ls_switch *sw;
  ls_fdb_record *out;
  uint32_t n;
} dump_arg;

static int cmd_dump(ls_runtime *rt, ls_cmd *cmd) {
  dump_arg *a = cmd->arg;
  ls_fdb *f = &a->sw->fdb;
  a->out = malloc(((size_t)f->count + 1) * sizeof(ls_fdb_record));
  if (!a->out) return -ENOMEM;
  uint32_t n = 0;
  LS_FDB_FOREACH(f, e) {
    ls_fdb_record *r = &a->out[n++];
    ls_u64_to_mac(ls_fdb_key_mac(e->key), r->mac);
    r->vlan = ls_fdb_key_vlan(e->key);
    r->port_id = LS_CONTAINER_OF(e->owner, ls_port, owner)->id;
    r->age = rt->now > e->seen ? rt->now - e->seen : 0;
    r->hits = e->hits;
    r->flags = e->flags;
  }
  a->n = n;
  return 0;
}

int ls_switch_fdb_dump(ls_switch *sw, ls_fdb_record **out, uint32_t *n) {
  dump_arg a = {sw, NULL, 0};
  int r = ls_runtime_call(sw->rt, cmd_dump, &a);
  *out = a.out;
  *n = a.n;
  return r;
}

typedef struct {
  ls_switch *sw;
  uint64_t key;
  ls_port *port;
  uint16_t flags;
  ls_fdb_filter flt;
} fdb_arg;

static int cmd_fdb_add(ls_runtime *rt, ls_cmd *cmd) {
  fdb_arg *a = cmd->arg;
  if (a->port->sw != a->sw || !a->port->attached) return -EINVAL;
  int r = ls_fdb_add(&a->sw->fdb, a->key, &a->port->owner, a->flags, rt->now);
  if (r == 0) ls_switch_arm_timer(a->sw);
  return r;
}

int ls_switch_fdb_add(ls_switch *sw, const uint8_t mac[6], uint16_t vlan, ls_port *p,
                      uint16_t flags) {
  fdb_arg a = {.sw = sw, .key = ls_fdb_key(vlan, ls_mac_to_u64(mac)), .port = p, .flags = flags};
  return ls_runtime_call(sw->rt, cmd_fdb_add, &a);
}

static int cmd_fdb_del(ls_runtime *rt, ls_cmd *cmd) {
  (void)rt;
  fdb_arg *a = cmd->arg;
  return ls_fdb_del(&a->sw->fdb, a->key);
}

int ls_switch_fdb_del(ls_switch *sw, const uint8_t mac[6], uint16_t vlan) {
  fdb_arg a = {.sw = sw, .key = ls_fdb_key(vlan, ls_mac_to_u64(mac))};
  return ls_runtime_call(sw->rt, cmd_fdb_del, &a);
}

static int cmd_fdb_flush(ls_runtime *rt, ls_cmd *cmd) {
  (void)rt;
  fdb_arg *a = cmd->arg;
  if (a->port && a->port->sw != a->sw) return -EINVAL;
  return (int)ls_fdb_flush(&a->sw->fdb, &a->flt);
}

int ls_switch_fdb_flush(ls_switch *sw, ls_port *p, int vlan, bool dynamic, bool statics) {
  fdb_arg a = {.sw = sw, .port = p};
  a.flt.owner = p ? &p->owner : NULL;
  a.flt.vlan = vlan;
  a.flt.dynamic = dynamic;
  a.flt.statics = statics;
  return ls_runtime_call(sw->rt, cmd_fdb_flush, &a);
}

typedef struct {
  ls_switch *sw;
  ls_switch_snapshot *out;
} snap_arg;

static int cmd_snapshot(ls_runtime *rt, ls_cmd *cmd) {
  (void)rt;
  snap_arg *a = cmd->arg;
  ls_switch *sw = a->sw;
  a->out->st = sw->st;
  a->out->fdb = sw->fdb.stats;
  a->out->fdb_entries = sw->fdb.count;
  a->out->fdb_dynamic = sw->fdb.dyn;
  a->out->fdb_static = sw->fdb.nstatic;
  a->out->fdb_memory = ls_fdb_memory(&sw->fdb);
  a->out->nports = sw->nports;
  a->out->cfg = sw->cfg;
  return 0;
}

int ls_switch_snapshot_get(ls_switch *sw, ls_switch_snapshot *out) {
  snap_arg a = {sw, out};
  memset(out, 0, sizeof(*out));
  return ls_runtime_call(sw->rt, cmd_snapshot, &a);
}
