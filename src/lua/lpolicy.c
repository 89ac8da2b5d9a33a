/*
 * lpolicy.c — the policy half of the port and switch objects: port flags, VLAN
 * membership, filter rules, impairments, frames from Lua (inject, send) and sw:explain().
 *
 * Owns: reading these settings from Lua tables (every value checked before anything is
 * sent to the data plane, so a bad one raises an error naming it and changes nothing),
 * and turning what the data plane reports back into tables. The mechanisms themselves
 * live in switch.c (decision), filter.c (rules), impair.c and vlan.c.
 */
#include "filter.h"
#include "frame.h"
#include "impair.h"
#include "lutil.h"
#include "port.h"
#include "stp.h"
#include "vlan.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- port flags ------------------------------------------------------------------------------ */

const char *const lsl_flag_names[] = {"learning", "flood",   "mcast_flood", "bcast_flood",
                                      "isolated", "hairpin", "locked",      NULL};

static bool *flag_ptr(ls_port_config *c, int i) {
  bool *f[] = {&c->learning, &c->flood,   &c->mcast_flood, &c->bcast_flood,
               &c->isolated, &c->hairpin, &c->locked};
  return f[i];
}

static const char *const admission_names[] = {"off", "flood", "drop", NULL};

void lsl_read_flags(lua_State *L, int idx, const char *fn, ls_port_config *c) {
  for (int i = 0; lsl_flag_names[i]; i++)
    *flag_ptr(c, i) = lsl_opt_boolean(L, idx, fn, lsl_flag_names[i], *flag_ptr(c, i));
  c->max_macs = (uint32_t)lsl_opt_integer(L, idx, fn, "max_macs", c->max_macs, 0, LS_FDB_MAX_MACS);
  c->learn_limit =
      (uint32_t)lsl_opt_integer(L, idx, fn, "learn_limit", c->learn_limit, 0, LS_LEARN_LIMIT_MAX);
  c->learn_burst =
      (uint32_t)lsl_opt_integer(L, idx, fn, "learn_burst", c->learn_burst, 1, LS_LEARN_LIMIT_MAX);
  c->stp_cost = (uint32_t)lsl_opt_integer(L, idx, fn, "stp_cost", c->stp_cost, 1, 200000000);
  lua_Integer prio = lsl_opt_integer(L, idx, fn, "stp_priority", c->stp_priority, 0, 240);
  if (prio % 16)
    lsl_opt_error(L, fn, "stp_priority", "a multiple of 16 (0 to 240) expected, got %d", (int)prio);
  c->stp_priority = (uint8_t)prio;
  c->stp_edge = lsl_opt_boolean(L, idx, fn, "stp_edge", c->stp_edge);
  /* admission: "flood" or "drop" (what frames from a MAC waiting for approval do), false */
  if (lsl_field(L, idx, "admission") == LUA_TBOOLEAN) {
    if (lua_toboolean(L, -1))
      lsl_opt_error(L, fn, "admission", "\"flood\", \"drop\" or false expected, got true");
    c->admission = LS_ADMIT_OFF;
    lua_pop(L, 1);
  } else {
    lua_pop(L, 1);
    c->admission = (uint8_t)lsl_opt_enum(L, idx, fn, "admission", c->admission, admission_names);
  }
}

void lsl_push_flags(lua_State *L, int t, const ls_port_config *c) {
  t = lua_absindex(L, t);
  ls_port_config copy = *c;
  for (int i = 0; lsl_flag_names[i]; i++) {
    lua_pushboolean(L, *flag_ptr(&copy, i));
    lua_setfield(L, t, lsl_flag_names[i]);
  }
  lsl_setint(L, t, "max_macs", c->max_macs);
  lsl_setint(L, t, "learn_limit", c->learn_limit);
  lsl_setint(L, t, "learn_burst", c->learn_burst);
  lsl_setint(L, t, "stp_cost", c->stp_cost);
  lsl_setint(L, t, "stp_priority", c->stp_priority);
  lua_pushboolean(L, c->stp_edge);
  lua_setfield(L, t, "stp_edge");
  if (c->admission)
    lua_pushstring(L, admission_names[c->admission]);
  else
    lua_pushboolean(L, false);
  lua_setfield(L, t, "admission");
}

/* ---- VLAN membership ------------------------------------------------------------------------ */

static uint16_t check_vid(lua_State *L, const char *fn, const char *key, lua_Integer v) {
  if (v < 1 || v > LS_VID_MAX)
    lsl_opt_error(L, fn, key, "a VLAN id between 1 and 4094 expected, got %lld", (long long)v);
  return (uint16_t)v;
}

/* One item of an allowed list: 10 or "20-30". */
static void read_allowed_item(lua_State *L, const char *fn, int item, uint64_t *set) {
  char key[48];
  snprintf(key, sizeof(key), "allowed[%d]", item);
  if (lua_isinteger(L, -1)) {
    uint16_t v = check_vid(L, fn, key, lua_tointeger(L, -1));
    set[v >> 6] |= 1ULL << (v & 63);
    return;
  }
  long a, b;
  char end;
  if (lua_type(L, -1) == LUA_TSTRING &&
      sscanf(lua_tostring(L, -1), "%ld-%ld%c", &a, &b, &end) == 2) {
    check_vid(L, fn, key, a);
    check_vid(L, fn, key, b);
    if (a > b) lsl_opt_error(L, fn, key, "range %ld-%ld is backwards", a, b);
    for (long v = a; v <= b; v++) set[v >> 6] |= 1ULL << (v & 63);
    return;
  }
  lsl_opt_error(L, fn, key, "a VLAN id or a range like \"20-30\" expected, got %s",
                lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : luaL_typename(L, -1));
}

/* A VLAN setting: a number (access VLAN) or { mode =, pvid =, allowed =, native =,
 * native_tagged = }. */
