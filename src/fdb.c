/*
 * fdb.c — the MAC learning table. See fdb.h for the design essay.
 */
#include "fdb.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define GRANULE_MAX (10ULL * 1000 * 1000) /* 10 ms */
#define INITIAL_SLOTS 64u

/* ---- index-linked lists ------------------------------------------------------------- */

/* Global list (prev/next) with explicit head/tail. */
static void glist_push_tail(ls_fdb *f, uint32_t *head, uint32_t *tail, uint32_t i) {
  ls_fdb_entry *e = &f->ent[i];
  e->next = LS_NONE;
  e->prev = *tail;
  if (*tail != LS_NONE)
    f->ent[*tail].next = i;
  else
    *head = i;
  *tail = i;
}

static void glist_unlink(ls_fdb *f, uint32_t *head, uint32_t *tail, uint32_t i) {
  ls_fdb_entry *e = &f->ent[i];
  if (e->prev != LS_NONE)
    f->ent[e->prev].next = e->next;
  else
    *head = e->next;
  if (e->next != LS_NONE)
    f->ent[e->next].prev = e->prev;
  else
    *tail = e->prev;
  e->prev = e->next = LS_NONE;
}

/* Owner's dynamic list (oprev/onext) with head/tail in the owner. */
static void olist_push_tail(ls_fdb *f, ls_fdb_owner *o, uint32_t i) {
  ls_fdb_entry *e = &f->ent[i];
  e->onext = LS_NONE;
  e->oprev = o->tail;
  if (o->tail != LS_NONE)
    f->ent[o->tail].onext = i;
  else
    o->head = i;
  o->tail = i;
}

static void olist_unlink(ls_fdb *f, ls_fdb_owner *o, uint32_t i) {
  ls_fdb_entry *e = &f->ent[i];
  if (e->oprev != LS_NONE)
    f->ent[e->oprev].onext = e->onext;
  else
    o->head = e->onext;
  if (e->onext != LS_NONE)
    f->ent[e->onext].oprev = e->oprev;
  else
    o->tail = e->oprev;
  e->oprev = e->onext = LS_NONE;
}

/* Owner's static list: doubly linked through oprev/onext, head only. */
static void slist_push(ls_fdb *f, ls_fdb_owner *o, uint32_t i) {
  ls_fdb_entry *e = &f->ent[i];
  e->oprev = LS_NONE;
  e->onext = o->shead;
  if (o->shead != LS_NONE) f->ent[o->shead].oprev = i;
  o->shead = i;
}

static void slist_unlink(ls_fdb *f, ls_fdb_owner *o, uint32_t i) {
  ls_fdb_entry *e = &f->ent[i];
  if (e->oprev != LS_NONE)
    f->ent[e->oprev].onext = e->onext;
  else
    o->shead = e->onext;
  if (e->onext != LS_NONE) f->ent[e->onext].oprev = e->oprev;
  e->oprev = e->onext = LS_NONE;
}

/* ---- fairness heap: owners by learned-entry count, largest on top ------------------- */

static void heap_swap(ls_fdb *f, uint32_t a, uint32_t b) {
  ls_fdb_owner *t = f->heap[a];
  f->heap[a] = f->heap[b];
  f->heap[b] = t;
  f->heap[a]->heap_pos = a;
  f->heap[b]->heap_pos = b;
}

static void heap_up(ls_fdb *f, uint32_t i) {
  while (i > 0) {
    uint32_t p = (i - 1) / 2;
    if (f->heap[p]->dyn >= f->heap[i]->dyn) break;
    heap_swap(f, p, i);
    i = p;
  }
}

static void heap_down(ls_fdb *f, uint32_t i) {
  for (;;) {
    uint32_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < f->heap_len && f->heap[l]->dyn > f->heap[m]->dyn) m = l;
    if (r < f->heap_len && f->heap[r]->dyn > f->heap[m]->dyn) m = r;
    if (m == i) break;
    heap_swap(f, i, m);
    i = m;
  }
}

