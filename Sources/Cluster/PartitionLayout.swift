import BigLock

/// How a cluster's private partition is carved up. Offsets are from the
/// partition's base. The cluster maps its private area (offsets below
/// `freeOffset`) at `Machine.privateBase`, so an offset is also the distance
/// from `privateBase` of the same byte's virtual address, the same in every
/// cluster; it maps the whole partition once more at its physical address.
///
///     0                 private image: .data (copied from the kernel image)
///                       then .bss (zeroed)                  [linked here]
///     recordOffset      ClusterRecord, then one CoreState per core
///     lockOffset        the cluster's big lock (room for any kind)
///     scratchOffset     the cluster's arrays and statistics (`scratchSize`)
///     stacksOffset      per core: guard | emergency stack | guard | kernel stack
///     tablesOffset      the cluster's translation tables (a pool)
///     stage2Offset      the guest's stage-2 tables in this cluster (a pool)
///     freeOffset        free memory: the cluster's untyped memory
///     partition size
///
/// Invariant: every area is 4 KiB aligned, areas do not overlap, and guard
/// pages are the only unmapped pages of the partition.
public struct PartitionLayout: Equatable {
    public static let recordHeaderSize = 512
    public static let guardSize: UInt64 = 4096
    public static let emergencyStackSize: UInt64 = 8192
    /// 32 KiB: the guest's bring-up builds the VMM's state (several KiB of
    /// fixed-size tables) on the stack once, deep in the boot path.
    public static let kernelStackSize: UInt64 = 32768
    public static let tablePoolSize: UInt64 = 32 * 4096
    /// The guest's stage-2 tables: a level-1 table and level-2 tables for the
    /// guest region (2 MiB blocks; 1 GiB blocks where aligned).
    public static let stage2PoolSize: UInt64 = 8 * 4096
    /// The cluster's scratch area: per-core arrays and histograms that would
    /// otherwise be array globals (which Swift may initialise lazily). The
    /// loader zeroes it.
    public static let scratchSize: UInt64 = 32 * 1024
    /// Guard, emergency stack, guard, kernel stack.
    public static let perCoreStackSlot = 2 * guardSize + emergencyStackSize + kernelStackSize

    public let privateImageSize: UInt64
    public let coreCount: Int
    public let recordOffset: UInt64
    public let lockOffset: UInt64
    public let scratchOffset: UInt64
    public let stacksOffset: UInt64
    public let tablesOffset: UInt64
    public let stage2Offset: UInt64
    public let freeOffset: UInt64

    public init(privateImageSize: UInt64, coreCount: Int) {
        self.privateImageSize = privateImageSize
        self.coreCount = coreCount
        recordOffset = Self.pageAlign(privateImageSize)
        let records = UInt64(Self.recordHeaderSize + coreCount * CoreState.size)
        lockOffset = recordOffset + Self.pageAlign(records)
        scratchOffset = lockOffset + Self.pageAlign(UInt64(ClusterLock.maxByteCount(cores: max(coreCount, 1))))
        stacksOffset = scratchOffset + Self.scratchSize
        tablesOffset = stacksOffset + UInt64(coreCount) * Self.perCoreStackSlot
        stage2Offset = tablesOffset + Self.tablePoolSize
        freeOffset = stage2Offset + Self.stage2PoolSize
    }

    static func pageAlign(_ x: UInt64) -> UInt64 { (x + 4095) & ~4095 }

    public func coreStateOffset(_ index: Int) -> UInt64 {
        recordOffset + UInt64(Self.recordHeaderSize + index * CoreState.size)
    }
    func slot(_ index: Int) -> UInt64 { stacksOffset + UInt64(index) * Self.perCoreStackSlot }
    /// The guard page below the emergency stack.
    public func lowGuardOffset(_ index: Int) -> UInt64 { slot(index) }
    /// The guard page between the emergency stack and the kernel stack.
    public func highGuardOffset(_ index: Int) -> UInt64 { slot(index) + Self.guardSize + Self.emergencyStackSize }
    /// Top (initial SP, exclusive) of the emergency stack.
    public func emergencyStackTop(_ index: Int) -> UInt64 { highGuardOffset(index) }
    /// Top (initial SP, exclusive) of the kernel stack.
    public func kernelStackTop(_ index: Int) -> UInt64 { slot(index) + Self.perCoreStackSlot }

