/// PSCI 1.1 for the guest, over the HVC conduit (the guest's device tree says
/// `method = "hvc"`; a trapped HVC arrives with ELR already past it).
///
/// The guest's x0 is the function id, x1-x3 its arguments. The kernel writes
/// `PSCIOutcome.x0` back to the guest's x0 and then carries out the action.
///
/// Function ids follow the SMC Calling Convention (Arm DEN 0028): bit 30 set
/// is an SMC64/HVC64 call (0xC4...), clear an SMC32/HVC32 call (0x84...).
/// Only W0 holds the id. A 32-bit call's arguments are W1-W3 (the upper
/// halves are ignored); its result is returned in W0, and from SMCCC 1.1
/// (DEN 0028B) negative results are sign-extended into X0, so -1 reads as -1
/// whether the caller tests W0 or X0. Linux 6.1 converts the result through
/// `int` either way. So every result here is the 64-bit two's complement of
/// a small signed number, the same value for 32- and 64-bit calls.
public struct GuestPSCI: Sendable {
    /// PSCI function ids (PSCI 1.1, Arm DEN 0022, table 5.1).
    public enum Function {
        public static var version: UInt32 { 0x8400_0000 }
        public static var cpuSuspend32: UInt32 { 0x8400_0001 }
        public static var cpuSuspend64: UInt32 { 0xC400_0001 }
        public static var cpuOff: UInt32 { 0x8400_0002 }
        public static var cpuOn32: UInt32 { 0x8400_0003 }
        public static var cpuOn64: UInt32 { 0xC400_0003 }
        public static var affinityInfo32: UInt32 { 0x8400_0004 }
        public static var affinityInfo64: UInt32 { 0xC400_0004 }
        public static var migrateInfoType: UInt32 { 0x8400_0006 }
        public static var systemOff: UInt32 { 0x8400_0008 }
        public static var systemReset: UInt32 { 0x8400_0009 }
        public static var features: UInt32 { 0x8400_000A }
        public static var systemSuspend64: UInt32 { 0xC400_000E }
        public static var systemReset2_64: UInt32 { 0xC400_0012 }
        /// SMCCC_VERSION (an Arm architecture service, not PSCI): declined,
        /// so Linux makes no further SMCCC calls.
        public static var smcccVersion: UInt32 { 0x8000_0000 }
    }

    /// PSCI return codes (DEN 0022, 5.2.2).
    public enum ReturnCode {
        public static var success: Int64 { 0 }
        public static var notSupported: Int64 { -1 }
        public static var invalidParameters: Int64 { -2 }
        public static var denied: Int64 { -3 }
        public static var alreadyOn: Int64 { -4 }
        public static var onPending: Int64 { -5 }
        public static var internalFailure: Int64 { -6 }
        public static var notPresent: Int64 { -7 }
        public static var disabled: Int64 { -8 }
        public static var invalidAddress: Int64 { -9 }
    }

    /// PSCI_VERSION's answer: major 1 in [31:16], minor 1 in [15:0].
    public static var versionValue: UInt64 { 0x1_0001 }
    /// MIGRATE_INFO_TYPE's answer: 2, "no Trusted OS, migration not needed".
    public static var migrateInfoTypeValue: UInt64 { 2 }

    /// At most this many vCPUs (one bit each in a 64-bit mask).
    public static var maxVCPUs: Int { 64 }

    public enum PowerState: Equatable, Sendable {
        case off
        /// CPU_ON accepted; the target's cluster has not yet reported it on.
        case onPending
        case on
    }

    /// AFFINITY_INFO's answers (DEN 0022, 5.1.5).
    public enum AffinityState {
        public static var on: UInt64 { 0 }
        public static var off: UInt64 { 1 }
        public static var onPending: UInt64 { 2 }
    }

    /// Number of vCPUs, 1...maxVCPUs.
    public let vcpuCount: Int
    /// Guest RAM (IPA range) where CPU_ON entry points must lie.
    public let ramBase: UInt64
    public let ramSize: UInt64

    /// Power state as two bit masks (bit i = vCPU i).
    /// Invariant: `onMask & pendingMask == 0`, and neither has a bit at or
    /// above `vcpuCount`. A vCPU in neither mask is off.
    public private(set) var onMask: UInt64
    public private(set) var pendingMask: UInt64

    /// vCPU 0 starts on, every other vCPU off. Nil when `vcpus` is not in
    /// 1...64 or the RAM region is empty or wraps.
    public init?(vcpus: Int, ramBase: UInt64, ramSize: UInt64) {
        guard vcpus >= 1 && vcpus <= Self.maxVCPUs, ramSize > 0,
              ramBase <= UInt64.max - (ramSize - 1) else { return nil }
        self.vcpuCount = vcpus
        self.ramBase = ramBase
        self.ramSize = ramSize
        self.onMask = 1
        self.pendingMask = 0
    }

