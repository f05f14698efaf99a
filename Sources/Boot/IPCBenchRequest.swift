import Cluster

/// `cmk bench ipc --qemu` (docs/bench-ipc.md): the host's
/// `ExperimentRequest.ipcBench` in the cluster record becomes the root
/// task's `RootTaskBootInfo.benchmark` word, in cluster 0 only (the other
/// clusters' root tasks run as in a normal boot).
enum IPCBenchRequest {
    static func roundTrips(_ record: UnsafeMutablePointer<UInt64>) -> UInt64 {
        guard record[ClusterRecord.clusterId] == 0,
            case .ipcBench(let roundTrips)? = ExperimentRequest(words: { record[ClusterRecord.experiment + $0] })
        else { return 0 }
        return roundTrips
    }
}
