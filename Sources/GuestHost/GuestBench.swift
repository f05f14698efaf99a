import Foundation
import Topology

/// Order statistics of one series of wall times.
public struct BenchSummary: Equatable, Sendable {
    public var count: Int
    public var median: Double
    public var min: Double
    public var max: Double
    /// First and third quartiles (linear interpolation between order
    /// statistics, as numpy's default).
    public var q1: Double
    public var q3: Double
    /// Interquartile range over the median: the run-to-run noise, robust to
    /// the odd slow run.
    public var spread: Double { median == 0 ? 0 : (q3 - q1) / median }

    public init?(_ values: [Double]) {
        guard !values.isEmpty else { return nil }
        let s = values.sorted()
        func quantile(_ q: Double) -> Double {
            let position = q * Double(s.count - 1)
            let lo = Int(position.rounded(.down)), hi = Int(position.rounded(.up))
            return s[lo] + (s[hi] - s[lo]) * (position - Double(lo))
        }
        count = s.count
        median = quantile(0.5)
        min = s.first!
        max = s.last!
        q1 = quantile(0.25)
        q3 = quantile(0.75)
    }
}

/// `cmk bench guest`: the same guest (Image, initramfs, command line, vCPU
/// count, memory) booted under cmk and under plain QEMU (Linux at EL1),
/// interleaved run by run, never concurrently. Two times per run from
/// QEMU's start: to the `guest: init` line (boot-to-shell) and to QEMU's exit
/// after the guest's power-off (boot-to-power-off).
public struct GuestBench {
    public enum Side: String, CaseIterable, Sendable {
        case cmk, plain
    }

    public struct Sample: Equatable, Sendable {
        public var shell: Double
        public var powerOff: Double
        public init(shell: Double, powerOff: Double) {
            self.shell = shell
            self.powerOff = powerOff
        }
    }

    public var samples: [Side: [Sample]] = [:]

    public init() {}

    /// The script each run executes: nothing, so the run is boot and power-off.
    public static let script = "true"

    public func summary(_ side: Side) -> (shell: BenchSummary, powerOff: BenchSummary)? {
        guard let s = samples[side], let shell = BenchSummary(s.map(\.shell)),
            let off = BenchSummary(s.map(\.powerOff))
        else { return nil }
        return (shell, off)
    }

    /// cmk's median over plain QEMU's, boot-to-shell and boot-to-power-off.
    public var ratios: (shell: Double, powerOff: Double)? {
        guard let c = summary(.cmk), let p = summary(.plain), p.shell.median > 0, p.powerOff.median > 0 else { return nil }
        return (c.shell.median / p.shell.median, c.powerOff.median / p.powerOff.median)
    }

    /// The report's table and, with both sides measured, the ratio line last.
    public func report() -> [String] {
        var lines = [
            "side    runs  boot-to-shell s: median  q1-q3        min-max        spread   power-off s: median  q1-q3        min-max        spread",
        ]
        func range(_ a: Double, _ b: Double) -> String {
            String(format: "%.3f-%.3f", a, b).padding(toLength: 13, withPad: " ", startingAt: 0)
        }
        for side in Side.allCases {
            guard let (shell, off) = summary(side) else { continue }
            lines.append(
                side.rawValue.padding(toLength: 8, withPad: " ", startingAt: 0)
                    + String(format: "%4d", shell.count) + "  "
                    + String(format: "%23.3f", shell.median) + "  " + range(shell.q1, shell.q3)
                    + range(shell.min, shell.max) + String(format: "%5.1f%%", shell.spread * 100) + "   "
                    + String(format: "%19.3f", off.median) + "  " + range(off.q1, off.q3)
                    + range(off.min, off.max) + String(format: "%5.1f%%", off.spread * 100))
        }
        if let ratios {
            lines.append(String(format: "ratio: cmk/plain boot-to-shell %.2f power-off %.2f", ratios.shell, ratios.powerOff))
        }
        return lines
    }

    /// QEMU without input or echo, its console read into a transcript until
    /// `finished(transcript)`; the time `guest: init` came, if it did.
    static func watch(_ arguments: [String], timeout: Double, finished: (GuestTranscript) -> Bool)
        throws(GuestHostError) -> (result: QEMUProcess.Result, transcript: GuestTranscript, shell: Double?)
    {
        var options = QEMUProcess.Options()
        options.input = .none
        options.echo = false
        options.timeout = timeout
        var transcript = GuestTranscript()
        var shell: Double?
        do {
            let result = try QEMUProcess.run(arguments, options: options) { line, at in
                transcript.consume(line)
                if shell == nil, transcript.reachedInit { shell = at }
                return finished(transcript)
            }
            return (result, transcript, shell)
        } catch {
            throw .environment(error.description)
        }
    }

    /// One run under cmk: the verdict must be a clean power-off.
    public static func measureCMK(_ arguments: [String], topology: Topology, timeout: Double) throws(GuestHostError) -> Sample {
        let (result, transcript, shell) = try watch(arguments, timeout: timeout) { $0.isFinished }
        let verdict = transcript.verdict(
            GuestTranscript.Ending(qemuStatus: result.status, timedOut: result.timedOut, interrupted: result.interrupted,
                                   timeout: timeout, lastLine: result.lastLine, qemuErrors: result.errors),
            topology: topology)
        if result.interrupted { throw .environment("interrupted") }
        guard verdict.status == .ok else { throw .environment("the cmk run failed: \(verdict.reason ?? "")") }
        guard let shell else { throw .environment("the cmk run powered off without `guest: init`") }
        guard transcript.runExit == 0 else {
            throw .environment("the cmk run's script ended with status \(transcript.runExit.map(String.init) ?? "(none)")")
        }
        return Sample(shell: shell, powerOff: result.seconds)
    }

