import ArgumentParser
import Cluster
import Foundation
import QEMUBoot
import Topology

extension QEMUCommand.Threading: ExpressibleByArgument {}

struct BootCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "boot",
        abstract: "Boot a topology in QEMU and report whether every cluster came up.",
        discussion: """
            Builds the kernel image if its sources changed, writes the topology's boot \
            information, runs qemu-system-aarch64 (`cmk topology qemu FILE` prints the \
            command) and streams the serial console.

            Exit status: 0 every cluster reported up, the private-data checks passed and \
            the kernel printed `cmk: boot ok` and powered off; 1 the kernel panicked, took \
            an exception, or the boot was incomplete; 2 the topology file is invalid; \
            3 timeout; 4 QEMU missing or the kernel build failed; 5 a cluster failed alone \
            (`cmk: cluster I failed: REASON`) and the others finished. docs/boot.md lists the \
            serial lines.
            """)

    @Argument(help: "Topology file (default: topologies/default.toml).")
    var file: String?

    @Option(help: "Seconds to wait for the kernel to power off.")
    var timeout: Double = 60

    @Flag(help: "Print a JSON summary on stdout (the console goes to stderr).")
    var json = false

    @Option(help: "QEMU TCG threading: single (default; vCPUs interleaved on one host thread) or multi (one host thread per vCPU: only with a free host CPU per core). See docs/boot.md.")
    var tcg: QEMUCommand.Threading = .single

    @Flag(help: "Start QEMU's gdbstub, stopped before the first instruction, and print the gdb-multiarch command that attaches (docs/boot.md). The --timeout still applies: raise it for a long session.")
    var gdb = false

    @Option(help: "With --gdb: the local TCP port of the gdbstub.")
    var gdbPort: Int = 1234

    @Option(help: "Random system calls the root task's fuzzer makes in every cluster (default 2000; docs/kernel/fuzz.md). Raise --timeout for a long run.")
    var fuzz: UInt64?

    @Option(help: ArgumentHelp("Provoke a failure on purpose (tests): KIND or KIND@CLUSTER, KIND one of data-abort, stack-overflow, panic, hang, flood, read-other, write-other, hold-console, read-other-gicr.", visibility: .hidden))
    var inject: String?

    func run() throws {
        try withExitCodes {
            let path = file ?? Project.defaultTopology
            let topology = try loadTopology(path)
            if let fuzz, fuzz > RootTaskImage.maxFuzzCalls {
                throw ValidationError("--fuzz \(fuzz): at most \(RootTaskImage.maxFuzzCalls)")
            }
            let injection = try inject.map { try FailedClusters.injection($0, clusterCount: topology.clusters.count) }
                ?? FaultInjection.none
            var failed = FailedClusters(lines: [])
            let console = json ? FileHandle.standardError : FileHandle.standardOutput
            let boot = try KernelBoot.boot(
                topology, info: Layout.bootInfo(topology, inject: injection), threading: tcg, timeout: timeout,
                fuzzCalls: fuzz,
                prepare: { command in
                    guard gdb else { return }
                    let stub = GDBStub(port: gdbPort)
                    command.add(stub)
                    FileHandle.standardError.write(Data((stub.attachMessage(kernel: Project.kernel.path) + "\n").utf8))
                },
                onLine: {
                    console.write(Data(($0 + "\n").utf8))
                    failed.consume($0)
                })
            let (transcript, seconds, verdict) = (boot.transcript, boot.run.seconds, boot.verdict)

            // Clusters that failed alone: the survivors said so and ended the
            // run (`cmk: boot ended ...`): exit 5, whatever else the failed
            // cluster printed (docs/boot.md).
            if !boot.run.timedOut, !boot.run.interrupted, !failed.clusters.isEmpty, failed.ended {
                if json {
                    print(failed.json(BootJSON.render(
                        topology: topology, file: path, transcript: transcript, seconds: seconds,
                        verdict: .bootFailed(failed.summary))))
                }
                FileHandle.standardError.write(Data("cmk: \(failed.summary)\n".utf8))
                throw ExitCode(5)
            }

            if json {
                print(BootJSON.render(topology: topology, file: path, transcript: transcript, seconds: seconds, verdict: verdict))
            } else if verdict == nil {
                FileHandle.standardError.write(Data(String(format: "cmk: %@ booted: %d cluster(s), %d cores in %.2f s\n", topology.name, topology.clusters.count, topology.coreCount, seconds).utf8))
            }
            if let verdict { throw verdict }
        }
    }
}

/// `cmk: cluster I failed: REASON` lines and the survivors' last line
/// (`cmk: boot ended ...`), and the `--inject KIND[@CLUSTER]` syntax.
struct FailedClusters {
    var clusters: [(cluster: Int, reason: String)] = []
    var ended = false

    static let kinds: [(String, UInt64)] = [
        ("data-abort", FaultInjection.dataAbort), ("stack-overflow", FaultInjection.stackOverflow),
        ("panic", FaultInjection.panic), ("hang", FaultInjection.hang), ("flood", FaultInjection.flood),
        ("read-other", FaultInjection.readOther), ("write-other", FaultInjection.writeOther),
        ("hold-console", FaultInjection.holdConsole), ("read-other-gicr", FaultInjection.readOtherGICR),
    ]

    /// The boot-information word for `KIND` or `KIND@CLUSTER`.
    static func injection(_ text: String, clusterCount: Int) throws -> UInt64 {
        let parts = text.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count <= 2, let kind = kinds.first(where: { $0.0 == parts[0] })?.1 else {
            throw ValidationError("unknown --inject `\(text)` (\(kinds.map(\.0).joined(separator: ", ")), optionally @CLUSTER)")
        }
        guard parts.count == 2 else { return FaultInjection.word(kind: kind, cluster: nil) }
        guard let cluster = Int(parts[1]), cluster >= 0, cluster < clusterCount else {
            throw ValidationError("--inject \(text): no cluster \(parts[1]) (the topology has \(clusterCount))")
        }
        return FaultInjection.word(kind: kind, cluster: cluster)
    }

    init(lines: [String]) { lines.forEach { consume($0) } }

    mutating func consume(_ line: String) {
        if line.hasPrefix("cmk: boot ended ") { ended = true }
        let prefix = "cmk: cluster "
        guard line.hasPrefix(prefix), let colon = line.range(of: " failed: ") else { return }
        guard let id = Int(line[line.index(line.startIndex, offsetBy: prefix.count)..<colon.lowerBound]) else { return }
        if !clusters.contains(where: { $0.cluster == id }) {
            clusters.append((id, String(line[colon.upperBound...])))
        }
    }

    /// `cmk boot --json`'s summary with the failed clusters named:
    /// `"result": "cluster-failed"`, `"failed": [{"cluster": I, "reason": ...}]`.
    func json(_ summary: String) -> String {
        guard var object = (try? JSONSerialization.jsonObject(with: Data(summary.utf8))) as? [String: Any] else { return summary }
        object["result"] = "cluster-failed"
        object["failed"] = clusters.map { ["cluster": $0.cluster, "reason": $0.reason] as [String: Any] }
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    var summary: String {
        "cluster(s) failed: " + clusters.map { "\($0.cluster) (\($0.reason))" }.joined(separator: ", ")
    }
}
