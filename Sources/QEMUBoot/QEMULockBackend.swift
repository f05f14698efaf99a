import BigLock
import Cluster
import Foundation
import Hosted
import HostedLock
import Topology

/// The QEMU backend of `cmk experiment lock`: each point is one boot of the
/// real kernel, where each cluster's root task runs a thread per core in a
/// loop of system calls that take the cluster's big lock
/// (RootTask/LockRun.swift) and reports a `cmk: lockexp` line.
///
/// Units are virtual-counter ticks. With `--icount`, QEMU runs with
/// `-icount shift=0`: the virtual clock advances one nanosecond per
/// instruction, so a tick (at QEMU virt's 62.5 MHz) is 16 instructions and
/// the figures are deterministic counts, not host time. Without it, ticks
/// follow host time under single-threaded TCG (vCPUs interleaved on one host
/// thread): the lock's cost in emulation, not on hardware.
public struct QEMULockBackend: LockExperimentBackend {
    public var icount: Bool
    public var threading: QEMUCommand.Threading

    public init(icount: Bool, threading: QEMUCommand.Threading) {
        self.icount = icount
        self.threading = threading
    }

    public var name: String { icount ? "qemu-icount" : "qemu-\(threading.rawValue)" }
    public var machine: String {
        "QEMU virt, TCG \(threading.rawValue)-threaded\(icount ? ", -icount shift=0" : ""), \(QEMUCommand.installedVersion), on \(HostMachine.summary)"
    }

    /// Cores per cluster the root task keeps the experiment's histograms for
    /// (`CMK_LOCK_MAX_MEASURED_CORES` in RootTaskSupport).
    public static let maxCoresPerCluster = 8

    /// QEMU virt's generic timer runs at 62.5 MHz (QEMU 7.2); the kernel
    /// reports the real frequency and the rows use that.
    static let assumedCounterFrequency = 62_500_000.0

    public func run(lock kind: ClusterLock.Kind, setup: LockExperimentSetup, clusters: [LockClusterSpec]) throws -> [LockClusterMeasurement] {
        // One cluster per spec, core ids in order, small partitions.
        var next = 0
        let partition: UInt64 = 32 << 20
        let specs = clusters.map { c -> Topology.ClusterSpec in
            defer { next += c.cores }
            return Topology.ClusterSpec(cores: Array(next..<(next + c.cores)), memory: partition, line: 0)
        }
        var memory = Layout.bytesNeeded(partitions: specs.map(\.memory), channel: 1 << 20, guest: 0)
        memory = (memory + (2 << 20) - 1) & ~((2 << 20) - 1)
        let topology = Topology(
            name: "lockexp-\(kind.topologyName)-\(clusters.map { "\($0.cores)" }.joined(separator: "x"))",
            memory: memory, lock: kind, clusters: specs, channel: 1 << 20, guest: 0)
        let ticks = UInt64(setup.duration * Self.assumedCounterFrequency)
        let request = ExperimentRequest.lock(
            workload: setup.workload == .cs ? 1 : 0, hold: setup.hold, delay: setup.delay, durationTicks: ticks)
        let lines = try ExperimentBoot.run(
            topology, request: request, icount: icount, threading: threading, timeout: setup.duration * 20 + 60)
        return try Self.measurements(lines.lines, clusters: clusters.count)
    }

    /// One measurement per cluster from the kernel's `cmk: lockexp` lines,
    /// in cluster order; an error unless every cluster reported.
    public static func measurements(_ lines: [String], clusters: Int) throws(CMKFailure) -> [LockClusterMeasurement] {
        let results = lines.compactMap(LockExperimentLine.parse)
        guard results.count == clusters else {
            throw .bootFailed("the kernel reported \(results.count) of \(clusters) clusters' lock results")
        }
        return results.sorted { $0.cluster < $1.cluster }.map { r in
            LockClusterMeasurement(
                cluster: r.cluster, cores: r.cores, elapsedSeconds: Double(r.ticks) / Double(r.frequency),
                entriesPerCore: r.entriesPerCore, kernelEntries: r.kernelEntries, contendedEntries: r.contended,
                wait: r.wait, hold: r.hold, waitUnit: "ticks", unitsPerTick: 1,
                note: "cluster \(r.cluster): \(r.cores) vCPU(s), counter \(r.frequency) Hz")
        }
    }
}
