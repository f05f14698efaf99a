/// Frames, page tables and VSpaces: user address spaces as stage-2
/// translation tables (seL4's ARM_HYP VSpaces; docs/kernel/vspace.md).
///
/// The kernel stays at EL2; a user thread runs at EL0 with stage 1 off, so
/// its virtual addresses are IPAs and its address space is a stage-2 table
/// tree with its own VMID. 39-bit IPA, 4 KiB granule, walks from level 1
/// (VTCR_EL2.T0SZ = 25, SL0 = 1: the guest's VTCR serves as is).
///
/// Objects (each zeroed by Retype):
/// - frame: 4 KiB of user memory.
/// - page table: 8 KiB; the first 4 KiB are the 512 descriptors the MMU
///   reads, the second 4 KiB are 512 back-pointers (the slot of the
///   capability that maps entry i). Used at level 2 or 3, wherever
///   `PageTableMap` finds the first missing table.
/// - VSpace: 8 KiB, the same layout at level 1. Entry 511 (the top GiB of
///   IPA) is kernel-reserved: never mapped; its back-pointer word holds the
///   VSpace's VMID (2...255, allocated at Retype, freed at delete).
///
/// Capabilities: a frame or page-table capability records whether it is
/// mapped, in which VSpace (the root's address, as seL4 records an ASID)
/// and where. Copies of frame capabilities come out unmapped (each mapped
/// capability is one mapping); page-table capabilities cannot be copied.
///
/// Invariants (checked by `checkVSpaces`):
/// - every mapped capability's entry exists in its VSpace, points at its
///   object, and its back-pointer names that capability's slot; valid
///   entries of live tables and mapped capabilities are equal in number, so
///   every entry is named by exactly one mapped capability;
/// - an unmapped page table is empty; entry 511 of a VSpace is invalid;
/// - live VSpaces have distinct VMIDs, exactly the bits set in the bitmap.

/// Log2 bytes of a frame, a page table, a VSpace.
public let frameSizeBits = 12
public let pageTableSizeBits = 13
public let vspaceSizeBits = 13
/// First IPA a user may not map (the top GiB of the 39-bit IPA is reserved).
public let userTop: Word = (1 << 39) - (1 << 30)
/// VMIDs the kernel gives VSpaces: 0 is never used, 1 is the guest's.
public let firstVSpaceVMID: Word = 2

/// `FrameMap`'s attribute word (seL4's vm_attributes): bit 0 cacheable
/// (normal write-back; clear: Device-nGnRE), bit 2 execute-never.
public enum VMAttributes {
    public static let cacheable: Word = 1
    public static let executeNever: Word = 4
    /// seL4_ARM_Default_VMAttributes: cacheable, executable.
    public static let `default`: Word = 3
}

/// The AArch64 stage-2 descriptor format (VMSAv8-64, 4 KiB granule). It is
/// in the Kernel module, as pure computation, because the kernel writes the
/// user's tables itself (as seL4's arch code does). It must agree with
/// `TranslationTables.stage2LeafDescriptor` in Sources/Arch: both produce
/// `normalReadWriteXNPage` for a normal, writable, non-executable page at
/// 0 (tested on both sides, since the Kernel tests cannot import Arch).
public enum Stage2 {
    /// Valid and, at levels 1-2, a table (at level 3: a page).
    public static let tableOrPage: Word = 0b11
    public static let addressMask: Word = 0x0000_FFFF_FFFF_F000
    /// MemAttr[5:2]: normal outer/inner write-back; Device-nGnRE.
    public static let normalWriteBack: Word = 0b1111 << 2
    public static let deviceNGnRE: Word = 0b0001 << 2
    /// S2AP[7:6]: 01 read-only, 11 read-write, 00 no access.
    public static let readable: Word = 0b01 << 6
    public static let writable: Word = 0b10 << 6
    /// SH[9:8]: inner shareable (normal memory).
    public static let innerShareable: Word = 0b11 << 8
    /// AF: set, so no access-flag faults.
    public static let accessFlag: Word = 1 << 10
    /// XN[54:53] = 0b10: not executable at EL1 or EL0.
    public static let executeNever: Word = 0b10 << 53
    /// The shared check value (see the type's comment).
    public static let normalReadWriteXNPage: Word = 0x0040_0000_0000_07FF

