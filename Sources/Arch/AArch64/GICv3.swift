import ArchAsm

/// The GICv3 on QEMU virt, used for one thing so far: software-generated
/// interrupts (SGIs) as the inter-kernel channel's doorbell.
///
/// The kernel runs with interrupts masked (PSTATE.I) and polls: a pending SGI
/// still wakes a core from WFI, and the core then acknowledges it here and
/// looks at its rings. Taking the IRQ as an exception comes with preemption
/// points and the guest.
///
/// Set-up is split by owner: the distributor once, by the loader, before any
/// cluster runs; each core's redistributor and CPU interface by that core.
public enum GICv3 {
    /// The SGI the channel rings as its doorbell.
    public static let doorbellSGI: UInt64 = 1
    /// Spurious interrupt id: nothing to acknowledge.
    public static let spurious: UInt64 = 1023

    // Distributor registers.
    static let ctlr: UInt64 = 0x0000
    static let ctlrRWP: UInt32 = 1 << 31
    static let ctlrEnableGrp0: UInt32 = 1 << 0
    static let ctlrEnableGrp1: UInt32 = 1 << 1
    static let ctlrARE: UInt32 = 1 << 4

    // Redistributor: RD_base frame, then SGI_base 64 KiB above it.
    static let waker: UInt64 = 0x0014
    static let wakerProcessorSleep: UInt32 = 1 << 1
    static let wakerChildrenAsleep: UInt32 = 1 << 2
    static let typer: UInt64 = 0x0008
    static let sgiBase: UInt64 = 0x1_0000
    static let igroupr0: UInt64 = 0x0080
    static let isenabler0: UInt64 = 0x0100
    static let icenabler0: UInt64 = 0x0180
    static let ipriorityr: UInt64 = 0x0400

    /// Affinity routing on, group 0 and 1 forwarded. Loader only.
    public static func initDistributor() {
        let d = QemuVirt.gicDistributor
        cmk_mmio_write32(d + ctlr, ctlrARE)
        waitForRegisterWrite()
        cmk_mmio_write32(d + ctlr, ctlrARE | ctlrEnableGrp1 | ctlrEnableGrp0)
        waitForRegisterWrite()
    }

    static func waitForRegisterWrite() {
        while cmk_mmio_read32(QemuVirt.gicDistributor + ctlr) & ctlrRWP != 0 {}
    }

    /// The redistributor of the core `mpidr`, checked: its GICR_TYPER must
    /// name that affinity. Computed, not found by walking the frames: a
    /// cluster maps only its own cores' frames (QEMU virt lays them out in
    /// CPU order, CPU index = Aff1 * 16 + Aff0, `QemuVirt.mpidr(ofCore:)`).
    public static func redistributor(forMPIDR mpidr: UInt64) -> UInt64? {
        let affinity = ((mpidr >> 32) & 0xFF) << 24 | (mpidr & 0xFF_FFFF)
        let index = Int((mpidr >> 8) & 0xFF) * 16 + Int(mpidr & 0xFF)
        guard mpidr & 0xFF < 16, mpidr & 0xFF_0000 == 0, index < QemuVirt.gicRedistributorRegionCores else { return nil }
        let frame = QemuVirt.redistributor(ofCore: index)
        return cmk_mmio_read64(frame + typer) >> 32 == affinity ? frame : nil
    }

    /// Wake this core's redistributor, enable the doorbell SGI as group 1,
    /// and turn on the CPU interface. Each core calls it for itself.
    /// Returns false if no redistributor matches this core.
    public static func initThisCore() -> Bool {
        guard let rd = redistributor(forMPIDR: CPU.mpidr) else { return false }
        cmk_mmio_write32(rd + waker, cmk_mmio_read32(rd + waker) & ~wakerProcessorSleep)
        while cmk_mmio_read32(rd + waker) & wakerChildrenAsleep != 0 {}
        let sgi = rd + sgiBase
        cmk_mmio_write32(sgi + igroupr0, cmk_mmio_read32(sgi + igroupr0) | (1 << UInt32(doorbellSGI)))
        let priorityWord = sgi + ipriorityr + (doorbellSGI & ~3)
        let shift = UInt32((doorbellSGI & 3) * 8)
        cmk_mmio_write32(priorityWord, (cmk_mmio_read32(priorityWord) & ~(0xFF << shift)) | (0x80 << shift))
        cmk_mmio_write32(sgi + isenabler0, 1 << UInt32(doorbellSGI))
        // CPU interface: system-register access (and let EL1 use it too).
        cmk_write_icc_sre_el2(cmk_read_icc_sre_el2() | 0b1001)
        cmk_isb()
        cmk_write_icc_pmr_el1(0xFF)
        cmk_write_icc_bpr1_el1(0)
        cmk_write_icc_igrpen1_el1(1)
        cmk_isb()
        return true
    }

    /// Stop taking group-1 interrupts on this core (ICC_IGRPEN1_EL1 = 0): a
    /// core parked for good is not woken by every doorbell peers ring.
    public static func disableThisCore() {
        cmk_write_icc_igrpen1_el1(0)
        cmk_isb()
    }

    // MARK: Interrupts for a guest (docs/guest.md)

    static let isenabler: UInt64 = 0x0100
    static let igroupr: UInt64 = 0x0080
    static let irouter: UInt64 = 0x6000

