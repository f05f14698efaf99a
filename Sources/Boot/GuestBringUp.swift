import Arch
import ArchAsm
import Cluster
import Kernel
import BigLock
import InterKernel
import VMM

/// Start the Linux guest the boot information names (`cmk guest`): after the
/// boot, the first core of every cluster that runs vCPUs (`GuestVCPUMap`:
/// one per cluster, or one per core), as the root thread, makes a VCPU and
/// a thread for each of them from its Untyped memory through real system
/// calls, binds them, gives thread j the affinity of core j, resumes them,
/// and suspends itself. The kernel's scheduler then runs each vCPU thread
/// on its core like any other thread: the other cores learn it from the
/// reschedule IPI the kernel asks for. vCPU 0 enters the guest at once;
/// every other vCPU waits, serving the channel, for the guest's PSCI CPU_ON
/// (`waitForStart`).
///
/// Lines: `cmk: guest start vcpus=N entry=0x... dtb=0x...` (cluster 0),
/// `cmk: guest vcpu V on cluster I` (each vCPU as it starts).
enum GuestBringUp {
    /// Root-CNode slots of the guest's objects: vCPU j of this cluster's
    /// VCPU and thread, and the VMM's area (an Untyped the root thread gives it).
    static func vcpuSlot(_ j: Int) -> Word { 64 + Word(j) }
    static func threadSlot(_ j: Int) -> Word { 128 + Word(j) }
    static let areaSlot: Word = 42
    /// The vCPU threads' priority: below the root thread's 255.
    static let vcpuPriority: Word = 100

    @inline(never)
    static func start(record: UnsafeMutablePointer<UInt64>, coreIndex: Int) -> Never {
        let cluster = Int(record[ClusterRecord.clusterId])
        guard let image = GuestImage(words: { record[ClusterRecord.guest + $0] }),
            image.fits(in: Region(base: record[ClusterRecord.guestBase], size: record[ClusterRecord.guestSize]))
        else { panic("guest record missing or outside the guest region") }
        let stage2Root = record[ClusterRecord.stage2Root]
        guard stage2Root != 0 else { panic("no stage-2 tables for the guest (empty guest region?)") }
        let info = decodedBootInfo()
        guard let map = GuestVCPUMap(
            placement: image.placement, vcpuCount: image.vcpuCount, clusterCount: info.clusterCount,
            coresIn: { info.clusters[$0].coreCount })
        else { panic("guest: the vCPU count does not fit the topology; vcpus:", decimal: image.vcpuCount) }
        let local = map.vcpus(inCluster: cluster)
        let cores = record[ClusterRecord.coreMask].nonzeroBitCount
        guard !local.isEmpty, local.count <= cores, local.count <= 64 else { panic("guest: this cluster runs no vCPU") }
        let kernel = KernelGlobals.kernel!

        // The VMM's area, then each vCPU and its thread, as the root thread
        // would make them.
        let untyped = RootThread.largestUntyped(kernel)
        let cnode = RootSlot.cnode
        let areaBits = GuestGlobals.areaBits(cores: local.count)
        RootThread.invoke(kernel, untyped, .untypedRetype, [ObjectType.untyped.rawValue, Word(areaBits), 0, 0, areaSlot, 1], extraCaps: cnode)
        GuestGlobals.setUp(
            image: image, guest: Region(base: record[ClusterRecord.guestBase], size: record[ClusterRecord.guestSize]),
            cluster: cluster, map: map, memory: UnsafeMutableRawPointer(bitPattern: kernel.rootSlot(areaSlot).object)!,
            bytes: 1 << areaBits,
            mpidrOfVCPU: { v in
                let home = map.home(ofVCPU: v)!
                return QemuVirt.mpidr(ofCore: info.clusters[home.cluster].core(at: home.core))
            })
        for j in 0..<local.count {
            let vcpuSlot = vcpuSlot(j), threadSlot = threadSlot(j)
            RootThread.invoke(kernel, untyped, .untypedRetype, [ObjectType.vcpu.rawValue, 0, 0, 0, vcpuSlot, 1], extraCaps: cnode)
            RootThread.invoke(kernel, untyped, .untypedRetype, [ObjectType.tcb.rawValue, 0, 0, 0, threadSlot, 1], extraCaps: cnode)
            RootThread.invoke(kernel, threadSlot, .tcbConfigure, [0, 0, 0, 0, 0, 0], extraCaps: cnode)
            RootThread.invoke(kernel, threadSlot, .tcbSetPriority, [vcpuPriority, vcpuPriority, 0, 0, 0, 0], extraCaps: cnode)
            // A new thread runs on core 0 (the root thread's); vCPU j on core j.
            if j != 0 { RootThread.invoke(kernel, threadSlot, .tcbSetAffinity, [Word(j), 0, 0, 0, 0, 0], extraCaps: cnode) }
            RootThread.invoke(kernel, vcpuSlot, .vcpuSetIndex, [Word(local.lowerBound + j), 0, 0, 0, 0, 0], extraCaps: cnode)
            RootThread.invoke(kernel, vcpuSlot, .vcpuSetTCB, [0, 0, 0, 0, 0, 0], extraCaps: threadSlot)
            guard let vcpu = VCPURef(bitPattern: kernel.rootSlot(vcpuSlot).object) else { panic("guest: no VCPU object") }
            VCPURun.reset(vcpu, entry: image.kernel.base, context: image.deviceTree.base)
            RootThread.invoke(kernel, threadSlot, .tcbResume, [0, 0, 0, 0, 0, 0], extraCaps: cnode)
        }
        // The root thread's boot work is done: it stops, and the scheduler
        // picks the vCPU thread of each core.
        RootThread.invoke(kernel, RootSlot.thread, .tcbSuspend, [0, 0, 0, 0, 0, 0], extraCaps: cnode)
        if let violation = kernel.checkInvariants() { panic(violation.message, UInt64(violation.address)) }
        guard kernel.currentThread(core: 0) == VCPURef(bitPattern: kernel.rootSlot(vcpuSlot(0)).object)!.pointee.tcb else {
            panic("guest: the scheduler did not choose the vCPU thread")
        }

        prepareCore(vcpu: local.lowerBound)
        if cluster == 0 {
            // The console's owner: the real UART's input comes here.
            GICv3.routeSharedInterrupt(QemuVirt.uartInterrupt, toMPIDR: CPU.mpidr, priority: 0xA0)
            PL011.enableReceiveInterrupt()
        }
        GuestIsolation.check(record)
        // The other cores' vCPU threads are theirs now: the kernel asked
        // for a reschedule IPI on each (the doorbell SGI).
        var others = kernel.takeRescheduleRequests()
        while others != 0 {
            let j = others.trailingZeroBitCount
            others &= others - 1
            if j < local.count && j != 0 { GICv3.ring(mpidr: GuestGlobals.coreMPIDR(ofVCPU: local.lowerBound + j)) }
        }
        guard local.lowerBound == 0 else { waitForStart(coreIndex: coreIndex) }
        GuestGlobals.here.pointee.running = true

        Console.begin()
        Console.put("cmk: guest start vcpus=")
        Console.decimal(image.vcpuCount)
        Console.put(" entry=")
        Console.hex(image.kernel.base)
        Console.put(" dtb=")
        Console.hex(image.deviceTree.base)
        Console.end()
        started(0)
        VCPURun.runCurrent(coreIndex: coreIndex)
    }

