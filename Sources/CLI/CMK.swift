import ArgumentParser

/// `cmk`: the one host tool of the project (topologies, boot, experiments,
/// benchmarks). Each verb lives in its own file; this file only lists them.
@main
struct CMK: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cmk",
        abstract: "Build, boot and measure cmk, a clustered multikernel for AArch64.",
        subcommands: [BootCommand.self, GuestCommand.self, TopologyCommand.self, BenchCommand.self, ExperimentCommand.self])
}

struct TopologyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "topology",
        abstract: "Check, show and translate cluster topology files.",
        subcommands: [TopologyCheck.self, TopologyShow.self, TopologyQemu.self, TopologyDetect.self])
}

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks that compare cmk against a reference in the same run.",
        subcommands: [BenchBoot.self, BenchGuest.self, BenchIPC.self, BenchChannel.self, BenchLock.self])
}

struct ExperimentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "experiment",
        abstract: "Experiments that sweep a parameter and write tables, CSV, JSON and plots.",
        subcommands: [ExperimentLock.self, ExperimentChannel.self])
}