    public static func table(_ pa: Word) -> Word { (pa & addressMask) | tableOrPage }

    /// A level-3 page. Read and write come from the mapping's rights as
    /// seL4's maskVMRights: write without read gives no access.
    public static func page(_ pa: Word, rights: CapRights, attributes: Word) -> Word {
        var d = (pa & addressMask) | tableOrPage | accessFlag
        if attributes & VMAttributes.cacheable != 0 {
            d |= normalWriteBack | innerShareable
        } else {
            d |= deviceNGnRE
        }
        if rights.contains(.read) {
            d |= readable
            if rights.contains(.write) { d |= writable }
        }
        if attributes & VMAttributes.executeNever != 0 { d |= executeNever }
        return d
    }
}

/// TLB maintenance the kernel owes after changing a live table. Recorded in
/// the kernel state, merged (two pages of one VMID: the VMID; two VMIDs:
/// everything), read and cleared by the entry path before it releases the
/// big lock (`takeTLBFlush`).
public enum TLBFlush: Equatable, Sendable {
    case none
    /// One page (TLBI IPAS2E1IS, then VMALLE1IS, under that VMID).
    case page(vmid: Word, address: Word)
    /// A whole VMID (TLBI VMALLS12E1IS under that VMID).
    case vmid(Word)
    /// Every VMID (TLBI ALLE1IS).
    case all

    func merged(_ new: TLBFlush) -> TLBFlush {
        switch (self, new) {
        case (.none, _): return new
        case (_, .none): return self
        case (.all, _), (_, .all): return .all
        default:
            if self == new { return self }
            return vmidOf == new.vmidOf ? .vmid(vmidOf) : .all
        }
    }
    private var vmidOf: Word {
        switch self {
        case .page(let v, _), .vmid(let v): v
        default: 0
        }
    }
}

/// The kernel's VSpace state (in `KernelState`): VMIDs in use, pending flush.
struct VSpaceState {
    var vmids = InlineArray<4, UInt64>(repeating: 0)
    var flush = TLBFlush.none
}

/// Table entries: descriptors in the first 4 KiB, back-pointers 4 KiB above.
typealias EntryRef = UnsafeMutablePointer<Word>
@inline(__always) func tableEntry(_ table: UInt, _ i: Int) -> EntryRef { EntryRef(bitPattern: table &+ UInt(i << 3))! }
@inline(__always) func backPointer(_ e: EntryRef) -> EntryRef { e + 512 }
@inline(__always) func levelShift(_ level: Int) -> Int { 39 - 9 * level }
@inline(__always) func levelIndex(_ vaddr: Word, _ level: Int) -> Int { Int((vaddr >> Word(levelShift(level))) & 511) }
/// Partition memory is mapped VA = PA at EL2: an object's address is its
/// physical address.
@inline(__always) func physicalAddress(_ object: UInt) -> Word { Word(object) }
@inline(__always) func vmidOfRoot(_ root: UInt) -> Word { backPointer(tableEntry(root, 511)).pointee }

/// Walk VSpace `root` towards `vaddr`'s entry at `level`, through valid
/// table entries only: the entry reached and its level (below `level` when
/// a table is missing).
func lookupEntry(root: UInt, _ vaddr: Word, level: Int) -> (entry: EntryRef, level: Int) {
    var table = root
    var l = 1
    while true {
        let e = tableEntry(table, levelIndex(vaddr, l))
        if l == level || e.pointee & 0b11 != 0b11 { return (e, l) }
        table = UInt(e.pointee & Stage2.addressMask)
        l += 1
    }
}

extension Capability {
    /// Frame: 1 if mapped; page table: level of the entry naming it (1, 2),
    /// 0 if unmapped.
    @inline(__always) var mappedLevel: Int { type == .frame ? (small != 0 ? 3 : 0) : Int(small) }
    /// The VSpace root and address of a mapping (word: root >> 13 above
    /// bit 27, address >> 12 below).
    @inline(__always) var mappedRoot: UInt { UInt(word >> 27) << 13 }
    @inline(__always) var mappedAddress: Word { (word & mask(27)) << 12 }
    @inline(__always) static func mapping(root: UInt, _ vaddr: Word) -> Word { Word(root >> 13) << 27 | vaddr >> 12 }
    var isMappingCap: Bool { (type == .frame || type == .pageTable) && small != 0 }
}

