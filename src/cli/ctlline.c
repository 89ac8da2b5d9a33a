/*
 * ctlline.c — the control socket's request framing as a pure function (control.c reads
 * and answers; this decides what the bytes received so far hold).
 *
 * Owns: ctl_line(). A request is a line of at most CLI_MAX_LINE bytes, ended by "\n" or
 * "\r\n" (the "\r" is not part of it). The decision depends only on the bytes, never on
 * how they were split into reads: a line is too long as soon as more than CLI_MAX_LINE
 * bytes (a "\r" that may end it aside) have come without a newline, whether or not its
 * newline is already there.
 */
#include <string.h>

#include "cli.h"

int ctl_line(const char *in, size_t inlen, size_t *linelen, size_t *used) {
  *linelen = *used = 0;
  if (inlen == 0) return CTL_MORE;
  size_t scan = inlen < CLI_MAX_LINE + 2 ? inlen : CLI_MAX_LINE + 2;
  const char *nl = memchr(in, '\n', scan);
  if (nl) {
    size_t i = (size_t)(nl - in);
    size_t len = i > 0 && in[i - 1] == '\r' ? i - 1 : i;
    if (len > CLI_MAX_LINE) return CTL_TOO_LONG;
    *linelen = len;
    *used = i + 1;
    return CTL_LINE;
  }
  if (inlen > CLI_MAX_LINE + 1 || (inlen == CLI_MAX_LINE + 1 && in[CLI_MAX_LINE] != '\r'))
    return CTL_TOO_LONG;
  return CTL_MORE;
}
