import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Hosted
import HostedChannel
import InterKernel
import Synchronization

/// A deterministic PRNG (SplitMix64) so garbage tests are reproducible.
struct SplitMix: RandomNumberGenerator {
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

/// Direct access to a region's slots, to scribble on them as a faulty or
/// hostile cluster would.
struct Scribbler {
    let region: HostedRegion
    let from: Int
    let to: Int

    func slot(_ sequence: UInt64) -> UnsafeMutableRawPointer {
        region.base + region.layout.slotOffset(from: from, to: to, slot: Int(sequence % UInt64(region.layout.slotsPerRing)))
    }

    func header(_ sequence: UInt64) -> UInt64 {
        (slot(sequence) + 56).assumingMemoryBound(to: Atomic<UInt64>.self).pointee.load(ordering: .acquiring)
    }

    /// Write `payload` words and then `header` into the slot of `sequence`.
    func write(_ sequence: UInt64, header: UInt64, payload: [UInt64] = []) {
        let line = slot(sequence)
        for (i, w) in payload.prefix(7).enumerated() { line.storeBytes(of: w, toByteOffset: 8 * i, as: UInt64.self) }
        (line + 56).assumingMemoryBound(to: Atomic<UInt64>.self).pointee.store(header, ordering: .releasing)
    }
}

/// The message count for stress tests: `CMK_CHANNEL_STRESS_MESSAGES` if set,
/// else `defaultCount`, a quarter of it under ThreadSanitizer (which runs
/// this code 5-10x slower), to keep CI within tens of seconds.
func stressCount(_ defaultCount: Int) -> Int {
    if let text = ProcessInfo.processInfo.environment["CMK_CHANNEL_STRESS_MESSAGES"], let n = Int(text), n > 0 {
        return n
    }
    return underThreadSanitizer ? defaultCount / 4 : defaultCount
}

/// True if this process runs with ThreadSanitizer (its runtime is linked in).
// dlsym(nil, ...): RTLD_DEFAULT (0) on glibc.
let underThreadSanitizer: Bool = dlsym(nil, "__tsan_init") != nil

/// Two CPUs to pin a sender/receiver pair to (different ones if we may use two).
func testCPUs() -> (Int?, Int?) {
    let cpus = allowedHostCPUs()
    if cpus.count >= 2 { return (cpus[0], cpus[1]) }
    return (cpus.first, cpus.first)
}

/// A hang detector for spin loops in stress tests (not a timing assertion): it
/// trips only when a loop made no progress for `limit` seconds, i.e. when a
/// message was lost and the test would otherwise hang forever.
struct Stall {
    var spins = 0
    var since = monotonicNanoseconds()
    static let limit: UInt64 = 60_000_000_000

    mutating func progressed() { spins = 0; since = 0 }

    /// Spin once; returns true if the loop has been stuck for too long.
    mutating func wait() -> Bool {
        Spin.relax(&spins)
        if spins & 0xFFFF == 0 {
            let now = monotonicNanoseconds()
            if since == 0 { since = now }
            return now &- since > Stall.limit
        }
        return false
    }
}
