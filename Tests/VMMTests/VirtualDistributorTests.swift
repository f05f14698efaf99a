import Testing
@testable import VMM

/// A distributor with `spis` SPIs and `vcpus` vCPUs, in a box so that
/// `#expect` can call its mutating methods.
func makeDistributor(spis: Int = 32, vcpus: Int = 4) -> DistributorBox {
    DistributorBox(VirtualDistributor(spiCount: spis, topology: VCPUTopology(count: vcpus)))
}

final class DistributorBox {
    var m: VirtualDistributor
    init(_ m: VirtualDistributor) { self.m = m }

    func read(_ offset: Int, size: Int = 4) -> MMIOResult {
        m.access(offset: offset, size: size, isWrite: false, value: 0)
    }
    func write(_ offset: Int, _ value: UInt64, size: Int = 4) -> MMIOResult {
        m.access(offset: offset, size: size, isWrite: true, value: value)
    }
    /// Every message owed, in order.
    func drain() -> [DistributorMessage] {
        var out: [DistributorMessage] = []
        while let x = m.nextMessage() { out.append(x) }
        return out
    }
    @discardableResult func setLevel(intid: Int, high: Bool) -> Bool { m.setLevel(intid: intid, high: high) }
    @discardableResult func setPending(intid: Int) -> Bool { m.setPending(intid: intid) }
    func accept(_ r: SPIReport) { m.accept(r) }
    func target(intid: Int) -> Int? { m.target(intid: intid) }
    func priority(intid: Int) -> UInt8 { m.priority(intid: intid) }
    func isPending(intid: Int) -> Bool { m.isPending(intid: intid) }
    func isActive(intid: Int) -> Bool { m.isActive(intid: intid) }
    func isEnabled(intid: Int) -> Bool { m.isEnabled(intid: intid) }
    var group1Enabled: Bool { m.group1Enabled }
    var spiCount: Int { m.spiCount }
}

@Suite struct VirtualDistributorTests {
    // MARK: Identification and control

