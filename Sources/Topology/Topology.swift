import BigLock
import Cluster
import InterKernel

/// A cluster topology, as declared by a topology file (docs/topology.md).
public struct Topology: Equatable {
    public struct ClusterSpec: Equatable {
        public var cores: [Int]
        public var memory: UInt64
        public var line: Int
        /// Hosted runs only: the host CPU each core (in `cores` order) is
        /// pinned to. Nil: the hosted runtime chooses.
        public var hostCPUs: [Int]? = nil
        /// Hosted runs only: the NUMA node of the cluster's partition.
        public var node: Int = 0

        public init(cores: [Int], memory: UInt64, line: Int, hostCPUs: [Int]? = nil, node: Int = 0) {
            self.cores = cores
            self.memory = memory
            self.line = line
            self.hostCPUs = hostCPUs
            self.node = node
        }
    }
    public var name: String
    public var memory: UInt64
    public var lock: ClusterLock.Kind
    /// Whether the file set `lock` (tools that sweep lock kinds use all of
    /// them when it did not).
    public var lockSpecified = false
    public var clusters: [ClusterSpec]
    public var channel: UInt64
    public var guest: UInt64
    /// `[guest] vcpus`: where a Linux guest's vCPUs run (`cmk guest`): one
    /// per cluster (`"cluster"`, the default) or one per core (`"core"`);
    /// either way one NUMA node per cluster (`GuestVCPUMap`).
    public var guestPlacement: GuestImage.Placement = .cluster

    public var coreCount: Int { clusters.reduce(0) { $0 + $1.cores.count } }

    /// A topology made by a tool (experiments); files go through
    /// `TopologyLoader.load`, which checks them.
    public init(name: String, memory: UInt64, lock: ClusterLock.Kind, clusters: [ClusterSpec], channel: UInt64, guest: UInt64) {
        self.name = name
        self.memory = memory
        self.lock = lock
        self.clusters = clusters
        self.channel = channel
        self.guest = guest
    }
}

extension Topology {
    /// The most cores a topology may have (cmk's limit).
    public static var maxCores: Int { Machine.maxCores }

    /// Sizes for a topology a tool writes (`cmk topology detect`) that the
    /// checks accept, and what had to give for that.
    public struct Sizing: Equatable, Sendable {
        public var partition: UInt64
        public var guest: UInt64
        /// The machine memory: what the layout needs (`Layout.bytesNeeded`:
        /// the boot region, each region on its 2M boundary), rounded up to
        /// a power of two of at least 1G, at most cmk's maximum.
        public var memory: UInt64
        public var notes: [String] = []
    }

    /// A channel region for `clusters` clusters: 1M, or more when their
    /// page-aligned rings need more (a multiple of 1M, so the check's
    /// 4K granule and the layout's 2M slots both hold).
    public static func channelSize(clusters: Int) -> UInt64 {
        let needed = UInt64(ChannelLayout.requiredSize(clusterCount: max(clusters, 1), slotsPerRing: ChannelLayout.minSlotsPerRing))
        let mib: UInt64 = 1 << 20
        return max(mib, (needed + mib - 1) / mib * mib)
    }

    /// Fits `clusters` partitions of `partition` bytes, the channel and the
    /// guest region into the machine: the partition is rounded up to a
    /// multiple of 2M and to the minimum partition; when the total would
    /// exceed cmk's maximum memory, the guest region goes, then the
    /// partitions shrink to fit.
    public static func sizing(clusters: Int, partition requested: UInt64, channel: UInt64, guest requestedGuest: UInt64) -> Sizing {
        let granule = Machine.partitionGranule
        var notes: [String] = []
        var partition = max((min(requested, Machine.maxRAM) + granule - 1) / granule * granule, Machine.minPartitionSize)
        if partition != requested {
            notes.append("partition \(formatSize(requested)) rounded to \(formatSize(partition)) (a multiple of 2M, at least \(formatSize(Machine.minPartitionSize)))")
        }
        var guest = requestedGuest
        func needed() -> UInt64 {
            Layout.bytesNeeded(partitions: Array(repeating: partition, count: clusters), channel: channel, guest: guest)
        }
        if needed() > Machine.maxRAM, guest != 0 {
            guest = 0
            notes.append("no guest region: the partitions need the whole of cmk's maximum memory (\(formatSize(Machine.maxRAM)))")
        }
        if needed() > Machine.maxRAM {
            let fixed = Layout.bytesNeeded(partitions: [], channel: channel, guest: 0)
            let shrunk = (Machine.maxRAM - fixed) / UInt64(max(clusters, 1)) / granule * granule
            notes.append("partitions of \(formatSize(partition)) do not fit in \(formatSize(Machine.maxRAM)); each is \(formatSize(shrunk))")
            partition = shrunk
        }
        var memory: UInt64 = 1 << 30
        while memory < needed() { memory <<= 1 }
        return Sizing(partition: partition, guest: guest, memory: min(memory, Machine.maxRAM), notes: notes)
    }
}

