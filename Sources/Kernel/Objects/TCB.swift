/// Thread control blocks: thread state, scheduling links, the user-visible
/// registers the kernel reads and writes, and the TCB invocations.
///
/// Layout of a TCB object (2^tcbSizeBits = 2 KiB, retyped from Untyped):
///   [slot 0: CSpace root][slot 1: VSpace root][slot 2: reply master]
///   [slot 3: caller][slot 4: IPC buffer frame][TCB struct at tcbStructOffset (320)]
///   [saved user context at tcbContextOffset (1024): `UserContext.words`
///    (102) words in the trap-frame layout of ArchConstants.h][free to 2048]
/// A `TCBRef` points at the struct; the slots sit below it, as in seL4.

public typealias TCBRef = UnsafeMutablePointer<TCB>

/// Slots inside a TCB object. `ipcBuffer`: a frame capability (a derived
/// copy, unmapped) or empty (seL4's tcbBuffer).
enum TCBSlot: Int { case cspaceRoot = 0, vspaceRoot, reply, caller, ipcBuffer }
let tcbSlotCount = 5
/// Offset of the TCB struct inside its object: the slots come first.
let tcbStructOffset = tcbSlotCount << slotSizeBits
/// Offset of the saved user context inside a TCB object (the struct must
/// end below it: checked at boot and by a test).
let tcbContextOffset = 1024

public enum ThreadState: UInt8, Sendable {
    /// Not runnable: never started, suspended, or dead.
    case inactive = 0
    case running
    /// Runnable; re-executes its interrupted system call when it next runs.
    case restart
    case blockedOnReceive, blockedOnSend, blockedOnReply, blockedOnNotification

    /// Runnable threads are the current thread, the ready queue, or the
    /// scheduler's switch candidate (Benno scheduling).
    @inline(__always) public var isRunnable: Bool { self == .running || self == .restart }
}

/// The fixed message registers (docs/kernel/ipc.md).
public struct MessageRegisters: Sendable {
    var storage: (Word, Word, Word, Word, Word, Word, Word, Word) = (0, 0, 0, 0, 0, 0, 0, 0)
    public init() {}
    public subscript(_ i: Int) -> Word {
        // A switch, not `withUnsafeBytes(of: storage)`: that copies all
        // eight words (a 64-byte memcpy in the kernel image) for each read.
        @inline(__always) get {
            switch i {
            case 0: return storage.0
            case 1: return storage.1
            case 2: return storage.2
            case 3: return storage.3
            case 4: return storage.4
            case 5: return storage.5
            case 6: return storage.6
            case 7: return storage.7
            default: preconditionFailure("message register index")
            }
        }
        @inline(__always) set {
            precondition(i >= 0 && i < messageRegisterCount)
            withUnsafeMutableBytes(of: &storage) { $0.storeBytes(of: newValue, toByteOffset: i &* 8, as: Word.self) }
        }
    }
}

/// Three words naming extra capabilities (sender) or, after a receive,
/// holding the badges of unwrapped capabilities (seL4's caps_or_badges).
public struct CapAddresses: Sendable {
    var storage: (Word, Word, Word) = (0, 0, 0)
    public init() {}
    public subscript(_ i: Int) -> Word {
        get { precondition(i >= 0 && i < 3); return i == 0 ? storage.0 : i == 1 ? storage.1 : storage.2 }
        set {
            precondition(i >= 0 && i < 3)
            if i == 0 { storage.0 = newValue } else if i == 1 { storage.1 = newValue } else { storage.2 = newValue }
        }
    }
}

public struct TCB {
    public internal(set) var state: ThreadState = .inactive
    public internal(set) var priority: UInt8 = 0
    /// Highest priority this thread may give itself or others (seL4's MCP).
    public internal(set) var maxPriority: UInt8 = 0
    /// The core (index in the cluster) whose node schedules this thread: it
    /// runs and is queued only there. Retype gives a new thread the core that
    /// made it (as seL4); TCB SetAffinity moves it.
    public internal(set) var affinity: UInt8 = 0
    var inReadyQueue = false
    /// IPC flags while blocked on send (or receive: canGrant only).
    var ipcCanGrant = false
    var ipcCanGrantReply = false
    var ipcIsCall = false
    var timeSlice: UInt32 = defaultTimeSlice
    /// Links in the ready queue of `priority` (valid while `inReadyQueue`).
    var readyNext: TCBRef? = nil
    var readyPrev: TCBRef? = nil
    /// Links in the endpoint or notification queue this thread blocks on.
    var queueNext: TCBRef? = nil
    var queuePrev: TCBRef? = nil
    /// The endpoint or notification this thread blocks on (its address).
    var blockedOn: UInt = 0
    /// Badge of the capability a blocked sender sent through.
    var ipcBadge: Word = 0
    public internal(set) var boundNotification: NotificationRef? = nil
    /// The vCPU this thread runs as (Objects/VCPU.swift); nil for a plain
    /// thread. Kept mutual with `VCPU.tcb`.
    public internal(set) var boundVCPU: VCPURef? = nil
    /// A user thread's TPIDR_EL0 (its thread pointer, for thread-local
    /// storage): not in the trap frame; the Boot layer saves it on every
    /// entry from the thread and loads it when the core switches to the
    /// thread (`UserRun.exit`, `UserRun.next`, `UserRun.fastpath`). The
    /// kernel never reads it. 0 for a new thread.
    public var threadPointer: UInt64 = 0

