// The preemption test's two spinner threads (RootTask/Preemption.swift):
// their stacks, their entry, the words they share with the root thread, and
// volatile accesses to them (a spinner reads what the other one writes, with
// no system call in between: the compiler must not keep it in a register).
#include "include/RootTaskSupport.h"

#if defined(__aarch64__) && defined(__ELF__) && !defined(__linux__) && !defined(__APPLE__)

static unsigned char spinner_stacks[2][4 << 10] __attribute__((aligned(16)));
static uint64_t spinner_shared[8] __attribute__((aligned(64)));

extern void cmk_root_spinner(uint64_t index);
uint64_t cmk_spinner_entry(void) { return (uint64_t)(uintptr_t)&cmk_root_spinner; }
uint64_t cmk_spinner_stack_top(uint64_t index) {
    return (uint64_t)(uintptr_t)(spinner_stacks[index & 1] + sizeof spinner_stacks[0]);
}
uint64_t *cmk_spinner_shared(void) { return spinner_shared; }

#else  // the host: RootTask is a stub there

static uint64_t spinner_shared[8];
uint64_t cmk_spinner_entry(void) { return 0; }
uint64_t cmk_spinner_stack_top(uint64_t index) { (void)index; return 0; }
uint64_t *cmk_spinner_shared(void) { return spinner_shared; }

#endif

uint64_t cmk_volatile_load(const uint64_t *p) { return *(const volatile uint64_t *)p; }
void cmk_volatile_store(uint64_t *p, uint64_t v) { *(volatile uint64_t *)p = v; }
