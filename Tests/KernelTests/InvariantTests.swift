@testable import Kernel
import Testing

/// Each invariant added for issue 11 must catch a planted fault: build a
/// valid state, check it passes, corrupt it by hand, and expect that
/// invariant's own message.
@Suite struct InvariantsCatchCorruption {
    func violation(_ h: Harness) -> String? {
        h.kernel.checkInvariants().map { "\($0.message)" }
    }

    func rootSlotRef(_ h: Harness, _ i: Word) -> SlotRef { cnodeSlot(h.kernel.rootCNode, i) }

    /// A TCB (slot 30) whose CSpace root is a copy of the root CNode; not started.
    func threadWithCSpace(_ h: Harness) -> TCBRef {
        #expect(h.retype(h.bigUntyped, .tcb, into: 30) == nil)
        #expect(h.invoke(30, .tcbConfigure, [0], extraCaps: [h.cnode]) == nil)
        return h.kernel.thread(h.cap(30))!
    }

    // MARK: Containers

    /// The Configure bug's state: a node linked in a TCB nothing names.
    @Test func treeNodeInADeadThreadIsCaught() {
        let h = Harness()
        let t = threadWithCSpace(h)
        #expect(violation(h) == nil)
        emptySlot(rootSlotRef(h, 30))  // T's only capability, T's slots left linked
        #expect(violation(h) == "derivation-tree node outside every live container")
        #expect(h.kernel.checkInvariants()?.address == UInt(bitPattern: tcbSlot(t, .cspaceRoot)))
    }

    @Test func treeNodeInADeadCNodeIsCaught() {
        let h = Harness()
        #expect(h.retype(h.bigUntyped, .cnode, size: 2, into: 25) == nil)
        #expect(h.retype(h.bigUntyped, .endpoint, into: 20) == nil)
        #expect(h.invoke(25, .cnodeCopy, [3, 2, 20, 64, 15], extraCaps: [h.cnode]) == nil)
        #expect(violation(h) == nil)
        emptySlot(rootSlotRef(h, 25))
        #expect(violation(h) == "derivation-tree node outside every live container")
    }

    @Test func capabilityInALiveSlotOutsideTheTreeIsCaught() {
        let h = Harness()
        #expect(h.retype(h.bigUntyped, .endpoint, into: 20) == nil)
        #expect(violation(h) == nil)
        rootSlotRef(h, 40).pointee = CTE(cap: h.cap(20))
        #expect(violation(h) == "live slot not linked into the derivation tree")
    }

    // MARK: Derivation

    /// Mint 20 -> 21 (badge 5, read only), copy 21 -> 22.
    func badgedGroup(_ h: Harness) {
        #expect(h.retype(h.bigUntyped, .endpoint, into: 20) == nil)
        #expect(h.mint(20, to: 21, rights: [.read], badge: 5) == nil)
        #expect(h.copy(21, to: 22) == nil)
        #expect(h.cap(22).rights == [.read] && h.cap(22).badge == 5)
        #expect(violation(h) == nil)
    }

    @Test func childWithMoreRightsThanItsParentIsCaught() {
        let h = Harness()
        badgedGroup(h)
        rootSlotRef(h, 22).pointee.cap.rights = .all
        #expect(violation(h) == "capability has rights its parent lacks")
    }

    @Test func copyWithAnotherBadgeIsCaught() {
        let h = Harness()
        badgedGroup(h)
        rootSlotRef(h, 22).pointee.cap.word = 6
        #expect(violation(h) == "badged copy outside its badge group")
    }

    @Test func plainCopyMarkedRevocableIsCaught() {
        let h = Harness()
        badgedGroup(h)
        #expect(h.copy(20, to: 23) == nil)  // an unbadged copy: never a parent
        #expect(violation(h) == nil)
        rootSlotRef(h, 23).pointee.revocable = true
        rootSlotRef(h, 23).pointee.firstBadged = true
        #expect(violation(h) == "copy marked revocable")
    }

    @Test func revocableButNotFirstBadgedIsCaught() {
        let h = Harness()
        badgedGroup(h)
        rootSlotRef(h, 21).pointee.firstBadged = false
        #expect(violation(h) == "revocable capability not first-badged")
    }

