/// The guest's GICv3 distributor (GICD, IPA 0x08000000, 64 KiB), presented
/// as KVM presents it: one security state (DS = 1), affinity routing always on
/// (ARE = 1), no LPIs, every interrupt Group 1.
///
/// It owns every SPI's state (INTIDs 32 ..< 32 + spiCount): enable, pending
/// latch, input line, active, priority, trigger mode, route. It decides when
/// an SPI is deliverable and to which vCPU, and tells that vCPU with a
/// `DistributorMessage` (drained with `nextMessage()`); the vCPU answers with
/// `SPIReport`s (`accept(_:)`). It never touches a list register.
///
/// Access policy (`access`): every register is 32-bit and 32-bit aligned,
/// except IPRIORITYR (byte or word) and IROUTER (64-bit, or either 32-bit
/// half). An access of another size or alignment, to an offset the model does
/// not implement, to a register beyond the implemented INTIDs, or a write to
/// a read-only register (TYPER, TYPER2, IIDR, PIDR2) answers `.refused`: the
/// kernel injects an external abort and logs the IPA once. With ARE = 1 the
/// distributor's registers for INTIDs 0..31 are RAZ/WI (they live in each
/// redistributor); so are bits for INTIDs past spiCount inside an
/// implemented register.
///
/// SPI state invariants:
/// - pending(n) = latch[n] || (level-sensitive(n) && line[n]).
/// - held(n) = pending(n) && enabled[n] && EnableGrp1.
/// - offerable(n) = held(n) && the route names a vCPU &&
///   !(level-sensitive(n) && active[n]) (a level interrupt is resampled when
///   the guest deactivates it, never offered again while active).
/// - notified[n] means: vCPU notifiedTarget[n] was last told "pending" with
///   sequence[n] and has not reported that pending state consumed. After
///   `nextMessage()` returns nil, for every SPI: notified[n] implies held(n)
///   and notifiedTarget[n] is the routed vCPU; offerable(n) implies
///   notified[n].
/// - latch[n] stays set while notified: it is cleared only by ICPENDR or by a
///   report, carrying sequence[n], that the guest acknowledged it. A new edge
///   on a notified SPI advances sequence[n] at once.
///
/// Approximations (as in KVM, state held in a running vCPU's list registers
/// is seen late): ISPENDR/ISACTIVER reads show the last report; active[n] is
/// one bit whichever vCPU reported it; ISACTIVER/ICACTIVER writes change the
/// distributor's view only and do not reach an SPI a vCPU holds (Linux 6.1
/// writes ICACTIVER only at initialisation).
public struct VirtualDistributor {
    /// SPIs implemented: INTIDs 32 ..< 32 + spiCount.
    public let spiCount: Int
    public let topology: VCPUTopology

    // GICD_CTLR bits kept (DS = 1 layout): bit 0 EnableGrp0, bit 1 EnableGrp1.
    private var enableGroup0 = false
    private var enableGroup1 = false

    // Per-INTID bits; only 32 ..< 32 + spiCount are ever set.
    private var enabled = InterruptBits()
    private var latch = InterruptBits()
    private var line = InterruptBits()
    private var active = InterruptBits()
    /// ICFGR: set = edge-triggered; clear = level-sensitive (reset: level).
    private var edge = InterruptBits()
    private var notified = InterruptBits()
    /// SPIs whose delivery must be re-evaluated by `nextMessage()`.
    private var dirty = InterruptBits()
    /// Notified SPIs to tell again with the current sequence: priority or
    /// trigger mode changed, or a new edge (which already advanced the
    /// sequence, at once, so that a report about the older pending state,
    /// crossing it, cannot clear the new one).
    private var resend = InterruptBits()

    // Per-SPI values, indexed by intid - 32.
    private var priority = InlineArray<96, UInt8>(repeating: 0)
    /// IROUTER affinity bits (Aff3 [39:32], Aff2..Aff0 [23:0]); IRM is RAZ/WI.
    private var route = InlineArray<96, UInt64>(repeating: 0)
    private var notifiedTarget = InlineArray<96, UInt8>(repeating: 0)
    private var sequence = InlineArray<96, UInt8>(repeating: 0)

    /// vCPUs owed a `.group1Enable` message.
    private var groupNotices: UInt64 = 0

    /// A distributor with `spiCount` SPIs (clamped to 1...96), all disabled,
    /// inactive, not pending, level-sensitive, priority 0, routed to affinity
    /// 0.0.0.0; CTLR group enables off.
    public init(spiCount: Int = 32, topology: VCPUTopology) {
        self.spiCount = min(max(spiCount, 1), VirtualGIC.maxSPIs)
        self.topology = topology
    }

    /// INTIDs covered by implemented registers: (ITLinesNumber + 1) * 32.
    public var intidLines: Int { (32 + spiCount + 31) / 32 * 32 }

