// ArchAsm: the only place cmk touches AArch64 instructions that Swift cannot
// express (system registers, barriers, cache and TLB maintenance, SMC, HLT).
//
// Every accessor is a static inline function so Swift imports it and the
// optimiser inlines it. On the host (any target that is not bare-metal
// AArch64) the same names exist but trap: portable code may link against Arch,
// but no host test may execute a hardware accessor. Host tests exercise Arch's
// formats (descriptors, syndromes, table building), which need no hardware.
#ifndef CMK_ARCH_ASM_H
#define CMK_ARCH_ASM_H

#include <stdint.h>
#include "ArchConstants.h"

#if defined(__aarch64__) && defined(__ELF__) && !defined(__linux__) && !defined(__APPLE__)
#define CMK_BARE_METAL 1
#else
#define CMK_BARE_METAL 0
#endif

#if CMK_BARE_METAL

#define CMK_SYSREG_READ(name, reg)                                           \
    static inline uint64_t cmk_read_##name(void) {                           \
        uint64_t v;                                                          \
        __asm__ volatile("mrs %0, " #reg : "=r"(v));                         \
        return v;                                                            \
    }
#define CMK_SYSREG_WRITE(name, reg)                                          \
    static inline void cmk_write_##name(uint64_t v) {                        \
        __asm__ volatile("msr " #reg ", %0" ::"r"(v) : "memory");            \
    }

CMK_SYSREG_READ(mpidr, mpidr_el1)
CMK_SYSREG_READ(current_el, CurrentEL)
CMK_SYSREG_READ(esr_el2, esr_el2)
CMK_SYSREG_READ(far_el2, far_el2)
CMK_SYSREG_READ(elr_el2, elr_el2)
CMK_SYSREG_READ(spsr_el2, spsr_el2)
CMK_SYSREG_READ(hpfar_el2, hpfar_el2)
CMK_SYSREG_READ(tpidr_el2, tpidr_el2)
CMK_SYSREG_WRITE(tpidr_el2, tpidr_el2)
CMK_SYSREG_READ(sctlr_el2, sctlr_el2)
CMK_SYSREG_READ(ttbr0_el2, ttbr0_el2)
CMK_SYSREG_READ(cntfrq, cntfrq_el0)
CMK_SYSREG_READ(par_el1, par_el1)
CMK_SYSREG_READ(id_aa64mmfr0, id_aa64mmfr0_el1)

/// The virtual counter. The ISB keeps the read from being hoisted above
/// earlier instructions, so timestamps bracket what they measure.
static inline uint64_t cmk_read_cntvct(void) {
    uint64_t v;
    __asm__ volatile("isb; mrs %0, cntvct_el0" : "=r"(v)::"memory");
    return v;
}

/// Translate a virtual address through the current EL2 stage-1 tables as a
/// read would (AT S1E2R) and return PAR_EL1. Bit 0 set means the walk faulted.
static inline uint64_t cmk_translate_el2_read(uint64_t va) {
    uint64_t par;
    __asm__ volatile("at s1e2r, %1; isb; mrs %0, par_el1" : "=r"(par) : "r"(va) : "memory");
    return par;
}

static inline void cmk_dsb_sy(void) { __asm__ volatile("dsb sy" ::: "memory"); }
static inline void cmk_dsb_ish(void) { __asm__ volatile("dsb ish" ::: "memory"); }
static inline void cmk_dmb_ish(void) { __asm__ volatile("dmb ish" ::: "memory"); }
static inline void cmk_isb(void) { __asm__ volatile("isb" ::: "memory"); }
static inline void cmk_sev(void) { __asm__ volatile("sev" ::: "memory"); }
static inline void cmk_wfe(void) { __asm__ volatile("wfe" ::: "memory"); }
static inline void cmk_wfi(void) { __asm__ volatile("wfi" ::: "memory"); }
static inline void cmk_cpu_relax(void) { __asm__ volatile("yield" ::: "memory"); }