    @Test func untypedThatHidesItsChildrenIsCaught() {
        let h = Harness()
        #expect(h.retype(h.bigUntyped, .untyped, size: 12, into: 9) == nil)
        #expect(h.retype(9, .endpoint, into: 20) == nil)
        #expect(violation(h) == nil)
        rootSlotRef(h, 9).pointee.revocable = false
        rootSlotRef(h, 9).pointee.firstBadged = false
        #expect(violation(h) == "Untyped capability not revocable (its children would be invisible)")
    }

    // MARK: References

    /// Root (priority 255) and a thread T in slot 30 (priority 100) blocked
    /// receiving on endpoint 20; the root runs.
    func blockedThread(_ h: Harness) -> TCBRef {
        #expect(h.retype(h.bigUntyped, .endpoint, into: 20) == nil)
        let t = h.spawn(30, priority: 100)
        #expect(h.invoke(RootSlot.thread, .tcbSetPriority, [50]) == nil)
        #expect(h.current == t)
        #expect(h.call(.recv, 20) == nil)
        #expect(t.pointee.state == .blockedOnReceive && h.current == h.root)
        #expect(violation(h) == nil)
        return t
    }

    @Test func threadBlockedOnADeadEndpointIsCaught() {
        let h = Harness()
        _ = blockedThread(h)
        emptySlot(rootSlotRef(h, 20))  // the endpoint dies, its waiter is not cancelled
        #expect(violation(h) == "blocked threads and queue members differ: a queue holds a dead thread or a thread waits on a dead object")
    }

    @Test func deadThreadInALiveQueueIsCaught() {
        let h = Harness()
        let t = blockedThread(h)
        emptySlot(tcbSlot(t, .cspaceRoot))
        emptySlot(rootSlotRef(h, 30))  // T dies but stays in the endpoint's queue
        #expect(violation(h) == "blocked threads and queue members differ: a queue holds a dead thread or a thread waits on a dead object")
        tcbSlot(t, .reply).pointee = CTE()  // as T's Zombie would have left it
        #expect(violation(h) == "endpoint queue holds a dead thread")
    }

    @Test func bindingToADeadNotificationIsCaught() {
        let h = Harness()
        _ = threadWithCSpace(h)
        #expect(h.retype(h.bigUntyped, .notification, into: 25) == nil)
        #expect(h.invoke(30, .tcbBindNotification, extraCaps: [25]) == nil)
        #expect(violation(h) == nil)
        emptySlot(rootSlotRef(h, 25))  // the notification dies without unbinding
        #expect(violation(h) == "bindings differ: a thread or notification is bound to a dead object")
    }

    @Test func replyCapabilityToADeadThreadIsCaught() {
        let h = Harness()
        #expect(h.retype(h.bigUntyped, .endpoint, into: 20) == nil)
        let s = h.spawn(30, priority: 200)
        let c = h.spawn(31, priority: 100)
        #expect(h.invoke(RootSlot.thread, .tcbSetPriority, [0]) == nil)
        #expect(h.current == s)
        h.call(.recv, 20)
        #expect(h.current == c)
        h.call(.call, 20)
        #expect(h.current == s && tcbSlot(s, .caller).pointee.cap.type == .reply)
        #expect(violation(h) == nil)
        emptySlot(tcbSlot(c, .cspaceRoot))
        emptySlot(rootSlotRef(h, 31))  // the caller dies; the server keeps its reply capability
        #expect(violation(h) == "reply capabilities differ: one names or sits in a dead thread")
        tcbSlot(c, .reply).pointee.cap = .null
        #expect(violation(h) == "reply capability names a thread not waiting for it")
    }

    @Test func currentThreadThatIsDeadIsCaught() {
        let h = Harness()
        let t = h.spawn(30, priority: 255)
        #expect(h.call(.yield, 0) == nil)
        #expect(h.current == t)
        #expect(violation(h) == nil)
        emptySlot(tcbSlot(t, .cspaceRoot))
        emptySlot(rootSlotRef(h, 30))
        #expect(violation(h) == "current thread is not a live TCB")
    }