    /// The implemented SPIs, as a set.
    private var implemented: InterruptBits { InterruptBits.range(32, 32 + spiCount) }

    private func isSPI(_ intid: Int) -> Bool { intid >= 32 && intid < 32 + spiCount }

    /// GICD_CTLR.EnableGrp1 (gates every interrupt, SPIs here, SGIs/PPIs in
    /// each vCPU through `.group1Enable` messages).
    public var group1Enabled: Bool { enableGroup1 }

    // MARK: Register values

    public var ctlr: UInt32 {
        // ARE (bit 4) and DS (bit 6) read as one; RWP (bit 31) always 0:
        // every write takes effect at once.
        (enableGroup0 ? 1 : 0) | (enableGroup1 ? 2 : 0) | (1 << 4) | (1 << 6)
    }

    public var typer: UInt32 {
        let itLines = UInt32(intidLines / 32 - 1)          // [4:0]
        let idBits: UInt32 = 9 << 19                        // 10 INTID bits
        let a3v: UInt32 = 1 << 24                           // Aff3 routing supported
        let no1N: UInt32 = 1 << 25                          // no 1-of-N (IRM RAZ/WI)
        let rss: UInt32 = topology.needsRangeSelector ? 1 << 26 : 0
        // SecurityExtn, MBIS, LPIS, DVIS, ESPI, CPUNumber: 0.
        return itLines | idBits | a3v | no1N | rss
    }

    // MARK: Guest access

    /// One trapped access at `offset` (0 ..< 0x10000) of `size` bytes.
    /// Reads answer `.done(value)`; writes `.done(0)`; see the type's policy.
    public mutating func access(offset: Int, size: Int, isWrite: Bool, value: UInt64) -> MMIOResult {
        switch offset {
        case 0x0000:        // GICD_CTLR
            guard size == 4 else { return .refused }
            if isWrite {
                let wasGroup1 = enableGroup1
                enableGroup0 = value & 1 != 0
                enableGroup1 = value & 2 != 0
                if wasGroup1 != enableGroup1 {
                    dirty = dirty | implemented
                    groupNotices = topology.allVCPUs
                }
                return .done(0)
            }
            return .done(UInt64(ctlr))
        case 0x0004:        // GICD_TYPER
            return readOnly(size, isWrite, UInt64(typer))
        case 0x0008:        // GICD_IIDR
            return readOnly(size, isWrite, UInt64(VirtualGIC.iidr))
        case 0x000C:        // GICD_TYPER2: no vPEs, no nASSGI
            return readOnly(size, isWrite, 0)
        case 0x0010:        // GICD_STATUSR: RAZ/WI
            guard size == 4 else { return .refused }
            return .done(0)
        case 0xFFE8:        // GICD_PIDR2
            return readOnly(size, isWrite, UInt64(VirtualGIC.pidr2))
        case 0x0080..<0x0100:
            return bitRegister(.group, offset - 0x0080, size, isWrite, value)
        case 0x0100..<0x0180:
            return bitRegister(.setEnable, offset - 0x0100, size, isWrite, value)
        case 0x0180..<0x0200:
            return bitRegister(.clearEnable, offset - 0x0180, size, isWrite, value)
        case 0x0200..<0x0280:
            return bitRegister(.setPending, offset - 0x0200, size, isWrite, value)
        case 0x0280..<0x0300:
            return bitRegister(.clearPending, offset - 0x0280, size, isWrite, value)
        case 0x0300..<0x0380:
            return bitRegister(.setActive, offset - 0x0300, size, isWrite, value)
        case 0x0380..<0x0400:
            return bitRegister(.clearActive, offset - 0x0380, size, isWrite, value)
        case 0x0D00..<0x0D80:
            return bitRegister(.groupModifier, offset - 0x0D00, size, isWrite, value)
        case 0x0400..<0x0800:
            return priorityRegister(offset - 0x0400, size, isWrite, value)
        case 0x0C00..<0x0D00:
            return configRegister(offset - 0x0C00, size, isWrite, value)
        case 0x6000..<0x8000:
            return routeRegister(offset - 0x6000, size, isWrite, value)
        default:
            return .refused
        }
    }

    private func readOnly(_ size: Int, _ isWrite: Bool, _ v: UInt64) -> MMIOResult {
        guard size == 4, !isWrite else { return .refused }
        return .done(v)
    }

    private enum BitRegister { case group, setEnable, clearEnable, setPending, clearPending, setActive, clearActive, groupModifier }

