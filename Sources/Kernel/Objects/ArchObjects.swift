/// Architecture objects (frames, page tables, vCPUs): declared hooks only.
///
/// As in seL4, generic code calls an `arch`-prefixed function when an object
/// is architecture-specific; there is no function table. Until the EL0 and
/// guest work provides these objects, Retype refuses them with
/// `illegalOperation` and no capability to them can exist.

extension ClusterKernel {
    /// Size of an architecture object. Today: none can be made.
    func archObjectSizeBits(_ type: ObjectType, userSize: Word) throws(KernelError) -> Int {
        throw .illegalOperation
    }

    /// Initialise an architecture object. Unreachable while
    /// `archObjectSizeBits` refuses every type.
    func archCreateObject(_ type: ObjectType, at object: UInt, sizeBits: Int) -> Capability {
        .null
    }
}
