/*
 * lport.c — the luaswitch.port userdata: state, counters, configuration and closing of
 * one port, plus access to the VM end of a socketpair port.
 *
 * The userdata's user value is its switch (keeping the switch userdata alive while a
 * port is referenced). Open ports are also held by the registry (LSL_PORTS) so events
 * can name them; closed ones move to a weak table.
 */
#include "frame.h"
#include "lutil.h"
#include "port.h"
#include "port_dgram.h"
#include "port_vxlan.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void lsl_port_push(lua_State *L, int sw_idx, ls_port *p, const char *kind) {
  sw_idx = lua_absindex(L, sw_idx);
  lsl_switch *s = luaL_checkudata(L, sw_idx, LSL_SWITCH);
  lsl_port *lp = lua_newuserdatauv(L, sizeof(*lp), 1);
  memset(lp, 0, sizeof(*lp));
  lp->p = p;
  lp->id = p->id;
  lp->kind = kind;
  lp->sw = s;
  snprintf(lp->name, sizeof(lp->name), "%s", p->cfg.name);
  luaL_setmetatable(L, LSL_PORT);
  lua_pushvalue(L, sw_idx);
  lua_setiuservalue(L, -2, 1);
  /* switch's table of ports */
  lua_getiuservalue(L, sw_idx, 1);
  lua_pushvalue(L, -2);
  lua_rawseti(L, -2, lp->id);
  lua_pop(L, 1);
  lua_getfield(L, LUA_REGISTRYINDEX, LSL_PORTS);
  lua_pushvalue(L, -2);
  lua_rawseti(L, -2, lp->id);
  lua_pop(L, 1);
}

static int p_up(lua_State *L) {
  lsl_port *p = lsl_check_port(L, 1);
  int err = ls_port_set_admin(p->p, true);
  if (err) return lsl_fail(L, err, "up");
  lua_settop(L, 1);
  return 1;
}

static int p_down(lua_State *L) {
  lsl_port *p = lsl_check_port(L, 1);
  int err = ls_port_set_admin(p->p, false);
  if (err) return lsl_fail(L, err, "down");
  lua_settop(L, 1);
  return 1;
}

/* p:stats() -> { rx_frames =, rx_bytes =, tx_frames =, tx_bytes =, drops = { ... }, ... } */
static int p_stats(lua_State *L) {
  lsl_port *p = lsl_check_port(L, 1);
  ls_port_stats st;
  int err = ls_port_stats_get(p->p, &st);
  if (err) return lsl_fail(L, err, "stats");
  lua_createtable(L, 0, 10);
  int t = lua_gettop(L);
  lsl_setint(L, t, "rx_frames", st.rx_frames);
  lsl_setint(L, t, "rx_bytes", st.rx_bytes);
  lsl_setint(L, t, "rx_forwarded", st.rx_forwarded);
  lsl_setint(L, t, "tx_queued", st.tx_queued);
  lsl_setint(L, t, "tx_frames", st.tx_frames);
  lsl_setint(L, t, "tx_bytes", st.tx_bytes);
  lsl_setint(L, t, "rx_control", st.rx_control);
  lsl_setint(L, t, "injected", st.injected);
  lsl_setint(L, t, "sent", st.sent);
  lsl_setint(L, t, "learn_refused", st.learn_refused);
  lsl_setint(L, t, "learn_holds", st.learn_holds);
  lsl_setint(L, t, "stalls", st.stalls);
  lsl_setint(L, t, "rx_bpdu", st.rx_bpdu);
  lsl_setint(L, t, "rx_duplicated", st.rx_duplicated);
  lsl_setint(L, t, "tx_duplicated", st.tx_duplicated);
  lsl_setint(L, t, "hangups", st.hangups);
  lua_createtable(L, 0, 16);
  int d = lua_gettop(L);
  lsl_setint(L, d, "runt", st.drops.runt);
  lsl_setint(L, d, "oversize", st.drops.oversize);
  lsl_setint(L, d, "down", st.drops.down);
  lsl_setint(L, d, "no_dest", st.drops.no_dest);
  lsl_setint(L, d, "link_local", st.drops.link_local);
  lsl_setint(L, d, "vlan", st.drops.vlan);
  lsl_setint(L, d, "locked", st.drops.locked);
  lsl_setint(L, d, "filter", st.drops.filter);
  lsl_setint(L, d, "police", st.drops.police);
  lsl_setint(L, d, "punted", st.drops.punted);
  lsl_setint(L, d, "punt_limit", st.drops.punt_limit);
  lsl_setint(L, d, "admission", st.drops.admission);
  lsl_setint(L, d, "stp", st.drops.stp);
  lsl_setint(L, d, "no_buffer", st.drops.no_buffer);
  lsl_setint(L, d, "refused", st.drops.refused);
  lsl_setint(L, d, "tx_filter", st.drops.tx_filter);
  lsl_setint(L, d, "impair", st.drops.impair);
  lsl_setint(L, d, "tx_impair", st.drops.tx_impair);
  lsl_setint(L, d, "bad_peer", st.drops.bad_peer);
  lsl_setint(L, d, "rx_error", st.drops.rx_error);
  lsl_setint(L, d, "framing", st.drops.framing);
  lsl_setint(L, d, "encap", st.drops.encap);
  lsl_setint(L, d, "no_remote", st.drops.no_remote);
  lsl_setint(L, d, "bad_request", st.drops.bad_request);
  lsl_setint(L, d, "busy", st.drops.busy);
  lsl_setint(L, d, "tx_full", st.drops.tx_full);
  lsl_setint(L, d, "tx_mtu", st.drops.tx_mtu);
  lsl_setint(L, d, "tx_error", st.drops.tx_error);
  lsl_setint(L, d, "tx_down", st.drops.tx_down);
  lsl_setint(L, d, "capture_full", st.drops.capture_full);
  lua_setfield(L, t, "drops");
  return 1;
}

