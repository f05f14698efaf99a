/// The scheduler: 256 fixed priorities, round-robin with time slices inside a
/// level, Benno scheduling and direct switch on IPC (docs/kernel/scheduling.md).
/// Each core is a scheduling node (seL4's SMP nodes): its own current thread,
/// action, ready queues and bitmap. A thread belongs to the node of its
/// `affinity`; the entry's core (`KernelState.core`) is "here".
///
/// Scheduler invariant (Benno, per core): the runnable threads of affinity c
/// are exactly core c's current thread, the threads in core c's ready queues,
/// and the switch candidate of core c's `action`. A current thread is never
/// in a ready queue; a thread that IPC unblocks here becomes the candidate
/// and enters a queue only when `schedule()` decides not to run it. After
/// `schedule()`, this core's `action == .resumeCurrent` and its current
/// thread (if any) is runnable.
///
/// - Invariant: `inReadyQueue` iff the thread is linked in
///   `queue(affinity, priority)`; bit p of core c's bitmap is set iff its
///   queue p is non-empty; queued threads are runnable; core c's current
///   thread has affinity c.
/// - Invariant (other cores): an entry changes another core's node only by
///   queueing or dequeueing its threads, or by setting its action to
///   `.chooseNew` and its bit in `rescheduleMask` (never a switch candidate).
///   So between entries every other core has either no pending action, a
///   runnable current thread of the highest priority there, or a pending
///   `.chooseNew` (a reschedule request outstanding; its current thread may
///   then be stopped or queued until it reschedules).

public enum SchedulerAction: Equatable {
    case resumeCurrent
    case chooseNew
    case switchTo(TCBRef)
}

struct ReadyQueue {
    var head: TCBRef? = nil
    var tail: TCBRef? = nil
}

/// A core's scheduling state (seL4's ksCurThread, ksSchedulerAction); its
/// bitmap and ready queues follow it in the node (ClusterKernel.nodeStride).
struct SchedulerNode {
    var current: TCBRef? = nil
    var action: SchedulerAction = .resumeCurrent
}

typealias NodeRef = UnsafeMutablePointer<SchedulerNode>

extension ClusterKernel {
    @inline(__always) func nodeBase(_ c: Int) -> UnsafeMutableRawPointer { nodes + c &* ClusterKernel.nodeStride }
    @inline(__always) func node(_ c: Int) -> NodeRef { nodeBase(c).assumingMemoryBound(to: SchedulerNode.self) }
    /// The node of the core executing this entry.
    @inline(__always) var here: NodeRef { node(state.pointee.core) }
    /// Bit p set iff core c's ready queue p is non-empty (4 words).
    @inline(__always) func bitmap(_ c: Int) -> UnsafeMutablePointer<UInt64> {
        (nodeBase(c) + 32).assumingMemoryBound(to: UInt64.self)
    }
    @inline(__always) func queue(_ c: Int, _ p: UInt8) -> UnsafeMutablePointer<ReadyQueue> {
        (nodeBase(c) + 64).assumingMemoryBound(to: ReadyQueue.self) + Int(p)
    }

    @inline(__always) func setBit(_ c: Int, _ p: UInt8) {
        let w = Int(p >> 6)
        bitmap(c)[w] |= 1 << UInt64(p & 63)
    }
    @inline(__always) func clearBit(_ c: Int, _ p: UInt8) {
        let w = Int(p >> 6)
        bitmap(c)[w] &= ~(1 << UInt64(p & 63))
    }

    /// Put a runnable thread at the head of its level on its core (it was
    /// preempted by a higher priority and resumes first).
    func enqueue(_ t: TCBRef) {
        guard !t.pointee.inReadyQueue, t.pointee.state.isRunnable else { return }
        let c = Int(t.pointee.affinity)
        let q = queue(c, t.pointee.priority)
        t.pointee.readyPrev = nil
        t.pointee.readyNext = q.pointee.head
        if let h = q.pointee.head { h.pointee.readyPrev = t } else { q.pointee.tail = t }
        q.pointee.head = t
        t.pointee.inReadyQueue = true
        setBit(c, t.pointee.priority)
        remoteQueueUpdate(t)
    }

    /// Put a runnable thread at the tail of its level on its core (round-robin).
    func append(_ t: TCBRef) {
        guard !t.pointee.inReadyQueue, t.pointee.state.isRunnable else { return }
        let c = Int(t.pointee.affinity)
        let q = queue(c, t.pointee.priority)
        t.pointee.readyNext = nil
        t.pointee.readyPrev = q.pointee.tail
        if let tl = q.pointee.tail { tl.pointee.readyNext = t } else { q.pointee.head = t }
        q.pointee.tail = t
        t.pointee.inReadyQueue = true
        setBit(c, t.pointee.priority)
        remoteQueueUpdate(t)
    }

    /// A thread queued on another core that should preempt that core's
    /// current thread (or wake it from idle) makes it choose again, by IPI
    /// (seL4's remoteQueueUpdate).
    @inline(__always)
    func remoteQueueUpdate(_ t: TCBRef) {
        let c = Int(t.pointee.affinity)
        guard c != state.pointee.core else { return }
        let n = node(c)
        if n.pointee.current.map({ t.pointee.priority > $0.pointee.priority }) ?? true { rescheduleRequired(c) }
    }

