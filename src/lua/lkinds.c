/*
 * lkinds.c — the port kinds as the Lua API sees them: each kind's options, their
 * validation, and the call to its constructor.
 *
 * Owns: lsl_kinds, the table sw:port() dispatches on. Adding a kind means one function
 * here (read and check the options, then call the C constructor) and one row in the
 * table. Options are fully validated before anything is created, so a bad option
 * raises an error and changes nothing.
 */
#include "frame.h"
#include "lkinds.h"
#include "netns.h"
#include "port_dgram.h"
#include "port_packet.h"
#include "port_pcap.h"
#include "port_tap.h"

#include <string.h>

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

#define COMMON "kind", "name", "mtu", "txqlen", "up"

const lsl_kind lsl_kinds[] = {
    {"socketpair", (const char *const[]){COMMON, NULL}, new_socketpair},
    {"unix", (const char *const[]){COMMON, "path", "peer", NULL}, new_unix},
    {"tap", (const char *const[]){COMMON, "ifname", "netns", "vnet_hdr", "mac", "ifup", NULL},
     new_tap},
    {"packet", (const char *const[]){COMMON, "ifname", "netns", "vnet_hdr", "ifup", NULL},
     new_packet},
    {"pcap", (const char *const[]){COMMON, "path", "snaplen", "max_size", "rotate", "format", NULL},
     new_pcap},
    {NULL, NULL, NULL},
};

const char *const *lsl_kind_names(void) {
  static const char *names[LS_ARRAY_LEN(lsl_kinds)];
  for (size_t i = 0; i < LS_ARRAY_LEN(lsl_kinds); i++) names[i] = lsl_kinds[i].name;
  return names;
}
