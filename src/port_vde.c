/*
 * port_vde.c — the "vde" port kind: the switch side of the VDE plug protocol, so that
 * libvdeplug clients (vde_plug, qemu -netdev vde,sock=DIR, ...) plug into a luaswitch
 * port exactly as they plug into `vde_switch -s DIR`.
 *
 * Owns: the control directory DIR, the listening socket DIR/ctl, the one client the port
 * serves at a time, and that client's data socket DIR/data.N.
 *
 * The protocol (client: vdeplug4 libvdeplug_vde.c; switch: vde-2 src/vde_switch/
 * datasock.c; checked with strace against Debian's vde_switch 2.3.2 and vde_plug 4.0.1):
 *  1. The client binds a datagram socket (DIR/.PID-N, else under /tmp), connects a
 *     stream socket to DIR/ctl and sends one request, packed, in host byte order:
 *        u32 magic 0xfeedface | u32 version 3 | u32 type | struct sockaddr_un (110 bytes:
 *        its datagram socket) | description (up to 128 bytes, not NUL-terminated)
 *     The type's low byte is REQ_NEW_CONTROL (0; the bits above it carry a requested
 *     port number, "vde://DIR[5]") or REQ_NEW_PORT0 (1, vde_switch's management port).
 *     Both are accepted and the port number is ignored: this port is the port.
 *  2. The switch creates a datagram socket, connects it to the client's (so that only
 *     the client can send to it, and poll() reports writability against the client's
 *     queue), binds it in DIR, and writes its address back as a whole struct
 *     sockaddr_un (110 bytes; the client reads exactly that and connects to it).
 *  3. From then on each Ethernet frame is one datagram, both ways. The stream carries
 *     nothing more: its end means the client is gone (link down, reason "hangup", and
 *     the port accepts the next client), and closing it tells the client the switch is
 *     gone (vde_plug exits on POLLHUP of that fd).
 * Only protocol version 3 is spoken (libvdeplug since vde2 2.3 and vdeplug4 use it).
 *
 * Bad input on ctl (wrong magic or version, unknown type, bad address, a request cut
 * short by EOF or not complete within HANDSHAKE_MS) closes that connection and counts
 * drops.bad_request; nothing else changes. A connection that closes without sending a
 * byte is a liveness probe (ours below, vde_switch's still_used()) and is not counted.
 * A second connection while a client is connected (or still handshaking) is accepted
 * and closed at once, counted as drops.busy: one client per port, as one VM per port.
 * Datagrams on the data socket from any address but the client's are counted
 * (bad_peer) and dropped; the kernel already refuses them with EPERM while the data
 * socket is connected, so this only catches what slips in after the client's socket
 * died.
 *
 * The directory: created with `mode` (default 0700) if it does not exist and removed at
 * close; an existing directory is accepted if it is empty (left in place at close) or
 * holds only sockets nobody is bound to — the leftovers of a switch that died — which
 * are removed (and the directory with them at close). Anything else is refused:
 * ENOTDIR (not a directory, or a symlink), EADDRINUSE (a live socket: another switch
 * runs there), ENOTEMPTY (other files). Sockets get mode & 0666; when we run as root the
 * data socket is given to the client's user (SO_PEERCRED of ctl), as vde_switch does.
 * A client other than root must name a socket it owns (EACCES otherwise): the switch
 * may run as root, and must not be made to send frames to someone else's socket.
 *
 * The data path is port_dgram.c's: recvmmsg() in batches until drained (bounded per
 * wake-up), one flush per batch, sendmmsg() as much of the queue as the client takes,
 * then wait for writability.
 */
#include "port_vde.h"
#include "frame.h"
#include "switch.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define VDE_MAGIC 0xfeedfaceU
#define VDE_VERSION 3
#define VDE_REQ_NEW_CONTROL 0
#define VDE_REQ_NEW_PORT0 1
/* request layout: offsets of the fields */
#define VDE_OFF_MAGIC 0
#define VDE_OFF_VERSION 4
#define VDE_OFF_TYPE 8
#define VDE_OFF_SOCK 12
#define VDE_REQ_FIXED LS_VDE_REQ_FIXED
#define VDE_DESCR_MAX LS_VDE_DESCR_MAX
#define VDE_REQ_MAX LS_VDE_REQ_MAX

