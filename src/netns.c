/*
 * netns.c — entering and leaving named network namespaces, and creating, deleting and
 * configuring many of them at once for labs (see netns.h).
 */
#include "netns.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <stdint.h>
#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

bool ls_netns_name_ok(const char *name) {
  size_t n = strlen(name);
  return n > 0 && n < 200 && !strchr(name, '/') && strcmp(name, ".") && strcmp(name, "..");
}

int ls_netns_enter(const char *name, int *saved) {
  *saved = -1;
  if (!name || !*name) return 0;
  if (!ls_netns_name_ok(name)) return -EINVAL;
  char path[256];
  snprintf(path, sizeof(path), "/run/netns/%s", name);
  int target = open(path, O_RDONLY | O_CLOEXEC);
  if (target < 0) return -errno;
  int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (self < 0) {
    int e = -errno;
    close(target);
    return e;
  }
  if (setns(target, CLONE_NEWNET) < 0) {
    int e = -errno;
    close(target);
    close(self);
    return e;
  }
  close(target);
  *saved = self;
  return 0;
}

void ls_netns_leave(int saved) {
  if (saved < 0) return;
  if (setns(saved, CLONE_NEWNET) < 0) {
    /* Cannot happen for a namespace we were just in; nothing sensible to do but report. */
    perror("luaswitch: setns back");
  }
  close(saved);
}

int ls_netns_move_link(int ifindex, const char *name) {
  if (!ls_netns_name_ok(name)) return -EINVAL;
  char path[256];
  snprintf(path, sizeof(path), "/run/netns/%s", name);
  int nsfd = open(path, O_RDONLY | O_CLOEXEC);
  if (nsfd < 0) return -errno;
  int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (s < 0) {
    int e = -errno;
    close(nsfd);
    return e;
  }
  struct {
    struct nlmsghdr nh;
    struct ifinfomsg ifi;
    struct rtattr rta;
    uint32_t fd;
  } req;
  memset(&req, 0, sizeof(req));
  req.nh.nlmsg_len = sizeof(req);
  req.nh.nlmsg_type = RTM_NEWLINK;
  req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  req.nh.nlmsg_seq = 1;
  req.ifi.ifi_family = AF_UNSPEC;
  req.ifi.ifi_index = ifindex;
  req.rta.rta_type = IFLA_NET_NS_FD;
  req.rta.rta_len = RTA_LENGTH(sizeof(uint32_t));
  req.fd = (uint32_t)nsfd;
  int r = 0;
  if (send(s, &req, sizeof(req), 0) < 0) {
    r = -errno;
  } else {
    union {
      struct nlmsghdr nh;
      char buf[512];
    } ack;
    ssize_t n = recv(s, &ack, sizeof(ack), 0);
    if (n < 0)
      r = -errno;
    else if (n < (ssize_t)NLMSG_LENGTH(sizeof(struct nlmsgerr)) || ack.nh.nlmsg_type != NLMSG_ERROR)
      r = -EPROTO;
    else
      r = ((struct nlmsgerr *)NLMSG_DATA(&ack.nh))->error;
  }
  close(s);
  close(nsfd);
  return r;
}

/* ---- many namespaces at once ------------------------------------------------------------- */

#define NETNS_DIR "/run/netns"

/* /run/netns exists and is a shared mount point, so that a namespace bound there is seen
 * (and can be unmounted) from every mount namespace, as `ip netns add` arranges it. */
static int netns_dir_ready(void) {
  if (mkdir(NETNS_DIR, 0755) < 0 && errno != EEXIST) return -errno;
  if (mount("", NETNS_DIR, "none", MS_SHARED | MS_REC, NULL) == 0) return 0;
  if (errno != EINVAL) return -errno;
  /* not a mount point yet: make it one */
  if (mount(NETNS_DIR, NETNS_DIR, "none", MS_BIND | MS_REC, NULL) < 0) return -errno;
  if (mount("", NETNS_DIR, "none", MS_SHARED | MS_REC, NULL) < 0) return -errno;
  return 0;
}

static int lo_up(void) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return -errno;
  struct ifreq ifr;
  memset(&ifr, 0, sizeof(ifr));
  strcpy(ifr.ifr_name, "lo");
  int r = ioctl(s, SIOCGIFFLAGS, &ifr);
  if (r == 0) {
    ifr.ifr_flags |= IFF_UP;
    r = ioctl(s, SIOCSIFFLAGS, &ifr);
  }
  r = r < 0 ? -errno : 0;
  close(s);
  return r;
}

