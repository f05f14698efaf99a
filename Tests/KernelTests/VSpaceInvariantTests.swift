@testable import Kernel
import Testing

/// Each VSpace invariant catches a planted fault (the InvariantTests pattern).
@Suite struct VSpaceInvariantsCatchCorruption {
    func violation(_ h: Harness) -> String? { h.kernel.checkInvariants().map { "\($0.message)" } }
    func slotRef(_ h: Harness, _ i: Word) -> SlotRef { cnodeSlot(h.kernel.rootCNode, i) }

    /// VSpace 10, tables 11 (level 2) and 12 (level 3), frame 13 mapped at 0x4000_3000.
    func mapped(_ h: Harness) -> EntryRef {
        #expect(h.retype(h.bigUntyped, .vspace, into: 10) == nil)
        #expect(h.retype(h.bigUntyped, .pageTable, into: 11, count: 2) == nil)
        #expect(h.retype(h.bigUntyped, .frame, into: 13) == nil)
        #expect(h.invoke(11, .pageTableMap, [0x4000_3000, 0], extraCaps: [10]) == nil)
        #expect(h.invoke(12, .pageTableMap, [0x4000_3000, 0], extraCaps: [10]) == nil)
        #expect(h.invoke(13, .frameMap, [0x4000_3000, 3, 3], extraCaps: [10]) == nil)
        #expect(violation(h) == nil)
        return mappingEntry(h.cap(13))!
    }

    @Test func mappedFrameWithoutItsEntryIsCaught() {
        let h = Harness()
        let e = mapped(h)
        e.pointee = 0
        #expect(violation(h) == "mapped capability's entry missing or not pointing at its object")
    }

    @Test func entryWithoutACapabilityIsCaught() {
        let h = Harness()
        let e = mapped(h)
        (e + 1).pointee = e.pointee  // the next page maps the frame too, with no capability
        #expect(violation(h) == "table entries and mapping capabilities differ: an entry without its capability, or a mapping in a dead table")
    }

    @Test func wrongBackPointerIsCaught() {
        let h = Harness()
        let e = mapped(h)
        backPointer(e).pointee = Word(UInt(bitPattern: slotRef(h, 12)))
        #expect(violation(h) == "mapping's back-pointer names another slot")
    }

    @Test func unmappedTableWithEntriesIsCaught() {
        let h = Harness()
        _ = mapped(h)
        #expect(h.retype(h.bigUntyped, .pageTable, into: 14) == nil)
        tableEntry(h.cap(14).object, 3).pointee = Stage2.table(0x1000)
        #expect(violation(h) == "unmapped page table not empty")
    }

    @Test func sharedVMIDIsCaught() {
        let h = Harness()
        _ = mapped(h)
        #expect(h.retype(h.bigUntyped, .vspace, into: 14) == nil)
        #expect(violation(h) == nil)
        backPointer(tableEntry(h.cap(14).object, 511)).pointee = h.kernel.vmid(h.cap(10))!
        #expect(violation(h) == "two VSpaces share a VMID")
    }

    @Test func reservedEntryMappedIsCaught() {
        let h = Harness()
        _ = mapped(h)
        tableEntry(h.cap(10).object, 511).pointee = Stage2.table(0x1000)
        #expect(violation(h) == "kernel-reserved VSpace entry mapped")
    }

    @Test func vmidBitmapOutOfStepIsCaught() {
        let h = Harness()
        _ = mapped(h)
        h.kernel.state.pointee.vspace.vmids[3] |= 1 << 63
        #expect(violation(h) == "VMID bitmap disagrees with the live VSpaces")
    }

    @Test func mappingInADeadVSpaceIsCaught() {
        let h = Harness()
        _ = mapped(h)
        emptySlot(slotRef(h, 10))  // the VSpace dies without emptying its tables
        #expect(violation(h) != nil)
    }
}
