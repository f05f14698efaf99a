@testable import Kernel
import Testing

/// Root makes an endpoint (slot 20), a server (slot 30, `serverPriority`) and
/// a client (slot 31, `clientPriority`), then drops to priority 0.
private func world(server serverPriority: Word = 200, client clientPriority: Word = 100) -> (Harness, TCBRef, TCBRef) {
    let h = Harness()
    #expect(h.retype(h.bigUntyped, .endpoint, into: 20) == nil)
    let s = h.spawn(30, priority: serverPriority)
    let c = h.spawn(31, priority: clientPriority)
    #expect(h.invoke(RootSlot.thread, .tcbSetPriority, [0]) == nil)
    h.check()
    return (h, s, c)
}

@Suite struct IPC {
    @Test func callReplyRecvWithBadgesAndDirectSwitch() {
        let (h, s, c) = world()
        #expect(h.current == s)
        h.call(.recv, 20)
        #expect(s.pointee.state == .blockedOnReceive)
        #expect(h.current == c)
        h.check()
        // Client calls through a badged copy.
        #expect(h.mint(20, to: 21, badge: 0x77) == nil)
        c.pointee.mr[0] = 42
        h.call(.call, 21, label: 9, [42, 43])
        #expect(h.current == s)  // direct switch to the higher-priority server
        #expect(c.pointee.state == .blockedOnReply)
        #expect(s.pointee.badge == 0x77)
        #expect(s.pointee.messageInfo == MessageInfo(label: 9, length: 2))
        #expect(s.pointee.mr[0] == 42 && s.pointee.mr[1] == 43)
        h.check()
        h.call(.replyRecv, 20, label: 1, [99])
        #expect(h.current == c)
        #expect(c.pointee.state == .running && c.pointee.mr[0] == 99 && c.pointee.messageInfo.label == 1)
        #expect(s.pointee.state == .blockedOnReceive)
        h.check()
    }

    @Test func sendBlocksUntilReceiverArrives() {
        let (h, s, c) = world(server: 100, client: 200)
        #expect(h.current == c)
        h.call(.send, 20, label: 5, [1, 2, 3])
        #expect(c.pointee.state == .blockedOnSend)
        #expect(h.current == s)
        h.call(.recv, 20)
        #expect(s.pointee.mr[2] == 3 && s.pointee.messageInfo.length == 3)
        // The sender (priority 200) preempts the receiver at once.
        #expect(h.current == c)
        h.check()
        // NBSend with nobody waiting is dropped; NBRecv with nobody sending gets nothing.
        h.call(.nbSend, 20, [7])
        #expect(h.current == c && c.pointee.state == .running)
        h.call(.nbRecv, 20)
        #expect(c.pointee.badge == 0 && c.pointee.messageInfo.length == 0)
        h.check()
    }

    @Test func messageLengthIsClampedAndRightsAreChecked() {
        let (h, s, c) = world()
        h.call(.recv, 20)
        #expect(h.copy(20, to: 22, rights: [.read]) == nil)
        #expect(h.call(.send, 22) == .invalidCapability(index: 0))
        #expect(h.copy(20, to: 23, rights: [.write]) == nil)
        #expect(h.call(.recv, 23) == .invalidCapability(index: 0))
        #expect(h.call(.recv, RootSlot.thread) == .invalidCapability(index: 0))
        c.pointee.messageInfo = MessageInfo(label: 0, length: 50)
        h.kernel.syscall(.send, capAddress: 20)
        #expect(s.pointee.messageInfo.length == messageRegisterCount)
        h.check()
    }

    @Test func callWithoutGrantReplyLeavesCallerInactive() {
        let (h, s, c) = world()
        h.call(.recv, 20)
        #expect(h.copy(20, to: 22, rights: [.write]) == nil)
        h.call(.call, 22)
        #expect(c.pointee.state == .inactive)
        #expect(h.kernel.slot(h.cap(2), 0).isNull)
        #expect(tcbSlot(s, .caller).pointee.cap.isNull)
        h.check()
    }