/// Clean and invalidate one data-cache line by VA to the point of coherency.
static inline void cmk_dc_civac(uint64_t va) { __asm__ volatile("dc civac, %0" ::"r"(va) : "memory"); }
/// Clean one data-cache line by VA to the point of coherency.
static inline void cmk_dc_cvac(uint64_t va) { __asm__ volatile("dc cvac, %0" ::"r"(va) : "memory"); }
/// Smallest data-cache line size in bytes (CTR_EL0.DminLine).
static inline uint64_t cmk_dcache_line_size(void) {
    uint64_t ctr;
    __asm__ volatile("mrs %0, ctr_el0" : "=r"(ctr));
    return 4ull << ((ctr >> 16) & 0xf);
}

/// Invalidate every EL2 TLB entry of the inner-shareable domain, and wait.
static inline void cmk_tlbi_alle2is(void) {
    __asm__ volatile("dsb ishst; tlbi alle2is; dsb ish; isb" ::: "memory");
}

/// Copy `words` 8-byte words (both ends 8-byte aligned), 16 bytes per
/// LDP/STP. Trap frames and saved contexts go through here: Swift's own
/// copy of a fixed-size block, under -mstrict-align with unknown alignment,
/// expands into byte loads and stores.
static inline void cmk_copy_words(uint64_t *dst, const uint64_t *src, uint64_t words) {
    uint64_t pairs = words >> 1;
    if (pairs != 0) {
        __asm__ volatile(
            "1: ldp x9, x10, [%1], #16\n"
            "   stp x9, x10, [%0], #16\n"
            "   subs %2, %2, #1\n"
            "   b.ne 1b\n"
            : "+r"(dst), "+r"(src), "+r"(pairs)
            :
            : "x9", "x10", "memory", "cc");
    }
    if (words & 1) *dst = *src;
}

/// One 16-byte pair of an unrolled copy: %1 (source) to %0 (destination)
/// at byte offset `off`, through x9 and x10.
#define CMK_COPY_PAIR(off) "ldp x9, x10, [%1, #" #off "]\n stp x9, x10, [%0, #" #off "]\n"
/// The general part of a frame: pairs 0-16 (bytes 0-271).
#define CMK_COPY_GENERAL_PAIRS \
    CMK_COPY_PAIR(0) CMK_COPY_PAIR(16) CMK_COPY_PAIR(32) CMK_COPY_PAIR(48) CMK_COPY_PAIR(64) CMK_COPY_PAIR(80) \
    CMK_COPY_PAIR(96) CMK_COPY_PAIR(112) CMK_COPY_PAIR(128) CMK_COPY_PAIR(144) CMK_COPY_PAIR(160) CMK_COPY_PAIR(176) \
    CMK_COPY_PAIR(192) CMK_COPY_PAIR(208) CMK_COPY_PAIR(224) CMK_COPY_PAIR(240) CMK_COPY_PAIR(256)

/// Copy the general part of a trap frame or user context: x0...x30,
/// SP_EL0, PC, PSTATE (CMK_FRAME_GENERAL_WORDS = 34 words, both ends 8-byte
/// aligned; 17 pairs), unrolled (the trap fastpath moves two per IPC).
static inline void cmk_copy_general_registers(uint64_t *dst, const uint64_t *src) {
    __asm__ volatile(CMK_COPY_GENERAL_PAIRS : : "r"(dst), "r"(src) : "x9", "x10", "memory");
}

/// Copy a whole trap frame or user context (CMK_FRAME_WORDS = 102 words,
/// both ends 8-byte aligned; 51 pairs), unrolled: the general trap path
/// moves one or two per trap.
static inline void cmk_copy_frame(uint64_t *dst, const uint64_t *src) {
    __asm__ volatile(
        CMK_COPY_GENERAL_PAIRS
        CMK_COPY_PAIR(272) CMK_COPY_PAIR(288) CMK_COPY_PAIR(304) CMK_COPY_PAIR(320) CMK_COPY_PAIR(336) CMK_COPY_PAIR(352)
        CMK_COPY_PAIR(368) CMK_COPY_PAIR(384) CMK_COPY_PAIR(400) CMK_COPY_PAIR(416) CMK_COPY_PAIR(432) CMK_COPY_PAIR(448)
        CMK_COPY_PAIR(464) CMK_COPY_PAIR(480) CMK_COPY_PAIR(496) CMK_COPY_PAIR(512) CMK_COPY_PAIR(528) CMK_COPY_PAIR(544)
        CMK_COPY_PAIR(560) CMK_COPY_PAIR(576) CMK_COPY_PAIR(592) CMK_COPY_PAIR(608) CMK_COPY_PAIR(624) CMK_COPY_PAIR(640)
        CMK_COPY_PAIR(656) CMK_COPY_PAIR(672) CMK_COPY_PAIR(688) CMK_COPY_PAIR(704) CMK_COPY_PAIR(720) CMK_COPY_PAIR(736)
        CMK_COPY_PAIR(752) CMK_COPY_PAIR(768) CMK_COPY_PAIR(784) CMK_COPY_PAIR(800)
        : : "r"(dst), "r"(src) : "x9", "x10", "memory");
}

