/*
 * lprobe.c — luaswitch.core.probe: ICMP echo reachability between hosts in namespaces
 * (src/probe.h), the engine of labs' pingall.
 *
 *    local rtts, stats = core.probe(hosts, pairs, opts)
 *
 * hosts: array of { ip = "10.0.0.1" | "fd00::1", netns = "name" (optional: this one) };
 * pairs: flat array of 1-based host indexes, source then destination ({ 1, 2, 2, 1 });
 * opts: window (requests outstanding, default 64), attempts (per pair, default 3),
 * timeout (seconds per reply, default 1). Returns, per pair, its round-trip time in ms or
 * false (no attempt answered), and { sent, replies, timeouts, stray, elapsed }. A socket
 * that cannot be opened returns nil, message, code, naming the host.
 */
#include "lutil.h"
#include "probe.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *const PROBE_OPTS[] = {"window", "attempts", "timeout", NULL};

static void check_ip(lua_State *L, int i, const char *ip, struct sockaddr_storage *ss) {
  memset(ss, 0, sizeof(*ss));
  struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
  if (inet_pton(AF_INET, ip, &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
  } else if (inet_pton(AF_INET6, ip, &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
  } else {
    luaL_error(L,
               "bad argument #1 to 'probe' (host %d: ip must be an IPv4 or IPv6 address, got '%s')",
               i, ip);
  }
}

/* A signal interrupted the prober's wait: did its handler ask the interpreter to stop?
 * The handlers of lua5.4 and the luaswitch executable set a count hook to raise
 * "interrupted!"; any change of the hook since the call began counts. */
typedef struct hook_seen {
  lua_State *L;
  lua_Hook hook;
  int mask;
} hook_seen;

static bool hook_changed(void *arg) {
  hook_seen *h = arg;
  return lua_gethook(h->L) != h->hook || lua_gethookmask(h->L) != h->mask;
}

int lsl_probe(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checktype(L, 2, LUA_TTABLE);
  ls_probe_opts o = {0};
  if (!lua_isnoneornil(L, 3)) {
    lsl_check_table(L, 3, "probe");
    lsl_check_known(L, 3, "probe", PROBE_OPTS);
    o.window = (uint32_t)lsl_opt_integer(L, 3, "probe", "window", 64, 1, 65536);
    o.attempts = (uint32_t)lsl_opt_integer(L, 3, "probe", "attempts", 3, 1, 255);
    o.timeout_ns = (uint64_t)(lsl_opt_number(L, 3, "probe", "timeout", 1, 0.001, 3600) * 1e9);
  }
  lua_Integer nh = luaL_len(L, 1), np2 = luaL_len(L, 2);
  if (nh > 1000000) return luaL_argerror(L, 1, "at most 1,000,000 hosts");
  if (np2 % 2) return luaL_argerror(L, 2, "a flat list of (source, destination) pairs expected");
  if (np2 / 2 > 100000000) return luaL_argerror(L, 2, "at most 100,000,000 pairs");
  uint32_t nhosts = (uint32_t)nh, npairs = (uint32_t)(np2 / 2);

  /* userdata, so that an error raised while reading the arguments frees them */
  ls_probe_host *hosts = lua_newuserdatauv(L, sizeof(*hosts) * (nhosts ? nhosts : 1), 0);
  for (uint32_t i = 0; i < nhosts; i++) {
    if (lua_geti(L, 1, i + 1) != LUA_TTABLE)
      return luaL_error(L, "bad argument #1 to 'probe' (host %d: a table expected, got %s)",
                        (int)i + 1, luaL_typename(L, -1));
    int h = lua_gettop(L);
    if (lua_getfield(L, h, "ip") != LUA_TSTRING)
      return luaL_error(L, "bad argument #1 to 'probe' (host %d: ip must be a string, got %s)",
                        (int)i + 1, luaL_typename(L, -1));
    check_ip(L, (int)i + 1, lua_tostring(L, -1), &hosts[i].addr);
    lua_pop(L, 1);
    int t = lua_getfield(L, h, "netns");
    if (t != LUA_TNIL && t != LUA_TSTRING)
      return luaL_error(L, "bad argument #1 to 'probe' (host %d: netns must be a string, got %s)",
                        (int)i + 1, luaL_typename(L, -1));
    hosts[i].netns = lua_tostring(L, -1); /* kept alive by the hosts table (argument 1) */
    lua_pop(L, 2);
  }
  uint32_t *pairs = lua_newuserdatauv(L, sizeof(uint32_t) * 2 * (npairs ? npairs : 1), 0);
  for (uint32_t i = 0; i < 2 * npairs; i++) {
    lua_geti(L, 2, i + 1);
    int ok;
    lua_Integer v = lua_tointegerx(L, -1, &ok);
    lua_pop(L, 1);
    if (!ok || v < 1 || v > nh)
      return luaL_error(L,
                        "bad argument #2 to 'probe' (entry %d: a host index from 1 to %d expected)",
                        (int)i + 1, (int)nh);
    pairs[i] = (uint32_t)(v - 1);
  }
  ls_probe_result *res = lua_newuserdatauv(L, sizeof(*res) * (npairs ? npairs : 1), 0);
  ls_probe_stats st;
  int bad = -1;
  hook_seen seen = {L, lua_gethook(L), lua_gethookmask(L)};
  o.cancelled = hook_changed;
  o.cancelled_arg = &seen;
  int r = ls_probe_run(hosts, nhosts, pairs, npairs, &o, res, &st, &bad);
  if (r == -EINTR) return luaL_error(L, "interrupted!");
  if (r) {
    char where[300];
    if (bad >= 0)
      snprintf(where, sizeof(where), "host %d%s%s", bad + 1, hosts[bad].netns ? " in " : "",
               hosts[bad].netns ? hosts[bad].netns : "");
    else
      snprintf(where, sizeof(where), "probe");
    if (r == -EINVAL && bad >= 0)
      return luaL_error(
          L, "bad argument #2 to 'probe' (a pair of hosts of different families, from host %d)",
          bad + 1);
    return lsl_fail(L, r, where);
  }
  lua_createtable(L, (int)npairs, 0);
  for (uint32_t i = 0; i < npairs; i++) {
    if (res[i].answered)
      lua_pushnumber(L, res[i].rtt_us / 1000.0);
    else
      lua_pushboolean(L, 0);
    lua_rawseti(L, -2, i + 1);
  }
  lua_createtable(L, 0, 5);
  lsl_setint(L, -1, "sent", st.sent);
  lsl_setint(L, -1, "replies", st.replies);
  lsl_setint(L, -1, "timeouts", st.timeouts);
  lsl_setint(L, -1, "stray", st.stray);
  lsl_setint(L, -1, "send_errors", st.send_errors);
  if (st.send_errno) {
    lua_pushstring(L, strerror(st.send_errno));
    lua_setfield(L, -2, "send_error");
  }
  lua_pushnumber(L, lsl_seconds(st.elapsed_ns));
  lua_setfield(L, -2, "elapsed");
  return 2;
}
