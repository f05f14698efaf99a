/// What a message is. Adding a kind is a local change: a case here with its
/// payload length, a case in `InterKernelMessage` with its encoding and
/// validation, and the kernel's handler (the compiler finds every switch that
/// must learn the new case).
public enum MessageKind: UInt8, Sendable {
    /// Round-trip probe; the receiver answers with `pong`.
    case ping = 1
    /// Answer to `ping`, echoing its token and timestamp.
    case pong = 2
    /// Signal an export of the receiving cluster (its notification table).
    case notify = 3
    /// Ask the receiving cluster to shut down in order.
    case shutdown = 4
    /// The guest (docs/guest.md): a vCPU's power state; with `on`, addressed
    /// to the vCPU's cluster, it is PSCI CPU_ON (start at entry, x0 = context).
    case vcpuPower = 5
    /// The guest: an SGI for a vCPU of the receiving cluster.
    case guestSGI = 6
    /// The guest's distributor to a vCPU: an SPI's state (the vGIC's `SPINotice`).
    case guestSPI = 7
    /// A vCPU to the guest's distributor: an SPI's state after the guest
    /// took or finished it (the vGIC's `SPIReport`).
    case guestSPIReport = 8
    /// The guest's distributor to a vCPU: GICD_CTLR.EnableGrp1 changed.
    case guestGroupEnable = 9
    /// A vCPU's access to a device its cluster does not own (the
    /// distributor, the UART): to the owner, which answers with `guestDeviceReply`.
    case guestDeviceAccess = 10
    case guestDeviceReply = 11
    /// The guest is over (PSCI SYSTEM_OFF/RESET on some vCPU): to the cluster
    /// that ends the run; it answers every cluster with `shutdown`.
    case guestStop = 12
    /// The sending cluster is stopping alone (a panic or an exception during
    /// the boot): its last message, so the others stop waiting for it.
    case clusterFailed = 13

    /// Payload words a message of this kind carries; the header's length must match.
    @inlinable
    public var payloadLength: UInt8 {
        switch self {
        case .ping: return 2
        case .pong: return 3
        case .notify: return 1
        case .shutdown: return 1
        case .vcpuPower: return 4
        case .guestSGI: return 2
        case .guestSPI: return 5
        case .guestSPIReport: return 4
        case .guestGroupEnable: return 2
        case .guestDeviceAccess: return 6
        case .guestDeviceReply: return 3
        case .guestStop: return 1
        case .clusterFailed: return 2
        }
    }
}

/// Limits the receiver checks on guest messages (the vGIC's: 64 vCPUs,
/// INTIDs below 128, 16 SGIs).
/// Limits the receiver checks on `notify`: export indices below 16 (the
/// kernel's `exportLimit`).
public enum NotifyLimits {
    public static let exports: UInt64 = 16
}

public enum GuestMessageLimits {
    public static let vcpus: UInt64 = 64
    public static let sgis: UInt64 = 16
    public static let firstSPI: UInt64 = 32
    public static let intids: UInt64 = 128
}

/// A vCPU's PSCI power state as the clusters tell each other.
public enum VCPUPowerState: UInt64, Sendable {
    case off = 0
    case onPending = 1
    case on = 2
}

/// Why the guest stopped.
public enum GuestStopReason: UInt64, Sendable {
    case powerOff = 1
    case reset = 2
}

/// Why a cluster is asked to shut down (the payload of `shutdown`).
/// Why a cluster stopped alone (`clusterFailed`).
public enum ClusterFailureReason: UInt64, Sendable {
    case panic = 1
    case exception = 2

