/*
 * lbpf.c — luaswitch.bpf(expr): a tcpdump expression (pcap-filter(7)) compiled by libpcap,
 * matched against frames from Lua.
 *
 *    local prog = luaswitch.bpf("udp port 53 and vlan 10")
 *    prog:match(frame)   --> true | false
 *
 * The same compiler and interpreter as the data plane's filter rules (src/filter.c):
 * pcap_compile on a pcap_open_dead(DLT_EN10MB, 65535) handle, bpf_filter per frame. It is
 * for specs and hooks (luaswitch.test's expression matchers), not for the hot path: Lua
 * calls it, one frame at a time, in the caller's thread.
 *
 * Owns: the compiled program (freed by __gc and __close). Compilation is serialised by a
 * mutex of this file: libpcap's compiler was not re-entrant before 1.8. (filter.c has a
 * mutex of its own; the libpcap of supported systems, 1.10, compiles on separate handles
 * safely, so the two need not exclude each other.)
 */
#include "lutil.h"

#include <pcap/pcap.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#define LSL_BPF "luaswitch.bpf"

typedef struct lsl_bpf {
  struct bpf_program prog;
  bool compiled;
} lsl_bpf;

static pthread_mutex_t compile_mu = PTHREAD_MUTEX_INITIALIZER;

static int bpf_gc(lua_State *L) {
  lsl_bpf *b = luaL_checkudata(L, 1, LSL_BPF);
  if (b->compiled) {
    pcap_freecode(&b->prog);
    b->compiled = false;
  }
  return 0;
}

static lsl_bpf *check_bpf(lua_State *L, int idx) {
  lsl_bpf *b = luaL_checkudata(L, idx, LSL_BPF);
  if (!b->compiled) luaL_argerror(L, idx, "the program is closed");
  return b;
}

/* prog:match(frame) -> boolean: would tcpdump's expression accept this frame? */
static int bpf_match(lua_State *L) {
  lsl_bpf *b = check_bpf(L, 1);
  size_t len;
  const char *f = luaL_checklstring(L, 2, &len);
  luaL_argcheck(L, len <= 0xffffffffu, 2, "frame too long");
  u_int r = bpf_filter(b->prog.bf_insns, (const u_char *)f, (u_int)len, (u_int)len);
  lua_pushboolean(L, r != 0);
  return 1;
}

static int bpf_tostring(lua_State *L) {
  lsl_bpf *b = luaL_checkudata(L, 1, LSL_BPF);
  lua_getiuservalue(L, 1, 1);
  lua_pushfstring(L, "luaswitch.bpf \"%s\"%s", lua_tostring(L, -1), b->compiled ? "" : " (closed)");
  return 1;
}

/* prog.expr: the expression; anything else: a method */
static int bpf_index(lua_State *L) {
  luaL_checkudata(L, 1, LSL_BPF);
  const char *k = luaL_checkstring(L, 2);
  if (strcmp(k, "expr") == 0) {
    lua_getiuservalue(L, 1, 1);
    return 1;
  }
  luaL_getmetafield(L, 1, "methods");
  lua_getfield(L, -1, k);
  return 1;
}

static const luaL_Reg bpf_methods[] = {
    {"match", bpf_match},
    {"close", bpf_gc},
    {NULL, NULL},
};

/* luaswitch.bpf(expr) -> program; raises libpcap's message for an expression it rejects */
int lsl_bpf_new(lua_State *L) {
  const char *expr = luaL_checkstring(L, 1);
  /* Safe closed state first: nothing below can leak the program. */
  lsl_bpf *b = lua_newuserdatauv(L, sizeof(*b), 1);
  memset(b, 0, sizeof(*b));
  if (luaL_newmetatable(L, LSL_BPF)) {
    lua_pushcfunction(L, bpf_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, bpf_gc);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, bpf_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushcfunction(L, bpf_index);
    lua_setfield(L, -2, "__index");
    luaL_newlib(L, bpf_methods);
    lua_setfield(L, -2, "methods");
  }
  lua_setmetatable(L, -2);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);

  char err[PCAP_ERRBUF_SIZE + 64] = "";
  pthread_mutex_lock(&compile_mu);
  pcap_t *dead = pcap_open_dead(DLT_EN10MB, 65535);
  if (!dead)
    snprintf(err, sizeof(err), "pcap_open_dead failed");
  else if (pcap_compile(dead, &b->prog, expr, 1, PCAP_NETMASK_UNKNOWN) < 0)
    snprintf(err, sizeof(err), "%s", pcap_geterr(dead));
  else
    b->compiled = true;
  if (dead) pcap_close(dead);
  pthread_mutex_unlock(&compile_mu);
  if (!b->compiled) return luaL_argerror(L, 1, err);
  return 1;
}