/* p:info() -> { id =, name =, kind =, mtu =, txqlen =, admin =, link =, state =, ... } */
static int p_info(lua_State *L) {
  lsl_port *p = lsl_check_port(L, 1);
  ls_port_info in;
  int err = ls_port_info_get(p->p, &in);
  if (err) return lsl_fail(L, err, "info");
  lua_createtable(L, 0, 12);
  int t = lua_gettop(L);
  lsl_setint(L, t, "id", in.id);
  lua_pushstring(L, in.cfg.name);
  lua_setfield(L, t, "name");
  lua_pushstring(L, p->kind);
  lua_setfield(L, t, "kind");
  lsl_setint(L, t, "mtu", in.cfg.mtu);
  lsl_setint(L, t, "txqlen", in.cfg.txqlen);
  lsl_setint(L, t, "queued", in.txq_len);
  lsl_push_flags(L, t, &in.cfg);
  lsl_setint(L, t, "macs", in.macs);
  lsl_setint(L, t, "static_macs", in.static_macs);
  lua_pushstring(L, lsl_stp_state_name(in.stp_state));
  lua_setfield(L, t, "stp_state");
  lua_pushstring(L, lsl_stp_role_name(in.stp_role));
  lua_setfield(L, t, "stp_role");
  lua_pushstring(L, in.admin_up ? "up" : "down");
  lua_setfield(L, t, "admin");
  lua_pushstring(L, in.link_up ? "up" : "down");
  lua_setfield(L, t, "link");
  lua_pushstring(L, in.admin_up && in.link_up ? "up" : "down");
  lua_setfield(L, t, "state");
  if (in.path[0]) {
    lua_pushstring(L, in.path);
    lua_setfield(L, t, "path");
  }
  if (in.peer[0]) {
    lua_pushstring(L, in.peer);
    lua_setfield(L, t, "peer");
  }
  if (in.ifname[0]) {
    lua_pushstring(L, in.ifname);
    lua_setfield(L, t, "ifname");
  }
  if (in.netns[0]) {
    lua_pushstring(L, in.netns);
    lua_setfield(L, t, "netns");
  }
  if (in.error[0]) {
    lua_pushstring(L, in.error);
    lua_setfield(L, t, "error");
  }
  lua_pushboolean(L, in.offloads);
  lua_setfield(L, t, "offloads");
  if (in.vni >= 0) lsl_setint(L, t, "vni", (uint64_t)in.vni);
  lua_getfield(L, LUA_REGISTRYINDEX, LSL_PORTS);
  if (in.mirror_in_id) {
    lua_rawgeti(L, -1, in.mirror_in_id);
    lua_setfield(L, t, "mirror_in");
  }
  if (in.mirror_out_id) {
    lua_rawgeti(L, -1, in.mirror_out_id);
    lua_setfield(L, t, "mirror_out");
  }
  lua_pop(L, 1);
  lua_pushboolean(L, in.mirror_dest);
  lua_setfield(L, t, "mirror_dest");
  if (in.role) {
    lua_pushstring(L, in.role);
    lua_setfield(L, t, "role");
  }
  if (in.fd >= 0) lsl_setint(L, t, "peer_fd", in.fd);
  lua_getiuservalue(L, 1, 1);
  lua_setfield(L, t, "switch");
  return 1;
}

