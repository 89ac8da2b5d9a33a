/*
 * frame_path.c — libFuzzer target: the whole frame path of one switch.
 *
 * Owns: the driver that builds, from the input, a switch with random configuration
 * (VLAN-aware or not, either tag protocol, wire mode, aging, caps, eviction) and two to
 * five socketpair ports with random settings, then runs a random sequence of what Lua can
 * do to it through the same C calls the bindings use: frames received (through the
 * receive path as a kind hands them over, or written to the peer end and read by the
 * kind), injected and sent; port flags, MTU, queue length, admin state, VLAN membership,
 * filter rules (tcpdump expressions with every action), impairments, mirrors; the MAC
 * table (static entries, deletes, flushes, admission answers, per-VLAN aging); STP on
 * and off; explain; manual clock steps; closing ports. The runtime runs inline (no
 * thread: ls_runtime_start_inline), so every step is deterministic and synchronous.
 *
 * After every step the conservation identities must hold for every port (sw:audit():
 * each frame received is forwarded or counted as a drop or still waiting, each frame
 * queued is sent or counted or still queued), explain must change no counter, and the
 * table must pass ls_fdb_check; a failure aborts, and libFuzzer reports the input.
 */
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fdb.h"
#include "filter.h"
#include "frame.h"
#include "fuzz.h"
#include "port.h"
#include "port_dgram.h"
#include "runtime.h"
#include "stp.h"
#include "switch.h"

#define MAX_PORTS 5
#define MAX_STEPS 96

static ls_runtime *rt;

typedef struct {
  ls_switch *sw;
  ls_port *ports[MAX_PORTS];
  int peer[MAX_PORTS];
  uint32_t nports;
} world;

/* ---- choices -------------------------------------------------------------------------------- */

static const uint16_t vids[] = {1, 2, 10, 20, 100, 4094};

/* A VLAN id: one of a few, or any (its two bytes as they are in the input, so that
 * libFuzzer's comparison hints can put a value the code compares with right there). */
static uint16_t pick_vid(ls_fz *z) {
  uint8_t c = fz_u8(z);
  if (c < 128) return vids[c % (sizeof(vids) / sizeof(vids[0]))];
  uint16_t v = fz_u16(z);
  return v >= 1 && v <= 4094 ? v : vids[v % (sizeof(vids) / sizeof(vids[0]))];
}

static void pick_mac(ls_fz *z, uint8_t m[6], bool src) {
  static const uint8_t ll[6] = {0x01, 0x80, 0xc2, 0, 0, 0};
  uint8_t c = fz_u8(z) % 16;
  memset(m, 0, 6);
  if (c < 10 || (src && c < 13)) { /* a handful of unicast hosts */
    m[0] = 0x02;
    m[5] = (uint8_t)(1 + c % 6);
  } else if (c == 10) {
    memset(m, 0xff, 6);
  } else if (c == 11) {
    m[0] = 0x01, m[1] = 0x00, m[2] = 0x5e, m[5] = fz_u8(z);
  } else if (c == 12) {
    memcpy(m, ll, 6);
    m[5] = fz_u8(z) & 0x1f;
  } else if (c == 13) { /* all zero */
  } else {
    for (int i = 0; i < 6; i++) m[i] = fz_u8(z);
  }
}

/* A frame: mostly well-formed Ethernet with 0-2 tags, sometimes raw bytes. */
static uint32_t build_frame(ls_fz *z, uint8_t *f, uint32_t cap) {
  uint8_t c = fz_u8(z);
  if (c >= 240) { /* raw: runts and anything */
    size_t n;
    const uint8_t *p = fz_bytes(z, fz_below(z, 96), &n);
    memcpy(f, p, n);
    return (uint32_t)n;
  }
  uint32_t off = 0;
  pick_mac(z, f, false);
  pick_mac(z, f + 6, true);
  off = 12;
  uint32_t ntags = c % 3;
  for (uint32_t i = 0; i < ntags; i++) {
    uint8_t t = fz_u8(z) % 4;
    uint16_t tpid = t == 0   ? LS_ETH_P_8021Q
                    : t == 1 ? LS_ETH_P_8021AD
                    : t == 2 ? 0x9100
                             : fz_u16(z);
    uint16_t tci = fz_bool(z) ? (uint16_t)((fz_u8(z) & 7) << 13 | pick_vid(z)) : fz_u16(z);
    ls_put_be16(f + off, tpid);
    ls_put_be16(f + off + 2, tci);
    off += 4;
  }
  static const uint16_t types[] = {0x0800, 0x86dd, 0x0806, 0x88cc, 0x0026};
  uint8_t t = fz_u8(z);
  ls_put_be16(f + off, t < 250 ? types[t % 5] : fz_u16(z));
  off += 2;
  uint32_t plen;
  uint8_t l = fz_u8(z);
  if (l < 200)
    plen = l;
  else if (l < 250)
    plen = fz_below(z, 9100);
  else
    plen = fz_below(z, cap - off + 1);
  if (plen > cap - off) plen = cap - off;
  size_t n;
  const uint8_t *p = fz_bytes(z, plen < 64 ? plen : 64, &n);
  memcpy(f + off, p, n);
  memset(f + off + n, 0, plen - n);
  return off + plen;
}

