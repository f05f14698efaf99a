import Cluster
import Foundation
import Topology

/// One boot of the cmk kernel in QEMU, as `cmk boot` and the experiment
/// boots run it: build the image if stale, write the boot information, run
/// QEMU (`QEMUProcess`: no input, the console handed line by line to the
/// caller and checked by a `BootTranscript`), stop it at the timeout, and
/// judge the transcript against the topology.
public enum KernelBoot {
    /// How QEMU ended.
    public struct Run: Equatable, Sendable {
        /// QEMU's exit status; a signal's end counts as -1.
        public var status: Int32
        public var timedOut: Bool
        public var interrupted: Bool
        public var lastLine: String?
        /// QEMU's stderr.
        public var errorOutput: String
        /// Wall time from QEMU's start to its exit, seconds.
        public var seconds: Double

        public init(status: Int32, timedOut: Bool = false, interrupted: Bool = false, lastLine: String? = nil,
                    errorOutput: String = "", seconds: Double = 0) {
            self.status = status
            self.timedOut = timedOut
            self.interrupted = interrupted
            self.lastLine = lastLine
            self.errorOutput = errorOutput
            self.seconds = seconds
        }
    }

    /// What a boot produced: the transcript, how QEMU ended, and the verdict
    /// (nil: every cluster came up as the topology says).
    public struct Outcome {
        public var transcript: BootTranscript
        public var run: Run
        public var verdict: CMKFailure?
    }

    /// Run QEMU with `arguments`, handing each console line to `onLine`;
    /// SIGTERM at the timeout, SIGKILL 2 s later.
    public static func runQEMU(_ arguments: [String], timeout: Double, onLine: (String) -> Void) throws(CMKFailure) -> Run {
        var options = QEMUProcess.Options()
        options.input = .none
        options.echo = false
        options.timeout = timeout
        let result: QEMUProcess.Result
        do {
            result = try QEMUProcess.run(arguments, options: options) { line, _ in
                onLine(line)
                return false
            }
        } catch {
            throw .environment(error.description)
        }
        return Run(status: result.status ?? -1, timedOut: result.timedOut, interrupted: result.interrupted,
                   lastLine: result.lastLine, errorOutput: result.errors, seconds: result.seconds)
    }

    /// The verdict on a boot: the timeout, an interruption, the kernel's
    /// failure line, the first thing the transcript lacks, or QEMU's status.
    public static func verdict(_ run: Run, transcript: BootTranscript, topology: Topology, timeout: Double) -> CMKFailure? {
        if run.interrupted { return .interrupted }
        if run.timedOut { return .timeout("QEMU still running after \(timeout) s; last line: \(run.lastLine ?? "(none)")") }
        if let failure = transcript.failure { return .bootFailed(failure) }
        if let problem = transcript.problem(against: topology) {
            let errors = run.errorOutput.trimmingCharacters(in: .whitespacesAndNewlines)
            return .bootFailed(problem + (run.status != 0 ? " (QEMU exit status \(run.status); \(errors))" : ""))
        }
        if run.status != 0 { return .bootFailed("QEMU exit status \(run.status): \(run.errorOutput)") }
        return nil
    }

    /// Boot `info` (the topology's boot information, perhaps with an
    /// injection or an experiment request) in QEMU; `prepare` may add to the
    /// command (the gdbstub) before QEMU starts.
    public static func boot(
        _ topology: Topology, info: BootInfo, threading: QEMUCommand.Threading = .single, icount: Bool = false,
        timeout: Double, fuzzCalls: UInt64? = nil, prepare: (inout QEMUCommand) -> Void = { _ in },
        onLine: (String) -> Void = { _ in }
    ) throws(CMKFailure) -> Outcome {
        guard Subprocess.which(QEMUCommand.binary) else {
            throw .environment("\(QEMUCommand.binary) not found: run scripts/setup.sh (installs qemu-system-arm)")
        }
        try Project.buildKernelIfStale()
        let rootTask = try Project.buildRootTask()
        var info = info
        info.rootTask = rootTask.image
        if let fuzzCalls { info.rootTask?.fuzzCalls = fuzzCalls }
        let blob: URL
        do {
            blob = try Project.writeBootInfo(Layout.bootInfoBytes(info), name: topology.name)
        } catch {
            throw .environment("cannot write the boot information: \(error.localizedDescription)")
        }
        var command = QEMUCommand(
            topology: topology, kernel: Project.kernel.path, bootInfo: blob.path, threading: threading, icount: icount,
            rootTask: rootTask)
        prepare(&command)
        var transcript = BootTranscript()
        let run = try runQEMU(command.arguments, timeout: timeout) { line in
            onLine(line)
            transcript.consume(line)
        }
        return Outcome(transcript: transcript, run: run,
                       verdict: verdict(run, transcript: transcript, topology: topology, timeout: timeout))
    }
}

/// `cmk boot --json`: the summary on stdout (docs/boot.md).
public enum BootJSON {
    static func hex(_ x: UInt64) -> String { "0x" + String(x, radix: 16) }

    public static func render(topology: Topology, file: String, transcript: BootTranscript, seconds: Double, verdict: CMKFailure?) -> String {
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
