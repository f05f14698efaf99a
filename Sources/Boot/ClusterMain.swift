import Arch
import ArchAsm
import BigLock
import Cluster
import InterKernel
import Kernel
import Synchronization

/// How long a cluster waits for its cores, or for the other clusters, before
/// it reports which one is missing (virtual-counter seconds).
let bringUpTimeoutSeconds: UInt64 = 20

/// Every core enters its cluster here (entry.S `cmk_enter_cluster`): MMU on
/// with the cluster's tables, SP on the core's kernel stack, TPIDR_EL2 = the
/// core's CoreState. From here on the kernel globals are this cluster's own.
@_cdecl("cmk_cluster_entry")
func clusterEntry(_ coreStateAddress: UInt64) -> Never {
    let state = UnsafeMutablePointer<UInt64>(bitPattern: UInt(coreStateAddress))!
    let index = Int(state[CoreState.indexInCluster])
    let record = ClusterView.record

    guard record[ClusterRecord.magic] == ClusterRecord.magicValue else {
        panic("cluster record missing at", UInt64(UInt(bitPattern: record)))
    }
    guard CPU.mpidr == state[CoreState.mpidr] else {
        panic("core started with the wrong MPIDR; expected", state[CoreState.mpidr])
    }
    if index == 0 {
        // First core, before any other core of the cluster runs: set up the
        // cluster's globals that need run-time values.
        Scratch.format()
        KernelGlobals.controlPage = UnsafeMutableRawPointer(bitPattern: UInt(record[ClusterRecord.channelBase]))!
        KernelGlobals.consoleLock = ChannelControl.consoleLock(KernelGlobals.controlPage!)
        // The cluster's big lock, of the topology's kind, in the private area.
        guard let kind = ClusterLock.Kind(rawValue: record[ClusterRecord.lockKind]) else {
            panic("unknown big-lock kind", record[ClusterRecord.lockKind])
        }
        let cores = record[ClusterRecord.coreMask].nonzeroBitCount
        let layout = PartitionLayout(privateImageSize: record[ClusterRecord.privateImageSize], coreCount: cores)
        let lock = ClusterLock(
            formatting: UnsafeMutableRawPointer(bitPattern: UInt(Machine.privateBase + layout.lockOffset))!,
            kind: kind, cores: cores, waitHint: { cmk_cpu_relax() })
        // The cluster's kernel, on the partition's free memory (VA = PA).
        let free = record[ClusterRecord.partitionBase] + record[ClusterRecord.freeOffset]
        let size = record[ClusterRecord.partitionSize] - record[ClusterRecord.freeOffset]
        guard let kernel = ClusterKernel.boot(
            memory: UnsafeMutableRawPointer(bitPattern: UInt(free))!, size: Int(size),
            // 512 root slots: the boot's below 224, the Untyped from 224,
            // the root task's own from 256 (RootTaskBringUp.firstFree).
            rootRadix: RootTaskBringUp.rootRadix,
            // Preemption points ask whether this core's tick is due (armed
            // only while a user thread runs: never during boot).
            preemptionPending: { WakeTimer.due }, lock: lock, cores: cores,
            cluster: Int(record[ClusterRecord.clusterId]), clusterCount: Int(record[ClusterRecord.clusterCount]))
        else {
            panic("the cluster kernel refused its memory at", free)
        }
        KernelGlobals.kernel = kernel
        UserIRQ.configure(kernel)
        ChannelBringUp.setUp(record: record)
    }
    let bigLock = KernelGlobals.kernel!.lock

    guard GICv3.initThisCore() else { panic("no GICv3 redistributor for this core's MPIDR", state[CoreState.mpidr]) }

    // Enter the kernel under the cluster's big lock.
    bigLock.acquire(core: index)
    state[CoreState.state] = CoreRunState.up
    KernelGlobals.coresUp += 1
    bigLock.release(core: index)

    if index == 0 { ClusterBringUp.run(state: state, record: record) }
    // This core runs the user threads the kernel gives it (the root task
    // may move a thread here with SetAffinity; the reschedule IPI says so),
    // and with a guest of one vCPU per core, its vCPU thread once the boot
    // made it (`UserRun.next` hands it to `GuestBringUp.secondary`).
    PMU.enableForUser()  // EL0 reads the counters (docs/bench-ipc.md)
    UserRun.idle(core: index)
}

