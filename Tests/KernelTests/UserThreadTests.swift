import ArchAsm
@testable import Kernel
import Testing
import UserABI

/// User threads (Objects/UserThread.swift, docs/kernel/abi.md): system calls
/// decoded from a saved context as the trap path leaves it, results written
/// back by `prepareUserReturn`, faults as messages, the TCB invocations.
@Suite struct UserThreads {
    static let ep: Word = 20, badged: Word = 21, faultEP: Word = 22
    static let server: Word = 30, client: Word = 31
    static let vs: Word = 10, serverBuffer: Word = 40, clientBuffer: Word = 41
    static let serverBufferVA: Word = 0x80_0200, clientBufferVA: Word = 0x80_0000

    /// An endpoint, a badged copy (0x77), a server (200) and a client (100)
    /// with IPC buffers and, for the client, a VSpace and a fault endpoint
    /// (a copy of the endpoint badged 0x55). Root drops to priority 0, so the
    /// server runs.
    func world(preemptEvery: Int = 100, server serverPriority: Word = 200) -> (Harness, TCBRef, TCBRef) {
        let h = Harness(preemptEvery: preemptEvery)
        #expect(h.retype(h.bigUntyped, .endpoint, into: Self.ep) == nil)
        #expect(h.mint(Self.ep, to: Self.badged, badge: 0x77) == nil)
        #expect(h.mint(Self.ep, to: Self.faultEP, badge: 0x55) == nil)
        #expect(h.retype(h.bigUntyped, .frame, into: Self.serverBuffer, count: 2) == nil)
        #expect(h.retype(h.bigUntyped, .vspace, into: Self.vs) == nil)
        let s = h.spawn(Self.server, priority: serverPriority)
        let c = h.spawn(Self.client, priority: 100)
        #expect(h.invoke(Self.server, .tcbSetIPCBuffer, [Self.serverBufferVA], extraCaps: [Self.serverBuffer]) == nil)
        #expect(h.invoke(Self.client, .tcbSetIPCBuffer, [Self.clientBufferVA], extraCaps: [Self.clientBuffer]) == nil)
        #expect(h.invoke(Self.client, .tcbSetSpace, [Self.faultEP, 0], extraCaps: [h.cnode, Self.vs]) == nil)
        #expect(h.invoke(RootSlot.thread, .tcbSetPriority, [0]) == nil)
        // As the trap path would before the first thread runs.
        _ = h.kernel.prepareUserReturn(core: 0)
        h.check("world")
        return (h, s, c)
    }

    /// The words of a thread's IPC buffer (the frame's memory).
    func buffer(_ h: Harness, _ frame: Word, _ va: Word) -> UnsafeMutablePointer<Word> {
        UnsafeMutablePointer<Word>(bitPattern: h.cap(frame).object + UInt(va & 0xFFF))!
    }

    /// What the trap path does for `svc` by the current thread: its
    /// registers saved (PC after the svc), the call, then the thread to run.
    @discardableResult
    func svc(_ h: Harness, _ number: Word, _ x: [Word], pc: Word = 0x40_0104) -> TCBRef? {
        let t = h.current!
        let ctx = h.kernel.userContext(t)
        for (i, v) in x.enumerated() { ctx[i] = v }
        ctx[UserABI.Register.number] = number
        ctx[UserContext.pc] = pc
        h.kernel.userSyscall(core: 0)
        return h.kernel.prepareUserReturn(core: 0)
    }