#define HANDSHAKE_MS 2000 /* a connection must deliver its request within this */
#define ACCEPT_BUDGET 16  /* connections accepted per wake-up */
#define CTL_BACKLOG 16
#define RETRY_MS 250 /* accept failed for want of fds or memory: try again after this */
#define CTL_READS 16 /* reads of an established ctl stream per wake-up */

#define SUN_PATH_MAX sizeof(((struct sockaddr_un *)0)->sun_path)
#define DATA_NAME "/data.4294967295" /* the longest data socket name */
#define DIR_MAX (SUN_PATH_MAX - sizeof(DATA_NAME))

typedef struct vde_port vde_port;

/* A control connection: handshaking, then a client with its data socket. Freed once
 * its libuv handles are closed, which may be after the port accepted the next one. */
typedef struct vde_client {
  vde_port *v;
  int ctl_fd;
  int data_fd;
  bool ready; /* handshake done: the data socket is up */
  uint8_t req[VDE_REQ_MAX];
  uint32_t req_len;
  struct sockaddr_un addr;       /* the client's data socket */
  char data_path[SUN_PATH_MAX];  /* ours; "" until bound */
  char descr[VDE_DESCR_MAX + 1]; /* what the client calls itself */
  uv_poll_t ctl_poll;
  uv_poll_t data_poll;
  bool data_poll_init;
  int data_events;
  int handles;
} vde_client;

struct vde_port {
  ls_port base;
  char dir[SUN_PATH_MAX]; /* absolute */
  char ctl_path[SUN_PATH_MAX];
  mode_t mode;
  bool own_dir;    /* created (or taken over from a dead switch): remove it at close */
  bool unlink_ctl; /* DIR/ctl is ours */
  int listen_fd;
  uint32_t seq; /* data sockets made */
  vde_client *client;
  uv_poll_t listen_poll;
  uv_timer_t handshake; /* the client's request is late */
  uv_timer_t retry;     /* accept() failed for want of resources */
  bool listening;
  int handles; /* open libuv handles, the port's and its clients' */
};

static vde_port *V(ls_port *p) {
  return (vde_port *)p;
}

static void on_data(uv_poll_t *h, int status, int events);
static void on_listen(uv_poll_t *h, int status, int events);

/* ---- files --------------------------------------------------------------------------------- */

/* Is someone bound to the socket at path? A listener accepts, a datagram socket answers
 * EPROTOTYPE; only ECONNREFUSED means nobody is there. */
static bool socket_live(const char *path) {
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof(sa.sun_path)) return true;
  memcpy(sa.sun_path, path, strlen(path));
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return true;
  int r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
  int e = errno;
  close(fd);
  return r == 0 || e != ECONNREFUSED;
}

/* Unlink the sockets in dir that nobody is bound to (clients that died mid-handshake
 * leave theirs). Never touches anything but sockets. */
static void remove_dead_sockets(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *e;
  char path[PATH_MAX];
  while ((e = readdir(d))) {
    struct stat st;
    if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISSOCK(st.st_mode))
      continue;
    snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
    if (!socket_live(path)) unlinkat(dirfd(d), e->d_name, 0);
  }
  closedir(d);
}

/* An existing directory: empty (ours to use), or only dead sockets (a switch died:
 * remove them, *stale = true). Otherwise refuse, saying why in where. */
static int take_over_dir(const char *dir, bool *stale, char *where, size_t wlen) {
  DIR *d = opendir(dir);
  if (!d) {
    snprintf(where, wlen, "opendir %s", dir);
    return -errno;
  }
  int r = 0, n = 0;
  struct dirent *e;
  char path[PATH_MAX];
  while ((e = readdir(d))) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    struct stat st;
    if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
      if (errno == ENOENT) continue;
      r = -errno;
      snprintf(where, wlen, "stat %s/%s", dir, e->d_name);
      break;
    }
    snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
    if (!S_ISSOCK(st.st_mode)) {
      r = -ENOTEMPTY;
      snprintf(where, wlen, "%s holds %s, which is not a socket", dir, e->d_name);
      break;
    }
    if (socket_live(path)) {
      r = -EADDRINUSE;
      snprintf(where, wlen, "%s is in use", path);
      break;
    }
    n++;
  }
  if (r == 0 && n > 0) {
    rewinddir(d);
    while ((e = readdir(d))) {
      struct stat st;
      if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISSOCK(st.st_mode))
        unlinkat(dirfd(d), e->d_name, 0);
    }
    *stale = true;
  }
  closedir(d);
  return r;
}

