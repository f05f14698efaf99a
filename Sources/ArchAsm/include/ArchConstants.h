// Architectural constants shared by the assembly (entry.S, vectors.S) and by
// Swift (imported through ArchAsm). One definition, two languages.
#ifndef CMK_ARCH_CONSTANTS_H
#define CMK_ARCH_CONSTANTS_H

// MAIR_EL2 attribute indices (AttrIndx in a descriptor).
#define CMK_ATTR_DEVICE_nGnRnE 0
#define CMK_ATTR_DEVICE_nGnRE 1
#define CMK_ATTR_NORMAL_WB 2
#define CMK_ATTR_NORMAL_NC 3
// Attr0 = 0x00 Device-nGnRnE, Attr1 = 0x04 Device-nGnRE,
// Attr2 = 0xFF Normal write-back RA/WA, Attr3 = 0x44 Normal non-cacheable.
#define CMK_MAIR_EL2 0x44FF0400

// TCR_EL2 (E2H = 0): T0SZ = 25 (39-bit VA, walks start at level 1), 4 KiB
// granule, walks inner/outer write-back cacheable and inner shareable,
// PS = 40-bit physical addresses, bits 31 and 23 RES1.
#define CMK_TCR_EL2 0x80823519
#define CMK_VA_BITS 39

// SCTLR_EL2 (E2H = 0). RES1 bits 29,28,23,22,18,16,11,5,4, plus M (MMU),
// C (data cache), SA (SP alignment check), I (instruction cache).
// The boot identity map is writable everywhere, so it runs without WXN; a
// cluster's own tables run with WXN (bit 19): nothing writable is executable.
#define CMK_SCTLR_EL2_BOOT 0x30C5183D
#define CMK_SCTLR_EL2_CLUSTER 0x30CD183D

// CPTR_EL2 (E2H = 0): RES1 bits, TFP = 0 so FP/SIMD does not trap (Swift
// code uses FP registers); SVE and SME stay trapped.
#define CMK_CPTR_EL2 0x33FF
// HCR_EL2: RW = 1 (EL1 is AArch64). Guest traps are configured per vCPU later.
#define CMK_HCR_EL2 0x80000000

// Exception frame built by vectors.S: x0..x30, sp, elr, spsr, esr, far.
#define CMK_FRAME_SP 31
#define CMK_FRAME_ELR 32
#define CMK_FRAME_SPSR 33
#define CMK_FRAME_ESR 34
#define CMK_FRAME_FAR 35
#define CMK_FRAME_WORDS 36
#define CMK_FRAME_SIZE (CMK_FRAME_WORDS * 8)

// Vector kinds passed to the handlers: (source << 2) | type.
// source: 0 current EL with SP0, 1 current EL with SPx, 2 lower EL AArch64,
// 3 lower EL AArch32. type: 0 sync, 1 IRQ, 2 FIQ, 3 SError.

// Per-core state word 0 holds the top of the core's emergency stack, which
// fatal exceptions switch to (so a kernel stack overflow still reports).
#define CMK_CORE_EMERGENCY_TOP 0

// Boot core stacks inside the image region (identity mapped during boot).
#define CMK_BOOT_STACK_SIZE 0x8000
#define CMK_BOOT_EMERGENCY_SIZE 0x2000

// The static boot identity map covers [0, 1 GiB) as device memory and
// [1 GiB, 1 GiB + CMK_BOOT_RAM_GIB GiB) as normal memory.
#define CMK_BOOT_RAM_GIB 8

#endif
