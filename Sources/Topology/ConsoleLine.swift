/// One console line split into words, for the parsers of the kernel's
/// stable lines (`BootTranscript`, `GuestTranscript`, `ChannelExperimentLine`,
/// `LockExperimentLine`): `key=value` fields, hex values, `I->J` arrows.
public struct ConsoleLine {
    /// The line without surrounding "\r" and spaces.
    public let text: String
    public let words: [String]

    public init(_ raw: String) {
        text = raw.trimmed("\r ")
        words = text.split(separator: " ").map(String.init)
    }

    /// The value of the first `key=value` word.
    public func field(_ key: String) -> String? {
        words.first { $0.hasPrefix(key + "=") }.map { String($0.dropFirst(key.count + 1)) }
    }

    /// A decimal field.
    public func decimal(_ key: String) -> UInt64? { field(key).flatMap { UInt64($0) } }

    /// A decimal field as an Int.
    public func int(_ key: String) -> Int? { field(key).flatMap { Int($0) } }

    /// A `0x...` field.
    public func hex(_ key: String) -> UInt64? { Self.hex(field(key)) }

    /// `0x...` text as a number.
    public static func hex(_ s: String?) -> UInt64? {
        guard let s, s.hasPrefix("0x") else { return nil }
        return UInt64(s.dropFirst(2), radix: 16)
    }

    /// `I->J` as (I, J).
    public static func arrow(_ word: String) -> (from: Int, to: Int)? {
        let parts = word.split(separator: "-", maxSplits: 1).map(String.init)
        guard parts.count == 2, parts[1].hasPrefix(">"), let from = Int(parts[0]), let to = Int(parts[1].dropFirst())
        else { return nil }
        return (from, to)
    }
}
