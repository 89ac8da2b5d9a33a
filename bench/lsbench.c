/*
 * lsbench.c — forwarding benchmark: luaswitch against a bare forwarder (and vde_switch).
 *
 * Owns: the load generator, the sink, the reference forwarder, and the harness that
 * runs them against each subject in one invocation and reports medians and ratios.
 *
 *   gen (unix dgram, bound gen.sock) -> subject port a ... port b -> sink (sink.sock)
 *
 * Subjects:
 *  - bare:      `lsbench fwd DIR` — recvmmsg -> sendmmsg, blocking, no logic at all. The
 *               reference: what the kernel's unix sockets cost per frame.
 *  - luaswitch: the luaswitch executable running bench/switch.lua (two unix ports with
 *               fixed peers), unicast after learning.
 *  - vde_switch: Debian's vde2 switch, the generator and sink plugged in with libvdeplug
 *               (when both are available).
 * For each frame size and subject, several runs; per run the generator sends N frames as
 * fast as the subject takes them (waiting, not dropping, on EAGAIN), the sink counts
 * what arrives. Reported: frames/s received (first to last frame at the sink), loss, and
 * the subject process's CPU time per forwarded frame, read from
 * /proc/PID/task/T/schedstat before and after (all threads). Medians over the runs;
 * ratios against bare measured in the same invocation (these machines are noisy).
 *
 * --policy: what policy costs. The subjects are luaswitch in the modes of
 * bench/switch.lua — plain (the reference), rules16 (16 ingress rules per port, the
 * frames run through all of them), trunk_access (a tag pushed on every frame),
 * access_trunk (a tag popped from every frame), impair0 (every impairment set to zero) —
 * and the runs are interleaved (one run of each subject in turn, each round starting
 * with the next subject), after one uncounted warm-up run, so that a machine slowing
 * down or speeding up during the invocation moves every subject alike. More, shorter
 * runs by default (15 of 200000 frames): the differences are a few percent. Sizes are
 * of the untagged frame; on the trunk side a frame is 4 bytes longer (the sink checks
 * that every frame arrives with the length it should have).
 *
 * Other processes are the main source of noise on a small machine. Each run measures the
 * CPU time the rest of the machine used meanwhile (/proc/stat, less the subject's and
 * lsbench's own); --policy makes a run again, up to twice, when that exceeded a tenth of
 * a CPU, and keeps the quietest attempt. The figure is printed at the end (and per run
 * with --each).
 *
 * Usage: lsbench [--policy] [--frames N] [--runs R] [--sizes 64,1500] [--unpinned]
 *                [--only NAME] [--each]
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "traffic.h"

#ifdef LS_HAVE_VDEPLUG
#include <libvdeplug.h>
#include <pthread.h>
#endif

#define MAXRUNS 32
#define MAXSUB 8
#define QUIET_LOAD 0.1 /* CPUs used by other processes during a run: more disturbs it */
#define BATCH 64

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void die(const char *what) {
  fprintf(stderr, "lsbench: %s: %s\n", what, strerror(errno));
  exit(1);
}

static struct sockaddr_un addr(const char *dir, const char *name, socklen_t *len) {
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof(sa));
  sa.sun_family = AF_UNIX;
  snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", dir, name);
  *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(sa.sun_path) + 1);
  return sa;
}

static int bound_socket(const char *dir, const char *name) {
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  socklen_t len;
  struct sockaddr_un sa = addr(dir, name, &len);
  unlink(sa.sun_path);
  if (bind(fd, (struct sockaddr *)&sa, len) < 0) die("bind");
  return fd;
}

/* Has child pid exited (reaped here, reported on stderr)? */
static bool child_exited(pid_t pid, const char *name) {
  int st;
  if (pid <= 0 || waitpid(pid, &st, WNOHANG) != pid) return false;
  if (WIFEXITED(st))
    fprintf(stderr, "lsbench: %s exited with status %d during setup%s\n", name, WEXITSTATUS(st),
            getenv("LSBENCH_VERBOSE") ? "" : " (LSBENCH_VERBOSE=1 shows its output)");
  else
    fprintf(stderr, "lsbench: %s died of signal %d during setup\n", name, WTERMSIG(st));
  return true;
}

