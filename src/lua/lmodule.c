/*
 * lmodule.c — luaopen_luaswitch_core: the module table, the per-state runtime, the clock,
 * and event delivery to Lua.
 *
 * Owns: the one ls_runtime of each Lua state (a userdata in the registry whose __gc
 * stops the data plane when the state closes), the object registries, and the
 * conversion of ls_event records into Lua tables. The Lua layer (lua/luaswitch/init.lua)
 * builds the public API on top: handlers, dispatch, run.
 */
#include "frame.h"
#include "lutil.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Every live runtime of the process, so that exit() without closing the Lua state
 * (os.exit(code), busted) still closes ports and removes socket files. */
static pthread_mutex_t live_mu = PTHREAD_MUTEX_INITIALIZER;
static ls_runtime *live[64];
static bool atexit_set;

/* Registered with __cxa_atexit and this object's __dso_handle (not atexit(), which
 * sanitizers intercept without the handle): glibc then runs it when the module is
 * dlclose()d as well, so it never outlives its code. */
extern void *__dso_handle;
extern int __cxa_atexit(void (*fn)(void *), void *arg, void *dso);

/* Shell commands that undo what Lua helpers created (namespaces, veth pairs), run at
 * exit after the runtimes stopped; each is cancelled when its object is closed. */
static char **undo;     /* undo_cap slots, NULL where free */
static size_t undo_cap; /* grows by doubling (a lab of 1,000 hosts holds a command each) */
static size_t undo_free_hint;

static void stop_all_at_exit(void *unused) {
  (void)unused;
  pthread_mutex_lock(&live_mu);
  for (size_t i = 0; i < LS_ARRAY_LEN(live); i++)
    if (live[i]) ls_runtime_stop(live[i]);
  for (size_t i = undo_cap; i-- > 0;) {
    if (!undo[i]) continue;
    if (system(undo[i]) != 0) { /* best effort: the thing may be gone already */
    }
    free(undo[i]);
    undo[i] = NULL;
  }
  pthread_mutex_unlock(&live_mu);
}

static void ensure_exit_hook(void);

/* core.atexit(cmd) -> id: run the shell command cmd at process exit unless cancelled. */
static int m_atexit(lua_State *L) {
  const char *cmd = luaL_checkstring(L, 1);
  ensure_exit_hook();
  pthread_mutex_lock(&live_mu);
  size_t i = undo_free_hint;
  while (i < undo_cap && undo[i]) i++;
  if (i == undo_cap && undo_cap < (1u << 24)) {
    size_t cap = undo_cap ? undo_cap * 2 : 256;
    char **grown = realloc(undo, cap * sizeof(*grown));
    if (grown) {
      memset(grown + undo_cap, 0, (cap - undo_cap) * sizeof(*grown));
      undo = grown;
      undo_cap = cap;
    }
  }
  char *copy = i < undo_cap ? strdup(cmd) : NULL;
  if (copy) {
    undo[i] = copy;
    undo_free_hint = i + 1;
  }
  pthread_mutex_unlock(&live_mu);
  if (!copy) return luaL_error(L, "atexit: out of memory");
  lua_pushinteger(L, (lua_Integer)i + 1);
  return 1;
}

/* core.atexit_cancel(id) */
static int m_atexit_cancel(lua_State *L) {
  lua_Integer id = luaL_optinteger(L, 1, 0);
  pthread_mutex_lock(&live_mu);
  if (id >= 1 && (size_t)id <= undo_cap) {
    free(undo[id - 1]);
    undo[id - 1] = NULL;
    if ((size_t)id - 1 < undo_free_hint) undo_free_hint = (size_t)id - 1;
  }
  pthread_mutex_unlock(&live_mu);
  return 0;
}

static void track(ls_runtime *rt, bool add) {
  pthread_mutex_lock(&live_mu);
  for (size_t i = 0; i < LS_ARRAY_LEN(live); i++) {
    if (add && !live[i]) {
      live[i] = rt;
      break;
    }
    if (!add && live[i] == rt) {
      live[i] = NULL;
      break;
    }
  }
  pthread_mutex_unlock(&live_mu);
  if (add) ensure_exit_hook();
}

