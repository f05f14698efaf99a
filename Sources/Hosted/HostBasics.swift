import BigLock
import CHosted
#if canImport(Glibc)
import Glibc
#endif

/// Why a hosted run cannot start. Every message is meant for the user.
public struct HostedError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The host's tick counter (TSC on x86-64, CNTVCT_EL0 on AArch64) as the
/// clock of `LockStatistics`.
public enum HostTicks: LockTickSource {
    @inlinable @inline(__always)
    public static func now() -> UInt64 { cmk_ticks() }
}

/// Converts host ticks to nanoseconds, measured against CLOCK_MONOTONIC.
public struct TickCalibration: Sendable {
    public let ticksPerNanosecond: Double

    /// Measures over `milliseconds` of sleeping.
    public static func measure(milliseconds: Int = 50) -> TickCalibration {
        let n0 = cmk_monotonic_ns(), t0 = cmk_ticks()
        usleep(useconds_t(milliseconds * 1000))
        let n1 = cmk_monotonic_ns(), t1 = cmk_ticks()
        let rate = Double(t1 &- t0) / Double(max(1, n1 &- n0))
        return TickCalibration(ticksPerNanosecond: rate > 0 ? rate : 1)
    }

    public func nanoseconds(_ ticks: Double) -> Double { ticks / ticksPerNanosecond }
}

/// The host CPUs this process may run on (its affinity mask).
public func allowedHostCPUs() -> [Int] {
    (0..<Int(CPU_SETSIZE_VALUE)).filter { cmk_cpu_allowed(Int32($0)) != 0 }
}

private let CPU_SETSIZE_VALUE = 1024

/// Monotonic nanoseconds.
public func monotonicNanoseconds() -> UInt64 { cmk_monotonic_ns() }

/// Threads pinned one per host CPU, started together, joined together.
public struct PinnedThreads: ~Copyable {
    private var threads: [pthread_t] = []

    /// Starts `body(i)` on one new thread per entry of `cpus`, thread `i`
    /// pinned to host CPU `cpus[i]`; a negative entry leaves that thread unpinned
    /// (tests that oversubscribe the host on purpose).
    public init(_ cpus: [Int], _ body: @escaping @Sendable (Int) -> Void) throws(HostedError) {
        let allowed = Set(allowedHostCPUs())
        for cpu in cpus where cpu >= 0 && !allowed.contains(cpu) {
            throw HostedError("host CPU \(cpu) is not available to this process (allowed: \(cpuListString(allowed.sorted())))")
        }
        final class Start {
            let cpu: Int, index: Int, body: @Sendable (Int) -> Void
            init(cpu: Int, index: Int, body: @escaping @Sendable (Int) -> Void) {
                self.cpu = cpu; self.index = index; self.body = body
            }
        }
        for (index, cpu) in cpus.enumerated() {
            let start = Unmanaged.passRetained(Start(cpu: cpu, index: index, body: body)).toOpaque()
            var thread = pthread_t()
            let rc = pthread_create(&thread, nil, { raw in
                let start = Unmanaged<Start>.fromOpaque(raw!).takeRetainedValue()
                let rc = start.cpu < 0 ? 0 : cmk_pin_self(Int32(start.cpu))
                if rc != 0 { fatalError("cmk: cannot pin a thread to host CPU \(start.cpu) (errno \(rc))") }
                start.body(start.index)
                return nil
            }, start)
            if rc != 0 { fatalError("cmk: pthread_create failed (errno \(rc))") }
            threads.append(thread)
        }
    }

    /// Waits for every thread to return.
    public consuming func join() {
        for thread in threads { pthread_join(thread, nil) }
    }
}

/// Runs `body(i)` on one thread per entry of `cpus`, pinned, and waits for all.
public func runPinnedThreads(_ cpus: [Int], _ body: @escaping @Sendable (Int) -> Void) throws(HostedError) {
    try PinnedThreads(cpus, body).join()
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