/* connect to dir/name, waiting up to 5 s for it to appear (and for child pid, if any, to
 * stay alive): 0, or -1 when the child exited */
static int connect_to(int fd, const char *dir, const char *name, pid_t pid, const char *who) {
  socklen_t len;
  struct sockaddr_un sa = addr(dir, name, &len);
  uint64_t deadline = now_ns() + 5000000000ULL;
  while (connect(fd, (struct sockaddr *)&sa, len) < 0) {
    if (child_exited(pid, who)) return -1;
    if (now_ns() > deadline) die(sa.sun_path);
    usleep(2000);
  }
  return 0;
}

static void pin(pid_t pid, int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  sched_setaffinity(pid, sizeof(set), &set);
}

/* ---- the bare forwarder ------------------------------------------------------------------- */

static _Noreturn void bare_forwarder(const char *dir) {
  int a = bound_socket(dir, "a.sock");
  int b = bound_socket(dir, "b.sock");
  connect_to(a, dir, "gen.sock", 0, NULL);
  connect_to(b, dir, "sink.sock", 0, NULL);
  static uint8_t bufs[BATCH][2048];
  struct mmsghdr msgs[BATCH];
  struct iovec iov[BATCH];
  for (;;) {
    for (int i = 0; i < BATCH; i++) {
      iov[i].iov_base = bufs[i];
      iov[i].iov_len = sizeof(bufs[i]);
      memset(&msgs[i].msg_hdr, 0, sizeof(msgs[i].msg_hdr));
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    int n = recvmmsg(a, msgs, BATCH, MSG_WAITFORONE, NULL);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("recvmmsg");
    }
    for (int i = 0; i < n; i++) iov[i].iov_len = msgs[i].msg_len;
    int off = 0;
    while (off < n) {
      int r = sendmmsg(b, msgs + off, (unsigned)(n - off), 0);
      if (r < 0) {
        if (errno == EINTR) continue;
        die("sendmmsg");
      }
      off += r;
    }
  }
}

/* ---- subjects ------------------------------------------------------------------------------ */

typedef struct subject {
  const char *name;
  pid_t pid;
  bool vde;
  const char *mode; /* luaswitch: bench/switch.lua's mode (NULL: plain) */
  bool gen_tagged;  /* the generator's port is a trunk: it sends frames tagged with VLAN 10 */
  bool sink_tagged; /* the sink's port is a trunk: it announces itself tagged */
} subject;

static char self_dir[4096];

static int child_stdin = -1; /* vde_switch exits on EOF on stdin: give it a pipe we hold */

static pid_t start_child(char *const argv[], int cpu) {
  int fds[2] = {-1, -1};
  if (pipe(fds) < 0) die("pipe");
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    int devnull = open("/dev/null", O_RDWR);
    dup2(fds[0], 0);
    close(fds[1]);
    if (!getenv("LSBENCH_VERBOSE")) {
      dup2(devnull, 1);
      dup2(devnull, 2);
    }
    if (cpu >= 0) pin(0, cpu);
    execvp(argv[0], argv);
    _exit(127);
  }
  close(fds[0]);
  child_stdin = fds[1];
  return pid;
}

static uint64_t process_cpu_ns(pid_t pid) {
  char path[64];
  snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
  DIR *d = opendir(path);
  if (!d) return 0;
  uint64_t total = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    char p[384];
    snprintf(p, sizeof(p), "/proc/%d/task/%.255s/schedstat", (int)pid, e->d_name);
    FILE *f = fopen(p, "r");
    if (!f) continue;
    unsigned long long ns = 0;
    if (fscanf(f, "%llu", &ns) == 1) total += ns;
    fclose(f);
  }
  closedir(d);
  return total;
}

static void stop_child(pid_t pid) {
  if (child_stdin >= 0) close(child_stdin);
  child_stdin = -1;
  kill(pid, SIGTERM);
  for (int i = 0; i < 200; i++) {
    if (waitpid(pid, NULL, WNOHANG) == pid) return;
    usleep(10000);
  }
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
}

/* ---- one run ----------------------------------------------------------------------------------
 */

typedef struct result {
  double rate;   /* frames/s at the sink */
  double loss;   /* fraction */
  double cpu_ns; /* subject CPU per forwarded frame */
  double other;  /* CPUs busy with anything but the subject and lsbench during the run */
} result;

