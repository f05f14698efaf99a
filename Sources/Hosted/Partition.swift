import CNuma
#if canImport(Glibc)
import Glibc
#endif

/// What libnuma says about this host.
public enum NUMAHost {
    /// Whether the kernel and libnuma support NUMA placement here.
    public static var isAvailable: Bool { numa_available() >= 0 }
    /// Number of configured NUMA nodes (1 when NUMA is unavailable).
    public static var nodeCount: Int { isAvailable ? Int(numa_max_node()) + 1 : 1 }
}

/// A cluster's private partition in the hosted runtime: one block of memory,
/// page-aligned and zeroed, allocated on the cluster's NUMA node with libnuma
/// (`numa_alloc_onnode`), so the lock, the kernel data and the per-core
/// statistics of the cluster sit next to its cores.
///
/// Falls back cleanly: with NUMA unavailable (no libnuma support in the
/// running kernel) it uses page-aligned `posix_memalign` memory; on a one-node
/// machine node 0 is the only node; a node the host does not have is replaced
/// by node 0. `placement` says which happened, in words for the user.
public final class ClusterPartition: @unchecked Sendable {
    public let base: UnsafeMutableRawPointer
    public let size: Int
    /// The node the memory was placed on, or nil when NUMA is unavailable.
    public let node: Int?
    /// One line for the user: where the partition is and why.
    public let placement: String
    private let fromNUMA: Bool

    public init(bytes: Int, node requested: Int) {
        let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
        let size = (max(bytes, 1) + pageSize - 1) / pageSize * pageSize
        self.size = size
        if NUMAHost.isAvailable {
            let nodes = NUMAHost.nodeCount
            let node = requested < nodes ? requested : 0
            if let p = numa_alloc_onnode(size, Int32(node)) {
                base = p
                fromNUMA = true
                self.node = node
                if nodes == 1 {
                    placement = "NUMA: one node on this host; partition on node 0 (no NUMA effects to measure)"
                } else if node != requested {
                    placement = "NUMA: host has no node \(requested); partition on node 0 instead"
                } else {
                    placement = "NUMA: partition on node \(node) of \(nodes)"
                }
                base.initializeMemory(as: UInt8.self, repeating: 0, count: size)
                return
            }
        }
        var p: UnsafeMutableRawPointer?
        guard posix_memalign(&p, pageSize, size) == 0, let p else {
            fatalError("cmk: cannot allocate a \(size)-byte partition")
        }
        base = p
        fromNUMA = false
        node = nil
        placement = "NUMA: not available on this host (numa_available() < 0); partition from ordinary memory"
        base.initializeMemory(as: UInt8.self, repeating: 0, count: size)
    }

    deinit {
        if fromNUMA { numa_free(base, size) } else { free(base) }
    }
}
