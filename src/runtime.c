/*
 * runtime.c — the data-plane thread, command queue, event signalling and clock
 * (see runtime.h for the design).
 */
#include "runtime.h"
#include "port.h"
#include "switch.h"

#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

static uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * LS_NSEC + (uint64_t)ts.tv_nsec;
}

void ls_rt_tick(ls_runtime *rt) {
  rt->mono = mono_ns();
  rt->now = rt->manual ? rt->manual_now : (uint64_t)((int64_t)rt->mono + rt->clock_offset);
}

bool ls_rt_slice_spent(const ls_runtime *rt) {
  return mono_ns() - rt->mono >= rt->rx_slice_ns;
}

/* ---- received work held in user space (runtime.h) ---------------------------------------- */

static void on_rx_idle(uv_idle_t *h) {
  ls_runtime *rt = h->data;
  /* One turn for each port listed before it began: a port that lists itself again waits
   * for the next loop iteration, after the descriptors have been polled. */
  rt->rx_running = rt->rx_ready;
  rt->rx_ready = NULL;
  while (rt->rx_running) {
    ls_port *p = rt->rx_running;
    rt->rx_running = p->rx_next;
    p->rx_next = NULL;
    p->rx_listed = false;
    if (!p->attached || p->closing || p->blocked) continue; /* resuming lists it again */
    ls_rt_tick(rt);
    rt->stats.wakeups++;
    p->ops->resume(p);
    ls_rt_flush(rt);
  }
  if (!rt->rx_ready && rt->rx_idle_on) {
    uv_idle_stop(&rt->rx_idle);
    rt->rx_idle_on = false;
  }
}

void ls_rt_rx_ready(ls_runtime *rt, ls_port *p) {
  if (p->rx_listed || p->closing) return;
  p->rx_listed = true;
  p->rx_next = rt->rx_ready;
  rt->rx_ready = p;
  if (!rt->rx_idle_on) {
    uv_idle_start(&rt->rx_idle, on_rx_idle);
    rt->rx_idle_on = true;
  }
}

void ls_rt_rx_forget(ls_runtime *rt, ls_port *p) {
  if (!p->rx_listed) return;
  ls_port **lists[2] = {&rt->rx_ready, &rt->rx_running};
  for (int i = 0; i < 2; i++)
    for (ls_port **pp = lists[i]; *pp; pp = &(*pp)->rx_next)
      if (*pp == p) {
        *pp = p->rx_next;
        p->rx_next = NULL;
        p->rx_listed = false;
        return;
      }
}

typedef struct {
  uint64_t ns;
} slice_arg;

static int cmd_set_rx_slice(ls_runtime *rt, ls_cmd *cmd) {
  rt->rx_slice_ns = ((slice_arg *)cmd->arg)->ns;
  return 0;
}

int ls_runtime_set_rx_slice(ls_runtime *rt, uint64_t ns) {
  slice_arg a = {ns};
  if (!rt->running) {
    rt->rx_slice_ns = ns;
    return 0;
  }
  return ls_runtime_call(rt, cmd_set_rx_slice, &a);
}

/* ---- events -------------------------------------------------------------------------------- */

bool ls_rt_emit(ls_runtime *rt, ls_event *ev) {
  ev->time = rt->now;
  rt->ev_pending = true;
  return ls_ring_push(&rt->events, ev);
}

bool ls_rt_emit_frame(ls_runtime *rt, ls_event *ev, const uint8_t *frame, uint32_t len) {
  uint64_t held = atomic_load_explicit(&rt->blob_bytes, memory_order_relaxed);
  if (held + len > LS_BLOB_BYTES_MAX) {
    atomic_fetch_add_explicit(&rt->events.dropped, 1, memory_order_relaxed);
    return false;
  }
  ls_frame_blob *blob = malloc(sizeof(*blob) + len);
  if (!blob) return false;
  blob->len = len;
  memcpy(blob->data, frame, len);
  atomic_fetch_add_explicit(&rt->blob_bytes, len, memory_order_relaxed);
  ev->value = (int64_t)(uintptr_t)blob;
  if (ls_rt_emit(rt, ev)) return true;
  ls_runtime_blob_free(rt, blob);
  return false;
}

void ls_runtime_blob_free(ls_runtime *rt, ls_frame_blob *blob) {
  if (!blob) return;
  atomic_fetch_sub_explicit(&rt->blob_bytes, blob->len, memory_order_relaxed);
  free(blob);
}

