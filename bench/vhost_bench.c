/*
 * vhost_bench.c — forwarding benchmark of the vhost-user port kind without a VM, beside the
 * unix datagram path measured in the same invocation.
 *
 * Owns: a fake virtio-net driver (the guest side and QEMU's front-end side of vhost-user,
 * both played in this process), its generator and sink threads, and the harness that runs
 * them through one luaswitch switch and then runs build/lsbench for the unix path.
 *
 *   generator thread (guest A: TX virtqueue 1) -> vhost-user port a ... port b ->
 *       sink thread (guest B: RX virtqueue 0)
 *
 * The switch is made with the C API (lscore) in this process: a runtime (its own data-plane
 * thread, as in the luaswitch executable), one switch, two vhost-user ports listening on
 * unix sockets. Per run each guest connects as QEMU would: a memfd as guest memory
 * (MAP_SHARED, guest physical address = offset in it), GET/SET_FEATURES (VERSION_1,
 * MRG_RXBUF and EVENT_IDX, as far as the port offers them), REPLY_ACK, SET_MEM_TABLE, then
 * for both rings NUM, BASE, ADDR, KICK, CALL and ENABLE, each with its own eventfds. The
 * sink's guest announces MAC b (a broadcast on its TX ring) and the generator's MAC a, so
 * that the measured frames are unicast after learning (checked: the switch's flooded
 * counter does not move during the run).
 *
 * The generator behaves as a virtio-net driver's transmit path: each TX descriptor owns a
 * buffer holding a zeroed 12-byte virtio-net header and the frame (a -> b, a sequence
 * number stamped per frame), one descriptor per frame; it makes up to --batch descriptors
 * available, publishes the avail index once and kicks only if the device asked for it
 * (avail_event with EVENT_IDX, else VRING_USED_F_NO_NOTIFY); it reclaims used descriptors
 * before each batch. With no descriptor free it does not drop: it asks for a call once
 * three quarters of those in flight are used (used_event, as virtqueue_enable_cb_delayed)
 * and sleeps on the call eventfd. The sink is NAPI: it takes every used RX buffer (checks
 * length, num_buffers and the sequence number), gives the buffers back at once, kicks if
 * asked, and when the ring is empty re-enables calls (used_event = its last used index),
 * looks once more, and sleeps on the call eventfd.
 *
 * A run lasts --seconds; then the sink is given until its count stops moving (300 ms
 * quiet) to drain. Reported per size (medians over --runs): frames/s at the sink (first to
 * last batch), loss (sent - received), and the CPU time of the luaswitch data-plane thread
 * per received frame (/proc/self/task/TID/schedstat before and after, as lsbench reads its
 * subject's threads); also the kicks and calls per thousand frames (eventfd writes each
 * side saw). Pinned by default as lsbench pins: the data-plane thread on CPU 0, the
 * generator and sink on CPU 1 (--unpinned: none of it).
 *
 * The unix path: build/lsbench (next to this executable) is run as a child with
 * `--only luaswitch --sizes ... --runs ... --frames ...` (and --unpinned), its rows parsed,
 * and the ratios vhost-user / unix printed for frames/s and CPU ns per frame. lsbench's
 * luaswitch subject is the luaswitch executable serving two unix ports (bench/switch.lua);
 * its CPU figure covers all its threads, the Lua one being idle.
 *
 * Usage: vhost_bench [--seconds S] [--runs R] [--sizes 64,1500] [--unpinned]
 *                    [--qsize N] [--batch N] [--no-event-idx] [--kick-always]
 *                    [--unix-frames N] [--no-unix] [--each]
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "frame.h"
#include "port.h"
#include "port_vhost.h"
#include "runtime.h"
#include "switch.h"
#include "vhost_proto.h"

#define MAXRUNS 32
#define MAXSIZES 8
#define QSIZE_MAX 1024
#define BUF_SIZE 2048 /* one buffer per descriptor: header + a 1518-byte frame fit */
#define HDR_MAX 12
#define SEQ_OFF 14 /* the sequence number: first payload bytes of the frame */
#define QUIET_LOAD 0.1
#define STALL_MS 1 /* the generator's ring full and nothing used for this long: a stall */
/* guest physical layout, per queue q: desc, avail, used, then the buffers of both queues */
#define RING_AREA 0x8000u
#define DESC_OFF(q) ((uint64_t)(q)*RING_AREA)
#define AVAIL_OFF(q) ((uint64_t)(q)*RING_AREA + 0x4000)
#define USED_OFF(q) ((uint64_t)(q)*RING_AREA + 0x5000)
#define BUFS_OFF 0x10000u
#define GMEM_SIZE (BUFS_OFF + 2u * QSIZE_MAX * BUF_SIZE)

enum { RXQ = 0, TXQ = 1 };

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static _Noreturn void die(const char *what) {
  fprintf(stderr, "vhost_bench: %s: %s\n", what, strerror(errno));
  exit(1);
}

static _Noreturn void fail(const char *what) {
  fprintf(stderr, "vhost_bench: %s\n", what);
  exit(1);
}

static void pin_self(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  sched_setaffinity(0, sizeof(set), &set); /* 0: the calling thread */
}

/* ---- CPU and load, as lsbench measures them ------------------------------------------------ */

static uint64_t thread_cpu_ns(pid_t tid) {
  char p[96];
  snprintf(p, sizeof(p), "/proc/self/task/%d/schedstat", (int)tid);
  FILE *f = fopen(p, "r");
  if (!f) return 0;
  unsigned long long ns = 0;
  if (fscanf(f, "%llu", &ns) != 1) ns = 0;
  fclose(f);
  return ns;
}

