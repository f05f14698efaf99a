import Cluster
import Foundation
import Testing
import Topology

@testable import GuestHost

/// Whether a tool is on PATH (tests that need it skip with a note otherwise).
func toolAvailable(_ tool: String) -> Bool { Subprocess.resolve(tool) != nil }

@Suite struct DeviceTreeTests {
    let guest = Region(base: 0x5120_0000, size: 256 << 20)
    let initrd = Region(base: 0x6110_e000, size: 987_340)

    func tree(vcpus: Int = 1, bootArgs: String = GuestBootArgs.defaults) -> GuestDeviceTree {
        GuestDeviceTree(vcpuCount: vcpus, guest: guest, bootArgs: bootArgs, initrd: initrd)
    }

    /// The body of node `name` (up to its closing "};" at the same depth).
    func node(_ source: String, _ name: String) -> String? {
        guard let start = source.range(of: name + " {") else { return nil }
        var depth = 0
        var end = start.upperBound
        for i in source[start.lowerBound...].indices {
            if source[i] == "{" { depth += 1 }
            if source[i] == "}" {
                depth -= 1
                if depth == 0 { end = i; break }
            }
        }
        return String(source[start.lowerBound...end])
    }

    @Test func memoryIsTheGuestRegion() throws {
        let memory = try #require(node(tree().source, "memory@51200000"))
        #expect(memory.contains("device_type = \"memory\";"))
        #expect(memory.contains("reg = <0x0 0x51200000 0x0 0x10000000>;"))
        #expect(!memory.contains("numa-node-id"))
        // Exactly one memory node: nothing else of RAM.
        #expect(tree().source.components(separatedBy: "device_type = \"memory\"").count == 2)
    }

    @Test func cpusUsePSCIAndTheirMPIDR() throws {
        let one = try #require(node(tree().source, "cpus"))
        #expect(one.contains("cpu@0 {"))
        #expect(one.contains("reg = <0x0>;"))
        #expect(one.contains("enable-method = \"psci\";"))
        #expect(one.components(separatedBy: "device_type = \"cpu\"").count == 2)
        // vCPU 17: Aff1 = 1, Aff0 = 1.
        let many = try #require(node(tree(vcpus: 18).source, "cpus"))
        #expect(many.contains("cpu@101 {"))
        #expect(many.contains("reg = <0x101>;"))
        #expect(many.contains("reg = <0xf>;"))
        #expect(many.components(separatedBy: "enable-method = \"psci\"").count == 19)
        #expect(GuestMachine.mpidr(ofVCPU: 15) == 0xf)
        #expect(GuestMachine.mpidr(ofVCPU: 16) == 0x100)
    }

    @Test func psciIsHVC() throws {
        let psci = try #require(node(tree().source, "psci"))
        #expect(psci.contains("compatible = \"arm,psci-1.0\", \"arm,psci-0.2\";"))
        #expect(psci.contains("method = \"hvc\";"))
    }

    @Test func gicCoversEveryRedistributor() throws {
        let gic = try #require(node(tree().source, "gic: interrupt-controller@8000000"))
        #expect(gic.contains("compatible = \"arm,gic-v3\";"))
        #expect(gic.contains("#interrupt-cells = <3>;"))
        #expect(gic.contains("interrupt-controller;"))
        #expect(gic.contains("<0x0 0x8000000 0x0 0x10000>"))
        #expect(gic.contains("<0x0 0x80a0000 0x0 0x20000>"))
        let four = try #require(node(tree(vcpus: 4).source, "gic: interrupt-controller@8000000"))
        #expect(four.contains("<0x0 0x80a0000 0x0 0x80000>"))
        #expect(tree().source.contains("interrupt-parent = <&gic>;"))
    }

