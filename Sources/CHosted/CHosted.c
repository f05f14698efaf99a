#define _GNU_SOURCE
#include "CHosted.h"
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <time.h>

int cmk_pin_self(int cpu) {
    if (cpu < 0 || cpu >= CPU_SETSIZE) return EINVAL;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

int cmk_current_cpu(void) { return sched_getcpu(); }

uint64_t cmk_monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void cmk_spin_work(uint64_t n) {
    for (uint64_t i = 0; i < n; i++) __asm__ __volatile__("" ::: "memory");
}

void cmk_kernel_work(uint64_t *words, uint64_t n) {
    for (uint64_t i = 0; i < n; i++) {
        words[i & 7] += 1;
        __asm__ __volatile__("" ::: "memory");
    }
}

int cmk_cpu_allowed(int cpu) {
    if (cpu < 0 || cpu >= CPU_SETSIZE) return 0;
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0) return 0;
    return CPU_ISSET(cpu, &set) ? 1 : 0;
}
