import BigLock
import Foundation
import Hosted
import Testing
import Topology
@testable import HostedLock

/// A measurement as a backend would report it.
func measurement(cluster: Int = 0, entries: [UInt64], kernel: UInt64? = nil) -> LockClusterMeasurement {
    var wait = LockHistogram(), hold = LockHistogram()
    for v in [10, 20, 30, 40] as [UInt64] { wait.record(v); hold.record(v / 2) }
    return LockClusterMeasurement(
        cluster: cluster, cores: entries.count, elapsedSeconds: 2, entriesPerCore: entries,
        kernelEntries: kernel ?? entries.reduce(0, +), contendedEntries: 1, wait: wait, hold: hold,
        waitUnit: "ns", unitsPerTick: 1)
}

@Suite struct LockResultTests {
    @Test func aRowDerivesThroughputFairnessAndLostEntries() {
        let setup = LockExperimentSetup(workload: .cs, hold: 50, delay: 3, duration: 2)
        let row = LockResultRow(backend: "hosted", lock: .mcs, setup: setup, run: 1, m: measurement(entries: [100, 300]))
        #expect(row.lock == "mcs")
        #expect(row.entries == 400)
        #expect(row.throughput == 200)
        #expect(row.fairness == 3)
        #expect(row.lostEntries == 0)
        #expect(row.csvLine.hasPrefix("hosted,mcs,cs,50,3,0,2,1,2.0000,400,200,ns,"))
        #expect(LockResultRow.csvHeader.split(separator: ",").count == row.csvLine.split(separator: ",", omittingEmptySubsequences: false).count)
        let broken = LockResultRow(backend: "hosted", lock: .ticket, setup: setup, run: 1, m: measurement(entries: [5, 5], kernel: 9))
        #expect(broken.lostEntries == 1)
    }

    @Test func theNullWorkloadRecordsNoHold() {
        #expect(LockExperimentSetup(workload: .null, hold: 100, delay: 0, duration: 1).hold == 0)
        #expect(LockExperimentSetup(workload: .null, hold: 100, delay: 0, duration: 1).summary == "null delay=0")
        #expect(LockExperimentSetup(workload: .cs, hold: 100, delay: 0, duration: 1).summary == "cs hold=100 delay=0")
    }

    @Test func theTableShowsMediansPerLockAndSize() {
        let setup = LockExperimentSetup(workload: .null, hold: 0, delay: 0, duration: 2)
        let rows = [[100, 100], [300, 300], [200, 200]].enumerated().map { run, entries in
            LockResultRow(backend: "hosted", lock: .clh, setup: setup, run: run + 1, m: measurement(entries: entries.map(UInt64.init)))
        }
        let lines = LockExperimentSweep.table(rows).split(separator: "\n")
        #expect(lines.count == 3)
        #expect(lines[0].hasPrefix("lock  cluster  cores  entries/s  wait mean ns"))
        #expect(lines[2].hasPrefix("clh"))
        #expect(lines[2].contains(" 200 "))  // median of 100, 300 and 200 entries/s
    }

    @Test func jsonRecordsCommandMachineAndTypedFields() throws {
        let setup = LockExperimentSetup(workload: .cs, hold: 7, delay: 0, duration: 2)
        let row = LockResultRow(backend: "hosted", lock: .ticket, setup: setup, run: 1, m: measurement(entries: [4]))
        let data = try LockExperimentSweep.json([row], command: "cmk experiment lock", machine: "test machine")
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(object["machine"] as? String == "test machine")
        let rows = try #require(object["rows"] as? [[String: Any]])
        #expect(rows.first?["workload"] as? String == "cs")
        #expect(rows.first?["lock"] as? String == "ticket")
    }
}

@Suite struct LockExperimentPointTests {
    @Test func withoutAFileTheSweepGrowsOneCluster() throws {
        let points = try LockExperimentSweep.hostedPoints(nil, allowed: [4, 6])
        #expect(points.map { $0.map(\.cores) } == [[1], [2]])
        #expect(points[1][0].hostCPUs == [4, 6])
        #expect(LockExperimentSweep.qemuPoints(nil).map { $0[0].cores } == [1, 2, 4, 8])
    }

