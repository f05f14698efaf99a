/// One cluster's view of the guest: the exit dispatcher.
///
/// The kernel calls `handle(_:registers:)` on every synchronous exit with the
/// decoded exit and the guest's x0..x30, and gets an `ExitAction` back: it
/// writes nothing else. Physical events come in through `virtualTimerFired`
/// and `consoleInput`; the list registers go out through `prepareEntry` and
/// come back through `syncListRegisters`.
///
/// Ownership (docs/guest.md): the distributor (SPI state) has one owner, the
/// cluster running vCPU 0; each vCPU's redistributor and list registers live
/// in the cluster that runs it. Between them only `DistributorMessage`s and
/// `SPIReport`s travel, so the SMP guest sends the same values over the
/// inter-kernel channel instead of handing them over here.
///
/// Invariant: after `prepareEntry` every message the distributor owed this
/// vCPU and every report the vCPU owed the distributor has been delivered,
/// locally or into `outbox` (which the kernel sends before the entry).
public struct VirtualMachine {
    /// The vCPU this cluster runs.
    public let vcpu: Int
    public let topology: VCPUTopology
    public let map: GuestMemoryMap
    /// The distributor and the UART: only in the owner's machine (vCPU 0's
    /// cluster). Everyone else forwards their accesses (`ExitAction.forward`).
    public var distributor: VirtualDistributor?
    public var redistributor: VirtualRedistributor
    public var uart: VirtualPL011?
    /// Messages for other clusters, oldest first; the kernel sends them.
    public var outbox = GuestOutbox()
    public var psci: GuestPSCI
    public var statistics = ExitStatistics()
    /// The list-register values: filled by `prepareEntry`, copied to the
    /// hardware by the kernel, copied back before `syncListRegisters`.
    public var listRegisters: ListRegisterFile
    /// The last access refused (for the kernel's log line), cleared by the
    /// kernel once reported.
    public var lastRefusal: Refusal? = nil

    /// The virtual timer's interrupt (PPI 27), hardware-linked to the
    /// physical one.
    public static var virtualTimerID: Int { 27 }

    /// A refused guest access: where and what.
    public struct Refusal: Equatable, Sendable {
        public var ipa: UInt64
        public var isWrite: Bool
        public var region: GuestMemoryMap.Region
    }

    /// nil if the RAM region or vCPU numbers are unusable.
    public init?(ramBase: UInt64, ramSize: UInt64, vcpus: Int, vcpu: Int, listRegisterCount: Int, ownsDevices: Bool = true) {
        guard vcpu >= 0, vcpu < vcpus,
            let map = GuestMemoryMap(ramBase: ramBase, ramSize: ramSize, vcpus: vcpus),
            let psci = GuestPSCI(vcpus: vcpus, ramBase: ramBase, ramSize: ramSize)
        else { return nil }
        self.vcpu = vcpu
        self.topology = VCPUTopology(count: vcpus)
        self.map = map
        self.psci = psci
        self.distributor = ownsDevices ? VirtualDistributor(topology: topology) : nil
        self.redistributor = VirtualRedistributor(vcpu: vcpu, topology: topology)
        self.redistributor.linkHardware(intid: Self.virtualTimerID, physical: Self.virtualTimerID)
        self.uart = ownsDevices ? VirtualPL011() : nil
        self.listRegisters = ListRegisterFile(count: listRegisterCount)
    }

    // MARK: Exits

