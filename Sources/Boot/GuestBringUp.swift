import Arch
import ArchAsm
import Cluster
import Kernel
import BigLock
import InterKernel
import VMM

/// Start the Linux guest the boot information names (`cmk guest`): after the
/// boot, the first core of every cluster that runs a vCPU (cluster i runs
/// vCPU i), as the root thread, makes a VCPU and a thread for it from its
/// Untyped memory through real system calls, binds them, resumes the
/// thread, and suspends itself. The scheduler then runs the vCPU thread like
/// any other: on cluster 0 the core enters the guest at once; elsewhere it
/// waits on the channel for the guest's PSCI CPU_ON (`waitForStart`).
///
/// Lines: `cmk: guest start vcpus=N entry=0x... dtb=0x...` (cluster 0),
/// `cmk: guest vcpu I on cluster I` (each vCPU as it starts).
enum GuestBringUp {
    /// Root-CNode slots of the guest's objects.
    static let vcpuSlot: Word = 40
    static let threadSlot: Word = 41
    /// The VMM's state: an Untyped of 2^vmmBits bytes the root thread gives it.
    static let vmmSlot: Word = 42
    static let vmmBits: Word = 13
    /// The vCPU thread's priority: below the root thread's 255.
    static let vcpuPriority: Word = 100

    @inline(never)
    static func start(record: UnsafeMutablePointer<UInt64>, coreIndex: Int) -> Never {
        let cluster = Int(record[ClusterRecord.clusterId])
        guard let image = GuestImage(words: { record[ClusterRecord.guest + $0] }),
            image.fits(in: Region(base: record[ClusterRecord.guestBase], size: record[ClusterRecord.guestSize]))
        else { panic("guest record missing or outside the guest region") }
        let stage2Root = record[ClusterRecord.stage2Root]
        guard stage2Root != 0 else { panic("no stage-2 tables for the guest (empty guest region?)") }
        let kernel = KernelGlobals.kernel!

        // The vCPU and its thread, as the root thread would make them.
        let untyped = RootThread.largestUntyped(kernel)
        let cnode = RootSlot.cnode
        RootThread.invoke(kernel, untyped, .untypedRetype, [ObjectType.vcpu.rawValue, 0, 0, 0, vcpuSlot, 1], extraCaps: cnode)
        RootThread.invoke(kernel, untyped, .untypedRetype, [ObjectType.tcb.rawValue, 0, 0, 0, threadSlot, 1], extraCaps: cnode)
        RootThread.invoke(kernel, threadSlot, .tcbConfigure, [0, 0, 0, 0, 0, 0], extraCaps: cnode)
        RootThread.invoke(kernel, threadSlot, .tcbSetPriority, [vcpuPriority, vcpuPriority, 0, 0, 0, 0], extraCaps: cnode)
        RootThread.invoke(kernel, vcpuSlot, .vcpuSetIndex, [Word(cluster), 0, 0, 0, 0, 0], extraCaps: cnode)
        RootThread.invoke(kernel, vcpuSlot, .vcpuSetTCB, [0, 0, 0, 0, 0, 0], extraCaps: threadSlot)
        RootThread.invoke(kernel, untyped, .untypedRetype, [ObjectType.untyped.rawValue, vmmBits, 0, 0, vmmSlot, 1], extraCaps: cnode)
        guard let vcpu = VCPURef(bitPattern: kernel.rootSlot(vcpuSlot).object) else { panic("guest: no VCPU object") }
        VCPURun.reset(vcpu, entry: image.kernel.base, context: image.deviceTree.base)
        RootThread.invoke(kernel, threadSlot, .tcbResume, [0, 0, 0, 0, 0, 0], extraCaps: cnode)
        // The root thread's boot work is done: it stops, and the scheduler
        // picks the vCPU thread.
        RootThread.invoke(kernel, RootSlot.thread, .tcbSuspend, [0, 0, 0, 0, 0, 0], extraCaps: cnode)
        if let violation = kernel.checkInvariants() { panic(violation.message, UInt64(violation.address)) }
        guard kernel.currentThread == vcpu.pointee.tcb else { panic("guest: the scheduler did not choose the vCPU thread") }

        // This core runs guests from now on.
        Virtualization.configureCore(stage2Root: stage2Root, vmpidr: GuestPSCI.affinity(ofVCPU: cluster))
        GICv3.splitEndOfInterrupt()
        guard GICv3.enablePrivateInterrupt(GuestInterrupts.virtualTimer, priority: 0xA0),
            GICv3.enablePrivateInterrupt(GuestInterrupts.maintenance, priority: 0xA0)
        else { panic("guest: no redistributor for this core") }
        if cluster == 0 {
            // The console's owner: the real UART's input comes here.
            GICv3.routeSharedInterrupt(QemuVirt.uartInterrupt, toMPIDR: CPU.mpidr, priority: 0xA0)
            PL011.enableReceiveInterrupt()
        }
        GuestGlobals.setUp(
            image: image, guest: Region(base: record[ClusterRecord.guestBase], size: record[ClusterRecord.guestSize]),
            cluster: cluster, memory: UnsafeMutableRawPointer(bitPattern: kernel.rootSlot(vmmSlot).object)!,
            bytes: 1 << Int(vmmBits))
        GuestGlobals.coreIndex = coreIndex
        GuestIsolation.check(record)
        guard cluster == 0 else { waitForStart(coreIndex: coreIndex) }
        GuestChannel.running = true

        Console.begin()
        Console.put("cmk: guest start vcpus=")
        Console.decimal(image.vcpuCount)
        Console.put(" entry=")
        Console.hex(image.kernel.base)
        Console.put(" dtb=")
        Console.hex(image.deviceTree.base)
        Console.end()
        started(cluster)
        VCPURun.runCurrent(coreIndex: coreIndex)
    }

    static func started(_ cluster: Int) {
        Console.begin()
        Console.put("cmk: guest vcpu ")
        Console.decimal(cluster)
        Console.put(" on cluster ")
        Console.decimal(cluster)
        Console.end()
    }

    /// A vCPU that is off: wait, serving the channel (asleep between
    /// doorbells), until a CPU_ON for it arrives; then reset it at the entry
    /// with x0 = the context id, tell every cluster it is on, and enter.
    static func waitForStart(coreIndex: Int) -> Never {
        let kernel = KernelGlobals.kernel!
        let endpoint = KernelGlobals.channel!
        while true {
            kernel.lock.acquire(core: coreIndex)
            GuestChannel.pump()
            if GuestChannel.shutdownRequested { VCPURun.stopSecondary(coreIndex: coreIndex) }
            if GuestChannel.startRequested {
                GuestChannel.startRequested = false
                let v = GuestGlobals.vm.pointee.vcpu
                guard let vcpu = kernel.currentThread?.pointee.boundVCPU else { panic("guest: no vCPU thread to start") }
                VCPURun.reset(vcpu, entry: GuestChannel.startEntry, context: GuestChannel.startContext)
                GuestGlobals.loadedVCPU = nil  // load() must restore the reset EL1 state
                GuestGlobals.vm.pointee.psci.noteState(v, .on)
                GuestChannel.running = true
                GuestChannel.broadcast(vcpu: v, .on)
                kernel.lock.release(core: coreIndex)
                started(v)
                VCPURun.runCurrent(coreIndex: coreIndex)
            }
            kernel.lock.release(core: coreIndex)
            // Sleep until a doorbell (the sleep protocol: no lost wake-up).
            if endpoint.prepareToSleep() {
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
