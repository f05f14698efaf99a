import BigLock
import CHosted
import Foundation
import Testing
import Topology
@testable import Hosted

@Suite struct PinnedThreadsTests {
    /// A CPU this process may not use is refused before any thread starts.
    @Test func pinningToAnUnavailableCPUFailsLoudly() {
        let missing = (allowedHostCPUs().max() ?? 0) + 1
        #expect(throws: HostedError.self) { try PinnedThreads.run([missing]) { _ in } }
        #expect(throws: HostedError.self) { try PinnedThreads.run([.init(cpu: -1) {}]) }
    }

    @Test func threadsRunPinnedWhereAsked() throws {
        let cpus = Array(allowedHostCPUs().prefix(2))
        let seen = UnsafeMutablePointer<Int32>.allocate(capacity: cpus.count)
        defer { seen.deallocate() }
        let shared = SharedPointer(seen)
        try PinnedThreads.run(cpus.map { Optional($0) }) { i in shared.pointer[i] = cmk_current_cpu() }
        #expect((0..<cpus.count).map { Int(seen[$0]) } == cpus)
        let pair = try hostCPUPair()
        #expect(cpus.contains(pair.0) && cpus.contains(pair.1))
    }
}

@Suite struct StatisticsTests {
    @Test func medianAndPercentile() {
        #expect(Statistics.median([]) == 0)
        #expect(Statistics.median([3, 1, 2]) == 2)
        #expect(Statistics.median([4, 1, 3, 2]) == 2.5)
        let sorted: [UInt64] = Array(1...100)
        #expect(Statistics.percentile(sorted: sorted, 50) == 50)
        #expect(Statistics.percentile(sorted: sorted, 99) == 99)
        #expect(Statistics.percentile(sorted: sorted, 0) == 1)
        #expect(Statistics.percentile(sorted: [], 50) == 0)
    }
}

@Suite struct HostMachineTests {
    @Test func theSummaryNamesCPUsAndKernel() {
        let s = HostMachine.summary
        #expect(s.contains("\(allowedHostCPUs().count) CPUs available"))
        #expect(s.contains("Linux "))
        #expect(HostMachine.summaryWithNUMA.hasPrefix(s))
    }
}

@Suite struct DetectedTopologyTests {
    /// What `cmk topology detect` writes is a valid topology with the
    /// detected clusters, whatever their number.
    @Test(arguments: [1, 3, 8])
    func theDetectedFileIsAValidTopology(clusters: Int) throws {
        let host = HostTopology(
            onlineCPUs: Array(0..<(2 * clusters)),
            clusters: (0..<clusters).map { HostTopology.Cluster(hostCPUs: [2 * $0, 2 * $0 + 1], node: $0 % 2, cacheLevel: 3) },
            nodeCount: 2, notes: ["a note"])
        let text = host.topologyFile(name: "h", lock: .mcs, clusterMemory: 128 << 20, sharing: .llc, machine: "test")
        let topology = try TopologyLoader.load(text: text, file: "detected.toml")
        #expect(topology.clusters.count == clusters)
        #expect(topology.lock == .mcs && topology.lockSpecified)
        #expect(topology.clusters.map(\.hostCPUs) == host.clusters.map(\.hostCPUs))
        #expect(topology.clusters.map(\.node) == host.clusters.map(\.node))
        #expect(text.contains("# note: a note"))
    }
}

@Suite struct CallgrindTests {
    @Test func readsTheTotalAndValgrindsLastWords() {
        let text = """
            ==123== Callgrind, a call-graph generating cache profiler
            ==123== Events    : Ir
            ==123== Collected : 4567
            ==123==
            ==123== I   refs:      4,567
            """
        #expect(Callgrind.collected(text) == 4567)
        #expect(Callgrind.lastWords(text) == "I   refs:      4,567")
        #expect(Callgrind.lastWords("==9== valgrind: m_debuginfo/readdwarf.c: bad DIE\n") == "valgrind: m_debuginfo/readdwarf.c: bad DIE")
        #expect(Callgrind.collected("nothing") == nil)
    }
}

@Suite struct IPCWorldTests {
    /// The world `cmk bench ipc` measures: the message goes both ways every
    /// round trip and the kernel's invariants hold; the baseline loop enters
    /// no kernel.
    @Test func roundTripsDeliverAndKeepTheInvariants() throws {
        let world = try IPCWorld()
        world.run(roundTrips: 1000, ipc: true)
        try world.verify(roundTrips: 1000)
        world.run(roundTrips: 10, ipc: false)
        #expect(throws: IPCWorld.SetupFailed.self) { try world.verify(roundTrips: 1000) }
    }
}
