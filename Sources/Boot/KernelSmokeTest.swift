import Cluster
import Kernel

/// A first run of the cluster's kernel on bare metal, through the real system
/// call paths, as its root thread (there is no EL0 yet, so the first core
/// plays the root thread, as the host driver does in tests):
/// retype a notification from the largest Untyped, mint a badged copy,
/// signal it, poll it, and check every kernel invariant.
///
/// Line: `cmk: cluster I kernel untyped=0xLO-0xHI notification=0xADDR badge=B ok`
/// The untyped range and the object's address are physical addresses inside
/// the cluster's own partition (VA = PA there).
enum KernelSmokeTest {
    static let notificationSlot: Word = 25
    static let badgedSlot: Word = 26

    static func run(_ kernel: ClusterKernel, clusterId: UInt64, partition: Region) {
        let best = RootThread.largestUntyped(kernel)
        let untyped = kernel.rootSlot(best)
        let badge = Word(clusterId + 1)

        RootThread.invoke(kernel, best, .untypedRetype,
               [ObjectType.notification.rawValue, 0, 0, 0, notificationSlot, 1], extraCaps: RootSlot.cnode)
        RootThread.invoke(kernel, RootSlot.cnode, .cnodeMint,
               [badgedSlot, 64, notificationSlot, 64, Word(CapRights.all.rawValue), badge], extraCaps: RootSlot.cnode)
        // (Arguments are an InlineArray: no heap in the kernel image.)
        RootThread.syscall(kernel, .send, badgedSlot)
        RootThread.syscall(kernel, .nbRecv, notificationSlot)
        let root = kernel.rootThread
        guard root.pointee.badge == badge else { panic("kernel: polled badge differs from the one signalled:", root.pointee.badge) }
        if let violation = kernel.checkInvariants() { panic(violation.message, UInt64(violation.address)) }

        let object = UInt64(kernel.rootSlot(notificationSlot).object)
        let low = UInt64(untyped.object)
        let high = low + (1 << UInt64(untyped.bits))
        guard partition.contains(Region(base: low, size: high - low)), partition.contains(Region(base: object, size: 16)) else {
            panic("kernel: objects outside the cluster's partition, at", object)
        }
        Console.begin()
        Console.put("cmk: cluster ")
        Console.decimal(clusterId)
        Console.put(" kernel untyped=")
        Console.hexRange(low, high)
        Console.put(" notification=")
        Console.hex(object)
        Console.put(" badge=")
        Console.decimal(UInt64(badge))
        Console.put(" ok")
        Console.end()
    }
}