    /// One-bit-per-INTID registers: 32-bit, aligned; register `index` covers
    /// INTIDs 32*index ..< 32*index + 32.
    private mutating func bitRegister(_ kind: BitRegister, _ rel: Int, _ size: Int, _ isWrite: Bool, _ value: UInt64) -> MMIOResult {
        guard size == 4, isAligned(rel, 4) else { return .refused }
        let index = rel / 4
        guard index * 32 < intidLines else { return .refused }
        let mask = implemented.word(index)      // 0 for index 0: RAZ/WI
        let v = UInt32(truncatingIfNeeded: value) & mask
        if !isWrite {
            switch kind {
            case .group: return .done(UInt64(mask))                  // RAO for SPIs
            case .groupModifier: return .done(0)                     // RAZ
            case .setEnable, .clearEnable: return .done(UInt64(enabled.word(index)))
            case .setPending, .clearPending: return .done(UInt64(pendingBits.word(index)))
            case .setActive, .clearActive: return .done(UInt64(active.word(index)))
            }
        }
        var changed = InterruptBits()
        changed.setWord(index, v)
        switch kind {
        case .group, .groupModifier:
            return .done(0)                                          // WI
        case .setEnable: enabled = enabled | changed
        case .clearEnable: enabled = enabled & ~changed
        case .setPending:
            latch = latch | changed
            var fresh = changed & notified
            while let n = fresh.first { fresh[n] = false; newEdge(n) }
        case .clearPending: latch = latch & ~changed
        case .setActive: active = active | changed
        case .clearActive: active = active & ~changed
        }
        dirty = dirty | changed
        return .done(0)
    }

    /// Pending state as the guest reads it (ISPENDR/ICPENDR).
    private var pendingBits: InterruptBits { latch | (line & ~edge) }

    /// IPRIORITYR: one byte per INTID, byte or word access.
    private mutating func priorityRegister(_ rel: Int, _ size: Int, _ isWrite: Bool, _ value: UInt64) -> MMIOResult {
        guard (size == 1 || size == 4), isAligned(rel, size) else { return .refused }
        guard rel + size <= intidLines else { return .refused }
        var result: UInt64 = 0
        for i in 0..<size {
            let intid = rel + i
            guard isSPI(intid) else { continue }                     // RAZ/WI
            if isWrite {
                let p = byte(value, i) & VirtualGIC.priorityMask
                if priority[intid - 32] != p {
                    priority[intid - 32] = p
                    dirty[intid] = true
                    resend[intid] = resend[intid] || notified[intid]
                }
            } else {
                result |= UInt64(priority[intid - 32]) << UInt64(8 * i)
            }
        }
        return .done(result)
    }

    /// ICFGR: two bits per INTID, 16 per register; bit 2k+1 set = edge.
    /// The even bits are RES0; INTIDs 0..31 are RAZ/WI here.
    private mutating func configRegister(_ rel: Int, _ size: Int, _ isWrite: Bool, _ value: UInt64) -> MMIOResult {
        guard size == 4, isAligned(rel, 4) else { return .refused }
        let first = rel / 4 * 16
        guard first < intidLines else { return .refused }
        var result: UInt64 = 0
        for k in 0..<16 {
            let intid = first + k
            guard isSPI(intid) else { continue }
            if isWrite {
                let e = (value >> UInt64(2 * k + 1)) & 1 == 1
                if edge[intid] != e {
                    edge[intid] = e
                    dirty[intid] = true
                    resend[intid] = resend[intid] || notified[intid]
                }
            } else if edge[intid] {
                result |= 1 << UInt64(2 * k + 1)
            }
        }
        return .done(result)
    }

    /// IROUTER<n> at 0x6000 + 8n for n = 32 ..< intidLines: 64-bit, or a
    /// 32-bit half (low: Aff2..Aff0 and IRM; high: Aff3). IRM is RAZ/WI (no
    /// 1-of-N); bits outside the affinity fields are RES0. Offsets for
    /// INTIDs 0..31 (0x6000..<0x6100) are reserved: refused.
    private mutating func routeRegister(_ rel: Int, _ size: Int, _ isWrite: Bool, _ value: UInt64) -> MMIOResult {
        guard (size == 8 || size == 4), isAligned(rel, size) else { return .refused }
        let intid = rel / 8
        guard intid >= 32 && intid < intidLines else { return .refused }
        guard isSPI(intid) else { return .done(0) }                  // RAZ/WI
        let high = rel % 8 == 4
        let current = route[intid - 32]
        if !isWrite {
            if size == 8 { return .done(current) }
            return .done(high ? current >> 32 : current & 0xFFFF_FFFF)
        }
        var new: UInt64
        if size == 8 {
            new = value
        } else if high {
            new = (current & 0xFFFF_FFFF) | ((value & 0xFFFF_FFFF) << 32)
        } else {
            new = (current & 0xFFFF_FFFF_0000_0000) | (value & 0xFFFF_FFFF)
        }
        new &= VCPUTopology.affinityMask
        if new != current {
            route[intid - 32] = new
            dirty[intid] = true
        }
        return .done(0)
    }

