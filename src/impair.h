/*
 * impair.h — link impairments for one port and direction: loss (random or Gilbert-Elliott
 * bursts), duplication, reordering, corruption, delay with jitter, a rate limit with a
 * queue bound, and an MTU clamp. This is how labs here get netem-like links, without root.
 *
 * Owns: the decision per frame (drop, corrupt a copy, duplicate) and the delay line, a
 * FIFO of frames with their release times (non-decreasing: delay and jitter never make
 * frames overtake each other, and the rate limit serialises them like a wire). Frames
 * picked for reordering wait on a second line for `reorder_delay`, so the ones behind
 * overtake them. All randomness comes from one xorshift generator per impairment,
 * seeded from the configuration: the same seed and the same frames give the same run.
 *
 * Data-plane only. The caller (port.c) decides what "emit" means (queue for transmit,
 * or forward a received frame) and runs ls_impair_release() from a timer.
 */
#ifndef LS_IMPAIR_H
#define LS_IMPAIR_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"

typedef struct ls_impair_cfg {
  double loss;         /* probability a frame is lost (random model) */
  bool ge;             /* Gilbert-Elliott: loss in bursts */
  double ge_p, ge_r;   /* P(good -> bad), P(bad -> good), per frame */
  double ge_bad_loss;  /* loss probability in the bad state (default 1) */
  double ge_good_loss; /* loss probability in the good state (default 0) */
  double dup;          /* probability a frame is sent twice */
  double reorder;      /* probability a frame is held back and overtaken */
  uint64_t reorder_ns; /* how long it is held back */
  double corrupt;      /* probability one bit of the frame is flipped */
  uint64_t delay_ns;   /* one-way delay */
  uint64_t jitter_ns;  /* uniform +- around the delay */
  uint64_t rate_bps;   /* 0: no limit */
  uint32_t limit;      /* frames waiting at most (delay line and rate) */
  uint32_t mtu;        /* 0: none; larger payloads are dropped */
  uint64_t seed;
} ls_impair_cfg;

typedef struct ls_impair_stats {
  uint64_t lost, queue_full, mtu, duplicated, corrupted, reordered, delayed;
} ls_impair_stats;

typedef struct ls_delay_slot {
  ls_buf *b;
  uint64_t at;
  uint32_t payload;
} ls_delay_slot;

typedef struct ls_delay_line {
  ls_delay_slot *q;
  uint32_t mask, head, len;
} ls_delay_line;

typedef struct ls_impair {
  ls_impair_cfg c;
  uint64_t rng;
  bool bad;           /* Gilbert-Elliott state */
  uint64_t line_free; /* rate limit: when the wire is free again */
  uint64_t last_at;   /* release time of the last frame on the main line (FIFO) */
  ls_delay_line line, held;
  ls_impair_stats st;
} ls_impair;

/* emit(ctx, b, payload): the frame leaves the impairment (the callee takes a reference
 * if it keeps it; the impairment releases its own). */
typedef void (*ls_impair_emit_fn)(void *ctx, ls_buf *b, uint32_t payload);

/* Does this configuration do anything at all? */
bool ls_impair_active(const ls_impair_cfg *c);
/* Does it hold frames (delay, rate, reordering)? */
bool ls_impair_delays(const ls_impair_cfg *c);

/* NULL on ENOMEM. */
ls_impair *ls_impair_new(const ls_impair_cfg *c);
/* Release everything still waiting through emit (now), then free. emit may be NULL to
 * just drop what waits. */
void ls_impair_free(ls_impair *im, ls_pool *pool, ls_impair_emit_fn emit, void *ctx);

/* One frame in (the caller keeps its own reference). */
void ls_impair_frame(ls_impair *im, ls_pool *pool, ls_buf *b, uint32_t payload, uint64_t now,
                     ls_impair_emit_fn emit, void *ctx);
/* Emit the frames due at now; returns when the next one is due (UINT64_MAX: none). */
uint64_t ls_impair_release(ls_impair *im, ls_pool *pool, uint64_t now, ls_impair_emit_fn emit,
                           void *ctx);
/* Frames waiting. */
uint32_t ls_impair_waiting(const ls_impair *im);
/* When the next waiting frame is due (UINT64_MAX: none). */
uint64_t ls_impair_next_due(const ls_impair *im);

#endif
