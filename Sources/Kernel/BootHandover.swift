import BigLock

/// The boot's hold on the root thread, while the boot still plays it.
///
/// Transitional (docs/kernel/abi.md, "The root task"): the cluster's root
/// task runs at EL0 and suspends itself once its work is done; the boot then
/// takes the root thread back to make the guest's objects with it, as it did
/// before the root task existed. When the root task makes the guest's
/// objects itself, this goes.
extension ClusterKernel {
    /// Resume the root thread on core 0 (it runs there: its affinity is 0)
    /// and let it be chosen, as TCB Resume would. Takes the big lock.
    public func resumeRootThreadForBoot() {
        lock.acquire(core: 0)
        enter(0)
        restart(rootThreadRef)
        schedule()
        lock.release(core: 0)
    }

    var rootThreadRef: TCBRef { state.pointee.rootThread! }
}
