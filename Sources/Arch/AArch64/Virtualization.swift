import ArchAsm

/// The EL2 controls of a guest at EL1 (docs/guest.md): traps, stage 2, the
/// virtual CPU identity, the timers, and the GIC's virtual CPU interface.
/// Hardware access only; the decisions are the VMM module's.
public enum Virtualization {
    /// Configure this core to run guest vCPUs: stage 2 on the tables at
    /// `stage2Root` with the guest's VMID, the traps of CMK_HCR_EL2_GUEST,
    /// the guest's MPIDR, timers, and the virtual CPU interface enabled.
    /// Physical interrupts then come to EL2 whenever the guest runs.
    public static func configureCore(stage2Root: UInt64, vmpidr: UInt64) {
        cmk_write_vtcr_el2(UInt64(CMK_VTCR_EL2))
        cmk_write_vttbr_el2((UInt64(CMK_GUEST_VMID) << 48) | stage2Root)
        cmk_write_vpidr_el2(cmk_read_midr_el1())
        // Bit 31 is RES1 in MPIDR: the guest reads a "multiprocessor" id.
        cmk_write_vmpidr_el2((1 << 31) | vmpidr)
        // EL1PCTEN, EL1PCEN: the guest reads the physical counter and may use
        // the physical timer without traps; it uses the virtual one (PPI 27),
        // whose offset is 0 on every core (Linux wants one offset everywhere).
        cmk_write_cnthctl_el2(0b11)
        cmk_write_cntvoff_el2(0)
        // MDCR_EL2: keep every PMU counter for EL1 (HPMN = PMCR_EL0.N is the
        // reset value), no debug traps.
        cmk_write_hcr_el2(UInt64(CMK_HCR_EL2_GUEST))
        cmk_isb()
        cmk_tlbi_vmalls12e1is()
        // ICH_HCR_EL2.En: the virtual CPU interface delivers list registers.
        cmk_write_ich_hcr_el2(1)
        cmk_write_ich_vmcr_el2(0)
        for i in 0..<listRegisterCount { cmk_write_ich_lr(UInt32(i), 0) }
        cmk_isb()
    }

    /// Run native user threads at EL0 on this core from now on (until
    /// `guestMode`): stage 2 on the VSpace at `root` with `vmid`, the traps of
    /// CMK_HCR_EL2_NATIVE (TGE: every EL0 exception comes to EL2; DC: stage 1
    /// off, so VA = IPA). The stage-2 walk control is the guest's (39-bit IPA,
    /// level-1 roots).
    public static func nativeMode(vmid: UInt64, root: UInt64) {
        // Already there (the same VSpace as the last entry): reading two
        // registers is much cheaper than writing four and a barrier.
        if cmk_read_hcr_el2() == UInt64(CMK_HCR_EL2_NATIVE) && cmk_read_vttbr_el2() == (vmid << 48) | root { return }
        cmk_write_vtcr_el2(UInt64(CMK_VTCR_EL2))
        cmk_write_vttbr_el2((vmid << 48) | root)
        cmk_write_hcr_el2(UInt64(CMK_HCR_EL2_NATIVE))
        // CPACR_EL1.FPEN = 0b11: EL0's FP/SIMD untrapped (QEMU applies
        // CPACR_EL1 to EL0 even with TGE). It is EL1 state: a vCPU's own
        // value comes back when its EL1 block is loaded (`VCPURun.load`).
        cmk_write_cpacr_el1(3 << 20)
        // CNTKCTL_EL1.EL0VCTEN (bit 1): EL0 reads the virtual counter
        // (CNTVCT_EL0, CNTFRQ_EL0) without a trap, as the kernel does (the
        // lock experiment times its calls with it); the timers stay the
        // kernel's (EL0PTEN, EL0VTEN clear). EL1 state, as CPACR_EL1.
        cmk_write_cntkctl_el1(1 << 1)
        cmk_isb()
    }

    /// Back to running the guest on this core: its stage 2 and traps.
    public static func guestMode(stage2Root: UInt64) {
        cmk_write_vttbr_el2((UInt64(CMK_GUEST_VMID) << 48) | stage2Root)
        cmk_write_hcr_el2(UInt64(CMK_HCR_EL2_GUEST))
        cmk_isb()
    }

    /// Invalidate every stage-1+2 TLB entry of `vmid`, in the inner
    /// shareable domain (every core of the machine: a VMID names one VSpace
    /// of one cluster; other clusters' VSpaces use other roots, and a
    /// spurious invalidation costs only a refill). VTTBR is restored.
    public static func invalidateTLB(vmid: UInt64) {
        let saved = cmk_read_vttbr_el2()
        cmk_write_vttbr_el2(vmid << 48)
        cmk_isb()
        cmk_tlbi_vmalls12e1is()
        cmk_write_vttbr_el2(saved)
        cmk_isb()
    }

    /// List registers this CPU interface has (ICH_VTR_EL2.ListRegs + 1).
    public static var listRegisterCount: Int { Int(cmk_read_ich_vtr_el2() & 0x1F) + 1 }
    public static func listRegister(_ i: Int) -> UInt64 { cmk_read_ich_lr(UInt32(i)) }
    public static func setListRegister(_ i: Int, _ value: UInt64) { cmk_write_ich_lr(UInt32(i), value) }
    /// ICH_HCR_EL2: En, plus NPIE (bit 3, maintenance interrupt while no
    /// list register is pending) when interrupts wait outside the LRs.
    public static func setControl(refillWhenNoPending: Bool) {
        cmk_write_ich_hcr_el2(refillWhenNoPending ? 0b1001 : 0b0001)
    }

    /// HPFAR_EL2: the faulting IPA's page for a stage-2 abort.
    public static var faultIPAPage: UInt64 { cmk_read_hpfar_el2() }
    public static var vectorBaseEL1: UInt64 { cmk_read_vbar_el1() }
    public static var systemControlEL1: UInt64 { cmk_read_sctlr_el1() }

    /// Write the EL1 side of an exception the kernel injects into the guest
    /// (the VMM computed the values); the frame's PC and PSTATE change too.
    public static func setExceptionRegistersEL1(elr: UInt64, spsr: UInt64, esr: UInt64, far: UInt64?) {
        cmk_write_elr_el1(elr)
        cmk_write_spsr_el1(spsr)
        cmk_write_esr_el1(esr)
        if let far { cmk_write_far_el1(far) }
    }

    /// Save or load the guest's EL1 registers (guest.S) into `el1`, a VCPU
    /// context's EL1 block (CMK_VCPU_EL1_WORDS words).
    public static func saveEL1(_ el1: UnsafeMutablePointer<UInt64>) { cmk_el1_save(el1) }
    public static func restoreEL1(_ el1: UnsafeMutablePointer<UInt64>) { cmk_el1_restore(el1) }

    /// Load `frame` (at the top of this core's kernel stack) and ERET into
    /// the guest. Never returns: every exit comes back through cmk_trap.
    public static func enter(frame: UnsafeMutablePointer<UInt64>) -> Never {
        cmk_enter_guest(frame)
        while true {}
    }
}