    /// Emulate one synchronous exit. `registers` holds x0..x30 (31 words);
    /// index 31 in an instruction is xzr, never written.
    public mutating func handle(_ exit: GuestExit, registers: UnsafeMutablePointer<UInt64>) -> ExitAction {
        func read(_ r: Int) -> UInt64 { r == 31 ? 0 : registers[r] }
        func write(_ r: Int, _ v: UInt64) { if r != 31 { registers[r] = v } }
        switch exit {
        case .mmio(let access):
            let region = map.classify(access.ipa)
            let value = access.isWrite ? access.storedValue(read(access.register)) : 0
            let result: MMIOResult
            guard access.isAligned else { return refuse(access.ipa, access.isWrite, region) }
            switch region {
            case .gicDistributor, .uart:
                guard distributor != nil else { return .forward(access) }
                result = ownedDeviceAccess(ipa: access.ipa, size: access.size, isWrite: access.isWrite, value: value)
            case .gicRedistributor(let v, let offset):
                if v == vcpu {
                    result = redistributor.access(offset: Int(offset), size: access.size, isWrite: access.isWrite, value: value)
                } else {
                    // Another vCPU's frame: its identification registers and
                    // GICR_CTLR, read as 0 (no LPIs: Linux's redistributor walk
                    // reads both of every frame); anything else is refused.
                    if offset == 0, access.size == 4, !access.isWrite {
                        result = .done(0)
                    } else {
                        result = VirtualRedistributor.identificationAccess(
                            vcpu: v, topology: topology, offset: Int(offset), size: access.size, isWrite: access.isWrite)
                            ?? .refused
                    }
                }
            case .ram, .unmapped:
                result = .refused
            }
            return complete(access, result, registers: registers)
        case .dataAbortNoSyndrome(let ipa, let isWrite):
            return refuse(ipa, isWrite, map.classify(ipa))
        case .instructionAbort(let ipa):
            lastRefusal = Refusal(ipa: ipa, isWrite: false, region: map.classify(ipa))
            statistics.recordInjectedAbort()
            return .injectInstructionAbort
        case .hypervisorCall(let immediate):
            // PSCI is HVC #0 (SMCCC); anything else is not supported.
            guard immediate == 0 else {
                registers[0] = UInt64(bitPattern: GuestPSCI.ReturnCode.notSupported)
                return .resume(advancePC: false)
            }
            let outcome = psci.call(function: read(0), x1: read(1), x2: read(2), x3: read(3), caller: vcpu)
            registers[0] = outcome.x0
            switch outcome.action {
            case .none: return .resume(advancePC: false)
            case .powerOff: return .powerOff
            case .reset: return .reset
            case .cpuOn(let v, let entry, let context): return .cpuOn(vcpu: v, entry: entry, context: context)
            case .cpuOff(let v): return .cpuOff(vcpu: v)
            }
        case .secureMonitorCall:
            // The guest's conduit is HVC (its device tree says so): an SMC
            // reaches nothing. Trapped SMCs leave ELR at the instruction.
            registers[0] = UInt64(bitPattern: GuestPSCI.ReturnCode.notSupported)
            return .resume(advancePC: true)
        case .systemRegister(let a):
            if a.isSGI1R && !a.isRead {
                let request = SGIRequest(raw: read(a.register))
                let targets = request.targets(sender: vcpu, topology: topology)
                if targets & (1 << UInt64(vcpu)) != 0 { redistributor.setPending(intid: request.intid) }
                let remote = targets & ~(1 << UInt64(vcpu))
                if remote != 0 { return .sendSGI(targets: remote, intid: request.intid) }
                return .resume(advancePC: true)
            }
            if a.isGroup0OrAliasSGI && !a.isRead {
                // Group 0 SGIs deliver nothing to Linux (its interrupts are
                // all group 1): dropped, as on a GIC with one security state.
                return .resume(advancePC: true)
            }
            statistics.recordInjectedUndefined()
            return .injectUndefined
        case .waitForInterrupt:
            return .resume(advancePC: true)
        case .other:
            statistics.recordInjectedUndefined()
            return .injectUndefined
        }
    }

    /// Finish an MMIO exit with the device's answer (also for a forwarded
    /// access, with the owner's answer).
    public mutating func complete(_ access: MMIOAccess, _ result: MMIOResult, registers: UnsafeMutablePointer<UInt64>) -> ExitAction {
        switch result {
        case .done(let v):
            if !access.isWrite && access.register != 31 { registers[access.register] = access.loadedRegisterValue(v) }
            deliverInterrupts()
            return .resume(advancePC: true)
        case .refused:
            return refuse(access.ipa, access.isWrite, map.classify(access.ipa))
        }
    }

    /// An access to the devices this machine owns (the distributor and the
    /// UART), from its own vCPU or forwarded by another cluster's. Anything
    /// else, or a machine that owns no devices, refuses.
    public mutating func ownedDeviceAccess(ipa: UInt64, size: Int, isWrite: Bool, value: UInt64) -> MMIOResult {
        guard distributor != nil, uart != nil, size == 1 || size == 2 || size == 4 || size == 8, ipa % UInt64(size) == 0
        else { return .refused }
        let result: MMIOResult
        switch map.classify(ipa) {
        case .gicDistributor(let offset):
            result = distributor!.access(offset: Int(offset), size: size, isWrite: isWrite, value: value)
        case .uart(let offset):
            result = uart!.access(offset: offset, size: size, isWrite: isWrite, value: value)
        default:
            return .refused
        }
        deliverInterrupts()
        return result
    }

    mutating func refuse(_ ipa: UInt64, _ isWrite: Bool, _ region: GuestMemoryMap.Region) -> ExitAction {
        statistics.recordRefusedAccess()
        statistics.recordInjectedAbort()
        lastRefusal = Refusal(ipa: ipa, isWrite: isWrite, region: region)
        return .injectDataAbort(isWrite: isWrite)
    }

    // MARK: Physical events

    /// The physical virtual-timer interrupt fired (the kernel dropped its
    /// priority but left it active): make the linked virtual one pending.
    public mutating func virtualTimerFired() {
        redistributor.setPending(intid: Self.virtualTimerID)
    }

    /// A byte typed on the console, for the guest's UART. False: its receive
    /// FIFO was full and the byte was dropped (and counted).
    @discardableResult
    public mutating func consoleInput(_ byte: UInt8) -> Bool {
        guard uart != nil else { return false }
        let taken = uart!.receive(byte)
        deliverInterrupts()
        return taken
    }

    // MARK: From other clusters (already validated by the channel)

    /// The distributor's message for this vCPU.
    public mutating func receive(_ message: DistributorMessage) {
        guard message.vcpu == vcpu else { return }
        redistributor.accept(message)
    }

