import BigLock

/// One cluster's kernel: its fixed state, boot, and the entry points.
///
/// The kernel is a deterministic state machine. Its only memory is the
/// partition handed to `boot`: a fixed block for the kernel's own state
/// (big lock, scheduler, the derivation tree's root), then Untyped memory
/// from which every object is retyped. There is no kernel heap.
///
/// Every entry (`syscall`, `timerTick`, `remoteSignal`, `reschedule`) takes the cluster's
/// big lock first and releases it last, so the kernel body never runs
/// concurrently with itself (seL4's big-lock SMP design). The lock's kind
/// (ticket, MCS, CLH) is the topology's choice; entries name the core (its
/// index in the cluster) because MCS and CLH keep per-core queue state.
///
/// Each core of the cluster is a scheduling node (seL4's SMP nodes): its own
/// current thread, scheduler action and ready queues (Scheduler.swift). An
/// entry acts on the node of the core that makes it (`KernelState.core`,
/// recorded under the lock).
public struct ClusterKernel {
    /// The cluster's big lock. Every kernel entry takes it; so does every
    /// core that enters the kernel at boot (Boot's cluster bring-up).
    public let lock: ClusterLock
    let state: UnsafeMutablePointer<KernelState>
    /// The scheduling nodes, one per core, `nodeStride` bytes apart: each a
    /// `SchedulerNode`, its 4-word ready bitmap and its 256 ready queues.
    let nodes: UnsafeMutableRawPointer
    /// Cores of the cluster (1...64), each scheduled separately.
    public let cores: Int
    /// Head of the derivation tree: a null capability that precedes every
    /// boot capability. Never deleted.
    let root: SlotRef
    /// The partition: [memoryBase, memoryEnd).
    public let memoryBase: UInt
    public let memoryEnd: UInt
}

struct KernelState {
    /// The core executing the current entry (the last entry's between entries).
    var core = 0
    /// Bit c: core c's action was set to `.chooseNew` by another core; it
    /// needs an IPI (`takeRescheduleRequests`).
    var rescheduleMask: UInt64 = 0
    /// Asked at every preemption point: is an interrupt pending (the
    /// caller's hook, `boot(preemptionPending:)`; nil: never).
    var preemptionPending: PreemptionCheck? = nil
    var rootThread: TCBRef? = nil
    var rootCNode: UInt = 0
    var rootCNodeRadix = 0
    var bootObjectsEnd: UInt = 0
    var vspace = VSpaceState()
    /// This cluster's index and the number of clusters (boot parameters):
    /// the range of `remoteNotification` capabilities.
    var cluster = 0
    var clusterCount = 1
    /// Outgoing remote signals, oldest first: cluster << 8 | export index.
    var outgoing = InlineArray<16, UInt16>(repeating: 0)
    var outgoingCount = 0
    /// The interrupt handler table (Objects/IRQ.swift): per entry the
    /// interrupt id (bits 0-15), the core (16-23), allocated (bit 31),
    /// masked until Ack (bit 30).
    var irqTable = InlineArray<8, UInt32>(repeating: 0)
    /// Interrupt ids below 128 no handler may take (bit i of word i / 64),
    /// and the first id past the controller's lines (`configureInterrupts`).
    var irqReserved = InlineArray<2, UInt64>(repeating: ~0)
    var irqLimit = 0
    /// Enables and disables the Boot layer owes the interrupt controller,
    /// oldest first: id | core << 16 | enable << 31 (`takeInterruptChange`).
    var irqChanges = InlineArray<16, UInt32>(repeating: 0)
    var irqChangeCount = 0
    /// The last thread that faulted with no handler (`takeUnhandledFault`).
    var unhandledThread: TCBRef? = nil
    var unhandledFault = UserFault.unknownSyscall(number: 0)
}

/// The preemption check a kernel's caller installs at boot: true if an
/// interrupt is pending on the executing core (seL4's `isIRQPending`). A C
/// function pointer: no context, nothing to allocate.
public typealias PreemptionCheck = @convention(c) () -> Bool

