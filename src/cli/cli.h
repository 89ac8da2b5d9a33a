/*
 * cli.h — what the parts of the luaswitch executable share.
 *
 *   main.c      options, the Lua state, running the script, teardown
 *   serve.c     the main loop after the script: signals, events, the REPL's terminal and
 *               the control socket in one poll(); running Lua so that Ctrl-C interrupts it
 *   repl.c      the local REPL (-i): lines in, luaswitch.console.repl_line, completion
 *   lineedit.c  libedit in callback mode (or plain lines when stdin is not a terminal),
 *               history, completion plumbing; used by the REPL and by attach
 *   control.c   the control socket server (--control): clients, buffers, SO_PEERCRED
 *   ctlline.c   the control socket's line framing (a pure function)
 *   metrics.c   Prometheus text over HTTP (--metrics): luaswitch.console.metrics()
 *   client.c    `luaswitch attach` and `luaswitch ctl`
 *   json.c      the little JSON the clients need: scanning a reply, strings, re-indenting
 *
 * The protocol itself (what a request line means, what a reply holds) is implemented in
 * Lua, in lua/luaswitch/console.lua; the C side frames lines and moves bytes.
 */
#ifndef LS_CLI_H
#define LS_CLI_H

#include <lua.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* The longest control request line, newline excluded (console.MAX_LINE in Lua). */
#define CLI_MAX_LINE 65536

extern const char *cli_progname;

/* ---- main.c ---- */

/* lua_pcall with a traceback message handler. */
int cli_docall(lua_State *L, int narg, int nres);
/* Print the error on top of the stack (if st is not LUA_OK) to stderr; returns st. */
int cli_report(lua_State *L, int st);
/* Push require("luaswitch.console")[name]; returns LUA_OK or the (reported) error. */
int cli_console(lua_State *L, const char *name);

/* ---- serve.c ---- */

typedef struct cli_serve_opts {
  bool interactive;         /* -i: the REPL on stdin */
  const char *control_path; /* --control PATH, or NULL */
  const char *metrics_addr; /* --metrics HOST:PORT or PATH, or NULL */
} cli_serve_opts;

/* Serve until a signal, Ctrl-D at the REPL, or (without -i and --control) no switch left.
 * Returns 0, or 1 if the control socket could not be opened. */
int cli_serve(lua_State *L, const cli_serve_opts *o);
/* Install the handlers that make SIGINT/SIGTERM interrupt running Lua code. */
void cli_signals_init(lua_State *L);
/* cli_docall with SIGINT/SIGTERM unblocked: they interrupt the Lua code ("interrupted!"),
 * as in lua.c. */
int cli_call_interruptible(lua_State *L, int narg, int nres);

/* ---- repl.c ---- */

/* Set up the REPL (banner, libedit, history) and show the first prompt. */
int repl_open(lua_State *L);
/* stdin is readable (or has buffered lines): read, and run a line if one is complete. */
void repl_input(lua_State *L);
/* More input already buffered (so poll should not wait). */
bool repl_buffered(void);
/* Ctrl-C at the prompt: discard the line (and a pending multi-line chunk). */
void repl_interrupt(void);
/* Around output that is not the REPL's (event handlers): take the prompt off, put it back. */
void repl_hide(void);
void repl_show(void);
/* Ctrl-D was typed (or stdin ended). */
bool repl_done(void);
void repl_close(void);

/* ---- control.c ---- */

typedef struct ctl_server ctl_server;
struct pollfd;

/* Listen at path (mode 0600); a stale socket file is replaced, a live one refused. NULL
 * with a message in err on failure. */
ctl_server *ctl_open(const char *path, char *err, size_t errlen);
/* Add the server's fds to pfd (room for n); returns how many were added. */
int ctl_pollfds(ctl_server *s, struct pollfd *pfd, int n);
/* Most fds ctl_pollfds may add. */
int ctl_max_fds(void);
/* Handle what poll reported for the fds ctl_pollfds added, and run at most one request
 * per client. */
void ctl_handle(ctl_server *s, lua_State *L, const struct pollfd *pfd, int n);
/* A client has a complete request waiting: poll should not wait. */
bool ctl_pending(const ctl_server *s);
/* Close every client and the listener, remove the socket file. */
void ctl_close(ctl_server *s);

/* ---- metrics.c ---- */

typedef struct metrics_server metrics_server;

/* Listen at addr: HOST:PORT (TCP; port 0 picks one) or a path (unix socket, 0600). The
 * address is printed on stderr. NULL with a message in err on failure. */
metrics_server *metrics_open(const char *addr, char *err, size_t errlen);
int metrics_max_fds(void);
int metrics_pollfds(metrics_server *s, struct pollfd *pfd, int n);
void metrics_handle(metrics_server *s, lua_State *L, const struct pollfd *pfd, int n);
void metrics_close(metrics_server *s);

/* ---- lineedit.c ---- */

/* Completions of word: a malloc'd NULL-terminated array of malloc'd strings, or NULL. */
typedef char **(*le_completer)(const char *word);

/* Set up line editing on stdin/stdout (libedit when stdin is a terminal), with history in
 * history_path (may be NULL) and completion through complete. */
void le_open(const char *history_path, le_completer complete);
/* Show prompt and start reading a line. */
void le_prompt(const char *prompt);
/* stdin is readable: returns 1 with *line (malloc'd) when a line is complete, 0 when not
 * yet, -1 at end of input (Ctrl-D). */
int le_read(char **line);
/* Lines already read from stdin but not yet returned. */
bool le_buffered(void);
/* Ctrl-C at the prompt: drop the line, start a new one with prompt. */
void le_interrupt(const char *prompt);
void le_hide(void);
void le_show(void);
void le_add_history(const char *line);
void le_close(void);
bool le_is_tty(void);

/* ---- client.c ---- */

int cli_attach(const char *path);
int cli_ctl(const char *path, const char *chunk);

/* ---- ctlline.c ---- */

enum { CTL_MORE = 0, CTL_LINE = 1, CTL_TOO_LONG = -1 };
/* What the bytes a client sent so far, in[0..inlen), start with: CTL_LINE, a request
 * (*linelen bytes at in, without its "\n" or "\r\n"; *used bytes with them), CTL_MORE
 * (no whole line yet), or CTL_TOO_LONG (more than CLI_MAX_LINE bytes before a newline). */
int ctl_line(const char *in, size_t inlen, size_t *linelen, size_t *used);

/* ---- json.c ---- */

typedef struct json_span {
  const char *p; /* NULL when absent */
  size_t len;
} json_span;

/* Find the value of key in the JSON object text s (top level only). */
json_span json_field(const char *s, size_t len, const char *key);
/* Decode a JSON string value (with its quotes) into a malloc'd, NUL-terminated string
 * (*outlen bytes, may hold NULs). NULL if it is not a string. */
char *json_string_decode(json_span v, size_t *outlen);
/* Append s as a JSON string literal to a malloc'd buffer; returns it (NULL: no memory). */
char *json_string_encode(const char *s, size_t len, size_t *outlen);
/* Write the JSON text v to f indented by two spaces per level. */
void json_print_indented(json_span v, FILE *f);
/* A JSON array of strings as a malloc'd NULL-terminated array (NULL if not one). */
char **json_string_array(json_span v);

#endif