/// A core with nothing to do waits for an interrupt (they are masked; WFI
/// still wakes on a pending one, which the doorbell will use).
func idle() -> Never {
    while true { CPU.waitForInterrupt() }
}

/// The cluster's own record, at a fixed private virtual address.
enum ClusterView {
    static var layoutWithoutCores: PartitionLayout {
        PartitionLayout(privateImageSize: cmk_bss_end() - cmk_private_start(), coreCount: 0)
    }
    static var record: UnsafeMutablePointer<UInt64> {
        UnsafeMutablePointer(bitPattern: UInt(Machine.privateBase + layoutWithoutCores.recordOffset))!
    }
}

/// What the first core of a cluster does once it is in: start the rest of
/// the cluster, prove the cluster's data is private, report, and (on the boot
/// cluster) wait for every cluster and power off.
enum ClusterBringUp {
    static func run(state: UnsafeMutablePointer<UInt64>, record: UnsafeMutablePointer<UInt64>) -> Never {
        let clusterId = record[ClusterRecord.clusterId]
        let clusterCount = record[ClusterRecord.clusterCount]
        let mask = record[ClusterRecord.coreMask]
        let coreCount = mask.nonzeroBitCount
        let descriptor = ClusterDescriptor(
            partition: Region(base: record[ClusterRecord.partitionBase], size: record[ClusterRecord.partitionSize]),
            coreMask: mask)
        let layout = PartitionLayout(
            privateImageSize: record[ClusterRecord.privateImageSize], coreCount: coreCount)
        let control = UnsafeMutableRawPointer(bitPattern: UInt(record[ClusterRecord.channelBase]))!

        // Start the other cores of this cluster.
        for i in 1..<max(coreCount, 1) {
            let startRecord = descriptor.partition.base + layout.coreStateOffset(i)
                + UInt64(CoreState.startRecordByteOffset)
            let peer = UnsafeMutablePointer<UInt64>(bitPattern: UInt(Machine.privateBase + layout.coreStateOffset(i)))!
            peer[CoreState.state] = CoreRunState.starting
            let result = PSCI.startCore(
                mpidr: peer[CoreState.mpidr], entry: cmk_secondary_entry_address(), context: startRecord)
            guard result == .success else {
                panic("PSCI CPU_ON failed (does QEMU have every core of the topology?) for core", decimal: Int(peer[CoreState.coreId]))
            }
        }
        let bigLock = KernelGlobals.kernel!.lock
        let deadline = CPU.counter + bringUpTimeoutSeconds * CPU.counterFrequency
        while true {
            bigLock.acquire(core: 0)
            let up = KernelGlobals.coresUp
            bigLock.release(core: 0)
            if up == coreCount { break }
            CPU.relax()
            if CPU.counter > deadline { panic("cores of this cluster did not come up; cores up:", decimal: up) }
        }

        checkPrivateData(clusterId: clusterId, clusterCount: clusterCount, control: control, descriptor: descriptor)

        Console.begin()
        Console.put("cmk: cluster ")
        Console.decimal(clusterId)
        Console.put(" up cores=")
        Console.coreList(mask)
        Console.put(" data=")
        Console.hexRange(descriptor.partition.base, descriptor.partition.base + record[ClusterRecord.privateImageSize])
        Console.end()

        // From here until the cluster counts itself done, a failure of this
        // first core stops only this cluster (`ClusterFailures`), unless a
        // test asked for the legacy whole-machine failure (`--inject KIND`).
        let inject = record[ClusterRecord.inject]
        let injectKind = FaultInjection.kind(inject)
        let alone = inject == FaultInjection.none || FaultInjection.namesCluster(inject)
        KernelGlobals.failAlone = alone
        // Releasing: our up line is out before a peer that sees the bit may
        // declare us failed for missing the channel rendezvous.
        ChannelControl.counter(.clustersUp, control).pointee.bitwiseOr(1 << clusterId, ordering: .releasing)
        if alone && injectKind != FaultInjection.flood { FaultInjector.run(injectKind, clusterId: Int(clusterId)) }

        let experiment = ExperimentRequest(words: { record[ClusterRecord.experiment + $0] })
        ChannelBringUp.run(
            clusterId: Int(clusterId), clusterCount: Int(clusterCount), control: control, experiment: experiment,
            flood: injectKind == FaultInjection.flood)

        if !alone { FaultInjector.run(injectKind, clusterId: Int(clusterId)) }
        // The root task runs at EL0 until it suspends itself; the boot goes
        // on in `afterRootTask` (on this core, lock not held).
        RootTaskBringUp.launch(record: record)
        afterRootTask()
    }