/* ---- impairment timer ---------------------------------------------------------------------- */

static void on_imp_timer(uv_timer_t *t) {
  ls_runtime *rt = t->data;
  ls_rt_tick(rt);
  rt->imp_due = UINT64_MAX;
  uint64_t next = ls_port_impair_tick(rt);
  ls_rt_flush(rt);
  if (next != UINT64_MAX) ls_rt_impair_due(rt, next);
}

void ls_rt_impair_due(ls_runtime *rt, uint64_t due) {
  if (rt->manual || due >= rt->imp_due) return; /* a manual clock releases on advance */
  rt->imp_due = due;
  uint64_t ms = due > rt->now ? (due - rt->now + 999999) / 1000000 : 0;
  uv_timer_start(&rt->imp_timer, on_imp_timer, ms, 0);
}

/* ---- learn_limit holds (port.h) ----------------------------------------------------------- */

static void on_learn_timer(uv_timer_t *t);

static void unhold(ls_port *p) {
  p->learn_held = false;
  p->learn_next = NULL;
  if (p->blocked && --p->blocked == 0 && p->ops->update) p->ops->update(p);
}

static void learn_arm(ls_runtime *rt, uint64_t due) {
  rt->learn_due = due;
  uint64_t ms = due > rt->mono ? (due - rt->mono + 999999) / 1000000 : 0;
  uv_timer_start(&rt->learn_timer, on_learn_timer, ms, 0);
}

static void on_learn_timer(uv_timer_t *t) {
  ls_runtime *rt = t->data;
  ls_rt_tick(rt);
  uint64_t next = UINT64_MAX;
  for (ls_port **pp = &rt->learn_held; *pp;) {
    ls_port *p = *pp;
    if (p->learn_until <= rt->mono || !p->cfg.learn_limit) {
      *pp = p->learn_next;
      unhold(p);
    } else {
      if (p->learn_until < next) next = p->learn_until;
      pp = &p->learn_next;
    }
  }
  rt->learn_due = UINT64_MAX;
  if (next != UINT64_MAX) learn_arm(rt, next);
}

void ls_rt_learn_hold(ls_runtime *rt, ls_port *p) {
  p->learn_next = rt->learn_held;
  rt->learn_held = p;
  if (p->learn_until < rt->learn_due) learn_arm(rt, p->learn_until);
}

void ls_rt_learn_forget(ls_runtime *rt, ls_port *p) {
  if (!p->learn_held) return;
  for (ls_port **pp = &rt->learn_held; *pp; pp = &(*pp)->learn_next) {
    if (*pp == p) {
      *pp = p->learn_next;
      break;
    }
  }
  p->learn_held = false;
  p->learn_next = NULL;
}

static void signal_events(ls_runtime *rt) {
  rt->ev_pending = false;
  if (atomic_exchange(&rt->ev_signalled, 1) == 0) {
    uint64_t one = 1;
    ssize_t r = write(rt->event_fd, &one, sizeof(one));
    (void)r; /* an eventfd write only fails if the counter would overflow */
  }
}

void ls_rt_mark_dirty(ls_runtime *rt, ls_port *p) {
  if (p->dirty) return;
  p->dirty = true;
  p->dirty_next = rt->dirty;
  rt->dirty = p;
}

void ls_rt_unmark_dirty(ls_runtime *rt, ls_port *p) {
  if (!p->dirty) return;
  for (ls_port **pp = &rt->dirty; *pp; pp = &(*pp)->dirty_next) {
    if (*pp == p) {
      *pp = p->dirty_next;
      break;
    }
  }
  p->dirty = false;
  p->dirty_next = NULL;
}

ls_buf *ls_rx_take(ls_runtime *rt, uint8_t cls, ls_buf **slot, uint32_t len) {
  ls_buf *big = *slot;
  if (cls > 0 && len <= ls_pool_class_cap[0]) {
    ls_buf *b = ls_pool_get(&rt->pool, 0);
    if (!b) return NULL;
    memcpy(b->data, ls_buf_frame(big), len);
    b->len = len;
    return b;
  }
  *slot = NULL;
  big->len = len;
  return big;
}

/* Once the pool has freed LS_TRIM_BYTES beyond its free lists (the tail of a burst, a deep
 * queue drained), a trim runs LS_TRIM_DELAY_MS later: at most a few a second, each
 * returning what the allocator holds free (glibc's malloc_trim also releases free pages in
 * the middle of its heaps and in every thread's arena). Without it the RSS of a switch
 * stays at the high-water mark of its queues. */
