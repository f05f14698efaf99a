import Foundation

/// The part of a topology file (`issues show 2`, docs/topology.md) that a lock
/// experiment needs: each cluster's cores, and the keys the hosted runtime
/// adds: `host_cpus` and `node` per cluster, `lock` at the top.
///
/// A deliberately small reader: it reads only those keys, line by line, and
/// leaves full validation to `cmk topology check` (the Topology module).
/// Replace it with the Topology module's parser once that lands.
struct LockTopologyFile {
    struct Cluster {
        var cores: [Int] = []
        var hostCPUs: [Int]?
        var node = 0
        var line = 0
    }
    var name: String?
    var lock: String?
    var clusters: [Cluster] = []

    struct ParseError: Error, CustomStringConvertible {
        let description: String
    }

    init(path: String) throws {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ParseError(description: "\(path): cannot read the file")
        }
        var section = ""
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let lineNumber = index + 1
            var line = String(raw)
            if let hash = line.firstIndex(of: "#") { line = String(line[..<hash]) }
            line = line.trimmingCharacters(in: .whitespaces)
            if line.isEmpty { continue }
            func fail(_ what: String) -> ParseError { ParseError(description: "\(path):\(lineNumber): \(what)") }
            if line == "[[cluster]]" {
                section = "cluster"
                clusters.append(Cluster(line: lineNumber))
                continue
            }
            if line.hasPrefix("[") { section = line; continue }
            guard let eq = line.firstIndex(of: "=") else { throw fail("expected `key = value`") }
            let key = line[..<eq].trimmingCharacters(in: .whitespaces)
            let value = line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            func ints() throws -> [Int] {
                guard value.hasPrefix("["), value.hasSuffix("]") else { throw fail("\(key) must be a list of integers, like [0, 1]") }
                let inner = value.dropFirst().dropLast().split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                    .filter { !$0.isEmpty }
                return try inner.map { guard let v = Int($0), v >= 0 else { throw fail("\(key): '\($0)' is not a core number") }; return v }
            }
            func string() -> String { value.trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
            switch (section, key) {
            case ("", "name"): name = string()
            case ("", "lock"): lock = string()
            case ("cluster", "cores"): clusters[clusters.count - 1].cores = try ints()
            case ("cluster", "host_cpus"): clusters[clusters.count - 1].hostCPUs = try ints()
            case ("cluster", "node"):
                guard let n = Int(value), n >= 0 else { throw fail("node must be a NUMA node number") }
                clusters[clusters.count - 1].node = n
            default: continue
            }
        }
        if clusters.isEmpty { throw ParseError(description: "\(path): no [[cluster]] in the file") }
        for c in clusters {
            if c.cores.isEmpty { throw ParseError(description: "\(path):\(c.line): cluster has no cores") }
            if let h = c.hostCPUs, h.count != c.cores.count {
                throw ParseError(description: "\(path):\(c.line): host_cpus has \(h.count) entries for \(c.cores.count) cores")
            }
        }
    }
}
