/*
 * main.c — the luaswitch executable.
 *
 * Owns: running a Lua script (or -e chunks) with luaswitch.core preloaded and the Lua
 * modules on package.path, then serving: while any switch is open, it dispatches events
 * as they arrive, until SIGINT or SIGTERM; then it closes every switch and port (removing
 * socket files) and exits. While the script itself runs, SIGINT/SIGTERM interrupt it
 * with a Lua error ("interrupted!"), which also ends in a clean teardown.
 */
#include <errno.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "common.h"

LUAMOD_API int luaopen_luaswitch_core(lua_State *L);

static const char *progname = "luaswitch";
static lua_State *globalL;

static void usage(FILE *f) {
  fprintf(f,
          "usage: %s [options] [script.lua [args...]]\n"
          "\n"
          "Runs script.lua (with require \"luaswitch\" available), then keeps the switches it\n"
          "created forwarding and dispatches their events until SIGINT or SIGTERM. Exits at\n"
          "once if the script left no switch open.\n"
          "\n"
          "options:\n"
          "  -e CODE        run the Lua chunk CODE (may be given several times, runs first)\n"
          "  -v, --version  print the version and exit\n"
          "  -h, --help     print this help and exit\n"
          "  --             stop handling options\n",
          progname);
}

/* ---- interrupting a running script (as lua.c does) ---------------------------------------- */

static void lstop(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  luaL_error(L, "interrupted!");
}

static void laction(int sig) {
  (void)sig;
  lua_sethook(globalL, lstop, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

static int msghandler(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (!msg) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) return 1;
    msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

static int docall(lua_State *L, int narg, int nres) {
  int base = lua_gettop(L) - narg;
  lua_pushcfunction(L, msghandler);
  lua_insert(L, base);
  int st = lua_pcall(L, narg, nres, base);
  lua_remove(L, base);
  return st;
}

static int report(lua_State *L, int st) {
  if (st != LUA_OK) {
    fprintf(stderr, "%s: %s\n", progname, lua_tostring(L, -1));
    fflush(stderr);
    lua_pop(L, 1);
  }
  return st;
}

/* ---- setup -------------------------------------------------------------------------------- */

static void set_paths(lua_State *L) {
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  const char *dir = LS_INSTALL_LUA_DIR;
  if (n > 0) {
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash) *slash = '\0';
    if (strcmp(exe, LS_BINARY_DIR) == 0) dir = LS_SOURCE_LUA_DIR; /* running from the build */
  }
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "path");
  lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;%s", dir, dir, lua_tostring(L, -1));
  lua_setfield(L, -3, "path");
  lua_pop(L, 1);
  /* luaswitch.core is built in. */
  lua_getfield(L, -1, "preload");
  lua_pushcfunction(L, luaopen_luaswitch_core);
  lua_setfield(L, -2, "luaswitch.core");
  lua_pop(L, 2);
}

static void create_arg_table(lua_State *L, char **argv, int argc, int script) {
  int narg = argc - (script + 1);
  lua_createtable(L, narg, script + 1);
  for (int i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - script);
  }
  lua_setglobal(L, "arg");
}

static int run_script(lua_State *L, char **argv, int argc, int script) {
  int st = luaL_loadfile(L, argv[script]);
  if (st != LUA_OK) return report(L, st);
  int n = 0;
  for (int i = script + 1; i < argc; i++, n++) lua_pushstring(L, argv[i]);
  return report(L, docall(L, n, 0));
}

/* luaswitch loaded and at least one switch open? */
static bool have_switches(lua_State *L) {
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "loaded");
  int t = lua_getfield(L, -1, "luaswitch.core");
  bool yes = false;
  if (t == LUA_TTABLE) {
    lua_getfield(L, -1, "switches");
    if (lua_pcall(L, 0, 1, 0) == LUA_OK) yes = lua_rawlen(L, -1) > 0;
    lua_pop(L, 1);
  }
  lua_pop(L, 3);
  return yes;
}

