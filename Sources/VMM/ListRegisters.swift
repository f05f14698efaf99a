/// List registers (ICH_LR<n>_EL2): how virtual interrupts reach the guest.
///
/// KVM's model: the per-vCPU state (`VirtualRedistributor`) is the truth;
/// the list registers are a cache of it, rebuilt before every entry (`flush`)
/// and folded back after every exit (`sync`). The kernel only copies values:
///
///     exit:  if lrs.used > 0 { lrs[i] = ICH_LR<i>_EL2 for i < lrs.used; rd.sync(lrs) }
///            then drain rd.nextReport() to the distributor, apply messages
///     entry: let r = rd.flush(into: &lrs)
///            ICH_LR<i>_EL2 = lrs[i] for i < lrs.count (unused ones are 0)
///            ICH_HCR_EL2 = En | (r.noPendingMaintenance ? NPIE : 0)
///
/// Never UIE: with one list register in use it fires forever.

/// One ICH_LR<n>_EL2 value, decoded.
///
/// Layout: vINTID [31:0]; pINTID [44:32] when HW = 1, else bit 41 is EOI
/// (maintenance interrupt on deactivation) and [44:42], [40:32] are RES0;
/// Priority [55:48]; Group [60]; HW [61]; State [63:62].
/// Invariant: `init(raw:)` then `raw` returns the same value for every value
/// with RES0 bits clear.
public struct ListRegister: Equatable, Sendable {
    public enum State: UInt8, Sendable {
        case invalid = 0, pending = 1, active = 2, pendingAndActive = 3

        public var isPending: Bool { rawValue & 1 != 0 }
        public var isActive: Bool { rawValue & 2 != 0 }

        public init(pending: Bool, active: Bool) {
            self = State(rawValue: (pending ? 1 : 0) | (active ? 2 : 0)) ?? .invalid
        }
    }

    public var virtualID: UInt32
    /// HW = 1 with this physical INTID when non-nil.
    public var physicalID: UInt16?
    /// EOI maintenance (only meaningful, and only encoded, when HW = 0).
    public var eoiMaintenance: Bool
    public var priority: UInt8
    /// Group 1. Always true for what `flush` builds: Group 0 delivers nothing
    /// to Linux.
    public var group1: Bool
    public var state: State

    public init(virtualID: UInt32, priority: UInt8, state: State,
                physicalID: UInt16? = nil, eoiMaintenance: Bool = false) {
        self.virtualID = virtualID
        self.physicalID = physicalID
        self.eoiMaintenance = physicalID == nil && eoiMaintenance
        self.priority = priority
        self.group1 = true
        self.state = state
    }

    public init(raw: UInt64) {
        virtualID = UInt32(truncatingIfNeeded: raw)
        let hw = (raw >> 61) & 1 == 1
        physicalID = hw ? UInt16((raw >> 32) & 0x1FFF) : nil
        eoiMaintenance = !hw && (raw >> 41) & 1 == 1
        priority = UInt8(truncatingIfNeeded: raw >> 48)
        group1 = (raw >> 60) & 1 == 1
        state = State(rawValue: UInt8(raw >> 62)) ?? .invalid
    }

    public var raw: UInt64 {
        var v = UInt64(virtualID)
        if let p = physicalID {
            v |= (UInt64(p) & 0x1FFF) << 32 | 1 << 61
        } else if eoiMaintenance {
            v |= 1 << 41
        }
        v |= UInt64(priority) << 48
        if group1 { v |= 1 << 60 }
        v |= UInt64(state.rawValue) << 62
        return v
    }
}

/// The values of a vCPU's list registers, as the kernel copies them to and
/// from ICH_LR<n>_EL2.
///
/// Invariant: 1 <= count <= 16; entries at or past `used` are 0 after a
/// `flush`; `sync` reads entries below `used` only.
public struct ListRegisterFile {
    /// List registers implemented (ICH_VTR_EL2.ListRegs + 1; 4 on QEMU -cpu max).
    public let count: Int
    /// How many the last `flush` filled (the kernel reads these back on exit).
    public internal(set) var used: Int = 0
    private var values = InlineArray<16, UInt64>(repeating: 0)

    public init(count: Int) {
        self.count = min(max(count, 1), VirtualGIC.maxListRegisters)
    }

    /// Raw ICH_LR<index>_EL2 value (index < count).
    public subscript(index: Int) -> UInt64 {
        get { index >= 0 && index < count ? values[index] : 0 }
        set { if index >= 0 && index < count { values[index] = newValue } }
    }
}

/// What `flush` tells the kernel beyond the list-register values.
public struct FlushResult: Equatable, Sendable {
    /// List registers filled (0 ..< used).
    public var used: Int
    /// Deliverable interrupts did not fit: some wait in the model.
    public var waiting: Bool
    /// Set ICH_HCR_EL2.NPIE: a maintenance interrupt once the guest has taken
    /// every pending list register, so the kernel exits and refills. Only
    /// asked when some list register is pending (otherwise NPIE would fire at
    /// once and forever); when all are active, `flush` sets EOI maintenance
    /// on them instead, so a deactivation exits.
    public var noPendingMaintenance: Bool
}

