/*
 * control.c — the control socket server of `luaswitch --control PATH`.
 *
 * Owns: the listening unix stream socket (mode 0600; a stale socket file replaced, a live
 * one refused; removed at exit, os.exit() included), its clients and their buffers. A
 * client is admitted when SO_PEERCRED says it runs as our uid or as root; others get an
 * error line and are closed. Requests are lines of at most CLI_MAX_LINE bytes; each is
 * answered with one line, made by luaswitch.console.request in Lua (see the README for
 * the protocol). Everything is non-blocking and served from the main loop: at most one
 * request per client per turn, so many clients share the Lua state fairly, and a client
 * is not read from while its reply is still being written (its own backpressure). A
 * client that goes away mid-request loses only the reply; a line that is too long gets
 * an error and the connection is closed (ctlline.c frames the lines); a partial line at
 * disconnect is dropped.
 */
#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <lua.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli.h"

#define MAX_CLIENTS 256

typedef struct client {
  int fd;
  char *in; /* received, not yet handled */
  size_t inlen, incap;
  char *out; /* reply bytes not yet written */
  size_t outlen, outoff;
  bool eof;     /* the peer has shut down its side: answer what is complete, then close */
  bool closing; /* close once out is written */
} client;

struct ctl_server {
  int lfd;
  char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
  dev_t dev;
  ino_t ino;
  int request_ref; /* registry ref of console.request */
  client *c[MAX_CLIENTS];
  int n;
};

/* The server whose socket file is removed at exit, os.exit() included. */
static ctl_server *at_exit_server;

static void remove_socket_file(ctl_server *s) {
  struct stat st;
  if (s->path[0] && stat(s->path, &st) == 0 && st.st_dev == s->dev && st.st_ino == s->ino)
    unlink(s->path);
  s->path[0] = '\0';
}

static void exit_hook(void) {
  if (at_exit_server) remove_socket_file(at_exit_server);
}

static int fill_addr(struct sockaddr_un *a, const char *path) {
  memset(a, 0, sizeof(*a));
  a->sun_family = AF_UNIX;
  if (strlen(path) >= sizeof(a->sun_path)) return -ENAMETOOLONG;
  strcpy(a->sun_path, path);
  return 0;
}

ctl_server *ctl_open(const char *path, char *err, size_t errlen) {
  struct sockaddr_un a;
  if (fill_addr(&a, path) < 0) {
    snprintf(err, errlen, "path too long (at most %zu bytes)", sizeof(a.sun_path) - 1);
    return NULL;
  }
  struct stat st;
  if (lstat(path, &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      snprintf(err, errlen, "exists and is not a socket");
      return NULL;
    }
    /* Live (someone accepts) or stale (left by a process that died)? */
    int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe < 0) {
      snprintf(err, errlen, "socket: %s", strerror(errno));
      return NULL;
    }
    int r = connect(probe, (struct sockaddr *)&a, sizeof(a));
    int e = errno;
    close(probe);
    if (r == 0 || e != ECONNREFUSED) {
      snprintf(err, errlen, "%s", r == 0 ? "a server is already listening there" : strerror(e));
      return NULL;
    }
    if (unlink(path) != 0) {
      snprintf(err, errlen, "cannot remove the stale socket file: %s", strerror(errno));
      return NULL;
    }
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    snprintf(err, errlen, "socket: %s", strerror(errno));
    return NULL;
  }
  mode_t old = umask(0177); /* created 0600: no window where others may connect */
  int r = bind(fd, (struct sockaddr *)&a, sizeof(a));
  int e = errno;
  umask(old);
  if (r != 0) {
    snprintf(err, errlen, "bind: %s", strerror(e));
    close(fd);
    return NULL;
  }
  if (chmod(path, 0600) != 0 || listen(fd, 128) != 0 || stat(path, &st) != 0) {
    snprintf(err, errlen, "%s", strerror(errno));
    unlink(path);
    close(fd);
    return NULL;
  }
  ctl_server *s = calloc(1, sizeof(*s));
  if (!s) {
    snprintf(err, errlen, "out of memory");
    unlink(path);
    close(fd);
    return NULL;
  }
  s->lfd = fd;
  strcpy(s->path, path);
  s->dev = st.st_dev;
  s->ino = st.st_ino;
  s->request_ref = LUA_NOREF;
  static bool hooked;
  if (!hooked) {
    atexit(exit_hook);
    hooked = true;
  }
  at_exit_server = s;
  return s;
}

