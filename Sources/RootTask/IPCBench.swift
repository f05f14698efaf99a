import RootTaskSupport
import UserABI

/// `cmk bench ipc --qemu` (docs/bench-ipc.md): one-way IPC counted by the
/// PMU in the real kernel, from user level. Runs when the boot information's
/// `benchmark` word is not 0 (Boot fills it in cluster 0 from the host's
/// `ExperimentRequest.ipcBench`); that word is the round trips.
///
/// A server thread in the root task's VSpace and CSpace, at the root
/// task's own priority (so `Call` and `ReplyRecv` switch directly), answers
/// every `Call` on an endpoint. The client is the root thread.
///
/// - same core: both on core 0; the client reads core 0's instructions and
///   cycles before and after N round trips.
/// - cross core: the server moved to core 1 (TCB SetAffinity); every IPC
///   wakes the other core through the kernel's reschedule IPI. Both cores
///   count: the server reads core 1's counters when told to begin and to
///   end, and sends its differences in the last reply.
/// - null syscall: N `Yield`s on core 0 with nothing else to run, for
///   comparison (the cost of entering and leaving the kernel).
///
/// Lines (totals; the host divides by 2N for one-way IPC):
///   `cmk: cluster 0 user ipc bench same-core roundtrips=N instructions=I cycles=C`
///   `cmk: cluster 0 user ipc bench cross-core roundtrips=N instructions=I cycles=C client=A server=B`
///   (I = A + B: each core's own counter, as on hardware; under QEMU the
///   counter is the whole machine's, and the host takes A, docs/bench-ipc.md)
///   `cmk: cluster 0 user ipc bench null-syscall calls=N instructions=I cycles=C`
/// or `... cross-core skipped cores=1`, or `cmk: cluster I user ipc bench FAILED step=S error=E`.
struct IPCBench {
    static let warmUp: UInt64 = 100
    /// The server's IPC buffer (page tables for 0x800000 exist already).
    static let serverIPCBuffer: UInt64 = RootTaskLayout.bootInfo + 0x7000
    /// Control labels of the Call: measured round trips carry label 0.
    static let begin: UInt64 = 1
    static let end: UInt64 = 2

    let bootInfo: UnsafePointer<UInt64>
    let cluster: UInt64
    let roundTrips: UInt64
    var nextSlot: UInt64

    /// Run it all and print the lines; a failure prints its step.
    static func run(bootInfo: UnsafePointer<UInt64>, cluster: UInt64, firstSlot: UInt64) {
        var bench = IPCBench(
            bootInfo: bootInfo, cluster: cluster, roundTrips: bootInfo[RootTaskBootInfo.benchmark], nextSlot: firstSlot)
        if let (step, error) = bench.measure() { Console.failure(cluster, "user ipc bench FAILED step=", step: step, error: error) }
    }

    /// The 32-bit event counter's difference.
    static func instructions(from a: UInt64, to b: UInt64) -> UInt64 { (b &- a) & 0xFFFF_FFFF }

