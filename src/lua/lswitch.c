/*
 * lswitch.c — the luaswitch.switch userdata: create, configure, inspect and close a
 * switch; create its ports; read and edit its MAC table.
 *
 * The userdata holds a pointer to the C switch, which the data plane owns; every call
 * goes through a runtime command. Its user value is a table id -> port of the switch's
 * open ports. Open switches are also held by the registry (LSL_SWITCHES), so a script
 * that drops its reference does not tear a live network down; sw:close(), the runtime
 * stopping, or the Lua state closing does.
 */
#include "frame.h"
#include "lutil.h"
#include "port.h"
#include "lkinds.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const evict_names[] = {"refuse", "oldest", "port", NULL};
static const char *const vlan_protocols[] = {"802.1q", "802.1ad", NULL};

/* Fill cfg from an options table at idx, starting from the values already in cfg. */
static void parse_config(lua_State *L, int idx, const char *fn, ls_switch_config *cfg) {
  static const char *const known[] = {"name",          "aging", "max_macs", "evict", "vlan_aware",
                                      "vlan_protocol", "wire",  "stp",      NULL};
  lsl_check_known(L, idx, fn, known);
  const char *name = lsl_opt_string(L, idx, fn, "name", NULL, LS_NAME_MAX - 1);
  if (name) snprintf(cfg->name, sizeof(cfg->name), "%s", name);
  double aging = lsl_opt_number(L, idx, fn, "aging", (double)cfg->aging / 1e9, 0,
                                (double)(LS_AGING_MAX / LS_NSEC));
  cfg->aging = (uint64_t)llround(aging * 1e9);
  cfg->max_macs =
      (uint32_t)lsl_opt_integer(L, idx, fn, "max_macs", cfg->max_macs, 1, LS_FDB_MAX_MACS);
  cfg->evict = lsl_opt_enum(L, idx, fn, "evict", cfg->evict, evict_names);
  cfg->vlan_aware = lsl_opt_boolean(L, idx, fn, "vlan_aware", cfg->vlan_aware);
  int proto = lsl_opt_enum(L, idx, fn, "vlan_protocol", cfg->vlan_tpid == LS_ETH_P_8021AD ? 1 : 0,
                           vlan_protocols);
  cfg->vlan_tpid = proto ? LS_ETH_P_8021AD : LS_ETH_P_8021Q;
  cfg->wire = lsl_opt_boolean(L, idx, fn, "wire", cfg->wire);
}

/* luaswitch.switch { name =, aging =, max_macs =, evict =, vlan_aware =, vlan_protocol =,
 *                    wire =, stp = } */
int lsl_switch_new(lua_State *L) {
  const char *fn = "luaswitch.switch";
  if (lua_isnoneornil(L, 1)) lua_newtable(L);
  if (lua_type(L, 1) == LUA_TSTRING) { /* luaswitch.switch "name" */
    lua_newtable(L);
    lua_pushvalue(L, 1);
    lua_setfield(L, -2, "name");
    lua_replace(L, 1);
  }
  lsl_check_table(L, 1, fn);
  ls_switch_config cfg;
  memset(&cfg, 0, sizeof(cfg));
  cfg.aging = LS_AGING_DEFAULT;
  cfg.max_macs = LS_MAX_MACS_DEFAULT;
  cfg.evict = LS_EVICT_OLDEST;
  cfg.vlan_tpid = LS_ETH_P_8021Q;
  parse_config(L, 1, fn, &cfg);
  ls_stp_config stp;
  bool stp_on =
      lsl_field(L, 1, "stp") != LUA_TNIL && !(lua_isboolean(L, -1) && !lua_toboolean(L, -1));
  if (stp_on) lsl_read_stp(L, -1, "luaswitch.switch: option 'stp'", 0, &stp);
  lua_pop(L, 1);
  ls_runtime *rt = lsl_running(L);

  lsl_switch *s = lua_newuserdatauv(L, sizeof(*s), 1);
  memset(s, 0, sizeof(*s));
  s->closed = true; /* safe state until the switch exists */
  luaL_setmetatable(L, LSL_SWITCH);
  int err = 0;
  ls_switch *sw = ls_switch_new(rt, &cfg, &err);
  if (!sw) return lsl_fail(L, err, "switch");
  if (!cfg.name[0]) snprintf(sw->cfg.name, sizeof(sw->cfg.name), "sw%u", sw->id);
  s->id = sw->id;
  snprintf(s->name, sizeof(s->name), "%s", sw->cfg.name);
  err = ls_switch_attach(sw);
  if (err == -EMFILE)
    return lsl_fail(L, err, "limit of " LS_STR(LS_MAX_SWITCHES) " switches reached");
  if (err) return lsl_fail(L, err, "switch");
  s->sw = sw;
  s->closed = false;
  lua_newtable(L);
  lua_setiuservalue(L, -2, 1);
  lua_getfield(L, LUA_REGISTRYINDEX, LSL_SWITCHES);
  lua_pushvalue(L, -2);
  lua_rawseti(L, -2, s->id);
  lua_pop(L, 1);
  if (stp_on) {
    lsl_field(L, 1, "stp"); /* again, now that the switch has an id for its bridge address */
    lsl_read_stp(L, -1, "luaswitch.switch: option 'stp'", s->id, &stp);
    lua_pop(L, 1);
    err = ls_switch_stp(sw, &stp);
    if (err) {
      lsl_switch_mark_closed(L, -1);
      ls_switch_close(sw);
      return lsl_fail(L, err, "stp");
    }
  }
  return 1;
}