    // MARK: Per-core scheduling

    @Test func threadQueuedOnAnotherCoresQueueIsCaught() {
        let h = Harness(cores: 2)
        let t = h.spawn(30, priority: 100)
        #expect(t.pointee.inReadyQueue && t.pointee.affinity == 0)
        #expect(violation(h) == nil)
        t.pointee.affinity = 1  // still linked in core 0's queues
        #expect(violation(h) == "queued thread in another core's ready queue")
    }

    @Test func currentThreadWithAnotherCoresAffinityIsCaught() {
        let h = Harness(cores: 2)
        #expect(violation(h) == nil)
        h.root.pointee.affinity = 1  // current on core 0
        #expect(violation(h) == "current thread of a core has another core's affinity")
    }

    @Test func switchCandidateOnAnotherCoreIsCaught() {
        let h = Harness(cores: 2)
        let t = h.spawn(30, priority: 100)
        #expect(h.invoke(30, .tcbSetAffinity, [1]) == nil)
        h.kernel.reschedule(core: 1)
        _ = h.kernel.takeRescheduleRequests()
        #expect(violation(h) == nil)
        h.kernel.node(1).pointee.action = .switchTo(t)
        #expect(violation(h) == "scheduler action pending between entries")
    }

    @Test func higherThreadWaitingOnAnotherCoreWithoutARequestIsCaught() {
        let h = Harness(cores: 2)
        let t = h.spawn(30, priority: 100)
        #expect(h.invoke(30, .tcbSetAffinity, [1]) == nil)
        #expect(violation(h) == nil)  // core 1 must choose: a request is out
        h.kernel.node(1).pointee.action = .resumeCurrent  // the request lost
        #expect(violation(h) == "idle with runnable threads")
        _ = t
    }

    // MARK: Remote signals (8)

    /// Cluster 2 of 4 with an export (badge 0b100, index 1) and a remote
    /// notification capability (cluster 0, index 3) in slot 30.
    func remoteWorld() -> Harness {
        let h = Harness(cluster: 2, clusterCount: 4)
        #expect(h.retype(h.bigUntyped, .notification, into: 25) == nil)
        #expect(h.mint(25, to: 26, badge: 0b100) == nil)
        #expect(h.invoke(26, .notificationExport, [1]) == nil)
        #expect(h.invoke(RootSlot.interKernel, .interKernelIssueRemote, [0, 3, 30], extraCaps: [h.cnode]) == nil)
        #expect(violation(h) == nil)
        return h
    }

    @Test func unbadgedExportIsCaught() {
        let h = remoteWorld()
        h.kernel.exportSlot(1).pointee.cap.word = 0
        #expect(violation(h) == "export entry is not a badged notification")
    }

    @Test func exportOfAnotherTypeIsCaught() {
        let h = remoteWorld()
        h.kernel.exportSlot(1).pointee.cap.type = .endpoint
        #expect(violation(h) == "export entry is not a badged notification")
    }

    @Test func exportOutsideTheTreeIsCaught() {
        let h = remoteWorld()
        // A capability written into an entry without linking it.
        h.kernel.exportSlot(4).pointee = CTE(cap: h.kernel.exported(1))
        #expect(violation(h) == "live slot not linked into the derivation tree")
    }

    @Test func remoteNotificationToItselfIsCaught() {
        let h = remoteWorld()
        rootSlotRef(h, 30).pointee.cap.bits = 2
        #expect(violation(h) == "remote notification names no other cluster's export")
    }

    @Test func remoteNotificationToNoClusterIsCaught() {
        let h = remoteWorld()
        rootSlotRef(h, 30).pointee.cap.bits = 4
        #expect(violation(h) == "remote notification names no other cluster's export")
    }

    @Test func remoteNotificationBeyondTheExportsIsCaught() {
        let h = remoteWorld()
        rootSlotRef(h, 30).pointee.cap.word = Word(exportLimit)
        #expect(violation(h) == "remote notification names no other cluster's export")
    }
}
