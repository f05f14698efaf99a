import RootTaskSupport
import UserABI

/// The user-level system-call fuzzer (issue 10; docs/kernel/fuzz.md).
///
/// The root task makes a **fuzz thread** (priority 50, below the root
/// task's 255 and the ping-pong server's 100) in its own VSpace but with
/// its own 64-slot CSpace, so that whatever it does to capabilities it
/// cannot reach the root task's. The fuzz thread issues `calls` random
/// system calls from a deterministic PRNG (splitmix64, seeded with a
/// constant plus the cluster id) and asks the kernel to check its
/// invariants (`UserABI.debugCheckInvariants`) every `batch` calls.
///
/// Nothing the fuzz thread does may stop the run, so the root task serves
/// one endpoint, with three badges:
/// - 1: the fuzz thread's fault endpoint. UnknownSyscall faults are
///   answered (the thread goes on after its `svc`); any other fault
///   (VMFault, UserException) makes the root task rebuild the thread.
/// - 2: the endpoint the fuzz thread may Send/Call to; every message is
///   answered at once.
/// - 0 (unbadged): the **watchdog**, a thread at priority 10 that Calls
///   the root task in a loop. It runs only when the fuzz thread cannot
///   (blocked forever in a Recv, suspended itself, stopped by a fault no
///   handler took, moved to another core, lowered its priority), and the
///   root task then rebuilds the fuzz thread.
///
/// Rebuilding (`repair`) suspends the fuzz thread, revokes the pool
/// Untyped every object it made came from (so the threads, CNodes and
/// frames it made die with it), refills its CSpace's fixed slots, resets
/// its priority, affinity, CSpace, VSpace and IPC buffer and restarts it
/// at its entry. Its progress (PRNG state, counters) lives in the root
/// task's memory (`FuzzState`), so it continues where it was. The fuzz
/// thread asks for a rebuild after every batch (an UnknownSyscall with
/// `refreshNumber`), so a CSpace it wrecked lasts at most one batch.
enum Fuzz {
    static let batch: UInt64 = 500
    static let fuzzPriority: UInt64 = 50
    static let watchdogPriority: UInt64 = 10
    static let seedBase: UInt64 = 0x636D_6B5F_6675_7A7A  // "cmk_fuzz"
    /// The fuzz thread's IPC buffer (its own frame): after the server's.
    static let ipcBuffer: UInt64 = RootTaskLayout.bootInfo + 0x2000
    /// Stacks carved from the root task's 64 KiB stack (the root task
    /// itself uses its top 40 KiB): the watchdog's [0, 8K), the fuzz
    /// thread's [8K, 24K).
    static let watchdogStackTop: UInt64 = RootTaskLayout.stackBase + (8 << 10)
    static let fuzzStackTop: UInt64 = RootTaskLayout.stackBase + (24 << 10)
    /// Radix of the fuzz thread's CNode; its guard makes plain slot numbers
    /// valid CPtrs at depth 64.
    static let radix: UInt64 = 6
    static let guardData: UInt64 = 64 - radix  // guard size 58, guard 0
    static let poolBits: UInt64 = 17
    static let untypedBits: UInt64 = 16
    /// Badges of the root task's endpoint.
    static let watchdogBadge: UInt64 = 0
    static let faultBadge: UInt64 = 1
    static let requestBadge: UInt64 = 2
    /// Unknown system-call numbers the fuzz thread uses on purpose.
    static let refreshNumber: UInt64 = 0x1F0
    static let doneNumber: UInt64 = 0x1F1

    /// The fuzz thread's CSpace (slot numbers at depth 64).
    enum Slot {
        static let tcb: UInt64 = 1
        static let cnode: UInt64 = 2
        static let vspace: UInt64 = 3
        static let untyped: UInt64 = 4
        static let endpoint: UInt64 = 5
        static let faultEndpoint: UInt64 = 6
        static let notification: UInt64 = 7
        static let frame: UInt64 = 8
        static let pageTable: UInt64 = 9
        static let fixed: UInt64 = 9
        static let count: UInt64 = 1 << Fuzz.radix
    }
}