/* ---- slots ----------------------------------------------------------------------------- */

static uint32_t slot_find(const ls_fdb *f, uint64_t key) {
  uint32_t i = (uint32_t)ls_fdb_hash(f, key) & f->mask;
  for (;;) {
    if (f->slots[i].key == key) return i;
    if (f->slots[i].key == 0) return LS_NONE;
    i = (i + 1) & f->mask;
  }
}

static void slot_insert(ls_fdb *f, uint64_t key, uint32_t idx) {
  uint32_t i = (uint32_t)ls_fdb_hash(f, key) & f->mask;
  while (f->slots[i].key != 0) i = (i + 1) & f->mask;
  f->slots[i].key = key;
  f->slots[i].idx = idx;
}

/* Backward-shift deletion: no tombstones, probe chains stay short. */
static void slot_delete(ls_fdb *f, uint32_t i) {
  uint32_t j = i;
  for (;;) {
    j = (j + 1) & f->mask;
    uint64_t k = f->slots[j].key;
    if (k == 0) break;
    uint32_t home = (uint32_t)ls_fdb_hash(f, k) & f->mask;
    /* The entry at j may move to i unless its home lies cyclically in (i, j]. */
    bool stays = (i <= j) ? (home > i && home <= j) : (home > i || home <= j);
    if (!stays) {
      f->slots[i] = f->slots[j];
      i = j;
    }
  }
  f->slots[i].key = 0;
}

static int slots_resize(ls_fdb *f, uint32_t nslots) {
  ls_fdb_slot *ns = calloc(nslots, sizeof(*ns));
  if (!ns) return -ENOMEM;
  free(f->slots);
  f->slots = ns;
  f->mask = nslots - 1;
  for (uint32_t i = 0; i < f->ent_used; i++)
    if (f->ent[i].key) slot_insert(f, f->ent[i].key, i);
  return 0;
}

/* ---- entries ---------------------------------------------------------------------------- */

/* Make room for one more entry: slots at load <= 1/2, one free entry. */
static int reserve_one(ls_fdb *f) {
  if ((uint64_t)(f->count + 1) * 2 > (uint64_t)f->mask + 1) {
    int r = slots_resize(f, (f->mask + 1) * 2);
    if (r) return r;
  }
  if (f->free_head == LS_NONE && f->ent_used == f->ent_cap) {
    uint32_t ncap = f->ent_cap ? f->ent_cap * 2 : INITIAL_SLOTS / 2;
    ls_fdb_entry *ne = realloc(f->ent, (size_t)ncap * sizeof(*ne));
    if (!ne) return -ENOMEM;
    f->ent = ne;
    f->ent_cap = ncap;
  }
  return 0;
}

static uint32_t entry_alloc(ls_fdb *f) {
  uint32_t i;
  if (f->free_head != LS_NONE) {
    i = f->free_head;
    f->free_head = f->ent[i].next;
  } else {
    i = f->ent_used++;
  }
  return i;
}

static uint8_t class_of(const ls_fdb *f, uint64_t key) {
  return f->vlan_cls ? f->vlan_cls[ls_fdb_key_vlan(key)] : 0;
}

#define LRU(f, e) (&(f)->cls[(e)->cls])

static uint32_t insert(ls_fdb *f, uint64_t key, ls_fdb_owner *o, uint16_t flags, uint64_t now) {
  uint32_t i = entry_alloc(f);
  ls_fdb_entry *e = &f->ent[i];
  e->key = key;
  e->owner = o;
  e->seen = now;
  e->hits = 0;
  e->flags = flags;
  f->count++;
  if (flags & LS_FDB_STATIC) {
    glist_push_tail(f, &f->st_head, &f->st_tail, i);
    slist_push(f, o, i);
    o->nstatic++;
    f->nstatic++;
  } else {
    e->cls = class_of(f, key);
    glist_push_tail(f, &LRU(f, e)->head, &LRU(f, e)->tail, i);
    olist_push_tail(f, o, i);
    o->dyn++;
    f->dyn++;
    heap_up(f, o->heap_pos);
  }
  slot_insert(f, key, i);
  return i;
}

