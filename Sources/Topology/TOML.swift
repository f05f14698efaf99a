/// A small TOML reader that remembers where every key and value came from.
///
/// Topology files need only part of TOML: comments, `key = value` with bare
/// or quoted keys, strings, integers, booleans, arrays (over several lines if
/// need be), `[table]` and `[[array-of-tables]]`. Anything else (dotted keys,
/// inline tables, dates, floats) is refused with its line, so a user never
/// gets a silently different reading of the file. Off-the-shelf TOML parsers
/// do not keep line numbers, and every topology error must name its line.
public struct TOMLValue: Equatable {
    public enum Kind: Equatable {
        case string(String)
        case integer(Int64)
        case boolean(Bool)
        case array([TOMLValue])
    }
    public var kind: Kind
    public var line: Int

    public var typeName: String {
        switch kind {
        case .string: return "a string"
        case .integer: return "an integer"
        case .boolean: return "a boolean"
        case .array: return "an array"
        }
    }
}

public struct TOMLEntry: Equatable {
    public var key: String
    public var value: TOMLValue
    public var line: Int
}

/// A table: its entries in file order, and the line of its header (1 for
/// the root table).
public struct TOMLTable: Equatable {
    public var name: String
    public var line: Int
    public var entries: [TOMLEntry] = []

    public subscript(key: String) -> TOMLEntry? { entries.first { $0.key == key } }
}

public struct TOMLDocument: Equatable {
    public var root = TOMLTable(name: "", line: 1)
    /// `[name]` tables.
    public var tables: [TOMLTable] = []
    /// `[[name]]` tables, each occurrence in file order.
    public var arrayTables: [TOMLTable] = []
}

public struct TOMLError: Error, Equatable {
    public var line: Int
    public var message: String
}

public enum TOMLParser {
    public static func parse(_ text: String) throws(TOMLError) -> TOMLDocument {
        var parser = Parser(Array(text.utf8))
        return try parser.document()
    }
}

private struct Parser {
    let bytes: [UInt8]
    var at = 0
    var line = 1

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var atEnd: Bool { at >= bytes.count }
    var peek: UInt8? { atEnd ? nil : bytes[at] }

    mutating func advance() {
        if bytes[at] == UInt8(ascii: "\n") { line += 1 }
        at += 1
    }

    func fail(_ message: String) -> TOMLError { TOMLError(line: line, message: message) }

    mutating func skipBlanks() {
        while let c = peek, c == UInt8(ascii: " ") || c == UInt8(ascii: "\t") { advance() }
    }

    /// Blanks, comments and newlines.
    mutating func skipBlankLines() {
        while let c = peek {
            if c == UInt8(ascii: " ") || c == UInt8(ascii: "\t") || c == UInt8(ascii: "\n") || c == UInt8(ascii: "\r") {
                advance()
            } else if c == UInt8(ascii: "#") {
                while let d = peek, d != UInt8(ascii: "\n") { advance() }
            } else {
                return
            }
        }
    }

    /// After a statement: blanks, an optional comment, then a newline or EOF.
    mutating func endOfLine() throws(TOMLError) {
        skipBlanks()
        if peek == UInt8(ascii: "#") {
            while let d = peek, d != UInt8(ascii: "\n") { advance() }
        }
        if peek == UInt8(ascii: "\r") { advance() }
        guard atEnd || peek == UInt8(ascii: "\n") else {
            throw fail("unexpected text after the value: `\(restOfLine())`")
        }
    }

    func restOfLine() -> String {
        var end = at
        while end < bytes.count, bytes[end] != UInt8(ascii: "\n") { end += 1 }
        return String(decoding: bytes[at..<end], as: UTF8.self).trimmed(" \t\r")
    }

    mutating func document() throws(TOMLError) -> TOMLDocument {
        var doc = TOMLDocument()
        // Where the next key goes: -1 root, otherwise an index into tables or arrayTables.
        enum Target { case root, table(Int), arrayTable(Int) }
        var target = Target.root
        var seenTables = Set<String>()
        while true {
            skipBlankLines()
            guard let c = peek else { break }
            let startLine = line
            if c == UInt8(ascii: "[") {
                advance()
                let isArray = peek == UInt8(ascii: "[")
                if isArray { advance() }
                skipBlanks()
                let name = try key()
                skipBlanks()
                if peek == UInt8(ascii: ".") { throw fail("dotted table names are not supported in topology files") }
                guard peek == UInt8(ascii: "]") else { throw fail("expected `]` to close the table header") }
                advance()
                if isArray {
                    guard peek == UInt8(ascii: "]") else { throw fail("expected `]]` to close the array-of-tables header") }
                    advance()
                }
                try endOfLine()
                if isArray {
                    if let table = doc.tables.first(where: { $0.name == name }) {
                        throw TOMLError(line: startLine, message: "`[[\(name)]]` conflicts with the `[\(name)]` table on line \(table.line)")
                    }
                    doc.arrayTables.append(TOMLTable(name: name, line: startLine))
                    target = .arrayTable(doc.arrayTables.count - 1)
                } else {
                    if seenTables.contains(name) || doc.arrayTables.contains(where: { $0.name == name }) {
                        throw TOMLError(line: startLine, message: "table `[\(name)]` is defined twice")
                    }
                    seenTables.insert(name)
                    doc.tables.append(TOMLTable(name: name, line: startLine))
                    target = .table(doc.tables.count - 1)
                }
                continue
            }
            let name = try key()
            skipBlanks()
            if peek == UInt8(ascii: ".") { throw fail("dotted keys are not supported in topology files") }
            guard peek == UInt8(ascii: "=") else { throw fail("expected `=` after the key `\(name)`") }
            advance()
            skipBlanks()
            let value = try self.value()
            try endOfLine()
            let entry = TOMLEntry(key: name, value: value, line: startLine)
            func add(_ table: inout TOMLTable) throws(TOMLError) {
                if let previous = table[name] {
                    throw TOMLError(line: startLine, message: "key `\(name)` is set twice (first on line \(previous.line))")
                }
                table.entries.append(entry)
            }
            switch target {
            case .root: try add(&doc.root)
            case .table(let i): try add(&doc.tables[i])
            case .arrayTable(let i): try add(&doc.arrayTables[i])
            }
        }
        return doc
    }

