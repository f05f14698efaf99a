import Synchronization

/// Where every ring of the inter-kernel channel sits in the shared channel
/// region: a pure function of (cluster count, region size), so every cluster
/// computes the same answer without talking to the others.
///
/// Region layout (offsets from the region base):
///
/// | offset                         | size                  | what                                     |
/// |--------------------------------|-----------------------|------------------------------------------|
/// | 0                              | `ChannelControl.size` | control page (console lock, boot counts) |
/// | `ringsOffset + r * ringStride` | `ringStride`          | ring r (see below)                       |
///
/// Ring r carries messages from cluster `i` to cluster `j` (i != j), with
/// `r = i * (n - 1) + (j < i ? j : j - 1)`: the rings a cluster sends on are
/// contiguous. Every ring starts on a page and spans whole pages, so a cluster
/// maps exactly the rings it sends or receives on (the loader does, and checks
/// it) and cannot touch a ring between two others. Each ring is:
///
/// | ring offset | size          | written by | what                                        |
/// |-------------|---------------|------------|---------------------------------------------|
/// | 0           | 64            | sender     | `SenderState` (next sequence, counts)       |
/// | 64          | 64            | receiver   | wake flag: the receiver may be asleep (5)   |
/// | 128         | 128           | nobody     | padding                                     |
/// | 256 + 64 s  | 64 per slot   | both       | slot s: 7 payload words, header word        |
///
/// Each cursor line is written by one cluster only, so it stays in that
/// cluster's cache; only the slots move between caches (the Barrelfish UMP
/// design: no shared head/tail counters). The receiver's cursor and counters
/// are not in the region at all: they are the receiver's private state
/// (`ChannelEndpoint.privateStateSize`).
///
/// Slots per ring: the largest power of two in `2...maxSlotsPerRing` for which
/// every ring fits in the region; no layout if even 2 slots do not fit.
public struct ChannelLayout: Equatable, Sendable {
    /// One message: one cache line.
    public static let slotSize = 64
    /// Cursor lines in front of each ring's slots.
    public static let ringHeaderSize = 256
    public static let minSlotsPerRing = 2
    /// A bound on the memory a ring ties up; 256 slots (16 KiB) is far more than
    /// streaming needs to hide the line transfer latency.
    public static let maxSlotsPerRing = 256
    /// The header's sender field is one byte.
    public static let maxClusters = 255
    /// The unit of mapping: every ring starts on a page and spans whole pages.
    public static let pageSize = 4096
    /// The receiver's line in each ring: its wake flag.
    public static let wakeFlagOffset = 64

    public let clusterCount: Int
    public let slotsPerRing: Int
    /// The size of the region this layout was computed for (at least `usedSize`).
    public let regionSize: Int

    /// The layout for `clusterCount` clusters in a region of `regionSize` bytes
    /// (the control page included), or nil if it cannot hold 2-slot rings.
    public init?(clusterCount: Int, regionSize: Int) {
        guard clusterCount >= 1, clusterCount <= ChannelLayout.maxClusters else { return nil }
        var slots = ChannelLayout.maxSlotsPerRing
        while slots >= ChannelLayout.minSlotsPerRing {
            if ChannelLayout.requiredSize(clusterCount: clusterCount, slotsPerRing: slots) <= regionSize {
                self.clusterCount = clusterCount
                self.slotsPerRing = slots
                self.regionSize = regionSize
                return
            }
            slots /= 2
        }
        return nil
    }

    /// A layout with an explicit ring size (tests and benchmarks); the region is
    /// exactly `requiredSize` bytes. Nil unless `slotsPerRing` is a power of two
    /// in `2...maxSlotsPerRing`.
    public init?(clusterCount: Int, slotsPerRing: Int) {
        guard clusterCount >= 1, clusterCount <= ChannelLayout.maxClusters,
              slotsPerRing >= ChannelLayout.minSlotsPerRing,
              slotsPerRing <= ChannelLayout.maxSlotsPerRing,
              slotsPerRing & (slotsPerRing - 1) == 0 else { return nil }
        self.clusterCount = clusterCount
        self.slotsPerRing = slotsPerRing
        self.regionSize = ChannelLayout.requiredSize(clusterCount: clusterCount, slotsPerRing: slotsPerRing)
    }