/* ---- steps ---------------------------------------------------------------------------------- */

typedef struct {
  ls_port *p;
  const uint8_t *f;
  uint32_t len;
  bool trunc;
} rx_arg;

/* As a port kind hands a received frame to its switch, then ends the batch. */
static int cmd_rx(ls_runtime *r, ls_cmd *cmd) {
  rx_arg *a = cmd->arg;
  if (!a->p->attached) return -EINVAL;
  ls_buf *b = ls_pool_get(&r->pool, ls_pool_class_for(a->len));
  if (!b) return -ENOMEM;
  memcpy(b->data, a->f, a->len);
  b->len = a->len;
  ls_switch_input(a->p->sw, a->p, b, a->trunc);
  ls_rt_flush(r);
  ls_port_batch_done(a->p);
  return 0;
}

static const char *const exprs[] = {
    "",
    "vlan",
    "vlan 10",
    "not vlan",
    "arp",
    "ip",
    "ip6",
    "udp",
    "tcp port 80",
    "ether broadcast",
    "ether multicast",
    "ether src 02:00:00:00:00:01",
    "ether dst 02:00:00:00:00:02",
    "greater 200",
    "less 100",
    "ether proto 0x88cc",
    "vlan and ip",
    "ether[0] & 1 = 0",
    "vlan 20 or vlan 100",
    "ether[12:2] = 0x88a8",
};

static ls_port *other_port(world *w, ls_fz *z, ls_port *self) {
  if (!w->nports) return NULL;
  ls_port *o = w->ports[fz_below(z, w->nports)];
  return o == self ? NULL : o;
}

static void step_rules(world *w, ls_fz *z, ls_port *p) {
  ls_rule_spec specs[4];
  uint32_t n = fz_below(z, 5);
  memset(specs, 0, sizeof(specs));
  for (uint32_t i = 0; i < n; i++) {
    ls_rule_spec *s = &specs[i];
    s->match = exprs[fz_below(z, sizeof(exprs) / sizeof(exprs[0]))];
    s->action = (int)fz_below(z, LS_ACT_SAMPLE + 1);
    s->pcp = -1;
    switch (s->action) {
    case LS_ACT_MIRROR:
      s->port = other_port(w, z, p);
      if (!s->port) s->action = LS_ACT_COUNT;
      break;
    case LS_ACT_SET_VLAN:
      s->vid = pick_vid(z);
      s->pcp = (int8_t)(fz_u8(z) % 9) - 1;
      break;
    case LS_ACT_POLICE:
      s->per_byte = fz_bool(z);
      s->rate = 1 + fz_u16(z);
      s->burst = (1 + fz_u8(z)) * (s->per_byte ? 8000.0 : 1.0);
      break;
    case LS_ACT_SAMPLE:
      s->every = 1 + fz_u8(z) % 4;
      /* fall through */
    case LS_ACT_PUNT:
      s->rate = fz_bool(z) ? 1e6 : 1;
      s->burst = 1 + fz_u8(z) % 8;
      break;
    default:
      break;
    }
  }
  char err[256];
  uint32_t bad;
  ls_ruleset *rs = ls_ruleset_new(specs, n, err, sizeof(err), &bad);
  FZ_CHECK(rs != NULL, "rule %u: %s", bad, err);
  if (ls_port_set_rules(p, fz_below(z, 2), rs) != 0) ls_ruleset_free(rs);
}

