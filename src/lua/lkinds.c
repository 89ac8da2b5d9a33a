/*
 * lkinds.c — the port kinds as the Lua API sees them: each kind's options, their
 * validation, and the call to its constructor.
 *
 * Owns: lsl_kinds, the table sw:port() dispatches on. Adding a kind means one function
 * here (read and check the options, then call the C constructor) and one row in the
 * table. Options are fully validated before anything is created, so a bad option
 * raises an error and changes nothing.
 */
#include "fdb.h"
#include "frame.h"
#include "lkinds.h"
#include "netns.h"
#include "port_dgram.h"
#include "port_packet.h"
#include "port_patch.h"
#include "port_stream.h"
#include "port_pcap.h"
#include "port_tap.h"
#include "port_udp.h"
#include "port_vde.h"
#include "port_vhost.h"
#include "port_vxlan.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

/* ---- shared option readers ---------------------------------------------------------------- */

static const char *opt_ifname(lsl_port_args *a, const char *key, const char *def) {
  const char *v = lsl_opt_string(a->L, a->opts, a->fn, key, def, 4096);
  if (v && strlen(v) > LS_IFNAME_MAX - 1)
    lsl_opt_error(a->L, a->fn, v == def ? "name" : key,
                  "interface names are at most %d bytes, got '%s'", LS_IFNAME_MAX - 1, v);
  return v;
}

static const char *opt_netns(lsl_port_args *a) {
  const char *ns = lsl_opt_string(a->L, a->opts, a->fn, "netns", NULL, 200);
  if (ns && !ls_netns_name_ok(ns))
    lsl_opt_error(a->L, a->fn, "netns", "'%s' is not a namespace name", ns);
  return ns;
}

static const char *need_string(lsl_port_args *a, const char *key, const char *kind) {
  const char *v = lsl_opt_string(a->L, a->opts, a->fn, key, NULL, 4096);
  if (!v) luaL_error(a->L, "%s: missing option '%s' for a %s port", a->fn, key, kind);
  return v;
}

/* ---- kinds ------------------------------------------------------------------------------------
 */

static ls_port *new_socketpair(lsl_port_args *a) {
  return ls_port_socketpair_new(a->rt, a->cfg, &a->err, a->where, sizeof(a->where));
}

static ls_port *new_unix(lsl_port_args *a) {
  const char *path = need_string(a, "path", "unix");
  const char *peer = lsl_opt_string(a->L, a->opts, a->fn, "peer", NULL, 4096);
  return ls_port_unix_new(a->rt, a->cfg, path, peer, &a->err, a->where, sizeof(a->where));
}

static ls_port *new_tap(lsl_port_args *a) {
  ls_tap_options o;
  memset(&o, 0, sizeof(o));
  o.ifname = opt_ifname(a, "ifname", a->name);
  if (!o.ifname) luaL_error(a->L, "%s: a tap port needs a 'name' or an 'ifname'", a->fn);
  o.netns = opt_netns(a);
  o.vnet_hdr = lsl_opt_boolean(a->L, a->opts, a->fn, "vnet_hdr", true);
  o.ifup = lsl_opt_boolean(a->L, a->opts, a->fn, "ifup", true);
  const char *mac = lsl_opt_string(a->L, a->opts, a->fn, "mac", NULL, 17);
  if (mac) {
    if (ls_mac_parse(mac, o.mac) != 0 || ls_mac_is_group(o.mac) || ls_mac_is_zero(o.mac))
      lsl_opt_error(a->L, a->fn, "mac", "a unicast MAC address expected, got '%s'", mac);
    o.has_mac = true;
  }
  return ls_port_tap_new(a->rt, a->cfg, &o, &a->err, a->where, sizeof(a->where));
}

static ls_port *new_packet(lsl_port_args *a) {
  ls_packet_options o;
  memset(&o, 0, sizeof(o));
  o.ifname = opt_ifname(a, "ifname", NULL);
  if (!o.ifname) luaL_error(a->L, "%s: missing option 'ifname' for a packet port", a->fn);
  o.netns = opt_netns(a);
  o.vnet_hdr = lsl_opt_boolean(a->L, a->opts, a->fn, "vnet_hdr", true);
  o.ifup = lsl_opt_boolean(a->L, a->opts, a->fn, "ifup", true);
  return ls_port_packet_new(a->rt, a->cfg, &o, &a->err, a->where, sizeof(a->where));
}

