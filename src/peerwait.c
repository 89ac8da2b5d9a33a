/*
 * peerwait.c — the registry of ports waiting for their peer, and its inotify watches
 * (see peerwait.h for the design).
 */
#include "peerwait.h"

#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/un.h>
#include <unistd.h>

#define WATCH_MASK (IN_CREATE | IN_MOVED_TO | IN_ATTRIB | IN_ONLYDIR)

/* One inotify watch (a directory) and the number of waiters using it. */
typedef struct dir_watch {
  int wd;
  uint32_t refs;
} dir_watch;

struct ls_peer_waits {
  ls_runtime *rt;
  ls_peer_wait *head;
  int ifd; /* the inotify instance, -1 until a filesystem path waits (or unavailable) */
  uv_poll_t poll;
  bool poll_init;
  dir_watch *watches;
  uint32_t nwatches, watches_cap;
};

void ls_peer_wait_init(ls_peer_wait *w, ls_runtime *rt, int type, const struct sockaddr *sa,
                       socklen_t len, ls_peer_wake_fn wake) {
  memset(w, 0, sizeof(*w));
  w->rt = rt;
  w->type = type;
  if (len > sizeof(w->addr.sa)) len = sizeof(w->addr.sa);
  memcpy(&w->addr.sa, sa, len);
  w->addr.len = len;
  w->wake = wake;
  w->wd = -1;
}

/* ---- addresses ------------------------------------------------------------------------------ */

static const struct sockaddr_un *sun_of(const ls_addr *a) {
  return (const struct sockaddr_un *)&a->sa;
}

/* A filesystem unix path (not abstract, not an IP address)? */
static bool is_fs_path(const ls_addr *a) {
  return a->sa.ss_family == AF_UNIX && a->len > offsetof(struct sockaddr_un, sun_path) &&
         sun_of(a)->sun_path[0] != '\0';
}

/* The file name of a filesystem peer path (what inotify reports for its directory). */
static const char *base_name(const ls_addr *a) {
  const char *path = sun_of(a)->sun_path;
  const char *slash = strrchr(path, '/');
  return slash ? slash + 1 : path;
}

/* Does a listener bound at (sa, len) serve the waiter's address `want`? */
static bool serves(const ls_addr *want, const struct sockaddr *sa, socklen_t len) {
  if (want->sa.ss_family != sa->sa_family) return false;
  if (sa->sa_family == AF_UNIX) {
    const struct sockaddr_un *a = sun_of(want), *b = (const struct sockaddr_un *)sa;
    size_t off = offsetof(struct sockaddr_un, sun_path);
    if (want->len <= off || len <= off) return false;
    if (a->sun_path[0] == '\0' || b->sun_path[0] == '\0') /* abstract: the bytes, exactly */
      return want->len == len && memcmp(a->sun_path, b->sun_path, len - off) == 0;
    /* the kernel and callers differ on counting the NUL: compare the text */
    return strncmp(a->sun_path, b->sun_path, sizeof(a->sun_path)) == 0;
  }
  if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
    const struct sockaddr_in *a = (const void *)&want->sa, *b = (const void *)sa;
    return a->sin_port == b->sin_port &&
           (b->sin_addr.s_addr == htonl(INADDR_ANY) || a->sin_addr.s_addr == b->sin_addr.s_addr);
  }
  if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
    const struct sockaddr_in6 *a = (const void *)&want->sa, *b = (const void *)sa;
    return a->sin6_port == b->sin6_port &&
           (IN6_IS_ADDR_UNSPECIFIED(&b->sin6_addr) ||
            memcmp(&a->sin6_addr, &b->sin6_addr, sizeof(a->sin6_addr)) == 0);
  }
  return false;
}

/* ---- waking --------------------------------------------------------------------------------- */

/* Wake every marked waiter. A wake may stop any waiter (its own port comes up) or close
 * the registry, so the list is searched afresh each time. */
static void wake_marked(ls_runtime *rt) {
  for (;;) {
    ls_peer_waits *reg = rt->peer_waits;
    if (!reg) return;
    ls_peer_wait *w = reg->head;
    while (w && !w->marked) w = w->next;
    if (!w) return;
    w->marked = false;
    w->wake(w);
  }
}

void ls_peer_ready(ls_runtime *rt, int type, const struct sockaddr *sa, socklen_t len) {
  ls_peer_waits *reg = rt->peer_waits;
  if (!reg) return;
  bool any = false;
  for (ls_peer_wait *w = reg->head; w; w = w->next)
    if (w->type == type && serves(&w->addr, sa, len)) {
      w->marked = true;
      any = true;
    }
  if (any) wake_marked(rt);
}

/* ---- inotify -------------------------------------------------------------------------------- */

static dir_watch *find_watch(ls_peer_waits *reg, int wd) {
  for (uint32_t i = 0; i < reg->nwatches; i++)
    if (reg->watches[i].wd == wd) return &reg->watches[i];
  return NULL;
}

static void forget_watch(ls_peer_waits *reg, dir_watch *dw) {
  *dw = reg->watches[--reg->nwatches];
}

