// The PMU as the root task reads it (docs/bench-ipc.md): Boot opened it to
// EL0 (PMUSERENR_EL0) and runs event counter 0 on INST_RETIRED and the
// cycle counter, both counting EL0 and EL2. On the host: 0.
#ifndef CMK_ROOT_TASK_PMU_H
#define CMK_ROOT_TASK_PMU_H
#include <stdint.h>

#if defined(__aarch64__) && defined(__ELF__) && !defined(__linux__) && !defined(__APPLE__)
/// Instructions retired on this core (event counter 0; 32 bits wrap).
static inline uint64_t cmk_pmu_instructions(void) {
    uint64_t v;
    __asm__ volatile("isb; mrs %0, pmevcntr0_el0" : "=r"(v)::"memory");
    return v;
}
/// Cycles on this core (PMCCNTR_EL0, 64 bits).
static inline uint64_t cmk_pmu_cycles(void) {
    uint64_t v;
    __asm__ volatile("isb; mrs %0, pmccntr_el0" : "=r"(v)::"memory");
    return v;
}
/// Set / clear the cycle counter's overflow flag (PMOVSSET_EL0 /
/// PMOVSCLR_EL0 bit 31): with the overflow interrupt enabled (Boot), the
/// flag raises the PMU's interrupt, PPI 23 (the root task's IRQ test).
static inline void cmk_pmu_raise_overflow(void) {
    __asm__ volatile("msr pmovsset_el0, %0; isb" ::"r"((uint64_t)1 << 31) : "memory");
}
static inline void cmk_pmu_clear_overflow(void) {
    __asm__ volatile("msr pmovsclr_el0, %0; isb" ::"r"((uint64_t)1 << 31) : "memory");
}
#else
static inline void cmk_pmu_raise_overflow(void) {}
static inline void cmk_pmu_clear_overflow(void) {}
static inline uint64_t cmk_pmu_instructions(void) { return 0; }
static inline uint64_t cmk_pmu_cycles(void) { return 0; }
#endif

/// The IPC benchmark's server thread: its first instruction
/// (`cmk_bench_server`, entered with x0 = its endpoint) and its own 16 KiB
/// stack's top.
uint64_t cmk_bench_server_entry(void);
uint64_t cmk_bench_server_stack_top(void);

#endif
