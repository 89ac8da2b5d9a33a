/*
 * stream_parser.c — libFuzzer target: the stream port's length-prefixed framing.
 *
 * Owns: the driver. The input is a byte stream (4-byte big-endian length, frame, ...)
 * preceded by a seed for how it arrives: in reads of random sizes (one byte at a time,
 * a few bytes, or large runs) into a receive buffer of the port's size, parsed after each
 * read with ls_stream_next and compacted as port_stream.c does. Whatever the split, the
 * frames delivered must be exactly those of parsing the whole stream at once (same
 * lengths, same bytes, same order), the corruption (a length of 0 or above 65536) must
 * be detected at the same frame, nothing may be read outside the buffer, and a partial
 * frame never exceeds what the buffer can hold.
 */
#include "frame.h"
#include "fuzz.h"
#include "port_stream.h"

typedef struct {
  uint32_t off, len; /* in the stream */
} frame_ref;

#define MAX_FRAMES 8192

/* The reference: the whole stream in one buffer. Returns the frame count; *bad: corrupt. */
static uint32_t parse_whole(const uint8_t *s, uint32_t n, frame_ref *out, bool *bad) {
  uint32_t off = 0, k = 0, flen;
  int r;
  *bad = false;
  while ((r = ls_stream_next(s + off, n - off, &flen)) != 0) {
    if (r < 0) {
      *bad = true;
      break;
    }
    FZ_CHECK(flen >= 1 && flen <= LS_FRAME_MAX && 4 + flen <= n - off, "frame of %u", flen);
    out[k++] = (frame_ref){off + 4, flen};
    off += 4 + flen;
  }
  if (!*bad) FZ_CHECK(n - off < 4 || flen > 0, "stopped with a whole header but no length");
  return k;
}

static uint64_t rng(uint64_t *x) {
  *x ^= *x << 13;
  *x ^= *x >> 7;
  *x ^= *x << 17;
  return *x;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static uint8_t rbuf[LS_STREAM_RBUF];
  static frame_ref ref[MAX_FRAMES];
  ls_fz z = {data, size};
  uint64_t seed = (uint64_t)fz_u32(&z) << 1 | 1;
  uint8_t style = fz_u8(&z);
  const uint8_t *s = z.p;
  uint32_t n = (uint32_t)z.n;
  if (n / 5 > MAX_FRAMES) n = 5 * MAX_FRAMES; /* every frame takes at least 5 bytes */
  bool bad;
  uint32_t nref = parse_whole(s, n, ref, &bad);

  /* The same stream in reads of random sizes, parsed as the port does. */
  uint32_t rlen = 0, fed = 0, got = 0, consumed = 0;
  bool corrupt = false;
  while (fed < n && !corrupt) {
    uint32_t want;
    switch (style % 4) {
    case 0:
      want = 1;
      break;
    case 1:
      want = 1 + (uint32_t)(rng(&seed) % 8);
      break;
    case 2:
      want = 1 + (uint32_t)(rng(&seed) % 200);
      break;
    default:
      want = 1 + (uint32_t)(rng(&seed) % LS_STREAM_RBUF);
      break;
    }
    uint32_t room = LS_STREAM_RBUF - rlen;
    FZ_CHECK(room > 0, "the receive buffer is full with no complete frame");
    if (want > room) want = room;
    if (want > n - fed) want = n - fed;
    memcpy(rbuf + rlen, s + fed, want);
    rlen += want;
    fed += want;
    uint32_t off = 0, flen;
    int r;
    while ((r = ls_stream_next(rbuf + off, rlen - off, &flen)) != 0) {
      if (r < 0) {
        corrupt = true;
        break;
      }
      FZ_CHECK(got < nref, "more frames than in the whole stream");
      FZ_CHECK(ref[got].off == consumed + off + 4 && ref[got].len == flen,
               "frame %u: at %u+%u, whole parse says %u+%u", got, consumed + off + 4, flen,
               ref[got].off, ref[got].len);
      FZ_CHECK(memcmp(rbuf + off + 4, s + ref[got].off, flen) == 0, "frame %u: other bytes", got);
      got++;
      off += 4 + flen;
    }
    if (off) {
      memmove(rbuf, rbuf + off, rlen - off);
      rlen -= off;
      consumed += off;
    }
    /* what waits is less than one frame with its header */
    FZ_CHECK(corrupt || rlen < 4 + LS_FRAME_MAX, "%u bytes wait", rlen);
  }
  FZ_CHECK(got == nref, "%u frames, the whole stream has %u", got, nref);
  FZ_CHECK(corrupt == bad, "corruption %s", bad ? "missed" : "invented");
  if (corrupt) FZ_CHECK(consumed + 4 <= n, "corrupt without a header");
  return 0;
}
