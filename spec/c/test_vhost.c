/*
 * test_vhost.c — unit tests of the vhost-user protocol's pure parts (vhost_proto.h): the
 * message header and payload decoder, guest address translation, and the split-ring
 * descriptor-chain walker with the copy helpers, each with well-formed and malformed
 * input (wrong sizes, indexes, fd counts, overlapping or overflowing regions, chains that
 * loop, point outside the memory table, have the wrong direction or too many segments).
 *
 * Then the port itself (port_vhost.c) against a fake front-end played by the test, as
 * QEMU would: a memfd as guest memory, rings laid out in it, eventfds for kicks and
 * calls, the messages of a device start; frames both ways between the guest's rings and
 * a socketpair port; bad chains counted and returned; a malformed message, a ring outside
 * the memory table, and a front-end that hangs up mid-traffic each closing the connection
 * (port down, memory unmapped) with the port accepting the next one. Driven on the inline
 * runtime (ls_runtime_start_inline), single-threaded.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "check.h"
#include "frame.h"
#include "port_dgram.h"
#include "port_vhost.h"
#include "runtime.h"
#include "switch.h"
#include "vhost_proto.h"

static size_t msg(uint8_t *buf, uint32_t req, uint32_t flags, const void *payload, uint32_t size) {
  memcpy(buf, &req, 4);
  memcpy(buf + 4, &flags, 4);
  memcpy(buf + 8, &size, 4);
  if (size) memcpy(buf + 12, payload, size);
  return 12 + size;
}

static void test_header(void) {
  uint8_t b[12];
  uint32_t r, f, s;
  msg(b, LS_VHOST_GET_FEATURES, LS_VHOST_VERSION, NULL, 0);
  CHECK_EQ(ls_vhost_hdr_parse(b, &r, &f, &s), 0);
  CHECK_EQ(r, LS_VHOST_GET_FEATURES);
  CHECK_EQ(s, 0);
  msg(b, 1, LS_VHOST_VERSION | LS_VHOST_F_NEED_REPLY, NULL, 0);
  CHECK_EQ(ls_vhost_hdr_parse(b, &r, &f, &s), 0);
  msg(b, 1, 0, NULL, 0); /* version 0 */
  CHECK_EQ(ls_vhost_hdr_parse(b, &r, &f, &s), -EPROTO);
  msg(b, 1, 2, NULL, 0); /* version 2 */
  CHECK_EQ(ls_vhost_hdr_parse(b, &r, &f, &s), -EPROTO);
  msg(b, 1, LS_VHOST_VERSION | LS_VHOST_F_REPLY, NULL, 0);
  CHECK_EQ(ls_vhost_hdr_parse(b, &r, &f, &s), -EPROTO);
  uint32_t big = LS_VHOST_PAYLOAD_MAX + 1;
  memcpy(b + 8, &big, 4);
  memcpy(b + 4, &(uint32_t){LS_VHOST_VERSION}, 4);
  CHECK_EQ(ls_vhost_hdr_parse(b, &r, &f, &s), -EMSGSIZE);
}

