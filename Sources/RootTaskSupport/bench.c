// The IPC benchmark's server thread (RootTask/IPCBench.swift): its entry
// and stack.
#include "include/RootTaskPMU.h"

#if defined(__aarch64__) && defined(__ELF__) && !defined(__linux__) && !defined(__APPLE__)
static unsigned char bench_server_stack[16 << 10] __attribute__((aligned(16)));
extern void cmk_bench_server(uint64_t endpoint);
uint64_t cmk_bench_server_entry(void) { return (uint64_t)(uintptr_t)&cmk_bench_server; }
uint64_t cmk_bench_server_stack_top(void) {
    return (uint64_t)(uintptr_t)(bench_server_stack + sizeof bench_server_stack);
}
#else
uint64_t cmk_bench_server_entry(void) { return 0; }
uint64_t cmk_bench_server_stack_top(void) { return 0; }
#endif
