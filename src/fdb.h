/*
 * fdb.h — the MAC learning table (forwarding database) of one switch.
 *
 * What it is. A map from (VLAN, MAC) to the port ("owner") a frame from that address
 * last arrived on. The data plane calls ls_fdb_learn() with every frame's source and
 * ls_fdb_lookup() with every frame's destination, so both are O(1) and allocation-free
 * in the common case, at a million entries as at ten.
 *
 * What makes it hard.
 *  - Lookups are per frame. Keys are packed into one 64-bit word (bit 63 set, VLAN in
 *    bits 48..59, MAC in bits 0..47) and kept in an open-addressing table with linear
 *    probing (load <= 1/2) whose slots hold the key next to the entry index, so a hit
 *    costs one slot probe and one entry read. The hash is salted per table so that an
 *    attacker choosing source MACs cannot aim them at one probe chain.
 *  - Aging must cost O(entries that expire), not a sweep of the table. Dynamic entries
 *    sit on an LRU list ordered by last-seen time; expiry walks from the head and
 *    stops at the first live entry (as Open vSwitch's mac-learning does). Keeping the
 *    list ordered means moving an entry to the tail when it is seen again; to keep that
 *    off most frames, "seen" is advanced only when it is at least `granule` old
 *    (10 ms, or less for very short aging times), so the last-seen time is exact to the
 *    granule and the per-frame cost is one compare.
 *  - Aging can differ per VLAN. Entries are grouped in aging classes — class 0 with the
 *    table's aging time, and one class per VLAN given its own (at most
 *    LS_FDB_CLASSES - 1) — each with its own LRU list, so every list stays ordered and
 *    expiry still stops at the first live entry of each. Giving a VLAN its own aging
 *    moves its entries to a new list in order; taking it back merges the two lists.
 *  - The table is capped (max_macs, counting learned entries; static entries are
 *    configuration and do not count). A full table either refuses the new address or
 *    evicts: the globally oldest entry, or the oldest entry of the owner with the most
 *    entries (Open vSwitch's fair policy, which keeps one flooding port from pushing
 *    everyone else out). Owners are kept in a max-heap by entry count for the latter.
 *    An owner may have its own cap too: at it, a new address either is refused (policy
 *    "refuse") or replaces that owner's oldest entry.
 *  - Memory stays flat at the cap: entries are recycled through a free list and the
 *    arrays only grow (doubling) until they fit the cap.
 *
 * Entry kinds. Dynamic entries age and move when the address shows up on another
 * owner. Sticky entries age but never move. Static entries neither age nor move.
 *
 * Thread safety: none. A table belongs to one switch, which belongs to one data-plane
 * thread; the control plane reaches it only through runtime commands.
 */
#ifndef LS_FDB_H
#define LS_FDB_H

#include <stdbool.h>
#include <stdint.h>

#include "common.h"

#define LS_FDB_MAX_MACS (1u << 24)   /* documented limit on max_macs */
#define LS_FDB_MAX_STATIC (1u << 20) /* limit on static + sticky entries */
#define LS_FDB_KEY_VALID (1ULL << 63)
#define LS_FDB_CLASSES 64 /* aging classes: the table's, and up to 63 VLANs with their own */

enum ls_fdb_flags { LS_FDB_STATIC = 1, LS_FDB_STICKY = 2 };

enum ls_fdb_evict { LS_EVICT_REFUSE = 0, LS_EVICT_OLDEST = 1, LS_EVICT_PORT = 2 };

enum ls_fdb_note { LS_FDB_LEARN, LS_FDB_MOVE, LS_FDB_AGE, LS_FDB_EVICT };

/* Result of ls_fdb_learn(). */
enum ls_fdb_result {
  LS_LEARN_KNOWN = 0,         /* already there, same owner */
  LS_LEARN_NEW = 1,           /* inserted (possibly after an eviction) */
  LS_LEARN_MOVED = 2,         /* moved from another owner */
  LS_LEARN_REFUSED = 3,       /* table full and the policy refused it */
  LS_LEARN_PINNED = 4,        /* static or sticky entry on another owner: not moved */
  LS_LEARN_REFUSED_OWNER = 5, /* the owner is at its own cap and the policy refused it */
};