static void test_simple_messages(void) {
  uint8_t b[12 + LS_VHOST_PAYLOAD_MAX];
  ls_vhost_msg m;
  uint64_t feat = LS_VHOST_FEATURES;
  size_t n = msg(b, LS_VHOST_SET_FEATURES, 1, &feat, 8);
  CHECK_EQ(ls_vhost_msg_parse(b, n, 0, &m), 0);
  CHECK(m.u.u64 == feat);
  CHECK_EQ(ls_vhost_msg_parse(b, n, 1, &m), -EPROTO);     /* an fd it does not take */
  CHECK_EQ(ls_vhost_msg_parse(b, n - 1, 0, &m), -EPROTO); /* truncated */
  n = msg(b, LS_VHOST_SET_FEATURES, 1, &feat, 4);
  CHECK_EQ(ls_vhost_msg_parse(b, n, 0, &m), -EPROTO); /* wrong size for its type */
  n = msg(b, LS_VHOST_GET_FEATURES, 1, NULL, 0);
  CHECK_EQ(ls_vhost_msg_parse(b, n, 0, &m), 0);
  CHECK_EQ(ls_vhost_msg_parse(b, 5, 0, &m), -EPROTO); /* shorter than a header */

  uint32_t st[2] = {1, 256};
  n = msg(b, LS_VHOST_SET_VRING_NUM, 1, st, 8);
  CHECK_EQ(ls_vhost_msg_parse(b, n, 0, &m), 0);
  CHECK_EQ(m.u.state.index, 1);
  CHECK_EQ(m.u.state.num, 256);
  uint32_t bad_nums[] = {0, 3, 100, 65536, 0x80000000u};
  for (size_t i = 0; i < sizeof(bad_nums) / sizeof(bad_nums[0]); i++) {
    st[1] = bad_nums[i];
    n = msg(b, LS_VHOST_SET_VRING_NUM, 1, st, 8);
    CHECK_EQ(ls_vhost_msg_parse(b, n, 0, &m), -EPROTO);
  }
  st[0] = 2; /* only one queue pair */
  st[1] = 256;
  n = msg(b, LS_VHOST_SET_VRING_NUM, 1, st, 8);
  CHECK_EQ(ls_vhost_msg_parse(b, n, 0, &m), -EPROTO);
  st[0] = 0;
  st[1] = 0x10000;
  n = msg(b, LS_VHOST_SET_VRING_BASE, 1, st, 8);
  CHECK_EQ(ls_vhost_msg_parse(b, n, 0, &m), -EPROTO);
  st[1] = 2;
  n = msg(b, LS_VHOST_SET_VRING_ENABLE, 1, st, 8);
  CHECK_EQ(ls_vhost_msg_parse(b, n, 0, &m), -EPROTO);

  uint64_t a[5] = {(uint64_t)1 << 32, 0x7000, 0x5000, 0x6000, 0};
  memcpy(a, &(uint32_t[2]){1, 0}, 8);
  n = msg(b, LS_VHOST_SET_VRING_ADDR, 1, a, 40);
  CHECK_EQ(ls_vhost_msg_parse(b, n, 0, &m), 0);
  CHECK_EQ(m.u.addr.index, 1);
  CHECK(m.u.addr.desc == 0x7000 && m.u.addr.used == 0x5000 && m.u.addr.avail == 0x6000);
  a[1] = 0x7008; /* descriptor table misaligned */
  n = msg(b, LS_VHOST_SET_VRING_ADDR, 1, a, 40);
  CHECK_EQ(ls_vhost_msg_parse(b, n, 0, &m), -EPROTO);

  uint64_t k = 1;
  n = msg(b, LS_VHOST_SET_VRING_KICK, 1, &k, 8);
  CHECK_EQ(ls_vhost_msg_parse(b, n, 1, &m), 0);
  CHECK_EQ(ls_vhost_msg_parse(b, n, 0, &m), -EPROTO); /* the fd is missing */
  k = 1 | LS_VHOST_VRING_NOFD;
  n = msg(b, LS_VHOST_SET_VRING_CALL, 1, &k, 8);
  CHECK_EQ(ls_vhost_msg_parse(b, n, 0, &m), 0);
  CHECK_EQ(ls_vhost_msg_parse(b, n, 1, &m), -EPROTO); /* "no fd" with an fd */
  k = 5;
  n = msg(b, LS_VHOST_SET_VRING_ERR, 1, &k, 8);
  CHECK_EQ(ls_vhost_msg_parse(b, n, 1, &m), -EPROTO); /* queue 5 */
  k = 1 | (1ull << 40);
  n = msg(b, LS_VHOST_SET_VRING_KICK, 1, &k, 8);
  CHECK_EQ(ls_vhost_msg_parse(b, n, 1, &m), -EPROTO); /* reserved bits */

  n = msg(b, 99, 1, "abc", 3); /* unknown: decoded as far as its header */
  CHECK_EQ(ls_vhost_msg_parse(b, n, 2, &m), 0);
  CHECK_EQ(m.request, 99);
  CHECK(ls_vhost_request_name(99) == NULL);
  CHECK(strcmp(ls_vhost_request_name(LS_VHOST_SET_MEM_TABLE), "SET_MEM_TABLE") == 0);
  CHECK(ls_vhost_has_reply(LS_VHOST_GET_VRING_BASE));
  CHECK(!ls_vhost_has_reply(LS_VHOST_SET_VRING_BASE));
}

static size_t mem_msg(uint8_t *b, uint32_t n, const ls_vhost_region_msg *r) {
  uint8_t p[8 + 32 * 9];
  uint32_t hdr[2] = {n, 0};
  memcpy(p, hdr, 8);
  memcpy(p + 8, r, 32 * (size_t)n);
  return msg(b, LS_VHOST_SET_MEM_TABLE, 1, p, 8 + 32 * n);
}

static void test_mem_table(void) {
  uint8_t b[12 + LS_VHOST_PAYLOAD_MAX];
  ls_vhost_msg m;
  ls_vhost_region_msg r[9] = {
      {0, 0xa0000, 0x7f0000000000, 0},
      {0x100000, 0x1000000, 0x7f0000100000, 0x100000},
  };
  size_t n = mem_msg(b, 2, r);
  CHECK_EQ(ls_vhost_msg_parse(b, n, 2, &m), 0);
  CHECK_EQ(m.u.mem.nregions, 2);
  CHECK(m.u.mem.regions[1].mmap_offset == 0x100000);
  CHECK_EQ(ls_vhost_msg_parse(b, n, 1, &m), -EPROTO); /* one fd per region */
  CHECK_EQ(ls_vhost_msg_parse(b, n, 0, &m), -EPROTO);
  n = mem_msg(b, 0, r);
  CHECK_EQ(ls_vhost_msg_parse(b, n, 0, &m), -EPROTO); /* empty */
  for (int i = 0; i < 9; i++)
    r[i] = (ls_vhost_region_msg){(uint64_t)i << 30, 1 << 20, (uint64_t)i << 32, 0};
  n = mem_msg(b, 9, r);
  CHECK_EQ(ls_vhost_msg_parse(b, n, 8, &m), -EPROTO); /* more than 8 regions */
  n = mem_msg(b, 8, r);
  CHECK_EQ(ls_vhost_msg_parse(b, n, 8, &m), 0);
  /* nregions says 2 but the payload holds 1 */
  n = mem_msg(b, 1, r);
  uint32_t two = 2;
  memcpy(b + 12, &two, 4);
  CHECK_EQ(ls_vhost_msg_parse(b, n, 2, &m), -EPROTO);
  /* overflowing and overlapping regions, and zero-sized ones */
  ls_vhost_region_msg bad[][2] = {
      {{UINT64_MAX - 10, 100, 0, 0}, {0, 0, 0, 0}},
      {{0, 100, UINT64_MAX - 10, 0}, {0, 0, 0, 0}},
      {{0, 100, 0, UINT64_MAX - 10}, {0, 0, 0, 0}},
      {{0, 0, 0, 0}, {0, 0, 0, 0}},
      {{0, 0x2000, 0x10000, 0}, {0x1000, 0x2000, 0x20000, 0}}, /* guest addresses overlap */
      {{0, 0x2000, 0x10000, 0}, {0x4000, 0x2000, 0x11000, 0}}, /* our addresses overlap */
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    uint32_t cnt = i < 4 ? 1 : 2;
    n = mem_msg(b, cnt, bad[i]);
    CHECK_EQ(ls_vhost_msg_parse(b, n, cnt, &m), -EPROTO);
  }
}