void lsl_read_vlan(lua_State *L, int idx, const char *fn, ls_port_vlan *v) {
  idx = lua_absindex(L, idx);
  memset(v, 0, sizeof(*v));
  if (lua_isinteger(L, idx)) {
    v->mode = LS_VLAN_ACCESS;
    v->pvid = check_vid(L, fn, "vlan", lua_tointeger(L, idx));
    return;
  }
  if (lua_type(L, idx) != LUA_TTABLE)
    luaL_error(L,
               "%s: a VLAN id or a table { mode =, pvid =, allowed =, native = } expected, got %s",
               fn, luaL_typename(L, idx));
  static const char *const known[] = {"mode", "pvid", "allowed", "native", "native_tagged", NULL};
  lsl_check_known(L, idx, fn, known);
  static const char *const modes[] = {"access", "trunk", NULL};
  bool has_allowed = lsl_field(L, idx, "allowed") != LUA_TNIL;
  lua_pop(L, 1);
  v->mode = (uint8_t)lsl_opt_enum(L, idx, fn, "mode", has_allowed ? LS_VLAN_TRUNK : LS_VLAN_ACCESS,
                                  modes);
  if (v->mode == LS_VLAN_ACCESS) {
    for (const char *const *k = (const char *const[]){"allowed", "native", "native_tagged", NULL};
         *k; k++) {
      if (lsl_field(L, idx, *k) != LUA_TNIL) lsl_opt_error(L, fn, *k, "only for mode \"trunk\"");
      lua_pop(L, 1);
    }
    v->pvid =
        check_vid(L, fn, "pvid", lsl_opt_integer(L, idx, fn, "pvid", 1, LLONG_MIN, LLONG_MAX));
    return;
  }
  if (lsl_field(L, idx, "pvid") != LUA_TNIL)
    lsl_opt_error(L, fn, "pvid", "a trunk's untagged VLAN is 'native'");
  lua_pop(L, 1);
  int t = lsl_field(L, idx, "native");
  if (t == LUA_TBOOLEAN && !lua_toboolean(L, -1)) {
    v->pvid = 0;
  } else if (t != LUA_TNIL) {
    if (!lua_isinteger(L, -1)) lsl_opt_error(L, fn, "native", "a VLAN id or false expected");
    v->pvid = check_vid(L, fn, "native", lua_tointeger(L, -1));
  }
  lua_pop(L, 1);
  v->native_tagged = lsl_opt_boolean(L, idx, fn, "native_tagged", false);
  t = lsl_field(L, idx, "allowed");
  if (t == LUA_TNUMBER || t == LUA_TSTRING) {
    read_allowed_item(L, fn, 1, v->allowed);
  } else if (t == LUA_TTABLE) {
    lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
    for (lua_Integer i = 1; i <= n; i++) {
      lua_rawgeti(L, -1, i);
      read_allowed_item(L, fn, (int)i, v->allowed);
      lua_pop(L, 1);
    }
  } else if (t != LUA_TNIL) {
    lsl_opt_error(L, fn, "allowed", "a list of VLAN ids and ranges expected, got %s",
                  luaL_typename(L, -1));
  }
  lua_pop(L, 1);
}

static void push_vlan(lua_State *L, const ls_port_vlan *v) {
  lua_createtable(L, 0, 5);
  lua_pushstring(L, v->mode == LS_VLAN_ACCESS ? "access" : "trunk");
  lua_setfield(L, -2, "mode");
  if (v->mode == LS_VLAN_ACCESS) {
    lua_pushinteger(L, v->pvid);
    lua_setfield(L, -2, "pvid");
    return;
  }
  if (v->pvid) {
    lua_pushinteger(L, v->pvid);
    lua_setfield(L, -2, "native");
  }
  lua_pushboolean(L, v->native_tagged);
  lua_setfield(L, -2, "native_tagged");
  lua_newtable(L);
  int n = 0;
  for (int vid = 1; vid <= LS_VID_MAX; vid++) {
    if (!ls_vlan_bit(v->allowed, (uint16_t)vid)) continue;
    lua_pushinteger(L, vid);
    lua_rawseti(L, -2, ++n);
  }
  lua_setfield(L, -2, "allowed");
}

/* p:vlan() -> the port's VLAN membership; p:vlan(10) / p:vlan { mode = "trunk", ... } -> p */
static int p_vlan(lua_State *L) {
  lsl_port *p = lsl_check_port(L, 1);
  int err;
  if (lua_isnone(L, 2)) {
    ls_port_vlan v;
    err = ls_port_vlan_get(p->p, &v);
    if (err) return lsl_fail(L, err, "vlan");
    push_vlan(L, &v);
    return 1;
  }
  ls_port_vlan v;
  lsl_read_vlan(L, 2, "vlan", &v);
  err = ls_port_set_vlan(p->p, &v);
  if (err) return lsl_fail(L, err, "vlan");
  lua_settop(L, 1);
  return 1;
}

/* ---- filters --------------------------------------------------------------------------------- */

static const char *const action_names[] = {"allow",      "drop",   "count", "mirror", "set_vlan",
                                           "strip_vlan", "police", "punt",  "sample", NULL};
static const char *const dir_names[] = {"in", "out", NULL};

