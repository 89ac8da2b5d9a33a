/*
 * switch.c — broadcast domains and the per-frame forwarding decision (see switch.h).
 */
#include "switch.h"
#include "frame.h"
#include "offload.h"
#include "port.h"
#include "vlan.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

/* ---- events from the MAC table ---------------------------------------------------------- */

static void key_event(ls_switch *sw, ls_event *ev, uint16_t type, uint64_t key, uint32_t port_id) {
  memset(ev, 0, sizeof(*ev));
  ev->type = type;
  ev->switch_id = sw->id;
  ev->port_id = port_id;
  ls_u64_to_mac(ls_fdb_key_mac(key), ev->mac);
  ev->vlan = ls_fdb_key_vlan(key);
}

static void want_timer(ls_switch *sw, uint64_t due) {
  if (due < sw->timer_due) {
    sw->timer_due = 0; /* force re-arm */
    ls_switch_arm_timer(sw);
  }
}

/* A MAC moved: report it, or fold it into the report at the end of its window. */
static void coalesce_move(ls_switch *sw, uint64_t key, uint32_t from, uint32_t to, uint64_t now) {
  if (!sw->moves && !(sw->moves = calloc(LS_MOVE_SLOTS, sizeof(ls_move_slot)))) goto emit;
  ls_move_slot *s = &sw->moves[ls_fdb_hash(&sw->fdb, key) & (LS_MOVE_SLOTS - 1)];
  if (s->key == key && now - s->since < LS_COALESCE_NS) {
    if (s->folded++ == 0) {
      sw->moves_folding++;
      if (s->since + LS_COALESCE_NS < sw->moves_due) sw->moves_due = s->since + LS_COALESCE_NS;
      want_timer(sw, sw->moves_due);
    }
    s->from_id = from;
    s->to_id = to;
    sw->st.moves_folded++;
    return;
  }
  if (s->key && s->folded) { /* another MAC had this slot: report what it folded now */
    ls_event ev;
    key_event(sw, &ev, LS_EV_MOVE, s->key, s->to_id);
    ev.port2_id = s->from_id;
    ev.value = s->folded;
    ls_rt_emit(sw->rt, &ev);
    sw->moves_folding--;
  }
  s->key = key;
  s->since = now;
  s->folded = 0;
emit:;
  ls_event ev;
  key_event(sw, &ev, LS_EV_MOVE, key, to);
  ev.port2_id = from;
  ls_rt_emit(sw->rt, &ev);
}

/* End of the windows that are over: one event per MAC for the moves folded meanwhile. */
static void flush_moves(ls_switch *sw, uint64_t now) {
  if (!sw->moves_folding) return;
  uint64_t next = UINT64_MAX;
  for (uint32_t i = 0; i < LS_MOVE_SLOTS; i++) {
    ls_move_slot *s = &sw->moves[i];
    if (!s->folded) continue;
    if (s->since + LS_COALESCE_NS > now) {
      if (s->since + LS_COALESCE_NS < next) next = s->since + LS_COALESCE_NS;
      continue;
    }
    ls_event ev;
    key_event(sw, &ev, LS_EV_MOVE, s->key, s->to_id);
    ev.port2_id = s->from_id;
    ev.value = s->folded;
    ls_rt_emit(sw->rt, &ev);
    s->folded = 0;
    s->since = now; /* a storm that goes on is reported once per window */
    sw->moves_folding--;
  }
  sw->moves_due = next;
}

/* Learning was refused: the switch's cap (scope 0) or the port's (1) is full. */
static void table_full(ls_switch *sw, ls_port *p, uint64_t key, int scope) {
  uint64_t now = sw->rt->now;
  p->st.learn_refused++;
  if (sw->tf.since && now - sw->tf.since < LS_COALESCE_NS) {
    if (sw->tf.folded++ == 0) {
      sw->tf.due = sw->tf.since + LS_COALESCE_NS;
      want_timer(sw, sw->tf.due);
    }
    sw->tf.key = key;
    sw->tf.port_id = p->id;
    sw->tf.scope = (uint8_t)scope;
    sw->st.table_full_folded++;
    return;
  }
  sw->tf.since = now;
  ls_event ev;
  key_event(sw, &ev, LS_EV_TABLE_FULL, key, p->id);
  ev.state = (uint8_t)scope;
  ev.value = 1;
  ls_rt_emit(sw->rt, &ev);
}

static void flush_table_full(ls_switch *sw, uint64_t now) {
  if (!sw->tf.folded || sw->tf.due > now) return;
  ls_event ev;
  key_event(sw, &ev, LS_EV_TABLE_FULL, sw->tf.key, sw->tf.port_id);
  ev.state = sw->tf.scope;
  ev.value = sw->tf.folded;
  ls_rt_emit(sw->rt, &ev);
  sw->tf.folded = 0;
  sw->tf.since = now;
  sw->tf.due = UINT64_MAX;
}

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
    coalesce_move(sw, e->key, LS_CONTAINER_OF(old, ls_port, owner)->id, ev.port_id, now);
    return;
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

/*
 * One received frame on its way out. A frame that carries offload work (a partial
 * checksum, or a GSO super-frame from a TAP or AF_PACKET port) goes as it is to ports
 * that take offloads; the first port that does not triggers the work, once per variant.
 *
 * A variant is one form of the frame: as received (after ingress rules), or, on a
 * VLAN-aware switch, with the other tagging (tag pushed or popped), built the first time
 * an output port needs it and shared by every port that does.
 */
