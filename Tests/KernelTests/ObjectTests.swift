@testable import Kernel
import Testing

@Suite struct BootAndUntyped {
    @Test func bootGivesRootThreadCNodeAndUntyped() {
        let h = Harness()
        h.check()
        #expect(h.current == h.root)
        #expect(h.root.pointee.priority == 255)
        #expect(h.cap(RootSlot.thread).type == .tcb)
        #expect(h.cap(RootSlot.cnode).type == .cnode)
        #expect(h.cap(RootSlot.firstUntyped).type == .untyped)
        #expect(h.cap(0).isNull)
    }

    @Test func retypeEveryKernelObjectAligned() {
        let h = Harness()
        let types: [(ObjectType, Word, Int)] = [
            (.endpoint, 0, endpointSizeBits), (.notification, 0, notificationSizeBits), (.tcb, 0, tcbSizeBits),
            (.cnode, 3, 3 + slotSizeBits), (.untyped, 12, 12),
        ]
        var slot: Word = 20
        for (type, size, bits) in types {
            #expect(h.retype(h.bigUntyped, type, size: size, into: slot, count: 2) == nil)
            for i in 0..<Word(2) {
                let c = h.cap(slot + i)
                #expect(c.object & ((1 << UInt(bits)) - 1) == 0)
            }
            #expect(h.cap(slot).object != h.cap(slot + 1).object)
            slot += 2
            h.check()
        }
    }

    @Test func retypeErrors() {
        let h = Harness()
        let ut = h.bigUntyped
        let c = h.cnode
        #expect(h.invoke(ut, .untypedRetype, [99, 0, 0, 0, 20, 1], extraCaps: [c]) == .invalidArgument(index: 0))
        #expect(h.invoke(ut, .untypedRetype, [ObjectType.vspace.rawValue + 1, 0, 0, 0, 20, 1], extraCaps: [c]) == .invalidArgument(index: 0))
        #expect(h.retype(ut, .untyped, size: 3, into: 20) == .range(min: 4, max: 47))
        #expect(h.retype(ut, .cnode, size: 0, into: 20) == .range(min: 1, max: Word(maxCNodeRadix)))
        #expect(h.retype(ut, .endpoint, into: 20, count: 0) == .range(min: 1, max: 236))
        #expect(h.retype(ut, .endpoint, into: 256) == .range(min: 0, max: 255))
        #expect(h.retype(ut, .endpoint, into: RootSlot.thread) == .deleteFirst)
        #expect(h.retype(ut, .untyped, size: 47, into: 20) == .notEnoughMemory(bytesAvailable: Word(1) << Word(h.cap(ut).bits)))
        #expect(h.invoke(ut, .untypedRetype, [1, 0, 0, 0, 20], extraCaps: [c]) == .truncatedMessage)
        #expect(h.invoke(ut, .untypedRetype, [1, 0, 0, 0, 20, 1]) == .truncatedMessage)
        #expect(h.invoke(ut, .untypedRetype, [1, 0, 0, 0, 20, 1], extraCaps: [200]) == .failedLookup(source: true, .missingCapability(bitsLeft: 0)))
        #expect(h.invoke(ut, .untypedRetype, [1, 0, 0, 0, 20, 1], extraCaps: [RootSlot.thread]) == .failedLookup(source: false, .missingCapability(bitsLeft: 0)))
        #expect(h.invoke(ut, .cnodeCopy, []) == .illegalOperation)
        #expect(h.invoke(ut, .untypedRetype, [1, 0, 0, 0, 20, 1], extraCaps: [c]) == nil)
        h.check()
    }

    @Test func retypeFillsThenResetsWhenChildrenAreGone() {
        let h = Harness()
        // A 4 KiB Untyped holds exactly 64 endpoints.
        #expect(h.retype(h.bigUntyped, .untyped, size: 12, into: 20) == nil)
        #expect(h.retype(20, .endpoint, into: 30, count: 128) == nil)
        #expect(h.cap(20).word == 4096)
        #expect(h.retype(20, .endpoint, into: 200, count: 1) == .notEnoughMemory(bytesAvailable: 0))
        #expect(h.copy(20, to: 199) == .revokeFirst)
        #expect(h.revoke(20) == nil)
        #expect(h.cap(30).isNull)
        h.check()
        #expect(h.retype(20, .endpoint, into: 30) == nil)
        #expect(h.cap(30).object == h.cap(20).object)
        h.check()
    }

