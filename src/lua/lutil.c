/*
 * lutil.c — shared helpers of the Lua binding (see lutil.h): option validation, error
 * results, MAC conversion, object registries.
 */
#include "lutil.h"
#include "frame.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

lsl_runtime *lsl_get_runtime(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, LSL_RUNTIME_OBJ);
  lsl_runtime *r = luaL_checkudata(L, -1, LSL_RUNTIME);
  lua_pop(L, 1);
  return r;
}

ls_runtime *lsl_running(lua_State *L) {
  lsl_runtime *r = lsl_get_runtime(L);
  if (!r->rt) luaL_error(L, "luaswitch: the runtime has been shut down");
  if (!ls_runtime_running(r->rt)) {
    int e = ls_runtime_start(r->rt);
    if (e) luaL_error(L, "luaswitch: cannot start the data plane: %s", uv_strerror(e));
  }
  return r->rt;
}

const char *lsl_errname(int err) {
  if (err == -ESHUTDOWN) return "ESHUTDOWN";
  return uv_err_name(err);
}

int lsl_fail(lua_State *L, int err, const char *where) {
  lua_pushnil(L);
  const char *name = lsl_errname(err);
  if (where && *where)
    lua_pushfstring(L, "%s: %s (%s)", name, uv_strerror(err), where);
  else
    lua_pushfstring(L, "%s: %s", name, uv_strerror(err));
  lua_pushstring(L, name);
  return 3;
}

/* ---- option tables ------------------------------------------------------------------------ */

int lsl_opt_error(lua_State *L, const char *fn, const char *key, const char *fmt, ...) {
  char msg[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  return luaL_error(L, "%s: bad option '%s' (%s)", fn, key, msg);
}

void lsl_check_table(lua_State *L, int idx, const char *fn) {
  if (lua_type(L, idx) != LUA_TTABLE)
    luaL_error(L, "%s: options table expected, got %s", fn, luaL_typename(L, idx));
}

void lsl_check_known(lua_State *L, int idx, const char *fn, const char *const *known) {
  idx = lua_absindex(L, idx);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TSTRING) {
      luaL_error(L, "%s: option names must be strings, got %s", fn, luaL_typename(L, -1));
    }
    const char *k = lua_tostring(L, -1);
    bool ok = false;
    for (const char *const *n = known; *n; n++)
      if (strcmp(*n, k) == 0) ok = true;
    if (!ok) luaL_error(L, "%s: unknown option '%s'", fn, k);
  }
}

int lsl_field(lua_State *L, int idx, const char *key) {
  if (lua_type(L, idx) != LUA_TTABLE) {
    lua_pushnil(L);
    return LUA_TNIL;
  }
  return lua_getfield(L, idx, key);
}

lua_Number lsl_opt_number(lua_State *L, int idx, const char *fn, const char *key, lua_Number def,
                          lua_Number min, lua_Number max) {
  int t = lsl_field(L, idx, key);
  if (t == LUA_TNIL) {
    lua_pop(L, 1);
    return def;
  }
  if (t != LUA_TNUMBER) {
    const char *tn = luaL_typename(L, -1);
    lua_pop(L, 1);
    return lsl_opt_error(L, fn, key, "number expected, got %s", tn);
  }
  lua_Number v = lua_tonumber(L, -1);
  lua_pop(L, 1);
  if (isnan(v) || v < min || v > max)
    return lsl_opt_error(L, fn, key, "must be between %g and %g, got %g", (double)min, (double)max,
                         (double)v);
  return v;
}

lua_Integer lsl_opt_integer(lua_State *L, int idx, const char *fn, const char *key, lua_Integer def,
                            lua_Integer min, lua_Integer max) {
  int t = lsl_field(L, idx, key);
  if (t == LUA_TNIL) {
    lua_pop(L, 1);
    return def;
  }
  int isint = 0;
  lua_Integer v = lua_tointegerx(L, -1, &isint);
  const char *tn = luaL_typename(L, -1);
  lua_pop(L, 1);
  if (t != LUA_TNUMBER || !isint) return lsl_opt_error(L, fn, key, "integer expected, got %s", tn);
  if (v < min || v > max)
    return lsl_opt_error(L, fn, key, "must be between %lld and %lld, got %lld", (long long)min,
                         (long long)max, (long long)v);
  return v;
}

