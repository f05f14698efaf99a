import Cluster
import Foundation
import Testing
import Topology
import VMM

@testable import GuestHost

private let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

/// `[guest] vcpus = "core"`: a vCPU per core, numbered cluster by cluster
/// (`GuestVCPUMap`), one NUMA node per cluster, in the plan, the boot
/// information, cmk's device tree and plain QEMU's command line.
@Suite struct CorePlacementTests {
    let fakeCompile: (String) throws(GuestHostError) -> [UInt8] = { _ in [UInt8](repeating: 0, count: 1500) }

    func plan(_ file: String, placement: String?) throws -> GuestPlan {
        var text = try String(contentsOf: repositoryRoot.appendingPathComponent("topologies/\(file).toml"), encoding: .utf8)
        if let placement { text += "\n[guest]\nvcpus = \"\(placement)\"\n" }
        let topology = try TopologyLoader.load(text: text, file: "\(file).toml")
        let kernel = try temporaryFile(imageHeader(extra: 1000))
        return try GuestPlan(topology: topology, kernel: kernel, initrd: nil, bootArgs: GuestBootArgs(run: "true"),
                             compile: fakeCompile)
    }

    /// The cpu node of vCPU `v`: its `reg` and `numa-node-id`.
    func cpuNode(_ source: String, _ v: Int) -> (reg: String, node: String)? {
        let name = "cpu@\(String(GuestPSCI.affinity(ofVCPU: v), radix: 16)) {"
        guard let start = source.range(of: name), let end = source[start.upperBound...].range(of: "};") else { return nil }
        let body = source[start.upperBound..<end.lowerBound]
        func value(_ key: String) -> String? {
            guard let k = body.range(of: "\(key) = <"), let e = body[k.upperBound...].firstIndex(of: ">") else { return nil }
            return String(body[k.upperBound..<e])
        }
        guard let reg = value("reg"), let node = value("numa-node-id") else { return nil }
        return (reg, node)
    }