/// One problem in a topology file: rendered `FILE:LINE: message`.
public struct TopologyDiagnostic: Error, Equatable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var message: String
    /// One line, whatever the message quotes from the file (a key or string
    /// with a newline in it is shown escaped).
    public var description: String {
        var shown = ""
        for scalar in message.unicodeScalars {
            if scalar.value < 0x20 || scalar.value == 0x7F {
                shown += scalar == "\n" ? "\\n" : scalar == "\t" ? "\\t" : "\\u{\(String(scalar.value, radix: 16))}"
            } else {
                shown.unicodeScalars.append(scalar)
            }
        }
        return "\(file):\(line): \(shown)"
    }
}

/// Every problem found in one file (at least one).
public struct TopologyErrors: Error, CustomStringConvertible {
    public var diagnostics: [TopologyDiagnostic]
    public var description: String { diagnostics.map(\.description).joined(separator: "\n") }
}

/// Big-lock kinds a topology may name (`lock = "..."`): BigLock's kinds, by
/// the names the locks give themselves.
extension ClusterLock.Kind {
    public init?(topologyName: String) {
        guard let kind = Self.allCases.first(where: { "\($0.name)" == topologyName }) else { return nil }
        self = kind
    }
    public static var topologyNames: [String] { allCases.map { "\($0.name)" } }
}

/// vCPU placements a topology may name (`[guest] vcpus = "..."`).
extension GuestImage.Placement {
    public init?(topologyName: String) {
        switch topologyName {
        case "cluster": self = .cluster
        case "core": self = .core
        default: return nil
        }
    }
    /// The name a topology file uses ("cluster", "core").
    public var topologyName: String { self == .cluster ? "cluster" : "core" }
    public static var topologyNames: [String] { ["cluster", "core"] }
}

public enum TopologyLoader {
    static let rootKeys: Set<String> = ["name", "memory", "lock"]
    static let clusterKeys: Set<String> = ["cores", "memory", "host_cpus", "node"]
    static let sharedKeys: Set<String> = ["channel", "guest"]
    static let guestKeys: Set<String> = ["vcpus"]
    static let tables = "[[cluster]], [guest], [shared]"

    /// Read and validate a topology. On failure, every problem found is
    /// reported (syntax errors stop the reading at the first one). Any TOML
    /// 1.0 spelling of a topology is accepted (dotted keys, inline tables,
    /// `cluster = [{...}, ...]`, any string or integer form); what is valid
    /// TOML but not a topology is a topology error on its line, never
    /// "malformed TOML".
    public static func load(text: String, file: String) throws(TopologyErrors) -> Topology {
        try load(bytes: Array(text.utf8), file: file)
    }

