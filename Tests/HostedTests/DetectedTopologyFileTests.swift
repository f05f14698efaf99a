@testable import Hosted
import Testing
import Topology

/// `cmk topology detect` only writes files that `cmk topology check` accepts,
/// whatever the host (cluster count and size) and `--cluster-memory`.
@Suite struct DetectedTopologyFileTests {
    static func host(clusters: Int, coresEach: Int) -> HostTopology {
        HostTopology(
            onlineCPUs: Array(0..<(clusters * coresEach)),
            clusters: (0..<clusters).map {
                HostTopology.Cluster(hostCPUs: Array(($0 * coresEach)..<(($0 + 1) * coresEach)), node: $0 % 4, cacheLevel: 3)
            },
            nodeCount: 4, notes: [])
    }

    static let sizes: [UInt64] = [
        100 << 10, 1 << 20, 2 << 20, 3 << 20, 4 << 20, (2 << 20) + 1, 64 << 20, 128 << 20, 190 << 20, 191 << 20,
        250 << 20, 700 << 20, 1 << 30, 2 << 30, 3 << 30, 8 << 30, 1 << 40, UInt64.max,
    ]

    @Test(arguments: [1, 2, 3, 4, 5, 7, 8, 12, 16, 31, 32, 33, 48, 64, 65, 100])
    func everySynthesisedFilePassesTheChecker(clusters: Int) throws {
        for coresEach in [1, 2, 3, 4] {
            for size in Self.sizes {
                let host = Self.host(clusters: clusters, coresEach: coresEach)
                let text = host.topologyFile(name: "h \"q\"\n", lock: .clh, clusterMemory: size, sharing: .llc, machine: "test\nmachine")
                do {
                    let t = try TopologyLoader.load(text: text, file: "detected.toml")
                    let expectedCores = min(clusters * coresEach, Topology.maxCores)
                    #expect(t.coreCount == expectedCores)
                    #expect(t.name == "h \"q\"\n")
                    // The partition is what was asked for, whenever that is a valid partition that fits.
                    let fits = size <= 8 << 30
                        && Layout.bytesNeeded(partitions: Array(repeating: size, count: t.clusters.count), channel: 1 << 20, guest: 0) <= 8 << 30
                    if size % (2 << 20) == 0, size >= 4 << 20, fits {
                        #expect(t.clusters.allSatisfy { $0.memory == size }, "\(clusters)x\(coresEach) of \(formatSize(size))")
                    }
                    #expect(t.memory >= 1 << 30)
                } catch {
                    Issue.record("\(clusters) clusters of \(coresEach) cores, --cluster-memory \(size): check refuses what detect wrote:\n\(error)\n\(text)")
                }
            }
        }
    }

    /// The case of issue 11: four clusters of 190M need 1034M (16M boot
    /// region, four partitions, the channel on its 2M boundary, the guest
    /// region), so the file declares 2G, not 1G.
    @Test func fourClustersOf190MNeedMoreThan1G() throws {
        let text = Self.host(clusters: 4, coresEach: 2).topologyFile(name: "h", lock: .mcs, clusterMemory: 190 << 20, sharing: .llc, machine: "m")
        #expect(text.contains("memory = \"2G\""))
        let t = try TopologyLoader.load(text: text, file: "detected.toml")
        #expect(t.memory == 2 << 30)
        #expect(t.clusters.map(\.memory) == Array(repeating: 190 << 20, count: 4))
    }
}
