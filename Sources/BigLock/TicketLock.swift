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
        // Relaxed is enough for the peek: the CAS below re-checks.
        let now = serving.load(ordering: .relaxed)
        // Acquiring on success, for the same reason as in `acquire()`; relaxed
        // on failure, since we then touch nothing the lock protects.
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
