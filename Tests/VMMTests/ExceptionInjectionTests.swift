import Testing
import VMM

/// ESR values by hand: EC [31:26], IL 25, ISS; for aborts WnR 6, FSC [5:0].
@Suite struct ExceptionInjectionTests {
    static let vbar: UInt64 = 0xFFFF_8000_0801_0800   // 2 KiB aligned
    static let pc: UInt64 = 0xFFFF_8000_0812_3450
    static let va: UInt64 = 0xFFFF_FFBF_FDFF_E018
    /// SCTLR_EL1 with SPAN = 1 (bit 23): PAN is left as it was.
    static let sctlrSPAN: UInt64 = 1 << 23
    /// SCTLR_EL1 with SPAN = 0 (Linux with PAN): PAN set on entry.
    static let sctlrPAN: UInt64 = 0

    func context(_ pstate: UInt64, sctlr: UInt64 = sctlrSPAN) -> GuestExceptionContext {
        GuestExceptionContext(pc: Self.pc, pstate: pstate, vbar: Self.vbar, sctlr: sctlr)
    }

    // PSTATE examples: C flag set (bit 29), IRQs unmasked.
    static let el1h: UInt64 = 0x2000_0005
    static let el1t: UInt64 = 0x2000_0004
    static let el0: UInt64 = 0x2000_0000
    /// New PSTATE: NZCV kept, DAIF (0x3C0) set, M = EL1h (0b0101).
    static let entered: UInt64 = 0x2000_03C5

    @Test func undefinedFromEL1h() {
        let r = ExceptionInjection.undefinedInstruction(context(Self.el1h))
        // EC 0 << 26 | IL 1 << 25 = 0x0200_0000.
        #expect(r == InjectedException(pc: Self.vbar + 0x200, pstate: Self.entered, elr: Self.pc,
                                       spsr: Self.el1h, esr: 0x0200_0000, far: nil))
    }

    @Test func undefinedFromEL1tAndEL0() {
        #expect(ExceptionInjection.undefinedInstruction(context(Self.el1t))?.pc == Self.vbar + 0x000)
        #expect(ExceptionInjection.undefinedInstruction(context(Self.el1t))?.spsr == Self.el1t)
        let r = ExceptionInjection.undefinedInstruction(context(Self.el0))
        #expect(r?.pc == Self.vbar + 0x400)
        #expect(r?.esr == 0x0200_0000)
        #expect(r?.pstate == Self.entered)
    }

    /// Data abort from EL1: EC 0x25 << 26 = 0x9400_0000, IL 0x0200_0000,
    /// WnR 0x40 for a write, DFSC 0x10: write 0x9600_0050, read 0x9600_0010.
    @Test func dataAbortFromEL1() {
        let write = ExceptionInjection.dataAbort(context(Self.el1h), address: Self.va, isWrite: true)
        #expect(write == InjectedException(pc: Self.vbar + 0x200, pstate: Self.entered, elr: Self.pc,
                                           spsr: Self.el1h, esr: 0x9600_0050, far: Self.va))
        let read = ExceptionInjection.dataAbort(context(Self.el1t), address: Self.va, isWrite: false)
        #expect(read?.esr == 0x9600_0010)
        #expect(read?.pc == Self.vbar)
    }

    /// Data abort from EL0: EC 0x24 << 26 = 0x9000_0000: write 0x9200_0050.
    @Test func dataAbortFromEL0() {
        let r = ExceptionInjection.dataAbort(context(Self.el0), address: 0x4000_1000, isWrite: true)
        #expect(r == InjectedException(pc: Self.vbar + 0x400, pstate: Self.entered, elr: Self.pc,
                                       spsr: Self.el0, esr: 0x9200_0050, far: 0x4000_1000))
        #expect(ExceptionInjection.dataAbort(context(Self.el0), address: 0, isWrite: false)?.esr == 0x9200_0010)
    }

    /// Instruction abort: EC 0x21 (EL1) << 26 = 0x8400_0000 -> 0x8600_0010;
    /// EC 0x20 (EL0) << 26 = 0x8000_0000 -> 0x8200_0010.
    @Test func instructionAborts() {
        let el1 = ExceptionInjection.instructionAbort(context(Self.el1h), address: Self.pc)
        #expect(el1 == InjectedException(pc: Self.vbar + 0x200, pstate: Self.entered, elr: Self.pc,
                                         spsr: Self.el1h, esr: 0x8600_0010, far: Self.pc))
        let el0 = ExceptionInjection.instructionAbort(context(Self.el0), address: 0x40_0000)
        #expect(el0?.esr == 0x8200_0010)
        #expect(el0?.pc == Self.vbar + 0x400)
        #expect(el0?.far == 0x40_0000)
    }

    @Test func refusesAArch32AndImpossibleModes() {
        // AArch32 usr (0x10), svc (0x13), hyp (0x1A); EL2t/EL2h; EL3h; reserved 0b0001.
        for pstate: UInt64 in [0x10, 0x13, 0x1A, 0x1F, 0x8, 0x9, 0xD, 0x1] {
            #expect(ExceptionInjection.undefinedInstruction(context(pstate)) == nil, "pstate \(pstate)")
            #expect(ExceptionInjection.dataAbort(context(pstate), address: 0, isWrite: false) == nil)
            #expect(ExceptionInjection.instructionAbort(context(pstate), address: 0) == nil)
        }
    }

    @Test func panFollowsSPAN() {
        // SPAN = 0: PAN set on entry.
        #expect(ExceptionInjection.undefinedInstruction(context(Self.el1h, sctlr: Self.sctlrPAN))?.pstate
                == Self.entered | 1 << 22)
        // SPAN = 1: PAN kept (set stays set, clear stays clear).
        #expect(ExceptionInjection.undefinedInstruction(context(Self.el1h | 1 << 22))?.pstate
                == Self.entered | 1 << 22)
        #expect(ExceptionInjection.undefinedInstruction(context(Self.el1h))?.pstate == Self.entered)
    }

    @Test func ssbsFollowsDSSBS() {
        let dssbs: UInt64 = 1 << 44
        #expect(ExceptionInjection.undefinedInstruction(context(Self.el1h, sctlr: Self.sctlrSPAN | dssbs))?.pstate
                == Self.entered | 1 << 12)
        // SSBS set before, DSSBS 0: cleared.
        #expect(ExceptionInjection.undefinedInstruction(context(Self.el1h | 1 << 12))?.pstate == Self.entered)
    }

    /// SS (21), IL (20), UAO (23), BTYPE (11:10) cleared; DIT (24) kept;
    /// the saved SPSR keeps everything.
    @Test func clearedAndKeptBits() {
        let busy: UInt64 = 0xF000_0000 | 1 << 24 | 1 << 23 | 1 << 21 | 1 << 20 | 0xC00 | 0x3C0 | 0x5
        let r = ExceptionInjection.undefinedInstruction(context(busy))
        #expect(r?.pstate == 0xF000_0000 | 1 << 24 | 0x3C5)
        #expect(r?.spsr == busy)
    }

    @Test func vbarLowBitsIgnored() {
        let c = GuestExceptionContext(pc: 0, pstate: Self.el1h, vbar: 0x4000_07FF, sctlr: Self.sctlrSPAN)
        #expect(ExceptionInjection.undefinedInstruction(c)?.pc == 0x4000_0200)
    }
}
