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
  lsl_setint(L, t, "hangups", st.hangups);
  lua_createtable(L, 0, 12);
  int d = lua_gettop(L);
  lsl_setint(L, d, "runt", st.drops.runt);
  lsl_setint(L, d, "oversize", st.drops.oversize);
  lsl_setint(L, d, "down", st.drops.down);
  lsl_setint(L, d, "no_dest", st.drops.no_dest);
  lsl_setint(L, d, "bad_peer", st.drops.bad_peer);
  lsl_setint(L, d, "rx_error", st.drops.rx_error);
  lsl_setint(L, d, "bad_request", st.drops.bad_request);
  lsl_setint(L, d, "busy", st.drops.busy);
  lsl_setint(L, d, "tx_full", st.drops.tx_full);
  lsl_setint(L, d, "tx_mtu", st.drops.tx_mtu);
  lsl_setint(L, d, "tx_error", st.drops.tx_error);
  lsl_setint(L, d, "tx_down", st.drops.tx_down);
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
  lua_pushboolean(L, in.offloads);
  lua_setfield(L, t, "offloads");
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

/* p:set { name =, mtu =, txqlen = } -> p; all or nothing */
static int p_set(lua_State *L) {
  const char *fn = "set";
  lsl_port *p = lsl_check_port(L, 1);
  lsl_check_table(L, 2, fn);
  static const char *const known[] = {"name", "mtu", "txqlen", NULL};
  lsl_check_known(L, 2, fn, known);
  ls_port_info in;
  int err = ls_port_info_get(p->p, &in);
  if (err) return lsl_fail(L, err, "set");
  ls_port_config cfg = in.cfg;
  const char *name = lsl_opt_string(L, 2, fn, "name", NULL, LS_NAME_MAX - 1);
  if (name) snprintf(cfg.name, sizeof(cfg.name), "%s", name);
  cfg.mtu = (uint32_t)lsl_opt_integer(L, 2, fn, "mtu", cfg.mtu, LS_MTU_MIN, LS_MTU_MAX);
  cfg.txqlen = (uint32_t)lsl_opt_integer(L, 2, fn, "txqlen", cfg.txqlen, 1, LS_TXQLEN_MAX);
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
  lua_setfield(L, LUA_REGISTRYINDEX, LSL_PORT_METHODS);
}