    public var name: StaticString {
        switch self {
        case .panic: return "panic"
        case .exception: return "exception"
        }
    }
}

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
    /// Signal export `export` (< `NotifyLimits.exports`) of the receiving
    /// cluster: the notification its root thread exported at that index,
    /// with the badge the receiver chose when exporting. No badge travels.
    case notify(export: UInt64)
    /// Orderly shutdown of the receiving cluster.
    case shutdown(ShutdownReason)
    /// vCPU `vcpu` is now in `state`; `on` to the vCPU's own cluster starts it
    /// at `entry` with x0 = `context` (both 0 otherwise).
    case vcpuPower(vcpu: UInt64, state: VCPUPowerState, entry: UInt64, context: UInt64)
    case guestSGI(vcpu: UInt64, intid: UInt64)
    case guestSPI(vcpu: UInt64, intid: UInt64, priority: UInt64, levelSensitive: Bool, pending: Bool, sequence: UInt64)
    case guestSPIReport(vcpu: UInt64, intid: UInt64, sequence: UInt64, pending: Bool, active: Bool)
    case guestGroupEnable(vcpu: UInt64, enabled: Bool)
    /// `token` pairs the reply with its request; `offset` is the IPA.
    case guestDeviceAccess(token: UInt64, vcpu: UInt64, ipa: UInt64, size: UInt64, isWrite: Bool, value: UInt64)
    /// `refused`: the access gets an external abort in the guest.
    case guestDeviceReply(token: UInt64, refused: Bool, value: UInt64)
    case guestStop(GuestStopReason)
    /// `detail`: the exception's syndrome (ESR), or 0.
    case clusterFailed(ClusterFailureReason, detail: UInt64)

    @inlinable
    public var kind: MessageKind {
        switch self {
        case .ping: return .ping
        case .pong: return .pong
        case .notify: return .notify
        case .shutdown: return .shutdown
        case .vcpuPower: return .vcpuPower
        case .guestSGI: return .guestSGI
        case .guestSPI: return .guestSPI
        case .guestSPIReport: return .guestSPIReport
        case .guestGroupEnable: return .guestGroupEnable
        case .guestDeviceAccess: return .guestDeviceAccess
        case .guestDeviceReply: return .guestDeviceReply
        case .guestStop: return .guestStop
        case .clusterFailed: return .clusterFailed
        }
    }

    /// The payload words of this message (`kind.payloadLength` of them used).
    @inlinable
    public var payload: Payload {
        switch self {
        case let .ping(token, sentAt): return Payload(token, sentAt)
        case let .pong(token, pingSentAt, repliedAt): return Payload(token, pingSentAt, repliedAt)
        case let .notify(export): return Payload(export)
        case let .shutdown(reason): return Payload(reason.rawValue)
        case let .vcpuPower(vcpu, state, entry, context): return Payload(vcpu, state.rawValue, entry, context)
        case let .guestSGI(vcpu, intid): return Payload(vcpu, intid)
        case let .guestSPI(vcpu, intid, priority, level, pending, sequence):
            return Payload(vcpu, intid, priority, (level ? 1 : 0) | (pending ? 2 : 0), sequence)
        case let .guestSPIReport(vcpu, intid, sequence, pending, active):
            return Payload(vcpu, intid, sequence, (pending ? 1 : 0) | (active ? 2 : 0))
        case let .guestGroupEnable(vcpu, enabled): return Payload(vcpu, enabled ? 1 : 0)
        case let .guestDeviceAccess(token, vcpu, ipa, size, isWrite, value):
            return Payload(token, vcpu, ipa, size, isWrite ? 1 : 0, value)
        case let .guestDeviceReply(token, refused, value): return Payload(token, refused ? 1 : 0, value)
        case let .guestStop(reason): return Payload(reason.rawValue)
        case let .clusterFailed(reason, detail): return Payload(reason.rawValue, detail)
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
            guard payload.w0 < NotifyLimits.exports else { return nil }
            self = .notify(export: payload.w0)
        case .shutdown:
            guard let reason = ShutdownReason(rawValue: payload.w0) else { return nil }
            self = .shutdown(reason)
        // Guest messages: every field in its range, flag words without stray
        // bits. A peer's bytes are input: nothing here is trusted further.
        case .vcpuPower:
            guard payload.w0 < GuestMessageLimits.vcpus, let state = VCPUPowerState(rawValue: payload.w1) else { return nil }
            guard state == .on || (payload.w2 == 0 && payload.w3 == 0) else { return nil }
            self = .vcpuPower(vcpu: payload.w0, state: state, entry: payload.w2, context: payload.w3)
        case .guestSGI:
            guard payload.w0 < GuestMessageLimits.vcpus, payload.w1 < GuestMessageLimits.sgis else { return nil }
            self = .guestSGI(vcpu: payload.w0, intid: payload.w1)
        case .guestSPI:
            guard payload.w0 < GuestMessageLimits.vcpus,
                payload.w1 >= GuestMessageLimits.firstSPI, payload.w1 < GuestMessageLimits.intids,
                payload.w2 <= 0xFF, payload.w3 <= 3, payload.w4 <= 0xFF
            else { return nil }
            self = .guestSPI(
                vcpu: payload.w0, intid: payload.w1, priority: payload.w2, levelSensitive: payload.w3 & 1 != 0,
                pending: payload.w3 & 2 != 0, sequence: payload.w4)
        case .guestSPIReport:
            guard payload.w0 < GuestMessageLimits.vcpus,
                payload.w1 >= GuestMessageLimits.firstSPI, payload.w1 < GuestMessageLimits.intids,
                payload.w2 <= 0xFF, payload.w3 <= 3
            else { return nil }
            self = .guestSPIReport(
                vcpu: payload.w0, intid: payload.w1, sequence: payload.w2, pending: payload.w3 & 1 != 0,
                active: payload.w3 & 2 != 0)
        case .guestGroupEnable:
            guard payload.w0 < GuestMessageLimits.vcpus, payload.w1 <= 1 else { return nil }
            self = .guestGroupEnable(vcpu: payload.w0, enabled: payload.w1 == 1)
        case .guestDeviceAccess:
            let size = payload.w3
            guard payload.w1 < GuestMessageLimits.vcpus, size == 1 || size == 2 || size == 4 || size == 8,
                payload.w2 % size == 0, payload.w4 <= 1
            else { return nil }
            self = .guestDeviceAccess(
                token: payload.w0, vcpu: payload.w1, ipa: payload.w2, size: size, isWrite: payload.w4 == 1,
                value: payload.w5)
        case .guestDeviceReply:
            guard payload.w1 <= 1 else { return nil }
            self = .guestDeviceReply(token: payload.w0, refused: payload.w1 == 1, value: payload.w2)
        case .guestStop:
            guard let reason = GuestStopReason(rawValue: payload.w0) else { return nil }
            self = .guestStop(reason)
        case .clusterFailed:
            guard let reason = ClusterFailureReason(rawValue: payload.w0) else { return nil }
            self = .clusterFailed(reason, detail: payload.w1)
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
