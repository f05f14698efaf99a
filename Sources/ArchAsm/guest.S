// The guest's EL1 system registers: saved into and loaded from a VCPU's
// context when the core switches vCPUs (Boot/VCPURun.swift). While a vCPU
// runs they stay live in the hardware: the kernel at EL2 never uses EL1
// registers, and it is built without pointer authentication, so the guest's
// keys need no swap on an exit.
//
// Order: ArchConstants.h, CMK_VCPU_EL1_*. x0 = the EL1 block of the context.
#include "include/ArchConstants.h"
#if defined(__aarch64__) && defined(__ELF__) && !defined(__linux__) && !defined(__APPLE__)

// Pointer-authentication key registers by encoding (ARMv8.3 names need a
// newer -march than the kernel is built for).
#define APIAKEYLO S3_0_C2_C1_0
#define APIAKEYHI S3_0_C2_C1_1
#define APIBKEYLO S3_0_C2_C1_2
#define APIBKEYHI S3_0_C2_C1_3
#define APDAKEYLO S3_0_C2_C2_0
#define APDAKEYHI S3_0_C2_C2_1
#define APDBKEYLO S3_0_C2_C2_2
#define APDBKEYHI S3_0_C2_C2_3
#define APGAKEYLO S3_0_C2_C3_0
#define APGAKEYHI S3_0_C2_C3_1
#define ICH_VMCR S3_4_C12_C11_7
#define ICH_AP0R0 S3_4_C12_C8_0
#define ICH_AP1R0 S3_4_C12_C9_0

.macro save2 a, b, off
    mrs x1, \a
    mrs x2, \b
    stp x1, x2, [x0, #\off]
.endm
.macro load2 a, b, off
    ldp x1, x2, [x0, #\off]
    msr \a, x1
    msr \b, x2
.endm

    .section .text.guest, "ax"
    .global cmk_el1_save
    .type cmk_el1_save, %function
cmk_el1_save:
    save2 sctlr_el1, ttbr0_el1, 0
    save2 ttbr1_el1, tcr_el1, 16
    save2 mair_el1, amair_el1, 32
    save2 vbar_el1, contextidr_el1, 48
    save2 tpidr_el1, tpidr_el0, 64
    save2 tpidrro_el0, sp_el1, 80
    save2 elr_el1, spsr_el1, 96
    save2 esr_el1, far_el1, 112
    save2 afsr0_el1, afsr1_el1, 128
    save2 par_el1, cpacr_el1, 144
    save2 cntkctl_el1, cntv_ctl_el0, 160
    save2 cntv_cval_el0, mdscr_el1, 176
    save2 csselr_el1, APIAKEYLO, 192
    save2 APIAKEYHI, APIBKEYLO, 208
    save2 APIBKEYHI, APDAKEYLO, 224
    save2 APDAKEYHI, APDBKEYLO, 240
    save2 APDBKEYHI, APGAKEYLO, 256
    save2 APGAKEYHI, ICH_VMCR, 272
    save2 ICH_AP1R0, ICH_AP0R0, 288
    ret

    .global cmk_el1_restore
    .type cmk_el1_restore, %function
cmk_el1_restore:
    load2 sctlr_el1, ttbr0_el1, 0
    load2 ttbr1_el1, tcr_el1, 16
    load2 mair_el1, amair_el1, 32
    load2 vbar_el1, contextidr_el1, 48
    load2 tpidr_el1, tpidr_el0, 64
    load2 tpidrro_el0, sp_el1, 80
    load2 elr_el1, spsr_el1, 96
    load2 esr_el1, far_el1, 112
    load2 afsr0_el1, afsr1_el1, 128
    load2 par_el1, cpacr_el1, 144
    load2 cntkctl_el1, cntv_ctl_el0, 160
    load2 cntv_cval_el0, mdscr_el1, 176
    load2 csselr_el1, APIAKEYLO, 192
    load2 APIAKEYHI, APIBKEYLO, 208
    load2 APIBKEYHI, APDAKEYLO, 224
    load2 APDAKEYHI, APDBKEYLO, 240
    load2 APDBKEYHI, APGAKEYLO, 256
    load2 APGAKEYHI, ICH_VMCR, 272
    load2 ICH_AP1R0, ICH_AP0R0, 288
    isb
    ret

#endif
