/*
 * vhost_msg.c — libFuzzer target: the vhost-user port's untrusted-input parsers
 * (vhost_proto.h), the message decoder and the split-ring descriptor walker.
 *
 * Owns: the driver. The first byte picks what the rest is:
 *  - even: one vhost-user message as it comes off the socket (a byte saying how many fds
 *    came with it, then header and payload). Whatever it is, the decoder must not read
 *    past it, and a message it accepts must be exactly what its type allows: its length
 *    12 + size, queue indexes below LS_VHOST_NQUEUES, ring sizes powers of two, kick/call
 *    fds present unless flagged absent, a memory table of 1..8 regions with one fd each,
 *    none empty, overflowing or overlapping another.
 *  - odd: a guest: 1 to 3 memory regions (each its own heap block of its exact size, so
 *    ASan sees a byte read or written outside), placed at guest addresses of the input's
 *    choosing (adjacent, apart, overlapping the end of the address space), a descriptor
 *    table of the input's bytes, then chains walked from heads of its choice, for reading
 *    or writing, into a bounded number of segments. A walk that succeeds must give
 *    segments inside the regions whose lengths add up to the total, never more than the
 *    bound, and copying the whole chain in and out through them must stay inside; one that
 *    fails must say why with one of the documented errors and a total of 0. Address
 *    translation is checked on the same regions.
 */
#include <errno.h>

#include "fuzz.h"
#include "vhost_proto.h"

static void check_msg(ls_fz *z) {
  unsigned nfds = fz_u8(z) % (LS_VHOST_MAX_FDS + 2);
  size_t len;
  const uint8_t *p = fz_bytes(z, LS_VHOST_HDR_SIZE + LS_VHOST_PAYLOAD_MAX + 16, &len);
  /* a private copy of exactly len bytes: ASan catches a read past the message */
  uint8_t *buf = malloc(len ? len : 1);
  memcpy(buf, p, len);
  if (len >= LS_VHOST_HDR_SIZE) {
    uint32_t req, flags, size;
    int h = ls_vhost_hdr_parse(buf, &req, &flags, &size);
    FZ_CHECK(h == 0 || h == -EPROTO || h == -EMSGSIZE, "header: %d", h);
    if (h == 0) FZ_CHECK(size <= LS_VHOST_PAYLOAD_MAX, "size %u", size);
  }
  ls_vhost_msg m;
  int r = ls_vhost_msg_parse(buf, len, nfds, &m);
  FZ_CHECK(r == 0 || r == -EPROTO, "parse: %d", r);
  if (r == 0) {
    FZ_CHECK(len == LS_VHOST_HDR_SIZE + (size_t)m.size, "len %zu size %u", len, m.size);
    FZ_CHECK((m.flags & LS_VHOST_VERSION_MASK) == LS_VHOST_VERSION && !(m.flags & LS_VHOST_F_REPLY),
             "flags 0x%x", m.flags);
    switch (m.request) {
    case LS_VHOST_SET_VRING_NUM:
      FZ_CHECK(m.u.state.num && m.u.state.num <= LS_VHOST_QUEUE_MAX &&
                   !(m.u.state.num & (m.u.state.num - 1)),
               "ring size %u", m.u.state.num);
      /* fall through */
    case LS_VHOST_SET_VRING_BASE:
    case LS_VHOST_GET_VRING_BASE:
    case LS_VHOST_SET_VRING_ENABLE:
      FZ_CHECK(m.u.state.index < LS_VHOST_NQUEUES && nfds == 0, "index %u", m.u.state.index);
      break;
    case LS_VHOST_SET_VRING_ADDR:
      FZ_CHECK(m.u.addr.index < LS_VHOST_NQUEUES && nfds == 0, "index %u", m.u.addr.index);
      break;
    case LS_VHOST_SET_VRING_KICK:
    case LS_VHOST_SET_VRING_CALL:
    case LS_VHOST_SET_VRING_ERR:
      FZ_CHECK((m.u.u64 & LS_VHOST_VRING_IDX_MASK) < LS_VHOST_NQUEUES, "index");
      FZ_CHECK(nfds == ((m.u.u64 & LS_VHOST_VRING_NOFD) ? 0u : 1u), "%u fds", nfds);
      break;
    case LS_VHOST_SET_MEM_TABLE: {
      uint32_t n = m.u.mem.nregions;
      FZ_CHECK(n >= 1 && n <= LS_VHOST_MAX_REGIONS && nfds == n, "%u regions, %u fds", n, nfds);
      for (uint32_t i = 0; i < n; i++) {
        const ls_vhost_region_msg *a = &m.u.mem.regions[i];
        FZ_CHECK(a->size && a->gpa + a->size > a->gpa && a->uva + a->size > a->uva &&
                     a->mmap_offset + a->size > a->mmap_offset,
                 "region %u", i);
        for (uint32_t j = 0; j < i; j++) {
          const ls_vhost_region_msg *b = &m.u.mem.regions[j];
          FZ_CHECK(a->gpa >= b->gpa + b->size || b->gpa >= a->gpa + a->size, "overlap %u %u", i, j);
        }
      }
      break;
    }
    default:
      break;
    }
  }
  free(buf);
}