/* CPU time the whole machine spent busy (user, nice, system, irq, softirq, and steal: the
 * hypervisor running someone else), from /proc/stat (clock ticks: 10 ms resolution). */
static uint64_t machine_busy_ns(void) {
  FILE *f = fopen("/proc/stat", "r");
  if (!f) return 0;
  unsigned long long v[8] = {0};
  int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                 &v[4], &v[5], &v[6], &v[7]);
  fclose(f);
  if (n < 8) return 0;
  uint64_t ticks = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
  return ticks * (1000000000ULL / (uint64_t)sysconf(_SC_CLK_TCK));
}

/* A run's disturbance: others' CPU time, in CPUs, over [t0, t1]. */
typedef struct load_mark {
  uint64_t t, busy, self, subject;
} load_mark;

/* lsbench's own CPU time, threads that have ended included */
static uint64_t self_cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static load_mark load_now(pid_t pid) {
  load_mark m = {now_ns(), machine_busy_ns(), self_cpu_ns(), process_cpu_ns(pid)};
  return m;
}

static double other_load(load_mark a, load_mark b) {
  double others =
      (double)(b.busy - a.busy) - (double)(b.self - a.self) - (double)(b.subject - a.subject);
  return b.t > a.t && others > 0 ? others / (double)(b.t - a.t) : 0;
}

#define BENCH_VID 10

/* A frame of size bytes from 02:00:00:00:00:src to 02:00:00:00:00:dst, ethertype 0x88b5,
 * zero payload; tagged: the same frame with an 802.1Q tag (VLAN 10) inserted, size + 4
 * bytes. Returns its length. */
static size_t make_frame(uint8_t *f, size_t size, int dst, int src, bool tagged) {
  size_t off = tagged ? 4 : 0;
  memset(f, 0, size + off);
  const uint8_t d[6] = {2, 0, 0, 0, 0, (uint8_t)dst}, s[6] = {2, 0, 0, 0, 0, (uint8_t)src};
  memcpy(f, d, 6);
  memcpy(f + 6, s, 6);
  if (tagged) {
    f[12] = 0x81;
    f[13] = 0x00;
    f[14] = BENCH_VID >> 8;
    f[15] = BENCH_VID & 0xff;
  }
  f[12 + off] = 0x88;
  f[13 + off] = 0xb5;
  return size + off;
}

#ifdef LS_HAVE_VDEPLUG
typedef struct vde_job {
  VDECONN *conn;
  uint8_t frame[2048];
  size_t len;
  uint64_t count;
  _Atomic uint64_t done;
  _Atomic bool stop;
  uint64_t first, last;
  pthread_t th;
} vde_job;

/* vde_recv ignores MSG_DONTWAIT: poll first */
static int vde_ready(VDECONN *c, int ms) {
  struct pollfd p = {vde_datafd(c), POLLIN, 0};
  return poll(&p, 1, ms) > 0;
}

static void vde_drain(VDECONN *c) {
  uint8_t junk[2048];
  while (vde_ready(c, 0)) vde_recv(c, junk, sizeof(junk), 0);
}

static void *vde_gen(void *arg) {
  vde_job *j = arg;
  int fd = vde_datafd(j->conn);
  for (uint64_t i = 0; i < j->count && !j->stop;) {
    ssize_t r = vde_send(j->conn, j->frame, j->len, MSG_DONTWAIT);
    if (r >= 0) {
      i++;
      j->done = i;
      continue;
    }
    struct pollfd p = {fd, POLLOUT, 0};
    poll(&p, 1, 1);
  }
  return NULL;
}

static void *vde_sink(void *arg) {
  vde_job *j = arg;
  int fd = vde_datafd(j->conn);
  uint8_t buf[2048];
  (void)fd;
  while (!j->stop) {
    if (!vde_ready(j->conn, 20)) continue;
    while (vde_ready(j->conn, 0) && vde_recv(j->conn, buf, sizeof(buf), 0) > 0) {
      uint64_t t = now_ns();
      if (!j->first) j->first = t;
      j->last = t;
      j->done++;
    }
  }
  return NULL;
}
#endif

