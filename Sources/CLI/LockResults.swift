import BigLock
import Foundation
import Hosted

/// One cluster's measurement from one run of one lock, from any backend (the
/// hosted runtime now; the bare-metal kernel in QEMU later). Backends convert
/// their own clock to `waitUnit` with `unitsPerTick`.
struct LockClusterMeasurement {
    var cluster: Int
    var cores: Int
    var elapsedSeconds: Double
    var entriesPerCore: [UInt64]
    /// The cluster kernel's own count of entries, kept under the lock.
    var kernelEntries: UInt64
    var contendedEntries: UInt64
    /// Wait and hold times in backend ticks.
    var wait: LockHistogram
    var hold: LockHistogram
    /// Name of the unit reports use ("ns" hosted; "ticks" or "instructions" in QEMU).
    var waitUnit: String
    var unitsPerTick: Double
    /// Where the backend put the cluster (e.g. its NUMA placement), for the user.
    var note: String = ""
}

/// The settings of one experiment, shared by every backend.
struct LockExperimentSetup {
    var workload: String
    var hold: UInt64
    var delay: UInt64
    var duration: Double
    var stride: Int
}

/// One cluster of an experiment point: its size, and where a backend runs it.
struct LockClusterSpec {
    var cores: Int
    /// Host CPUs for the hosted backend (ignored by others).
    var hostCPUs: [Int]
    var node: Int
}

/// Something that can run a lock experiment point and measure it.
/// `HostedLockBackend` runs it on host threads; a QEMU backend runs the same
/// point inside the bare-metal kernel and parses its report into the same type.
protocol LockExperimentBackend {
    var name: String { get }
    /// One line describing where the experiment runs (printed and recorded).
    var machine: String { get }
    func run(lock: LockKind, setup: LockExperimentSetup, clusters: [LockClusterSpec]) throws -> [LockClusterMeasurement]
}

/// One row of `results.csv` / `results.json`: lock x cores-per-cluster x run
/// (x cluster, when a topology file has several).
struct LockResultRow: Codable {
    var backend: String
    var lock: String
    var workload: String
    var hold: UInt64
    var delay: UInt64
    var cluster: Int
    var cores: Int
    var run: Int
    var seconds: Double
    var entries: UInt64
    /// Kernel entries per second in this cluster.
    var throughput: Double
    var waitUnit: String
    var waitMean: Double
    var waitP50: Double
    var waitP99: Double
    var holdMean: Double
    /// Percent of entries that found the lock taken.
    var contendedPercent: Double
    /// Max over min per-core entries (1 = perfectly fair); nil if a core made none.
    var fairness: Double?
    var minCoreEntries: UInt64
    var maxCoreEntries: UInt64
    /// Entries the cores counted minus the kernel's own count: 0 unless the lock is broken.
    var lostEntries: Int64

    init(backend: String, lock: LockKind, setup: LockExperimentSetup, run: Int, m: LockClusterMeasurement) {
        self.backend = backend
        self.lock = lock.rawValue
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

    static let csvHeader = "backend,lock,workload,hold,delay,cluster,cores,run,seconds,entries,throughput_per_s,wait_unit,wait_mean,wait_p50,wait_p99,hold_mean,contended_percent,fairness_max_over_min,min_core_entries,max_core_entries,lost_entries"

    var csvLine: String {
        let f = { (x: Double) in String(format: "%.3f", x) }
        return [backend, lock, workload, "\(hold)", "\(delay)", "\(cluster)", "\(cores)", "\(run)",
                String(format: "%.4f", seconds), "\(entries)", String(format: "%.0f", throughput), waitUnit,
                f(waitMean), f(waitP50), f(waitP99), f(holdMean), f(contendedPercent),
                fairness.map { String(format: "%.4f", $0) } ?? "", "\(minCoreEntries)", "\(maxCoreEntries)",
                "\(lostEntries)"].joined(separator: ",")
    }
}

func median(_ values: [Double]) -> Double {
    if values.isEmpty { return 0 }
    let s = values.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

/// A plain text table, columns right-aligned except the first.
func renderTable(_ header: [String], _ rows: [[String]]) -> String {
    var widths = header.map(\.count)
    for r in rows { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
    func line(_ cells: [String]) -> String {
        cells.enumerated().map { i, c in
            let pad = String(repeating: " ", count: widths[i] - c.count)
            return i == 0 ? c + pad : pad + c
        }.joined(separator: "  ")
    }
    var out = line(header) + "\n"
    out += widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ") + "\n"
    for r in rows { out += line(r) + "\n" }
    return out
}

/// Engineering formatting: 12.3M, 456k.
func si(_ x: Double) -> String {
    if x >= 1e9 { return String(format: "%.2fG", x / 1e9) }
    if x >= 1e6 { return String(format: "%.2fM", x / 1e6) }
    if x >= 1e3 { return String(format: "%.1fk", x / 1e3) }
    return String(format: "%.0f", x)
}
