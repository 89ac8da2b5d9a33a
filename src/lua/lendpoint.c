/*
 * lendpoint.c — luaswitch.endpoint: the far side of a port, driven from Lua.
 *
 * Owns: an AF_UNIX datagram socket standing in for a VM or container: the VM end of a
 * socketpair port (port:endpoint()), or a socket bound at a path and/or connected to a
 * switch port's path (luaswitch.endpoint { path =, peer = }). Frames go in and out as
 * Lua strings (send, recv, with deadlines), or at full speed from a background thread
 * (start_sending / start_receiving, see traffic.h) for specs and benchmarks that need
 * line-rate traffic while Lua does something else.
 */
#include "frame.h"
#include "lutil.h"
#include "traffic.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

typedef struct lsl_endpoint {
  int fd;
  char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
  bool unlink_path;
  int jobs; /* running background jobs using fd */
} lsl_endpoint;

struct lsl_job;
typedef struct lsl_job {
  ls_traffic *t;
  bool sender;
  bool joined;
  ls_traffic_result res;
} lsl_job;

static lsl_endpoint *new_endpoint(lua_State *L) {
  lsl_endpoint *e = lua_newuserdatauv(L, sizeof(*e), 1);
  memset(e, 0, sizeof(*e));
  e->fd = -1;
  luaL_setmetatable(L, LSL_ENDPOINT);
  /* user value: the endpoint's jobs (weak keys), so close() can stop them */
  lua_newtable(L);
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  lua_setiuservalue(L, -2, 1);
  return e;
}

void lsl_endpoint_push_fd(lua_State *L, int fd) {
  lsl_endpoint *e = new_endpoint(L);
  e->fd = fd;
}

static lsl_endpoint *check_ep(lua_State *L, int idx) {
  lsl_endpoint *e = luaL_checkudata(L, idx, LSL_ENDPOINT);
  if (e->fd < 0) luaL_argerror(L, idx, "endpoint is closed");
  return e;
}

static lsl_endpoint *check_idle(lua_State *L, int idx) {
  lsl_endpoint *e = check_ep(L, idx);
  if (e->jobs > 0) luaL_argerror(L, idx, "endpoint is busy with a background job");
  return e;
}

static int addr_of(const char *path, struct sockaddr_un *sa, socklen_t *len) {
  size_t n = strlen(path);
  memset(sa, 0, sizeof(*sa));
  sa->sun_family = AF_UNIX;
  if (n == 0 || n >= sizeof(sa->sun_path)) return -ENAMETOOLONG;
  if (path[0] == '@') {
    memcpy(sa->sun_path + 1, path + 1, n - 1);
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
  } else {
    memcpy(sa->sun_path, path, n);
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
  }
  return 0;
}

