import Synchronization

// One single-producer single-consumer ring (the Barrelfish UMP design).
//
// Protocol, for message number `s` of a ring with `n` (a power of two) slots:
//
//   sender                                    receiver
//   ------                                    --------
//   h = slot[s % n].header.load(acquire)      h = slot[s % n].header.load(acquire)
//   if h != 0: full, push back                if h == 0: empty
//   write payload words (plain stores)        read payload words (plain loads)
//   slot.header.store(H(s), release)          slot.header.store(0, release)
//   s += 1                                    validate; s += 1
//
// How the sender learns a slot is free: the receiver clears the header after
// copying the payload out (FastForward, Giacomoni et al., PPoPP 2008). The
// alternative, acknowledgements in the reverse ring, needs a second message
// stream and couples the two directions' flow control; clearing costs nothing
// extra in line transfers, because the sender must pull that line into its
// cache anyway to write the next message into it. There are no shared head or
// tail counters: each side's cursor lives on a line only it writes.
//
// Orderings (each pair synchronises through one slot's header word):
// - Sender's release store of the header / receiver's acquire load of it: the
//   payload stores happen-before the receiver's payload loads, so a receiver
//   that sees a full header never reads a half-written payload.
// - Receiver's release store of 0 / sender's acquire load of it: the
//   receiver's payload loads happen-before the sender's next payload stores
//   into that slot, so the sender cannot overwrite a line still being read.
// Payload words are plain (non-atomic) accesses: the two pairs above make
// every conflicting pair of them ordered by happens-before, so there is no race.
// Cursors and counters are plain: each is touched by one side only. The
// receiver's live in its own private memory; the sender's cursor line is in
// the ring (the receiver reads it when recovering), so a receiver can spoil
// only the counters of the ring it receives on, never the sender's other
// rings.

/// The sender's cursor line (ring offset 0), written only by the sending cluster.
@usableFromInline
struct SenderState: ~Copyable {
    /// Number of the next message; it goes to slot `nextSequence % slots`.
    /// Atomic only because the receiver reads it when recovering from a
    /// destroyed message (never on the fast path, so the line stays in the
    /// sender's cache). The sender stores it with release after each header,
    /// so a receiver that acquire-loads `n` sees the header of every message
    /// below `n` (or a later write to its slot).
    @usableFromInline let nextSequence = Atomic<UInt64>(0)
    @usableFromInline var sent: UInt64 = 0
    /// `trySend` calls that found the ring full.
    @usableFromInline var refusedFull: UInt64 = 0
    /// Doorbells rung on this ring's receiver.
    @usableFromInline var doorbells: UInt64 = 0
    @usableFromInline init() {}
}

/// The receiver's cursor and counters: in the receiving cluster's private
/// memory (`ChannelEndpoint`'s private state), never in the shared region,
/// so a peer can neither rewind the receiver nor forge its counts. At most
/// `RingReceiver.stateSize` bytes.
@usableFromInline
struct ReceiverState {
    /// Number of the next message expected, in slot `nextSequence % slots`.
    @usableFromInline var nextSequence: UInt64 = 0
    @usableFromInline var received: UInt64 = 0
    /// Messages known to be lost: the sender had sent them, but their slot
    /// was found empty or refilled a lap later (a scribbled line destroyed them).
    @usableFromInline var lost: UInt64 = 0
    /// Recovering while `nextSequence < resyncEnd`: a line we cleared as
    /// untrusted (or a lapped slot) may have destroyed messages numbered up to
    /// the sender's cursor at that moment (the one being written included), so
    /// until we are past them an empty slot also consults the sender's cursor.
    @usableFromInline var resyncEnd: UInt64 = 0
    @usableFromInline var dropped = DropCounts()
    @usableFromInline var lastErrorHeader: UInt64 = 0
    @usableFromInline var lastErrorExpected: UInt32 = 0
    @usableFromInline var lastErrorReason: UInt8 = 0
    @usableFromInline init() {}
}

/// What `trySend` did.
public enum SendResult: Equatable, Sendable {
    /// The message is in the ring.
    case sent
    /// Every slot is still full: nothing was written. Retry later (after the
    /// receiver drains) or give up; the message is not queued anywhere.
    case full
}

/// What one poll of a ring found (typed messages).
public enum ReceiveResult: Equatable, Sendable {
    case empty
    case message(InterKernelMessage)
    /// A malformed line was counted and dropped; the ring keeps working.
    case dropped(ChannelError)
}