static void test_translate(void) {
  static uint8_t ram[0x3000];
  ls_vhost_mem mem = {.n = 2,
                      .r = {{.gpa = 0x1000, .uva = 0x50000, .size = 0x1000, .host = ram},
                            {.gpa = 0x2000, .uva = 0x90000, .size = 0x2000, .host = ram + 0x1000}}};
  CHECK(ls_vhost_gpa(&mem, 0x1000, 0x1000) == ram);
  CHECK(ls_vhost_gpa(&mem, 0x1ff0, 0x10) == ram + 0xff0);
  CHECK(ls_vhost_gpa(&mem, 0x1ff0, 0x11) == NULL); /* crosses into the next region */
  CHECK(ls_vhost_gpa(&mem, 0xfff, 1) == NULL);
  CHECK(ls_vhost_gpa(&mem, 0x3fff, 1) == ram + 0x2fff);
  CHECK(ls_vhost_gpa(&mem, 0x4000, 0) == NULL);
  CHECK(ls_vhost_gpa(&mem, 0x2000, UINT64_MAX) == NULL);
  CHECK(ls_vhost_gpa(&mem, UINT64_MAX, 2) == NULL);
  CHECK(ls_vhost_uva(&mem, 0x90010, 0x100) == ram + 0x1010);
  CHECK(ls_vhost_uva(&mem, 0x51000, 1) == NULL);
  ls_vhost_mem none = {0};
  CHECK(ls_vhost_gpa(&none, 0, 1) == NULL);
}

/* A guest: memory at guest address 0x10000 (two adjacent regions), a descriptor table. */
static uint8_t guest[0x4000];
static ls_vring_desc table[8];
static const ls_vhost_mem gmem = {.n = 2,
                                  .r = {{.gpa = 0x10000, .size = 0x2000, .host = guest},
                                        {.gpa = 0x12000, .size = 0x2000, .host = guest + 0x2000}}};

static void desc(int i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next) {
  table[i] = (ls_vring_desc){addr, len, flags, next};
}

static void test_chain(void) {
  ls_vhost_seg s[8];
  uint32_t total;
  /* header (12) + frame (100) in two readable descriptors */
  desc(0, 0x10000, 12, LS_VRING_DESC_F_NEXT, 3);
  desc(3, 0x10100, 100, 0, 0);
  CHECK_EQ(ls_vhost_chain(table, 8, 0, &gmem, false, s, 8, &total), 2);
  CHECK_EQ(total, 112);
  CHECK(s[0].p == guest && s[0].len == 12);
  CHECK(s[1].p == guest + 0x100 && s[1].len == 100);
  /* the same chain is not device-writable */
  CHECK_EQ(ls_vhost_chain(table, 8, 0, &gmem, true, s, 8, &total), -EINVAL);
  /* a buffer crossing from one region into the next: two segments */
  desc(1, 0x11ff0, 0x20, LS_VRING_DESC_F_WRITE, 0);
  CHECK_EQ(ls_vhost_chain(table, 8, 1, &gmem, true, s, 8, &total), 2);
  CHECK(s[0].p == guest + 0x1ff0 && s[0].len == 0x10);
  CHECK(s[1].p == guest + 0x2000 && s[1].len == 0x10);
  CHECK_EQ(ls_vhost_chain(table, 8, 1, &gmem, true, s, 1, &total), -E2BIG);
  /* outside the table: before, after, straddling the end */
  desc(2, 0x0fff0, 0x20, 0, 0);
  CHECK_EQ(ls_vhost_chain(table, 8, 2, &gmem, false, s, 8, &total), -EFAULT);
  desc(2, 0x13ff0, 0x20, 0, 0);
  CHECK_EQ(ls_vhost_chain(table, 8, 2, &gmem, false, s, 8, &total), -EFAULT);
  desc(2, UINT64_MAX - 4, 0x20, 0, 0);
  CHECK_EQ(ls_vhost_chain(table, 8, 2, &gmem, false, s, 8, &total), -EFAULT);
  /* loops: to itself, and 4 -> 5 -> 4 */
  desc(2, 0x10000, 4, LS_VRING_DESC_F_NEXT, 2);
  CHECK_EQ(ls_vhost_chain(table, 8, 2, &gmem, false, s, 8, &total), -ELOOP);
  CHECK_EQ(ls_vhost_chain(table, 8, 2, &gmem, false, s, 4, &total), -E2BIG);
  desc(2, 0x10000, 0, LS_VRING_DESC_F_NEXT, 2); /* zero-length: no segment, still bounded */
  CHECK_EQ(ls_vhost_chain(table, 8, 2, &gmem, false, s, 8, &total), -ELOOP);
  desc(4, 0x10000, 0, LS_VRING_DESC_F_NEXT, 5);
  desc(5, 0x10000, 0, LS_VRING_DESC_F_NEXT, 4);
  CHECK_EQ(ls_vhost_chain(table, 8, 4, &gmem, false, s, 8, &total), -ELOOP);
  /* next out of range, head out of range, indirect, mixed directions, too long */
  desc(6, 0x10000, 4, LS_VRING_DESC_F_NEXT, 8);
  CHECK_EQ(ls_vhost_chain(table, 8, 6, &gmem, false, s, 8, &total), -EINVAL);
  CHECK_EQ(ls_vhost_chain(table, 8, 8, &gmem, false, s, 8, &total), -EINVAL);
  CHECK_EQ(ls_vhost_chain(table, 0, 0, &gmem, false, s, 8, &total), -EINVAL);
  desc(6, 0x10000, 16, LS_VRING_DESC_F_INDIRECT, 0);
  CHECK_EQ(ls_vhost_chain(table, 8, 6, &gmem, false, s, 8, &total), -EINVAL);
  desc(6, 0x10000, 4, LS_VRING_DESC_F_NEXT, 7);
  desc(7, 0x10000, 4, LS_VRING_DESC_F_WRITE, 0);
  CHECK_EQ(ls_vhost_chain(table, 8, 6, &gmem, false, s, 8, &total), -EINVAL);
  desc(7, 0x10000, UINT32_MAX, 0, 0);
  CHECK_EQ(ls_vhost_chain(table, 8, 6, &gmem, false, s, 8, &total), -EINVAL);
  CHECK_EQ(total, 0);
}