    /// The rest of the first core's boot, after the root task (or without
    /// one): count this cluster done, end the boot (the boot cluster), run
    /// the guest's vCPUs if there is a guest.
    static func afterRootTask() -> Never {
        let record = ClusterView.record
        let clusterId = record[ClusterRecord.clusterId]
        let clusterCount = record[ClusterRecord.clusterCount]
        let mask = record[ClusterRecord.coreMask]
        let coreCount = mask.nonzeroBitCount
        let control = UnsafeMutableRawPointer(bitPattern: UInt(record[ClusterRecord.channelBase]))!
        // With a guest, every cluster that runs one of its vCPUs goes on to
        // it once it counted itself done (below).
        let failed = KernelGlobals.failedClusters
        let placement = record[ClusterRecord.guest + 6]
        let runsVCPU = failed == 0 && record[ClusterRecord.guest + 7] != 0
            && (placement == GuestImage.Placement.core.rawValue || record[ClusterRecord.guest + 7] > clusterId)
        // Counted from here: a boot experiment may have taken a while.
        let doneDeadline = CPU.counter &+ bringUpTimeoutSeconds * CPU.counterFrequency

        // Releasing: our lines are out before the boot cluster may count us.
        ChannelControl.counter(.bootCores, control).pointee.wrappingAdd(UInt64(coreCount), ordering: .relaxed)
        ChannelControl.counter(.bootDone, control).pointee.bitwiseOr(1 << clusterId, ordering: .releasing)
        KernelGlobals.failAlone = false

        // The cluster holding core 0 ends the boot; if it failed, the lowest
        // cluster that did not.
        let ender = mask & 1 != 0 && failed & 1 == 0
            || (failed & 1 != 0 && clusterId == UInt64((~failed).trailingZeroBitCount))
        if ender {
            let all = ClusterFailures.all(Int(clusterCount))
            // Acquiring: pairs with every cluster's releasing bitwise-or.
            let done = ChannelControl.counter(.bootDone, control)
            while (done.pointee.load(ordering: .acquiring) | KernelGlobals.failedClusters) & all != all {
                CPU.relax()
                if CPU.counter > doneDeadline {
                    ChannelBringUp.declareMissing(done.pointee.load(ordering: .acquiring), all: all, "did not finish its boot")
                }
            }
            let failedNow = KernelGlobals.failedClusters
            Console.begin()
            if failedNow == 0 {
                Console.put("cmk: boot ok clusters=")
                Console.decimal(clusterCount)
            } else {
                Console.put("cmk: boot ended clusters=")
                Console.decimal(clusterCount)
                Console.put(" failed=")
                Console.coreList(failedNow)
            }
            Console.put(" cores=")
            Console.decimal(ChannelControl.counter(.bootCores, control).pointee.load(ordering: .relaxed))
            Console.end()
            // With a guest in the boot information, the boot cluster runs it
            // instead of powering off (`cmk guest`).
            if runsVCPU && failedNow == 0 { GuestBringUp.start(record: record, coreIndex: 0) }
            PSCI.powerOff()
        }
        if runsVCPU { GuestBringUp.start(record: record, coreIndex: 0) }
        idle()
    }

