/*
 * test_offload.c — unit tests of src/offload.c: the checksum helpers against a byte-wise
 * reference, completion of partial TCP/UDP checksums over IPv4 and IPv6, TSO (IPv4 with
 * and without options, IPv6 with and without extension headers, 802.1Q and QinQ tags),
 * UDP GSO, the one-segment cases, malformed and unsupported frames, allocation failure,
 * and a randomised robustness run over mutated super-frames. Frames are built by hand
 * and every segment is checked field by field with an independent checksum.
 */
#include "check.h"
#include "frame.h"
#include "offload.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_KEEP 128
#define FRAME_BUF (LS_FRAME_MAX + 64)

/* ---- a tiny PRNG (xorshift64*) so that runs are reproducible ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void) {
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 0x2545f4914f6cdd1dULL;
}

static uint32_t rnd_below(uint32_t n) {
  return n ? (uint32_t)(rnd() % n) : 0;
}

/* ---- reference checksum: byte-wise RFC 1071, independent of ls_csum_partial ---- */

static uint64_t ref_add(const uint8_t *p, size_t n, uint64_t s) {
  for (size_t i = 0; i < n; i += 2) s += (uint64_t)p[i] << 8 | (i + 1 < n ? p[i + 1] : 0);
  return s;
}

static uint16_t ref_fold(uint64_t s) { /* folded, not complemented */
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return (uint16_t)s;
}

/* ---- segment sink ---- */

typedef struct sink {
  uint8_t *seg[MAX_KEEP];
  uint32_t len[MAX_KEEP];
  int n; /* kept */
  bool keep;
  int fail_at; /* index of the alloc that fails, or -1 */
  int allocs, dones;
  uint8_t *pending;
  uint32_t pending_len;
  bool bad_order; /* done without alloc, or with another length */
  bool uneven;    /* a segment other than the last differs from the first */
  uint64_t total; /* sum of segment lengths */
  uint32_t first_len, last_len;
} sink;

static void sink_init(sink *s, bool keep) {
  memset(s, 0, sizeof(*s));
  s->keep = keep;
  s->fail_at = -1;
}

static void sink_free(sink *s) {
  for (int i = 0; i < s->n; i++) free(s->seg[i]);
  free(s->pending);
  s->n = 0;
  s->pending = NULL;
}

static uint8_t *sink_alloc(void *ctx, uint32_t seg_len) {
  sink *s = ctx;
  if (s->pending) s->bad_order = true;
  if (s->allocs++ == s->fail_at) return NULL;
  /* Exactly seg_len bytes, so that ASan catches any write past the end. */
  s->pending = malloc(seg_len ? seg_len : 1);
  s->pending_len = seg_len;
  return s->pending;
}

static void sink_done(void *ctx, uint32_t seg_len) {
  sink *s = ctx;
  if (!s->pending || seg_len != s->pending_len) s->bad_order = true;
  if (s->dones > 1 && s->last_len != s->first_len) s->uneven = true;
  if (s->dones == 0) s->first_len = seg_len;
  s->last_len = seg_len;
  s->total += seg_len;
  s->dones++;
  if (s->keep && s->n < MAX_KEEP) {
    s->seg[s->n] = s->pending;
    s->len[s->n] = seg_len;
    s->n++;
  } else {
    free(s->pending);
  }
  s->pending = NULL;
}

static int segment(const uint8_t *f, uint32_t len, const ls_vnet *v, sink *s) {
  return ls_offload_segment(f, len, v, sink_alloc, sink_done, s);
}

/* ---- frame builder ---- */

typedef struct spec {
  int ntags;
  uint16_t tpid[2];
  bool v6;
  int ip_opt; /* IPv4 option bytes (multiple of 4) */
  int v6_hbh; /* IPv6: a hop-by-hop options header of this many bytes (multiple of 8) */
  int v6_dst; /* IPv6: a destination options header of this many bytes */
  bool udp;
  int tcp_opt; /* TCP option bytes (multiple of 4) */
  uint8_t tcp_flags;
  uint16_t ip_id;
  uint32_t seq;
  uint32_t payload;
  uint8_t gso_type;
  uint16_t gso_size;
} spec;

typedef struct layout {
  uint32_t l3, l4, hlen, len;
} layout;

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_PSH 0x08
#define TCP_ACK 0x10
#define TCP_ECE 0x40
#define TCP_CWR 0x80

static uint64_t pseudo_sum(const uint8_t *f, const layout *L, bool v6, uint8_t proto,
                           uint32_t l4_len) {
  uint64_t s = v6 ? ref_add(f + L->l3 + 8, 32, 0) : ref_add(f + L->l3 + 12, 8, 0);
  return s + proto + (l4_len >> 16) + (l4_len & 0xffff);
}

/* Build a super-frame as a guest would hand it over: lengths covering the whole frame,
 * a valid IPv4 header checksum, and the L4 checksum field holding the (uncomplemented)
 * pseudo-header sum with NEEDS_CSUM set. Returns the frame length. */
