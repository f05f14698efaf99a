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

/// The SMP guest's traffic, hostile or just wrong, as the VMM receives it
/// from other clusters and from its own guest: each gets the answer Linux
/// expects (PSCI codes, architectural silence) and nothing else changes.
@Suite struct HostileGuestTrafficTests {
    func machine(vcpus: Int, vcpu: Int, owner: Bool) -> VirtualMachine {
        VirtualMachine(ramBase: 0x5120_0000, ramSize: 256 << 20, vcpus: vcpus, vcpu: vcpu, listRegisterCount: 4,
                       ownsDevices: owner)!
    }

    func psci(_ vm: inout VirtualMachine, _ f: UInt64, _ x1: UInt64 = 0, _ x2: UInt64 = 0, _ x3: UInt64 = 0) -> (ExitAction, Int64) {
        let r = UnsafeMutablePointer<UInt64>.allocate(capacity: 31)
        defer { r.deallocate() }
        r.initialize(repeating: 0, count: 31)
        r[0] = f; r[1] = x1; r[2] = x2; r[3] = x3
        let action = vm.handle(.hypervisorCall(immediate: 0), registers: r)
        return (action, Int64(bitPattern: r[0]))
    }

    @Test func cpuOnAnswersWhatLinuxExpects() {
        var vm = machine(vcpus: 4, vcpu: 0, owner: true)
        let cpuOn: UInt64 = 0xC400_0003
        // A CPU that is not there, a bad entry point, then a good call.
        var (a, x0) = psci(&vm, cpuOn, 7, 0x5120_0000, 1)
        #expect(a == .resume(advancePC: false) && x0 == -2)  // INVALID_PARAMETERS
        (a, x0) = psci(&vm, cpuOn, 1, 0x4000_0000, 1)
        #expect(a == .resume(advancePC: false) && x0 == -9)  // INVALID_ADDRESS: outside guest RAM
        (a, x0) = psci(&vm, cpuOn, 1, 0x5120_0002, 1)
        #expect(x0 == -9)  // not an instruction boundary
        (a, x0) = psci(&vm, cpuOn, 1, 0x5120_0000, 0x42)
        #expect(a == .cpuOn(vcpu: 1, entry: 0x5120_0000, context: 0x42) && x0 == 0)
        // While its cluster starts it: ON_PENDING; once on: ALREADY_ON; the
        // caller itself is on.
        (a, x0) = psci(&vm, cpuOn, 1, 0x5120_0000, 0)
        #expect(x0 == -5)
        vm.psci.noteState(1, .on)
        (a, x0) = psci(&vm, cpuOn, 1, 0x5120_0000, 0)
        #expect(x0 == -4)
        (a, x0) = psci(&vm, cpuOn, 0, 0x5120_0000, 0)
        #expect(x0 == -4)
        // AFFINITY_INFO follows what the other clusters reported.
        (a, x0) = psci(&vm, 0xC400_0004, 1, 0)
        #expect(x0 == 0)  // on
        vm.psci.noteState(1, .off)
        (a, x0) = psci(&vm, 0xC400_0004, 1, 0)
        #expect(x0 == 1)  // off
        vm.psci.noteState(99, .on)  // a vCPU that does not exist: ignored
        (a, x0) = psci(&vm, 0xC400_0004, 3, 0)
        #expect(x0 == 1)
    }

    /// SGIs to CPUs that do not exist reach nobody; to others, one action.
    @Test func sgisToAbsentCPUsReachNobody() {
        var vm = machine(vcpus: 2, vcpu: 0, owner: true)
        let r = UnsafeMutablePointer<UInt64>.allocate(capacity: 31)
        defer { r.deallocate() }
        r.initialize(repeating: 0, count: 31)
        let sgi1r = SystemRegisterAccess(op0: 3, op1: 0, crn: 12, crm: 11, op2: 5, register: 4, isRead: false)
        r[4] = (1 << 24) | 0b1100  // Aff0 2 and 3: absent
        let h1 = vm.handle(.systemRegister(sgi1r), registers: r)
        #expect(h1 == .resume(advancePC: true))
        r[4] = (1 << 24) | (5 << 16) | 0b10  // Aff1 = 5: nobody
        let h2 = vm.handle(.systemRegister(sgi1r), registers: r)
        #expect(h2 == .resume(advancePC: true))
        r[4] = (1 << 24) | 0b1110  // vCPU 1 and two absent ones
        let h3 = vm.handle(.systemRegister(sgi1r), registers: r)
        #expect(h3 == .sendSGI(targets: 0b10, intid: 1))
        vm.receiveSGI(16)  // not an SGI: ignored
        vm.receiveSGI(-1)
        _ = vm.prepareEntry()
        #expect(vm.listRegisters.used == 0)
    }

