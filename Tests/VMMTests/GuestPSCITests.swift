import Testing
import VMM

@Suite struct GuestPSCITests {
    static let ramBase: UInt64 = 0x5120_0000
    static let ramSize: UInt64 = 0x1000_0000
    static let entry: UInt64 = 0x5140_0000

    // Return codes as the guest sees them in x0 (64-bit two's complement).
    static let success: UInt64 = 0
    static let notSupported: UInt64 = 0xFFFF_FFFF_FFFF_FFFF
    static let invalidParameters: UInt64 = 0xFFFF_FFFF_FFFF_FFFE
    static let alreadyOn: UInt64 = 0xFFFF_FFFF_FFFF_FFFC
    static let onPending: UInt64 = 0xFFFF_FFFF_FFFF_FFFB
    static let internalFailure: UInt64 = 0xFFFF_FFFF_FFFF_FFFA
    static let invalidAddress: UInt64 = 0xFFFF_FFFF_FFFF_FFF7

    func psci(_ vcpus: Int = 4) -> GuestPSCI {
        GuestPSCI(vcpus: vcpus, ramBase: Self.ramBase, ramSize: Self.ramSize)!
    }

    func call(_ p: inout GuestPSCI, _ function: UInt64, _ x1: UInt64 = 0, _ x2: UInt64 = 0, _ x3: UInt64 = 0,
              caller: Int = 0) -> PSCIOutcome {
        p.call(function: function, x1: x1, x2: x2, x3: x3, caller: caller)
    }

    // Mutating calls cannot appear directly inside #expect.
    func markOn(_ p: inout GuestPSCI, _ vcpu: Int) -> Bool { p.markOn(vcpu) }
    func cancelPending(_ p: inout GuestPSCI, _ vcpu: Int) -> Bool { p.cancelPending(vcpu) }

    @Test func returnCodeEncodings() {
        #expect(PSCIOutcome(code: GuestPSCI.ReturnCode.notSupported).x0 == Self.notSupported)
        #expect(PSCIOutcome(code: GuestPSCI.ReturnCode.invalidParameters).x0 == Self.invalidParameters)
        #expect(PSCIOutcome(code: GuestPSCI.ReturnCode.denied).x0 == 0xFFFF_FFFF_FFFF_FFFD)
        #expect(PSCIOutcome(code: GuestPSCI.ReturnCode.alreadyOn).x0 == Self.alreadyOn)
        #expect(PSCIOutcome(code: GuestPSCI.ReturnCode.onPending).x0 == Self.onPending)
        #expect(PSCIOutcome(code: GuestPSCI.ReturnCode.internalFailure).x0 == Self.internalFailure)
        #expect(PSCIOutcome(code: GuestPSCI.ReturnCode.notPresent).x0 == 0xFFFF_FFFF_FFFF_FFF9)
        #expect(PSCIOutcome(code: GuestPSCI.ReturnCode.disabled).x0 == 0xFFFF_FFFF_FFFF_FFF8)
        #expect(PSCIOutcome(code: GuestPSCI.ReturnCode.invalidAddress).x0 == Self.invalidAddress)
        #expect(PSCIOutcome(code: GuestPSCI.ReturnCode.success).x0 == 0)
        // A 32-bit caller testing W0 sees the same negative number.
        #expect(Int32(truncatingIfNeeded: Self.notSupported) == -1)
    }