    /// Enable the private interrupt `intid` (16...31) for this core, group 1,
    /// at `priority`.
    public static func enablePrivateInterrupt(_ intid: UInt64, priority: UInt8) -> Bool {
        guard intid >= 16, intid < 32, let rd = redistributor(forMPIDR: CPU.mpidr) else { return false }
        let sgi = rd + sgiBase
        cmk_mmio_write32(sgi + igroupr0, cmk_mmio_read32(sgi + igroupr0) | (1 << UInt32(intid)))
        setPriority(sgi + ipriorityr, intid, priority)
        cmk_mmio_write32(sgi + isenabler0, 1 << UInt32(intid))
        return true
    }

    /// Enable or disable the private interrupt `intid` (16...31) of the core
    /// `mpidr` (one of this cluster's: its redistributor is mapped here),
    /// group 1 at `priority`; waits until a disable has taken effect.
    public static func setPrivateInterrupt(_ intid: UInt64, enabled: Bool, mpidr: UInt64, priority: UInt8) -> Bool {
        guard intid >= 16, intid < 32, let rd = redistributor(forMPIDR: mpidr) else { return false }
        let sgi = rd + sgiBase
        if enabled {
            cmk_mmio_write32(sgi + igroupr0, cmk_mmio_read32(sgi + igroupr0) | (1 << UInt32(intid)))
            setPriority(sgi + ipriorityr, intid, priority)
            cmk_mmio_write32(sgi + isenabler0, 1 << UInt32(intid))
        } else {
            cmk_mmio_write32(sgi + icenabler0, 1 << UInt32(intid))
            // GICR_CTLR.RWP (bit 3): the disable is visible before we go on.
            while cmk_mmio_read32(rd + ctlr) & (1 << 3) != 0 { cmk_cpu_relax() }
        }
        return true
    }

    /// Route the shared interrupt `intid` to the core `mpidr`, group 1, at
    /// `priority`, and enable it. Only the distributor's owner calls this.
    public static func routeSharedInterrupt(_ intid: UInt64, toMPIDR mpidr: UInt64, priority: UInt8) {
        let d = QemuVirt.gicDistributor
        let word = (intid / 32) * 4
        let bit = UInt32(1) << UInt32(intid % 32)
        cmk_mmio_write32(d + igroupr + word, cmk_mmio_read32(d + igroupr + word) | bit)
        setPriority(d + ipriorityr, intid, priority)
        let affinity = ((mpidr >> 32) & 0xFF) << 32 | (mpidr & 0xFF_FFFF)
        cmk_mmio_write64(d + irouter + intid * 8, affinity)
        cmk_mmio_write32(d + isenabler + word, bit)
        waitForRegisterWrite()
    }

    static func setPriority(_ base: UInt64, _ intid: UInt64, _ priority: UInt8) {
        let word = base + (intid & ~3)
        let shift = UInt32((intid & 3) * 8)
        cmk_mmio_write32(word, (cmk_mmio_read32(word) & ~(0xFF << shift)) | (UInt32(priority) << shift))
    }

    /// Split priority drop from deactivation on this core (ICC_CTLR_EL1.EOImode
    /// = 1): `endOfInterrupt` only drops the running priority, `deactivate`
    /// ends the interrupt. A hardware-linked virtual interrupt (the guest's
    /// timer) is then deactivated by the guest's own EOI.
    public static func splitEndOfInterrupt() {
        cmk_write_icc_ctlr_el1(cmk_read_icc_ctlr_el1() | 0b10)
        cmk_isb()
    }
    /// Whether this core split EOI: read from its own ICC_CTLR_EL1 (a
    /// cluster-wide flag was wrong for the cluster's other cores, which
    /// then wrote ICC_DIR_EL1 with EOImode = 0, an UNPREDICTABLE write).
    public static var eoiSplit: Bool { cmk_read_icc_ctlr_el1() & 0b10 != 0 }

    /// Acknowledge the highest-priority pending group-1 interrupt (its INTID;
    /// 1020...1023: none).
    public static func acknowledge() -> UInt64 { cmk_read_icc_iar1_el1() & 0xFF_FFFF }
    public static func endOfInterrupt(_ intid: UInt64) { cmk_write_icc_eoir1_el1(intid) }
    public static func deactivate(_ intid: UInt64) { cmk_write_icc_dir_el1(intid) }

    /// ICC_SGI1R_EL1 value targeting one core by its MPIDR.
    public static func sgiTarget(mpidr: UInt64, sgi: UInt64) -> UInt64 {
        let aff3 = (mpidr >> 32) & 0xFF
        let aff2 = (mpidr >> 16) & 0xFF
        let aff1 = (mpidr >> 8) & 0xFF
        let aff0 = mpidr & 0xF
        return (aff3 << 48) | (aff2 << 32) | (sgi << 24) | (aff1 << 16) | (1 << aff0)
    }

    /// Ring the doorbell of the core `mpidr`. Stores before it (the message)
    /// are visible before the interrupt (DSB in cmk_send_sgi1).
    public static func ring(mpidr: UInt64) {
        cmk_send_sgi1(sgiTarget(mpidr: mpidr, sgi: doorbellSGI))
    }

    /// Acknowledge and complete every pending interrupt for this core;
    /// returns how many doorbells were taken.
    @discardableResult
    public static func drain() -> Int {
        var taken = 0
        while true {
            let id = cmk_read_icc_iar1_el1() & 0xFF_FFFF
            if id >= 1020 { return taken }
            cmk_write_icc_eoir1_el1(id)
            if eoiSplit { cmk_write_icc_dir_el1(id) }
            if id == doorbellSGI { taken += 1 }
        }
    }
}