static uint64_t machine_busy_ns(void) {
  FILE *f = fopen("/proc/stat", "r");
  if (!f) return 0;
  unsigned long long v[8] = {0};
  int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                 &v[4], &v[5], &v[6], &v[7]);
  fclose(f);
  if (n < 8) return 0;
  uint64_t ticks = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
  return ticks * (1000000000ULL / (uint64_t)sysconf(_SC_CLK_TCK));
}

static uint64_t self_cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* ---- the fake guest and front-end ------------------------------------------------------------ */

typedef struct vring {
  uint32_t num;
  ls_vring_desc *desc;
  ls_vring_avail *avail;
  ls_vring_used *used;
  uint64_t bufs; /* guest physical address of descriptor 0's buffer (descriptor i: + i*BUF) */
  uint16_t avail_idx, last_used;
  uint16_t free_ids[QSIZE_MAX];
  uint32_t nfree;
  int kick, call;
} vring;

typedef struct guest {
  const char *path;
  int sock;
  int memfd;
  uint8_t *mem;
  uint64_t features;
  bool event_idx, reply_ack;
  uint32_t hdr_len;
  vring q[2];
} guest;

static uint16_t *used_event(vring *r) {
  return &r->avail->ring[r->num];
}
static uint16_t *avail_event(vring *r) {
  return (uint16_t *)(void *)&r->used->ring[r->num];
}
static uint8_t *buf_of(guest *g, vring *r, uint32_t id) {
  return g->mem + r->bufs + (uint64_t)id * BUF_SIZE;
}

static void fe_send(guest *g, uint32_t req, uint32_t flags, const void *payload, uint32_t size,
                    int fd) {
  uint8_t b[LS_VHOST_HDR_SIZE + 512];
  uint32_t fl = LS_VHOST_VERSION | flags;
  memcpy(b, &req, 4);
  memcpy(b + 4, &fl, 4);
  memcpy(b + 8, &size, 4);
  if (size) memcpy(b + LS_VHOST_HDR_SIZE, payload, size);
  struct iovec iov = {b, LS_VHOST_HDR_SIZE + size};
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } cm;
  struct msghdr mh;
  memset(&mh, 0, sizeof(mh));
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  if (fd >= 0) {
    mh.msg_control = cm.buf;
    mh.msg_controllen = CMSG_SPACE(sizeof(int));
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(int));
  }
  if (sendmsg(g->sock, &mh, MSG_NOSIGNAL) != (ssize_t)iov.iov_len) die("vhost-user send");
}

/* The reply to req, a u64 (features, or REPLY_ACK's status). */
static uint64_t fe_reply_u64(guest *g, uint32_t req) {
  struct pollfd p = {g->sock, POLLIN, 0};
  if (poll(&p, 1, 5000) <= 0) fail("no reply from the vhost-user port");
  uint8_t b[LS_VHOST_HDR_SIZE + 8];
  ssize_t n = recv(g->sock, b, sizeof(b), MSG_WAITALL);
  uint32_t r, sz;
  memcpy(&r, b, 4);
  memcpy(&sz, b + 8, 4);
  if (n != (ssize_t)sizeof(b) || r != req || sz != 8) fail("unexpected reply from the port");
  uint64_t x;
  memcpy(&x, b + LS_VHOST_HDR_SIZE, 8);
  return x;
}

static void fe_ring(guest *g, int qi) {
  vring *r = &g->q[qi];
  uint32_t st[2] = {(uint32_t)qi, r->num};
  fe_send(g, LS_VHOST_SET_VRING_NUM, 0, st, 8, -1);
  st[1] = 0;
  fe_send(g, LS_VHOST_SET_VRING_BASE, 0, st, 8, -1);
  uint8_t a[40];
  uint32_t idx[2] = {(uint32_t)qi, 0};
  uint64_t base = (uint64_t)(uintptr_t)g->mem; /* front-end addresses: our mapping */
  uint64_t addrs[4] = {base + DESC_OFF(qi), base + USED_OFF(qi), base + AVAIL_OFF(qi), 0};
  memcpy(a, idx, 8);
  memcpy(a + 8, addrs, 32);
  fe_send(g, LS_VHOST_SET_VRING_ADDR, 0, a, 40, -1);
  uint64_t k = (uint64_t)qi;
  fe_send(g, LS_VHOST_SET_VRING_KICK, 0, &k, 8, r->kick);
  fe_send(g, LS_VHOST_SET_VRING_CALL, 0, &k, 8, r->call);
  st[1] = 1;
  fe_send(g, LS_VHOST_SET_VRING_ENABLE, 0, st, 8, -1);
}