    public func state(of vcpu: Int) -> PowerState {
        precondition(vcpu >= 0 && vcpu < vcpuCount)
        let bit = UInt64(1) << UInt64(vcpu)
        if onMask & bit != 0 { return .on }
        if pendingMask & bit != 0 { return .onPending }
        return .off
    }

    // MARK: MPIDR

    /// The affinity bits PSCI and MPIDR_EL1 share: Aff3 [39:32], Aff2
    /// [23:16], Aff1 [15:8], Aff0 [7:0] (Linux's MPIDR_HWID_BITMASK).
    public static var affinityMask: UInt64 { 0xFF_00FF_FFFF }

    /// vCPU i's affinity as QEMU virt numbers CPUs: Aff0 = i % 16,
    /// Aff1 = i / 16. The device tree's cpu `reg`, VMPIDR_EL2 and the virtual
    /// GICR_TYPER must all agree with it.
    public static func affinity(ofVCPU vcpu: Int) -> UInt64 {
        UInt64(vcpu / 16) << 8 | UInt64(vcpu % 16)
    }

    /// The value for VMPIDR_EL2: the affinity with bit 31 (RES1) set; U
    /// (bit 30) and MT (bit 24) clear.
    public static func vmpidr(ofVCPU vcpu: Int) -> UInt64 {
        0x8000_0000 | affinity(ofVCPU: vcpu)
    }

    /// The vCPU with this affinity, or nil. Bits outside `affinityMask` must
    /// be zero (as KVM requires).
    public func vcpu(withAffinity target: UInt64) -> Int? {
        guard target & ~Self.affinityMask == 0 else { return nil }
        let aff0 = Int(target & 0xFF), aff1 = Int((target >> 8) & 0xFF)
        guard target >> 16 == 0, aff0 < 16 else { return nil }  // Aff2, Aff3 zero
        let vcpu = aff1 * 16 + aff0
        return vcpu < vcpuCount ? vcpu : nil
    }

    // MARK: Calls

    /// Handles one PSCI call made by vCPU `caller` (0..<vcpuCount).
    ///
    /// On success CPU_ON leaves the target `onPending` and asks for
    /// `.cpuOn`: the kernel (later, the target's cluster) resets that vCPU
    /// at `entry` with x0 = `context` and then calls `markOn`. CPU_OFF marks
    /// the caller off at once and asks for `.cpuOff`: the kernel stops running
    /// it (x0 is irrelevant, CPU_OFF does not return). SYSTEM_OFF and
    /// SYSTEM_RESET ask for `.powerOff` / `.reset` and do not return either.
    public mutating func call(function: UInt64, x1: UInt64, x2: UInt64, x3: UInt64, caller: Int) -> PSCIOutcome {
        guard caller >= 0 && caller < vcpuCount else {
            return PSCIOutcome(code: ReturnCode.internalFailure)
        }
        let id = UInt32(truncatingIfNeeded: function)
        let is64 = id & (1 << 30) != 0
        // SMC32/HVC32: only W1-W3 carry the arguments.
        let a1 = is64 ? x1 : x1 & 0xFFFF_FFFF
        let a2 = is64 ? x2 : x2 & 0xFFFF_FFFF
        let a3 = is64 ? x3 : x3 & 0xFFFF_FFFF
        switch id {
        case Function.version:
            return PSCIOutcome(x0: Self.versionValue)
        case Function.cpuOff:
            let bit = UInt64(1) << UInt64(caller)
            onMask &= ~bit
            pendingMask &= ~bit
            return PSCIOutcome(x0: 0, action: .cpuOff(vcpu: caller))
        case Function.cpuOn32, Function.cpuOn64:
            return cpuOn(target: a1, entry: a2, context: a3)
        case Function.affinityInfo32, Function.affinityInfo64:
            return affinityInfo(target: a1, lowestLevel: a2)
        case Function.migrateInfoType:
            return PSCIOutcome(x0: Self.migrateInfoTypeValue)
        case Function.systemOff:
            return PSCIOutcome(x0: 0, action: .powerOff)
        case Function.systemReset:
            return PSCIOutcome(x0: 0, action: .reset)
        case Function.features:
            let queried = UInt32(truncatingIfNeeded: a1)
            return PSCIOutcome(code: Self.isImplemented(queried) ? ReturnCode.success : ReturnCode.notSupported)
        default:
            // CPU_SUSPEND, SYSTEM_SUSPEND, SYSTEM_RESET2, MIGRATE, and
            // everything else: Linux takes any other answer as "supported".
            return PSCIOutcome(code: ReturnCode.notSupported)
        }
    }