extension Fuzz {
    /// The root task's hook: run the fuzzer with the root-CNode slots from
    /// `nextSlot` on, print its line (or a failure).
    static func run(bootInfo: UnsafePointer<UInt64>, cluster: UInt64, nextSlot: UInt64) {
        var driver = FuzzDriver(bootInfo: bootInfo, cluster: cluster, nextSlot: nextSlot)
        if let (step, error) = driver.run() {
            Console.failure(cluster, "user fuzz FAILED step=", step: step, error: error)
        } else {
            driver.report()
        }
    }
}

/// Shared by the root task and the fuzz thread (one VSpace).
enum FuzzState {
    nonisolated(unsafe) static var rng: UInt64 = 0
    nonisolated(unsafe) static var target: UInt64 = 0
    nonisolated(unsafe) static var calls: UInt64 = 0
    nonisolated(unsafe) static var errors: UInt64 = 0
    nonisolated(unsafe) static var checkedAt: UInt64 = 0
    nonisolated(unsafe) static var refresh: UInt64 = 0
    nonisolated(unsafe) static var done: UInt64 = 0
}

/// The root task's side: set up, serve, rebuild, report.
struct FuzzDriver {
    let bootInfo: UnsafePointer<UInt64>
    let cluster: UInt64
    var nextSlot: UInt64
    // Root-CNode slots.
    var endpoint: UInt64 = 0, cnode: UInt64 = 0, tcb: UInt64 = 0, watchdog: UInt64 = 0, frame: UInt64 = 0, pool: UInt64 = 0
    var faults: UInt64 = 0, requests: UInt64 = 0, repairs: UInt64 = 0, stuck: UInt64 = 0
    /// Messages that brought capabilities (transferred or unwrapped).
    var transfers: UInt64 = 0
    var seed: UInt64 = 0

    init(bootInfo: UnsafePointer<UInt64>, cluster: UInt64, nextSlot: UInt64) {
        self.bootInfo = bootInfo
        self.cluster = cluster
        self.nextSlot = nextSlot
    }

    /// Retype one object from the first root Untyped with room, into a
    /// slot of the root CNode (`node` 0) or of the CNode in root slot `node`.
    func retype(_ type: ObjectType, bits: UInt64 = 0, node: UInt64 = 0, into slot: UInt64) -> UInt64 {
        let first = bootInfo[RootTaskBootInfo.firstUntyped]
        let count = bootInfo[RootTaskBootInfo.untypedCount]
        var error: UInt64 = 0xFFFF
        var u: UInt64 = 0
        while u < count {
            error = Kernel.invoke(first + u, .untypedRetype, length: 6, type.rawValue, bits, node, node == 0 ? 0 : 64, slot, 1,
                                  caps: 1, RootTaskSlot.cnode)
            if error == 0 { return 0 }
            u += 1
        }
        return error
    }

