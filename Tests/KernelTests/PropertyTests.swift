@testable import Kernel
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Deterministic pseudo-random numbers (SplitMix64).
struct SplitMix {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func below(_ n: UInt64) -> UInt64 { next() % n }
    mutating func chance(_ percent: UInt64) -> Bool { below(100) < percent }
    mutating func pick<T>(_ xs: [T]) -> T { xs[Int(below(UInt64(xs.count)))] }
}

/// A world of user threads playing random system calls. The kernel decides
/// who runs; the world only plays the current thread (or a timer tick).
///
/// CSpaces: threads 30 and 31 share the root thread's CNode. Thread 32 has
/// its own CNode X2 (root slot 27, radix 6, guard 58: addresses 0...63) with
/// copies of the world's objects at the root's slot numbers, itself in
/// X2[1] and X2 (with its guard) in X2[2], so the same addresses work in
/// either CSpace. Thread 33's CNode X3 (radix 2, guard 54, small enough for
/// a delete to finish between most preemptions) is issue 11's shape: its CSpace
/// root is the only capability to X3, X3[1] (address 256) the only
/// capability to thread 33, so Configure on itself finalises the thread.
/// X3[0] is the root CNode without a guard, so addresses below 256 name the
/// root CNode's slots, as for the root thread (a new root from there
/// survives the old root's deletion); X3[2] (512) is an endpoint, X3[3]
/// (768) a notification. The model has no VSpace objects
/// yet (Configure sets only the CSpace root), so VSpace slots stay empty.
///
/// Cores: most worlds have two; about half the threads start on core 1, and
/// SetAffinity moves threads (the root thread too) at random. A step is made
/// by core 0 or core 1, for that core's current thread; the reschedule
/// requests an entry leaves are delivered (`reschedule(core:)`) at random,
/// some only steps later, so the invariants are also checked with a
/// request outstanding.
final class World {
    let h: Harness
    var rng: SplitMix
    let seed: UInt64
    let cores: Int
    /// Reschedule IPIs taken from the kernel, not delivered yet.
    var pendingIPIs: UInt64 = 0
    /// Setup calls that failed (each one a test failure).
    var setupFailures: [String] = []
    /// The last call of each thread, re-issued when it is restarted.
    var last: [UInt: (Syscall, Word, MessageInfo, [Word], [Word])] = [:]
    static let slots: [Word] = [0, 1, 2, 9, 10, 11, 20, 21, 22, 23, 24, 25, 26, 27, 28, 30, 31, 32, 33, 40, 41, 42, 43, 50, 51, 52, 60, 61, 62, 63, 64, 65, 70, 75, 80, 224, 225, 226, 256, 512, 768]

