/*
 * runtime.h — the data-plane thread, the command queue into it, the event ring out of
 * it, and its clock.
 *
 * Owns: one uv_loop_t on its own thread; everything registered on that loop (switches,
 * ports, timers) is touched only by that thread. The control plane (the thread that
 * calls ls_runtime_call(), usually a Lua state) never touches data-plane objects
 * directly: it queues a command (a function and its argument) and waits until the
 * data-plane thread has run it between two batches. That is the only lock in the
 * design and it is never taken per frame.
 *
 * Events flow the other way through a bounded SPSC ring (event.h); the runtime signals
 * an eventfd once per burst, so the control plane can sleep in poll()/epoll or any Lua
 * event loop until something happened.
 *
 * Time: one clock per runtime, in nanoseconds. "real" follows CLOCK_MONOTONIC (plus an
 * offset, so switching modes never makes time jump back); "manual" stands still until
 * ls_runtime_advance() moves it, which also runs aging at the new time. The data plane
 * samples the clock once per callback (batch) into rt->now.
 *
 * Received work held in user space: a port kind that keeps received bytes or frames in
 * its own memory (a stream's buffer, a patch peer's queue, a virtqueue) cannot count on
 * its descriptor to wake it again, since the kernel has nothing left to report. One rule
 * for them all: a read that ends with such work left, for whatever reason (its slice or
 * budget spent, backpressure), calls ls_rt_rx_ready(), and so does a paused port when
 * it resumes; the runtime then runs the kind's ops->resume from the loop, once per loop
 * iteration (a uv_idle handle active only while some port is listed), so the loop still
 * polls every descriptor between two turns.
 */
#ifndef LS_RUNTIME_H
#define LS_RUNTIME_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <uv.h>

#include "buf.h"
#include "event.h"

#define LS_BATCH 64                   /* frames per recvmmsg / sendmmsg */
#define LS_DP_NICE -10                /* the data-plane thread's priority, if permitted */
#define LS_RX_BUDGET 1024             /* frames read from one port per wake-up before yielding */
#define LS_RX_SLICE_NS 2000000ULL     /* ... or after this long (a port whose frames are dear) */
#define LS_EVENT_RING 65536           /* default event ring capacity */
#define LS_CMD_PENDING (-100000)      /* a command that completes later (ls_runtime_complete) */
#define LS_BLOB_BYTES_MAX (64u << 20) /* punted/sampled frame bytes waiting for Lua, at most */

typedef struct ls_runtime ls_runtime;
typedef struct ls_switch ls_switch;
typedef struct ls_port ls_port;
typedef struct ls_cmd ls_cmd;
typedef struct ls_peer_waits ls_peer_waits;

typedef int (*ls_cmd_fn)(ls_runtime *rt, ls_cmd *cmd);

struct ls_cmd {
  ls_cmd_fn fn;
  void *arg;
  int result;
  bool done;
  ls_cmd *next;
};

typedef struct ls_runtime_stats {
  uint64_t wakeups;  /* port poll callbacks */
  uint64_t batches;  /* recvmmsg calls that returned frames */
  uint64_t commands; /* commands applied */
  /* the longest loop iteration spent working (not waiting in epoll), and when it ended
   * (CLOCK_MONOTONIC): how long the data plane was deaf to every port at once */
  uint64_t max_busy_ns, max_busy_at;
} ls_runtime_stats;

struct ls_runtime {
  /* ---- shared: guarded by mu ---- */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  ls_cmd *q_head, *q_tail;
  bool accepting; /* commands may be queued */

  /* ---- control-thread only ---- */
  bool running;
  bool inline_mode; /* no thread: the control thread runs the loop itself (fuzzing, tests) */
  uv_thread_t thread;
  uint32_t next_id;
  uint32_t ring_capacity;
  uint64_t lost_reported;

  /* ---- events: producer = data plane, consumer = control ---- */
  ls_ring events;
  int event_fd;
  _Atomic int ev_signalled;
  _Atomic uint64_t blob_bytes; /* bytes of frames carried by queued punt/sample events */