/* Read rule i (the table on top of the stack) into spec. */
static void read_rule(lua_State *L, lsl_port *self, int i, ls_rule_spec *s) {
  char fn[64];
  snprintf(fn, sizeof(fn), "filter: rule %d", i);
  int idx = lua_gettop(L);
  if (lua_type(L, idx) != LUA_TTABLE)
    luaL_error(L, "%s: a table { match =, action = } expected, got %s", fn, luaL_typename(L, idx));
  static const char *const known[] = {"match", "action", "port",  "vid",   "pcp", "pps",
                                      "bps",   "rate",   "burst", "every", NULL};
  lsl_check_known(L, idx, fn, known);
  memset(s, 0, sizeof(*s));
  s->pcp = -1;
  s->match = lsl_opt_string(L, idx, fn, "match", NULL, 8192);
  if (lsl_field(L, idx, "action") == LUA_TNIL)
    luaL_error(L,
               "%s: missing option 'action' (allow, drop, count, mirror, set_vlan, strip_vlan, "
               "police, punt, sample)",
               fn);
  lua_pop(L, 1);
  s->action = lsl_opt_enum(L, idx, fn, "action", 0, action_names);
  /* Which options each action takes; any other is an error. */
  static const char *const args[][5] = {
      [LS_ACT_ALLOW] = {NULL},
      [LS_ACT_DROP] = {NULL},
      [LS_ACT_COUNT] = {NULL},
      [LS_ACT_MIRROR] = {"port", NULL},
      [LS_ACT_SET_VLAN] = {"vid", "pcp", NULL},
      [LS_ACT_STRIP_VLAN] = {NULL},
      [LS_ACT_POLICE] = {"pps", "bps", "burst", NULL},
      [LS_ACT_PUNT] = {"rate", "burst", NULL},
      [LS_ACT_SAMPLE] = {"every", "rate", "burst", NULL},
  };
  for (int k = 2; known[k]; k++) {
    bool ok = false;
    for (int j = 0; args[s->action][j]; j++) ok |= strcmp(args[s->action][j], known[k]) == 0;
    if (!ok && lsl_field(L, idx, known[k]) != LUA_TNIL)
      lsl_opt_error(L, fn, known[k], "not an option of action \"%s\"", action_names[s->action]);
    if (!ok) lua_pop(L, 1);
  }
  switch (s->action) {
  case LS_ACT_MIRROR: {
    if (lsl_field(L, idx, "port") == LUA_TNIL) luaL_error(L, "%s: missing option 'port'", fn);
    lsl_port *to = lsl_test_port(L, -1);
    if (!to) lsl_opt_error(L, fn, "port", "a port expected, got %s", luaL_typename(L, -1));
    if (to->closed) lsl_opt_error(L, fn, "port", "port '%s' is closed", to->name);
    if (to == self) lsl_opt_error(L, fn, "port", "a port cannot mirror to itself");
    if (to->sw != self->sw)
      lsl_opt_error(L, fn, "port", "port '%s' belongs to another switch", to->name);
    s->port = to->p;
    lua_pop(L, 1);
    break;
  }
  case LS_ACT_SET_VLAN:
    if (lsl_field(L, idx, "vid") == LUA_TNIL) luaL_error(L, "%s: missing option 'vid'", fn);
    lua_pop(L, 1);
    s->vid = check_vid(L, fn, "vid", lsl_opt_integer(L, idx, fn, "vid", 0, LLONG_MIN, LLONG_MAX));
    s->pcp = (int8_t)lsl_opt_integer(L, idx, fn, "pcp", -1, 0, 7);
    break;
  case LS_ACT_POLICE: {
    double pps = lsl_opt_number(L, idx, fn, "pps", 0, 0, 1e12);
    double bps = lsl_opt_number(L, idx, fn, "bps", 0, 0, 1e13);
    if ((pps > 0) == (bps > 0))
      luaL_error(L,
                 "%s: a police rule needs a positive 'pps' (frames/s) or 'bps' (bits/s), "
                 "not both",
                 fn);
    s->per_byte = bps > 0;
    s->rate = s->per_byte ? bps : pps;
    /* burst: frames, or bytes; by default a tenth of a second, and room for a large frame */
    double def = s->per_byte ? fmax(bps / 80.0, 3028) : fmax(pps / 10.0, 1);
    double burst = lsl_opt_number(L, idx, fn, "burst", def, 1, 1e13);
    s->burst = s->per_byte ? burst * 8.0 : burst;
    break;
  }
  case LS_ACT_PUNT:
  case LS_ACT_SAMPLE: {
    if (s->action == LS_ACT_SAMPLE) {
      if (lsl_field(L, idx, "every") == LUA_TNIL)
        luaL_error(L, "%s: missing option 'every' (sample 1 in every N frames)", fn);
      lua_pop(L, 1);
      s->every = (uint32_t)lsl_opt_integer(L, idx, fn, "every", 1, 1, UINT32_MAX);
    }
    s->rate = lsl_opt_number(L, idx, fn, "rate", 1000, 0.001, 1e9);
    s->burst = lsl_opt_number(L, idx, fn, "burst", fmax(s->rate / 10.0, 1), 1, 1e9);
    break;
  }
  default:
    break;
  }
}

