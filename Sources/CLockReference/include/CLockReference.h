// C reference implementations of cmk's three big locks, for `cmk bench lock`.
//
// Same algorithms, same memory layout (one word per `stride`-byte block,
// node names as indices) and same memory orderings as Sources/BigLock, written
// with the GCC/Clang __atomic builtins, so the benchmark compares languages,
// not algorithms. Host only: never part of the kernel image.
#ifndef CMK_CLOCKREFERENCE_H
#define CMK_CLOCKREFERENCE_H

#include <stddef.h>
#include <stdint.h>

size_t cmk_c_ticket_bytes(int cores, size_t stride);
void cmk_c_ticket_format(void *lock, int cores, size_t stride);
int cmk_c_ticket_acquire(void *lock, int cores, size_t stride, int core);
void cmk_c_ticket_release(void *lock, int cores, size_t stride, int core);

size_t cmk_c_mcs_bytes(int cores, size_t stride);
void cmk_c_mcs_format(void *lock, int cores, size_t stride);
int cmk_c_mcs_acquire(void *lock, int cores, size_t stride, int core);
void cmk_c_mcs_release(void *lock, int cores, size_t stride, int core);

size_t cmk_c_clh_bytes(int cores, size_t stride);
void cmk_c_clh_format(void *lock, int cores, size_t stride);
int cmk_c_clh_acquire(void *lock, int cores, size_t stride, int core);
void cmk_c_clh_release(void *lock, int cores, size_t stride, int core);

/// Lock kinds below: BigLock's `ClusterLock.Kind` raw values (0 = ticket,
/// 1 = MCS, 2 = CLH), passed as `Int32(kind.rawValue)`.
void cmk_c_format(int kind, void *lock, int cores, size_t stride);
/// `iters` uncontended acquire+release pairs on `core`, loop in C.
void cmk_c_uncontended(int kind, void *lock, int cores, size_t stride, int core, uint64_t iters);
/// Until `*stop` is non-zero: acquire, `++*counter`, release. Returns the
/// number of acquisitions.
uint64_t cmk_c_hammer(int kind, void *lock, int cores, size_t stride, int core,
                      const uint64_t *stop, uint64_t *counter);

/// A default pthread mutex, and the same two loops around it.
void *cmk_c_mutex_create(void);
void cmk_c_mutex_destroy(void *mutex);
void cmk_c_mutex_uncontended(void *mutex, uint64_t iters);
uint64_t cmk_c_mutex_hammer(void *mutex, const uint64_t *stop, uint64_t *counter);

#endif
