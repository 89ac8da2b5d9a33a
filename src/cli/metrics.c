/*
 * metrics.c — `luaswitch --metrics ADDR`: Prometheus text exposition over HTTP.
 *
 * Owns: a listening socket (TCP `HOST:PORT`, port 0 for any free one, or a unix socket when
 * ADDR holds a '/': created 0600, a stale file replaced, removed at exit) and its
 * connections. Each connection sends one HTTP request; `GET /metrics` is answered with
 * luaswitch.console.metrics() (text/plain; version=0.0.4), anything else with 404 or 405;
 * then the connection is closed. Served from the main loop like the control socket:
 * non-blocking, a request head of at most 8 KiB, a bounded number of connections.
 */
#include <errno.h>
#include <lauxlib.h>
#include <lua.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli.h"

#define MAX_CONNS 32
#define MAX_HEAD 8192

typedef struct mconn {
  int fd;
  char in[MAX_HEAD];
  size_t inlen;
  char *out;
  size_t outlen, outoff;
  bool answered;
} mconn;

struct metrics_server {
  int lfd;
  char path[sizeof(((struct sockaddr_un *)0)->sun_path)]; /* unix socket file, or "" */
  dev_t dev;
  ino_t ino;
  mconn *c[MAX_CONNS];
  int n;
};

static metrics_server *at_exit_server;

static void remove_file(metrics_server *s) {
  struct stat st;
  if (s->path[0] && stat(s->path, &st) == 0 && st.st_dev == s->dev && st.st_ino == s->ino)
    unlink(s->path);
  s->path[0] = '\0';
}

static void exit_hook(void) {
  if (at_exit_server) remove_file(at_exit_server);
}

static int open_unix(metrics_server *s, const char *path, char *err, size_t errlen) {
  struct sockaddr_un a;
  memset(&a, 0, sizeof(a));
  a.sun_family = AF_UNIX;
  if (strlen(path) >= sizeof(a.sun_path)) {
    snprintf(err, errlen, "path too long");
    return -1;
  }
  strcpy(a.sun_path, path);
  struct stat st;
  if (lstat(path, &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      snprintf(err, errlen, "exists and is not a socket");
      return -1;
    }
    int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int r = probe < 0 ? -1 : connect(probe, (struct sockaddr *)&a, sizeof(a));
    int e = errno;
    if (probe >= 0) close(probe);
    if (r == 0 || e != ECONNREFUSED) {
      snprintf(err, errlen, "%s", r == 0 ? "a server is already listening there" : strerror(e));
      return -1;
    }
    unlink(path);
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    snprintf(err, errlen, "socket: %s", strerror(errno));
    return -1;
  }
  mode_t old = umask(0177);
  int r = bind(fd, (struct sockaddr *)&a, sizeof(a));
  int e = errno;
  umask(old);
  if (r != 0 || listen(fd, 64) != 0 || stat(path, &st) != 0) {
    snprintf(err, errlen, "%s", strerror(r != 0 ? e : errno));
    if (r == 0) unlink(path);
    close(fd);
    return -1;
  }
  strcpy(s->path, path);
  s->dev = st.st_dev;
  s->ino = st.st_ino;
  fprintf(stderr, "%s: metrics at unix:%s (GET /metrics)\n", cli_progname, path);
  return fd;
}

static int open_tcp(const char *addr, char *err, size_t errlen) {
  char host[256];
  const char *colon = strrchr(addr, ':');
  if (!colon || colon == addr || !colon[1] || (size_t)(colon - addr) >= sizeof(host)) {
    snprintf(err, errlen, "HOST:PORT (e.g. 127.0.0.1:9100) or a socket path expected");
    return -1;
  }
  memcpy(host, addr, (size_t)(colon - addr));
  host[colon - addr] = '\0';
  if (host[0] == '[' && host[strlen(host) - 1] == ']') { /* [::1]:9100 */
    memmove(host, host + 1, strlen(host));
    host[strlen(host) - 1] = '\0';
  }
  struct addrinfo hints, *ai = NULL;
  memset(&hints, 0, sizeof(hints));
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  int g = getaddrinfo(host, colon + 1, &hints, &ai);
  if (g != 0) {
    snprintf(err, errlen, "%s", gai_strerror(g));
    return -1;
  }
  int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
      bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 64) != 0) {
    snprintf(err, errlen, "%s", strerror(errno));
    if (fd >= 0) close(fd);
    freeaddrinfo(ai);
    return -1;
  }
  freeaddrinfo(ai);
  struct sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  char h[NI_MAXHOST], p[NI_MAXSERV];
  if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0 &&
      getnameinfo((struct sockaddr *)&ss, len, h, sizeof(h), p, sizeof(p),
                  NI_NUMERICHOST | NI_NUMERICSERV) == 0)
    fprintf(stderr, "%s: metrics at http://%s%s%s:%s/metrics\n", cli_progname,
            strchr(h, ':') ? "[" : "", h, strchr(h, ':') ? "]" : "", p);
  return fd;
}