    @Test func initialState() {
        let p = psci()
        #expect(p.state(of: 0) == .on)
        for i in 1..<4 { #expect(p.state(of: i) == .off) }
        #expect(GuestPSCI(vcpus: 0, ramBase: 0, ramSize: 1) == nil)
        #expect(GuestPSCI(vcpus: 65, ramBase: 0, ramSize: 1) == nil)
        #expect(GuestPSCI(vcpus: 1, ramBase: 0, ramSize: 0) == nil)
        #expect(GuestPSCI(vcpus: 1, ramBase: UInt64.max, ramSize: 2) == nil)
        #expect(GuestPSCI(vcpus: 64, ramBase: 0, ramSize: 1) != nil)
    }

    @Test func versionAndMigrateInfo() {
        var p = psci()
        #expect(call(&p, 0x8400_0000) == PSCIOutcome(x0: 0x1_0001))
        #expect(call(&p, 0x8400_0006) == PSCIOutcome(x0: 2))
        // Only W0 is the function id: garbage in x0's upper half is ignored.
        #expect(call(&p, 0xFFFF_FFFF_8400_0000) == PSCIOutcome(x0: 0x1_0001))
    }

    @Test func unsupportedFunctions() {
        var p = psci()
        // CPU_SUSPEND (both), MIGRATE, MIGRATE_INFO_UP_CPU, SYSTEM_SUSPEND,
        // SYSTEM_RESET2, SMCCC_VERSION, CPU_FREEZE, a vendor id, zero.
        for f: UInt64 in [0x8400_0001, 0xC400_0001, 0x8400_0005, 0xC400_0005, 0x8400_0007, 0xC400_0007,
                          0xC400_000E, 0x8400_0012, 0xC400_0012, 0x8000_0000, 0x8400_000B, 0xC200_0000, 0] {
            #expect(call(&p, f) == PSCIOutcome(x0: Self.notSupported), "function \(f)")
        }
    }

    @Test func featuresListsExactlyTheImplementedFunctions() {
        var p = psci()
        for f: UInt64 in [0x8400_0000, 0x8400_0002, 0x8400_0003, 0xC400_0003, 0x8400_0004, 0xC400_0004,
                          0x8400_0006, 0x8400_0008, 0x8400_0009, 0x8400_000A] {
            #expect(call(&p, 0x8400_000A, f) == PSCIOutcome(x0: Self.success), "feature \(f)")
        }
        // What Linux 6.1 asks at boot, all declined.
        for f: UInt64 in [0x8000_0000, 0x8400_0001, 0xC400_0001, 0xC400_000E, 0x8400_0012, 0xC400_0012,
                          0x8400_0005, 0x8400_0007, 0x1234] {
            #expect(call(&p, 0x8400_000A, f) == PSCIOutcome(x0: Self.notSupported), "feature \(f)")
        }
        // PSCI_FEATURES is an SMC32 call: only W1 holds the queried id.
        #expect(call(&p, 0x8400_000A, 0xFFFF_FFFF_8400_0000) == PSCIOutcome(x0: Self.success))
    }

    @Test func systemOffAndReset() {
        var p = psci()
        #expect(call(&p, 0x8400_0008).action == .powerOff)
        #expect(call(&p, 0x8400_0009).action == .reset)
        // The 64-bit ids do not exist for these.
        #expect(call(&p, 0xC400_0008) == PSCIOutcome(x0: Self.notSupported))
    }

    @Test func cpuOnLifecycle() {
        var p = psci()
        let on = call(&p, 0xC400_0003, 0x1, Self.entry, 0xC0FFEE)
        #expect(on == PSCIOutcome(x0: 0, action: .cpuOn(vcpu: 1, entry: Self.entry, context: 0xC0FFEE)))
        #expect(p.state(of: 1) == .onPending)
        #expect(call(&p, 0xC400_0004, 0x1, 0) == PSCIOutcome(x0: 2))          // AFFINITY_INFO: ON_PENDING
        #expect(call(&p, 0xC400_0003, 0x1, Self.entry, 0) == PSCIOutcome(x0: Self.onPending))
        #expect(markOn(&p, 1))
        #expect(p.state(of: 1) == .on)
        #expect(!markOn(&p, 1))                                                  // not pending any more
        #expect(call(&p, 0xC400_0004, 0x1, 0) == PSCIOutcome(x0: 0))           // ON
        #expect(call(&p, 0xC400_0003, 0x1, Self.entry, 0) == PSCIOutcome(x0: Self.alreadyOn))
        #expect(call(&p, 0xC400_0003, 0x0, Self.entry, 0) == PSCIOutcome(x0: Self.alreadyOn))
        // vCPU 1 turns itself off; it can be started again.
        #expect(call(&p, 0x8400_0002, caller: 1).action == .cpuOff(vcpu: 1))
        #expect(p.state(of: 1) == .off)
        #expect(call(&p, 0x8400_0004, 0x1, 0) == PSCIOutcome(x0: 1))           // OFF
        #expect(call(&p, 0x8400_0003, 0x1, Self.entry, 7).action == .cpuOn(vcpu: 1, entry: Self.entry, context: 7))
    }

    @Test func cancelPending() {
        var p = psci()
        _ = call(&p, 0xC400_0003, 0x2, Self.entry, 0)
        #expect(cancelPending(&p, 2))
        #expect(p.state(of: 2) == .off)
        #expect(!cancelPending(&p, 2))
        #expect(!cancelPending(&p, 0))
    }

    @Test func cpuOnRejectsBadTargets() {
        var p = psci()
        for target: UInt64 in [0x4, 0x10, 0x1_0000, 0x1_0000_0000, 0x8000_0001, 0x100_0000_0001, 0xF] {
            #expect(call(&p, 0xC400_0003, target, Self.entry, 0) == PSCIOutcome(x0: Self.invalidParameters),
                    "target \(target)")
        }
        #expect(p.state(of: 1) == .off)
    }

