import Testing
@testable import VMM

/// A redistributor in a box so that `#expect` can call its mutating methods.
final class RedistributorBox {
    var m: VirtualRedistributor
    init(vcpu: Int, topology: VCPUTopology) { m = VirtualRedistributor(vcpu: vcpu, topology: topology) }

    func read(_ offset: Int, size: Int = 4) -> MMIOResult {
        m.access(offset: offset, size: size, isWrite: false, value: 0)
    }
    func write(_ offset: Int, _ value: UInt64, size: Int = 4) -> MMIOResult {
        m.access(offset: offset, size: size, isWrite: true, value: value)
    }
    @discardableResult func setLevel(intid: Int, high: Bool) -> Bool { m.setLevel(intid: intid, high: high) }
    @discardableResult func setPending(intid: Int) -> Bool { m.setPending(intid: intid) }
    @discardableResult func linkHardware(intid: Int, physical: Int) -> Bool { m.linkHardware(intid: intid, physical: physical) }
    func unlinkHardware(intid: Int) { m.unlinkHardware(intid: intid) }
    func accept(_ x: DistributorMessage) { m.accept(x) }
    func isPending(intid: Int) -> Bool { m.isPending(intid: intid) }
    func isActive(intid: Int) -> Bool { m.isActive(intid: intid) }
    func isEnabled(intid: Int) -> Bool { m.isEnabled(intid: intid) }
    func isHardwareLinked(intid: Int) -> Bool { m.isHardwareLinked(intid: intid) }
    func priority(intid: Int) -> UInt8 { m.priority(intid: intid) }
    var group1Enabled: Bool { m.group1Enabled }
    var isAsleep: Bool { m.isAsleep }
}

let sgiBase = 0x10000

@Suite struct VirtualRedistributorTests {
    // MARK: RD_base

    @Test func typerCarriesAffinityNumberAndLast() {
        let topo = VCPUTopology(count: 20)
        let r17 = RedistributorBox(vcpu: 17, topology: topo)
        // vCPU 17: Aff1 = 1, Aff0 = 1 -> affinity 0x00000101 in [63:32].
        #expect(r17.read(0x0008, size: 8) == .done(0x0000_0101_0000_1100))
        #expect(r17.read(0x0008) == .done(0x1100))
        #expect(r17.read(0x000C) == .done(0x0101))
        let last = RedistributorBox(vcpu: 19, topology: topo)
        guard case .done(let t) = last.read(0x0008, size: 8) else { Issue.record(); return }
        #expect(t & 0x10 != 0)
        #expect(t & 0x1 == 0)            // PLPIS
        #expect((t >> 27) & 0x1F == 0)   // PPInum: 16 PPIs
        #expect(VirtualRedistributor.typer(vcpu: 19, topology: topo) == t)
        #expect(VirtualRedistributor.typer(vcpu: 17, topology: topo) & 0x10 == 0)
    }

    @Test func typerUsesExplicitMPIDRWithAff3() {
        var topo = VCPUTopology(count: 2)
        topo.setMPIDR(0x8000_0000 | 0x07_0003_0201, forVCPU: 1)   // RES1 bit 31 dropped
        #expect(topo.mpidr(ofVCPU: 1) == 0x07_0003_0201)
        let r = RedistributorBox(vcpu: 1, topology: topo)
        #expect(r.read(0x000C) == .done(0x0703_0201))
    }

    /// Linux's __gic_populate_rdist: walk frames by TYPER, match the CPU's
    /// MPIDR affinity, stop at Last. Every vCPU must find its own frame.
    @Test func linuxRedistributorWalkFindsEveryVCPU() {
        let topo = VCPUTopology(count: 20)
        for cpu in 0..<topo.count {
            let m = topo.mpidr(ofVCPU: cpu)
            let aff = (m & 0xFF_FFFF) | ((m >> 32) << 24)
            var offset = 0
            var found: Int? = nil
            var frames = 0
            while frames < 100 {
                guard let (v, o) = VirtualRedistributor.locate(regionOffset: offset, topology: topo),
                      case .done(let pidr2)? = VirtualRedistributor.identificationAccess(
                        vcpu: v, topology: topo, offset: o + 0xFFE8, size: 4, isWrite: false),
                      (pidr2 >> 4) & 0xF == 3,
                      case .done(let typer)? = VirtualRedistributor.identificationAccess(
                        vcpu: v, topology: topo, offset: o + 0x0008, size: 8, isWrite: false)
                else { break }
                frames += 1
                if typer >> 32 == aff { found = v; break }
                if typer & 0x10 != 0 { break }
                offset += 0x20000
            }
            #expect(found == cpu, "cpu \(cpu)")
        }
        // The walk of an unknown affinity stops at the last frame.
        #expect(VirtualRedistributor.locate(regionOffset: 20 * 0x20000, topology: topo) == nil)
        #expect(VirtualRedistributor.locate(regionOffset: 0x20000 + 0x10080, topology: topo)! == (1, 0x10080))
    }

