import UserABI

/// System call entry: decode, look up, dispatch, then schedule.
///
/// seL4's eight calls. `Send`/`NBSend`/`Call` on an endpoint or notification
/// send or signal; on any other capability they invoke one of its methods
/// (the label names it, the message registers and extra capabilities carry
/// the arguments). `Recv`/`NBRecv` on an endpoint receive, on a notification
/// wait or poll. Arguments are the caller's registers: the capability
/// address, `messageInfo`, `mr`, `extraCaps`, `receive*`.
///
/// Every call ends with the caller's `error` register set (nil: success) or
/// with the caller in `.restart` (preempted: it re-issues the same call).

extension ClusterKernel {
    /// Dispatch one system call of this core's current thread. Caller holds
    /// the lock and has recorded the core.
    func handleSyscall(_ syscall: Syscall, capAddress: Word) {
        let node = here
        guard let thread = node.pointee.current else { schedule(); return }
        if node.pointee.action != .resumeCurrent {
            // Another core made this one choose again and the call came
            // before its IPI: choose first. A thread that no longer runs
            // issues its call again when it next runs (a stopped one never).
            scheduleSlow(node.pointee.action)
            guard node.pointee.current == thread else {
                if thread.pointee.state == .running { thread.pointee.state = .restart }
                return
            }
        }
        thread.pointee.error = nil
        // Activation (seL4's activateThread): a restarted thread runs again.
        if thread.pointee.state == .restart { thread.pointee.state = .running }
        switch syscall {
        case .call:
            if fastpathCall(thread, capAddress) { return }
            handleInvocation(thread, capAddress, isCall: true, blocking: true)
        case .send:
            handleInvocation(thread, capAddress, isCall: false, blocking: true)
        case .nbSend:
            handleInvocation(thread, capAddress, isCall: false, blocking: false)
        case .recv:
            handleReceive(thread, capAddress, blocking: true)
        case .nbRecv:
            handleReceive(thread, capAddress, blocking: false)
        case .reply:
            doReply(thread)
        case .replyRecv:
            if fastpathReplyRecv(thread, capAddress) { return }
            doReply(thread)
            handleReceive(thread, capAddress, blocking: true)
        case .yield:
            yield()
        }
        schedule()
    }

    func handleInvocation(_ thread: TCBRef, _ capAddress: Word, isCall: Bool, blocking: Bool) {
        let slot: SlotRef
        do {
            slot = try lookupSlot(thread, capAddress)
        } catch {
            thread.pointee.error = error
            return
        }
        let cap = slot.pointee.cap
        switch cap.type {
        case .endpoint:
            guard cap.rights.contains(.write) else { thread.pointee.error = .invalidCapability(index: 0); return }
            sendIPC(
                thread, EndpointRef(bitPattern: cap.object)!, badge: cap.badge, canGrant: cap.rights.contains(.grant),
                canGrantReply: cap.rights.contains(.grantReply), blocking: blocking, isCall: isCall)
        case .notification where isNotificationMethod(thread.pointee.messageInfo.label):
            fallthrough
        case .untyped, .cnode, .tcb, .vcpu, .frame, .pageTable, .vspace, .interKernel, .irqControl, .irqHandler:
            guard let label = InvocationLabel(rawValue: thread.pointee.messageInfo.label) else {
                thread.pointee.error = .illegalOperation
                return
            }
            // As in seL4: the thread restarts the call unless it completes.
            setThreadState(thread, .restart)
            do {
                switch cap.type {
                case .untyped: try invokeUntyped(slot, label, caller: thread)
                case .cnode: try invokeCNode(cap, label, caller: thread)
                case .vcpu: try invokeVCPU(VCPURef(bitPattern: cap.object)!, label, caller: thread)
                case .frame, .pageTable, .vspace: try invokeVSpaceObject(slot, label, caller: thread)
                case .notification: try invokeNotification(slot, label, caller: thread)
                case .interKernel: try invokeInterKernel(slot, label, caller: thread)
                case .irqControl: try invokeIRQControl(slot, label, caller: thread)
                case .irqHandler: try invokeIRQHandler(slot, label, caller: thread)
                default: try invokeTCB(slot, label, caller: thread)
                }
            } catch {
                if error == .preempted { return }
                thread.pointee.error = error
            }
            if thread.pointee.state == .restart {
                thread.pointee.state = .running
                thread.pointee.messageInfo = MessageInfo(label: thread.pointee.error?.code ?? 0)
            }
        case .notification:
            guard cap.rights.contains(.write) else { thread.pointee.error = .invalidCapability(index: 0); return }
            signal(NotificationRef(bitPattern: cap.object)!, badge: cap.badge)
        case .remoteNotification:
            // Send, NBSend and Call alike: queue the signal for the Boot layer.
            guard cap.rights.contains(.write) else { thread.pointee.error = .invalidCapability(index: 0); return }
            do {
                try queueRemoteSignal(cluster: Int(cap.bits), index: Int(cap.word))
            } catch {
                thread.pointee.error = error
            }
        case .null, .reply, .zombie:
            thread.pointee.error = .failedLookup(source: false, .missingCapability(bitsLeft: 0))
        }
    }

