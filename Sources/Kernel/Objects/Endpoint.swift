/// Endpoints: synchronous IPC rendezvous (Send, NBSend, Call, Recv, NBRecv),
/// and the message transfer shared with Reply.
///
/// Invariants (checked in Invariants.swift):
/// - `state == .idle` iff the queue is empty; otherwise every queued thread
///   is blocked on this endpoint in the direction `state` names
///   (`.send`: blockedOnSend, `.receive`: blockedOnReceive).
/// - The queue is a well-formed doubly linked list through `queueNext/Prev`.

public typealias EndpointRef = UnsafeMutablePointer<Endpoint>

public enum EndpointState: UInt8, Sendable { case idle = 0, send, receive }

public struct Endpoint {
    public internal(set) var state: EndpointState = .idle
    var head: TCBRef? = nil
    var tail: TCBRef? = nil
}

extension ClusterKernel {
    func endpointEnqueue(_ ep: EndpointRef, _ t: TCBRef) {
        t.pointee.queueNext = nil
        t.pointee.queuePrev = ep.pointee.tail
        if let tail = ep.pointee.tail { tail.pointee.queueNext = t } else { ep.pointee.head = t }
        ep.pointee.tail = t
    }

    func endpointDequeue(_ ep: EndpointRef, _ t: TCBRef) {
        let p = t.pointee.queuePrev, n = t.pointee.queueNext
        if let p { p.pointee.queueNext = n } else { ep.pointee.head = n }
        if let n { n.pointee.queuePrev = p } else { ep.pointee.tail = p }
        t.pointee.queueNext = nil
        t.pointee.queuePrev = nil
        if ep.pointee.head == nil { ep.pointee.state = .idle }
    }

    /// Send through `ep` (seL4's sendIPC). `blocking`: Send/Call; else NBSend.
    func sendIPC(
        _ sender: TCBRef, _ ep: EndpointRef, badge: Word, canGrant: Bool, canGrantReply: Bool,
        blocking: Bool, isCall: Bool
    ) {
        if ep.pointee.state == .receive, let receiver = ep.pointee.head {
            endpointDequeue(ep, receiver)
            transferMessage(from: sender, to: receiver, endpoint: ep, badge: badge, canGrant: canGrant)
            let replyCanGrant = receiver.pointee.ipcCanGrant
            receiver.pointee.state = .running
            receiver.pointee.blockedOn = 0
            possibleSwitchTo(receiver)
            if isCall {
                if canGrant || canGrantReply {
                    setupCallerCap(sender: sender, receiver: receiver, canGrant: replyCanGrant)
                } else {
                    setThreadState(sender, .inactive)
                }
            }
            return
        }
        guard blocking else { return }
        sender.pointee.ipcBadge = badge
        sender.pointee.ipcCanGrant = canGrant
        sender.pointee.ipcCanGrantReply = canGrantReply
        sender.pointee.ipcIsCall = isCall
        sender.pointee.blockedOn = UInt(bitPattern: ep)
        setThreadState(sender, .blockedOnSend)
        endpointEnqueue(ep, sender)
        ep.pointee.state = .send
    }

    /// Receive on `ep` (seL4's receiveIPC). A signalled bound notification is
    /// delivered first.
    func receiveIPC(_ receiver: TCBRef, _ ep: EndpointRef, canGrant: Bool, blocking: Bool) {
        if let n = receiver.pointee.boundNotification, n.pointee.state == .active {
            completeSignal(n, receiver)
            return
        }
        if ep.pointee.state == .send, let sender = ep.pointee.head {
            endpointDequeue(ep, sender)
            transferMessage(
                from: sender, to: receiver, endpoint: ep, badge: sender.pointee.ipcBadge,
                canGrant: sender.pointee.ipcCanGrant)
            sender.pointee.blockedOn = 0
            if sender.pointee.ipcIsCall {
                if sender.pointee.ipcCanGrant || sender.pointee.ipcCanGrantReply {
                    setupCallerCap(sender: sender, receiver: receiver, canGrant: canGrant)
                } else {
                    setThreadState(sender, .inactive)
                }
            } else {
                sender.pointee.state = .running
                possibleSwitchTo(sender)
            }
            return
        }
        guard blocking else {
            // NBRecv with nobody sending: badge 0, empty message.
            receiver.pointee.badge = 0
            receiver.pointee.messageInfo = MessageInfo()
            receiver.pointee.receivedNotification = false
            return
        }
        receiver.pointee.ipcCanGrant = canGrant
        receiver.pointee.blockedOn = UInt(bitPattern: ep)
        setThreadState(receiver, .blockedOnReceive)
        endpointEnqueue(ep, receiver)
        ep.pointee.state = .receive
    }

