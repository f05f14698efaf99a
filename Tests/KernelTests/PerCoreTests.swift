@testable import Kernel
import Testing

/// Per-core scheduling (seL4's SMP nodes under the big lock): each core has
/// its own current thread and ready queues; a thread runs only on its
/// affinity's core; waking a thread on another core asks that core to
/// reschedule (the reschedule mask, then `reschedule(core:)` on its IPI).
@Suite struct PerCore {
    /// Deliver the outstanding reschedule IPIs; returns the mask delivered.
    @discardableResult
    func deliverIPIs(_ h: Harness) -> UInt64 {
        let mask = h.kernel.takeRescheduleRequests()
        for c in 0..<h.kernel.cores where mask & (1 << UInt64(c)) != 0 { h.kernel.reschedule(core: c) }
        return mask
    }

    /// A thread in `slot` at `priority`, moved to `core` by the root thread
    /// (on core 0) and running there if it is the highest on that core.
    @discardableResult
    func spawn(_ h: Harness, _ slot: Word, priority: Word, core: Int) -> TCBRef {
        let t = h.spawn(slot, priority: priority)
        if core != 0 {
            #expect(h.invoke(slot, .tcbSetAffinity, [Word(core)]) == nil)
            deliverIPIs(h)
        }
        #expect(t.pointee.affinity == UInt8(core))
        return t
    }

    @Test func bootChecksTheCoreCountAndKeepsTheSingleCoreLayout() {
        #expect(ClusterKernel.fixedStateBytes(cores: 1) == 12288)
        #expect(ClusterKernel.defaultLockOffset(cores: 1) == 8192)
        #expect(ClusterKernel.rootOffset(cores: 1) == 5120)
        let h = Harness()
        #expect(h.kernel.cores == 1)
        for bad in [0, -1, 65] {
            let k = ClusterKernel.boot(memory: h.memory, size: h.size, cores: bad)
            #expect(k == nil)
        }
        let wide = Harness(cores: 64)
        #expect(wide.kernel.cores == 64)
        #expect(wide.current(0) == wide.root && wide.current(63) == nil && wide.current(64) == nil)
        #expect(wide.root.pointee.affinity == 0)
        wide.check()
        wide.kernel.timerTick(core: 63)
        wide.check()
    }

    @Test func twoCoresEachRunTheirOwnThread() {
        let h = Harness(cores: 2)
        #expect(h.current(0) == h.root && h.current(1) == nil)
        let a = h.spawn(30, priority: 100)
        #expect(a.pointee.affinity == 0 && a.pointee.inReadyQueue)  // the root (255) keeps core 0
        #expect(h.invoke(30, .tcbSetAffinity, [1]) == nil)
        #expect(a.pointee.affinity == 1 && a.pointee.inReadyQueue)
        h.check()  // core 1 has a choice pending: allowed until its IPI
        let mask = h.kernel.takeRescheduleRequests()
        #expect(mask == 0b10)
        let again = h.kernel.takeRescheduleRequests()
        #expect(again == 0)
        #expect(h.current(1) == nil)
        h.kernel.reschedule(core: 1)
        #expect(h.current(1) == a && h.current(0) == h.root)
        h.check()
        // A thread made by Retype on core 1 gets core 1's affinity.
        #expect(h.retype(h.bigUntyped, .tcb, into: 31) == nil)  // by the root, on core 0
        #expect(h.kernel.thread(h.cap(31))!.pointee.affinity == 0)
        #expect(h.invoke(h.bigUntyped, .untypedRetype, [ObjectType.tcb.rawValue, 0, 0, 0, 32, 1], extraCaps: [h.cnode], core: 1) == nil)
        #expect(h.kernel.thread(h.cap(32))!.pointee.affinity == 1)
        // Each core's calls are its own current thread's.
        #expect(h.call(.yield, 0, core: 1) == nil)
        #expect(h.current(1) == a && h.current(0) == h.root)
        h.check()
    }

