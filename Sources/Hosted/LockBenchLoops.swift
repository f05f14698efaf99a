import BigLock
import CHosted
import Synchronization

/// The Swift side of `cmk bench lock`: the same loops as the C reference
/// (`cmk_c_uncontended`, `cmk_c_hammer`), specialised per lock kind here so the
/// caller needs no generics.
public enum LockBenchLoops {
    /// `iterations` uncontended acquire+release pairs on `core` of a formatted
    /// `kind` lock at `memory`.
    public static func uncontended(
        kind: LockKind, memory: UnsafeMutableRawPointer, cores: Int, stride: Int, core: Int, iterations: UInt64
    ) {
        switch kind {
        case .ticket: uncontended(BigTicketLock(attaching: memory, cores: cores, stride: stride), core: core, iterations: iterations)
        case .mcs: uncontended(MCSLock(attaching: memory, cores: cores, stride: stride), core: core, iterations: iterations)
        case .clh: uncontended(CLHLock(attaching: memory, cores: cores, stride: stride), core: core, iterations: iterations)
        }
    }

    /// Until `stop` is set: acquire, `counter += 1`, release. Returns the
    /// number of acquisitions.
    public static func hammer(
        kind: LockKind, memory: UnsafeMutableRawPointer, cores: Int, stride: Int, core: Int,
        stop: UnsafePointer<UInt64>, counter: UnsafeMutablePointer<UInt64>
    ) -> UInt64 {
        let stopFlag = UnsafeMutableRawPointer(mutating: stop).assumingMemoryBound(to: Atomic<UInt64>.self)
        switch kind {
        case .ticket: return hammer(BigTicketLock(attaching: memory, cores: cores, stride: stride), core: core, stop: stopFlag, counter: counter)
        case .mcs: return hammer(MCSLock(attaching: memory, cores: cores, stride: stride), core: core, stop: stopFlag, counter: counter)
        case .clh: return hammer(CLHLock(attaching: memory, cores: cores, stride: stride), core: core, stop: stopFlag, counter: counter)
        }
    }

    @inline(never)
    static func uncontended<L: KernelLock & ~Copyable>(_ lock: borrowing L, core: Int, iterations: UInt64) {
        var hook = HostWaitHook()
        var i: UInt64 = 0
        while i < iterations {
            _ = lock.acquire(core: core, hook: &hook)
            lock.release(core: core)
            i &+= 1
        }
    }

    @inline(never)
    static func hammer<L: KernelLock & ~Copyable>(
        _ lock: borrowing L, core: Int, stop: UnsafeMutablePointer<Atomic<UInt64>>, counter: UnsafeMutablePointer<UInt64>
    ) -> UInt64 {
        var hook = HostWaitHook()
        var n: UInt64 = 0
        /// Relaxed: the flag only ends the loop; it orders nothing.
        while stop.pointee.load(ordering: .relaxed) == 0 {
            _ = lock.acquire(core: core, hook: &hook)
            counter.pointee &+= 1
            lock.release(core: core)
            n &+= 1
        }
        return n
    }
}
