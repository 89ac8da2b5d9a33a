/*
 * test_stream.c — unit tests of the receive path's one rule for received work held in user
 * space (runtime.h): a read that stops early, for whatever reason (its slice or budget
 * spent, backpressure), with frames left in the port's own memory is resumed from the loop
 * without the peer sending anything more. Covered for each kind that holds such work (the
 * stream's buffer, a patch peer's queue), and the read slice itself. Driven single-threaded
 * through the inline runtime (ls_runtime_start_inline), each test setting the slice it
 * needs (ls_runtime_set_rx_slice) so that nothing depends on the machine's speed: counted
 * in loop iterations, not in time.
 */
#include <poll.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "frame.h"
#include "port_dgram.h"
#include "port_patch.h"
#include "port_stream.h"
#include "runtime.h"
#include "switch.h"

#define NO_SLICE UINT64_MAX /* a slice that is never spent: only budget and backpressure */

static uint64_t mono(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * LS_NSEC + (uint64_t)ts.tv_nsec;
}

/* A runtime run by the test's own thread, with the given read slice. */
static ls_runtime *inline_runtime(uint64_t slice) {
  ls_runtime *rt = ls_runtime_new(0);
  CHECK(rt != NULL);
  CHECK_EQ(ls_runtime_set_rx_slice(rt, slice), 0);
  CHECK_EQ(ls_runtime_start_inline(rt), 0);
  return rt;
}

static ls_switch *new_switch(ls_runtime *rt, const char *name) {
  ls_switch_config sc;
  memset(&sc, 0, sizeof(sc));
  snprintf(sc.name, sizeof(sc.name), "%s", name);
  sc.aging = LS_AGING_DEFAULT;
  sc.max_macs = 64;
  sc.vlan_tpid = LS_ETH_P_8021Q;
  int err = 0;
  ls_switch *sw = ls_switch_new(rt, &sc, &err);
  CHECK(sw != NULL);
  CHECK_EQ(ls_switch_attach(sw), 0);
  return sw;
}

static ls_port *socketpair_port(ls_runtime *rt, ls_switch *sw, const char *name, uint32_t txqlen) {
  ls_port_config pc;
  ls_port_config_defaults(&pc);
  snprintf(pc.name, sizeof(pc.name), "%s", name);
  if (txqlen) pc.txqlen = txqlen;
  int err = 0;
  char where[128];
  ls_port *p = ls_port_socketpair_new(rt, &pc, &err, where, sizeof(where));
  CHECK(p != NULL);
  CHECK_EQ(ls_port_add(sw, p), 0);
  return p;
}

/* A stream port listening at an abstract name, and a client connected to it (returned). */
static int stream_port_and_client(ls_runtime *rt, ls_switch *sw, const char *tag, ls_port **out) {
  char path[64];
  snprintf(path, sizeof(path), "@ls-test-stream-%s-%d", tag, (int)getpid());
  ls_stream_options so;
  memset(&so, 0, sizeof(so));
  so.listen = true;
  CHECK_EQ(ls_addr_parse(path, true, 0, &so.addr), 0);
  ls_port_config pc;
  ls_port_config_defaults(&pc);
  snprintf(pc.name, sizeof(pc.name), "in");
  int err = 0;
  char where[128];
  ls_port *in = ls_port_stream_new(rt, &pc, &so, &err, where, sizeof(where));
  CHECK(in != NULL);
  CHECK_EQ(ls_port_add(sw, in), 0);

  int c = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un a;
  memset(&a, 0, sizeof(a));
  a.sun_family = AF_UNIX;
  size_t n = strlen(path + 1);
  memcpy(a.sun_path + 1, path + 1, n);
  CHECK_EQ(connect(c, (struct sockaddr *)&a,
                   (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n)),
           0);
  for (int i = 0; i < 1000 && !in->link_up; i++) ls_runtime_poll(rt);
  CHECK(in->link_up);
  *out = in;
  return c;
}

