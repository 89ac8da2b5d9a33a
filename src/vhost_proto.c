/*
 * vhost_proto.c — the vhost-user message decoder, guest address translation and the
 * split-virtqueue descriptor-chain walker (see vhost_proto.h for the contract).
 *
 * Owns: nothing but pure functions over caller-provided memory. The rules that keep a
 * hostile front-end or guest from reaching outside what it shared are all here, so that
 * the unit tests (spec/c/test_vhost.c) and the fuzz target (fuzz/vhost_msg.c) exercise
 * exactly what the port runs.
 */
#include "vhost_proto.h"

#include <errno.h>
#include <string.h>

static uint32_t get32(const uint8_t *p) {
  uint32_t v;
  memcpy(&v, p, 4); /* little-endian on the wire, as on every target this builds for */
  return v;
}

static uint64_t get64(const uint8_t *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}

int ls_vhost_hdr_parse(const uint8_t *hdr, uint32_t *request, uint32_t *flags, uint32_t *size) {
  *request = get32(hdr);
  *flags = get32(hdr + 4);
  *size = get32(hdr + 8);
  if ((*flags & LS_VHOST_VERSION_MASK) != LS_VHOST_VERSION || (*flags & LS_VHOST_F_REPLY))
    return -EPROTO;
  if (*size > LS_VHOST_PAYLOAD_MAX) return -EMSGSIZE;
  return 0;
}

bool ls_vhost_has_reply(uint32_t request) {
  switch (request) {
  case LS_VHOST_GET_FEATURES:
  case LS_VHOST_GET_PROTOCOL_FEATURES:
  case LS_VHOST_GET_VRING_BASE:
  case LS_VHOST_GET_QUEUE_NUM:
  case LS_VHOST_SET_LOG_BASE:
  case LS_VHOST_GET_CONFIG:
  case LS_VHOST_POSTCOPY_ADVISE:
  case LS_VHOST_POSTCOPY_END:
  case LS_VHOST_GET_INFLIGHT_FD:
  case LS_VHOST_GET_MAX_MEM_SLOTS:
  case LS_VHOST_GET_STATUS:
    return true;
  default:
    return false;
  }
}

const char *ls_vhost_request_name(uint32_t r) {
  static const char *const names[] = {
      [LS_VHOST_GET_FEATURES] = "GET_FEATURES",
      [LS_VHOST_SET_FEATURES] = "SET_FEATURES",
      [LS_VHOST_SET_OWNER] = "SET_OWNER",
      [LS_VHOST_RESET_OWNER] = "RESET_OWNER",
      [LS_VHOST_SET_MEM_TABLE] = "SET_MEM_TABLE",
      [LS_VHOST_SET_LOG_BASE] = "SET_LOG_BASE",
      [LS_VHOST_SET_LOG_FD] = "SET_LOG_FD",
      [LS_VHOST_SET_VRING_NUM] = "SET_VRING_NUM",
      [LS_VHOST_SET_VRING_ADDR] = "SET_VRING_ADDR",
      [LS_VHOST_SET_VRING_BASE] = "SET_VRING_BASE",
      [LS_VHOST_GET_VRING_BASE] = "GET_VRING_BASE",
      [LS_VHOST_SET_VRING_KICK] = "SET_VRING_KICK",
      [LS_VHOST_SET_VRING_CALL] = "SET_VRING_CALL",
      [LS_VHOST_SET_VRING_ERR] = "SET_VRING_ERR",
      [LS_VHOST_GET_PROTOCOL_FEATURES] = "GET_PROTOCOL_FEATURES",
      [LS_VHOST_SET_PROTOCOL_FEATURES] = "SET_PROTOCOL_FEATURES",
      [LS_VHOST_GET_QUEUE_NUM] = "GET_QUEUE_NUM",
      [LS_VHOST_SET_VRING_ENABLE] = "SET_VRING_ENABLE",
      [LS_VHOST_SEND_RARP] = "SEND_RARP",
      [LS_VHOST_NET_SET_MTU] = "NET_SET_MTU",
      [LS_VHOST_SET_BACKEND_REQ_FD] = "SET_BACKEND_REQ_FD",
      [LS_VHOST_IOTLB_MSG] = "IOTLB_MSG",
      [LS_VHOST_SET_VRING_ENDIAN] = "SET_VRING_ENDIAN",
      [LS_VHOST_GET_CONFIG] = "GET_CONFIG",
      [LS_VHOST_SET_CONFIG] = "SET_CONFIG",
      [LS_VHOST_POSTCOPY_ADVISE] = "POSTCOPY_ADVISE",
      [LS_VHOST_POSTCOPY_LISTEN] = "POSTCOPY_LISTEN",
      [LS_VHOST_POSTCOPY_END] = "POSTCOPY_END",
      [LS_VHOST_GET_INFLIGHT_FD] = "GET_INFLIGHT_FD",
      [LS_VHOST_SET_INFLIGHT_FD] = "SET_INFLIGHT_FD",
      [LS_VHOST_RESET_DEVICE] = "RESET_DEVICE",
      [LS_VHOST_GET_MAX_MEM_SLOTS] = "GET_MAX_MEM_SLOTS",
      [LS_VHOST_ADD_MEM_REG] = "ADD_MEM_REG",
      [LS_VHOST_REM_MEM_REG] = "REM_MEM_REG",
      [LS_VHOST_SET_STATUS] = "SET_STATUS",
      [LS_VHOST_GET_STATUS] = "GET_STATUS",
  };
  return r < sizeof(names) / sizeof(names[0]) ? names[r] : NULL;
}

