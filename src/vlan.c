/*
 * vlan.c — tag edits on frame buffers (see vlan.h).
 */
#include "vlan.h"
#include "frame.h"

#include <string.h>

static void vnet_shift(ls_vnet *v, int delta) {
  if (v->flags & LS_VNET_F_NEEDS_CSUM) v->csum_start = (uint16_t)(v->csum_start + delta);
  if (v->gso_type != LS_VNET_GSO_NONE && v->hdr_len) v->hdr_len = (uint16_t)(v->hdr_len + delta);
}

/* A private copy of b with room for extra more bytes (its reference released). */
static ls_buf *copy_of(ls_pool *pool, ls_buf *b, uint32_t extra) {
  ls_buf *c = ls_pool_get(pool, ls_pool_class_for(b->len + extra));
  if (c) {
    memcpy(c->data, ls_buf_frame(b), b->len);
    c->len = b->len;
    c->vnet = b->vnet;
  }
  ls_buf_unref(pool, b);
  return c;
}

ls_buf *ls_vlan_push(ls_pool *pool, ls_buf *b, uint16_t tpid, uint16_t tci) {
  if (b->refs == 1 && b->head >= LS_VLAN_HLEN) {
    b->head -= LS_VLAN_HLEN;
    uint8_t *f = ls_buf_frame(b);
    memmove(f, f + LS_VLAN_HLEN, 2 * LS_ETH_ALEN);
    b->len += LS_VLAN_HLEN;
  } else {
    ls_buf *c = ls_pool_get(pool, ls_pool_class_for(b->len + LS_VLAN_HLEN));
    if (!c) {
      ls_buf_unref(pool, b);
      return NULL;
    }
    const uint8_t *s = ls_buf_frame(b);
    memcpy(c->data, s, 2 * LS_ETH_ALEN);
    memcpy(c->data + 2 * LS_ETH_ALEN + LS_VLAN_HLEN, s + 2 * LS_ETH_ALEN, b->len - 2 * LS_ETH_ALEN);
    c->len = b->len + LS_VLAN_HLEN;
    c->vnet = b->vnet;
    ls_buf_unref(pool, b);
    b = c;
  }
  uint8_t *f = ls_buf_frame(b);
  ls_put_be16(f + 12, tpid);
  ls_put_be16(f + 14, tci);
  vnet_shift(&b->vnet, LS_VLAN_HLEN);
  return b;
}

ls_buf *ls_vlan_pop(ls_pool *pool, ls_buf *b) {
  if (b->refs != 1 && !(b = copy_of(pool, b, 0))) return NULL;
  uint8_t *f = ls_buf_frame(b);
  memmove(f + LS_VLAN_HLEN, f, 2 * LS_ETH_ALEN);
  b->head += LS_VLAN_HLEN;
  b->len -= LS_VLAN_HLEN;
  vnet_shift(&b->vnet, -LS_VLAN_HLEN);
  return b;
}

ls_buf *ls_vlan_set(ls_pool *pool, ls_buf *b, uint16_t vid, int pcp) {
  if (b->refs != 1 && !(b = copy_of(pool, b, 0))) return NULL;
  uint8_t *f = ls_buf_frame(b);
  uint16_t tci = ls_get_be16(f + 14);
  tci = (uint16_t)((tci & 0xf000) | (vid & 0x0fff));
  if (pcp >= 0) tci = (uint16_t)((tci & 0x1fff) | ((pcp & 7) << 13));
  ls_put_be16(f + 14, tci);
  return b;
}