/// An SMC Calling Convention call (PSCI uses it). Returns x0.
static inline uint64_t cmk_smc(uint64_t fid, uint64_t a1, uint64_t a2, uint64_t a3) {
    register uint64_t x0 __asm__("x0") = fid;
    register uint64_t x1 __asm__("x1") = a1;
    register uint64_t x2 __asm__("x2") = a2;
    register uint64_t x3 __asm__("x3") = a3;
    __asm__ volatile("smc #0"
                     : "+r"(x0), "+r"(x1), "+r"(x2), "+r"(x3)
                     :
                     : "x4", "x5", "x6", "x7", "x8", "x9", "x10", "x11", "x12", "x13",
                       "x14", "x15", "x16", "x17", "memory");
    return x0;
}

/// An Arm semihosting call (HLT #0xF000 on AArch64). QEMU serves it when
/// started with -semihosting-config enable=on.
static inline uint64_t cmk_semihosting(uint64_t op, uint64_t param) {
    register uint64_t x0 __asm__("x0") = op;
    register uint64_t x1 __asm__("x1") = param;
    __asm__ volatile("hlt #0xf000" : "+r"(x0) : "r"(x1) : "memory");
    return x0;
}

// GICv3 CPU interface (system-register access, ICC_SRE_EL2.SRE = 1).
CMK_SYSREG_READ(icc_sre_el2, icc_sre_el2)
CMK_SYSREG_WRITE(icc_sre_el2, icc_sre_el2)
CMK_SYSREG_WRITE(icc_pmr_el1, icc_pmr_el1)
CMK_SYSREG_WRITE(icc_bpr1_el1, icc_bpr1_el1)
CMK_SYSREG_WRITE(icc_igrpen1_el1, icc_igrpen1_el1)
CMK_SYSREG_WRITE(icc_eoir1_el1, icc_eoir1_el1)
CMK_SYSREG_READ(icc_iar1_el1, icc_iar1_el1)
CMK_SYSREG_READ(isr_el1, isr_el1)
/// Generate a group-1 SGI (ICC_SGI1R_EL1). The DSB orders earlier stores (a
/// message) before the interrupt; the ISB makes the write take effect.
static inline void cmk_send_sgi1(uint64_t value) {
    __asm__ volatile("dsb ishst; msr icc_sgi1r_el1, %0; isb" ::"r"(value) : "memory");
}

static inline void cmk_mmio_write32(uint64_t addr, uint32_t v) { *(volatile uint32_t *)addr = v; }
static inline uint32_t cmk_mmio_read32(uint64_t addr) { return *(volatile uint32_t *)addr; }
static inline void cmk_mmio_write64(uint64_t addr, uint64_t v) { *(volatile uint64_t *)addr = v; }
static inline uint64_t cmk_mmio_read64(uint64_t addr) { return *(volatile uint64_t *)addr; }

/// Switch this core to a cluster's translation tables and stack and jump to
/// `entry(arg)`. Never returns. Defined in entry.S.
__attribute__((noreturn)) void cmk_enter_cluster(uint64_t ttbr0, uint64_t sp, uint64_t tpidr,
                                                 uint64_t entry, uint64_t arg);

/// Physical entry point for cores started with PSCI CPU_ON (entry.S).
void cmk_secondary_entry(void);

/// Linker-script symbols (qemu/kernel.ld). Their addresses are the values.
/// The Swift function every core enters its cluster through (Boot).
void cmk_cluster_entry(uint64_t core_state);
static inline uint64_t cmk_cluster_entry_address(void) { return (uint64_t)&cmk_cluster_entry; }