    /// The function ids this implementation answers with something other
    /// than NOT_SUPPORTED; PSCI_FEATURES reports 0 for exactly these.
    public static func isImplemented(_ id: UInt32) -> Bool {
        switch id {
        case Function.version, Function.cpuOff, Function.cpuOn32, Function.cpuOn64,
             Function.affinityInfo32, Function.affinityInfo64, Function.migrateInfoType,
             Function.systemOff, Function.systemReset, Function.features:
            return true
        default:
            return false
        }
    }

    /// The target's cluster has reset it: onPending -> on. Returns false (and
    /// changes nothing) when the vCPU was not pending, a protocol error the
    /// kernel should report.
    @discardableResult
    public mutating func markOn(_ vcpu: Int) -> Bool {
        guard vcpu >= 0 && vcpu < vcpuCount else { return false }
        let bit = UInt64(1) << UInt64(vcpu)
        guard pendingMask & bit != 0 else { return false }
        pendingMask &= ~bit
        onMask |= bit
        return true
    }

    /// Another cluster reported vCPU `vcpu`'s state (it started it, stopped
    /// it, or accepted a CPU_ON for it): the table follows. Out-of-range
    /// vCPUs are ignored (the channel validated the message already).
    public mutating func noteState(_ vcpu: Int, _ state: PowerState) {
        guard vcpu >= 0 && vcpu < vcpuCount else { return }
        let bit = UInt64(1) << UInt64(vcpu)
        onMask &= ~bit
        pendingMask &= ~bit
        switch state {
        case .on: onMask |= bit
        case .onPending: pendingMask |= bit
        case .off: break
        }
    }

    /// The kernel could not start a pending vCPU: onPending -> off, so that
    /// the guest may try CPU_ON again. Returns false when it was not pending.
    @discardableResult
    public mutating func cancelPending(_ vcpu: Int) -> Bool {
        guard vcpu >= 0 && vcpu < vcpuCount else { return false }
        let bit = UInt64(1) << UInt64(vcpu)
        guard pendingMask & bit != 0 else { return false }
        pendingMask &= ~bit
        return true
    }

    private mutating func cpuOn(target: UInt64, entry: UInt64, context: UInt64) -> PSCIOutcome {
        guard let vcpu = vcpu(withAffinity: target) else {
            return PSCIOutcome(code: ReturnCode.invalidParameters)
        }
        switch state(of: vcpu) {
        case .on: return PSCIOutcome(code: ReturnCode.alreadyOn)
        case .onPending: return PSCIOutcome(code: ReturnCode.onPending)
        case .off: break
        }
        // The entry must be an instruction in guest RAM (A64: 4-byte aligned).
        guard entry >= ramBase, entry - ramBase < ramSize, entry & 3 == 0 else {
            return PSCIOutcome(code: ReturnCode.invalidAddress)
        }
        pendingMask |= UInt64(1) << UInt64(vcpu)
        return PSCIOutcome(x0: 0, action: .cpuOn(vcpu: vcpu, entry: entry, context: context))
    }

    private func affinityInfo(target: UInt64, lowestLevel: UInt64) -> PSCIOutcome {
        guard lowestLevel == 0, let vcpu = vcpu(withAffinity: target) else {
            return PSCIOutcome(code: ReturnCode.invalidParameters)
        }
        switch state(of: vcpu) {
        case .on: return PSCIOutcome(x0: AffinityState.on)
        case .off: return PSCIOutcome(x0: AffinityState.off)
        case .onPending: return PSCIOutcome(x0: AffinityState.onPending)
        }
    }
}

/// What one PSCI call answers: the guest's new x0, and what the kernel must do.
public struct PSCIOutcome: Equatable, Sendable {
    public enum Action: Equatable, Sendable {
        case none
        case powerOff
        case reset
        /// Start `vcpu` at `entry` (EL1h, DAIF masked, MMU off) with x0 = `context`.
        case cpuOn(vcpu: Int, entry: UInt64, context: UInt64)
        /// Stop running `vcpu` (the caller).
        case cpuOff(vcpu: Int)
    }

    /// The value for the guest's x0.
    public var x0: UInt64
    public var action: Action

    public init(x0: UInt64, action: Action = .none) {
        self.x0 = x0
        self.action = action
    }

    /// A return code, as its 64-bit two's complement.
    public init(code: Int64) {
        self.init(x0: UInt64(bitPattern: code))
    }
}