    @Test func ipcAcrossCores() {
        let h = Harness(cores: 2)
        #expect(h.retype(h.bigUntyped, .endpoint, into: 20) == nil)
        let s = spawn(h, 30, priority: 100, core: 1)
        #expect(h.current(1) == s)
        h.call(.recv, 20, core: 1)
        #expect(s.pointee.state == .blockedOnReceive && h.current(1) == nil)
        h.check()
        // Send from core 0: the receiver wakes on core 1, the sender runs on.
        h.call(.send, 20, label: 7, [11, 12])
        #expect(h.current(0) == h.root && h.root.pointee.state == .running)
        #expect(s.pointee.state == .running && s.pointee.inReadyQueue && h.current(1) == nil)
        #expect(s.pointee.mr[1] == 12 && s.pointee.messageInfo.label == 7)
        h.check()
        #expect(deliverIPIs(h) == 0b10)
        #expect(h.current(1) == s)
        h.check()
        // Call from core 0 (slow path: the receiver is on another core): the
        // caller blocks, core 0 goes idle; the reply wakes it on core 0.
        h.call(.recv, 20, core: 1)
        h.call(.call, 20, label: 3, [5])
        #expect(h.root.pointee.state == .blockedOnReply && h.current(0) == nil)
        #expect(s.pointee.mr[0] == 5)
        h.check()
        #expect(deliverIPIs(h) == 0b10)
        #expect(h.current(1) == s)
        h.call(.reply, 0, label: 1, [99], core: 1)
        #expect(h.root.pointee.state == .running && h.root.pointee.mr[0] == 99)
        #expect(h.current(1) == s && h.current(0) == nil)
        h.check()
        #expect(deliverIPIs(h) == 0b01)
        #expect(h.current(0) == h.root)
        h.check()
        // A thread woken on a busy core asks for a reschedule only if it
        // outranks that core's current thread.
        let low = spawn(h, 31, priority: 10, core: 1)
        #expect(low.pointee.state.isRunnable && h.current(1) == s)
        #expect(h.kernel.takeRescheduleRequests() == 0)
        h.call(.recv, 20, core: 1)
        #expect(h.current(1) == low)
        h.call(.send, 20)
        #expect(deliverIPIs(h) == 0b10)
        #expect(h.current(1) == s && low.pointee.inReadyQueue)
        h.check()
    }

    @Test func setAffinity() {
        let one = Harness()
        #expect(one.invoke(RootSlot.thread, .tcbSetAffinity, [1]) == .range(min: 0, max: 0))
        #expect(one.invoke(RootSlot.thread, .tcbSetAffinity, [0]) == nil)
        one.check()

        let h = Harness(cores: 2)
        #expect(h.invoke(RootSlot.thread, .tcbSetAffinity, [2]) == .range(min: 0, max: 1))
        #expect(h.invoke(RootSlot.thread, .tcbSetAffinity, []) == .truncatedMessage)
        // Moving a queued thread: off core 0's queues, into core 1's.
        let a = h.spawn(30, priority: 100)
        #expect(a.pointee.inReadyQueue && a.pointee.affinity == 0)
        #expect(h.invoke(30, .tcbSetAffinity, [1]) == nil)
        #expect(a.pointee.inReadyQueue && a.pointee.affinity == 1)
        h.check()
        deliverIPIs(h)
        #expect(h.current(1) == a)
        // A thread current on another core is refused.
        #expect(h.invoke(30, .tcbSetAffinity, [0]) == .illegalOperation)
        #expect(a.pointee.affinity == 1 && h.current(1) == a)
        h.check()
        // A blocked thread just changes its core.
        let b = h.spawn(31, priority: 50)
        #expect(h.invoke(31, .tcbSuspend) == nil)
        #expect(h.invoke(31, .tcbSetAffinity, [1]) == nil)
        #expect(b.pointee.affinity == 1 && !b.pointee.inReadyQueue && h.kernel.takeRescheduleRequests() == 0)
        // Moving itself: the invoker leaves core 0 (which chooses again) and
        // waits on core 1 behind the higher thread there.
        #expect(h.invoke(RootSlot.thread, .tcbSetAffinity, [1]) == nil)
        #expect(h.root.pointee.affinity == 1 && h.current(0) == nil)
        #expect(h.root.pointee.state == .running && h.root.pointee.inReadyQueue)
        h.check()
        #expect(deliverIPIs(h) == 0b10)  // the root (255) outranks a (100)
        #expect(h.current(1) == h.root && a.pointee.inReadyQueue)
        h.check()
        // And back, from core 1: a runs again there, the root on core 0.
        #expect(h.invoke(RootSlot.thread, .tcbSetAffinity, [0], core: 1) == nil)
        #expect(h.current(1) == a)
        #expect(deliverIPIs(h) == 0b01)
        #expect(h.current(0) == h.root)
        h.check()
    }

