@testable import Kernel
import Testing

/// Cross-cluster notifications as capabilities (issue 10): the receiver
/// exports badged notifications by index; the sender holds remote
/// notification capabilities issued through its `interKernel` capability.
@Suite struct RemoteSignal {
    /// A notification in 25, a badged copy (badge 0b100) in 26.
    func exporter() -> Harness {
        let h = Harness(cluster: 0, clusterCount: 4)
        #expect(h.retype(h.bigUntyped, .notification, into: 25) == nil)
        #expect(h.mint(25, to: 26, badge: 0b100) == nil)
        return h
    }

    func export(_ h: Harness, _ slot: Word, _ index: Word) -> KernelError? {
        h.invoke(slot, .notificationExport, [index])
    }

    @Test func exportErrors() {
        let h = exporter()
        #expect(h.mint(25, to: 27, rights: [.read], badge: 0b1) == nil)
        #expect(export(h, 26, Word(exportLimit)) == .range(min: 0, max: Word(exportLimit) - 1))
        #expect(export(h, 25, 1) == .invalidCapability(index: 0))  // badge 0
        #expect(export(h, 27, 1) == .invalidCapability(index: 0))  // no write right
        #expect(h.invoke(26, .notificationExport) == .truncatedMessage)
        #expect(export(h, 26, 1) == nil)
        #expect(h.kernel.exported(1).type == .notification && h.kernel.exported(1).badge == 0b100)
        #expect(export(h, 26, 1) == .deleteFirst)
        h.check()
    }

    @Test func unexportErrors() {
        let h = exporter()
        #expect(h.retype(h.bigUntyped, .notification, into: 28) == nil)
        #expect(h.invoke(26, .notificationUnexport, [3]) == .failedLookup(source: false, .missingCapability(bitsLeft: 0)))
        #expect(export(h, 26, 3) == nil)
        #expect(h.invoke(28, .notificationUnexport, [3]) == .invalidCapability(index: 0))  // another notification
        #expect(h.invoke(26, .notificationUnexport, [99]) == .range(min: 0, max: Word(exportLimit) - 1))
        // Any capability to the exported notification may unexport it.
        #expect(h.invoke(25, .notificationUnexport, [3]) == nil)
        #expect(h.kernel.exported(3).isNull)
        #expect(h.kernel.remoteSignal(export: 3, from: 1) == .failedLookup(source: false, .missingCapability(bitsLeft: 0)))
        // The notification itself lives on.
        #expect(h.cap(26).type == .notification)
        h.check()
    }

    /// The badge is the exported capability's; the message has none to give.
    @Test func remoteSignalDeliversTheExportedBadgeAndWakesAWaiter() {
        let h = exporter()
        #expect(export(h, 26, 2) == nil)
        #expect(h.kernel.remoteSignal(export: 2, from: 3) == nil)
        h.call(.nbRecv, 25)
        #expect(h.root.pointee.badge == 0b100)
        // The root thread waits on the notification; a remote signal wakes it.
        let waiter = h.root
        h.call(.recv, 25)
        #expect(waiter.pointee.state == .blockedOnNotification && h.current == nil)
        #expect(h.kernel.remoteSignal(export: 2, from: 1) == nil)
        #expect(waiter.pointee.state == .running && waiter.pointee.badge == 0b100 && h.current == waiter)
        h.check()
    }

    @Test func remoteSignalRangeErrors() {
        let h = exporter()
        #expect(export(h, 26, 1) == nil)
        #expect(h.kernel.remoteSignal(export: 16, from: 1) == .range(min: 0, max: 15))
        #expect(h.kernel.remoteSignal(export: 1, from: 0) == .invalidArgument(index: 1))  // ourselves
        #expect(h.kernel.remoteSignal(export: 1, from: 4) == .invalidArgument(index: 1))  // no such cluster
        #expect(h.kernel.remoteSignal(export: 0, from: 1) == .failedLookup(source: false, .missingCapability(bitsLeft: 0)))
        h.check()
    }

    /// The export is a copy in the derivation tree: revoking the Untyped
    /// the notification came from removes it.
    @Test func revokingTheUntypedAncestorRemovesTheExport() {
        let h = exporter()
        let untyped = h.bigUntyped
        #expect(export(h, 26, 5) == nil)
        h.check()
        #expect(h.revoke(untyped) == nil)
        #expect(h.cap(25).isNull && h.cap(26).isNull)
        #expect(h.kernel.exported(5).isNull)
        #expect(h.kernel.remoteSignal(export: 5, from: 1) == .failedLookup(source: false, .missingCapability(bitsLeft: 0)))
        h.check()
    }

