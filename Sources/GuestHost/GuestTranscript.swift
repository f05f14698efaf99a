import Topology

/// What `cmk guest` learns from the console: the kernel's stable guest lines
/// (docs/guest.md), the guest's own markers and failures, and `cmk boot`'s
/// lines (through `BootTranscript`). Fed one line at a time, so a test can
/// replay any ending; `verdict` turns it and QEMU's end into an exit status.
public struct GuestTranscript {
    /// `cmk: guest stats [cluster=I] kind=NAME exits=N us=T` (one per kind
    /// and cluster; cluster 0 when the line names none).
    public struct ExitStat: Equatable, Sendable {
        public var cluster: Int
        public var kind: String
        public var exits: UInt64
        public var microseconds: UInt64
        public init(cluster: Int = 0, kind: String, exits: UInt64, microseconds: UInt64) {
            self.cluster = cluster
            self.kind = kind
            self.exits = exits
            self.microseconds = microseconds
        }
    }

    public static let statsPrefix = "cmk: guest stats "
    public static let initMarker = "guest: init"
    public static let guestPanic = "Kernel panic - not syncing"
    public static let guestPanicEnd = "---[ end Kernel panic"

    public var boot = BootTranscript()
    /// `cmk: guest start vcpus=N entry=0x... dtb=0x...`.
    public var started: (vcpus: Int, entry: UInt64, dtb: UInt64)?
    /// The guest's `/init` reached userspace (`guest: init`).
    public var reachedInit = false
    /// `guest: run exit=N` from guest/init.
    public var runExit: Int?
    public var poweredOff = false
    public var reset = false
    /// The guest's `Kernel panic - not syncing: ...` line.
    public var guestPanic: String?
    /// The guest printed its panic's last line: nothing more will come.
    public var guestPanicEnded = false
    /// `cmk: guest abort ipa=...` lines (the guest touched memory it has not).
    public var aborts: [String] = []
    public var stats: [ExitStat] = []
    /// `cmk: guest stats [cluster=I] refused=N aborts=N undefined=N ...`:
    /// what was refused, one group per line (per cluster).
    public var refusals: [[(name: String, count: UInt64)]] = []

    public init() {}

    /// The kernel's first `cmk: panic` or `cmk: exception` line.
    public var kernelFailure: String? { boot.failure }

    /// True once the run has ended as far as the console can tell; QEMU is
    /// given a moment to exit by itself, then stopped (a panicked guest
    /// loops forever).
    public var isFinished: Bool {
        kernelFailure != nil || poweredOff || reset || guestPanicEnded
    }

    public mutating func consume(_ rawLine: String) {
        let line = rawLine.trimmed("\r ")
        // Guest lines may carry anything before the marker (a timestamp,
        // the end of a prompt): match inside the line.
        if guestPanic == nil, let range = line.range(of: Self.guestPanic) {
            guestPanic = String(line[range.lowerBound...])
        }
        if guestPanic != nil, line.contains(Self.guestPanicEnd) { guestPanicEnded = true }
        if line == Self.initMarker { reachedInit = true }
        if line.hasPrefix("guest: run exit="), let n = Int(line.dropFirst("guest: run exit=".count)) { runExit = n }
        guard line.hasPrefix("cmk: ") else { return }
        boot.consume(line)
        let parsed = ConsoleLine(line)
        let words = parsed.words
        guard words.count >= 3, words[1] == "guest" else { return }
        switch words[2] {
        case "start":
            if let n = parsed.int("vcpus"), let entry = parsed.hex("entry"), let dtb = parsed.hex("dtb") {
                started = (n, entry, dtb)
            }
        case "power" where words.count == 4 && words[3] == "off":
            poweredOff = true
        case "reset":
            reset = true
        case "abort":
            aborts.append(line)
        case "stats":
            if let kind = parsed.field("kind"), let exits = parsed.decimal("exits"), let us = parsed.decimal("us") {
                stats.append(ExitStat(cluster: parsed.int("cluster") ?? 0, kind: kind, exits: exits, microseconds: us))
            } else if parsed.field("kind") == nil {
                var group: [(name: String, count: UInt64)] = []
                for word in words.dropFirst(3) {
                    let kv = word.split(separator: "=", maxSplits: 1)
                    if kv.count == 2, let n = UInt64(kv[1]) { group.append((String(kv[0]), n)) }
                }
                refusals.append(group)
            }
        default:
            break
        }
    }

