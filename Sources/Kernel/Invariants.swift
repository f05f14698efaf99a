/// The invariant checker: run between kernel entries in tests and debug
/// builds. Allocation-free, O(capabilities + threads + slots of the live
/// CNodes) per call; O(capabilities^2) only to name the culprit of a failed
/// container count.
///
/// Checked:
/// 1. Derivation tree: a well-formed doubly linked list from the root; every
///    object lies in the partition, aligned to its size, inside the allocated
///    part of its Untyped parent; children of one Untyped are disjoint and in
///    decreasing address order (so no two objects overlap); capabilities to
///    one object are contiguous.
/// 2. Endpoint and notification queues: well-formed, states match, every
///    queued thread blocked on that object; bindings symmetric.
/// 3. Threads: blocked threads are in their object's queue; reply and caller
///    slots hold what they should.
/// 4. Scheduler (Benno, per core): the runnable threads of affinity c are
///    exactly core c's current thread plus core c's ready queues; queues,
///    flags and the bitmaps agree; every queued thread is in its affinity's
///    queues and core c's current thread has affinity c. The executing core
///    (the last entry's) has no pending action, a runnable current thread of
///    the highest priority there; every other core has the same, or a pending
///    `.chooseNew` (a reschedule request outstanding: its current thread may
///    be stopped or queued until it reschedules).
/// 5. Containers (issue 11): every derivation-tree node lies in a live
///    container (a slot of a CNode or TCB that a capability or Zombie in the
///    tree names, or the fixed root state), and every non-null slot of a live
///    container is in the tree (reply capabilities: in their master's list).
///    Checked by counting: each such slot is linked consistently with both
///    neighbours, and there are exactly as many as tree nodes; on a mismatch
///    a slower pass names the culprit. A node left in freed memory (the
///    Configure bug) is caught at once, before the memory is reused.
/// 6. Derivation (per run of capabilities to one object): a child's rights
///    are a subset of its parent's; a badged capability that does not start
///    its badge group follows one with the same badge (badges only narrow:
///    copies of a badged capability keep its badge, and only Mint of an
///    unbadged one makes a new group); revocable implies first-badged; only
///    Untyped capabilities (always), an object's original (first of its run)
///    and minted badged capabilities are revocable.
/// 7. References name live objects: the current thread, queue members, bound
///    threads (of notifications and vCPUs) and reply targets are live TCBs (a capability names them, and
///    their reply master is in place); blocked threads, bindings (to
///    notifications and vCPUs) and reply capabilities are counted from both ends, so a thread waiting on a dead
///    endpoint, or a dead thread in a live queue, breaks the count.
/// 8. Remote signals: export entries hold only notification capabilities
///    with a non-zero badge (in the tree, like every fixed slot); a
///    `remoteNotification` names another cluster (< the cluster count) and
///    an export index < `exportLimit`.
/// 9. Interrupt handlers (Objects/IRQ.swift): an entry is allocated iff an
///    `irqHandler` capability names it with its interrupt and core; no two
///    entries alike; an entry's notification slot holds a notification or
///    nothing, a free entry nothing.

public struct InvariantViolation: Error, Sendable {
    public let message: StaticString
    /// Address of the offending slot, object or thread.
    public let address: UInt
}

extension ClusterKernel {
    /// nil if every invariant holds, else the first violation found.
    public func checkInvariants() -> InvariantViolation? {
        do {
            try checkAll()
            return nil
        } catch {
            return error
        }
    }

    private func fail(_ m: StaticString, _ a: UInt) -> InvariantViolation { InvariantViolation(message: m, address: a) }

