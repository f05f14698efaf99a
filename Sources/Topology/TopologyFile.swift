import BigLock
import Foundation

extension TopologyLoader {
    /// Reads and validates the topology file at `path`: the one way every
    /// command reads a topology. An unreadable file is one diagnostic,
    /// `FILE:1: cannot read the file (why)`, like every other problem.
    public static func load(path: String) throws(TopologyErrors) -> Topology {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw TopologyErrors(diagnostics: [
                TopologyDiagnostic(file: path, line: 1, message: "cannot read the file (\(error.localizedDescription))")
            ])
        }
        return try load(text: text, file: path)
    }
}

extension ClusterLock.Kind {
    /// The name a topology file uses for this kind ("ticket", "mcs", "clh").
    public var topologyName: String { "\(name)" }
}