static void push_rules(lua_State *L, const ls_rule *r, const uint32_t *ids, uint32_t n) {
  lua_createtable(L, (int)n, 0);
  for (uint32_t i = 0; i < n; i++) {
    lua_createtable(L, 0, 8);
    int t = lua_gettop(L);
    if (r[i].match[0]) {
      lua_pushstring(L, r[i].match);
      lua_setfield(L, t, "match");
    }
    lua_pushstring(L, action_names[r[i].action]);
    lua_setfield(L, t, "action");
    lsl_setint(L, t, "matches", r[i].matches);
    lsl_setint(L, t, "bytes", r[i].bytes);
    lsl_setint(L, t, "limited", r[i].limited);
    switch (r[i].action) {
    case LS_ACT_MIRROR:
      if (ids[i]) {
        lsl_push_object(L, LSL_PORTS, ids[i]);
        lua_setfield(L, t, "port");
      }
      break;
    case LS_ACT_SET_VLAN:
      lsl_setint(L, t, "vid", r[i].vid);
      if (r[i].pcp >= 0) lsl_setint(L, t, "pcp", (uint64_t)r[i].pcp);
      break;
    case LS_ACT_POLICE:
      lua_pushnumber(L, r[i].rate);
      lua_setfield(L, t, r[i].per_byte ? "bps" : "pps");
      lua_pushnumber(L, r[i].per_byte ? r[i].burst / 8.0 : r[i].burst);
      lua_setfield(L, t, "burst");
      break;
    case LS_ACT_SAMPLE:
      lsl_setint(L, t, "every", r[i].every);
      /* fall through */
    case LS_ACT_PUNT:
      lua_pushnumber(L, r[i].rate);
      lua_setfield(L, t, "rate");
      lua_pushnumber(L, r[i].burst);
      lua_setfield(L, t, "burst");
      break;
    default:
      break;
    }
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
}

/*
 * p:filter(dir) -> the rules of direction "in" or "out", each with its counters
 *   (matches, bytes, limited).
 * p:filter(dir, rules) -> p: replace them, atomically: a frame sees the old set or the
 *   new one. {} removes them. Any error (libpcap's message for a bad expression) raises
 *   and leaves the rules in force as they were.
 */
static int p_filter(lua_State *L) {
  lsl_port *p = lsl_check_port(L, 1);
  int dir = luaL_checkoption(L, 2, NULL, dir_names);
  if (lua_isnone(L, 3)) {
    ls_rule *rules;
    uint32_t *ids, n;
    int err = ls_port_rules_get(p->p, dir, &rules, &ids, &n);
    if (err) return lsl_fail(L, err, "filter");
    push_rules(L, rules, ids, n);
    ls_port_rules_free(rules, ids, n);
    return 1;
  }
  luaL_checktype(L, 3, LUA_TTABLE);
  lua_Integer n = (lua_Integer)lua_rawlen(L, 3);
  if (n > LS_RULES_MAX) {
    lua_pushfstring(L, "at most %d rules per port and direction, got %d", LS_RULES_MAX, (int)n);
    luaL_argerror(L, 3, lua_tostring(L, -1));
  }
  lua_pushnil(L); /* only a list: a stray key is surely a mistake */
  while (lua_next(L, 3)) {
    lua_pop(L, 1);
    if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 || lua_tointeger(L, -1) > n)
      luaL_argerror(L, 3, "a list of rules expected (a table with other keys given)");
  }
  ls_rule_spec *specs = lua_newuserdatauv(L, sizeof(ls_rule_spec) * (size_t)(n ? n : 1), 0);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, 3, i);
    read_rule(L, p, (int)i, &specs[i - 1]);
    lua_pop(L, 1);
  }
  char err[512];
  uint32_t bad = 0;
  ls_ruleset *rs = ls_ruleset_new(specs, (uint32_t)n, err, sizeof(err), &bad);
  if (!rs) return luaL_error(L, "filter: rule %d: bad option 'match' (%s)", (int)bad + 1, err);
  int r = ls_port_set_rules(p->p, dir, rs);
  if (r) {
    ls_ruleset_free(rs);
    if (r == -EINVAL) return luaL_error(L, "filter: a mirror port is no longer on this switch");
    return lsl_fail(L, r, "filter");
  }
  lua_settop(L, 1);
  return 1;
}

/* ---- impairments ----------------------------------------------------------------------------- */

/* A rate: bits per second as a number, or a string "10mbit", "1.5gbit", "64kbit", "9600bit". */
static uint64_t read_rate(lua_State *L, int idx, const char *fn) {
  int t = lsl_field(L, idx, "rate");
  double v = 0;
  if (t == LUA_TNUMBER) {
    v = lua_tonumber(L, -1);
  } else if (t == LUA_TSTRING) {
    const char *s = lua_tostring(L, -1);
    char *end;
    v = strtod(s, &end);
    double mul = strcmp(end, "bit") == 0    ? 1
                 : strcmp(end, "kbit") == 0 ? 1e3
                 : strcmp(end, "mbit") == 0 ? 1e6
                 : strcmp(end, "gbit") == 0 ? 1e9
                 : *end == 0                ? 1
                                            : -1;
    if (end == s || mul < 0)
      lsl_opt_error(L, fn, "rate", "bits per second or a string like \"10mbit\" expected, got '%s'",
                    s);
    v *= mul;
  } else if (t != LUA_TNIL) {
    lsl_opt_error(L, fn, "rate", "bits per second expected, got %s", luaL_typename(L, -1));
  }
  lua_pop(L, 1);
  if (isnan(v) || v < 0 || v > 1e12)
    lsl_opt_error(L, fn, "rate", "must be between 0 and 1e12 bits/s, got %g", v);
  if (v > 0 && v < 1000) lsl_opt_error(L, fn, "rate", "at least 1000 bits/s, got %g", v);
  return (uint64_t)v;
}

static uint64_t secs(lua_State *L, int idx, const char *fn, const char *key, double def) {
  return (uint64_t)llround(lsl_opt_number(L, idx, fn, key, def, 0, 60) * 1e9);
}

