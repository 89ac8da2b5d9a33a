/*
 * buf.h — reference-counted frame buffers and the size-classed pool they come from.
 *
 * Owns: ls_buf (one frame's bytes plus a reference count) and ls_pool (per-class free
 * lists). A frame is received straight into a pool buffer; forwarding to N ports takes N
 * references to the same buffer, so a flood never copies. The pool belongs to one
 * runtime and is only touched by that runtime's data-plane thread: no locks, no atomics.
 * Free lists are bounded, so memory returns to the system after a burst: what the pool
 * frees beyond them is counted (freed), and the runtime has the allocator give it back
 * (malloc_trim, see runtime.c) — glibc otherwise keeps a burst's worth of freed frames
 * resident for good.
 */
#ifndef LS_BUF_H
#define LS_BUF_H

#include <stdint.h>

#include "offload.h"

enum { LS_POOL_CLASSES = 3 };

typedef struct ls_buf {
  struct ls_buf *next; /* free list link */
  uint32_t refs;
  uint32_t len;  /* bytes of frame, starting at data[head] */
  uint32_t cap;  /* bytes available in data[] */
  uint16_t head; /* headroom before the frame */
  uint8_t cls;   /* size class, for returning to the right free list */
  ls_vnet vnet;  /* offload metadata (virtio-net header); all zero for a plain frame */
  uint8_t data[];
} ls_buf;

static inline uint8_t *ls_buf_frame(ls_buf *b) {
  return b->data + b->head;
}

typedef struct ls_pool {
  ls_buf *free[LS_POOL_CLASSES];
  uint32_t nfree[LS_POOL_CLASSES];
  uint64_t live;      /* buffers handed out and not yet returned */
  uint64_t allocated; /* buffers currently allocated (live + free) */
  uint64_t bytes;     /* ... and their size, headers included */
  uint64_t freed;     /* bytes given back to malloc since the runtime last trimmed */
} ls_pool;

/* Data capacity of each class, ascending. The last one holds the largest frame. */
extern const uint32_t ls_pool_class_cap[LS_POOL_CLASSES];

void ls_pool_init(ls_pool *p);
/* Releases the free lists. Buffers still live are the caller's leak. */
void ls_pool_fini(ls_pool *p);

/* Smallest class whose capacity is at least size bytes. */
uint8_t ls_pool_class_for(uint32_t size);

/* A buffer of class cls with one reference, or NULL when memory is exhausted. */
ls_buf *ls_pool_get(ls_pool *p, uint8_t cls);
void ls_pool_put(ls_pool *p, ls_buf *b);

static inline void ls_buf_ref(ls_buf *b) {
  b->refs++;
}
static inline void ls_buf_unref(ls_pool *p, ls_buf *b) {
  if (--b->refs == 0) ls_pool_put(p, b);
}

#endif
