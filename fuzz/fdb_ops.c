/*
 * fdb_ops.c — libFuzzer target: sequences of MAC table operations checked against a model.
 *
 * Owns: the driver and its model. A table (fdb.c) with four owners and 48 keys (16 MACs in
 * VLANs 0, 10 and 4094) gets a random sequence of learn, add (dynamic, sticky, static),
 * delete, flush (by owner, VLAN, kind), clock steps with aging (whole or on a budget),
 * caps (table and owner, raised and lowered), eviction policies, aging times (table and
 * per VLAN) and owners leaving. Before and after each operation the whole table is read
 * back through ls_fdb_lookup (and must agree with iteration and the counters), and the
 * difference must be what the operation allows:
 *  - learn: the result matches what was there (known, pinned, moved, refused, new), the
 *    key ends up on the learner, at most the entries a cap allows are evicted, and with
 *    the "oldest" policy the victim is the least recently seen;
 *  - add replaces the key and evicts at most one other learned entry; del removes exactly
 *    the key; flush exactly the matching entries (its count too);
 *  - aging removes exactly the learned entries whose time is up — none seen within their
 *    class's aging time (the model keeps exact last-seen times, the table keeps them to
 *    the granule in effect when they were seen), every one seen before it when the budget
 *    allows;
 *  - caps hold after every learn and after lowering; static entries never go away
 *    except by delete, flush or their owner leaving;
 *  - every implicit removal (age, eviction) is notified, and nothing else is;
 *  - ls_fdb_check passes, and ls_fdb_next_expiry is the earliest expiry of any entry.
 */
#include <errno.h>

#include "fdb.h"
#include "fuzz.h"

#define NOWNERS 4
#define NMACS 16
#define NKEYS (3 * NMACS)

static const uint16_t key_vlans[3] = {0, 10, 4094};

typedef struct {
  bool present;
  int owner;
  uint16_t flags;
  uint64_t seen; /* the table's (to the granule) */
} snap_entry;

typedef struct {
  ls_fdb f;
  ls_fdb_owner own[NOWNERS];
  bool registered[NOWNERS];
  uint64_t model_seen[NKEYS]; /* exact time of the last learn/add that refreshed the key */
  uint64_t slack[NKEYS];      /* how far the table's time may lag it: the granule then */
  uint64_t now;
  uint32_t notes[4]; /* by enum ls_fdb_note, during one operation */
  bool snapped;      /* the operation took its "after" snapshot */
} world;

static uint64_t key_of(int k) {
  return ls_fdb_key(key_vlans[k / NMACS], 0x020000000000ULL + (uint64_t)(k % NMACS) + 1);
}

LS_NO_COVERAGE static int owner_index(world *w, const ls_fdb_owner *o) {
  for (int i = 0; i < NOWNERS; i++)
    if (&w->own[i] == o) return i;
  FZ_CHECK(0, "an entry with an unknown owner");
  return -1;
}

static void notify(void *ctx, enum ls_fdb_note what, const ls_fdb_entry *e, ls_fdb_owner *old,
                   uint64_t now) {
  world *w = ctx;
  (void)e, (void)old, (void)now;
  w->notes[what]++;
}

static uint64_t class_aging(world *w, int k) {
  uint64_t a;
  if (ls_fdb_vlan_aging(&w->f, key_vlans[k / NMACS], &a)) return a;
  return ls_fdb_aging(&w->f);
}

/* The table through lookups; it must agree with iteration and the counters. */
LS_NO_COVERAGE static void snapshot(world *w, snap_entry *s) {
  w->snapped = true;
  uint32_t count = 0, dyn = 0, nstatic = 0, per_owner[NOWNERS] = {0};
  for (int k = 0; k < NKEYS; k++) {
    ls_fdb_entry *e = ls_fdb_lookup(&w->f, key_of(k));
    s[k].present = e != NULL;
    if (!e) continue;
    FZ_CHECK(e->key == key_of(k), "lookup returned another key");
    s[k].owner = owner_index(w, e->owner);
    FZ_CHECK(w->registered[s[k].owner], "an entry on an owner that left");
    s[k].flags = e->flags;
    s[k].seen = e->seen;
    count++;
    if (e->flags & LS_FDB_STATIC) {
      nstatic++;
    } else {
      dyn++;
      per_owner[s[k].owner]++;
    }
  }
  uint32_t iter = 0;
  LS_FDB_FOREACH(&w->f, e) {
    (void)e;
    iter++;
  }
  FZ_CHECK(iter == count && w->f.count == count, "%u iterated, %u counted, %u found", iter,
           w->f.count, count);
  FZ_CHECK(w->f.dyn == dyn && w->f.nstatic == nstatic, "dyn %u/%u static %u/%u", w->f.dyn, dyn,
           w->f.nstatic, nstatic);
  for (int i = 0; i < NOWNERS; i++)
    if (w->registered[i])
      FZ_CHECK(w->own[i].dyn == per_owner[i], "owner %d: dyn %u, found %u", i, w->own[i].dyn,
               per_owner[i]);
  const char *bad = ls_fdb_check(&w->f);
  FZ_CHECK(bad == NULL, "ls_fdb_check: %s", bad);
  /* the next expiry is the earliest of all learned entries' */
  uint64_t next = UINT64_MAX;
  for (int k = 0; k < NKEYS; k++) {
    if (!s[k].present || (s[k].flags & LS_FDB_STATIC)) continue;
    uint64_t a = class_aging(w, k);
    if (a && s[k].seen + a < next) next = s[k].seen + a;
  }
  FZ_CHECK(ls_fdb_next_expiry(&w->f) == next, "next expiry %llu, expected %llu",
           (unsigned long long)ls_fdb_next_expiry(&w->f), (unsigned long long)next);
}

