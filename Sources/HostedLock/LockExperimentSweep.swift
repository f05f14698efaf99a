import BigLock
import Foundation
import Hosted
import Topology

/// `cmk experiment lock` on any backend: the points to measure, the runs
/// (interleaved over locks), the rows, and the files they are written to.
/// (The kernel's own part, under QEMU, is `LockExperiment` in Boot.) The command only
/// parses its arguments and prints what this returns.
public struct LockExperimentSweep {
    public var kinds: [ClusterLock.Kind]
    /// Each point is one list of clusters run at once.
    public var points: [[LockClusterSpec]]
    public var setup: LockExperimentSetup
    public var runs: Int

    public init(kinds: [ClusterLock.Kind], points: [[LockClusterSpec]], setup: LockExperimentSetup, runs: Int) {
        self.kinds = kinds; self.points = points; self.setup = setup; self.runs = runs
    }

    /// Number of backend runs in all.
    public var totalRuns: Int { points.count * kinds.count * runs }

    /// The points of a hosted run: the file's clusters at once (cores on
    /// their `host_cpus`, or on the allowed CPUs in order), or without a file
    /// one cluster of 1, 2, ... cores up to every allowed CPU.
    public static func hostedPoints(_ topology: Topology?, file: String = "", allowed: [Int]) throws(HostedError) -> [[LockClusterSpec]] {
        guard let topology else {
            return allowed.indices.map { n in [LockClusterSpec(cores: n + 1, hostCPUs: Array(allowed.prefix(n + 1)), node: 0)] }
        }
        let total = topology.clusters.reduce(0) { $0 + $1.cores.count }
        if total > allowed.count {
            throw HostedError("\(file) has \(total) cores but this host has only \(allowed.count) CPUs available (\(cpuListString(allowed))): the hosted runtime needs one host CPU per core")
        }
        let point = topology.clusters.map { c in
            LockClusterSpec(cores: c.cores.count, hostCPUs: c.hostCPUs ?? c.cores.map { allowed[$0 % allowed.count] }, node: c.node)
        }
        let mapped = point.flatMap(\.hostCPUs)
        if Set(mapped).count != mapped.count {
            throw HostedError("\(file): two cores map to the same host CPU; give each cluster distinct `host_cpus`")
        }
        return [point]
    }

    /// The points of a QEMU run (not limited by host CPUs): the file's
    /// clusters, or one cluster of 1, 2, 4 and 8 cores.
    public static func qemuPoints(_ topology: Topology?) -> [[LockClusterSpec]] {
        if let topology { return [topology.clusters.map { LockClusterSpec(cores: $0.cores.count, hostCPUs: [], node: 0) }] }
        return [1, 2, 4, 8].map { [LockClusterSpec(cores: $0, hostCPUs: [], node: 0)] }
    }

    /// Runs every point for every lock, `runs` times, interleaving the locks;
    /// `progress` gets one line per backend run and each new placement note.
    /// Fails at the first run whose kernel lost an entry (mutual exclusion failed).
    public func run(on backend: LockExperimentBackend, progress: (String) -> Void) throws -> [LockResultRow] {
        var rows: [LockResultRow] = []
        var notes = Set<String>()
        var done = 0
        for run in 1...runs {
            for point in points {
                for kind in kinds {
                    let measurements = try backend.run(lock: kind, setup: setup, clusters: point)
                    done += 1
                    for m in measurements {
                        if !m.note.isEmpty && notes.insert(m.note).inserted { progress(m.note) }
                        rows.append(LockResultRow(backend: backend.name, lock: kind, setup: setup, run: run, m: m))
                    }
                    let r = rows.suffix(measurements.count)
                    let tp = r.map { si($0.throughput) }.joined(separator: "/")
                    progress("[\(done)/\(totalRuns)] \(kind.topologyName) cores/cluster=\(point.map { "\($0.cores)" }.joined(separator: ",")) run \(run): \(tp) entries/s, p99 wait \(r.map { fixed($0.waitP99, 0) }.joined(separator: "/")) \(r.first?.waitUnit ?? "")")
                    if let bad = r.first(where: { $0.lostEntries != 0 }) {
                        throw HostedError("lock \(kind.topologyName) lost \(bad.lostEntries) kernel entries in cluster \(bad.cluster): mutual exclusion failed")
                    }
                }
            }
        }
        return rows
    }

