import BigLock
import Foundation
import Hosted
import Topology

public struct LockClusterSpec: Sendable {
    public var cores: Int
    /// Host CPUs for the hosted backend (ignored by others).
    public var hostCPUs: [Int]
    public var node: Int
    public init(cores: Int, hostCPUs: [Int], node: Int) {
        self.cores = cores; self.hostCPUs = hostCPUs; self.node = node
    }
}

/// Something that can run a lock experiment point and measure it.
/// `HostedLockBackend` runs it on host threads; the QEMU backend runs the
/// same point inside the bare-metal kernel and parses its report into the
/// same type.
public protocol LockExperimentBackend {
    var name: String { get }
    /// One line describing where the experiment runs (printed and recorded).
    var machine: String { get }
    func run(lock: ClusterLock.Kind, setup: LockExperimentSetup, clusters: [LockClusterSpec]) throws -> [LockClusterMeasurement]
}

/// One row of `results.csv` / `results.json`: lock x cores-per-cluster x run
/// (x cluster, when a topology file has several).
public struct LockResultRow: Codable, Sendable {
    var backend: String
    public var lock: String
    var workload: WorkloadKind
    var hold: UInt64
    var delay: UInt64
    public var cluster: Int
    public var cores: Int
    public var run: Int
    public var seconds: Double
    public var entries: UInt64
    /// Kernel entries per second in this cluster.
    public var throughput: Double
    public var waitUnit: String
    public var waitMean: Double
    public var waitP50: Double
    public var waitP99: Double
    public var holdMean: Double
    /// Percent of entries that found the lock taken.
    public var contendedPercent: Double
    /// Max over min per-core entries (1 = perfectly fair); nil if a core made none.
    public var fairness: Double?
    public var minCoreEntries: UInt64
    public var maxCoreEntries: UInt64
    /// Entries the cores counted minus the kernel's own count: 0 unless the lock is broken.
    public var lostEntries: Int64

    public init(backend: String, lock: ClusterLock.Kind, setup: LockExperimentSetup, run: Int, m: LockClusterMeasurement) {
        self.backend = backend
        self.lock = lock.topologyName
        workload = setup.workload
        hold = setup.hold
        delay = setup.delay
        cluster = m.cluster
        cores = m.cores
        self.run = run
        seconds = m.elapsedSeconds
        entries = m.entriesPerCore.reduce(0, +)
        throughput = m.elapsedSeconds > 0 ? Double(entries) / m.elapsedSeconds : 0
        waitUnit = m.waitUnit
        waitMean = m.wait.mean * m.unitsPerTick
        waitP50 = Double(m.wait.percentile(0.50)) * m.unitsPerTick
        waitP99 = Double(m.wait.percentile(0.99)) * m.unitsPerTick
        holdMean = m.hold.mean * m.unitsPerTick
        contendedPercent = entries == 0 ? 0 : 100 * Double(m.contendedEntries) / Double(entries)
        minCoreEntries = m.entriesPerCore.min() ?? 0
        maxCoreEntries = m.entriesPerCore.max() ?? 0
        fairness = minCoreEntries == 0 ? nil : Double(maxCoreEntries) / Double(minCoreEntries)
        lostEntries = Int64(bitPattern: entries) - Int64(bitPattern: m.kernelEntries)
    }

    public static let csvHeader = "backend,lock,workload,hold,delay,cluster,cores,run,seconds,entries,throughput_per_s,wait_unit,wait_mean,wait_p50,wait_p99,hold_mean,contended_percent,fairness_max_over_min,min_core_entries,max_core_entries,lost_entries"

    public var csvLine: String {
        let f = { (x: Double) in String(format: "%.3f", x) }
        return [backend, lock, workload.rawValue, "\(hold)", "\(delay)", "\(cluster)", "\(cores)", "\(run)",
                String(format: "%.4f", seconds), "\(entries)", String(format: "%.0f", throughput), waitUnit,
                f(waitMean), f(waitP50), f(waitP99), f(holdMean), f(contendedPercent),
                fairness.map { String(format: "%.4f", $0) } ?? "", "\(minCoreEntries)", "\(maxCoreEntries)",
                "\(lostEntries)"].joined(separator: ",")
    }
}