/// What one poll of a ring found, before kinds are decoded.
public enum RawReceiveResult: Equatable, Sendable {
    case empty
    case message(RawMessage)
    case dropped(ChannelError)
}

public struct SenderStats: Equatable, Sendable {
    public var nextSequence: UInt64
    public var sent: UInt64
    public var refusedFull: UInt64
    public var doorbells: UInt64
}

public struct ReceiverStats: Equatable, Sendable {
    public var nextSequence: UInt64
    public var received: UInt64
    public var lost: UInt64
    public var dropped: DropCounts
    /// The last dropped line, if any: what the kernel prints.
    public var lastError: ChannelError?
}

/// The sending end of one ring: a view (pointers only) onto the shared region.
/// Copies are views of the same ring. One core at a time may send on a ring
/// (in the kernel: the sending cluster's big lock is held).
public struct RingSender {
    /// The ring's base: the sender's cursor line; slots follow the cursor lines.
    @usableFromInline let ring: UnsafeMutableRawPointer
    @usableFromInline let mask: UInt64
    @usableFromInline let cluster: UInt8

    /// A sender on the ring at `ring` (its offset from `ChannelLayout`), sending
    /// as cluster `sender`.
    @inlinable
    public init(ring: UnsafeMutableRawPointer, slotsPerRing: Int, sender: Int) {
        self.ring = ring
        self.mask = UInt64(slotsPerRing - 1)
        self.cluster = UInt8(truncatingIfNeeded: sender)
    }

    @inlinable var state: UnsafeMutablePointer<SenderState> {
        ring.assumingMemoryBound(to: SenderState.self)
    }

    @inlinable func slot(_ sequence: UInt64) -> UnsafeMutableRawPointer {
        ring + (ChannelLayout.ringHeaderSize + Int(truncatingIfNeeded: sequence & mask) &* ChannelLayout.slotSize)
    }

    @inlinable func header(_ slot: UnsafeMutableRawPointer) -> UnsafeMutablePointer<Atomic<UInt64>> {
        (slot + Slot.headerOffset).assumingMemoryBound(to: Atomic<UInt64>.self)
    }

    /// True if the next slot is free (a `trySend` now would succeed).
    @inlinable
    public var canSend: Bool {
        // Acquiring: as in `trySend`, so a caller that then writes the slot is ordered after the receiver's reads.
        header(slot(state.pointee.nextSequence.load(ordering: .relaxed))).pointee.load(ordering: .acquiring) == 0
    }

    /// Put a message with `kind` (raw), `length` payload words into the ring,
    /// or report `.full`. Does not validate the kind: `trySend(_:)` does.
    @inlinable @inline(__always)
    public func trySend(kind: UInt8, length: Int, payload: Payload) -> SendResult {
        precondition(length >= 0 && length <= Slot.payloadWords, "channel: payload too long")
        // Relaxed: only this sender writes its cursor.
        let sequence = state.pointee.nextSequence.load(ordering: .relaxed)
        let line = slot(sequence)
        // Acquiring: pairs with the receiver's releasing clear, so its reads of
        // this slot's previous payload happen-before our writes below.
        if header(line).pointee.load(ordering: .acquiring) != 0 {
            state.pointee.refusedFull &+= 1
            return .full
        }
        var index = 0
        while index < length {
            line.storeBytes(of: payload[index], toByteOffset: index &* 8, as: UInt64.self)
            index &+= 1
        }
        let word = MessageHeader(kind: kind, sender: cluster, length: UInt8(truncatingIfNeeded: length),
                                 sequence: UInt32(truncatingIfNeeded: sequence))
        // Releasing: the payload stores above happen-before the receiver's
        // payload loads, once its acquiring load sees this header.
        header(line).pointee.store(word.raw, ordering: .releasing)
        // Releasing: see `SenderState.nextSequence` (receiver recovery only).
        state.pointee.nextSequence.store(sequence &+ 1, ordering: .releasing)
        state.pointee.sent &+= 1
        return .sent
    }

    /// Send a typed message. Invalid messages (which the receiver would drop)
    /// are refused by a precondition: they are a bug in the sending kernel.
    @inlinable @inline(__always)
    public func trySend(_ message: InterKernelMessage) -> SendResult {
        let kind = message.kind
        return trySend(kind: kind.rawValue, length: Int(kind.payloadLength), payload: message.payload)
    }