    /// nil, or the failed step and its error.
    mutating func run() -> (StaticString, UInt64)? {
        guard bootInfo[RootTaskBootInfo.freeSlotEnd] >= nextSlot + 6 else {
            return ("fuzz-slots", bootInfo[RootTaskBootInfo.freeSlotEnd])
        }
        endpoint = nextSlot; cnode = nextSlot + 1; tcb = nextSlot + 2
        watchdog = nextSlot + 3; frame = nextSlot + 4; pool = nextSlot + 5
        nextSlot += 6
        var e: UInt64
        e = retype(.endpoint, into: endpoint)
        if e != 0 { return ("fuzz-endpoint", e) }
        e = retype(.cnode, bits: Fuzz.radix, into: cnode)
        if e != 0 { return ("fuzz-cnode", e) }
        e = retype(.tcb, into: tcb)
        if e != 0 { return ("fuzz-tcb", e) }
        e = retype(.tcb, into: watchdog)
        if e != 0 { return ("fuzz-watchdog", e) }
        e = retype(.frame, into: frame)
        if e != 0 { return ("fuzz-frame", e) }
        e = retype(.untyped, bits: Fuzz.poolBits, into: pool)
        if e != 0 { return ("fuzz-pool", e) }
        e = Kernel.mapFrame(frame, at: Fuzz.ipcBuffer, rights: PingPong.readWrite, attributes: PingPong.cacheableNoExecute)
        if e != 0 { return ("fuzz-map-ipc-buffer", e) }

        // The watchdog: the root task's CSpace and VSpace, no IPC buffer.
        let dog = NewThread(
            tcb: watchdog, pc: Self.entry(cmk_fuzz_watchdog), sp: Fuzz.watchdogStackTop, x0: endpoint,
            priority: Fuzz.watchdogPriority)
        if let failure = dog.start() { return failure }  // the watchdog's step: set-space, ...

        seed = Fuzz.seedBase &+ cluster
        FuzzState.rng = seed
        FuzzState.target = bootInfo[RootTaskBootInfo.fuzzCalls]
        FuzzState.calls = 0
        FuzzState.errors = 0
        FuzzState.checkedAt = 0
        FuzzState.refresh = 0
        FuzzState.done = 0
        if !repair() { return ("fuzz-start", 0) }

        // Serve until the fuzz thread is done.
        var r = Kernel.syscall(.recv, endpoint, 0)
        var failedReceives = 0
        while true {
            if r.x6 != 0 {
                failedReceives += 1
                if failedReceives > 8 { return ("fuzz-recv", r.x6) }
                r = Kernel.syscall(.recv, endpoint, 0)
                continue
            }
            failedReceives = 0
            if FuzzState.done != 0 { break }
            let badge = r.x0
            let label = MessageTag(word: r.x1).label
            var answer = true
            if FuzzState.refresh != 0 {
                FuzzState.refresh = 0
                _ = repair()
                answer = badge == Fuzz.watchdogBadge
            } else if badge == Fuzz.watchdogBadge {
                stuck += 1
                _ = repair()
            } else if badge == Fuzz.faultBadge {
                faults += 1
                if label != 2 {  // not UnknownSyscall: rebuild the thread
                    _ = repair()
                    answer = false
                }
            } else {
                requests += 1
                let tag = MessageTag(word: r.x1)
                if tag.extraCaps != 0 || tag.capsUnwrapped != 0 { transfers += 1 }
            }
            let empty = MessageTag(label: 0, length: 0).word
            acceptCapabilities()
            r = answer ? Kernel.syscall(.replyRecv, endpoint, empty) : Kernel.syscall(.recv, endpoint, 0)
        }

        Kernel.ipcWord(RootTaskLayout.ipcBuffer, UserABI.IPCBuffer.receiveDepth).pointee = 0
        // Stop both threads and every object the fuzz thread made.
        _ = Kernel.invoke(tcb, .tcbSuspend, length: 0)
        _ = Kernel.invoke(watchdog, .tcbSuspend, length: 0)
        _ = Kernel.invoke(RootTaskSlot.cnode, .cnodeRevoke, length: 2, pool, 64)
        _ = cmk_syscall(UserABI.debugCheckInvariants, 0, 0, 0, 0, 0, 0)
        return nil
    }

    /// The line `cmk: cluster I user fuzz calls=N errors=E faults=F seed=S ok`.
    func report() {
        Console.put("cmk: cluster ")
        Console.put(decimal: cluster)
        Console.put(" user fuzz calls=")
        Console.put(decimal: FuzzState.calls)
        Console.put(" errors=")
        Console.put(decimal: FuzzState.errors)
        Console.put(" faults=")
        Console.put(decimal: faults)
        Console.put(" seed=")
        Console.put(decimal: seed)
        Console.put(" ok")
        cmk_debug_put_char(10)
        Console.put("cmk: cluster ")
        Console.put(decimal: cluster)
        Console.put(" user fuzz detail requests=")
        Console.put(decimal: requests)
        Console.put(" rebuilds=")
        Console.put(decimal: repairs)
        Console.put(" stuck=")
        Console.put(decimal: stuck)
        Console.put(" transfers=")
        Console.put(decimal: transfers)
        cmk_debug_put_char(10)
    }

