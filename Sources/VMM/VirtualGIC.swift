/// The virtual GICv3: what the distributor (`VirtualDistributor`) and the
/// per-vCPU state (`VirtualRedistributor`, with its list registers) share.
///
/// Ownership (docs/design.md, principle 2): the distributor, with every SPI's
/// state, has one owner cluster; each vCPU's redistributor, its SGIs, PPIs and
/// list-register bookkeeping live in the vCPU's own cluster. The two talk only
/// through the small value messages below (`DistributorMessage` one way,
/// `SPIReport` the other), which fit in one channel message. When both live in
/// one cluster the kernel passes them by a direct call.
///
/// Limits: at most `VirtualGIC.maxVCPUs` vCPUs, `VirtualGIC.maxSPIs` SPIs
/// (INTIDs 32..<128), `VirtualGIC.maxListRegisters` list registers. No LPIs,
/// no ITS, no extended SPI/PPI ranges.
public enum VirtualGIC {
    /// vCPU sets are 64-bit masks.
    public static var maxVCPUs: Int { 64 }
    /// SPIs are INTIDs 32..<32 + spiCount; spiCount is at most this.
    public static var maxSPIs: Int { 96 }
    /// Every INTID the model tracks is below this (SGIs, PPIs, SPIs).
    public static var intidLimit: Int { 128 }
    /// ICH_VTR_EL2.ListRegs + 1 is at most 16.
    public static var maxListRegisters: Int { 16 }
    /// Priority bits kept (the top 5, as QEMU's and KVM's virtual CPU
    /// interface implement): the low 3 bits of every priority byte are RAZ/WI.
    public static var priorityMask: UInt8 { 0xF8 }

    /// GICD_IIDR and GICR_IIDR: ProductID 0x43 ('C', cmk) [31:24], Variant 0,
    /// Revision 0, Implementer 0x43B (JEP106 Arm, as KVM presents it).
    /// Chosen not to match any IIDR in Linux 6.1's GICv3 quirk table.
    public static var iidr: UInt32 { 0x4300_043B }
    /// GICD_PIDR2 and GICR_PIDR2: ArchRev [7:4] = 3 (GICv3), JEP106 [3:0] = 0xB.
    public static var pidr2: UInt32 { 0x3B }
}

/// A set of INTIDs 0..<128 in two 64-bit words (no heap). Used for every
/// per-interrupt bit of state (enable, pending latch, line level, active,
/// edge configuration, ...).
public struct InterruptBits: Equatable, Sendable {
    /// INTIDs 0..<64.
    public var low: UInt64 = 0
    /// INTIDs 64..<128.
    public var high: UInt64 = 0

    public init() {}

    /// Bit `intid`; INTIDs at or above 128 read false and ignore writes.
    public subscript(intid: Int) -> Bool {
        get {
            if intid < 0 || intid >= 128 { return false }
            return intid < 64 ? (low >> UInt64(intid)) & 1 == 1 : (high >> UInt64(intid - 64)) & 1 == 1
        }
        set {
            if intid < 0 || intid >= 128 { return }
            if intid < 64 {
                let bit: UInt64 = 1 << UInt64(intid)
                low = newValue ? low | bit : low & ~bit
            } else {
                let bit: UInt64 = 1 << UInt64(intid - 64)
                high = newValue ? high | bit : high & ~bit
            }
        }
    }

    /// The 32 bits for INTIDs 32*index ..< 32*index + 32 (index 0...3), the
    /// layout of every GIC one-bit-per-interrupt register.
    public func word(_ index: Int) -> UInt32 {
        switch index {
        case 0: return UInt32(truncatingIfNeeded: low)
        case 1: return UInt32(truncatingIfNeeded: low >> 32)
        case 2: return UInt32(truncatingIfNeeded: high)
        case 3: return UInt32(truncatingIfNeeded: high >> 32)
        default: return 0
        }
    }

    /// Replaces the 32 bits of `word(index)`.
    public mutating func setWord(_ index: Int, _ value: UInt32) {
        let v = UInt64(value)
        switch index {
        case 0: low = (low & 0xFFFF_FFFF_0000_0000) | v
        case 1: low = (low & 0x0000_0000_FFFF_FFFF) | (v << 32)
        case 2: high = (high & 0xFFFF_FFFF_0000_0000) | v
        case 3: high = (high & 0x0000_0000_FFFF_FFFF) | (v << 32)
        default: break
        }
    }

    public var isEmpty: Bool { low == 0 && high == 0 }

    /// The lowest INTID in the set.
    public var first: Int? {
        if low != 0 { return low.trailingZeroBitCount }
        if high != 0 { return 64 + high.trailingZeroBitCount }
        return nil
    }

    /// INTIDs lo..<hi (clamped to 0..<128).
    public static func range(_ lo: Int, _ hi: Int) -> InterruptBits {
        var r = InterruptBits()
        var i = max(lo, 0)
        while i < min(hi, 128) { r[i] = true; i += 1 }
        return r
    }

    public static func & (a: InterruptBits, b: InterruptBits) -> InterruptBits {
        var r = InterruptBits(); r.low = a.low & b.low; r.high = a.high & b.high; return r
    }
    public static func | (a: InterruptBits, b: InterruptBits) -> InterruptBits {
        var r = InterruptBits(); r.low = a.low | b.low; r.high = a.high | b.high; return r
    }
    public static func ^ (a: InterruptBits, b: InterruptBits) -> InterruptBits {
        var r = InterruptBits(); r.low = a.low ^ b.low; r.high = a.high ^ b.high; return r
    }
    public static prefix func ~ (a: InterruptBits) -> InterruptBits {
        var r = InterruptBits(); r.low = ~a.low; r.high = ~a.high; return r
    }
}

