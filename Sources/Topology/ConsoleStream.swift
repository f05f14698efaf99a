/// Turns QEMU's console bytes into (1) bytes to show now and (2) whole lines
/// to watch, hiding lines that start with a given prefix (the kernel's
/// `cmk: guest stats` lines unless `--stats`).
///
/// Bytes are shown as they come (a shell prompt has no newline), except
/// while the line so far is still a prefix of a hidden prefix: those few
/// bytes wait until the line either departs from it (shown) or turns out to
/// be hidden (dropped with its newline).
public struct ConsoleStream {
    public var hiddenPrefixes: [[UInt8]]
    /// The current line (since the last newline), for watching.
    private var line: [UInt8] = []
    /// Bytes of the current line not shown yet.
    private var held: [UInt8] = []
    /// The current line is hidden: drop it up to its newline.
    private var hiding = false
    /// The current line can no longer become a hidden one.
    private var released = false

    public init(hiding prefixes: [String]) {
        hiddenPrefixes = prefixes.map { Array($0.utf8) }
    }

    /// Feed bytes; returns what to show now and the lines completed (without
    /// their "\n"; a trailing "\r" removed).
    public mutating func feed(_ bytes: some Sequence<UInt8>) -> (show: [UInt8], lines: [String]) {
        var show: [UInt8] = []
        var lines: [String] = []
        for b in bytes {
            line.append(b)
            if b == UInt8(ascii: "\n") {
                if !hiding { show += held; show.append(b) }
                var text = line.dropLast()
                if text.last == UInt8(ascii: "\r") { text = text.dropLast() }
                lines.append(String(decoding: text, as: UTF8.self))
                line.removeAll(keepingCapacity: true)
                held.removeAll(keepingCapacity: true)
                hiding = false
                released = false
                continue
            }
            if hiding { continue }
            if released { show.append(b); continue }
            held.append(b)
            if hiddenPrefixes.contains(where: { $0.count <= line.count && line.starts(with: $0) }) {
                hiding = true
                held.removeAll(keepingCapacity: true)
            } else if !hiddenPrefixes.contains(where: { $0.starts(with: line) }) {
                released = true
                show += held
                held.removeAll(keepingCapacity: true)
            }
        }
        return (show, lines)
    }

    /// At the end: the unfinished line (shown unless hidden) as a last line.
    public mutating func finish() -> (show: [UInt8], line: String?) {
        defer { line.removeAll(); held.removeAll(); hiding = false; released = false }
        guard !line.isEmpty else { return ([], nil) }
        var text = line[...]
        if text.last == UInt8(ascii: "\r") { text = text.dropLast() }
        return (hiding ? [] : held, String(decoding: text, as: UTF8.self))
    }
}
