import Arch
import ArchAsm
import Cluster
import InterKernel

/// The end of every failure: report, then end the run with a failure status.
///
/// QEMU is started with semihosting on, so the machine exits with status 1;
/// without it, PSCI SYSTEM_OFF powers off (status 0, but the report line
/// `cmk: panic` or `cmk: exception` tells `cmk boot` what happened).
enum Failure {
    /// Stop after a report. During the boot's channel phase a failure of a
    /// cluster's first core stops only that cluster (`ClusterFailures`);
    /// otherwise the machine.
    static func stop(_ reason: ClusterFailureReason = .panic, detail: UInt64 = 0) -> Never {
        ClusterFailures.stopAlone(reason, detail: detail)
        Semihosting.exit(status: 1)
        PSCI.powerOff()
    }
}

/// Who am I, for reports: core and cluster, or the loader.
enum Identity {
    /// The current core's CoreState, if it is mapped and looks sane.
    static var coreState: UnsafeMutablePointer<UInt64>? {
        let tpidr = CPU.tpidr
        guard tpidr >= Machine.privateBase, tpidr < Machine.privateBase + Machine.privateWindowSize,
            tpidr % 8 == 0
        else { return nil }
        return UnsafeMutablePointer(bitPattern: UInt(tpidr))
    }

    static func put() {
        if let state = coreState {
            Console.put("core=")
            Console.decimal(state[CoreState.coreId])
            Console.put(" cluster=")
            Console.decimal(state[CoreState.clusterId])
        } else {
            Console.put("core=0 cluster=- (loader)")
        }
    }
}

/// What a panic line ends with.
enum PanicDetail {
    case none
    case hex(UInt64)
    case decimal(Int)
}

/// Stop the machine with a message: `cmk: panic core=C cluster=K: message [detail]`.
func panic(_ message: StaticString, _ detail: PanicDetail = .none) -> Never {
    Console.beginUrgent()
    Console.put("cmk: panic ")
    Identity.put()
    Console.put(": ")
    Console.put(message)
    switch detail {
    case .none: break
    case .hex(let value):
        Console.put(" ")
        Console.hex(value)
    case .decimal(let value):
        Console.put(" ")
        Console.decimal(value)
    }
    Console.endUrgent()
    Failure.stop()
}

/// With an address or a register value, printed in hex.
func panic(_ message: StaticString, _ value: UInt64) -> Never { panic(message, .hex(value)) }

/// With a count or an id, printed in decimal.
func panic(_ message: StaticString, decimal value: Int) -> Never { panic(message, .decimal(value)) }

/// Fatal exceptions (vectors.S, on the emergency stack): print where and why,
/// then stop. Format (docs/boot.md):
/// `cmk: exception core=C cluster=K vector=... class=0xEC (name) esr=... far=... elr=... sp=...`
@_cdecl("cmk_fatal_exception")
func fatalException(_ frame: UnsafeMutablePointer<UInt64>, _ kind: UInt64) -> Never {
    let syndrome = Syndrome(frame[Int(CMK_FRAME_ESR)])
    let vector = VectorKind(kind)
    Console.beginUrgent()
    Console.put("cmk: exception ")
    Identity.put()
    Console.put(" vector=")
    Console.put(vector.source)
    Console.put(" ")
    Console.put(vector.type)
    Console.put(" class=")
    Console.hex(syndrome.exceptionClass)
    Console.put(" (")
    Console.put(syndrome.className)
    Console.put(") esr=")
    Console.hex(syndrome.value)
    Console.put(" far=")
    Console.hex(frame[Int(CMK_FRAME_FAR)])
    Console.put(" elr=")
    Console.hex(frame[Int(CMK_FRAME_ELR)])
    Console.put(" sp=")
    Console.hex(frame[Int(CMK_FRAME_SP)])
    Console.endUrgent()
    Failure.stop(.exception, detail: syndrome.value)
}

/// Non-fatal vectors: traps from a lower EL and interrupts. A user thread's
/// traps (kinds 8-11: lower EL, AArch64, on a core in `LowerEL.user`) go to
/// `UserRun.exit`; a guest's exits and the interrupts taken while it runs go
/// to `VCPURun.exit`; anything else is unexpected (the kernel runs with
/// interrupts masked) and reported like a fatal exception.
@_cdecl("cmk_trap")
func trap(_ frame: UnsafeMutablePointer<UInt64>, _ kind: UInt64) {
    if kind >> 2 == 2 {
        let state = UnsafeMutablePointer<UInt64>(bitPattern: UInt(CPU.tpidr))!
        let core = Int(state[CoreState.indexInCluster])
        if state[CoreState.lowerEL] == LowerEL.user {
            UserRun.exit(frame, kind: kind, core: core)
            return
        }
        if GuestGlobals.loadedHere {
            VCPURun.exit(frame, kind: kind, coreIndex: core)
            return
        }
    }
    fatalException(frame, kind)
}
