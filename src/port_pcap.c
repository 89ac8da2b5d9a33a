/*
 * port_pcap.c — the "pcap" port kind: an output-only port that writes every frame the
 * switch sends it into a capture file, for Wireshark, tshark and tcpdump.
 *
 * Owns: the capture file (create, write, cut back after a failed write, rotate, close)
 * and its libpcap writer. The file is classic pcap (libpcap's pcap_dump), link type
 * Ethernet, with nanosecond timestamps (magic 0xa1b23c4d): the CLOCK_REALTIME time at
 * which the data plane wrote the frame. libpcap 1.10 has no pcapng writer, so there is
 * no pcapng format here.
 *
 * The port never receives and is never polled: it has no libuv handle at all. Its link
 * is up from attach on. Frames reach it like any port (flooded, or unicast to a MAC the
 * FDB puts on it) and wait on its queue until the end of the batch; the kind's flush
 * then writes them all through stdio (a 256 KiB buffer, so a batch is usually one
 * write()) and flushes once (pcap_dump_flush), so a reader sees complete frames at the
 * end of every batch. It never waits for the disk to become "writable": a regular file
 * always is, which is why the path must be a regular file — a FIFO could block the data
 * plane on a slow reader. It takes no offloads (ls_port.offloads = false): the switch
 * completes checksums and segments TSO frames before they get here, so the capture
 * shows what a peer without offloads receives.
 *
 * Counting. A frame is counted in tx_frames/tx_bytes (its full length, even when
 * snaplen keeps less) once the flush that wrote it succeeded. The file size is tracked
 * exactly (24-byte file header, 16-byte record header + kept bytes per frame):
 *  - max_size with rotate = 0: the first frame that would take the file past max_size
 *    ends the capture; it and every later frame are dropped as capture_full, so the
 *    file holds a gap-free prefix of the traffic and never exceeds max_size.
 *  - max_size with rotate = N: that frame starts a new file instead, like tcpdump -C/-W
 *    but with logrotate names: path is always the newest, path.1 the previous one, ...,
 *    path.N the oldest; older ones are overwritten. A frame larger than an empty file
 *    allows is dropped as capture_full.
 *
 * Errors. A failed write (ENOSPC, EFBIG, EIO) loses the frames of that flush: they
 * are counted as tx_error, the stdio buffer is discarded and the file is cut back to the
 * end of the last complete frame, so it stays readable; one "error" event (where "tx")
 * reports the first failure of a run, and the next batch simply tries again, so the
 * capture resumes when space comes back. If the file cannot be cut back, or a rotation
 * cannot rename or create a file, the file is unusable: the port reports the error and
 * goes down for good (link down, reason "error"), and the switch stops forwarding to it.
 *
 * Threads: the constructor (control thread) creates the file and writes its header, so
 * a bad path is reported to the caller; from attach on only the data plane touches the
 * file (rotation opens files on the data-plane thread, once per file).
 */
#include "port_pcap.h"

#include <errno.h>
#include <fcntl.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PCAP_REC_HDR 16         /* a record header in the file (struct pcap_sf_pkthdr) */
#define PCAP_IOBUF (256 * 1024) /* stdio buffer: a batch of full-size frames in one write */

typedef struct pcap_port {
  ls_port base;
  ls_pcap_options o;
  char path[LS_PCAP_PATH_MAX + 1];
  pcap_t *pcap;        /* a "dead" handle: link type, snaplen, timestamp precision */
  pcap_dumper_t *dump; /* the current file; NULL once closed or unusable */
  FILE *fp;            /* the same file (pcap_dump_file) */
  char *iobuf;
  uint64_t hdr;  /* size of an empty file (the file header) */
  uint64_t off;  /* size of the file including what stdio still holds */
  uint64_t good; /* size of the file after the last successful flush */
  bool full;     /* rotate = 0 and max_size reached: the capture has ended */
  bool failing;  /* the last flush failed (one error event per run of failures) */
  bool created;  /* the constructor created the file (removed if the port never starts) */
  bool started;  /* attached */
} pcap_port;

static pcap_port *C(ls_port *p) {
  return (pcap_port *)p;
}

/* ---- files ------------------------------------------------------------------------------- */

static void name_of(const pcap_port *c, uint32_t i, char *out, size_t len) {
  if (i == 0)
    snprintf(out, len, "%s", c->path);
  else
    snprintf(out, len, "%s.%u", c->path, i);
}

/* Create (or truncate) the file at c->path and write the pcap file header. On failure
 * nothing is left open, and a file this call created is removed. *created tells whether
 * the file is new. */
