import ArgumentParser
import Cluster
import Foundation
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
            let blob = try Project.writeBootInfo(Layout.bootInfoBytes(Layout.bootInfo(topology)), name: topology.name)
            print(QEMUCommand(topology: topology, kernel: Project.kernel.path, bootInfo: blob.path, threading: tcg).shellLine)
        }
    }
}

enum TopologyReport {
    static func hex(_ x: UInt64) -> String { "0x" + String(x, radix: 16, uppercase: false) }

    static func render(_ t: Topology) -> String {
        let layout = Layout(t)
        var out = "topology \(t.name): \(t.clusters.count) clusters, \(t.coreCount) cores, \(formatSize(t.memory)) RAM, \(t.lock.name) lock\n\n"
        var rows: [[String]] = [["cluster", "cores", "partition", "size"]]
        for (i, c) in t.clusters.enumerated() {
            let p = layout.partitions[i]
            rows.append(["\(i)", c.cores.sorted().map(String.init).joined(separator: ","), "\(hex(p.base))-\(hex(p.end))", formatSize(p.size)])
        }
        out += table(rows) + "\n"
        var map: [[String]] = [["physical range", "size", "region", "mapped by"]]
        map.append(["\(hex(layout.bootRegion.base))-\(hex(layout.bootRegion.end))", formatSize(layout.bootRegion.size), "boot: DTB, kernel image (read-only), boot info", "all clusters (image, boot info)"])
        for (i, p) in layout.partitions.enumerated() {
            map.append(["\(hex(p.base))-\(hex(p.end))", formatSize(p.size), "cluster \(i) partition (private kernel state, untyped)", "cluster \(i) only"])
        }
        map.append(["\(hex(layout.channel.base))-\(hex(layout.channel.end))", formatSize(layout.channel.size), "shared: inter-kernel channel", "all clusters"])
        if layout.guest.size > 0 {
            map.append(["\(hex(layout.guest.base))-\(hex(layout.guest.end))", formatSize(layout.guest.size), "shared: guest memory", "all clusters"])
        }
        let used = Layout.bytesNeeded(partitions: t.clusters.map(\.memory), channel: t.channel, guest: t.guest)
        if used < t.memory {
            map.append(["\(hex(Machine.ramBase + used))-\(hex(layout.ram.end))", formatSize(t.memory - used), "unused", "none"])
        }
        out += "\n" + table(map) + "\n"
        out += "\nEvery cluster maps its private area (.data, .bss, records, stacks, tables) at VA \(hex(Machine.privateBase)),\n"
        out += "the image, boot info, shared regions and its own partition at VA = PA, and the devices at 0x08000000."
        return out
    }

    static func table(_ rows: [[String]]) -> String {
        let widths = (0..<rows[0].count).map { c in rows.map { $0[c].count }.max() ?? 0 }
        var lines: [String] = []
        for (r, row) in rows.enumerated() {
            lines.append(row.enumerated().map { c, cell in cell.padding(toLength: widths[c], withPad: " ", startingAt: 0) }
                .joined(separator: "  ").trimmingCharacters(in: .whitespaces))
            if r == 0 { lines.append(widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")) }
        }
        return lines.joined(separator: "\n")
    }
}
