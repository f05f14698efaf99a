/// Turns the three syndrome registers of a VM exit into a `GuestExit`.
///
/// Field layouts are those of ESR_EL2 in the Arm ARM (D17.2.37, "ESR_EL2"):
/// EC in [31:26], IL in 25, ISS in [24:0]. Nothing here reads hardware: the
/// kernel passes the raw register values it read on the exit.
public enum ExitDecoder {
    /// Exception classes this decoder understands (ESR_ELx.EC).
    public enum ExceptionClass {
        public static var wfx: UInt8 { 0x01 }
        public static var hvc64: UInt8 { 0x16 }
        public static var smc64: UInt8 { 0x17 }
        public static var systemRegister: UInt8 { 0x18 }
        public static var instructionAbortLowerEL: UInt8 { 0x20 }
        public static var dataAbortLowerEL: UInt8 { 0x24 }
    }

    /// Decodes one exit.
    ///
    /// - `esr`: ESR_EL2. `far`: FAR_EL2 (the guest virtual address of an
    ///   abort; only its page offset is used). `hpfar`: HPFAR_EL2 (FIPA in
    ///   [43:4] holds IPA[51:12] of a stage-2 abort).
    ///
    /// A data abort is `.mmio` only when the syndrome is valid (ISV = 1) and
    /// the fault is not on a stage-1 table walk (S1PTW = 0): a walk of the
    /// guest's own page tables that lands outside its RAM is not a device
    /// access, whatever the ISV bit says, so it is `.dataAbortNoSyndrome`.
    public static func decode(esr: UInt64, far: UInt64, hpfar: UInt64) -> GuestExit {
        let ec = UInt8(truncatingIfNeeded: (esr >> 26) & 0x3F)
        let iss = esr & 0x1FF_FFFF
        switch ec {
        case ExceptionClass.dataAbortLowerEL:
            let ipa = faultingIPA(far: far, hpfar: hpfar)
            let isWrite = iss & (1 << 6) != 0
            let isv = iss & (1 << 24) != 0
            let s1ptw = iss & (1 << 7) != 0
            guard isv && !s1ptw else {
                return .dataAbortNoSyndrome(ipa: ipa, isWrite: isWrite)
            }
            return .mmio(MMIOAccess(
                ipa: ipa,
                size: 1 << Int((iss >> 22) & 0x3),
                isWrite: isWrite,
                register: Int((iss >> 16) & 0x1F),
                signExtend: iss & (1 << 21) != 0,
                sixtyFourBit: iss & (1 << 15) != 0))
        case ExceptionClass.instructionAbortLowerEL:
            return .instructionAbort(ipa: faultingIPA(far: far, hpfar: hpfar))
        case ExceptionClass.hvc64:
            return .hypervisorCall(immediate: UInt16(truncatingIfNeeded: iss))
        case ExceptionClass.smc64:
            return .secureMonitorCall(immediate: UInt16(truncatingIfNeeded: iss))
        case ExceptionClass.systemRegister:
            return .systemRegister(SystemRegisterAccess(
                op0: UInt8(truncatingIfNeeded: (iss >> 20) & 0x3),
                op1: UInt8(truncatingIfNeeded: (iss >> 14) & 0x7),
                crn: UInt8(truncatingIfNeeded: (iss >> 10) & 0xF),
                crm: UInt8(truncatingIfNeeded: (iss >> 1) & 0xF),
                op2: UInt8(truncatingIfNeeded: (iss >> 17) & 0x7),
                register: Int((iss >> 5) & 0x1F),
                isRead: iss & 1 != 0))
        case ExceptionClass.wfx:
            // TI[1:0]: 00 WFI, 01 WFE, 10 WFIT, 11 WFET; bit 0 says WFE.
            return .waitForInterrupt(isWFE: iss & 1 != 0)
        default:
            return .other(exceptionClass: ec)
        }
    }

    /// The IPA of a stage-2 abort: HPFAR_EL2.FIPA (bits [43:4], IPA[51:12])
    /// gives the page, FAR_EL2's low 12 bits the offset (stage 1 and stage 2
    /// use 4 KiB granules, so the page offset is the same in VA and IPA).
    public static func faultingIPA(far: UInt64, hpfar: UInt64) -> UInt64 {
        let fipa: UInt64 = 0xFFF_FFFF_FFF0  // bits [43:4]
        return ((hpfar & fipa) << 8) | (far & 0xFFF)
    }
}

extension MMIOAccess {
    /// All bits of the access's width: 0xFF, 0xFFFF, 0xFFFF_FFFF or all ones.
    public var sizeMask: UInt64 {
        size >= 8 ? UInt64.max : (UInt64(1) << UInt64(size * 8)) &- 1
    }

    /// The access is naturally aligned (its IPA a multiple of its size).
    /// Device models refuse unaligned accesses.
    public var isAligned: Bool {
        size > 0 && ipa % UInt64(size) == 0
    }

    /// What the load writes into its register, given what the device read.
    ///
    /// The device value is truncated to the access size, then sign-extended
    /// (SSE) from its top bit; a load into a W register (SF = 0) writes 32
    /// bits and zeroes the upper half, as every AArch64 W-register write does
    /// (so `ldrsb w0` of 0x80 gives 0x0000_0000_FFFF_FF80 and `ldrsb x0` gives
    /// 0xFFFF_FFFF_FFFF_FF80). The kernel skips the write when `register` is
    /// 31 (the zero register).
    public func loadedRegisterValue(_ deviceValue: UInt64) -> UInt64 {
        var value = deviceValue & sizeMask
        if signExtend && size < 8 {
            let bits = UInt64(size * 8)
            let sign = UInt64(1) << (bits - 1)
            if value & sign != 0 { value |= ~sizeMask }
        }
        return sixtyFourBit ? value : value & 0xFFFF_FFFF
    }

    /// What a store writes to the device: the low `size` bytes of the
    /// register. The kernel passes 0 for register 31 (wzr/xzr), not SP.
    public func storedValue(_ registerValue: UInt64) -> UInt64 {
        registerValue & sizeMask
    }
}
