/*
 * frame.h — Ethernet frame layout, MAC address helpers and the header parser.
 *
 * Owns: the frame-size limits every port kind shares, the 48-bit MAC <-> integer
 * packing used as the FDB key, textual MAC parsing/formatting for the control plane,
 * and ls_eth_parse(), which walks the Ethernet header and any 802.1Q / 802.1ad tags.
 * Everything here is pure and inline-friendly; the data plane calls it per frame.
 */
#ifndef LS_FRAME_H
#define LS_FRAME_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define LS_ETH_ALEN 6
#define LS_ETH_HLEN 14
#define LS_VLAN_HLEN 4
#define LS_FRAME_MAX 65536 /* largest frame any port accepts */
#define LS_MTU_MIN 68      /* IPv4 minimum */
#define LS_MTU_MAX (LS_FRAME_MAX - LS_ETH_HLEN - 2 * LS_VLAN_HLEN)
#define LS_MTU_DEFAULT 1500
#define LS_MAX_TAGS 2 /* 802.1ad outer + 802.1Q inner */

#define LS_ETH_P_8021Q 0x8100
#define LS_ETH_P_8021AD 0x88a8
#define LS_ETH_P_QINQ1 0x9100 /* pre-standard QinQ, still seen in the wild */

/* Pack a MAC address into the low 48 bits of an integer, first octet most significant. */
static inline uint64_t ls_mac_to_u64(const uint8_t *m) {
  return ((uint64_t)m[0] << 40) | ((uint64_t)m[1] << 32) | ((uint64_t)m[2] << 24) |
         ((uint64_t)m[3] << 16) | ((uint64_t)m[4] << 8) | (uint64_t)m[5];
}

/* Same as ls_mac_to_u64 for a MAC inside a frame with at least 8 readable bytes from m
 * (true for both addresses of any frame of LS_ETH_HLEN bytes or more). */
static inline uint64_t ls_mac_load(const uint8_t *m) {
  uint64_t v;
  memcpy(&v, m, sizeof(v));
  return __builtin_bswap64(v) >> 16;
}

static inline void ls_u64_to_mac(uint64_t v, uint8_t *m) {
  for (int i = 5; i >= 0; i--) {
    m[i] = (uint8_t)(v & 0xff);
    v >>= 8;
  }
}

/* Group (multicast or broadcast) addresses have the I/G bit set in the first octet. */
static inline bool ls_mac_is_group(const uint8_t *m) {
  return (m[0] & 1) != 0;
}

static inline bool ls_mac_is_zero(const uint8_t *m) {
  return (m[0] | m[1] | m[2] | m[3] | m[4] | m[5]) == 0;
}

static inline bool ls_mac_is_broadcast(const uint8_t *m) {
  return (m[0] & m[1] & m[2] & m[3] & m[4] & m[5]) == 0xff;
}

/*
 * Parse "02:00:00:00:00:01" (also '-' separated, either case). Exactly six groups of
 * two hex digits. Returns 0, or -1 if the text is not a MAC address.
 */
int ls_mac_parse(const char *s, uint8_t out[LS_ETH_ALEN]);

/* Format as lower-case colon-separated text into out (at least 18 bytes). */
void ls_mac_format(const uint8_t *m, char out[18]);

static inline uint16_t ls_get_be16(const uint8_t *p) {
  return (uint16_t)((p[0] << 8) | p[1]);
}
static inline void ls_put_be16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}
static inline uint32_t ls_get_be32(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline void ls_put_be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

typedef struct ls_eth_info {
  uint16_t ethertype; /* after all VLAN tags */
  uint16_t l2_len;    /* Ethernet header plus tags */
  uint8_t ntags;
  uint16_t tpid[LS_MAX_TAGS];
  uint16_t tci[LS_MAX_TAGS]; /* outermost first */
} ls_eth_info;

/*
 * Parse the Ethernet header of a frame of len bytes. Returns 0, or -1 if the frame is
 * shorter than its header (a runt, or a truncated tag). Tags beyond LS_MAX_TAGS are
 * left in the payload.
 */
static inline int ls_eth_parse(const uint8_t *d, uint32_t len, ls_eth_info *out) {
  if (len < LS_ETH_HLEN) return -1;
  uint32_t off = 12;
  uint16_t type = ls_get_be16(d + off);
  out->ntags = 0;
  while ((type == LS_ETH_P_8021Q || type == LS_ETH_P_8021AD || type == LS_ETH_P_QINQ1) &&
         out->ntags < LS_MAX_TAGS) {
    if (len < off + 2 + LS_VLAN_HLEN) return -1; /* TCI plus the next type field */
    out->tpid[out->ntags] = type;
    out->tci[out->ntags] = ls_get_be16(d + off + 2);
    out->ntags++;
    off += LS_VLAN_HLEN;
    type = ls_get_be16(d + off);
  }
  out->ethertype = type;
  out->l2_len = (uint16_t)(off + 2);
  return 0;
}

#endif
