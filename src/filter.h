/*
 * filter.h — ordered rules per port and direction: a tcpdump-syntax match (compiled once
 * by libpcap into classic BPF) and an action.
 *
 * Owns: ls_ruleset, built whole on the control thread (ls_ruleset_new: every expression
 * compiled, every argument checked — a syntax error returns libpcap's message and builds
 * nothing) and then swapped onto a port by a runtime command, so replacing a rule set is
 * atomic: a frame sees the old set or the new one. Evaluation (ls_ruleset_eval) runs on
 * the data-plane thread: rules in order, `bpf_filter` on each frame, about 10-25 ns a rule
 * here; the first terminal action (allow, drop, punt, police over its rate) decides.
 * Counters and policer state live in the rules and belong to the data plane.
 */
#ifndef LS_FILTER_H
#define LS_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bpf_insn;
typedef struct ls_port ls_port;

#define LS_RULES_MAX 1024 /* rules per set */

enum ls_action {
  LS_ACT_ALLOW,      /* pass, stop evaluating */
  LS_ACT_DROP,       /* drop, stop */
  LS_ACT_COUNT,      /* count, go on */
  LS_ACT_MIRROR,     /* copy to a port, go on */
  LS_ACT_SET_VLAN,   /* the outer VLAN tag becomes vid (pushed if untagged), go on */
  LS_ACT_STRIP_VLAN, /* remove the outer VLAN tag, go on */
  LS_ACT_POLICE,     /* token bucket: conforming frames go on, the others are dropped */
  LS_ACT_PUNT,       /* to Lua instead of forwarding (rate-limited), stop */
  LS_ACT_SAMPLE,     /* 1 in N copied to Lua (rate-limited), go on */
};

typedef struct ls_rule {
  struct bpf_insn *prog; /* NULL: matches every frame */
  uint32_t prog_len;
  char *match; /* the expression, for explain and info */
  uint8_t action;
  /* arguments */
  ls_port *port;  /* mirror */
  uint16_t vid;   /* set_vlan */
  int8_t pcp;     /* set_vlan: priority to set, -1 keep (0 when pushing a tag) */
  bool per_byte;  /* police: rate in bits per second (else frames per second) */
  double rate;    /* police: bits/s or frames/s; punt, sample: events/s */
  double burst;   /* police: bits or frames */
  uint32_t every; /* sample: 1 in every */
  /* data-plane state */
  double tokens;
  uint64_t last_ns;
  uint64_t seen;                    /* sample: matches so far */
  uint64_t matches, bytes, limited; /* counters (limited: police/punt/sample over rate) */
} ls_rule;

typedef struct ls_ruleset {
  uint32_t n;
  ls_rule rules[];
} ls_ruleset;

/* A rule as the control plane gives it. */
typedef struct ls_rule_spec {
  const char *match; /* NULL or "": every frame */
  int action;
  ls_port *port;
  uint16_t vid;
  int8_t pcp;
  bool per_byte;
  double rate, burst;
  uint32_t every;
} ls_rule_spec;

/* Compile n rules. NULL on failure with a message in err (libpcap's for a syntax error)
 * and the failing rule's index (0-based) in *bad. */
ls_ruleset *ls_ruleset_new(const ls_rule_spec *specs, uint32_t n, char *err, size_t errlen,
                           uint32_t *bad);
void ls_ruleset_free(ls_ruleset *rs);

/* Does rule r match the frame? */
bool ls_rule_match(const ls_rule *r, const uint8_t *frame, uint32_t len);

/* Token bucket of a policing (or rate-limited punt/sample) rule: take cost; true if it
 * conformed. */
bool ls_rule_take(ls_rule *r, uint64_t now, double cost);
/* Would it conform? (Changes nothing: for explain.) */
bool ls_rule_peek(const ls_rule *r, uint64_t now, double cost);

const char *ls_action_name(int action);

#endif