static void step_impair(ls_fz *z, ls_port *p) {
  uint8_t c = fz_u8(z);
  if (c % 4 == 0) { /* off, both directions, link restored */
    ls_port_impair_set(p, LS_DIR_IN, NULL, false, false);
    ls_port_impair_set(p, LS_DIR_OUT, NULL, true, false);
    return;
  }
  if (c % 4 == 1) { /* cut or restore the link only */
    ls_port_impair_set(p, -1, NULL, true, fz_bool(z));
    return;
  }
  static const double probs[] = {0, 0, 0.25, 0.5, 1};
  ls_impair_cfg k;
  memset(&k, 0, sizeof(k));
  if (fz_bool(z)) {
    k.ge = true;
    k.ge_p = probs[fz_below(z, 5)];
    k.ge_r = probs[fz_below(z, 5)];
    k.ge_bad_loss = probs[fz_below(z, 5)];
    k.ge_good_loss = probs[fz_below(z, 5)];
  } else {
    k.loss = probs[fz_below(z, 5)];
  }
  k.dup = probs[fz_below(z, 5)];
  k.reorder = probs[fz_below(z, 5)];
  k.reorder_ns = k.reorder > 0 ? (uint64_t)fz_u16(z) * 1000 : 0;
  k.corrupt = probs[fz_below(z, 5)];
  static const uint64_t delays[] = {0, 0, 1000000, 50000000, LS_NSEC, 60 * LS_NSEC};
  k.delay_ns = delays[fz_below(z, 6)];
  k.jitter_ns = delays[fz_below(z, 6)];
  k.rate_bps = fz_bool(z) ? 1000 + (uint64_t)fz_u16(z) * 1000 : 0;
  k.limit = 1 + fz_below(z, 16);
  k.mtu = fz_bool(z) ? LS_MTU_MIN + fz_below(z, 1500) : 0;
  k.seed = fz_u8(z);
  int dir = (int)fz_below(z, 3);
  bool set_down = fz_bool(z), down = fz_bool(z);
  for (int d = 0; d < 2; d++)
    if (dir == 2 || dir == d) ls_port_impair_set(p, d, &k, set_down, down);
}

static void step_vlan(ls_fz *z, ls_port *p) {
  ls_port_vlan v;
  memset(&v, 0, sizeof(v));
  if (fz_bool(z)) {
    v.mode = LS_VLAN_ACCESS;
    v.pvid = pick_vid(z);
  } else {
    v.mode = LS_VLAN_TRUNK;
    v.pvid = fz_bool(z) ? pick_vid(z) : 0;
    v.native_tagged = fz_bool(z);
    uint32_t n = fz_below(z, 6);
    for (uint32_t i = 0; i < n; i++) {
      uint16_t a = pick_vid(z), b = a;
      if (fz_u8(z) > 230) b = (uint16_t)(a + fz_below(z, (uint32_t)(4095 - a)));
      for (uint32_t x = a; x <= b; x++) v.allowed[x >> 6] |= 1ULL << (x & 63);
    }
  }
  ls_port_set_vlan(p, &v);
}

static void random_port_config(ls_fz *z, ls_port_config *c) {
  static const uint32_t mtus[] = {LS_MTU_MIN, 100, 576, 1500, 1500, 9000, LS_MTU_MAX};
  c->mtu = mtus[fz_below(z, 7)];
  c->txqlen = 1 + fz_below(z, 32);
  uint8_t f = fz_u8(z);
  c->learning = !(f & 1);
  c->flood = !(f & 2);
  c->mcast_flood = !(f & 4);
  c->bcast_flood = !(f & 8);
  c->isolated = f & 16;
  c->hairpin = f & 32;
  c->locked = f & 64;
  c->admission = (f & 128) ? (uint8_t)fz_below(z, 3) : LS_ADMIT_OFF;
  c->max_macs = fz_bool(z) ? fz_below(z, 6) : 0;
  c->stp_edge = fz_bool(z);
}

static void random_switch_config(ls_fz *z, ls_switch_config *c) {
  static const uint64_t agings[] = {0, LS_NSEC, 10 * LS_NSEC, LS_AGING_DEFAULT};
  c->aging = agings[fz_below(z, 4)];
  c->max_macs = 1 + fz_below(z, 12);
  c->evict = (int)fz_below(z, 3);
  c->vlan_aware = fz_bool(z);
  c->vlan_tpid = fz_bool(z) ? LS_ETH_P_8021AD : LS_ETH_P_8021Q;
  c->wire = fz_bool(z);
}

static void remove_port(world *w, uint32_t i) {
  close(w->peer[i]); /* our dup of the peer end */
  ls_port_close(w->ports[i]);
  w->ports[i] = w->ports[w->nports - 1];
  w->peer[i] = w->peer[w->nports - 1];
  w->nports--;
}

static void drain_peers(world *w) {
  uint8_t buf[LS_FRAME_MAX];
  for (uint32_t i = 0; i < w->nports; i++)
    while (recv(w->peer[i], buf, sizeof(buf), MSG_DONTWAIT) > 0) {
    }
  ls_runtime_poll(rt);
}

