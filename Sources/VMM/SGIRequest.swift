/// A guest IPI: the value the guest wrote to ICC_SGI1R_EL1 (trapped to EL2
/// because HCR_EL2.IMO is set), decoded.
///
/// Layout: TargetList [15:0], Aff1 [23:16], INTID [27:24], Aff2 [39:32],
/// IRM [40], RS [47:44], Aff3 [55:48]; other bits RES0 (ignored).
/// With IRM = 1 the SGI goes to every vCPU but the sender and the affinity
/// fields are ignored. Otherwise it goes to each vCPU whose MPIDR has Aff3,
/// Aff2, Aff1 equal to the fields and Aff0 = RS * 16 + k for a set bit k of
/// TargetList.
public struct SGIRequest: Equatable, Sendable {
    /// SGI number, 0...15.
    public var intid: Int
    public var targetList: UInt16
    public var aff1: UInt8
    public var aff2: UInt8
    public var aff3: UInt8
    /// Range selector: TargetList bit k names Aff0 = rangeSelector * 16 + k.
    public var rangeSelector: UInt8
    /// IRM: to all vCPUs but the sender.
    public var broadcast: Bool

    public init(raw: UInt64) {
        targetList = UInt16(truncatingIfNeeded: raw)
        aff1 = UInt8(truncatingIfNeeded: raw >> 16)
        intid = Int((raw >> 24) & 0xF)
        aff2 = UInt8(truncatingIfNeeded: raw >> 32)
        broadcast = (raw >> 40) & 1 == 1
        rangeSelector = UInt8((raw >> 44) & 0xF)
        aff3 = UInt8(truncatingIfNeeded: raw >> 48)
    }

    /// The vCPUs (bit i = vCPU i) that get SGI `intid` when vCPU `sender`
    /// writes this value. A target list naming affinities no vCPU has adds
    /// nothing (the architecture drops them silently). The sender is a target
    /// when it names itself without IRM.
    public func targets(sender: Int, topology: VCPUTopology) -> UInt64 {
        var mask: UInt64 = 0
        for i in 0..<topology.count {
            if broadcast {
                if i != sender { mask |= 1 << UInt64(i) }
                continue
            }
            let m = topology.mpidr(ofVCPU: i)
            guard UInt8(truncatingIfNeeded: m >> 8) == aff1,
                  UInt8(truncatingIfNeeded: m >> 16) == aff2,
                  UInt8(truncatingIfNeeded: m >> 32) == aff3 else { continue }
            let aff0 = Int(m & 0xFF)
            let base = Int(rangeSelector) * 16
            guard aff0 >= base && aff0 < base + 16 else { continue }
            if (targetList >> UInt16(aff0 - base)) & 1 == 1 { mask |= 1 << UInt64(i) }
        }
        return mask
    }
}
