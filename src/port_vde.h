/*
 * port_vde.h — constructor for the "vde" port kind: a VDE switch control directory that
 * libvdeplug clients (vde_plug, qemu -netdev vde, ...) plug into.
 *
 * Owns: nothing beyond the declarations; see port_vde.c. The constructor runs on the
 * control thread: it prepares the directory, binds and listens on DIR/ctl, and returns a
 * port ready for ls_port_add(). On failure it returns NULL with *err = -errno and a
 * short description of the failing step in where ("bind /tmp/sw/ctl").
 */
#ifndef LS_PORT_VDE_H
#define LS_PORT_VDE_H

#include <stddef.h>
#include <sys/types.h>

#include "port.h"

#define LS_VDE_MODE_DEFAULT 0700

typedef struct ls_vde_options {
  const char *path; /* the control directory */
  mode_t mode;      /* of the directory; its sockets get mode & 0666 */
} ls_vde_options;

ls_port *ls_port_vde_new(ls_runtime *rt, const ls_port_config *cfg, const ls_vde_options *o,
                         int *err, char *where, size_t wlen);

#endif