static void drain_events(void) {
  ls_event ev[256];
  uint64_t lost;
  uint32_t n;
  while ((n = ls_runtime_events(rt, ev, 256, &lost)) > 0)
    for (uint32_t i = 0; i < n; i++) ls_runtime_blob_free(rt, ls_event_blob(&ev[i]));
}

/* ---- checks --------------------------------------------------------------------------------- */

LS_NO_COVERAGE static void audit(world *w) {
  ls_audit_port *a;
  uint32_t n;
  FZ_CHECK(ls_switch_audit(w->sw, &a, &n) == 0, "audit failed");
  FZ_CHECK(n == w->nports, "%u ports audited, %u open", n, w->nports);
  for (uint32_t i = 0; i < n; i++) {
    FZ_CHECK(a[i].rx_in == a[i].rx_out, "port %u receive: %llu in, %llu accounted for",
             a[i].port_id, (unsigned long long)a[i].rx_in, (unsigned long long)a[i].rx_out);
    FZ_CHECK(a[i].tx_in == a[i].tx_out, "port %u send: %llu in, %llu accounted for", a[i].port_id,
             (unsigned long long)a[i].tx_in, (unsigned long long)a[i].tx_out);
  }
  free(a);
  const char *bad = ls_fdb_check(&w->sw->fdb); /* inline runtime: this thread is the data plane */
  FZ_CHECK(bad == NULL, "fdb: %s", bad);
}

static void step_explain(world *w, ls_fz *z, ls_port *p, const uint8_t *f, uint32_t len) {
  ls_port_stats before[MAX_PORTS], after[MAX_PORTS];
  for (uint32_t i = 0; i < w->nports; i++) ls_port_stats_get(w->ports[i], &before[i]);
  ls_switch_stats sb = w->sw->st;
  ls_explain x;
  memset(&x, 0, sizeof(x));
  if (ls_switch_explain(w->sw, p, f, len, &x) == 0) {
    FZ_CHECK(x.verdict != NULL, "explain: no verdict");
    free(x.out);
  }
  for (uint32_t i = 0; i < w->nports; i++) {
    ls_port_stats_get(w->ports[i], &after[i]);
    FZ_CHECK(memcmp(&before[i], &after[i], sizeof(after[i])) == 0,
             "explain changed port %u's counters", w->ports[i]->id);
  }
  FZ_CHECK(memcmp(&sb, &w->sw->st, sizeof(sb)) == 0, "explain changed the switch's counters");
  (void)z;
}

