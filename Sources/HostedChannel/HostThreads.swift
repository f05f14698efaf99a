import CChannelReference
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Host threads pinned to CPUs: the hosted stand-in for a cluster's core.
public enum PinnedThreads {
    public struct Job: Sendable {
        /// CPU to pin to (`pthread_setaffinity_np`), or nil to leave unpinned.
        public var cpu: Int?
        public var body: @Sendable () -> Void
        public init(cpu: Int?, body: @escaping @Sendable () -> Void) {
            self.cpu = cpu
            self.body = body
        }
    }

    final class Box {
        let job: Job
        var pinError: Int32 = 0
        init(_ job: Job) { self.job = job }
    }

    /// Start one thread per job, wait for all of them. Returns, per job, the
    /// error number of pinning (0 if pinned or not asked to pin).
    @discardableResult
    public static func run(_ jobs: [Job]) -> [Int32] {
        var boxes: [Box] = []
        var threads: [pthread_t] = []
        for job in jobs {
            let box = Box(job)
            boxes.append(box)
            var thread = pthread_t()
            let context = Unmanaged.passRetained(box).toOpaque()
            let rc = pthread_create(&thread, nil, { argument in
                let box = Unmanaged<Box>.fromOpaque(argument!).takeRetainedValue()
                if let cpu = box.job.cpu { box.pinError = cref_pin_self(Int32(cpu)) }
                box.job.body()
                return nil
            }, context)
            precondition(rc == 0, "pthread_create failed: \(rc)")
            threads.append(thread)
        }
        for thread in threads { pthread_join(thread, nil) }
        return boxes.map { $0.pinError }
    }

    /// CPUs this process may run on, in order.
    public static func allowedCPUs() -> [Int] {
        var cpus = [Int32](repeating: 0, count: 1024)
        let count = Int(cref_allowed_cpus(&cpus, 1024))
        return cpus.prefix(count).map(Int.init)
    }
}

/// A sense-free one-shot barrier for a fixed number of threads (spins, then
/// yields, so it also works when threads share a CPU).
public final class StartBarrier: @unchecked Sendable {
    let arrived = Atomic<Int>(0)
    let parties: Int

    public init(parties: Int) { self.parties = parties }

    public func wait() {
        // Acquiring-and-releasing: everything each thread did before arriving
        // happens-before what any thread does after leaving.
        arrived.wrappingAdd(1, ordering: .acquiringAndReleasing)
        var spins = 0
        while arrived.load(ordering: .acquiring) < parties { Spin.relax(&spins) }
    }
}

/// Spin-wait step: a CPU hint, and every 16 Ki spins a `sched_yield` so two
/// threads pinned to one CPU still make progress.
public enum Spin {
    @inline(__always)
    public static func relax(_ spins: inout Int) {
        cref_cpu_relax()
        spins &+= 1
        if spins & 0x3FFF == 0 { cref_yield() }
    }
}

/// Monotonic clock in nanoseconds (the same one the C reference uses).
@inline(__always)
public func monotonicNanoseconds() -> UInt64 { cref_now_ns() }

/// A pointer that may cross threads: the memory it points to is shared on
/// purpose and the channel protocol (not the type system) orders its accesses.
public struct SharedPointer<Pointee>: @unchecked Sendable {
    public let pointer: UnsafeMutablePointer<Pointee>
    public init(_ pointer: UnsafeMutablePointer<Pointee>) { self.pointer = pointer }
}
