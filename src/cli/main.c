/*
 * main.c — the luaswitch executable: options, the Lua state, the script, teardown.
 *
 * Owns: parsing the command line (and dispatching `attach` and `ctl` to client.c),
 * running a Lua script (or -e chunks) with luaswitch.core preloaded and the Lua modules on
 * package.path, then handing over to cli_serve (serve.c): events dispatched as they
 * arrive, the REPL (-i) and the control socket (--control), until SIGINT or SIGTERM (or
 * Ctrl-D at the REPL); then it closes every switch and port (removing socket files) and
 * exits. While the script itself runs, SIGINT/SIGTERM interrupt it with a Lua error
 * ("interrupted!"), which also ends in a clean teardown.
 */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "common.h"

LUAMOD_API int luaopen_luaswitch_core(lua_State *L);

const char *cli_progname = "luaswitch";

static void usage(FILE *f) {
  fprintf(f,
          "usage: %s [options] [script.lua [args...]]\n"
          "       %s attach PATH\n"
          "       %s ctl PATH 'lua chunk'\n"
          "\n"
          "Runs script.lua (with require \"luaswitch\" available), then keeps the switches it\n"
          "created forwarding and dispatches their events until SIGINT or SIGTERM. Exits at\n"
          "once if the script left no switch open (unless -i, --control or --metrics).\n"
          "\n"
          "options:\n"
          "  -i              interactive: a Lua prompt after the script (line editing, history\n"
          "                  in ~/.luaswitch_history, Tab completion); Ctrl-D leaves\n"
          "  --control PATH  serve the control socket PATH (unix stream, mode 0600, same uid\n"
          "                  or root): one Lua chunk per line, one JSON reply per line\n"
          "  --metrics ADDR  serve Prometheus metrics (GET /metrics) at HOST:PORT (port 0:\n"
          "                  any free one) or at a unix socket path\n"
          "  -e CODE         run the Lua chunk CODE (may be given several times, runs first)\n"
          "  -v, --version   print the version and exit\n"
          "  -h, --help      print this help and exit\n"
          "  --              stop handling options\n"
          "\n"
          "attach PATH       a REPL on the switch serving the control socket PATH\n"
          "ctl PATH CHUNK    run CHUNK there, print its result as JSON; exit status 0 on\n"
          "                  success, 1 on a Lua error, 2 on a connection problem\n",
          cli_progname, cli_progname, cli_progname);
}

/* ---- running Lua ------------------------------------------------------------------------- */

static int msghandler(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (!msg) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) return 1;
    msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

int cli_docall(lua_State *L, int narg, int nres) {
  int base = lua_gettop(L) - narg;
  lua_pushcfunction(L, msghandler);
  lua_insert(L, base);
  int st = lua_pcall(L, narg, nres, base);
  lua_remove(L, base);
  return st;
}

int cli_report(lua_State *L, int st) {
  if (st != LUA_OK) {
    fprintf(stderr, "%s: %s\n", cli_progname, lua_tostring(L, -1));
    fflush(stderr);
    lua_pop(L, 1);
  }
  return st;
}

int cli_console(lua_State *L, const char *name) {
  lua_getglobal(L, "require");
  lua_pushliteral(L, "luaswitch.console");
  int st = cli_docall(L, 1, 1);
  if (st != LUA_OK) return cli_report(L, st);
  lua_getfield(L, -1, name);
  lua_remove(L, -2);
  return LUA_OK;
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
  if (st != LUA_OK) return cli_report(L, st);
  int n = 0;
  for (int i = script + 1; i < argc; i++, n++) lua_pushstring(L, argv[i]);
  return cli_report(L, cli_docall(L, n, 0));
}

static bool is_opt(const char *a, const char *name, const char **value) {
  size_t n = strlen(name);
  if (strncmp(a, name, n) != 0) return false;
  if (a[n] == '\0') {
    *value = NULL;
    return true;
  }
  if (a[n] == '=') {
    *value = a + n + 1;
    return true;
  }
  return false;
}

