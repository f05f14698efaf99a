import Cluster
import Testing

@testable import Topology

/// A valid base file; each bad case edits it. Lines (1-based) are fixed:
///  1 name, 2 memory, 4 [[cluster]], 5 cores, 6 memory, 8 [[cluster]],
///  9 cores, 10 memory, 12 [shared], 13 channel, 14 guest
let validTopology = """
    name = "t"
    memory = "1G"

    [[cluster]]
    cores = [0, 1]
    memory = "128M"

    [[cluster]]
    cores = [2, 3]
    memory = "128M"

    [shared]
    channel = "1M"
    guest = "256M"
    """

func replacing(_ line: Int, with text: String) -> String {
    var lines = validTopology.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    lines[line - 1] = text
    return lines.joined(separator: "\n")
}

struct BadFile: CustomTestStringConvertible, Sendable {
    var kind: String
    var text: String
    var line: Int
    var message: String
    var testDescription: String { kind }
}

let badFiles: [BadFile] = [
    BadFile(kind: "malformed TOML: no `=`", text: replacing(2, with: "memory \"1G\""), line: 2, message: "malformed TOML: expected `=`"),
    BadFile(kind: "malformed TOML: unclosed string", text: replacing(1, with: "name = \"t"), line: 1, message: "malformed TOML: string is not closed"),
    BadFile(kind: "malformed TOML: unclosed array", text: replacing(9, with: "cores = [2, 3"), line: 10, message: "malformed TOML: expected `,` or `]`"),
    BadFile(kind: "malformed TOML: key set twice", text: replacing(10, with: "cores = [4]"), line: 10, message: "key `cores` is set twice (first on line 9)"),
    BadFile(kind: "unknown root key", text: replacing(3, with: "colour = \"blue\""), line: 3, message: "unknown key `colour`"),
    BadFile(kind: "unknown cluster key", text: replacing(7, with: "numa = 1"), line: 7, message: "unknown key `numa` in [[cluster]]"),
    BadFile(kind: "unknown shared key", text: validTopology + "\nconsole = \"1M\"", line: 15, message: "unknown key `console` in [shared]"),
    BadFile(kind: "unknown table", text: validTopology + "\n[gpu]", line: 15, message: "unknown table `[gpu]`"),
    BadFile(kind: "missing core (gap)", text: replacing(9, with: "cores = [3, 4]"), line: 9, message: "core ids must be 0..4 without gaps: 2 is in no cluster"),
    BadFile(kind: "duplicate core", text: replacing(9, with: "cores = [1, 2, 3]"), line: 9, message: "core 1 is already in cluster 0"),
    BadFile(kind: "core listed twice", text: replacing(5, with: "cores = [0, 1, 1]"), line: 5, message: "core 1 is listed twice in cluster 0"),
    BadFile(kind: "empty cluster", text: replacing(5, with: "cores = []"), line: 5, message: "cluster 0 has no cores"),
    BadFile(kind: "negative core id", text: replacing(5, with: "cores = [-1, 0, 1]"), line: 5, message: "core id -1 is out of range"),
    BadFile(kind: "core id not an integer", text: replacing(5, with: "cores = [\"0\", 1]"), line: 5, message: "core ids must be integers"),
    BadFile(kind: "missing cores", text: replacing(5, with: ""), line: 4, message: "missing key `cores` in this [[cluster]]"),
    BadFile(kind: "missing cluster memory", text: replacing(10, with: ""), line: 8, message: "missing key `memory` in this [[cluster]]"),
    BadFile(kind: "missing machine memory", text: replacing(2, with: ""), line: 1, message: "missing key `memory`"),
    BadFile(kind: "bad size", text: replacing(6, with: "memory = \"128Q\""), line: 6, message: "`memory` = \"128Q\" is not a size"),
    BadFile(kind: "zero size", text: replacing(10, with: "memory = \"0\""), line: 10, message: "cluster 1 `memory` is zero"),
    BadFile(kind: "size not 2M aligned", text: replacing(6, with: "memory = \"129M\""), line: 6, message: "must be a multiple of 2M"),
    BadFile(kind: "partition below minimum", text: replacing(6, with: "memory = \"2M\""), line: 6, message: "below the minimum partition of 4M"),
    BadFile(kind: "size of the wrong type", text: replacing(6, with: "memory = true"), line: 6, message: "must be a size like \"128M\", not a boolean"),
    BadFile(kind: "zero channel", text: replacing(13, with: "channel = \"0\""), line: 13, message: "`channel` is zero"),
    BadFile(kind: "channel too small", text: replacing(13, with: "channel = \"8K\""), line: 13, message: "below the minimum of 64K"),
    BadFile(kind: "partitions do not fit", text: replacing(10, with: "memory = \"1G\""), line: 2, message: "need 1426M (including the 16M boot region and 2M alignment) but `memory` is 1G"),
    BadFile(kind: "machine memory beyond the boot map", text: replacing(2, with: "memory = \"16G\""), line: 2, message: "exceeds cmk's maximum of 8G"),
    BadFile(kind: "more cores than QEMU/cmk support", text: replacing(9, with: "cores = [\((2...64).map(String.init).joined(separator: ", "))]"), line: 9, message: "65 cores: QEMU virt (GICv3) supports at most 512 and cmk at most 64"),
    BadFile(kind: "no clusters", text: "name = \"t\"\nmemory = \"1G\"\n[shared]\nchannel = \"1M\"", line: 1, message: "no `[[cluster]]`"),
    BadFile(kind: "missing [shared]", text: String(validTopology.split(separator: "[shared]")[0]), line: 1, message: "missing table `[shared]`"),
    BadFile(kind: "[cluster] instead of [[cluster]]", text: replacing(4, with: "[cluster]"), line: 8, message: "`[[cluster]]` conflicts with the `[cluster]` table on line 4"),
    BadFile(kind: "single [cluster]", text: "name = \"t\"\nmemory = \"1G\"\n[cluster]\ncores = [0]\nmemory = \"64M\"\n[shared]\nchannel = \"1M\"", line: 3, message: "`[cluster]` must be `[[cluster]]`"),
    BadFile(kind: "unknown lock", text: replacing(3, with: "lock = \"spinny\""), line: 3, message: "unknown lock `spinny`"),
    BadFile(kind: "unknown vCPU placement", text: validTopology + "\n[guest]\nvcpus = \"thread\"", line: 16, message: "unknown vCPU placement `thread` in [guest] (known: cluster, core)"),
    BadFile(kind: "vcpus not a string", text: validTopology + "\n[guest]\nvcpus = 8", line: 16, message: "`vcpus` must be a string, not an integer"),
    BadFile(kind: "unknown key in [guest]", text: validTopology + "\n[guest]\nvcpus = \"core\"\nmemory = \"1G\"", line: 17, message: "unknown key `memory` in [guest] (known: vcpus)"),
    BadFile(kind: "guest that is not a table", text: replacing(3, with: "guest = \"core\""), line: 3, message: "`guest` must be the table `[guest]`, not a string"),
    BadFile(kind: "dotted key inside [guest]", text: replacing(3, with: "guest.cpus = \"core\""), line: 3, message: "unknown key `cpus` in [guest]"),
    BadFile(kind: "host_cpus of the wrong length", text: replacing(7, with: "host_cpus = [0]"), line: 7, message: "host_cpus has 1 entries for the cluster's 2 cores"),
    BadFile(kind: "host CPU used twice", text: replacing(7, with: "host_cpus = [0, 1]").replacingOccurrences(of: "memory = \"128M\"\n\n[shared]", with: "memory = \"128M\"\nhost_cpus = [1, 2]\n\n[shared]"), line: 11, message: "host CPU 1 is already used by cluster 0"),
    BadFile(kind: "node not a number", text: replacing(7, with: "node = \"zero\""), line: 7, message: "`node` must be a NUMA node number"),
    // Found by the fuzz test: the sum of two huge partitions overflowed (a trap in `cmk topology check`).
    BadFile(kind: "partition beyond the machine", text: replacing(6, with: "memory = \"8388608T\"").replacingOccurrences(of: "memory = \"128M\"\n\n[shared]", with: "memory = \"8388608T\"\n\n[shared]"), line: 6, message: "cluster 0 `memory` (8388608T) exceeds cmk's maximum memory of 8G"),
    BadFile(kind: "a newline in a key stays escaped", text: replacing(3, with: "\"a\\nb\" = 1"), line: 3, message: "unknown key `a\nb`"),
    // Valid TOML that is not a topology: a topology error on its line, never "malformed TOML".
    BadFile(kind: "dotted key making an unknown table", text: replacing(3, with: "a.b = 1"), line: 3, message: "unknown table `[a]`"),
    BadFile(kind: "float size", text: replacing(6, with: "memory = 1.5e8"), line: 6, message: "must be a size like \"128M\", not a float"),
    BadFile(kind: "date as a size", text: replacing(13, with: "channel = 1979-05-27"), line: 13, message: "not a local date"),
    BadFile(kind: "offset date-time as a name", text: replacing(1, with: "name = 1979-05-27T07:32:00Z"), line: 1, message: "`name` must be a string, not an offset date-time"),
    BadFile(kind: "shared as a string", text: "shared = \"1M\"\n" + String(validTopology.split(separator: "[shared]")[0]), line: 1, message: "`shared` must be the table `[shared]`, not a string"),
    BadFile(kind: "cluster as an array of integers", text: "name = \"t\"\nmemory = \"1G\"\ncluster = [1, 2]\n[shared]\nchannel = \"1M\"", line: 3, message: "each cluster must be a table"),
    BadFile(kind: "cluster inline table with a bad core", text: "name = \"t\"\nmemory = \"1G\"\ncluster = [\n  { cores = [0], memory = \"64M\" },\n  { cores = [2], memory = \"64M\" },\n]\n[shared]\nchannel = \"1M\"", line: 5, message: "core ids must be 0..2 without gaps"),
    BadFile(kind: "unknown key in an inline cluster", text: "name = \"t\"\nmemory = \"1G\"\ncluster = [{ cores = [0], memory = \"64M\", numa = 0 }]\n[shared]\nchannel = \"1M\"", line: 3, message: "unknown key `numa` in [[cluster]]"),
    BadFile(kind: "dotted key inside [shared]", text: validTopology + "\nextra.size = \"1M\"", line: 15, message: "unknown key `extra` in [shared]"),
    // Invalid TOML: malformed, on its line.
    BadFile(kind: "malformed TOML: table defined twice", text: validTopology + "\n[shared]", line: 15, message: "malformed TOML: table `[shared]` is defined twice (first on line 12)"),
    BadFile(kind: "malformed TOML: a header after dotted keys", text: "name = \"t\"\nshared.channel = \"1M\"\n[shared]\nguest = \"0\"", line: 3, message: "malformed TOML: table `[shared]` is already defined by dotted keys on line 2"),
    BadFile(kind: "malformed TOML: inline table extended", text: "name = \"t\"\nshared = { channel = \"1M\" }\n[shared]", line: 3, message: "malformed TOML: table `[shared]` cannot be defined: it is already the inline table of line 2"),
    BadFile(kind: "malformed TOML: integer beyond 64 bits", text: replacing(5, with: "cores = [0, 99999999999999999999]"), line: 5, message: "does not fit in 64 bits"),
    BadFile(kind: "malformed TOML: leading zero", text: replacing(5, with: "cores = [00, 1]"), line: 5, message: "malformed TOML: expected `,` or `]`"),
    BadFile(kind: "malformed TOML: bad escape", text: replacing(1, with: "name = \"a\\qb\""), line: 1, message: "unknown escape `\\q`"),
    BadFile(kind: "malformed TOML: February 30", text: replacing(3, with: "when = 2023-02-30"), line: 3, message: "is not a date (2/2023 has 28 days)"),
    BadFile(kind: "malformed TOML: unclosed multi-line string", text: replacing(1, with: "name = \"\"\"t"), line: 1, message: "multi-line string opened here is never closed"),
    BadFile(kind: "malformed TOML: newline in an inline table", text: replacing(12, with: "shared = { channel = \"1M\",\n guest = \"0\" }"), line: 12, message: "must stay on one line"),
]