static void remove_entry(ls_fdb *f, uint32_t i, int note, uint64_t now) {
  ls_fdb_entry *e = &f->ent[i];
  ls_fdb_owner *o = e->owner;
  if (note >= 0 && f->notify) f->notify(f->notify_ctx, (enum ls_fdb_note)note, e, NULL, now);
  if (e->flags & LS_FDB_STATIC) {
    glist_unlink(f, &f->st_head, &f->st_tail, i);
    slist_unlink(f, o, i);
    o->nstatic--;
    f->nstatic--;
  } else {
    glist_unlink(f, &LRU(f, e)->head, &LRU(f, e)->tail, i);
    olist_unlink(f, o, i);
    o->dyn--;
    f->dyn--;
    heap_down(f, o->heap_pos);
  }
  f->count--;
  slot_delete(f, slot_find(f, e->key));
  e->key = 0;
  e->owner = NULL;
  e->next = f->free_head;
  f->free_head = i;
}

/* The oldest learned entry of all (the oldest of the class heads). */
static uint32_t oldest(const ls_fdb *f) {
  uint32_t best = LS_NONE;
  for (uint32_t c = 0; c < f->ncls; c++) {
    uint32_t h = f->cls[c].head;
    if (h != LS_NONE && (best == LS_NONE || f->ent[h].seen < f->ent[best].seen)) best = h;
  }
  return best;
}

/* Pick a learned entry to evict: the oldest overall, or the oldest of the biggest owner. */
static uint32_t pick_victim(const ls_fdb *f, int policy) {
  if (policy == LS_EVICT_PORT && f->heap_len > 0 && f->heap[0]->dyn > 0) return f->heap[0]->head;
  return oldest(f);
}

/* ---- public API --------------------------------------------------------------------------- */

static uint64_t granule_for(uint64_t aging) {
  if (aging == 0) return GRANULE_MAX;
  uint64_t g = aging / 16;
  if (g > GRANULE_MAX) g = GRANULE_MAX;
  return g ? g : 1;
}

/* The refresh granule: fine enough for the shortest aging time of any class. */
static void update_granule(ls_fdb *f) {
  uint64_t g = GRANULE_MAX;
  for (uint32_t c = 0; c < f->ncls; c++) {
    uint64_t gc = granule_for(f->cls[c].aging);
    if (gc < g) g = gc;
  }
  f->granule = g;
}

int ls_fdb_init(ls_fdb *f, uint32_t max, uint64_t aging_ns, int evict, uint64_t salt) {
  memset(f, 0, sizeof(*f));
  f->free_head = LS_NONE;
  f->cls[0].head = f->cls[0].tail = LS_NONE;
  f->cls[0].aging = aging_ns;
  f->ncls = 1;
  f->st_head = f->st_tail = LS_NONE;
  f->max = max;
  update_granule(f);
  f->evict = evict;
  f->salt = salt;
  f->slots = calloc(INITIAL_SLOTS, sizeof(*f->slots));
  if (!f->slots) return -ENOMEM;
  f->mask = INITIAL_SLOTS - 1;
  return 0;
}

void ls_fdb_fini(ls_fdb *f) {
  free(f->vlan_cls);
  free(f->slots);
  free(f->ent);
  free(f->heap);
  memset(f, 0, sizeof(*f));
}

void ls_fdb_set_notify(ls_fdb *f, ls_fdb_notify_fn fn, void *ctx) {
  f->notify = fn;
  f->notify_ctx = ctx;
}

int ls_fdb_owner_add(ls_fdb *f, ls_fdb_owner *o) {
  if (f->heap_len == f->heap_cap) {
    uint32_t ncap = f->heap_cap ? f->heap_cap * 2 : 8;
    ls_fdb_owner **nh = realloc(f->heap, ncap * sizeof(*nh));
    if (!nh) return -ENOMEM;
    f->heap = nh;
    f->heap_cap = ncap;
  }
  o->head = o->tail = o->shead = LS_NONE;
  o->dyn = o->nstatic = 0;
  o->max = 0;
  o->heap_pos = f->heap_len;
  f->heap[f->heap_len++] = o;
  return 0;
}

