/*
 * port_stream.h — constructor of the "stream" port kind (see port_stream.c).
 */
#ifndef LS_PORT_STREAM_H
#define LS_PORT_STREAM_H

#include <stdbool.h>
#include <stddef.h>

#include "addr.h"
#include "port.h"

typedef struct ls_stream_options {
  bool listen;       /* listen at addr (true) or connect to it (false) */
  ls_addr addr;      /* unix path / abstract name, or TCP address */
  const char *netns; /* open the socket in this namespace (NULL: here) */
} ls_stream_options;

/* Control plane. NULL with *err = -errno and the failing step in where. */
ls_port *ls_port_stream_new(ls_runtime *rt, const ls_port_config *cfg, const ls_stream_options *o,
                            int *err, char *where, size_t wlen);

#endif