/* Remove what the port put on the file system (idempotent). */
static void remove_files(vde_port *v) {
  if (v->unlink_ctl) unlink(v->ctl_path);
  v->unlink_ctl = false;
  if (v->dir[0]) remove_dead_sockets(v->dir);
  if (v->own_dir) rmdir(v->dir);
  v->own_dir = false;
}

/* ---- clients ------------------------------------------------------------------------------- */

static void handle_done(vde_port *v) {
  if (--v->handles == 0 && v->base.closing) ls_port_release(&v->base);
}

static void on_client_handle_closed(uv_handle_t *h) {
  vde_client *c = h->data;
  vde_port *v = c->v;
  if (--c->handles == 0) free(c);
  handle_done(v);
}

/* Close the current connection (handshaking or established) and forget it. */
static void client_close(vde_port *v) {
  vde_client *c = v->client;
  if (!c) return;
  v->client = NULL;
  uv_timer_stop(&v->handshake);
  uv_poll_stop(&c->ctl_poll); /* out of epoll before the fd closes */
  uv_close((uv_handle_t *)&c->ctl_poll, on_client_handle_closed);
  if (c->data_poll_init) {
    uv_poll_stop(&c->data_poll);
    uv_close((uv_handle_t *)&c->data_poll, on_client_handle_closed);
  }
  close(c->ctl_fd);
  c->ctl_fd = -1;
  if (c->data_fd >= 0) close(c->data_fd);
  c->data_fd = -1;
  if (c->data_path[0]) unlink(c->data_path);
  c->data_path[0] = '\0';
}

/* The client went away (or its socket did): link down, wait for the next one. */
static void client_hangup(vde_port *v) {
  bool was = v->client && v->client->ready;
  client_close(v);
  if (was) ls_port_set_link(&v->base, false, LS_REASON_HANGUP);
}

/* A connection that did not speak the protocol: close it, count it, change nothing. */
static void client_refuse(vde_port *v) {
  v->base.st.drops.bad_request++;
  client_close(v);
}

static void update_data_poll(vde_port *v) {
  vde_client *c = v->client;
  if (!c || !c->ready) return;
  int ev = 0;
  if (!v->base.closing) {
    if (v->base.blocked == 0) ev |= UV_READABLE;
    if (v->base.txq_len) ev |= UV_WRITABLE;
  }
  if (ev == c->data_events) return;
  if (ev)
    uv_poll_start(&c->data_poll, ev, on_data);
  else
    uv_poll_stop(&c->data_poll);
  c->data_events = ev;
}

static uint32_t get_u32(const uint8_t *b) {
  uint32_t x;
  memcpy(&x, b, sizeof(x));
  return x;
}

int ls_vde_check_request(const uint8_t *req, uint32_t n, struct sockaddr_un *addr, char *descr) {
  if (n >= VDE_OFF_MAGIC + 4 && get_u32(req + VDE_OFF_MAGIC) != VDE_MAGIC) return -1;
  if (n >= VDE_OFF_VERSION + 4 && get_u32(req + VDE_OFF_VERSION) != VDE_VERSION) return -1;
  if (n >= VDE_OFF_TYPE + 4) {
    uint32_t type = get_u32(req + VDE_OFF_TYPE) & 0xff;
    if (type != VDE_REQ_NEW_CONTROL && type != VDE_REQ_NEW_PORT0) return -1;
  }
  if (n < VDE_REQ_FIXED) return 0;
  memcpy(addr, req + VDE_OFF_SOCK, sizeof(*addr));
  if (addr->sun_family != AF_UNIX) return -1;
  const char *sp = addr->sun_path;
  if (sp[0] != '\0') {
    if (!memchr(sp, '\0', sizeof(addr->sun_path))) return -1; /* unterminated path */
  } else {
    bool named = false; /* abstract: some byte of the name must be set */
    for (size_t i = 1; i < sizeof(addr->sun_path); i++) named |= sp[i] != '\0';
    if (!named) return -1;
  }
  size_t d = 0;
  for (uint32_t i = VDE_REQ_FIXED; i < n && i < VDE_REQ_MAX && req[i]; i++)
    descr[d++] = req[i] >= 0x20 && req[i] < 0x7f ? (char)req[i] : '?';
  descr[d] = '\0';
  return 1;
}