#define LS_TRIM_BYTES (1u << 20)
#define LS_TRIM_DELAY_MS 200

static void on_trim_timer(uv_timer_t *t) {
  ls_runtime *rt = t->data;
  rt->trim_timer_on = false;
  rt->pool.freed = 0;
#ifdef __GLIBC__
  malloc_trim(0);
#endif
}

void ls_rt_flush(ls_runtime *rt) {
  while (rt->dirty) {
    ls_port *p = rt->dirty;
    rt->dirty = p->dirty_next;
    p->dirty = false;
    p->dirty_next = NULL;
    if (p->txq_len) p->ops->flush(p);
  }
  if (rt->ev_pending) signal_events(rt);
  if (LS_UNLIKELY(rt->pool.freed >= LS_TRIM_BYTES) && !rt->trim_timer_on) {
    rt->trim_timer_on = true;
    uv_timer_start(&rt->trim_timer, on_trim_timer, LS_TRIM_DELAY_MS, 0);
  }
}

/* Every 10 ms while some port is congested: a port that made no progress for
 * LS_STALL_NS stops holding its inputs back, one that makes progress again holds them
 * again (ls_port_watch, port.h). */
static void on_cong_timer(uv_timer_t *t) {
  ls_runtime *rt = t->data;
  ls_rt_tick(rt);
  for (ls_port *p = rt->congested; p; p = p->cong_next) ls_port_watch(p);
  if (!rt->congested) {
    uv_timer_stop(&rt->cong_timer);
    rt->cong_timer_on = false;
  }
  ls_rt_flush(rt);
}

void ls_rt_watch_congestion(ls_runtime *rt) {
  if (rt->cong_timer_on) return;
  uv_timer_start(&rt->cong_timer, on_cong_timer, 10, 10);
  rt->cong_timer_on = true;
}

uint32_t ls_runtime_events(ls_runtime *rt, ls_event *out, uint32_t max, uint64_t *lost) {
  if (lost) *lost = 0;
  if (rt->event_fd < 0) return 0;
  uint64_t v;
  ssize_t r = read(rt->event_fd, &v, sizeof(v));
  (void)r;
  /* Clearing the flag with an RMW pairs with the producer's exchange: any event pushed
   * before a producer saw the flag set is visible to the pop below. */
  atomic_exchange(&rt->ev_signalled, 0);
  uint32_t n = ls_ring_pop(&rt->events, out, max);
  if (ls_ring_pending(&rt->events) > 0 && atomic_exchange(&rt->ev_signalled, 1) == 0) {
    uint64_t one = 1;
    r = write(rt->event_fd, &one, sizeof(one));
  }
  uint64_t dropped = atomic_load(&rt->events.dropped);
  if (lost) *lost = dropped - rt->lost_reported;
  rt->lost_reported = dropped;
  return n;
}

int ls_runtime_event_fd(const ls_runtime *rt) {
  return rt->running ? rt->event_fd : -1;
}

/* ---- commands -------------------------------------------------------------------------------- */

void ls_runtime_complete(ls_runtime *rt, ls_cmd *cmd, int result) {
  pthread_mutex_lock(&rt->mu);
  cmd->result = result;
  cmd->done = true;
  pthread_cond_broadcast(&rt->cv);
  pthread_mutex_unlock(&rt->mu);
}

static void on_command(uv_async_t *a) {
  ls_runtime *rt = a->data;
  for (;;) {
    pthread_mutex_lock(&rt->mu);
    ls_cmd *list = rt->q_head;
    rt->q_head = rt->q_tail = NULL;
    pthread_mutex_unlock(&rt->mu);
    if (!list) break;
    while (list) {
      ls_cmd *c = list;
      list = c->next;
      ls_rt_tick(rt);
      rt->stats.commands++;
      int r = c->fn(rt, c);
      if (r != LS_CMD_PENDING) ls_runtime_complete(rt, c, r);
    }
  }
  ls_rt_flush(rt);
}

