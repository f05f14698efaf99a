import ArgumentParser
import Foundation
import Hosted
import QEMUBoot
import Topology

struct BenchBoot: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "boot",
        abstract: "Wall time of `cmk boot` against QEMU booting a trivial image on the same cores.",
        discussion: """
            Runs three things in turn, --runs times, interleaved so machine noise hits \
            them alike: (1) `cmk boot FILE`, the whole tool (boot-info file, QEMU, \
            console checks); (2) QEMU running the cmk kernel directly (the command of \
            `cmk topology qemu FILE`); (3) QEMU running qemu/trivial.S, which only \
            starts every core with PSCI, waits for them, prints a line and powers off, \
            with the same -smp and -m. Prints medians and the ratios to (3). Goal: \
            (1)/(3) at most 2.
            """)

    @Argument(help: "Topology file (default: topologies/2x4.toml).")
    var file: String?

    @Option(help: "Runs of each of the three.")
    var runs = 11

    func run() throws {
        try withExitCodes {
            let path = file ?? Project.root.appendingPathComponent("topologies/2x4.toml").path
            let topology = try loadTopology(path)
            guard runs >= 1 else { throw ValidationError("--runs must be at least 1") }
            guard Subprocess.which(QEMUCommand.binary) else {
                throw CMKFailure.environment("\(QEMUCommand.binary) not found: run scripts/setup.sh")
            }
            try Project.buildKernelIfStale()
            let trivial = try BootBench.buildTrivialImage()
            let rootTask = try Project.buildRootTask()
            var info = Layout.bootInfo(topology)
            info.rootTask = rootTask.image
            let blob = try Project.writeBootInfo(Layout.bootInfoBytes(info), name: topology.name)
            let me = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().path
            var bench = BootBench(topology: topology, tool: [me, "boot", path], kernel: Project.kernel.path,
                                  trivial: trivial, bootInfo: blob.path, rootTask: rootTask)
            FileHandle.standardError.write(Data("bench boot: \(topology.name) (\(topology.coreCount) cores, \(topology.clusters.count) clusters), \(runs) runs each\n".utf8))
            try bench.run(runs: runs) { FileHandle.standardError.write(Data("\rrun \($0)/\(runs)".utf8)) }
            FileHandle.standardError.write(Data("\n".utf8))
            print(bench.report(machine: HostMachine.summary, qemu: QEMUCommand.installedVersion, file: path,
                               topology: topology, runs: runs,
                               rerun: "cmk bench boot \(file ?? "topologies/2x4.toml") --runs \(runs)"))
        }
    }
}