/* One namespace: what `ip netns add` does. Runs on a worker thread, which it leaves in
 * the new namespace (the thread ends after its share). */
static int add_one(const char *name) {
  if (!ls_netns_name_ok(name)) return -EINVAL;
  char path[256];
  snprintf(path, sizeof(path), NETNS_DIR "/%s", name);
  int fd = open(path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
  if (fd < 0) return -errno;
  close(fd);
  int r = 0;
  if (unshare(CLONE_NEWNET) < 0 ||
      mount("/proc/thread-self/ns/net", path, "none", MS_BIND, NULL) < 0) {
    r = -errno;
    unlink(path);
    return r;
  }
  r = lo_up();
  if (r) {
    umount2(path, MNT_DETACH);
    unlink(path);
  }
  return r;
}

static int del_one(const char *name) {
  if (!ls_netns_name_ok(name)) return -EINVAL;
  char path[256];
  snprintf(path, sizeof(path), NETNS_DIR "/%s", name);
  int r = umount2(path, MNT_DETACH) < 0 ? -errno : 0;
  if (unlink(path) < 0 && r == 0) r = -errno;
  return r;
}

typedef struct batch {
  const char *const *names;
  int *errs;
  uint32_t n;
  _Atomic uint32_t next;
  int (*fn)(const char *name);
} batch;

static void *batch_worker(void *arg) {
  batch *b = arg;
  for (;;) {
    uint32_t i = atomic_fetch_add(&b->next, 1);
    if (i >= b->n) return NULL;
    b->errs[i] = b->fn(b->names[i]);
  }
}

static uint32_t run_batch(const char *const *names, uint32_t n, int *errs, unsigned threads,
                          int (*fn)(const char *)) {
  batch b = {.names = names, .errs = errs, .n = n, .fn = fn};
  atomic_init(&b.next, 0);
  if (threads < 1) threads = 1;
  if (threads > 64) threads = 64;
  if (threads > n) threads = n ? n : 1;
  pthread_t tids[64];
  unsigned started = 0;
  for (unsigned t = 0; t < threads; t++)
    if (pthread_create(&tids[started], NULL, batch_worker, &b) == 0) started++;
  if (started == 0) { /* no thread: on this one would leave it in the last namespace */
    for (uint32_t i = 0; i < n; i++) errs[i] = -EAGAIN;
    return n;
  }
  for (unsigned t = 0; t < started; t++) pthread_join(tids[t], NULL);
  uint32_t failed = 0;
  for (uint32_t i = 0; i < n; i++) failed += errs[i] != 0;
  return failed;
}

uint32_t ls_netns_add_many(const char *const *names, uint32_t n, int *errs, unsigned threads) {
  int r = netns_dir_ready();
  if (r) {
    for (uint32_t i = 0; i < n; i++) errs[i] = r;
    return n;
  }
  return run_batch(names, n, errs, threads, add_one);
}

uint32_t ls_netns_del_many(const char *const *names, uint32_t n, int *errs, unsigned threads) {
  return run_batch(names, n, errs, threads, del_one);
}

uint32_t ls_netns_kill_all(const char *const *names, uint32_t n) {
  struct stat *ids = calloc(n ? n : 1, sizeof(*ids));
  if (!ids) return 0;
  uint32_t have = 0;
  for (uint32_t i = 0; i < n; i++) {
    char path[256];
    if (!ls_netns_name_ok(names[i])) continue;
    snprintf(path, sizeof(path), NETNS_DIR "/%s", names[i]);
    if (stat(path, &ids[have]) == 0) have++;
  }
  uint32_t killed = 0;
  DIR *d = have ? opendir("/proc") : NULL;
  struct dirent *e;
  pid_t self = getpid();
  while (d && (e = readdir(d))) {
    char *end;
    long pid = strtol(e->d_name, &end, 10);
    if (*end || pid <= 0 || pid == self) continue;
    char path[64];
    struct stat st;
    snprintf(path, sizeof(path), "/proc/%ld/ns/net", pid);
    if (stat(path, &st) < 0) continue;
    for (uint32_t i = 0; i < have; i++)
      if (st.st_ino == ids[i].st_ino && st.st_dev == ids[i].st_dev) {
        if (kill((pid_t)pid, SIGKILL) == 0) killed++;
        break;
      }
  }
  if (d) closedir(d);
  free(ids);
  return killed;
}

/* rtnetlink request with an ack: 0 or the kernel's -errno. */
static int rtnl_talk(void *req, size_t len) {
  int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (s < 0) return -errno;
  int r = 0;
  if (send(s, req, len, 0) < 0) {
    r = -errno;
  } else {
    union {
      struct nlmsghdr nh;
      char buf[1024];
    } ack;
    ssize_t got = recv(s, &ack, sizeof(ack), 0);
    if (got < 0)
      r = -errno;
    else if (got < (ssize_t)NLMSG_LENGTH(sizeof(struct nlmsgerr)) ||
             ack.nh.nlmsg_type != NLMSG_ERROR)
      r = -EPROTO;
    else
      r = ((struct nlmsgerr *)NLMSG_DATA(&ack.nh))->error;
  }
  close(s);
  return r;
}

static void add_attr(struct nlmsghdr *nh, unsigned short type, const void *data, size_t len) {
  struct rtattr *rta = (struct rtattr *)((char *)nh + NLMSG_ALIGN(nh->nlmsg_len));
  rta->rta_type = type;
  rta->rta_len = (unsigned short)RTA_LENGTH(len);
  memcpy(RTA_DATA(rta), data, len);
  nh->nlmsg_len = NLMSG_ALIGN(nh->nlmsg_len) + RTA_ALIGN(rta->rta_len);
}

int ls_netns_addr_add(const char *name, const char *ifname, int family, const void *addr,
                      unsigned prefix) {
  if ((family != AF_INET && family != AF_INET6) || prefix > (family == AF_INET ? 32u : 128u))
    return -EINVAL;
  int saved;
  int r = ls_netns_enter(name, &saved);
  if (r) return r;
  unsigned idx = if_nametoindex(ifname);
  if (!idx) {
    r = -errno;
    ls_netns_leave(saved);
    return r;
  }
  struct {
    struct nlmsghdr nh;
    struct ifaddrmsg ifa;
    char attrs[128];
  } req;
  memset(&req, 0, sizeof(req));
  req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifaddrmsg));
  req.nh.nlmsg_type = RTM_NEWADDR;
  req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
  req.nh.nlmsg_seq = 1;
  req.ifa.ifa_family = (unsigned char)family;
  req.ifa.ifa_prefixlen = (unsigned char)prefix;
  req.ifa.ifa_index = idx;
  req.ifa.ifa_flags = family == AF_INET6 ? IFA_F_NODAD : 0;
  size_t alen = family == AF_INET ? 4 : 16;
  add_attr(&req.nh, IFA_LOCAL, addr, alen);
  add_attr(&req.nh, IFA_ADDRESS, addr, alen);
  r = rtnl_talk(&req, req.nh.nlmsg_len);
  ls_netns_leave(saved);
  return r;
}