    private func checkAll() throws(InvariantViolation) {
        let fixedEnd = memoryBase + UInt(ClusterKernel.fixedStateBytes(cores: cores))
        let bootEnd = state.pointee.bootObjectsEnd
        let maxNodes = Int((memoryEnd - memoryBase) >> UInt(slotSizeBits)) + 2
        // Open Untyped ancestors: base, top, allocated top, lowest child base.
        var stack = InlineArray<64, (UInt, UInt, UInt, UInt)>(repeating: (0, 0, 0, 0))
        var depth = 0
        // Per core: runnable threads of that affinity, queued ones; the cores
        // whose current thread was found among the live TCBs.
        var runnableSeen = InlineArray<64, Int>(repeating: 0), queuedSeen = InlineArray<64, Int>(repeating: 0)
        var currentSeen: UInt64 = 0
        var tally = ReferenceTally()
        var vspaces = VSpaceTally()
        // Non-null slots of live containers and of the fixed state, reply
        // capabilities excepted (they are not in the tree): as many as nodes.
        var liveSlots = 0
        let fixedFirst = root + 1, fixedEnd_ = root + 1 + ClusterKernel.fixedSlotCount
        var fixedSlot = fixedFirst
        while fixedSlot < fixedEnd_ {
            if !fixedSlot.pointee.cap.isNull {
                liveSlots += 1
                try checkLinked(fixedSlot)
            }
            fixedSlot += 1
        }
        // 9. Interrupt handlers: an entry's notification slot holds a
        // notification or nothing; no two allocated entries alike.
        for i in 0..<irqHandlerLimit {
            let c = irqSlot(i).pointee.cap
            if !c.isNull && c.type != .notification {
                throw fail("interrupt handler entry holds no notification", UInt(bitPattern: irqSlot(i)))
            }
            let e = state.pointee.irqTable[i] & ~ClusterKernel.irqMasked
            if e & ClusterKernel.irqAllocated == 0 {
                if state.pointee.irqTable[i] != 0 || !c.isNull {
                    throw fail("free interrupt handler entry not empty", UInt(bitPattern: irqSlot(i)))
                }
                continue
            }
            for j in 0..<i where state.pointee.irqTable[j] & ~ClusterKernel.irqMasked == e {
                throw fail("two interrupt handler entries for one interrupt", UInt(bitPattern: irqSlot(i)))
            }
        }
        var irqHandlersSeen: UInt32 = 0
        // 8. Exports: badged notification capabilities (in the tree: linked
        // above and counted with the tree's nodes).
        for i in 0..<exportLimit {
            let c = exportSlot(i).pointee.cap
            if !c.isNull && (c.type != .notification || c.badge == 0) {
                throw fail("export entry is not a badged notification", UInt(bitPattern: exportSlot(i)))
            }
        }
        // The current run of capabilities to one object (not Untyped): its
        // original (first node, if revocable) and the head of the current
        // badge group (the last revocable badged node).
        var runOriginal: SlotRef? = nil
        var groupHead: SlotRef? = nil
        var lastTopLevelEnd = fixedEnd
        var previousRegion: (base: UInt, sizeBits: Int)? = nil

        if root.pointee.prev != nil || !root.pointee.cap.isNull { throw fail("tree root damaged", UInt(bitPattern: root)) }
        var node = root.pointee.next
        var prev = root
        var count = 0
        while let n = node {
            count += 1
            if count > maxNodes { throw fail("derivation tree has a cycle", UInt(bitPattern: n)) }
            let addr = UInt(bitPattern: n)
            if n.pointee.prev != prev { throw fail("tree prev link broken", addr) }
            let cap = n.pointee.cap
            guard let region = cap.region else {
                // Capabilities without memory: only these are in the tree.
                guard cap.type == .interKernel || cap.type == .remoteNotification || cap.type == .irqControl
                    || cap.type == .irqHandler
                else {
                    throw fail("null or reply cap in the tree", addr)
                }
                if cap.type == .irqHandler {
                    let i = Int(cap.small)
                    guard i < irqHandlerLimit,
                        state.pointee.irqTable[i] & ~ClusterKernel.irqMasked == irqEntry(cap.word, core: Int(cap.bits))
                    else { throw fail("interrupt handler capability names no entry of its interrupt", addr) }
                    irqHandlersSeen |= 1 << UInt32(i)
                }
                if addr < memoryBase || addr >= memoryEnd { throw fail("slot outside the partition", addr) }
                if cap.type == .remoteNotification
                    && (Int(cap.bits) >= state.pointee.clusterCount || Int(cap.bits) == state.pointee.cluster
                        || cap.word >= Word(exportLimit))
                {
                    throw fail("remote notification names no other cluster's export", addr)
                }
                try checkDerivation(n, previous: prev, original: &runOriginal, groupHead: &groupHead)
                previousRegion = nil
                prev = n
                node = n.pointee.next
                continue
            }
            let size = UInt(1) << UInt(region.sizeBits)
            if region.base & (size - 1) != 0 { throw fail("object not aligned to its size", addr) }
            if region.base < fixedEnd || region.base + size > memoryEnd || region.base + size < region.base {
                throw fail("object outside the partition", addr)
            }
            if addr < memoryBase || addr >= memoryEnd { throw fail("slot outside the partition", addr) }
            let sameAsPrevious = previousRegion.map { $0.base == region.base && $0.sizeBits == region.sizeBits } ?? false
            // Close Untyped ancestors that do not contain this object.
            while depth > 0 {
                let u = stack[depth - 1]
                if region.base >= u.0 && region.base + size <= u.1 { break }
                depth -= 1
            }
            if depth == 0 {
                // Top level: boot Untyped (address order) or boot objects.
                if cap.type == .untyped {
                    if !sameAsPrevious && region.base < lastTopLevelEnd { throw fail("boot Untyped overlap", addr) }
                    lastTopLevelEnd = region.base + size
                } else if region.base + size > bootEnd {
                    throw fail("object outside every Untyped", addr)
                }
            } else {
                var u = stack[depth - 1]
                if region.base + size > u.2 { throw fail("object above its Untyped's free index", addr) }
                if !sameAsPrevious {
                    if region.base + size > u.3 { throw fail("objects overlap or out of order", addr) }
                    u.3 = region.base
                    stack[depth - 1] = u
                }
            }
            switch cap.type {
            case .untyped:
                if cap.word > Word(size) { throw fail("Untyped free index beyond its size", addr) }
                if depth == 64 { throw fail("Untyped nesting too deep for the checker", addr) }
                stack[depth] = (region.base, region.base + size, region.base + UInt(cap.word), region.base + size)
                depth += 1
            case .cnode:
                if cap.bits < 1 || Int(cap.bits) + Int(cap.small) > wordBits { throw fail("bad CNode radix/guard", addr) }
            case .zombie:
                if cap.word > Word(size >> UInt(slotSizeBits)) { throw fail("zombie count too large", addr) }
                if !isFinal(n) { throw fail("zombie is not final", addr) }
                try checkZombie(cap, slot: n)
            default: break
            }
            try checkDerivation(n, previous: prev, original: &runOriginal, groupHead: &groupHead)
            try checkVSpaceNode(n, firstOfObject: !sameAsPrevious, &vspaces)
            // Object checks, once per object (the first of its run).
            if !sameAsPrevious || cap.type == .untyped {
                switch cap.type {
                case .endpoint: try checkEndpoint(EndpointRef(bitPattern: cap.object)!, &tally)
                case .notification: try checkNotification(NotificationRef(bitPattern: cap.object)!, &tally)
                case .vcpu:
                    let v = VCPURef(bitPattern: cap.object)!
                    if let t = v.pointee.tcb {
                        if !hasReplyMaster(t) { throw fail("VCPU bound to a dead thread", cap.object) }
                        if t.pointee.boundVCPU != v { throw fail("VCPU's thread is not bound back to it", cap.object) }
                        tally.boundVCPUs += 1
                    }
                    if v.pointee.guestIndex >= 64 { throw fail("VCPU guest index out of range", cap.object) }
                case .tcb:
                    let t = tcbRef(object: cap.object)
                    if let v = t.pointee.boundVCPU {
                        if v.pointee.tcb != t { throw fail("thread's VCPU is not bound back to it", cap.object) }
                        tally.vcpuThreads += 1
                    }
                    try checkThread(t, &tally)
                    let a = Int(t.pointee.affinity)
                    if a >= cores { throw fail("thread affinity names no core", UInt(bitPattern: t)) }
                    if t.pointee.state.isRunnable { runnableSeen[a] += 1 }
                    if t.pointee.inReadyQueue { queuedSeen[a] += 1 }
                    for c in 0..<cores where self.node(c).pointee.current == t {
                        if c != a { throw fail("current thread of a core has another core's affinity", UInt(bitPattern: t)) }
                        currentSeen |= 1 << UInt64(c)
                    }
                default: break
                }
                liveSlots += try checkContainerSlots(cap)
            }
            previousRegion = sameAsPrevious && cap.type != .untyped ? previousRegion : region
            if cap.type == .untyped { previousRegion = nil }
            prev = n
            node = n.pointee.next
        }
        if liveSlots != count { try findContainerCulprit(maxNodes: maxNodes) }
        for i in 0..<irqHandlerLimit
        where state.pointee.irqTable[i] & ClusterKernel.irqAllocated != 0 && irqHandlersSeen & (1 << UInt32(i)) == 0 {
            throw fail("interrupt handler entry without a capability", UInt(bitPattern: irqSlot(i)))
        }
        try tally.check()
        try checkVSpaceTotals(vspaces)
        try checkScheduler(runnable: runnableSeen, queued: queuedSeen, currentSeen: currentSeen)
    }

