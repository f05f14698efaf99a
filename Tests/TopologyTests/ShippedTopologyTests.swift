import Cluster
import Foundation
import Testing

@testable import Topology

let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

func shippedTopologies() -> [String] {
    let dir = repositoryRoot.appendingPathComponent("topologies")
    let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
    return names.filter { $0.hasSuffix(".toml") }.sorted()
}

@Suite struct ShippedTopologyTests {
    @Test func theIssueListIsShipped() {
        let names = Set(shippedTopologies())
        for required in ["default.toml", "1x4.toml", "2x4.toml", "4x2.toml", "4x1.toml", "uneven.toml"] {
            #expect(names.contains(required), "missing topologies/\(required)")
        }
    }

    @Test(arguments: shippedTopologies())
    func shippedTopologyIsValidAndLaysOut(_ name: String) throws {
        let path = repositoryRoot.appendingPathComponent("topologies/\(name)").path
        let topology = try TopologyLoader.load(text: String(contentsOfFile: path, encoding: .utf8), file: path)
        let layout = Layout(topology)
        var regions = layout.partitions + [layout.channel]
        if layout.guest.size > 0 { regions.append(layout.guest) }
        for (i, a) in regions.enumerated() {
            #expect(a.base % Machine.regionAlignment == 0)
            #expect(a.base >= Machine.ramBase + Machine.bootRegionSize)
            #expect(a.end <= Machine.ramBase + topology.memory)
            for b in regions[(i + 1)...] { #expect(!a.overlaps(b), "\(a) overlaps \(b)") }
        }
        // The blob the kernel gets decodes to the same layout.
        let bytes = Layout.bootInfoBytes(Layout.bootInfo(topology))
        let info = try bytes.withUnsafeBytes { try BootInfo.decode($0.baseAddress!, available: $0.count) }
        #expect(info.clusterCount == topology.clusters.count)
        #expect(info.coreCount == topology.coreCount)
        for (i, spec) in topology.clusters.enumerated() {
            #expect(info.clusters[i].partition == layout.partitions[i])
            #expect(info.clusters[i].coreMask == spec.cores.reduce(0) { $0 | (1 << UInt64($1)) })
        }
    }

    @Test func qemuCommandMatchesTheTopology() throws {
        let t = try TopologyLoader.load(text: validTopology, file: "t")
        let cmd = QEMUCommand(topology: t, kernel: "/k.elf", bootInfo: "/b.bin")
        let line = cmd.shellLine
        #expect(line.hasPrefix("qemu-system-aarch64 -accel tcg,thread=single -M virt,virtualization=on,gic-version=3 -cpu max,pauth-impdef=on,sve=off,sme=off"))
        let multi = QEMUCommand(topology: t, kernel: "/k.elf", bootInfo: "/b.bin", threading: .multi)
        #expect(multi.shellLine.contains("-accel tcg,thread=multi"))
        #expect(line.contains("-smp 4 -m 1024M"))
        #expect(line.contains("-kernel /k.elf"))
        #expect(line.contains("-device loader,file=/b.bin,addr=0x40f00000,force-raw=on"))
        #expect(!line.contains("0x40c00000"))
        let image = RootTaskImage(fileSize: 0x1000, memorySize: 0x2000, entry: 0x40_0000)
        let withRoot = QEMUCommand(topology: t, kernel: "/k.elf", bootInfo: "/b.bin",
                                   rootTask: RootTaskFile(path: "/r.bin", image: image))
        #expect(withRoot.shellLine.hasSuffix("-device loader,file=/r.bin,addr=0x40c00000,force-raw=on"))
    }
}