    /// Labels that invoke a notification capability's methods; with any
    /// other label, Send on a notification signals it.
    @inline(__always) func isNotificationMethod(_ label: Word) -> Bool {
        label == InvocationLabel.notificationExport.rawValue || label == InvocationLabel.notificationUnexport.rawValue
    }

    func handleReceive(_ thread: TCBRef, _ capAddress: Word, blocking: Bool) {
        let slot: SlotRef
        do {
            slot = try lookupSlot(thread, capAddress)
        } catch {
            thread.pointee.error = error
            return
        }
        let cap = slot.pointee.cap
        switch cap.type {
        case .endpoint:
            guard cap.rights.contains(.read) else { thread.pointee.error = .invalidCapability(index: 0); return }
            deleteCallerCap(thread)
            receiveIPC(thread, EndpointRef(bitPattern: cap.object)!, canGrant: cap.rights.contains(.grant), blocking: blocking)
        case .notification:
            guard cap.rights.contains(.read) else { thread.pointee.error = .invalidCapability(index: 0); return }
            let n = NotificationRef(bitPattern: cap.object)!
            if let bound = n.pointee.boundTCB, bound != thread { thread.pointee.error = .illegalOperation; return }
            wait(thread, n, blocking: blocking)
        case .null:
            thread.pointee.error = .failedLookup(source: false, .missingCapability(bitsLeft: 0))
        default:
            thread.pointee.error = .invalidCapability(index: 0)
        }
    }

    // MARK: - Fast paths (seL4's fastpath_call / fastpath_reply_recv)

    /// Call on an endpoint with a receiver waiting, of this core, no
    /// capabilities to move, and a receiver we may switch to directly.
    /// Otherwise false: the slow path handles it with the same outcome.
    @inline(__always)
    func fastpathCall(_ thread: TCBRef, _ capAddress: Word) -> Bool {
        let info = thread.pointee.messageInfo
        // No choice is pending here (handleSyscall made it before).
        guard info.extraCaps == 0, info.length <= messageRegisterCount, info.length >= 0 else { return false }
        guard let slot = lookupSlotFast(thread, capAddress) else { return false }
        let cap = slot.pointee.cap
        guard cap.type == .endpoint, cap.rights.contains(.write),
            cap.rights.contains(.grant) || cap.rights.contains(.grantReply)
        else { return false }
        let ep = EndpointRef(bitPattern: cap.object)!
        guard ep.pointee.state == .receive, let receiver = ep.pointee.head,
            Int(receiver.pointee.affinity) == state.pointee.core,
            receiver.pointee.priority >= thread.pointee.priority, canSwitchDirectly(to: receiver)
        else { return false }
        // Dequeue the receiver.
        let next = receiver.pointee.queueNext
        ep.pointee.head = next
        if let next { next.pointee.queuePrev = nil } else { ep.pointee.tail = nil; ep.pointee.state = .idle }
        receiver.pointee.queueNext = nil
        receiver.pointee.blockedOn = 0
        copyMessage(from: thread, to: receiver, info: info, badge: cap.badge)
        // Block the caller on the reply and hand the receiver the reply cap.
        thread.pointee.state = .blockedOnReply
        let callerSlot = tcbSlot(receiver, .caller)
        emptySlot(callerSlot)
        insertCopy(.reply(to: tcbObject(thread), master: false, canGrant: receiver.pointee.ipcCanGrant),
            from: tcbSlot(thread, .reply), into: callerSlot)
        receiver.pointee.state = .running
        here.pointee.current = receiver
        return true
    }

