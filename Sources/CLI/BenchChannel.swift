import ArgumentParser
import Foundation
import Hosted
import HostedChannel
import InterKernel

/// `cmk bench channel`: our ring (InterKernel) against the C reference ring,
/// between the same two pinned host CPUs, in the same run.
struct BenchChannel: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "channel",
        abstract: "Inter-kernel channel ring vs. a C cache-line ring: round trip and streaming.")

    @Option(help: "Round trips per run.")
    var roundTrips: Int = 200_000

    @Option(help: "Messages streamed one way per run.")
    var messages: Int = 2_000_000

    @Option(help: "Runs of each measurement (interleaved Swift/C, medians reported).")
    var runs: Int = 7

    @Option(help: "The two CPUs to pin to, e.g. 0,1 (default: the first two this process may use).")
    var cpus: String?

    @Option(help: "Slots per ring (power of two, 2...256; default: what a 1 MiB region gives 2 clusters).")
    var slots: Int?

    @Option(help: "Also write the report as JSON to this file.")
    var json: String?

    func run() throws {
        let pair = try ChannelCLI.cpuPair(cpus)
        let layout: ChannelLayout
        if let slots {
            guard let l = ChannelLayout(clusterCount: 2, slotsPerRing: slots) else {
                throw ValidationError("--slots must be a power of two in 2...256")
            }
            layout = l
        } else {
            layout = ChannelLayout(clusterCount: 2, regionSize: 1 << 20)!
        }
        let config = ChannelBench.Config(roundTrips: roundTrips, messages: messages, runs: runs,
                                         cpus: pair, layout: layout)
        if let warning = HostMachine.debugBuildWarning(rerun: "swift run -c release cmk bench channel") { print(warning) }
        print("cmk bench channel: \(runs) interleaved runs, \(roundTrips) round trips and \(messages) streamed messages per run")
        print("machine: \(HostMachine.summary)")
        print("cpus: \(ChannelCLI.describe(pair)), \(layout.slotsPerRing) slots per ring")
        let report: ChannelBench.Report
        do { report = try ChannelBench.run(config) { line in print(line) } } catch { throw CommandFailure(error.description) }
        print("")
        print(report.table, terminator: "")
        print("")
        print(report.verdict)
        var rerun = "swift run -c release cmk bench channel --round-trips \(roundTrips) --messages \(messages) --runs \(runs)"
        if let cpus { rerun += " --cpus \(cpus)" }
        if let slots { rerun += " --slots \(slots)" }
        print("rerun: \(rerun)")
        if let json {
            let data = try JSONEncoder.pretty.encode(report.record(machine: HostMachine.summary, rerun: rerun))
            try data.write(to: URL(fileURLWithPath: json))
        }
    }
}
