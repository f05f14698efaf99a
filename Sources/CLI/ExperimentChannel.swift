import ArgumentParser
import Foundation
import QEMUBoot
import Topology
import Hosted
import HostedChannel

/// `cmk experiment channel [FILE] --messages N --out DIR`: round-trip latency
/// (p50/p99) and one-way streaming throughput for every ordered pair of
/// clusters; a table, DIR/results.csv and DIR/results.json.
struct ExperimentChannel: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "channel",
        abstract: "Channel latency and throughput for each pair of clusters (hosted: pinned threads; --qemu: the kernel in QEMU).")

    @Argument(help: "Topology file (clusters and [shared] channel size). Default: --clusters clusters of 1 core; with --qemu, topologies/default.toml.")
    var file: String?

    @Flag(help: "Measure in the bare-metal kernel under QEMU (one boot runs every pair) instead of hosted threads.")
    var qemu = false

    @Option(help: "With --qemu: seconds to wait for the kernel to power off.")
    var timeout: Double = 120

    @Option(help: "With --qemu: TCG threading, single (default) or multi.")
    var tcg: QEMUCommand.Threading = .single

    @Option(help: "Clusters of one core each, when no FILE is given.")
    var clusters: Int = 2

    @Option(name: .customLong("messages"), help: "Messages streamed one way per pair (default 1000000 hosted, 20000 with --qemu).")
    var messagesOption: Int?

    var messages: Int { messagesOption ?? (qemu ? 20_000 : 1_000_000) }

    @Option(help: "Round trips per pair (default: messages / 10, at least 1000; with --qemu 1000, at most 1024 kept).")
    var roundTrips: Int?

    @Option(help: "Host CPUs to place clusters on, e.g. 0,1 (default: all this process may use).")
    var cpus: String?

    @Option(help: "Output directory for results.csv and results.json.")
    var out: String = "out/experiment-channel"

    @Flag(help: "Print where every ring sits in the channel region, and stop.")
    var showLayout = false

    func run() throws {
        if qemu {
            try withExitCodes { try runQEMU() }
            return
        }
        let topology: ChannelTopology
        if let file {
            let checked = try withExitCodes { try loadTopology(file) }
            topology = ChannelTopology(
                name: checked.name, clusters: checked.clusters.map(\.cores), channelBytes: Int(checked.channel))
        } else {
            guard clusters >= 2 else { throw ValidationError("--clusters must be at least 2") }
            topology = .flat(clusters: clusters)
        }
        guard topology.clusters.count >= 2 else { throw ValidationError("the channel needs at least 2 clusters") }
        let hostCPUs = try cpus.map { text in
            try text.split(separator: ",").map {
                guard let n = Int($0.trimmingCharacters(in: .whitespaces)) else { throw ValidationError("bad --cpus") }
                return n
            }
        } ?? allowedHostCPUs()
        let backend = try HostedChannelBackend(topology: topology, cpus: hostCPUs)
        if showLayout {
            print(ChannelLayoutReport.summary(backend.layout))
            print(ChannelLayoutReport.rings(backend.layout))
            return
        }
        let trips = roundTrips ?? max(messages / 10, 1000)
        if let warning = HostMachine.debugBuildWarning(rerun: "swift run -c release cmk experiment channel ...") { print(warning) }
        print("cmk experiment channel: topology \(topology.name), \(topology.clusters.count) clusters, channel \(topology.channelBytes) bytes, \(backend.layout.slotsPerRing) slots per ring")
        print(ChannelLayoutReport.summary(backend.layout))
        print("machine: \(HostMachine.summary); host CPUs used: \(hostCPUs.map(String.init).joined(separator: ","))")
        let rows: [ChannelPairResult]
        do {
            rows = try ChannelPairSweep.run(backend: backend, clusterCount: topology.clusters.count,
                                             roundTrips: trips, messages: messages) { row in
                print("  \(row.from)->\(row.to) done")
            }
        } catch let error as HostedError {
            throw CommandFailure(error.description)
        }
        print("")
        print(ChannelPairSweep.table(rows), terminator: "")
        try write(rows, topology: topology.name, clusters: topology.clusters, channelBytes: topology.channelBytes,
                  machine: HostMachine.summary)
    }

    /// `--qemu`: one boot of the topology with the channel experiment requested.
    func runQEMU() throws {
        guard messages >= 1 else { throw ValidationError("--messages must be at least 1") }
        let path = file ?? Project.defaultTopology
        let topology = try loadTopology(path)
        guard topology.clusters.count >= 2 else { throw ValidationError("the channel needs at least 2 clusters") }
        let backend = try QEMUChannelBackend(topology: topology, file: path, threading: tcg, timeout: timeout)
        let trips = roundTrips ?? 1000
        guard trips >= 1 else { throw ValidationError("--round-trips must be at least 1") }
        print("cmk experiment channel --qemu: topology \(topology.name), \(topology.clusters.count) clusters, channel \(topology.channel) bytes, \(backend.layout.slotsPerRing) slots per ring, TCG \(tcg.rawValue)")
        print(ChannelLayoutReport.summary(backend.layout))
        let rows = try ChannelPairSweep.run(backend: backend, clusterCount: topology.clusters.count,
                                             roundTrips: trips, messages: messages) { _ in }
        print(String(format: "booted and measured in %.2f s (QEMU wall time)", backend.seconds))
        print("")
        print(ChannelPairSweep.table(rows), terminator: "")
        let machine = "QEMU TCG \(tcg.rawValue)-threaded (\(QEMUCommand.binary) -cpu \(QEMUCommand.cpu)) on \(HostMachine.summary)"
        try write(rows, topology: topology.name, clusters: topology.clusters.map(\.cores),
                  channelBytes: Int(topology.channel), machine: machine)
    }

    func write(_ rows: [ChannelPairResult], topology: String, clusters: [[Int]], channelBytes: Int, machine: String) throws {
        let directory = URL(fileURLWithPath: out, isDirectory: true)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try ChannelPairSweep.csv(rows).write(to: directory.appendingPathComponent("results.csv"), atomically: true, encoding: .utf8)
        let command = CommandLine.arguments.joined(separator: " ")
        let document = ChannelPairSweep.Document(topology: topology, clusters: clusters,
                                                  channelBytes: channelBytes, machine: machine,
                                                  command: command, rows: rows)
        try JSONEncoder.pretty.encode(document).write(to: directory.appendingPathComponent("results.json"))
        print("")
        print("wrote \(directory.path)/results.csv and results.json")
        if rows.contains(where: { $0.errors != 0 }) {
            throw ValidationError("some pairs saw out-of-order or unexpected messages (errors column)")
        }
    }
}
