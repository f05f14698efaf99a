import Kernel
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A booted cluster kernel over a host buffer standing in for the partition,
/// with helpers that play the current thread's system calls.
final class Harness {
    let memory: UnsafeMutableRawPointer
    let size: Int
    let kernel: ClusterKernel
    static let rootRadix = 8

    init(size: Int = 1 << 20, workPerEntry: Int = 100, cores: Int = 1, cluster: Int = 0, clusterCount: Int = 1) {
        var p: UnsafeMutableRawPointer? = nil
        precondition(posix_memalign(&p, 1 << 16, size) == 0)
        memory = p!
        memset(memory, 0xA5, size)  // garbage: the kernel must not rely on zeroes
        self.size = size
        kernel = ClusterKernel.boot(memory: memory, size: size, rootRadix: Harness.rootRadix, workPerEntry: workPerEntry, cores: cores,
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
