// The C reference for `cmk bench channel`: the same cache-line ring protocol
// as Sources/InterKernel/Ring.swift (64-byte slots, 7 payload words, header
// word 7 written last with release, receiver clears it with release, the same
// header format with check byte and sequence), written in plain C11 atomics.
// Clock and spin hint are the hosted runtime's (CHosted); threads are started
// and pinned by the Swift side (Hosted.PinnedThreads).
// Host only: no bare-metal target depends on this.
#ifndef CMK_CCHANNELREFERENCE_H
#define CMK_CCHANNELREFERENCE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "CHosted.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cref_slot {
    uint64_t payload[7];
    _Atomic uint64_t header;
} __attribute__((aligned(64))) cref_slot;

// Same memory layout as a ring in the Swift channel region (ChannelLayout):
// sender's line at 0, receiver's lines at 64 (128 bytes), slots from 256, so
// the benchmark compares code, not cache-line placement.
typedef struct cref_ring {
    // Sender's line.
    uint64_t send_seq __attribute__((aligned(64)));
    uint64_t send_mask;
    // Receiver's lines.
    uint64_t recv_seq __attribute__((aligned(64)));
    uint64_t recv_mask;
    uint64_t received;
    uint64_t dropped;
    cref_slot slots[] __attribute__((aligned(256)));
} cref_ring;

/// Bytes for a ring of `slots` (a power of two) slots.
size_t cref_ring_size(unsigned slots);
/// Allocate (page aligned) and initialise a ring; free with cref_ring_free.
cref_ring *cref_ring_create(unsigned slots);
void cref_ring_free(cref_ring *ring);

/// 1 if sent, 0 if the ring is full.
int cref_try_send(cref_ring *ring, uint8_t kind, uint8_t sender, unsigned length, const uint64_t *payload);
/// 1 and the message in *kind/payload, 0 if empty, -1 if a malformed line was dropped.
int cref_try_recv(cref_ring *ring, uint8_t peer, uint8_t *kind, uint64_t *payload);

/// Round trips: the initiator sends ping(token, t) on `out` and waits for the
/// pong on `in`; the responder answers. `samples` (n entries, may be NULL)
/// gets each round trip in ns; `*unexpected` (may be NULL) the replies that
/// were not the awaited pong. Returns total ns for the n round trips.
uint64_t cref_rtt_initiator(cref_ring *out, cref_ring *in, uint64_t n, uint64_t *samples, uint64_t *unexpected);
void cref_rtt_responder(cref_ring *in, cref_ring *out, uint64_t n);
/// One-way streaming of n messages; the receiver returns how many were out of
/// order, of the wrong kind or malformed (0 when all is well).
void cref_stream_send(cref_ring *ring, uint64_t n);
uint64_t cref_stream_recv(cref_ring *ring, uint64_t n);

#ifdef __cplusplus
}
#endif
#endif
