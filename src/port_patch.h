/*
 * port_patch.h — constructor of the "patch" port kind: one end of a virtual cable
 * between two ports of switches on the same runtime (see port_patch.c).
 *
 * Owns: nothing beyond the declaration.
 */
#ifndef LS_PORT_PATCH_H
#define LS_PORT_PATCH_H

#include <stddef.h>

#include "port.h"

/* Control plane: a patch port; peer (another patch port, attached, of the same runtime,
 * not yet cabled) is cabled to it when it attaches — -EBUSY then if peer already has
 * its other end, -EINVAL if it is not a patch port that is open. peer NULL: a loose end
 * (link down) that a later patch port can name as its peer. */
ls_port *ls_port_patch_new(ls_runtime *rt, const ls_port_config *cfg, ls_port *peer, int *err,
                           char *where, size_t wlen);
bool ls_port_is_patch(const ls_port *p);

#endif
