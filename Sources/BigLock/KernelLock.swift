import Synchronization

/// The big kernel lock of a cluster, in three kinds behind one generic interface.
///
/// cmk runs one kernel image per cluster of cache-sharing cores; every kernel
/// entry of a core takes its cluster's big lock first thing and releases it on the
/// way out (seL4's design, Peters et al. 2015). This module provides the lock
/// kinds a topology can name (`lock = "ticket" | "mcs" | "clh"`):
///
/// - `BigTicketLock`: one counter to take a ticket, one to serve it; every
///   waiter spins on the same word.
/// - `MCSLock`: Mellor-Crummey & Scott 1991, a queue of per-core nodes; each
///   waiter spins on its own node, its predecessor hands over by writing it.
/// - `CLHLock`: Craig 1993 / Magnusson, Landin & Hagersten 1994, as in seL4:
///   `cores + 1` request slots; each waiter spins on its predecessor's slot and
///   on release adopts that slot as its own for the next time.
///
/// All three are used through generics only (`some KernelLock`, never
/// `any KernelLock`), so they compile in Embedded Swift and specialise fully.
///
/// ## Memory
/// A lock is a handle on memory the caller owns (the cluster's partition in the
/// kernel, a libnuma allocation in the hosted runtime); nothing is allocated.
/// The memory is an array of *blocks* of `stride` bytes, `stride`-aligned; every
/// atomic word the lock writes sits alone at the start of its own block, so no
/// two cores' words share a cache line and no unrelated write shares the
/// exclusive reservation granule of a word taken with an exclusive load/store
/// pair (see `BigLockLayout`). `byteCount(cores:stride:)` gives the size;
/// `init(formatting:cores:stride:)` formats it once, before any core uses it;
/// every core then makes its own handle with `init(attaching:cores:stride:)`.
///
/// ## Per-core use
/// Core `c` (0-based within its cluster, below `cores`) calls
/// `acquire(core: c, hook: &hook)` and `release(core: c)`, strictly paired,
/// never recursively. `hook.waiting()` runs between two looks at the lock while
/// the core waits: the kernel serves remote requests there, so a holder that
/// waits for another core's answer cannot deadlock with that core.
public protocol KernelLock: SendableMetatype, ~Copyable {
    /// The name a topology file uses for this kind of lock.
    static var kindName: StaticString { get }
    /// Bytes of lock memory for `cores` cores with blocks of `stride` bytes.
    static func byteCount(cores: Int, stride: Int) -> Int
    /// Formats `memory` (`byteCount(cores:stride:)` bytes, `stride`-aligned)
    /// as a free lock for `cores` cores. Once, before any core takes the lock.
    init(formatting memory: UnsafeMutableRawPointer, cores: Int, stride: Int)
    /// A handle on a lock that `init(formatting:...)` already formatted.
    init(attaching memory: UnsafeMutableRawPointer, cores: Int, stride: Int)
    /// Takes the lock for `core`, calling `hook.waiting()` while it waits.
    /// Returns whether the core had to wait (the lock was contended).
    func acquire<Hook: LockWaitHook & ~Copyable>(core: Int, hook: inout Hook) -> Bool
    /// Releases the lock; only the holder, `core`, calls this.
    func release(core: Int)
}

/// What a core does while it waits for the big lock.
///
/// The kernel's hook serves remote requests addressed to this core (seL4 serves
/// its remote-call IPI in `clh_lock_acquire`) and executes the architecture's
/// spin hint (`yield` on AArch64, `pause` on x86). It must not take the big lock.
public protocol LockWaitHook: ~Copyable {
    mutating func waiting()
}

/// A hook that does nothing: spin on the lock word alone.
public struct SpinWaitHook: LockWaitHook {
    @inlinable public init() {}
    @inlinable @inline(__always) public mutating func waiting() {}
}

