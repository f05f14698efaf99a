/// A TOML 1.0 reader that remembers where every key, value and table came from.
///
/// It reads all of TOML 1.0 (https://toml.io/en/v1.0.0): comments, bare,
/// quoted and dotted keys, the four kinds of strings (basic, literal, and
/// their multi-line forms, with every escape and line-ending backslash),
/// decimal, hexadecimal, octal and binary integers with underscores, floats
/// (with `inf` and `nan`), booleans, the four kinds of dates and times,
/// arrays (mixed, nested, over several lines, with comments), inline tables,
/// `[table]` and `[[array-of-tables]]` headers, and the rules on defining a
/// table twice. What TOML refuses is refused here with its line; what TOML
/// accepts is read exactly as Python's `tomllib` reads it (a differential
/// test, `TOMLDifferentialTests`, holds the two together), except for
/// integers beyond 64 bits, which TOML says must be refused and `tomllib`
/// keeps.
///
/// Off-the-shelf TOML parsers do not keep line numbers, and every topology
/// error must name its line; so this one does.
public struct TOMLValue: Equatable, Sendable {
    public enum Kind: Equatable, Sendable {
        case string(String)
        case integer(Int64)
        case float(Double)
        case boolean(Bool)
        case dateTime(TOMLDateTime)
        case array([TOMLValue])
        case table(TOMLTable)
    }
    public var kind: Kind
    /// The line the value starts on.
    public var line: Int

    public var typeName: String {
        switch kind {
        case .string: return "a string"
        case .integer: return "an integer"
        case .float: return "a float"
        case .boolean: return "a boolean"
        case .dateTime(let d): return d.typeName
        case .array(let items):
            if !items.isEmpty, items.allSatisfy({ if case .table = $0.kind { return true } else { return false } }) {
                return "an array of tables"
            }
            return "an array"
        case .table: return "a table"
        }
    }

    /// The table, if this value is one.
    public var table: TOMLTable? {
        if case .table(let t) = kind { return t }
        return nil
    }
}

/// A date, a time, or both, with an optional offset: TOML's offset date-time
/// (`1979-05-27T07:32:00Z`), local date-time, local date and local time.
public struct TOMLDateTime: Equatable, Sendable {
    public var year = 0, month = 0, day = 0
    public var hasDate = false
    public var hour = 0, minute = 0, second = 0
    /// The fraction of a second as written, without the dot ("" for none).
    public var fraction = ""
    public var hasTime = false
    /// Minutes east of UTC; nil for a local date-time, date or time.
    public var offsetMinutes: Int?

    public var typeName: String {
        if !hasTime { return "a local date" }
        if !hasDate { return "a local time" }
        return offsetMinutes == nil ? "a local date-time" : "an offset date-time"
    }

    /// The fraction in whole microseconds (truncated), as Python's datetime keeps it.
    public var microseconds: Int {
        Int(String(fraction.prefix(6)).padding(toLength: 6, withPad: "0", startingAt: 0)) ?? 0
    }
}

public struct TOMLEntry: Equatable, Sendable {
    public var key: String
    public var value: TOMLValue
    /// The line of the key (for a dotted key, of the whole statement).
    public var line: Int
}

/// A table: its entries in the order they were first written, and the line
/// that made it (its header, the first dotted key through it, or where the
/// inline table opens; 1 for the root table).
public struct TOMLTable: Equatable, Sendable {
    /// How a table came to be.
    public enum Form: Equatable, Sendable {
        case root
        /// `[name]`.
        case header
        /// One element of an array of tables, `[[name]]`.
        case arrayElement
        /// Made by dotted keys (`shared.channel = "1M"`).
        case dotted
        /// `{ ... }`.
        case inline
        /// Only ever named as the parent of another header (`[a]` in `[a.b]`).
        case implicit
    }
    public var line: Int
    public var form: Form
    public var entries: [TOMLEntry] = []

    public init(line: Int, form: Form, entries: [TOMLEntry] = []) {
        self.line = line
        self.form = form
        self.entries = entries
    }

    /// The entry with exactly this key (compared by Unicode scalars, as TOML
    /// does: "é" and "e\u{301}" are two keys).
    public subscript(key: String) -> TOMLEntry? {
        entries.first { $0.key.unicodeScalars.elementsEqual(key.unicodeScalars) }
    }
}

public struct TOMLDocument: Equatable, Sendable {
    public var root = TOMLTable(line: 1, form: .root)
}

