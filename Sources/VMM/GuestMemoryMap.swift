/// The guest's intermediate-physical address map, laid out as QEMU virt lays
/// out its machine, so that the guest's device tree can copy QEMU's values:
///
/// | IPA                   | size               | what |
/// |-----------------------|--------------------|------|
/// | 0x0800_0000           | 64 KiB             | GICv3 distributor |
/// | 0x080A_0000           | 128 KiB per vCPU   | GICv3 redistributors (RD_base + SGI_base), vCPU order |
/// | 0x0900_0000           | 4 KiB              | PL011 (SPI 1 = INTID 33) |
/// | `ramBase`             | `ramSize`          | RAM (mapped in stage 2; aborts there are not device accesses) |
///
/// Nothing but RAM is mapped in stage 2, so every other IPA a guest touches
/// comes here through a data abort. Classification is by half-open ranges;
/// RAM is checked first, and `init` refuses RAM that overlaps a device.
public struct GuestMemoryMap: Equatable, Sendable {
    public static var distributorBase: UInt64 { 0x0800_0000 }
    public static var distributorSize: UInt64 { 0x1_0000 }
    public static var redistributorBase: UInt64 { 0x080A_0000 }
    /// One redistributor: RD_base frame + SGI_base frame, 64 KiB each.
    public static var redistributorStride: UInt64 { 0x2_0000 }
    public static var uartBase: UInt64 { 0x0900_0000 }
    public static var uartSize: UInt64 { 0x1000 }
    /// The UART's interrupt: SPI 1, INTID 33 (device tree: `<0 1 4>`).
    public static var uartInterruptID: UInt32 { 33 }
    /// QEMU virt reserves 0x080A_0000..0x0900_0000 for redistributors
    /// (123 of them); more vCPUs than this would run into the UART.
    public static var maxVCPUs: Int { 64 }

    public let ramBase: UInt64
    public let ramSize: UInt64
    /// Invariant: 1...maxVCPUs; the redistributor region is
    /// `vcpus * redistributorStride` bytes.
    public let vcpus: Int

    /// Nil when `vcpus` is out of range, RAM is empty, wraps, or overlaps a
    /// device region.
    public init?(ramBase: UInt64, ramSize: UInt64, vcpus: Int) {
        guard vcpus >= 1 && vcpus <= Self.maxVCPUs, ramSize > 0,
              ramBase <= UInt64.max - (ramSize - 1) else { return nil }
        self.ramBase = ramBase
        self.ramSize = ramSize
        self.vcpus = vcpus
        if overlapsRAM(Self.distributorBase, Self.distributorSize)
            || overlapsRAM(Self.redistributorBase, redistributorRegionSize)
            || overlapsRAM(Self.uartBase, Self.uartSize) {
            return nil
        }
    }

    /// Bytes of redistributor frames this guest has.
    public var redistributorRegionSize: UInt64 { UInt64(vcpus) * Self.redistributorStride }

    public enum Region: Equatable, Sendable {
        /// Guest RAM, at this offset from `ramBase`.
        case ram(offset: UInt64)
        case gicDistributor(offset: UInt64)
        /// vCPU `vcpu`'s redistributor; `offset` is within its 128 KiB pair
        /// (0..<0x10000 RD_base, 0x10000..<0x20000 SGI_base).
        case gicRedistributor(vcpu: Int, offset: UInt64)
        case uart(offset: UInt64)
        case unmapped
    }

    public func classify(_ ipa: UInt64) -> Region {
        if ipa >= ramBase && ipa - ramBase < ramSize {
            return .ram(offset: ipa - ramBase)
        }
        if ipa >= Self.distributorBase && ipa - Self.distributorBase < Self.distributorSize {
            return .gicDistributor(offset: ipa - Self.distributorBase)
        }
        if ipa >= Self.redistributorBase && ipa - Self.redistributorBase < redistributorRegionSize {
            let offset = ipa - Self.redistributorBase
            return .gicRedistributor(vcpu: Int(offset / Self.redistributorStride),
                                     offset: offset % Self.redistributorStride)
        }
        if ipa >= Self.uartBase && ipa - Self.uartBase < Self.uartSize {
            return .uart(offset: ipa - Self.uartBase)
        }
        return .unmapped
    }

    /// Whether [base, base + size) meets RAM (both non-empty; compared by
    /// last byte so that RAM ending at the top of the address space is fine).
    private func overlapsRAM(_ base: UInt64, _ size: UInt64) -> Bool {
        let ramLast = ramBase + (ramSize - 1)
        let last = base + (size - 1)
        return base <= ramLast && ramBase <= last
    }
}