void ls_fdb_owner_remove(ls_fdb *f, ls_fdb_owner *o) {
  ls_fdb_filter flt = {.owner = o, .vlan = -1, .dynamic = true, .statics = true};
  ls_fdb_flush(f, &flt);
  uint32_t pos = o->heap_pos;
  uint32_t last = f->heap_len - 1;
  if (pos != last) heap_swap(f, pos, last);
  f->heap_len--;
  if (pos < f->heap_len) {
    ls_fdb_owner *moved = f->heap[pos];
    heap_up(f, pos);
    heap_down(f, moved->heap_pos);
  }
  o->heap_pos = LS_NONE;
}

void ls_fdb_refresh(ls_fdb *f, ls_fdb_entry *e, uint64_t now) {
  e->seen = now;
  if (e->flags & LS_FDB_STATIC) return;
  uint32_t i = (uint32_t)(e - f->ent);
  ls_fdb_class *c = LRU(f, e);
  if (c->tail != i) {
    glist_unlink(f, &c->head, &c->tail, i);
    glist_push_tail(f, &c->head, &c->tail, i);
  }
  ls_fdb_owner *o = e->owner;
  if (o->tail != i) {
    olist_unlink(f, o, i);
    olist_push_tail(f, o, i);
  }
}

/* o is at its own cap: make room (its oldest goes), or refuse. True if there is room. */
static bool owner_room(ls_fdb *f, ls_fdb_owner *o, uint64_t now) {
  if (!o->max || o->dyn < o->max) return true;
  if (f->evict == LS_EVICT_REFUSE || o->head == LS_NONE) {
    f->stats.refused++;
    f->stats.refused_owner++;
    return false;
  }
  remove_entry(f, o->head, LS_FDB_EVICT, now);
  f->stats.evicted++;
  return true;
}

int ls_fdb_learn_slow(ls_fdb *f, uint64_t key, ls_fdb_owner *o, uint64_t now) {
  ls_fdb_entry *e = ls_fdb_lookup(f, key);
  if (e) {
    if (e->flags & (LS_FDB_STATIC | LS_FDB_STICKY)) {
      f->stats.pinned++;
      return LS_LEARN_PINNED;
    }
    if (!owner_room(f, o, now)) return LS_LEARN_REFUSED_OWNER;
    uint32_t i = (uint32_t)(e - f->ent);
    ls_fdb_owner *old = e->owner;
    olist_unlink(f, old, i);
    old->dyn--;
    heap_down(f, old->heap_pos);
    e->owner = o;
    olist_push_tail(f, o, i);
    o->dyn++;
    heap_up(f, o->heap_pos);
    e->seen = now;
    ls_fdb_class *c = LRU(f, e);
    if (c->tail != i) {
      glist_unlink(f, &c->head, &c->tail, i);
      glist_push_tail(f, &c->head, &c->tail, i);
    }
    f->stats.moved++;
    if (f->notify) f->notify(f->notify_ctx, LS_FDB_MOVE, e, old, now);
    return LS_LEARN_MOVED;
  }
  if (!owner_room(f, o, now)) return LS_LEARN_REFUSED_OWNER;
  if (f->dyn >= f->max) {
    uint32_t v = f->evict == LS_EVICT_REFUSE ? LS_NONE : pick_victim(f, f->evict);
    if (v == LS_NONE) {
      f->stats.refused++;
      return LS_LEARN_REFUSED;
    }
    remove_entry(f, v, LS_FDB_EVICT, now);
    f->stats.evicted++;
  }
  if (reserve_one(f) != 0) {
    f->stats.refused++;
    return LS_LEARN_REFUSED;
  }
  uint32_t i = insert(f, key, o, 0, now);
  f->stats.learned++;
  if (f->notify) f->notify(f->notify_ctx, LS_FDB_LEARN, &f->ent[i], NULL, now);
  return LS_LEARN_NEW;
}