/* Guest memory, rings and eventfds, connected and started as QEMU starts a device. */
static void guest_start(guest *g, const char *path, uint32_t qsize, bool want_event_idx) {
  memset(g, 0, sizeof(*g));
  g->path = path;
  g->memfd = memfd_create("vhost-bench-guest", MFD_CLOEXEC);
  if (g->memfd < 0) die("memfd_create");
  if (ftruncate(g->memfd, GMEM_SIZE) < 0) die("ftruncate");
  g->mem = mmap(NULL, GMEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, g->memfd, 0);
  if (g->mem == MAP_FAILED) die("mmap");
  for (int qi = 0; qi < 2; qi++) {
    vring *r = &g->q[qi];
    r->num = qsize;
    r->desc = (ls_vring_desc *)(void *)(g->mem + DESC_OFF(qi));
    r->avail = (ls_vring_avail *)(void *)(g->mem + AVAIL_OFF(qi));
    r->used = (ls_vring_used *)(void *)(g->mem + USED_OFF(qi));
    r->bufs = BUFS_OFF + (uint64_t)qi * QSIZE_MAX * BUF_SIZE;
    r->kick = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    r->call = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (r->kick < 0 || r->call < 0) die("eventfd");
    for (uint32_t i = 0; i < qsize; i++) r->free_ids[i] = (uint16_t)(qsize - 1 - i);
    r->nfree = qsize;
  }
  g->sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof(sa));
  sa.sun_family = AF_UNIX;
  snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
  if (connect(g->sock, (struct sockaddr *)&sa, sizeof(sa)) < 0) die(path);

  fe_send(g, LS_VHOST_GET_FEATURES, 0, NULL, 0, -1);
  uint64_t offered = fe_reply_u64(g, LS_VHOST_GET_FEATURES);
  uint64_t want = LS_BIT(LS_VIRTIO_F_VERSION_1) | LS_BIT(LS_VIRTIO_NET_F_MRG_RXBUF) |
                  LS_BIT(LS_VHOST_USER_F_PROTOCOL_FEATURES) |
                  (want_event_idx ? LS_BIT(LS_VIRTIO_RING_F_EVENT_IDX) : 0);
  g->features = offered & want;
  if (g->features & LS_BIT(LS_VHOST_USER_F_PROTOCOL_FEATURES)) {
    fe_send(g, LS_VHOST_GET_PROTOCOL_FEATURES, 0, NULL, 0, -1);
    uint64_t pf =
        fe_reply_u64(g, LS_VHOST_GET_PROTOCOL_FEATURES) & LS_BIT(LS_VHOST_PROTO_F_REPLY_ACK);
    fe_send(g, LS_VHOST_SET_PROTOCOL_FEATURES, 0, &pf, 8, -1);
    g->reply_ack = pf != 0;
  }
  fe_send(g, LS_VHOST_SET_OWNER, 0, NULL, 0, -1);
  fe_send(g, LS_VHOST_SET_FEATURES, 0, &g->features, 8, -1);
  g->event_idx = (g->features & LS_BIT(LS_VIRTIO_RING_F_EVENT_IDX)) != 0;
  g->hdr_len = ls_vhost_net_hdr_len(g->features);
  uint8_t mt[8 + 32];
  uint32_t n[2] = {1, 0};
  ls_vhost_region_msg reg = {0, GMEM_SIZE, (uint64_t)(uintptr_t)g->mem, 0};
  memcpy(mt, n, 8);
  memcpy(mt + 8, &reg, 32);
  fe_send(g, LS_VHOST_SET_MEM_TABLE, g->reply_ack ? LS_VHOST_F_NEED_REPLY : 0, mt, sizeof(mt),
          g->memfd);
  if (g->reply_ack && fe_reply_u64(g, LS_VHOST_SET_MEM_TABLE) != 0)
    fail("the port refused the memory table");
  fe_ring(g, RXQ);
  fe_ring(g, TXQ);
}

static void guest_stop(guest *g) {
  close(g->sock);
  for (int qi = 0; qi < 2; qi++) {
    close(g->q[qi].kick);
    close(g->q[qi].call);
  }
  munmap(g->mem, GMEM_SIZE);
  close(g->memfd);
}

/* ---- the driver's ring operations ---------------------------------------------------------- */

static void vr_post(vring *r, uint16_t id) {
  r->avail->ring[r->avail_idx & (r->num - 1)] = id;
  r->avail_idx++;
}

/* Publish what vr_post added since old and kick if the device asked for it (always: every
 * time, ignoring notification suppression); 1 if kicked. */
static int vr_publish(guest *g, vring *r, uint16_t old, bool always) {
  if (r->avail_idx == old) return 0;
  __atomic_store_n(&r->avail->idx, r->avail_idx, __ATOMIC_RELEASE);
  ls_vring_mb();
  bool need =
      always ? true
      : g->event_idx
          ? ls_vring_need_event(__atomic_load_n(avail_event(r), __ATOMIC_RELAXED), r->avail_idx,
                                old)
          : !(__atomic_load_n(&r->used->flags, __ATOMIC_RELAXED) & LS_VRING_USED_F_NO_NOTIFY);
  if (!need) return 0;
  uint64_t one = 1;
  if (write(r->kick, &one, 8) != 8) die("kick");
  return 1;
}

static uint16_t vr_used_idx(vring *r) {
  return __atomic_load_n(&r->used->idx, __ATOMIC_ACQUIRE);
}

/* Interrupts (calls) on: once the device has used entries up to index at (exclusive of the
 * ones before), with EVENT_IDX; any, without. Then look again; true if something is there
 * already. */
static bool vr_enable_cb(guest *g, vring *r, uint16_t at) {
  if (g->event_idx)
    __atomic_store_n(used_event(r), at, __ATOMIC_RELAXED);
  else
    __atomic_store_n(&r->avail->flags, 0, __ATOMIC_RELAXED);
  ls_vring_mb();
  return vr_used_idx(r) != r->last_used;
}

static void vr_disable_cb(guest *g, vring *r) {
  if (!g->event_idx)
    __atomic_store_n(&r->avail->flags, LS_VRING_AVAIL_F_NO_INTERRUPT, __ATOMIC_RELAXED);
}

/* Sleep on the call eventfd (up to ms); returns the calls read (0 on timeout). */
static uint64_t vr_wait_call(vring *r, int ms) {
  struct pollfd p = {r->call, POLLIN, 0};
  if (poll(&p, 1, ms) <= 0) return 0;
  uint64_t n = 0;
  if (read(r->call, &n, 8) != 8) n = 0;
  return n;
}

/* A call that comes within 5 ms more (the device signals after publishing): counted in
 * *calls; false if none came. */
static bool late_call(vring *r, uint64_t *calls) {
  uint64_t c = vr_wait_call(r, 5);
  *calls += c;
  return c != 0;
}

static uint64_t vr_take_calls(vring *r) {
  uint64_t n = 0;
  if (read(r->call, &n, 8) != 8) n = 0;
  return n;
}

