import Arch
import BigLock
import ArchAsm
import Cluster
import Kernel
import InterKernel
import VMM
import Synchronization

/// Frame word indices (ArchConstants.h), as Swift Ints.
enum Frame {
    static let sp = Int(CMK_FRAME_SP)
    static let pc = Int(CMK_FRAME_ELR)
    static let pstate = Int(CMK_FRAME_SPSR)
    static let esr = Int(CMK_FRAME_ESR)
    static let far = Int(CMK_FRAME_FAR)
    static let words = Int(CMK_FRAME_WORDS)
    static let bytes = Int(CMK_FRAME_SIZE)
}

/// Running a vCPU thread on this core, and every exit back from it.
///
/// While a vCPU runs, its general registers, PC, PSTATE and FP/SIMD state
/// are in this core's registers, and on every exit in the trap frame at the
/// top of the kernel stack; its EL1 system registers and list registers stay
/// in the hardware until another vCPU is loaded (`load`). The VCPU object
/// holds them whenever the vCPU is not loaded.
enum VCPURun {
    /// A vCPU's reset state (Linux's arm64 boot protocol): PC = `entry`,
    /// x0 = `context` (the DTB), x1-x3 = 0, EL1h with DAIF masked, MMU and
    /// caches off.
    static func reset(_ v: VCPURef, entry: UInt64, context: UInt64) {
        for i in 0..<VCPU.contextWords { v.pointee.context[i] = 0 }
        v.pointee.context[Int(CMK_VCPU_FRAME) + 0] = context
        v.pointee.context[Int(CMK_VCPU_FRAME) + Frame.pc] = entry
        v.pointee.context[Int(CMK_VCPU_FRAME) + Frame.pstate] = UInt64(CMK_SPSR_EL1H_MASKED)
        v.pointee.context[Int(CMK_VCPU_EL1) + Int(CMK_VCPU_EL1_SCTLR)] = UInt64(CMK_SCTLR_EL1_RESET)
    }

    /// The top of this core's kernel stack, where every trap frame lands.
    static var frameAtStackTop: UnsafeMutablePointer<UInt64> {
        let state = UnsafeMutablePointer<UInt64>(bitPattern: UInt(CPU.tpidr))!
        let top = state[CoreState.kernelStackTop]
        return UnsafeMutablePointer<UInt64>(bitPattern: UInt(top) - UInt(Frame.bytes))!
    }

    /// Load `v`'s EL1 state into this core (saving the one loaded before).
    static func load(_ v: VCPURef) {
        let here = GuestGlobals.here
        if here.pointee.loadedVCPU == v { return }
        if let old = here.pointee.loadedVCPU {
            old.pointee.context.withUnsafeMutableWords { Virtualization.saveEL1($0 + Int(CMK_VCPU_EL1)) }
        }
        v.pointee.context.withUnsafeMutableWords { Virtualization.restoreEL1($0 + Int(CMK_VCPU_EL1)) }
        here.pointee.loadedVCPU = v
    }

    /// Run the thread the scheduler chose, if it is a vCPU: load its state
    /// and enter the guest. Never returns; exits arrive in `exit`.
    static func runCurrent(coreIndex: Int) -> Never {
        let kernel = KernelGlobals.kernel!
        GuestLock.acquire(core: coreIndex)
        let thread = kernel.currentThread(core: coreIndex)
        let vcpu = thread?.pointee.boundVCPU
        if let vcpu { load(vcpu) }
        GuestLock.release(core: coreIndex)
        guard let vcpu else { panic("guest: the scheduler chose no vCPU thread") }
        UserRun.coreState[CoreState.lowerEL] = LowerEL.vcpu
        let frame = frameAtStackTop
        vcpu.pointee.context.withUnsafeMutableWords { saved in
            for i in 0..<Frame.words { frame[i] = saved[Int(CMK_VCPU_FRAME) + i] }
        }
        Virtualization.enter(frame: frame)
    }

