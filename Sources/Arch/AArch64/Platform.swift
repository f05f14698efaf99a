/// The QEMU `virt` board's devices that cmk uses (checked against the DTB
/// QEMU 7.2 generates for `-M virt,virtualization=on,gic-version=3`).
public enum QemuVirt {
    /// GICv3 distributor.
    public static let gicDistributor: UInt64 = 0x0800_0000
    /// First GICv3 redistributor; one 128 KiB frame pair per core.
    public static let gicRedistributors: UInt64 = 0x080A_0000
    /// PL011 UART (the console).
    public static let uart: UInt64 = 0x0900_0000
    /// The UART's interrupt: SPI 1.
    public static let uartInterrupt: UInt64 = 33
    /// Every cluster maps this window as device memory: the GIC and the UART.
    public static let deviceWindowBase: UInt64 = 0x0800_0000
    public static let deviceWindowSize: UInt64 = 0x0200_0000
}

extension QemuVirt {
    /// The MPIDR affinity QEMU virt gives CPU `index` with GICv3: Aff0 counts
    /// within groups of 16 (the GICv3 target-list width), Aff1 counts groups.
    public static func mpidr(ofCore index: Int) -> UInt64 {
        (UInt64(index / 16) << 8) | UInt64(index % 16)
    }
}
