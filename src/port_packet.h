/*
 * port_packet.h — constructor of the "packet" port kind (see port_packet.c).
 */
#ifndef LS_PORT_PACKET_H
#define LS_PORT_PACKET_H

#include <stdbool.h>
#include <stddef.h>

#include "port.h"

typedef struct ls_packet_options {
  const char *ifname; /* an existing interface */
  const char *netns;  /* ... in this namespace (NULL: the current one) */
  bool vnet_hdr;      /* PACKET_VNET_HDR: keep the kernel's checksum/segmentation offloads */
  bool ifup;          /* bring the interface up if it is down */
} ls_packet_options;

/* Control plane. NULL with *err = -errno and the failing step in where. */
ls_port *ls_port_packet_new(ls_runtime *rt, const ls_port_config *cfg, const ls_packet_options *o,
                            int *err, char *where, size_t wlen);

#endif
