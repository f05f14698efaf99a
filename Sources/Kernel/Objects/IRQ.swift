import BigLock

/// Interrupts at user level, as seL4 gives them (docs/kernel/irq.md): the
/// root thread's `irqControl` capability makes an `irqHandler` capability
/// for one interrupt on one core of the cluster; the handler names a
/// notification; when the interrupt fires the kernel signals it with its
/// badge and masks the interrupt until the handler is acknowledged.
///
/// The kernel decides; the Boot layer touches the interrupt controller. It
/// tells the kernel which ids it may hand out (`configureInterrupts`: the
/// kernel's own SGIs and PPIs never), gives it each interrupt no one else
/// handles (`handleInterruptLocked`), and applies the enables and disables
/// the kernel queues (`takeInterruptChange`) before it returns to a thread.
///
/// Invariants (checked by `checkInvariants`, 9): an entry is allocated iff
/// some `irqHandler` capability names it, with its id and core; no two
/// allocated entries name the same id and core; an entry's notification
/// slot holds a notification capability or nothing.
extension ClusterKernel {
    static let irqAllocated: UInt32 = 1 << 31
    static let irqMasked: UInt32 = 1 << 30

    @inline(__always) func irqEntry(_ id: Word, core: Int) -> UInt32 {
        ClusterKernel.irqAllocated | UInt32(id & 0xFFFF) | UInt32(core & 0xFF) << 16
    }

    /// Boot: the interrupt ids handlers may take: those below `limit` (the
    /// controller's lines, at most 1020) that are not in `reserved` (bit i
    /// of word i / 64 reserves id i < 128; the kernel's own SGIs and PPIs).
    /// Until called, none. Takes the big lock.
    public func configureInterrupts(reserved: InlineArray<2, UInt64>, limit: Int) {
        lock.acquire(core: 0)
        state.pointee.irqReserved = reserved
        state.pointee.irqLimit = min(max(limit, 0), 1020)
        lock.release(core: 0)
    }

    func interruptAvailable(_ id: Word) -> Bool {
        guard id < Word(state.pointee.irqLimit) else { return false }
        if id < 128 && state.pointee.irqReserved[Int(id / 64)] & (1 << (id % 64)) != 0 { return false }
        return true
    }

    /// IRQControl Get(irq: mr0, core: mr1, slot: mr2 of the CNode named by
    /// extra cap 0). Errors: `.range` for an id handlers may not take or a
    /// core the cluster lacks (index 0 / 1 as `invalidArgument` would not
    /// say which bound), `.revokeFirst` if the interrupt has a handler,
    /// `.notEnoughMemory` with the table full, `.deleteFirst` if the slot is
    /// occupied. Nothing changes on an error. The new handler has no
    /// notification and its interrupt stays disabled until the first Ack.
    func invokeIRQControl(_ slot: SlotRef, _ label: InvocationLabel, caller: TCBRef) throws(KernelError) {
        guard label == .irqControlGet else { throw .illegalOperation }
        let info = caller.pointee.messageInfo
        guard info.length >= 3, info.extraCaps >= 1 else { throw .truncatedMessage }
        let mr = caller.pointee.mr
        guard interruptAvailable(mr[0]) else { throw .range(min: 16, max: Word(max(state.pointee.irqLimit, 17) - 1)) }
        guard mr[1] < Word(cores) else { throw .range(min: 0, max: Word(cores) - 1) }
        let wanted = irqEntry(mr[0], core: Int(mr[1]))
        var free = -1
        for i in 0..<irqHandlerLimit {
            let e = state.pointee.irqTable[i]
            if e & ~ClusterKernel.irqMasked == wanted { throw .revokeFirst }
            if e & ClusterKernel.irqAllocated == 0 && free < 0 { free = i }
        }
        guard free >= 0 else { throw .notEnoughMemory(bytesAvailable: 0) }
        let node = try lookupExtraCap(caller, 0).pointee.cap
        guard node.type == .cnode else { throw .invalidCapability(index: 1) }
        let slots = Word(1) << Word(node.bits)
        guard mr[2] < slots else { throw .range(min: 0, max: slots - 1) }
        let dest = cnodeSlot(node, mr[2])
        guard dest.pointee.cap.isNull else { throw .deleteFirst }
        state.pointee.irqTable[free] = wanted | ClusterKernel.irqMasked
        insertNew(
            Capability(type: .irqHandler, rights: .all, bits: UInt8(mr[1]), small: UInt8(free), object: 0, word: mr[0]),
            parent: slot, into: dest)
    }

