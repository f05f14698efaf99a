import Testing
@testable import VMM

/// A vCPU with group 1 on and the given SGIs/PPIs enabled.
func readyVCPU(enable: UInt32 = 0xFFFF_FFFF, vcpu: Int = 0, count: Int = 1) -> VirtualRedistributor {
    var r = VirtualRedistributor(vcpu: vcpu, topology: VCPUTopology(count: count))
    r.accept(.group1Enable(vcpu: vcpu, enabled: true))
    _ = r.access(offset: 0x10100, size: 4, isWrite: true, value: UInt64(enable))
    return r
}

extension VirtualRedistributor {
    mutating func setPriority(_ intid: Int, _ p: UInt8) {
        _ = access(offset: 0x10400 + intid, size: 1, isWrite: true, value: UInt64(p))
    }
}

/// The decoded list registers a flush produced.
func decoded(_ f: ListRegisterFile) -> [ListRegister] {
    (0..<f.used).map { ListRegister(raw: f[$0]) }
}

/// What the guest does to a list register: acknowledge (pending -> active),
/// deactivate (-> invalid), or both.
func guestAcks(_ f: inout ListRegisterFile, _ i: Int) {
    var lr = ListRegister(raw: f[i])
    lr.state = lr.state.isPending ? .active : lr.state
    f[i] = lr.raw
}
func guestDeactivates(_ f: inout ListRegisterFile, _ i: Int) {
    var lr = ListRegister(raw: f[i])
    lr.state = lr.state.isPending ? .pending : .invalid
    if lr.state == .pending { lr.state = .invalid } // acknowledge and deactivate
    f[i] = lr.raw
}

@Suite struct ListRegisterEncodingTests {
    @Test func hardwareLinkedTimer() {
        let lr = ListRegister(virtualID: 27, priority: 0xA0, state: .pending, physicalID: 27)
        #expect(lr.raw == 0x70A0_001B_0000_001B)
        #expect(ListRegister(raw: lr.raw) == lr)
    }

    @Test func levelWithEOIMaintenance() {
        let lr = ListRegister(virtualID: 33, priority: 0xA0, state: .pending, eoiMaintenance: true)
        #expect(lr.raw == 0x50A0_0200_0000_0021)
        let back = ListRegister(raw: lr.raw)
        #expect(back.eoiMaintenance && back.physicalID == nil && back.group1)
    }

    @Test func hardwareWinsOverEOI() {
        let lr = ListRegister(virtualID: 27, priority: 0, state: .active, physicalID: 0x3FF, eoiMaintenance: true)
        #expect(!lr.eoiMaintenance)
        #expect(lr.raw == 0xB000_03FF_0000_001B)
    }

    @Test func rawRoundTrips() {
        let raws: [UInt64] = [0, 0x1000_0000_0000_0000, 0xF0F8_1FFF_0000_03FB, 0x90F8_0200_0000_0001,
                              0xD000_0000_FFFF_FFFF, 0x5000_0000_0000_0020]
        for raw in raws {
            let lr = ListRegister(raw: raw)
            #expect(lr.raw == raw, "raw \(raw)")
        }
        #expect(ListRegister(raw: 0xC000_0000_0000_0000).state == .pendingAndActive)
        #expect(ListRegister(raw: 0x8000_0000_0000_0000).state == .active)
        #expect(ListRegister(raw: 0x2000_0005_0000_0000).physicalID == 5)
        #expect(ListRegister(raw: 0x0000_0005_0000_0000).physicalID == nil)
        #expect(ListRegister(raw: 0).group1 == false)
        #expect(ListRegister(virtualID: 1, priority: 0, state: .invalid).group1)
    }
}

@Suite struct FlushAndSyncTests {
    @Test func flushChoosesByPriorityAndSpills() {
        var r = readyVCPU()
        let prios: [(Int, UInt8)] = [(1, 0xA0), (2, 0x20), (3, 0x80), (16, 0x40), (20, 0xF0), (27, 0x60)]
        for (i, p) in prios { r.setPriority(i, p); r.setPending(intid: i) }
        var f = ListRegisterFile(count: 4)
        let res = r.flush(into: &f)
        #expect(res == FlushResult(used: 4, waiting: true, noPendingMaintenance: true))
        #expect(decoded(f).map(\.virtualID) == [2, 16, 27, 3])
        #expect(decoded(f).allSatisfy { $0.state == .pending && $0.group1 && $0.physicalID == nil })
        #expect(decoded(f).map(\.priority) == [0x20, 0x40, 0x60, 0x80])
        // The edge latches moved into the list registers; the spilled ones wait.
        #expect(!r.isPending(intid: 2) && r.isPending(intid: 1) && r.isPending(intid: 20))
    }

