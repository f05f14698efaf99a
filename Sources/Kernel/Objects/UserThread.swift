import UserABI

/// User threads: the saved EL0 context, the IPC buffer, system calls decoded
/// from registers, results written back, faults sent as messages, and the
/// TCB invocations that set a thread up (docs/kernel/abi.md).
///
/// The trap path (Boot) saves an EL0 thread's registers into its TCB's user
/// context, takes the big lock, calls one entry (`userSyscall`, `userFault`,
/// `timerTickLocked`, `rescheduleLocked`), then `prepareUserReturn` for the
/// thread to run, restores that thread's context and releases the lock.
///
/// A thread that enters by `svc` is marked (`TCB.userSyscall`); its results
/// stay in its TCB fields (badge, messageInfo, mr, extraCaps, error) until
/// `prepareUserReturn` copies them into its registers and IPC buffer, however
/// much later it runs. Threads that entered by a fault or an interrupt are
/// not marked and resume with their registers untouched.
///
/// Invariants (Invariants.swift, checkThread): the IPC buffer slot holds an
/// unmapped frame capability or nothing; a marked thread blocked in IPC is
/// blocked by a call that can block that way (blockedOnReply: Call;
/// blockedOnSend: Send or Call; blockedOnReceive/Notification: Recv or
/// ReplyRecv); running, restart and inactive threads may carry any mark.

/// Word indices of a saved user context (the trap frame of
/// Sources/ArchAsm/include/ArchConstants.h; a test checks them against it).
public enum UserContext {
    /// x0...x30 are words 0...30.
    public static let sp = 31
    public static let pc = 32
    public static let pstate = 33
    public static let esr = 34
    public static let far = 35
    public static let fp = 36
    public static let fpsr = 100
    public static let fpcr = 101
    public static let words = 102
}

/// Why an EL0 thread stopped, as the trap path decodes it.
public enum UserFault: Equatable, Sendable {
    /// A stage-2 abort: the faulting address (IPA = VA), instruction fetch or
    /// data access, and the ESR.
    case vmFault(address: UInt64, isInstruction: Bool, status: UInt64)
    /// `svc` with a number that is no `Syscall`.
    case unknownSyscall(number: UInt64)
    /// Any other synchronous exception (undefined instruction, alignment...): the ESR.
    case userException(status: UInt64)
}

/// Fault message labels (seL4's seL4_Fault_* numbering on AArch64).
public enum FaultLabel {
    public static let unknownSyscall: Word = 2
    public static let userException: Word = 3
    public static let vmFault: Word = 5
}

extension ClusterKernel {
    /// The saved EL0 registers of `t` (`UserContext.words` words).
    @inline(__always)
    public func userContext(_ t: TCBRef) -> UnsafeMutablePointer<UInt64> {
        UnsafeMutablePointer<UInt64>(bitPattern: tcbObject(t) &+ UInt(tcbContextOffset))!
    }

    /// The words of `t`'s IPC buffer as the kernel reaches them (through the
    /// frame: partition memory is mapped VA = PA at EL2); nil if none.
    @inline(__always)
    func ipcBuffer(_ t: TCBRef) -> UnsafeMutablePointer<Word>? {
        let cap = tcbSlot(t, .ipcBuffer).pointee.cap
        guard cap.type == .frame else { return nil }
        return UnsafeMutablePointer<Word>(bitPattern: cap.object &+ UInt(t.pointee.ipcBufferAddress & 0xFFF))
    }

    // MARK: Entries (the caller holds the big lock)

