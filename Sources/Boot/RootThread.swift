import Kernel

/// System calls made by the cluster's root thread. There is no EL0 yet, so
/// the first core plays the root thread at boot: it fills the thread's
/// registers and enters the kernel through the real system-call path, under
/// the big lock, exactly as a trap from the thread would. A failure panics:
/// at boot every call must succeed.
enum RootThread {
    /// Invoke `label` on the capability at `cap` with `args` (message
    /// registers) and one extra capability `cap0`.
    static func invoke(
        _ kernel: ClusterKernel, _ cap: Word, _ label: InvocationLabel, _ args: InlineArray<6, Word>,
        extraCaps cap0: Word
    ) {
        let thread = kernel.rootThread
        thread.pointee.messageInfo = MessageInfo(label: label.rawValue, length: args.count, extraCaps: 1)
        for i in 0..<args.count { thread.pointee.mr[i] = args[i] }
        thread.pointee.extraCaps[0] = cap0
        kernel.syscall(.call, capAddress: cap)
        if thread.pointee.error != nil { panic("kernel: root thread invocation failed, label", UInt64(label.rawValue)) }
    }

    /// Give the root thread the VSpace at `vspace` (TCB SetSpace: no fault
    /// endpoint, its CSpace unchanged: the root CNode).
    static func setSpace(_ kernel: ClusterKernel, vspace: Word) {
        let thread = kernel.rootThread
        thread.pointee.messageInfo = MessageInfo(label: InvocationLabel.tcbSetSpace.rawValue, length: 2, extraCaps: 2)
        thread.pointee.mr[0] = 0
        thread.pointee.mr[1] = 0
        thread.pointee.extraCaps[0] = RootSlot.cnode
        thread.pointee.extraCaps[1] = vspace
        kernel.syscall(.call, capAddress: RootSlot.thread)
        if thread.pointee.error != nil { panic("kernel: root thread SetSpace failed") }
    }

    static func syscall(_ kernel: ClusterKernel, _ call: Syscall, _ cap: Word) {
        let thread = kernel.rootThread
        thread.pointee.messageInfo = MessageInfo()
        kernel.syscall(call, capAddress: cap)
        if thread.pointee.error != nil { panic("kernel: root thread system call failed on slot", UInt64(cap)) }
    }

    /// The slot of the largest boot Untyped in the root CNode.
    static func largestUntyped(_ kernel: ClusterKernel) -> Word {
        var best = RootSlot.firstUntyped
        var slot = RootSlot.firstUntyped
        while kernel.rootSlot(slot).type == .untyped {
            if kernel.rootSlot(slot).bits > kernel.rootSlot(best).bits { best = slot }
            slot += 1
        }
        guard kernel.rootSlot(best).type == .untyped else { panic("kernel: no Untyped capability in the root CNode") }
        return best
    }
}
