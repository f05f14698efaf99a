import Arch
import BigLock
import Cluster
import Kernel
import VMM

/// The guest state of this cluster: one block per vCPU it runs (one with
/// `vcpus = "cluster"`, one per core with `"core"`), in memory the root
/// thread retyped from its Untyped for the VMM (`GuestBringUp.areaSlot`).
/// Private to the cluster; touched only under the cluster's big lock.
///
/// Layout of the area (`blockBytes` each):
///   block 0          the cluster's header: the vCPU map, each vCPU's core MPIDR
///   block 1 + j      core j's vCPU: its `VirtualMachine` at 0, its
///                    `GuestCoreState` at `stateOffset`, its big-lock
///                    statistics at `lockOffset`
/// Reached through pointers, so every access works in place (a global of
/// these sizes would be copied to the stack on each mutation).
///
/// - Invariant: core j of this cluster runs vCPU `firstVCPU + j` and only
///   it; `machine(j)` is that vCPU's VMM state. The owner of the devices
///   (vCPU 0) is `machine(0)` of cluster 0.
enum GuestGlobals {
    static let blockBytes = 32 * 1024
    static let stateOffset = 16 * 1024
    static let lockOffset = 17 * 1024

    /// The area's address (0: no guest on this cluster).
    nonisolated(unsafe) static var area: UInt = 0
    /// This cluster's id, how many vCPUs the guest has, and which of them
    /// this cluster runs (`firstVCPU ..< firstVCPU + localCount`).
    nonisolated(unsafe) static var cluster = 0
    nonisolated(unsafe) static var vcpuCount = 1
    nonisolated(unsafe) static var firstVCPU = 0
    nonisolated(unsafe) static var localCount = 0
    /// Refusals already logged (one line each, the first `logLimit`).
    nonisolated(unsafe) static var refusalsLogged = 0
    static let logLimit = 8

    /// Bytes the area needs for `cores` local vCPUs (a power of two: it is
    /// one Untyped object).
    static func areaBits(cores: Int) -> Int {
        let bytes = (cores + 1) * blockBytes
        return Int.bitWidth - (bytes - 1).leadingZeroBitCount
    }

    /// The map of every vCPU's home (header of the area).
    static var map: UnsafeMutablePointer<GuestVCPUMap> {
        UnsafeMutablePointer(bitPattern: area)!
    }
    /// The MPIDR of the physical core that runs vCPU v (header, after the map).
    static func coreMPIDR(ofVCPU v: Int) -> UInt64 {
        UnsafeMutablePointer<UInt64>(bitPattern: area + 1024)![v]
    }
    static func machine(_ core: Int) -> UnsafeMutablePointer<VirtualMachine> {
        UnsafeMutablePointer(bitPattern: area + UInt((1 + core) * blockBytes))!
    }
    static func state(_ core: Int) -> UnsafeMutablePointer<GuestCoreState> {
        UnsafeMutablePointer(bitPattern: area + UInt((1 + core) * blockBytes + stateOffset))!
    }
    static func lockStatistics(_ core: Int) -> UnsafeMutablePointer<LockStatistics<GuestClock>> {
        UnsafeMutablePointer(bitPattern: area + UInt((1 + core) * blockBytes + lockOffset))!
    }

    /// This core's index in the cluster (TPIDR_EL2 names its CoreState).
    static var hereIndex: Int {
        Int(UnsafeMutablePointer<UInt64>(bitPattern: UInt(CPU.tpidr))![CoreState.indexInCluster])
    }
    /// The VMM state of the vCPU this core runs.
    static var vm: UnsafeMutablePointer<VirtualMachine> { machine(hereIndex) }
    static var here: UnsafeMutablePointer<GuestCoreState> { state(hereIndex) }
    /// A vCPU's state is in this core's registers (its exits come to us).
    static var loadedHere: Bool { area != 0 && hereIndex < localCount && here.pointee.loadedVCPU != nil }

    /// The local core that runs vCPU v, if this cluster runs it.
    static func localCore(ofVCPU v: Int) -> Int? {
        v >= firstVCPU && v < firstVCPU + localCount ? v - firstVCPU : nil
    }
    /// The cluster that runs vCPU v (nil: no such vCPU).
    static func clusterOf(vcpu v: Int) -> Int? { map.pointee.home(ofVCPU: v)?.cluster }