  /* ---- data-plane thread only ---- */
  uv_loop_t loop;
  uv_async_t cmd_async;
  uint64_t now;
  uint64_t mono; /* CLOCK_MONOTONIC at the same instant: the data plane's own timeouts (the
                    stall watchdog) run on it, so they work under a manual clock too */
  bool manual;
  uint64_t manual_now;
  int64_t clock_offset;
  bool ev_pending;
  ls_pool pool;
  ls_switch *switches;
  ls_port *dirty;
  ls_port *congested; /* ports above their high-water mark */
  uv_timer_t cong_timer;
  bool cong_timer_on;
  uv_timer_t trim_timer; /* gives the pool's freed memory back to the system */
  bool trim_timer_on;
  ls_port *impaired;      /* ports with frames waiting on an impairment's delay line */
  uv_timer_t imp_timer;   /* releases them */
  uint64_t imp_due;       /* when it fires (UINT64_MAX: idle) */
  uv_prepare_t busy_prep; /* measures each iteration's busy time (stats.max_busy_ns) */
  int dp_nice;
  uint64_t busy_wall, busy_idle;
  ls_port *learn_held;    /* ports held for going over their learn_limit */
  uv_timer_t learn_timer; /* releases them */
  uint64_t learn_due;     /* when it fires, on rt->mono (UINT64_MAX: idle) */
  ls_port *rx_ready;      /* ports with received work held in user space (ls_rt_rx_ready) */
  ls_port *rx_running;    /* ... taken off rx_ready for the turn in progress */
  uv_idle_t rx_idle;      /* runs their ops->resume once per loop iteration */
  bool rx_idle_on;
  uint64_t rx_slice_ns; /* LS_RX_SLICE_NS, or what ls_runtime_set_rx_slice set */
  ls_runtime_stats stats;
  /* ports waiting for their peer to appear: owned by peerwait.c (NULL while none waits) */
  ls_peer_waits *peer_waits;
  /* scratch for batched I/O, shared by all ports (one runs at a time) */
  struct mmsghdr rx_msgs[LS_BATCH];
  struct iovec rx_iov[LS_BATCH];
  struct sockaddr_un rx_addr[LS_BATCH];
  ls_buf *rx_bufs[LS_POOL_CLASSES][LS_BATCH];
  struct mmsghdr tx_msgs[LS_BATCH];
  struct iovec tx_iov[LS_BATCH];
};

/* ---- control-plane API ------------------------------------------------------------------ */

/* A stopped runtime; ring_capacity 0 means LS_EVENT_RING. NULL on ENOMEM. */
ls_runtime *ls_runtime_new(uint32_t ring_capacity);
/* Stops it if running, then frees it. */
void ls_runtime_free(ls_runtime *rt);
/* Start the data-plane thread. 0 or -errno; starting a running runtime is a no-op. */
int ls_runtime_start(ls_runtime *rt);
/* Start without a thread, for single-threaded drivers (the fuzz targets): the calling
 * thread is then both control and data plane — ls_runtime_call() runs the command at once
 * (then flushes, as between two batches), and ls_runtime_poll() runs the loop's ready
 * callbacks (port I/O, timers) without blocking. Only that thread may use the runtime. */
int ls_runtime_start_inline(ls_runtime *rt);
void ls_runtime_poll(ls_runtime *rt);
/* Close every switch and port, stop and join the thread, release fds. Idempotent. */
void ls_runtime_stop(ls_runtime *rt);
static inline bool ls_runtime_running(const ls_runtime *rt) {
  return rt->running;
}

/* Run fn on the data-plane thread between batches and wait for its result.
 * -ESHUTDOWN if the runtime is not running. */
int ls_runtime_call(ls_runtime *rt, ls_cmd_fn fn, void *arg);
/* Data plane: finish a command whose function returned LS_CMD_PENDING. */
void ls_runtime_complete(ls_runtime *rt, ls_cmd *cmd, int result);

uint32_t ls_runtime_new_id(ls_runtime *rt);

/* How long one port may read per turn before it yields: LS_RX_SLICE_NS, or the environment's
 * LUASWITCH_RX_SLICE_NS when the runtime was made. Tests set 0 (every port yields after
 * each batch) to drive the yielding paths on any machine. */