    public static func requiredSize(clusterCount: Int, slotsPerRing: Int) -> Int {
        let rings = clusterCount * (clusterCount - 1)
        return Int(ChannelControl.size) + rings * stride(slotsPerRing: slotsPerRing)
    }

    /// Bytes from one ring to the next: its cursor lines and slots, rounded
    /// up to whole pages.
    public static func stride(slotsPerRing: Int) -> Int {
        (ringHeaderSize + slotsPerRing * slotSize + pageSize - 1) & ~(pageSize - 1)
    }

    public var ringCount: Int { clusterCount * (clusterCount - 1) }
    /// The rings start right after the control page (a whole page).
    public var ringsOffset: Int { Int(ChannelControl.size) }
    public var ringStride: Int { ChannelLayout.stride(slotsPerRing: slotsPerRing) }
    /// Bytes of the region the channel uses (the rest is unused).
    public var usedSize: Int { ringsOffset + ringCount * ringStride }

    /// The index of the ring from cluster `from` to cluster `to` (from != to).
    public func ringIndex(from: Int, to: Int) -> Int {
        precondition(from != to && from >= 0 && to >= 0 && from < clusterCount && to < clusterCount,
                     "channel: no ring for this pair")
        return from * (clusterCount - 1) + (to < from ? to : to - 1)
    }

    /// The (sender, receiver) pair of ring `index`: the inverse of `ringIndex`.
    public func ringPair(_ index: Int) -> (from: Int, to: Int) {
        let from = index / (clusterCount - 1)
        let rest = index % (clusterCount - 1)
        return (from, rest < from ? rest : rest + 1)
    }

    /// Offset of the ring from `from` to `to` (its sender cursor line).
    public func ringOffset(from: Int, to: Int) -> Int {
        ringsOffset + ringIndex(from: from, to: to) * ringStride
    }

    /// Offset of slot `slot` of the ring from `from` to `to`.
    public func slotOffset(from: Int, to: Int, slot: Int) -> Int {
        ringOffset(from: from, to: to) + ChannelLayout.ringHeaderSize + (slot & (slotsPerRing - 1)) * ChannelLayout.slotSize
    }

    /// Offset of the wake flag of the ring from `from` to `to` (written by
    /// `to`, read by `from`).
    public func wakeFlagOffset(from: Int, to: Int) -> Int {
        ringOffset(from: from, to: to) + ChannelLayout.wakeFlagOffset
    }

    /// Whether `cluster` may map the bytes [offset, offset + size) of the
    /// region: the control page, or a ring it sends or receives on. The
    /// loader's isolation walk asks this of every leaf of a cluster's tables.
    public func clusterMayMap(_ cluster: Int, offset: Int, size: Int) -> Bool {
        guard offset >= 0, size > 0, offset <= Int.max - size else { return false }
        let end = offset + size
        if end <= Int(ChannelControl.size) { return true }
        guard offset >= ringsOffset, end <= usedSize else { return false }
        let ring = (offset - ringsOffset) / ringStride
        guard end <= ringsOffset + (ring + 1) * ringStride else { return false }
        let pair = ringPair(ring)
        return pair.from == cluster || pair.to == cluster
    }

    /// Zero the channel part of the region (cursors, wake flags, slots) and
    /// construct its atomics. Called once, by the loader or the first cluster,
    /// before any cluster uses the channel; it does not touch the control page.
    public func format(_ region: UnsafeMutableRawPointer) {
        var offset = ringsOffset
        while offset < usedSize {
            region.storeBytes(of: 0, toByteOffset: offset, as: UInt64.self)
            offset += 8
        }
        for ring in 0..<ringCount {
            let base = region + ringsOffset + ring * ringStride
            base.bindMemory(to: SenderState.self, capacity: 1).initialize(to: SenderState())
            (base + ChannelLayout.wakeFlagOffset).bindMemory(to: Atomic<UInt64>.self, capacity: 1)
                .initialize(to: Atomic(0))
            for slot in 0..<slotsPerRing {
                (base + ChannelLayout.ringHeaderSize + slot * ChannelLayout.slotSize + Slot.headerOffset)
                    .bindMemory(to: Atomic<UInt64>.self, capacity: 1).initialize(to: Atomic(0))
            }
        }
    }
}
