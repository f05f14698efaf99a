import Testing
import VMM

@Suite struct ExitStatisticsTests {
    let map = GuestMemoryMap(ramBase: 0x5120_0000, ramSize: 0x1000_0000, vcpus: 2)!

    func mmio(_ ipa: UInt64) -> GuestExit {
        .mmio(MMIOAccess(ipa: ipa, size: 4, isWrite: false, register: 0, signExtend: false, sixtyFourBit: false))
    }

    @Test func kindsOfExits() {
        #expect(ExitKind(mmio(0x0800_0000), map: map) == .distributorAccess)
        #expect(ExitKind(mmio(0x080C_0000), map: map) == .redistributorAccess)
        #expect(ExitKind(mmio(0x0900_0018), map: map) == .uartAccess)
        #expect(ExitKind(mmio(0x0A00_0000), map: map) == .unmappedAccess)
        #expect(ExitKind(mmio(0x080E_0000), map: map) == .unmappedAccess)  // vCPU 2's GICR: only 2 vCPUs
        #expect(ExitKind(mmio(0x5120_0000), map: map) == .other)
        #expect(ExitKind(.dataAbortNoSyndrome(ipa: 0x0900_0000, isWrite: true), map: map) == .uartAccess)
        #expect(ExitKind(.instructionAbort(ipa: 0), map: map) == .other)
        #expect(ExitKind(.hypervisorCall(immediate: 0), map: map) == .hypervisorCall)
        #expect(ExitKind(.secureMonitorCall(immediate: 0), map: map) == .secureMonitorCall)
        let sgi = SystemRegisterAccess(op0: 3, op1: 0, crn: 12, crm: 11, op2: 5, register: 1, isRead: false)
        #expect(ExitKind(.systemRegister(sgi), map: map) == .systemRegister)
        #expect(ExitKind(.waitForInterrupt(isWFE: true), map: map) == .waitForInterrupt)
        #expect(ExitKind(.other(exceptionClass: 7), map: map) == .other)
    }

    @Test func namesAreDistinctAndRawValuesDense() {
        var names: [String] = []
        for raw in 0..<ExitKind.count {
            let kind = ExitKind(rawValue: raw)
            #expect(kind != nil)
            if let kind { names.append(kind.name.description) }
        }
        #expect(ExitKind(rawValue: ExitKind.count) == nil)
        #expect(Set(names).count == ExitKind.count)
        #expect(names == ["gicd", "gicr", "uart", "unmapped", "hvc", "smc", "sysreg", "wfx", "irq", "other"])
    }

    @Test func countsAndTicks() {
        var s = ExitStatistics()
        s.record(.uartAccess, ticks: 100)
        s.record(.uartAccess, ticks: 50)
        s.record(.interrupt, ticks: 7)
        #expect(s.count(.uartAccess) == 2 && s.ticks(.uartAccess) == 150)
        #expect(s.count(.interrupt) == 1 && s.ticks(.interrupt) == 7)
        #expect(s.count(.hypervisorCall) == 0 && s.ticks(.hypervisorCall) == 0)
        #expect(s.totalCount == 3)
        s.recordRefusedAccess()
        s.recordInjectedAbort()
        s.recordInjectedAbort()
        s.recordInjectedUndefined()
        #expect(s.refusedAccesses == 1 && s.injectedAborts == 2 && s.injectedUndefineds == 1)
    }

    @Test func ticksWrap() {
        var s = ExitStatistics()
        s.record(.other, ticks: UInt64.max)
        s.record(.other, ticks: 2)
        #expect(s.ticks(.other) == 1)
        #expect(s.count(.other) == 2)
    }

    @Test func addCombinesVCPUs() {
        var a = ExitStatistics(), b = ExitStatistics()
        a.record(.distributorAccess, ticks: 10)
        b.record(.distributorAccess, ticks: 5)
        b.record(.waitForInterrupt, ticks: 1000)
        b.recordRefusedAccess()
        a.add(b)
        #expect(a.count(.distributorAccess) == 2 && a.ticks(.distributorAccess) == 15)
        #expect(a.count(.waitForInterrupt) == 1)
        #expect(a.refusedAccesses == 1)
        #expect(a != b)
        #expect(ExitStatistics() == ExitStatistics())
    }
}
