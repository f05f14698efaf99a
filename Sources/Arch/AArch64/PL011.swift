import ArchAsm

/// The PL011 UART: transmit only, polled. QEMU's firmware-less boot leaves it
/// enabled at its reset configuration, which is all the console needs.
public enum PL011 {
    static let data: UInt64 = 0x00
    static let flags: UInt64 = 0x18
    static let transmitFull: UInt32 = 1 << 5

    public static func write(_ byte: UInt8) {
        while cmk_mmio_read32(QemuVirt.uart + flags) & transmitFull != 0 {}
        cmk_mmio_write32(QemuVirt.uart + data, UInt32(byte))
    }
}
