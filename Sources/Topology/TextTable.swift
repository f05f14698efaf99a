import Foundation

/// The terminal tables of the tool (reports, benchmarks, experiments): a
/// header, a rule, then the rows; every column as wide as its widest cell,
/// two spaces apart, no trailing spaces.
public struct TextTable {
    public enum Alignment: Sendable {
        /// The first column left-aligned, the others (figures) right-aligned.
        case figures
        /// Every column left-aligned (text).
        case text
    }

    public var header: [String]
    public var rows: [[String]] = []
    public var alignment: Alignment

    public init(_ header: [String], rows: [[String]] = [], alignment: Alignment = .figures) {
        self.header = header
        self.rows = rows
        self.alignment = alignment
    }

    /// The table, each line ending in a newline.
    public var rendered: String {
        var widths = header.map(\.count)
        for r in rows { for (i, c) in r.enumerated() where i < widths.count { widths[i] = max(widths[i], c.count) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, c in
                let pad = String(repeating: " ", count: max(0, widths[i] - c.count))
                return i == 0 || alignment == .text ? c + pad : pad + c
            }.joined(separator: "  ").trimmingTrailingSpaces
        }
        var out = line(header) + "\n"
        out += widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ") + "\n"
        for r in rows { out += line(r) + "\n" }
        return out
    }
}

/// Fixed-point text: `fixed(3.14159, 2)` is "3.14".
public func fixed(_ value: Double, _ digits: Int) -> String { String(format: "%.\(digits)f", value) }

/// Engineering formatting: 12.3M, 456k.
public func si(_ x: Double) -> String {
    if x >= 1e9 { return String(format: "%.2fG", x / 1e9) }
    if x >= 1e6 { return String(format: "%.2fM", x / 1e6) }
    if x >= 1e3 { return String(format: "%.1fk", x / 1e3) }
    return String(format: "%.0f", x)
}

extension String {
    var trimmingTrailingSpaces: String {
        var s = Substring(self)
        while s.last == " " { s.removeLast() }
        return String(s)
    }
}