metrics_server *metrics_open(const char *addr, char *err, size_t errlen) {
  metrics_server *s = calloc(1, sizeof(*s));
  if (!s) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  s->lfd = strchr(addr, '/') ? open_unix(s, addr, err, errlen) : open_tcp(addr, err, errlen);
  if (s->lfd < 0) {
    free(s);
    return NULL;
  }
  static bool hooked;
  if (!hooked) {
    atexit(exit_hook);
    hooked = true;
  }
  if (s->path[0]) at_exit_server = s;
  return s;
}

int metrics_max_fds(void) {
  return 1 + MAX_CONNS;
}

int metrics_pollfds(metrics_server *s, struct pollfd *pfd, int n) {
  int k = 0;
  if (k < n) pfd[k++] = (struct pollfd){s->lfd, POLLIN, 0};
  for (int i = 0; i < s->n && k < n; i++) {
    mconn *c = s->c[i];
    pfd[k++] = (struct pollfd){c->fd, c->answered ? POLLOUT : POLLIN, 0};
  }
  return k;
}

static void conn_free(mconn *c) {
  close(c->fd);
  free(c->out);
  free(c);
}

static void respond(mconn *c, const char *status, const char *type, const char *body, size_t blen) {
  char head[256];
  int h = snprintf(head, sizeof(head),
                   "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                   "Connection: close\r\n\r\n",
                   status, type, blen);
  c->out = malloc((size_t)h + blen);
  if (c->out) {
    memcpy(c->out, head, (size_t)h);
    memcpy(c->out + h, body, blen);
    c->outlen = (size_t)h + blen;
  }
  c->answered = true;
}

static void answer(lua_State *L, mconn *c) {
  char method[16] = "", target[256] = "";
  if (sscanf(c->in, "%15s %255s", method, target) != 2) {
    const char *b = "bad request\n";
    respond(c, "400 Bad Request", "text/plain", b, strlen(b));
    return;
  }
  char *q = strchr(target, '?');
  if (q) *q = '\0';
  if (strcmp(target, "/metrics") != 0) {
    const char *b = "not found: the metrics are at /metrics\n";
    respond(c, "404 Not Found", "text/plain", b, strlen(b));
    return;
  }
  if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
    const char *b = "method not allowed\n";
    respond(c, "405 Method Not Allowed", "text/plain", b, strlen(b));
    return;
  }
  int top = lua_gettop(L);
  size_t len = 0;
  const char *text = NULL;
  if (cli_console(L, "metrics") == LUA_OK && cli_docall(L, 0, 1) == LUA_OK)
    text = lua_tolstring(L, -1, &len);
  if (!text) {
    const char *b = "luaswitch: the metrics could not be gathered\n";
    respond(c, "500 Internal Server Error", "text/plain", b, strlen(b));
  } else {
    respond(c, "200 OK", "text/plain; version=0.0.4; charset=utf-8", text,
            strcmp(method, "HEAD") == 0 ? 0 : len);
  }
  lua_settop(L, top);
}

void metrics_handle(metrics_server *s, lua_State *L, const struct pollfd *pfd, int n) {
  int polled = n - 1;
  if (n > 0 && (pfd[0].revents & POLLIN)) {
    for (;;) {
      int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) break;
      mconn *c = s->n < MAX_CONNS ? calloc(1, sizeof(*c)) : NULL;
      if (!c) {
        close(fd); /* too many at once: the scraper retries */
        continue;
      }
      c->fd = fd;
      s->c[s->n++] = c;
    }
  }
  for (int i = 0; i < s->n && i < polled; i++) {
    mconn *c = s->c[i];
    short re = pfd[i + 1].revents;
    bool ok = !(re & (POLLNVAL | POLLERR));
    if (ok && !c->answered && (re & (POLLIN | POLLHUP))) {
      ssize_t r = recv(c->fd, c->in + c->inlen, sizeof(c->in) - 1 - c->inlen, 0);
      if (r <= 0) {
        ok = r < 0 && (errno == EAGAIN || errno == EINTR);
      } else {
        c->inlen += (size_t)r;
        c->in[c->inlen] = '\0';
        if (strstr(c->in, "\r\n\r\n") || strstr(c->in, "\n\n")) {
          answer(L, c);
        } else if (c->inlen >= sizeof(c->in) - 1) {
          const char *b = "request head too long\n";
          respond(c, "431 Request Header Fields Too Large", "text/plain", b, strlen(b));
        }
      }
    }
    if (ok && c->answered) {
      while (c->outoff < c->outlen) {
        ssize_t w = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);
        if (w < 0) {
          if (errno != EAGAIN && errno != EINTR) ok = false;
          break;
        }
        c->outoff += (size_t)w;
      }
      if (c->outoff >= c->outlen) ok = false; /* all said: close */
    }
    if (!ok) {
      conn_free(c);
      s->c[i] = NULL;
    }
  }
  int k = 0;
  for (int i = 0; i < s->n; i++)
    if (s->c[i]) s->c[k++] = s->c[i];
  s->n = k;
}

void metrics_close(metrics_server *s) {
  if (!s) return;
  for (int i = 0; i < s->n; i++) conn_free(s->c[i]);
  close(s->lfd);
  remove_file(s);
  if (at_exit_server == s) at_exit_server = NULL;
  free(s);
}