/* Entries of a that b no longer has, checking nothing else changed except `except`. */
LS_NO_COVERAGE static uint32_t removed(const snap_entry *a, const snap_entry *b, int except,
                                       uint64_t *mask) {
  uint32_t n = 0;
  *mask = 0;
  for (int k = 0; k < NKEYS; k++) {
    if (k == except) continue;
    if (a[k].present && !b[k].present) {
      n++;
      *mask |= 1ULL << k;
      continue;
    }
    FZ_CHECK(a[k].present == b[k].present, "key %d appeared", k);
    if (!a[k].present) continue;
    FZ_CHECK(a[k].owner == b[k].owner && a[k].flags == b[k].flags, "key %d changed", k);
  }
  return n;
}

LS_NO_COVERAGE static void check_no_static_removed(const snap_entry *a, uint64_t mask) {
  for (int k = 0; k < NKEYS; k++)
    if (mask >> k & 1) FZ_CHECK(!(a[k].flags & LS_FDB_STATIC), "static key %d evicted", k);
}

LS_NO_COVERAGE static uint32_t owner_dyn(const snap_entry *s, int o) {
  uint32_t n = 0;
  for (int k = 0; k < NKEYS; k++)
    if (s[k].present && s[k].owner == o && !(s[k].flags & LS_FDB_STATIC)) n++;
  return n;
}

LS_NO_COVERAGE static uint32_t table_dyn(const snap_entry *s) {
  uint32_t n = 0;
  for (int k = 0; k < NKEYS; k++)
    if (s[k].present && !(s[k].flags & LS_FDB_STATIC)) n++;
  return n;
}

/* "oldest": every victim was seen no later than any learned entry that stayed. */
LS_NO_COVERAGE static void check_oldest(const snap_entry *a, const snap_entry *b, uint64_t mask,
                                        int except) {
  uint64_t vmax = 0, kmin = UINT64_MAX;
  for (int k = 0; k < NKEYS; k++) {
    if (mask >> k & 1) {
      if (a[k].seen > vmax) vmax = a[k].seen;
    } else if (k != except && b[k].present && !(b[k].flags & LS_FDB_STATIC)) {
      if (a[k].seen < kmin) kmin = a[k].seen;
    }
  }
  FZ_CHECK(vmax <= kmin, "evicted an entry seen at %llu, kept one seen at %llu",
           (unsigned long long)vmax, (unsigned long long)kmin);
}