/* p:state() -> "up" | "down", admin ("up"/"down"), link ("up"/"down") */
static int p_state(lua_State *L) {
  lsl_port *p = lsl_check_port(L, 1);
  ls_port_info in;
  int err = ls_port_info_get(p->p, &in);
  if (err) return lsl_fail(L, err, "state");
  lua_pushstring(L, in.admin_up && in.link_up ? "up" : "down");
  lua_pushstring(L, in.admin_up ? "up" : "down");
  lua_pushstring(L, in.link_up ? "up" : "down");
  return 3;
}

/* p:set { name =, mtu =, txqlen =, learning =, flood =, mcast_flood =, bcast_flood =,
 *         isolated =, hairpin =, locked = } -> p; all or nothing */
static int p_set(lua_State *L) {
  const char *fn = "set";
  lsl_port *p = lsl_check_port(L, 1);
  lsl_check_table(L, 2, fn);
  static const char *const known[] = {
      "name",        "mtu",          "txqlen",   "learning",    "flood",       "mcast_flood",
      "bcast_flood", "isolated",     "hairpin",  "locked",      "max_macs",    "admission",
      "stp_cost",    "stp_priority", "stp_edge", "learn_limit", "learn_burst", NULL};
  lsl_check_known(L, 2, fn, known);
  ls_port_info in;
  int err = ls_port_info_get(p->p, &in);
  if (err) return lsl_fail(L, err, "set");
  ls_port_config cfg = in.cfg;
  const char *name = lsl_opt_string(L, 2, fn, "name", NULL, LS_NAME_MAX - 1);
  if (name) snprintf(cfg.name, sizeof(cfg.name), "%s", name);
  cfg.mtu = (uint32_t)lsl_opt_integer(L, 2, fn, "mtu", cfg.mtu, LS_MTU_MIN, LS_MTU_MAX);
  cfg.txqlen = (uint32_t)lsl_opt_integer(L, 2, fn, "txqlen", cfg.txqlen, 1, LS_TXQLEN_MAX);
  lsl_read_flags(L, 2, fn, &cfg);
  err = ls_port_configure(p->p, &cfg);
  if (err == -EEXIST) lsl_opt_error(L, fn, "name", "a port named '%s' already exists", cfg.name);
  if (err) return lsl_fail(L, err, "set");
  snprintf(p->name, sizeof(p->name), "%s", cfg.name);
  lua_settop(L, 1);
  return 1;
}

static lsl_port *check_socketpair(lua_State *L) {
  lsl_port *p = lsl_check_port(L, 1);
  if (!ls_port_is_socketpair(p->p)) {
    lua_pushfstring(L, "port '%s' is a %s port, not a socketpair", p->name, p->kind);
    luaL_argerror(L, 1, lua_tostring(L, -1));
  }
  return p;
}

/* p:peer_fd() -> fd of the VM end (still owned by the port; see release_peer) */
static int p_peer_fd(lua_State *L) {
  lsl_port *p = check_socketpair(L);
  int fd = ls_port_socketpair_peer_fd(p->p);
  if (fd < 0) return luaL_error(L, "port '%s': the peer end was already handed over", p->name);
  lua_pushinteger(L, fd);
  return 1;
}

/* p:release_peer() -> closes the switch's copy of the VM end (once the VM holds it) */
static int p_release_peer(lua_State *L) {
  lsl_port *p = check_socketpair(L);
  int fd = ls_port_socketpair_take_peer(p->p);
  if (fd >= 0) close(fd);
  lua_pushboolean(L, fd >= 0);
  return 1;
}

/* p:endpoint() -> an endpoint owning the VM end, for sending and receiving from Lua */
static int p_endpoint(lua_State *L) {
  lsl_port *p = check_socketpair(L);
  int fd = ls_port_socketpair_take_peer(p->p);
  if (fd < 0) return luaL_error(L, "port '%s': the peer end was already handed over", p->name);
  lsl_endpoint_push_fd(L, fd);
  return 1;
}