    /// How a run ended on the host's side.
    public struct Ending: Equatable, Sendable {
        /// QEMU's exit status (nil: killed by a signal).
        public var qemuStatus: Int32?
        public var timedOut = false
        public var interrupted = false
        public var timeout: Double = 0
        public var lastLine: String?
        /// QEMU's own error output, if any.
        public var qemuErrors = ""
        public init(qemuStatus: Int32?, timedOut: Bool = false, interrupted: Bool = false, timeout: Double = 0,
                    lastLine: String? = nil, qemuErrors: String = "") {
            self.qemuStatus = qemuStatus
            self.timedOut = timedOut
            self.interrupted = interrupted
            self.timeout = timeout
            self.lastLine = lastLine
            self.qemuErrors = qemuErrors
        }
    }

    /// The exit status and, unless it is 0, the reason. Order: what the
    /// console says went wrong first (a kernel failure outranks a guest
    /// failure, which outranks the timeout it caused), then the host's end.
    public func verdict(_ end: Ending, topology: Topology) -> (status: GuestStatus, reason: String?) {
        if let kernelFailure { return (.kernelFailure, kernelFailure) }
        if let guestPanic { return (.guestFailure, "the guest panicked: \(guestPanic)") }
        if reset { return (.guestFailure, "the guest reset itself (`cmk: guest reset`; PSCI SYSTEM_RESET)") }
        if end.interrupted { return (.interrupted, "interrupted; QEMU stopped") }
        if end.timedOut {
            let stage = poweredOff ? "after the guest's power-off" : reachedInit ? "after `guest: init`"
                : started != nil ? "after `cmk: guest start`" : "before the guest started"
            return (.timeout, "QEMU still running after \(Self.seconds(end.timeout)) (\(stage)); last line: \(end.lastLine ?? "(none)")")
        }
        let qemu = end.qemuStatus.map { "QEMU exit status \($0)" } ?? "QEMU killed by a signal"
        let errors = end.qemuErrors.trimmed(" \n\r")
        let detail = errors.isEmpty ? "" : ": \(errors)"
        if poweredOff {
            if end.qemuStatus == 0 { return (.ok, nil) }
            return (.kernelFailure, "the guest powered off but \(qemu)\(detail)")
        }
        if started == nil, let problem = boot.problem(against: topology) {
            return (.kernelFailure, "the guest never started: \(problem) (\(qemu)\(detail))")
        }
        if started == nil {
            return (.kernelFailure, "the clusters booted but the guest never started (no `cmk: guest start` line; \(qemu)\(detail))")
        }
        return (.kernelFailure, "\(qemu) without `cmk: guest power off`\(detail); last line: \(end.lastLine ?? "(none)")")
    }

    static func seconds(_ s: Double) -> String {
        s == s.rounded() ? "\(Int(s)) s" : "\(s) s"
    }

    /// The `--stats` table: exits and handling time by kind (summed over
    /// the clusters; with several, the exits of each cluster in the last
    /// column, cluster 0 first), then totals.
    public var statsTable: String {
        var kinds: [String] = []
        for s in stats where !kinds.contains(s.kind) { kinds.append(s.kind) }
        let clusters = Set(stats.map(\.cluster)).sorted()
        let perCluster = clusters.count > 1
        var header = ["kind", "exits", "total us", "us/exit"]
        if perCluster { header.append("exits by cluster") }
        func row(_ name: String, _ items: [ExitStat]) -> [String] {
            let exits = items.reduce(0) { $0 + $1.exits }
            let us = items.reduce(0) { $0 + $1.microseconds }
            var r = [name, "\(exits)", "\(us)", exits == 0 ? "-" : String(format: "%.2f", Double(us) / Double(exits))]
            if perCluster {
                r.append(clusters.map { c in "\(items.filter { $0.cluster == c }.reduce(0) { $0 + $1.exits })" }
                    .joined(separator: "/"))
            }
            return r
        }
        var rows = kinds.map { k in row(k, stats.filter { $0.kind == k }) }
        rows.append(row("total", stats))
        let widths = (0..<header.count).map { c in ([header] + rows).map { $0[c].count }.max()! }
        func render(_ r: [String]) -> String {
            r.enumerated().map { c, cell in
                c == 0 ? cell.padding(toLength: widths[c], withPad: " ", startingAt: 0)
                    : String(repeating: " ", count: widths[c] - cell.count) + cell
            }.joined(separator: "  ")
        }
        if stats.isEmpty { return "guest exits: the kernel printed no `cmk: guest stats` lines" }
        var lines = ["guest exits by kind:", render(header)] + rows.map(render)
        for group in refusals {
            lines.append("refused: " + group.map { "\($0.name)=\($0.count)" }.joined(separator: " "))
        }
        return lines.joined(separator: "\n")
    }
}

extension String {
    func trimmed(_ characters: String) -> String {
        var s = Substring(self)
        while let f = s.first, characters.contains(f) { s = s.dropFirst() }
        while let l = s.last, characters.contains(l) { s = s.dropLast() }
        return String(s)
    }
}
