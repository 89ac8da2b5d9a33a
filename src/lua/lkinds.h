/*
 * lkinds.h — the table of port kinds behind sw:port() (see lkinds.c).
 */
#ifndef LS_LKINDS_H
#define LS_LKINDS_H

#include "lutil.h"
#include "port.h"

typedef struct lsl_port_args {
  lua_State *L;
  int opts;       /* stack index of the options table */
  const char *fn; /* function name for messages */
  ls_runtime *rt;
  ls_port_config *cfg; /* common options, already read */
  const char *name;    /* the name option, or NULL */
  int err;             /* out: -errno on failure */
  char where[256];     /* out: the failing step */
} lsl_port_args;

typedef struct lsl_kind {
  const char *name;
  const char *const *options;           /* accepted option names, NULL-terminated */
  ls_port *(*create)(lsl_port_args *a); /* reads its options (raising on bad ones), creates */
} lsl_kind;

extern const lsl_kind lsl_kinds[]; /* ends with a NULL name */
/* The kind names, NULL-terminated (for option validation). */
const char *const *lsl_kind_names(void);

#endif
