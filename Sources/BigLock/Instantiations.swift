/// Non-generic entry points, one per lock kind.
///
/// Generic code is only fully type-checked and compiled in Embedded Swift when
/// it is instantiated. These public functions instantiate every lock kind with
/// the plain hook and with both probes, so building the kernel image (which
/// depends on this module) compiles each lock for bare metal. They also form
/// the smallest API the kernel can call: format a lock in memory it owns, then
/// per core acquire (with a hook) and release.

/// A tick source for the instantiations below: counts calls. The kernel uses
/// its own (the generic timer); this one only makes the code compile.
public enum CallCountingTicks: LockTickSource {
    nonisolated(unsafe) static var ticks: UInt64 = 0
    public static func now() -> UInt64 { ticks &+= 1; return ticks }
}

/// Takes and releases `Lock` once on `core`, bare and instrumented; returns
/// whether the first acquisition was contended.
@inline(never)
func exercise<Lock: KernelLock & ~Copyable>(
    _: Lock.Type, memory: UnsafeMutableRawPointer, cores: Int, core: Int,
    stats: UnsafeMutablePointer<LockStatistics<CallCountingTicks>>
) -> Bool {
    let lock = Lock(attaching: memory, cores: cores, stride: BigLockLayout.defaultStride)
    var hook = SpinWaitHook()
    let contended = lock.acquire(core: core, hook: &hook)
    lock.release(core: core)
    var none = NoLockProbe()
    lock.acquire(core: core, hook: &hook, probe: &none)
    lock.release(core: core, probe: &none)
    lock.acquire(core: core, hook: &hook, probe: &stats.pointee)
    lock.release(core: core, probe: &stats.pointee)
    return contended
}

/// Formats a ticket big lock for `cores` cores at `memory`
/// (`BigTicketLock.byteCount(cores:stride:)` bytes, 128-byte aligned).
public func formatTicketBigLock(_ memory: UnsafeMutableRawPointer, cores: Int) {
    _ = BigTicketLock(formatting: memory, cores: cores, stride: BigLockLayout.defaultStride)
}
/// Formats an MCS lock for `cores` cores at `memory`.
public func formatMCSLock(_ memory: UnsafeMutableRawPointer, cores: Int) {
    _ = MCSLock(formatting: memory, cores: cores, stride: BigLockLayout.defaultStride)
}
/// Formats a CLH lock for `cores` cores at `memory`.
public func formatCLHLock(_ memory: UnsafeMutableRawPointer, cores: Int) {
    _ = CLHLock(formatting: memory, cores: cores, stride: BigLockLayout.defaultStride)
}

/// One uncontended round trip through the ticket big lock, bare and instrumented.
public func exerciseTicketBigLock(
    _ memory: UnsafeMutableRawPointer, cores: Int, core: Int,
    stats: UnsafeMutablePointer<LockStatistics<CallCountingTicks>>
) -> Bool {
    exercise(BigTicketLock.self, memory: memory, cores: cores, core: core, stats: stats)
}
/// One uncontended round trip through the MCS lock, bare and instrumented.
public func exerciseMCSLock(
    _ memory: UnsafeMutableRawPointer, cores: Int, core: Int,
    stats: UnsafeMutablePointer<LockStatistics<CallCountingTicks>>
) -> Bool {
    exercise(MCSLock.self, memory: memory, cores: cores, core: core, stats: stats)
}
/// One uncontended round trip through the CLH lock, bare and instrumented.
public func exerciseCLHLock(
    _ memory: UnsafeMutableRawPointer, cores: Int, core: Int,
    stats: UnsafeMutablePointer<LockStatistics<CallCountingTicks>>
) -> Bool {
    exercise(CLHLock.self, memory: memory, cores: cores, core: core, stats: stats)
}
