import Cluster
import VMM

/// The machine a Linux guest of cmk sees: devices at the intermediate
/// physical addresses the kernel's VMM emulates (docs/guest.md), the same as
/// QEMU virt's, so the plain-QEMU reference of `cmk bench guest` boots the
/// same kernel command line. Nothing of RAM but the topology's guest region.
///
/// The device addresses are the VMM's (`VMM.GuestMemoryMap`, what the
/// kernel emulates): the guest's device tree (`GuestDeviceTree`) is
/// generated from them, so the two cannot disagree.
public enum GuestMachine {
    /// GICv3 distributor (emulated).
    public static let gicDistributor = GuestMemoryMap.distributorBase
    public static let gicDistributorSize = GuestMemoryMap.distributorSize
    /// First GICv3 redistributor; one RD + SGI frame pair (128 KiB) per vCPU.
    public static let gicRedistributors = GuestMemoryMap.redistributorBase
    public static let gicRedistributorStride = GuestMemoryMap.redistributorStride
    /// The guest's PL011 console (emulated; cmk keeps the real UART).
    public static let uart = GuestMemoryMap.uartBase
    public static let uartSize = GuestMemoryMap.uartSize
    /// The PL011's interrupt: SPI 1 (INTID 33), level-high.
    public static let uartSPI = Int(GuestMemoryMap.uartInterruptID) - 32
    /// The PL011's reference clock (QEMU virt's `apb-pclk`).
    public static let uartClockHz = 24_000_000
    /// Generic timer PPIs in device-tree order: secure physical, non-secure
    /// physical, virtual, hypervisor physical (INTIDs 29, 30, 27, 26).
    public static let timerPPIs = [13, 14, 11, 10]
    /// Linux's arm64 command-line buffer (COMMAND_LINE_SIZE), with its NUL.
    public static let commandLineSize = 2048

    /// The MPIDR of vCPU `index` as the guest sees it (VMPIDR_EL2, the cpu
    /// node's `reg`, GICR_TYPER's affinity): the VMM's one definition.
    public static func mpidr(ofVCPU index: Int) -> UInt64 {
        GuestPSCI.affinity(ofVCPU: index)
    }
}

/// Why `cmk guest` or `cmk bench guest` cannot go on, with its exit status
/// (docs/guest.md: 2 bad input, 4 environment).
public struct GuestHostError: Error, Equatable, CustomStringConvertible {
    public enum Kind: Equatable, Sendable {
        /// A file or option the user gave is wrong (exit status 2).
        case badInput
        /// Something the tool needs is missing or broken (exit status 4).
        case environment
    }
    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public static func badInput(_ message: String) -> Self { Self(.badInput, message) }
    public static func environment(_ message: String) -> Self { Self(.environment, message) }

    public var status: GuestStatus { kind == .badInput ? .badInput : .environment }
    public var description: String { message }
}

/// Exit statuses of `cmk guest` (docs/guest.md): `cmk boot`'s table plus one
/// for a guest that failed while cmk kept running.
public enum GuestStatus: Int32, Sendable, CaseIterable {
    /// The guest powered off (`cmk: guest power off`) and QEMU exited 0.
    case ok = 0
    /// cmk failed: a kernel panic or exception, an incomplete boot, QEMU
    /// exiting without the guest's power-off.
    case kernelFailure = 1
    /// Bad input: topology, kernel Image, initramfs, options.
    case badInput = 2
    /// The timeout: QEMU was killed.
    case timeout = 3
    /// Environment: QEMU, dtc or the default guest missing; build failed.
    case environment = 4
    /// The guest failed: a guest kernel panic or a guest reset.
    case guestFailure = 5
    /// Interrupted (SIGINT, SIGTERM, SIGHUP): QEMU was stopped.
    case interrupted = 130
}
