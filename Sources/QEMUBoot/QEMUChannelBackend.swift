import Cluster
import Foundation
import HostedChannel
import InterKernel
import Topology

/// `cmk experiment channel --qemu`: the bare-metal kernel measures every
/// ordered pair in one boot (the boot information asks for the channel
/// experiment, docs/channel.md) and prints `cmk: channelexp` lines; this
/// backend boots once, on first use, and answers each pair from those lines
/// (ticks converted to ns with the kernel's CNTFRQ).
public final class QEMUChannelBackend: ChannelExperimentBackend {
    let topology: Topology
    let file: String
    let threading: QEMUCommand.Threading
    let timeout: Double
    public let layout: ChannelLayout
    public var name: String { "qemu" }
    private var lines: [BootTranscript.Pair: ChannelExperimentLine]?
    private var booted: (roundTrips: Int, messages: Int)?
    /// Boot wall time, seconds.
    public private(set) var seconds: Double = 0

    public init(topology: Topology, file: String, threading: QEMUCommand.Threading = .single, timeout: Double) throws {
        guard let layout = ChannelLayout(clusterCount: topology.clusters.count, regionSize: Int(topology.channel)) else {
            throw ChannelSetupError("the channel region (\(topology.channel) bytes) cannot hold 2-slot rings for \(topology.clusters.count) clusters")
        }
        self.topology = topology
        self.file = file
        self.threading = threading
        self.timeout = timeout
        self.layout = layout
    }

    public func measure(from: Int, to: Int, roundTrips: Int, messages: Int) throws -> ChannelPairResult {
        if lines == nil || booted! != (roundTrips, messages) {
            lines = try boot(roundTrips: roundTrips, messages: messages)
            booted = (roundTrips, messages)
        }
        guard let line = lines![BootTranscript.Pair(from, to)] else {
            throw CMKFailure.bootFailed("no `cmk: channelexp \(from)->\(to)` line from the kernel")
        }
        return Self.row(line, topology: topology, slots: layout.slotsPerRing)
    }

    /// The table row for a kernel line: ticks to ns, stream to msgs/s; its
    /// errors count the dropped messages too, as the hosted backend's do.
    static func row(_ line: ChannelExperimentLine, topology: Topology, slots: Int) -> ChannelPairResult {
        ChannelPairResult(
            backend: "qemu", from: line.from, to: line.to,
            fromCPU: topology.clusters[line.from].cores.min() ?? 0, toCPU: topology.clusters[line.to].cores.min() ?? 0,
            slots: slots, roundTrips: line.trips, unit: "ns",
            rttP50: line.nanoseconds(line.rttP50), rttP99: line.nanoseconds(line.rttP99),
            rttMean: line.nanoseconds(line.rttMean), messages: Int(line.messages),
            messagesPerSecond: line.messagesPerSecond, errors: line.errors + line.dropped)
    }

    /// Boot the topology with the experiment request; every pair's line.
    func boot(roundTrips: Int, messages: Int) throws -> [BootTranscript.Pair: ChannelExperimentLine] {
        let request = ExperimentRequest.channel(roundTrips: UInt64(roundTrips), messages: UInt64(messages))
        let output = try ExperimentBoot.run(topology, request: request, threading: threading, timeout: timeout)
        seconds = output.seconds
        var byPair: [BootTranscript.Pair: ChannelExperimentLine] = [:]
        for line in output.transcript.channelExperiments { byPair[BootTranscript.Pair(line.from, line.to)] = line }
        return byPair
    }
}
