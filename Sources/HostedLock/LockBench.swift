import BigLock
import CHosted
import CLockReference
import Hosted
import Synchronization
import Topology
#if canImport(Glibc)
import Glibc
#endif

/// `cmk bench lock`: the Swift big locks against the same algorithms in C in
/// the same process, `ClusterLock` (what every kernel entry goes through)
/// against the specialised types, and the locks against `pthread_mutex`.
public enum LockBench {
    public struct Settings: Sendable {
        /// Measurement rounds (each measures every contender once, in rotating order).
        public var rounds: Int
        /// Acquire+release pairs per uncontended measurement.
        public var iterations: UInt64
        /// Seconds per contended measurement.
        public var seconds: Double
        /// Lock block stride in bytes.
        public var stride: Int
        public init(rounds: Int, iterations: UInt64, seconds: Double, stride: Int = BigLockLayout.defaultStride) {
            self.rounds = rounds; self.iterations = iterations; self.seconds = seconds; self.stride = stride
        }

        /// What is wrong with these settings, or nil.
        public var problem: String? {
            if rounds < 1 { return "--rounds must be at least 1" }
            if iterations < 1000 { return "--iterations must be at least 1000" }
            if !(seconds > 0 && seconds <= 10) { return "--seconds must be in (0, 10]" }
            if !BigLockLayout.isValid(stride: stride) { return "--stride must be a power of two from 64 to 2048" }
            return nil
        }

        public var rerun: String {
            "swift run -c release cmk bench lock --rounds \(rounds) --iterations \(iterations) --seconds \(seconds)\(stride == BigLockLayout.defaultStride ? "" : " --stride \(stride)")"
        }
    }

    /// Who takes the lock in one measurement.
    public enum Contender: Hashable, Sendable {
        /// The specialised Swift type (`BigTicketLock`, `MCSLock`, `CLHLock`).
        case swift(ClusterLock.Kind)
        /// The same kind through `ClusterLock`.
        case clusterLock(ClusterLock.Kind)
        /// The C reference.
        case c(ClusterLock.Kind)
        case mutex
    }

    /// Medians over the rounds.
    public struct Report: Sendable {
        /// Nanoseconds per uncontended acquire+release pair.
        public var uncontended: [Contender: Double] = [:]
        /// Acquisitions per second of two contending CPUs (empty with one CPU).
        public var contended: [Contender: Double] = [:]
        /// Acquisitions of the busier CPU over the other's.
        public var fairness: [Contender: Double] = [:]
    }

