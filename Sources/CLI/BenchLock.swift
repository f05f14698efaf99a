import ArgumentParser
import BigLock
import Hosted
import HostedLock

/// `cmk bench lock`: the Swift big locks against C in the same process
/// (`HostedLock.LockBench`).
struct BenchLock: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lock",
        abstract: "Swift big locks vs the same algorithms in C (uncontended) and vs pthread_mutex (2 cores); ClusterLock vs the specialised locks.",
        discussion: """
        Uncontended: acquire+release on one pinned CPU, Swift loop vs C loop (goal: Swift/C <= 1.10), \
        and through ClusterLock (the run-time kind every kernel entry uses) vs the specialised type. \
        Contended: two pinned CPUs hammering one lock around a counter, each lock vs \
        pthread_mutex (goal: MCS and CLH >= 1.0). Interleaved rounds; medians reported.
        """)

    @Option(help: "Measurement rounds (each measures every contender once, in rotating order).")
    var rounds: Int = 11

    @Option(help: "Acquire+release pairs per uncontended measurement.")
    var iterations: UInt64 = 2_000_000

    @Option(help: "Seconds per contended measurement.")
    var seconds: Double = 0.2

    @Option(help: "Lock block stride in bytes.")
    var stride: Int = BigLockLayout.defaultStride

    var settings: LockBench.Settings {
        LockBench.Settings(rounds: rounds, iterations: iterations, seconds: seconds, stride: stride)
    }

    func validate() throws {
        if let problem = settings.problem { throw ValidationError(problem) }
    }

    func run() throws {
        do {
            _ = try LockBench.run(settings) { print($0) }
        } catch {
            throw CommandFailure(error.description)
        }
    }
}

/// A command failure with a message for the user (exit code 1).
struct CommandFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