/* ---- the target ----------------------------------------------------------------------------- */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static uint8_t frame[LS_FRAME_MAX];
  if (!rt) {
    rt = ls_runtime_new(4096);
    if (!rt || ls_runtime_start_inline(rt) != 0 || ls_runtime_set_manual(rt, true) != 0) abort();
  }
  rt->manual_now = 1000 * LS_NSEC; /* every input starts at the same instant */
  ls_fz z = {data, size};
  world w;
  memset(&w, 0, sizeof(w));

  ls_switch_config sc;
  memset(&sc, 0, sizeof(sc));
  snprintf(sc.name, sizeof(sc.name), "fz");
  random_switch_config(&z, &sc);
  int err = 0;
  w.sw = ls_switch_new(rt, &sc, &err);
  FZ_CHECK(w.sw != NULL, "switch: %d", err);
  FZ_CHECK(ls_switch_attach(w.sw) == 0, "attach");
  uint32_t want = 2 + fz_below(&z, MAX_PORTS - 1);
  for (uint32_t i = 0; i < want; i++) {
    ls_port_config pc;
    ls_port_config_defaults(&pc);
    snprintf(pc.name, sizeof(pc.name), "p%u", i);
    random_port_config(&z, &pc);
    char where[128];
    ls_port *p = ls_port_socketpair_new(rt, &pc, &err, where, sizeof(where));
    FZ_CHECK(p != NULL, "socketpair: %s", where);
    int peer = dup(ls_port_socketpair_peer_fd(p));
    FZ_CHECK(peer >= 0, "dup");
    FZ_CHECK(ls_port_add(w.sw, p) == 0, "port add");
    w.ports[w.nports] = p;
    w.peer[w.nports++] = peer;
  }

  for (int step = 0; step < MAX_STEPS && fz_more(&z) && w.nports > 0; step++) {
    uint32_t pi = fz_below(&z, w.nports);
    ls_port *p = w.ports[pi];
    uint8_t op = fz_u8(&z) % 32;
    if (op < 10) op = 0; /* a third of the steps are frames */
    switch (op) {
    case 0: { /* a frame from the peer, as the kind hands it over */
      rx_arg a = {p, frame, build_frame(&z, frame, LS_FRAME_MAX), false};
      a.trunc = a.len > 0 && fz_u8(&z) == 0xff;
      ls_runtime_call(rt, cmd_rx, &a);
      break;
    }
    case 10: { /* a frame through the socket: the kind's own receive path */
      uint32_t len = build_frame(&z, frame, LS_FRAME_MAX);
      if (send(w.peer[pi], frame, len, MSG_DONTWAIT) < 0) { /* full: fine */
      }
      ls_runtime_poll(rt);
      break;
    }
    case 11: {
      uint32_t len = build_frame(&z, frame, LS_FRAME_MAX);
      if (len >= LS_ETH_HLEN) ls_port_inject(p, frame, len);
      break;
    }
    case 12: {
      uint32_t len = build_frame(&z, frame, LS_FRAME_MAX);
      if (len >= LS_ETH_HLEN) ls_port_send(p, frame, len);
      break;
    }
    case 13:
    case 14:
      step_rules(&w, &z, p);
      break;
    case 15:
      step_impair(&z, p);
      break;
    case 16:
    case 17:
      step_vlan(&z, p);
      break;
    case 18: {
      static const uint64_t steps[] = {0, 1000000, 10000000, LS_NSEC, 11 * LS_NSEC, 301 * LS_NSEC};
      uint8_t c = fz_u8(&z);
      ls_runtime_advance(rt, c < 240 ? steps[c % 6] : (uint64_t)fz_u32(&z) * 1000);
      break;
    }
    case 19:
      ls_port_set_admin(p, fz_bool(&z));
      break;
    case 20: {
      ls_port_config pc = p->cfg;
      random_port_config(&z, &pc);
      ls_port_configure(p, &pc);
      break;
    }
    case 21: {
      ls_switch_config c = w.sw->cfg;
      random_switch_config(&z, &c);
      ls_switch_configure(w.sw, &c);
      break;
    }
    case 22: {
      uint8_t m[6];
      pick_mac(&z, m, true);
      static const uint16_t flags[] = {0, LS_FDB_STATIC, LS_FDB_STICKY};
      if (!ls_mac_is_group(m) && !ls_mac_is_zero(m))
        ls_switch_fdb_add(w.sw, m, fz_bool(&z) ? 0 : pick_vid(&z), p, flags[fz_below(&z, 3)]);
      break;
    }
    case 23: {
      uint8_t m[6];
      pick_mac(&z, m, true);
      ls_switch_fdb_del(w.sw, m, fz_bool(&z) ? 0 : pick_vid(&z));
      break;
    }
    case 24: {
      uint8_t c = fz_u8(&z);
      ls_switch_fdb_flush(w.sw, (c & 1) ? p : NULL, (c & 2) ? pick_vid(&z) : -1, c & 4, c & 8);
      break;
    }
    case 25:
      ls_port_set_mirror(p, fz_bool(&z) ? other_port(&w, &z, p) : NULL,
                         fz_bool(&z) ? other_port(&w, &z, p) : NULL);
      break;
    case 26: {
      uint8_t m[6];
      pick_mac(&z, m, true);
      ls_switch_admit(w.sw, m, fz_bool(&z) ? 0 : pick_vid(&z), p, fz_bool(&z));
      break;
    }
    case 27: {
      static const uint64_t agings[] = {0, LS_NSEC, 5 * LS_NSEC, 100 * LS_NSEC};
      ls_switch_vlan_aging(w.sw, pick_vid(&z), agings[fz_below(&z, 4)], fz_bool(&z));
      break;
    }
    case 28: {
      if (fz_bool(&z)) {
        ls_switch_stp(w.sw, NULL);
        break;
      }
      ls_stp_config c;
      memset(&c, 0, sizeof(c));
      c.priority = (uint16_t)(4096 * fz_below(&z, 16));
      c.hello = 2 * 256;
      c.max_age = 20 * 256;
      c.fwd_delay = (uint32_t)(13 + fz_below(&z, 3800));
      c.mac[0] = 0x02;
      c.mac[5] = 0x99;
      ls_switch_stp(w.sw, &c);
      break;
    }
    case 29: {
      uint32_t len = build_frame(&z, frame, LS_FRAME_MAX);
      step_explain(&w, &z, p, frame, len);
      break;
    }
    case 30:
      drain_peers(&w);
      break;
    case 31:
      if (fz_u8(&z) < 64) remove_port(&w, pi);
      break;
    }
    drain_events();
    audit(&w);
  }

  while (w.nports) remove_port(&w, w.nports - 1);
  ls_switch_close(w.sw);
  drain_peers(&w);
  drain_events();
  return 0;
}
