import ArchAsm

/// PSCI through the SMC conduit (QEMU virt with virtualization=on puts its
/// PSCI firmware at EL3; HVC would trap to our own EL2).
public enum PSCI {
    public static let cpuOn: UInt64 = 0xC400_0003
    public static let systemOff: UInt64 = 0x8400_0008
    public static let version: UInt64 = 0x8400_0000

    public enum Result: Int64 {
        case success = 0
        case notSupported = -1
        case invalidParameters = -2
        case denied = -3
        case alreadyOn = -4
        case onPending = -5
        case internalFailure = -6
        case notPresent = -7
        case disabled = -8
        case invalidAddress = -9
        case unknown = -100
    }

    /// Start the core `mpidr` at physical `entry` with x0 = `context`.
    public static func startCore(mpidr: UInt64, entry: UInt64, context: UInt64) -> Result {
        let r = Int64(bitPattern: cmk_smc(cpuOn, mpidr, entry, context))
        return Result(rawValue: r) ?? .unknown
    }

    public static func powerOff() -> Never {
        _ = cmk_smc(systemOff, 0, 0, 0)
        while true { cmk_wfi() }
    }
}

/// Arm semihosting, used for one thing: ending the run with a failure exit
/// status, so QEMU itself reports failure (PSCI SYSTEM_OFF always exits 0).
public enum Semihosting {
    static let sysExit: UInt64 = 0x18
    static let applicationExit: UInt64 = 0x20026

    /// Ask QEMU to exit with `status`. Needs `-semihosting-config enable=on`;
    /// without it the HLT traps and the caller should power off instead.
    public static func exit(status: UInt64) {
        var block: (UInt64, UInt64) = (applicationExit, status)
        withUnsafeMutableBytes(of: &block) { bytes in
            _ = cmk_semihosting(sysExit, UInt64(UInt(bitPattern: bytes.baseAddress)))
        }
    }
}