    // MARK: Device inputs

    /// Drives SPI `intid`'s input line (a level-sensitive device such as the
    /// emulated UART, SPI 33). Ignored by an edge-configured SPI except that
    /// a rising edge latches it pending. Returns false for a non-SPI.
    @discardableResult
    public mutating func setLevel(intid: Int, high: Bool) -> Bool {
        guard isSPI(intid) else { return false }
        if line[intid] == high { return true }
        line[intid] = high
        if high && edge[intid] {
            return setPending(intid: intid)
        }
        dirty[intid] = true
        return true
    }

    /// An edge on SPI `intid` (or a software set-pending): latches it pending.
    /// A new edge on an SPI a vCPU already holds is forwarded with a new
    /// sequence, so it is not lost if the guest consumed the old one.
    @discardableResult
    public mutating func setPending(intid: Int) -> Bool {
        guard isSPI(intid) else { return false }
        latch[intid] = true
        if notified[intid] { newEdge(intid) }
        dirty[intid] = true
        return true
    }

    /// A new pending state for an SPI a vCPU already holds: a new sequence
    /// now, and a resend.
    private mutating func newEdge(_ n: Int) {
        sequence[n - 32] &+= 1
        resend[n] = true
    }

    /// Pending state of SPI `intid` as the distributor sees it.
    public func isPending(intid: Int) -> Bool { pendingBits[intid] }
    /// Active state of SPI `intid` as last reported.
    public func isActive(intid: Int) -> Bool { active[intid] }
    public func isEnabled(intid: Int) -> Bool { enabled[intid] }
    public func priority(intid: Int) -> UInt8 { isSPI(intid) ? priority[intid - 32] : 0 }
    /// The vCPU SPI `intid` is routed to (nil: no vCPU has that affinity).
    public func target(intid: Int) -> Int? {
        isSPI(intid) ? topology.vcpu(withAffinity: route[intid - 32]) : nil
    }

    // MARK: Messages

    /// pending(n) && enabled && EnableGrp1: the vCPU holding it may keep it.
    private func held(_ n: Int) -> Bool {
        let pend = latch[n] || (!edge[n] && line[n])
        return pend && enabled[n] && enableGroup1
    }

    /// May be offered to its routed vCPU now: held, routed to a vCPU, and not
    /// a level-sensitive SPI that is active (resampled at deactivation).
    private func offerable(_ n: Int) -> Bool {
        held(n) && !(!edge[n] && active[n]) && target(intid: n) != nil
    }

    private func notice(_ n: Int, to vcpu: Int, pending: Bool) -> DistributorMessage {
        .spi(SPINotice(vcpu: vcpu, intid: n, priority: priority[n - 32], levelSensitive: !edge[n],
                       pending: pending, sequence: sequence[n - 32]))
    }

    /// The next message owed to a vCPU, or nil when every vCPU's view is up to
    /// date. Call after every `access`, `setLevel`, `setPending` or `accept`
    /// until nil, and deliver each message to `message.vcpu`.
    public mutating func nextMessage() -> DistributorMessage? {
        if groupNotices != 0 {
            let v = groupNotices.trailingZeroBitCount
            groupNotices &= groupNotices - 1
            return .group1Enable(vcpu: v, enabled: enableGroup1)
        }
        while let n = dirty.first {
            let target = target(intid: n)
            let told = Int(notifiedTarget[n - 32])
            if notified[n] && (!held(n) || target != told) {
                // Withdraw from the vCPU that holds it; keep n dirty so a
                // moved SPI is then offered to its new target.
                notified[n] = false
                resend[n] = false
                return notice(n, to: told, pending: false)
            }
            if offerable(n), let t = target, !notified[n] {
                sequence[n - 32] &+= 1
                notified[n] = true
                notifiedTarget[n - 32] = UInt8(t)
                resend[n] = false
                dirty[n] = false
                return notice(n, to: t, pending: true)
            }
            dirty[n] = false
            if notified[n] && resend[n] {
                resend[n] = false
                return notice(n, to: told, pending: true)          // current sequence
            }
            resend[n] = false
        }
        return nil
    }

    /// A vCPU's report after its `sync`. The active state is taken as is. A
    /// report that the pending state with the current sequence is gone
    /// (acknowledged by the guest) clears the latch; an older sequence says
    /// nothing about the newer pending state and is ignored for pending.
    public mutating func accept(_ report: SPIReport) {
        let n = report.intid
        guard isSPI(n) else { return }
        active[n] = report.active
        if notified[n] && !report.pending && report.sequence == sequence[n - 32]
            && Int(notifiedTarget[n - 32]) == report.vcpu {
            latch[n] = false
            notified[n] = false
        }
        dirty[n] = true
    }
}
