/// Capabilities, capability table entries (CTEs) and the capability
/// derivation tree (seL4's mapping database, "MDB").
///
/// The derivation tree is kept as seL4 keeps it: a doubly linked list of CTEs
/// in depth-first order, with two flags per node. A node's children are the
/// nodes that follow it for which `isDerivationParent(_:of:)` holds; nothing
/// else is stored. Copies are inserted right after their source, retyped
/// objects right after their Untyped, so
///
/// - Invariant (adjacency): all capabilities to one object (other than
///   Untyped) are contiguous in the list; `isFinal` needs only the
///   neighbours.
/// - Invariant (order): a parent precedes its descendants, and the
///   descendants of a node form one contiguous run right after it.

/// What a capability refers to.
public enum CapType: UInt8, Sendable {
    case null = 0, untyped, endpoint, notification, cnode, tcb, reply
    /// A virtual CPU (Objects/VCPU.swift).
    case vcpu = 8
    /// A CNode or TCB whose last capability is being deleted (seL4's Zombie):
    /// the slots it still holds are deleted one per preemption step.
    case zombie
    /// Frames, page tables, VSpaces (Objects/VSpace.swift).
    case frame, pageTable, vspace
    /// The authority to issue remote notification capabilities (one, the
    /// root thread's, made at boot; cannot be copied, as seL4's IRQControl).
    case interKernel
    /// Signal export `word` of cluster `bits` (no memory; Send signals).
    case remoteNotification
    /// The authority to make IRQHandler capabilities (one, the root
    /// thread's, made at boot; cannot be copied, as seL4's).
    case irqControl
    /// Interrupt `word` on core `bits` of the cluster, entry `small` of the
    /// kernel's handler table (Objects/IRQ.swift). No memory; its copies
    /// name the same handler.
    case irqHandler
}

/// A capability: 24 bytes, kept in a CTE.
///
/// Field use by type (what seL4 packs into its two-word caps):
/// - untyped:      object = base, bits = log2 size, word = free index (bytes used)
/// - endpoint/notification: object, word = badge
/// - cnode:        object, bits = radix, small = guard size, word = guard
/// - tcb:          object (the TCB object base)
/// - reply:        object = the caller's TCB object, small = 1 if master,
///                 word = 1 if the reply may grant
/// - zombie:       object, bits = log2 object size, small = 1 for a TCB,
///                 word = slots still to delete (slots 0..<word)
/// - frame:        object, bits = log2 size, rights read/write, small = 1 if
///                 mapped, word = VSpace root and address (Objects/VSpace.swift)
/// - pageTable:    object, small = level of the entry naming it (0: unmapped),
///                 word as a frame's
/// - vspace:       object (the root table; its VMID lives in the object)
/// - interKernel:  nothing (no object, no memory)
/// - remoteNotification: bits = cluster, word = export index (no memory)
/// - irqControl:   nothing (no object, no memory)
/// - irqHandler:   word = interrupt id, bits = core, small = handler entry
public struct Capability: Equatable, Sendable {
    public var type: CapType
    public var rights: CapRights
    public var bits: UInt8
    public var small: UInt8
    public var object: UInt
    public var word: Word

    /// Computed, not a stored static: a stored one is initialised lazily
    /// (swift_once) and every use would pay the check.
    @inline(__always) public static var null: Capability {
        Capability(type: .null, rights: [], bits: 0, small: 0, object: 0, word: 0)
    }

    @inline(__always) public var isNull: Bool { type == .null }
    /// Badge of an endpoint or notification capability (0: unbadged).
    @inline(__always) public var badge: Word { word }

    static func untyped(base: UInt, sizeBits: Int, freeIndex: Word = 0) -> Capability {
        Capability(type: .untyped, rights: .all, bits: UInt8(sizeBits), small: 0, object: base, word: freeIndex)
    }
    static func cnode(_ base: UInt, radix: Int, guardSize: Int = 0, guard: Word = 0) -> Capability {
        Capability(type: .cnode, rights: .all, bits: UInt8(radix), small: UInt8(guardSize), object: base, word: `guard`)
    }
    static func reply(to tcbObject: UInt, master: Bool, canGrant: Bool) -> Capability {
        Capability(type: .reply, rights: .all, bits: 0, small: master ? 1 : 0, object: tcbObject, word: canGrant ? 1 : 0)
    }

