import Synchronization

/// The MCS queue lock (Mellor-Crummey & Scott, "Algorithms for scalable
/// synchronization on shared-memory multiprocessors", ACM TOCS 9(1), 1991,
/// Figure 5, with compare-and-swap in release).
///
/// Each core owns one queue node; a waiter spins only on its own node's
/// `locked` word, and the holder hands the lock over by clearing it, so a
/// release moves one cache line to one core.
///
/// Layout (`stride`-byte blocks): block 0 = `tail`; for core `c`, block
/// `1 + 2c` = `next` of its node, block `2 + 2c` = `locked` of its node.
/// `next` and `locked` have separate blocks because they are written by
/// different cores (the successor links itself into `next`, the predecessor
/// clears `locked`) while the owner spins on `locked`.
/// Node names are indices, not pointers: `0` is "none", `c + 1` is core `c`'s
/// node, so the lock is position-independent (each cluster's copy of the
/// kernel may map its partition anywhere).
///
/// Invariant: `tail` names the last node in the queue, or 0 when the lock is
/// free; the holder's node is the queue's head.
public struct MCSLock: KernelLock, ~Copyable {
    @usableFromInline let base: UnsafeMutableRawPointer
    @usableFromInline let stride: Int

    public static var kindName: StaticString { "mcs" }

    @inlinable
    public static func byteCount(cores: Int, stride: Int) -> Int { (1 + 2 * cores) * stride }

    public init(formatting memory: UnsafeMutableRawPointer, cores: Int, stride: Int) {
        BigLockLayout.check(memory, cores: cores, stride: stride)
        memory.initializeMemory(as: UInt8.self, repeating: 0, count: Self.byteCount(cores: cores, stride: stride))
        for block in 0..<(1 + 2 * cores) { formatWord(memory, block, stride, 0) }
        self.base = memory
        self.stride = stride
    }

    public init(attaching memory: UnsafeMutableRawPointer, cores: Int, stride: Int) {
        BigLockLayout.check(memory, cores: cores, stride: stride)
        self.base = memory
        self.stride = stride
    }

    @inlinable var tail: UnsafePointer<Atomic<UInt64>> { lockWord(base, 0, stride) }
    /// The `next` word of node `node` (1-based).
    @inlinable func next(_ node: UInt64) -> UnsafePointer<Atomic<UInt64>> {
        lockWord(base, Int(truncatingIfNeeded: node) &* 2 &- 1, stride)
    }
    /// The `locked` word of node `node` (1-based).
    @inlinable func locked(_ node: UInt64) -> UnsafePointer<Atomic<UInt64>> {
        lockWord(base, Int(truncatingIfNeeded: node) &* 2, stride)
    }

    @inlinable
    public func acquire<Hook: LockWaitHook & ~Copyable>(core: Int, hook: inout Hook) -> Bool {
        let me = UInt64(truncatingIfNeeded: core) &+ 1
        /// Relaxed: nobody can reach our node until the exchange below puts it
        /// in `tail`; the exchange's releasing half publishes these two stores.
        next(me).pointee.store(0, ordering: .relaxed)
        locked(me).pointee.store(1, ordering: .relaxed)
        /// Acquiring and releasing. Releasing: publishes the two stores above
        /// to the successor that reads our node from `tail`. Acquiring: when
        /// the lock was free (`pred == 0`) this exchange reads the value the
        /// last holder's releasing compare-exchange wrote, so its critical
        /// section happens-before ours (MCS's `fetch_and_store`, which the
        /// paper assumes sequentially consistent).
        let pred = tail.pointee.exchange(me, ordering: .acquiringAndReleasing)
        if pred == 0 { return false }
        /// Releasing: the predecessor's acquiring load of its `next` then sees
        /// our `locked = 1` above, so its clearing store comes after it in the
        /// word's modification order (it cannot be overwritten by our 1).
        next(pred).pointee.store(me, ordering: .releasing)
        /// Acquiring: pairs with the predecessor's releasing store of 0 in
        /// `release(core:)`; its critical section happens-before ours.
        while locked(me).pointee.load(ordering: .acquiring) != 0 { hook.waiting() }
        return true
    }

    @inlinable
    public func release(core: Int) {
        let me = UInt64(truncatingIfNeeded: core) &+ 1
        /// Acquiring: pairs with the successor's releasing store into our
        /// `next` (see `acquire`), so we see its `locked = 1` before clearing it.
        var succ = next(me).pointee.load(ordering: .acquiring)
        if succ == 0 {
            /// Releasing on success: the next core to find the lock free reads
            /// this 0 with its acquiring exchange, and our critical section
            /// happens-before its own. Relaxed on failure: a successor has
            /// swapped itself into `tail` and we only wait for its link.
            if tail.pointee.compareExchange(
                expected: me, desired: 0,
                successOrdering: .releasing, failureOrdering: .relaxed
            ).exchanged { return }
            /// A successor is between its exchange and its link (two stores
            /// away): wait for it. Acquiring, for the same reason as above.
            repeat {
                succ = next(me).pointee.load(ordering: .acquiring)
            } while succ == 0
        }
        /// Releasing: hands the lock over; pairs with the successor's acquiring
        /// spin on its `locked`, so our critical section happens-before its.
        locked(succ).pointee.store(0, ordering: .releasing)
    }
}