/* Per-owner (per-port) bookkeeping; embed one in each port. */
typedef struct ls_fdb_owner {
  uint32_t head, tail;   /* this owner's learned entries, oldest first */
  uint32_t shead;        /* this owner's static entries (singly ordered by insertion) */
  uint32_t dyn, nstatic; /* counts */
  uint32_t heap_pos;     /* index in the fairness heap */
  uint32_t max;          /* cap on this owner's learned entries, 0: none */
} ls_fdb_owner;

typedef struct ls_fdb_entry {
  uint64_t key; /* 0 when free */
  ls_fdb_owner *owner;
  uint64_t seen;         /* ns, last time a frame came from this address (to the granule) */
  uint64_t hits;         /* frames forwarded to this address */
  uint32_t prev, next;   /* global LRU list (dynamic) / global static list / free list */
  uint32_t oprev, onext; /* owner's list */
  uint16_t flags;
  uint8_t cls; /* aging class (dynamic entries) */
} ls_fdb_entry;

typedef struct ls_fdb_stats {
  uint64_t learned, moved, aged, evicted, refused, pinned, deleted;
  uint64_t refused_owner; /* refused by an owner's cap (also counted in refused) */
} ls_fdb_stats;

/* An aging class: its dynamic entries oldest first, and their aging time. */
typedef struct ls_fdb_class {
  uint32_t head, tail;
  uint64_t aging; /* ns; 0 = never */
  uint16_t vlan;  /* classes > 0: the VLAN */
} ls_fdb_class;

typedef struct ls_fdb_slot {
  uint64_t key;
  uint32_t idx;
  uint32_t pad;
} ls_fdb_slot;

typedef void (*ls_fdb_notify_fn)(void *ctx, enum ls_fdb_note what, const ls_fdb_entry *e,
                                 ls_fdb_owner *old_owner, uint64_t now);

typedef struct ls_fdb {
  ls_fdb_slot *slots;
  uint32_t mask; /* slot count - 1 */
  ls_fdb_entry *ent;
  uint32_t ent_cap, ent_used, free_head;
  uint32_t count; /* all entries */
  uint32_t dyn;   /* learned (dynamic + sticky) entries: these count toward max */
  uint32_t nstatic;
  uint32_t max;
  ls_fdb_class cls[LS_FDB_CLASSES]; /* [0]: the table's aging (cls[0].aging) */
  uint32_t ncls;
  uint8_t *vlan_cls;         /* VLAN -> class (4096 bytes), NULL while every VLAN is in 0 */
  uint32_t st_head, st_tail; /* static entries */
  uint64_t granule;          /* smallest over the classes */
  int evict;
  uint64_t salt;
  ls_fdb_owner **heap;
  uint32_t heap_len, heap_cap;
  ls_fdb_stats stats;
  ls_fdb_notify_fn notify;
  void *notify_ctx;
} ls_fdb;

static inline uint64_t ls_fdb_key(uint16_t vlan, uint64_t mac48) {
  return LS_FDB_KEY_VALID | ((uint64_t)(vlan & 0xfff) << 48) | (mac48 & 0xffffffffffffULL);
}
static inline uint16_t ls_fdb_key_vlan(uint64_t key) {
  return (uint16_t)((key >> 48) & 0xfff);
}
static inline uint64_t ls_fdb_key_mac(uint64_t key) {
  return key & 0xffffffffffffULL;
}

/* 0 or -ENOMEM. salt should be random. */
int ls_fdb_init(ls_fdb *f, uint32_t max, uint64_t aging_ns, int evict, uint64_t salt);
void ls_fdb_fini(ls_fdb *f);
void ls_fdb_set_notify(ls_fdb *f, ls_fdb_notify_fn fn, void *ctx);

/* Owners must be registered before use and removed (which flushes them) before freeing. */
int ls_fdb_owner_add(ls_fdb *f, ls_fdb_owner *o);
void ls_fdb_owner_remove(ls_fdb *f, ls_fdb_owner *o);