/// The geometry every lock kind lays its words out with.
public enum BigLockLayout {
    /// cmk allows at most 64 cores in a machine, hence in a cluster.
    public static let maxCores = 64

    /// The stride (block size and alignment, bytes) the kernel and the hosted
    /// runtime use unless told otherwise: 128.
    ///
    /// Why 128: a block must cover both a cache line (64 bytes on the Cortex-A
    /// and Neoverse cores cmk targets, 128 with x86's adjacent-line prefetch and
    /// on Apple cores) and the exclusive reservation granule (ERG) of the core,
    /// `4 << CTR_EL0.ERG` bytes. Arm allows an ERG of 16 bytes to 2 KiB; the
    /// cores we know of (Cortex-A53/A57/A72, Neoverse N1, QEMU's `-cpu max`)
    /// report 64 bytes. A store by another core inside the granule of a word
    /// held by `ldaxr` clears the reservation; a steady stream of such stores
    /// can starve the `stlxr` forever (the seL4 bug that made it pad its lock).
    /// A kernel on a core with a larger ERG passes `max(64, 4 << ERG)` as the
    /// stride instead; the layout is the same, only bigger.
    public static let defaultStride = 128

    /// Whether `stride` is usable: a power of two from 64 bytes to 2 KiB.
    @inlinable
    public static func isValid(stride: Int) -> Bool {
        stride >= 64 && stride <= 2048 && stride & (stride - 1) == 0
    }

    /// Checks the arguments every lock kind's initialisers take.
    @inlinable
    static func check(_ memory: UnsafeMutableRawPointer, cores: Int, stride: Int) {
        precondition(isValid(stride: stride), "BigLock: stride must be a power of two in 64...2048")
        precondition(cores >= 1 && cores <= maxCores, "BigLock: cores must be in 1...64")
        precondition(UInt(bitPattern: memory) & UInt(stride - 1) == 0,
                     "BigLock: lock memory must be aligned to its stride")
    }
}

extension KernelLock where Self: ~Copyable {
    /// Takes the lock for `core`, recording wait time and contention in `probe`.
    /// With `NoLockProbe` this compiles to the bare `acquire(core:hook:)`.
    @inlinable @inline(__always)
    public func acquire<Hook: LockWaitHook & ~Copyable, Probe: LockProbe & ~Copyable>(
        core: Int, hook: inout Hook, probe: inout Probe
    ) {
        probe.willAcquire()
        let contended = acquire(core: core, hook: &hook)
        probe.didAcquire(contended: contended)
    }

    /// Releases the lock, recording the hold time in `probe`.
    @inlinable @inline(__always)
    public func release<Probe: LockProbe & ~Copyable>(core: Int, probe: inout Probe) {
        probe.willRelease()
        release(core: core)
    }

    /// Takes the lock, spinning without a hook (tests, tools; not the kernel).
    @inlinable @inline(__always)
    public func acquire(core: Int) {
        var hook = SpinWaitHook()
        _ = acquire(core: core, hook: &hook)
    }
}

/// The block at `index` of a lock's memory, as the 64-bit atomic word at its start.
///
/// An immutable pointer: `Atomic`'s operations only borrow it, and a borrow is
/// a read access, so Swift's exclusivity checks (and ThreadSanitizer's Swift
/// access-race detector) see no conflicting accesses between cores.
@inlinable @inline(__always)
func lockWord(_ base: UnsafeMutableRawPointer, _ index: Int, _ stride: Int)
    -> UnsafePointer<Atomic<UInt64>>
{
    UnsafePointer((base + index &* stride).assumingMemoryBound(to: Atomic<UInt64>.self))
}

/// Binds block `index` to a fresh atomic word holding `value` (formatting only).
@inlinable
func formatWord(_ base: UnsafeMutableRawPointer, _ index: Int, _ stride: Int, _ value: UInt64) {
    (base + index &* stride).bindMemory(to: Atomic<UInt64>.self, capacity: 1)
        .initialize(to: Atomic(value))
}
