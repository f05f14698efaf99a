import Hosted
import HostedChannel
import InterKernel
import Testing

/// Garbage in the ring: the receiver drops and counts it, reports it as the
/// last error, and keeps receiving the real messages.
@Suite struct GarbageTests {
    struct Fixture {
        let region: HostedRegion
        let tx: RingSender
        let rx: RingReceiver
        let scribbler: Scribbler
        init(slots: Int = 4) {
            region = HostedRegion(layout: ChannelLayout(clusterCount: 3, slotsPerRing: slots)!)
            tx = region.endpoint(0).sender(to: 1)
            rx = region.endpoint(1).receiver(from: 0)
            scribbler = Scribbler(region: region, from: 0, to: 1)
        }

        /// Send real messages (in pairs, so the ring wraps) and check they all
        /// arrive, in order.
        func sendAndReceive(_ tokens: Range<UInt64>) {
            var t = tokens.lowerBound
            while t < tokens.upperBound {
                let batch = t..<min(t + 2, tokens.upperBound)
                for u in batch { #expect(tx.trySend(.ping(token: u, sentAt: u)) == .sent) }
                for u in batch { #expect(rx.poll() == .message(.ping(token: u, sentAt: u))) }
                t = batch.upperBound
            }
            #expect(rx.poll() == .empty)
        }
    }

    /// The receiver's cursor and counters are its private state: a peer that
    /// overwrites every byte of the ring outside the slots (where they used
    /// to live) changes nothing the receiver counts or expects.
    @Test func peerCannotRewindOrForgeTheReceiversState() {
        let f = Fixture()
        f.sendAndReceive(0..<5)
        let before = f.rx.stats
        let ring = f.region.base + f.region.layout.ringOffset(from: 0, to: 1)
        for offset in stride(from: ChannelLayout.wakeFlagOffset, to: ChannelLayout.ringHeaderSize, by: 8) {
            ring.storeBytes(of: UInt64.max, toByteOffset: offset, as: UInt64.self)
        }
        #expect(f.rx.stats == before)
        f.sendAndReceive(5..<20)
        #expect(f.rx.stats.received == 20 && f.rx.stats.dropped.total == 0 && f.rx.stats.lost == 0)
    }

    /// A line from the right sender with the right sequence but a bad field:
    /// consumed, dropped, counted; nothing is lost or stuck.
    @Test(arguments: [
        (MessageHeader(kind: 0x77, sender: 0, length: 2, sequence: 1), DropReason.badKind),
        (MessageHeader(kind: 1, sender: 0, length: 5, sequence: 1), DropReason.badLength),
        (MessageHeader(kind: 1, sender: 0, length: 9, sequence: 1), DropReason.badLength),
        (MessageHeader(kind: 3, sender: 0, length: 2, sequence: 1), DropReason.badLength),  // notify is one word
        (MessageHeader(kind: 4, sender: 0, length: 1, sequence: 1), DropReason.badPayload),  // shutdown, reason 0
    ])
    func malformedLineFromTheSenderIsDropped(header: MessageHeader, reason: DropReason) {
        let f = Fixture()
        f.sendAndReceive(0..<1)
        #expect(f.tx.unsafeSendScribbled(header: header, payload: Payload(5, 0)) == .sent)
        #expect(f.rx.poll() == .dropped(ChannelError(reason: reason, header: header, expectedSequence: 1)))
        #expect(f.rx.stats.dropped[reason] == 1 && f.rx.stats.dropped.total == 1)
        #expect(f.rx.stats.lastError?.reason == reason)
        f.sendAndReceive(2..<40)
        #expect(f.rx.stats.lost == 0 && f.rx.stats.received == 39)
    }

    /// A stale (last lap's) or future sequence, or a torn header, in the slot
    /// the sender will use next: dropped without advancing, so the real
    /// message that then goes into that slot is received and nothing is lost.
    @Test(arguments: ["stale", "replayed", "future", "torn", "torn-half", "other-sender"])
    func untrustedLineAheadOfTheSenderCostsNothing(kind: String) {
        let f = Fixture()
        f.sendAndReceive(0..<6)  // next sequence 6, slot 2
        let good = MessageHeader(kind: 1, sender: 0, length: 2, sequence: 6).raw
        let header: UInt64
        let reason: DropReason
        switch kind {
        case "stale": header = MessageHeader(kind: 1, sender: 0, length: 2, sequence: 2).raw; reason = .wrongSequence
        case "replayed": header = MessageHeader(kind: 1, sender: 0, length: 2, sequence: 5).raw; reason = .wrongSequence
        case "future": header = MessageHeader(kind: 1, sender: 0, length: 2, sequence: 10).raw; reason = .wrongSequence
        case "torn": header = good ^ 0x0000_0100_0000_0000; reason = .tornHeader
        case "other-sender": header = MessageHeader(kind: 1, sender: 2, length: 2, sequence: 6).raw; reason = .badSender
        default:
            // Low half of one header, high half of another.
            let other = MessageHeader(kind: 2, sender: 0, length: 3, sequence: 99).raw
            header = (good & 0xFFFF_FFFF) | (other & 0xFFFF_FFFF_0000_0000); reason = .tornHeader
        }
        f.scribbler.write(6, header: header, payload: [1, 2])
        // The sender sees the scribbled slot as full: push back, no overwrite.
        #expect(f.tx.trySend(.ping(token: 6, sentAt: 6)) == .full)
        #expect(f.rx.poll() == .dropped(ChannelError(reason: reason, header: MessageHeader(raw: header), expectedSequence: 6)))
        #expect(f.rx.stats.dropped[reason] == 1)
        #expect(f.rx.poll() == .empty)
        f.sendAndReceive(6..<30)
        #expect(f.rx.stats.lost == 0 && f.rx.stats.dropped.total == 1 && f.rx.stats.received == 30)
    }

    /// A line naming another sender, even with the right sequence, is not
    /// trusted to be our sender's: dropped without advancing. When it really
    /// took our sender's place (the sender advanced), the receiver learns from
    /// the sender's cursor that one message is gone, counts it lost, and goes on.
    @Test func lineFromAnotherSenderInOurSendersPlace() {
        let f = Fixture()
        f.sendAndReceive(0..<1)
        let header = MessageHeader(kind: 1, sender: 2, length: 2, sequence: 1)
        #expect(f.tx.unsafeSendScribbled(header: header, payload: Payload(5, 0)) == .sent)
        #expect(f.rx.poll() == .dropped(ChannelError(reason: .badSender, header: header, expectedSequence: 1)))
        f.sendAndReceive(2..<40)
        #expect(f.rx.stats.dropped.badSender == 1 && f.rx.stats.dropped.total == 1)
        #expect(f.rx.stats.lost == 1 && f.rx.stats.received == 39)
    }

    /// A real message silently zeroed in flight (no garbage left to notice):
    /// the sender laps the empty slot a ring later; the receiver sees the next
    /// lap's message there, confirms it with the sender's cursor, counts one
    /// lost and keeps going, losing nothing else.
    @Test func silentlyErasedMessageIsDetectedWhenTheSenderLaps() {
        let f = Fixture(slots: 4)
        f.sendAndReceive(0..<2)
        #expect(f.tx.trySend(.ping(token: 2, sentAt: 2)) == .sent)
        f.scribbler.write(2, header: 0)
        #expect(f.rx.poll() == .empty)
        // Sender fills the other slots, then laps slot 2 with message 6.
        for t in UInt64(3)...6 { #expect(f.tx.trySend(.ping(token: t, sentAt: t)) == .sent) }
        for t in UInt64(3)...6 { #expect(f.rx.poll() == .message(.ping(token: t, sentAt: t))) }
        #expect(f.rx.poll() == .empty)
        #expect(f.rx.stats.lost == 1 && f.rx.stats.dropped.total == 0)
        f.sendAndReceive(7..<30)
    }

    /// Real messages destroyed in flight (headers overwritten): each line is
    /// dropped, each message counted lost, and the rest arrive in order.
    @Test(arguments: [1, 2, 3])
    func destroyedMessagesAreCountedLostAndSkipped(destroyed: Int) {
        let f = Fixture(slots: 8)
        f.sendAndReceive(0..<3)
        for t in UInt64(3)..<8 { #expect(f.tx.trySend(.ping(token: t, sentAt: t)) == .sent) }
        for i in 0..<destroyed {
            f.scribbler.write(UInt64(3 + i), header: 0xFFFF_FFFF_FFFF_FFFF)
        }
        // Each destroyed line is dropped; the next poll learns from the
        // sender's cursor that its message is gone and moves to the next slot.
        for i in 0..<destroyed {
            #expect(f.rx.poll() == .dropped(ChannelError(reason: .tornHeader, header: MessageHeader(raw: ~0),
                                                         expectedSequence: UInt32(3 + i))))
        }
        for t in UInt64(3 + destroyed)..<8 { #expect(f.rx.poll() == .message(.ping(token: t, sentAt: t))) }
        #expect(f.rx.stats.lost == UInt64(destroyed))
        f.sendAndReceive(8..<50)
    }

    /// Random garbage in random slots, between real traffic: no real message
    /// is ever delivered out of order or twice, and no garbage is delivered.
    @Test func randomGarbageNeverWedgesOrLeaks() {
        let f = Fixture(slots: 8)
        var rng = SplitMix(seed: 0xC0FFEE)
        var next: UInt64 = 0
        var lastDelivered: UInt64? = nil
        var delivered = 0
        for _ in 0..<20_000 {
            switch rng.next() % 4 {
            case 0:
                // Scribble into a random slot that is free (as a hostile writer could).
                let seq = f.tx.stats.nextSequence + rng.next() % 8
                if f.scribbler.header(seq) == 0 {
                    f.scribbler.write(seq, header: rng.next() | 1, payload: [rng.next(), rng.next(), rng.next()])
                }
            case 1, 2:
                if f.tx.trySend(.ping(token: next, sentAt: ~next)) == .sent { next += 1 }
            default:
                for _ in 0..<4 {
                    switch f.rx.poll() {
                    case let .message(m):
                        guard case let .ping(token, sentAt) = m, sentAt == ~token, token < next else {
                            Issue.record("garbage delivered: \(m)"); return
                        }
                        if let last = lastDelivered { #expect(token > last) }
                        lastDelivered = token
                        delivered += 1
                    case .dropped, .empty: break
                    }
                }
            }
        }
        // Drain: garbage left ahead of the sender is eventually consumed, and
        // traffic still flows afterwards.
        for _ in 0..<64 { _ = f.rx.poll() }
        let before = delivered
        var sent = 0
        for _ in 0..<200 {
            if f.tx.trySend(.ping(token: next, sentAt: ~next)) == .sent { next += 1; sent += 1 }
            while case let .message(m) = f.rx.poll() {
                guard case let .ping(token, _) = m else { continue }
                if let last = lastDelivered { #expect(token > last) }
                lastDelivered = token
                delivered += 1
            }
            _ = f.rx.poll()
        }
        #expect(sent > 150 && delivered - before >= sent - 8)
        #expect(f.rx.stats.dropped.total > 0)
        let accounted = f.rx.stats.received + f.rx.stats.lost
        #expect(accounted <= next)
    }
}
