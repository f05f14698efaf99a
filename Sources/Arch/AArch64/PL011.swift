import ArchAsm

/// The PL011 UART: transmit polled; receive for a guest's console. QEMU's firmware-less boot leaves it
/// enabled at its reset configuration, which is all the console needs.
public enum PL011 {
    static let data: UInt64 = 0x00
    static let flags: UInt64 = 0x18
    static let transmitFull: UInt32 = 1 << 5

    static let receiveEmpty: UInt32 = 1 << 4
    static let interruptMask: UInt64 = 0x38
    /// IMSC: receive (RXIM) and receive timeout (RTIM).
    static let receiveInterrupts: UInt32 = (1 << 4) | (1 << 6)

    public static func write(_ byte: UInt8) {
        while cmk_mmio_read32(QemuVirt.uart + flags) & transmitFull != 0 {}
        cmk_mmio_write32(QemuVirt.uart + data, UInt32(byte))
    }

    /// The interrupt line rises while received bytes wait (for a guest's
    /// console input: docs/guest.md).
    public static func enableReceiveInterrupt() {
        cmk_mmio_write32(QemuVirt.uart + interruptMask, receiveInterrupts)
    }

    /// A received byte, or nil when the receive FIFO is empty. Reading the
    /// last byte lowers the receive interrupt.
    public static func read() -> UInt8? {
        if cmk_mmio_read32(QemuVirt.uart + flags) & receiveEmpty != 0 { return nil }
        return UInt8(truncatingIfNeeded: cmk_mmio_read32(QemuVirt.uart + data))
    }
}
