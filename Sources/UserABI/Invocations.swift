/// The kernel's system-call numbers, invocation labels and object types:
/// part of the user ABI (docs/kernel/abi.md), so that EL0 programs name them
/// without linking kernel code. The Kernel module re-exports this module.

/// seL4's eight calls: the number in x7 (`UserABI.Register.number`).
public enum Syscall: UInt8, Sendable {
    case send, nbSend, call, recv, nbRecv, reply, replyRecv, yield
}

/// Methods invoked on capabilities with `Call` (or `Send`): the message label.
public enum InvocationLabel: UInt64, Sendable {
    case untypedRetype = 1
    case cnodeRevoke, cnodeDelete, cnodeCopy, cnodeMint, cnodeMove, cnodeMutate
    case tcbConfigure, tcbSetPriority, tcbResume, tcbSuspend
    case tcbBindNotification, tcbUnbindNotification
    case vcpuSetTCB, vcpuSetIndex
    /// TCB SetAffinity(core: mr0): the core whose node schedules the thread.
    case tcbSetAffinity
    // Frames and page tables (Objects/VSpace.swift; seL4's ARM page methods).
    case frameMap, frameUnmap, frameGetAddress, pageTableMap, pageTableUnmap
    /// Notification Export(index: mr0) / Unexport(index: mr0): put a copy of
    /// the invoked (badged, writable) notification capability into the
    /// kernel's export table for remote clusters, or delete that entry
    /// (docs/kernel/notifications.md). Any other label on a notification signals.
    case notificationExport, notificationUnexport
    /// InterKernel IssueRemote(cluster: mr0, index: mr1, slot: mr2 of the
    /// CNode in extra cap 0): a `remoteNotification` capability.
    case interKernelIssueRemote
    /// TCB SetIPCBuffer(vaddr: mr0; frame: extra cap 0): the thread's IPC
    /// buffer (vaddr 0 and no capability: none). Kernel/Objects/UserThread.swift.
    case tcbSetIPCBuffer
    /// TCB SetSpace(faultEP: mr0, cspaceData: mr1; cspace: extra cap 0,
    /// vspace: extra cap 1): seL4's TCB_SetSpace.
    case tcbSetSpace
    /// TCB WriteRegisters(resume: mr0, count: mr1, PC: mr2, SP: mr3, x0...x3: mr4...mr7).
    case tcbWriteRegisters
    /// TCB ReadRegisters(suspend: mr0 if given): PC, SP, x0...x5 in mr0...mr7.
    case tcbReadRegisters
    /// IRQControl Get(irq: mr0, core: mr1, slot: mr2 of the CNode in extra
    /// cap 0): an IRQHandler capability for interrupt `irq` on `core` of the
    /// cluster (a PPI is per core; an SPI is routed there). Kernel/Objects/IRQ.swift.
    case irqControlGet
    /// IRQHandler Ack: the interrupt may fire again (it is masked from each
    /// delivery until then; the first Ack enables it).
    case irqHandlerAck
    /// IRQHandler SetNotification(extra cap 0: a notification with the
    /// write right): deliveries signal it with its badge.
    case irqHandlerSetNotification
    /// IRQHandler Clear: no notification (deliveries are dropped).
    case irqHandlerClear
}

/// Kinds of object `Retype` can create.
public enum ObjectType: UInt64, Sendable {
    case untyped = 0, tcb, endpoint, notification, cnode
    // Architecture objects (see ArchObjects.swift).
    case frame, pageTable, vcpu
    /// A VSpace: the root of a stage-2 table tree (Objects/VSpace.swift).
    case vspace
}