    /// Every trap from the guest, and every physical interrupt taken while
    /// it runs (cmk_trap, kinds 8-11). The kernel entry of a VM exit: under
    /// the cluster's big lock from the first access to the VMM's state to
    /// the last; the frame then goes back to the guest.
    static func exit(_ frame: UnsafeMutablePointer<UInt64>, kind: UInt64, coreIndex: Int) {
        let start = CPU.counter
        GuestLock.acquire(core: coreIndex)
        // The list registers the last entry filled: back into the model, and
        // cleared in the hardware, with NPIE off. Until then the maintenance
        // interrupt's condition (an EOI'd LR, or no pending LR under NPIE)
        // would hold, and acknowledging it would only make it pending again.
        let used = GuestGlobals.vm.pointee.listRegisters.used
        for i in 0..<used {
            GuestGlobals.vm.pointee.listRegisters[i] = Virtualization.listRegister(i)
            Virtualization.setListRegister(i, 0)
        }
        Virtualization.setControl(refillWhenNoPending: false)
        GuestGlobals.vm.pointee.syncListRegisters()

        let exitKind: ExitKind
        switch kind & 3 {
        case 0:
            let exit = ExitDecoder.decode(esr: frame[Frame.esr], far: frame[Frame.far], hpfar: Virtualization.faultIPAPage)
            exitKind = ExitKind(exit, map: GuestGlobals.vm.pointee.map)
            let action = GuestGlobals.vm.pointee.handle(exit, registers: frame)
            logRefusal(frame)
            apply(action, frame)
        case 1, 2:
            exitKind = .interrupt
            interrupts()
        default:
            panic("guest: SError from the guest, ESR", frame[Frame.esr])
        }
        // Messages from other clusters (the doorbell that made this exit, or
        // ones that waited), what this exit owes them, the console.
        GuestChannel.pump()
        GuestChannel.flushOutbox()
        drainConsole()
        if let reason = GuestChannel.stopRequested { finish(reason) }
        if GuestChannel.shutdownRequested { stopLocal(coreIndex: coreIndex) }

        // Entry: choose the list registers.
        let flush = GuestGlobals.vm.pointee.prepareEntry()
        for i in 0..<GuestGlobals.vm.pointee.listRegisters.count {
            Virtualization.setListRegister(i, GuestGlobals.vm.pointee.listRegisters[i])
        }
        Virtualization.setControl(refillWhenNoPending: flush.noPendingMaintenance)
        GuestGlobals.vm.pointee.statistics.record(exitKind, ticks: CPU.counter &- start)
        GuestLock.release(core: coreIndex)
    }

    /// Carry out what the VMM decided.
    static func apply(_ action: ExitAction, _ frame: UnsafeMutablePointer<UInt64>) {
        switch action {
        case .resume(let advance):
            if advance { frame[Frame.pc] &+= 4 }
        case .sendSGI(let targets, let intid):
            GuestChannel.sendSGI(targets: targets, intid: intid)
            frame[Frame.pc] &+= 4
        case .forward(let access):
            let value = access.isWrite ? access.storedValue(access.register == 31 ? 0 : frame[access.register]) : 0
            let result = GuestChannel.forward(access, value: value)
            apply(GuestGlobals.vm.pointee.complete(access, result, registers: frame), frame)
            logRefusal(frame)
        case .injectDataAbort(let isWrite):
            inject(ExceptionInjection.dataAbort(context(frame), address: frame[Frame.far], isWrite: isWrite), frame)
        case .injectInstructionAbort:
            inject(ExceptionInjection.instructionAbort(context(frame), address: frame[Frame.far]), frame)
        case .injectUndefined:
            inject(ExceptionInjection.undefinedInstruction(context(frame)), frame)
        case .powerOff, .reset:
            let reason: GuestStopReason = action == .powerOff ? .powerOff : .reset
            if GuestGlobals.cluster == 0 { finish(reason) }
            GuestChannel.send(.guestStop(reason), to: 0)
            GuestGlobals.here.pointee.running = false
            waitForShutdown()
        case .cpuOff(let v):
            // The vCPU stops until a CPU_ON starts it again.
            GuestChannel.broadcast(vcpu: v, .off)
            GuestGlobals.here.pointee.running = false
            if v == 0 {
                // vCPU 0 owns the devices and the end of the run; a guest
                // that turns it off is over.
                finish(.powerOff)
            }
            let core = GuestGlobals.hereIndex
            GuestLock.release(core: core)
            GuestBringUp.waitForStart(coreIndex: core)
        case .cpuOn(let v, let entry, let context):
            GuestChannel.startRemote(vcpu: v, entry: entry, context: context)
        }
    }

    static func context(_ frame: UnsafeMutablePointer<UInt64>) -> GuestExceptionContext {
        GuestExceptionContext(
            pc: frame[Frame.pc], pstate: frame[Frame.pstate], vbar: Virtualization.vectorBaseEL1,
            sctlr: Virtualization.systemControlEL1)
    }