    /// Deleting every capability in the CNode leaves the export as the last
    /// one; it keeps the notification alive and signallable.
    @Test func exportOutlivesTheCNodeCopies() {
        let h = exporter()
        #expect(export(h, 26, 5) == nil)
        #expect(h.delete(26) == nil)
        h.check()
        #expect(h.kernel.remoteSignal(export: 5, from: 1) == nil)
        h.call(.nbRecv, 25)
        #expect(h.root.pointee.badge == 0b100)
        #expect(h.delete(25) == nil)
        h.check()
        #expect(h.kernel.exported(5).type == .notification)
    }

    // MARK: Sending side

    @Test func theRootThreadHasTheInterKernelCapability() {
        let h = Harness(cluster: 2, clusterCount: 4)
        #expect(h.cap(RootSlot.interKernel).type == .interKernel)
        // It cannot be copied (as seL4's IRQControl).
        #expect(h.copy(RootSlot.interKernel, to: 30) == .illegalOperation)
        h.check()
    }

    func issue(_ h: Harness, cluster: Word, index: Word, into slot: Word) -> KernelError? {
        h.invoke(RootSlot.interKernel, .interKernelIssueRemote, [cluster, index, slot], extraCaps: [h.cnode])
    }

    @Test func issueRemoteErrors() {
        let h = Harness(cluster: 2, clusterCount: 4)
        #expect(issue(h, cluster: 4, index: 0, into: 30) == .range(min: 0, max: 3))
        #expect(issue(h, cluster: 2, index: 0, into: 30) == .range(min: 0, max: 3))  // ourselves
        #expect(issue(h, cluster: 0, index: 16, into: 30) == .range(min: 0, max: 15))
        #expect(issue(h, cluster: 0, index: 1, into: 256) == .range(min: 0, max: 255))
        #expect(issue(h, cluster: 0, index: 1, into: RootSlot.cnode) == .deleteFirst)
        #expect(h.invoke(RootSlot.interKernel, .interKernelIssueRemote, [0, 1]) == .truncatedMessage)
        #expect(h.invoke(RootSlot.interKernel, .cnodeCopy, [0, 1, 30], extraCaps: [h.cnode]) == .illegalOperation)
        #expect(issue(h, cluster: 0, index: 1, into: 30) == nil)
        let remote = h.cap(30)
        #expect(remote.type == .remoteNotification && remote.rights == .write)
        h.check()
        // One cluster alone has nobody to signal.
        let alone = Harness()
        #expect(issue(alone, cluster: 0, index: 0, into: 30) == .range(min: 0, max: 0))
    }

    @Test func sendQueuesExactlyOneOutgoingSignal() {
        let h = Harness(cluster: 2, clusterCount: 4)
        #expect(issue(h, cluster: 3, index: 2, into: 30) == nil)
        #expect(h.kernel.takeOutgoingSignal() == nil)
        #expect(h.call(.send, 30) == nil)
        #expect(h.kernel.outgoingSignalCount == 1)
        let out = h.kernel.takeOutgoingSignal()
        #expect(out?.cluster == 3 && out?.index == 2)
        #expect(h.kernel.takeOutgoingSignal() == nil)
        // NBSend and Call are Send; a pending signal is not queued twice.
        #expect(h.call(.nbSend, 30) == nil)
        #expect(h.call(.call, 30) == nil)
        #expect(h.kernel.outgoingSignalCount == 1)
        // Copies signal too, and can be deleted like any capability.
        #expect(h.copy(30, to: 31) == nil)
        #expect(issue(h, cluster: 0, index: 2, into: 32) == nil)
        #expect(h.call(.send, 32) == nil)
        #expect(h.kernel.outgoingSignalCount == 2)
        h.check()
        #expect(h.delete(30) == nil)
        #expect(h.cap(31).type == .remoteNotification)
        h.check()
        let first = h.kernel.takeOutgoingSignal(), second = h.kernel.takeOutgoingSignal()
        #expect(first?.cluster == 3 && second?.cluster == 0)
    }

