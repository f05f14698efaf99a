import ArchAsm

public enum PL011 {
    public static let base: UInt64 = 0x0900_0000
    public static func put(_ byte: UInt8) {
        while cmk_mmio_read32(base + 0x18) & (1 << 5) != 0 {}
        cmk_mmio_write32(base, UInt32(byte))
    }
}