    init(seed: UInt64) {
        self.seed = seed
        rng = SplitMix(state: seed)
        var budget = SplitMix(state: seed ^ 0xABCD)
        cores = budget.chance(75) ? 2 : 1
        h = Harness(size: 1 << 18, preemptEvery: Int(1 + budget.below(40)), cores: cores)
        // Build a small system as the root thread.
        let ut = h.bigUntyped
        let cnode = RootSlot.cnode
        setup(h.retype(ut, .untyped, size: 14, into: 9), "untyped 9")
        setup(h.retype(ut, .untyped, size: 12, into: 10), "untyped 10")
        setup(h.retype(ut, .untyped, size: 14, into: 11), "untyped 11")
        setup(h.retype(9, .endpoint, into: 20, count: 3), "endpoints")
        setup(h.retype(9, .notification, into: 23, count: 2), "notifications")
        setup(h.retype(10, .cnode, size: 2, into: 25, count: 2), "CNodes 25, 26")
        setup(h.retype(11, .cnode, size: 6, into: 27), "CNode X2")
        setup(h.retype(11, .cnode, size: 2, into: 28), "CNode X3")
        setup(h.mint(20, to: 40, badge: 1), "mint 40")
        setup(h.mint(20, to: 41, badge: 2), "mint 41")
        setup(h.mint(23, to: 42, badge: 4), "mint 42")
        setup(h.copy(21, to: 43, rights: [.read, .write]), "copy 43")
        for i: Word in 0..<4 {
            let t = h.spawn(30 + i, priority: 1 + rng.below(200), from: 9)
            t.pointee.receiveRoot = cnode
            t.pointee.receiveIndex = 50 + rng.below(3)
            t.pointee.receiveDepth = 64
        }
        if cores == 2 {
            for i: Word in 30...33 where rng.chance(50) {
                setup(h.invoke(i, .tcbSetAffinity, [1]), "thread \(i) to core 1")
            }
        }
        for i: Word in [20, 21, 22, 23, 24, 25, 26, 30, 31, 32, 40, 41, 42, 43] {
            setup(h.invoke(27, .cnodeCopy, [i, 6, i, 64, 15], extraCaps: [cnode]), "copy \(i) into X2")
        }
        setup(h.invoke(27, .cnodeCopy, [1, 6, 32, 64, 15], extraCaps: [cnode]), "X2[1]")
        setup(h.invoke(27, .cnodeMint, [2, 6, 27, 64, 15, 58], extraCaps: [cnode]), "X2[2]")
        setup(h.invoke(32, .tcbConfigure, [58], extraCaps: [27]), "thread 32's CSpace")
        setup(h.invoke(28, .cnodeMint, [0, 2, cnode, 64, 15, 0], extraCaps: [cnode]), "X3[0]")
        setup(h.invoke(28, .cnodeCopy, [2, 2, 20, 64, 15], extraCaps: [cnode]), "X3[2]")
        setup(h.invoke(28, .cnodeCopy, [3, 2, 23, 64, 15], extraCaps: [cnode]), "X3[3]")
        setup(h.invoke(33, .tcbConfigure, [54], extraCaps: [28]), "thread 33's CSpace")
        setup(h.invoke(28, .cnodeMove, [1, 2, 33, 64], extraCaps: [cnode]), "X3[1]")
        setup(h.delete(28), "root's capability to X3")
        h.root.pointee.receiveRoot = cnode
        h.root.pointee.receiveIndex = 52
        h.root.pointee.receiveDepth = 64
        setup(h.invoke(RootSlot.thread, .tcbSetPriority, [50 + rng.below(150)]), "root priority")
        pendingIPIs = h.kernel.takeRescheduleRequests()
    }

    /// Deliver each outstanding reschedule IPI with probability `percent`.
    func deliverIPIs(_ percent: UInt64 = 70) {
        pendingIPIs |= h.kernel.takeRescheduleRequests()
        for c in 0..<cores where pendingIPIs & (1 << UInt64(c)) != 0 && rng.chance(percent) {
            pendingIPIs &= ~(1 << UInt64(c))
            h.kernel.reschedule(core: c)
        }
        pendingIPIs |= h.kernel.takeRescheduleRequests()
    }

    /// No core runs a thread and no IPI is outstanding.
    var allIdle: Bool { pendingIPIs == 0 && (0..<cores).allSatisfy { h.current($0) == nil } }

    func setup(_ error: KernelError?, _ what: String) {
        if let error { setupFailures.append("\(what): \(error)") }
    }

    func address() -> Word {
        if rng.chance(5) { return rng.next() }
        if rng.chance(5) { return rng.below(256) }
        return rng.pick(World.slots)
    }

