/*
 * offload.c — software checksum completion and GSO segmentation (see offload.h).
 *
 * Owns: the Internet checksum, the header walk that finds the real IP and L4 headers of
 * a GSO super-frame (hdr_len and csum_start from the peer are hints at best), and the
 * per-segment header fix-ups that Linux's skb_segment() / tcp_gso_segment() /
 * __udp_gso_segment() / inet_gso_segment() / ipv6_gso_segment() perform. Every offset
 * is checked against the frame length before it is used; all arithmetic on offsets is
 * done in uint32_t on values bounded by the (64 KiB) frame, so nothing can wrap.
 */
#include "offload.h"

#include "frame.h"

#include <errno.h>
#include <string.h>

#define ETH_P_IPV4 0x0800
#define ETH_P_IPV6 0x86dd
#define IPPROTO_HOPOPTS_ 0
#define IPPROTO_TCP_ 6
#define IPPROTO_UDP_ 17
#define IPPROTO_DSTOPTS_ 60
#define IPV4_HLEN 20
#define IPV6_HLEN 40
#define TCP_HLEN 20
#define UDP_HLEN 8
#define IPV6_MAX_EXTHDRS 4 /* hop-by-hop + destination options, with room to spare */

#define TCP_FIN 0x01
#define TCP_PSH 0x08
#define TCP_CWR 0x80

/* ---- checksum ---- */

uint32_t ls_csum_partial(const void *data, size_t len, uint32_t sum) {
  const uint8_t *p = data;
  /* Sum native-order 32-bit words into 64 bits (no overflow below 16 GiB), fold, and
   * swap into network order: the ones' complement sum is byte-order independent. */
  uint64_t acc = 0;
  while (len >= 16) {
    uint32_t w[4];
    memcpy(w, p, sizeof(w));
    acc += (uint64_t)w[0] + w[1] + w[2] + w[3];
    p += 16;
    len -= 16;
  }
  while (len >= 4) {
    uint32_t w;
    memcpy(&w, p, sizeof(w));
    acc += w;
    p += 4;
    len -= 4;
  }
  acc = (acc & 0xffffffffu) + (acc >> 32);
  acc = (acc & 0xffffffffu) + (acc >> 32);
  acc = (acc & 0xffffu) + (acc >> 16);
  acc = (acc & 0xffffu) + (acc >> 16);
  uint32_t r = (uint32_t)acc;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  r = ((r & 0xffu) << 8) | (r >> 8);
#endif
  if (len >= 2) {
    r += (uint32_t)ls_get_be16(p);
    p += 2;
    len -= 2;
  }
  if (len) r += (uint32_t)p[0] << 8;
  r += sum; /* end-around carry keeps the ones' complement value */
  if (r < sum) r++;
  return r;
}

uint16_t ls_csum_fold(uint32_t sum) {
  sum = (sum & 0xffffu) + (sum >> 16);
  sum = (sum & 0xffffu) + (sum >> 16);
  return (uint16_t)~sum;
}

static uint32_t csum_add(uint32_t a, uint32_t b) {
  uint32_t r = a + b;
  return r + (r < b);
}

static bool csum_field_ok(uint32_t len, const ls_vnet *v) {
  return (uint32_t)v->csum_start + v->csum_offset + 2 <= len;
}

static void csum_complete(uint8_t *frame, uint32_t len, const ls_vnet *v) {
  uint16_t c = ls_csum_fold(ls_csum_partial(frame + v->csum_start, len - v->csum_start, 0));
  ls_put_be16(frame + v->csum_start + v->csum_offset, c ? c : 0xffff);
}

int ls_offload_csum(uint8_t *frame, uint32_t len, const ls_vnet *v) {
  if (!(v->flags & LS_VNET_F_NEEDS_CSUM)) return 0;
  if (!csum_field_ok(len, v)) return -EINVAL;
  csum_complete(frame, len, v);
  return 0;
}

/* ---- header walk ---- */

typedef struct gso_hdrs {
  uint32_t l3;   /* IP header */
  uint32_t l4;   /* TCP/UDP header */
  uint32_t hlen; /* all headers: the part copied into every segment */
  bool ipv6;
  uint8_t proto; /* IPPROTO_TCP_ or IPPROTO_UDP_ */
} gso_hdrs;

