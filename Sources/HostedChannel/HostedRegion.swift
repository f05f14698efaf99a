import InterKernel

#if canImport(Glibc)
import Glibc
#endif

/// A channel region in host memory: page-aligned, the control page and the
/// channel formatted, as the loader would leave it for the kernel.
public final class HostedRegion: @unchecked Sendable {
    public let layout: ChannelLayout
    public let base: UnsafeMutableRawPointer
    /// Each cluster's private receiver state (not in the region, as in the kernel).
    let receivers: UnsafeMutableRawPointer

    public init(layout: ChannelLayout) {
        self.layout = layout
        var memory: UnsafeMutableRawPointer? = nil
        let rc = posix_memalign(&memory, 4096, layout.regionSize)
        precondition(rc == 0 && memory != nil, "posix_memalign failed")
        base = memory!
        memset(base, 0xEE, layout.regionSize)  // formatting must not rely on zeroed memory
        ChannelControl.format(base)
        layout.format(base)
        let bytes = ChannelEndpoint.privateStateSize(clusterCount: layout.clusterCount)
        var state: UnsafeMutableRawPointer? = nil
        precondition(posix_memalign(&state, 64, bytes * layout.clusterCount) == 0 && state != nil, "posix_memalign failed")
        receivers = state!
        for c in 0..<layout.clusterCount {
            ChannelEndpoint.formatPrivateState(receivers + c * bytes, clusterCount: layout.clusterCount)
        }
    }

    deinit {
        free(base)
        free(receivers)
    }

    /// Cluster `cluster`'s view of the channel.
    public func endpoint(_ cluster: Int) -> ChannelEndpoint {
        ChannelEndpoint(region: base, layout: layout, cluster: cluster,
                        privateState: receivers + cluster * ChannelEndpoint.privateStateSize(clusterCount: layout.clusterCount))!
    }
}

extension ChannelEndpoint: @unchecked Sendable {}
extension RingSender: @unchecked Sendable {}
extension RingReceiver: @unchecked Sendable {}