extern char __image_start[], __rodata_start[], __image_ro_end[], __image_end[];
extern char __data_lma[], __private_start[], __data_end[], __bss_start[], __bss_end[];
static inline uint64_t cmk_image_start(void) { return (uint64_t)__image_start; }
static inline uint64_t cmk_rodata_start(void) { return (uint64_t)__rodata_start; }
static inline uint64_t cmk_image_ro_end(void) { return (uint64_t)__image_ro_end; }
static inline uint64_t cmk_image_end(void) { return (uint64_t)__image_end; }
static inline uint64_t cmk_data_lma(void) { return (uint64_t)__data_lma; }
static inline uint64_t cmk_private_start(void) { return (uint64_t)__private_start; }
static inline uint64_t cmk_data_end(void) { return (uint64_t)__data_end; }
static inline uint64_t cmk_bss_start(void) { return (uint64_t)__bss_start; }
static inline uint64_t cmk_bss_end(void) { return (uint64_t)__bss_end; }
static inline uint64_t cmk_secondary_entry_address(void) { return (uint64_t)&cmk_secondary_entry; }


// Virtualization: EL2 controls of the guest, its stage 2, the GIC's virtual
// CPU interface (ICH_*), and the EL1 registers an injected exception writes.
#define CMK_SYSREG_RW(name, reg) CMK_SYSREG_READ(name, reg) CMK_SYSREG_WRITE(name, reg)
CMK_SYSREG_RW(hcr_el2, hcr_el2)
CMK_SYSREG_RW(vtcr_el2, vtcr_el2)
CMK_SYSREG_RW(vttbr_el2, vttbr_el2)
CMK_SYSREG_RW(cpacr_el1, cpacr_el1)
CMK_SYSREG_RW(cntkctl_el1, cntkctl_el1)
CMK_SYSREG_RW(tpidr_el0, tpidr_el0)
CMK_SYSREG_RW(vmpidr_el2, vmpidr_el2)
CMK_SYSREG_RW(vpidr_el2, vpidr_el2)
CMK_SYSREG_READ(midr_el1, midr_el1)
CMK_SYSREG_RW(cnthctl_el2, cnthctl_el2)
CMK_SYSREG_RW(cntvoff_el2, cntvoff_el2)
CMK_SYSREG_RW(cnthp_ctl_el2, cnthp_ctl_el2)
CMK_SYSREG_RW(cnthp_cval_el2, cnthp_cval_el2)
CMK_SYSREG_RW(mdcr_el2, mdcr_el2)
CMK_SYSREG_RW(cptr_el2, cptr_el2)
// The PMU (Arch PMU, docs/bench-ipc.md).
CMK_SYSREG_RW(pmcr_el0, pmcr_el0)
CMK_SYSREG_RW(pmuserenr_el0, pmuserenr_el0)
CMK_SYSREG_RW(pmccfiltr_el0, pmccfiltr_el0)
CMK_SYSREG_RW(pmevtyper0_el0, pmevtyper0_el0)
CMK_SYSREG_RW(pmcntenset_el0, pmcntenset_el0)
CMK_SYSREG_RW(pmintenset_el1, pmintenset_el1)
CMK_SYSREG_RW(ich_hcr_el2, S3_4_C12_C11_0)
CMK_SYSREG_READ(ich_vtr_el2, S3_4_C12_C11_1)
CMK_SYSREG_READ(ich_misr_el2, S3_4_C12_C11_2)
CMK_SYSREG_READ(ich_eisr_el2, S3_4_C12_C11_3)
CMK_SYSREG_READ(ich_elrsr_el2, S3_4_C12_C11_5)
CMK_SYSREG_RW(ich_vmcr_el2, S3_4_C12_C11_7)
CMK_SYSREG_RW(icc_ctlr_el1, S3_0_C12_C12_4)
CMK_SYSREG_WRITE(icc_dir_el1, S3_0_C12_C11_1)
CMK_SYSREG_RW(elr_el1, elr_el1)
CMK_SYSREG_RW(spsr_el1, spsr_el1)
CMK_SYSREG_RW(esr_el1, esr_el1)
CMK_SYSREG_RW(far_el1, far_el1)
CMK_SYSREG_READ(vbar_el1, vbar_el1)
CMK_SYSREG_READ(sctlr_el1, sctlr_el1)
CMK_SYSREG_READ(cntv_ctl_el0, cntv_ctl_el0)
/// List register `n` (0..15) of the GIC's virtual CPU interface.
static inline uint64_t cmk_read_ich_lr(unsigned n) {
    uint64_t v = 0;
    switch (n) {
#define CMK_LR_READ(i, reg) case i: __asm__ volatile("mrs %0, " #reg : "=r"(v)); break;
    CMK_LR_READ(0, S3_4_C12_C12_0) CMK_LR_READ(1, S3_4_C12_C12_1) CMK_LR_READ(2, S3_4_C12_C12_2)
    CMK_LR_READ(3, S3_4_C12_C12_3) CMK_LR_READ(4, S3_4_C12_C12_4) CMK_LR_READ(5, S3_4_C12_C12_5)
    CMK_LR_READ(6, S3_4_C12_C12_6) CMK_LR_READ(7, S3_4_C12_C12_7) CMK_LR_READ(8, S3_4_C12_C13_0)
    CMK_LR_READ(9, S3_4_C12_C13_1) CMK_LR_READ(10, S3_4_C12_C13_2) CMK_LR_READ(11, S3_4_C12_C13_3)
    CMK_LR_READ(12, S3_4_C12_C13_4) CMK_LR_READ(13, S3_4_C12_C13_5) CMK_LR_READ(14, S3_4_C12_C13_6)
    CMK_LR_READ(15, S3_4_C12_C13_7)
#undef CMK_LR_READ
    default: break;
    }
    return v;
}
static inline void cmk_write_ich_lr(unsigned n, uint64_t v) {
    switch (n) {
#define CMK_LR_WRITE(i, reg) case i: __asm__ volatile("msr " #reg ", %0" ::"r"(v) : "memory"); break;
    CMK_LR_WRITE(0, S3_4_C12_C12_0) CMK_LR_WRITE(1, S3_4_C12_C12_1) CMK_LR_WRITE(2, S3_4_C12_C12_2)
    CMK_LR_WRITE(3, S3_4_C12_C12_3) CMK_LR_WRITE(4, S3_4_C12_C12_4) CMK_LR_WRITE(5, S3_4_C12_C12_5)
    CMK_LR_WRITE(6, S3_4_C12_C12_6) CMK_LR_WRITE(7, S3_4_C12_C12_7) CMK_LR_WRITE(8, S3_4_C12_C13_0)
    CMK_LR_WRITE(9, S3_4_C12_C13_1) CMK_LR_WRITE(10, S3_4_C12_C13_2) CMK_LR_WRITE(11, S3_4_C12_C13_3)
    CMK_LR_WRITE(12, S3_4_C12_C13_4) CMK_LR_WRITE(13, S3_4_C12_C13_5) CMK_LR_WRITE(14, S3_4_C12_C13_6)
    CMK_LR_WRITE(15, S3_4_C12_C13_7)
#undef CMK_LR_WRITE
    default: break;
    }
}
/// Invalidate every stage-1 and stage-2 TLB entry of the current VMID,
/// inner shareable (after the guest's stage 2 changes), and wait.
static inline void cmk_tlbi_vmalls12e1is(void) {
    __asm__ volatile("dsb ishst; tlbi vmalls12e1is; dsb ish; isb" ::: "memory");
}
/// Start a vCPU from a frame at the top of the kernel stack (vectors.S).
__attribute__((noreturn)) void cmk_enter_guest(uint64_t *frame);
/// The FP/SIMD registers (q0...q31, FPSR, FPCR: 66 words, the trap frame's
/// layout from CMK_FRAME_FP on) into `area`, and back (vectors.S).
void cmk_fp_save(uint64_t *area);
void cmk_fp_load(const uint64_t *area);
/// Save or load the guest's EL1 registers (guest.S), the EL1 block of a
/// VCPU context (CMK_VCPU_EL1).
void cmk_el1_save(uint64_t *el1);
void cmk_el1_restore(const uint64_t *el1);
#else /* host: same names, never executed */

