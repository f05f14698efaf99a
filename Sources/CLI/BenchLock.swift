import ArgumentParser
import BigLock
import CLockReference
import Foundation
import Hosted
import Synchronization

/// `cmk bench lock`: the Swift big locks against C in the same process.
struct BenchLock: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lock",
        abstract: "Swift big locks vs the same algorithms in C (uncontended) and vs pthread_mutex (2 cores).",
        discussion: """
        Uncontended: acquire+release on one pinned CPU, Swift loop vs C loop (goal: Swift/C <= 1.10). \
        Contended: two pinned CPUs hammering one lock around a counter, each lock vs \
        pthread_mutex (goal: MCS and CLH >= 1.0). Interleaved rounds; medians reported.
        """)

    @Option(help: "Measurement rounds (each measures every contender once, in rotating order).")
    var rounds: Int = 11

    @Option(help: "Acquire+release pairs per uncontended measurement.")
    var iterations: UInt64 = 2_000_000

    @Option(help: "Seconds per contended measurement.")
    var seconds: Double = 0.2

    @Option(help: "Lock block stride in bytes.")
    var stride: Int = BigLockLayout.defaultStride

    func validate() throws {
        if rounds < 1 { throw ValidationError("--rounds must be at least 1") }
        if iterations < 1000 { throw ValidationError("--iterations must be at least 1000") }
        if !(seconds > 0 && seconds <= 10) { throw ValidationError("--seconds must be in (0, 10]") }
        if !BigLockLayout.isValid(stride: stride) { throw ValidationError("--stride must be a power of two from 64 to 2048") }
    }

    func run() throws {
        let iterations = self.iterations, stride = self.stride, rounds = self.rounds
        let cpus = allowedHostCPUs()
        print("cmk bench lock on \(hostDescription())")
        #if DEBUG
        print("warning: this is a debug build; numbers mean little. Rerun with `swift run -c release cmk bench lock`.")
        #endif
        let command = "swift run -c release cmk bench lock --rounds \(rounds) --iterations \(iterations) --seconds \(seconds)\(stride == BigLockLayout.defaultStride ? "" : " --stride \(stride)")"
        let kinds = LockKind.allCases
        let cores = 2
        let bytes = kinds.map { $0.byteCount(cores: cores, stride: stride) }.max()!
        let memory = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 4096)
        let control = UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 4096)
        defer { memory.deallocate(); control.deallocate() }
        let mem = SendablePointer(memory), ctl = SendablePointer(control)

        // ---- uncontended, on the first CPU
        print("\nuncontended acquire+release, CPU \(cpus[0]), \(rounds) rounds x \(iterations) pairs")
        let swiftNs = Samples(), cNs = Samples()
        try runPinnedThreads([cpus[0]]) { _ in
            for round in 0...rounds {  // round 0 warms up and is not recorded
                for (k, kind) in kinds.enumerated() {
                    let order = (round + k) % 2 == 0 ? [true, false] : [false, true]
                    for swift in order {
                        format(kind, mem.raw, cores: cores, stride: stride, swift: swift)
                        let t0 = monotonicNanoseconds()
                        if swift {
                            LockBenchLoops.uncontended(kind: kind, memory: mem.raw, cores: cores, stride: stride, core: 0, iterations: iterations)
                        } else {
                            cmk_c_uncontended(cKind(kind), mem.raw, Int32(cores), stride, 0, iterations)
                        }
                        let ns = Double(monotonicNanoseconds() - t0) / Double(iterations)
                        if round > 0 {
                            (swift ? swiftNs : cNs).values[kind, default: []].append(ns)
                        }
                    }
                }
            }
        }
        var table: [[String]] = []
        var summary: [String] = []
        for kind in kinds {
            let s = median(swiftNs.values[kind]!), c = median(cNs.values[kind]!)
            let ratio = s / c
            table.append([kind.rawValue, String(format: "%.2f", s), String(format: "%.2f", c), String(format: "%.3f", ratio),
                          ratio <= 1.10 ? "yes" : "NO"])
            summary.append("\(kind.rawValue) Swift/C \(String(format: "%.2f", ratio))")
        }
        print(renderTable(["lock", "Swift ns/pair", "C ns/pair", "Swift/C", "<= 1.10"], table), terminator: "")

        // ---- contended, two CPUs
        if cpus.count < 2 {
            print("\ncontended: skipped, this host has only \(cpus.count) CPU available")
        } else {
            let pair = Array(cpus.prefix(2))
            print("\ncontended: CPUs \(pair[0]),\(pair[1]) each loop {acquire; counter += 1; release}, \(rounds) rounds x \(seconds) s")
            enum Contender: Hashable { case swift(LockKind), c(LockKind), mutex }
            let contenders: [Contender] = kinds.map { .swift($0) } + kinds.map { .c($0) } + [.mutex]
            var rates: [Contender: [Double]] = [:]
            var fairness: [Contender: [Double]] = [:]
            let mutex = SendablePointer(cmk_c_mutex_create()!)
            defer { cmk_c_mutex_destroy(mutex.raw) }
            let stop = (control).bindMemory(to: UInt64.self, capacity: 32)
            for round in 0..<rounds {
                for i in 0..<contenders.count {
                    let who = contenders[(i + round) % contenders.count]
                    switch who {
                    case .swift(let k): format(k, mem.raw, cores: cores, stride: stride, swift: true)
                    case .c(let k): format(k, mem.raw, cores: cores, stride: stride, swift: false)
                    case .mutex: break
                    }
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
                        case .c(let k):
                            n = cmk_c_hammer(cKind(k), mem.raw, 2, stride, Int32(core), stopFlag, counter)
                        case .mutex:
                            n = cmk_c_mutex_hammer(mutex.raw, stopFlag, counter)
                        }
                        start.ops[core] = n
                    }
                    while start.ready.load(ordering: .relaxed) < 2 { usleep(100) }
                    let t0 = monotonicNanoseconds()
                    usleep(useconds_t(seconds * 1e6))
                    control.bindMemory(to: Atomic<UInt64>.self, capacity: 1).pointee.store(1, ordering: .relaxed)
                    let elapsed = Double(monotonicNanoseconds() - t0) / 1e9
                    threads.join()
                    let total = start.ops[0] + start.ops[1]
                    let counted = control.load(fromByteOffset: 16 * 8, as: UInt64.self)
                    if counted != total { throw LockCommandError("\(who): counter \(counted) != \(total) acquisitions: the lock failed") }
                    rates[who, default: []].append(Double(total) / elapsed)
                    let (lo, hi) = (min(start.ops[0], start.ops[1]), max(start.ops[0], start.ops[1]))
                    fairness[who, default: []].append(lo == 0 ? .infinity : Double(hi) / Double(lo))
                }
            }
            let mutexRate = median(rates[.mutex]!)
            var ctable: [[String]] = []
            for kind in kinds {
                let s = median(rates[.swift(kind)]!), c = median(rates[.c(kind)]!)
                let goal = kind == .ticket ? "-" : (s >= mutexRate ? "yes" : "NO")
                ctable.append([kind.rawValue, si(s), si(c), String(format: "%.2f", s / mutexRate), String(format: "%.2f", c / mutexRate), goal,
                               String(format: "%.2f", median(fairness[.swift(kind)]!))])
                summary.append("\(kind.rawValue) Swift/mutex \(String(format: "%.2f", s / mutexRate))")
            }
            ctable.append(["pthread_mutex", "-", si(mutexRate), "-", "1.00", "-", String(format: "%.2f", median(fairness[.mutex]!))])
            print(renderTable(["lock", "Swift acq/s", "C acq/s", "Swift/mutex", "C/mutex", ">= mutex", "max/min per CPU"], ctable), terminator: "")
            print("(max/min per CPU: acquisitions of the busier CPU over the other's; 1.00 = strict alternation)")
        }
        print("\nsummary: " + summary.joined(separator: "; "))
        print("rerun: \(command)")
    }
}

