/*
 * client.c — `luaswitch ctl PATH CHUNK` and `luaswitch attach PATH`: clients of the
 * control socket (control.c serves it; lua/luaswitch/console.lua answers).
 *
 * Owns: connecting, sending a request line and waiting for its reply line. ctl sends one
 * `\eval` request, prints the result as indented JSON on stdout (what the chunk printed
 * goes to stderr, so stdout stays JSON) and exits 0, or prints the error and exits 1 (a
 * Lua error) or 2 (no connection, refused, closed). attach is a REPL whose lines run on
 * the server: `\pretty` requests (the server formats values as the local REPL does),
 * `\complete` for Tab, ">>" while the server says a statement is incomplete. Ctrl-C at its
 * prompt clears the line; while a request runs it drops that connection (the request
 * still completes on the server) and opens a new one.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli.h"

typedef struct conn {
  int fd;
  const char *path;
  char *buf; /* received, not yet returned */
  size_t len, cap;
} conn;

static int conn_open(conn *c, const char *path) {
  c->path = path;
  c->fd = -1;
  c->len = 0;
  struct sockaddr_un a;
  memset(&a, 0, sizeof(a));
  a.sun_family = AF_UNIX;
  if (strlen(path) >= sizeof(a.sun_path)) {
    fprintf(stderr, "%s: %s: path too long\n", cli_progname, path);
    return -1;
  }
  strcpy(a.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
    fprintf(stderr, "%s: cannot connect to %s: %s\n", cli_progname, path, strerror(errno));
    if (fd >= 0) close(fd);
    return -1;
  }
  c->fd = fd;
  return 0;
}

static void conn_close(conn *c) {
  if (c->fd >= 0) close(c->fd);
  c->fd = -1;
  c->len = 0;
}

