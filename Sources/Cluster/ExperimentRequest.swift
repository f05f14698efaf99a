import UserABI

/// An experiment the host asks the booted kernel to run (`cmk experiment ...
/// --qemu`), carried in the boot information after the cluster records.
///
/// Encoding: `words` (8 words): kind, then the kind's parameters, the rest 0.
/// A normal boot carries none (header word 15 = 0).
public enum ExperimentRequest: Equatable, Sendable {
    /// Every cluster pings every other `roundTrips` times and streams
    /// `messages` one-way messages to it.
    case channel(roundTrips: UInt64, messages: UInt64)
    /// Every core of every cluster takes its big lock for `durationTicks`
    /// virtual-counter ticks: workload 0 = null entry, 1 = critical section of
    /// `hold` iterations; `delay` iterations of work outside the lock.
    case lock(workload: UInt64, hold: UInt64, delay: UInt64, durationTicks: UInt64)
    /// `cmk bench ipc --qemu`: cluster 0's root task measures `roundTrips`
    /// Call/ReplyRecv round trips with the PMU (docs/bench-ipc.md).
    case ipcBench(roundTrips: UInt64)

    public static let wordCount = 8
    public static let channelKind: UInt64 = 1
    public static let lockKind: UInt64 = 2
    public static let ipcBenchKind: UInt64 = 3
    /// Round trips of one IPC benchmark run (the 32-bit event counter must
    /// not wrap twice).
    public static let maxBenchRoundTrips: UInt64 = 100_000

    /// Limits: large enough for any sensible run, small enough that a wrong
    /// value cannot keep a machine busy for hours.
    public static let maxRoundTrips: UInt64 = 1_000_000
    public static let maxMessages: UInt64 = 100_000_000
    public static let maxIterations: UInt64 = 1_000_000_000
    /// The lock experiment's critical section runs in the kernel's
    /// benchmark call, which refuses more (`UserABI.benchmarkHoldLimit`).
    public static let maxHold: UInt64 = UserABI.benchmarkHoldLimit
    public static let maxDurationTicks: UInt64 = 600 * 1_000_000_000

    public var words: InlineArray<8, UInt64> {
        var w = InlineArray<8, UInt64>(repeating: 0)
        switch self {
        case .channel(let roundTrips, let messages):
            w[0] = Self.channelKind
            w[1] = roundTrips
            w[2] = messages
        case .lock(let workload, let hold, let delay, let durationTicks):
            w[0] = Self.lockKind
            w[1] = workload
            w[2] = hold
            w[3] = delay
            w[4] = durationTicks
        case .ipcBench(let roundTrips):
            w[0] = Self.ipcBenchKind
            w[1] = roundTrips
        }
        return w
    }

    /// Decode and check 8 words; nil if they are not a valid request.
    public init?(words w: (Int) -> UInt64) {
        for i in 5..<Self.wordCount where w(i) != 0 { return nil }
        switch w(0) {
        case Self.channelKind:
            guard w(3) == 0, w(4) == 0, w(1) >= 1, w(1) <= Self.maxRoundTrips, w(2) >= 1, w(2) <= Self.maxMessages else {
                return nil
            }
            self = .channel(roundTrips: w(1), messages: w(2))
        case Self.lockKind:
            guard w(1) <= 1, w(2) <= Self.maxHold, w(3) <= Self.maxIterations, w(4) >= 1,
                w(4) <= Self.maxDurationTicks
            else { return nil }
            self = .lock(workload: w(1), hold: w(2), delay: w(3), durationTicks: w(4))
        case Self.ipcBenchKind:
            guard w(1) >= 1, w(1) <= Self.maxBenchRoundTrips, w(2) == 0, w(3) == 0, w(4) == 0 else { return nil }
            self = .ipcBench(roundTrips: w(1))
        default:
            return nil
        }
    }
}