    /// The memory an object capability names: (base, log2 size), or nil for
    /// capabilities without memory of their own (null, reply).
    var region: (base: UInt, sizeBits: Int)? {
        switch type {
        case .untyped: (object, Int(bits))
        case .endpoint: (object, endpointSizeBits)
        case .notification: (object, notificationSizeBits)
        case .cnode: (object, Int(bits) + slotSizeBits)
        case .tcb: (object, tcbSizeBits)
        case .vcpu: (object, vcpuSizeBits)
        case .zombie: (object, Int(bits))
        case .frame: (object, Int(bits))
        case .pageTable: (object, pageTableSizeBits)
        case .vspace: (object, vspaceSizeBits)
        case .null, .reply, .interKernel, .remoteNotification, .irqControl, .irqHandler: nil
        }
    }
}

/// A capability table entry: one CNode slot. Lives inside a CNode or a TCB
/// object (or, for the root of the derivation tree, in fixed kernel memory);
/// its address never changes while it is linked.
public struct CTE {
    public internal(set) var cap: Capability = .null
    var prev: SlotRef? = nil
    var next: SlotRef? = nil
    /// May have children (seL4's mdbRevocable): original object caps, badged
    /// copies of unbadged endpoint caps, untyped caps.
    var revocable = false
    /// First capability with its badge: its same-badge copies are its children.
    var firstBadged = false
}

public typealias SlotRef = UnsafeMutablePointer<CTE>

// MARK: - Relations between capabilities (pure)

/// `b` names memory inside what `a` names, or the same object as `a`.
func sameRegion(_ a: Capability, _ b: Capability) -> Bool {
    switch a.type {
    case .untyped:
        guard let r = b.region else { return false }
        let aTop = a.object &+ (1 << UInt(a.bits))
        return a.object <= r.base && r.base &+ (1 << UInt(r.sizeBits)) <= aTop
    case .endpoint, .notification, .tcb, .vcpu, .frame, .pageTable, .vspace:
        return b.type == a.type && b.object == a.object
    case .cnode:
        return b.type == .cnode && b.object == a.object && b.bits == a.bits
    case .reply:
        return b.type == .reply && b.object == a.object
    // One handler: its copies are the same object (adjacent, one final).
    case .irqHandler:
        return b.type == .irqHandler && b.word == a.word && b.bits == a.bits && b.small == a.small
    // No memory and no object: each is its own, copies are siblings.
    case .null, .zombie, .interKernel, .remoteNotification, .irqControl:
        return false
    }
}

/// `a` and `b` name the same object (Untyped never counts: two Untyped caps
/// may name the same memory and still be independent in the tree).
func sameObject(_ a: Capability, _ b: Capability) -> Bool {
    a.type != .untyped && sameRegion(a, b)
}

/// seL4's isMDBParentOf: is `b` (which follows `a` in the list) a child of `a`?
func isDerivationParent(_ a: SlotRef, of b: SlotRef) -> Bool {
    guard a.pointee.revocable, sameRegion(a.pointee.cap, b.pointee.cap) else { return false }
    let ac = a.pointee.cap
    if ac.type == .endpoint || ac.type == .notification {
        if ac.badge == 0 { return true }
        return ac.badge == b.pointee.cap.badge && !b.pointee.firstBadged
    }
    return true
}

/// No other capability names this object (seL4's isFinalCapability). Relies on
/// the adjacency invariant: only the neighbours need checking.
func isFinal(_ slot: SlotRef) -> Bool {
    let cap = slot.pointee.cap
    if cap.type == .zombie { return true }
    if let p = slot.pointee.prev, sameObject(p.pointee.cap, cap) { return false }
    if let n = slot.pointee.next, sameObject(n.pointee.cap, cap) { return false }
    return true
}

/// Has `slot` children in the derivation tree?
func hasChildren(_ slot: SlotRef) -> Bool {
    guard let n = slot.pointee.next else { return false }
    return isDerivationParent(slot, of: n)
}

/// A copy of `cap` that may be stored elsewhere (seL4's deriveCap), or an error.
func derive(_ slot: SlotRef) throws(KernelError) -> Capability {
    let cap = slot.pointee.cap
    switch cap.type {
    case .null: throw .failedLookup(source: true, .missingCapability(bitsLeft: 0))
    case .untyped: if hasChildren(slot) { throw .revokeFirst }; return cap
    case .reply, .zombie, .interKernel, .irqControl: throw .illegalOperation
    // Each mapped frame capability is one mapping: a copy starts unmapped.
    // A page table has one capability, the one that maps it.
    case .frame: var c = cap; c.small = 0; c.word = 0; return c
    case .pageTable: throw .illegalOperation
    default: return cap
    }
}

