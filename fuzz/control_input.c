/*
 * control_input.c — libFuzzer target: what the control socket and its clients parse.
 *
 * Owns: the driver. The first byte picks a part.
 *  - Framing (ctl_line, as control.c uses it): a byte stream — input bytes, with runs of
 *    filler of up to 70000 bytes so that lines around CLI_MAX_LINE are cheap to make —
 *    arrives in reads of random sizes into a buffer that grows as control.c's does. The
 *    requests taken out (their bytes and lengths), and whether and where the stream is
 *    refused as too long, must be those of framing the whole stream at once; a request
 *    is never longer than CLI_MAX_LINE and never holds a newline.
 *  - JSON (json.c, which the clients run on the server's replies): json_field on text
 *    from the input must return a span inside it; json_string_decode, json_string_array
 *    and json_print_indented must not read outside what they are given; and any bytes,
 *    encoded with json_string_encode, decode back to themselves.
 */
#include "cli.h"
#include "fuzz.h"

#define MAX_STREAM (4 * (CLI_MAX_LINE + 8))
#define MAX_LINES 4096

typedef struct {
  size_t off, len;
} line_ref;

/* The whole stream framed at once. Returns the request count; *refused_at: the offset of
 * the line found too long (SIZE_MAX: none). */
static size_t frame_whole(const char *s, size_t n, line_ref *out, size_t *refused_at) {
  size_t off = 0, k = 0, len, used;
  int r;
  *refused_at = SIZE_MAX;
  while (k < MAX_LINES && (r = ctl_line(s + off, n - off, &len, &used)) != CTL_MORE) {
    if (r == CTL_TOO_LONG) {
      *refused_at = off;
      break;
    }
    FZ_CHECK(len <= CLI_MAX_LINE && used >= len + 1 && used <= len + 2, "line %zu/%zu", len, used);
    FZ_CHECK(!memchr(s + off, '\n', len), "a request holds a newline");
    out[k++] = (line_ref){off, len};
    off += used;
  }
  return k;
}

static void fuzz_framing(ls_fz *z) {
  static char stream[MAX_STREAM];
  static line_ref ref[MAX_LINES];
  static char buf[CLI_MAX_LINE + 4096 * 2];
  uint64_t seed = fz_u32(z) | 1;
  /* build the stream: input bytes, and filler runs ('\x01' + 2 bytes of length) */
  size_t n = 0;
  while (fz_more(z) && n < MAX_STREAM) {
    uint8_t c = fz_u8(z);
    if (c == 0x01) {
      size_t run = fz_below(z, 70001);
      if (run > MAX_STREAM - n) run = MAX_STREAM - n;
      memset(stream + n, fz_bool(z) ? 'x' : '\r', run);
      n += run;
    } else {
      stream[n++] = (char)c;
    }
  }
  size_t refused_at;
  size_t nref = frame_whole(stream, n, ref, &refused_at);
  if (nref == MAX_LINES) return; /* too many to compare; never with real inputs */

  /* as control.c: read while no line is complete and there is room, take lines out */
  size_t inlen = 0, fed = 0, consumed = 0, got = 0;
  bool refused = false;
  while (!refused) {
    size_t len, used;
    int r;
    while ((r = ctl_line(buf, inlen, &len, &used)) == CTL_LINE) {
      FZ_CHECK(got < nref, "more requests than in the whole stream");
      FZ_CHECK(ref[got].off == consumed && ref[got].len == len, "request %zu: %zu+%zu, not %zu+%zu",
               got, consumed, len, ref[got].off, ref[got].len);
      FZ_CHECK(memcmp(buf, stream + ref[got].off, len) == 0, "request %zu: other bytes", got);
      got++;
      memmove(buf, buf + used, inlen - used);
      inlen -= used;
      consumed += used;
    }
    if (r == CTL_TOO_LONG) {
      refused = true;
      FZ_CHECK(consumed == refused_at, "refused at %zu, the whole stream at %zu", consumed,
               refused_at);
      break;
    }
    if (fed == n) break;
    size_t room = sizeof(buf) - inlen;
    FZ_CHECK(room > 0, "the buffer is full and no line is complete or too long");
    seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
    size_t want = seed & 1 ? 1 + seed % 16 : 1 + seed % sizeof(buf);
    if (want > room) want = room;
    if (want > n - fed) want = n - fed;
    memcpy(buf + inlen, stream + fed, want);
    inlen += want;
    fed += want;
  }
  FZ_CHECK(got == nref, "%zu requests, the whole stream has %zu", got, nref);
  FZ_CHECK(refused == (refused_at != SIZE_MAX), "refusal %s", refused ? "invented" : "missed");
}

static FILE *devnull;

static void check_span(json_span v, const char *s, size_t n) {
  if (!v.p) return;
  FZ_CHECK(v.p >= s && v.p + v.len <= s + n, "span outside the text");
}

static void fuzz_json(ls_fz *z) {
  static const char *const keys[] = {"ok", "result", "error", "output", "incomplete", ""};
  const char *key = keys[fz_below(z, 6)];
  size_t n;
  const uint8_t *d = fz_bytes(z, z->n, &n);
  char *s = malloc(n ? n : 1); /* exactly n bytes: ASan catches reads past them */
  memcpy(s, d, n);
  json_span whole = {s, n};
  json_span f = json_field(s, n, key);
  check_span(f, s, n);
  size_t dl;
  char *dec = json_string_decode(f.p ? f : whole, &dl);
  if (dec) {
    FZ_CHECK(dec[dl] == '\0', "not terminated");
    free(dec);
  }
  char **arr = json_string_array(f.p ? f : whole);
  if (arr) {
    for (char **a = arr; *a; a++) free(*a);
    free(arr);
  }
  json_print_indented(f.p ? f : whole, devnull);
  /* any bytes survive a round trip */
  size_t el;
  char *enc = json_string_encode(s, n, &el);
  FZ_CHECK(enc != NULL, "encode");
  char *back = json_string_decode((json_span){enc, el}, &dl);
  FZ_CHECK(back && dl == n && memcmp(back, s, n) == 0, "round trip of %zu bytes", n);
  char *again = json_string_decode(json_field(enc, el, "x"), NULL); /* not an object */
  free(again);
  free(back);
  free(enc);
  free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!devnull) devnull = fopen("/dev/null", "w");
  ls_fz z = {data, size};
  if (fz_u8(&z) & 1)
    fuzz_json(&z);
  else
    fuzz_framing(&z);
  return 0;
}
