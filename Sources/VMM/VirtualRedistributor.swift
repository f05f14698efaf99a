/// One vCPU's redistributor (GICR, a 128 KiB pair at 0x080A0000 + 0x20000*i:
/// RD_base frame, then SGI_base frame at +0x10000) and everything about
/// interrupts that belongs to that vCPU: its SGIs (0..15) and PPIs (16..31),
/// its copy of the SPIs the distributor has handed it (32..127), hardware
/// links, and the list-register bookkeeping (`flush`, `sync` in
/// ListRegisters.swift). It lives in the vCPU's cluster; it hears about SPIs
/// only through `accept(_:)` and answers with `nextReport()`.
///
/// Access policy (`access`): every register is 32-bit and aligned, except
/// GICR_TYPER, PROPBASER and PENDBASER (64-bit or either 32-bit half) and
/// IPRIORITYR (byte or word). Another size or alignment, an offset not
/// implemented, or a write to a read-only register (IIDR, TYPER, PIDR2)
/// answers `.refused`. ICFGR0 is architecturally read-write with read-only
/// fields: writes are ignored (SGIs are always edge), not refused.
///
/// Per-INTID state invariants (n in 0..<128):
/// - pending(n) = latch[n] || (level-sensitive(n) && line[n]); `line` is
///   only driven for PPIs (`setLevel`); an SPI's line lives in the
///   distributor, its latch here is "the distributor said pending".
/// - While an edge-triggered or HW-linked interrupt's pending state sits in
///   a list register (from `flush` to `sync`) its latch is clear: the list
///   register holds it, and `sync` puts it back if the guest has not taken
///   it (so an edge that arrives meanwhile merges, and is not lost). A
///   level-sensitive one keeps its latch until its list register comes back
///   invalid. The kernel must `sync` first on every exit, before any guest
///   register access or message touches this vCPU.
/// - active[n] is the list register's active bit as of the last `sync` (or a
///   guest write to ISACTIVER/ICACTIVER).
/// - hardware[n] (n < 32 only): the list register gets HW = 1 with
///   physicalID[n]; the physical interrupt's active state follows the
///   virtual one, and no EOI maintenance is asked for it.
/// - SGIs are always edge; SPIs are level-sensitive as the last notice said.
public struct VirtualRedistributor {
    public let vcpu: Int
    /// The vCPU's MPIDR affinity bits (GICR_TYPER[63:32] in Aff3.Aff2.Aff1.Aff0 order).
    public let mpidr: UInt64
    /// This is the last vCPU's frame (GICR_TYPER.Last).
    public let isLast: Bool

    /// GICR_WAKER.ProcessorSleep (reset 1: asleep until the guest wakes it).
    private var processorSleep = true
    /// GICD_CTLR.EnableGrp1, as the distributor last said.
    private(set) public var group1Enabled = false

    var enabled = InterruptBits()       // SGIs/PPIs only; SPIs are gated by the distributor
    var latch = InterruptBits()
    var line = InterruptBits()
    var active = InterruptBits()
    /// Set = edge. SGIs always; PPIs per ICFGR1; SPIs per the last notice.
    var edge = InterruptBits()
    var hardware = InterruptBits()
    var priority = InlineArray<128, UInt8>(repeating: 0)
    var physicalID = InlineArray<32, UInt16>(repeating: 0)

    // SPI bookkeeping with the distributor (indexes 32..<128 are meaningful).
    var spiSequence = InlineArray<96, UInt8>(repeating: 0)
    /// What the distributor believes (last notice or report).
    var reportedPending = InterruptBits()
    var reportedActive = InterruptBits()
    /// SPIs whose state changed at the last `sync`; their state as of then.
    var reportDue = InterruptBits()
    var reportPending = InterruptBits()
    var reportActive = InterruptBits()

    /// vCPU `vcpu` of `topology` (its MPIDR and Last bit come from there).
    /// Reset: asleep, everything disabled, inactive, not pending, priority 0,
    /// SGIs edge, PPIs level.
    public init(vcpu: Int, topology: VCPUTopology) {
        self.vcpu = vcpu
        self.mpidr = topology.mpidr(ofVCPU: vcpu)
        self.isLast = vcpu == topology.count - 1
        edge.low = 0xFFFF
    }

    // MARK: Registers any cluster can answer

    /// GICR_TYPER of vCPU `vcpu`: affinity [63:32], Processor_Number [23:8],
    /// Last [4]; PLPIS, VLPIS, DirectLPI, PPInum = 0 (16 PPIs).
    public static func typer(vcpu: Int, topology: VCPUTopology) -> UInt64 {
        typer(vcpu: vcpu, mpidr: topology.mpidr(ofVCPU: vcpu), isLast: vcpu == topology.count - 1)
    }

