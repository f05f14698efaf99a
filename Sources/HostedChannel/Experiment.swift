import Foundation
import Hosted
import InterKernel
import Topology

/// The few facts of a topology the channel experiment needs: clusters (their
/// cores) and the channel region size. Made from a checked `Topology` by the
/// caller, or `flat` for a quick run without a file.
public struct ChannelTopology: Equatable, Sendable {
    public var name: String
    public var clusters: [[Int]]
    public var channelBytes: Int

    public static let defaultChannelBytes = 1 << 20

    public init(name: String, clusters: [[Int]], channelBytes: Int = ChannelTopology.defaultChannelBytes) {
        self.name = name
        self.clusters = clusters
        self.channelBytes = channelBytes
    }

    /// `count` clusters of one core each (cores 0..count-1).
    public static func flat(clusters count: Int) -> ChannelTopology {
        ChannelTopology(name: "\(count)x1", clusters: (0..<count).map { [$0] })
    }

}

/// One row of `cmk experiment channel`: an ordered pair of clusters.
public struct ChannelPairResult: Codable, Sendable {
    public var backend: String
    public var from: Int
    public var to: Int
    /// Where each side ran (hosted: host CPU numbers; QEMU: core ids).
    public var fromCPU: Int
    public var toCPU: Int
    public var slots: Int
    public var roundTrips: Int
    /// Round-trip unit: "ns" hosted, "ticks" for a backend on the generic timer.
    public var unit: String
    public var rttP50: Double
    public var rttP99: Double
    public var rttMean: Double
    public var messages: Int
    public var messagesPerSecond: Double
    public var errors: UInt64

    public init(backend: String, from: Int, to: Int, fromCPU: Int, toCPU: Int, slots: Int, roundTrips: Int, unit: String,
                rttP50: Double, rttP99: Double, rttMean: Double, messages: Int, messagesPerSecond: Double, errors: UInt64) {
        self.backend = backend
        self.from = from
        self.to = to
        self.fromCPU = fromCPU
        self.toCPU = toCPU
        self.slots = slots
        self.roundTrips = roundTrips
        self.unit = unit
        self.rttP50 = rttP50
        self.rttP99 = rttP99
        self.rttMean = rttMean
        self.messages = messages
        self.messagesPerSecond = messagesPerSecond
        self.errors = errors
    }
}

/// Something that can measure a pair of clusters: `HostedChannelBackend`
/// (pinned host threads) or the QEMU backend (the bare-metal kernel printing
/// the same figures); the experiment's tables and files are the same for both.
public protocol ChannelExperimentBackend {
    var name: String { get }
    func measure(from: Int, to: Int, roundTrips: Int, messages: Int) throws -> ChannelPairResult
}

/// Clusters as pinned host threads sharing a host buffer laid out exactly as
/// the kernel's channel region for the same topology.
public struct HostedChannelBackend: ChannelExperimentBackend {
    public let topology: ChannelTopology
    public let layout: ChannelLayout
    public let cpus: [Int]
    public var name: String { "hosted" }

    public init(topology: ChannelTopology, cpus: [Int]) throws {
        guard let layout = ChannelLayout(clusterCount: topology.clusters.count, regionSize: topology.channelBytes) else {
            throw ChannelSetupError("the channel region (\(topology.channelBytes) bytes) cannot hold 2-slot rings for \(topology.clusters.count) clusters")
        }
        self.topology = topology
        self.layout = layout
        self.cpus = cpus.isEmpty ? [0] : cpus
    }

    /// The host CPU a cluster's thread runs on: its first core, folded onto
    /// the CPUs we may use; the second side of a pair moves to another CPU if
    /// both would share one (and more than one is available).
    public func placement(from: Int, to: Int) -> (Int, Int) {
        let a = cpus[topology.clusters[from][0] % cpus.count]
        var b = cpus[topology.clusters[to][0] % cpus.count]
        if a == b && cpus.count > 1 { b = cpus[(cpus.firstIndex(of: a)! + 1) % cpus.count] }
        return (a, b)
    }

    public func measure(from: Int, to: Int, roundTrips: Int, messages: Int) throws -> ChannelPairResult {
        let (a, b) = placement(from: from, to: to)
        let rtt = try ChannelMeasure.swiftRoundTrips(layout: layout, from: from, to: to, count: roundTrips, cpus: (a, b))
        let stream = try ChannelMeasure.swiftStream(layout: layout, from: from, to: to, count: messages, cpus: (a, b))
        return ChannelPairResult(
            backend: name, from: from, to: to, fromCPU: a, toCPU: b, slots: layout.slotsPerRing,
            roundTrips: roundTrips, unit: "ns", rttP50: Double(rtt.percentile(50)), rttP99: Double(rtt.percentile(99)),
            rttMean: rtt.meanNanoseconds, messages: messages, messagesPerSecond: stream.messagesPerSecond,
            errors: rtt.unexpected + stream.errors)
    }
}

