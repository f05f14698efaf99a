import Arch
import ArchAsm
import BigLock
import Cluster
import Kernel
import UserABI

/// Native user threads at EL0 on this core (docs/kernel/abi.md): entering
/// them, and every trap back from them.
///
/// seL4's hypervisor-mode model: HCR_EL2 native (TGE, DC, VM) while a user
/// thread runs, its VSpace in VTTBR_EL2 (VA = IPA), every exception and
/// interrupt comes to EL2 (`cmk_trap`, kinds 8-11 with
/// `CoreState.lowerEL == LowerEL.user`). A trap takes the cluster's big lock
/// first thing and releases it on the way out; in between the thread's
/// registers live in its TCB (`ClusterKernel.userContext`), and the frame at
/// the top of the kernel stack is rewritten with the registers of whatever
/// thread the kernel chose next.
enum UserRun {
    static var coreState: UnsafeMutablePointer<UInt64> {
        UnsafeMutablePointer<UInt64>(bitPattern: UInt(CPU.tpidr))!
    }

    /// PSTATE bits a user thread keeps across the kernel: N, Z, C, V
    /// (31-28), DIT (24), SSBS (12), BTYPE (11-10). Everything else (the
    /// mode and stack selection, DAIF, IL, SS, PAN, UAO) is the kernel's: 0.
    static let userPSTATEBits: UInt64 = 0xF100_1C00

    /// Exceptions from a user thread (ESR_EL2.EC).
    enum ExceptionClass {
        static let svc64: UInt64 = 0x15
        static let instructionAbortLower: UInt64 = 0x20
        static let dataAbortLower: UInt64 = 0x24
    }

    /// A trap from the user thread running on `core` (lock not held, or
    /// `locked`: the fastpath took it and gave up).
    static func exit(_ frame: UnsafeMutablePointer<UInt64>, kind: UInt64, core: Int, locked: Bool = false) {
        let kernel = KernelGlobals.kernelInPlace.pointee
        // Whether this trap waited for the lock (BenchmarkHold reports it;
        // never a fastpath call, so `locked` entries need not know).
        let waited = locked ? false : kernel.lock.acquire(core: core)
        // The thread that trapped is still this core's current unless another
        // core deleted it meanwhile (its registers are then discarded).
        let trapped = kernel.currentThread(core: core)
        if let t = trapped, t.pointee.boundVCPU == nil {
            let context = kernel.userContext(t)
            cmk_copy_frame(context, frame)
            t.pointee.threadPointer = cmk_read_tpidr_el0()
            switch kind & 3 {
            case 0:
                let esr = frame[Frame.esr]
                let ec = esr >> 26
                if ec == ExceptionClass.svc64 {
                    if context[UserABI.Register.number] == UserABI.debugPutChar {
                        DebugConsole.put(UInt8(truncatingIfNeeded: context[0]), core: core)
                        context[UserABI.Register.error] = 0
                    } else if context[UserABI.Register.number] == UserABI.debugCheckInvariants {
                        if let violation = kernel.checkInvariants() { panic(violation.message, UInt64(violation.address)) }
                        context[UserABI.Register.error] = 0
                    } else if context[UserABI.Register.number] == UserABI.benchmarkHold {
                        BenchmarkCall.hold(context, waited: waited)
                    } else {
                        kernel.userSyscall(core: core)
                        UserChannel.afterSyscall(kernel, core: core)
                    }
                } else if ec == ExceptionClass.dataAbortLower || ec == ExceptionClass.instructionAbortLower {
                    kernel.userFault(
                        .vmFault(address: frame[Frame.far], isInstruction: ec == ExceptionClass.instructionAbortLower, status: esr),
                        core: core)
                } else {
                    kernel.userFault(.userException(status: esr), core: core)
                }
            case 1, 2:
                interrupts(core: core, kernel)
            default:
                panic("user thread: SError, ESR", frame[Frame.esr])
            }
        } else if kind & 3 == 1 || kind & 3 == 2 {
            interrupts(core: core, kernel)
        }
        next(core: core, frame: frame, trapped: trapped, kernel)
        kernel.lock.release(core: core)
    }

