/*
 * netns.c — entering and leaving named network namespaces (see netns.h).
 */
#include "netns.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
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