    /// Enter the guest's own exception handler (its EL1 registers written
    /// here, its PC and PSTATE in the frame).
    static func inject(_ exception: InjectedException?, _ frame: UnsafeMutablePointer<UInt64>) {
        guard let e = exception else {
            panic("guest: cannot inject an exception (guest not in AArch64 EL0/EL1), PSTATE", frame[Frame.pstate])
        }
        Virtualization.setExceptionRegistersEL1(elr: e.elr, spsr: e.spsr, esr: e.esr, far: e.far)
        frame[Frame.pc] = e.pc
        frame[Frame.pstate] = e.pstate
    }

    /// `cmk: guest abort ipa=0x... pc=0x... read|write region=NAME`, for the
    /// first few refused accesses (every one is counted in the statistics).
    static func logRefusal(_ frame: UnsafeMutablePointer<UInt64>) {
        guard let r = GuestGlobals.vm.pointee.lastRefusal else { return }
        GuestGlobals.vm.pointee.lastRefusal = nil
        guard GuestGlobals.refusalsLogged < GuestGlobals.logLimit else { return }
        GuestGlobals.refusalsLogged += 1
        Console.begin()
        Console.put("cmk: guest abort ipa=")
        Console.hex(r.ipa)
        Console.put(" pc=")
        Console.hex(frame[Frame.pc])
        Console.put(r.isWrite ? " write" : " read")
        switch r.region {
        case .ram: Console.put(" region=ram")
        case .gicDistributor: Console.put(" region=gicd")
        case .gicRedistributor: Console.put(" region=gicr")
        case .uart: Console.put(" region=uart")
        case .unmapped: Console.put(" region=unmapped")
        }
        Console.put(" (external abort injected)")
        Console.end()
    }

    /// Physical interrupts while the guest runs (EOImode = 1: the priority
    /// drop first, then the deactivation for everything but the timer,
    /// which the guest deactivates through its hardware-linked LR).
    static func interrupts() {
        while true {
            let id = GICv3.acknowledge()
            if id >= 1020 { return }
            GICv3.endOfInterrupt(id)
            switch id {
            case GuestInterrupts.virtualTimer:
                GuestGlobals.vm.pointee.virtualTimerFired()
            case QemuVirt.uartInterrupt:
                // Routed to the owner's core: vCPU 0's machine has the UART.
                while let byte = PL011.read() { GuestGlobals.machine(0).pointee.consoleInput(byte) }
                GICv3.deactivate(id)
            default:
                // The maintenance interrupt and the doorbell only make the
                // exit: the list registers are synced and refilled, and the
                // rings pumped, on every exit.
                GICv3.deactivate(id)
            }
        }
    }

    /// The guest's console output (the owner's emulated UART) to the terminal.
    static func drainConsole() {
        guard GuestChannel.ownsDevices else { return }
        let owner = GuestGlobals.machine(0)
        guard owner.pointee.uart?.outputCount ?? 0 > 0 else { return }
        Console.guestOutput { sink in owner.pointee.uart?.drainOutput(sink) }
    }

    /// Cluster 0 (the caller holds the lock): the guest is over. Stop every
    /// other core of this cluster and every other cluster's vCPUs in order
    /// (each core reports; each cluster, once all its cores did, counts
    /// itself in `guestStopped`), report, and power the machine off.
    static func finish(_ reason: GuestStopReason) -> Never {
        let me = GuestGlobals.hereIndex
        // Another local core is finishing already: just stop.
        if GuestChannel.finishing { stopLocal(coreIndex: me) }
        GuestChannel.finishing = true
        drainConsole()
        GuestChannel.shutdownRequested = true
        for j in 0..<GuestGlobals.localCount { GuestChannel.kick(core: j) }
        var others: UInt64 = 0
        GuestChannel.forEachOtherCluster { c in
            GuestChannel.send(.shutdown(.powerOff), to: c)
            others += 1
        }
        let control = UnsafeMutableRawPointer(bitPattern: UInt(ClusterView.record[ClusterRecord.channelBase]))!
        let stopped = ChannelControl.counter(.guestStopped, control)
        let deadline = CPU.counter &+ 10 * CPU.counterFrequency
        // Acquiring: pairs with each cluster's releasing increment, so its
        // report lines are out before ours. The local cores need the lock
        // to report, so it is let go between polls.
        while stopped.pointee.load(ordering: .acquiring) < others
            || GuestChannel.localStopped < GuestGlobals.localCount - 1
        {
            GuestChannel.pump()
            drainConsole()
            GuestLock.release(core: me)
            CPU.relax()
            GuestLock.acquire(core: me)
            if CPU.counter > deadline {
                Console.begin()
                Console.put("cmk: guest: clusters did not report their stop; stopped=")
                Console.decimal(stopped.pointee.load(ordering: .acquiring))
                Console.put(" local=")
                Console.decimal(GuestChannel.localStopped)
                Console.end()
                break
            }
        }
        report(core: me)
        reportCluster()
        Console.begin()
        Console.put(reason == .powerOff ? "cmk: guest power off" : "cmk: guest reset")
        Console.end()
        PSCI.powerOff()
    }