typedef struct variant {
  ls_pool *pool;
  ls_buf *b;        /* NULL: not built */
  uint32_t payload; /* bytes after the L2 header (for GSO: the segment size) */
  int seg_state;    /* 0 not needed/not done, 1 segments ready, -1 the frame is malformed */
  uint32_t nsegs;
  ls_buf *segs[LS_MAX_SEGS];
} variant;

enum { TAG_NONE, TAG_PRIO, TAG_VID }; /* the outer tag of a frame on a VLAN-aware switch */
enum { KIND_UNICAST, KIND_UNKNOWN, KIND_MCAST, KIND_BCAST };

typedef struct fwd {
  ls_runtime *rt;
  ls_switch *sw;
  ls_port *in;
  ls_explain *x; /* explaining: record, change nothing */
  bool aware;
  uint16_t vid;
  uint8_t tag; /* of orig */
  variant orig, alt, tmp;
#ifdef LS_FUZZ_PLANTED_BUG
  bool planted; /* see process() */
#endif
} fwd;

static void variant_set(variant *v, ls_pool *pool, ls_buf *b, uint32_t payload) {
  v->pool = pool;
  v->b = b;
  v->payload = payload;
  v->seg_state = 0;
  v->nsegs = 0;
}

static void variant_release(variant *v) {
  for (uint32_t i = 0; i < v->nsegs; i++) ls_buf_unref(v->pool, v->segs[i]);
  v->nsegs = 0;
  if (v->b) ls_buf_unref(v->pool, v->b);
  v->b = NULL;
}

static uint8_t *seg_alloc(void *ctx, uint32_t len) {
  variant *v = ctx;
  if (v->nsegs == LS_MAX_SEGS) return NULL;
  ls_buf *s = ls_pool_get(v->pool, ls_pool_class_for(len));
  if (!s) return NULL;
  v->segs[v->nsegs] = s;
  return s->data;
}

static void seg_done(void *ctx, uint32_t len) {
  variant *v = ctx;
  v->segs[v->nsegs++]->len = len;
}

static void make_segments(variant *v) {
  ls_buf *b = v->b;
  if (b->vnet.gso_type == LS_VNET_GSO_NONE) {
    /* Only a partial checksum: complete it in place for every port (ports with offloads
     * take a complete checksum as well, so queued copies stay consistent). */
    if (ls_offload_csum(ls_buf_frame(b), b->len, &b->vnet) < 0) {
      v->seg_state = -1;
      return;
    }
    b->vnet.flags = (uint8_t)((b->vnet.flags & ~LS_VNET_F_NEEDS_CSUM) | LS_VNET_F_DATA_VALID);
    v->seg_state = 0;
    return;
  }
  int n = ls_offload_segment(ls_buf_frame(b), b->len, &b->vnet, seg_alloc, seg_done, v);
  if (n < 0) {
    for (uint32_t i = 0; i < v->nsegs; i++) ls_buf_unref(v->pool, v->segs[i]);
    v->nsegs = 0;
    v->seg_state = -1;
    return;
  }
  v->seg_state = 1;
}

static void deliver(ls_port *in, variant *v, ls_port *out) {
  if (LS_LIKELY(!ls_vnet_pending(&v->b->vnet)) || out->offloads) {
    ls_port_enqueue(out, v->b, v->payload);
  } else {
    if (v->seg_state == 0) make_segments(v);
    if (v->seg_state < 0) {
      out->st.tx_queued++;
      out->st.drops.tx_error++;
      return;
    }
    if (v->seg_state == 0) {
      ls_port_enqueue(out, v->b, v->payload); /* checksum completed in place */
    } else {
      for (uint32_t i = 0; i < v->nsegs; i++) {
        ls_buf *s = v->segs[i];
        ls_eth_info eth;
        uint32_t pl = ls_eth_parse(s->data, s->len, &eth) == 0 ? s->len - eth.l2_len : s->len;
        ls_port_enqueue(out, s, pl);
      }
    }
  }
  ls_port_fed(in, out);
}

static uint32_t payload_of(ls_buf *b) {
  if (b->vnet.gso_type != LS_VNET_GSO_NONE) return b->vnet.gso_size;
  ls_eth_info eth;
  return ls_eth_parse(ls_buf_frame(b), b->len, &eth) == 0 ? b->len - eth.l2_len : 0;
}

void ls_switch_copy_to(ls_port *out, ls_buf *b) {
  if (!ls_port_forwarding(out)) return;
  variant v;
  ls_buf_ref(b);
  variant_set(&v, &out->rt->pool, b, payload_of(b));
  deliver(out, &v, out); /* a copy exerts no backpressure on anyone */
  out->nfed = 0;
  variant_release(&v);
}

/* ---- rules -------------------------------------------------------------------------------- */

enum { RV_PASS, RV_DROP, RV_POLICE, RV_PUNT, RV_PUNT_LIMIT, RV_NOMEM };

static bool outer_tagged(const uint8_t *f, uint32_t len) {
  if (len < LS_ETH_HLEN + LS_VLAN_HLEN) return false;
  uint16_t t = ls_get_be16(f + 12);
  return t == LS_ETH_P_8021Q || t == LS_ETH_P_8021AD || t == LS_ETH_P_QINQ1;
}

