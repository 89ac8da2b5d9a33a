/*
 * lutil.h — shared pieces of the Lua binding: the per-state runtime, object registries,
 * option-table validation with errors that name the option, MACs and error results.
 *
 * Conventions (DESIGN.md section 7): a programmer error (wrong type, malformed MAC,
 * unknown option, closed object) raises a Lua error naming the argument; a runtime
 * failure (address in use, no such file, permission) returns nil, message, code where
 * code is the errno name ("EADDRINUSE").
 */
#ifndef LS_LUTIL_H
#define LS_LUTIL_H

#include <lauxlib.h>
#include <lua.h>
#include <stdbool.h>
#include <stdint.h>

#include "runtime.h"
#include "port.h"
#include "switch.h"

#define LSL_RUNTIME "luaswitch.runtime"            /* metatable */
#define LSL_RUNTIME_OBJ "luaswitch.runtime.object" /* registry: the runtime of this state */
#define LSL_SWITCH "luaswitch.switch"
#define LSL_PORT "luaswitch.port"
#define LSL_ENDPOINT "luaswitch.endpoint"
#define LSL_JOB "luaswitch.job"
#define LSL_SWITCHES "luaswitch.switches" /* registry: id -> switch (open) */
#define LSL_PORTS "luaswitch.ports"       /* registry: id -> port (open) */
#define LSL_CLOSED "luaswitch.closed"     /* registry: id -> object (weak values) */
#define LSL_SWITCH_METHODS "luaswitch.switch.methods"
#define LSL_PORT_METHODS "luaswitch.port.methods"

typedef struct lsl_runtime {
  ls_runtime *rt;
} lsl_runtime;

typedef struct lsl_switch {
  ls_switch *sw;
  uint32_t id;
  bool closed;
  char name[LS_NAME_MAX];
} lsl_switch;

typedef struct lsl_port {
  ls_port *p;
  uint32_t id;
  bool closed;
  char name[LS_NAME_MAX];
  const char *kind;
  lsl_switch *sw; /* kept alive through the port's user value */
} lsl_port;

/* The runtime of this Lua state (created by luaopen). */
lsl_runtime *lsl_get_runtime(lua_State *L);
/* Start the data-plane thread if needed; raises on failure. */
ls_runtime *lsl_running(lua_State *L);

/* Push nil, "ENAME: description (where)", "ENAME"; returns 3. err is -errno. */
int lsl_fail(lua_State *L, int err, const char *where);
const char *lsl_errname(int err);

/* Option tables. fn names the function in messages ("luaswitch.switch"). */
void lsl_check_table(lua_State *L, int idx, const char *fn);
void lsl_check_known(lua_State *L, int idx, const char *fn, const char *const *known);
/* Push the field; returns its type (LUA_TNIL if absent). */
int lsl_field(lua_State *L, int idx, const char *key);
lua_Number lsl_opt_number(lua_State *L, int idx, const char *fn, const char *key, lua_Number def,
                          lua_Number min, lua_Number max);
lua_Integer lsl_opt_integer(lua_State *L, int idx, const char *fn, const char *key, lua_Integer def,
                            lua_Integer min, lua_Integer max);
bool lsl_opt_boolean(lua_State *L, int idx, const char *fn, const char *key, bool def);
/* NULL if absent (and def is NULL). maxlen = longest accepted length. */
const char *lsl_opt_string(lua_State *L, int idx, const char *fn, const char *key, const char *def,
                           size_t maxlen);
int lsl_opt_enum(lua_State *L, int idx, const char *fn, const char *key, int def,
                 const char *const *names);
int lsl_opt_error(lua_State *L, const char *fn, const char *key, const char *fmt, ...);

/* MAC at argument arg; raises "malformed MAC address". */
void lsl_check_mac(lua_State *L, int arg, uint8_t mac[6]);
void lsl_push_mac(lua_State *L, const uint8_t mac[6]);
/* A frame argument (string); raises if longer than LS_FRAME_MAX. */
const char *lsl_check_frame(lua_State *L, int arg, size_t *len);

/* t[k] = v for the table at index t (any index form). */
void lsl_setint(lua_State *L, int t, const char *k, uint64_t v);

/* Seconds <-> runtime nanoseconds. */
static inline double lsl_seconds(uint64_t ns) {
  return (double)ns / 1e9;
}

/* Objects. */
lsl_switch *lsl_check_switch(lua_State *L, int idx); /* open switch, raises otherwise */
lsl_port *lsl_check_port(lua_State *L, int idx);     /* open port, raises otherwise */
lsl_port *lsl_test_port(lua_State *L, int idx);      /* any port userdata or NULL */
/* Push the object registered under id (open or recently closed) or nil. */
void lsl_push_object(lua_State *L, const char *registry, uint32_t id);
/* Mark a port closed and move it out of the registries (the port is at idx). */
void lsl_port_mark_closed(lua_State *L, int idx);
/* Mark every switch (and its ports) closed; used when the runtime stops. */
void lsl_mark_all_closed(lua_State *L);
/* Mark a switch (at idx) and its ports closed. */
void lsl_switch_mark_closed(lua_State *L, int idx);

/* Port flags (learning, flood, ...; lpolicy.c): read the ones present in the options
 * table at idx into c; push them all into the table at t. */
extern const char *const lsl_flag_names[];
void lsl_read_flags(lua_State *L, int idx, const char *fn, ls_port_config *c);
void lsl_push_flags(lua_State *L, int t, const ls_port_config *c);
/* A VLAN setting (a VLAN id, or a table) at idx; raises on a bad one. */
void lsl_read_vlan(lua_State *L, int idx, const char *fn, ls_port_vlan *v);
extern const luaL_Reg lsl_port_policy_methods[];
const char *lsl_stp_state_name(int state);
const char *lsl_stp_role_name(int role);
/* STP settings (true, or a table { priority =, hello =, forward_delay =, max_age =, mac = })
 * at idx, over the defaults for switch id; raises on a bad one. */
void lsl_read_stp(lua_State *L, int idx, const char *fn, uint32_t switch_id, ls_stp_config *c);
extern const luaL_Reg lsl_switch_policy_methods[];

/* Registration of the types (each file). */
void lsl_open_switch(lua_State *L);
void lsl_open_port(lua_State *L);
void lsl_open_endpoint(lua_State *L);
int lsl_switch_new(lua_State *L);
int lsl_endpoint_new(lua_State *L);
int lsl_bpf_new(lua_State *L);     /* lbpf.c: luaswitch.bpf(expr) */
int lsl_probe(lua_State *L);       /* lprobe.c: luaswitch.core.probe(hosts, pairs, opts) */
void lsl_open_netns(lua_State *L); /* lnetns.c: core.netns_add, ... into the table on top */
/* Wrap an fd (taking ownership) as an endpoint; pushes it. */
void lsl_endpoint_push_fd(lua_State *L, int fd);
/* Push a new port userdata for p, created on switch at sw_idx. */
void lsl_port_push(lua_State *L, int sw_idx, ls_port *p, const char *kind);

#endif