static uint32_t build(uint8_t *f, const spec *sp, layout *L, ls_vnet *v) {
  uint32_t o = 0;
  for (int i = 0; i < 6; i++) f[o++] = (uint8_t)(i == 5 ? 2 : i == 0 ? 2 : 0); /* dst */
  for (int i = 0; i < 6; i++) f[o++] = (uint8_t)(i == 5 ? 1 : i == 0 ? 2 : 0); /* src */
  for (int t = 0; t < sp->ntags; t++) {
    ls_put_be16(f + o, sp->tpid[t]);
    ls_put_be16(f + o + 2, (uint16_t)((t + 1) * 100 | 3 << 13));
    o += 4;
  }
  ls_put_be16(f + o, sp->v6 ? 0x86dd : 0x0800);
  o += 2;
  L->l3 = o;
  uint8_t proto = sp->udp ? 17 : 6;
  uint32_t l4hl = sp->udp ? 8 : (uint32_t)(20 + sp->tcp_opt);
  if (sp->v6) {
    uint32_t ext = (uint32_t)(sp->v6_hbh + sp->v6_dst);
    L->l4 = o + 40 + ext;
  } else {
    L->l4 = o + 20 + (uint32_t)sp->ip_opt;
  }
  L->hlen = L->l4 + l4hl;
  L->len = L->hlen + sp->payload;
  uint8_t *ip = f + L->l3;
  if (sp->v6) {
    ls_put_be32(ip, 0x60000000u | 0x12345);
    ls_put_be16(ip + 4, (uint16_t)(L->len - L->l3 - 40));
    ip[7] = 64;
    uint8_t a[16] = {0x20, 0x01, 0x0d, 0xb8};
    a[15] = 1;
    memcpy(ip + 8, a, 16);
    a[15] = 2;
    a[7] = 0x77;
    memcpy(ip + 24, a, 16);
    uint8_t *x = ip + 40;
    uint8_t *nextp = ip + 6;
    if (sp->v6_hbh) {
      *nextp = 0;
      memset(x, 0, (size_t)sp->v6_hbh);
      x[1] = (uint8_t)(sp->v6_hbh / 8 - 1);
      x[2] = 1; /* PadN */
      x[3] = (uint8_t)(sp->v6_hbh - 4);
      nextp = x;
      x += sp->v6_hbh;
    }
    if (sp->v6_dst) {
      *nextp = 60;
      memset(x, 0, (size_t)sp->v6_dst);
      x[1] = (uint8_t)(sp->v6_dst / 8 - 1);
      x[2] = 1;
      x[3] = (uint8_t)(sp->v6_dst - 4);
      nextp = x;
      x += sp->v6_dst;
    }
    *nextp = proto;
  } else {
    uint32_t ihl = 20 + (uint32_t)sp->ip_opt;
    ip[0] = (uint8_t)(0x40 | ihl / 4);
    ip[1] = 0x02; /* ECT(0) */
    ls_put_be16(ip + 2, (uint16_t)(L->len - L->l3));
    ls_put_be16(ip + 4, sp->ip_id);
    ls_put_be16(ip + 6, 0x4000); /* DF */
    ip[8] = 64;
    ip[9] = proto;
    ls_put_be16(ip + 10, 0);
    ls_put_be32(ip + 12, 0x0a000001);
    ls_put_be32(ip + 16, 0x0a000002);
    for (int i = 0; i < sp->ip_opt; i++) ip[20 + i] = i + 1 == sp->ip_opt ? 0 : 1; /* NOPs, EOL */
    ls_put_be16(ip + 10, (uint16_t)~ref_fold(ref_add(ip, ihl, 0)));
  }
  uint8_t *l4 = f + L->l4;
  uint32_t l4_len = L->len - L->l4;
  if (sp->udp) {
    ls_put_be16(l4, 5353);
    ls_put_be16(l4 + 2, 4789);
    ls_put_be16(l4 + 4, (uint16_t)l4_len);
  } else {
    ls_put_be16(l4, 40000);
    ls_put_be16(l4 + 2, 80);
    ls_put_be32(l4 + 4, sp->seq);
    ls_put_be32(l4 + 8, 0xa0b0c0d0);
    l4[12] = (uint8_t)((l4hl / 4) << 4);
    l4[13] = sp->tcp_flags;
    ls_put_be16(l4 + 14, 501);
    ls_put_be16(l4 + 18, 0);
    if (sp->tcp_opt >= 12) { /* NOP NOP timestamps, then NOPs */
      memset(l4 + 20, 1, (size_t)sp->tcp_opt);
      l4[22] = 8;
      l4[23] = 10;
      ls_put_be32(l4 + 24, 0x11223344);
      ls_put_be32(l4 + 28, 0x55667788);
    } else {
      memset(l4 + 20, 1, (size_t)sp->tcp_opt);
    }
  }
  uint8_t *pl = f + L->hlen;
  for (uint32_t i = 0; i < sp->payload; i++) pl[i] = (uint8_t)(rnd() >> 56);
  uint32_t coff = sp->udp ? 6 : 16;
  ls_put_be16(l4 + coff, ref_fold(pseudo_sum(f, L, sp->v6, proto, l4_len)));
  memset(v, 0, sizeof(*v));
  v->flags = LS_VNET_F_NEEDS_CSUM;
  v->gso_type = sp->gso_type;
  v->gso_size = sp->gso_size;
  v->hdr_len = (uint16_t)L->hlen;
  v->csum_start = (uint16_t)L->l4;
  v->csum_offset = (uint16_t)coff;
  return L->len;
}

static bool l4_csum_ok(const uint8_t *f, uint32_t len, const layout *L, bool v6, bool udp) {
  uint32_t l4_len = len - L->l4;
  uint64_t s = pseudo_sum(f, L, v6, udp ? 17 : 6, l4_len);
  return ref_fold(ref_add(f + L->l4, l4_len, s)) == 0xffff;
}

