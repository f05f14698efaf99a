import ArgumentParser
import Foundation
import Hosted
import GuestHost
import QEMUBoot

extension GuestBench.Side: ExpressibleByArgument {}

/// `cmk bench guest`: parses the arguments and hands them to `GuestHost`.
struct BenchGuest: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "guest",
        abstract: "Guest boot-to-shell and boot-to-power-off: cmk against plain QEMU.",
        discussion: """
            Boots the same guest (Image, initramfs, command line, one vCPU, same memory) under \
            cmk and under plain QEMU (Linux at EL1, QEMU's own device tree), interleaved and \
            never concurrently. Times run from QEMU's start to the guest's `guest: init` line \
            and to QEMU's exit. Prints medians and spreads per side, last the line \
            `ratio: cmk/plain boot-to-shell X.XX power-off Y.YY`. docs/guest.md explains.
            """)

    @Argument(help: "Topology file (default: topologies/default.toml).")
    var file: String?

    @Option(help: "Runs per side.")
    var runs = 15

    @Option(help: "The guest's arm64 Linux Image (default: the cached Debian cloud kernel).")
    var kernel: String?

    @Option(help: "The guest's initramfs (default: the cached busybox initramfs).")
    var initrd: String?

    @Option(help: "Measure one side only: cmk or plain (no ratio).")
    var only: GuestBench.Side?

    @Option(help: "Seconds before one run is stopped as failed.")
    var timeout: Double = 120

    func run() throws {
        try withExitCodes {
            let path = file ?? Project.defaultTopology
            let topology = try loadTopology(path)
            var options = GuestBench.Options()
            options.runs = runs
            options.kernel = kernel
            options.initrd = initrd
            options.only = only
            options.timeout = timeout
            do {
                try GuestBench.execute(topology: topology, topologyPath: file ?? "topologies/default.toml",
                                       options: options, environment: .project, host: HostMachine.summary)
            } catch let error as GuestHostError {
                FileHandle.standardError.write(Data("cmk: bench guest: \(error.message)\n".utf8))
                throw ExitCode(error.status.rawValue)
            }
        }
    }
}