static void op_learn(world *w, ls_fz *z, const snap_entry *a, snap_entry *b) {
  int k = (int)fz_below(z, NKEYS), o = (int)fz_below(z, NOWNERS);
  if (!w->registered[o]) return;
  uint32_t odyn = owner_dyn(a, o), tdyn = table_dyn(a);
  uint32_t omax = w->own[o].max, max = w->f.max;
  int evict = w->f.evict;
  uint64_t granule = w->f.granule;
  int r = ls_fdb_learn(&w->f, key_of(k), &w->own[o], w->now);
  snapshot(w, b);
  uint64_t mask;
  uint32_t gone = removed(a, b, k, &mask);
  check_no_static_removed(a, mask);
  FZ_CHECK(w->notes[LS_FDB_AGE] == 0, "aged while learning");
  FZ_CHECK(w->notes[LS_FDB_EVICT] == gone, "%u evictions notified, %u entries gone",
           w->notes[LS_FDB_EVICT], gone);
  bool owner_full = omax && odyn >= omax;
  if (a[k].present && a[k].owner == o) {
    FZ_CHECK(r == LS_LEARN_KNOWN, "known key: result %d", r);
  } else if (a[k].present && (a[k].flags & (LS_FDB_STATIC | LS_FDB_STICKY))) {
    FZ_CHECK(r == LS_LEARN_PINNED, "pinned key: result %d", r);
  } else if (a[k].present) {
    FZ_CHECK(r == LS_LEARN_MOVED || r == LS_LEARN_REFUSED_OWNER, "move: result %d", r);
    if (r == LS_LEARN_REFUSED_OWNER) FZ_CHECK(owner_full, "refused below the owner's cap");
  } else {
    FZ_CHECK(r == LS_LEARN_NEW || r == LS_LEARN_REFUSED || r == LS_LEARN_REFUSED_OWNER,
             "new key: result %d", r);
    if (r == LS_LEARN_REFUSED) FZ_CHECK(tdyn >= max && evict == LS_EVICT_REFUSE, "refused");
    if (r == LS_LEARN_REFUSED_OWNER) FZ_CHECK(owner_full, "refused below the owner's cap");
  }
  if (r == LS_LEARN_NEW || r == LS_LEARN_MOVED || r == LS_LEARN_KNOWN) {
    FZ_CHECK(b[k].present && b[k].owner == o, "key %d not on owner %d after learning", k, o);
    if (r != LS_LEARN_KNOWN) FZ_CHECK(b[k].flags == 0, "learned with flags %u", b[k].flags);
    w->model_seen[k] = w->now;
    w->slack[k] = r == LS_LEARN_KNOWN ? granule : 0; /* a refresh is to the granule */
    FZ_CHECK(!omax || owner_dyn(b, o) <= omax || odyn > omax, "owner cap %u exceeded", omax);
    FZ_CHECK(table_dyn(b) <= max || tdyn > max || r != LS_LEARN_NEW, "table cap exceeded");
  } else {
    FZ_CHECK(gone == 0, "a refused learn removed %u entries", gone);
    FZ_CHECK(a[k].present == b[k].present && (!a[k].present || a[k].owner == b[k].owner),
             "a refused learn changed the key");
  }
  FZ_CHECK(gone <= 2, "one learn evicted %u entries", gone);
  if (gone && r == LS_LEARN_NEW && !owner_full && evict == LS_EVICT_OLDEST)
    check_oldest(a, b, mask, k);
  if (gone && owner_full && r != LS_LEARN_NEW)
    for (int j = 0; j < NKEYS; j++)
      if (mask >> j & 1) FZ_CHECK(a[j].owner == o, "the owner's cap evicted another's entry");
}

static void op_add(world *w, ls_fz *z, const snap_entry *a, snap_entry *b) {
  static const uint16_t flags[] = {0, LS_FDB_STATIC, LS_FDB_STICKY};
  int k = (int)fz_below(z, NKEYS), o = (int)fz_below(z, NOWNERS);
  uint16_t fl = flags[fz_below(z, 3)];
  if (!w->registered[o]) return;
  int r = ls_fdb_add(&w->f, key_of(k), &w->own[o], fl, w->now);
  snapshot(w, b);
  uint64_t mask;
  uint32_t gone = removed(a, b, k, &mask);
  check_no_static_removed(a, mask);
  FZ_CHECK(w->notes[LS_FDB_EVICT] == gone && w->notes[LS_FDB_AGE] == 0 &&
               w->notes[LS_FDB_LEARN] == 0 && w->notes[LS_FDB_MOVE] == 0,
           "add: notes do not match");
  if (r == 0) {
    FZ_CHECK(b[k].present && b[k].owner == o && b[k].flags == fl, "add: key %d not as added", k);
    FZ_CHECK(gone <= 1 && (gone == 0 || !(fl & LS_FDB_STATIC)), "add evicted %u", gone);
    if (!(fl & LS_FDB_STATIC)) w->model_seen[k] = w->now, w->slack[k] = 0;
  } else {
    FZ_CHECK(r == -ENOSPC, "add: %d", r);
    FZ_CHECK(gone == 0 && b[k].present == a[k].present, "a refused add changed the table");
  }
}

static void op_del(world *w, ls_fz *z, const snap_entry *a, snap_entry *b) {
  int k = (int)fz_below(z, NKEYS);
  int r = ls_fdb_del(&w->f, key_of(k));
  snapshot(w, b);
  uint64_t mask;
  FZ_CHECK(removed(a, b, k, &mask) == 0, "del removed other keys");
  FZ_CHECK(r == (a[k].present ? 1 : 0) && !b[k].present, "del: %d", r);
}

