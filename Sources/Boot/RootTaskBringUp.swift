import Arch
import ArchAsm
import BigLock
import Cluster
import Kernel
import UserABI

/// Each cluster's root task (seL4's initial thread), built by the boot and
/// run at EL0 (docs/kernel/abi.md, "The root task").
///
/// The cluster's first core, still playing the root thread, makes the root
/// task's address space with real system calls: a VSpace, its page tables,
/// frames for the image (copied from the boot region's root-task window,
/// where QEMU's loader put it), the IPC buffer, the boot information and
/// the stack, all mapped at `RootTaskLayout`'s addresses; then gives the
/// root thread that VSpace and IPC buffer, sets its registers (PC = the
/// image's entry, SP = the stack's top, x0 = the boot information) and lets
/// it run at EL0. The root thread is the root task: same TCB, same CNode
/// with every Untyped. When it suspends itself the boot goes on
/// (`finished`).
///
/// Lines: `cmk: cluster I user start`, `cmk: cluster I user ipc ok` and
/// `cmk: cluster I user preemption ok ticks=T` come from the root task
/// itself (DebugPutChar).
enum RootTaskBringUp {
    /// The root task runs at EL0 (from `launch` until it suspends itself).
    nonisolated(unsafe) static var running = false

    /// Root-CNode slots for the objects that make up the root task's
    /// address space (its page tables and frames): the top of the root
    /// CNode, [mappingBase, 512): room for an image of (112 - 4 tables - 16
    /// stack frames) = 92 pages.
    static let mappingBase = 400
    static func mappingSlot(_ k: Int) -> Word? {
        k < (1 << rootRadix) - mappingBase ? Word(mappingBase + k) : nil
    }
    /// The debug console's line buffers (an Untyped the boot keeps).
    static let debugSlot: Word = 7
    /// The root CNode's radix (log2 slots), and the slots the root task may
    /// use: [firstFree, freeEnd), between the Untyped and the boot's
    /// mapping slots.
    static let rootRadix = 9
    static let firstFree: Word = 256
    static let freeEnd: Word = Word(mappingBase)

    static let readWrite = Word(CapRights.read.rawValue | CapRights.write.rawValue)
    static let readOnly = Word(CapRights.read.rawValue)
    /// Frame attributes (docs/kernel/vspace.md): bit 0 cacheable, bit 2 execute-never.
    static let code: Word = 1
    static let data: Word = 1 | 4

    /// Build the root task and run it at EL0 on this (the first) core.
    /// Returns only if the boot information carries no root task.
    static func launch(record: UnsafeMutablePointer<UInt64>) {
        let info = decodedBootInfo()
        guard let image = info.rootTask else { return }
        let kernel = KernelGlobals.kernel!
        let cnode = RootSlot.cnode
        let untyped = RootThread.largestUntyped(kernel)
        var next = 0
        func take() -> Word {
            guard let s = mappingSlot(next) else { panic("root task: out of boot slots for its address space") }
            next += 1
            return s
        }
        func retype(_ type: ObjectType, into slot: Word, bits: Word = 0) {
            RootThread.invoke(kernel, untyped, .untypedRetype, [type.rawValue, bits, 0, 0, slot, 1], extraCaps: cnode)
        }
        func object(_ slot: Word) -> UnsafeMutableRawPointer {
            UnsafeMutableRawPointer(bitPattern: kernel.rootSlot(slot).object)!
        }

        // The VSpace and its tables: one level-2 table for the first GiB,
        // level-3 tables for the image's 4 MiB and for the IPC buffer, boot
        // information and stack.
        retype(.vspace, into: RootTaskSlot.vspace)
        let tables: InlineArray<4, UInt64> = [0, RootTaskLayout.imageBase, RootTaskLayout.imageBase + (2 << 20), RootTaskLayout.ipcBuffer]
        for i in 0..<tables.count {
            let slot = take()
            retype(.pageTable, into: slot)
            RootThread.invoke(kernel, slot, .pageTableMap, [tables[i], 0, 0, 0, 0, 0], extraCaps: RootTaskSlot.vspace)
        }
        // The image: file bytes copied, the rest (bss) left zero by Retype.
        let pages = Int((image.memorySize + 4095) / 4096)
        let window = UnsafeRawPointer(bitPattern: UInt(image.physicalAddress))!
        for page in 0..<pages {
            let slot = take()
            retype(.frame, into: slot)
            let offset = UInt64(page) * 4096
            if offset < image.fileSize {
                object(slot).copyMemory(from: window + Int(offset), byteCount: Int(min(4096, image.fileSize - offset)))
            }
            RootThread.invoke(kernel, slot, .frameMap, [RootTaskLayout.imageBase + offset, readWrite, code, 0, 0, 0],
                              extraCaps: RootTaskSlot.vspace)
        }
        // IPC buffer, boot information (read-only), stack.
        retype(.frame, into: RootTaskSlot.ipcBuffer)
        RootThread.invoke(kernel, RootTaskSlot.ipcBuffer, .frameMap, [RootTaskLayout.ipcBuffer, readWrite, data, 0, 0, 0],
                          extraCaps: RootTaskSlot.vspace)
        retype(.frame, into: RootTaskSlot.bootInfo)
        fillBootInformation(object(RootTaskSlot.bootInfo).assumingMemoryBound(to: UInt64.self), record: record, kernel: kernel)
        object(RootTaskSlot.bootInfo).assumingMemoryBound(to: UInt64.self)[RootTaskBootInfo.fuzzCalls] = image.fuzzCalls
        RootThread.invoke(kernel, RootTaskSlot.bootInfo, .frameMap, [RootTaskLayout.bootInfo, readOnly, data, 0, 0, 0],
                          extraCaps: RootTaskSlot.vspace)
        var address = RootTaskLayout.stackBase
        while address < RootTaskLayout.stackTop {
            let slot = take()
            retype(.frame, into: slot)
            RootThread.invoke(kernel, slot, .frameMap, [address, readWrite, data, 0, 0, 0], extraCaps: RootTaskSlot.vspace)
            address += 4096
        }
        // The debug console's buffers (`DebugConsole.lineBytes` per core).
        let debugBits = DebugConsole.areaBits(cores: kernel.cores)
        retype(.untyped, into: debugSlot, bits: Word(debugBits))
        DebugConsole.area = kernel.rootSlot(debugSlot).object
        DebugConsole.cores = kernel.cores

        // The root thread becomes the root task.
        RootThread.setSpace(kernel, vspace: RootTaskSlot.vspace)
        RootThread.invoke(kernel, RootSlot.thread, .tcbSetIPCBuffer, [RootTaskLayout.ipcBuffer, 0, 0, 0, 0, 0],
                          extraCaps: RootTaskSlot.ipcBuffer)
        if let violation = kernel.checkInvariants() { panic(violation.message, UInt64(violation.address)) }
        let context = kernel.userContext(kernel.rootThread)
        for i in 0..<Frame.words { context[i] = 0 }
        context[Frame.pc] = image.entry
        context[Frame.sp] = RootTaskLayout.stackTop
        context[0] = RootTaskLayout.bootInfo
        running = true
        UserChannel.open(kernel)  // the first core serves the channel from its doorbell
        PMU.enableForUser()  // EL0 reads the counters (docs/bench-ipc.md)
        UserRun.start(core: 0)
    }