    /// This core runs vCPU `v` from now on: stage 2, its MPIDR, the GIC's
    /// split EOI, the timer and maintenance PPIs.
    static func prepareCore(vcpu v: Int) {
        Virtualization.configureCore(stage2Root: ClusterView.record[ClusterRecord.stage2Root], vmpidr: GuestPSCI.affinity(ofVCPU: v))
        GICv3.splitEndOfInterrupt()
        guard GICv3.enablePrivateInterrupt(GuestInterrupts.virtualTimer, priority: 0xA0),
            GICv3.enablePrivateInterrupt(GuestInterrupts.maintenance, priority: 0xA0)
        else { panic("guest: no redistributor for this core") }
    }

    /// The vCPU thread the boot made for `core` (core placement), current
    /// there: the core leaves user threads for it (`UserRun.next`, lock
    /// held). A vCPU thread a user made is not one.
    static func isBootVCPUThread(_ t: TCBRef, core: Int, _ kernel: ClusterKernel) -> Bool {
        guard GuestGlobals.area != 0, core > 0, core < GuestGlobals.localCount,
            ClusterView.record[ClusterRecord.guest + 6] == GuestImage.Placement.core.rawValue
        else { return false }
        return kernel.thread(kernel.rootSlot(threadSlot(core))) == t
    }

    /// Every core but the first, after the boot (core placement), once the
    /// kernel gave it its vCPU thread (lock not held, no user thread
    /// loaded): prepare the core and wait for the vCPU's CPU_ON. Until
    /// then the core ran user threads (the root task's lock threads).
    static func secondary(coreIndex: Int) -> Never {
        prepareCore(vcpu: GuestGlobals.firstVCPU + coreIndex)
        waitForStart(coreIndex: coreIndex)
    }

