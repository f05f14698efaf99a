// The few C library routines the compiler may emit calls to in the
// bare-metal image (struct copies, zeroing). Compiled only for bare metal, so
// the host build keeps its own libc.
#include "include/ArchAsm.h"
#if CMK_BARE_METAL
#include <stddef.h>

#include <stdint.h>

// Built without FP/SIMD registers: the EL0 trap fastpath calls memcpy (Swift
// copies a struct argument through it) before the thread's FP/SIMD registers
// are saved (scripts/kernel-size.sh checks what the fastpath reaches).
#define CMK_GENERAL_REGS_ONLY __attribute__((target("+nosimd,+nofp")))

// Word at a time when both ends are 8-byte aligned (the kernel's copies of
// trap frames and contexts are; with the MMU off only aligned accesses are
// allowed, so unaligned ones stay bytewise).
CMK_GENERAL_REGS_ONLY void *memset(void *dst, int c, size_t n) {
    unsigned char *d = dst;
    if (((uintptr_t)d & 7) == 0) {
        uint64_t v = (unsigned char)c;
        v |= v << 8;
        v |= v << 16;
        v |= v << 32;
        uint64_t *w = (uint64_t *)d;
        for (; n >= 8; n -= 8) *w++ = v;
        d = (unsigned char *)w;
    }
    while (n--) *d++ = (unsigned char)c;
    return dst;
}

CMK_GENERAL_REGS_ONLY void *memcpy(void *restrict dst, const void *restrict src, size_t n) {
    unsigned char *d = dst;
    const unsigned char *s = src;
    if ((((uintptr_t)d | (uintptr_t)s) & 7) == 0 && n >= 16) {
        // 16 bytes per iteration with LDP/STP (the compiler's own loop for
        // this, under -mstrict-align, bounced every word through the stack).
        // cmk_copy_words' loop, written again: that inline function is built
        // with FP/SIMD allowed, so clang will not inline it here and calls it
        // instead, on the fastpath's memcpy.
        size_t pairs = n >> 4;
        n &= 15;
        __asm__ volatile(
            "1: ldp x9, x10, [%1], #16\n"
            "   stp x9, x10, [%0], #16\n"
            "   subs %2, %2, #1\n"
            "   b.ne 1b\n"
            : "+r"(d), "+r"(s), "+r"(pairs)
            :
            : "x9", "x10", "memory", "cc");
        if (n >= 8) {
            *(uint64_t *)d = *(const uint64_t *)s;
            d += 8;
            s += 8;
            n -= 8;
        }
    }
    while (n--) *d++ = *s++;
    return dst;
}

CMK_GENERAL_REGS_ONLY void *memmove(void *dst, const void *src, size_t n) {
    unsigned char *d = dst;
    const unsigned char *s = src;
    if (d < s) {
        while (n--) *d++ = *s++;
    } else {
        d += n;
        s += n;
        while (n--) *--d = *--s;
    }
    return dst;
}

CMK_GENERAL_REGS_ONLY int memcmp(const void *a, const void *b, size_t n) {
    const unsigned char *x = a, *y = b;
    for (; n; n--, x++, y++)
        if (*x != *y) return *x - *y;
    return 0;
}
#endif
