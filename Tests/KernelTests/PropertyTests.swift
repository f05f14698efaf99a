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
final class World {
    let h: Harness
    var rng: SplitMix
    /// The last call of each thread, re-issued when it is restarted.
    var last: [UInt: (Syscall, Word, MessageInfo, [Word], [Word])] = [:]
    static let slots: [Word] = [0, 1, 2, 9, 10, 11, 20, 21, 22, 23, 24, 25, 26, 30, 31, 32, 33, 40, 41, 42, 43, 50, 51, 52, 60, 61, 62, 63, 64, 65, 70, 75, 80, 224, 225, 226]

    init(seed: UInt64) {
        rng = SplitMix(state: seed)
        var budget = SplitMix(state: seed ^ 0xABCD)
        h = Harness(size: 1 << 18, workPerEntry: Int(1 + budget.below(40)))
        // Build a small system as the root thread.
        let ut = h.bigUntyped
        _ = h.retype(ut, .untyped, size: 14, into: 9)
        _ = h.retype(ut, .untyped, size: 12, into: 10)
        _ = h.retype(9, .endpoint, into: 20, count: 3)
        _ = h.retype(9, .notification, into: 23, count: 2)
        _ = h.retype(10, .cnode, size: 2, into: 25, count: 2)
        _ = h.mint(20, to: 40, badge: 1)
        _ = h.mint(20, to: 41, badge: 2)
        _ = h.mint(23, to: 42, badge: 4)
        _ = h.copy(21, to: 43, rights: [.read, .write])
        for i: Word in 0..<4 {
            let t = h.spawn(30 + i, priority: 1 + rng.below(200), from: 9)
            t.pointee.receiveRoot = RootSlot.cnode
            t.pointee.receiveIndex = 50 + rng.below(3)
            t.pointee.receiveDepth = 64
        }
        h.root.pointee.receiveRoot = RootSlot.cnode
        h.root.pointee.receiveIndex = 52
        h.root.pointee.receiveDepth = 64
        _ = h.invoke(RootSlot.thread, .tcbSetPriority, [50 + rng.below(150)])
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
            return [rng.chance(80) ? 0 : rng.next()]
        case .tcbSetPriority:
            return [rng.below(260), rng.below(260)]
        default:
            return []
        }
    }

    /// One step: a timer tick or a system call of the current thread.
    func step() {
        guard let t = h.current, !rng.chance(8) else {
            h.kernel.timerTick()
            return
        }
        let key = UInt(bitPattern: t)
        if t.pointee.state == .restart, let (s, a, info, mrs, extras) = last[key] {
            t.pointee.messageInfo = info
            for (i, w) in mrs.enumerated() { t.pointee.mr[i] = w }
            for (i, c) in extras.enumerated() { t.pointee.extraCaps[i] = c }
            h.kernel.syscall(s, capAddress: a)
            return
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
            label = 1 + rng.below(13)
            switch InvocationLabel(rawValue: label)! {
            case .untypedRetype: cap = rng.pick([9, 10, 9, 10, 224, 225, 11])
            case .cnodeRevoke, .cnodeDelete, .cnodeCopy, .cnodeMint, .cnodeMove, .cnodeMutate:
                cap = rng.chance(85) ? RootSlot.cnode : rng.pick([25, 26, 11])
            default: cap = rng.pick([1, 30, 31, 32, 33, 30, 31, 32, 33])
            }
            if rng.chance(5) { cap = address() }
            mrs = arguments(for: label)
            extras = [rng.chance(90) ? RootSlot.cnode : address()]
            if label == InvocationLabel.tcbBindNotification.rawValue { extras = [rng.pick([23, 24, 42])] }
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
        h.kernel.syscall(syscall, capAddress: cap)
    }
}

/// Total steps across the suite: KERNEL_PROPERTY_STEPS (default 1,000,000).
let totalSteps: Int = {
    if let s = getenv("KERNEL_PROPERTY_STEPS"), let n = Int(String(cString: s)) { return n }
    return 1_000_000
}()
let seeds: [UInt64] = {
    if let s = getenv("KERNEL_PROPERTY_SEED"), let n = UInt64(String(cString: s)) { return [n] }
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
        if let v = w.h.kernel.checkInvariants() {
            Issue.record("seed \(seed) world \(episode): after setup: \(v.message)")
            return done
        }
        var idle = 0
        for i in 0..<4000 where done < steps {
            w.step()
            done += 1
            if let v = w.h.kernel.checkInvariants() {
                Issue.record("""
                    invariant violated: \(v.message) at 0x\(String(v.address, radix: 16))
                    replay: KERNEL_PROPERTY_SEED=\(seed) swift test --filter KernelTests.Property (world \(episode), step \(i))
                    """)
                return done
            }
            idle = w.h.current == nil ? idle + 1 : 0
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