    mutating func measure() -> (StaticString, UInt64)? {
        guard bootInfo[RootTaskBootInfo.freeSlotEnd] >= nextSlot + 3 else {
            return ("bench-slots", bootInfo[RootTaskBootInfo.freeSlotEnd])
        }
        let endpoint = nextSlot, tcb = nextSlot + 1, frame = nextSlot + 2
        nextSlot += 3
        let pingPong = PingPong(bootInfo: bootInfo, cluster: cluster)
        var e: UInt64
        e = pingPong.retype(.endpoint, into: endpoint)
        if e != 0 { return ("bench-retype-endpoint", e) }
        e = pingPong.retype(.tcb, into: tcb)
        if e != 0 { return ("bench-retype-tcb", e) }
        e = pingPong.retype(.frame, into: frame)
        if e != 0 { return ("bench-retype-frame", e) }
        e = Kernel.mapFrame(frame, at: Self.serverIPCBuffer, rights: PingPong.readWrite, attributes: PingPong.cacheableNoExecute)
        if e != 0 { return ("bench-map-ipc-buffer", e) }
        // The root task's own priority (seL4's root task: 255).
        let server = NewThread(
            tcb: tcb, pc: cmk_bench_server_entry(), sp: cmk_bench_server_stack_top(), x0: endpoint, priority: 255,
            ipcBuffer: (Self.serverIPCBuffer, frame))
        if let failure = server.start() { return failure }

        // Same core.
        if let failure = warm(endpoint) { return failure }
        var i0 = cmk_pmu_instructions(), c0 = cmk_pmu_cycles()
        if let failure = loop(endpoint) { return failure }
        var i1 = cmk_pmu_instructions(), c1 = cmk_pmu_cycles()
        report("same-core roundtrips=", roundTrips, Self.instructions(from: i0, to: i1), c1 &- c0)

        // Null system call: Yield with nothing else ready on this core.
        i0 = cmk_pmu_instructions()
        c0 = cmk_pmu_cycles()
        var k: UInt64 = 0
        while k < roundTrips {
            _ = Kernel.syscall(.yield, 0, 0)
            k += 1
        }
        i1 = cmk_pmu_instructions()
        c1 = cmk_pmu_cycles()
        report("null-syscall calls=", roundTrips, Self.instructions(from: i0, to: i1), c1 &- c0)

        // Cross core: the server (blocked in Recv) moves to core 1.
        guard bootInfo[RootTaskBootInfo.cores] >= 2 else {
            Console.put("cmk: cluster ")
            Console.put(decimal: cluster)
            Console.put(" user ipc bench cross-core skipped cores=")
            Console.put(decimal: bootInfo[RootTaskBootInfo.cores])
            cmk_debug_put_char(10)
            return nil
        }
        e = Kernel.invoke(tcb, .tcbSetAffinity, length: 1, 1)
        if e != 0 { return ("bench-set-affinity", e) }
        if let failure = warm(endpoint) { return failure }
        var r = Kernel.syscall(.call, endpoint, MessageTag(label: Self.begin, length: 0).word)
        if r.x6 != 0 { return ("bench-begin", r.x6) }
        i0 = cmk_pmu_instructions()
        c0 = cmk_pmu_cycles()
        if let failure = loop(endpoint) { return failure }
        i1 = cmk_pmu_instructions()
        c1 = cmk_pmu_cycles()
        r = Kernel.syscall(.call, endpoint, MessageTag(label: Self.end, length: 0).word)
        if r.x6 != 0 { return ("bench-end", r.x6) }
        if MessageTag(word: r.x1).length < 2 { return ("bench-end-reply", r.x1) }
        let client = Self.instructions(from: i0, to: i1)
        report("cross-core roundtrips=", roundTrips, client &+ r.x2, c1 &- c0, newline: false)
        Console.put(" client=")
        Console.put(decimal: client)
        Console.put(" server=")
        Console.put(decimal: r.x2)
        cmk_debug_put_char(10)
        return nil
    }

    /// `warmUp` round trips, answers checked.
    func warm(_ endpoint: UInt64) -> (StaticString, UInt64)? {
        let tag = MessageTag(label: 0, length: 1).word
        var i: UInt64 = 0
        while i < Self.warmUp {
            let r = Kernel.syscall(.call, endpoint, tag, i)
            if r.x6 != 0 { return ("bench-warm-up", r.x6) }
            if r.x2 != i &+ 1 { return ("bench-warm-up-reply", r.x2) }
            i += 1
        }
        return nil
    }

    /// The measured loop: one-word Calls, only the error checked.
    func loop(_ endpoint: UInt64) -> (StaticString, UInt64)? {
        let tag = MessageTag(label: 0, length: 1).word
        var i: UInt64 = 0
        while i < roundTrips {
            let r = Kernel.syscall(.call, endpoint, tag, i)
            if r.x6 != 0 { return ("bench-call", r.x6) }
            i += 1
        }
        return nil
    }

    func report(_ what: StaticString, _ n: UInt64, _ instructions: UInt64, _ cycles: UInt64, newline: Bool = true) {
        Console.put("cmk: cluster ")
        Console.put(decimal: cluster)
        Console.put(" user ipc bench ")
        Console.put(what)
        Console.put(decimal: n)
        Console.put(" instructions=")
        Console.put(decimal: instructions)
        Console.put(" cycles=")
        Console.put(decimal: cycles)
        if newline { cmk_debug_put_char(10) }
    }
}

/// The benchmark's server: entered with x0 = its endpoint. Answers label 0
/// with MR0 + 1; `begin` (reads this core's counters) and `end` (answers
/// the instructions and cycles since `begin` in MR0 and MR1) with length 2.
@_cdecl("cmk_bench_server")
public func benchServer(_ endpoint: UInt64) {
    var i0: UInt64 = 0, c0: UInt64 = 0
    var r = Kernel.syscall(.recv, endpoint, 0)
    let answer = MessageTag(label: 0, length: 1).word
    let control = MessageTag(label: 0, length: 2).word
    while true {
        if r.x6 != 0 {
            _ = Kernel.syscall(.yield, 0, 0)
            r = Kernel.syscall(.recv, endpoint, 0)
            continue
        }
        let label = r.x1 >> 12
        if label == 0 {
            r = Kernel.syscall(.replyRecv, endpoint, answer, r.x2 &+ 1)
        } else if label == IPCBench.begin {
            i0 = cmk_pmu_instructions()
            c0 = cmk_pmu_cycles()
            r = Kernel.syscall(.replyRecv, endpoint, control, 0, 0)
        } else {
            let i1 = cmk_pmu_instructions(), c1 = cmk_pmu_cycles()
            r = Kernel.syscall(.replyRecv, endpoint, control, IPCBench.instructions(from: i0, to: i1), c1 &- c0)
        }
    }
}