int ctl_max_fds(void) {
  return 1 + MAX_CLIENTS;
}

/* CTL_LINE, CTL_MORE or CTL_TOO_LONG: what the client's buffer starts with. */
static int line_state(const client *c) {
  size_t len, used;
  return ctl_line(c->in, c->inlen, &len, &used);
}

static bool has_line(const client *c) {
  return line_state(c) == CTL_LINE;
}

static bool too_long(const client *c) {
  return !c->closing && line_state(c) == CTL_TOO_LONG;
}

/* Read from this client only when nothing of its own is waiting to be done. */
static bool wants_input(const client *c) {
  return !c->eof && !c->closing && c->outlen == 0 && line_state(c) == CTL_MORE;
}

int ctl_pollfds(ctl_server *s, struct pollfd *pfd, int n) {
  int k = 0;
  if (k < n) pfd[k++] = (struct pollfd){s->lfd, POLLIN, 0};
  for (int i = 0; i < s->n && k < n; i++) {
    client *c = s->c[i];
    short ev = 0;
    if (wants_input(c)) ev |= POLLIN;
    if (c->outlen > c->outoff) ev |= POLLOUT;
    pfd[k++] = (struct pollfd){c->fd, ev, 0};
  }
  return k;
}

bool ctl_pending(const ctl_server *s) {
  for (int i = 0; i < s->n; i++) {
    const client *c = s->c[i];
    if (!c->closing && c->outlen == 0 && has_line(c)) return true;
    if (too_long(c)) return true;                              /* to be refused */
    if (c->eof && c->outlen == 0 && !has_line(c)) return true; /* to be closed */
  }
  return false;
}

static void client_free(client *c) {
  close(c->fd);
  free(c->in);
  free(c->out);
  free(c);
}

/* Queue bytes to send; false if out of memory. */
static bool queue(client *c, const char *p, size_t n) {
  if (c->outoff == c->outlen) c->outoff = c->outlen = 0;
  char *o = realloc(c->out, c->outlen + n);
  if (!o) return false;
  memcpy(o + c->outlen, p, n);
  c->out = o;
  c->outlen += n;
  return true;
}

/* Write what is queued; false when the client is gone. */
static bool flush_out(client *c) {
  while (c->outoff < c->outlen) {
    ssize_t w = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
      return false;
    }
    c->outoff += (size_t)w;
  }
  c->outoff = c->outlen = 0;
  free(c->out);
  c->out = NULL;
  return true;
}

/* Say why, best effort, and close (a refused peer, too many clients). */
static void refuse(int fd, const char *why) {
  char line[512];
  int n = snprintf(line, sizeof(line), "{\"ok\":false,\"error\":\"%s\",\"fatal\":true}\n", why);
  if (n > 0 && send(fd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) { /* gone anyway */
  }
  close(fd);
}

static void accept_clients(ctl_server *s) {
  for (;;) {
    int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return; /* EAGAIN, or a peer that went away already */
    struct ucred cr;
    socklen_t len = sizeof(cr);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0) {
      close(fd);
      continue;
    }
    if (cr.uid != geteuid() && cr.uid != 0) {
      char why[200];
      snprintf(why, sizeof(why),
               "permission denied: uid %u may not use this control socket (only uid %u and root)",
               (unsigned)cr.uid, (unsigned)geteuid());
      refuse(fd, why);
      continue;
    }
    if (s->n == MAX_CLIENTS) {
      refuse(fd, "too many clients");
      continue;
    }
    client *c = calloc(1, sizeof(*c));
    if (!c) {
      close(fd);
      continue;
    }
    c->fd = fd;
    s->c[s->n++] = c;
  }
}

/* The client sent more than CLI_MAX_LINE bytes without a newline: say so (after any
 * reply still being written) and close. False if out of memory. */
static bool refuse_long_line(client *c) {
  char msg[160];
  int n = snprintf(msg, sizeof(msg),
                   "{\"ok\":false,\"error\":\"request line too long (more than %d bytes without "
                   "a newline); closing the connection\",\"fatal\":true}\n",
                   CLI_MAX_LINE);
  c->inlen = 0;
  c->closing = true;
  return queue(c, msg, (size_t)n);
}