/* Check what arrived of the request: -1 bad, 0 incomplete so far, 1 complete. */
static int check_request(vde_client *c) {
  return ls_vde_check_request(c->req, c->req_len, &c->addr, c->descr);
}

/* The request is good: make the data socket, connect it to the client's, bind it in
 * DIR and send its address back. 0 or -errno (the connection is then refused). */
static int client_setup(vde_port *v, vde_client *c) {
  ls_port *p = &v->base;
  /* The client names the socket its frames go to. It must be its own: a switch running
   * as root must not be made to send frames to another user's socket or a daemon's. */
  struct ucred cred;
  socklen_t clen = sizeof(cred);
  if (getsockopt(c->ctl_fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0) return -errno;
  uid_t uid = cred.uid;
  if (uid != 0) {
    struct stat st;
    if (c->addr.sun_path[0] == '\0') { /* abstract: no owner to check */
      if (uid != geteuid()) return -EACCES;
    } else if (stat(c->addr.sun_path, &st) < 0) {
      return -errno;
    } else if (!S_ISSOCK(st.st_mode) || st.st_uid != uid) {
      return -EACCES;
    }
  }
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  c->data_fd = fd;
  /* Connect first: from the moment it has a name, only the client can send to it. */
  if (connect(fd, (const struct sockaddr *)&c->addr, sizeof(c->addr)) < 0) return -errno;
  struct sockaddr_un me;
  for (int tries = 0;; tries++) {
    memset(&me, 0, sizeof(me));
    me.sun_family = AF_UNIX;
    int len = snprintf(me.sun_path, sizeof(me.sun_path), "%s/data.%u", v->dir, ++v->seq);
    if (len < 0 || (size_t)len >= sizeof(me.sun_path)) return -ENAMETOOLONG; /* see DIR_MAX */
    if (bind(fd, (const struct sockaddr *)&me, sizeof(me)) == 0) break;
    if (errno != EADDRINUSE || tries == 8) return -errno; /* in use: someone planted it */
  }
  memcpy(c->data_path, me.sun_path, sizeof(c->data_path));
  /* As root, give the data socket to the client's user (as vde_switch does). */
  if (geteuid() == 0 && uid != 0 && chown(me.sun_path, uid, (gid_t)-1) == 0) {
    if (chmod(me.sun_path, v->mode & 0600) < 0) return -errno;
  } else if (chmod(me.sun_path, v->mode & 0666) < 0) {
    return -errno;
  }
  int r = uv_poll_init(&p->rt->loop, &c->data_poll, fd);
  if (r) return r;
  c->data_poll.data = c;
  c->data_poll_init = true;
  c->handles++;
  v->handles++;
  ssize_t w = send(c->ctl_fd, &me, sizeof(me), MSG_NOSIGNAL | MSG_DONTWAIT);
  if (w < 0) return -errno;
  if ((size_t)w != sizeof(me)) return -EIO;
  return 0;
}

static void handshake_read(vde_port *v, vde_client *c) {
  ssize_t r = read(c->ctl_fd, c->req + c->req_len, sizeof(c->req) - c->req_len);
  if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
  if (r == 0 && c->req_len == 0) { /* connected and left: a liveness probe, not a request */
    client_close(v);
    return;
  }
  if (r <= 0) { /* closed (or reset) before a whole request */
    client_refuse(v);
    return;
  }
  c->req_len += (uint32_t)r;
  int ok = check_request(c);
  if (ok < 0) {
    client_refuse(v);
    return;
  }
  if (ok == 0) return; /* the rest may still come; the handshake timer bounds the wait */
  int err = client_setup(v, c);
  if (err) {
    ls_port_error(&v->base, err, LS_REASON_RX);
    client_refuse(v);
    return;
  }
  c->ready = true;
  uv_timer_stop(&v->handshake);
  ls_port_set_link(&v->base, true, LS_REASON_PEER); /* also starts the data poll */
  update_data_poll(v);
}

/* An established client's stream: only its end matters; anything it sends is ignored. */
static void ctl_drain(vde_port *v, vde_client *c) {
  uint8_t buf[512];
  for (int i = 0; i < CTL_READS; i++) {
    ssize_t r = read(c->ctl_fd, buf, sizeof(buf));
    if (r > 0) continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (r < 0 && errno == EINTR) continue;
    client_hangup(v);
    return;
  }
}

static void on_ctl(uv_poll_t *h, int status, int events) {
  vde_client *c = h->data;
  vde_port *v = c->v;
  ls_runtime *rt = v->base.rt;
  (void)events;
  ls_rt_tick(rt);
  rt->stats.wakeups++;
  if (v->client != c) return;
  if (status < 0) {
    if (c->ready)
      client_hangup(v);
    else
      client_refuse(v);
  } else if (c->ready) {
    ctl_drain(v, c);
  } else {
    handshake_read(v, c);
  }
  ls_rt_flush(rt);
}

static void on_handshake_timeout(uv_timer_t *t) {
  vde_port *v = t->data;
  ls_rt_tick(v->base.rt);
  if (v->client && !v->client->ready) client_refuse(v);
  ls_rt_flush(v->base.rt);
}

static void client_new(vde_port *v, int fd) {
  vde_client *c = calloc(1, sizeof(*c));
  if (!c) {
    close(fd);
    ls_port_error(&v->base, -ENOMEM, LS_REASON_RX);
    return;
  }
  c->v = v;
  c->ctl_fd = fd;
  c->data_fd = -1;
  int r = uv_poll_init(&v->base.rt->loop, &c->ctl_poll, fd);
  if (r) {
    close(fd);
    free(c);
    ls_port_error(&v->base, r, LS_REASON_RX);
    return;
  }
  c->ctl_poll.data = c;
  c->handles = 1;
  v->handles++;
  v->client = c;
  uv_poll_start(&c->ctl_poll, UV_READABLE, on_ctl);
  uv_timer_start(&v->handshake, on_handshake_timeout, HANDSHAKE_MS, 0);
}

/* ---- listening ----------------------------------------------------------------------------- */

static void listen_on(vde_port *v, bool on) {
  if (on == v->listening) return;
  if (on)
    uv_poll_start(&v->listen_poll, UV_READABLE, on_listen);
  else
    uv_poll_stop(&v->listen_poll);
  v->listening = on;
}

static void on_retry(uv_timer_t *t) {
  vde_port *v = t->data;
  if (!v->base.closing) listen_on(v, true);
}

static void on_listen(uv_poll_t *h, int status, int events) {
  vde_port *v = h->data;
  ls_port *p = &v->base;
  ls_runtime *rt = p->rt;
  (void)events;
  ls_rt_tick(rt);
  rt->stats.wakeups++;
  if (status < 0) {
    ls_port_error(p, status, LS_REASON_RX);
    listen_on(v, false); /* never spin on a failing listener: try again later */
    uv_timer_start(&v->retry, on_retry, RETRY_MS, 0);
    ls_rt_flush(rt);
    return;
  }
  for (int i = 0; i < ACCEPT_BUDGET; i++) {
    int fd = accept4(v->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      int e = errno;
      if (e == EINTR || e == ECONNABORTED) continue;
      if (e == EAGAIN || e == EWOULDBLOCK) break;
      /* EMFILE, ENFILE, ENOBUFS, ENOMEM: the connection stays queued and the listener
       * stays readable; pause instead of spinning. */
      ls_port_error(p, -e, LS_REASON_RX);
      listen_on(v, false);
      uv_timer_start(&v->retry, on_retry, RETRY_MS, 0);
      break;
    }
    if (v->client) { /* one client per port */
      close(fd);
      p->st.drops.busy++;
      continue;
    }
    client_new(v, fd);
  }
  ls_rt_flush(rt);
}

/* ---- data: receive ------------------------------------------------------------------------- */

/* Did the datagram come from the client's socket? */
static bool from_client(const vde_client *c, const struct sockaddr_un *sa, socklen_t len) {
  size_t base = offsetof(struct sockaddr_un, sun_path);
  if (len <= base) return false; /* unnamed sender */
  if (c->addr.sun_path[0] != '\0')
    return sa->sun_path[0] != '\0' &&
           strncmp(sa->sun_path, c->addr.sun_path, sizeof(sa->sun_path)) == 0;
  size_t n = len - base; /* abstract: the whole name, then nothing but zeroes in ours */
  if (n > sizeof(sa->sun_path) || memcmp(sa->sun_path, c->addr.sun_path, n) != 0) return false;
  for (size_t i = n; i < sizeof(c->addr.sun_path); i++)
    if (c->addr.sun_path[i] != '\0') return false;
  return true;
}

static void data_read(vde_port *v, vde_client *c) {
  ls_port *p = &v->base;
  ls_runtime *rt = p->rt;
  uint8_t cls = p->rx_cls;
  ls_buf **bufs = rt->rx_bufs[cls];
  uint32_t budget = LS_RX_BUDGET;
  while (budget > 0 && v->client == c && !p->closing && p->blocked == 0) {
    unsigned n = budget < LS_BATCH ? budget : LS_BATCH;
    unsigned ready = 0;
    for (; ready < n; ready++) {
      if (!bufs[ready] && !(bufs[ready] = ls_pool_get(&rt->pool, cls))) break;
      bufs[ready]->head = 0; /* scratch buffers are shared between ports */
      rt->rx_iov[ready].iov_base = bufs[ready]->data;
      rt->rx_iov[ready].iov_len = bufs[ready]->cap;
      struct msghdr *m = &rt->rx_msgs[ready].msg_hdr;
      m->msg_name = &rt->rx_addr[ready];
      m->msg_namelen = sizeof(rt->rx_addr[ready]);
      m->msg_iov = &rt->rx_iov[ready];
      m->msg_iovlen = 1;
      m->msg_control = NULL;
      m->msg_controllen = 0;
      m->msg_flags = 0;
    }
    if (ready == 0) break; /* out of memory: leave the frames in the socket */
    int r = recvmmsg(c->data_fd, rt->rx_msgs, ready, MSG_DONTWAIT, NULL);
    if (r <= 0) {
      if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        p->st.drops.rx_error++;
        ls_port_error(p, -errno, LS_REASON_RX);
      }
      break;
    }
    rt->stats.batches++;
    for (int i = 0; i < r; i++) {
      ls_buf *b = bufs[i];
      bufs[i] = NULL;
      b->len = rt->rx_msgs[i].msg_len;
      if (!from_client(c, &rt->rx_addr[i], rt->rx_msgs[i].msg_hdr.msg_namelen)) {
        p->st.drops.bad_peer++;
        ls_pool_put(&rt->pool, b);
        continue;
      }
      ls_switch_input(p->sw, p, b, (rt->rx_msgs[i].msg_hdr.msg_flags & MSG_TRUNC) != 0);
    }
    ls_rt_flush(rt);
    if (ls_port_batch_done(p)) break; /* an output it feeds is congested: wait */
    budget -= (uint32_t)r;
    if ((unsigned)r < ready) break; /* drained */
  }
}