public struct TOMLError: Error, Equatable, Sendable {
    public var line: Int
    public var message: String
}

public enum TOMLParser {
    public static func parse(_ text: String) throws(TOMLError) -> TOMLDocument {
        try parse(bytes: Array(text.utf8))
    }

    /// Parses a file's bytes: they must be UTF-8 (the line of the first bad
    /// byte is named otherwise).
    public static func parse(bytes raw: [UInt8]) throws(TOMLError) -> TOMLDocument {
        try validateUTF8(raw)
        // TOML allows reading CRLF as LF, even inside strings (tomllib does);
        // line numbers do not change.
        var bytes: [UInt8] = []
        bytes.reserveCapacity(raw.count)
        var i = 0
        while i < raw.count {
            if raw[i] == 0x0D, i + 1 < raw.count, raw[i + 1] == 0x0A { i += 1; continue }
            bytes.append(raw[i])
            i += 1
        }
        var parser = Parser(bytes)
        return try parser.document()
    }

    /// The text as a TOML basic string, quoted and escaped.
    public static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    out += "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count)
                        + String(scalar.value, radix: 16).uppercased()
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    static func validateUTF8(_ b: [UInt8]) throws(TOMLError) {
        var i = 0, line = 1
        func bad() -> TOMLError { TOMLError(line: line, message: "the file is not UTF-8 (a bad byte 0x\(String(b[i], radix: 16)))") }
        while i < b.count {
            let c = b[i]
            if c < 0x80 {
                if c == 0x0A { line += 1 }
                i += 1
                continue
            }
            var need = 0
            var low: UInt8 = 0x80, high: UInt8 = 0xBF
            switch c {
            case 0xC2...0xDF: need = 1
            case 0xE0: need = 2; low = 0xA0
            case 0xE1...0xEC, 0xEE...0xEF: need = 2
            case 0xED: need = 2; high = 0x9F  // no surrogates
            case 0xF0: need = 3; low = 0x90
            case 0xF1...0xF3: need = 3
            case 0xF4: need = 3; high = 0x8F
            default: throw bad()
            }
            for k in 1...need {
                guard i + k < b.count else { throw bad() }
                let d = b[i + k]
                let (lo, hi) = k == 1 ? (low, high) : (UInt8(0x80), UInt8(0xBF))
                guard d >= lo, d <= hi else { throw bad() }
            }
            i += need + 1
        }
    }
}

// MARK: - The reader

/// A table while the document is read: mutable, shared, with what the
/// redefinition rules need to know.
private final class TableNode {
    var form: TOMLTable.Form
    var line: Int
    /// For `.dotted` tables outside inline tables: the section (header) that
    /// made them; only that section may add to them.
    var section: Int
    var keys: [String] = []
    var slots: [Slot] = []
    var lines: [Int] = []
    var index: [[UInt8]: Int] = [:]

    init(form: TOMLTable.Form, line: Int, section: Int = 0) {
        self.form = form
        self.line = line
        self.section = section
    }

    enum Slot {
        /// A finished value: a scalar, an array written out (`[...]`), an inline table.
        case value(TOMLValue)
        /// A table still open to headers or dotted keys.
        case table(TableNode)
        /// `[[name]]`: its elements so far, and the line of the first.
        case tables([TableNode], Int)
    }

    func find(_ key: String) -> Int? { index[Array(key.utf8)] }

    func add(_ key: String, _ slot: Slot, line: Int) {
        index[Array(key.utf8)] = slots.count
        keys.append(key)
        slots.append(slot)
        lines.append(line)
    }

    func freeze() -> TOMLTable {
        var t = TOMLTable(line: line, form: form)
        for i in slots.indices {
            let value: TOMLValue
            switch slots[i] {
            case .value(let v): value = v
            case .table(let n): value = TOMLValue(kind: .table(n.freeze()), line: n.line)
            case .tables(let ns, let first):
                value = TOMLValue(kind: .array(ns.map { TOMLValue(kind: .table($0.freeze()), line: $0.line) }), line: first)
            }
            t.entries.append(TOMLEntry(key: keys[i], value: value, line: lines[i]))
        }
        return t
    }
}

private struct Key {
    var parts: [String]
    var line: Int
    var dotted: String { parts.map(Key.display).joined(separator: ".") }

    static func display(_ part: String) -> String {
        !part.isEmpty && part.utf8.allSatisfy(Parser.isBareKey) ? part : TOMLParser.quoted(part)
    }
}

