import Cluster
import Foundation
import Topology
import VMM

/// Everything `cmk guest` decides before QEMU starts, from the topology, the
/// kernel Image, the initramfs and the options: the command line, the device
/// tree, where each blob goes, the boot information with its guest record,
/// and the QEMU command lines (under cmk, and plain QEMU for the benchmark).
public struct GuestPlan {
    public var topology: Topology
    public var kernelPath: String
    public var initrdPath: String?
    public var header: ArmImageHeader
    public var bootArgs: String
    public var deviceTree: GuestDeviceTree
    public var dtb: [UInt8]
    public var layout: GuestLayout
    public var bootInfo: BootInfo
    /// Where each vCPU runs (the topology's `[guest] vcpus`): one per
    /// cluster or one per core, one NUMA node per cluster either way.
    public var vcpuMap: GuestVCPUMap
    /// vCPUs of the guest: the clusters (`.cluster`) or the cores (`.core`).
    public var vcpuCount: Int { vcpuMap.vcpuCount }
    public var placement: GuestImage.Placement { vcpuMap.placement }

    /// `compile` turns .dts text into a blob (`GuestDeviceTree.compile`;
    /// tests may pass a stand-in).
    public init(
        topology: Topology, kernel: String, initrd: String?, bootArgs: GuestBootArgs,
        rngSeed: [UInt8]? = nil,
        compile: (String) throws(GuestHostError) -> [UInt8] = { s throws(GuestHostError) in try GuestDeviceTree.compile(s) }
    ) throws(GuestHostError) {
        self.topology = topology
        kernelPath = kernel
        initrdPath = initrd
        vcpuMap = try Self.vcpuMap(topology)
        let guest = Layout(topology).guest
        guard guest.size != 0 else {
            throw .badInput("topology `\(topology.name)` has no guest region: add `guest = \"256M\"` under [shared]")
        }
        header = try ArmImageHeader.read(path: kernel).header
        var initrdSize: UInt64 = 0
        if let initrd {
            guard let attributes = try? FileManager.default.attributesOfItem(atPath: initrd),
                let size = (attributes[.size] as? NSNumber)?.uint64Value, FileManager.default.isReadableFile(atPath: initrd)
            else { throw .badInput("cannot read the initramfs \(initrd)") }
            guard size > 0 else { throw .badInput("the initramfs \(initrd) is empty") }
            initrdSize = size
        }
        let initrdRegion = try GuestLayout.initrd(size: initrdSize, guest: guest)
        self.bootArgs = try bootArgs.line()
        deviceTree = GuestDeviceTree(map: vcpuMap, guest: guest, bootArgs: self.bootArgs, initrd: initrdRegion, rngSeed: rngSeed)
        dtb = try compile(deviceTree.source)
        layout = try GuestLayout(guest: guest, imageSize: header.imageSize, initrd: initrdRegion,
                                 deviceTreeSize: UInt64(dtb.count))
        bootInfo = Layout.bootInfo(topology)
        bootInfo.guestImage = layout.image(placement: vcpuMap.placement, vcpuCount: vcpuMap.vcpuCount)
        do {
            try bootInfo.validate()
        } catch {
            throw .badInput("the boot information with this guest is invalid: \(error.message) (a bug in GuestLayout)")
        }
    }

    /// "8 vCPUs, one per core, in 2 NUMA nodes" (the progress lines).
    public var vcpuDescription: String {
        let n = vcpuCount == 1 ? "1 vCPU" : "\(vcpuCount) vCPUs"
        guard vcpuMap.clusterCount > 1 else { return n }
        return "\(n), one per \(placement.topologyName), in \(vcpuMap.clusterCount) NUMA nodes"
    }

    /// "guest vCPUs: 8 (one per core), NUMA node 0: vCPUs 0-3 on cluster 0,
    /// node 1: vCPUs 4-7 on cluster 1" (`--print-command`).
    public var vcpuPlacementLine: String {
        func range(_ r: Range<Int>) -> String { r.count == 1 ? "vCPU \(r.lowerBound)" : "vCPUs \(r.lowerBound)-\(r.upperBound - 1)" }
        let where_ = (0..<vcpuMap.clusterCount).compactMap { c -> String? in
            let r = vcpuMap.vcpus(inCluster: c)
            guard !r.isEmpty else { return nil }
            return vcpuMap.clusterCount > 1 ? "NUMA node \(c): \(range(r)) on cluster \(c)" : "\(range(r)) on cluster \(c), no NUMA"
        }
        return "guest vCPUs: \(vcpuCount) (one per \(placement.topologyName)); " + where_.joined(separator: "; ")
    }

    /// The topology's vCPU map (`GuestVCPUMap`, the kernel's own definition).
    public static func vcpuMap(_ topology: Topology) throws(GuestHostError) -> GuestVCPUMap {
        let placement = topology.guestPlacement
        let cores = { (c: Int) in topology.clusters[c].cores.count }
        let count = GuestVCPUMap.vcpuCount(placement: placement, clusterCount: topology.clusters.count, coresIn: cores)
        guard count <= GuestMemoryMap.maxVCPUs,
            let map = GuestVCPUMap(placement: placement, vcpuCount: count, clusterCount: topology.clusters.count, coresIn: cores)
        else {
            throw .badInput("topology `\(topology.name)`: \(count) vCPUs (`[guest] vcpus = \"\(placement.topologyName)\"`) on \(topology.clusters.count) clusters is more than the guest supports (at most \(GuestMemoryMap.maxVCPUs) vCPUs and \(GuestVCPUMap.maxClusters) clusters)")
        }
        return map
    }