/// Well-known slots of the root thread's CNode (as seL4's root task).
public enum RootSlot {
    public static let thread: Word = 1
    public static let cnode: Word = 2
    /// The `interKernel` capability (issues remote notification capabilities).
    public static let interKernel: Word = 3
    /// The `irqControl` capability (makes IRQHandler capabilities).
    public static let irqControl: Word = 8
    /// Untyped capabilities start here, in address order.
    public static let firstUntyped: Word = 224
}

extension ClusterKernel {
    // Fixed kernel state at the start of the partition (offsets in bytes):
    //   64: KernelState; 960 + c * nodeStride: core c's node (SchedulerNode,
    //   bitmap at +32, ready queues at +64); then 3 KiB for the tree root,
    //   the originals of the boot Untyped blocks, the export table and the
    //   interrupt handlers' notifications ((1 + 32 + 16 + 8) CTEs of 48
    //   bytes: 2736); then, at `defaultLockOffset`
    //   (4 KiB aligned), 4 KiB for a ticket lock if the caller brings no lock.
    // With one core: node 960, queues 1024, root 5120, lock 8192, end 12288
    // (the single-core layout of before).
    static var nodesOffset: Int { 960 }
    static var nodeStride: Int { 64 + 16 * priorityCount }
    static func rootOffset(cores: Int) -> Int { nodesOffset + cores * nodeStride }
    static func defaultLockOffset(cores: Int) -> Int { (rootOffset(cores: cores) + 3072 + 4095) & ~4095 }
    /// Bytes of the fixed kernel state; grows with the cores (one node each).
    static func fixedStateBytes(cores: Int) -> Int { defaultLockOffset(cores: cores) + 4096 }
    /// Most boot Untyped blocks (their originals live in the fixed state).
    static var bootUntypedLimit: Int { 32 }
    /// CTEs after the tree root: the boot Untyped originals, the exports,
    /// the interrupt handlers' notifications.
    static var fixedSlotCount: Int { bootUntypedLimit + exportLimit + irqHandlerLimit }
    /// Export entry `i` (0..<exportLimit), a CTE of the fixed state.
    @inline(__always) func exportSlot(_ i: Int) -> SlotRef { root + 1 + ClusterKernel.bootUntypedLimit + i }
    /// Interrupt handler entry `i`'s notification (0..<irqHandlerLimit), a CTE of the fixed state.
    @inline(__always) func irqSlot(_ i: Int) -> SlotRef {
        root + 1 + ClusterKernel.bootUntypedLimit + exportLimit + i
    }

