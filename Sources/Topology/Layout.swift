import Cluster

/// The physical memory map of a topology on QEMU virt: where every region
/// goes. The host decides it (here) and the kernel is told (BootInfo); the
/// kernel re-checks it but never computes it.
///
///     ramBase                         boot region (16M): DTB, kernel image,
///                                     boot information
///     ramBase + 16M                   cluster 0 partition, cluster 1, ...
///     next 2M boundary                shared channel region
///     next 2M boundary                shared guest region (if any)
///     ...                             unused up to ramBase + memory
public struct Layout: Equatable {
    public var ram: Region
    public var bootRegion: Region
    public var partitions: [Region]
    public var channel: Region
    public var guest: Region

    public init(_ topology: Topology) {
        ram = Region(base: Machine.ramBase, size: topology.memory)
        bootRegion = Region(base: Machine.ramBase, size: Machine.bootRegionSize)
        var cursor = bootRegion.end
        partitions = topology.clusters.map { spec in
            defer { cursor = Layout.align(cursor + spec.memory) }
            return Region(base: cursor, size: spec.memory)
        }
        channel = Region(base: cursor, size: topology.channel)
        cursor = Layout.align(cursor + topology.channel)
        guest = Region(base: topology.guest == 0 ? 0 : cursor, size: topology.guest)
    }

    static func align(_ x: UInt64) -> UInt64 {
        (x + Machine.regionAlignment - 1) & ~(Machine.regionAlignment - 1)
    }

    /// RAM needed from its base to the end of the last region.
    public static func bytesNeeded(partitions: [UInt64], channel: UInt64, guest: UInt64) -> UInt64 {
        var total = Machine.bootRegionSize
        for p in partitions { total = align(total + p) }
        total = align(total + channel)
        return total + guest
    }

    /// The boot information for this layout.
    public static func bootInfo(
        _ topology: Topology, inject: UInt64 = FaultInjection.none, experiment: ExperimentRequest? = nil
    ) -> BootInfo {
        let layout = Layout(topology)
        var table = ClusterTable()
        for (i, spec) in topology.clusters.enumerated() {
            table.append(ClusterDescriptor(
                partition: layout.partitions[i],
                coreMask: spec.cores.reduce(0) { $0 | (1 << UInt64($1)) }))
        }
        var info = BootInfo(
            ramBase: Machine.ramBase, ramSize: topology.memory, bootRegionSize: Machine.bootRegionSize,
            channel: layout.channel, guest: layout.guest,
            lockKind: topology.lock.rawValue,
            coreCount: topology.coreCount, clusters: table)
        info.inject = inject
        info.experiment = experiment
        return info
    }

    /// The encoded blob QEMU loads at `Machine.bootInfoAddress`.
    public static func bootInfoBytes(_ info: BootInfo) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(info.byteCount)
        info.encodedWords { _, word in
            for i in 0..<8 { bytes.append(UInt8((word >> UInt64(i * 8)) & 0xff)) }
        }
        return bytes
    }
}

/// The EL0 root task as QEMU loads it: the raw file image (`path`) and the
/// boot information's record for it.
public struct RootTaskFile: Equatable, Sendable {
    public var path: String
    public var image: RootTaskImage
    public init(path: String, image: RootTaskImage) {
        self.path = path
        self.image = image
    }
}

/// How `cmk boot` runs QEMU for a topology.
public struct QEMUCommand: Equatable {
    public static let binary = "qemu-system-aarch64"
    public static let machine = "virt,virtualization=on,gic-version=3"
    /// `pauth-impdef=on`: QEMU's default pointer-authentication algorithm is
    /// slow to emulate; the implementation-defined one is not.
    /// `sve=off,sme=off`: a guest would otherwise find SVE and SME in its ID
    /// registers, and the kernel's Swift code at EL2 (which uses the FP/SIMD
    /// registers, the low halves of the SVE Z registers) would have to save
    /// and restore the whole scalable state on every exit (docs/guest.md).
    public static let cpu = "max,pauth-impdef=on,sve=off,sme=off"

    public var arguments: [String]

    /// How QEMU's TCG runs the vCPUs.
    public enum Threading: String, CaseIterable, Sendable {
        /// All vCPUs on one host thread, interleaved. The default: with more
        /// vCPUs than host CPUs, multi-threaded TCG lets the host deschedule
        /// a vCPU that was just handed a FIFO lock (ticket, MCS, CLH) and every
        /// other core waits for it; measured on a 2-CPU host, 1 cluster of 8
        /// cores with an MCS lock: 2 boots in 6 stalled for 20 s with
        /// `thread=multi`, none with `thread=single` (0.07 s each).
        case single
        /// One host thread per vCPU: real parallelism, for hosts with at
        /// least as many free CPUs as the topology has cores.
        case multi
    }

    public init(
        topology: Topology, kernel: String, bootInfo: String, threading: Threading = .single, icount: Bool = false,
        rootTask: RootTaskFile? = nil
    ) {
        arguments = [
            Self.binary,
            "-accel", "tcg,thread=\(threading.rawValue)",
            "-M", Self.machine,
            "-cpu", Self.cpu,
            "-smp", "\(topology.coreCount)",
            "-m", "\(topology.memory >> 20)M",
            "-display", "none", "-monitor", "none", "-serial", "stdio",
            "-nic", "none",  // virt's default NIC wants a ROM file cmk does not need
            "-no-reboot",
            "-semihosting-config", "enable=on,target=native",
            "-kernel", kernel,
            "-device", "loader,file=\(bootInfo),addr=0x\(String(Machine.bootInfoAddress, radix: 16)),force-raw=on",
        ]
        // The root task's file image in its window (the boot information's
        // root-task record says where and how large).
        if let rootTask {
            arguments += [
                "-device",
                "loader,file=\(rootTask.path),addr=0x\(String(rootTask.image.physicalAddress, radix: 16)),force-raw=on",
            ]
        }
        // One virtual nanosecond per instruction: deterministic counts
        // (needs single-threaded TCG).
        if icount { arguments.insert(contentsOf: ["-icount", "shift=0"], at: 1) }
    }

    /// The command as a shell line (arguments quoted where needed).
    public var shellLine: String {
        arguments.map(shellQuoted).joined(separator: " ")
    }
}