    /// The registers of vCPU `vcpu`'s frame that need none of its state
    /// (IIDR, TYPER, PIDR2): a cluster can answer another vCPU's frame with
    /// these during Linux's redistributor walk. nil: the register needs the
    /// owning vCPU's state (forward the access, or refuse it).
    /// `offset` is within the vCPU's 128 KiB pair.
    public static func identificationAccess(vcpu: Int, topology: VCPUTopology,
                                            offset: Int, size: Int, isWrite: Bool) -> MMIOResult? {
        switch offset {
        case 0x0004, 0x0008, 0x000C, 0xFFE8:
            return identification(offset, size, isWrite, typer: typer(vcpu: vcpu, topology: topology))
        default:
            return nil
        }
    }

    /// Which vCPU's frame, and the offset inside it, an offset into the whole
    /// redistributor region falls in (nil: past the last vCPU's frame).
    public static func locate(regionOffset: Int, topology: VCPUTopology) -> (vcpu: Int, offset: Int)? {
        guard regionOffset >= 0 else { return nil }
        let v = regionOffset / 0x20000
        guard v < topology.count else { return nil }
        return (v, regionOffset % 0x20000)
    }

    // MARK: Guest access

    /// One trapped access at `offset` (0 ..< 0x20000) in this vCPU's frames.
    public mutating func access(offset: Int, size: Int, isWrite: Bool, value: UInt64) -> MMIOResult {
        switch offset {
        case 0x0004, 0x0008, 0x000C, 0xFFE8:
            return Self.identification(offset, size, isWrite,
                                       typer: Self.typer(vcpu: vcpu, mpidr: mpidr, isLast: isLast))
        case 0x0000:        // GICR_CTLR: no LPIs: EnableLPIs RES0, RWP/UWP 0. RAZ/WI.
            guard size == 4 else { return .refused }
            return .done(0)
        case 0x0010:        // GICR_STATUSR: RAZ/WI
            guard size == 4 else { return .refused }
            return .done(0)
        case 0x0014:        // GICR_WAKER
            guard size == 4 else { return .refused }
            if isWrite {
                processorSleep = value & 2 != 0     // only ProcessorSleep is writable
                return .done(0)
            }
            // ChildrenAsleep (bit 2) mirrors ProcessorSleep (bit 1) at once.
            return .done(processorSleep ? 0b110 : 0)
        case 0x0070, 0x0074, 0x0078, 0x007C:    // GICR_PROPBASER, PENDBASER: RAZ/WI
            guard size == 4 || (size == 8 && offset & 7 == 0) else { return .refused }
            return .done(0)
        case 0x10080:       // GICR_IGROUPR0: RAO/WI (all Group 1)
            guard size == 4 else { return .refused }
            return .done(isWrite ? 0 : 0xFFFF_FFFF)
        case 0x10100: return bits(&enabled, set: true, size, isWrite, value)
        case 0x10180: return bits(&enabled, set: false, size, isWrite, value)
        case 0x10200:
            guard size == 4 else { return .refused }
            if !isWrite { return .done(UInt64(pendingBits.word(0))) }
            latch.setWord(0, latch.word(0) | UInt32(truncatingIfNeeded: value))
            return .done(0)
        case 0x10280:
            guard size == 4 else { return .refused }
            if !isWrite { return .done(UInt64(pendingBits.word(0))) }
            latch.setWord(0, latch.word(0) & ~UInt32(truncatingIfNeeded: value))
            return .done(0)
        case 0x10300: return bits(&active, set: true, size, isWrite, value)
        case 0x10380: return bits(&active, set: false, size, isWrite, value)
        case 0x10400..<0x10420:     // GICR_IPRIORITYR0..7
            guard size == 1 || size == 4, isAligned(offset, size) else { return .refused }
            let first = offset - 0x10400
            var result: UInt64 = 0
            for i in 0..<size {
                if isWrite {
                    priority[first + i] = byte(value, i) & VirtualGIC.priorityMask
                } else {
                    result |= UInt64(priority[first + i]) << UInt64(8 * i)
                }
            }
            return .done(result)
        case 0x10C00:       // GICR_ICFGR0: SGIs, edge, read-only fields (WI)
            guard size == 4 else { return .refused }
            return .done(isWrite ? 0 : 0xAAAA_AAAA)
        case 0x10C04:       // GICR_ICFGR1: PPIs; odd bits writable (1 = edge), even RES0
            guard size == 4 else { return .refused }
            if isWrite {
                for k in 0..<16 { edge[16 + k] = (value >> UInt64(2 * k + 1)) & 1 == 1 }
                return .done(0)
            }
            var r: UInt64 = 0
            for k in 0..<16 where edge[16 + k] { r |= 1 << UInt64(2 * k + 1) }
            return .done(r)
        case 0x10D00, 0x10E00:  // GICR_IGRPMODR0, GICR_NSACR: RAZ/WI
            guard size == 4 else { return .refused }
            return .done(0)
        default:
            return .refused
        }
    }

