import ArgumentParser
import Foundation
import Hosted

/// `cmk topology detect`: a topology file for this host.
struct TopologyDetect: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "detect",
        abstract: "Write a topology file for this host: clusters of CPUs that share a cache, on one NUMA node each.",
        discussion: """
        Reads /sys/devices/system/cpu/cpu*/cache/index*/shared_cpu_list and \
        /sys/devices/system/node/node*/cpulist. Each cluster gets `host_cpus` (the Linux CPUs \
        its cores run on in the hosted runtime) and `node` (its partition's NUMA node).
        """)

    @Option(help: "Cache whose sharing defines a cluster: llc (last-level) or l2.")
    var share: String = "llc"

    @Option(name: [.short, .long], help: "Write the file here instead of printing it.")
    var output: String?

    @Option(help: "The topology's name.")
    var name: String = "host"

    @Option(help: "Private kernel partition of each cluster.")
    var clusterMemory: String = "128M"

    @Option(help: "Big lock kind written as the topology's `lock`.")
    var lock: String = "clh"

    @Option(help: "sysfs root (for tests).")
    var sysfs: String = "/sys"

    func run() throws {
        guard let cache = HostTopology.SharedCache(rawValue: share) else {
            throw ValidationError("--share must be llc or l2")
        }
        guard LockKind(rawValue: lock) != nil else { throw ValidationError("--lock must be ticket, mcs or clh") }
        guard let clusterBytes = parseSize(clusterMemory) else { throw ValidationError("--cluster-memory: bad size '\(clusterMemory)'") }
        let host = HostTopology.detect(root: sysfs, sharing: cache)
        if host.onlineCPUs.isEmpty { throw LockCommandError("no CPUs found under \(sysfs)/devices/system/cpu") }
        let channel: UInt64 = 1 << 20, guest: UInt64 = 256 << 20
        let needed = UInt64(host.clusters.count) * clusterBytes + channel + guest
        var machine: UInt64 = 1 << 30
        while machine < needed { machine <<= 1 }
        var text = """
        # Detected by `cmk topology detect --share \(share)` on \(hostDescription()).
        # Clusters: CPUs sharing the \(cache == .llc ? "last-level" : "L2") cache, split by NUMA node (\(host.nodeCount) node(s)).
        # host_cpus and node are read by the hosted runtime (cmk experiment lock);
        # lock is the big lock kind of every cluster (ticket, mcs or clh).

        """
        for note in host.notes { text += "# note: \(note)\n" }
        text += """
        name = "\(name)"
        memory = "\(formatSize(machine))"
        lock = "\(lock)"

        """
        var next = 0
        for c in host.clusters {
            let cores = (next..<(next + c.hostCPUs.count)).map(String.init).joined(separator: ", ")
            next += c.hostCPUs.count
            text += """

            [[cluster]]
            cores = [\(cores)]
            memory = "\(clusterMemory)"
            host_cpus = [\(c.hostCPUs.map(String.init).joined(separator: ", "))]
            node = \(c.node)

            """
        }
        text += """

        [shared]
        channel = "1M"
        guest = "256M"

        """
        if let output {
            try text.write(toFile: output, atomically: true, encoding: .utf8)
            print("cmk topology detect: \(host.clusters.count) cluster(s) of \(host.clusters.map { "\($0.hostCPUs.count)" }.joined(separator: "+")) cores written to \(output)")
        } else {
            print(text, terminator: "")
        }
    }
}

func parseSize(_ s: String) -> UInt64? {
    let units: [Character: UInt64] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30]
    guard let last = s.last, let unit = units[last], let n = UInt64(s.dropLast()), n > 0 else { return nil }
    return n * unit
}

func formatSize(_ bytes: UInt64) -> String {
    if bytes % (1 << 30) == 0 { return "\(bytes >> 30)G" }
    if bytes % (1 << 20) == 0 { return "\(bytes >> 20)M" }
    return "\(bytes >> 10)K"
}
