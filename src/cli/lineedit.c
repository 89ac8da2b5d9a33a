/*
 * lineedit.c — reading lines for the REPL and for attach without blocking the main loop.
 *
 * Owns: libedit (Debian's libedit, through its readline-compatible interface) in callback
 * mode: the caller polls stdin with everything else and calls le_read when it is
 * readable; libedit reads a character and edits the line, and hands over the line when
 * Enter is pressed. History (loaded from and written to a file after every line), Tab
 * completion through a caller-supplied function, and taking the prompt off the screen
 * and back around other output. When stdin is not a terminal there is no editing: bytes
 * are read as they come and split into lines, and no prompt is shown.
 *
 * libedit's own signal handling is off (rl_catch_signals = 0): the main loop reads
 * SIGINT from a signalfd and calls le_interrupt. In callback mode libedit keeps the
 * terminal in its editing mode only while a line is being read; once Enter is pressed the
 * terminal is back in normal mode, so Ctrl-C during a command raises SIGINT as usual.
 */
#include <editline/readline.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

static bool tty;
static bool reading;    /* a prompt is up (libedit's handler installed) */
static char *hist_path; /* NULL: no history file */
static le_completer completer;
static char *done_line;   /* set by the libedit callback */
static bool got_line;     /* the callback ran (done_line NULL: end of input) */
static char *prompt_text; /* the current prompt */

/* stdin without a terminal: what was read and not yet split into lines */
static char *pbuf;
static size_t plen, pcap;
static bool peof;

static void on_line(char *line) {
  got_line = true;
  done_line = line;
}

/* ---- completion ---------------------------------------------------------------------------- */

static char **cands; /* for the generator */
static size_t cand_next;

static char *generator(const char *text, int state) {
  (void)text;
  if (state == 0) cand_next = 0;
  if (!cands || !cands[cand_next]) return NULL;
  return strdup(cands[cand_next++]);
}

static void free_list(char **l) {
  if (!l) return;
  for (size_t i = 0; l[i]; i++) free(l[i]);
  free(l);
}

static char **complete(const char *text, int start, int end) {
  (void)start;
  (void)end;
  rl_attempted_completion_over = 1; /* never fall back to file names */
  if (!completer) return NULL;
  cands = completer(text);
  if (!cands || !cands[0]) {
    free_list(cands);
    cands = NULL;
    return NULL;
  }
  char **m = rl_completion_matches(text, generator);
  free_list(cands);
  cands = NULL;
  return m;
}

/* ---- the interface -------------------------------------------------------------------------- */

bool le_is_tty(void) {
  return tty;
}

void le_open(const char *history_path, le_completer c) {
  tty = isatty(0) && isatty(1);
  completer = c;
  if (!tty) return;
  rl_catch_signals = 0;
  rl_readline_name = "luaswitch";
  rl_attempted_completion_function = complete;
  /* Words for completion run over '.' and ':' (sw:fdb, luaswitch.switch). */
  static char breaks[] = " \t\n\"\\'`@$><=;|&{([,+-*/%^~#}])";
  rl_basic_word_break_characters = breaks;
  rl_completer_word_break_characters = breaks;
  rl_completion_append_character = '\0';
  using_history();
  stifle_history(1000);
  if (history_path) {
    hist_path = strdup(history_path);
    if (hist_path) read_history(hist_path); /* fine if it does not exist yet */
  }
}

void le_prompt(const char *prompt) {
  free(prompt_text);
  prompt_text = strdup(prompt);
  if (!tty) return;
  if (reading) rl_callback_handler_remove();
  rl_callback_handler_install(prompt_text ? prompt_text : "> ", on_line);
  reading = true;
}

static int split_line(char **line) {
  char *nl = plen ? memchr(pbuf, '\n', plen) : NULL;
  if (!nl) {
    if (!peof) return 0;
    if (plen == 0) return -1;
    nl = pbuf + plen; /* a last line without a newline */
  }
  size_t n = (size_t)(nl - pbuf);
  char *l = malloc(n + 1);
  if (!l) return 0;
  memcpy(l, pbuf, n);
  l[n] = '\0';
  size_t used = n < plen ? n + 1 : n;
  memmove(pbuf, pbuf + used, plen - used);
  plen -= used;
  *line = l;
  return 1;
}

int le_read(char **line) {
  *line = NULL;
  if (!tty) {
    int r = split_line(line);
    if (r != 0 || peof) return r;
    if (pcap - plen < 4096) {
      size_t cap = pcap ? pcap * 2 : 8192;
      char *nb = realloc(pbuf, cap);
      if (!nb) return 0;
      pbuf = nb;
      pcap = cap;
    }
    ssize_t n = read(0, pbuf + plen, pcap - plen);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return 0;
    if (n <= 0)
      peof = true;
    else
      plen += (size_t)n;
    return split_line(line);
  }
  if (!reading) return 0;
  got_line = false;
  done_line = NULL;
  rl_callback_read_char();
  if (!got_line) return 0;
  /* libedit has left its editing mode; a new prompt reinstalls the handler. */
  rl_callback_handler_remove();
  reading = false;
  if (!done_line) return -1;
  *line = done_line;
  return 1;
}

bool le_buffered(void) {
  if (tty) return false;
  return (plen && memchr(pbuf, '\n', plen)) || (peof && plen);
}

void le_interrupt(const char *prompt) {
  if (!tty) return;
  fputs("^C\n", stdout);
  fflush(stdout);
  if (reading) rl_callback_handler_remove();
  reading = false;
  le_prompt(prompt);
}

void le_hide(void) {
  if (!tty || !reading) return;
  fputs("\r\033[K", stdout); /* the prompt line, blank; the cursor at its start */
  fflush(stdout);
}

void le_show(void) {
  if (!tty || !reading) return;
  fflush(stdout);
  fflush(stderr);
  rl_forced_update_display(); /* prompt and line again, from where the cursor is */
}

void le_add_history(const char *line) {
  if (!tty || !line[0]) return;
  add_history(line);
  if (hist_path && write_history(hist_path) == 0) chmod(hist_path, 0600); /* as readline */
}

void le_close(void) {
  if (tty && reading) rl_callback_handler_remove();
  reading = false;
  free(hist_path);
  hist_path = NULL;
  free(prompt_text);
  prompt_text = NULL;
  free(pbuf);
  pbuf = NULL;
  plen = pcap = 0;
}