    func arguments(for label: Word) -> [Word] {
        if rng.chance(10) { return (0..<rng.below(9)).map { _ in rng.chance(50) ? rng.below(300) : rng.next() } }
        let depth: Word = rng.chance(90) ? 64 : rng.below(70)
        switch InvocationLabel(rawValue: label) {
        case .untypedRetype:
            let type = rng.below(8)
            let size: Word = type == ObjectType.untyped.rawValue ? 4 + rng.below(10) : type == ObjectType.cnode.rawValue ? rng.below(4) : 0
            return [type, size, 0, 0, rng.chance(70) ? 60 + rng.below(40) : address(), 1 + rng.below(3)]
        case .cnodeRevoke, .cnodeDelete:
            // Revoking the world's Untyped ends most of it: keep that rare.
            var a = address()
            if (a == 9 || a == 10) && rng.chance(90) { a = 60 + rng.below(20) }
            return [a, depth]
        case .cnodeCopy, .cnodeMint, .cnodeMove, .cnodeMutate:
            let data: Word = rng.chance(50) ? rng.below(16) : ((rng.below(4) << 6) | rng.below(60))
            let dest = rng.chance(70) ? 60 + rng.below(40) : address()
            return [dest, depth, rng.chance(30) ? 60 + rng.below(40) : address(), depth, rng.below(16), data]
        case .tcbConfigure:
            return [rng.chance(70) ? rng.pick([0, 56, 58, 62]) : rng.chance(50) ? rng.below(64) : rng.next()]
        case .tcbSetPriority:
            return [rng.below(260), rng.below(260)]
        case .tcbSetAffinity:
            return [rng.below(3)]
        case .tcbSetIPCBuffer:
            return [rng.pick([0, 0, 0x1000, 0x1200, 0x1100, rng.next()])]
        case .tcbSetSpace:
            return [rng.chance(50) ? rng.pick([20, 21, 22]) : address(), rng.chance(80) ? 0 : rng.below(64)]
        case .tcbWriteRegisters:
            return [rng.below(2), rng.below(8), rng.next(), rng.next(), rng.below(9), 0, 0, 0]
        default:
            return []
        }
    }

    /// One step on core 0 or 1: a timer tick or a system call of that
    /// core's current thread. Returns a broken postcondition, if any.
    func step() -> String? {
        let core = cores > 1 && rng.chance(50) ? 1 : 0
        guard let t = h.current(core), !rng.chance(8) else {
            h.kernel.timerTick(core: core)
            return nil
        }
        let key = UInt(bitPattern: t)
        if t.pointee.state == .restart, let (s, a, info, mrs, extras) = last[key] {
            t.pointee.messageInfo = info
            for (i, w) in mrs.enumerated() { t.pointee.mr[i] = w }
            for (i, c) in extras.enumerated() { t.pointee.extraCaps[i] = c }
            return issue(t, s, a, core: core)
        }
        var syscall: Syscall
        var cap: Word
        var label: Word = 0
        var mrs: [Word] = []
        var extras: [Word] = []
        let intent = rng.below(100)
        if t == h.root && intent < 50 {
            // The root thread never blocks: it keeps the world alive, waking
            // (Suspend + Resume) threads and making non-blocking calls.
            if rng.chance(40) {
                syscall = .call
                label = rng.chance(80) ? InvocationLabel.tcbResume.rawValue : InvocationLabel.tcbSuspend.rawValue
                cap = rng.pick([30, 31, 32, 33])
            } else {
                syscall = rng.pick([.nbSend, .nbRecv, .reply, .send, .yield])
                cap = syscall == .send ? rng.pick([23, 24, 42]) : rng.pick([20, 21, 22, 40, 41, 43, 23, 24, 42])
                mrs = (0..<rng.below(5)).map { _ in rng.below(1000) }
            }
        } else if intent < 50 {
            // IPC on endpoints and notifications, sometimes moving capabilities.
            syscall = rng.pick([.send, .nbSend, .call, .call, .recv, .recv, .nbRecv, .reply, .replyRecv, .replyRecv])
            cap = rng.chance(85) ? rng.pick([20, 21, 22, 40, 41, 43, 23, 24, 42]) : address()
            label = rng.below(4)
            mrs = (0..<rng.below(5)).map { _ in rng.below(1000) }
            if rng.chance(15) { extras = (0..<1 + rng.below(3)).map { _ in address() } }
        } else if intent < 92 || t == h.root {
            syscall = rng.chance(90) || t == h.root ? .call : .send
            label = rng.chance(5) ? InvocationLabel.tcbSetAffinity.rawValue : 1 + rng.below(13)
            if rng.chance(8) {
                label = rng.pick([InvocationLabel.tcbSetIPCBuffer, .tcbSetSpace, .tcbWriteRegisters, .tcbReadRegisters]).rawValue
            }
            switch InvocationLabel(rawValue: label)! {
            case .untypedRetype: cap = rng.pick([9, 10, 9, 10, 224, 225, 11])
            case .cnodeRevoke, .cnodeDelete, .cnodeCopy, .cnodeMint, .cnodeMove, .cnodeMutate:
                cap = rng.chance(85) ? RootSlot.cnode : rng.pick([25, 26, 11])
            default: cap = rng.pick([1, 1, 256, 30, 31, 32, 33, 30, 31, 32, 33])
            }
            if rng.chance(5) { cap = address() }
            mrs = arguments(for: label)
            extras = [rng.chance(80) ? RootSlot.cnode : rng.chance(50) ? rng.pick([25, 26, 27]) : address()]
            if label == InvocationLabel.tcbBindNotification.rawValue { extras = [rng.pick([23, 24, 42])] }
            if label == InvocationLabel.tcbSetSpace.rawValue { extras.append(rng.chance(50) ? RootSlot.cnode : address()) }
            if label == InvocationLabel.tcbSetIPCBuffer.rawValue && rng.chance(30) { extras = [] }
        } else {
            syscall = rng.pick([.send, .nbSend, .call, .recv, .nbRecv, .reply, .replyRecv, .yield])
            if t == h.root { syscall = .nbRecv }
            cap = address()
            label = rng.chance(50) ? rng.below(20) : rng.next()
            mrs = arguments(for: label)
            extras = (0..<rng.below(4)).map { _ in address() }
        }
        if mrs.count > messageRegisterCount { mrs.removeLast(mrs.count - messageRegisterCount) }
        var length = mrs.count
        if rng.chance(5) { length = Int(rng.below(12)) - 2 }
        let info = MessageInfo(label: label, length: length, extraCaps: rng.chance(3) ? Int(rng.below(8)) - 2 : extras.count)
        t.pointee.messageInfo = info
        for (i, w) in mrs.enumerated() { t.pointee.mr[i] = w }
        for (i, c) in extras.enumerated() { t.pointee.extraCaps[i] = c }
        last[key] = (syscall, cap, info, mrs, extras)
        return issue(t, syscall, cap, core: core)
    }

