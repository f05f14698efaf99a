/// Words, limits, errors and the message format shared by every kernel object.
///
/// The kernel is seL4's design written in our own Swift: all authority is a
/// capability, all kernel memory is retyped from Untyped, IPC is synchronous
/// through endpoints, and notifications carry concurrency (docs/kernel/).

// The invocation labels, object types and system-call numbers are the user
// ABI's (Sources/UserABI/Invocations.swift): every user of Kernel sees them.
@_exported import UserABI

/// A machine word. cmk targets AArch64, so the kernel is 64-bit everywhere.
public typealias Word = UInt64

/// Number of bits in a capability address (a CPtr).
public let wordBits = 64

/// Message registers held in the TCB. seL4/AArch64 passes 4 in registers and
/// the rest through the IPC buffer; cmk keeps a fixed 8 in the TCB and copies
/// a user thread's in and out of x2-x5 and its IPC buffer (docs/kernel/abi.md).
public let messageRegisterCount = 8

/// Capabilities a message (or an invocation) may name beside its words.
public let extraCapabilityLimit = 3

/// Priorities 0...255; 255 is the highest.
public let priorityCount = 256

/// Ticks a thread runs before round-robin moves it to the back of its level.
public let defaultTimeSlice: UInt32 = 5

/// Why a capability address failed to resolve (seL4's lookup faults).
public enum LookupFailure: Error, Equatable, Sendable {
    /// The root capability is not a CNode capability.
    case invalidRoot
    /// The address resolved to an empty slot, `bitsLeft` bits before the end.
    case missingCapability(bitsLeft: Int)
    /// The address ran out of bits inside a level, or a level needed more
    /// bits than the depth left (`bitsFound` bits were wanted).
    case depthMismatch(bitsLeft: Int, bitsFound: Int)
    /// A CNode's guard did not match the address bits at that level.
    case guardMismatch(bitsLeft: Int, guard: Word, guardSize: Int)
}

/// The errors a system call returns (seL4's error kinds, same order and
/// numbering as `seL4_Error`). Every system call either succeeds or returns
/// one of these; none of them leaves the kernel inconsistent.
public enum KernelError: Error, Equatable, Sendable {
    case invalidArgument(index: Int)
    case invalidCapability(index: Int)
    case illegalOperation
    case range(min: Word, max: Word)
    case alignment
    /// `source` tells whether the failed address was a source (true) or a
    /// destination/invoked address (false).
    case failedLookup(source: Bool, LookupFailure)
    case truncatedMessage
    case deleteFirst
    case revokeFirst
    case notEnoughMemory(bytesAvailable: Word)
    /// Not an error the user sees: a preemption point fired. The thread is
    /// left in `.restart`; it re-issues the same system call, which continues
    /// where this one stopped (seL4's EXCEPTION_PREEMPTED).
    case preempted

    /// seL4's error number (`seL4_Error`): 1...10, 0 meaning none.
    public var code: Word {
        switch self {
        case .invalidArgument: 1
        case .invalidCapability: 2
        case .illegalOperation: 3
        case .range: 4
        case .alignment: 5
        case .failedLookup: 6
        case .truncatedMessage: 7
        case .deleteFirst: 8
        case .revokeFirst: 9
        case .notEnoughMemory: 10
        case .preempted: 0
        }
    }
}

/// The message tag (seL4's `seL4_MessageInfo`): what the words and
/// capabilities of a message are.
public struct MessageInfo: Equatable, Sendable {
    /// Free for the protocol; for an invocation it names the method.
    public var label: Word
    /// Message registers used (0...messageRegisterCount).
    public var length: Int
    /// Extra capabilities named by the sender, or transferred to the receiver.
    public var extraCaps: Int
    /// Bit i set: the i-th extra capability was unwrapped (its badge delivered
    /// in a message register instead of the capability itself).
    public var capsUnwrapped: UInt8

    public init(label: Word = 0, length: Int = 0, extraCaps: Int = 0, capsUnwrapped: UInt8 = 0) {
        self.label = label
        self.length = length
        self.extraCaps = extraCaps
        self.capsUnwrapped = capsUnwrapped
    }
}

/// Access rights carried by a capability (seL4's `seL4_CapRights`).
public struct CapRights: OptionSet, Equatable, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// Receive on an endpoint, wait on a notification.
    public static let read = CapRights(rawValue: 1)
    /// Send on an endpoint, signal a notification.
    public static let write = CapRights(rawValue: 2)
    /// Transfer capabilities with a message.
    public static let grant = CapRights(rawValue: 4)
    /// Create a reply capability with `Call`.
    public static let grantReply = CapRights(rawValue: 8)
    /// Computed for the same reason as `Capability.null`.
    @inline(__always) public static var all: CapRights { CapRights(rawValue: 0b1111) }
}

/// Entries of a kernel's export table: the notifications other clusters may
/// signal, by index (ClusterKernel.remoteSignal).
public let exportLimit = 16

/// Entries of a kernel's interrupt handler table: interrupts with an
/// IRQHandler capability at once (Objects/IRQ.swift).
public let irqHandlerLimit = 8
/// Outgoing remote signals a kernel queues before the Boot layer takes them.
public let outgoingSignalLimit = 16

/// Smallest and largest Untyped sizes (log2 bytes).
public let minUntypedBits = 4
public let maxUntypedBits = 47
/// Log2 bytes of one CNode slot (a CTE: capability + derivation-tree node).
public let slotSizeBits = 6
/// Log2 bytes of a TCB object (its five slots, the thread state, then the
/// saved user context; 2 KiB as seL4's AArch64 TCB).
public let tcbSizeBits = 11
public let endpointSizeBits = 5
public let notificationSizeBits = 6
/// Largest CNode radix (log2 slots).
public let maxCNodeRadix = 24
/// Most objects one `Retype` may create.
public let maxRetypeCount: Word = 256

/// The oldest of the `count` entries of a small FIFO kept at the front of
/// `queue` (the kernel's outgoing remote signals, its interrupt-controller
/// changes), removed by shifting the rest down; nil if empty.
@inline(__always)
func popFront<T>(_ queue: inout InlineArray<16, T>, count: inout Int) -> T? {
    guard count > 0 else { return nil }
    let first = queue[0]
    var i = 1
    while i < count {
        queue[i - 1] = queue[i]
        i += 1
    }
    count -= 1
    return first
}
