import Foundation
import Topology

/// What the host tool around the library provides: where the repository
/// and cmk's kernel image are, and how to build that image when its sources
/// changed (`cmk boot`'s helper, passed in rather than copied).
public struct GuestEnvironment {
    public var repository: URL
    /// The cmk kernel ELF QEMU boots.
    public var cmkKernel: String
    /// Where the guest's generated files go (DTB, .dts, boot information).
    public var workDirectory: URL
    public var buildKernel: () throws -> Void
    /// Build the EL0 root task if stale and say where it is (nil: none).
    public var buildRootTask: () throws -> RootTaskFile?
    public var cache: GuestCache

    public init(repository: URL, cmkKernel: String, workDirectory: URL, cache: GuestCache = GuestCache(),
                buildKernel: @escaping () throws -> Void, buildRootTask: @escaping () throws -> RootTaskFile? = { nil }) {
        self.buildRootTask = buildRootTask
        self.repository = repository
        self.cmkKernel = cmkKernel
        self.workDirectory = workDirectory
        self.cache = cache
        self.buildKernel = buildKernel
    }

    /// Build the cmk kernel if stale; a failure is an environment error.
    func ensureKernel() throws(GuestHostError) {
        do {
            try buildKernel()
        } catch {
            throw .environment("\(error)")
        }
    }

    /// Build the root task if stale; a failure is an environment error.
    func ensureRootTask() throws(GuestHostError) -> RootTaskFile? {
        do {
            return try buildRootTask()
        } catch {
            throw .environment("\(error)")
        }
    }

    /// The user's kernel and initramfs, or the cached defaults.
    func guestFiles(kernel: String?, initrd: String?, progress: (String) -> Void) throws(GuestHostError)
        -> (kernel: String, initrd: String)
    {
        if let kernel, let initrd { return (kernel, initrd) }
        let defaults = try cache.defaultFiles(repository: repository, progress: progress)
        return (kernel ?? defaults.kernel, initrd ?? defaults.initrd)
    }
}

/// `cmk guest`: one run of a Linux guest on cmk with the console on the
/// user's terminal.
public struct GuestSession {
    public struct Options {
        public var kernel: String?
        public var initrd: String?
        public var append: String?
        public var run: String?
        /// Seconds; nil: 120 s with `--run` or when stdin is not a terminal,
        /// none for an interactive terminal session.
        public var timeout: Double?
        public var stats = false
        /// QEMU's gdbstub (`--gdb`): QEMU starts stopped before the first
        /// instruction and waits for gdb.
        public var gdb: GDBStub?
        /// The guest's `vmlinux`, whose symbols the printed gdb command adds.
        public var vmlinux: String?
        public init() {}
    }

    public static let defaultTimeout: Double = 120

    /// The plan for `topology` (kernel and initramfs resolved).
    public static func plan(topology: Topology, options: Options, environment: GuestEnvironment,
                            progress: (String) -> Void) throws(GuestHostError) -> GuestPlan {
        if let vmlinux = options.vmlinux, !FileManager.default.isReadableFile(atPath: vmlinux) {
            throw .badInput("cannot read the guest's vmlinux \(vmlinux)")
        }
        let files = try environment.guestFiles(kernel: options.kernel, initrd: options.initrd, progress: progress)
        var seed = [UInt8](repeating: 0, count: 32)
        for i in seed.indices { seed[i] = UInt8.random(in: 0...255) }
        return try GuestPlan(topology: topology, kernel: files.kernel, initrd: files.initrd,
                             bootArgs: GuestBootArgs(append: options.append, run: options.run), rngSeed: seed)
    }

    /// What `cmk guest --print-command` shows: the files written, the QEMU
    /// command line (one line, runnable by hand), the guest memory layout and,
    /// with `--gdb`, the gdb command that attaches.
    public static func describe(topology: Topology, options: Options, environment: GuestEnvironment,
                                progress: (String) -> Void) throws(GuestHostError) -> [String] {
        let plan = try plan(topology: topology, options: options, environment: environment, progress: progress)
        let rootTask = try environment.ensureRootTask()
        let files = try plan.write(to: environment.workDirectory, rootTask: rootTask)
        let interactive = options.run == nil && isatty(STDIN_FILENO) == 1
        var lines = [
            shellLine(plan.qemuArguments(
                cmkKernel: environment.cmkKernel, files: files, interactive: interactive, gdb: options.gdb,
                rootTask: rootTask)),
            plan.layout.description,
            plan.vcpuPlacementLine,
            "kernel command line: \(plan.bootArgs)",
        ]
        if let stub = options.gdb {
            lines.append("gdb: " + stub.debuggerShellLine(kernel: environment.cmkKernel, vmlinux: options.vmlinux))
        }
        return lines
    }

    /// Boot the topology with the guest; the console streams to stdout,
    /// cmk's messages go to stderr. Returns the exit status and its reason.
    public static func run(topology: Topology, options: Options, environment: GuestEnvironment)
        throws(GuestHostError) -> (status: GuestStatus, reason: String?)
    {
        let say = { (s: String) in FileHandle.standardError.write(Data((s + "\n").utf8)) }
        let plan = try plan(topology: topology, options: options, environment: environment, progress: say)
        try environment.ensureKernel()
        let rootTask = try environment.ensureRootTask()
        let files = try plan.write(to: environment.workDirectory, rootTask: rootTask)
        let interactive = options.run == nil && isatty(STDIN_FILENO) == 1
        let arguments = plan.qemuArguments(
            cmkKernel: environment.cmkKernel, files: files, interactive: interactive, gdb: options.gdb,
            rootTask: rootTask)
        if let stub = options.gdb { say(stub.attachMessage(kernel: environment.cmkKernel, vmlinux: options.vmlinux)) }
        say("cmk: guest \(plan.kernelPath) (image_size \(GuestLayout.mib(plan.header.imageSize))) on `\(topology.name)`, \(plan.vcpuDescription); \(interactive ? "Ctrl-A x stops QEMU" : "console follows")")

        var console = QEMUProcess.Options()
        console.input = .inherit
        console.hidden = [GuestTranscript.statsPrefix, GuestTranscript.lockPrefix]
        console.timeout = options.timeout ?? (interactive ? nil : defaultTimeout)
        var transcript = GuestTranscript()
        let result: QEMUProcess.Result
        do {
            result = try QEMUProcess.run(arguments, options: console) { line, _ in
                transcript.consume(line)
                return transcript.isFinished
            }
        } catch {
            throw .environment(error.description)
        }
        let verdict = transcript.verdict(
            GuestTranscript.Ending(qemuStatus: result.status, timedOut: result.timedOut, interrupted: result.interrupted,
                                   timeout: console.timeout ?? 0, lastLine: result.lastLine, qemuErrors: result.errors),
            topology: topology)
        if result.endedMidLine { print("") }
        if options.stats { print(transcript.statsTable(clusterCount: topology.clusters.count)) }
        if verdict.status == .ok {
            let run = transcript.runExit.map { ", run exit=\($0)" } ?? ""
            say(String(format: "cmk: guest powered off after %.2f s%@", result.seconds, run))
        } else if !result.errors.isEmpty && verdict.reason?.contains(result.errors.trimmed(" \n")) != true {
            say(result.errors.trimmed(" \n"))
        }
        return verdict
    }
}
