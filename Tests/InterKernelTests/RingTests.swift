import Hosted
import HostedChannel
import InterKernel
import Testing

@Suite struct RingTests {
    @Test(arguments: [2, 4, 16, 256])
    func fillsToCapacityThenPushesBackWithoutOverwriting(slots: Int) throws {
        let region = HostedRegion(layout: try #require(ChannelLayout(clusterCount: 2, slotsPerRing: slots)))
        let tx = region.endpoint(0).sender(to: 1), rx = region.endpoint(1).receiver(from: 0)
        for token in 0..<UInt64(slots) {
            #expect(tx.trySend(.ping(token: token, sentAt: token * 10)) == .sent)
        }
        #expect(!tx.canSend)
        #expect(tx.trySend(.ping(token: 999, sentAt: 0)) == .full)
        #expect(tx.stats.refusedFull == 1)
        // The refused message wrote nothing: every message comes out, in order.
        for token in 0..<UInt64(slots) {
            #expect(rx.poll() == .message(.ping(token: token, sentAt: token * 10)))
        }
        #expect(rx.poll() == .empty)
        #expect(tx.canSend)
        #expect(rx.stats.received == UInt64(slots) && rx.stats.dropped.total == 0)
    }

    @Test func wrapsManyLapsInOrder() throws {
        let region = HostedRegion(layout: try #require(ChannelLayout(clusterCount: 2, slotsPerRing: 4)))
        let tx = region.endpoint(1).sender(to: 0), rx = region.endpoint(0).receiver(from: 1)
        var next: UInt64 = 0, expected: UInt64 = 0
        var rng = SplitMix(seed: 7)
        while expected < 10_000 {
            // Send a random burst until full, then drain a random amount.
            for _ in 0..<Int(rng.next() % 6) where tx.trySend(.ping(token: next, sentAt: next | 1)) == .sent {
                next += 1
            }
            for _ in 0..<Int(rng.next() % 6) {
                guard case let .message(m) = rx.poll() else { break }
                #expect(m == .ping(token: expected, sentAt: expected | 1))
                expected += 1
            }
        }
        #expect(rx.stats.dropped.total == 0 && rx.stats.lost == 0)
    }

    @Test func everyKindRoundTrips() throws {
        let region = HostedRegion(layout: try #require(ChannelLayout(clusterCount: 3, slotsPerRing: 8)))
        let tx = region.endpoint(2).sender(to: 0), rx = region.endpoint(0).receiver(from: 2)
        let messages: [InterKernelMessage] = [
            .ping(token: 1, sentAt: 2), .pong(token: 1, pingSentAt: 2, repliedAt: 3),
            .notify(export: 5), .notify(export: 15), .shutdown(.powerOff), .shutdown(.fatal),
        ]
        for m in messages {
            #expect(m.isValid)
            #expect(tx.trySend(m) == .sent)
            #expect(rx.poll() == .message(m))
        }
        #expect(!InterKernelMessage.notify(export: 16).isValid)
        #expect(!InterKernelMessage.notify(export: .max).isValid)
        // On arrival: one word, an export index below 16, else refused.
        #expect(InterKernelMessage(kind: .notify, payload: Payload(15)) == .notify(export: 15))
        #expect(InterKernelMessage(kind: .notify, payload: Payload(16)) == nil)
        #expect(MessageKind.notify.payloadLength == 1)
    }

    @Test func endpointPollsEveryIncomingRing() throws {
        let region = HostedRegion(layout: try #require(ChannelLayout(clusterCount: 4, regionSize: 1 << 20)))
        for from in 1..<4 {
            #expect(region.endpoint(from).trySend(.ping(token: UInt64(from), sentAt: 0), to: 0) == .sent)
        }
        var got: [Int: InterKernelMessage] = [:]
        #expect(region.endpoint(0).pollAll { from, result in
            if case let .message(m) = result { got[from] = m }
        } == 3)
        #expect(got == [1: .ping(token: 1, sentAt: 0), 2: .ping(token: 2, sentAt: 0), 3: .ping(token: 3, sentAt: 0)])
        #expect(region.endpoint(0).pollAll { _, _ in } == 0)
    }

    @Test func doorbellRingsOnlyWhenTheReceiverMaySleep() throws {
        let region = HostedRegion(layout: try #require(ChannelLayout(clusterCount: 2, slotsPerRing: 4)))
        let a = region.endpoint(0), b = region.endpoint(1)
        final class Bell: ChannelDoorbell { var rung: [Int] = []; func ring(cluster: Int) { rung.append(cluster) } }
        let bell = Bell()
        // Awake receiver: no doorbell.
        #expect(a.send(.notify(export: 1), to: 1, doorbell: bell) == .sent)
        #expect(bell.rung.isEmpty)
        // Something is pending, so the receiver may not sleep.
        #expect(!b.prepareToSleep())
        _ = b.pollAll { _, _ in }
        // Nothing pending: it may sleep, and the next send rings it.
        #expect(b.prepareToSleep())
        #expect(a.send(.notify(export: 2), to: 1, doorbell: bell) == .sent)
        #expect(bell.rung == [1])
        b.finishSleep()
        #expect(a.send(.notify(export: 4), to: 1, doorbell: bell) == .sent)
        #expect(bell.rung == [1])
        #expect(a.sender(to: 1).stats.doorbells == 1)
    }

    /// A receiver served from the doorbell's interrupt (the kernel while its
    /// root task runs) asks for every doorbell, even with messages pending,
    /// until it clears the flags; what was sent before it asked is in the
    /// ring for its first poll.
    @Test func requestedDoorbellsRingForEverySendUntilCleared() throws {
        let region = HostedRegion(layout: try #require(ChannelLayout(clusterCount: 3, slotsPerRing: 4)))
        let a = region.endpoint(0), b = region.endpoint(1), c = region.endpoint(2)
        final class Bell: ChannelDoorbell { var rung: [Int] = []; func ring(cluster: Int) { rung.append(cluster) } }
        let bell = Bell()
        #expect(a.send(.notify(export: 1), to: 1, doorbell: bell) == .sent)
        #expect(bell.rung.isEmpty)
        b.requestDoorbells()
        #expect(a.send(.notify(export: 2), to: 1, doorbell: bell) == .sent)
        #expect(c.send(.notify(export: 3), to: 1, doorbell: bell) == .sent)
        #expect(a.send(.notify(export: 4), to: 1, doorbell: bell) == .sent)
        #expect(bell.rung == [1, 1, 1])
        // Only the requesting cluster's rings: a send to cluster 2 rings nothing.
        #expect(a.send(.notify(export: 5), to: 2, doorbell: bell) == .sent)
        #expect(bell.rung == [1, 1, 1])
        var got: [InterKernelMessage] = []
        while b.pollAll({ _, result in if case let .message(m) = result { got.append(m) } }) > 0 {}
        #expect(got.count == 4)
        for e: UInt64 in 1...4 { #expect(got.contains(.notify(export: e))) }
        b.finishSleep()
        #expect(a.send(.notify(export: 6), to: 1, doorbell: bell) == .sent)
        #expect(bell.rung == [1, 1, 1])
    }

    /// A ring that is full while its receiver sleeps can only hold garbage:
    /// the sender's `.full` rings the doorbell, the receiver drains it, and
    /// the retried send goes through.
    @Test func fullRingWakesASleepingReceiver() throws {
        let region = HostedRegion(layout: try #require(ChannelLayout(clusterCount: 2, slotsPerRing: 2)))
        let a = region.endpoint(0), b = region.endpoint(1)
        final class Bell: ChannelDoorbell { var rung: [Int] = []; func ring(cluster: Int) { rung.append(cluster) } }
        let bell = Bell()
        #expect(b.prepareToSleep())
        Scribbler(region: region, from: 0, to: 1).write(0, header: 0xBAD)
        #expect(a.send(.notify(export: 1), to: 1, doorbell: bell) == .full)
        #expect(bell.rung == [1])
        b.finishSleep()
        _ = b.pollAll { _, _ in }
        #expect(a.send(.notify(export: 1), to: 1, doorbell: bell) == .sent)
        #expect(b.receiver(from: 0).poll() == .message(.notify(export: 1)))
        #expect(b.receiver(from: 0).stats.dropped.tornHeader == 1)
    }
}