    // The system call's arguments and results: the harness writes the
    // arguments of a played call; for an EL0 thread `userSyscall` copies them
    // from its saved context and `prepareUserReturn` copies results back.
    public var messageInfo = MessageInfo()
    /// Badge of the received message or notification word.
    public var badge: Word = 0
    /// The last receive delivered a notification, not a message.
    public var receivedNotification = false
    public var mr = MessageRegisters()
    public var extraCaps = CapAddresses()
    /// Where a received capability goes: CNode address, index, depth in the
    /// receiver's CSpace. Depth 0: accept no capabilities.
    public var receiveRoot: Word = 0
    public var receiveIndex: Word = 0
    public var receiveDepth: Word = 0
    /// Error of the last system call (nil: success). seL4 returns the same
    /// information as an error message; this is its decoded form.
    public var error: KernelError? = nil

    /// The IPC buffer's address in the thread's VSpace (512-byte aligned;
    /// meaningful while the ipcBuffer slot holds a frame).
    public internal(set) var ipcBufferAddress: Word = 0
    /// The fault endpoint's address in the thread's CSpace (seL4's
    /// tcbFaultHandler), looked up when the thread faults; 0: none.
    public internal(set) var faultHandler: Word = 0
    /// The thread entered the kernel from EL0 with this system call
    /// (`Syscall` raw value + 1; 0: it returns from no system call). Its
    /// results go into its user context when it next leaves the kernel
    /// (`prepareUserReturn`).
    var userSyscall: UInt8 = 0

    public init() {}
}

@inline(__always) func tcbObject(_ t: TCBRef) -> UInt { UInt(bitPattern: t) &- UInt(tcbStructOffset) }
@inline(__always) func tcbRef(object: UInt) -> TCBRef { TCBRef(bitPattern: object &+ UInt(tcbStructOffset))! }
@inline(__always) func tcbSlot(_ t: TCBRef, _ s: TCBSlot) -> SlotRef {
    SlotRef(bitPattern: tcbObject(t) &+ UInt(s.rawValue << slotSizeBits))!
}

extension ClusterKernel {
    /// Make a fresh TCB in zeroed memory at `object`.
    func createTCB(at object: UInt) {
        for i in 0..<tcbSlotCount {
            SlotRef(bitPattern: object + UInt(i << slotSizeBits))!.initialize(to: CTE())
        }
        tcbRef(object: object).initialize(to: TCB())
        // PSTATE 0: EL0t, DAIF clear; every register 0.
        userContext(tcbRef(object: object)).initialize(repeating: 0, count: UserContext.words)
        tcbRef(object: object).pointee.affinity = UInt8(state.pointee.core)
        // The master reply capability: the root of the derivation tree of the
        // reply capabilities `Call` makes for this thread.
        let reply = SlotRef(bitPattern: object + UInt(TCBSlot.reply.rawValue << slotSizeBits))!
        reply.pointee = CTE(cap: .reply(to: object, master: true, canGrant: true), revocable: true, firstBadged: true)
    }

    /// Stop a thread: cancel its IPC, take it off every queue (seL4's suspend).
    func suspend(_ t: TCBRef) {
        // A completed system call keeps its results (seL4's updateRestartPC).
        if t.pointee.state == .running && t.pointee.userSyscall != 0 { completeUserSyscall(t) }
        cancelIPC(t)
        setThreadState(t, .inactive)
    }

    /// Start a stopped (inactive or waiting-for-reply) thread (seL4's restart).
    func restart(_ t: TCBRef) {
        let s = t.pointee.state
        if s == .inactive || s == .blockedOnReply {
            cancelIPC(t)
            setThreadState(t, .restart)
            possibleSwitchTo(t)
        }
    }

    /// Undo whatever `t` waits for (seL4's cancelIPC).
    func cancelIPC(_ t: TCBRef) {
        switch t.pointee.state {
        case .blockedOnSend, .blockedOnReceive:
            let ep = EndpointRef(bitPattern: t.pointee.blockedOn)!
            endpointDequeue(ep, t)
        case .blockedOnNotification:
            let n = NotificationRef(bitPattern: t.pointee.blockedOn)!
            notificationDequeue(n, t)
        case .blockedOnReply:
            // The server holds our reply capability in its caller slot: it
            // follows our reply master in the derivation tree.
            let master = tcbSlot(t, .reply)
            if let callerCap = master.pointee.next, callerCap.pointee.cap.type == .reply,
                callerCap.pointee.cap.object == tcbObject(t)
            {
                emptySlot(callerCap)
            }
        default: break
        }
        t.pointee.blockedOn = 0
        if t.pointee.state != .inactive && !t.pointee.state.isRunnable { t.pointee.state = .inactive }
    }