/* Check the segments in s against the super-frame f built from sp. */
static void check_segments(const uint8_t *f, const spec *sp, const layout *L, int rc,
                           const sink *s) {
  uint32_t payload = L->len - L->hlen;
  uint32_t mss = sp->gso_size;
  int n = payload <= mss ? 1 : (int)((payload + mss - 1) / mss);
  CHECK_EQ(rc, n);
  CHECK_EQ(s->dones, n);
  CHECK_EQ(s->n, n);
  CHECK(!s->bad_order);
  if (rc != n || s->n != n) return;
  uint8_t *re = malloc(payload + 1);
  uint32_t got = 0;
  for (int i = 0; i < n; i++) {
    const uint8_t *d = s->seg[i];
    uint32_t sl = s->len[i];
    uint32_t off = (uint32_t)i * mss;
    uint32_t plen = payload - off < mss ? payload - off : mss;
    CHECK_EQ(sl, L->hlen + plen);
    if (sl != L->hlen + plen) continue;
    CHECK(memcmp(d, f, L->l3) == 0); /* Ethernet header and tags untouched */
    const uint8_t *ip = d + L->l3, *oip = f + L->l3;
    if (sp->v6) {
      CHECK_EQ(ls_get_be16(ip + 4), sl - L->l3 - 40);
      CHECK(memcmp(ip, oip, 4) == 0);
      CHECK(memcmp(ip + 6, oip + 6, L->l4 - L->l3 - 6) == 0); /* incl. extension headers */
    } else {
      uint32_t ihl = (uint32_t)(ip[0] & 15) * 4;
      CHECK_EQ(ihl, 20 + sp->ip_opt);
      CHECK_EQ(ls_get_be16(ip + 2), sl - L->l3);
      CHECK_EQ(ls_get_be16(ip + 4), (uint16_t)(sp->ip_id + i));
      CHECK_EQ(ls_get_be16(ip + 6), 0x4000); /* DF kept */
      CHECK(memcmp(ip + 8, oip + 8, 2) == 0);
      CHECK(memcmp(ip + 12, oip + 12, ihl - 12) == 0); /* addresses and options */
      CHECK_EQ(ref_fold(ref_add(ip, ihl, 0)), 0xffff);
    }
    const uint8_t *l4 = d + L->l4, *ol4 = f + L->l4;
    if (sp->udp) {
      CHECK(memcmp(l4, ol4, 4) == 0);
      CHECK_EQ(ls_get_be16(l4 + 4), sl - L->l4);
      CHECK(ls_get_be16(l4 + 6) != 0);
    } else {
      CHECK(memcmp(l4, ol4, 4) == 0);
      CHECK_EQ(ls_get_be32(l4 + 4), (uint32_t)(sp->seq + off));
      CHECK(memcmp(l4 + 8, ol4 + 8, 5) == 0); /* ack, data offset */
      uint8_t fl = sp->tcp_flags;
      if (i > 0) fl &= (uint8_t)~TCP_CWR;
      if (i + 1 < n) fl &= (uint8_t) ~(TCP_FIN | TCP_PSH);
      CHECK_EQ(l4[13], fl);
      CHECK(memcmp(l4 + 14, ol4 + 14, 2) == 0);
      CHECK(memcmp(l4 + 18, ol4 + 18, L->hlen - L->l4 - 18) == 0); /* urg, options */
    }
    CHECK(l4_csum_ok(d, sl, L, sp->v6, sp->udp));
    CHECK(memcmp(d + L->hlen, f + L->hlen + off, plen) == 0);
    memcpy(re + got, d + L->hlen, plen);
    got += plen;
  }
  CHECK_EQ(got, payload);
  CHECK(memcmp(re, f + L->hlen, payload) == 0);
  free(re);
}

/* Build from sp, segment, check everything; returns the segment count. */
static int run_gso(const spec *sp) {
  uint8_t *f = malloc(FRAME_BUF);
  layout L;
  ls_vnet v;
  uint32_t len = build(f, sp, &L, &v);
  sink s;
  sink_init(&s, true);
  int rc = segment(f, len, &v, &s);
  check_segments(f, sp, &L, rc, &s);
  sink_free(&s);
  free(f);
  return rc;
}

/* ---- tests ---- */

static void test_csum_helpers(void) {
  /* RFC 1071 section 3 example. */
  const uint8_t ex[8] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
  CHECK_EQ(ls_csum_fold(ls_csum_partial(ex, 8, 0)), (uint16_t)~0xddf2);
  CHECK_EQ(ls_csum_fold(0), 0xffff);
  CHECK_EQ(ls_csum_fold(0xffff), 0);
  CHECK_EQ(ls_csum_fold(0x1fffe), 0);
  CHECK_EQ(ls_csum_partial(ex, 0, 1234), 1234);
  uint8_t buf[600];
  for (int iter = 0; iter < 3000; iter++) {
    size_t align = rnd_below(8), n = rnd_below(500);
    for (size_t i = 0; i < n + align; i++) buf[i] = (uint8_t)(iter % 7 == 0 ? 0xff : rnd() >> 56);
    uint32_t start = iter % 5 == 0 ? 0xffffffffu : (uint32_t)rnd();
    uint64_t want = ref_fold(ref_add(buf + align, n, start));
    uint32_t got = ls_csum_partial(buf + align, n, start);
    CHECK_EQ(ls_csum_fold(got), (uint16_t)~want);
    /* Chained over an even split. */
    size_t k = rnd_below((uint32_t)n + 1) & ~(size_t)1;
    uint32_t two = ls_csum_partial(buf + align + k, n - k, ls_csum_partial(buf + align, k, start));
    CHECK_EQ(ls_csum_fold(two), (uint16_t)~want);
  }
  /* A long run of 0xff bytes exercises the carries. */
  static uint8_t big[LS_FRAME_MAX];
  memset(big, 0xff, sizeof(big));
  CHECK_EQ(ls_csum_fold(ls_csum_partial(big, sizeof(big), 0xffffffffu)),
           (uint16_t)~ref_fold(ref_add(big, sizeof(big), 0xffffffffu)));
}

