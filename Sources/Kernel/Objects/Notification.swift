/// Notifications: a word of binary semaphores (Signal, Wait, Poll), and the
/// binding that delivers a signal to a thread waiting on an endpoint.
///
/// Invariants (checked in Invariants.swift):
/// - `.waiting` iff the queue is non-empty; queued threads are
///   blockedOnNotification on this object.
/// - `.active` iff `word != 0` was signalled and nobody took it; `.idle`:
///   nothing pending and nobody waiting.
/// - `boundTCB?.boundNotification == self`, and the other way round.

public typealias NotificationRef = UnsafeMutablePointer<Notification>

public enum NotificationState: UInt8, Sendable { case idle = 0, waiting, active }

public struct Notification {
    public internal(set) var state: NotificationState = .idle
    var head: TCBRef? = nil
    var tail: TCBRef? = nil
    /// The pending signals (seL4's notification word / msgIdentifier).
    public internal(set) var word: Word = 0
    public internal(set) var boundTCB: TCBRef? = nil
}

extension ClusterKernel {
    func notificationDequeue(_ n: NotificationRef, _ t: TCBRef) {
        let p = t.pointee.queuePrev, x = t.pointee.queueNext
        if let p { p.pointee.queueNext = x } else { n.pointee.head = x }
        if let x { x.pointee.queuePrev = p } else { n.pointee.tail = p }
        t.pointee.queueNext = nil
        t.pointee.queuePrev = nil
        if n.pointee.head == nil { n.pointee.state = .idle }
    }

    /// Signal: OR the badge into the word, or wake a waiter (seL4's sendSignal).
    func signal(_ n: NotificationRef, badge: Word) {
        switch n.pointee.state {
        case .idle:
            if let t = n.pointee.boundTCB, t.pointee.state == .blockedOnReceive {
                // Bound and waiting on an endpoint: deliver as a message.
                cancelIPC(t)
                t.pointee.state = .running
                deliverSignal(t, word: badge)
                possibleSwitchTo(t)
            } else {
                n.pointee.word = badge
                n.pointee.state = .active
            }
        case .waiting:
            let t = n.pointee.head!
            notificationDequeue(n, t)
            t.pointee.blockedOn = 0
            t.pointee.state = .running
            deliverSignal(t, word: badge)
            possibleSwitchTo(t)
        case .active:
            n.pointee.word |= badge
        }
    }

    /// Wait (blocking) or Poll on a notification (seL4's receiveSignal).
    func wait(_ t: TCBRef, _ n: NotificationRef, blocking: Bool) {
        if n.pointee.state == .active {
            completeSignal(n, t)
            return
        }
        guard blocking else {
            deliverSignal(t, word: 0)
            return
        }
        t.pointee.blockedOn = UInt(bitPattern: n)
        setThreadState(t, .blockedOnNotification)
        t.pointee.queueNext = nil
        t.pointee.queuePrev = n.pointee.tail
        if let tail = n.pointee.tail { tail.pointee.queueNext = t } else { n.pointee.head = t }
        n.pointee.tail = t
        n.pointee.state = .waiting
    }

    /// Hand the pending word to `t` and clear it.
    func completeSignal(_ n: NotificationRef, _ t: TCBRef) {
        deliverSignal(t, word: n.pointee.word)
        n.pointee.word = 0
        n.pointee.state = .idle
    }

    @inline(__always) func deliverSignal(_ t: TCBRef, word: Word) {
        t.pointee.badge = word
        t.pointee.messageInfo = MessageInfo()
        t.pointee.receivedNotification = true
    }

    func unbind(_ n: NotificationRef) {
        n.pointee.boundTCB?.pointee.boundNotification = nil
        n.pointee.boundTCB = nil
    }

    /// A dying notification restarts its waiters and drops its binding.
    func finaliseNotification(_ n: NotificationRef) {
        while let t = n.pointee.head {
            notificationDequeue(n, t)
            t.pointee.blockedOn = 0
            t.pointee.state = .restart
            enqueue(t)
        }
        rescheduleRequired()
        unbind(n)
    }
}