    /// Boot a cluster kernel in `size` bytes at `memory` (aligned to 4 KiB).
    /// Creates the root thread (priority 255, running on core 0) with a CNode
    /// of 2^`rootRadix` slots addressed by plain slot numbers, and gives it
    /// the rest of the partition as Untyped capabilities. `preemptionPending`
    /// is asked at every preemption point of a long operation (delete,
    /// revoke, unmapping a table) whether an interrupt waits; if so the
    /// operation stops there, consistent, and the caller re-issues it (nil:
    /// never preempted; docs/kernel/scheduling.md). `lock` is the
    /// cluster's big lock, already formatted in memory outside `memory`; nil
    /// makes a ticket lock in the kernel's fixed state. `cores` (1...64) is
    /// the number of cores, each a scheduling node; nil if out of range.
    /// `cluster` (0..<`clusterCount`, at most 64) is this cluster's index
    /// among `clusterCount`: remote notification capabilities name another.
    /// The root thread also gets the `interKernel` capability and, with 16
    /// or more root slots, the `irqControl` capability (RootSlot).
    public static func boot(
        memory: UnsafeMutableRawPointer, size: Int, rootRadix: Int = 8, preemptionPending: PreemptionCheck? = nil,
        lock suppliedLock: ClusterLock? = nil, cores: Int = 1, cluster: Int = 0, clusterCount: Int = 1
    ) -> ClusterKernel? {
        let base = UInt(bitPattern: memory)
        guard cores >= 1, cores <= BigLockLayout.maxCores else { return nil }
        guard clusterCount >= 1, clusterCount <= 64, cluster >= 0, cluster < clusterCount else { return nil }
        let fixedBytes = fixedStateBytes(cores: cores)
        guard base & 4095 == 0, size >= fixedBytes + 8192, rootRadix >= 2, rootRadix <= 16,
            // The layout's reservations hold what they are for.
            MemoryLayout<KernelState>.size <= nodesOffset - 64, MemoryLayout<SchedulerNode>.size <= 32,
            tcbStructOffset + MemoryLayout<TCB>.size <= tcbContextOffset,
            tcbContextOffset + UserContext.words * 8 <= 1 << tcbSizeBits,
            (1 + fixedSlotCount) * MemoryLayout<CTE>.stride <= 3072,
            ClusterLock.byteCount(.ticket, cores: BigLockLayout.maxCores) <= 4096
        else { return nil }
        let raw = memory
        let lock = suppliedLock
            ?? ClusterLock(formatting: raw + defaultLockOffset(cores: cores), kind: .ticket, cores: BigLockLayout.maxCores)
        let state = (raw + 64).bindMemory(to: KernelState.self, capacity: 1)
        state.initialize(to: KernelState())
        state.pointee.preemptionPending = preemptionPending
        state.pointee.cluster = cluster
        state.pointee.clusterCount = clusterCount
        let nodes = raw + nodesOffset
        for c in 0..<cores {
            let n = nodes + c * nodeStride
            n.bindMemory(to: SchedulerNode.self, capacity: 1).initialize(to: SchedulerNode())
            (n + 32).bindMemory(to: UInt64.self, capacity: 4).initialize(repeating: 0, count: 4)
            (n + 64).bindMemory(to: ReadyQueue.self, capacity: priorityCount)
                .initialize(repeating: ReadyQueue(), count: priorityCount)
        }
        let root = (raw + rootOffset(cores: cores)).bindMemory(to: CTE.self, capacity: 1 + fixedSlotCount)
        // Every fixed slot starts empty (the checker reads them all).
        root.initialize(repeating: CTE(), count: 1 + fixedSlotCount)
        let kernel = ClusterKernel(
            lock: lock, state: state, nodes: nodes, cores: cores, root: root,
            memoryBase: base, memoryEnd: base + UInt(size))

        // Boot objects: the root CNode and root thread, right after the
        // fixed state (like seL4's root-server objects, not from Untyped).
        var cursor = base + UInt(fixedBytes)
        let cnodeBits = rootRadix + slotSizeBits
        cursor = (cursor + (UInt(1) << UInt(cnodeBits)) - 1) & ~((UInt(1) << UInt(cnodeBits)) - 1)
        let cnodeCap = kernel.createObject(.cnode, at: cursor, sizeBits: cnodeBits)
        let cnodeAt = cursor
        cursor += UInt(1) << UInt(cnodeBits)
        let tcbCap = kernel.createObject(.tcb, at: cursor, sizeBits: tcbSizeBits)
        let tcbAt = cursor
        cursor += UInt(1) << UInt(tcbSizeBits)
        let top = base + UInt(size)
        guard cursor <= top else { return nil }
        state.pointee.bootObjectsEnd = cursor
        state.pointee.rootCNode = cnodeAt
        state.pointee.rootCNodeRadix = rootRadix

        let slots = Capability.cnode(cnodeAt, radix: rootRadix, guardSize: wordBits - rootRadix, guard: 0)
        // Untyped memory: maximal aligned power-of-two blocks. The kernel
        // keeps the original capability of each block in its fixed state,
        // where no one can delete it, and gives the root thread a copy; so
        // every object always has an Untyped ancestor, even after the root
        // thread deletes its copy. The tree lists the blocks in address order.
        var last = root
        var index = RootSlot.firstUntyped
        var block = 0
        while cursor < top && index < (Word(1) << Word(rootRadix)) && block < ClusterKernel.bootUntypedLimit {
            var bits = min(maxUntypedBits, (cursor == 0 ? 63 : cursor.trailingZeroBitCount))
            while bits >= minUntypedBits && cursor + (UInt(1) << UInt(bits)) > top { bits -= 1 }
            if bits < minUntypedBits { break }
            let original = root + 1 + block
            original.initialize(to: CTE())
            insertNew(.untyped(base: cursor, sizeBits: bits), parent: last, into: original)
            let slot = cnodeSlot(slots, index)
            insertCopy(.untyped(base: cursor, sizeBits: bits), from: original, into: slot)
            last = slot
            cursor += UInt(1) << UInt(bits)
            index += 1
            block += 1
        }
        // Boot object capabilities, after the Untyped ones.
        _ = cnodeCap
        insertNew(slots, parent: last, into: cnodeSlot(slots, RootSlot.cnode))
        insertNew(tcbCap, parent: cnodeSlot(slots, RootSlot.cnode), into: cnodeSlot(slots, RootSlot.thread))
        insertNew(
            Capability(type: .interKernel, rights: .all, bits: 0, small: 0, object: 0, word: 0),
            parent: cnodeSlot(slots, RootSlot.thread), into: cnodeSlot(slots, RootSlot.interKernel))
        if rootRadix >= 4 {
            insertNew(
                Capability(type: .irqControl, rights: .all, bits: 0, small: 0, object: 0, word: 0),
                parent: cnodeSlot(slots, RootSlot.interKernel), into: cnodeSlot(slots, RootSlot.irqControl))
        }
        let thread = tcbRef(object: tcbAt)
        insertCopy(slots, from: cnodeSlot(slots, RootSlot.cnode), into: tcbSlot(thread, .cspaceRoot))
        thread.pointee.priority = 255
        thread.pointee.maxPriority = 255
        thread.pointee.state = .running
        kernel.node(0).pointee.current = thread
        state.pointee.rootThread = thread
        return kernel
    }