static void op_flush(world *w, ls_fz *z, const snap_entry *a, snap_entry *b) {
  uint8_t c = fz_u8(z);
  int o = (int)fz_below(z, NOWNERS);
  if ((c & 1) && !w->registered[o]) return;
  ls_fdb_filter flt = {.owner = (c & 1) ? &w->own[o] : NULL,
                       .vlan = (c & 2) ? key_vlans[fz_below(z, 3)] : -1,
                       .dynamic = c & 4,
                       .statics = c & 8};
  uint32_t n = ls_fdb_flush(&w->f, &flt);
  snapshot(w, b);
  uint64_t mask;
  uint32_t gone = removed(a, b, -1, &mask);
  FZ_CHECK(n == gone, "flush said %u, removed %u", n, gone);
  for (int k = 0; k < NKEYS; k++) {
    if (!a[k].present) continue;
    bool match = (!flt.owner || a[k].owner == o) &&
                 (flt.vlan < 0 || key_vlans[k / NMACS] == flt.vlan) &&
                 ((a[k].flags & LS_FDB_STATIC) ? flt.statics : flt.dynamic);
    FZ_CHECK(match == !b[k].present, "flush: key %d %s", k, match ? "kept" : "removed");
  }
  FZ_CHECK(w->notes[0] + w->notes[1] + w->notes[2] + w->notes[3] == 0, "flush notified");
}

static void op_age(world *w, ls_fz *z, const snap_entry *a, snap_entry *b) {
  static const uint64_t steps[] = {0, 1, 1000, 1000000, 62500000, LS_NSEC, 10 * LS_NSEC};
  uint8_t c = fz_u8(z);
  w->now += c < 240 ? steps[c % 7] : fz_u32(z);
  uint32_t budget = fz_bool(z) ? UINT32_MAX : fz_below(z, 4);
  uint32_t n = ls_fdb_age(&w->f, w->now, budget);
  snapshot(w, b);
  uint64_t mask;
  uint32_t gone = removed(a, b, -1, &mask);
  FZ_CHECK(n == gone && w->notes[LS_FDB_AGE] == gone && w->notes[LS_FDB_EVICT] == 0,
           "age said %u, removed %u, notified %u", n, gone, w->notes[LS_FDB_AGE]);
  FZ_CHECK(n <= budget, "aged %u over a budget of %u", n, budget);
  for (int k = 0; k < NKEYS; k++) {
    if (!a[k].present) continue;
    uint64_t ag = class_aging(w, k);
    bool learned = !(a[k].flags & LS_FDB_STATIC);
    bool may = learned && ag && a[k].seen + ag <= w->now;
    if (mask >> k & 1) FZ_CHECK(may, "key %d aged early", k);
    FZ_CHECK(!may || a[k].seen <= w->model_seen[k], "seen in the future");
    /* kept if seen within its aging time, to the granule in effect when it was seen (a
     * granule that shrank since, with a shorter aging time, does not make that finer) */
    if (learned && ag && w->model_seen[k] + ag >= w->now + w->slack[k] + 1)
      FZ_CHECK(b[k].present, "key %d aged although seen %llu ns ago (aging %llu, slack %llu)", k,
               (unsigned long long)(w->now - w->model_seen[k]), (unsigned long long)ag,
               (unsigned long long)w->slack[k]);
    if (budget == UINT32_MAX && may) FZ_CHECK(!b[k].present, "key %d outlived its aging", k);
  }
}

static void op_caps(world *w, ls_fz *z, const snap_entry *a, snap_entry *b) {
  uint8_t c = fz_u8(z) % 3;
  uint64_t mask;
  if (c == 0) {
    uint32_t max = 1 + fz_below(z, 20);
    int policy = w->f.evict;
    ls_fdb_set_max(&w->f, max, w->now);
    snapshot(w, b);
    uint32_t gone = removed(a, b, -1, &mask);
    check_no_static_removed(a, mask);
    FZ_CHECK(w->notes[LS_FDB_EVICT] == gone, "set_max: notes");
    FZ_CHECK(table_dyn(b) <= max, "set_max %u left %u", max, table_dyn(b));
    FZ_CHECK(gone == 0 || table_dyn(a) > max, "set_max evicted below the cap");
    if (gone && policy != LS_EVICT_PORT) check_oldest(a, b, mask, -1);
  } else if (c == 1) {
    int o = (int)fz_below(z, NOWNERS);
    uint32_t max = fz_below(z, 6);
    if (!w->registered[o]) return;
    ls_fdb_set_owner_max(&w->f, &w->own[o], max, w->now);
    snapshot(w, b);
    uint32_t gone = removed(a, b, -1, &mask);
    FZ_CHECK(w->notes[LS_FDB_EVICT] == gone, "set_owner_max: notes");
    for (int k = 0; k < NKEYS; k++)
      if (mask >> k & 1) FZ_CHECK(a[k].owner == o && !(a[k].flags & LS_FDB_STATIC), "owner cap");
    FZ_CHECK(!max || owner_dyn(b, o) <= max, "owner cap %u left %u", max, owner_dyn(b, o));
  } else {
    ls_fdb_set_evict(&w->f, (int)fz_below(z, 3));
    snapshot(w, b);
    FZ_CHECK(removed(a, b, -1, &mask) == 0, "set_evict removed entries");
  }
}

