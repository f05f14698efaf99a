import Synchronization

/// A ticket lock: a big lock that serves cores in the order they arrive.
///
/// Two counters: `next` hands out tickets, `serving` names the ticket that
/// holds the lock. Fair (FIFO) and simple; every waiter spins on the same
/// word, which is what MCS and CLH avoid (see docs/design.md, "Big lock").
///
/// Invariant: `next - serving` (wrapping) is the number of cores holding or
/// waiting for the lock; it never exceeds the number of cores, far below 2^32.
///
/// The lock must live at a stable address (a global, or memory the kernel
/// owns): it is `~Copyable` so it is never copied by accident.
public struct TicketLock: ~Copyable {
    /// The next ticket to hand out.
    @usableFromInline let next = Atomic<UInt32>(0)
    /// The ticket now being served (the holder's ticket).
    @usableFromInline let serving = Atomic<UInt32>(0)

    public init() {}

    /// Take the lock, waiting behind every core that asked earlier.
    @inlinable
    public func acquire() {
        // Relaxed: taking a ticket orders nothing by itself; the acquire load of
        // `serving` below is what makes the previous holder's writes visible.
        let ticket = next.wrappingAdd(1, ordering: .relaxed).oldValue
        // Acquiring: pairs with the releasing store in `release()`, so the
        // previous critical section happens-before ours.
        while serving.load(ordering: .acquiring) != ticket {}
    }

    /// Take the lock only if nobody holds it or waits for it.
    @inlinable
    public func tryAcquire() -> Bool {
        // Acquiring: pairs with the releasing store in `release()`. This load,
        // not the CAS, is what synchronises with the previous holder: the CAS
        // is on `next`, which the holder last wrote with a relaxed RMW (taking
        // its ticket), never with a release, so an acquiring CAS alone orders
        // nothing after the previous critical section. On x86 every load is
        // an acquire and the bug would never show; on AArch64 a relaxed peek
        // (LDR) lets the critical section's loads be satisfied before the
        // holder's last stores are visible. If the CAS then succeeds, `next`
        // still equals the `serving` we read, so no release happened since:
        // the value we acquired is the last one.
        let now = serving.load(ordering: .acquiring)
        // Acquiring on success (harmless, and keeps the section after the
        // CAS); relaxed on failure, since we then touch nothing the lock protects.
        return next.compareExchange(
            expected: now, desired: now &+ 1,
            successOrdering: .acquiring, failureOrdering: .relaxed
        ).exchanged
    }

    /// Release the lock. Only the holder calls this.
    @inlinable
    public func release() {
        // Relaxed load: only the holder writes `serving`, so it reads its own value.
        let current = serving.load(ordering: .relaxed)
        // Releasing: our critical section's writes become visible to the core
        // whose acquiring load sees the new value.
        serving.store(current &+ 1, ordering: .releasing)
    }
}

/// The ticket lock as a big kernel lock: the same algorithm as `TicketLock`,
/// with `next` and `serving` each alone in its own `stride`-byte block, so the
/// exclusive loop on `next` never shares a reservation granule with the stores
/// to `serving`, and waiters spinning on `serving` are not disturbed by cores
/// taking tickets.
///
/// Layout: block 0 = `next`, block 1 = `serving`. Nothing per core.
/// Fair (FIFO); every waiter spins on `serving`, so each release invalidates
/// the line in every waiting core's cache: the cost MCS and CLH avoid.
public struct BigTicketLock: KernelLock, ~Copyable {
    @usableFromInline let base: UnsafeMutableRawPointer
    @usableFromInline let stride: Int

    public static var kindName: StaticString { "ticket" }

    @inlinable
    public static func byteCount(cores: Int, stride: Int) -> Int { 2 * stride }

    public init(formatting memory: UnsafeMutableRawPointer, cores: Int, stride: Int) {
        BigLockLayout.check(memory, cores: cores, stride: stride)
        memory.initializeMemory(as: UInt8.self, repeating: 0, count: Self.byteCount(cores: cores, stride: stride))
        formatWord(memory, 0, stride, 0)
        formatWord(memory, 1, stride, 0)
        self.base = memory
        self.stride = stride
    }

    public init(attaching memory: UnsafeMutableRawPointer, cores: Int, stride: Int) {
        BigLockLayout.check(memory, cores: cores, stride: stride)
        self.base = memory
        self.stride = stride
    }

    @inlinable var next: UnsafePointer<Atomic<UInt64>> { lockWord(base, 0, stride) }
    @inlinable var serving: UnsafePointer<Atomic<UInt64>> { lockWord(base, 1, stride) }

    @inlinable
    public func acquire<Hook: LockWaitHook & ~Copyable>(core: Int, hook: inout Hook) -> Bool {
        /// Relaxed: taking a ticket publishes nothing and needs to see nothing;
        /// the acquiring load of `serving` below is what orders the critical
        /// section after the previous holder's.
        let ticket = next.pointee.wrappingAdd(1, ordering: .relaxed).oldValue
        /// Acquiring: pairs with the releasing store in `release(core:)`, so the
        /// previous critical section happens-before ours.
        if serving.pointee.load(ordering: .acquiring) == ticket { return false }
        repeat { hook.waiting() } while serving.pointee.load(ordering: .acquiring) != ticket
        return true
    }

    @inlinable
    public func release(core: Int) {
        /// Relaxed load: only the holder writes `serving`, so it reads its own
        /// last value.
        let current = serving.pointee.load(ordering: .relaxed)
        /// Releasing: our critical section's writes become visible to the core
        /// whose acquiring load sees the next ticket served.
        serving.pointee.store(current &+ 1, ordering: .releasing)
    }
}
