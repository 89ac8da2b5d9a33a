/*
 * test_fdb.c — unit tests of the MAC table (src/fdb.c): learning, moves, pinning, aging
 * that stops at the first live entry, the cap and each eviction policy, flushes, and a
 * randomised run against a reference model with the invariant checker after every step.
 */
#include "check.h"
#include "fdb.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#define S LS_NSEC
#define MS 1000000ULL

typedef struct {
  int learn, move, age, evict;
  uint64_t last_key;
  ls_fdb_owner *last_old;
} notes;

static void note(void *ctx, enum ls_fdb_note what, const ls_fdb_entry *e, ls_fdb_owner *old,
                 uint64_t now) {
  (void)now;
  notes *n = ctx;
  n->last_key = e->key;
  n->last_old = old;
  switch (what) {
  case LS_FDB_LEARN:
    n->learn++;
    break;
  case LS_FDB_MOVE:
    n->move++;
    break;
  case LS_FDB_AGE:
    n->age++;
    break;
  case LS_FDB_EVICT:
    n->evict++;
    break;
  }
}

static uint64_t K(uint64_t mac) {
  return ls_fdb_key(0, mac);
}

static void test_learn_lookup_move(void) {
  ls_fdb f;
  ls_fdb_owner a, b;
  notes n = {0};
  CHECK_EQ(ls_fdb_init(&f, 100, 300 * S, LS_EVICT_OLDEST, 42), 0);
  ls_fdb_set_notify(&f, note, &n);
  ls_fdb_owner_add(&f, &a);
  ls_fdb_owner_add(&f, &b);
  CHECK_EQ(ls_fdb_learn(&f, K(1), &a, 0), LS_LEARN_NEW);
  CHECK_EQ(ls_fdb_learn(&f, K(1), &a, 1), LS_LEARN_KNOWN);
  CHECK_EQ(n.learn, 1);
  CHECK(ls_fdb_lookup(&f, K(1))->owner == &a);
  CHECK(ls_fdb_lookup(&f, K(2)) == NULL);
  /* Same MAC, other VLAN: a different entry. */
  CHECK_EQ(ls_fdb_learn(&f, ls_fdb_key(10, 1), &b, 2), LS_LEARN_NEW);
  CHECK_EQ(f.count, 2);
  /* Move. */
  CHECK_EQ(ls_fdb_learn(&f, K(1), &b, 3), LS_LEARN_MOVED);
  CHECK_EQ(n.move, 1);
  CHECK(n.last_old == &a);
  CHECK(ls_fdb_lookup(&f, K(1))->owner == &b);
  CHECK_EQ(a.dyn, 0);
  CHECK_EQ(b.dyn, 2);
  CHECK_EQ(f.stats.moved, 1);
  /* Static entries neither move nor age. */
  CHECK_EQ(ls_fdb_add(&f, K(9), &a, LS_FDB_STATIC, 4), 0);
  CHECK_EQ(ls_fdb_learn(&f, K(9), &b, 5), LS_LEARN_PINNED);
  CHECK(ls_fdb_lookup(&f, K(9))->owner == &a);
  CHECK_EQ(ls_fdb_age(&f, 1000 * S, UINT32_MAX), 2);
  CHECK(ls_fdb_lookup(&f, K(9)) != NULL);
  CHECK(ls_fdb_lookup(&f, K(1)) == NULL);
  /* Sticky entries age but never move. */
  CHECK_EQ(ls_fdb_add(&f, K(7), &a, LS_FDB_STICKY, 1000 * S), 0);
  CHECK_EQ(ls_fdb_learn(&f, K(7), &b, 1001 * S), LS_LEARN_PINNED);
  CHECK_EQ(f.stats.pinned, 2);
  CHECK_EQ(ls_fdb_age(&f, 1301 * S, UINT32_MAX), 1);
  CHECK(ls_fdb_lookup(&f, K(7)) == NULL);
  CHECK(ls_fdb_check(&f) == NULL);
  ls_fdb_owner_remove(&f, &a);
  ls_fdb_owner_remove(&f, &b);
  CHECK_EQ(f.count, 0);
  ls_fdb_fini(&f);
}