    /// Whether the layout fits a partition of `size` bytes with at least one
    /// free page left for the cluster's untyped memory.
    public func fits(partitionSize size: UInt64) -> Bool { freeOffset + 4096 <= size }
}

/// Per-core state, one 128-byte record per core in the cluster record area.
/// TPIDR_EL2 holds its virtual address while the core runs in its cluster.
///
/// Word 0 is read by vectors.S (CMK_CORE_EMERGENCY_TOP); words 8..12 are the
/// start record cmk_secondary_entry reads with the MMU off (its physical
/// address is the PSCI CPU_ON context id).
public enum CoreState {
    public static let size = 128
    public static let emergencyTop = 0  // VA
    public static let coreId = 1
    public static let clusterId = 2
    public static let indexInCluster = 3
    public static let mpidr = 4
    public static let kernelStackTop = 5  // VA
    public static let state = 6  // see `CoreRunState`
    // start record, read by cmk_secondary_entry with the MMU off
    public static let startTTBR = 8
    public static let startSP = 9
    public static let startTPIDR = 10
    public static let startEntry = 11
    public static let startArg = 12
    public static let startRecordByteOffset = startTTBR * 8
    /// What this core runs at the lower EL (see `LowerEL`): written and read
    /// only by the core itself.
    public static let lowerEL = 13
    /// The next time-slice tick of the user thread on this core (virtual
    /// counter; 0: none). Only the core itself touches it.
    public static let nextTick = 14
    /// The tick deadline the timer is armed for (0: disarmed).
    public static let tickArmed = 15
}

/// Values of `CoreState.lowerEL`: what a trap from the lower EL comes from.
public enum LowerEL {
    public static let nothing: UInt64 = 0
    /// A guest vCPU (EL1/EL0 of the guest, HCR guest mode).
    public static let vcpu: UInt64 = 1
    /// A native user thread at EL0 (HCR native mode).
    public static let user: UInt64 = 2
}

/// Values of `CoreState.state`.
public enum CoreRunState {
    public static let off: UInt64 = 0
    public static let starting: UInt64 = 1
    public static let up: UInt64 = 2
}

/// The cluster record: what the loader tells one cluster about itself and
/// the machine. It sits in the cluster's own partition, so it is private.
/// Word indices into the first `PartitionLayout.recordHeaderSize` bytes.
public enum ClusterRecord {
    public static let magic = 0
    public static let clusterId = 1
    public static let clusterCount = 2
    public static let machineCoreCount = 3
    public static let coreMask = 4
    public static let partitionBase = 5
    public static let partitionSize = 6
    public static let channelBase = 7
    public static let channelSize = 8
    public static let guestBase = 9
    public static let guestSize = 10
    public static let rootTable = 11
    public static let privateImageSize = 12
    public static let freeOffset = 13
    public static let lockKind = 14
    public static let tablesUsed = 15
    public static let inject = 16
    /// Physical address of the guest's stage-2 root table in this cluster
    /// (0: no guest region).
    public static let stage2Root = 17
    /// Start of an experiment's measured window (virtual counter), published
    /// by the first core (an atomic word; 0 until then).
    public static let experimentStart = 22
    /// The experiment request's 8 words (`ExperimentRequest.words`), all 0
    /// in a normal boot.
    public static let experiment = 24
    /// The guest record's 8 words (`GuestImage.words`), all 0 without a guest.
    public static let guest = 32
    public static let magicValue: UInt64 = 0x4452_4345_524B_4D43  // "CMKRECRD"
}
