/*
 * common.h — small shared definitions for the luaswitch C core.
 *
 * Owns: branch hints, the no-coverage mark for checking code, container_of, time units
 * and the "no index" sentinel used by the index-linked structures (FDB lists, fairness
 * heap). Nothing here allocates or depends on libuv or Lua.
 */
#ifndef LS_COMMON_H
#define LS_COMMON_H

#include <stddef.h>
#include <stdint.h>

#define LS_LIKELY(x) __builtin_expect(!!(x), 1)
#define LS_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* Checking code (invariant walks that tests and fuzz targets run after every step) has
 * nothing to teach a fuzzer: clang leaves its coverage instrumentation out, whose
 * comparison hooks took most of the time of the fuzz targets that check after every
 * step. No effect outside fuzz builds. */
#if defined(__clang__)
#define LS_NO_COVERAGE __attribute__((no_sanitize("coverage")))
#else
#define LS_NO_COVERAGE
#endif

#define LS_CONTAINER_OF(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

#define LS_NSEC 1000000000ULL
#define LS_NONE UINT32_MAX

#define LS_STR_(x) #x
#define LS_STR(x) LS_STR_(x)

#define LS_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#define LS_NAME_MAX 64 /* switch and port names, including the NUL */

#define LS_VERSION "0.1.0"

#endif