@Suite struct TopologyCheckTests {
    @Test func hostedKeysLoad() throws {
        let t = try TopologyLoader.load(text: replacing(7, with: "host_cpus = [1, 0]\nnode = 1"), file: "t.toml")
        #expect(t.clusters[0].hostCPUs == [1, 0])
        #expect(t.clusters[0].node == 1)
        #expect(t.clusters[1].hostCPUs == nil)
        #expect(t.clusters[1].node == 0)
    }

    @Test func validFileLoads() throws {
        let t = try TopologyLoader.load(text: validTopology, file: "t.toml")
        #expect(t.name == "t")
        #expect(t.memory == 1 << 30)
        #expect(t.clusters.map(\.cores) == [[0, 1], [2, 3]])
        #expect(t.clusters.map(\.memory) == [128 << 20, 128 << 20])
        #expect(t.channel == 1 << 20)
        #expect(t.guest == 256 << 20)
        #expect(t.coreCount == 4)
    }

    /// `[guest] vcpus`: "cluster" (also the default, with or without an
    /// empty [guest]) or "core"; any TOML spelling.
    @Test func guestPlacement() throws {
        #expect(try TopologyLoader.load(text: validTopology, file: "t").guestPlacement == .cluster)
        #expect(try TopologyLoader.load(text: validTopology + "\n[guest]", file: "t").guestPlacement == .cluster)
        #expect(try TopologyLoader.load(text: validTopology + "\n[guest]\nvcpus = \"cluster\"", file: "t").guestPlacement == .cluster)
        #expect(try TopologyLoader.load(text: validTopology + "\n[guest]\nvcpus = \"core\"", file: "t").guestPlacement == .core)
        #expect(try TopologyLoader.load(text: replacing(3, with: "guest.vcpus = 'core'"), file: "t").guestPlacement == .core)
        #expect(try TopologyLoader.load(text: replacing(3, with: "guest = { vcpus = \"core\" }"), file: "t").guestPlacement == .core)
        #expect(GuestImage.Placement.core.topologyName == "core")
        #expect(GuestImage.Placement.topologyNames.allSatisfy { GuestImage.Placement(topologyName: $0)?.topologyName == $0 })
    }

