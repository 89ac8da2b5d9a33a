/*
 * port_udp.h — constructor of the "udp" port kind (see port_udp.c), and the UDP socket
 * helper the vxlan kind shares.
 */
#ifndef LS_PORT_UDP_H
#define LS_PORT_UDP_H

#include <stdbool.h>
#include <stddef.h>

#include "addr.h"
#include "port.h"

typedef struct ls_udp_options {
  ls_addr local; /* bind here */
  bool has_peer; /* else the first sender becomes the peer */
  ls_addr peer;
  const char *netns; /* open the socket in this namespace (NULL: here) */
} ls_udp_options;

/* Control plane. NULL with *err = -errno and the failing step in where. */
ls_port *ls_port_udp_new(ls_runtime *rt, const ls_port_config *cfg, const ls_udp_options *o,
                         int *err, char *where, size_t wlen);

/* A non-blocking UDP socket bound at local, inside netns (NULL: here). 0 or -errno. */
int ls_udp_socket(const ls_addr *local, const char *netns, int *fd, char *where, size_t wlen);

#endif