extension VirtualRedistributor {
    /// Folds the list registers the last `flush` filled back into the model
    /// (after an exit, before anything else touches this vCPU's interrupts):
    /// active = the LR's active bit; a pending LR puts the pending state back
    /// in the latch (the guest has not taken it). An LR that went invalid
    /// leaves the latch clear: a level-sensitive PPI whose line is still high
    /// is pending again at once (resampling); a level-sensitive SPI's report
    /// lets the distributor resample its line. SPIs whose state changed are
    /// queued for `nextReport()`.
    public mutating func sync(_ file: ListRegisterFile) {
        for i in 0..<min(file.used, file.count) {
            let lr = ListRegister(raw: file[i])
            let n = Int(lr.virtualID)
            guard n < VirtualGIC.intidLimit else { continue }
            active[n] = lr.state.isActive
            if latchMoves(n) {
                // Edge (or HW-linked): the LR held the only copy of the latch.
                if lr.state.isPending { latch[n] = true }
            } else if lr.state == .invalid {
                // Level: acknowledged and deactivated clears a soft pending
                // state (ISPENDR, or "pending" from the distributor); the line
                // decides from here: still high means pending again.
                latch[n] = false
            }
        }
        // Snapshot the SPIs whose (pending, active) differ from what the
        // distributor believes: they are reported with this state.
        let spis = InterruptBits.range(32, VirtualGIC.intidLimit)
        let changed = ((latch ^ reportedPending) | (active ^ reportedActive)) & spis
        reportDue = reportDue | changed
        reportPending = (reportPending & ~changed) | (latch & changed)
        reportActive = (reportActive & ~changed) | (active & changed)
        reportedPending = (reportedPending & ~changed) | (latch & changed)
        reportedActive = (reportedActive & ~changed) | (active & changed)
    }

    /// Edge-triggered and HW-linked interrupts keep their pending state in
    /// the latch, which moves into the list register at `flush` and back at
    /// `sync` if the guest has not taken it. A level-sensitive one's latch
    /// stays put while in a list register and is cleared when the list
    /// register comes back invalid (KVM's rule).
    private func latchMoves(_ n: Int) -> Bool { edge[n] || (n < 32 && hardware[n]) }

    /// Whether INTID n may be offered as pending (enabled, group enabled;
    /// SPIs are gated by the distributor before it notifies).
    private func mayDeliver(_ n: Int) -> Bool {
        n >= 32 || (enabled[n] && group1Enabled)
    }

    /// Fills `file` before an entry: every active interrupt first (the guest
    /// must be able to deactivate it), then the pending ones, each group by
    /// priority (lower value first), ties by lower INTID; as many as fit.
    /// A pending state placed in a list register leaves the latch (see
    /// `sync`). Level-sensitive non-HW interrupts ask for EOI maintenance and
    /// are never given pending+active (KVM's rule: their pending state is
    /// resampled when the guest deactivates them); HW-linked ones are not
    /// given pending+active either (the physical interrupt cannot re-fire
    /// while active).
    public mutating func flush(into file: inout ListRegisterFile) -> FlushResult {
        let level = ~edge
        let pending = (latch | (line & level))
        var deliverable = InterruptBits()
        var candidates = active
        var p = pending
        while let n = p.first {
            p[n] = false
            if mayDeliver(n) { deliverable[n] = true; candidates[n] = true }
        }
        var used = 0
        var anyPending = false
        var chosen = InterruptBits()
        while used < file.count {
            // Best remaining candidate: active before pending, then priority, then INTID.
            var best = -1
            var rest = candidates & ~chosen
            while let n = rest.first {
                rest[n] = false
                if best < 0 { best = n; continue }
                if active[n] != active[best] ? active[n] : priority[n] < priority[best] { best = n }
            }
            if best < 0 { break }
            let n = best
            chosen[n] = true
            let hw = n < 32 && hardware[n]
            let isLevel = level[n]
            let withholdPending = active[n] && (hw || isLevel)
            let givePending = deliverable[n] && !withholdPending
            if givePending {
                anyPending = true
                if latchMoves(n) { latch[n] = false }
            }
            let lr = ListRegister(virtualID: UInt32(n), priority: priority[n],
                                  state: .init(pending: givePending, active: active[n]),
                                  physicalID: hw ? physicalID[n] : nil,
                                  eoiMaintenance: isLevel)
            file[used] = lr.raw
            used += 1
        }
        let waiting = !(candidates & ~chosen).isEmpty
        if waiting && !anyPending {
            // Every list register is active: ask to hear of each deactivation.
            for i in 0..<used {
                var lr = ListRegister(raw: file[i])
                if lr.physicalID == nil { lr.eoiMaintenance = true; file[i] = lr.raw }
            }
        }
        for i in used..<file.count { file[i] = 0 }
        file.used = used
        return FlushResult(used: used, waiting: waiting, noPendingMaintenance: waiting && anyPending)
    }
}
