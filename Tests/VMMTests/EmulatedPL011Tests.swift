import Testing
import VMM

@Suite struct EmulatedPL011Tests {
    typealias UART = VirtualPL011

    func read(_ uart: inout UART, _ offset: UInt64, size: Int = 4) -> UInt64? {
        if case .done(let v) = uart.read(offset: offset, size: size) { return v }
        return nil
    }

    func write(_ uart: inout UART, _ offset: UInt64, _ value: UInt64, size: Int = 4) -> Bool {
        uart.write(offset: offset, size: size, value: value) == .done(0)
    }

    // Mutating calls cannot appear directly inside #expect.
    func rx(_ uart: inout UART, _ byte: UInt8) -> Bool { uart.receive(byte) }
    func rawRead(_ uart: inout UART, offset: UInt64, size: Int) -> MMIOResult { uart.read(offset: offset, size: size) }
    func rawWrite(_ uart: inout UART, offset: UInt64, size: Int, value: UInt64) -> MMIOResult {
        uart.write(offset: offset, size: size, value: value)
    }
    func rawAccess(_ uart: inout UART, offset: UInt64, size: Int, isWrite: Bool, value: UInt64) -> MMIOResult {
        uart.access(offset: offset, size: size, isWrite: isWrite, value: value)
    }

    func drained(_ uart: inout UART) -> [UInt8] {
        var bytes: [UInt8] = []
        uart.drainOutput { bytes.append($0) }
        return bytes
    }

    // MARK: Reset state and identification