int main(int argc, char **argv) {
  if (argv[0] && argv[0][0]) {
    const char *s = strrchr(argv[0], '/');
    cli_progname = s ? s + 1 : argv[0];
  }
  if (argc >= 2 && strcmp(argv[1], "attach") == 0) {
    if (argc != 3) {
      fprintf(stderr, "usage: %s attach PATH\n", cli_progname);
      return 2;
    }
    return cli_attach(argv[2]);
  }
  if (argc >= 2 && strcmp(argv[1], "ctl") == 0) {
    if (argc != 4) {
      fprintf(stderr, "usage: %s ctl PATH 'lua chunk'\n", cli_progname);
      return 2;
    }
    return cli_ctl(argv[2], argv[3]);
  }

  cli_serve_opts so = {false, NULL, NULL};
  int script = 0;
  int i = 1;
  for (; i < argc; i++) {
    const char *a = argv[i], *v;
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      usage(stdout);
      return 0;
    } else if (strcmp(a, "-v") == 0 || strcmp(a, "--version") == 0) {
      printf("luaswitch %s (%s)\n", LS_VERSION, LUA_RELEASE);
      return 0;
    } else if (strcmp(a, "-i") == 0) {
      so.interactive = true;
    } else if (is_opt(a, "--control", &v)) {
      if (!v && ++i < argc) v = argv[i];
      if (!v || !*v) {
        fprintf(stderr, "%s: '--control' needs a socket path\n", cli_progname);
        usage(stderr);
        return 2;
      }
      so.control_path = v;
    } else if (is_opt(a, "--metrics", &v)) {
      if (!v && ++i < argc) v = argv[i];
      if (!v || !*v) {
        fprintf(stderr, "%s: '--metrics' needs an address (HOST:PORT or a socket path)\n",
                cli_progname);
        usage(stderr);
        return 2;
      }
      so.metrics_addr = v;
    } else if (strcmp(a, "-e") == 0) {
      if (++i >= argc) {
        fprintf(stderr, "%s: '-e' needs an argument\n", cli_progname);
        usage(stderr);
        return 2;
      }
    } else if (strcmp(a, "--") == 0) {
      i++;
      break;
    } else if (a[0] == '-' && a[1] != '\0') {
      fprintf(stderr, "%s: unknown option '%s'\n", cli_progname, a);
      usage(stderr);
      return 2;
    } else {
      break;
    }
  }
  if (i < argc) script = i;

  lua_State *L = luaL_newstate();
  if (!L) {
    fprintf(stderr, "%s: cannot create a Lua state\n", cli_progname);
    return 1;
  }
  luaL_openlibs(L);
  set_paths(L);
  create_arg_table(L, argv, argc, script);
  cli_signals_init(L);

  int status = LUA_OK;
  for (int j = 1; j < (script ? script : argc) && status == LUA_OK; j++) {
    if (strcmp(argv[j], "-e") == 0) {
      const char *code = argv[++j];
      status = luaL_loadbuffer(L, code, strlen(code), "=(command line)");
      if (status == LUA_OK) status = cli_docall(L, 0, 0);
      cli_report(L, status);
    } else if (strcmp(argv[j], "--control") == 0 || strcmp(argv[j], "--metrics") == 0) {
      j++; /* skip its value */
    } else if (strcmp(argv[j], "--") == 0) {
      break;
    }
  }
  if (status == LUA_OK && script) status = run_script(L, argv, argc, script);

  /* As lua5.4 -i, the REPL comes up even after a failed script: there is something to
   * look at. Without -i a failed script ends here. */
  if (status == LUA_OK || so.interactive) {
    int st = cli_serve(L, &so);
    if (so.interactive)
      status = st ? LUA_ERRRUN : LUA_OK;
    else if (st)
      status = LUA_ERRRUN;
  }

  /* Teardown: close everything (removes socket files), then the state. */
  lua_sethook(L, NULL, 0, 0);
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "loaded");
  if (lua_getfield(L, -1, "luaswitch.core") == LUA_TTABLE) {
    lua_getfield(L, -1, "stop");
    if (lua_pcall(L, 0, 0, 0) != LUA_OK) lua_pop(L, 1);
  }
  lua_pop(L, 3);
  lua_close(L);
  return status == LUA_OK ? 0 : 1;
}
