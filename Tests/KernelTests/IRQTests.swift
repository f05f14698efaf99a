@testable import Kernel
import Testing

/// Interrupts at user level (issue 10: the root task's IRQ control): the
/// `irqControl` capability makes handlers; a handler names a notification;
/// a delivered interrupt signals it and stays masked until Ack; the kernel
/// queues the controller's enables and disables for the Boot layer.
@Suite struct IRQHandlers {
    static let pmu: Word = 23

    /// Ids below 32 reserved except the PMU's PPI 23; SPIs up to 64.
    func harness(cores: Int = 2) -> Harness {
        let h = Harness(cores: cores)
        var reserved = InlineArray<2, UInt64>(repeating: 0)
        reserved[0] = 0xFFFF_FFFF & ~(1 << 23)
        h.kernel.configureInterrupts(reserved: reserved, limit: 64)
        return h
    }

    func get(_ h: Harness, _ irq: Word, core: Word = 0, into slot: Word) -> KernelError? {
        h.invoke(RootSlot.irqControl, .irqControlGet, [irq, core, slot], extraCaps: [h.cnode])
    }

    func changes(_ h: Harness) -> [String] {
        var out: [String] = []
        while let c = h.kernel.takeInterruptChange() { out.append("\(c.enable ? "+" : "-")\(c.id)@\(c.core)") }
        return out
    }

    @Test func theRootThreadHoldsIRQControl() {
        let h = harness()
        #expect(h.cap(RootSlot.irqControl).type == .irqControl)
        // It cannot be copied (as seL4's).
        #expect(h.copy(RootSlot.irqControl, to: 40) == .illegalOperation)
        h.check()
    }