    /// The private-data check (docs/boot.md): pristine value, write our id,
    /// rendezvous with every cluster, read our id back, and ask the MMU where
    /// the global really lives.
    static func checkPrivateData(
        clusterId: UInt64, clusterCount: UInt64, control: UnsafeMutableRawPointer,
        descriptor: ClusterDescriptor
    ) {
        let pristine = clusterIdentity
        guard pristine == pristineIdentity else {
            panic("kernel global not pristine before the write (shared .data?); found", pristine)
        }
        clusterIdentity = clusterId

        // Releasing/acquiring: not needed for the private global (only this
        // cluster touches it) but it orders the rendezvous itself.
        let arrived = ChannelControl.counter(.bootArrived, control)
        arrived.pointee.wrappingAdd(1, ordering: .releasing)
        let deadline = CPU.counter + bringUpTimeoutSeconds * CPU.counterFrequency
        while arrived.pointee.load(ordering: .acquiring) < clusterCount {
            CPU.relax()
            if CPU.counter > deadline {
                panic("clusters missing at the private-data rendezvous; arrived:", decimal: Int(arrived.pointee.load(ordering: .relaxed)))
            }
        }

        let readBack = clusterIdentity
        let va = withUnsafePointer(to: &clusterIdentity) { UInt64(UInt(bitPattern: $0)) }
        guard let pa = CPU.physicalAddress(of: va) else { panic("kernel global does not translate, VA", va) }
        let expected = descriptor.partition.base + (va - Machine.privateBase)
        guard readBack == clusterId else { panic("kernel global overwritten by another cluster; found", readBack) }
        guard pa == expected else { panic("kernel global maps outside this cluster's partition, PA", pa) }

        Console.begin()
        Console.put("cmk: cluster ")
        Console.decimal(clusterId)
        Console.put(" private va=")
        Console.hex(va)
        Console.put(" pa=")
        Console.hex(pa)
        Console.put(" value=")
        Console.decimal(readBack)
        Console.put(" ok")
        Console.end()
    }
}

/// Provoke the fault a test asked for (BootInfo word 14, `cmk boot --inject`).
enum FaultInjector {
    static func run(_ kind: UInt64, clusterId: Int) {
        switch kind {
        case FaultInjection.dataAbort:
            _ = cmk_mmio_read64(0x1000)  // volatile: the load really happens
        case FaultInjection.stackOverflow:
            var sink: UInt64 = 0
            _ = recurse(1, &sink)
        case FaultInjection.panic:
            panic("injected panic (cmk boot --inject panic)")
        case FaultInjection.hang:
            // Silent: no report, no last message; a peer notices by its deadline.
            ClusterFailures.park()
        case FaultInjection.holdConsole:
            // Die holding the one lock clusters share.
            if let lock = KernelGlobals.consoleLock { while !lock.pointee.tryAcquire() { CPU.relax() } }
            ClusterFailures.park()
        case FaultInjection.readOtherGICR:
            let info = bootInfo()
            let core = info.clusters[(clusterId + 1) % info.clusterCount].firstCore
            let frame = QemuVirt.redistributor(ofCore: core)
            _ = cmk_mmio_read64(frame + 8)  // GICR_TYPER
            panic("another core's redistributor is mapped here; reached", frame)
        case FaultInjection.readOther, FaultInjection.writeOther:
            // Another cluster's partition, at its physical address, through
            // our own tables: it must not be mapped, so this faults and the
            // exception report names the address (FAR).
            let target = otherPartition(clusterId)
            if kind == FaultInjection.readOther {
                _ = cmk_mmio_read64(target)
            } else {
                cmk_mmio_write64(target, 0xBAD)
            }
            panic("another cluster's partition is mapped here; reached", target)
        default:
            return
        }
    }

    /// The base of the next cluster's partition (the boot information is
    /// mapped read-only in every cluster).
    static func otherPartition(_ me: Int) -> UInt64 {
        let info = bootInfo()
        return info.clusters[(me + 1) % info.clusterCount].partition.base
    }

    static func bootInfo() -> BootInfo {
        let info = decodedBootInfo()
        guard info.clusterCount > 1 else { panic("this --inject kind needs two clusters") }
        return info
    }

    /// Not a tail call (it adds after the call), with a frame the optimiser
    /// cannot drop: each level really takes stack.
    @inline(never)
    static func recurse(_ depth: UInt64, _ sink: UnsafeMutablePointer<UInt64>) -> UInt64 {
        var frame = InlineArray<32, UInt64>(repeating: depth)
        withUnsafeMutablePointer(to: &frame) { sink.pointee &+= UInt64(UInt(bitPattern: $0)) }
        return recurse(depth &+ 1, sink) &+ frame[Int(depth % 32)]
    }
}