static void ensure_exit_hook(void) {
  pthread_mutex_lock(&live_mu);
  if (!atexit_set) atexit_set = __cxa_atexit(stop_all_at_exit, NULL, &__dso_handle) == 0;
  pthread_mutex_unlock(&live_mu);
}

static int rt_gc(lua_State *L) {
  lsl_runtime *r = luaL_checkudata(L, 1, LSL_RUNTIME);
  if (r->rt) {
    track(r->rt, false);
    ls_runtime_free(r->rt);
    r->rt = NULL;
  }
  return 0;
}

/* luaswitch.start() */
static int m_start(lua_State *L) {
  lsl_running(L);
  return 0;
}

/* luaswitch.stop(): close every switch and port, stop the data-plane thread. */
static int m_stop(lua_State *L) {
  lsl_runtime *r = lsl_get_runtime(L);
  lsl_mark_all_closed(L);
  if (r->rt) ls_runtime_stop(r->rt);
  return 0;
}

static int m_running(lua_State *L) {
  lsl_runtime *r = lsl_get_runtime(L);
  lua_pushboolean(L, r->rt && ls_runtime_running(r->rt));
  return 1;
}

/* luaswitch.clock(["manual" | "real"]) -> current mode */
static int m_clock(lua_State *L) {
  static const char *const modes[] = {"real", "manual", NULL};
  ls_runtime *rt = lsl_running(L);
  if (!lua_isnoneornil(L, 1)) {
    int m = luaL_checkoption(L, 1, NULL, modes);
    int err = ls_runtime_set_manual(rt, m == 1);
    if (err) return lsl_fail(L, err, "clock");
  }
  bool manual = false;
  int err = ls_runtime_now(rt, NULL, &manual);
  if (err) return lsl_fail(L, err, "clock");
  lua_pushstring(L, manual ? "manual" : "real");
  return 1;
}

/* luaswitch.advance(seconds): move a manual clock forward and run aging at once. */
static int m_advance(lua_State *L) {
  double s = luaL_checknumber(L, 1);
  luaL_argcheck(L, s >= 0 && s <= 1e9 && !isnan(s), 1, "seconds must be between 0 and 1e9");
  ls_runtime *rt = lsl_running(L);
  int err = ls_runtime_advance(rt, (uint64_t)llround(s * 1e9));
  if (err == -EINVAL)
    return luaL_error(L, "advance: the clock is not manual (call luaswitch.clock(\"manual\"))");
  if (err) return lsl_fail(L, err, "advance");
  return 0;
}

/* luaswitch.now() -> seconds on the runtime clock */
static int m_now(lua_State *L) {
  ls_runtime *rt = lsl_running(L);
  uint64_t now = 0;
  int err = ls_runtime_now(rt, &now, NULL);
  if (err) return lsl_fail(L, err, "now");
  lua_pushnumber(L, lsl_seconds(now));
  return 1;
}

/* luaswitch.fileno() -> fd that is readable while events are pending */
static int m_fileno(lua_State *L) {
  ls_runtime *rt = lsl_running(L);
  lua_pushinteger(L, ls_runtime_event_fd(rt));
  return 1;
}

/* core.wait(timeout [, fds]) -> events pending, any of fds readable
 *
 * Waits up to timeout seconds for the event fd or, when given, any fd of the list fds
 * (endpoints' fds: luaswitch.test waits for frames and events at once this way). */
#define LSL_WAIT_FDS_MAX 255
static int m_wait(lua_State *L) {
  double t = luaL_optnumber(L, 1, 0);
  luaL_argcheck(L, t >= 0 && !isnan(t), 1, "timeout must be a non-negative number of seconds");
  lua_Integer nfds = 0;
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    nfds = luaL_len(L, 2);
    luaL_argcheck(L, nfds >= 0 && nfds <= LSL_WAIT_FDS_MAX, 2, "at most 255 file descriptors");
  }
  struct pollfd pfd[LSL_WAIT_FDS_MAX + 1];
  lsl_runtime *r = lsl_get_runtime(L);
  pfd[0] = (struct pollfd){r->rt ? ls_runtime_event_fd(r->rt) : -1, POLLIN, 0};
  for (lua_Integer i = 1; i <= nfds; i++) {
    lua_geti(L, 2, i);
    int isnum = 0;
    lua_Integer fd = lua_tointegerx(L, -1, &isnum);
    lua_pop(L, 1);
    luaL_argcheck(L, isnum && fd >= 0 && fd <= 0x7fffffff, 2, "list of file descriptors expected");
    pfd[i] = (struct pollfd){(int)fd, POLLIN, 0};
  }
  int ms = t > 2e6 ? 2000000000 : (int)ceil(t * 1000);
  int n = poll(pfd, (nfds_t)nfds + 1, ms); /* with fd -1 this just sleeps; EINTR returns early */
  bool any = false;
  for (lua_Integer i = 1; n > 0 && i <= nfds; i++)
    if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR)) any = true;
  lua_pushboolean(L, n > 0 && (pfd[0].revents & POLLIN));
  lua_pushboolean(L, any);
  return 2;
}

