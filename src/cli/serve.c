/*
 * serve.c — the executable's main loop once the script has run, and its signals.
 *
 * Owns: one poll() over the signal fd (SIGINT, SIGTERM), luaswitch.fileno() (events to
 * dispatch), stdin when the REPL runs, the control socket's listener and clients, and the
 * metrics listener and its connections. The
 * data plane forwards on its own thread meanwhile; this thread runs Lua only between
 * polls: event handlers (luaswitch.dispatch), one REPL line, one request per control
 * client. Events are dispatched while the prompt waits, with the prompt taken off the
 * screen around the handlers' output.
 *
 * Signals: while this loop waits, SIGINT and SIGTERM are blocked and read from a signalfd
 * (SIGINT clears the REPL's line, or ends serving without -i; SIGTERM ends serving). While
 * Lua code runs on behalf of the REPL or a control client, they are unblocked and
 * interrupt it as in lua.c: the handler sets a hook that raises "interrupted!". SIGTERM
 * then ends serving as soon as that code has returned. Event handlers are not
 * interrupted this way (their events would be lost): their instruction budget stops them.
 */
#include <errno.h>
#include <lauxlib.h>
#include <lua.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "cli.h"

static lua_State *globalL;
static volatile sig_atomic_t got_signal;

/* ---- interrupting running Lua code (as lua.c does) ----------------------------------------- */

static void lstop(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  luaL_error(L, "interrupted!");
}

static void laction(int sig) {
  got_signal = sig;
  lua_sethook(globalL, lstop, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

void cli_signals_init(lua_State *L) {
  globalL = L;
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = laction;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
}

static sigset_t serve_set; /* SIGINT, SIGTERM */

int cli_call_interruptible(lua_State *L, int narg, int nres) {
  sigset_t old;
  sigprocmask(SIG_UNBLOCK, &serve_set, &old);
  int st = cli_docall(L, narg, nres);
  sigprocmask(SIG_SETMASK, &old, NULL);
  /* A signal that came after the code returned must not interrupt the next call. */
  if (lua_gethook(L) == lstop) lua_sethook(L, NULL, 0, 0);
  return st;
}

/* ---- luaswitch calls ------------------------------------------------------------------------ */

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

/* Push require("luaswitch")[fn]. */
static int get_luaswitch(lua_State *L, const char *fn) {
  lua_getglobal(L, "require");
  lua_pushliteral(L, "luaswitch");
  int st = cli_docall(L, 1, 1);
  if (st != LUA_OK) return cli_report(L, st);
  lua_getfield(L, -1, fn);
  lua_remove(L, -2);
  return LUA_OK;
}

static int event_fd(lua_State *L) {
  if (get_luaswitch(L, "fileno") != LUA_OK) return -1;
  if (cli_report(L, cli_docall(L, 0, 1)) != LUA_OK) return -1;
  int fd = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  return fd;
}

/* Not interruptible: the events taken from the ring would be lost. A runaway handler is
 * stopped by its budget (luaswitch.handler_budget); a signal waits in the signalfd. */
static void dispatch(lua_State *L) {
  if (get_luaswitch(L, "dispatch") != LUA_OK) return;
  lua_pushinteger(L, 0);
  cli_report(L, cli_docall(L, 1, 0)); /* reported; keep serving */
}

/* ---- the loop -------------------------------------------------------------------------------- */

int cli_serve(lua_State *L, const cli_serve_opts *o) {
  sigemptyset(&serve_set);
  sigaddset(&serve_set, SIGINT);
  sigaddset(&serve_set, SIGTERM);
  sigprocmask(SIG_BLOCK, &serve_set, NULL);
  int sfd = signalfd(-1, &serve_set, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0) {
    fprintf(stderr, "%s: signalfd: %s\n", cli_progname, strerror(errno));
    return 1;
  }

  ctl_server *ctl = NULL;
  if (o->control_path) {
    char err[512];
    ctl = ctl_open(o->control_path, err, sizeof(err));
    if (!ctl) {
      fprintf(stderr, "%s: --control %s: %s\n", cli_progname, o->control_path, err);
      close(sfd);
      return 1;
    }
  }
  metrics_server *met = NULL;
  if (o->metrics_addr) {
    char err[512];
    met = metrics_open(o->metrics_addr, err, sizeof(err));
    if (!met) {
      fprintf(stderr, "%s: --metrics %s: %s\n", cli_progname, o->metrics_addr, err);
      if (ctl) ctl_close(ctl);
      close(sfd);
      return 1;
    }
  }
  int maxfds = 3 + (ctl ? ctl_max_fds() : 0) + (met ? metrics_max_fds() : 0);
  struct pollfd *pfd = calloc((size_t)maxfds, sizeof(*pfd));
  if (!pfd || (o->interactive && repl_open(L) != 0)) {
    if (!pfd) fprintf(stderr, "%s: out of memory\n", cli_progname);
    free(pfd);
    if (ctl) ctl_close(ctl);
    if (met) metrics_close(met);
    close(sfd);
    return 1;
  }

  got_signal = 0;
  for (;;) {
    if (o->interactive && repl_done()) break;
    if (!o->interactive && !ctl && !met && !have_switches(L)) break;
    if (got_signal == SIGTERM || (got_signal == SIGINT && !o->interactive)) break;
    got_signal = 0;

    int efd = event_fd(L);
    int n = 0;
    pfd[n++] = (struct pollfd){sfd, POLLIN, 0};
    pfd[n++] = (struct pollfd){efd, POLLIN, 0};
    int stdin_at = -1;
    if (o->interactive) {
      stdin_at = n;
      pfd[n++] = (struct pollfd){0, POLLIN, 0};
    }
    int ctl_at = n;
    if (ctl) n += ctl_pollfds(ctl, pfd + n, maxfds - n);
    int met_at = n;
    if (met) n += metrics_pollfds(met, pfd + n, maxfds - n);
    bool busy = (ctl && ctl_pending(ctl)) || (o->interactive && repl_buffered());

    int r = poll(pfd, (nfds_t)n, busy ? 0 : 1000);
    if (r < 0 && errno != EINTR) {
      fprintf(stderr, "%s: poll: %s\n", cli_progname, strerror(errno));
      break;
    }
    if (r < 0) continue;

    if (pfd[0].revents & POLLIN) {
      struct signalfd_siginfo si;
      if (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (si.ssi_signo == SIGINT && o->interactive) {
          repl_interrupt();
        } else {
          break;
        }
      }
    }
    if (efd >= 0 && (pfd[1].revents & POLLIN)) {
      if (o->interactive) repl_hide();
      dispatch(L);
      if (o->interactive) repl_show();
    }
    if (ctl) ctl_handle(ctl, L, pfd + ctl_at, met_at - ctl_at);
    if (met) metrics_handle(met, L, pfd + met_at, n - met_at);
    if (stdin_at >= 0 &&
        ((pfd[stdin_at].revents & (POLLIN | POLLHUP | POLLERR)) || repl_buffered()))
      repl_input(L);
  }

  free(pfd);
  if (o->interactive) repl_close();
  if (ctl) ctl_close(ctl);
  if (met) metrics_close(met);
  close(sfd);
  return 0;
}
