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
            let console = json ? FileHandle.standardError : FileHandle.standardOutput
            let boot = try KernelBoot.boot(
                topology, info: Layout.bootInfo(topology, inject: injection), threading: tcg, timeout: timeout,
                prepare: { command in
                    guard gdb else { return }
                    let stub = GDBStub(port: gdbPort)
                    command.add(stub)
                    FileHandle.standardError.write(Data((stub.attachMessage(kernel: Project.kernel.path) + "\n").utf8))
                },
                onLine: { console.write(Data(($0 + "\n").utf8)) })
            let (transcript, seconds, verdict) = (boot.transcript, boot.run.seconds, boot.verdict)

            if json {
                print(BootJSON.render(topology: topology, file: path, transcript: transcript, seconds: seconds, verdict: verdict))
            } else if verdict == nil {
                FileHandle.standardError.write(Data(String(format: "cmk: %@ booted: %d cluster(s), %d cores in %.2f s\n", topology.name, topology.clusters.count, topology.coreCount, seconds).utf8))
            }
            if let verdict { throw verdict }
        }
    }
}
