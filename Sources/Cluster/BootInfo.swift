/// The boot information: everything the kernel learns about the topology.
///
/// The host tool (`Topology`) validates a topology file, lays out physical
/// memory and encodes this blob; QEMU loads it at `Machine.bootInfoAddress`.
/// The kernel never parses text: it decodes these words and re-checks every
/// one of them (`BootInfo.decode`), because a blob is input like any other.
///
/// Format: little-endian 64-bit words.
///
///     header (18 words)
///       0 magic "CMKBOOT1"        8 bootRegionSize
///       1 version (2)             9 channelBase
///       2 total size in bytes    10 channelSize
///       3 FNV-1a 64 checksum     11 guestBase
///         (computed with this    12 guestSize
///          word as zero)         13 lockKind (BigLockKind raw value)
///       4 clusterCount           14 inject (FaultInjection, tests only)
///       5 coreCount              15 experiment words after the clusters (0 or 8)
///       6 ramBase
///       7 ramSize                16 guest words after the experiment (0 or 8)
///                                17 reserved (0)
///     clusterCount records (4 words each)
///       0 partitionBase  1 partitionSize  2 coreMask (bit i = core i)  3 reserved (0)
///     optional experiment record (8 words, `ExperimentRequest`)
///     optional guest record (8 words, `GuestImage`)
///     optional root-task record (5 words, `RootTaskImage`; word 4: fuzz calls)
public struct BootInfo {
    public static let magic: UInt64 = 0x3154_4F4F_424B_4D43  // "CMKBOOT1"
    public static let version: UInt64 = 2
    public static let headerWords = 18
    public static let clusterWords = 4

    public var ramBase: UInt64
    public var ramSize: UInt64
    public var bootRegionSize: UInt64
    public var channel: Region
    public var guest: Region
    public var lockKind: UInt64
    /// A fault the kernel provokes on purpose, so tests can check that every
    /// failure is reported (`cmk boot --inject`). 0 in normal boots.
    public var inject: UInt64 = 0
    /// An experiment for the kernel to run (`cmk experiment ... --qemu`).
    public var experiment: ExperimentRequest? = nil
    /// A Linux guest to run (`cmk guest`), loaded into `guest` by QEMU.
    public var guestImage: GuestImage? = nil
    /// The EL0 root task's file image, loaded by QEMU into the root-task
    /// window (`Machine.rootTaskAddress`); absent (word 17 zero) when the
    /// host loads none.
    public var rootTask: RootTaskImage? = nil
    public var coreCount: Int
    /// Cluster records, in cluster-id order. A fixed-capacity store, so the
    /// kernel can decode without a heap.
    public var clusters: ClusterTable

    public init(
        ramBase: UInt64, ramSize: UInt64, bootRegionSize: UInt64, channel: Region,
        guest: Region, lockKind: UInt64, coreCount: Int, clusters: ClusterTable
    ) {
        self.ramBase = ramBase
        self.ramSize = ramSize
        self.bootRegionSize = bootRegionSize
        self.channel = channel
        self.guest = guest
        self.lockKind = lockKind
        self.coreCount = coreCount
        self.clusters = clusters
    }

    public var clusterCount: Int { clusters.count }
    public var byteCount: Int {
        (Self.headerWords + clusters.count * Self.clusterWords + (experiment == nil ? 0 : ExperimentRequest.wordCount)
            + (guestImage == nil ? 0 : GuestImage.wordCount) + (rootTask == nil ? 0 : RootTaskImage.wordCount)) * 8
    }

    /// The cluster that owns `core`, if any.
    public func cluster(ofCore core: Int) -> Int? {
        for i in 0..<clusters.count where clusters[i].coreMask & (1 << UInt64(core)) != 0 {
            return i
        }
        return nil
    }
}