    @Test func contextIndicesMatchTheTrapFrame() {
        #expect(UserContext.sp == Int(CMK_FRAME_SP))
        #expect(UserContext.pc == Int(CMK_FRAME_ELR))
        #expect(UserContext.pstate == Int(CMK_FRAME_SPSR))
        #expect(UserContext.esr == Int(CMK_FRAME_ESR))
        #expect(UserContext.far == Int(CMK_FRAME_FAR))
        #expect(UserContext.fp == Int(CMK_FRAME_FP))
        #expect(UserContext.fpsr == Int(CMK_FRAME_FPSR))
        #expect(UserContext.fpcr == Int(CMK_FRAME_FPCR))
        #expect(UserContext.words == Int(CMK_FRAME_WORDS))
        #expect(UserContext.pstate + 1 == Int(CMK_FRAME_GENERAL_WORDS))
        #expect(tcbStructOffset + MemoryLayout<TCB>.size <= tcbContextOffset)
        #expect(tcbContextOffset + UserContext.words * 8 <= 1 << tcbSizeBits)
    }

    @Test func newThreadHasAZeroContextAtEL0t() {
        let h = Harness()
        #expect(h.retype(h.bigUntyped, .tcb, into: 30) == nil)
        let ctx = h.kernel.userContext(h.kernel.thread(h.cap(30))!)
        #expect((0..<UserContext.words).allSatisfy { ctx[$0] == 0 })
    }

    @Test func callAndReplyRecvThroughRegistersAndIPCBuffers() {
        let (h, s, c) = world()
        #expect(h.current == s)
        let sb = buffer(h, Self.serverBuffer, Self.serverBufferVA)
        let cb = buffer(h, Self.clientBuffer, Self.clientBufferVA)
        // Server: Recv on the endpoint; it blocks and the client runs (it was
        // resumed: `.restart` without a system call, PC untouched).
        #expect(svc(h, 3, [Self.ep, 0]) == c)
        #expect(s.pointee.state == .blockedOnReceive && c.pointee.state == .running)
        h.check("recv")
        // Client: Call through the badged copy, label 9, six words.
        cb[UserABI.IPCBuffer.message + 4] = 5
        cb[UserABI.IPCBuffer.message + 5] = 6
        #expect(svc(h, 2, [Self.badged, MessageTag(label: 9, length: 6).word, 1, 2, 3, 4]) == s)
        #expect(c.pointee.state == .blockedOnReply)
        let sx = h.kernel.userContext(s)
        #expect(sx[0] == 0x77 && sx[1] == MessageTag(label: 9, length: 6).word && sx[6] == 0)
        #expect(sx[2] == 1 && sx[3] == 2 && sx[4] == 3 && sx[5] == 4)
        #expect(sb[UserABI.IPCBuffer.message + 4] == 5 && sb[UserABI.IPCBuffer.message + 5] == 6)
        #expect(s.pointee.userSyscall == 0)
        h.check("call")
        // Server: ReplyRecv with eight words.
        for i in 4..<8 { sb[UserABI.IPCBuffer.message + i] = Word(11 + i) }
        #expect(svc(h, 6, [Self.ep, MessageTag(label: 1, length: 8).word, 11, 12, 13, 14]) == c)
        let cx = h.kernel.userContext(c)
        #expect(cx[0] == 0 && cx[1] == MessageTag(label: 1, length: 8).word && cx[6] == 0)
        #expect(cx[2] == 11 && cx[3] == 12 && cx[4] == 13 && cx[5] == 14)
        #expect((4..<8).allSatisfy { cb[UserABI.IPCBuffer.message + $0] == Word(11 + $0) })
        #expect(s.pointee.state == .blockedOnReceive)
        h.check("replyRecv")
        // Client: Call on an empty slot: failedLookup in x6, MR0 = 0 (not a source).
        #expect(svc(h, 2, [99, MessageTag(label: 0, length: 0).word]) == c)
        #expect(cx[6] == KernelError.failedLookup(source: false, .invalidRoot).code && cx[2] == 0)
        #expect(cx[1] == MessageTag(label: 6, length: 1).word)
        // A range error carries min and max: SetPriority above the MCP.
        #expect(svc(h, 2, [Self.client, MessageTag(label: InvocationLabel.tcbSetPriority.rawValue, length: 1).word, 250]) == c)
        #expect(cx[6] == 4 && cx[2] == 0 && cx[3] == 100 && cx[1] == MessageTag(label: 4, length: 2).word)
        // Yield and Send return only x6.
        cx[0] = 0xAA
        #expect(svc(h, 7, [0xAA, 0]) == c)
        #expect(cx[6] == 0 && cx[0] == 0xAA)
        h.check("end")
    }