static void test_copy(void) {
  uint8_t a[5], b[3], c[4];
  ls_vhost_seg s[3] = {{a, 5}, {b, 3}, {c, 4}};
  uint8_t src[12], dst[12];
  for (int i = 0; i < 12; i++) src[i] = (uint8_t)(i + 1);
  CHECK_EQ(ls_vhost_copy_to(s, 3, 0, src, 12), 12);
  CHECK(a[0] == 1 && b[0] == 6 && c[3] == 12);
  memset(dst, 0, sizeof(dst));
  CHECK_EQ(ls_vhost_copy_from(s, 3, 4, dst, 5), 5); /* across all three */
  CHECK(dst[0] == 5 && dst[1] == 6 && dst[4] == 9);
  CHECK_EQ(ls_vhost_copy_from(s, 3, 10, dst, 5), 2); /* the segments end first */
  CHECK(dst[0] == 11 && dst[1] == 12);
  CHECK_EQ(ls_vhost_copy_from(s, 3, 20, dst, 5), 0);
  CHECK_EQ(ls_vhost_copy_to(s, 3, 6, (const uint8_t *)"xy", 2), 2);
  CHECK(b[1] == 'x' && b[2] == 'y');
}

static void test_event_idx(void) {
  CHECK(ls_vring_need_event(0, 1, 0));  /* passed event 0 */
  CHECK(!ls_vring_need_event(5, 3, 0)); /* not yet */
  CHECK(ls_vring_need_event(5, 6, 3));
  CHECK(!ls_vring_need_event(2, 6, 3));          /* already passed before this update */
  CHECK(ls_vring_need_event(0xffff, 1, 0xfffe)); /* across the wrap */
  CHECK_EQ(ls_vhost_net_hdr_len(LS_BIT(LS_VIRTIO_F_VERSION_1)), 12);
  CHECK_EQ(ls_vhost_net_hdr_len(LS_BIT(LS_VIRTIO_NET_F_MRG_RXBUF)), 12);
  CHECK_EQ(ls_vhost_net_hdr_len(0), 10);
}

/* ---- the port against a fake front-end ------------------------------------------------------ */

#define GMEM (1u << 20)
#define QSIZE 8
/* guest physical layout: RX ring (queue 0), TX ring (queue 1), buffers */
#define RX_DESC 0x0000
#define RX_AVAIL 0x1000
#define RX_USED 0x2000
#define TX_DESC 0x3000
#define TX_AVAIL 0x4000
#define TX_USED 0x5000
#define TX_BUF 0x10000
#define RX_BUF 0x20000

typedef struct fe {
  ls_runtime *rt;
  ls_port *vp, *sp; /* the vhost port, and a socketpair port on the same switch */
  int spfd;         /* the socketpair port's peer end */
  char path[64];
  int sock;
  int memfd;
  uint8_t *mem;
  int kick[2], call[2];
} fe;

static void spin(fe *f, int n) {
  for (int i = 0; i < n; i++) ls_runtime_poll(f->rt);
}

static void fe_send(fe *f, uint32_t req, uint32_t flags, const void *payload, uint32_t size,
                    const int *fds, int nfds) {
  uint8_t b[12 + 512];
  size_t n = msg(b, req, LS_VHOST_VERSION | flags, payload, size);
  struct iovec iov = {b, n};
  union {
    char buf[CMSG_SPACE(sizeof(int) * 8)];
    struct cmsghdr align;
  } cm;
  struct msghdr mh;
  memset(&mh, 0, sizeof(mh));
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  if (nfds) {
    mh.msg_control = cm.buf;
    mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
  }
  CHECK_EQ(sendmsg(f->sock, &mh, 0), (ssize_t)n);
  spin(f, 3);
}

/* The reply to req: its payload size, copied to out; -1 if none came. */
static int fe_reply(fe *f, uint32_t req, void *out, uint32_t max) {
  uint8_t b[12 + 64];
  for (int i = 0; i < 100; i++) {
    ssize_t n = recv(f->sock, b, sizeof(b), MSG_DONTWAIT);
    if (n >= 12) {
      uint32_t r, fl, sz;
      memcpy(&r, b, 4);
      memcpy(&fl, b + 4, 4);
      memcpy(&sz, b + 8, 4);
      CHECK_EQ(r, req);
      CHECK_EQ(fl, LS_VHOST_VERSION | LS_VHOST_F_REPLY);
      CHECK(sz <= max && (size_t)n == 12 + sz);
      memcpy(out, b + 12, sz);
      return (int)sz;
    }
    if (n == 0) return -1;
    spin(f, 1);
  }
  return -1;
}