    // MARK: Entry points (each under the big lock)

    /// Record the core that executes this entry (the lock is held): every
    /// scheduling decision of the entry is for that core's node.
    @inline(__always)
    func enter(_ core: Int) {
        precondition(UInt(bitPattern: core) < UInt(bitPattern: cores))
        state.pointee.core = core
    }

    /// The current thread of `core` makes a system call with its registers
    /// as arguments.
    @inline(never)
    public func syscall(_ syscall: Syscall, capAddress: Word, core: Int = 0) {
        lock.acquire(core: core)
        enter(core)
        handleSyscall(syscall, capAddress: capAddress)
        lock.release(core: core)
    }

    /// A timer interrupt on `core`: round-robin within that core's level.
    @inline(never)
    public func timerTick(core: Int = 0) {
        lock.acquire(core: core)
        timerTickLocked(core: core)
        lock.release(core: core)
    }

    /// The reschedule IPI: another core changed this core's scheduling
    /// (`takeRescheduleRequests`); carry out its pending choice.
    @inline(never)
    public func reschedule(core: Int) {
        lock.acquire(core: core)
        rescheduleLocked(core: core)
        lock.release(core: core)
    }

    /// Return and clear the cores that need a reschedule IPI (bit c: core c).
    /// An entry sets bit c when it makes core c (not itself) choose again: a
    /// higher thread woke on core c, or core c's current thread stopped. The
    /// caller sends each such core an IPI, on which it calls
    /// `reschedule(core:)`; a core that enters the kernel first reschedules
    /// then anyway, so an IPI that arrives late does nothing.
    ///
    /// Call it holding the big lock (`lock.acquire(core:)`), or where no
    /// entry can run concurrently (tests): entries on other cores write the
    /// mask under the lock.
    public func takeRescheduleRequests() -> UInt64 {
        let m = state.pointee.rescheduleMask
        state.pointee.rescheduleMask = 0
        return m
    }

