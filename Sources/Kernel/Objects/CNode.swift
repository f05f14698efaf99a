/// CNodes: arrays of 2^radix slots, CSpace addressing through guarded CNodes
/// (seL4's resolveAddressBits), and the CNode invocations (Copy, Mint, Move,
/// Mutate, Delete, Revoke).
///
/// A capability address (CPtr) is read from its most significant end: at each
/// CNode, `guardSize` bits must equal the guard, the next `radix` bits index
/// a slot; if bits remain and the slot holds a CNode capability, lookup
/// continues there.

@inline(__always) func mask(_ bits: Int) -> Word { bits >= 64 ? ~0 : (Word(1) << Word(bits)) &- 1 }

@inline(__always) func cnodeSlot(_ cap: Capability, _ index: Word) -> SlotRef {
    SlotRef(bitPattern: cap.object &+ UInt(index << Word(slotSizeBits)))!
}

/// Resolve `depth` bits of `address` starting at CNode capability `root`.
/// Returns the slot reached and the bits left unresolved (non-zero when a
/// non-CNode capability was met before the bits ran out).
func resolveAddressBits(_ root: Capability, _ address: Word, depth: Int) throws(LookupFailure) -> (SlotRef, Int) {
    guard root.type == .cnode else { throw .invalidRoot }
    var node = root
    var left = depth
    while true {
        let radix = Int(node.bits), guardSize = Int(node.small)
        let levelBits = radix + guardSize
        // Retype forbids radix 0, so every level consumes at least one bit.
        if guardSize > left { throw .guardMismatch(bitsLeft: left, guard: node.word, guardSize: guardSize) }
        let guardBits = (address >> Word(left - guardSize)) & mask(guardSize)
        if guardBits != node.word { throw .guardMismatch(bitsLeft: left, guard: node.word, guardSize: guardSize) }
        if levelBits > left { throw .depthMismatch(bitsLeft: left, bitsFound: levelBits) }
        let offset = (address >> Word(left - levelBits)) & mask(radix)
        let slot = cnodeSlot(node, offset)
        if left == levelBits { return (slot, 0) }
        left -= levelBits
        let next = slot.pointee.cap
        if next.type != .cnode { return (slot, left) }
        node = next
    }
}

extension ClusterKernel {
    /// The slot a thread names with a full-width address (for invocations).
    func lookupSlot(_ thread: TCBRef, _ address: Word, source: Bool = false) throws(KernelError) -> SlotRef {
        let root = tcbSlot(thread, .cspaceRoot).pointee.cap
        do {
            return try resolveAddressBits(root, address, depth: wordBits).0
        } catch {
            throw .failedLookup(source: source, error)
        }
    }

    /// The slot a CNode operation names with (root, index, depth): all
    /// `depth` bits must be used.
    func lookupSlot(forCNodeOperation root: Capability, _ index: Word, depth: Word, source: Bool) throws(KernelError) -> SlotRef {
        guard root.type == .cnode else { throw .failedLookup(source: source, .invalidRoot) }
        guard depth >= 1 && depth <= Word(wordBits) else { throw .range(min: 1, max: Word(wordBits)) }
        let slot: SlotRef, left: Int
        do throws(LookupFailure) {
            (slot, left) = try resolveAddressBits(root, index, depth: Int(depth))
        } catch {
            throw .failedLookup(source: source, error)
        }
        if left != 0 { throw .failedLookup(source: source, .depthMismatch(bitsLeft: left, bitsFound: 0)) }
        return slot
    }

    /// The i-th extra capability of the caller's message.
    func lookupExtraCap(_ caller: TCBRef, _ i: Int) throws(KernelError) -> SlotRef {
        let slot = try lookupSlot(caller, caller.pointee.extraCaps[i], source: true)
        if slot.pointee.cap.isNull { throw .failedLookup(source: true, .missingCapability(bitsLeft: 0)) }
        return slot
    }

    /// CNode methods; the invoked CNode is the root of the destination address.
    func invokeCNode(_ node: Capability, _ label: InvocationLabel, caller: TCBRef) throws(KernelError) {
        let info = caller.pointee.messageInfo
        let mr = caller.pointee.mr
        guard info.length >= 2 else { throw .truncatedMessage }
        let dest = try lookupSlot(forCNodeOperation: node, mr[0], depth: mr[1], source: false)
        switch label {
        case .cnodeRevoke:
            try revoke(dest)
            return
        case .cnodeDelete:
            try deleteSlot(dest)
            return
        case .cnodeCopy, .cnodeMint, .cnodeMove, .cnodeMutate:
            break
        default:
            throw .illegalOperation
        }
        let needed = label == .cnodeMint ? 6 : label == .cnodeMove ? 4 : 5
        guard info.length >= needed, info.extraCaps >= 1 else { throw .truncatedMessage }
        guard dest.pointee.cap.isNull else { throw .deleteFirst }
        let srcRoot = try lookupExtraCap(caller, 0).pointee.cap
        let src = try lookupSlot(forCNodeOperation: srcRoot, mr[2], depth: mr[3], source: true)
        let cap = src.pointee.cap
        if cap.isNull { throw .failedLookup(source: true, .missingCapability(bitsLeft: 0)) }
        switch label {
        case .cnodeCopy, .cnodeMint:
            var new = try derive(src)
            new.rights = new.rights.intersection(CapRights(rawValue: UInt8(truncatingIfNeeded: mr[4] & 0xF)))
            if label == .cnodeMint {
                guard let badged = updateData(new, mr[5], preserve: false) else { throw .illegalOperation }
                new = badged
            }
            insertCopy(new, from: src, into: dest)
        case .cnodeMove:
            if cap.type == .zombie || cap.type == .reply { throw .illegalOperation }
            moveSlot(cap, from: src, to: dest)
        default:  // .cnodeMutate
            if cap.type == .zombie || cap.type == .reply { throw .illegalOperation }
            guard let new = updateData(cap, mr[4], preserve: true) else { throw .illegalOperation }
            moveSlot(new, from: src, to: dest)
        }
    }
}
