/*
 * check.h — a minimal assertion harness for the C unit tests (ctest runs each binary).
 */
#ifndef LS_CHECK_H
#define LS_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_failures;

#define CHECK(cond)                                                                                \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);                     \
      check_failures++;                                                                            \
    }                                                                                              \
  } while (0)

#define CHECK_EQ(a, b)                                                                             \
  do {                                                                                             \
    long long _a = (long long)(a), _b = (long long)(b);                                            \
    if (_a != _b) {                                                                                \
      fprintf(stderr, "%s:%d: check failed: %s == %s (%lld != %lld)\n", __FILE__, __LINE__, #a,    \
              #b, _a, _b);                                                                         \
      check_failures++;                                                                            \
    }                                                                                              \
  } while (0)

#define RUN(test)                                                                                  \
  do {                                                                                             \
    int _before = check_failures;                                                                  \
    test();                                                                                        \
    printf("%s %s\n", check_failures == _before ? "ok  " : "FAIL", #test);                         \
  } while (0)

#define CHECK_DONE()                                                                               \
  (check_failures ? (fprintf(stderr, "%d check(s) failed\n", check_failures), 1) : 0)

#endif
