/*
 * port_tap.h — constructor of the "tap" port kind (see port_tap.c).
 */
#ifndef LS_PORT_TAP_H
#define LS_PORT_TAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "port.h"

typedef struct ls_tap_options {
  const char *ifname; /* device name, at most 15 bytes */
  const char *netns;  /* create it in this namespace (NULL: the current one) */
  bool vnet_hdr;      /* IFF_VNET_HDR with checksum and TSO offloads */
  bool ifup;          /* bring the device up */
  bool has_mac;
  uint8_t mac[6];
} ls_tap_options;

/* Control plane. NULL with *err = -errno and the failing step in where. */
ls_port *ls_port_tap_new(ls_runtime *rt, const ls_port_config *cfg, const ls_tap_options *o,
                         int *err, char *where, size_t wlen);

#endif
