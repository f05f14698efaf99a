import Testing
import VMM

/// Syndromes written by hand from the Arm ARM's ESR_EL2 layout:
/// EC [31:26], IL 25, then for data aborts ISV 24, SAS [23:22], SSE 21,
/// SRT [20:16], SF 15, AR 14, S1PTW 7, WnR 6, DFSC [5:0].
@Suite struct ExitDecoderTests {
    /// The UART's DR page: IPA 0x0900_0000, so HPFAR_EL2.FIPA (IPA[51:12] in
    /// bits [43:4]) = 0x9000 << 4 = 0x9_0000.
    static let uartHPFAR: UInt64 = 0x9_0000
    /// A guest VA whose page offset is 0x000 (Linux maps the UART anywhere).
    static let uartVA: UInt64 = 0xFFFF_FFBF_FDFF_E000

    /// `str w1, [x0]` with x0 pointing at the UART's DR (stage-2 translation
    /// fault at level 1, DFSC 0b000101, since stage 2 maps nothing there):
    ///   EC    0x24 (data abort, lower EL) << 26 = 0x9000_0000
    ///   IL    1 (32-bit instruction)      << 25 = 0x0200_0000
    ///   ISV   1                           << 24 = 0x0100_0000
    ///   SAS   0b10 (word)                 << 22 = 0x0080_0000
    ///   SSE   0, SRT 1 (w1)               << 16 = 0x0001_0000
    ///   SF    0 (W register), AR 0, S1PTW 0
    ///   WnR   1 (write)                   << 6  = 0x0000_0040
    ///   DFSC  0b000101                          = 0x0000_0005
    ///   ESR = 0x9381_0045
    @Test func strW1ToUART() {
        let exit = ExitDecoder.decode(esr: 0x9381_0045, far: Self.uartVA, hpfar: Self.uartHPFAR)
        #expect(exit == .mmio(MMIOAccess(ipa: 0x0900_0000, size: 4, isWrite: true, register: 1,
                                         signExtend: false, sixtyFourBit: false)))
    }

    /// `ldrh w3, [x2, #0x18]` (Linux's pl011 reading FR): SAS 0b01 (0x0040_0000),
    /// SRT 3 (0x0003_0000), WnR 0: 0x9300_0000 | 0x0040_0000 | 0x0003_0000 | 0x05.
    @Test func ldrhW3FromFR() {
        let exit = ExitDecoder.decode(esr: 0x9343_0005, far: Self.uartVA | 0x18, hpfar: Self.uartHPFAR)
        #expect(exit == .mmio(MMIOAccess(ipa: 0x0900_0018, size: 2, isWrite: false, register: 3,
                                         signExtend: false, sixtyFourBit: false)))
    }

    /// `ldrsb x4, [x0]`: SAS 0, SSE 1 (0x0020_0000), SRT 4 (0x0004_0000),
    /// SF 1 (0x8000): 0x9300_0000 | 0x0020_0000 | 0x0004_0000 | 0x8000 | 0x05.
    @Test func ldrsbX4() {
        let exit = ExitDecoder.decode(esr: 0x9324_8005, far: Self.uartVA, hpfar: Self.uartHPFAR)
        #expect(exit == .mmio(MMIOAccess(ipa: 0x0900_0000, size: 1, isWrite: false, register: 4,
                                         signExtend: true, sixtyFourBit: true)))
    }

    /// `ldr x5, [x0]`: SAS 0b11 (0x00C0_0000), SRT 5, SF 1: 0x93C5_8005.
    @Test func ldrX5DoubleWord() {
        let exit = ExitDecoder.decode(esr: 0x93C5_8005, far: 0x1008, hpfar: 0x8_0000)
        #expect(exit == .mmio(MMIOAccess(ipa: 0x0800_0008, size: 8, isWrite: false, register: 5,
                                         signExtend: false, sixtyFourBit: true)))
    }

    /// `str wzr, [x0]`: SRT 31 (0x001F_0000) is the zero register.
    @Test func storeOfZeroRegister() {
        let exit = ExitDecoder.decode(esr: 0x939F_0045, far: 0, hpfar: Self.uartHPFAR)
        guard case .mmio(let access) = exit else { Issue.record("not mmio: \(exit)"); return }
        #expect(access.register == 31 && access.isWrite && access.size == 4)
    }

    /// `stp x1, x2, [x0]` to a device: no syndrome (ISV 0), WnR 1:
    /// 0x9000_0000 | 0x0200_0000 | 0x40 | 0x05 = 0x9200_0045.
    @Test func storePairHasNoSyndrome() {
        let exit = ExitDecoder.decode(esr: 0x9200_0045, far: Self.uartVA | 0x10, hpfar: Self.uartHPFAR)
        #expect(exit == .dataAbortNoSyndrome(ipa: 0x0900_0010, isWrite: true))
        let load = ExitDecoder.decode(esr: 0x9200_0005, far: 0, hpfar: Self.uartHPFAR)
        #expect(load == .dataAbortNoSyndrome(ipa: 0x0900_0000, isWrite: false))
    }

    /// A stage-2 fault on the guest's own stage-1 table walk (S1PTW, bit 7) is
    /// never a device access, even with ISV set.
    @Test func tableWalkFaultIsNotMMIO() {
        let exit = ExitDecoder.decode(esr: 0x9381_0085, far: 0x123, hpfar: 0x9_0000)
        #expect(exit == .dataAbortNoSyndrome(ipa: 0x0900_0123, isWrite: false))
    }

    /// HPFAR bits outside FIPA [43:4] (NS at 63, RES0 elsewhere) do not leak
    /// into the IPA; FAR contributes only its low 12 bits.
    @Test func ipaUsesOnlyFIPAAndPageOffset() {
        let hpfar: UInt64 = (1 << 63) | (0xF << 44) | (0xFF_FFFF_FFFF << 4) | 0xF
        #expect(ExitDecoder.faultingIPA(far: UInt64.max, hpfar: hpfar) == 0x000F_FFFF_FFFF_FFFF)
        #expect(ExitDecoder.faultingIPA(far: 0xFFFF_0000_ABCD_E7F8, hpfar: 0x80A0 << 4) == 0x080A_07F8)
    }

    /// Instruction abort from the guest: EC 0x20 << 26 = 0x8000_0000, IL,
    /// IFSC 0b000110 (translation fault, level 2): 0x8200_0006.
    @Test func instructionAbort() {
        let exit = ExitDecoder.decode(esr: 0x8200_0006, far: 0xFFFF_0000_0000_0ABC, hpfar: 0x1234_5670)
        #expect(exit == .instructionAbort(ipa: 0x12_3456_7ABC))
    }

    /// HVC: EC 0x16 << 26 = 0x5800_0000, IL: 0x5A00_0000 | imm16.
    /// SMC: EC 0x17 << 26 = 0x5C00_0000, IL: 0x5E00_0000 | imm16.
    @Test func hypervisorAndMonitorCalls() {
        #expect(ExitDecoder.decode(esr: 0x5A00_0000, far: 0, hpfar: 0) == .hypervisorCall(immediate: 0))
        #expect(ExitDecoder.decode(esr: 0x5A00_1234, far: 0, hpfar: 0) == .hypervisorCall(immediate: 0x1234))
        #expect(ExitDecoder.decode(esr: 0x5E00_FFFF, far: 0, hpfar: 0) == .secureMonitorCall(immediate: 0xFFFF))
        #expect(ExitDecoder.decode(esr: 0x5E00_0000, far: 0, hpfar: 0) == .secureMonitorCall(immediate: 0))
    }

    /// `msr ICC_SGI1R_EL1, x1` (op0 3, op1 0, CRn 12, CRm 11, op2 5), a write:
    ///   Op0 3 << 20 = 0x30_0000, Op2 5 << 17 = 0xA_0000, Op1 0,
    ///   CRn 12 << 10 = 0x3000, Rt 1 << 5 = 0x20, CRm 11 << 1 = 0x16, Dir 0
    ///   ISS = 0x3A_3036; EC 0x18 << 26 = 0x6000_0000, IL: ESR = 0x623A_3036.
    @Test func msrSGI1R() {
        let exit = ExitDecoder.decode(esr: 0x623A_3036, far: 0, hpfar: 0)
        #expect(exit == .systemRegister(SystemRegisterAccess(op0: 3, op1: 0, crn: 12, crm: 11, op2: 5,
                                                             register: 1, isRead: false)))
    }

    /// `mrs x30, CNTV_CTL_EL0` (op0 3, op1 3, CRn 14, CRm 3, op2 1), a read:
    ///   0x30_0000 | 1 << 17 (0x2_0000) | 3 << 14 (0xC000) | 14 << 10 (0x3800)
    ///   | 30 << 5 (0x3C0) | 3 << 1 (0x6) | 1 = 0x32_FBC7; ESR = 0x6232_FBC7.
    @Test func mrsCNTVCTL() {
        let exit = ExitDecoder.decode(esr: 0x6232_FBC7, far: 0, hpfar: 0)
        #expect(exit == .systemRegister(SystemRegisterAccess(op0: 3, op1: 3, crn: 14, crm: 3, op2: 1,
                                                             register: 30, isRead: true)))
    }

    /// Every field at its maximum, to catch a field read from the wrong bits:
    /// op0 3, op2 7, op1 7, CRn 15, Rt 31, CRm 15, read: ISS 0x3F_FFFF.
    @Test func systemRegisterFieldsAtMaximum() {
        let exit = ExitDecoder.decode(esr: 0x623F_FFFF, far: 0, hpfar: 0)
        #expect(exit == .systemRegister(SystemRegisterAccess(op0: 3, op1: 7, crn: 15, crm: 15, op2: 7,
                                                             register: 31, isRead: true)))
    }

    /// WFI: EC 0x01 << 26 = 0x0400_0000, IL: 0x0600_0000; WFE sets TI[0].
    @Test func waitForInterruptAndEvent() {
        #expect(ExitDecoder.decode(esr: 0x0600_0000, far: 0, hpfar: 0) == .waitForInterrupt(isWFE: false))
        #expect(ExitDecoder.decode(esr: 0x0600_0001, far: 0, hpfar: 0) == .waitForInterrupt(isWFE: true))
    }

    @Test func otherClasses() {
        // FP/SIMD access trap (EC 0x07), SVE (0x19), data abort from the same
        // EL (0x25: not a guest exit), HVC from AArch32 (0x12), BRK (0x3C).
        for ec: UInt64 in [0x07, 0x19, 0x25, 0x12, 0x3C, 0x00] {
            #expect(ExitDecoder.decode(esr: ec << 26 | 1 << 25, far: 0, hpfar: 0) == .other(exceptionClass: UInt8(ec)))
        }
    }

    // MARK: MMIOAccess helpers

    func access(size: Int, signExtend: Bool, sixtyFourBit: Bool, ipa: UInt64 = 0) -> MMIOAccess {
        MMIOAccess(ipa: ipa, size: size, isWrite: false, register: 0, signExtend: signExtend, sixtyFourBit: sixtyFourBit)
    }

    @Test func zeroExtendingLoads() {
        // ldrb w0 / ldrh w0 / ldr w0 / ldr x0: truncate, no extension.
        #expect(access(size: 1, signExtend: false, sixtyFourBit: false).loadedRegisterValue(0xFFFF_FF80) == 0x80)
        #expect(access(size: 2, signExtend: false, sixtyFourBit: false).loadedRegisterValue(0x1_8001) == 0x8001)
        #expect(access(size: 4, signExtend: false, sixtyFourBit: false).loadedRegisterValue(0xDEAD_BEEF_8000_0001) == 0x8000_0001)
        #expect(access(size: 8, signExtend: false, sixtyFourBit: true).loadedRegisterValue(0xDEAD_BEEF_8000_0001) == 0xDEAD_BEEF_8000_0001)
    }

    @Test func signExtendingLoads() {
        // ldrsb w0: to 32 bits, upper half zero.
        #expect(access(size: 1, signExtend: true, sixtyFourBit: false).loadedRegisterValue(0x80) == 0xFFFF_FF80)
        // ldrsb x0: to 64 bits.
        #expect(access(size: 1, signExtend: true, sixtyFourBit: true).loadedRegisterValue(0x80) == 0xFFFF_FFFF_FFFF_FF80)
        // ldrsh w0 / x0.
        #expect(access(size: 2, signExtend: true, sixtyFourBit: false).loadedRegisterValue(0x8001) == 0xFFFF_8001)
        #expect(access(size: 2, signExtend: true, sixtyFourBit: true).loadedRegisterValue(0x8001) == 0xFFFF_FFFF_FFFF_8001)
        // ldrsw x0.
        #expect(access(size: 4, signExtend: true, sixtyFourBit: true).loadedRegisterValue(0x8000_0000) == 0xFFFF_FFFF_8000_0000)
        // Positive values are unchanged; bits above the size are ignored
        // before extending (0x17F has bit 7 clear in its low byte).
        #expect(access(size: 1, signExtend: true, sixtyFourBit: true).loadedRegisterValue(0x7F) == 0x7F)
        #expect(access(size: 1, signExtend: true, sixtyFourBit: true).loadedRegisterValue(0x17F) == 0x7F)
        #expect(access(size: 2, signExtend: true, sixtyFourBit: true).loadedRegisterValue(0xFFFF_7FFF) == 0x7FFF)
    }

    @Test func storedValueTruncates() {
        let value: UInt64 = 0x1122_3344_5566_7788
        #expect(access(size: 1, signExtend: false, sixtyFourBit: false).storedValue(value) == 0x88)
        #expect(access(size: 2, signExtend: false, sixtyFourBit: false).storedValue(value) == 0x7788)
        #expect(access(size: 4, signExtend: false, sixtyFourBit: false).storedValue(value) == 0x5566_7788)
        #expect(access(size: 8, signExtend: false, sixtyFourBit: true).storedValue(value) == value)
    }

    @Test func alignment() {
        #expect(access(size: 4, signExtend: false, sixtyFourBit: false, ipa: 0x0900_0018).isAligned)
        #expect(!access(size: 4, signExtend: false, sixtyFourBit: false, ipa: 0x0900_0002).isAligned)
        #expect(access(size: 2, signExtend: false, sixtyFourBit: false, ipa: 0x0900_0002).isAligned)
        #expect(!access(size: 2, signExtend: false, sixtyFourBit: false, ipa: 0x0900_0001).isAligned)
        #expect(access(size: 1, signExtend: false, sixtyFourBit: false, ipa: 0x0900_0003).isAligned)
        #expect(!access(size: 8, signExtend: false, sixtyFourBit: true, ipa: 0x0900_0004).isAligned)
        #expect(access(size: 8, signExtend: false, sixtyFourBit: true, ipa: 0x0900_0008).isAligned)
    }
}
