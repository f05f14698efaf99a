import Cluster
import Foundation
import Testing

@testable import Topology

/// Random mutations of the shipped topology files: bytes, tokens, numbers,
/// duplicated, deleted and swapped lines, and TOML rewrites that keep the
/// meaning (dotted keys, inline tables, other integer and string forms).
struct TopologyMutator {
    var r: SeededRandom

    static let tokens = [
        "[[cluster]]", "[shared]", "[cluster]", "cluster", "shared", "memory", "cores", "channel", "guest", "name",
        "lock", "host_cpus", "node", "=", "\"", "'", "[", "]", "{", "}", ",", "#", ".", "true", "1.5", "1979-05-27",
        "\"\"\"", "'''", "\"mcs\"", "\"clh\"", "\"ticket\"", "\"64M\"", "\"2M\"", "0x10", "-1", "\n", "shared.channel", "\"8388608T\"", "\"16777215T\"", "\"16G\"", "\"a\\nb\"",
    ]

    mutating func mutate(_ original: [UInt8]) -> [UInt8] {
        var bytes = original
        for _ in 0..<(1 + r.below(3)) { bytes = once(bytes) }
        return bytes
    }

    mutating func once(_ bytes: [UInt8]) -> [UInt8] {
        var b = bytes
        var lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        func joined() -> [UInt8] { Array(lines.joined(separator: "\n").utf8) }
        switch r.below(10) {
        case 0:  // a byte: removed, inserted, replaced (anything, not only UTF-8)
            guard !b.isEmpty else { return b }
            let at = r.below(b.count)
            switch r.below(3) {
            case 0: b.remove(at: at)
            case 1: b.insert(UInt8(r.below(256)), at: at)
            default: b[at] = UInt8(r.below(256))
            }
            return b
        case 1:  // a token in place of a word or a character
            let at = r.below(b.count + 1)
            var end = at
            while end < b.count, end - at < 12, Parser_isWord(b[end]) { end += 1 }
            b.replaceSubrange(at..<max(end, min(at + 1, b.count)), with: Array(r.pick(Self.tokens).utf8))
            return b
        case 2 where r.chance(40):  // a size string: any unit, the extremes
            let sizes = b.indices.filter { b[$0] == 0x22 && $0 + 1 < b.count && Parser_isDigit(b[$0 + 1]) }
            guard let at = sizes.isEmpty ? nil : r.pick(sizes) else { return b }
            var end = at + 1
            while end < b.count, b[end] != 0x22, b[end] != 0x0A { end += 1 }
            let size = r.pick(["16777215T", "8388608T", "0", "4K", "64K", "2M", "4M", "6M", "8G", "16G", "1T", "3M", "2046M", "1022M", "2MiB"])
            if r.chance(30) {  // every partition of that size at once
                let old = String(decoding: b[at..<min(end + 1, b.count)], as: UTF8.self)
                return Array(String(decoding: b, as: UTF8.self).replacingOccurrences(of: old, with: "\"\(size)\"").utf8)
            }
            b.replaceSubrange(at..<min(end + 1, b.count), with: Array("\"\(size)\"".utf8))
            return b
        case 2, 3:  // a number
            let starts = b.indices.filter { Parser_isDigit(b[$0]) && ($0 == 0 || !Parser_isDigit(b[$0 - 1])) }
            guard let at = starts.isEmpty ? nil : r.pick(starts) else { return b }
            var end = at
            while end < b.count, Parser_isDigit(b[end]) { end += 1 }
            let n = Int(String(decoding: b[at..<end], as: UTF8.self)) ?? 0
            let replacement = r.pick([
                0, 1, 2, n + 1, n - 1, n * 2, n / 2, n + 2, 63, 64, 65, 4096, 8191, 1 << 40, Int(r.below(100)), n * 1024,
            ])
            b.replaceSubrange(at..<end, with: Array(String(replacement).utf8))
            return b
        case 4:  // a line duplicated
            let i = r.below(lines.count)
            lines.insert(lines[i], at: r.below(lines.count + 1))
            return joined()
        case 5:  // a line deleted
            lines.remove(at: r.below(lines.count))
            return joined()
        case 6:  // two lines swapped
            let i = r.below(lines.count), j = r.below(lines.count)
            lines.swapAt(i, j)
            return joined()
        case 7:  // `[shared]` spelled as dotted keys at the top
            guard let s = lines.firstIndex(of: "[shared]") else { return b }
            let body = lines[(s + 1)...].filter { $0.contains("=") }.map { "shared." + $0 }
            lines.removeSubrange(s...)
            let firstTable = lines.firstIndex { $0.hasPrefix("[") } ?? lines.count
            lines.insert(contentsOf: body, at: firstTable)
            return joined()
        case 8:  // one `[[cluster]]` as an inline table in `cluster = [...]` (all of them, or none)
            var inline: [String] = []
            var out: [String] = []
            var i = 0
            while i < lines.count {
                if lines[i] == "[[cluster]]" {
                    var fields: [String] = []
                    i += 1
                    while i < lines.count, !lines[i].hasPrefix("["), !lines[i].isEmpty {
                        let code = lines[i].split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false)[0]
                        if code.contains("=") { fields.append(code.trimmingCharacters(in: .whitespaces)) }
                        i += 1
                    }
                    inline.append("  { " + fields.joined(separator: ", ") + " },")
                } else {
                    out.append(lines[i])
                    i += 1
                }
            }
            guard !inline.isEmpty else { return b }
            let firstTable = out.firstIndex { $0.hasPrefix("[") } ?? out.count
            out.insert(contentsOf: ["cluster = ["] + inline + ["]"], at: firstTable)
            lines = out
            return joined()
        default:  // another TOML spelling of a value: a size in bytes, hex core ids, literal strings
            let text = String(decoding: b, as: UTF8.self)
            let spellings: [(String, String)] = [
                ("\"64M\"", "67_108_864"), ("\"128M\"", "0x800_0000"), ("\"1M\"", "'1M'"), ("\"1G\"", "\"\"\"1G\"\"\""),
                ("[0, 1]", "[0x0, 0b1, # a comment\n]"), ("\"256M\"", "'''\n256M'''"), ("name = ", "\"name\" = "),
            ]
            let (from, to) = r.pick(spellings)
            return Array(text.replacingOccurrences(of: from, with: to).utf8)
        }
    }
}