int ls_fdb_add(ls_fdb *f, uint64_t key, ls_fdb_owner *o, uint16_t flags, uint64_t now) {
  ls_fdb_entry *e = ls_fdb_lookup(f, key);
  bool is_static = (flags & LS_FDB_STATIC) != 0;
  /* Check the limits before touching anything, counting the entry being replaced. */
  bool replaces_static = e && (e->flags & LS_FDB_STATIC);
  bool replaces_dyn = e && !(e->flags & LS_FDB_STATIC);
  if (is_static && !replaces_static && f->nstatic >= LS_FDB_MAX_STATIC) return -ENOSPC;
  if (!is_static && !replaces_dyn && f->dyn >= f->max && f->evict == LS_EVICT_REFUSE)
    return -ENOSPC;
  if (!e && reserve_one(f) != 0) return -ENOMEM;
  if (e) remove_entry(f, (uint32_t)(e - f->ent), -1, now);
  if (!is_static && f->dyn >= f->max) {
    uint32_t v = pick_victim(f, f->evict);
    if (v != LS_NONE) {
      remove_entry(f, v, LS_FDB_EVICT, now);
      f->stats.evicted++;
    }
  }
  insert(f, key, o, flags, now);
  return 0;
}

int ls_fdb_del(ls_fdb *f, uint64_t key) {
  ls_fdb_entry *e = ls_fdb_lookup(f, key);
  if (!e) return 0;
  remove_entry(f, (uint32_t)(e - f->ent), -1, 0);
  f->stats.deleted++;
  return 1;
}

static bool flush_match(const ls_fdb_entry *e, const ls_fdb_filter *flt) {
  if (flt->owner && e->owner != flt->owner) return false;
  if (flt->vlan >= 0 && ls_fdb_key_vlan(e->key) != (uint16_t)flt->vlan) return false;
  return (e->flags & LS_FDB_STATIC) ? flt->statics : flt->dynamic;
}

uint32_t ls_fdb_flush(ls_fdb *f, const ls_fdb_filter *flt) {
  uint32_t n = 0;
  if (flt->owner) {
    ls_fdb_owner *o = flt->owner;
    for (int pass = 0; pass < 2; pass++) {
      uint32_t i = pass == 0 ? o->head : o->shead;
      while (i != LS_NONE) {
        uint32_t next = f->ent[i].onext;
        if (flush_match(&f->ent[i], flt)) {
          remove_entry(f, i, -1, 0);
          n++;
        }
        i = next;
      }
    }
  } else {
    for (uint32_t i = 0; i < f->ent_used; i++) {
      if (f->ent[i].key && flush_match(&f->ent[i], flt)) {
        remove_entry(f, i, -1, 0);
        n++;
      }
    }
  }
  f->stats.deleted += n;
  return n;
}

uint32_t ls_fdb_age(ls_fdb *f, uint64_t now, uint32_t budget) {
  uint32_t n = 0;
  for (uint32_t c = 0; c < f->ncls; c++) {
    ls_fdb_class *k = &f->cls[c];
    if (k->aging == 0) continue;
    while (n < budget && k->head != LS_NONE) {
      ls_fdb_entry *e = &f->ent[k->head];
      if (e->seen + k->aging > now) break;
      remove_entry(f, k->head, LS_FDB_AGE, now);
      n++;
    }
  }
  f->stats.aged += n;
  return n;
}

uint64_t ls_fdb_next_expiry(const ls_fdb *f) {
  uint64_t next = UINT64_MAX;
  for (uint32_t c = 0; c < f->ncls; c++) {
    const ls_fdb_class *k = &f->cls[c];
    if (k->aging == 0 || k->head == LS_NONE) continue;
    uint64_t t = f->ent[k->head].seen + k->aging;
    if (t < next) next = t;
  }
  return next;
}