static bool fe_closed_by_port(fe *f) {
  uint8_t b[64];
  for (int i = 0; i < 100; i++) {
    ssize_t n = recv(f->sock, b, sizeof(b), MSG_DONTWAIT);
    if (n == 0) return true;
    spin(f, 1);
  }
  return false;
}

static int fe_connect(fe *f) {
  f->sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un a;
  memset(&a, 0, sizeof(a));
  a.sun_family = AF_UNIX;
  snprintf(a.sun_path, sizeof(a.sun_path), "%s", f->path);
  int r = connect(f->sock, (struct sockaddr *)&a, sizeof(a));
  spin(f, 3);
  return r;
}

static int open_fds(void) {
  int n = 0;
  for (int fd = 0; fd < 4096; fd++)
    if (fcntl(fd, F_GETFD) >= 0) n++;
  return n;
}

/* Maps of our memfd in this process (ours, plus the port's while it holds the table). */
static int memfd_maps(void) {
  FILE *m = fopen("/proc/self/maps", "r");
  char line[512];
  int n = 0;
  while (m && fgets(line, sizeof(line), m))
    if (strstr(line, "memfd:ls-vhost-test")) n++;
  if (m) fclose(m);
  return n;
}

static void ring_msgs(fe *f, int q, uint64_t desc, uint64_t avail, uint64_t used) {
  uint32_t st[2] = {(uint32_t)q, QSIZE};
  fe_send(f, LS_VHOST_SET_VRING_NUM, 0, st, 8, NULL, 0);
  st[1] = 0;
  fe_send(f, LS_VHOST_SET_VRING_BASE, 0, st, 8, NULL, 0);
  uint64_t base = (uint64_t)(uintptr_t)f->mem; /* front-end addresses: our mapping */
  uint8_t a[40];
  uint32_t idx[2] = {(uint32_t)q, 0};
  uint64_t addrs[4] = {base + desc, base + used, base + avail, 0};
  memcpy(a, idx, 8);
  memcpy(a + 8, addrs, 32);
  fe_send(f, LS_VHOST_SET_VRING_ADDR, 0, a, 40, NULL, 0);
  uint64_t k = (uint64_t)q;
  fe_send(f, LS_VHOST_SET_VRING_KICK, 0, &k, 8, &f->kick[q], 1);
  fe_send(f, LS_VHOST_SET_VRING_CALL, 0, &k, 8, &f->call[q], 1);
  st[1] = 1;
  fe_send(f, LS_VHOST_SET_VRING_ENABLE, 0, st, 8, NULL, 0);
}

/* The messages QEMU sends to start the device. */
static void fe_start(fe *f, uint64_t features) {
  memset(f->mem, 0, 0x10000); /* fresh rings */
  CHECK_EQ(fe_connect(f), 0);
  uint64_t x = 0;
  fe_send(f, LS_VHOST_GET_FEATURES, 0, NULL, 0, NULL, 0);
  CHECK_EQ(fe_reply(f, LS_VHOST_GET_FEATURES, &x, 8), 8);
  CHECK(x == LS_VHOST_FEATURES);
  fe_send(f, LS_VHOST_GET_PROTOCOL_FEATURES, 0, NULL, 0, NULL, 0);
  CHECK_EQ(fe_reply(f, LS_VHOST_GET_PROTOCOL_FEATURES, &x, 8), 8);
  CHECK(x & LS_BIT(LS_VHOST_PROTO_F_REPLY_ACK));
  x = LS_BIT(LS_VHOST_PROTO_F_REPLY_ACK);
  fe_send(f, LS_VHOST_SET_PROTOCOL_FEATURES, 0, &x, 8, NULL, 0);
  fe_send(f, LS_VHOST_SET_OWNER, 0, NULL, 0, NULL, 0);
  fe_send(f, LS_VHOST_SET_FEATURES, 0, &features, 8, NULL, 0);
  uint8_t mt[8 + 32];
  uint32_t n[2] = {1, 0};
  ls_vhost_region_msg r = {0, GMEM, (uint64_t)(uintptr_t)f->mem, 0};
  memcpy(mt, n, 8);
  memcpy(mt + 8, &r, 32);
  fe_send(f, LS_VHOST_SET_MEM_TABLE, LS_VHOST_F_NEED_REPLY, mt, sizeof(mt), &f->memfd, 1);
  CHECK_EQ(fe_reply(f, LS_VHOST_SET_MEM_TABLE, &x, 8), 8);
  CHECK(x == 0); /* REPLY_ACK: success */
  CHECK(!f->vp->link_up);
  ring_msgs(f, 0, RX_DESC, RX_AVAIL, RX_USED);
  CHECK(!f->vp->link_up); /* one ring is not enough */
  ring_msgs(f, 1, TX_DESC, TX_AVAIL, TX_USED);
  CHECK(f->vp->link_up);
}

static ls_vring_desc *fe_desc(fe *f, uint32_t at) {
  return (ls_vring_desc *)(void *)(f->mem + at);
}
static ls_vring_avail *fe_avail(fe *f, uint32_t at) {
  return (ls_vring_avail *)(void *)(f->mem + at);
}
static ls_vring_used *fe_used(fe *f, uint32_t at) {
  return (ls_vring_used *)(void *)(f->mem + at);
}