/// Faults `cmk boot --inject KIND[@CLUSTER]` asks the kernel to provoke on
/// the first core of one cluster (the last, unless the word names one).
///
/// The boot-information word: bits 0-7 the kind, bits 8-15 the target cluster
/// plus one (0: the last cluster, as `--inject KIND` always did), the rest 0.
/// Without a cluster the fault comes once every cluster reported itself up
/// and the run ends with it (exit 1); with one (`KIND@CLUSTER`) it comes
/// before the cluster's channel pings, the cluster stops alone and the others
/// report it and finish (docs/boot.md, "Clusters that fail alone").
public enum FaultInjection {
    public static let none: UInt64 = 0
    /// Read an unmapped address: a data abort at EL2.
    public static let dataAbort: UInt64 = 1
    /// Recurse until the kernel stack runs into its guard page.
    public static let stackOverflow: UInt64 = 2
    /// Call the kernel's panic.
    public static let panic: UInt64 = 3
    /// Stop without reporting: the boot never completes (a timeout), or,
    /// with a cluster, the others declare it failed after their deadline.
    public static let hang: UInt64 = 4
    /// Flood every outgoing ring with garbage for a while, then behave: every
    /// receiver drops and counts it and the boot completes.
    public static let flood: UInt64 = 5
    /// Read the next cluster's partition through this cluster's own tables:
    /// a data abort naming the address.
    public static let readOther: UInt64 = 6
    /// Write it: a data abort naming the address.
    public static let writeOther: UInt64 = 7
    /// Take the shared console lock and stop holding it: the others must
    /// still print (a bounded wait, then an urgent line).
    public static let holdConsole: UInt64 = 8
    /// Read the next cluster's first core's GIC redistributor: not mapped, a
    /// data abort naming the address.
    public static let readOtherGICR: UInt64 = 9
    public static let last = readOtherGICR

    /// The word for `kind` on `cluster` (nil: the last cluster, the legacy form).
    public static func word(kind: UInt64, cluster: Int?) -> UInt64 {
        kind | UInt64((cluster ?? -1) + 1) << 8
    }
    public static func kind(_ word: UInt64) -> UInt64 { word & 0xFF }
    /// Whether a cluster was named (`KIND@CLUSTER`).
    public static func namesCluster(_ word: UInt64) -> Bool { (word >> 8) & 0xFF != 0 }
    /// The cluster the fault is for.
    public static func target(_ word: UInt64, clusterCount: Int) -> Int {
        namesCluster(word) ? Int((word >> 8) & 0xFF) - 1 : clusterCount - 1
    }
    /// A word the decoder accepts: a known kind, a cluster that exists.
    public static func isValid(_ word: UInt64, clusterCount: Int) -> Bool {
        word >> 16 == 0 && kind(word) <= last && (word >> 8) & 0xFF <= UInt64(clusterCount)
            && (word == none || kind(word) != none)
    }
}

/// A physical memory region [base, base + size).
public struct Region: Equatable, Sendable {
    public var base: UInt64
    public var size: UInt64
    public init(base: UInt64, size: UInt64) {
        self.base = base
        self.size = size
    }
    public var end: UInt64 { base &+ size }
    public func overlaps(_ other: Region) -> Bool {
        size != 0 && other.size != 0 && base < other.end && other.base < end
    }
    public func contains(_ other: Region) -> Bool {
        other.base >= base && other.end <= end && other.end >= other.base
    }
}

/// One cluster's record in the boot information.
public struct ClusterDescriptor: Equatable, Sendable {
    public var partition: Region
    public var coreMask: UInt64
    public init(partition: Region, coreMask: UInt64) {
        self.partition = partition
        self.coreMask = coreMask
    }
    public var coreCount: Int { coreMask.nonzeroBitCount }
    /// The lowest-numbered core of the cluster: the one started first.
    public var firstCore: Int { coreMask.trailingZeroBitCount }
    /// The `index`-th core (in increasing id order) of the cluster.
    public func core(at index: Int) -> Int {
        var mask = coreMask
        for _ in 0..<index { mask &= mask &- 1 }
        return mask.trailingZeroBitCount
    }
    /// The position of `core` among the cluster's cores.
    public func index(ofCore core: Int) -> Int {
        (coreMask & ((1 << UInt64(core)) &- 1)).nonzeroBitCount
    }
}

/// At most `capacity` cluster records, stored inline (no heap), so the
/// kernel can decode the boot information before it has any allocator.
public struct ClusterTable {
    public static let capacity = 64
    public private(set) var count = 0
    private var storage = InlineArray<64, ClusterDescriptor>(
        repeating: ClusterDescriptor(partition: Region(base: 0, size: 0), coreMask: 0))

    public init() {}

    public mutating func append(_ descriptor: ClusterDescriptor) {
        precondition(count < Self.capacity, "too many clusters")
        storage[count] = descriptor
        count += 1
    }

    public subscript(index: Int) -> ClusterDescriptor {
        get {
            precondition(index >= 0 && index < count)
            return storage[index]
        }
        set {
            precondition(index >= 0 && index < count)
            storage[index] = newValue
        }
    }
}
