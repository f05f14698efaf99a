import ArgumentParser
import Foundation
import Hosted
import Kernel

/// `cmk bench ipc`: a client `Call`s and a server `ReplyRecv`s through the
/// real kernel entry (big lock, lookup, fast path, scheduler) on the host.
/// Reports nanoseconds and instructions per one-way IPC, each differenced
/// against the same loop with the kernel calls left out.
struct BenchIPC: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ipc",
        abstract: "Measure one-way IPC (Call / ReplyRecv) through the host kernel.")

    @Option(help: "Round trips to time (each is two one-way IPCs).")
    var iterations = 2_000_000

    @Option(help: "Round trips under callgrind (instruction counts).")
    var countIterations = 100_000

    @Flag(help: "Skip the callgrind instruction count.")
    var noCallgrind = false

    @Option(help: .hidden)
    var inner: String? = nil

    func run() throws {
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