    /// The shipped 2x4-core topology: 8 vCPUs, 0-3 in node 0, 4-7 in node 1.
    @Test func shipped2x4CoreIsEightVCPUsInTwoNodes() throws {
        let topology = try TopologyLoader.load(path: repositoryRoot.appendingPathComponent("topologies/2x4-core.toml").path)
        #expect(topology.guestPlacement == .core)
        let kernel = try temporaryFile(imageHeader(extra: 1000))
        let p = try GuestPlan(topology: topology, kernel: kernel, initrd: nil, bootArgs: GuestBootArgs(run: "true"),
                              compile: fakeCompile)
        #expect(p.vcpuCount == 8 && p.placement == .core)
        let dts = p.deviceTree.source
        for v in 0..<8 {
            let cpu = try #require(cpuNode(dts, v), "no cpu node for vCPU \(v)")
            #expect(cpu.reg == "0x\(String(GuestPSCI.affinity(ofVCPU: v), radix: 16))")
            #expect(cpu.node == (v < 4 ? "0" : "1"), "vCPU \(v)")
        }
        #expect(dts.components(separatedBy: "device_type = \"cpu\"").count == 9)
        #expect(p.deviceTree.memory.count == 2 && p.deviceTree.distances == [[10, 20], [20, 10]])
        // A redistributor (128 KiB) per vCPU: 1 MiB for 8.
        #expect(dts.contains("<0x0 0x80a0000 0x0 0x100000>"))
        #expect(GuestMemoryMap(ramBase: p.layout.guest.base, ramSize: p.layout.guest.size, vcpus: 8)?
            .redistributorRegionSize == 0x100000)
        // The boot information says where the vCPUs run, and decodes so.
        let image = try #require(p.bootInfo.guestImage)
        #expect(image.placement == .core && image.vcpuCount == 8)
        let bytes = Layout.bootInfoBytes(p.bootInfo)
        let decoded = try bytes.withUnsafeBytes { raw in try BootInfo.decode(raw.baseAddress!, available: raw.count) }
        #expect(decoded.guestImage == image)
        // Plain QEMU: the same shape.
        let plain = p.plainQEMUArguments()
        #expect(plain[plain.firstIndex(of: "-smp")! + 1] == "8")
        #expect(plain.contains("node,nodeid=0,memdev=ram0,cpus=0,cpus=1,cpus=2,cpus=3"))
        #expect(plain.contains("node,nodeid=1,memdev=ram1,cpus=4,cpus=5,cpus=6,cpus=7"))
        #expect(plain.contains("dist,src=0,dst=1,val=20"))
        #expect(p.vcpuDescription == "8 vCPUs, one per core, in 2 NUMA nodes")
        #expect(p.vcpuPlacementLine.contains("NUMA node 0: vCPUs 0-3 on cluster 0; NUMA node 1: vCPUs 4-7 on cluster 1"))
    }

    /// The same machine without the key: a vCPU per cluster, as before.
    @Test func clusterPlacementIsTheDefault() throws {
        for placement in [nil, "cluster"] {
            let p = try plan("2x4", placement: placement)
            #expect(p.vcpuCount == 2 && p.placement == .cluster)
            #expect(p.bootInfo.guestImage?.placement == .cluster && p.bootInfo.guestImage?.vcpuCount == 2)
            #expect(cpuNode(p.deviceTree.source, 1)?.node == "1")
            #expect(cpuNode(p.deviceTree.source, 2) == nil)
        }
    }

    /// Uneven clusters (3 + 1 + 2 cores, listed out of order): vCPUs 0-2 on
    /// cluster 0, 3 on cluster 1, 4-5 on cluster 2, each in its cluster's node.
    @Test func unevenCorePlacement() throws {
        let p = try plan("uneven", placement: "core")
        #expect(p.vcpuCount == 6)
        let expected = [0, 0, 0, 1, 2, 2]
        for (v, node) in expected.enumerated() {
            #expect(cpuNode(p.deviceTree.source, v)?.node == "\(node)", "vCPU \(v)")
            #expect(p.vcpuMap.home(ofVCPU: v)?.cluster == node)
        }
        #expect(p.deviceTree.memory.count == 3)
        let plain = p.plainQEMUArguments()
        #expect(plain[plain.firstIndex(of: "-smp")! + 1] == "6")
        #expect(plain.contains("node,nodeid=0,memdev=ram0,cpus=0,cpus=1,cpus=2"))
        #expect(plain.contains("node,nodeid=1,memdev=ram1,cpus=3"))
        #expect(plain.contains("node,nodeid=2,memdev=ram2,cpus=4,cpus=5"))
    }

    /// One cluster of 4 cores: 4 vCPUs and no NUMA at all.
    @Test func oneClusterCorePlacementHasNoNUMA() throws {
        let p = try plan("1x4", placement: "core")
        #expect(p.vcpuCount == 4 && p.bootInfo.guestImage?.vcpuCount == 4)
        #expect(!p.deviceTree.source.contains("numa-node-id") && p.deviceTree.distances == nil)
        #expect(p.deviceTree.source.components(separatedBy: "device_type = \"cpu\"").count == 5)
        #expect(!p.plainQEMUArguments().contains("-numa"))
    }

    /// 2 clusters of 12 cores: vCPUs 16-23 have Aff1 = 1 (reg 0x100...).
    @Test func manyVCPUsUseAff1() throws {
        let topology = try TopologyLoader.load(text: """
            name = "2x12"
            memory = "2G"
            [[cluster]]
            cores = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]
            memory = "64M"
            [[cluster]]
            cores = [12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23]
            memory = "64M"
            [guest]
            vcpus = "core"
            [shared]
            channel = "1M"
            guest = "512M"
            """, file: "2x12.toml")
        let kernel = try temporaryFile(imageHeader(extra: 1000))
        let p = try GuestPlan(topology: topology, kernel: kernel, initrd: nil, bootArgs: GuestBootArgs(run: "true"),
                              compile: fakeCompile)
        #expect(p.vcpuCount == 24)
        let v17 = try #require(cpuNode(p.deviceTree.source, 17))
        #expect(v17.reg == "0x101" && v17.node == "1")
        #expect(cpuNode(p.deviceTree.source, 11)?.node == "0")
        #expect(p.deviceTree.source.contains("<0x0 0x80a0000 0x0 0x300000>"))
    }
}