static lsl_port *check_vxlan(lua_State *L) {
  lsl_port *p = lsl_check_port(L, 1);
  if (!ls_port_is_vxlan(p->p)) {
    lua_pushfstring(L, "port '%s' is a %s port, not a vxlan port", p->name, p->kind);
    luaL_argerror(L, 1, lua_tostring(L, -1));
  }
  return p;
}

static ls_addr check_remote(lua_State *L, int arg) {
  const char *text = luaL_checkstring(L, arg);
  ls_addr a;
  int r = ls_addr_parse(text, false, LS_VXLAN_PORT, &a);
  if (r == -EINVAL) luaL_argerror(L, arg, "host or host:port expected");
  if (r < 0) {
    lua_pushfstring(L, "cannot resolve '%s': %s", text, uv_strerror(r));
    luaL_argerror(L, arg, lua_tostring(L, -1));
  }
  return a;
}

/* p:vxlan_add(mac, remote) — a static inner MAC -> remote VTEP entry */
static int p_vxlan_add(lua_State *L) {
  lsl_port *p = check_vxlan(L);
  uint8_t mac[6];
  lsl_check_mac(L, 2, mac);
  ls_addr a = check_remote(L, 3);
  int err = ls_vxlan_add(p->p, mac, &a);
  if (err) return lsl_fail(L, err, "vxlan_add");
  lua_pushboolean(L, 1);
  return 1;
}

/* p:vxlan_del(mac) -> true if it was there */
static int p_vxlan_del(lua_State *L) {
  lsl_port *p = check_vxlan(L);
  uint8_t mac[6];
  lsl_check_mac(L, 2, mac);
  int r = ls_vxlan_del(p->p, mac);
  if (r < 0) return lsl_fail(L, r, "vxlan_del");
  lua_pushboolean(L, r > 0);
  return 1;
}

/* p:vxlan_flood(remote) — add a remote VTEP to the flood list */
static int p_vxlan_flood(lua_State *L) {
  lsl_port *p = check_vxlan(L);
  ls_addr a = check_remote(L, 2);
  int err = ls_vxlan_add_flood(p->p, &a);
  if (err) return lsl_fail(L, err, "vxlan_flood");
  lua_pushboolean(L, 1);
  return 1;
}

