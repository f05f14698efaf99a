import RootTaskSupport
import UserABI

/// User-level interrupts from the root task's IRQ control capability
/// (docs/kernel/irq.md). The PMU's overflow interrupt (PPI 23) is one EL0
/// can raise itself: it sets the cycle counter's overflow flag.
///
/// 1. Refusals: the kernel's tick (PPI 26) and an SGI are not given; a core
///    the cluster lacks is refused.
/// 2. A handler for PPI 23 on core 0 (the root thread's core), a badged
///    notification bound to it, Ack (the kernel enables it at the GIC).
/// 3. Raise the overflow: the interrupt comes, the kernel signals the
///    notification and masks the interrupt. Wait: the badge is the bound
///    capability's. Poll again with the flag still set: nothing (masked
///    until Ack, although the level stays up).
/// 4. Clear the flag, Ack; a second handler for the same interrupt is
///    refused while the first lives; deleting it frees the interrupt (a new
///    Get succeeds, and is deleted too: the PMU interrupt ends disabled).
///
/// Line: `cmk: cluster I user irq ok irq=23 badge=0x23`, or
/// `user irq FAILED step=S error=E`.
enum IRQTest {
    static let irq: UInt64 = 23
    static let badge: UInt64 = 0x23
    /// Root CNode slots (of the root task's [385, 400)).
    static let handler: UInt64 = 385
    static let notification: UInt64 = 386
    static let badged: UInt64 = 387
    static let spare: UInt64 = 388

    static func run(_ pingPong: PingPong) {
        if let (step, error) = test(pingPong) {
            Console.failure(pingPong.cluster, "user irq FAILED step=", step: step, error: error)
            return
        }
        Console.put("cmk: cluster ")
        Console.put(decimal: pingPong.cluster)
        Console.put(" user irq ok irq=23 badge=0x23")
        cmk_debug_put_char(10)
    }

    static func get(_ irq: UInt64, core: UInt64, into slot: UInt64) -> UInt64 {
        Kernel.invoke(RootTaskSlot.irqControl, .irqControlGet, length: 3, irq, core, slot, caps: 1, RootTaskSlot.cnode)
    }

    static func delete(_ slot: UInt64) -> UInt64 {
        Kernel.invoke(RootTaskSlot.cnode, .cnodeDelete, length: 2, slot, 64)
    }

    static func test(_ pingPong: PingPong) -> (StaticString, UInt64)? {
        let cores = pingPong.bootInfo[RootTaskBootInfo.cores]
        // Refused: error 4 is seL4's RangeError (KernelError.range).
        var e = get(26, core: 0, into: handler)
        if e != 4 { return ("refuse-tick", e) }
        e = get(1, core: 0, into: handler)
        if e != 4 { return ("refuse-sgi", e) }
        e = get(irq, core: cores, into: handler)
        if e != 4 { return ("refuse-core", e) }

        e = get(irq, core: 0, into: handler)
        if e != 0 { return ("get", e) }
        e = pingPong.retype(.notification, into: notification)
        if e != 0 { return ("retype-notification", e) }
        e = Kernel.mint(notification, into: badged, rights: 0xF, badge: badge)
        if e != 0 { return ("mint", e) }
        e = Kernel.invoke(handler, .irqHandlerSetNotification, length: 0, caps: 1, badged)
        if e != 0 { return ("set-notification", e) }
        e = Kernel.invoke(handler, .irqHandlerAck, length: 0)
        if e != 0 { return ("ack", e) }

        cmk_pmu_raise_overflow()
        var r = Kernel.syscall(.recv, notification, 0)
        if r.x6 != 0 { return ("wait", r.x6) }
        if r.x0 != badge { return ("badge", r.x0) }
        // Still asserted, but masked until Ack: nothing more arrives.
        r = Kernel.syscall(.nbRecv, notification, 0)
        if r.x6 != 0 || r.x0 != 0 { return ("masked", r.x0) }
        cmk_pmu_clear_overflow()
        e = Kernel.invoke(handler, .irqHandlerAck, length: 0)
        if e != 0 { return ("ack-again", e) }
        r = Kernel.syscall(.nbRecv, notification, 0)
        if r.x0 != 0 { return ("spurious", r.x0) }

        // One handler per interrupt and core; deleting it frees the interrupt.
        e = get(irq, core: 0, into: spare)
        if e != 9 { return ("refuse-second", e) }  // seL4's RevokeFirst
        e = delete(handler)
        if e != 0 { return ("delete", e) }
        e = get(irq, core: 0, into: spare)
        if e != 0 { return ("get-again", e) }
        e = delete(spare)
        if e != 0 { return ("delete-again", e) }
        return nil
    }
}
