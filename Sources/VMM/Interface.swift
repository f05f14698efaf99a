/// The VMM's narrow interface: an exit in, an action out.
///
/// Everything a trapped guest access needs decided (which device, which
/// register, what value, what the guest sees) is decided here, in portable
/// Swift tested on the host. The kernel (`Boot`) only moves values between
/// hardware registers and these types: it reads ESR/FAR/HPFAR and the guest's
/// general registers, calls the VMM, and writes back what the VMM returns.
/// Nothing here touches hardware, allocates, or uses existentials, so the
/// module builds unchanged in Embedded Swift, and could later move to a
/// user-level VMM without a rewrite.

/// A guest exit, decoded from ESR_EL2, FAR_EL2 and HPFAR_EL2 (`ExitDecoder`).
public enum GuestExit: Equatable, Sendable {
    /// A stage-2 data abort with a valid instruction syndrome (ISV = 1):
    /// an access the kernel can emulate.
    case mmio(MMIOAccess)
    /// A stage-2 data abort without a usable syndrome (ISV = 0, e.g. a load
    /// pair or a write-back addressing mode to a device): cannot be emulated.
    case dataAbortNoSyndrome(ipa: UInt64, isWrite: Bool)
    /// A stage-2 instruction abort (the guest jumped outside its memory).
    case instructionAbort(ipa: UInt64)
    /// HVC #imm from the guest (ELR already points past it).
    case hypervisorCall(immediate: UInt16)
    /// SMC #imm trapped by HCR_EL2.TSC (ELR points AT it: advance by 4).
    case secureMonitorCall(immediate: UInt16)
    /// MSR/MRS to a trapped system register (EC 0x18).
    case systemRegister(SystemRegisterAccess)
    /// WFI or WFE (only if trapped).
    case waitForInterrupt(isWFE: Bool)
    /// Anything else, by exception class (ESR[31:26]).
    case other(exceptionClass: UInt8)
}

/// One emulatable device access (a data abort with ISV = 1).
public struct MMIOAccess: Equatable, Sendable {
    /// Intermediate physical address of the access (HPFAR page | FAR offset).
    public var ipa: UInt64
    /// Bytes: 1, 2, 4 or 8 (SAS).
    public var size: Int
    public var isWrite: Bool
    /// The general register (SRT): 0...30, or 31 for xzr/wzr.
    public var register: Int
    /// Sign-extend a loaded value (SSE).
    public var signExtend: Bool
    /// The register is 64-bit (SF); otherwise a load writes 32 bits, upper zero.
    public var sixtyFourBit: Bool

    public init(ipa: UInt64, size: Int, isWrite: Bool, register: Int, signExtend: Bool, sixtyFourBit: Bool) {
        self.ipa = ipa
        self.size = size
        self.isWrite = isWrite
        self.register = register
        self.signExtend = signExtend
        self.sixtyFourBit = sixtyFourBit
    }
}

/// A trapped MSR/MRS (EC 0x18, ISS: Op0, Op2, Op1, CRn, Rt, CRm, Direction).
public struct SystemRegisterAccess: Equatable, Sendable {
    public var op0: UInt8
    public var op1: UInt8
    public var crn: UInt8
    public var crm: UInt8
    public var op2: UInt8
    /// The general register (Rt): 0...30, or 31 for xzr.
    public var register: Int
    /// MRS (read from the system register) when true; MSR when false.
    public var isRead: Bool

    public init(op0: UInt8, op1: UInt8, crn: UInt8, crm: UInt8, op2: UInt8, register: Int, isRead: Bool) {
        self.op0 = op0
        self.op1 = op1
        self.crn = crn
        self.crm = crm
        self.op2 = op2
        self.register = register
        self.isRead = isRead
    }
}

/// What a device model answers to one access.
public enum MMIOResult: Equatable, Sendable {
    /// A read's value (the low `size` bytes count), or a write that was taken.
    case done(UInt64)
    /// The access is not allowed (unknown offset, bad size or alignment,
    /// write to a read-only register): the guest gets an external abort.
    case refused
}