static void test_aging_refresh_and_order(void) {
  ls_fdb f;
  ls_fdb_owner a;
  notes n = {0};
  ls_fdb_init(&f, 1000, 300 * S, LS_EVICT_OLDEST, 7);
  ls_fdb_set_notify(&f, note, &n);
  ls_fdb_owner_add(&f, &a);
  for (uint64_t i = 0; i < 100; i++) ls_fdb_learn(&f, K(i + 1), &a, i * S);
  /* Refresh entry 1 at t=150: it must outlive entries 2..50. */
  ls_fdb_learn(&f, K(1), &a, 150 * S);
  CHECK(ls_fdb_check(&f) == NULL);
  CHECK_EQ(ls_fdb_next_expiry(&f), 301 * S); /* entry 2, seen at 1 s */
  /* At 350 s: entries seen at <= 50 s expire (2..51), entry 1 stays. */
  CHECK_EQ(ls_fdb_age(&f, 350 * S, UINT32_MAX), 50);
  CHECK_EQ(n.age, 50);
  CHECK(ls_fdb_lookup(&f, K(1)) != NULL);
  CHECK(ls_fdb_lookup(&f, K(51)) == NULL);
  CHECK(ls_fdb_lookup(&f, K(52)) != NULL);
  /* The budget bounds one pass. */
  CHECK_EQ(ls_fdb_age(&f, 10000 * S, 10), 10);
  CHECK_EQ(ls_fdb_age(&f, 10000 * S, UINT32_MAX), 40);
  CHECK_EQ(f.count, 0);
  /* A refresh within the granule does not reorder (and costs no list move). */
  ls_fdb_learn(&f, K(1), &a, 20000 * S);
  ls_fdb_learn(&f, K(2), &a, 20000 * S + 1);
  ls_fdb_learn(&f, K(1), &a, 20000 * S + 2 * MS);
  CHECK_EQ(f.cls[0].head, (uint32_t)(ls_fdb_lookup(&f, K(1)) - f.ent));
  /* Aging disabled: nothing expires. */
  ls_fdb_set_aging(&f, 0);
  CHECK_EQ(ls_fdb_age(&f, UINT64_MAX / 2, UINT32_MAX), 0);
  CHECK_EQ(ls_fdb_next_expiry(&f), UINT64_MAX);
  ls_fdb_owner_remove(&f, &a);
  ls_fdb_fini(&f);
}

static void test_cap_policies(void) {
  ls_fdb f;
  ls_fdb_owner a, b;
  notes n = {0};
  /* refuse */
  ls_fdb_init(&f, 10, 300 * S, LS_EVICT_REFUSE, 1);
  ls_fdb_set_notify(&f, note, &n);
  ls_fdb_owner_add(&f, &a);
  for (uint64_t i = 0; i < 100; i++) ls_fdb_learn(&f, K(i + 1), &a, i * MS * 20);
  CHECK_EQ(f.dyn, 10);
  CHECK_EQ(f.stats.refused, 90);
  CHECK(ls_fdb_lookup(&f, K(1)) != NULL);
  CHECK(ls_fdb_lookup(&f, K(11)) == NULL);
  /* Static entries do not count toward the cap. */
  CHECK_EQ(ls_fdb_add(&f, K(500), &a, LS_FDB_STATIC, 0), 0);
  CHECK_EQ(ls_fdb_add(&f, K(501), &a, 0, 0), -ENOSPC);
  ls_fdb_owner_remove(&f, &a);
  ls_fdb_fini(&f);

  /* oldest */
  memset(&n, 0, sizeof(n));
  ls_fdb_init(&f, 10, 300 * S, LS_EVICT_OLDEST, 1);
  ls_fdb_set_notify(&f, note, &n);
  ls_fdb_owner_add(&f, &a);
  for (uint64_t i = 0; i < 100; i++) ls_fdb_learn(&f, K(i + 1), &a, i * MS * 20);
  CHECK_EQ(f.dyn, 10);
  CHECK_EQ(f.stats.evicted, 90);
  CHECK_EQ(n.evict, 90);
  CHECK(ls_fdb_lookup(&f, K(90)) == NULL);
  CHECK(ls_fdb_lookup(&f, K(91)) != NULL);
  /* Lowering the cap evicts down to it. */
  ls_fdb_set_max(&f, 4, 10 * S);
  CHECK_EQ(f.dyn, 4);
  CHECK(ls_fdb_lookup(&f, K(97)) != NULL);
  CHECK(ls_fdb_lookup(&f, K(96)) == NULL);
  CHECK(ls_fdb_check(&f) == NULL);
  ls_fdb_owner_remove(&f, &a);
  ls_fdb_fini(&f);

  /* port: the port with the most entries loses its oldest */
  memset(&n, 0, sizeof(n));
  ls_fdb_init(&f, 10, 300 * S, LS_EVICT_PORT, 1);
  ls_fdb_set_notify(&f, note, &n);
  ls_fdb_owner_add(&f, &a);
  ls_fdb_owner_add(&f, &b);
  for (uint64_t i = 0; i < 3; i++) ls_fdb_learn(&f, K(5000 + i), &b, i * MS * 20); /* oldest */
  for (uint64_t i = 0; i < 1000; i++) ls_fdb_learn(&f, K(i + 1), &a, (100 + i) * MS * 20);
  CHECK_EQ(f.dyn, 10);
  CHECK_EQ(b.dyn, 3); /* b's old entries survive the flood from a */
  CHECK_EQ(a.dyn, 7);
  CHECK(ls_fdb_lookup(&f, K(5000)) != NULL);
  CHECK(ls_fdb_lookup(&f, K(1000)) != NULL);
  CHECK(ls_fdb_lookup(&f, K(993)) == NULL);
  CHECK(ls_fdb_check(&f) == NULL);
  ls_fdb_owner_remove(&f, &a);
  ls_fdb_owner_remove(&f, &b);
  ls_fdb_fini(&f);
}