int ls_runtime_call(ls_runtime *rt, ls_cmd_fn fn, void *arg) {
  ls_cmd c = {.fn = fn, .arg = arg, .result = 0, .done = false, .next = NULL};
  if (rt->inline_mode) { /* the caller is the data-plane thread: run it here, as on_command */
    if (!rt->accepting) return -ESHUTDOWN;
    ls_rt_tick(rt);
    rt->stats.commands++;
    int r = fn(rt, &c);
    if (r != LS_CMD_PENDING)
      c.result = r;
    else
      while (!c.done) uv_run(&rt->loop, UV_RUN_ONCE);
    ls_rt_flush(rt);
    return c.result;
  }
  pthread_mutex_lock(&rt->mu);
  if (!rt->accepting) {
    pthread_mutex_unlock(&rt->mu);
    return -ESHUTDOWN;
  }
  if (rt->q_tail)
    rt->q_tail->next = &c;
  else
    rt->q_head = &c;
  rt->q_tail = &c;
  pthread_mutex_unlock(&rt->mu);
  uv_async_send(&rt->cmd_async);
  pthread_mutex_lock(&rt->mu);
  while (!c.done) pthread_cond_wait(&rt->cv, &rt->mu);
  pthread_mutex_unlock(&rt->mu);
  return c.result;
}

uint32_t ls_runtime_new_id(ls_runtime *rt) {
  return ++rt->next_id;
}

/* ---- lifecycle ------------------------------------------------------------------------------ */

ls_runtime *ls_runtime_new(uint32_t ring_capacity) {
  ls_runtime *rt = calloc(1, sizeof(*rt));
  if (!rt) return NULL;
  pthread_mutex_init(&rt->mu, NULL);
  pthread_cond_init(&rt->cv, NULL);
  rt->event_fd = -1;
  rt->ring_capacity = ring_capacity ? ring_capacity : LS_EVENT_RING;
  rt->rx_slice_ns = LS_RX_SLICE_NS;
  const char *slice = getenv("LUASWITCH_RX_SLICE_NS"); /* a test knob: see runtime.h */
  if (slice && *slice) {
    char *end;
    unsigned long long v = strtoull(slice, &end, 10);
    if (*end == '\0') rt->rx_slice_ns = v;
  }
  return rt;
}

/* Before each poll: the iteration since the last one, less the time libuv spent waiting
 * in epoll (UV_METRICS_IDLE_TIME), is what the loop spent working. */
static void on_busy_prepare(uv_prepare_t *h) {
  ls_runtime *rt = h->data;
  uint64_t wall = uv_hrtime(), idle = uv_metrics_idle_time(&rt->loop);
  if (rt->busy_wall) {
    uint64_t w = wall - rt->busy_wall, i = idle - rt->busy_idle;
    uint64_t busy = w > i ? w - i : 0;
    if (busy > rt->stats.max_busy_ns) {
      rt->stats.max_busy_ns = busy;
      rt->stats.max_busy_at = mono_ns();
    }
  }
  rt->busy_wall = wall;
  rt->busy_idle = idle;
}

static void thread_main(void *arg) {
  ls_runtime *rt = arg; /* signals are blocked here: they belong to the control thread */
  pthread_setname_np(pthread_self(), "luaswitch-dp");
  /* Ahead of the peers it serves: on a busy machine a sink woken by our sends would
   * otherwise preempt us in mid-batch (as ovs-ctl starts ovs-vswitchd at nice -10).
   * Without CAP_SYS_NICE this fails and the thread keeps the default. */
  id_t tid = (id_t)syscall(SYS_gettid);
  if (setpriority(PRIO_PROCESS, tid, LS_DP_NICE) != 0) { /* not permitted: keep the default */
  }
  errno = 0;
  int nice = getpriority(PRIO_PROCESS, tid);
  rt->dp_nice = errno ? 0 : nice;
  uv_run(&rt->loop, UV_RUN_DEFAULT);
}

static int start(ls_runtime *rt, bool inline_mode);

int ls_runtime_start(ls_runtime *rt) {
  return start(rt, false);
}

int ls_runtime_start_inline(ls_runtime *rt) {
  return start(rt, true);
}

void ls_runtime_poll(ls_runtime *rt) {
  if (rt->running && rt->inline_mode) uv_run(&rt->loop, UV_RUN_NOWAIT);
}