    /// ReplyRecv with a caller of this core to answer, of at least our
    /// priority, nothing pending on the endpoint, no capabilities to move.
    @inline(__always)
    func fastpathReplyRecv(_ thread: TCBRef, _ capAddress: Word) -> Bool {
        let info = thread.pointee.messageInfo
        guard info.extraCaps == 0, info.length <= messageRegisterCount, info.length >= 0,
            thread.pointee.boundNotification == nil
        else { return false }
        let callerSlot = tcbSlot(thread, .caller)
        let reply = callerSlot.pointee.cap
        guard reply.type == .reply else { return false }
        guard let slot = lookupSlotFast(thread, capAddress) else { return false }
        let cap = slot.pointee.cap
        guard cap.type == .endpoint, cap.rights.contains(.read) else { return false }
        let ep = EndpointRef(bitPattern: cap.object)!
        guard ep.pointee.state != .send else { return false }
        let caller = tcbRef(object: reply.object)
        guard Int(caller.pointee.affinity) == state.pointee.core,
            caller.pointee.priority >= thread.pointee.priority, canSwitchDirectly(to: caller)
        else { return false }
        // Consume the reply capability.
        emptySlot(callerSlot)
        // Block the server on the endpoint.
        thread.pointee.ipcCanGrant = cap.rights.contains(.grant)
        thread.pointee.blockedOn = UInt(bitPattern: ep)
        thread.pointee.state = .blockedOnReceive
        endpointEnqueue(ep, thread)
        ep.pointee.state = .receive
        copyMessage(from: thread, to: caller, info: info, badge: 0)
        caller.pointee.state = .running
        here.pointee.current = caller
        return true
    }

    @inline(__always)
    func copyMessage(from sender: TCBRef, to receiver: TCBRef, info: MessageInfo, badge: Word) {
        var i = 0
        while i < info.length {
            receiver.pointee.mr[i] = sender.pointee.mr[i]
            i &+= 1
        }
        receiver.pointee.messageInfo = MessageInfo(label: info.label, length: info.length)
        receiver.pointee.badge = badge
        receiver.pointee.receivedNotification = false
    }

    /// Single-level lookup (root CNode whose guard and radix take all 64 bits),
    /// else the general resolver; nil on any failure (slow path reports it).
    @inline(__always)
    func lookupSlotFast(_ thread: TCBRef, _ address: Word) -> SlotRef? {
        let root = tcbSlot(thread, .cspaceRoot).pointee.cap
        guard root.type == .cnode else { return nil }
        let radix = Word(root.bits), guardSize = Word(root.small)
        if radix + guardSize == 64 {
            guard (address >> radix) == root.word || guardSize == 0 else { return nil }
            return cnodeSlot(root, address & mask(Int(radix)))
        }
        return try? resolveAddressBits(root, address, depth: wordBits).0
    }
}

// MARK: - The EL0 trap fastpath (seL4's fastpath_call / fastpath_reply_recv on registers)

/// What `userFastpath` did: `from` (this core's thread that trapped) is
/// blocked, `to` runs next on this core and receives `length` message
/// registers from `from`'s x2...x5 with `badge` and `tag` in x0 and x1 and
/// error 0 in x6. The caller (the trap path) moves the registers: `from`'s
/// into its user context, `to`'s out of it, then the message.
public struct FastpathSwitch {
    public let from: TCBRef
    public let to: TCBRef
    public let badge: Word
    public let tag: Word
    public let length: Int
}

