import BigLock
import CHosted
#if canImport(Glibc)
import Glibc
#endif

/// The one wall clock of every hosted measurement: CLOCK_MONOTONIC in
/// nanoseconds (the C references read the same clock, `cmk_monotonic_ns`).
@inline(__always)
public func monotonicNanoseconds() -> UInt64 { cmk_monotonic_ns() }

/// The host's tick counter (TSC on x86-64, CNTVCT_EL0 on AArch64) as the
/// clock of `LockStatistics`: cheap enough to read inside a lock's critical
/// path; converted to nanoseconds with `TickCalibration`.
public enum HostTicks: LockTickSource {
    @inlinable @inline(__always)
    public static func now() -> UInt64 { cmk_ticks() }
}

/// Converts host ticks to nanoseconds, measured against `monotonicNanoseconds`.
public struct TickCalibration: Sendable {
    public let ticksPerNanosecond: Double

    /// Measures over `milliseconds` of sleeping.
    public static func measure(milliseconds: Int = 50) -> TickCalibration {
        let n0 = monotonicNanoseconds(), t0 = cmk_ticks()
        usleep(useconds_t(milliseconds * 1000))
        let n1 = monotonicNanoseconds(), t1 = cmk_ticks()
        let rate = Double(t1 &- t0) / Double(max(1, n1 &- n0))
        return TickCalibration(ticksPerNanosecond: rate > 0 ? rate : 1)
    }

    public func nanoseconds(_ ticks: Double) -> Double { ticks / ticksPerNanosecond }
}