    /// The current thread of `core` executed `svc`; its registers are in its
    /// user context. Arguments are copied into its TCB fields (x0 CPtr, x1
    /// tag, x2-x5 MR0-3; MR4-7, extra capability addresses and the receive
    /// slot from the IPC buffer), then the call runs as `syscall` would.
    /// The tag's length is clamped to 8 (to 4 without an IPC buffer) as
    /// seL4's messageInfoFromWord; without an IPC buffer no extra
    /// capabilities are sent and none received. An unknown number is an
    /// UnknownSyscall fault.
    public func userSyscall(core: Int) {
        enter(core)
        guard let t = here.pointee.current, t.pointee.state.isRunnable else { schedule(); return }
        let ctx = userContext(t)
        let number = ctx[UserABI.Register.number]
        guard number < 8, let call = Syscall(rawValue: UInt8(number)) else {
            sendFault(t, .unknownSyscall(number: number))
            schedule()
            return
        }
        let tag = MessageTag(word: ctx[UserABI.Register.info])
        let buffer = ipcBuffer(t)
        let length = min(tag.length, buffer == nil ? UserABI.registerMessages : messageRegisterCount)
        t.pointee.messageInfo = MessageInfo(label: tag.label, length: length, extraCaps: buffer == nil ? 0 : tag.extraCaps)
        var i = 0
        while i < UserABI.registerMessages {
            t.pointee.mr[i] = ctx[UserABI.Register.firstMessage &+ i]
            i &+= 1
        }
        if let b = buffer {
            while i < length {
                t.pointee.mr[i] = b[UserABI.IPCBuffer.message &+ i]
                i &+= 1
            }
            t.pointee.extraCaps[0] = b[UserABI.IPCBuffer.caps]
            t.pointee.extraCaps[1] = b[UserABI.IPCBuffer.caps + 1]
            t.pointee.extraCaps[2] = b[UserABI.IPCBuffer.caps + 2]
            t.pointee.receiveRoot = b[UserABI.IPCBuffer.receiveCNode]
            t.pointee.receiveIndex = b[UserABI.IPCBuffer.receiveIndex]
            t.pointee.receiveDepth = b[UserABI.IPCBuffer.receiveDepth]
        } else {
            t.pointee.receiveDepth = 0
        }
        t.pointee.userSyscall = call.rawValue &+ 1
        handleSyscall(call, capAddress: ctx[UserABI.Register.capOrBadge])
    }

    /// The current thread of `core` faulted (it entered from EL0 by an
    /// exception that is no system call). The fault goes as a message to its
    /// fault endpoint, the thread blocked as if it had made a Call; a reply
    /// restarts it with its registers as they are then (the handler may have
    /// written them with WriteRegisters). No usable fault endpoint: the
    /// thread becomes inactive and `takeUnhandledFault` reports it.
    public func userFault(_ f: UserFault, core: Int) {
        enter(core)
        if let t = here.pointee.current, t.pointee.state.isRunnable { sendFault(t, f) }
        schedule()
    }

    /// A timer interrupt on `core` (`timerTick` without the lock).
    public func timerTickLocked(core: Int) {
        enter(core)
        tick()
        schedule()
    }

    /// The reschedule IPI on `core` (`reschedule` without the lock).
    public func rescheduleLocked(core: Int) {
        enter(core)
        schedule()
    }

    /// The thread `core` runs next (nil: idle), its context ready to load.
    /// A thread returning from a completed system call gets its results
    /// (x0 badge, x1 tag, x2-x5 MR0-3, x6 error; MR4-7 and the unwrapped
    /// badges in its IPC buffer). A thread in `.restart` runs again; if it
    /// was in a system call, its PC goes back 4 bytes onto the `svc`, which
    /// it re-issues with its argument registers unchanged.
    public func prepareUserReturn(core: Int) -> TCBRef? {
        guard core >= 0 && core < cores, let t = node(core).pointee.current else { return nil }
        switch t.pointee.state {
        case .running:
            if t.pointee.userSyscall != 0 { completeUserSyscall(t) }
        case .restart:
            if t.pointee.userSyscall != 0 {
                userContext(t)[UserContext.pc] &-= 4
                t.pointee.userSyscall = 0
            }
            t.pointee.state = .running
        default: break
        }
        return t
    }

    /// The last thread that faulted with no fault handler (now inactive) and
    /// its fault, cleared; nil if none since the last call. One is kept (a
    /// newer one replaces it): the trap path asks after each entry. Caller
    /// holds the lock.
    public func takeUnhandledFault() -> (thread: TCBRef, fault: UserFault)? {
        guard let t = state.pointee.unhandledThread else { return nil }
        state.pointee.unhandledThread = nil
        return (t, state.pointee.unhandledFault)
    }

    /// The VSpace in `t`'s vspaceRoot slot: its root table's physical
    /// address and its VMID (for VTTBR_EL2); nil if none.
    public func vspace(of t: TCBRef) -> (root: UInt64, vmid: UInt64)? {
        let cap = tcbSlot(t, .vspaceRoot).pointee.cap
        guard cap.type == .vspace else { return nil }
        return (physicalAddress(cap.object), vmidOfRoot(cap.object))
    }

    // MARK: Results and faults