/* An address option: a Lua error if malformed; a resolver failure is returned (< 0). */
static int opt_addr(lsl_port_args *a, const char *key, bool allow_unix, uint16_t def_port,
                    ls_addr *out, bool *present) {
  const char *text = lsl_opt_string(a->L, a->opts, a->fn, key, NULL, 4096);
  *present = text != NULL;
  if (!text) return 0;
  int r = ls_addr_parse(text, allow_unix, def_port, out);
  if (r == -EINVAL)
    lsl_opt_error(a->L, a->fn, key, "%s expected, got '%s'",
                  allow_unix ? "a socket path, @name or host:port" : "host:port", text);
  if (r == -ENAMETOOLONG)
    lsl_opt_error(a->L, a->fn, key, "'%s' is too long for a unix socket path", text);
  if (r < 0) snprintf(a->where, sizeof(a->where), "%s %s", key, text);
  return r;
}

static ls_port *new_stream(lsl_port_args *a) {
  ls_stream_options o;
  memset(&o, 0, sizeof(o));
  bool has_listen, has_connect;
  ls_addr la, ca;
  int r1 = opt_addr(a, "listen", true, 0, &la, &has_listen);
  int r2 = opt_addr(a, "connect", true, 0, &ca, &has_connect);
  if (has_listen == has_connect)
    luaL_error(a->L, "%s: a stream port needs exactly one of 'listen' and 'connect'", a->fn);
  o.netns = opt_netns(a);
  if (r1 < 0 || r2 < 0) {
    a->err = r1 < 0 ? r1 : r2;
    return NULL;
  }
  o.listen = has_listen;
  o.addr = has_listen ? la : ca;
  return ls_port_stream_new(a->rt, a->cfg, &o, &a->err, a->where, sizeof(a->where));
}

static ls_port *new_udp(lsl_port_args *a) {
  ls_udp_options o;
  memset(&o, 0, sizeof(o));
  bool has_local;
  int r1 = opt_addr(a, "bind", false, 0, &o.local, &has_local);
  int r2 = opt_addr(a, "peer", false, 0, &o.peer, &o.has_peer);
  if (!has_local) luaL_error(a->L, "%s: missing option 'bind' (host:port) for a udp port", a->fn);
  if (o.has_peer && o.peer.sa.ss_family != o.local.sa.ss_family && r1 == 0 && r2 == 0)
    lsl_opt_error(a->L, a->fn, "peer", "its address family differs from 'bind'");
  o.netns = opt_netns(a);
  if (r1 < 0 || r2 < 0) {
    a->err = r1 < 0 ? r1 : r2;
    return NULL;
  }
  return ls_port_udp_new(a->rt, a->cfg, &o, &a->err, a->where, sizeof(a->where));
}