static bool add_overflows(uint64_t a, uint64_t b) {
  return a + b < a;
}

static int parse_mem(const uint8_t *p, uint32_t size, unsigned nfds, ls_vhost_msg *m) {
  if (size < 8) return -EPROTO;
  uint32_t n = get32(p);
  if (n == 0 || n > LS_VHOST_MAX_REGIONS) return -EPROTO;
  if (size != 8 + 32 * n || nfds != n) return -EPROTO;
  m->u.mem.nregions = n;
  for (uint32_t i = 0; i < n; i++) {
    const uint8_t *r = p + 8 + 32 * i;
    ls_vhost_region_msg *g = &m->u.mem.regions[i];
    g->gpa = get64(r);
    g->size = get64(r + 8);
    g->uva = get64(r + 16);
    g->mmap_offset = get64(r + 24);
    if (g->size == 0 || add_overflows(g->gpa, g->size) || add_overflows(g->uva, g->size) ||
        add_overflows(g->mmap_offset, g->size))
      return -EPROTO;
    for (uint32_t j = 0; j < i; j++) {
      const ls_vhost_region_msg *o = &m->u.mem.regions[j];
      if (g->gpa < o->gpa + o->size && o->gpa < g->gpa + g->size) return -EPROTO;
      if (g->uva < o->uva + o->size && o->uva < g->uva + g->size) return -EPROTO;
    }
  }
  return 0;
}