/* Hand a copy of the frame to Lua (punt or sample). False if it could not be queued. */
static bool to_lua(fwd *w, ls_port *p, int dir, uint32_t rule, uint16_t type, ls_buf *b) {
  ls_event ev;
  memset(&ev, 0, sizeof(ev));
  ev.type = type;
  ev.switch_id = w->sw->id;
  ev.port_id = p->id;
  ev.port2_id = rule + 1;
  ev.state = (uint8_t)dir;
  return ls_rt_emit_frame(w->rt, &ev, ls_buf_frame(b), b->len);
}

/* Run p's rules of direction dir on *bp (which may be replaced by an edited frame; NULL
 * only with RV_NOMEM). Records into xr/nxr when explaining (ingress: every matching rule;
 * egress: the deciding one). *decided: the rule that ended evaluation, or -1. */
static int run_rules(fwd *w, ls_port *p, int dir, ls_buf **bp, int *decided) {
  ls_explain *x = w->x;
  ls_ruleset *rs = p->rules[dir];
  ls_pool *pool = &w->rt->pool;
  uint64_t now = w->rt->now;
  *decided = -1;
  for (uint32_t i = 0; i < rs->n; i++) {
    ls_rule *r = &rs->rules[i];
    ls_buf *b = *bp;
    if (!ls_rule_match(r, ls_buf_frame(b), b->len)) continue;
    const char *effect = "matched";
    int rv = -1;
    if (!x) {
      r->matches++;
      r->bytes += b->len;
    }
    switch (r->action) {
    case LS_ACT_ALLOW:
      effect = "allowed";
      rv = RV_PASS;
      break;
    case LS_ACT_DROP:
      effect = "dropped";
      rv = RV_DROP;
      break;
    case LS_ACT_COUNT:
      effect = "counted";
      break;
    case LS_ACT_MIRROR:
      if (!r->port) {
        effect = "not copied: the mirror port is closed";
      } else {
        effect = "copied";
        if (!x) ls_switch_copy_to(r->port, b);
      }
      break;
    case LS_ACT_SET_VLAN: {
      uint16_t tpid = w->aware ? w->sw->cfg.vlan_tpid : LS_ETH_P_8021Q;
#ifdef LS_FUZZ_PLANTED_BUG
      if (!x && w->aware && dir == LS_DIR_IN && r->vid == 100 && r->pcp == 5 &&
          outer_tagged(ls_buf_frame(b), b->len))
        w->planted = true;
#endif
      if (outer_tagged(ls_buf_frame(b), b->len)) {
        *bp = ls_vlan_set(pool, b, r->vid, r->pcp);
        effect = "VLAN id rewritten";
      } else {
        *bp = ls_vlan_push(pool, b, tpid, (uint16_t)((r->pcp > 0 ? r->pcp << 13 : 0) | r->vid));
        effect = "tag pushed";
      }
      if (!*bp) rv = RV_NOMEM;
      break;
    }
    case LS_ACT_STRIP_VLAN:
      if (outer_tagged(ls_buf_frame(b), b->len)) {
        *bp = ls_vlan_pop(pool, b);
        effect = "tag removed";
        if (!*bp) rv = RV_NOMEM;
      } else {
        effect = "untagged already";
      }
      break;
    case LS_ACT_POLICE: {
      double cost = r->per_byte ? (double)b->len * 8.0 : 1.0;
      if (x ? ls_rule_peek(r, now, cost) : ls_rule_take(r, now, cost)) {
        effect = "conformed";
      } else {
        if (!x) r->limited++;
        effect = "over rate: dropped";
        rv = RV_POLICE;
      }
      break;
    }
    case LS_ACT_PUNT:
      if ((x ? ls_rule_peek(r, now, 1) : ls_rule_take(r, now, 1)) &&
          (x || to_lua(w, p, dir, i, LS_EV_PUNT, b))) {
        effect = "punted to Lua";
        rv = RV_PUNT;
      } else {
        if (!x) r->limited++;
        effect = "over the punt rate: dropped";
        rv = RV_PUNT_LIMIT;
      }
      break;
    case LS_ACT_SAMPLE:
      effect = "sampled (1 in N)";
      if (!x && ++r->seen % r->every == 0) {
        if (!ls_rule_take(r, now, 1) || !to_lua(w, p, dir, i, LS_EV_SAMPLE, b)) r->limited++;
      }
      break;
    }
    if (x && dir == LS_DIR_IN) {
      if (x->nrules < LS_EXPLAIN_RULES)
        x->rules[x->nrules] = (ls_explain_rule){(uint16_t)i, r->action, effect};
      x->nrules++;
    }
    if (rv >= 0) {
      *decided = (int)i;
      return rv;
    }
  }
  return RV_PASS;
}

/* ---- VLANs -------------------------------------------------------------------------------- */

static bool vlan_member(const ls_port *p, uint16_t vid) {
  if (p->vlan.mode == LS_VLAN_ACCESS) return p->vlan.pvid == vid;
  return vid == p->vlan.pvid || ls_vlan_bit(p->vlan.allowed, vid);
}

static bool vlan_egress_tagged(const ls_port *p, uint16_t vid) {
  if (p->vlan.mode == LS_VLAN_ACCESS) return false;
  return vid != p->vlan.pvid || p->vlan.native_tagged;
}