static int start(ls_runtime *rt, bool inline_mode) {
  if (rt->running) return 0;
  int r = ls_ring_init(&rt->events, rt->ring_capacity);
  if (r) return r;
  rt->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (rt->event_fd < 0) {
    r = -errno;
    ls_ring_fini(&rt->events);
    return r;
  }
  atomic_store(&rt->ev_signalled, 0);
  rt->lost_reported = 0;
  r = uv_loop_init(&rt->loop);
  if (r) goto fail_fd;
  r = uv_async_init(&rt->loop, &rt->cmd_async, on_command);
  if (r) goto fail_loop;
  rt->cmd_async.data = rt;
  uv_timer_init(&rt->loop, &rt->cong_timer);
  rt->cong_timer.data = rt;
  uv_timer_init(&rt->loop, &rt->imp_timer);
  rt->imp_timer.data = rt;
  uv_timer_init(&rt->loop, &rt->trim_timer);
  rt->trim_timer.data = rt;
  rt->trim_timer_on = false;
  rt->imp_due = UINT64_MAX;
  rt->impaired = NULL;
  uv_loop_configure(&rt->loop, UV_METRICS_IDLE_TIME);
  uv_prepare_init(&rt->loop, &rt->busy_prep);
  rt->busy_prep.data = rt;
  rt->busy_wall = rt->busy_idle = 0;
  rt->dp_nice = 0;
  uv_prepare_start(&rt->busy_prep, on_busy_prepare);
  uv_unref((uv_handle_t *)&rt->busy_prep);
  uv_timer_init(&rt->loop, &rt->learn_timer);
  rt->learn_timer.data = rt;
  rt->learn_held = NULL;
  rt->learn_due = UINT64_MAX;
  uv_idle_init(&rt->loop, &rt->rx_idle);
  rt->rx_idle.data = rt;
  rt->rx_idle_on = false;
  rt->rx_ready = rt->rx_running = NULL;
  rt->cong_timer_on = false;
  rt->congested = NULL;
  ls_pool_init(&rt->pool);
  memset(rt->rx_bufs, 0, sizeof(rt->rx_bufs));
  rt->switches = NULL;
  rt->dirty = NULL;
  rt->ev_pending = false;
  memset(&rt->stats, 0, sizeof(rt->stats));
  /* The clock keeps its mode and value across restarts. */
  ls_rt_tick(rt);
  pthread_mutex_lock(&rt->mu);
  rt->accepting = true;
  pthread_mutex_unlock(&rt->mu);
  rt->inline_mode = inline_mode;
  if (inline_mode) {
    rt->running = true;
    return 0;
  }
  /* The thread starts with every signal blocked (no window before thread_main runs). */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  r = uv_thread_create(&rt->thread, thread_main, rt);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (r) {
    pthread_mutex_lock(&rt->mu);
    rt->accepting = false;
    pthread_mutex_unlock(&rt->mu);
    uv_close((uv_handle_t *)&rt->cmd_async, NULL);
    uv_close((uv_handle_t *)&rt->cong_timer, NULL);
    uv_close((uv_handle_t *)&rt->imp_timer, NULL);
    uv_close((uv_handle_t *)&rt->trim_timer, NULL);
    uv_close((uv_handle_t *)&rt->learn_timer, NULL);
    uv_close((uv_handle_t *)&rt->rx_idle, NULL);
    uv_close((uv_handle_t *)&rt->busy_prep, NULL);
    uv_run(&rt->loop, UV_RUN_NOWAIT);
    goto fail_loop;
  }
  rt->running = true;
  return 0;
fail_loop:
  uv_loop_close(&rt->loop);
fail_fd:
  close(rt->event_fd);
  rt->event_fd = -1;
  ls_ring_fini(&rt->events);
  return r;
}

static int cmd_shutdown(ls_runtime *rt, ls_cmd *cmd) {
  (void)cmd;
  while (rt->switches) ls_switch_close_dp(rt->switches);
  ls_rt_flush(rt);
  pthread_mutex_lock(&rt->mu);
  rt->accepting = false; /* nothing may be queued behind us now */
  pthread_mutex_unlock(&rt->mu);
  uv_close((uv_handle_t *)&rt->cmd_async, NULL);
  uv_close((uv_handle_t *)&rt->cong_timer, NULL);
  uv_close((uv_handle_t *)&rt->imp_timer, NULL);
  uv_close((uv_handle_t *)&rt->trim_timer, NULL);
  uv_close((uv_handle_t *)&rt->learn_timer, NULL);
  uv_close((uv_handle_t *)&rt->rx_idle, NULL);
  uv_close((uv_handle_t *)&rt->busy_prep, NULL);
  return 0;
}

