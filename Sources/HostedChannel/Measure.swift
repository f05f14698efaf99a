import CChannelReference
import Hosted
import InterKernel

/// Round trips between two pinned threads: each sample is one ping/pong in ns.
public struct RoundTripRun: Sendable {
    public var samples: [UInt64]
    public var totalNanoseconds: UInt64
    /// Replies that were not the expected pong (must stay 0).
    public var unexpected: UInt64
    public var meanNanoseconds: Double { Double(totalNanoseconds) / Double(max(samples.count, 1)) }
    public func percentile(_ p: Double) -> UInt64 { Statistics.percentile(sorted: samples.sorted(), p) }
}

/// One-way streaming: `messages` sent back to back, received in order.
public struct StreamRun: Sendable {
    public var messages: UInt64
    public var nanoseconds: UInt64
    /// Messages received out of order or with a wrong payload (must stay 0).
    public var errors: UInt64
    public var messagesPerSecond: Double { Double(messages) * 1e9 / Double(max(nanoseconds, 1)) }
}

/// Hosted measurements of our ring (InterKernel) and of the C reference.
public enum ChannelMeasure {
    /// A C ring (imported as an opaque pointer: it ends in a flexible array).
    struct CRing: @unchecked Sendable {
        let pointer: OpaquePointer
        init(_ pointer: OpaquePointer) { self.pointer = pointer }
    }

    final class Cell: @unchecked Sendable {
        var value: UInt64 = 0
        var other: UInt64 = 0
    }

    /// Our ring: cluster `from` pings cluster `to` `count` times (a fresh region
    /// of `layout`), threads pinned to `cpus`.
    public static func swiftRoundTrips(layout: ChannelLayout, from: Int, to: Int, count: Int,
                                       cpus: (Int, Int)) throws(HostedError) -> RoundTripRun {
        let region = HostedRegion(layout: layout)
        let samples = UnsafeMutablePointer<UInt64>.allocate(capacity: max(count, 1))
        defer { samples.deallocate() }
        let shared = SharedPointer(samples)
        let result = Cell()
        let barrier = StartBarrier(parties: 2)
        let a = region.endpoint(from), b = region.endpoint(to)
        let n = UInt64(count)
        try PinnedThreads.run([
            .init(cpu: cpus.0) {
                let out = a.sender(to: to), inbound = a.receiver(from: to)
                var unexpected: UInt64 = 0
                barrier.wait()
                let start = monotonicNanoseconds()
                var token: UInt64 = 0
                while token < n {
                    var spins = 0
                    let ping = InterKernelMessage.ping(token: token, sentAt: monotonicNanoseconds())
                    while out.trySend(ping) == .full { Spin.relax(&spins) }
                    waiting: while true {
                        switch inbound.poll() {
                        case .empty:
                            Spin.relax(&spins)
                        case let .message(.pong(echo, sentAt, _)) where echo == token:
                            shared.pointer[Int(token)] = monotonicNanoseconds() &- sentAt
                            break waiting
                        default:
                            unexpected += 1
                        }
                    }
                    token += 1
                }
                result.value = monotonicNanoseconds() &- start
                result.other = unexpected
            },
            .init(cpu: cpus.1) {
                let out = b.sender(to: from), inbound = b.receiver(from: from)
                barrier.wait()
                var answered: UInt64 = 0
                var spins = 0
                while answered < n {
                    if case let .message(.ping(token, sentAt)) = inbound.poll() {
                        let pong = InterKernelMessage.pong(token: token, pingSentAt: sentAt,
                                                           repliedAt: monotonicNanoseconds())
                        while out.trySend(pong) == .full { Spin.relax(&spins) }
                        answered += 1
                    } else {
                        Spin.relax(&spins)
                    }
                }
            },
        ])
        return RoundTripRun(samples: Array(UnsafeBufferPointer(start: samples, count: count)),
                            totalNanoseconds: result.value, unexpected: result.other)
    }

    /// Our ring: `count` messages streamed from `from` to `to`.
    public static func swiftStream(layout: ChannelLayout, from: Int, to: Int, count: Int,
                                   cpus: (Int, Int)) throws(HostedError) -> StreamRun {
        let region = HostedRegion(layout: layout)
        let start = Cell(), end = Cell()
        let barrier = StartBarrier(parties: 2)
        let a = region.endpoint(from), b = region.endpoint(to)
        let n = UInt64(count)
        try PinnedThreads.run([
            .init(cpu: cpus.0) {
                let out = a.sender(to: to)
                barrier.wait()
                start.value = monotonicNanoseconds()
                var token: UInt64 = 0
                var spins = 0
                while token < n {
                    if out.trySend(.ping(token: token, sentAt: token)) == .sent {
                        token += 1
                    } else {
                        Spin.relax(&spins)
                    }
                }
            },
            .init(cpu: cpus.1) {
                let inbound = b.receiver(from: from)
                barrier.wait()
                var expected: UInt64 = 0
                var errors: UInt64 = 0
                var spins = 0
                while expected < n {
                    switch inbound.poll() {
                    case .empty:
                        Spin.relax(&spins)
                    case let .message(.ping(token, check)):
                        if token != expected || check != token { errors += 1 }
                        expected += 1
                    default:
                        errors += 1
                        expected += 1
                    }
                }
                end.value = monotonicNanoseconds()
                end.other = errors
            },
        ])
        return StreamRun(messages: n, nanoseconds: end.value &- start.value, errors: end.other)
    }

    /// The C reference: the same round trips between two C rings of `slots` slots.
    public static func cRoundTrips(slots: Int, count: Int, cpus: (Int, Int)) throws(HostedError) -> RoundTripRun {
        let out = CRing(cref_ring_create(UInt32(slots))!)
        let back = CRing(cref_ring_create(UInt32(slots))!)
        defer { cref_ring_free(out.pointer); cref_ring_free(back.pointer) }
        let samples = SharedPointer(UnsafeMutablePointer<UInt64>.allocate(capacity: max(count, 1)))
        defer { samples.pointer.deallocate() }
        let result = Cell()
        let barrier = StartBarrier(parties: 2)
        try PinnedThreads.run([
            .init(cpu: cpus.0) {
                barrier.wait()
                var unexpected: UInt64 = 0
                result.value = cref_rtt_initiator(out.pointer, back.pointer, UInt64(count), samples.pointer, &unexpected)
                result.other = unexpected
            },
            .init(cpu: cpus.1) {
                barrier.wait()
                cref_rtt_responder(out.pointer, back.pointer, UInt64(count))
            },
        ])
        return RoundTripRun(samples: Array(UnsafeBufferPointer(start: samples.pointer, count: count)),
                            totalNanoseconds: result.value, unexpected: result.other)
    }

    /// The C reference: `count` messages streamed over one C ring.
    public static func cStream(slots: Int, count: Int, cpus: (Int, Int)) throws(HostedError) -> StreamRun {
        let ring = CRing(cref_ring_create(UInt32(slots))!)
        defer { cref_ring_free(ring.pointer) }
        let start = Cell(), end = Cell()
        let barrier = StartBarrier(parties: 2)
        let n = UInt64(count)
        try PinnedThreads.run([
            .init(cpu: cpus.0) {
                barrier.wait()
                start.value = monotonicNanoseconds()
                cref_stream_send(ring.pointer, n)
            },
            .init(cpu: cpus.1) {
                barrier.wait()
                end.other = cref_stream_recv(ring.pointer, n)
                end.value = monotonicNanoseconds()
            },
        ])
        return StreamRun(messages: n, nanoseconds: end.value &- start.value, errors: end.other)
    }
}
