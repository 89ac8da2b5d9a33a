/*
 * impair.c — link impairments (see impair.h).
 */
#include "impair.h"
#include "frame.h"

#include <stdlib.h>
#include <string.h>

static uint64_t next_rand(ls_impair *im) {
  /* xorshift64* */
  uint64_t x = im->rng;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  im->rng = x;
  return x * 0x2545F4914F6CDD1DULL;
}

/* Uniform in [0, 1). */
static double rand01(ls_impair *im) {
  return (double)(next_rand(im) >> 11) / 9007199254740992.0;
}

static bool chance(ls_impair *im, double p) {
  return p > 0 && rand01(im) < p;
}

bool ls_impair_active(const ls_impair_cfg *c) {
  return c->loss > 0 || c->ge || c->dup > 0 || c->reorder > 0 || c->corrupt > 0 || c->delay_ns ||
         c->jitter_ns || c->rate_bps || c->mtu;
}

bool ls_impair_delays(const ls_impair_cfg *c) {
  return c->delay_ns || c->jitter_ns || c->rate_bps || c->reorder > 0;
}

static uint32_t pow2(uint32_t n) {
  uint32_t c = 16;
  while (c < n) c <<= 1;
  return c;
}

ls_impair *ls_impair_new(const ls_impair_cfg *c) {
  ls_impair *im = calloc(1, sizeof(*im));
  if (!im) return NULL;
  im->c = *c;
  if (!im->c.limit) im->c.limit = 1000;
  if (im->c.ge && im->c.ge_bad_loss == 0 && im->c.ge_good_loss == 0) im->c.ge_bad_loss = 1;
  im->rng = c->seed ? c->seed : 0x853c49e6748fea9bULL;
  for (int i = 0; i < 4; i++) next_rand(im); /* mix small seeds */
  uint32_t cap = pow2(im->c.limit + 1);
  im->line.q = calloc(cap, sizeof(ls_delay_slot));
  im->held.q = calloc(cap, sizeof(ls_delay_slot));
  if (!im->line.q || !im->held.q) {
    free(im->line.q);
    free(im->held.q);
    free(im);
    return NULL;
  }
  im->line.mask = im->held.mask = cap - 1;
  return im;
}

uint32_t ls_impair_waiting(const ls_impair *im) {
  return im->line.len + im->held.len;
}

uint64_t ls_impair_next_due(const ls_impair *im) {
  uint64_t a = im->line.len ? im->line.q[im->line.head].at : UINT64_MAX;
  uint64_t b = im->held.len ? im->held.q[im->held.head].at : UINT64_MAX;
  return a < b ? a : b;
}

static void push(ls_delay_line *l, ls_buf *b, uint64_t at, uint32_t payload) {
  ls_delay_slot *s = &l->q[(l->head + l->len) & l->mask];
  s->b = b;
  s->at = at;
  s->payload = payload;
  l->len++;
}

static bool lost(ls_impair *im) {
  if (!im->c.ge) return chance(im, im->c.loss);
  /* Gilbert-Elliott: a two-state Markov chain, one step per frame. */
  if (im->bad) {
    if (chance(im, im->c.ge_r)) im->bad = false;
  } else if (chance(im, im->c.ge_p)) {
    im->bad = true;
  }
  return chance(im, im->bad ? im->c.ge_bad_loss : im->c.ge_good_loss);
}

/* One copy of the frame onto the lines (or straight out). */
static void one(ls_impair *im, ls_pool *pool, ls_buf *b, uint32_t payload, uint64_t now,
                ls_impair_emit_fn emit, void *ctx) {
  if (!ls_impair_delays(&im->c)) {
    emit(ctx, b, payload);
    return;
  }
  if (ls_impair_waiting(im) >= im->c.limit) {
    im->st.queue_full++;
    return;
  }
  if (chance(im, im->c.reorder)) {
    ls_buf_ref(b);
    push(&im->held, b, now + im->c.reorder_ns, payload);
    im->st.reordered++;
    return;
  }
  uint64_t at = now + im->c.delay_ns;
  if (im->c.jitter_ns) {
    uint64_t span = 2 * im->c.jitter_ns;
    int64_t j = (int64_t)(rand01(im) * (double)span) - (int64_t)im->c.jitter_ns;
    at = (int64_t)at + j < (int64_t)now ? now : (uint64_t)((int64_t)at + j);
  }
  if (im->c.rate_bps) {
    /* The wire serialises: this frame starts when the previous one is done. */
    uint64_t start = im->line_free > now ? im->line_free : now;
    uint64_t tx = (uint64_t)((double)b->len * 8.0 * 1e9 / (double)im->c.rate_bps);
    im->line_free = start + tx;
    if (im->line_free > at) at = im->line_free;
  }
  if (at < im->last_at) at = im->last_at; /* FIFO: nothing overtakes on the main line */
  im->last_at = at;
  ls_buf_ref(b);
  push(&im->line, b, at, payload);
  if (at > now) im->st.delayed++;
  (void)pool;
}

void ls_impair_frame(ls_impair *im, ls_pool *pool, ls_buf *b, uint32_t payload, uint64_t now,
                     ls_impair_emit_fn emit, void *ctx) {
  if (im->c.mtu && payload > im->c.mtu) {
    im->st.mtu++;
    return;
  }
  if (lost(im)) {
    im->st.lost++;
    return;
  }
  ls_buf *use = b;
  if (chance(im, im->c.corrupt) && b->len > 0) {
    /* The frame is shared with other ports: corrupt a copy. */
    ls_buf *c = ls_pool_get(pool, ls_pool_class_for(b->len));
    if (c) {
      memcpy(c->data, ls_buf_frame(b), b->len);
      c->len = b->len;
      c->vnet = b->vnet;
      uint64_t bit = next_rand(im) % ((uint64_t)b->len * 8);
      c->data[bit / 8] ^= (uint8_t)(1u << (bit % 8));
      use = c;
      im->st.corrupted++;
    }
  }
  one(im, pool, use, payload, now, emit, ctx);
  if (chance(im, im->c.dup)) {
    im->st.duplicated++;
    one(im, pool, use, payload, now, emit, ctx);
  }
  if (use != b) ls_buf_unref(pool, use);
}

static uint64_t release_line(ls_delay_line *l, ls_pool *pool, uint64_t now, ls_impair_emit_fn emit,
                             void *ctx) {
  while (l->len) {
    ls_delay_slot *s = &l->q[l->head];
    if (s->at > now) return s->at;
    ls_buf *b = s->b;
    uint32_t payload = s->payload;
    l->head = (l->head + 1) & l->mask;
    l->len--;
    if (emit) emit(ctx, b, payload);
    ls_buf_unref(pool, b);
  }
  return UINT64_MAX;
}

uint64_t ls_impair_release(ls_impair *im, ls_pool *pool, uint64_t now, ls_impair_emit_fn emit,
                           void *ctx) {
  uint64_t a = release_line(&im->line, pool, now, emit, ctx);
  uint64_t b = release_line(&im->held, pool, now, emit, ctx);
  return a < b ? a : b;
}

void ls_impair_free(ls_impair *im, ls_pool *pool, ls_impair_emit_fn emit, void *ctx) {
  if (!im) return;
  ls_impair_release(im, pool, UINT64_MAX, emit, ctx);
  free(im->line.q);
  free(im->held.q);
  free(im);
}
