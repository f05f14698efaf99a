import ArgumentParser
import BigLock
import Foundation
import Topology
import Hosted

/// `cmk experiment lock`: how each big lock behaves as a cluster grows.
struct ExperimentLock: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lock",
        abstract: "Measure the big locks under kernel-entry workloads (hosted: one pinned host thread per core).",
        discussion: """
        Without FILE, sweeps cores per cluster from 1 to this host's CPUs in one cluster. \
        With a topology FILE, runs its clusters at once (cores map to `host_cpus`, or to \
        the host's CPUs in order). Writes DIR/results.csv, DIR/results.json and \
        DIR/throughput.svg; see docs/experiments.md.
        """)

    @Argument(help: "A topology file (TOML). Default: sweep one cluster over this host's CPUs.")
    var file: String?

    @Option(help: "Comma-separated lock kinds: ticket, mcs, clh. Default: the file's `lock`, else all three.")
    var locks: String?

    @Option(help: "Workload: null (take the lock, count, release) or cs (a critical section of --hold units).")
    var workload: String = "null"

    @Option(help: "Critical-section length for --workload cs: read-modify-writes of kernel data (~1 cycle each).")
    var hold: UInt64 = 100

    @Option(help: "Work outside the lock between two entries, in spin-loop iterations (~1 cycle each).")
    var delay: UInt64 = 0

    @Option(help: "Seconds per run.")
    var duration: Double = 1.0

    @Option(help: "Runs per lock and cluster size (interleaved across locks).")
    var runs: Int = 3

    @Option(help: "Output directory.")
    var out: String = "out/experiment-lock"

    @Option(help: "Lock block stride in bytes: covers a cache line and the exclusive reservation granule.")
    var stride: Int = BigLockLayout.defaultStride

    @Flag(help: "Run in the booted kernel in QEMU (one boot per point; times in virtual-counter ticks) instead of on host threads.")
    var qemu = false

    @Flag(help: "With --qemu: run QEMU with -icount shift=0, so a tick is 16 instructions (deterministic counts).")
    var icount = false

    @Option(help: "With --qemu: TCG threading. single (default) interleaves the vCPUs on one host thread, so the lock is never contended (it measures the cost of an entry); multi runs them in parallel (real contention, but more vCPUs than host CPUs also measures the host's scheduler).")
    var tcg: QEMUCommand.Threading = .single

    func validate() throws {
        if runs < 1 { throw ValidationError("--runs must be at least 1") }
        if !(duration > 0 && duration <= 600) { throw ValidationError("--duration must be in (0, 600] seconds") }
        if !BigLockLayout.isValid(stride: stride) { throw ValidationError("--stride must be a power of two from 64 to 2048") }
        if WorkloadKind(rawValue: workload) == nil {
            throw ValidationError("unknown workload '\(workload)' (known: \(WorkloadKind.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
    }

    func run() throws {
        do { try experiment() } catch let e as HostedError {
            throw LockCommandError(e.description)
        } catch let e as LockTopologyFile.ParseError {
            throw LockCommandError(e.description)
        }
    }

    func experiment() throws {
        let allowed = allowedHostCPUs()
        var topology: LockTopologyFile?
        if let file { topology = try LockTopologyFile(path: file) }
        let kinds = try LockKind.parseList(locks ?? topology?.lock ?? "ticket,mcs,clh")
        if icount && !qemu { throw LockCommandError("--icount needs --qemu") }
        if icount && tcg == .multi { throw LockCommandError("--icount needs --tcg single (QEMU counts instructions only single-threaded)") }
        // The points: lists of clusters.
        var points: [[LockClusterSpec]] = []
        if qemu {
            // QEMU is not limited by host CPUs: the file's clusters, or one
            // cluster of 1, 2, 4 and 8 cores.
            if let topology {
                points.append(topology.clusters.map { LockClusterSpec(cores: $0.cores.count, hostCPUs: [], node: 0) })
            } else {
                for n in [1, 2, 4, 8] { points.append([LockClusterSpec(cores: n, hostCPUs: [], node: 0)]) }
            }
        } else if let topology {
            let total = topology.clusters.reduce(0) { $0 + $1.cores.count }
            if total > allowed.count {
                throw LockCommandError("\(file!) has \(total) cores but this host has only \(allowed.count) CPUs available (\(cpuListString(allowed))): the hosted runtime needs one host CPU per core")
            }
            points.append(topology.clusters.map { c in
                LockClusterSpec(cores: c.cores.count, hostCPUs: c.hostCPUs ?? c.cores.map { allowed[$0 % allowed.count] }, node: c.node)
            })
            let mapped = points[0].flatMap(\.hostCPUs)
            if Set(mapped).count != mapped.count {
                throw LockCommandError("\(file!): two cores map to the same host CPU; give each cluster distinct `host_cpus`")
            }
        } else {
            for n in 1...allowed.count { points.append([LockClusterSpec(cores: n, hostCPUs: Array(allowed.prefix(n)), node: 0)]) }
        }
        let backend: LockExperimentBackend = qemu ? QEMULockBackend(icount: icount, threading: tcg) : HostedLockBackend()
        let setup = LockExperimentSetup(workload: workload, hold: workload == "cs" ? hold : 0, delay: delay,
                                        duration: duration, stride: stride)
        let total = points.count * kinds.count * runs
        print("cmk experiment lock: \(backend.machine)")
        print("locks \(kinds.map(\.rawValue).joined(separator: ",")), workload \(workload)\(workload == "cs" ? " hold \(hold)" : ""), delay \(delay), \(duration) s x \(runs) runs, \(total) runs in all (~\(Int((Double(total) * duration).rounded(.up))) s)")
        if let file { print("topology \(file): \(points[0].map { "\($0.cores) cores on CPUs \(cpuListString($0.hostCPUs))" }.joined(separator: "; "))") }
        var rows: [LockResultRow] = []
        var notes = Set<String>()
        var done = 0
        for run in 1...runs {
            for point in points {
                for kind in kinds {
                    let measurements = try backend.run(lock: kind, setup: setup, clusters: point)
                    done += 1
                    for m in measurements {
                        if !m.note.isEmpty && notes.insert(m.note).inserted { print(m.note) }
                        rows.append(LockResultRow(backend: backend.name, lock: kind, setup: setup, run: run, m: m))
                    }
                    let r = rows.suffix(measurements.count)
                    let tp = r.map { si($0.throughput) }.joined(separator: "/")
                    print("[\(done)/\(total)] \(kind.rawValue) cores/cluster=\(point.map { "\($0.cores)" }.joined(separator: ",")) run \(run): \(tp) entries/s, p99 wait \(r.map { String(format: "%.0f", $0.waitP99) }.joined(separator: "/")) \(r.first?.waitUnit ?? "")")
                    if let bad = r.first(where: { $0.lostEntries != 0 }) {
                        throw LockCommandError("lock \(kind.rawValue) lost \(bad.lostEntries) kernel entries in cluster \(bad.cluster): mutual exclusion failed")
                    }
                }
            }
        }
        try write(rows: rows, backend: backend)
    }

    func write(rows: [LockResultRow], backend: LockExperimentBackend) throws {
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let csv = ([LockResultRow.csvHeader] + rows.map(\.csvLine)).joined(separator: "\n") + "\n"
        try csv.write(toFile: out + "/results.csv", atomically: true, encoding: .utf8)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        struct Document: Encodable {
            let command: String, machine: String, rows: [LockResultRow]
        }
        let command = (["cmk"] + CommandLine.arguments.dropFirst()).joined(separator: " ")
        try encoder.encode(Document(command: command, machine: backend.machine, rows: rows))
            .write(to: URL(fileURLWithPath: out + "/results.json"))
        let subtitle = "\(workload)\(workload == "cs" ? " hold=\(hold)" : "") delay=\(delay), \(runs) x \(duration) s, \(backend.machine)"
        try throughputSVG(rows: rows, title: "Big lock throughput (\(backend.name))", subtitle: subtitle)
            .write(toFile: out + "/throughput.svg", atomically: true, encoding: .utf8)
        // The terminal table: medians over runs.
        var table: [[String]] = []
        let keys = orderedUnique(rows.map { "\($0.lock)|\($0.cluster)|\($0.cores)" })
        for key in keys {
            let parts = key.split(separator: "|").map(String.init)
            let group = rows.filter { $0.lock == parts[0] && "\($0.cluster)" == parts[1] && "\($0.cores)" == parts[2] }
            let fair = group.compactMap(\.fairness)
            table.append([parts[0], parts[1], parts[2], si(median(group.map(\.throughput))),
                          String(format: "%.0f", median(group.map(\.waitMean))),
                          String(format: "%.0f", median(group.map(\.waitP50))),
                          String(format: "%.0f", median(group.map(\.waitP99))),
                          String(format: "%.1f%%", median(group.map(\.contendedPercent))),
                          fair.isEmpty ? "-" : String(format: "%.2f", median(fair))])
        }
        let unit = rows.first?.waitUnit ?? ""
        print("")
        print(renderTable(["lock", "cluster", "cores", "entries/s", "wait mean \(unit)", "p50", "p99", "contended", "max/min"], table), terminator: "")
        print("medians over \(runs) run(s); every run in \(out)/results.csv, \(out)/results.json; plot \(out)/throughput.svg")
    }
}

/// A command failure with a message for the user (exit code 1).
struct LockCommandError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The hosted backend: clusters on pinned host threads (Sources/Hosted).
struct HostedLockBackend: LockExperimentBackend {
    let calibration = TickCalibration.measure()
    var name: String { "hosted" }
    var machine: String {
        "\(hostDescription()), \(NUMAHost.isAvailable ? "\(NUMAHost.nodeCount) NUMA node(s)" : "NUMA unavailable")"
    }

    func run(lock: LockKind, setup: LockExperimentSetup, clusters: [LockClusterSpec]) throws -> [LockClusterMeasurement] {
        guard let workload = WorkloadKind(rawValue: setup.workload) else { throw LockCommandError("unknown workload \(setup.workload)") }
        let results = try HostedRuntime.run(
            kind: lock, workload: workload, hold: setup.hold,
            clusters: clusters.map { HostedClusterPlan(hostCPUs: $0.hostCPUs, node: $0.node) },
            settings: HostedRunSettings(delay: setup.delay, duration: setup.duration, stride: setup.stride))
        return results.map { r in
            LockClusterMeasurement(
                cluster: r.cluster, cores: r.hostCPUs.count, elapsedSeconds: r.elapsedSeconds,
                entriesPerCore: r.entriesPerCore, kernelEntries: r.kernelEntries, contendedEntries: r.contendedEntries,
                wait: r.wait, hold: r.hold, waitUnit: "ns", unitsPerTick: 1 / calibration.ticksPerNanosecond,
                note: "cluster \(r.cluster): \(r.placement)")
        }
    }
}

/// "x86_64, AMD EPYC (2 CPUs), Linux 6.1" from uname and /proc/cpuinfo.
func hostDescription() -> String {
    var u = utsname()
    uname(&u)
    func field<T>(_ v: T) -> String {
        withUnsafeBytes(of: v) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }
    let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
    let model = cpuinfo.split(separator: "\n").first { $0.hasPrefix("model name") || $0.hasPrefix("CPU part") }
        .map { $0.split(separator: ":", maxSplits: 1).last!.trimmingCharacters(in: .whitespaces) } ?? "unknown CPU"
    return "\(field(u.machine)), \(model) (\(allowedHostCPUs().count) CPUs), \(field(u.sysname)) \(field(u.release))"
}
