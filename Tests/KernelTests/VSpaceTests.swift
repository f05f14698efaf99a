@testable import Kernel
import Testing

/// Frames, page tables and VSpaces (docs/kernel/vspace.md).
@Suite struct VSpaceTests {
    static let vs: Word = 10, pt2: Word = 11, pt3: Word = 12, frame: Word = 13
    static let va: Word = 0x4000_3000

    /// VSpace in 10, page tables in 11 and 12, a frame in 13.
    func objects(_ h: Harness) {
        #expect(h.retype(h.bigUntyped, .vspace, into: Self.vs) == nil)
        #expect(h.retype(h.bigUntyped, .pageTable, into: Self.pt2, count: 2) == nil)
        #expect(h.retype(h.bigUntyped, .frame, into: Self.frame) == nil)
        h.check("after retype")
    }

    /// Tables for `va` (levels 2 and 3), then the frame at `va`.
    func mapped(_ h: Harness, rights: CapRights = [.read, .write], attributes: Word = VMAttributes.default) {
        objects(h)
        #expect(h.invoke(Self.pt2, .pageTableMap, [Self.va, 0], extraCaps: [Self.vs]) == nil)
        #expect(h.invoke(Self.pt3, .pageTableMap, [Self.va, 0], extraCaps: [Self.vs]) == nil)
        #expect(h.invoke(Self.frame, .frameMap, [Self.va, Word(rights.rawValue), attributes], extraCaps: [Self.vs]) == nil)
        h.check("after map")
    }

    @Test func retypeMakesZeroedObjectsAndVMIDs() {
        let h = Harness()
        objects(h)
        #expect(h.cap(Self.vs).type == .vspace && h.cap(Self.pt2).type == .pageTable && h.cap(Self.frame).type == .frame)
        #expect(h.cap(Self.frame).object & 4095 == 0 && h.cap(Self.pt2).object & 8191 == 0)
        #expect(h.kernel.vmid(h.cap(Self.vs)) == firstVSpaceVMID)
        #expect(h.retype(h.bigUntyped, .vspace, into: 14) == nil)
        #expect(h.kernel.vmid(h.cap(14)) == firstVSpaceVMID + 1)
        let raw = UnsafePointer<Word>(bitPattern: h.cap(Self.pt3).object)!
        #expect((0..<1024).allSatisfy { raw[$0] == 0 })
        h.check()
    }

    @Test func mapTablesThenFrameAndReadTheDescriptor() {
        let h = Harness()
        mapped(h)
        let vs = h.cap(Self.vs)
        #expect(h.kernel.descriptor(vs, Self.va, level: 1) == Stage2.table(Word(h.cap(Self.pt2).object)))
        #expect(h.kernel.descriptor(vs, Self.va, level: 2) == Stage2.table(Word(h.cap(Self.pt3).object)))
        let d = h.kernel.descriptor(vs, Self.va)!
        #expect(d & Stage2.addressMask == Word(h.cap(Self.frame).object))
        #expect(d & 0b11 == 0b11)
        #expect((d >> 2) & 0xF == 0b1111)  // normal write-back
        #expect((d >> 6) & 0b11 == 0b11)  // read-write
        #expect((d >> 8) & 0b11 == 0b11)  // inner shareable
        #expect(d & (1 << 10) != 0)  // AF
        #expect((d >> 53) & 0b11 == 0)  // executable (default attributes)
        #expect(h.cap(Self.frame).small == 1 && h.cap(Self.frame).mappedAddress == Self.va)
        #expect(h.cap(Self.pt2).small == 1 && h.cap(Self.pt3).small == 2)
        #expect(h.kernel.takeTLBFlush() == TLBFlush.none)
    }

