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
#include "port_tap.h"
#include "port_vde.h"

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

#define COMMON "kind", "name", "mtu", "txqlen", "up"

const lsl_kind lsl_kinds[] = {
    {"socketpair", (const char *const[]){COMMON, NULL}, new_socketpair},
    {"unix", (const char *const[]){COMMON, "path", "peer", NULL}, new_unix},
    {"tap", (const char *const[]){COMMON, "ifname", "netns", "vnet_hdr", "mac", "ifup", NULL},
     new_tap},
    {"packet", (const char *const[]){COMMON, "ifname", "netns", "vnet_hdr", "ifup", NULL},
     new_packet},
    {"vde", (const char *const[]){COMMON, "path", "mode", NULL}, new_vde},
    {NULL, NULL, NULL},
};

const char *const *lsl_kind_names(void) {
  static const char *names[LS_ARRAY_LEN(lsl_kinds)];
  for (size_t i = 0; i < LS_ARRAY_LEN(lsl_kinds); i++) names[i] = lsl_kinds[i].name;
  return names;
}