static void read_impair(lua_State *L, int idx, const char *fn, ls_impair_cfg *c) {
  memset(c, 0, sizeof(*c));
  c->loss = lsl_opt_number(L, idx, fn, "loss", 0, 0, 1);
  if (lsl_field(L, idx, "gilbert") != LUA_TNIL) {
    int g = lua_gettop(L);
    if (!lua_istable(L, g))
      lsl_opt_error(L, fn, "gilbert", "a table { p =, r =, bad_loss =, good_loss = } expected");
    if (c->loss > 0)
      lsl_opt_error(L, fn, "gilbert", "give 'loss' (random) or 'gilbert' (bursts), not both");
    static const char *const known[] = {"p", "r", "bad_loss", "good_loss", NULL};
    const char *gfn = "impair: gilbert";
    lsl_check_known(L, g, gfn, known);
    c->ge = true;
    c->ge_p = lsl_opt_number(L, g, gfn, "p", 0, 0, 1);
    c->ge_r = lsl_opt_number(L, g, gfn, "r", 1, 0, 1);
    c->ge_bad_loss = lsl_opt_number(L, g, gfn, "bad_loss", 1, 0, 1);
    c->ge_good_loss = lsl_opt_number(L, g, gfn, "good_loss", 0, 0, 1);
  }
  lua_pop(L, 1);
  c->dup = lsl_opt_number(L, idx, fn, "dup", 0, 0, 1);
  c->reorder = lsl_opt_number(L, idx, fn, "reorder", 0, 0, 1);
  c->reorder_ns = secs(L, idx, fn, "reorder_delay", 0.001);
  c->corrupt = lsl_opt_number(L, idx, fn, "corrupt", 0, 0, 1);
  c->delay_ns = secs(L, idx, fn, "delay", 0);
  c->jitter_ns = secs(L, idx, fn, "jitter", 0);
  c->rate_bps = read_rate(L, idx, fn);
  c->limit = (uint32_t)lsl_opt_integer(L, idx, fn, "limit", 1000, 1, 1000000);
  c->mtu = (uint32_t)lsl_opt_integer(L, idx, fn, "mtu", 0, LS_MTU_MIN, LS_MTU_MAX);
  c->seed = (uint64_t)lsl_opt_integer(L, idx, fn, "seed", 0, LLONG_MIN, LLONG_MAX);
  if (c->reorder == 0) c->reorder_ns = 0;
}

static void push_impair(lua_State *L, const ls_impair_cfg *c, const ls_impair_stats *st,
                        uint32_t waiting) {
  lua_createtable(L, 0, 16);
  int t = lua_gettop(L);
#define NUM(k, v)                                                                                  \
  do {                                                                                             \
    lua_pushnumber(L, (v));                                                                        \
    lua_setfield(L, t, (k));                                                                       \
  } while (0)
  if (c->ge) {
    lua_createtable(L, 0, 4);
    lua_pushnumber(L, c->ge_p);
    lua_setfield(L, -2, "p");
    lua_pushnumber(L, c->ge_r);
    lua_setfield(L, -2, "r");
    lua_pushnumber(L, c->ge_bad_loss);
    lua_setfield(L, -2, "bad_loss");
    lua_pushnumber(L, c->ge_good_loss);
    lua_setfield(L, -2, "good_loss");
    lua_setfield(L, t, "gilbert");
  } else {
    NUM("loss", c->loss);
  }
  NUM("dup", c->dup);
  NUM("reorder", c->reorder);
  if (c->reorder > 0) NUM("reorder_delay", lsl_seconds(c->reorder_ns));
  NUM("corrupt", c->corrupt);
  NUM("delay", lsl_seconds(c->delay_ns));
  NUM("jitter", lsl_seconds(c->jitter_ns));
  lsl_setint(L, t, "rate", c->rate_bps);
  lsl_setint(L, t, "limit", c->limit);
  if (c->mtu) lsl_setint(L, t, "mtu", c->mtu);
  lua_pushinteger(L, (lua_Integer)c->seed);
  lua_setfield(L, t, "seed");
  lsl_setint(L, t, "waiting", waiting);
  lua_createtable(L, 0, 7);
  lsl_setint(L, -1, "lost", st->lost);
  lsl_setint(L, -1, "queue_full", st->queue_full);
  lsl_setint(L, -1, "mtu", st->mtu);
  lsl_setint(L, -1, "duplicated", st->duplicated);
  lsl_setint(L, -1, "corrupted", st->corrupted);
  lsl_setint(L, -1, "reordered", st->reordered);
  lsl_setint(L, -1, "delayed", st->delayed);
  lua_setfield(L, t, "stats");
#undef NUM
}

/*
 * p:impair() -> { ["in"] = settings and stats or nil, out = ..., down = bool }
 * p:impair { dir = "out" | "in" | "both", loss =, gilbert =, dup =, reorder =,
 *            reorder_delay =, corrupt =, delay =, jitter =, rate =, limit =, mtu =, seed =,
 *            down = } -> p
 *   sets the impairment of dir (default "out", towards the peer) to exactly what the table
 *   says (absent = none; frames already waiting leave at once). A table with only `down`
 *   cuts (true) or restores (false) the link and changes nothing else.
 * p:impair(false) / p:impair(nil) -> p: no impairment in either direction, link restored.
 */