static inline uint64_t ls_fdb_hash(const ls_fdb *f, uint64_t key) {
  uint64_t h = key ^ f->salt;
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

static inline ls_fdb_entry *ls_fdb_lookup(const ls_fdb *f, uint64_t key) {
  uint32_t i = (uint32_t)ls_fdb_hash(f, key) & f->mask;
  for (;;) {
    uint64_t k = f->slots[i].key;
    if (k == key) return &f->ent[f->slots[i].idx];
    if (k == 0) return NULL;
    i = (i + 1) & f->mask;
  }
}

int ls_fdb_learn_slow(ls_fdb *f, uint64_t key, ls_fdb_owner *o, uint64_t now);
void ls_fdb_refresh(ls_fdb *f, ls_fdb_entry *e, uint64_t now);

/* Learn that key was seen on owner o at time now. The per-frame entry point. */
static inline int ls_fdb_learn(ls_fdb *f, uint64_t key, ls_fdb_owner *o, uint64_t now) {
  ls_fdb_entry *e = ls_fdb_lookup(f, key);
  if (LS_LIKELY(e != NULL && e->owner == o)) {
    if (LS_UNLIKELY(now - e->seen >= f->granule)) ls_fdb_refresh(f, e, now);
    return LS_LEARN_KNOWN;
  }
  return ls_fdb_learn_slow(f, key, o, now);
}

/*
 * Add or replace a configured entry (flags: LS_FDB_STATIC and/or LS_FDB_STICKY; 0 makes
 * a plain dynamic entry). Replaces whatever entry the key had. 0, -ENOSPC when the
 * static limit or (for dynamic entries) the cap with policy "refuse" is reached, or
 * -ENOMEM.
 */
int ls_fdb_add(ls_fdb *f, uint64_t key, ls_fdb_owner *o, uint16_t flags, uint64_t now);
/* 1 if an entry was removed, 0 if there was none. */
int ls_fdb_del(ls_fdb *f, uint64_t key);

typedef struct ls_fdb_filter {
  ls_fdb_owner *owner; /* NULL = any */
  int vlan;            /* -1 = any */
  bool dynamic;        /* remove learned (dynamic and sticky) entries */
  bool statics;        /* remove static entries */
} ls_fdb_filter;
/* Removes matching entries without notifications; returns how many. */
uint32_t ls_fdb_flush(ls_fdb *f, const ls_fdb_filter *flt);

/* Expire entries whose last-seen time plus aging is <= now, at most budget of them.
 * Returns how many expired. */
uint32_t ls_fdb_age(ls_fdb *f, uint64_t now, uint32_t budget);
/* Time at which the next entry expires, or UINT64_MAX. */
uint64_t ls_fdb_next_expiry(const ls_fdb *f);

void ls_fdb_set_aging(ls_fdb *f, uint64_t aging_ns);
static inline uint64_t ls_fdb_aging(const ls_fdb *f) {
  return f->cls[0].aging;
}
/* Give VLAN vlan its own aging time (aging_ns, 0 = never), or with clear, the table's
 * again. 0, or -ENOSPC when LS_FDB_CLASSES - 1 VLANs already have their own, -ENOMEM. */
int ls_fdb_set_vlan_aging(ls_fdb *f, uint16_t vlan, uint64_t aging_ns, bool clear);
/* The VLAN's own aging time into *aging_ns: true, or false if it has none. */
bool ls_fdb_vlan_aging(const ls_fdb *f, uint16_t vlan, uint64_t *aging_ns);
/* Cap owner o's learned entries (0: no cap); lowering it evicts o's oldest at once. */
void ls_fdb_set_owner_max(ls_fdb *f, ls_fdb_owner *o, uint32_t max, uint64_t now);
/* Lower or raise the cap; lowering evicts (oldest first, or fairly with policy "port"). */
void ls_fdb_set_max(ls_fdb *f, uint32_t max, uint64_t now);
void ls_fdb_set_evict(ls_fdb *f, int evict);

/* Bytes allocated by the table (slots, entries, heap). */
static inline uint64_t ls_fdb_memory(const ls_fdb *f) {
  return ((uint64_t)f->mask + 1) * sizeof(ls_fdb_slot) +
         (uint64_t)f->ent_cap * sizeof(ls_fdb_entry) +
         (uint64_t)f->heap_cap * sizeof(ls_fdb_owner *);
}

/* Iterate over all entries (order unspecified). A table that never held one has no entry
 * array (ent is NULL): no pointer arithmetic on it then. */
#define LS_FDB_FOREACH(f, e)                                                                       \
  for (ls_fdb_entry *e = (f)->ent; e && e < (f)->ent + (f)->ent_used; e++)                         \
    if (e->key != 0)

/* Check every internal invariant; returns NULL or a description of the first violation. */
const char *ls_fdb_check(const ls_fdb *f);

#endif
