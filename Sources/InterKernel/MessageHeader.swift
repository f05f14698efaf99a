/// The last word of a slot: written after the payload, it tells the receiver
/// the slot is full and what it holds. Zero means empty; a well-formed header
/// is never zero (its check byte alone is non-zero when every other field is).
///
/// | bits  | field    | meaning                                                  |
/// |-------|----------|----------------------------------------------------------|
/// | 0-7   | kind     | `MessageKind` raw value                                  |
/// | 8-15  | sender   | sending cluster                                          |
/// | 16-19 | length   | payload words used (0...7)                               |
/// | 20-23 | reserved | zero                                                     |
/// | 24-31 | check    | XOR of the other seven bytes, XOR 0xA5 (catches a torn or scribbled header) |
/// | 32-63 | sequence | low 32 bits of the message's number on this ring         |
///
/// The sequence plays the role of Barrelfish's epoch bit, widened: message `s`
/// of a ring always goes to slot `s mod slots`, so the receiver knows which
/// sequence the next slot must carry and rejects a stale or replayed line.
public struct MessageHeader: Equatable, Sendable {
    public var raw: UInt64

    @inlinable public init(raw: UInt64) { self.raw = raw }

    @inlinable
    public init(kind: UInt8, sender: UInt8, length: UInt8, sequence: UInt32) {
        let body = UInt64(kind) | UInt64(sender) << 8 | UInt64(length & 0xF) << 16
            | UInt64(sequence) << 32
        raw = body | UInt64(MessageHeader.checkByte(body)) << 24
    }

    @inlinable public var kind: UInt8 { UInt8(truncatingIfNeeded: raw) }
    @inlinable public var sender: UInt8 { UInt8(truncatingIfNeeded: raw >> 8) }
    @inlinable public var length: UInt8 { UInt8(truncatingIfNeeded: raw >> 16) & 0xF }
    @inlinable public var reserved: UInt8 { UInt8(truncatingIfNeeded: raw >> 20) & 0xF }
    @inlinable public var check: UInt8 { UInt8(truncatingIfNeeded: raw >> 24) }
    @inlinable public var sequence: UInt32 { UInt32(truncatingIfNeeded: raw >> 32) }

    /// True if the check byte matches the other fields.
    @inlinable public var isIntact: Bool { check == MessageHeader.checkByte(raw) }

    /// XOR of bytes 0-2 and 4-7 of `raw` (byte 3 is the check itself), XOR 0xA5.
    @inlinable
    public static func checkByte(_ raw: UInt64) -> UInt8 {
        var x = raw & ~(UInt64(0xFF) << 24)
        x ^= x >> 32
        x ^= x >> 16
        x ^= x >> 8
        return UInt8(truncatingIfNeeded: x) ^ 0xA5
    }
}

/// One slot: 64 bytes, 7 payload words then the header (word 7). The header is
/// last in memory only by convention; what matters is that it is written last.
@usableFromInline
enum Slot {
    @usableFromInline static let payloadWords = 7
    @usableFromInline static let headerOffset = 56
}

/// The payload of one message: up to 7 words, without heap storage (it is a
/// plain value in Embedded Swift too).
public struct Payload: Equatable, Sendable {
    public var w0: UInt64 = 0, w1: UInt64 = 0, w2: UInt64 = 0, w3: UInt64 = 0
    public var w4: UInt64 = 0, w5: UInt64 = 0, w6: UInt64 = 0

    @inlinable public init() {}

    @inlinable
    public init(_ w0: UInt64, _ w1: UInt64 = 0, _ w2: UInt64 = 0, _ w3: UInt64 = 0,
                _ w4: UInt64 = 0, _ w5: UInt64 = 0, _ w6: UInt64 = 0) {
        self.w0 = w0; self.w1 = w1; self.w2 = w2; self.w3 = w3
        self.w4 = w4; self.w5 = w5; self.w6 = w6
    }

    /// Word `index` (0...6); other indices read as 0 and are ignored on write.
    @inlinable
    public subscript(index: Int) -> UInt64 {
        get {
            switch index {
            case 0: return w0
            case 1: return w1
            case 2: return w2
            case 3: return w3
            case 4: return w4
            case 5: return w5
            case 6: return w6
            default: return 0
            }
        }
        set {
            switch index {
            case 0: w0 = newValue
            case 1: w1 = newValue
            case 2: w2 = newValue
            case 3: w3 = newValue
            case 4: w4 = newValue
            case 5: w5 = newValue
            case 6: w6 = newValue
            default: break
            }
        }
    }
}

/// A message as it sat in the ring: header and payload, not yet decoded.
public struct RawMessage: Equatable, Sendable {
    public var header: MessageHeader
    public var payload: Payload

    @inlinable
    public init(header: MessageHeader, payload: Payload) {
        self.header = header
        self.payload = payload
    }
}
