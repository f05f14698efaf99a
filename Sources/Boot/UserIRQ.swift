import Arch
import ArchAsm
import Cluster
import Kernel

/// The interrupt controller's side of user-level interrupts
/// (Kernel/Objects/IRQ.swift, docs/kernel/irq.md): which interrupts users
/// may have, and the enables and disables the kernel decides.
enum UserIRQ {
    /// Priority of a user's interrupt (below the tick and the doorbell's 0x80).
    static let priority: UInt8 = 0xA0

    /// Boot, first core: users may take the PMU's overflow PPI only. The
    /// other PPIs are the kernel's or a guest's (timers, the GIC's
    /// maintenance interrupt), the SGIs the kernel's doorbells; SPIs are
    /// the whole machine's and would need a topology to say which cluster
    /// owns which (not built: refused).
    static func configure(_ kernel: ClusterKernel) {
        var reserved = InlineArray<2, UInt64>(repeating: ~0)
        reserved[0] = ~(UInt64(1) << PMU.interrupt)
        kernel.configureInterrupts(reserved: reserved, limit: 32)
    }

    /// Lock held: carry out the kernel's queued enables and disables (a
    /// handler's first Ack, a delivery's mask, a deleted handler). A PPI of
    /// another core of the cluster is set in that core's redistributor.
    static func apply(_ kernel: ClusterKernel) {
        while let change = kernel.takeInterruptChange() {
            let record = ClusterView.record
            let layout = PartitionLayout(
                privateImageSize: record[ClusterRecord.privateImageSize],
                coreCount: record[ClusterRecord.coreMask].nonzeroBitCount)
            let peer = UnsafeMutablePointer<UInt64>(bitPattern: UInt(Machine.privateBase + layout.coreStateOffset(change.core)))!
            _ = GICv3.setPrivateInterrupt(change.id, enabled: change.enable, mpidr: peer[CoreState.mpidr], priority: priority)
        }
    }
}