static const char *const reason_names[] = {"none",  "admin", "hangup", "peer",
                                           "error", "tx",    "rx",     "impair"};

static const char *reason_name(int r) {
  return r >= 0 && r < (int)LS_ARRAY_LEN(reason_names) ? reason_names[r] : "unknown";
}

static void push_event(lua_State *L, const ls_event *ev) {
  static const char *const types[] = {NULL,    "learn",  "move", "age",    "evict",
                                      "port",  "error",  "punt", "sample", "table_full",
                                      "admit", "refuse", "stp"};
  lua_createtable(L, 0, 10);
  int t = lua_gettop(L);
  lua_pushstring(L, ev->type < LS_ARRAY_LEN(types) && types[ev->type] ? types[ev->type] : "?");
  lua_setfield(L, t, "type");
  lsl_push_object(L, LSL_SWITCHES, ev->switch_id);
  lua_setfield(L, t, "switch");
  lua_pushnumber(L, lsl_seconds(ev->time));
  lua_setfield(L, t, "time");
  if (ev->port_id) {
    lsl_push_object(L, LSL_PORTS, ev->port_id);
    lua_setfield(L, t, "port");
    lua_pushinteger(L, ev->port_id);
    lua_setfield(L, t, "port_id");
  }
  switch (ev->type) {
  case LS_EV_LEARN:
  case LS_EV_MOVE:
  case LS_EV_AGE:
  case LS_EV_EVICT:
  case LS_EV_TABLE_FULL:
  case LS_EV_ADMIT:
  case LS_EV_REFUSE:
    lsl_push_mac(L, ev->mac);
    lua_setfield(L, t, "mac");
    lua_pushinteger(L, ev->vlan);
    lua_setfield(L, t, "vlan");
    if (ev->type == LS_EV_MOVE) {
      lsl_push_object(L, LSL_PORTS, ev->port2_id);
      lua_setfield(L, t, "from");
      lua_getfield(L, t, "port");
      lua_setfield(L, t, "to");
      lua_pushinteger(L, ev->value);
      lua_setfield(L, t, "folded");
    } else if (ev->type == LS_EV_AGE) {
      lua_pushnumber(L, lsl_seconds((uint64_t)ev->value));
      lua_setfield(L, t, "age");
    } else if (ev->type == LS_EV_EVICT) {
      lua_pushliteral(L, "cap");
      lua_setfield(L, t, "reason");
    } else if (ev->type == LS_EV_TABLE_FULL) {
      lua_pushstring(L, ev->state ? "port" : "switch");
      lua_setfield(L, t, "scope");
      lua_pushinteger(L, ev->value);
      lua_setfield(L, t, "refused");
    }
    break;
  case LS_EV_PORT:
    lua_pushstring(L, (ev->state & 3) == 3 ? "up" : "down");
    lua_setfield(L, t, "state");
    lua_pushboolean(L, ev->state & 1);
    lua_setfield(L, t, "admin");
    lua_pushboolean(L, (ev->state & 2) != 0);
    lua_setfield(L, t, "link");
    lua_pushstring(L, reason_name(ev->reason));
    lua_setfield(L, t, "reason");
    break;
  case LS_EV_ERROR:
    lua_pushstring(L, lsl_errname((int)ev->value));
    lua_setfield(L, t, "code");
    lua_pushstring(L, uv_strerror((int)ev->value));
    lua_setfield(L, t, "message");
    lua_pushstring(L, reason_name(ev->reason));
    lua_setfield(L, t, "where");
    break;
  case LS_EV_STP:
    lua_pushstring(L, lsl_stp_state_name(ev->state));
    lua_setfield(L, t, "state");
    lua_pushstring(L, lsl_stp_role_name(ev->reason));
    lua_setfield(L, t, "role");
    break;
  case LS_EV_PUNT:
  case LS_EV_SAMPLE: {
    const ls_frame_blob *blob = ls_event_blob(ev);
    lua_pushlstring(L, (const char *)blob->data, blob->len);
    lua_setfield(L, t, "frame");
    lua_pushstring(L, ev->state ? "out" : "in");
    lua_setfield(L, t, "dir");
    lua_pushinteger(L, ev->port2_id);
    lua_setfield(L, t, "rule");
    break;
  }
  default:
    break;
  }
}

