import Foundation
import Hosted
import HostedChannel
import InterKernel
import Synchronization
import Testing

/// Host stress tests: real threads on (if possible) different CPUs, sharing a
/// region. They check that no message is lost, duplicated, reordered or torn.
/// `CMK_CHANNEL_STRESS_MESSAGES` sets the count per ring (default keeps the CI
/// run, TSan included, to tens of seconds).
@Suite(.serialized) struct StressTests {
    static let kind: UInt8 = 0x7F

    /// Word `i` of message `n`: every word differs, so a torn line (words from
    /// two messages) or a stale word is caught.
    static func word(_ n: UInt64, _ i: Int) -> UInt64 {
        (n &+ 1) &* 0x9E37_79B9_7F4A_7C15 ^ UInt64(i) &* 0x0101_0101_0101_0101
    }

    static func payload(_ n: UInt64) -> Payload {
        Payload(word(n, 0), word(n, 1), word(n, 2), word(n, 3), word(n, 4), word(n, 5), word(n, 6))
    }

    final class Outcome: @unchecked Sendable {
        let lock = NSLock()
        var failures: [String] = []
        func fail(_ text: String) { lock.lock(); failures.append(text); lock.unlock() }
    }

    /// Check one received line against the message `expected` from `sender`.
    static func check(_ result: RawReceiveResult, expected: UInt64, outcome: Outcome) -> Bool {
        switch result {
        case .empty:
            return false
        case let .dropped(error):
            outcome.fail("dropped \(error)")
            return true
        case let .message(m):
            if m.header.sequence != UInt32(truncatingIfNeeded: expected) || m.header.kind != kind
                || m.header.length != 7 || m.payload != payload(expected) {
                outcome.fail("message \(expected): got \(m)")
            }
            return true
        }
    }