    /// The terminal table: per lock, cluster and size, medians over the runs.
    public static func table(_ rows: [LockResultRow]) -> String {
        var table = TextTable(["lock", "cluster", "cores", "entries/s", "wait mean \(rows.first?.waitUnit ?? "")", "p50", "p99", "contended", "max/min"])
        let keys = orderedUnique(rows.map { "\($0.lock)|\($0.cluster)|\($0.cores)" })
        for key in keys {
            let parts = key.split(separator: "|").map(String.init)
            let group = rows.filter { $0.lock == parts[0] && "\($0.cluster)" == parts[1] && "\($0.cores)" == parts[2] }
            let fair = group.compactMap(\.fairness)
            table.rows.append([parts[0], parts[1], parts[2], si(Statistics.median(group.map(\.throughput))),
                               fixed(Statistics.median(group.map(\.waitMean)), 0),
                               fixed(Statistics.median(group.map(\.waitP50)), 0),
                               fixed(Statistics.median(group.map(\.waitP99)), 0),
                               fixed(Statistics.median(group.map(\.contendedPercent)), 1) + "%",
                               fair.isEmpty ? "-" : fixed(Statistics.median(fair), 2)])
        }
        return table.rendered
    }

    /// `results.csv`.
    public static func csv(_ rows: [LockResultRow]) -> String {
        ([LockResultRow.csvHeader] + rows.map(\.csvLine)).joined(separator: "\n") + "\n"
    }

    /// `results.json`: the command, the machine and every row.
    public static func json(_ rows: [LockResultRow], command: String, machine: String) throws -> Data {
        struct Document: Encodable {
            let command: String, machine: String, rows: [LockResultRow]
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(Document(command: command, machine: machine, rows: rows))
    }

    /// Writes DIR/results.csv, DIR/results.json and DIR/throughput.svg.
    public func write(_ rows: [LockResultRow], to directory: String, backend: LockExperimentBackend, command: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try Self.csv(rows).write(toFile: directory + "/results.csv", atomically: true, encoding: .utf8)
        try Self.json(rows, command: command, machine: backend.machine).write(to: URL(fileURLWithPath: directory + "/results.json"))
        let subtitle = "\(setup.summary), \(runs) x \(setup.duration) s, \(backend.machine)"
        try throughputSVG(rows: rows, title: "Big lock throughput (\(backend.name))", subtitle: subtitle)
            .write(toFile: directory + "/throughput.svg", atomically: true, encoding: .utf8)
    }
}

/// The hosted backend: clusters on pinned host threads (`HostedRuntime`).
public struct HostedLockBackend: LockExperimentBackend {
    let calibration = TickCalibration.measure()
    public init() {}
    public var name: String { "hosted" }
    public var machine: String { HostMachine.summaryWithNUMA }

    public func run(lock: ClusterLock.Kind, setup: LockExperimentSetup, clusters: [LockClusterSpec]) throws -> [LockClusterMeasurement] {
        let results = try HostedRuntime.run(
            kind: lock, workload: setup.workload, hold: setup.hold,
            clusters: clusters.map { HostedClusterPlan(hostCPUs: $0.hostCPUs, node: $0.node) },
            settings: HostedRunSettings(delay: setup.delay, duration: setup.duration, stride: setup.stride))
        // Host ticks to nanoseconds.
        return results.map { r in
            var m = r
            m.waitUnit = "ns"
            m.unitsPerTick = 1 / calibration.ticksPerNanosecond
            return m
        }
    }
}