    @Test func messageWithoutIPCBufferIsClampedToFourRegisters() {
        let (h, s, c) = world()
        // The server (current, sharing the root CSpace) clears the client's buffer.
        #expect(h.invoke(Self.client, .tcbSetIPCBuffer, [0]) == nil)
        #expect(tcbSlot(c, .ipcBuffer).pointee.cap.isNull)
        #expect(svc(h, 3, [Self.ep, 0]) == c)
        #expect(svc(h, 2, [Self.badged, MessageTag(label: 3, length: 8).word, 1, 2, 3, 4]) == s)
        #expect(h.kernel.userContext(s)[1] == MessageTag(label: 3, length: 4).word)
        h.check()
    }

    @Test func preemptedCallRewindsOntoTheSvc() {
        let (h, s, _) = world(preemptEvery: 1)
        // Two badged children of the endpoint: Revoke takes two steps.
        #expect(h.mint(Self.ep, to: 23, badge: 1) == nil)  // played by the server
        #expect(h.current == s)
        let args: [Word] = [h.cnode, MessageTag(label: InvocationLabel.cnodeRevoke.rawValue, length: 2).word, Self.ep, 64]
        #expect(svc(h, 2, args, pc: 0x40_0208) == s)
        let ctx = h.kernel.userContext(s)
        #expect(ctx[UserContext.pc] == 0x40_0204)
        #expect(ctx[0] == args[0] && ctx[1] == args[1] && ctx[2] == args[2] && ctx[3] == args[3])
        #expect(s.pointee.state == .running && s.pointee.userSyscall == 0)
        h.check("preempted")
        var rounds = 0
        while !h.cap(23).isNull || !h.cap(Self.faultEP).isNull || !h.cap(Self.badged).isNull {
            rounds += 1
            #expect(rounds < 10)
            if rounds >= 10 { break }
            svc(h, 2, args, pc: ctx[UserContext.pc] + 4)
        }
        #expect(h.cap(Self.badged).isNull)
        h.check("revoked")
    }

    @Test func vmFaultGoesToTheFaultEndpointAndTheReplyRestarts() {
        let (h, s, c) = world()
        #expect(h.kernel.vspace(of: c)! == (UInt64(h.cap(Self.vs).object), firstVSpaceVMID))
        #expect(h.kernel.vspace(of: s) == nil)
        #expect(svc(h, 3, [Self.ep, 0]) == c)
        let cx = h.kernel.userContext(c)
        cx[0] = 0xAB
        cx[UserContext.pc] = 0x40_0100
        h.kernel.userFault(.vmFault(address: 0x90_0008, isInstruction: false, status: 0x9200_0047), core: 0)
        #expect(h.kernel.prepareUserReturn(core: 0) == s)
        #expect(c.pointee.state == .blockedOnReply)
        let sx = h.kernel.userContext(s)
        #expect(sx[0] == 0x55 && sx[1] == MessageTag(label: FaultLabel.vmFault, length: 4).word)
        #expect(sx[2] == 0x40_0100 && sx[3] == 0x90_0008 && sx[4] == 0 && sx[5] == 0x9200_0047)
        h.check("fault sent")
        // The handler replies: the client runs again, registers untouched.
        #expect(svc(h, 6, [Self.ep, 0]) == c)
        #expect(c.pointee.state == .running && cx[0] == 0xAB && cx[UserContext.pc] == 0x40_0100)
        #expect(h.kernel.takeUnhandledFault() == nil)
        h.check("restarted")
    }

