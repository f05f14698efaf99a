import Arch
import ArchAsm
import UserABI

/// `UserABI.benchmarkHold` (x7 = 0x102): the one kernel part of the lock
/// experiment and of the boot's lock check, which run as user threads on
/// every core of a cluster (RootTask/LockRun.swift, docs/experiments.md).
/// Each call is a real trap: the trap path takes the big lock first thing
/// (`UserRun.exit`), this handler runs under it, and the lock is released
/// on the way out.
///
/// Like seL4's benchmark calls it needs no capability and touches no kernel
/// object; a thread can only make the kernel spin for a bounded time
/// (`UserABI.benchmarkHoldLimit` iterations, refused above) and count.
enum BenchmarkCall {
    /// Calls made on this cluster since boot. A plain global, not an atomic:
    /// the big lock alone protects it, so a lock that let two cores in at
    /// once would lose increments, and the root task checks none were lost
    /// (its calls counted against this count).
    nonisolated(unsafe) static var calls: UInt64 = 0

    /// Lock held. x0 = iterations in, then x0 = counter at entry, x1 =
    /// counter after the work, x2 = `calls`, x3 = 1 if this trap waited for
    /// the lock, x6 = 0 (or x6 = 1, InvalidArgument, nothing done).
    static func hold(_ context: UnsafeMutablePointer<UInt64>, waited: Bool) {
        let entered = CPU.counter
        let iterations = context[0]
        guard iterations <= UserABI.benchmarkHoldLimit else {
            context[UserABI.Register.error] = 1
            return
        }
        if iterations > 0 { keep(work(iterations)) }
        calls &+= 1
        context[0] = entered
        context[1] = CPU.counter
        context[2] = calls
        context[3] = waited ? 1 : 0
        context[UserABI.Register.error] = 0
    }

    /// `iterations` steps of a dependent chain (an LCG: no closed form the
    /// optimiser could substitute). Its result must be `kept`, or the call
    /// is dead code.
    @inline(never)
    static func work(_ iterations: UInt64) -> UInt64 {
        var x: UInt64 = iterations
        var i: UInt64 = 0
        while i < iterations {
            x = x &* 6364136223846793005 &+ 1442695040888963407
            i &+= 1
        }
        return x
    }

    /// Keeps `value`: a volatile store to this core's stack, which the
    /// compiler must compute and make before the next counter read
    /// (volatile accesses and the counter's `asm volatile` keep their
    /// order). `tests/qemu/boot-tests.sh` proves the work runs: under
    /// `-icount` the measured hold grows with `--hold`.
    @inline(__always)
    static func keep(_ value: UInt64) {
        var slot: UInt64 = 0
        withUnsafeMutablePointer(to: &slot) { cmk_mmio_write64(UInt64(UInt(bitPattern: $0)), value) }
    }
}
