/*
 * test_frame.c — unit tests of frame.h/frame.c: MAC text, MAC packing, header parsing.
 */
#include "check.h"
#include "frame.h"

static void test_mac_text(void) {
  uint8_t m[6];
  CHECK_EQ(ls_mac_parse("02:00:00:00:00:01", m), 0);
  CHECK_EQ(m[0], 2);
  CHECK_EQ(m[5], 1);
  CHECK_EQ(ls_mac_parse("AA-bb-CC-dd-EE-ff", m), 0);
  CHECK_EQ(m[0], 0xaa);
  CHECK_EQ(m[5], 0xff);
  CHECK_EQ(ls_mac_parse("02:00:00:00:00", m), -1);
  CHECK_EQ(ls_mac_parse("zz:00:00:00:00:00", m), -1);
  CHECK_EQ(ls_mac_parse("02:00:00:00:00:01:", m), -1);
  CHECK_EQ(ls_mac_parse("02:00-00:00:00:01", m), -1);
  CHECK_EQ(ls_mac_parse("2:00:00:00:00:01", m), -1);
  CHECK_EQ(ls_mac_parse("", m), -1);
  char s[18];
  ls_mac_parse("DE:AD:BE:EF:00:01", m);
  ls_mac_format(m, s);
  CHECK(strcmp(s, "de:ad:be:ef:00:01") == 0);
}

static void test_mac_pack(void) {
  uint8_t m[8] = {0x02, 0x11, 0x22, 0x33, 0x44, 0x55, 0xaa, 0xbb};
  CHECK(ls_mac_to_u64(m) == 0x021122334455ULL);
  CHECK(ls_mac_load(m) == 0x021122334455ULL);
  uint8_t o[6];
  ls_u64_to_mac(0x021122334455ULL, o);
  CHECK(memcmp(o, m, 6) == 0);
  CHECK(ls_mac_is_group((const uint8_t *)"\x01\x00\x5e\x00\x00\x01"));
  CHECK(!ls_mac_is_group(m));
  CHECK(ls_mac_is_broadcast((const uint8_t *)"\xff\xff\xff\xff\xff\xff"));
}

static void test_parse(void) {
  uint8_t f[64] = {0};
  ls_eth_info e;
  CHECK_EQ(ls_eth_parse(f, 13, &e), -1);
  f[12] = 0x08;
  CHECK_EQ(ls_eth_parse(f, 14, &e), 0);
  CHECK_EQ(e.ethertype, 0x0800);
  CHECK_EQ(e.l2_len, 14);
  CHECK_EQ(e.ntags, 0);
  /* 802.1ad outer 100, 802.1Q inner 200, IPv4 */
  uint8_t q[22] = {0};
  ls_put_be16(q + 12, 0x88a8);
  ls_put_be16(q + 14, 100);
  ls_put_be16(q + 16, 0x8100);
  ls_put_be16(q + 18, (3 << 13) | 200);
  ls_put_be16(q + 20, 0x0800);
  CHECK_EQ(ls_eth_parse(q, 22, &e), 0);
  CHECK_EQ(e.ntags, 2);
  CHECK_EQ(e.tci[0] & 0xfff, 100);
  CHECK_EQ(e.tci[1] & 0xfff, 200);
  CHECK_EQ(e.ethertype, 0x0800);
  CHECK_EQ(e.l2_len, 22);
  /* a tag cut short */
  CHECK_EQ(ls_eth_parse(q, 17, &e), -1);
}

int main(void) {
  RUN(test_mac_text);
  RUN(test_mac_pack);
  RUN(test_parse);
  return CHECK_DONE();
}