    /// The Call/ReplyRecv fastpath (vectors.S `cmk_fastpath_entry`): the
    /// frame holds the thread's general registers only, its FP/SIMD
    /// registers are still live. Under the big lock (taken first thing,
    /// released on the way out, as every trap) the kernel's
    /// `userFastpath` either switches threads (`.switched`) or changes
    /// nothing (`.slowPath`: the lock stays held, the full path,
    /// `exit(locked: true)`, goes on under it; `.notUser`: not a user
    /// thread's core, no lock taken). On a switch the trapped thread's registers go
    /// into its user context (general ones from the frame, FP/SIMD ones
    /// from the registers) and the next thread's come out of its own, as
    /// `exit` and `next` would move them. Nothing here or in what it calls
    /// may use an FP/SIMD register (scripts/kernel-size.sh checks).
    @inline(__always)
    static func fastpath(_ frame: UnsafeMutablePointer<UInt64>) -> FastpathResult {
        let state = coreState
        guard state[CoreState.lowerEL] == LowerEL.user else { return .notUser }
        let core = Int(state[CoreState.indexInCluster])
        let kernel = KernelGlobals.kernelInPlace
        kernel.pointee.lock.acquire(core: core)
        guard let s = ClusterKernel.userFastpath(kernel, core: core, registers: frame) else { return .slowPath }
        let from = kernel.pointee.userContext(s.from)
        let to = kernel.pointee.userContext(s.to)
        s.from.pointee.threadPointer = cmk_read_tpidr_el0()
        cmk_write_tpidr_el0(s.to.pointee.threadPointer)
        // The message, then the next thread's registers with it in x0-x6
        // (the rest of x2-x5 are its own, as seL4's fastpath leaves them).
        let m0 = frame[2], m1 = frame[3], m2 = frame[4], m3 = frame[5]
        cmk_copy_general_registers(from, frame)
        cmk_fp_save(from + Int(CMK_FRAME_FP))
        cmk_copy_general_registers(frame, to)
        cmk_fp_load(to + Int(CMK_FRAME_FP))
        frame[0] = s.badge
        frame[1] = s.tag
        if s.length > 0 { frame[2] = m0 }
        if s.length > 1 { frame[3] = m1 }
        if s.length > 2 { frame[4] = m2 }
        if s.length > 3 { frame[5] = m3 }
        frame[UserABI.Register.error] = 0
        frame[Frame.pstate] &= UserRun.userPSTATEBits
        if let space = kernel.pointee.vspace(of: s.to) { Virtualization.nativeMode(vmid: space.vmid, root: space.root) }
        kernel.pointee.lock.release(core: core)
        return .switched
    }

    /// What `fastpath` did (vectors.S `cmk_fastpath_entry` reads the raw value).
    enum FastpathResult: UInt64 {
        case notUser = 0
        case switched = 1
        case slowPath = 2
    }

    /// The time slice's tick (seL4's default timer tick: 2 ms). A thread
    /// runs `defaultTimeSlice` ticks before its level's next thread.
    static var tickPeriod: UInt64 { max(CPU.counterFrequency / 500, 1) }

    /// Interrupts while a user thread runs: the tick (the EL2 physical
    /// timer, PPI 26: the kernel charges the current thread and may preempt
    /// it) and the doorbell SGI (another core asks this one to reschedule).
    static func interrupts(core: Int, _ kernel: ClusterKernel, first: UInt64? = nil) {
        var reschedule = false
        var taken = first
        while true {
            let id = taken ?? GICv3.acknowledge()
            taken = nil
            if id >= 1020 { break }
            GICv3.endOfInterrupt(id)
            if GICv3.eoiSplit { GICv3.deactivate(id) }
            if id == WakeTimer.interrupt {
                WakeTimer.disarm()
                coreState[CoreState.tickArmed] = 0
                coreState[CoreState.nextTick] = CPU.counter &+ tickPeriod
                kernel.timerTickLocked(core: core)
            } else if id == GICv3.doorbellSGI {
                reschedule = true
            } else {
                // A user's interrupt (its handler masks it until Ack), or a
                // stray one nobody enabled: dropped. The mask is applied
                // before the next acknowledge: a level interrupt still
                // asserted would otherwise be taken again at once, for ever.
                _ = kernel.handleInterruptLocked(id, core: core)
                UserIRQ.apply(kernel)
            }
        }
        if reschedule { kernel.rescheduleLocked(core: core) }
        UserIRQ.apply(kernel)
        UserChannel.serve(kernel, core: core)  // the first core: the channel's doorbell
    }

