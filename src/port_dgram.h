/*
 * port_dgram.h — constructors for the datagram port kinds ("socketpair", "unix").
 *
 * Owns: nothing beyond the declarations; see port_dgram.c. Constructors run on the
 * control thread, open and bind sockets, and return a port ready for ls_port_add(). On
 * failure they return NULL with *err = -errno and a short description of the failing
 * step in where ("bind /tmp/sw.sock").
 */
#ifndef LS_PORT_DGRAM_H
#define LS_PORT_DGRAM_H

#include <stdbool.h>
#include <stddef.h>

#include "port.h"

ls_port *ls_port_socketpair_new(ls_runtime *rt, const ls_port_config *cfg, int *err, char *where,
                                size_t wlen);
/* path: a filesystem path or "@name" (abstract). peer: NULL to learn it from the first
 * datagram (vfkit/libkrun style), else the peer's path. */
ls_port *ls_port_unix_new(ls_runtime *rt, const ls_port_config *cfg, const char *path,
                          const char *peer, int *err, char *where, size_t wlen);

bool ls_port_is_socketpair(const ls_port *p);
/* The VM end of a socketpair port (still owned by the port), or -1. */
int ls_port_socketpair_peer_fd(ls_port *p);
/* Hand the VM end over to the caller, who must close it; -1 if already taken. */
int ls_port_socketpair_take_peer(ls_port *p);

#endif