static void check_csum_complete(spec sp) {
  uint8_t f[2048];
  layout L;
  ls_vnet v;
  uint32_t len = build(f, &sp, &L, &v);
  CHECK(!l4_csum_ok(f, len, &L, sp.v6, sp.udp));
  uint8_t copy[2048];
  memcpy(copy, f, len);
  CHECK(ls_vnet_pending(&v));
  CHECK_EQ(ls_offload_csum(f, len, &v), 0);
  CHECK(l4_csum_ok(f, len, &L, sp.v6, sp.udp));
  /* Only the checksum field changed. */
  uint32_t field = v.csum_start + v.csum_offset;
  CHECK(memcmp(f, copy, field) == 0);
  CHECK(memcmp(f + field + 2, copy + field + 2, len - field - 2) == 0);
  /* The same through ls_offload_segment with gso_type NONE. */
  sink s;
  sink_init(&s, true);
  CHECK_EQ(segment(copy, len, &v, &s), 1);
  CHECK_EQ(s.n, 1);
  if (s.n == 1) {
    CHECK_EQ(s.len[0], len);
    CHECK(memcmp(s.seg[0], f, len) == 0);
  }
  sink_free(&s);
  /* Without NEEDS_CSUM nothing happens. */
  v.flags = LS_VNET_F_DATA_VALID;
  CHECK(!ls_vnet_pending(&v));
  CHECK_EQ(ls_offload_csum(copy, len, &v), 0);
  CHECK(!l4_csum_ok(copy, len, &L, sp.v6, sp.udp));
}

static void test_csum_tcp4(void) {
  check_csum_complete((spec){.tcp_opt = 12, .tcp_flags = TCP_ACK, .payload = 1001});
  check_csum_complete((spec){.tcp_flags = TCP_SYN, .payload = 0});
  check_csum_complete((spec){.ip_opt = 8, .tcp_flags = TCP_ACK, .payload = 2});
}

static void test_csum_udp4(void) {
  check_csum_complete((spec){.udp = true, .payload = 999});
  check_csum_complete((spec){.udp = true, .payload = 0});
  /* Craft a datagram whose checksum computes to 0: it must be sent as 0xffff. */
  spec sp = {.udp = true, .payload = 64};
  uint8_t f[256];
  layout L;
  ls_vnet v;
  uint32_t len = build(f, &sp, &L, &v);
  /* ls_offload_csum sums [l4, len) including the field (which holds the pseudo-header
   * sum); pick the first payload word so that this sum is 0xffff, i.e. the checksum 0. */
  ls_put_be16(f + L.hlen, 0);
  uint16_t total_wo = ref_fold(ref_add(f + L.l4, len - L.l4, 0));
  ls_put_be16(f + L.hlen, (uint16_t)(0xffff - total_wo));
  CHECK_EQ(ref_fold(ref_add(f + L.l4, len - L.l4, 0)), 0xffff);
  CHECK_EQ(ls_offload_csum(f, len, &v), 0);
  CHECK_EQ(ls_get_be16(f + L.l4 + 6), 0xffff);
  CHECK(l4_csum_ok(f, len, &L, false, true));
}

static void test_csum_tcp6(void) {
  check_csum_complete((spec){.v6 = true, .tcp_opt = 12, .tcp_flags = TCP_ACK, .payload = 1333});
  check_csum_complete((spec){.v6 = true, .v6_dst = 16, .tcp_flags = TCP_ACK, .payload = 10});
  check_csum_complete((spec){.v6 = true, .udp = true, .payload = 77});
  check_csum_complete((spec){.ntags = 1, .tpid = {0x8100}, .v6 = true, .payload = 500});
}

static void test_csum_bounds(void) {
  uint8_t f[128];
  memset(f, 0xab, sizeof(f));
  ls_vnet v = {.flags = LS_VNET_F_NEEDS_CSUM, .csum_start = 100, .csum_offset = 26};
  CHECK_EQ(ls_offload_csum(f, 128, &v), 0); /* field is the last two bytes */
  uint8_t g[128];
  memset(g, 0xab, sizeof(g));
  v.csum_offset = 27;
  CHECK_EQ(ls_offload_csum(g, 128, &v), -EINVAL);
  v.csum_start = 129;
  v.csum_offset = 0;
  CHECK_EQ(ls_offload_csum(g, 128, &v), -EINVAL);
  v.csum_start = 0xffff;
  v.csum_offset = 0xffff;
  CHECK_EQ(ls_offload_csum(g, 128, &v), -EINVAL);
  v.csum_start = 127;
  v.csum_offset = 0;
  CHECK_EQ(ls_offload_csum(g, 128, &v), -EINVAL);
  v.csum_start = 126;
  CHECK_EQ(ls_offload_csum(g, 128, &v), 0);
  CHECK_EQ(ls_offload_csum(g, 0, &(ls_vnet){.flags = LS_VNET_F_NEEDS_CSUM}), -EINVAL);
  for (int i = 0; i < 126; i++) CHECK_EQ(g[i], 0xab); /* nothing before the field moved */
}

