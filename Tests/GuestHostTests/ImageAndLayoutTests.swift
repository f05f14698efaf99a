import Cluster
import Foundation
import Testing
import Topology

@testable import GuestHost

/// A 64-byte arm64 Image header (like Debian's cloud kernel: "MZ", text_offset
/// 0, flags 0xa), then `extra` zero bytes.
func imageHeader(imageSize: UInt64 = 0x1ab_0000, textOffset: UInt64 = 0, flags: UInt64 = 0xa,
                 magic: UInt32 = ArmImageHeader.magic, extra: Int = 0) -> [UInt8] {
    var b = [UInt8](repeating: 0, count: 64 + extra)
    func put(_ v: UInt64, _ at: Int, _ n: Int) { for i in 0..<n { b[at + i] = UInt8((v >> (8 * UInt64(i))) & 0xff) } }
    b[0] = UInt8(ascii: "M"); b[1] = UInt8(ascii: "Z")
    put(textOffset, 0x08, 8)
    put(imageSize, 0x10, 8)
    put(flags, 0x18, 8)
    put(UInt64(magic), 0x38, 4)
    return b
}

func temporaryFile(_ bytes: [UInt8], name: String = "Image") throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("guesthost-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let url = dir.appendingPathComponent(name)
    try Data(bytes).write(to: url)
    return url.path
}

@Suite struct ImageHeaderTests {
    @Test func aGoodHeader() throws {
        let h = try ArmImageHeader(bytes: imageHeader(), name: "Image")
        #expect(h.imageSize == 0x1ab_0000)
        #expect(h.textOffset == 0)
        #expect(h.pageSize == .fourK)
        #expect(h.placeAnywhere)
        #expect(!h.isBigEndian)
        let (read, size) = try ArmImageHeader.read(path: temporaryFile(imageHeader(extra: 4000)))
        #expect(read == h)
        #expect(size == 4064)
    }

    func refusal(_ bytes: [UInt8], fileSize: UInt64? = nil) -> String? {
        do {
            _ = try ArmImageHeader(bytes: bytes, name: "K", fileSize: fileSize)
            return nil
        } catch {
            #expect(error.kind == .badInput)
            return error.message
        }
    }

    @Test func badMagic() {
        #expect(refusal(imageHeader(magic: 0x464c_457f))?.contains("no \"ARM\\x64\" magic") == true)
        // An ELF vmlinux: 0x7f 'E' 'L' 'F' and no magic at 0x38.
        var elf = [UInt8](repeating: 0, count: 64)
        elf[0] = 0x7f; elf[1] = 0x45; elf[2] = 0x4c; elf[3] = 0x46
        #expect(refusal(elf) != nil)
    }

    @Test func truncated() throws {
        #expect(refusal(Array(imageHeader().prefix(63)))?.contains("shorter than the 64-byte header") == true)
        #expect(refusal([]) != nil)
        #expect(throws: GuestHostError.self) { try ArmImageHeader.read(path: temporaryFile(Array(imageHeader().prefix(40)))) }
        #expect(throws: GuestHostError.self) { try ArmImageHeader.read(path: "/nonexistent/Image") }
    }

    @Test func badFlagsAndFields() {
        #expect(refusal(imageHeader(flags: 0xb))?.contains("big-endian") == true)
        #expect(refusal(imageHeader(imageSize: 0))?.contains("image_size 0") == true)
        #expect(refusal(imageHeader(textOffset: 0x80000))?.contains("text_offset") == true)
        #expect(refusal(imageHeader(imageSize: 0x1000), fileSize: 0x2000)?.contains("image_size") == true)
        #expect(refusal(imageHeader(), fileSize: 0x1000) == nil)
    }
}

@Suite struct LayoutTests {
    let guest = Region(base: 0x5120_0000, size: 256 << 20)

    @Test func fitsAndIsAligned() throws {
        let initrd = try GuestLayout.initrd(size: 987_340, guest: guest)
        #expect(initrd.base % 4096 == 0)
        #expect(initrd.end <= guest.end)
        #expect(guest.end - initrd.end < 4096)
        let layout = try GuestLayout(guest: guest, imageSize: 0x1ab_0000, initrd: initrd, deviceTreeSize: 1534)
        #expect(layout.kernel == Region(base: 0x5120_0000, size: 0x1ab_0000))
        #expect(layout.kernel.base % (2 << 20) == 0)
        #expect(layout.deviceTree.base % 8 == 0)
        #expect(layout.deviceTree.end <= initrd.base)
        #expect(initrd.base - layout.deviceTree.end < 4096 + 4096)
        #expect(!layout.deviceTree.overlaps(layout.kernel))
        let image = layout.image()
        #expect(image.fits(in: guest))
        #expect(image.placement == .cluster)
        #expect(image.vcpuCount == 1)
    }