    // MARK: Containers (5)

    /// The slots a container capability names: (first slot, count), or nil
    /// for capabilities that name no slots.
    private func containerSlots(_ cap: Capability) -> (UInt, Int)? {
        switch cap.type {
        case .cnode: (cap.object, 1 << Int(cap.bits))
        case .tcb: (cap.object, tcbSlotCount)
        case .zombie: (cap.object, cap.small == 1 ? tcbSlotCount : 1 << (Int(cap.bits) - slotSizeBits))
        default: nil
        }
    }

    /// A non-null slot outside the reply lists is linked both ways.
    private func checkLinked(_ s: SlotRef) throws(InvariantViolation) {
        guard let p = s.pointee.prev, p.pointee.next == s else {
            throw fail("live slot not linked into the derivation tree", UInt(bitPattern: s))
        }
        if let n = s.pointee.next, n.pointee.prev != s { throw fail("live slot not linked into the derivation tree", UInt(bitPattern: s)) }
    }

    /// Count (and check the links of) the non-null, non-reply slots of the
    /// container `cap` names; 0 for other capabilities.
    private func checkContainerSlots(_ cap: Capability) throws(InvariantViolation) -> Int {
        guard let (base, slots) = containerSlots(cap) else { return 0 }
        var live = 0
        var i = 0
        while i < slots {
            let s = SlotRef(bitPattern: base &+ UInt(i << slotSizeBits))!
            let t = s.pointee.cap.type
            if t != .null && t != .reply {
                live += 1
                try checkLinked(s)
            }
            i += 1
        }
        return live
    }