static int call_luaswitch(lua_State *L, const char *fn, int nres) {
  lua_getglobal(L, "require");
  lua_pushliteral(L, "luaswitch");
  int st = docall(L, 1, 1);
  if (st != LUA_OK) return report(L, st);
  lua_getfield(L, -1, fn);
  lua_remove(L, -2);
  if (strcmp(fn, "dispatch") == 0) {
    lua_pushnumber(L, 0);
    return report(L, docall(L, 1, nres));
  }
  return report(L, docall(L, 0, nres));
}

/* Serve until a signal (or until no switch is left). */
static void serve(lua_State *L) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigprocmask(SIG_BLOCK, &set, NULL);
  int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0) {
    fprintf(stderr, "%s: signalfd: %s\n", progname, strerror(errno));
    return;
  }
  while (have_switches(L)) {
    if (call_luaswitch(L, "fileno", 1) != LUA_OK) break;
    int efd = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
    struct pollfd pfd[2] = {{sfd, POLLIN, 0}, {efd, POLLIN, 0}};
    int n = poll(pfd, 2, 1000);
    if (n < 0 && errno != EINTR) break;
    if (pfd[0].revents & POLLIN) {
      struct signalfd_siginfo si;
      if (read(sfd, &si, sizeof(si)) > 0) break;
    }
    if (pfd[1].revents & POLLIN) {
      if (call_luaswitch(L, "dispatch", 0) != LUA_OK) { /* reported; keep serving */
      }
    }
  }
  close(sfd);
}

int main(int argc, char **argv) {
  if (argv[0] && argv[0][0]) {
    const char *s = strrchr(argv[0], '/');
    progname = s ? s + 1 : argv[0];
  }
  int script = 0;
  int i = 1;
  for (; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      usage(stdout);
      return 0;
    } else if (strcmp(a, "-v") == 0 || strcmp(a, "--version") == 0) {
      printf("luaswitch %s (%s)\n", LS_VERSION, LUA_RELEASE);
      return 0;
    } else if (strcmp(a, "-e") == 0) {
      if (++i >= argc) {
        fprintf(stderr, "%s: '-e' needs an argument\n", progname);
        usage(stderr);
        return 2;
      }
    } else if (strcmp(a, "--") == 0) {
      i++;
      break;
    } else if (a[0] == '-' && a[1] != '\0') {
      fprintf(stderr, "%s: unknown option '%s'\n", progname, a);
      usage(stderr);
      return 2;
    } else {
      break;
    }
  }
  if (i < argc) script = i;

  lua_State *L = luaL_newstate();
  if (!L) {
    fprintf(stderr, "%s: cannot create a Lua state\n", progname);
    return 1;
  }
  globalL = L;
  luaL_openlibs(L);
  set_paths(L);
  create_arg_table(L, argv, argc, script);

  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = laction;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);

  int status = LUA_OK;
  for (int j = 1; j < (script ? script : argc) && status == LUA_OK; j++) {
    if (strcmp(argv[j], "-e") == 0) {
      const char *code = argv[++j];
      status = luaL_loadbuffer(L, code, strlen(code), "=(command line)");
      if (status == LUA_OK) status = docall(L, 0, 0);
      report(L, status);
    } else if (strcmp(argv[j], "--") == 0) {
      break;
    }
  }
  if (status == LUA_OK && script) status = run_script(L, argv, argc, script);

  if (status == LUA_OK) serve(L);

  /* Teardown: close everything (removes socket files), then the state. */
  lua_sethook(L, NULL, 0, 0);
  if (have_switches(L) || status != LUA_OK) {
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "loaded");
    if (lua_getfield(L, -1, "luaswitch.core") == LUA_TTABLE) {
      lua_getfield(L, -1, "stop");
      if (lua_pcall(L, 0, 0, 0) != LUA_OK) lua_pop(L, 1);
    }
    lua_pop(L, 3);
  }
  lua_close(L);
  return status == LUA_OK ? 0 : 1;
}
