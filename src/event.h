/*
 * event.h — events from the data plane to the control plane, and the ring that carries them.
 *
 * Owns: ls_event (one fixed-size record: learn, move, age, evict, port state, error) and
 * ls_ring, a bounded single-producer / single-consumer ring. The data-plane thread is the
 * only producer and never blocks: when the ring is full the event is dropped and counted.
 * The control thread is the only consumer. The ring itself knows nothing about wake-ups;
 * the runtime pairs it with an eventfd (see runtime.h).
 */
#ifndef LS_EVENT_H
#define LS_EVENT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

enum ls_event_type {
  LS_EV_LEARN = 1,  /* mac, vlan, port */
  LS_EV_MOVE,       /* mac, vlan, port (new), port2 (old), value = moves folded into it */
  LS_EV_AGE,        /* mac, vlan, port, value = age in ns */
  LS_EV_EVICT,      /* mac, vlan, port */
  LS_EV_PORT,       /* port, state (1 up / 0 down), reason */
  LS_EV_ERROR,      /* port (or 0), value = negative errno, reason = where */
  LS_EV_PUNT,       /* port, state = direction (0 in, 1 out), port2 = rule (1-based),
                       value = (ls_frame_blob *) the frame, owned by the event */
  LS_EV_SAMPLE,     /* as LS_EV_PUNT: a copy of a frame that was also forwarded */
  LS_EV_TABLE_FULL, /* mac, vlan, port: learning refused (state 0: the switch's cap, 1: the
                       port's); value = refusals this event stands for */
  LS_EV_ADMIT,      /* mac, vlan, port: a new source MAC waits for the admission policy */
  LS_EV_REFUSE,     /* mac, vlan, port: the admission policy refused it */
  LS_EV_STP,        /* port: its STP state (state) or role (reason) changed */
};

/* The bytes of a punted or sampled frame. Allocated by the data plane, freed by whoever
 * takes the event off the ring (ls_runtime_events' caller, or the runtime when it stops
 * with events still queued). */
typedef struct ls_frame_blob {
  uint32_t len;
  uint8_t data[];
} ls_frame_blob;

static inline bool ls_event_has_blob(uint16_t type) {
  return type == LS_EV_PUNT || type == LS_EV_SAMPLE;
}

enum ls_port_reason {
  LS_REASON_NONE = 0,
  LS_REASON_ADMIN,  /* port:up() / port:down() */
  LS_REASON_HANGUP, /* the peer went away */
  LS_REASON_PEER,   /* a peer appeared (learned or reconnected) */
  LS_REASON_ERROR,  /* an I/O error we could not recover from */
  LS_REASON_TX,     /* error while sending */
  LS_REASON_RX,     /* error while receiving */
  LS_REASON_IMPAIR, /* an impairment cut or restored the link */
};

typedef struct ls_event {
  uint16_t type;
  uint16_t vlan;
  uint32_t switch_id;
  uint32_t port_id;
  uint32_t port2_id;
  uint8_t mac[6];
  uint8_t state;
  uint8_t reason;
  uint64_t time; /* runtime clock, ns */
  int64_t value;
} ls_event;

typedef struct ls_ring {
  ls_event *slots;
  uint32_t mask;
  _Atomic uint32_t head; /* next slot the producer writes */
  _Atomic uint32_t tail; /* next slot the consumer reads */
  _Atomic uint64_t dropped;
} ls_ring;

/* capacity is rounded up to a power of two. 0 or -ENOMEM. */
int ls_ring_init(ls_ring *r, uint32_t capacity);
void ls_ring_fini(ls_ring *r);

/* Producer side. Returns false (and counts a drop) when full. */
static inline bool ls_ring_push(ls_ring *r, const ls_event *ev) {
  uint32_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
  uint32_t t = atomic_load_explicit(&r->tail, memory_order_acquire);
  if (h - t > r->mask) {
    atomic_fetch_add_explicit(&r->dropped, 1, memory_order_relaxed);
    return false;
  }
  r->slots[h & r->mask] = *ev;
  atomic_store_explicit(&r->head, h + 1, memory_order_release);
  return true;
}

/* Consumer side: copy up to max events out; returns how many. */
uint32_t ls_ring_pop(ls_ring *r, ls_event *out, uint32_t max);
/* Consumer side: events waiting. */
uint32_t ls_ring_pending(ls_ring *r);

#endif