    @Test func withoutInitramfs() throws {
        let none = try GuestLayout.initrd(size: 0, guest: guest)
        #expect(none == Region(base: 0, size: 0))
        let layout = try GuestLayout(guest: guest, imageSize: 0x1ab_0000, initrd: none, deviceTreeSize: 2000)
        #expect(layout.deviceTree.end <= guest.end)
        #expect(layout.image().fits(in: guest))
    }

    @Test func doesNotFit() throws {
        let small = Region(base: 0x5120_0000, size: 32 << 20)
        let initrd = try GuestLayout.initrd(size: 1 << 20, guest: small)
        #expect {
            try GuestLayout(guest: small, imageSize: 0x1ab_0000, initrd: initrd, deviceTreeSize: 1534)
        } throws: { ($0 as? GuestHostError)?.message.contains("does not fit in the guest region") == true }
        #expect(throws: GuestHostError.self) { try GuestLayout.initrd(size: 300 << 20, guest: guest) }
        #expect(throws: GuestHostError.self) {
            try GuestLayout(guest: guest, imageSize: 0x1ab_0000, initrd: Region(base: 0, size: 0), deviceTreeSize: (2 << 20) + 8)
        }
        #expect(throws: GuestHostError.self) {
            try GuestLayout(guest: Region(base: 0, size: 0), imageSize: 1, initrd: Region(base: 0, size: 0), deviceTreeSize: 8)
        }
        // Just enough: image + minimum free + one page of device tree.
        let exact = Region(base: 0x5120_0000, size: 64 << 20)
        _ = try GuestLayout(guest: exact, imageSize: (64 << 20) - GuestLayout.minimumFree - 4096,
                            initrd: Region(base: 0, size: 0), deviceTreeSize: 4096)
        #expect(throws: GuestHostError.self) {
            try GuestLayout(guest: exact, imageSize: (64 << 20) - GuestLayout.minimumFree - 4096 + 1,
                            initrd: Region(base: 0, size: 0), deviceTreeSize: 4096)
        }
    }
}

@Suite struct PlanTests {
    func topology(_ guest: String = "256M") throws -> Topology {
        try TopologyLoader.load(text: """
            name = "t"
            memory = "1G"
            [[cluster]]
            cores = [0, 1, 2, 3]
            memory = "256M"
            [shared]
            channel = "1M"
            \(guest.isEmpty ? "" : "guest = \"\(guest)\"")
            """, file: "t.toml")
    }

    /// A stand-in for dtc: the plan only needs the blob's size.
    let fakeCompile: (String) throws(GuestHostError) -> [UInt8] = { _ in [UInt8](repeating: 0, count: 1500) }

    @Test func theBootInformationCarriesTheGuestAndValidates() throws {
        let kernel = try temporaryFile(imageHeader(extra: 1000))
        let initrd = try temporaryFile([UInt8](repeating: 7, count: 5000), name: "initrd")
        let plan = try GuestPlan(topology: topology(), kernel: kernel, initrd: initrd,
                                 bootArgs: GuestBootArgs(run: "true"), compile: fakeCompile)
        let image = try #require(plan.bootInfo.guestImage)
        #expect(image.kernel.base == Layout(try topology()).guest.base)
        #expect(image.initrd.size == 5000)
        #expect(image.deviceTree.size == 1500)
        try plan.bootInfo.validate()
        // The blob decodes to the same record (what the kernel will see).
        let bytes = Layout.bootInfoBytes(plan.bootInfo)
        let decoded = try bytes.withUnsafeBytes { raw in try BootInfo.decode(raw.baseAddress!, available: raw.count) }
        #expect(decoded.guestImage == image)
        #expect(plan.deviceTree.source.contains("linux,initrd-start = <0x0 0x\(String(image.initrd.base, radix: 16))>;"))
    }