    /// IRQHandler Ack / SetNotification / Clear.
    func invokeIRQHandler(_ slot: SlotRef, _ label: InvocationLabel, caller: TCBRef) throws(KernelError) {
        let cap = slot.pointee.cap
        let i = Int(cap.small)
        let entry = irqSlot(i)
        switch label {
        case .irqHandlerAck:
            let e = state.pointee.irqTable[i]
            if e & ClusterKernel.irqMasked != 0 {
                state.pointee.irqTable[i] = e & ~ClusterKernel.irqMasked
                try queueInterruptChange(cap.word, core: Int(cap.bits), enable: true)
            }
        case .irqHandlerSetNotification:
            guard caller.pointee.messageInfo.extraCaps >= 1 else { throw .truncatedMessage }
            let source = try lookupExtraCap(caller, 0)
            let n = source.pointee.cap
            guard n.type == .notification, n.rights.contains(.write) else { throw .invalidCapability(index: 1) }
            let copy = try derive(source)
            if !entry.pointee.cap.isNull { removeIRQNotification(entry) }
            insertCopy(copy, from: source, into: entry)
        case .irqHandlerClear:
            if !entry.pointee.cap.isNull { removeIRQNotification(entry) }
        default:
            throw .illegalOperation
        }
    }

    /// The handler's copy of its notification goes (the notification is
    /// finalised if that was its last capability).
    func removeIRQNotification(_ entry: SlotRef) {
        let cap = entry.pointee.cap
        if isFinal(entry) { finaliseLeaf(cap) }
        emptySlot(entry)
    }

    /// The last capability to a handler was deleted: free its entry, drop
    /// its notification, disable the interrupt.
    func finaliseIRQHandler(_ cap: Capability) {
        let i = Int(cap.small)
        guard i < irqHandlerLimit else { return }
        let entry = irqSlot(i)
        if !entry.pointee.cap.isNull { removeIRQNotification(entry) }
        if state.pointee.irqTable[i] & ClusterKernel.irqMasked == 0 {
            // Enabled: disable it. (A full queue cannot happen: at most one
            // change per entry is outstanding, and Boot drains after every entry.)
            try? queueInterruptChange(cap.word, core: Int(cap.bits), enable: false)
        }
        state.pointee.irqTable[i] = 0
    }

    func queueInterruptChange(_ id: Word, core: Int, enable: Bool) throws(KernelError) {
        let count = state.pointee.irqChangeCount
        guard count < 16 else { throw .notEnoughMemory(bytesAvailable: 0) }
        state.pointee.irqChanges[count] = UInt32(id & 0xFFFF) | UInt32(core & 0xFF) << 16 | (enable ? 1 << 31 : 0)
        state.pointee.irqChangeCount = count + 1
    }

    /// Interrupt `id` was taken on `core` and is not the Boot layer's own
    /// (lock held): if a handler has it, signal its notification (if any),
    /// mask it until Ack (a disable is queued), and return true. False: no
    /// handler (Boot drops it, and should not have had it enabled).
    public func handleInterruptLocked(_ id: UInt64, core: Int) -> Bool {
        enter(core)
        let wanted = irqEntry(Word(id), core: core)
        for i in 0..<irqHandlerLimit where state.pointee.irqTable[i] & ~ClusterKernel.irqMasked == wanted {
            let e = state.pointee.irqTable[i]
            if e & ClusterKernel.irqMasked == 0 {
                state.pointee.irqTable[i] = e | ClusterKernel.irqMasked
                try? queueInterruptChange(Word(id), core: core, enable: false)
            }
            let n = irqSlot(i).pointee.cap
            if n.type == .notification {
                signal(NotificationRef(bitPattern: n.object)!, badge: n.badge)
                schedule()
            }
            return true
        }
        return false
    }

    /// The oldest enable or disable the interrupt controller owes (lock
    /// held), removed from the queue: (id, core, enable); nil if none.
    public func takeInterruptChange() -> (id: UInt64, core: Int, enable: Bool)? {
        guard let e = popFront(&state.pointee.irqChanges, count: &state.pointee.irqChangeCount) else { return nil }
        return (UInt64(e & 0xFFFF), Int((e >> 16) & 0xFF), e & (1 << 31) != 0)
    }

    /// Handler entry `i` for tests and the checker: (id, core, masked), nil if free.
    public func interruptHandler(_ i: Int) -> (id: UInt64, core: Int, masked: Bool)? {
        guard i >= 0, i < irqHandlerLimit else { return nil }
        let e = state.pointee.irqTable[i]
        guard e & ClusterKernel.irqAllocated != 0 else { return nil }
        return (UInt64(e & 0xFFFF), Int((e >> 16) & 0xFF), e & ClusterKernel.irqMasked != 0)
    }
}
