/*
 * lnetns.c — luaswitch.core's namespace batch calls (src/netns.h), the engine of
 * luaswitch.netns.create_many / close_all and of labs' start and stop:
 *
 *    errs = core.netns_add(names[, threads])   -- `ip netns add` each, lo up
 *    errs = core.netns_del(names[, threads])   -- `ip netns del` each
 *    n = core.netns_kill(names)                -- SIGKILL every process inside them
 *    ok, msg = core.netns_addr(name, ifname, "10.0.0.1/24" | "fd00::1/64")
 *    mac, msg = core.netns_mac(name, ifname)
 *    ok, msg = core.netns_route(name, "10.1.0.0/16" | "default", "10.0.0.254")
 *    ok, msg = core.netns_sysctl(name, "net/ipv6/conf/eth0/disable_ipv6", "1")
 *    n, msg = core.netns_neigh(name, ifname, "10.0.0.1/24", { ip, mac, ip, mac, ... }[, "del"])
 *                                              -- permanent neighbour entries for the
 *                                              -- addresses on that prefix (not the
 *                                              -- interface's own), or "del" them;
 *                                              -- n = how many
 *
 * errs is a table name -> message for the names that failed (empty when all worked).
 * Control plane only; the data plane is not involved.
 */
#include <lauxlib.h>
#include <lua.h>

#include "lutil.h"
#include "frame.h"
#include "netns.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* The names of table argument 1 (strings), in a userdata kept on the stack. */
static const char **check_names(lua_State *L, const char *fn, uint32_t *n) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_Integer len = luaL_len(L, 1);
  if (len > 1000000) luaL_error(L, "bad argument #1 to '%s' (at most 1,000,000 names)", fn);
  const char **names = lua_newuserdatauv(L, sizeof(char *) * (size_t)(len ? len : 1), 0);
  for (lua_Integer i = 1; i <= len; i++) {
    lua_geti(L, 1, i);
    if (lua_type(L, -1) != LUA_TSTRING)
      luaL_error(L, "bad argument #1 to '%s' (entry %d: a namespace name expected, got %s)", fn,
                 (int)i, luaL_typename(L, -1));
    names[i - 1] = lua_tostring(L, -1); /* kept alive by the table */
    lua_pop(L, 1);
  }
  *n = (uint32_t)len;
  return names;
}

static int batch(lua_State *L, const char *fn,
                 uint32_t (*op)(const char *const *, uint32_t, int *, unsigned)) {
  lua_Integer threads = luaL_optinteger(L, 2, 16);
  luaL_argcheck(L, threads >= 1 && threads <= 64, 2, "threads: 1 to 64 expected");
  lua_settop(L, 1);
  uint32_t n;
  const char **names = check_names(L, fn, &n);
  int *errs = lua_newuserdatauv(L, sizeof(int) * (n ? n : 1), 0);
  op(names, n, errs, (unsigned)threads);
  lua_newtable(L);
  for (uint32_t i = 0; i < n; i++)
    if (errs[i]) {
      lua_pushstring(L, strerror(-errs[i]));
      lua_setfield(L, -2, names[i]);
    }
  return 1;
}

static int l_add(lua_State *L) {
  return batch(L, "netns_add", ls_netns_add_many);
}

static int l_del(lua_State *L) {
  return batch(L, "netns_del", ls_netns_del_many);
}

static int l_kill(lua_State *L) {
  uint32_t n;
  const char **names = check_names(L, "netns_kill", &n);
  lua_pushinteger(L, ls_netns_kill_all(names, n));
  return 1;
}

/* Parse "addr/len" into family, address and prefix; false if it is not one. */
static bool parse_prefix(const char *text, int *family, unsigned char addr[16], unsigned *prefix) {
  char ip[64];
  const char *slash = strchr(text, '/');
  if (!slash || (size_t)(slash - text) >= sizeof(ip) || sscanf(slash + 1, "%u", prefix) != 1)
    return false;
  memcpy(ip, text, (size_t)(slash - text));
  ip[slash - text] = '\0';
  *family = AF_INET;
  if (inet_pton(AF_INET, ip, addr) != 1) {
    *family = AF_INET6;
    if (inet_pton(AF_INET6, ip, addr) != 1) return false;
  }
  return *prefix <= (*family == AF_INET ? 32u : 128u);
}

static bool same_prefix(const unsigned char *a, const unsigned char *b, unsigned bits) {
  unsigned whole = bits / 8, rest = bits % 8;
  if (memcmp(a, b, whole)) return false;
  if (!rest) return true;
  unsigned char mask = (unsigned char)(0xff << (8 - rest));
  return (a[whole] & mask) == (b[whole] & mask);
}