    /// Capabilities the fuzz thread sends with its messages land in its own
    /// CNode, in a slot after the fixed ones (often full: then none is
    /// transferred); badged copies of this endpoint arrive unwrapped.
    func acceptCapabilities() {
        let index = Fuzz.Slot.fixed + 1 + (requests &* 7 &+ faults &* 3 &+ stuck) % (Fuzz.Slot.count - Fuzz.Slot.fixed - 1)
        Kernel.ipcWord(RootTaskLayout.ipcBuffer, UserABI.IPCBuffer.receiveCNode).pointee = cnode
        Kernel.ipcWord(RootTaskLayout.ipcBuffer, UserABI.IPCBuffer.receiveIndex).pointee = index
        Kernel.ipcWord(RootTaskLayout.ipcBuffer, UserABI.IPCBuffer.receiveDepth).pointee = Fuzz.radix
    }

    static func entry(_ f: @convention(c) (UInt64) -> Void) -> UInt64 {
        UInt64(UInt(bitPattern: unsafeBitCast(f, to: UnsafeRawPointer.self)))
    }

    /// (Re)build the fuzz thread and start it at its entry. Errors are
    /// ignored but the last: true if the thread was restarted.
    mutating func repair() -> Bool {
        repairs += 1
        _ = Kernel.invoke(tcb, .tcbSuspend, length: 0)
        _ = Kernel.invoke(RootTaskSlot.cnode, .cnodeRevoke, length: 2, pool, 64)
        var s: UInt64 = 1
        while s <= Fuzz.Slot.fixed {
            _ = Kernel.invoke(cnode, .cnodeDelete, length: 2, s, Fuzz.radix)
            s += 1
        }
        let all = PingPong.allRights
        _ = Kernel.invoke(cnode, .cnodeMint, length: 6, Fuzz.Slot.tcb, Fuzz.radix, tcb, 64, all, 0, caps: 1, RootTaskSlot.cnode)
        _ = Kernel.invoke(cnode, .cnodeMint, length: 6, Fuzz.Slot.cnode, Fuzz.radix, cnode, 64, all, Fuzz.guardData,
                          caps: 1, RootTaskSlot.cnode)
        _ = Kernel.invoke(cnode, .cnodeMint, length: 6, Fuzz.Slot.vspace, Fuzz.radix, RootTaskSlot.vspace, 64, all, 0,
                          caps: 1, RootTaskSlot.cnode)
        _ = Kernel.invoke(cnode, .cnodeMint, length: 6, Fuzz.Slot.endpoint, Fuzz.radix, endpoint, 64, all, Fuzz.requestBadge,
                          caps: 1, RootTaskSlot.cnode)
        _ = Kernel.invoke(cnode, .cnodeMint, length: 6, Fuzz.Slot.faultEndpoint, Fuzz.radix, endpoint, 64, all, Fuzz.faultBadge,
                          caps: 1, RootTaskSlot.cnode)
        func fromPool(_ type: ObjectType, _ bits: UInt64, _ slot: UInt64) {
            _ = Kernel.invoke(pool, .untypedRetype, length: 6, type.rawValue, bits, cnode, 64, slot, 1, caps: 1, RootTaskSlot.cnode)
        }
        fromPool(.untyped, Fuzz.untypedBits, Fuzz.Slot.untyped)
        fromPool(.notification, 0, Fuzz.Slot.notification)
        fromPool(.frame, 0, Fuzz.Slot.frame)
        fromPool(.pageTable, 0, Fuzz.Slot.pageTable)

        _ = Kernel.invoke(tcb, .tcbSetAffinity, length: 1, 0)
        _ = Kernel.invoke(tcb, .tcbSetPriority, length: 2, Fuzz.fuzzPriority, Fuzz.fuzzPriority)
        _ = Kernel.invoke(tcb, .tcbUnbindNotification, length: 0)
        _ = Kernel.invoke(tcb, .tcbSetSpace, length: 2, Fuzz.Slot.faultEndpoint, Fuzz.guardData, caps: 2, cnode, RootTaskSlot.vspace)
        _ = Kernel.setIPCBuffer(tcb, vaddr: Fuzz.ipcBuffer, frame: frame)
        let e = Kernel.invoke(tcb, .tcbWriteRegisters, length: 5, 1, 3, Self.entry(cmk_fuzz_thread), Fuzz.fuzzStackTop, 0)
        return e == 0
    }
}

