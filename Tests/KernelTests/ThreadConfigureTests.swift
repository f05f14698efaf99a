@testable import Kernel
import Testing

/// TCB Configure replaces a thread's CSpace root. Deleting the old root can
/// run arbitrary finalisation: it may destroy the target thread itself, or
/// the CNode holding the new root's source (issue 11, first section).
@Suite struct ThreadConfigure {
    /// The scenario of issue 11. Root CNode slots: 9 = Untyped U (holds only
    /// T and X, T at its base), 26 = CNode Y, 27 = CNode Z (the new root).
    /// T's CSpace root is the only capability to X (guard 60, radix 2);
    /// X[1] holds the only capability to T; X[2] is a copy of Y; Y[0] a copy
    /// of Z. T invokes Configure on itself (X[1], address 1 << 2) with the new
    /// root Y[0] (address 2 << 2 | 0).
    ///
    /// Deleting T's old root reduces X, reaches X[1] and finalises T. If the
    /// new root were then inserted into slot 0 of the dead TCB, the tree would
    /// keep a node in freed memory: once U's watermark resets, a notification
    /// retyped at T's address is overwritten by the next tree update next to
    /// Y[0] (a kernel address ends up in its word and is delivered as a badge).
    /// seL4 (invokeTCB_ThreadControl) re-checks `sameObjectAs` on the target's
    /// capability and on the source after the delete and then inserts nothing,
    /// returning success.
    @Test(arguments: [1, 2, 3, 5, 8, 100])
    func configureThatDestroysTheTargetInsertsNothing(preemptEvery: Int) {
        let h = Harness(preemptEvery: preemptEvery)
        #expect(h.retype(h.bigUntyped, .untyped, size: 12, into: 9) == nil)
        #expect(h.retype(9, .tcb, into: 30) == nil)
        #expect(h.retype(9, .cnode, size: 2, into: 25) == nil)
        #expect(h.retype(h.bigUntyped, .cnode, size: 2, into: 26) == nil)
        #expect(h.retype(h.bigUntyped, .cnode, size: 3, into: 27) == nil)
        let tObject = h.cap(30).object
        #expect(tObject == h.cap(9).object)
        let t = h.kernel.thread(h.cap(30))!
        // Y[0] = Z, X[2] = Y.
        #expect(h.invoke(26, .cnodeCopy, [0, 2, 27, 64, 15], extraCaps: [h.cnode]) == nil)
        #expect(h.invoke(25, .cnodeCopy, [2, 2, 26, 64, 15], extraCaps: [h.cnode]) == nil)
        // T's root: X with a 60-bit guard of 0 (X resolves 62 bits).
        #expect(h.invoke(30, .tcbConfigure, [60], extraCaps: [25]) == nil)
        #expect(h.invoke(30, .tcbSetPriority, [255, 255]) == nil)
        #expect(h.invoke(30, .tcbResume) == nil)
        // X[1] = the only capability to T; T's root the only capability to X.
        #expect(h.invoke(25, .cnodeMove, [1, 2, 30, 64], extraCaps: [h.cnode]) == nil)
        #expect(h.delete(25) == nil)
        h.check("before Configure")
        #expect(h.call(.yield, 0) == nil)
        #expect(h.current == t)

        // T replaces its own CSpace root.
        t.pointee.messageInfo = MessageInfo(label: InvocationLabel.tcbConfigure.rawValue, length: 1, extraCaps: 1)
        t.pointee.mr[0] = 0
        t.pointee.extraCaps[0] = 2 << 2
        var rounds = 0
        repeat {
            h.kernel.syscall(.call, capAddress: 1 << 2)
            h.check("after Configure, round \(rounds)")
            rounds += 1
        } while h.current == t && t.pointee.state == .restart && rounds < 100
        // T is gone. Preempted often, T may survive: a preemption after
        // its old root became a Zombie leaves T unable to look anything up;
        // the restarted call fails. It yields to the root thread.
        if h.current == t { h.call(.yield, 0) }
        #expect(h.current == h.root)
        #expect(h.kernel.slot(h.cap(26), 0).type == .cnode)

        // Reclaim U (a no-op when nothing is left in it) and reuse T's memory.
        #expect(h.revoke(9) == nil)
        h.check("after revoking U")
        #expect(h.retype(9, .notification, into: 40) == nil)
        #expect(h.cap(40).object == tObject)
        #expect(h.mint(40, to: 41, badge: 1) == nil)
        h.call(.send, 41)
        // A tree update next to Y[0]: copy it to Y[1].
        #expect(h.invoke(26, .cnodeCopy, [1, 2, 0, 2, 15], extraCaps: [26]) == nil)
        h.check("after reusing T's memory")
        #expect(h.call(.nbRecv, 40) == nil)
        #expect(h.root.pointee.badge == 1, "the notification's word was overwritten by a tree update")
        #expect(h.root.pointee.receivedNotification)
    }
}

extension ThreadConfigure {
    /// T (slot 30) has X as its only CSpace root; X[1] is a copy of T's
    /// capability, X[2] a copy of Z. T configures itself with X[2] as the new
    /// root: deleting X empties X[2] before it can be copied. T survives; as
    /// seL4, the call succeeds and T is left with no CSpace root.
    @Test func configureWhoseSourceDiesWithTheOldRootInsertsNothing() {
        let h = Harness()
        #expect(h.retype(h.bigUntyped, .tcb, into: 30) == nil)
        #expect(h.retype(h.bigUntyped, .cnode, size: 2, into: 25) == nil)
        #expect(h.retype(h.bigUntyped, .cnode, size: 3, into: 27) == nil)
        let t = h.kernel.thread(h.cap(30))!
        #expect(h.invoke(25, .cnodeCopy, [1, 2, 30, 64, 15], extraCaps: [h.cnode]) == nil)
        #expect(h.invoke(25, .cnodeCopy, [2, 2, 27, 64, 15], extraCaps: [h.cnode]) == nil)
        #expect(h.invoke(30, .tcbConfigure, [62], extraCaps: [25]) == nil)
        #expect(h.delete(25) == nil)
        #expect(h.invoke(30, .tcbSetPriority, [255, 255]) == nil)
        #expect(h.invoke(30, .tcbResume) == nil)
        #expect(h.call(.yield, 0) == nil)
        #expect(h.current == t)
        h.check("before Configure")
        #expect(h.invoke(1, .tcbConfigure, [0], extraCaps: [2]) == nil)
        #expect(h.current == t && t.pointee.state == .running)
        #expect(tcbSlot(t, .cspaceRoot).pointee.cap.isNull)
        #expect(h.cap(27).type == .cnode)
        h.check("after Configure")
    }
}