extension ClusterKernel {
    /// `Call` or `ReplyRecv` of this core's current thread straight from its
    /// trap registers `r` (the `UserContext` layout; the thread's user
    /// context in its TCB is stale until the caller saves `r` there), when
    /// the IPC needs none of the general path: no capabilities to move, the
    /// message in registers (at most 4 words), a partner of this core that
    /// may run at once, nothing pending on this core (a choice, TLB
    /// maintenance, IPIs, an unhandled fault). Caller holds the lock. nil:
    /// nothing was changed, the general path handles the call with the same
    /// outcome. The results are those of `userSyscall` followed by
    /// `prepareUserReturn` for the partner.
    ///
    /// The trap path runs this before it saves the thread's FP/SIMD
    /// registers: everything this calls must compile without FP/SIMD
    /// instructions (scripts/kernel-size.sh checks the image).
    @inline(__always)
    public func userFastpath(core: Int, registers r: UnsafeMutablePointer<UInt64>) -> FastpathSwitch? {
        guard UInt(bitPattern: core) < UInt(bitPattern: cores) else { return nil }
        state.pointee.core = core
        let node = here
        guard node.pointee.action == .resumeCurrent, let t = node.pointee.current, t.pointee.state == .running,
            t.pointee.boundVCPU == nil, state.pointee.rescheduleMask == 0, state.pointee.unhandledThread == nil,
            state.pointee.vspace.flush == .none
        else { return nil }
        let number = r[UserABI.Register.number]
        let tag = MessageTag(word: r[UserABI.Register.info])
        guard tag.extraCaps == 0, tag.length >= 0, tag.length <= UserABI.registerMessages else { return nil }
        if number == Word(Syscall.call.rawValue) {
            guard let slot = lookupSlotFast(t, r[UserABI.Register.capOrBadge]) else { return nil }
            let cap = slot.pointee.cap
            guard cap.type == .endpoint, cap.rights.contains(.write),
                cap.rights.contains(.grant) || cap.rights.contains(.grantReply)
            else { return nil }
            let ep = EndpointRef(bitPattern: cap.object)!
            guard ep.pointee.state == .receive, let receiver = ep.pointee.head,
                receiver.pointee.state == .blockedOnReceive, receiver.pointee.userSyscall != 0,
                receiver.pointee.boundVCPU == nil, tcbSlot(receiver, .vspaceRoot).pointee.cap.type == .vspace,
                Int(receiver.pointee.affinity) == core,
                receiver.pointee.priority >= t.pointee.priority, canSwitchDirectly(to: receiver)
            else { return nil }
            // Dequeue the receiver.
            let next = receiver.pointee.queueNext
            ep.pointee.head = next
            if let next { next.pointee.queuePrev = nil } else { ep.pointee.tail = nil; ep.pointee.state = .idle }
            receiver.pointee.queueNext = nil
            receiver.pointee.blockedOn = 0
            // Block the caller on the reply and hand the receiver the reply cap.
            enterUserCall(t, .call)
            t.pointee.state = .blockedOnReply
            let callerSlot = tcbSlot(receiver, .caller)
            emptySlot(callerSlot)
            insertCopy(.reply(to: tcbObject(t), master: false, canGrant: receiver.pointee.ipcCanGrant),
                from: tcbSlot(t, .reply), into: callerSlot)
            leaveUserCall(receiver)
            node.pointee.current = receiver
            return FastpathSwitch(
                from: t, to: receiver, badge: cap.badge, tag: MessageTag(label: tag.label, length: tag.length).word,
                length: tag.length)
        }
        guard number == Word(Syscall.replyRecv.rawValue), t.pointee.boundNotification == nil else { return nil }
        let callerSlot = tcbSlot(t, .caller)
        let reply = callerSlot.pointee.cap
        guard reply.type == .reply else { return nil }
        guard let slot = lookupSlotFast(t, r[UserABI.Register.capOrBadge]) else { return nil }
        let cap = slot.pointee.cap
        guard cap.type == .endpoint, cap.rights.contains(.read) else { return nil }
        let ep = EndpointRef(bitPattern: cap.object)!
        guard ep.pointee.state != .send else { return nil }
        let caller = tcbRef(object: reply.object)
        guard caller.pointee.state == .blockedOnReply, caller.pointee.userSyscall == Syscall.call.rawValue &+ 1,
            caller.pointee.boundVCPU == nil, tcbSlot(caller, .vspaceRoot).pointee.cap.type == .vspace,
            Int(caller.pointee.affinity) == core,
            caller.pointee.priority >= t.pointee.priority, canSwitchDirectly(to: caller)
        else { return nil }
        // Consume the reply capability, block the server on the endpoint.
        emptySlot(callerSlot)
        enterUserCall(t, .replyRecv)
        t.pointee.ipcCanGrant = cap.rights.contains(.grant)
        t.pointee.blockedOn = UInt(bitPattern: ep)
        t.pointee.state = .blockedOnReceive
        endpointEnqueue(ep, t)
        ep.pointee.state = .receive
        leaveUserCall(caller)
        node.pointee.current = caller
        return FastpathSwitch(
            from: t, to: caller, badge: 0, tag: MessageTag(label: tag.label, length: tag.length).word, length: tag.length)
    }

    /// `userFastpath` of the kernel at `kernel`, for the trap path: a
    /// method call on a struct read through a pointer copies the whole
    /// struct to the stack first (a `memcpy`); this loads its fields instead.
    public static func userFastpath(
        _ kernel: UnsafePointer<ClusterKernel>, core: Int, registers r: UnsafeMutablePointer<UInt64>
    ) -> FastpathSwitch? {
        let k = kernel.pointee
        return k.userFastpath(core: core, registers: r)
    }

    /// What `userSyscall` records of a call that blocks `t`: the mark, no
    /// error, and where a capability it receives goes (its IPC buffer's
    /// receive slot, as the general path reads it at entry).
    @inline(__always)
    func enterUserCall(_ t: TCBRef, _ call: Syscall) {
        t.pointee.error = nil
        t.pointee.userSyscall = call.rawValue &+ 1
        if let b = ipcBuffer(t) {
            t.pointee.receiveRoot = b[UserABI.IPCBuffer.receiveCNode]
            t.pointee.receiveIndex = b[UserABI.IPCBuffer.receiveIndex]
            t.pointee.receiveDepth = b[UserABI.IPCBuffer.receiveDepth]
        } else {
            t.pointee.receiveDepth = 0
        }
    }

    /// `t` returns from its blocking call with a message (the trap path
    /// writes its registers): what `prepareUserReturn` leaves.
    @inline(__always)
    func leaveUserCall(_ t: TCBRef) {
        t.pointee.state = .running
        t.pointee.userSyscall = 0
        t.pointee.error = nil
        t.pointee.receivedNotification = false
    }
}