    /// IIDR, TYPER (64-bit or halves), PIDR2: read-only.
    private static func identification(_ offset: Int, _ size: Int, _ isWrite: Bool, typer t: UInt64) -> MMIOResult {
        switch offset {
        case 0x0004, 0xFFE8:
            guard size == 4, !isWrite else { return .refused }
            return .done(UInt64(offset == 0x0004 ? VirtualGIC.iidr : VirtualGIC.pidr2))
        default:
            guard (size == 8 && offset == 0x0008) || size == 4, !isWrite else { return .refused }
            if size == 8 { return .done(t) }
            return .done(offset == 0x0008 ? t & 0xFFFF_FFFF : t >> 32)
        }
    }

    private static func typer(vcpu: Int, mpidr m: UInt64, isLast: Bool) -> UInt64 {
        let aff = (m & 0xFF_FFFF) | (((m >> 32) & 0xFF) << 24)   // Aff3.Aff2.Aff1.Aff0
        return (aff << 32) | (UInt64(vcpu & 0xFFFF) << 8) | (isLast ? 1 << 4 : 0)
    }

    /// A set/clear register pair over INTIDs 0..31 of `state`.
    private func bits(_ state: inout InterruptBits, set: Bool, _ size: Int, _ isWrite: Bool, _ value: UInt64) -> MMIOResult {
        guard size == 4 else { return .refused }
        if !isWrite { return .done(UInt64(state.word(0))) }
        let v = UInt32(truncatingIfNeeded: value)
        state.setWord(0, set ? state.word(0) | v : state.word(0) & ~v)
        return .done(0)
    }

    /// SGI/PPI pending state as the guest reads it.
    private var pendingBits: InterruptBits { latch | (line & ~edge) }

    // MARK: Inputs from the kernel

    /// An edge on SGI or PPI `intid` (0..31): a guest IPI (after
    /// `SGIRequest.targets`), or a hardware-linked PPI whose physical
    /// interrupt fired. Returns false for another INTID.
    @discardableResult
    public mutating func setPending(intid: Int) -> Bool {
        guard intid >= 0 && intid < 32 else { return false }
        latch[intid] = true
        return true
    }

    /// Drives PPI `intid` (16..31)'s input line. A level-sensitive PPI is
    /// pending while its line is high; an edge PPI latches on a rising edge.
    @discardableResult
    public mutating func setLevel(intid: Int, high: Bool) -> Bool {
        guard intid >= 16 && intid < 32 else { return false }
        if high && !line[intid] && edge[intid] { latch[intid] = true }
        line[intid] = high
        return true
    }

    /// Links virtual PPI/SGI `intid` to physical INTID `physical` (< 1020):
    /// its list register gets HW = 1, so the guest's deactivation deactivates
    /// the physical interrupt (the virtual timer: PPI 27 -> 27).
    @discardableResult
    public mutating func linkHardware(intid: Int, physical: Int) -> Bool {
        guard intid >= 0 && intid < 32, physical >= 0 && physical < 1020 else { return false }
        hardware[intid] = true
        physicalID[intid] = UInt16(physical)
        return true
    }

    public mutating func unlinkHardware(intid: Int) {
        hardware[intid] = false
    }

    // MARK: Messages from and to the distributor

    /// Applies a distributor message addressed to this vCPU (others ignored).
    /// A pending notice with a new sequence makes the SPI pending; with the
    /// sequence already applied it only refreshes priority and trigger mode.
    public mutating func accept(_ message: DistributorMessage) {
        guard message.vcpu == vcpu else { return }
        switch message {
        case .group1Enable(_, let on):
            group1Enabled = on
        case .spi(let n):
            let i = n.intid
            guard i >= 32 && i < VirtualGIC.intidLimit else { return }
            priority[i] = n.priority & VirtualGIC.priorityMask
            edge[i] = !n.levelSensitive
            if n.pending {
                if n.sequence != spiSequence[i - 32] { latch[i] = true }
            } else {
                latch[i] = false
            }
            spiSequence[i - 32] = n.sequence
            reportedPending[i] = n.pending
        }
    }

    /// The next report owed to the distributor after a `sync`, or nil. Each
    /// carries the state as of that `sync`, whenever it is drained.
    public mutating func nextReport() -> SPIReport? {
        guard let i = reportDue.first else { return nil }
        reportDue[i] = false
        return SPIReport(vcpu: vcpu, intid: i, sequence: spiSequence[i - 32],
                         pending: reportPending[i], active: reportActive[i])
    }

    // MARK: State, for tests and the kernel's trace

    public func isPending(intid: Int) -> Bool { latch[intid] || (!edge[intid] && line[intid]) }
    public func isActive(intid: Int) -> Bool { active[intid] }
    public func isEnabled(intid: Int) -> Bool { intid >= 32 || enabled[intid] }
    public func priority(intid: Int) -> UInt8 { intid >= 0 && intid < 128 ? priority[intid] : 0 }
    public func isHardwareLinked(intid: Int) -> Bool { hardware[intid] }
    /// GICR_WAKER.ProcessorSleep.
    public var isAsleep: Bool { processorSleep }
}
