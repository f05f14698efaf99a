import Arch
import BigLock
import Cluster
import InterKernel
import Kernel

/// The kernel's globals. They live in .data/.bss, linked at PRIVATE_BASE, so
/// each cluster has its own copy in its own partition (the loader copies
/// .data and zeroes .bss there). That is the whole point of the clustered
/// multikernel: nothing here is shared with another cluster.
///
/// Rule: touch them only after the core entered its cluster (`mapped`); in
/// the loader phase PRIVATE_BASE is not mapped and any access faults.
enum KernelGlobals {
    /// True once this core runs on its cluster's tables (TPIDR_EL2 points at
    /// its CoreState); the loader runs with TPIDR_EL2 = 0.
    static var mapped: Bool { CPU.tpidr != 0 }

    /// The console lock, in the shared channel control page.
    nonisolated(unsafe) static var consoleLock: UnsafeMutablePointer<TicketLock>? = nil
    /// Whether a panicking core got the console lock (and must release it).
    nonisolated(unsafe) static var urgentHeld = false
    /// Every console lock level was held past the bound (`Console.begin`):
    /// this cluster writes without a lock from then on.
    nonisolated(unsafe) static var consoleLockAbandoned = false
    /// Which console lock this cluster uses (`ChannelControl.consoleLock(_:level:)`):
    /// it moves to the next when the holder of its lock seems to have died.
    nonisolated(unsafe) static var consoleLockLevel = 0
    /// The channel control page (for the console locks' levels).
    nonisolated(unsafe) static var controlPage: UnsafeMutableRawPointer? = nil
    /// Peers this cluster knows to have failed (bit c: cluster c), from their
    /// last message or a missed deadline (`ClusterFailures`).
    nonisolated(unsafe) static var failedClusters: UInt64 = 0
    /// A panic or exception on this cluster's first core stops only this
    /// cluster (and tells the others) instead of the machine: true during
    /// the boot's channel phase (`ClusterFailures`).
    nonisolated(unsafe) static var failAlone = false
    /// The guest's last console byte was not a newline. Under the console lock.
    nonisolated(unsafe) static var guestLineOpen = false
    /// Cores of this cluster that entered the kernel. Protected by the big lock.
    nonisolated(unsafe) static var coresUp = 0

    /// This cluster's kernel (seL4-style objects in the partition's free
    /// memory), booted by the cluster's first core before any other core of
    /// the cluster runs. Its big lock is the cluster's big lock: every core
    /// takes it to enter the kernel. Cores of two clusters never share it.
    nonisolated(unsafe) static var kernel: ClusterKernel? = nil
    /// `kernel` in place, for the trap fastpath: reading the Optional copies
    /// the whole struct (through FP/SIMD registers, which the fastpath must
    /// not touch). The Optional stores its payload at offset 0 (its
    /// nil is an extra inhabitant: it is no larger than the payload, checked
    /// here). Only after the cluster's kernel booted (a core running user
    /// threads).
    static var kernelInPlace: UnsafeMutablePointer<ClusterKernel> {
        precondition(MemoryLayout<ClusterKernel?>.size == MemoryLayout<ClusterKernel>.size)
        return withUnsafeMutablePointer(to: &kernel) { UnsafeMutableRawPointer($0).assumingMemoryBound(to: ClusterKernel.self) }
    }
    /// This cluster's end of the inter-kernel channel (its rings in the
    /// shared region). Used by the cluster's first core, under the big lock's
    /// rule: one core per ring end.
    nonisolated(unsafe) static var channel: ChannelEndpoint? = nil
}

/// The private-data witness (docs/boot.md): starts as `pristineIdentity` in
/// every copy of .data; each cluster writes its id, waits for all clusters to
/// do the same, and reads its own id back. A shared copy would show another
/// cluster's id (or lose the pristine value before the write).
nonisolated(unsafe) var clusterIdentity: UInt64 = pristineIdentity
let pristineIdentity: UInt64 = 0x5052_4956_4154_4531  // "PRIVATE1"

/// The boot information the host left at `Machine.bootInfoAddress`,
/// decoded and checked (a bad one stops the boot with the decoder's message).
func decodedBootInfo() -> BootInfo {
    do {
        return try BootInfo.decode(
            UnsafeRawPointer(bitPattern: UInt(Machine.bootInfoAddress))!, available: Int(Machine.bootInfoMaxSize))
    } catch {
        panic(error.message)
    }
}
