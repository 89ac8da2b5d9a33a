/*
 * repl.c — the local REPL of `luaswitch -i`.
 *
 * Owns: the prompt ("> ", and ">> " while a statement is unfinished), the chunk being
 * typed (lines accumulate until they compile, as in lua.c: an "<eof>" syntax error means
 * more is coming), running it through luaswitch.console.repl_line (which prints values
 * and errors), and completion through luaswitch.console.complete. Line editing and
 * history are lineedit.c's; when and how Lua may run is serve.c's.
 */
#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "common.h"

#define PROMPT1 "> "
#define PROMPT2 ">> "

static lua_State *RL;
static char *chunk; /* lines so far of an unfinished statement, or NULL */
static bool done;

/* Completion: console.complete(word) -> list, as a C array. */
static char **complete_local(const char *word) {
  lua_State *L = RL;
  int top = lua_gettop(L);
  char **out = NULL;
  if (cli_console(L, "complete") != LUA_OK) goto end;
  lua_pushstring(L, word);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK || !lua_istable(L, -1)) goto end;
  size_t n = (size_t)lua_rawlen(L, -1);
  out = calloc(n + 1, sizeof(*out));
  if (!out) goto end;
  for (size_t i = 0; i < n; i++) {
    lua_rawgeti(L, -1, (lua_Integer)i + 1);
    const char *s = lua_tostring(L, -1);
    out[i] = strdup(s ? s : "");
    lua_pop(L, 1);
  }
end:
  lua_settop(L, top);
  return out;
}

int repl_open(lua_State *L) {
  RL = L;
  done = false;
  const char *home = getenv("HOME");
  char *hist = NULL;
  if (home && *home) {
    size_t n = strlen(home) + sizeof("/.luaswitch_history");
    hist = malloc(n);
    if (hist) snprintf(hist, n, "%s/.luaswitch_history", home);
  }
  le_open(hist, complete_local);
  free(hist);
  if (le_is_tty()) {
    printf("luaswitch %s (%s): Tab completes, stats() counts, Ctrl-D leaves\n", LS_VERSION,
           LUA_RELEASE);
    fflush(stdout);
  }
  le_prompt(PROMPT1);
  return 0;
}

bool repl_buffered(void) {
  return le_buffered();
}
bool repl_done(void) {
  return done;
}

static void run(lua_State *L, const char *src) {
  if (cli_console(L, "repl_line") != LUA_OK) return;
  lua_pushstring(L, src);
  int st = cli_call_interruptible(L, 1, 1);
  if (st != LUA_OK) {
    /* interrupted while printing, or a fault in the console itself */
    fflush(stdout);
    fprintf(stderr, "%s\n", lua_tostring(L, -1));
    fflush(stderr);
    lua_pop(L, 1);
    free(chunk);
    chunk = NULL;
    return;
  }
  const char *r = lua_tostring(L, -1);
  bool more = r && strcmp(r, "incomplete") == 0;
  lua_pop(L, 1);
  if (!more) {
    free(chunk);
    chunk = NULL;
  }
}

void repl_input(lua_State *L) {
  char *line;
  int r = le_read(&line);
  if (r == 0) return;
  if (r < 0) {
    if (le_is_tty()) fputs("\n", stdout);
    fflush(stdout);
    done = true;
    return;
  }
  le_add_history(line);
  if (chunk) {
    size_t a = strlen(chunk), b = strlen(line);
    char *c = realloc(chunk, a + b + 2);
    if (!c) {
      free(line);
      return;
    }
    c[a] = '\n';
    memcpy(c + a + 1, line, b + 1);
    chunk = c;
    free(line);
  } else {
    chunk = line;
  }
  run(L, chunk);
  if (!done) le_prompt(chunk ? PROMPT2 : PROMPT1);
}

void repl_interrupt(void) {
  free(chunk);
  chunk = NULL;
  le_interrupt(PROMPT1);
}

void repl_hide(void) {
  le_hide();
}
void repl_show(void) {
  le_show();
}

void repl_close(void) {
  le_close();
  free(chunk);
  chunk = NULL;
}
