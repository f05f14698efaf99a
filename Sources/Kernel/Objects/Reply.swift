/// Reply capabilities: the one-shot right to answer a `Call`.
///
/// `Call` puts a reply capability to the caller into the receiver's caller
/// slot, derived from the caller's reply master (its TCB slot 2), and blocks
/// the caller in `.blockedOnReply`. `Reply` consumes it.
///
/// Invariant: a reply capability (non-master) exists only in a caller slot,
/// right after its master in the derivation tree, and its thread is
/// blockedOnReply. Cancelling the caller's IPC deletes it; deleting it
/// leaves the caller blocked (as in seL4) until it is resumed or deleted.

extension ClusterKernel {
    /// Block `sender` on the reply and give `receiver` the capability to answer.
    @inline(__always)
    func setupCallerCap(sender: TCBRef, receiver: TCBRef, canGrant: Bool) {
        setThreadState(sender, .blockedOnReply)
        let master = tcbSlot(sender, .reply)
        let callerSlot = tcbSlot(receiver, .caller)
        // Recv empties the caller slot first, so it is empty here.
        emptySlot(callerSlot)
        insertCopy(.reply(to: tcbObject(sender), master: false, canGrant: canGrant), from: master, into: callerSlot)
    }

    /// Answer the thread whose reply capability sits in our caller slot.
    /// Without one, Reply does nothing (as in seL4).
    func doReply(_ thread: TCBRef) {
        let callerSlot = tcbSlot(thread, .caller)
        let cap = callerSlot.pointee.cap
        guard cap.type == .reply else { return }
        let caller = tcbRef(object: cap.object)
        emptySlot(callerSlot)
        transferMessage(from: thread, to: caller, endpoint: nil, badge: 0, canGrant: cap.word != 0)
        caller.pointee.state = .running
        possibleSwitchTo(caller)
    }

    /// Drop an unanswered reply capability (Recv does this first, as seL4's
    /// deleteCallerCap). The caller stays blocked.
    @inline(__always)
    func deleteCallerCap(_ thread: TCBRef) {
        emptySlot(tcbSlot(thread, .caller))
    }
}