/* p:vxlan_fdb() -> { { mac =, remote =, age =, static = }, ..., { remote =, flood = true } } */
static int p_vxlan_fdb(lua_State *L) {
  lsl_port *p = check_vxlan(L);
  ls_vxlan_record *recs = NULL;
  uint32_t n = 0;
  int err = ls_vxlan_dump(p->p, &recs, &n);
  if (err) {
    free(recs);
    return lsl_fail(L, err, "vxlan_fdb");
  }
  lua_createtable(L, (int)n, 0);
  for (uint32_t i = 0; i < n; i++) {
    char text[LS_ADDR_TEXT];
    lua_createtable(L, 0, 5);
    ls_addr_format(&recs[i].remote, text, sizeof(text));
    lua_pushstring(L, text);
    lua_setfield(L, -2, "remote");
    if (recs[i].has_mac) {
      lsl_push_mac(L, recs[i].mac);
      lua_setfield(L, -2, "mac");
      lua_pushnumber(L, lsl_seconds(recs[i].age));
      lua_setfield(L, -2, "age");
      lua_pushboolean(L, recs[i].is_static);
      lua_setfield(L, -2, "static");
    } else {
      lua_pushboolean(L, 1);
      lua_setfield(L, -2, "flood");
    }
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  free(recs);
  return 1;
}

/* p:mirror(dest [, "in" | "out" | "both"]) -> p: copies of the frames p receives ("in"),
 * sends ("out") or both go to dest, another port of the same switch, which then carries
 * nothing else. p:mirror(nil [, direction]) stops. */
static int p_mirror(lua_State *L) {
  lsl_port *p = lsl_check_port(L, 1);
  lsl_port *dest = NULL;
  if (!lua_isnoneornil(L, 2) && !(lua_type(L, 2) == LUA_TBOOLEAN && !lua_toboolean(L, 2))) {
    dest = lsl_check_port(L, 2);
    if (dest == p) luaL_argerror(L, 2, "a port cannot mirror to itself");
    if (dest->sw != p->sw) {
      lua_pushfstring(L, "port '%s' belongs to another switch", dest->name);
      luaL_argerror(L, 2, lua_tostring(L, -1));
    }
  }
  static const char *const dirs[] = {"both", "in", "out", NULL};
  int dir = luaL_checkoption(L, 3, "both", dirs);
  ls_port_info in;
  int err = ls_port_info_get(p->p, &in);
  if (err) return lsl_fail(L, err, "mirror");
  /* Keep the direction not named as it is. */
  ls_port *cur_in = NULL, *cur_out = NULL;
  lua_getfield(L, LUA_REGISTRYINDEX, LSL_PORTS);
  if (in.mirror_in_id && lua_rawgeti(L, -1, in.mirror_in_id) == LUA_TUSERDATA)
    cur_in = ((lsl_port *)lua_touserdata(L, -1))->p;
  lua_pop(L, 1);
  if (in.mirror_out_id && lua_rawgeti(L, -1, in.mirror_out_id) == LUA_TUSERDATA)
    cur_out = ((lsl_port *)lua_touserdata(L, -1))->p;
  lua_pop(L, 2);
  ls_port *to = dest ? dest->p : NULL;
  err = ls_port_set_mirror(p->p, dir == 2 ? cur_in : to, dir == 1 ? cur_out : to);
  if (err) return lsl_fail(L, err, "mirror");
  lua_settop(L, 1);
  return 1;
}

static int p_close(lua_State *L) {
  lsl_port *p = luaL_checkudata(L, 1, LSL_PORT);
  if (p->closed) return 0;
  ls_port *cp = p->p;
  lsl_port_mark_closed(L, 1);
  lsl_runtime *r = lsl_get_runtime(L);
  if (r->rt && ls_runtime_running(r->rt)) ls_port_close(cp);
  return 0;
}

static int p_tostring(lua_State *L) {
  lsl_port *p = luaL_checkudata(L, 1, LSL_PORT);
  if (p->closed)
    lua_pushfstring(L, "luaswitch.port \"%s\" (%s, closed)", p->name, p->kind);
  else
    lua_pushfstring(L, "luaswitch.port \"%s\" (%s on \"%s\")", p->name, p->kind, p->sw->name);
  return 1;
}

static int p_index(lua_State *L) {
  lsl_port *p = luaL_checkudata(L, 1, LSL_PORT);
  const char *k = luaL_checkstring(L, 2);
  lua_getfield(L, LUA_REGISTRYINDEX, LSL_PORT_METHODS);
  if (lua_getfield(L, -1, k) != LUA_TNIL) return 1;
  if (strcmp(k, "name") == 0)
    lua_pushstring(L, p->name);
  else if (strcmp(k, "id") == 0)
    lua_pushinteger(L, p->id);
  else if (strcmp(k, "kind") == 0)
    lua_pushstring(L, p->kind);
  else if (strcmp(k, "closed") == 0)
    lua_pushboolean(L, p->closed);
  else if (strcmp(k, "switch") == 0)
    lua_getiuservalue(L, 1, 1);
  else
    lua_pushnil(L);
  return 1;
}

static const luaL_Reg p_methods[] = {
    {"up", p_up},
    {"down", p_down},
    {"stats", p_stats},
    {"info", p_info},
    {"state", p_state},
    {"set", p_set},
    {"peer_fd", p_peer_fd},
    {"release_peer", p_release_peer},
    {"endpoint", p_endpoint},
    {"mirror", p_mirror},
    {"vxlan_add", p_vxlan_add},
    {"vxlan_del", p_vxlan_del},
    {"vxlan_flood", p_vxlan_flood},
    {"vxlan_fdb", p_vxlan_fdb},
    {"close", p_close},
    {NULL, NULL},
};

void lsl_open_port(lua_State *L) {
  luaL_newmetatable(L, LSL_PORT);
  lua_pushcfunction(L, p_index);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, p_close);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, p_close);
  lua_setfield(L, -2, "__close");
  lua_pushcfunction(L, p_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushliteral(L, "luaswitch.port");
  lua_setfield(L, -2, "__name");
  lua_pop(L, 1);
  luaL_newlib(L, p_methods);
  luaL_setfuncs(L, lsl_port_policy_methods, 0);
  lua_setfield(L, LUA_REGISTRYINDEX, LSL_PORT_METHODS);
}