    @Test func untypedCopyTakesOverTheMemory() {
        let h = Harness()
        #expect(h.retype(h.bigUntyped, .untyped, size: 12, into: 20) == nil)
        #expect(h.copy(20, to: 21) == nil)
        #expect(h.retype(20, .endpoint, into: 30) == .notEnoughMemory(bytesAvailable: 0))
        #expect(h.retype(21, .endpoint, into: 30) == nil)
        h.check()
    }
}

@Suite struct CNodeOperations {
    @Test func copyMintMoveMutateDelete() {
        let h = Harness()
        #expect(h.retype(h.bigUntyped, .endpoint, into: 20) == nil)
        #expect(h.copy(20, to: 21, rights: [.read]) == nil)
        #expect(h.cap(21).rights == [.read])
        #expect(h.mint(20, to: 22, badge: 7) == nil)
        #expect(h.cap(22).badge == 7)
        #expect(h.mint(22, to: 23, badge: 8) == .illegalOperation)
        #expect(h.copy(22, to: 23) == nil)
        #expect(h.cap(23).badge == 7)
        #expect(h.copy(20, to: 21) == .deleteFirst)
        #expect(h.copy(99, to: 98) == .failedLookup(source: true, .missingCapability(bitsLeft: 0)))
        #expect(h.move(23, to: 24) == nil)
        #expect(h.cap(23).isNull && h.cap(24).badge == 7)
        #expect(h.invoke(h.cnode, .cnodeMutate, [25, 64, 24, 64, 9], extraCaps: [h.cnode]) == .illegalOperation)
        #expect(h.invoke(h.cnode, .cnodeMove, [25, 64, 24], extraCaps: [h.cnode]) == .truncatedMessage)
        #expect(h.invoke(h.cnode, .cnodeCopy, [25, 64, 24, 64, 15]) == .truncatedMessage)
        #expect(h.invoke(h.cnode, .cnodeDelete, [25]) == .truncatedMessage)
        #expect(h.invoke(h.cnode, .cnodeDelete, [25, 0]) == .range(min: 1, max: 64))
        #expect(h.invoke(h.cnode, .cnodeDelete, [25, 65]) == .range(min: 1, max: 64))
        h.check()
        // Revoking the badged original removes its same-badge copies only.
        #expect(h.revoke(22) == nil)
        #expect(h.cap(24).isNull && !h.cap(22).isNull && !h.cap(21).isNull)
        #expect(h.revoke(20) == nil)
        #expect(h.cap(21).isNull && h.cap(22).isNull && !h.cap(20).isNull)
        #expect(h.delete(20) == nil)
        #expect(h.cap(20).isNull)
        #expect(h.delete(20) == nil)  // deleting an empty slot succeeds
        h.check()
    }