static int send_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Send `\cmd "payload"` and wait for the reply line (malloc'd, without its newline).
 * Returns 0, -1 when the connection failed or closed, -2 when sfd reported SIGINT. */
static int conn_request(conn *c, const char *cmd, const char *payload, char **reply, int sfd) {
  *reply = NULL;
  size_t jl;
  char *j = json_string_encode(payload, strlen(payload), &jl);
  if (!j) return -1;
  size_t cl = strlen(cmd);
  char *req = malloc(cl + jl + 3);
  if (!req) {
    free(j);
    return -1;
  }
  req[0] = '\\';
  memcpy(req + 1, cmd, cl);
  req[cl + 1] = ' ';
  memcpy(req + cl + 2, j, jl);
  req[cl + 2 + jl] = '\n';
  free(j);
  if (send_all(c->fd, req, cl + jl + 3) != 0) {
    /* The server may still have said why it closed (a refused peer): read on. */
  }
  free(req);
  for (;;) {
    char *nl = c->len ? memchr(c->buf, '\n', c->len) : NULL;
    if (nl) {
      size_t n = (size_t)(nl - c->buf);
      char *line = malloc(n + 1);
      if (!line) return -1;
      memcpy(line, c->buf, n);
      line[n] = '\0';
      memmove(c->buf, nl + 1, c->len - n - 1);
      c->len -= n + 1;
      *reply = line;
      return 0;
    }
    if (c->cap - c->len < 4096) {
      size_t cap = c->cap ? c->cap * 2 : 16384;
      char *b = realloc(c->buf, cap);
      if (!b) return -1;
      c->buf = b;
      c->cap = cap;
    }
    struct pollfd pfd[2] = {{c->fd, POLLIN, 0}, {sfd, POLLIN, 0}};
    int pr = poll(pfd, sfd >= 0 ? 2 : 1, -1);
    if (pr < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (sfd >= 0 && (pfd[1].revents & POLLIN)) {
      struct signalfd_siginfo si;
      if (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) return -2;
    }
    if (pfd[0].revents) {
      ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return -1;
      c->len += (size_t)n;
    }
  }
}

static char *field_string(const char *reply, const char *key) {
  json_span v = json_field(reply, strlen(reply), key);
  return v.p ? json_string_decode(v, NULL) : NULL;
}

static bool field_true(const char *reply, const char *key) {
  json_span v = json_field(reply, strlen(reply), key);
  return v.p && v.len == 4 && memcmp(v.p, "true", 4) == 0;
}

/* ---- ctl ------------------------------------------------------------------------------------ */

int cli_ctl(const char *path, const char *chunk) {
  conn c = {-1, NULL, NULL, 0, 0};
  if (conn_open(&c, path) != 0) return 2;
  char *reply;
  int r = conn_request(&c, "eval", chunk, &reply, -1);
  conn_close(&c);
  free(c.buf);
  if (r != 0) {
    fprintf(stderr, "%s: %s: the connection closed before a reply\n", cli_progname, path);
    return 2;
  }
  char *out = field_string(reply, "output");
  if (out) {
    fputs(out, stderr);
    free(out);
  }
  int status;
  if (field_true(reply, "ok")) {
    json_span res = json_field(reply, strlen(reply), "result");
    if (res.p)
      json_print_indented(res, stdout);
    else
      puts("null");
    status = 0;
  } else {
    char *tb = field_string(reply, "traceback");
    char *err = tb ? NULL : field_string(reply, "error");
    fprintf(stderr, "%s: %s\n", cli_progname, tb ? tb : err ? err : reply);
    free(tb);
    free(err);
    status = field_true(reply, "fatal") ? 2 : 1;
  }
  free(reply);
  fflush(stdout);
  return status;
}

/* ---- attach ------------------------------------------------------------------------------------
 */

static conn *attached;

static char **complete_remote(const char *word) {
  char *reply;
  if (!attached || attached->fd < 0) return NULL;
  if (conn_request(attached, "complete", word, &reply, -1) != 0) return NULL;
  char **list = NULL;
  if (field_true(reply, "ok")) list = json_string_array(json_field(reply, strlen(reply), "result"));
  free(reply);
  return list;
}

/* Print a reply to \pretty. Returns 1 when the statement is incomplete, -1 when the
 * server refused us for good, else 0. */
static int show_reply(const char *reply) {
  char *out = field_string(reply, "output");
  if (out) {
    fputs(out, stdout);
    free(out);
  }
  if (field_true(reply, "ok")) {
    char *text = field_string(reply, "result");
    if (text) {
      puts(text);
      free(text);
    }
    fflush(stdout);
    return 0;
  }
  if (field_true(reply, "incomplete")) return 1;
  char *tb = field_string(reply, "traceback");
  char *err = tb ? NULL : field_string(reply, "error");
  fflush(stdout);
  fprintf(stderr, "%s\n", tb ? tb : err ? err : reply);
  fflush(stderr);
  free(tb);
  free(err);
  return field_true(reply, "fatal") ? -1 : 0;
}

int cli_attach(const char *path) {
  conn c = {-1, NULL, NULL, 0, 0};
  if (conn_open(&c, path) != 0) return 2;
  attached = &c;

  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigprocmask(SIG_BLOCK, &set, NULL);
  int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0) {
    fprintf(stderr, "%s: signalfd: %s\n", cli_progname, strerror(errno));
    return 2;
  }

  /* Say hello: this also finds out whether we are let in. */
  char *reply;
  int status = 0;
  if (conn_request(&c, "eval", "luaswitch.version", &reply, sfd) != 0) {
    fprintf(stderr, "%s: %s: the connection closed before a reply\n", cli_progname, path);
    status = 2;
    goto out;
  }
  if (!field_true(reply, "ok")) {
    char *err = field_string(reply, "error");
    fprintf(stderr, "%s: %s: %s\n", cli_progname, path, err ? err : reply);
    free(err);
    free(reply);
    status = 2;
    goto out;
  }
  char *version = field_string(reply, "result");
  free(reply);

  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  char p1[160], p2[160];
  snprintf(p1, sizeof(p1), "%.100s> ", base);
  snprintf(p2, sizeof(p2), "%.100s>> ", base);

  const char *home = getenv("HOME");
  char hist[4096];
  bool have_hist = home && *home &&
                   snprintf(hist, sizeof(hist), "%s/.luaswitch_history", home) < (int)sizeof(hist);
  le_open(have_hist ? hist : NULL, complete_remote);
  if (le_is_tty()) {
    printf("luaswitch attach: %s (luaswitch %s); Tab completes, Ctrl-D leaves\n", path,
           version ? version : "?");
    fflush(stdout);
  }
  free(version);
  le_prompt(p1);

  char *chunk = NULL;
  for (;;) {
    struct pollfd pfd[3] = {{0, POLLIN, 0}, {sfd, POLLIN, 0}, {c.fd, POLLIN, 0}};
    int pr = poll(pfd, 3, le_buffered() ? 0 : -1);
    if (pr < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (pfd[1].revents & POLLIN) {
      struct signalfd_siginfo si;
      if (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (si.ssi_signo != SIGINT) break;
        free(chunk);
        chunk = NULL;
        le_interrupt(p1);
      }
    }
    if (pfd[2].revents) { /* nothing is expected between replies: the server went away */
      le_hide();
      fprintf(stderr, "%s: %s: the server closed the connection\n", cli_progname, path);
      status = 2;
      break;
    }
    if (!(pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) && !le_buffered()) continue;
    char *line;
    int r = le_read(&line);
    if (r == 0) continue;
    if (r < 0) {
      if (le_is_tty()) fputs("\n", stdout);
      break;
    }
    le_add_history(line);
    if (chunk) {
      size_t a = strlen(chunk), b = strlen(line);
      char *n = realloc(chunk, a + b + 2);
      if (n) {
        n[a] = '\n';
        memcpy(n + a + 1, line, b + 1);
        chunk = n;
      }
      free(line);
    } else {
      chunk = line;
    }
    r = conn_request(&c, "pretty", chunk, &reply, sfd);
    if (r == -2) {
      fprintf(stderr, "interrupted (the request goes on on the server; reconnecting)\n");
      conn_close(&c);
      if (conn_open(&c, path) != 0) {
        status = 2;
        break;
      }
      free(chunk);
      chunk = NULL;
      le_prompt(p1);
      continue;
    }
    if (r != 0) {
      fprintf(stderr, "%s: %s: the connection closed before a reply\n", cli_progname, path);
      status = 2;
      break;
    }
    int more = show_reply(reply);
    free(reply);
    if (more < 0) {
      status = 2;
      break;
    }
    if (more == 0) {
      free(chunk);
      chunk = NULL;
    }
    le_prompt(chunk ? p2 : p1);
  }
  free(chunk);
  le_close();
out:
  attached = NULL;
  conn_close(&c);
  free(c.buf);
  close(sfd);
  return status;
}