/// The entry a mapped frame or page-table capability names, if the walk
/// reaches it.
func mappingEntry(_ cap: Capability) -> EntryRef? {
    let level = cap.mappedLevel
    let (e, l) = lookupEntry(root: cap.mappedRoot, cap.mappedAddress, level: level)
    return l == level ? e : nil
}

/// A capability moved to `slot` (Move, Mutate, swaps): if it is a mapping,
/// its entry's back-pointer follows it.
@inline(__always) func mappingMoved(_ slot: SlotRef) {
    guard slot.pointee.cap.isMappingCap, let e = mappingEntry(slot.pointee.cap) else { return }
    backPointer(e).pointee = Word(UInt(bitPattern: slot))
}

extension ClusterKernel {
    // MARK: Retype

    func createVSpaceObject(_ type: ObjectType, at object: UInt, sizeBits: Int) -> Capability {
        UnsafeMutableRawPointer(bitPattern: object)!.initializeMemory(as: UInt8.self, repeating: 0, count: 1 << sizeBits)
        switch type {
        case .frame:
            return Capability(type: .frame, rights: [.read, .write], bits: UInt8(sizeBits), small: 0, object: object, word: 0)
        case .pageTable:
            return Capability(type: .pageTable, rights: .all, bits: 0, small: 0, object: object, word: 0)
        default:
            // Retype checked that enough VMIDs are free.
            var v = firstVSpaceVMID
            while vmidUsed(v) { v += 1 }
            state.pointee.vspace.vmids[Int(v >> 6)] |= 1 << (v & 63)
            backPointer(tableEntry(object, 511)).pointee = v
            return Capability(type: .vspace, rights: .all, bits: 0, small: 0, object: object, word: 0)
        }
    }

    @inline(__always) func vmidUsed(_ v: Word) -> Bool { state.pointee.vspace.vmids[Int(v >> 6)] & (1 << (v & 63)) != 0 }

    /// Retype of `count` VSpaces fails with deleteFirst (seL4's answer for a
    /// full ASID pool) unless that many VMIDs are free.
    func checkVMIDsFree(_ count: Word) throws(KernelError) {
        var free: Word = 0
        var v = firstVSpaceVMID
        while v < 256 {
            if !vmidUsed(v) { free += 1 }
            v += 1
        }
        if free < count { throw .deleteFirst }
    }

    // MARK: TLB

    func recordFlush(_ f: TLBFlush) { state.pointee.vspace.flush = state.pointee.vspace.flush.merged(f) }

    /// The TLB maintenance owed since the last call, cleared. The EL0 entry
    /// path calls this before it releases the big lock and performs it.
    public func takeTLBFlush() -> TLBFlush {
        let f = state.pointee.vspace.flush
        state.pointee.vspace.flush = .none
        return f
    }

    // MARK: Unmapping

    /// Clear entry `e` and mark the capability its back-pointer names unmapped.
    func clearEntry(_ e: EntryRef) {
        if let holder = SlotRef(bitPattern: UInt(backPointer(e).pointee)) {
            holder.pointee.cap.small = 0
            holder.pointee.cap.word = 0
        }
        e.pointee = 0
        backPointer(e).pointee = 0
    }

    /// Empty a table (`level` 1: a VSpace) one mapping per preemption step:
    /// frames are unmapped, page tables emptied, then unmapped. Restartable:
    /// cleared entries stay cleared.
    func emptyTable(_ table: UInt, level: Int) throws(KernelError) {
        var i = level == 1 ? 510 : 511
        while i >= 0 {
            let e = tableEntry(table, i)
            if e.pointee & 1 != 0 {
                if level < 3 { try emptyTable(UInt(e.pointee & Stage2.addressMask), level: level + 1) }
                clearEntry(e)
                try preemptionPoint()
            }
            i -= 1
        }
    }

