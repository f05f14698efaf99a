import ArgumentParser
import Cluster
import Foundation
import QEMUBoot
import Topology

struct TopologyCheck: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Validate topology files.",
        discussion: """
            Every problem is printed as FILE:LINE: what is wrong. Exit status 0 when \
            every file is valid, 2 otherwise. See docs/topology.md for the format.
            """)

    @Argument(help: "Topology files (TOML).")
    var files: [String]

    func run() throws {
        var bad = false
        for file in files {
            do {
                let topology = try loadTopology(file)
                print("\(file): ok: \(topology.clusters.count) cluster(s), \(topology.coreCount) cores, \(formatSize(topology.memory)) memory")
            } catch {
                bad = true
            }
        }
        if bad { throw ExitCode(2) }
    }
}

struct TopologyShow: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Show a topology's clusters and its physical memory map.")

    @Argument(help: "Topology file (default: topologies/default.toml).")
    var file: String?

    func run() throws {
        try withExitCodes {
            let path = file ?? Project.defaultTopology
            let topology = try loadTopology(path)
            print(TopologyReport.render(topology))
        }
    }
}

struct TopologyQemu: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "qemu",
        abstract: "Print the exact QEMU command `cmk boot` runs for a topology.",
        discussion: """
            Also writes the topology's boot information file that the command loads \
            (under .build-kernel/bootinfo/), so the printed line can be run as it is \
            once the kernel is built (`cmk boot` builds it).
            """)

    @Argument(help: "Topology file (default: topologies/default.toml).")
    var file: String?

    @Option(help: "QEMU TCG threading, as for `cmk boot`.")
    var tcg: QEMUCommand.Threading = .single

    func run() throws {
        try withExitCodes {
            let path = file ?? Project.defaultTopology
            let topology = try loadTopology(path)
            let rootTask = try Project.buildRootTask()
            var info = Layout.bootInfo(topology)
            info.rootTask = rootTask.image
            let blob = try Project.writeBootInfo(Layout.bootInfoBytes(info), name: topology.name)
            print(QEMUCommand(topology: topology, kernel: Project.kernel.path, bootInfo: blob.path, threading: tcg,
                              rootTask: rootTask).shellLine)
        }
    }
}