    @Test func faultWithoutHandlerStopsTheThread() {
        let (h, s, c) = world()
        // Unknown system call with a handler: the message carries x0-x5, IP, number.
        #expect(svc(h, 3, [Self.ep, 0]) == c)
        #expect(svc(h, 0x55, [1, 2, 3, 4, 5, 6], pc: 0x40_0300) == s)
        let sx = h.kernel.userContext(s)
        #expect(sx[1] == MessageTag(label: FaultLabel.unknownSyscall, length: 8).word)
        #expect(sx[2] == 1 && sx[5] == 4)
        #expect(buffer(h, Self.serverBuffer, Self.serverBufferVA)[UserABI.IPCBuffer.message + 6] == 0x40_0300)
        #expect(buffer(h, Self.serverBuffer, Self.serverBufferVA)[UserABI.IPCBuffer.message + 7] == 0x55)
        // The server (no fault handler) faults: it stops, and it is reported.
        h.kernel.userFault(.userException(status: 0x0200_0000), core: 0)
        #expect(s.pointee.state == .inactive)
        let u = h.kernel.takeUnhandledFault()
        #expect(u?.thread == s && u?.fault == .userException(status: 0x0200_0000))
        #expect(h.kernel.takeUnhandledFault() == nil)
        #expect(h.current != s)
        h.check()
    }

    @Test func setIPCBufferSetSpaceAndRegisterErrors() {
        let h = Harness()
        #expect(h.retype(h.bigUntyped, .frame, into: 40) == nil)
        #expect(h.retype(h.bigUntyped, .endpoint, into: 20) == nil)
        #expect(h.retype(h.bigUntyped, .vspace, into: 10) == nil)
        #expect(h.retype(h.bigUntyped, .tcb, into: 30) == nil)
        let t = h.kernel.thread(h.cap(30))!
        #expect(h.invoke(30, .tcbSetIPCBuffer, [0x1100], extraCaps: [40]) == .alignment)
        #expect(h.invoke(30, .tcbSetIPCBuffer, [0x1000], extraCaps: [20]) == .invalidCapability(index: 1))
        #expect(h.invoke(30, .tcbSetIPCBuffer, [0x1000]) == .truncatedMessage)
        #expect(h.invoke(30, .tcbSetIPCBuffer, [userTop], extraCaps: [40]) == .invalidArgument(index: 0))
        #expect(h.invoke(30, .tcbSetIPCBuffer, [0x1200], extraCaps: [40]) == nil)
        #expect(tcbSlot(t, .ipcBuffer).pointee.cap.type == .frame && t.pointee.ipcBufferAddress == 0x1200)
        h.check("buffer set")
        // Deleting the frame's untyped children removes the buffer copy too.
        #expect(h.delete(40) == nil)
        #expect(tcbSlot(t, .ipcBuffer).pointee.cap.type == .frame)  // a copy of its own
        #expect(h.invoke(30, .tcbSetIPCBuffer, [0]) == nil)
        #expect(tcbSlot(t, .ipcBuffer).pointee.cap.isNull)
        h.check("buffer cleared")
        #expect(h.invoke(30, .tcbSetSpace, [20, 0], extraCaps: [h.cnode]) == .truncatedMessage)
        #expect(h.invoke(30, .tcbSetSpace, [20, 0], extraCaps: [20, 10]) == .illegalOperation)
        #expect(h.invoke(30, .tcbSetSpace, [20, 0], extraCaps: [h.cnode, 20]) == .illegalOperation)
        #expect(h.invoke(30, .tcbSetSpace, [20, 0], extraCaps: [h.cnode, 10]) == nil)
        #expect(t.pointee.faultHandler == 20 && h.kernel.vspace(of: t)?.vmid == firstVSpaceVMID)
        h.check("space set")
        // WriteRegisters: not on the caller itself; count words must follow.
        #expect(h.invoke(RootSlot.thread, .tcbWriteRegisters, [0, 1, 0x1000]) == .illegalOperation)
        #expect(h.invoke(30, .tcbWriteRegisters, [0, 3, 0x1000, 0x2000]) == .truncatedMessage)
        let ctx = h.kernel.userContext(t)
        ctx[UserContext.pstate] = 0x3C5
        #expect(h.invoke(30, .tcbWriteRegisters, [1, 9, 0x40_0000, 0x91_0000, 7, 8, 9, 10]) == nil)
        #expect(ctx[UserContext.pc] == 0x40_0000 && ctx[UserContext.sp] == 0x91_0000)
        #expect(ctx[0] == 7 && ctx[1] == 8 && ctx[2] == 9 && ctx[3] == 10 && ctx[UserContext.pstate] == 0)
        #expect(t.pointee.state == .restart)
        // ReadRegisters: PC, SP, x0-x5.
        #expect(h.invoke(30, .tcbReadRegisters) == nil)
        let r = h.root.pointee
        #expect(r.messageInfo == MessageInfo(label: 0, length: 8))
        #expect(r.mr[0] == 0x40_0000 && r.mr[1] == 0x91_0000 && r.mr[2] == 7 && r.mr[5] == 10 && r.mr[7] == 0)
        h.check("registers")
    }