    @Test func linuxProbeSequence() {
        let d = makeDistributor(spis: 32)
        // gic_validate_dist_version: PIDR2.ArchRev == 3.
        #expect(d.read(0xFFE8) == .done(0x3B))
        guard case .done(let pidr2) = d.read(0xFFE8) else { Issue.record(); return }
        #expect((pidr2 >> 4) & 0xF == 3)
        // TYPER: 64 INTIDs -> ITLinesNumber 1; 10 ID bits; no LPIs; no security extension.
        guard case .done(let typer) = d.read(0x0004) else { Issue.record(); return }
        #expect(typer & 0x1F == 1)
        #expect((typer >> 19) & 0x1F == 9)
        #expect(typer & (1 << 17) == 0)      // LPIS
        #expect(typer & (1 << 10) == 0)      // SecurityExtn
        #expect(typer & (1 << 8) == 0)       // ESPI
        #expect(d.read(0x000C) == .done(0))  // TYPER2
        #expect(d.read(0x0008) == .done(UInt64(VirtualGIC.iidr)))
        // DS reads one (single security state).
        guard case .done(let ctlr0) = d.read(0x0000) else { Issue.record(); return }
        #expect(ctlr0 & (1 << 6) != 0)
        // Disable, wait for RWP, configure, enable ARE|G1A|G1, wait for RWP.
        #expect(d.write(0x0000, 0) == .done(0))
        #expect(d.read(0x0000) == .done(0x50))          // ARE | DS, RWP = 0
        for i in stride(from: 32, to: 64, by: 32) { #expect(d.write(0x0080 + i / 8, 0xFFFF_FFFF) == .done(0)) }
        for i in stride(from: 32, to: 64, by: 16) { #expect(d.write(0x0C00 + i / 4, 0) == .done(0)) }
        for i in stride(from: 32, to: 64, by: 4) { #expect(d.write(0x0400 + i, 0xA0A0_A0A0) == .done(0)) }
        for i in stride(from: 32, to: 64, by: 32) {
            #expect(d.write(0x0380 + i / 8, 0xFFFF_FFFF) == .done(0))
            #expect(d.write(0x0180 + i / 8, 0xFFFF_FFFF) == .done(0))
        }
        #expect(d.write(0x0000, 0x13) == .done(0))
        guard case .done(let ctlr) = d.read(0x0000) else { Issue.record(); return }
        #expect(ctlr & (1 << 31) == 0)
        #expect(ctlr == 0x53)
        #expect(d.group1Enabled)
        // Route every SPI to the boot CPU (affinity 0) with 64-bit writes.
        for i in 32..<64 { #expect(d.write(0x6000 + i * 8, 0, size: 8) == .done(0)) }
        #expect(d.target(intid: 33) == 0)
        #expect(d.priority(intid: 40) == 0xA0)
    }

    /// The IIDR must not trigger an erratum workaround in Linux's GICv3
    /// quirk table (values and masks from drivers/irqchip/irq-gic-v3.c).
    @Test func iidrMatchesNoLinuxQuirk() {
        let quirks: [(UInt32, UInt32)] = [(0x0204_043B, 0xFFFF_FFFF), (0xA000_034C, 0xE8F0_0FFF),
                                          (0x0402_043B, 0xFFFF_FFFF), (0x0400_043B, 0xFF0E_0FFF),
                                          (0x0402_043B, 0xFF0F_0FFF), (0x0201_743B, 0xFFFF_FFFF)]
        for (iidr, mask) in quirks { #expect(VirtualGIC.iidr & mask != iidr) }
    }

    @Test func typerScalesWithSPICount() {
        for (spis, lines) in [(32, 1), (33, 2), (64, 2), (96, 3), (200, 3)] {
            let d = makeDistributor(spis: spis)
            guard case .done(let t) = d.read(0x0004) else { Issue.record(); return }
            #expect(t & 0x1F == UInt64(lines), "spis \(spis)")
        }
        #expect(makeDistributor(spis: 200).spiCount == 96)
    }

    @Test func typerRangeSelectorOnlyWhenAff0Exceeds15() {
        let d = makeDistributor(vcpus: 4)
        guard case .done(let t) = d.read(0x0004) else { Issue.record(); return }
        #expect(t & (1 << 26) == 0)
        var topo = VCPUTopology(count: 2)
        topo.setMPIDR(0x20, forVCPU: 1)
        let d2 = DistributorBox(VirtualDistributor(topology: topo))
        guard case .done(let t2) = d2.read(0x0004) else { Issue.record(); return }
        #expect(t2 & (1 << 26) != 0)
    }

    @Test func ctlrKeepsOnlyGroupEnables() {
        let d = makeDistributor()
        #expect(d.read(0x0000) == .done(0x50))
        #expect(d.write(0x0000, 0xFFFF_FFFF) == .done(0))
        #expect(d.read(0x0000) == .done(0x53))
        #expect(d.write(0x0000, 0x1) == .done(0))
        #expect(d.read(0x0000) == .done(0x51))
        #expect(!d.group1Enabled)
    }

    @Test func ctlrGroupChangeTellsEveryVCPU() {
        let d = makeDistributor(vcpus: 3)
        _ = d.write(0x0000, 0x12)
        let m = d.drain()
        #expect(m == [.group1Enable(vcpu: 0, enabled: true), .group1Enable(vcpu: 1, enabled: true),
                      .group1Enable(vcpu: 2, enabled: true)])
        _ = d.write(0x0000, 0x12)        // no change: no messages
        #expect(d.drain().isEmpty)
    }

    @Test func statusrIsRAZWI() {
        let d = makeDistributor()
        #expect(d.write(0x0010, 0xFFFF) == .done(0))
        #expect(d.read(0x0010) == .done(0))
    }

    // MARK: Bit registers

    @Test func groupRegistersAreRAOForSPIsAndRAZBelow32() {
        let d = makeDistributor(spis: 48)   // INTIDs 32..79: register 2 half implemented
        #expect(d.read(0x0080) == .done(0))
        #expect(d.read(0x0084) == .done(0xFFFF_FFFF))
        #expect(d.read(0x0088) == .done(0x0000_FFFF))
        #expect(d.write(0x0084, 0) == .done(0))
        #expect(d.read(0x0084) == .done(0xFFFF_FFFF))
        #expect(d.read(0x008C) == .refused)             // beyond ITLinesNumber
        #expect(d.read(0x0D04) == .done(0))             // IGRPMODR: RAZ/WI
        #expect(d.write(0x0D04, 0xFFFF_FFFF) == .done(0))
        #expect(d.read(0x0D04) == .done(0))
        #expect(d.read(0x0D0C) == .refused)
    }

    @Test func enableSetAndClearPair() {
        let d = makeDistributor()
        #expect(d.read(0x0104) == .done(0))
        #expect(d.write(0x0104, 0b1010) == .done(0))
        #expect(d.read(0x0104) == .done(0b1010))
        #expect(d.read(0x0184) == .done(0b1010))        // ICENABLER reads the same state
        #expect(d.write(0x0104, 0b0100) == .done(0))    // set ORs
        #expect(d.read(0x0104) == .done(0b1110))
        #expect(d.write(0x0184, 0b0010) == .done(0))    // clear clears only the ones written
        #expect(d.read(0x0104) == .done(0b1100))
        #expect(d.write(0x0104, 0) == .done(0))         // zero bits change nothing
        #expect(d.read(0x0104) == .done(0b1100))
        #expect(d.isEnabled(intid: 34) && d.isEnabled(intid: 35) && !d.isEnabled(intid: 33))
        // INTIDs 0..31: RAZ/WI.
        #expect(d.write(0x0100, 0xFFFF_FFFF) == .done(0))
        #expect(d.read(0x0100) == .done(0))
    }

    @Test func pendingSetAndClearPair() {
        let d = makeDistributor()
        #expect(d.write(0x0204, 0x3) == .done(0))
        #expect(d.read(0x0204) == .done(0x3))
        #expect(d.read(0x0284) == .done(0x3))
        #expect(d.write(0x0284, 0x1) == .done(0))
        #expect(d.read(0x0204) == .done(0x2))
        #expect(d.isPending(intid: 33) && !d.isPending(intid: 32))
    }

    @Test func activeSetAndClearPair() {
        let d = makeDistributor()
        #expect(d.write(0x0304, 0x8000_0001) == .done(0))
        #expect(d.read(0x0304) == .done(0x8000_0001))
        #expect(d.read(0x0384) == .done(0x8000_0001))
        #expect(d.write(0x0384, 0x8000_0000) == .done(0))
        #expect(d.read(0x0304) == .done(0x1))
        #expect(d.isActive(intid: 32) && !d.isActive(intid: 63))
    }

    @Test func bitsPastSPICountAreRAZWI() {
        let d = makeDistributor(spis: 40)   // INTIDs 32..71
        #expect(d.write(0x0108, 0xFFFF_FFFF) == .done(0))
        #expect(d.read(0x0108) == .done(0xFF))
    }

    // MARK: Priority, config, routing

    @Test func priorityByteAndWordAccess() {
        let d = makeDistributor()
        #expect(d.read(0x0420) == .done(0))
        #expect(d.write(0x0420, 0x8070_6050) == .done(0))
        #expect(d.read(0x0420) == .done(0x8070_6050))
        #expect(d.read(0x0421, size: 1) == .done(0x60))
        #expect(d.write(0x0423, 0xC0, size: 1) == .done(0))
        #expect(d.read(0x0420) == .done(0xC070_6050))
        #expect(d.priority(intid: 35) == 0xC0)
        // Low three bits are RAZ/WI (5 priority bits).
        #expect(d.write(0x0424, 0xFF, size: 1) == .done(0))
        #expect(d.read(0x0424, size: 1) == .done(0xF8))
        // INTIDs 0..31: RAZ/WI.
        #expect(d.write(0x0400, 0xFFFF_FFFF) == .done(0))
        #expect(d.read(0x0400) == .done(0))
        // Halfword, unaligned word, past the implemented INTIDs: refused.
        #expect(d.read(0x0420, size: 2) == .refused)
        #expect(d.read(0x0421) == .refused)
        #expect(d.write(0x0422, 0, size: 8) == .refused)
        #expect(d.read(0x0440) == .refused)
        #expect(d.read(0x043F, size: 1) == .done(0))
    }

    @Test func configRoundTripKeepsOddBits() {
        let d = makeDistributor()
        #expect(d.read(0x0C08) == .done(0))               // level by default
        #expect(d.write(0x0C08, 0xFFFF_FFFF) == .done(0))
        #expect(d.read(0x0C08) == .done(0xAAAA_AAAA))     // even bits RES0
        #expect(d.write(0x0C08, 0x8) == .done(0))         // INTID 33 edge
        #expect(d.read(0x0C08) == .done(0x8))
        #expect(d.write(0x0C00, 0xFFFF_FFFF) == .done(0)) // INTIDs 0..15 RAZ/WI
        #expect(d.read(0x0C00) == .done(0))
        #expect(d.read(0x0C10) == .refused)               // INTID 64+: beyond ITLinesNumber
        #expect(d.read(0x0C0E, size: 2) == .refused)
    }

    @Test func irouter64And32BitHalves() {
        let d = makeDistributor(vcpus: 20)
        let r = 0x6000 + 40 * 8
        #expect(d.read(r, size: 8) == .done(0))
        // vCPU 17: Aff1 = 1, Aff0 = 1. IRM (bit 31) and RES0 bits are dropped.
        #expect(d.write(r, 0xFF00_00FF_8000_0101, size: 8) == .done(0))
        #expect(d.read(r, size: 8) == .done(0xFF_0000_0101))
        #expect(d.read(r, size: 4) == .done(0x0101))
        #expect(d.read(r + 4, size: 4) == .done(0xFF))
        #expect(d.target(intid: 40) == nil)               // Aff3 = 0xFF: nobody
        #expect(d.write(r + 4, 0, size: 4) == .done(0))
        #expect(d.target(intid: 40) == 17)
        #expect(d.write(r, 0x0003, size: 4) == .done(0))
        #expect(d.read(r, size: 8) == .done(0x0003))
        #expect(d.target(intid: 40) == 3)
        // Bad accesses: unaligned, byte, INTIDs 0..31 (reserved), beyond the lines.
        #expect(d.read(r + 4, size: 8) == .refused)
        #expect(d.read(r + 2, size: 4) == .refused)
        #expect(d.read(r, size: 1) == .refused)
        #expect(d.read(0x6000 + 8 * 5, size: 8) == .refused)
        #expect(d.read(0x6000 + 8 * 64, size: 8) == .refused)
    }

    // MARK: Bad accesses

    @Test func badAccessesAreRefused() {
        let d = makeDistributor()
        // Read-only registers.
        #expect(d.write(0x0004, 0) == .refused)
        #expect(d.write(0x0008, 0) == .refused)
        #expect(d.write(0x000C, 0) == .refused)
        #expect(d.write(0xFFE8, 0) == .refused)
        // Wrong size.
        #expect(d.read(0x0000, size: 8) == .refused)
        #expect(d.read(0x0000, size: 1) == .refused)
        #expect(d.read(0x0004, size: 2) == .refused)
        #expect(d.read(0x0104, size: 8) == .refused)
        #expect(d.read(0x0104, size: 1) == .refused)
        // Unaligned.
        #expect(d.read(0x0102) == .refused)
        #expect(d.read(0x0C02) == .refused)
        // Not implemented: ITARGETSR, SGIR, SETSPI, an arbitrary hole.
        #expect(d.read(0x0820) == .refused)
        #expect(d.write(0x0F00, 0) == .refused)
        #expect(d.write(0x0040, 32) == .refused)
        #expect(d.read(0x5000) == .refused)
        #expect(d.read(0xFFE4) == .refused)
        // Nothing changed.
        #expect(d.read(0x0000) == .done(0x50))
    }
}

@Suite struct DistributorMessageTests {
    /// A distributor with group 1 on, SPI 33 enabled, routed to `vcpu`.
    func ready(vcpu: Int = 0, edge: Bool = false) -> DistributorBox {
        let d = makeDistributor(vcpus: 4)
        _ = d.write(0x0000, 0x12)
        _ = d.write(0x0104, 0x2)
        _ = d.write(0x0421, 0xA0, size: 1)
        if edge { _ = d.write(0x0C08, 0x8) }
        _ = d.write(0x6000 + 33 * 8, UInt64(vcpu), size: 8)
        _ = d.drain()
        return d
    }

    @Test func levelRaiseNotifiesTargetOnce() {
        let d = ready(vcpu: 2)
        d.setLevel(intid: 33, high: true)
        let m = d.drain()
        #expect(m == [.spi(SPINotice(vcpu: 2, intid: 33, priority: 0xA0, levelSensitive: true, pending: true, sequence: 1))])
        d.setLevel(intid: 33, high: true)
        #expect(d.drain().isEmpty)
        d.setLevel(intid: 33, high: false)
        #expect(d.drain() == [.spi(SPINotice(vcpu: 2, intid: 33, priority: 0xA0, levelSensitive: true, pending: false, sequence: 1))])
    }

    @Test func disabledOrGroupOffSPIIsNotDelivered() {
        let d = ready()
        _ = d.write(0x0184, 0x2)
        d.setLevel(intid: 33, high: true)
        #expect(d.drain().isEmpty)
        #expect(d.isPending(intid: 33))
        _ = d.write(0x0104, 0x2)
        #expect(d.drain().count == 1)
        _ = d.write(0x0000, 0x10)                 // EnableGrp1 off: withdrawn
        let m = d.drain()
        #expect(m.contains(.spi(SPINotice(vcpu: 0, intid: 33, priority: 0xA0, levelSensitive: true, pending: false, sequence: 1))))
        #expect(m.contains(.group1Enable(vcpu: 3, enabled: false)))
    }

    @Test func rerouteWithdrawsThenOffers() {
        let d = ready(vcpu: 0)
        d.setLevel(intid: 33, high: true)
        _ = d.drain()
        _ = d.write(0x6000 + 33 * 8, 1, size: 8)
        let m = d.drain()
        #expect(m.count == 2)
        guard m.count == 2, case .spi(let off) = m[0], case .spi(let on) = m[1] else { return }
        #expect(off.vcpu == 0 && !off.pending)
        #expect(on.vcpu == 1 && on.pending && on.sequence == 2)
    }

    @Test func priorityChangeRefreshesWithSameSequence() {
        let d = ready()
        d.setLevel(intid: 33, high: true)
        _ = d.drain()
        _ = d.write(0x0421, 0x80, size: 1)
        #expect(d.drain() == [.spi(SPINotice(vcpu: 0, intid: 33, priority: 0x80, levelSensitive: true, pending: true, sequence: 1))])
    }

    @Test func edgeWhileHeldGetsNewSequence() {
        let d = ready(edge: true)
        d.setPending(intid: 33)
        #expect(d.drain().count == 1)
        d.setPending(intid: 33)
        #expect(d.drain() == [.spi(SPINotice(vcpu: 0, intid: 33, priority: 0xA0, levelSensitive: false, pending: true, sequence: 2))])
        // A stale report (sequence 1: the guest took the first edge) does not
        // clear the second one.
        d.accept(SPIReport(vcpu: 0, intid: 33, sequence: 1, pending: false, active: true))
        #expect(d.isPending(intid: 33))
        #expect(d.drain().isEmpty)
        d.accept(SPIReport(vcpu: 0, intid: 33, sequence: 2, pending: false, active: true))
        #expect(!d.isPending(intid: 33))
        #expect(d.isActive(intid: 33))
        #expect(d.drain().isEmpty)
    }

    @Test func levelResampledAfterDeactivation() {
        let d = ready()
        d.setLevel(intid: 33, high: true)
        _ = d.drain()
        // The guest acknowledged (active) and later deactivated while the
        // line stayed high: offered again with a new sequence.
        d.accept(SPIReport(vcpu: 0, intid: 33, sequence: 1, pending: true, active: true))
        #expect(d.drain().isEmpty)
        d.accept(SPIReport(vcpu: 0, intid: 33, sequence: 1, pending: false, active: false))
        #expect(d.drain() == [.spi(SPINotice(vcpu: 0, intid: 33, priority: 0xA0, levelSensitive: true, pending: true, sequence: 2))])
        // Same, but the line dropped before deactivation: nothing more.
        d.setLevel(intid: 33, high: false)
        #expect(d.drain().count == 1)           // withdrawn
        d.accept(SPIReport(vcpu: 0, intid: 33, sequence: 2, pending: false, active: false))
        #expect(d.drain().isEmpty)
        #expect(!d.isPending(intid: 33))
    }

    @Test func clearPendingWithdraws() {
        let d = ready(edge: true)
        _ = d.write(0x0204, 0x2)                 // ISPENDR
        #expect(d.drain().count == 1)
        _ = d.write(0x0284, 0x2)                 // ICPENDR
        #expect(d.drain() == [.spi(SPINotice(vcpu: 0, intid: 33, priority: 0xA0, levelSensitive: false, pending: false, sequence: 1))])
    }

    @Test func unroutedSPIIsHeld() {
        let d = ready()
        _ = d.write(0x6000 + 33 * 8, 0x0909, size: 8)   // nobody has Aff1 = 9
        d.setLevel(intid: 33, high: true)
        #expect(d.drain().isEmpty)
        _ = d.write(0x6000 + 33 * 8, 1, size: 8)
        #expect(d.drain().first?.vcpu == 1)
    }

    @Test func nonSPIInputsAreRejected() {
        let d = makeDistributor(spis: 32)
        #expect(!d.setLevel(intid: 27, high: true))
        #expect(!d.setPending(intid: 64))
        #expect(d.setPending(intid: 63))
    }
}