/// Samples written by the one measuring thread, read after it is joined.
final class Samples: @unchecked Sendable {
    var values: [LockKind: [Double]] = [:]
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

struct SendablePointer: @unchecked Sendable {
    let raw: UnsafeMutableRawPointer
    init(_ raw: UnsafeMutableRawPointer) { self.raw = raw }
}

func cKind(_ kind: LockKind) -> Int32 {
    switch kind { case .ticket: 0; case .mcs: 1; case .clh: 2 }
}

/// Formats `kind` at `memory` for the Swift or the C implementation (the
/// layouts are the same; each side formats its own, as it would in use).
func format(_ kind: LockKind, _ memory: UnsafeMutableRawPointer, cores: Int, stride: Int, swift: Bool) {
    if swift {
        switch kind {
        case .ticket: _ = BigTicketLock(formatting: memory, cores: cores, stride: stride)
        case .mcs: _ = MCSLock(formatting: memory, cores: cores, stride: stride)
        case .clh: _ = CLHLock(formatting: memory, cores: cores, stride: stride)
        }
    } else {
        switch kind {
        case .ticket: cmk_c_ticket_format(memory, Int32(cores), stride)
        case .mcs: cmk_c_mcs_format(memory, Int32(cores), stride)
        case .clh: cmk_c_clh_format(memory, Int32(cores), stride)
        }
    }
}
