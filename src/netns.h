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
#include <stdint.h>

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

/* ---- many namespaces at once, for labs (control plane, any thread) ----
 *
 * Creating or deleting a namespace is mostly waiting in the kernel (RCU grace periods of
 * mounts and devices): `ip netns add` takes 5 ms each here, sys time a tenth of it. These
 * do the same work as `ip netns add` / `ip netns del` with no process per namespace, on up
 * to `threads` threads at once, so the waits overlap. errs[i] gets 0 or -errno for
 * names[i]; the return value is how many failed. */

/* `ip netns add NAME` for each, with its loopback interface up. */
uint32_t ls_netns_add_many(const char *const *names, uint32_t n, int *errs, unsigned threads);
/* `ip netns del NAME` for each (the kernel frees a namespace once nothing holds it). */
uint32_t ls_netns_del_many(const char *const *names, uint32_t n, int *errs, unsigned threads);
/* SIGKILL every process whose network namespace is one of these (what `ip netns pids NAME
 * | xargs kill -9` does for each, with one pass over /proc). Returns how many. */
uint32_t ls_netns_kill_all(const char *const *names, uint32_t n);
/* Inside namespace `name`: add an address (family AF_INET or AF_INET6, addr 4 or 16 bytes)
 * with a prefix length to interface ifname, with rtnetlink (IPv6 without duplicate
 * address detection, as `ip addr add ... nodad`), and read the interface's MAC. */
int ls_netns_addr_add(const char *name, const char *ifname, int family, const void *addr,
                      unsigned prefix);
int ls_netns_link_mac(const char *name, const char *ifname, uint8_t mac[6]);
/* Inside namespace `name`: n permanent neighbour entries on interface ifname (addrs: n
 * addresses of 4 or 16 bytes by family, macs: n × 6 bytes), what `ip neigh replace ADDR
 * lladdr MAC nud permanent dev IF` does for each, in a few batched rtnetlink messages;
 * with del, `ip neigh del ADDR dev IF` (an entry already gone is not an error).
 * 0 or the first -errno. */
int ls_netns_neigh(const char *name, const char *ifname, int family, const void *addrs,
                   const uint8_t *macs, uint32_t n, bool del);
/* Inside namespace `name`: a route to dst/prefix (prefix 0: the default route) via gateway
 * gw, in the main table (what `ip route add DST via GW` does; the kernel finds the
 * interface that reaches gw). Addresses are 4 or 16 bytes by family. 0 or -errno. */
int ls_netns_route_add(const char *name, int family, const void *dst, unsigned prefix,
                       const void *gw);
/* Inside namespace `name`: write value to /proc/sys/KEY (KEY in path form, e.g.
 * "net/ipv6/conf/eth0/disable_ipv6"), as `sysctl -w` run there. 0 or -errno. */
int ls_netns_sysctl(const char *name, const char *key, const char *value);

#endif