/* ---- generator and sink ------------------------------------------------------------------- */

typedef struct gen_job {
  guest *g;
  size_t size; /* frame bytes */
  uint32_t batch;
  uint64_t deadline;
  bool pin;
  pthread_t th;
  /* results */
  bool kick_always;
  uint64_t sent, kicks, calls, waits, stalls, late, missed_calls;
} gen_job;

typedef struct sink_job {
  guest *g;
  size_t size;
  bool pin;
  pthread_t th;
  _Atomic bool stop;
  _Atomic uint64_t frames;
  /* results (valid after join) */
  uint64_t first, last, kicks, calls, waits, missed_calls, bad_len, merged, out_of_order;
} sink_job;

static void put_frame(uint8_t *f, size_t size, int dst, int src) {
  memset(f, 0, size);
  const uint8_t d[6] = {2, 0, 0, 0, 0, (uint8_t)dst}, s[6] = {2, 0, 0, 0, 0, (uint8_t)src};
  memcpy(f, d, 6);
  memcpy(f + 6, s, 6);
  f[12] = 0x88;
  f[13] = 0xb5;
}

/* TX descriptors of guest g, each with its buffer: header + frame of size bytes a -> b. */
static void tx_prepare(guest *g, size_t size) {
  vring *r = &g->q[TXQ];
  for (uint32_t i = 0; i < r->num; i++) {
    uint8_t *b = buf_of(g, r, i);
    memset(b, 0, g->hdr_len);
    put_frame(b + g->hdr_len, size, 2, 1);
    r->desc[i] =
        (ls_vring_desc){r->bufs + (uint64_t)i * BUF_SIZE, (uint32_t)(g->hdr_len + size), 0, 0};
  }
}

/* Reclaim used TX descriptors into the free list; returns how many. */
static uint32_t tx_reclaim(vring *r) {
  uint16_t u = vr_used_idx(r);
  uint32_t n = 0;
  while (r->last_used != u) {
    ls_vring_used_elem *e = &r->used->ring[r->last_used & (r->num - 1)];
    r->free_ids[r->nfree++] = (uint16_t)e->id;
    r->last_used++;
    n++;
  }
  return n;
}

static void *gen_main(void *arg) {
  gen_job *j = arg;
  guest *g = j->g;
  vring *r = &g->q[TXQ];
  if (j->pin) pin_self(1);
  vr_disable_cb(g, r);
  uint64_t seq = 0;
  while (now_ns() < j->deadline) {
    tx_reclaim(r);
    if (r->nfree == 0) {
      /* ring full: wait for the device, as a driver with its queue stopped */
      uint16_t inflight = (uint16_t)(r->avail_idx - r->last_used);
      j->waits++;
      if (!vr_enable_cb(g, r, (uint16_t)(r->last_used + inflight * 3 / 4))) {
        uint64_t c = vr_wait_call(r, STALL_MS);
        j->calls += c;
        if (!c && ls_vring_need_event(*used_event(r), vr_used_idx(r), r->last_used) &&
            !late_call(r, &j->calls)) {
          j->missed_calls++; /* the device used descriptors past used_event and did not call */
        } else if (!c) {
          /* nothing used for STALL_MS with the ring full. If the device's last request for
           * a kick (avail_event) lies behind what it used, it is not waiting for one: it
           * forgot our ring (a lost wake-up, counted as a stall); else it is only late
           * (descheduled). Either way a watchdog's kick, as a driver's TX timeout would. */
          uint16_t ae = __atomic_load_n(avail_event(r), __ATOMIC_RELAXED);
          bool lost = g->event_idx && (uint16_t)(r->avail_idx - ae) > inflight;
          if (lost)
            j->stalls++;
          else
            j->late++;
          uint64_t one = 1;
          if (write(r->kick, &one, 8) != 8) die("kick");
        }
      }
      vr_disable_cb(g, r);
      continue;
    }
    uint32_t n = r->nfree < j->batch ? r->nfree : j->batch;
    uint16_t old = r->avail_idx;
    for (uint32_t i = 0; i < n; i++) {
      uint16_t id = r->free_ids[--r->nfree];
      uint64_t s = seq++;
      memcpy(buf_of(g, r, id) + g->hdr_len + SEQ_OFF, &s, 8);
      vr_post(r, id);
    }
    j->kicks += (uint64_t)vr_publish(g, r, old, j->kick_always);
  }
  j->sent = seq;
  return NULL;
}

/* RX buffers: every descriptor of the ring made available, device-writable. */
static void rx_prepare(guest *g) {
  vring *r = &g->q[RXQ];
  uint16_t old = r->avail_idx;
  for (uint32_t i = 0; i < r->num; i++) {
    r->desc[i] =
        (ls_vring_desc){r->bufs + (uint64_t)i * BUF_SIZE, BUF_SIZE, LS_VRING_DESC_F_WRITE, 0};
    vr_post(r, (uint16_t)i);
  }
  r->nfree = 0;
  vr_publish(g, r, old, false);
}