static int parse_ipv4(const uint8_t *f, uint32_t len, gso_hdrs *h) {
  const uint8_t *ip = f + h->l3;
  if (len - h->l3 < IPV4_HLEN) return -EINVAL;
  uint32_t ihl = (uint32_t)(ip[0] & 0x0f) * 4;
  if ((ip[0] >> 4) != 4 || ihl < IPV4_HLEN || len - h->l3 < ihl) return -EINVAL;
  if (ls_get_be16(ip + 6) & 0x3fff) return -EINVAL; /* MF or a fragment offset */
  h->ipv6 = false;
  h->proto = ip[9];
  h->l4 = h->l3 + ihl;
  return 0;
}

static int parse_ipv6(const uint8_t *f, uint32_t len, gso_hdrs *h) {
  const uint8_t *ip = f + h->l3;
  if (len - h->l3 < IPV6_HLEN || (ip[0] >> 4) != 6) return -EINVAL;
  uint8_t next = ip[6];
  uint32_t off = h->l3 + IPV6_HLEN;
  for (int i = 0; i < IPV6_MAX_EXTHDRS; i++) {
    /* Hop-by-hop (first only) and destination options neither change the pseudo-header
     * nor need per-segment edits; anything else (routing, fragment, AH, ESP...) does. */
    if (!(next == IPPROTO_DSTOPTS_ || (next == IPPROTO_HOPOPTS_ && i == 0))) break;
    if (len - off < 8) return -EINVAL;
    uint32_t elen = ((uint32_t)f[off + 1] + 1) * 8;
    if (len - off < elen) return -EINVAL;
    next = f[off];
    off += elen;
  }
  h->ipv6 = true;
  h->proto = next;
  h->l4 = off;
  return 0;
}

static int parse_gso(const uint8_t *f, uint32_t len, gso_hdrs *h) {
  ls_eth_info e;
  if (ls_eth_parse(f, len, &e) < 0) return -EINVAL;
  h->l3 = e.l2_len;
  int rc;
  if (e.ethertype == ETH_P_IPV4) {
    rc = parse_ipv4(f, len, h);
  } else if (e.ethertype == ETH_P_IPV6) {
    rc = parse_ipv6(f, len, h);
  } else {
    return -EINVAL; /* includes a third VLAN tag */
  }
  if (rc < 0) return rc;
  if (h->proto == IPPROTO_TCP_) {
    if (len - h->l4 < TCP_HLEN) return -EINVAL;
    uint32_t doff = (uint32_t)(f[h->l4 + 12] >> 4) * 4;
    if (doff < TCP_HLEN || len - h->l4 < doff) return -EINVAL;
    h->hlen = h->l4 + doff;
  } else if (h->proto == IPPROTO_UDP_) {
    if (len - h->l4 < UDP_HLEN) return -EINVAL;
    h->hlen = h->l4 + UDP_HLEN;
  } else {
    return -EINVAL;
  }
  return 0;
}

/* ---- segmentation ---- */

static int segment_one(const uint8_t *frame, uint32_t len, const ls_vnet *v, ls_seg_alloc_fn alloc,
                       ls_seg_done_fn done, void *ctx) {
  uint8_t *d = alloc(ctx, len);
  if (!d) return -ENOMEM;
  memcpy(d, frame, len);
  if (v->flags & LS_VNET_F_NEEDS_CSUM) csum_complete(d, len, v);
  done(ctx, len);
  return 1;
}

/* Fix the headers of one segment d of seg_len bytes (headers already copied), index i
 * of n, whose payload starts `off` bytes into the super-frame's payload. */
