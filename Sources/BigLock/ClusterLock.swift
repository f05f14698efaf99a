/// A cluster's big lock, its kind chosen at boot (the topology's `lock` key,
/// carried in the boot information) rather than at compile time.
///
/// A switch over the three kinds, not an existential (Embedded Swift has
/// none for non-class protocols): one well-predicted branch per entry, and
/// each arm is the fully specialised lock. The handle is a plain copyable
/// value (kind, memory, cores, stride); each call attaches the `~Copyable`
/// lock to the memory, which costs two compares.
///
/// The memory belongs to the caller: the cluster's partition in the kernel
/// (Boot formats it in the private area), a buffer on the host.
public struct ClusterLock: @unchecked Sendable {
    /// The kinds a topology may name; the raw value travels in the boot info.
    public enum Kind: UInt64, CaseIterable, Sendable {
        case ticket = 0
        case mcs = 1
        case clh = 2

        public var name: StaticString {
            switch self {
            case .ticket: return BigTicketLock.kindName
            case .mcs: return MCSLock.kindName
            case .clh: return CLHLock.kindName
            }
        }
    }

    public let kind: Kind
    public let memory: UnsafeMutableRawPointer
    public let cores: Int
    public let stride: Int
    /// What a waiting core runs between two looks at the lock: the
    /// architecture's spin hint (`yield` on AArch64, which also lets QEMU's
    /// single-threaded TCG run the holder). A C function pointer because this
    /// module knows no instructions; nil spins bare.
    public let waitHint: (@convention(c) () -> Void)?

    /// Bytes of lock memory for `kind` with `cores` cores.
    public static func byteCount(_ kind: Kind, cores: Int, stride: Int = BigLockLayout.defaultStride) -> Int {
        switch kind {
        case .ticket: return BigTicketLock.byteCount(cores: cores, stride: stride)
        case .mcs: return MCSLock.byteCount(cores: cores, stride: stride)
        case .clh: return CLHLock.byteCount(cores: cores, stride: stride)
        }
    }

    /// The most any kind needs for `cores` cores.
    public static func maxByteCount(cores: Int, stride: Int = BigLockLayout.defaultStride) -> Int {
        max(byteCount(.ticket, cores: cores, stride: stride), byteCount(.mcs, cores: cores, stride: stride),
            byteCount(.clh, cores: cores, stride: stride))
    }

    /// Format `memory` as a free lock of `kind` for `cores` cores. Once,
    /// before any core takes it.
    public init(formatting memory: UnsafeMutableRawPointer, kind: Kind, cores: Int,
                stride: Int = BigLockLayout.defaultStride, waitHint: (@convention(c) () -> Void)? = nil) {
        switch kind {
        case .ticket: _ = BigTicketLock(formatting: memory, cores: cores, stride: stride)
        case .mcs: _ = MCSLock(formatting: memory, cores: cores, stride: stride)
        case .clh: _ = CLHLock(formatting: memory, cores: cores, stride: stride)
        }
        self.kind = kind
        self.memory = memory
        self.cores = cores
        self.stride = stride
        self.waitHint = waitHint
    }

    /// Take the lock for `core` (0-based within the cluster). Returns whether
    /// it had to wait.
    @inlinable @inline(__always)
    @discardableResult
    public func acquire(core: Int) -> Bool {
        if let waitHint {
            var hook = FunctionWaitHook(waitHint)
            return acquire(core: core, hook: &hook)
        }
        var hook = SpinWaitHook()
        return acquire(core: core, hook: &hook)
    }

    /// Take the lock for `core`, calling `hook.waiting()` while it waits.
    @inlinable @inline(__always)
    public func acquire<Hook: LockWaitHook & ~Copyable>(core: Int, hook: inout Hook) -> Bool {
        switch kind {
        case .ticket: return BigTicketLock(attaching: memory, cores: cores, stride: stride).acquire(core: core, hook: &hook)
        case .mcs: return MCSLock(attaching: memory, cores: cores, stride: stride).acquire(core: core, hook: &hook)
        case .clh: return CLHLock(attaching: memory, cores: cores, stride: stride).acquire(core: core, hook: &hook)
        }
    }

    /// Release the lock; only the holder, `core`, calls this.
    @inlinable @inline(__always)
    public func release(core: Int) {
        switch kind {
        case .ticket: BigTicketLock(attaching: memory, cores: cores, stride: stride).release(core: core)
        case .mcs: MCSLock(attaching: memory, cores: cores, stride: stride).release(core: core)
        case .clh: CLHLock(attaching: memory, cores: cores, stride: stride).release(core: core)
        }
    }
}

/// A wait hook that calls a C function (the kernel's spin hint).
public struct FunctionWaitHook: LockWaitHook {
    public let function: @convention(c) () -> Void
    @inlinable public init(_ function: @convention(c) () -> Void) { self.function = function }
    @inlinable @inline(__always) public mutating func waiting() { function() }
}
