/// Why the guest left: one kind per line of the exit report.
public enum ExitKind: Int, Sendable {
    case distributorAccess = 0
    case redistributorAccess
    case uartAccess
    /// A data abort at an IPA that is neither RAM nor an emulated device.
    case unmappedAccess
    case hypervisorCall
    case secureMonitorCall
    case systemRegister
    case waitForInterrupt
    /// A physical interrupt taken while the guest ran (not a `GuestExit`).
    case interrupt
    /// Everything else: instruction aborts, aborts on RAM, other classes.
    case other

    /// Number of kinds; `ExitStatistics` keeps one slot per kind.
    public static var count: Int { 10 }

    /// A short fixed name for report lines.
    public var name: StaticString {
        switch self {
        case .distributorAccess: return "gicd"
        case .redistributorAccess: return "gicr"
        case .uartAccess: return "uart"
        case .unmappedAccess: return "unmapped"
        case .hypervisorCall: return "hvc"
        case .secureMonitorCall: return "smc"
        case .systemRegister: return "sysreg"
        case .waitForInterrupt: return "wfx"
        case .interrupt: return "irq"
        case .other: return "other"
        }
    }

    /// The kind of a decoded exit. Data aborts (with or without a syndrome)
    /// count under the region their IPA falls in.
    public init(_ exit: GuestExit, map: GuestMemoryMap) {
        switch exit {
        case .mmio(let access): self.init(ipa: access.ipa, map: map)
        case .dataAbortNoSyndrome(let ipa, _): self.init(ipa: ipa, map: map)
        case .instructionAbort: self = .other
        case .hypervisorCall: self = .hypervisorCall
        case .secureMonitorCall: self = .secureMonitorCall
        case .systemRegister: self = .systemRegister
        case .waitForInterrupt: self = .waitForInterrupt
        case .other: self = .other
        }
    }

    init(ipa: UInt64, map: GuestMemoryMap) {
        switch map.classify(ipa) {
        case .gicDistributor: self = .distributorAccess
        case .gicRedistributor: self = .redistributorAccess
        case .uart: self = .uartAccess
        case .unmapped: self = .unmappedAccess
        case .ram: self = .other
        }
    }
}

/// Exit counts and time per kind, plus counters of what the guest was refused.
///
/// Kept per vCPU (per core) in the kernel's private memory and updated only by
/// the core running that vCPU, so no atomics. Every counter wraps (`&+`): a
/// report subtracts two snapshots, and wrapping subtraction stays right across
/// one wrap.
public struct ExitStatistics: Equatable, Sendable {
    /// Invariant: one slot per `ExitKind`, indexed by its raw value.
    private var counts: InlineArray<10, UInt64> = .init(repeating: 0)
    private var ticks: InlineArray<10, UInt64> = .init(repeating: 0)
    /// Accesses a device model refused (the guest got an external abort).
    public private(set) var refusedAccesses: UInt64 = 0
    /// Data and instruction aborts injected into the guest.
    public private(set) var injectedAborts: UInt64 = 0
    /// UNDEFINED exceptions injected into the guest.
    public private(set) var injectedUndefineds: UInt64 = 0

    public init() {}

    /// Counts one exit of `kind` that took `elapsed` counter ticks (exit to
    /// re-entry, CNTPCT_EL0 difference).
    public mutating func record(_ kind: ExitKind, ticks elapsed: UInt64) {
        counts[kind.rawValue] &+= 1
        ticks[kind.rawValue] &+= elapsed
    }

    public mutating func recordRefusedAccess() { refusedAccesses &+= 1 }
    public mutating func recordInjectedAbort() { injectedAborts &+= 1 }
    public mutating func recordInjectedUndefined() { injectedUndefineds &+= 1 }

    public func count(_ kind: ExitKind) -> UInt64 { counts[kind.rawValue] }
    public func ticks(_ kind: ExitKind) -> UInt64 { ticks[kind.rawValue] }

    /// All exits of every kind.
    public var totalCount: UInt64 {
        var sum: UInt64 = 0
        for i in 0..<ExitKind.count { sum &+= counts[i] }
        return sum
    }

    /// Adds another vCPU's statistics into this one (for a guest-wide report).
    public mutating func add(_ other: ExitStatistics) {
        for i in 0..<ExitKind.count {
            counts[i] &+= other.counts[i]
            ticks[i] &+= other.ticks[i]
        }
        refusedAccesses &+= other.refusedAccesses
        injectedAborts &+= other.injectedAborts
        injectedUndefineds &+= other.injectedUndefineds
    }

    public static func == (a: ExitStatistics, b: ExitStatistics) -> Bool {
        for i in 0..<ExitKind.count where a.counts[i] != b.counts[i] || a.ticks[i] != b.ticks[i] {
            return false
        }
        return a.refusedAccesses == b.refusedAccesses && a.injectedAborts == b.injectedAborts
            && a.injectedUndefineds == b.injectedUndefineds
    }
}