static void test_flush(void) {
  ls_fdb f;
  ls_fdb_owner a, b;
  ls_fdb_init(&f, 1000, 300 * S, LS_EVICT_OLDEST, 3);
  ls_fdb_owner_add(&f, &a);
  ls_fdb_owner_add(&f, &b);
  for (uint64_t i = 0; i < 10; i++) {
    ls_fdb_learn(&f, ls_fdb_key(1, i + 1), &a, 0);
    ls_fdb_learn(&f, ls_fdb_key(2, i + 1), &b, 0);
  }
  ls_fdb_add(&f, K(77), &a, LS_FDB_STATIC, 0);
  ls_fdb_filter flt = {.owner = &a, .vlan = -1, .dynamic = true, .statics = false};
  CHECK_EQ(ls_fdb_flush(&f, &flt), 10);
  CHECK(ls_fdb_lookup(&f, K(77)) != NULL);
  flt = (ls_fdb_filter){.owner = NULL, .vlan = 2, .dynamic = true, .statics = true};
  CHECK_EQ(ls_fdb_flush(&f, &flt), 10);
  flt = (ls_fdb_filter){.owner = NULL, .vlan = -1, .dynamic = false, .statics = true};
  CHECK_EQ(ls_fdb_flush(&f, &flt), 1);
  CHECK_EQ(f.count, 0);
  CHECK(ls_fdb_check(&f) == NULL);
  CHECK_EQ(ls_fdb_del(&f, K(5)), 0);
  ls_fdb_learn(&f, K(5), &a, 0);
  CHECK_EQ(ls_fdb_del(&f, K(5)), 1);
  ls_fdb_owner_remove(&f, &a);
  ls_fdb_owner_remove(&f, &b);
  ls_fdb_fini(&f);
}

