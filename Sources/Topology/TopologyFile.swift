import BigLock
import Foundation

extension TopologyLoader {
    /// Reads and validates the topology file at `path`: the one way every
    /// command reads a topology. An unreadable file is one diagnostic,
    /// `FILE:1: cannot read the file (why)`, like every other problem; bytes
    /// that are not UTF-8 are a malformed-TOML problem on their line.
    public static func load(path: String) throws(TopologyErrors) -> Topology {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw TopologyErrors(diagnostics: [
                TopologyDiagnostic(file: path, line: 1, message: "cannot read the file (\(error.localizedDescription))")
            ])
        }
        return try load(bytes: Array(data), file: path)
    }
}

extension ClusterLock.Kind {
    /// The name a topology file uses for this kind ("ticket", "mcs", "clh").
    public var topologyName: String { "\(name)" }
}
