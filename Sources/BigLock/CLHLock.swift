import Synchronization

/// The CLH queue lock (T. Craig, "Building FIFO and priority-queuing spin
/// locks from atomic swap", UW TR 93-02-02, 1993; P. Magnusson, A. Landin,
/// E. Hagersten, "Queue locks on cache coherent multiprocessors", IPPS 1994),
/// in the style of seL4's big kernel lock (`include/smp/lock.h`).
///
/// `cores + 1` request slots; slot `cores` starts as the queue's granted
/// dummy and `tail` names it. To take the lock, a core marks the slot it owns
/// *pending*, swaps it into `tail`, and spins on the slot it got back (its
/// predecessor's) until that one reads *granted*. To release, it marks its own
/// slot granted and adopts its predecessor's slot as its own for next time:
/// nobody else can still read that slot (its only reader was us), so the
/// `cores + 1` slots are enough without any allocation.
///
/// A waiting core calls `hook.waiting()` between two looks at its
/// predecessor's slot: the kernel serves remote calls there, as seL4 serves its
/// remote-call IPI, so a holder waiting for a remote core's answer never
/// deadlocks with a core that waits for the lock.
///
/// Layout (`stride`-byte blocks, each word alone in its block):
///
/// | block                    | content                                      |
/// |--------------------------|----------------------------------------------|
/// | 0                        | `tail`: index of the last slot enqueued       |
/// | 1 + s, s in 0...cores    | slot `s`: 1 = pending, 0 = granted            |
/// | 2 + cores + c            | core `c`'s own record: slot it owns (+0), its predecessor's slot while it waits or holds (+8); plain memory, read and written by core `c` only |
///
/// Only `tail` is taken with an exclusive load/store pair (the swap); the slots
/// are written with plain stores and read by one spinner each. The stride must
/// cover the exclusive reservation granule (see `BigLockLayout.defaultStride`).
public struct CLHLock: KernelLock, ~Copyable {
    @usableFromInline let base: UnsafeMutableRawPointer
    @usableFromInline let stride: Int
    @usableFromInline let cores: Int

    @usableFromInline static let pending: UInt64 = 1
    @usableFromInline static let granted: UInt64 = 0

    public static var kindName: StaticString { "clh" }

    @inlinable
    public static func byteCount(cores: Int, stride: Int) -> Int { (2 + 2 * cores) * stride }

    public init(formatting memory: UnsafeMutableRawPointer, cores: Int, stride: Int) {
        BigLockLayout.check(memory, cores: cores, stride: stride)
        memory.initializeMemory(as: UInt8.self, repeating: 0, count: Self.byteCount(cores: cores, stride: stride))
        formatWord(memory, 0, stride, UInt64(cores))
        for slot in 0...cores { formatWord(memory, 1 + slot, stride, Self.granted) }
        self.base = memory
        self.stride = stride
        self.cores = cores
        for core in 0..<cores {
            record(core).initialize(repeating: 0, count: 2)
            record(core)[0] = UInt64(core)
        }
    }

    public init(attaching memory: UnsafeMutableRawPointer, cores: Int, stride: Int) {
        BigLockLayout.check(memory, cores: cores, stride: stride)
        self.base = memory
        self.stride = stride
        self.cores = cores
    }

    @inlinable var tail: UnsafePointer<Atomic<UInt64>> { lockWord(base, 0, stride) }
    @inlinable func slot(_ s: UInt64) -> UnsafePointer<Atomic<UInt64>> {
        lockWord(base, 1 &+ Int(truncatingIfNeeded: s), stride)
    }
    /// Core `core`'s private record: [0] = slot it owns, [1] = predecessor's slot.
    @inlinable func record(_ core: Int) -> UnsafeMutablePointer<UInt64> {
        (base + (2 &+ cores &+ core) &* stride).assumingMemoryBound(to: UInt64.self)
    }

    @inlinable
    public func acquire<Hook: LockWaitHook & ~Copyable>(core: Int, hook: inout Hook) -> Bool {
        let own = record(core)
        let mine = own[0]
        /// Relaxed: no other core can look at our slot until the exchange below
        /// makes it the tail; the exchange's releasing half publishes this store.
        slot(mine).pointee.store(Self.pending, ordering: .relaxed)
        /// Acquiring and releasing, as seL4 (`__ATOMIC_ACQ_REL`). Releasing:
        /// our successor, which gets our slot from this exchange, must then see
        /// it pending, not the granted left from its last use. Acquiring: our
        /// reads of the predecessor's slot stay after the exchange that named
        /// it; on Arm the address dependency would do, but neither Swift nor C
        /// promises dependency ordering, and seL4 saw a too-weak ordering of
        /// this very exchange break mutual exclusion on an Arm server.
        let pred = tail.pointee.exchange(mine, ordering: .acquiringAndReleasing)
        own[1] = pred
        /// Acquiring: pairs with the predecessor's releasing store of granted in
        /// `release(core:)`: its critical section happens-before ours.
        if slot(pred).pointee.load(ordering: .acquiring) == Self.granted { return false }
        repeat { hook.waiting() } while slot(pred).pointee.load(ordering: .acquiring) != Self.granted
        return true
    }

    @inlinable
    public func release(core: Int) {
        let own = record(core)
        let mine = own[0]
        /// Releasing: our critical section's writes happen-before the
        /// successor's, whose acquiring spin reads this granted.
        slot(mine).pointee.store(Self.granted, ordering: .releasing)
        /// Adopt the predecessor's slot: its owner moved on to another slot when
        /// it released, and we were its only reader.
        own[0] = own[1]
    }
}