/* core.events([max = 4096]) -> { event, ... }, lost */
static int m_events(lua_State *L) {
  lua_Integer max = luaL_optinteger(L, 1, 4096);
  luaL_argcheck(L, max > 0 && max <= 1 << 20, 1, "max must be between 1 and 1048576");
  lsl_runtime *r = lsl_get_runtime(L);
  lua_newtable(L);
  if (!r->rt || !ls_runtime_running(r->rt)) {
    lua_pushinteger(L, 0);
    return 2;
  }
  ls_event buf[256];
  uint64_t lost_total = 0;
  lua_Integer n = 0;
  while (n < max) {
    uint32_t want = (uint32_t)(max - n < 256 ? max - n : 256);
    uint64_t lost = 0;
    uint32_t got = ls_runtime_events(r->rt, buf, want, &lost);
    lost_total += lost;
    for (uint32_t i = 0; i < got; i++) { /* a frame's bytes are freed as soon as copied */
      push_event(L, &buf[i]);
      ls_runtime_blob_free(r->rt, ls_event_blob(&buf[i]));
      lua_rawseti(L, -2, ++n);
    }
    if (got < want) break;
  }
  lua_pushinteger(L, (lua_Integer)lost_total);
  return 2;
}

/* luaswitch.info() -> runtime counters */
static int m_info(lua_State *L) {
  lsl_runtime *r = lsl_get_runtime(L);
  lua_createtable(L, 0, 10);
  lua_pushboolean(L, r->rt && ls_runtime_running(r->rt));
  lua_setfield(L, -2, "running");
  if (!r->rt || !ls_runtime_running(r->rt)) return 1;
  ls_runtime_info in;
  int err = ls_runtime_info_get(r->rt, &in);
  if (err) return lsl_fail(L, err, "info");
  lsl_setint(L, -1, "switches", in.switches);
  lsl_setint(L, -1, "wakeups", in.stats.wakeups);
  lsl_setint(L, -1, "batches", in.stats.batches);
  lsl_setint(L, -1, "commands", in.stats.commands);
  lua_pushnumber(L, (double)in.stats.max_busy_ns / 1e9);
  lua_setfield(L, -2, "max_busy");
  if (in.stats.max_busy_at) { /* on luaswitch.monotime()'s clock */
    lua_pushnumber(L, (double)in.stats.max_busy_at / 1e9);
    lua_setfield(L, -2, "max_busy_at");
  }
  lsl_setint(L, -1, "events_lost", in.events_dropped);
  lsl_setint(L, -1, "buffers_live", in.buffers_live);
  lsl_setint(L, -1, "buffers_allocated", in.buffers_allocated);
  lsl_setint(L, -1, "buffer_bytes", in.buffer_bytes);
  lsl_setint(L, -1, "dp_nice", in.dp_nice);
  lua_pushstring(L, in.manual ? "manual" : "real");
  lua_setfield(L, -2, "clock");
  lua_pushnumber(L, lsl_seconds(in.now));
  lua_setfield(L, -2, "now");
  return 1;
}

static int id_cmp(const void *a, const void *b) {
  lua_Integer x = *(const lua_Integer *)a, y = *(const lua_Integer *)b;
  return x < y ? -1 : x > y;
}