static int l_addr(lua_State *L) {
  const char *ns = luaL_checkstring(L, 1), *ifname = luaL_checkstring(L, 2);
  const char *text = luaL_checkstring(L, 3);
  unsigned char addr[16];
  unsigned prefix;
  int family;
  if (!parse_prefix(text, &family, addr, &prefix))
    return luaL_argerror(L, 3,
                         "an address with a prefix length expected (10.0.0.1/24, fd00::1/64)");
  int r = ls_netns_addr_add(ns, ifname, family, addr, prefix);
  if (r) {
    char where[300];
    snprintf(where, sizeof(where), "adding %s to %s in %s", text, ifname, ns);
    return lsl_fail(L, r, where);
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int l_mac(lua_State *L) {
  const char *ns = luaL_checkstring(L, 1), *ifname = luaL_checkstring(L, 2);
  uint8_t mac[6];
  int r = ls_netns_link_mac(ns, ifname, mac);
  if (r) {
    char where[300];
    snprintf(where, sizeof(where), "the MAC of %s in %s", ifname, ns);
    return lsl_fail(L, r, where);
  }
  lsl_push_mac(L, mac);
  return 1;
}

static int l_neigh(lua_State *L) {
  const char *ns = luaL_checkstring(L, 1), *ifname = luaL_checkstring(L, 2);
  const char *text = luaL_checkstring(L, 3);
  luaL_checktype(L, 4, LUA_TTABLE);
  static const char *const modes[] = {"add", "del", NULL};
  bool del = luaL_checkoption(L, 5, "add", modes) == 1;
  int family;
  unsigned char own[16];
  unsigned prefix;
  if (!parse_prefix(text, &family, own, &prefix))
    return luaL_argerror(L, 3,
                         "an address with a prefix length expected (10.0.0.1/24, fd00::1/64)");
  uint8_t self_mac[6];
  int r = ls_netns_link_mac(ns, ifname, self_mac);
  char where[300];
  if (r) {
    snprintf(where, sizeof(where), "the MAC of %s in %s", ifname, ns);
    return lsl_fail(L, r, where);
  }
  lua_Integer len = luaL_len(L, 4);
  if (len % 2) return luaL_argerror(L, 4, "pairs of address and MAC expected");
  size_t alen = family == AF_INET ? 4 : 16;
  size_t cap = (size_t)(len / 2 ? len / 2 : 1);
  unsigned char *addrs = lua_newuserdatauv(L, cap * alen, 0);
  uint8_t *macs = lua_newuserdatauv(L, cap * 6, 0);
  uint32_t n = 0;
  for (lua_Integer i = 1; i < len; i += 2) {
    lua_geti(L, 4, i);
    lua_geti(L, 4, i + 1);
    const char *ip = lua_tostring(L, -2);
    unsigned char a[16];
    if (!ip || inet_pton(family, ip, a) != 1 || !same_prefix(a, own, prefix) ||
        !memcmp(a, own, alen)) {
      lua_pop(L, 2); /* another family, another subnet, or the interface itself */
      continue;
    }
    const char *mac = lua_tostring(L, -1);
    if (!mac || ls_mac_parse(mac, macs + (size_t)n * 6) != 0)
      return luaL_error(
          L, "bad argument #4 to 'netns_neigh' (entry %d: a MAC address expected, got %s)",
          (int)i + 1, mac ? mac : luaL_typename(L, -1));
    if (memcmp(macs + (size_t)n * 6, self_mac, 6)) {
      memcpy(addrs + (size_t)n * alen, a, alen);
      n++;
    }
    lua_pop(L, 2);
  }
  r = ls_netns_neigh(ns, ifname, family, addrs, macs, n, del);
  if (r) {
    snprintf(where, sizeof(where), "neighbour entries on %s in %s", ifname, ns);
    return lsl_fail(L, r, where);
  }
  lua_pushinteger(L, n);
  return 1;
}

static int l_route(lua_State *L) {
  const char *ns = luaL_checkstring(L, 1), *dst = luaL_checkstring(L, 2);
  const char *via = luaL_checkstring(L, 3);
  unsigned char gw[16], net[16] = {0};
  int family = AF_INET;
  if (inet_pton(AF_INET, via, gw) != 1) {
    family = AF_INET6;
    if (inet_pton(AF_INET6, via, gw) != 1)
      return luaL_argerror(L, 3, "a gateway address like 10.0.0.254 expected");
  }
  unsigned prefix = 0;
  if (strcmp(dst, "default") != 0) {
    int dfam;
    if (!parse_prefix(dst, &dfam, net, &prefix) || dfam != family)
      return luaL_argerror(
          L, 2,
          "\"default\" or a destination of the gateway's family with a prefix length expected");
  }
  int r = ls_netns_route_add(ns, family, net, prefix, gw);
  if (r) {
    char where[300];
    snprintf(where, sizeof(where), "route %s via %s in %s", dst, via, ns);
    return lsl_fail(L, r, where);
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int l_sysctl(lua_State *L) {
  const char *ns = luaL_checkstring(L, 1), *key = luaL_checkstring(L, 2);
  const char *value = luaL_checkstring(L, 3);
  int r = ls_netns_sysctl(ns, key, value);
  if (r) {
    char where[400];
    snprintf(where, sizeof(where), "writing %s to /proc/sys/%s in %s", value, key, ns);
    return lsl_fail(L, r, where);
  }
  lua_pushboolean(L, 1);
  return 1;
}

void lsl_open_netns(lua_State *L) {
  static const luaL_Reg fns[] = {
      {"netns_add", l_add},       {"netns_del", l_del},     {"netns_kill", l_kill},
      {"netns_addr", l_addr},     {"netns_mac", l_mac},     {"netns_neigh", l_neigh},
      {"netns_sysctl", l_sysctl}, {"netns_route", l_route}, {NULL, NULL}};
  luaL_setfuncs(L, fns, 0);
}
