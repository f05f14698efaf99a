// Host-only helpers of the hosted runtime: pinning, clocks, spin hint, and
// work loops the compiler cannot fold away. Never part of the kernel image.
#ifndef CMK_CHOSTED_H
#define CMK_CHOSTED_H

#include <stdint.h>

/// Pins the calling thread to host CPU `cpu`; 0 on success, else an errno value.
int cmk_pin_self(int cpu);
/// The host CPU the calling thread runs on now, or -1.
int cmk_current_cpu(void);
/// CLOCK_MONOTONIC in nanoseconds.
uint64_t cmk_monotonic_ns(void);

/// A cheap, monotonic, per-machine tick counter: the TSC on x86-64,
/// CNTVCT_EL0 on AArch64, else the monotonic clock in nanoseconds.
static inline uint64_t cmk_ticks(void) {
#if defined(__x86_64__)
    uint32_t lo, hi;
    __asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi) :: "memory");
    return ((uint64_t)hi << 32) | lo;
#elif defined(__aarch64__)
    uint64_t v;
    __asm__ __volatile__("isb; mrs %0, cntvct_el0" : "=r"(v) :: "memory");
    return v;
#else
    return cmk_monotonic_ns();
#endif
}

/// The architecture's spin-wait hint.
static inline void cmk_cpu_relax(void) {
#if defined(__x86_64__)
    __asm__ __volatile__("pause" ::: "memory");
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#else
    __asm__ __volatile__("" ::: "memory");
#endif
}

/// `n` iterations of an empty loop the compiler keeps (the `--delay` work
/// outside the lock): about one cycle each.
void cmk_spin_work(uint64_t n);

/// `n` read-modify-writes of kernel data, under the lock (the `--hold` work):
/// word `i % 8` of `words` (one 64-byte line) is incremented at step `i`.
void cmk_kernel_work(uint64_t *words, uint64_t n);



/// 1 if this process's affinity mask allows host CPU `cpu`, else 0.
int cmk_cpu_allowed(int cpu);

#endif
