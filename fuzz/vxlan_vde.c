/*
 * vxlan_vde.c — libFuzzer target: the VXLAN header and the VDE request, the two things
 * those port kinds parse from their peers.
 *
 * Owns: the driver. The first byte picks the parser.
 *  - VXLAN: ls_vxlan_parse on a datagram must return a VNI exactly for a datagram that
 *    holds a header and an Ethernet header, has only the I flag and no reserved bit set
 *    (RFC 7348's layout, written out here independently); and a header made by
 *    ls_vxlan_header parses back to its VNI.
 *  - VDE: a request arriving in pieces of random sizes (as handshake reads do) is checked
 *    after every piece with ls_vde_check_request: once bad it stays bad, once complete it
 *    stays complete with the same address, it is never complete before the fixed part
 *    (122 bytes) is in, a complete request names an AF_UNIX socket with a terminated
 *    path or a non-empty abstract name, and its description is printable and at most 128
 *    bytes.
 */
#include "frame.h"
#include "fuzz.h"
#include "port_vde.h"
#include "port_vxlan.h"

#include <sys/socket.h>

static void fuzz_vxlan(ls_fz *z) {
  uint8_t h[LS_VXLAN_HLEN];
  uint32_t vni = fz_u32(z) & 0xffffff;
  ls_vxlan_header(h, vni);
  FZ_CHECK(ls_vxlan_parse(h, LS_VXLAN_HLEN + LS_ETH_HLEN) == (int64_t)vni, "round trip of %u", vni);
  FZ_CHECK(ls_vxlan_parse(h, LS_VXLAN_HLEN + LS_ETH_HLEN - 1) == -1, "short datagram accepted");
  uint32_t len = fz_u16(z);
  size_t n;
  const uint8_t *d = fz_bytes(z, LS_VXLAN_HLEN, &n);
  uint8_t buf[LS_VXLAN_HLEN] = {0};
  memcpy(buf, d, n);
  /* what RFC 7348 (as Linux) accepts: flags 0x08 alone, reserved bytes zero */
  bool ok = len >= LS_VXLAN_HLEN + LS_ETH_HLEN && buf[0] == 0x08 && !buf[1] && !buf[2] && !buf[3] &&
            !buf[7];
  int64_t got = ls_vxlan_parse(buf, len);
  if (ok)
    FZ_CHECK(got == ((int64_t)buf[4] << 16 | (int64_t)buf[5] << 8 | buf[6]), "wrong VNI %lld",
             (long long)got);
  else
    FZ_CHECK(got == -1, "accepted a bad header (len %u)", len);
}

static void fuzz_vde(ls_fz *z) {
  uint8_t req[LS_VDE_REQ_MAX];
  size_t n;
  uint8_t sizes = fz_u8(z);
  const uint8_t *d = fz_bytes(z, LS_VDE_REQ_MAX, &n);
  memcpy(req, d, n);
  struct sockaddr_un addr, first;
  char descr[LS_VDE_DESCR_MAX + 1];
  int prev = 0;
  uint32_t have = 0;
  uint64_t x = sizes | 0x100;
  while (have < n) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    uint32_t step = sizes & 0x80 ? 1 + (uint32_t)(x >> 33) % 16 : (uint32_t)n;
    have = have + step > n ? (uint32_t)n : have + step;
    memset(descr, 0x55, sizeof(descr));
    int r = ls_vde_check_request(req, have, &addr, descr);
    FZ_CHECK(r >= -1 && r <= 1, "result %d", r);
    if (prev == -1) FZ_CHECK(r == -1, "bad at a shorter length, %d at %u", r, have);
    if (prev == 1) FZ_CHECK(r == 1 && memcmp(&addr, &first, sizeof(addr)) == 0, "completed twice");
    if (r == 1) {
      FZ_CHECK(have >= LS_VDE_REQ_FIXED, "complete at %u bytes", have);
      FZ_CHECK(addr.sun_family == AF_UNIX, "family %d", addr.sun_family);
      if (addr.sun_path[0])
        FZ_CHECK(memchr(addr.sun_path, 0, sizeof(addr.sun_path)) != NULL, "unterminated path");
      size_t dl = strnlen(descr, sizeof(descr));
      FZ_CHECK(dl <= LS_VDE_DESCR_MAX && dl <= have - LS_VDE_REQ_FIXED, "description of %zu", dl);
      for (size_t i = 0; i < dl; i++)
        FZ_CHECK(descr[i] >= 0x20 && descr[i] < 0x7f, "unprintable description");
      if (prev != 1) first = addr;
    }
    if (r == 0) FZ_CHECK(have < LS_VDE_REQ_FIXED, "incomplete at %u bytes", have);
    prev = r;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ls_fz z = {data, size};
  if (fz_u8(&z) & 1)
    fuzz_vde(&z);
  else
    fuzz_vxlan(&z);
  return 0;
}