    @Test func cspaceGuardsAndLookupFailures() throws {
        let h = Harness()
        #expect(h.retype(h.bigUntyped, .cnode, size: 4, into: 10) == nil)
        // Guard: 4 bits equal to 0x5, then 4 bits of index.
        #expect(h.mint(10, to: 11, badge: (0x5 << 6) | 4) == nil)
        let guarded = h.cap(11)
        #expect(guarded.small == 4 && guarded.word == 5)
        #expect(h.mint(10, to: 12, badge: (0x25 << 6) | 4) == .illegalOperation)  // guard wider than its size
        #expect(h.retype(h.bigUntyped, .endpoint, into: 20) == nil)
        // Copy into the guarded CNode at index 3: address 0x53, depth 8.
        #expect(h.invoke(11, .cnodeCopy, [0x53, 8, 20, 64, 15], extraCaps: [h.cnode]) == nil)
        #expect(h.kernel.slot(guarded, 3).type == .endpoint)
        #expect(h.invoke(11, .cnodeDelete, [0x63, 8]) == .failedLookup(source: false, .guardMismatch(bitsLeft: 8, guard: 5, guardSize: 4)))
        #expect(h.invoke(11, .cnodeDelete, [0x53, 6]) == .failedLookup(source: false, .guardMismatch(bitsLeft: 6, guard: 5, guardSize: 4)))
        #expect(h.invoke(11, .cnodeDelete, [0x28, 7]) == .failedLookup(source: false, .depthMismatch(bitsLeft: 7, bitsFound: 8)))
        // Two levels: slot 3 of the guarded CNode holds a CNode.
        #expect(h.invoke(11, .cnodeDelete, [0x53, 8]) == nil)
        #expect(h.retype(h.bigUntyped, .cnode, size: 2, into: 21) == nil)
        #expect(h.invoke(11, .cnodeCopy, [0x53, 8, 21, 64, 15], extraCaps: [h.cnode]) == nil)
        #expect(h.invoke(11, .cnodeCopy, [0x14E, 10, 20, 64, 15], extraCaps: [h.cnode]) == nil)
        #expect(h.kernel.slot(h.cap(21), 2).type == .endpoint)
        // Bits left over at a non-CNode capability.
        #expect(h.invoke(11, .cnodeDelete, [0x538, 12]) == .failedLookup(source: false, .depthMismatch(bitsLeft: 2, bitsFound: 0)))
        #expect(h.invoke(h.cnode, .cnodeCopy, [30, 64, 0, 64, 15], extraCaps: [20]) == .failedLookup(source: true, .invalidRoot))
        // Direct resolver checks.
        #expect(throws: LookupFailure.invalidRoot) { try resolveAddressBits(h.cap(20), 0, depth: 64) }
        let (slot, left) = try resolveAddressBits(guarded, 0x51, depth: 8)
        #expect(left == 0 && slot.pointee.cap.type == .null)
        #expect(h.call(.send, 250) == .failedLookup(source: false, .missingCapability(bitsLeft: 0)))
        h.check()
    }

    @Test func deletingCNodesDeletesTheirContentsAndParksInnerCNodes() {
        let h = Harness()
        #expect(h.retype(h.bigUntyped, .untyped, size: 16, into: 9) == nil)
        #expect(h.retype(9, .cnode, size: 3, into: 10, count: 2) == nil)
        #expect(h.retype(9, .endpoint, into: 20) == nil)
        let outer = h.cap(10), inner = h.cap(11)
        // outer[1] = copy of endpoint, outer[7] = the only cap to inner.
        #expect(h.invoke(10, .cnodeCopy, [1, 3, 20, 64, 15], extraCaps: [h.cnode]) == nil)
        #expect(h.invoke(10, .cnodeMove, [7, 3, 11, 64], extraCaps: [h.cnode]) == nil)
        h.check()
        #expect(h.delete(10) == nil)
        h.check()
        #expect(h.kernel.slot(outer, 1).isNull && h.kernel.slot(outer, 7).isNull)
        // The inner CNode's zombie is parked in its own first slot.
        #expect(h.kernel.slot(inner, 0).type == .zombie)
        #expect(h.revoke(9) == nil)
        #expect(h.kernel.slot(inner, 0).isNull)
        #expect(h.cap(20).isNull)
        h.check()
    }

    @Test func revokeIsPreemptibleAndRestartable() {
        let h = Harness(preemptEvery: 8)
        #expect(h.retype(h.bigUntyped, .untyped, size: 16, into: 9) == nil)
        #expect(h.retype(9, .endpoint, into: 20, count: 150) == nil)
        h.check()
        let t = h.root
        t.pointee.messageInfo = MessageInfo(label: InvocationLabel.cnodeRevoke.rawValue, length: 2)
        t.pointee.mr[0] = 9
        t.pointee.mr[1] = 64
        h.kernel.syscall(.call, capAddress: h.cnode)
        #expect(t.pointee.state == .restart)
        h.check("after the first preemption")
        var rounds = 1
        while t.pointee.state == .restart {
            h.kernel.timerTick()
            h.check("between restarts")
            h.kernel.syscall(.call, capAddress: h.cnode)
            rounds += 1
        }
        #expect(rounds > 10)
        #expect(t.pointee.error == nil)
        #expect(h.cap(20).isNull && h.cap(169).isNull)
        h.check()
    }

