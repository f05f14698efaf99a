import Cluster
import InterKernel

/// The cluster's scratch area (`PartitionLayout.scratchOffset`, private,
/// zeroed by the loader): the kernel's per-core arrays and statistics.
/// They live here rather than in array globals because Swift may initialise
/// a global of a large or array type lazily (`swift_once`), which the
/// kernel forbids (scripts/kernel-size.sh). Scalars stay Swift globals.
///
/// Layout (bytes from the area's start):
///
/// | offset | what |
/// |--------|------|
/// | 0      | doorbell target: MPIDR of each cluster's first core (64 words) |
/// | 512    | free (the lock experiment's, before it moved to user level) |
/// | 10240  | channel experiment round-trip samples (`channelSampleCapacity` words) |
/// | 24576  | the channel's receiver state: cursor and counters per sending cluster (`channelReceiverCapacity` x 128 bytes) |
enum Scratch {
    static var base: UnsafeMutableRawPointer {
        let record = ClusterView.record
        let layout = PartitionLayout(
            privateImageSize: record[ClusterRecord.privateImageSize], coreCount: record[ClusterRecord.coreMask].nonzeroBitCount)
        return UnsafeMutableRawPointer(bitPattern: UInt(Machine.privateBase + layout.scratchOffset))!
    }

    static var doorbellTarget: UnsafeMutablePointer<UInt64> { (base + 0).assumingMemoryBound(to: UInt64.self) }
    static let channelSampleCapacity = 1024
    static var channelSamples: UnsafeMutablePointer<UInt64> { (base + 10240).assumingMemoryBound(to: UInt64.self) }

    /// The channel endpoint's private state (receive cursors and drop
    /// counters), one block per possible sender: at most 64 clusters (one core each).
    static let channelReceiverOffset = 24576
    static let channelReceiverCapacity = 64
    static var channelReceivers: UnsafeMutableRawPointer { base + channelReceiverOffset }

    /// First core, before the other cores run: check the layout fits (the
    /// area is plain words the loader zeroed).
    static func format() {
        precondition(10240 + 8 * channelSampleCapacity <= channelReceiverOffset)
        precondition(channelReceiverOffset + ChannelEndpoint.privateStateSize(clusterCount: channelReceiverCapacity)
            <= Int(PartitionLayout.scratchSize))
    }
}