    @Test func identificationAccessAnswersOnlyStatelessRegisters() {
        let topo = VCPUTopology(count: 2)
        #expect(VirtualRedistributor.identificationAccess(vcpu: 1, topology: topo, offset: 0x0004, size: 4, isWrite: false)
                == .done(UInt64(VirtualGIC.iidr)))
        #expect(VirtualRedistributor.identificationAccess(vcpu: 1, topology: topo, offset: 0x0008, size: 8, isWrite: true)
                == .refused)
        #expect(VirtualRedistributor.identificationAccess(vcpu: 1, topology: topo, offset: 0x0014, size: 4, isWrite: false)
                == nil)
        #expect(VirtualRedistributor.identificationAccess(vcpu: 1, topology: topo, offset: 0x10100, size: 4, isWrite: false)
                == nil)
    }

    /// Linux's gic_enable_redist: clear ProcessorSleep, poll ChildrenAsleep.
    @Test func wakerHandshake() {
        let r = RedistributorBox(vcpu: 0, topology: VCPUTopology(count: 1))
        #expect(r.read(0x0014) == .done(0b110))
        #expect(r.isAsleep)
        guard case .done(let w) = r.read(0x0014) else { Issue.record(); return }
        #expect(r.write(0x0014, w & ~2) == .done(0))
        #expect(r.read(0x0014) == .done(0))         // ChildrenAsleep clear at once
        #expect(!r.isAsleep)
        // Putting it back to sleep: readable back (Linux checks it is writable).
        #expect(r.write(0x0014, 0b10) == .done(0))
        #expect(r.read(0x0014) == .done(0b110))
        // ChildrenAsleep itself is not writable.
        #expect(r.write(0x0014, 0b100) == .done(0))
        #expect(r.read(0x0014) == .done(0))
    }

    @Test func ctlrStatusrAndLPIBasesAreRAZWI() {
        let r = RedistributorBox(vcpu: 0, topology: VCPUTopology(count: 1))
        #expect(r.write(0x0000, 1) == .done(0))
        #expect(r.read(0x0000) == .done(0))         // RWP 0, EnableLPIs 0
        #expect(r.write(0x0010, 0xF) == .done(0))
        #expect(r.read(0x0010) == .done(0))
        #expect(r.write(0x0070, 0x1234, size: 8) == .done(0))
        #expect(r.read(0x0070, size: 8) == .done(0))
        #expect(r.read(0x0074) == .done(0))
        #expect(r.write(0x0078, 0x1234, size: 8) == .done(0))
        #expect(r.read(0x0078, size: 8) == .done(0))
        #expect(r.read(0x0074, size: 8) == .refused)
    }

    @Test func identificationRegisters() {
        let r = RedistributorBox(vcpu: 0, topology: VCPUTopology(count: 1))
        #expect(r.read(0xFFE8) == .done(0x3B))
        #expect(r.read(0x0004) == .done(UInt64(VirtualGIC.iidr)))
    }

    // MARK: SGI_base

    @Test func igroupr0IsRAO() {
        let r = RedistributorBox(vcpu: 0, topology: VCPUTopology(count: 1))
        #expect(r.read(sgiBase + 0x80) == .done(0xFFFF_FFFF))
        #expect(r.write(sgiBase + 0x80, 0) == .done(0))
        #expect(r.read(sgiBase + 0x80) == .done(0xFFFF_FFFF))
    }

    @Test func enableSetAndClearPair() {
        let r = RedistributorBox(vcpu: 0, topology: VCPUTopology(count: 1))
        #expect(r.read(sgiBase + 0x100) == .done(0))
        #expect(r.write(sgiBase + 0x100, 0x0800_0003) == .done(0))
        #expect(r.read(sgiBase + 0x100) == .done(0x0800_0003))
        #expect(r.read(sgiBase + 0x180) == .done(0x0800_0003))
        #expect(r.write(sgiBase + 0x100, 0x4) == .done(0))
        #expect(r.read(sgiBase + 0x100) == .done(0x0800_0007))
        #expect(r.write(sgiBase + 0x180, 0x0800_0001) == .done(0))
        #expect(r.read(sgiBase + 0x100) == .done(0x6))
        #expect(r.isEnabled(intid: 1) && !r.isEnabled(intid: 27))
    }

    @Test func pendingSetAndClearPairAndLevelLine() {
        let r = RedistributorBox(vcpu: 0, topology: VCPUTopology(count: 1))
        #expect(r.write(sgiBase + 0x200, 0x5) == .done(0))
        #expect(r.read(sgiBase + 0x200) == .done(0x5))
        #expect(r.read(sgiBase + 0x280) == .done(0x5))
        #expect(r.write(sgiBase + 0x280, 0x1) == .done(0))
        #expect(r.read(sgiBase + 0x200) == .done(0x4))
        // A level PPI is pending while its line is high; ICPENDR cannot clear the line.
        r.setLevel(intid: 20, high: true)
        #expect(r.read(sgiBase + 0x200) == .done(0x0010_0004))
        #expect(r.write(sgiBase + 0x280, 0x0010_0000) == .done(0))
        #expect(r.isPending(intid: 20))
        r.setLevel(intid: 20, high: false)
        #expect(!r.isPending(intid: 20))
    }

    @Test func activeSetAndClearPair() {
        let r = RedistributorBox(vcpu: 0, topology: VCPUTopology(count: 1))
        #expect(r.write(sgiBase + 0x300, 0x0800_0000) == .done(0))
        #expect(r.read(sgiBase + 0x300) == .done(0x0800_0000))
        #expect(r.read(sgiBase + 0x380) == .done(0x0800_0000))
        #expect(r.write(sgiBase + 0x380, 0xFFFF_FFFF) == .done(0))
        #expect(r.read(sgiBase + 0x300) == .done(0))
    }

    @Test func priorityByteAndWord() {
        let r = RedistributorBox(vcpu: 0, topology: VCPUTopology(count: 1))
        for i in 0..<8 { #expect(r.read(sgiBase + 0x400 + 4 * i) == .done(0)) }
        #expect(r.write(sgiBase + 0x418, 0xA0A0_A0A0) == .done(0))     // INTIDs 24..27
        #expect(r.read(sgiBase + 0x41B, size: 1) == .done(0xA0))
        #expect(r.write(sgiBase + 0x41B, 0x87, size: 1) == .done(0))
        #expect(r.read(sgiBase + 0x418) == .done(0x80A0_A0A0))
        #expect(r.priority(intid: 27) == 0x80)
        #expect(r.read(sgiBase + 0x41C, size: 2) == .refused)
        #expect(r.read(sgiBase + 0x41D) == .refused)
        #expect(r.read(sgiBase + 0x420) == .refused)
    }

    @Test func configSGIsFixedPPIsWritable() {
        let r = RedistributorBox(vcpu: 0, topology: VCPUTopology(count: 1))
        #expect(r.read(sgiBase + 0xC00) == .done(0xAAAA_AAAA))
        #expect(r.write(sgiBase + 0xC00, 0) == .done(0))                 // WI
        #expect(r.read(sgiBase + 0xC00) == .done(0xAAAA_AAAA))
        #expect(r.read(sgiBase + 0xC04) == .done(0))                     // PPIs level
        #expect(r.write(sgiBase + 0xC04, 0xFFFF_FFFF) == .done(0))
        #expect(r.read(sgiBase + 0xC04) == .done(0xAAAA_AAAA))
        // Linux's gic_configure_irq: read-modify-write, then read back.
        #expect(r.write(sgiBase + 0xC04, 0xAAAA_AAAA & ~(UInt64(2) << 22)) == .done(0))
        #expect(r.read(sgiBase + 0xC04) == .done(0xAAAA_AAAA & ~(UInt64(2) << 22)))
    }

    @Test func grpmodAndNsacrAreRAZWI() {
        let r = RedistributorBox(vcpu: 0, topology: VCPUTopology(count: 1))
        for o in [0xD00, 0xE00] {
            #expect(r.write(sgiBase + o, 0xFFFF_FFFF) == .done(0))
            #expect(r.read(sgiBase + o) == .done(0))
        }
    }

    /// Linux's gic_cpu_init on the SGI frame, then the RWP poll in RD_base.
    @Test func linuxCPUInitSequence() {
        let r = RedistributorBox(vcpu: 0, topology: VCPUTopology(count: 1))
        #expect(r.write(sgiBase + 0x80, 0xFFFF_FFFF) == .done(0))
        #expect(r.write(sgiBase + 0x380, 0xFFFF_FFFF) == .done(0))
        #expect(r.write(sgiBase + 0x180, 0xFFFF_FFFF) == .done(0))
        for i in 0..<8 { #expect(r.write(sgiBase + 0x400 + 4 * i, 0xA0A0_A0A0) == .done(0)) }
        guard case .done(let ctlr) = r.read(0x0000) else { Issue.record(); return }
        #expect(ctlr & (1 << 3) == 0)                                   // RWP
        #expect(r.priority(intid: 0) == 0xA0 && r.priority(intid: 31) == 0xA0)
    }

    @Test func badAccessesAreRefused() {
        let r = RedistributorBox(vcpu: 0, topology: VCPUTopology(count: 1))
        #expect(r.write(0x0004, 0) == .refused)          // IIDR
        #expect(r.write(0x0008, 0, size: 8) == .refused) // TYPER
        #expect(r.write(0x000C, 0) == .refused)
        #expect(r.write(0xFFE8, 0) == .refused)          // PIDR2
        #expect(r.read(0x000C, size: 8) == .refused)     // unaligned 64-bit
        #expect(r.read(0x0014, size: 8) == .refused)
        #expect(r.read(0x0014, size: 2) == .refused)
        #expect(r.read(sgiBase + 0x100, size: 8) == .refused)
        #expect(r.read(sgiBase + 0x102) == .refused)
        #expect(r.read(sgiBase + 0x104) == .refused)     // no ISENABLER1 (no extended PPIs)
        #expect(r.read(0x0040) == .refused)              // SETLPIR
        #expect(r.read(0x00A0) == .refused)              // INVLPIR
        #expect(r.read(0x8000) == .refused)
        #expect(r.read(0x1FFE8) == .refused)
    }

    // MARK: Inputs

    @Test func inputsRejectWrongINTIDs() {
        let r = RedistributorBox(vcpu: 0, topology: VCPUTopology(count: 1))
        #expect(!r.setPending(intid: 32))
        #expect(!r.setLevel(intid: 15, high: true))
        #expect(!r.linkHardware(intid: 33, physical: 33))
        #expect(!r.linkHardware(intid: 27, physical: 1020))
        #expect(r.linkHardware(intid: 27, physical: 27))
        #expect(r.isHardwareLinked(intid: 27))
        r.unlinkHardware(intid: 27)
        #expect(!r.isHardwareLinked(intid: 27))
    }

    @Test func edgePPILatchesOnRisingEdgeOnly() {
        let r = RedistributorBox(vcpu: 0, topology: VCPUTopology(count: 1))
        _ = r.write(sgiBase + 0xC04, UInt64(2) << 8)     // PPI 20 edge
        r.setLevel(intid: 20, high: true)
        #expect(r.isPending(intid: 20))
        _ = r.write(sgiBase + 0x280, 1 << 20)
        #expect(!r.isPending(intid: 20))
        r.setLevel(intid: 20, high: true)                 // still high: no new edge
        #expect(!r.isPending(intid: 20))
    }

    @Test func messagesForAnotherVCPUAreIgnored() {
        let r = RedistributorBox(vcpu: 1, topology: VCPUTopology(count: 2))
        r.accept(.group1Enable(vcpu: 0, enabled: true))
        #expect(!r.group1Enabled)
        r.accept(.group1Enable(vcpu: 1, enabled: true))
        #expect(r.group1Enabled)
        r.accept(.spi(SPINotice(vcpu: 0, intid: 33, priority: 0xA0, levelSensitive: true, pending: true, sequence: 1)))
        #expect(!r.isPending(intid: 33))
        r.accept(.spi(SPINotice(vcpu: 1, intid: 33, priority: 0xA0, levelSensitive: true, pending: true, sequence: 1)))
        #expect(r.isPending(intid: 33))
    }
}
