import Testing

@testable import VMM

/// The exit dispatcher end to end: decoded exits in, actions and register
/// values out, interrupts into the list registers.
@Suite struct VirtualMachineTests {
    static let ram: UInt64 = 0x5120_0000
    static let ramSize: UInt64 = 256 << 20

    func machine(vcpus: Int = 1) -> VirtualMachine {
        VirtualMachine(ramBase: Self.ram, ramSize: Self.ramSize, vcpus: vcpus, vcpu: 0, listRegisterCount: 4)!
    }

    /// x0..x30 for a handled exit.
    final class Registers {
        let words = UnsafeMutablePointer<UInt64>.allocate(capacity: 31)
        init() { words.initialize(repeating: 0, count: 31) }
        deinit { words.deallocate() }
    }

    func mmio(_ vm: inout VirtualMachine, _ ipa: UInt64, write value: UInt64? = nil, size: Int = 4, _ r: Registers) -> ExitAction {
        if let value { r.words[1] = value }
        let access = MMIOAccess(ipa: ipa, size: size, isWrite: value != nil, register: 1, signExtend: false, sixtyFourBit: false)
        return vm.handle(.mmio(access), registers: r.words)
    }

    func lrIDs(_ vm: VirtualMachine) -> [UInt32] {
        (0..<vm.listRegisters.used).map { ListRegister(raw: vm.listRegisters[$0]).virtualID }
    }

    /// What Linux does to get console input: distributor on (group 1),
    /// SPI 33 enabled and routed to vCPU 0, the UART's receive interrupts
    /// unmasked. A typed byte then reaches a list register, and the guest
    /// reads it from DR.
    @Test func consoleInputReachesAListRegisterAndDR() {
        var vm = machine()
        let r = Registers()
        let gicd = GuestMemoryMap.distributorBase, uart = GuestMemoryMap.uartBase
        #expect(mmio(&vm, gicd + 0x0000, write: 0x12, r) == .resume(advancePC: true))  // ARE | EnableGrp1
        #expect(mmio(&vm, gicd + 0x0104, write: 1 << 1, r) == .resume(advancePC: true))  // ISENABLER1: SPI 33
        #expect(mmio(&vm, gicd + 0x6000 + 33 * 8, write: 0, size: 8, r) == .resume(advancePC: true))  // IROUTER33
        #expect(mmio(&vm, uart + 0x038, write: (1 << 4) | (1 << 6), r) == .resume(advancePC: true))  // IMSC RX, RT
        _ = vm.prepareEntry()
        #expect(lrIDs(vm).isEmpty)
        let a1 = vm.consoleInput(UInt8(ascii: "x"))
        #expect(a1)
        let flush = vm.prepareEntry()
        #expect(flush.used == 1 && lrIDs(vm) == [33])
        // The guest acknowledges (active in the LR), reads DR: the line falls.
        var lr = ListRegister(raw: vm.listRegisters[0])
        lr.state = .active
        vm.listRegisters[0] = lr.raw
        vm.syncListRegisters()
        let a2 = mmio(&vm, uart + 0x000, r)
        #expect(a2 == .resume(advancePC: true))
        #expect(r.words[1] == UInt64(UInt8(ascii: "x")))
        #expect(!vm.uart!.interruptLine)
    }

    @Test func psciOverHVCAndUnknownImmediates() {
        var vm = machine()
        let r = Registers()
        r.words[0] = 0x8400_0000  // PSCI_VERSION
        let a3 = vm.handle(.hypervisorCall(immediate: 0), registers: r.words)
        #expect(a3 == .resume(advancePC: false))
        #expect(r.words[0] == 0x1_0001)
        r.words[0] = 0x8400_0008
        let a4 = vm.handle(.hypervisorCall(immediate: 0), registers: r.words)
        #expect(a4 == .powerOff)
        r.words[0] = 0x8400_0009
        let a5 = vm.handle(.hypervisorCall(immediate: 0), registers: r.words)
        #expect(a5 == .reset)
        r.words[0] = 0x8400_0000
        let a6 = vm.handle(.hypervisorCall(immediate: 7), registers: r.words)
        #expect(a6 == .resume(advancePC: false))
        #expect(r.words[0] == UInt64(bitPattern: -1))
        r.words[0] = 0x8400_0000
        let a7 = vm.handle(.secureMonitorCall(immediate: 0), registers: r.words)
        #expect(a7 == .resume(advancePC: true))
        #expect(r.words[0] == UInt64(bitPattern: -1))
    }

