/*
 * vlan.h — pushing, popping and rewriting the outer VLAN tag of a frame in a buffer.
 *
 * Owns: the three tag edits the data plane makes (VLAN-aware egress, set_vlan and
 * strip_vlan rule actions) and keeping a frame's offload metadata (ls_vnet csum_start
 * and hdr_len, which count from the start of the frame) right across them. An edit works
 * in place when the caller holds the only reference (and, for a push, the buffer has
 * headroom); otherwise it copies into a fresh buffer, since queued references to the
 * original must keep seeing the frame they were given.
 *
 * Each function consumes the caller's reference to b and returns a buffer with one
 * reference for the caller (b itself or a copy), or NULL when out of memory (b's
 * reference is still released). Data-plane only.
 */
#ifndef LS_VLAN_H
#define LS_VLAN_H

#include <stdint.h>

#include "buf.h"

#define LS_VID_MAX 4094 /* 0 means "priority tag", 4095 is reserved */

/* Insert tpid/tci after the MAC addresses. */
ls_buf *ls_vlan_push(ls_pool *pool, ls_buf *b, uint16_t tpid, uint16_t tci);
/* Remove the tag after the MAC addresses (the caller checked there is one). */
ls_buf *ls_vlan_pop(ls_pool *pool, ls_buf *b);
/* Replace the VLAN id of the tag after the MAC addresses, keeping PCP and DEI unless
 * pcp >= 0. */
ls_buf *ls_vlan_set(ls_pool *pool, ls_buf *b, uint16_t vid, int pcp);

#endif