/* Ingress classification: the frame's VLAN (w->vid) and tag state, or why it is refused. */
static const char *classify(fwd *w, const ls_eth_info *eth) {
  const ls_port_vlan *pv = &w->in->vlan;
  uint16_t tvid = 0;
  w->tag = TAG_NONE;
  if (eth->ntags && eth->tpid[0] == w->sw->cfg.vlan_tpid) {
    tvid = eth->tci[0] & 0x0fff;
    w->tag = tvid ? TAG_VID : TAG_PRIO;
  }
  const char *how;
  if (w->tag == TAG_VID) {
    if (tvid > LS_VID_MAX) return "tagged with VLAN 4095 (reserved)";
    if (pv->mode == LS_VLAN_ACCESS ? tvid != pv->pvid
                                   : tvid != pv->pvid && !ls_vlan_bit(pv->allowed, tvid))
      return "tagged with a VLAN the port does not carry";
    w->vid = tvid;
    how = "from the tag";
  } else {
    if (!pv->pvid) return "untagged, and the trunk has no native VLAN";
    w->vid = pv->pvid;
    how =
        pv->mode == LS_VLAN_ACCESS ? "the access VLAN of the port" : "the native VLAN of the trunk";
  }
  if (w->x) {
    w->x->vid = w->vid;
    w->x->vlan_how = how;
  }
  return NULL;
}

/* The variant of the frame with the other tagging. NULL when out of memory. */
static variant *alt_variant(fwd *w) {
  if (w->alt.b) return &w->alt;
  if (w->alt.seg_state == -2) return NULL; /* failed before */
  ls_pool *pool = &w->rt->pool;
  ls_buf *b = w->orig.b;
  ls_buf_ref(b); /* the edit copies: orig stays as it is */
  if (w->tag == TAG_VID)
    b = ls_vlan_pop(pool, b);
  else if (w->tag == TAG_PRIO)
    b = ls_vlan_set(pool, b, w->vid, -1);
  else
    b = ls_vlan_push(pool, b, w->sw->cfg.vlan_tpid, w->vid);
  variant_set(&w->alt, pool, b, w->orig.payload);
  if (!b) {
    w->alt.seg_state = -2;
    return NULL;
  }
  return &w->alt;
}

/* ---- forwarding ----------------------------------------------------------------------------- */

/* Why the frame does not go to port p (NULL: it does). */
static const char *excluded(const fwd *w, const ls_port *p, int kind) {
  const ls_port *in = w->in;
  if (p == in && !in->cfg.hairpin) return "the input port (hairpin off)";
  if (!ls_port_forwarding(p)) return p->imp_down ? "link cut by an impairment" : "down";
  if (p->stp_state != LS_STP_FORWARDING) return "STP: not forwarding";
  if (p->mirror_refs) return "a mirror destination";
  if (in->cfg.isolated && p->cfg.isolated) return "isolated (so is the input port)";
  if (w->aware && !vlan_member(p, w->vid)) return "not a member of the VLAN";
  switch (kind) {
  case KIND_UNKNOWN:
    if (!p->cfg.flood) return "flood off (unknown unicast)";
    break;
  case KIND_MCAST:
    if (!p->cfg.mcast_flood) return "mcast_flood off";
    break;
  case KIND_BCAST:
    if (!p->cfg.bcast_flood) return "bcast_flood off";
    break;
  }
  return NULL;
}

static ls_explain_port *explain_port(fwd *w, const ls_port *p, const char *why) {
  ls_explain_port *xp = &w->x->out[w->x->nout++];
  memset(xp, 0, sizeof(*xp));
  xp->port_id = p->id;
  xp->why = why;
  xp->rule = -1;
  return xp;
}

static const char *egress_rule_why(int rv) {
  switch (rv) {
  case RV_DROP:
    return "dropped by an egress rule";
  case RV_POLICE:
    return "over an egress policer's rate";
  case RV_PUNT:
    return "punted to Lua by an egress rule";
  case RV_PUNT_LIMIT:
    return "over an egress punt rule's rate";
  default:
    return "out of memory";
  }
}

/* The frame goes out of port out: choose its tagging, run out's egress rules, queue it. */
static void egress(fwd *w, ls_port *out) {
  ls_explain *x = w->x;
  variant *v = &w->orig;
  bool tagged = false;
  if (w->aware) {
    tagged = vlan_egress_tagged(out, w->vid);
    if (tagged != (w->tag == TAG_VID) && !(v = alt_variant(w))) {
      if (x) {
        explain_port(w, out, "out of memory");
      } else {
        out->st.tx_queued++;
        out->st.drops.tx_error++;
      }
      return;
    }
  }
  ls_explain_port *xp = NULL;
  if (x) {
    xp = explain_port(w, out, NULL);
    xp->tagged = tagged;
    xp->vid = w->vid;
    xp->impaired = out->imp[LS_DIR_OUT] != NULL;
  }
  if (LS_UNLIKELY(out->rules[LS_DIR_OUT] != NULL)) {
    ls_buf *b = v->b;
    ls_buf_ref(b);
    int decided;
    int rv = run_rules(w, out, LS_DIR_OUT, &b, &decided);
    if (xp && decided >= 0) {
      xp->rule = decided;
      xp->action = out->rules[LS_DIR_OUT]->rules[decided].action;
    }
    if (rv != RV_PASS) {
      if (b) ls_buf_unref(&w->rt->pool, b);
      if (x) {
        xp->why = egress_rule_why(rv);
      } else {
        out->st.tx_queued++;
        out->st.drops.tx_filter++;
      }
      return;
    }
    if (b != v->b) { /* edited for this port alone */
      variant_set(&w->tmp, &w->rt->pool, b, v->payload);
      if (x) {
        if (w->tmp.payload > out->cfg.mtu) xp->why = "above the port's MTU";
      } else {
        deliver(w->in, &w->tmp, out);
      }
      variant_release(&w->tmp);
      return;
    }
    ls_buf_unref(&w->rt->pool, b);
  }
  if (x) {
    if (v->payload > out->cfg.mtu) xp->why = "above the port's MTU";
    return;
  }
  deliver(w->in, v, out);
}