static int open_file(pcap_port *c, bool *created, char *where, size_t wlen) {
  struct stat st;
  bool existed = stat(c->path, &st) == 0;
  if (existed && !S_ISREG(st.st_mode)) {
    snprintf(where, wlen, "%s is not a regular file", c->path);
    return -EINVAL;
  }
  /* O_NONBLOCK: should the path turn into a FIFO under us, fail rather than block. */
  int fd = open(c->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0644);
  if (fd < 0) {
    int r = -errno;
    snprintf(where, wlen, "open %s", c->path);
    return r;
  }
  int r = 0;
  FILE *fp = NULL;
  if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
    r = -EINVAL;
    snprintf(where, wlen, "%s is not a regular file", c->path);
    goto fail;
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  fp = fdopen(fd, "wb");
  if (!fp) {
    r = -errno;
    snprintf(where, wlen, "fdopen %s", c->path);
    goto fail;
  }
  fd = -1; /* owned by fp */
  setvbuf(fp, c->iobuf, _IOFBF, PCAP_IOBUF);
  pcap_dumper_t *d = pcap_dump_fopen(c->pcap, fp); /* writes the file header */
  if (!d) {
    r = -EINVAL;
    snprintf(where, wlen, "pcap_dump_fopen %s: %s", c->path, pcap_geterr(c->pcap));
    goto fail;
  }
  if (pcap_dump_flush(d) < 0) {
    r = errno ? -errno : -EIO;
    snprintf(where, wlen, "write %s", c->path);
    __fpurge(fp);
    pcap_dump_close(d); /* closes fp */
    fp = NULL;
    goto fail;
  }
  c->dump = d;
  c->fp = fp;
  c->hdr = c->off = c->good = (uint64_t)pcap_dump_ftell64(d);
  if (created) *created = !existed;
  return 0;
fail:
  if (fp) fclose(fp);
  if (fd >= 0) close(fd);
  if (!existed) unlink(c->path);
  return r;
}

static void close_file(pcap_port *c) {
  if (!c->dump) return;
  __fpurge(c->fp); /* every successful flush left it empty; after a failure, drop it */
  pcap_dump_close(c->dump);
  c->dump = NULL;
  c->fp = NULL;
}

/* ---- data plane ---------------------------------------------------------------------------- */

/* The file cannot be written any more: report, and take the port down for good. */
static void unusable(pcap_port *c, int err) {
  ls_port *p = &c->base;
  close_file(c);
  ls_port_error(p, err, LS_REASON_TX);
  if (p->txq_len) ls_port_txq_drop(p, p->txq_len, &p->st.drops.tx_error);
  ls_port_set_link(p, false, LS_REASON_ERROR);
}

/* Drop the frame at the head of the queue as capture_full. */
static void drop_full(ls_port *p) {
  ls_port_txq_drop(p, 1, &p->st.drops.capture_full);
}

/* The first n queued frames are in the stdio buffer (or written): flush them to the
 * file. err is an errno already seen while writing them (0: none). On success they are
 * counted as sent. On failure every frame still queued is dropped as tx_error, the file
 * is cut back to its last complete frame, and false is returned. */
static bool commit(pcap_port *c, uint32_t n, int err) {
  ls_port *p = &c->base;
  if (n == 0 && err == 0) return true;
  if (err == 0 && pcap_dump_flush(c->dump) < 0) err = errno ? errno : EIO;
  if (err == 0) {
    c->good = c->off;
    c->failing = false;
    ls_port_txq_sent(p, n);
    return true;
  }
  /* Discard what stdio still holds, then cut the file back to its last complete frame. */
  __fpurge(c->fp);
  clearerr(c->fp);
  if (fseeko(c->fp, (off_t)c->good, SEEK_SET) < 0 || ftruncate(fileno(c->fp), (off_t)c->good) < 0) {
    unusable(c, -errno);
    return false;
  }
  c->off = c->good;
  ls_port_txq_drop(p, p->txq_len, &p->st.drops.tx_error);
  if (!c->failing) ls_port_error(p, -err, LS_REASON_TX);
  c->failing = true;
  return false;
}

/* The current file is complete: path.N-1 -> path.N, ..., path -> path.1, new path. */
static bool rotate_files(pcap_port *c) {
  close_file(c);
  char from[LS_PCAP_PATH_MAX + 16], to[LS_PCAP_PATH_MAX + 16];
  for (uint32_t i = c->o.rotate; i > 0; i--) {
    name_of(c, i - 1, from, sizeof(from));
    name_of(c, i, to, sizeof(to));
    if (rename(from, to) < 0 && errno != ENOENT) { /* ENOENT: not there (yet) */
      unusable(c, -errno);
      return false;
    }
  }
  char where[LS_PCAP_PATH_MAX + 64];
  int r = open_file(c, NULL, where, sizeof(where));
  if (r < 0) {
    unusable(c, r);
    return false;
  }
  return true;
}

