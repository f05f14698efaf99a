// System-call stubs, the server stack and the few C library routines the
// compiler may call in the bare-metal root task.
#include "include/RootTaskSupport.h"
#include <stddef.h>

#if defined(__aarch64__) && defined(__ELF__) && !defined(__linux__) && !defined(__APPLE__)
#define CMK_ROOT_BARE_METAL 1
#else
#define CMK_ROOT_BARE_METAL 0
#endif

#if CMK_ROOT_BARE_METAL

cmk_syscall_result cmk_syscall(uint64_t number, uint64_t a0, uint64_t a1, uint64_t a2,
                               uint64_t a3, uint64_t a4, uint64_t a5) {
    register uint64_t x0 __asm__("x0") = a0;
    register uint64_t x1 __asm__("x1") = a1;
    register uint64_t x2 __asm__("x2") = a2;
    register uint64_t x3 __asm__("x3") = a3;
    register uint64_t x4 __asm__("x4") = a4;
    register uint64_t x5 __asm__("x5") = a5;
    register uint64_t x6 __asm__("x6") = 0;
    register uint64_t x7 __asm__("x7") = number;
    __asm__ volatile("svc #0"
                     : "+r"(x0), "+r"(x1), "+r"(x2), "+r"(x3), "+r"(x4), "+r"(x5), "+r"(x6)
                     : "r"(x7)
                     : "memory");
    cmk_syscall_result r = {x0, x1, x2, x3, x4, x5, x6};
    return r;
}

void cmk_debug_put_char(uint8_t c) {
    register uint64_t x0 __asm__("x0") = c;
    register uint64_t x7 __asm__("x7") = 0x100;  // UserABI.debugPutChar
    __asm__ volatile("svc #0" : "+r"(x0) : "r"(x7) : "x1", "x2", "x3", "x4", "x5", "x6", "memory");
}

void cmk_set_thread_pointer(uint64_t v) { __asm__ volatile("msr tpidr_el0, %0" ::"r"(v) : "memory"); }
uint64_t cmk_thread_pointer(void) {
    uint64_t v;
    __asm__ volatile("mrs %0, tpidr_el0" : "=r"(v)::"memory");
    return v;
}

static unsigned char server_stack[16 << 10] __attribute__((aligned(16)));

extern void cmk_root_server(uint64_t endpoint);
uint64_t cmk_server_entry(void) { return (uint64_t)(uintptr_t)&cmk_root_server; }
uint64_t cmk_server_stack_top(void) { return (uint64_t)(uintptr_t)(server_stack + sizeof server_stack); }

void *memset(void *dst, int c, size_t n) {
    volatile unsigned char *d = dst;
    while (n--) *d++ = (unsigned char)c;
    return dst;
}

void *memcpy(void *restrict dst, const void *restrict src, size_t n) {
    volatile unsigned char *d = dst;
    const unsigned char *s = src;
    while (n--) *d++ = *s++;
    return dst;
}

void *memmove(void *dst, const void *src, size_t n) {
    volatile unsigned char *d = dst;
    const unsigned char *s = src;
    if ((const unsigned char *)dst < s) {
        while (n--) *d++ = *s++;
    } else {
        d += n;
        s += n;
        while (n--) *--d = *--s;
    }
    return dst;
}

int memcmp(const void *a, const void *b, size_t n) {
    const unsigned char *x = a, *y = b;
    for (; n; n--, x++, y++)
        if (*x != *y) return *x - *y;
    return 0;
}

#else  // the host: RootTask is a stub there; nothing traps

cmk_syscall_result cmk_syscall(uint64_t number, uint64_t a0, uint64_t a1, uint64_t a2,
                               uint64_t a3, uint64_t a4, uint64_t a5) {
    (void)number; (void)a0; (void)a1; (void)a2; (void)a3; (void)a4; (void)a5;
    cmk_syscall_result r = {0, 0, 0, 0, 0, 0, 1};
    return r;
}
void cmk_debug_put_char(uint8_t c) { (void)c; }
static uint64_t host_thread_pointer;
void cmk_set_thread_pointer(uint64_t v) { host_thread_pointer = v; }
uint64_t cmk_thread_pointer(void) { return host_thread_pointer; }
uint64_t cmk_server_entry(void) { return 0; }
uint64_t cmk_server_stack_top(void) { return 0; }

#endif
