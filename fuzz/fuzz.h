/*
 * fuzz.h — what the fuzz targets share: a reader that turns libFuzzer's byte string into
 * choices (integers, booleans, byte runs), taking zeroes once the input is spent, and the
 * check that stops a target when an invariant fails.
 *
 * Owns: ls_fz, FZ_CHECK. Header-only: each target is one C file plus this.
 */
#ifndef LS_FUZZ_H
#define LS_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct ls_fz {
  const uint8_t *p;
  size_t n;
} ls_fz;

static inline bool fz_more(const ls_fz *z) {
  return z->n > 0;
}

static inline uint8_t fz_u8(ls_fz *z) {
  if (!z->n) return 0;
  z->n--;
  return *z->p++;
}

static inline uint16_t fz_u16(ls_fz *z) {
  uint16_t lo = fz_u8(z);
  return (uint16_t)(lo | fz_u8(z) << 8);
}

static inline uint32_t fz_u32(ls_fz *z) {
  uint32_t lo = fz_u16(z);
  return lo | (uint32_t)fz_u16(z) << 16;
}

static inline bool fz_bool(ls_fz *z) {
  return fz_u8(z) & 1;
}

/* An integer in [0, n), n >= 1. */
static inline uint32_t fz_below(ls_fz *z, uint32_t n) {
  if (n <= 1) return 0;
  uint32_t v = n <= 256 ? fz_u8(z) : n <= 65536 ? fz_u16(z) : fz_u32(z);
  return v % n;
}

/* Up to max bytes of the input (fewer when it runs out); *len receives the count. */
static inline const uint8_t *fz_bytes(ls_fz *z, size_t max, size_t *len) {
  size_t k = max < z->n ? max : z->n;
  const uint8_t *p = z->p;
  z->p += k;
  z->n -= k;
  *len = k;
  return p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_CHECK(cond, ...)                                                                        \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);                     \
      fprintf(stderr, __VA_ARGS__);                                                                \
      fputc('\n', stderr);                                                                         \
      abort();                                                                                     \
    }                                                                                              \
  } while (0)

#endif
