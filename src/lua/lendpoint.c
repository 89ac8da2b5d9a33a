/*
 * lendpoint.c — luaswitch.endpoint: the far side of a port, driven from Lua.
 *
 * Owns: a socket standing in for a VM, a container or a remote switch:
 *  - datagram, one frame per datagram: the VM end of a socketpair port
 *    (port:endpoint()), a unix socket ({ path =, peer = }), or UDP ({ udp =, peer = });
 *  - stream, each frame prefixed by a 4-byte big-endian length (QEMU -netdev stream):
 *    ({ connect = addr }) or ({ listen = addr } then ep:accept()).
 * Frames go in and out as Lua strings (send, recv, with deadlines), or at full speed from
 * a background thread (start_sending / start_receiving, datagram endpoints only, see
 * traffic.h) for specs and benchmarks that need line-rate traffic while Lua does
 * something else. An endpoint runs at most one sender and one sink at a time (both at
 * once make a host that talks and listens); while either runs, Lua's own send/recv on it
 * are refused.
 */
#include "addr.h"
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
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

typedef struct lsl_endpoint {
  int fd;  /* the socket frames go through (-1 until a listening endpoint accepts) */
  int lfd; /* stream listen: the listening socket */
  bool stream;
  bool closed;
  char path[LS_ADDR_TEXT]; /* bound name, for printing (and unlinking) */
  bool unlink_path;
  uint8_t *rbuf; /* stream: received bytes not yet returned as frames */
  uint32_t rlen;
  int jobs;       /* running background jobs using fd */
  bool sending;   /* one of them is a sender */
  bool receiving; /* one of them is a sink */
} lsl_endpoint;

#define RBUF_CAP (2 * (LS_FRAME_MAX + 4))

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
  e->fd = e->lfd = -1;
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

static lsl_endpoint *check_open(lua_State *L, int idx) {
  lsl_endpoint *e = luaL_checkudata(L, idx, LSL_ENDPOINT);
  if (e->closed) luaL_argerror(L, idx, "endpoint is closed");
  return e;
}

/* Open with a socket to send and receive on (an unaccepted listener is not). */
static lsl_endpoint *check_ep(lua_State *L, int idx) {
  lsl_endpoint *e = check_open(L, idx);
  if (e->fd < 0) luaL_argerror(L, idx, "endpoint is not connected (call accept first)");
  return e;
}

static lsl_endpoint *check_idle(lua_State *L, int idx) {
  lsl_endpoint *e = check_ep(L, idx);
  if (e->jobs > 0) luaL_argerror(L, idx, "endpoint is busy with a background job");
  return e;
}

static void release(lsl_endpoint *e) {
  if (e->fd >= 0) close(e->fd);
  if (e->lfd >= 0) close(e->lfd);
  e->fd = e->lfd = -1;
  if (e->unlink_path) unlink(e->path);
  e->unlink_path = false;
  free(e->rbuf);
  e->rbuf = NULL;
  e->closed = true;
}

static int fail_release(lua_State *L, lsl_endpoint *e, int err, const char *where) {
  release(e);
  return lsl_fail(L, err, where);
}

/* An address option; raises on a malformed one, returns a resolver error (< 0). */
static int opt_addr(lua_State *L, const char *fn, const char *key, bool allow_unix, ls_addr *a,
                    bool *present) {
  const char *text = lsl_opt_string(L, 1, fn, key, NULL, 4096);
  *present = text != NULL;
  if (!text) return 0;
  int r = ls_addr_parse(text, allow_unix, 0, a);
  if (r == -EINVAL)
    lsl_opt_error(L, fn, key, "%s expected, got '%s'",
                  allow_unix ? "a socket path, @name or host:port" : "host:port", text);
  if (r == -ENAMETOOLONG) lsl_opt_error(L, fn, key, "'%s' is too long for a socket path", text);
  return r;
}

/* luaswitch.endpoint { path =, peer = } | { udp =, peer = } | { connect = } | { listen = } | {}
 * -> endpoint | nil, err, code */
