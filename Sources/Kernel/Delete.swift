/// Deletion and revocation with preemption points (seL4's finaliseSlot,
/// reduceZombie, cteRevoke, in our own form).
///
/// Deleting the last capability to an endpoint, notification or Untyped
/// finalises the object at once. Deleting the last capability to a CNode or
/// TCB turns it into a Zombie (the TCB is suspended and unbound first); the
/// Zombie's slots are then deleted one per step, from the last down, with a
/// preemption point after every step. A preempted delete or revoke leaves a
/// consistent state; the thread is in `.restart` and re-issuing the call
/// continues from the Zombie's count.
///
/// A slot of the dying object may hold the last capability to another CNode
/// or TCB (or its Zombie). Rather than recurse, that object is turned into a
/// Zombie and *parked* in its own first slot (swapped there, so the dying
/// object's slot receives what was in the first slot and is processed next).
/// A parked Zombie lives inside its own memory, so no live slot is left in
/// memory that could be reused; it is reclaimed when a revoke of its Untyped
/// (or a delete of that slot) reaches it. Every step is O(1), parking cannot
/// repeat for the same object, so a delete terminates.
///
/// - Invariant: a Zombie's slots `count..<size` are empty, except the slot
///   holding the Zombie itself.

extension ClusterKernel {
    /// A preemption point (seL4's preemptionPoint asking `isIRQPending()`):
    /// throw `.preempted` if the check the caller installed at boot
    /// (`preemptionPending`: on AArch64, this core's tick is due) says an
    /// interrupt is waiting. No check installed: never preempted. Every
    /// preemption point follows a step of progress, so a re-issued call
    /// completes even if every check says pending.
    @inline(__always)
    func preemptionPoint() throws(KernelError) {
        if let pending = state.pointee.preemptionPending, pending() { throw .preempted }
    }

    @inline(__always) func zombieSlot(_ z: Capability, _ i: Word) -> SlotRef {
        SlotRef(bitPattern: z.object &+ UInt(i << Word(slotSizeBits)))!
    }

    /// The Zombie that replaces the last capability to a CNode or TCB.
    func makeZombie(_ cap: Capability) -> Capability {
        if cap.type == .tcb {
            finaliseTCB(tcbRef(object: cap.object))
            return Capability(
                type: .zombie, rights: [], bits: UInt8(tcbSizeBits), small: 1, object: cap.object, word: Word(tcbSlotCount))
        }
        return Capability(
            type: .zombie, rights: [], bits: cap.bits + UInt8(slotSizeBits), small: 0, object: cap.object,
            word: Word(1) << Word(cap.bits))
    }

    /// Undo a leaf object's references when its last capability goes.
    func finaliseLeaf(_ cap: Capability) {
        switch cap.type {
        case .endpoint: cancelAllIPC(EndpointRef(bitPattern: cap.object)!)
        case .notification: finaliseNotification(NotificationRef(bitPattern: cap.object)!)
        case .vcpu: finaliseVCPU(VCPURef(bitPattern: cap.object)!)
        case .irqHandler: finaliseIRQHandler(cap)
        default: break
        }
    }

    /// Delete the capability in `slot` (seL4's cteDelete with exposed = true).
    func deleteSlot(_ slot: SlotRef) throws(KernelError) {
        while !slot.pointee.cap.isNull {
            let cap = slot.pointee.cap
            if cap.type == .zombie {
                try reduceZombie(slot)
                continue
            }
            let final = isFinal(slot)
            if final && (cap.type == .cnode || cap.type == .tcb) {
                slot.pointee.cap = makeZombie(cap)
                try preemptionPoint()
                continue
            }
            try finaliseMapping(slot, final: final)
            if final { finaliseLeaf(cap) }
            emptySlot(slot)
        }
    }

    /// Delete the Zombie in `top` slot by slot until it is gone.
    func reduceZombie(_ top: SlotRef) throws(KernelError) {
        while top.pointee.cap.type == .zombie {
            let z = top.pointee.cap
            let n = z.word
            if n == 0 || (n == 1 && zombieSlot(z, 0) == top) {
                emptySlot(top)
                return
            }
            let s = zombieSlot(z, n - 1)
            let c = s.pointee.cap
            if s == top || c.isNull {
                // Our own slot is emptied last, with the Zombie itself.
                top.pointee.cap.word = n - 1
            } else if c.type == .zombie || (isFinal(s) && (c.type == .cnode || c.type == .tcb)) {
                // Park that object's Zombie in its own first slot; `s` gets
                // what was there and is looked at again next step.
                var parked = c
                if c.type != .zombie {
                    parked = makeZombie(c)
                    s.pointee.cap = parked
                }
                swapSlots(s, zombieSlot(parked, 0))
            } else {
                try finaliseMapping(s, final: isFinal(s))
                if isFinal(s) { finaliseLeaf(c) }
                emptySlot(s)
                top.pointee.cap.word = n - 1
            }
            try preemptionPoint()
        }
    }

    /// Delete every descendant of `slot` in the derivation tree (seL4's
    /// cteRevoke), one per preemption step.
    func revoke(_ slot: SlotRef) throws(KernelError) {
        while let next = slot.pointee.next, isDerivationParent(slot, of: next) {
            try deleteSlot(next)
            try preemptionPoint()
        }
    }
}