    /// Is `slot` a slot of a live container (or of the fixed state)?
    /// O(tree); used only to name the culprit of a failed count.
    private func inLiveContainer(_ slot: SlotRef, maxNodes: Int) -> Bool {
        if slot >= root + 1 && slot < root + 1 + ClusterKernel.fixedSlotCount { return true }
        let a = UInt(bitPattern: slot)
        var node = root.pointee.next, seen = 0
        while let n = node, seen <= maxNodes {
            if let (base, slots) = containerSlots(n.pointee.cap), a >= base, a < base &+ UInt(slots << slotSizeBits),
                (a &- base) & ((1 << UInt(slotSizeBits)) - 1) == 0
            {
                return true
            }
            node = n.pointee.next
            seen += 1
        }
        return false
    }

    private func inTree(_ slot: SlotRef, maxNodes: Int) -> Bool {
        var node = root.pointee.next, seen = 0
        while let n = node, seen <= maxNodes {
            if n == slot { return true }
            node = n.pointee.next
            seen += 1
        }
        return false
    }

    /// The tree and the live slots disagree in number: name one culprit.
    private func findContainerCulprit(maxNodes: Int) throws(InvariantViolation) {
        var node = root.pointee.next, seen = 0
        while let n = node, seen <= maxNodes {
            if !inLiveContainer(n, maxNodes: maxNodes) {
                throw fail("derivation-tree node outside every live container", UInt(bitPattern: n))
            }
            node = n.pointee.next
            seen += 1
        }
        node = root.pointee.next
        seen = 0
        while let n = node, seen <= maxNodes {
            if let (base, slots) = containerSlots(n.pointee.cap) {
                var i = 0
                while i < slots {
                    let s = SlotRef(bitPattern: base &+ UInt(i << slotSizeBits))!
                    let t = s.pointee.cap.type
                    if t != .null && t != .reply && !inTree(s, maxNodes: maxNodes) {
                        throw fail("capability in a live container missing from the derivation tree", UInt(bitPattern: s))
                    }
                    i += 1
                }
            }
            node = n.pointee.next
            seen += 1
        }
        throw fail("derivation tree and live container slots differ in number", 0)
    }

    // MARK: Derivation (6)