int lsl_endpoint_new(lua_State *L) {
  const char *fn = "luaswitch.endpoint";
  lsl_check_table(L, 1, fn);
  static const char *const known[] = {"path", "peer", "udp", "connect", "listen", NULL};
  lsl_check_known(L, 1, fn, known);
  ls_addr path, peer, udp, conn, lis;
  bool has_path, has_peer, has_udp, has_conn, has_lis;
  int r = opt_addr(L, fn, "path", true, &path, &has_path);
  if (has_path && !ls_addr_is_unix(&path))
    lsl_opt_error(L, fn, "path", "a unix socket path or @name expected");
  bool udp_mode = lsl_field(L, 1, "udp") != LUA_TNIL;
  lua_pop(L, 1);
  if (!r) r = opt_addr(L, fn, "peer", !udp_mode, &peer, &has_peer);
  if (!r) r = opt_addr(L, fn, "udp", false, &udp, &has_udp);
  if (!r) r = opt_addr(L, fn, "connect", true, &conn, &has_conn);
  if (!r) r = opt_addr(L, fn, "listen", true, &lis, &has_lis);
  if (r) return lsl_fail(L, r, "endpoint address");
  int modes = (has_path || (has_peer && !has_udp)) + has_udp + has_conn + has_lis;
  if (modes == 0) { /* {}: an unnamed, unconnected unix datagram socket */
    lsl_endpoint *e = new_endpoint(L);
    e->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (e->fd < 0) return fail_release(L, e, -errno, "socket");
    return 1;
  }
  if (modes != 1)
    return luaL_error(L,
                      "%s: give one of 'path'/'peer' (unix datagram), 'udp' (with 'peer'), "
                      "'connect' or 'listen' (stream)",
                      fn);
  if (has_udp && !has_peer) lsl_opt_error(L, fn, "peer", "a UDP endpoint needs a peer host:port");
  lsl_endpoint *e = new_endpoint(L);
  const ls_addr *bind_to = has_path ? &path : has_udp ? &udp : has_lis ? &lis : NULL;
  const ls_addr *connect_to = has_conn ? &conn : has_peer ? &peer : NULL;
  e->stream = has_conn || has_lis;
  int family = bind_to ? bind_to->sa.ss_family : connect_to->sa.ss_family;
  int fd = socket(family, (e->stream ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail_release(L, e, -errno, "socket");
  if (has_lis)
    e->lfd = fd;
  else
    e->fd = fd;
  if (e->stream && !(e->rbuf = malloc(RBUF_CAP))) return fail_release(L, e, -ENOMEM, "buffer");
  if (bind_to) {
    ls_addr_format(bind_to, e->path, sizeof(e->path));
    if (!ls_addr_is_unix(bind_to)) {
      int one = 1;
      setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    }
    if (bind(fd, (const struct sockaddr *)&bind_to->sa, bind_to->len) < 0)
      return fail_release(L, e, -errno, e->path);
    e->unlink_path = ls_addr_is_unix(bind_to) && e->path[0] != '@';
  }
  if (has_lis && listen(e->lfd, 1) < 0) return fail_release(L, e, -errno, e->path);
  if (connect_to && connect(e->fd, (const struct sockaddr *)&connect_to->sa, connect_to->len) < 0) {
    char where[LS_ADDR_TEXT];
    ls_addr_format(connect_to, where, sizeof(where));
    return fail_release(L, e, -errno, where);
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

/* Send all of iov (stream) or one datagram, waiting for room until the deadline. */
static int send_all(lsl_endpoint *e, struct iovec *iov, int iovcnt, double deadline) {
  for (;;) {
    struct msghdr m;
    memset(&m, 0, sizeof(m));
    m.msg_iov = iov;
    m.msg_iovlen = (size_t)iovcnt;
    ssize_t n = sendmsg(e->fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n >= 0) {
      if (!e->stream) return 0;
      while (iovcnt > 0 && (size_t)n >= iov[0].iov_len) {
        n -= (ssize_t)iov[0].iov_len;
        iov++;
        iovcnt--;
      }
      if (iovcnt == 0) return 0;
      iov[0].iov_base = (uint8_t *)iov[0].iov_base + n;
      iov[0].iov_len -= (size_t)n;
      continue;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return -errno;
    if (!wait_fd(e->fd, POLLOUT, deadline)) return -ETIMEDOUT;
  }
}

/* ep:send(frame [, timeout = 5]) -> true | nil, err, code */
static int ep_send(lua_State *L) {
  lsl_endpoint *e = check_idle(L, 1);
  size_t len;
  const char *f = lsl_check_frame(L, 2, &len);
  double deadline = now_s() + opt_timeout(L, 3, 5.0);
  uint8_t hdr[4];
  ls_put_be32(hdr, (uint32_t)len);
  struct iovec iov[2] = {{hdr, 4}, {(void *)f, len}};
  int r = e->stream ? send_all(e, iov, 2, deadline) : send_all(e, iov + 1, 1, deadline);
  if (r) return lsl_fail(L, r, "send");
  lua_pushboolean(L, 1);
  return 1;
}

/* ep:send_raw(bytes [, timeout = 5]) -> true: bytes as they are (a stream's framing too) */
static int ep_send_raw(lua_State *L) {
  lsl_endpoint *e = check_idle(L, 1);
  size_t len;
  const char *s = luaL_checklstring(L, 2, &len);
  double deadline = now_s() + opt_timeout(L, 3, 5.0);
  struct iovec iov = {(void *)s, len};
  int r = send_all(e, &iov, 1, deadline);
  if (r) return lsl_fail(L, r, "send_raw");
  lua_pushboolean(L, 1);
  return 1;
}

/* ep:recv([timeout = 1]) -> frame | nil, "ETIMEDOUT: ...", "ETIMEDOUT" (a stream endpoint
 * whose peer closed returns nil, "EOF: ...", "EOF") */
static int ep_recv(lua_State *L) {
  lsl_endpoint *e = check_idle(L, 1);
  double deadline = now_s() + opt_timeout(L, 2, 1.0);
  if (e->stream) {
    for (;;) {
      if (e->rlen >= 4) {
        uint32_t len = ls_get_be32(e->rbuf);
        if (len > LS_FRAME_MAX) return lsl_fail(L, -EPROTO, "recv: bad frame length");
        if (e->rlen >= 4 + len) {
          lua_pushlstring(L, (const char *)e->rbuf + 4, len);
          memmove(e->rbuf, e->rbuf + 4 + len, e->rlen - 4 - len);
          e->rlen -= 4 + len;
          return 1;
        }
      }
      ssize_t n = recv(e->fd, e->rbuf + e->rlen, RBUF_CAP - e->rlen, MSG_DONTWAIT);
      if (n > 0) {
        e->rlen += (uint32_t)n;
        continue;
      }
      if (n == 0) return lsl_fail(L, UV_EOF, "recv");
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) return lsl_fail(L, -errno, "recv");
      if (!wait_fd(e->fd, POLLIN, deadline)) return lsl_fail(L, -ETIMEDOUT, "recv");
    }
  }
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

/* ep:accept([timeout = 5]) -> true | nil, err, code: a listening stream endpoint takes the
 * next connection (replacing the current one) */
static int ep_accept(lua_State *L) {
  lsl_endpoint *e = check_open(L, 1);
  if (e->lfd < 0) return luaL_argerror(L, 1, "not a listening endpoint");
  double deadline = now_s() + opt_timeout(L, 2, 5.0);
  for (;;) {
    int fd = accept4(e->lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd >= 0) {
      if (e->fd >= 0) close(e->fd);
      e->fd = fd;
      e->rlen = 0;
      lua_pushboolean(L, 1);
      return 1;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return lsl_fail(L, -errno, "accept");
    if (!wait_fd(e->lfd, POLLIN, deadline)) return lsl_fail(L, -ETIMEDOUT, "accept");
  }
}

/* ep:connect(peer) -> true | nil, err, code — (re)connect a datagram endpoint */
static int ep_connect(lua_State *L) {
  lsl_endpoint *e = check_idle(L, 1);
  if (e->stream) return luaL_argerror(L, 1, "a stream endpoint connects when created");
  const char *peer = luaL_checkstring(L, 2);
  ls_addr a;
  int r = ls_addr_parse(peer, true, 0, &a);
  if (r) return lsl_fail(L, r, peer);
  if (connect(e->fd, (struct sockaddr *)&a.sa, a.len) < 0) return lsl_fail(L, -errno, peer);
  lua_pushboolean(L, 1);
  return 1;
}

/* ep:drain() -> number of datagrams (or stream bytes) that were waiting, now discarded */
static int ep_drain(lua_State *L) {
  lsl_endpoint *e = check_idle(L, 1);
  char buf[4096];
  lua_Integer n = 0;
  ssize_t r;
  if (e->stream) {
    n = e->rlen;
    e->rlen = 0;
    while ((r = recv(e->fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0) n += r;
  } else {
    while (recv(e->fd, buf, 64, MSG_DONTWAIT | MSG_TRUNC) >= 0) n++;
  }
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
  if (e->closed) return 0;
  if (e->jobs > 0 && lua_getiuservalue(L, 1, 1) == LUA_TTABLE) {
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      lua_pop(L, 1);
      job_finish(L, -1, luaL_checkudata(L, -1, LSL_JOB));
    }
  }
  lua_settop(L, 1);
  release(e);
  return 0;
}

static int ep_gc(lua_State *L) {
  lsl_endpoint *e = luaL_checkudata(L, 1, LSL_ENDPOINT);
  /* A job holds a reference to its endpoint, so none can be running here. */
  if (!e->closed) release(e);
  return 0;
}

static int ep_tostring(lua_State *L) {
  lsl_endpoint *e = luaL_checkudata(L, 1, LSL_ENDPOINT);
  const char *kind = e->stream ? "stream" : "datagram";
  if (e->closed)
    lua_pushliteral(L, "luaswitch.endpoint (closed)");
  else if (e->path[0])
    lua_pushfstring(L, "luaswitch.endpoint \"%s\" (%s)", e->path, kind);
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
    if (j->sender)
      e->sending = false;
    else
      e->receiving = false;
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
    lua_pushnumber(L, (double)r->max_gap_ns / 1e9);
    lua_setfield(L, t, "max_gap");
    if (r->max_gap_end_ns) { /* on luaswitch.monotime()'s clock */
      lua_pushnumber(L, (double)r->max_gap_end_ns / 1e9);
      lua_setfield(L, t, "max_gap_at");
    }
    if (r->stamped) {
      lsl_setint(L, t, "stamped", r->stamped);
      lua_pushnumber(L, (double)r->max_latency_ns / 1e9);
      lua_setfield(L, t, "max_latency");
      lua_pushnumber(L, (double)r->max_latency_end_ns / 1e9);
      lua_setfield(L, t, "max_latency_at");
      lua_pushnumber(L, (double)r->latency_sum_ns / 1e9 / (double)r->stamped);
      lua_setfield(L, t, "mean_latency");
    }
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

/* A datagram endpoint that may start a job of this direction. */
static lsl_endpoint *check_job_start(lua_State *L, bool sender) {
  lsl_endpoint *e = check_ep(L, 1);
  if (e->stream) luaL_argerror(L, 1, "background jobs need a datagram endpoint");
  if (sender ? e->sending : e->receiving)
    luaL_argerror(L, 1, sender ? "endpoint already runs a sender" : "endpoint already runs a sink");
  return e;
}

/* ep:start_sending { frame = s | frames = { s, ... }, count =, rate =, seq_offset =,
 *                    ts_offset =, random_src =, seed = } */
static int ep_start_sending(lua_State *L) {
  const char *fn = "start_sending";
  lsl_endpoint *e = check_job_start(L, true);
  lsl_check_table(L, 2, fn);
  static const char *const known[] = {"frame",     "frames",     "count", "rate", "seq_offset",
                                      "ts_offset", "random_src", "seed",  NULL};
  lsl_check_known(L, 2, fn, known);
  ls_traffic_opts o;
  memset(&o, 0, sizeof(o));
  o.count = (uint64_t)lsl_opt_integer(L, 2, fn, "count", 0, 0, INT64_MAX);
  o.rate = lsl_opt_number(L, 2, fn, "rate", 0, 0, 1e9);
  o.seq_offset = (uint32_t)lsl_opt_integer(L, 2, fn, "seq_offset", 0, 0, LS_FRAME_MAX - 8);
  o.ts_offset = (uint32_t)lsl_opt_integer(L, 2, fn, "ts_offset", 0, 0, LS_FRAME_MAX - 8);
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
  e->sending = true;
  return 1;
}

/* ep:start_receiving { seq_offset =, ts_offset =, keep = } */
static int ep_start_receiving(lua_State *L) {
  const char *fn = "start_receiving";
  lsl_endpoint *e = check_job_start(L, false);
  ls_traffic_opts o;
  memset(&o, 0, sizeof(o));
  if (!lua_isnoneornil(L, 2)) {
    lsl_check_table(L, 2, fn);
    static const char *const known[] = {"seq_offset", "ts_offset", "keep", NULL};
    lsl_check_known(L, 2, fn, known);
    o.seq_offset = (uint32_t)lsl_opt_integer(L, 2, fn, "seq_offset", 0, 0, LS_FRAME_MAX - 8);
    o.ts_offset = (uint32_t)lsl_opt_integer(L, 2, fn, "ts_offset", 0, 0, LS_FRAME_MAX - 8);
    o.keep = lsl_opt_boolean(L, 2, fn, "keep", false);
  }
  lsl_job *j = push_job(L, e, false);
  int err = 0;
  j->t = ls_traffic_sink(e->fd, &o, &err);
  if (!j->t) return lsl_fail(L, err, fn);
  e->jobs++;
  e->receiving = true;
  return 1;
}

static const luaL_Reg ep_methods[] = {
    {"send", ep_send},
    {"recv", ep_recv},
    {"drain", ep_drain},
    {"connect", ep_connect},
    {"accept", ep_accept},
    {"send_raw", ep_send_raw},
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
