/*
 * port_vhost.h — constructor of the "vhost-user" port kind (see port_vhost.c): the
 * back-end of a virtio-net device whose front-end is QEMU (-netdev vhost-user), frames
 * moved through the guest's own virtqueues in shared memory.
 */
#ifndef LS_PORT_VHOST_H
#define LS_PORT_VHOST_H

#include <stdbool.h>
#include <stddef.h>

#include "port.h"

typedef struct ls_vhost_options {
  const char *path; /* the unix socket: we listen there, or (client) connect to it */
  bool client;      /* connect to QEMU's server socket (server=on), reconnecting */
} ls_vhost_options;

/* Control plane. NULL with *err = -errno and the failing step in where. */
ls_port *ls_port_vhost_new(ls_runtime *rt, const ls_port_config *cfg, const ls_vhost_options *o,
                           int *err, char *where, size_t wlen);

#endif
