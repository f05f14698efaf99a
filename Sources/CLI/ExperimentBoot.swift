import Cluster
import Foundation
import Topology

/// One boot of the kernel that runs an experiment (`ExperimentRequest` in the
/// boot information) and returns the console lines, for the QEMU backends of
/// `cmk experiment lock` and `cmk experiment channel`. Any failure of the boot
/// (panic, exception, timeout, incomplete) is an error with the kernel's line.
enum ExperimentBoot {
    static func run(
        _ topology: Topology, request: ExperimentRequest, icount: Bool, threading: QEMUCommand.Threading = .single,
        timeout: Double
    ) throws -> [String] {
        guard Shell.which(QEMUCommand.binary) else {
            throw CMKFailure.environment("\(QEMUCommand.binary) not found: run scripts/setup.sh")
        }
        try Project.buildKernelIfStale()
        let blob = try Project.writeBootInfo(
            Layout.bootInfoBytes(Layout.bootInfo(topology, experiment: request)), name: topology.name)
        let command = QEMUCommand(
            topology: topology, kernel: Project.kernel.path, bootInfo: blob.path, threading: threading, icount: icount)
        var lines: [String] = []
        var transcript = BootTranscript()
        let run = try QEMURunner.run(command.arguments, timeout: timeout) { line in
            lines.append(line)
            transcript.consume(line)
        }
        if run.timedOut { throw CMKFailure.timeout("experiment boot still running after \(timeout) s; last line: \(run.lastLine ?? "(none)")") }
        if let problem = transcript.problem(against: topology) { throw CMKFailure.bootFailed(problem) }
        return lines
    }
}