static bool link_local(const uint8_t *d) {
  return d[0] == 0x01 && d[1] == 0x80 && d[2] == 0xc2 && d[3] == 0 && d[4] == 0 &&
         (d[5] & 0xf0) == 0;
}

/*
 * The forwarding decision, for real (x == NULL) or explained (x: every counter, table
 * change, rate bucket, copy and event is skipped; the reasons are recorded instead). b
 * is one reference, consumed.
 */
static void process(ls_switch *sw, ls_port *in, ls_buf *b, unsigned flags, bool trunc,
                    ls_explain *x) {
  ls_runtime *rt = sw->rt;
  fwd w;
  w.rt = rt;
  w.sw = sw;
  w.in = in;
  w.x = x;
  w.aware = sw->cfg.vlan_aware;
  w.vid = 0;
  w.tag = TAG_NONE;
  w.orig.b = w.alt.b = w.tmp.b = NULL;
#ifdef LS_FUZZ_PLANTED_BUG
  w.planted = false;
#endif
  w.orig.nsegs = w.alt.nsegs = w.tmp.nsegs = 0;
  w.alt.seg_state = 0;
  ls_eth_info eth;
  uint8_t *f = ls_buf_frame(b);
  uint32_t len = b->len, payload;
  const char *why;

#define DROP(counter, text)                                                                        \
  do {                                                                                             \
    if (x)                                                                                         \
      x->reason = (text);                                                                          \
    else                                                                                           \
      in->st.drops.counter++;                                                                      \
    goto drop;                                                                                     \
  } while (0)

  if (LS_UNLIKELY(ls_eth_parse(f, len, &eth) < 0)) DROP(runt, "runt: shorter than its header");
  payload = len - eth.l2_len;
  if (LS_UNLIKELY(b->vnet.gso_type != LS_VNET_GSO_NONE)) payload = b->vnet.gso_size;
  if (LS_UNLIKELY(trunc || payload > in->cfg.mtu)) DROP(oversize, "above the port's MTU");
  if (LS_UNLIKELY(!in->admin_up)) DROP(down, "the input port is down");
  if (LS_UNLIKELY(in->imp_down)) DROP(impair, "the input link is cut by an impairment");
  if (LS_UNLIKELY(in->mirror_refs)) DROP(no_dest, "the input port is a mirror destination");
  if (LS_UNLIKELY(link_local(f))) {
    if (sw->stp && ls_stp_is_bpdu(f, len)) { /* for our spanning tree, not for forwarding */
      if (x) {
        x->verdict = "consumed";
        x->reason = "a BPDU: taken by the switch's STP";
      } else {
        in->st.rx_bpdu++;
        ls_stp_rx(sw->stp, in, f, len);
      }
      goto drop;
    }
    if (!sw->cfg.wire)
      DROP(link_local, "link-local destination (01:80:C2:00:00:0X) and wire mode off");
  }
  if (LS_UNLIKELY(in->stp_state > LS_STP_LEARNING))
    DROP(stp, "STP: the input port is not forwarding");

  if (LS_UNLIKELY(in->rules[LS_DIR_IN] != NULL) && !(flags & LS_IN_INJECTED)) {
    int decided;
    int rv = run_rules(&w, in, LS_DIR_IN, &b, &decided);
    if (!b) { /* out of memory editing it */
      if (!x) in->st.drops.no_buffer++;
      return;
    }
#ifdef LS_FUZZ_PLANTED_BUG
    /* A bug planted for fuzz/run --planted to find (never in a normal build): on a
     * VLAN-aware switch, a tagged frame that an ingress rule retags into VLAN 100 with
     * priority 5 vanishes uncounted — the conservation audit catches it. */
    if (w.planted) {
      ls_buf_unref(&rt->pool, b);
      return;
    }
#endif
    switch (rv) {
    case RV_PASS:
      break;
    case RV_DROP:
      DROP(filter, "dropped by an ingress rule");
    case RV_POLICE:
      DROP(police, "over an ingress policer's rate");
    case RV_PUNT:
      if (x) x->verdict = "punt";
      DROP(punted, "punted to Lua by an ingress rule");
    case RV_PUNT_LIMIT:
      DROP(punt_limit, "over an ingress punt rule's rate");
    default:
      DROP(no_buffer, "out of memory");
    }
    f = ls_buf_frame(b);
    len = b->len;
    if (ls_eth_parse(f, len, &eth) < 0) DROP(runt, "runt after an ingress rule's edit");
  }
  variant_set(&w.orig, &rt->pool, b, payload);
  b = NULL;

  if (w.aware && (why = classify(&w, &eth)) != NULL) DROP(vlan, why);

  const uint8_t *dst = f, *src = f + LS_ETH_ALEN;
  if (LS_UNLIKELY(ls_mac_is_group(src))) {
    if (x)
      x->learn = "not learned: group source address";
    else
      sw->st.group_src++;
  } else if (LS_UNLIKELY(ls_mac_is_zero(src))) {
    if (x)
      x->learn = "not learned: zero source address";
    else
      sw->st.zero_src++;
  } else {
    uint64_t key = ls_fdb_key(w.vid, ls_mac_load(src));
    ls_fdb_entry *e;
    if (LS_UNLIKELY(in->cfg.locked)) {
      e = ls_fdb_lookup(&sw->fdb, key);
      if (!e || e->owner != &in->owner)
        DROP(locked, "locked port: the source MAC is not in the table on this port");
      if (x)
        x->learn = "locked port: source known on this port";
      else if (in->cfg.learning)
        ls_fdb_learn(&sw->fdb, key, &in->owner, rt->now); /* refreshes it */
    } else if (LS_UNLIKELY(!in->cfg.learning)) {
      if (x) x->learn = "not learned: learning off on the port";
    } else if (LS_UNLIKELY(in->cfg.admission != LS_ADMIT_OFF) &&
               !((e = ls_fdb_lookup(&sw->fdb, key)) && e->owner == &in->owner)) {
      /* A source not (yet) approved on this port: ask Lua, never wait for it. */
      int st = ls_admit_state(&sw->admit, key, in, rt->now);
      if (st == LS_ADMIT_REFUSED) DROP(refused, "source MAC refused by the admission policy");
      if (st == LS_ADMIT_NONE && !x) {
        if (ls_admit_set(&sw->admit, key, in, LS_ADMIT_PENDING, rt->now) == 0) {
          ls_event ev;
          key_event(sw, &ev, LS_EV_ADMIT, key, in->id);
          ls_rt_emit(rt, &ev);
          sw->st.admit_requests++;
        } else {
          sw->st.admit_overflow++;
        }
      }
      if (in->cfg.admission == LS_ADMIT_DROP)
        DROP(admission, "source MAC waiting for admission (the port drops meanwhile)");
      if (x) x->learn = "not learned: waiting for admission";
    } else if (x) {
      e = ls_fdb_lookup(&sw->fdb, key);
      if (!e) {
        bool refuse = sw->fdb.evict == LS_EVICT_REFUSE;
        x->learn = in->owner.max && in->owner.dyn >= in->owner.max && refuse
                       ? "refused: the port's cap is reached"
                   : sw->fdb.dyn >= sw->fdb.max && refuse ? "refused: the table is full"
                                                          : "new";
      } else if (e->owner == &in->owner) {
        x->learn = "refresh";
      } else {
        x->learn = (e->flags & (LS_FDB_STATIC | LS_FDB_STICKY))
                       ? "not moved: a static or sticky entry on another port"
                       : "move";
        x->learn_from = LS_CONTAINER_OF(e->owner, ls_port, owner)->id;
      }
    } else {
      int r = ls_fdb_learn(&sw->fdb, key, &in->owner, rt->now);
      if (LS_UNLIKELY(r != LS_LEARN_KNOWN)) {
        ls_port_learn_charge(in, rt->mono);
        if (r == LS_LEARN_NEW && sw->timer_due == UINT64_MAX) ls_switch_arm_timer(sw);
        if (r == LS_LEARN_REFUSED) table_full(sw, in, key, 0);
        if (r == LS_LEARN_REFUSED_OWNER) table_full(sw, in, key, 1);
      }
    }
  }

  if (LS_UNLIKELY(in->stp_state == LS_STP_LEARNING))
    DROP(stp, "STP: the input port is learning, not forwarding yet");

  int kind;
  if (LS_LIKELY(!ls_mac_is_group(dst))) {
    ls_fdb_entry *e = ls_fdb_lookup(&sw->fdb, ls_fdb_key(w.vid, ls_mac_load(dst)));
    if (e) {
      ls_port *out = LS_CONTAINER_OF(e->owner, ls_port, owner);
      if (x) {
        x->lookup = "hit";
        x->dest_id = out->id;
        x->decision = "unicast";
      } else {
        e->hits++;
      }
      if ((why = excluded(&w, out, KIND_UNICAST)) != NULL) {
        if (x) explain_port(&w, out, why);
        DROP(no_dest, "the destination port does not take it");
      }
      if (!x) sw->st.unicast++;
      egress(&w, out);
      if (!x) in->st.rx_forwarded++;
      goto done;
    }
    kind = KIND_UNKNOWN;
    if (x) x->lookup = "miss";
  } else {
    kind = ls_mac_is_broadcast(dst) ? KIND_BCAST : KIND_MCAST;
    if (x) x->lookup = kind == KIND_BCAST ? "broadcast" : "multicast";
  }

  /* Flood: group destination or unknown unicast, to every port that takes it. */
  if (x)
    x->decision = "flood";
  else
    sw->st.flooded++;
  uint32_t n = 0;
  for (uint32_t i = 0; i < sw->nports; i++) {
    ls_port *p = sw->ports[i];
    if ((why = excluded(&w, p, kind)) != NULL) {
      if (x) explain_port(&w, p, why);
      continue;
    }
    egress(&w, p);
    n++;
  }
  if (n) {
    if (!x) in->st.rx_forwarded++;
  } else {
    DROP(no_dest, "no port takes it");
  }
done:
  if (x && !x->verdict) x->verdict = "forward";
  variant_release(&w.orig);
  variant_release(&w.alt);
  return;
drop:
  if (x && !x->verdict) x->verdict = "drop";
  if (b) ls_buf_unref(&rt->pool, b);
  variant_release(&w.orig);
  variant_release(&w.alt);
#undef DROP
}

