/// What a message is. Adding a kind is a local change: a case here with its
/// payload length, a case in `InterKernelMessage` with its encoding and
/// validation, and the kernel's handler (the compiler finds every switch that
/// must learn the new case).
public enum MessageKind: UInt8, Sendable {
    /// Round-trip probe; the receiver answers with `pong`.
    case ping = 1
    /// Answer to `ping`, echoing its token and timestamp.
    case pong = 2
    /// Signal a notification object in the receiving cluster.
    case notify = 3
    /// Ask the receiving cluster to shut down in order.
    case shutdown = 4

    /// Payload words a message of this kind carries; the header's length must match.
    @inlinable
    public var payloadLength: UInt8 {
        switch self {
        case .ping: return 2
        case .pong: return 3
        case .notify: return 2
        case .shutdown: return 1
        }
    }
}

/// Why a cluster is asked to shut down (the payload of `shutdown`).
public enum ShutdownReason: UInt64, Sendable {
    /// The whole machine is powering off.
    case powerOff = 1
    /// The sender hit a fatal error; stop touching shared state.
    case fatal = 2
}

/// A decoded, validated inter-kernel message.
public enum InterKernelMessage: Equatable, Sendable {
    /// `token` identifies the probe; `sentAt` is the sender's clock (any unit).
    case ping(token: UInt64, sentAt: UInt64)
    /// Echo of a ping's `token` and `sentAt`, and when the responder saw it.
    case pong(token: UInt64, pingSentAt: UInt64, repliedAt: UInt64)
    /// Signal notification object `object` of the receiving cluster with `badge`
    /// (OR-ed into its word, as seL4 notifications do); `badge` is never 0.
    case notify(object: UInt64, badge: UInt64)
    /// Orderly shutdown of the receiving cluster.
    case shutdown(ShutdownReason)

    @inlinable
    public var kind: MessageKind {
        switch self {
        case .ping: return .ping
        case .pong: return .pong
        case .notify: return .notify
        case .shutdown: return .shutdown
        }
    }

    /// The payload words of this message (`kind.payloadLength` of them used).
    @inlinable
    public var payload: Payload {
        switch self {
        case let .ping(token, sentAt): return Payload(token, sentAt)
        case let .pong(token, pingSentAt, repliedAt): return Payload(token, pingSentAt, repliedAt)
        case let .notify(object, badge): return Payload(object, badge)
        case let .shutdown(reason): return Payload(reason.rawValue)
        }
    }

    /// Decode and validate a payload for `kind`. Nil if the payload is not
    /// valid for the kind (the receiver then counts `badPayload`).
    @inlinable
    public init?(kind: MessageKind, payload: Payload) {
        switch kind {
        case .ping:
            self = .ping(token: payload.w0, sentAt: payload.w1)
        case .pong:
            self = .pong(token: payload.w0, pingSentAt: payload.w1, repliedAt: payload.w2)
        case .notify:
            guard payload.w1 != 0 else { return nil }
            self = .notify(object: payload.w0, badge: payload.w1)
        case .shutdown:
            guard let reason = ShutdownReason(rawValue: payload.w0) else { return nil }
            self = .shutdown(reason)
        }
    }

    /// True if this message may be sent: the receiver would accept it.
    @inlinable
    public var isValid: Bool { InterKernelMessage(kind: kind, payload: payload) != nil }
}

/// Why the receiver dropped a line. The first two make the receiver distrust
/// the line's sequence number; the others come with a correct sequence, so the
/// line is known to be the sender's message for this slot, consumed and lost.
public enum DropReason: UInt8, Sendable {
    /// The check byte does not match: a torn or scribbled header.
    case tornHeader = 1
    /// Intact header, but not the sequence this slot must carry next (stale,
    /// replayed, or from the future).
    case wrongSequence = 2
    /// The header names a cluster other than this ring's sender.
    case badSender = 3
    /// Length field does not match the kind, or reserved bits are set.
    case badLength = 4
    /// Unknown kind.
    case badKind = 5
    /// Known kind, length right, payload invalid for the kind.
    case badPayload = 6

    /// A short name for kernel log lines.
    public var name: StaticString {
        switch self {
        case .tornHeader: return "torn-header"
        case .wrongSequence: return "wrong-sequence"
        case .badSender: return "bad-sender"
        case .badLength: return "bad-length"
        case .badKind: return "bad-kind"
        case .badPayload: return "bad-payload"
        }
    }
}

/// A dropped line: why, the header as read, and the sequence the slot should have carried.
public struct ChannelError: Equatable, Sendable {
    public var reason: DropReason
    public var header: MessageHeader
    public var expectedSequence: UInt32

    @inlinable
    public init(reason: DropReason, header: MessageHeader, expectedSequence: UInt32) {
        self.reason = reason
        self.header = header
        self.expectedSequence = expectedSequence
    }
}

/// Counts of dropped lines, by reason.
public struct DropCounts: Equatable, Sendable {
    public var tornHeader: UInt64 = 0
    public var wrongSequence: UInt64 = 0
    public var badSender: UInt64 = 0
    public var badLength: UInt64 = 0
    public var badKind: UInt64 = 0
    public var badPayload: UInt64 = 0

    @inlinable public init() {}

    @inlinable
    public var total: UInt64 {
        tornHeader &+ wrongSequence &+ badSender &+ badLength &+ badKind &+ badPayload
    }

    @inlinable
    public subscript(reason: DropReason) -> UInt64 {
        get {
            switch reason {
            case .tornHeader: return tornHeader
            case .wrongSequence: return wrongSequence
            case .badSender: return badSender
            case .badLength: return badLength
            case .badKind: return badKind
            case .badPayload: return badPayload
            }
        }
        set {
            switch reason {
            case .tornHeader: tornHeader = newValue
            case .wrongSequence: wrongSequence = newValue
            case .badSender: badSender = newValue
            case .badLength: badLength = newValue
            case .badKind: badKind = newValue
            case .badPayload: badPayload = newValue
            }
        }
    }
}
