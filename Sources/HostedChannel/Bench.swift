import Foundation
import Hosted
import InterKernel
import Topology

/// `cmk bench channel`: our ring against the C reference, interleaved.
public enum ChannelBench {
    public struct Config: Sendable {
        public var roundTrips: Int
        public var messages: Int
        public var runs: Int
        public var cpus: (Int, Int)
        public var layout: ChannelLayout
        public init(roundTrips: Int, messages: Int, runs: Int, cpus: (Int, Int), layout: ChannelLayout) {
            self.roundTrips = roundTrips
            self.messages = messages
            self.runs = runs
            self.cpus = cpus
            self.layout = layout
        }
    }

    /// Per-run figures for one implementation.
    public struct Series: Codable, Sendable {
        public var rttMeanNs: [Double] = []
        public var rttP50Ns: [Double] = []
        public var rttP99Ns: [Double] = []
        public var streamMessagesPerSecond: [Double] = []
        public var errors: UInt64 = 0
    }

    public struct Report: Sendable {
        public var swift = Series()
        public var c = Series()

        /// Swift / C of the median mean round trip (goal <= 1.10).
        public var rttRatio: Double { Statistics.median(swift.rttMeanNs) / Statistics.median(c.rttMeanNs) }
        /// Swift / C of the median p50 round trip.
        public var rttP50Ratio: Double { Statistics.median(swift.rttP50Ns) / Statistics.median(c.rttP50Ns) }
        /// Swift / C of the median streaming throughput (goal >= 0.90).
        public var throughputRatio: Double {
            Statistics.median(swift.streamMessagesPerSecond) / Statistics.median(c.streamMessagesPerSecond)
        }

        public var table: String {
            func row(_ name: String, _ s: [Double], _ c: [Double], _ unit: String, _ digits: Int) -> [String] {
                let ms = Statistics.median(s), mc = Statistics.median(c)
                return [name, format(ms, digits) + unit, format(mc, digits) + unit, format(ms / mc, 3)]
            }
            return TextTable(["median over runs", "Swift ring", "C ring", "Swift/C"], rows: [
                row("round trip, mean", swift.rttMeanNs, c.rttMeanNs, " ns", 1),
                row("round trip, p50", swift.rttP50Ns, c.rttP50Ns, " ns", 0),
                row("round trip, p99", swift.rttP99Ns, c.rttP99Ns, " ns", 0),
                row("streaming, msgs/s", swift.streamMessagesPerSecond.map { $0 / 1e6 },
                    c.streamMessagesPerSecond.map { $0 / 1e6 }, " M", 2),
            ]).rendered
        }

        public var verdict: String {
            let rttOK = rttRatio <= 1.10, tputOK = throughputRatio >= 0.90
            var lines = [
                "ratio round trip (Swift/C, mean): \(format(rttRatio, 3))  goal <= 1.10: \(rttOK ? "met" : "NOT met")",
                "ratio throughput (Swift/C):       \(format(throughputRatio, 3))  goal >= 0.90: \(tputOK ? "met" : "NOT met")",
            ]
            if swift.errors != 0 || c.errors != 0 {
                lines.append("ERRORS: swift \(swift.errors), c \(c.errors) (messages out of order, of the wrong kind or malformed)")
            }
            return lines.joined(separator: "\n")
        }

        public struct Record: Codable {
            public var machine: String
            public var rerun: String
            public var swift: Series
            public var c: Series
            public var rttRatio: Double
            public var rttP50Ratio: Double
            public var throughputRatio: Double
        }

        public func record(machine: String, rerun: String) -> Record {
            Record(machine: machine, rerun: rerun, swift: swift, c: c, rttRatio: rttRatio,
                   rttP50Ratio: rttP50Ratio, throughputRatio: throughputRatio)
        }
    }

    /// Run the benchmark: `runs` rounds, each measuring both implementations,
    /// alternating which goes first. `progress` gets one line per round.
    public static func run(_ config: Config, progress: (String) -> Void) throws(HostedError) -> Report {
        var report = Report()
        let slots = config.layout.slotsPerRing
        for round in 0..<config.runs {
            func swiftRTT() throws(HostedError) {
                let r = try ChannelMeasure.swiftRoundTrips(layout: config.layout, from: 0, to: 1,
                                                       count: config.roundTrips, cpus: config.cpus)
                report.swift.rttMeanNs.append(r.meanNanoseconds)
                report.swift.rttP50Ns.append(Double(r.percentile(50)))
                report.swift.rttP99Ns.append(Double(r.percentile(99)))
                report.swift.errors += r.unexpected
            }
            func cRTT() throws(HostedError) {
                let r = try ChannelMeasure.cRoundTrips(slots: slots, count: config.roundTrips, cpus: config.cpus)
                report.c.rttMeanNs.append(r.meanNanoseconds)
                report.c.rttP50Ns.append(Double(r.percentile(50)))
                report.c.rttP99Ns.append(Double(r.percentile(99)))
                report.c.errors += r.unexpected
            }
            func swiftStream() throws(HostedError) {
                let r = try ChannelMeasure.swiftStream(layout: config.layout, from: 0, to: 1,
                                                   count: config.messages, cpus: config.cpus)
                report.swift.streamMessagesPerSecond.append(r.messagesPerSecond)
                report.swift.errors += r.errors
            }
            func cStream() throws(HostedError) {
                let r = try ChannelMeasure.cStream(slots: slots, count: config.messages, cpus: config.cpus)
                report.c.streamMessagesPerSecond.append(r.messagesPerSecond)
                report.c.errors += r.errors
            }
            if round % 2 == 0 {
                try swiftRTT(); try cRTT(); try swiftStream(); try cStream()
            } else {
                try cRTT(); try swiftRTT(); try cStream(); try swiftStream()
            }
            progress("run \(round + 1)/\(config.runs): rtt mean swift \(format(report.swift.rttMeanNs.last!, 1)) ns, c \(format(report.c.rttMeanNs.last!, 1)) ns; stream swift \(format(report.swift.streamMessagesPerSecond.last! / 1e6, 2)) M/s, c \(format(report.c.streamMessagesPerSecond.last! / 1e6, 2)) M/s")
        }
        return report
    }
}

func format(_ value: Double, _ digits: Int) -> String { fixed(value, digits) }

func pad(_ text: String, _ width: Int) -> String {
    text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count)
}

extension JSONEncoder {
    public static var pretty: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        return e
    }
}