    @Test func timerAndUART() throws {
        let timer = try #require(node(tree().source, "timer"))
        #expect(timer.contains("compatible = \"arm,armv8-timer\";"))
        #expect(timer.contains("interrupts = <1 13 8>, <1 14 8>, <1 11 8>, <1 10 8>;"))
        let uart = try #require(node(tree().source, "pl011@9000000"))
        #expect(uart.contains("compatible = \"arm,pl011\", \"arm,primecell\";"))
        #expect(uart.contains("reg = <0x0 0x9000000 0x0 0x1000>;"))
        #expect(uart.contains("interrupts = <0 1 4>;"))
        #expect(uart.contains("clocks = <&apb_pclk>, <&apb_pclk>;"))
        #expect(uart.contains("clock-names = \"uartclk\", \"apb_pclk\";"))
        let clock = try #require(node(tree().source, "apb_pclk: apb-pclk"))
        #expect(clock.contains("compatible = \"fixed-clock\";"))
        #expect(clock.contains("clock-frequency = <24000000>;"))
    }

    @Test func chosenHasBootargsConsoleAndInitrd() throws {
        let chosen = try #require(node(tree(bootArgs: "a \"quoted\" \\ arg").source, "chosen"))
        #expect(chosen.contains("bootargs = \"a \\\"quoted\\\" \\\\ arg\";"))
        #expect(chosen.contains("stdout-path = \"/pl011@9000000\";"))
        #expect(chosen.contains("linux,initrd-start = <0x0 0x6110e000>;"))
        #expect(chosen.contains("linux,initrd-end = <0x0 0x611ff0cc>;"))
        let none = GuestDeviceTree(vcpuCount: 1, guest: guest, bootArgs: "x", initrd: Region(base: 0, size: 0))
        #expect(!none.source.contains("linux,initrd"))
    }

    @Test func noOtherDevices() {
        let s = tree().source
        for absent in ["pci", "virtio", "pl031", "its@", "fw-cfg", "gpio", "flash"] {
            #expect(!s.contains(absent), "unexpected \(absent) in the guest device tree")
        }
    }

    @Test func numaNodesAndDistances() throws {
        var t = GuestDeviceTree(
            vcpus: [.init(index: 0, numaNode: 0), .init(index: 1, numaNode: 1)],
            memory: [.init(region: Region(base: 0x5120_0000, size: 128 << 20), numaNode: 0),
                     .init(region: Region(base: 0x5920_0000, size: 128 << 20), numaNode: 1)],
            distances: [[10, 20], [20, 10]], bootArgs: "x", initrd: Region(base: 0, size: 0))
        let s = t.source
        #expect(s.contains("memory@59200000"))
        #expect(s.components(separatedBy: "numa-node-id = <1>;").count == 3)
        let map = try #require(node(s, "distance-map"))
        #expect(map.contains("compatible = \"numa-distance-map-v1\";"))
        #expect(map.contains("<0 1 20>"))
        t.distances = nil
        #expect(!t.source.contains("distance-map"))
        if toolAvailable("dtc") { _ = try GuestDeviceTree.compile(s) }
    }

    @Test func compilesWithDTC() throws {
        guard toolAvailable("dtc") else {
            print("NOTE: dtc not installed (scripts/setup.sh installs device-tree-compiler): the compile check is skipped")
            return
        }
        var seeded = tree(vcpus: 4)
        seeded.rngSeed = Array(0..<32)
        let blob = try GuestDeviceTree.compile(seeded.source)
        // FDT magic 0xd00dfeed, big-endian; totalsize matches.
        #expect(Array(blob.prefix(4)) == [0xd0, 0x0d, 0xfe, 0xed])
        let total = blob[4..<8].reduce(0) { $0 << 8 | Int($1) }
        #expect(total == blob.count)
        // And decompiled, it still says what we wrote.
        let back = try Subprocess.capture([Subprocess.resolve("dtc")!, "-q", "-I", "dtb", "-O", "dts", "-"], input: Data(blob))
        let text = String(decoding: back.stdout, as: UTF8.self)
        #expect(text.contains("method = \"hvc\""))
        #expect(text.contains("reg = <0x00 0x51200000 0x00 0x10000000>"))
    }

    @Test func aBrokenSourceIsAnEnvironmentError() throws {
        guard toolAvailable("dtc") else {
            print("NOTE: dtc not installed: skipped")
            return
        }
        #expect(throws: GuestHostError.self) { try GuestDeviceTree.compile("/dts-v1/; / { oops") }
    }
}
