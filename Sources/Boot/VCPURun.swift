import Arch
import BigLock
import ArchAsm
import Cluster
import Kernel

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

/// The guest state of this cluster. Private to the cluster (.bss), touched
/// only under the cluster's big lock by the core that runs the guest.
enum GuestGlobals {
    /// The vCPU whose state is in this core's registers (nil: none).
    nonisolated(unsafe) static var loadedVCPU: VCPURef? = nil
    nonisolated(unsafe) static var guestRAM = Region(base: 0, size: 0)

    static func setUp(image: GuestImage) {
    }
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
        v.pointee.loaded = false
    }

    /// The top of this core's kernel stack, where every trap frame lands.
    static var frameAtStackTop: UnsafeMutablePointer<UInt64> {
        let state = UnsafeMutablePointer<UInt64>(bitPattern: UInt(CPU.tpidr))!
        let top = state[CoreState.kernelStackTop]
        return UnsafeMutablePointer<UInt64>(bitPattern: UInt(top) - UInt(Frame.bytes))!
    }

    /// Load `v`'s EL1 state into this core (saving the one loaded before).
    static func load(_ v: VCPURef) {
        if GuestGlobals.loadedVCPU == v { return }
        if let old = GuestGlobals.loadedVCPU {
            old.pointee.context.withUnsafeMutableWords { Virtualization.saveEL1($0 + Int(CMK_VCPU_EL1)) }
            old.pointee.loaded = false
        }
        v.pointee.context.withUnsafeMutableWords { Virtualization.restoreEL1($0 + Int(CMK_VCPU_EL1)) }
        v.pointee.loaded = true
        GuestGlobals.loadedVCPU = v
    }

    /// Run the thread the scheduler chose, if it is a vCPU: load its state
    /// and enter the guest. Never returns; exits arrive in `exit`.
    static func runCurrent(coreIndex: Int) -> Never {
        let kernel = KernelGlobals.kernel!
        kernel.lock.acquire(core: coreIndex)
        let thread = kernel.currentThread
        let vcpu = thread?.pointee.boundVCPU
        if let vcpu { load(vcpu) }
        kernel.lock.release(core: coreIndex)
        guard let vcpu else { panic("guest: the scheduler chose no vCPU thread") }
        let frame = frameAtStackTop
        vcpu.pointee.context.withUnsafeMutableWords { saved in
            for i in 0..<Frame.words { frame[i] = saved[Int(CMK_VCPU_FRAME) + i] }
        }
        Virtualization.enter(frame: frame)
    }

    /// Every trap from the guest, and every physical interrupt taken while
    /// it runs (cmk_trap, kinds 8-11). Under the cluster's big lock.
    static func exit(_ frame: UnsafeMutablePointer<UInt64>, kind: UInt64, coreIndex: Int) {
        let kernel = KernelGlobals.kernel!
        kernel.lock.acquire(core: coreIndex)
        switch kind & 3 {
        case 0: synchronous(frame)
        case 1, 2: interrupts()
        default:
            panic("guest: SError, ESR", frame[Frame.esr])
        }
        kernel.lock.release(core: coreIndex)
    }

    nonisolated(unsafe) static var traced = 0

    static func register(_ frame: UnsafeMutablePointer<UInt64>, _ r: Int) -> UInt64 { r == 31 ? 0 : frame[r] }
    static func setRegister(_ frame: UnsafeMutablePointer<UInt64>, _ r: Int, _ value: UInt64) { if r != 31 { frame[r] = value } }

    static func synchronous(_ frame: UnsafeMutablePointer<UInt64>) {
        let esr = frame[Frame.esr]
        let ec = (esr >> 26) & 0x3F
        switch ec {
        case 0x24:
            let ipa = ((Virtualization.faultIPAPage >> 4) << 12) | (frame[Frame.far] & 0xFFF)
            let write = esr & (1 << 6) != 0
            let rt = Int((esr >> 16) & 0x1F)
            if ipa & ~0xFFF == 0x0900_0000 {
                let off = ipa & 0xFFF
                if write { if off == 0 { PL011.write(UInt8(truncatingIfNeeded: register(frame, rt))) } }
                else { setRegister(frame, rt, off == 0x18 ? 0x90 : 0) }
            } else {
                trace("mmio", ipa, frame)
                if !write { setRegister(frame, rt, 0) }
            }
            frame[Frame.pc] &+= 4
        case 0x16:
            let f = frame[0]
            switch f {
            case 0x8400_0000: frame[0] = 0x10001
            case 0x8400_0006: frame[0] = 2
            case 0x8400_0008:
                Console.begin(); Console.put("cmk: guest power off"); Console.end()
                PSCI.powerOff()
            default: frame[0] = ~0
            }
        default:
            trace("sync", esr, frame)
            frame[Frame.pc] &+= 4
        }
    }

    static func trace(_ what: StaticString, _ v: UInt64, _ frame: UnsafeMutablePointer<UInt64>) {
        if traced > 40 { return }
        traced += 1
        Console.begin(); Console.put("cmk: trace "); Console.put(what); Console.put(" "); Console.hex(v)
        Console.put(" pc="); Console.hex(frame[Frame.pc]); Console.put(" esr="); Console.hex(frame[Frame.esr]); Console.end()
    }

    static func interrupts() {
        while true {
            let id = GICv3.acknowledge()
            if id >= 1020 { return }
            GICv3.endOfInterrupt(id)
            if id == GuestInterrupts.virtualTimer {
                Virtualization.setListRegister(0, (1 << 62) | (1 << 61) | (1 << 60) | (0xA0 << 48) | (27 << 32) | 27)
            } else {
                GICv3.deactivate(id)
            }
        }
    }
}
