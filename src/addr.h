/*
 * addr.h — socket addresses as users write them.
 *
 * Owns: parsing "10.0.0.1:4789", "[fd00::1]:4789", "host.example:5000" (resolved with
 * getaddrinfo), "/run/sw.sock" and "@abstract" into a sockaddr, and formatting them
 * back. Used by the stream, udp and vxlan port kinds on the control thread.
 */
#ifndef LS_ADDR_H
#define LS_ADDR_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct ls_addr {
  struct sockaddr_storage sa;
  socklen_t len;
} ls_addr;

#define LS_ADDR_TEXT 128

/* Parse text. Unix paths (starting with '/', '.' or '@') when allow_unix; otherwise
 * host:port, where host may be a name (resolved now), an IPv4 address or a bracketed IPv6
 * address. default_port (0 = required) applies when text has no ":port" (only for a
 * bare host or address). Returns 0, -EINVAL (malformed), -ENAMETOOLONG, or a libuv
 * UV_EAI_* code when the name does not resolve. */
int ls_addr_parse(const char *text, bool allow_unix, uint16_t default_port, ls_addr *out);
/* Format as text ("10.0.0.1:4789", "[::1]:5000", "/path", "@name"). */
void ls_addr_format(const ls_addr *a, char *out, size_t n);
/* Same address? (family, address, port / path) */
bool ls_addr_equal(const ls_addr *a, const struct sockaddr *b, socklen_t blen);
bool ls_addr_is_unix(const ls_addr *a);
/* The same address with another port (IP families only). */
void ls_addr_set_port(ls_addr *a, uint16_t port);
uint16_t ls_addr_port(const ls_addr *a);

#endif