    /// First core, from the root thread's boot work: lay out the area for
    /// this cluster's vCPUs. `mpidrOfVCPU` names each vCPU's physical core.
    @inline(never)
    static func setUp(
        image: GuestImage, guest: Region, cluster: Int, map vcpuMap: GuestVCPUMap,
        memory: UnsafeMutableRawPointer, bytes: Int, mpidrOfVCPU: (Int) -> UInt64
    ) {
        guard MemoryLayout<VirtualMachine>.size <= stateOffset,
            MemoryLayout<GuestCoreState>.size <= lockOffset - stateOffset,
            MemoryLayout<LockStatistics<GuestClock>>.size <= blockBytes - lockOffset,
            MemoryLayout<GuestVCPUMap>.size <= 1024, image.vcpuCount <= 64
        else { panic("guest: the VMM's state does not fit its blocks; VM bytes:", decimal: MemoryLayout<VirtualMachine>.size) }
        let local = vcpuMap.vcpus(inCluster: cluster)
        guard (local.count + 1) * blockBytes <= bytes else { panic("guest: the VMM area is too small for vCPUs:", decimal: local.count) }
        area = UInt(bitPattern: memory)
        map.initialize(to: vcpuMap)
        let table = UnsafeMutablePointer<UInt64>(bitPattern: area + 1024)!
        for v in 0..<image.vcpuCount { table[v] = mpidrOfVCPU(v) }
        self.cluster = cluster
        vcpuCount = image.vcpuCount
        firstVCPU = local.lowerBound
        localCount = local.count
        for j in 0..<local.count {
            guard let vm = VirtualMachine(
                ramBase: guest.base, ramSize: guest.size, vcpus: image.vcpuCount, vcpu: local.lowerBound + j,
                listRegisterCount: Virtualization.listRegisterCount, ownsDevices: local.lowerBound + j == 0)
            else { panic("guest: the VMM refused the guest region, base", guest.base) }
            machine(j).initialize(to: vm)
            state(j).initialize(to: GuestCoreState())
            lockStatistics(j).initialize(to: LockStatistics<GuestClock>())
        }
    }
}

/// What one core knows about its vCPU beyond the VMM's model.
struct GuestCoreState {
    /// The vCPU whose EL1 state is in this core's registers (nil: none).
    var loadedVCPU: VCPURef? = nil
    /// The vCPU runs (started, not off).
    var running = false
    /// A CPU_ON for this core's vCPU, waiting to be taken by `waitForStart`.
    var startRequested = false
    var startEntry: UInt64 = 0
    var startContext: UInt64 = 0
    /// The answer to this core's forwarded device access.
    var awaitedToken: UInt64 = 0
    var replyArrived = false
    var replyRefused = false
    var replyValue: UInt64 = 0
    var nextToken: UInt64 = 1
    /// This core reported its stop.
    var stopped = false
    /// Guest messages this core's pumping dropped (malformed lines, or
    /// valid ones that make no sense for this guest).
    var dropped: UInt64 = 0
}

/// The clock of the guest's big-lock statistics: the virtual counter.
struct GuestClock: LockTickSource {
    static func now() -> UInt64 { CPU.counter }
}

/// The big lock as the guest's paths take it: every acquisition counted
/// and timed in this core's statistics (`cmk guest --stats`), until the
/// guest stops.
enum GuestLock {
    /// Not inlined: the lock's three kinds would be expanded at every site.
    @inline(never)
    static func acquire(core: Int) {
        let lock = KernelGlobals.kernel!.lock
        guard GuestGlobals.area != 0, core < GuestGlobals.localCount else {
            lock.acquire(core: core)
            return
        }
        let stats = GuestGlobals.lockStatistics(core)
        stats.pointee.willAcquire()
        let contended = lock.acquire(core: core)
        // Read under the lock. The stop (reports printed under the lock
        // while the other cores wait to print theirs) is not the guest's
        // contention: it is not counted.
        if !GuestChannel.shutdownRequested { stats.pointee.didAcquire(contended: contended) }
    }

    @inline(never)
    static func release(core: Int) {
        if GuestGlobals.area != 0, core < GuestGlobals.localCount, !GuestChannel.shutdownRequested {
            GuestGlobals.lockStatistics(core).pointee.willRelease()
        }
        KernelGlobals.kernel!.lock.release(core: core)
    }

    /// `cmk: guest lock cluster=I cores=K acquisitions=N contended=N
    /// wait_p50_ns=N wait_p90_ns=N wait_p99_ns=N wait_max_ns=N hold_p50_ns=N`:
    /// every core's figures merged (caller holds the lock).
    static func report() {
        var all = LockStatistics<GuestClock>()
        for j in 0..<GuestGlobals.localCount { all.merge(GuestGlobals.lockStatistics(j).pointee) }
        let f = max(CPU.counterFrequency, 1)
        func ns(_ ticks: UInt64) -> UInt64 { ticks / f * 1_000_000_000 + ticks % f * 1_000_000_000 / f }
        Console.begin()
        Console.put("cmk: guest lock cluster=")
        Console.decimal(GuestGlobals.cluster)
        Console.put(" cores=")
        Console.decimal(GuestGlobals.localCount)
        Console.put(" acquisitions=")
        Console.decimal(all.acquisitions)
        Console.put(" contended=")
        Console.decimal(all.contendedAcquisitions)
        Console.put(" wait_p50_ns=")
        Console.decimal(ns(all.wait.percentile(0.5)))
        Console.put(" wait_p90_ns=")
        Console.decimal(ns(all.wait.percentile(0.9)))
        Console.put(" wait_p99_ns=")
        Console.decimal(ns(all.wait.percentile(0.99)))
        Console.put(" wait_max_ns=")
        Console.decimal(ns(all.wait.max))
        Console.put(" hold_p50_ns=")
        Console.decimal(ns(all.hold.percentile(0.5)))
        Console.end()
    }
}
