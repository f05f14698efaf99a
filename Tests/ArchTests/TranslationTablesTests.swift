import Testing

@testable import Arch

/// Tables built in a host buffer that stands in for a partition's pool.
final class Pool {
    let physical: UInt64 = 0x4100_0000
    let bytes: UInt64
    let memory: UnsafeMutableRawPointer
    init(tables: Int) {
        bytes = UInt64(tables) * 4096
        memory = UnsafeMutableRawPointer.allocate(byteCount: Int(bytes), alignment: 4096)
    }
    deinit { memory.deallocate() }
    func make() -> TranslationTables { TranslationTables(poolPhysical: physical, pool: memory, size: bytes) }
}

@Suite struct TranslationTablesTests {
    @Test func blocksWhereAlignedPagesElsewhere() throws {
        let pool = Pool(tables: 8)
        var t = pool.make()
        // 2 MiB-aligned 4 MiB: two level-2 blocks, no level-3 table.
        try t.map(virtual: 0x4000_0000, physical: 0x4000_0000, size: 4 << 20, attributes: .readWrite)
        #expect(t.tablesUsed == 2)  // root + one level-2
        // 1 MiB + 4 KiB at an odd page: one level-3 table more.
        try t.map(virtual: 0x5000_1000, physical: 0x5000_1000, size: (1 << 20) + 4096, attributes: .readOnly)
        #expect(t.tablesUsed == 3)
        var leaves: [Leaf] = []
        t.forEachLeaf { leaves.append($0) }
        #expect(leaves.filter { $0.size == 2 << 20 }.count == 2)
        #expect(leaves.filter { $0.size == 4096 }.count == 257)
        #expect(leaves.map(\.virtual) == leaves.map(\.virtual).sorted())
    }

    @Test func translateFollowsTheWalk() throws {
        let pool = Pool(tables: 8)
        var t = pool.make()
        try t.map(virtual: 0x2000_0000, physical: 0x4900_0000, size: 0x3000, attributes: .readWrite)
        try t.map(virtual: 0x4008_0000, physical: 0x4008_0000, size: 0x1000, attributes: .kernelText)
        let hit = t.translate(0x2000_1234)
        #expect(hit?.physical == 0x4900_1234)
        #expect(hit?.attributes == .readWrite)
        #expect(t.translate(0x4008_0010)?.attributes == .kernelText)
        #expect(t.translate(0x2000_3000) == nil)  // one past the end
        #expect(t.translate(0x1000) == nil)
        #expect(t.translate(1 << 39) == nil)
    }

    @Test func refusals() throws {
        let pool = Pool(tables: 3)
        var t = pool.make()
        #expect(throws: MapError.misaligned) { try t.map(virtual: 0x1001, physical: 0, size: 4096, attributes: .readOnly) }
        #expect(throws: MapError.outOfRange) { try t.map(virtual: (1 << 39) - 4096, physical: 0, size: 8192, attributes: .readOnly) }
        #expect(throws: MapError.writableAndExecutable) {
            try t.map(virtual: 0, physical: 0, size: 4096, attributes: PageAttributes(memory: .normal, writable: true, executable: true))
        }
        try t.map(virtual: 0x4000_0000, physical: 0x4000_0000, size: 2 << 20, attributes: .readWrite)
        // Overlapping the block, and a page inside it.
        #expect(throws: MapError.alreadyMapped) { try t.map(virtual: 0x4010_0000, physical: 0, size: 4096, attributes: .readOnly) }
        #expect(throws: MapError.alreadyMapped) { try t.map(virtual: 0x4000_0000, physical: 0, size: 2 << 20, attributes: .readOnly) }
        // The pool holds 3 tables: root, one level-2, one level-3; a page in
        // another 1 GiB needs two more.
        try t.map(virtual: 0x4020_1000, physical: 0, size: 4096, attributes: .readOnly)
        #expect(t.tablesUsed == 3)
        #expect(throws: MapError.outOfTables) { try t.map(virtual: 0x8000_1000, physical: 0, size: 4096, attributes: .readOnly) }
    }

    @Test func descriptorBits() {
        let page = TranslationTables.leafDescriptor(0x4100_0000, level: 3, .readWrite)
        #expect(page & 0b11 == 0b11)  // page
        #expect(page & (1 << 10) != 0)  // AF
        #expect(page & (1 << 7) == 0)  // writable
        #expect(page & (1 << 54) != 0)  // XN
        #expect((page >> 8) & 3 == 3)  // inner shareable
        #expect((page >> 2) & 7 == 2)  // normal write-back
        let text = TranslationTables.leafDescriptor(0x4008_0000, level: 3, .kernelText)
        #expect(text & (1 << 7) != 0 && text & (1 << 54) == 0)
        let device = TranslationTables.leafDescriptor(0x0800_0000, level: 2, .device)
        #expect(device & 0b11 == 0b01)  // block
        #expect((device >> 2) & 7 == 1)  // Device-nGnRE
        #expect(device & (1 << 54) != 0)
    }

    @Test func syndromeNames() {
        let abort = Syndrome(0x9600_0047)
        #expect(abort.exceptionClass == 0x25)
        #expect(abort.isAbort)
        #expect(abort.faultStatus == 0x07)
        #expect("\(abort.className)" == "data abort, same EL")
        #expect("\(VectorKind(4).source)" == "current EL, SPx")
        #expect("\(VectorKind(9).type)" == "IRQ")
    }

    @Test func mpidrOfQemuVirtCores() {
        #expect(QemuVirt.mpidr(ofCore: 0) == 0)
        #expect(QemuVirt.mpidr(ofCore: 7) == 7)
        #expect(QemuVirt.mpidr(ofCore: 17) == 0x101)
    }
}

