/// The invariant checker: run between kernel entries in tests and debug
/// builds. Allocation-free, O(capabilities + threads) per call.
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
/// 4. Scheduler (Benno): runnable threads are exactly the current thread plus
///    the ready queues; queues, flags and the bitmap agree; no pending action;
///    the current thread has the highest priority among runnable threads.

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
        let fixedEnd = memoryBase + UInt(ClusterKernel.fixedStateBytes)
        let bootEnd = state.pointee.bootObjectsEnd
        let maxNodes = Int((memoryEnd - memoryBase) >> UInt(slotSizeBits)) + 2
        // Open Untyped ancestors: base, top, allocated top, lowest child base.
        var stack = InlineArray<64, (UInt, UInt, UInt, UInt)>(repeating: (0, 0, 0, 0))
        var depth = 0
        var runnableSeen = 0, queuedSeen = 0
        var currentSeen = state.pointee.current == nil
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
            guard let region = cap.region else { throw fail("null or reply cap in the tree", addr) }
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
            // Object checks, once per object (the first of its run).
            if !sameAsPrevious || cap.type == .untyped {
                switch cap.type {
                case .endpoint: try checkEndpoint(EndpointRef(bitPattern: cap.object)!)
                case .notification: try checkNotification(NotificationRef(bitPattern: cap.object)!)
                case .vcpu:
                    let v = VCPURef(bitPattern: cap.object)!
                    if let t = v.pointee.tcb, t.pointee.boundVCPU != v { throw fail("VCPU's thread is not bound back to it", cap.object) }
                    if v.pointee.guestIndex >= 64 { throw fail("VCPU guest index out of range", cap.object) }
                case .tcb:
                    let t = tcbRef(object: cap.object)
                    if let v = t.pointee.boundVCPU, v.pointee.tcb != t { throw fail("thread's VCPU is not bound back to it", cap.object) }
                    try checkThread(t)
                    if t.pointee.state.isRunnable { runnableSeen += 1 }
                    if t.pointee.inReadyQueue { queuedSeen += 1 }
                    if t == state.pointee.current { currentSeen = true }
                default: break
                }
            }
            previousRegion = sameAsPrevious && cap.type != .untyped ? previousRegion : region
            if cap.type == .untyped { previousRegion = nil }
            prev = n
            node = n.pointee.next
        }
        try checkScheduler(runnable: runnableSeen, queued: queuedSeen, currentSeen: currentSeen)
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
            if t.pointee.state != .inactive || t.pointee.inReadyQueue || t == state.pointee.current
                || t.pointee.boundNotification != nil
            {
                throw fail("dying thread still scheduled, blocked or bound", z.object)
            }
        }
    }

    private func checkEndpoint(_ ep: EndpointRef) throws(InvariantViolation) {
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
            prev = x
            t = x.pointee.queueNext
        }
        if prev != e.tail { throw fail("endpoint tail wrong", addr) }
    }

    private func checkNotification(_ np: NotificationRef) throws(InvariantViolation) {
        let addr = UInt(bitPattern: np)
        let n = np.pointee
        if (n.state == .waiting) != (n.head != nil) { throw fail("notification state/queue mismatch", addr) }
        if (n.head == nil) != (n.tail == nil) { throw fail("notification head/tail mismatch", addr) }
        if let b = n.boundTCB, b.pointee.boundNotification != np { throw fail("binding not symmetric", addr) }
        var t = n.head, prev: TCBRef? = nil, c = 0
        while let x = t {
            c += 1
            if c > 1 << 20 { throw fail("notification queue cycle", addr) }
            if x.pointee.queuePrev != prev { throw fail("notification queue prev link", UInt(bitPattern: x)) }
            if x.pointee.state != .blockedOnNotification || x.pointee.blockedOn != addr {
                throw fail("waiter not blocked here", UInt(bitPattern: x))
            }
            prev = x
            t = x.pointee.queueNext
        }
        if prev != n.tail { throw fail("notification tail wrong", addr) }
    }

    private func checkThread(_ t: TCBRef) throws(InvariantViolation) {
        let addr = UInt(bitPattern: t)
        let s = t.pointee.state
        if t.pointee.inReadyQueue && !s.isRunnable { throw fail("queued thread not runnable", addr) }
        if let n = t.pointee.boundNotification, n.pointee.boundTCB != t { throw fail("binding not symmetric", addr) }
        switch s {
        case .blockedOnSend, .blockedOnReceive, .blockedOnNotification:
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
            // Our reply capability is out: we wait for the reply.
            if s != .blockedOnReply { throw fail("reply cap exists for a thread not waiting for one", addr) }
            if next.pointee.cap.type != .reply || next.pointee.cap.object != tcbObject(t) || next.pointee.next != nil {
                throw fail("reply cap tree malformed", addr)
            }
        }
        let caller = tcbSlot(t, .caller)
        if !caller.pointee.cap.isNull {
            let c = caller.pointee.cap
            if c.type != .reply || c.small != 0 || caller.pointee.prev != tcbSlot(tcbRef(object: c.object), .reply) {
                throw fail("caller slot holds a bad capability", addr)
            }
        }
    }

    private func checkScheduler(runnable: Int, queued: Int, currentSeen: Bool) throws(InvariantViolation) {
        if state.pointee.action != .resumeCurrent { throw fail("scheduler action pending between entries", 0) }
        if !currentSeen { throw fail("current thread is not a live TCB", 0) }
        var inQueues = 0
        for p in 0..<priorityCount {
            let q = queue(UInt8(p)).pointee
            let bit = bitmap[p >> 6] & (1 << UInt64(p & 63)) != 0
            if bit != (q.head != nil) || (q.head == nil) != (q.tail == nil) { throw fail("ready bitmap disagrees", UInt(p)) }
            var t = q.head, prev: TCBRef? = nil
            while let x = t {
                inQueues += 1
                if inQueues > 1 << 20 { throw fail("ready queue cycle", UInt(p)) }
                let tcb = x.pointee
                if tcb.readyPrev != prev || !tcb.inReadyQueue || Int(tcb.priority) != p || !tcb.state.isRunnable {
                    throw fail("ready queue entry inconsistent", UInt(bitPattern: x))
                }
                prev = x
                t = tcb.readyNext
            }
            if prev != q.tail { throw fail("ready queue tail wrong", UInt(p)) }
        }
        if inQueues != queued { throw fail("queued flags disagree with the queues", 0) }
        var expected = inQueues
        if let c = state.pointee.current {
            if !c.pointee.state.isRunnable { throw fail("current thread not runnable", UInt(bitPattern: c)) }
            if c.pointee.inReadyQueue { throw fail("current thread in a ready queue", UInt(bitPattern: c)) }
            if Int(c.pointee.priority) < highestQueuedPriority() { throw fail("a higher priority thread waits", UInt(bitPattern: c)) }
            expected += 1
        } else if inQueues != 0 {
            throw fail("idle with runnable threads", 0)
        }
        if runnable != expected { throw fail("runnable thread neither current nor queued (Benno)", 0) }
    }
}