    static func fillBootInformation(_ words: UnsafeMutablePointer<UInt64>, record: UnsafeMutablePointer<UInt64>, kernel: ClusterKernel) {
        words[RootTaskBootInfo.magic] = RootTaskBootInfo.magicValue
        words[RootTaskBootInfo.clusterId] = record[ClusterRecord.clusterId]
        words[RootTaskBootInfo.clusterCount] = record[ClusterRecord.clusterCount]
        words[RootTaskBootInfo.cores] = UInt64(record[ClusterRecord.coreMask].nonzeroBitCount)
        var count: UInt64 = 0
        while count < 32, kernel.rootSlot(RootSlot.firstUntyped + count).type == .untyped {
            words[RootTaskBootInfo.untypedSizes + Int(count)] = UInt64(kernel.rootSlot(RootSlot.firstUntyped + count).bits)
            count += 1
        }
        words[RootTaskBootInfo.firstUntyped] = RootSlot.firstUntyped
        words[RootTaskBootInfo.untypedCount] = count
        words[RootTaskBootInfo.firstFreeSlot] = firstFree
        words[RootTaskBootInfo.freeSlotEnd] = freeEnd
        words[RootTaskBootInfo.cnodeRadix] = UInt64(rootRadix)
        words[RootTaskBootInfo.benchmark] = IPCBenchRequest.roundTrips(record)
        // The big lock's name, for the lock lines the root task prints.
        words[RootTaskBootInfo.lockName] = kernel.lock.kind.name.withUTF8Buffer { bytes in
            var name: UInt64 = 0
            for i in 0..<min(bytes.count, 8) { name |= UInt64(bytes[i]) << UInt64(8 * i) }
            return name
        }
        words[RootTaskBootInfo.counterFrequency] = CPU.counterFrequency
        if let request = ExperimentRequest(words: { record[ClusterRecord.experiment + $0] }),
            case .lock(let workload, let hold, let delay, let durationTicks) = request
        {
            words[RootTaskBootInfo.lockExperiment] = 1 + workload
            words[RootTaskBootInfo.lockHold] = hold
            words[RootTaskBootInfo.lockDelay] = delay
            words[RootTaskBootInfo.lockTicks] = durationTicks
        }
        // Clusters that had not failed when this root task started (the
        // boot's channel phase is over: every cluster passed its rendezvous
        // or was declared failed).
        words[RootTaskBootInfo.liveClusters] =
            ClusterFailures.all(Int(record[ClusterRecord.clusterCount])) & ~KernelGlobals.failedClusters
    }

    /// The root task suspended itself (lock not held): the boot takes the
    /// root thread back (the guest's set-up still plays it) and goes on.
    static func finished() -> Never {
        UserChannel.close()
        KernelGlobals.kernel!.resumeRootThreadForBoot()
        ClusterBringUp.afterRootTask()
    }
}