    @Test func suspendKeepsACompletedCallsResultsAndResumeDoesNotRewind() {
        let (h, s0, c0) = world(server: 100)
        // Same priority: whichever runs receives, the other sends.
        let (r, sender) = h.current == s0 ? (s0, c0) : (c0, s0)
        let rTCB = r == s0 ? Self.server : Self.client
        #expect(svc(h, 3, [Self.ep, 0], pc: 0x40_0504) == sender)
        // The woken receiver waits in the ready queue.
        #expect(svc(h, 0, [Self.badged, MessageTag(label: 4, length: 1).word, 42]) == sender)
        #expect(r.pointee.state == .running && r.pointee.userSyscall == Syscall.recv.rawValue + 1)
        h.check("woken")
        #expect(svc(h, 2, [rTCB, MessageTag(label: InvocationLabel.tcbSuspend.rawValue, length: 0).word]) == sender)
        let rx = h.kernel.userContext(r)
        #expect(r.pointee.state == .inactive && r.pointee.userSyscall == 0)
        #expect(rx[0] == 0x77 && rx[1] == MessageTag(label: 4, length: 1).word && rx[2] == 42 && rx[6] == 0)
        h.check("suspended")
        #expect(svc(h, 2, [rTCB, MessageTag(label: InvocationLabel.tcbResume.rawValue, length: 0).word]) == sender)
        #expect(svc(h, 7, [0, 0]) == r)
        #expect(rx[UserContext.pc] == 0x40_0504 && r.pointee.state == .running)
        h.check("resumed")
    }

