/// The guest's PL011 UART (QEMU virt: 0x09000000, 4 KiB, SPI 33), emulated.
///
/// Named `VirtualPL011` so as not to clash with `Arch.PL011`, the kernel's own
/// polled driver for the real device.
///
/// What the guest sees is a PL011 r1p5 as QEMU's `pl011` model reports it
/// (PeriphID 0x00141011, PCellID 0xB105F00D: Linux's AMBA bus matches
/// "arm,pl011" on `0x00041011` under mask `0x000fffff`), whose transmitter is
/// infinitely fast: every byte written to DR lands at once in `output`, which
/// the kernel drains after each exit.
///
/// Registers are 32 bits wide at word offsets. Accepted accesses: 1, 2 or 4
/// bytes, at the register's own offset (so naturally aligned; Linux's driver
/// uses 16-bit accesses for the ARM variant, earlycon 8- or 32-bit ones, the
/// AMBA probe 32-bit reads of the ID registers). A narrower access sees the
/// low bytes of the register; a narrower write writes them and zeroes the
/// rest (an APB bus has no byte strobes). Refused (`.refused`, the kernel
/// injects an external abort): 8-byte accesses, accesses that do not start at
/// a register, unknown offsets, writes to FR, RIS, MIS and the ID registers,
/// and reads of ICR.
///
/// Not modelled, as in QEMU: the baud rate (IBRD/FBRD/LCR_H are storage),
/// loopback, modem lines (FR's CTS/DSR/DCD/RI read 0), break, parity and
/// framing errors, DMA (DMACR is storage), CR's UARTEN/TXE/RXE (transmit and
/// receive work whatever they say, so early output is never lost).
///
/// ## Interrupts: why the guest never waits for one that never comes
///
/// Raw interrupt status (RIS) bits, and where each comes from:
/// - RX (bit 4): level, the receive FIFO holds at least the IFLS trigger
///   level (1/8, 1/4, 1/2, 3/4 or 7/8 of the 32 entries).
/// - RT, receive timeout (bit 6): level, the receive FIFO is not empty. A real
///   UART raises it after 32 idle bit times; here a single typed character
///   raises it at once, which is what an interactive console needs.
/// - TX (bit 5): level, always set. The transmit FIFO is always empty, so it
///   is always "at or below its trigger level".
/// - OE, overrun (bit 10): latched when `receive` drops a byte because the
///   FIFO is full; cleared by ICR (write 1 to clear).
/// RX and RT fall when the guest reads the FIFO down; TX never falls. ICR only
/// clears latched bits (Linux's handler never writes ICR's RX, RT or TX
/// bits: it drains the FIFO and masks TXIM instead).
///
/// Linux's pl011 driver starts transmission in `pl011_start_tx` ->
/// `pl011_tx_chars(from_irq: false)`: it writes DR until FR.TXFF is set or its
/// buffer is empty, and unmasks TXIM only if characters remain, relying on the
/// hardware to raise TXRIS once the FIFO drains. On a real PL011 that
/// interrupt is an edge (the FIFO level crossing the trigger level): a model
/// that latched TX on writes, or never raised it, would leave the guest
/// waiting forever with output queued. Here TXFF is never set, so start_tx
/// sends its whole buffer without needing an interrupt; and if the driver
/// does unmask TXIM (an x_char, or more output queued while it ran), TXRIS is
/// already high, so the interrupt arrives at once and the handler's
/// `pl011_tx_chars(from_irq: true)` sends up to half a FIFO per pass and
/// masks TXIM (`pl011_stop_tx`) when its buffer is empty. A level that is
/// always high cannot be missed, and cannot storm because the driver masks it.
public struct VirtualPL011: Sendable {
    // MARK: Register offsets and bits (PL011 TRM, DDI 0183G, 3.2)

    public enum Offset {
        public static var dr: UInt64 { 0x000 }
        public static var rsrEcr: UInt64 { 0x004 }
        public static var fr: UInt64 { 0x018 }
        public static var ilpr: UInt64 { 0x020 }
        public static var ibrd: UInt64 { 0x024 }
        public static var fbrd: UInt64 { 0x028 }
        public static var lcrH: UInt64 { 0x02C }
        public static var cr: UInt64 { 0x030 }
        public static var ifls: UInt64 { 0x034 }
        public static var imsc: UInt64 { 0x038 }
        public static var ris: UInt64 { 0x03C }
        public static var mis: UInt64 { 0x040 }
        public static var icr: UInt64 { 0x044 }
        public static var dmacr: UInt64 { 0x048 }
        /// PeriphID0-3 at 0xFE0-0xFEC, PCellID0-3 at 0xFF0-0xFFC.
        public static var periphID0: UInt64 { 0xFE0 }
    }

    /// Flag register bits.
    public enum Flag {
        public static var busy: UInt32 { 1 << 3 }
        public static var receiveEmpty: UInt32 { 1 << 4 }
        public static var transmitFull: UInt32 { 1 << 5 }
        public static var receiveFull: UInt32 { 1 << 6 }
        public static var transmitEmpty: UInt32 { 1 << 7 }
    }