/* luaswitch.endpoint { path =, peer = } -> endpoint | nil, err, code */
int lsl_endpoint_new(lua_State *L) {
  const char *fn = "luaswitch.endpoint";
  lsl_check_table(L, 1, fn);
  static const char *const known[] = {"path", "peer", NULL};
  lsl_check_known(L, 1, fn, known);
  const char *path = lsl_opt_string(L, 1, fn, "path", NULL, 4096);
  const char *peer = lsl_opt_string(L, 1, fn, "peer", NULL, 4096);
  struct sockaddr_un la, pa;
  socklen_t ll = 0, pl = 0;
  if (path && addr_of(path, &la, &ll)) return lsl_fail(L, -ENAMETOOLONG, path);
  if (peer && addr_of(peer, &pa, &pl)) return lsl_fail(L, -ENAMETOOLONG, peer);
  lsl_endpoint *e = new_endpoint(L);
  e->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (e->fd < 0) return lsl_fail(L, -errno, "socket");
  if (path) {
    if (bind(e->fd, (struct sockaddr *)&la, ll) < 0) {
      int err = -errno;
      close(e->fd);
      e->fd = -1;
      return lsl_fail(L, err, path);
    }
    snprintf(e->path, sizeof(e->path), "%s", path);
    e->unlink_path = path[0] != '@';
  }
  if (peer && connect(e->fd, (struct sockaddr *)&pa, pl) < 0) {
    int err = -errno;
    if (e->unlink_path) unlink(e->path);
    close(e->fd);
    e->fd = -1;
    return lsl_fail(L, err, peer);
  }
  return 1;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Wait for events on fd until the deadline; true when ready. */
static bool wait_fd(int fd, short events, double deadline) {
  for (;;) {
    double left = deadline - now_s();
    int ms = left <= 0 ? 0 : (int)ceil(left * 1000);
    struct pollfd pfd = {fd, events, 0};
    int r = poll(&pfd, 1, ms);
    if (r > 0) return true;
    if (r == 0 || (r < 0 && errno != EINTR)) return false;
  }
}

static double opt_timeout(lua_State *L, int arg, double def) {
  double t = luaL_optnumber(L, arg, def);
  luaL_argcheck(L, t >= 0 && !isnan(t), arg, "timeout must be a non-negative number of seconds");
  return t;
}

/* ep:send(frame [, timeout = 5]) -> true | nil, err, code */
static int ep_send(lua_State *L) {
  lsl_endpoint *e = check_idle(L, 1);
  size_t len;
  const char *f = lsl_check_frame(L, 2, &len);
  double deadline = now_s() + opt_timeout(L, 3, 5.0);
  for (;;) {
    ssize_t r = send(e->fd, f, len, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (r >= 0) break;
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return lsl_fail(L, -errno, "send");
    if (!wait_fd(e->fd, POLLOUT, deadline)) return lsl_fail(L, -ETIMEDOUT, "send");
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* ep:recv([timeout = 1]) -> frame | nil, "ETIMEDOUT: ...", "ETIMEDOUT" */
static int ep_recv(lua_State *L) {
  lsl_endpoint *e = check_idle(L, 1);
  double deadline = now_s() + opt_timeout(L, 2, 1.0);
  char *buf = malloc(LS_FRAME_MAX);
  if (!buf) return luaL_error(L, "out of memory");
  for (;;) {
    ssize_t r = recv(e->fd, buf, LS_FRAME_MAX, MSG_DONTWAIT);
    if (r >= 0) {
      lua_pushlstring(L, buf, (size_t)r);
      free(buf);
      return 1;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      int err = -errno;
      free(buf);
      return lsl_fail(L, err, "recv");
    }
    if (!wait_fd(e->fd, POLLIN, deadline)) {
      free(buf);
      return lsl_fail(L, -ETIMEDOUT, "recv");
    }
  }
}

/* ep:connect(peer) -> true | nil, err, code — (re)connect to a socket path */
static int ep_connect(lua_State *L) {
  lsl_endpoint *e = check_idle(L, 1);
  const char *peer = luaL_checkstring(L, 2);
  struct sockaddr_un pa;
  socklen_t pl;
  if (addr_of(peer, &pa, &pl)) return lsl_fail(L, -ENAMETOOLONG, peer);
  if (connect(e->fd, (struct sockaddr *)&pa, pl) < 0) return lsl_fail(L, -errno, peer);
  lua_pushboolean(L, 1);
  return 1;
}

/* ep:drain() -> number of frames that were waiting (and are now discarded) */
static int ep_drain(lua_State *L) {
  lsl_endpoint *e = check_idle(L, 1);
  char buf[64];
  lua_Integer n = 0;
  while (recv(e->fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC) >= 0) n++;
  lua_pushinteger(L, n);
  return 1;
}

static int ep_fileno(lua_State *L) {
  lsl_endpoint *e = check_ep(L, 1);
  lua_pushinteger(L, e->fd);
  return 1;
}

static void job_finish(lua_State *L, int idx, struct lsl_job *j);

/* ep:close() — stops the endpoint's background jobs first */
static int ep_close(lua_State *L) {
  lsl_endpoint *e = luaL_checkudata(L, 1, LSL_ENDPOINT);
  if (e->fd < 0) return 0;
  if (e->jobs > 0 && lua_getiuservalue(L, 1, 1) == LUA_TTABLE) {
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      lua_pop(L, 1);
      job_finish(L, -1, luaL_checkudata(L, -1, LSL_JOB));
    }
  }
  lua_settop(L, 1);
  close(e->fd);
  e->fd = -1;
  if (e->unlink_path) unlink(e->path);
  e->unlink_path = false;
  return 0;
}

static int ep_gc(lua_State *L) {
  lsl_endpoint *e = luaL_checkudata(L, 1, LSL_ENDPOINT);
  /* A job holds a reference to its endpoint, so none can be running here. */
  if (e->fd >= 0) close(e->fd);
  e->fd = -1;
  if (e->unlink_path) unlink(e->path);
  e->unlink_path = false;
  return 0;
}

static int ep_tostring(lua_State *L) {
  lsl_endpoint *e = luaL_checkudata(L, 1, LSL_ENDPOINT);
  if (e->fd < 0)
    lua_pushliteral(L, "luaswitch.endpoint (closed)");
  else if (e->path[0])
    lua_pushfstring(L, "luaswitch.endpoint \"%s\" (fd %d)", e->path, e->fd);
  else
    lua_pushfstring(L, "luaswitch.endpoint (fd %d)", e->fd);
  return 1;
}

static int ep_index(lua_State *L) {
  lsl_endpoint *e = luaL_checkudata(L, 1, LSL_ENDPOINT);
  const char *k = luaL_checkstring(L, 2);
  luaL_getmetafield(L, 1, "methods");
  if (lua_getfield(L, -1, k) != LUA_TNIL) return 1;
  if (strcmp(k, "path") == 0 && e->path[0])
    lua_pushstring(L, e->path);
  else
    lua_pushnil(L);
  return 1;
}

/* ---- background jobs -------------------------------------------------------------------- */

static lsl_job *check_job(lua_State *L, int idx) {
  return luaL_checkudata(L, idx, LSL_JOB);
}

static void job_finish(lua_State *L, int idx, lsl_job *j) {
  if (j->joined || !j->t) return;
  idx = lua_absindex(L, idx);
  ls_traffic_stop(j->t);
  ls_traffic_join(j->t, &j->res);
  j->joined = true;
  if (lua_getiuservalue(L, idx, 1) == LUA_TUSERDATA) {
    lsl_endpoint *e = lua_touserdata(L, -1);
    e->jobs--;
  }
  lua_pop(L, 1);
}

static void push_result(lua_State *L, const ls_traffic_result *r, bool sender) {
  lua_createtable(L, 0, 10);
  int t = lua_gettop(L);
  lsl_setint(L, t, "frames", r->frames);
  lsl_setint(L, t, "bytes", r->bytes);
  lsl_setint(L, t, "errors", r->errors);
  if (sender) {
    lsl_setint(L, t, "waits", r->waits);
  } else {
    lsl_setint(L, t, "in_order", r->in_order);
    lsl_setint(L, t, "reordered", r->reordered);
    lsl_setint(L, t, "duplicates", r->duplicates);
    lsl_setint(L, t, "gaps", r->gaps);
  }
  double secs = r->last_ns > r->first_ns ? (double)(r->last_ns - r->first_ns) / 1e9 : 0;
  lua_pushnumber(L, secs);
  lua_setfield(L, t, "seconds");
  if (r->last_error) {
    lua_pushstring(L, lsl_errname(-r->last_error));
    lua_setfield(L, t, "last_error");
  }
}

/* job:wait { frames =, timeout = } -> result table. A sender with a count waits until
 * it is done; otherwise the job stops once it has handled `frames` frames or the
 * timeout (default 10 s) passes, whichever comes first. */
static int job_wait(lua_State *L) {
  lsl_job *j = check_job(L, 1);
  const char *fn = "wait";
  uint64_t frames = 0;
  double timeout = 10;
  if (!lua_isnoneornil(L, 2)) {
    if (lua_type(L, 2) == LUA_TNUMBER) {
      timeout = luaL_checknumber(L, 2);
    } else {
      lsl_check_table(L, 2, fn);
      static const char *const known[] = {"frames", "timeout", NULL};
      lsl_check_known(L, 2, fn, known);
      frames = (uint64_t)lsl_opt_integer(L, 2, fn, "frames", 0, 0, INT64_MAX);
      timeout = lsl_opt_number(L, 2, fn, "timeout", timeout, 0, 1e9);
    }
  }
  double deadline = now_s() + timeout;
  while (!j->joined && !ls_traffic_done(j->t)) {
    if (frames && ls_traffic_progress(j->t) >= frames) break;
    if (now_s() >= deadline) break;
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
  }
  job_finish(L, 1, j);
  push_result(L, &j->res, j->sender);
  return 1;
}

/* job:stop() -> result table */
static int job_stop(lua_State *L) {
  lsl_job *j = check_job(L, 1);
  job_finish(L, 1, j);
  push_result(L, &j->res, j->sender);
  return 1;
}

/* job:progress() -> frames so far */
static int job_progress(lua_State *L) {
  lsl_job *j = check_job(L, 1);
  lua_pushinteger(L, (lua_Integer)(j->joined ? j->res.frames : ls_traffic_progress(j->t)));
  return 1;
}

/* job:done() -> true once a sender finished by itself (or the job was stopped) */
static int job_done(lua_State *L) {
  lsl_job *j = check_job(L, 1);
  lua_pushboolean(L, j->joined || ls_traffic_done(j->t));
  return 1;
}

/* job:frames() -> { frame, ... } kept by a sink started with keep = true (after stop) */
static int job_frames(lua_State *L) {
  lsl_job *j = check_job(L, 1);
  if (!j->joined) return luaL_error(L, "frames: stop or wait for the job first");
  const uint8_t *const *data;
  const uint32_t *len;
  size_t n = ls_traffic_kept(j->t, &data, &len);
  lua_createtable(L, (int)n, 0);
  for (size_t i = 0; i < n; i++) {
    lua_pushlstring(L, (const char *)data[i], len[i]);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 1;
}

static int job_gc(lua_State *L) {
  lsl_job *j = check_job(L, 1);
  if (j->t) {
    job_finish(L, 1, j);
    ls_traffic_free(j->t);
    j->t = NULL;
  }
  return 0;
}

static int job_tostring(lua_State *L) {
  lsl_job *j = check_job(L, 1);
  lua_pushfstring(L, "luaswitch.job (%s, %s)", j->sender ? "sender" : "sink",
                  j->joined ? "finished" : "running");
  return 1;
}

static lsl_job *push_job(lua_State *L, lsl_endpoint *e, bool sender) {
  lsl_job *j = lua_newuserdatauv(L, sizeof(*j), 1);
  memset(j, 0, sizeof(*j));
  j->sender = sender;
  luaL_setmetatable(L, LSL_JOB);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  lua_getiuservalue(L, 1, 1); /* the endpoint's job table */
  lua_pushvalue(L, -2);
  lua_pushboolean(L, 1);
  lua_rawset(L, -3);
  lua_pop(L, 1);
  (void)e;
  return j;
}

/* ep:start_sending { frame = s | frames = { s, ... }, count =, rate =, seq_offset =,
 *                    random_src =, seed = } */
static int ep_start_sending(lua_State *L) {
  const char *fn = "start_sending";
  lsl_endpoint *e = check_idle(L, 1);
  lsl_check_table(L, 2, fn);
  static const char *const known[] = {"frame",      "frames",     "count", "rate",
                                      "seq_offset", "random_src", "seed",  NULL};
  lsl_check_known(L, 2, fn, known);
  ls_traffic_opts o;
  memset(&o, 0, sizeof(o));
  o.count = (uint64_t)lsl_opt_integer(L, 2, fn, "count", 0, 0, INT64_MAX);
  o.rate = lsl_opt_number(L, 2, fn, "rate", 0, 0, 1e9);
  o.seq_offset = (uint32_t)lsl_opt_integer(L, 2, fn, "seq_offset", 0, 0, LS_FRAME_MAX - 8);
  o.random_src = lsl_opt_boolean(L, 2, fn, "random_src", false);
  o.seed = (uint64_t)lsl_opt_integer(L, 2, fn, "seed", 1, 1, INT64_MAX);
  size_t n = 0;
  const char *one = NULL;
  int ft = lsl_field(L, 2, "frame");
  if (ft == LUA_TSTRING) {
    size_t l;
    one = lua_tolstring(L, -1, &l);
    if (l > LS_FRAME_MAX) lsl_opt_error(L, fn, "frame", "longer than %d bytes", LS_FRAME_MAX);
    n = 1;
  } else if (ft != LUA_TNIL) {
    lsl_opt_error(L, fn, "frame", "string expected, got %s", luaL_typename(L, -1));
  }
  lua_pop(L, 1); /* still referenced by the options table */
  if (lsl_field(L, 2, "frames") == LUA_TTABLE) {
    if (one) lsl_opt_error(L, fn, "frames", "give either frame or frames, not both");
    n = (size_t)luaL_len(L, -1);
  } else if (!lua_isnil(L, -1)) {
    lsl_opt_error(L, fn, "frames", "table expected, got %s", luaL_typename(L, -1));
  }
  int frames_idx = lua_gettop(L);
  if (n == 0) lsl_opt_error(L, fn, "frames", "at least one frame expected");
  const uint8_t **fr = lua_newuserdatauv(L, n * sizeof(*fr), 0);
  size_t *lens = lua_newuserdatauv(L, n * sizeof(*lens), 0);
  if (one) {
    lua_getfield(L, 2, "frame");
    fr[0] = (const uint8_t *)lua_tolstring(L, -1, &lens[0]);
    lua_pop(L, 1);
  } else {
    for (size_t i = 0; i < n; i++) {
      lua_rawgeti(L, frames_idx, (lua_Integer)i + 1);
      if (lua_type(L, -1) != LUA_TSTRING)
        lsl_opt_error(L, fn, "frames", "item %d: string expected", (int)i + 1);
      fr[i] = (const uint8_t *)lua_tolstring(L, -1, &lens[i]);
      if (lens[i] > LS_FRAME_MAX) lsl_opt_error(L, fn, "frames", "item %d too long", (int)i + 1);
      lua_pop(L, 1); /* still referenced by the table */
    }
  }
  o.frames = fr;
  o.lens = lens;
  o.nframes = n;
  lsl_job *j = push_job(L, e, true);
  int err = 0;
  j->t = ls_traffic_send(e->fd, &o, &err); /* copies the frames */
  if (!j->t) return lsl_fail(L, err, fn);
  e->jobs++;
  return 1;
}

/* ep:start_receiving { seq_offset =, keep = } */
static int ep_start_receiving(lua_State *L) {
  const char *fn = "start_receiving";
  lsl_endpoint *e = check_idle(L, 1);
  ls_traffic_opts o;
  memset(&o, 0, sizeof(o));
  if (!lua_isnoneornil(L, 2)) {
    lsl_check_table(L, 2, fn);
    static const char *const known[] = {"seq_offset", "keep", NULL};
    lsl_check_known(L, 2, fn, known);
    o.seq_offset = (uint32_t)lsl_opt_integer(L, 2, fn, "seq_offset", 0, 0, LS_FRAME_MAX - 8);
    o.keep = lsl_opt_boolean(L, 2, fn, "keep", false);
  }
  lsl_job *j = push_job(L, e, false);
  int err = 0;
  j->t = ls_traffic_sink(e->fd, &o, &err);
  if (!j->t) return lsl_fail(L, err, fn);
  e->jobs++;
  return 1;
}

static const luaL_Reg ep_methods[] = {
    {"send", ep_send},
    {"recv", ep_recv},
    {"drain", ep_drain},
    {"connect", ep_connect},
    {"fileno", ep_fileno},
    {"close", ep_close},
    {"start_sending", ep_start_sending},
    {"start_receiving", ep_start_receiving},
    {NULL, NULL},
};

static const luaL_Reg job_methods[] = {
    {"wait", job_wait}, {"stop", job_stop},     {"progress", job_progress},
    {"done", job_done}, {"frames", job_frames}, {NULL, NULL},
};

void lsl_open_endpoint(lua_State *L) {
  luaL_newmetatable(L, LSL_ENDPOINT);
  luaL_newlib(L, ep_methods);
  lua_setfield(L, -2, "methods");
  lua_pushcfunction(L, ep_index);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, ep_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, ep_close);
  lua_setfield(L, -2, "__close");
  lua_pushcfunction(L, ep_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);

  luaL_newmetatable(L, LSL_JOB);
  luaL_newlib(L, job_methods);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, job_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, job_gc);
  lua_setfield(L, -2, "__close");
  lua_pushcfunction(L, job_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
}
