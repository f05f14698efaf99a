import Synchronization
import Testing
@testable import BigLock
@testable import Hosted

/// Every lock kind, for parameterised tests.
let allKinds = ClusterLock.Kind.allCases

/// Page-aligned, zeroed memory for a lock, with `guardBytes` of 0xA5 after it.
final class LockMemory: @unchecked Sendable {
    let base: UnsafeMutableRawPointer
    let bytes: Int
    let guardBytes = 4096
    init(kind: ClusterLock.Kind, cores: Int, stride: Int = BigLockLayout.defaultStride) {
        bytes = ClusterLock.byteCount(kind, cores: cores, stride: stride)
        base = UnsafeMutableRawPointer.allocate(byteCount: bytes + guardBytes, alignment: 4096)
        base.initializeMemory(as: UInt8.self, repeating: 0xA5, count: bytes + guardBytes)
    }
    deinit { base.deallocate() }
    var guardIntact: Bool {
        (0..<guardBytes).allSatisfy { base.load(fromByteOffset: bytes + $0, as: UInt8.self) == 0xA5 }
    }
}

/// Runs `body` with a lock of `kind` formatted for `cores` cores.
struct WithLock<R>: LockKindVisitor {
    let memory: UnsafeMutableRawPointer
    let cores: Int
    let stride: Int
    let body: (UnsafeMutableRawPointer) -> R
    func visit<L: KernelLock & ~Copyable>(_: L.Type) throws(HostedError) -> R {
        _ = L(formatting: memory, cores: cores, stride: stride)
        return body(memory)
    }
}

/// Generic single-threaded checks, run for each kind.
struct SequentialCheck: LockKindVisitor {
    let memory: UnsafeMutableRawPointer
    let cores: Int
    let order: [Int]
    func visit<L: KernelLock & ~Copyable>(_: L.Type) throws(HostedError) -> [Bool] {
        let lock = L(formatting: memory, cores: cores, stride: BigLockLayout.defaultStride)
        var hook = SpinWaitHook()
        var contended: [Bool] = []
        for core in order {
            contended.append(lock.acquire(core: core, hook: &hook))
            lock.release(core: core)
        }
        return contended
    }
}

@Suite struct LayoutTests {
    @Test(arguments: allKinds, [1, 2, 3, 64])
    func formattingStaysInsideByteCount(kind: ClusterLock.Kind, cores: Int) throws {
        let m = LockMemory(kind: kind, cores: cores)
        _ = try kind.visit(WithLock(memory: m.base, cores: cores, stride: BigLockLayout.defaultStride) { _ in () })
        #expect(m.guardIntact)
    }

    @Test func sizesFollowTheDocumentedLayout() {
        #expect(BigTicketLock.byteCount(cores: 4, stride: 128) == 256)
        #expect(MCSLock.byteCount(cores: 4, stride: 128) == 9 * 128)
        #expect(CLHLock.byteCount(cores: 4, stride: 128) == 10 * 128)
        #expect(CLHLock.byteCount(cores: 64, stride: 2048) == 130 * 2048)
    }

    @Test func validStrides() {
        #expect(BigLockLayout.isValid(stride: 64))
        #expect(BigLockLayout.isValid(stride: 2048))
        #expect(!BigLockLayout.isValid(stride: 32))
        #expect(!BigLockLayout.isValid(stride: 96))
        #expect(!BigLockLayout.isValid(stride: 4096))
    }

    @Test func clhStartsWithTheDummySlotGrantedAndEachCoreOwningItsOwn() {
        let cores = 3
        let m = LockMemory(kind: .clh, cores: cores)
        let lock = CLHLock(formatting: m.base, cores: cores, stride: 128)
        #expect(lock.tail.pointee.load(ordering: .relaxed) == UInt64(cores))
        for s in 0...cores { #expect(lock.slot(UInt64(s)).pointee.load(ordering: .relaxed) == CLHLock.granted) }
        for c in 0..<cores { #expect(lock.record(c)[0] == UInt64(c)) }
    }
}

@Suite struct SequentialTests {
    @Test(arguments: allKinds)
    func aFreeLockIsNeverContended(kind: ClusterLock.Kind) throws {
        let cores = 5
        let m = LockMemory(kind: kind, cores: cores)
        var order: [Int] = []
        var rng = SplitMix(seed: 42)
        for _ in 0..<500 { order.append(Int(rng.next() % UInt64(cores))) }
        let contended = try kind.visit(SequentialCheck(memory: m.base, cores: cores, order: order))
        #expect(contended.count == 500)
        #expect(!contended.contains(true))
        #expect(m.guardIntact)
    }

    /// Craig's recycling invariant: whenever the CLH lock is free, the slots
    /// the cores own plus the tail's slot are all different, i.e. exactly
    /// 0...cores, whatever order the cores took the lock in.
    @Test func clhSlotsStayAPermutation() {
        let cores = 4
        let m = LockMemory(kind: .clh, cores: cores)
        let lock = CLHLock(formatting: m.base, cores: cores, stride: 128)
        var rng = SplitMix(seed: 7)
        var hook = SpinWaitHook()
        for _ in 0..<1000 {
            let core = Int(rng.next() % UInt64(cores))
            #expect(lock.acquire(core: core, hook: &hook) == false)
            lock.release(core: core)
            var owned = (0..<cores).map { lock.record($0)[0] }
            owned.append(lock.tail.pointee.load(ordering: .relaxed))
            #expect(Set(owned) == Set((0...cores).map(UInt64.init)))
        }
    }

    @Test func mcsTailIsEmptyWhenFree() {
        let m = LockMemory(kind: .mcs, cores: 2)
        let lock = MCSLock(formatting: m.base, cores: 2, stride: 128)
        lock.acquire(core: 1)
        #expect(lock.tail.pointee.load(ordering: .relaxed) == 2)
        lock.release(core: 1)
        #expect(lock.tail.pointee.load(ordering: .relaxed) == 0)
    }

    @Test func statisticsCountEveryAcquisition() {
        let m = LockMemory(kind: .clh, cores: 2)
        let lock = CLHLock(formatting: m.base, cores: 2, stride: 128)
        var stats = LockStatistics<StepClock>()
        var hook = SpinWaitHook()
        for _ in 0..<10 {
            lock.acquire(core: 0, hook: &hook, probe: &stats)
            lock.release(core: 0, probe: &stats)
        }
        #expect(stats.acquisitions == 10)
        #expect(stats.contendedAcquisitions == 0)
        #expect(stats.wait.count == 10)
        #expect(stats.hold.count == 10)
        // The step clock advances at least one tick per reading.
        #expect(stats.wait.sum >= 10)
        #expect(stats.hold.sum >= 10)
    }

    @Test func ticketLockKeepsItsAPI() {
        let lock = TicketLock()
        let first = lock.tryAcquire()
        let second = lock.tryAcquire()
        lock.release()
        lock.acquire()
        let whileHeld = lock.tryAcquire()
        lock.release()
        let afterRelease = lock.tryAcquire()
        lock.release()
        #expect(first && !second && !whileHeld && afterRelease)
    }
}

/// A clock that advances by one on every reading (atomically: tests run in parallel).
enum StepClock: LockTickSource {
    static let ticks = Atomic<UInt64>(0)
    static func now() -> UInt64 { ticks.add(1, ordering: .relaxed).newValue }
}

struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
