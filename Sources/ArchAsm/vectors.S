// EL2 exception vectors.
//
// Traps from a lower EL (the EL1 guest, a future EL0 root task) and IRQs take
// the ordinary path: the frame (general registers, PC, PSTATE, syndrome and
// the FP/SIMD registers) is saved on the current kernel stack, the Swift
// handler cmk_trap(frame, kind) runs, and the frame is restored (the handler
// may have changed it) before ERET. cmk_enter_guest starts a vCPU through
// the same restore path, from a frame the kernel built. The one exception:
// `svc` from EL0 with x7 = Call or ReplyRecv first tries the fastpath
// (cmk_fastpath_entry, below), which saves only the general registers.
//
// Synchronous exceptions and SErrors taken from EL2 itself are always fatal
// (the kernel never faults on purpose). They switch to the core's emergency
// stack first, so a kernel stack overflow into a guard page still reports,
// then call cmk_fatal_exception(frame, kind), which does not return.
#include "include/ArchConstants.h"
#if defined(__aarch64__) && defined(__ELF__) && !defined(__linux__) && !defined(__APPLE__)

// FP/SIMD registers and FPSR/FPCR into 66 words at `base` (the frame's
// layout from CMK_FRAME_FP on; \t1, \t2 clobbered).
.macro fp_store base, t1, t2
    stp q0, q1, [\base, #0]
    stp q2, q3, [\base, #32]
    stp q4, q5, [\base, #64]
    stp q6, q7, [\base, #96]
    stp q8, q9, [\base, #128]
    stp q10, q11, [\base, #160]
    stp q12, q13, [\base, #192]
    stp q14, q15, [\base, #224]
    stp q16, q17, [\base, #256]
    stp q18, q19, [\base, #288]
    stp q20, q21, [\base, #320]
    stp q22, q23, [\base, #352]
    stp q24, q25, [\base, #384]
    stp q26, q27, [\base, #416]
    stp q28, q29, [\base, #448]
    stp q30, q31, [\base, #480]
    mrs \t1, fpsr
    mrs \t2, fpcr
    str \t1, [\base, #512]
    str \t2, [\base, #520]
.endm

// FP/SIMD registers and FPSR/FPCR from 66 words at `base` (\t1, \t2 clobbered).
.macro fp_load base, t1, t2
    ldr \t1, [\base, #512]
    ldr \t2, [\base, #520]
    msr fpsr, \t1
    msr fpcr, \t2
    ldp q0, q1, [\base, #0]
    ldp q2, q3, [\base, #32]
    ldp q4, q5, [\base, #64]
    ldp q6, q7, [\base, #96]
    ldp q8, q9, [\base, #128]
    ldp q10, q11, [\base, #160]
    ldp q12, q13, [\base, #192]
    ldp q14, q15, [\base, #224]
    ldp q16, q17, [\base, #256]
    ldp q18, q19, [\base, #288]
    ldp q20, q21, [\base, #320]
    ldp q22, q23, [\base, #352]
    ldp q24, q25, [\base, #384]
    ldp q26, q27, [\base, #416]
    ldp q28, q29, [\base, #448]
    ldp q30, q31, [\base, #480]
.endm

// The FP/SIMD registers into the frame at SP (x2-x4 clobbered).
.macro save_fp_to_frame
    add x2, sp, #(CMK_FRAME_FP * 8)
    fp_store x2, x3, x4
.endm

// x2-x30, SP_EL0, ELR and SPSR into the frame at SP (x0 and x1 are already
// there; x2 and x3 clobbered).
.macro save_general_to_frame
    stp x2, x3, [sp, #16]
    stp x4, x5, [sp, #32]
    stp x6, x7, [sp, #48]
    stp x8, x9, [sp, #64]
    stp x10, x11, [sp, #80]
    stp x12, x13, [sp, #96]
    stp x14, x15, [sp, #112]
    stp x16, x17, [sp, #128]
    stp x18, x19, [sp, #144]
    stp x20, x21, [sp, #160]
    stp x22, x23, [sp, #176]
    stp x24, x25, [sp, #192]
    stp x26, x27, [sp, #208]
    stp x28, x29, [sp, #224]
    mrs x2, sp_el0
    stp x30, x2, [sp, #240]
    mrs x2, elr_el2
    mrs x3, spsr_el2
    stp x2, x3, [sp, #256]
.endm

// ELR, SPSR, SP_EL0 and x0-x30 from the frame at SP, pop it, ERET.
.macro restore_general_and_eret
    ldp x2, x3, [sp, #256]
    msr elr_el2, x2
    msr spsr_el2, x3
    ldp x30, x2, [sp, #240]
    msr sp_el0, x2
    ldp x28, x29, [sp, #224]
    ldp x26, x27, [sp, #208]
    ldp x24, x25, [sp, #192]
    ldp x22, x23, [sp, #176]
    ldp x20, x21, [sp, #160]
    ldp x18, x19, [sp, #144]
    ldp x16, x17, [sp, #128]
    ldp x14, x15, [sp, #112]
    ldp x12, x13, [sp, #96]
    ldp x10, x11, [sp, #80]
    ldp x8, x9, [sp, #64]
    ldp x6, x7, [sp, #48]
    ldp x4, x5, [sp, #32]
    ldp x2, x3, [sp, #16]
    ldp x0, x1, [sp, #0]
    add sp, sp, #CMK_FRAME_SIZE
    eret
.endm

.macro vector_trap kind
    .balign 0x80
    sub sp, sp, #CMK_FRAME_SIZE
    stp x0, x1, [sp, #0]
    mov x0, #\kind
    b cmk_trap_common
.endm

.macro vector_sync_lower
    .balign 0x80
    sub sp, sp, #CMK_FRAME_SIZE
    stp x0, x1, [sp, #0]
    // svc from EL0 (EC 0x15) with x7 = Call (2) or ReplyRecv (6): the
    // fastpath. Anything else (a guest's HVC/SMC, aborts): the full path.
    mrs x0, esr_el2
    lsr x1, x0, #26
    cmp x1, #0x15
    b.ne 1f
    cmp x7, #2
    b.eq cmk_fastpath_entry
    cmp x7, #6
    b.eq cmk_fastpath_entry
1:  mov x0, #8
    b cmk_trap_common
.endm

.macro vector_fatal kind
    .balign 0x80
    msr sp_el0, x0
    mov x0, #\kind
    b cmk_fatal_common
.endm

    .section .text.vectors, "ax"
    .balign 0x800
    .global cmk_vectors
cmk_vectors:
    vector_fatal 0      // current EL, SP0: sync
    vector_fatal 1      //                  IRQ
    vector_fatal 2      //                  FIQ
    vector_fatal 3      //                  SError
    vector_fatal 4      // current EL, SPx: sync
    vector_trap  5      //                  IRQ
    vector_trap  6      //                  FIQ
    vector_fatal 7      //                  SError
    vector_sync_lower   // lower EL, AArch64: sync (kind 8)
    vector_trap  9      //                    IRQ
    vector_trap  10     //                    FIQ
    vector_trap  11     //                    SError
    vector_fatal 12     // lower EL, AArch32: sync
    vector_fatal 13     //                    IRQ
    vector_fatal 14     //                    FIQ
    vector_fatal 15     //                    SError

// x0 = kind; x0 and x1 of the interrupted context are in the frame.
cmk_trap_common:
    save_general_to_frame
    mrs x2, esr_el2
    mrs x3, far_el2
    stp x2, x3, [sp, #272]
    save_fp_to_frame
    mov x1, x0
    mov x0, sp
    bl cmk_trap
    // The restore path: also how cmk_enter_guest starts a vCPU (SP = frame).
cmk_trap_restore:
    add x2, sp, #(CMK_FRAME_FP * 8)
    fp_load x2, x3, x4
    restore_general_and_eret

// x0 = a frame at the top of this core's kernel stack (frame + CMK_FRAME_SIZE
// is the stack top). Loads the frame into the registers and ERETs: into the
// guest when the frame's SPSR names EL1. Every later trap from that guest
// builds its frame at the same place. Never returns.
    .global cmk_enter_guest
    .type cmk_enter_guest, %function
cmk_enter_guest:
    mov sp, x0
    b cmk_trap_restore

// The EL0 Call/ReplyRecv fastpath (docs/kernel/abi.md, the trap path).
// x0 = ESR, x0 and x1 of the thread are in the frame. Saves the general
// registers, PC, PSTATE, SP_EL0, ESR and FAR into the frame but not the
// FP/SIMD registers: cmk_fastpath (Swift, built without FP/SIMD
// instructions: scripts/kernel-size.sh checks) takes the big lock and either
// switches threads (the frame then holds the next thread's registers, the
// FP/SIMD registers are switched by cmk_fp_save/cmk_fp_load, the lock is
// released) and returns 1, or changes nothing and returns 0: the full path
// then saves the FP/SIMD registers and runs cmk_trap as for any trap. (Or
// returns 2: the lock is held and the checks failed; the full path then goes
// on under the lock, cmk_fastpath_slow.)
cmk_fastpath_entry:
    save_general_to_frame
    mrs x3, far_el2
    stp x0, x3, [sp, #272]
    mov x0, sp
    bl cmk_fastpath
    cbz x0, 1f
    cmp x0, #1
    b.ne 2f
    restore_general_and_eret
    // 0: not a user thread's trap (no lock taken): the full path.
1:  save_fp_to_frame
    mov x0, sp
    mov x1, #8
    bl cmk_trap
    b cmk_trap_restore
    // 2: the lock is held and nothing changed: the full path goes on under it.
2:  save_fp_to_frame
    mov x0, sp
    bl cmk_fastpath_slow
    b cmk_trap_restore

// void cmk_fp_save(uint64_t *area): q0...q31, FPSR, FPCR into 66 words
// (the frame's FP/SIMD layout from CMK_FRAME_FP on).
    .global cmk_fp_save
    .type cmk_fp_save, %function
cmk_fp_save:
    fp_store x0, x1, x2
    ret

// void cmk_fp_load(const uint64_t *area): the reverse of cmk_fp_save.
    .global cmk_fp_load
    .type cmk_fp_load, %function
cmk_fp_load:
    fp_load x0, x1, x2
    ret

// x0 = kind, the interrupted x0 is in SP_EL0. Nothing here trusts SP.
cmk_fatal_common:
    msr tpidrro_el0, x0                 // kind (the panic path ends the machine)
    mrs x0, tpidr_el2
    cbz x0, 1f
    ldr x0, [x0, #(CMK_CORE_EMERGENCY_TOP * 8)]
    cbnz x0, 2f
1:  adrp x0, cmk_boot_emergency_top
    add x0, x0, :lo12:cmk_boot_emergency_top
2:  sub x0, x0, #CMK_FRAME_SIZE
    stp x1, x2, [x0, #8]
    mov x1, sp
    str x1, [x0, #(CMK_FRAME_SP * 8)]
    mov sp, x0
    mrs x0, sp_el0
    str x0, [sp, #0]
    stp x3, x4, [sp, #24]
    stp x5, x6, [sp, #40]
    stp x7, x8, [sp, #56]
    stp x9, x10, [sp, #72]
    stp x11, x12, [sp, #88]
    stp x13, x14, [sp, #104]
    stp x15, x16, [sp, #120]
    stp x17, x18, [sp, #136]
    stp x19, x20, [sp, #152]
    stp x21, x22, [sp, #168]
    stp x23, x24, [sp, #184]
    stp x25, x26, [sp, #200]
    stp x27, x28, [sp, #216]
    stp x29, x30, [sp, #232]
    mrs x2, elr_el2
    mrs x3, spsr_el2
    stp x2, x3, [sp, #256]
    mrs x2, esr_el2
    mrs x3, far_el2
    stp x2, x3, [sp, #272]
    mrs x1, tpidrro_el0
    mov x0, sp
    mov x29, xzr
    bl cmk_fatal_exception
3:  wfe
    b 3b

#endif