void ls_switch_input_from(ls_switch *sw, ls_port *in, ls_buf *b, unsigned flags) {
  process(sw, in, b, flags, false, NULL);
}

void ls_switch_input(ls_switch *sw, ls_port *in, ls_buf *b, bool trunc) {
  in->st.rx_frames++;
  in->st.rx_bytes += b->len;
  if (LS_UNLIKELY(in->mirror_in != NULL)) ls_switch_copy_to(in->mirror_in, b);
  if (LS_UNLIKELY(in->imp[LS_DIR_IN] != NULL) && !trunc) {
    ls_port_impair_in(in, b, payload_of(b));
    ls_buf_unref(&sw->rt->pool, b);
    return;
  }
  process(sw, in, b, 0, trunc, NULL);
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
  uint64_t due = UINT64_MAX;
  if (!rt->manual) {
    due = ls_fdb_next_expiry(&sw->fdb);
    if (sw->moves_folding && sw->moves_due < due) due = sw->moves_due;
    if (sw->tf.folded && sw->tf.due < due) due = sw->tf.due;
  }
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
  flush_moves(sw, rt->now);
  flush_table_full(sw, rt->now);
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
  ls_admit_init(&sw->admit, salt * 0x9e3779b97f4a7c15ULL, LS_ADMIT_PENDING_NS,
                cfg->aging ? cfg->aging : LS_AGING_DEFAULT);
  sw->moves_due = UINT64_MAX;
  sw->tf.due = UINT64_MAX;
  sw->rt = rt;
  sw->cfg = *cfg;
  sw->id = ls_runtime_new_id(rt);
  sw->timer_due = UINT64_MAX;
  return sw;
}