/* luaswitch.switches() -> { switch, ... } in creation order */
static int m_switches(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, LSL_SWITCHES);
  int t = lua_gettop(L);
  lua_Integer ids[LS_MAX_SWITCHES];
  int n = 0;
  lua_pushnil(L);
  while (lua_next(L, t) && n < LS_MAX_SWITCHES) {
    ids[n++] = lua_tointeger(L, -2);
    lua_pop(L, 1);
  }
  qsort(ids, (size_t)n, sizeof(ids[0]), id_cmp);
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, t, ids[i]);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

/* luaswitch.monotime() -> seconds on CLOCK_MONOTONIC (wall time, unaffected by clock()) */
static int m_monotime(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  lua_pushnumber(L, (double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
  return 1;
}

/* core.parse_mac(s) -> normalised "xx:xx:xx:xx:xx:xx" | nil */
static int m_parse_mac(lua_State *L) {
  uint8_t mac[6];
  const char *s = luaL_checkstring(L, 1);
  if (ls_mac_parse(s, mac) != 0) return 0;
  lsl_push_mac(L, mac);
  return 1;
}

static const luaL_Reg funcs[] = {
    {"start", m_start},
    {"stop", m_stop},
    {"running", m_running},
    {"clock", m_clock},
    {"advance", m_advance},
    {"now", m_now},
    {"fileno", m_fileno},
    {"wait", m_wait},
    {"events", m_events},
    {"info", m_info},
    {"switches", m_switches},
    {"parse_mac", m_parse_mac},
    {"switch", lsl_switch_new},
    {"endpoint", lsl_endpoint_new},
    {"bpf", lsl_bpf_new},
    {"probe", lsl_probe},
    {"monotime", m_monotime},
    {"atexit", m_atexit},
    {"atexit_cancel", m_atexit_cancel},
    {NULL, NULL},
};

LUAMOD_API int luaopen_luaswitch_core(lua_State *L);
LUAMOD_API int luaopen_luaswitch_core(lua_State *L) {
  /* Registries (kept if the module is opened twice in one state). */
  if (lua_getfield(L, LUA_REGISTRYINDEX, LSL_SWITCHES) == LUA_TNIL) {
    lua_newtable(L);
    lua_setfield(L, LUA_REGISTRYINDEX, LSL_SWITCHES);
    lua_newtable(L);
    lua_setfield(L, LUA_REGISTRYINDEX, LSL_PORTS);
    lua_newtable(L);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "v");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, LSL_CLOSED);
  }
  lua_pop(L, 1);

  lsl_open_switch(L);
  lsl_open_port(L);
  lsl_open_endpoint(L);

  /* The runtime: created stopped; its __gc (last to run, being first created) stops it. */
  if (lua_getfield(L, LUA_REGISTRYINDEX, LSL_RUNTIME_OBJ) == LUA_TNIL) {
    lsl_runtime *r = lua_newuserdatauv(L, sizeof(*r), 0);
    r->rt = NULL;
    luaL_newmetatable(L, LSL_RUNTIME);
    lua_pushcfunction(L, rt_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    r->rt = ls_runtime_new(0);
    if (!r->rt) return luaL_error(L, "luaswitch: out of memory");
    track(r->rt, true);
    lua_setfield(L, LUA_REGISTRYINDEX, LSL_RUNTIME_OBJ);
  }
  lua_pop(L, 1);

  luaL_newlib(L, funcs);
  lsl_open_netns(L); /* lnetns.c: netns_add, netns_del, ... */
  lua_createtable(L, 0, 2);
  lua_getfield(L, LUA_REGISTRYINDEX, LSL_SWITCH_METHODS);
  lua_setfield(L, -2, "switch");
  lua_getfield(L, LUA_REGISTRYINDEX, LSL_PORT_METHODS);
  lua_setfield(L, -2, "port");
  lua_setfield(L, -2, "methods");
  lua_createtable(L, 0, 2);
  luaL_getmetatable(L, LSL_SWITCH);
  lua_setfield(L, -2, "switch");
  luaL_getmetatable(L, LSL_PORT);
  lua_setfield(L, -2, "port");
  lua_setfield(L, -2, "metatables");
  lua_pushliteral(L, LS_VERSION);
  lua_setfield(L, -2, "version");
  return 1;
}