    /// Arm this core's tick for the thread about to run (its deadline is
    /// kept across entries, so a thread that enters the kernel often is
    /// charged all the same).
    static func armTick() {
        let now = CPU.counter
        if coreState[CoreState.nextTick] == 0 || coreState[CoreState.nextTick] <= now {
            coreState[CoreState.nextTick] = now &+ tickPeriod
        }
        // Already armed for that deadline: nothing to write.
        if coreState[CoreState.tickArmed] == coreState[CoreState.nextTick] { return }
        WakeTimer.arm(at: coreState[CoreState.nextTick])
        coreState[CoreState.tickArmed] = coreState[CoreState.nextTick]
    }

    /// This core stops running user threads: no more ticks.
    static func stopTicks() {
        WakeTimer.disarm()
        coreState[CoreState.nextTick] = 0
        coreState[CoreState.tickArmed] = 0
    }

    /// Lock held: carry out what the entry owes the hardware (TLB, other
    /// cores, a fault nobody handles), then load what `core` runs next. A
    /// user thread: its VSpace and registers (into `frame`; the caller
    /// returns and the trap path ERETs). A vCPU or nothing: never returns.
    /// `trapped`: the thread whose registers the frame holds (its
    /// floating-point registers are still the frame's: the kernel never
    /// changes them, so only the general registers are copied back when it
    /// runs on).
    static func next(core: Int, frame: UnsafeMutablePointer<UInt64>, trapped: TCBRef? = nil, _ kernel: ClusterKernel) {
        switch kernel.takeTLBFlush() {
        case .none: break
        case .page(let vmid, _), .vmid(let vmid): Virtualization.invalidateTLB(vmid: vmid)
        case .all: cmk_tlbi_vmalls12e1is()
        }
        ringRescheduled(kernel, except: core)
        UserIRQ.apply(kernel)
        while let (thread, fault) = kernel.takeUnhandledFault() { report(thread, fault) }
        if core == 0, RootTaskBringUp.running, kernel.rootThread.pointee.state == .inactive {
            // The root task is done with what the boot asked of it.
            RootTaskBringUp.running = false
            coreState[CoreState.lowerEL] = LowerEL.nothing
            stopTicks()
            kernel.lock.release(core: core)
            RootTaskBringUp.finished()
        }
        // A thread that cannot run at EL0 here faults instead, as its first
        // instruction would (seL4 runs a thread with no valid VSpace on the
        // kernel's empty one): no VSpace, or a vCPU thread the user made
        // (guests run only where the boot set one up). The fault goes to its
        // handler or stops it; either way it leaves this core, and the
        // kernel chooses again. A user can never stop the kernel this way.
        var chosen = kernel.prepareUserReturn(core: core)
        var space: (root: UInt64, vmid: UInt64)? = nil
        while let c = chosen {
            if c.pointee.boundVCPU != nil, GuestBringUp.isBootVCPUThread(c, core: core, kernel) {
                // The guest's vCPU for this core (core placement): the core
                // is the vCPU's from now on.
                coreState[CoreState.lowerEL] = LowerEL.nothing
                stopTicks()
                kernel.lock.release(core: core)
                GuestBringUp.secondary(coreIndex: core)
            }
            if c.pointee.boundVCPU == nil, let s = kernel.vspace(of: c) {
                space = s
                break
            }
            let pc = kernel.userContext(c)[Frame.pc]
            kernel.userFault(
                c.pointee.boundVCPU == nil
                    ? .vmFault(address: pc, isInstruction: true, status: 0) : .userException(status: 0),
                core: core)
            while let (thread, fault) = kernel.takeUnhandledFault() { report(thread, fault) }
            chosen = kernel.prepareUserReturn(core: core)
        }
        guard let t = chosen, let space else {
            coreState[CoreState.lowerEL] = LowerEL.nothing
            stopTicks()
            kernel.lock.release(core: core)
            idle(core: core)
        }
        Virtualization.nativeMode(vmid: space.vmid, root: space.root)
        let context = kernel.userContext(t)
        if t == trapped {
            cmk_copy_general_registers(frame, context)
        } else {
            cmk_copy_frame(frame, context)
            cmk_write_tpidr_el0(t.pointee.threadPointer)
        }
        // EL0t with interrupts unmasked, whatever the context says (a thread
        // never chooses its level or masks the kernel's interrupts); its
        // condition flags, BTYPE, SSBS and DIT are its own and stay. (Zeroing
        // all of PSTATE lost NZCV whenever an interrupt came between a
        // compare and its branch: a ping-pong check failed once in many
        // boots, the branch taken the wrong way.)
        frame[Frame.pstate] &= UserRun.userPSTATEBits
        coreState[CoreState.lowerEL] = LowerEL.user
        armTick()
    }