    @Test func encodingAgreesWithTheArchTables() {
        // TranslationTables.stage2LeafDescriptor(0, level: 3, .readWrite) gives the same (ArchTests).
        #expect(Stage2.page(0, rights: [.read, .write], attributes: VMAttributes.cacheable | VMAttributes.executeNever)
            == Stage2.normalReadWriteXNPage)
        let dev = Stage2.page(0x0900_0000, rights: [.read], attributes: 0)
        #expect(dev == 0x0900_0000 | 0b11 | 0b0001 << 2 | 0b01 << 6 | 1 << 10)
    }

    @Test func rightsNarrowAndWriteWithoutReadIsNoAccess() {
        let h = Harness()
        mapped(h, rights: [.read])
        #expect((h.kernel.descriptor(h.cap(Self.vs), Self.va)! >> 6) & 0b11 == 0b01)
        // A read-only copy asked for read-write still maps read-only.
        #expect(h.copy(Self.frame, to: 20, rights: [.read]) == nil)
        #expect(h.cap(20).small == 0)  // copies start unmapped
        #expect(h.invoke(20, .frameMap, [Self.va + 4096, 3, VMAttributes.executeNever], extraCaps: [Self.vs]) == nil)
        let d = h.kernel.descriptor(h.cap(Self.vs), Self.va + 4096)!
        #expect((d >> 6) & 0b11 == 0b01 && (d >> 53) & 0b11 == 0b10)
        #expect(h.copy(Self.frame, to: 21, rights: [.write]) == nil)
        #expect(h.invoke(21, .frameMap, [Self.va + 8192, 3, 3], extraCaps: [Self.vs]) == nil)
        #expect((h.kernel.descriptor(h.cap(Self.vs), Self.va + 8192)! >> 6) & 0b11 == 0)
        h.check()
    }

    @Test func mapErrors() {
        let h = Harness()
        objects(h)
        let rw = Word(3), attr = VMAttributes.default
        // No table yet: failed lookup at level 1 (30 bits left).
        #expect(h.invoke(Self.frame, .frameMap, [Self.va, rw, attr], extraCaps: [Self.vs])
            == .failedLookup(source: false, .missingCapability(bitsLeft: 30)))
        #expect(h.invoke(Self.pt2, .pageTableMap, [Self.va, 0], extraCaps: [Self.vs]) == nil)
        #expect(h.invoke(Self.frame, .frameMap, [Self.va, rw, attr], extraCaps: [Self.vs])
            == .failedLookup(source: false, .missingCapability(bitsLeft: 21)))
        #expect(h.invoke(Self.pt3, .pageTableMap, [Self.va, 0], extraCaps: [Self.vs]) == nil)
        // Table already there.
        #expect(h.retype(h.bigUntyped, .pageTable, into: 14) == nil)
        #expect(h.invoke(14, .pageTableMap, [Self.va, 0], extraCaps: [Self.vs]) == .deleteFirst)
        // A mapped table cannot be mapped again.
        #expect(h.invoke(Self.pt2, .pageTableMap, [0, 0], extraCaps: [Self.vs]) == .invalidCapability(index: 0))
        #expect(h.invoke(Self.frame, .frameMap, [Self.va + 1, rw, attr], extraCaps: [Self.vs]) == .alignment)
        #expect(h.invoke(Self.frame, .frameMap, [userTop, rw, attr], extraCaps: [Self.vs]) == .invalidArgument(index: 0))
        #expect(h.invoke(Self.frame, .frameMap, [1 << 39, rw, attr], extraCaps: [Self.vs]) == .invalidArgument(index: 0))
        #expect(h.invoke(14, .pageTableMap, [userTop, 0], extraCaps: [Self.vs]) == .invalidArgument(index: 0))
        // Wrong capability types.
        #expect(h.invoke(Self.frame, .frameMap, [Self.va, rw, attr], extraCaps: [Self.pt2]) == .invalidCapability(index: 1))
        #expect(h.invoke(Self.frame, .pageTableMap, [Self.va, 0], extraCaps: [Self.vs]) == .illegalOperation)
        #expect(h.invoke(Self.vs, .frameMap, [Self.va, rw, attr], extraCaps: [Self.vs]) == .illegalOperation)
        #expect(h.invoke(Self.frame, .frameMap, [Self.va, rw], extraCaps: [Self.vs]) == .truncatedMessage)
        #expect(h.invoke(Self.frame, .frameMap, [Self.va, rw, attr]) == .truncatedMessage)
        // Mapped: slot taken, frame taken.
        #expect(h.invoke(Self.frame, .frameMap, [Self.va, rw, attr], extraCaps: [Self.vs]) == nil)
        #expect(h.invoke(Self.frame, .frameMap, [Self.va + 4096, rw, attr], extraCaps: [Self.vs]) == .invalidCapability(index: 0))
        #expect(h.retype(h.bigUntyped, .frame, into: 15) == nil)
        #expect(h.invoke(15, .frameMap, [Self.va, rw, attr], extraCaps: [Self.vs]) == .deleteFirst)
        // Page-table capabilities are not copied.
        #expect(h.copy(Self.pt2, to: 16) == .illegalOperation)
        h.check()
    }

    @Test func frameGetAddress() {
        let h = Harness()
        objects(h)
        #expect(h.invoke(Self.frame, .frameGetAddress) == nil)
        #expect(h.root.pointee.mr[0] == Word(h.cap(Self.frame).object))
        #expect(h.root.pointee.messageInfo.length == 1)
    }

    @Test func unmapFrameAndTable() {
        let h = Harness()
        mapped(h)
        let vmid = h.kernel.vmid(h.cap(Self.vs))!
        #expect(h.invoke(Self.frame, .frameUnmap) == nil)
        #expect(h.cap(Self.frame).small == 0 && h.kernel.descriptor(h.cap(Self.vs), Self.va) == 0)
        #expect(h.kernel.takeTLBFlush() == .page(vmid: vmid, address: Self.va))
        #expect(h.kernel.takeTLBFlush() == TLBFlush.none)
        #expect(h.invoke(Self.frame, .frameUnmap) == nil)  // unmapped: nothing to do
        h.check("frame unmapped")
        // Map again, then unmap the level-2 table: everything below goes.
        #expect(h.invoke(Self.frame, .frameMap, [Self.va, 3, 3], extraCaps: [Self.vs]) == nil)
        #expect(h.invoke(Self.pt2, .pageTableUnmap) == nil)
        #expect(h.cap(Self.pt2).small == 0 && h.cap(Self.pt3).small == 0 && h.cap(Self.frame).small == 0)
        #expect(h.kernel.descriptor(h.cap(Self.vs), Self.va, level: 1) == 0)
        #expect(h.kernel.takeTLBFlush() == .vmid(vmid))
        h.check("table unmapped")
        // The tables are empty and may be used again.
        #expect(h.invoke(Self.pt3, .pageTableMap, [Self.va, 0], extraCaps: [Self.vs]) == nil)
        #expect(h.cap(Self.pt3).small == 1)
        h.check()
    }

    @Test func deletingCapabilitiesUnmaps() {
        let h = Harness()
        mapped(h)
        #expect(h.copy(Self.frame, to: 20) == nil)
        #expect(h.invoke(20, .frameMap, [Self.va + 4096, 3, 3], extraCaps: [Self.vs]) == nil)
        #expect(h.delete(Self.frame) == nil)  // not the last capability: still unmaps its mapping
        #expect(h.kernel.descriptor(h.cap(Self.vs), Self.va) == 0)
        #expect(h.kernel.descriptor(h.cap(Self.vs), Self.va + 4096) != 0)
        h.check("frame cap deleted")
        #expect(h.move(20, to: 21) == nil)  // the back-pointer follows the move
        h.check("moved")
        #expect(h.delete(Self.pt3) == nil)
        #expect(h.cap(21).small == 0 && h.kernel.descriptor(h.cap(Self.vs), Self.va, level: 2) == 0)
        h.check("table deleted")
        #expect(h.invoke(21, .frameMap, [Self.va, 3, 3], extraCaps: [Self.vs]) == .failedLookup(source: false, .missingCapability(bitsLeft: 21)))
        let vmid = h.kernel.vmid(h.cap(Self.vs))!
        _ = h.kernel.takeTLBFlush()
        #expect(h.delete(Self.vs) == nil)
        #expect(h.cap(Self.pt2).small == 0)
        #expect(h.kernel.takeTLBFlush() == .vmid(vmid))
        h.check("VSpace deleted")
        // Its VMID is free again.
        #expect(h.retype(h.bigUntyped, .vspace, into: Self.vs) == nil)
        #expect(h.kernel.vmid(h.cap(Self.vs)) == vmid)
        h.check()
    }

    @Test func revokeOfTheUntypedClearsEverything() {
        let h = Harness(preemptEvery: 3)  // preempted often: restarts must continue
        #expect(h.retype(h.bigUntyped, .untyped, size: 16, into: 9) == nil)
        #expect(h.retype(9, .vspace, into: Self.vs) == nil)
        #expect(h.retype(9, .pageTable, into: Self.pt2, count: 2) == nil)
        #expect(h.retype(9, .frame, into: 20, count: 8) == nil)
        #expect(h.invoke(Self.pt2, .pageTableMap, [Self.va, 0], extraCaps: [Self.vs]) == nil)
        #expect(h.invoke(Self.pt3, .pageTableMap, [Self.va, 0], extraCaps: [Self.vs]) == nil)
        for i: Word in 0..<8 {
            #expect(h.invoke(20 + i, .frameMap, [0x4000_0000 + i << 12, 3, 3], extraCaps: [Self.vs]) == nil)
        }
        h.check("mapped")
        #expect(h.revoke(9) == nil)
        for i: Word in 10...27 { #expect(h.cap(i).isNull) }
        h.check("revoked")
        // The memory is reused: new objects are zeroed, the VMID is free.
        #expect(h.retype(9, .vspace, into: Self.vs) == nil)
        #expect(h.kernel.vmid(h.cap(Self.vs)) == firstVSpaceVMID)
        h.check()
    }

    @Test func deletingAVSpaceWithMappingsIsPreemptible() {
        let h = Harness(preemptEvery: 2)
        mapped(h)
        for i: Word in 0..<6 {
            #expect(h.retype(h.bigUntyped, .frame, into: 30 + i) == nil)
            #expect(h.invoke(30 + i, .frameMap, [Self.va + (i + 1) << 12, 3, 3], extraCaps: [Self.vs]) == nil)
        }
        h.root.pointee.messageInfo = MessageInfo(label: InvocationLabel.cnodeDelete.rawValue, length: 2)
        h.root.pointee.mr[0] = Self.vs
        h.root.pointee.mr[1] = Harness.depth
        h.kernel.syscall(.call, capAddress: h.cnode)
        #expect(h.root.pointee.state == .restart)  // preempted part-way
        h.check("preempted")
        #expect(h.delete(Self.vs) == nil)
        for i: Word in 0..<6 { #expect(h.cap(30 + i).small == 0) }
        h.check()
    }

    @Test func vmidsRunOut() {
        let h = Harness(size: 16 << 20)
        #expect(h.retype(h.bigUntyped, .cnode, size: 8, into: 9) == nil)
        let node = h.cap(9)
        var made: Word = 0
        while true {
            let err = h.invoke(h.bigUntyped, .untypedRetype, [ObjectType.vspace.rawValue, 0, 9, Harness.depth, made, 1], extraCaps: [h.cnode])
            if err != nil {
                #expect(err == .deleteFirst)
                break
            }
            made += 1
        }
        #expect(made == 256 - firstVSpaceVMID)
        _ = node
        h.check()
    }
}