    /// Rights, badges and flags of `n` against its run of capabilities to
    /// one object. `original` and `groupHead` carry the run's state.
    private func checkDerivation(
        _ n: SlotRef, previous: SlotRef, original: inout SlotRef?, groupHead: inout SlotRef?
    ) throws(InvariantViolation) {
        let addr = UInt(bitPattern: n)
        let node = n.pointee
        let cap = node.cap
        if node.revocable && !node.firstBadged { throw fail("revocable capability not first-badged", addr) }
        if cap.type == .untyped {
            if !node.revocable { throw fail("Untyped capability not revocable (its children would be invisible)", addr) }
            original = nil
            groupHead = nil
            return
        }
        let badged = cap.type == .endpoint || cap.type == .notification
        let firstOfRun = previous == root || !sameObject(previous.pointee.cap, cap)
        if firstOfRun {
            original = node.revocable ? n : nil
            groupHead = nil
        } else {
            if node.revocable && !(badged && cap.badge != 0) { throw fail("copy marked revocable", addr) }
            // The parent: the badge group's head, else the run's original.
            var parent: SlotRef? = nil
            if let g = groupHead, isDerivationParent(g, of: n) {
                parent = g
            } else if let o = original, isDerivationParent(o, of: n) {
                parent = o
            }
            if let p = parent, !p.pointee.cap.rights.isSuperset(of: cap.rights) {
                throw fail("capability has rights its parent lacks", addr)
            }
        }
        if badged && cap.badge != 0 {
            if !node.firstBadged && (firstOfRun || previous.pointee.cap.badge != cap.badge) {
                throw fail("badged copy outside its badge group", addr)
            }
            if node.revocable { groupHead = n }
        }
    }

    private func checkZombie(_ z: Capability, slot: SlotRef) throws(InvariantViolation) {
        // Slots at or above the count are empty, except the Zombie's own.
        let slots = Word(1) << Word(Int(z.bits) - slotSizeBits)
        let total = z.small == 1 ? Word(tcbSlotCount) : slots
        var i = z.word
        while i < total {
            let s = zombieSlot(z, i)
            if s != slot && !s.pointee.cap.isNull { throw fail("zombie slot above count not empty", UInt(bitPattern: s)) }
            i += 1
        }
        if z.small == 1 {
            let t = tcbRef(object: z.object)
            if t.pointee.state != .inactive || t.pointee.inReadyQueue || isCurrentOnSomeCore(t)
                || t.pointee.boundNotification != nil
            {
                throw fail("dying thread still scheduled, blocked or bound", z.object)
            }
        }
    }

    private func checkEndpoint(_ ep: EndpointRef, _ tally: inout ReferenceTally) throws(InvariantViolation) {
        let addr = UInt(bitPattern: ep)
        let e = ep.pointee
        if (e.state == .idle) != (e.head == nil) { throw fail("endpoint state/queue mismatch", addr) }
        if (e.head == nil) != (e.tail == nil) { throw fail("endpoint head/tail mismatch", addr) }
        let want: ThreadState = e.state == .send ? .blockedOnSend : .blockedOnReceive
        var t = e.head, prev: TCBRef? = nil, n = 0
        while let x = t {
            n += 1
            if n > 1 << 20 { throw fail("endpoint queue cycle", addr) }
            if x.pointee.queuePrev != prev { throw fail("endpoint queue prev link", UInt(bitPattern: x)) }
            if x.pointee.state != want || x.pointee.blockedOn != addr { throw fail("queued thread not blocked here", UInt(bitPattern: x)) }
            if !hasReplyMaster(x) { throw fail("endpoint queue holds a dead thread", UInt(bitPattern: x)) }
            tally.queued += 1
            prev = x
            t = x.pointee.queueNext
        }
        if prev != e.tail { throw fail("endpoint tail wrong", addr) }
    }

    private func checkNotification(_ np: NotificationRef, _ tally: inout ReferenceTally) throws(InvariantViolation) {
        let addr = UInt(bitPattern: np)
        let n = np.pointee
        if (n.state == .waiting) != (n.head != nil) { throw fail("notification state/queue mismatch", addr) }
        if (n.head == nil) != (n.tail == nil) { throw fail("notification head/tail mismatch", addr) }
        if let b = n.boundTCB {
            if !hasReplyMaster(b) { throw fail("notification bound to a dead thread", addr) }
            if b.pointee.boundNotification != np { throw fail("binding not symmetric", addr) }
            tally.boundNotifications += 1
        }
        var t = n.head, prev: TCBRef? = nil, c = 0
        while let x = t {
            c += 1
            if c > 1 << 20 { throw fail("notification queue cycle", addr) }
            if x.pointee.queuePrev != prev { throw fail("notification queue prev link", UInt(bitPattern: x)) }
            if x.pointee.state != .blockedOnNotification || x.pointee.blockedOn != addr {
                throw fail("waiter not blocked here", UInt(bitPattern: x))
            }
            if !hasReplyMaster(x) { throw fail("notification queue holds a dead thread", UInt(bitPattern: x)) }
            tally.queued += 1
            prev = x
            t = x.pointee.queueNext
        }
        if prev != n.tail { throw fail("notification tail wrong", addr) }
    }

