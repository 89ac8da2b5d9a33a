/*
 * filter.c — compiling and evaluating rule sets (see filter.h).
 */
#include "filter.h"
#include "common.h"

#include <errno.h>
#include <pcap/pcap.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const action_names[] = {
    "allow", "drop", "count", "mirror", "set_vlan", "strip_vlan", "police", "punt", "sample",
};

const char *ls_action_name(int action) {
  return action >= 0 && action < (int)LS_ARRAY_LEN(action_names) ? action_names[action] : "?";
}

/* pcap_compile is not re-entrant in every libpcap: serialise it. */
static pthread_mutex_t compile_mu = PTHREAD_MUTEX_INITIALIZER;

void ls_ruleset_free(ls_ruleset *rs) {
  if (!rs) return;
  for (uint32_t i = 0; i < rs->n; i++) {
    free(rs->rules[i].prog);
    free(rs->rules[i].match);
  }
  free(rs);
}

ls_ruleset *ls_ruleset_new(const ls_rule_spec *specs, uint32_t n, char *err, size_t errlen,
                           uint32_t *bad) {
  *bad = 0;
  if (n > LS_RULES_MAX) {
    snprintf(err, errlen, "at most %d rules in a set", LS_RULES_MAX);
    return NULL;
  }
  ls_ruleset *rs = calloc(1, sizeof(*rs) + (size_t)n * sizeof(ls_rule));
  if (!rs) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  rs->n = n;
  pthread_mutex_lock(&compile_mu);
  pcap_t *dead = pcap_open_dead(DLT_EN10MB, 65535);
  for (uint32_t i = 0; i < n && dead; i++) {
    const ls_rule_spec *s = &specs[i];
    ls_rule *r = &rs->rules[i];
    r->action = (uint8_t)s->action;
    r->port = s->port;
    r->vid = s->vid;
    r->pcp = s->pcp;
    r->per_byte = s->per_byte;
    r->rate = s->rate;
    r->burst = s->burst;
    r->every = s->every ? s->every : 1;
    r->tokens = s->burst;
    r->match = strdup(s->match ? s->match : "");
    if (!r->match) goto nomem;
    if (s->match && *s->match) {
      struct bpf_program prog;
      if (pcap_compile(dead, &prog, s->match, 1, PCAP_NETMASK_UNKNOWN) < 0) {
        snprintf(err, errlen, "%s", pcap_geterr(dead));
        *bad = i;
        goto fail;
      }
      r->prog = malloc(prog.bf_len * sizeof(struct bpf_insn));
      if (!r->prog) {
        pcap_freecode(&prog);
        goto nomem;
      }
      memcpy(r->prog, prog.bf_insns, prog.bf_len * sizeof(struct bpf_insn));
      r->prog_len = prog.bf_len;
      pcap_freecode(&prog);
    }
  }
  if (!dead) {
    snprintf(err, errlen, "pcap_open_dead failed");
    goto fail;
  }
  pcap_close(dead);
  pthread_mutex_unlock(&compile_mu);
  return rs;
nomem:
  snprintf(err, errlen, "out of memory");
fail:
  if (dead) pcap_close(dead);
  pthread_mutex_unlock(&compile_mu);
  ls_ruleset_free(rs);
  return NULL;
}

bool ls_rule_match(const ls_rule *r, const uint8_t *frame, uint32_t len) {
  if (!r->prog) return true;
  return bpf_filter(r->prog, frame, len, len) != 0;
}

static double tokens_at(const ls_rule *r, uint64_t now) {
  if (!r->last_ns || now <= r->last_ns) return r->tokens;
  double t = r->tokens + (double)(now - r->last_ns) / 1e9 * r->rate;
  return t > r->burst ? r->burst : t;
}

bool ls_rule_take(ls_rule *r, uint64_t now, double cost) {
  r->tokens = tokens_at(r, now);
  r->last_ns = now ? now : 1;
  if (r->tokens < cost) return false;
  r->tokens -= cost;
  return true;
}

bool ls_rule_peek(const ls_rule *r, uint64_t now, double cost) {
  return tokens_at(r, now) >= cost;
}
