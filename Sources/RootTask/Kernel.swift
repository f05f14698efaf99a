import RootTaskSupport
import UserABI

/// System calls and invocations (docs/kernel/abi.md): the number in x7, the
/// capability in x0, the tag in x1, MR0-3 in x2-x5, MR4-7 and the extra
/// capabilities in the thread's IPC buffer.
enum Kernel {
    /// Message-register word `i` of the IPC buffer at `base`.
    static func ipcWord(_ base: UInt64, _ index: Int) -> UnsafeMutablePointer<UInt64> {
        UnsafeMutablePointer<UInt64>(bitPattern: UInt(base))! + index
    }

    /// The root thread's own IPC buffer (mapped by the kernel's boot).
    static func message(_ i: Int) -> UnsafeMutablePointer<UInt64> {
        ipcWord(RootTaskLayout.ipcBuffer, UserABI.IPCBuffer.message + i)
    }

    static func syscall(_ call: Syscall, _ x0: UInt64, _ x1: UInt64, _ x2: UInt64 = 0, _ x3: UInt64 = 0,
                        _ x4: UInt64 = 0, _ x5: UInt64 = 0) -> cmk_syscall_result {
        cmk_syscall(UInt64(call.rawValue), x0, x1, x2, x3, x4, x5)
    }

    /// Invoke a method (`Call` on `cap` with `label`): MR0...MR5 and up to
    /// two extra capabilities. Returns 0 or the error (x6).
    @discardableResult
    static func invoke(
        _ cap: UInt64, _ label: InvocationLabel, length: Int,
        _ m0: UInt64 = 0, _ m1: UInt64 = 0, _ m2: UInt64 = 0, _ m3: UInt64 = 0, _ m4: UInt64 = 0, _ m5: UInt64 = 0,
        caps: Int = 0, _ cap0: UInt64 = 0, _ cap1: UInt64 = 0
    ) -> UInt64 {
        message(4).pointee = m4
        message(5).pointee = m5
        ipcWord(RootTaskLayout.ipcBuffer, UserABI.IPCBuffer.caps).pointee = cap0
        ipcWord(RootTaskLayout.ipcBuffer, UserABI.IPCBuffer.caps + 1).pointee = cap1
        let tag = MessageTag(label: label.rawValue, length: length, extraCaps: caps)
        return syscall(.call, cap, tag.word, m0, m1, m2, m3).x6
    }

    // MARK: Methods of the ABI the kernel had before user threads

    /// Untyped Retype(type, sizeBits: 0, root CNode (depth 0), offset: slot, count: 1).
    static func retype(_ untyped: UInt64, _ type: ObjectType, into slot: UInt64) -> UInt64 {
        invoke(untyped, .untypedRetype, length: 6, type.rawValue, 0, 0, 0, slot, 1, caps: 1, RootTaskSlot.cnode)
    }

    /// CNode Mint(dest: slot at depth 64, src: slot at depth 64, rights, badge).
    static func mint(_ source: UInt64, into dest: UInt64, rights: UInt64, badge: UInt64) -> UInt64 {
        invoke(RootTaskSlot.cnode, .cnodeMint, length: 6, dest, 64, source, 64, rights, badge, caps: 1, RootTaskSlot.cnode)
    }

    /// Frame Map(vaddr, rights, attributes; VSpace: extra cap 0).
    static func mapFrame(_ frame: UInt64, at vaddr: UInt64, rights: UInt64, attributes: UInt64) -> UInt64 {
        invoke(frame, .frameMap, length: 3, vaddr, rights, attributes, caps: 1, RootTaskSlot.vspace)
    }

    /// TCB Configure(cspace root: extra cap 0, cspaceData: mr0).
    static func configure(_ tcb: UInt64, cspace: UInt64) -> UInt64 {
        invoke(tcb, .tcbConfigure, length: 1, 0, caps: 1, cspace)
    }

    static func setPriority(_ tcb: UInt64, _ priority: UInt64) -> UInt64 {
        invoke(tcb, .tcbSetPriority, length: 1, priority)
    }

    static func resume(_ tcb: UInt64) -> UInt64 { invoke(tcb, .tcbResume, length: 0) }
}