    @Test func qemuCommands() throws {
        let kernel = try temporaryFile(imageHeader(extra: 1000))
        let initrd = try temporaryFile([UInt8](repeating: 7, count: 5000), name: "init,rd")
        let plan = try GuestPlan(topology: topology(), kernel: kernel, initrd: initrd,
                                 bootArgs: GuestBootArgs(run: "true"), compile: fakeCompile)
        let files = GuestPlan.Files(dtb: URL(fileURLWithPath: "/w/t.dtb"), dts: URL(fileURLWithPath: "/w/t.dts"),
                                    bootInfo: URL(fileURLWithPath: "/w/t.bin"))
        let args = plan.qemuArguments(cmkKernel: "/k/cmk-kernel", files: files, interactive: false)
        let boot = QEMUCommand(topology: try topology(), kernel: "/k/cmk-kernel", bootInfo: "/w/t.bin").arguments
        #expect(Array(args.prefix(boot.count)) == boot)
        let g = plan.layout
        #expect(args.contains("loader,file=\(kernel),addr=0x\(String(g.kernel.base, radix: 16)),force-raw=on"))
        #expect(args.contains("loader,file=\(initrd.replacing(",", with: ",,")),addr=0x\(String(g.initrd.base, radix: 16)),force-raw=on"))
        #expect(args.contains("loader,file=/w/t.dtb,addr=0x\(String(g.deviceTree.base, radix: 16)),force-raw=on"))
        #expect(args.contains("stdio"))
        let interactive = plan.qemuArguments(cmkKernel: "/k/cmk-kernel", files: files, interactive: true)
        #expect(!interactive.contains("stdio"))
        #expect(interactive.contains("stdio,id=console,mux=on,signal=off"))
        #expect(interactive.contains("chardev:console"))
        let debugged = plan.qemuArguments(cmkKernel: "/k/cmk-kernel", files: files, interactive: false,
                                          gdb: GDBStub(port: 4321))
        #expect(debugged == [args[0], "-gdb", "tcp:127.0.0.1:4321", "-S"] + args.dropFirst())

        let plain = plan.plainQEMUArguments()
        #expect(plain.contains("virt,gic-version=3"))
        #expect(!plain.contains(where: { $0.contains("virtualization=on") }))
        #expect(plain.contains(QEMUCommand.cpu))
        #expect(plain.contains("-nic"))
        #expect(plain[plain.firstIndex(of: "-smp")! + 1] == "1")
        #expect(plain[plain.firstIndex(of: "-m")! + 1] == "256M")
        #expect(plain[plain.firstIndex(of: "-append")! + 1] == plan.bootArgs)
        #expect(plan.bootArgs.hasSuffix("cmk.run=" + GuestBootArgs.encode(script: "true\n")))
    }

    /// The SMP guest: a vCPU and a NUMA node per cluster in cmk's device
    /// tree, and the same shape on plain QEMU's command line.
    @Test func smpGuestHasANodePerClusterOnBothSides() throws {
        let kernel = try temporaryFile(imageHeader(extra: 1000))
        let three = try TopologyLoader.load(text: """
            name = "three"
            memory = "1G"
            [[cluster]]
            cores = [0]
            memory = "64M"
            [[cluster]]
            cores = [1]
            memory = "64M"
            [[cluster]]
            cores = [2]
            memory = "64M"
            [shared]
            channel = "1M"
            guest = "256M"
            """, file: "three.toml")
        let plan = try GuestPlan(topology: three, kernel: kernel, initrd: nil, bootArgs: GuestBootArgs(run: "true"),
                                 compile: fakeCompile)
        #expect(plan.vcpuCount == 3 && plan.bootInfo.guestImage?.vcpuCount == 3)
        let dts = plan.deviceTree.source
        for i in 0..<3 { #expect(dts.contains("numa-node-id = <\(i)>;")) }
        #expect(dts.contains("numa-distance-map-v1"))
        // Memory slices: 2 MiB aligned, covering the guest region exactly.
        let memory = plan.deviceTree.memory.map(\.region)
        #expect(memory.count == 3 && memory.allSatisfy { $0.base % (2 << 20) == 0 })
        #expect(memory.reduce(0) { $0 + $1.size } == 256 << 20)
        let plain = plan.plainQEMUArguments()
        #expect(plain[plain.firstIndex(of: "-smp")! + 1] == "3")
        let sizes = memory.map { "\($0.size >> 20)M" }
        for i in 0..<3 {
            #expect(plain.contains("memory-backend-ram,id=ram\(i),size=\(sizes[i])"))
            #expect(plain.contains("node,nodeid=\(i),memdev=ram\(i),cpus=\(i)"))
        }
        #expect(plain.contains("dist,src=0,dst=2,val=20"))
        #expect(!plain.contains("dist,src=2,dst=0,val=20"))  // QEMU mirrors one direction
    }

    @Test func refusals() throws {
        let kernel = try temporaryFile(imageHeader(extra: 1000))
        #expect {
            try GuestPlan(topology: topology(""), kernel: kernel, initrd: nil, bootArgs: GuestBootArgs(), compile: fakeCompile)
        } throws: { ($0 as? GuestHostError)?.message.contains("no guest region") == true }
        #expect {
            try GuestPlan(topology: topology(), kernel: kernel, initrd: "/nonexistent", bootArgs: GuestBootArgs(), compile: fakeCompile)
        } throws: { ($0 as? GuestHostError)?.kind == .badInput }
        let notImage = try temporaryFile([UInt8](repeating: 0, count: 200))
        #expect {
            try GuestPlan(topology: topology(), kernel: notImage, initrd: nil, bootArgs: GuestBootArgs(), compile: fakeCompile)
        } throws: { ($0 as? GuestHostError)?.message.contains("not an arm64 Linux Image") == true }
        // 32M guest: the cloud kernel's image_size alone does not leave room.
        #expect {
            try GuestPlan(topology: topology("32M"), kernel: kernel, initrd: nil, bootArgs: GuestBootArgs(), compile: fakeCompile)
        } throws: { ($0 as? GuestHostError)?.message.contains("does not fit") == true }
    }
}
