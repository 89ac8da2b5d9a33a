/*
 * addr.c — parsing and formatting socket addresses (see addr.h).
 */
#include "addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <uv.h>

static int parse_unix(const char *text, ls_addr *out) {
  struct sockaddr_un *sun = (struct sockaddr_un *)&out->sa;
  size_t n = strlen(text);
  memset(out, 0, sizeof(*out));
  sun->sun_family = AF_UNIX;
  if (n >= sizeof(sun->sun_path)) return -ENAMETOOLONG;
  if (text[0] == '@') {
    if (n < 2) return -EINVAL;
    memcpy(sun->sun_path + 1, text + 1, n - 1);
    out->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
  } else {
    memcpy(sun->sun_path, text, n);
    out->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
  }
  return 0;
}

static int gai_to_uv(int e) {
  switch (e) {
  case EAI_NONAME:
    return UV_EAI_NONAME;
  case EAI_AGAIN:
    return UV_EAI_AGAIN;
  case EAI_FAIL:
    return UV_EAI_FAIL;
  case EAI_FAMILY:
    return UV_EAI_FAMILY;
  case EAI_SERVICE:
    return UV_EAI_SERVICE;
#ifdef EAI_NODATA
  case EAI_NODATA:
    return UV_EAI_NODATA;
#endif
  default:
    return UV_EAI_FAIL;
  }
}

int ls_addr_parse(const char *text, bool allow_unix, uint16_t default_port, ls_addr *out) {
  memset(out, 0, sizeof(*out));
  if (!text || !*text) return -EINVAL;
  if (text[0] == '/' || text[0] == '.' || text[0] == '@') {
    if (!allow_unix) return -EINVAL;
    return parse_unix(text, out);
  }
  char host[256];
  const char *port = NULL;
  if (text[0] == '[') {
    const char *close = strchr(text, ']');
    if (!close || (size_t)(close - text - 1) >= sizeof(host)) return -EINVAL;
    memcpy(host, text + 1, (size_t)(close - text - 1));
    host[close - text - 1] = '\0';
    if (close[1] == ':')
      port = close + 2;
    else if (close[1] != '\0')
      return -EINVAL;
  } else {
    const char *colon = strrchr(text, ':');
    if (colon && strchr(text, ':') != colon) colon = NULL; /* bare IPv6: no port */
    size_t hl = colon ? (size_t)(colon - text) : strlen(text);
    if (hl == 0 || hl >= sizeof(host)) return -EINVAL;
    memcpy(host, text, hl);
    host[hl] = '\0';
    if (colon) port = colon + 1;
  }
  unsigned long pnum = default_port;
  if (port) {
    char *end;
    pnum = strtoul(port, &end, 10);
    if (!*port || *end || pnum > 65535) return -EINVAL;
  }
  if (pnum == 0 && !port) return -EINVAL; /* a port is required */
  struct addrinfo hints, *res = NULL;
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_DGRAM;
  hints.ai_flags = AI_ADDRCONFIG;
  int e = getaddrinfo(host, NULL, &hints, &res);
  if (e == EAI_NONAME || e == EAI_ADDRFAMILY || e == EAI_NODATA) {
    hints.ai_flags = 0; /* a namespace with only loopback has no "configured" family */
    e = getaddrinfo(host, NULL, &hints, &res);
  }
  if (e) return gai_to_uv(e);
  memcpy(&out->sa, res->ai_addr, res->ai_addrlen);
  out->len = res->ai_addrlen;
  freeaddrinfo(res);
  ls_addr_set_port(out, (uint16_t)pnum);
  return 0;
}

bool ls_addr_is_unix(const ls_addr *a) {
  return a->sa.ss_family == AF_UNIX;
}

void ls_addr_set_port(ls_addr *a, uint16_t port) {
  if (a->sa.ss_family == AF_INET)
    ((struct sockaddr_in *)&a->sa)->sin_port = htons(port);
  else if (a->sa.ss_family == AF_INET6)
    ((struct sockaddr_in6 *)&a->sa)->sin6_port = htons(port);
}

uint16_t ls_addr_port(const ls_addr *a) {
  if (a->sa.ss_family == AF_INET) return ntohs(((const struct sockaddr_in *)&a->sa)->sin_port);
  if (a->sa.ss_family == AF_INET6) return ntohs(((const struct sockaddr_in6 *)&a->sa)->sin6_port);
  return 0;
}

void ls_addr_format(const ls_addr *a, char *out, size_t n) {
  char ip[INET6_ADDRSTRLEN];
  if (a->sa.ss_family == AF_INET) {
    const struct sockaddr_in *s = (const struct sockaddr_in *)&a->sa;
    inet_ntop(AF_INET, &s->sin_addr, ip, sizeof(ip));
    snprintf(out, n, "%s:%u", ip, ntohs(s->sin_port));
  } else if (a->sa.ss_family == AF_INET6) {
    const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)&a->sa;
    inet_ntop(AF_INET6, &s->sin6_addr, ip, sizeof(ip));
    snprintf(out, n, "[%s]:%u", ip, ntohs(s->sin6_port));
  } else if (a->sa.ss_family == AF_UNIX) {
    const struct sockaddr_un *s = (const struct sockaddr_un *)&a->sa;
    size_t plen = a->len > offsetof(struct sockaddr_un, sun_path)
                      ? a->len - offsetof(struct sockaddr_un, sun_path)
                      : 0;
    if (plen > 0 && s->sun_path[0] == '\0')
      snprintf(out, n, "@%.*s", (int)(plen - 1), s->sun_path + 1);
    else
      snprintf(out, n, "%.*s", (int)sizeof(s->sun_path), s->sun_path);
  } else {
    snprintf(out, n, "?");
  }
}

bool ls_addr_equal(const ls_addr *a, const struct sockaddr *b, socklen_t blen) {
  if (a->sa.ss_family != b->sa_family) return false;
  if (b->sa_family == AF_INET) {
    const struct sockaddr_in *x = (const struct sockaddr_in *)&a->sa, *y = (const void *)b;
    return blen >= sizeof(*y) && x->sin_port == y->sin_port &&
           x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  if (b->sa_family == AF_INET6) {
    const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)&a->sa, *y = (const void *)b;
    return blen >= sizeof(*y) && x->sin6_port == y->sin6_port &&
           memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
  }
  return a->len == blen && memcmp(&a->sa, b, blen) == 0;
}
