import ArgumentParser
import Foundation
import GuestHost
import QEMUBoot
import Topology

/// `cmk guest`: parses the arguments and hands them to `GuestHost`.
struct GuestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "guest",
        abstract: "Run a Linux guest on cmk (a vCPU per cluster, or per core), its console on this terminal.",
        discussion: """
            Boots the topology as `cmk boot` does, with the guest's Image, initramfs and device \
            tree loaded into the topology's guest region; the clusters then run the guest, a vCPU \
            per cluster or, with `[guest] vcpus = "core"` in the topology, a vCPU per core (one NUMA \
            node per cluster either way). \
            Default guest: the Debian cloud kernel and busybox initramfs that scripts/setup.sh \
            builds into ~/.cache/cmk/guest. Interactive on a terminal (Ctrl-A x stops QEMU).

            Exit status: 0 the guest powered off; 1 cmk failed (kernel panic or exception, \
            incomplete boot, QEMU ended without the guest's power-off); 2 bad input; 3 timeout; \
            4 environment (QEMU, dtc, the default guest missing, build failed); 5 the guest \
            panicked or reset; 130 interrupted. docs/guest.md explains.
            """)

    @Argument(help: "Topology file (default: topologies/default.toml).")
    var file: String?

    @Option(help: "The guest's arm64 Linux Image (default: the cached Debian cloud kernel).")
    var kernel: String?

    @Option(help: "The guest's initramfs (default: the cached busybox initramfs).")
    var initrd: String?

    @Option(help: "Added to the guest's kernel command line.")
    var append: String?

    @Option(name: .customLong("run"), help: "Shell commands for the guest to run (then it powers off), instead of an interactive shell.")
    var script: String?

    @Option(help: "Seconds before QEMU is stopped (default: 120 with --run or without a terminal; none for an interactive session).")
    var timeout: Double?

    @Flag(help: "Print the guest's VM exits by kind and their handling time, then each cluster's big-lock statistics, at the end.")
    var stats = false

    @Flag(help: "Start QEMU's gdbstub, stopped before the first instruction, and print the gdb-multiarch command that attaches with the cmk kernel's symbols (and the guest's, with --vmlinux); docs/guest.md. The --timeout still applies.")
    var gdb = false

    @Option(help: "With --gdb: the local TCP port of the gdbstub.")
    var gdbPort: Int = 1234

    @Option(help: "With --gdb: the guest kernel's vmlinux (ELF with symbols), added to the printed gdb command.")
    var vmlinux: String?

    @Flag(help: "Print the guest's device tree source and exit.")
    var dts = false

    @Flag(help: "Print the QEMU command line and the guest's memory layout and exit (writes the device tree and boot information it names).")
    var printCommand = false

    func validate() throws {
        if vmlinux != nil && !gdb { throw ValidationError("--vmlinux goes with --gdb") }
    }

    func run() throws {
        try withExitCodes {
            let topology = try loadTopology(file ?? Project.defaultTopology)
            var options = GuestSession.Options()
            options.kernel = kernel
            options.initrd = initrd
            options.append = append
            options.run = script
            options.timeout = timeout
            options.stats = stats
            if gdb { options.gdb = GDBStub(port: gdbPort) }
            options.vmlinux = vmlinux
            let environment = GuestEnvironment.project
            do {
                if dts {
                    let plan = try GuestSession.plan(topology: topology, options: options, environment: environment) {
                        FileHandle.standardError.write(Data(($0 + "\n").utf8))
                    }
                    print(plan.deviceTree.source, terminator: "")
                    return
                }
                if printCommand {
                    let lines = try GuestSession.describe(topology: topology, options: options, environment: environment) {
                        FileHandle.standardError.write(Data(($0 + "\n").utf8))
                    }
                    for line in lines { print(line) }
                    return
                }
                let verdict = try GuestSession.run(topology: topology, options: options, environment: environment)
                if verdict.status != .ok {
                    FileHandle.standardError.write(Data("cmk: guest failed: \(verdict.reason ?? "")\n".utf8))
                    throw ExitCode(verdict.status.rawValue)
                }
            } catch let error as GuestHostError {
                FileHandle.standardError.write(Data("cmk: \(error.message)\n".utf8))
                throw ExitCode(error.status.rawValue)
            }
        }
    }
}

extension GuestEnvironment {
    /// This checkout: its cmk kernel, built as `cmk boot` builds it.
    static var project: GuestEnvironment {
        GuestEnvironment(
            repository: Project.root, cmkKernel: Project.kernel.path,
            workDirectory: Project.scratch.appendingPathComponent("guest"),
            buildKernel: { try Project.buildKernelIfStale() },
            buildRootTask: { try Project.buildRootTask() })
    }
}
