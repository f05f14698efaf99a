import BigLock
import CHosted
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// One cluster of a hosted run: its cores, as host CPUs, and its NUMA node.
public struct HostedClusterPlan: Sendable {
    public var hostCPUs: [Int]
    public var node: Int
    public init(hostCPUs: [Int], node: Int) { self.hostCPUs = hostCPUs; self.node = node }
}

/// Settings shared by every cluster of a hosted run.
public struct HostedRunSettings: Sendable {
    /// `--delay`: iterations of `cmk_spin_work` outside the lock between entries.
    public var delay: UInt64
    /// How long the cores run, in seconds.
    public var duration: Double
    /// Lock block stride, bytes (see `BigLockLayout.defaultStride`).
    public var stride: Int
    public init(delay: UInt64, duration: Double, stride: Int = BigLockLayout.defaultStride) {
        self.delay = delay; self.duration = duration; self.stride = stride
    }
}

/// One cluster's measurement from one run of one lock, from any backend of
/// `cmk experiment lock`: this runtime (`HostedRuntime.run`, in host ticks),
/// or the bare-metal kernel in QEMU (its `cmk: lockexp` line, in counter
/// ticks). Backends convert their own clock to `waitUnit` with `unitsPerTick`.
public struct LockClusterMeasurement: Sendable {
    public var cluster: Int
    public var cores: Int
    public var elapsedSeconds: Double
    /// Kernel entries each core completed.
    public var entriesPerCore: [UInt64]
    /// The cluster kernel's own entry counter (plain memory, under the lock):
    /// equals the sum of `entriesPerCore` unless the lock failed.
    public var kernelEntries: UInt64
    public var contendedEntries: UInt64
    /// Wait and hold times in backend ticks.
    public var wait: LockHistogram
    public var hold: LockHistogram
    /// Name of the unit reports use ("ns" hosted; "ticks" in QEMU).
    public var waitUnit: String
    public var unitsPerTick: Double
    /// Where the backend put the cluster (e.g. its NUMA placement), for the user.
    public var note: String

    public init(cluster: Int, cores: Int, elapsedSeconds: Double, entriesPerCore: [UInt64], kernelEntries: UInt64,
                contendedEntries: UInt64, wait: LockHistogram, hold: LockHistogram, waitUnit: String,
                unitsPerTick: Double, note: String = "") {
        self.cluster = cluster; self.cores = cores; self.elapsedSeconds = elapsedSeconds
        self.entriesPerCore = entriesPerCore; self.kernelEntries = kernelEntries
        self.contendedEntries = contendedEntries; self.wait = wait; self.hold = hold
        self.waitUnit = waitUnit; self.unitsPerTick = unitsPerTick; self.note = note
    }
}

/// The settings of one experiment, shared by every backend.
public struct LockExperimentSetup: Sendable {
    public var workload: WorkloadKind
    /// Critical-section units (0 unless the workload is `cs`).
    public var hold: UInt64
    public var delay: UInt64
    public var duration: Double
    public var stride: Int

    public init(workload: WorkloadKind, hold: UInt64, delay: UInt64, duration: Double, stride: Int = BigLockLayout.defaultStride) {
        self.workload = workload
        self.hold = workload == .cs ? hold : 0
        self.delay = delay
        self.duration = duration
        self.stride = stride
    }

    /// "cs hold=100 delay=0" / "null delay=0".
    public var summary: String {
        "\(workload.rawValue)\(workload == .cs ? " hold=\(hold)" : "") delay=\(delay)"
    }
}

/// One cluster of an experiment point: its size, and where a backend runs it.
/// The hosted runtime: runs each cluster's kernel entry loop on host threads,
/// one per core, pinned, with the cluster's lock, kernel data and per-core
/// statistics in its own partition (`ClusterPartition`).
public enum HostedRuntime {
    /// Runs `workload` under a `kind` big lock in every cluster of `clusters`
    /// at once, for `settings.duration` seconds.
    public static func run(
        kind: ClusterLock.Kind, workload: WorkloadKind, hold: UInt64,
        clusters: [HostedClusterPlan], settings: HostedRunSettings
    ) throws(HostedError) -> [LockClusterMeasurement] {
        switch workload {
        case .null: return try run(kind: kind, workload: NullEntry(), clusters: clusters, settings: settings)
        case .cs: return try run(kind: kind, workload: CriticalSection(hold: hold), clusters: clusters, settings: settings)
        }
    }

    /// The generic form: any `KernelEntryWorkload`.
    public static func run<W: KernelEntryWorkload>(
        kind: ClusterLock.Kind, workload: W, clusters: [HostedClusterPlan], settings: HostedRunSettings
    ) throws(HostedError) -> [LockClusterMeasurement] {
        try kind.visit(Runner(workload: workload, clusters: clusters, settings: settings))
    }

    /// Checks a plan against this host: every core on its own allowed CPU.
    public static func validate(_ clusters: [HostedClusterPlan]) throws(HostedError) {
        let allowed = allowedHostCPUs()
        let all = clusters.flatMap(\.hostCPUs)
        if clusters.isEmpty || clusters.contains(where: { $0.hostCPUs.isEmpty }) {
            throw HostedError("every cluster needs at least one core")
        }
        if all.count > allowed.count {
            throw HostedError("\(all.count) cores requested but this host has only \(allowed.count) CPUs available (\(cpuListString(allowed))); the hosted runtime runs one pinned thread per core")
        }
        if Set(all).count != all.count {
            throw HostedError("two cores are mapped to the same host CPU")
        }
        if clusters.contains(where: { $0.hostCPUs.count > BigLockLayout.maxCores }) {
            throw HostedError("a cluster has more than \(BigLockLayout.maxCores) cores")
        }
        for cpu in all where !allowed.contains(cpu) {
            throw HostedError("host CPU \(cpu) is not available (available: \(cpuListString(allowed)))")
        }
    }
}