#define CMK_HOST_TRAP0(name) static inline uint64_t name(void) { __builtin_trap(); }
CMK_HOST_TRAP0(cmk_read_mpidr)
CMK_HOST_TRAP0(cmk_read_current_el)
CMK_HOST_TRAP0(cmk_read_esr_el2)
CMK_HOST_TRAP0(cmk_read_far_el2)
CMK_HOST_TRAP0(cmk_read_elr_el2)
CMK_HOST_TRAP0(cmk_read_spsr_el2)
CMK_HOST_TRAP0(cmk_read_hpfar_el2)
CMK_HOST_TRAP0(cmk_read_tpidr_el2)
CMK_HOST_TRAP0(cmk_read_sctlr_el2)
CMK_HOST_TRAP0(cmk_read_ttbr0_el2)
CMK_HOST_TRAP0(cmk_read_cntfrq)
CMK_HOST_TRAP0(cmk_read_par_el1)
CMK_HOST_TRAP0(cmk_read_id_aa64mmfr0)
CMK_HOST_TRAP0(cmk_read_cntvct)
CMK_HOST_TRAP0(cmk_dcache_line_size)
CMK_HOST_TRAP0(cmk_image_start)
CMK_HOST_TRAP0(cmk_image_ro_end)
CMK_HOST_TRAP0(cmk_rodata_start)
CMK_HOST_TRAP0(cmk_cluster_entry_address)
CMK_HOST_TRAP0(cmk_image_end)
CMK_HOST_TRAP0(cmk_data_lma)
CMK_HOST_TRAP0(cmk_private_start)
CMK_HOST_TRAP0(cmk_data_end)
CMK_HOST_TRAP0(cmk_bss_start)
CMK_HOST_TRAP0(cmk_bss_end)
CMK_HOST_TRAP0(cmk_secondary_entry_address)
static inline void cmk_write_tpidr_el2(uint64_t v) { (void)v; __builtin_trap(); }
CMK_HOST_TRAP0(cmk_read_icc_sre_el2)
CMK_HOST_TRAP0(cmk_read_icc_iar1_el1)
CMK_HOST_TRAP0(cmk_read_isr_el1)
static inline void cmk_write_icc_sre_el2(uint64_t v) { (void)v; __builtin_trap(); }
static inline void cmk_write_icc_pmr_el1(uint64_t v) { (void)v; __builtin_trap(); }
static inline void cmk_write_icc_bpr1_el1(uint64_t v) { (void)v; __builtin_trap(); }
static inline void cmk_write_icc_igrpen1_el1(uint64_t v) { (void)v; __builtin_trap(); }
static inline void cmk_write_icc_eoir1_el1(uint64_t v) { (void)v; __builtin_trap(); }
static inline void cmk_send_sgi1(uint64_t v) { (void)v; __builtin_trap(); }
static inline void cmk_mmio_write32(uint64_t a, uint32_t v) { (void)a; (void)v; __builtin_trap(); }
static inline uint32_t cmk_mmio_read32(uint64_t a) { (void)a; __builtin_trap(); }
static inline void cmk_mmio_write64(uint64_t a, uint64_t v) { (void)a; (void)v; __builtin_trap(); }
static inline uint64_t cmk_mmio_read64(uint64_t a) { (void)a; __builtin_trap(); }
static inline uint64_t cmk_translate_el2_read(uint64_t va) { (void)va; __builtin_trap(); }
static inline void cmk_dsb_sy(void) { __builtin_trap(); }
static inline void cmk_dsb_ish(void) { __builtin_trap(); }
static inline void cmk_dmb_ish(void) { __builtin_trap(); }
static inline void cmk_isb(void) { __builtin_trap(); }
static inline void cmk_sev(void) { __builtin_trap(); }
static inline void cmk_wfe(void) { __builtin_trap(); }
static inline void cmk_wfi(void) { __builtin_trap(); }
static inline void cmk_cpu_relax(void) { __builtin_trap(); }
static inline void cmk_dc_civac(uint64_t va) { (void)va; __builtin_trap(); }
static inline void cmk_dc_cvac(uint64_t va) { (void)va; __builtin_trap(); }
static inline void cmk_tlbi_alle2is(void) { __builtin_trap(); }
static inline void cmk_copy_words(uint64_t *dst, const uint64_t *src, uint64_t words) {
    for (uint64_t i = 0; i < words; i++) dst[i] = src[i];
}
static inline void cmk_copy_general_registers(uint64_t *d, const uint64_t *s) { for (int i = 0; i < 34; i++) d[i] = s[i]; }
static inline void cmk_copy_frame(uint64_t *d, const uint64_t *s) { for (int i = 0; i < 102; i++) d[i] = s[i]; }
static inline uint64_t cmk_smc(uint64_t f, uint64_t a, uint64_t b, uint64_t c) {
    (void)f; (void)a; (void)b; (void)c; __builtin_trap();
}
static inline uint64_t cmk_semihosting(uint64_t op, uint64_t p) { (void)op; (void)p; __builtin_trap(); }
static inline void cmk_enter_cluster(uint64_t t, uint64_t s, uint64_t p, uint64_t e, uint64_t a) {
    (void)t; (void)s; (void)p; (void)e; (void)a; __builtin_trap();
}