static void *sink_main(void *arg) {
  sink_job *j = arg;
  guest *g = j->g;
  vring *r = &g->q[RXQ];
  if (j->pin) pin_self(1);
  vr_disable_cb(g, r);
  uint64_t frames = 0, expect = 0;
  uint32_t want = (uint32_t)(g->hdr_len + j->size);
  while (!j->stop) {
    uint16_t u = vr_used_idx(r);
    if (u == r->last_used) {
      j->waits++;
      if (!vr_enable_cb(g, r, r->last_used)) {
        uint64_t c = vr_wait_call(r, 10);
        j->calls += c;
        if (!c && vr_used_idx(r) != r->last_used && !late_call(r, &j->calls))
          j->missed_calls++; /* used, and no call within 5 ms more */
      }
      vr_disable_cb(g, r);
      continue;
    }
    uint16_t old = r->avail_idx;
    while (r->last_used != u) {
      ls_vring_used_elem *e = &r->used->ring[r->last_used & (r->num - 1)];
      uint32_t id = e->id, len = e->len;
      r->last_used++;
      uint8_t *b = buf_of(g, r, id);
      if (len != want) j->bad_len++;
      if (g->hdr_len == 12 && (b[10] | b[11] << 8) != 1) j->merged++; /* never: 2 KiB buffers */
      uint64_t s;
      memcpy(&s, b + g->hdr_len + SEQ_OFF, 8);
      if (s != expect) j->out_of_order++;
      expect = s + 1;
      frames++;
      vr_post(r, (uint16_t)id);
    }
    uint64_t t = now_ns();
    if (!j->first) j->first = t;
    j->last = t;
    j->frames = frames;
    j->kicks += (uint64_t)vr_publish(g, r, old, false);
  }
  j->calls += vr_take_calls(r);
  return NULL;
}

/* ---- the switch ----------------------------------------------------------------------------- */

static int cmd_dp_thread(ls_runtime *rt, ls_cmd *cmd) {
  (void)rt;
  int cpu = *(int *)cmd->arg;
  if (cpu >= 0) pin_self(cpu);
  return (int)syscall(SYS_gettid);
}

typedef struct bench {
  ls_runtime *rt;
  ls_switch *sw;
  ls_port *pa, *pb;
  char dir[64], path_a[128], path_b[128];
  pid_t dp_tid;
} bench;

static void bench_open(bench *b, bool pinned) {
  memset(b, 0, sizeof(*b));
  snprintf(b->dir, sizeof(b->dir), "/tmp/vhost_bench.XXXXXX");
  if (!mkdtemp(b->dir)) die("mkdtemp");
  snprintf(b->path_a, sizeof(b->path_a), "%s/a.sock", b->dir);
  snprintf(b->path_b, sizeof(b->path_b), "%s/b.sock", b->dir);
  b->rt = ls_runtime_new(0);
  if (!b->rt || ls_runtime_start(b->rt) != 0) fail("cannot start the runtime");
  int cpu = pinned ? 0 : -1;
  b->dp_tid = ls_runtime_call(b->rt, cmd_dp_thread, &cpu);
  ls_switch_config sc;
  memset(&sc, 0, sizeof(sc));
  snprintf(sc.name, sizeof(sc.name), "bench");
  sc.aging = LS_AGING_DEFAULT;
  sc.max_macs = LS_MAX_MACS_DEFAULT;
  sc.vlan_tpid = LS_ETH_P_8021Q;
  int err = 0;
  b->sw = ls_switch_new(b->rt, &sc, &err);
  if (!b->sw || ls_switch_attach(b->sw) != 0) fail("cannot make the switch");
  ls_port_config pc;
  ls_port_config_defaults(&pc);
  char where[128];
  for (int i = 0; i < 2; i++) {
    snprintf(pc.name, sizeof(pc.name), "%s", i ? "b" : "a");
    ls_vhost_options o = {.path = i ? b->path_b : b->path_a, .client = false};
    ls_port *p = ls_port_vhost_new(b->rt, &pc, &o, &err, where, sizeof(where));
    if (!p) {
      errno = -err;
      die(where);
    }
    if (ls_port_add(b->sw, p) != 0) fail("cannot add a vhost-user port");
    if (i)
      b->pb = p;
    else
      b->pa = p;
  }
}

static void bench_close(bench *b) {
  ls_runtime_free(b->rt);
  rmdir(b->dir);
}

static bool link_up(ls_port *p) {
  ls_port_info in;
  return ls_port_info_get(p, &in) == 0 && in.link_up;
}

static void wait_link(ls_port *p, bool up) {
  uint64_t deadline = now_ns() + 5000000000ULL;
  while (link_up(p) != up) {
    if (now_ns() > deadline) fail(up ? "a vhost-user port never came up" : "a port stayed up");
    usleep(1000);
  }
}

/* One frame of 60 bytes, broadcast from 02:..:src, on guest g's TX ring (descriptor 0, the
 * TX ring being idle); waits until the switch has taken it. */
static void announce(guest *g, int src) {
  vring *r = &g->q[TXQ];
  uint8_t *b = buf_of(g, r, 0);
  memset(b, 0, g->hdr_len);
  put_frame(b + g->hdr_len, 60, 0xff, src);
  memset(b + g->hdr_len, 0xff, 6);
  r->desc[0] = (ls_vring_desc){r->bufs, g->hdr_len + 60, 0, 0};
  uint16_t old = r->avail_idx;
  vr_post(r, 0);
  vr_publish(g, r, old, false);
  uint64_t deadline = now_ns() + 5000000000ULL;
  while (vr_used_idx(r) != r->avail_idx) {
    if (now_ns() > deadline) fail("the switch never took a frame from a vhost-user guest");
    usleep(1000);
  }
  r->last_used = r->avail_idx;
}

/* The RX ring of g received n frames by now (or the deadline passed): give the buffers
 * back. */
static bool rx_expect(guest *g, uint16_t n) {
  vring *r = &g->q[RXQ];
  uint64_t deadline = now_ns() + 2000000000ULL;
  while ((uint16_t)(vr_used_idx(r) - r->last_used) < n) {
    if (now_ns() > deadline) return false;
    usleep(1000);
  }
  uint16_t u = vr_used_idx(r), old = r->avail_idx;
  while (r->last_used != u) {
    vr_post(r, (uint16_t)r->used->ring[r->last_used & (r->num - 1)].id);
    r->last_used++;
  }
  vr_publish(g, r, old, false);
  return true;
}

