/// Architecture objects: vCPUs (Objects/VCPU.swift); frames, page tables
/// and VSpaces (Objects/VSpace.swift).
///
/// As in seL4, generic code calls an `arch`-prefixed function when an object
/// is architecture-specific; there is no function table.

extension ClusterKernel {
    /// Size of an architecture object (the user's size argument is ignored:
    /// these objects have a fixed size).
    func archObjectSizeBits(_ type: ObjectType, userSize: Word) throws(KernelError) -> Int {
        switch type {
        case .vcpu: return vcpuSizeBits
        case .frame: return frameSizeBits
        case .pageTable: return pageTableSizeBits
        case .vspace: return vspaceSizeBits
        default: throw .illegalOperation
        }
    }

    /// Initialise an architecture object; only types `archObjectSizeBits`
    /// accepts reach here.
    func archCreateObject(_ type: ObjectType, at object: UInt, sizeBits: Int) -> Capability {
        switch type {
        case .vcpu: return createVCPU(at: object)
        case .frame, .pageTable, .vspace: return createVSpaceObject(type, at: object, sizeBits: sizeBits)
        default: return .null
        }
    }
}
