/*
 * buf.c — the frame buffer pool (see buf.h for the design).
 */
#include "buf.h"
#include "frame.h"

#include <stdlib.h>
#include <string.h>

const uint32_t ls_pool_class_cap[LS_POOL_CLASSES] = {2048, 16384, LS_FRAME_MAX + 64};

/* How many free buffers each class keeps before returning memory to the system. */
static const uint32_t keep_free[LS_POOL_CLASSES] = {8192, 512, 64};

void ls_pool_init(ls_pool *p) {
  for (int i = 0; i < LS_POOL_CLASSES; i++) {
    p->free[i] = NULL;
    p->nfree[i] = 0;
  }
  p->live = p->allocated = p->bytes = p->freed = 0;
}

void ls_pool_fini(ls_pool *p) {
  for (int i = 0; i < LS_POOL_CLASSES; i++) {
    while (p->free[i]) {
      ls_buf *b = p->free[i];
      p->free[i] = b->next;
      p->bytes -= sizeof(ls_buf) + b->cap;
      free(b);
      p->allocated--;
    }
    p->nfree[i] = 0;
  }
}

uint8_t ls_pool_class_for(uint32_t size) {
  for (uint8_t i = 0; i < LS_POOL_CLASSES; i++)
    if (size <= ls_pool_class_cap[i]) return i;
  return LS_POOL_CLASSES - 1;
}

ls_buf *ls_pool_get(ls_pool *p, uint8_t cls) {
  ls_buf *b = p->free[cls];
  if (b) {
    p->free[cls] = b->next;
    p->nfree[cls]--;
  } else {
    b = malloc(sizeof(ls_buf) + ls_pool_class_cap[cls]);
    if (!b) return NULL;
    b->cap = ls_pool_class_cap[cls];
    b->cls = cls;
    p->allocated++;
    p->bytes += sizeof(ls_buf) + b->cap;
  }
  b->refs = 1;
  b->len = 0;
  b->head = 0;
  b->next = NULL;
  memset(&b->vnet, 0, sizeof(b->vnet));
  p->live++;
  return b;
}

void ls_pool_put(ls_pool *p, ls_buf *b) {
  p->live--;
  uint8_t cls = b->cls;
  if (p->nfree[cls] >= keep_free[cls]) {
    free(b);
    p->allocated--;
    p->bytes -= sizeof(ls_buf) + ls_pool_class_cap[cls];
    p->freed += sizeof(ls_buf) + ls_pool_class_cap[cls];
    return;
  }
  b->next = p->free[cls];
  p->free[cls] = b;
  p->nfree[cls]++;
}
