import ArgumentParser
import BigLock
import Cluster
import Foundation
import Hosted
import HostedLock
import QEMUBoot
import Topology

extension WorkloadKind: ExpressibleByArgument {}

/// `cmk experiment lock`: how each big lock behaves as a cluster grows
/// (`HostedLock.LockExperimentSweep`).
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
    var workload: WorkloadKind = .null

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
        if icount && !qemu { throw ValidationError("--icount needs --qemu") }
        if qemu && workload == .cs && hold > ExperimentRequest.maxHold {
            throw ValidationError("--hold must be at most \(ExperimentRequest.maxHold) with --qemu (the kernel's benchmark call refuses longer holds)")
        }
        if icount && tcg == .multi { throw ValidationError("--icount needs --tcg single (QEMU counts instructions only single-threaded)") }
    }

    func run() throws {
        try withExitCodes {
            do { try experiment() } catch let e as HostedError { throw CommandFailure(e.description) }
        }
    }

    func experiment() throws {
        let topology = try file.map(loadTopology)
        let kinds = try ClusterLock.Kind.parseList(
            locks ?? topology.flatMap { $0.lockSpecified ? $0.lock.topologyName : nil } ?? "ticket,mcs,clh")
        let points = qemu
            ? LockExperimentSweep.qemuPoints(topology)
            : try LockExperimentSweep.hostedPoints(topology, file: file ?? "", allowed: allowedHostCPUs())
        if qemu, let big = points.joined().first(where: { $0.cores > QEMULockBackend.maxCoresPerCluster }) {
            throw CommandFailure("\(file ?? "the sweep"): a cluster of \(big.cores) cores; with --qemu the root task keeps lock figures for at most \(QEMULockBackend.maxCoresPerCluster) cores per cluster")
        }
        let backend: LockExperimentBackend = qemu ? QEMULockBackend(icount: icount, threading: tcg) : HostedLockBackend()
        let setup = LockExperimentSetup(workload: workload, hold: hold, delay: delay, duration: duration, stride: stride)
        let experiment = LockExperimentSweep(kinds: kinds, points: points, setup: setup, runs: runs)
        let total = experiment.totalRuns
        print("cmk experiment lock: \(backend.machine)")
        print("locks \(kinds.map(\.topologyName).joined(separator: ",")), workload \(workload.rawValue)\(workload == .cs ? " hold \(hold)" : ""), delay \(delay), \(duration) s x \(runs) runs, \(total) runs in all (~\(Int((Double(total) * duration).rounded(.up))) s)")
        if let file { print("topology \(file): \(points[0].map { "\($0.cores) cores on CPUs \(cpuListString($0.hostCPUs))" }.joined(separator: "; "))") }
        let rows = try experiment.run(on: backend) { print($0) }
        let command = (["cmk"] + CommandLine.arguments.dropFirst()).joined(separator: " ")
        try experiment.write(rows, to: out, backend: backend, command: command)
        print("")
        print(LockExperimentSweep.table(rows), terminator: "")
        print("medians over \(runs) run(s); every run in \(out)/results.csv, \(out)/results.json; plot \(out)/throughput.svg")
    }
}