static void test_tso_ipv4(void) {
  spec sp = {.tcp_opt = 12,
             .tcp_flags = TCP_ACK | TCP_PSH | TCP_FIN | TCP_CWR | TCP_ECE,
             .ip_id = 0xfffd,   /* wraps */
             .seq = 0xfffff000, /* wraps */
             .payload = 10000,
             .gso_type = LS_VNET_GSO_TCPV4 | LS_VNET_GSO_ECN,
             .gso_size = 1448};
  CHECK_EQ(run_gso(&sp), 7);
  /* Spot-check the numbers the brief asks for. */
  uint8_t *f = malloc(FRAME_BUF);
  layout L;
  ls_vnet v;
  uint32_t len = build(f, &sp, &L, &v);
  v.hdr_len = 0; /* a hint only */
  sink s;
  sink_init(&s, true);
  CHECK_EQ(segment(f, len, &v, &s), 7);
  for (int i = 0; i < s.n; i++) {
    CHECK_EQ(s.len[i], 14 + 20 + 32 + (i < 6 ? 1448 : 10000 - 6 * 1448));
    CHECK_EQ(ls_get_be16(s.seg[i] + 14 + 2), s.len[i] - 14);
    CHECK_EQ(ls_get_be32(s.seg[i] + 34 + 4), (uint32_t)(0xfffff000u + 1448u * (uint32_t)i));
  }
  CHECK_EQ(s.seg[0][34 + 13], TCP_ACK | TCP_CWR | TCP_ECE);
  CHECK_EQ(s.seg[3][34 + 13], TCP_ACK | TCP_ECE);
  CHECK_EQ(s.seg[6][34 + 13], TCP_ACK | TCP_ECE | TCP_PSH | TCP_FIN);
  CHECK_EQ(ls_get_be16(s.seg[3] + 14 + 4), 0);
  sink_free(&s);
  free(f);
  /* IPv4 options, payload an exact multiple of the MSS: no empty trailing segment. */
  spec o = {.ip_opt = 8,
            .tcp_flags = TCP_ACK | TCP_PSH,
            .ip_id = 7,
            .seq = 1,
            .payload = 3000,
            .gso_type = LS_VNET_GSO_TCPV4,
            .gso_size = 1000};
  CHECK_EQ(run_gso(&o), 3);
  /* A tiny MSS: many segments. */
  spec t = {
      .tcp_flags = TCP_ACK | TCP_FIN, .payload = 300, .gso_type = LS_VNET_GSO_TCPV4, .gso_size = 7};
  CHECK_EQ(run_gso(&t), 43);
  /* Largest frame. */
  spec b = {.tcp_opt = 12,
            .tcp_flags = TCP_ACK,
            .payload = LS_FRAME_MAX - 66,
            .gso_type = LS_VNET_GSO_TCPV4,
            .gso_size = 1460};
  CHECK_EQ(run_gso(&b), (LS_FRAME_MAX - 66 + 1459) / 1460);
}

static void test_tso_ipv6(void) {
  spec sp = {.v6 = true,
             .tcp_opt = 12,
             .tcp_flags = TCP_ACK | TCP_PSH | TCP_CWR,
             .seq = 12345,
             .payload = 5000,
             .gso_type = LS_VNET_GSO_TCPV6,
             .gso_size = 1440};
  CHECK_EQ(run_gso(&sp), 4);
  spec x = {.v6 = true,
            .v6_hbh = 8,
            .v6_dst = 24,
            .tcp_flags = TCP_ACK | TCP_FIN,
            .seq = 0xffffffff,
            .payload = 4321,
            .gso_type = LS_VNET_GSO_TCPV6,
            .gso_size = 1000};
  CHECK_EQ(run_gso(&x), 5);
}

static void test_tso_vlan(void) {
  spec q = {.ntags = 1,
            .tpid = {0x8100},
            .tcp_opt = 12,
            .tcp_flags = TCP_ACK | TCP_PSH,
            .ip_id = 99,
            .seq = 5,
            .payload = 4000,
            .gso_type = LS_VNET_GSO_TCPV4,
            .gso_size = 1448};
  CHECK_EQ(run_gso(&q), 3);
  spec qq = {.ntags = 2,
             .tpid = {0x88a8, 0x8100},
             .v6 = true,
             .tcp_flags = TCP_ACK,
             .payload = 3001,
             .gso_type = LS_VNET_GSO_TCPV6,
             .gso_size = 1000};
  CHECK_EQ(run_gso(&qq), 4);
  spec q9 = {.ntags = 2,
             .tpid = {0x9100, 0x8100},
             .udp = true,
             .ip_id = 1,
             .payload = 2500,
             .gso_type = LS_VNET_GSO_UDP_L4,
             .gso_size = 1200};
  CHECK_EQ(run_gso(&q9), 3);
}

static void test_udp_l4(void) {
  spec a = {.udp = true,
            .ip_id = 0x100,
            .payload = 4100,
            .gso_type = LS_VNET_GSO_UDP_L4,
            .gso_size = 1000};
  CHECK_EQ(run_gso(&a), 5);
  spec b = {
      .v6 = true, .udp = true, .payload = 3000, .gso_type = LS_VNET_GSO_UDP_L4, .gso_size = 1000};
  CHECK_EQ(run_gso(&b), 3);
  spec c = {.v6 = true,
            .v6_dst = 8,
            .udp = true,
            .payload = 1,
            .gso_type = LS_VNET_GSO_UDP_L4,
            .gso_size = 1};
  CHECK_EQ(run_gso(&c), 1);
}