void ls_fdb_set_aging(ls_fdb *f, uint64_t aging_ns) {
  f->cls[0].aging = aging_ns;
  update_granule(f);
}

bool ls_fdb_vlan_aging(const ls_fdb *f, uint16_t vlan, uint64_t *aging_ns) {
  uint8_t c = f->vlan_cls ? f->vlan_cls[vlan & 0xfff] : 0;
  if (c == 0) return false;
  *aging_ns = f->cls[c].aging;
  return true;
}

/* Append to class dst, in order, the entries of class src that satisfy keep (vlan < 0:
 * all of them), merging by last-seen time with what dst already holds. */
static void move_entries(ls_fdb *f, uint32_t src, uint32_t dst, int vlan) {
  ls_fdb_class *s = &f->cls[src], *d = &f->cls[dst];
  /* Take the matching entries out of src, keeping their order. */
  uint32_t mh = LS_NONE, mt = LS_NONE;
  for (uint32_t i = s->head; i != LS_NONE;) {
    uint32_t next = f->ent[i].next;
    if (vlan < 0 || ls_fdb_key_vlan(f->ent[i].key) == (uint16_t)vlan) {
      glist_unlink(f, &s->head, &s->tail, i);
      glist_push_tail(f, &mh, &mt, i);
    }
    i = next;
  }
  /* Merge the two ordered lists into dst. */
  uint32_t a = d->head, b = mh;
  d->head = d->tail = LS_NONE;
  while (a != LS_NONE || b != LS_NONE) {
    uint32_t i;
    if (b == LS_NONE || (a != LS_NONE && f->ent[a].seen <= f->ent[b].seen)) {
      i = a;
      a = f->ent[a].next;
    } else {
      i = b;
      b = f->ent[b].next;
    }
    f->ent[i].cls = (uint8_t)dst;
    glist_push_tail(f, &d->head, &d->tail, i);
  }
}

int ls_fdb_set_vlan_aging(ls_fdb *f, uint16_t vlan, uint64_t aging_ns, bool clear) {
  vlan &= 0xfff;
  uint8_t c = f->vlan_cls ? f->vlan_cls[vlan] : 0;
  if (clear) {
    if (c == 0) return 0;
    move_entries(f, c, 0, -1);
    f->vlan_cls[vlan] = 0;
    /* Keep the classes dense: the last one takes the freed number. */
    uint32_t last = f->ncls - 1;
    if (c != last) {
      f->cls[c] = f->cls[last];
      for (uint32_t i = f->cls[c].head; i != LS_NONE; i = f->ent[i].next) f->ent[i].cls = c;
      f->vlan_cls[f->cls[c].vlan] = c;
    }
    f->ncls--;
    update_granule(f);
    return 0;
  }
  if (c == 0) {
    if (f->ncls == LS_FDB_CLASSES) return -ENOSPC;
    if (!f->vlan_cls && !(f->vlan_cls = calloc(4096, 1))) return -ENOMEM;
    c = (uint8_t)f->ncls++;
    f->cls[c].head = f->cls[c].tail = LS_NONE;
    f->cls[c].vlan = vlan;
    f->vlan_cls[vlan] = c;
    move_entries(f, 0, c, vlan);
  }
  f->cls[c].aging = aging_ns;
  update_granule(f);
  return 0;
}

void ls_fdb_set_owner_max(ls_fdb *f, ls_fdb_owner *o, uint32_t max, uint64_t now) {
  o->max = max;
  while (max && o->dyn > max && o->head != LS_NONE) {
    remove_entry(f, o->head, LS_FDB_EVICT, now);
    f->stats.evicted++;
  }
}

void ls_fdb_set_evict(ls_fdb *f, int evict) {
  f->evict = evict;
}

void ls_fdb_set_max(ls_fdb *f, uint32_t max, uint64_t now) {
  f->max = max;
  int policy = f->evict == LS_EVICT_PORT ? LS_EVICT_PORT : LS_EVICT_OLDEST;
  while (f->dyn > f->max) {
    uint32_t v = pick_victim(f, policy);
    if (v == LS_NONE) break;
    remove_entry(f, v, LS_FDB_EVICT, now);
    f->stats.evicted++;
  }
}