static void op_aging(world *w, ls_fz *z, const snap_entry *a, snap_entry *b) {
  static const uint64_t agings[] = {0, 1, 16, 1000000, LS_NSEC, 300 * LS_NSEC};
  uint64_t ag = agings[fz_below(z, 6)];
  uint64_t mask;
  if (fz_bool(z)) {
    ls_fdb_set_aging(&w->f, ag);
  } else {
    int r = ls_fdb_set_vlan_aging(&w->f, key_vlans[fz_below(z, 3)], ag, fz_bool(z));
    FZ_CHECK(r == 0, "set_vlan_aging: %d", r);
  }
  snapshot(w, b);
  FZ_CHECK(removed(a, b, -1, &mask) == 0, "changing aging removed entries");
  FZ_CHECK(w->notes[0] + w->notes[1] + w->notes[2] + w->notes[3] == 0, "aging change notified");
  for (int k = 0; k < NKEYS; k++)
    FZ_CHECK(!a[k].present || a[k].seen == b[k].seen, "changing aging changed a seen time");
}

static void op_owner(world *w, ls_fz *z, const snap_entry *a, snap_entry *b) {
  int o = (int)fz_below(z, NOWNERS);
  uint64_t mask;
  if (w->registered[o]) {
    ls_fdb_owner_remove(&w->f, &w->own[o]);
    w->registered[o] = false;
    snapshot(w, b);
    removed(a, b, -1, &mask);
    for (int k = 0; k < NKEYS; k++)
      FZ_CHECK((a[k].present && a[k].owner == o) == ((mask >> k & 1) != 0), "owner left: key %d",
               k);
  } else {
    FZ_CHECK(ls_fdb_owner_add(&w->f, &w->own[o]) == 0, "owner add");
    w->registered[o] = true;
    snapshot(w, b);
    FZ_CHECK(removed(a, b, -1, &mask) == 0, "owner joining changed the table");
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static world w;
  ls_fz z = {data, size};
  memset(&w, 0, sizeof(w));
  static const uint64_t agings[] = {0, 16, 1000000, LS_NSEC, 300 * LS_NSEC};
  if (ls_fdb_init(&w.f, 1 + fz_below(&z, 20), agings[fz_below(&z, 5)], (int)fz_below(&z, 3),
                  fz_u32(&z)) != 0)
    return 0;
  ls_fdb_set_notify(&w.f, notify, &w);
  for (int i = 0; i < NOWNERS; i++) {
    FZ_CHECK(ls_fdb_owner_add(&w.f, &w.own[i]) == 0, "owner add");
    w.registered[i] = true;
  }
  w.now = 1000 * LS_NSEC;
  snap_entry s[2][NKEYS];
  int cur = 0;
  snapshot(&w, s[cur]);
  for (int step = 0; step < 512 && fz_more(&z); step++) {
    memset(w.notes, 0, sizeof(w.notes));
    w.snapped = false;
    const snap_entry *a = s[cur];
    snap_entry *b = s[cur ^ 1];
    uint8_t op = fz_u8(&z) % 16;
    if (op < 6)
      op_learn(&w, &z, a, b);
    else if (op < 8)
      op_add(&w, &z, a, b);
    else if (op == 8)
      op_del(&w, &z, a, b);
    else if (op == 9)
      op_flush(&w, &z, a, b);
    else if (op < 12)
      op_age(&w, &z, a, b);
    else if (op < 14)
      op_caps(&w, &z, a, b);
    else if (op == 14)
      op_aging(&w, &z, a, b);
    else
      op_owner(&w, &z, a, b);
    if (!w.snapped) snapshot(&w, b); /* ops that returned early left b stale */
    cur ^= 1;
  }
  for (int i = 0; i < NOWNERS; i++)
    if (w.registered[i]) ls_fdb_owner_remove(&w.f, &w.own[i]);
  FZ_CHECK(w.f.count == 0, "%u entries without owners", w.f.count);
  ls_fdb_fini(&w.f);
  return 0;
}