    /// Everything the kernel must undo before a TCB's memory is reclaimed.
    /// A thread current on another core leaves it at once: that core's
    /// current becomes nil (idle) and it is asked by IPI to choose again
    /// (suspend did that); the registers the thread had there are discarded.
    /// (seL4 stalls the other core first, `remoteTCBStall`.)
    func finaliseTCB(_ t: TCBRef) {
        suspend(t)
        if let n = t.pointee.boundNotification { unbind(n) }
        if let v = t.pointee.boundVCPU { dissociate(v) }
        if state.pointee.unhandledThread == t { state.pointee.unhandledThread = nil }
        let n = node(Int(t.pointee.affinity))
        if n.pointee.current == t { n.pointee.current = nil }
        if case .switchTo(let c) = n.pointee.action, c == t { n.pointee.action = .chooseNew }
    }

    // MARK: Invocations

    /// TCB methods on the capability in `slot`.
    func invokeTCB(_ slot: SlotRef, _ label: InvocationLabel, caller: TCBRef) throws(KernelError) {
        let target = tcbRef(object: slot.pointee.cap.object)
        let info = caller.pointee.messageInfo
        switch label {
        case .tcbConfigure:
            // Configure(cspaceRoot: extra cap 0, cspaceData: mr0).
            guard info.length >= 1, info.extraCaps >= 1 else { throw .truncatedMessage }
            let src = try lookupExtraCap(caller, 0)
            guard src.pointee.cap.type == .cnode else { throw .illegalOperation }
            var cap = try derive(src)
            let data = caller.pointee.mr[0]
            if data != 0 { guard let c = updateData(cap, data, preserve: false) else { throw .illegalOperation }; cap = c }
            /// Deleting the old root runs arbitrary finalisation: it may have
            /// destroyed the source's CNode, or the target itself (its root
            /// the last capability to a CNode holding its last capability;
            /// issue 11). `replaceRoot` inserts only if the invoked slot
            /// still names the target and the source still holds the new
            /// root's object, so that no derivation-tree node is ever linked
            /// in freed memory. Otherwise it inserts nothing and Configure
            /// succeeds, as seL4's invokeTCB_ThreadControl.
            _ = try replaceRoot(tcbSlot(target, .cspaceRoot), with: cap, from: src, invoked: slot, slot.pointee.cap)
        case .tcbSetPriority:
            // SetPriority(priority: mr0, maxPriority: mr1 if given).
            guard info.length >= 1 else { throw .truncatedMessage }
            let mcp = Word(caller.pointee.maxPriority)
            let prio = caller.pointee.mr[0]
            guard prio <= mcp else { throw .range(min: 0, max: mcp) }
            if info.length >= 2 {
                let newMax = caller.pointee.mr[1]
                guard newMax <= mcp else { throw .range(min: 0, max: mcp) }
                target.pointee.maxPriority = UInt8(newMax)
            }
            setPriority(target, UInt8(prio))
        case .tcbResume:
            restart(target)
        case .tcbSuspend:
            suspend(target)
        case .tcbSetAffinity:
            // SetAffinity(core: mr0). A thread current on another core is
            // refused (seL4 would stall that core: remoteTCBStall).
            guard info.length >= 1 else { throw .truncatedMessage }
            let core = caller.pointee.mr[0]
            guard core < Word(cores) else { throw .range(min: 0, max: Word(cores - 1)) }
            let old = Int(target.pointee.affinity)
            if old != state.pointee.core && node(old).pointee.current == target { throw .illegalOperation }
            setAffinity(target, Int(core))
        case .tcbBindNotification:
            guard info.extraCaps >= 1 else { throw .truncatedMessage }
            let slot = try lookupExtraCap(caller, 0)
            let cap = slot.pointee.cap
            guard cap.type == .notification else { throw .illegalOperation }
            guard cap.rights.contains(.read) else { throw .illegalOperation }
            let n = NotificationRef(bitPattern: cap.object)!
            guard target.pointee.boundNotification == nil, n.pointee.boundTCB == nil,
                n.pointee.state != .waiting
            else { throw .illegalOperation }
            n.pointee.boundTCB = target
            target.pointee.boundNotification = n
        case .tcbUnbindNotification:
            guard let n = target.pointee.boundNotification else { throw .illegalOperation }
            unbind(n)
        case .tcbSetIPCBuffer, .tcbSetSpace, .tcbWriteRegisters, .tcbReadRegisters:
            try invokeUserThread(slot, target, label, caller: caller)
        default:
            throw .illegalOperation
        }
    }
}
