/*
 * peerwait.h — ports waiting for a fixed peer to appear, and the one place that wakes them.
 *
 * Owns: the runtime's registry of waiting ports (rt->peer_waits) and its one inotify
 * instance. A port with a fixed peer that is not there yet — a "unix" datagram port with a
 * peer path, a "stream" port in the connect role — must come up the moment its peer can
 * receive, not when a retry timer happens to fire: frames sent in between are lost. Two
 * things tell a waiting port that its peer may be there now:
 *  - ls_peer_ready(): a port of the same runtime bound (datagram) or started listening
 *    (stream) at an address. Every waiter of that socket type and address is woken at
 *    once, in the same data-plane step, so when the second of two ports joined to each
 *    other is created both are up by the time its creation returns to the control plane.
 *    This covers abstract names ("@name") and TCP addresses too, which have no inotify.
 *  - inotify on the directory of a filesystem peer path (IN_CREATE, IN_MOVED_TO,
 *    IN_ATTRIB for the peer's file name): another process bound there. The kernel creates
 *    the socket file a moment before the socket can be connected (and a stream peer must
 *    still listen()), so a woken port whose try fails looks again after
 *    LS_PEER_WAKE_RETRY_MS, doubling.
 * What neither covers — an abstract name or TCP address bound by another process, a peer
 * directory that does not exist yet, inotify unavailable — the port's own back-off timer
 * still catches; each of its retries calls ls_peer_wait_start() again, which sets a watch
 * that could not be set before.
 *
 * Wake-ups are hints: wake() tries the peer and copes with failure, and ignores a wake
 * while its port is up or connecting. Matching is by socket type and address as written
 * (the same path spelt two ways is caught by inotify one loop turn later, not at once); a
 * wake that turns out spurious (another network namespace, a TCP wildcard) costs one try.
 *
 * Lifetime: the registry exists while some port waits; the first waiter creates it (its
 * inotify instance comes with the first filesystem path) and the last one to stop closes
 * it, so a runtime whose ports are all up or closed holds no inotify descriptor. A kind
 * stops its waiter when the port comes up and in its detach, before its handles close.
 *
 * Threads: data-plane thread only (loop callbacks and commands); no locks, no Lua.
 */
#ifndef LS_PEERWAIT_H
#define LS_PEERWAIT_H

#include <stdbool.h>
#include <sys/socket.h>

#include "addr.h"
#include "runtime.h"

/* A woken port whose peer still refuses looks again after this, doubling. */
#define LS_PEER_WAKE_RETRY_MS 1

typedef struct ls_peer_wait ls_peer_wait;
typedef void (*ls_peer_wake_fn)(ls_peer_wait *w);

/* Embedded in a port; all zero (as calloc leaves it) is a waiter that never waits. */
struct ls_peer_wait {
  ls_runtime *rt;
  int type;             /* SOCK_DGRAM or SOCK_STREAM */
  ls_addr addr;         /* the peer's address */
  ls_peer_wake_fn wake; /* data plane: the peer may be there now: try it */
  /* the registry's */
  bool listed, marked;
  int wd; /* inotify watch on the peer path's directory, -1: none */
  ls_peer_wait *next;
};

/* Any thread, before the port is attached: what w waits for, and whom to wake. */
void ls_peer_wait_init(ls_peer_wait *w, ls_runtime *rt, int type, const struct sockaddr *sa,
                       socklen_t len, ls_peer_wake_fn wake);
/* Data plane: w waits for its peer (until ls_peer_wait_stop). Again while waiting: sets a
 * watch that could not be set before (the directory exists now). Start, then try the
 * peer, so that a peer appearing in between is not missed. Returns true while a
 * filesystem watch is in place. */
bool ls_peer_wait_start(ls_peer_wait *w);
/* Data plane: w no longer waits (its port is up, or closing). A no-op if not waiting. */
void ls_peer_wait_stop(ls_peer_wait *w);
/* Data plane: a port of rt now takes connections or datagrams of this type at sa: wake the
 * ports waiting for it, before returning. */
void ls_peer_ready(ls_runtime *rt, int type, const struct sockaddr *sa, socklen_t len);

#endif