    /// Outside the guest's RAM and devices, and bad accesses to a device:
    /// an abort for the guest, counted, the refusal kept for the log line.
    @Test func refusedAccessesBecomeAborts() {
        var vm = machine()
        let r = Registers()
        let a8 = mmio(&vm, 0x4100_0000, write: 0xdead, r)
        #expect(a8 == .injectDataAbort(isWrite: true))
        #expect(vm.lastRefusal == VirtualMachine.Refusal(ipa: 0x4100_0000, isWrite: true, region: .unmapped))
        let a9 = mmio(&vm, 0x4100_0000, r)
        #expect(a9 == .injectDataAbort(isWrite: false))
        #expect(mmio(&vm, GuestMemoryMap.distributorBase + 0x0004, write: 1, r) == .injectDataAbort(isWrite: true))  // TYPER is read-only
        #expect(mmio(&vm, GuestMemoryMap.uartBase + 0x002, r) == .injectDataAbort(isWrite: false))  // unaligned
        let a10 = vm.handle(.dataAbortNoSyndrome(ipa: GuestMemoryMap.uartBase, isWrite: true), registers: r.words)
        #expect(a10 == .injectDataAbort(isWrite: true))
        #expect(vm.statistics.refusedAccesses == 5 && vm.statistics.injectedAborts == 5)
        let a11 = vm.handle(.instructionAbort(ipa: 0x4100_0000), registers: r.words)
        #expect(a11 == .injectInstructionAbort)
        let a12 = vm.handle(.other(exceptionClass: 0x07), registers: r.words)
        #expect(a12 == .injectUndefined)
        let cntvCTL = SystemRegisterAccess(op0: 3, op1: 3, crn: 14, crm: 3, op2: 1, register: 2, isRead: true)
        let a13 = vm.handle(.systemRegister(cntvCTL), registers: r.words)
        #expect(a13 == .injectUndefined)
        #expect(vm.statistics.injectedUndefineds == 2)
    }

    /// A guest IPI to itself pends the SGI locally; to others it is an
    /// action for the kernel (the SMP guest's channel message).
    @Test func sgisToSelfAndOthers() {
        var vm = machine(vcpus: 2)
        let r = Registers()
        let sgi1r = SystemRegisterAccess(op0: 3, op1: 0, crn: 12, crm: 11, op2: 5, register: 3, isRead: false)
        // Enable SGI 5 in vCPU 0's redistributor and group 1 in the distributor.
        let a14 = mmio(&vm, GuestMemoryMap.distributorBase, write: 0x12, r)
        #expect(a14 == .resume(advancePC: true))
        let a15 = mmio(&vm, GuestMemoryMap.redistributorBase + 0x1_0100, write: 1 << 5, r)
        #expect(a15 == .resume(advancePC: true))
        r.words[3] = (5 << 24) | 0b01  // SGI 5 to Aff0 = 0 (itself)
        let a16 = vm.handle(.systemRegister(sgi1r), registers: r.words)
        #expect(a16 == .resume(advancePC: true))
        _ = vm.prepareEntry()
        #expect(lrIDs(vm) == [5])
        r.words[3] = (2 << 24) | 0b10  // SGI 2 to vCPU 1
        let a17 = vm.handle(.systemRegister(sgi1r), registers: r.words)
        #expect(a17 == .sendSGI(targets: 0b10, intid: 2))
        r.words[3] = (1 << 40) | (3 << 24)  // broadcast: everyone but the sender
        let a18 = vm.handle(.systemRegister(sgi1r), registers: r.words)
        #expect(a18 == .sendSGI(targets: 0b10, intid: 3))
    }

    /// The physical timer's interrupt becomes a hardware-linked LR once the
    /// guest enabled PPI 27.
    @Test func virtualTimerIsHardwareLinked() {
        var vm = machine()
        let r = Registers()
        let a19 = mmio(&vm, GuestMemoryMap.distributorBase, write: 0x12, r)
        #expect(a19 == .resume(advancePC: true))
        let a20 = mmio(&vm, GuestMemoryMap.redistributorBase + 0x1_0100, write: 1 << 27, r)
        #expect(a20 == .resume(advancePC: true))
        vm.virtualTimerFired()
        _ = vm.prepareEntry()
        let lr = ListRegister(raw: vm.listRegisters[0])
        #expect(lr.virtualID == 27 && lr.physicalID == 27 && lr.state == .pending && lr.group1)
    }
}