/// The guest's vCPUs and their MPIDRs (the value the kernel puts in
/// VMPIDR_EL2, the device tree's cpu `reg`, and GICR_TYPER's affinity: these
/// three must agree or Linux finds "no redistributor" for a CPU).
///
/// Invariant: 1 <= count <= 64; every stored MPIDR holds only affinity bits
/// (Aff3 [39:32], Aff2 [23:16], Aff1 [15:8], Aff0 [7:0]); they are distinct
/// if the guest is to tell its CPUs apart (not checked: `setMPIDR` trusts the
/// configuration).
public struct VCPUTopology {
    public let count: Int
    private var mpidrs: InlineArray<64, UInt64>

    /// The affinity fields of an MPIDR (or an IROUTER value: same layout).
    public static var affinityMask: UInt64 { 0xFF_00FF_FFFF }

    /// `count` vCPUs (clamped to 1...64) with QEMU virt's scheme:
    /// vCPU i has Aff0 = i % 16, Aff1 = i / 16.
    public init(count: Int) {
        self.count = min(max(count, 1), VirtualGIC.maxVCPUs)
        mpidrs = InlineArray(repeating: 0)
        for i in 0..<self.count {
            mpidrs[i] = GuestPSCI.affinity(ofVCPU: i)
        }
    }

    /// Overrides vCPU `index`'s MPIDR (non-affinity bits are dropped).
    public mutating func setMPIDR(_ value: UInt64, forVCPU index: Int) {
        guard index >= 0 && index < count else { return }
        mpidrs[index] = value & Self.affinityMask
    }

    /// vCPU `index`'s MPIDR affinity bits (0 for an index out of range).
    public func mpidr(ofVCPU index: Int) -> UInt64 {
        guard index >= 0 && index < count else { return 0 }
        return mpidrs[index]
    }

    /// The vCPU whose affinity equals `affinity`'s affinity bits.
    public func vcpu(withAffinity affinity: UInt64) -> Int? {
        let a = affinity & Self.affinityMask
        for i in 0..<count where mpidrs[i] == a { return i }
        return nil
    }

    /// Every vCPU, as a mask.
    public var allVCPUs: UInt64 { count == 64 ? ~0 : (1 << UInt64(count)) - 1 }

    /// True if some vCPU has Aff0 > 15 (SGIs then need the range selector:
    /// GICD_TYPER.RSS = 1).
    public var needsRangeSelector: Bool {
        for i in 0..<count where mpidrs[i] & 0xFF > 15 { return true }
        return false
    }
}

// MARK: - Messages between the distributor and the vCPUs

/// Distributor -> vCPU: "SPI `intid` with `priority` is now pending for you"
/// (`pending` true) or "is no longer pending for you" (false).
///
/// Sequence rule (no lost or doubled edges across the channel): the
/// distributor increments an SPI's `sequence` each time it hands the vCPU a
/// new pending state (a new edge, a new resampled level); a notice that
/// repeats the vCPU's last sequence only refreshes priority and trigger mode
/// and does not make the SPI pending again. The vCPU echoes the sequence in
/// its `SPIReport`, so a report about an older pending state cannot clear a
/// newer one.
public struct SPINotice: Equatable, Sendable {
    /// Target vCPU index.
    public var vcpu: Int
    /// 32 ..< 32 + spiCount.
    public var intid: Int
    public var priority: UInt8
    /// Level-sensitive (ICFGR bit clear): its list register asks for EOI
    /// maintenance and it is not given pending+active.
    public var levelSensitive: Bool
    public var pending: Bool
    public var sequence: UInt8

    public init(vcpu: Int, intid: Int, priority: UInt8, levelSensitive: Bool, pending: Bool, sequence: UInt8) {
        self.vcpu = vcpu
        self.intid = intid
        self.priority = priority
        self.levelSensitive = levelSensitive
        self.pending = pending
        self.sequence = sequence
    }
}

/// Everything the distributor sends to a vCPU.
public enum DistributorMessage: Equatable, Sendable {
    case spi(SPINotice)
    /// GICD_CTLR.EnableGrp1 changed: it also gates this vCPU's SGIs and PPIs.
    case group1Enable(vcpu: Int, enabled: Bool)

    /// The vCPU this message is for.
    public var vcpu: Int {
        switch self {
        case .spi(let n): return n.vcpu
        case .group1Enable(let v, _): return v
        }
    }
}

/// vCPU -> distributor: SPI `intid`'s state as vCPU `vcpu` saw it right after
/// a `sync` (the guest acknowledged or deactivated it). `sequence` is the last
/// notice sequence the vCPU applied for it.
public struct SPIReport: Equatable, Sendable {
    public var vcpu: Int
    public var intid: Int
    public var sequence: UInt8
    public var pending: Bool
    public var active: Bool

    public init(vcpu: Int, intid: Int, sequence: UInt8, pending: Bool, active: Bool) {
        self.vcpu = vcpu
        self.intid = intid
        self.sequence = sequence
        self.pending = pending
        self.active = active
    }
}

// MARK: - Register access helpers

/// `offset` is a multiple of `size` (a power of two).
@inline(__always)
func isAligned(_ offset: Int, _ size: Int) -> Bool { offset & (size - 1) == 0 }

/// A byte lane's value, for a sub-word write: byte `i` (0...3) of `v`.
@inline(__always)
func byte(_ v: UInt64, _ i: Int) -> UInt8 { UInt8(truncatingIfNeeded: v >> UInt64(8 * i)) }
