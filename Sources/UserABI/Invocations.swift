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
    // Temporary (the root task's branch): the TCB methods the kernel's user
    // threads add; the lead renumbers them at merge to the kernel's order.
    /// TCB SetIPCBuffer(vaddr: mr0; frame: extra cap 0).
    case tcbSetIPCBuffer
    /// TCB WriteRegisters(resume: mr0, count: mr1, PC: mr2, SP: mr3, x0: mr4, x1: mr5, ...).
    case tcbWriteRegisters
    /// TCB SetSpace(faultEP: mr0, cspaceData: mr1; cspace root: extra cap 0, vspace: extra cap 1).
    case tcbSetSpace
}

/// Kinds of object `Retype` can create.
public enum ObjectType: UInt64, Sendable {
    case untyped = 0, tcb, endpoint, notification, cnode
    // Architecture objects (see ArchObjects.swift).
    case frame, pageTable, vcpu
    /// A VSpace: the root of a stage-2 table tree (Objects/VSpace.swift).
    case vspace
}
