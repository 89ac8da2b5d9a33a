/*
 * port_vde.h — constructor for the "vde" port kind: a VDE switch control directory that
 * libvdeplug clients (vde_plug, qemu -netdev vde, ...) plug into; and the check of a
 * client's request as a pure function (for the port and the fuzz targets).
 *
 * Owns: nothing beyond the declarations; see port_vde.c. The constructor runs on the
 * control thread: it prepares the directory, binds and listens on DIR/ctl, and returns a
 * port ready for ls_port_add(). On failure it returns NULL with *err = -errno and a
 * short description of the failing step in where ("bind /tmp/sw/ctl").
 */
#ifndef LS_PORT_VDE_H
#define LS_PORT_VDE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/un.h>

#include "port.h"

#define LS_VDE_MODE_DEFAULT 0700

typedef struct ls_vde_options {
  const char *path; /* the control directory */
  mode_t mode;      /* of the directory; its sockets get mode & 0666 */
} ls_vde_options;

ls_port *ls_port_vde_new(ls_runtime *rt, const ls_port_config *cfg, const ls_vde_options *o,
                         int *err, char *where, size_t wlen);

/* A request: u32 magic, u32 version, u32 type, struct sockaddr_un, description. */
#define LS_VDE_REQ_FIXED (12 + sizeof(struct sockaddr_un)) /* 122 bytes */
#define LS_VDE_DESCR_MAX 128
#define LS_VDE_REQ_MAX (LS_VDE_REQ_FIXED + LS_VDE_DESCR_MAX)

/* Check the first n bytes (n <= LS_VDE_REQ_MAX) of a request: -1 bad, 0 incomplete so far,
 * 1 complete — then *addr is the client's data socket and descr (LS_VDE_DESCR_MAX + 1
 * bytes) what it calls itself, printable, NUL-terminated. */
int ls_vde_check_request(const uint8_t *req, uint32_t n, struct sockaddr_un *addr, char *descr);

#endif