    /// Interrupt bits, the same in IMSC, RIS, MIS and ICR.
    public enum Interrupt {
        public static var receive: UInt32 { 1 << 4 }
        public static var transmit: UInt32 { 1 << 5 }
        public static var receiveTimeout: UInt32 { 1 << 6 }
        public static var overrun: UInt32 { 1 << 10 }
        /// Every defined bit (RIMIM..OEIM, bits 0-10).
        public static var all: UInt32 { 0x7FF }
    }

    /// RSR/ECR's overrun bit.
    public static var statusOverrun: UInt32 { 1 << 3 }

    /// The frame size: offsets 0..<frameSize belong to the UART.
    public static var frameSize: UInt64 { 0x1000 }
    /// Receive FIFO depth.
    public static var receiveCapacity: Int { 32 }
    /// Transmit bytes held until the kernel drains them.
    public static var outputCapacity: Int { 256 }

    /// PeriphID0-3 then PCellID0-3, one byte each, as QEMU's pl011 reports them.
    static func identification(_ index: Int) -> UInt32 {
        switch index {
        case 0: return 0x11
        case 1: return 0x10
        case 2: return 0x14
        case 3: return 0x00
        case 4: return 0x0D
        case 5: return 0xF0
        case 6: return 0x05
        default: return 0xB1
        }
    }

    // MARK: State

    /// Storage-only registers, masked to their defined widths.
    public private(set) var integerBaud: UInt32 = 0        // 16 bits
    public private(set) var fractionalBaud: UInt32 = 0     // 6 bits
    public private(set) var lineControl: UInt32 = 0        // 8 bits
    /// Reset value: TXE | RXE (0x300), UART disabled.
    public private(set) var control: UInt32 = 0x300        // 16 bits
    /// Reset value: both trigger levels at 1/2 (0x12).
    public private(set) var fifoLevelSelect: UInt32 = 0x12 // 6 bits
    public private(set) var interruptMask: UInt32 = 0      // 11 bits
    public private(set) var dmaControl: UInt32 = 0         // 3 bits
    public private(set) var irdaLowPower: UInt32 = 0       // 8 bits
    /// RSR: only OE (bit 3) is ever set; any ECR write clears it.
    public private(set) var receiveStatus: UInt32 = 0
    /// Latched RIS bits (only OE); the level bits are computed.
    private var latched: UInt32 = 0

    /// Receive FIFO: `receiveCount` bytes from `receiveHead`, circular.
    /// Invariant: 0 <= receiveCount <= receiveCapacity, 0 <= receiveHead < receiveCapacity.
    private var receiveFIFO: InlineArray<32, UInt8> = .init(repeating: 0)
    private var receiveHead = 0
    public private(set) var receiveCount = 0
    /// Bytes `receive` dropped because the FIFO was full (wraps).
    public private(set) var droppedReceiveBytes: UInt64 = 0

    /// Transmitted bytes not yet drained, in order: output[0..<outputCount].
    /// Invariant: 0 <= outputCount <= outputCapacity.
    private var output: InlineArray<256, UInt8> = .init(repeating: 0)
    public private(set) var outputCount = 0
    /// Bytes written to DR while `output` was full, lost (wraps).
    public private(set) var droppedOutputBytes: UInt64 = 0

    public init() {}

    // MARK: Interrupts

    /// The receive trigger level in bytes, from IFLS.RXIFLSEL [5:3].
    /// Reserved encodings (5-7) behave as 1/2, the reset value.
    public var receiveTriggerLevel: Int {
        switch (fifoLevelSelect >> 3) & 0x7 {
        case 0: return 4   // 1/8
        case 1: return 8   // 1/4
        case 3: return 24  // 3/4
        case 4: return 28  // 7/8
        default: return 16 // 1/2
        }
    }

    /// Raw interrupt status (RIS).
    public var rawInterruptStatus: UInt32 {
        var status = latched | Interrupt.transmit
        if receiveCount >= receiveTriggerLevel { status |= Interrupt.receive }
        if receiveCount > 0 { status |= Interrupt.receiveTimeout }
        return status
    }

    /// Masked interrupt status (MIS = RIS & IMSC).
    public var maskedInterruptStatus: UInt32 { rawInterruptStatus & interruptMask }

    /// The UART's combined interrupt output (UARTINTR), level-sensitive: the
    /// kernel feeds it to the virtual GIC as SPI 33 after every exit that
    /// touched the UART and after every `receive`.
    public var interruptLine: Bool { maskedInterruptStatus != 0 }

    /// The flag register.
    public var flags: UInt32 {
        var value = Flag.transmitEmpty
        if receiveCount == 0 { value |= Flag.receiveEmpty }
        if receiveCount == Self.receiveCapacity { value |= Flag.receiveFull }
        return value
    }

