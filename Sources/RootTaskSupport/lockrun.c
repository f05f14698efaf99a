// The lock threads' storage (RootTask/LockRun.swift): a stack per core, the
// words they share with the root thread, one wait and one hold histogram
// per core, the virtual counter, and the work the experiment times.
#include "include/RootTaskSupport.h"

#if defined(__aarch64__) && defined(__ELF__) && !defined(__linux__) && !defined(__APPLE__)

static unsigned char lock_stacks[CMK_LOCK_MAX_CORES][1 << 10] __attribute__((aligned(16)));
static uint64_t lock_shared[CMK_LOCK_SHARED_WORDS] __attribute__((aligned(64)));
static uint64_t lock_histograms[CMK_LOCK_MAX_MEASURED_CORES][2][CMK_LOCK_HISTOGRAM_WORDS] __attribute__((aligned(64)));

extern void cmk_root_lock_thread(uint64_t index);
uint64_t cmk_lock_thread_entry(void) { return (uint64_t)(uintptr_t)&cmk_root_lock_thread; }
uint64_t cmk_lock_thread_stack_top(uint64_t index) {
    return (uint64_t)(uintptr_t)(lock_stacks[index % CMK_LOCK_MAX_CORES] + sizeof lock_stacks[0]);
}

void cmk_yield_hint(void) { __asm__ volatile("yield" ::: "memory"); }

uint64_t cmk_counter(void) {
    uint64_t v;
    __asm__ volatile("isb; mrs %0, cntvct_el0" : "=r"(v)::"memory");
    return v;
}

// Not inlined, and the result is stored with a volatile store by
// cmk_lock_keep: the optimiser can neither fold the chain (an LCG has no
// closed form it knows) nor drop it.
__attribute__((noinline)) uint64_t cmk_lock_work(uint64_t iterations) {
    uint64_t x = iterations;
    for (uint64_t i = 0; i < iterations; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        __asm__ volatile("" : "+r"(x));
    }
    return x;
}

#else  // the host: RootTask is a stub there

static uint64_t lock_shared[CMK_LOCK_SHARED_WORDS];
static uint64_t lock_histograms[CMK_LOCK_MAX_MEASURED_CORES][2][CMK_LOCK_HISTOGRAM_WORDS];
void cmk_yield_hint(void) {}
uint64_t cmk_lock_thread_entry(void) { return 0; }
uint64_t cmk_lock_thread_stack_top(uint64_t index) { (void)index; return 0; }
uint64_t cmk_counter(void) { return 0; }
uint64_t cmk_lock_work(uint64_t iterations) { return iterations; }

#endif

uint64_t *cmk_lock_shared(void) { return lock_shared; }
uint64_t *cmk_lock_histogram(uint64_t core, uint64_t which) {
    return lock_histograms[core % CMK_LOCK_MAX_MEASURED_CORES][which & 1];
}
void cmk_lock_keep(uint64_t value) {
    volatile uint64_t slot;
    slot = value;
    (void)slot;
}
uint64_t cmk_atomic_add_release(uint64_t *p, uint64_t v) {
    return __atomic_add_fetch(p, v, __ATOMIC_RELEASE);
}
uint64_t cmk_atomic_load_acquire(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
void cmk_atomic_store_release(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