static int p_impair(lua_State *L) {
  const char *fn = "impair";
  lsl_port *p = lsl_check_port(L, 1);
  int err;
  if (lua_isnone(L, 2)) {
    ls_port_impair_info in;
    err = ls_port_impair_get(p->p, &in);
    if (err) return lsl_fail(L, err, fn);
    lua_createtable(L, 0, 3);
    for (int d = 0; d < 2; d++) {
      if (!in.on[d]) continue;
      push_impair(L, &in.cfg[d], &in.st[d], in.waiting[d]);
      lua_setfield(L, -2, dir_names[d]);
    }
    lua_pushboolean(L, in.down);
    lua_setfield(L, -2, "down");
    return 1;
  }
  if (lua_isnil(L, 2) || (lua_type(L, 2) == LUA_TBOOLEAN && !lua_toboolean(L, 2))) {
    for (int d = 0; d < 2; d++) {
      err = ls_port_impair_set(p->p, d, NULL, d == 1, false);
      if (err) return lsl_fail(L, err, fn);
    }
    lua_settop(L, 1);
    return 1;
  }
  lsl_check_table(L, 2, fn);
  static const char *const known[] = {"dir",           "loss",    "gilbert", "dup",    "reorder",
                                      "reorder_delay", "corrupt", "delay",   "jitter", "rate",
                                      "limit",         "mtu",     "seed",    "down",   NULL};
  lsl_check_known(L, 2, fn, known);
  static const char *const dirs[] = {"in", "out", "both", NULL};
  int dir = lsl_opt_enum(L, 2, fn, "dir", LS_DIR_OUT, dirs);
  bool only_down = true;
  lua_pushnil(L);
  while (lua_next(L, 2)) {
    lua_pop(L, 1);
    only_down &= strcmp(lua_tostring(L, -1), "down") == 0;
  }
  bool set_down = lsl_field(L, 2, "down") != LUA_TNIL;
  lua_pop(L, 1);
  bool down = lsl_opt_boolean(L, 2, fn, "down", false);
  ls_impair_cfg c;
  read_impair(L, 2, fn, &c); /* raises before anything changed */
  if (only_down) {
    err = ls_port_impair_set(p->p, -1, NULL, true, down);
  } else {
    err = 0;
    for (int d = 0; d < 2 && !err; d++) {
      if (dir != 2 && dir != d) continue;
      bool last = dir != 2 || d == 1;
      err = ls_port_impair_set(p->p, d, &c, set_down && last, down);
    }
  }
  if (err) return lsl_fail(L, err, fn);
  lua_settop(L, 1);
  return 1;
}

/* ---- frames from Lua ------------------------------------------------------------------------- */

static const char *check_frame(lua_State *L, int arg, size_t *len) {
  const char *f = lsl_check_frame(L, arg, len);
  if (*len < LS_ETH_HLEN) {
    lua_pushfstring(L, "frame of %d bytes is shorter than an Ethernet header (14)", (int)*len);
    luaL_argerror(L, arg, lua_tostring(L, -1));
  }
  return f;
}

/* p:inject(frame) -> p: forward frame as if p had received it, after p's ingress rules (so
 * a punt handler can re-inject what it took) and impairment. */
static int p_inject(lua_State *L) {
  lsl_port *p = lsl_check_port(L, 1);
  size_t len;
  const char *f = check_frame(L, 2, &len);
  int err = ls_port_inject(p->p, (const uint8_t *)f, (uint32_t)len);
  if (err) return lsl_fail(L, err, "inject");
  lua_settop(L, 1);
  return 1;
}

/* p:send(frame) -> p: queue frame for p's peer (through p's egress impairment, not its
 * rules). nil, "ENETDOWN: ..." if the port is down. */
static int p_send(lua_State *L) {
  lsl_port *p = lsl_check_port(L, 1);
  size_t len;
  const char *f = check_frame(L, 2, &len);
  int err = ls_port_send(p->p, (const uint8_t *)f, (uint32_t)len);
  if (err) return lsl_fail(L, err, "send");
  lua_settop(L, 1);
  return 1;
}

/* ---- explain --------------------------------------------------------------------------------- */

static void push_port_or_id(lua_State *L, uint32_t id) {
  lsl_push_object(L, LSL_PORTS, id);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_pushinteger(L, id);
  }
}

/*
 * sw:explain(frame, in_port) -> what the switch would do with frame arriving on in_port,
 * decided by the code that forwards, with nothing sent, learned or counted:
 *   { verdict = "forward" | "drop" | "punt", reason = (why, when not forwarded),
 *     vlan =, vlan_reason = (VLAN-aware switches),
 *     rules = { { index =, action =, effect = }, ... } (ingress rules that matched),
 *     learn = "new" | "refresh" | "move" | ..., learn_from = port (move),
 *     lookup = "hit" | "miss" | "broadcast" | "multicast", dest = port (hit),
 *     decision = "unicast" | "flood",
 *     out = { port, ... } (where it leaves),
 *     ports = { { port =, sent = bool, why =, tagged =, vlan =, rule =, action =,
 *                 impaired = }, ... } (every port considered) }
 */