static ls_port *new_vxlan(lsl_port_args *a) {
  lua_State *L = a->L;
  ls_vxlan_options o;
  memset(&o, 0, sizeof(o));
  bool has_bind;
  int r = opt_addr(a, "bind", false, LS_VXLAN_PORT, &o.local, &has_bind);
  if (!has_bind) r = ls_addr_parse("0.0.0.0", false, LS_VXLAN_PORT, &o.local);
  if (lsl_field(L, a->opts, "vni") == LUA_TNIL)
    luaL_error(L, "%s: missing option 'vni' (0 to 16777215) for a vxlan port", a->fn);
  lua_pop(L, 1);
  o.vni = (uint32_t)lsl_opt_integer(L, a->opts, a->fn, "vni", 0, 0, 0xffffff);
  o.learning = lsl_opt_boolean(L, a->opts, a->fn, "remote_learning", true);
  o.aging = (uint64_t)(lsl_opt_number(L, a->opts, a->fn, "remote_aging", 300, 0, 1e8) * 1e9);
  o.max_macs =
      (uint32_t)lsl_opt_integer(L, a->opts, a->fn, "remote_max_macs", 8192, 1, LS_FDB_MAX_MACS);
  o.netns = opt_netns(a);
  if (lsl_field(L, a->opts, "mtu") == LUA_TNIL) a->cfg->mtu = 1450; /* 1500 less the 50 bytes */
  lua_pop(L, 1);
  ls_addr remotes[LS_VXLAN_MAX_REMOTES];
  int t = lsl_field(L, a->opts, "remotes");
  if (t != LUA_TNIL) {
    if (t != LUA_TTABLE) lsl_opt_error(L, a->fn, "remotes", "list of addresses expected");
    lua_Integer n = luaL_len(L, -1);
    if (n > LS_VXLAN_MAX_REMOTES)
      lsl_opt_error(L, a->fn, "remotes", "at most %d remotes", LS_VXLAN_MAX_REMOTES);
    for (lua_Integer i = 1; i <= n; i++) {
      lua_rawgeti(L, -1, i);
      const char *text = lua_tostring(L, -1);
      if (lua_type(L, -1) != LUA_TSTRING)
        lsl_opt_error(L, a->fn, "remotes", "item %d: an address string expected", (int)i);
      int rr = ls_addr_parse(text, false, ls_addr_port(&o.local), &remotes[i - 1]);
      if (rr == -EINVAL)
        lsl_opt_error(L, a->fn, "remotes", "item %d: host or host:port expected, got '%s'", (int)i,
                      text);
      if (rr < 0 && r == 0) {
        r = rr;
        snprintf(a->where, sizeof(a->where), "remote %s", text);
      }
      if (rr == 0 && remotes[i - 1].sa.ss_family != o.local.sa.ss_family && has_bind)
        lsl_opt_error(L, a->fn, "remotes", "item %d: its address family differs from 'bind'",
                      (int)i);
      lua_pop(L, 1);
    }
    o.nremotes = (uint32_t)n;
  }
  lua_pop(L, 1);
  if (r < 0) {
    a->err = r;
    return NULL;
  }
  o.remotes = remotes;
  return ls_port_vxlan_new(a->rt, a->cfg, &o, &a->err, a->where, sizeof(a->where));
}

static ls_port *new_pcap(lsl_port_args *a) {
  ls_pcap_options o;
  memset(&o, 0, sizeof(o));
  o.path = lsl_opt_string(a->L, a->opts, a->fn, "path", NULL, LS_PCAP_PATH_MAX);
  if (!o.path) luaL_error(a->L, "%s: missing option 'path' for a pcap port", a->fn);
  const char *format = lsl_opt_string(a->L, a->opts, a->fn, "format", "pcap", 64);
  if (strcmp(format, "pcapng") == 0)
    lsl_opt_error(a->L, a->fn, "format",
                  "\"pcapng\" is not available: libpcap writes classic pcap only");
  if (strcmp(format, "pcap") != 0)
    lsl_opt_error(a->L, a->fn, "format", "\"pcap\" expected, got \"%s\"", format);
  o.snaplen = (uint32_t)lsl_opt_integer(a->L, a->opts, a->fn, "snaplen", LS_PCAP_SNAPLEN_DEFAULT,
                                        LS_PCAP_SNAPLEN_MIN, LS_PCAP_SNAPLEN_MAX);
  o.max_size = (uint64_t)lsl_opt_integer(a->L, a->opts, a->fn, "max_size", 0, LS_PCAP_MAX_SIZE_MIN,
                                         LUA_MAXINTEGER);
  o.rotate = (uint32_t)lsl_opt_integer(a->L, a->opts, a->fn, "rotate", 0, 0, LS_PCAP_ROTATE_MAX);
  if (o.rotate && !o.max_size)
    lsl_opt_error(a->L, a->fn, "rotate", "needs 'max_size', the size at which a file is rotated");
  /* A capture takes every frame: unless told otherwise, no egress MTU drops. */
  if (lsl_field(a->L, a->opts, "mtu") == LUA_TNIL) a->cfg->mtu = LS_MTU_MAX;
  lua_pop(a->L, 1);
  return ls_port_pcap_new(a->rt, a->cfg, &o, &a->err, a->where, sizeof(a->where));
}

/* mode: permissions as a string of octal digits ("0770"), since Lua has no octal
 * literals and 0770 would be read as decimal 770. */
