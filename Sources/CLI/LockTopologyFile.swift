import BigLock
import Foundation
import Topology

/// The part of a topology file a lock experiment needs: each cluster's cores,
/// the hosted keys `host_cpus` and `node`, and the `lock` kind. Read and
/// validated by the Topology module, like every other command's topology
/// (docs/topology.md); an invalid file fails with its `FILE:LINE:` lines.
struct LockTopologyFile {
    struct Cluster {
        var cores: [Int]
        var hostCPUs: [Int]?
        var node: Int
        var line: Int
    }
    var name: String?
    var lock: String?
    var clusters: [Cluster]

    struct ParseError: Error, CustomStringConvertible {
        let description: String
    }

    init(path: String) throws {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ParseError(description: "\(path):1: cannot read the file")
        }
        let topology: Topology
        do {
            topology = try TopologyLoader.load(text: text, file: path)
        } catch {
            throw ParseError(description: error.description)
        }
        name = topology.name
        lock = topology.lockSpecified ? "\(topology.lock.name)" : nil
        clusters = topology.clusters.map {
            Cluster(cores: $0.cores, hostCPUs: $0.hostCPUs, node: $0.node, line: $0.line)
        }
    }
}