/// Whether a copy `new` of `source` becomes revocable (may have children).
func isRevocableCopy(_ new: Capability, of source: Capability) -> Bool {
    switch new.type {
    case .endpoint, .notification: new.badge != source.badge
    case .untyped: true
    default: false
    }
}

/// New data for a capability from Mint or Mutate (seL4's updateCapData):
/// a badge for an unbadged endpoint or notification, a guard for a CNode
/// (low 6 bits: guard size; the bits above: the guard). nil: not allowed.
func updateData(_ cap: Capability, _ data: Word, preserve: Bool) -> Capability? {
    var c = cap
    switch cap.type {
    case .endpoint, .notification:
        if preserve || cap.badge != 0 { return nil }
        c.word = data
        return c
    case .cnode:
        let guardSize = Int(data & 63)
        let radix = Int(cap.bits)
        if guardSize + radix > wordBits { return nil }
        let g = data >> 6
        if guardSize < 64 && g >> Word(guardSize) != 0 { return nil }
        c.small = UInt8(guardSize)
        c.word = g
        return c
    default:
        return data == 0 ? cap : nil
    }
}

// MARK: - Derivation tree updates

/// Insert `new` into the empty slot `dest` as a child (or sibling) of `src`.
func insertCopy(_ new: Capability, from src: SlotRef, into dest: SlotRef) {
    let srcCap = src.pointee.cap
    let revocable = isRevocableCopy(new, of: srcCap)
    // An Untyped copy of the same size takes over the memory: the source may
    // not retype into it again (seL4's setUntypedCapAsFull).
    if srcCap.type == .untyped, new.type == .untyped, srcCap.object == new.object, srcCap.bits == new.bits {
        src.pointee.cap.word = Word(1) << Word(srcCap.bits)
    }
    let next = src.pointee.next
    dest.pointee = CTE(cap: new, prev: src, next: next, revocable: revocable, firstBadged: revocable)
    src.pointee.next = dest
    next?.pointee.prev = dest
}

/// Insert the first capability to a new object, right after its Untyped.
func insertNew(_ cap: Capability, parent: SlotRef, into slot: SlotRef) {
    let next = parent.pointee.next
    slot.pointee = CTE(cap: cap, prev: parent, next: next, revocable: true, firstBadged: true)
    parent.pointee.next = slot
    next?.pointee.prev = slot
}

/// Move the capability in `src` (replaced by `new`) to the empty `dest`,
/// keeping its place in the tree.
func moveSlot(_ new: Capability, from src: SlotRef, to dest: SlotRef) {
    var node = src.pointee
    node.cap = new
    dest.pointee = node
    src.pointee = CTE()
    node.prev?.pointee.next = dest
    node.next?.pointee.prev = dest
    mappingMoved(dest)
}

/// Exchange the contents (and tree positions) of two slots.
func swapSlots(_ a: SlotRef, _ b: SlotRef) {
    if a == b { return }
    let na = a.pointee, nb = b.pointee
    // Neighbours that are the other slot are fixed up by the re-link below.
    a.pointee = nb
    b.pointee = na
    func relink(_ s: SlotRef, _ other: SlotRef) {
        if s.pointee.prev == s { s.pointee.prev = other }
        if s.pointee.next == s { s.pointee.next = other }
    }
    relink(a, b)
    relink(b, a)
    if let p = a.pointee.prev { p.pointee.next = a }
    if let n = a.pointee.next { n.pointee.prev = a }
    if let p = b.pointee.prev { p.pointee.next = b }
    if let n = b.pointee.next { n.pointee.prev = b }
    mappingMoved(a)
    mappingMoved(b)
}

/// Unlink a slot from the tree and empty it (seL4's emptySlot). Its children
/// stay, now children of its parent.
func emptySlot(_ slot: SlotRef) {
    if slot.pointee.cap.isNull { return }
    let node = slot.pointee
    node.prev?.pointee.next = node.next
    if let n = node.next {
        n.pointee.prev = node.prev
        n.pointee.firstBadged = n.pointee.firstBadged || node.firstBadged
    }
    slot.pointee = CTE()
}