static void switch_free(ls_switch *sw) {
  ls_fdb_fini(&sw->fdb);
  ls_admit_fini(&sw->admit);
  free(sw->moves);
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
  if (sw->stp) {
    ls_stp_close(sw->stp, NULL);
    sw->stp = NULL;
  }
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
  bool revlan = sw->cfg.vlan_aware != a->cfg->vlan_aware ||
                (a->cfg->vlan_aware && sw->cfg.vlan_tpid != a->cfg->vlan_tpid);
  sw->cfg = *a->cfg;
  if (revlan) { /* learned under another classification: relearn */
    ls_fdb_filter flt = {.owner = NULL, .vlan = -1, .dynamic = true, .statics = false};
    ls_fdb_flush(&sw->fdb, &flt);
  }
  ls_fdb_set_evict(&sw->fdb, a->cfg->evict);
  ls_fdb_set_aging(&sw->fdb, a->cfg->aging);
  sw->admit.ttl_refused = a->cfg->aging ? a->cfg->aging : LS_AGING_DEFAULT;
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

/* ---- explain ------------------------------------------------------------------------------ */

typedef struct {
  ls_switch *sw;
  ls_port *in;
  const uint8_t *frame;
  uint32_t len;
  ls_explain *x;
} explain_arg;

static int cmd_explain(ls_runtime *rt, ls_cmd *cmd) {
  explain_arg *a = cmd->arg;
  ls_switch *sw = a->sw;
  if (!sw->attached || a->in->sw != sw || !a->in->attached) return -EINVAL;
  a->x->out = calloc((size_t)sw->nports + 1, sizeof(ls_explain_port));
  ls_buf *b = ls_pool_get(&rt->pool, ls_pool_class_for(a->len));
  if (!a->x->out || !b) {
    if (b) ls_buf_unref(&rt->pool, b);
    return -ENOMEM;
  }
  memcpy(b->data, a->frame, a->len);
  b->len = a->len;
  a->x->vlan_aware = sw->cfg.vlan_aware;
  process(sw, a->in, b, 0, false, a->x);
  return 0;
}

int ls_switch_explain(ls_switch *sw, ls_port *in, const uint8_t *frame, uint32_t len,
                      ls_explain *x) {
  memset(x, 0, sizeof(*x));
  explain_arg a = {sw, in, frame, len, x};
  int r = ls_runtime_call(sw->rt, cmd_explain, &a);
  if (r) {
    free(x->out);
    x->out = NULL;
  }
  return r;
}

/* ---- aging per VLAN, admission answers ------------------------------------------------- */

typedef struct {
  ls_switch *sw;
  uint16_t vlan;
  uint64_t aging;
  bool clear;
  uint16_t *vlans;
  uint64_t *agings;
  uint32_t n;
  const uint8_t *mac;
  ls_port *port;
  bool ok;
} policy_arg;

static int cmd_vlan_aging(ls_runtime *rt, ls_cmd *cmd) {
  (void)rt;
  policy_arg *a = cmd->arg;
  int r = ls_fdb_set_vlan_aging(&a->sw->fdb, a->vlan, a->aging, a->clear);
  if (r == 0) ls_switch_age(a->sw); /* a shorter time may expire entries at once */
  return r;
}

int ls_switch_vlan_aging(ls_switch *sw, uint16_t vlan, uint64_t aging_ns, bool clear) {
  policy_arg a = {.sw = sw, .vlan = vlan, .aging = aging_ns, .clear = clear};
  return ls_runtime_call(sw->rt, cmd_vlan_aging, &a);
}

static int cmd_vlan_aging_get(ls_runtime *rt, ls_cmd *cmd) {
  (void)rt;
  policy_arg *a = cmd->arg;
  const ls_fdb *f = &a->sw->fdb;
  a->n = 0;
  for (uint32_t c = 1; c < f->ncls; c++) {
    a->vlans[a->n] = f->cls[c].vlan;
    a->agings[a->n++] = f->cls[c].aging;
  }
  return 0;
}

int ls_switch_vlan_aging_get(ls_switch *sw, uint16_t *vlans, uint64_t *aging, uint32_t *n) {
  policy_arg a = {.sw = sw, .vlans = vlans, .agings = aging};
  int r = ls_runtime_call(sw->rt, cmd_vlan_aging_get, &a);
  *n = a.n;
  return r;
}

static int cmd_admit(ls_runtime *rt, ls_cmd *cmd) {
  policy_arg *a = cmd->arg;
  ls_switch *sw = a->sw;
  ls_port *p = a->port;
  if (!p->attached || p->sw != sw) return -EINVAL;
  uint64_t key = ls_fdb_key(a->vlan, ls_mac_to_u64(a->mac));
  if (a->ok) {
    ls_admit_del(&sw->admit, key);
    sw->st.admitted++;
    int r = ls_fdb_learn(&sw->fdb, key, &p->owner, rt->now);
    if (r == LS_LEARN_NEW) ls_switch_arm_timer(sw);
    if (r == LS_LEARN_REFUSED) table_full(sw, p, key, 0);
    if (r == LS_LEARN_REFUSED_OWNER) table_full(sw, p, key, 1);
    return r;
  }
  int r = ls_admit_set(&sw->admit, key, p, LS_ADMIT_REFUSED, rt->now);
  if (r) return r;
  sw->st.refused++;
  p->st.learn_refused++;
  ls_fdb_entry *e = ls_fdb_lookup(&sw->fdb, key);
  if (e && e->owner == &p->owner && !(e->flags & LS_FDB_STATIC)) ls_fdb_del(&sw->fdb, key);
  ls_event ev;
  key_event(sw, &ev, LS_EV_REFUSE, key, p->id);
  ls_rt_emit(rt, &ev);
  return 0;
}

int ls_switch_admit(ls_switch *sw, const uint8_t mac[6], uint16_t vlan, ls_port *p, bool ok) {
  policy_arg a = {.sw = sw, .vlan = vlan, .mac = mac, .port = p, .ok = ok};
  return ls_runtime_call(sw->rt, cmd_admit, &a);
}

/* ---- audit ------------------------------------------------------------------------------- */

typedef struct {
  ls_switch *sw;
  ls_audit_port *out;
  uint32_t n;
} audit_arg;

LS_NO_COVERAGE static int cmd_audit(ls_runtime *rt, ls_cmd *cmd) {
  (void)rt;
  audit_arg *a = cmd->arg;
  ls_switch *sw = a->sw;
  a->out = calloc((size_t)sw->nports + 1, sizeof(ls_audit_port));
  if (!a->out) return -ENOMEM;
  for (uint32_t i = 0; i < sw->nports; i++) {
    const ls_port *p = sw->ports[i];
    const ls_port_stats *st = &p->st;
    const ls_port_drops *d = &st->drops;
    ls_audit_port *o = &a->out[a->n++];
    o->port_id = p->id;
    o->rx_in = st->rx_frames + st->injected + st->rx_duplicated;
    o->rx_out = st->rx_forwarded + st->rx_bpdu + d->runt + d->oversize + d->down + d->no_dest +
                d->link_local + d->vlan + d->locked + d->stp + d->no_buffer + d->filter +
                d->police + d->punted + d->punt_limit + d->admission + d->refused + d->impair +
                (p->imp[LS_DIR_IN] ? ls_impair_waiting(p->imp[LS_DIR_IN]) : 0);
    o->tx_in = st->tx_queued + st->tx_duplicated;
    o->tx_out = st->tx_frames + d->tx_filter + d->tx_impair + d->tx_full + d->tx_mtu + d->tx_error +
                d->tx_down + d->no_remote + d->capture_full + p->txq_len +
                (p->imp[LS_DIR_OUT] ? ls_impair_waiting(p->imp[LS_DIR_OUT]) : 0);
  }
  return 0;
}

int ls_switch_audit(ls_switch *sw, ls_audit_port **out, uint32_t *n) {
  audit_arg a = {sw, NULL, 0};
  int r = ls_runtime_call(sw->rt, cmd_audit, &a);
  if (r) {
    free(a.out);
    a.out = NULL;
    a.n = 0;
  }
  *out = a.out;
  *n = a.n;
  return r;
}
