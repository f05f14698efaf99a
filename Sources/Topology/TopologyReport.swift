import Cluster

/// `cmk topology show`: clusters, cores and the physical memory map of a
/// checked topology.
public enum TopologyReport {
    static func hex(_ x: UInt64) -> String { "0x" + String(x, radix: 16, uppercase: false) }

    public static func render(_ t: Topology) -> String {
        let layout = Layout(t)
        var out = "topology \(t.name): \(t.clusters.count) clusters, \(t.coreCount) cores, \(formatSize(t.memory)) RAM, \(t.lock.name) lock\(t.guestPlacement == .core ? ", guest vCPU per core" : "")\n\n"
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
        var table = TextTable(rows[0], rows: Array(rows.dropFirst()), alignment: .text).rendered
        table.removeLast()  // the final newline
        return table
    }
}
