/*
 * probe.h — reachability between hosts in network namespaces, measured with ICMP echo from
 * one socket per host, for labs' pingall (no process per pair).
 *
 * Owns: ls_probe_run(). Each host is a namespace and an address; each pair (source host,
 * destination host) is answered when the source's kernel stack gets an echo reply from the
 * destination's address, as `ping -c 1` from the source would. One raw ICMP (or ICMPv6)
 * socket is opened inside each source's namespace (CAP_NET_RAW there: root, or root of the
 * user namespace that owns it), filtered to echo replies; one epoll loop on the calling
 * thread sends the requests and matches the replies by the pair and attempt they carry.
 *
 * What makes a verdict the network's, not the prober's: at most `window` requests await a
 * prompt answer at once (a request unanswered after `hold_ns` gives its slot back) (so the prober
 * never makes the storm it measures: every first request to a new neighbour costs an ARP or
 * neighbour solicitation, flooded to every host of the segment), and a request unanswered after
 * `timeout_ns` is sent again, up to `attempts` in all — the first one to a neighbour waits on its
 * resolution, and a request the kernel dropped while resolving (its queue of unresolved packets is
 * short) is not a lost reply. A pair is unreachable only when every attempt went unanswered.
 *
 * Control plane only (it blocks the calling thread until every pair has an answer or its
 * last attempt timed out); the data plane keeps forwarding meanwhile.
 */
#ifndef LS_PROBE_H
#define LS_PROBE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct ls_probe_host {
  const char *netns;            /* namespace name (/run/netns/NAME); NULL or "": this one */
  struct sockaddr_storage addr; /* its address: AF_INET or AF_INET6 */
} ls_probe_host;

typedef struct ls_probe_opts {
  uint32_t window;     /* requests awaiting a prompt answer at once (default 64) */
  uint64_t hold_ns;    /* a request unanswered this long gives its window slot back
                        * (default 0.1 s): it waits on a neighbour that does not answer,
                        * or was lost, and costs the network nothing more meanwhile */
  uint32_t attempts;   /* requests per pair before it is unreachable (default 3) */
  uint64_t timeout_ns; /* wait for one reply (default 1 s) */
  /* Asked when a signal interrupts the wait: true ends the run with -EINTR (e.g. a Lua
   * interpreter's SIGINT handler has asked to stop); NULL: a signal never does. */
  bool (*cancelled)(void *arg);
  void *cancelled_arg;
} ls_probe_opts;

typedef struct ls_probe_result {
  bool answered;
  uint8_t attempts; /* requests sent */
  uint32_t rtt_us;  /* of the answered attempt */
} ls_probe_result;

typedef struct ls_probe_stats {
  uint64_t sent, replies, timeouts, stray; /* stray: replies matching no outstanding request */
  uint64_t send_errors; /* requests the source's kernel refused (e.g. EINVAL: its neighbour
                         * table is full, ENETUNREACH: no route); each is an unanswered attempt */
  int send_errno;       /* the last such error (errno), 0 if none */
  uint64_t elapsed_ns;
} ls_probe_stats;

/* Probe npairs pairs (pairs[2i] -> pairs[2i + 1], indexes into hosts). results[i] gets pair
 * i's answer. 0, or -errno with *bad the index of the host whose socket could not be
 * opened (-1 otherwise; -EINVAL for a pair of hosts of different families). */
int ls_probe_run(const ls_probe_host *hosts, uint32_t nhosts, const uint32_t *pairs,
                 uint32_t npairs, const ls_probe_opts *opts, ls_probe_result *results,
                 ls_probe_stats *stats, int *bad);

/* The ICMP checksum (RFC 1071) of len bytes. */
uint16_t ls_inet_checksum(const void *data, uint32_t len);

#endif
