// Entry points of the cmk kernel image.
//
//  _start               the boot core (QEMU starts core 0 here at EL2, MMU off,
//                       x0 = DTB). Turns the MMU on with the static boot identity
//                       map, then runs the loader (Boot) in Swift.
//  cmk_secondary_entry  every other core, started with PSCI CPU_ON, x0 = the
//                       physical address of its start record (Cluster.CoreState).
//  cmk_enter_cluster    switch a core to its cluster's tables and stack.
#include "include/ArchConstants.h"
#if defined(__aarch64__) && defined(__ELF__) && !defined(__linux__) && !defined(__APPLE__)

// Common EL2 set-up for every core: vectors, FP, HCR, translation control.
.macro el2_setup
    msr daifset, #0xf
    adrp x9, cmk_vectors
    add x9, x9, :lo12:cmk_vectors
    msr vbar_el2, x9
    msr tpidr_el2, xzr
    mov x9, #CMK_CPTR_EL2
    msr cptr_el2, x9
    ldr x9, =CMK_HCR_EL2
    msr hcr_el2, x9
    ldr x9, =CMK_MAIR_EL2
    msr mair_el2, x9
    ldr x9, =CMK_TCR_EL2
    msr tcr_el2, x9
    isb
.endm

    .section .text.boot, "ax"
    .global _start
    .type _start, %function
_start:
    mov x19, x0
    el2_setup
    ic iallu
    adrp x9, cmk_boot_l1
    msr ttbr0_el2, x9
    isb
    tlbi alle2
    dsb ish
    isb
    ldr x9, =CMK_SCTLR_EL2_BOOT
    msr sctlr_el2, x9
    isb
    adrp x9, cmk_boot_stack_top
    add x9, x9, :lo12:cmk_boot_stack_top
    mov sp, x9
    mov x29, xzr
    mov x30, xzr
    mov x0, x19
    bl main
1:  wfe
    b 1b

    // x0 = PA of the start record {ttbr0, sp, tpidr, entry, arg}.
    .global cmk_secondary_entry
    .type cmk_secondary_entry, %function
    .balign 8
cmk_secondary_entry:
    mov x19, x0
    el2_setup
    ic iallu
    ldp x0, x1, [x19, #0]
    ldp x2, x3, [x19, #16]
    ldr x4, [x19, #32]
    b cmk_enter_cluster

    // x0 ttbr0, x1 sp, x2 tpidr, x3 entry, x4 arg. MMU on or off on entry.
    .global cmk_enter_cluster
    .type cmk_enter_cluster, %function
cmk_enter_cluster:
    dsb ish
    msr ttbr0_el2, x0
    isb
    tlbi alle2
    dsb ish
    isb
    ldr x9, =CMK_SCTLR_EL2_CLUSTER
    msr sctlr_el2, x9
    isb
    tlbi alle2
    dsb ish
    isb
    mov sp, x1
    msr tpidr_el2, x2
    mov x0, x4
    mov x29, xzr
    mov x30, xzr
    br x3
    .ltorg

// The boot identity map: one level-1 table of 1 GiB blocks.
#define BLOCK_DEVICE(pa) ((pa) | (1 << 54) | (1 << 10) | (1 << 6) | (CMK_ATTR_DEVICE_nGnRE << 2) | 1)
#define BLOCK_NORMAL(pa) ((pa) | (1 << 10) | (3 << 8) | (1 << 6) | (CMK_ATTR_NORMAL_WB << 2) | 1)
    .section .rodata.boot_l1, "a"
    .balign 4096
    .global cmk_boot_l1
cmk_boot_l1:
    .quad BLOCK_DEVICE(0)
    .set gib, 1
    .rept CMK_BOOT_RAM_GIB
    .quad BLOCK_NORMAL(gib << 30)
    .set gib, gib + 1
    .endr
    .fill 512 - 1 - CMK_BOOT_RAM_GIB, 8, 0

// Boot core stacks: in the image region, used only before the boot core
// enters its cluster. Not loaded (NOLOAD in kernel.ld), never copied.
    .section .bootstack, "aw", %nobits
    .balign 16
    .space CMK_BOOT_STACK_SIZE
    .global cmk_boot_stack_top
cmk_boot_stack_top:
    .space CMK_BOOT_EMERGENCY_SIZE
    .global cmk_boot_emergency_top
cmk_boot_emergency_top:

#endif
