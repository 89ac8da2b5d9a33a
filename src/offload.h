/*
 * offload.h — software checksum completion and segmentation for virtio-net offloads.
 *
 * Owns: ls_vnet (the virtio-net header that TAP devices opened with IFF_VNET_HDR and
 * AF_PACKET sockets with PACKET_VNET_HDR put in front of every frame), the Internet
 * checksum helpers, and the two operations a frame carrying such a header may need
 * before it can go to a port that does not understand the header:
 *  - ls_offload_csum() completes a partial checksum (VIRTIO_NET_HDR_F_NEEDS_CSUM) in
 *    place, as the kernel's skb_checksum_help() does;
 *  - ls_offload_segment() cuts a GSO super-frame (TCPv4, TCPv6, UDP_L4) into complete,
 *    valid frames of at most gso_size payload bytes each, as skb_segment() with
 *    tcp_gso_segment() / __udp_gso_segment() would, checksums computed in full.
 * Ports that understand the header get it, and the frame, unchanged; only the others
 * pay for this. Input is untrusted: nothing here reads or writes outside the buffers it
 * is given, whatever the frame or the header say. No libuv, no Lua, no allocation.
 */
#ifndef LS_OFFLOAD_H
#define LS_OFFLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ls_vnet.flags */
#define LS_VNET_F_NEEDS_CSUM 1 /* L4 checksum at csum_start+csum_offset is partial */
#define LS_VNET_F_DATA_VALID 2 /* receive side: checksum already verified */

/* ls_vnet.gso_type */
#define LS_VNET_GSO_NONE 0
#define LS_VNET_GSO_TCPV4 1
#define LS_VNET_GSO_UDP 3 /* legacy UFO: would need IP fragmentation, not supported */
#define LS_VNET_GSO_TCPV6 4
#define LS_VNET_GSO_UDP_L4 5 /* UDP GSO: gso_size is the UDP payload per datagram */
#define LS_VNET_GSO_ECN 0x80 /* flag: the TCP super-frame has CWR set */

#define LS_VNET_HDR_LEN 10

/* Same layout and meaning as struct virtio_net_hdr (<linux/virtio_net.h>), fields in host
 * order (virtio 1.0 headers are little-endian, which is host order on every target this
 * builds for), so it can be copied to and from the wire with memcpy. */
typedef struct ls_vnet {
  uint8_t flags;        /* LS_VNET_F_* */
  uint8_t gso_type;     /* LS_VNET_GSO_*, optionally | LS_VNET_GSO_ECN */
  uint16_t hdr_len;     /* length of all headers: a hint only, never trusted */
  uint16_t gso_size;    /* L4 payload bytes per segment */
  uint16_t csum_start;  /* NEEDS_CSUM: checksum covers [csum_start, frame end) ... */
  uint16_t csum_offset; /* ... and goes to csum_start + csum_offset */
} ls_vnet;

_Static_assert(sizeof(ls_vnet) == LS_VNET_HDR_LEN, "ls_vnet must match struct virtio_net_hdr");
_Static_assert(offsetof(ls_vnet, hdr_len) == 2 && offsetof(ls_vnet, gso_size) == 4 &&
                   offsetof(ls_vnet, csum_start) == 6 && offsetof(ls_vnet, csum_offset) == 8,
               "ls_vnet field offsets must match struct virtio_net_hdr");

/* Does this frame need work before going to a port without offloads? */
static inline bool ls_vnet_pending(const ls_vnet *v) {
  return (v->flags & LS_VNET_F_NEEDS_CSUM) != 0 || v->gso_type != LS_VNET_GSO_NONE;
}

/*
 * Internet checksum (RFC 1071) helpers. Values are in the "network order" domain: 16-bit
 * words are read big-endian, and the folded result is stored with ls_put_be16().
 *
 * ls_csum_partial() adds the bytes of data to the running 32-bit ones' complement sum
 * `sum` and returns the new running sum (not folded, not complemented). An odd trailing
 * byte counts as the high byte of a word padded with zero, so when a sum is built from
 * several pieces every piece but the last must have an even length.
 *
 * ls_csum_fold() folds a running sum to 16 bits and complements it, i.e. it returns
 * the value to put in a checksum field (like the kernel's csum_fold()). A region whose
 * checksum is correct folds to 0.
 */
uint32_t ls_csum_partial(const void *data, size_t len, uint32_t sum);
uint16_t ls_csum_fold(uint32_t sum);

/*
 * Complete a partial checksum in place: if v has NEEDS_CSUM, the 16-bit field at
 * csum_start + csum_offset holds the pseudo-header sum; replace it with the checksum
 * of bytes [csum_start, len) (a computed 0 is stored as 0xffff, as the kernel does, so
 * that a UDP checksum never reads as "none"). Returns 0 (also when there is nothing to
 * do), or -EINVAL if the field does not lie inside the frame (frame unchanged).
 */
int ls_offload_csum(uint8_t *frame, uint32_t len, const ls_vnet *v);

/*
 * Cut a frame into segments for a port without offloads. For each segment, calls
 * alloc(ctx, seg_len) for a destination buffer of at least seg_len bytes (NULL aborts
 * with -ENOMEM), writes the complete, valid frame there, then calls done(ctx, seg_len).
 * Segments are produced in order; every alloc that returns a buffer is followed by its
 * done before the next alloc.
 *
 * The headers are parsed, not taken from v: Ethernet with up to two 802.1Q / 802.1ad
 * tags, IPv4 (with options, not a fragment) or IPv6 (hop-by-hop and destination options
 * headers are skipped; routing, fragment and other extension headers are rejected),
 * then TCP (with options) or UDP. hdr_len is only checked to lie within the frame.
 * Each segment gets the headers with IPv4 total length, ID (+ segment index) and header
 * checksum, or IPv6 payload length, fixed; TCP sequence number advanced by the payload
 * offset, FIN and PSH on the last segment only, CWR on the first only; UDP length set;
 * and the L4 checksum computed over pseudo-header and segment (the partial sum in the
 * super-frame is not used; a computed UDP checksum of 0 is sent as 0xffff). The last
 * segment may be shorter; a payload of at most gso_size bytes gives one frame.
 *
 * gso_type NONE yields exactly one segment, a copy of the frame with the checksum
 * completed if NEEDS_CSUM (its headers are not parsed).
 *
 * Returns the number of segments, or
 *   -EINVAL  malformed or unsupported: frame shorter than an Ethernet header, GSO frame
 *            longer than LS_FRAME_MAX, hdr_len beyond the frame, NEEDS_CSUM field
 *            outside the frame, gso_size 0, unknown gso_type, legacy UFO, UDP_L4 with
 *            ECN, headers truncated or not the IPv4/IPv6 + TCP/UDP the gso_type says;
 *            nothing was allocated;
 *   -ENOMEM  alloc returned NULL; segments already passed to done stay delivered.
 */
typedef uint8_t *(*ls_seg_alloc_fn)(void *ctx, uint32_t seg_len);
typedef void (*ls_seg_done_fn)(void *ctx, uint32_t seg_len);
int ls_offload_segment(const uint8_t *frame, uint32_t len, const ls_vnet *v, ls_seg_alloc_fn alloc,
                       ls_seg_done_fn done, void *ctx);

#endif