int ls_netns_link_mac(const char *name, const char *ifname, uint8_t mac[6]) {
  int saved;
  int r = ls_netns_enter(name, &saved);
  if (r) return r;
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) {
    r = -errno;
  } else {
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
    if (ioctl(s, SIOCGIFHWADDR, &ifr) < 0)
      r = -errno;
    else
      memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
    close(s);
  }
  ls_netns_leave(saved);
  return r;
}

int ls_netns_neigh(const char *name, const char *ifname, int family, const void *addrs,
                   const uint8_t *macs, uint32_t n, bool del) {
  if (family != AF_INET && family != AF_INET6) return -EINVAL;
  size_t alen = family == AF_INET ? 4 : 16;
  int saved;
  int r = ls_netns_enter(name, &saved);
  if (r) return r;
  unsigned idx = if_nametoindex(ifname);
  int s = idx ? socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE) : -1;
  if (!idx || s < 0) {
    r = -errno;
    ls_netns_leave(saved);
    return r;
  }
  enum { CHUNK = 64 }; /* the acks of a chunk must fit the socket's receive buffer */
  size_t msg = NLMSG_ALIGN(NLMSG_LENGTH(sizeof(struct ndmsg))) + RTA_SPACE(16) + RTA_SPACE(6);
  char *buf = malloc(msg * CHUNK);
  if (!buf) r = -ENOMEM;
  uint32_t seq = 0;
  for (uint32_t at = 0; !r && at < n; at += CHUNK) {
    uint32_t k = n - at < CHUNK ? n - at : CHUNK;
    size_t len = 0;
    for (uint32_t i = 0; i < k; i++) {
      struct nlmsghdr *nh = (struct nlmsghdr *)(buf + len);
      memset(nh, 0, msg);
      nh->nlmsg_len = NLMSG_LENGTH(sizeof(struct ndmsg));
      nh->nlmsg_type = del ? RTM_DELNEIGH : RTM_NEWNEIGH;
      nh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | (del ? 0 : NLM_F_CREATE | NLM_F_REPLACE);
      nh->nlmsg_seq = ++seq;
      struct ndmsg *nd = NLMSG_DATA(nh);
      nd->ndm_family = (unsigned char)family;
      nd->ndm_ifindex = (int)idx;
      nd->ndm_state = NUD_PERMANENT;
      add_attr(nh, NDA_DST, (const char *)addrs + (size_t)(at + i) * alen, alen);
      add_attr(nh, NDA_LLADDR, macs + (size_t)(at + i) * 6, 6);
      len += NLMSG_ALIGN(nh->nlmsg_len);
    }
    if (send(s, buf, len, 0) < 0) {
      r = -errno;
      break;
    }
    /* one ack per request; the first error is the answer */
    uint32_t acked = 0;
    while (acked < k) {
      char in[16384];
      ssize_t got = recv(s, in, sizeof(in), 0);
      if (got < 0) {
        r = -errno;
        break;
      }
      for (struct nlmsghdr *nh = (struct nlmsghdr *)in; NLMSG_OK(nh, (size_t)got);
           nh = NLMSG_NEXT(nh, got)) {
        if (nh->nlmsg_type != NLMSG_ERROR) continue;
        acked++;
        int e = ((struct nlmsgerr *)NLMSG_DATA(nh))->error;
        if (e && !r && !(del && e == -ENOENT)) r = e; /* deleting what is gone is fine */
      }
    }
  }
  free(buf);
  close(s);
  ls_netns_leave(saved);
  return r;
}