    mutating func key() throws(TOMLError) -> String {
        if peek == UInt8(ascii: "\"") || peek == UInt8(ascii: "'") { return try string() }
        let start = at
        while let c = peek, isBareKey(c) { advance() }
        guard at > start else {
            if let c = peek { throw fail("expected a key, found `\(Character(UnicodeScalar(c)))`") }
            throw fail("expected a key")
        }
        return String(decoding: bytes[start..<at], as: UTF8.self)
    }

    func isBareKey(_ c: UInt8) -> Bool {
        (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z"))
            || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")) || c == UInt8(ascii: "_") || c == UInt8(ascii: "-")
    }

    mutating func value() throws(TOMLError) -> TOMLValue {
        let valueLine = line
        guard let c = peek, c != UInt8(ascii: "\n") else { throw fail("missing value after `=`") }
        switch c {
        case UInt8(ascii: "\""), UInt8(ascii: "'"):
            return TOMLValue(kind: .string(try string()), line: valueLine)
        case UInt8(ascii: "["):
            advance()
            var items: [TOMLValue] = []
            while true {
                skipBlankLines()
                if peek == UInt8(ascii: "]") { advance(); break }
                guard !atEnd else { throw TOMLError(line: valueLine, message: "array opened here is never closed") }
                items.append(try value())
                skipBlankLines()
                if peek == UInt8(ascii: ",") { advance(); continue }
                skipBlankLines()
                if peek == UInt8(ascii: "]") { advance(); break }
                throw fail("expected `,` or `]` in the array")
            }
            return TOMLValue(kind: .array(items), line: valueLine)
        case UInt8(ascii: "{"):
            throw fail("inline tables are not supported in topology files")
        case UInt8(ascii: "t"), UInt8(ascii: "f"):
            let word = bareWord()
            if word == "true" { return TOMLValue(kind: .boolean(true), line: valueLine) }
            if word == "false" { return TOMLValue(kind: .boolean(false), line: valueLine) }
            throw TOMLError(line: valueLine, message: "`\(word)` is not a value (strings need quotes)")
        default:
            let word = bareWord()
            var digits = String(word.filter { $0 != "_" })
            var negative = false
            if digits.hasPrefix("+") || digits.hasPrefix("-") {
                negative = digits.hasPrefix("-")
                digits.removeFirst()
            }
            var parsed: Int64?
            if digits.hasPrefix("0x") { parsed = Int64(digits.dropFirst(2), radix: 16) } else if !digits.isEmpty,
                digits.allSatisfy(\.isNumber)
            {
                parsed = Int64(digits)
            }
            guard let number = parsed, !word.isEmpty else {
                throw TOMLError(line: valueLine, message: "`\(word.isEmpty ? restOfLine() : word)` is not a value (strings need quotes)")
            }
            return TOMLValue(kind: .integer(negative ? -number : number), line: valueLine)
        }
    }

    mutating func bareWord() -> String {
        let start = at
        while let c = peek, !(c == UInt8(ascii: " ") || c == UInt8(ascii: "\t") || c == UInt8(ascii: "\n")
            || c == UInt8(ascii: "\r") || c == UInt8(ascii: ",") || c == UInt8(ascii: "]") || c == UInt8(ascii: "#"))
        {
            advance()
        }
        return String(decoding: bytes[start..<at], as: UTF8.self)
    }

    mutating func string() throws(TOMLError) -> String {
        let quote = bytes[at]
        let startLine = line
        advance()
        var out: [UInt8] = []
        while true {
            guard let c = peek, c != UInt8(ascii: "\n") else {
                throw TOMLError(line: startLine, message: "string is not closed on its line")
            }
            advance()
            if c == quote { break }
            if c == UInt8(ascii: "\\") && quote == UInt8(ascii: "\"") {
                guard let e = peek else { throw fail("string is not closed") }
                advance()
                switch e {
                case UInt8(ascii: "n"): out.append(UInt8(ascii: "\n"))
                case UInt8(ascii: "t"): out.append(UInt8(ascii: "\t"))
                case UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\"))
                case UInt8(ascii: "\""): out.append(UInt8(ascii: "\""))
                default: throw fail("unsupported escape `\\\(Character(UnicodeScalar(e)))` in a string")
                }
            } else {
                out.append(c)
            }
        }
        return String(decoding: out, as: UTF8.self)
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
