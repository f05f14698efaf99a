import Foundation
import Hosted
import Topology

/// `throughput.svg`: kernel entries per second per cluster against cores per
/// cluster, one line per lock (median over runs), every run as a dot. The
/// subtitle (settings and machine) is wrapped at word boundaries so that no
/// line runs past the right edge.
public func throughputSVG(rows: [LockResultRow], title: String, subtitle: String) -> String {
    let locks = orderedUnique(rows.map(\.lock))
    let coresValues = Set(rows.map(\.cores)).sorted()
    let colours = ["ticket": "#d62728", "mcs": "#1f77b4", "clh": "#2ca02c"]
    let subtitleLines = wrap(subtitle, maxWidth: subtitleWidth)
    let extra = Double(subtitleLines.count - 1) * subtitleLineHeight
    let w = plotWidth, h = 440.0 + extra, left = plotLeft, right = 150.0, top = 60.0 + extra, bottom = 60.0
    let plotW = w - left - right, plotH = h - top - bottom
    let maxY = niceCeiling(max(1, rows.map(\.throughput).max() ?? 1))
    let minX = Double(coresValues.first ?? 1), maxX = Double(max(coresValues.last ?? 1, (coresValues.first ?? 1) + 1))
    func x(_ c: Double) -> Double { left + (c - minX) / (maxX - minX) * plotW }
    func y(_ v: Double) -> Double { top + plotH - v / maxY * plotH }
    var s = """
    <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(w))" height="\(Int(h))" viewBox="0 0 \(Int(w)) \(Int(h))" font-family="sans-serif" font-size="12">
    <rect width="100%" height="100%" fill="white"/>
    <text x="\(left)" y="24" font-size="15" font-weight="bold">\(escape(title))</text>

    """
    for (i, line) in subtitleLines.enumerated() {
        s += "<text x=\"\(left)\" y=\"\(42 + Double(i) * subtitleLineHeight)\" fill=\"#555\">\(escape(line))</text>\n"
    }
    // Grid and y axis.
    for i in 0...5 {
        let v = maxY * Double(i) / 5
        s += "<line x1=\"\(left)\" y1=\"\(y(v))\" x2=\"\(left + plotW)\" y2=\"\(y(v))\" stroke=\"#e5e5e5\"/>\n"
        s += "<text x=\"\(left - 8)\" y=\"\(y(v) + 4)\" text-anchor=\"end\">\(si(v))</text>\n"
    }
    for c in coresValues {
        s += "<line x1=\"\(x(Double(c)))\" y1=\"\(top + plotH)\" x2=\"\(x(Double(c)))\" y2=\"\(top + plotH + 5)\" stroke=\"black\"/>\n"
        s += "<text x=\"\(x(Double(c)))\" y=\"\(top + plotH + 20)\" text-anchor=\"middle\">\(c)</text>\n"
    }
    s += "<line x1=\"\(left)\" y1=\"\(top)\" x2=\"\(left)\" y2=\"\(top + plotH)\" stroke=\"black\"/>\n"
    s += "<line x1=\"\(left)\" y1=\"\(top + plotH)\" x2=\"\(left + plotW)\" y2=\"\(top + plotH)\" stroke=\"black\"/>\n"
    s += "<text x=\"\(left + plotW / 2)\" y=\"\(h - 15)\" text-anchor=\"middle\">cores per cluster</text>\n"
    s += "<text transform=\"translate(20,\(top + plotH / 2)) rotate(-90)\" text-anchor=\"middle\">kernel entries per second per cluster</text>\n"
    // One line per lock.
    for (i, lock) in locks.enumerated() {
        let colour = colours[lock] ?? "#7f7f7f"
        let mine = rows.filter { $0.lock == lock }
        var points: [(Double, Double)] = []
        for c in coresValues {
            let runs = mine.filter { $0.cores == c }.map(\.throughput)
            if runs.isEmpty { continue }
            points.append((Double(c), Statistics.median(runs)))
            for r in runs {
                s += "<circle cx=\"\(x(Double(c)))\" cy=\"\(y(r))\" r=\"2.5\" fill=\"\(colour)\" fill-opacity=\"0.45\"/>\n"
            }
        }
        let path = points.map { "\(x($0.0)),\(y($0.1))" }.joined(separator: " ")
        s += "<polyline points=\"\(path)\" fill=\"none\" stroke=\"\(colour)\" stroke-width=\"2.5\"/>\n"
        for p in points { s += "<circle cx=\"\(x(p.0))\" cy=\"\(y(p.1))\" r=\"4\" fill=\"\(colour)\"/>\n" }
        let ly = top + 10 + Double(i) * 20
        s += "<line x1=\"\(left + plotW + 20)\" y1=\"\(ly)\" x2=\"\(left + plotW + 45)\" y2=\"\(ly)\" stroke=\"\(colour)\" stroke-width=\"2.5\"/>\n"
        s += "<text x=\"\(left + plotW + 52)\" y=\"\(ly + 4)\">\(escape(lock))</text>\n"
    }
    let legendY = top + 10 + Double(locks.count) * 20 + 10
    s += "<text x=\"\(left + plotW + 20)\" y=\"\(legendY)\" fill=\"#555\" font-size=\"10\">line: median of runs</text>\n"
    s += "<text x=\"\(left + plotW + 20)\" y=\"\(legendY + 14)\" fill=\"#555\" font-size=\"10\">dots: each run</text>\n"
    s += "</svg>\n"
    return s
}

/// The plot's width and where the title and subtitle start.
let plotWidth = 720.0, plotLeft = 80.0
/// Room for the subtitle: from its start to 10 px before the right edge.
let subtitleWidth = plotWidth - plotLeft - 10
let subtitleLineHeight = 15.0

/// A generous estimate of a 12 px sans-serif line's width: 7 px a character
/// (the average is about 6; capitals and digits are wider).
func estimatedWidth(_ text: String) -> Double { Double(text.count) * 7 }

/// Splits `text` at spaces into lines no wider than `maxWidth` (a single
/// word wider than that gets a line of its own).
func wrap(_ text: String, maxWidth: Double) -> [String] {
    var lines: [String] = []
    var line = ""
    for word in text.split(separator: " ") {
        let candidate = line.isEmpty ? String(word) : line + " " + word
        if estimatedWidth(candidate) <= maxWidth || line.isEmpty {
            line = candidate
        } else {
            lines.append(line)
            line = String(word)
        }
    }
    lines.append(line)
    return lines
}

func orderedUnique(_ values: [String]) -> [String] {
    var seen = Set<String>()
    return values.filter { seen.insert($0).inserted }
}

func niceCeiling(_ v: Double) -> Double {
    let magnitude = pow(10, floor(log10(v)))
    for step in [1.0, 2.0, 2.5, 5.0, 10.0] where step * magnitude >= v { return step * magnitude }
    return 10 * magnitude
}

func escape(_ s: String) -> String {
    s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
        .replacingOccurrences(of: ">", with: "&gt;")
}
