/*
 * admit.h — learning admission: the source MACs waiting for the Lua policy's answer, and
 * the ones it refused.
 *
 * Owns: a bounded hash table keyed like the FDB ((VLAN, MAC) in 64 bits), each entry
 * naming the port the address showed up on, its state (pending or refused) and when it
 * got there. The data plane asks it about every frame whose source is not yet learned on
 * a port with admission on, so a lookup is one probe chain and never allocates; the
 * table is allocated when a switch first needs it. Entries expire (pending: the policy
 * is asked again; refused: the address may try again), lazily on lookup and by a sweep
 * when the table is full. Data-plane only.
 */
#ifndef LS_ADMIT_H
#define LS_ADMIT_H

#include <stdbool.h>
#include <stdint.h>

#define LS_ADMIT_MAX 4096 /* addresses pending or refused per switch */

enum ls_admit_state { LS_ADMIT_NONE = 0, LS_ADMIT_PENDING = 1, LS_ADMIT_REFUSED = 2 };

typedef struct ls_admit_entry {
  uint64_t key; /* 0: free */
  const void *owner;
  uint64_t time; /* when it entered its state */
  uint8_t state;
} ls_admit_entry;

typedef struct ls_admit {
  ls_admit_entry *slots; /* NULL until first used */
  uint32_t mask, count;
  uint64_t salt;
  uint64_t ttl_pending, ttl_refused; /* ns */
} ls_admit;

void ls_admit_init(ls_admit *a, uint64_t salt, uint64_t ttl_pending, uint64_t ttl_refused);
void ls_admit_fini(ls_admit *a);

/* The state of key for owner at time now (an entry of another owner, or an expired one,
 * counts as none). */
int ls_admit_state(ls_admit *a, uint64_t key, const void *owner, uint64_t now);
/* Record key as state for owner. 0, or -ENOSPC when the table is full (after dropping
 * expired entries), -ENOMEM. */
int ls_admit_set(ls_admit *a, uint64_t key, const void *owner, int state, uint64_t now);
/* Forget key (approved, or its port left). */
void ls_admit_del(ls_admit *a, uint64_t key);
/* Forget every entry of owner. */
void ls_admit_forget_owner(ls_admit *a, const void *owner);

#endif
