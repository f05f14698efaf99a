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
