/// Untyped memory and Retype: the only way kernel objects come to exist.
///
/// An Untyped capability names 2^bits bytes at `object` (aligned to its
/// size) and a free index: memory below `object + freeIndex` may hold
/// objects, memory above is free.
///
/// Invariants (kept here, checked in Invariants.swift):
/// - Every object lies inside the Untyped it was retyped from and is aligned
///   to its own size.
/// - Objects never overlap: Retype allocates only above the free index and
///   moves it up; it moves it back to 0 only when the Untyped has no
///   children left (nothing lives in it).
/// - New capabilities are inserted right after their Untyped, so its
///   children appear in the derivation tree in decreasing address order.

extension ClusterKernel {
    /// Log2 size of one object of `type` (CNode: `userSize` is the radix).
    func objectSizeBits(_ type: ObjectType, userSize: Word) throws(KernelError) -> Int {
        switch type {
        case .untyped:
            guard userSize >= Word(minUntypedBits) && userSize <= Word(maxUntypedBits) else {
                throw .range(min: Word(minUntypedBits), max: Word(maxUntypedBits))
            }
            return Int(userSize)
        case .cnode:
            guard userSize >= 1 && userSize <= Word(maxCNodeRadix) else { throw .range(min: 1, max: Word(maxCNodeRadix)) }
            return Int(userSize) + slotSizeBits
        case .tcb: return tcbSizeBits
        case .endpoint: return endpointSizeBits
        case .notification: return notificationSizeBits
        case .frame, .pageTable, .vcpu, .vspace: return try archObjectSizeBits(type, userSize: userSize)
        }
    }

    /// Retype(type: mr0, sizeBits: mr1, root: extra cap 0, nodeIndex: mr2,
    /// nodeDepth: mr3, nodeOffset: mr4, count: mr5) — seL4's argument order.
    func invokeUntyped(_ slot: SlotRef, _ label: InvocationLabel, caller: TCBRef) throws(KernelError) {
        guard label == .untypedRetype else { throw .illegalOperation }
        let info = caller.pointee.messageInfo
        guard info.length >= 6, info.extraCaps >= 1 else { throw .truncatedMessage }
        let mr = caller.pointee.mr
        guard let type = ObjectType(rawValue: mr[0]) else { throw .invalidArgument(index: 0) }
        let sizeBits = try objectSizeBits(type, userSize: mr[1])
        let root = try lookupExtraCap(caller, 0).pointee.cap
        // Depth 0 names the root CNode itself.
        var node = root
        if mr[3] != 0 {
            node = try lookupSlot(forCNodeOperation: root, mr[2], depth: mr[3], source: false).pointee.cap
        }
        guard node.type == .cnode else { throw .failedLookup(source: false, .missingCapability(bitsLeft: 0)) }
        let slots = Word(1) << Word(node.bits)
        let offset = mr[4], count = mr[5]
        guard offset < slots else { throw .range(min: 0, max: slots - 1) }
        guard count >= 1 && count <= maxRetypeCount && count <= slots - offset else {
            throw .range(min: 1, max: min(maxRetypeCount, slots - offset))
        }
        var i: Word = 0
        while i < count {
            if !cnodeSlot(node, offset + i).pointee.cap.isNull { throw .deleteFirst }
            i += 1
        }
        try retype(slot, type, sizeBits: sizeBits, into: node, offset: offset, count: count)
    }

    /// Create `count` objects from the Untyped in `slot` and put their
    /// capabilities into `node[offset...]` (all checked empty).
    func retype(_ slot: SlotRef, _ type: ObjectType, sizeBits: Int, into node: Capability, offset: Word, count: Word) throws(KernelError) {
        let ut = slot.pointee.cap
        // Nothing derived from it any more: the whole Untyped is free again.
        if !hasChildren(slot) { slot.pointee.cap.word = 0 }
        let base = ut.object
        let top = base + (UInt(1) << UInt(ut.bits))
        let free = base + UInt(slot.pointee.cap.word)
        guard sizeBits <= Int(ut.bits) else { throw .notEnoughMemory(bytesAvailable: Word(top - free)) }
        let align = UInt(1) << UInt(sizeBits)
        let start = (free + align - 1) & ~(align - 1)
        let bytes = UInt(count) << UInt(sizeBits)
        guard start <= top, bytes <= top - start else { throw .notEnoughMemory(bytesAvailable: Word(top - free)) }
        if type == .vspace { try checkVMIDsFree(count) }
        var i: Word = 0
        while i < count {
            let object = start + UInt(i) << UInt(sizeBits)
            let cap = createObject(type, at: object, sizeBits: sizeBits)
            insertNew(cap, parent: slot, into: cnodeSlot(node, offset + i))
            i += 1
        }
        slot.pointee.cap.word = Word(start + bytes - base)
    }

    /// Initialise a new object in its memory and return its first capability.
    func createObject(_ type: ObjectType, at object: UInt, sizeBits: Int) -> Capability {
        let raw = UnsafeMutableRawPointer(bitPattern: object)!
        switch type {
        case .untyped:
            // Untyped memory is not cleared: objects are initialised when made.
            return .untyped(base: object, sizeBits: sizeBits)
        case .tcb:
            raw.initializeMemory(as: UInt8.self, repeating: 0, count: 1 << tcbSizeBits)
            createTCB(at: object)
            return Capability(type: .tcb, rights: .all, bits: 0, small: 0, object: object, word: 0)
        case .endpoint:
            raw.bindMemory(to: Endpoint.self, capacity: 1).initialize(to: Endpoint())
            return Capability(type: .endpoint, rights: .all, bits: 0, small: 0, object: object, word: 0)
        case .notification:
            raw.bindMemory(to: Notification.self, capacity: 1).initialize(to: Notification())
            return Capability(type: .notification, rights: .all, bits: 0, small: 0, object: object, word: 0)
        case .cnode:
            let radix = sizeBits - slotSizeBits
            // Slots are 2^slotSizeBits apart (a CTE is smaller than its slot).
            raw.initializeMemory(as: UInt8.self, repeating: 0, count: 1 << sizeBits)
            var i = 0
            while i < 1 << radix {
                (raw + (i << slotSizeBits)).bindMemory(to: CTE.self, capacity: 1).initialize(to: CTE())
                i += 1
            }
            return .cnode(object, radix: radix)
        case .frame, .pageTable, .vcpu, .vspace:
            return archCreateObject(type, at: object, sizeBits: sizeBits)
        }
    }
}