    /// Core `core`'s vCPU: its statistics.
    static func report(core: Int) {
        GuestStatistics.report(
            GuestGlobals.machine(core).pointee.statistics, cluster: GuestGlobals.cluster,
            vcpu: GuestGlobals.firstVCPU + core, dropped: GuestGlobals.state(core).pointee.dropped)
    }

    /// The cluster's big-lock figures and isolation check.
    static func reportCluster() {
        GuestLock.report()
        GuestIsolation.check(ClusterView.record, report: true)
    }

    /// Not cluster 0 (lock held): wait, serving the channel, until cluster 0
    /// says stop.
    static func waitForShutdown() -> Never {
        let me = GuestGlobals.hereIndex
        let deadline = CPU.counter &+ 10 * CPU.counterFrequency
        while !GuestChannel.shutdownRequested {
            GuestChannel.pump()
            GuestLock.release(core: me)
            CPU.relax()
            GuestLock.acquire(core: me)
            if CPU.counter > deadline { panic("guest: cluster 0 never ended the guest") }
        }
        stopLocal(coreIndex: me)
    }

    /// Lock held: this core's vCPU stops for good. It reports; the last core
    /// of a cluster other than 0 reports the cluster and counts it stopped
    /// (cluster 0's `finish` does that for its own). Then idle.
    static func stopLocal(coreIndex: Int) -> Never {
        let here = GuestGlobals.state(coreIndex)
        if !here.pointee.stopped {
            here.pointee.stopped = true
            report(core: coreIndex)
            GuestChannel.localStopped += 1
            if GuestGlobals.cluster != 0 && GuestChannel.localStopped == GuestGlobals.localCount {
                reportCluster()
                let control = UnsafeMutableRawPointer(bitPattern: UInt(ClusterView.record[ClusterRecord.channelBase]))!
                // Releasing: our report lines happen-before cluster 0's acquiring load.
                ChannelControl.counter(.guestStopped, control).pointee.wrappingAdd(1, ordering: .releasing)
                ChannelBringUp.doorbell.ring(cluster: 0)
            }
        }
        GuestLock.release(core: coreIndex)
        idle()
    }
}

/// Lines `cmk: guest stats cluster=I vcpu=V kind=NAME exits=N us=T` (every
/// kind, in order) and `cmk: guest stats cluster=I vcpu=V refused=N aborts=N
/// undefined=N dropped=N` (dropped: guest messages the channel or this core
/// refused).
enum GuestStatistics {
    static func report(_ s: ExitStatistics, cluster: Int, vcpu: Int, dropped: UInt64) {
        let ticksPerMicrosecond = max(CPU.counterFrequency / 1_000_000, 1)
        for k in 0..<ExitKind.count {
            guard let kind = ExitKind(rawValue: k) else { continue }
            Console.begin()
            Console.put("cmk: guest stats cluster=")
            Console.decimal(cluster)
            Console.put(" vcpu=")
            Console.decimal(vcpu)
            Console.put(" kind=")
            Console.put(kind.name)
            Console.put(" exits=")
            Console.decimal(s.count(kind))
            Console.put(" us=")
            Console.decimal(s.ticks(kind) / ticksPerMicrosecond)
            Console.end()
        }
        Console.begin()
        Console.put("cmk: guest stats cluster=")
        Console.decimal(cluster)
        Console.put(" vcpu=")
        Console.decimal(vcpu)
        Console.put(" refused=")
        Console.decimal(s.refusedAccesses)
        Console.put(" aborts=")
        Console.decimal(s.injectedAborts)
        Console.put(" undefined=")
        Console.decimal(s.injectedUndefineds)
        Console.put(" dropped=")
        Console.decimal(dropped)
        Console.end()
    }
}