    private func checkThread(_ t: TCBRef, _ tally: inout ReferenceTally) throws(InvariantViolation) {
        let addr = UInt(bitPattern: t)
        let s = t.pointee.state
        if t.pointee.inReadyQueue && !s.isRunnable { throw fail("queued thread not runnable", addr) }
        if let n = t.pointee.boundNotification {
            if n.pointee.boundTCB != t { throw fail("binding not symmetric", addr) }
            tally.boundThreads += 1
        }
        switch s {
        case .blockedOnSend, .blockedOnReceive, .blockedOnNotification:
            tally.blocked += 1
            // Walk back to the head of the queue we claim to be in.
            var h = t, c = 0
            while let p = h.pointee.queuePrev {
                h = p
                c += 1
                if c > 1 << 20 { throw fail("thread queue cycle", addr) }
            }
            let head = s == .blockedOnNotification
                ? NotificationRef(bitPattern: t.pointee.blockedOn)?.pointee.head
                : EndpointRef(bitPattern: t.pointee.blockedOn)?.pointee.head
            if head != h { throw fail("blocked thread not in its queue", addr) }
        default:
            if t.pointee.queueNext != nil || t.pointee.queuePrev != nil { throw fail("unblocked thread still queued", addr) }
        }
        let master = tcbSlot(t, .reply).pointee.cap
        if master.type != .reply || master.small != 1 || master.object != tcbObject(t) {
            throw fail("reply master missing", addr)
        }
        if let next = tcbSlot(t, .reply).pointee.next {
            tally.repliesOut += 1
            // Our reply capability is out: we wait for the reply.
            if s != .blockedOnReply { throw fail("reply cap exists for a thread not waiting for one", addr) }
            if next.pointee.cap.type != .reply || next.pointee.cap.object != tcbObject(t) || next.pointee.next != nil {
                throw fail("reply cap tree malformed", addr)
            }
        }
        let buffer = tcbSlot(t, .ipcBuffer).pointee.cap
        if !buffer.isNull && (buffer.type != .frame || buffer.small != 0) {
            throw fail("IPC buffer slot holds no unmapped frame capability", addr)
        }
        if !userSyscallFits(t.pointee.userSyscall, s) { throw fail("thread blocked by a system call that cannot block so", addr) }
        let caller = tcbSlot(t, .caller)
        if !caller.pointee.cap.isNull {
            let c = caller.pointee.cap
            if c.type != .reply || c.small != 0 || caller.pointee.prev != tcbSlot(tcbRef(object: c.object), .reply) {
                throw fail("caller slot holds a bad capability", addr)
            }
            let target = tcbRef(object: c.object)
            if !hasReplyMaster(target) || tcbSlot(target, .reply).pointee.next != caller
                || target.pointee.state != .blockedOnReply
            {
                throw fail("reply capability names a thread not waiting for it", addr)
            }
            tally.callerCaps += 1
        }
    }

    /// A thread returning from system call `mark` (Syscall raw value + 1)
    /// may be in state `s` (objects/UserThread.swift).
    private func userSyscallFits(_ mark: UInt8, _ s: ThreadState) -> Bool {
        if mark == 0 { return true }
        guard mark <= 8, let call = Syscall(rawValue: mark - 1) else { return false }
        switch s {
        case .blockedOnReply: return call == .call
        case .blockedOnSend: return call == .call || call == .send
        case .blockedOnReceive, .blockedOnNotification: return call == .recv || call == .replyRecv
        default: return true
        }
    }

    // MARK: References (7)

    /// A live TCB keeps its master reply capability in slot 2 until its
    /// Zombie is reduced: an O(1) test that `t` names a TCB that is not dead.
    private func hasReplyMaster(_ t: TCBRef) -> Bool {
        let m = tcbSlot(t, .reply).pointee.cap
        return m.type == .reply && m.small == 1 && m.object == tcbObject(t)
    }

    private func isCurrentOnSomeCore(_ t: TCBRef) -> Bool {
        for c in 0..<cores where node(c).pointee.current == t { return true }
        return false
    }