    /// 150 endpoints under Untyped 9, and the root thread's message for
    /// Revoke(9), issued once.
    func issueLongRevoke(_ h: Harness) -> TCBRef {
        #expect(h.retype(h.bigUntyped, .untyped, size: 16, into: 9) == nil)
        #expect(h.retype(9, .endpoint, into: 20, count: 150) == nil)
        let t = h.root
        t.pointee.messageInfo = MessageInfo(label: InvocationLabel.cnodeRevoke.rawValue, length: 2)
        t.pointee.mr[0] = 9
        t.pointee.mr[1] = 64
        PreemptionClock.clock!.pointee.calls = 0
        PreemptionClock.clock!.pointee.pendings = 0
        h.kernel.syscall(.call, capAddress: h.cnode)
        return t
    }

    /// How many of the 150 endpoints are gone.
    func deleted(_ h: Harness) -> Int { (Word(20)...169).filter { h.cap($0).isNull }.count }

    @Test func aPreemptionPointFiresOnlyWhenTheHookSaysPending() {
        // Never pending: the revoke runs to the end in one entry, though the
        // kernel asked at each of its preemption points.
        let quiet = Harness(preemptEvery: 0)
        let t = issueLongRevoke(quiet)
        #expect(t.pointee.state == .running)
        #expect(t.pointee.error == nil)
        #expect(quiet.cap(20).isNull && quiet.cap(169).isNull)
        let asked = PreemptionClock.clock!.pointee.calls
        #expect(asked >= 150)
        quiet.check()

        // Always pending: the first preemption point stops it, after one step.
        let busy = Harness(preemptEvery: 1)
        let u = issueLongRevoke(busy)
        #expect(u.pointee.state == .restart)
        #expect(PreemptionClock.clock!.pointee.calls == 1)
        #expect(deleted(busy) == 1)
        busy.check("stopped at the first preemption point")

        // Pending on the 7th question: exactly 7 points passed.
        let late = Harness(preemptEvery: 7)
        let v = issueLongRevoke(late)
        #expect(v.pointee.state == .restart)
        #expect(PreemptionClock.clock!.pointee.calls == 7)
        #expect(deleted(late) == 7)
        late.check()
    }

    @Test func aLongRevokeCompletesAcrossRestartsDrivenByTheHook() {
        let h = Harness(preemptEvery: 10)
        let t = issueLongRevoke(h)
        var restarts = 0
        while t.pointee.state == .restart {
            restarts += 1
            h.check("restart \(restarts)")
            h.kernel.syscall(.call, capAddress: h.cnode)
        }
        // Each "pending" answer cost exactly one restart.
        let clock = PreemptionClock.clock!.pointee
        #expect(restarts == clock.pendings)
        #expect(restarts >= 10)
        #expect(clock.calls >= 150)
        #expect(t.pointee.error == nil)
        #expect(h.cap(20).isNull && h.cap(169).isNull)
        h.check()
    }

    @Test func largeCNodeDeleteIsPreemptible() {
        let h = Harness(preemptEvery: 16)
        #expect(h.retype(h.bigUntyped, .cnode, size: 8, into: 10) == nil)
        #expect(h.retype(h.bigUntyped, .endpoint, into: 20) == nil)
        for i: Word in 0..<50 {
            #expect(h.invoke(10, .cnodeCopy, [i * 5, 8, 20, 64, 15], extraCaps: [h.cnode]) == nil)
        }
        let t = h.root
        t.pointee.messageInfo = MessageInfo(label: InvocationLabel.cnodeDelete.rawValue, length: 2)
        t.pointee.mr[0] = 10
        t.pointee.mr[1] = 64
        h.kernel.syscall(.call, capAddress: h.cnode)
        #expect(t.pointee.state == .restart)
        #expect(h.cap(10).type == .zombie)
        h.check("zombie mid-delete")
        // Operations on a zombie are refused; lookups through it fail.
        #expect(h.copy(10, to: 11) == .illegalOperation)
        #expect(h.delete(10) == nil)
        #expect(h.cap(10).isNull)
        h.check()
    }
}