    @Test func tiesGoToLowerINTIDAndUnusedAreZero() {
        var r = readyVCPU()
        r.setPending(intid: 9); r.setPending(intid: 4)
        var f = ListRegisterFile(count: 4)
        f[3] = 0xDEAD
        let res = r.flush(into: &f)
        #expect(res == FlushResult(used: 2, waiting: false, noPendingMaintenance: false))
        #expect(decoded(f).map(\.virtualID) == [4, 9])
        #expect(f[2] == 0 && f[3] == 0)
    }

    @Test func disabledOrGroupOffIsNotFlushed() {
        var r = readyVCPU(enable: 0x2)
        r.setPending(intid: 1); r.setPending(intid: 3)
        var f = ListRegisterFile(count: 4)
        _ = r.flush(into: &f)
        #expect(decoded(f).map(\.virtualID) == [1])
        var off = readyVCPU()
        off.accept(.group1Enable(vcpu: 0, enabled: false))
        off.setPending(intid: 1)
        #expect(off.flush(into: &f).used == 0)
        #expect(off.isPending(intid: 1))
    }

    @Test func syncFoldsStatesBackAndRefills() {
        var r = readyVCPU()
        for i in 1...6 { r.setPriority(i, UInt8(i * 8)); r.setPending(intid: i) }
        var f = ListRegisterFile(count: 4)
        _ = r.flush(into: &f)
        #expect(decoded(f).map(\.virtualID) == [1, 2, 3, 4])
        // Guest: acknowledged SGI 1 (active), took and finished SGI 2, left 3 and 4 pending.
        guestAcks(&f, 0)
        guestDeactivates(&f, 1)
        r.sync(f)
        #expect(r.isActive(intid: 1) && !r.isPending(intid: 1))
        #expect(!r.isActive(intid: 2) && !r.isPending(intid: 2))
        #expect(r.isPending(intid: 3) && r.isPending(intid: 4) && !r.isActive(intid: 3))
        // Refill: the active one first, then 3, 4 and the spilled 5.
        let res = r.flush(into: &f)
        #expect(decoded(f).map(\.virtualID) == [1, 3, 4, 5])
        #expect(decoded(f).map(\.state) == [.active, .pending, .pending, .pending])
        #expect(res.waiting && res.noPendingMaintenance)
        // A new edge on an SGI held active becomes pending+active (edge allows it).
        r.sync(f)
        r.setPending(intid: 1)
        _ = r.flush(into: &f)
        #expect(decoded(f)[0] == ListRegister(virtualID: 1, priority: 8, state: .pendingAndActive))
    }

    @Test func activeBeatsHigherPriorityPending() {
        var r = readyVCPU()
        _ = r.access(offset: 0x10300, size: 4, isWrite: true, value: 1 << 9)   // SGI 9 active
        r.setPriority(9, 0xF0)
        for i in 1...4 { r.setPriority(i, 0x10); r.setPending(intid: i) }
        var f = ListRegisterFile(count: 4)
        let res = r.flush(into: &f)
        #expect(decoded(f).map(\.virtualID) == [9, 1, 2, 3])
        #expect(res.waiting && res.noPendingMaintenance)
    }

    @Test func allActiveSpillAsksForEOIInsteadOfNPIE() {
        var r = readyVCPU()
        _ = r.linkHardware(intid: 27, physical: 27)
        _ = r.access(offset: 0x10300, size: 4, isWrite: true, value: 0b1110 | 1 << 27)
        r.setPending(intid: 5)
        var f = ListRegisterFile(count: 4)
        let res = r.flush(into: &f)
        #expect(res == FlushResult(used: 4, waiting: true, noPendingMaintenance: false))
        let lrs = decoded(f)
        #expect(lrs.allSatisfy { $0.state == .active })
        #expect(lrs.filter { $0.physicalID == nil }.allSatisfy { $0.eoiMaintenance })
        #expect(lrs.contains { $0.physicalID == 27 })
        // SGI 2 deactivated: the waiting SGI 5 gets its list register.
        var g = f
        for i in 0..<4 where ListRegister(raw: g[i]).virtualID == 2 { guestDeactivates(&g, i) }
        r.sync(g)
        _ = r.flush(into: &f)
        #expect(decoded(f).contains { $0.virtualID == 5 && $0.state == .pending })
    }

