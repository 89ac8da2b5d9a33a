/*
 * netns.h — opening things inside a named network namespace.
 *
 * Owns: entering and leaving a namespace (/run/netns/NAME, as `ip netns` creates them) on
 * the calling thread only. Port constructors use it to create a TAP device, or open a
 * socket, inside a namespace; the descriptor stays in that namespace after the thread
 * returns to its own. Only control-plane threads call it, never the data plane.
 */
#ifndef LS_NETNS_H
#define LS_NETNS_H

#include <stdbool.h>

/* A valid namespace name (what `ip netns add` accepts: no '/', not "." or ".."). */
bool ls_netns_name_ok(const char *name);
/* Enter namespace `name` on this thread. On success *saved holds the previous namespace
 * for ls_netns_leave. NULL or "" means "stay here" (*saved = -1). 0 or -errno (-ENOENT:
 * no such namespace). */
int ls_netns_enter(const char *name, int *saved);
/* Return to the namespace saved by ls_netns_enter (no-op for -1). */
void ls_netns_leave(int saved);
/* Move the interface with index ifindex (in this thread's namespace) into namespace
 * `name`, with rtnetlink (what `ip link set DEV netns NAME` does). 0 or -errno. */
int ls_netns_move_link(int ifindex, const char *name);

#endif
