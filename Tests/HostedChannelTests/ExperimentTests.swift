import Hosted
import HostedChannel
import InterKernel
import Testing

@Suite struct ChannelTopologyTests {
    @Test func placementSpreadsEachPairOverTwoCPUs() throws {
        let backend = try HostedChannelBackend(
            topology: ChannelTopology(name: "t", clusters: [[0, 1], [2, 3], [4], [5]]), cpus: [0, 1])
        #expect(backend.placement(from: 0, to: 1) == (0, 1))  // cores 0 and 2 both fold onto CPU 0
        #expect(backend.placement(from: 2, to: 3) == (0, 1))
        #expect(backend.placement(from: 3, to: 2) == (1, 0))
        #expect(throws: ChannelSetupError.self) {
            try HostedChannelBackend(topology: ChannelTopology(name: "t", clusters: [[0], [1], [2]], channelBytes: 4096), cpus: [0])
        }
    }

    @Test func experimentRowsCoverEveryOrderedPair() throws {
        let backend = try HostedChannelBackend(topology: .flat(clusters: 3), cpus: allowedHostCPUs())
        let rows = try ChannelPairSweep.run(backend: backend, clusterCount: 3, roundTrips: 200, messages: 2000) { _ in }
        #expect(rows.map { "\($0.from)->\($0.to)" } == ["0->1", "0->2", "1->0", "1->2", "2->0", "2->1"])
        #expect(rows.allSatisfy { $0.errors == 0 && $0.rttP50 > 0 && $0.messagesPerSecond > 0 })
        #expect(ChannelPairSweep.csv(rows).split(separator: "\n").count == 7)
    }
}

@Suite struct ChannelLayoutReportTests {
    @Test func listsEveryRing() throws {
        let layout = try #require(ChannelLayout(clusterCount: 3, regionSize: 1 << 20))
        let lines = ChannelLayoutReport.rings(layout).split(separator: "\n")
        #expect(lines.count == 1 + 6)
        #expect(lines[1].hasPrefix("0     0->1    0x1000         0x1040           0x1100-0x5FFF"))
        #expect(ChannelLayoutReport.summary(layout).contains("6 rings of 256 slots"))
    }
}

@Suite struct ChannelMeasureTests {
    /// Pinning fails loudly: a CPU this process may not use is an error, not
    /// a silently unpinned run.
    @Test func anUnavailableCPUIsRefused() throws {
        let missing = (allowedHostCPUs().max() ?? 0) + 1
        let layout = try #require(ChannelLayout(clusterCount: 2, slotsPerRing: 8))
        #expect(throws: HostedError.self) { try ChannelMeasure.cStream(slots: 8, count: 10, cpus: (missing, 0)) }
        #expect(throws: HostedError.self) {
            try ChannelMeasure.swiftRoundTrips(layout: layout, from: 0, to: 1, count: 10, cpus: (0, missing))
        }
    }

    /// Both sides count errors per message: a clean run has none on either.
    @Test func cleanRunsCountNoErrorsOnEitherSide() throws {
        let cpus = try hostCPUPair()
        let layout = try #require(ChannelLayout(clusterCount: 2, slotsPerRing: 8))
        #expect(try ChannelMeasure.cStream(slots: 8, count: 5000, cpus: cpus).errors == 0)
        #expect(try ChannelMeasure.swiftStream(layout: layout, from: 0, to: 1, count: 5000, cpus: cpus).errors == 0)
        let c = try ChannelMeasure.cRoundTrips(slots: 8, count: 500, cpus: cpus)
        #expect(c.unexpected == 0 && c.samples.count == 500 && c.percentile(50) > 0)
        let report = try ChannelBench.run(ChannelBench.Config(roundTrips: 200, messages: 2000, runs: 1, cpus: cpus, layout: layout)) { _ in }
        #expect(report.swift.errors == 0 && report.c.errors == 0)
        #expect(report.table.split(separator: "\n").count == 6)
    }
}