    /// Runs the benchmark, printing as it goes (`print` gets whole lines).
    public static func run(_ settings: Settings, print: (String) -> Void) throws(HostedError) -> Report {
        let iterations = settings.iterations, stride = settings.stride, rounds = settings.rounds
        let cpus = allowedHostCPUs()
        guard let first = cpus.first else { throw HostedError("this process may run on no host CPU") }
        print("cmk bench lock on \(HostMachine.summary)")
        if let warning = HostMachine.debugBuildWarning(rerun: "swift run -c release cmk bench lock") { print(warning) }
        let kinds = ClusterLock.Kind.allCases
        let cores = 2
        let bytes = ClusterLock.maxByteCount(cores: cores, stride: stride)
        let memory = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 4096)
        let control = UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 4096)
        defer { memory.deallocate(); control.deallocate() }
        let mem = SharedRawPointer(memory), ctl = SharedRawPointer(control)
        var report = Report()

        // ---- uncontended, on the first CPU
        print("")
        print("uncontended acquire+release, CPU \(first), \(rounds) rounds x \(iterations) pairs")
        let samples = Samples()
        try PinnedThreads.run([first]) { _ in
            for round in 0...rounds {  // round 0 warms up and is not recorded
                for (k, kind) in kinds.enumerated() {
                    let three: [Contender] = [.swift(kind), .c(kind), .clusterLock(kind)]
                    let order = (0..<3).map { three[($0 + round + k) % 3] }
                    for who in order {
                        // Each side formats its own lock, untimed, as it would in use.
                        var clusterLock: ClusterLock?
                        switch who {
                        case .swift: LockBenchLoops.format(kind, mem.raw, cores: cores, stride: stride, swift: true)
                        case .c: LockBenchLoops.format(kind, mem.raw, cores: cores, stride: stride, swift: false)
                        case .clusterLock:
                            clusterLock = ClusterLock(formatting: mem.raw, kind: kind, cores: cores, stride: stride,
                                                      waitHint: { cmk_cpu_relax() })
                        case .mutex: break
                        }
                        let t0 = monotonicNanoseconds()
                        switch who {
                        case .swift:
                            LockBenchLoops.uncontended(kind: kind, memory: mem.raw, cores: cores, stride: stride, core: 0, iterations: iterations)
                        case .c:
                            cmk_c_uncontended(Int32(kind.rawValue), mem.raw, Int32(cores), stride, 0, iterations)
                        case .clusterLock:
                            LockBenchLoops.clusterLockUncontended(clusterLock!, core: 0, iterations: iterations)
                        case .mutex:
                            break
                        }
                        let ns = Double(monotonicNanoseconds() - t0) / Double(iterations)
                        if round > 0 { samples.values[who, default: []].append(ns) }
                    }
                }
            }
        }
        for (who, values) in samples.values { report.uncontended[who] = Statistics.median(values) }
        var table = TextTable(["lock", "Swift ns/pair", "C ns/pair", "Swift/C", "<= 1.10", "ClusterLock ns/pair", "ClusterLock/Swift"])
        var summary: [String] = []
        for kind in kinds {
            let s = report.uncontended[.swift(kind)]!, c = report.uncontended[.c(kind)]!
            let cl = report.uncontended[.clusterLock(kind)]!
            let ratio = s / c
            table.rows.append([kind.topologyName, fixed(s, 2), fixed(c, 2), fixed(ratio, 3), ratio <= 1.10 ? "yes" : "NO",
                               fixed(cl, 2), fixed(cl / s, 3)])
            summary.append("\(kind.topologyName) Swift/C \(fixed(ratio, 2))")
            summary.append("\(kind.topologyName) ClusterLock/Swift \(fixed(cl / s, 2))")
        }
        print(String(table.rendered.dropLast()))
        print("(ClusterLock/Swift: the run-time kind, the attach on every call and the wait hook through a C function pointer, over the specialised type)")

        // ---- contended, two CPUs
        if cpus.count < 2 {
            print("")
            print("contended: skipped, this host has only \(cpus.count) CPU available")
        } else {
            let pair = Array(cpus.prefix(2))
            print("")
            print("contended: CPUs \(pair[0]),\(pair[1]) each loop {acquire; counter += 1; release}, \(rounds) rounds x \(settings.seconds) s")
            let contenders: [Contender] = kinds.map { .swift($0) } + kinds.map { .clusterLock($0) } + kinds.map { .c($0) } + [.mutex]
            var rates: [Contender: [Double]] = [:]
            var fairness: [Contender: [Double]] = [:]
            let mutex = SharedRawPointer(cmk_c_mutex_create()!)
            defer { cmk_c_mutex_destroy(mutex.raw) }
            let stop = control.bindMemory(to: UInt64.self, capacity: 32)
            for round in 0..<rounds {
                for i in 0..<contenders.count {
                    let who = contenders[(i + round) % contenders.count]
                    var clusterLock: ClusterLock?
                    switch who {
                    case .swift(let k): LockBenchLoops.format(k, mem.raw, cores: cores, stride: stride, swift: true)
                    case .c(let k): LockBenchLoops.format(k, mem.raw, cores: cores, stride: stride, swift: false)
                    case .clusterLock(let k):
                        clusterLock = ClusterLock(formatting: mem.raw, kind: k, cores: cores, stride: stride,
                                                  waitHint: { cmk_cpu_relax() })
                    case .mutex: break
                    }
                    let lock = clusterLock
                    stop[0] = 0      // stop flag (its own line)
                    stop[16] = 0     // counter, under the lock (its own line)
                    let start = StartLine()
                    let threads = try PinnedThreads(pair) { core in
                        let stopFlag = ctl.raw.assumingMemoryBound(to: UInt64.self)
                        let counter = stopFlag + 16
                        start.ready.add(1, ordering: .relaxed)
                        while start.ready.load(ordering: .relaxed) < 2 {}
                        let n: UInt64
                        switch who {
                        case .swift(let k):
                            n = LockBenchLoops.hammer(kind: k, memory: mem.raw, cores: 2, stride: stride, core: core, stop: stopFlag, counter: counter)
                        case .clusterLock:
                            n = LockBenchLoops.clusterLockHammer(lock!, core: core, stop: stopFlag, counter: counter)
                        case .c(let k):
                            n = cmk_c_hammer(Int32(k.rawValue), mem.raw, 2, stride, Int32(core), stopFlag, counter)
                        case .mutex:
                            n = cmk_c_mutex_hammer(mutex.raw, stopFlag, counter)
                        }
                        start.ops[core] = n
                    }
                    while start.ready.load(ordering: .relaxed) < 2 { usleep(100) }
                    let t0 = monotonicNanoseconds()
                    usleep(useconds_t(settings.seconds * 1e6))
                    control.bindMemory(to: Atomic<UInt64>.self, capacity: 1).pointee.store(1, ordering: .relaxed)
                    let elapsed = Double(monotonicNanoseconds() - t0) / 1e9
                    threads.join()
                    let total = start.ops[0] + start.ops[1]
                    let counted = control.load(fromByteOffset: 16 * 8, as: UInt64.self)
                    if counted != total { throw HostedError("\(who): counter \(counted) != \(total) acquisitions: the lock failed") }
                    rates[who, default: []].append(Double(total) / elapsed)
                    let (lo, hi) = (min(start.ops[0], start.ops[1]), max(start.ops[0], start.ops[1]))
                    fairness[who, default: []].append(lo == 0 ? .infinity : Double(hi) / Double(lo))
                }
            }
            for (who, values) in rates { report.contended[who] = Statistics.median(values) }
            for (who, values) in fairness { report.fairness[who] = Statistics.median(values) }
            let mutexRate = report.contended[.mutex]!
            var ctable = TextTable(["lock", "Swift acq/s", "C acq/s", "Swift/mutex", "C/mutex", ">= mutex", "max/min per CPU",
                                    "ClusterLock acq/s", "ClusterLock/Swift"])
            for kind in kinds {
                let s = report.contended[.swift(kind)]!, c = report.contended[.c(kind)]!
                let cl = report.contended[.clusterLock(kind)]!
                let goal = kind == .ticket ? "-" : (s >= mutexRate ? "yes" : "NO")
                ctable.rows.append([kind.topologyName, si(s), si(c), fixed(s / mutexRate, 2), fixed(c / mutexRate, 2), goal,
                                    fixed(report.fairness[.swift(kind)]!, 2), si(cl), fixed(cl / s, 2)])
                summary.append("\(kind.topologyName) Swift/mutex \(fixed(s / mutexRate, 2))")
            }
            ctable.rows.append(["pthread_mutex", "-", si(mutexRate), "-", "1.00", "-", fixed(report.fairness[.mutex]!, 2), "-", "-"])
            print(String(ctable.rendered.dropLast()))
            print("(max/min per CPU: acquisitions of the busier CPU over the other's; 1.00 = strict alternation)")
        }
        print("")
        print("summary: " + summary.joined(separator: "; "))
        print("rerun: \(settings.rerun)")
        return report
    }
}

/// Samples written by the one measuring thread, read after it is joined.
final class Samples: @unchecked Sendable {
    var values: [LockBench.Contender: [Double]] = [:]
}

/// The start line of a contended measurement, and each thread's count
/// (separate words, each written by its own thread, read after the join).
final class StartLine: @unchecked Sendable {
    /// Relaxed: only lines the two threads up; orders nothing.
    let ready = Atomic<Int>(0)
    let ops = UnsafeMutablePointer<UInt64>.allocate(capacity: 2)
    init() { ops.initialize(repeating: 0, count: 2) }
    deinit { ops.deallocate() }
}
