/*
 * test_stream.c — unit tests of the receive path: the stream port kind's under
 * backpressure, and every kind's read slice (a port yields after LS_RX_SLICE_NS), driven
 * single-threaded through the inline runtime (ls_runtime_start_inline).
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
#include "port_stream.h"
#include "runtime.h"
#include "switch.h"

static void poll_for(ls_runtime *rt, int ms) {
  for (int i = 0; i < ms; i++) {
    ls_runtime_poll(rt);
    usleep(1000);
  }
}

/* A runtime run by the test's own thread, and a plain switch on it. */
static ls_runtime *inline_runtime(void) {
  ls_runtime *rt = ls_runtime_new(0);
  CHECK(rt != NULL);
  CHECK_EQ(ls_runtime_start_inline(rt), 0);
  return rt;
}

static ls_switch *new_switch(ls_runtime *rt) {
  ls_switch_config sc;
  memset(&sc, 0, sizeof(sc));
  snprintf(sc.name, sizeof(sc.name), "s");
  sc.aging = LS_AGING_DEFAULT;
  sc.max_macs = 64;
  sc.vlan_tpid = LS_ETH_P_8021Q;
  int err = 0;
  ls_switch *sw = ls_switch_new(rt, &sc, &err);
  CHECK(sw != NULL);
  CHECK_EQ(ls_switch_attach(sw), 0);
  return sw;
}

/* Frames read from the stream but left in the port's buffer when an output it feeds got
 * congested must be forwarded once that output drains — even if the peer sends nothing
 * more (they used to wait for the peer's next bytes). */
static void test_backpressure_resumes_buffered_frames(void) {
  ls_runtime *rt = inline_runtime();
  ls_switch *sw = new_switch(rt);
  int err = 0;

  char where[128];
  ls_port_config pc;
  ls_port_config_defaults(&pc);
  snprintf(pc.name, sizeof(pc.name), "out");
  pc.txqlen = 128; /* congests (at 64) after two batches the peer does not read */
  ls_port *out = ls_port_socketpair_new(rt, &pc, &err, where, sizeof(where));
  CHECK(out != NULL);
  int peer = ls_port_socketpair_peer_fd(out);
  CHECK_EQ(ls_port_add(sw, out), 0);
  ls_port_info oi;
  CHECK_EQ(ls_port_info_get(out, &oi), 0);
  int small = 4096; /* its socket takes a few frames at a time */
  CHECK_EQ(setsockopt(oi.fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);

  char path[64];
  snprintf(path, sizeof(path), "@ls-test-stream-%d", (int)getpid());
  ls_stream_options so;
  memset(&so, 0, sizeof(so));
  so.listen = true;
  CHECK_EQ(ls_addr_parse(path, true, 0, &so.addr), 0);
  ls_port_config_defaults(&pc);
  snprintf(pc.name, sizeof(pc.name), "in");
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
  poll_for(rt, 20);
  CHECK(in->link_up);

  /* 400 broadcast frames in one write: more than the output and its socket take */
  enum { N = 400, FLEN = 200 };
  static uint8_t burst[N * (4 + FLEN)];
  for (int i = 0; i < N; i++) {
    uint8_t *p = burst + i * (4 + FLEN);
    ls_put_be32(p, FLEN);
    memset(p + 4, 0xff, 6);
    memset(p + 10, 0, 6);
    p[10] = 0x02;
    p[15] = 1;
    ls_put_be16(p + 16, 0x0800);
  }
  CHECK_EQ(send(c, burst, sizeof(burst), MSG_DONTWAIT), (ssize_t)sizeof(burst));
  for (int i = 0; i < 1; i++) ls_runtime_poll(rt);
  ls_port_stats st;
  ls_port_stats_get(in, &st);
  CHECK(st.rx_frames < N); /* held back: the output is congested */

  /* the peer reads everything, slowly enough for the output to drain and resume */
  uint8_t buf[2048];
  for (int round = 0; round < 400; round++) {
    while (recv(peer, buf, sizeof(buf), MSG_DONTWAIT) > 0) {
    }
    ls_runtime_poll(rt);
    usleep(500);
  }
  ls_port_stats_get(in, &st);
  CHECK_EQ(st.rx_frames, N); /* every frame came out of the buffer, with nothing more sent */

  close(c);
  ls_switch_close(sw);
  ls_runtime_free(rt);
}

static uint64_t mono(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * LS_NSEC + (uint64_t)ts.tv_nsec;
}

/* Every kind's read loop asks ls_port_batch_done after each batch whether to stop: yes
 * once the callback has read for LS_RX_SLICE_NS (since its ls_rt_tick), as after its frame
 * budget, though nothing it feeds is congested — and stopping for the slice holds nothing
 * back (the port reads again on the next loop iteration). */
static void test_read_slice(void) {
  ls_runtime *rt = inline_runtime();
  ls_switch *sw = new_switch(rt);
  int err = 0;
  ls_port_config pc;
  ls_port_config_defaults(&pc);
  snprintf(pc.name, sizeof(pc.name), "in");
  char where[128];
  ls_port *in = ls_port_socketpair_new(rt, &pc, &err, where, sizeof(where));
  CHECK(in != NULL);
  CHECK_EQ(ls_port_add(sw, in), 0);

  /* right after the tick: read on (retried, in case this thread was preempted for the
   * whole slice in between) */
  bool reads_on = false;
  for (int i = 0; i < 100 && !reads_on; i++) {
    ls_rt_tick(rt);
    reads_on = !ls_port_batch_done(in);
  }
  CHECK(reads_on);
  /* a slice later: stop */
  ls_rt_tick(rt);
  uint64_t t0 = mono();
  while (mono() - t0 <= LS_RX_SLICE_NS) {
  }
  CHECK(ls_port_batch_done(in));
  CHECK_EQ(in->blocked, 0u);

  ls_switch_close(sw);
  ls_runtime_free(rt);
}

int main(void) {
  RUN(test_backpressure_resumes_buffered_frames);
  RUN(test_read_slice);
  return CHECK_DONE();
}
