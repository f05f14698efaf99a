@testable import Kernel
import Testing

/// The VCPU object: retype, binding to a thread (both directions kept
/// mutual), rebinding, and unbinding when either side dies.
@Suite struct VCPUTests {
    @Test func retypeMakesAnUnboundPageAlignedVCPU() {
        let h = Harness()
        #expect(h.retype(h.bigUntyped, .vcpu, into: 40, count: 2) == nil)
        let a = h.cap(40), b = h.cap(41)
        #expect(a.type == .vcpu && b.type == .vcpu)
        #expect(a.object & ((1 << UInt(vcpuSizeBits)) - 1) == 0)
        #expect(b.object - a.object == 1 << UInt(vcpuSizeBits))
        let v = VCPURef(bitPattern: a.object)!
        #expect(v.pointee.tcb == nil && v.pointee.guestIndex == 0)
        #expect(MemoryLayout<VCPU>.size <= 1 << vcpuSizeBits)
        h.check()
    }

    @Test func setTCBBindsBothWaysAndRebindingMovesTheBinding() {
        let h = Harness()
        #expect(h.retype(h.bigUntyped, .vcpu, into: 40, count: 2) == nil)
        let t1 = h.spawn(50, priority: 10)
        let t2 = h.spawn(51, priority: 10)
        let v1 = VCPURef(bitPattern: h.cap(40).object)!
        let v2 = VCPURef(bitPattern: h.cap(41).object)!
        #expect(h.invoke(40, .vcpuSetTCB, [], extraCaps: [50]) == nil)
        #expect(v1.pointee.tcb == t1 && t1.pointee.boundVCPU == v1)
        h.check()
        // Bind v1 to another thread: t1 loses it.
        #expect(h.invoke(40, .vcpuSetTCB, [], extraCaps: [51]) == nil)
        #expect(t1.pointee.boundVCPU == nil && t2.pointee.boundVCPU == v1 && v1.pointee.tcb == t2)
        // Bind v2 to t2: v1 loses its thread.
        #expect(h.invoke(41, .vcpuSetTCB, [], extraCaps: [51]) == nil)
        #expect(v1.pointee.tcb == nil && v2.pointee.tcb == t2 && t2.pointee.boundVCPU == v2)
        h.check()
    }

    @Test func badInvocationsAreRefused() {
        let h = Harness()
        #expect(h.retype(h.bigUntyped, .vcpu, into: 40) == nil)
        #expect(h.retype(h.bigUntyped, .endpoint, into: 41) == nil)
        #expect(h.invoke(40, .vcpuSetTCB, []) == .truncatedMessage)
        #expect(h.invoke(40, .vcpuSetTCB, [], extraCaps: [41]) == .invalidCapability(index: 1))
        #expect(h.invoke(40, .vcpuSetTCB, [], extraCaps: [99]) == .failedLookup(source: true, .missingCapability(bitsLeft: 0)))
        #expect(h.invoke(40, .vcpuSetIndex, []) == .truncatedMessage)
        #expect(h.invoke(40, .vcpuSetIndex, [64]) == .range(min: 0, max: 63))
        #expect(h.invoke(40, .vcpuSetIndex, [7]) == nil)
        #expect(VCPURef(bitPattern: h.cap(40).object)!.pointee.guestIndex == 7)
        #expect(h.invoke(40, .tcbResume, []) == .illegalOperation)
        // A TCB does not answer VCPU methods.
        _ = h.spawn(50, priority: 10)
        #expect(h.invoke(50, .vcpuSetTCB, [], extraCaps: [50]) == .illegalOperation)
        h.check()
    }

    @Test func deletingEitherSideUnbindsTheOther() {
        let h = Harness()
        #expect(h.retype(h.bigUntyped, .vcpu, into: 40, count: 2) == nil)
        let t = h.spawn(50, priority: 10)
        #expect(h.invoke(40, .vcpuSetTCB, [], extraCaps: [50]) == nil)
        // A copy keeps the object alive: no unbinding yet.
        #expect(h.copy(40, to: 42) == nil)
        #expect(h.delete(40) == nil)
        #expect(t.pointee.boundVCPU != nil)
        #expect(h.delete(42) == nil)
        #expect(t.pointee.boundVCPU == nil)
        h.check()
        // The thread dies first: the VCPU forgets it.
        let v = VCPURef(bitPattern: h.cap(41).object)!
        #expect(h.invoke(41, .vcpuSetTCB, [], extraCaps: [50]) == nil)
        #expect(h.delete(50) == nil)
        #expect(v.pointee.tcb == nil)
        h.check()
    }

    /// The checker catches a one-sided binding made by hand.
    @Test func invariantsCatchAOneSidedBinding() {
        let h = Harness()
        #expect(h.retype(h.bigUntyped, .vcpu, into: 40) == nil)
        let t = h.spawn(50, priority: 10)
        let v = VCPURef(bitPattern: h.cap(40).object)!
        v.pointee.tcb = t
        #expect(h.kernel.checkInvariants()?.message.description == "VCPU's thread is not bound back to it")
        v.pointee.tcb = nil
        t.pointee.boundVCPU = v
        #expect(h.kernel.checkInvariants()?.message.description == "thread's VCPU is not bound back to it")
        t.pointee.boundVCPU = nil
        h.check()
    }
}