    func dequeue(_ t: TCBRef) {
        guard t.pointee.inReadyQueue else { return }
        let c = Int(t.pointee.affinity)
        let q = queue(c, t.pointee.priority)
        let p = t.pointee.readyPrev, n = t.pointee.readyNext
        if let p { p.pointee.readyNext = n } else { q.pointee.head = n }
        if let n { n.pointee.readyPrev = p } else { q.pointee.tail = p }
        t.pointee.readyNext = nil
        t.pointee.readyPrev = nil
        t.pointee.inReadyQueue = false
        if q.pointee.head == nil { clearBit(c, t.pointee.priority) }
    }

    /// Highest priority with a thread queued on core `c`, or -1.
    func highestQueuedPriority(_ c: Int) -> Int {
        let bitmap = bitmap(c)
        var w = 3
        while w >= 0 {
            let bits = bitmap[w]
            if bits != 0 { return w * 64 + 63 - bits.leadingZeroBitCount }
            w -= 1
        }
        return -1
    }
    /// Highest priority queued on this core, or -1.
    @inline(__always) func highestQueuedPriority() -> Int { highestQueuedPriority(state.pointee.core) }

    /// Change a thread's state; a current thread that stops running makes its
    /// core choose again (by IPI if it is another core), a stopped thread
    /// leaves every scheduling spot.
    func setThreadState(_ t: TCBRef, _ s: ThreadState) {
        t.pointee.state = s
        if !s.isRunnable {
            if t.pointee.inReadyQueue { dequeue(t) }
            let c = Int(t.pointee.affinity)
            let n = node(c)
            if case .switchTo(let x) = n.pointee.action, x == t { n.pointee.action = .chooseNew }
            if t == n.pointee.current, n.pointee.action == .resumeCurrent { rescheduleRequired(c) }
        }
    }

    /// Ask core `c` for a new choice; a pending candidate goes to its queue.
    /// Another core's request is also noted in the reschedule mask (its IPI).
    func rescheduleRequired(_ c: Int) {
        let n = node(c)
        if case .switchTo(let x) = n.pointee.action { enqueue(x) }
        n.pointee.action = .chooseNew
        if c != state.pointee.core { state.pointee.rescheduleMask |= 1 << UInt64(c) }
    }
    /// Ask this core for a new choice.
    @inline(__always) func rescheduleRequired() { rescheduleRequired(state.pointee.core) }

    /// A thread became runnable (seL4's possibleSwitchTo): on this core it
    /// becomes the switch candidate unless a choice is already pending, in
    /// which case it joins its queue; on another core it joins that core's
    /// queue (which asks that core to reschedule if it should run there).
    /// Whether it really runs is decided by `schedule()`.
    @inline(__always)
    func possibleSwitchTo(_ t: TCBRef) {
        let n = here
        if Int(t.pointee.affinity) != state.pointee.core {
            enqueue(t)
        } else if n.pointee.action == .resumeCurrent {
            n.pointee.action = .switchTo(t)
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
            let c = Int(t.pointee.affinity)
            if t == node(c).pointee.current {
                rescheduleRequired(c)
            } else if queued {
                enqueue(t)
                rescheduleRequired()
            } else if case .switchTo(let x) = node(c).pointee.action, x == t {
                // Still the candidate; schedule() compares with the new priority.
            } else {
                possibleSwitchTo(t)
            }
        }
    }

    /// Move a thread to core `c`'s node (TCB SetAffinity). The caller has
    /// checked that `t` is not current on another core; if it is current
    /// here (the invoker itself), this core chooses again and `t` waits in
    /// core `c`'s queues like any thread woken there.
    func setAffinity(_ t: TCBRef, _ c: Int) {
        let old = Int(t.pointee.affinity)
        if old == c { return }
        let n = node(old)
        dequeue(t)
        if t == n.pointee.current {
            n.pointee.current = nil
            rescheduleRequired(old)
        } else if case .switchTo(let x) = n.pointee.action, x == t {
            n.pointee.action = .chooseNew
        }
        t.pointee.affinity = UInt8(c)
        if t.pointee.state.isRunnable { possibleSwitchTo(t) }
    }

    /// Run the highest-priority thread queued on this core, or idle.
    func chooseThread() {
        let n = here
        let p = highestQueuedPriority()
        if p < 0 {
            n.pointee.current = nil
            return
        }
        let t = queue(state.pointee.core, UInt8(p)).pointee.head!
        dequeue(t)
        n.pointee.current = t
    }

    /// Carry out this core's pending scheduler action (seL4's schedule()).
    @inline(__always)
    func schedule() {
        let action = here.pointee.action
        if action == .resumeCurrent { return }
        scheduleSlow(action)
    }

    func scheduleSlow(_ action: SchedulerAction) {
        let n = here
        let current = n.pointee.current
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
                n.pointee.current = candidate
            }
        } else {
            chooseThread()
        }
        n.pointee.action = .resumeCurrent
    }

    /// Direct switch for the IPC fast path: `from` blocked, `to` is runnable
    /// on this core, not queued, and no other choice is pending. Returns
    /// false if priorities forbid the switch (the caller then takes the
    /// ordinary path).
    @inline(__always)
    func canSwitchDirectly(to t: TCBRef) -> Bool {
        Int(t.pointee.priority) >= highestQueuedPriority()
    }

    /// Timer tick on this core: charge its current thread; at the end of its
    /// slice it goes to the back of its level (round-robin).
    func tick() {
        guard let t = here.pointee.current else {
            if highestQueuedPriority() >= 0 { here.pointee.action = .chooseNew }
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
        guard let t = here.pointee.current else { return }
        t.pointee.timeSlice = defaultTimeSlice
        append(t)
        rescheduleRequired()
    }
}