/* The guest makes chain head available on the ring at avail, and kicks queue q. */
static void fe_offer(fe *f, int q, uint32_t avail, uint16_t head) {
  ls_vring_avail *a = fe_avail(f, avail);
  a->ring[a->idx % QSIZE] = head;
  __atomic_store_n(&a->idx, (uint16_t)(a->idx + 1), __ATOMIC_RELEASE);
  uint64_t one = 1;
  CHECK_EQ(write(f->kick[q], &one, 8), 8);
  spin(f, 5);
}

static uint64_t stat_of(ls_port *p, int which) {
  ls_port_stats st;
  ls_port_stats_get(p, &st);
  return which == 0   ? st.drops.rx_error
         : which == 1 ? st.tx_frames
         : which == 2 ? st.drops.bad_request
                      : st.drops.tx_error;
}

static bool called(fe *f, int q) {
  uint64_t n = 0;
  return read(f->call[q], &n, 8) == 8 && n > 0;
}

static void fe_setup(fe *f) {
  memset(f, 0, sizeof(*f));
  f->rt = ls_runtime_new(0);
  CHECK_EQ(ls_runtime_start_inline(f->rt), 0);
  ls_switch_config sc;
  memset(&sc, 0, sizeof(sc));
  snprintf(sc.name, sizeof(sc.name), "s");
  sc.aging = LS_AGING_DEFAULT;
  sc.max_macs = 64;
  sc.vlan_tpid = LS_ETH_P_8021Q;
  int err = 0;
  ls_switch *sw = ls_switch_new(f->rt, &sc, &err);
  CHECK_EQ(ls_switch_attach(sw), 0);
  ls_port_config pc;
  ls_port_config_defaults(&pc);
  snprintf(pc.name, sizeof(pc.name), "vm");
  snprintf(f->path, sizeof(f->path), "/tmp/ls-test-vhost-%d.sock", (int)getpid());
  ls_vhost_options o = {.path = f->path, .client = false};
  char where[128];
  f->vp = ls_port_vhost_new(f->rt, &pc, &o, &err, where, sizeof(where));
  CHECK(f->vp != NULL);
  CHECK_EQ(ls_port_add(sw, f->vp), 0);
  snprintf(pc.name, sizeof(pc.name), "sp");
  f->sp = ls_port_socketpair_new(f->rt, &pc, &err, where, sizeof(where));
  CHECK_EQ(ls_port_add(sw, f->sp), 0);
  f->spfd = ls_port_socketpair_peer_fd(f->sp);
  f->memfd = memfd_create("ls-vhost-test", MFD_CLOEXEC);
  CHECK_EQ(ftruncate(f->memfd, GMEM), 0);
  f->mem = mmap(NULL, GMEM, PROT_READ | PROT_WRITE, MAP_SHARED, f->memfd, 0);
  CHECK(f->mem != MAP_FAILED);
  for (int q = 0; q < 2; q++) {
    f->kick[q] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    f->call[q] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  }
}

static void fe_teardown(fe *f) {
  if (f->sock >= 0) close(f->sock);
  ls_runtime_free(f->rt); /* closes the ports: the socket file goes with the listener */
  CHECK(access(f->path, F_OK) != 0);
  for (int q = 0; q < 2; q++) {
    close(f->kick[q]);
    close(f->call[q]);
  }
  munmap(f->mem, GMEM);
  close(f->memfd);
}

/* A broadcast frame of 60 bytes from 02:00:00:00:00:<src>. */
static void frame60(uint8_t *p, uint8_t src) {
  memset(p, 0, 60);
  memset(p, 0xff, 6);
  p[6] = 2;
  p[11] = src;
  p[12] = 0x08;
  for (int i = 14; i < 60; i++) p[i] = (uint8_t)i;
}