#define MAX_REGIONS 3
#define REGION_MAX 4096
#define TABLE_MAX 64

static bool inside(const ls_vhost_mem *m, const uint8_t *p, uint32_t len) {
  for (uint32_t i = 0; i < m->n; i++) {
    const uint8_t *lo = m->r[i].host;
    if (p >= lo && p + len <= lo + m->r[i].size) return true;
  }
  return false;
}

static void check_walk(ls_fz *z) {
  ls_vhost_mem mem;
  memset(&mem, 0, sizeof(mem));
  mem.n = 1 + fz_below(z, MAX_REGIONS);
  uint64_t gpa = fz_bool(z) ? UINT64_MAX - fz_u16(z) : fz_u16(z);
  for (uint32_t i = 0; i < mem.n; i++) {
    uint32_t size = 1 + fz_below(z, REGION_MAX);
    mem.r[i].host = malloc(size);
    memset(mem.r[i].host, 0xa5, size);
    mem.r[i].size = size;
    if (UINT64_MAX - gpa < size) gpa = fz_u16(z); /* regions never wrap the address space */
    if (UINT64_MAX - gpa < size) gpa = 0;
    mem.r[i].gpa = gpa;
    mem.r[i].uva = gpa ^ 0x7f0000000000ull;
    uint8_t gap = fz_u8(z);
    gpa += size + (gap < 128 ? 0 : gap); /* often adjacent: chains cross regions */
    if (gpa < mem.r[i].gpa) gpa = 0;
  }
  /* address translation */
  for (int k = 0; k < 4; k++) {
    uint32_t i = fz_below(z, mem.n);
    uint64_t a = mem.r[i].gpa + (int16_t)fz_u16(z);
    uint64_t len = fz_u16(z) % (2 * REGION_MAX);
    uint8_t *p = ls_vhost_gpa(&mem, a, len);
    if (p) FZ_CHECK(inside(&mem, p, len ? (uint32_t)len : 1), "gpa 0x%llx", (unsigned long long)a);
    p = ls_vhost_uva(&mem, a ^ 0x7f0000000000ull, len);
    if (p) FZ_CHECK(inside(&mem, p, len ? (uint32_t)len : 1), "uva");
  }
  /* a descriptor table: addresses mostly near the regions, so chains are valid often */
  uint32_t num = 1u << fz_below(z, 7);
  ls_vring_desc *table = calloc(num, sizeof(*table));
  for (uint32_t i = 0; i < num; i++) {
    uint32_t r = fz_below(z, mem.n);
    uint8_t how = fz_u8(z);
    table[i].addr = how < 200 ? mem.r[r].gpa + fz_below(z, (uint32_t)mem.r[r].size + 64)
                              : ((uint64_t)fz_u32(z) << 32 | fz_u32(z));
    table[i].len = how & 1 ? fz_u32(z) : fz_u16(z) % (REGION_MAX + 64);
    table[i].flags = fz_u8(z) & 7;
    table[i].next = (uint16_t)(fz_bool(z) ? fz_u16(z) : fz_below(z, num));
  }
  ls_vhost_seg segs[LS_VHOST_CHAIN_SEGS];
  while (fz_more(z)) {
    uint32_t head = fz_bool(z) ? fz_u16(z) : fz_below(z, num);
    bool write = fz_bool(z);
    uint32_t max = 1 + fz_below(z, LS_VHOST_CHAIN_SEGS);
    uint32_t total = 12345;
    int r = ls_vhost_chain(table, num, head, &mem, write, segs, max, &total);
    if (r < 0) {
      FZ_CHECK(r == -EINVAL || r == -ELOOP || r == -E2BIG || r == -EFAULT, "walk: %d", r);
      FZ_CHECK(total == 0, "failed walk with total %u", total);
      continue;
    }
    FZ_CHECK((uint32_t)r <= max, "%d segments, max %u", r, max);
    FZ_CHECK(total <= LS_VHOST_CHAIN_BYTES, "total %u", total);
    uint64_t sum = 0;
    for (int i = 0; i < r; i++) {
      FZ_CHECK(segs[i].len > 0 && inside(&mem, segs[i].p, segs[i].len), "segment %d", i);
      sum += segs[i].len;
    }
    FZ_CHECK(sum == total, "segments add to %llu, total %u", (unsigned long long)sum, total);
    /* the whole chain through the copy helpers, at an offset of the input's choosing */
    uint32_t off = fz_below(z, total + 2);
    uint32_t want = total + 8;
    uint8_t *tmp = malloc(want);
    uint32_t got = ls_vhost_copy_from(segs, (uint32_t)r, off, tmp, want);
    FZ_CHECK(got == (off < total ? total - off : 0), "copied %u of %u from %u", got, total, off);
    uint32_t put = ls_vhost_copy_to(segs, (uint32_t)r, off, tmp, got);
    FZ_CHECK(put == got, "put %u of %u", put, got);
    free(tmp);
  }
  free(table);
  for (uint32_t i = 0; i < mem.n; i++) free(mem.r[i].host);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ls_fz z = {data, size};
  if (fz_u8(&z) & 1)
    check_walk(&z);
  else
    check_msg(&z);
  return 0;
}