    /// The same, from a file's bytes (which must be UTF-8).
    public static func load(bytes: [UInt8], file: String) throws(TopologyErrors) -> Topology {
        let doc: TOMLDocument
        do {
            doc = try TOMLParser.parse(bytes: bytes)
        } catch {
            throw TopologyErrors(diagnostics: [
                TopologyDiagnostic(file: file, line: error.line, message: "malformed TOML: \(error.message)")
            ])
        }
        var problems: [TopologyDiagnostic] = []
        func problem(_ line: Int, _ message: String) {
            problems.append(TopologyDiagnostic(file: file, line: line, message: message))
        }
        let root = doc.root

        // Unknown keys and tables.
        for entry in root.entries
        where !rootKeys.contains(entry.key) && entry.key != "cluster" && entry.key != "shared" && entry.key != "guest" {
            switch entry.value.kind {
            case .table:
                problem(entry.line, "unknown table `[\(entry.key)]` (known: \(tables))")
            case .array where entry.value.typeName == "an array of tables":
                problem(entry.line, "unknown table `[[\(entry.key)]]` (known: \(tables))")
            default:
                problem(entry.line, "unknown key `\(entry.key)` (known: \(rootKeys.sorted().joined(separator: ", ")), and the tables \(tables))")
            }
        }

        // Typed getters that report what is wrong; `context` says where
        // (" in [shared]"), for a missing key.
        func string(_ table: TOMLTable, _ key: String, _ context: String, required: Bool) -> (String, Int)? {
            guard let entry = table[key] else {
                if required { problem(table.line, "missing key `\(key)`\(context)") }
                return nil
            }
            guard case .string(let s) = entry.value.kind else {
                problem(entry.line, "`\(key)` must be a string, not \(entry.value.typeName)")
                return nil
            }
            return (s, entry.line)
        }
        func size(_ table: TOMLTable, _ key: String, _ context: String, required: Bool) -> (UInt64, Int)? {
            guard let entry = table[key] else {
                if required { problem(table.line, "missing key `\(key)`\(context)") }
                return nil
            }
            switch entry.value.kind {
            case .string(let s):
                guard let bytes = parseSize(s) else {
                    problem(entry.line, "`\(key)` = \(TOMLParser.quoted(s)) is not a size (use e.g. \"64K\", \"128M\", \"1G\")")
                    return nil
                }
                return (bytes, entry.line)
            case .integer(let n):
                guard n >= 0 else {
                    problem(entry.line, "`\(key)` = \(n) is negative")
                    return nil
                }
                return (UInt64(n), entry.line)
            default:
                problem(entry.line, "`\(key)` must be a size like \"128M\", not \(entry.value.typeName)")
                return nil
            }
        }

        let name = string(root, "name", "", required: true)
        let memory = size(root, "memory", "", required: true)
        var lock = ClusterLock.Kind.ticket
        let lockSpecified = root["lock"] != nil
        if let (l, line) = string(root, "lock", "", required: false) {
            if let kind = ClusterLock.Kind(topologyName: l) {
                lock = kind
            } else {
                problem(line, "unknown lock `\(l)` (known: \(ClusterLock.Kind.topologyNames.joined(separator: ", ")))")
            }
        }

        // Clusters.
        // `[[cluster]]` headers, or any other array of tables: `cluster = [{...}, {...}]`.
        var clusterTables: [TOMLTable] = []
        if let entry = root["cluster"] {
            switch entry.value.kind {
            case .table(let t):
                problem(t.line, "`[cluster]` must be `[[cluster]]` (one per cluster)")
            case .array(let items):
                for item in items {
                    if let t = item.table {
                        clusterTables.append(t)
                    } else {
                        problem(item.line, "each cluster must be a table (`[[cluster]]` or `{ cores = [...], memory = ... }`), not \(item.typeName)")
                    }
                }
                if items.isEmpty { problem(entry.line, "`cluster` is an empty array: a topology needs at least one cluster") }
            default:
                problem(entry.line, "`cluster` must be `[[cluster]]` tables, not \(entry.value.typeName)")
            }
        }
        if root["cluster"] == nil { problem(1, "no `[[cluster]]`: a topology needs at least one cluster") }
        var clusters: [Topology.ClusterSpec] = []
        var owner: [Int: Int] = [:]  // core -> cluster index
        var hostCPUOwner: [Int: Int] = [:]  // host CPU -> cluster index
        var maxCore = -1
        var maxCoreLine = 1
        for (index, table) in clusterTables.enumerated() {
            for entry in table.entries where !clusterKeys.contains(entry.key) {
                problem(entry.line, "unknown key `\(entry.key)` in [[cluster]] (known: cores, memory, host_cpus, node)")
            }
            var cores: [Int] = []
            if let entry = table["cores"] {
                if case .array(let items) = entry.value.kind {
                    if items.isEmpty { problem(entry.line, "cluster \(index) has no cores (an empty cluster)") }
                    for item in items {
                        guard case .integer(let n) = item.kind else {
                            problem(item.line, "core ids must be integers, not \(item.typeName)")
                            continue
                        }
                        guard n >= 0, n < Int64(Machine.qemuMaxCores) else {
                            problem(item.line, "core id \(n) is out of range (0...\(Machine.maxCores - 1))")
                            continue
                        }
                        let core = Int(n)
                        if let other = owner[core] {
                            problem(item.line, other == index ? "core \(core) is listed twice in cluster \(index)" : "core \(core) is already in cluster \(other)")
                            continue
                        }
                        owner[core] = index
                        cores.append(core)
                        if core > maxCore { maxCore = core; maxCoreLine = item.line }
                    }
                } else {
                    problem(entry.line, "`cores` must be an array of core ids, like [0, 1]")
                }
            } else {
                problem(table.line, "missing key `cores` in this [[cluster]]")
            }
            var partition: UInt64 = 0
            if let (bytes, line) = size(table, "memory", " in this [[cluster]]", required: true) {
                partition = bytes
                checkPartition(bytes, line: line, cluster: index, problem: problem)
            }
            var spec = Topology.ClusterSpec(cores: cores, memory: partition, line: table.line)
            if let entry = table["host_cpus"] {
                if case .array(let items) = entry.value.kind {
                    var cpus: [Int] = []
                    for item in items {
                        if case .integer(let n) = item.kind, n >= 0, n < 65536 {
                            if let other = hostCPUOwner[Int(n)] {
                                problem(item.line, "host CPU \(n) is already used by cluster \(other)")
                            }
                            hostCPUOwner[Int(n)] = index
                            cpus.append(Int(n))
                        } else {
                            problem(item.line, "host_cpus entries must be host CPU numbers (integers from 0)")
                        }
                    }
                    if cpus.count != cores.count {
                        problem(entry.line, "host_cpus has \(cpus.count) entries for the cluster's \(cores.count) cores")
                    }
                    spec.hostCPUs = cpus
                } else {
                    problem(entry.line, "`host_cpus` must be an array of host CPU numbers, like [0, 1]")
                }
            }
            if let entry = table["node"] {
                if case .integer(let n) = entry.value.kind, n >= 0, n < 1024 {
                    spec.node = Int(n)
                } else {
                    problem(entry.line, "`node` must be a NUMA node number (an integer from 0)")
                }
            }
            clusters.append(spec)
        }
        // Core ids 0..N-1, no gaps.
        if maxCore >= 0 {
            let missing = (0...maxCore).filter { owner[$0] == nil }
            if !missing.isEmpty {
                problem(maxCoreLine, "core ids must be 0..\(maxCore) without gaps: \(missing.map(String.init).joined(separator: ", ")) \(missing.count == 1 ? "is" : "are") in no cluster")
            }
            let cores = maxCore + 1
            if cores > Machine.maxCores {
                problem(maxCoreLine, "\(cores) cores: QEMU virt (GICv3) supports at most \(Machine.qemuMaxCores) and cmk at most \(Machine.maxCores)")
            }
        }

        // Shared regions.
        var shared: TOMLTable?
        if let entry = root["shared"] {
            if let t = entry.value.table {
                shared = t
            } else {
                problem(entry.line, "`shared` must be the table `[shared]`, not \(entry.value.typeName)")
            }
        }
        var channel: UInt64 = 0
        var guest: UInt64 = 0
        if let shared {
            for entry in shared.entries where !sharedKeys.contains(entry.key) {
                problem(entry.line, "unknown key `\(entry.key)` in [shared] (known: channel, guest)")
            }
            if let (bytes, line) = size(shared, "channel", " in [shared]", required: true) {
                channel = bytes
                if bytes == 0 {
                    problem(line, "`channel` is zero: the clusters need a channel region")
                } else if bytes % Machine.pageSize != 0 {
                    problem(line, "`channel` (\(formatSize(bytes))) must be a multiple of 4K")
                } else if bytes < Machine.minChannelSize {
                    problem(line, "`channel` (\(formatSize(bytes))) is below the minimum of \(formatSize(Machine.minChannelSize))")
                } else if bytes > Machine.maxRAM {
                    problem(line, "`channel` (\(formatSize(bytes))) exceeds cmk's maximum memory of \(formatSize(Machine.maxRAM))")
                } else if clusters.count > 1, ChannelLayout(clusterCount: clusters.count, regionSize: Int(bytes)) == nil {
                    // Every ring spans whole pages (each cluster maps only its
                    // own): the kernel would refuse the region at boot.
                    let least = UInt64(ChannelLayout.requiredSize(clusterCount: clusters.count, slotsPerRing: ChannelLayout.minSlotsPerRing))
                    problem(line, "`channel` (\(formatSize(bytes))) is too small for the rings of \(clusters.count) clusters: at least \(formatSize((least + Machine.pageSize - 1) / Machine.pageSize * Machine.pageSize))")
                }
            }
            if let (bytes, line) = size(shared, "guest", " in [shared]", required: false) {
                guest = bytes
                if bytes % Machine.regionAlignment != 0 {
                    problem(line, "`guest` (\(formatSize(bytes))) must be a multiple of 2M (0 for no guest region)")
                } else if bytes > Machine.maxRAM {
                    problem(line, "`guest` (\(formatSize(bytes))) exceeds cmk's maximum memory of \(formatSize(Machine.maxRAM))")
                }
            }
        } else if root["shared"] == nil {
            problem(1, "missing table `[shared]` (it declares the `channel` region)")
        }

        // The guest: where its vCPUs run.
        var guestPlacement = GuestImage.Placement.cluster
        if let entry = root["guest"] {
            if let t = entry.value.table {
                for entry in t.entries where !guestKeys.contains(entry.key) {
                    problem(entry.line, "unknown key `\(entry.key)` in [guest] (known: \(guestKeys.sorted().joined(separator: ", ")))")
                }
                if let (v, line) = string(t, "vcpus", " in [guest]", required: false) {
                    if let placement = GuestImage.Placement(topologyName: v) {
                        guestPlacement = placement
                    } else {
                        problem(line, "unknown vCPU placement `\(v)` in [guest] (known: \(GuestImage.Placement.topologyNames.joined(separator: ", ")))")
                    }
                }
            } else {
                problem(entry.line, "`guest` must be the table `[guest]`, not \(entry.value.typeName) (the guest region's size is `guest` under [shared])")
            }
        }

        // The machine's memory, and whether everything fits.
        if let (bytes, line) = memory {
            if bytes == 0 {
                problem(line, "`memory` is zero")
            } else if bytes % Machine.regionAlignment != 0 {
                problem(line, "`memory` (\(formatSize(bytes))) must be a multiple of 2M")
            } else if bytes > Machine.maxRAM {
                problem(line, "`memory` (\(formatSize(bytes))) exceeds cmk's maximum of \(formatSize(Machine.maxRAM))")
            } else if problems.isEmpty {
                let needed = Layout.bytesNeeded(partitions: clusters.map(\.memory), channel: channel, guest: guest)
                if needed > bytes {
                    problem(line, "the partitions and shared regions need \(formatSize(needed)) (including the \(formatSize(Machine.bootRegionSize)) boot region and 2M alignment) but `memory` is \(formatSize(bytes))")
                }
            }
        }

        guard problems.isEmpty, let name, let memory else {
            throw TopologyErrors(diagnostics: problems.sorted { $0.line < $1.line })
        }
        var topology = Topology(
            name: name.0, memory: memory.0, lock: lock, clusters: clusters, channel: channel, guest: guest)
        topology.lockSpecified = lockSpecified
        topology.guestPlacement = guestPlacement
        return topology
    }

