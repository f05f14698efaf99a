/// Injecting a synchronous exception into the guest's EL1: pure arithmetic
/// over the guest's registers, after the Arm ARM's `AArch64.TakeException`.
///
/// The kernel passes the guest's state at the exit (`GuestExceptionContext`),
/// gets back the registers to write (`InjectedException`), writes ELR_EL1,
/// SPSR_EL1, ESR_EL1 (and FAR_EL1 for aborts), then sets ELR_EL2 = `pc` and
/// SPSR_EL2 = `pstate` before the ERET into the guest. Every injection is
/// taken to EL1 (the guest's kernel), from EL1 or EL0.
///
/// The new PSTATE, exactly as the architecture sets it on an exception taken
/// to AArch64 EL1 (the cases that depend on an optional feature use a control
/// bit that reads as "feature absent" when the feature is absent, so they are
/// right on any CPU):
/// - M = EL1h (0b0101), nRW = 0; D, A, I, F set.
/// - SS (software step) and IL cleared; BTYPE cleared (FEAT_BTI).
/// - PAN set when SCTLR_EL1.SPAN (bit 23) is 0 (FEAT_PAN; SPAN is RES1
///   without it), otherwise kept.
/// - UAO cleared (FEAT_UAO; RES0 without it).
/// - SSBS = SCTLR_EL1.DSSBS (bit 44; FEAT_SSBS, RES0 without it).
/// - NZCV, DIT, TCO and ALLINT kept. Not modelled: TCO set to 1 (FEAT_MTE,
///   which QEMU virt leaves off unless `mte=on`) and ALLINT from
///   SCTLR_EL1.SPINTMASK (FEAT_NMI); the guest this hosts has neither.
/// - Every other bit (including bits above 31) cleared.
public enum ExceptionInjection {
    /// Vector offsets from VBAR_EL1 for a synchronous exception.
    public static var fromCurrentELWithSP0: UInt64 { 0x000 }
    public static var fromCurrentELWithSPx: UInt64 { 0x200 }
    public static var fromLowerELAArch64: UInt64 { 0x400 }

    /// ESR exception classes used here.
    public static var ecUnknown: UInt64 { 0x00 }
    public static var ecInstructionAbortLowerEL: UInt64 { 0x20 }
    public static var ecInstructionAbortSameEL: UInt64 { 0x21 }
    public static var ecDataAbortLowerEL: UInt64 { 0x24 }
    public static var ecDataAbortSameEL: UInt64 { 0x25 }
    /// Fault status: synchronous external abort, not on a table walk.
    public static var synchronousExternalAbort: UInt64 { 0x10 }
    /// ESR.IL: the trapped instruction was 32 bits (always, in A64).
    public static var instructionLength32: UInt64 { 1 << 25 }

    /// PSTATE / SPSR bits.
    enum PSR {
        static var nzcv: UInt64 { 0xF000_0000 }
        static var tco: UInt64 { 1 << 25 }
        static var dit: UInt64 { 1 << 24 }
        static var pan: UInt64 { 1 << 22 }
        static var allint: UInt64 { 1 << 13 }
        static var ssbs: UInt64 { 1 << 12 }
        static var daif: UInt64 { 0xF << 6 }
        static var el1h: UInt64 { 0b0101 }
    }

    /// The guest's exception level and stack pointer at the exit, from
    /// SPSR_EL2.M[4:0]; nil for AArch32 (M[4] = 1) and for modes a guest
    /// cannot be in (EL2, EL3, reserved encodings).
    public enum Origin: Equatable, Sendable {
        case el0
        case el1t
        case el1h

        public init?(pstate: UInt64) {
            switch pstate & 0x1F {
            case 0b00000: self = .el0
            case 0b00100: self = .el1t
            case 0b00101: self = .el1h
            default: return nil
            }
        }

        /// Offset of the synchronous vector from VBAR_EL1.
        public var vectorOffset: UInt64 {
            switch self {
            case .el1t: return ExceptionInjection.fromCurrentELWithSP0
            case .el1h: return ExceptionInjection.fromCurrentELWithSPx
            case .el0: return ExceptionInjection.fromLowerELAArch64
            }
        }

        var isEL0: Bool { self == .el0 }
    }