    /// One run under plain QEMU: `guest: init`, `guest: run exit=0`, no
    /// guest panic, QEMU exit status 0 (PSCI SYSTEM_OFF).
    public static func measurePlain(_ arguments: [String], timeout: Double) throws(GuestHostError) -> Sample {
        let (result, transcript, shell) = try watch(arguments, timeout: timeout) { $0.guestPanicEnded }
        if result.interrupted { throw .environment("interrupted") }
        if let panic = transcript.guestPanic { throw .environment("the plain QEMU guest panicked: \(panic)") }
        if result.timedOut { throw .environment("the plain QEMU run timed out after \(timeout) s; last line: \(result.lastLine ?? "(none)")") }
        guard result.status == 0 else {
            throw .environment("plain QEMU exited with \(result.status.map { "status \($0)" } ?? "a signal"): \(result.errors.trimmed(" \n"))")
        }
        guard let shell else { throw .environment("the plain QEMU guest never printed `guest: init`; last line: \(result.lastLine ?? "(none)")") }
        guard transcript.runExit == 0 else {
            throw .environment("the plain QEMU guest's script ended with status \(transcript.runExit.map(String.init) ?? "(none)")")
        }
        return Sample(shell: shell, powerOff: result.seconds)
    }

    /// Run `runs` rounds, each side once per round in alternating order
    /// (cmk, plain, cmk, plain...); `sides` may name one side only.
    public mutating func run(
        runs: Int, sides: [Side], measure: (Side) throws(GuestHostError) -> Sample, progress: (String) -> Void
    ) throws(GuestHostError) {
        for round in 1...runs {
            for side in sides {
                let sample: Sample
                do {
                    sample = try measure(side)
                } catch {
                    throw GuestHostError(error.kind, "run \(round) (\(side.rawValue)): \(error.message)")
                }
                samples[side, default: []].append(sample)
                progress(String(format: "bench guest: run %d/%d %@: boot-to-shell %.3f s, power-off %.3f s",
                                round, runs, side.rawValue, sample.shell, sample.powerOff))
            }
        }
    }
}

extension GuestBench {
    public struct Options {
        public var runs = 15
        public var kernel: String?
        public var initrd: String?
        /// Measure one side only (diagnostics); nil: both, interleaved.
        public var only: Side?
        public var timeout: Double = 120
        public init() {}
    }

    /// `cmk bench guest`: plan once, then measure; progress on stderr, the
    /// report on stdout (the machine, the command to rerun, both QEMU
    /// command lines, medians and spreads, the ratio line last).
    public static func execute(
        topology: Topology, topologyPath: String, options: Options, environment: GuestEnvironment, host: String
    ) throws(GuestHostError) {
        guard options.runs >= 1 else { throw .badInput("--runs must be at least 1") }
        let say = { (s: String) in FileHandle.standardError.write(Data((s + "\n").utf8)) }
        var session = GuestSession.Options()
        session.kernel = options.kernel
        session.initrd = options.initrd
        session.run = script
        let plan = try GuestSession.plan(topology: topology, options: session, environment: environment, progress: say)
        let sides = options.only.map { [$0] } ?? Side.allCases
        var cmkArguments: [String] = []
        if sides.contains(.cmk) {
            try environment.ensureKernel()
            let rootTask = try environment.ensureRootTask()
            let files = try plan.write(to: environment.workDirectory, rootTask: rootTask)
            cmkArguments = plan.qemuArguments(
                cmkKernel: environment.cmkKernel, files: files, interactive: false, rootTask: rootTask)
        }
        let plainArguments = plan.plainQEMUArguments()

        var rerun = ["cmk", "bench", "guest", topologyPath, "--runs", "\(options.runs)"]
        if let k = options.kernel { rerun += ["--kernel", k] }
        if let i = options.initrd { rerun += ["--initrd", i] }
        if let o = options.only { rerun += ["--only", o.rawValue] }
        print("cmk bench guest on \(host)")
        print("guest: \(plan.kernelPath), initramfs \(plan.initrdPath ?? "(none)"), \(plan.vcpuDescription), \(plan.layout.guest.size >> 20) MiB; topology `\(topology.name)`")
        print("rerun: \(shellLine(rerun))")
        if sides.contains(.cmk) { print("cmk:   \(shellLine(cmkArguments))") }
        if sides.contains(.plain) { print("plain: \(shellLine(plainArguments))") }
        say("bench guest: \(options.runs) run(s) per side, \(sides.map(\.rawValue).joined(separator: " then ")) in turn")

        var bench = GuestBench()
        try bench.run(runs: options.runs, sides: sides, measure: { side throws(GuestHostError) in
            switch side {
            case .cmk: return try measureCMK(cmkArguments, topology: topology, timeout: options.timeout)
            case .plain: return try measurePlain(plainArguments, timeout: options.timeout)
            }
        }, progress: say)
        print("wall times in seconds from QEMU's start; spread = (q3 - q1) / median")
        for line in bench.report() { print(line) }
    }
}
