/*
 * port_vxlan.h — constructor and tunnel table of the "vxlan" port kind (see port_vxlan.c),
 * and its header as pure functions (for the port and the fuzz targets).
 */
#ifndef LS_PORT_VXLAN_H
#define LS_PORT_VXLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "port.h"

#define LS_VXLAN_PORT 4789
#define LS_VXLAN_MAX_REMOTES 256 /* flood-list entries given at creation */

typedef struct ls_vxlan_options {
  ls_addr local; /* bind here (its port is also the destination port) */
  uint32_t vni;
  bool learning;          /* learn inner source MAC -> sending VTEP */
  uint64_t aging;         /* ns, for learned entries */
  uint32_t max_macs;      /* learned entries */
  const ls_addr *remotes; /* the flood list */
  uint32_t nremotes;
  const char *netns;
} ls_vxlan_options;

ls_port *ls_port_vxlan_new(ls_runtime *rt, const ls_port_config *cfg, const ls_vxlan_options *o,
                           int *err, char *where, size_t wlen);

bool ls_port_is_vxlan(const ls_port *p);

typedef struct ls_vxlan_record {
  bool has_mac; /* an inner MAC entry; otherwise a flood-list remote */
  uint8_t mac[6];
  ls_addr remote;
  uint64_t age;
  bool is_static;
  bool flood;
} ls_vxlan_record;

/* Control plane: static inner MAC -> remote entries, the flood list, a snapshot. */
int ls_vxlan_add(ls_port *p, const uint8_t mac[6], const ls_addr *remote);
int ls_vxlan_del(ls_port *p, const uint8_t mac[6]); /* 1 removed, 0 not there */
int ls_vxlan_add_flood(ls_port *p, const ls_addr *remote);
int ls_vxlan_dump(ls_port *p, ls_vxlan_record **out, uint32_t *n); /* *out malloc'd */

#define LS_VXLAN_HLEN 8

/* The VXLAN header (RFC 7348) for vni: flags with only I set, reserved bits zero. */
void ls_vxlan_header(uint8_t h[LS_VXLAN_HLEN], uint32_t vni);
/* A received datagram of len bytes whose first LS_VXLAN_HLEN bytes are h: its VNI, or -1
 * if it is not a frame in VXLAN (shorter than the header and an Ethernet header, flags
 * other than I alone, reserved bits set). h is read only when len covers it. */
int64_t ls_vxlan_parse(const uint8_t *h, uint32_t len);

#endif