    // MARK: Host side (the kernel)

    /// Queues one byte typed at the console for the guest. Returns false, and
    /// counts the byte in `droppedReceiveBytes` and latches the overrun
    /// interrupt and RSR.OE, when the FIFO is full.
    public mutating func receive(_ byte: UInt8) -> Bool {
        guard receiveCount < Self.receiveCapacity else {
            droppedReceiveBytes &+= 1
            latched |= Interrupt.overrun
            receiveStatus |= Self.statusOverrun
            return false
        }
        receiveFIFO[(receiveHead + receiveCount) % Self.receiveCapacity] = byte
        receiveCount += 1
        return true
    }

    /// The i-th byte the guest transmitted since the last drain (i < outputCount).
    public func outputByte(_ i: Int) -> UInt8 { output[i] }

    /// Hands every pending output byte, oldest first, to `sink`, then empties
    /// the output buffer.
    public mutating func drainOutput(_ sink: (UInt8) -> Void) {
        for i in 0..<outputCount { sink(output[i]) }
        outputCount = 0
    }

    // MARK: Guest side (trapped accesses)

    /// One trapped access at `offset` within the frame. `value` is the stored
    /// value for a write (`MMIOAccess.storedValue`), ignored for a read.
    /// A read answers `.done(value)` truncated to `size` bytes.
    public mutating func access(offset: UInt64, size: Int, isWrite: Bool, value: UInt64) -> MMIOResult {
        isWrite ? write(offset: offset, size: size, value: value) : read(offset: offset, size: size)
    }

    /// Whether an access of `size` bytes at `offset` has an acceptable shape.
    static func acceptable(offset: UInt64, size: Int) -> Bool {
        (size == 1 || size == 2 || size == 4) && offset & 3 == 0 && offset < frameSize
    }

    public mutating func read(offset: UInt64, size: Int) -> MMIOResult {
        guard Self.acceptable(offset: offset, size: size) else { return .refused }
        let value: UInt32
        switch offset {
        case Offset.dr: value = popReceive()
        case Offset.rsrEcr: value = receiveStatus
        case Offset.fr: value = flags
        case Offset.ilpr: value = irdaLowPower
        case Offset.ibrd: value = integerBaud
        case Offset.fbrd: value = fractionalBaud
        case Offset.lcrH: value = lineControl
        case Offset.cr: value = control
        case Offset.ifls: value = fifoLevelSelect
        case Offset.imsc: value = interruptMask
        case Offset.ris: value = rawInterruptStatus
        case Offset.mis: value = maskedInterruptStatus
        case Offset.dmacr: value = dmaControl
        case 0xFE0...0xFFC: value = Self.identification(Int((offset - Offset.periphID0) >> 2))
        default: return .refused  // ICR (write-only) and every unknown offset
        }
        let mask: UInt64 = size == 4 ? 0xFFFF_FFFF : (UInt64(1) << UInt64(size * 8)) - 1
        return .done(UInt64(value) & mask)
    }

    public mutating func write(offset: UInt64, size: Int, value: UInt64) -> MMIOResult {
        guard Self.acceptable(offset: offset, size: size) else { return .refused }
        let mask: UInt64 = size == 4 ? 0xFFFF_FFFF : (UInt64(1) << UInt64(size * 8)) - 1
        let word = UInt32(truncatingIfNeeded: value & mask)
        switch offset {
        case Offset.dr: transmit(UInt8(truncatingIfNeeded: word))
        case Offset.rsrEcr: receiveStatus = 0  // ECR: any write clears the errors
        case Offset.ilpr: irdaLowPower = word & 0xFF
        case Offset.ibrd: integerBaud = word & 0xFFFF
        case Offset.fbrd: fractionalBaud = word & 0x3F
        case Offset.lcrH: lineControl = word & 0xFF
        case Offset.cr: control = word & 0xFFFF
        case Offset.ifls: fifoLevelSelect = word & 0x3F
        case Offset.imsc: interruptMask = word & Interrupt.all
        case Offset.icr: latched &= ~(word & Interrupt.all)
        case Offset.dmacr: dmaControl = word & 0x7
        default: return .refused  // FR, RIS, MIS, IDs (read-only) and unknown offsets
        }
        return .done(0)
    }

    /// DR read: the oldest received byte, or 0 when the FIFO is empty (as the
    /// hardware's undefined read; Linux checks FR.RXFE first).
    private mutating func popReceive() -> UInt32 {
        guard receiveCount > 0 else { return 0 }
        let byte = receiveFIFO[receiveHead]
        receiveHead = (receiveHead + 1) % Self.receiveCapacity
        receiveCount -= 1
        return UInt32(byte)
    }

    private mutating func transmit(_ byte: UInt8) {
        guard outputCount < Self.outputCapacity else {
            droppedOutputBytes &+= 1
            return
        }
        output[outputCount] = byte
        outputCount += 1
    }
}