/* ---- invariants (tests) -------------------------------------------------------------------- */

LS_NO_COVERAGE const char *ls_fdb_check(const ls_fdb *f) {
  uint32_t live = 0, dyn = 0, st = 0;
  for (uint32_t i = 0; i < f->ent_used; i++) {
    const ls_fdb_entry *e = &f->ent[i];
    if (!e->key) continue;
    live++;
    if (e->flags & LS_FDB_STATIC)
      st++;
    else
      dyn++;
    if (slot_find(f, e->key) == LS_NONE) return "entry missing from slots";
    if (f->slots[slot_find(f, e->key)].idx != i) return "slot points at the wrong entry";
  }
  if (live != f->count) return "count mismatch";
  if (dyn != f->dyn) return "dynamic count mismatch";
  if (st != f->nstatic) return "static count mismatch";
  uint32_t nslots = 0;
  for (uint32_t i = 0; i <= f->mask; i++)
    if (f->slots[i].key) nslots++;
  if (nslots != f->count) return "slot count mismatch";
  if ((uint64_t)f->count * 2 > (uint64_t)f->mask + 1) return "load factor above 1/2";
  /* LRU lists: every dynamic entry on its class's list, each ordered by seen. */
  uint32_t n = 0, prev = LS_NONE;
  if (f->ncls < 1 || f->ncls > LS_FDB_CLASSES) return "bad class count";
  for (uint32_t c = 0; c < f->ncls; c++) {
    uint64_t last = 0;
    prev = LS_NONE;
    if (c > 0 && (!f->vlan_cls || f->vlan_cls[f->cls[c].vlan] != c)) return "class map wrong";
    for (uint32_t i = f->cls[c].head; i != LS_NONE; i = f->ent[i].next) {
      const ls_fdb_entry *e = &f->ent[i];
      if (!e->key || (e->flags & LS_FDB_STATIC)) return "bad entry on LRU";
      if (e->cls != c || class_of(f, e->key) != c) return "entry on the wrong class list";
      if (e->prev != prev) return "LRU back link broken";
      if (e->seen < last) return "LRU not ordered by last-seen time";
      last = e->seen;
      prev = i;
      if (++n > f->count) return "LRU cycle";
    }
    if (prev != f->cls[c].tail) return "LRU tail wrong";
  }
  if (n != f->dyn) return "LRU length mismatch";
  /* Owners: counts, lists, heap order. */
  uint32_t odyn = 0, ost = 0;
  for (uint32_t h = 0; h < f->heap_len; h++) {
    const ls_fdb_owner *o = f->heap[h];
    if (o->heap_pos != h) return "heap position wrong";
    if (h > 0 && f->heap[(h - 1) / 2]->dyn < o->dyn) return "heap order violated";
    uint32_t c = 0;
    prev = LS_NONE;
    for (uint32_t i = o->head; i != LS_NONE; i = f->ent[i].onext) {
      if (f->ent[i].owner != o) return "owner list holds another owner's entry";
      if (f->ent[i].oprev != prev) return "owner list back link broken";
      prev = i;
      if (++c > f->count) return "owner list cycle";
    }
    if (prev != o->tail) return "owner tail wrong";
    if (c != o->dyn) return "owner dynamic count mismatch";
    c = 0;
    for (uint32_t i = o->shead; i != LS_NONE; i = f->ent[i].onext) {
      if (f->ent[i].owner != o || !(f->ent[i].flags & LS_FDB_STATIC)) return "bad static entry";
      if (++c > f->count) return "static list cycle";
    }
    if (c != o->nstatic) return "owner static count mismatch";
    odyn += o->dyn;
    ost += o->nstatic;
  }
  if (odyn != f->dyn || ost != f->nstatic) return "owner totals mismatch";
  return NULL;
}