#define CMK_HOST_RW(name) CMK_HOST_TRAP0(cmk_read_##name) \
    static inline void cmk_write_##name(uint64_t v) { (void)v; __builtin_trap(); }
CMK_HOST_RW(hcr_el2)
CMK_HOST_RW(vtcr_el2)
CMK_HOST_RW(vttbr_el2)
CMK_HOST_RW(cpacr_el1)
CMK_HOST_RW(cntkctl_el1)
CMK_HOST_RW(tpidr_el0)
CMK_HOST_RW(vmpidr_el2)
CMK_HOST_RW(vpidr_el2)
CMK_HOST_TRAP0(cmk_read_midr_el1)
CMK_HOST_RW(cnthctl_el2)
CMK_HOST_RW(cntvoff_el2)
CMK_HOST_RW(cnthp_ctl_el2)
CMK_HOST_RW(cnthp_cval_el2)
CMK_HOST_RW(mdcr_el2)
CMK_HOST_RW(cptr_el2)
CMK_HOST_RW(pmcr_el0)
CMK_HOST_RW(pmuserenr_el0)
CMK_HOST_RW(pmccfiltr_el0)
CMK_HOST_RW(pmevtyper0_el0)
CMK_HOST_RW(pmcntenset_el0)
CMK_HOST_RW(pmintenset_el1)
CMK_HOST_RW(ich_hcr_el2)
CMK_HOST_TRAP0(cmk_read_ich_vtr_el2)
CMK_HOST_TRAP0(cmk_read_ich_misr_el2)
CMK_HOST_TRAP0(cmk_read_ich_eisr_el2)
CMK_HOST_TRAP0(cmk_read_ich_elrsr_el2)
CMK_HOST_RW(ich_vmcr_el2)
CMK_HOST_RW(icc_ctlr_el1)
static inline void cmk_write_icc_dir_el1(uint64_t v) { (void)v; __builtin_trap(); }
CMK_HOST_RW(elr_el1)
CMK_HOST_RW(spsr_el1)
CMK_HOST_RW(esr_el1)
CMK_HOST_RW(far_el1)
CMK_HOST_TRAP0(cmk_read_vbar_el1)
CMK_HOST_TRAP0(cmk_read_sctlr_el1)
CMK_HOST_TRAP0(cmk_read_cntv_ctl_el0)
static inline uint64_t cmk_read_ich_lr(unsigned n) { (void)n; __builtin_trap(); }
static inline void cmk_write_ich_lr(unsigned n, uint64_t v) { (void)n; (void)v; __builtin_trap(); }
static inline void cmk_tlbi_vmalls12e1is(void) { __builtin_trap(); }
static inline void cmk_enter_guest(uint64_t *f) { (void)f; __builtin_trap(); }
static inline void cmk_fp_save(uint64_t *a) { (void)a; __builtin_trap(); }
static inline void cmk_fp_load(const uint64_t *a) { (void)a; __builtin_trap(); }
static inline void cmk_el1_save(uint64_t *p) { (void)p; __builtin_trap(); }
static inline void cmk_el1_restore(const uint64_t *p) { (void)p; __builtin_trap(); }
#endif /* CMK_BARE_METAL */
#endif /* CMK_ARCH_ASM_H */