func Parser_isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }
func Parser_isWord(_ c: UInt8) -> Bool { Parser_isDigit(c) || (c | 0x20 >= 0x61 && c | 0x20 <= 0x7A) || c == 0x5F }

@Suite struct TopologyFuzzTests {
    /// At least 10,000 mutations (`CMK_FUZZ_MUTATIONS`, `CMK_FUZZ_SEED`)
    /// never crash the loader; every rejection names the file and a line of
    /// it; every accepted file lays out and gives a boot information blob
    /// that decodes and validates.
    @Test func mutatedShippedFilesNeverCrashTheLoader() throws {
        let count = Int(environmentNumber("CMK_FUZZ_MUTATIONS") ?? 10_000)
        let seed = environmentNumber("CMK_FUZZ_SEED") ?? 0xF0_22ED
        let verbose = ProcessInfo.processInfo.environment["CMK_FUZZ_VERBOSE"] != nil
        print("topology fuzz: \(count) mutations, seed 0x\(String(seed, radix: 16)) (a crash: replay with CMK_FUZZ_SEED and CMK_FUZZ_VERBOSE=1)")
        let originals = try shippedTopologies().map {
            try Array(Data(contentsOf: repositoryRoot.appendingPathComponent("topologies/\($0)")))
        }
        try #require(!originals.isEmpty)
        var mutator = TopologyMutator(r: SeededRandom(seed: seed))
        let started = Date()
        var accepted = 0, malformed = 0, invalid = 0, failures = 0
        for i in 0..<count {
            let bytes = mutator.mutate(mutator.r.pick(originals))
            if verbose { print("mutation \(i):\n\(String(decoding: bytes, as: UTF8.self))") }
            let file = "fuzz-\(i).toml"
            let lineCount = bytes.filter { $0 == 0x0A }.count + 1
            func failure(_ what: String) {
                failures += 1
                if failures <= 5 {
                    Issue.record("mutation \(i) of seed 0x\(String(seed, radix: 16)): \(what)\n--- file ---\n\(String(decoding: bytes, as: UTF8.self))")
                }
            }
            do {
                let topology = try TopologyLoader.load(bytes: bytes, file: file)
                accepted += 1
                let layout = Layout(topology)
                var regions = layout.partitions + [layout.channel]
                if layout.guest.size > 0 { regions.append(layout.guest) }
                for (k, a) in regions.enumerated() {
                    if a.base % Machine.regionAlignment != 0 || a.base < Machine.ramBase + Machine.bootRegionSize
                        || a.end > Machine.ramBase + topology.memory || regions[(k + 1)...].contains(where: a.overlaps)
                    {
                        failure("accepted, but region \(a) does not lay out")
                    }
                }
                let info = Layout.bootInfo(topology)
                do {
                    try info.validate()
                    let blob = Layout.bootInfoBytes(info)
                    let decoded = try blob.withUnsafeBytes { try BootInfo.decode($0.baseAddress!, available: $0.count) }
                    if decoded.clusterCount != topology.clusters.count || decoded.coreCount != topology.coreCount {
                        failure("accepted, but the blob decodes to \(decoded.clusterCount) clusters")
                    }
                } catch {
                    failure("accepted, but the boot information is refused: \(error)")
                }
            } catch {
                if error.diagnostics.first?.message.hasPrefix("malformed TOML") == true { malformed += 1 } else { invalid += 1 }
                for d in error.diagnostics where d.file != file || d.line < 1 || d.line > lineCount {
                    failure("rejected, but `\(d)` does not name a line of \(file) (1...\(lineCount))")
                }
                if error.diagnostics.isEmpty { failure("rejected without a diagnostic") }
                if !error.description.split(separator: "\n").allSatisfy({ $0.hasPrefix("\(file):") }) {
                    failure("a diagnostic is not FILE:LINE: \(error.description)")
                }
            }
        }
        print("topology fuzz: \(count) mutations in \(String(format: "%.1f", Date().timeIntervalSince(started))) s: \(accepted) accepted (laid out, boot information valid), \(invalid) rejected as topologies, \(malformed) as malformed TOML, \(failures) failures")
        #expect(failures == 0)
        #expect(accepted > count / 20 && invalid > count / 20 && malformed > count / 20, "a fuzz that only reaches one outcome proves little")
    }
}