    @Test(arguments: badFiles)
    func badFileIsReportedWithFileLineAndProblem(_ bad: BadFile) {
        do {
            let t = try TopologyLoader.load(text: bad.text, file: "topologies/bad.toml")
            Issue.record("accepted a bad file: \(t)")
        } catch {
            let rendered = error.description
            let expected = "topologies/bad.toml:\(bad.line): "
            #expect(
                error.diagnostics.contains { $0.line == bad.line && $0.message.contains(bad.message) },
                "expected \(expected)...\(bad.message)... in:\n\(rendered)")
            #expect(rendered.split(separator: "\n").allSatisfy { $0.hasPrefix("topologies/bad.toml:") })
        }
    }

    @Test func everyProblemIsReportedNotJustTheFirst() {
        var text = replacing(3, with: "colour = 1")
        text = text.replacingOccurrences(of: "cores = [2, 3]", with: "cores = [1, 3]")
        do {
            _ = try TopologyLoader.load(text: text, file: "f")
            Issue.record("accepted")
        } catch {
            #expect(error.diagnostics.count >= 3, "\(error)")  // colour, duplicate 1, gap at 2
            #expect(error.diagnostics.map(\.line) == error.diagnostics.map(\.line).sorted())
        }
    }

    @Test func sizes() {
        #expect(parseSize("64K") == 64 << 10)
        #expect(parseSize("128M") == 128 << 20)
        #expect(parseSize("1g") == 1 << 30)
        #expect(parseSize("2MiB") == 2 << 20)
        #expect(parseSize("4096") == 4096)
        #expect(parseSize("") == nil)
        #expect(parseSize("M") == nil)
        #expect(parseSize("1.5G") == nil)
        #expect(parseSize("99999999999999999999T") == nil)
        #expect(formatSize(1 << 30) == "1G")
        #expect(formatSize(96 << 20) == "96M")
        #expect(formatSize(100) == "100")
    }
}

