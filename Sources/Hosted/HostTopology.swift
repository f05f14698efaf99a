import BigLock
import Topology
#if canImport(Glibc)
import Glibc
#endif

/// This host's CPUs as cmk sees them: which CPUs share a cache, which NUMA
/// node each belongs to. Read from sysfs (`root` is `/sys` except in tests).
public struct HostTopology: Sendable, Equatable {
    /// Which cache decides the clusters.
    public enum SharedCache: String, Sendable, CaseIterable {
        /// The last-level cache: the highest-level unified cache.
        case llc
        /// The level-2 cache.
        case l2
    }

    /// One detected cluster: host CPUs sharing the chosen cache on one node.
    public struct Cluster: Sendable, Equatable {
        public var hostCPUs: [Int]
        public var node: Int
        /// The level of the shared cache (0 if the host exposes no cache info).
        public var cacheLevel: Int
    }

    public var onlineCPUs: [Int]
    public var clusters: [Cluster]
    public var nodeCount: Int
    /// Notes for the user about what was missing and what was assumed.
    public var notes: [String]

    /// Reads sysfs under `root`, grouping CPUs that share `cache`. A cluster
    /// never spans NUMA nodes: a cache shared across nodes is split by node.
    public static func detect(root: String = "/sys", sharing cache: SharedCache = .llc) -> HostTopology {
        var notes: [String] = []
        let cpuDir = root + "/devices/system/cpu"
        var online = readFile(cpuDir + "/online").flatMap(parseCPUList) ?? []
        if online.isEmpty {
            online = listDir(cpuDir).compactMap { $0.hasPrefix("cpu") ? Int($0.dropFirst(3)) : nil }.sorted()
            notes.append("\(cpuDir)/online unreadable; using the cpuN directories")
        }
        // NUMA nodes.
        var nodeOf: [Int: Int] = [:]
        let nodeDir = root + "/devices/system/node"
        let nodes = listDir(nodeDir).compactMap { $0.hasPrefix("node") ? Int($0.dropFirst(4)) : nil }.sorted()
        for n in nodes {
            for cpu in readFile("\(nodeDir)/node\(n)/cpulist").flatMap(parseCPUList) ?? [] { nodeOf[cpu] = n }
        }
        if nodes.isEmpty { notes.append("no NUMA information in \(nodeDir); all CPUs on node 0") }
        // Shared caches.
        var groupOf: [Int: [Int]] = [:]
        var levelOf: [Int: Int] = [:]
        for cpu in online {
            let cacheDir = "\(cpuDir)/cpu\(cpu)/cache"
            var best: (level: Int, cpus: [Int])?
            for index in listDir(cacheDir) where index.hasPrefix("index") {
                let d = "\(cacheDir)/\(index)"
                guard let level = readFile(d + "/level").flatMap({ Int($0.trimmingCharacters(in: " \n")) }),
                      let type = readFile(d + "/type")?.trimmingCharacters(in: " \n"),
                      let shared = readFile(d + "/shared_cpu_list").flatMap(parseCPUList)
                else { continue }
                if type == "Instruction" || type == "Data" { continue }
                switch cache {
                case .llc: if best == nil || level > best!.level { best = (level, shared) }
                case .l2: if level == 2 { best = (level, shared) }
                }
            }
            groupOf[cpu] = (best?.cpus ?? [cpu]).filter { online.contains($0) }
            levelOf[cpu] = best?.level ?? 0
        }
        if levelOf.values.contains(0) {
            notes.append("some CPUs expose no \(cache == .llc ? "unified" : "L2") cache in sysfs; each is its own cluster")
        }
        // Clusters: the distinct sharing groups, split by node, ordered by first CPU.
        var seen = Set<Int>()
        var clusters: [Cluster] = []
        for cpu in online where !seen.contains(cpu) {
            let node = nodeOf[cpu] ?? 0
            let members = (groupOf[cpu] ?? [cpu]).filter { (nodeOf[$0] ?? 0) == node && !seen.contains($0) }.sorted()
            let group = members.contains(cpu) ? members : [cpu]
            group.forEach { seen.insert($0) }
            clusters.append(Cluster(hostCPUs: group, node: node, cacheLevel: levelOf[cpu] ?? 0))
        }
        clusters.sort { $0.hostCPUs[0] < $1.hostCPUs[0] }
        return HostTopology(onlineCPUs: online, clusters: clusters,
                            nodeCount: max(1, nodes.count), notes: notes)
    }
}