    /// Write the results of `t`'s completed system call into its context.
    /// Error: x6 = its code, x1 = a tag with label = code and length = the
    /// extra words: `.range` MR0 min, MR1 max; `.failedLookup` MR0 = 1 if
    /// the failed address was a source. Send, NBSend, Reply and Yield return
    /// only x6; Call, Recv, NBRecv and ReplyRecv the message received.
    func completeUserSyscall(_ t: TCBRef) {
        let ctx = userContext(t)
        let call = t.pointee.userSyscall &- 1
        t.pointee.userSyscall = 0
        if let e = t.pointee.error {
            var length = 0
            switch e {
            case .range(let lo, let hi):
                ctx[UserABI.Register.firstMessage] = lo
                ctx[UserABI.Register.firstMessage + 1] = hi
                length = 2
            case .failedLookup(let source, _):
                ctx[UserABI.Register.firstMessage] = source ? 1 : 0
                length = 1
            default: break
            }
            ctx[UserABI.Register.info] = MessageTag(label: e.code, length: length).word
            ctx[UserABI.Register.error] = e.code
            return
        }
        ctx[UserABI.Register.error] = 0
        guard call == Syscall.call.rawValue || call == Syscall.recv.rawValue || call == Syscall.nbRecv.rawValue
            || call == Syscall.replyRecv.rawValue
        else { return }
        let info = t.pointee.messageInfo
        let length = min(max(info.length, 0), messageRegisterCount)
        ctx[UserABI.Register.capOrBadge] = t.pointee.badge
        ctx[UserABI.Register.info] =
            MessageTag(label: info.label, length: length, extraCaps: info.extraCaps, capsUnwrapped: info.capsUnwrapped).word
        var i = 0
        while i < UserABI.registerMessages {
            ctx[UserABI.Register.firstMessage &+ i] = t.pointee.mr[i]
            i &+= 1
        }
        guard let b = ipcBuffer(t) else { return }
        while i < length {
            b[UserABI.IPCBuffer.message &+ i] = t.pointee.mr[i]
            i &+= 1
        }
        i = 0
        while i < extraCapabilityLimit {
            if info.capsUnwrapped & (1 << UInt8(i)) != 0 { b[UserABI.IPCBuffer.caps &+ i] = t.pointee.extraCaps[i] }
            i &+= 1
        }
    }

    /// seL4's handleFault: the fault as a Call on the thread's fault endpoint
    /// (write right and grant or grant-reply, as seL4 requires), else the
    /// thread stops. Messages (label: MRs):
    /// - VMFault 5: IP, address, 1 if instruction fetch, ESR (4 words);
    /// - UnknownSyscall 2: x0...x5, IP (after the svc), the number (8 words;
    ///   seL4 sends 13, cmk has 8 message registers);
    /// - UserException 3: IP, SP, PSTATE, ESR, 0 (5 words, seL4's order).
    func sendFault(_ t: TCBRef, _ f: UserFault) {
        t.pointee.userSyscall = 0
        let ctx = userContext(t)
        var m = MessageRegisters()
        let label: Word
        let length: Int
        switch f {
        case .vmFault(let address, let isInstruction, let status):
            label = FaultLabel.vmFault
            m[0] = ctx[UserContext.pc]; m[1] = address; m[2] = isInstruction ? 1 : 0; m[3] = status
            length = 4
        case .unknownSyscall(let number):
            label = FaultLabel.unknownSyscall
            var i = 0
            while i < 6 {
                m[i] = ctx[i]
                i += 1
            }
            m[6] = ctx[UserContext.pc]; m[7] = number
            length = 8
        case .userException(let status):
            label = FaultLabel.userException
            m[0] = ctx[UserContext.pc]; m[1] = ctx[UserContext.sp]; m[2] = ctx[UserContext.pstate]; m[3] = status
            length = 5
        }
        if t.pointee.faultHandler != 0, let slot = try? lookupSlot(t, t.pointee.faultHandler) {
            let cap = slot.pointee.cap
            if cap.type == .endpoint, cap.rights.contains(.write),
                cap.rights.contains(.grant) || cap.rights.contains(.grantReply)
            {
                t.pointee.messageInfo = MessageInfo(label: label, length: length)
                t.pointee.mr = m
                t.pointee.error = nil
                sendIPC(
                    t, EndpointRef(bitPattern: cap.object)!, badge: cap.badge, canGrant: cap.rights.contains(.grant),
                    canGrantReply: cap.rights.contains(.grantReply), blocking: true, isCall: true)
                return
            }
        }
        setThreadState(t, .inactive)
        state.pointee.unhandledThread = t
        state.pointee.unhandledFault = f
    }

    @inline(__always) func isCurrent(_ t: TCBRef, otherThan core: Int) -> Bool {
        var c = 0
        while c < cores {
            if c != core && node(c).pointee.current == t { return true }
            c += 1
        }
        return false
    }

    // MARK: Invocations

