// See CLockReference.h. Orderings are those of Sources/BigLock (the reasons
// are written there, once); the algorithms are cited there too.
#include "CLockReference.h"
#include "CHosted.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define WORD(lock, i, stride) ((uint64_t *)((char *)(lock) + (size_t)(i) * (stride)))

// ---- ticket: block 0 = next, block 1 = serving
size_t cmk_c_ticket_bytes(int cores, size_t stride) { (void)cores; return 2 * stride; }
void cmk_c_ticket_format(void *lock, int cores, size_t stride) {
    memset(lock, 0, cmk_c_ticket_bytes(cores, stride));
}
static inline int ticket_acquire(void *lock, size_t stride) {
    uint64_t ticket = __atomic_fetch_add(WORD(lock, 0, stride), 1, __ATOMIC_RELAXED);
    if (__atomic_load_n(WORD(lock, 1, stride), __ATOMIC_ACQUIRE) == ticket) return 0;
    do { cmk_cpu_relax(); } while (__atomic_load_n(WORD(lock, 1, stride), __ATOMIC_ACQUIRE) != ticket);
    return 1;
}
static inline void ticket_release(void *lock, size_t stride) {
    uint64_t now = __atomic_load_n(WORD(lock, 1, stride), __ATOMIC_RELAXED);
    __atomic_store_n(WORD(lock, 1, stride), now + 1, __ATOMIC_RELEASE);
}
int cmk_c_ticket_acquire(void *lock, int cores, size_t stride, int core) {
    (void)cores; (void)core; return ticket_acquire(lock, stride);
}
void cmk_c_ticket_release(void *lock, int cores, size_t stride, int core) {
    (void)cores; (void)core; ticket_release(lock, stride);
}

// ---- MCS: block 0 = tail; node n (1-based): block 2n-1 = next, block 2n = locked
size_t cmk_c_mcs_bytes(int cores, size_t stride) { return (size_t)(1 + 2 * cores) * stride; }
void cmk_c_mcs_format(void *lock, int cores, size_t stride) {
    memset(lock, 0, cmk_c_mcs_bytes(cores, stride));
}
static inline int mcs_acquire(void *lock, size_t stride, int core) {
    uint64_t me = (uint64_t)core + 1;
    __atomic_store_n(WORD(lock, 2 * me - 1, stride), 0, __ATOMIC_RELAXED);
    __atomic_store_n(WORD(lock, 2 * me, stride), 1, __ATOMIC_RELAXED);
    uint64_t pred = __atomic_exchange_n(WORD(lock, 0, stride), me, __ATOMIC_ACQ_REL);
    if (pred == 0) return 0;
    __atomic_store_n(WORD(lock, 2 * pred - 1, stride), me, __ATOMIC_RELEASE);
    while (__atomic_load_n(WORD(lock, 2 * me, stride), __ATOMIC_ACQUIRE) != 0) cmk_cpu_relax();
    return 1;
}
static inline void mcs_release(void *lock, size_t stride, int core) {
    uint64_t me = (uint64_t)core + 1;
    uint64_t succ = __atomic_load_n(WORD(lock, 2 * me - 1, stride), __ATOMIC_ACQUIRE);
    if (succ == 0) {
        uint64_t expected = me;
        if (__atomic_compare_exchange_n(WORD(lock, 0, stride), &expected, 0, 0,
                                        __ATOMIC_RELEASE, __ATOMIC_RELAXED))
            return;
        do { succ = __atomic_load_n(WORD(lock, 2 * me - 1, stride), __ATOMIC_ACQUIRE); } while (succ == 0);
    }
    __atomic_store_n(WORD(lock, 2 * succ, stride), 0, __ATOMIC_RELEASE);
}
int cmk_c_mcs_acquire(void *lock, int cores, size_t stride, int core) {
    (void)cores; return mcs_acquire(lock, stride, core);
}
void cmk_c_mcs_release(void *lock, int cores, size_t stride, int core) {
    (void)cores; mcs_release(lock, stride, core);
}