static void test_port_traffic(void) {
  int fds = open_fds();
  fe f;
  fe_setup(&f);
  fe_start(&f, LS_BIT(LS_VIRTIO_F_VERSION_1) | LS_BIT(LS_VIRTIO_NET_F_MRG_RXBUF) |
                   LS_BIT(LS_VHOST_USER_F_PROTOCOL_FEATURES));
  CHECK_EQ(memfd_maps(), 2);
  /* guest -> switch: header and frame in two descriptors */
  ls_vring_desc *td = fe_desc(&f, TX_DESC);
  memset(f.mem + TX_BUF, 0, 12);
  frame60(f.mem + TX_BUF + 0x100, 1);
  td[0] = (ls_vring_desc){TX_BUF, 12, LS_VRING_DESC_F_NEXT, 1};
  td[1] = (ls_vring_desc){TX_BUF + 0x100, 60, 0, 0};
  fe_offer(&f, 1, TX_AVAIL, 0);
  uint8_t got[128];
  CHECK_EQ(recv(f.spfd, got, sizeof(got), MSG_DONTWAIT), 60);
  CHECK(memcmp(got, f.mem + TX_BUF + 0x100, 60) == 0);
  CHECK_EQ(fe_used(&f, TX_USED)->idx, 1);
  CHECK_EQ(fe_used(&f, TX_USED)->ring[0].id, 0);
  CHECK(called(&f, 1));
  /* bad chains: outside the memory table, looping, wrong direction: returned, counted */
  td[2] = (ls_vring_desc){GMEM - 8, 60, 0, 0};
  td[3] = (ls_vring_desc){TX_BUF, 12, LS_VRING_DESC_F_NEXT, 3};
  td[4] = (ls_vring_desc){TX_BUF, 72, LS_VRING_DESC_F_WRITE, 0};
  fe_offer(&f, 1, TX_AVAIL, 2);
  fe_offer(&f, 1, TX_AVAIL, 3);
  fe_offer(&f, 1, TX_AVAIL, 4);
  CHECK_EQ(stat_of(f.vp, 0), 3);
  CHECK_EQ(fe_used(&f, TX_USED)->idx, 4);
  CHECK_EQ(fe_used(&f, TX_USED)->ring[1].len, 0);
  CHECK_EQ(recv(f.spfd, got, sizeof(got), MSG_DONTWAIT), -1);
  CHECK(f.vp->link_up);

  /* switch -> guest: no RX buffers yet, so the frame waits on the port's queue */
  uint8_t fr[60];
  frame60(fr, 9);
  CHECK_EQ(send(f.spfd, fr, 60, 0), 60);
  spin(&f, 5);
  CHECK_EQ(f.vp->txq_len, 1);
  CHECK_EQ(stat_of(f.vp, 1), 0);
  /* two small buffers: mergeable, the frame takes both (12 + 60 > 40) */
  ls_vring_desc *rd = fe_desc(&f, RX_DESC);
  rd[0] = (ls_vring_desc){RX_BUF, 40, LS_VRING_DESC_F_WRITE, 0};
  rd[1] = (ls_vring_desc){RX_BUF + 0x1000, 2048, LS_VRING_DESC_F_WRITE, 0};
  ls_vring_avail *ra = fe_avail(&f, RX_AVAIL);
  ra->ring[0] = 0;
  ra->ring[1] = 1;
  __atomic_store_n(&ra->idx, 2, __ATOMIC_RELEASE);
  uint64_t one = 1;
  CHECK_EQ(write(f.kick[0], &one, 8), 8);
  spin(&f, 5);
  CHECK_EQ(f.vp->txq_len, 0);
  CHECK_EQ(stat_of(f.vp, 1), 1);
  ls_vring_used *ru = fe_used(&f, RX_USED);
  CHECK_EQ(ru->idx, 2);
  CHECK_EQ(ru->ring[0].id, 0);
  CHECK_EQ(ru->ring[0].len, 40);
  CHECK_EQ(ru->ring[1].id, 1);
  CHECK_EQ(ru->ring[1].len, 32);
  CHECK_EQ(f.mem[RX_BUF + 10], 2); /* num_buffers */
  CHECK(memcmp(f.mem + RX_BUF + 12, fr, 28) == 0);
  CHECK(memcmp(f.mem + RX_BUF + 0x1000, fr + 28, 32) == 0);
  CHECK(called(&f, 0));

  /* one buffer is not enough for the next frame: it waits (nothing consumed), and goes
   * once the guest adds another */
  rd[2] = (ls_vring_desc){RX_BUF + 0x2000, 40, LS_VRING_DESC_F_WRITE, 0};
  fe_offer(&f, 0, RX_AVAIL, 2);
  CHECK_EQ(send(f.spfd, fr, 60, 0), 60);
  spin(&f, 5);
  CHECK_EQ(f.vp->txq_len, 1);
  CHECK_EQ(ru->idx, 2);
  rd[3] = (ls_vring_desc){RX_BUF + 0x3000, 2048, LS_VRING_DESC_F_WRITE, 0};
  fe_offer(&f, 0, RX_AVAIL, 3);
  CHECK_EQ(f.vp->txq_len, 0);
  CHECK_EQ(ru->idx, 4);
  CHECK_EQ(stat_of(f.vp, 1), 2);
  /* a frame larger than a whole ring of buffers can never be delivered: dropped */
  for (uint16_t i = 0; i < QSIZE; i++) {
    rd[i] = (ls_vring_desc){RX_BUF + 0x100u * i, 16, LS_VRING_DESC_F_WRITE, 0};
    ra->ring[(ra->idx + i) % QSIZE] = i;
  }
  __atomic_store_n(&ra->idx, (uint16_t)(ra->idx + QSIZE), __ATOMIC_RELEASE);
  uint8_t big[200];
  memset(big, 0, sizeof(big));
  frame60(big, 9);
  CHECK_EQ(send(f.spfd, big, sizeof(big), 0), (ssize_t)sizeof(big));
  spin(&f, 5);
  CHECK_EQ(f.vp->txq_len, 0);
  CHECK_EQ(stat_of(f.vp, 3), 1);
  CHECK_EQ(ru->idx, 4); /* the buffers are still the guest's to use */
  CHECK_EQ(send(f.spfd, fr, 60, 0), 60);
  spin(&f, 5);
  CHECK_EQ(ru->idx, 9); /* 72 bytes in 16-byte buffers: 5 of them */
  CHECK_EQ(f.mem[RX_BUF + 10], 5);

  /* a malformed message: connection closed, port down, memory released */
  uint32_t st[2] = {0, 3};
  fe_send(&f, LS_VHOST_SET_VRING_NUM, 0, st, 8, NULL, 0);
  CHECK(fe_closed_by_port(&f));
  CHECK(!f.vp->link_up);
  CHECK_EQ(stat_of(f.vp, 2), 1);
  CHECK_EQ(memfd_maps(), 1);
  close(f.sock);

  /* the next front-end is accepted; it hangs up mid-traffic (frames queued to it) */
  fe_start(&f, LS_BIT(LS_VIRTIO_F_VERSION_1) | LS_BIT(LS_VIRTIO_RING_F_EVENT_IDX) |
                   LS_BIT(LS_VHOST_USER_F_PROTOCOL_FEATURES));
  for (int i = 0; i < 5; i++) CHECK_EQ(send(f.spfd, fr, 60, 0), 60);
  spin(&f, 5);
  CHECK_EQ(f.vp->txq_len, 5);
  close(f.sock);
  f.sock = -1;
  spin(&f, 5);
  CHECK(!f.vp->link_up);
  CHECK_EQ(f.vp->txq_len, 0);
  CHECK_EQ(memfd_maps(), 1);
  fe_teardown(&f);
  CHECK_EQ(open_fds(), fds);
}