    /// The EL0 trap path holds the big lock when it serves the channel and
    /// forwards signals: the lock-held entries do what the locking ones do,
    /// on the core named, and take no lock (a ticket lock is not
    /// re-entrant: taking it again would hang this test).
    @Test func lockHeldEntriesForTheTrapPath() {
        let h = exporter()
        #expect(export(h, 26, 2) == nil)
        let waiter = h.root
        h.call(.recv, 25)
        #expect(waiter.pointee.state == .blockedOnNotification && h.current == nil)
        h.kernel.lock.acquire(core: 0)
        #expect(h.kernel.remoteSignalLocked(export: 16, from: 1, core: 0) == .range(min: 0, max: 15))
        #expect(h.kernel.remoteSignalLocked(export: 2, from: 0, core: 0) == .invalidArgument(index: 1))
        #expect(h.kernel.remoteSignalLocked(export: 3, from: 1, core: 0)
                == .failedLookup(source: false, .missingCapability(bitsLeft: 0)))
        // The refusals changed nothing: the waiter still waits.
        #expect(waiter.pointee.state == .blockedOnNotification && h.current == nil)
        #expect(h.kernel.remoteSignalLocked(export: 2, from: 3, core: 0) == nil)
        h.kernel.lock.release(core: 0)
        #expect(h.current == waiter && waiter.pointee.badge == 0b100)
        h.check()

        let s = Harness(cluster: 2, clusterCount: 4)
        #expect(issue(s, cluster: 3, index: 2, into: 30) == nil)
        #expect(issue(s, cluster: 1, index: 5, into: 31) == nil)
        #expect(s.call(.send, 30) == nil)
        #expect(s.call(.send, 31) == nil)
        s.kernel.lock.acquire(core: 0)
        let first = s.kernel.takeOutgoingSignalLocked(), second = s.kernel.takeOutgoingSignalLocked()
        #expect(s.kernel.takeOutgoingSignalLocked() == nil)
        s.kernel.lock.release(core: 0)
        #expect(first?.cluster == 3 && first?.index == 2 && second?.cluster == 1 && second?.index == 5)
        #expect(s.kernel.outgoingSignalCount == 0)
    }

    @Test func theQueueIsBounded() {
        let h = Harness(cluster: 0, clusterCount: 3)
        for i in 0..<Word(exportLimit) {
            #expect(issue(h, cluster: 1, index: i, into: 30 + i) == nil)
            #expect(h.call(.send, 30 + i) == nil)
        }
        #expect(h.kernel.outgoingSignalCount == outgoingSignalLimit)
        #expect(issue(h, cluster: 2, index: 0, into: 60) == nil)
        // Full: a new signal is refused (nothing queued) until the Boot
        // layer takes one; one already queued still succeeds.
        #expect(h.call(.send, 60) == .notEnoughMemory(bytesAvailable: 0))
        #expect(h.call(.send, 31) == nil)
        #expect(h.kernel.takeOutgoingSignal()?.index == 0)
        #expect(h.call(.send, 60) == nil)
        #expect(h.kernel.outgoingSignalCount == outgoingSignalLimit)
        h.check()
    }

    @Test func aRemoteCapabilityWithoutTheWriteRightCannotSend() {
        let h = Harness(cluster: 1, clusterCount: 2)
        #expect(issue(h, cluster: 0, index: 1, into: 30) == nil)
        #expect(h.copy(30, to: 31, rights: [.read]) == nil)
        #expect(h.call(.send, 31) == .invalidCapability(index: 0))
        #expect(h.kernel.outgoingSignalCount == 0)
        // Nor receive: it is not a notification of this cluster.
        #expect(h.call(.nbRecv, 30) == .invalidCapability(index: 0))
        h.check()
    }

    @Test func bootRejectsABadClusterCount() {
        let h = Harness()
        #expect(ClusterKernel.boot(memory: h.memory, size: h.size, cluster: 1, clusterCount: 1) == nil)
        #expect(ClusterKernel.boot(memory: h.memory, size: h.size, clusterCount: 0) == nil)
        #expect(ClusterKernel.boot(memory: h.memory, size: h.size, clusterCount: 65) == nil)
        // The export table fits the fixed state's reservation, and memory
        // below the fixed state plus 8 KiB is still refused.
        #expect((1 + ClusterKernel.fixedSlotCount) * MemoryLayout<CTE>.stride <= 3072)
        let small = ClusterKernel.fixedStateBytes(cores: 1) + 8192
        #expect(ClusterKernel.boot(memory: h.memory, size: small - 4096) == nil)
    }
}
