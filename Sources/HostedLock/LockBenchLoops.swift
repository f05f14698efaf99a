import BigLock
import CLockReference
import Hosted
import CHosted
import Synchronization

/// The Swift side of `cmk bench lock`: the same loops as the C reference
/// (`cmk_c_uncontended`, `cmk_c_hammer`), specialised per lock kind here so the
/// caller needs no generics.
public enum LockBenchLoops {
    /// `iterations` uncontended acquire+release pairs on `core` of a formatted
    /// `kind` lock at `memory`.
    public static func uncontended(
        kind: ClusterLock.Kind, memory: UnsafeMutableRawPointer, cores: Int, stride: Int, core: Int, iterations: UInt64
    ) {
        struct Loop: LockKindVisitor {
            let memory: UnsafeMutableRawPointer, cores: Int, stride: Int, core: Int, iterations: UInt64
            func visit<L: KernelLock & ~Copyable>(_: L.Type) {
                LockBenchLoops.uncontended(L(attaching: memory, cores: cores, stride: stride), core: core, iterations: iterations)
            }
        }
        kind.visit(Loop(memory: memory, cores: cores, stride: stride, core: core, iterations: iterations))
    }

    /// Until `stop` is set: acquire, `counter += 1`, release. Returns the
    /// number of acquisitions.
    public static func hammer(
        kind: ClusterLock.Kind, memory: UnsafeMutableRawPointer, cores: Int, stride: Int, core: Int,
        stop: UnsafePointer<UInt64>, counter: UnsafeMutablePointer<UInt64>
    ) -> UInt64 {
        struct Loop: LockKindVisitor {
            let memory: UnsafeMutableRawPointer, cores: Int, stride: Int, core: Int
            let stop: UnsafeMutablePointer<Atomic<UInt64>>, counter: UnsafeMutablePointer<UInt64>
            func visit<L: KernelLock & ~Copyable>(_: L.Type) -> UInt64 {
                LockBenchLoops.hammer(L(attaching: memory, cores: cores, stride: stride), core: core, stop: stop, counter: counter)
            }
        }
        let stopFlag = UnsafeMutableRawPointer(mutating: stop).assumingMemoryBound(to: Atomic<UInt64>.self)
        return kind.visit(Loop(memory: memory, cores: cores, stride: stride, core: core, stop: stopFlag, counter: counter))
    }

    /// Formats `kind` at `memory` for the Swift locks (`swift`) or the C
    /// reference (the layouts are the same; each side formats its own, as it
    /// would in use).
    public static func format(_ kind: ClusterLock.Kind, _ memory: UnsafeMutableRawPointer, cores: Int, stride: Int, swift: Bool) {
        if swift {
            _ = ClusterLock(formatting: memory, kind: kind, cores: cores, stride: stride)
        } else {
            cmk_c_format(Int32(kind.rawValue), memory, Int32(cores), stride)
        }
    }

    /// The same uncontended loop through `ClusterLock`: what every kernel entry
    /// goes through (the kind read at run time, the attach on every call, the
    /// wait hook called through a C function pointer).
    @inline(never)
    public static func clusterLockUncontended(_ lock: ClusterLock, core: Int, iterations: UInt64) {
        var i: UInt64 = 0
        while i < iterations {
            lock.acquire(core: core)
            lock.release(core: core)
            i &+= 1
        }
    }

    /// The same contended loop through `ClusterLock`.
    @inline(never)
    public static func clusterLockHammer(
        _ lock: ClusterLock, core: Int, stop: UnsafePointer<UInt64>, counter: UnsafeMutablePointer<UInt64>
    ) -> UInt64 {
        let stopFlag = UnsafeMutableRawPointer(mutating: stop).assumingMemoryBound(to: Atomic<UInt64>.self)
        var n: UInt64 = 0
        /// Relaxed: the flag only ends the loop; it orders nothing.
        while stopFlag.pointee.load(ordering: .relaxed) == 0 {
            lock.acquire(core: core)
            counter.pointee &+= 1
            lock.release(core: core)
            n &+= 1
        }
        return n
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