    /// Every thread queued on a dying endpoint re-executes its system call
    /// (seL4's cancelAllIPC): its capability is gone, so that call fails.
    func cancelAllIPC(_ ep: EndpointRef) {
        while let t = ep.pointee.head {
            endpointDequeue(ep, t)
            t.pointee.blockedOn = 0
            t.pointee.state = .restart
            enqueue(t)
        }
        rescheduleRequired()
    }

    /// Copy the message words, the badge and (with grant) the capabilities
    /// (seL4's doIPCTransfer). `endpoint` is nil for replies.
    @inline(__always)
    func transferMessage(from sender: TCBRef, to receiver: TCBRef, endpoint: EndpointRef?, badge: Word, canGrant: Bool) {
        var info = sender.pointee.messageInfo
        let length = info.length < 0 ? 0 : min(info.length, messageRegisterCount)
        var i = 0
        while i < length {
            receiver.pointee.mr[i] = sender.pointee.mr[i]
            i &+= 1
        }
        info.length = length
        if info.extraCaps != 0 {
            if canGrant {
                transferCaps(from: sender, to: receiver, endpoint: endpoint, info: &info)
            } else {
                info.extraCaps = 0
                info.capsUnwrapped = 0
            }
        } else {
            info.capsUnwrapped = 0
        }
        receiver.pointee.messageInfo = info
        receiver.pointee.badge = badge
        receiver.pointee.receivedNotification = false
    }

    /// seL4's transferCaps: capabilities to the endpoint itself are unwrapped
    /// (their badge delivered); others are copied into the receiver's one
    /// receive slot. Transfer stops at the first capability that cannot go.
    func transferCaps(from sender: TCBRef, to receiver: TCBRef, endpoint: EndpointRef?, info: inout MessageInfo) {
        let count = min(max(info.extraCaps, 0), extraCapabilityLimit)
        var destination = receiveSlot(receiver)
        var transferred = 0
        var unwrapped: UInt8 = 0
        var i = 0
        while i < count {
            guard let src = try? lookupSlot(sender, sender.pointee.extraCaps[i]) else { break }
            let cap = src.pointee.cap
            if cap.type == .endpoint, let endpoint, cap.object == UInt(bitPattern: endpoint) {
                receiver.pointee.extraCaps[i] = cap.badge
                unwrapped |= 1 << UInt8(i)
            } else {
                guard let dest = destination, let copy = try? derive(src) else { break }
                insertCopy(copy, from: src, into: dest)
                destination = nil
            }
            transferred += 1
            i += 1
        }
        info.extraCaps = transferred
        info.capsUnwrapped = unwrapped
    }

    /// The receiver's empty receive slot, if it named one (seL4's getReceiveSlots).
    func receiveSlot(_ receiver: TCBRef) -> SlotRef? {
        let t = receiver.pointee
        guard t.receiveDepth != 0 else { return nil }
        guard let root = try? lookupSlot(receiver, t.receiveRoot) else { return nil }
        guard let slot = try? lookupSlot(forCNodeOperation: root.pointee.cap, t.receiveIndex, depth: t.receiveDepth, source: false)
        else { return nil }
        return slot.pointee.cap.isNull ? slot : nil
    }
}
