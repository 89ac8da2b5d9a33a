/*
 * port_patch.c — the "patch" port kind: a virtual cable between two switches (or two
 * ports of one switch) on the same runtime, entirely inside the data plane.
 *
 * Owns: the pairing of two patch ports and the hand-over of frames between them. What
 * one end queues for sending is what the other end receives: the receiving end reads
 * straight from its peer's transmit queue (no copy, no syscall), counting each frame as
 * sent by the peer and received by itself, and feeds it to its own switch like any
 * received frame. Those frames are received work held in user space (runtime.h): while the
 * peer has frames queued the port is on the runtime's rx_ready list, and reads once per
 * loop iteration, at most LS_RX_BUDGET frames a time (or its slice) in batches of
 * LS_BATCH, so a loop of cables (a broadcast storm in a ring) costs CPU and frames like a
 * real one — dropped at the queues' bounds — but never holds the loop.
 * Backpressure works as between real ports: a receiving end whose batch fed congested
 * ports stops reading, so frames wait on the peer's queue and congest it in turn.
 *
 * Both ends take offloads (TSO frames cross as they are, and are segmented only where a
 * port without offloads needs it). Each end's link is up while it has a peer; closing
 * one end takes the other's link down (reason "hangup"), and it waits, loose, for no one:
 * a loose end stays down until closed.
 */
#include "port_patch.h"
#include "switch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct patch_port {
  ls_port base;
  struct patch_port *peer;
  ls_port *want_peer; /* given at creation: cabled at attach */
} patch_port;

static const ls_port_ops patch_ops;

static patch_port *P(ls_port *p) {
  return (patch_port *)p;
}

bool ls_port_is_patch(const ls_port *p) {
  return p->ops == &patch_ops;
}

/* Read (the peer's queue) on the next loop iteration while there is something and
 * backpressure allows. */
static void update(patch_port *c) {
  if (c->peer && c->peer->base.txq_len && c->base.blocked == 0 && c->base.attached)
    ls_rt_rx_ready(c->base.rt, &c->base);
}

static void patch_resume(ls_port *p) {
  patch_port *c = P(p);
  ls_runtime *rt = p->rt;
  uint32_t budget = LS_RX_BUDGET;
  while (c->peer && budget && p->blocked == 0) {
    ls_port *q = &c->peer->base;
    uint32_t n = q->txq_len < LS_BATCH ? q->txq_len : LS_BATCH;
    if (n > budget) n = budget;
    if (!n) break;
    rt->stats.batches++;
    for (uint32_t i = 0; i < n && c->peer; i++) {
      ls_buf *b = q->txq[q->txq_head];
      ls_buf_ref(b);
      ls_port_txq_sent(q, 1);
      ls_switch_input(p->sw, p, b, false);
    }
    budget -= n;
    ls_rt_flush(rt);
    if (ls_port_batch_done(p)) break;
  }
  update(c);
}

/* The queue has frames for the peer: it reads them on its next idle turn. */
static void patch_flush(ls_port *p) {
  patch_port *c = P(p);
  if (c->peer) update(c->peer);
}

static void patch_update(ls_port *p) {
  update(P(p));
}

static void cable(patch_port *a, patch_port *b) {
  a->peer = b;
  b->peer = a;
  ls_port_set_link(&a->base, true, LS_REASON_PEER);
  ls_port_set_link(&b->base, true, LS_REASON_PEER);
}

static int patch_attach(ls_port *p) {
  patch_port *c = P(p);
  if (c->want_peer) {
    ls_port *q = c->want_peer;
    if (!ls_port_is_patch(q) || !q->attached || q->closing || q->rt != p->rt || q == p)
      return -EINVAL;
    if (P(q)->peer) return -EBUSY;
  }
  if (c->want_peer) cable(c, P(c->want_peer));
  c->want_peer = NULL;
  return 0;
}

static void patch_detach(ls_port *p) {
  patch_port *c = P(p);
  patch_port *o = c->peer;
  c->peer = NULL;
  if (o) {
    o->peer = NULL;
    update(o);
    ls_port_set_link(&o->base, false, LS_REASON_HANGUP);
  }
  ls_port_release(p); /* no handle of its own */
}

static void patch_destroy(ls_port *p) {
  free(P(p));
}

static void patch_describe(ls_port *p, ls_port_info *o) {
  patch_port *c = P(p);
  if (c->peer)
    snprintf(o->peer, sizeof(o->peer), "%s/%s", c->peer->base.sw->cfg.name, c->peer->base.cfg.name);
}

static const ls_port_ops patch_ops = {
    .kind = "patch",
    .attach = patch_attach,
    .flush = patch_flush,
    .update = patch_update,
    .detach = patch_detach,
    .destroy = patch_destroy,
    .describe = patch_describe,
    .resume = patch_resume,
};

ls_port *ls_port_patch_new(ls_runtime *rt, const ls_port_config *cfg, ls_port *peer, int *err,
                           char *where, size_t wlen) {
  patch_port *c = calloc(1, sizeof(*c));
  if (!c) {
    *err = -ENOMEM;
    snprintf(where, wlen, "patch port");
    return NULL;
  }
  int r = ls_port_init(&c->base, &patch_ops, rt, cfg);
  if (r) {
    free(c);
    *err = r;
    snprintf(where, wlen, "patch port");
    return NULL;
  }
  c->base.offloads = true;
  c->want_peer = peer;
  return &c->base;
}
