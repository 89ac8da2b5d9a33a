/*
 * filter_compile.c — libFuzzer target: compiling filter rules (tcpdump expressions through
 * libpcap, with every action and its arguments) and evaluating them.
 *
 * Owns: the driver, and stand-ins for the name lookups libpcap may do while compiling
 * ("host NAME", "ether host NAME", "net NAME"): they answer "no such name" at once so
 * garbage never waits on DNS. A set of up to eight rules, their expressions garbage or
 * mutated from real ones, is compiled with ls_ruleset_new: it either fails with a message
 * and the index of a rule of the set, or builds a set that keeps every rule's text and
 * action; compiling the same set again gives the same programs. Each rule is then run
 * (ls_rule_match) on frames from the input of every length, and its token bucket is
 * asked (ls_rule_peek) and taken from (ls_rule_take) at random times: a peek that says
 * yes must be followed by a take that succeeds, and tokens never exceed the burst.
 */
#include <netdb.h>
#include <netinet/ether.h>
#include <pcap/pcap.h>

#include "filter.h"
#include "frame.h"
#include "fuzz.h"

/* ---- no name lookups while fuzzing ---------------------------------------------------------- */

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res) {
  (void)node, (void)service, (void)hints;
  *res = NULL;
  return EAI_NONAME;
}

struct hostent *gethostbyname(const char *name) {
  (void)name;
  return NULL;
}

struct netent *getnetbyname(const char *name) {
  (void)name;
  return NULL;
}

int ether_hostton(const char *hostname, struct ether_addr *addr) {
  (void)hostname, (void)addr;
  return -1;
}

/* ---- the target ----------------------------------------------------------------------------- */

static const char *const seeds[] = {
    "ip",          "vlan 10",           "ether src 02:00:00:00:00:01",
    "tcp port 80", "udp and not vlan",  "ether[12:2] = 0x88cc",
    "greater 100", "ip6 and icmp6",     "arp or rarp",
    "vlan and ip", "ether proto 0x800", "ip[2:2] > 576 and tcp[tcpflags] & tcp-syn != 0",
};

#define MAX_RULES 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ls_fz z = {data, size};
  char text[MAX_RULES][160];
  ls_rule_spec specs[MAX_RULES];
  uint32_t n = fz_below(&z, MAX_RULES + 1);
  memset(specs, 0, sizeof(specs));
  for (uint32_t i = 0; i < n; i++) {
    uint8_t c = fz_u8(&z);
    size_t len = 0;
    if (c < 64) { /* a real expression, perhaps with garbage after it */
      len = (size_t)snprintf(text[i], sizeof(text[i]), "%s", seeds[c % 12]);
    }
    if (c < 64 || c >= 128) { /* garbage: bytes of the input up to a NUL */
      size_t k;
      const uint8_t *p = fz_bytes(&z, fz_below(&z, 64), &k);
      for (size_t j = 0; j < k && p[j] && len < sizeof(text[i]) - 1; j++)
        text[i][len++] = (char)p[j];
    }
    text[i][len] = '\0';
    ls_rule_spec *s = &specs[i];
    s->match = (c & 0x40) && !len ? NULL : text[i];
    s->action = (int)fz_below(&z, LS_ACT_SAMPLE + 1);
    s->vid = (uint16_t)(1 + fz_below(&z, 4094));
    s->pcp = (int8_t)(fz_below(&z, 9) - 1);
    s->per_byte = fz_bool(&z);
    s->rate = 0.001 + fz_u16(&z);
    s->burst = 1 + fz_u8(&z);
    s->every = fz_u8(&z);
  }
  char err[512];
  uint32_t bad = UINT32_MAX;
  ls_ruleset *rs = ls_ruleset_new(specs, n, err, sizeof(err), &bad);
  if (!rs) {
    FZ_CHECK(bad < n, "failed at rule %u of %u", bad, n);
    FZ_CHECK(strnlen(err, sizeof(err)) > 0 && strnlen(err, sizeof(err)) < sizeof(err),
             "no message");
    return 0;
  }
  FZ_CHECK(rs->n == n, "%u rules of %u", rs->n, n);
  ls_ruleset *again = ls_ruleset_new(specs, n, err, sizeof(err), &bad);
  FZ_CHECK(again != NULL, "compiled once, not twice: %s", err);
  for (uint32_t i = 0; i < n; i++) {
    const ls_rule *r = &rs->rules[i];
    FZ_CHECK(strcmp(r->match, specs[i].match ? specs[i].match : "") == 0, "rule %u's text", i);
    FZ_CHECK(r->action == specs[i].action, "rule %u's action", i);
    FZ_CHECK((r->prog == NULL) == (!specs[i].match || !*specs[i].match), "rule %u's program", i);
    FZ_CHECK(again->rules[i].prog_len == r->prog_len &&
                 (!r->prog_len ||
                  memcmp(again->rules[i].prog, r->prog, r->prog_len * sizeof(*r->prog)) == 0),
             "rule %u compiled differently", i);
  }
  ls_ruleset_free(again);

  static uint8_t frame[LS_FRAME_MAX];
  uint64_t now = 0;
  while (fz_more(&z)) {
    size_t len;
    const uint8_t *p = fz_bytes(&z, fz_below(&z, 256), &len);
    memcpy(frame, p, len);
    uint32_t flen = (uint32_t)len;
    if (fz_u8(&z) == 0xff) flen = fz_below(&z, LS_FRAME_MAX + 1); /* long, zero-filled tail */
    if (flen > len) memset(frame + len, 0, flen - len);
    for (uint32_t i = 0; i < n; i++) {
      ls_rule *r = &rs->rules[i];
      bool m = ls_rule_match(r, frame, flen);
      if (!r->prog) FZ_CHECK(m, "an empty match did not match");
      if (!m || r->rate <= 0) continue;
      now += (uint64_t)fz_u16(&z) * 1000;
      double cost = r->per_byte ? 8.0 * flen : 1;
      bool would = ls_rule_peek(r, now, cost);
      bool took = ls_rule_take(r, now, cost);
      FZ_CHECK(would == took, "peek said %d, take did %d", would, took);
      FZ_CHECK(r->tokens <= r->burst + 1e-6, "tokens %g above burst %g", r->tokens, r->burst);
    }
  }
  ls_ruleset_free(rs);
  return 0;
}