    /// SetIPCBuffer, SetSpace, WriteRegisters, ReadRegisters on `target`.
    func invokeUserThread(_ slot: SlotRef, _ target: TCBRef, _ label: InvocationLabel, caller: TCBRef) throws(KernelError) {
        let info = caller.pointee.messageInfo
        let mr = caller.pointee.mr
        switch label {
        case .tcbSetIPCBuffer:
            // SetIPCBuffer(vaddr: mr0; frame: extra cap 0). vaddr 0 and no
            // capability: no buffer. Else vaddr 512-byte aligned below
            // userTop, the capability a frame (mapped or not); a derived
            // (unmapped) copy goes into the TCB's buffer slot.
            guard info.length >= 1 else { throw .truncatedMessage }
            let vaddr = mr[0]
            let bufferSlot = tcbSlot(target, .ipcBuffer)
            if vaddr == 0 && info.extraCaps == 0 {
                try deleteSlot(bufferSlot)
                target.pointee.ipcBufferAddress = 0
                return
            }
            guard info.extraCaps >= 1 else { throw .truncatedMessage }
            guard vaddr & 511 == 0 else { throw .alignment }
            guard vaddr < userTop else { throw .invalidArgument(index: 0) }
            let src = try lookupExtraCap(caller, 0)
            guard src.pointee.cap.type == .frame else { throw .invalidCapability(index: 1) }
            let cap = try derive(src)
            // The old buffer is an unmapped frame copy: deleting it finalises nothing.
            try deleteSlot(bufferSlot)
            insertCopy(cap, from: src, into: bufferSlot)
            target.pointee.ipcBufferAddress = vaddr
        case .tcbSetSpace:
            // SetSpace(faultEP: mr0, cspaceData: mr1; cspace: extra cap 0
            // (a CNode), vspace: extra cap 1 (a VSpace)), seL4's TCB_SetSpace.
            guard info.length >= 2, info.extraCaps >= 2 else { throw .truncatedMessage }
            let cs = try lookupExtraCap(caller, 0)
            guard cs.pointee.cap.type == .cnode else { throw .illegalOperation }
            let vs = try lookupExtraCap(caller, 1)
            guard vs.pointee.cap.type == .vspace else { throw .illegalOperation }
            var csCap = try derive(cs)
            if mr[1] != 0 {
                guard let c = updateData(csCap, mr[1], preserve: false) else { throw .illegalOperation }
                csCap = c
            }
            let vsCap = try derive(vs)
            target.pointee.faultHandler = mr[0]
            let tcbCap = slot.pointee.cap
            guard try replaceRoot(tcbSlot(target, .cspaceRoot), with: csCap, from: cs, invoked: slot, tcbCap) else { return }
            _ = try replaceRoot(tcbSlot(target, .vspaceRoot), with: vsCap, from: vs, invoked: slot, tcbCap)
        case .tcbWriteRegisters:
            // WriteRegisters(resume: mr0, count: mr1, then count words of
            // PC, SP, x0, x1, x2, x3). PSTATE becomes EL0t. A thread current
            // on any core (the caller itself included) is refused.
            guard info.length >= 2 else { throw .truncatedMessage }
            let count = Int(min(mr[1], 6))
            guard info.length >= 2 + count else { throw .truncatedMessage }
            guard !isCurrent(target, otherThan: -1) else { throw .illegalOperation }
            let ctx = userContext(target)
            var i = 0
            while i < count {
                ctx[i == 0 ? UserContext.pc : i == 1 ? UserContext.sp : i - 2] = mr[2 + i]
                i += 1
            }
            ctx[UserContext.pstate] = 0
            // Its registers are new: no system call returns into them.
            target.pointee.userSyscall = 0
            if mr[0] != 0 { restart(target) }
        case .tcbReadRegisters:
            // ReadRegisters: PC, SP, x0...x5 in mr0...mr7. A thread current
            // on another core is refused.
            guard !isCurrent(target, otherThan: state.pointee.core) else { throw .illegalOperation }
            let ctx = userContext(target)
            caller.pointee.mr[0] = ctx[UserContext.pc]
            caller.pointee.mr[1] = ctx[UserContext.sp]
            var i = 0
            while i < 6 {
                caller.pointee.mr[2 + i] = ctx[i]
                i += 1
            }
            caller.pointee.messageInfo = MessageInfo(label: 0, length: 8)
            caller.pointee.state = .running
        default:
            throw .illegalOperation
        }
    }

    /// Replace a TCB root slot with `cap` (derived from `src`). Deleting the
    /// old root runs arbitrary finalisation (issue 11): insert only if the
    /// invoked slot still names the TCB and `src` still holds the object;
    /// false (and nothing inserted) otherwise, as seL4's sameObjectAs checks.
    func replaceRoot(_ root: SlotRef, with cap: Capability, from src: SlotRef, invoked: SlotRef, _ tcbCap: Capability)
        throws(KernelError) -> Bool
    {
        try deleteSlot(root)
        guard sameObject(invoked.pointee.cap, tcbCap), sameObject(src.pointee.cap, cap) else { return false }
        insertCopy(cap, from: src, into: root)
        return true
    }
}