int ls_vhost_msg_parse(const uint8_t *buf, size_t len, unsigned nfds, ls_vhost_msg *m) {
  memset(m, 0, sizeof(*m));
  if (len < LS_VHOST_HDR_SIZE) return -EPROTO;
  int r = ls_vhost_hdr_parse(buf, &m->request, &m->flags, &m->size);
  if (r) return -EPROTO;
  if (len != LS_VHOST_HDR_SIZE + (size_t)m->size) return -EPROTO;
  const uint8_t *p = buf + LS_VHOST_HDR_SIZE;
  uint32_t size = m->size;
  switch (m->request) {
  /* requests without a payload (a front-end may still send one: ignored) and no fd */
  case LS_VHOST_GET_FEATURES:
  case LS_VHOST_GET_PROTOCOL_FEATURES:
  case LS_VHOST_GET_QUEUE_NUM:
  case LS_VHOST_SET_OWNER:
  case LS_VHOST_RESET_OWNER:
  case LS_VHOST_RESET_DEVICE:
  case LS_VHOST_GET_MAX_MEM_SLOTS:
    return nfds == 0 ? 0 : -EPROTO;
  case LS_VHOST_SET_FEATURES:
  case LS_VHOST_SET_PROTOCOL_FEATURES:
  case LS_VHOST_SEND_RARP:
  case LS_VHOST_NET_SET_MTU:
    if (size != 8 || nfds) return -EPROTO;
    m->u.u64 = get64(p);
    return 0;
  case LS_VHOST_SET_VRING_NUM:
  case LS_VHOST_SET_VRING_BASE:
  case LS_VHOST_GET_VRING_BASE:
  case LS_VHOST_SET_VRING_ENABLE:
    if (size != 8 || nfds) return -EPROTO;
    m->u.state.index = get32(p);
    m->u.state.num = get32(p + 4);
    if (m->u.state.index >= LS_VHOST_NQUEUES) return -EPROTO;
    if (m->request == LS_VHOST_SET_VRING_NUM &&
        (m->u.state.num == 0 || m->u.state.num > LS_VHOST_QUEUE_MAX ||
         (m->u.state.num & (m->u.state.num - 1))))
      return -EPROTO; /* a split ring's size is a power of 2, at most 32768 */
    if (m->request == LS_VHOST_SET_VRING_BASE && m->u.state.num > 0xffff) return -EPROTO;
    if (m->request == LS_VHOST_SET_VRING_ENABLE && m->u.state.num > 1) return -EPROTO;
    return 0;
  case LS_VHOST_SET_VRING_ADDR:
    if (size != 40 || nfds) return -EPROTO;
    m->u.addr.index = get32(p);
    m->u.addr.flags = get32(p + 4);
    m->u.addr.desc = get64(p + 8);
    m->u.addr.used = get64(p + 16);
    m->u.addr.avail = get64(p + 24);
    m->u.addr.log = get64(p + 32);
    if (m->u.addr.index >= LS_VHOST_NQUEUES) return -EPROTO;
    /* alignment the virtio spec requires: 16 (desc), 2 (avail), 4 (used) */
    if ((m->u.addr.desc & 15) || (m->u.addr.avail & 1) || (m->u.addr.used & 3)) return -EPROTO;
    return 0;
  case LS_VHOST_SET_VRING_KICK:
  case LS_VHOST_SET_VRING_CALL:
  case LS_VHOST_SET_VRING_ERR:
    if (size != 8) return -EPROTO;
    m->u.u64 = get64(p);
    if ((m->u.u64 & LS_VHOST_VRING_IDX_MASK) >= LS_VHOST_NQUEUES) return -EPROTO;
    if (m->u.u64 & ~(uint64_t)(LS_VHOST_VRING_IDX_MASK | LS_VHOST_VRING_NOFD)) return -EPROTO;
    if (nfds != ((m->u.u64 & LS_VHOST_VRING_NOFD) ? 0u : 1u)) return -EPROTO;
    return 0;
  case LS_VHOST_SET_MEM_TABLE:
    return parse_mem(p, size, nfds, m);
  case LS_VHOST_SET_BACKEND_REQ_FD:
  case LS_VHOST_SET_LOG_FD:
    return nfds == 1 ? 0 : -EPROTO;
  default:
    return 0; /* decoded as far as its header; the caller decides what to do with it */
  }
}

/* ---- guest memory ----------------------------------------------------------------------- */

uint8_t *ls_vhost_gpa(const ls_vhost_mem *m, uint64_t gpa, uint64_t len) {
  if (len == 0) len = 1;
  for (uint32_t i = 0; i < m->n && i < LS_VHOST_MAX_REGIONS; i++) {
    const ls_vhost_region *r = &m->r[i];
    if (gpa >= r->gpa && gpa - r->gpa < r->size && len <= r->size - (gpa - r->gpa))
      return r->host + (gpa - r->gpa);
  }
  return NULL;
}

