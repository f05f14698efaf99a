import Cluster
import Foundation
import Topology

/// One boot of the kernel that runs an experiment (`ExperimentRequest` in the
/// boot information) and returns the console lines, for the QEMU backends of
/// `cmk experiment lock` and `cmk experiment channel`. Any failure of the boot
/// (panic, exception, timeout, incomplete) is an error with the kernel's line.
public enum ExperimentBoot {
    public struct Output {
        public var lines: [String]
        public var transcript: BootTranscript
        /// Wall time of the boot, seconds.
        public var seconds: Double
    }

    /// The boot information with `request`, refused when out of range.
    public static func bootInfo(_ topology: Topology, request: ExperimentRequest) throws(CMKFailure) -> BootInfo {
        let info = Layout.bootInfo(topology, experiment: request)
        do {
            try info.validate()
        } catch {
            throw .environment("the experiment request is out of range (\(error.message)): round trips 1...\(ExperimentRequest.maxRoundTrips), messages 1...\(ExperimentRequest.maxMessages), hold up to \(ExperimentRequest.maxHold) iterations, delay up to \(ExperimentRequest.maxIterations), window up to \(ExperimentRequest.maxDurationTicks) ticks")
        }
        return info
    }

    public static func run(
        _ topology: Topology, request: ExperimentRequest, icount: Bool = false,
        threading: QEMUCommand.Threading = .single, timeout: Double
    ) throws(CMKFailure) -> Output {
        let info = try bootInfo(topology, request: request)
        var lines: [String] = []
        let boot = try KernelBoot.boot(topology, info: info, threading: threading, icount: icount, timeout: timeout,
                                       onLine: { lines.append($0) })
        let run = boot.run
        if run.interrupted { throw .interrupted }
        if run.timedOut { throw .timeout("experiment boot still running after \(timeout) s; last line: \(run.lastLine ?? "(none)")") }
        if let problem = boot.transcript.problem(against: topology) {
            throw .bootFailed(problem + (run.status != 0 ? " (QEMU exit status \(run.status))" : ""))
        }
        if run.status != 0 { throw .bootFailed("QEMU exit status \(run.status): \(run.errorOutput)") }
        return Output(lines: lines, transcript: boot.transcript, seconds: run.seconds)
    }
}