    /// The files QEMU loads besides the kernel Image and the initramfs.
    public struct Files: Sendable {
        public var dtb: URL
        public var dts: URL
        public var bootInfo: URL
    }

    /// Write the device tree (and its source, for debugging) and the boot
    /// information (with the root task's record, if any) into `directory`,
    /// each whole or not at all.
    public func write(to directory: URL, rootTask: RootTaskFile? = nil) throws(GuestHostError) -> Files {
        var bootInfo = bootInfo
        bootInfo.rootTask = rootTask?.image
        // The root task's fuzzer is a test of the kernel (`cmk boot`), not
        // part of running a guest: its thousands of calls would delay the
        // guest's boot (on 4x2, from 1.25x plain QEMU to 1.48x).
        bootInfo.rootTask?.fuzzCalls = 0
        let files = Files(
            dtb: directory.appendingPathComponent("\(topology.name).dtb"),
            dts: directory.appendingPathComponent("\(topology.name).dts"),
            bootInfo: directory.appendingPathComponent("\(topology.name).bootinfo.bin"))
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try Data(dtb).write(to: files.dtb, options: .atomic)
            try Data(deviceTree.source.utf8).write(to: files.dts, options: .atomic)
            try Data(Layout.bootInfoBytes(bootInfo)).write(to: files.bootInfo, options: .atomic)
        } catch {
            throw .environment("cannot write the guest's files in \(directory.path): \(error.localizedDescription)")
        }
        return files
    }

    /// QEMU's `-device loader` for a raw file at an address. A comma in a
    /// QEMU option value is written twice.
    static func loader(_ path: String, at address: UInt64) -> [String] {
        ["-device", "loader,file=\(path.replacing(",", with: ",,")),addr=0x\(String(address, radix: 16)),force-raw=on"]
    }

    /// The console chardev of an interactive session: Ctrl-C goes to the
    /// guest (signal=off), Ctrl-A x still stops QEMU (mux).
    public static let interactiveConsole = ["-chardev", "stdio,id=console,mux=on,signal=off", "-serial", "chardev:console"]

    /// QEMU under cmk: `cmk boot`'s command for the topology plus the guest's
    /// Image, initramfs and device tree loaded at their places; with `gdb`,
    /// QEMU's gdbstub, stopped before the first instruction.
    public func qemuArguments(
        cmkKernel: String, files: Files, interactive: Bool, gdb: GDBStub? = nil, rootTask: RootTaskFile? = nil
    ) -> [String] {
        var command = QEMUCommand(topology: topology, kernel: cmkKernel, bootInfo: files.bootInfo.path, rootTask: rootTask)
        if let gdb { command.add(gdb) }
        var arguments = command.arguments
        if interactive, let i = arguments.firstIndex(of: "-serial"), i + 1 < arguments.count, arguments[i + 1] == "stdio" {
            arguments.replaceSubrange(i...(i + 1), with: Self.interactiveConsole)
        }
        arguments += Self.loader(kernelPath, at: layout.kernel.base)
        if let initrdPath { arguments += Self.loader(initrdPath, at: layout.initrd.base) }
        arguments += Self.loader(files.dtb.path, at: layout.deviceTree.base)
        return arguments
    }

    /// The reference of `cmk bench guest`: the same Image, initramfs,
    /// command line, vCPU count and guest memory size under plain QEMU, Linux
    /// at EL1 on QEMU's own device tree, same CPU model and TCG threading,
    /// and the same NUMA shape as cmk's guest (a node per cluster with that
    /// cluster's vCPUs, the same memory slices and distances), so both
    /// kernels do the same work.
    public func plainQEMUArguments() -> [String] {
        var arguments = [
            QEMUCommand.binary,
            "-accel", "tcg,thread=\(QEMUCommand.Threading.single.rawValue)",
            "-M", "virt,gic-version=3",
            "-cpu", QEMUCommand.cpu,
            "-smp", "\(vcpuCount)",
            "-m", "\(layout.guest.size >> 20)M",
            "-display", "none", "-monitor", "none", "-serial", "stdio",
            "-nic", "none",
            "-no-reboot",
            "-kernel", kernelPath,
        ]
        if let initrdPath { arguments += ["-initrd", initrdPath] }
        arguments += ["-append", bootArgs]
        arguments += plainNUMAArguments()
        return arguments
    }

    /// `-object memory-backend-ram` and `-numa` for each of the device tree's
    /// memory nodes (none for a guest without NUMA).
    func plainNUMAArguments() -> [String] {
        guard let distances = deviceTree.distances else { return [] }
        var arguments: [String] = []
        for (i, m) in deviceTree.memory.enumerated() {
            let node = m.numaNode ?? i
            let cpus = deviceTree.vcpus.filter { $0.numaNode == node }.map { "\($0.index)" }
            arguments += ["-object", "memory-backend-ram,id=ram\(node),size=\(m.region.size >> 20)M"]
            arguments += ["-numa", "node,nodeid=\(node),memdev=ram\(node)" + cpus.map { ",cpus=\($0)" }.joined()]
        }
        for (i, row) in distances.enumerated() {
            for (j, d) in row.enumerated() where i < j {
                arguments += ["-numa", "dist,src=\(i),dst=\(j),val=\(d)"]
            }
        }
        return arguments
    }
}