    @Test func capabilityTransferNeedsGrant() {
        let (h, s, _) = world()
        #expect(h.retype(h.bigUntyped, .notification, into: 25) == nil)
        s.pointee.receiveRoot = RootSlot.cnode
        s.pointee.receiveIndex = 40
        s.pointee.receiveDepth = 64
        h.call(.recv, 20)
        // Without grant: no capability moves.
        #expect(h.copy(20, to: 22, rights: [.write, .grantReply]) == nil)
        h.call(.send, 22, extraCaps: [25])
        #expect(h.cap(40).isNull && s.pointee.messageInfo.extraCaps == 0)
        h.call(.recv, 20)
        // With grant: the notification is copied, the endpoint itself unwrapped.
        #expect(h.mint(20, to: 23, badge: 5) == nil)
        h.call(.send, 23, extraCaps: [23, 25])
        #expect(s.pointee.messageInfo.extraCaps == 2 && s.pointee.messageInfo.capsUnwrapped == 1)
        #expect(s.pointee.extraCaps[0] == 5)
        #expect(h.cap(40).type == .notification)
        h.check()
        // Receive slot occupied: the capability is not transferred.
        h.call(.recv, 20)
        h.call(.send, 23, extraCaps: [25])
        #expect(s.pointee.messageInfo.extraCaps == 0)
        h.check()
    }

    @Test func deletingAnEndpointRestartsItsWaiters() {
        let (h, s, c) = world(server: 100, client: 100)
        if h.current == c { h.call(.yield, 0) }
        #expect(h.current == s)
        h.call(.recv, 20)
        #expect(h.current == c)
        #expect(h.delete(20) == nil)
        #expect(s.pointee.state == .restart)
        h.check()
        h.call(.yield, 0)
        #expect(h.current == s)
        #expect(h.call(.recv, 20) == .failedLookup(source: false, .missingCapability(bitsLeft: 0)))
        h.check()
    }

    @Test func deletingABlockedCallerRemovesTheReplyCap() {
        let (h, s, c) = world()
        h.call(.recv, 20)
        h.call(.call, 20)
        #expect(h.current == s && !tcbSlot(s, .caller).pointee.cap.isNull)
        #expect(h.delete(31) == nil)  // the server deletes the client
        #expect(tcbSlot(s, .caller).pointee.cap.isNull)
        _ = c
        h.check()
        h.call(.reply, 0)  // no caller: nothing happens
        #expect(h.current == s)
        h.check()
    }

    @Test func deletingARunningThreadItself() {
        let (h, s, _) = world()
        #expect(h.current == s)
        #expect(h.delete(30) == nil)
        #expect(h.current != s)
        h.check()
    }
}

@Suite struct Notifications {
    @Test func signalWaitPoll() {
        let (h, s, c) = world()
        #expect(h.retype(h.bigUntyped, .notification, into: 25) == nil)
        #expect(h.mint(25, to: 26, badge: 0b01) == nil)
        #expect(h.mint(25, to: 27, badge: 0b10) == nil)
        h.call(.recv, 25)  // server waits
        #expect(s.pointee.state == .blockedOnNotification && h.current == c)
        h.check()
        h.call(.send, 26)
        #expect(h.current == s && s.pointee.badge == 0b01 && s.pointee.receivedNotification)
        h.call(.nbRecv, 25)  // poll: nothing pending
        #expect(s.pointee.badge == 0)
        h.call(.send, 26)
        h.call(.send, 27)
        h.call(.nbRecv, 25)
        #expect(s.pointee.badge == 0b11)
        #expect(h.kernel.notification(h.cap(25))!.pointee.state == .idle)
        h.check()
        #expect(h.copy(25, to: 28, rights: [.read]) == nil)
        #expect(h.call(.send, 28) == .invalidCapability(index: 0))
    }