/// The watchdog thread: x0 = the root task's unbadged endpoint.
@_cdecl("cmk_fuzz_watchdog")
public func cmk_fuzz_watchdog(_ endpoint: UInt64) {
    while true { _ = Kernel.syscall(.call, endpoint, 0) }
}

/// The fuzz thread (docs/kernel/fuzz.md): entered, and re-entered after
/// every rebuild, with its state in `FuzzState`.
@_cdecl("cmk_fuzz_thread")
public func cmk_fuzz_thread(_ unused: UInt64) {
    while true {
        if FuzzState.calls >= FuzzState.target {
            FuzzState.done = 1
            _ = Kernel.syscall(.call, Fuzz.Slot.endpoint, 0)
            // The endpoint is gone: fault until someone notices.
            while true { _ = cmk_syscall(Fuzz.doneNumber, 0, 0, 0, 0, 0, 0) }
        }
        if FuzzState.calls % Fuzz.batch == 0 && FuzzState.calls != FuzzState.checkedAt {
            FuzzState.checkedAt = FuzzState.calls
            _ = cmk_syscall(UserABI.debugCheckInvariants, 0, 0, 0, 0, 0, 0)
            FuzzState.refresh = 1
            _ = cmk_syscall(Fuzz.refreshNumber, 0, 0, 0, 0, 0, 0)
            continue
        }
        FuzzCall.one()
    }
}