private struct Parser {
    let b: [UInt8]
    var p = 0
    /// Offsets of every newline, for the line of any position.
    let newlines: [Int]

    init(_ bytes: [UInt8]) {
        b = bytes
        newlines = bytes.indices.filter { bytes[$0] == 0x0A }
    }

    // MARK: Positions and errors

    func lineAt(_ pos: Int) -> Int {
        var lo = 0, hi = newlines.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if newlines[mid] < pos { lo = mid + 1 } else { hi = mid }
        }
        return lo + 1
    }

    var line: Int { lineAt(p) }

    func fail(_ message: String, at pos: Int? = nil) -> TOMLError {
        TOMLError(line: lineAt(pos ?? p), message: message)
    }

    func byte(_ at: Int) -> UInt8? { at < b.count ? b[at] : nil }
    var c: UInt8? { byte(p) }

    func starts(_ s: String, at pos: Int? = nil) -> Bool {
        let start = pos ?? p
        var k = start
        for u in s.utf8 {
            guard k < b.count, b[k] == u else { return false }
            k += 1
        }
        return true
    }

    /// The character at a position, shown in a message.
    func shown(_ pos: Int) -> String {
        guard pos < b.count else { return "the end of the file" }
        let c = b[pos]
        if c == 0x0A { return "the end of the line" }
        if c < 0x20 || c == 0x7F { return "the control character 0x\(String(c, radix: 16))" }
        var end = pos + 1
        while end < b.count, b[end] & 0xC0 == 0x80 { end += 1 }
        return "`\(String(decoding: b[pos..<end], as: UTF8.self))`"
    }

    static func isBareKey(_ c: UInt8) -> Bool {
        (c >= 0x61 && c <= 0x7A) || (c >= 0x41 && c <= 0x5A) || (c >= 0x30 && c <= 0x39) || c == 0x5F || c == 0x2D
    }
    static func isDigit(_ c: UInt8?) -> Bool { c.map { $0 >= 0x30 && $0 <= 0x39 } ?? false }
    static func isHex(_ c: UInt8?) -> Bool {
        guard let c else { return false }
        return isDigit(c) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46)
    }
    /// Control characters no string or comment may hold (tab aside).
    static func isControl(_ c: UInt8) -> Bool { (c < 0x20 && c != 0x09) || c == 0x7F }

    mutating func skipBlanks() {
        while let c, c == 0x20 || c == 0x09 { p += 1 }
    }

    mutating func skipComment() throws(TOMLError) {
        guard c == 0x23 else { return }
        p += 1
        while let c, c != 0x0A {
            if Parser.isControl(c) { throw fail("\(shown(p)) in a comment") }
            p += 1
        }
    }

    /// Blanks, newlines and comments, as arrays allow between their items.
    mutating func skipArraySpace() throws(TOMLError) {
        while true {
            let before = p
            while let c, c == 0x20 || c == 0x09 || c == 0x0A { p += 1 }
            try skipComment()
            if p == before { return }
        }
    }

    // MARK: The document

    mutating func document() throws(TOMLError) -> TOMLDocument {
        let root = TableNode(form: .root, line: 1)
        var current = root
        var section = 0
        while true {
            skipBlanks()
            guard let ch = c else { break }
            if ch == 0x0A { p += 1; continue }
            if ch == 0x5B {  // [
                section += 1
                let headerLine = line
                if byte(p + 1) == 0x5B {
                    p += 2
                    skipBlanks()
                    let key = try self.key()
                    guard starts("]]") else {
                        throw fail("expected `]]` to close the array-of-tables header `[[\(key.dotted)]]`, found \(shown(p))")
                    }
                    p += 2
                    current = try appendTable(root, key, line: headerLine)
                } else {
                    p += 1
                    skipBlanks()
                    let key = try self.key()
                    guard c == 0x5D else {
                        throw fail("expected `]` to close the table header `[\(key.dotted)]`, found \(shown(p))")
                    }
                    p += 1
                    current = try defineTable(root, key, line: headerLine)
                }
                try endOfStatement(after: "the table header")
            } else if Parser.isBareKey(ch) || ch == 0x22 || ch == 0x27 {
                let (key, value) = try keyValue()
                try insert(key, value, into: current, section: section, inline: false)
                try endOfStatement(after: "the value")
            } else if ch == 0x23 {
                try skipComment()
            } else {
                throw fail("expected a key, a `[table]` header or a comment, found \(shown(p))")
            }
        }
        return TOMLDocument(root: root.freeze())
    }

    mutating func endOfStatement(after what: String) throws(TOMLError) {
        skipBlanks()
        try skipComment()
        guard let ch = c else { return }
        guard ch == 0x0A else {
            throw fail("unexpected text after \(what): `\(restOfLine())`")
        }
        p += 1
    }

    func restOfLine() -> String {
        var end = p
        while end < b.count, b[end] != 0x0A { end += 1 }
        return String(decoding: b[p..<end], as: UTF8.self).trimmed(" \t")
    }

    // MARK: Tables and keys: TOML's rules on defining things twice

    /// Walks a header's parent path, making implicit tables; elements of an
    /// array of tables are entered at their last element.
    func parent(_ root: TableNode, _ key: Key) throws(TOMLError) -> TableNode {
        var node = root
        for (depth, part) in key.parts.dropLast().enumerated() {
            let path = Key(parts: Array(key.parts[...depth]), line: key.line).dotted
            if let i = node.find(part) {
                switch node.slots[i] {
                case .table(let t): node = t
                case .tables(let ts, _): node = ts[ts.count - 1]
                case .value(let v):
                    throw TOMLError(line: key.line, message: "`[\(key.dotted)]` cannot go in `\(path)`: it is already \(v.taken(line: node.lines[i]))")
                }
            } else {
                let t = TableNode(form: .implicit, line: key.line)
                node.add(part, .table(t), line: key.line)
                node = t
            }
        }
        return node
    }

    /// `[name]`.
    func defineTable(_ root: TableNode, _ key: Key, line: Int) throws(TOMLError) -> TableNode {
        let node = try parent(root, key)
        let last = key.parts[key.parts.count - 1]
        guard let i = node.find(last) else {
            let t = TableNode(form: .header, line: line)
            node.add(last, .table(t), line: line)
            return t
        }
        switch node.slots[i] {
        case .table(let t):
            switch t.form {
            case .implicit:
                t.form = .header
                t.line = line
                node.lines[i] = line
                return t
            case .dotted:
                throw TOMLError(line: line, message: "table `[\(key.dotted)]` is already defined by dotted keys on line \(t.line)")
            default:
                throw TOMLError(line: line, message: "table `[\(key.dotted)]` is defined twice (first on line \(t.line))")
            }
        case .tables(_, let first):
            throw TOMLError(line: line, message: "`[\(key.dotted)]` conflicts with the `[[\(key.dotted)]]` array of tables on line \(first)")
        case .value(let v):
            throw TOMLError(line: line, message: "table `[\(key.dotted)]` cannot be defined: it is already \(v.taken(line: node.lines[i]))")
        }
    }

    /// `[[name]]`.
    func appendTable(_ root: TableNode, _ key: Key, line: Int) throws(TOMLError) -> TableNode {
        let node = try parent(root, key)
        let last = key.parts[key.parts.count - 1]
        let t = TableNode(form: .arrayElement, line: line)
        guard let i = node.find(last) else {
            node.add(last, .tables([t], line), line: line)
            return t
        }
        switch node.slots[i] {
        case .tables(let ts, let first):
            node.slots[i] = .tables(ts + [t], first)
            return t
        case .table(let other):
            throw TOMLError(line: line, message: "`[[\(key.dotted)]]` conflicts with the `[\(key.dotted)]` table on line \(other.line)")
        case .value(let v):
            throw TOMLError(line: line, message: "`[[\(key.dotted)]]` cannot add to `\(key.dotted)`: it is already \(v.taken(line: node.lines[i]))")
        }
    }

    /// `a.b.c = value` in `table`. Dotted keys make tables (or extend the
    /// ones they made in the same section or inline table), never enter a
    /// table a header defined, an inline table or an array.
    func insert(_ key: Key, _ value: TOMLValue, into table: TableNode, section: Int, inline: Bool) throws(TOMLError) {
        var node = table
        for (depth, part) in key.parts.dropLast().enumerated() {
            let path = Key(parts: Array(key.parts[...depth]), line: key.line).dotted
            if let i = node.find(part) {
                switch node.slots[i] {
                case .table(let t):
                    switch t.form {
                    case .implicit:
                        t.form = .dotted
                        t.section = section
                    case .dotted where inline || t.section == section:
                        break
                    case .dotted:
                        throw TOMLError(line: key.line, message: "`\(path)` was made by dotted keys in an earlier table section (line \(t.line)); it cannot be extended here")
                    default:
                        throw TOMLError(line: key.line, message: "`\(path)` is defined by the table header on line \(t.line); dotted keys cannot add to it (write the key under that header)")
                    }
                    node = t
                case .tables(_, let first):
                    throw TOMLError(line: key.line, message: "`\(path)` is an array of tables (line \(first)); dotted keys cannot add to it")
                case .value(let v):
                    throw TOMLError(line: key.line, message: "key `\(key.dotted)` cannot go in `\(path)`: it is already \(v.taken(line: node.lines[i]))")
                }
            } else {
                let t = TableNode(form: .dotted, line: key.line, section: section)
                node.add(part, .table(t), line: key.line)
                node = t
            }
        }
        let last = key.parts[key.parts.count - 1]
        if let i = node.find(last) {
            throw TOMLError(line: key.line, message: "key `\(key.dotted)` is set twice (first on line \(node.lines[i]))")
        }
        node.add(last, .value(value), line: key.line)
    }

    mutating func key() throws(TOMLError) -> Key {
        let keyLine = line
        var parts = [try keyPart()]
        skipBlanks()
        while c == 0x2E {  // .
            p += 1
            skipBlanks()
            parts.append(try keyPart())
            skipBlanks()
        }
        return Key(parts: parts, line: keyLine)
    }

    mutating func keyPart() throws(TOMLError) -> String {
        guard let ch = c else { throw fail("expected a key, found the end of the file") }
        if ch == 0x22 { return try basicString() }
        if ch == 0x27 { return try literalString() }
        let start = p
        while let c, Parser.isBareKey(c) { p += 1 }
        guard p > start else {
            throw fail("expected a key (letters, digits, `_`, `-`, or a quoted key), found \(shown(p))")
        }
        return String(decoding: b[start..<p], as: UTF8.self)
    }

    mutating func keyValue() throws(TOMLError) -> (Key, TOMLValue) {
        let key = try self.key()
        guard c == 0x3D else { throw fail("expected `=` after the key `\(key.dotted)`, found \(shown(p))") }
        p += 1
        skipBlanks()
        return (key, try value())
    }

    // MARK: Values

    mutating func value() throws(TOMLError) -> TOMLValue {
        let start = p
        let valueLine = line
        func make(_ kind: TOMLValue.Kind) -> TOMLValue { TOMLValue(kind: kind, line: valueLine) }
        guard let ch = c, ch != 0x0A else { throw fail("missing value after `=`") }
        switch ch {
        case 0x22:
            if starts("\"\"\"") { return make(.string(try multilineString(literal: false))) }
            return make(.string(try basicString()))
        case 0x27:
            if starts("'''") { return make(.string(try multilineString(literal: true))) }
            return make(.string(try literalString()))
        case 0x5B:
            return try array()
        case 0x7B:
            return try inlineTable()
        default:
            break
        }
        if starts("true") { p += 4; return make(.boolean(true)) }
        if starts("false") { p += 5; return make(.boolean(false)) }
        if let d = try dateTime() { return make(.dateTime(d)) }
        if let number = try number() { return make(number) }
        for special in ["inf", "nan", "+inf", "+nan", "-inf", "-nan"] where starts(special) {
            p += special.utf8.count
            let magnitude = special.hasSuffix("inf") ? Double.infinity : Double.nan
            return make(.float(special.hasPrefix("-") ? -magnitude : magnitude))
        }
        p = start
        var end = p
        while end < b.count, ![0x20, 0x09, 0x0A, 0x2C, 0x5D, 0x7D, 0x23].contains(b[end]) { end += 1 }
        guard end > p else { throw fail("expected a value, found \(shown(p))") }
        let word = String(decoding: b[p..<end], as: UTF8.self)
        throw fail("`\(word)` is not a value (strings need quotes)")
    }

    mutating func array() throws(TOMLError) -> TOMLValue {
        let openLine = line
        p += 1
        var items: [TOMLValue] = []
        try skipArraySpace()
        if c == 0x5D { p += 1; return TOMLValue(kind: .array(items), line: openLine) }
        while true {
            guard c != nil else { throw TOMLError(line: openLine, message: "array opened here is never closed") }
            items.append(try value())
            try skipArraySpace()
            guard let ch = c else { throw TOMLError(line: openLine, message: "array opened here is never closed") }
            if ch == 0x5D { p += 1; break }
            guard ch == 0x2C else { throw fail("expected `,` or `]` in the array opened on line \(openLine), found \(shown(p))") }
            p += 1
            try skipArraySpace()
            if c == 0x5D { p += 1; break }
        }
        return TOMLValue(kind: .array(items), line: openLine)
    }

    /// `{ k = v, a.b = w }`: on one line, no trailing comma, closed for good.
    mutating func inlineTable() throws(TOMLError) -> TOMLValue {
        let openLine = line
        p += 1
        let node = TableNode(form: .inline, line: openLine)
        skipBlanks()
        if c == 0x0A || c == 0x23 { throw fail("an inline table must stay on one line, without comments (TOML 1.0)") }
        if c == 0x7D {
            p += 1
            return TOMLValue(kind: .table(node.freeze()), line: openLine)
        }
        while true {
            let (key, value) = try keyValue()
            try insert(key, value, into: node, section: 0, inline: true)
            skipBlanks()
            guard let ch = c else { throw TOMLError(line: openLine, message: "inline table opened here is never closed") }
            if ch == 0x7D { p += 1; break }
            guard ch == 0x2C else {
                throw fail("expected `,` or `}` in the inline table (which must stay on one line), found \(shown(p))")
            }
            p += 1
            skipBlanks()
            if c == 0x0A || c == 0x23 { throw fail("an inline table must stay on one line, without comments (TOML 1.0)") }
        }
        return TOMLValue(kind: .table(node.freeze()), line: openLine)
    }

    // MARK: Strings

    mutating func literalString() throws(TOMLError) -> String {
        let startLine = line
        p += 1
        let start = p
        while true {
            guard let ch = c, ch != 0x0A else {
                throw TOMLError(line: startLine, message: "string is not closed on its line")
            }
            if ch == 0x27 { break }
            if Parser.isControl(ch) { throw fail("\(shown(p)) in a string (escape it in a basic string)") }
            p += 1
        }
        defer { p += 1 }
        return String(decoding: b[start..<p], as: UTF8.self)
    }

    mutating func basicString() throws(TOMLError) -> String {
        let startLine = line
        p += 1
        var out: [UInt8] = []
        while true {
            guard let ch = c, ch != 0x0A else {
                throw TOMLError(line: startLine, message: "string is not closed on its line")
            }
            if ch == 0x22 { p += 1; break }
            if ch == 0x5C {
                try escape(into: &out, multiline: false)
                continue
            }
            if Parser.isControl(ch) { throw fail("\(shown(p)) in a string (write it as an escape)") }
            out.append(ch)
            p += 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// `"""..."""` or `'''...'''`: a newline right after the opening
    /// delimiter is dropped; up to two quotes may touch the closing one.
    mutating func multilineString(literal: Bool) throws(TOMLError) -> String {
        let startLine = line
        let quote: UInt8 = literal ? 0x27 : 0x22
        let delimiter = literal ? "'''" : "\"\"\""
        p += 3
        if c == 0x0A { p += 1 }
        var out: [UInt8] = []
        while true {
            guard let ch = c else {
                throw TOMLError(line: startLine, message: "multi-line string opened here is never closed")
            }
            if starts(delimiter) {
                p += 3
                for _ in 0..<2 where c == quote {
                    out.append(quote)
                    p += 1
                }
                break
            }
            if ch == 0x5C && !literal {
                try escape(into: &out, multiline: true)
                continue
            }
            if Parser.isControl(ch) && ch != 0x0A { throw fail("\(shown(p)) in a string") }
            out.append(ch)
            p += 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    mutating func escape(into out: inout [UInt8], multiline: Bool) throws(TOMLError) {
        let at = p
        p += 1
        guard let e = c else { throw fail("string is not closed") }
        p += 1
        switch e {
        case 0x62: out.append(0x08)  // b
        case 0x74: out.append(0x09)  // t
        case 0x6E: out.append(0x0A)  // n
        case 0x66: out.append(0x0C)  // f
        case 0x72: out.append(0x0D)  // r
        case 0x22: out.append(0x22)
        case 0x5C: out.append(0x5C)
        case 0x75, 0x55:  // u, U
            let count = e == 0x75 ? 4 : 8
            var value: UInt32 = 0
            for _ in 0..<count {
                guard let h = c, Parser.isHex(h) else {
                    throw fail("`\\\(e == 0x75 ? "u" : "U")` needs \(count) hexadecimal digits", at: at)
                }
                value = value &* 16 &+ UInt32(h <= 0x39 ? h - 0x30 : (h | 0x20) - 0x61 + 10)
                p += 1
            }
            guard let scalar = Unicode.Scalar(value) else {
                throw fail("`\(String(decoding: b[at..<p], as: UTF8.self))` is not a Unicode scalar value", at: at)
            }
            out.append(contentsOf: Array(String(scalar).utf8))
        case 0x20 where multiline, 0x09 where multiline, 0x0A where multiline:
            // A line-ending backslash: blanks up to the newline, then every
            // blank and newline after it, are dropped.
            p -= 1
            skipBlanks()
            guard c == nil || c == 0x0A else {
                throw fail("`\\` followed by a blank must end the line in a multi-line string", at: at)
            }
            while let c, c == 0x20 || c == 0x09 || c == 0x0A { p += 1 }
        default:
            throw fail("unknown escape `\\\(String(decoding: b[(at + 1)..<p], as: UTF8.self))` in a string (TOML has \\b \\t \\n \\f \\r \\\" \\\\ \\uXXXX \\UXXXXXXXX)", at: at)
        }
    }

    // MARK: Numbers, dates and times

    /// Digits of `kind` with single underscores between them, from `p`;
    /// returns how many bytes matched (0 if no digit comes first).
    func digitRun(from start: Int, _ isDigit: (UInt8) -> Bool) -> Int {
        guard let first = byte(start), isDigit(first) else { return 0 }
        var k = start + 1
        while true {
            if let d = byte(k), isDigit(d) { k += 1; continue }
            if byte(k) == 0x5F, let d = byte(k + 1), isDigit(d) { k += 2; continue }
            return k - start
        }
    }

    /// An integer or float at `p`, or nil if none starts here.
    mutating func number() throws(TOMLError) -> TOMLValue.Kind? {
        let start = p
        let dec: (UInt8) -> Bool = { $0 >= 0x30 && $0 <= 0x39 }
        if c == 0x30, let prefix = byte(p + 1), [0x78, 0x6F, 0x62].contains(prefix) {  // 0x 0o 0b
            let radix: UInt64 = prefix == 0x78 ? 16 : prefix == 0x6F ? 8 : 2
            let isDigit: (UInt8) -> Bool = { d in
                switch radix {
                case 16: return Parser.isHex(d)
                case 8: return d >= 0x30 && d <= 0x37
                default: return d == 0x30 || d == 0x31
                }
            }
            let n = digitRun(from: p + 2, isDigit)
            if n > 0 {
                p += 2 + n
                return .integer(try integer(b[(start + 2)..<p], radix: radix, negative: false, at: start))
            }
        }
        var k = p
        if c == 0x2B || c == 0x2D { k += 1 }
        let signEnd = k
        if byte(k) == 0x30 {
            k += 1
        } else if let d = byte(k), d >= 0x31 && d <= 0x39 {
            k += digitRun(from: k, dec)
        } else {
            return nil
        }
        let integerEnd = k
        if byte(k) == 0x2E {
            let n = digitRun(from: k + 1, dec)
            if n > 0 { k += 1 + n }
        }
        if let e = byte(k), e == 0x65 || e == 0x45 {
            var m = k + 1
            if byte(m) == 0x2B || byte(m) == 0x2D { m += 1 }
            let n = digitRun(from: m, dec)
            if n > 0 { k = m + n }
        }
        p = k
        if k == integerEnd {
            return .integer(try integer(b[signEnd..<k], radix: 10, negative: c(at: start) == 0x2D, at: start))
        }
        let text = String(decoding: b[start..<k].filter { $0 != 0x5F }, as: UTF8.self)
        guard let d = Double(text) else { throw fail("`\(text)` is not a float", at: start) }
        return .float(d)
    }

    func c(at i: Int) -> UInt8? { byte(i) }

    func integer(_ digits: ArraySlice<UInt8>, radix: UInt64, negative: Bool, at start: Int) throws(TOMLError) -> Int64 {
        var magnitude: UInt64 = 0
        for d in digits where d != 0x5F {
            let v = UInt64(d <= 0x39 ? d - 0x30 : (d | 0x20) - 0x61 + 10)
            let (m, o1) = magnitude.multipliedReportingOverflow(by: radix)
            let (s, o2) = m.addingReportingOverflow(v)
            guard !o1, !o2 else { throw outOfRange(start) }
            magnitude = s
        }
        if negative {
            guard magnitude <= UInt64(Int64.max) + 1 else { throw outOfRange(start) }
            return magnitude == UInt64(Int64.max) + 1 ? Int64.min : -Int64(magnitude)
        }
        guard magnitude <= UInt64(Int64.max) else { throw outOfRange(start) }
        return Int64(magnitude)
    }

    func outOfRange(_ start: Int) -> TOMLError {
        var end = start
        while end < b.count, ![0x20, 0x09, 0x0A, 0x2C, 0x5D, 0x7D, 0x23].contains(b[end]) { end += 1 }
        return fail("the integer `\(String(decoding: b[start..<end], as: UTF8.self))` does not fit in 64 bits (TOML's integers are 64-bit)", at: start)
    }

    /// Two decimal digits at `k` no larger than `max` (and `min`).
    func twoDigits(_ k: Int, min: Int = 0, max: Int) -> Int? {
        guard Parser.isDigit(byte(k)), Parser.isDigit(byte(k + 1)) else { return nil }
        let v = Int(b[k] - 0x30) * 10 + Int(b[k + 1] - 0x30)
        return v >= min && v <= max ? v : nil
    }

    /// `HH:MM:SS(.fraction)?` at `k`: the time and where it ends.
    func time(at k: Int) -> (TOMLDateTime, Int)? {
        guard let h = twoDigits(k, max: 23), byte(k + 2) == 0x3A, let m = twoDigits(k + 3, max: 59),
              byte(k + 5) == 0x3A, let s = twoDigits(k + 6, max: 59)
        else { return nil }
        var d = TOMLDateTime()
        d.hasTime = true
        (d.hour, d.minute, d.second) = (h, m, s)
        var end = k + 8
        if byte(end) == 0x2E, Parser.isDigit(byte(end + 1)) {
            var f = end + 1
            while Parser.isDigit(byte(f)) { f += 1 }
            d.fraction = String(decoding: b[(end + 1)..<f], as: UTF8.self)
            end = f
        }
        return (d, end)
    }

    /// A date, date-time or time at `p`, or nil if none starts here.
    mutating func dateTime() throws(TOMLError) -> TOMLDateTime? {
        let start = p
        if (0..<4).allSatisfy({ Parser.isDigit(byte(p + $0)) }), byte(p + 4) == 0x2D,
           let month = twoDigits(p + 5, min: 1, max: 12), byte(p + 7) == 0x2D,
           let day = twoDigits(p + 8, min: 1, max: 31)
        {
            var d = TOMLDateTime()
            d.hasDate = true
            d.year = (0..<4).reduce(0) { $0 * 10 + Int(b[p + $1] - 0x30) }
            (d.month, d.day) = (month, day)
            var end = p + 10
            if let sep = byte(end), sep == 0x54 || sep == 0x74 || sep == 0x20, let (t, timeEnd) = time(at: end + 1) {
                (d.hour, d.minute, d.second, d.fraction, d.hasTime) = (t.hour, t.minute, t.second, t.fraction, true)
                end = timeEnd
                if let z = byte(end), z == 0x5A || z == 0x7A {
                    d.offsetMinutes = 0
                    end += 1
                } else if let sign = byte(end), sign == 0x2B || sign == 0x2D, let oh = twoDigits(end + 1, max: 23),
                          byte(end + 3) == 0x3A, let om = twoDigits(end + 4, max: 59)
                {
                    d.offsetMinutes = (sign == 0x2D ? -1 : 1) * (oh * 60 + om)
                    end += 6
                }
            }
            let leap = d.year % 4 == 0 && (d.year % 100 != 0 || d.year % 400 == 0)
            let days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][d.month - 1]
            guard d.year >= 1, d.day <= days else {
                throw fail("`\(String(decoding: b[start..<end], as: UTF8.self))` is not a date (\(d.year == 0 ? "there is no year 0" : "\(d.month)/\(d.year) has \(days) days"))", at: start)
            }
            p = end
            return d
        }
        if let (t, end) = time(at: p) {
            p = end
            return t
        }
        return nil
    }
}

private extension TOMLValue {
    /// What the value is, for a message on why it cannot be extended.
    func taken(line: Int) -> String {
        switch kind {
        case .table: return "the inline table of line \(line) (an inline table is complete as written)"
        case .array: return "\(typeName) written with `[...]` on line \(line) (it takes no more items or tables)"
        default: return "\(typeName), on line \(line)"
        }
    }
}

extension String {
    /// The string without leading and trailing characters from `set`.
    func trimmed(_ set: String) -> String {
        let chars = Set(set)
        var s = Substring(self)
        while let f = s.first, chars.contains(f) { s.removeFirst() }
        while let l = s.last, chars.contains(l) { s.removeLast() }
        return String(s)
    }
}