static void test_single_segment(void) {
  spec a = {.tcp_opt = 12,
            .tcp_flags = TCP_ACK | TCP_PSH | TCP_CWR,
            .payload = 1000,
            .gso_type = LS_VNET_GSO_TCPV4,
            .gso_size = 1448};
  CHECK_EQ(run_gso(&a), 1);
  a.payload = 1448;
  CHECK_EQ(run_gso(&a), 1);
  a.payload = 1449;
  CHECK_EQ(run_gso(&a), 2);
  a.payload = 0; /* headers only */
  CHECK_EQ(run_gso(&a), 1);
  spec u = {.v6 = true, .udp = true, .payload = 0, .gso_type = LS_VNET_GSO_UDP_L4, .gso_size = 100};
  CHECK_EQ(run_gso(&u), 1);

  /* gso_type NONE without NEEDS_CSUM: an exact copy, whatever the frame is. */
  uint8_t arp[60];
  for (int i = 0; i < 60; i++) arp[i] = (uint8_t)(i * 13);
  ls_put_be16(arp + 12, 0x0806);
  ls_vnet none = {0};
  sink s;
  sink_init(&s, true);
  CHECK_EQ(segment(arp, 60, &none, &s), 1);
  CHECK(s.n == 1 && s.len[0] == 60 && memcmp(s.seg[0], arp, 60) == 0);
  sink_free(&s);

  /* A one-segment UDP/IPv6 GSO frame whose checksum computes to 0 gets 0xffff. */
  spec z = {
      .v6 = true, .udp = true, .payload = 32, .gso_type = LS_VNET_GSO_UDP_L4, .gso_size = 1400};
  uint8_t f[256];
  layout L;
  ls_vnet v;
  uint32_t len = build(f, &z, &L, &v);
  ls_put_be16(f + L.l4 + 6, 0);
  ls_put_be16(f + L.hlen, 0);
  uint16_t t = ref_fold(ref_add(f + L.l4, len - L.l4, pseudo_sum(f, &L, true, 17, len - L.l4)));
  ls_put_be16(f + L.hlen, (uint16_t)(0xffff - t));
  sink_init(&s, true);
  CHECK_EQ(segment(f, len, &v, &s), 1);
  if (s.n == 1) {
    CHECK_EQ(ls_get_be16(s.seg[0] + L.l4 + 6), 0xffff);
    CHECK(l4_csum_ok(s.seg[0], len, &L, true, true));
  }
  sink_free(&s);
}

static int seg_rc(const uint8_t *f, uint32_t len, const ls_vnet *v, int *allocs) {
  sink s;
  sink_init(&s, false);
  int rc = segment(f, len, v, &s);
  CHECK(!s.bad_order);
  *allocs = s.allocs;
  sink_free(&s);
  return rc;
}

#define CHECK_EINVAL(f, len, v)                                                                    \
  do {                                                                                             \
    int _allocs;                                                                                   \
    CHECK_EQ(seg_rc(f, len, v, &_allocs), -EINVAL);                                                \
    CHECK_EQ(_allocs, 0);                                                                          \
  } while (0)

