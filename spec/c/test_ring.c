/*
 * test_ring.c — unit tests of the SPSC event ring (src/event.c): order, overflow
 * counting, and a producer thread racing the consumer with nothing lost unaccounted.
 */
#include "check.h"
#include "event.h"

#include <pthread.h>
#include <string.h>

static void test_basic(void) {
  ls_ring r;
  CHECK_EQ(ls_ring_init(&r, 10), 0); /* rounded up to 16 */
  ls_event ev, out[32];
  memset(&ev, 0, sizeof(ev));
  for (int i = 0; i < 20; i++) {
    ev.value = i;
    ls_ring_push(&r, &ev);
  }
  CHECK_EQ(atomic_load(&r.dropped), 4);
  CHECK_EQ(ls_ring_pending(&r), 16);
  CHECK_EQ(ls_ring_pop(&r, out, 5), 5);
  CHECK_EQ(out[0].value, 0);
  CHECK_EQ(out[4].value, 4);
  CHECK_EQ(ls_ring_pop(&r, out, 32), 11);
  CHECK_EQ(out[10].value, 15);
  CHECK_EQ(ls_ring_pop(&r, out, 32), 0);
  ls_ring_fini(&r);
}

enum { TOTAL = 2000000 };

static void *producer(void *arg) {
  ls_ring *r = arg;
  ls_event ev;
  memset(&ev, 0, sizeof(ev));
  for (int i = 0; i < TOTAL; i++) {
    ev.value = i;
    ls_ring_push(r, &ev);
  }
  return NULL;
}

static void test_threads(void) {
  ls_ring r;
  ls_ring_init(&r, 1024);
  pthread_t t;
  pthread_create(&t, NULL, producer, &r);
  static ls_event out[256];
  int64_t last = -1;
  uint64_t got = 0;
  int order_errors = 0;
  for (;;) {
    uint32_t n = ls_ring_pop(&r, out, 256);
    for (uint32_t i = 0; i < n; i++) {
      if (out[i].value <= last) order_errors++;
      last = out[i].value;
    }
    got += n;
    if (last == TOTAL - 1 || (n == 0 && got + atomic_load(&r.dropped) == TOTAL)) break;
  }
  pthread_join(t, NULL);
  got += ls_ring_pop(&r, out, 256);
  CHECK_EQ(order_errors, 0);
  CHECK_EQ(got + atomic_load(&r.dropped), TOTAL);
  printf("    %llu delivered, %llu dropped\n", (unsigned long long)got,
         (unsigned long long)atomic_load(&r.dropped));
  ls_ring_fini(&r);
}

int main(void) {
  RUN(test_basic);
  RUN(test_threads);
  return CHECK_DONE();
}
