/*
 * admit.c — the admission table (see admit.h).
 */
#include "admit.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define SLOTS (2 * LS_ADMIT_MAX) /* load <= 1/2 */

static uint32_t home(const ls_admit *a, uint64_t key) {
  uint64_t h = key ^ a->salt;
  h ^= h >> 31;
  h *= 0x9e3779b97f4a7c15ULL;
  h ^= h >> 29;
  return (uint32_t)h & a->mask;
}

void ls_admit_init(ls_admit *a, uint64_t salt, uint64_t ttl_pending, uint64_t ttl_refused) {
  memset(a, 0, sizeof(*a));
  a->salt = salt;
  a->mask = SLOTS - 1;
  a->ttl_pending = ttl_pending;
  a->ttl_refused = ttl_refused;
}

void ls_admit_fini(ls_admit *a) {
  free(a->slots);
  a->slots = NULL;
  a->count = 0;
}

static uint32_t find(const ls_admit *a, uint64_t key) {
  if (!a->slots) return UINT32_MAX;
  for (uint32_t i = home(a, key);; i = (i + 1) & a->mask) {
    if (a->slots[i].key == key) return i;
    if (a->slots[i].key == 0) return UINT32_MAX;
  }
}

/* Backward-shift deletion, as in the FDB: no tombstones. */
static void delete_at(ls_admit *a, uint32_t i) {
  uint32_t j = i;
  for (;;) {
    j = (j + 1) & a->mask;
    uint64_t k = a->slots[j].key;
    if (k == 0) break;
    uint32_t h = home(a, k);
    bool stays = (i <= j) ? (h > i && h <= j) : (h > i || h <= j);
    if (!stays) {
      a->slots[i] = a->slots[j];
      i = j;
    }
  }
  a->slots[i].key = 0;
  a->count--;
}

static bool expired(const ls_admit *a, const ls_admit_entry *e, uint64_t now) {
  uint64_t ttl = e->state == LS_ADMIT_PENDING ? a->ttl_pending : a->ttl_refused;
  return now - e->time >= ttl;
}

int ls_admit_state(ls_admit *a, uint64_t key, const void *owner, uint64_t now) {
  uint32_t i = find(a, key);
  if (i == UINT32_MAX) return LS_ADMIT_NONE;
  ls_admit_entry *e = &a->slots[i];
  if (expired(a, e, now)) {
    delete_at(a, i);
    return LS_ADMIT_NONE;
  }
  return e->owner == owner ? e->state : LS_ADMIT_NONE;
}

int ls_admit_set(ls_admit *a, uint64_t key, const void *owner, int state, uint64_t now) {
  if (!a->slots && !(a->slots = calloc(SLOTS, sizeof(ls_admit_entry)))) return -ENOMEM;
  uint32_t i = find(a, key);
  if (i == UINT32_MAX) {
    if (a->count >= LS_ADMIT_MAX) { /* sweep out what expired */
      for (uint32_t j = 0; j <= a->mask;) {
        if (a->slots[j].key && expired(a, &a->slots[j], now))
          delete_at(a, j); /* j now holds what shifted in: look again */
        else
          j++;
      }
      if (a->count >= LS_ADMIT_MAX) return -ENOSPC;
    }
    for (i = home(a, key); a->slots[i].key != 0; i = (i + 1) & a->mask) {
    }
    a->slots[i].key = key;
    a->count++;
  }
  a->slots[i].owner = owner;
  a->slots[i].state = (uint8_t)state;
  a->slots[i].time = now;
  return 0;
}

void ls_admit_del(ls_admit *a, uint64_t key) {
  uint32_t i = find(a, key);
  if (i != UINT32_MAX) delete_at(a, i);
}

void ls_admit_forget_owner(ls_admit *a, const void *owner) {
  if (!a->count) return; /* nothing to walk the slots for */
  for (uint32_t j = 0; j <= a->mask;) {
    if (a->slots[j].key && a->slots[j].owner == owner)
      delete_at(a, j);
    else
      j++;
  }
}
