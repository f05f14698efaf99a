#define _GNU_SOURCE
#include "CChannelReference.h"

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

// Header: kind 0-7, sender 8-15, length 16-19, reserved 20-23, check 24-31,
// sequence 32-63 (as MessageHeader in Sources/InterKernel/MessageHeader.swift).
static inline uint8_t check_byte(uint64_t raw) {
    uint64_t x = raw & ~(0xFFull << 24);
    x ^= x >> 32;
    x ^= x >> 16;
    x ^= x >> 8;
    return (uint8_t)x ^ 0xA5;
}

static inline uint64_t make_header(uint8_t kind, uint8_t sender, unsigned length, uint32_t seq) {
    uint64_t body = (uint64_t)kind | (uint64_t)sender << 8 | (uint64_t)(length & 0xF) << 16 | (uint64_t)seq << 32;
    return body | (uint64_t)check_byte(body) << 24;
}

size_t cref_ring_size(unsigned slots) { return sizeof(cref_ring) + (size_t)slots * sizeof(cref_slot); }

cref_ring *cref_ring_create(unsigned slots) {
    void *memory = NULL;
    if (posix_memalign(&memory, 4096, cref_ring_size(slots)) != 0) return NULL;
    memset(memory, 0, cref_ring_size(slots));
    cref_ring *ring = memory;
    ring->send_mask = slots - 1;
    ring->recv_mask = slots - 1;
    for (unsigned i = 0; i < slots; i++) atomic_init(&ring->slots[i].header, 0);
    return ring;
}

void cref_ring_free(cref_ring *ring) { free(ring); }

int cref_try_send(cref_ring *ring, uint8_t kind, uint8_t sender, unsigned length, const uint64_t *payload) {
    uint64_t seq = ring->send_seq;
    cref_slot *slot = &ring->slots[seq & ring->send_mask];
    // Acquire: pairs with the receiver's release clear.
    if (atomic_load_explicit(&slot->header, memory_order_acquire) != 0) return 0;
    for (unsigned i = 0; i < length; i++) slot->payload[i] = payload[i];
    // Release: payload before header.
    atomic_store_explicit(&slot->header, make_header(kind, sender, length, (uint32_t)seq), memory_order_release);
    ring->send_seq = seq + 1;
    return 1;
}

int cref_try_recv(cref_ring *ring, uint8_t peer, uint8_t *kind, uint64_t *payload) {
    uint64_t seq = ring->recv_seq;
    cref_slot *slot = &ring->slots[seq & ring->recv_mask];
    // Acquire: pairs with the sender's release of the header.
    uint64_t h = atomic_load_explicit(&slot->header, memory_order_acquire);
    if (h == 0) return 0;
    unsigned length = (h >> 16) & 0xF;
    int ok = check_byte(h) == (uint8_t)(h >> 24) && (uint32_t)(h >> 32) == (uint32_t)seq
        && (uint8_t)(h >> 8) == peer && length <= 7 && ((h >> 20) & 0xF) == 0;
    if (ok) {
        for (unsigned i = 0; i < length; i++) payload[i] = slot->payload[i];
        *kind = (uint8_t)h;
    }
    // Release: payload reads before the slot is handed back.
    atomic_store_explicit(&slot->header, 0, memory_order_release);
    if (!ok) {
        ring->dropped++;
        return -1;
    }
    ring->recv_seq = seq + 1;
    ring->received++;
    return 1;
}

enum { kind_ping = 1, kind_pong = 2, spins_before_yield = 1 << 14 };

#define WAIT_UNTIL(cond)                                        \
    do {                                                        \
        unsigned spins_ = 0;                                    \
        while (!(cond)) {                                       \
            cmk_cpu_relax();                                    \
            if (++spins_ == spins_before_yield) { spins_ = 0; sched_yield(); } \
        }                                                       \
    } while (0)

uint64_t cref_rtt_initiator(cref_ring *out, cref_ring *in, uint64_t n, uint64_t *samples, uint64_t *unexpected) {
    uint64_t start = cmk_monotonic_ns();
    uint64_t wrong = 0;
    for (uint64_t token = 0; token < n; token++) {
        uint64_t ping[2] = {token, cmk_monotonic_ns()};
        WAIT_UNTIL(cref_try_send(out, kind_ping, 0, 2, ping));
        uint64_t pong[7];
        uint8_t kind = 0;
        int r;
        // As the Swift initiator: anything but this token's pong (another
        // message, a malformed line) is counted and the wait goes on.
        unsigned spins_ = 0;
        while (!((r = cref_try_recv(in, 1, &kind, pong)) == 1 && kind == kind_pong && pong[0] == token)) {
            if (r != 0) { wrong++; continue; }
            cmk_cpu_relax();
            if (++spins_ == spins_before_yield) { spins_ = 0; sched_yield(); }
        }
        if (samples) samples[token] = cmk_monotonic_ns() - pong[1];
    }
    if (unexpected) *unexpected = wrong;
    return cmk_monotonic_ns() - start;
}

void cref_rtt_responder(cref_ring *in, cref_ring *out, uint64_t n) {
    for (uint64_t i = 0; i < n; i++) {
        uint64_t ping[7];
        uint8_t kind = 0;
        int r;
        WAIT_UNTIL((r = cref_try_recv(in, 0, &kind, ping)) == 1 && kind == kind_ping);
        uint64_t pong[3] = {ping[0], ping[1], cmk_monotonic_ns()};
        WAIT_UNTIL(cref_try_send(out, kind_pong, 1, 3, pong));
    }
}

void cref_stream_send(cref_ring *ring, uint64_t n) {
    for (uint64_t token = 0; token < n; token++) {
        uint64_t payload[2] = {token, token};
        WAIT_UNTIL(cref_try_send(ring, kind_ping, 0, 2, payload));
    }
}

uint64_t cref_stream_recv(cref_ring *ring, uint64_t n) {
    uint64_t errors = 0;
    for (uint64_t expected = 0; expected < n; expected++) {
        uint64_t payload[7];
        uint8_t kind = 0;
        int r;
        // As the Swift receiver: each message (or malformed line) takes the
        // next token's place; one that is not ping(expected, expected) is an error.
        WAIT_UNTIL((r = cref_try_recv(ring, 0, &kind, payload)) != 0);
        if (r != 1 || kind != kind_ping || payload[0] != expected || payload[1] != expected) errors++;
    }
    return errors;
}
