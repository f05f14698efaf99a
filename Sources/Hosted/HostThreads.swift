import CHosted
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Why a hosted run cannot start or could not run as asked. Every message is
/// meant for the user.
public struct HostedError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Host threads, each pinned to one host CPU: the hosted stand-in for a
/// cluster's cores. The one way every hosted experiment, benchmark and stress
/// test starts threads.
///
/// Pinning fails loudly: a CPU this process may not use is refused before any
/// thread starts (`HostedError`), and a thread the kernel refuses to pin
/// stops the process with the CPU and errno (a run on the wrong CPU would
/// report figures for a placement nobody asked for).
public struct PinnedThreads: ~Copyable {
    /// One thread: the CPU to pin it to (nil: leave it unpinned, for tests
    /// that oversubscribe the host on purpose) and what it runs.
    public struct Job: Sendable {
        public var cpu: Int?
        public var body: @Sendable () -> Void
        public init(cpu: Int?, body: @escaping @Sendable () -> Void) {
            self.cpu = cpu
            self.body = body
        }
    }

    private var threads: [pthread_t] = []

    /// Starts one thread per job, pinned as the job says.
    public init(_ jobs: [Job]) throws(HostedError) {
        let allowed = Set(allowedHostCPUs())
        for job in jobs {
            if let cpu = job.cpu, !allowed.contains(cpu) {
                throw HostedError("host CPU \(cpu) is not available to this process (allowed: \(cpuListString(allowed.sorted())))")
            }
        }
        final class Start {
            let job: Job
            init(_ job: Job) { self.job = job }
        }
        for job in jobs {
            let start = Unmanaged.passRetained(Start(job)).toOpaque()
            var thread = pthread_t()
            let rc = pthread_create(&thread, nil, { raw in
                let job = Unmanaged<Start>.fromOpaque(raw!).takeRetainedValue().job
                if let cpu = job.cpu {
                    let rc = cmk_pin_self(Int32(cpu))
                    if rc != 0 { fatalError("cmk: cannot pin a thread to host CPU \(cpu) (errno \(rc))") }
                }
                job.body()
                return nil
            }, start)
            if rc != 0 { fatalError("cmk: pthread_create failed (errno \(rc))") }
            threads.append(thread)
        }
    }

    /// Starts `body(i)` on one thread per entry of `cpus`, thread `i` pinned
    /// to `cpus[i]` (nil: unpinned).
    public init(_ cpus: [Int?], _ body: @escaping @Sendable (Int) -> Void) throws(HostedError) {
        try self.init(cpus.enumerated().map { index, cpu in Job(cpu: cpu) { body(index) } })
    }

    /// Waits for every thread to return.
    public consuming func join() {
        for thread in threads { pthread_join(thread, nil) }
    }

    /// Runs the jobs and waits for all of them.
    public static func run(_ jobs: [Job]) throws(HostedError) {
        try PinnedThreads(jobs).join()
    }

    /// Runs `body(i)` on one thread per entry of `cpus`, pinned, and waits for all.
    public static func run(_ cpus: [Int?], _ body: @escaping @Sendable (Int) -> Void) throws(HostedError) {
        try PinnedThreads(cpus, body).join()
    }
}

/// The host CPUs this process may run on (its affinity mask), in order.
public func allowedHostCPUs() -> [Int] {
    (0..<1024).filter { cmk_cpu_allowed(Int32($0)) != 0 }
}

/// Two host CPUs for a pair of threads: the first two this process may use,
/// or its only CPU twice. Fails when it may use none.
public func hostCPUPair() throws(HostedError) -> (Int, Int) {
    let allowed = allowedHostCPUs()
    guard let first = allowed.first else { throw HostedError("this process may run on no host CPU") }
    return (first, allowed.count >= 2 ? allowed[1] : first)
}

/// A one-shot barrier for a fixed number of threads (spins, then yields, so
/// it also works when threads share a CPU).
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

/// Spin-wait step: the CPU's spin hint, and every 16 Ki spins a `sched_yield`
/// so two threads pinned to one CPU still make progress.
public enum Spin {
    @inline(__always)
    public static func relax(_ spins: inout Int) {
        cmk_cpu_relax()
        spins &+= 1
        if spins & 0x3FFF == 0 { sched_yield() }
    }
}

/// A pointer that may cross threads: the memory it points to is shared on
/// purpose and a protocol (not the type system) orders its accesses.
public struct SharedPointer<Pointee>: @unchecked Sendable {
    public let pointer: UnsafeMutablePointer<Pointee>
    public init(_ pointer: UnsafeMutablePointer<Pointee>) { self.pointer = pointer }
}

/// Raw memory that crosses threads (a lock's words, a stop flag): shared on
/// purpose, ordered by the code that uses it.
public struct SharedRawPointer: @unchecked Sendable {
    public let raw: UnsafeMutableRawPointer
    public init(_ raw: UnsafeMutableRawPointer) { self.raw = raw }
}

/// "0-3,8" for [0, 1, 2, 3, 8].
public func cpuListString(_ cpus: [Int]) -> String {
    var parts: [String] = []
    var i = 0
    let s = cpus.sorted()
    while i < s.count {
        var j = i
        while j + 1 < s.count && s[j + 1] == s[j] + 1 { j += 1 }
        parts.append(i == j ? "\(s[i])" : "\(s[i])-\(s[j])")
        i = j + 1
    }
    return parts.joined(separator: ",")
}

/// Parses Linux's CPU list format ("0-3,8,10-11"); nil if malformed.
public func parseCPUList(_ text: String) -> [Int]? {
    let trimmed = text.trimmingCharacters(in: " \n\t")
    if trimmed.isEmpty { return [] }
    var cpus: [Int] = []
    for part in trimmed.split(separator: ",") {
        let ends = part.split(separator: "-", omittingEmptySubsequences: false)
        if ends.count == 1, let v = Int(ends[0]) { cpus.append(v); continue }
        guard ends.count == 2, let lo = Int(ends[0]), let hi = Int(ends[1]), lo <= hi else { return nil }
        cpus.append(contentsOf: lo...hi)
    }
    return cpus
}

extension String {
    func trimmingCharacters(in set: String) -> String {
        var s = Substring(self)
        while let f = s.first, set.contains(f) { s.removeFirst() }
        while let l = s.last, set.contains(l) { s.removeLast() }
        return String(s)
    }
}