    /// Unmap a mapped page table: empty it, then remove it from its parent.
    func unmapPageTable(_ slot: SlotRef) throws(KernelError) {
        let cap = slot.pointee.cap
        guard cap.isMappingCap else { return }
        recordFlush(.vmid(vmidOfRoot(cap.mappedRoot)))
        try emptyTable(cap.object, level: cap.mappedLevel + 1)
        if let e = mappingEntry(cap) { clearEntry(e) }
    }

    /// A frame, page-table or VSpace capability is being deleted (seL4's
    /// Arch_finaliseCap): a mapped frame capability is unmapped (each is its
    /// own mapping); the last page-table capability unmaps its table; the
    /// last VSpace capability empties the VSpace and frees its VMID.
    func finaliseMapping(_ slot: SlotRef, final: Bool) throws(KernelError) {
        let cap = slot.pointee.cap
        switch cap.type {
        case .frame:
            guard cap.isMappingCap else { return }
            recordFlush(.page(vmid: vmidOfRoot(cap.mappedRoot), address: cap.mappedAddress))
            if let e = mappingEntry(cap) { clearEntry(e) }
        case .pageTable:
            if final { try unmapPageTable(slot) }
        case .vspace:
            guard final else { return }
            try emptyTable(cap.object, level: 1)
            let v = vmidOfRoot(cap.object)
            state.pointee.vspace.vmids[Int(v >> 6)] &= ~(1 << (v & 63))
            backPointer(tableEntry(cap.object, 511)).pointee = 0
            recordFlush(.vmid(v))
        default: break
        }
    }

    // MARK: Invocations

    /// FrameMap(vaddr: mr0, rights: mr1, attributes: mr2; VSpace: extra cap 0),
    /// FrameUnmap, FrameGetAddress (physical address in mr0);
    /// PageTableMap(vaddr: mr0, attributes: mr1; VSpace: extra cap 0),
    /// PageTableUnmap. Errors as seL4's decodeARMFrameInvocation and
    /// decodeARMPageTableInvocation. VSpaces have no methods.
    func invokeVSpaceObject(_ slot: SlotRef, _ label: InvocationLabel, caller: TCBRef) throws(KernelError) {
        let cap = slot.pointee.cap
        let info = caller.pointee.messageInfo
        let mr = caller.pointee.mr
        switch (cap.type, label) {
        case (.frame, .frameUnmap):
            try finaliseMapping(slot, final: false)
        case (.frame, .frameGetAddress):
            caller.pointee.mr[0] = physicalAddress(cap.object)
            caller.pointee.messageInfo = MessageInfo(label: 0, length: 1)
            caller.pointee.state = .running
        case (.pageTable, .pageTableUnmap):
            guard isFinal(slot) else { throw .revokeFirst }
            try unmapPageTable(slot)
        case (.frame, .frameMap), (.pageTable, .pageTableMap):
            let isFrame = cap.type == .frame
            guard info.length >= (isFrame ? 3 : 2), info.extraCaps >= 1 else { throw .truncatedMessage }
            if cap.small != 0 { throw .invalidCapability(index: 0) }
            let vspace = try lookupExtraCap(caller, 0).pointee.cap
            guard vspace.type == .vspace else { throw .invalidCapability(index: 1) }
            let vaddr = mr[0]
            guard vaddr < userTop else { throw .invalidArgument(index: 0) }
            let (e, level) = lookupEntry(root: vspace.object, vaddr, level: 3)
            if isFrame {
                guard vaddr & mask(frameSizeBits) == 0 else { throw .alignment }
                guard level == 3 else { throw .failedLookup(source: false, .missingCapability(bitsLeft: levelShift(level))) }
                guard e.pointee & 1 == 0 else { throw .deleteFirst }
                let rights = cap.rights.intersection(CapRights(rawValue: UInt8(truncatingIfNeeded: mr[1] & 0xF)))
                e.pointee = Stage2.page(physicalAddress(cap.object), rights: rights, attributes: mr[2])
                slot.pointee.cap.small = 1
                slot.pointee.cap.word = Capability.mapping(root: vspace.object, vaddr)
            } else {
                // seL4: a page table goes where the first table is missing.
                guard level < 3, e.pointee & 1 == 0 else { throw .deleteFirst }
                e.pointee = Stage2.table(physicalAddress(cap.object))
                slot.pointee.cap.small = UInt8(level)
                slot.pointee.cap.word = Capability.mapping(root: vspace.object, vaddr & ~mask(levelShift(level)))
            }
            backPointer(e).pointee = Word(UInt(bitPattern: slot))
        default:
            throw .illegalOperation
        }
    }

