/*
 * vhost_proto.h — the vhost-user wire protocol and the split-virtqueue layout, as pure
 * functions: no libuv, no sockets, no allocation (port_vhost.c does the I/O).
 *
 * Owns: the message header and payload decoding (ls_vhost_hdr_parse, ls_vhost_msg_parse),
 * the guest memory table and its translation of guest-physical and front-end virtual
 * addresses into our mapping (ls_vhost_gpa, ls_vhost_uva), the descriptor-chain walker
 * (ls_vhost_chain) and the copy helpers that move bytes between a chain and a frame.
 *
 * Everything here takes untrusted input: the front-end (QEMU) writes the messages, and the
 * guest writes the descriptor table and rings while we read them. So a message is fully
 * validated before anything acts on it (sizes exact for its type, queue indexes in range,
 * one fd per memory region, regions that neither overflow nor overlap); every descriptor
 * is read once into a local copy (volatile loads: the guest may rewrite it meanwhile) and
 * its buffer translated through the memory table before a byte of it is touched; a chain
 * is walked at most `num` descriptors deep (more means a loop) and into at most a bounded
 * number of segments. A translated range always lies entirely within one mapped region.
 *
 * Reference: QEMU docs/interop/vhost-user.rst; virtio 1.1 section 2.6 (split virtqueues).
 */
#ifndef LS_VHOST_PROTO_H
#define LS_VHOST_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- the protocol -------------------------------------------------------------------------- */

#define LS_VHOST_HDR_SIZE 12
#define LS_VHOST_PAYLOAD_MAX 4096 /* larger than any message we take (a memory table: 264) */
#define LS_VHOST_MAX_FDS 8        /* VHOST_MEMORY_BASELINE_NREGIONS: QEMU sends at most 8 */
#define LS_VHOST_MAX_REGIONS 8
#define LS_VHOST_NQUEUES 2 /* one queue pair: 0 = RX (to the guest), 1 = TX (from it) */
#define LS_VHOST_QUEUE_MAX 32768

/* header flags */
#define LS_VHOST_VERSION 0x1u
#define LS_VHOST_VERSION_MASK 0x3u
#define LS_VHOST_F_REPLY 0x4u
#define LS_VHOST_F_NEED_REPLY 0x8u

/* SET_VRING_KICK / CALL / ERR payload */
#define LS_VHOST_VRING_IDX_MASK 0xffu
#define LS_VHOST_VRING_NOFD 0x100u /* no fd: the ring is polled (kick) or not signalled */

/* front-end requests */
enum ls_vhost_request {
  LS_VHOST_NONE = 0,
  LS_VHOST_GET_FEATURES = 1,
  LS_VHOST_SET_FEATURES = 2,
  LS_VHOST_SET_OWNER = 3,
  LS_VHOST_RESET_OWNER = 4,
  LS_VHOST_SET_MEM_TABLE = 5,
  LS_VHOST_SET_LOG_BASE = 6,
  LS_VHOST_SET_LOG_FD = 7,
  LS_VHOST_SET_VRING_NUM = 8,
  LS_VHOST_SET_VRING_ADDR = 9,
  LS_VHOST_SET_VRING_BASE = 10,
  LS_VHOST_GET_VRING_BASE = 11,
  LS_VHOST_SET_VRING_KICK = 12,
  LS_VHOST_SET_VRING_CALL = 13,
  LS_VHOST_SET_VRING_ERR = 14,
  LS_VHOST_GET_PROTOCOL_FEATURES = 15,
  LS_VHOST_SET_PROTOCOL_FEATURES = 16,
  LS_VHOST_GET_QUEUE_NUM = 17,
  LS_VHOST_SET_VRING_ENABLE = 18,
  LS_VHOST_SEND_RARP = 19,
  LS_VHOST_NET_SET_MTU = 20,
  LS_VHOST_SET_BACKEND_REQ_FD = 21,
  LS_VHOST_IOTLB_MSG = 22,
  LS_VHOST_SET_VRING_ENDIAN = 23,
  LS_VHOST_GET_CONFIG = 24,
  LS_VHOST_SET_CONFIG = 25,
  LS_VHOST_POSTCOPY_ADVISE = 28,
  LS_VHOST_POSTCOPY_LISTEN = 29,
  LS_VHOST_POSTCOPY_END = 30,
  LS_VHOST_GET_INFLIGHT_FD = 31,
  LS_VHOST_SET_INFLIGHT_FD = 32,
  LS_VHOST_RESET_DEVICE = 34,
  LS_VHOST_GET_MAX_MEM_SLOTS = 36,
  LS_VHOST_ADD_MEM_REG = 37,
  LS_VHOST_REM_MEM_REG = 38,
  LS_VHOST_SET_STATUS = 39,
  LS_VHOST_GET_STATUS = 40,
};