/// Start/stop flags of a run (host harness, not kernel state).
final class RunControl: Sendable {
    let ready = Atomic<Int>(0)
    let go = Atomic<Bool>(false)
    let stop = Atomic<Bool>(false)
}

/// A partition's layout: lock, then one block of kernel data, then one
/// statistics record per core, each starting on a stride boundary.
struct HostedPartitionLayout {
    let lockOffset = 0
    let kernelOffset: Int
    let statsOffset: Int
    let statsStride: Int
    let bytes: Int

    init(lockBytes: Int, cores: Int, stride: Int) {
        func up(_ n: Int) -> Int { (n + stride - 1) / stride * stride }
        kernelOffset = up(lockBytes)
        statsOffset = kernelOffset + stride
        statsStride = up(MemoryLayout<LockStatistics<HostTicks>>.stride)
        bytes = statsOffset + cores * statsStride
    }
}

struct Pointers: @unchecked Sendable {
    let lock: UnsafeMutableRawPointer
    let kernel: UnsafeMutablePointer<UInt64>
    let stats: UnsafeMutablePointer<LockStatistics<HostTicks>>
}

struct Runner<W: KernelEntryWorkload>: LockKindVisitor {
    typealias Failure = HostedError
    let workload: W
    let clusters: [HostedClusterPlan]
    let settings: HostedRunSettings

    func visit<L: KernelLock & ~Copyable>(_: L.Type) throws(HostedError) -> [LockClusterMeasurement] {
        try HostedRuntime.validate(clusters)
        let stride = settings.stride
        guard BigLockLayout.isValid(stride: stride) else { throw HostedError("invalid lock stride \(stride)") }
        // Partitions, formatted before any core runs.
        var partitions: [ClusterPartition] = []
        var threads: [(cpu: Int, pointers: Pointers, core: Int, cores: Int)] = []
        for plan in clusters {
            let cores = plan.hostCPUs.count
            let layout = HostedPartitionLayout(lockBytes: L.byteCount(cores: cores, stride: stride), cores: cores, stride: stride)
            let partition = ClusterPartition(bytes: layout.bytes, node: plan.node)
            partitions.append(partition)
            let base = partition.base
            _ = L(formatting: base + layout.lockOffset, cores: cores, stride: stride)
            let kernel = (base + layout.kernelOffset).bindMemory(to: UInt64.self, capacity: 16)
            for (core, cpu) in plan.hostCPUs.enumerated() {
                let stats = (base + layout.statsOffset + core * layout.statsStride)
                    .bindMemory(to: LockStatistics<HostTicks>.self, capacity: 1)
                stats.initialize(to: LockStatistics())
                threads.append((cpu, Pointers(lock: base + layout.lockOffset, kernel: kernel, stats: stats), core, cores))
            }
        }
        let control = RunControl()
        let workload = self.workload
        let delay = settings.delay
        let all = threads
        let total = all.count
        let running = try PinnedThreads(all.map { Optional($0.cpu) }) { index in
            let t = all[index]
            let lock = L(attaching: t.pointers.lock, cores: t.cores, stride: stride)
            let kernel = t.pointers.kernel
            let stats = t.pointers.stats
            var hook = HostWaitHook()
            // Relaxed flags: they only start and stop the run (the lock orders
            // everything the cores share; `join` orders the results).
            control.ready.add(1, ordering: .relaxed)
            while !control.go.load(ordering: .relaxed) { cmk_cpu_relax() }
            while !control.stop.load(ordering: .relaxed) {
                if delay > 0 { cmk_spin_work(delay) }
                lock.acquire(core: t.core, hook: &hook, probe: &stats.pointee)
                kernel[0] &+= 1
                workload.enter(core: t.core, kernel: kernel)
                lock.release(core: t.core, probe: &stats.pointee)
            }
        }
        while control.ready.load(ordering: .relaxed) < total { usleep(1000) }
        let start = cmk_monotonic_ns()
        control.go.store(true, ordering: .relaxed)
        usleep(useconds_t(max(0, settings.duration) * 1e6))
        control.stop.store(true, ordering: .relaxed)
        let seconds = Double(cmk_monotonic_ns() &- start) / 1e9
        running.join()
        // Collect, per cluster.
        var results: [LockClusterMeasurement] = []
        var next = 0
        for (index, plan) in clusters.enumerated() {
            var merged = LockStatistics<HostTicks>()
            var perCore: [UInt64] = []
            for _ in plan.hostCPUs {
                let stats = all[next].pointers.stats
                perCore.append(stats.pointee.acquisitions)
                merged.merge(stats.pointee)
                next += 1
            }
            let kernel = all[next - 1].pointers.kernel
            results.append(LockClusterMeasurement(
                cluster: index, cores: plan.hostCPUs.count, elapsedSeconds: seconds, entriesPerCore: perCore,
                kernelEntries: kernel[0], contendedEntries: merged.contendedAcquisitions, wait: merged.wait,
                hold: merged.hold, waitUnit: "host ticks", unitsPerTick: 1,
                note: "cluster \(index): \(partitions[index].placement)"))
        }
        withExtendedLifetime(partitions) {}
        return results
    }
}