static void test_malformed(void) {
  uint8_t *f = malloc(FRAME_BUF);
  layout L;
  ls_vnet v, w;
  spec tcp4 = {.tcp_opt = 12,
               .tcp_flags = TCP_ACK,
               .payload = 3000,
               .gso_type = LS_VNET_GSO_TCPV4,
               .gso_size = 1448};
  uint32_t len = build(f, &tcp4, &L, &v);
  int allocs;
  CHECK_EQ(seg_rc(f, len, &v, &allocs), 3);

  /* Truncated anywhere in the headers, with and without the csum hint. */
  w = v;
  w.flags = 0;
  w.hdr_len = 0;
  for (uint32_t l = 0; l < L.hlen; l++) {
    uint8_t *t = malloc(l ? l : 1);
    memcpy(t, f, l);
    CHECK_EINVAL(t, l, &v);
    CHECK_EINVAL(t, l, &w);
    free(t);
  }
  /* hdr_len / csum fields beyond the frame. */
  w = v;
  w.hdr_len = (uint16_t)(len + 1);
  CHECK_EINVAL(f, len, &w);
  w = v;
  w.csum_start = (uint16_t)(len + 10);
  CHECK_EINVAL(f, len, &w);
  w = v;
  w.csum_offset = (uint16_t)(len - w.csum_start - 1);
  CHECK_EINVAL(f, len, &w);
  w.flags = 0; /* ignored without NEEDS_CSUM */
  CHECK_EQ(seg_rc(f, len, &w, &allocs), 3);
  /* gso_size 0, unknown or mismatched types. */
  w = v;
  w.gso_size = 0;
  CHECK_EINVAL(f, len, &w);
  static const uint8_t bad_types[] = {
      LS_VNET_GSO_TCPV6, LS_VNET_GSO_UDP_L4,      LS_VNET_GSO_UDP, 2, 6, 0x7f,
      LS_VNET_GSO_ECN,   LS_VNET_GSO_TCPV6 | 0x80};
  for (size_t i = 0; i < sizeof(bad_types); i++) {
    w = v;
    w.gso_type = bad_types[i];
    CHECK_EINVAL(f, len, &w);
  }
  /* Not IP at all. */
  ls_put_be16(f + 12, 0x0806);
  CHECK_EINVAL(f, len, &v);
  ls_put_be16(f + 12, 0x0800);
  CHECK_EQ(seg_rc(f, len, &v, &allocs), 3);
  /* IPv4 header problems. */
  uint8_t *ip = f + L.l3;
  ip[0] = 0x44;
  CHECK_EINVAL(f, len, &v); /* ihl < 5 */
  ip[0] = 0x65;
  CHECK_EINVAL(f, len, &v); /* version */
  ip[0] = 0x4f;
  f[L.l3 + 9] = 0; /* ihl 60 lands inside TCP: proto 0 */
  CHECK_EINVAL(f, len, &v);
  f[L.l3 + 9] = 6;
  ip[0] = 0x45;
  ls_put_be16(ip + 6, 0x2000); /* MF */
  CHECK_EINVAL(f, len, &v);
  ls_put_be16(ip + 6, 0x0001); /* offset */
  CHECK_EINVAL(f, len, &v);
  ls_put_be16(ip + 6, 0x4000);
  /* TCP header problems. */
  uint8_t *th = f + L.l4;
  th[12] = 0x40; /* doff 4 */
  CHECK_EINVAL(f, len, &v);
  th[12] = 0xf0; /* doff 15: 60 bytes, fits in the frame */
  CHECK_EQ(seg_rc(f, len, &v, &allocs), 3);
  CHECK_EINVAL(f, L.l4 + 59, &((ls_vnet){.gso_type = LS_VNET_GSO_TCPV4, .gso_size = 100}));
  th[12] = 0x80;
  /* Too big. */
  CHECK_EINVAL(f, LS_FRAME_MAX + 1, &v);
  /* Three VLAN tags: the third is not looked through. */
  spec q3 = {.ntags = 2,
             .tpid = {0x88a8, 0x8100},
             .tcp_flags = TCP_ACK,
             .payload = 3000,
             .gso_type = LS_VNET_GSO_TCPV4,
             .gso_size = 1448};
  len = build(f, &q3, &L, &v);
  CHECK_EQ(seg_rc(f, len, &v, &allocs), 3);
  ls_put_be16(f + 20, 0x8100);
  CHECK_EINVAL(f, len, &v);

  /* UDP frame: TCP types and legacy UFO refused; UDP_L4 | ECN refused as the kernel does. */
  spec udp4 = {.udp = true, .payload = 3000, .gso_type = LS_VNET_GSO_UDP_L4, .gso_size = 1000};
  len = build(f, &udp4, &L, &v);
  CHECK_EQ(seg_rc(f, len, &v, &allocs), 3);
  static const uint8_t bad_udp[] = {LS_VNET_GSO_TCPV4, LS_VNET_GSO_TCPV6, LS_VNET_GSO_UDP,
                                    LS_VNET_GSO_UDP_L4 | LS_VNET_GSO_ECN};
  for (size_t i = 0; i < sizeof(bad_udp); i++) {
    w = v;
    w.gso_type = bad_udp[i];
    CHECK_EINVAL(f, len, &w);
  }
  /* Legacy UFO even when it would fit. */
  w = v;
  w.gso_type = LS_VNET_GSO_UDP;
  w.gso_size = 60000;
  CHECK_EINVAL(f, len, &w);
  /* An ICMP packet. */
  f[L.l3 + 9] = 1;
  CHECK_EINVAL(f, len, &v);

  /* IPv6: routing and fragment headers refused, truncated extension header refused. */
  spec x6 = {.v6 = true,
             .v6_dst = 16,
             .tcp_flags = TCP_ACK,
             .payload = 3000,
             .gso_type = LS_VNET_GSO_TCPV6,
             .gso_size = 1000};
  len = build(f, &x6, &L, &v);
  CHECK_EQ(seg_rc(f, len, &v, &allocs), 3);
  w = v;
  w.gso_type = LS_VNET_GSO_TCPV4;
  CHECK_EINVAL(f, len, &w);
  f[L.l3 + 6] = 43;
  CHECK_EINVAL(f, len, &v);
  f[L.l3 + 6] = 44;
  CHECK_EINVAL(f, len, &v);
  f[L.l3 + 6] = 0; /* hop-by-hop is fine where dstopts was */
  CHECK_EQ(seg_rc(f, len, &v, &allocs), 3);
  f[L.l3 + 40 + 1] = 200; /* extension header (1608 bytes) longer than the frame */
  CHECK_EINVAL(f, L.hlen + 100, &v);
  f[L.l3 + 40 + 1] = 1;
  f[L.l3 + 6] = 60;
  f[L.l3] = 0x50; /* version */
  CHECK_EINVAL(f, len, &v);
  f[L.l3] = 0x60;
  CHECK_EQ(seg_rc(f, len, &v, &allocs), 3);
  free(f);
}

static void test_enomem(void) {
  uint8_t *f = malloc(FRAME_BUF);
  layout L;
  ls_vnet v;
  spec sp = {
      .tcp_flags = TCP_ACK, .payload = 5000, .gso_type = LS_VNET_GSO_TCPV4, .gso_size = 1000};
  uint32_t len = build(f, &sp, &L, &v);
  for (int at = 0; at < 5; at++) {
    sink s;
    sink_init(&s, false);
    s.fail_at = at;
    CHECK_EQ(segment(f, len, &v, &s), -ENOMEM);
    CHECK_EQ(s.dones, at);
    CHECK(!s.bad_order);
    sink_free(&s);
  }
  v.gso_type = LS_VNET_GSO_NONE;
  sink s;
  sink_init(&s, false);
  s.fail_at = 0;
  CHECK_EQ(segment(f, len, &v, &s), -ENOMEM);
  CHECK_EQ(s.dones, 0);
  sink_free(&s);
  free(f);
}

/* ---- randomised robustness ---- */

static uint16_t rnd_u16(void) {
  switch (rnd_below(4)) {
  case 0:
    return (uint16_t)rnd_below(16);
  case 1:
    return (uint16_t)(rnd_below(200));
  case 2:
    return (uint16_t)(0xffff - rnd_below(16));
  default:
    return (uint16_t)rnd();
  }
}

