import Arch
import Cluster
import InterKernel

/// Clusters that fail alone (docs/boot.md, "Clusters that fail alone").
///
/// During the boot's channel phase (from a cluster's `up` line until it
/// counts itself done) a panic or an exception on a cluster's first core
/// stops only that cluster: it sends `clusterFailed` to every peer (its last
/// message; one try per ring, no waiting), stops taking interrupts and parks
/// the core. The others learn it from that message, or, when no message
/// comes (a hang, a full ring), from a deadline: a cluster that reported
/// itself up but does not reach the channel rendezvous within
/// `peerTimeoutSeconds`, or a peer that does not answer a ping within it.
/// Each survivor prints `cmk: cluster I failed: REASON` once per failed
/// cluster, leaves it out of the rest of the boot, and the run ends with
/// `cmk: boot ended clusters=N failed=I,... cores=M` (`cmk boot` exit 5).
///
/// What a cluster knows failed is its own private word
/// (`KernelGlobals.failedClusters`): a peer cannot mark another cluster
/// failed in our view except by not answering us.
enum ClusterFailures {
    /// Seconds a cluster that reported itself up may take to reach the
    /// channel rendezvous, and a peer to answer a ping.
    static let peerTimeoutSeconds: UInt64 = 2

    static func bit(_ cluster: Int) -> UInt64 { 1 << UInt64(cluster) }

    static func isFailed(_ cluster: Int) -> Bool { KernelGlobals.failedClusters & bit(cluster) != 0 }

    /// Every cluster of the machine, as a mask.
    static func all(_ clusterCount: Int) -> UInt64 {
        clusterCount >= 64 ? ~0 : bit(clusterCount) &- 1
    }

    /// Record that `cluster` failed and say so, once: `cmk: cluster I failed: REASON`.
    static func declare(_ cluster: Int, _ reason: StaticString) {
        guard cluster >= 0, cluster < 64, !isFailed(cluster) else { return }
        KernelGlobals.failedClusters |= bit(cluster)
        Console.begin()
        Console.put("cmk: cluster ")
        Console.decimal(cluster)
        Console.put(" failed: ")
        Console.put(reason)
        Console.end()
    }

    /// From `Failure.stop`: if this core may fail alone, tell every peer and
    /// park for good. Returns (and the machine stops) otherwise: before the
    /// channel phase, after it, on a core other than the first (it shares
    /// no ring end), or with the legacy `--inject KIND` (no cluster named).
    static func stopAlone(_ reason: ClusterFailureReason, detail: UInt64) {
        guard KernelGlobals.mapped, KernelGlobals.failAlone, let endpoint = KernelGlobals.channel,
            let state = Identity.coreState, state[CoreState.indexInCluster] == 0
        else { return }
        KernelGlobals.failAlone = false  // a second failure while announcing stops the machine
        for peer in 0..<endpoint.layout.clusterCount where peer != endpoint.cluster && !isFailed(peer) {
            // One try: a ring the peer never drains must not hold us; the
            // peer then notices by its deadline.
            _ = endpoint.trySend(.clusterFailed(reason, detail: detail), to: peer)
            ChannelBringUp.doorbell.ring(cluster: peer)
        }
        park()
    }

    /// Stop this core for good: no interrupts, WFI forever.
    static func park() -> Never {
        GICv3.disableThisCore()
        while true { CPU.waitForInterrupt() }
    }
}
