/*
 * json.c — the little JSON the executable handles in C.
 *
 * Owns: finding a field of a reply object without building a tree, decoding and encoding
 * JSON strings, reading an array of strings (completions), and printing JSON text
 * indented for `luaswitch ctl`. Replies come from luaswitch.console.json, which writes
 * compact, valid JSON; these functions still check what they read and stop at anything
 * malformed rather than read past the end.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char *skip_ws(const char *p, const char *e) {
  while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
  return p;
}

/* The end of the string starting at p (a '"'), or NULL. */
static const char *skip_string(const char *p, const char *e) {
  for (p++; p < e; p++) {
    if (*p == '\\') {
      p++;
    } else if (*p == '"') {
      return p + 1;
    }
  }
  return NULL;
}

/* The end of the value starting at p, or NULL. */
static const char *skip_value(const char *p, const char *e) {
  p = skip_ws(p, e);
  if (p >= e) return NULL;
  if (*p == '"') return skip_string(p, e);
  if (*p == '{' || *p == '[') {
    int depth = 0;
    while (p < e) {
      if (*p == '"') {
        p = skip_string(p, e);
        if (!p) return NULL;
        continue;
      }
      if (*p == '{' || *p == '[') depth++;
      if (*p == '}' || *p == ']') {
        if (--depth == 0) return p + 1;
      }
      p++;
    }
    return NULL;
  }
  while (p < e && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\n') p++;
  return p;
}

json_span json_field(const char *s, size_t len, const char *key) {
  json_span none = {NULL, 0};
  const char *p = s, *e = s + len;
  size_t klen = strlen(key);
  p = skip_ws(p, e);
  if (p >= e || *p != '{') return none;
  p++;
  for (;;) {
    p = skip_ws(p, e);
    if (p >= e || *p != '"') return none;
    const char *ks = p + 1, *ke = skip_string(p, e);
    if (!ke) return none;
    p = skip_ws(ke, e);
    if (p >= e || *p != ':') return none;
    p = skip_ws(p + 1, e);
    const char *ve = skip_value(p, e);
    if (!ve) return none;
    if ((size_t)(ke - 1 - ks) == klen && memcmp(ks, key, klen) == 0)
      return (json_span){p, (size_t)(ve - p)};
    p = skip_ws(ve, e);
    if (p >= e || *p != ',') return none;
    p++;
  }
}

static int hexval(const char *p) {
  int v = 0;
  for (int i = 0; i < 4; i++) {
    char c = p[i];
    v <<= 4;
    if (c >= '0' && c <= '9')
      v |= c - '0';
    else if (c >= 'a' && c <= 'f')
      v |= c - 'a' + 10;
    else if (c >= 'A' && c <= 'F')
      v |= c - 'A' + 10;
    else
      return -1;
  }
  return v;
}

static size_t put_utf8(char *o, uint32_t cp) {
  if (cp < 0x80) {
    o[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    o[0] = (char)(0xC0 | (cp >> 6));
    o[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    o[0] = (char)(0xE0 | (cp >> 12));
    o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  o[0] = (char)(0xF0 | (cp >> 18));
  o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
  o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
  o[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

char *json_string_decode(json_span v, size_t *outlen) {
  if (!v.p || v.len < 2 || v.p[0] != '"' || v.p[v.len - 1] != '"') return NULL;
  const char *p = v.p + 1, *e = v.p + v.len - 1;
  char *out = malloc(v.len + 1), *o = out; /* decoding never grows it */
  if (!out) return NULL;
  while (p < e) {
    if (*p != '\\') {
      *o++ = *p++;
      continue;
    }
    if (++p >= e) break;
    char c = *p++;
    switch (c) {
    case 'n':
      *o++ = '\n';
      break;
    case 't':
      *o++ = '\t';
      break;
    case 'r':
      *o++ = '\r';
      break;
    case 'b':
      *o++ = '\b';
      break;
    case 'f':
      *o++ = '\f';
      break;
    case 'u': {
      if (e - p < 4) goto bad;
      int cp = hexval(p);
      if (cp < 0) goto bad;
      p += 4;
      if (cp >= 0xD800 && cp <= 0xDBFF && e - p >= 6 && p[0] == '\\' && p[1] == 'u') {
        int lo = hexval(p + 2);
        if (lo >= 0xDC00 && lo <= 0xDFFF) {
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          p += 6;
        }
      }
      o += put_utf8(o, (uint32_t)cp);
      break;
    }
    default:
      *o++ = c;
      break; /* \" \\ \/ */
    }
  }
  *o = '\0';
  if (outlen) *outlen = (size_t)(o - out);
  return out;
bad:
  free(out);
  return NULL;
}

char *json_string_encode(const char *s, size_t len, size_t *outlen) {
  char *out = malloc(len * 6 + 3), *o = out;
  if (!out) return NULL;
  static const char hex[] = "0123456789abcdef";
  *o++ = '"';
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') {
      *o++ = '\\';
      *o++ = (char)c;
    } else if (c == '\n') {
      *o++ = '\\';
      *o++ = 'n';
    } else if (c == '\t') {
      *o++ = '\\';
      *o++ = 't';
    } else if (c < 0x20 || c == 0x7f) {
      memcpy(o, "\\u00", 4);
      o[4] = hex[c >> 4];
      o[5] = hex[c & 15];
      o += 6;
    } else {
      *o++ = (char)c; /* UTF-8 passes through; the server reads it back as bytes */
    }
  }
  *o++ = '"';
  *o = '\0';
  if (outlen) *outlen = (size_t)(o - out);
  return out;
}

char **json_string_array(json_span v) {
  if (!v.p || v.len < 2 || v.p[0] != '[') return NULL;
  const char *p = v.p + 1, *e = v.p + v.len - 1;
  size_t n = 0, cap = 16;
  char **out = calloc(cap + 1, sizeof(*out));
  if (!out) return NULL;
  for (;;) {
    p = skip_ws(p, e);
    if (p >= e || *p != '"') break;
    const char *se = skip_string(p, e + 1);
    if (!se) break;
    if (n == cap) {
      char **o2 = realloc(out, (cap * 2 + 1) * sizeof(*out));
      if (!o2) break;
      out = o2;
      cap *= 2;
    }
    out[n] = json_string_decode((json_span){p, (size_t)(se - p)}, NULL);
    if (!out[n]) break;
    out[++n] = NULL;
    p = skip_ws(se, e);
    if (p >= e || *p != ',') break;
    p++;
  }
  out[n] = NULL;
  return out;
}

static void newline(FILE *f, int depth) {
  fputc('\n', f);
  for (int i = 0; i < depth; i++) fputs("  ", f);
}

void json_print_indented(json_span v, FILE *f) {
  const char *p = v.p, *e = v.p + v.len;
  int depth = 0;
  while (p < e) {
    char c = *p;
    if (c == '"') {
      const char *se = skip_string(p, e);
      if (!se) se = e;
      fwrite(p, 1, (size_t)(se - p), f);
      p = se;
      continue;
    }
    if (c == '{' || c == '[') {
      const char *q = skip_ws(p + 1, e);
      if (q < e && (*q == '}' || *q == ']')) { /* {} and [] stay as they are */
        fputc(c, f);
        fputc(*q, f);
        p = q + 1;
        continue;
      }
      fputc(c, f);
      newline(f, ++depth);
    } else if (c == '}' || c == ']') {
      newline(f, --depth);
      fputc(c, f);
    } else if (c == ',') {
      fputc(c, f);
      newline(f, depth);
    } else if (c == ':') {
      fputs(": ", f);
    } else if (c != ' ' && c != '\n' && c != '\t' && c != '\r') {
      fputc(c, f);
    }
    p++;
  }
  fputc('\n', f);
}
