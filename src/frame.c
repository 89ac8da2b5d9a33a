/*
 * frame.c — textual MAC address parsing and formatting (control-plane helpers).
 *
 * Owns: ls_mac_parse() and ls_mac_format(). The per-frame parsing lives inline in
 * frame.h; this file is only used when a human-readable address crosses the API.
 */
#include "frame.h"

#include <stdio.h>

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int ls_mac_parse(const char *s, uint8_t out[LS_ETH_ALEN]) {
  char sep = 0;
  for (int i = 0; i < LS_ETH_ALEN; i++) {
    int hi = hexval(s[0]);
    int lo = hi < 0 ? -1 : hexval(s[1]);
    if (hi < 0 || lo < 0) return -1;
    out[i] = (uint8_t)(hi << 4 | lo);
    s += 2;
    if (i < LS_ETH_ALEN - 1) {
      if (*s != ':' && *s != '-') return -1;
      if (sep && *s != sep) return -1;
      sep = *s++;
    }
  }
  return *s == '\0' ? 0 : -1;
}

void ls_mac_format(const uint8_t *m, char out[18]) {
  snprintf(out, 18, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
}