/* Read what the client sent; false when it is to be closed now. */
static bool read_in(client *c) {
  for (;;) {
    if (c->incap - c->inlen < 4096) {
      size_t cap = c->incap ? c->incap * 2 : 8192;
      if (cap > CLI_MAX_LINE + 4096 * 2) cap = CLI_MAX_LINE + 4096 * 2;
      if (cap <= c->incap) break; /* full: too long, see below */
      char *p = realloc(c->in, cap);
      if (!p) return false;
      c->in = p;
      c->incap = cap;
    }
    ssize_t r = recv(c->fd, c->in + c->inlen, c->incap - c->inlen, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      return false;
    }
    if (r == 0) {
      c->eof = true;
      break;
    }
    c->inlen += (size_t)r;
    if (line_state(c) != CTL_MORE) break;
  }
  if (too_long(c)) return refuse_long_line(c);
  return true;
}

static void reply_internal_error(client *c, const char *msg) {
  size_t n;
  char *j = json_string_encode(msg, strlen(msg), &n);
  const char *head = "{\"ok\":false,\"error\":";
  if (!j || !queue(c, head, strlen(head)) || !queue(c, j, n) || !queue(c, "}\n", 2))
    c->closing = true;
  free(j);
}

/* Run the client's next request line. */
static void run_request(ctl_server *s, lua_State *L, client *c) {
  size_t linelen, used;
  ctl_line(c->in, c->inlen, &linelen, &used);
  if (s->request_ref == LUA_NOREF) {
    if (cli_console(L, "request") != LUA_OK) {
      s->request_ref = LUA_REFNIL;
    } else {
      s->request_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
  }
  if (s->request_ref == LUA_REFNIL) {
    reply_internal_error(c, "internal error: luaswitch.console cannot be loaded");
  } else {
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->request_ref);
    lua_pushlstring(L, c->in, linelen);
    int st = cli_call_interruptible(L, 1, 1);
    size_t rl = 0;
    const char *r = lua_tolstring(L, -1, &rl);
    if (st != LUA_OK || !r) {
      reply_internal_error(c, r ? r : "internal error: no reply");
    } else if (!queue(c, r, rl) || !queue(c, "\n", 1)) {
      c->closing = true;
    }
    lua_pop(L, 1);
  }
  memmove(c->in, c->in + used, c->inlen - used);
  c->inlen -= used;
}

void ctl_handle(ctl_server *s, lua_State *L, const struct pollfd *pfd, int n) {
  /* pfd[0] is the listener, pfd[1..] the clients s->c[0..] as they were when polled;
   * clients accepted now are added after them. */
  int polled = n - 1;
  if (n > 0 && (pfd[0].revents & POLLIN)) accept_clients(s);
  for (int i = 0; i < s->n; i++) {
    client *c = s->c[i];
    bool ok = true;
    if (i < polled) {
      short re = pfd[i + 1].revents;
      if (re & POLLNVAL) ok = false;
      if (ok && (re & (POLLIN | POLLHUP | POLLERR)) && wants_input(c)) ok = read_in(c);
      if (ok && (re & POLLOUT)) ok = flush_out(c);
      if (ok && (re & POLLERR) && !(re & POLLIN)) ok = false;
    }
    if (ok && !c->closing && c->outlen == 0 && has_line(c)) {
      run_request(s, L, c);
      ok = flush_out(c);
    }
    /* what follows the request may be too long already, with nothing more to read */
    if (ok && too_long(c)) ok = refuse_long_line(c) && flush_out(c);
    if (ok && c->closing && c->outlen == 0) ok = false;
    if (ok && c->eof && c->outlen == 0 && !has_line(c)) ok = false; /* a partial line is dropped */
    if (!ok) {
      client_free(c);
      s->c[i] = NULL;
    }
  }
  int k = 0;
  for (int i = 0; i < s->n; i++)
    if (s->c[i]) s->c[k++] = s->c[i];
  for (int i = k; i < s->n; i++) s->c[i] = NULL;
  s->n = k;
}

void ctl_close(ctl_server *s) {
  if (!s) return;
  for (int i = 0; i < s->n; i++) client_free(s->c[i]);
  close(s->lfd);
  remove_socket_file(s);
  if (at_exit_server == s) at_exit_server = NULL;
  free(s);
}
