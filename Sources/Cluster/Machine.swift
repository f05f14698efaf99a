/// Fixed facts of the machine cmk boots on (QEMU `virt`), and cmk's limits.
///
/// These are the constants both sides agree on: the host tool lays out
/// physical memory with them, the kernel checks the boot information against
/// them. Device addresses live in `Arch` (only Arch knows the hardware).
public enum Machine {
    /// Where RAM starts on QEMU virt.
    public static let ramBase: UInt64 = 0x4000_0000
    /// The boot region at the start of RAM: QEMU's DTB (at `ramBase`), the
    /// kernel image (linked at 0x4008_0000) and the boot information.
    public static let bootRegionSize: UInt64 = 16 << 20
    /// The root task's window: where the host tool loads the EL0 root task's
    /// file image (QEMU `-device loader`, raw), below the boot information.
    /// Every cluster maps it read-only; each kernel copies the image into
    /// its own frames (docs/boot.md, "The root task").
    public static let rootTaskAddress: UInt64 = ramBase + (12 << 20)
    public static let rootTaskWindowSize: UInt64 = 3 << 20
    /// Where the host tool loads the boot information (QEMU `-device loader`).
    public static let bootInfoAddress: UInt64 = ramBase + (15 << 20)
    /// The largest boot information blob the kernel accepts.
    public static let bootInfoMaxSize: UInt64 = 1 << 20
    /// Every region (partition, channel, guest) starts on a 2 MiB boundary, so
    /// the kernel can map it with level-2 blocks.
    public static let regionAlignment: UInt64 = 2 << 20
    /// A partition's size is a multiple of this too.
    public static let partitionGranule: UInt64 = 2 << 20
    /// Smallest partition: the private image, per-core stacks and tables for
    /// up to `maxCores` cores fit with room to spare (PartitionLayout checks).
    public static let minPartitionSize: UInt64 = 4 << 20
    /// The shared regions are mapped with 4 KiB pages where needed.
    public static let pageSize: UInt64 = 4096
    /// Smallest channel region: the control page plus room for rings.
    public static let minChannelSize: UInt64 = 64 << 10
    /// The boot identity map covers this much RAM (ArchConstants.h,
    /// CMK_BOOT_RAM_GIB): the machine's memory may not exceed it.
    public static let maxRAM: UInt64 = 8 << 30
    /// Core ids are bits of a 64-bit mask in the boot information.
    public static let maxCores = 64
    /// QEMU virt with GICv3 accepts up to 512 CPUs; cmk's limit is lower.
    public static let qemuMaxCores = 512
    /// Every cluster's private kernel area (data, bss, records, stacks,
    /// tables) is linked at this virtual address (qemu/kernel.ld,
    /// PRIVATE_BASE) and mapped to the start of its own partition. It sits
    /// below RAM, within the +-4 GiB reach of the image's PC-relative code.
    public static let privateBase: UInt64 = 0x2000_0000
    /// The private window ends where RAM (and the identity map) begins.
    public static let privateWindowSize: UInt64 = 0x2000_0000
}