    static func checkPartition(_ bytes: UInt64, line: Int, cluster: Int, problem: (Int, String) -> Void) {
        if bytes == 0 {
            problem(line, "cluster \(cluster) `memory` is zero")
        } else if bytes % Machine.partitionGranule != 0 {
            problem(line, "cluster \(cluster) `memory` (\(formatSize(bytes))) must be a multiple of 2M")
        } else if bytes < Machine.minPartitionSize {
            problem(line, "cluster \(cluster) `memory` (\(formatSize(bytes))) is below the minimum partition of \(formatSize(Machine.minPartitionSize))")
        } else if bytes > Machine.maxRAM {
            problem(line, "cluster \(cluster) `memory` (\(formatSize(bytes))) exceeds cmk's maximum memory of \(formatSize(Machine.maxRAM))")
        }
    }
}

/// "64K", "128M", "1G", "4096" (bytes); binary units; case-insensitive;
/// an optional trailing "B" or "iB".
public func parseSize(_ text: String) -> UInt64? {
    var s = text.uppercased().trimmed(" ")
    if s.hasSuffix("IB") { s.removeLast(2) } else if s.hasSuffix("B") { s.removeLast() }
    var shift: UInt64 = 0
    switch s.last {
    case "K": shift = 10
    case "M": shift = 20
    case "G": shift = 30
    case "T": shift = 40
    default: break
    }
    if shift != 0 { s.removeLast() }
    guard !s.isEmpty, s.allSatisfy(\.isNumber), let n = UInt64(s), n <= (UInt64.max >> shift) else { return nil }
    return n << shift
}

/// The largest binary unit that divides `bytes` exactly: 1G, 128M, 4K, 100.
public func formatSize(_ bytes: UInt64) -> String {
    for (shift, unit) in [(40, "T"), (30, "G"), (20, "M"), (10, "K")] where bytes != 0 && bytes % (1 << UInt64(shift)) == 0 {
        return "\(bytes >> UInt64(shift))\(unit)"
    }
    return "\(bytes)"
}