typedef struct vresult {
  double rate, loss, cpu_ns, kicks_k, calls_k, other;
  uint64_t sent, received, stalls, missed;
} vresult;

typedef struct options {
  double seconds;
  int runs;
  bool pinned, each, event_idx, kick_always;
  uint32_t qsize, batch;
} options;

static void port_drops(ls_port *p, uint64_t *full, uint64_t *other) {
  ls_port_stats st;
  ls_port_stats_get(p, &st);
  *full = st.drops.tx_full;
  *other = st.drops.tx_error + st.drops.tx_down + st.drops.rx_error + st.drops.runt +
           st.drops.oversize + st.drops.no_dest;
}

static int vhost_run(bench *b, const options *o, size_t size, vresult *out) {
  guest ga, gb;
  guest_start(&ga, b->path_a, o->qsize, o->event_idx);
  guest_start(&gb, b->path_b, o->qsize, o->event_idx);
  rx_prepare(&ga);
  rx_prepare(&gb);
  wait_link(b->pa, true);
  wait_link(b->pb, true);
  /* learning: b announces itself (flooded to a), then a (flooded to b: the path works) */
  announce(&gb, 2);
  announce(&ga, 1);
  if (!rx_expect(&gb, 1) || !rx_expect(&ga, 1)) fail("the learning broadcasts did not arrive");
  tx_prepare(&ga, size);
  ls_switch_snapshot s0, s1;
  ls_switch_snapshot_get(b->sw, &s0);
  uint64_t full0, drop0, full1, drop1;
  port_drops(b->pb, &full0, &drop0);

  sink_job kj = {.g = &gb, .size = size, .pin = o->pinned};
  gen_job gj = {
      .g = &ga, .size = size, .batch = o->batch, .pin = o->pinned, .kick_always = o->kick_always};
  uint64_t t0 = now_ns(), busy0 = machine_busy_ns(), self0 = self_cpu_ns();
  uint64_t cpu0 = thread_cpu_ns(b->dp_tid);
  gj.deadline = t0 + (uint64_t)(o->seconds * 1e9);
  if (pthread_create(&kj.th, NULL, sink_main, &kj) != 0) fail("pthread_create");
  if (pthread_create(&gj.th, NULL, gen_main, &gj) != 0) fail("pthread_create");
  pthread_join(gj.th, NULL);
  uint64_t seen = 0, quiet = now_ns();
  while (kj.frames < gj.sent && now_ns() - quiet < 300000000ULL) {
    uint64_t p = kj.frames;
    if (p != seen) seen = p, quiet = now_ns();
    usleep(1000);
  }
  uint64_t cpu1 = thread_cpu_ns(b->dp_tid);
  uint64_t t1 = now_ns(), busy1 = machine_busy_ns(), self1 = self_cpu_ns();
  kj.stop = true;
  pthread_join(kj.th, NULL);
  ls_switch_snapshot_get(b->sw, &s1);
  port_drops(b->pb, &full1, &drop1);

  uint64_t got = kj.frames;
  double others = (double)(busy1 - busy0) - (double)(self1 - self0);
  out->other = others > 0 ? others / (double)(t1 - t0) : 0;
  out->sent = gj.sent;
  out->received = got;
  out->loss = gj.sent ? 1.0 - (double)got / (double)gj.sent : 1;
  out->rate = kj.last > kj.first ? (double)got * 1e9 / (double)(kj.last - kj.first) : 0;
  out->cpu_ns = got ? (double)(cpu1 - cpu0) / (double)got : 0;
  out->kicks_k = got ? 1000.0 * (double)(gj.kicks + kj.kicks) / (double)got : 0;
  out->calls_k = got ? 1000.0 * (double)(gj.calls + kj.calls) / (double)got : 0;
  out->stalls = gj.stalls;
  out->missed = gj.missed_calls + kj.missed_calls;
  uint64_t flooded = s1.st.flooded - s0.st.flooded;
  if (o->each)
    printf("#%-4zu vhost-user sent %llu received %llu: generator kicks %llu, waits %llu, calls "
           "%llu, stalls %llu (late %llu), missed calls %llu; sink kicks %llu, waits %llu, calls "
           "%llu, missed calls %llu; other load %.2f CPU\n",
           size, (unsigned long long)gj.sent, (unsigned long long)got, (unsigned long long)gj.kicks,
           (unsigned long long)gj.waits, (unsigned long long)gj.calls,
           (unsigned long long)gj.stalls, (unsigned long long)gj.late,
           (unsigned long long)gj.missed_calls, (unsigned long long)kj.kicks,
           (unsigned long long)kj.waits, (unsigned long long)kj.calls,
           (unsigned long long)kj.missed_calls, out->other);
  int rc = 0;
  if (kj.bad_len || kj.merged || kj.out_of_order || flooded) {
    fprintf(stderr,
            "vhost_bench: %zu: %llu frames of the wrong length, %llu merged, %llu out of order, "
            "%llu flooded\n",
            size, (unsigned long long)kj.bad_len, (unsigned long long)kj.merged,
            (unsigned long long)kj.out_of_order, (unsigned long long)flooded);
    rc = -1;
  }
  if (got < gj.sent)
    fprintf(stderr,
            "vhost_bench: %zu: %llu frames lost; port b dropped %llu at its queue's bound, "
            "%llu otherwise\n",
            size, (unsigned long long)(gj.sent - got), (unsigned long long)(full1 - full0),
            (unsigned long long)(drop1 - drop0));
  guest_stop(&ga);
  guest_stop(&gb);
  wait_link(b->pa, false);
  wait_link(b->pb, false);
  return rc;
}