    /// An UNDEFINED instruction at the guest's PC (EC 0, IL 1, ISS 0): what the
    /// guest sees for an access the kernel will not emulate (an unknown
    /// trapped system register). ELR_EL1 points at the instruction.
    public static func undefinedInstruction(_ context: GuestExceptionContext) -> InjectedException? {
        take(context, esr: ecUnknown << 26 | instructionLength32, far: nil)
    }

    /// A synchronous external data abort at `address` (the guest VA, FAR_EL2
    /// of the exit): EC 0x25 from EL1, 0x24 from EL0; ISV 0; WnR; DFSC 0x10.
    /// ELR_EL1 points at the faulting instruction.
    public static func dataAbort(_ context: GuestExceptionContext, address: UInt64, isWrite: Bool) -> InjectedException? {
        guard let origin = Origin(pstate: context.pstate) else { return nil }
        let ec = origin.isEL0 ? ecDataAbortLowerEL : ecDataAbortSameEL
        let wnr: UInt64 = isWrite ? 1 << 6 : 0
        return take(context, esr: ec << 26 | instructionLength32 | wnr | synchronousExternalAbort, far: address)
    }

    /// A synchronous external instruction abort at `address` (the guest VA
    /// of the fetch, normally the PC): EC 0x21 from EL1, 0x20 from EL0;
    /// IFSC 0x10.
    public static func instructionAbort(_ context: GuestExceptionContext, address: UInt64) -> InjectedException? {
        guard let origin = Origin(pstate: context.pstate) else { return nil }
        let ec = origin.isEL0 ? ecInstructionAbortLowerEL : ecInstructionAbortSameEL
        return take(context, esr: ec << 26 | instructionLength32 | synchronousExternalAbort, far: address)
    }

    /// PSTATE after taking an exception to EL1h (see the type's comment).
    public static func pstateOnEntry(from pstate: UInt64, sctlr: UInt64) -> UInt64 {
        var new = pstate & (PSR.nzcv | PSR.dit | PSR.tco | PSR.pan | PSR.allint)
        new |= PSR.el1h | PSR.daif
        if sctlr & (1 << 23) == 0 { new |= PSR.pan }   // SPAN == 0
        if sctlr & (1 << 44) != 0 { new |= PSR.ssbs }  // DSSBS
        return new
    }

    static func take(_ context: GuestExceptionContext, esr: UInt64, far: UInt64?) -> InjectedException? {
        guard let origin = Origin(pstate: context.pstate) else { return nil }
        // VBAR_EL1[10:0] are RES0: the table is 2 KiB aligned.
        return InjectedException(
            pc: (context.vbar & ~0x7FF) &+ origin.vectorOffset,
            pstate: pstateOnEntry(from: context.pstate, sctlr: context.sctlr),
            elr: context.pc,
            spsr: context.pstate,
            esr: esr,
            far: far)
    }
}

/// The guest's registers an injection depends on, read at the exit.
public struct GuestExceptionContext: Equatable, Sendable {
    /// ELR_EL2: the guest's PC (the instruction that trapped, for aborts and
    /// trapped system registers).
    public var pc: UInt64
    /// SPSR_EL2: the guest's PSTATE.
    public var pstate: UInt64
    /// VBAR_EL1.
    public var vbar: UInt64
    /// SCTLR_EL1 (for SPAN and DSSBS).
    public var sctlr: UInt64

    public init(pc: UInt64, pstate: UInt64, vbar: UInt64, sctlr: UInt64) {
        self.pc = pc
        self.pstate = pstate
        self.vbar = vbar
        self.sctlr = sctlr
    }
}

/// The registers the kernel writes to deliver an injected exception.
public struct InjectedException: Equatable, Sendable {
    /// New ELR_EL2: the vector entry the guest resumes at.
    public var pc: UInt64
    /// New SPSR_EL2: the guest's PSTATE in its exception handler.
    public var pstate: UInt64
    /// ELR_EL1: where the guest's handler returns to.
    public var elr: UInt64
    /// SPSR_EL1: the guest's PSTATE before the exception.
    public var spsr: UInt64
    /// ESR_EL1.
    public var esr: UInt64
    /// FAR_EL1 for aborts; nil means leave FAR_EL1 alone (it is UNKNOWN for
    /// an UNDEFINED exception).
    public var far: UInt64?

    public init(pc: UInt64, pstate: UInt64, elr: UInt64, spsr: UInt64, esr: UInt64, far: UInt64?) {
        self.pc = pc
        self.pstate = pstate
        self.elr = elr
        self.spsr = spsr
        self.esr = esr
        self.far = far
    }
}