    /// The trap fastpath (`userFastpath`) on a saved register frame, as
    /// Boot's `UserRun.fastpath` uses it: the same outcome as the general
    /// path for Call and ReplyRecv, and nothing changed when it declines.
    @Test func fastpathCallAndReplyRecvOnTrapRegisters() {
        let (h, s, c) = world(server: 100)
        // The fastpath needs a VSpace on both sides.
        #expect(h.invoke(Self.server, .tcbSetSpace, [0, 0], extraCaps: [h.cnode, Self.vs]) == nil)
        // Equal priorities: the client may be first; it yields to the server.
        if h.current == c { #expect(svc(h, 7, [0, 0]) == s) }
        #expect(svc(h, 3, [Self.ep, 0]) == c)
        let frame = UnsafeMutablePointer<Word>.allocate(capacity: UserContext.words)
        defer { frame.deallocate() }
        func regs(_ number: Word, _ x: [Word]) -> UnsafeMutablePointer<Word> {
            frame.initialize(repeating: 0, count: UserContext.words)
            for (i, v) in x.enumerated() { frame[i] = v }
            frame[UserABI.Register.number] = number
            return frame
        }
        // Declined: a capability to send, five words, an empty slot.
        #expect(h.kernel.userFastpath(core: 0, registers: regs(2, [Self.badged, MessageTag(label: 9, length: 1, extraCaps: 1).word])) == nil)
        #expect(h.kernel.userFastpath(core: 0, registers: regs(2, [Self.badged, MessageTag(label: 9, length: 5).word])) == nil)
        #expect(h.kernel.userFastpath(core: 0, registers: regs(2, [99, MessageTag(label: 9, length: 1).word])) == nil)
        #expect(h.current == c && c.pointee.state == .running && s.pointee.state == .blockedOnReceive)
        h.check("declined")
        // Call: the server runs, the client waits for the reply.
        let call = h.kernel.userFastpath(core: 0, registers: regs(2, [Self.badged, MessageTag(label: 9, length: 2).word, 1, 2]))
        #expect(call?.from == c && call?.to == s && call?.badge == 0x77 && call?.length == 2)
        #expect(call?.tag == MessageTag(label: 9, length: 2).word)
        #expect(h.current == s && s.pointee.state == .running && s.pointee.userSyscall == 0)
        #expect(c.pointee.state == .blockedOnReply && c.pointee.userSyscall == Syscall.call.rawValue + 1)
        #expect(tcbSlot(s, .caller).pointee.cap.type == .reply)
        h.check("call")
        // ReplyRecv: the client runs, the server waits on the endpoint.
        let reply = h.kernel.userFastpath(core: 0, registers: regs(6, [Self.ep, MessageTag(label: 1, length: 1).word, 11]))
        #expect(reply?.from == s && reply?.to == c && reply?.badge == 0 && reply?.length == 1)
        #expect(h.current == c && c.pointee.state == .running && c.pointee.userSyscall == 0)
        #expect(s.pointee.state == .blockedOnReceive && s.pointee.userSyscall == Syscall.replyRecv.rawValue + 1)
        #expect(tcbSlot(s, .caller).pointee.cap.isNull)
        h.check("replyRecv")
        // ReplyRecv with no caller to answer: declined.
        #expect(h.kernel.userFastpath(core: 0, registers: regs(6, [Self.ep, 0])) == nil)
        // The general path still works after the fastpath: Call again.
        #expect(svc(h, 2, [Self.badged, MessageTag(label: 9, length: 1).word, 5]) == s)
        #expect(h.kernel.userContext(s)[2] == 5)
        h.check("end")
    }
}

@Suite struct UserThreadInvariants {
    @Test func ipcBufferSlotMustHoldAnUnmappedFrame() {
        let h = Harness()
        #expect(h.retype(h.bigUntyped, .frame, into: 40) == nil)
        #expect(h.retype(h.bigUntyped, .tcb, into: 30) == nil)
        #expect(h.invoke(30, .tcbSetIPCBuffer, [0x1000], extraCaps: [40]) == nil)
        #expect(h.kernel.checkInvariants() == nil)
        let t = h.kernel.thread(h.cap(30))!
        tcbSlot(t, .ipcBuffer).pointee.cap.type = .endpoint
        #expect(h.kernel.checkInvariants().map { "\($0.message)" } == "IPC buffer slot holds no unmapped frame capability")
    }

    @Test func syscallMarkMustFitTheState() {
        let h = Harness()
        #expect(h.retype(h.bigUntyped, .endpoint, into: 20) == nil)
        let t = h.spawn(30, priority: 100)
        #expect(h.invoke(RootSlot.thread, .tcbSetPriority, [0]) == nil)
        h.call(.recv, 20)
        #expect(t.pointee.state == .blockedOnReceive)
        #expect(h.kernel.checkInvariants() == nil)
        t.pointee.userSyscall = Syscall.recv.rawValue + 1
        #expect(h.kernel.checkInvariants() == nil)
        t.pointee.userSyscall = Syscall.yield.rawValue + 1
        #expect(h.kernel.checkInvariants().map { "\($0.message)" } == "thread blocked by a system call that cannot block so")
    }

}