static int run_once(const subject *sj, const char *dir, size_t size, uint64_t n, bool pinned,
                    const char *luaswitch_bin, result *out) {
  subject s = *sj;
  uint8_t frame[2048], learn_sink[2048], learn_gen[2048];
  size_t flen = make_frame(frame, size, 2, 1, s.gen_tagged); /* gen (1) -> sink (2) */
  /* learning: broadcasts from the sink (2) and from the generator (1) */
  size_t lk = make_frame(learn_sink, 60, 0xff, 2, s.sink_tagged);
  size_t lg = make_frame(learn_gen, 60, 0xff, 1, s.gen_tagged);
  memset(learn_sink, 0xff, 6);
  memset(learn_gen, 0xff, 6);
  int cpu_switch = pinned ? 0 : -1;
  if (pinned) pin(0, 1);
#ifdef LS_HAVE_VDEPLUG
  if (s.vde) {
    char ctl[512];
    snprintf(ctl, sizeof(ctl), "%s/vde.ctl", dir);
    char *argv[] = {"vde_switch", "-s", ctl, NULL};
    s.pid = start_child(argv, cpu_switch);
    char url[600];
    snprintf(url, sizeof(url), "vde://%s", ctl);
    VDECONN *g = NULL, *k = NULL;
    for (int i = 0; i < 500 && !(g && k); i++) {
      if (!g) g = vde_open(url, "lsbench-gen", NULL);
      if (!k) k = vde_open(url, "lsbench-sink", NULL);
      if (!(g && k)) usleep(10000);
    }
    if (!g || !k) {
      fprintf(stderr, "lsbench: cannot plug into vde_switch\n");
      stop_child(s.pid);
      return -1;
    }
    /* learning: the sink announces itself, the generator too */
    vde_send(k, learn_sink, lk, 0);
    vde_send(g, learn_gen, lg, 0);
    usleep(50000);
    vde_drain(k);
    vde_drain(g);
    vde_job gj = {.conn = g, .len = flen, .count = n}, kj = {.conn = k};
    memcpy(gj.frame, frame, flen);
    load_mark m0 = load_now(s.pid);
    uint64_t cpu0 = m0.subject;
    pthread_create(&kj.th, NULL, vde_sink, &kj);
    pthread_create(&gj.th, NULL, vde_gen, &gj);
    pthread_join(gj.th, NULL);
    uint64_t seen = 0, quiet = now_ns();
    while (kj.done < n && now_ns() - quiet < 300000000ULL) {
      if (kj.done != seen) seen = kj.done, quiet = now_ns();
      usleep(1000);
    }
    load_mark m1 = load_now(s.pid);
    uint64_t cpu1 = m1.subject;
    out->other = other_load(m0, m1);
    kj.stop = true;
    pthread_join(kj.th, NULL);
    out->loss = 1.0 - (double)kj.done / (double)n;
    out->rate = kj.last > kj.first ? (double)kj.done * 1e9 / (double)(kj.last - kj.first) : 0;
    out->cpu_ns = kj.done ? (double)(cpu1 - cpu0) / (double)kj.done : 0;
    vde_close(g);
    vde_close(k);
    stop_child(s.pid);
    return 0;
  }
#endif
  int gen = bound_socket(dir, "gen.sock");
  int sink = bound_socket(dir, "sink.sock");
  if (strcmp(s.name, "bare") == 0) {
    char self[4200];
    snprintf(self, sizeof(self), "%s/lsbench", self_dir);
    char *argv[] = {self, "fwd", (char *)dir, NULL};
    s.pid = start_child(argv, cpu_switch);
  } else {
    char script[4200];
    snprintf(script, sizeof(script), "%s/bench/switch.lua", LS_SOURCE_DIR);
    char *argv[] = {(char *)luaswitch_bin, script, (char *)dir, (char *)s.mode, NULL};
    s.pid = start_child(argv, cpu_switch);
  }
  bool exited = connect_to(gen, dir, "a.sock", s.pid, s.name) < 0 ||
                connect_to(sink, dir, "b.sock", s.pid, s.name) < 0;
  /* learning (harmless for bare): the sink announces itself, then the generator */
  uint64_t deadline = now_ns() + 5000000000ULL;
  uint8_t junk[2048];
  bool learned = false;
  while (!exited && !learned && now_ns() < deadline) {
    send(sink, learn_sink, lk, MSG_DONTWAIT);
    usleep(20000);
    send(gen, learn_gen, lg, MSG_DONTWAIT);
    usleep(20000);
    /* the subject forwarded the generator's broadcast to the sink: it is up */
    struct pollfd p = {sink, POLLIN, 0};
    learned = strcmp(s.name, "bare") == 0 || poll(&p, 1, 100) > 0;
    exited = child_exited(s.pid, s.name);
  }
  while (recv(sink, junk, sizeof(junk), MSG_DONTWAIT) > 0) {
  }
  while (recv(gen, junk, sizeof(junk), MSG_DONTWAIT) > 0) {
  }
  if (!learned || exited) {
    if (!exited) {
      fprintf(stderr, "lsbench: %s never forwarded anything\n", s.name);
      stop_child(s.pid);
    }
    close(gen);
    close(sink);
    return -1;
  }

  const uint8_t *frames[1] = {frame};
  size_t lens[1] = {flen};
  ls_traffic_opts so = {0}, go = {.frames = frames, .lens = lens, .nframes = 1, .count = n};
  int err;
  load_mark m0 = load_now(s.pid);
  uint64_t cpu0 = m0.subject;
  ls_traffic *k = ls_traffic_sink(sink, &so, &err);
  ls_traffic *g = ls_traffic_send(gen, &go, &err);
  ls_traffic_result gr, kr;
  ls_traffic_join(g, &gr);
  uint64_t seen = 0, quiet = now_ns();
  while (ls_traffic_progress(k) < gr.frames && now_ns() - quiet < 300000000ULL) {
    uint64_t p = ls_traffic_progress(k);
    if (p != seen) seen = p, quiet = now_ns();
    usleep(1000);
  }
  load_mark m1 = load_now(s.pid);
  uint64_t cpu1 = m1.subject;
  out->other = other_load(m0, m1);
  ls_traffic_stop(k);
  ls_traffic_join(k, &kr);
  ls_traffic_free(g);
  ls_traffic_free(k);
  /* every frame arrived as it should leave the subject: tagged on a trunk, else not */
  uint64_t want = size + (s.sink_tagged ? 4 : 0);
  if (kr.bytes != kr.frames * want) {
    fprintf(stderr, "lsbench: %s: the sink received %llu frames, %llu bytes: not %llu bytes each\n",
            s.name, (unsigned long long)kr.frames, (unsigned long long)kr.bytes,
            (unsigned long long)want);
    stop_child(s.pid);
    close(gen);
    close(sink);
    return -1;
  }
  out->loss = gr.frames ? 1.0 - (double)kr.frames / (double)gr.frames : 1;
  out->rate =
      kr.last_ns > kr.first_ns ? (double)kr.frames * 1e9 / (double)(kr.last_ns - kr.first_ns) : 0;
  out->cpu_ns = kr.frames ? (double)(cpu1 - cpu0) / (double)kr.frames : 0;
  stop_child(s.pid);
  close(gen);
  close(sink);
  return 0;
}