    @Test func timerTicksRoundRobinOnlyTheirCoresLevel() {
        let h = Harness(cores: 2)
        let a = spawn(h, 30, priority: 100, core: 1)
        let b = spawn(h, 31, priority: 100, core: 1)
        let c = spawn(h, 32, priority: 100, core: 0)
        let d = spawn(h, 33, priority: 100, core: 0)
        #expect(h.invoke(RootSlot.thread, .tcbSetPriority, [0]) == nil)
        deliverIPIs(h)
        let first1 = h.current(1)!, first0 = h.current(0)!
        #expect([a, b].contains(first1) && [c, d].contains(first0))
        h.check()
        for _ in 0..<Int(defaultTimeSlice) { h.kernel.timerTick(core: 1) }
        #expect(h.current(1) == (first1 == a ? b : a))
        #expect(h.current(0) == first0)  // core 0's level did not move
        h.check()
        for _ in 0..<Int(defaultTimeSlice) - 1 { h.kernel.timerTick(core: 0) }
        #expect(h.current(0) == first0)
        h.kernel.timerTick(core: 0)
        #expect(h.current(0) == (first0 == c ? d : c))
        #expect(h.current(1) == (first1 == a ? b : a))
        #expect(h.kernel.takeRescheduleRequests() == 0)
        h.check()
    }

    @Test func suspendingAThreadCurrentOnAnotherCore() {
        let h = Harness(cores: 2)
        #expect(h.retype(h.bigUntyped, .endpoint, into: 20) == nil)
        let a = spawn(h, 30, priority: 100, core: 1)
        #expect(h.current(1) == a)
        #expect(h.invoke(30, .tcbSuspend) == nil)
        #expect(a.pointee.state == .inactive)
        h.check()  // core 1 still "runs" it until its IPI
        #expect(h.kernel.takeRescheduleRequests() == 0b10)
        // Its system call before the IPI is not made: core 1 chooses first.
        a.pointee.messageInfo = MessageInfo()
        h.kernel.syscall(.send, capAddress: 20, core: 1)
        #expect(h.current(1) == nil && a.pointee.state == .inactive)
        h.check()
        // Resumed, it runs on core 1 again (after the IPI).
        #expect(h.invoke(30, .tcbResume) == nil)
        #expect(deliverIPIs(h) == 0b10)
        #expect(h.current(1) == a)
        // Suspended and resumed before core 1 takes the IPI: still its thread.
        #expect(h.invoke(30, .tcbSuspend) == nil)
        #expect(h.invoke(30, .tcbResume) == nil)
        h.check()
        #expect(deliverIPIs(h) == 0b10)
        #expect(h.current(1) == a && !a.pointee.inReadyQueue)
        h.check()
        // A higher thread woken there preempts it when core 1 enters next:
        // its interrupted call is made again when it runs again.
        let b = h.spawn(31, priority: 200)
        #expect(h.invoke(31, .tcbSetAffinity, [1]) == nil)
        #expect(h.kernel.takeRescheduleRequests() == 0b10)
        a.pointee.messageInfo = MessageInfo()
        h.kernel.syscall(.yield, capAddress: 0, core: 1)
        #expect(h.current(1) == b && a.pointee.state == .restart && a.pointee.inReadyQueue)
        h.check()
    }

    @Test func deletingAThreadCurrentOnAnotherCore() {
        let h = Harness(cores: 2)
        let a = spawn(h, 30, priority: 100, core: 1)
        #expect(h.current(1) == a)
        #expect(h.delete(30) == nil)
        #expect(h.current(1) == nil)  // no dangling reference, at once
        h.check()
        #expect(deliverIPIs(h) == 0b10)
        #expect(h.current(1) == nil && h.current(0) == h.root)
        h.check()
        // With another thread waiting there, core 1 runs it after the IPI.
        let b = spawn(h, 31, priority: 100, core: 1)
        let c = spawn(h, 32, priority: 50, core: 1)
        #expect(h.current(1) == b && c.pointee.inReadyQueue)
        #expect(h.delete(31) == nil)
        #expect(h.current(1) == nil)
        h.check()
        #expect(deliverIPIs(h) == 0b10)
        #expect(h.current(1) == c)
        h.check()
    }

    @Test func setPriorityOfAThreadCurrentOnAnotherCore() {
        let h = Harness(cores: 2)
        let a = spawn(h, 30, priority: 100, core: 1)
        let b = spawn(h, 31, priority: 50, core: 1)
        #expect(h.current(1) == a && b.pointee.inReadyQueue)
        #expect(h.invoke(30, .tcbSetPriority, [10]) == nil)
        h.check()
        #expect(deliverIPIs(h) == 0b10)
        #expect(h.current(1) == b)
        // Raising a queued thread on core 1 above its current one.
        #expect(h.invoke(30, .tcbSetPriority, [60]) == nil)
        #expect(deliverIPIs(h) == 0b10)
        #expect(h.current(1) == a)
        h.check()
    }
}
