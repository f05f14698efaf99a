import ArchAsm

/// The performance monitors, opened to EL0 for `cmk bench ipc --qemu`
/// (docs/bench-ipc.md). Hardware access only.
///
/// Boot calls `enableForUser` once on each core that runs user threads,
/// before its first EL0 thread: EL0 may then read (and reprogram) the
/// counters without trapping, and the two the benchmark uses already run:
///
/// - event counter 0 counts INST_RETIRED (event 0x08),
/// - the cycle counter (PMCCNTR_EL0, 64-bit),
///
/// both at EL0, EL1 and EL2 (the NSH filter bit), so a system call's
/// exception entry, the kernel at EL2 and the ERET back are counted. Nothing
/// is reset: readers take differences.
public enum PMU {
    /// PMUSERENR_EL0: EN (bit 0), SW (1), CR (2), ER (3).
    public static let userAccess: UInt64 = 0xF
    /// PMEVTYPER<n>_EL0 / PMCCFILTR_EL0 bit 27 (NSH): count at EL2 as well.
    public static let countEL2: UInt64 = 1 << 27
    /// The architected event INST_RETIRED.
    public static let instRetired: UInt64 = 0x08
    /// PMCR_EL0: E (bit 0, enable) and LC (bit 6, 64-bit cycle counter).
    public static let enable: UInt64 = 1 | (1 << 6)
    /// PMCNTENSET_EL0: the cycle counter (bit 31) and event counter 0.
    public static let counters: UInt64 = (1 << 31) | 1
    /// PMINTENSET_EL1: the cycle counter's overflow raises the PMU's
    /// interrupt (PPI 23 on QEMU virt). It reaches no one unless a user's
    /// IRQHandler enabled that PPI at the GIC (Kernel/Objects/IRQ.swift): a
    /// user-level profiler's interrupt, and the root task's IRQ test
    /// (it sets the overflow flag itself, PMOVSSET_EL0).
    public static let overflowInterrupts: UInt64 = 1 << 31
    /// The PMU's interrupt on QEMU virt (PPI 7).
    public static let interrupt: UInt64 = 23

    /// MDCR_EL2 for EL0/EL1 access: HPMN (bits 0-4) = PMCR_EL0.N (every
    /// counter belongs to EL0/EL1), TPMCR (5), TPM (6), HPME (7) and HPMD
    /// (17: no counting at EL2) clear; the debug bits kept.
    public static func mdcr(current: UInt64, pmcr: UInt64) -> UInt64 {
        let n = (pmcr >> 11) & 0x1F
        return (current & ~(UInt64(0xFF) | (1 << 17))) | n
    }

    public static func enableForUser() {
        let pmcr = cmk_read_pmcr_el0()
        cmk_write_mdcr_el2(mdcr(current: cmk_read_mdcr_el2(), pmcr: pmcr))
        cmk_write_pmuserenr_el0(userAccess)
        cmk_write_pmevtyper0_el0(instRetired | countEL2)
        cmk_write_pmccfiltr_el0(countEL2)
        cmk_write_pmcntenset_el0(counters)
        cmk_write_pmintenset_el1(overflowInterrupts)
        cmk_write_pmcr_el0((pmcr & ~UInt64(0x7F)) | enable)
        cmk_isb()
    }
}
