import Glibc
import Synchronization
import Testing
import CHosted
@testable import BigLock
@testable import Hosted

/// Yields the host CPU while waiting: the stress tests run more threads than
/// this 2-CPU machine has, and a FIFO spin lock handed to a descheduled
/// thread would otherwise burn whole time slices.
struct YieldHook: LockWaitHook {
    /// How often this core waited. (Also keeps the hook from being an empty
    /// value: Swift gives every empty boxed variable the same address, which
    /// ThreadSanitizer then reports as a race between threads' accesses.)
    var waits = 0
    mutating func waiting() { waits += 1; sched_yield() }
}

struct Shared: @unchecked Sendable {
    let memory: UnsafeMutableRawPointer
    let counter: UnsafeMutablePointer<UInt64>
}

final class Flags: Sendable {
    let inside = Atomic<Int>(0)
    let overlaps = Atomic<Int>(0)
    let requestPosted = Atomic<Bool>(false)
    let requestServed = Atomic<Bool>(false)
    let hookCalls = Atomic<Int>(0)
    let contended = Atomic<Bool>(false)
    let waiterDone = Atomic<Bool>(false)
    let arrived = Atomic<Int>(0)
}

/// `threads` threads, `iterations` each: acquire, check nobody else is
/// inside, increment a plain counter, release.
struct CounterStress: LockKindVisitor {
    let threads: Int
    let iterations: Int
    func visit<L: KernelLock & ~Copyable>(_: L.Type) throws(HostedError) -> (counter: UInt64, overlaps: Int) {
        let stride = BigLockLayout.defaultStride
        let memory = UnsafeMutableRawPointer.allocate(byteCount: L.byteCount(cores: threads, stride: stride), alignment: 4096)
        let counter = UnsafeMutablePointer<UInt64>.allocate(capacity: 1)
        defer { memory.deallocate(); counter.deallocate() }
        counter.initialize(to: 0)
        _ = L(formatting: memory, cores: threads, stride: stride)
        let shared = Shared(memory: memory, counter: counter)
        let flags = Flags()
        let iterations = self.iterations, threads = self.threads
        try PinnedThreads.run(Array(repeating: nil, count: threads)) { core in
            let lock = L(attaching: shared.memory, cores: threads, stride: stride)
            var hook = YieldHook()
            // Start together, so the threads really overlap.
            flags.arrived.add(1, ordering: .relaxed)
            while flags.arrived.load(ordering: .relaxed) < threads { sched_yield() }
            for _ in 0..<iterations {
                _ = lock.acquire(core: core, hook: &hook)
                // Relaxed: a detector, not a synchronisation; TSan checks the
                // plain counter below.
                if flags.inside.add(1, ordering: .relaxed).newValue != 1 {
                    flags.overlaps.add(1, ordering: .relaxed)
                }
                // A read-modify-write with a window: a lock that lets two
                // cores in loses increments here.
                let value = shared.counter.pointee
                for _ in 0..<4 { cmk_cpu_relax() }
                shared.counter.pointee = value &+ 1
                flags.inside.subtract(1, ordering: .relaxed)
                lock.release(core: core)
            }
        }
        return (counter.pointee, flags.overlaps.load(ordering: .relaxed))
    }
}

/// Serves the one remote request of `RemoteRequestWhileWaiting` while waiting.
struct ServingHook: LockWaitHook {
    let flags: Flags
    mutating func waiting() {
        flags.hookCalls.add(1, ordering: .relaxed)
        /// Acquiring/releasing: the request and its answer are a
        /// message pair between the two cores.
        if flags.requestPosted.load(ordering: .acquiring) {
            flags.requestServed.store(true, ordering: .releasing)
        }
        sched_yield()
    }
}

/// Core 0 holds the lock and posts a remote request to core 1, which is
/// waiting for the lock; core 0 releases only once core 1 has served the
/// request from its wait hook. Without the hook this would deadlock; with it,
/// it must finish, with core 1 seeing its acquisition as contended.
struct RemoteRequestWhileWaiting: LockKindVisitor {
    func visit<L: KernelLock & ~Copyable>(_: L.Type) throws(HostedError) -> (served: Bool, contended: Bool, hookCalls: Int) {
        let stride = BigLockLayout.defaultStride
        let memory = UnsafeMutableRawPointer.allocate(byteCount: L.byteCount(cores: 2, stride: stride), alignment: 4096)
        defer { memory.deallocate() }
        _ = L(formatting: memory, cores: 2, stride: stride)
        let lock0 = L(attaching: memory, cores: 2, stride: stride)
        var spin = SpinWaitHook()
        _ = lock0.acquire(core: 0, hook: &spin)

        let flags = Flags()
        let shared = Shared(memory: memory, counter: UnsafeMutablePointer(bitPattern: 8)!)
        let waiter = try PinnedThreads([nil]) { _ in
            let lock1 = L(attaching: shared.memory, cores: 2, stride: stride)
            var hook = ServingHook(flags: flags)
            let c = lock1.acquire(core: 1, hook: &hook)
            flags.contended.store(c, ordering: .relaxed)
            lock1.release(core: 1)
            flags.waiterDone.store(true, ordering: .releasing)
        }
        // The holder: a remote call, then wait for its answer, still holding the lock.
        flags.requestPosted.store(true, ordering: .releasing)
        // (A broken lock lets the waiter in at once: stop waiting then, so the
        // test fails instead of hanging.)
        while !flags.requestServed.load(ordering: .acquiring) && !flags.waiterDone.load(ordering: .acquiring) {
            sched_yield()
        }
        lock0.release(core: 0)
        waiter.join()
        return (flags.requestServed.load(ordering: .relaxed), flags.contended.load(ordering: .relaxed),
                flags.hookCalls.load(ordering: .relaxed))
    }
}

@Suite struct ConcurrencyTests {
    @Test(arguments: allKinds)
    func aCounterUnderTheLockNeverLosesAnIncrement(kind: ClusterLock.Kind) throws {
        let threads = 4, iterations = 20_000
        let (counter, overlaps) = try kind.visit(CounterStress(threads: threads, iterations: iterations))
        #expect(overlaps == 0)
        #expect(counter == UInt64(threads * iterations))
    }

    @Test(arguments: allKinds)
    func aWaitingCoreServesRemoteRequests(kind: ClusterLock.Kind) throws {
        let (served, contended, hookCalls) = try kind.visit(RemoteRequestWhileWaiting())
        #expect(served)
        #expect(contended)
        #expect(hookCalls >= 1)
    }
}