    @Test func cpuOnRejectsBadEntries() {
        var p = psci()
        let end = Self.ramBase + Self.ramSize
        for entry: UInt64 in [0, Self.ramBase - 4, end, end + 4, Self.entry + 2, UInt64.max - 3] {
            #expect(call(&p, 0xC400_0003, 0x1, entry, 0) == PSCIOutcome(x0: Self.invalidAddress), "entry \(entry)")
        }
        #expect(p.state(of: 1) == .off)
        // The first and last instruction of RAM are fine.
        #expect(call(&p, 0xC400_0003, 0x1, Self.ramBase, 0).x0 == 0)
        #expect(call(&p, 0xC400_0003, 0x2, end - 4, 0).x0 == 0)
    }

    /// An SMC32 CPU_ON passes W1-W3: the upper halves are ignored.
    @Test func cpuOn32UsesOnlyLowWords() {
        var p = psci()
        let out = call(&p, 0x8400_0003, 0xFFFF_FFFF_0000_0003, 0xAAAA_AAAA_0000_0000 | Self.entry,
                       0x5555_5555_1234_5678)
        #expect(out == PSCIOutcome(x0: 0, action: .cpuOn(vcpu: 3, entry: Self.entry, context: 0x1234_5678)))
        // The 64-bit call keeps them (and so refuses this entry).
        #expect(call(&p, 0xC400_0003, 0x2, 0xAAAA_AAAA_0000_0000 | Self.entry, 0) == PSCIOutcome(x0: Self.invalidAddress))
    }

    @Test func affinityInfoChecksLevelAndTarget() {
        var p = psci()
        #expect(call(&p, 0x8400_0004, 0x0, 0) == PSCIOutcome(x0: 0))
        #expect(call(&p, 0x8400_0004, 0x3, 0) == PSCIOutcome(x0: 1))
        for level: UInt64 in [1, 2, 3] {
            #expect(call(&p, 0x8400_0004, 0x0, level) == PSCIOutcome(x0: Self.invalidParameters))
        }
        #expect(call(&p, 0x8400_0004, 0x4, 0) == PSCIOutcome(x0: Self.invalidParameters))
        #expect(call(&p, 0xC400_0004, 0x1_0000_0000, 0) == PSCIOutcome(x0: Self.invalidParameters))
    }

    /// vCPU i is Aff1 = i / 16, Aff0 = i % 16, as QEMU virt numbers CPUs.
    @Test func affinityNumbering() {
        #expect(GuestPSCI.affinity(ofVCPU: 0) == 0x0)
        #expect(GuestPSCI.affinity(ofVCPU: 15) == 0xF)
        #expect(GuestPSCI.affinity(ofVCPU: 16) == 0x100)
        #expect(GuestPSCI.affinity(ofVCPU: 63) == 0x30F)
        #expect(GuestPSCI.vmpidr(ofVCPU: 17) == 0x8000_0101)
        var p = psci(64)
        #expect(p.vcpu(withAffinity: 0x30F) == 63)
        #expect(p.vcpu(withAffinity: 0x310) == nil)  // Aff0 16 does not exist
        #expect(p.vcpu(withAffinity: 0x400) == nil)  // vCPU 64
        let out = call(&p, 0xC400_0003, 0x205, Self.entry, 0)
        #expect(out.action == .cpuOn(vcpu: 37, entry: Self.entry, context: 0))
        #expect(p.state(of: 37) == .onPending)
        #expect(markOn(&p, 37))
        for i in 0..<64 { #expect(p.vcpu(withAffinity: GuestPSCI.affinity(ofVCPU: i)) == i) }
    }

    @Test func badCallerIsInternalFailure() {
        var p = psci()
        #expect(call(&p, 0x8400_0002, caller: 4) == PSCIOutcome(x0: Self.internalFailure))
        #expect(call(&p, 0x8400_0000, caller: -1) == PSCIOutcome(x0: Self.internalFailure))
    }
}