func readFile(_ path: String) -> String? {
    guard let f = fopen(path, "r") else { return nil }
    defer { fclose(f) }
    var out = [UInt8]()
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = fread(&buffer, 1, buffer.count, f)
        if n <= 0 { break }
        out.append(contentsOf: buffer[0..<n])
    }
    return String(decoding: out, as: UTF8.self)
}

func listDir(_ path: String) -> [String] {
    guard let d = opendir(path) else { return [] }
    defer { closedir(d) }
    var names: [String] = []
    while let e = readdir(d) {
        let name = withUnsafePointer(to: e.pointee.d_name) {
            $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
        }
        if name != "." && name != ".." { names.append(name) }
    }
    return names
}

extension HostTopology {
    /// The topology file `cmk topology detect` writes for this host: one
    /// cluster per detected cluster (cores numbered in order, with their
    /// `host_cpus` and `node`), each with a `clusterMemory` partition, the
    /// default shared regions, and the machine memory the physical layout
    /// needs (`Layout.bytesNeeded`: the boot region, each region on its 2M
    /// boundary) rounded up to a power of two of at least 1G.
    ///
    /// The file always passes `cmk topology check`; what had to give for
    /// that is said in a `# note:` line: CPUs beyond cmk's core limit are
    /// left out, and `Topology.sizing` rounds the partition and, if need
    /// be, drops the guest region and shrinks the partitions.
    public func topologyFile(
        name: String, lock: ClusterLock.Kind, clusterMemory: UInt64, sharing cache: SharedCache, machine: String
    ) -> String {
        var notes = self.notes

        // Cores: at most cmk's limit, in detection order.
        var kept: [Cluster] = []
        var cores = 0
        for c in clusters where cores < Topology.maxCores {
            var c = c
            c.hostCPUs = Array(c.hostCPUs.prefix(Topology.maxCores - cores))
            cores += c.hostCPUs.count
            kept.append(c)
        }
        let detected = clusters.reduce(0) { $0 + $1.hostCPUs.count }
        if detected > cores {
            notes.append("\(detected) CPUs detected; cmk runs at most \(Topology.maxCores) cores, so \(detected - cores) are left out")
        }

        let channel = Topology.channelSize(clusters: kept.count)
        let sizing = Topology.sizing(clusters: kept.count, partition: clusterMemory, channel: channel, guest: 256 << 20)
        notes += sizing.notes
        let (partition, guest, memory) = (sizing.partition, sizing.guest, sizing.memory)

        // Comments stay comments: one line each.
        func oneLine(_ s: String) -> String {
            String(s.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? " " : Character($0) })
        }
        var text = """
        # Detected by `cmk topology detect --share \(cache.rawValue)` on \(oneLine(machine)).
        # Clusters: CPUs sharing the \(cache == .llc ? "last-level" : "L2") cache, split by NUMA node (\(nodeCount) node(s)).
        # host_cpus and node are read by the hosted runtime (cmk experiment lock);
        # lock is the big lock kind of every cluster (ticket, mcs or clh).

        """
        for note in notes { text += "# note: \(oneLine(note))\n" }
        text += """
        name = \(TOMLParser.quoted(name))
        memory = "\(formatSize(memory))"
        lock = "\(lock.topologyName)"

        """
        var next = 0
        for c in kept {
            let cores = (next..<(next + c.hostCPUs.count)).map(String.init).joined(separator: ", ")
            next += c.hostCPUs.count
            text += """

            [[cluster]]
            cores = [\(cores)]
            memory = "\(formatSize(partition))"
            host_cpus = [\(c.hostCPUs.map(String.init).joined(separator: ", "))]
            node = \(c.node)

            """
        }
        text += """

        [shared]
        channel = "\(formatSize(channel))"
        guest = "\(formatSize(guest))"

        """
        return text
    }
}