/// `cmk experiment channel` on any backend: every ordered pair of clusters
/// measured, and the table, CSV and JSON of the rows. (The kernel's own part,
/// under QEMU, is `ChannelExperiment` in Boot; its report is a
/// `ChannelExperimentLine`.)
public enum ChannelPairSweep {
    public static func run(backend: ChannelExperimentBackend, clusterCount: Int, roundTrips: Int, messages: Int,
                           progress: (ChannelPairResult) -> Void) throws -> [ChannelPairResult] {
        var rows: [ChannelPairResult] = []
        for from in 0..<clusterCount {
            for to in 0..<clusterCount where to != from {
                let row = try backend.measure(from: from, to: to, roundTrips: roundTrips, messages: messages)
                progress(row)
                rows.append(row)
            }
        }
        return rows
    }

    public static func table(_ rows: [ChannelPairResult]) -> String {
        let header = ["pair", "cpus", "slots", "rtt p50", "rtt p99", "rtt mean", "stream msgs/s", "errors"]
        let body = rows.map { r in
            ["\(r.from)->\(r.to)", "\(r.fromCPU),\(r.toCPU)", "\(r.slots)",
             "\(format(r.rttP50, 0)) \(r.unit)", "\(format(r.rttP99, 0)) \(r.unit)",
             "\(format(r.rttMean, 1)) \(r.unit)", "\(format(r.messagesPerSecond / 1e6, 2)) M", "\(r.errors)"]
        }
        return TextTable(header, rows: body).rendered
    }

    public static func csv(_ rows: [ChannelPairResult]) -> String {
        var lines = ["backend,from,to,from_cpu,to_cpu,slots,round_trips,unit,rtt_p50,rtt_p99,rtt_mean,messages,messages_per_second,errors"]
        for r in rows {
            lines.append([r.backend, "\(r.from)", "\(r.to)", "\(r.fromCPU)", "\(r.toCPU)", "\(r.slots)", "\(r.roundTrips)",
                          r.unit, format(r.rttP50, 0), format(r.rttP99, 0), format(r.rttMean, 1), "\(r.messages)",
                          format(r.messagesPerSecond, 0), "\(r.errors)"].joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    public struct Document: Codable {
        public var topology: String
        public var clusters: [[Int]]
        public var channelBytes: Int
        public var machine: String
        public var command: String
        public var rows: [ChannelPairResult]

        public init(topology: String, clusters: [[Int]], channelBytes: Int, machine: String, command: String,
                    rows: [ChannelPairResult]) {
            self.topology = topology
            self.clusters = clusters
            self.channelBytes = channelBytes
            self.machine = machine
            self.command = command
            self.rows = rows
        }
    }
}

/// Human-readable views of a `ChannelLayout` (for the host tool).
public enum ChannelLayoutReport {
    static func hex(_ value: Int) -> String { "0x" + String(value, radix: 16, uppercase: true) }

    public static func summary(_ layout: ChannelLayout) -> String {
        "layout: control 0x0-\(hex(layout.ringsOffset - 1)), "
            + "\(layout.ringCount) rings of \(layout.slotsPerRing) slots from \(hex(layout.ringsOffset)) "
            + "(stride \(hex(layout.ringStride))), \(layout.usedSize) of \(layout.regionSize) bytes used"
    }

    /// One line per ring: its pair and where its cursors and slots are.
    public static func rings(_ layout: ChannelLayout) -> String {
        var lines = ["ring  pair    sender-cursor  wake-flag        slots"]
        for index in 0..<layout.ringCount {
            let (from, to) = layout.ringPair(index)
            let base = layout.ringOffset(from: from, to: to)
            lines.append(pad("\(index)", 6) + pad("\(from)->\(to)", 8) + pad(hex(base), 15) + pad(hex(base + 64), 17)
                         + "\(hex(layout.slotOffset(from: from, to: to, slot: 0)))-\(hex(base + layout.ringStride - 1))")
        }
        return lines.joined(separator: "\n")
    }
}

/// A topology the hosted channel cannot run (the message says why).
public struct ChannelSetupError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