static void inotify_event_in(ls_peer_waits *reg, const struct inotify_event *ev) {
  if (ev->mask & IN_Q_OVERFLOW) { /* events were lost: every watched waiter looks */
    for (ls_peer_wait *w = reg->head; w; w = w->next)
      if (w->wd >= 0) w->marked = true;
    return;
  }
  if (ev->mask & IN_IGNORED) { /* the directory went away (or we removed the watch) */
    dir_watch *dw = find_watch(reg, ev->wd);
    if (!dw) return;
    forget_watch(reg, dw);
    for (ls_peer_wait *w = reg->head; w; w = w->next)
      if (w->wd == ev->wd) w->wd = -1; /* back to the back-off, which watches again */
    return;
  }
  if (!ev->len || !(ev->mask & (IN_CREATE | IN_MOVED_TO | IN_ATTRIB))) return;
  for (ls_peer_wait *w = reg->head; w; w = w->next)
    if (w->wd == ev->wd && strcmp(base_name(&w->addr), ev->name) == 0) w->marked = true;
}

static void on_inotify(uv_poll_t *h, int status, int events) {
  ls_peer_waits *reg = h->data;
  ls_runtime *rt = reg->rt;
  (void)events;
  ls_rt_tick(rt);
  if (status < 0) { /* inotify broke: the waiters' back-off timers still retry */
    uv_poll_stop(h);
    return;
  }
  char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
  while (rt->peer_waits == reg) { /* a wake may close the registry */
    ssize_t n = read(reg->ifd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    for (ssize_t off = 0; off + (ssize_t)sizeof(struct inotify_event) <= n;) {
      const struct inotify_event *ev = (const struct inotify_event *)(buf + off);
      inotify_event_in(reg, ev);
      off += (ssize_t)sizeof(*ev) + ev->len;
    }
    wake_marked(rt);
  }
  ls_rt_flush(rt);
}

static int open_inotify(ls_peer_waits *reg) {
  int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) return -errno;
  int r = uv_poll_init(&reg->rt->loop, &reg->poll, fd);
  if (r) {
    close(fd);
    return r;
  }
  reg->poll.data = reg;
  reg->poll_init = true;
  reg->ifd = fd;
  uv_poll_start(&reg->poll, UV_READABLE, on_inotify);
  return 0;
}

/* Watch the directory of w's peer path. Leaves w->wd at -1 if it cannot (no directory,
 * no inotify): its port's back-off timer tries again. */
static void watch(ls_peer_waits *reg, ls_peer_wait *w) {
  if (reg->ifd < 0 && open_inotify(reg) < 0) return;
  const char *path = sun_of(&w->addr)->sun_path;
  const char *slash = strrchr(path, '/');
  char dir[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
  if (!slash) {
    strcpy(dir, ".");
  } else if (slash == path) {
    strcpy(dir, "/");
  } else {
    memcpy(dir, path, (size_t)(slash - path));
    dir[slash - path] = '\0';
  }
  int wd = inotify_add_watch(reg->ifd, dir, WATCH_MASK);
  if (wd < 0) return;
  dir_watch *dw = find_watch(reg, wd); /* the same directory gives the same wd */
  if (!dw) {
    if (reg->nwatches == reg->watches_cap) {
      uint32_t cap = reg->watches_cap ? reg->watches_cap * 2 : 4;
      dir_watch *nw = realloc(reg->watches, cap * sizeof(*nw));
      if (!nw) {
        inotify_rm_watch(reg->ifd, wd);
        return;
      }
      reg->watches = nw;
      reg->watches_cap = cap;
    }
    dw = &reg->watches[reg->nwatches++];
    *dw = (dir_watch){.wd = wd, .refs = 0};
  }
  dw->refs++;
  w->wd = wd;
}

static void unwatch(ls_peer_waits *reg, int wd) {
  dir_watch *dw = find_watch(reg, wd);
  if (!dw || --dw->refs) return;
  inotify_rm_watch(reg->ifd, wd); /* its IN_IGNORED then finds no watch: ignored */
  forget_watch(reg, dw);
}

/* ---- the registry --------------------------------------------------------------------------- */

static void on_registry_closed(uv_handle_t *h) {
  free(h->data);
}

/* The last waiter left: close the inotify instance and forget the registry. */
static void registry_close(ls_peer_waits *reg) {
  reg->rt->peer_waits = NULL;
  free(reg->watches);
  reg->watches = NULL;
  reg->nwatches = reg->watches_cap = 0;
  if (!reg->poll_init) {
    free(reg);
    return;
  }
  uv_poll_stop(&reg->poll); /* out of epoll before the descriptor closes */
  if (reg->ifd >= 0) close(reg->ifd);
  reg->ifd = -1;
  uv_close((uv_handle_t *)&reg->poll, on_registry_closed);
}

bool ls_peer_wait_start(ls_peer_wait *w) {
  ls_runtime *rt = w->rt;
  ls_peer_waits *reg = rt->peer_waits;
  if (!reg) {
    if (!(reg = calloc(1, sizeof(*reg)))) return false; /* the back-off still retries */
    reg->rt = rt;
    reg->ifd = -1;
    rt->peer_waits = reg;
  }
  if (!w->listed) {
    w->listed = true;
    w->marked = false;
    w->wd = -1;
    w->next = reg->head;
    reg->head = w;
  }
  if (w->wd < 0 && is_fs_path(&w->addr)) watch(reg, w);
  return w->wd >= 0;
}

void ls_peer_wait_stop(ls_peer_wait *w) {
  if (!w->listed) return;
  ls_peer_waits *reg = w->rt->peer_waits;
  for (ls_peer_wait **pp = &reg->head; *pp; pp = &(*pp)->next)
    if (*pp == w) {
      *pp = w->next;
      break;
    }
  w->next = NULL;
  w->listed = w->marked = false;
  if (w->wd >= 0) unwatch(reg, w->wd);
  w->wd = -1;
  if (!reg->head) registry_close(reg);
}