    /// Send the reschedule IPI to every other core of this cluster the
    /// kernel named.
    static func ringRescheduled(_ kernel: ClusterKernel, except me: Int) {
        var mask = kernel.takeRescheduleRequests()
        if mask == 0 { return }
        // The cluster's CoreState records are consecutive (PartitionLayout
        // .coreStateOffset): core j's is this core's moved by j - me.
        let mine = Int(bitPattern: UInt(CPU.tpidr))
        while mask != 0 {
            let j = mask.trailingZeroBitCount
            mask &= mask - 1
            guard j != me, j < kernel.cores else { continue }
            let peer = UnsafeMutablePointer<UInt64>(bitPattern: mine &+ (j &- me) &* CoreState.size)!
            GICv3.ring(mpidr: peer[CoreState.mpidr])
        }
    }

    /// Cores (bit: index in the cluster) whose tick PPI is enabled.
    /// Protected by the big lock.
    nonisolated(unsafe) static var tickEnabled: UInt64 = 0

    /// Start running user threads on `core` (lock not held): whatever its
    /// current thread is. Never returns.
    static func start(core: Int) -> Never {
        let kernel = KernelGlobals.kernel!
        kernel.lock.acquire(core: core)
        // The tick's PPI, once per core (every wake-up from `idle` comes here).
        if tickEnabled & (1 << UInt64(core)) == 0 {
            guard GICv3.enablePrivateInterrupt(WakeTimer.interrupt, priority: 0x80) else {
                panic("user thread: no redistributor for the tick")
            }
            tickEnabled |= 1 << UInt64(core)
        }
        let frame = VCPURun.frameAtStackTop
        next(core: core, frame: frame, kernel)
        kernel.lock.release(core: core)
        Virtualization.enter(frame: frame)
    }

    /// Nothing to run: sleep until an interrupt, then take what the kernel
    /// chose (a doorbell: another core woke one of our threads).
    static func idle(core: Int) -> Never {
        let kernel = KernelGlobals.kernel!
        stopTicks()
        while true {
            CPU.waitForInterrupt()
            // A wake-up with no interrupt does not take the big lock. The
            // doorbell or a user's interrupt may give this core a thread.
            let first = GICv3.acknowledge()
            if first >= 1020 { continue }
            kernel.lock.acquire(core: core)
            interrupts(core: core, kernel, first: first)  // with the channel, on the first core
            kernel.rescheduleLocked(core: core)
            let ready = kernel.currentThread(core: core) != nil
            kernel.lock.release(core: core)
            if ready { start(core: core) }
        }
    }

    /// `cmk: cluster I user fault ...` for a fault with no handler (the
    /// thread stopped).
    static func report(_ thread: TCBRef, _ fault: UserFault) {
        Console.begin()
        Console.put("cmk: cluster ")
        Console.decimal(ClusterView.record[ClusterRecord.clusterId])
        Console.put(" user fault thread=")
        Console.hex(UInt64(UInt(bitPattern: thread)))
        switch fault {
        case let .vmFault(address, isInstruction, status):
            Console.put(isInstruction ? " instruction" : " data")
            Console.put(" address=")
            Console.hex(address)
            Console.put(" esr=")
            Console.hex(status)
        case let .unknownSyscall(number):
            Console.put(" unknown-syscall=")
            Console.hex(number)
        case let .userException(status):
            Console.put(" exception esr=")
            Console.hex(status)
        }
        Console.put(" pc=")
        Console.hex(KernelGlobals.kernel!.userContext(thread)[Frame.pc])
        Console.put(" (no fault handler: stopped)")
        Console.end()
    }
}

@_cdecl("cmk_fastpath")
func fastpath(_ frame: UnsafeMutablePointer<UInt64>) -> UInt64 {
    UserRun.fastpath(frame).rawValue
}

/// The fastpath's checks failed with the lock held (vectors.S): the
/// ordinary `svc` trap from here on.
@_cdecl("cmk_fastpath_slow")
func fastpathSlow(_ frame: UnsafeMutablePointer<UInt64>) {
    UserRun.exit(frame, kind: 8, core: Int(UserRun.coreState[CoreState.indexInCluster]), locked: true)
}