    // MARK: Observation (tests, the Boot layer)

    /// The descriptor for `vaddr` in the VSpace `vspace` names at `level`
    /// (nil: a table on the way is missing).
    public func descriptor(_ vspace: Capability, _ vaddr: Word, level: Int = 3) -> Word? {
        guard vspace.type == .vspace else { return nil }
        let (e, l) = lookupEntry(root: vspace.object, vaddr, level: level)
        return l == level ? e.pointee : nil
    }

    /// The VMID of the VSpace `vspace` names (for VTTBR_EL2).
    public func vmid(_ vspace: Capability) -> Word? { vspace.type == .vspace ? vmidOfRoot(vspace.object) : nil }
}

// MARK: - Invariants

/// Counts for `checkVSpaces`, gathered over the derivation tree.
struct VSpaceTally {
    var mappings = 0, entries = 0, vspaces = 0
    var vmidsSeen = InlineArray<4, UInt64>(repeating: 0)
}

extension ClusterKernel {
    private func vfail(_ m: StaticString, _ a: UInt) -> InvariantViolation { InvariantViolation(message: m, address: a) }

    /// Valid entries of a live table; each must be a table or page descriptor.
    private func countEntries(_ table: UInt, below: Int) throws(InvariantViolation) -> Int {
        var n = 0, i = 0
        while i < below {
            let d = tableEntry(table, i).pointee
            if d & 1 != 0 {
                if d & 0b11 != 0b11 { throw vfail("block descriptor in a user table", table) }
                n += 1
            }
            i += 1
        }
        return n
    }

    /// One derivation-tree node: every mapping capability, each object once.
    func checkVSpaceNode(_ n: SlotRef, firstOfObject: Bool, _ t: inout VSpaceTally) throws(InvariantViolation) {
        let cap = n.pointee.cap
        let addr = UInt(bitPattern: n)
        switch cap.type {
        case .frame, .pageTable:
            if cap.small == 0 {
                if cap.word != 0 { throw vfail("unmapped capability records a mapping", addr) }
            } else {
                if cap.type == .frame ? cap.small != 1 : cap.small > 2 { throw vfail("bad mapping level", addr) }
                guard let e = mappingEntry(cap), e.pointee & 0b11 == 0b11,
                    e.pointee & Stage2.addressMask == physicalAddress(cap.object)
                else { throw vfail("mapped capability's entry missing or not pointing at its object", addr) }
                if backPointer(e).pointee != Word(addr) { throw vfail("mapping's back-pointer names another slot", addr) }
                t.mappings += 1
            }
            if cap.type == .pageTable && firstOfObject {
                let live = try countEntries(cap.object, below: 512)
                if cap.small == 0 && live != 0 { throw vfail("unmapped page table not empty", cap.object) }
                t.entries += live
            }
        case .vspace:
            guard firstOfObject else { return }
            t.entries += try countEntries(cap.object, below: 511)
            if tableEntry(cap.object, 511).pointee != 0 { throw vfail("kernel-reserved VSpace entry mapped", cap.object) }
            let v = vmidOfRoot(cap.object)
            if v < firstVSpaceVMID || v > 255 || !vmidUsed(v) { throw vfail("VSpace VMID not allocated", cap.object) }
            if t.vmidsSeen[Int(v >> 6)] & (1 << (v & 63)) != 0 { throw vfail("two VSpaces share a VMID", cap.object) }
            t.vmidsSeen[Int(v >> 6)] |= 1 << (v & 63)
            t.vspaces += 1
        default: break
        }
    }

    func checkVSpaceTotals(_ t: VSpaceTally) throws(InvariantViolation) {
        if t.mappings != t.entries {
            throw vfail("table entries and mapping capabilities differ: an entry without its capability, or a mapping in a dead table", 0)
        }
        var used = 0, i = 0
        while i < 4 {
            used += state.pointee.vspace.vmids[i].nonzeroBitCount
            i += 1
        }
        if used != t.vspaces { throw vfail("VMID bitmap disagrees with the live VSpaces", 0) }
    }
}
