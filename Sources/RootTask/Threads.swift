import UserABI

/// The TCB methods user threads add to the kernel (SetIPCBuffer,
/// WriteRegisters, SetSpace), written in parallel with the kernel's side:
/// this file ASSUMES their names and argument orders, and the lead
/// reconciles them with the kernel's at merge (the labels are temporary
/// cases at the end of `InvocationLabel`, renumbered then):
///
///   tcbSetIPCBuffer(vaddr: mr0; frame: extra cap 0)
///   tcbWriteRegisters(resume: mr0, count: mr1, PC: mr2, SP: mr3, x0: mr4, x1: mr5, ...)
///   tcbSetSpace(faultEP CPtr: mr0, cspaceData: mr1; cspace root: extra cap 0, vspace: extra cap 1)
extension Kernel {
    static func setIPCBuffer(_ tcb: UInt64, vaddr: UInt64, frame: UInt64) -> UInt64 {
        invoke(tcb, .tcbSetIPCBuffer, length: 1, vaddr, caps: 1, frame)
    }

    /// PC, SP and x0 (count 3), not resumed.
    static func writeRegisters(_ tcb: UInt64, pc: UInt64, sp: UInt64, x0: UInt64) -> UInt64 {
        invoke(tcb, .tcbWriteRegisters, length: 5, 0, 3, pc, sp, x0)
    }

    static func setSpace(_ tcb: UInt64, faultEndpoint: UInt64, cspace: UInt64, vspace: UInt64) -> UInt64 {
        invoke(tcb, .tcbSetSpace, length: 2, faultEndpoint, 0, caps: 2, cspace, vspace)
    }
}

/// A new thread of the root task, in its VSpace and CSpace (the threads of
/// the ping-pong, the lock runs, the time-slice test, the benchmark and the
/// fuzzer's watchdog): fault endpoint, IPC buffer, first registers,
/// priority, core. The TCB is already retyped into `tcb`.
struct NewThread {
    var tcb: UInt64
    var pc: UInt64
    var sp: UInt64
    var x0: UInt64 = 0
    var priority: UInt64
    /// Its IPC buffer (a frame capability and where it is mapped), if it
    /// needs one (MR4-7, extra capabilities).
    var ipcBuffer: (vaddr: UInt64, frame: UInt64)? = nil
    /// TCB SetAffinity, if not the creating core.
    var core: UInt64? = nil
    var faultEndpoint: UInt64 = 0

    /// SetSpace (its fault endpoint, the root CNode, the root VSpace),
    /// SetIPCBuffer, WriteRegisters, SetPriority, SetAffinity, and Resume
    /// if `resume`. nil, or the first step that failed and its error.
    func start(resume: Bool = true) -> (StaticString, UInt64)? {
        var e = Kernel.setSpace(tcb, faultEndpoint: faultEndpoint, cspace: RootTaskSlot.cnode, vspace: RootTaskSlot.vspace)
        if e != 0 { return ("set-space", e) }
        if let buffer = ipcBuffer {
            e = Kernel.setIPCBuffer(tcb, vaddr: buffer.vaddr, frame: buffer.frame)
            if e != 0 { return ("set-ipc-buffer", e) }
        }
        e = Kernel.writeRegisters(tcb, pc: pc, sp: sp, x0: x0)
        if e != 0 { return ("write-registers", e) }
        e = Kernel.setPriority(tcb, priority)
        if e != 0 { return ("set-priority", e) }
        if let core {
            e = Kernel.invoke(tcb, .tcbSetAffinity, length: 1, core)
            if e != 0 { return ("set-affinity", e) }
        }
        if resume {
            e = Kernel.resume(tcb)
            if e != 0 { return ("resume", e) }
        }
        return nil
    }
}