uint8_t *ls_vhost_uva(const ls_vhost_mem *m, uint64_t uva, uint64_t len) {
  if (len == 0) len = 1;
  for (uint32_t i = 0; i < m->n && i < LS_VHOST_MAX_REGIONS; i++) {
    const ls_vhost_region *r = &m->r[i];
    if (uva >= r->uva && uva - r->uva < r->size && len <= r->size - (uva - r->uva))
      return r->host + (uva - r->uva);
  }
  return NULL;
}

/* The region holding gpa, or NULL. */
static const ls_vhost_region *region_of(const ls_vhost_mem *m, uint64_t gpa) {
  for (uint32_t i = 0; i < m->n && i < LS_VHOST_MAX_REGIONS; i++) {
    const ls_vhost_region *r = &m->r[i];
    if (gpa >= r->gpa && gpa - r->gpa < r->size) return r;
  }
  return NULL;
}

/* ---- descriptor chains -------------------------------------------------------------------- */

int ls_vhost_chain(const volatile ls_vring_desc *desc, uint32_t num, uint32_t head,
                   const ls_vhost_mem *m, bool write, ls_vhost_seg *segs, uint32_t max,
                   uint32_t *total) {
  uint32_t n = 0, bytes = 0, seen = 0, i = head;
  *total = 0;
  if (num == 0 || head >= num) return -EINVAL;
  for (;;) {
    if (++seen > num) return -ELOOP;
    /* one read of each field: the guest may be rewriting the descriptor as we look */
    uint64_t addr = desc[i].addr;
    uint32_t len = desc[i].len;
    uint16_t flags = desc[i].flags;
    uint16_t next = desc[i].next;
    if (flags & LS_VRING_DESC_F_INDIRECT) return -EINVAL;
    if (((flags & LS_VRING_DESC_F_WRITE) != 0) != write) return -EINVAL;
    if (len > LS_VHOST_CHAIN_BYTES - bytes) return -EINVAL;
    /* translate, splitting where the buffer crosses into the next region */
    while (len) {
      const ls_vhost_region *r = region_of(m, addr);
      if (!r) return -EFAULT;
      uint64_t room = r->size - (addr - r->gpa);
      uint32_t piece = room < len ? (uint32_t)room : len;
      if (n == max) return -E2BIG;
      segs[n].p = r->host + (addr - r->gpa);
      segs[n].len = piece;
      n++;
      bytes += piece;
      addr += piece;
      len -= piece;
    }
    if (!(flags & LS_VRING_DESC_F_NEXT)) break;
    if (next >= num) return -EINVAL;
    i = next;
  }
  *total = bytes;
  return (int)n;
}

uint32_t ls_vhost_copy_from(const ls_vhost_seg *segs, uint32_t n, uint32_t off, uint8_t *dst,
                            uint32_t len) {
  uint32_t done = 0;
  for (uint32_t i = 0; i < n && done < len; i++) {
    if (off >= segs[i].len) {
      off -= segs[i].len;
      continue;
    }
    uint32_t k = segs[i].len - off;
    if (k > len - done) k = len - done;
    memcpy(dst + done, segs[i].p + off, k);
    done += k;
    off = 0;
  }
  return done;
}

uint32_t ls_vhost_copy_to(const ls_vhost_seg *segs, uint32_t n, uint32_t off, const uint8_t *src,
                          uint32_t len) {
  uint32_t done = 0;
  for (uint32_t i = 0; i < n && done < len; i++) {
    if (off >= segs[i].len) {
      off -= segs[i].len;
      continue;
    }
    uint32_t k = segs[i].len - off;
    if (k > len - done) k = len - done;
    memcpy(segs[i].p + off, src + done, k);
    done += k;
    off = 0;
  }
  return done;
}