static void pcap_flush(ls_port *p) {
  pcap_port *c = C(p);
  uint32_t n = 0; /* frames written to stdio since the last commit */
  int err = 0;
  while (c->dump && n < p->txq_len) {
    ls_buf *b = p->txq[(p->txq_head + n) & p->txq_mask];
    uint32_t caplen = b->len < c->o.snaplen ? b->len : c->o.snaplen;
    uint64_t rec = PCAP_REC_HDR + (uint64_t)caplen;
    if (c->o.max_size && (c->full || c->off + rec > c->o.max_size)) {
      /* Earlier frames first: the queue is released in order. */
      if (!commit(c, n, 0)) return;
      n = 0;
      if (c->o.rotate && c->off > c->hdr) {
        if (!rotate_files(c)) return;
        continue; /* this frame goes into the new file */
      }
      if (!c->o.rotate) c->full = true;
      drop_full(p);
      continue;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct pcap_pkthdr h;
    h.ts.tv_sec = ts.tv_sec;
    h.ts.tv_usec = (suseconds_t)ts.tv_nsec; /* nanoseconds: the file says so in its magic */
    h.caplen = caplen;
    h.len = b->len;
    pcap_dump((u_char *)c->dump, &h, ls_buf_frame(b));
    n++;
    c->off += rec;
    if (ferror(c->fp)) {
      err = errno ? errno : EIO;
      break;
    }
  }
  if (c->dump) commit(c, n, err);
}

static int pcap_attach(ls_port *p) {
  C(p)->started = true;
  p->link_up = true; /* nothing to wait for */
  return 0;
}

static void pcap_detach(ls_port *p) {
  close_file(C(p));
  ls_port_release(p); /* no libuv handle ever referred to it */
}

static void pcap_destroy(ls_port *p) {
  pcap_port *c = C(p);
  bool remove = c->dump && c->created && !c->started;
  close_file(c);
  if (remove) unlink(c->path); /* never attached: leave nothing behind */
  if (c->pcap) pcap_close(c->pcap);
  free(c->iobuf);
  free(c);
}

static void pcap_describe(ls_port *p, ls_port_info *o) {
  snprintf(o->path, sizeof(o->path), "%s", C(p)->path);
}

static const ls_port_ops pcap_ops = {
    .kind = "pcap",
    .attach = pcap_attach,
    .flush = pcap_flush,
    .detach = pcap_detach,
    .destroy = pcap_destroy,
    .describe = pcap_describe,
};

/* ---- control plane ------------------------------------------------------------------------- */

ls_port *ls_port_pcap_new(ls_runtime *rt, const ls_port_config *cfg, const ls_pcap_options *o,
                          int *err, char *where, size_t wlen) {
  size_t plen = o->path ? strlen(o->path) : 0;
  if (plen == 0 || plen > LS_PCAP_PATH_MAX || o->snaplen < LS_PCAP_SNAPLEN_MIN ||
      o->snaplen > LS_PCAP_SNAPLEN_MAX || (o->max_size && o->max_size < LS_PCAP_MAX_SIZE_MIN) ||
      o->rotate > LS_PCAP_ROTATE_MAX || (o->rotate && !o->max_size)) {
    *err = -EINVAL;
    snprintf(where, wlen, "pcap options");
    return NULL;
  }
  pcap_port *c = calloc(1, sizeof(*c));
  if (!c) {
    *err = -ENOMEM;
    return NULL;
  }
  memcpy(c->path, o->path, plen + 1);
  c->o = *o;
  c->o.path = c->path;
  int r = ls_port_init(&c->base, &pcap_ops, rt, cfg);
  if (r) {
    free(c);
    *err = r;
    return NULL;
  }
  c->base.offloads = false; /* a capture shows complete checksums and real segments */
  c->iobuf = malloc(PCAP_IOBUF);
  c->pcap =
      pcap_open_dead_with_tstamp_precision(DLT_EN10MB, (int)o->snaplen, PCAP_TSTAMP_PRECISION_NANO);
  if (!c->iobuf || !c->pcap) {
    r = -ENOMEM;
    snprintf(where, wlen, "pcap");
    goto fail;
  }
  r = open_file(c, &c->created, where, wlen);
  if (r) goto fail;
  return &c->base;
fail:
  ls_port_fini(&c->base);
  pcap_destroy(&c->base);
  *err = r;
  return NULL;
}
