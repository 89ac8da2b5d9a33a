/*
 * event.c — the single-producer / single-consumer event ring (see event.h).
 */
#include "event.h"

#include <errno.h>
#include <stdlib.h>

int ls_ring_init(ls_ring *r, uint32_t capacity) {
  uint32_t cap = 16;
  while (cap < capacity && cap < (1u << 30)) cap <<= 1;
  r->slots = calloc(cap, sizeof(*r->slots));
  if (!r->slots) return -ENOMEM;
  r->mask = cap - 1;
  atomic_init(&r->head, 0);
  atomic_init(&r->tail, 0);
  atomic_init(&r->dropped, 0);
  return 0;
}

void ls_ring_fini(ls_ring *r) {
  free(r->slots);
  r->slots = NULL;
}

uint32_t ls_ring_pop(ls_ring *r, ls_event *out, uint32_t max) {
  uint32_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
  uint32_t h = atomic_load_explicit(&r->head, memory_order_acquire);
  uint32_t n = h - t;
  if (n > max) n = max;
  for (uint32_t i = 0; i < n; i++) out[i] = r->slots[(t + i) & r->mask];
  atomic_store_explicit(&r->tail, t + n, memory_order_release);
  return n;
}

uint32_t ls_ring_pending(ls_ring *r) {
  uint32_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
  uint32_t h = atomic_load_explicit(&r->head, memory_order_acquire);
  return h - t;
}