    // MARK: Postconditions

    /// What a CNode method promises once it completes without error.
    enum Post {
        /// Revoke: the slot has no children left.
        case revoked(SlotRef)
        /// Delete: the slot is empty.
        case deleted(SlotRef)
        /// Copy (minted: nil) or Mint: the new capability names the source's
        /// object with at most the source's rights (and the mask's).
        case copied(dest: SlotRef, source: Capability, mask: CapRights, minted: Word?)
        /// Move or Mutate: the source is empty, the destination holds its
        /// object with the same rights.
        case moved(dest: SlotRef, source: SlotRef, cap: Capability)
    }

    /// Make the call, then check its postcondition if it completed: the
    /// caller is running again with no error. (A preempted caller is in
    /// `.restart`; a caller the call itself destroyed is inactive.)
    func issue(_ t: TCBRef, _ syscall: Syscall, _ capAddress: Word, core: Int) -> String? {
        let post = postcondition(t, syscall, capAddress)
        h.kernel.syscall(syscall, capAddress: capAddress, core: core)
        guard let post, t.pointee.state == .running, t.pointee.error == nil else { return nil }
        switch post {
        case .revoked(let slot):
            if hasChildren(slot) { return "a revoked slot still has children" }
        case .deleted(let slot):
            if !slot.pointee.cap.isNull { return "a deleted slot is not empty" }
        case .copied(let dest, let source, let mask, let minted):
            let c = dest.pointee.cap
            if c.type != source.type || c.object != source.object { return "a copy names another object" }
            if !source.rights.intersection(mask).isSuperset(of: c.rights) { return "a copy raised its rights" }
            if let minted, c.type == .endpoint || c.type == .notification {
                if c.badge != minted { return "a minted capability lost its badge" }
            } else if minted == nil && c.word != source.word {
                return "a copy changed its badge or guard"
            }
        case .moved(let dest, let source, let cap):
            let c = dest.pointee.cap
            if !source.pointee.cap.isNull { return "a moved capability is still in its source" }
            if c.type != cap.type || c.object != cap.object || c.rights != cap.rights {
                return "a moved capability changed object or rights"
            }
        }
        return nil
    }