static void test_fuzz(void) {
  static const spec bases[] = {
      {.tcp_opt = 12,
       .tcp_flags = TCP_ACK | TCP_PSH | TCP_FIN | TCP_CWR,
       .ip_id = 3,
       .seq = 77,
       .payload = 2900,
       .gso_type = LS_VNET_GSO_TCPV4 | LS_VNET_GSO_ECN,
       .gso_size = 1000},
      {.ntags = 1,
       .tpid = {0x8100},
       .v6 = true,
       .v6_hbh = 8,
       .tcp_flags = TCP_ACK,
       .payload = 2000,
       .gso_type = LS_VNET_GSO_TCPV6,
       .gso_size = 700},
      {.ntags = 2,
       .tpid = {0x88a8, 0x8100},
       .ip_opt = 4,
       .udp = true,
       .payload = 2500,
       .gso_type = LS_VNET_GSO_UDP_L4,
       .gso_size = 1200},
      {.v6 = true,
       .v6_dst = 16,
       .udp = true,
       .payload = 1800,
       .gso_type = LS_VNET_GSO_UDP_L4,
       .gso_size = 600},
  };
  enum { NBASE = sizeof(bases) / sizeof(bases[0]) };
  uint8_t *base[NBASE];
  uint32_t blen[NBASE];
  ls_vnet bv[NBASE];
  for (int i = 0; i < NBASE; i++) {
    layout L;
    base[i] = malloc(4096);
    blen[i] = build(base[i], &bases[i], &L, &bv[i]);
  }
  uint8_t *work = malloc(8192);
  const int iters = 300000;
  int produced = 0, refused = 0, segs = 0, it;
  for (it = 0; it < iters; it++) {
    int b = (int)rnd_below(NBASE);
    uint32_t len = blen[b];
    memcpy(work, base[b], len);
    ls_vnet v = bv[b];
    int nmut = 1 + (int)rnd_below(4);
    for (int m = 0; m < nmut; m++) {
      switch (rnd_below(10)) {
      case 0:
      case 1:
      case 2: /* a header byte */
        work[rnd_below(100)] = (uint8_t)rnd();
        break;
      case 3: /* a bit anywhere */
        work[rnd_below(len)] ^= (uint8_t)(1u << rnd_below(8));
        break;
      case 4: /* truncate, mostly into the headers */
        len = rnd_below(2) ? rnd_below(len < 120 ? len + 1 : 120) : rnd_below(len + 1);
        break;
      case 5: /* grow with junk */
        if (len < 4096) {
          uint32_t add = rnd_below(4096 - len);
          for (uint32_t i = 0; i < add; i++) work[len + i] = (uint8_t)rnd();
          len += add;
        }
        break;
      case 6:
        v.gso_size = rnd_u16();
        break;
      case 7:
        v.gso_type = rnd_below(2) ? (uint8_t)rnd_below(7) : (uint8_t)rnd();
        break;
      case 8:
        v.hdr_len = rnd_u16();
        v.flags = (uint8_t)rnd_below(4);
        break;
      default:
        if (rnd_below(2))
          v.csum_start = rnd_u16();
        else
          v.csum_offset = rnd_u16();
        break;
      }
    }
    /* An exact-size copy, so that ASan sees any read past the end. */
    uint8_t *f = malloc(len ? len : 1);
    memcpy(f, work, len);
    sink s;
    sink_init(&s, false);
    int rc = segment(f, len, &v, &s);
    CHECK(!s.bad_order);
    CHECK(s.pending == NULL);
    if (rc < 0) {
      CHECK_EQ(rc, -EINVAL);
      CHECK_EQ(s.allocs, 0);
      refused++;
    } else {
      produced++;
      segs += rc;
      CHECK(rc >= 1);
      CHECK_EQ(s.dones, rc);
      CHECK_EQ(s.allocs, rc);
      if (rc == 1) {
        CHECK_EQ(s.total, len);
      } else {
        /* n segments of one header length h: n*h + payload = total, h + payload = len;
         * all but the last carry exactly gso_size payload bytes, the last 1..gso_size. */
        uint64_t extra = s.total - len;
        CHECK(s.total > len && extra % (uint64_t)(rc - 1) == 0);
        uint64_t h = extra / (uint64_t)(rc - 1);
        CHECK(h >= 14 + 20 + 8 && h <= len);
        CHECK(!s.uneven);
        CHECK_EQ(s.first_len, h + v.gso_size);
        CHECK(s.last_len > h && s.last_len <= h + v.gso_size);
      }
    }
    sink_free(&s);
    /* In-place checksum completion on the same input. */
    int crc = ls_offload_csum(f, len, &v);
    CHECK(crc == 0 || crc == -EINVAL);
    free(f);
    if (check_failures > 20) break;
  }
  printf("     fuzz: %d iterations, %d segmented (%d segments), %d refused\n", it, produced, segs,
         refused);
  CHECK(produced > iters / 20);
  CHECK(refused > iters / 20);
  for (int i = 0; i < NBASE; i++) free(base[i]);
  free(work);
}

int main(void) {
  RUN(test_csum_helpers);
  RUN(test_csum_tcp4);
  RUN(test_csum_udp4);
  RUN(test_csum_tcp6);
  RUN(test_csum_bounds);
  RUN(test_tso_ipv4);
  RUN(test_tso_ipv6);
  RUN(test_tso_vlan);
  RUN(test_udp_l4);
  RUN(test_single_segment);
  RUN(test_malformed);
  RUN(test_enomem);
  RUN(test_fuzz);
  return CHECK_DONE();
}