/// One random system call.
enum FuzzCall {
    static func next() -> UInt64 {
        FuzzState.rng = FuzzState.rng &+ 0x9E37_79B9_7F4A_7C15
        var z = FuzzState.rng
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    static func below(_ n: UInt64) -> UInt64 { next() % n }
    static func chance(_ percent: UInt64) -> Bool { below(100) < percent }

    /// A word: small, huge, a power of two, near the top, a slot number.
    static func word() -> UInt64 {
        switch below(10) {
        case 0, 1, 2: return below(70)
        case 3, 4: return next()
        case 5: return 1 << below(64)
        case 6: return ~0 &- below(4)
        case 7: return (1 << below(64)) &- 1
        default: return below(Fuzz.Slot.count)
        }
    }

    /// A capability address: mostly slots of the fuzz CSpace (`likely` if
    /// it names one), else empty, out of range, or with garbage high bits.
    static func cptr(_ likely: UInt64 = 0) -> UInt64 {
        let r = below(100)
        if likely != 0 && r < 55 { return likely }
        if r < 75 { return below(Fuzz.Slot.count) }
        if r < 85 { return 1 + below(Fuzz.Slot.fixed) }
        if r < 93 { return Fuzz.Slot.count + below(4096) }
        return next() | below(Fuzz.Slot.count)
    }

    static func depth() -> UInt64 {
        switch below(8) {
        case 0, 1, 2, 3: return 64
        case 4: return Fuzz.radix
        case 5: return below(70)
        case 6: return 0
        default: return next()
        }
    }

    /// A virtual address for Map or SetIPCBuffer.
    static func vaddr(granule: UInt64) -> UInt64 {
        switch below(12) {
        case 0, 1: return 0x80_4000 + below(0xFC) * 0x1000  // free pages near the IPC buffers
        case 2: return RootTaskLayout.imageBase + below(0x400) * 0x1000  // occupied
        case 3: return below(1 << 39) & ~(granule - 1)
        case 4: return (1 << 39) - (1 << 30) + below(1 << 30) & ~(granule - 1)  // the reserved top GiB
        case 5: return next()  // anywhere, unaligned
        case 6: return below(1 << 30) | (1 + below(granule - 1))  // unaligned
        case 7: return 0
        case 8: return 1 << below(64)
        case 9: return below(512) << 21
        case 10: return Fuzz.ipcBuffer
        default: return (1 << 39) + below(1 << 20) * granule
        }
    }

    static func one() {
        FuzzState.calls += 1
        let buffer = Fuzz.ipcBuffer
        // The syscall number: mostly valid, some unknown (UnknownSyscall).
        let n = below(100)
        var number: UInt64
        if n < 42 { number = UInt64(Syscall.call.rawValue) }
        else if n < 52 { number = UInt64(Syscall.nbSend.rawValue) }
        else if n < 62 { number = UInt64(Syscall.nbRecv.rawValue) }
        else if n < 67 { number = UInt64(Syscall.send.rawValue) }
        else if n < 71 { number = UInt64(Syscall.recv.rawValue) }
        else if n < 76 { number = UInt64(Syscall.reply.rawValue) }
        else if n < 80 { number = UInt64(Syscall.replyRecv.rawValue) }
        else if n < 88 { number = UInt64(Syscall.yield.rawValue) }
        // Now and then the benchmark call (x0 = the CPtr word: mostly a
        // small count, sometimes above its limit: refused).
        else if n < 94 { number = chance(10) ? UserABI.benchmarkHold : 8 + below(0xF8) }
        else { number = next() }
        if number == UserABI.debugPutChar || number == UserABI.debugCheckInvariants { number = UInt64(Syscall.yield.rawValue) }

        // The label: a method (mostly), small, or anything.
        let maxLabel = InvocationLabel.tcbReadRegisters.rawValue
        let l = below(100)
        let label = l < 70 ? 1 + below(maxLabel) : l < 90 ? below(41) : next() >> 12
        var m = InlineArray<8, UInt64>(repeating: 0)
        for i in 0..<8 { m[i] = word() }
        var caps = InlineArray<3, UInt64>(repeating: 0)
        for i in 0..<3 { caps[i] = cptr() }
        var length = 6
        var extraCaps = Int(below(4))
        var target = cptr()

        if number == UInt64(Syscall.call.rawValue), let method = InvocationLabel(rawValue: label) {
            switch method {
            case .untypedRetype:
                target = cptr(Fuzz.Slot.untyped)
                m[0] = chance(80) ? below(9) : word()
                m[1] = chance(80) ? below(24) : word()
                if chance(60) { m[2] = 0; m[3] = 0 } else { m[2] = cptr(Fuzz.Slot.cnode); m[3] = depth() }
                m[4] = chance(70) ? 1 + Fuzz.Slot.fixed + below(Fuzz.Slot.count - 1 - Fuzz.Slot.fixed) : below(70)
                m[5] = chance(80) ? 1 + below(3) : word()
                caps[0] = cptr(Fuzz.Slot.cnode)
                extraCaps = chance(85) ? 1 : Int(below(4))
            case .cnodeRevoke, .cnodeDelete, .cnodeCopy, .cnodeMint, .cnodeMove, .cnodeMutate:
                target = cptr(Fuzz.Slot.cnode)
                // Copy/Mint/Move/Mutate succeed from a full slot into an empty one.
                let copying = method != .cnodeRevoke && method != .cnodeDelete
                m[0] = chance(85) ? (copying && chance(70) ? 1 + Fuzz.Slot.fixed + below(Fuzz.Slot.count - 1 - Fuzz.Slot.fixed)
                    : below(Fuzz.Slot.count)) : word()
                m[1] = chance(70) ? 64 : depth()
                m[2] = chance(85) ? (chance(60) ? 1 + below(Fuzz.Slot.fixed) : below(Fuzz.Slot.count)) : word()
                m[3] = chance(70) ? 64 : depth()
                m[4] = chance(80) ? below(16) : word()
                m[5] = chance(50) ? 0 : chance(50) ? Fuzz.guardData : word()
                caps[0] = cptr(Fuzz.Slot.cnode)
                extraCaps = chance(85) ? 1 : Int(below(4))
                length = chance(80) ? 6 : Int(below(9))
            case .tcbConfigure, .tcbSetSpace:
                target = cptr(Fuzz.Slot.tcb)
                m[0] = chance(50) ? Fuzz.guardData : word()
                m[1] = chance(50) ? Fuzz.guardData : word()
                if method == .tcbSetSpace { m[0] = cptr(Fuzz.Slot.faultEndpoint) }
                caps[0] = cptr(Fuzz.Slot.cnode)
                caps[1] = cptr(Fuzz.Slot.vspace)
                extraCaps = chance(85) ? (method == .tcbSetSpace ? 2 : 1) : Int(below(4))
                length = chance(80) ? 2 : Int(below(9))
            case .tcbSetPriority, .tcbSetAffinity, .tcbResume, .tcbSuspend, .tcbReadRegisters, .tcbUnbindNotification:
                target = cptr(Fuzz.Slot.tcb)
                m[0] = chance(70) ? below(64) : word()
                m[1] = chance(70) ? below(64) : word()
                if method == .tcbSetAffinity { m[0] = chance(80) ? below(5) : word() }
                length = Int(below(3))
            case .tcbBindNotification:
                target = cptr(Fuzz.Slot.tcb)
                caps[0] = cptr(Fuzz.Slot.notification)
                extraCaps = chance(85) ? 1 : Int(below(4))
            case .tcbSetIPCBuffer:
                target = cptr(Fuzz.Slot.tcb)
                m[0] = chance(80) ? vaddr(granule: 512) : word()
                caps[0] = cptr(Fuzz.Slot.frame)
                extraCaps = chance(80) ? 1 : Int(below(4))
                length = chance(80) ? 1 : Int(below(9))
            case .tcbWriteRegisters:
                // Its own TCB is refused (current); TCBs it made are not.
                target = chance(50) ? cptr(Fuzz.Slot.tcb) : below(Fuzz.Slot.count)
                m[0] = below(2)
                m[1] = chance(80) ? below(9) : word()
                length = chance(80) ? Int(min(2 + m[1], 8)) : Int(below(9))
            case .frameMap, .frameUnmap, .frameGetAddress:
                target = cptr(Fuzz.Slot.frame)
                m[0] = vaddr(granule: 0x1000)
                m[1] = chance(80) ? below(16) : word()
                m[2] = chance(80) ? below(8) : word()
                caps[0] = cptr(Fuzz.Slot.vspace)
                extraCaps = chance(85) ? 1 : Int(below(4))
                length = chance(80) ? 3 : Int(below(9))
            case .pageTableMap, .pageTableUnmap:
                target = cptr(Fuzz.Slot.pageTable)
                m[0] = vaddr(granule: 2 << 20)
                m[1] = chance(80) ? below(8) : word()
                caps[0] = cptr(Fuzz.Slot.vspace)
                extraCaps = chance(85) ? 1 : Int(below(4))
                length = chance(80) ? 2 : Int(below(9))
            default:
                target = cptr()
            }
        } else if number <= UInt64(Syscall.yield.rawValue) {
            // Send/Recv-like: the served endpoint, the fault endpoint, the notification, or anything.
            switch below(5) {
            case 0: target = Fuzz.Slot.endpoint
            case 1: target = Fuzz.Slot.notification
            case 2: target = Fuzz.Slot.faultEndpoint
            default: target = cptr()
            }
            length = Int(below(9))
        }
        // Bad lengths and capability counts, now and then.
        if chance(10) { length = Int(below(128)) }
        if chance(5) { extraCaps = Int(below(4)) }
        let unwrapped = UInt8(chance(90) ? 0 : below(8))
        let tag = MessageTag(label: label, length: length, extraCaps: extraCaps, capsUnwrapped: unwrapped).word
        let tagWord = chance(3) ? next() : tag

        // The IPC buffer: MR4-7, the extra capabilities, the receive slot.
        for i in 4..<8 { Kernel.ipcWord(buffer, UserABI.IPCBuffer.message + i).pointee = m[i] }
        for i in 0..<3 { Kernel.ipcWord(buffer, UserABI.IPCBuffer.caps + i).pointee = caps[i] }
        Kernel.ipcWord(buffer, UserABI.IPCBuffer.receiveCNode).pointee = cptr(Fuzz.Slot.cnode)
        Kernel.ipcWord(buffer, UserABI.IPCBuffer.receiveIndex).pointee = chance(80) ? below(Fuzz.Slot.count) : word()
        Kernel.ipcWord(buffer, UserABI.IPCBuffer.receiveDepth).pointee = chance(60) ? 64 : depth()
        if chance(5) { Kernel.ipcWord(buffer, UserABI.IPCBuffer.tag).pointee = next() }

        let r = cmk_syscall(number, target, tagWord, m[0], m[1], m[2], m[3])
        if r.x6 != 0 { FuzzState.errors += 1 }
    }
}
