import ArgumentParser
import Foundation
import Hosted
import Cluster
import Kernel
import QEMUBoot
import Topology

/// `cmk bench ipc`: a client `Call`s and a server `ReplyRecv`s through the
/// real kernel entry (big lock, lookup, fast path, scheduler) on the host.
/// Reports nanoseconds and instructions per one-way IPC, each differenced
/// against the same loop with the kernel calls left out.
struct BenchIPC: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ipc",
        abstract: "Measure one-way IPC (Call / ReplyRecv): on the host, or on AArch64 in QEMU (--qemu).",
        discussion: """
            Without --qemu: the host kernel's entry (big lock, lookup, fast path, scheduler) \
            timed on this machine, and counted in host instructions under callgrind.

            With --qemu [TOPOLOGY]: builds the kernel and the root task, boots TOPOLOGY \
            (default topologies/1x4.toml: one cluster, so no other kernel runs while QEMU counts; cluster 0 needs at least 2 cores) in QEMU with \
            -icount shift=0, and cluster 0's root task counts instructions (PMU INST_RETIRED) \
            and cycles around --round-trips Call/ReplyRecv round trips between two EL0 \
            threads: on one core, then with the server on core 1 (every IPC crosses cores \
            through the reschedule IPI; both cores' instructions are counted: QEMU's INST_RETIRED counts the whole machine, so the client's count is taken). Counts include \
            the exception entry, the kernel at EL2 and the ERET. Prints a table, the host \
            callgrind figure (unless --no-callgrind) and, last, \
            `aarch64: N instructions per one-way IPC (same core), M (cross-core)`. \
            See docs/bench-ipc.md.
            """)

    @Flag(help: "Measure on AArch64: boot the kernel in QEMU (-icount shift=0) and count with the PMU.")
    var qemu = false

    @Argument(help: "With --qemu: topology file (default: topologies/1x4.toml).")
    var topology: String? = nil

    @Option(help: "With --qemu: measured round trips per case (1...100000).")
    var roundTrips = 10_000

    @Option(help: "With --qemu: seconds before QEMU is stopped.")
    var timeout: Double = 600

    @Option(help: "Round trips to time (each is two one-way IPCs).")
    var iterations = 2_000_000

    @Option(help: "Round trips under callgrind (instruction counts).")
    var countIterations = 100_000

    @Flag(help: "Skip the callgrind instruction count.")
    var noCallgrind = false

    @Option(help: .hidden)
    var inner: String? = nil

    func validate() throws {
        if !qemu, topology != nil { throw ValidationError("a topology is only taken with --qemu") }
        if roundTrips < 1 || UInt64(roundTrips) > ExperimentRequest.maxBenchRoundTrips {
            throw ValidationError("--round-trips \(roundTrips): must be 1...\(ExperimentRequest.maxBenchRoundTrips)")
        }
        if timeout <= 0 { throw ValidationError("--timeout must be positive") }
        if iterations < 1 || countIterations < 1 { throw ValidationError("--iterations and --count-iterations must be at least 1") }
    }

    func run() throws {
        if qemu { return try runQEMU() }
        if let mode = inner {
            // Child process under callgrind: run the loop once and exit.
            let world = try IPCWorld()
            world.run(roundTrips: countIterations, ipc: mode == "ipc")
            if mode == "ipc" { try world.verify(roundTrips: countIterations) }
            return
        }
        let world = try IPCWorld()
        world.run(roundTrips: 10_000, ipc: true)  // warm up
        let clock = ContinuousClock()
        let withIPC = clock.measure { world.run(roundTrips: iterations, ipc: true) }
        try world.verify(roundTrips: 10_000 + iterations)
        let without = clock.measure { world.run(roundTrips: iterations, ipc: false) }
        let ns = (seconds(withIPC) - seconds(without)) * 1e9 / Double(2 * iterations)
        print("cmk bench ipc: one-way IPC = Call or ReplyRecv, client and server at equal priority")
        print("machine: \(HostMachine.summary)")
        print(String(format: "time: %.1f ns per one-way IPC (%d round trips; %.3f s with IPC, %.3f s without)",
            ns, iterations, seconds(withIPC), seconds(without)))
        if noCallgrind {
            print("instructions: skipped (--no-callgrind)")
        } else {
            switch (callgrind("ipc"), callgrind("baseline")) {
            case let (.counted(ipc, strippedIPC), .counted(base, strippedBase)):
                let per = Double(ipc - base) / Double(2 * countIterations)
                let copy = strippedIPC || strippedBase ? ", counted on a copy without debug information" : ""
                print(String(format: "host instructions: %.1f per one-way IPC (callgrind Ir on %@, %d round trips: %d with IPC, %d without%@)",
                    per, hostArchitecture, countIterations, ipc, base, copy))
                print(per <= 300 ? "goal (<= 300 host instructions per one-way IPC): met" : "goal (<= 300 host instructions per one-way IPC): NOT met")
            case (.notInstalled, _), (_, .notInstalled):
                print("host instructions: valgrind not installed")
            case let (.failed(why), _), let (_, .failed(why)):
                print("host instructions: callgrind failed: \(why)")
            }
        }
        print("rerun: swift run -c release cmk bench ipc --iterations \(iterations) --count-iterations \(countIterations)")
    }

    /// `--qemu`: the AArch64 figures, the host line, then the summary.
    private func runQEMU() throws {
        try withExitCodes {
            let path = topology ?? Project.root.appendingPathComponent("topologies/1x4.toml").path
            let topo = try loadTopology(path)
            let (result, output) = try IPCBenchQEMU.run(topo, roundTrips: roundTrips, timeout: timeout)
            print("cmk bench ipc --qemu: one-way IPC = Call or ReplyRecv between two EL0 threads of cluster 0's root task, equal priority")
            print("counted: PMU INST_RETIRED and cycles at EL0 and EL2 (exception entry, kernel, ERET included), around the measured round trips; cross core: the client's cycles")
            for row in IPCBenchQEMU.table(result) { print(row) }
            if let parts = result.crossCoreParts {
                print("cross core: the client's core counted \(parts.client) instructions, the server's \(parts.server); QEMU's INST_RETIRED counts the whole machine (-icount), so each covers both cores and the client's is taken")
            }
            print("machine: QEMU virt (\(QEMUCommand.cpu)), TCG single-threaded, -icount shift=0, \(QEMUCommand.installedVersion); topology \(topo.name); on \(HostMachine.summary)")
            print(String(format: "boot: %.1f s", output.seconds))
            print("rerun: swift run cmk bench ipc --qemu \(path) --round-trips \(roundTrips)\(noCallgrind ? " --no-callgrind" : "")")
            if noCallgrind {
                print("host instructions: skipped (--no-callgrind)")
            } else {
                print(hostLine())
            }
            print(IPCBenchQEMU.summary(result))
        }
    }

    /// `host (x86_64 callgrind): K host instructions per one-way IPC`.
    private func hostLine() -> String {
        switch (callgrind("ipc"), callgrind("baseline")) {
        case let (.counted(ipc, _), .counted(base, _)):
            let per = Double(ipc - base) / Double(2 * countIterations)
            #if DEBUG
            let build = "; a debug build of cmk: swift run -c release for the optimised figure"
            #else
            let build = ""
            #endif
            return String(format: "host (%@ callgrind): %.0f host instructions per one-way IPC (the host kernel, %d round trips%@)",
                          hostArchitecture, per, countIterations, build)
        case (.notInstalled, _), (_, .notInstalled):
            return "host (\(hostArchitecture) callgrind): valgrind not installed"
        case let (.failed(why), _), let (_, .failed(why)):
            return "host (\(hostArchitecture) callgrind): failed: \(why)"
        }
    }

    private func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
    }

    /// Host instructions of a child run in `mode`.
    private func callgrind(_ mode: String) -> Callgrind.Outcome {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return Callgrind.count(executable: exe, arguments: ["bench", "ipc", "--inner", mode, "--count-iterations", String(countIterations)])
    }

    private var hostArchitecture: String {
        #if arch(x86_64)
        return "x86_64"
        #elseif arch(arm64)
        return "arm64"
        #else
        return "this host"
        #endif
    }
}