    @Test func boundNotificationIsDeliveredWhileWaitingOnAnEndpoint() {
        let (h, s, c) = world()
        #expect(h.retype(h.bigUntyped, .notification, into: 25) == nil)
        #expect(h.mint(25, to: 26, badge: 4) == nil)
        #expect(h.invoke(30, .tcbBindNotification, extraCaps: [25]) == nil)
        #expect(h.invoke(30, .tcbBindNotification, extraCaps: [25]) == .illegalOperation)
        #expect(h.invoke(30, .tcbBindNotification) == .truncatedMessage)
        #expect(h.invoke(30, .tcbBindNotification, extraCaps: [20]) == .illegalOperation)
        h.call(.recv, 20)
        #expect(h.current == c)
        h.call(.send, 26)
        #expect(h.current == s && s.pointee.receivedNotification && s.pointee.badge == 4)
        #expect(h.kernel.endpoint(h.cap(20))!.pointee.state == .idle)
        h.check()
        // Signalled while running: the next Recv on the endpoint returns it.
        h.call(.recv, 20)
        h.call(.send, 26)
        // Server was waiting on the endpoint again, so it got it directly.
        #expect(h.current == s && s.pointee.badge == 4)
        #expect(h.call(.recv, 25) == nil)  // bound to us: allowed
        h.check()
        // The server now waits on its notification; the client unbinds it.
        #expect(s.pointee.state == .blockedOnNotification && h.current == c)
        #expect(h.invoke(30, .tcbUnbindNotification) == nil)
        #expect(s.pointee.boundNotification == nil)
        #expect(h.kernel.notification(h.cap(25))!.pointee.boundTCB == nil)
        h.check()
    }
}

@Suite struct Scheduling {
    @Test func priorityAndRoundRobin() {
        let h = Harness()
        let a = h.spawn(30, priority: 50)
        let b = h.spawn(31, priority: 50)
        let low = h.spawn(32, priority: 10)
        #expect(h.current == h.root)
        #expect(h.invoke(RootSlot.thread, .tcbSetPriority, [0]) == nil)
        let first = h.current!
        let second = first == a ? b : a
        #expect(first == a || first == b)
        h.check()
        for _ in 0..<defaultTimeSlice { h.kernel.timerTick(); h.check() }
        #expect(h.current == second)
        for _ in 0..<defaultTimeSlice { h.kernel.timerTick() }
        #expect(h.current == first)
        h.call(.yield, 0)
        #expect(h.current == second)
        // Suspending both lets the low thread run.
        #expect(h.invoke(30, .tcbSuspend) == nil)
        #expect(h.invoke(31, .tcbSuspend) == nil)
        #expect(h.current == low)
        #expect(h.invoke(30, .tcbResume) == nil)
        #expect(h.current == a)
        h.check()
        #expect(h.invoke(31, .tcbSetPriority, [60]) == .range(min: 0, max: 50))
        #expect(h.invoke(31, .tcbSetPriority, [256]) == .range(min: 0, max: 50))
        #expect(h.invoke(31, .tcbSetPriority) == .truncatedMessage)
        #expect(h.invoke(31, .tcbConfigure, [0], extraCaps: [20]) == .failedLookup(source: true, .missingCapability(bitsLeft: 0)))
        #expect(h.invoke(31, .tcbConfigure, [0], extraCaps: [30]) == .illegalOperation)
        #expect(h.invoke(31, .tcbUnbindNotification) == .illegalOperation)
        #expect(h.call(.call, 31, label: 999) == .illegalOperation)
        h.check()
    }

    @Test func lowerPriorityServerIsNotSwitchedToDirectly() {
        let (h, s, c) = world(server: 50, client: 100)
        #expect(h.current == c)
        h.call(.call, 20)  // nobody waiting: client blocks
        #expect(h.current == s)
        h.call(.recv, 20)
        // The server got the call; it keeps running (the caller waits for the reply).
        #expect(h.current == s && c.pointee.state == .blockedOnReply)
        h.call(.reply, 0)
        #expect(h.current == c)  // higher priority caller preempts
        h.check()
    }
}