    /// An inter-kernel entry: cluster `from` asks this kernel to signal its
    /// export `index` (a `.notify(export:)` message).
    ///
    /// Authority: the remote cluster names an export index, never a slot or
    /// an address, so it can signal only what this cluster's root thread
    /// exported (`notificationExport`); the badge is the exported
    /// capability's, decided here, never taken from the message. Errors:
    /// `.range` for an index >= `exportLimit`, `.invalidArgument(index: 1)`
    /// for `from` not another cluster, `.failedLookup` for an empty entry
    /// (never exported, unexported, or deleted with its ancestors). Under
    /// the big lock.
    @inline(never)
    public func remoteSignal(export index: Word, from cluster: Int, core: Int = 0) -> KernelError? {
        lock.acquire(core: core)
        defer { lock.release(core: core) }
        return remoteSignalLocked(export: index, from: cluster, core: core)
    }

    /// `remoteSignal` for a caller that holds the big lock as `core` (the
    /// EL0 trap path serving the channel between user threads). Same checks,
    /// same errors; nothing changes on an error.
    public func remoteSignalLocked(export index: Word, from cluster: Int, core: Int) -> KernelError? {
        enter(core)
        guard index < Word(exportLimit) else { return .range(min: 0, max: Word(exportLimit) - 1) }
        guard cluster >= 0, cluster < state.pointee.clusterCount, cluster != state.pointee.cluster else {
            return .invalidArgument(index: 1)
        }
        let cap = exportSlot(Int(index)).pointee.cap
        guard let n = notification(cap) else { return .failedLookup(source: false, .missingCapability(bitsLeft: 0)) }
        signal(n, badge: cap.badge)
        schedule()
        return nil
    }

    /// The oldest outgoing remote signal a Send on a `remoteNotification`
    /// capability queued, removed from the queue; nil if none. The Boot layer
    /// calls it after a kernel entry and sends `.notify(export: index)` to
    /// `cluster`. Takes the big lock as `core`.
    public func takeOutgoingSignal(core: Int = 0) -> (cluster: Int, index: Int)? {
        lock.acquire(core: core)
        defer { lock.release(core: core) }
        return takeOutgoingSignalLocked()
    }

    /// `takeOutgoingSignal` for a caller that holds the big lock (the EL0
    /// trap path, after a system call).
    public func takeOutgoingSignalLocked() -> (cluster: Int, index: Int)? {
        guard let e = popFront(&state.pointee.outgoing, count: &state.pointee.outgoingCount) else { return nil }
        return (Int(e >> 8), Int(e & 0xFF))
    }

    /// Queue a remote signal (under the lock, from a Send). A signal already
    /// queued is not queued twice (signals OR together at the receiver).
    /// Full: `.notEnoughMemory(bytesAvailable: 0)`, nothing queued.
    func queueRemoteSignal(cluster: Int, index: Int) throws(KernelError) {
        let e = UInt16(cluster << 8 | index)
        let count = state.pointee.outgoingCount
        var i = 0
        while i < count {
            if state.pointee.outgoing[i] == e { return }
            i += 1
        }
        guard count < outgoingSignalLimit else { throw .notEnoughMemory(bytesAvailable: 0) }
        state.pointee.outgoing[count] = e
        state.pointee.outgoingCount = count + 1
    }

    /// Notification Export / Unexport (labels `notificationExport`,
    /// `notificationUnexport`; index in mr0). Export copies the invoked
    /// capability (write right, non-zero badge, else `.invalidCapability`)
    /// into the empty entry (else `.deleteFirst`) as a derived copy: deleting
    /// or revoking an ancestor removes it. Unexport deletes the entry if it
    /// names the invoked capability's notification (else
    /// `.invalidCapability`; empty: `.failedLookup`).
    func invokeNotification(_ slot: SlotRef, _ label: InvocationLabel, caller: TCBRef) throws(KernelError) {
        guard caller.pointee.messageInfo.length >= 1 else { throw .truncatedMessage }
        let cap = slot.pointee.cap
        let index = caller.pointee.mr[0]
        guard index < Word(exportLimit) else { throw .range(min: 0, max: Word(exportLimit) - 1) }
        let entry = exportSlot(Int(index))
        guard cap.rights.contains(.write) else { throw .invalidCapability(index: 0) }
        if label == .notificationExport {
            guard cap.badge != 0 else { throw .invalidCapability(index: 0) }
            guard entry.pointee.cap.isNull else { throw .deleteFirst }
            insertCopy(try derive(slot), from: slot, into: entry)
        } else {
            guard !entry.pointee.cap.isNull else { throw .failedLookup(source: false, .missingCapability(bitsLeft: 0)) }
            guard entry.pointee.cap.object == cap.object else { throw .invalidCapability(index: 0) }
            try deleteSlot(entry)
        }
    }