/* n broadcast frames of flen bytes from 02:00:00:00:00:01, framed (prefix) or not. */
static size_t make_frames(uint8_t *buf, int n, int flen, bool prefix) {
  size_t at = 0;
  for (int i = 0; i < n; i++) {
    if (prefix) {
      ls_put_be32(buf + at, (uint32_t)flen);
      at += 4;
    }
    uint8_t *p = buf + at;
    memset(p, 0, (size_t)flen);
    memset(p, 0xff, 6);
    p[6] = 0x02;
    p[11] = 1;
    ls_put_be16(p + 12, 0x0800);
    at += (size_t)flen;
  }
  return at;
}

static uint64_t rx_frames(ls_port *p) {
  ls_port_stats st;
  ls_port_stats_get(p, &st);
  return st.rx_frames;
}

/* Datagrams waiting on fd, read and counted. */
static int drain(int fd) {
  uint8_t buf[2048];
  int n = 0;
  while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0) n++;
  return n;
}

/* Frames read from the stream but left in the port's buffer when an output it feeds got
 * congested are forwarded once that output drains, though the peer sends nothing more. */
static void test_backpressure_resumes_buffered_frames(void) {
  ls_runtime *rt = inline_runtime(NO_SLICE);
  ls_switch *sw = new_switch(rt, "s");
  ls_port *out = socketpair_port(rt, sw, "out", 128); /* congests (at 64) after two batches */
  int peer = ls_port_socketpair_peer_fd(out);
  ls_port_info oi;
  CHECK_EQ(ls_port_info_get(out, &oi), 0);
  int small = 4096; /* its socket takes a few frames at a time */
  CHECK_EQ(setsockopt(oi.fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
  ls_port *in;
  int c = stream_port_and_client(rt, sw, "bp", &in);

  /* 400 broadcast frames in one write: more than the output and its socket take */
  enum { N = 400, FLEN = 200 };
  static uint8_t burst[N * (4 + FLEN)];
  size_t len = make_frames(burst, N, FLEN, true);
  CHECK_EQ(send(c, burst, len, MSG_DONTWAIT), (ssize_t)len);
  ls_runtime_poll(rt);
  CHECK(rx_frames(in) < N); /* held back: the output is congested */
  CHECK(in->blocked > 0);

  /* the peer reads everything as it comes: every frame comes out of the buffer, with
   * nothing more sent (10 s is a deadline, not a wait: it ends as soon as they are out) */
  int got = 0;
  for (uint64_t end = mono() + 10 * LS_NSEC; (got < N || rx_frames(in) < N) && mono() < end;) {
    got += drain(peer);
    ls_runtime_poll(rt);
  }
  CHECK_EQ(rx_frames(in), N);
  CHECK_EQ(got, N);

  close(c);
  ls_switch_close(sw);
  ls_runtime_free(rt);
}

/* The read slice spent (0 here: after every batch) with frames in the buffer and the peer
 * silent: each loop iteration reads one more batch until the buffer is empty. */
static void test_slice_resumes_buffered_frames(void) {
  ls_runtime *rt = inline_runtime(0);
  ls_switch *sw = new_switch(rt, "s");
  ls_port *in;
  int c = stream_port_and_client(rt, sw, "slice", &in);
  enum { N = 400, FLEN = 200 };
  static uint8_t burst[N * (4 + FLEN)];
  size_t len = make_frames(burst, N, FLEN, true);
  CHECK_EQ(send(c, burst, len, MSG_DONTWAIT), (ssize_t)len);
  ls_runtime_poll(rt);
  CHECK_EQ(rx_frames(in), LS_BATCH); /* the slice stopped it after one batch */
  int polls = 1;
  while (rx_frames(in) < N && polls < 100) {
    ls_runtime_poll(rt);
    polls++;
  }
  CHECK_EQ(rx_frames(in), N);
  CHECK_EQ(polls, (N + LS_BATCH - 1) / LS_BATCH); /* one batch a turn, none waited for */

  close(c);
  ls_switch_close(sw);
  ls_runtime_free(rt);
}

/* The budget spent (LS_RX_BUDGET frames in one turn) with more whole frames in the buffer
 * and nothing left in the socket: the next loop iteration reads them. */
static void test_budget_resumes_buffered_frames(void) {
  ls_runtime *rt = inline_runtime(NO_SLICE);
  ls_switch *sw = new_switch(rt, "s");
  ls_port *in;
  int c = stream_port_and_client(rt, sw, "budget", &in);
  enum { N = 2000, FLEN = 60 };
  CHECK(N * (4 + FLEN) <= LS_STREAM_RBUF); /* all of it fits the buffer in one read */
  static uint8_t burst[N * (4 + FLEN)];
  size_t len = make_frames(burst, N, FLEN, true);
  CHECK_EQ(send(c, burst, len, MSG_DONTWAIT), (ssize_t)len);
  int polls = 0;
  while (rx_frames(in) < N && polls < 100) {
    ls_runtime_poll(rt);
    polls++;
  }
  CHECK_EQ(rx_frames(in), N);
  CHECK(polls <= (N + LS_RX_BUDGET - 1) / LS_RX_BUDGET + 1);

  close(c);
  ls_switch_close(sw);
  ls_runtime_free(rt);
}

/* A patch end reads its peer's queue (user space, no descriptor): with the slice spent
 * after every batch, the loop resumes it until the queue is empty. */
static void test_patch_slice_resumes_queue(void) {
  ls_runtime *rt = inline_runtime(0);
  ls_switch *s1 = new_switch(rt, "s1"), *s2 = new_switch(rt, "s2");
  ls_port *a = socketpair_port(rt, s1, "a", 0), *b = socketpair_port(rt, s2, "b", 0);
  ls_port_config pc;
  ls_port_config_defaults(&pc);
  int err = 0;
  char where[128];
  snprintf(pc.name, sizeof(pc.name), "p1");
  ls_port *p1 = ls_port_patch_new(rt, &pc, NULL, &err, where, sizeof(where));
  CHECK(p1 != NULL);
  CHECK_EQ(ls_port_add(s1, p1), 0);
  snprintf(pc.name, sizeof(pc.name), "p2");
  ls_port *p2 = ls_port_patch_new(rt, &pc, p1, &err, where, sizeof(where));
  CHECK(p2 != NULL);
  CHECK_EQ(ls_port_add(s2, p2), 0);
  CHECK(p1->link_up && p2->link_up);

  enum { N = 200, FLEN = 100 };
  uint8_t frame[FLEN];
  make_frames(frame, 1, FLEN, false);
  int pa = ls_port_socketpair_peer_fd(a), pb = ls_port_socketpair_peer_fd(b);
  int sent = 0;
  for (int i = 0; i < N; i++) sent += send(pa, frame, FLEN, MSG_DONTWAIT) == FLEN;
  CHECK_EQ(sent, N);
  int got = 0, polls = 0;
  while (got < N && polls < 100) {
    ls_runtime_poll(rt);
    got += drain(pb);
    polls++;
  }
  CHECK_EQ(got, N);
  CHECK_EQ(rx_frames(p2), N);
  CHECK(polls >= N / LS_BATCH); /* one batch a turn: it was resumed, turn after turn */

  ls_switch_close(s1);
  ls_switch_close(s2);
  ls_runtime_free(rt);
}

/* Every kind's read loop asks ls_port_batch_done after each batch whether to stop: yes once
 * the callback has read for the runtime's slice (since its ls_rt_tick), as after its frame
 * budget, though nothing it feeds is congested — and stopping for the slice pauses nothing. */
static void test_read_slice(void) {
  ls_runtime *rt = inline_runtime(NO_SLICE);
  ls_switch *sw = new_switch(rt, "s");
  ls_port *in = socketpair_port(rt, sw, "in", 0);
  ls_rt_tick(rt);
  CHECK(!ls_port_batch_done(in)); /* a slice never spent: read on */
  CHECK_EQ(ls_runtime_set_rx_slice(rt, 0), 0);
  ls_rt_tick(rt);
  CHECK(ls_port_batch_done(in)); /* spent at once: stop */
  CHECK_EQ(in->blocked, 0u);
  ls_switch_close(sw);
  ls_runtime_free(rt);
}

int main(void) {
  RUN(test_backpressure_resumes_buffered_frames);
  RUN(test_slice_resumes_buffered_frames);
  RUN(test_budget_resumes_buffered_frames);
  RUN(test_patch_slice_resumes_queue);
  RUN(test_read_slice);
  return CHECK_DONE();
}