    /// A vCPU's report, for the owner's distributor (ignored elsewhere).
    public mutating func receive(_ report: SPIReport) {
        guard distributor != nil, report.vcpu >= 0, report.vcpu < topology.count else { return }
        distributor!.accept(report)
        deliverInterrupts()
    }

    /// Another vCPU's IPI for this one.
    public mutating func receiveSGI(_ intid: Int) {
        guard intid >= 0 && intid < 16 else { return }
        redistributor.setPending(intid: intid)
    }

    // MARK: Interrupt plumbing

    /// Move state between the devices, the distributor and this vCPU until
    /// nothing is owed: the UART's line, distributor messages for this vCPU,
    /// this vCPU's reports. Messages for other vCPUs are not possible with
    /// one vCPU and are dropped (the SMP guest routes them).
    public mutating func deliverInterrupts() {
        if distributor != nil, let line = uart?.interruptLine {
            distributor!.setLevel(intid: Int(GuestMemoryMap.uartInterruptID), high: line)
        }
        var progress = true
        while progress {
            progress = false
            while let m = distributor?.nextMessage() {
                if m.vcpu == vcpu { redistributor.accept(m) } else { outbox.push(.distributor(m)) }
                progress = true
            }
            while let r = redistributor.nextReport() {
                if distributor != nil { distributor!.accept(r) } else { outbox.push(.report(r)) }
                progress = true
            }
        }
    }

    /// After an exit: fold the list registers (values the kernel read back
    /// from the hardware into `listRegisters`) into the model.
    public mutating func syncListRegisters() {
        redistributor.sync(listRegisters)
        deliverInterrupts()
    }

    /// Before an entry: deliver what is owed and choose the list registers.
    /// The kernel writes `listRegisters[0..<count]` to ICH_LR<n>_EL2 and sets
    /// ICH_HCR_EL2.NPIE when the result asks for it.
    public mutating func prepareEntry() -> FlushResult {
        deliverInterrupts()
        return redistributor.flush(into: &listRegisters)
    }
}

/// What the kernel does after an exit.
public enum ExitAction: Equatable, Sendable {
    /// Return to the guest; advance the PC past the trapping instruction
    /// when asked (MMIO, system registers, SMC; not HVC: ELR is past it).
    case resume(advancePC: Bool)
    /// Inject a synchronous external abort on the access (FAR_EL2 is the
    /// guest's virtual address); the guest's handler runs next.
    case injectDataAbort(isWrite: Bool)
    case injectInstructionAbort
    /// Inject an UNDEFINED exception at the trapping instruction.
    case injectUndefined
    /// PSCI SYSTEM_OFF / SYSTEM_RESET: the guest is over.
    case powerOff
    case reset
    /// PSCI CPU_ON / CPU_OFF for vCPU `vcpu`.
    case cpuOn(vcpu: Int, entry: UInt64, context: UInt64)
    case cpuOff(vcpu: Int)
    /// A guest IPI for other vCPUs (bit i = vCPU i); the PC is to be advanced.
    case sendSGI(targets: UInt64, intid: Int)
    /// An access to a device another cluster owns (the distributor, the
    /// UART): the kernel asks the owner and finishes with `complete`.
    case forward(MMIOAccess)
}

/// What a cluster's machine sends to the others.
public enum OutgoingGuestMessage: Equatable, Sendable {
    /// The distributor's message for a vCPU of another cluster.
    case distributor(DistributorMessage)
    /// This vCPU's report, for the distributor's owner.
    case report(SPIReport)
}

/// A small queue of outgoing messages (no heap). Full: `push` reports it and
/// the message is counted as lost; the kernel drains it after every exit, so
/// it holds at most what one exit produces.
public struct GuestOutbox {
    public static var capacity: Int { 64 }
    var items = InlineArray<64, OutgoingGuestMessage>(repeating: .report(SPIReport(vcpu: 0, intid: 0, sequence: 0, pending: false, active: false)))
    var head = 0
    public private(set) var count = 0
    /// Messages that did not fit (never expected; counted, not hidden).
    public private(set) var lost: UInt64 = 0

    public init() {}

    @discardableResult
    public mutating func push(_ m: OutgoingGuestMessage) -> Bool {
        guard count < Self.capacity else {
            lost &+= 1
            return false
        }
        items[(head + count) % Self.capacity] = m
        count += 1
        return true
    }

    public mutating func pop() -> OutgoingGuestMessage? {
        guard count > 0 else { return nil }
        let m = items[head]
        head = (head + 1) % Self.capacity
        count -= 1
        return m
    }
}

extension SystemRegisterAccess {
    /// ICC_SGI1R_EL1: op0 3, op1 0, CRn 12, CRm 11, op2 5.
    public var isSGI1R: Bool { op0 == 3 && op1 == 0 && crn == 12 && crm == 11 && op2 == 5 }
    /// ICC_ASGI1R_EL1 (op1 1, op2 6) or ICC_SGI0R_EL1 (op1 2, op2 7).
    public var isGroup0OrAliasSGI: Bool {
        op0 == 3 && crn == 12 && crm == 11 && ((op1 == 1 && op2 == 6) || (op1 == 2 && op2 == 7))
    }
}