/* xorshift for reproducible randomness */
static uint64_t rng = 88172645463325252ULL;
static uint64_t rnd(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

/* Reference model: for each of a small key space, which owner (or none). */
static void test_random_against_model(void) {
  enum { KEYS = 300, OWNERS = 5, STEPS = 60000 };
  ls_fdb f;
  ls_fdb_owner o[OWNERS];
  int model[KEYS]; /* owner index or -1 */
  bool is_static[KEYS];
  uint64_t seen[KEYS];
  ls_fdb_init(&f, 100, 50 * S, LS_EVICT_PORT, 99);
  for (int i = 0; i < OWNERS; i++) ls_fdb_owner_add(&f, &o[i]);
  for (int k = 0; k < KEYS; k++) model[k] = -1, is_static[k] = false;
  uint64_t now = 0;
  int bad = 0;
  for (int step = 0; step < STEPS && !bad; step++) {
    int k = (int)(rnd() % KEYS), w = (int)(rnd() % OWNERS);
    uint64_t key = ls_fdb_key((uint16_t)(k % 3), (uint64_t)k + 1);
    switch (rnd() % 16) {
    case 0:
      now += rnd() % (5 * S);
      break;
    case 1:
      ls_fdb_add(&f, key, &o[w], LS_FDB_STATIC, now);
      model[k] = w, is_static[k] = true, seen[k] = now;
      break;
    case 2:
      ls_fdb_del(&f, key);
      model[k] = -1;
      break;
    case 3: {
      ls_fdb_age(&f, now, UINT32_MAX);
      for (int j = 0; j < KEYS; j++)
        if (model[j] >= 0 && !is_static[j] && seen[j] + 50 * S <= now) model[j] = -1;
      break;
    }
    case 4:
      if (rnd() % 50 == 0) {
        ls_fdb_filter flt = {.owner = &o[w], .vlan = -1, .dynamic = true, .statics = true};
        ls_fdb_flush(&f, &flt);
        for (int j = 0; j < KEYS; j++)
          if (model[j] == w) model[j] = -1;
      }
      break;
    default: {
      int r = ls_fdb_learn(&f, key, &o[w], now);
      if (r == LS_LEARN_NEW || r == LS_LEARN_MOVED) {
        model[k] = w, is_static[k] = false, seen[k] = now;
      } else if (r == LS_LEARN_KNOWN) {
        if (now - seen[k] >= f.granule) seen[k] = now;
      }
      break;
    }
    }
    /* Evictions are the one thing the model does not predict: resync from the table. */
    for (int j = 0; j < KEYS; j++) {
      uint64_t kj = ls_fdb_key((uint16_t)(j % 3), (uint64_t)j + 1);
      ls_fdb_entry *e = ls_fdb_lookup(&f, kj);
      if (model[j] >= 0 && !e) {
        if (is_static[j]) bad = 1; /* statics are never evicted */
        model[j] = -1;
      } else if (e && (model[j] < 0 || e->owner != &o[model[j]])) {
        bad = 2; /* the table holds something the model does not */
      }
    }
    if (f.dyn > f.max) bad = 3;
    const char *why = ls_fdb_check(&f);
    if (why) {
      fprintf(stderr, "step %d: %s\n", step, why);
      bad = 4;
    }
  }
  CHECK_EQ(bad, 0);
  for (int i = 0; i < OWNERS; i++) ls_fdb_owner_remove(&f, &o[i]);
  CHECK_EQ(f.count, 0);
  ls_fdb_fini(&f);
}

static double now_sec(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A million entries: every one found, lookups stay O(1), aging removes exactly the
 * expired ones. */
static void test_million(void) {
  enum { N = 1000000 };
  ls_fdb f;
  ls_fdb_owner a;
  ls_fdb_init(&f, N, 300 * S, LS_EVICT_OLDEST, 1234);
  ls_fdb_owner_add(&f, &a);
  for (uint64_t i = 0; i < N; i++) ls_fdb_learn(&f, K(i * 2654435761ULL + 1), &a, i);
  CHECK_EQ(f.dyn, N);
  double t0 = now_sec();
  uint64_t found = 0;
  for (uint64_t i = 0; i < N; i++) found += ls_fdb_lookup(&f, K(i * 2654435761ULL + 1)) != NULL;
  double t1 = now_sec();
  CHECK_EQ(found, N);
  /* Average probe length: O(1) means a small constant at load <= 1/2. */
  uint64_t probes = 0;
  for (uint64_t i = 0; i < N; i++) {
    uint64_t key = K(i * 2654435761ULL + 1);
    uint32_t s = (uint32_t)ls_fdb_hash(&f, key) & f.mask;
    uint32_t p = 1;
    while (f.slots[s].key != key) s = (s + 1) & f.mask, p++;
    probes += p;
  }
  double avg = (double)probes / N;
  printf("    1M entries: %.0f ns per lookup, %.2f probes on average\n", (t1 - t0) * 1e9 / N, avg);
  CHECK(avg < 2.5);
  /* Aging at a time where exactly the first 1000 expire. */
  CHECK_EQ(ls_fdb_age(&f, 300 * S + 999, UINT32_MAX), 1000);
  CHECK_EQ(f.dyn, N - 1000);
  ls_fdb_owner_remove(&f, &a);
  ls_fdb_fini(&f);
}

static void test_vlan_aging(void) {
  ls_fdb f;
  ls_fdb_owner a;
  notes n = {0};
  CHECK_EQ(ls_fdb_init(&f, 1000, 300 * S, LS_EVICT_OLDEST, 7), 0);
  ls_fdb_set_notify(&f, note, &n);
  ls_fdb_owner_add(&f, &a);
  /* Interleaved VLANs 10 and 20, one entry every second. */
  for (uint64_t i = 0; i < 20; i++) ls_fdb_learn(&f, ls_fdb_key(i % 2 ? 20 : 10, i), &a, i * S);
  CHECK(ls_fdb_check(&f) == NULL);
  CHECK_EQ(ls_fdb_set_vlan_aging(&f, 20, 5 * S, false), 0);
  CHECK(ls_fdb_check(&f) == NULL);
  uint64_t ag = 0;
  CHECK(ls_fdb_vlan_aging(&f, 20, &ag) && ag == 5 * S);
  CHECK(!ls_fdb_vlan_aging(&f, 10, &ag));
  /* VLAN 20's first entry (seen at 1 s) is due at 6 s, VLAN 10's at 300 s. */
  CHECK_EQ(ls_fdb_next_expiry(&f), 6 * S);
  CHECK_EQ(ls_fdb_age(&f, 10 * S, UINT32_MAX), 3u); /* seen at 1, 3, 5 */
  CHECK_EQ(n.age, 3);
  CHECK(ls_fdb_lookup(&f, ls_fdb_key(20, 7)) != NULL);
  CHECK(ls_fdb_lookup(&f, ls_fdb_key(10, 0)) != NULL);
  CHECK(ls_fdb_check(&f) == NULL);
  /* New entries of VLAN 20 go to its class; the granule follows the shortest aging. */
  ls_fdb_learn(&f, ls_fdb_key(20, 99), &a, 21 * S);
  CHECK_EQ(f.ent[ls_fdb_lookup(&f, ls_fdb_key(20, 99)) - f.ent].cls, 1);
  CHECK(f.granule <= 5 * S / 16);
  /* Back to the table's aging: the lists merge in order. */
  CHECK_EQ(ls_fdb_set_vlan_aging(&f, 20, 0, true), 0);
  CHECK(ls_fdb_check(&f) == NULL);
  CHECK_EQ(f.ncls, 1u);
  CHECK_EQ(ls_fdb_age(&f, 299 * S, UINT32_MAX), 0u);
  CHECK_EQ(ls_fdb_age(&f, 309 * S, UINT32_MAX), 7u); /* seen at 0, 2, 4, 6, 8 and 7, 9 */
  CHECK(ls_fdb_check(&f) == NULL);
  /* Classes are dense after a removal in the middle, and bounded. */
  for (uint16_t v = 1; v < LS_FDB_CLASSES; v++)
    CHECK_EQ(ls_fdb_set_vlan_aging(&f, v, v * S, false), 0);
  CHECK_EQ(ls_fdb_set_vlan_aging(&f, 3000, S, false), -ENOSPC);
  for (uint64_t i = 0; i < 200; i++)
    ls_fdb_learn(&f, ls_fdb_key((uint16_t)(i % 70), 1000 + i), &a, 400 * S + i);
  CHECK(ls_fdb_check(&f) == NULL);
  CHECK_EQ(ls_fdb_set_vlan_aging(&f, 5, 0, true), 0);
  CHECK(ls_fdb_check(&f) == NULL);
  CHECK_EQ(ls_fdb_set_vlan_aging(&f, 3000, S, false), 0);
  CHECK(ls_fdb_check(&f) == NULL);
  ls_fdb_fini(&f);
}

static void test_owner_cap(void) {
  ls_fdb f;
  ls_fdb_owner a, b;
  notes n = {0};
  CHECK_EQ(ls_fdb_init(&f, 1000, 300 * S, LS_EVICT_REFUSE, 9), 0);
  ls_fdb_set_notify(&f, note, &n);
  ls_fdb_owner_add(&f, &a);
  ls_fdb_owner_add(&f, &b);
  ls_fdb_set_owner_max(&f, &a, 2, 0);
  CHECK_EQ(ls_fdb_learn(&f, K(1), &a, 1), LS_LEARN_NEW);
  CHECK_EQ(ls_fdb_learn(&f, K(2), &a, 2), LS_LEARN_NEW);
  CHECK_EQ(ls_fdb_learn(&f, K(3), &a, 3), LS_LEARN_REFUSED_OWNER);
  CHECK_EQ(f.stats.refused_owner, 1u);
  CHECK_EQ(ls_fdb_learn(&f, K(3), &b, 3), LS_LEARN_NEW);           /* b has no cap */
  CHECK_EQ(ls_fdb_learn(&f, K(3), &a, 4), LS_LEARN_REFUSED_OWNER); /* nor may it move in */
  CHECK(ls_fdb_lookup(&f, K(3))->owner == &b);
  /* With an evicting policy, the owner's oldest makes room. */
  ls_fdb_set_evict(&f, LS_EVICT_OLDEST);
  CHECK_EQ(ls_fdb_learn(&f, K(4), &a, 5), LS_LEARN_NEW);
  CHECK(ls_fdb_lookup(&f, K(1)) == NULL);
  CHECK_EQ(n.evict, 1);
  /* Lowering the cap evicts at once. */
  ls_fdb_set_owner_max(&f, &a, 1, 6);
  CHECK_EQ(a.dyn, 1u);
  CHECK(ls_fdb_lookup(&f, K(4)) != NULL);
  CHECK(ls_fdb_check(&f) == NULL);
  ls_fdb_fini(&f);
}

/* Found by fuzz/fdb_ops: iterating a table that never held an entry did arithmetic on a
 * null pointer (UBSan under clang: "applying zero offset to null pointer"). */
static void test_foreach_empty(void) {
  ls_fdb f;
  CHECK_EQ(ls_fdb_init(&f, 16, LS_NSEC, LS_EVICT_OLDEST, 1), 0);
  CHECK(f.ent == NULL);
  uint32_t n = 0;
  LS_FDB_FOREACH(&f, e) {
    (void)e;
    n++;
  }
  CHECK_EQ(n, 0);
  ls_fdb_fini(&f);
}

/* 1,048,576 static entries fit (beside a full dynamic table); the next is ENOSPC,
 * replacing one is not, and a dynamic entry may still be learned. */
static void test_static_limit(void) {
  ls_fdb f;
  ls_fdb_owner a;
  CHECK_EQ(ls_fdb_init(&f, 16, 300 * S, LS_EVICT_REFUSE, 11), 0);
  ls_fdb_owner_add(&f, &a);
  int bad = 0;
  for (uint64_t i = 0; i < LS_FDB_MAX_STATIC; i++)
    bad += ls_fdb_add(&f, ls_fdb_key(1, i + 1), &a, LS_FDB_STATIC, 0) != 0;
  CHECK_EQ(bad, 0);
  CHECK_EQ(f.nstatic, LS_FDB_MAX_STATIC);
  CHECK_EQ(ls_fdb_add(&f, ls_fdb_key(2, 1), &a, LS_FDB_STATIC, 0), -ENOSPC);
  CHECK(ls_fdb_lookup(&f, ls_fdb_key(2, 1)) == NULL);
  CHECK_EQ(ls_fdb_add(&f, ls_fdb_key(1, 1), &a, LS_FDB_STATIC | LS_FDB_STICKY, 0), 0);
  CHECK_EQ(ls_fdb_learn(&f, ls_fdb_key(3, 1), &a, 1), LS_LEARN_NEW);
  CHECK(ls_fdb_check(&f) == NULL);
  ls_fdb_owner_remove(&f, &a);
  ls_fdb_fini(&f);
}

int main(void) {
  RUN(test_foreach_empty);
  RUN(test_learn_lookup_move);
  RUN(test_aging_refresh_and_order);
  RUN(test_cap_policies);
  RUN(test_flush);
  RUN(test_random_against_model);
  RUN(test_million);
  RUN(test_vlan_aging);
  RUN(test_owner_cap);
  RUN(test_static_limit);
  return CHECK_DONE();
}