@Suite struct GICv3Tests {
    @Test func sgiTargetEncodesAffinityAndTargetList() {
        // Core 0: Aff0 0 -> target list bit 0; SGI 1 in bits [27:24].
        #expect(GICv3.sgiTarget(mpidr: 0, sgi: 1) == (1 << 24) | 1)
        // Core 17 on QEMU virt: Aff1 1, Aff0 1.
        #expect(GICv3.sgiTarget(mpidr: 0x101, sgi: 1) == (1 << 24) | (1 << 16) | (1 << 1))
    }
}

/// Stage-2 tables for a guest: the same builder, stage-2 descriptors.
@Suite struct Stage2TablesTests {
    func make(_ pool: Pool) -> TranslationTables {
        TranslationTables(poolPhysical: pool.physical, pool: pool.memory, size: pool.bytes, regime: .stage2)
    }

    @Test func guestRAMIsMappedWithBlocksAtIPAEqualsPA() throws {
        let pool = Pool(tables: 4)
        var t = make(pool)
        // The default topology's guest region: 256 MiB at 0x51200000.
        try t.map(virtual: 0x5120_0000, physical: 0x5120_0000, size: 256 << 20, attributes: .guestRAM)
        #expect(t.tablesUsed == 2)  // level 1 + one level 2: 128 blocks of 2 MiB
        var leaves: [Leaf] = []
        t.forEachLeaf { leaves.append($0) }
        #expect(leaves.count == 128 && leaves.allSatisfy { $0.size == 2 << 20 && $0.virtual == $0.physical })
        #expect(leaves.allSatisfy { $0.attributes == .guestRAM })
        #expect(t.translate(0x5120_0000 + 0x1234)?.physical == 0x5120_1234)
        #expect(t.translate(0x0800_0000) == nil)  // devices stay unmapped: every access traps
        #expect(t.translate(0x5120_0000 + (256 << 20)) == nil)
    }

    @Test func stage2DescriptorBits() {
        let d = TranslationTables.stage2LeafDescriptor(0x5120_0000, level: 2, .guestRAM)
        #expect(d & 0b11 == 0b01)  // block
        #expect((d >> 2) & 0xF == 0b1111)  // MemAttr: normal, outer and inner write-back
        #expect((d >> 6) & 0b11 == 0b11)  // S2AP read-write
        #expect((d >> 8) & 0b11 == 0b11)  // inner shareable
        #expect(d & (1 << 10) != 0)  // AF
        #expect((d >> 53) & 0b11 == 0)  // executable
        #expect(d & 0x0000_FFFF_FFFF_F000 == 0x5120_0000)
        let ro = TranslationTables.stage2LeafDescriptor(0x1000, level: 3, .readOnly)
        #expect(ro & 0b11 == 0b11 && (ro >> 6) & 0b11 == 0b01 && (ro >> 53) & 0b11 == 0b10)
        let dev = TranslationTables.stage2LeafDescriptor(0x0900_0000, level: 3, .device)
        #expect((dev >> 2) & 0xF == 0b0001 && (dev >> 8) & 0b11 == 0)
        // The kernel's own stage-2 encoding (Kernel's Stage2.normalReadWriteXNPage)
        // gives this same value for a normal, read-write, execute-never page at 0.
        #expect(TranslationTables.stage2LeafDescriptor(0, level: 3, .readWrite) == 0x0040_0000_0000_07FF)
    }

    @Test func writableAndExecutableIsRefusedOnlyAtEL2() {
        let pool = Pool(tables: 4)
        var el2 = pool.make()
        #expect(throws: MapError.writableAndExecutable) {
            try el2.map(virtual: 0x4000_0000, physical: 0x4000_0000, size: 4096, attributes: .guestRAM)
        }
        var s2 = make(pool)
        #expect(throws: Never.self) {
            try s2.map(virtual: 0x4000_0000, physical: 0x4000_0000, size: 4096, attributes: .guestRAM)
        }
    }
}
