import Cluster
import Foundation
import Topology

/// `cmk bench ipc --qemu` (docs/bench-ipc.md): cluster 0's root task
/// measures Call/ReplyRecv round trips with the PMU under `-icount shift=0`
/// and prints totals; this parses them and divides by the one-way IPCs.
public enum IPCBenchQEMU {
    /// One `cmk: cluster 0 user ipc bench KIND roundtrips=N instructions=I cycles=C` line.
    public struct Measurement: Equatable, Sendable {
        public var roundTrips: UInt64
        public var instructions: UInt64
        public var cycles: UInt64

        public init(roundTrips: UInt64, instructions: UInt64, cycles: UInt64) {
            self.roundTrips = roundTrips
            self.instructions = instructions
            self.cycles = cycles
        }

        /// One-way IPCs: two per round trip (a null syscall counts once).
        public func perOneWay(_ total: UInt64, calls: Bool = false) -> Double {
            Double(total) / Double(calls ? roundTrips : 2 * roundTrips)
        }
    }

    public struct Result: Equatable, Sendable {
        public var sameCore: Measurement
        public var crossCore: Measurement
        /// The null system call (Yield), for comparison; nil if absent.
        public var nullSyscall: Measurement?
        /// Cross core: the client's and the server's own counts (`client=`,
        /// `server=`), when the line has them.
        public var crossCoreParts: (client: UInt64, server: UInt64)?

        public static func == (a: Result, b: Result) -> Bool {
            a.sameCore == b.sameCore && a.crossCore == b.crossCore && a.nullSyscall == b.nullSyscall
                && a.crossCoreParts?.client == b.crossCoreParts?.client && a.crossCoreParts?.server == b.crossCoreParts?.server
        }
    }

    public static let prefix = "cmk: cluster 0 user ipc bench "

    /// `KIND key=N ...` → (kind, values) for a bench line, nil for any other line.
    static func fields(_ line: String) -> (String, [String: UInt64])? {
        guard line.hasPrefix(prefix) else { return nil }
        let parts = line.dropFirst(prefix.count).split(separator: " ")
        guard let kind = parts.first else { return ("", [:]) }
        var values: [String: UInt64] = [:]
        for p in parts.dropFirst() {
            let kv = p.split(separator: "=", maxSplits: 1)
            if kv.count == 2, let v = UInt64(kv[1]) { values[String(kv[0])] = v } else { values[String(p)] = nil }
        }
        return (String(kind), values)
    }

    /// The measurements in a boot's console lines, or an error that says
    /// what is missing or malformed.
    ///
    /// `machineWideCounter`: the event counter counts every core of the
    /// machine, not only the reader's (QEMU: INST_RETIRED is the global
    /// `-icount` count). Both the client's and the server's differences then
    /// cover both cores, and their sum would count the IPCs twice: the
    /// cross-core instructions are the client's (`client=`) alone.
    public static func parse(_ lines: [String], machineWideCounter: Bool = false) throws(CMKFailure) -> Result {
        var same: Measurement?, cross: Measurement?, null: Measurement?
        var parts: (client: UInt64, server: UInt64)?
        var skippedCores: UInt64?
        for line in lines {
            guard let (kind, v) = fields(line) else { continue }
            if kind == "cross-core", line.contains(" skipped") {
                skippedCores = v["cores"] ?? 1
                continue
            }
            let count = kind == "null-syscall" ? v["calls"] : v["roundtrips"]
            guard let n = count, n > 0, let i = v["instructions"], let c = v["cycles"] else {
                throw .bootFailed("malformed IPC benchmark line: \(line)")
            }
            var m = Measurement(roundTrips: n, instructions: i, cycles: c)
            if kind == "cross-core", let a = v["client"], let b = v["server"] {
                guard a &+ b == i else { throw .bootFailed("malformed IPC benchmark line (client + server != instructions): \(line)") }
                parts = (a, b)
                if machineWideCounter { m.instructions = a }
            }
            switch kind {
            case "same-core": same = m
            case "cross-core": cross = m
            case "null-syscall": null = m
            default: throw .bootFailed("unknown IPC benchmark line: \(line)")
            }
        }
        if let failed = lines.first(where: { $0.contains("user ipc FAILED") || $0.contains("user ipc bench FAILED") }) {
            throw .bootFailed("the root task's IPC benchmark failed: \(failed)")
        }
        guard let same else {
            throw .bootFailed("cluster 0's root task printed no same-core IPC benchmark line (`\(prefix)same-core ...`)")
        }
        if let skippedCores {
            throw .environment("cross-core IPC needs at least 2 cores in cluster 0; the topology gives it \(skippedCores): use topologies/1x4.toml or default.toml")
        }
        guard let cross else {
            throw .bootFailed("cluster 0's root task printed no cross-core IPC benchmark line (`\(prefix)cross-core ...`)")
        }
        return Result(sameCore: same, crossCore: cross, nullSyscall: null, crossCoreParts: parts)
    }

    /// The last line: `aarch64: N instructions per one-way IPC (same core), M (cross-core)`.
    public static func summary(_ r: Result) -> String {
        let n = Int(r.sameCore.perOneWay(r.sameCore.instructions).rounded())
        let m = Int(r.crossCore.perOneWay(r.crossCore.instructions).rounded())
        return "aarch64: \(n) instructions per one-way IPC (same core), \(m) (cross-core)"
    }

    /// The table printed above the summary.
    public static func table(_ r: Result) -> [String] {
        func row(_ name: String, _ m: Measurement, calls: Bool = false) -> String {
            name.padding(toLength: 14, withPad: " ", startingAt: 0)
                + String(format: "%12llu %14.1f %14.1f", m.roundTrips, m.perOneWay(m.instructions, calls: calls),
                         m.perOneWay(m.cycles, calls: calls))
        }
        var rows = [
            "case            round trips  instr/one-way  cycles/one-way",
            row("same core", r.sameCore),
            row("cross core", r.crossCore),
        ]
        if let n = r.nullSyscall { rows.append(row("null syscall", n, calls: true) + "  (Yield: calls, per call)") }
        return rows
    }

    /// The topology's first cluster must have 2 cores for the cross-core case.
    public static func check(_ topology: Topology) throws(CMKFailure) {
        guard let first = topology.clusters.first, first.cores.count >= 2 else {
            throw .environment("cross-core IPC needs at least 2 cores in cluster 0; \(topology.name) gives it \(topology.clusters.first?.cores.count ?? 0): use topologies/1x4.toml or default.toml")
        }
    }

    /// Boot `topology` with the request, single-threaded TCG, `-icount shift=0`.
    public static func run(_ topology: Topology, roundTrips: Int, timeout: Double) throws(CMKFailure) -> (Result, ExperimentBoot.Output) {
        guard roundTrips >= 1, UInt64(roundTrips) <= ExperimentRequest.maxBenchRoundTrips else {
            throw .environment("--round-trips \(roundTrips): must be 1...\(ExperimentRequest.maxBenchRoundTrips)")
        }
        try check(topology)
        let output = try ExperimentBoot.run(
            topology, request: .ipcBench(roundTrips: UInt64(roundTrips)), icount: true, threading: .single, timeout: timeout)
        return (try parse(output.lines, machineWideCounter: true), output)
    }
}