/* feature bits (SET_FEATURES) */
#define LS_VIRTIO_NET_F_CSUM 0
#define LS_VIRTIO_NET_F_GUEST_CSUM 1
#define LS_VIRTIO_NET_F_MRG_RXBUF 15
#define LS_VIRTIO_RING_F_INDIRECT_DESC 28
#define LS_VIRTIO_RING_F_EVENT_IDX 29
#define LS_VHOST_USER_F_PROTOCOL_FEATURES 30
#define LS_VIRTIO_F_VERSION_1 32

/* protocol feature bits (SET_PROTOCOL_FEATURES) */
#define LS_VHOST_PROTO_F_MQ 0
#define LS_VHOST_PROTO_F_REPLY_ACK 3

#define LS_BIT(n) (1ULL << (n))

/* What we offer. No offloads (CSUM, TSO), no indirect descriptors, no packed rings. */
#define LS_VHOST_FEATURES                                                                          \
  (LS_BIT(LS_VIRTIO_F_VERSION_1) | LS_BIT(LS_VIRTIO_NET_F_MRG_RXBUF) |                             \
   LS_BIT(LS_VIRTIO_RING_F_EVENT_IDX) | LS_BIT(LS_VHOST_USER_F_PROTOCOL_FEATURES))
#define LS_VHOST_PROTOCOL_FEATURES (LS_BIT(LS_VHOST_PROTO_F_REPLY_ACK))

typedef struct ls_vhost_region_msg {
  uint64_t gpa;         /* guest physical address */
  uint64_t size;        /* bytes */
  uint64_t uva;         /* the front-end's (QEMU's) virtual address of the same bytes */
  uint64_t mmap_offset; /* where they start in the region's fd */
} ls_vhost_region_msg;

/* A decoded, validated message. */
typedef struct ls_vhost_msg {
  uint32_t request, flags, size;
  union {
    uint64_t u64; /* features, protocol features, KICK/CALL/ERR (index | NOFD) */
    struct {
      uint32_t index, num;
    } state; /* SET_VRING_NUM/BASE/ENABLE, GET_VRING_BASE */
    struct {
      uint32_t index, flags;
      uint64_t desc, used, avail, log; /* front-end virtual addresses */
    } addr;
    struct {
      uint32_t nregions;
      ls_vhost_region_msg regions[LS_VHOST_MAX_REGIONS];
    } mem;
  } u;
} ls_vhost_msg;

/* A message header (12 bytes). 0 with *size = payload bytes to read next; -EPROTO for a
 * version other than 1 or a reply flag (we are the back-end: the front-end never sends
 * replies); -EMSGSIZE for a payload above LS_VHOST_PAYLOAD_MAX. */
int ls_vhost_hdr_parse(const uint8_t *hdr, uint32_t *request, uint32_t *flags, uint32_t *size);

/* A whole message, header and payload (len bytes, len = 12 + size), that arrived with
 * nfds file descriptors. Validates what the request type says its payload and fds must
 * be. 0, or -EPROTO (malformed: header, size for its type, queue index, fd count, memory
 * regions empty, overflowing or overlapping). Requests we do not know decode with their
 * header only (the caller decides). */
int ls_vhost_msg_parse(const uint8_t *buf, size_t len, unsigned nfds, ls_vhost_msg *m);

/* Does this request always have a reply of its own (whatever NEED_REPLY says)? */
bool ls_vhost_has_reply(uint32_t request);

/* Printable request name, for errors ("SET_MEM_TABLE"; "request 99" style for others is
 * the caller's). NULL when unknown. */
const char *ls_vhost_request_name(uint32_t request);

/* ---- guest memory ------------------------------------------------------------------------- */

typedef struct ls_vhost_region {
  uint64_t gpa, uva, size;
  uint8_t *host; /* our mapping of the region's first byte */
  /* the mmap itself (port_vhost.c unmaps it) */
  void *map;
  size_t map_len;
} ls_vhost_region;

typedef struct ls_vhost_mem {
  uint32_t n;
  ls_vhost_region r[LS_VHOST_MAX_REGIONS];
} ls_vhost_mem;

/* Our pointer to guest-physical [gpa, gpa + len), or NULL unless the whole range lies in
 * one region (len 0 is a range of one byte for this check). */
uint8_t *ls_vhost_gpa(const ls_vhost_mem *m, uint64_t gpa, uint64_t len);
/* The same for a front-end virtual address (ring addresses, SET_VRING_ADDR). */
uint8_t *ls_vhost_uva(const ls_vhost_mem *m, uint64_t uva, uint64_t len);

/* ---- split virtqueues ---------------------------------------------------------------------- */