    /// InterKernel IssueRemote(cluster: mr0, index: mr1, slot: mr2 of the
    /// CNode named by extra cap 0): a `remoteNotification` capability with
    /// the write right, for export `index` of `cluster`. `.range` for a
    /// cluster that is not another one of this machine, an index >=
    /// `exportLimit`, or a slot outside the CNode; `.deleteFirst` if occupied.
    func invokeInterKernel(_ slot: SlotRef, _ label: InvocationLabel, caller: TCBRef) throws(KernelError) {
        guard label == .interKernelIssueRemote else { throw .illegalOperation }
        let info = caller.pointee.messageInfo
        guard info.length >= 3, info.extraCaps >= 1 else { throw .truncatedMessage }
        let mr = caller.pointee.mr
        let count = Word(state.pointee.clusterCount)
        guard mr[0] < count, mr[0] != Word(state.pointee.cluster) else { throw .range(min: 0, max: count - 1) }
        guard mr[1] < Word(exportLimit) else { throw .range(min: 0, max: Word(exportLimit) - 1) }
        let node = try lookupExtraCap(caller, 0).pointee.cap
        guard node.type == .cnode else { throw .invalidCapability(index: 1) }
        let slots = Word(1) << Word(node.bits)
        guard mr[2] < slots else { throw .range(min: 0, max: slots - 1) }
        let dest = cnodeSlot(node, mr[2])
        guard dest.pointee.cap.isNull else { throw .deleteFirst }
        insertNew(
            Capability(type: .remoteNotification, rights: .write, bits: UInt8(mr[0]), small: 0, object: 0, word: mr[1]),
            parent: slot, into: dest)
    }

    // MARK: Observation (for drivers and tests)

    /// The thread the kernel runs now on core 0 (nil: idle).
    public var currentThread: TCBRef? { node(0).pointee.current }
    /// The thread the kernel runs now on `core` (nil: idle, or no such core).
    public func currentThread(core: Int) -> TCBRef? {
        core >= 0 && core < cores ? node(core).pointee.current : nil
    }
    public var rootThread: TCBRef { state.pointee.rootThread! }
    /// The root thread's CNode capability (slots addressed by number).
    public var rootCNode: Capability { cnodeSlot(.cnode(state.pointee.rootCNode, radix: 0), RootSlot.cnode).pointee.cap }
    /// The capability in slot `index` of the root CNode.
    public func rootSlot(_ index: Word) -> Capability {
        cnodeSlot(.cnode(state.pointee.rootCNode, radix: 0), index).pointee.cap
    }
    /// The capability in slot `index` of a CNode capability.
    public func slot(_ node: Capability, _ index: Word) -> Capability { cnodeSlot(node, index).pointee.cap }
    /// The TCB a thread capability names.
    public func thread(_ cap: Capability) -> TCBRef? { cap.type == .tcb ? tcbRef(object: cap.object) : nil }
    public func endpoint(_ cap: Capability) -> EndpointRef? {
        cap.type == .endpoint ? EndpointRef(bitPattern: cap.object) : nil
    }
    public func notification(_ cap: Capability) -> NotificationRef? {
        cap.type == .notification ? NotificationRef(bitPattern: cap.object) : nil
    }
    /// The capability in export entry `index` (null: empty or out of range).
    public func exported(_ index: Int) -> Capability {
        index >= 0 && index < exportLimit ? exportSlot(index).pointee.cap : .null
    }
    /// Outgoing remote signals queued and not yet taken.
    public var outgoingSignalCount: Int { state.pointee.outgoingCount }
}
