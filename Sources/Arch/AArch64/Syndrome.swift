/// ESR_EL2 decoding, for reports and (later) for dispatching guest traps.
public struct Syndrome: Equatable {
    public let value: UInt64
    public init(_ value: UInt64) { self.value = value }

    /// Exception class, ESR bits [31:26].
    public var exceptionClass: UInt64 { (value >> 26) & 0x3F }
    /// Instruction-specific syndrome, ESR bits [24:0].
    public var iss: UInt64 { value & 0x1FF_FFFF }

    public var className: StaticString {
        switch exceptionClass {
        case 0x00: return "unknown reason"
        case 0x01: return "WFI/WFE"
        case 0x07: return "FP/SIMD access"
        case 0x0E: return "illegal execution state"
        case 0x15: return "SVC (AArch64)"
        case 0x16: return "HVC (AArch64)"
        case 0x17: return "SMC (AArch64)"
        case 0x18: return "MSR/MRS/system instruction"
        case 0x19: return "SVE access"
        case 0x20: return "instruction abort, lower EL"
        case 0x21: return "instruction abort, same EL"
        case 0x22: return "PC alignment fault"
        case 0x24: return "data abort, lower EL"
        case 0x25: return "data abort, same EL"
        case 0x26: return "SP alignment fault"
        case 0x2C: return "FP exception"
        case 0x2F: return "SError"
        case 0x30, 0x31: return "breakpoint"
        case 0x32, 0x33: return "software step"
        case 0x34, 0x35: return "watchpoint"
        case 0x3C: return "BRK instruction"
        default: return "other"
        }
    }

    /// For aborts: the fault status code (DFSC/IFSC, ISS bits [5:0]).
    public var faultStatus: UInt64 { iss & 0x3F }
    public var isAbort: Bool { (0x20...0x25).contains(exceptionClass) }
}

/// Which vector an exception came through (vectors.S passes this "kind").
public struct VectorKind: Equatable {
    public let value: UInt64
    public init(_ value: UInt64) { self.value = value }
    public var source: StaticString {
        switch value >> 2 {
        case 0: return "current EL, SP0"
        case 1: return "current EL, SPx"
        case 2: return "lower EL, AArch64"
        default: return "lower EL, AArch32"
        }
    }
    public var type: StaticString {
        switch value & 3 {
        case 0: return "sync"
        case 1: return "IRQ"
        case 2: return "FIQ"
        default: return "SError"
        }
    }
}