int ls_netns_sysctl(const char *name, const char *key, const char *value) {
  if (!key[0] || strstr(key, "..") || key[0] == '/') return -EINVAL;
  int saved;
  int r = ls_netns_enter(name, &saved);
  if (r) return r;
  char path[512];
  snprintf(path, sizeof(path), "/proc/sys/%s", key);
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    r = -errno;
  } else {
    size_t len = strlen(value);
    if (write(fd, value, len) != (ssize_t)len) r = errno ? -errno : -EIO;
    close(fd);
  }
  ls_netns_leave(saved);
  return r;
}

int ls_netns_route_add(const char *name, int family, const void *dst, unsigned prefix,
                       const void *gw) {
  if ((family != AF_INET && family != AF_INET6) || prefix > (family == AF_INET ? 32u : 128u))
    return -EINVAL;
  size_t alen = family == AF_INET ? 4 : 16;
  struct {
    struct nlmsghdr nh;
    struct rtmsg rt;
    char attrs[128];
  } req;
  memset(&req, 0, sizeof(req));
  req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(struct rtmsg));
  req.nh.nlmsg_type = RTM_NEWROUTE;
  req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
  req.nh.nlmsg_seq = 1;
  req.rt.rtm_family = (unsigned char)family;
  req.rt.rtm_dst_len = (unsigned char)prefix;
  req.rt.rtm_table = RT_TABLE_MAIN;
  req.rt.rtm_protocol = RTPROT_BOOT; /* as `ip route add` */
  req.rt.rtm_scope = RT_SCOPE_UNIVERSE;
  req.rt.rtm_type = RTN_UNICAST;
  if (prefix) add_attr(&req.nh, RTA_DST, dst, alen);
  add_attr(&req.nh, RTA_GATEWAY, gw, alen);
  int saved;
  int r = ls_netns_enter(name, &saved);
  if (r) return r;
  r = rtnl_talk(&req, req.nh.nlmsg_len);
  ls_netns_leave(saved);
  return r;
}