/* ---- data: transmit ------------------------------------------------------------------------ */

static bool is_hangup_errno(int e) {
  return e == ECONNREFUSED || e == ENOTCONN || e == ECONNRESET || e == EPIPE || e == ENOENT ||
         e == EDESTADDRREQ;
}

static void vde_flush(ls_port *p) {
  vde_port *v = V(p);
  ls_runtime *rt = p->rt;
  vde_client *c = v->client;
  if (!c || !c->ready) return;
  while (p->txq_len) {
    unsigned n = p->txq_len < LS_BATCH ? p->txq_len : LS_BATCH;
    for (unsigned i = 0; i < n; i++) {
      ls_buf *b = p->txq[(p->txq_head + i) & p->txq_mask];
      rt->tx_iov[i].iov_base = ls_buf_frame(b);
      rt->tx_iov[i].iov_len = b->len;
      struct msghdr *m = &rt->tx_msgs[i].msg_hdr;
      memset(m, 0, sizeof(*m));
      m->msg_iov = &rt->tx_iov[i];
      m->msg_iovlen = 1;
    }
    int r = sendmmsg(c->data_fd, rt->tx_msgs, n, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (r > 0) {
      ls_port_txq_sent(p, (uint32_t)r);
      continue;
    }
    int e = errno;
    if (e == EINTR) continue;
    if (e == EAGAIN || e == EWOULDBLOCK) break; /* wait for writability */
    if (is_hangup_errno(e)) {
      client_hangup(v); /* its socket is gone: so is the client */
      return;
    }
    /* This frame cannot be sent (EMSGSIZE, ENOBUFS, ...): drop it and go on. */
    ls_port_txq_drop(p, 1, &p->st.drops.tx_error);
    ls_port_error(p, -e, LS_REASON_TX);
  }
  update_data_poll(v);
}

static void on_data(uv_poll_t *h, int status, int events) {
  vde_client *c = h->data;
  vde_port *v = c->v;
  ls_runtime *rt = v->base.rt;
  ls_rt_tick(rt);
  rt->stats.wakeups++;
  if (v->client != c) return;
  if (status < 0) {
    ls_port_error(&v->base, status, LS_REASON_RX);
    client_hangup(v);
    ls_rt_flush(rt);
    return;
  }
  if (events & UV_WRITABLE) vde_flush(&v->base);
  if ((events & UV_READABLE) && v->client == c) data_read(v, c);
  ls_rt_flush(rt);
  update_data_poll(v);
}

/* ---- lifecycle ----------------------------------------------------------------------------- */

static int vde_attach(ls_port *p) {
  vde_port *v = V(p);
  uv_loop_t *loop = &p->rt->loop;
  int r = uv_poll_init(loop, &v->listen_poll, v->listen_fd);
  if (r) return r;
  v->listen_poll.data = v;
  uv_timer_init(loop, &v->handshake);
  v->handshake.data = v;
  uv_timer_init(loop, &v->retry);
  v->retry.data = v;
  v->handles = 3;
  listen_on(v, true);
  return 0;
}

static void on_port_handle_closed(uv_handle_t *h) {
  handle_done(h->data);
}

static void vde_detach(ls_port *p) {
  vde_port *v = V(p);
  client_close(v);
  listen_on(v, false);
  uv_timer_stop(&v->handshake);
  uv_timer_stop(&v->retry);
  if (v->listen_fd >= 0) close(v->listen_fd);
  v->listen_fd = -1;
  remove_files(v);
  uv_close((uv_handle_t *)&v->listen_poll, on_port_handle_closed);
  uv_close((uv_handle_t *)&v->handshake, on_port_handle_closed);
  uv_close((uv_handle_t *)&v->retry, on_port_handle_closed);
}

static void vde_destroy(ls_port *p) {
  vde_port *v = V(p);
  if (v->listen_fd >= 0) close(v->listen_fd);
  v->listen_fd = -1;
  remove_files(v);
  free(v);
}

static void vde_update(ls_port *p) {
  update_data_poll(V(p));
}

static void vde_describe(ls_port *p, ls_port_info *o) {
  vde_port *v = V(p);
  snprintf(o->path, sizeof(o->path), "%s", v->dir);
  vde_client *c = v->client;
  if (c && c->ready) {
    const char *name = c->addr.sun_path;
    size_t at = 0;
    if (name[0] == '\0') { /* abstract: shown as "@name" */
      o->peer[at++] = '@';
      name++;
    }
    size_t n = strnlen(name, sizeof(o->peer) - 1 - at);
    memcpy(o->peer + at, name, n);
    o->peer[at + n] = '\0';
  }
}

static uint64_t vde_backlog(ls_port *p) {
  vde_client *c = V(p)->client;
  return c ? ls_fd_backlog(c->data_fd) : UINT64_MAX;
}

static const ls_port_ops vde_ops = {
    .kind = "vde",
    .attach = vde_attach,
    .flush = vde_flush,
    .update = vde_update,
    .detach = vde_detach,
    .destroy = vde_destroy,
    .describe = vde_describe,
    .backlog = vde_backlog,
};

/* Create or take over the directory, and learn its absolute name. */
static int prepare_dir(vde_port *v, const char *path, char *where, size_t wlen) {
  struct stat st;
  if (lstat(path, &st) < 0) {
    if (errno != ENOENT) {
      snprintf(where, wlen, "path %s", path);
      return -errno;
    }
    if (mkdir(path, 0700) < 0) {
      snprintf(where, wlen, "mkdir %s", path);
      return -errno;
    }
    v->own_dir = true;
  } else if (!S_ISDIR(st.st_mode)) {
    snprintf(where, wlen, "path %s is not a directory", path);
    return -ENOTDIR;
  } else {
    bool stale = false;
    int r = take_over_dir(path, &stale, where, wlen);
    if (r) return r;
    v->own_dir = stale;
  }
  snprintf(v->dir, sizeof(v->dir), "%s", path); /* ours from here: cleaned up on failure */
  char real[PATH_MAX];
  if (!realpath(path, real)) {
    snprintf(where, wlen, "realpath %s", path);
    return -errno;
  }
  size_t len = strlen(real);
  if (len > DIR_MAX) {
    snprintf(where, wlen, "path %s: at most %zu bytes for a VDE directory", real, DIR_MAX);
    return -ENAMETOOLONG;
  }
  memcpy(v->dir, real, len + 1);
  if (chmod(v->dir, v->mode) < 0) {
    snprintf(where, wlen, "chmod %s", v->dir);
    return -errno;
  }
  return 0;
}

ls_port *ls_port_vde_new(ls_runtime *rt, const ls_port_config *cfg, const ls_vde_options *o,
                         int *err, char *where, size_t wlen) {
  vde_port *v = calloc(1, sizeof(*v));
  if (!v) {
    *err = -ENOMEM;
    return NULL;
  }
  v->listen_fd = -1;
  v->mode = o->mode & 07777;
  int r = ls_port_init(&v->base, &vde_ops, rt, cfg);
  if (r) {
    free(v);
    *err = r;
    return NULL;
  }
  if (strlen(o->path) > DIR_MAX) {
    r = -ENAMETOOLONG; /* checked before creating anything; realpath may lengthen it */
    snprintf(where, wlen, "path %s: at most %zu bytes for a VDE directory", o->path, DIR_MAX);
    goto fail;
  }
  r = prepare_dir(v, o->path, where, wlen);
  if (r) goto fail;
  int len = snprintf(v->ctl_path, sizeof(v->ctl_path), "%s/ctl", v->dir);
  if (len < 0 || (size_t)len >= sizeof(v->ctl_path)) { /* cannot happen: see DIR_MAX */
    r = -ENAMETOOLONG;
    snprintf(where, wlen, "path %s", v->dir);
    goto fail;
  }
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  memcpy(sa.sun_path, v->ctl_path, strlen(v->ctl_path));
  v->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (v->listen_fd < 0) {
    r = -errno;
    snprintf(where, wlen, "socket");
    goto fail;
  }
  if (bind(v->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
    r = -errno;
    snprintf(where, wlen, "bind %s", v->ctl_path);
    goto fail;
  }
  v->unlink_ctl = true;
  if (chmod(v->ctl_path, v->mode & 0666) < 0) {
    r = -errno;
    snprintf(where, wlen, "chmod %s", v->ctl_path);
    goto fail;
  }
  if (listen(v->listen_fd, CTL_BACKLOG) < 0) {
    r = -errno;
    snprintf(where, wlen, "listen %s", v->ctl_path);
    goto fail;
  }
  return &v->base;
fail:
  *err = r;
  ls_port_fini(&v->base);
  vde_destroy(&v->base);
  return NULL;
}
