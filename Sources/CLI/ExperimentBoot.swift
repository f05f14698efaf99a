import Cluster
import Foundation
import Topology

/// One boot of the kernel that runs an experiment (`ExperimentRequest` in the
/// boot information) and returns the console lines, for the QEMU backends of
/// `cmk experiment lock` and `cmk experiment channel`. Any failure of the boot
/// (panic, exception, timeout, incomplete) is an error with the kernel's line.
enum ExperimentBoot {
    struct Output {
        var lines: [String]
        var transcript: BootTranscript
        /// Wall time of the boot, seconds.
        var seconds: Double
    }

    static func run(
        _ topology: Topology, request: ExperimentRequest, icount: Bool = false,
        threading: QEMUCommand.Threading = .single, timeout: Double
    ) throws -> Output {
        guard Shell.which(QEMUCommand.binary) else {
            throw CMKFailure.environment("\(QEMUCommand.binary) not found: run scripts/setup.sh")
        }
        let info = Layout.bootInfo(topology, experiment: request)
        do {
            try info.validate()
        } catch {
            throw CMKFailure.environment("the experiment request is out of range (\(error.message)): round trips 1...\(ExperimentRequest.maxRoundTrips), messages 1...\(ExperimentRequest.maxMessages), iterations up to \(ExperimentRequest.maxIterations), window up to \(ExperimentRequest.maxDurationTicks) ticks")
        }
        try Project.buildKernelIfStale()
        let blob = try Project.writeBootInfo(Layout.bootInfoBytes(info), name: topology.name)
        let command = QEMUCommand(
            topology: topology, kernel: Project.kernel.path, bootInfo: blob.path, threading: threading, icount: icount)
        var lines: [String] = []
        var transcript = BootTranscript()
        let started = Date()
        let run = try QEMURunner.run(command.arguments, timeout: timeout) { line in
            lines.append(line)
            transcript.consume(line)
        }
        let seconds = Date().timeIntervalSince(started)
        if run.timedOut { throw CMKFailure.timeout("experiment boot still running after \(timeout) s; last line: \(run.lastLine ?? "(none)")") }
        if let problem = transcript.problem(against: topology) {
            throw CMKFailure.bootFailed(problem + (run.status != 0 ? " (QEMU exit status \(run.status))" : ""))
        }
        if run.status != 0 { throw CMKFailure.bootFailed("QEMU exit status \(run.status): \(run.errorOutput)") }
        return Output(lines: lines, transcript: transcript, seconds: seconds)
    }
}