    /// Fault injection for tests: write `header` as given (any bits) and
    /// `payload` into the next slot and advance, as a buggy sender would.
    /// Returns `.full` without writing if the slot is not free.
    public func unsafeSendScribbled(header word: MessageHeader, payload: Payload) -> SendResult {
        let sequence = state.pointee.nextSequence.load(ordering: .relaxed)
        let line = slot(sequence)
        if header(line).pointee.load(ordering: .acquiring) != 0 { return .full }
        for index in 0..<Slot.payloadWords {
            line.storeBytes(of: payload[index], toByteOffset: index * 8, as: UInt64.self)
        }
        header(line).pointee.store(word.raw, ordering: .releasing)
        state.pointee.nextSequence.store(sequence &+ 1, ordering: .releasing)
        return .sent
    }

    /// Fault injection: overwrite slot `index` (any state) with `payload` and
    /// then `header` (any bits), without touching the cursor, as a kernel
    /// scribbling on its own outgoing ring would (`cmk boot --inject flood`).
    public func unsafeScribble(slot index: Int, header word: UInt64, payload: Payload) {
        let line = ring + (ChannelLayout.ringHeaderSize + Int(truncatingIfNeeded: UInt64(truncatingIfNeeded: index) & mask) &* ChannelLayout.slotSize)
        for i in 0..<Slot.payloadWords {
            line.storeBytes(of: payload[i], toByteOffset: i * 8, as: UInt64.self)
        }
        // Releasing, as a real header store: a receiver that sees it reads this payload.
        header(line).pointee.store(word, ordering: .releasing)
    }

    /// The header this sender would write for its next message of `kind`.
    public func nextHeader(kind: UInt8, length: UInt8) -> MessageHeader {
        MessageHeader(kind: kind, sender: cluster, length: length,
                      sequence: UInt32(truncatingIfNeeded: state.pointee.nextSequence.load(ordering: .relaxed)))
    }

    @inlinable func noteDoorbell() { state.pointee.doorbells &+= 1 }

    public var stats: SenderStats {
        let s = state
        return SenderStats(nextSequence: s.pointee.nextSequence.load(ordering: .relaxed), sent: s.pointee.sent,
                           refusedFull: s.pointee.refusedFull, doorbells: s.pointee.doorbells)
    }
}

/// The receiving end of one ring: a view onto the shared region. One core at a
/// time may receive on a ring (in the kernel: the receiving cluster's big lock).
///
/// Every line is validated: header check byte, sequence, sender, length, and
/// (in `poll`) kind and payload. A malformed line is counted, recorded as the
/// last error, cleared and dropped; the receiver never traps on ring contents
/// and never waits on anything but the next slot.
///
/// Recovery rules (the sender is the authority on which message goes where:
/// message `s` always goes to slot `s mod slots`):
/// - Intact header from our sender with the expected sequence, but bad length,
///   kind or payload: it is the sender's message for this slot; consume
///   (advance) and drop it.
/// - Torn header, wrong sequence or wrong sender: the line cannot be trusted
///   to be our sender's; clear it (compare-and-swap, so a real message that
///   just replaced it survives) without advancing (the sender's message for
///   this slot may still come, e.g. if the line was scribbled ahead of it) and
///   enter resync up to the sender's cursor as read after the clear: the
///   cleared line can only have destroyed messages numbered up to there.
/// - In resync, when the slot is empty: acquire-load the sender's cursor. If
///   it is past the expected message, that message's header was written
///   before the cursor was published, yet the slot is empty: it was destroyed.
///   Count it lost and advance.
/// - An intact line from our sender carrying exactly one lap more than
///   expected, confirmed by the sender's cursor: the sender found the slot
///   empty and lapped it, so the expected message was destroyed. Count it
///   lost, advance, and leave the line for the next lap.
/// The receiver reads the sender's cursor line only in these cases, so on the
/// fast path no line but the slots moves between the two caches.
public struct RingReceiver {
    @usableFromInline let ring: UnsafeMutableRawPointer
    @usableFromInline let privateState: UnsafeMutableRawPointer
    @usableFromInline let mask: UInt64
    @usableFromInline let peer: UInt8

    /// Bytes of private memory one receiver keeps its cursor and counters in.
    public static let stateSize = 128

    /// Give `state` (`stateSize` bytes of the receiving cluster's private
    /// memory) its initial value: nothing received. Once, before the first poll.
    public static func formatState(_ state: UnsafeMutableRawPointer) {
        precondition(MemoryLayout<ReceiverState>.size <= stateSize)
        state.bindMemory(to: ReceiverState.self, capacity: 1).initialize(to: ReceiverState())
    }