// ---- CLH: block 0 = tail; block 1+s = slot s (0...cores); block 2+cores+c =
// core c's record {own slot, predecessor's slot}. 1 = pending, 0 = granted.
size_t cmk_c_clh_bytes(int cores, size_t stride) { return (size_t)(2 + 2 * cores) * stride; }
void cmk_c_clh_format(void *lock, int cores, size_t stride) {
    memset(lock, 0, cmk_c_clh_bytes(cores, stride));
    *WORD(lock, 0, stride) = (uint64_t)cores;
    for (int c = 0; c < cores; c++) WORD(lock, 2 + cores + c, stride)[0] = (uint64_t)c;
}
static inline int clh_acquire(void *lock, int cores, size_t stride, int core) {
    uint64_t *own = WORD(lock, 2 + cores + core, stride);
    uint64_t mine = own[0];
    __atomic_store_n(WORD(lock, 1 + mine, stride), 1, __ATOMIC_RELAXED);
    uint64_t pred = __atomic_exchange_n(WORD(lock, 0, stride), mine, __ATOMIC_ACQ_REL);
    own[1] = pred;
    if (__atomic_load_n(WORD(lock, 1 + pred, stride), __ATOMIC_ACQUIRE) == 0) return 0;
    do { cmk_cpu_relax(); } while (__atomic_load_n(WORD(lock, 1 + pred, stride), __ATOMIC_ACQUIRE) != 0);
    return 1;
}
static inline void clh_release(void *lock, int cores, size_t stride, int core) {
    uint64_t *own = WORD(lock, 2 + cores + core, stride);
    __atomic_store_n(WORD(lock, 1 + own[0], stride), 0, __ATOMIC_RELEASE);
    own[0] = own[1];
}
int cmk_c_clh_acquire(void *lock, int cores, size_t stride, int core) {
    return clh_acquire(lock, cores, stride, core);
}
void cmk_c_clh_release(void *lock, int cores, size_t stride, int core) {
    clh_release(lock, cores, stride, core);
}

// ---- by kind: 0 = ticket, 1 = MCS, 2 = CLH (BigLock's ClusterLock.Kind raw values)
void cmk_c_format(int kind, void *lock, int cores, size_t stride) {
    switch (kind) {
    case 0: cmk_c_ticket_format(lock, cores, stride); break;
    case 1: cmk_c_mcs_format(lock, cores, stride); break;
    case 2: cmk_c_clh_format(lock, cores, stride); break;
    default: abort();
    }
}

// ---- loops (one per kind, so each is specialised like the Swift ones)
void cmk_c_uncontended(int kind, void *lock, int cores, size_t stride, int core, uint64_t iters) {
    switch (kind) {
    case 0: for (uint64_t i = 0; i < iters; i++) { ticket_acquire(lock, stride); ticket_release(lock, stride); } break;
    case 1: for (uint64_t i = 0; i < iters; i++) { mcs_acquire(lock, stride, core); mcs_release(lock, stride, core); } break;
    case 2: for (uint64_t i = 0; i < iters; i++) { clh_acquire(lock, cores, stride, core); clh_release(lock, cores, stride, core); } break;
    default: abort();
    }
}

uint64_t cmk_c_hammer(int kind, void *lock, int cores, size_t stride, int core,
                      const uint64_t *stop, uint64_t *counter) {
    uint64_t n = 0;
    switch (kind) {
    case 0: while (!__atomic_load_n(stop, __ATOMIC_RELAXED)) { ticket_acquire(lock, stride); ++*counter; ticket_release(lock, stride); n++; } break;
    case 1: while (!__atomic_load_n(stop, __ATOMIC_RELAXED)) { mcs_acquire(lock, stride, core); ++*counter; mcs_release(lock, stride, core); n++; } break;
    case 2: while (!__atomic_load_n(stop, __ATOMIC_RELAXED)) { clh_acquire(lock, cores, stride, core); ++*counter; clh_release(lock, cores, stride, core); n++; } break;
    default: abort();
    }
    return n;
}

void *cmk_c_mutex_create(void) {
    pthread_mutex_t *m = malloc(sizeof *m);
    if (m) pthread_mutex_init(m, NULL);
    return m;
}
void cmk_c_mutex_destroy(void *mutex) { pthread_mutex_destroy(mutex); free(mutex); }
void cmk_c_mutex_uncontended(void *mutex, uint64_t iters) {
    for (uint64_t i = 0; i < iters; i++) { pthread_mutex_lock(mutex); pthread_mutex_unlock(mutex); }
}
uint64_t cmk_c_mutex_hammer(void *mutex, const uint64_t *stop, uint64_t *counter) {
    uint64_t n = 0;
    while (!__atomic_load_n(stop, __ATOMIC_RELAXED)) {
        pthread_mutex_lock(mutex); ++*counter; pthread_mutex_unlock(mutex); n++;
    }
    return n;
}