    private func checkScheduler(
        runnable: InlineArray<64, Int>, queued: InlineArray<64, Int>, currentSeen: UInt64
    ) throws(InvariantViolation) {
        if state.pointee.core >= cores { throw fail("executing core out of range", UInt(state.pointee.core)) }
        if cores < 64 && state.pointee.rescheduleMask >> UInt64(cores) != 0 {
            throw fail("reschedule request for no core", 0)
        }
        for core in 0..<cores {
            let n = node(core).pointee
            // Another core may have a choice pending (its IPI outstanding).
            let pending: Bool
            switch n.action {
            case .resumeCurrent: pending = false
            case .chooseNew where core != state.pointee.core: pending = true
            default: throw fail("scheduler action pending between entries", UInt(core))
            }
            if n.current != nil && currentSeen & (1 << UInt64(core)) == 0 {
                throw fail("current thread is not a live TCB", UInt(core))
            }
            let bitmap = bitmap(core)
            var inQueues = 0
            for p in 0..<priorityCount {
                let q = queue(core, UInt8(p)).pointee
                let bit = bitmap[p >> 6] & (1 << UInt64(p & 63)) != 0
                if bit != (q.head != nil) || (q.head == nil) != (q.tail == nil) { throw fail("ready bitmap disagrees", UInt(p)) }
                var t = q.head, prev: TCBRef? = nil
                while let x = t {
                    inQueues += 1
                    if inQueues > 1 << 20 { throw fail("ready queue cycle", UInt(p)) }
                    let tcb = x.pointee
                    if Int(tcb.affinity) != core { throw fail("queued thread in another core's ready queue", UInt(bitPattern: x)) }
                    if tcb.readyPrev != prev || !tcb.inReadyQueue || Int(tcb.priority) != p || !tcb.state.isRunnable {
                        throw fail("ready queue entry inconsistent", UInt(bitPattern: x))
                    }
                    prev = x
                    t = tcb.readyNext
                }
                if prev != q.tail { throw fail("ready queue tail wrong", UInt(p)) }
            }
            if inQueues != queued[core] { throw fail("queued flags disagree with the queues", UInt(core)) }
            var expected = inQueues
            if let c = n.current {
                let running = c.pointee.state.isRunnable && !c.pointee.inReadyQueue
                if !pending {
                    if !c.pointee.state.isRunnable { throw fail("current thread not runnable", UInt(bitPattern: c)) }
                    if c.pointee.inReadyQueue { throw fail("current thread in a ready queue", UInt(bitPattern: c)) }
                    if Int(c.pointee.priority) < highestQueuedPriority(core) {
                        throw fail("a higher priority thread waits", UInt(bitPattern: c))
                    }
                }
                if running { expected += 1 }
            } else if inQueues != 0 && !pending {
                throw fail("idle with runnable threads", UInt(core))
            }
            if runnable[core] != expected { throw fail("runnable thread neither current nor queued (Benno)", UInt(core)) }
        }
    }
}

/// References counted from both ends (invariant 7). Each side is counted only
/// from live objects (found through the derivation tree), so a reference to
/// a dead object on either side leaves the two counts unequal.
struct ReferenceTally {
    /// Live threads blocked on an endpoint or notification; members of the
    /// queues of live endpoints and notifications.
    var blocked = 0, queued = 0
    /// Live threads with a bound notification; live notifications with a
    /// bound thread.
    var boundThreads = 0, boundNotifications = 0
    /// Live threads whose reply capability is out; live threads holding a
    /// reply capability in their caller slot.
    var repliesOut = 0, callerCaps = 0
    /// Live threads bound to a vCPU; live vCPUs bound to a thread.
    var vcpuThreads = 0, boundVCPUs = 0

    func check() throws(InvariantViolation) {
        if blocked != queued {
            throw InvariantViolation(message: "blocked threads and queue members differ: a queue holds a dead thread or a thread waits on a dead object", address: 0)
        }
        if boundThreads != boundNotifications {
            throw InvariantViolation(message: "bindings differ: a thread or notification is bound to a dead object", address: 0)
        }
        if vcpuThreads != boundVCPUs {
            throw InvariantViolation(message: "vCPU bindings differ: a thread or vCPU is bound to a dead object", address: 0)
        }
        if repliesOut != callerCaps {
            throw InvariantViolation(message: "reply capabilities differ: one names or sits in a dead thread", address: 0)
        }
    }
}