static ls_port *new_vde(lsl_port_args *a) {
  ls_vde_options o = {.path = need_string(a, "path", "vde"), .mode = LS_VDE_MODE_DEFAULT};
  int t = lsl_field(a->L, a->opts, "mode");
  lua_pop(a->L, 1);
  if (t == LUA_TNUMBER)
    lsl_opt_error(a->L, a->fn, "mode", "an octal string like \"0770\" expected, got a number");
  const char *m = lsl_opt_string(a->L, a->opts, a->fn, "mode", NULL, 5);
  if (m) {
    unsigned v = 0;
    for (const char *c = m; *c; c++) {
      if (*c < '0' || *c > '7')
        lsl_opt_error(a->L, a->fn, "mode", "an octal string like \"0770\" expected, got '%s'", m);
      v = v * 8 + (unsigned)(*c - '0');
    }
    if (v > 07777) lsl_opt_error(a->L, a->fn, "mode", "at most \"7777\", got '%s'", m);
    o.mode = (mode_t)v;
  }
  return ls_port_vde_new(a->rt, a->cfg, &o, &a->err, a->where, sizeof(a->where));
}

/* peer: another patch port (open, on any switch of this runtime, not yet cabled) */
static ls_port *new_patch(lsl_port_args *a) {
  lua_State *L = a->L;
  ls_port *peer = NULL;
  if (lsl_field(L, a->opts, "peer") != LUA_TNIL) {
    lsl_port *q = lsl_test_port(L, -1);
    if (!q) lsl_opt_error(L, a->fn, "peer", "a patch port expected, got %s", luaL_typename(L, -1));
    if (q->closed) lsl_opt_error(L, a->fn, "peer", "port '%s' is closed", q->name);
    if (strcmp(q->kind, "patch") != 0)
      lsl_opt_error(L, a->fn, "peer", "port '%s' is a %s port, not a patch port", q->name, q->kind);
    peer = q->p;
  }
  lua_pop(L, 1);
  return ls_port_patch_new(a->rt, a->cfg, peer, &a->err, a->where, sizeof(a->where));
}

/* vhost-user: we listen at path (QEMU -chardev socket,path=...), or with client = true
 * connect to QEMU's server socket (-chardev socket,server=on,wait=off) and reconnect. */
static ls_port *new_vhost(lsl_port_args *a) {
  ls_vhost_options o = {.path = need_string(a, "path", "vhost-user")};
  if (strlen(o.path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
    lsl_opt_error(a->L, a->fn, "path", "'%s' is too long for a unix socket path", o.path);
  o.client = lsl_opt_boolean(a->L, a->opts, a->fn, "client", false);
  return ls_port_vhost_new(a->rt, a->cfg, &o, &a->err, a->where, sizeof(a->where));
}

#define COMMON                                                                                     \
  "kind", "name", "mtu", "txqlen", "up", "vlan", "max_macs", "learn_limit", "learn_burst",         \
      "admission", "learning", "flood", "mcast_flood", "bcast_flood", "isolated", "hairpin",       \
      "locked", "stp_cost", "stp_priority", "stp_edge"

const lsl_kind lsl_kinds[] = {
    {"socketpair", (const char *const[]){COMMON, NULL}, new_socketpair},
    {"unix", (const char *const[]){COMMON, "path", "peer", NULL}, new_unix},
    {"tap", (const char *const[]){COMMON, "ifname", "netns", "vnet_hdr", "mac", "ifup", NULL},
     new_tap},
    {"packet", (const char *const[]){COMMON, "ifname", "netns", "vnet_hdr", "ifup", NULL},
     new_packet},
    {"stream", (const char *const[]){COMMON, "listen", "connect", "netns", NULL}, new_stream},
    {"udp", (const char *const[]){COMMON, "bind", "peer", "netns", NULL}, new_udp},
    {"vxlan",
     (const char *const[]){COMMON, "bind", "vni", "remotes", "remote_learning", "remote_aging",
                           "remote_max_macs", "netns", NULL},
     new_vxlan},
    {"pcap", (const char *const[]){COMMON, "path", "snaplen", "max_size", "rotate", "format", NULL},
     new_pcap},
    {"vde", (const char *const[]){COMMON, "path", "mode", NULL}, new_vde},
    {"patch", (const char *const[]){COMMON, "peer", NULL}, new_patch},
    {"vhost-user", (const char *const[]){COMMON, "path", "client", NULL}, new_vhost},
    {NULL, NULL, NULL},
};

const char *const *lsl_kind_names(void) {
  static const char *names[LS_ARRAY_LEN(lsl_kinds)];
  for (size_t i = 0; i < LS_ARRAY_LEN(lsl_kinds); i++) names[i] = lsl_kinds[i].name;
  return names;
}