static void test_port_bad_memory(void) {
  fe f;
  fe_setup(&f);
  /* a ring outside the memory table: refused, connection closed */
  fe_start(&f, LS_BIT(LS_VIRTIO_F_VERSION_1) | LS_BIT(LS_VHOST_USER_F_PROTOCOL_FEATURES));
  uint8_t a[40];
  uint32_t idx[2] = {0, 0};
  uint64_t base = (uint64_t)(uintptr_t)f.mem;
  uint64_t addrs[4] = {base + GMEM - 64, base + RX_USED, base + RX_AVAIL, 0};
  memcpy(a, idx, 8);
  memcpy(a + 8, addrs, 32);
  fe_send(&f, LS_VHOST_SET_VRING_ADDR, 0, a, 40, NULL, 0);
  CHECK(fe_closed_by_port(&f));
  CHECK(!f.vp->link_up);
  CHECK_EQ(memfd_maps(), 1);
  close(f.sock);
  /* a memory table without its fd (QEMU without a shareable memory backend) */
  CHECK_EQ(fe_connect(&f), 0);
  uint8_t mt[8 + 32];
  uint32_t n[2] = {1, 0};
  ls_vhost_region_msg r = {0, GMEM, base, 0};
  memcpy(mt, n, 8);
  memcpy(mt + 8, &r, 32);
  fe_send(&f, LS_VHOST_SET_MEM_TABLE, 0, mt, sizeof(mt), NULL, 0);
  CHECK(fe_closed_by_port(&f));
  close(f.sock);
  /* a memory table whose fd QEMU maps private: refused (told by /proc/<peer>/maps) */
  uint8_t *priv = mmap(NULL, GMEM, PROT_READ | PROT_WRITE, MAP_PRIVATE, f.memfd, 0);
  CHECK_EQ(fe_connect(&f), 0);
  r.uva = (uint64_t)(uintptr_t)priv;
  memcpy(mt + 8, &r, 32);
  fe_send(&f, LS_VHOST_SET_MEM_TABLE, 0, mt, sizeof(mt), &f.memfd, 1);
  CHECK(fe_closed_by_port(&f));
  CHECK_EQ(memfd_maps(), 2); /* ours, and the private one: the port mapped nothing */
  munmap(priv, GMEM);
  close(f.sock);
  /* a message that needs a reply we cannot give */
  CHECK_EQ(fe_connect(&f), 0);
  fe_send(&f, LS_VHOST_GET_CONFIG, 0, NULL, 0, NULL, 0);
  CHECK(fe_closed_by_port(&f));
  close(f.sock);
  f.sock = -1;
  fe_teardown(&f);
}

/* A ring QEMU asks us to poll (SET_VRING_KICK with the "no fd" flag) is still served. */
static void test_port_polled_ring(void) {
  int fds = open_fds();
  fe f;
  fe_setup(&f);
  fe_start(&f, LS_BIT(LS_VIRTIO_F_VERSION_1) | LS_BIT(LS_VHOST_USER_F_PROTOCOL_FEATURES));
  uint64_t k = 1 | LS_VHOST_VRING_NOFD;
  fe_send(&f, LS_VHOST_SET_VRING_KICK, 0, &k, 8, NULL, 0);
  CHECK(f.vp->link_up);
  ls_vring_desc *td = fe_desc(&f, TX_DESC);
  memset(f.mem + TX_BUF, 0, 12);
  frame60(f.mem + TX_BUF + 12, 3);
  td[0] = (ls_vring_desc){TX_BUF, 72, 0, 0};
  ls_vring_avail *a = fe_avail(&f, TX_AVAIL);
  a->ring[0] = 0;
  __atomic_store_n(&a->idx, 1, __ATOMIC_RELEASE); /* no kick */
  uint8_t got[128];
  ssize_t n = -1;
  for (int i = 0; i < 200 && n < 0; i++) {
    usleep(1000);
    spin(&f, 1);
    n = recv(f.spfd, got, sizeof(got), MSG_DONTWAIT);
  }
  CHECK_EQ(n, 60);
  CHECK_EQ(fe_used(&f, TX_USED)->idx, 1);
  fe_teardown(&f); /* closes the port with the connection, maps and eventfds live */
  CHECK_EQ(open_fds(), fds);
  CHECK_EQ(memfd_maps(), 0);
}

int main(void) {
  RUN(test_header);
  RUN(test_simple_messages);
  RUN(test_mem_table);
  RUN(test_translate);
  RUN(test_chain);
  RUN(test_copy);
  RUN(test_event_idx);
  /* libuv opens a process-wide pipe with the first loop: not a port's to close */
  ls_runtime *warm = ls_runtime_new(0);
  CHECK_EQ(ls_runtime_start_inline(warm), 0);
  ls_runtime_free(warm);
  RUN(test_port_traffic);
  RUN(test_port_bad_memory);
  RUN(test_port_polled_ring);
  return CHECK_DONE();
}
