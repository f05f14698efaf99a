/// Instrumentation of a core's use of the big lock, chosen at compile time.
///
/// Lock operations take the probe as a generic parameter (see
/// `KernelLock.acquire(core:hook:probe:)`). `NoLockProbe`'s methods are empty
/// and inlined, so a kernel built with it specialises the probe away and runs
/// the bare lock; `LockStatistics` counts and times every acquisition.
/// A probe belongs to one core and is only touched by that core.
public protocol LockProbe: ~Copyable {
    /// Just before the core asks for the lock.
    mutating func willAcquire()
    /// Just after it got the lock; `contended` if it had to wait.
    mutating func didAcquire(contended: Bool)
    /// Just before it releases the lock.
    mutating func willRelease()
}

/// No instrumentation: compiles to nothing.
public struct NoLockProbe: LockProbe {
    @inlinable public init() {}
    @inlinable @inline(__always) public mutating func willAcquire() {}
    @inlinable @inline(__always) public mutating func didAcquire(contended: Bool) {}
    @inlinable @inline(__always) public mutating func willRelease() {}
}

/// A clock for `LockStatistics`: the generic timer (`CNTVCT_EL0`) in the
/// kernel, the time-stamp counter or a monotonic clock on the host.
public protocol LockTickSource {
    /// Now, in ticks of this clock.
    static func now() -> UInt64
}

/// Per-core lock statistics: acquisitions, contended acquisitions, and wait
/// and hold times as histograms, in ticks of `Clock`.
///
/// Wait = from asking for the lock to holding it; hold = from holding it to
/// asking to release it. Fixed size (about 8 KiB), no allocation: the kernel
/// keeps one per core in its cluster's partition.
public struct LockStatistics<Clock: LockTickSource>: LockProbe, Sendable {
    public var acquisitions: UInt64 = 0
    public var contendedAcquisitions: UInt64 = 0
    public var wait = LockHistogram()
    public var hold = LockHistogram()
    @usableFromInline var askedAt: UInt64 = 0
    @usableFromInline var gotAt: UInt64 = 0

    public init() {}

    @inlinable @inline(__always)
    public mutating func willAcquire() { askedAt = Clock.now() }

    @inlinable @inline(__always)
    public mutating func didAcquire(contended: Bool) {
        gotAt = Clock.now()
        acquisitions &+= 1
        if contended { contendedAcquisitions &+= 1 }
        wait.record(gotAt &- askedAt)
    }

    @inlinable @inline(__always)
    public mutating func willRelease() { hold.record(Clock.now() &- gotAt) }

    /// Adds another core's statistics to these (reporting only).
    public mutating func merge(_ other: borrowing LockStatistics<Clock>) {
        acquisitions &+= other.acquisitions
        contendedAcquisitions &+= other.contendedAcquisitions
        wait.merge(other.wait)
        hold.merge(other.hold)
    }
}

/// A log-linear histogram of 64-bit values, fixed size, no allocation.
///
/// Values below 8 have a bucket each; above, each power of two is split into
/// 8 equal buckets, so a bucket's width is at most 1/8 of its lower bound: a
/// percentile read back is within 12.5% of the recorded value (reported as the
/// bucket's midpoint, within 6.25%). 496 buckets cover all of `UInt64`.
public struct LockHistogram: Sendable {
    public static let subBucketBits = 3
    public static let bucketCount = 496

    public var buckets = InlineArray<496, UInt64>(repeating: 0)
    public var count: UInt64 = 0
    /// Sum of recorded values (wrapping; 2^64 ticks is centuries).
    public var sum: UInt64 = 0
    public var max: UInt64 = 0

    public init() {}

    /// The bucket that holds `value`.
    @inlinable @inline(__always)
    public static func bucket(of value: UInt64) -> Int {
        if value < 8 { return Int(truncatingIfNeeded: value) }
        let msb = 63 &- value.leadingZeroBitCount          // 3...63
        let sub = Int(truncatingIfNeeded: value >> UInt64(msb &- 3)) & 7
        return (msb &- 2) &* 8 &+ sub
    }

    /// The smallest value in bucket `index`.
    public static func lowerBound(of index: Int) -> UInt64 {
        if index < 8 { return UInt64(index) }
        let msb = index / 8 + 2
        let sub = UInt64(index % 8)
        return (8 + sub) << UInt64(msb - 3)
    }

    /// One more than the largest value in bucket `index` (saturating).
    public static func upperBound(of index: Int) -> UInt64 {
        if index < 8 { return UInt64(index) + 1 }
        let width: UInt64 = 1 << UInt64(index / 8 + 2 - 3)
        let (sum, overflow) = lowerBound(of: index).addingReportingOverflow(width)
        return overflow ? UInt64.max : sum
    }

    @inlinable @inline(__always)
    public mutating func record(_ value: UInt64) {
        buckets[Self.bucket(of: value)] &+= 1
        count &+= 1
        sum &+= value
        if value > max { max = value }
    }

    public mutating func merge(_ other: LockHistogram) {
        for i in 0..<Self.bucketCount { buckets[i] &+= other.buckets[i] }
        count &+= other.count
        sum &+= other.sum
        if other.max > max { max = other.max }
    }

    /// Mean of the recorded values (0 when empty).
    public var mean: Double { count == 0 ? 0 : Double(sum) / Double(count) }

    /// The value at `fraction` (0...1) of the recorded values: the midpoint
    /// of the bucket holding it (exact below 8), never above `max`; `max`
    /// itself for the last rank.
    public func percentile(_ fraction: Double) -> UInt64 {
        if count == 0 { return 0 }
        var rank = UInt64((fraction * Double(count)).rounded(.up))
        if rank < 1 { rank = 1 }
        if rank >= count { return max }
        var seen: UInt64 = 0
        for i in 0..<Self.bucketCount {
            seen &+= buckets[i]
            if seen >= rank {
                let low = Self.lowerBound(of: i)
                let mid = low + (Self.upperBound(of: i) - low) / 2
                return mid < max ? mid : max
            }
        }
        return max
    }
}