    /// A receiver on the ring at `ring` whose sender is cluster `sender`,
    /// keeping its cursor and counters in `state` (private memory, formatted
    /// with `formatState`).
    @inlinable
    public init(ring: UnsafeMutableRawPointer, state: UnsafeMutableRawPointer, slotsPerRing: Int, sender: Int) {
        self.ring = ring
        self.privateState = state
        self.mask = UInt64(slotsPerRing - 1)
        self.peer = UInt8(truncatingIfNeeded: sender)
    }

    @inlinable var state: UnsafeMutablePointer<ReceiverState> {
        privateState.assumingMemoryBound(to: ReceiverState.self)
    }

    @inlinable func slot(_ sequence: UInt64) -> UnsafeMutableRawPointer {
        ring + (ChannelLayout.ringHeaderSize + Int(truncatingIfNeeded: sequence & mask) &* ChannelLayout.slotSize)
    }

    @inlinable func header(_ slot: UnsafeMutableRawPointer) -> UnsafeMutablePointer<Atomic<UInt64>> {
        (slot + Slot.headerOffset).assumingMemoryBound(to: Atomic<UInt64>.self)
    }

    /// Poll the next slot once and decode the message kind.
    @inlinable @inline(__always)
    public func poll() -> ReceiveResult {
        switch take() {
        case .empty:
            return .empty
        case let .dropped(error):
            return .dropped(error)
        case let .message(raw):
            let expected = UInt32(truncatingIfNeeded: state.pointee.nextSequence &- 1)
            guard let kind = MessageKind(rawValue: raw.header.kind) else {
                return .dropped(recordDrop(.badKind, raw.header, expected))
            }
            guard raw.header.length == kind.payloadLength else {
                return .dropped(recordDrop(.badLength, raw.header, expected))
            }
            guard let message = InterKernelMessage(kind: kind, payload: raw.payload) else {
                return .dropped(recordDrop(.badPayload, raw.header, expected))
            }
            state.pointee.received &+= 1
            return .message(message)
        }
    }

    /// Poll the next slot once; any kind byte is accepted (ring-level checks only).
    @inlinable @inline(__always)
    public func pollRaw() -> RawReceiveResult {
        let result = take()
        if case .message = result { state.pointee.received &+= 1 }
        return result
    }

    /// True if a poll now would find a line (or a lost-message gap to skip).
    /// Used before sleeping; see `ChannelEndpoint.prepareToSleep`.
    @inlinable
    public var hasPending: Bool {
        // Acquiring keeps a following `poll` ordered after this look; the
        // sleep protocol adds its own fence in front of it.
        let expected = state.pointee.nextSequence
        if header(slot(expected)).pointee.load(ordering: .acquiring) != 0 { return true }
        // Acquiring: see `take`; a message known lost is something to do.
        return expected < state.pointee.resyncEnd
            && senderCursor.pointee.nextSequence.load(ordering: .acquiring) > expected
    }

    /// The sender's cursor line (read only when recovering).
    @inlinable var senderCursor: UnsafeMutablePointer<SenderState> {
        ring.assumingMemoryBound(to: SenderState.self)
    }

    /// Take the next line off the ring with ring-level validation: check byte,
    /// sequence, sender, length field range. Advances past trusted lines.
    @inlinable @inline(__always)
    func take() -> RawReceiveResult {
        let expected = state.pointee.nextSequence
        let line = slot(expected)
        // Acquiring: pairs with the sender's releasing header store, so the
        // payload loads below see the payload written before that header.
        let word = header(line).pointee.load(ordering: .acquiring)
        if word == 0 && expected >= state.pointee.resyncEnd { return .empty }
        let head = MessageHeader(raw: word)
        if word == 0 || !head.isIntact || head.sequence != UInt32(truncatingIfNeeded: expected)
            || head.sender != peer {
            return recover(word)
        }
        return consume(line, head, expected)
    }

    /// Take the expected message (intact, from our sender, right sequence) out
    /// of `line` and advance.
    @inlinable @inline(__always)
    func consume(_ line: UnsafeMutableRawPointer, _ head: MessageHeader, _ expected: UInt64) -> RawReceiveResult {
        if head.length > UInt8(Slot.payloadWords) || head.reserved != 0 {
            // Releasing: as below.
            header(line).pointee.store(0, ordering: .releasing)
            state.pointee.nextSequence = expected &+ 1
            return .dropped(recordDrop(.badLength, head, UInt32(truncatingIfNeeded: expected)))
        }
        var payload = Payload()
        var index = 0
        let length = Int(head.length)
        while index < length {
            payload[index] = line.load(fromByteOffset: index &* 8, as: UInt64.self)
            index &+= 1
        }
        // Releasing: our payload loads above happen-before the sender's next
        // payload stores into this slot (it acquire-loads this 0 first).
        header(line).pointee.store(0, ordering: .releasing)
        state.pointee.nextSequence = expected &+ 1
        return .message(RawMessage(header: head, payload: payload))
    }