    /// The postcondition of a CNode method call, resolved as the kernel will
    /// resolve it (nil for anything else, or if a lookup fails).
    func postcondition(_ t: TCBRef, _ syscall: Syscall, _ capAddress: Word) -> Post? {
        guard syscall == .call || syscall == .send || syscall == .nbSend else { return nil }
        let info = t.pointee.messageInfo
        guard let label = InvocationLabel(rawValue: info.label), info.length >= 2,
            let invoked = try? h.kernel.lookupSlot(t, capAddress), invoked.pointee.cap.type == .cnode
        else { return nil }
        let mr = t.pointee.mr
        guard let dest = try? h.kernel.lookupSlot(forCNodeOperation: invoked.pointee.cap, mr[0], depth: mr[1], source: false)
        else { return nil }
        switch label {
        case .cnodeRevoke: return .revoked(dest)
        case .cnodeDelete: return .deleted(dest)
        case .cnodeCopy, .cnodeMint, .cnodeMove, .cnodeMutate:
            let needed = label == .cnodeMint ? 6 : label == .cnodeMove ? 4 : 5
            guard info.length >= needed, info.extraCaps >= 1,
                let root = try? h.kernel.lookupSlot(t, t.pointee.extraCaps[0], source: true),
                let source = try? h.kernel.lookupSlot(
                    forCNodeOperation: root.pointee.cap, mr[2], depth: mr[3], source: true)
            else { return nil }
            let cap = source.pointee.cap
            switch label {
            case .cnodeCopy, .cnodeMint:
                let mask = CapRights(rawValue: UInt8(truncatingIfNeeded: mr[4] & 0xF))
                return .copied(dest: dest, source: cap, mask: mask, minted: label == .cnodeMint ? mr[5] : nil)
            default:
                return .moved(dest: dest, source: source, cap: cap)
            }
        default:
            return nil
        }
    }
}

/// Total steps across the suite: CMK_PROPERTY_STEPS, default 200,000 (a few
/// seconds in a debug build); scripts/test.sh runs 1,000,000, a long run
/// 10,000,000. CMK_PROPERTY_SEED replays one seed.
let totalSteps: Int = {
    if let s = getenv("CMK_PROPERTY_STEPS"), let n = Int(String(cString: s)) { return n }
    return 200_000
}()
let seeds: [UInt64] = {
    if let s = getenv("CMK_PROPERTY_SEED"), let n = UInt64(String(cString: s)) { return [n] }
    return (0..<8).map { 0xC0FFEE &+ $0 &* 7919 }
}()

/// Run `steps` random steps from `seed`, in worlds of up to 4,000 steps;
/// returns the number of steps checked.
func runProperty(seed: UInt64, steps: Int) -> Int {
    var done = 0
    var episode: UInt64 = 0
    while done < steps {
        let worldSeed = seed &+ episode &* 0x1_0000_0001
        let w = World(seed: worldSeed)
        let replay = "replay: CMK_PROPERTY_SEED=\(seed) swift test --filter KernelTests.Property (world \(episode)"
        if !w.setupFailures.isEmpty {
            Issue.record("setup failed: \(w.setupFailures.joined(separator: "; "))\n\(replay))")
            return done
        }
        if let v = w.h.kernel.checkInvariants() {
            Issue.record("after setup: \(v.message)\n\(replay))")
            return done
        }
        var idle = 0
        for i in 0..<4000 where done < steps {
            let broken = w.step()
            w.deliverIPIs()
            done += 1
            if let broken {
                Issue.record("postcondition broken: \(broken)\n\(replay), step \(i))")
                return done
            }
            if let v = w.h.kernel.checkInvariants() {
                Issue.record("""
                    invariant violated: \(v.message) at 0x\(String(v.address, radix: 16))
                    \(replay), step \(i))
                    """)
                return done
            }
            idle = w.allIdle ? idle + 1 : 0
            if idle > 20 { break }  // everyone blocked for good: next world
        }
        episode += 1
    }
    return done
}

@Suite struct Property {
    @Test(arguments: seeds)
    func randomSystemCallsKeepEveryInvariant(seed: UInt64) {
        let steps = totalSteps / seeds.count
        let done = runProperty(seed: seed, steps: steps)
        #expect(done == steps)
    }
}