static int sw_explain(lua_State *L) {
  lsl_switch *s = lsl_check_switch(L, 1);
  size_t len;
  const char *f = check_frame(L, 2, &len);
  lsl_port *in = lsl_check_port(L, 3);
  if (in->sw != s) {
    lua_pushfstring(L, "port '%s' is not on switch '%s'", in->name, s->name);
    luaL_argerror(L, 3, lua_tostring(L, -1));
  }
  ls_explain x;
  int err = ls_switch_explain(s->sw, in->p, (const uint8_t *)f, (uint32_t)len, &x);
  if (err) return lsl_fail(L, err, "explain");
  lua_createtable(L, 0, 14);
  int t = lua_gettop(L);
#define STR(k, v)                                                                                  \
  do {                                                                                             \
    if (v) {                                                                                       \
      lua_pushstring(L, (v));                                                                      \
      lua_setfield(L, t, (k));                                                                     \
    }                                                                                              \
  } while (0)
  STR("verdict", x.verdict);
  STR("reason", x.reason);
  if (x.vlan_aware && x.vid) {
    lsl_setint(L, t, "vlan", x.vid);
    STR("vlan_reason", x.vlan_how);
  }
  lua_createtable(L, (int)x.nrules, 0);
  for (uint32_t i = 0; i < x.nrules && i < LS_EXPLAIN_RULES; i++) {
    lua_createtable(L, 0, 3);
    lsl_setint(L, -1, "index", x.rules[i].index + 1u);
    lua_pushstring(L, action_names[x.rules[i].action]);
    lua_setfield(L, -2, "action");
    lua_pushstring(L, x.rules[i].effect);
    lua_setfield(L, -2, "effect");
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  lua_setfield(L, t, "rules");
  STR("learn", x.learn);
  if (x.learn_from) {
    push_port_or_id(L, x.learn_from);
    lua_setfield(L, t, "learn_from");
  }
  STR("lookup", x.lookup);
  if (x.dest_id) {
    push_port_or_id(L, x.dest_id);
    lua_setfield(L, t, "dest");
  }
  STR("decision", x.decision);
  lua_newtable(L); /* out */
  lua_newtable(L); /* ports */
  int nout = 0;
  for (uint32_t i = 0; i < x.nout; i++) {
    const ls_explain_port *xp = &x.out[i];
    lua_createtable(L, 0, 8);
    push_port_or_id(L, xp->port_id);
    lua_setfield(L, -2, "port");
    lua_pushboolean(L, xp->why == NULL);
    lua_setfield(L, -2, "sent");
    if (xp->why) {
      lua_pushstring(L, xp->why);
      lua_setfield(L, -2, "why");
    } else {
      push_port_or_id(L, xp->port_id);
      lua_rawseti(L, -4, ++nout);
    }
    if (x.vlan_aware && (xp->why == NULL || xp->rule >= 0)) {
      lua_pushboolean(L, xp->tagged);
      lua_setfield(L, -2, "tagged");
      lsl_setint(L, -1, "vlan", xp->vid);
    }
    if (xp->rule >= 0) {
      lsl_setint(L, -1, "rule", (uint64_t)xp->rule + 1);
      lua_pushstring(L, action_names[xp->action]);
      lua_setfield(L, -2, "action");
    }
    if (xp->impaired) {
      lua_pushboolean(L, true);
      lua_setfield(L, -2, "impaired");
    }
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  lua_setfield(L, t, "ports");
  lua_setfield(L, t, "out");
#undef STR
  free(x.out);
  return 1;
}

/* ---- spanning tree ------------------------------------------------------------------------- */

static const char *const stp_states[] = {"forwarding", "learning", "listening", "blocking",
                                         "disabled"};
static const char *const stp_roles[] = {"disabled", "root", "designated", "alternate"};

const char *lsl_stp_state_name(int state) {
  return state >= 0 && state < (int)LS_ARRAY_LEN(stp_states) ? stp_states[state] : "?";
}

const char *lsl_stp_role_name(int role) {
  return role >= 0 && role < (int)LS_ARRAY_LEN(stp_roles) ? stp_roles[role] : "?";
}

/* Seconds to 1/256 s, within [min, max] seconds. */
static uint32_t stp_time(lua_State *L, int idx, const char *fn, const char *key, uint32_t def,
                         double min, double max) {
  double v = lsl_opt_number(L, idx, fn, key, def / 256.0, min, max);
  return (uint32_t)llround(v * 256);
}

void lsl_read_stp(lua_State *L, int idx, const char *fn, uint32_t switch_id, ls_stp_config *c) {
  memset(c, 0, sizeof(*c));
  c->priority = 32768;
  c->hello = 2 * 256; /* 802.1D's (and Linux's) defaults */
  c->max_age = 20 * 256;
  c->fwd_delay = 15 * 256;
  /* A locally administered bridge address, unique per switch and per process. */
  uint64_t r = ((uint64_t)getpid() << 16) ^ ((uint64_t)switch_id << 40);
  c->mac[0] = 0x02;
  for (int i = 1; i < 6; i++) c->mac[i] = (uint8_t)(r >> (8 * (i - 1)));
  c->mac[5] = (uint8_t)switch_id;
  c->mac[4] = (uint8_t)(switch_id >> 8);
  if (lua_type(L, idx) == LUA_TBOOLEAN) return;
  if (lua_type(L, idx) != LUA_TTABLE)
    luaL_error(L,
               "%s: true, false or a table { priority =, hello =, forward_delay =, max_age = } "
               "expected, got %s",
               fn, luaL_typename(L, idx));
  static const char *const known[] = {"priority", "hello", "forward_delay", "max_age", "mac", NULL};
  lsl_check_known(L, idx, fn, known);
  lua_Integer prio = lsl_opt_integer(L, idx, fn, "priority", 32768, 0, 61440);
  if (prio % 4096)
    lsl_opt_error(L, fn, "priority", "a multiple of 4096 expected, got %d", (int)prio);
  c->priority = (uint16_t)prio;
  c->hello = stp_time(L, idx, fn, "hello", c->hello, 0.05, 10);
  c->max_age = stp_time(L, idx, fn, "max_age", c->max_age, 0.2, 40);
  c->fwd_delay = stp_time(L, idx, fn, "forward_delay", c->fwd_delay, 0.05, 30);
  if (c->max_age <= c->hello)
    lsl_opt_error(L, fn, "max_age", "must be longer than hello (%g s)", c->hello / 256.0);
  const char *mac = lsl_opt_string(L, idx, fn, "mac", NULL, 17);
  if (mac && (ls_mac_parse(mac, c->mac) != 0 || ls_mac_is_group(c->mac) || ls_mac_is_zero(c->mac)))
    lsl_opt_error(L, fn, "mac", "a unicast MAC address expected, got '%s'", mac);
}

static void push_bridge_id(lua_State *L, uint64_t id) {
  uint8_t m[6];
  char s[32];
  ls_u64_to_mac(id & 0xffffffffffffULL, m);
  snprintf(s, sizeof(s), "%04x.%02x%02x%02x%02x%02x%02x", (unsigned)(id >> 48), m[0], m[1], m[2],
           m[3], m[4], m[5]);
  lua_pushstring(L, s);
}

/*
 * sw:stp() -> { enabled =, bridge_id = "8000.02...", root_id =, is_root =, root_cost =,
 *   root_port =, hello =, forward_delay =, max_age = (in use: the root's),
 *   topology_change =, topology_changes =, ports = { { port =, state =, role =, cost =,
 *   id =, edge =, rx_bpdu =, tx_bpdu =, designated_root =, designated_bridge =,
 *   designated_cost = }, ... } }
 * sw:stp(true | { priority =, hello =, forward_delay =, max_age =, mac = }) -> sw: run STP
 * (restarted with the new settings); sw:stp(false) -> sw: stop (every port forwards).
 */
static int sw_stp(lua_State *L) {
  lsl_switch *s = lsl_check_switch(L, 1);
  int err;
  if (lua_isnone(L, 2)) {
    ls_stp_info in;
    err = ls_switch_stp_info(s->sw, &in);
    if (err) return lsl_fail(L, err, "stp");
    lua_createtable(L, 0, 12);
    int t = lua_gettop(L);
    lua_pushboolean(L, in.enabled);
    lua_setfield(L, t, "enabled");
    if (in.enabled) {
      push_bridge_id(L, in.bridge_id);
      lua_setfield(L, t, "bridge_id");
      push_bridge_id(L, in.root.root);
      lua_setfield(L, t, "root_id");
      lsl_setint(L, t, "root_cost", in.root.cost);
      lua_pushboolean(L, in.root.root == in.bridge_id);
      lua_setfield(L, t, "is_root");
      if (in.root_port_id) {
        lsl_push_object(L, LSL_PORTS, in.root_port_id);
        lua_setfield(L, t, "root_port");
      }
      lua_pushnumber(L, in.hello / 256.0);
      lua_setfield(L, t, "hello");
      lua_pushnumber(L, in.fwd_delay / 256.0);
      lua_setfield(L, t, "forward_delay");
      lua_pushnumber(L, in.max_age / 256.0);
      lua_setfield(L, t, "max_age");
      lua_pushboolean(L, in.topology_change);
      lua_setfield(L, t, "topology_change");
      lsl_setint(L, t, "topology_changes", in.topology_changes);
      lua_createtable(L, (int)in.nports, 0);
      for (uint32_t i = 0; i < in.nports; i++) {
        const ls_stp_port_info *pi = &in.ports[i];
        lua_createtable(L, 0, 12);
        lsl_push_object(L, LSL_PORTS, pi->port_id);
        lua_setfield(L, -2, "port");
        lua_pushstring(L, lsl_stp_state_name(pi->state));
        lua_setfield(L, -2, "state");
        lua_pushstring(L, lsl_stp_role_name(pi->role));
        lua_setfield(L, -2, "role");
        lsl_setint(L, -1, "cost", pi->cost);
        lsl_setint(L, -1, "id", pi->stp_id);
        lua_pushboolean(L, pi->oper_edge);
        lua_setfield(L, -2, "edge");
        lsl_setint(L, -1, "rx_bpdu", pi->rx_bpdu);
        lsl_setint(L, -1, "tx_bpdu", pi->tx_bpdu);
        if (pi->designated.root != UINT64_MAX) {
          push_bridge_id(L, pi->designated.root);
          lua_setfield(L, -2, "designated_root");
          push_bridge_id(L, pi->designated.bridge);
          lua_setfield(L, -2, "designated_bridge");
          lsl_setint(L, -1, "designated_cost", pi->designated.cost);
        }
        lua_rawseti(L, -2, (lua_Integer)i + 1);
      }
      lua_setfield(L, t, "ports");
    }
    free(in.ports);
    return 1;
  }
  if (lua_type(L, 2) == LUA_TBOOLEAN && !lua_toboolean(L, 2)) {
    err = ls_switch_stp(s->sw, NULL);
  } else {
    ls_stp_config c;
    lsl_read_stp(L, 2, "stp", s->id, &c);
    err = ls_switch_stp(s->sw, &c);
  }
  if (err) return lsl_fail(L, err, "stp");
  lua_settop(L, 1);
  return 1;
}

/* ---- audit --------------------------------------------------------------------------------- */

/* sw:audit() -> true, or false and { { port =, side = "rx" | "tx", received | queued =,
 * accounted =, missing = }, ... }: checks on every port, at one instant of the data plane,
 * that each frame it received was forwarded, taken by STP or dropped with a reason (or still
 * waits on an impairment), and that each frame queued to it was sent, dropped with a reason,
 * or is still queued. */
static int sw_audit(lua_State *L) {
  lsl_switch *s = lsl_check_switch(L, 1);
  ls_audit_port *ap;
  uint32_t n;
  int err = ls_switch_audit(s->sw, &ap, &n);
  if (err) return lsl_fail(L, err, "audit");
  lua_newtable(L);
  int bad = 0;
  for (uint32_t i = 0; i < n; i++) {
    for (int side = 0; side < 2; side++) {
      uint64_t in = side ? ap[i].tx_in : ap[i].rx_in, out = side ? ap[i].tx_out : ap[i].rx_out;
      if (in == out) continue;
      lua_createtable(L, 0, 5);
      lsl_push_object(L, LSL_PORTS, ap[i].port_id);
      lua_setfield(L, -2, "port");
      lua_pushstring(L, side ? "tx" : "rx");
      lua_setfield(L, -2, "side");
      lsl_setint(L, -1, side ? "queued" : "received", in);
      lsl_setint(L, -1, "accounted", out);
      lua_pushinteger(L, (lua_Integer)(in - out));
      lua_setfield(L, -2, "missing");
      lua_rawseti(L, -2, ++bad);
    }
  }
  free(ap);
  lua_pushboolean(L, bad == 0);
  lua_insert(L, -2);
  return 2;
}

/* ---- registration ---------------------------------------------------------------------------- */

const luaL_Reg lsl_port_policy_methods[] = {
    {"vlan", p_vlan},     {"filter", p_filter}, {"impair", p_impair},
    {"inject", p_inject}, {"send", p_send},     {NULL, NULL},
};

const luaL_Reg lsl_switch_policy_methods[] = {
    {"explain", sw_explain},
    {"stp", sw_stp},
    {"audit", sw_audit},
    {NULL, NULL},
};
