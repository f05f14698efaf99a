import ArchAsm

/// Thin names over ArchAsm for the registers and instructions the portable
/// side of the boot path needs. Hardware access: bare metal only.
public enum CPU {
    /// Affinity fields of MPIDR_EL1 (Aff3:Aff2:Aff1:Aff0), the id PSCI takes.
    public static var mpidr: UInt64 { cmk_read_mpidr() & 0xFF_00FF_FFFF }
    public static var currentEL: UInt64 { (cmk_read_current_el() >> 2) & 3 }
    /// The virtual counter and its frequency.
    public static var counter: UInt64 { cmk_read_cntvct() }
    public static var counterFrequency: UInt64 { cmk_read_cntfrq() }
    public static var tpidr: UInt64 {
        get { cmk_read_tpidr_el2() }
        set { cmk_write_tpidr_el2(newValue) }
    }
    public static func relax() { cmk_cpu_relax() }
    public static func waitForEvent() { cmk_wfe() }
    public static func sendEvent() { cmk_sev() }
    public static func waitForInterrupt() { cmk_wfi() }
    public static func fullBarrier() { cmk_dsb_sy() }

    /// Translate a kernel virtual address with the MMU (AT S1E2R), so a report
    /// of "where does this global live" comes from the hardware walk itself.
    public static func physicalAddress(of va: UInt64) -> UInt64? {
        let par = cmk_translate_el2_read(va)
        if par & 1 != 0 { return nil }
        return (par & 0x0000_FFFF_FFFF_F000) | (va & 0xFFF)
    }

    /// Clean [address, address + size) to the point of coherency, so a core
    /// that reads it with its MMU (and so its caches) off sees the data.
    public static func cleanToPoC(_ address: UInt64, size: UInt64) {
        let line = cmk_dcache_line_size()
        var a = address & ~(line - 1)
        while a < address + size {
            cmk_dc_cvac(a)
            a += line
        }
        cmk_dsb_sy()
    }
}

/// The EL2 physical timer (CNTHP), used for one thing: bounding a WFI, so a
/// core that waits for a peer which died (and so never rings its doorbell)
/// still wakes at its deadline. Its interrupt is PPI 26; the core enables it
/// once (`GICv3.enablePrivateInterrupt`). The guest never sees this timer.
public enum WakeTimer {
    public static let interrupt: UInt64 = 26

    /// Fire at virtual-counter value `deadline` (the compare register counts
    /// the physical counter: add CNTVOFF_EL2).
    public static func arm(at deadline: UInt64) {
        cmk_write_cnthp_cval_el2(deadline &+ cmk_read_cntvoff_el2())
        cmk_write_cnthp_ctl_el2(1)  // ENABLE, not masked
        cmk_isb()
    }

    /// Armed and its deadline passed (CNTHP_CTL_EL2: ENABLE and ISTATUS; with
    /// ENABLE clear ISTATUS is UNKNOWN, so a disarmed timer is never due).
    public static var due: Bool { cmk_read_cnthp_ctl_el2() & 5 == 5 }

    /// Stop it: the level interrupt drops at once, so nothing stays pending.
    public static func disarm() {
        cmk_write_cnthp_ctl_el2(0)
        cmk_isb()
    }
}
