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
    /// The window the devices cmk uses lie in (the GIC and the UART; also the
    /// GIC ITS, fw_cfg, the RTC and GPIO, which cmk never maps).
    public static let deviceWindowBase: UInt64 = 0x0800_0000
    public static let deviceWindowSize: UInt64 = 0x0200_0000
    /// The distributor's 64 KiB frame.
    public static let gicDistributorSize: UInt64 = 0x1_0000
    /// One core's redistributor: RD_base and SGI_base frames, 64 KiB each.
    public static let gicRedistributorSize: UInt64 = 0x2_0000
    /// QEMU virt's first redistributor region (0x080A0000-0x09000000) holds
    /// this many cores; cmk's 64 cores fit in it.
    public static let gicRedistributorRegionCores = 123
    /// The PL011's register page.
    public static let uartSize: UInt64 = 0x1000

    /// The redistributor of CPU `index` (frames in CPU order on QEMU virt).
    public static func redistributor(ofCore index: Int) -> UInt64 {
        gicRedistributors + UInt64(index) * gicRedistributorSize
    }

    /// Whether a cluster whose cores are `coreMask` may map the device range
    /// [base, base + size): the UART page (every cluster writes the console),
    /// its own cores' redistributors, and the distributor if it owns it (the
    /// cluster that routes the UART's interrupt to the guest). Nothing else:
    /// no other core's redistributor (it could disable that core's doorbell
    /// or timer), and no device that can write memory by DMA (the GIC ITS at
    /// 0x08080000 writes its tables to RAM, fw_cfg's DMA interface at
    /// 0x09020000, virtio-mmio at 0x0a000000). The loader maps exactly these
    /// ranges and its isolation walk asks this of every device leaf.
    public static func clusterMayMapDevice(base: UInt64, size: UInt64, coreMask: UInt64, ownsDistributor: Bool) -> Bool {
        guard size > 0, base <= ~size else { return false }
        func inside(_ start: UInt64, _ length: UInt64) -> Bool { base >= start && base + size <= start + length }
        if inside(uart, uartSize) { return true }
        if ownsDistributor && inside(gicDistributor, gicDistributorSize) { return true }
        var cores = coreMask
        while cores != 0 {
            let core = cores.trailingZeroBitCount
            cores &= cores - 1
            if core < gicRedistributorRegionCores && inside(redistributor(ofCore: core), gicRedistributorSize) { return true }
        }
        return false
    }
}

extension QemuVirt {
    /// The MPIDR affinity QEMU virt gives CPU `index` with GICv3: Aff0 counts
    /// within groups of 16 (the GICv3 target-list width), Aff1 counts groups.
    public static func mpidr(ofCore index: Int) -> UInt64 {
        (UInt64(index / 16) << 8) | UInt64(index % 16)
    }
}
