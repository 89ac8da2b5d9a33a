/*
 * port_pcap.h — constructor of the "pcap" port kind: an output-only port that writes
 * every frame the switch sends it into a capture file (see port_pcap.c).
 *
 * Owns: nothing beyond the declarations and the limits of the options.
 */
#ifndef LS_PORT_PCAP_H
#define LS_PORT_PCAP_H

#include <stddef.h>
#include <stdint.h>

#include "port.h"

#define LS_PCAP_SNAPLEN_DEFAULT 65535
#define LS_PCAP_SNAPLEN_MIN 14     /* an Ethernet header */
#define LS_PCAP_SNAPLEN_MAX 262144 /* libpcap's and tcpdump's largest */
/* Smallest max_size: the file header (24 bytes), one record header (16) and one
 * minimum-size Ethernet frame (60 bytes, without FCS). */
#define LS_PCAP_MAX_SIZE_MIN 100
#define LS_PCAP_ROTATE_MAX 1000
/* Longest path: it must fit ls_port_info.path (p:info().path). */
#define LS_PCAP_PATH_MAX (sizeof(((ls_port_info *)0)->path) - 1)

typedef struct ls_pcap_options {
  const char *path;  /* the capture file; created or truncated */
  uint32_t snaplen;  /* bytes of each frame kept */
  uint64_t max_size; /* cap on one file's size in bytes, header included; 0: none */
  uint32_t rotate;   /* with max_size: older files kept as path.1 ... path.N; 0: stop */
} ls_pcap_options;

/* Control plane: create the file and write its header. NULL with *err = -errno and the
 * failing step in where ("open /tmp/x/cap.pcap"); nothing is left on disk then. */
ls_port *ls_port_pcap_new(ls_runtime *rt, const ls_port_config *cfg, const ls_pcap_options *o,
                          int *err, char *where, size_t wlen);

#endif