    @Test func getRefusesWhatItMayNotGive() {
        let h = harness()
        #expect(get(h, 26, into: 30) == .range(min: 16, max: 63))  // the kernel's tick
        #expect(get(h, 1, into: 30) == .range(min: 16, max: 63))  // an SGI
        #expect(get(h, 64, into: 30) == .range(min: 16, max: 63))  // past the lines
        #expect(get(h, Self.pmu, core: 2, into: 30) == .range(min: 0, max: 1))  // no core 2
        #expect(h.invoke(RootSlot.irqControl, .irqControlGet, [Self.pmu, 0], extraCaps: [h.cnode]) == .truncatedMessage)
        #expect(get(h, Self.pmu, into: 1) == .deleteFirst)  // the slot holds the root TCB
        #expect(h.cap(30).isNull && h.kernel.interruptHandler(0) == nil)
        #expect(get(h, Self.pmu, into: 30) == nil)
        #expect(get(h, Self.pmu, into: 31) == .revokeFirst)  // one handler per interrupt and core
        #expect(get(h, Self.pmu, core: 1, into: 31) == nil)  // a PPI is per core
        for i: Word in 0..<6 { #expect(get(h, 40 + i, into: 32 + i) == nil) }
        #expect(get(h, 50, into: 38) == .notEnoughMemory(bytesAvailable: 0))  // 8 entries
        #expect(changes(h) == [])  // nothing enabled before the first Ack
        h.check()
    }

    /// The notification is signalled with its badge; the interrupt is masked
    /// from delivery to Ack, so a level that stays asserted signals once.
    @Test func deliveryMasksUntilAck() {
        let h = harness()
        #expect(h.retype(h.bigUntyped, .notification, into: 25) == nil)
        #expect(h.mint(25, to: 26, badge: 0x23) == nil)
        #expect(get(h, Self.pmu, into: 30) == nil)
        #expect(h.invoke(30, .irqHandlerSetNotification, [], extraCaps: [26]) == nil)
        #expect(h.invoke(30, .irqHandlerAck) == nil)
        #expect(changes(h) == ["+23@0"])
        #expect(h.kernel.handleInterruptLocked(23, core: 0))
        #expect(changes(h) == ["-23@0"])
        #expect(h.kernel.interruptHandler(0)?.masked == true)
        h.call(.nbRecv, 25)
        #expect(h.root.pointee.badge == 0x23)
        // Ack enables it again, once.
        #expect(h.invoke(30, .irqHandlerAck) == nil)
        #expect(h.invoke(30, .irqHandlerAck) == nil)
        #expect(changes(h) == ["+23@0"])
        // Not ours: the other core's PPI, or an id without a handler.
        #expect(!h.kernel.handleInterruptLocked(23, core: 1))
        #expect(!h.kernel.handleInterruptLocked(40, core: 0))
        h.check()
    }

    @Test func aWaiterWakes() {
        let h = harness()
        #expect(h.retype(h.bigUntyped, .notification, into: 25) == nil)
        #expect(h.mint(25, to: 26, badge: 0x5) == nil)
        #expect(get(h, Self.pmu, into: 30) == nil)
        #expect(h.invoke(30, .irqHandlerSetNotification, [], extraCaps: [26]) == nil)
        let waiter = h.root
        h.call(.recv, 25)
        #expect(waiter.pointee.state == .blockedOnNotification)
        #expect(h.kernel.handleInterruptLocked(23, core: 0))
        #expect(waiter.pointee.state == .running && waiter.pointee.badge == 0x5)
        h.check()
    }

    @Test func setNotificationChecksItsArgument() {
        let h = harness()
        #expect(h.retype(h.bigUntyped, .notification, into: 25) == nil)
        #expect(h.mint(25, to: 27, rights: [.read], badge: 1) == nil)
        #expect(h.retype(h.bigUntyped, .endpoint, into: 28) == nil)
        #expect(get(h, Self.pmu, into: 30) == nil)
        #expect(h.invoke(30, .irqHandlerSetNotification) == .truncatedMessage)
        #expect(h.invoke(30, .irqHandlerSetNotification, [], extraCaps: [28]) == .invalidCapability(index: 1))
        #expect(h.invoke(30, .irqHandlerSetNotification, [], extraCaps: [27]) == .invalidCapability(index: 1))
        #expect(h.invoke(30, .tcbResume) == .illegalOperation)
        // Cleared: a delivery still masks, signals nothing.
        #expect(h.invoke(30, .irqHandlerSetNotification, [], extraCaps: [25]) == nil)
        #expect(h.invoke(30, .irqHandlerClear) == nil)
        #expect(h.kernel.handleInterruptLocked(23, core: 0))
        h.call(.nbRecv, 25)
        #expect(h.root.pointee.badge == 0)
        h.check()
    }

    /// The entry lives as long as a capability to the handler: copies share
    /// it; deleting the last frees it, drops the notification, disables.
    @Test func deletingTheLastHandlerCapabilityFreesTheEntry() {
        let h = harness()
        #expect(h.retype(h.bigUntyped, .notification, into: 25) == nil)
        #expect(get(h, Self.pmu, into: 30) == nil)
        #expect(h.copy(30, to: 31) == nil)
        #expect(h.invoke(31, .irqHandlerSetNotification, [], extraCaps: [25]) == nil)
        #expect(h.invoke(31, .irqHandlerAck) == nil)
        _ = changes(h)
        h.check()
        #expect(h.delete(30) == nil)
        #expect(h.kernel.interruptHandler(0) != nil && changes(h) == [])
        h.check()
        #expect(h.delete(31) == nil)
        #expect(h.kernel.interruptHandler(0) == nil && changes(h) == ["-23@0"])
        #expect(!h.kernel.handleInterruptLocked(23, core: 0))
        // The notification lives on; the interrupt can be taken again.
        #expect(h.cap(25).type == .notification)
        #expect(get(h, Self.pmu, into: 30) == nil)
        h.check()
    }

    /// Deleting the notification's last other capability: the handler's copy
    /// keeps it alive; revoking its Untyped removes both.
    @Test func theHandlersNotificationIsInTheTree() {
        let h = harness()
        let untyped = h.bigUntyped
        #expect(h.retype(untyped, .notification, into: 25) == nil)
        #expect(get(h, Self.pmu, into: 30) == nil)
        #expect(h.invoke(30, .irqHandlerSetNotification, [], extraCaps: [25]) == nil)
        #expect(h.delete(25) == nil)
        h.check()
        #expect(h.revoke(untyped) == nil)
        #expect(h.kernel.handleInterruptLocked(23, core: 0))  // the handler remains, with nothing to signal
        h.check()
    }

    @Test func plantedTableCorruptionIsCaught() {
        let h = harness()
        #expect(get(h, Self.pmu, into: 30) == nil)
        h.check()
        h.kernel.state.pointee.irqTable[1] = h.kernel.state.pointee.irqTable[0]
        #expect(h.kernel.checkInvariants().map { "\($0.message)" } == "two interrupt handler entries for one interrupt")
        h.kernel.state.pointee.irqTable[1] = 0
        h.kernel.state.pointee.irqTable[0] = 0
        #expect(h.kernel.checkInvariants().map { "\($0.message)" } == "interrupt handler capability names no entry of its interrupt")
    }
}