/* ---- statistics ------------------------------------------------------------------------------ */

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
  if (n <= 0) return 0;
  qsort(v, (size_t)n, sizeof(*v), cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ---- the unix path: build/lsbench as a child ------------------------------------------------- */

typedef struct urow {
  size_t size;
  double rate, loss, cpu_ns;
  bool have;
} urow;

/* Runs lsbench, echoes its output, and keeps its luaswitch (and bare) rows. */
static int run_lsbench(const char *self_dir, const options *o, const char *sizes, uint64_t frames,
                       urow *lux, urow *bare, int nsizes, size_t *size_list) {
  char bin[4200], runs[16], nfr[32];
  snprintf(bin, sizeof(bin), "%s/lsbench", self_dir);
  snprintf(runs, sizeof(runs), "%d", o->runs);
  snprintf(nfr, sizeof(nfr), "%llu", (unsigned long long)frames);
  char *argv[16];
  int ac = 0;
  argv[ac++] = bin;
  argv[ac++] = "--only";
  argv[ac++] = "luaswitch";
  argv[ac++] = "--sizes";
  argv[ac++] = (char *)sizes;
  argv[ac++] = "--runs";
  argv[ac++] = runs;
  argv[ac++] = "--frames";
  argv[ac++] = nfr;
  if (!o->pinned) argv[ac++] = "--unpinned";
  argv[ac] = NULL;
  printf("unix path: %s", bin);
  for (int i = 1; i < ac; i++) printf(" %s", argv[i]);
  printf("\n");
  fflush(stdout);
  int fds[2];
  if (pipe(fds) < 0) die("pipe");
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    /* every CPU again: lsbench pins (or not) for itself */
    cpu_set_t all;
    CPU_ZERO(&all);
    for (long c = 0; c < sysconf(_SC_NPROCESSORS_ONLN) && c < CPU_SETSIZE; c++) CPU_SET(c, &all);
    sched_setaffinity(0, sizeof(all), &all);
    dup2(fds[1], 1);
    close(fds[0]);
    close(fds[1]);
    execv(bin, argv);
    _exit(127);
  }
  close(fds[1]);
  FILE *f = fdopen(fds[0], "r");
  char line[512];
  while (f && fgets(line, sizeof(line), f)) {
    printf("  %s", line);
    fflush(stdout);
    size_t sz;
    char name[32];
    double rate, loss, cpu;
    if (sscanf(line, "%zu %31s %lf %lf%% %lf", &sz, name, &rate, &loss, &cpu) != 5) continue;
    for (int i = 0; i < nsizes; i++) {
      if (size_list[i] != sz) continue;
      urow *u = !strcmp(name, "luaswitch") ? &lux[i] : !strcmp(name, "bare") ? &bare[i] : NULL;
      if (u) *u = (urow){sz, rate, loss / 100, cpu, true};
    }
  }
  if (f) fclose(f);
  int st;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

/* ---- main ------------------------------------------------------------------------------------ */

static void usage(void) {
  fprintf(stderr,
          "usage: vhost_bench [--seconds S] [--runs R] [--sizes 64,1500] [--unpinned]\n"
          "                   [--qsize N] [--batch N] [--no-event-idx] [--kick-always]\n"
          "                   [--unix-frames N] [--no-unix] [--each]\n"
          "  vhost-user: R runs of S seconds per size (default 3 of 1 s), ring size N (256),\n"
          "  the generator posting up to --batch frames per kick (64); the unix path:\n"
          "  build/lsbench --only luaswitch with the same sizes and runs, --unix-frames per run\n"
          "  (default 250000)\n");
}

int main(int argc, char **argv) {
  options o = {
      .seconds = 1.0, .runs = 3, .pinned = true, .event_idx = true, .qsize = 256, .batch = 64};
  bool unix_path = true;
  uint64_t unix_frames = 250000;
  char sizes_arg[128] = "64,1500";
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
      o.seconds = atof(argv[++i]);
    else if (!strcmp(argv[i], "--runs") && i + 1 < argc)
      o.runs = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--sizes") && i + 1 < argc)
      snprintf(sizes_arg, sizeof(sizes_arg), "%s", argv[++i]);
    else if (!strcmp(argv[i], "--unpinned"))
      o.pinned = false;
    else if (!strcmp(argv[i], "--qsize") && i + 1 < argc)
      o.qsize = (uint32_t)atoi(argv[++i]);
    else if (!strcmp(argv[i], "--batch") && i + 1 < argc)
      o.batch = (uint32_t)atoi(argv[++i]);
    else if (!strcmp(argv[i], "--no-event-idx"))
      o.event_idx = false;
    else if (!strcmp(argv[i], "--kick-always"))
      o.kick_always = true;
    else if (!strcmp(argv[i], "--unix-frames") && i + 1 < argc)
      unix_frames = strtoull(argv[++i], NULL, 10);
    else if (!strcmp(argv[i], "--no-unix"))
      unix_path = false;
    else if (!strcmp(argv[i], "--each"))
      o.each = true;
    else {
      usage();
      return 2;
    }
  }
  if (o.runs < 1 || o.runs > MAXRUNS || o.seconds <= 0 || o.seconds > 600 || o.qsize < 2 ||
      o.qsize > QSIZE_MAX || (o.qsize & (o.qsize - 1)) || o.batch < 1 || unix_frames == 0) {
    usage();
    return 2;
  }
  size_t sizes[MAXSIZES];
  int nsizes = 0;
  char tmp[128];
  snprintf(tmp, sizeof(tmp), "%s", sizes_arg);
  char *save = NULL;
  for (char *t = strtok_r(tmp, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    int s = atoi(t);
    if (s < 60 || s > 1514 || nsizes == MAXSIZES) {
      fprintf(stderr, "vhost_bench: frame size %s out of range (60..1514), or too many\n", t);
      return 2;
    }
    sizes[nsizes++] = (size_t)s;
  }
  if (o.pinned && sysconf(_SC_NPROCESSORS_ONLN) < 2) o.pinned = false;
  signal(SIGPIPE, SIG_IGN);
  char self_dir[4096] = ".";
  ssize_t sl = readlink("/proc/self/exe", self_dir, sizeof(self_dir) - 1);
  if (sl > 0) {
    self_dir[sl] = '\0';
    char *slash = strrchr(self_dir, '/');
    if (slash) *slash = '\0';
  }

  /* the control thread and everything it starts on CPU 1; the data-plane thread moves to 0 */
  if (o.pinned) pin_self(1);
  bench b;
  bench_open(&b, o.pinned);
  printf("vhost_bench: vhost-user, %d runs of %.1f s per size, ring %u, batch %u, %s%s%s\n", o.runs,
         o.seconds, o.qsize, o.batch,
         o.pinned ? "data-plane thread pinned to CPU 0, generator and sink to CPU 1" : "unpinned",
         o.event_idx ? "" : ", no EVENT_IDX", o.kick_always ? ", kicking every batch" : "");
  printf("%-5s %-11s %14s %8s %12s %9s %9s %7s\n", "size", "subject", "frames/s", "lost",
         "CPU ns/frame", "kicks/1k", "calls/1k", "stalls");
  fflush(stdout);
  double vrate[MAXSIZES], vcpu[MAXSIZES];
  uint64_t vlost[MAXSIZES], vsent[MAXSIZES], vstalls = 0, vmissed = 0;
  double other[MAXSIZES * MAXRUNS];
  int nother = 0, bad = 0;
  for (int si = 0; si < nsizes; si++) {
    double rate[MAXRUNS], cpu[MAXRUNS], kicks[MAXRUNS], calls[MAXRUNS];
    uint64_t lost = 0, sent = 0, stalls = 0, missed = 0;
    for (int r = 0; r < o.runs; r++) {
      vresult v;
      if (vhost_run(&b, &o, sizes[si], &v) != 0) bad++;
      rate[r] = v.rate;
      cpu[r] = v.cpu_ns;
      kicks[r] = v.kicks_k;
      calls[r] = v.calls_k;
      other[nother++] = v.other;
      lost += v.sent - v.received;
      sent += v.sent;
      stalls += v.stalls;
      missed += v.missed;
      if (o.each)
        printf("#%-4zu vhost-user  run %-2d %11.0f %8llu %12.0f %9.2f %9.2f %7llu\n", sizes[si],
               r + 1, v.rate, (unsigned long long)(v.sent - v.received), v.cpu_ns, v.kicks_k,
               v.calls_k, (unsigned long long)v.stalls);
    }
    vrate[si] = median(rate, o.runs);
    vcpu[si] = median(cpu, o.runs);
    vlost[si] = lost;
    vsent[si] = sent;
    vstalls += stalls;
    vmissed += missed;
    printf("%-5zu %-11s %14.0f %8llu %12.0f %9.2f %9.2f %7llu\n", sizes[si], "vhost-user",
           vrate[si], (unsigned long long)lost, vcpu[si], median(kicks, o.runs),
           median(calls, o.runs), (unsigned long long)stalls);
    fflush(stdout);
  }
  bench_close(&b);
  printf("(medians of %d runs; lost: sent - received after the drain, all runs; stalls: the\n"
         " generator's ring full, nothing used for %d ms and no kick asked for: lost wake-ups,\n"
         " each ended by a watchdog kick)\n",
         o.runs, STALL_MS);
  if (vstalls)
    printf("lost wake-ups: %llu (the port stopped reading the generator's ring without asking "
           "for a kick)\n",
           (unsigned long long)vstalls);
  if (vmissed)
    printf("calls the guests had asked for and did not get within 10 ms: %llu\n",
           (unsigned long long)vmissed);
  if (nother) {
    double mx = 0;
    for (int i = 0; i < nother; i++) mx = other[i] > mx ? other[i] : mx;
    printf("other load during the vhost-user runs: median %.2f CPU, max %.2f CPU%s\n",
           median(other, nother), mx,
           mx > QUIET_LOAD ? " (not quiet: compare with another invocation)" : "");
  }
  if (!unix_path) return bad ? 1 : 0;

  urow lux[MAXSIZES], bare[MAXSIZES];
  memset(lux, 0, sizeof(lux));
  memset(bare, 0, sizeof(bare));
  fflush(stdout);
  if (run_lsbench(self_dir, &o, sizes_arg, unix_frames, lux, bare, nsizes, sizes) != 0)
    fprintf(stderr, "vhost_bench: lsbench failed\n");
  printf("vhost-user against unix (luaswitch, same build, this invocation):\n");
  printf("%-5s %14s %14s %8s %12s %12s %8s %8s %8s\n", "size", "vhost frames/s", "unix frames/s",
         "rate x", "vhost ns/fr", "unix ns/fr", "CPU x", "vh loss", "unix loss");
  for (int si = 0; si < nsizes; si++) {
    if (!lux[si].have) {
      printf("%-5zu %14.0f %14s\n", sizes[si], vrate[si], "failed");
      continue;
    }
    double vl = vsent[si] ? (double)vlost[si] / (double)vsent[si] : 0;
    printf("%-5zu %14.0f %14.0f %8.2f %12.0f %12.0f %8.2f %7.2f%% %7.2f%%\n", sizes[si], vrate[si],
           lux[si].rate, lux[si].rate > 0 ? vrate[si] / lux[si].rate : 0, vcpu[si], lux[si].cpu_ns,
           lux[si].cpu_ns > 0 ? vcpu[si] / lux[si].cpu_ns : 0, vl * 100, lux[si].loss * 100);
  }
  return bad ? 1 : 0;
}