    /// The slow path of `take`: an empty slot while resyncing, or a line that
    /// is not the expected message (see the recovery rules above). Bounded:
    /// at most one lap of lost messages is skipped per call.
    @usableFromInline
    func recover(_ first: UInt64) -> RawReceiveResult {
        var word = first
        var skipped: UInt64 = 0
        while skipped <= mask {
            let expected = state.pointee.nextSequence
            let line = slot(expected)
            let head = MessageHeader(raw: word)
            let expected32 = UInt32(truncatingIfNeeded: expected)
            if word == 0 {
                guard expected < state.pointee.resyncEnd else { return .empty }
                // Acquiring: pairs with the sender's releasing cursor store, so
                // every header it wrote below that number is visible to the
                // re-read below.
                guard senderCursor.pointee.nextSequence.load(ordering: .acquiring) > expected else { return .empty }
                // Acquiring: as in `take`.
                word = header(line).pointee.load(ordering: .acquiring)
                if word == 0 {
                    state.pointee.lost &+= 1
                    state.pointee.nextSequence = expected &+ 1
                    skipped &+= 1
                    word = header(slot(expected &+ 1)).pointee.load(ordering: .acquiring)
                }
                continue
            }
            if head.isIntact && head.sender == peer && head.sequence == expected32 {
                // The expected message after all (read with acquire above).
                return consume(line, head, expected)
            }
            if head.isIntact && head.sender == peer
                && head.sequence == UInt32(truncatingIfNeeded: expected &+ mask &+ 1)
                // Acquiring: as above. A cursor at `expected + slots` or beyond
                // means the sender sent `expected` and has reached this lap (its
                // header may be written before the cursor is published); a
                // smaller one means the line cannot be the sender's.
                && senderCursor.pointee.nextSequence.load(ordering: .acquiring) >= expected &+ mask &+ 1 {
                // The sender lapped an empty slot: the expected message is lost.
                state.pointee.lost &+= 1
                state.pointee.nextSequence = expected &+ 1
                extendResync()
                skipped &+= 1
                // Acquiring: as in `take`.
                word = header(slot(expected &+ 1)).pointee.load(ordering: .acquiring)
                continue
            }
            // Untrusted: clear without advancing, but only if the slot still
            // holds what we judged: the sender may have overwritten a scribble
            // it raced with (it checked the slot empty just before the
            // scribble), and that message must not be erased. Releasing on
            // success, as in `take`; acquiring on failure, as a header load.
            let cleared = header(line).pointee.compareExchange(
                expected: word, desired: 0, successOrdering: .releasing, failureOrdering: .acquiring)
            if !cleared.exchanged {
                word = cleared.original
                skipped &+= 1
                continue
            }
            extendResync()
            let reason: DropReason = !head.isIntact ? .tornHeader : head.sender != peer ? .badSender : .wrongSequence
            return .dropped(recordDrop(reason, head, expected32))
        }
        return .empty
    }

    /// Enter (or extend) recovery up to the sender's cursor as it is now.
    @usableFromInline
    func extendResync() {
        // Acquiring: as in `recover`. Loaded after the clear, so it covers
        // every message whose header could have been written before it.
        let end = senderCursor.pointee.nextSequence.load(ordering: .acquiring) &+ 1
        if end > state.pointee.resyncEnd { state.pointee.resyncEnd = end }
    }

    @usableFromInline
    func recordDrop(_ reason: DropReason, _ head: MessageHeader, _ expected: UInt32) -> ChannelError {
        state.pointee.dropped[reason] &+= 1
        state.pointee.lastErrorHeader = head.raw
        state.pointee.lastErrorExpected = expected
        state.pointee.lastErrorReason = reason.rawValue
        return ChannelError(reason: reason, header: head, expectedSequence: expected)
    }

    public var stats: ReceiverStats {
        let s = state.pointee
        var last: ChannelError? = nil
        if let reason = DropReason(rawValue: s.lastErrorReason) {
            last = ChannelError(reason: reason, header: MessageHeader(raw: s.lastErrorHeader),
                                expectedSequence: s.lastErrorExpected)
        }
        return ReceiverStats(nextSequence: s.nextSequence, received: s.received, lost: s.lost,
                             dropped: s.dropped, lastError: last)
    }
}