/// Rings span whole pages (each cluster maps only its own), so the channel
/// region must hold 2n(n-1) pages plus the control page: the checker says so
/// on the `channel` line instead of the kernel refusing the region at boot.
@Suite struct ChannelRegionSizeTests {
    func eightClusters(channel: String) -> String {
        var text = "name = \"t\"\nmemory = \"1G\"\n"
        for c in 0..<8 { text += "[[cluster]]\ncores = [\(c)]\nmemory = \"16M\"\n" }
        return text + "[shared]\nchannel = \"\(channel)\"\n"
    }

    @Test func tooSmallForTheRingsIsRefusedOnItsLine() throws {
        let lines = eightClusters(channel: "64K").split(separator: "\n")
        let channelLine = lines.firstIndex { $0.hasPrefix("channel") }! + 1
        #expect {
            try TopologyLoader.load(text: eightClusters(channel: "64K"), file: "t.toml")
        } throws: { error in
            "\(error)".contains("t.toml:\(channelLine): `channel` (64K) is too small for the rings of 8 clusters: at least 228K")
        }
        #expect(throws: (any Error).self) { try TopologyLoader.load(text: eightClusters(channel: "224K"), file: "t.toml") }
        _ = try TopologyLoader.load(text: eightClusters(channel: "228K"), file: "t.toml")
    }
}
