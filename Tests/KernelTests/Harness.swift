import Kernel
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The host's stand-in for a pending timer interrupt: the kernel's
/// preemption check (`ClusterKernel.boot(preemptionPending:)`, a C function
/// pointer with no context) says "pending" every `period`th time it is
/// asked. The count is per thread (a test runs on one thread from start to
/// end, tests run in parallel), so a seed replays the same preemptions;
/// `Harness.init` restarts it. A thread that never started a clock is
/// never preempted.
enum PreemptionClock {
    struct Clock {
        var period = 0
        /// Times asked, and times it said "pending".
        var calls = 0
        var pendings = 0
    }

    static let key: pthread_key_t = {
        var k = pthread_key_t()
        precondition(pthread_key_create(&k, nil) == 0)
        return k
    }()

    static var clock: UnsafeMutablePointer<Clock>? {
        pthread_getspecific(key)?.assumingMemoryBound(to: Clock.self)
    }

    /// Start this thread's clock: "pending" every `period`th call (0: never).
    static func start(period: Int) {
        var c = clock
        if c == nil {
            c = .allocate(capacity: 1)
            precondition(pthread_setspecific(key, c) == 0)
        }
        c!.pointee = Clock(period: period)
    }

    static let check: PreemptionCheck = {
        guard let c = PreemptionClock.clock else { return false }
        c.pointee.calls += 1
        guard c.pointee.period > 0, c.pointee.calls % c.pointee.period == 0 else { return false }
        c.pointee.pendings += 1
        return true
    }
}

/// A booted cluster kernel over a host buffer standing in for the partition,
/// with helpers that play the current thread's system calls.
final class Harness {
    let memory: UnsafeMutableRawPointer
    let size: Int
    let kernel: ClusterKernel
    static let rootRadix = 8

    /// `preemptEvery`: the kernel's preemption check says "pending" every
    /// `preemptEvery`th time it is asked on this thread (0: never);
    /// `PreemptionClock`.
    init(size: Int = 1 << 20, preemptEvery: Int = 100, cores: Int = 1, cluster: Int = 0, clusterCount: Int = 1) {
        var p: UnsafeMutableRawPointer? = nil
        precondition(posix_memalign(&p, 1 << 16, size) == 0)
        memory = p!
        memset(memory, 0xA5, size)  // garbage: the kernel must not rely on zeroes
        self.size = size
        PreemptionClock.start(period: preemptEvery)
        kernel = ClusterKernel.boot(
            memory: memory, size: size, rootRadix: Harness.rootRadix, preemptionPending: PreemptionClock.check, cores: cores,
            cluster: cluster, clusterCount: clusterCount)!
    }

    deinit { free(memory) }

    var current: TCBRef? { kernel.currentThread }
    func current(_ core: Int) -> TCBRef? { kernel.currentThread(core: core) }
    var root: TCBRef { kernel.rootThread }

    /// Slot numbers of the root CNode are full-depth addresses.
    static let depth: Word = 64

    func check(_ where_: String = "", sourceLocation: SourceLocation = #_sourceLocation) {
        if let v = kernel.checkInvariants() {
            Issue.record("invariant violated \(where_): \(v.message) at 0x\(String(v.address, radix: 16))", sourceLocation: sourceLocation)
        }
    }

    /// Set the current thread's message (of `core`) and make a system call
    /// on that core; returns its error.
    @discardableResult
    func call(
        _ syscall: Syscall = .call, _ cap: Word, label: Word = 0, _ args: [Word] = [], extraCaps: [Word] = [],
        restart: Bool = true, core: Int = 0
    ) -> KernelError? {
        guard let t = kernel.currentThread(core: core) else { return .illegalOperation }
        t.pointee.messageInfo = MessageInfo(label: label, length: args.count, extraCaps: extraCaps.count)
        for (i, a) in args.enumerated() { t.pointee.mr[i] = a }
        for (i, c) in extraCaps.enumerated() { t.pointee.extraCaps[i] = c }
        kernel.syscall(syscall, capAddress: cap, core: core)
        // A preempted call is re-issued until it completes (as user code would).
        var rounds = 0
        while restart, kernel.currentThread(core: core) == t, t.pointee.state == .restart {
            rounds += 1
            precondition(rounds < 1_000_000)
            t.pointee.messageInfo = MessageInfo(label: label, length: args.count, extraCaps: extraCaps.count)
            for (i, a) in args.enumerated() { t.pointee.mr[i] = a }
            kernel.syscall(syscall, capAddress: cap, core: core)
        }
        return t.pointee.error
    }

    func invoke(
        _ cap: Word, _ label: InvocationLabel, _ args: [Word] = [], extraCaps: [Word] = [], core: Int = 0
    ) -> KernelError? {
        call(.call, cap, label: label.rawValue, args, extraCaps: extraCaps, core: core)
    }

    // Root-thread conveniences (addresses are root CNode slot numbers).
    let cnode = RootSlot.cnode
    var firstUntyped: Word { RootSlot.firstUntyped }

    /// The root CNode slot of the largest Untyped.
    var bigUntyped: Word {
        var best = RootSlot.firstUntyped, bits = 0
        var i = RootSlot.firstUntyped
        while kernel.rootSlot(i).type == .untyped {
            if Int(kernel.rootSlot(i).bits) > bits { bits = Int(kernel.rootSlot(i).bits); best = i }
            i += 1
        }
        return best
    }

    func retype(_ untyped: Word, _ type: ObjectType, size: Word = 0, into slot: Word, count: Word = 1) -> KernelError? {
        invoke(untyped, .untypedRetype, [type.rawValue, size, 0, 0, slot, count], extraCaps: [cnode])
    }

    func copy(_ src: Word, to dest: Word, rights: CapRights = .all) -> KernelError? {
        invoke(cnode, .cnodeCopy, [dest, Harness.depth, src, Harness.depth, Word(rights.rawValue)], extraCaps: [cnode])
    }

    func mint(_ src: Word, to dest: Word, rights: CapRights = .all, badge: Word) -> KernelError? {
        invoke(cnode, .cnodeMint, [dest, Harness.depth, src, Harness.depth, Word(rights.rawValue), badge], extraCaps: [cnode])
    }

    func move(_ src: Word, to dest: Word) -> KernelError? {
        invoke(cnode, .cnodeMove, [dest, Harness.depth, src, Harness.depth], extraCaps: [cnode])
    }

    func delete(_ slot: Word) -> KernelError? { invoke(cnode, .cnodeDelete, [slot, Harness.depth]) }

    func revoke(_ slot: Word) -> KernelError? { invoke(cnode, .cnodeRevoke, [slot, Harness.depth]) }

    /// Make a thread in `slot` sharing the root CSpace, at `priority`, running.
    @discardableResult
    func spawn(_ slot: Word, priority: Word, from untyped: Word? = nil) -> TCBRef {
        #expect(retype(untyped ?? bigUntyped, .tcb, into: slot) == nil)
        #expect(invoke(slot, .tcbConfigure, [0], extraCaps: [cnode]) == nil)
        #expect(invoke(slot, .tcbSetPriority, [priority, priority]) == nil)
        let t = kernel.thread(kernel.rootSlot(slot))!
        #expect(invoke(slot, .tcbResume) == nil)
        return t
    }

    func cap(_ slot: Word) -> Capability { kernel.rootSlot(slot) }
}