#define LS_VRING_DESC_F_NEXT 1
#define LS_VRING_DESC_F_WRITE 2
#define LS_VRING_DESC_F_INDIRECT 4
#define LS_VRING_AVAIL_F_NO_INTERRUPT 1
#define LS_VRING_USED_F_NO_NOTIFY 1

typedef struct ls_vring_desc {
  uint64_t addr; /* guest physical */
  uint32_t len;
  uint16_t flags;
  uint16_t next;
} ls_vring_desc;

typedef struct ls_vring_avail {
  uint16_t flags;
  uint16_t idx;
  uint16_t ring[]; /* num entries, then used_event (EVENT_IDX) */
} ls_vring_avail;

typedef struct ls_vring_used_elem {
  uint32_t id;
  uint32_t len;
} ls_vring_used_elem;

typedef struct ls_vring_used {
  uint16_t flags;
  uint16_t idx;
  ls_vring_used_elem ring[]; /* num entries, then avail_event (EVENT_IDX) */
} ls_vring_used;

static inline uint64_t ls_vring_desc_bytes(uint32_t num) {
  return 16ull * num;
}
static inline uint64_t ls_vring_avail_bytes(uint32_t num) {
  return 4 + 2ull * num + 2;
}
static inline uint64_t ls_vring_used_bytes(uint32_t num) {
  return 4 + 8ull * num + 2;
}

/* virtio's vring_need_event: must the other side be notified, now that the index moved
 * from old to new_idx, when it asked to be told once it passes event_idx? */
/* A full memory barrier between our stores to a ring in shared guest memory and our next
 * loads from it (the guest does the same with its mb()), as the virtio spec requires for
 * notification suppression. In the instruction itself rather than atomic_thread_fence,
 * which ThreadSanitizer builds refuse; the other side is not C code anyway. */
static inline void ls_vring_mb(void) {
#if defined(__x86_64__) || defined(__i386__)
  __asm__ volatile("mfence" ::: "memory");
#elif defined(__aarch64__)
  __asm__ volatile("dmb ish" ::: "memory");
#else
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
#endif
}

static inline bool ls_vring_need_event(uint16_t event_idx, uint16_t new_idx, uint16_t old) {
  return (uint16_t)(new_idx - event_idx - 1) < (uint16_t)(new_idx - old);
}

/* One piece of a descriptor chain's buffers, in our mapping. */
typedef struct ls_vhost_seg {
  uint8_t *p;
  uint32_t len;
} ls_vhost_seg;

#define LS_VHOST_CHAIN_SEGS 64          /* segments one chain may take */
#define LS_VHOST_CHAIN_BYTES (1u << 20) /* bytes one chain may describe */

/*
 * Walk the descriptor chain that starts at head in the table desc[0..num) (guest memory,
 * already translated and bounds-checked as a whole). Each descriptor is read once; its
 * buffer is translated through m, split where it crosses from one region into another,
 * and appended to segs (at most max). write: the device writes into the chain (every
 * descriptor must be device-writable), else it reads (none may be). Zero-length
 * descriptors are skipped. *total receives the chain's bytes.
 * Returns the number of segments, or
 *   -EINVAL  head or a next index out of range, wrong direction, an indirect descriptor
 *            (not negotiated), more than LS_VHOST_CHAIN_BYTES;
 *   -ELOOP   more than num descriptors (the chain loops);
 *   -E2BIG   more than max segments;
 *   -EFAULT  a buffer outside the memory table (nothing of it was touched).
 */
int ls_vhost_chain(const volatile ls_vring_desc *desc, uint32_t num, uint32_t head,
                   const ls_vhost_mem *m, bool write, ls_vhost_seg *segs, uint32_t max,
                   uint32_t *total);

/* Copy len bytes starting off bytes into the segments to dst; returns bytes copied (less
 * than len if the segments end first). */
uint32_t ls_vhost_copy_from(const ls_vhost_seg *segs, uint32_t n, uint32_t off, uint8_t *dst,
                            uint32_t len);
/* Copy len bytes of src into the segments starting off bytes in; returns bytes copied. */
uint32_t ls_vhost_copy_to(const ls_vhost_seg *segs, uint32_t n, uint32_t off, const uint8_t *src,
                          uint32_t len);

/* The virtio-net header's size for negotiated features: 12 with VERSION_1 or MRG_RXBUF
 * (num_buffers), 10 otherwise. */
static inline uint32_t ls_vhost_net_hdr_len(uint64_t features) {
  return features & (LS_BIT(LS_VIRTIO_F_VERSION_1) | LS_BIT(LS_VIRTIO_NET_F_MRG_RXBUF)) ? 12 : 10;
}

#endif
