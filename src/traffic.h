/*
 * traffic.h — background traffic generator and sink on a datagram socket.
 *
 * Owns: two small thread-backed jobs used by specs, examples and benchmarks to drive a
 * switch at full speed without Lua in the loop. A sender cycles through template frames,
 * optionally stamping a 64-bit big-endian sequence number into each, and waits for
 * writability rather than dropping (like a VM's virtio queue). A sink counts what
 * arrives, checks sequence order, and can keep a copy of every frame. Independent of the
 * switch runtime: it only needs a connected datagram file descriptor.
 *
 * Pauses: a sink records the longest gap between two consecutive arrivals (max_gap_ns).
 * With ts_offset, the sender also stamps each frame with CLOCK_MONOTONIC (64-bit
 * big-endian ns, taken when the frame is put into a send batch) and the sink measures
 * each frame's one-way latency (same host, same clock): the largest latency is the
 * longest time any frame spent between the two (queues, a stalled forwarder), not
 * counting pauses of the sender itself. The soak spec asserts on it.
 */
#ifndef LS_TRAFFIC_H
#define LS_TRAFFIC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>

typedef struct ls_traffic_result {
  uint64_t frames, bytes;
  uint64_t errors;    /* send/receive errors other than "would block" */
  int last_error;     /* errno of the last error */
  uint64_t waits;     /* sender: times it had to wait for writability */
  uint64_t in_order;  /* sink: frames whose sequence number was the next one */
  uint64_t reordered; /* sink: sequence number lower than one already seen */
  uint64_t duplicates;
  uint64_t gaps;               /* sink: sequence numbers skipped */
  uint64_t first_ns, last_ns;  /* CLOCK_MONOTONIC of first and last frame */
  uint64_t max_gap_ns;         /* sink: longest time between two consecutive arrivals */
  uint64_t max_gap_end_ns;     /* sink: CLOCK_MONOTONIC of the arrival that ended it */
  uint64_t max_latency_ns;     /* sink, with ts_offset: largest arrival - sender stamp */
  uint64_t max_latency_end_ns; /* sink, with ts_offset: when that frame arrived */
  uint64_t latency_sum_ns;     /* sink, with ts_offset: sum over the stamped frames */
  uint64_t stamped;            /* sink, with ts_offset: frames whose latency was measured */
} ls_traffic_result;

typedef struct ls_traffic_opts {
  /* sender */
  const uint8_t *const *frames; /* templates, cycled */
  const size_t *lens;
  size_t nframes;
  uint64_t count;  /* frames to send; 0 = until stopped */
  double rate;     /* frames per second; 0 = as fast as the peer takes them */
  bool random_src; /* overwrite the source MAC with a random unicast address per frame */
  uint64_t seed;   /* for random_src */
  /* both */
  uint32_t seq_offset; /* 0 = no sequence numbers */
  uint32_t ts_offset;  /* 0 = no timestamps; else where the 8-byte send time goes */
  /* sink */
  bool keep;       /* keep a copy of every frame received */
  size_t keep_max; /* bound on kept frames (default 1,000,000) */
} ls_traffic_opts;

typedef struct ls_traffic ls_traffic;

/* Start a job on fd (not closed by the job). NULL with *err = -errno. */
ls_traffic *ls_traffic_send(int fd, const ls_traffic_opts *o, int *err);
ls_traffic *ls_traffic_sink(int fd, const ls_traffic_opts *o, int *err);
/* Ask the job to stop (a sender stops sending, a sink stops receiving). */
void ls_traffic_stop(ls_traffic *t);
/* Has the job finished by itself (a sender that sent count frames or failed)? */
bool ls_traffic_done(ls_traffic *t);
/* Frames so far (approximate while running). */
uint64_t ls_traffic_progress(ls_traffic *t);
/* Wait for the thread to end (after stop, or a sender's count) and get the result. */
void ls_traffic_join(ls_traffic *t, ls_traffic_result *out);
/* Kept frames, valid until ls_traffic_free: n frames, data[i] of len[i] bytes. */
size_t ls_traffic_kept(ls_traffic *t, const uint8_t *const **data, const uint32_t **len);
void ls_traffic_free(ls_traffic *t);

#endif