int ls_runtime_set_rx_slice(ls_runtime *rt, uint64_t ns);

/* Clock control (control plane). */
int ls_runtime_set_manual(ls_runtime *rt, bool manual);
int ls_runtime_advance(ls_runtime *rt, uint64_t ns);
int ls_runtime_now(ls_runtime *rt, uint64_t *now, bool *manual);

/* Events (control plane). The fd is readable while events are pending (-1 if stopped).
 * ls_runtime_events() copies out up to max events; *lost receives how many were dropped
 * for a full ring since the previous call. */
int ls_runtime_event_fd(const ls_runtime *rt);
uint32_t ls_runtime_events(ls_runtime *rt, ls_event *out, uint32_t max, uint64_t *lost);
/* The frame of a punt or sample event taken with ls_runtime_events (NULL for others);
 * free it with ls_runtime_blob_free once used. */
static inline ls_frame_blob *ls_event_blob(const ls_event *ev) {
  return ls_event_has_blob(ev->type) ? (ls_frame_blob *)(uintptr_t)ev->value : NULL;
}
void ls_runtime_blob_free(ls_runtime *rt, ls_frame_blob *blob);

typedef struct ls_runtime_info {
  ls_runtime_stats stats;
  uint64_t events_dropped;
  uint64_t buffers_live, buffers_allocated, buffer_bytes;
  uint32_t switches;
  bool manual;
  uint64_t now;
  int dp_nice; /* the data-plane thread's nice value (LS_DP_NICE when permitted) */
} ls_runtime_info;
int ls_runtime_info_get(ls_runtime *rt, ls_runtime_info *out);

/* ---- data-plane helpers ------------------------------------------------------------------- */

/* Sample the clock into rt->now; called at the top of every loop callback. */
void ls_rt_tick(ls_runtime *rt);
/* Has the current callback (since its ls_rt_tick) read for LS_RX_SLICE_NS? */
bool ls_rt_slice_spent(const ls_runtime *rt);
/* Queue an event (its time is rt->now). False if the ring was full (counted). */
bool ls_rt_emit(ls_runtime *rt, ls_event *ev);
/* Queue an event carrying a copy of a frame (ev->value is set to the blob). False, with
 * nothing queued, if the ring is full or LS_BLOB_BYTES_MAX bytes already wait. */
bool ls_rt_emit_frame(ls_runtime *rt, ls_event *ev, const uint8_t *frame, uint32_t len);
/* Some impairment holds a frame due at `due`: make sure the release timer fires by then. */
void ls_rt_impair_due(ls_runtime *rt, uint64_t due);
/* Hold p (over its learn_limit) until p->learn_until; forget it (closing). */
void ls_rt_learn_hold(ls_runtime *rt, ls_port *p);
void ls_rt_learn_forget(ls_runtime *rt, ls_port *p);
/* End of a callback: transmit every port with queued frames, signal pending events. */
void ls_rt_flush(ls_runtime *rt);
/* Mark a port as having frames to send at the next flush. */
void ls_rt_mark_dirty(ls_runtime *rt, ls_port *p);
/* Remove a port from the dirty list (it is being closed). */
void ls_rt_unmark_dirty(ls_runtime *rt, ls_port *p);
/* A receive into the scratch buffer *slot (class cls) returned len bytes: take the frame.
 * A short frame in a large buffer is copied into a small one and the large buffer stays
 * in the slot for the next receive, so queues never pin 64 KiB per 60-byte frame.
 * Returns the frame (len set), or NULL when out of memory (the frame is dropped). */
ls_buf *ls_rx_take(ls_runtime *rt, uint8_t cls, ls_buf **slot, uint32_t len);
/* A port became congested: make sure the stall watchdog runs. */
void ls_rt_watch_congestion(ls_runtime *rt);
/* p holds received work in user space: run p->ops->resume on the next loop iteration (see
 * the header comment). Listing a listed port is a no-op; a port closing is forgotten. */
void ls_rt_rx_ready(ls_runtime *rt, ls_port *p);
void ls_rt_rx_forget(ls_runtime *rt, ls_port *p);

#endif
