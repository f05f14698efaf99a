import RootTaskSupport
import UserABI

/// The user-level ping-pong (issue 10): a server thread in the root task's
/// own VSpace and CSpace answers `Call`s on an endpoint; the client (the
/// root thread) makes `calls` of them through a badged copy and checks
/// every answer.
struct PingPong {
    static let calls: UInt64 = 1000
    static let shortCalls: UInt64 = 200
    static let badge: UInt64 = 0x42
    /// The server's IPC buffer: the page after the root task's boot
    /// information (its page tables for 0x800000 exist already).
    static let serverIPCBuffer: UInt64 = RootTaskLayout.bootInfo + 0x1000
    /// Below the root task's own priority (seL4 gives its root task 255).
    static let serverPriority: UInt64 = 100
    /// Frame rights: read and write (CapRights); attributes: cacheable,
    /// execute-never (VMAttributes).
    static let readWrite: UInt64 = 3
    static let cacheableNoExecute: UInt64 = 5
    static let allRights: UInt64 = 0xF
    /// The answer's label when the server saw the wrong badge or length,
    /// or found its thread pointer changed.
    static let badRequest: UInt64 = 1
    static let lostThreadPointer: UInt64 = 2
    /// Each side's TPIDR_EL0 for the exchange: every switch between them
    /// must give each its own back (the fastpath and the general path).
    static let clientThreadPointer: UInt64 = 0xC11E_0000_7EAD_0001
    static let serverThreadPointer: UInt64 = 0x5E4E_0000_7EAD_0002

    let bootInfo: UnsafePointer<UInt64>
    let cluster: UInt64
    var nextSlot: UInt64

    init(bootInfo: UnsafePointer<UInt64>, cluster: UInt64) {
        self.bootInfo = bootInfo
        self.cluster = cluster
        nextSlot = bootInfo[RootTaskBootInfo.firstFreeSlot]
    }

    /// nil, or the failed step and its error.
    mutating func run() -> (StaticString, UInt64)? {
        guard bootInfo[RootTaskBootInfo.freeSlotEnd] >= nextSlot + 4 else {
            return ("slots", bootInfo[RootTaskBootInfo.freeSlotEnd])
        }
        let endpoint = nextSlot, client = nextSlot + 1, tcb = nextSlot + 2, frame = nextSlot + 3
        nextSlot += 4
        var e: UInt64
        e = retype(.endpoint, into: endpoint)
        if e != 0 { return ("retype-endpoint", e) }
        e = retype(.tcb, into: tcb)
        if e != 0 { return ("retype-tcb", e) }
        e = retype(.frame, into: frame)
        if e != 0 { return ("retype-frame", e) }
        e = Kernel.mint(endpoint, into: client, rights: Self.allRights, badge: Self.badge)
        if e != 0 { return ("mint", e) }
        e = Kernel.mapFrame(frame, at: Self.serverIPCBuffer, rights: Self.readWrite, attributes: Self.cacheableNoExecute)
        if e != 0 { return ("map-ipc-buffer", e) }
        let server = NewThread(
            tcb: tcb, pc: cmk_server_entry(), sp: cmk_server_stack_top(), x0: endpoint, priority: Self.serverPriority,
            ipcBuffer: (Self.serverIPCBuffer, frame))
        if let failure = server.start() { return failure }

        let tag = MessageTag(label: 0, length: 5).word
        cmk_set_thread_pointer(Self.clientThreadPointer)
        var i: UInt64 = 0
        while i < Self.calls {
            Kernel.message(4).pointee = 2 &* i
            let r = Kernel.syscall(.call, client, tag, i)
            if r.x6 != 0 { return ("call", r.x6) }
            let answer = MessageTag(word: r.x1)
            if cmk_thread_pointer() != Self.clientThreadPointer { return ("client-thread-pointer", cmk_thread_pointer()) }
            if answer.label == Self.lostThreadPointer { return ("server-thread-pointer", i) }
            if answer.label != 0 { return ("server-badge", answer.label) }
            if answer.length < 5 { return ("reply-length", UInt64(answer.length)) }
            if r.x2 != i &+ 1 { return ("reply-mr0", r.x2) }
            let mr4 = Kernel.message(4).pointee
            if mr4 != 2 &* i &+ 1 { return ("reply-mr4", mr4) }
            i += 1
        }
        // Short messages (MR0 only, no IPC buffer): the server's ReplyRecv
        // to us (higher priority) takes the trap fastpath, which switches
        // the thread pointers too.
        let short = MessageTag(label: 0, length: 1).word
        i = 0
        while i < Self.shortCalls {
            let r = Kernel.syscall(.call, client, short, i)
            if r.x6 != 0 { return ("short-call", r.x6) }
            let answer = MessageTag(word: r.x1)
            if cmk_thread_pointer() != Self.clientThreadPointer { return ("short-client-thread-pointer", cmk_thread_pointer()) }
            if answer.label == Self.lostThreadPointer { return ("short-server-thread-pointer", i) }
            if answer.label != 0 || answer.length != 1 { return ("short-reply", r.x1) }
            if r.x2 != i &+ 1 { return ("short-reply-mr0", r.x2) }
            i += 1
        }
        return nil
    }

    /// Retype from the first Untyped with room.
    func retype(_ type: ObjectType, into slot: UInt64) -> UInt64 {
        let first = bootInfo[RootTaskBootInfo.firstUntyped]
        let count = bootInfo[RootTaskBootInfo.untypedCount]
        var error: UInt64 = 0xFFFF
        var u: UInt64 = 0
        while u < count {
            error = Kernel.retype(first + u, type, into: slot)
            if error == 0 { return 0 }
            u += 1
        }
        return error
    }
}

/// The server thread: entered with x0 = its endpoint (WriteRegisters), SP on
/// its own stack, the IPC buffer at `PingPong.serverIPCBuffer`. Answers every
/// message with MR0 + 1 and MR4 + 1 (as long as the request: 5 words, or
/// 1), the label 0 if it came through the badged capability with 5 words or
/// 1, `lostThreadPointer` if its TPIDR_EL0 is not its own, `badRequest`
/// otherwise.
@_cdecl("cmk_root_server")
public func rootServer(_ endpoint: UInt64) {
    let mr4 = Kernel.ipcWord(PingPong.serverIPCBuffer, UserABI.IPCBuffer.message + 4)
    cmk_set_thread_pointer(PingPong.serverThreadPointer)
    var r = Kernel.syscall(.recv, endpoint, 0)
    while true {
        if r.x6 != 0 {
            let info = UnsafePointer<UInt64>(bitPattern: UInt(RootTaskLayout.bootInfo))!
            Console.failure(info[RootTaskBootInfo.clusterId], step: "server-recv", error: r.x6)
            while true { _ = Kernel.syscall(.yield, 0, 0) }
        }
        let request = MessageTag(word: r.x1)
        let good = r.x0 == PingPong.badge && (request.length >= 5 || request.length == 1)
        let mine = cmk_thread_pointer() == PingPong.serverThreadPointer
        mr4.pointee = mr4.pointee &+ 1
        let label = !mine ? PingPong.lostThreadPointer : good ? 0 : PingPong.badRequest
        let answer = MessageTag(label: label, length: request.length == 1 ? 1 : 5).word
        r = Kernel.syscall(.replyRecv, endpoint, answer, r.x2 &+ 1, r.x3, r.x4, r.x5)
    }
}