    @Test(arguments: [2, 4, 8, 64, 256])
    func streamingLosesDuplicatesReordersAndTearsNothing(slots: Int) throws {
        let count = UInt64(stressCount(200_000))
        let region = HostedRegion(layout: try #require(ChannelLayout(clusterCount: 2, slotsPerRing: slots)))
        let tx = region.endpoint(0).sender(to: 1), rx = region.endpoint(1).receiver(from: 0)
        let outcome = Outcome()
        let cpus = testCPUs()
        try PinnedThreads.run([
            .init(cpu: cpus.0) {
                var n: UInt64 = 0
                var stall = Stall()
                while n < count {
                    if tx.trySend(kind: Self.kind, length: 7, payload: Self.payload(n)) == .sent {
                        n += 1
                        stall.progressed()
                    } else if stall.wait() {
                        outcome.fail("sender stuck at \(n)"); return
                    }
                }
            },
            .init(cpu: cpus.1) {
                var n: UInt64 = 0
                var stall = Stall()
                while n < count {
                    if Self.check(rx.pollRaw(), expected: n, outcome: outcome) {
                        n += 1
                        stall.progressed()
                    } else if stall.wait() {
                        outcome.fail("receiver stuck at \(n)"); return
                    }
                }
            },
        ])
        #expect(outcome.failures.isEmpty, "\(outcome.failures.prefix(5))")
        #expect(rx.pollRaw() == .empty)
        #expect(rx.stats.received == count && rx.stats.lost == 0 && rx.stats.dropped.total == 0)
        #expect(tx.stats.sent == count)
    }

    /// Both directions at once, each thread alternating non-blocking sends and
    /// polls (as a kernel serving its rings does): no deadlock when both rings
    /// are full, nothing lost either way.
    @Test(arguments: [2, 16])
    func fullDuplex(slots: Int) throws {
        let count = UInt64(stressCount(200_000))
        let region = HostedRegion(layout: try #require(ChannelLayout(clusterCount: 2, slotsPerRing: slots)))
        let outcome = Outcome()
        let cpus = testCPUs()
        func side(_ me: Int) -> @Sendable () -> Void {
            let endpoint = region.endpoint(me)
            return {
                let tx = endpoint.sender(to: 1 - me), rx = endpoint.receiver(from: 1 - me)
                var sent: UInt64 = 0, received: UInt64 = 0
                var stall = Stall()
                while sent < count || received < count {
                    var progress = false
                    if sent < count, tx.trySend(kind: Self.kind, length: 7, payload: Self.payload(sent)) == .sent {
                        sent += 1
                        progress = true
                    }
                    if received < count, Self.check(rx.pollRaw(), expected: received, outcome: outcome) {
                        received += 1
                        progress = true
                    }
                    if progress {
                        stall.progressed()
                    } else if stall.wait() {
                        outcome.fail("cluster \(me) stuck: sent \(sent) received \(received)"); return
                    }
                }
            }
        }
        try PinnedThreads.run([.init(cpu: cpus.0, body: side(0)), .init(cpu: cpus.1, body: side(1))])
        #expect(outcome.failures.isEmpty, "\(outcome.failures.prefix(5))")
        for me in 0..<2 {
            let stats = region.endpoint(me).receiver(from: 1 - me).stats
            #expect(stats.received == count && stats.lost == 0 && stats.dropped.total == 0)
        }
    }

    /// Three clusters, typed messages, every cluster sending to both others
    /// and serving its incoming rings with `pollAll` (more threads than CPUs
    /// here: the waits yield).
    @Test func threeClustersAllToAll() throws {
        let count = UInt64(stressCount(200_000) / 20)
        let region = HostedRegion(layout: try #require(ChannelLayout(clusterCount: 3, slotsPerRing: 8)))
        let outcome = Outcome()
        func cluster(_ me: Int) -> @Sendable () -> Void {
            let endpoint = region.endpoint(me)
            return {
                let peers = (0..<3).filter { $0 != me }
                var sent = [UInt64](repeating: 0, count: 3)
                var received = [UInt64](repeating: 0, count: 3)
                var stall = Stall()
                while peers.contains(where: { sent[$0] < count || received[$0] < count }) {
                    var progress = false
                    for peer in peers where sent[peer] < count {
                        let message = InterKernelMessage.ping(token: UInt64(me), sentAt: sent[peer] + 1)
                        if endpoint.trySend(message, to: peer) == .sent { sent[peer] += 1; progress = true }
                    }
                    _ = endpoint.pollAll { from, result in
                        progress = true
                        guard case let .message(.ping(object, badge)) = result, object == UInt64(from),
                              badge == received[from] + 1 else {
                            outcome.fail("cluster \(me) from \(from): \(result) after \(received[from])"); return
                        }
                        received[from] += 1
                    }
                    if progress {
                        stall.progressed()
                    } else if stall.wait() {
                        outcome.fail("cluster \(me) stuck"); return
                    }
                }
            }
        }
        try PinnedThreads.run((0..<3).map { .init(cpu: nil, body: cluster($0)) })
        #expect(outcome.failures.isEmpty, "\(outcome.failures.prefix(5))")
    }

    /// The sleep protocol under load: the receiver sleeps (on a semaphore, the
    /// hosted doorbell) whenever it finds nothing; the sender rings only when
    /// the wake flag says so. A lost wake-up would leave the receiver asleep
    /// with a message pending: the hang detector (a generous bound, not a
    /// timing assertion) turns that into a failure.
    @Test func noLostWakeUps() throws {
        let count = UInt64(stressCount(200_000) / 10)
        let region = HostedRegion(layout: try #require(ChannelLayout(clusterCount: 2, slotsPerRing: 4)))
        final class SemaphoreDoorbell: ChannelDoorbell, @unchecked Sendable {
            let semaphore = DispatchSemaphore(value: 0)
            let rung = Atomic<Int>(0)
            func ring(cluster: Int) {
                rung.wrappingAdd(1, ordering: .relaxed)
                semaphore.signal()
            }
        }
        let bell = SemaphoreDoorbell()
        let outcome = Outcome()
        let sleeps = Atomic<Int>(0)
        let a = region.endpoint(0), b = region.endpoint(1)
        let cpus = testCPUs()
        try PinnedThreads.run([
            .init(cpu: cpus.0) {
                var rng = SplitMix(seed: 42)
                var n: UInt64 = 0
                var stall = Stall()
                while n < count {
                    if a.send(.ping(token: 0, sentAt: n + 1), to: 1, doorbell: bell) == .sent {
                        n += 1
                        stall.progressed()
                        // Sometimes pause, so the receiver gets to fall asleep.
                        if rng.next() % 8 == 0 { for _ in 0..<Int(rng.next() % 2000) { Spin.relax(&stall.spins) } }
                    } else if stall.wait() {
                        outcome.fail("sender stuck at \(n)"); return
                    }
                }
            },
            .init(cpu: cpus.1) {
                var n: UInt64 = 0
                while n < count {
                    switch b.receiver(from: 0).poll() {
                    case let .message(.ping(_, badge)):
                        if badge != n + 1 { outcome.fail("got \(badge) expected \(n + 1)") }
                        n += 1
                    case .empty:
                        if b.prepareToSleep() {
                            sleeps.wrappingAdd(1, ordering: .relaxed)
                            if bell.semaphore.wait(timeout: .now() + 60) == .timedOut {
                                outcome.fail("lost wake-up: asleep at \(n) with the sender done or stuck")
                                b.finishSleep()
                                return
                            }
                            b.finishSleep()
                            // Drop permits from doorbells we no longer need (we
                            // poll before sleeping again), so a stale one cannot
                            // hide a lost wake-up later.
                            while bell.semaphore.wait(timeout: .now()) == .success {}
                        }
                    case let other:
                        outcome.fail("unexpected \(other)"); return
                    }
                }
            },
        ])
        #expect(outcome.failures.isEmpty, "\(outcome.failures.prefix(5))")
        // The protocol was exercised: the receiver did sleep and was rung awake.
        #expect(sleeps.load(ordering: .relaxed) > 0)
        #expect(bell.rung.load(ordering: .relaxed) > 0)
    }
}