    @Test func aFileNeedsAHostCPUPerCore() throws {
        let topology = try TopologyLoader.load(text: """
            name = "t"
            memory = "1G"
            [[cluster]]
            cores = [0, 1]
            memory = "64M"
            [[cluster]]
            cores = [2]
            memory = "64M"
            host_cpus = [9]
            node = 1
            [shared]
            channel = "1M"
            """, file: "t.toml")
        let points = try LockExperimentSweep.hostedPoints(topology, file: "t.toml", allowed: [0, 1, 2])
        #expect(points.count == 1)
        #expect(points[0].map(\.hostCPUs) == [[0, 1], [9]])
        #expect(points[0].map(\.node) == [0, 1])
        #expect(throws: HostedError.self) { try LockExperimentSweep.hostedPoints(topology, file: "t.toml", allowed: [0, 1]) }
    }
}

@Suite struct ThroughputPlotTests {
    /// The subtitle names the settings and the machine; on a long machine
    /// description it used to run past the right edge of the plot.
    @Test func theSubtitleFitsInsideThePlot() {
        let setup = LockExperimentSetup(workload: .cs, hold: 100, delay: 0, duration: 1)
        let rows = [1, 2].map { cores in
            LockResultRow(backend: "hosted", lock: .mcs, setup: setup, run: 1, m: measurement(entries: Array(repeating: 10, count: cores)))
        }
        let machine = "AMD EPYC 7B13 64-Core Processor, 2 CPUs available, Linux 6.1.0-37-cloud-amd64 x86_64, 1 NUMA node(s)"
        let subtitle = "cs hold=100 delay=0, 3 x 1.0 s, \(machine)"
        let svg = throughputSVG(rows: rows, title: "Big lock throughput (hosted)", subtitle: subtitle)
        let lines = wrap(subtitle, maxWidth: subtitleWidth)
        #expect(lines.count >= 2)
        #expect(lines.joined(separator: " ") == subtitle)
        #expect(lines.allSatisfy { plotLeft + estimatedWidth($0) <= plotWidth - 10 })
        for line in lines { #expect(svg.contains(">\(line)</text>")) }
        // The plot moves down by the extra lines; the legend and axes stay inside.
        #expect(svg.contains("height=\"\(440 + 15 * (lines.count - 1))\""))
    }

    @Test func aShortSubtitleIsOneLine() {
        #expect(wrap("null delay=0", maxWidth: subtitleWidth) == ["null delay=0"])
    }
}

@Suite struct LockBenchTests {
    /// A very short run: every contender measured, ClusterLock included, and
    /// the counter under each lock equal to the acquisitions (else it throws).
    @Test func aShortBenchMeasuresEveryContender() throws {
        var lines: [String] = []
        let report = try LockBench.run(LockBench.Settings(rounds: 1, iterations: 1000, seconds: 0.01)) { lines.append($0) }
        for kind in ClusterLock.Kind.allCases {
            #expect((report.uncontended[.swift(kind)] ?? 0) > 0)
            #expect((report.uncontended[.clusterLock(kind)] ?? 0) > 0)
            #expect((report.uncontended[.c(kind)] ?? 0) > 0)
        }
        #expect(lines.contains { $0.contains("ClusterLock/Swift") })
        #expect(lines.last?.hasPrefix("rerun: swift run -c release cmk bench lock --rounds 1") == true)
        if allowedHostCPUs().count >= 2 { #expect((report.contended[.clusterLock(.clh)] ?? 0) > 0) }
    }

    @Test func settingsSayWhatIsWrong() {
        #expect(LockBench.Settings(rounds: 0, iterations: 1000, seconds: 1).problem == "--rounds must be at least 1")
        #expect(LockBench.Settings(rounds: 1, iterations: 1000, seconds: 1, stride: 100).problem != nil)
        #expect(LockBench.Settings(rounds: 1, iterations: 1000, seconds: 1).problem == nil)
    }
}