static void fix_segment(uint8_t *d, uint32_t seg_len, const gso_hdrs *h, uint32_t i, uint32_t n,
                        uint32_t off, uint32_t addr_sum) {
  uint8_t *ip = d + h->l3;
  uint8_t *l4 = d + h->l4;
  uint32_t l4_len = seg_len - h->l4;
  if (h->ipv6) {
    ls_put_be16(ip + 4, (uint16_t)(seg_len - h->l3 - IPV6_HLEN));
  } else {
    uint32_t ihl = (uint32_t)(ip[0] & 0x0f) * 4;
    ls_put_be16(ip + 2, (uint16_t)(seg_len - h->l3));
    ls_put_be16(ip + 4, (uint16_t)(ls_get_be16(ip + 4) + i));
    ls_put_be16(ip + 10, 0);
    ls_put_be16(ip + 10, ls_csum_fold(ls_csum_partial(ip, ihl, 0)));
  }
  uint32_t sum = csum_add(addr_sum, (uint32_t)h->proto + (l4_len >> 16) + (l4_len & 0xffff));
  if (h->proto == IPPROTO_TCP_) {
    ls_put_be32(l4 + 4, ls_get_be32(l4 + 4) + off);
    if (i > 0) l4[13] &= (uint8_t)~TCP_CWR;
    if (i + 1 < n) l4[13] &= (uint8_t) ~(TCP_FIN | TCP_PSH);
    ls_put_be16(l4 + 16, 0);
    ls_put_be16(l4 + 16, ls_csum_fold(ls_csum_partial(l4, l4_len, sum)));
  } else {
    ls_put_be16(l4 + 4, (uint16_t)l4_len);
    ls_put_be16(l4 + 6, 0);
    uint16_t c = ls_csum_fold(ls_csum_partial(l4, l4_len, sum));
    ls_put_be16(l4 + 6, c ? c : 0xffff);
  }
}

int ls_offload_segment(const uint8_t *frame, uint32_t len, const ls_vnet *v, ls_seg_alloc_fn alloc,
                       ls_seg_done_fn done, void *ctx) {
  if (!frame || !v || !alloc || !done) return -EINVAL;
  if (len < LS_ETH_HLEN || v->hdr_len > len) return -EINVAL;
  if ((v->flags & LS_VNET_F_NEEDS_CSUM) && !csum_field_ok(len, v)) return -EINVAL;
  if (v->gso_type == LS_VNET_GSO_NONE) return segment_one(frame, len, v, alloc, done, ctx);

  uint8_t type = v->gso_type & (uint8_t)~LS_VNET_GSO_ECN;
  bool ecn = (v->gso_type & LS_VNET_GSO_ECN) != 0;
  if (v->gso_size == 0 || len > LS_FRAME_MAX) return -EINVAL;
  gso_hdrs h;
  if (parse_gso(frame, len, &h) < 0) return -EINVAL;
  switch (type) {
  case LS_VNET_GSO_TCPV4:
    if (h.ipv6 || h.proto != IPPROTO_TCP_) return -EINVAL;
    break;
  case LS_VNET_GSO_TCPV6:
    if (!h.ipv6 || h.proto != IPPROTO_TCP_) return -EINVAL;
    break;
  case LS_VNET_GSO_UDP_L4:
    if (ecn || h.proto != IPPROTO_UDP_) return -EINVAL; /* the kernel refuses ECN here too */
    break;
  default: /* LS_VNET_GSO_UDP (UFO) and unknown types */
    return -EINVAL;
  }

  /* Source and destination addresses, the constant part of the pseudo-header. */
  uint32_t addr_sum =
      h.ipv6 ? ls_csum_partial(frame + h.l3 + 8, 32, 0) : ls_csum_partial(frame + h.l3 + 12, 8, 0);
  uint32_t payload = len - h.hlen;
  uint32_t mss = v->gso_size;
  uint32_t n = payload <= mss ? 1 : (payload + mss - 1) / mss;
  for (uint32_t i = 0, off = 0; i < n; i++, off += mss) {
    uint32_t plen = payload - off < mss ? payload - off : mss;
    uint32_t seg_len = h.hlen + plen;
    uint8_t *d = alloc(ctx, seg_len);
    if (!d) return -ENOMEM;
    memcpy(d, frame, h.hlen);
    memcpy(d + h.hlen, frame + h.hlen + off, plen);
    fix_segment(d, seg_len, &h, i, n, off, addr_sum);
    done(ctx, seg_len);
  }
  return (int)n;
}
