/// The scheduler: 256 fixed priorities, round-robin with time slices inside a
/// level, Benno scheduling and direct switch on IPC (docs/kernel/scheduling.md).
///
/// Scheduler invariant (Benno): the runnable threads are exactly the current
/// thread, the threads in the ready queues, and the switch candidate of
/// `action`. The current thread is never in a ready queue; a thread that IPC
/// unblocks becomes the candidate and enters a queue only when `schedule()`
/// decides not to run it. After `schedule()`, `action == .resumeCurrent` and
/// the current thread (if any) is runnable.
///
/// - Invariant: `inReadyQueue` iff the thread is linked in
///   `readyQueues[priority]`; bit p of the bitmap is set iff queue p is
///   non-empty; queued threads are runnable.

public enum SchedulerAction: Equatable {
    case resumeCurrent
    case chooseNew
    case switchTo(TCBRef)
}

struct ReadyQueue {
    var head: TCBRef? = nil
    var tail: TCBRef? = nil
}

extension ClusterKernel {
    @inline(__always) func queue(_ p: UInt8) -> UnsafeMutablePointer<ReadyQueue> { readyQueues + Int(p) }

    @inline(__always) func setBit(_ p: UInt8) {
        let w = Int(p >> 6)
        bitmap[w] |= 1 << UInt64(p & 63)
    }
    @inline(__always) func clearBit(_ p: UInt8) {
        let w = Int(p >> 6)
        bitmap[w] &= ~(1 << UInt64(p & 63))
    }

    /// Put a runnable thread at the head of its level (it was preempted by a
    /// higher priority and resumes first).
    func enqueue(_ t: TCBRef) {
        guard !t.pointee.inReadyQueue, t.pointee.state.isRunnable else { return }
        let q = queue(t.pointee.priority)
        t.pointee.readyPrev = nil
        t.pointee.readyNext = q.pointee.head
        if let h = q.pointee.head { h.pointee.readyPrev = t } else { q.pointee.tail = t }
        q.pointee.head = t
        t.pointee.inReadyQueue = true
        setBit(t.pointee.priority)
    }

    /// Put a runnable thread at the tail of its level (round-robin).
    func append(_ t: TCBRef) {
        guard !t.pointee.inReadyQueue, t.pointee.state.isRunnable else { return }
        let q = queue(t.pointee.priority)
        t.pointee.readyNext = nil
        t.pointee.readyPrev = q.pointee.tail
        if let tl = q.pointee.tail { tl.pointee.readyNext = t } else { q.pointee.head = t }
        q.pointee.tail = t
        t.pointee.inReadyQueue = true
        setBit(t.pointee.priority)
    }

    func dequeue(_ t: TCBRef) {
        guard t.pointee.inReadyQueue else { return }
        let q = queue(t.pointee.priority)
        let p = t.pointee.readyPrev, n = t.pointee.readyNext
        if let p { p.pointee.readyNext = n } else { q.pointee.head = n }
        if let n { n.pointee.readyPrev = p } else { q.pointee.tail = p }
        t.pointee.readyNext = nil
        t.pointee.readyPrev = nil
        t.pointee.inReadyQueue = false
        if q.pointee.head == nil { clearBit(t.pointee.priority) }
    }

    /// Highest priority with a queued thread, or -1.
    func highestQueuedPriority() -> Int {
        var w = 3
        while w >= 0 {
            let bits = bitmap[w]
            if bits != 0 { return w * 64 + 63 - bits.leadingZeroBitCount }
            w -= 1
        }
        return -1
    }

    /// Change a thread's state; a current thread that stops running makes the
    /// scheduler choose again, a stopped thread leaves every scheduling spot.
    func setThreadState(_ t: TCBRef, _ s: ThreadState) {
        t.pointee.state = s
        if !s.isRunnable {
            if t.pointee.inReadyQueue { dequeue(t) }
            if case .switchTo(let c) = state.pointee.action, c == t { state.pointee.action = .chooseNew }
            if t == state.pointee.current, state.pointee.action == .resumeCurrent { state.pointee.action = .chooseNew }
        }
    }

    /// Ask for a new choice; a pending candidate goes to its queue.
    func rescheduleRequired() {
        if case .switchTo(let c) = state.pointee.action { enqueue(c) }
        state.pointee.action = .chooseNew
    }

    /// A thread became runnable (seL4's possibleSwitchTo): it becomes the
    /// switch candidate unless a choice is already pending, in which case it
    /// joins its queue. Whether it really runs is decided by `schedule()`.
    @inline(__always)
    func possibleSwitchTo(_ t: TCBRef) {
        if state.pointee.action == .resumeCurrent {
            state.pointee.action = .switchTo(t)
        } else {
            rescheduleRequired()
            enqueue(t)
        }
    }

    func setPriority(_ t: TCBRef, _ p: UInt8) {
        let queued = t.pointee.inReadyQueue
        dequeue(t)
        t.pointee.priority = p
        if t.pointee.state.isRunnable {
            if t == state.pointee.current {
                rescheduleRequired()
            } else if queued {
                enqueue(t)
                rescheduleRequired()
            } else if case .switchTo(let c) = state.pointee.action, c == t {
                // Still the candidate; schedule() compares with the new priority.
            } else {
                possibleSwitchTo(t)
            }
        }
    }

    /// Run the highest-priority queued thread, or idle.
    func chooseThread() {
        let p = highestQueuedPriority()
        if p < 0 {
            state.pointee.current = nil
            return
        }
        let t = queue(UInt8(p)).pointee.head!
        dequeue(t)
        state.pointee.current = t
    }

    /// Carry out the pending scheduler action (seL4's schedule()).
    @inline(__always)
    func schedule() {
        let action = state.pointee.action
        if action == .resumeCurrent { return }
        scheduleSlow(action)
    }

    func scheduleSlow(_ action: SchedulerAction) {
        let current = state.pointee.current
        let wasRunnable = current.map { $0.pointee.state.isRunnable } ?? false
        if let current, wasRunnable { enqueue(current) }
        if case .switchTo(let candidate) = action {
            let fastFail = current == nil || candidate.pointee.priority < current!.pointee.priority
            if fastFail && Int(candidate.pointee.priority) < highestQueuedPriority() {
                enqueue(candidate)
                chooseThread()
            } else if wasRunnable && candidate.pointee.priority == current!.pointee.priority {
                append(candidate)
                chooseThread()
            } else {
                dequeue(candidate)
                state.pointee.current = candidate
            }
        } else {
            chooseThread()
        }
        state.pointee.action = .resumeCurrent
    }

    /// Direct switch for the IPC fast path: `from` blocked, `to` is runnable,
    /// not queued, and no other choice is pending. Returns false if priorities
    /// forbid the switch (the caller then takes the ordinary path).
    @inline(__always)
    func canSwitchDirectly(to t: TCBRef) -> Bool {
        Int(t.pointee.priority) >= highestQueuedPriority()
    }

    /// Timer tick: charge the current thread; at the end of its slice it goes
    /// to the back of its level (round-robin).
    func tick() {
        guard let t = state.pointee.current else {
            if highestQueuedPriority() >= 0 { state.pointee.action = .chooseNew }
            return
        }
        t.pointee.timeSlice &-= 1
        if t.pointee.timeSlice == 0 {
            t.pointee.timeSlice = defaultTimeSlice
            append(t)
            rescheduleRequired()
        }
    }

    /// Give up the rest of the slice to the threads of the same level.
    func yield() {
        guard let t = state.pointee.current else { return }
        t.pointee.timeSlice = defaultTimeSlice
        append(t)
        rescheduleRequired()
    }
}
