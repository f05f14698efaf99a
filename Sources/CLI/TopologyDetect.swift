import ArgumentParser
import Foundation
import BigLock
import Hosted
import Topology

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
        guard let kind = ClusterLock.Kind(topologyName: lock) else { throw ValidationError("--lock must be ticket, mcs or clh") }
        guard let clusterBytes = parseSize(clusterMemory), clusterBytes > 0 else {
            throw ValidationError("--cluster-memory: bad size '\(clusterMemory)'")
        }
        let host = HostTopology.detect(root: sysfs, sharing: cache)
        if host.onlineCPUs.isEmpty { throw CommandFailure("no CPUs found under \(sysfs)/devices/system/cpu") }
        let text = host.topologyFile(name: name, lock: kind, clusterMemory: clusterBytes, sharing: cache,
                                     machine: HostMachine.summary)
        if let output {
            try text.write(toFile: output, atomically: true, encoding: .utf8)
            print("cmk topology detect: \(host.clusters.count) cluster(s) of \(host.clusters.map { "\($0.hostCPUs.count)" }.joined(separator: "+")) cores written to \(output)")
        } else {
            print(text, terminator: "")
        }
    }
}