    /// With one list register, two pending: NPIE (never UIE), refilled after the guest takes it.
    @Test func oneListRegister() {
        var r = readyVCPU()
        r.setPending(intid: 1); r.setPending(intid: 2)
        var f = ListRegisterFile(count: 1)
        #expect(r.flush(into: &f) == FlushResult(used: 1, waiting: true, noPendingMaintenance: true))
        guestAcks(&f, 0)
        r.sync(f)
        let res = r.flush(into: &f)
        // SGI 1 is active and must stay; SGI 2 still waits, and no LR is pending.
        #expect(decoded(f).map(\.virtualID) == [1])
        #expect(res == FlushResult(used: 1, waiting: true, noPendingMaintenance: false))
        #expect(decoded(f)[0].eoiMaintenance)
        guestDeactivates(&f, 0)
        r.sync(f)
        _ = r.flush(into: &f)
        #expect(decoded(f).map(\.virtualID) == [2])
    }

    @Test func levelPPIResampledWhileLineHigh() {
        var r = readyVCPU()
        r.setLevel(intid: 20, high: true)
        var f = ListRegisterFile(count: 4)
        _ = r.flush(into: &f)
        #expect(decoded(f) == [ListRegister(virtualID: 20, priority: 0, state: .pending, eoiMaintenance: true)])
        // Acknowledged, exit while active: active only (no pending+active for level).
        guestAcks(&f, 0)
        r.sync(f)
        #expect(r.isActive(intid: 20) && r.isPending(intid: 20))
        _ = r.flush(into: &f)
        #expect(decoded(f) == [ListRegister(virtualID: 20, priority: 0, state: .active, eoiMaintenance: true)])
        // Deactivated (EOI maintenance) with the line still high: pending again.
        guestDeactivates(&f, 0)
        r.sync(f)
        #expect(!r.isActive(intid: 20) && r.isPending(intid: 20))
        _ = r.flush(into: &f)
        #expect(decoded(f).first?.state == .pending)
        // The device lowers the line before the guest deactivates: nothing more.
        guestDeactivates(&f, 0)
        r.setLevel(intid: 20, high: false)
        r.sync(f)
        #expect(!r.isPending(intid: 20))
        #expect(r.flush(into: &f).used == 0)
    }

    @Test func levelSoftPendingIsClearedByDeactivation() {
        var r = readyVCPU()
        _ = r.access(offset: 0x10200, size: 4, isWrite: true, value: 1 << 21)   // ISPENDR, PPI 21 level
        var f = ListRegisterFile(count: 4)
        _ = r.flush(into: &f)
        #expect(decoded(f).first?.eoiMaintenance == true)
        guestDeactivates(&f, 0)
        r.sync(f)
        #expect(!r.isPending(intid: 21))
        #expect(r.flush(into: &f).used == 0)
    }

    @Test func hardwareLinkedTimer() {
        var r = readyVCPU()
        r.setPriority(27, 0xA0)
        _ = r.linkHardware(intid: 27, physical: 27)
        r.setPending(intid: 27)                      // physical PPI 27 fired at EL2
        var f = ListRegisterFile(count: 4)
        _ = r.flush(into: &f)
        #expect(f[0] == 0x70A0_001B_0000_001B)
        #expect(!r.isPending(intid: 27))             // the LR holds it
        // Exit before the guest took it: back in the model, same LR next time.
        r.sync(f)
        #expect(r.isPending(intid: 27))
        _ = r.flush(into: &f)
        #expect(f[0] == 0x70A0_001B_0000_001B)
        // Guest acknowledged: active stays in an LR (HW, no EOI bit) until it
        // deactivates, which deactivates the physical interrupt too.
        guestAcks(&f, 0)
        r.sync(f)
        #expect(r.isActive(intid: 27))
        r.setPending(intid: 27)
        _ = r.flush(into: &f)
        #expect(decoded(f) == [ListRegister(virtualID: 27, priority: 0xA0, state: .active, physicalID: 27)])
        guestDeactivates(&f, 0)
        r.sync(f)
        #expect(!r.isActive(intid: 27))
        _ = r.flush(into: &f)
        #expect(decoded(f) == [ListRegister(virtualID: 27, priority: 0xA0, state: .pending, physicalID: 27)])
    }

    @Test func syncIgnoresRegistersPastUsed() {
        var r = readyVCPU()
        r.setPending(intid: 3)
        var f = ListRegisterFile(count: 4)
        _ = r.flush(into: &f)
        f[2] = ListRegister(virtualID: 5, priority: 0, state: .active).raw
        r.sync(f)
        #expect(!r.isActive(intid: 5))
        #expect(r.isPending(intid: 3))
    }

    @Test func sixteenListRegisters() {
        var r = readyVCPU()
        for i in 0..<32 { r.setPending(intid: i) }
        var f = ListRegisterFile(count: 40)
        #expect(f.count == 16)
        let res = r.flush(into: &f)
        #expect(res.used == 16 && res.waiting)
        #expect(decoded(f).map(\.virtualID) == Array(UInt32(0)..<16))
    }
}