    static func started(_ v: Int) {
        Console.begin()
        Console.put("cmk: guest vcpu ")
        Console.decimal(v)
        Console.put(" on cluster ")
        Console.decimal(GuestGlobals.cluster)
        Console.end()
    }

    /// A vCPU that is off: wait, serving the channel (asleep between
    /// doorbells), until a CPU_ON for it arrives; then reset it at the entry
    /// with x0 = the context id, tell every vCPU it is on, and enter.
    /// No lost wake-up: a doorbell that arrives after the check stays
    /// pending in the GIC, and WFI returns at once.
    static func waitForStart(coreIndex: Int) -> Never {
        let kernel = KernelGlobals.kernel!
        let endpoint = KernelGlobals.channel!
        let here = GuestGlobals.state(coreIndex)
        while true {
            GuestLock.acquire(core: coreIndex)
            GuestChannel.pump()
            if let reason = GuestChannel.stopRequested { VCPURun.finish(reason) }
            if GuestChannel.shutdownRequested { VCPURun.stopLocal(coreIndex: coreIndex) }
            if here.pointee.startRequested {
                here.pointee.startRequested = false
                let v = GuestGlobals.firstVCPU + coreIndex
                guard let vcpu = kernel.currentThread(core: coreIndex)?.pointee.boundVCPU else {
                    panic("guest: no vCPU thread to start")
                }
                VCPURun.reset(vcpu, entry: here.pointee.startEntry, context: here.pointee.startContext)
                here.pointee.loadedVCPU = nil  // load() must restore the reset EL1 state
                here.pointee.running = true
                GuestChannel.broadcast(vcpu: v, .on)
                GuestLock.release(core: coreIndex)
                started(v)
                VCPURun.runCurrent(coreIndex: coreIndex)
            }
            GuestLock.release(core: coreIndex)
            // Sleep until a doorbell (the first core: the channel's sleep
            // protocol, which also sees messages whose doorbell it missed).
            if coreIndex != 0 {
                CPU.waitForInterrupt()
            } else if endpoint.prepareToSleep() {
                CPU.waitForInterrupt()
                endpoint.finishSleep()
            }
            GICv3.drain()
        }
    }
}

/// Physical interrupts the guest core handles.
enum GuestInterrupts {
    /// The EL1 virtual timer's PPI: passed through as a hardware-linked
    /// virtual interrupt.
    static let virtualTimer: UInt64 = 27
    /// The GIC's maintenance interrupt (list-register refill, EOI resample).
    static let maintenance: UInt64 = 25
}

/// The guest's reach, re-checked from the hardware's own tables: every leaf
/// of this cluster's stage 2 lies in the guest region (the loader checked it
/// once; the kernel checks again when the guest starts and when it ends, so
/// a guest that tried to reach kernel memory is shown to have reached none).
///
/// Line (at the end): `cmk: guest stage2 cluster=I ipa=0xLO-0xHI only ok`
enum GuestIsolation {
    static func check(_ record: UnsafeMutablePointer<UInt64>, report: Bool = false) {
        let guest = Region(base: record[ClusterRecord.guestBase], size: record[ClusterRecord.guestSize])
        let layout = PartitionLayout(
            privateImageSize: record[ClusterRecord.privateImageSize],
            coreCount: record[ClusterRecord.coreMask].nonzeroBitCount)
        let poolPhysical = record[ClusterRecord.partitionBase] + layout.stage2Offset
        guard record[ClusterRecord.stage2Root] == poolPhysical else {
            panic("guest stage-2 root moved; found", record[ClusterRecord.stage2Root])
        }
        let tables = TranslationTables(
            existingPoolPhysical: poolPhysical,
            pool: UnsafeMutableRawPointer(bitPattern: UInt(Machine.privateBase + layout.stage2Offset))!,
            size: PartitionLayout.stage2PoolSize, regime: .stage2)
        var low = UInt64.max, high: UInt64 = 0
        var outside: UInt64? = nil
        tables.forEachLeaf { leaf in
            let target = Region(base: leaf.physical, size: leaf.size)
            if !guest.contains(target) || leaf.virtual != leaf.physical { outside = outside ?? leaf.virtual }
            low = min(low, leaf.virtual)
            high = max(high, leaf.virtual + leaf.size)
        }
        if let outside { panic("guest stage 2 reaches outside the guest region, at IPA", outside) }
        guard report else { return }
        Console.begin()
        Console.put("cmk: guest stage2 cluster=")
        Console.decimal(record[ClusterRecord.clusterId])
        Console.put(" ipa=")
        Console.hexRange(low, high)
        Console.put(" only ok")
        Console.end()
    }
}
