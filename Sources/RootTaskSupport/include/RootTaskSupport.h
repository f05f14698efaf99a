// The root task's machine interface (docs/kernel/abi.md): the system-call
// stub, the debug console call and the server thread's stack. On bare metal
// these are `svc #0`; on the host (where RootTask builds to a stub that
// explains itself) they fail with error 1 and never trap.
#ifndef CMK_ROOT_TASK_SUPPORT_H
#define CMK_ROOT_TASK_SUPPORT_H
#include <stdint.h>

/// x0...x6 after a system call (x6: 0 or the error).
typedef struct {
    uint64_t x0, x1, x2, x3, x4, x5, x6;
} cmk_syscall_result;

/// `svc #0` with the number in x7 and arguments in x0...x5.
cmk_syscall_result cmk_syscall(uint64_t number, uint64_t x0, uint64_t x1, uint64_t x2,
                               uint64_t x3, uint64_t x4, uint64_t x5);

/// DebugPutChar (0x100): one byte to the console (whole lines at a time).
void cmk_debug_put_char(uint8_t c);

/// TPIDR_EL0, the thread pointer: each thread's own (the kernel keeps it
/// across switches; the ping-pong and the time-slice test check that).
void cmk_set_thread_pointer(uint64_t v);
uint64_t cmk_thread_pointer(void);

/// The address of a second thread's first instruction: `cmk_root_server`
/// (the root task's Swift server loop), entered with x0 = its endpoint.
uint64_t cmk_server_entry(void);
/// The top of the server thread's 16 KiB stack (in the root task's bss).
uint64_t cmk_server_stack_top(void);

/// The preemption test's spinners (spinners.c): the address of their first
/// instruction (`cmk_root_spinner`, entered with x0 = 0 or 1), the top of
/// spinner `index`'s 4 KiB stack, 8 words they share with the root thread,
/// and volatile accesses to them.
uint64_t cmk_spinner_entry(void);
uint64_t cmk_spinner_stack_top(uint64_t index);
uint64_t *cmk_spinner_shared(void);
uint64_t cmk_volatile_load(const uint64_t *p);
void cmk_volatile_store(uint64_t *p, uint64_t v);
/// The lock threads (lockrun.c, RootTask/LockRun.swift): at most
/// CMK_LOCK_MAX_CORES cores per cluster (Machine.maxCores), the experiment's
/// histograms for at most CMK_LOCK_MAX_MEASURED_CORES; their first
/// instruction (`cmk_root_lock_thread`, entered with x0 = its core | its
/// endpoint << 8), a 1 KiB stack each (the loop takes under 200 bytes:
/// `LockRun.work` and the C calls it makes), CMK_LOCK_SHARED_WORDS shared
/// words, and per measured core a wait (which 0) and a hold (which 1)
/// histogram of CMK_LOCK_HISTOGRAM_WORDS words: 496 `LockHistogram`
/// buckets, then count, sum, max.
#define CMK_LOCK_MAX_CORES 64
#define CMK_LOCK_MAX_MEASURED_CORES 8
#define CMK_LOCK_SHARED_WORDS 256
#define CMK_LOCK_HISTOGRAM_WORDS 499
uint64_t cmk_lock_thread_entry(void);
uint64_t cmk_lock_thread_stack_top(uint64_t index);
uint64_t *cmk_lock_shared(void);
uint64_t *cmk_lock_histogram(uint64_t core, uint64_t which);
/// CNTVCT_EL0 (after an ISB): the kernel lets EL0 read it.
uint64_t cmk_counter(void);
/// `iterations` steps of an LCG (kept: not foldable, not inlined).
uint64_t cmk_lock_work(uint64_t iterations);
/// A volatile store of `value`: the work that produced it must be done.
void cmk_lock_keep(uint64_t value);
/// YIELD: a hint (free on hardware); under single-threaded TCG it hands
/// the host thread to the next vCPU, so the cores interleave call by call.
void cmk_yield_hint(void);
/// Atomics on shared words. Release on the writer's side pairs with
/// acquire on the reader's: what a thread wrote before it counted itself
/// done (its entries, its histograms) is visible to whoever sees the count.
uint64_t cmk_atomic_add_release(uint64_t *p, uint64_t v);
uint64_t cmk_atomic_load_acquire(const uint64_t *p);
void cmk_atomic_store_release(uint64_t *p, uint64_t v);

#include "RootTaskPMU.h"

#endif
