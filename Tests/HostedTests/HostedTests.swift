import Foundation
import Testing
@testable import BigLock
@testable import Hosted

/// Every lock kind, for parameterised tests.
let allKinds = ClusterLock.Kind.allCases

@Suite struct HostedTests {
    @Test func cpuListsParseAndPrint() {
        #expect(parseCPUList("0-3,8,10-11\n") == [0, 1, 2, 3, 8, 10, 11])
        #expect(parseCPUList("5") == [5])
        #expect(parseCPUList("") == [])
        #expect(parseCPUList("3-1") == nil)
        #expect(parseCPUList("a") == nil)
        #expect(cpuListString([8, 0, 1, 2, 3, 10, 11]) == "0-3,8,10-11")
    }

    /// A fake sysfs: 4 CPUs, L2 shared by {0,1} and {2,3}, L3 by all four;
    /// NUMA nodes as given.
    func fakeSysfs(nodes: [[Int]]) throws -> String {
        let root = NSTemporaryDirectory() + "cmk-sysfs-\(UUID().uuidString)"
        let fm = FileManager.default
        func write(_ path: String, _ text: String) throws {
            try fm.createDirectory(atPath: (root + path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try text.write(toFile: root + path, atomically: true, encoding: .utf8)
        }
        try write("/devices/system/cpu/online", "0-3\n")
        for cpu in 0..<4 {
            let c = "/devices/system/cpu/cpu\(cpu)/cache"
            try write("\(c)/index0/level", "1\n"); try write("\(c)/index0/type", "Data\n")
            try write("\(c)/index0/shared_cpu_list", "\(cpu)\n")
            try write("\(c)/index2/level", "2\n"); try write("\(c)/index2/type", "Unified\n")
            try write("\(c)/index2/shared_cpu_list", cpu < 2 ? "0-1\n" : "2-3\n")
            try write("\(c)/index3/level", "3\n"); try write("\(c)/index3/type", "Unified\n")
            try write("\(c)/index3/shared_cpu_list", "0-3\n")
        }
        for (n, cpus) in nodes.enumerated() {
            try write("/devices/system/node/node\(n)/cpulist", cpuListString(cpus) + "\n")
        }
        return root
    }

    @Test func oneNodeGroupsByTheChosenCache() throws {
        let root = try fakeSysfs(nodes: [[0, 1, 2, 3]])
        let llc = HostTopology.detect(root: root, sharing: .llc)
        #expect(llc.clusters.map(\.hostCPUs) == [[0, 1, 2, 3]])
        #expect(llc.clusters.map(\.cacheLevel) == [3])
        let l2 = HostTopology.detect(root: root, sharing: .l2)
        #expect(l2.clusters.map(\.hostCPUs) == [[0, 1], [2, 3]])
        #expect(l2.nodeCount == 1)
    }

    @Test func aClusterNeverSpansNodes() throws {
        let root = try fakeSysfs(nodes: [[0, 2], [1, 3]])
        let llc = HostTopology.detect(root: root, sharing: .llc)
        #expect(llc.clusters.map(\.hostCPUs) == [[0, 2], [1, 3]])
        #expect(llc.clusters.map(\.node) == [0, 1])
        #expect(llc.nodeCount == 2)
    }

    @Test func missingCacheInfoMakesSingleCoreClustersAndSaysSo() throws {
        let root = NSTemporaryDirectory() + "cmk-sysfs-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root + "/devices/system/cpu", withIntermediateDirectories: true)
        try "0-1\n".write(toFile: root + "/devices/system/cpu/online", atomically: true, encoding: .utf8)
        let t = HostTopology.detect(root: root)
        #expect(t.clusters.map(\.hostCPUs) == [[0], [1]])
        #expect(t.notes.count == 2)
    }

    @Test func partitionsArePageAlignedZeroedAndSayWhereTheyAre() {
        let p = ClusterPartition(bytes: 10_000, node: 0)
        #expect(UInt(bitPattern: p.base) % 4096 == 0)
        #expect(p.size >= 10_000)
        #expect((0..<p.size).allSatisfy { p.base.load(fromByteOffset: $0, as: UInt8.self) == 0 })
        #expect(p.placement.hasPrefix("NUMA:"))
        let far = ClusterPartition(bytes: 100, node: 1000)
        #expect(far.node == nil || far.node == 0)
    }

    @Test func impossiblePlansAreRefused() {
        let cpus = allowedHostCPUs()
        let tooMany = HostedClusterPlan(hostCPUs: Array(0...(cpus.max()! + 1)), node: 0)
        #expect(throws: HostedError.self) { try HostedRuntime.validate([tooMany]) }
        #expect(throws: HostedError.self) { try HostedRuntime.validate([HostedClusterPlan(hostCPUs: [], node: 0)]) }
        #expect(throws: HostedError.self) { try ClusterLock.Kind.parseList("mcs,spinlock") }
        #expect((try? ClusterLock.Kind.parseList("clh, MCS,clh")) == [.clh, .mcs])
    }

    /// A short hosted run on every available CPU (at most 2) in one cluster:
    /// the kernel's entry counter, kept under the lock in plain memory, must
    /// equal the entries the cores counted.
    @Test(arguments: allKinds)
    func aHostedRunLosesNoEntry(kind: ClusterLock.Kind) throws {
        let cpus = Array(allowedHostCPUs().prefix(2))
        let results = try HostedRuntime.run(
            kind: kind, workload: .cs, hold: 20,
            clusters: [HostedClusterPlan(hostCPUs: cpus, node: 0)],
            settings: HostedRunSettings(delay: 10, duration: 0.05))
        #expect(results.count == 1)
        let r = results[0]
        #expect(r.entriesPerCore.count == cpus.count)
        #expect(r.kernelEntries == r.entriesPerCore.reduce(0, +))
        #expect(r.kernelEntries > 0)
        #expect(r.wait.count == r.kernelEntries)
        #expect(r.hold.count == r.kernelEntries)
        #expect(r.elapsedSeconds >= 0.05)
    }
}
