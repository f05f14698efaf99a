/// Virtual CPUs: the state of one guest CPU at EL1, as seL4's VCPU object.
///
/// A VCPU is retyped from Untyped (2^vcpuSizeBits bytes) and bound to one TCB
/// with `VCPUSetTCB`; the scheduler runs that thread like any other, and when
/// it is chosen the architecture layer (Boot) enters the guest with this
/// state instead of returning to EL0. Every exit comes back through the
/// kernel under the cluster's big lock.
///
/// The kernel itself never interprets the guest state: it stores it, moves
/// it, and forgets it when the object dies. Its layout (which word is which
/// register) belongs to the architecture layer, which saves and restores it
/// (`Boot/VCPURun.swift`, `ArchAsm/guest.S`); here it is words.
///
/// Invariants:
/// - `tcb` and that TCB's `boundVCPU` name each other, or both are nil
///   (checked by `checkInvariants`);
/// - a VCPU whose last capability is deleted is first unbound, so no TCB
///   ever names a dead VCPU;
/// - `guestIndex` is below 64 (`VCPUSetIndex` checks it).

public typealias VCPURef = UnsafeMutablePointer<VCPU>

/// Log2 bytes of a VCPU object (seL4: one page on Arm).
public let vcpuSizeBits = 12

public struct VCPU {
    /// Words of saved guest state: the trap frame (general registers, PC,
    /// PSTATE, FP/SIMD registers) and the EL1 system registers with the
    /// virtual CPU interface's control and active-priority registers. The
    /// list registers are a cache rebuilt on every entry from the vCPU's
    /// virtual-GIC state (the VMM's), so they need no words here. 448 words.
    public static let contextWords = 448

    /// The thread this vCPU runs as (nil: unbound).
    public internal(set) var tcb: TCBRef? = nil
    /// The guest's CPU number (its MPIDR as the guest sees it is derived
    /// from it by the architecture layer).
    public internal(set) var guestIndex: Word = 0
    /// The saved state (see `contextWords`).
    public var context = VCPUContext()

    public init() {}
}

/// Fixed storage for a vCPU's saved state, indexed by word.
public struct VCPUContext {
    var storage = InlineArray<448, Word>(repeating: 0)
    public init() {}
    public subscript(_ i: Int) -> Word {
        @inline(__always) get { storage[i] }
        @inline(__always) set { storage[i] = newValue }
    }
    /// The first word, for the architecture layer's save/restore routines.
    public mutating func withUnsafeMutableWords<R>(_ body: (UnsafeMutablePointer<Word>) -> R) -> R {
        withUnsafeMutablePointer(to: &storage) { body(UnsafeMutableRawPointer($0).assumingMemoryBound(to: Word.self)) }
    }
}

extension ClusterKernel {
    /// Make a fresh, unbound VCPU in the memory at `object`.
    func createVCPU(at object: UInt) -> Capability {
        let raw = UnsafeMutableRawPointer(bitPattern: object)!
        raw.initializeMemory(as: UInt8.self, repeating: 0, count: 1 << vcpuSizeBits)
        raw.bindMemory(to: VCPU.self, capacity: 1).initialize(to: VCPU())
        return Capability(type: .vcpu, rights: .all, bits: 0, small: 0, object: object, word: 0)
    }

    /// Break the binding between a VCPU and its thread, if any (both sides).
    func dissociate(_ v: VCPURef) {
        if let t = v.pointee.tcb { t.pointee.boundVCPU = nil }
        v.pointee.tcb = nil
    }

    /// The last capability to a VCPU goes: unbind it (seL4's vcpu_finalise).
    func finaliseVCPU(_ v: VCPURef) {
        dissociate(v)
    }

    /// VCPUSetTCB(tcb: extra cap 0): bind, replacing any earlier binding of
    /// either side. VCPUSetIndex(index: mr0): the guest CPU number.
    func invokeVCPU(_ v: VCPURef, _ label: InvocationLabel, caller: TCBRef) throws(KernelError) {
        let info = caller.pointee.messageInfo
        switch label {
        case .vcpuSetTCB:
            guard info.extraCaps >= 1 else { throw .truncatedMessage }
            let cap = try lookupExtraCap(caller, 0).pointee.cap
            guard cap.type == .tcb else { throw .invalidCapability(index: 1) }
            let t = tcbRef(object: cap.object)
            if let old = t.pointee.boundVCPU { dissociate(old) }
            dissociate(v)
            v.pointee.tcb = t
            t.pointee.boundVCPU = v
        case .vcpuSetIndex:
            guard info.length >= 1 else { throw .truncatedMessage }
            let index = caller.pointee.mr[0]
            guard index < 64 else { throw .range(min: 0, max: 63) }
            v.pointee.guestIndex = index
        default:
            throw .illegalOperation
        }
    }
}