static int run_in_tmpdir(const subject *sj, size_t size, uint64_t n, bool pinned,
                         const char *luaswitch_bin, result *out) {
  char dir[] = "/tmp/lsbench.XXXXXX";
  if (!mkdtemp(dir)) die("mkdtemp");
  int r = run_once(sj, dir, size, n, pinned, luaswitch_bin, out);
  char cmd[600];
  snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
  if (system(cmd) != 0) fprintf(stderr, "lsbench: could not remove %s\n", dir);
  return r;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof(*v), cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

typedef struct reference {
  double cpu, rate; /* medians of the first subject */
} reference;

/* A subject's row: medians, and ratios against the reference (set by the reference's). */
static void print_row(size_t size, int width, const subject *sj, bool is_ref, double *rate,
                      double *loss, double *cpu, int ok, reference *ref) {
  if (!ok) {
    printf("%-5zu %-*s %14s\n", size, width, sj->name, "failed");
    fflush(stdout);
    return;
  }
  double mr = median(rate, ok), ml = median(loss, ok), mc = median(cpu, ok);
  if (is_ref) ref->cpu = mc, ref->rate = mr;
  printf("%-5zu %-*s %14.0f %7.2f%% %12.0f %9.2f %9.2f\n", size, width, sj->name, mr, ml * 100, mc,
         ref->cpu > 0 ? mc / ref->cpu : 0, ref->rate > 0 ? mr / ref->rate : 0);
  fflush(stdout);
}

static bool have_vde_switch(void) {
#ifdef LS_HAVE_VDEPLUG
  return system("command -v vde_switch >/dev/null 2>&1") == 0;
#else
  return false;
#endif
}

static void usage(void) {
  fprintf(stderr, "usage: lsbench [--frames N] [--runs R] [--sizes 64,1500] [--unpinned]\n"
                  "               [--only bare|luaswitch|vde_switch] [--luaswitch PATH] [--each]\n"
                  "       lsbench --policy [options]   (luaswitch plain against rules16,\n"
                  "               trunk_access, access_trunk, impair0; --only one of these;\n"
                  "               by default 15 runs of 200000 frames)\n"
                  "       lsbench fwd DIR   (the bare forwarder, run by the harness)\n");
}

int main(int argc, char **argv) {
  char self[4096];
  ssize_t sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (sl > 0) {
    self[sl] = '\0';
    char *slash = strrchr(self, '/');
    if (slash) *slash = '\0';
    snprintf(self_dir, sizeof(self_dir), "%s", self);
  }
  if (argc == 3 && strcmp(argv[1], "fwd") == 0) bare_forwarder(argv[2]);

  uint64_t n = 500000;
  int runs = 5;
  bool pinned = true, policy = false, each = false, n_set = false, runs_set = false;
  const char *only = NULL;
  char sizes_arg[128] = "64,1500";
  char luaswitch_bin[4200];
  snprintf(luaswitch_bin, sizeof(luaswitch_bin), "%s/luaswitch", self_dir);
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--frames") && i + 1 < argc)
      n = strtoull(argv[++i], NULL, 10), n_set = true;
    else if (!strcmp(argv[i], "--runs") && i + 1 < argc)
      runs = atoi(argv[++i]), runs_set = true;
    else if (!strcmp(argv[i], "--sizes") && i + 1 < argc)
      snprintf(sizes_arg, sizeof(sizes_arg), "%s", argv[++i]);
    else if (!strcmp(argv[i], "--unpinned"))
      pinned = false;
    else if (!strcmp(argv[i], "--policy"))
      policy = true;
    else if (!strcmp(argv[i], "--each"))
      each = true;
    else if (!strcmp(argv[i], "--only") && i + 1 < argc)
      only = argv[++i];
    else if (!strcmp(argv[i], "--luaswitch") && i + 1 < argc)
      snprintf(luaswitch_bin, sizeof(luaswitch_bin), "%s", argv[++i]);
    else {
      usage();
      return 2;
    }
  }
  /* --policy measures differences of a few percent: more, shorter runs by default */
  if (policy && !n_set) n = 200000;
  if (policy && !runs_set) runs = 15;
  if (runs < 1 || runs > MAXRUNS || n == 0) {
    usage();
    return 2;
  }
  if (pinned && sysconf(_SC_NPROCESSORS_ONLN) < 2) pinned = false;
  signal(SIGPIPE, SIG_IGN);

  /* The first subject is the reference the others' ratios are against. */
  subject forwarding[] = {{"bare", 0, false, NULL, false, false},
                          {"luaswitch", 0, false, NULL, false, false},
                          {"vde_switch", 0, true, NULL, false, false}};
  subject policies[] = {{"plain", 0, false, "plain", false, false},
                        {"rules16", 0, false, "rules16", false, false},
                        {"trunk_access", 0, false, "trunk_access", false, true},
                        {"access_trunk", 0, false, "access_trunk", true, false},
                        {"impair0", 0, false, "impair0", false, false}};
  subject *subjects = policy ? policies : forwarding;
  int nsub = policy ? (int)(sizeof(policies) / sizeof(policies[0])) : have_vde_switch() ? 3 : 2;
  for (int si = 0; only && si <= nsub; si++) {
    if (si == nsub) {
      fprintf(stderr, "lsbench: --only: no subject '%s' here\n", only);
      return 2;
    }
    if (!strcmp(only, subjects[si].name)) break;
  }
  /* --policy interleaves the runs (plain, rules16, ..., plain, rules16, ...): the ratios
   * then compare runs made under the same conditions. */
  bool interleave = policy;
  int width = policy ? 12 : 11;
  printf("lsbench%s: %llu frames per run, %d runs%s, %s\n", policy ? " --policy" : "",
         (unsigned long long)n, runs, interleave ? " interleaved" : "",
         pinned ? "subject pinned to CPU 0, generator and sink to CPU 1" : "unpinned");
  printf("%-5s %-*s %14s %8s %12s %9s %9s\n", "size", width, "subject", "frames/s", "loss",
         "CPU ns/frame", "CPU x", "rate x");
  fflush(stdout);
  double other[MAXSUB * MAXRUNS * 16];
  int nother = 0;
  char *save = NULL;
  for (char *tok = strtok_r(sizes_arg, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    size_t size = (size_t)atoi(tok);
    if (size < 60 || size > 2000) {
      fprintf(stderr, "lsbench: frame size %zu out of range (60..2000)\n", size);
      return 2;
    }
    reference ref = {0, 0};
    double rate[MAXSUB][MAXRUNS], loss[MAXSUB][MAXRUNS], cpu[MAXSUB][MAXRUNS];
    int ok[MAXSUB] = {0};
    /* subject by subject, or (interleaved) run by run */
    if (interleave) { /* the first run after a pause is slower: one run, not counted */
      result t;
      run_in_tmpdir(&subjects[0], size, n, pinned, luaswitch_bin, &t);
    }
    int outer = interleave ? runs : nsub, inner = interleave ? nsub : runs;
    for (int o = 0; o < outer; o++) {
      for (int i = 0; i < inner; i++) {
        /* interleaved, each round starts one subject further on: no subject always runs
         * first (or right after another) */
        int si = interleave ? (i + o) % nsub : o, r = interleave ? o : i;
        if (only && si > 0 && strcmp(only, subjects[si].name)) continue;
        /* --policy: a run disturbed by other load is made again (up to twice), and the
         * least disturbed attempt is kept */
        result res = {0, 0, 0, 0};
        int rc = -1;
        for (int attempt = 0; attempt < (interleave ? 3 : 1); attempt++) {
          result t;
          if (run_in_tmpdir(&subjects[si], size, n, pinned, luaswitch_bin, &t) != 0) break;
          if (rc != 0 || t.other < res.other) res = t;
          rc = 0;
          if (t.other <= QUIET_LOAD) break;
          if (each)
            printf("#%-4zu %-*s run %-2d disturbed (other load %.2f CPU)\n", size, width,
                   subjects[si].name, r + 1, t.other);
        }
        if (rc == 0) {
          rate[si][ok[si]] = res.rate;
          loss[si][ok[si]] = res.loss;
          cpu[si][ok[si]] = res.cpu_ns;
          ok[si]++;
          if (nother < (int)(sizeof(other) / sizeof(other[0]))) other[nother++] = res.other;
          if (each)
            printf("#%-4zu %-*s run %-2d %11.0f %7.2f%% %12.0f   other load %.2f CPU\n", size,
                   width, subjects[si].name, r + 1, res.rate, res.loss * 100, res.cpu_ns,
                   res.other);
          fflush(stdout);
        }
        if (!interleave && r == runs - 1) /* the subject's last run: its row */
          print_row(size, width, &subjects[si], si == 0, rate[si], loss[si], cpu[si], ok[si], &ref);
      }
    }
    for (int si = 0; interleave && si < nsub; si++) {
      if (only && si > 0 && strcmp(only, subjects[si].name)) continue;
      print_row(size, width, &subjects[si], si == 0, rate[si], loss[si], cpu[si], ok[si], &ref);
    }
  }
  /* Others' CPU time during the runs: the figures are only as good as the machine was quiet
   * (on 2 CPUs, a tenth of one taken by something else shows in the ratios). */
  if (nother) {
    double mx = 0;
    for (int i = 0; i < nother; i++) mx = other[i] > mx ? other[i] : mx;
    printf("other load during the runs: median %.2f CPU, max %.2f CPU%s\n", median(other, nother),
           mx, mx > QUIET_LOAD ? " (not quiet: compare with another invocation)" : "");
  }
  return 0;
}
