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
            3 timeout; 4 QEMU missing or the kernel build failed. docs/boot.md lists the \
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

    @Option(help: ArgumentHelp("Provoke a failure on purpose: data-abort, stack-overflow, panic, hang (tests).", visibility: .hidden))
    var inject: String?

    func run() throws {
        try withExitCodes {
            let path = file ?? Project.defaultTopology
            let topology = try loadTopology(path)
            let injection: UInt64
            switch inject {
            case nil: injection = FaultInjection.none
            case "data-abort": injection = FaultInjection.dataAbort
            case "stack-overflow": injection = FaultInjection.stackOverflow
            case "panic": injection = FaultInjection.panic
            case "hang": injection = FaultInjection.hang
            case let other?: throw ValidationError("unknown --inject `\(other)` (data-abort, stack-overflow, panic, hang)")
            }
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
                FileHandle.standardError.write(Data((stub.attachMessage(kernel: Project.kernel.path) + "\n").utf8))
            }

            let console = json ? FileHandle.standardError : FileHandle.standardOutput
            var transcript = BootTranscript()
            let started = Date()
            let run = try QEMURunner.run(command.arguments, timeout: timeout) { line in
                console.write(Data((line + "\n").utf8))
                transcript.consume(line)
            }
            let seconds = Date().timeIntervalSince(started)

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

    static func render(topology: Topology, file: String, transcript: BootTranscript, seconds: Double, verdict: CMKFailure?) -> String {
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