bool lsl_opt_boolean(lua_State *L, int idx, const char *fn, const char *key, bool def) {
  int t = lsl_field(L, idx, key);
  if (t == LUA_TNIL) {
    lua_pop(L, 1);
    return def;
  }
  if (t != LUA_TBOOLEAN) {
    const char *tn = luaL_typename(L, -1);
    lua_pop(L, 1);
    return lsl_opt_error(L, fn, key, "boolean expected, got %s", tn);
  }
  bool v = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

const char *lsl_opt_string(lua_State *L, int idx, const char *fn, const char *key, const char *def,
                           size_t maxlen) {
  int t = lsl_field(L, idx, key);
  if (t == LUA_TNIL) {
    lua_pop(L, 1);
    return def;
  }
  if (t != LUA_TSTRING) {
    const char *tn = luaL_typename(L, -1);
    lua_pop(L, 1);
    lsl_opt_error(L, fn, key, "string expected, got %s", tn);
    return NULL;
  }
  size_t len;
  const char *s = lua_tolstring(L, -1, &len);
  lua_pop(L, 1); /* still referenced by the options table */
  if (len == 0) lsl_opt_error(L, fn, key, "must not be empty");
  if (len > maxlen) lsl_opt_error(L, fn, key, "longer than %d bytes", (int)maxlen);
  if (strlen(s) != len) lsl_opt_error(L, fn, key, "contains a NUL byte");
  return s;
}

int lsl_opt_enum(lua_State *L, int idx, const char *fn, const char *key, int def,
                 const char *const *names) {
  const char *s = lsl_opt_string(L, idx, fn, key, NULL, 64);
  if (!s) return def;
  for (int i = 0; names[i]; i++)
    if (strcmp(names[i], s) == 0) return i;
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (int i = 0; names[i]; i++) {
    if (i) luaL_addstring(&b, ", ");
    luaL_addchar(&b, '"');
    luaL_addstring(&b, names[i]);
    luaL_addchar(&b, '"');
  }
  luaL_pushresult(&b);
  return lsl_opt_error(L, fn, key, "one of %s expected, got \"%s\"", lua_tostring(L, -1), s);
}

/* ---- values ------------------------------------------------------------------------------- */

void lsl_check_mac(lua_State *L, int arg, uint8_t mac[6]) {
  if (lua_type(L, arg) != LUA_TSTRING) {
    luaL_typeerror(L, arg, "MAC address string");
    return;
  }
  const char *s = lua_tostring(L, arg);
  if (ls_mac_parse(s, mac) != 0) {
    lua_pushfstring(L, "malformed MAC address '%s' (expected six hex pairs like 02:00:00:00:00:01)",
                    s);
    luaL_argerror(L, arg, lua_tostring(L, -1));
  }
}

void lsl_setint(lua_State *L, int t, const char *k, uint64_t v) {
  t = lua_absindex(L, t);
  lua_pushinteger(L, (lua_Integer)v);
  lua_setfield(L, t, k);
}

void lsl_push_mac(lua_State *L, const uint8_t mac[6]) {
  char s[18];
  ls_mac_format(mac, s);
  lua_pushstring(L, s);
}

const char *lsl_check_frame(lua_State *L, int arg, size_t *len) {
  const char *s = luaL_checklstring(L, arg, len);
  if (*len > LS_FRAME_MAX) luaL_argerror(L, arg, "frame longer than 65536 bytes");
  return s;
}

/* ---- objects ------------------------------------------------------------------------------ */

lsl_switch *lsl_check_switch(lua_State *L, int idx) {
  lsl_switch *s = luaL_checkudata(L, idx, LSL_SWITCH);
  if (s->closed) {
    lua_pushfstring(L, "switch '%s' is closed", s->name);
    luaL_argerror(L, idx, lua_tostring(L, -1));
  }
  return s;
}

lsl_port *lsl_test_port(lua_State *L, int idx) {
  return luaL_testudata(L, idx, LSL_PORT);
}

lsl_port *lsl_check_port(lua_State *L, int idx) {
  lsl_port *p = luaL_checkudata(L, idx, LSL_PORT);
  if (p->closed) {
    lua_pushfstring(L, "port '%s' is closed", p->name);
    luaL_argerror(L, idx, lua_tostring(L, -1));
  }
  return p;
}

void lsl_push_object(lua_State *L, const char *registry, uint32_t id) {
  lua_getfield(L, LUA_REGISTRYINDEX, registry);
  if (lua_rawgeti(L, -1, id) == LUA_TNIL) {
    lua_pop(L, 1);
    lua_getfield(L, LUA_REGISTRYINDEX, LSL_CLOSED);
    lua_rawgeti(L, -1, id);
    lua_remove(L, -2);
  }
  lua_remove(L, -2);
}

static void move_to_closed(lua_State *L, const char *registry, uint32_t id, int obj) {
  obj = lua_absindex(L, obj);
  lua_getfield(L, LUA_REGISTRYINDEX, registry);
  lua_pushnil(L);
  lua_rawseti(L, -2, id);
  lua_pop(L, 1);
  lua_getfield(L, LUA_REGISTRYINDEX, LSL_CLOSED);
  lua_pushvalue(L, obj);
  lua_rawseti(L, -2, id);
  lua_pop(L, 1);
}

void lsl_port_mark_closed(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  lsl_port *p = luaL_checkudata(L, idx, LSL_PORT);
  if (p->closed) return;
  p->closed = true;
  p->p = NULL;
  move_to_closed(L, LSL_PORTS, p->id, idx);
  /* Drop it from its switch's port table (the switch is the port's user value). */
  if (lua_getiuservalue(L, idx, 1) == LUA_TUSERDATA) {
    if (lua_getiuservalue(L, -1, 1) == LUA_TTABLE) {
      lua_pushnil(L);
      lua_rawseti(L, -2, p->id);
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

static void switch_mark_closed(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  lsl_switch *s = luaL_checkudata(L, idx, LSL_SWITCH);
  if (s->closed) return;
  /* Close its ports first (collect them: marking edits the table being walked). */
  if (lua_getiuservalue(L, idx, 1) == LUA_TTABLE) {
    int t = lua_gettop(L);
    lua_newtable(L);
    int list = lua_gettop(L);
    int n = 0;
    lua_pushnil(L);
    while (lua_next(L, t)) {
      lua_rawseti(L, list, ++n);
    }
    for (int i = 1; i <= n; i++) {
      lua_rawgeti(L, list, i);
      lsl_port_mark_closed(L, -1);
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  s->closed = true;
  s->sw = NULL;
  move_to_closed(L, LSL_SWITCHES, s->id, idx);
}

void lsl_mark_all_closed(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, LSL_SWITCHES);
  int t = lua_gettop(L);
  lua_newtable(L);
  int list = lua_gettop(L);
  int n = 0;
  lua_pushnil(L);
  while (lua_next(L, t)) lua_rawseti(L, list, ++n);
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, list, i);
    switch_mark_closed(L, -1);
    lua_pop(L, 1);
  }
  lua_pop(L, 2);
}

void lsl_switch_mark_closed(lua_State *L, int idx) {
  switch_mark_closed(L, idx);
}