/// `cmk: guest stats` with and without `vcpu=`, `cmk: guest lock`, and the
/// `--stats` tables.
@Suite struct LockStatsTests {
    func transcript(_ lines: [String]) -> GuestTranscript {
        var t = GuestTranscript()
        for l in lines { t.consume(l) }
        return t
    }

    let lock0 = "cmk: guest lock cluster=0 cores=4 acquisitions=120000 contended=3000 wait_p50_ns=0 wait_p90_ns=850 wait_p99_ns=12500 wait_max_ns=1250000 hold_p50_ns=2300"
    let lock1 = "cmk: guest lock cluster=1 cores=4 acquisitions=80000 contended=0 wait_p50_ns=0 wait_p90_ns=0 wait_p99_ns=0 wait_max_ns=40 hold_p50_ns=1900"

    @Test func statsLinesWithAndWithoutVCPU() {
        let t = transcript([
            "cmk: guest stats cluster=1 vcpu=5 kind=gicr exits=12 us=340",
            "cmk: guest stats cluster=1 vcpu=4 kind=gicr exits=8 us=60",
            "cmk: guest stats cluster=0 kind=gicr exits=3 us=9",
            "cmk: guest stats kind=hvc exits=1 us=2",
            "cmk: guest stats cluster=1 vcpu=5 refused=0 aborts=1 undefined=0 dropped=0",
        ])
        #expect(t.stats == [
            .init(cluster: 1, vcpu: 5, kind: "gicr", exits: 12, microseconds: 340),
            .init(cluster: 1, vcpu: 4, kind: "gicr", exits: 8, microseconds: 60),
            .init(cluster: 0, vcpu: 0, kind: "gicr", exits: 3, microseconds: 9),
            .init(cluster: 0, kind: "hvc", exits: 1, microseconds: 2),
        ])
        #expect(t.stats[2].vcpu == 0)  // no vcpu=: the cluster's only vCPU
        let lines = t.statsTable.split(separator: "\n").map(String.init)
        #expect(lines[1].hasSuffix("exits by cluster  exits by vCPU"))
        let gicr = lines.first { $0.hasPrefix("gicr") } ?? ""
        // 23 exits: 3 on cluster 0, 20 on cluster 1; vCPUs 0..5 (1-3 named by no line).
        #expect(gicr.contains(" 23 ") && gicr.contains(" 3/20 ") && gicr.hasSuffix("3/-/-/-/8/12"), "\(gicr)")
        #expect(lines.contains("refused: cluster=1 vcpu=5 refused=0 aborts=1 undefined=0 dropped=0"))
    }

    /// Cluster placement's lines (no vcpu=): no vCPU column, as before.
    @Test func noVCPUColumnForOneVCPUPerCluster() {
        let t = transcript([
            "cmk: guest stats cluster=0 kind=irq exits=5 us=20",
            "cmk: guest stats cluster=1 vcpu=1 kind=irq exits=10 us=30",
        ])
        #expect(!t.statsTable.contains("exits by vCPU"))
        #expect(t.statsTable.contains("exits by cluster"))
    }

    @Test func lockLine() {
        let t = transcript([lock0])
        #expect(t.locks == [GuestTranscript.LockStat(
            cluster: 0, cores: 4, acquisitions: 120000, contended: 3000, waitP50: 0, waitP90: 850, waitP99: 12500,
            waitMax: 1_250_000, holdP50: 2300)])
        #expect(t.malformedLocks.isEmpty)
    }

    @Test(arguments: [
        "cmk: guest lock cluster=0 cores=4 acquisitions=10 contended=1",  // fields missing
        "cmk: guest lock cluster=x cores=4 acquisitions=10 contended=1 wait_p50_ns=0 wait_p90_ns=0 wait_p99_ns=0 wait_max_ns=0 hold_p50_ns=0",
        "cmk: guest lock cluster=0 cores=4 acquisitions=10 contended=11 wait_p50_ns=0 wait_p90_ns=0 wait_p99_ns=0 wait_max_ns=0 hold_p50_ns=0",
        "cmk: guest lock cluster=0 cores=4 acquisitions=10 contended=1 wait_p50_ns=9 wait_p90_ns=5 wait_p99_ns=0 wait_max_ns=0 hold_p50_ns=0",
        "cmk: guest lock cluster=0 cores=4 acquisitions=-1 contended=1 wait_p50_ns=0 wait_p90_ns=0 wait_p99_ns=0 wait_max_ns=0 hold_p50_ns=0",
        "cmk: guest lock",
    ])
    func malformedLockLineIsReportedNotCounted(_ line: String) {
        let t = transcript([line, lock1])
        #expect(t.locks.count == 1 && t.locks[0].cluster == 1)
        #expect(t.malformedLocks == [line])
        let table = t.statsTable(clusterCount: 2)
        #expect(table.contains("ignored a malformed lock line: \(line)"))
        #expect(table.contains("no `cmk: guest lock` line from this cluster"))
    }

    @Test func lockTable() {
        let t = transcript([
            "cmk: guest stats cluster=0 vcpu=0 kind=gicr exits=3 us=9",
            lock1, lock0,
        ])
        let lines = t.statsTable(clusterCount: 2).split(separator: "\n").map(String.init)
        // After the exit table.
        let title = try! #require(lines.firstIndex { $0.hasPrefix("big lock by cluster") })
        #expect(title > lines.firstIndex { $0.hasPrefix("total") }!)
        let header = lines[title + 1]
        for column in ["cluster", "cores", "acquisitions", "contended", "wait p50", "wait p90", "wait p99", "wait max", "hold p50"] {
            #expect(header.contains(column), "\(column)")
        }
        let row0 = lines[title + 2], row1 = lines[title + 3]
        #expect(row0.hasPrefix("0 ") && row1.hasPrefix("1 "))
        let cells0 = row0.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        #expect(cells0 == ["0", "4", "120000", "3000", "(2.50%)", "0", "ns", "850", "ns", "12.50", "µs", "1250.0", "µs", "2.30", "µs"])
        #expect(row1.contains(" 0 (0.00%)") && row1.contains("40 ns") && row1.hasSuffix("1.90 µs"))
        // Columns line up: each row as long as the header.
        #expect(row0.count == header.count && row1.count == header.count)
        // No lock line from cluster 1 of 3: said, not zeros; a third cluster too.
        let partial = transcript([lock0]).statsTable(clusterCount: 3).split(separator: "\n").map(String.init)
        #expect(partial.contains { $0.hasPrefix("1 ") && $0.hasSuffix("no `cmk: guest lock` line from this cluster") })
        #expect(partial.contains { $0.hasPrefix("2 ") && $0.hasSuffix("no `cmk: guest lock` line from this cluster") })
    }

    @Test func noLockLinesAtAll() {
        let t = transcript(["cmk: guest stats kind=hvc exits=1 us=2"])
        #expect(t.statsTable(clusterCount: 2).hasSuffix("big lock: the kernel printed no `cmk: guest lock` lines (from none of the 2 clusters)"))
        #expect(t.statsTable.hasSuffix("big lock: the kernel printed no `cmk: guest lock` lines"))
    }

    /// The lock lines are hidden from the console like the stats lines, and still watched.
    @Test func lockLinesAreHidden() {
        var stream = ConsoleStream(hiding: [GuestTranscript.statsPrefix, GuestTranscript.lockPrefix])
        let text = "cmk: guest lo" + "ck cluster=0 cores=4\ncmk: guest stats kind=hvc exits=1 us=2\ncmk: guest look\n"
        var shown: [UInt8] = []
        var lines: [String] = []
        for c in text { let (b, l) = stream.feed(Array(String(c).utf8)); shown += b; lines += l }
        #expect(String(decoding: shown, as: UTF8.self) == "cmk: guest look\n")
        #expect(lines.count == 3 && lines[0] == "cmk: guest lock cluster=0 cores=4")
    }

    @Test func durations() {
        #expect(GuestTranscript.nanoseconds(0) == "0 ns")
        #expect(GuestTranscript.nanoseconds(999) == "999 ns")
        #expect(GuestTranscript.nanoseconds(1000) == "1.00 µs")
        #expect(GuestTranscript.nanoseconds(99_994) == "99.99 µs")
        #expect(GuestTranscript.nanoseconds(312_500) == "312.5 µs")
    }
}