void ls_runtime_stop(ls_runtime *rt) {
  if (!rt->running) return;
  ls_runtime_call(rt, cmd_shutdown, NULL);
  if (rt->inline_mode)
    uv_run(&rt->loop, UV_RUN_DEFAULT); /* until every handle is closed */
  else
    uv_thread_join(&rt->thread);
  /* The loop has returned: every handle is closed. */
  for (int c = 0; c < LS_POOL_CLASSES; c++)
    for (int i = 0; i < LS_BATCH; i++)
      if (rt->rx_bufs[c][i]) {
        ls_pool_put(&rt->pool, rt->rx_bufs[c][i]);
        rt->rx_bufs[c][i] = NULL;
      }
  ls_pool_fini(&rt->pool);
  int r = uv_loop_close(&rt->loop);
  (void)r;
  close(rt->event_fd);
  rt->event_fd = -1;
  ls_event ev;
  while (ls_ring_pop(&rt->events, &ev, 1) == 1) ls_runtime_blob_free(rt, ls_event_blob(&ev));
  ls_ring_fini(&rt->events);
  rt->running = false;
}

void ls_runtime_free(ls_runtime *rt) {
  if (!rt) return;
  ls_runtime_stop(rt);
  pthread_mutex_destroy(&rt->mu);
  pthread_cond_destroy(&rt->cv);
  free(rt);
}

/* ---- clock ------------------------------------------------------------------------------- */

static int cmd_set_manual(ls_runtime *rt, ls_cmd *cmd) {
  bool manual = *(bool *)cmd->arg;
  if (manual == rt->manual) return 0;
  if (manual) {
    rt->manual_now = rt->now;
    rt->manual = true;
    uv_timer_stop(&rt->imp_timer);
    rt->imp_due = UINT64_MAX;
    for (ls_switch *sw = rt->switches; sw; sw = sw->next) ls_switch_arm_timer(sw);
  } else {
    rt->clock_offset = (int64_t)rt->manual_now - (int64_t)mono_ns();
    rt->manual = false;
    ls_rt_tick(rt);
    for (ls_switch *sw = rt->switches; sw; sw = sw->next) ls_switch_age(sw);
    uint64_t next = ls_port_impair_tick(rt);
    if (next != UINT64_MAX) ls_rt_impair_due(rt, next);
  }
  return 0;
}

int ls_runtime_set_manual(ls_runtime *rt, bool manual) {
  return ls_runtime_call(rt, cmd_set_manual, &manual);
}

static int cmd_advance(ls_runtime *rt, ls_cmd *cmd) {
  if (!rt->manual) return -EINVAL;
  rt->manual_now += *(uint64_t *)cmd->arg;
  rt->now = rt->manual_now;
  for (ls_switch *sw = rt->switches; sw; sw = sw->next) ls_switch_age(sw);
  ls_port_impair_tick(rt);
  return 0;
}

int ls_runtime_advance(ls_runtime *rt, uint64_t ns) {
  return ls_runtime_call(rt, cmd_advance, &ns);
}

typedef struct {
  uint64_t now;
  bool manual;
} now_arg;

static int cmd_now(ls_runtime *rt, ls_cmd *cmd) {
  now_arg *a = cmd->arg;
  a->now = rt->now;
  a->manual = rt->manual;
  return 0;
}

int ls_runtime_now(ls_runtime *rt, uint64_t *now, bool *manual) {
  now_arg a;
  int r = ls_runtime_call(rt, cmd_now, &a);
  if (r == 0) {
    if (now) *now = a.now;
    if (manual) *manual = a.manual;
  }
  return r;
}

static int cmd_info(ls_runtime *rt, ls_cmd *cmd) {
  ls_runtime_info *o = cmd->arg;
  o->stats = rt->stats;
  o->events_dropped = atomic_load(&rt->events.dropped);
  o->buffers_live = rt->pool.live;
  o->buffers_allocated = rt->pool.allocated;
  o->buffer_bytes = rt->pool.bytes;
  o->switches = 0;
  for (ls_switch *sw = rt->switches; sw; sw = sw->next) o->switches++;
  o->manual = rt->manual;
  o->now = rt->now;
  o->dp_nice = rt->dp_nice;
  return 0;
}

int ls_runtime_info_get(ls_runtime *rt, ls_runtime_info *out) {
  memset(out, 0, sizeof(*out));
  return ls_runtime_call(rt, cmd_info, out);
}
