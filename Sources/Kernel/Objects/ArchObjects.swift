/// Architecture objects: vCPUs (Objects/VCPU.swift); frames and page
/// tables are declared for the EL0 work.
///
/// As in seL4, generic code calls an `arch`-prefixed function when an object
/// is architecture-specific; there is no function table. Retype refuses
/// frames and page tables with `illegalOperation` until they exist, so no
/// capability to them can exist.

extension ClusterKernel {
    /// Size of an architecture object (the user's size argument is ignored:
    /// these objects have a fixed size).
    func archObjectSizeBits(_ type: ObjectType, userSize: Word) throws(KernelError) -> Int {
        switch type {
        case .vcpu: return vcpuSizeBits
        default: throw .illegalOperation
        }
    }

    /// Initialise an architecture object; only types `archObjectSizeBits`
    /// accepts reach here.
    func archCreateObject(_ type: ObjectType, at object: UInt, sizeBits: Int) -> Capability {
        switch type {
        case .vcpu: return createVCPU(at: object)
        default: return .null
        }
    }
}
