/*
 * port_stream.h — constructor of the "stream" port kind (see port_stream.c), and its
 * framing as a pure function (for the port's receive path and the fuzz targets).
 */
#ifndef LS_PORT_STREAM_H
#define LS_PORT_STREAM_H

#include <stdbool.h>
#include <stddef.h>

#include "addr.h"
#include "frame.h"
#include "port.h"

typedef struct ls_stream_options {
  bool listen;       /* listen at addr (true) or connect to it (false) */
  ls_addr addr;      /* unix path / abstract name, or TCP address */
  const char *netns; /* open the socket in this namespace (NULL: here) */
} ls_stream_options;

/* Control plane. NULL with *err = -errno and the failing step in where. */
ls_port *ls_port_stream_new(ls_runtime *rt, const ls_port_config *cfg, const ls_stream_options *o,
                            int *err, char *where, size_t wlen);

/* The stream's receive buffer: room for several maximum-size frames with their headers. */
#define LS_STREAM_RBUF (3 * (LS_FRAME_MAX + 4))

/* The next frame of a stream whose unparsed bytes are buf[0..len): 1 if it is complete
 * (its bytes are buf[4..4 + *flen), and it takes 4 + *flen bytes of the stream), 0 if
 * more bytes are needed (*flen: its length once the header is in, else 0), -1 if its
 * header is not a frame length (0, or above LS_FRAME_MAX): the stream is corrupt. */
int ls_stream_next(const uint8_t *buf, uint32_t len, uint32_t *flen);

#endif