    /// Messages for another vCPU, reports to a machine that owns no
    /// distributor, and device accesses a non-owner cannot serve change
    /// nothing; a non-owner forwards its own guest's device accesses.
    @Test func misaddressedMessagesChangeNothing() {
        var vm = machine(vcpus: 2, vcpu: 1, owner: false)
        vm.receive(.spi(SPINotice(vcpu: 0, intid: 33, priority: 0, levelSensitive: true, pending: true, sequence: 1)))
        vm.receive(SPIReport(vcpu: 0, intid: 33, sequence: 1, pending: false, active: false))
        vm.receive(SPIReport(vcpu: 9, intid: 33, sequence: 1, pending: false, active: false))
        _ = vm.prepareEntry()
        #expect(vm.listRegisters.used == 0 && vm.outbox.count == 0)
        let h4 = vm.ownedDeviceAccess(ipa: GuestMemoryMap.distributorBase, size: 4, isWrite: false, value: 0)
        #expect(h4 == .refused)
        let r = UnsafeMutablePointer<UInt64>.allocate(capacity: 31)
        defer { r.deallocate() }
        r.initialize(repeating: 0, count: 31)
        let read = MMIOAccess(ipa: GuestMemoryMap.uartBase + 0x18, size: 2, isWrite: false, register: 0, signExtend: false, sixtyFourBit: false)
        let h5 = vm.handle(.mmio(read), registers: r)
        #expect(h5 == .forward(read))
        // The owner's answer completes it; a refusal becomes an abort.
        let h6 = vm.complete(read, .done(0x90), registers: r)
        #expect(h6 == .resume(advancePC: true) && r[0] == 0x90)
        let h7 = vm.complete(read, .refused, registers: r)
        #expect(h7 == .injectDataAbort(isWrite: false))

        // The owner refuses forwarded accesses outside its devices and bad sizes.
        var owner = machine(vcpus: 2, vcpu: 0, owner: true)
        let h8 = owner.ownedDeviceAccess(ipa: 0x4100_0000, size: 4, isWrite: true, value: 1)
        #expect(h8 == .refused)
        let h9 = owner.ownedDeviceAccess(ipa: GuestMemoryMap.redistributorBase, size: 4, isWrite: false, value: 0)
        #expect(h9 == .refused)
        let h10 = owner.ownedDeviceAccess(ipa: GuestMemoryMap.distributorBase + 2, size: 4, isWrite: false, value: 0)
        #expect(h10 == .refused)
        let h11 = owner.ownedDeviceAccess(ipa: GuestMemoryMap.distributorBase, size: 3, isWrite: false, value: 0)
        #expect(h11 == .refused)
        if case .done = owner.ownedDeviceAccess(ipa: GuestMemoryMap.distributorBase + 4, size: 4, isWrite: false, value: 0) {} else {
            Issue.record("GICD_TYPER must answer a forwarded read")
        }
    }

    /// The owner's distributor sends an SPI routed to another vCPU to the
    /// outbox, never to its own list registers.
    @Test func spiRoutedElsewhereGoesToTheOutbox() {
        var vm = machine(vcpus: 2, vcpu: 0, owner: true)
        let d = GuestMemoryMap.distributorBase
        _ = vm.ownedDeviceAccess(ipa: d, size: 4, isWrite: true, value: 0x12)
        _ = vm.ownedDeviceAccess(ipa: d + 0x104, size: 4, isWrite: true, value: 1 << 1)
        _ = vm.ownedDeviceAccess(ipa: d + 0x6000 + 33 * 8, size: 8, isWrite: true, value: 1)  // route to vCPU 1
        _ = vm.ownedDeviceAccess(ipa: GuestMemoryMap.uartBase + 0x38, size: 4, isWrite: true, value: 1 << 6)
        while vm.outbox.pop() != nil {}
        let h12 = vm.consoleInput(65)
        #expect(h12)
        _ = vm.prepareEntry()
        #expect(vm.listRegisters.used == 0)
        var sawNotice = false
        while let m = vm.outbox.pop() {
            if case .distributor(.spi(let n)) = m, n.vcpu == 1, n.intid == 33, n.pending { sawNotice = true }
        }
        #expect(sawNotice)
    }
}