/* sw:port { kind =, name =, mtu =, txqlen =, up =, ... kind options } */
static int sw_port(lua_State *L) {
  const char *fn = "port";
  lsl_switch *s = lsl_check_switch(L, 1);
  lsl_check_table(L, 2, fn);
  const char *const *names = lsl_kind_names();
  if (lsl_field(L, 2, "kind") == LUA_TNIL) {
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 0; names[i]; i++) {
      if (i) luaL_addstring(&b, ", ");
      lua_pushfstring(L, "\"%s\"", names[i]);
      luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    luaL_error(L, "%s: missing option 'kind' (one of %s)", fn, lua_tostring(L, -1));
  }
  lua_pop(L, 1);
  const lsl_kind *kind = &lsl_kinds[lsl_opt_enum(L, 2, fn, "kind", 0, names)];
  lsl_check_known(L, 2, fn, kind->options);

  ls_port_config cfg;
  ls_port_config_defaults(&cfg);
  lsl_port_args a;
  memset(&a, 0, sizeof(a));
  a.L = L;
  a.opts = 2;
  a.fn = fn;
  a.cfg = &cfg;
  a.name = lsl_opt_string(L, 2, fn, "name", NULL, LS_NAME_MAX - 1);
  cfg.mtu = (uint32_t)lsl_opt_integer(L, 2, fn, "mtu", LS_MTU_DEFAULT, LS_MTU_MIN, LS_MTU_MAX);
  cfg.txqlen = (uint32_t)lsl_opt_integer(L, 2, fn, "txqlen", LS_TXQLEN_DEFAULT, 1, LS_TXQLEN_MAX);
  cfg.up = lsl_opt_boolean(L, 2, fn, "up", true);
  lsl_read_flags(L, 2, fn, &cfg);
  ls_port_vlan vlan;
  bool has_vlan = lsl_field(L, 2, "vlan") != LUA_TNIL;
  if (has_vlan) lsl_read_vlan(L, -1, "port: option 'vlan'", &vlan);
  lua_pop(L, 1);
  /* Names are unique per switch. */
  if (a.name) {
    lua_getiuservalue(L, 1, 1);
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      lsl_port *o = lua_touserdata(L, -1);
      if (o && strcmp(o->name, a.name) == 0)
        lsl_opt_error(L, fn, "name", "a port named '%s' already exists on switch '%s'", a.name,
                      s->name);
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  snprintf(cfg.name, sizeof(cfg.name), "%s", a.name ? a.name : "?"); /* "?" replaced below */
  a.rt = lsl_running(L);
  ls_port *p = kind->create(&a); /* reads the kind's options, raising before creating */
  if (!p) return lsl_fail(L, a.err, a.where);
  if (!a.name) snprintf(p->cfg.name, sizeof(p->cfg.name), "%s%u", kind->name, p->id);
  if (has_vlan) p->vlan = vlan; /* not attached yet: the data plane does not see it */
  int err = ls_port_add(s->sw, p);
  if (err == -EMFILE)
    return lsl_fail(L, err, "limit of " LS_STR(LS_MAX_PORTS) " ports per switch reached");
  if (err == -EBUSY && strcmp(kind->name, "patch") == 0)
    return lsl_fail(L, err, "the peer patch port already has its other end");
  if (err) return lsl_fail(L, err, err == -EEXIST ? "port name in use" : "port");
  lsl_port_push(L, 1, p, kind->name);
  return 1;
}

static int port_id_cmp(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

/* sw:ports() -> { port, ... } in creation order */
static int sw_ports(lua_State *L) {
  lsl_check_switch(L, 1);
  lua_getiuservalue(L, 1, 1);
  int t = lua_gettop(L);
  uint32_t ids[LS_MAX_PORTS];
  uint32_t n = 0;
  lua_pushnil(L);
  while (lua_next(L, t) && n < LS_MAX_PORTS) {
    ids[n++] = (uint32_t)lua_tointeger(L, -2);
    lua_pop(L, 1);
  }
  qsort(ids, n, sizeof(ids[0]), port_id_cmp);
  lua_createtable(L, (int)n, 0);
  for (uint32_t i = 0; i < n; i++) {
    lua_rawgeti(L, t, ids[i]);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 1;
}

static int rec_cmp(const void *a, const void *b) {
  const ls_fdb_record *x = a, *y = b;
  if (x->vlan != y->vlan) return x->vlan < y->vlan ? -1 : 1;
  return memcmp(x->mac, y->mac, 6);
}

/* sw:fdb() -> { { mac =, port =, vlan =, age =, hits =, static =, sticky = }, ... } */
static int sw_fdb(lua_State *L) {
  lsl_switch *s = lsl_check_switch(L, 1);
  ls_fdb_record *recs = NULL;
  uint32_t n = 0;
  int err = ls_switch_fdb_dump(s->sw, &recs, &n);
  if (err) {
    free(recs);
    return lsl_fail(L, err, "fdb");
  }
  qsort(recs, n, sizeof(*recs), rec_cmp);
  lua_createtable(L, (int)n, 0);
  lua_getiuservalue(L, 1, 1);
  int ports = lua_gettop(L);
  for (uint32_t i = 0; i < n; i++) {
    lua_createtable(L, 0, 7);
    lsl_push_mac(L, recs[i].mac);
    lua_setfield(L, -2, "mac");
    lua_rawgeti(L, ports, recs[i].port_id);
    lua_setfield(L, -2, "port");
    lua_pushinteger(L, recs[i].vlan);
    lua_setfield(L, -2, "vlan");
    lua_pushnumber(L, lsl_seconds(recs[i].age));
    lua_setfield(L, -2, "age");
    lua_pushinteger(L, (lua_Integer)recs[i].hits);
    lua_setfield(L, -2, "hits");
    lua_pushboolean(L, (recs[i].flags & LS_FDB_STATIC) != 0);
    lua_setfield(L, -2, "static");
    lua_pushboolean(L, (recs[i].flags & LS_FDB_STICKY) != 0);
    lua_setfield(L, -2, "sticky");
    lua_rawseti(L, ports - 1, (lua_Integer)i + 1);
  }
  lua_pop(L, 1);
  free(recs);
  return 1;
}

static uint16_t opt_vlan(lua_State *L, int idx, const char *fn) {
  return (uint16_t)lsl_opt_integer(L, idx, fn, "vlan", 0, 0, 4094);
}

/* The port argument must be an open port of this switch. */
static lsl_port *check_own_port(lua_State *L, int arg, lsl_switch *s) {
  lsl_port *p = lsl_check_port(L, arg);
  if (p->sw != s) {
    lua_pushfstring(L, "port '%s' belongs to another switch", p->name);
    luaL_argerror(L, arg, lua_tostring(L, -1));
  }
  return p;
}

/* sw:fdb_add(mac, port [, { vlan =, sticky =, dynamic = }]) -> true | nil, err, code:
 * a static entry, or sticky (ages, never moves), or dynamic (as if learned just now) */
static int sw_fdb_add(lua_State *L) {
  const char *fn = "fdb_add";
  lsl_switch *s = lsl_check_switch(L, 1);
  uint8_t mac[6];
  lsl_check_mac(L, 2, mac);
  if (ls_mac_is_group(mac)) luaL_argerror(L, 2, "a group (multicast) address cannot be added");
  if (ls_mac_is_zero(mac)) luaL_argerror(L, 2, "the all-zero address cannot be added");
  lsl_port *p = check_own_port(L, 3, s);
  uint16_t flags = LS_FDB_STATIC;
  uint16_t vlan = 0;
  if (!lua_isnoneornil(L, 4)) {
    lsl_check_table(L, 4, fn);
    static const char *const known[] = {"vlan", "sticky", "dynamic", NULL};
    lsl_check_known(L, 4, fn, known);
    vlan = opt_vlan(L, 4, fn);
    bool sticky = lsl_opt_boolean(L, 4, fn, "sticky", false);
    bool dynamic = lsl_opt_boolean(L, 4, fn, "dynamic", false);
    if (sticky && dynamic)
      lsl_opt_error(L, fn, "dynamic", "an entry is sticky or dynamic, not both");
    if (sticky) flags = LS_FDB_STICKY;
    if (dynamic) flags = 0;
  }
  int err = ls_switch_fdb_add(s->sw, mac, vlan, p->p, flags);
  if (err) return lsl_fail(L, err, err == -ENOSPC ? "table full" : "fdb_add");
  lua_pushboolean(L, 1);
  return 1;
}

/* sw:vlan_aging() -> { [vlan] = seconds, ... } (VLANs with their own aging time)
 * sw:vlan_aging(vlan, seconds) -> sw: give a VLAN its own aging time (0: never);
 * sw:vlan_aging(vlan, nil | false) -> sw: the switch's aging time again */
static int sw_vlan_aging(lua_State *L) {
  const char *fn = "vlan_aging";
  lsl_switch *s = lsl_check_switch(L, 1);
  int err;
  if (lua_isnone(L, 2)) {
    uint16_t vlans[LS_FDB_CLASSES];
    uint64_t aging[LS_FDB_CLASSES];
    uint32_t n = 0;
    err = ls_switch_vlan_aging_get(s->sw, vlans, aging, &n);
    if (err) return lsl_fail(L, err, fn);
    lua_createtable(L, 0, (int)n);
    for (uint32_t i = 0; i < n; i++) {
      lua_pushnumber(L, lsl_seconds(aging[i]));
      lua_rawseti(L, -2, vlans[i]);
    }
    return 1;
  }
  lua_Integer vlan = luaL_checkinteger(L, 2);
  luaL_argcheck(L, vlan >= 0 && vlan <= 4094, 2, "VLAN id between 0 and 4094 expected");
  bool clear = lua_isnoneornil(L, 3) || (lua_isboolean(L, 3) && !lua_toboolean(L, 3));
  double secs = clear ? 0 : luaL_checknumber(L, 3);
  luaL_argcheck(L, !isnan(secs) && secs >= 0 && secs <= (double)(LS_AGING_MAX / LS_NSEC), 3,
                "aging time in seconds (0 = never) expected");
  err = ls_switch_vlan_aging(s->sw, (uint16_t)vlan, (uint64_t)llround(secs * 1e9), clear);
  if (err == -ENOSPC)
    return luaL_error(L, "%s: at most %d VLANs have their own aging time", fn, LS_FDB_CLASSES - 1);
  if (err) return lsl_fail(L, err, fn);
  lua_settop(L, 1);
  return 1;
}

/* sw:admit(mac, port, ok [, vlan]) -> true: answer an admission request (see the "admit"
 * event): ok = true learns mac on port now, false refuses it (frames from it are dropped
 * until it expires). Returns false if an approval could not be learned (table full). */
static int sw_admit(lua_State *L) {
  lsl_switch *s = lsl_check_switch(L, 1);
  uint8_t mac[6];
  lsl_check_mac(L, 2, mac);
  if (ls_mac_is_group(mac) || ls_mac_is_zero(mac))
    luaL_argerror(L, 2, "a unicast address expected");
  lsl_port *p = check_own_port(L, 3, s);
  luaL_checktype(L, 4, LUA_TBOOLEAN);
  lua_Integer vlan = luaL_optinteger(L, 5, 0);
  luaL_argcheck(L, vlan >= 0 && vlan <= 4094, 5, "VLAN id between 0 and 4094 expected");
  int r = ls_switch_admit(s->sw, mac, (uint16_t)vlan, p->p, lua_toboolean(L, 4));
  if (r < 0) return lsl_fail(L, r, "admit");
  lua_pushboolean(L, r != LS_LEARN_REFUSED && r != LS_LEARN_REFUSED_OWNER && r != LS_LEARN_PINNED);
  return 1;
}

/* sw:fdb_del(mac [, vlan]) -> true if it was there */
static int sw_fdb_del(lua_State *L) {
  lsl_switch *s = lsl_check_switch(L, 1);
  uint8_t mac[6];
  lsl_check_mac(L, 2, mac);
  lua_Integer vlan = luaL_optinteger(L, 3, 0);
  luaL_argcheck(L, vlan >= 0 && vlan <= 4094, 3, "VLAN id must be between 0 and 4094");
  int r = ls_switch_fdb_del(s->sw, mac, (uint16_t)vlan);
  if (r < 0) return lsl_fail(L, r, "fdb_del");
  lua_pushboolean(L, r > 0);
  return 1;
}

/* sw:fdb_flush { port =, vlan =, static = false, dynamic = true } -> count */
static int sw_fdb_flush(lua_State *L) {
  const char *fn = "fdb_flush";
  lsl_switch *s = lsl_check_switch(L, 1);
  ls_port *p = NULL;
  int vlan = -1;
  bool statics = false, dynamic = true;
  if (!lua_isnoneornil(L, 2)) {
    lsl_check_table(L, 2, fn);
    static const char *const known[] = {"port", "vlan", "static", "dynamic", NULL};
    lsl_check_known(L, 2, fn, known);
    if (lua_getfield(L, 2, "port") != LUA_TNIL) {
      lsl_port *lp = lsl_test_port(L, -1);
      if (!lp) lsl_opt_error(L, fn, "port", "port expected, got %s", luaL_typename(L, -1));
      if (lp->closed) lsl_opt_error(L, fn, "port", "port '%s' is closed", lp->name);
      if (lp->sw != s)
        lsl_opt_error(L, fn, "port", "port '%s' belongs to another switch", lp->name);
      p = lp->p;
    }
    lua_pop(L, 1);
    if (lsl_field(L, 2, "vlan") != LUA_TNIL) vlan = opt_vlan(L, 2, fn);
    lua_pop(L, 1);
    statics = lsl_opt_boolean(L, 2, fn, "static", false);
    dynamic = lsl_opt_boolean(L, 2, fn, "dynamic", true);
  }
  int r = ls_switch_fdb_flush(s->sw, p, vlan, dynamic, statics);
  if (r < 0) return lsl_fail(L, r, "fdb_flush");
  lua_pushinteger(L, r);
  return 1;
}

/* sw:set { name =, aging =, max_macs =, evict = } -> sw; all or nothing */
static int sw_set(lua_State *L) {
  const char *fn = "set";
  lsl_switch *s = lsl_check_switch(L, 1);
  lsl_check_table(L, 2, fn);
  ls_switch_snapshot snap;
  int err = ls_switch_snapshot_get(s->sw, &snap);
  if (err) return lsl_fail(L, err, "set");
  ls_switch_config cfg = snap.cfg;
  parse_config(L, 2, fn, &cfg); /* raises before anything changed */
  err = ls_switch_configure(s->sw, &cfg);
  if (err) return lsl_fail(L, err, "set");
  snprintf(s->name, sizeof(s->name), "%s", cfg.name);
  lua_settop(L, 1);
  return 1;
}

static void push_config(lua_State *L, const ls_switch_config *cfg) {
  lua_createtable(L, 0, 4);
  lua_pushstring(L, cfg->name);
  lua_setfield(L, -2, "name");
  lua_pushnumber(L, lsl_seconds(cfg->aging));
  lua_setfield(L, -2, "aging");
  lua_pushinteger(L, cfg->max_macs);
  lua_setfield(L, -2, "max_macs");
  lua_pushstring(L, evict_names[cfg->evict]);
  lua_setfield(L, -2, "evict");
  lua_pushboolean(L, cfg->vlan_aware);
  lua_setfield(L, -2, "vlan_aware");
  lua_pushstring(L, vlan_protocols[cfg->vlan_tpid == LS_ETH_P_8021AD ? 1 : 0]);
  lua_setfield(L, -2, "vlan_protocol");
  lua_pushboolean(L, cfg->wire);
  lua_setfield(L, -2, "wire");
}

/* sw:config() -> { name =, aging =, max_macs =, evict = } */
static int sw_config(lua_State *L) {
  lsl_switch *s = lsl_check_switch(L, 1);
  ls_switch_snapshot snap;
  int err = ls_switch_snapshot_get(s->sw, &snap);
  if (err) return lsl_fail(L, err, "config");
  push_config(L, &snap.cfg);
  return 1;
}

/* sw:stats() -> counters of the switch and its table */
static int sw_stats(lua_State *L) {
  lsl_switch *s = lsl_check_switch(L, 1);
  ls_switch_snapshot snap;
  int err = ls_switch_snapshot_get(s->sw, &snap);
  if (err) return lsl_fail(L, err, "stats");
  lua_createtable(L, 0, 16);
  int t = lua_gettop(L);
  lsl_setint(L, t, "ports", snap.nports);
  lsl_setint(L, t, "unicast", snap.st.unicast);
  lsl_setint(L, t, "flooded", snap.st.flooded);
  lsl_setint(L, t, "group_src", snap.st.group_src);
  lsl_setint(L, t, "zero_src", snap.st.zero_src);
  lsl_setint(L, t, "moves_folded", snap.st.moves_folded);
  lsl_setint(L, t, "table_full_folded", snap.st.table_full_folded);
  lsl_setint(L, t, "admit_requests", snap.st.admit_requests);
  lsl_setint(L, t, "admitted", snap.st.admitted);
  lsl_setint(L, t, "refused", snap.st.refused);
  lsl_setint(L, t, "admit_overflow", snap.st.admit_overflow);
  lua_createtable(L, 0, 10);
  int f = lua_gettop(L);
  lsl_setint(L, f, "entries", snap.fdb_entries);
  lsl_setint(L, f, "dynamic", snap.fdb_dynamic);
  lsl_setint(L, f, "static", snap.fdb_static);
  lsl_setint(L, f, "memory", snap.fdb_memory);
  lsl_setint(L, f, "max", snap.cfg.max_macs);
  lsl_setint(L, f, "learned", snap.fdb.learned);
  lsl_setint(L, f, "moved", snap.fdb.moved);
  lsl_setint(L, f, "aged", snap.fdb.aged);
  lsl_setint(L, f, "evicted", snap.fdb.evicted);
  lsl_setint(L, f, "refused", snap.fdb.refused);
  lsl_setint(L, f, "refused_port", snap.fdb.refused_owner);
  lsl_setint(L, f, "pinned", snap.fdb.pinned);
  lsl_setint(L, f, "deleted", snap.fdb.deleted);
  lua_setfield(L, t, "fdb");
  return 1;
}

static int sw_close(lua_State *L) {
  lsl_switch *s = luaL_checkudata(L, 1, LSL_SWITCH);
  if (s->closed) return 0;
  ls_switch *sw = s->sw;
  lsl_switch_mark_closed(L, 1);
  lsl_runtime *r = lsl_get_runtime(L);
  if (r->rt && ls_runtime_running(r->rt)) ls_switch_close(sw);
  return 0;
}

static int sw_tostring(lua_State *L) {
  lsl_switch *s = luaL_checkudata(L, 1, LSL_SWITCH);
  if (s->closed) {
    lua_pushfstring(L, "luaswitch.switch \"%s\" (closed)", s->name);
    return 1;
  }
  int n = 0;
  lua_getiuservalue(L, 1, 1);
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    n++;
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  lua_pushfstring(L, "luaswitch.switch \"%s\" (%d port%s)", s->name, n, n == 1 ? "" : "s");
  return 1;
}

static int sw_index(lua_State *L) {
  lsl_switch *s = luaL_checkudata(L, 1, LSL_SWITCH);
  const char *k = luaL_checkstring(L, 2);
  lua_getfield(L, LUA_REGISTRYINDEX, LSL_SWITCH_METHODS);
  if (lua_getfield(L, -1, k) != LUA_TNIL) return 1;
  if (strcmp(k, "name") == 0)
    lua_pushstring(L, s->name);
  else if (strcmp(k, "id") == 0)
    lua_pushinteger(L, s->id);
  else if (strcmp(k, "closed") == 0)
    lua_pushboolean(L, s->closed);
  else
    lua_pushnil(L);
  return 1;
}

static const luaL_Reg sw_methods[] = {
    {"port", sw_port},
    {"ports", sw_ports},
    {"fdb", sw_fdb},
    {"fdb_add", sw_fdb_add},
    {"fdb_del", sw_fdb_del},
    {"fdb_flush", sw_fdb_flush},
    {"set", sw_set},
    {"config", sw_config},
    {"stats", sw_stats},
    {"close", sw_close},
    {"vlan_aging", sw_vlan_aging},
    {"admit", sw_admit},
    {NULL, NULL},
};

void lsl_open_switch(lua_State *L) {
  luaL_newmetatable(L, LSL_SWITCH);
  lua_pushcfunction(L, sw_index);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, sw_close);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, sw_close);
  lua_setfield(L, -2, "__close");
  lua_pushcfunction(L, sw_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushliteral(L, "luaswitch.switch");
  lua_setfield(L, -2, "__name");
  lua_pop(L, 1);
  luaL_newlib(L, sw_methods);
  luaL_setfuncs(L, lsl_switch_policy_methods, 0);
  lua_setfield(L, LUA_REGISTRYINDEX, LSL_SWITCH_METHODS);
}
