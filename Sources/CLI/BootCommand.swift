import ArgumentParser
import Cluster
import Foundation
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

    @Option(help: ArgumentHelp("Provoke a failure on purpose (tests): KIND or KIND@CLUSTER, KIND one of data-abort, stack-overflow, panic, hang, flood, read-other, write-other, hold-console, read-other-gicr.", visibility: .hidden))
    var inject: String?

    func run() throws {
        try withExitCodes {
            let path = file ?? Project.defaultTopology
            let topology = try loadTopology(path)
            let injection = try inject.map { try FailedClusters.injection($0, clusterCount: topology.clusters.count) }
                ?? FaultInjection.none
            guard Shell.which(QEMUCommand.binary) else {
                throw CMKFailure.environment("\(QEMUCommand.binary) not found: run scripts/setup.sh (installs qemu-system-arm)")
            }
            try Project.buildKernelIfStale()
            let blob = try Project.writeBootInfo(
                Layout.bootInfoBytes(Layout.bootInfo(topology, inject: injection)), name: topology.name)
            var command = QEMUCommand(topology: topology, kernel: Project.kernel.path, bootInfo: blob.path, threading: tcg)
            if gdb {
                let stub = GDBStub(port: gdbPort)
                command.add(stub)
                FileHandle.standardError.write(Data("""
                    cmk: QEMU waits for gdb on 127.0.0.1:\(gdbPort), stopped before the first instruction; attach with
                      \(stub.debuggerShellLine(kernel: Project.kernel.path))

                    """.utf8))
            }

            let console = json ? FileHandle.standardError : FileHandle.standardOutput
            var transcript = BootTranscript()
            var failed = FailedClusters(lines: [])
            let started = Date()
            let run = try QEMURunner.run(command.arguments, timeout: timeout) { line in
                console.write(Data((line + "\n").utf8))
                transcript.consume(line)
                failed.consume(line)
            }
            let seconds = Date().timeIntervalSince(started)

            // Clusters that failed alone: the survivors said so and ended the
            // run (`cmk: boot ended ...`): exit 5, whatever else the failed
            // cluster printed (docs/boot.md).
            if !run.timedOut, !failed.clusters.isEmpty, failed.ended {
                if json {
                    print(BootJSON.render(topology: topology, file: path, transcript: transcript, seconds: seconds,
                                          verdict: .bootFailed(failed.summary), failed: failed))
                }
                FileHandle.standardError.write(Data("cmk: \(failed.summary)\n".utf8))
                throw ExitCode(5)
            }

            var verdict: CMKFailure?
            if run.timedOut {
                verdict = .timeout("QEMU still running after \(timeout) s; last line: \(run.lastLine ?? "(none)")")
            } else if let failure = transcript.failure {
                verdict = .bootFailed(failure)
            } else if let problem = transcript.problem(against: topology) {
                verdict = .bootFailed(problem + (run.status != 0 ? " (QEMU exit status \(run.status); \(run.errorOutput.trimmingCharacters(in: .whitespacesAndNewlines)))" : ""))
            } else if run.status != 0 {
                verdict = .bootFailed("QEMU exit status \(run.status): \(run.errorOutput)")
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

enum BootJSON {
    static func hex(_ x: UInt64) -> String { "0x" + String(x, radix: 16) }

    static func render(topology: Topology, file: String, transcript: BootTranscript, seconds: Double, verdict: CMKFailure?,
                       failed: FailedClusters? = nil) -> String {
        var clusters: [[String: Any]] = []
        for (i, spec) in topology.clusters.enumerated() {
            var entry: [String: Any] = ["id": i, "cores": spec.cores.sorted()]
            if let up = transcript.ups.first(where: { $0.cluster == i }) {
                entry["up"] = true
                entry["data"] = ["low": hex(up.dataLow), "high": hex(up.dataHigh)]
            } else {
                entry["up"] = false
            }
            if let check = transcript.privates.first(where: { $0.cluster == i }) {
                entry["private"] = ["va": hex(check.va), "pa": hex(check.pa), "value": check.value]
            }
            clusters.append(entry)
        }
        let result: String
        switch verdict {
        case nil: result = "ok"
        case .timeout?: result = "timeout"
        case .bootFailed?:
            result = transcript.failure?.hasPrefix("cmk: exception") == true ? "exception" : (transcript.failure != nil ? "panic" : "incomplete")
        default: result = "error"
        }
        var object: [String: Any] = [
            "topology": topology.name, "file": file, "result": result, "seconds": (seconds * 1000).rounded() / 1000,
            "clusters": clusters, "cores": topology.coreCount,
        ]
        if let verdict { object["error"] = verdict.description }
        if let failed, !failed.clusters.isEmpty {
            object["result"] = "cluster-failed"
            object["failed"] = failed.clusters.map { ["cluster": $0.cluster, "reason": $0.reason] }
        }
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }
}

/// Runs QEMU, hands each console line to a callback as it arrives, and
/// enforces the timeout (SIGTERM, then SIGKILL).
enum QEMURunner {
    struct Result {
        var status: Int32
        var timedOut: Bool
        var lastLine: String?
        var errorOutput: String
    }

    final class Lines: @unchecked Sendable {
        let lock = NSLock()
        var pending = Data()
        var last: String?
    }

    static func run(_ arguments: [String], timeout: Double, onLine: (String) -> Void) throws -> Result {
        let process = Process()
        guard let executable = Shell.resolve(arguments[0]) else {
            throw CMKFailure.environment("\(arguments[0]) not found on PATH: run scripts/setup.sh")
        }
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = Array(arguments.dropFirst())
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw CMKFailure.environment("cannot start \(arguments[0]): \(error.localizedDescription)")
        }
        let errData = Lines()
        let errThread = Thread {
            let d = err.fileHandleForReading.readDataToEndOfFile()
            errData.lock.lock(); errData.pending = d; errData.lock.unlock()
        }
        errThread.start()

        let reader = out.fileHandleForReading
        let deadline = Date().addingTimeInterval(timeout)
        var buffer = Data()
        var timedOut = false
        var last: String?
        let fd = reader.fileDescriptor
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let remaining = deadline.timeIntervalSinceNow
            if remaining <= 0 {
                timedOut = true
                break
            }
            let ready = poll(&poller, 1, Int32(min(remaining, 0.25) * 1000))
            if ready <= 0 { continue }
            let n = read(fd, &chunk, chunk.count)
            if n <= 0 { break }  // EOF: QEMU closed its console
            buffer.append(contentsOf: chunk[0..<n])
            while let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: buffer[buffer.startIndex..<newline], as: UTF8.self)
                    .trimmingCharacters(in: CharacterSet(charactersIn: "\r"))
                buffer.removeSubrange(buffer.startIndex...newline)
                last = line
                onLine(line)
            }
        }
        if timedOut {
            process.terminate()
            let killAt = Date().addingTimeInterval(2)
            while process.isRunning && Date() < killAt { usleep(2_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        if !buffer.isEmpty {
            let line = String(decoding: buffer, as: UTF8.self)
            last = line
            onLine(line)
        }
        Shell.wait(for: process)
        while errThread.isExecuting || !errThread.isFinished { usleep(1000) }
        errData.lock.lock()
        let errorText = String(decoding: errData.pending, as: UTF8.self)
        errData.lock.unlock()
        return Result(status: process.terminationStatus, timedOut: timedOut, lastLine: last, errorOutput: errorText)
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

    var summary: String {
        "cluster(s) failed: " + clusters.map { "\($0.cluster) (\($0.reason))" }.joined(separator: ", ")
    }
}