    @Test func resetValues() {
        var uart = UART()
        #expect(read(&uart, 0x018) == 0x90)   // FR: TXFE | RXFE
        #expect(read(&uart, 0x030) == 0x300)  // CR: TXE | RXE
        #expect(read(&uart, 0x034) == 0x12)   // IFLS: 1/2, 1/2
        #expect(read(&uart, 0x038) == 0)      // IMSC
        #expect(read(&uart, 0x03C) == 0x20)   // RIS: TX only
        #expect(read(&uart, 0x040) == 0)      // MIS
        #expect(read(&uart, 0x004) == 0)      // RSR
        for offset: UInt64 in [0x020, 0x024, 0x028, 0x02C, 0x048] { #expect(read(&uart, offset) == 0) }
        #expect(!uart.interruptLine)
    }

    /// Linux's AMBA bus reads the eight ID registers with 32-bit reads and
    /// keeps the low byte of each: PeriphID 0x00141011 (part 0x011, designer
    /// 0x41 'A', revision 1) and PCellID 0xB105F00D.
    @Test func identificationRegisters() {
        var uart = UART()
        let expected: [UInt64] = [0x11, 0x10, 0x14, 0x00, 0x0D, 0xF0, 0x05, 0xB1]
        for (i, value) in expected.enumerated() {
            #expect(read(&uart, 0xFE0 + UInt64(i) * 4) == value)
        }
        var periphID: UInt64 = 0, cellID: UInt64 = 0
        for i in 0..<4 {
            periphID |= read(&uart, 0xFE0 + UInt64(i) * 4)! << (8 * UInt64(i))
            cellID |= read(&uart, 0xFF0 + UInt64(i) * 4)! << (8 * UInt64(i))
        }
        #expect(periphID == 0x0014_1011)
        #expect(periphID & 0x000F_FFFF == 0x0004_1011)  // Linux's pl011 amba_id match
        #expect(cellID == 0xB105_F00D)
    }

    // MARK: Transmit

    @Test func transmitBytesOfEverySize() {
        var uart = UART()
        #expect(write(&uart, 0x000, 0x41, size: 1))          // earlycon writeb
        #expect(write(&uart, 0x000, 0xFF42, size: 2))        // pl011 writew: low byte only
        #expect(write(&uart, 0x000, 0xDEAD_BE43, size: 4))   // earlycon writel (mmio32)
        #expect(uart.outputCount == 3)
        #expect(uart.outputByte(1) == 0x42)
        #expect(drained(&uart) == [0x41, 0x42, 0x43])
        #expect(uart.outputCount == 0)
        #expect(drained(&uart) == [])
    }

    @Test func transmitOverflowDropsAndCounts() {
        var uart = UART()
        for i in 0..<(UART.outputCapacity + 3) { #expect(write(&uart, 0, UInt64(i & 0xFF), size: 1)) }
        #expect(uart.outputCount == UART.outputCapacity)
        #expect(uart.droppedOutputBytes == 3)
        let bytes = drained(&uart)
        #expect(bytes.count == UART.outputCapacity && bytes.first == 0 && bytes.last == 0xFF)
        #expect(write(&uart, 0, 0x5A, size: 1))
        #expect(drained(&uart) == [0x5A])
    }

    /// The transmitter never fills and is never busy: a console that polls
    /// FR.TXFF before each byte and FR.BUSY after never waits.
    @Test func transmitterAlwaysReady() {
        var uart = UART()
        for _ in 0..<100 { _ = write(&uart, 0, 0x2E, size: 2) }
        let fr = read(&uart, 0x018)!
        #expect(fr & 0x20 == 0)   // TXFF
        #expect(fr & 0x08 == 0)   // BUSY
        #expect(fr & 0x80 != 0)   // TXFE
    }

    // MARK: Receive

    @Test func receiveFIFOOrderAndFlags() {
        var uart = UART()
        #expect(rx(&uart, 0x61))
        #expect(rx(&uart, 0x62))
        #expect(read(&uart, 0x018)! & 0x10 == 0)  // RXFE clear
        #expect(read(&uart, 0x000, size: 2) == 0x61)
        #expect(read(&uart, 0x000, size: 1) == 0x62)
        #expect(read(&uart, 0x018)! & 0x10 != 0)  // RXFE set again
        #expect(read(&uart, 0x000) == 0)          // empty FIFO reads 0
    }

    @Test func receiveFullDropsCountsAndLatchesOverrun() {
        var uart = UART()
        for i in 0..<UART.receiveCapacity { #expect(rx(&uart, UInt8(i))) }
        #expect(read(&uart, 0x018)! & 0x40 != 0)  // RXFF
        #expect(!rx(&uart, 0xEE))
        #expect(!rx(&uart, 0xEF))
        #expect(uart.droppedReceiveBytes == 2)
        #expect(read(&uart, 0x03C)! & 0x400 != 0)  // RIS.OE latched
        #expect(read(&uart, 0x004) == 0x8)          // RSR.OE
        // The FIFO wraps correctly and keeps the first 32 bytes.
        for i in 0..<UART.receiveCapacity { #expect(read(&uart, 0, size: 2) == UInt64(i)) }
        #expect(read(&uart, 0x018)! & 0x50 == 0x10)  // RXFE, not RXFF
        // Overrun stays latched after draining, until ICR.OEIC / ECR.
        #expect(read(&uart, 0x03C)! & 0x400 != 0)
        #expect(write(&uart, 0x044, 0x400, size: 2))
        #expect(read(&uart, 0x03C)! & 0x400 == 0)
        #expect(write(&uart, 0x004, 0, size: 2))
        #expect(read(&uart, 0x004) == 0)
        // Wrap-around: refill past the end of the ring.
        for i in 0..<40 {
            #expect(rx(&uart, UInt8(i)))
            #expect(read(&uart, 0, size: 1) == UInt64(i))
        }
    }

    // MARK: Interrupts

    @Test func receiveTimeoutOnSingleCharacter() {
        var uart = UART()
        #expect(write(&uart, 0x038, 0x50, size: 2))  // IMSC = RTIM | RXIM (what Linux sets)
        #expect(!uart.interruptLine)
        _ = uart.receive(0x0D)
        #expect(read(&uart, 0x03C)! & 0x70 == 0x60)  // RT and TX; RX below trigger
        #expect(read(&uart, 0x040) == 0x40)          // MIS: RT only
        #expect(uart.interruptLine)
        _ = read(&uart, 0)
        #expect(!uart.interruptLine)
        #expect(read(&uart, 0x040) == 0)
    }

    @Test func receiveTriggerLevels() {
        // IFLS.RXIFLSEL [5:3]: 0 1/8, 1 1/4, 2 1/2, 3 3/4, 4 7/8 of 32.
        for (select, level) in [(0, 4), (1, 8), (2, 16), (3, 24), (4, 28)] {
            var uart = UART()
            #expect(write(&uart, 0x034, UInt64(select << 3), size: 2))
            #expect(uart.receiveTriggerLevel == level)
            for _ in 0..<(level - 1) { _ = uart.receive(0x30) }
            #expect(read(&uart, 0x03C)! & 0x10 == 0)
            _ = uart.receive(0x30)
            #expect(read(&uart, 0x03C)! & 0x10 != 0)
            _ = read(&uart, 0)
            #expect(read(&uart, 0x03C)! & 0x10 == 0)
        }
    }

    /// TX is a level that is always high: unmasking TXIM raises the line at
    /// once (Linux's start_tx unmasks it only when it could not send
    /// everything) and masking it again lowers it; ICR cannot clear it.
    @Test func transmitInterruptIsAlwaysPending() {
        var uart = UART()
        #expect(write(&uart, 0x038, 0x20, size: 2))  // TXIM
        #expect(uart.interruptLine)
        #expect(read(&uart, 0x040) == 0x20)
        #expect(write(&uart, 0x044, 0x7FF, size: 2)) // ICR everything
        #expect(uart.interruptLine)
        #expect(write(&uart, 0x038, 0x50, size: 2))  // pl011_stop_tx masks TXIM
        #expect(!uart.interruptLine)
    }

    @Test func icrClearsOnlyLatchedBitsItNames() {
        var uart = UART()
        for _ in 0...UART.receiveCapacity { _ = uart.receive(1) }  // one overrun
        #expect(write(&uart, 0x038, 0x400, size: 2))  // OEIM
        #expect(uart.interruptLine)
        #expect(write(&uart, 0x044, 0x3FF, size: 2))  // every bit but OE
        #expect(uart.interruptLine)
        #expect(write(&uart, 0x044, 0x400, size: 2))
        #expect(!uart.interruptLine)
        #expect(read(&uart, 0x03C)! & 0x40 != 0)  // RT still up: the FIFO is full
    }

    // MARK: Storage registers

    @Test func storageRegistersKeepTheirWidths() {
        var uart = UART()
        let cases: [(UInt64, UInt64)] = [
            (0x020, 0xFF), (0x024, 0xFFFF), (0x028, 0x3F), (0x02C, 0xFF),
            (0x030, 0xFFFF), (0x034, 0x3F), (0x038, 0x7FF), (0x048, 0x7),
        ]
        for (offset, mask) in cases {
            #expect(write(&uart, offset, 0xFFFF_FFFF))
            #expect(read(&uart, offset) == mask)
            #expect(write(&uart, offset, 0x1234_5601 & mask, size: 2))
            #expect(read(&uart, offset) == 0x5601 & mask)
        }
        // A byte write zeroes the upper bytes (no byte strobes on APB).
        #expect(write(&uart, 0x030, 0x0301, size: 4))
        #expect(write(&uart, 0x030, 0x01, size: 1))
        #expect(read(&uart, 0x030) == 0x01)
        // Narrow reads see the low bytes.
        #expect(write(&uart, 0x024, 0xABCD))
        #expect(read(&uart, 0x024, size: 1) == 0xCD)
        #expect(read(&uart, 0x024, size: 2) == 0xABCD)
    }

    // MARK: Refused accesses

    @Test func refusesBadSizesAndAlignment() {
        var uart = UART()
        #expect(rawRead(&uart, offset: 0x018, size: 8) == .refused)
        #expect(rawWrite(&uart, offset: 0x000, size: 8, value: 0x41) == .refused)
        #expect(rawRead(&uart, offset: 0x018, size: 3) == .refused)
        #expect(rawRead(&uart, offset: 0x018, size: 0) == .refused)
        // Inside a register but not at its start.
        #expect(rawRead(&uart, offset: 0x019, size: 1) == .refused)
        #expect(rawRead(&uart, offset: 0x01A, size: 2) == .refused)
        #expect(rawWrite(&uart, offset: 0x001, size: 1, value: 0x41) == .refused)
        #expect(rawWrite(&uart, offset: 0x002, size: 2, value: 0x41) == .refused)
        // Also inside the ID block, whose registers are matched by range.
        #expect(rawRead(&uart, offset: 0xFE1, size: 1) == .refused)
        #expect(rawRead(&uart, offset: 0xFF2, size: 2) == .refused)
        #expect(uart.outputCount == 0)
    }

    @Test func refusesUnknownOffsets() {
        var uart = UART()
        for offset: UInt64 in [0x008, 0x00C, 0x010, 0x014, 0x01C, 0x04C, 0x100, 0xFDC, 0x1000, 0x2000] {
            #expect(rawRead(&uart, offset: offset, size: 4) == .refused)
            #expect(rawWrite(&uart, offset: offset, size: 4, value: 0) == .refused)
        }
    }

    @Test func refusesWritesToReadOnlyAndReadsOfWriteOnly() {
        var uart = UART()
        for offset: UInt64 in [0x018, 0x03C, 0x040, 0xFE0, 0xFEC, 0xFF0, 0xFFC] {
            #expect(rawWrite(&uart, offset: offset, size: 4, value: 0) == .refused)
        }
        #expect(rawRead(&uart, offset: 0x044, size: 4) == .refused)  // ICR
        #expect(rawRead(&uart, offset: 0x044, size: 2) == .refused)
        // Nothing changed.
        #expect(read(&uart, 0x018) == 0x90)
        #expect(read(&uart, 0xFE0) == 0x11)
    }

    @Test func accessDispatchesOnDirection() {
        var uart = UART()
        #expect(rawAccess(&uart, offset: 0, size: 1, isWrite: true, value: 0x21) == .done(0))
        #expect(rawAccess(&uart, offset: 0x018, size: 2, isWrite: false, value: 0xFFFF) == .done(0x90))
        #expect(drained(&uart) == [0x21])
    }
}
